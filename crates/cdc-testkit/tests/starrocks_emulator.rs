#![allow(clippy::unwrap_used, clippy::expect_used)]
//! The StarRocks emulator, spoken to over HTTP (Stream Load, the transaction interface)
//! and the MySQL protocol (DDL, asynchronous schema-change jobs).

use std::time::Duration;

use cdc_testkit::{StarRocksEmulator, StarRocksEmulatorOptions, StarRocksFault, StarRocksTxnState};
use mysql_async::prelude::Queryable;
use serde_json::Value;

const PK_TABLE: &str = "CREATE TABLE d.t (id INT NOT NULL, v VARCHAR(8) NULL, n INT NULL) \
     PRIMARY KEY(id) DISTRIBUTED BY HASH(id) BUCKETS 2 PROPERTIES (\"replication_num\" = \"1\")";

fn client() -> reqwest::Client {
    // reqwest is built without a rustls provider of its own (the workspace uses ring)
    cdc_testkit::install_crypto_provider();
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

async fn with_table() -> StarRocksEmulator {
    let sr = StarRocksEmulator::start().await.unwrap();
    sr.execute("CREATE DATABASE d").unwrap();
    sr.execute(PK_TABLE).unwrap();
    sr
}

async fn json_of(r: reqwest::Response) -> Value {
    serde_json::from_str(&r.text().await.unwrap()).unwrap()
}

/// A stream load straight to the BE.
async fn be_load(
    sr: &StarRocksEmulator,
    label: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> Value {
    let mut req = client()
        .put(format!("http://{}/api/d/t/_stream_load", sr.be_address()))
        .basic_auth("root", Some(""))
        .header("label", label)
        .header("Expect", "100-continue")
        .body(body.to_string());
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    json_of(req.send().await.unwrap()).await
}

/// A transaction call straight to the BE (commit / rollback: the FE).
async fn txn(
    sr: &StarRocksEmulator,
    op: &str,
    label: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> Value {
    let host = if matches!(op, "commit" | "rollback") {
        sr.fe_http_address()
    } else {
        sr.be_address()
    };
    let mut req = client()
        .post(format!("http://{host}/api/transaction/{op}"))
        .basic_auth("root", Some(""))
        .header("label", label)
        .header("db", "d")
        .header("table", "t")
        .body(body.to_string());
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    json_of(req.send().await.unwrap()).await
}

fn rows(sr: &StarRocksEmulator) -> Vec<Vec<Option<String>>> {
    sr.table_rows("d", "t").unwrap()
}

fn row(id: &str, v: Option<&str>, n: Option<&str>) -> Vec<Option<String>> {
    vec![Some(id.into()), v.map(Into::into), n.map(Into::into)]
}

#[tokio::test]
async fn the_fe_redirects_without_credentials_and_checks_them_first() {
    let sr = with_table().await;
    let url = format!("http://{}/api/d/t/_stream_load", sr.fe_http_address());
    let r = client()
        .put(&url)
        .basic_auth("root", Some(""))
        .header("Expect", "100-continue")
        .body("[]")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 307);
    let location = r.headers()["location"].to_str().unwrap().to_string();
    assert!(
        location.starts_with(&format!("http://{}/api/d/t/_stream_load", sr.be_address())),
        "{location}"
    );
    assert!(!location.contains('@'), "{location}");
    // Following it without the header, as reqwest does across hosts.
    let r = client().put(&location).body("[]").send().await.unwrap();
    assert_eq!(r.status(), 200);
    let j = json_of(r).await;
    assert_eq!(j["Status"], "Fail");
    assert_eq!(j["Message"], "no valid Basic authorization");
    // A bad password is a real 401 at the FE.
    let r = client()
        .put(&url)
        .basic_auth("root", Some("bad"))
        .header("Expect", "100-continue")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    assert_eq!(r.headers()["www-authenticate"], "Basic realm=\"\"");
    // No Expect header.
    let r = client()
        .put(&url)
        .basic_auth("root", Some(""))
        .send()
        .await
        .unwrap();
    let j = json_of(r).await;
    assert_eq!(j["Status"], "FAILED");
    assert!(j["Message"].as_str().unwrap().contains("100-continue"));
}

#[tokio::test]
async fn stream_loads_upsert_and_delete_by_op_and_dedupe_labels() {
    let sr = with_table().await;
    let json = [("format", "json"), ("strip_outer_array", "true")];
    let j = be_load(
        &sr,
        "a",
        &json,
        r#"[{"id":1,"v":"x","n":1},{"id":2,"v":"y","n":2}]"#,
    )
    .await;
    assert_eq!(j["Status"], "Success", "{j}");
    assert_eq!(j["NumberLoadedRows"], 2);
    for key in [
        "TxnId",
        "Label",
        "Message",
        "NumberTotalRows",
        "LoadBytes",
        "StreamLoadPlanTimeMs",
        "CommitAndPublishTimeMs",
    ] {
        assert!(j.get(key).is_some(), "{key} missing: {j}");
    }
    let j = be_load(
        &sr,
        "b",
        &json,
        r#"[{"id":1,"v":"z","n":3,"__op":0},{"id":2,"__op":1}]"#,
    )
    .await;
    assert_eq!(j["Status"], "Success", "{j}");
    assert_eq!(rows(&sr), vec![row("1", Some("z"), Some("3"))]);
    // The same label again: refused, nothing loaded twice.
    let j = be_load(&sr, "b", &json, r#"[{"id":5}]"#).await;
    assert_eq!(j["Status"], "Label Already Exists");
    assert_eq!(j["ExistingJobStatus"], "FINISHED");
    // A whole load of deletes through `columns`.
    let j = be_load(
        &sr,
        "c",
        &[
            ("format", "json"),
            ("strip_outer_array", "true"),
            ("columns", "id, __op='delete'"),
        ],
        r#"[{"id":1}]"#,
    )
    .await;
    assert_eq!(j["Status"], "Success", "{j}");
    assert!(rows(&sr).is_empty());
    // Partial update: only the given columns change.
    be_load(&sr, "d", &json, r#"[{"id":7,"v":"a","n":1}]"#).await;
    let j = be_load(
        &sr,
        "e",
        &[
            ("format", "json"),
            ("strip_outer_array", "true"),
            ("partial_update", "true"),
        ],
        r#"[{"id":7,"n":9}]"#,
    )
    .await;
    assert_eq!(j["Status"], "Success", "{j}");
    assert_eq!(rows(&sr), vec![row("7", Some("a"), Some("9"))]);
    // An array without strip_outer_array is refused.
    let j = be_load(&sr, "f", &[("format", "json")], r#"[{"id":8}]"#).await;
    assert_eq!(j["Status"], "Fail", "{j}");
}

#[tokio::test]
async fn values_are_checked_strictly_and_rejected_rows_are_logged() {
    let sr = with_table().await;
    let json = [("format", "json"), ("strip_outer_array", "true")];
    // VARCHAR(8) counts bytes: two emoji are 8 bytes, three are 12.
    let j = be_load(
        &sr,
        "a",
        &json,
        r#"[{"id":1,"v":"😀😀"},{"id":2,"v":"😀😀😀"}]"#,
    )
    .await;
    assert_eq!(j["Status"], "Fail", "{j}");
    assert_eq!(j["Message"], "too many filtered rows");
    assert_eq!(j["NumberFilteredRows"], 1);
    let url = j["ErrorURL"].as_str().unwrap().to_string();
    let log = client()
        .get(&url)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    // StarRocks's own text (OlapTableSink::_print_varchar_error_msg).
    assert!(
        log.contains("String '😀😀😀'(length=12) is too long. The max length of 'v' is 8")
            && log.contains("\"id\":2"),
        "{log}"
    );
    assert!(rows(&sr).is_empty());
    // The same rows with a filter ratio: the good one loads.
    let j = be_load(
        &sr,
        "b",
        &[
            ("format", "json"),
            ("strip_outer_array", "true"),
            ("max_filter_ratio", "0.5"),
        ],
        r#"[{"id":1,"v":"😀😀"},{"id":2,"v":"😀😀😀"}]"#,
    )
    .await;
    assert_eq!(j["Status"], "Success", "{j}");
    assert_eq!(rows(&sr), vec![row("1", Some("😀😀"), None)]);
    // NULL key, bad integer in strict mode.
    let j = be_load(&sr, "c", &json, r#"[{"v":"x"}]"#).await;
    assert_eq!(j["Status"], "Fail");
    let j = be_load(
        &sr,
        "d",
        &[
            ("format", "json"),
            ("strip_outer_array", "true"),
            ("strict_mode", "true"),
        ],
        r#"[{"id":3,"n":"abc"}]"#,
    )
    .await;
    assert_eq!(j["Status"], "Fail");
    // Without strict mode a value that does not convert becomes NULL.
    let j = be_load(&sr, "e", &json, r#"[{"id":3,"n":"abc"}]"#).await;
    assert_eq!(j["Status"], "Success");
}

#[tokio::test]
async fn large_json_needs_ignore_json_size() {
    let sr = StarRocksEmulator::start_with(StarRocksEmulatorOptions {
        json_max_bytes: 20,
        ..StarRocksEmulatorOptions::default()
    })
    .await
    .unwrap();
    sr.execute("CREATE DATABASE d").unwrap();
    sr.execute(PK_TABLE).unwrap();
    let body = r#"[{"id":1,"v":"abc"},{"id":2,"v":"def"}]"#;
    let j = be_load(
        &sr,
        "a",
        &[("format", "json"), ("strip_outer_array", "true")],
        body,
    )
    .await;
    assert!(
        j["Message"].as_str().unwrap().contains("ignore_json_size"),
        "{j}"
    );
    let j = be_load(
        &sr,
        "b",
        &[
            ("format", "json"),
            ("strip_outer_array", "true"),
            ("ignore_json_size", "true"),
        ],
        body,
    )
    .await;
    assert_eq!(j["Status"], "Success", "{j}");
}

#[tokio::test]
async fn the_transaction_interface_follows_starrocks() {
    let sr = with_table().await;
    let fmt = [("format", "json"), ("strip_outer_array", "true")];
    let j = txn(&sr, "begin", "l1", &[("timeout", "60")], "").await;
    assert_eq!(j["Status"], "OK", "{j}");
    assert!(j["TxnId"].as_i64().unwrap() > 0);
    let j = txn(&sr, "begin", "l1", &[], "").await;
    assert_eq!(j["Status"], "LABEL_ALREADY_EXISTS");
    assert_eq!(j["ExistingJobStatus"], "RUNNING");
    let j = txn(&sr, "prepare", "l1", &[], "").await;
    assert_eq!(j["Status"], "FAILED");
    assert!(
        j["Message"]
            .as_str()
            .unwrap()
            .contains("hasn't send any data"),
        "{j}"
    );
    assert_eq!(
        txn(&sr, "load", "l1", &fmt, r#"[{"id":1,"v":"a"}]"#).await["Status"],
        "OK"
    );
    assert_eq!(
        txn(&sr, "load", "l1", &fmt, r#"[{"id":2,"v":"b"}]"#).await["Status"],
        "OK"
    );
    // Every load of a transaction must use the same parameters.
    let j = txn(&sr, "load", "l1", &[("format", "json")], r#"{"id":3}"#).await;
    assert_ne!(j["Status"], "OK");
    let j = txn(&sr, "prepare", "l1", &[], "").await;
    assert_eq!(j["Status"], "OK", "{j}");
    assert_eq!(j["NumberLoadedRows"], 2);
    assert!(rows(&sr).is_empty(), "prepared rows are not visible");
    let state = client()
        .get(format!(
            "http://{}/api/d/get_load_state?label=l1",
            sr.fe_http_address()
        ))
        .basic_auth("root", Some(""))
        .send()
        .await
        .unwrap();
    assert_eq!(json_of(state).await["state"], "PREPARED");
    assert_eq!(txn(&sr, "commit", "l1", &[], "").await["Status"], "OK");
    assert_eq!(rows(&sr).len(), 2);
    // Committing again is OK; rolling back a committed one is not.
    let j = txn(&sr, "commit", "l1", &[], "").await;
    assert_eq!(j["Status"], "OK");
    assert!(j["Message"].as_str().unwrap().contains("already committed"));
    assert_eq!(
        txn(&sr, "rollback", "l1", &[], "").await["Status"],
        "FAILED"
    );
    // Unknown label.
    assert_eq!(
        txn(&sr, "load", "nope", &fmt, "[]").await["Status"],
        "TXN_NOT_EXISTS"
    );
    assert_eq!(
        txn(&sr, "commit", "nope", &[], "").await["Status"],
        "TXN_NOT_EXISTS"
    );
    // A rolled-back label may be used again; committing it is refused.
    txn(&sr, "begin", "l2", &[], "").await;
    assert_eq!(txn(&sr, "rollback", "l2", &[], "").await["Status"], "OK");
    assert_eq!(txn(&sr, "rollback", "l2", &[], "").await["Status"], "OK");
    assert_eq!(txn(&sr, "commit", "l2", &[], "").await["Status"], "FAILED");
    assert_eq!(txn(&sr, "begin", "l2", &[], "").await["Status"], "OK");
    // Rejected rows fail the prepare with an error log.
    txn(
        &sr,
        "load",
        "l2",
        &fmt,
        r#"[{"id":9,"v":"too long for it"}]"#,
    )
    .await;
    let j = txn(&sr, "prepare", "l2", &[], "").await;
    assert_eq!(j["Message"], "too many filtered rows", "{j}");
    assert!(j["ErrorURL"].is_string());
    let aborted = sr
        .transactions()
        .into_iter()
        .filter(|t| t.label == "l2")
        .all(|t| t.state == StarRocksTxnState::Aborted);
    assert!(aborted);
}

#[tokio::test]
async fn idle_transactions_are_rolled_back() {
    let sr = with_table().await;
    txn(
        &sr,
        "begin",
        "idle",
        &[("idle_transaction_timeout", "1")],
        "",
    )
    .await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    loop {
        let t = sr
            .transactions()
            .into_iter()
            .find(|t| t.label == "idle")
            .unwrap();
        if t.state == StarRocksTxnState::Aborted {
            assert_eq!(t.abort_reason.as_deref(), Some("idle transaction timeout"));
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "never expired");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(
        txn(&sr, "load", "idle", &[("format", "json")], "{}").await["Status"],
        "TXN_NOT_EXISTS"
    );
}

#[tokio::test]
async fn faults_happen_as_injected() {
    let sr = with_table().await;
    sr.inject(StarRocksFault::ServerError {
        status: 503,
        count: 1,
    });
    let r = client()
        .post(format!("http://{}/api/transaction/begin", sr.be_address()))
        .basic_auth("root", Some(""))
        .header("label", "f")
        .header("db", "d")
        .header("table", "t")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 503);
    sr.inject(StarRocksFault::ResetConnection { count: 1 });
    let r = client()
        .post(format!("http://{}/api/transaction/begin", sr.be_address()))
        .basic_auth("root", Some(""))
        .header("label", "f")
        .header("db", "d")
        .header("table", "t")
        .send()
        .await;
    assert!(r.is_err());
    assert!(sr.transactions().is_empty(), "a fault changes nothing");
    sr.inject(StarRocksFault::BeDown(true));
    assert!(
        client()
            .get(format!("http://{}/", sr.be_address()))
            .send()
            .await
            .is_err()
    );
    sr.inject(StarRocksFault::BeDown(false));
    assert!(
        client()
            .get(format!("http://{}/", sr.be_address()))
            .send()
            .await
            .is_ok()
    );
    sr.inject(StarRocksFault::PublishTimeout { count: 1 });
    txn(&sr, "begin", "p", &[], "").await;
    txn(&sr, "load", "p", &[("format", "json")], r#"{"id":1}"#).await;
    let j = txn(&sr, "commit", "p", &[], "").await;
    assert_eq!(j["Status"], "PUBLISH_TIMEOUT");
    assert_eq!(rows(&sr).len(), 1, "committed anyway");
}

async fn mysql(
    sr: &StarRocksEmulator,
    password: &str,
) -> Result<mysql_async::Conn, mysql_async::Error> {
    let (host, port) = sr
        .fe_mysql_address()
        .rsplit_once(':')
        .map(|(h, p)| (h.to_string(), p.parse().unwrap()))
        .unwrap();
    let opts = mysql_async::OptsBuilder::default()
        .ip_or_hostname(host)
        .tcp_port(port)
        .user(Some("root"))
        .pass(Some(password))
        .prefer_socket(false);
    mysql_async::Conn::new(opts).await
}

#[tokio::test]
async fn the_mysql_port_runs_ddl_as_asynchronous_jobs() {
    let sr = StarRocksEmulator::start_with(StarRocksEmulatorOptions {
        users: vec![("root".into(), "pw".into())],
        alter_job_duration: Duration::from_millis(400),
        ..StarRocksEmulatorOptions::default()
    })
    .await
    .unwrap();
    let err = mysql(&sr, "wrong").await.unwrap_err().to_string();
    assert!(err.contains("Access denied"), "{err}");
    let mut c = mysql(&sr, "pw").await.unwrap();
    c.query_drop("CREATE DATABASE IF NOT EXISTS d")
        .await
        .unwrap();
    c.query_drop(PK_TABLE).await.unwrap();
    // StarRocks' limits.
    for bad in [
        "CREATE TABLE d.x (k DECIMAL(10,2) NOT NULL) PRIMARY KEY(k) DISTRIBUTED BY HASH(k)",
        "CREATE TABLE d.x (v INT, k INT NOT NULL) PRIMARY KEY(k) DISTRIBUTED BY HASH(k)",
        "CREATE TABLE d.x (k INT NOT NULL, t DATETIME(6)) PRIMARY KEY(k) DISTRIBUTED BY HASH(k)",
    ] {
        assert!(c.query_drop(bad).await.is_err(), "{bad}");
    }
    c.query_drop("ALTER TABLE d.t ADD COLUMN `w` BIGINT NULL COMMENT \"new\"")
        .await
        .unwrap();
    let show =
        "SHOW ALTER TABLE COLUMN FROM d WHERE TableName = \"t\" ORDER BY CreateTime DESC LIMIT 1";
    let job: Vec<mysql_async::Row> = c.query(show).await.unwrap();
    let state: String = job[0].get("State").unwrap();
    assert!(state == "PENDING" || state == "RUNNING", "{state}");
    // Not visible yet, and a second ALTER is refused while the job runs.
    assert_eq!(sr.table_columns("d", "t").unwrap().len(), 3);
    let err = c
        .query_drop("ALTER TABLE d.t DROP COLUMN n")
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("is not NORMAL"), "{err}");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    loop {
        let job: Vec<mysql_async::Row> = c.query(show).await.unwrap();
        if job[0].get::<String, _>("State").unwrap() == "FINISHED" {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "job never finished");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(sr.table_columns("d", "t").unwrap().len(), 4);
    c.query_drop("ALTER TABLE d.t RENAME COLUMN w TO w2")
        .await
        .unwrap();
    let cols = loop {
        let cols = sr.table_columns("d", "t").unwrap();
        if cols.iter().any(|c| c.name == "w2") {
            break cols;
        }
        assert!(tokio::time::Instant::now() < deadline + Duration::from_secs(5));
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(cols[3].type_text, "BIGINT");
    // Reading back and the rest of the DDL.
    let rows: Vec<(i64, Option<String>)> = c.query("SELECT id, v FROM d.t").await.unwrap();
    assert!(rows.is_empty());
    let desc: Vec<mysql_async::Row> = c.query("DESC d.t").await.unwrap();
    assert_eq!(desc.len(), 4);
    c.query_drop("TRUNCATE TABLE d.t").await.unwrap();
    c.query_drop("DROP TABLE d.t").await.unwrap();
    assert!(sr.table_rows("d", "t").is_none());
    c.disconnect().await.unwrap();
}

/// JSON and DATETIME print as StarRocks prints them; `open_transactions` lists what is
/// begun or prepared, `pending_faults` what was injected and not yet hit.
#[tokio::test]
async fn json_and_datetime_print_as_starrocks_and_open_work_is_listed() {
    let sr = StarRocksEmulator::start().await.unwrap();
    sr.execute("CREATE DATABASE d").unwrap();
    sr.execute(
        "CREATE TABLE d.t (id INT NOT NULL, j JSON NULL, at DATETIME NULL) PRIMARY KEY(id) \
         DISTRIBUTED BY HASH(id) PROPERTIES (\"replication_num\" = \"1\")",
    )
    .unwrap();
    let json = [("format", "json"), ("strip_outer_array", "true")];
    let body = r#"[{"id":1,"j":"{\"k\":[1,2,{\"a\":\"x\"}],\"b\":true}","at":"2021-01-01 08:00:01.5"},
                   {"id":2,"j":{"n":null},"at":"2021-01-01 08:00:01"}]"#;
    let j = be_load(&sr, "j1", &json, body).await;
    assert_eq!(j["Status"], "Success", "{j}");
    assert_eq!(
        sr.table_rows("d", "t").unwrap(),
        vec![
            vec![
                Some("1".into()),
                Some(r#"{"k": [1, 2, {"a": "x"}], "b": true}"#.into()),
                Some("2021-01-01 08:00:01.500000".into()),
            ],
            vec![
                Some("2".into()),
                Some(r#"{"n": null}"#.into()),
                Some("2021-01-01 08:00:01".into()),
            ],
        ]
    );

    assert!(sr.open_transactions().is_empty());
    txn(&sr, "begin", "open1", &[], "").await;
    txn(&sr, "begin", "open2", &[], "").await;
    txn(&sr, "load", "open2", &json, r#"[{"id":3}]"#).await;
    txn(&sr, "prepare", "open2", &[], "").await;
    let mut open: Vec<(String, StarRocksTxnState)> = sr
        .open_transactions()
        .into_iter()
        .map(|t| (t.label, t.state))
        .collect();
    open.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(
        open,
        [
            ("open1".to_string(), StarRocksTxnState::Prepare),
            ("open2".to_string(), StarRocksTxnState::Prepared),
        ]
    );
    txn(&sr, "rollback", "open1", &[], "").await;
    txn(&sr, "commit", "open2", &[], "").await;
    assert!(sr.open_transactions().is_empty());

    sr.inject(StarRocksFault::ServerError {
        status: 503,
        count: 2,
    });
    sr.inject(StarRocksFault::PublishTimeout { count: 1 });
    assert_eq!(sr.pending_faults(), 3);
    let r = client()
        .put(format!("http://{}/api/d/t/_stream_load", sr.be_address()))
        .basic_auth("root", Some(""))
        .header("label", "j2")
        .header("Expect", "100-continue")
        .header("format", "json")
        .body(r#"[{"id":4}]"#)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 503);
    assert_eq!(sr.pending_faults(), 2);
}
