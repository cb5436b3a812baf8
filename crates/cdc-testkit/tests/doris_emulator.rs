//! Tests of the Doris Stream Load emulator over real HTTP.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::unnecessary_wraps)]

use std::time::{Duration, Instant};

use cdc_testkit::{DorisEmulator, DorisEmulatorOptions, DorisFault, TableModel, TxnState};
use reqwest::{Client, Response, StatusCode};
use serde_json::Value;

const TABLE_SQL: &str = "CREATE TABLE IF NOT EXISTS `d`.`t` (
  `id` BIGINT NOT NULL COMMENT \"the id\",
  `name` VARCHAR(6) NULL,
  `amount` DECIMAL(5, 2) NULL,
  `ts` DATETIME(3) NULL,
  `ok` BOOLEAN NULL,
  `doc` JSON NULL
) ENGINE = OLAP
UNIQUE KEY(`id`)
COMMENT \"test\"
DISTRIBUTED BY HASH(`id`) BUCKETS AUTO
PROPERTIES (\"replication_num\" = \"1\", \"light_schema_change\" = \"true\")";

fn client() -> Client {
    // reqwest is built without a rustls provider of its own (the workspace uses ring)
    cdc_testkit::install_crypto_provider();
    Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

/// An emulator whose schema-change jobs finish at once (unless a transaction holds one),
/// for tests that are not about jobs, with database `d` and tables `t` and `dup`.
async fn setup() -> (DorisEmulator, Client) {
    let emu = DorisEmulator::start_with(DorisEmulatorOptions {
        alter_job_duration: Duration::ZERO,
        ..DorisEmulatorOptions::default()
    })
    .await
    .unwrap();
    emu.execute("CREATE DATABASE IF NOT EXISTS d").unwrap();
    emu.execute(TABLE_SQL).unwrap();
    emu.execute(
        "CREATE TABLE d.dup (k INT, v VARCHAR(10)) DUPLICATE KEY(k) DISTRIBUTED BY HASH(k) BUCKETS 1 PROPERTIES ('replication_num'='1')",
    )
    .unwrap();
    (emu, client())
}

/// PUT to the BE directly.
async fn be_load(emu: &DorisEmulator, table: &str, headers: &[(&str, &str)], body: &str) -> Value {
    let resp = be_put(emu, table, headers, body).await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    resp.json().await.unwrap()
}

async fn be_put(
    emu: &DorisEmulator,
    table: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> reqwest::Result<Response> {
    let mut req = client()
        .put(format!(
            "http://{}/api/d/{table}/_stream_load",
            emu.be_address()
        ))
        .basic_auth("root", Some(""))
        .body(body.to_string());
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    req.send().await
}

fn json_lines(label: &str) -> Vec<(&str, &str)> {
    vec![
        ("label", label),
        ("format", "json"),
        ("read_json_by_line", "true"),
        ("hidden_columns", "__DORIS_DELETE_SIGN__"),
    ]
}

async fn two_pc(emu: &DorisEmulator, addr: &str, headers: &[(&str, &str)]) -> Value {
    let mut req = client()
        .put(format!("http://{addr}/api/d/_stream_load_2pc"))
        .basic_auth("root", Some(""));
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let resp = req.send().await.unwrap();
    let _ = emu;
    assert_eq!(resp.status(), StatusCode::OK);
    resp.json().await.unwrap()
}

async fn wait_for(mut cond: impl FnMut() -> bool, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

fn s(v: &str) -> Option<String> {
    Some(v.to_string())
}

#[tokio::test]
async fn fe_redirects_with_credentials_and_be_loads() {
    let emu = DorisEmulator::start_with(DorisEmulatorOptions {
        users: vec![("cdc".into(), "p w".into())],
        ..DorisEmulatorOptions::default()
    })
    .await
    .unwrap();
    emu.execute("CREATE DATABASE d").unwrap();
    emu.execute(TABLE_SQL).unwrap();
    let resp = client()
        .put(format!("http://{}/api/d/t/_stream_load", emu.fe_address()))
        .basic_auth("cdc", Some("p w"))
        .header("Expect", "100-continue")
        .header("label", "l1")
        .header("format", "json")
        .header("read_json_by_line", "true")
        .body("{\"id\": 1, \"name\": \"a\"}\n")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::TEMPORARY_REDIRECT);
    let location = resp.headers()["location"].to_str().unwrap().to_string();
    assert_eq!(
        location,
        format!(
            "http://cdc:p%20w@{}/api/d/t/_stream_load?",
            emu.be_address()
        )
    );
    // follow it as a client must: to the BE, with the same headers and body
    let v: Value = client()
        .put(location.replace("cdc:p%20w@", ""))
        .basic_auth("cdc", Some("p w"))
        .header("label", "l1")
        .header("format", "json")
        .header("read_json_by_line", "true")
        .body("{\"id\": 1, \"name\": \"a\"}\n")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(v["Status"], "Success", "{v}");
    assert_eq!(v["TwoPhaseCommit"], "false");
    assert_eq!(v["NumberLoadedRows"], 1);
    let keys: Vec<&str> = v.as_object().unwrap().keys().map(String::as_str).collect();
    assert_eq!(
        keys[..6],
        [
            "TxnId",
            "Label",
            "Comment",
            "TwoPhaseCommit",
            "Status",
            "Message"
        ]
    );
    assert_eq!(
        emu.table_rows("d", "t").unwrap(),
        vec![vec![s("1"), s("a"), None, None, None, None]]
    );
    assert_eq!(emu.table_model("d", "t"), Some(TableModel::Unique));
    let cols = emu.table_columns("d", "t").unwrap();
    assert_eq!(cols[0].comment, "the id");
    assert!(cols[0].is_key && !cols[0].nullable);
    assert_eq!(cols[2].type_text, "DECIMAL(5, 2)");
    assert_eq!(cols[3].type_text, "DATETIME(3)");
}

#[tokio::test]
async fn auth_and_expect_failures() {
    let (emu, c) = setup().await;
    let fe = format!("http://{}/api/d/t/_stream_load", emu.fe_address());
    // wrong password at the FE: HTTP 200 with code 401
    let resp = c
        .put(&fe)
        .basic_auth("root", Some("bad"))
        .header("Expect", "100-continue")
        .body("x")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let v: Value = resp.json().await.unwrap();
    assert_eq!(v["msg"], "Unauthorized");
    assert_eq!(v["code"], 401);
    assert_eq!(v["count"], 0);
    // no Expect header
    let v: Value = c
        .put(&fe)
        .basic_auth("root", Some(""))
        .body("x")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        v,
        serde_json::json!({"status": "FAILED", "msg": "There is no 100-continue header"})
    );
    // unknown table at the FE
    let v: Value = c
        .put(format!(
            "http://{}/api/d/nope/_stream_load",
            emu.fe_address()
        ))
        .basic_auth("root", Some(""))
        .header("Expect", "100-continue")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(v["status"], "FAILED");
    // no Authorization at the BE
    let resp = c
        .put(format!("http://{}/api/d/t/_stream_load", emu.be_address()))
        .header("label", "x1")
        .body("1")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let v: Value = resp.json().await.unwrap();
    assert_eq!(v["Status"], "Fail");
    assert_eq!(v["Message"], "no valid Basic authorization");
    // wrong password at the BE
    let v: Value = c
        .put(format!("http://{}/api/d/t/_stream_load", emu.be_address()))
        .basic_auth("root", Some("bad"))
        .body("1")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(
        v["Message"].as_str().unwrap().contains("Access denied"),
        "{v}"
    );
    // unknown table at the BE
    let v = be_load(&emu, "nope", &[], "1").await;
    assert_eq!(
        v["Message"],
        "[NOT_FOUND]TStatus: errCode = 7, detailMessage = unknown table, tableName=nope"
    );
    // unknown format, bad strict_mode
    let v = be_load(&emu, "t", &[("format", "xml")], "1").await;
    assert_eq!(
        v["Message"],
        "[INTERNAL_ERROR]unknown data format, format=xml"
    );
    let v = be_load(
        &emu,
        "t",
        &[("strict_mode", "yes"), ("label", "sm")],
        "1\ta\t1\t\\N\t\\N\t\\N",
    )
    .await;
    assert_eq!(v["Status"], "Fail");
    assert_eq!(
        v["Message"],
        "[INVALID_ARGUMENT]Invalid strict mode format. Must be bool type"
    );
    // the failed load's label is free again
    let v = be_load(&emu, "t", &[("label", "sm")], "1\ta\t1\t\\N\t\\N\t\\N").await;
    assert_eq!(v["Status"], "Success", "{v}");
}

#[tokio::test]
async fn labels_are_deduplicated() {
    let (emu, _) = setup().await;
    let body = "{\"id\": 1, \"name\": \"a\", \"__DORIS_DELETE_SIGN__\": \"0\"}\n";
    let v = be_load(&emu, "t", &json_lines("lbl"), body).await;
    assert_eq!(v["Status"], "Success");
    let txn = v["TxnId"].as_i64().unwrap();
    let v = be_load(&emu, "t", &json_lines("lbl"), body).await;
    assert_eq!(v["Status"], "Label Already Exists");
    assert_eq!(v["ExistingJobStatus"], "FINISHED");
    assert_eq!(v["TxnId"], -1);
    assert_eq!(
        v["Message"],
        format!(
            "[LABEL_ALREADY_EXISTS]TStatus: errCode = 2, detailMessage = Label [lbl] has already been used, relate to txn [{txn}]"
        )
    );
    let keys: Vec<&str> = v.as_object().unwrap().keys().map(String::as_str).collect();
    assert_eq!(keys[4..7], ["Status", "ExistingJobStatus", "Message"]);
    // RUNNING while a slow load holds the label
    emu.inject(DorisFault::Slow {
        delay: Duration::from_millis(800),
        count: 1,
    });
    let slow = tokio::spawn({
        let be = emu.be_address();
        async move {
            client()
                .put(format!("http://{be}/api/d/t/_stream_load"))
                .basic_auth("root", Some(""))
                .header("label", "busy")
                .header("format", "json")
                .body("{\"id\": 2}")
                .send()
                .await
                .unwrap()
                .json::<Value>()
                .await
                .unwrap()
        }
    });
    wait_for(
        || {
            emu.transactions()
                .iter()
                .any(|t| t.label == "busy" && t.state == TxnState::Running)
        },
        "the slow load to begin",
    )
    .await;
    let v = be_load(
        &emu,
        "t",
        &[("label", "busy"), ("format", "json")],
        "{\"id\": 3}",
    )
    .await;
    assert_eq!(v["ExistingJobStatus"], "RUNNING");
    assert_eq!(slow.await.unwrap()["Status"], "Success");
    // labels with a dot are refused
    let v = be_load(&emu, "t", &[("label", "a.b")], "").await;
    assert!(
        v["Message"]
            .as_str()
            .unwrap()
            .contains("Label format error")
    );
    let log = emu.load_log();
    assert_eq!(log[0].label, "lbl");
    assert_eq!(log[1].status, "Label Already Exists");
}

#[tokio::test]
async fn json_csv_delete_sign_and_duplicate_tables() {
    let (emu, _) = setup().await;
    let body = "{\"id\": 1, \"name\": \"héé\", \"amount\": 1.5, \"ts\": \"2024-01-02 03:04:05.123456\", \"ok\": true, \"doc\": {\"a\": [1, 2]}, \"__DORIS_DELETE_SIGN__\": \"0\"}\n\
                {\"id\": 2, \"name\": \"b\", \"__DORIS_DELETE_SIGN__\": \"0\"}\n\
                {\"id\": 3, \"name\": \"c\", \"__DORIS_DELETE_SIGN__\": 0}\n";
    let v = be_load(&emu, "t", &json_lines("j1"), body).await;
    assert_eq!(v["NumberLoadedRows"], 3, "{v}");
    // upsert 2, delete 3
    let body = "{\"id\": 2, \"name\": \"b2\", \"__DORIS_DELETE_SIGN__\": \"0\"}\n{\"id\": 3, \"__DORIS_DELETE_SIGN__\": \"1\"}\n";
    be_load(&emu, "t", &json_lines("j2"), body).await;
    assert_eq!(
        emu.table_rows("d", "t").unwrap(),
        vec![
            vec![
                s("1"),
                s("héé"),
                s("1.50"),
                s("2024-01-02 03:04:05.123"),
                s("1"),
                s("{\"a\":[1,2]}")
            ],
            vec![s("2"), s("b2"), None, None, None, None],
        ]
    );
    // strip_outer_array
    let v = be_load(
        &emu,
        "t",
        &[("format", "json"), ("strip_outer_array", "true")],
        "[{\"id\": 4}, {\"id\": 5}]",
    )
    .await;
    assert_eq!(v["NumberLoadedRows"], 2);
    // CSV with columns, separator and NULL
    let v = be_load(
        &emu,
        "t",
        &[("column_separator", ","), ("columns", "id,name")],
        "6,x\n7,\\N\n",
    )
    .await;
    assert_eq!(v["NumberLoadedRows"], 2, "{v}");
    assert_eq!(emu.table_rows("d", "t").unwrap().len(), 6);
    // CSV delete sign through hidden_columns (last field)
    be_load(
        &emu,
        "t",
        &[
            ("column_separator", ","),
            ("hidden_columns", "__DORIS_DELETE_SIGN__"),
        ],
        "7,\\N,\\N,\\N,\\N,\\N,1\n",
    )
    .await;
    assert_eq!(emu.table_rows("d", "t").unwrap().len(), 5);
    // DUPLICATE: append, and no delete sign
    for label in ["d1", "d2"] {
        let v = be_load(
            &emu,
            "dup",
            &[("label", label), ("format", "json")],
            "{\"k\": 1, \"v\": \"x\"}",
        )
        .await;
        assert_eq!(v["Status"], "Success");
    }
    assert_eq!(emu.table_rows("d", "dup").unwrap().len(), 2);
    let v = be_load(&emu, "dup", &json_lines("d3"), "{\"k\": 1}").await;
    assert_eq!(v["Status"], "Fail");
    assert!(
        v["Message"]
            .as_str()
            .unwrap()
            .contains("__DORIS_DELETE_SIGN__"),
        "{v}"
    );
}

#[tokio::test]
async fn sequence_column_orders_versions() {
    let (emu, _) = setup().await;
    emu.execute(
        "CREATE TABLE d.s (id INT, v INT, ver BIGINT) UNIQUE KEY(id) DISTRIBUTED BY HASH(id) BUCKETS 1 PROPERTIES ('replication_num'='1', 'function_column.sequence_col' = 'ver')",
    )
    .unwrap();
    be_load(
        &emu,
        "s",
        &[("format", "json"), ("read_json_by_line", "true")],
        "{\"id\":1,\"v\":10,\"ver\":5}\n{\"id\":1,\"v\":9,\"ver\":4}\n",
    )
    .await;
    assert_eq!(
        emu.table_rows("d", "s").unwrap(),
        vec![vec![s("1"), s("10"), s("5")]]
    );
}

#[tokio::test]
async fn bad_values_are_filtered_with_an_error_log() {
    let (emu, c) = setup().await;
    let body = "{\"id\": 1, \"name\": \"toolong\"}\n\
                {\"id\": 2, \"amount\": 12345.6}\n\
                {\"id\": 3, \"ts\": \"2023-02-30 00:00:00\"}\n\
                {\"id\": null}\n\
                {\"id\": 5, \"doc\": \"{bad\"}\n\
                {\"id\": 6, \"name\": \"fine\"}\n";
    let v = be_load(
        &emu,
        "t",
        &[
            ("label", "q1"),
            ("format", "json"),
            ("read_json_by_line", "true"),
        ],
        body,
    )
    .await;
    assert_eq!(v["Status"], "Fail");
    assert_eq!(v["Message"], "[DATA_QUALITY_ERROR]too many filtered rows");
    assert_eq!(v["NumberTotalRows"], 6);
    assert_eq!(v["NumberFilteredRows"], 3, "{v}");
    let url = v["ErrorURL"].as_str().unwrap();
    assert!(url.starts_with(&format!(
        "http://{}/api/_load_error_log?file=__shard_0/error_log_",
        emu.be_address()
    )));
    let log = c.get(url).send().await.unwrap().text().await.unwrap();
    assert_eq!(log.lines().count(), 3, "{log}");
    assert!(
        log.contains("column_name[name], the length of input is too long than schema"),
        "{log}"
    );
    assert!(log.contains("out of range"), "{log}");
    assert!(
        log.contains("column(id) values is null while columns is not nullable"),
        "{log}"
    );
    assert!(emu.table_rows("d", "t").unwrap().is_empty());
    // within max_filter_ratio: Success with filtered rows; bad date and JSON became NULL
    let v = be_load(
        &emu,
        "t",
        &[
            ("label", "q1"),
            ("format", "json"),
            ("read_json_by_line", "true"),
            ("max_filter_ratio", "0.5"),
        ],
        body,
    )
    .await;
    assert_eq!(v["Status"], "Success", "{v}");
    assert_eq!(v["NumberLoadedRows"], 3);
    assert!(v["ErrorURL"].is_string());
    assert_eq!(emu.table_rows("d", "t").unwrap().len(), 3);
    // strict mode filters a failed conversion
    let v = be_load(
        &emu,
        "t",
        &[("format", "json"), ("strict_mode", "true")],
        "{\"id\": 9, \"ts\": \"not a date\"}",
    )
    .await;
    assert_eq!(v["NumberFilteredRows"], 1);
    let log = c
        .get(v["ErrorURL"].as_str().unwrap())
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        log.contains("value is incorrect while strict mode is true"),
        "{log}"
    );
}

#[tokio::test]
async fn two_phase_commit() {
    let (emu, _) = setup().await;
    let mut h = json_lines("p1");
    h.push(("two_phase_commit", "true"));
    let v = be_load(&emu, "t", &h, "{\"id\": 1}\n").await;
    assert_eq!(v["Status"], "Success");
    assert_eq!(v["TwoPhaseCommit"], "true");
    let txn = v["TxnId"].as_i64().unwrap();
    assert!(emu.table_rows("d", "t").unwrap().is_empty());
    // the label is PRECOMMITTED
    let v = be_load(&emu, "t", &h, "{\"id\": 1}\n").await;
    assert_eq!(v["ExistingJobStatus"], "PRECOMMITTED");
    // commit through the FE: validation, then 307 to the BE
    let c = client();
    let resp = c
        .put(format!(
            "http://{}/api/d/_stream_load_2pc",
            emu.fe_address()
        ))
        .basic_auth("root", Some(""))
        .header("txn_operation", "commit")
        .send()
        .await
        .unwrap();
    let v: Value = resp.json().await.unwrap();
    assert_eq!(v["msg"], "No transaction id or label selected.");
    let txn_s = txn.to_string();
    let resp = c
        .put(format!(
            "http://{}/api/d/t/_stream_load_2pc",
            emu.fe_address()
        ))
        .basic_auth("root", Some(""))
        .header("txn_id", &txn_s)
        .header("txn_operation", "commit")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::TEMPORARY_REDIRECT);
    let v = two_pc(
        &emu,
        &emu.be_address(),
        &[("txn_id", &txn_s), ("txn_operation", "commit")],
    )
    .await;
    assert_eq!(
        v,
        serde_json::json!({"status": "Success", "msg": format!("transaction [{txn}] commit successfully.")})
    );
    assert_eq!(emu.table_rows("d", "t").unwrap().len(), 1);
    let v = two_pc(
        &emu,
        &emu.be_address(),
        &[("txn_id", &txn_s), ("txn_operation", "commit")],
    )
    .await;
    assert_eq!(v["status"], "ANALYSIS_ERROR");
    assert_eq!(
        v["msg"],
        format!(
            "TStatus: errCode = 2, detailMessage = transaction [{txn}] is already visible, not pre-committed."
        )
    );
    // By label, Doris only looks among pre-committed transactions: a committed label is
    // "running transaction not found", an unknown one "transaction not found".
    let v = two_pc(
        &emu,
        &emu.be_address(),
        &[("label", "p1"), ("txn_operation", "commit")],
    )
    .await;
    assert_eq!(
        v["msg"],
        "TStatus: errCode = 2, detailMessage = running transaction not found, label=p1"
    );
    let v = two_pc(
        &emu,
        &emu.be_address(),
        &[("label", "nope"), ("txn_operation", "abort")],
    )
    .await;
    assert_eq!(
        v["msg"],
        "TStatus: errCode = 2, detailMessage = transaction not found, label=nope"
    );
    let v = two_pc(
        &emu,
        &emu.be_address(),
        &[("txn_id", &txn_s), ("txn_operation", "abort")],
    )
    .await;
    assert_eq!(
        v["msg"],
        format!(
            "TStatus: errCode = 2, detailMessage = transaction [{txn}] is already VISIBLE, could not abort."
        )
    );
    // abort by label, then the label is free
    let mut h2 = json_lines("p2");
    h2.push(("two_phase_commit", "true"));
    be_load(&emu, "t", &h2, "{\"id\": 2}\n").await;
    let v = two_pc(
        &emu,
        &emu.be_address(),
        &[("label", "p2"), ("txn_operation", "abort")],
    )
    .await;
    assert_eq!(v["msg"], "label [p2] abort successfully.");
    assert_eq!(
        be_load(&emu, "t", &json_lines("p2"), "{\"id\": 2}\n").await["Status"],
        "Success"
    );
    // unknown transaction, bad operation
    let v = two_pc(
        &emu,
        &emu.be_address(),
        &[("txn_id", "999999"), ("txn_operation", "abort")],
    )
    .await;
    assert_eq!(
        v["msg"],
        "TStatus: errCode = 2, detailMessage = transaction [999999] not found"
    );
    let v = two_pc(
        &emu,
        &emu.be_address(),
        &[("txn_id", "1"), ("txn_operation", "push")],
    )
    .await;
    assert_eq!(
        v["msg"],
        "transaction operation should be 'commit' or 'abort'"
    );
}

