//! Fuzz-style robustness tests that run in plain `cargo test` (no nightly, no corpus):
//! a seeded generator feeds a fixed budget of random and mutated inputs to the response
//! classifiers and the redirect handling. Any panic fails the test; the seed makes a
//! failure reproducible.

use serde_json::{Map, Value as Json};
use url::Url;

use crate::retry::{
    Answer, LoadVerdict, TxnOp, TxnVerdict, classify_load, classify_txn, txn_id_in_message,
};
use crate::service::follow;
use cdc_testkit::fuzz::Rng;

/// Inputs per test.
const BUDGET: usize = 4000;

const KEYS: &[&str] = &[
    "Status",
    "Message",
    "TxnId",
    "Label",
    "ErrorURL",
    "ExistingJobStatus",
    "NumberTotalRows",
    "NumberLoadedRows",
    "NumberFilteredRows",
    "NumberUnselectedRows",
    "TwoPhaseCommit",
    "msg",
    "code",
    "data",
    "count",
    "status",
    "message",
];

const WORDS: &[&str] = &[
    "Success",
    "Publish Timeout",
    "Fail",
    "Label Already Exists",
    "FINISHED",
    "RUNNING",
    "PRECOMMITTED",
    "VISIBLE",
    "ABORTED",
    "COMMITTED",
    "Unauthorized",
    "OK",
    "success",
    "txn [12]",
    "txn [",
    "]",
    "txn [-1]",
    "txn [99999999999999999999]",
    "-235",
    "too many versions",
    "is not normal",
    "[INTERNAL_ERROR]",
    "[ANALYSIS_ERROR]",
    "transaction [1] is already aborted",
    "has already been used, relate to txn [99]",
    "There is no 100-continue header",
    "too many filtered rows",
    "\u{0}",
    "é中\u{1F600}",
    "http://127.0.0.1:8040/api/_load_error_log?file=x",
    "",
    "null",
    "{",
    "\"",
];

const SEEDS: &[&str] = &[
    r#"{"TxnId": 7, "Label": "l", "TwoPhaseCommit": "true", "Status": "Success", "Message": "OK", "NumberTotalRows": 3, "NumberLoadedRows": 3, "NumberFilteredRows": 0}"#,
    r#"{"TxnId": -1, "Label": "l", "Status": "Label Already Exists", "ExistingJobStatus": "PRECOMMITTED", "Message": "Label [l] has already been used, relate to txn [42]"}"#,
    r#"{"TxnId": 8, "Status": "Fail", "Message": "[DATA_QUALITY_ERROR]too many filtered rows", "ErrorURL": "http://127.0.0.1:8040/api/_load_error_log?file=f"}"#,
    r#"{"TxnId": 9, "Status": "Publish Timeout", "Message": "publish timeout"}"#,
    r#"{"msg": "Unauthorized", "code": 401, "data": "Access denied", "count": 0}"#,
    r#"{"status": "Success", "msg": "transaction [42] commit successfully."}"#,
    r#"{"status": "ANALYSIS_ERROR", "msg": "transaction [42] is already aborted. abort reason: timeout"}"#,
    r#"{"status":"FAILED","msg":"There is no 100-continue header"}"#,
];

const INSERTS: &[&str] = &[
    "\"",
    "{",
    "}",
    "[",
    "]",
    ",",
    ":",
    "null",
    "true",
    "-1",
    "1e999",
    "\\u0000",
    "\\ud800",
    "\"Status\": \"Success\"",
    "\"TxnId\": 1e30",
    "txn [",
    "\u{1F600}",
    "\"ErrorURL\": 5",
];

fn random_text(rng: &mut Rng) -> String {
    match rng.below(3) {
        0 => (*rng.pick(WORDS)).to_string(),
        1 => String::from_utf8_lossy(&rng.bytes(40)).into_owned(),
        _ => format!("{} {}", rng.pick(WORDS), rng.pick(WORDS)),
    }
}

fn random_json(rng: &mut Rng, depth: usize) -> Json {
    let kinds = if depth >= 3 { 5 } else { 7 };
    match rng.below(kinds) {
        0 => Json::Null,
        1 => Json::Bool(rng.below(2) == 0),
        2 => match rng.below(4) {
            0 => Json::from(rng.next_u64() as i64),
            1 => Json::from(rng.next_u64()),
            2 => Json::from(rng.below(100) as i64 - 50),
            _ => serde_json::Number::from_f64(f64::from_bits(rng.next_u64()))
                .map_or(Json::Null, Json::Number),
        },
        3 | 4 => Json::String(random_text(rng)),
        5 => Json::Array(
            (0..rng.below(4))
                .map(|_| random_json(rng, depth + 1))
                .collect(),
        ),
        _ => random_object(rng, depth + 1),
    }
}

