//! Re-reading one table while the pipeline streams, requested through Debezium's
//! signalling table: a target that drifted (a row changed by hand) is made equal again,
//! under concurrent writes, the other tables keep streaming, the signal table never
//! reaches the target, and a restart in the middle of the re-read finishes it.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers may panic

#[path = "common/harness.rs"]
mod harness;

use std::sync::Arc;
use std::time::Duration;

use cdc_api::{TableId, Value};
use cdc_runtime::MemoryStateStore;
use cdc_testkit::{MariaDb, values_database};

const SIGNAL: &str = "INSERT INTO rs.cdc_signal VALUES";

/// Changes a row in the values sink behind the pipeline's back, as a hand repair would.
fn drift(sink: &str, table: &TableId, id: i32) {
    let db = values_database(sink);
    let mut guard = db.lock().unwrap();
    let t = guard
        .tables
        .get_mut(table)
        .expect("the table is in the sink");
    let mut hit = false;
    for row in &mut t.rows {
        if row.first() == Some(&Value::Int(id)) {
            row[1] = Value::String("DRIFTED".into());
            hit = true;
        }
    }
    assert!(hit, "row {id} is in the sink");
}

fn yaml(db: &MariaDb, sink: &str, extra: &str) -> String {
    harness::yaml(
        db,
        sink,
        "rs.\\.*",
        &format!("  debezium.signal.data.collection: rs.cdc_signal\n{extra}"),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_signal_reads_one_table_again_under_writes() {
    let Some(db) = MariaDb::start_or_skip().await else {
        return;
    };
    db.execute(
        "CREATE DATABASE rs; CREATE TABLE rs.cdc_signal (id VARCHAR(42) PRIMARY KEY, \
         type VARCHAR(32) NOT NULL, data VARCHAR(2048) NULL); \
         CREATE TABLE rs.t (id INT PRIMARY KEY, v VARCHAR(20)); \
         CREATE TABLE rs.other (id INT PRIMARY KEY, v VARCHAR(20)); \
         INSERT INTO rs.t SELECT seq, CONCAT('v', seq) FROM rs.seq_1_to_500; \
         INSERT INTO rs.other VALUES (1, 'a')",
    )
    .await
    .unwrap();
    let handle = harness::build(&yaml(&db, "resnap", "  server-id: 5631\n"))
        .unwrap()
        .spawn();
    let (t, other) = (TableId::new("rs", "t"), TableId::new("rs", "other"));
    harness::wait_equal(
        &db,
        "resnap",
        &["rs.t", "rs.other"],
        Some(&handle),
        Duration::from_secs(30),
    )
    .await;
    drift("resnap", &t, 7);
    drift("resnap", &t, 480);

    // Writes before, with and after the signal, on both tables.
    db.execute(
        "UPDATE rs.t SET v = 'before' WHERE id = 10; DELETE FROM rs.t WHERE id = 11; \
         BEGIN; INSERT INTO rs.t VALUES (501, 'with'); \
         INSERT INTO rs.cdc_signal VALUES ('s1', 'execute-snapshot', '{\"data-collections\": [\"rs.t\"]}'); \
         UPDATE rs.other SET v = 'b' WHERE id = 1; COMMIT; \
         UPDATE rs.t SET v = 'after' WHERE id = 12; DELETE FROM rs.t WHERE id = 13; \
         INSERT INTO rs.other VALUES (2, 'c')",
    )
    .await
    .unwrap();
    harness::wait_equal(
        &db,
        "resnap",
        &["rs.t", "rs.other"],
        Some(&handle),
        Duration::from_secs(30),
    )
    .await;
    assert!(
        harness::sink_rows("resnap", &TableId::new("rs", "cdc_signal")).is_none(),
        "the signalling table is not captured"
    );
    assert_eq!(harness::sink_rows("resnap", &other).unwrap().len(), 2);
    handle.stop();
    handle.join().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_in_the_middle_of_a_requested_read_finishes_it() {
    let Some(db) = MariaDb::start_or_skip().await else {
        return;
    };
    db.execute(
        "CREATE DATABASE rs; CREATE TABLE rs.cdc_signal (id VARCHAR(42) PRIMARY KEY, \
         type VARCHAR(32) NOT NULL, data VARCHAR(2048) NULL); \
         CREATE TABLE rs.t (id INT PRIMARY KEY, v VARCHAR(20)); \
         INSERT INTO rs.t SELECT seq, CONCAT('v', seq) FROM rs.seq_1_to_20000",
    )
    .await
    .unwrap();
    // Slow and in one range, so the read is interrupted long before its last key.
    let extra = "  server-id: 5632\n  scan.snapshot.rate-limit: 4000\n  \
                 scan.incremental.snapshot.chunk.size: 100000\n";
    let store = Arc::new(MemoryStateStore::default());
    let handle = harness::build_with_store(&yaml(&db, "resnap2", extra), &store).spawn();
    harness::wait_equal(
        &db,
        "resnap2",
        &["rs.t"],
        Some(&handle),
        Duration::from_secs(60),
    )
    .await;
    let t = TableId::new("rs", "t");
    drift("resnap2", &t, 19_999);
    db.execute(&format!(
        "{SIGNAL} ('s1', 'execute-snapshot', '{{\"data-collections\": [\"rs.t\"]}}')"
    ))
    .await
    .unwrap();
    db.execute("DELETE FROM rs.t WHERE id = 5; UPDATE rs.t SET v = 'x' WHERE id = 19998")
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    handle.stop();
    handle.join().await.unwrap();
    db.execute("DELETE FROM rs.t WHERE id = 19997; INSERT INTO rs.t VALUES (30000, 'new')")
        .await
        .unwrap();
    assert!(
        harness::sink_rows("resnap2", &t)
            .unwrap()
            .iter()
            .any(|r| r[1] == "DRIFTED"),
        "the stop came before the read reached the last key"
    );
    let handle = harness::build_with_store(&yaml(&db, "resnap2", extra), &store).spawn();
    harness::wait_equal(
        &db,
        "resnap2",
        &["rs.t"],
        Some(&handle),
        Duration::from_secs(60),
    )
    .await;
    handle.stop();
    handle.join().await.unwrap();
}

/// What `cdc snapshot` does: the request goes in as a signal row, and names are checked.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn request_reread_writes_a_signal_and_checks_names() {
    let Some(db) = MariaDb::start_or_skip().await else {
        return;
    };
    db.execute(
        "CREATE DATABASE rs; CREATE TABLE rs.cdc_signal (id VARCHAR(42) PRIMARY KEY, \
         type VARCHAR(32) NOT NULL, data VARCHAR(2048) NULL); \
         CREATE TABLE rs.t (id INT PRIMARY KEY, v VARCHAR(20)); INSERT INTO rs.t VALUES (1, 'a')",
    )
    .await
    .unwrap();
    let handle = harness::build(&yaml(&db, "resnap3", "  server-id: 5633\n"))
        .unwrap()
        .spawn();
    let t = TableId::new("rs", "t");
    harness::wait_equal(
        &db,
        "resnap3",
        &["rs.t"],
        Some(&handle),
        Duration::from_secs(30),
    )
    .await;
    drift("resnap3", &t, 1);
    let context = |signal: bool| {
        let mut options = cdc_api::Options::new("source");
        for (k, v) in [
            ("hostname", "127.0.0.1".to_string()),
            ("port", db.port().to_string()),
            ("username", "root".into()),
            ("password", String::new()),
            ("tables", "rs.\\.*".into()),
        ] {
            options.insert(k, v);
        }
        if signal {
            options.insert("debezium.signal.data.collection", "rs.cdc_signal");
        }
        cdc_api::FactoryContext {
            pipeline_name: "resnap3".into(),
            options,
            pipeline_options: cdc_api::Options::new("pipeline"),
        }
    };
    let e = cdc_connector_mysql::request_reread(&context(false), &["rs.t".into()])
        .await
        .unwrap_err()
        .to_string();
    assert!(e.contains("debezium.signal.data.collection"), "{e}");
    let e = cdc_connector_mysql::request_reread(&context(true), &["rs.nope".into()])
        .await
        .unwrap_err()
        .to_string();
    assert!(e.contains("names no table"), "{e}");
    let id = cdc_connector_mysql::request_reread(&context(true), &["rs.t".into()])
        .await
        .unwrap();
    assert!(id.starts_with("cdc-"), "{id}");
    harness::wait_equal(
        &db,
        "resnap3",
        &["rs.t"],
        Some(&handle),
        Duration::from_secs(30),
    )
    .await;
    handle.stop();
    handle.join().await.unwrap();
}
