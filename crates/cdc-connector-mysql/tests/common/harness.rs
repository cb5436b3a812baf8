//! Shared test harness: pipelines MariaDB -> values sink, a random writer, and checks that
//! the committed log has every change exactly once and ends equal to the source.
#![allow(dead_code, unreachable_pub)] // each test file uses part of it; `pub` for them

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use cdc_api::{Event, OperationType, SchemaChangeEvent, TableId, Value};
use cdc_runtime::{MemoryStateStore, Pipeline, PipelineDefinition, PipelineHandle, StateStore};
use cdc_testkit::{MariaDb, values_database};
use mysql_async::prelude::Queryable;

/// Logs to the test output when `RUST_LOG` is set.
pub fn init_logs() {
    if std::env::var_os("RUST_LOG").is_some() {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
            .with_test_writer()
            .try_init();
    }
}

/// A pipeline definition for `db` capturing `tables` into the values sink `sink`.
pub fn yaml(db: &MariaDb, sink: &str, tables: &str, extra: &str) -> String {
    format!(
        "source:\n  type: mysql\n  hostname: 127.0.0.1\n  port: {}\n  username: root\n  password: ''\n  tables: '{tables}'\n{extra}\
         sink: {{type: values, sink-id: {sink}}}\n\
         pipeline: {{name: {sink}, checkpoint.interval: 100ms}}\n",
        db.port()
    )
}

/// Builds the pipeline (with the MySQL source registered), its state in memory: each test
/// starts fresh and writes nothing into the default state directory under `$HOME`.
pub fn build(yaml: &str) -> Result<Pipeline, cdc_runtime::RuntimeError> {
    init_logs();
    let mut registry = cdc_testkit::test_registry();
    registry.register_source(cdc_connector_mysql::MySqlSourceFactory);
    let def = PipelineDefinition::from_yaml_str(yaml, "test.yaml")?;
    Ok(Pipeline::build(&def, &registry)?.with_state_store(Arc::new(MemoryStateStore::default())))
}

/// Builds the pipeline with a shared state store.
pub fn build_with_store(yaml: &str, store: &Arc<MemoryStateStore>) -> Pipeline {
    build(yaml)
        .unwrap()
        .with_state_store(store.clone() as Arc<dyn StateStore>)
}

/// Rows of a source table as text, sorted, NULL as "NULL".
pub async fn source_rows(db: &MariaDb, table: &str) -> Vec<Vec<String>> {
    let mut rows: Vec<Vec<String>> = db
        .query_text(&format!("SELECT * FROM {table}"))
        .await
        .unwrap()
        .into_iter()
        .map(|r| {
            r.into_iter()
                .map(|v| v.unwrap_or_else(|| "NULL".into()))
                .collect()
        })
        .collect();
    rows.sort();
    rows
}

/// Rows of a values-sink table as text, sorted.
pub fn sink_rows(sink: &str, table: &TableId) -> Option<Vec<Vec<String>>> {
    let db = values_database(sink);
    let guard = db.lock().unwrap();
    guard
        .tables
        .get(table)
        .map(cdc_testkit::ValuesTable::sorted_text_rows)
}