/// Real Doris binds a load's columns by column unique id when the load is written, so rows
/// pre-committed before a RENAME / ADD / DROP / MODIFY COLUMN land where they belong.
#[tokio::test]
async fn precommitted_loads_keep_their_columns_through_schema_changes() {
    let (emu, _) = setup().await;
    emu.execute("CREATE TABLE d.r (id INT, a VARCHAR(10), b INT, c INT) UNIQUE KEY(id) DISTRIBUTED BY HASH(id) BUCKETS 1 PROPERTIES (\"replication_num\" = \"1\")")
        .unwrap();
    let mut h = json_lines("r1");
    h.push(("two_phase_commit", "true"));
    let v = be_load(
        &emu,
        "r",
        &h,
        "{\"id\": 1, \"a\": \"x\", \"b\": 7, \"c\": 3}\n",
    )
    .await;
    assert_eq!(v["Status"], "Success", "{v}");
    let txn = v["TxnId"].as_i64().unwrap().to_string();
    emu.execute("ALTER TABLE d.r RENAME COLUMN a title")
        .unwrap();
    emu.execute("ALTER TABLE d.r DROP COLUMN c").unwrap();
    // Same name as the dropped column, but a new column: the load never wrote it.
    emu.execute("ALTER TABLE d.r ADD COLUMN c INT DEFAULT \"5\"")
        .unwrap();
    // A heavy job waits (WAITING_TXN) for the pre-committed load, which began before it.
    emu.execute("ALTER TABLE d.r MODIFY COLUMN b BIGINT")
        .unwrap();
    assert_eq!(emu.table_columns("d", "r").unwrap()[2].type_text, "INT");
    let v = two_pc(
        &emu,
        &emu.be_address(),
        &[("txn_id", &txn), ("txn_operation", "commit")],
    )
    .await;
    assert_eq!(v["status"], "Success", "{v}");
    assert_eq!(
        emu.table_rows("d", "r").unwrap(),
        vec![vec![s("1"), s("x"), s("7"), s("5")]]
    );
    // The commit released the job, which finished (its duration is zero here).
    assert_eq!(emu.table_columns("d", "r").unwrap()[2].type_text, "BIGINT");
    // A table dropped and created again does not receive the old table's load.
    let mut h = json_lines("r2");
    h.push(("two_phase_commit", "true"));
    let v = be_load(&emu, "r", &h, "{\"id\": 2, \"title\": \"y\"}\n").await;
    let txn = v["TxnId"].as_i64().unwrap().to_string();
    emu.execute("DROP TABLE d.r").unwrap();
    emu.execute("CREATE TABLE d.r (id INT, title VARCHAR(10)) UNIQUE KEY(id) DISTRIBUTED BY HASH(id) BUCKETS 1 PROPERTIES (\"replication_num\" = \"1\")")
        .unwrap();
    two_pc(
        &emu,
        &emu.be_address(),
        &[("txn_id", &txn), ("txn_operation", "commit")],
    )
    .await;
    assert!(emu.table_rows("d", "r").unwrap().is_empty());
}

