//! End to end: the kit's real MariaDB, the `cdc` pipeline (in process and as the real
//! binary), the Doris and StarRocks emulators. Target tables must equal the source.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::process::{Child, Command};
use std::time::Duration;

use common::{Lcg, sorted, spawn_cdc};

use cdc_testkit::{DorisEmulator, MariaDb, TableModel};

const SCHEMA: &str = "
CREATE DATABASE shop CHARACTER SET utf8mb4;
CREATE TABLE shop.orders (
  id BIGINT PRIMARY KEY, qty INT, note VARCHAR(32), amount DECIMAL(12,2),
  created DATETIME(3), flag TINYINT(1), day DATE
) COMMENT 'orders';
CREATE TABLE shop.audit (at DATETIME, msg VARCHAR(50), n INT);
";

fn order_row(id: u64) -> String {
    format!(
        "({id}, {}, 'note {id} 🎉', {}.{:02}, '2024-01-{:02} 10:11:12.{:03}', {}, '2024-02-{:02}')",
        id % 97,
        id * 3,
        id % 100,
        id % 28 + 1,
        id % 1000,
        id % 2,
        id % 28 + 1
    )
}

async fn seed(db: &MariaDb, orders: std::ops::Range<u64>, audits: std::ops::Range<u64>) {
    let rows: Vec<String> = orders.map(order_row).collect();
    if !rows.is_empty() {
        db.execute(&format!(
            "INSERT INTO shop.orders VALUES {}",
            rows.join(",")
        ))
        .await
        .unwrap();
    }
    let rows: Vec<String> = audits
        .map(|i| format!("('2024-03-01 00:00:{:02}', 'event {i}', {i})", i % 60))
        .collect();
    if !rows.is_empty() {
        db.execute(&format!("INSERT INTO shop.audit VALUES {}", rows.join(",")))
            .await
            .unwrap();
    }
    // Fresh row estimates: the source splits shop.orders (2000 rows, chunks of 50) into
    // key ranges read in parallel, so the kill -9 test lands inside them too.
    db.execute("ANALYZE TABLE shop.orders, shop.audit")
        .await
        .unwrap();
}

async fn source_rows(db: &MariaDb, table: &str) -> Vec<Vec<Option<String>>> {
    sorted(
        db.query_text(&format!("SELECT * FROM shop.{table}"))
            .await
            .unwrap(),
    )
}

/// Waits until every table in Doris equals the source (or fails with the difference).
async fn wait_in_sync(
    db: &MariaDb,
    doris: &DorisEmulator,
    tables: &[&str],
    child: Option<&mut Child>,
) {
    wait_until_equal(db, |t| doris.table_rows("shop", t), tables, child).await;
}

