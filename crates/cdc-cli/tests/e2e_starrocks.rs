//! End to end into StarRocks: the kit's real MariaDB, the `cdc` pipeline (in process and as
//! the real binary, killed with SIGKILL), the StarRocks emulator (PRIMARY KEY tables, the
//! transaction interface, asynchronous schema-change jobs, injected faults). Every test
//! runs with the default delivery (exactly-once) unless a test chooses; target tables must equal the source.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::HashMap;
use std::path::Path;
use std::process::{Child, Command};
use std::time::Duration;

use cdc_testkit::{MariaDb, StarRocksEmulator, StarRocksFault, StarRocksTxnState};
use mysql_async::prelude::Queryable;

use common::{Lcg, Rows, sorted, spawn_cdc};

fn registry() -> cdc_api::ConnectorRegistry {
    let mut registry = cdc_api::ConnectorRegistry::new();
    registry
        .register_source(cdc_connector_mysql::MySqlSourceFactory)
        .register_sink(cdc_connector_starrocks::StarRocksSinkFactory);
    registry
}

/// A MariaDB -> StarRocks pipeline over every table of `shop`, with the default delivery
/// (exactly-once) unless `extra_sink` chooses.
fn pipeline_yaml(
    db: &MariaDb,
    sr: &StarRocksEmulator,
    server_id: u32,
    zone: &str,
    extra_sink: &str,
) -> String {
    format!(
        "source:\n  type: mysql\n  hostname: 127.0.0.1\n  port: {}\n  username: root\n  password: ''\n  tables: shop.\\.*\n  server-id: {server_id}\n  scan.incremental.snapshot.chunk.size: 50\n\
         sink:\n  type: starrocks\n  jdbc-url: 'jdbc:mysql://{}'\n  load-url: '{}'\n  username: root\n  password: ''\n  table.create.properties.replication_num: 1\n{extra_sink}\
         pipeline:\n  name: e2e-sr\n  schema.change.behavior: evolve\n  checkpoint.interval: 300ms\n  local-time-zone: {zone}\n  state.dir: none\n",
        db.port(),
        sr.fe_mysql_address(),
        sr.fe_http_address()
    )
}

async fn source_columns(db: &MariaDb, table: &str) -> Vec<String> {
    db.query_text(&format!(
        "SELECT COLUMN_NAME FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = 'shop' \
         AND TABLE_NAME = '{table}' ORDER BY ORDINAL_POSITION"
    ))
    .await
    .unwrap()
    .into_iter()
    .filter_map(|r| r.into_iter().next().flatten())
    .collect()
}

/// Why `table` differs between MariaDB and StarRocks, or `None` when it does not. Columns
/// are matched by name: StarRocks puts key columns first and appends added columns last.
async fn difference(db: &MariaDb, sr: &StarRocksEmulator, table: &str) -> Option<String> {
    let Some(target_columns) = sr.table_columns("shop", table) else {
        return Some(format!("{table}: not created in StarRocks yet"));
    };
    let target_columns: Vec<String> = target_columns.into_iter().map(|c| c.name).collect();
    let mut want_names = source_columns(db, table).await;
    let mut got_names = target_columns.clone();
    want_names.sort();
    got_names.sort();
    if want_names != got_names {
        return Some(format!(
            "{table}: columns differ: source {want_names:?}, StarRocks {got_names:?}"
        ));
    }
    let list: Vec<String> = target_columns.iter().map(|c| format!("`{c}`")).collect();
    let want = match db
        .query_text(&format!("SELECT {} FROM shop.{table}", list.join(", ")))
        .await
    {
        Ok(rows) => sorted(rows),
        Err(e) => return Some(format!("{table}: reading the source failed: {e}")),
    };
    let got = sorted(sr.table_rows("shop", table).unwrap_or_default());
    if want == got {
        return None;
    }
    let missing = want.iter().find(|r| !got.contains(r));
    let extra = got.iter().find(|r| !want.contains(r));
    Some(format!(
        "{table}: source has {} rows, StarRocks {}; a source row not in StarRocks: {missing:?}; \
         a StarRocks row not in the source: {extra:?}",
        want.len(),
        got.len()
    ))
}

