//! `cdc verify` (the real binary) against a private MariaDB and the Doris / StarRocks
//! emulators: a synced pair is equal (exit 0); planted differences of every kind are found
//! exactly (exit 1); a missing target table is an error naming it (exit 2); a transformed
//! table is reported as not verified.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use cdc_testkit::{DorisEmulator, MariaDb, StarRocksEmulator};
use serde_json::Value;

const SCHEMA: &str = "
CREATE DATABASE shop CHARACTER SET utf8mb4;
CREATE TABLE shop.orders (
  id BIGINT PRIMARY KEY, qty INT, note VARCHAR(32), amount DECIMAL(12,2),
  created DATETIME(3), flag TINYINT(1), day DATE, price DOUBLE, ratio FLOAT,
  data VARBINARY(8), at TIMESTAMP(6) NULL, t TIME(2)
);
CREATE TABLE shop.pairs (a INT, b VARCHAR(10), v INT, PRIMARY KEY (a, b));
";

async fn seed(db: &MariaDb) {
    db.execute(SCHEMA).await.unwrap();
    for part in 0..5u64 {
        let rows: Vec<String> = (part * 500 + 1..=part * 500 + 500)
            .map(|id| {
                format!(
                    "({id}, {}, {}, {}.{:02}, '2024-01-{:02} 10:11:12.{:03}', {}, '2024-02-{:02}', {}.25, {}.1, X'{:04X}', '2024-03-01 01:02:{:02}.5', '12:34:56.{:02}')",
                    id % 97,
                    if id % 9 == 0 { "NULL".to_string() } else { format!("'note {id} 🎉'") },
                    id * 3,
                    id % 100,
                    id % 28 + 1,
                    id % 1000,
                    id % 2,
                    id % 28 + 1,
                    id,
                    id % 10,
                    id,
                    id % 60,
                    id % 100
                )
            })
            .collect();
        db.execute(&format!(
            "INSERT INTO shop.orders VALUES {}",
            rows.join(",")
        ))
        .await
        .unwrap();
    }
    let pairs: Vec<String> = (1..=10)
        .flat_map(|a| ["x", "y", "Z"].map(|b| format!("({a}, '{b}', {})", a * 10)))
        .collect();
    db.execute(&format!(
        "INSERT INTO shop.pairs VALUES {}",
        pairs.join(",")
    ))
    .await
    .unwrap();
}

fn source_block(db: &MariaDb) -> String {
    format!(
        "source:\n  type: mysql\n  hostname: 127.0.0.1\n  port: {}\n  username: root\n  password: ''\n  tables: shop.\\.*\n  server-id: 5700\n",
        db.port()
    )
}

const PIPELINE_BLOCK: &str = "pipeline:\n  name: verify\n  checkpoint.interval: 300ms\n  local-time-zone: UTC\n  state.dir: none\n";

fn doris_yaml(db: &MariaDb, doris: &DorisEmulator, extra: &str) -> String {
    format!(
        "{}sink:\n  type: doris\n  fenodes: {}\n  username: root\n  password: ''\n  table.create.properties.replication_num: 1\n{extra}{PIPELINE_BLOCK}",
        source_block(db),
        doris.fe_address()
    )
}

fn starrocks_yaml(db: &MariaDb, sr: &StarRocksEmulator) -> String {
    format!(
        "{}sink:\n  type: starrocks\n  jdbc-url: 'jdbc:mysql://{}'\n  load-url: '{}'\n  username: root\n  password: ''\n  table.create.properties.replication_num: 1\n{PIPELINE_BLOCK}",
        source_block(db),
        sr.fe_mysql_address(),
        sr.fe_http_address()
    )
}

