//! Text columns of every character set read the same UTF-8 text through the snapshot
//! (converted by the server) and through the binlog (converted by the source), for tables
//! captured at the start and for columns and tables that DDL adds while streaming.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers may panic

#[path = "common/harness.rs"]
mod harness;

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::Duration;

use cdc_api::{TableId, Value};
use cdc_testkit::{MariaDb, values_database};
use mysql_async::prelude::Queryable;

/// Columns of one text each: name, definition, the text row 1 holds.
const TEXTS: &[(&str, &str, &str)] = &[
    ("gbk", "VARCHAR(50) CHARACTER SET gbk", "你好，世界"),
    ("gb2312", "VARCHAR(50) CHARACTER SET gb2312", "中文简体 ・"),
    ("big5", "VARCHAR(50) CHARACTER SET big5", "中文繁體"),
    (
        "sjis",
        "VARCHAR(50) CHARACTER SET sjis",
        "こんにちは ｶﾀｶﾅ 〜",
    ),
    ("cp932", "VARCHAR(50) CHARACTER SET cp932", "ｶﾀｶﾅ ～ ①"),
    ("ujis", "VARCHAR(50) CHARACTER SET ujis", "にほんご 漢字"),
    ("eucjpms", "VARCHAR(50) CHARACTER SET eucjpms", "にほんご ①"),
    ("euckr", "VARCHAR(50) CHARACTER SET euckr", "안녕하세요"),
    // MySQL's latin1 is cp1252: € is 0x80.
    ("latin1", "VARCHAR(50) CHARACTER SET latin1", "éèêë ÀÁ ßø €"),
    ("latin1_bin", "VARCHAR(50) COLLATE latin1_bin", "Ünïcödé"),
    ("latin2", "VARCHAR(50) CHARACTER SET latin2", "Zażółć gęślą"),
    ("latin5", "VARCHAR(50) CHARACTER SET latin5", "İstanbul ğş"),
    ("latin7", "VARCHAR(50) CHARACTER SET latin7", "Ąčęėįšųūž"),
    ("greek", "VARCHAR(50) CHARACTER SET greek", "Καλημέρα"),
    ("hebrew", "VARCHAR(50) CHARACTER SET hebrew", "שלום"),
    (
        "cp1250",
        "VARCHAR(50) CHARACTER SET cp1250",
        "Příliš žluťoučký",
    ),
    ("cp1251", "VARCHAR(50) CHARACTER SET cp1251", "Привет, мир"),
    ("cp1256", "VARCHAR(50) CHARACTER SET cp1256", "مرحبا"),
    ("cp1257", "VARCHAR(50) CHARACTER SET cp1257", "Ąčęėįšųūž"),
    ("koi8r", "VARCHAR(50) CHARACTER SET koi8r", "Привет"),
    ("koi8u", "VARCHAR(50) CHARACTER SET koi8u", "Привіт ґ"),
    ("cp866", "VARCHAR(50) CHARACTER SET cp866", "Привет"),
    ("tis620", "VARCHAR(50) CHARACTER SET tis620", "สวัสดี"),
    ("macroman", "VARCHAR(50) CHARACTER SET macroman", "café ∑"),
    ("cp850", "VARCHAR(50) CHARACTER SET cp850", "Ça ÿ"),
    ("cp852", "VARCHAR(50) CHARACTER SET cp852", "Łódź"),
    ("swe7", "VARCHAR(50) CHARACTER SET swe7", "ÅÄÖ åäö"),
    ("ascii", "VARCHAR(50) CHARACTER SET ascii", "plain ascii"),
    ("utf16", "VARCHAR(50) CHARACTER SET utf16", "héllo 🎉"),
    ("utf16le", "VARCHAR(50) CHARACTER SET utf16le", "héllo 🎉"),
    ("utf32", "VARCHAR(50) CHARACTER SET utf32", "héllo 🎉"),
    ("ucs2", "VARCHAR(50) CHARACTER SET ucs2", "héllo wörld ✓"),
    ("utf8mb3", "VARCHAR(50) CHARACTER SET utf8mb3", "héllo"),
    ("utf8mb4_bin", "VARCHAR(50) COLLATE utf8mb4_bin", "héllo 🎉"),
    // CHAR: the binlog's length prefix is two bytes once n × the set's longest character
    // passes 255 bytes (gbk 2, big5 2, sjis 2, ujis 3, utf32 4, utf8mb4 4, latin1 1).
    ("c_gbk_10", "CHAR(10) CHARACTER SET gbk", "你好"),
    ("c_gbk_127", "CHAR(127) CHARACTER SET gbk", "你好"),
    ("c_gbk_200", "CHAR(200) CHARACTER SET gbk", "你好 世界"),
    ("c_big5_128", "CHAR(128) CHARACTER SET big5", "中文"),
    ("c_sjis_127", "CHAR(127) CHARACTER SET sjis", "ｶﾀｶﾅ"),
    ("c_ujis_85", "CHAR(85) CHARACTER SET ujis", "にほんご"),
    ("c_ujis_100", "CHAR(100) CHARACTER SET ujis", "にほんご"),
    ("c_utf32_63", "CHAR(63) CHARACTER SET utf32", "🎉 x"),
    ("c_utf32_70", "CHAR(70) CHARACTER SET utf32", "🎉 x"),
    ("c_utf16_64", "CHAR(64) CHARACTER SET utf16", "é 🎉"),
    ("c_ucs2_128", "CHAR(128) CHARACTER SET ucs2", "é ✓"),
    ("c_utf8_63", "CHAR(63) CHARACTER SET utf8mb4", "é 🎉"),
    ("c_utf8_85", "CHAR(85) CHARACTER SET utf8mb4", "é 🎉"),
    ("c_latin1_255", "CHAR(255) CHARACTER SET latin1", "é €"),
    ("c_cp1251_255", "CHAR(255) CHARACTER SET cp1251", "Привет"),
    ("t_gbk", "TEXT CHARACTER SET gbk", "长文本 你好"),
    ("t_ujis", "MEDIUMTEXT CHARACTER SET ujis", "長いテキスト"),
    ("t_utf16", "TEXT CHARACTER SET utf16", "🎉 long"),
    ("e_latin1", "ENUM('café','thé') CHARACTER SET latin1", "thé"),
    ("s_gbk", "SET('甲','乙','丙') CHARACTER SET gbk", "甲,丙"),
];

