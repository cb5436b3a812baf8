//! Parallel snapshot of tables whose key is not one integer column: a composite
//! (INT, VARCHAR) key, a VARCHAR key under a case-insensitive PAD SPACE collation, a
//! DECIMAL(30,10) key whose values differ only beyond the 15 digits a DOUBLE holds, and a
//! DATETIME(6) key. Each table is split into several key ranges (the plan is read back
//! through `cdc_connector_mysql::testing::snapshot_plans`) while a writer inserts, updates,
//! re-spells (case, trailing space, accent: equal under the collation, not bytewise) and
//! deletes rows next to the split points; the target must end equal to the source with
//! every change exactly once. Also: kills while split text and composite keys are partly
//! read (resume from the offset's text bounds), and `pipeline.parallelism` setting the
//! number of ranges.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers may panic

#[path = "common/harness.rs"]
mod harness;

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use cdc_runtime::{MemoryStateStore, StateStore};
use cdc_testkit::MariaDb;
use harness::Rng;
use mysql_async::prelude::Queryable;

/// Key values per stem: six spellings, distinct under utf8mb4_general_ci, whose byte
/// order differs from the collation order (upper case sorts before lower case bytewise,
/// a tab before the space PAD SPACE compares with, 'é' after 'z').
const VARIANTS: u64 = 6;

fn text_variant(stem: &str, v: u64) -> String {
    let up = stem.to_uppercase();
    match v {
        0 => stem.to_string(),
        1 => format!("{up}\t"),
        2 => format!("{stem}a"),
        3 => format!("{up}B"),
        4 => format!("{stem}é"),
        _ => format!("{stem}_z"),
    }
}

/// The same key under the collation, spelled differently (case, trailing spaces,
/// accents); `None` when the variant has no other spelling here.
fn respell(text: &str, rng: &mut Rng) -> Option<String> {
    let base = text.trim_end_matches(' ');
    let out = match rng.below(3) {
        0 if base.chars().any(|c| c.is_ascii_lowercase()) => base.to_uppercase(),
        0 => base.to_lowercase(),
        1 => format!("{base}  "),
        _ if base.ends_with('é') => format!("{}E", base.trim_end_matches('é')),
        _ if base.ends_with('E') || base.ends_with('e') => {
            format!("{}é", &base[..base.len() - 1])
        }
        _ => return None,
    };
    (out != text).then_some(out)
}