#[tokio::test]
async fn precommitted_transactions_time_out() {
    let emu = DorisEmulator::start_with(DorisEmulatorOptions {
        precommit_timeout: Duration::from_millis(200),
        ..DorisEmulatorOptions::default()
    })
    .await
    .unwrap();
    emu.execute("CREATE DATABASE d").unwrap();
    emu.execute(TABLE_SQL).unwrap();
    let mut h = json_lines("p1");
    h.push(("two_phase_commit", "true"));
    let v = be_load(&emu, "t", &h, "{\"id\": 1}\n").await;
    let txn = v["TxnId"].as_i64().unwrap();
    wait_for(
        || {
            emu.transactions()
                .iter()
                .any(|t| t.txn_id == txn && t.state == TxnState::Aborted)
        },
        "the pre-commit timeout",
    )
    .await;
    let v = two_pc(
        &emu,
        &emu.be_address(),
        &[("txn_id", &txn.to_string()), ("txn_operation", "commit")],
    )
    .await;
    assert!(
        v["msg"].as_str().unwrap().contains("is already aborted"),
        "{v}"
    );
    assert!(emu.table_rows("d", "t").unwrap().is_empty());
}

#[tokio::test]
async fn injected_faults() {
    let (emu, _) = setup().await;
    let row = "{\"id\": 1}";
    let h = [("format", "json"), ("label", "f1")];
    emu.inject(DorisFault::ServerError {
        status: 503,
        count: 1,
    });
    let resp = be_put(&emu, "t", &h, row).await.unwrap();
    assert_eq!(resp.status(), StatusCode::SERVICE_UNAVAILABLE);
    emu.inject(DorisFault::ResetConnection { count: 1 });
    assert!(be_put(&emu, "t", &h, row).await.is_err());
    emu.inject(DorisFault::TooManyVersions { count: 1 });
    let v = be_load(&emu, "t", &h, row).await;
    assert_eq!(v["Status"], "Fail");
    assert_eq!(
        v["Message"],
        "[E-235]failed to init rowset builder. version count: 2001, exceed limit: 2000, tablet: 10086"
    );
    emu.inject(DorisFault::PublishTimeout { count: 1 });
    let v = be_load(&emu, "t", &h, row).await;
    assert_eq!(v["Status"], "Publish Timeout");
    assert_eq!(emu.table_rows("d", "t").unwrap().len(), 1);
    emu.inject(DorisFault::Slow {
        delay: Duration::from_millis(300),
        count: 1,
    });
    let t0 = Instant::now();
    let v = be_load(&emu, "t", &[("format", "json")], row).await;
    assert_eq!(v["Status"], "Success");
    assert!(t0.elapsed() >= Duration::from_millis(300));
    // BE down: connections refused, FE still answers
    emu.inject(DorisFault::BeDown(true));
    let err = be_put(&emu, "t", &[], row).await.unwrap_err();
    assert!(err.is_connect(), "{err:?}");
    emu.inject(DorisFault::BeDown(false));
    let v = be_load(&emu, "t", &[("format", "json")], row).await;
    assert_eq!(v["Status"], "Success");
}