/// A `CHARACTER SET binary` column: bytes, not text.
const BINARY: (&str, &str, &[u8]) = ("bin", "VARCHAR(20) CHARACTER SET binary", b"\x00\xffbytes");

fn quote(text: &str) -> String {
    format!("'{}'", text.replace('\'', "''"))
}

fn create_table(name: &str) -> String {
    let columns: Vec<String> = TEXTS
        .iter()
        .map(|(n, t, _)| format!("`{n}` {t}"))
        .chain([format!("`{}` {}", BINARY.0, BINARY.1)])
        .collect();
    format!(
        "CREATE TABLE {name} (id INT PRIMARY KEY, {}) DEFAULT CHARSET=utf8mb4",
        columns.join(", ")
    )
}

/// What row 2 holds: empty strings (an ENUM has no empty value, strict mode refuses it).
fn empty_text(column: &str) -> &'static str {
    if column.starts_with("e_") {
        "café"
    } else {
        ""
    }
}

/// Row 1 holds every text, row 2 empty strings, row 3 NULLs.
fn insert_rows(table: &str) -> String {
    let full: Vec<String> = TEXTS
        .iter()
        .map(|(_, _, text)| quote(text))
        .chain(["X'00ff6279746573'".to_string()])
        .collect();
    let empty = TEXTS
        .iter()
        .map(|(n, _, _)| quote(empty_text(n)))
        .chain(["''".to_string()])
        .collect::<Vec<_>>()
        .join(", ");
    let nulls = vec!["NULL"; TEXTS.len() + 1].join(", ");
    format!(
        "INSERT INTO {table} VALUES (1, {}), (2, {empty}), (3, {nulls})",
        full.join(", ")
    )
}

/// Sets row `id` to the full texts (an UPDATE, so the binlog has before and after images).
fn update_row(table: &str, id: i32) -> String {
    let sets: Vec<String> = TEXTS
        .iter()
        .map(|(n, _, text)| format!("`{n}` = {}", quote(text)))
        .chain([format!("`{}` = X'00ff6279746573'", BINARY.0)])
        .collect();
    format!("UPDATE {table} SET {} WHERE id = {id}", sets.join(", "))
}