/// Waits until every listed table of the sink equals the source (or panics after the
/// timeout, showing the first difference).
pub async fn wait_equal(
    db: &MariaDb,
    sink: &str,
    tables: &[&str],
    handle: Option<&PipelineHandle>,
    timeout: Duration,
) {
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        let mut diff = None;
        for t in tables {
            let (d, name) = t.split_once('.').unwrap();
            let want = source_rows(db, t).await;
            let got = sink_rows(sink, &TableId::new(d, name)).unwrap_or_default();
            if want != got {
                diff = Some(format!(
                    "{t}: source has {} rows, sink {}; first differing source row {:?}, sink row {:?}",
                    want.len(),
                    got.len(),
                    want.iter().find(|r| !got.contains(r)),
                    got.iter().find(|r| !want.contains(r)),
                ));
                break;
            }
        }
        let Some(diff) = diff else { return };
        if let Some(h) = handle {
            assert!(!h.is_finished(), "the pipeline ended early; {diff}");
        }
        assert!(tokio::time::Instant::now() < deadline, "timed out: {diff}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Waits until the values sink `sink` holds at least `rows` rows over all its tables (the
/// snapshot is in), failing when the pipeline ends first or `timeout` passes.
pub async fn wait_sink_rows(sink: &str, rows: usize, handle: &PipelineHandle, timeout: Duration) {
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        let done = values_database(sink)
            .lock()
            .unwrap()
            .tables
            .values()
            .map(|t| t.rows.len())
            .sum::<usize>();
        if done >= rows {
            return;
        }
        assert!(tokio::time::Instant::now() < deadline, "snapshot too slow");
        assert!(!handle.is_finished(), "pipeline ended early");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Replays the committed log and checks continuity: an insert never meets an existing
/// key, an update or delete always finds exactly its before image. A duplicate or a lost
/// change breaks one of these. Returns the number of data changes checked.
pub fn check_exactly_once(sink: &str) -> usize {
    let db = values_database(sink);
    let guard = db.lock().unwrap();
    let mut keys: BTreeMap<TableId, Vec<usize>> = BTreeMap::new();
    let mut state: BTreeMap<TableId, BTreeMap<String, Vec<Value>>> = BTreeMap::new();
    let key_text = |idx: &[usize], row: &[Value]| -> String {
        idx.iter()
            .map(|&i| row[i].to_string().to_lowercase())
            .collect::<Vec<_>>()
            .join("|")
    };
    let mut n = 0;
    for (i, e) in guard.log.iter().enumerate() {
        match e {
            Event::SchemaChange(SchemaChangeEvent::CreateTable { table_id, schema }) => {
                keys.entry(table_id.clone())
                    .or_insert_with(|| schema.primary_key_indexes());
            }
            Event::SchemaChange(SchemaChangeEvent::TruncateTable { table_id }) => {
                state.remove(table_id);
            }
            Event::SchemaChange(_) => {}
            Event::DataChange(c) => {
                n += 1;
                let idx = keys.get(&c.table_id).expect("data before CreateTable");
                let t = state.entry(c.table_id.clone()).or_default();
                if let Some(before) = &c.before {
                    if c.op != OperationType::Insert {
                        let k = key_text(idx, before);
                        let have = t.remove(&k);
                        assert_eq!(
                            have.as_ref(),
                            Some(before),
                            "log entry {i} ({:?} on {}): the before image does not match the replayed row (lost or repeated change)",
                            c.op,
                            c.table_id
                        );
                    }
                }
                if let Some(after) = &c.after {
                    let k = key_text(idx, after);
                    let old = t.insert(k.clone(), after.clone());
                    assert!(
                        old.is_none(),
                        "log entry {i} ({:?} on {}): key {k} already present (duplicate)",
                        c.op,
                        c.table_id
                    );
                }
            }
        }
    }
    n
}

/// A tiny deterministic PRNG (xorshift64*), so runs are reproducible from the seed.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Self(seed.max(1))
    }

    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

/// The kind of key a test table has.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyKind {
    /// `id INT`.
    Int,
    /// `code VARCHAR(20)` under utf8mb4_general_ci (case-insensitive order).
    Text,
    /// `(a INT, b DATETIME)`.
    Composite,
    /// `d DECIMAL(12,2)`.
    Decimal,
}

/// A test table and the keys the writer knows it holds.
pub struct TestTable {
    pub name: String,
    pub kind: KeyKind,
    pub keys: BTreeSet<i64>,
    pub next: i64,
}

impl TestTable {
    pub fn ddl(&self) -> String {
        let cols = match self.kind {
            KeyKind::Int => "id INT PRIMARY KEY",
            KeyKind::Text => "code VARCHAR(20) COLLATE utf8mb4_general_ci PRIMARY KEY",
            KeyKind::Composite => "a INT, b DATETIME, PRIMARY KEY (a, b)",
            KeyKind::Decimal => "d DECIMAL(12,2) PRIMARY KEY",
        };
        format!(
            "CREATE TABLE {} ({cols}, v INT NOT NULL, s VARCHAR(40))",
            self.name
        )
    }

    /// The key columns' SQL values for key number `k` (mixed case for text keys, so the
    /// collation order differs from the byte order).
    pub fn key_sql(&self, k: i64) -> String {
        match self.kind {
            KeyKind::Int => k.to_string(),
            KeyKind::Text => {
                let letter = if k % 2 == 0 { 'a' } else { 'B' };
                format!("'{letter}{k:07}'")
            }
            KeyKind::Composite => format!(
                "{}, '2024-01-{:02} {:02}:00:00'",
                k / 50,
                1 + (k % 50) / 24,
                k % 24
            ),
            KeyKind::Decimal => format!("{}.{:02}", k / 3, (k % 3) * 25),
        }
    }

    pub fn key_where(&self, k: i64) -> String {
        match self.kind {
            KeyKind::Int => format!("id = {}", self.key_sql(k)),
            KeyKind::Text => format!("code = {}", self.key_sql(k)),
            KeyKind::Composite => {
                let s = self.key_sql(k);
                let (a, b) = s.split_once(", ").unwrap();
                format!("a = {a} AND b = {b}")
            }
            KeyKind::Decimal => format!("d = {}", self.key_sql(k)),
        }
    }

    pub fn key_set(&self, k: i64) -> String {
        match self.kind {
            KeyKind::Int => format!("id = {}", self.key_sql(k)),
            KeyKind::Text => format!("code = {}", self.key_sql(k)),
            KeyKind::Composite => {
                let s = self.key_sql(k);
                let (a, b) = s.split_once(", ").unwrap();
                format!("a = {a}, b = {b}")
            }
            KeyKind::Decimal => format!("d = {}", self.key_sql(k)),
        }
    }

    pub fn insert_sql(&self, ks: &[i64]) -> String {
        let values: Vec<String> = ks
            .iter()
            .map(|k| format!("({}, {k}, 'row {k}')", self.key_sql(*k)))
            .collect();
        format!("INSERT INTO {} VALUES {}", self.name, values.join(", "))
    }
}

/// Creates the tables with `rows` rows each.
pub async fn create_tables(db: &MariaDb, tables: &mut [TestTable], rows: i64) {
    let mut conn = db.conn().await.unwrap();
    for t in tables.iter_mut() {
        conn.query_drop(t.ddl()).await.unwrap();
        let ks: Vec<i64> = (0..rows).map(|i| i * 2).collect();
        for chunk in ks.chunks(1000) {
            conn.query_drop(t.insert_sql(chunk)).await.unwrap();
        }
        t.keys.extend(ks);
        t.next = rows * 2;
        // Fresh row estimates: the source splits big tables by them.
        conn.query_drop(format!("ANALYZE TABLE {}", t.name))
            .await
            .unwrap();
    }
}

/// Runs random inserts, updates (also of the key) and deletes, in transactions of one to
/// three statements, at most one transaction per `pace` (the debug-build values sink
/// applies about a thousand changes a second; an unthrottled writer would outrun it),
/// until `stop` is set. Returns the number of statements.
pub async fn write_randomly(
    db_url: String,
    mut tables: Vec<TestTable>,
    seed: u64,
    pace: Duration,
    stop: Arc<AtomicBool>,
) -> usize {
    let mut tick = tokio::time::interval(pace);
    let mut conn = mysql_async::Conn::from_url(db_url).await.unwrap();
    let mut rng = Rng::new(seed);
    let mut n = 0;
    while !stop.load(Ordering::Relaxed) {
        tick.tick().await;
        conn.query_drop("BEGIN").await.unwrap();
        for _ in 0..=rng.below(3) {
            let ti = rng.below(tables.len() as u64) as usize;
            let t = &mut tables[ti];
            let existing: Option<i64> = if t.keys.is_empty() {
                None
            } else {
                let i = rng.below(t.keys.len() as u64) as usize;
                t.keys.iter().nth(i).copied()
            };
            let sql = match (rng.below(10), existing) {
                (0..=2, _) | (_, None) => {
                    // Odd keys interleave with the initial even ones.
                    let k = if rng.below(2) == 0 {
                        t.next += 1;
                        while t.keys.contains(&t.next) {
                            t.next += 1;
                        }
                        t.next
                    } else {
                        let mut k = rng.below((t.next as u64).max(1)) as i64 | 1;
                        while t.keys.contains(&k) {
                            k += 2;
                        }
                        k
                    };
                    t.keys.insert(k);
                    t.insert_sql(&[k])
                }
                (3..=5, Some(k)) => format!(
                    "UPDATE {} SET v = v + 1, s = 'upd {}' WHERE {}",
                    t.name,
                    rng.below(1000),
                    t.key_where(k)
                ),
                (6..=7, Some(k)) => {
                    // Move the row to another key, often across the snapshot's progress.
                    let mut to = rng.below((t.next as u64) + 10) as i64;
                    while t.keys.contains(&to) {
                        to += 1;
                    }
                    t.keys.remove(&k);
                    t.keys.insert(to);
                    format!(
                        "UPDATE {} SET {}, v = v + 1 WHERE {}",
                        t.name,
                        t.key_set(to),
                        t.key_where(k)
                    )
                }
                (_, Some(k)) => {
                    t.keys.remove(&k);
                    format!("DELETE FROM {} WHERE {}", t.name, t.key_where(k))
                }
            };
            conn.query_drop(sql).await.unwrap();
            n += 1;
        }
        conn.query_drop("COMMIT").await.unwrap();
    }
    n
}
