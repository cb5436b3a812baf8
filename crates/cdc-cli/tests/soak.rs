//! The soak run (one minute in CI; `scripts/soak.sh` runs it longer): the real `cdc`
//! binary replicating the kit's MariaDB into the Doris emulator for `SOAK_MINUTES`
//! (default 1) under a steady mixed workload, with DDL and faults injected along the way:
//! `kill -9` of `cdc`, a MariaDB restart, 5xx answers, connection resets, publish timeouts, slow loads, "too many
//! versions" and the BEs down for a while. At the end the target must equal the source, no
//! pre-committed transaction may be left, and memory must not have grown. It prints a
//! markdown report (the script puts it into docs/soak.md).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::fmt::Write as _;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use cdc_testkit::{DorisEmulator, DorisFault, MariaDb, TxnState};
use common::{Lcg, log_tail as tail, spawn_cdc};

const SCHEMA: &str = "
CREATE DATABASE soak CHARACTER SET utf8mb4;
CREATE TABLE soak.orders (
  id BIGINT PRIMARY KEY, customer INT, note VARCHAR(64), amount DECIMAL(12,2),
  updated DATETIME(3), flag BOOL
);
CREATE TABLE soak.events (at DATETIME(6), kind VARCHAR(16), payload TEXT);
CREATE TABLE soak.customers (id INT PRIMARY KEY, name VARCHAR(40), balance BIGINT);
";

/// Resident memory of a process in kB (`VmRSS`), if it is still there.
fn rss_kb(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

async fn rows(db: &MariaDb, table: &str) -> Vec<Vec<Option<String>>> {
    let mut rows = db
        .query_text(&format!("SELECT * FROM soak.{table}"))
        .await
        .unwrap_or_default();
    rows.sort();
    rows
}

/// The writer: a steady mix of inserts, updates and deletes in small transactions.
async fn workload(
    port: u16,
    seed: u64,
    stop: tokio::sync::watch::Receiver<bool>,
    done: Arc<AtomicU64>,
    failed: Arc<AtomicU64>,
) {
    let pool = mysql_async::Pool::new(
        mysql_async::OptsBuilder::default()
            .ip_or_hostname("127.0.0.1")
            .tcp_port(port)
            .user(Some("root")),
    );
    let mut rng = Lcg(seed ^ 0x5eed);
    let mut next_id = 1u64;
    while !*stop.borrow() {
        let id = next_id;
        let sql = format!(
            "BEGIN;\
             INSERT INTO soak.orders (id, customer, note, amount, updated, flag) VALUES ({id}, {c}, 'order {id} ✓', {a}.{b:02}, NOW(3), {f});\
             UPDATE soak.orders SET amount = amount + 1, updated = NOW(3) WHERE id = {u};\
             DELETE FROM soak.orders WHERE id = {d};\
             INSERT INTO soak.events VALUES (NOW(6), 'tick', REPEAT('x', {len}));\
             INSERT INTO soak.customers VALUES ({c}, 'c{c}', 1) ON DUPLICATE KEY UPDATE balance = balance + 1;\
             COMMIT",
            c = rng.next(500),
            a = rng.next(100_000),
            b = rng.next(100),
            f = rng.next(2),
            u = 1 + rng.next(id),
            d = 1 + rng.next(id * 4),
            len = rng.next(300),
        );
        let result = async {
            let mut conn = pool.get_conn().await?;
            mysql_async::prelude::Queryable::query_drop(&mut conn, sql).await
        }
        .await;
        match result {
            Ok(()) => {
                next_id += 1;
                done.fetch_add(1, Ordering::Relaxed);
            }
            Err(_) => {
                // The server restarts now and then: the transaction is rolled back or
                // committed as a whole; either way the target must follow.
                failed.fetch_add(1, Ordering::Relaxed);
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
        }
        tokio::time::sleep(Duration::from_millis(4)).await;
    }
    let _ = pool.disconnect().await;
}

/// CI runs one minute of it (one fault, one DDL); `scripts/soak.sh` runs tens of minutes.
/// The default delivery: exactly-once (two-phase commit).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn soak() {
    run_soak(false).await;
}

/// The same in at-least-once batch mode (`sink.enable.batch-mode: true`, Flink CDC's
/// default): keyed tables must equal the source; the keyless, append-only one must hold
/// every source row (a replay after kill -9 may repeat some, as documented).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn soak_at_least_once() {
    run_soak(true).await;
}

