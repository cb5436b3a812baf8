//! `cargo run --release -p cdc-bench -- [ROWS]`: measures the MySQL source against the
//! kit's MariaDB and prints rows/s next to the server's own limits, measured in the same
//! run so the ratios hold on a noisy machine:
//!
//! * snapshot of the reference table (BIGINT pk, INT, VARCHAR(32), DECIMAL(12,2),
//!   DATETIME(3), DOUBLE) vs `mariadb --quick -e 'SELECT * ...' > /dev/null`;
//! * binlog catch-up of the same rows vs `mariadb-binlog --read-from-remote-server --raw`.
//!
//! Numbers print as a markdown table (`scripts/bench.sh` writes them to docs/performance.md).
//! Benchmarks never fail on time.

use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use cdc_api::{
    ConfigOption, ConnectorRegistry, Event, FactoryContext, Result, SchemaApplier,
    SchemaChangeEvent, SchemaChangeKind, Sink, SinkFactory, SinkParts,
};
use cdc_runtime::{Pipeline, PipelineDefinition};
use cdc_testkit::MariaDb;

/// Counts data changes and drops them: measures the source and the runtime alone.
struct CountingSinkFactory(Arc<AtomicU64>);

impl SinkFactory for CountingSinkFactory {
    fn identifier(&self) -> &'static str {
        "count"
    }
    fn options(&self) -> Vec<ConfigOption> {
        Vec::new()
    }
    fn create(&self, _ctx: &FactoryContext) -> Result<SinkParts> {
        Ok(SinkParts {
            sink: Box::new(CountingSink(self.0.clone())),
            applier: Box::new(AcceptAll),
        })
    }
}

struct CountingSink(Arc<AtomicU64>);

#[async_trait]
impl Sink for CountingSink {
    async fn write(&mut self, events: Vec<Event>) -> Result<()> {
        let n = events
            .iter()
            .filter(|e| matches!(e, Event::DataChange(_)))
            .count();
        self.0.fetch_add(n as u64, Ordering::Relaxed);
        Ok(())
    }
    async fn flush(&mut self) -> Result<()> {
        Ok(())
    }
}

struct AcceptAll;

#[async_trait]
impl SchemaApplier for AcceptAll {
    fn supported_kinds(&self) -> Vec<SchemaChangeKind> {
        SchemaChangeKind::ALL.to_vec()
    }
    async fn apply(&mut self, _: &SchemaChangeEvent) -> Result<()> {
        Ok(())
    }
}

fn rate(rows: u64, d: Duration) -> f64 {
    rows as f64 / d.as_secs_f64()
}

async fn run_source(
    db: &MariaDb,
    mode: &str,
    rows: u64,
) -> std::result::Result<Duration, Box<dyn std::error::Error>> {
    let count = Arc::new(AtomicU64::new(0));
    let mut registry = ConnectorRegistry::new();
    registry
        .register_source(cdc_connector_mysql::MySqlSourceFactory)
        .register_sink(CountingSinkFactory(count.clone()));
    let yaml = format!(
        "source: {{type: mysql, hostname: 127.0.0.1, port: {}, username: root, password: '', tables: bench.t, \
         server-id: 5700, scan.startup.mode: {mode}}}\nsink: {{type: count}}\npipeline: {{name: bench}}\n",
        db.port()
    );
    let definition = PipelineDefinition::from_yaml_str(&yaml, "bench.yaml")?;
    let started = Instant::now();
    let handle = Pipeline::build(&definition, &registry)?.spawn();
    while count.load(Ordering::Relaxed) < rows {
        if handle.is_finished() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let elapsed = started.elapsed();
    handle.stop();
    handle.join().await?;
    Ok(elapsed)
}

fn timed_command(cmd: &mut Command) -> Option<Duration> {
    let started = Instant::now();
    let status = cmd
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .ok()?;
    status.success().then(|| started.elapsed())
}

#[tokio::main]
async fn main() -> std::result::Result<(), Box<dyn std::error::Error>> {
    let rows: u64 = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(1_000_000);
    let db = MariaDb::start().await?;
    db.execute(
        "CREATE DATABASE bench; CREATE TABLE bench.t (id BIGINT PRIMARY KEY, k INT, name VARCHAR(32), \
         amount DECIMAL(12,2), created DATETIME(3), score DOUBLE)",
    )
    .await?;
    let load = Instant::now();
    db.execute(&format!(
        "INSERT INTO bench.t SELECT seq, seq % 1000, CONCAT('name-', seq), seq / 100, \
         '2024-01-01 00:00:00.123' + INTERVAL seq SECOND, seq * 1.5 FROM bench.seq_1_to_{rows}"
    ))
    .await?;
    eprintln!("loaded {rows} rows in {:?}", load.elapsed());

    let client = ["mariadb", "mysql"]
        .into_iter()
        .find(|c| Command::new(c).arg("--version").output().is_ok());
    let select = client.and_then(|c| {
        timed_command(
            Command::new(c)
                .args([
                    "--quick",
                    "-h127.0.0.1",
                    "-uroot",
                    &format!("-P{}", db.port()),
                ])
                .args(["-e", "SELECT * FROM bench.t"]),
        )
    });
    let binlog_tool = ["mariadb-binlog", "mysqlbinlog"]
        .into_iter()
        .find(|c| Command::new(c).arg("--version").output().is_ok());
    let raw_dir = std::env::temp_dir().join(format!("cdc-bench-raw-{}", std::process::id()));
    std::fs::create_dir_all(&raw_dir)?;
    let raw_binlog = binlog_tool.and_then(|c| {
        timed_command(
            Command::new(c)
                .args([
                    "--read-from-remote-server",
                    "--raw",
                    "-h127.0.0.1",
                    "-uroot",
                    &format!("-P{}", db.port()),
                ])
                .arg(format!("--result-file={}/", raw_dir.display()))
                .arg("binlog.000001"),
        )
    });
    let _ = std::fs::remove_dir_all(&raw_dir);

    let snapshot = run_source(&db, "snapshot", rows).await?;
    let binlog = run_source(&db, "earliest-offset", rows).await?;

    println!("| measure | rows | time | rows/s | vs. server |");
    println!("|---|---|---|---|---|");
    let line = |what: &str, d: Duration, base: Option<Duration>| {
        let ratio = base.map_or_else(
            || "n/a".to_string(),
            |b| {
                format!(
                    "{:.2}x the time of the raw read",
                    d.as_secs_f64() / b.as_secs_f64()
                )
            },
        );
        println!(
            "| {what} | {rows} | {:.2}s | {:.0} | {ratio} |",
            d.as_secs_f64(),
            rate(rows, d)
        );
    };
    if let Some(s) = select {
        line("`mariadb --quick -e SELECT` (server limit)", s, None);
    }
    line("snapshot (MySQL source -> runtime)", snapshot, select);
    if let Some(r) = raw_binlog {
        line("`mariadb-binlog --raw` (wire limit)", r, None);
    }
    line("binlog catch-up (decode -> runtime)", binlog, raw_binlog);
    Ok(())
}