/// Runs the pipeline in process until both tables are in the target, then stops it.
async fn sync(yaml: &str, rows: impl Fn(&str) -> usize) {
    let def = cdc_runtime::PipelineDefinition::from_yaml_str(yaml, "verify.yaml").unwrap();
    let mut registry = cdc_testkit::test_registry();
    registry
        .register_source(cdc_connector_mysql::MySqlSourceFactory)
        .register_sink(cdc_connector_doris::DorisSinkFactory)
        .register_sink(cdc_connector_starrocks::StarRocksSinkFactory);
    let handle = cdc_runtime::Pipeline::build(&def, &registry)
        .unwrap()
        .spawn();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(90);
    while rows("orders") < 2500 || rows("pairs") < 30 {
        assert!(!handle.is_finished(), "the pipeline stopped");
        assert!(tokio::time::Instant::now() < deadline, "not synced");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    handle.stop();
    handle.join().await.unwrap();
}

/// `cdc verify FILE --format json ARGS`: exit code and the JSON document.
fn verify(file: &Path, args: &[&str]) -> (i32, Value) {
    let out = Command::new(env!("CARGO_BIN_EXE_cdc"))
        .arg("verify")
        .arg(file)
        .args(["--format", "json"])
        .args(if args.contains(&"--chunk-size") {
            &[][..]
        } else {
            &["--chunk-size", "700"][..]
        })
        .args(if args.contains(&"--settle") {
            &[][..]
        } else {
            &["--settle", "0"][..]
        })
        .args(args)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    let doc: Value = serde_json::from_str(&text).unwrap_or_else(|e| {
        panic!(
            "not JSON ({e}): {text}\nstderr: {}",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    (out.status.code().unwrap_or(-1), doc)
}

fn table<'a>(doc: &'a Value, name: &str) -> &'a Value {
    doc["tables"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["source"] == name)
        .unwrap_or_else(|| panic!("{name} not in {doc:#}"))
}

fn examples(t: &Value, kind: &str) -> Vec<String> {
    t[kind]["examples"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_string())
        .collect()
}

/// Changes the source while no pipeline runs: a row the target lacks, a row only the
/// target has, changed columns; the same in the composite-key table.
async fn plant_differences(db: &MariaDb) {
    db.execute(
        "INSERT INTO shop.orders (id, qty, note) VALUES (100000, 1, 'new'); \
         DELETE FROM shop.orders WHERE id = 1234; \
         UPDATE shop.orders SET amount = amount + 1, note = 'changed' WHERE id = 777; \
         UPDATE shop.orders SET at = '2024-03-01 01:02:03.25', data = X'FF', price = 0.5 WHERE id = 778; \
         UPDATE shop.pairs SET v = 0 WHERE a = 3 AND b = 'y'; \
         DELETE FROM shop.pairs WHERE a = 10 AND b = 'Z';",
    )
    .await
    .unwrap();
}

fn assert_planted(doc: &Value) {
    let orders = table(doc, "shop.orders");
    assert_eq!(orders["status"], "different", "{orders:#}");
    assert_eq!(orders["rows"], 2500, "{orders:#}");
    assert_eq!(orders["chunks"], 4, "{orders:#}");
    assert_eq!(examples(orders, "missing"), ["100000"], "{orders:#}");
    assert_eq!(examples(orders, "extra"), ["1234"], "{orders:#}");
    assert_eq!(
        examples(orders, "different"),
        ["777 [note, amount]", "778 [price, data, at]"],
        "{orders:#}"
    );
    let pairs = table(doc, "shop.pairs");
    assert_eq!(pairs["status"], "different", "{pairs:#}");
    assert_eq!(examples(pairs, "missing"), Vec::<String>::new());
    assert_eq!(examples(pairs, "extra"), ["(10, Z)"], "{pairs:#}");
    assert_eq!(examples(pairs, "different"), ["(3, y) [v]"], "{pairs:#}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verify_against_doris_finds_exactly_the_planted_differences() {
    let Some(db) = MariaDb::start_or_skip().await else {
        return;
    };
    seed(&db).await;
    let doris = DorisEmulator::start().await.unwrap();
    let yaml = doris_yaml(&db, &doris, "");
    sync(&yaml, |t| {
        doris.table_rows("shop", t).map_or(0, |r| r.len())
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("p.yaml");
    std::fs::write(&file, &yaml).unwrap();

    // In sync: exit 0, every row compared, in chunks of 700.
    let (code, doc) = verify(&file, &[]);
    assert_eq!(code, 0, "{doc:#}");
    let orders = table(&doc, "shop.orders");
    assert_eq!(orders["status"], "equal", "{orders:#}");
    // Every column compared (TIMESTAMP too: the session takes local-time-zone).
    assert_eq!(orders["notes"], serde_json::json!([]), "{orders:#}");
    assert_eq!(orders["rows"], 2500);
    assert_eq!(orders["chunks"], 4);
    assert_eq!(table(&doc, "shop.pairs")["rows"], 30);
    assert_eq!(doc["summary"]["equal"], 2);

    // Every kind of difference, found exactly; a settle pause changes nothing here.
    plant_differences(&db).await;
    let (code, doc) = verify(&file, &["--settle", "200ms"]);
    assert_eq!(code, 1, "{doc:#}");
    assert_planted(&doc);
    // --table limits the comparison.
    let (code, doc) = verify(&file, &["--table", "shop.pairs"]);
    assert_eq!(code, 1, "{doc:#}");
    assert_eq!(doc["tables"].as_array().unwrap().len(), 1);

    // The text report names the keys and ends with the summary.
    let out = Command::new(env!("CARGO_BIN_EXE_cdc"))
        .args(["verify", "--settle", "0"])
        .arg(&file)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("shop.orders: DIFFERENT (2500 rows compared"),
        "{text}"
    );
    assert!(text.contains("missing in target: 100000"), "{text}");
    assert!(
        text.contains("Summary: 2 tables: 0 equal, 2 different"),
        "{text}"
    );

    // A source table without a target table: an error naming it, exit 2; a transformed
    // table is not verified.
    db.execute("CREATE TABLE shop.fresh (id INT PRIMARY KEY, v INT)")
        .await
        .unwrap();
    let transformed = doris_yaml(
        &db,
        &doris,
        "transform:\n  - source-table: shop.pairs\n    projection: \\*, v * 2 AS v2\n",
    );
    let file2 = dir.path().join("t.yaml");
    std::fs::write(&file2, transformed).unwrap();
    let (code, doc) = verify(&file2, &[]);
    assert_eq!(code, 2, "{doc:#}");
    let fresh = table(&doc, "shop.fresh");
    assert_eq!(fresh["status"], "error");
    assert!(
        fresh["reason"]
            .as_str()
            .unwrap()
            .contains("the target table shop.fresh does not exist"),
        "{fresh:#}"
    );
    let pairs = table(&doc, "shop.pairs");
    assert_eq!(pairs["status"], "not_verified");
    assert_eq!(pairs["reason"], "transformed");
    assert_eq!(table(&doc, "shop.orders")["status"], "different");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verify_against_starrocks_finds_exactly_the_planted_differences() {
    let Some(db) = MariaDb::start_or_skip().await else {
        return;
    };
    seed(&db).await;
    let sr = StarRocksEmulator::start().await.unwrap();
    let yaml = starrocks_yaml(&db, &sr);
    sync(&yaml, |t| sr.table_rows("shop", t).map_or(0, |r| r.len())).await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("p.yaml");
    std::fs::write(&file, &yaml).unwrap();
    let (code, doc) = verify(&file, &[]);
    assert_eq!(code, 0, "{doc:#}");
    assert_eq!(doc["summary"]["equal"], 2, "{doc:#}");
    plant_differences(&db).await;
    let (code, doc) = verify(&file, &[]);
    assert_eq!(code, 1, "{doc:#}");
    assert_planted(&doc);
}
