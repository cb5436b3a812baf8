//! `scan.snapshot.rate-limit`, `scan.snapshot.rate-limit.bytes` and `scan.binlog.rate-limit`
//! hold on a live MariaDB: never faster than the limit (the bucket's guarantee), and not
//! much slower either (the startup of the pipeline is the only other time counted).
#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers may panic

#[path = "common/harness.rs"]
mod harness;

use std::time::{Duration, Instant};

use cdc_api::TableId;
use cdc_testkit::MariaDb;

const ROWS: u64 = 30_000;

async fn table_of(db: &MariaDb, name: &str) {
    db.execute(&format!(
        "CREATE TABLE rl.{name} (id INT PRIMARY KEY, v VARCHAR(100)); \
         INSERT INTO rl.{name} SELECT seq, REPEAT('x', 100) FROM rl.seq_1_to_{ROWS}"
    ))
    .await
    .unwrap();
}

/// Runs a BATCH pipeline over `table` and returns how long it took.
async fn snapshot_time(db: &MariaDb, table: &str, limit: &str, server_id: u32) -> Duration {
    let extra = format!("  {limit}\n  server-id: {server_id}\n");
    let sink = format!("rl{server_id}");
    let yaml = harness::yaml(db, &sink, &format!("rl.{table}"), &extra).replace(
        "checkpoint.interval: 100ms",
        "checkpoint.interval: 100ms, execution.runtime-mode: BATCH",
    );
    let started = Instant::now();
    let summary = harness::build(&yaml).unwrap().spawn().join().await.unwrap();
    assert_eq!(summary.data_changes, ROWS, "{summary:?}");
    started.elapsed()
}

fn check_rate(what: &str, units: f64, took: Duration, limit: f64) {
    let rate = units / took.as_secs_f64();
    eprintln!("{what}: {rate:.0}/s in {took:?} (limit {limit:.0}/s)");
    assert!(
        rate <= limit * 1.1 && rate >= limit * 0.7,
        "{what}: {rate:.0}/s against a limit of {limit:.0}/s ({took:?})"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn snapshot_limits_hold_in_rows_and_in_bytes() {
    let Some(db) = MariaDb::start_or_skip().await else {
        return;
    };
    db.execute("CREATE DATABASE rl").await.unwrap();
    table_of(&db, "by_rows").await;
    table_of(&db, "by_bytes").await;
    // Unlimited first: the limits below must be what slows the reads, not the machine.
    let free = snapshot_time(
        &db,
        "by_rows",
        "scan.incremental.snapshot.chunk.size: 4000",
        5621,
    )
    .await;
    assert!(free < Duration::from_secs(3), "unlimited took {free:?}");

    let took = snapshot_time(
        &db,
        "by_rows",
        "scan.snapshot.rate-limit: 10000\n  scan.incremental.snapshot.chunk.size: 4000",
        5622,
    )
    .await;
    check_rate("rows", ROWS as f64, took, 10_000.0);

    // Each row is sent as 4 + 100 bytes plus the integer counted as 8: 108 per row.
    let bytes = ROWS as f64 * 108.0;
    let limit = 1_000_000.0;
    let took = snapshot_time(
        &db,
        "by_bytes",
        "scan.snapshot.rate-limit.bytes: 1000000",
        5623,
    )
    .await;
    check_rate("bytes", bytes, took, limit);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn binlog_limit_paces_a_catch_up() {
    let Some(db) = MariaDb::start_or_skip().await else {
        return;
    };
    db.execute("CREATE DATABASE rl; CREATE TABLE rl.t (id INT PRIMARY KEY, v VARCHAR(100))")
        .await
        .unwrap();
    let rows = db.query_text("SHOW MASTER STATUS").await.unwrap();
    let (file, pos) = (rows[0][0].clone().unwrap(), rows[0][1].clone().unwrap());
    db.execute(&format!(
        "INSERT INTO rl.t SELECT seq, REPEAT('y', 100) FROM rl.seq_1_to_{ROWS}"
    ))
    .await
    .unwrap();
    let extra = format!(
        "  scan.startup.mode: specific-offset\n  scan.startup.specific-offset.file: {file}\n  \
         scan.startup.specific-offset.pos: {pos}\n  scan.binlog.rate-limit: 10000\n  server-id: 5624\n"
    );
    let yaml = harness::yaml(&db, "rlbin", "rl.t", &extra);
    let started = Instant::now();
    let handle = harness::build(&yaml).unwrap().spawn();
    harness::wait_sink_rows("rlbin", ROWS as usize, &handle, Duration::from_secs(60)).await;
    let took = started.elapsed();
    handle.stop();
    handle.join().await.unwrap();
    check_rate("binlog rows", ROWS as f64, took, 10_000.0);
    assert_eq!(
        harness::sink_rows("rlbin", &TableId::new("rl", "t"))
            .unwrap()
            .len(),
        ROWS as usize
    );
}
