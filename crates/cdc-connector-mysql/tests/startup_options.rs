//! Options that were once accepted and ignored, now with their documented effect on a live
//! MariaDB: `skip-events` / `skip-rows` with Debezium's counting, `timestamp` startup that
//! never reads the files before the timestamp, `execution.runtime-mode: BATCH`, and the
//! `debezium.*` keys that are translated (`skipped.operations`, `column.exclude.list`)
//! with `metadata.list`'s `table_name`, `database_name`, `row_kind`.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers may panic

#[path = "common/harness.rs"]
mod harness;

use std::time::Duration;

use cdc_api::{Event, SchemaChangeEvent, TableId};
use cdc_testkit::{MariaDb, values_database};

async fn master_position(db: &MariaDb) -> (String, u64) {
    let rows = db.query_text("SHOW MASTER STATUS").await.unwrap();
    let row = &rows[0];
    (
        row[0].clone().unwrap(),
        row[1].clone().unwrap().parse().unwrap(),
    )
}

async fn wait_rows(sink: &str, table: &TableId, want: &[Vec<String>], what: &str) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let got = harness::sink_rows(sink, table).unwrap_or_default();
        if got == want {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{what}: sink holds {got:?}, expected {want:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn ids(ids: &[i64]) -> Vec<Vec<String>> {
    ids.iter().map(|i| vec![i.to_string()]).collect()
}

/// A Flink CDC offset's `skip-events` counts the events of the transaction at the offset
/// from its opening one (MariaDB's GTID event), table maps included; `skip-rows` then
/// skips rows of the next rows event only.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn skip_events_and_skip_rows_count_as_debezium_does() {
    let Some(db) = MariaDb::start_or_skip().await else {
        return;
    };
    db.execute("CREATE DATABASE s; CREATE TABLE s.t (id INT PRIMARY KEY)")
        .await
        .unwrap();
    let (file, pos) = master_position(&db).await;
    // Events: GTID (1), table map (2), rows 1-2 (3), table map (4), rows 3-5 (5), table
    // map (6), row 6 (7), XID. Skipping 3 events leaves rows 3-5, of which skip-rows 1
    // drops row 3.
    db.execute(
        "BEGIN; INSERT INTO s.t VALUES (1), (2); INSERT INTO s.t VALUES (3), (4), (5); \
         INSERT INTO s.t VALUES (6); COMMIT; INSERT INTO s.t VALUES (7)",
    )
    .await
    .unwrap();
    let extra = format!(
        "  scan.startup.mode: specific-offset\n  scan.startup.specific-offset.file: {file}\n  \
         scan.startup.specific-offset.pos: {pos}\n  scan.startup.specific-offset.skip-events: 3\n  \
         scan.startup.specific-offset.skip-rows: 1\n  server-id: 5611\n"
    );
    let yaml = harness::yaml(&db, "skip", "s.t", &extra);
    let handle = harness::build(&yaml).unwrap().spawn();
    wait_rows("skip", &TableId::new("s", "t"), &ids(&[4, 5, 6, 7]), "skip").await;
    handle.stop();
    handle.join().await.unwrap();
}

/// The binlog file the reader starts in is found by the time its files opened: an older
/// file whose middle is corrupt is never read (reading it would stop on its checksum).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn timestamp_startup_skips_older_files_without_reading_them() {
    let Some(db) = MariaDb::start_or_skip().await else {
        return;
    };
    db.execute(
        "CREATE DATABASE ts; CREATE TABLE ts.t (id INT PRIMARY KEY, v VARCHAR(40)); \
         FLUSH BINARY LOGS; INSERT INTO ts.t VALUES (1, 'MARKER-IN-AN-OLDER-BINLOG-FILE')",
    )
    .await
    .unwrap();
    tokio::time::sleep(Duration::from_millis(1200)).await;
    db.execute("FLUSH BINARY LOGS; INSERT INTO ts.t VALUES (2, 'before')")
        .await
        .unwrap();
    // Binlog timestamps are whole seconds: leave a second on either side.
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let target_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis();
    tokio::time::sleep(Duration::from_millis(1200)).await;
    db.execute(
        "INSERT INTO ts.t VALUES (3, 'after'); FLUSH BINARY LOGS; INSERT INTO ts.t VALUES (4, 'later')",
    )
    .await
    .unwrap();
    let binlogs: Vec<String> = db
        .query_text("SHOW BINARY LOGS")
        .await
        .unwrap()
        .into_iter()
        .filter_map(|r| r[0].clone())
        .collect();
    corrupt_marker(&db, &binlogs, b"MARKER-IN-AN-OLDER-BINLOG-FILE");

    let extra = format!(
        "  scan.startup.mode: timestamp\n  scan.startup.timestamp-millis: {target_ms}\n  server-id: 5612\n"
    );
    let yaml = harness::yaml(&db, "tsstart", "ts.t", &extra);
    let handle = harness::build(&yaml).unwrap().spawn();
    let want = vec![
        vec!["3".to_string(), "after".to_string()],
        vec!["4".to_string(), "later".to_string()],
    ];
    wait_rows(
        "tsstart",
        &TableId::new("ts", "t"),
        &want,
        "timestamp start",
    )
    .await;
    assert!(!handle.is_finished(), "the pipeline stopped");
    handle.stop();
    handle.join().await.unwrap();
}

