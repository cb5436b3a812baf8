//! `cdc snapshot PIPELINE --table db.t` writes the request into the signalling table, and
//! says what to do when the pipeline has none.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::Command;

use cdc_testkit::MariaDb;

fn pipeline(db: &MariaDb, dir: &std::path::Path, signal: bool) -> std::path::PathBuf {
    let signal = if signal {
        "  debezium.signal.data.collection: rs.cdc_signal\n"
    } else {
        ""
    };
    let yaml = format!(
        "source:\n  type: mysql\n  hostname: 127.0.0.1\n  port: {}\n  username: root\n  password: ''\n  tables: rs.t\n{signal}sink: {{type: values}}\npipeline: {{name: snapcmd}}\n",
        db.port()
    );
    let path = dir.join(if signal.is_empty() {
        "plain.yaml"
    } else {
        "signal.yaml"
    });
    std::fs::write(&path, yaml).unwrap();
    path
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cdc_snapshot_writes_a_signal_row() {
    let Some(db) = MariaDb::start_or_skip().await else {
        return;
    };
    db.execute(
        "CREATE DATABASE rs; CREATE TABLE rs.cdc_signal (id VARCHAR(42) PRIMARY KEY, \
         type VARCHAR(32) NOT NULL, data VARCHAR(2048) NULL); CREATE TABLE rs.t (id INT PRIMARY KEY)",
    )
    .await
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let run = |file: &std::path::Path, table: &str| {
        Command::new(env!("CARGO_BIN_EXE_cdc"))
            .args(["snapshot", file.to_str().unwrap(), "--table", table])
            .output()
            .unwrap()
    };
    let out = run(&pipeline(&db, dir.path(), true), "rs.t");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{out:?}");
    assert!(stdout.contains("rs.t will be read again"), "{stdout}");
    let rows = db
        .query_text("SELECT type, data FROM rs.cdc_signal")
        .await
        .unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0][0].as_deref(), Some("execute-snapshot"));
    assert!(
        rows[0][1].as_deref().unwrap().contains("\"rs.t\""),
        "{rows:?}"
    );

    // No signalling table configured, or a table the pipeline does not capture: exit 1
    // with what to do.
    for (file, table, expected) in [
        (
            pipeline(&db, dir.path(), false),
            "rs.t",
            "debezium.signal.data.collection",
        ),
        (
            pipeline(&db, dir.path(), true),
            "rs.other",
            "names no table",
        ),
    ] {
        let out = run(&file, table);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{stderr}");
        assert!(stderr.contains(expected), "{stderr}");
    }
}
