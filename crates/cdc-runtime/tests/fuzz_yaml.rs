//! Fuzz-style robustness of pipeline YAML parsing in plain `cargo test`: a seeded generator
//! feeds a fixed budget of random and mutated documents to
//! `PipelineDefinition::from_yaml_str`. Every one must come back `Ok` or `Err` (never a
//! panic) and the whole budget must finish within a deadline (never a hang).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::mpsc;
use std::time::Duration;

use cdc_runtime::PipelineDefinition;
use cdc_testkit::fuzz::Rng;

/// Documents per test.
const BUDGET: usize = 3000;
/// The whole budget must be parsed within this time.
const DEADLINE: Duration = Duration::from_secs(120);

const SEEDS: &[&str] = &[
    include_str!("../../../examples/mariadb-to-doris.yaml"),
    include_str!("../../../examples/mysql-to-starrocks.yaml"),
    include_str!("../../../examples/values-to-values.yaml"),
    "source:\n  type: values\nsink:\n  type: values\npipeline:\n  name: p\n  parallelism: 1\n",
    "source:\n  type: mysql\n  hostname: h\n  port: 3306\n  tables: a.\\.*\nsink:\n  type: doris\n  fenodes: fe:8030\nroute:\n  - source-table: a.t\n    sink-table: b.t\n  - source-table: a.\\.*\n    sink-table: b.<>\n    replace-symbol: <>\ntransform:\n  - source-table: a.t\n    projection: \\*, UPPER(name) AS up\n    filter: id > 10\n    primary-keys: id\npipeline:\n  name: p\n  schema.change.behavior: evolve\n  checkpoint.interval: 10s\n",
    "{source: {type: values}, sink: {type: values}, pipeline: {name: x}}",
    "source: &s {type: values}\nsink: *s\n",
];

const INSERTS: &[&str] = &[
    ":",
    ": ",
    "\n",
    "\n  ",
    "  ",
    "- ",
    "-",
    "[",
    "]",
    "{",
    "}",
    ",",
    "&a ",
    "*a",
    "!!str ",
    "!!binary ",
    "? ",
    "|",
    ">",
    "#",
    "'",
    "\"",
    "\\",
    "---\n",
    "...\n",
    "%YAML 1.2\n",
    "~",
    "null",
    "true",
    "1e400",
    "0x",
    "<<: *a\n",
    "\t",
    "\u{FEFF}",
    "\u{0}",
    "é中\u{1F600}",
    "${",
    "${X",
    "$${",
    "${CDC_FUZZ_UNSET_VARIABLE}",
    "${file:/nonexistent/cdc-fuzz}",
    "}",
    "source:",
    "sink:",
    "route:",
    "transform:",
    "pipeline:",
    "type: ",
    "name: ",
    "projection: ",
    "filter: ",
    "sink-table: ",
    "source-table: ",
];

/// A document: random bytes, a seed with mutations, or YAML-ish lines from pieces.
fn random_document(rng: &mut Rng) -> String {
    match rng.below(4) {
        0 => String::from_utf8_lossy(&rng.bytes(300)).into_owned(),
        1 => {
            let mut doc = String::new();
            for _ in 0..rng.below(30) {
                let piece: &&str = rng.pick(INSERTS);
                doc.push_str(piece);
            }
            doc
        }
        _ => {
            let seed = rng.pick(SEEDS).as_bytes().to_vec();
            let mut out = rng.mutate(&seed, INSERTS);
            if rng.below(3) == 0 {
                out = rng.mutate(&out, INSERTS);
            }
            String::from_utf8_lossy(&out).into_owned()
        }
    }
}

/// Runs `check` on another thread and fails if it panics or outlives the deadline.
fn within_deadline(check: impl FnOnce() -> usize + Send + 'static) -> usize {
    let (tx, rx) = mpsc::channel();
    let worker = std::thread::Builder::new()
        .stack_size(8 << 20)
        .spawn(move || {
            let n = check();
            let _ = tx.send(n);
        })
        .unwrap();
    match rx.recv_timeout(DEADLINE) {
        Ok(n) => {
            worker.join().unwrap();
            n
        }
        Err(mpsc::RecvTimeoutError::Disconnected) => {
            // the worker panicked: re-raise its panic with its message
            match worker.join() {
                Err(panic) => std::panic::resume_unwind(panic),
                Ok(()) => panic!("the worker ended without an answer"),
            }
        }
        Err(mpsc::RecvTimeoutError::Timeout) => {
            panic!("parsing did not finish within {DEADLINE:?}")
        }
    }
}

#[test]
fn random_and_mutated_documents_never_panic_or_hang() {
    let oks = within_deadline(|| {
        let mut rng = Rng::new(0x00C0_FFEE);
        let mut oks = 0;
        for _ in 0..BUDGET {
            let doc = random_document(&mut rng);
            if PipelineDefinition::from_yaml_str(&doc, "fuzz.yaml").is_ok() {
                oks += 1;
            }
        }
        oks
    });
    // the mutations keep some documents valid, so the deeper checks run too
    assert!(oks > 0, "no generated document was valid");
}

#[test]
fn pathological_documents_are_refused_or_parsed_quickly() {
    within_deadline(|| {
        let mut docs = vec![
            "[".repeat(100_000),
            "{a: ".repeat(50_000),
            "- ".repeat(50_000),
            format!("source: {{type: values, x: \"{}\"}}", "a".repeat(1 << 20)),
            "${".repeat(10_000),
            "$${".repeat(10_000),
        ];
        // an alias bomb ("billion laughs")
        let mut bomb = String::from("a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
        for i in 1..12 {
            let prev = format!("*a{}", i - 1);
            bomb.push_str(&format!("a{i}: &a{i} [{}]\n", vec![prev; 10].join(", ")));
        }
        bomb.push_str("source: {type: values}\nsink: {type: values}\n");
        docs.push(bomb);
        for doc in &docs {
            let _ = PipelineDefinition::from_yaml_str(doc, "pathological.yaml");
        }
        docs.len()
    });
}