async fn query(emu: &DorisEmulator, user: &str, stmt: &str) -> Value {
    client()
        .post(format!(
            "http://{}/api/query/default_cluster/d",
            emu.fe_address()
        ))
        .basic_auth(user, Some(""))
        .json(&serde_json::json!({ "stmt": stmt }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

#[tokio::test]
async fn sql_api() {
    let (emu, _) = setup().await;
    let v = query(
        &emu,
        "root",
        "ALTER TABLE `d`.`t` ADD COLUMN `c` INT NULL AFTER `name`",
    )
    .await;
    assert_eq!(v["code"], 0, "{v}");
    assert_eq!(v["data"]["type"], "exec_status");
    let v = query(&emu, "root", "SELECT COLUMN_NAME FROM information_schema.`COLUMNS` WHERE TABLE_SCHEMA = 'd' AND TABLE_NAME = 't' AND COLUMN_NAME = 'c'").await;
    assert_eq!(v["data"]["type"], "result_set");
    assert_eq!(v["data"]["data"], serde_json::json!([["c"]]));
    assert_eq!(v["data"]["meta"][0]["name"], "COLUMN_NAME");
    let v = query(&emu, "root", "ALTER TABLE `d`.`t` ADD COLUMN `c` INT NULL").await;
    assert_eq!(v["code"], 1);
    assert_eq!(
        v["msg"],
        "errCode = 2, detailMessage = Can not add column which already exists in base table: c"
    );
    let v = query(&emu, "nobody", "SELECT * FROM t").await;
    assert_eq!(v["code"], 401);
    for (sql, needle) in [
        (
            "CREATE TABLE x (a VARCHAR(70000)) DUPLICATE KEY(a) PROPERTIES ('replication_num'='1')",
            "65533",
        ),
        (
            "CREATE TABLE x (a INT, b CHAR(300)) DUPLICATE KEY(a) PROPERTIES ('replication_num'='1')",
            "255",
        ),
        (
            "CREATE TABLE x (a INT, b DECIMAL(40, 2)) DUPLICATE KEY(a) PROPERTIES ('replication_num'='1')",
            "Precision",
        ),
        (
            "CREATE TABLE x (a INT, b DATETIME(7)) DUPLICATE KEY(a) PROPERTIES ('replication_num'='1')",
            "Scale",
        ),
        (
            "CREATE TABLE x (a INT, b TIME) DUPLICATE KEY(a) PROPERTIES ('replication_num'='1')",
            "TIME",
        ),
        (
            "CREATE TABLE x (a INT, b JSON) UNIQUE KEY(b) DISTRIBUTED BY HASH(b) PROPERTIES ('replication_num'='1')",
            "ordered prefix",
        ),
        (
            "CREATE TABLE x (b JSON, a INT) UNIQUE KEY(b) DISTRIBUTED BY HASH(b) PROPERTIES ('replication_num'='1')",
            "JSONB",
        ),
        (
            "CREATE TABLE t (a INT) DUPLICATE KEY(a) PROPERTIES ('replication_num'='1')",
            "already exists",
        ),
        ("ALTER TABLE t MODIFY COLUMN id INT NOT NULL", "key column"),
        (
            "ALTER TABLE t MODIFY COLUMN amount DECIMAL(4, 2)",
            "Can not change",
        ),
        ("ALTER TABLE t DROP COLUMN nope", "Column does not exists"),
        ("ALTER TABLE t RENAME COLUMN name TO other", "Syntax error"),
    ] {
        let v = query(&emu, "root", sql).await;
        assert_eq!(v["code"], 1, "{sql}: {v}");
        let msg = v["msg"].as_str().unwrap();
        assert!(msg.starts_with("errCode = 2, detailMessage = "), "{msg}");
        assert!(msg.contains(needle), "{sql}: {msg}");
    }
    // widen, rename, comment, then read back
    emu.execute("ALTER TABLE d.t MODIFY COLUMN name VARCHAR(20) NULL")
        .unwrap();
    emu.execute("ALTER TABLE d.t RENAME COLUMN name full_name")
        .unwrap();
    emu.execute("ALTER TABLE d.t MODIFY COMMENT \"new comment\"")
        .unwrap();
    emu.execute("ALTER TABLE d.t DROP COLUMN c").unwrap();
    let cols = emu.table_columns("d", "t").unwrap();
    assert_eq!(cols[1].name, "full_name");
    assert_eq!(cols[1].type_text, "VARCHAR(20)");
    let jobs = emu
        .execute("SHOW ALTER TABLE COLUMN FROM `d` WHERE TableName = \"t\" ORDER BY CreateTime DESC LIMIT 1")
        .unwrap();
    assert_eq!(jobs.rows.len(), 1);
    let state = jobs.columns.iter().position(|c| c == "State").unwrap();
    assert_eq!(jobs.rows[0][state].as_deref(), Some("FINISHED"));
    be_load(
        &emu,
        "t",
        &[("format", "json")],
        "{\"id\": 1, \"full_name\": \"abcdefghij\"}",
    )
    .await;
    let r = emu.execute("SELECT id, full_name FROM d.t").unwrap();
    assert_eq!(r.rows, vec![vec![s("1"), s("abcdefghij")]]);
    emu.execute("TRUNCATE TABLE d.t").unwrap();
    assert!(emu.table_rows("d", "t").unwrap().is_empty());
    emu.execute("DROP TABLE IF EXISTS d.t").unwrap();
    assert!(emu.table_rows("d", "t").is_none());
    emu.execute("DROP TABLE IF EXISTS d.t").unwrap();
}

async fn get_json(url: &str, user: Option<&str>) -> Value {
    let mut req = client().get(url);
    if let Some(u) = user {
        req = req.basic_auth(u, Some(""));
    }
    let resp = req.send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK, "{url}");
    resp.json().await.unwrap()
}

/// The port of a `127.0.0.1:PORT` address.
fn port_of(address: &str) -> u64 {
    address.rsplit(':').next().unwrap().parse().unwrap()
}

/// The port a redirect of a stream load through the FE goes to.
async fn redirected_port(emu: &DorisEmulator) -> u64 {
    let resp = client()
        .put(format!("http://{}/api/d/t/_stream_load", emu.fe_address()))
        .basic_auth("root", Some(""))
        .header("Expect", "100-continue")
        .body("")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::TEMPORARY_REDIRECT);
    let location = resp.headers()["location"].to_str().unwrap();
    let host_port = location
        .trim_start_matches("http://root:@")
        .split('/')
        .next()
        .unwrap();
    port_of(host_port)
}

/// BE discovery as Doris serves it: `GET /api/backends` on the FE (Basic auth) lists the
/// BEs in the documented shape, `is_alive=true` leaves a down BE out; every BE answers the
/// liveness probe `GET /`, takes loads and 2PC calls itself, and counts them; the FE
/// redirects round robin to the BEs that are up.
#[tokio::test]
async fn two_bes_are_listed_probed_and_used_in_turn() {
    let emu = DorisEmulator::start_with(DorisEmulatorOptions {
        backends: 2,
        ..DorisEmulatorOptions::default()
    })
    .await
    .unwrap();
    emu.execute("CREATE DATABASE d").unwrap();
    emu.execute(TABLE_SQL).unwrap();
    let bes = emu.be_addresses();
    assert_eq!(bes.len(), 2);
    assert_eq!(bes[0], emu.be_address());
    assert_ne!(bes[0], bes[1]);
    let list_url = format!("http://{}/api/backends?is_alive=true", emu.fe_address());

    // exactly the documented answer, in its key order
    let body = client()
        .get(&list_url)
        .basic_auth("root", Some(""))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(
        body,
        format!(
            "{{\"msg\":\"success\",\"code\":0,\"data\":{{\"backends\":[{{\"ip\":\"127.0.0.1\",\"http_port\":{},\"is_alive\":true}},{{\"ip\":\"127.0.0.1\",\"http_port\":{},\"is_alive\":true}}]}},\"count\":0}}",
            port_of(&bes[0]),
            port_of(&bes[1])
        )
    );
    // Basic auth as on every FE endpoint
    let v = get_json(&list_url, None).await;
    assert_eq!(v["code"], 401, "{v}");
    let v = get_json(&list_url, Some("nobody")).await;
    assert_eq!(v["msg"], "Unauthorized", "{v}");
    assert_eq!(
        emu.fe_backend_list_requests(),
        1,
        "only answers with the list count"
    );

    // liveness probes
    for be in &bes {
        let resp = client().get(format!("http://{be}/")).send().await.unwrap();
        assert_eq!(resp.status(), StatusCode::OK);
    }

    // the FE redirects round robin
    let first = redirected_port(&emu).await;
    let second = redirected_port(&emu).await;
    assert_ne!(first, second);
    assert_eq!(first, redirected_port(&emu).await);

    // loads and 2PC straight to the second BE, counted there
    let v: Value = client()
        .put(format!("http://{}/api/d/t/_stream_load", bes[1]))
        .basic_auth("root", Some(""))
        .header("label", "on-be-1")
        .header("format", "json")
        .header("two_phase_commit", "true")
        .body("{\"id\": 7}")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(v["Status"], "Success", "{v}");
    let v = two_pc(
        &emu,
        &bes[1],
        &[("label", "on-be-1"), ("txn_operation", "commit")],
    )
    .await;
    assert_eq!(v["status"], "Success", "{v}");
    assert_eq!(emu.table_rows("d", "t").unwrap().len(), 1);
    assert_eq!(emu.be_stream_load_requests(1), 1);
    assert_eq!(emu.be_two_phase_requests(1), 1);
    assert_eq!(emu.be_stream_load_requests(0), 0);
    assert_eq!(emu.be_two_phase_requests(0), 0);
    assert_eq!(emu.be_stream_load_requests(2), 0);
    assert_eq!(emu.fe_stream_load_requests(), 3);

    // one BE down: refused, left out of the alive list, not redirected to
    emu.inject(DorisFault::BackendDown {
        index: 1,
        down: true,
    });
    let err = client()
        .get(format!("http://{}/", bes[1]))
        .send()
        .await
        .unwrap_err();
    assert!(err.is_connect(), "{err:?}");
    let v = get_json(&list_url, Some("root")).await;
    assert_eq!(
        v["data"]["backends"],
        serde_json::json!([{"ip": "127.0.0.1", "http_port": port_of(&bes[0]), "is_alive": true}])
    );
    let all = get_json(
        &format!("http://{}/api/backends", emu.fe_address()),
        Some("root"),
    )
    .await;
    assert_eq!(all["data"]["backends"][1]["is_alive"], false, "{all}");
    for _ in 0..3 {
        assert_eq!(redirected_port(&emu).await, port_of(&bes[0]));
    }
    emu.inject(DorisFault::BackendDown {
        index: 1,
        down: false,
    });
    let v = get_json(&list_url, Some("root")).await;
    assert_eq!(v["data"]["backends"].as_array().unwrap().len(), 2, "{v}");

    // every BE down: none alive, redirects still go to a BE (whose connection fails)
    emu.inject(DorisFault::BeDown(true));
    let v = get_json(&list_url, Some("root")).await;
    assert_eq!(v["data"]["backends"], serde_json::json!([]), "{v}");
    assert_eq!(redirected_port(&emu).await, port_of(&bes[0]));
    emu.inject(DorisFault::BeDown(false));
    for be in &bes {
        let resp = client().get(format!("http://{be}/")).send().await.unwrap();
        assert_eq!(resp.status(), StatusCode::OK);
    }
}

/// A column-type change is an asynchronous job in Doris: rows loaded while it runs are
/// read with the old type (a value too large for the old INT becomes NULL, as in any load
/// into an INT), and the job converts the rows there when it finishes.
#[tokio::test]
async fn rows_loaded_while_a_column_job_runs_are_read_with_the_old_type() {
    let emu = DorisEmulator::start_with(DorisEmulatorOptions {
        alter_job_duration: Duration::from_millis(600),
        ..DorisEmulatorOptions::default()
    })
    .await
    .unwrap();
    emu.execute("CREATE DATABASE d").unwrap();
    emu.execute("CREATE TABLE d.r (id INT, v INT) UNIQUE KEY(id) DISTRIBUTED BY HASH(id) BUCKETS 1 PROPERTIES (\"replication_num\" = \"1\")")
        .unwrap();
    emu.execute("ALTER TABLE d.r MODIFY COLUMN v BIGINT")
        .unwrap();
    let v = be_load(
        &emu,
        "r",
        &json_lines("during"),
        "{\"id\": 1, \"v\": 9000000004}\n{\"id\": 2, \"v\": 5}\n",
    )
    .await;
    assert_eq!(v["Status"], "Success", "{v}");
    assert_eq!(emu.table_columns("d", "r").unwrap()[1].type_text, "INT");
    let during = vec![vec![s("1"), None], vec![s("2"), s("5")]];
    assert_eq!(emu.table_rows("d", "r").unwrap(), during);
    let e = emu.execute("ALTER TABLE d.r ADD COLUMN x INT").unwrap_err();
    assert_eq!(
        e,
        "errCode = 2, detailMessage = Table[r]'s state(SCHEMA_CHANGE) is not NORMAL. Do not allow doing ALTER ops"
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let jobs = emu
            .execute("SHOW ALTER TABLE COLUMN FROM d WHERE TableName = \"r\"")
            .unwrap();
        let state = jobs.columns.iter().position(|c| c == "State").unwrap();
        if jobs.rows[0][state].as_deref() == Some("FINISHED") {
            break;
        }
        assert!(Instant::now() < deadline, "the job did not finish");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(emu.table_columns("d", "r").unwrap()[1].type_text, "BIGINT");
    assert_eq!(emu.table_rows("d", "r").unwrap(), during);
    be_load(
        &emu,
        "r",
        &json_lines("after"),
        "{\"id\": 3, \"v\": 9000000004}\n",
    )
    .await;
    assert_eq!(
        emu.table_rows("d", "r").unwrap()[2],
        vec![s("3"), s("9000000004")]
    );
}
