//! Faults and clear errors: a killed replication connection resumes at the exact position,
//! a MariaDB GTID start, and the errors a user meets (wrong password, unreachable server,
//! purged binlog, wrong binlog settings), each one message saying what, where and what to
//! do, never a panic.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers may panic

#[path = "common/harness.rs"]
mod harness;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use cdc_api::TableId;
use cdc_runtime::MemoryStateStore;
use cdc_testkit::MariaDb;
use harness::{KeyKind, TestTable};

/// Runs a pipeline to its end (it must fail) within `limit`, returning the error text.
async fn run_to_error(yaml: &str, limit: Duration) -> String {
    let pipeline = harness::build(yaml).unwrap();
    let outcome = tokio::time::timeout(limit, pipeline.run(std::future::pending()))
        .await
        .unwrap_or_else(|_| panic!("the pipeline did not give up within {limit:?}"));
    outcome.expect_err("the pipeline must fail").to_string()
}

async fn wait_rows(sink: &str, table: &TableId, n: usize, handle: &cdc_runtime::PipelineHandle) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while harness::sink_rows(sink, table).map_or(0, |r| r.len()) < n {
        assert!(!handle.is_finished(), "the pipeline ended early");
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {n} rows in {table}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Ids of the server's `Binlog Dump` threads (one per replication connection).
async fn dump_threads(db: &MariaDb) -> Vec<String> {
    db.query_text("SELECT ID FROM information_schema.PROCESSLIST WHERE COMMAND LIKE 'Binlog Dump%'")
        .await
        .unwrap()
        .into_iter()
        .filter_map(|r| r.into_iter().next().flatten())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_replication_connection_resumes_at_the_exact_position() {
    let Some(db) = MariaDb::start_or_skip().await else {
        return;
    };
    db.execute("CREATE DATABASE kd").await.unwrap();
    let mut ts = vec![
        TestTable {
            name: "kd.a".into(),
            kind: KeyKind::Int,
            keys: std::collections::BTreeSet::default(),
            next: 0,
        },
        TestTable {
            name: "kd.b".into(),
            kind: KeyKind::Text,
            keys: std::collections::BTreeSet::default(),
            next: 0,
        },
    ];
    harness::create_tables(&db, &mut ts, 100).await;
    let stop = Arc::new(AtomicBool::new(false));
    let writer = tokio::spawn(harness::write_randomly(
        db.url(),
        ts,
        3,
        Duration::from_millis(3),
        stop.clone(),
    ));
    let yaml = harness::yaml(&db, "kd", "kd.\\.*", "  server-id: 5901\n");
    let handle = harness::build(&yaml).unwrap().spawn();
    wait_rows("kd", &TableId::new("kd", "a"), 100, &handle).await;
    let mut kills = 0;
    for _ in 0..3 {
        // Wait for the (re)connected dump thread, then kill it mid-stream.
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        let ids = loop {
            let ids = dump_threads(&db).await;
            if !ids.is_empty() {
                break ids;
            }
            assert!(!handle.is_finished(), "the pipeline ended early");
            assert!(
                tokio::time::Instant::now() < deadline,
                "no Binlog Dump thread"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        for id in ids {
            if db.execute(&format!("KILL {id}")).await.is_ok() {
                kills += 1;
            }
        }
        // Let changes pile up while the reader reconnects.
        let changes = handle.metrics().total_changes();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        while handle.metrics().total_changes() < changes + 50 {
            assert!(!handle.is_finished(), "the pipeline ended after a KILL");
            assert!(
                tokio::time::Instant::now() < deadline,
                "no changes after the KILL"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    assert!(kills >= 3, "killed {kills} dump threads");
    stop.store(true, Ordering::Relaxed);
    writer.await.unwrap();
    harness::wait_equal(
        &db,
        "kd",
        &["kd.a", "kd.b"],
        Some(&handle),
        Duration::from_secs(30),
    )
    .await;
    handle.stop();
    handle.join().await.unwrap();
    harness::check_exactly_once("kd");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mariadb_gtid_start_reads_the_transactions_after_the_gtid() {
    let Some(db) = MariaDb::start_or_skip().await else {
        return;
    };
    db.execute(
        "CREATE DATABASE g; CREATE TABLE g.t (id INT PRIMARY KEY, v VARCHAR(10)); \
         INSERT INTO g.t VALUES (1, 'before')",
    )
    .await
    .unwrap();
    let pos = db.query_text("SELECT @@gtid_binlog_pos").await.unwrap()[0][0]
        .clone()
        .unwrap();
    db.execute("INSERT INTO g.t VALUES (2, 'after'); UPDATE g.t SET v = 'changed' WHERE id = 1")
        .await
        .unwrap();
    let yaml = harness::yaml(
        &db,
        "gtid",
        "g.t",
        &format!(
            "  scan.startup.mode: specific-offset\n  scan.startup.specific-offset.gtid-set: '{pos}'\n"
        ),
    );
    let handle = harness::build(&yaml).unwrap().spawn();
    let table = TableId::new("g", "t");
    // Only what came after the GTID: the insert of 2 and the update of 1 (whose before
    // image the sink never had, so it lands as the new row).
    wait_rows("gtid", &table, 2, &handle).await;
    db.execute("INSERT INTO g.t VALUES (3, 'later')")
        .await
        .unwrap();
    wait_rows("gtid", &table, 3, &handle).await;
    let rows = harness::sink_rows("gtid", &table).unwrap();
    assert_eq!(
        rows,
        [["1", "changed"], ["2", "after"], ["3", "later"]]
            .map(|r| r.map(String::from).to_vec())
            .to_vec()
    );
    assert!(
        !rows.iter().any(|r| r[1] == "before"),
        "the change before the GTID arrived"
    );
    handle.stop();
    handle.join().await.unwrap();

    // A MySQL-style GTID set is named as the wrong kind.
    let yaml = harness::yaml(
        &db,
        "gtid_bad",
        "g.t",
        "  scan.startup.mode: specific-offset\n  scan.startup.specific-offset.gtid-set: '3E11FA47-71CA-11E1-9E33-C80AA9429562:23'\n",
    );
    let e = run_to_error(&yaml, Duration::from_secs(30)).await;
    assert!(
        e.contains("scan.startup.specific-offset.gtid-set") && e.contains("MariaDB GTID"),
        "{e}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connection_errors_are_clear_and_bounded() {
    let Some(db) = MariaDb::start_or_skip().await else {
        return;
    };
    // Wrong password: permanent at once, says what to check.
    let yaml = harness::yaml(&db, "pw", "x.y", "").replace("password: ''", "password: 'wrong'");
    let e = run_to_error(&yaml, Duration::from_secs(30)).await;
    assert!(
        e.contains("connecting to 127.0.0.1")
            && e.contains("1045")
            && e.contains("check the source's username and password"),
        "{e}"
    );

    // A closed port: retried `connect.max-retries` times, then a permanent error.
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let yaml = harness::yaml(
        &db,
        "closed",
        "x.y",
        "  connect.timeout: 1s\n  connect.max-retries: 2\n",
    )
    .replace(&format!("port: {}", db.port()), &format!("port: {port}"));
    let started = Instant::now();
    let e = run_to_error(&yaml, Duration::from_secs(20)).await;
    let took = started.elapsed();
    assert!(
        e.contains(&format!("connecting to 127.0.0.1:{port}"))
            && e.contains("after 3 attempts (connect.max-retries)"),
        "{e}"
    );
    // Two back-offs (0.5 s, 1 s) and three refused connects.
    assert!(
        took < Duration::from_secs(10),
        "gave up only after {took:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn purged_binlog_says_to_start_over() {
    let Some(db) = MariaDb::start_or_skip().await else {
        return;
    };
    db.execute(
        "CREATE DATABASE p; CREATE TABLE p.t (id INT PRIMARY KEY); INSERT INTO p.t VALUES (1)",
    )
    .await
    .unwrap();
    let yaml = harness::yaml(&db, "purge", "p.t", "  server-id: 5902\n");
    let store = checkpoint_after_rows(&yaml, "purge", &TableId::new("p", "t"), 1).await;
    // A dump thread the server has not yet noticed is gone keeps its file from purging.
    for id in dump_threads(&db).await {
        let _ = db.execute(&format!("KILL {id}")).await;
    }
    // The checkpoint points into the current file; move on two files and purge it.
    db.execute("INSERT INTO p.t VALUES (2); FLUSH BINARY LOGS; INSERT INTO p.t VALUES (3); FLUSH BINARY LOGS")
        .await
        .unwrap();
    let files = db.query_text("SHOW BINARY LOGS").await.unwrap();
    let last = files.last().unwrap()[0].clone().unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        db.execute(&format!("PURGE BINARY LOGS TO '{last}'"))
            .await
            .unwrap();
        if db.query_text("SHOW BINARY LOGS").await.unwrap().len() == 1 {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the server keeps the old binlogs"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let pipeline = harness::build_with_store(&yaml, &store);
    let e = tokio::time::timeout(
        Duration::from_secs(30),
        pipeline.run(std::future::pending()),
    )
    .await
    .expect("the pipeline did not give up")
    .expect_err("resuming from a purged binlog must fail")
    .to_string();
    assert!(
        e.contains("1236")
            && e.contains("fresh state directory")
            && e.contains("keep binlogs longer"),
        "{e}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_matching_table_runs_and_keyless_tables_are_read() {
    let Some(db) = MariaDb::start_or_skip().await else {
        return;
    };
    db.execute(
        "CREATE DATABASE k; CREATE TABLE k.nokey (a INT, b VARCHAR(10)); \
         INSERT INTO k.nokey VALUES (1, 'x'), (2, 'y'), (2, 'y')",
    )
    .await
    .unwrap();
    // `tables` matching nothing: a warning, and the pipeline runs (tables created later
    // that match are captured with scan.binlog.newly-added-table.enabled).
    let yaml = harness::yaml(&db, "none", "nothing\\.here", "");
    let handle = harness::build(&yaml).unwrap().spawn();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(3);
    while tokio::time::Instant::now() < deadline {
        assert!(!handle.is_finished(), "the pipeline ended without tables");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    handle.stop();
    handle.join().await.unwrap();

    // A table without a primary key: one pass of the snapshot, then its binlog rows.
    let yaml = harness::yaml(&db, "nokey", "k.nokey", "");
    let handle = harness::build(&yaml).unwrap().spawn();
    let table = TableId::new("k", "nokey");
    wait_rows("nokey", &table, 3, &handle).await;
    db.execute("INSERT INTO k.nokey VALUES (3, 'z')")
        .await
        .unwrap();
    wait_rows("nokey", &table, 4, &handle).await;
    handle.stop();
    handle.join().await.unwrap();
    let mut rows = harness::sink_rows("nokey", &table).unwrap();
    rows.sort();
    assert_eq!(rows, harness::source_rows(&db, "k.nokey").await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn statement_binlog_format_is_named_with_the_fix() {
    if !MariaDb::installed_or_skip() {
        return;
    }
    let db = MariaDb::start_with_args(&["--binlog-format=STATEMENT"])
        .await
        .unwrap();
    let e = run_to_error(
        &harness::yaml(&db, "stmt", "x.y", ""),
        Duration::from_secs(30),
    )
    .await;
    assert!(
        e.contains("binlog_format is STATEMENT, ROW is needed")
            && e.contains("SET GLOBAL binlog_format = 'ROW'"),
        "{e}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn minimal_row_image_is_named_with_the_fix() {
    if !MariaDb::installed_or_skip() {
        return;
    }
    let db = MariaDb::start_with_args(&["--binlog-row-image=MINIMAL"])
        .await
        .unwrap();
    let e = run_to_error(
        &harness::yaml(&db, "minimal", "x.y", ""),
        Duration::from_secs(30),
    )
    .await;
    assert!(
        e.contains("binlog_row_image is MINIMAL, FULL is needed")
            && e.contains("SET GLOBAL binlog_row_image = 'FULL'"),
        "{e}"
    );
}

/// The server's default is FULL, but one session logs a change with a partial row image:
/// the pipeline stops at that change, saying what happened and what to do, instead of
/// writing NULLs over the columns the image left out.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_partial_row_image_from_one_session_stops_with_the_fix() {
    let Some(db) = MariaDb::start_or_skip().await else {
        return;
    };
    db.execute(
        "CREATE DATABASE pi; CREATE TABLE pi.t (id INT PRIMARY KEY, a INT, b VARCHAR(10));          INSERT INTO pi.t VALUES (1, 1, 'one')",
    )
    .await
    .unwrap();
    let yaml = harness::yaml(
        &db,
        "partial",
        "pi.t",
        "  server-id: 5605
",
    );
    let pipeline = harness::build(&yaml).unwrap();
    let metrics = pipeline.metrics();
    let run = tokio::spawn(pipeline.run(std::future::pending()));
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while !metrics.source_progress().streaming {
        assert!(tokio::time::Instant::now() < deadline, "never streamed");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    db.execute("SET SESSION binlog_row_image = 'MINIMAL'; UPDATE pi.t SET a = 2 WHERE id = 1")
        .await
        .unwrap();
    let e = tokio::time::timeout(Duration::from_secs(30), run)
        .await
        .expect("the pipeline stops")
        .unwrap()
        .expect_err("the pipeline must fail")
        .to_string();
    assert!(
        e.contains("table pi.t") && e.contains("binlog_row_image MINIMAL or NOBLOB"),
        "{e}"
    );
}

/// The source server restarts (clean shutdown) mid-stream: the reader reconnects with backoff
/// and resumes at its exact position; every change arrives once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mariadb_restart_mid_stream_resumes_exactly() {
    let Some(mut db) = MariaDb::start_or_skip().await else {
        return;
    };
    db.execute("CREATE DATABASE kr; CREATE TABLE kr.a (id INT PRIMARY KEY, v VARCHAR(20))")
        .await
        .unwrap();
    let insert = |from: i32, to: i32| {
        let rows: Vec<String> = (from..to).map(|i| format!("({i}, 'v{i}')")).collect();
        format!("INSERT INTO kr.a VALUES {}", rows.join(","))
    };
    db.execute(&insert(0, 100)).await.unwrap();
    let yaml = harness::yaml(
        &db,
        "kr",
        "kr.\\.*",
        "  server-id: 5902\n  connect.max-retries: 5\n",
    );
    let handle = harness::build(&yaml).unwrap().spawn();
    wait_rows("kr", &TableId::new("kr", "a"), 100, &handle).await;
    db.execute(&insert(100, 150)).await.unwrap();
    db.execute("UPDATE kr.a SET v = 'before restart' WHERE id < 10")
        .await
        .unwrap();
    db.restart().await.unwrap();
    db.execute(&insert(150, 200)).await.unwrap();
    db.execute("UPDATE kr.a SET v = 'after restart' WHERE id >= 190; DELETE FROM kr.a WHERE id BETWEEN 20 AND 29")
        .await
        .unwrap();
    harness::wait_equal(&db, "kr", &["kr.a"], Some(&handle), Duration::from_secs(60)).await;
    handle.stop();
    handle.join().await.unwrap();
    harness::check_exactly_once("kr");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_checkpoint_is_not_resumed_on_another_server() {
    let Some(first) = MariaDb::start_or_skip().await else {
        return;
    };
    let Some(second) = MariaDb::start_or_skip().await else {
        return;
    };
    for db in [&first, &second] {
        db.execute(
            "CREATE DATABASE o; CREATE TABLE o.t (id INT PRIMARY KEY); INSERT INTO o.t VALUES (1)",
        )
        .await
        .unwrap();
    }
    let yaml = harness::yaml(&first, "other_server", "o.t", "  server-id: 5904\n");
    let store = checkpoint_after_rows(&yaml, "other_server", &TableId::new("o", "t"), 1).await;
    // The same pipeline, its host now the other server (a failover, a typo).
    let moved = yaml.replace(
        &format!("port: {}", first.port()),
        &format!("port: {}", second.port()),
    );
    assert_ne!(moved, yaml);
    let e = run_to_error_with_store(&moved, &store).await;
    assert!(
        e.contains("binlog file positions do not carry over") && e.contains("--reset"),
        "{e}"
    );
    // Back on its own server it resumes.
    let handle = harness::build_with_store(&yaml, &store).spawn();
    first.execute("INSERT INTO o.t VALUES (2)").await.unwrap();
    wait_rows("other_server", &TableId::new("o", "t"), 2, &handle).await;
    handle.stop();
    handle.join().await.unwrap();
}

/// Runs `yaml` until its sink holds `rows` rows of `table`, stops it cleanly and returns
/// the state store holding its checkpoint.
async fn checkpoint_after_rows(
    yaml: &str,
    sink: &str,
    table: &TableId,
    rows: usize,
) -> Arc<MemoryStateStore> {
    let store = Arc::new(MemoryStateStore::default());
    let handle = harness::build_with_store(yaml, &store).spawn();
    wait_rows(sink, table, rows, &handle).await;
    handle.stop();
    handle.join().await.unwrap();
    store
}

async fn run_to_error_with_store(yaml: &str, store: &Arc<MemoryStateStore>) -> String {
    let pipeline = harness::build_with_store(yaml, store);
    tokio::time::timeout(
        Duration::from_secs(30),
        pipeline.run(std::future::pending()),
    )
    .await
    .expect("the pipeline did not stop")
    .expect_err("the pipeline must refuse")
    .to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_checkpoint_follows_a_mariadb_failover_by_gtid() {
    let Some(primary) = MariaDb::start_or_skip().await else {
        return;
    };
    let Some(replica) = MariaDb::start_with_args_or_skip(&["--log-slave-updates"]).await else {
        return;
    };
    replica
        .execute(&format!(
            "CHANGE MASTER TO MASTER_HOST = '127.0.0.1', MASTER_PORT = {}, MASTER_USER = 'root', \
             MASTER_PASSWORD = '', MASTER_USE_GTID = slave_pos; START SLAVE",
            primary.port()
        ))
        .await
        .unwrap();
    primary
        .execute(
            "CREATE DATABASE fo; CREATE TABLE fo.t (id INT PRIMARY KEY, v INT); \
             INSERT INTO fo.t VALUES (1, 0), (2, 0)",
        )
        .await
        .unwrap();
    caught_up(&primary, &replica).await;

    let yaml = harness::yaml(&primary, "failover", "fo.t", "  server-id: 5905\n");
    let store = Arc::new(MemoryStateStore::default());
    let t = TableId::new("fo", "t");
    let handle = harness::build_with_store(&yaml, &store).spawn();
    wait_rows("failover", &t, 2, &handle).await;
    primary
        .execute("INSERT INTO fo.t VALUES (3, 0)")
        .await
        .unwrap();
    wait_rows("failover", &t, 3, &handle).await;
    handle.stop();
    handle.join().await.unwrap();
    // Changes the pipeline has not seen, then the primary is gone: the replica takes over.
    primary
        .execute("UPDATE fo.t SET v = 1 WHERE id = 1; DELETE FROM fo.t WHERE id = 2")
        .await
        .unwrap();
    caught_up(&primary, &replica).await;
    replica.execute("STOP SLAVE").await.unwrap();
    let primary_port = primary.port();
    drop(primary);
    replica
        .execute("INSERT INTO fo.t VALUES (4, 0)")
        .await
        .unwrap();
    let moved = yaml.replace(
        &format!("port: {primary_port}"),
        &format!("port: {}", replica.port()),
    );
    let handle = harness::build_with_store(&moved, &store).spawn();
    harness::wait_equal(
        &replica,
        "failover",
        &["fo.t"],
        Some(&handle),
        Duration::from_secs(30),
    )
    .await;
    handle.stop();
    handle.join().await.unwrap();
    // The offset now holds the replica's positions: a restart there resumes as usual.
    replica
        .execute("UPDATE fo.t SET v = 2 WHERE id = 4")
        .await
        .unwrap();
    let handle = harness::build_with_store(&moved, &store).spawn();
    harness::wait_equal(
        &replica,
        "failover",
        &["fo.t"],
        Some(&handle),
        Duration::from_secs(30),
    )
    .await;
    handle.stop();
    handle.join().await.unwrap();
    harness::check_exactly_once("failover");
}

/// Waits until `replica` applied everything `primary` has written.
async fn caught_up(primary: &MariaDb, replica: &MariaDb) {
    let pos = primary
        .query_text("SELECT @@gtid_binlog_pos")
        .await
        .unwrap()[0][0]
        .clone()
        .unwrap();
    let waited = replica
        .query_text(&format!("SELECT MASTER_GTID_WAIT('{pos}', 30)"))
        .await
        .unwrap();
    assert_eq!(
        waited[0][0].as_deref(),
        Some("0"),
        "the replica did not catch up"
    );
}

/// Two readers with one `server-id` on one server (two pipelines, or two copies of one):
/// when the second starts streaming the server ends the first one's binlog dump (MariaDB
/// error 4052). The first must stop, soon and for good, with an error that names the id
/// and says what to do, instead of reconnecting and kicking the other out in turn; the
/// second keeps streaming.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_reader_with_the_same_server_id_stops_the_first_with_a_clear_error() {
    let Some(db) = MariaDb::start_or_skip().await else {
        return;
    };
    db.execute("CREATE DATABASE dup; CREATE TABLE dup.t (id INT PRIMARY KEY); INSERT INTO dup.t VALUES (1)")
        .await
        .unwrap();
    let table = TableId::new("dup", "t");
    let first_yaml = harness::yaml(&db, "dup_first", "dup.t", "  server-id: 4242\n");
    // Memory state stores: each run starts fresh, and nothing is left on disk.
    let first = harness::build_with_store(&first_yaml, &Arc::new(MemoryStateStore::default()));
    let first_metrics = first.metrics();
    let first_run = tokio::spawn(first.run(std::future::pending()));
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while !first_metrics.source_progress().streaming || dump_threads(&db).await.is_empty() {
        if first_run.is_finished() {
            let outcome = first_run.await;
            panic!("the first pipeline ended early: {outcome:?}");
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the first pipeline never streamed"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // Another pipeline (another name, so only the explicit id is shared).
    let second_yaml = harness::yaml(&db, "dup_second", "dup.t", "  server-id: 4242\n");
    let second =
        harness::build_with_store(&second_yaml, &Arc::new(MemoryStateStore::default())).spawn();
    let e = tokio::time::timeout(Duration::from_secs(30), first_run)
        .await
        .expect("the kicked reader did not stop within 30 s")
        .unwrap()
        .expect_err("the kicked reader must fail")
        .to_string();
    assert!(
        e.contains("server-id 4242")
            && e.contains("another reader")
            && e.contains("own `server-id`")
            && e.contains("only one copy of this pipeline"),
        "{e}"
    );

    // The reader that connected last goes on.
    db.execute("INSERT INTO dup.t VALUES (2)").await.unwrap();
    wait_rows("dup_second", &table, 2, &second).await;
    assert!(!second.is_finished(), "the second pipeline stopped");
    second.stop();
    second.join().await.unwrap();
}