/// Overwrites `marker` in whichever binlog file holds it, so that its event no longer
/// matches its checksum.
fn corrupt_marker(db: &MariaDb, binlogs: &[String], marker: &[u8]) {
    let mut hits = 0;
    for name in binlogs {
        let path = db.data_dir().join(name);
        let Ok(mut bytes) = std::fs::read(&path) else {
            continue;
        };
        if let Some(at) = bytes.windows(marker.len()).position(|w| w == marker) {
            bytes[at..at + marker.len()].fill(b'X');
            std::fs::write(&path, bytes).unwrap();
            hits += 1;
        }
    }
    assert_eq!(hits, 1, "the marker should be in exactly one binlog file");
}

/// BATCH: the snapshot, then the pipeline ends by itself after its final commit.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batch_mode_reads_the_snapshot_and_ends() {
    let Some(db) = MariaDb::start_or_skip().await else {
        return;
    };
    db.execute(
        "CREATE DATABASE b; CREATE TABLE b.t (id INT PRIMARY KEY); \
         INSERT INTO b.t VALUES (1), (2), (3)",
    )
    .await
    .unwrap();
    let batch = |extra: &str| {
        harness::yaml(&db, "batch", "b.t", extra).replace(
            "checkpoint.interval: 100ms",
            "checkpoint.interval: 100ms, execution.runtime-mode: BATCH",
        )
    };
    let handle = harness::build(&batch("  server-id: 5613\n"))
        .unwrap()
        .spawn();
    let summary = tokio::time::timeout(Duration::from_secs(60), handle.join())
        .await
        .expect("a BATCH pipeline ends by itself")
        .unwrap();
    assert_eq!(summary.data_changes, 3, "{summary:?}");
    assert_eq!(
        harness::sink_rows("batch", &TableId::new("b", "t")).unwrap(),
        ids(&[1, 2, 3])
    );
    // A startup mode that cannot end is refused, as Flink CDC refuses it.
    let Err(err) = harness::build(&batch("  scan.startup.mode: initial\n")) else {
        panic!("initial with BATCH is refused");
    };
    let err = err.to_string();
    assert!(
        err.contains("BATCH") && err.contains("scan.startup.mode"),
        "{err}"
    );
}

/// `debezium.skipped.operations`, `debezium.column.exclude.list` and `metadata.list`
/// through snapshot and binlog.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn debezium_keys_and_metadata_take_effect() {
    let Some(db) = MariaDb::start_or_skip().await else {
        return;
    };
    db.execute(
        "CREATE DATABASE dz; CREATE TABLE dz.t (id INT PRIMARY KEY, secret VARCHAR(10), a INT); \
         INSERT INTO dz.t VALUES (1, 'pw1', 10), (2, 'pw2', 20)",
    )
    .await
    .unwrap();
    let extra = "  server-id: 5614\n  debezium.skipped.operations: d,t\n  \
                 debezium.column.exclude.list: dz\\.t\\.secret.*\n  \
                 metadata.list: table_name,database_name,row_kind\n";
    let yaml = harness::yaml(&db, "dbz", "dz.t", extra);
    let handle = harness::build(&yaml).unwrap().spawn();
    let t = TableId::new("dz", "t");
    let row = |id: i64, a: i64| vec![id.to_string(), a.to_string()];
    wait_rows("dbz", &t, &[row(1, 10), row(2, 20)], "snapshot").await;
    db.execute(
        "INSERT INTO dz.t VALUES (3, 'pw3', 30); UPDATE dz.t SET a = 11, secret = 'x' WHERE id = 1; \
         DELETE FROM dz.t WHERE id = 2; ALTER TABLE dz.t ADD COLUMN secret2 INT, ADD COLUMN b INT; \
         TRUNCATE TABLE dz.t; INSERT INTO dz.t VALUES (4, 'pw4', 40, 7, 8)",
    )
    .await
    .unwrap();
    let row3 = |id: i64, a: i64, b: &str| vec![id.to_string(), a.to_string(), b.to_string()];
    // The delete and the truncate are skipped; `secret` and `secret2` never arrive.
    wait_rows(
        "dbz",
        &t,
        &[
            row3(1, 11, "NULL"),
            row3(2, 20, "NULL"),
            row3(3, 30, "NULL"),
            row3(4, 40, "8"),
        ],
        "binlog",
    )
    .await;
    handle.stop();
    handle.join().await.unwrap();
    let values = values_database("dbz");
    let guard = values.lock().unwrap();
    let mut kinds = Vec::new();
    for event in &guard.log {
        match event {
            Event::DataChange(d) => {
                assert_eq!(d.meta.get("table_name").map(String::as_str), Some("t"));
                assert_eq!(d.meta.get("database_name").map(String::as_str), Some("dz"));
                kinds.push(d.meta.get("row_kind").cloned().unwrap_or_default());
            }
            Event::SchemaChange(SchemaChangeEvent::CreateTable { schema, .. }) => {
                assert!(schema.column("secret").is_none(), "{schema:?}");
            }
            Event::SchemaChange(SchemaChangeEvent::AddColumn { columns, .. }) => {
                let names: Vec<&str> = columns.iter().map(|(c, _)| c.name.as_str()).collect();
                assert_eq!(names, ["b"]);
            }
            Event::SchemaChange(other) => {
                assert!(
                    !matches!(other, SchemaChangeEvent::TruncateTable { .. }),
                    "{other:?}"
                );
            }
        }
    }
    assert_eq!(kinds, ["+I", "+I", "+I", "+U", "+I"]);
}