/// Waits until `target(table)` equals the source for every table.
async fn wait_until_equal(
    db: &MariaDb,
    target: impl Fn(&str) -> Option<Vec<Vec<Option<String>>>>,
    tables: &[&str],
    child: Option<&mut Child>,
) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(90);
    let mut child = child;
    loop {
        let mut diff = None;
        for table in tables {
            let want = source_rows(db, table).await;
            let got = sorted(target(table).unwrap_or_default());
            if want != got {
                diff = Some(format!(
                    "{table}: source has {} rows, doris {}; first source row {:?}, first doris row {:?}",
                    want.len(),
                    got.len(),
                    want.first(),
                    got.first()
                ));
                break;
            }
        }
        let Some(diff) = diff else { return };
        if let Some(c) = child.as_deref_mut() {
            if let Ok(Some(status)) = c.try_wait() {
                panic!("cdc exited early with {status}; {diff}");
            }
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "not in sync: {diff}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn pipeline_yaml(db: &MariaDb, doris: &DorisEmulator, extra_sink: &str) -> String {
    format!(
        "source:\n  type: mysql\n  hostname: 127.0.0.1\n  port: {}\n  username: root\n  password: ''\n  tables: shop.\\.*\n  server-id: 5600\n  scan.incremental.snapshot.chunk.size: 50\n\
         sink:\n  type: doris\n  fenodes: {}\n  username: root\n  password: ''\n  table.create.properties.replication_num: 1\n{extra_sink}\
         pipeline:\n  name: e2e\n  schema.change.behavior: evolve\n  checkpoint.interval: 300ms\n  local-time-zone: UTC\n  state.dir: none\n",
        db.port(),
        doris.fe_address()
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn snapshot_then_binlog_into_unique_and_duplicate_tables() {
    let Some(db) = MariaDb::start_or_skip().await else {
        return;
    };
    db.execute(SCHEMA).await.unwrap();
    seed(&db, 1..301, 0..40).await;
    let doris = DorisEmulator::start().await.unwrap();
    let yaml = pipeline_yaml(&db, &doris, "  sink.enable-2pc: true\n");
    let def = cdc_runtime::PipelineDefinition::from_yaml_str(&yaml, "e2e.yaml").unwrap();
    let mut registry = cdc_testkit::test_registry();
    registry
        .register_source(cdc_connector_mysql::MySqlSourceFactory)
        .register_sink(cdc_connector_doris::DorisSinkFactory);
    let handle = cdc_runtime::Pipeline::build(&def, &registry)
        .unwrap()
        .spawn();

    wait_in_sync(&db, &doris, &["orders", "audit"], None).await;
    assert_eq!(
        doris.table_model("shop", "orders"),
        Some(TableModel::Unique)
    );
    assert_eq!(
        doris.table_model("shop", "audit"),
        Some(TableModel::Duplicate)
    );

    // The binlog: inserts, updates (also of the key), deletes, a schema change, more rows.
    seed(&db, 301..351, 40..60).await;
    db.execute(
        "UPDATE shop.orders SET qty = qty + 1000, note = NULL WHERE id % 7 = 0; \
         UPDATE shop.orders SET id = id + 10000 WHERE id = 5; \
         DELETE FROM shop.orders WHERE id % 11 = 0; \
         BEGIN; INSERT INTO shop.audit VALUES ('2024-03-02 00:00:00', '', NULL); \
         DELETE FROM shop.orders WHERE id = 1; COMMIT;",
    )
    .await
    .unwrap();
    wait_in_sync(&db, &doris, &["orders", "audit"], None).await;
    db.execute(
        "ALTER TABLE shop.orders ADD COLUMN extra VARCHAR(10) AFTER qty; \
         INSERT INTO shop.orders (id, qty, extra, note) VALUES (9001, 1, 'x', 'after alter'); \
         UPDATE shop.orders SET extra = 'y' WHERE id = 2;",
    )
    .await
    .unwrap();
    wait_in_sync(&db, &doris, &["orders", "audit"], None).await;
    let columns: Vec<String> = doris
        .table_columns("shop", "orders")
        .unwrap()
        .into_iter()
        .map(|c| c.name)
        .collect();
    assert_eq!(columns[..3], ["id", "qty", "extra"]);

    // The sink's counters reach the pipeline's metrics (refreshed about ten times a second).
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let stats = handle.metrics().sink_stats();
        if stats.rows >= 390 {
            assert!(stats.loads > 0 && stats.bytes > stats.rows, "{stats:?}");
            assert!(stats.load_time > Duration::ZERO && stats.last_load_time.is_some());
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "sink stats: {stats:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let text = handle.metrics().render_prometheus();
    assert!(text.contains("cdc_sink_loads_total"), "{text}");

    handle.stop();
    let summary = handle.join().await.unwrap();
    assert!(summary.checkpoints > 0);
}

/// `kill -9` of the real `cdc` process at random moments, from its first second on, while
/// the source keeps inserting, updating and deleting (also during the snapshot), with
/// default sink options (exactly-once): after the last restart every table, the DUPLICATE
/// one too, equals the source.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_at_random_points_loses_and_doubles_nothing() {
    kill_9_rounds("", Delivery::ExactlyOnce).await;
}

/// The same in at-least-once batch mode (Flink CDC's default, chosen explicitly), killed
/// during the snapshot too: the UNIQUE table equals the source (no row the source deleted
/// stays: snapshot rows wait for their checkpoint), the DUPLICATE one holds every source
/// row (a streaming replay may repeat some, as documented).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_at_least_once_converges() {
    kill_9_rounds("  sink.enable.batch-mode: true\n", Delivery::AtLeastOnce).await;
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Delivery {
    ExactlyOnce,
    AtLeastOnce,
}

async fn kill_9_rounds(extra_sink: &str, delivery: Delivery) {
    let Some(db) = MariaDb::start_or_skip().await else {
        return;
    };
    db.execute(SCHEMA).await.unwrap();
    seed(&db, 1..2001, 0..500).await;
    let doris = DorisEmulator::start().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("pipeline.yaml");
    std::fs::write(&file, pipeline_yaml(&db, &doris, extra_sink)).unwrap();
    let state = dir.path().join("state");
    let log = dir.path().join("cdc.log");

    let seed_value = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(7, |d| d.as_nanos() as u64);
    println!("random seed {seed_value}");
    let mut rng = Lcg(seed_value);

    // A writer that keeps changing both tables.
    let (stop_tx, mut stop_rx) = tokio::sync::watch::channel(false);
    let url = db.port();
    let writer = tokio::spawn(async move {
        let pool = mysql_async::Pool::new(
            mysql_async::OptsBuilder::default()
                .ip_or_hostname("127.0.0.1")
                .tcp_port(url)
                .user(Some("root")),
        );
        let mut conn = pool.get_conn().await.unwrap();
        let mut i = 0u64;
        loop {
            if *stop_rx.borrow_and_update() {
                break;
            }
            i += 1;
            let id = 3000 + i;
            let sql = format!(
                "BEGIN; INSERT INTO shop.orders VALUES {}; UPDATE shop.orders SET qty = qty + 1 WHERE id = {}; \
                 DELETE FROM shop.orders WHERE id = {}; INSERT INTO shop.audit VALUES ('2024-04-01 00:00:00', 'w{i}', {i}); COMMIT",
                order_row(id),
                1 + (i * 37) % 2000,
                1 + (i * 53) % 2000,
            );
            mysql_async::prelude::Queryable::query_drop(&mut conn, sql)
                .await
                .unwrap();
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
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
        println!("round {round}: killed after {wait} ms");
    }
    stop_tx.send(true).unwrap();
    writer.await.unwrap();

    let mut child = spawn_cdc(&file, &state, &log, &[]);
    match delivery {
        Delivery::ExactlyOnce => {
            wait_in_sync(&db, &doris, &["orders", "audit"], Some(&mut child)).await;
        }
        Delivery::AtLeastOnce => {
            wait_in_sync(&db, &doris, &["orders"], Some(&mut child)).await;
            // Every source row is there; a replayed insert may be there twice.
            let distinct = |rows: Vec<Vec<Option<String>>>| {
                let mut rows = sorted(rows);
                rows.dedup();
                rows
            };
            let want = distinct(source_rows(&db, "audit").await);
            let got = distinct(doris.table_rows("shop", "audit").unwrap_or_default());
            assert_eq!(want, got, "shop.audit differs beyond duplicates");
        }
    }
    // SIGTERM: a clean stop with a final checkpoint, exit code 0.
    Command::new("kill")
        .arg("-TERM")
        .arg(child.id().to_string())
        .status()
        .unwrap();
    let status = child.wait().unwrap();
    assert!(
        status.success(),
        "cdc did not stop cleanly: {status}; log:\n{}",
        std::fs::read_to_string(&log).unwrap_or_default()
    );
    let log_text = std::fs::read_to_string(&log).unwrap_or_default();
    assert!(
        log_text.contains("resuming from checkpoint"),
        "no run resumed from a checkpoint:\n{log_text}"
    );
    assert!(!log_text.contains("panicked"), "{log_text}");
    let guarantee = match delivery {
        Delivery::ExactlyOnce => "sink delivery: exactly-once",
        Delivery::AtLeastOnce => "sink delivery: at-least-once",
    };
    assert!(
        log_text.contains(guarantee),
        "the log does not say '{guarantee}':\n{log_text}"
    );
    if delivery == Delivery::ExactlyOnce {
        assert!(
            log_text.contains("reading the table in parallel key ranges"),
            "shop.orders was not split into parallel key ranges:\n{log_text}"
        );
    }
    let pending: Vec<_> = doris
        .transactions()
        .into_iter()
        .filter(|t| matches!(t.state, cdc_testkit::TxnState::PreCommitted))
        .collect();
    assert!(
        pending.is_empty(),
        "pre-committed transactions left behind: {pending:?}"
    );
}

/// The same path into StarRocks (exactly-once through the transaction interface): a
/// PRIMARY KEY table equals its source after the snapshot and the binlog.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mariadb_to_starrocks_snapshot_then_binlog() {
    let Some(db) = MariaDb::start_or_skip().await else {
        return;
    };
    db.execute(
        "CREATE DATABASE shop CHARACTER SET utf8mb4; \
         CREATE TABLE shop.orders (id BIGINT PRIMARY KEY, qty INT, note VARCHAR(32), amount DECIMAL(12,2), day DATE, flag TINYINT(1))",
    )
    .await
    .unwrap();
    let rows: Vec<String> = (1..=200)
        .map(|i| {
            format!(
                "({i}, {}, 'note {i} ✨', {i}.{:02}, '2024-02-{:02}', {})",
                i % 7,
                i % 100,
                i % 28 + 1,
                i % 2
            )
        })
        .collect();
    db.execute(&format!(
        "INSERT INTO shop.orders VALUES {}",
        rows.join(",")
    ))
    .await
    .unwrap();
    let sr = cdc_testkit::StarRocksEmulator::start().await.unwrap();
    let yaml = format!(
        "source: {{type: mysql, hostname: 127.0.0.1, port: {}, username: root, password: '', tables: shop.orders, server-id: 5610}}\n\
         sink: {{type: starrocks, jdbc-url: 'jdbc:mysql://{}', load-url: '{}', username: root, password: '', sink.semantic: exactly-once, table.create.properties.replication_num: 1}}\n\
         pipeline: {{name: e2e-sr, schema.change.behavior: evolve, checkpoint.interval: 300ms, state.dir: none}}\n",
        db.port(),
        sr.fe_mysql_address(),
        sr.fe_http_address()
    );
    let def = cdc_runtime::PipelineDefinition::from_yaml_str(&yaml, "e2e-sr.yaml").unwrap();
    let mut registry = cdc_api::ConnectorRegistry::new();
    registry
        .register_source(cdc_connector_mysql::MySqlSourceFactory)
        .register_sink(cdc_connector_starrocks::StarRocksSinkFactory);
    let handle = cdc_runtime::Pipeline::build(&def, &registry)
        .unwrap()
        .spawn();
    wait_until_equal(&db, |t| sr.table_rows("shop", t), &["orders"], None).await;
    db.execute(
        "INSERT INTO shop.orders VALUES (500, 1, NULL, 0.50, '2024-03-01', 1); \
         UPDATE shop.orders SET qty = qty + 10 WHERE id % 3 = 0; DELETE FROM shop.orders WHERE id % 10 = 0;",
    )
    .await
    .unwrap();
    wait_until_equal(&db, |t| sr.table_rows("shop", t), &["orders"], None).await;
    handle.stop();
    handle.join().await.unwrap();
}

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

/// Every MariaDB type, through snapshot and binlog, lands in Doris as Flink CDC renders it
/// (docs/connectors/doris.md, "How values are written").
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_type_reaches_doris_as_flink_cdc_renders_it() {
    let Some(db) = MariaDb::start_or_skip().await else {
        return;
    };
    db.execute(&format!(
        "CREATE DATABASE shop CHARACTER SET utf8mb4; CREATE TABLE shop.snap ({TYPE_COLUMNS}); \
         CREATE TABLE shop.bin ({TYPE_COLUMNS}); INSERT INTO shop.snap VALUES {TYPE_ROW}, (2{});",
        ", NULL".repeat(34)
    ))
    .await
    .unwrap();
    let doris = DorisEmulator::start().await.unwrap();
    let yaml = pipeline_yaml(&db, &doris, "  sink.enable-2pc: true\n")
        .replace("local-time-zone: UTC", "local-time-zone: Asia/Shanghai");
    let def = cdc_runtime::PipelineDefinition::from_yaml_str(&yaml, "types.yaml").unwrap();
    let mut registry = cdc_api::ConnectorRegistry::new();
    registry
        .register_source(cdc_connector_mysql::MySqlSourceFactory)
        .register_sink(cdc_connector_doris::DorisSinkFactory);
    let handle = cdc_runtime::Pipeline::build(&def, &registry)
        .unwrap()
        .spawn();
    db.execute(&format!(
        "INSERT INTO shop.bin VALUES {TYPE_ROW}, (2{})",
        ", NULL".repeat(34)
    ))
    .await
    .unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    let (snap, bin) = loop {
        let snap = sorted(doris.table_rows("shop", "snap").unwrap_or_default());
        let bin = sorted(doris.table_rows("shop", "bin").unwrap_or_default());
        if snap.len() == 2 && bin.len() == 2 {
            break (snap, bin);
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "rows did not arrive: {snap:?} {bin:?}"
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
        "1",
        "-32768",
        "16777215",
        "4294967295",
        "-9223372036854775808",
        "18446744073709551615",
        "-1234567890.12",
        "12345678901234567890123456789012345.123456789012345678901234567890",
        "-1234567890123456789012345678.0123456789",
        "1.5",
        "-2.25",
        // BIT(1) is BOOLEAN; BIT(n), BINARY, VARBINARY and BLOB are base64 in a STRING column.
        "1",
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
        "-838:59:59.000",
        "2020-07-17 18:00:22",
        "2020-07-17 18:00:22.123456",
        // TIMESTAMP is rendered in pipeline.local-time-zone (Asia/Shanghai, UTC+8).
        "2021-01-01 08:00:01.500",
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
}

/// `schema.change.behavior: exception` stops at the first schema change with everything
/// before it in the target, committed and checkpointed (Flink CDC flushes its sink before
/// the schema operator throws): a restart after the user allowed the change resumes at it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exception_stops_with_everything_before_the_change_committed() {
    let Some(db) = MariaDb::start_or_skip().await else {
        return;
    };
    db.execute(
        "CREATE DATABASE shop; CREATE TABLE shop.customers (id INT PRIMARY KEY, name VARCHAR(20)); \
         INSERT INTO shop.customers VALUES (1, 'a'), (2, 'b'), (3, 'c'), (4, 'd');",
    )
    .await
    .unwrap();
    let doris = DorisEmulator::start().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let yaml = |behavior: &str| {
        pipeline_yaml(&db, &doris, "")
            .replace(
                "schema.change.behavior: evolve",
                &format!("schema.change.behavior: {behavior}"),
            )
            .replace(
                "state.dir: none",
                &format!("state.dir: {}", state.display()),
            )
            // Long enough that only the checkpoint before the change can commit the rows.
            .replace("checkpoint.interval: 300ms", "checkpoint.interval: 60s")
    };
    let mut registry = cdc_api::ConnectorRegistry::new();
    registry
        .register_source(cdc_connector_mysql::MySqlSourceFactory)
        .register_sink(cdc_connector_doris::DorisSinkFactory);
    let def =
        cdc_runtime::PipelineDefinition::from_yaml_str(&yaml("exception"), "exc.yaml").unwrap();
    let handle = cdc_runtime::Pipeline::build(&def, &registry)
        .unwrap()
        .spawn();
    // The snapshot is read (its rows wait for a checkpoint), then the binlog.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while !handle.metrics().source_progress().streaming {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the snapshot did not end"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    db.execute(
        "INSERT INTO shop.customers VALUES (5, 'e'); \
         ALTER TABLE shop.customers ADD COLUMN score INT; \
         INSERT INTO shop.customers VALUES (6, 'f', 60);",
    )
    .await
    .unwrap();
    let err = tokio::time::timeout(Duration::from_secs(30), handle.join())
        .await
        .expect("the pipeline did not stop at the schema change")
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("add.column is not allowed by schema.change.behavior: exception"),
        "{err}"
    );
    let rows = sorted(doris.table_rows("shop", "customers").unwrap_or_default());
    let want: Vec<Vec<Option<String>>> = (1..=5)
        .map(|i| {
            vec![
                Some(i.to_string()),
                Some(((b'a' + i - 1) as char).to_string()),
            ]
        })
        .collect();
    assert_eq!(
        rows, want,
        "the rows before the change are not all in the target"
    );
    let pending: Vec<_> = doris
        .transactions()
        .into_iter()
        .filter(|t| matches!(t.state, cdc_testkit::TxnState::PreCommitted))
        .collect();
    assert!(pending.is_empty(), "left pre-committed: {pending:?}");

    // The user allows the change: the restart resumes exactly at it.
    let resumed = yaml("evolve").replace("checkpoint.interval: 60s", "checkpoint.interval: 300ms");
    let def = cdc_runtime::PipelineDefinition::from_yaml_str(&resumed, "exc.yaml").unwrap();
    let handle = cdc_runtime::Pipeline::build(&def, &registry)
        .unwrap()
        .spawn();
    wait_in_sync(&db, &doris, &["customers"], None).await;
    handle.stop();
    handle.join().await.unwrap();
}