fn sql_text(s: &str) -> String {
    format!("'{}'", s.replace('\\', "\\\\").replace('\'', "''"))
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Kind {
    /// `(a INT, b VARCHAR(20) utf8mb4_general_ci)`.
    Composite,
    /// `code VARCHAR(32) utf8mb4_general_ci`.
    Text,
    /// `d DECIMAL(30,10)`.
    Decimal,
    /// `t DATETIME(6)`.
    DateTime,
}

struct Table {
    name: String,
    kind: Kind,
    /// Live keys as (stem, variant).
    keys: BTreeSet<(u64, u64)>,
    /// The current spelling of text keys that were re-spelled.
    spelled: std::collections::HashMap<(u64, u64), String>,
    /// Stems created (the table starts with `stems * VARIANTS` rows).
    stems: u64,
}

impl Table {
    fn ddl(&self) -> String {
        let cols = match self.kind {
            Kind::Composite => {
                "a INT NOT NULL, b VARCHAR(20) COLLATE utf8mb4_general_ci NOT NULL, PRIMARY KEY (a, b)"
            }
            Kind::Text => "code VARCHAR(32) COLLATE utf8mb4_general_ci PRIMARY KEY",
            Kind::Decimal => "d DECIMAL(30,10) PRIMARY KEY",
            Kind::DateTime => "t DATETIME(6) PRIMARY KEY",
        };
        format!(
            "CREATE TABLE {} ({cols}, v INT NOT NULL, s VARCHAR(40)) CHARACTER SET utf8mb4",
            self.name
        )
    }

    /// The key's text (for the text parts), as currently spelled.
    fn text_of(&self, k: (u64, u64)) -> String {
        self.spelled.get(&k).cloned().unwrap_or_else(|| {
            let stem = match self.kind {
                Kind::Composite => format!("m{:04}", k.0),
                _ => format!("k{:05}", k.0),
            };
            text_variant(&stem, k.1)
        })
    }

    /// `(column, SQL value)` pairs of key `k`.
    fn key_cols(&self, k: (u64, u64)) -> Vec<(&'static str, String)> {
        let (stem, v) = k;
        match self.kind {
            Kind::Composite => vec![
                ("a", (stem / 3).to_string()),
                ("b", sql_text(&self.text_of(k))),
            ],
            Kind::Text => vec![("code", sql_text(&self.text_of(k)))],
            // 20 integer digits: neighbours differ only in the last fraction digits.
            Kind::Decimal => vec![(
                "d",
                format!("12345678901234567890.{:010}", stem * VARIANTS + v),
            )],
            Kind::DateTime => {
                let secs = stem * 7;
                vec![(
                    "t",
                    format!(
                        "'2024-03-01 {:02}:{:02}:{:02}.{:06}'",
                        secs / 3600,
                        (secs / 60) % 60,
                        secs % 60,
                        // Never a zero fraction: the sink prints one without digits.
                        v * 3 + 1
                    ),
                )]
            }
        }
    }

    fn insert(&self, ks: &[(u64, u64)]) -> String {
        let rows: Vec<String> = ks
            .iter()
            .map(|k| {
                let key: Vec<String> = self.key_cols(*k).into_iter().map(|(_, v)| v).collect();
                format!("({}, {}, 'row {}-{}')", key.join(", "), k.0, k.0, k.1)
            })
            .collect();
        format!("INSERT INTO {} VALUES {}", self.name, rows.join(", "))
    }

    fn key_where(&self, k: (u64, u64)) -> String {
        self.key_cols(k)
            .into_iter()
            .map(|(c, v)| format!("{c} = {v}"))
            .collect::<Vec<_>>()
            .join(" AND ")
    }

    fn key_set(&self, k: (u64, u64)) -> String {
        self.key_cols(k)
            .into_iter()
            .map(|(c, v)| format!("{c} = {v}"))
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// The stem a printed split bound falls on (see `testing::snapshot_plans`).
    fn stem_of_bound(&self, bound: &str) -> Option<u64> {
        let digits_after = |s: &str, marks: &[char]| -> Option<u64> {
            let i = s.find(|c: char| marks.contains(&c))?;
            let rest: String = s[i + 1..]
                .chars()
                .take_while(char::is_ascii_digit)
                .collect();
            rest.parse().ok()
        };
        match self.kind {
            Kind::Composite => digits_after(bound, &['m', 'M']),
            Kind::Text => digits_after(bound, &['k', 'K']),
            Kind::Decimal => digits_after(bound, &['.']).map(|n| n / VARIANTS),
            Kind::DateTime => {
                let inner = bound.split_once("DateTime(")?.1;
                let n: Vec<u64> = inner
                    .split(|c: char| !c.is_ascii_digit())
                    .filter(|s| !s.is_empty())
                    .filter_map(|s| s.parse().ok())
                    .collect();
                let secs = n.get(3)? * 3600 + n.get(4)? * 60 + n.get(5)?;
                Some(secs / 7)
            }
        }
    }
}

const STEMS: u64 = 400;

async fn create(db: &MariaDb, name: &str, kind: Kind) -> Table {
    create_n(db, name, kind, STEMS).await
}

async fn create_n(db: &MariaDb, name: &str, kind: Kind, stems: u64) -> Table {
    let mut t = Table {
        name: name.to_string(),
        kind,
        keys: BTreeSet::new(),
        spelled: std::collections::HashMap::new(),
        stems,
    };
    let mut conn = db.conn().await.unwrap();
    conn.query_drop(t.ddl()).await.unwrap();
    let ks: Vec<(u64, u64)> = (0..stems)
        .flat_map(|s| (0..VARIANTS).map(move |v| (s, v)))
        .collect();
    for chunk in ks.chunks(500) {
        conn.query_drop(t.insert(chunk)).await.unwrap();
    }
    t.keys.extend(ks);
    // Fresh row estimates: the source splits big tables by them.
    conn.query_drop(format!("ANALYZE TABLE {name}"))
        .await
        .unwrap();
    t
}

/// The split bounds planned for `table` (the last plan), printed.
fn plan_of(table: &str) -> Option<Vec<String>> {
    cdc_connector_mysql::testing::snapshot_plans()
        .into_iter()
        .rev()
        .find(|(t, _)| t == table)
        .map(|(_, b)| b)
}

/// Random changes, half of them on rows within two stems of a split bound once the
/// table's plan is known; returns the number of statements.
async fn write_near_bounds(
    url: String,
    mut tables: Vec<Table>,
    stop: Arc<AtomicBool>,
    seen_bounds: Arc<Mutex<usize>>,
) -> usize {
    let mut conn = mysql_async::Conn::from_url(url).await.unwrap();
    let mut rng = Rng::new(99);
    let mut n = 0;
    let mut tick = tokio::time::interval(Duration::from_millis(2));
    while !stop.load(Ordering::Relaxed) {
        tick.tick().await;
        conn.query_drop("BEGIN").await.unwrap();
        for _ in 0..=rng.below(2) {
            let ti = rng.below(tables.len() as u64) as usize;
            let t = &mut tables[ti];
            let near: Vec<u64> = plan_of(&t.name)
                .unwrap_or_default()
                .iter()
                .filter_map(|b| t.stem_of_bound(b))
                .collect();
            *seen_bounds.lock().unwrap() += near.len();
            let stem = match (near.is_empty(), rng.below(2)) {
                (false, 0) => {
                    let b = near[rng.below(near.len() as u64) as usize];
                    (b + rng.below(5)).saturating_sub(2).min(t.stems + 20)
                }
                _ => rng.below(t.stems + 20),
            };
            let v = rng.below(VARIANTS);
            let k = (stem, v);
            let sql = if t.keys.contains(&k) {
                match rng.below(8) {
                    0..=1 => format!("UPDATE {} SET v = v + 1 WHERE {}", t.name, t.key_where(k)),
                    2..=3 if matches!(t.kind, Kind::Text | Kind::Composite) => {
                        let old = t.text_of(k);
                        match respell(&old, &mut rng) {
                            Some(new) => {
                                let set = match t.kind {
                                    Kind::Text => format!("code = {}", sql_text(&new)),
                                    _ => format!("b = {}", sql_text(&new)),
                                };
                                let w = t.key_where(k);
                                t.spelled.insert(k, new);
                                format!("UPDATE {} SET {set}, v = v + 1 WHERE {w}", t.name)
                            }
                            None => {
                                format!("UPDATE {} SET s = 'x' WHERE {}", t.name, t.key_where(k))
                            }
                        }
                    }
                    4..=5 => {
                        // Move the row to another key, often across a split bound.
                        let mut to = (rng.below(t.stems + 20), rng.below(VARIANTS));
                        while t.keys.contains(&to) {
                            to = (to.0 + 1, to.1);
                        }
                        let w = t.key_where(k);
                        t.keys.remove(&k);
                        t.spelled.remove(&k);
                        t.keys.insert(to);
                        format!(
                            "UPDATE {} SET {}, v = v + 1 WHERE {w}",
                            t.name,
                            t.key_set(to)
                        )
                    }
                    _ => {
                        let w = t.key_where(k);
                        t.keys.remove(&k);
                        t.spelled.remove(&k);
                        format!("DELETE FROM {} WHERE {w}", t.name)
                    }
                }
            } else {
                t.keys.insert(k);
                t.insert(&[k])
            };
            conn.query_drop(&sql)
                .await
                .unwrap_or_else(|e| panic!("{sql}: {e}"));
            n += 1;
        }
        conn.query_drop("COMMIT").await.unwrap();
    }
    n
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn composite_text_decimal_and_datetime_keys_split_under_writes() {
    let Some(db) = MariaDb::start_or_skip().await else {
        return;
    };
    db.execute("CREATE DATABASE px").await.unwrap();
    let tables = vec![
        create(&db, "px.comp", Kind::Composite).await,
        create(&db, "px.txt", Kind::Text).await,
        create(&db, "px.dec", Kind::Decimal).await,
        create(&db, "px.dt", Kind::DateTime).await,
    ];
    let names: Vec<String> = tables.iter().map(|t| t.name.clone()).collect();
    let stop = Arc::new(AtomicBool::new(false));
    let seen_bounds = Arc::new(Mutex::new(0));
    let writer = tokio::spawn(write_near_bounds(
        db.url(),
        tables,
        stop.clone(),
        seen_bounds.clone(),
    ));
    // 4 readers over 4 tables of 4 ranges each: the ranges of one table start at
    // different binlog positions, so the binlog filter decides per range (and compares
    // text bounds on the server).
    let yaml = harness::yaml(
        &db,
        "px",
        "px.\\.*",
        "  scan.incremental.snapshot.chunk.size: 50\n  scan.snapshot.fetch.size: 16\n  connection.pool.size: 6\n",
    )
    .replace(
        "checkpoint.interval: 100ms",
        "checkpoint.interval: 100ms, parallelism: 4",
    );
    let handle = harness::build(&yaml).unwrap().spawn();
    harness::wait_sink_rows(
        "px",
        (4 * STEMS * VARIANTS) as usize * 9 / 10,
        &handle,
        Duration::from_secs(60),
    )
    .await;
    // A little more writing in the binlog phase.
    tokio::time::sleep(Duration::from_millis(500)).await;
    stop.store(true, Ordering::Relaxed);
    let statements = writer.await.unwrap();
    assert!(statements > 50, "the writer made only {statements} changes");
    assert!(
        *seen_bounds.lock().unwrap() > 0,
        "the writer never saw a split bound"
    );
    let refs: Vec<&str> = names.iter().map(String::as_str).collect();
    harness::wait_equal(&db, "px", &refs, Some(&handle), Duration::from_secs(60)).await;
    handle.stop();
    handle.join().await.unwrap();
    for name in &names {
        let plan = plan_of(name).unwrap_or_else(|| panic!("{name} was not split"));
        eprintln!("{name}: {} ranges, bounds {plan:?}", plan.len() + 1);
        assert!(
            plan.len() >= 2,
            "{name} should be read in 3 or 4 ranges: {plan:?}"
        );
    }
    let n = harness::check_exactly_once("px");
    assert!(n >= (4 * STEMS * VARIANTS) as usize, "{n} changes");
}

/// `pipeline.parallelism` sets how many ranges a table is split into (bounded by
/// `connection.pool.size`); without it the old default holds: up to 4 ranges for a key
/// the planner finds by index dives (here a DATETIME key), one range for a key led by
/// text (whose split costs a walk of the key index).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pipeline_parallelism_sets_the_number_of_ranges() {
    let Some(db) = MariaDb::start_or_skip().await else {
        return;
    };
    // (database, key, pool size, parallelism, expected ranges)
    let cases = [
        ("pa", Kind::DateTime, None, None, 4),
        ("pb", Kind::Text, None, None, 1),
        ("pc", Kind::Text, Some(8), Some(3), 3),
        ("pd", Kind::Composite, Some(2), Some(6), 2),
        ("pe", Kind::Decimal, None, Some(1), 1),
    ];
    for (dbn, kind, pool, parallelism, want) in cases {
        db.execute(&format!("CREATE DATABASE {dbn}")).await.unwrap();
        create(&db, &format!("{dbn}.t"), kind).await;
        let mut extra = "  scan.incremental.snapshot.chunk.size: 50\n".to_string();
        if let Some(p) = pool {
            extra.push_str(&format!("  connection.pool.size: {p}\n"));
        }
        let mut yaml = harness::yaml(&db, dbn, &format!("{dbn}.\\.*"), &extra);
        if let Some(p) = parallelism {
            yaml = yaml.replace(
                "checkpoint.interval: 100ms",
                &format!("checkpoint.interval: 100ms, parallelism: {p}"),
            );
        }
        let handle = harness::build(&yaml).unwrap().spawn();
        harness::wait_equal(
            &db,
            dbn,
            &[&format!("{dbn}.t")],
            Some(&handle),
            Duration::from_secs(60),
        )
        .await;
        handle.stop();
        handle.join().await.unwrap();
        let ranges = plan_of(&format!("{dbn}.t")).map_or(1, |b| b.len() + 1);
        assert_eq!(
            ranges, want,
            "{kind:?} key, pool {pool:?}, parallelism {parallelism:?}: {ranges} ranges"
        );
    }
}

/// Kills in the middle of split text and composite keys: a restart reads only what is
/// left of each range, at new positions, and the binlog filter compares the text bounds
/// recorded in the offset on the server.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kills_inside_split_text_and_composite_keys_lose_and_repeat_nothing() {
    let Some(db) = MariaDb::start_or_skip().await else {
        return;
    };
    db.execute("CREATE DATABASE pk").await.unwrap();
    let tables = vec![
        create_n(&db, "pk.txt", Kind::Text, 4000).await,
        create_n(&db, "pk.comp", Kind::Composite, 4000).await,
    ];
    let stop = Arc::new(AtomicBool::new(false));
    let writer = tokio::spawn(write_near_bounds(
        db.url(),
        tables,
        stop.clone(),
        Arc::new(Mutex::new(0)),
    ));
    let yaml = harness::yaml(
        &db,
        "pk",
        "pk.\\.*",
        "  scan.incremental.snapshot.chunk.size: 20\n  scan.snapshot.fetch.size: 8\n  connection.pool.size: 4\n  server-id: 5779\n",
    )
    .replace(
        "checkpoint.interval: 100ms",
        "checkpoint.interval: 100ms, parallelism: 4",
    );
    let store = Arc::new(MemoryStateStore::default());
    let mut split_kills = 0;
    for round in 0..4 {
        let mut before = store.load().await.unwrap().map(|c| c.id);
        let task =
            tokio::spawn(harness::build_with_store(&yaml, &store).run(std::future::pending()));
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(cp) = store.load().await.unwrap() {
                if Some(cp.id) != before {
                    let offset = cp.offset.0.to_string();
                    // A planned range not read yet, next to text bounds: a kill inside a
                    // split text-keyed table.
                    if offset.contains("\"unread\":true") && offset.contains("\"Text\"") {
                        split_kills += 1;
                        break;
                    }
                    // The snapshot is over: kill in the binlog phase instead.
                    if offset.contains("\"snapshot_pending\":[]") {
                        break;
                    }
                    before = Some(cp.id);
                }
            }
            assert!(!task.is_finished(), "round {round}: {:?}", task.await);
            assert!(
                tokio::time::Instant::now() < deadline,
                "round {round}: no checkpoint"
            );
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        task.abort();
        let _ = task.await;
    }
    assert!(
        split_kills > 0,
        "no kill landed while a split text-keyed table was partly read"
    );
    stop.store(true, Ordering::Relaxed);
    writer.await.unwrap();
    let handle = harness::build_with_store(&yaml, &store).spawn();
    harness::wait_equal(
        &db,
        "pk",
        &["pk.txt", "pk.comp"],
        Some(&handle),
        Duration::from_secs(60),
    )
    .await;
    handle.stop();
    handle.join().await.unwrap();
    assert!(
        plan_of("pk.txt").is_some_and(|b| b.len() >= 2),
        "pk.txt was not split: {:?}",
        plan_of("pk.txt")
    );
    harness::check_exactly_once("pk");
}
