//! `cdc quickstart`: the first minute. Starts a private MariaDB with a demo shop, the Doris
//! emulator, runs `examples/mariadb-to-doris.yaml` between them, makes live changes while
//! it runs, and ends with both sides next to each other and a verdict. Leaves nothing
//! running; the temporary directories go away with it.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use cdc_runtime::{MemoryStateStore, Pipeline, PipelineDefinition};
use cdc_testkit::{DorisEmulator, MariaDb};

const PIPELINE: &str = include_str!("../../../examples/mariadb-to-doris.yaml");
const TABLES: [&str; 3] = ["customers", "products", "orders"];

const DEMO_SCHEMA: &str = "
CREATE DATABASE shop CHARACTER SET utf8mb4;
CREATE TABLE shop.customers (
  id INT PRIMARY KEY, name VARCHAR(40) NOT NULL, email VARCHAR(80), vip BOOL DEFAULT FALSE,
  joined DATETIME(3) NOT NULL) COMMENT 'people who buy';
CREATE TABLE shop.products (
  id INT PRIMARY KEY, title VARCHAR(60) NOT NULL, price DECIMAL(10,2) NOT NULL,
  weight_kg DOUBLE, colour ENUM('red','green','blue'), released DATE);
CREATE TABLE shop.orders (
  id BIGINT PRIMARY KEY, customer_id INT NOT NULL, product_id INT NOT NULL, qty SMALLINT NOT NULL,
  amount DECIMAL(12,2) NOT NULL, status VARCHAR(12) NOT NULL, note TEXT, ordered_at DATETIME(6) NOT NULL);
";

async fn seed(db: &MariaDb) -> anyhow::Result<()> {
    db.execute(DEMO_SCHEMA).await?;
    let customers: Vec<String> = (1..=200)
        .map(|i| {
            format!(
                "({i}, 'Customer {i}', 'c{i}@example.com', {}, '2024-01-{:02} 09:00:00.{:03}')",
                i % 5 == 0,
                i % 28 + 1,
                i % 1000
            )
        })
        .collect();
    db.execute(&format!(
        "INSERT INTO shop.customers VALUES {}",
        customers.join(",")
    ))
    .await?;
    let colours = ["red", "green", "blue"];
    let products: Vec<String> = (1..=50)
        .map(|i| {
            format!(
                "({i}, 'Product {i} ✨', {}.{:02}, {}.5, '{}', '2023-{:02}-01')",
                i * 3,
                i % 100,
                i % 7,
                colours[i % 3],
                i % 12 + 1
            )
        })
        .collect();
    db.execute(&format!(
        "INSERT INTO shop.products VALUES {}",
        products.join(",")
    ))
    .await?;
    for chunk in 0..10 {
        let orders: Vec<String> = (1..=500)
            .map(|k| {
                let i = chunk * 500 + k;
                format!(
                    "({i}, {}, {}, {}, {}.{:02}, 'paid', {}, '2024-05-{:02} 12:{:02}:{:02}.{:06}')",
                    i % 200 + 1,
                    i % 50 + 1,
                    i % 5 + 1,
                    i % 900 + 10,
                    i % 100,
                    if i % 9 == 0 {
                        "NULL".to_string()
                    } else {
                        format!("'order {i}'")
                    },
                    i % 28 + 1,
                    i % 60,
                    (i * 7) % 60,
                    i * 13 % 1_000_000
                )
            })
            .collect();
        db.execute(&format!(
            "INSERT INTO shop.orders VALUES {}",
            orders.join(",")
        ))
        .await?;
    }
    Ok(())
}

async fn source_rows(db: &MariaDb, table: &str) -> anyhow::Result<Vec<Vec<Option<String>>>> {
    let mut rows = db
        .query_text(&format!("SELECT * FROM shop.{table}"))
        .await?;
    rows.sort();
    Ok(rows)
}

fn target_rows(doris: &DorisEmulator, table: &str) -> Vec<Vec<Option<String>>> {
    let mut rows = doris.table_rows("shop", table).unwrap_or_default();
    rows.sort();
    rows
}

/// Per table: (source rows, target rows, equal).
async fn compare(
    db: &MariaDb,
    doris: &DorisEmulator,
) -> anyhow::Result<BTreeMap<&'static str, (usize, usize, bool)>> {
    let mut out = BTreeMap::new();
    for table in TABLES {
        let s = source_rows(db, table).await?;
        let t = target_rows(doris, table);
        out.insert(table, (s.len(), t.len(), s == t));
    }
    Ok(out)
}

