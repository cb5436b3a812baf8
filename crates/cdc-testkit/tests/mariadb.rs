//! The kit's private MariaDB: binlog on, ROW format, full row images.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers may panic

use cdc_testkit::MariaDb;

#[tokio::test]
async fn private_mariadb_has_row_binlog() {
    let Some(db) = MariaDb::start_or_skip().await else {
        return;
    };
    let rows = db
        .query_text("SELECT @@log_bin, @@binlog_format, @@binlog_row_image, @@server_id, @@port")
        .await
        .unwrap();
    let row = &rows[0];
    assert_eq!(row[0].as_deref(), Some("1"));
    assert_eq!(row[1].as_deref(), Some("ROW"));
    assert_eq!(row[2].as_deref(), Some("FULL"));
    assert_eq!(row[3].as_deref(), Some(db.server_id().to_string().as_str()));
    assert_eq!(row[4].as_deref(), Some(db.port().to_string().as_str()));
    db.execute("CREATE DATABASE kit; CREATE TABLE kit.t (id INT PRIMARY KEY); INSERT INTO kit.t VALUES (1)")
        .await
        .unwrap();
    let events = db.query_text("SHOW BINLOG EVENTS").await.unwrap();
    assert!(
        events.iter().any(|r| r[5]
            .as_deref()
            .is_some_and(|info| info.contains("table_id"))),
        "a Table_map event for the insert"
    );
}

#[tokio::test]
async fn two_servers_run_side_by_side() {
    let Some(a) = MariaDb::start_or_skip().await else {
        return;
    };
    let Some(b) = MariaDb::start_or_skip().await else {
        return;
    };
    assert_ne!(a.port(), b.port());
    assert_ne!(a.server_id(), b.server_id());
    let dir = a.data_dir();
    drop(a);
    assert!(!dir.exists(), "the data directory is removed on drop");
    b.execute("SELECT 1").await.unwrap();
}