async fn wait_rows(
    handle: &mut Option<cdc_runtime::PipelineHandle>,
    sink: &str,
    table: &TableId,
    ready: impl Fn(&[Vec<Value>]) -> bool,
) -> Vec<Vec<Value>> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        {
            let db = values_database(sink);
            let guard = db.lock().unwrap();
            if let Some(t) = guard.tables.get(table) {
                let mut rows = t.rows.clone();
                rows.sort_by_key(|r| r[0].as_i64());
                if ready(&rows) {
                    return rows;
                }
            }
        }
        if handle
            .as_ref()
            .is_some_and(cdc_runtime::PipelineHandle::is_finished)
        {
            let outcome = handle.take().unwrap().join().await;
            panic!("the pipeline ended early: {outcome:?}");
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{table}: the rows did not arrive"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Checks row 1 (every text), and rows 2 and 3 when given (empty strings, NULLs).
fn check_rows(what: &str, rows: &[Vec<Value>], row2_full: bool) {
    let full: Vec<Value> = TEXTS
        .iter()
        .map(|(_, _, t)| Value::String((*t).to_string()))
        .chain([Value::Bytes(BINARY.2.to_vec())])
        .collect();
    let empty: Vec<Value> = TEXTS
        .iter()
        .map(|(n, _, _)| Value::String(empty_text(n).to_string()))
        .chain([Value::Bytes(Vec::new())])
        .collect();
    let expected: [(i64, &Vec<Value>); 2] =
        [(1, &full), (2, if row2_full { &full } else { &empty })];
    for (id, want) in expected {
        let row = rows
            .iter()
            .find(|r| r[0].as_i64() == Some(id))
            .unwrap_or_else(|| panic!("{what}: no row {id}"));
        for (i, (name, _, _)) in TEXTS.iter().chain([&(BINARY.0, "", "")]).enumerate() {
            assert_eq!(row[i + 1], want[i], "{what}: row {id}, column {name}");
        }
    }
    let nulls = rows.iter().find(|r| r[0].as_i64() == Some(3)).unwrap();
    assert!(nulls[1..].iter().all(Value::is_null), "{what}: row 3");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_charset_reads_the_same_through_snapshot_and_binlog() {
    let Some(db) = MariaDb::start_or_skip().await else {
        return;
    };
    db.execute(&format!(
        "CREATE DATABASE cs CHARACTER SET utf8mb4; {}; {}; {};",
        create_table("cs.snap"),
        create_table("cs.bin"),
        insert_rows("cs.snap"),
    ))
    .await
    .unwrap();
    let yaml = harness::yaml(&db, "charsets", "cs.\\.*", "  server-id: 5701\n");
    let mut handle = Some(harness::build(&yaml).unwrap().spawn());
    let snap = TableId::new("cs", "snap");
    let rows = wait_rows(&mut handle, "charsets", &snap, |r| r.len() == 3).await;
    check_rows("snapshot", &rows, false);

    // Through the binlog: inserts, and an update whose before image holds empty strings.
    db.execute(&format!(
        "{}; {}",
        insert_rows("cs.bin"),
        update_row("cs.snap", 2)
    ))
    .await
    .unwrap();
    let bin = TableId::new("cs", "bin");
    let rows = wait_rows(&mut handle, "charsets", &bin, |r| r.len() == 3).await;
    check_rows("binlog inserts", &rows, false);
    let rows = wait_rows(&mut handle, "charsets", &snap, |r| {
        r.iter()
            .any(|row| row[0].as_i64() == Some(2) && !row[1].to_string().is_empty())
    })
    .await;
    check_rows("binlog update", &rows, true);
    let handle = handle.unwrap();
    handle.stop();
    handle.join().await.unwrap();
}

/// The column list of the values sink's schema for `table`, with each row's text by name.
fn named_rows(sink: &str, table: &TableId) -> Vec<BTreeMap<String, String>> {
    let db = values_database(sink);
    let guard = db.lock().unwrap();
    let Some(t) = guard.tables.get(table) else {
        return Vec::new();
    };
    let mut rows: Vec<BTreeMap<String, String>> = t
        .rows
        .iter()
        .map(|r| {
            t.schema
                .columns
                .iter()
                .zip(r)
                .map(|(c, v)| (c.name.clone(), v.to_string()))
                .collect()
        })
        .collect();
    rows.sort_by_key(|r| r.get("id").and_then(|v| v.parse::<i64>().ok()));
    rows
}

async fn wait_value(
    handle: &mut Option<cdc_runtime::PipelineHandle>,
    table: &TableId,
    id: i64,
    column: &str,
    want: &str,
) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let rows = named_rows("charsets_ddl", table);
        let row = rows
            .iter()
            .find(|r| r.get("id").map(String::as_str) == Some(&id.to_string()));
        if let Some(got) = row.and_then(|r| r.get(column)) {
            assert_eq!(got, want, "{table} row {id} column {column}");
            return;
        }
        if handle
            .as_ref()
            .is_some_and(cdc_runtime::PipelineHandle::is_finished)
        {
            let outcome = handle.take().unwrap().join().await;
            panic!("the pipeline ended early: {outcome:?}");
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{table} row {id} column {column} did not arrive; rows {rows:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn columns_and_tables_added_while_streaming_decode_by_their_charsets() {
    let Some(db) = MariaDb::start_or_skip().await else {
        return;
    };
    db.execute(
        "CREATE DATABASE cs2 CHARACTER SET utf8mb4; \
         CREATE TABLE cs2.t (id INT PRIMARY KEY, g VARCHAR(20) CHARACTER SET gbk, a VARCHAR(20)); \
         INSERT INTO cs2.t VALUES (1, '你好', 'é');",
    )
    .await
    .unwrap();
    let yaml = harness::yaml(
        &db,
        "charsets_ddl",
        "cs2.\\.*, cs3.\\.*",
        "  server-id: 5702\n",
    );
    let mut handle = Some(harness::build(&yaml).unwrap().spawn());
    let t = TableId::new("cs2", "t");
    wait_value(&mut handle, &t, 1, "g", "你好").await;

    // A gbk column added by ALTER TABLE, then one without a set: the table's utf8mb4
    // (not the first text column's gbk).
    db.execute(
        "ALTER TABLE cs2.t ADD COLUMN c VARCHAR(20) CHARACTER SET gbk; \
         INSERT INTO cs2.t (id, g, a, c) VALUES (2, '世界', 'ü', '中文'); \
         ALTER TABLE cs2.t ADD COLUMN d VARCHAR(20); \
         INSERT INTO cs2.t (id, c, d) VALUES (3, '日本', 'héllo 🎉');",
    )
    .await
    .unwrap();
    wait_value(&mut handle, &t, 2, "c", "中文").await;
    wait_value(&mut handle, &t, 3, "d", "héllo 🎉").await;

    // A table created while streaming with DEFAULT CHARSET=latin1, one whose database
    // default is cp1251, and a new table default applied to a column added after it.
    db.execute(
        "CREATE TABLE cs2.l (id INT PRIMARY KEY, l VARCHAR(50), g VARCHAR(50) CHARACTER SET gbk, \
           c CHAR(200)) DEFAULT CHARSET=latin1; \
         INSERT INTO cs2.l VALUES (1, 'éèêë ÀÁ ßø €', '你好', 'ÿþ €'); \
         CREATE DATABASE cs3 CHARACTER SET cp1251; \
         CREATE TABLE cs3.r (id INT PRIMARY KEY, v VARCHAR(20)); \
         INSERT INTO cs3.r VALUES (1, 'Привет'); \
         ALTER TABLE cs2.t ENGINE=InnoDB DEFAULT CHARSET=sjis, ADD COLUMN e VARCHAR(10); \
         INSERT INTO cs2.t (id, e) VALUES (4, 'こんにちは');",
    )
    .await
    .unwrap();
    let l = TableId::new("cs2", "l");
    wait_value(&mut handle, &l, 1, "l", "éèêë ÀÁ ßø €").await;
    wait_value(&mut handle, &l, 1, "g", "你好").await;
    wait_value(&mut handle, &l, 1, "c", "ÿþ €").await;
    wait_value(&mut handle, &TableId::new("cs3", "r"), 1, "v", "Привет").await;
    wait_value(&mut handle, &t, 4, "e", "こんにちは").await;

    // A column redefined without a set takes the table's default (sjis now); CONVERT TO
    // changes every text column.
    db.execute(
        "ALTER TABLE cs2.t MODIFY c VARCHAR(30); \
         INSERT INTO cs2.t (id, c) VALUES (5, '日本語'); \
         ALTER TABLE cs2.l CONVERT TO CHARACTER SET utf8mb4; \
         INSERT INTO cs2.l VALUES (2, '🎉 é', '🎉', '✓');",
    )
    .await
    .unwrap();
    wait_value(&mut handle, &t, 5, "c", "日本語").await;
    wait_value(&mut handle, &l, 2, "l", "🎉 é").await;
    wait_value(&mut handle, &l, 2, "c", "✓").await;

    // And everything equals what the server itself shows.
    let handle = handle.unwrap();
    harness::wait_equal(
        &db,
        "charsets_ddl",
        &["cs2.t", "cs2.l", "cs3.r"],
        Some(&handle),
        Duration::from_secs(30),
    )
    .await;
    handle.stop();
    handle.join().await.unwrap();
}

/// Every code each of the server's character sets stores (every byte, every pair of
/// bytes from 0x80, EUC-JP's three-byte codes) decodes the way the server converts it,
/// `?` and all: a snapshot shows the server's conversion, the binlog ours.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_code_decodes_as_the_server_converts_it() {
    let Some(db) = MariaDb::start_or_skip().await else {
        return;
    };
    let mut conn = db.conn().await.unwrap();
    conn.query_drop(
        "CREATE DATABASE codes; CREATE TABLE codes.c (c VARBINARY(4) PRIMARY KEY, len INT)",
    )
    .await
    .unwrap();
    let mut codes: Vec<Vec<u8>> = (0..=255u8).map(|a| vec![a]).collect();
    for a in 0x80..=0xFFu8 {
        codes.extend((0x20..=0xFFu8).map(|b| vec![a, b]));
    }
    for b in 0xA1..=0xFEu8 {
        codes.extend((0xA1..=0xFEu8).map(|c| vec![0x8F, b, c]));
    }
    let hex = |b: &[u8]| {
        b.iter().fold(String::new(), |mut s, x| {
            let _ = write!(s, "{x:02X}");
            s
        })
    };
    for chunk in codes.chunks(4000) {
        let values: Vec<String> = chunk
            .iter()
            .map(|c| format!("(X'{}', {})", hex(c), c.len()))
            .collect();
        conn.query_drop(format!("INSERT INTO codes.c VALUES {}", values.join(",")))
            .await
            .unwrap();
    }
    let sets: Vec<(String, u32)> = conn
        .query("SELECT CHARACTER_SET_NAME, MAXLEN FROM information_schema.CHARACTER_SETS")
        .await
        .unwrap();
    let mut failures = Vec::new();
    let mut checked = 0;
    for (set, maxlen) in &sets {
        // utf32 stores no code shorter than four bytes as given; binary is not text.
        if set == "binary" || set == "utf32" {
            continue;
        }
        let longest = if set == "ujis" || set == "eucjpms" {
            3
        } else {
            (*maxlen).min(2)
        };
        conn.query_drop(format!(
            "CREATE TABLE codes.t_{set} (c VARBINARY(4) PRIMARY KEY, v VARCHAR(4) CHARACTER SET {set}); \
             INSERT IGNORE INTO codes.t_{set} SELECT c, c FROM codes.c WHERE len <= {longest}"
        ))
        .await
        .unwrap();
        // The codes stored as given, and the server's conversion of each.
        let rows: Vec<(Vec<u8>, Vec<u8>)> = conn
            .query(format!(
                "SELECT c, CONVERT(v USING utf8mb4) FROM codes.t_{set} WHERE CAST(v AS BINARY) = c"
            ))
            .await
            .unwrap();
        assert!(rows.len() >= 128, "{set}: only {} codes stored", rows.len());
        let mut bad = 0;
        for (code, server) in rows {
            checked += 1;
            let ours = cdc_connector_mysql::testing::decode_text(set, &code);
            let same = match (&ours, String::from_utf8(server.clone())) {
                (Ok(text), Ok(want)) => *text == want,
                // The server's own output is no UTF-8 (ucs2's lone surrogates): a snapshot
                // refuses it too.
                (Err(_), Err(_)) => true,
                _ => false,
            };
            if !same {
                bad += 1;
                if bad <= 5 {
                    failures.push(format!(
                        "{set} {}: server {:?}, ours {ours:?}",
                        hex(&code),
                        String::from_utf8_lossy(&server)
                    ));
                }
            }
        }
        if bad > 5 {
            failures.push(format!("{set}: {bad} codes differ in all"));
        }
    }
    assert!(checked > 200_000, "only {checked} codes checked");
    assert!(failures.is_empty(), "{failures:#?}");
}
