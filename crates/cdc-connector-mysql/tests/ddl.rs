//! DDL in the binlog: the right schema events, rows after them decode right, unparseable
//! DDL on a captured table stops with the statement, DDL on other tables is ignored.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers may panic

#[path = "common/harness.rs"]
mod harness;

use std::time::Duration;

use cdc_api::{Event, SchemaChangeEvent, TableId};
use cdc_testkit::{MariaDb, values_database};

fn schema_events(sink: &str) -> Vec<String> {
    let db = values_database(sink);
    let guard = db.lock().unwrap();
    guard
        .log
        .iter()
        .filter_map(|e| match e {
            Event::SchemaChange(c) => Some(format!("{} {}", c.kind(), c.table_id())),
            Event::DataChange(_) => None,
        })
        .collect()
}

async fn wait_for<F: Fn() -> bool>(
    what: &str,
    handle: &mut Option<cdc_runtime::PipelineHandle>,
    f: F,
) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while !f() {
        if handle
            .as_ref()
            .is_some_and(cdc_runtime::PipelineHandle::is_finished)
        {
            let outcome = handle.take().unwrap().join().await;
            panic!("pipeline ended while waiting for {what}: {outcome:?}");
        }
        if tokio::time::Instant::now() >= deadline {
            let db = values_database("ddl");
            let guard = db.lock().unwrap();
            let tables: Vec<String> = guard
                .tables
                .iter()
                .map(|(k, t)| format!("{k}: {:?}", t.sorted_text_rows()))
                .collect();
            panic!(
                "timed out waiting for {what}; schema events {:?}; tables {tables:?}",
                schema_events_of(&guard)
            );
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn schema_events_of(guard: &cdc_testkit::ValuesDatabase) -> Vec<String> {
    guard
        .log
        .iter()
        .filter_map(|e| match e {
            Event::SchemaChange(c) => Some(format!("{} {}", c.kind(), c.table_id())),
            Event::DataChange(_) => None,
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ddl_sequences_produce_schema_events_and_rows_decode() {
    let Some(db) = MariaDb::start_or_skip().await else {
        return;
    };
    db.execute(
        "CREATE DATABASE d; CREATE DATABASE other; \
         CREATE TABLE d.t (id INT PRIMARY KEY, a VARCHAR(10), b INT); \
         CREATE TABLE d.gone (id INT PRIMARY KEY); CREATE TABLE d.trunc (id INT PRIMARY KEY); \
         CREATE TABLE other.x (id INT PRIMARY KEY); \
         INSERT INTO d.t VALUES (1, 'one', 10); INSERT INTO d.trunc VALUES (1), (2);",
    )
    .await
    .unwrap();
    let yaml = harness::yaml(
        &db,
        "ddl",
        "d.\\.*",
        "  scan.binlog.newly-added-table.enabled: true\n  server-id: 5601\n",
    )
    // The source's events as they are (the default, lenient, rewrites drops and renames).
    .replace(
        "checkpoint.interval: 100ms",
        "checkpoint.interval: 100ms, schema.change.behavior: evolve",
    );
    let mut handle = Some(harness::build(&yaml).unwrap().spawn());
    let t = TableId::new("d", "t");
    wait_for("the snapshot", &mut handle, || {
        harness::sink_rows("ddl", &t).is_some_and(|r| r.len() == 1)
    })
    .await;
    db.execute(
        "ALTER TABLE d.t ADD COLUMN c INT FIRST; \
         ALTER TABLE d.t ADD COLUMN IF NOT EXISTS e VARCHAR(5) AFTER a; \
         ALTER TABLE d.t ADD COLUMN IF NOT EXISTS e VARCHAR(5); \
         INSERT INTO d.t (id, a, b, c, e) VALUES (2, 'two', 20, 200, 'ee'); \
         ALTER TABLE d.t MODIFY b BIGINT; \
         ALTER TABLE d.t CHANGE a aa VARCHAR(20); \
         ALTER TABLE d.t RENAME COLUMN aa TO a2; \
         ALTER TABLE d.t DROP COLUMN c, ADD COLUMN f DECIMAL(5,2) DEFAULT 1.5, MODIFY e VARCHAR(8); \
         ALTER TABLE d.t DROP COLUMN IF EXISTS nothing_here; \
         ALTER TABLE d.t CONVERT TO CHARACTER SET latin1; \
         INSERT INTO d.t (id, a2, b, e, f) VALUES (3, 'café', 30000000000, 'x', 2.25); \
         ALTER TABLE other.x ADD COLUMN y INT; ALTER TABLE other.x PARTITION BY HASH(id) PARTITIONS 2; ALTER ONLINE TABLE d.t ADD INDEX ix_b (b); \
         TRUNCATE TABLE d.trunc; \
         DROP TABLE IF EXISTS d.gone, d.never_existed; \
         CREATE TABLE IF NOT EXISTS d.born (id INT PRIMARY KEY, v VARCHAR(3)); \
         INSERT INTO d.born VALUES (1, 'new'); \
         RENAME TABLE d.born TO d.renamed; \
         INSERT INTO d.renamed VALUES (2, 'ren');",
    )
    .await
    .unwrap();
    let renamed = TableId::new("d", "renamed");
    wait_for("the last row", &mut handle, || {
        harness::sink_rows("ddl", &renamed).is_some_and(|r| r.len() == 2)
    })
    .await;
    let handle = handle.unwrap();
    handle.stop();
    handle.join().await.unwrap();

    let events = schema_events("ddl");
    let after_snapshot: Vec<&str> = events
        .iter()
        .map(String::as_str)
        .skip_while(|e| e.starts_with("create.table"))
        .collect();
    assert_eq!(
        after_snapshot,
        [
            "add.column d.t",
            "add.column d.t",
            "alter.column.type d.t",
            "rename.column d.t",
            "alter.column.type d.t",
            "rename.column d.t",
            "drop.column d.t",
            "add.column d.t",
            "alter.column.type d.t",
            "truncate.table d.trunc",
            "drop.table d.gone",
            "create.table d.born",
            "drop.table d.born",
            "create.table d.renamed",
        ],
        "all: {events:?}"
    );
    let rows = harness::sink_rows("ddl", &t).unwrap();
    assert_eq!(
        rows,
        [
            ["1", "one", "NULL", "10", "NULL"],
            ["2", "two", "ee", "20", "NULL"],
            ["3", "café", "x", "30000000000", "2.25"],
        ]
    );
    assert!(
        harness::sink_rows("ddl", &TableId::new("d", "trunc"))
            .unwrap()
            .is_empty()
    );
    assert!(harness::sink_rows("ddl", &TableId::new("d", "gone")).is_none());
    // RENAME TABLE is DropTable + CreateTable (there is no rename event), and the renamed
    // table's rows are read again, so the new table is complete.
    assert_eq!(
        harness::sink_rows("ddl", &renamed).unwrap(),
        [["1", "new"], ["2", "ren"]]
    );
    let db_guard = values_database("ddl");
    let guard = db_guard.lock().unwrap();
    assert!(
        guard
            .tables
            .keys()
            .all(|k| k.schema.as_deref() == Some("d")),
        "other.x is not captured"
    );
    let _ = SchemaChangeEvent::TruncateTable {
        table_id: t.clone(),
    };
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unparseable_ddl_on_a_captured_table_stops_with_the_statement() {
    let Some(db) = MariaDb::start_or_skip().await else {
        return;
    };
    db.execute("CREATE DATABASE u; CREATE TABLE u.t (id INT PRIMARY KEY, a INT)")
        .await
        .unwrap();
    let yaml = harness::yaml(&db, "unparsed", "u.\\.*", "  server-id: 5602\n");
    let mut handle = Some(harness::build(&yaml).unwrap().spawn());
    let t = TableId::new("u", "t");
    wait_for("the create", &mut handle, || {
        harness::sink_rows("unparsed", &t).is_some()
    })
    .await;
    let handle = handle.unwrap();
    // Partitioning: sqlparser does not read it.
    db.execute("ALTER TABLE u.t PARTITION BY HASH(id) PARTITIONS 2")
        .await
        .unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while !handle.is_finished() {
        assert!(tokio::time::Instant::now() < deadline, "did not stop");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let err = handle.join().await.unwrap_err().to_string();
    assert!(
        err.contains("ALTER TABLE u.t PARTITION BY HASH(id) PARTITIONS 2"),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn moving_columns_keeps_every_value_in_its_column() {
    let Some(db) = MariaDb::start_or_skip().await else {
        return;
    };
    db.execute(
        "CREATE DATABASE mv; CREATE TABLE mv.t (id INT PRIMARY KEY, a INT, b VARCHAR(10), c DATE); \
         INSERT INTO mv.t VALUES (1, 10, 'one', '2024-01-01')",
    )
    .await
    .unwrap();
    let yaml = harness::yaml(&db, "moves", "mv.\\.*", "  server-id: 5603\n").replace(
        "checkpoint.interval: 100ms",
        "checkpoint.interval: 100ms, schema.change.behavior: evolve",
    );
    let mut handle = Some(harness::build(&yaml).unwrap().spawn());
    let t = TableId::new("mv", "t");
    wait_for("the snapshot", &mut handle, || {
        harness::sink_rows("moves", &t).is_some_and(|r| r.len() == 1)
    })
    .await;
    db.execute(
        "ALTER TABLE mv.t MODIFY b VARCHAR(10) FIRST; \
         INSERT INTO mv.t (id, a, b, c) VALUES (2, 20, 'two', '2024-01-02'); \
         ALTER TABLE mv.t CHANGE a a2 BIGINT AFTER c; \
         INSERT INTO mv.t (id, a2, b, c) VALUES (3, 30, 'three', '2024-01-03'); \
         UPDATE mv.t SET b = 'uno', a2 = 11 WHERE id = 1; \
         ALTER TABLE mv.t MODIFY c DATE AFTER id, MODIFY b VARCHAR(12) AFTER a2; \
         INSERT INTO mv.t (id, a2, b, c) VALUES (4, 40, 'four', '2024-01-04');",
    )
    .await
    .unwrap();
    wait_for("the last row", &mut handle, || {
        harness::sink_rows("moves", &t).is_some_and(|r| r.len() == 4)
    })
    .await;
    let handle = handle.unwrap();
    handle.stop();
    handle.join().await.unwrap();
    // The target keeps its column order (id, a2, b, c after the rename) and every value
    // lands in its own column whatever the source order was when it was written.
    assert_eq!(
        harness::sink_rows("moves", &t).unwrap(),
        [
            ["1", "11", "uno", "2024-01-01"],
            ["2", "20", "two", "2024-01-02"],
            ["3", "30", "three", "2024-01-03"],
            ["4", "40", "four", "2024-01-04"],
        ]
    );
    let source: Vec<String> = db
        .query_text("SELECT COLUMN_NAME FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = 'mv' ORDER BY ORDINAL_POSITION")
        .await
        .unwrap()
        .into_iter()
        .map(|r| r[0].clone().unwrap())
        .collect();
    assert_eq!(source, ["id", "c", "a2", "b"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_renamed_table_arrives_complete_and_exactly_once_across_a_restart() {
    let Some(db) = MariaDb::start_or_skip().await else {
        return;
    };
    let rows: Vec<String> = (1..=3000).map(|i| format!("({i}, 0)")).collect();
    db.execute(&format!(
        "CREATE DATABASE rn; CREATE TABLE rn.a (id INT PRIMARY KEY, v INT); INSERT INTO rn.a VALUES {}",
        rows.join(",")
    ))
    .await
    .unwrap();
    let yaml = harness::yaml(
        &db,
        "rename",
        "rn.\\.*",
        "  server-id: 5604\n  scan.incremental.snapshot.chunk.size: 100\n",
    )
    .replace(
        "checkpoint.interval: 100ms",
        "checkpoint.interval: 100ms, schema.change.behavior: evolve",
    );
    let store = std::sync::Arc::new(cdc_runtime::MemoryStateStore::default());
    let a = TableId::new("rn", "a");
    let mut handle = Some(harness::build_with_store(&yaml, &store).spawn());
    wait_for("the snapshot", &mut handle, || {
        harness::sink_rows("rename", &a).is_some_and(|r| r.len() == 3000)
    })
    .await;
    // Rename, then change the renamed table at once: the changes race the copy of its rows.
    db.execute(
        "RENAME TABLE rn.a TO rn.b; \
         UPDATE rn.b SET v = v + 1 WHERE id % 3 = 0; DELETE FROM rn.b WHERE id % 7 = 0; \
         INSERT INTO rn.b VALUES (5000, 5);",
    )
    .await
    .unwrap();
    // Stop while the copy may still run: the offset keeps the table pending.
    tokio::time::sleep(Duration::from_millis(150)).await;
    let first = handle.take().unwrap();
    first.stop();
    first.join().await.unwrap();
    db.execute("UPDATE rn.b SET v = v + 10 WHERE id % 5 = 0")
        .await
        .unwrap();
    let second = harness::build_with_store(&yaml, &store).spawn();
    harness::wait_equal(
        &db,
        "rename",
        &["rn.b"],
        Some(&second),
        Duration::from_secs(60),
    )
    .await;
    second.stop();
    second.join().await.unwrap();
    assert!(
        harness::sink_rows("rename", &a).is_none(),
        "the old table is dropped (evolve)"
    );
    assert!(harness::check_exactly_once("rename") > 3000);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alter_table_rename_moves_tables_in_and_out_of_the_capture() {
    let Some(db) = MariaDb::start_or_skip().await else {
        return;
    };
    db.execute(
        "CREATE DATABASE ar; CREATE DATABASE ar_out; \
         CREATE TABLE ar.a (id INT PRIMARY KEY, v VARCHAR(10)); \
         INSERT INTO ar.a VALUES (1, 'one'), (2, 'two'); \
         CREATE TABLE ar.leaving (id INT PRIMARY KEY); INSERT INTO ar.leaving VALUES (1); \
         CREATE TABLE ar_out.arriving (id INT PRIMARY KEY, n INT); \
         INSERT INTO ar_out.arriving VALUES (7, 70), (8, 80);",
    )
    .await
    .unwrap();
    let yaml = harness::yaml(
        &db,
        "alter_rename",
        "ar.\\.*",
        // A table renamed into the capture is new to it.
        "  server-id: 5605\n  scan.binlog.newly-added-table.enabled: true\n",
    )
    .replace(
        "checkpoint.interval: 100ms",
        "checkpoint.interval: 100ms, schema.change.behavior: evolve",
    );
    let mut handle = Some(harness::build(&yaml).unwrap().spawn());
    let a = TableId::new("ar", "a");
    wait_for("the snapshot", &mut handle, || {
        harness::sink_rows("alter_rename", &a).is_some_and(|r| r.len() == 2)
    })
    .await;
    db.execute(
        // Other clauses and the rename in one statement; `RENAME AS`, `RENAME` without TO,
        // a rename out of the captured database and one into it.
        "ALTER TABLE ar.a ADD COLUMN w INT DEFAULT 5, RENAME TO ar.b; \
         INSERT INTO ar.b VALUES (3, 'three', 6); \
         ALTER TABLE ar.b RENAME AS ar.c; UPDATE ar.c SET v = 'uno' WHERE id = 1; \
         ALTER TABLE ar.leaving RENAME ar_out.left_; \
         ALTER TABLE ar_out.arriving RENAME TO ar.arrived; \
         INSERT INTO ar.arrived VALUES (9, 90); \
         ALTER TABLE ar.c RENAME TO ar.c;",
    )
    .await
    .unwrap();
    let handle = handle.take().unwrap();
    harness::wait_equal(
        &db,
        "alter_rename",
        &["ar.c", "ar.arrived"],
        Some(&handle),
        Duration::from_secs(60),
    )
    .await;
    handle.stop();
    handle.join().await.unwrap();
    assert_eq!(
        harness::sink_rows("alter_rename", &TableId::new("ar", "c")).unwrap(),
        [["1", "uno", "5"], ["2", "two", "5"], ["3", "three", "6"]]
    );
    for gone in ["a", "b", "leaving"] {
        assert!(
            harness::sink_rows("alter_rename", &TableId::new("ar", gone)).is_none(),
            "ar.{gone} is dropped from the target"
        );
    }
    assert!(harness::sink_rows("alter_rename", &TableId::new("ar_out", "left_")).is_none());
    harness::check_exactly_once("alter_rename");
}