fn random_object(rng: &mut Rng, depth: usize) -> Json {
    let mut map = Map::new();
    for _ in 0..rng.below(9) {
        let key = if rng.below(8) == 0 {
            random_text(rng)
        } else {
            (*rng.pick(KEYS)).to_string()
        };
        let value = match rng.below(3) {
            0 => Json::String((*rng.pick(WORDS)).to_string()),
            _ => random_json(rng, depth),
        };
        map.insert(key, value);
    }
    Json::Object(map)
}

/// A body: random bytes, a random response object, or a mutated real answer.
fn random_body(rng: &mut Rng) -> Vec<u8> {
    match rng.below(4) {
        0 => rng.bytes(200),
        1 => {
            let json = random_object(rng, 0);
            if rng.below(2) == 0 {
                json.to_string().into_bytes()
            } else {
                serde_json::to_vec_pretty(&json).unwrap_or_default()
            }
        }
        2 => rng.pick(SEEDS).as_bytes().to_vec(),
        _ => {
            let seed = rng.pick(SEEDS).as_bytes();
            rng.mutate(seed, INSERTS)
        }
    }
}

const STATUSES: &[u16] = &[
    200, 200, 200, 201, 204, 301, 307, 400, 401, 403, 404, 408, 429, 500, 502, 503, 504,
];

fn random_status(rng: &mut Rng) -> u16 {
    if rng.below(10) == 0 {
        rng.next_u64() as u16
    } else {
        *rng.pick(STATUSES)
    }
}

#[test]
fn load_and_two_phase_classification_never_panics() {
    let mut rng = Rng::new(0x0005_EEDD_0815);
    let mut seen_success = false;
    for _ in 0..BUDGET {
        let body = random_body(&mut rng);
        let status = random_status(&mut rng);
        let answer = Answer::Http {
            status,
            body: &body,
        };
        for two_phase in [false, true] {
            let verdict = classify_load(answer, two_phase);
            // the classifier is pure: the same answer gets the same verdict
            assert_eq!(verdict, classify_load(answer, two_phase));
            match &verdict {
                LoadVerdict::Success { .. } => seen_success = true,
                LoadVerdict::Retry { reason, .. } | LoadVerdict::Stop { reason, .. } => {
                    assert!(!reason.is_empty());
                }
            }
            if status != 200 {
                assert!(!matches!(verdict, LoadVerdict::Success { .. }), "{status}");
            }
        }
        for op in [TxnOp::Commit, TxnOp::Abort] {
            let verdict = classify_txn(answer, op);
            if status != 200 {
                assert!(!matches!(verdict, TxnVerdict::Done), "{status}");
            }
        }
        let transport = String::from_utf8_lossy(&body).into_owned();
        assert!(matches!(
            classify_load(Answer::Transport(&transport), true),
            LoadVerdict::Retry { .. }
        ));
        let _ = classify_txn(Answer::Transport(&transport), TxnOp::Commit);
    }
    assert!(
        seen_success,
        "the generator never produced a successful answer"
    );
}

#[test]
fn txn_id_extraction_never_panics() {
    let mut rng = Rng::new(42);
    for _ in 0..BUDGET {
        let seed = "Label [l] has already been used, relate to txn [12345]";
        let text = String::from_utf8_lossy(&rng.mutate(seed.as_bytes(), INSERTS)).into_owned();
        let _ = txn_id_in_message(&text);
        let _ = txn_id_in_message(&random_text(&mut rng));
    }
    assert_eq!(txn_id_in_message("relate to txn [ 12 ]"), Some(12));
}

#[test]
fn redirects_never_panic_keep_https_and_never_leak_the_password() {
    let mut rng = Rng::new(7);
    let seeds = [
        "http://root:s3cr3t@127.0.0.1:8040/api/d/t/_stream_load?",
        "https://cdc:s3cr3t@be.example:8040/api/d/_stream_load_2pc",
        "/api/d/t/_stream_load?x=s3cr3t",
        "//root:s3cr3t@be:8040/x",
    ];
    let inserts = [
        "@",
        ":",
        "//",
        "%",
        "%zz",
        "[",
        "]",
        "?",
        "#",
        "\u{1F600}",
        "https:",
        "ftp:",
    ];
    let from_http =
        Url::parse("http://fe:8030/api/d/t/_stream_load").unwrap_or_else(|e| panic!("{e}"));
    let from_https =
        Url::parse("https://fe:8030/api/d/t/_stream_load").unwrap_or_else(|e| panic!("{e}"));
    for i in 0..BUDGET {
        let seed = rng.pick(&seeds).as_bytes();
        let location = String::from_utf8_lossy(&rng.mutate(seed, &inserts)).into_owned();
        let tls = i % 2 == 0;
        let from = if tls { &from_https } else { &from_http };
        let (mut user, mut password) = ("u".to_string(), "p".to_string());
        match follow(from, &location, tls, &mut user, &mut password) {
            Ok(next) => {
                assert!(
                    next.username().is_empty() && next.password().is_none(),
                    "{next}"
                );
                if tls {
                    assert_eq!(next.scheme(), "https", "{location}");
                }
            }
            Err(e) => assert!(!e.contains("s3cr3t"), "{e}"),
        }
    }
}