/// Waits until every table in StarRocks equals the source (or fails with the difference);
/// fails at once if `child` exits.
async fn wait_in_sync(
    db: &MariaDb,
    sr: &StarRocksEmulator,
    tables: &[&str],
    mut child: Option<&mut Child>,
    log: Option<&Path>,
) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(120);
    loop {
        let mut diff = None;
        for table in tables {
            diff = difference(db, sr, table).await;
            if diff.is_some() {
                break;
            }
        }
        let Some(diff) = diff else { return };
        let log_text = || log.map(|l| std::fs::read_to_string(l).unwrap_or_default());
        if let Some(c) = child.as_deref_mut() {
            if let Ok(Some(status)) = c.try_wait() {
                panic!(
                    "cdc exited early with {status}; {diff}; log: {:?}",
                    log_text()
                );
            }
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "not in sync: {diff}; log: {:?}",
            log_text()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// No transaction is left begun or prepared, and no label was made visible twice.
fn assert_transactions_clean(sr: &StarRocksEmulator) {
    assert_transactions_settled(sr, 0);
}

/// As [`assert_transactions_clean`], but up to `killed` at-least-once batch transactions
/// (labels `..._b<n>`) may remain begun or prepared: a run killed between a batch's
/// `begin` and its `commit` leaves one per table in flight, invisible, which StarRocks
/// rolls back after its timeout (docs/connectors/starrocks.md); its rows are replayed.
fn assert_transactions_settled(sr: &StarRocksEmulator, killed: usize) {
    let open = sr.open_transactions();
    let batches = open.iter().filter(|t| is_batch_label(&t.label)).count();
    assert!(
        batches == open.len() && batches <= killed * 2,
        "transactions left begun or prepared: {open:?}"
    );
    let mut visible: HashMap<String, usize> = HashMap::new();
    for t in sr.transactions() {
        if t.state == StarRocksTxnState::Visible {
            *visible.entry(format!("{}/{}", t.db, t.label)).or_default() += 1;
        }
    }
    let twice: Vec<_> = visible.iter().filter(|(_, n)| **n > 1).collect();
    assert!(twice.is_empty(), "labels committed twice: {twice:?}");
    assert!(!visible.is_empty(), "nothing was committed");
}

/// An at-least-once batch label: `..._{epoch}_b{n}`.
fn is_batch_label(label: &str) -> bool {
    label
        .rsplit_once("_b")
        .is_some_and(|(_, n)| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
}

/// `(name, type, is_key)` of a target table's columns.
fn column_types(sr: &StarRocksEmulator, table: &str) -> Vec<(String, String, bool)> {
    sr.table_columns("shop", table)
        .unwrap()
        .into_iter()
        .map(|c| (c.name, c.type_text, c.is_key))
        .collect()
}

fn col(name: &str, ty: &str, key: bool) -> (String, String, bool) {
    (name.to_string(), ty.to_string(), key)
}

// ---------------------------------------------------------------------------------------
// kill -9

const KILL_SCHEMA: &str = "
CREATE DATABASE shop CHARACTER SET utf8mb4;
CREATE TABLE shop.orders (
  id BIGINT PRIMARY KEY, qty INT, note VARCHAR(32), amount DECIMAL(12,2),
  created DATETIME, flag TINYINT(1), day DATE
);
CREATE TABLE shop.ledger (
  acct BIGINT UNSIGNED, price DECIMAL(10,2), code CHAR(4), qty INT, memo VARCHAR(20),
  PRIMARY KEY (acct, price, code)
);
";

/// `ledger.acct` values sit near the top of BIGINT UNSIGNED, beyond BIGINT.
const LEDGER_BASE: u64 = 18_446_744_073_709_000_000;

fn order_row(id: u64) -> String {
    format!(
        "({id}, {}, 'note {id} 🎉', {}.{:02}, '2024-01-{:02} 10:11:{:02}', {}, '2024-02-{:02}')",
        id % 97,
        id * 3,
        id % 100,
        id % 28 + 1,
        id % 60,
        id % 2,
        id % 28 + 1
    )
}

fn ledger_row(i: u64) -> String {
    format!(
        "({}, {}.{:02}, 'c{}', {}, 'memo {i} ✓')",
        LEDGER_BASE + i,
        i % 1000,
        i % 100,
        i % 7,
        i % 50
    )
}

async fn insert_rows(db: &MariaDb, table: &str, rows: impl Iterator<Item = String>) {
    let rows: Vec<String> = rows.collect();
    db.execute(&format!(
        "INSERT INTO shop.{table} VALUES {}",
        rows.join(",")
    ))
    .await
    .unwrap();
}

/// `kill -9` of the real `cdc` process at random moments (in the snapshot and in the
/// binlog) while a writer keeps inserting, updating (keys too) and deleting: after the last
/// restart both tables equal the source, and no transaction is left prepared. `ledger`'s
/// key is BIGINT UNSIGNED + DECIMAL + CHAR, which StarRocks keys cannot be: they become
/// VARCHARs holding the exact text.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_at_random_points_loses_and_doubles_nothing() {
    kill_9_rounds("", false).await;
}

/// The same with `sink.semantic: at-least-once` (Flink CDC's default, chosen explicitly),
/// killed during the snapshot too: snapshot rows wait for their checkpoint, and PRIMARY
/// KEY upserts make streaming replays converge.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_at_least_once_converges() {
    kill_9_rounds("  sink.semantic: at-least-once\n", true).await;
}

async fn kill_9_rounds(extra_sink: &str, at_least_once: bool) {
    let Some(db) = MariaDb::start_or_skip().await else {
        return;
    };
    db.execute(KILL_SCHEMA).await.unwrap();
    insert_rows(&db, "orders", (1..2001).map(order_row)).await;
    insert_rows(&db, "ledger", (1..1001).map(ledger_row)).await;
    let sr = StarRocksEmulator::start().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("pipeline.yaml");
    std::fs::write(&file, pipeline_yaml(&db, &sr, 5620, "UTC", extra_sink)).unwrap();
    let state = dir.path().join("state");
    let log = dir.path().join("cdc.log");

    let seed_value = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(7, |d| d.as_nanos() as u64);
    println!("random seed {seed_value}");
    let mut rng = Lcg(seed_value);

    let (stop_tx, mut stop_rx) = tokio::sync::watch::channel(false);
    let mut conn = db.conn().await.unwrap();
    let writer = tokio::spawn(async move {
        let mut i = 0u64;
        while !*stop_rx.borrow_and_update() {
            i += 1;
            let sql = format!(
                "BEGIN; \
                 INSERT INTO shop.orders VALUES {}; \
                 UPDATE shop.orders SET qty = qty + 1, note = 'u{i}' WHERE id = {}; \
                 DELETE FROM shop.orders WHERE id = {}; \
                 INSERT INTO shop.ledger VALUES {}; \
                 UPDATE shop.ledger SET qty = qty + 1, memo = 'w{i}' WHERE acct = {}; \
                 UPDATE shop.ledger SET price = price + 1000 WHERE acct = {}; \
                 DELETE FROM shop.ledger WHERE acct = {}; \
                 COMMIT",
                order_row(3000 + i),
                1 + (i * 37) % 2000,
                1 + (i * 53) % 2000,
                ledger_row(2000 + i),
                LEDGER_BASE + 1 + (i * 31) % 1000,
                LEDGER_BASE + 1 + (i * 17) % 1000,
                LEDGER_BASE + 1 + (i * 41) % 1000,
            );
            conn.query_drop(sql).await.unwrap();
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        i
    });

    for round in 0..5 {
        let mut child = spawn_cdc(&file, &state, &log, &[]);
        // The first rounds die within their first second, before any checkpoint or in
        // the middle of the snapshot.
        let wait = if round < 2 {
            50 + rng.next(700)
        } else {
            300 + rng.next(2500)
        };
        tokio::time::sleep(Duration::from_millis(wait)).await;
        if let Ok(Some(status)) = child.try_wait() {
            panic!(
                "round {round}: cdc exited by itself with {status}: {}",
                std::fs::read_to_string(&log).unwrap_or_default()
            );
        }
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        println!(
            "round {round}: killed after {wait} ms, leaving {} transactions begun or prepared",
            sr.open_transactions().len()
        );
    }
    stop_tx.send(true).unwrap();
    let writes = writer.await.unwrap();
    println!("the writer made {writes} transactions");

    let mut child = spawn_cdc(&file, &state, &log, &[]);
    wait_in_sync(
        &db,
        &sr,
        &["orders", "ledger"],
        Some(&mut child),
        Some(&log),
    )
    .await;
    // SIGTERM: a clean stop with a final checkpoint, exit code 0.
    Command::new("kill")
        .arg("-TERM")
        .arg(child.id().to_string())
        .status()
        .unwrap();
    let status = child.wait().unwrap();
    let log_text = std::fs::read_to_string(&log).unwrap_or_default();
    assert!(
        status.success(),
        "cdc did not stop cleanly: {status}; log:\n{log_text}"
    );
    assert!(
        log_text.contains("resuming from checkpoint"),
        "no run resumed from a checkpoint:\n{log_text}"
    );
    assert!(!log_text.contains("panicked"), "{log_text}");
    let guarantee = if at_least_once {
        "sink delivery: at-least-once"
    } else {
        "sink delivery: exactly-once"
    };
    assert!(
        log_text.contains(guarantee),
        "the log does not say '{guarantee}':\n{log_text}"
    );
    // Each killed at-least-once run may leave its batches in flight (two tables).
    assert_transactions_settled(&sr, if at_least_once { 5 } else { 0 });
    assert_eq!(
        column_types(&sr, "ledger"),
        [
            col("acct", "VARCHAR(21)", true),
            col("price", "VARCHAR(12)", true),
            col("code", "VARCHAR(16)", true),
            col("qty", "INT", false),
            col("memo", "VARCHAR(80)", false),
        ]
    );
}

// ---------------------------------------------------------------------------------------
// every type

const TYPE_COLUMNS: &str = "
  id INT PRIMARY KEY,
  ti TINYINT, tu TINYINT UNSIGNED, b1 TINYINT(1), si SMALLINT, mi MEDIUMINT UNSIGNED, iu INT UNSIGNED,
  bi BIGINT, bu BIGINT UNSIGNED, d1 DECIMAL(12,2), d2 DECIMAL(65,30), d3 DECIMAL(38,10), f FLOAT, db DOUBLE,
  bit1 BIT(1), bit12 BIT(12), c CHAR(5), vc VARCHAR(4), tx TEXT, lat VARCHAR(10) CHARACTER SET latin1,
  gb VARCHAR(10) CHARACTER SET gbk, bn BINARY(2), vb VARBINARY(8), bl BLOB, e ENUM('red','green'),
  st SET('a','b','c'), y YEAR, dt DATE, t3 TIME(3), dt0 DATETIME, dt6 DATETIME(6), ts3 TIMESTAMP(3) NULL DEFAULT NULL,
  js JSON, g GEOMETRY, nul VARCHAR(5)
";

const TYPE_ROW: &str = "(1, -128, 255, 1, -32768, 16777215, 4294967295, -9223372036854775808, 18446744073709551615,
  -1234567890.12, 12345678901234567890123456789012345.123456789012345678901234567890,
  -1234567890123456789012345678.0123456789, 1.5, -2.25, b'1', b'101010101010', 'ab', '🎉🎉🎉🎉', 'long text',
  'café', '你好', X'0102', X'00FF00', X'10', 'green', 'a,c', 2024, '2024-02-29', '-838:59:59.000',
  '2020-07-17 18:00:22', '2020-07-17 18:00:22.123456', '2021-01-01 00:00:01.500', '{\"k\": [1, 2]}',
  ST_GeomFromText('POINT(1 1)'), '')";

/// Key columns StarRocks cannot key on as such (DECIMAL, BIGINT UNSIGNED = DECIMAL(20,0),
/// CHAR) next to one it can (DATE).
const KEYED_TABLE: &str = "CREATE TABLE shop.keyed (d DECIMAL(10,2), u BIGINT UNSIGNED, c CHAR(3), \
     day DATE, v VARCHAR(5), PRIMARY KEY (d, u, c, day))";

/// Every MariaDB type of the Doris every-type test, through snapshot and binlog, lands in a
/// StarRocks PRIMARY KEY table as Flink CDC's StarRocks sink renders it (reference sections
/// 5 and 10), with the StarRocks column types of section 5.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_type_reaches_starrocks_as_flink_cdc_renders_it() {
    let Some(db) = MariaDb::start_or_skip().await else {
        return;
    };
    let nulls = ", NULL".repeat(34);
    db.execute(&format!(
        "CREATE DATABASE shop CHARACTER SET utf8mb4; CREATE TABLE shop.snap ({TYPE_COLUMNS}); \
         CREATE TABLE shop.bin ({TYPE_COLUMNS}); INSERT INTO shop.snap VALUES {TYPE_ROW}, (2{nulls}); \
         {KEYED_TABLE}; INSERT INTO shop.keyed VALUES (-12.5, 18446744073709551615, 'ab', '2024-02-29', 'snap');"
    ))
    .await
    .unwrap();
    let sr = StarRocksEmulator::start().await.unwrap();
    let yaml = pipeline_yaml(&db, &sr, 5621, "Asia/Shanghai", "");
    let def = cdc_runtime::PipelineDefinition::from_yaml_str(&yaml, "types.yaml").unwrap();
    let handle = cdc_runtime::Pipeline::build(&def, &registry())
        .unwrap()
        .spawn();
    db.execute(&format!(
        "INSERT INTO shop.bin VALUES {TYPE_ROW}, (2{nulls}); \
         INSERT INTO shop.keyed VALUES (0.05, 0, '你', '1970-01-01', 'bin'), (1, 5, 'x', '2000-01-01', 'gone'); \
         UPDATE shop.keyed SET d = 7 WHERE v = 'bin'; DELETE FROM shop.keyed WHERE v = 'gone';"
    ))
    .await
    .unwrap();
    let keyed_want: Rows = vec![
        ["-12.50", "18446744073709551615", "ab", "2024-02-29", "snap"],
        ["7.00", "0", "你", "1970-01-01", "bin"],
    ]
    .into_iter()
    .map(|r| r.into_iter().map(|v| Some(v.to_string())).collect())
    .collect();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    let (snap, bin) = loop {
        let snap = sorted(sr.table_rows("shop", "snap").unwrap_or_default());
        let bin = sorted(sr.table_rows("shop", "bin").unwrap_or_default());
        let keyed = sorted(sr.table_rows("shop", "keyed").unwrap_or_default());
        if snap.len() == 2 && bin.len() == 2 && keyed == keyed_want {
            break (snap, bin);
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "rows did not arrive: {snap:?} {bin:?} {keyed:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    handle.stop();
    handle.join().await.unwrap();
    assert_eq!(snap, bin, "snapshot and binlog give the same target rows");
    let text: Vec<String> = snap[0]
        .iter()
        .map(|v| v.clone().unwrap_or_else(|| "NULL".into()))
        .collect();
    let expected = [
        "1",
        "-128",
        "255",
        // TINYINT(1) and BIT(1) are BOOLEAN, printed 1 / 0.
        "1",
        "-32768",
        "16777215",
        "4294967295",
        "-9223372036854775808",
        // BIGINT UNSIGNED is DECIMAL(20,0) (no LARGEINT: reference section 3 and 5).
        "18446744073709551615",
        "-1234567890.12",
        // DECIMAL(65,30) is beyond 38 digits: the exact text in a VARCHAR.
        "12345678901234567890123456789012345.123456789012345678901234567890",
        "-1234567890123456789012345678.0123456789",
        "1.5",
        "-2.25",
        "1",
        // BIT(n), BINARY, VARBINARY and BLOB: base64 of the bytes in a VARCHAR, as into a
        // Doris STRING (docs/connectors/doris.md, "How values are written"); Flink CDC has no StarRocks rendering of them.
        "Cqo=",
        "ab",
        "🎉🎉🎉🎉",
        "long text",
        "café",
        "你好",
        "AQI=",
        "AP8A",
        "EA==",
        "green",
        "a,c",
        "2024",
        "2024-02-29",
        // TIME(3) is a VARCHAR with exactly three fraction digits.
        "-838:59:59.000",
        // StarRocks DATETIME has no scale: it prints its microseconds when there are any.
        "2020-07-17 18:00:22",
        "2020-07-17 18:00:22.123456",
        // TIMESTAMP is rendered in pipeline.local-time-zone (Asia/Shanghai, UTC+8).
        "2021-01-01 08:00:01.500000",
        // MariaDB keeps JSON as the text inserted (docs/connectors/mysql.md).
        "{\"k\": [1, 2]}",
        "{\"coordinates\":[1,1],\"type\":\"Point\",\"srid\":0}",
        "",
    ];
    assert_eq!(text, expected);
    assert!(
        snap[1][1..].iter().all(Option::is_none),
        "NULLs stay NULL: {:?}",
        snap[1]
    );

    // Column types (reference section 5; k = 4 bytes a character, docs/connectors/starrocks.md).
    let types: Vec<(String, String)> = column_types(&sr, "snap")
        .into_iter()
        .map(|(name, ty, _)| (name, ty))
        .collect();
    let want_types = [
        ("id", "INT"),
        ("ti", "TINYINT"),
        ("tu", "SMALLINT"),
        ("b1", "BOOLEAN"),
        ("si", "SMALLINT"),
        ("mi", "INT"),
        ("iu", "BIGINT"),
        ("bi", "BIGINT"),
        ("bu", "DECIMAL(20,0)"),
        ("d1", "DECIMAL(12,2)"),
        // DECIMAL(p > 38) is a STRING from the source (reference section 3).
        ("d2", "VARCHAR(1048576)"),
        ("d3", "DECIMAL(38,10)"),
        ("f", "FLOAT"),
        ("db", "DOUBLE"),
        ("bit1", "BOOLEAN"),
        ("bit12", "VARCHAR(4)"),
        ("c", "CHAR(20)"),
        ("vc", "VARCHAR(16)"),
        ("tx", "VARCHAR(1048576)"),
        ("lat", "VARCHAR(40)"),
        ("gb", "VARCHAR(40)"),
        ("bn", "VARCHAR(4)"),
        ("vb", "VARCHAR(12)"),
        ("bl", "VARCHAR(1048576)"),
        ("e", "VARCHAR(1048576)"),
        ("st", "VARCHAR(1048576)"),
        ("y", "INT"),
        ("dt", "DATE"),
        ("t3", "VARCHAR(14)"),
        ("dt0", "DATETIME"),
        ("dt6", "DATETIME"),
        ("ts3", "DATETIME"),
        // MariaDB's JSON is LONGTEXT: a STRING, as in Flink CDC.
        ("js", "VARCHAR(1048576)"),
        ("g", "VARCHAR(1048576)"),
        ("nul", "VARCHAR(20)"),
    ];
    let want_types: Vec<(String, String)> = want_types
        .iter()
        .map(|(n, t)| ((*n).to_string(), (*t).to_string()))
        .collect();
    assert_eq!(types, want_types);
    assert_eq!(
        column_types(&sr, "keyed"),
        [
            col("d", "VARCHAR(12)", true),
            col("u", "VARCHAR(21)", true),
            col("c", "VARCHAR(12)", true),
            col("day", "DATE", true),
            col("v", "VARCHAR(20)", false),
        ]
    );
    assert_transactions_clean(&sr);
}

// ---------------------------------------------------------------------------------------
// schema changes and faults

/// ADD / DROP / RENAME COLUMN and MODIFY (wider VARCHAR, INT -> BIGINT, wider DECIMAL) in
/// MariaDB, mixed with row changes, reach StarRocks through its asynchronous jobs; then
/// 5xx answers, reset connections, loads slower than the socket timeout and publish
/// timeouts hit the loads while a writer keeps changing rows (and adds a column): nothing
/// is lost, nothing committed twice, nothing left prepared.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn schema_changes_and_injected_faults_during_streaming_lose_nothing() {
    let Some(db) = MariaDb::start_or_skip().await else {
        return;
    };
    let seed: Vec<String> = (1..=200)
        .map(|i| format!("({i}, 'n{i}', {i}, {i}.50, 'g')"))
        .collect();
    db.execute(&format!(
        "CREATE DATABASE shop CHARACTER SET utf8mb4; \
         CREATE TABLE shop.items (id INT PRIMARY KEY, name VARCHAR(10), qty INT, price DECIMAL(8,2), gone VARCHAR(5)); \
         INSERT INTO shop.items VALUES {};",
        seed.join(",")
    ))
    .await
    .unwrap();
    let sr = StarRocksEmulator::start().await.unwrap();
    let yaml = pipeline_yaml(
        &db,
        &sr,
        5622,
        "UTC",
        "  sink.max-retries: 20\n  sink.socket.timeout-ms: 1000\n",
    );
    let def = cdc_runtime::PipelineDefinition::from_yaml_str(&yaml, "schema.yaml").unwrap();
    let handle = cdc_runtime::Pipeline::build(&def, &registry())
        .unwrap()
        .spawn();
    wait_in_sync(&db, &sr, &["items"], None, None).await;

    // Schema changes between row changes, without waiting for StarRocks in between.
    db.execute(
        "ALTER TABLE shop.items ADD COLUMN color VARCHAR(8) AFTER name; \
         INSERT INTO shop.items VALUES (201, 'n201', 'red', 1, 1.00, 'g'); \
         UPDATE shop.items SET color = 'blue' WHERE id <= 20; \
         ALTER TABLE shop.items DROP COLUMN gone; \
         DELETE FROM shop.items WHERE id % 10 = 0; \
         ALTER TABLE shop.items RENAME COLUMN qty TO quantity; \
         UPDATE shop.items SET quantity = quantity + 100 WHERE id % 3 = 0; \
         ALTER TABLE shop.items MODIFY COLUMN name VARCHAR(40), MODIFY COLUMN quantity BIGINT, \
           MODIFY COLUMN price DECIMAL(12,2); \
         INSERT INTO shop.items (id, name, color, quantity, price) \
           VALUES (202, 'a name longer than ten ✓', 'green', 5000000000, 1234567890.25); \
         UPDATE shop.items SET name = CONCAT(name, ' now longer') WHERE id = 1;",
    )
    .await
    .unwrap();
    wait_in_sync(&db, &sr, &["items"], None, None).await;
    assert_eq!(
        column_types(&sr, "items"),
        [
            col("id", "INT", true),
            col("name", "VARCHAR(160)", false),
            col("quantity", "BIGINT", false),
            col("price", "DECIMAL(12,2)", false),
            // Added columns go last in StarRocks, as in Flink CDC.
            col("color", "VARCHAR(32)", false),
        ]
    );

    // Faults while a writer keeps changing rows.
    sr.inject(StarRocksFault::ServerError {
        status: 503,
        count: 3,
    });
    sr.inject(StarRocksFault::ResetConnection { count: 3 });
    sr.inject(StarRocksFault::Slow {
        delay: Duration::from_millis(1500),
        count: 2,
    });
    sr.inject(StarRocksFault::PublishTimeout { count: 2 });
    let (stop_tx, mut stop_rx) = tokio::sync::watch::channel(false);
    let mut conn = db.conn().await.unwrap();
    let writer = tokio::spawn(async move {
        let mut i = 0u64;
        while !*stop_rx.borrow_and_update() {
            i += 1;
            if i == 150 {
                conn.query_drop("ALTER TABLE shop.items ADD COLUMN late INT DEFAULT 7")
                    .await
                    .unwrap();
            }
            let sql = format!(
                "BEGIN; \
                 INSERT INTO shop.items (id, name, quantity, price) VALUES ({}, 'w{i}', {i}, {i}.25); \
                 UPDATE shop.items SET price = price + 1, color = 'c{}' WHERE id = {}; \
                 DELETE FROM shop.items WHERE id = {}; \
                 COMMIT",
                1000 + i,
                i % 100,
                1 + (i * 7) % 200,
                1 + (i * 13) % 200,
            );
            conn.query_drop(sql).await.unwrap();
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        i
    });
    let started = tokio::time::Instant::now();
    let deadline = started + Duration::from_secs(180);
    let mut second_wave = false;
    loop {
        let pending = sr.pending_faults();
        if pending == 0 && !second_wave {
            // A second wave, once the first is used up.
            second_wave = true;
            sr.inject(StarRocksFault::ResetConnection { count: 1 });
            sr.inject(StarRocksFault::ServerError {
                status: 500,
                count: 2,
            });
            sr.inject(StarRocksFault::Slow {
                delay: Duration::from_millis(1500),
                count: 1,
            });
        } else if pending == 0
            // The writer goes on until it made its schema change.
            && source_columns(&db, "items").await.iter().any(|c| c == "late")
        {
            break;
        }
        assert!(
            !handle.is_finished(),
            "the pipeline ended while faults were injected"
        );
        assert!(
            tokio::time::Instant::now() < deadline,
            "injected faults were not all hit: {pending} requests left"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    println!("faults used up after {:?}", started.elapsed());
    stop_tx.send(true).unwrap();
    let writes = writer.await.unwrap();
    println!("the writer made {writes} transactions");
    wait_in_sync(&db, &sr, &["items"], None, None).await;
    println!("in sync after {:?}", started.elapsed());
    // The faults show in the sink's counters (refreshed about ten times a second).
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    let stats = loop {
        let stats = handle.metrics().sink_stats();
        if stats.retries > 0 && stats.loads > 0 {
            break stats;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "sink stats: {stats:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(stats.bytes > 0 && stats.rows > 0, "{stats:?}");
    handle.stop();
    handle.join().await.unwrap();
    assert_transactions_clean(&sr);
    assert_eq!(column_types(&sr, "items")[5], col("late", "INT", false));
    // The faults were seen by the loads: some requests failed and were repeated.
    let log = sr.load_log();
    assert!(
        log.iter()
            .any(|l| l.status != "OK" && l.status != "Success")
            || log.len()
                > log
                    .iter()
                    .map(|l| &l.label)
                    .collect::<std::collections::HashSet<_>>()
                    .len(),
        "no load was retried: {log:?}"
    );
}

/// A target away for longer than the sink's own retries (`sink.max-retries`) costs the
/// time it is away, not the pipeline: the runtime restarts from the last checkpoint with a
/// backoff (`restart-strategy`) until the target is back, in both delivery modes, and the
/// table then equals the source.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_target_away_longer_than_the_retries_costs_time_not_the_pipeline() {
    let Some(db) = MariaDb::start_or_skip().await else {
        return;
    };
    db.execute(
        "CREATE DATABASE shop; CREATE TABLE shop.items (id INT PRIMARY KEY, v INT); \
         INSERT INTO shop.items VALUES (1, 1), (2, 2), (3, 3);",
    )
    .await
    .unwrap();
    let sr = StarRocksEmulator::start().await.unwrap();
    for (round, extra) in [
        "  sink.max-retries: 1\n",
        "  sink.max-retries: 1\n  sink.semantic: at-least-once\n",
    ]
    .into_iter()
    .enumerate()
    {
        let yaml = pipeline_yaml(&db, &sr, 5800 + round as u32, "UTC", extra).replace(
            "  state.dir: none\n",
            "  state.dir: none\n  restart-strategy.exponential-delay.initial-backoff: 200ms\n  restart-strategy.exponential-delay.max-backoff: 1s\n",
        );
        let def = cdc_runtime::PipelineDefinition::from_yaml_str(&yaml, "away.yaml").unwrap();
        let handle = cdc_runtime::Pipeline::build(&def, &registry())
            .unwrap()
            .spawn();
        wait_in_sync(&db, &sr, &["items"], None, None).await;
        // Restarts are for a pipeline that has a checkpoint (round 1 finds the rows of
        // round 0 already there, so it waits for its own first checkpoint).
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        while handle.metrics().checkpoints() == 0 {
            assert!(
                tokio::time::Instant::now() < deadline,
                "round {round}: no checkpoint"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }

        sr.inject(StarRocksFault::BeDown(true));
        let base = 100 * (round as i64 + 1);
        for i in 0..5 {
            db.execute(&format!(
                "INSERT INTO shop.items VALUES ({}, {i}); UPDATE shop.items SET v = v + 1 WHERE id = 1; \
                 DELETE FROM shop.items WHERE id = {};",
                base + i,
                base + i - 1
            ))
            .await
            .unwrap();
        }
        let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
        while handle.metrics().restarts() < 2 {
            if handle.is_finished() {
                let outcome = handle.join().await;
                panic!(
                    "round {round}: the pipeline stopped while the target was away: {outcome:?}"
                );
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "round {round}: no restarts while the target was away"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert!(!handle.is_finished(), "round {round}");
        sr.inject(StarRocksFault::BeDown(false));
        wait_in_sync(&db, &sr, &["items"], None, None).await;
        handle.stop();
        let summary = handle.join().await.unwrap();
        assert!(summary.restarts >= 2, "round {round}: {summary:?}");
        assert_transactions_clean(&sr);
    }
}
