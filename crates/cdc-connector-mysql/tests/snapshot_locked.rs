//! The MySQL way of taking a snapshot's position (`FLUSH TABLES t WITH READ LOCK`, start
//! the transaction, read the binlog position, unlock), forced on MariaDB, which would
//! otherwise report the position itself: under concurrent writes every change still
//! arrives exactly once and the target ends equal to the source.
//!
//! A test binary of its own: the switch is process-wide.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers may panic

#[path = "common/harness.rs"]
mod harness;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use cdc_testkit::MariaDb;
use harness::{KeyKind, TestTable};

const KINDS: [KeyKind; 4] = [
    KeyKind::Int,
    KeyKind::Text,
    KeyKind::Composite,
    KeyKind::Decimal,
];
const ROWS: i64 = 600;

async fn flushes(db: &MariaDb) -> u64 {
    let rows = db
        .query_text("SHOW GLOBAL STATUS LIKE 'Com_flush'")
        .await
        .unwrap();
    rows[0][1].as_deref().unwrap().parse().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn snapshot_positions_taken_under_a_table_lock_are_exact() {
    let Some(db) = MariaDb::start_or_skip().await else {
        return;
    };
    cdc_connector_mysql::testing::force_snapshot_lock(true);
    db.execute("CREATE DATABASE sl").await.unwrap();
    let mut ts: Vec<TestTable> = KINDS
        .iter()
        .enumerate()
        .map(|(i, k)| TestTable {
            name: format!("sl.t{i}"),
            kind: *k,
            keys: std::collections::BTreeSet::default(),
            next: 0,
        })
        .collect();
    harness::create_tables(&db, &mut ts, ROWS).await;
    let names: Vec<String> = ts.iter().map(|t| t.name.clone()).collect();
    let flushes_before = flushes(&db).await;

    let stop = Arc::new(AtomicBool::new(false));
    let writer = tokio::spawn(harness::write_randomly(
        db.url(),
        ts,
        13,
        Duration::from_millis(2),
        stop.clone(),
    ));
    // Small chunks: every chunk query runs in the table's snapshot transaction while the
    // writer changes the rows, so a position taken outside the lock shows as a lost or
    // repeated change.
    let yaml = harness::yaml(
        &db,
        "sl",
        "sl.\\.*",
        "  scan.incremental.snapshot.chunk.size: 32\n  scan.snapshot.fetch.size: 16\n  connection.pool.size: 3\n",
    );
    let handle = harness::build(&yaml).unwrap().spawn();
    harness::wait_sink_rows(
        "sl",
        KINDS.len() * ROWS as usize,
        &handle,
        Duration::from_secs(60),
    )
    .await;
    // Keep writing a little into the binlog phase.
    tokio::time::sleep(Duration::from_millis(500)).await;
    stop.store(true, Ordering::Relaxed);
    let statements = writer.await.unwrap();
    assert!(statements > 50, "the writer made only {statements} changes");
    let refs: Vec<&str> = names.iter().map(String::as_str).collect();
    harness::wait_equal(&db, "sl", &refs, Some(&handle), Duration::from_secs(30)).await;
    handle.stop();
    handle.join().await.unwrap();
    let n = harness::check_exactly_once("sl");
    assert!(n >= KINDS.len() * ROWS as usize, "{n} changes");
    // The lock path ran: one FLUSH TABLES ... WITH READ LOCK per table.
    let flushed = flushes(&db).await - flushes_before;
    assert!(
        flushed >= KINDS.len() as u64,
        "only {flushed} FLUSH statements: the lock path was not taken"
    );
}