async fn run_soak(at_least_once: bool) {
    let minutes: u64 = std::env::var("SOAK_MINUTES")
        .ok()
        .and_then(|m| m.parse().ok())
        .unwrap_or(1);
    let seed: u64 = std::env::var("SOAK_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(1, |d| d.as_secs())
        });
    let mut db = MariaDb::start().await.expect("the soak run needs MariaDB");
    db.execute(SCHEMA).await.unwrap();
    let doris = DorisEmulator::start().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("soak.yaml");
    std::fs::write(
        &file,
        format!(
            "source:\n  type: mysql\n  hostname: 127.0.0.1\n  port: {}\n  username: root\n  password: ''\n  tables: soak.\\.*\n  server-id: 5900\n  heartbeat.interval: 1s\n\
             sink:\n  type: doris\n  fenodes: {}\n  username: root\n  password: ''\n{}  table.create.properties.replication_num: 1\n\
             pipeline:\n  name: soak\n  schema.change.behavior: evolve\n  checkpoint.interval: 2s\n",
            db.port(),
            doris.fe_address(),
            if at_least_once {
                "  sink.enable.batch-mode: true\n"
            } else {
                ""
            }
        ),
    )
    .unwrap();
    let state = dir.path().join("state");
    let log = dir.path().join("cdc.log");
    let mut rng = Lcg(seed);
    let mut journal = Vec::new();
    let started = Instant::now();
    let deadline = started + Duration::from_secs(minutes * 60);

    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let done = Arc::new(AtomicU64::new(0));
    let failed = Arc::new(AtomicU64::new(0));
    let writer = tokio::spawn(workload(
        db.port(),
        seed,
        stop_rx,
        done.clone(),
        failed.clone(),
    ));

    let mut child = spawn_cdc(&file, &state, &log, &["--progress", "never"]);
    let mut restarts = 0;
    let mut supervisor_restarts = 0;
    // (seconds since start, RSS kB) of the running cdc process.
    let mut rss: Vec<(u64, u64)> = Vec::new();
    // The first fault and DDL come early in a short run.
    let mut next_fault = Instant::now() + Duration::from_secs(45.min(minutes * 20));
    let mut next_ddl = Instant::now() + Duration::from_secs(150.min(minutes * 40));
    let mut added_columns = 0;
    while Instant::now() < deadline {
        tokio::time::sleep(Duration::from_secs(5)).await;
        if let Ok(Some(status)) = child.try_wait() {
            // A fault outlasted the sink's retries: `cdc` stops with a clear error after
            // its last checkpoint, and a supervisor (systemd `Restart=always`, as
            // docs/operating.md advises) starts it again. It must never exit 0 here, and
            // never panic.
            assert!(!status.success(), "cdc ended on its own with {status}");
            let text = std::fs::read_to_string(&log).unwrap_or_default();
            assert!(!text.contains("panicked"), "a panic:\n{}", tail(&log));
            let reason = text
                .lines()
                .rev()
                .find(|l| l.starts_with("error:"))
                .unwrap_or("(no error line)")
                .to_string();
            journal.push(format!(
                "{:>5}s  cdc exited ({status}): {reason}; restarted by the supervisor",
                started.elapsed().as_secs()
            ));
            supervisor_restarts += 1;
            child = spawn_cdc(&file, &state, &log, &["--progress", "never"]);
            continue;
        }
        if let Some(kb) = rss_kb(child.id()) {
            rss.push((started.elapsed().as_secs(), kb));
        }
        let at = started.elapsed().as_secs();
        if Instant::now() >= next_ddl {
            added_columns += 1;
            let sql = format!(
                "ALTER TABLE soak.customers ADD COLUMN extra{added_columns} INT DEFAULT {added_columns}"
            );
            db.execute(&sql).await.unwrap();
            journal.push(format!("{at:>5}s  DDL: {sql}"));
            next_ddl = Instant::now() + Duration::from_secs(150 + rng.next(60));
        }
        if Instant::now() < next_fault {
            continue;
        }
        next_fault = Instant::now() + Duration::from_secs(40 + rng.next(50));
        let what = match rng.next(8) {
            0 | 1 => {
                child.kill().unwrap();
                child.wait().unwrap();
                restarts += 1;
                child = spawn_cdc(&file, &state, &log, &["--progress", "never"]);
                "kill -9 of cdc, restarted".to_string()
            }
            2 => {
                db.restart().await.unwrap();
                "MariaDB restarted".to_string()
            }
            3 => {
                doris.inject(DorisFault::ServerError {
                    status: 503,
                    count: 3,
                });
                "3 loads answered 503".to_string()
            }
            4 => {
                doris.inject(DorisFault::ResetConnection { count: 3 });
                "3 connections reset".to_string()
            }
            5 => {
                doris.inject(DorisFault::Slow {
                    delay: Duration::from_secs(3),
                    count: 2,
                });
                doris.inject(DorisFault::TooManyVersions { count: 2 });
                "2 slow loads (3 s), 2 'too many versions'".to_string()
            }
            6 => {
                doris.inject(DorisFault::BeDown(true));
                tokio::time::sleep(Duration::from_secs(20)).await;
                doris.inject(DorisFault::BeDown(false));
                "BEs down for 20 s".to_string()
            }
            _ => {
                doris.inject(DorisFault::PublishTimeout { count: 2 });
                "2 publish timeouts".to_string()
            }
        };
        journal.push(format!("{at:>5}s  {what}"));
    }
    stop_tx.send(true).unwrap();
    writer.await.unwrap();
    let committed = done.load(Ordering::Relaxed);

    // Catch up and compare.
    let tables = ["orders", "events", "customers"];
    let sync_deadline = Instant::now() + Duration::from_secs(300);
    let caught_up = Instant::now();
    loop {
        let mut diff = None;
        for t in tables {
            let mut want = rows(&db, t).await;
            let mut got = {
                let mut r = doris.table_rows("soak", t).unwrap_or_default();
                r.sort();
                r
            };
            if at_least_once && t == "events" {
                // Keyless: replays may repeat rows, never lose or invent one.
                want.dedup();
                got.dedup();
            }
            if want != got {
                diff = Some(format!(
                    "{t}: source {} rows, target {}",
                    want.len(),
                    got.len()
                ));
                break;
            }
        }
        let Some(diff) = diff else { break };
        if let Ok(Some(status)) = child.try_wait() {
            panic!(
                "cdc exited with {status} before catching up ({diff}); log tail:\n{}",
                tail(&log)
            );
        }
        assert!(
            Instant::now() < sync_deadline,
            "not in sync after 5 minutes: {diff}\n{}",
            tail(&log)
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let catch_up = caught_up.elapsed();
    Command::new("kill")
        .arg("-TERM")
        .arg(child.id().to_string())
        .status()
        .unwrap();
    let status = child.wait().unwrap();
    assert!(
        status.success(),
        "cdc did not stop cleanly: {status}\n{}",
        tail(&log)
    );
    let pending = doris
        .transactions()
        .into_iter()
        .filter(|t| matches!(t.state, TxnState::PreCommitted))
        .count();
    assert_eq!(pending, 0, "pre-committed transactions left behind");
    let log_text = std::fs::read_to_string(&log).unwrap_or_default();
    assert!(!log_text.contains("panicked"), "a panic in the log");

    // Memory: the peak of the last quarter against the peak of the second quarter (after
    // warm-up), both of running processes (restarts begin low, so peaks are compared).
    let total = started.elapsed().as_secs().max(1);
    let peak = |from: u64, to: u64| {
        rss.iter()
            .filter(|(t, _)| *t >= from && *t < to)
            .map(|(_, kb)| *kb)
            .max()
            .unwrap_or(0)
    };
    let early = peak(total / 4, total / 2);
    let late = peak(total * 3 / 4, total + 1);
    let overall = rss.iter().map(|(_, kb)| *kb).max().unwrap_or(0);
    let grew = late > early + early / 2 + 20_000;

    let mut report = String::new();
    let _ = writeln!(report, "| measure | value |\n|---|---|");
    let _ = writeln!(report, "| duration | {minutes} min (seed {seed}) |");
    let _ = writeln!(
        report,
        "| delivery | {} |",
        if at_least_once {
            "at-least-once (sink.enable.batch-mode: true)"
        } else {
            "exactly-once (the default: two-phase commit)"
        }
    );
    let _ = writeln!(
        report,
        "| source transactions committed | {committed} (5 row changes each; {} failed during the MariaDB restarts and were retried) |",
        failed.load(Ordering::Relaxed)
    );
    let _ = writeln!(
        report,
        "| faults injected | {} ({restarts} kill -9) |",
        journal
            .iter()
            .filter(|j| !j.contains("DDL") && !j.contains("supervisor"))
            .count()
    );
    let _ = writeln!(
        report,
        "| cdc stopped by a fault that outlasted its retries, restarted | {supervisor_restarts} |"
    );
    let _ = writeln!(report, "| schema changes | {added_columns} ADD COLUMN |");
    for t in tables {
        let _ = writeln!(
            report,
            "| rows in `soak.{t}` (source = target) | {} |",
            rows(&db, t).await.len()
        );
    }
    let _ = writeln!(
        report,
        "| catch-up after the workload stopped | {:.1} s |",
        catch_up.as_secs_f64()
    );
    let _ = writeln!(report, "| pre-committed transactions left | {pending} |");
    let _ = writeln!(
        report,
        "| cdc RSS peak, 2nd quarter / last quarter / overall | {} MB / {} MB / {} MB |",
        early / 1024,
        late / 1024,
        overall / 1024
    );
    let _ = writeln!(
        report,
        "| verdict | target = source; {} |",
        if grew { "MEMORY GREW" } else { "memory flat" }
    );
    let _ = writeln!(
        report,
        "\nFaults and DDL, in order:\n\n```\n{}\n```",
        journal.join("\n")
    );
    println!("SOAK REPORT BEGIN\n{report}SOAK REPORT END");
    assert!(!grew, "memory grew: {early} kB -> {late} kB\n{report}");
    db.stop();
}
