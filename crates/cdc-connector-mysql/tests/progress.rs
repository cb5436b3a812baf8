//! What the source reports while it runs: snapshot progress per table with the server's
//! row estimates, the switch to streaming, the binlog lag; and which tables it captures,
//! so the runtime refuses a restart that dropped one.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "common/harness.rs"]
mod harness;

use std::sync::Arc;
use std::time::Duration;

use cdc_api::TableId;
use cdc_runtime::MemoryStateStore;
use cdc_testkit::MariaDb;
use harness::{build, build_with_store, yaml};

async fn wait_for(what: &str, mut check: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while !check() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn snapshot_progress_streaming_and_lag_are_reported() {
    let Some(db) = MariaDb::start_or_skip().await else {
        return;
    };
    db.execute(
        "CREATE DATABASE p; CREATE TABLE p.a (id INT PRIMARY KEY, v INT); \
         CREATE TABLE p.b (id INT PRIMARY KEY, s VARCHAR(10))",
    )
    .await
    .unwrap();
    let a: Vec<String> = (1..=300).map(|i| format!("({i}, {i})")).collect();
    let b: Vec<String> = (1..=120).map(|i| format!("({i}, 'x')")).collect();
    db.execute(&format!(
        "INSERT INTO p.a VALUES {}; INSERT INTO p.b VALUES {}; ANALYZE TABLE p.a, p.b",
        a.join(","),
        b.join(",")
    ))
    .await
    .unwrap();
    let pipeline = build(&yaml(
        &db,
        "progress",
        "p.\\.*",
        "  scan.incremental.snapshot.chunk.size: 50\n  heartbeat.interval: 1s\n",
    ))
    .unwrap();
    let metrics = pipeline.metrics();
    let handle = pipeline.spawn();
    wait_for("streaming", || metrics.source_progress().streaming).await;
    let progress = metrics.source_progress();
    let table = |name: &str| {
        progress
            .snapshot
            .iter()
            .find(|t| t.table == TableId::new("p", name))
            .cloned()
            .unwrap()
    };
    let (pa, pb) = (table("a"), table("b"));
    assert_eq!((pa.rows_read, pa.done), (300, true), "{pa:?}");
    assert_eq!((pb.rows_read, pb.done), (120, true), "{pb:?}");
    assert!(
        pa.rows_estimated.is_some_and(|e| e > 0),
        "InnoDB gives an estimate: {pa:?}"
    );

    db.execute("INSERT INTO p.a VALUES (1000, 1)")
        .await
        .unwrap();
    wait_for("the change and a caught-up lag", || {
        metrics.total_changes() == 421 && metrics.source_progress().lag == Some(Duration::ZERO)
    })
    .await;
    let text = metrics.render_prometheus();
    for series in [
        "cdc_snapshot_rows_read{table=\"p.a\"} 300",
        "cdc_snapshot_table_done{table=\"p.b\"} 1",
        "cdc_snapshot_rows_estimated{table=\"p.a\"}",
        "cdc_source_streaming 1",
        "cdc_source_lag_seconds 0",
        "cdc_source_events_total{table=\"p.a\"} 301",
    ] {
        assert!(text.contains(series), "{series} missing from\n{text}");
    }
    // A table that enters the capture later (here by a rename) is reported while its rows
    // are copied, like the tables of the initial snapshot.
    db.execute("RENAME TABLE p.b TO p.c").await.unwrap();
    wait_for("the renamed table's copy in the progress", || {
        metrics
            .source_progress()
            .snapshot
            .iter()
            .any(|t| t.table == TableId::new("p", "c") && t.done && t.rows_read == 120)
    })
    .await;
    handle.stop();
    handle.join().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_that_no_longer_captures_a_table_is_refused() {
    let Some(db) = MariaDb::start_or_skip().await else {
        return;
    };
    db.execute(
        "CREATE DATABASE r; CREATE TABLE r.keep (id INT PRIMARY KEY); \
         CREATE TABLE r.gone (id INT PRIMARY KEY); INSERT INTO r.keep VALUES (1); \
         INSERT INTO r.gone VALUES (1)",
    )
    .await
    .unwrap();
    let store = Arc::new(MemoryStateStore::default());
    let handle = build_with_store(&yaml(&db, "refuse", "r.\\.*", ""), &store).spawn();
    let metrics = handle.metrics();
    wait_for("the snapshot", || {
        metrics.total_changes() == 2 && metrics.checkpoints() > 0
    })
    .await;
    handle.stop();
    handle.join().await.unwrap();

    let err = build_with_store(&yaml(&db, "refuse", "r.keep", ""), &store)
        .run(std::future::pending())
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("no longer captures: r.gone") && err.contains("--reset"),
        "{err}"
    );
    // Adding a table is no reason to refuse: a wider pattern resumes.
    let handle = build_with_store(&yaml(&db, "refuse", "r.\\.*|r.other", ""), &store).spawn();
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(!handle.is_finished(), "a wider pattern resumes");
    handle.stop();
    handle.join().await.unwrap();
}