async fn wait_in_sync(
    db: &MariaDb,
    doris: &DorisEmulator,
    what: &str,
    handle: &cdc_runtime::PipelineHandle,
) -> anyhow::Result<()> {
    let started = Instant::now();
    let mut last_line = String::new();
    loop {
        let state = compare(db, doris).await?;
        let line = state
            .iter()
            .map(|(t, (s, d, _))| format!("{t} {d}/{s}"))
            .collect::<Vec<_>>()
            .join("  ");
        if line != last_line {
            println!(
                "  {what}: {line}  ({:.1}s)",
                started.elapsed().as_secs_f64()
            );
            last_line = line;
        }
        if state.values().all(|(_, _, eq)| *eq) {
            return Ok(());
        }
        if handle.is_finished() {
            bail!("the pipeline stopped unexpectedly");
        }
        if started.elapsed() > Duration::from_secs(120) {
            bail!("not in sync after 2 minutes");
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

fn show(label: &str, rows: &[Vec<Option<String>>]) {
    println!("    {label}:");
    for row in rows.iter().take(3) {
        let cells: Vec<String> = row
            .iter()
            .map(|v| v.clone().unwrap_or_else(|| "NULL".into()))
            .collect();
        println!("      {}", cells.join(" | "));
    }
}

pub(crate) async fn run(registry: &cdc_api::ConnectorRegistry) -> anyhow::Result<()> {
    println!("== 1/5 starting a private MariaDB (binlog on, ROW format)");
    let db = MariaDb::start().await.context("starting MariaDB")?;
    seed(&db).await.context("creating the demo database")?;
    println!(
        "  MariaDB on 127.0.0.1:{} with shop.customers (200), shop.products (50), shop.orders (5000)",
        db.port()
    );

    println!("== 2/5 starting the Doris emulator");
    let doris = DorisEmulator::start()
        .await
        .context("starting the Doris emulator")?;
    println!("  Doris FE on {}", doris.fe_address());

    println!("== 3/5 cdc run examples/mariadb-to-doris.yaml (snapshot, then the binlog)");
    let vars = [
        ("MARIADB_HOST", "127.0.0.1".to_string()),
        ("MARIADB_PORT", db.port().to_string()),
        ("MARIADB_USER", "root".to_string()),
        ("MARIADB_PASSWORD", String::new()),
        ("DORIS_FE", doris.fe_address()),
        ("DORIS_USER", "root".to_string()),
        ("DORIS_PASSWORD", String::new()),
    ];
    let mut text = PIPELINE.to_string();
    for (name, value) in &vars {
        text = text.replace(&format!("${{{name}}}"), value);
    }
    let definition = PipelineDefinition::from_yaml_str(&text, "examples/mariadb-to-doris.yaml")?;
    // The demo's MariaDB and Doris are gone when it ends, and so must its state be: a
    // durable default directory would make the next quickstart resume into new servers.
    let handle = Pipeline::build(&definition, registry)?
        .with_state_store(std::sync::Arc::new(MemoryStateStore::default()))
        .spawn();
    let outcome = async {
        wait_in_sync(&db, &doris, "snapshot", &handle).await?;

        println!("== 4/5 live changes in MariaDB while the pipeline runs");
        let changes = [
            ("insert 300 orders", "INSERT INTO shop.orders SELECT id + 100000, customer_id, product_id, qty, amount, 'new', note, ordered_at FROM shop.orders WHERE id <= 300"),
            ("update 100 orders", "UPDATE shop.orders SET status = 'shipped', qty = qty + 1 WHERE id BETWEEN 1 AND 100"),
            ("delete 50 orders", "DELETE FROM shop.orders WHERE id BETWEEN 101 AND 150"),
            ("ALTER TABLE customers ADD COLUMN phone", "ALTER TABLE shop.customers ADD COLUMN phone VARCHAR(20) AFTER email"),
            ("update customers with phones", "UPDATE shop.customers SET phone = CONCAT('+1-555-', LPAD(id, 4, '0')) WHERE id <= 20"),
            ("a price change", "UPDATE shop.products SET price = price * 1.10 WHERE colour = 'red'"),
        ];
        for (what, sql) in changes {
            db.execute(sql).await?;
            println!("  {what}");
        }
        wait_in_sync(&db, &doris, "streaming", &handle).await?;
        anyhow::Ok(())
    }
    .await;
    handle.stop();
    let summary = handle.join().await;
    outcome?;
    let summary = summary?;

    println!("== 5/5 source next to target");
    let mut all_equal = true;
    for table in TABLES {
        let s = source_rows(&db, table).await?;
        let t = target_rows(&doris, table);
        let equal = s == t;
        all_equal &= equal;
        println!(
            "  shop.{table}: MariaDB {} rows, Doris {} rows: {}",
            s.len(),
            t.len(),
            if equal { "identical" } else { "DIFFERENT" }
        );
        show("MariaDB", &s);
        show("Doris", &t);
    }
    println!(
        "  {} changes delivered, {} checkpoints",
        summary.data_changes, summary.checkpoints
    );
    if !all_equal {
        bail!("NOT in sync");
    }
    println!("\nVerdict: in sync ✔  (MariaDB and the emulator are stopped and removed)");
    Ok(())
}
