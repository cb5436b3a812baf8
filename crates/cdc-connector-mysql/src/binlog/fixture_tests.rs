//! The replication reader over real binlog files written by MySQL and MariaDB servers
//! (`/work/shared/fixtures/mysql-binlogs`, see its README): the MySQL-only paths a live
//! MariaDB cannot produce (binary JSON, partial JSON updates, MySQL and tagged GTIDs,
//! transaction compression, old temporal types) and broken files.
//!
//! The files are read where they lie, never copied into the repository. A small file
//! reader splits them into events (bounds checked first: the parser assumes complete
//! events) and feeds them to the same `BinlogReader::handle` the replication connection
//! uses. Tables are defined by the `CREATE TABLE` statements in the files; a table whose
//! definition is not in the file gets one made from its TABLE_MAP (types, and names,
//! signedness and ENUM/SET labels where the optional metadata has them).

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;

use cdc_api::{Error, Event, FactoryContext, OperationType, Options, Value};
use mysql_common::binlog::EventStreamReader;
use mysql_common::binlog::consts::BinlogVersion;
use mysql_common::binlog::events::{Event as BinlogEvent, OptionalMetadataField, TableMapEvent};
use tokio::sync::mpsc;

use super::reader::{BinlogOffset, BinlogReader, HEADER_LEN, StreamState};
use super::rows::{ColumnLayout, layout};
use crate::MySqlSourceConfig;
use crate::schema::{MySqlColumn, TableMeta};

const FIXTURES_ENV: &str = "CDC_MYSQL_BINLOG_FIXTURES";

fn fixtures_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os(FIXTURES_ENV) {
        return PathBuf::from(dir);
    }
    // Beside the repository (../shared), or where the workplace keeps it when the checkout
    // lives elsewhere (a CI clone in a temporary directory).
    let beside = PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../../shared/fixtures/mysql-binlogs"
    ));
    let workplace = PathBuf::from("/work/shared/fixtures/mysql-binlogs");
    if !beside.is_dir() && workplace.is_dir() {
        workplace
    } else {
        beside
    }
}

/// The bytes of a fixture file; a missing file fails the test (never a silent skip).
fn fixture(name: &str) -> Vec<u8> {
    let path = fixtures_dir().join(name);
    match std::fs::read(&path) {
        Ok(b) => b,
        Err(e) => panic!(
            "cannot read the binlog fixture {} ({e}): the MySQL decoder tests need the \
             directory /work/shared/fixtures/mysql-binlogs (or set {FIXTURES_ENV})",
            path.display()
        ),
    }
}

/// Splits a binlog file into events. Each event's size is checked against the bytes left
/// before the parser sees it; the first bad event ends the list with an error.
fn split_events(bytes: &[u8]) -> (Vec<BinlogEvent>, Option<String>) {
    let mut out = Vec::new();
    if bytes.get(..4) != Some(b"\xfebin".as_slice()) {
        return (out, Some("not a binlog file (no magic number)".into()));
    }
    let mut reader = EventStreamReader::new(BinlogVersion::Version4);
    let mut pos = 4usize;
    while pos < bytes.len() {
        let Some(header) = bytes.get(pos..pos + HEADER_LEN) else {
            return (out, Some(format!("truncated event header at byte {pos}")));
        };
        let size = u32::from_le_bytes([header[9], header[10], header[11], header[12]]) as usize;
        let kind = header[4];
        let fde = reader.get_fde().footer();
        let checksum = fde.get_checksum_enabled()
            && matches!(fde.get_checksum_alg(), Ok(Some(a)) if a as u8 != 0);
        // The parser cuts the checksum (and for a format description its algorithm byte)
        // off the end without looking.
        let min = HEADER_LEN
            + if kind == 15 {
                5
            } else {
                4 * usize::from(checksum)
            };
        if size < min || pos + size > bytes.len() {
            return (
                out,
                Some(format!(
                    "event at byte {pos} claims {size} bytes, {} are left",
                    bytes.len() - pos
                )),
            );
        }
        match reader.read(&bytes[pos..pos + size]) {
            Ok(Some(e)) => out.push(e),
            Ok(None) => break,
            Err(e) => return (out, Some(format!("event at byte {pos}: {e}"))),
        }
        pos += size;
    }
    (out, None)
}

fn config() -> MySqlSourceConfig {
    let mut options = Options::new("source");
    for (k, v) in [
        ("hostname", "fixture"),
        ("username", "u"),
        ("password", "p"),
        ("tables", ".*\\..*"),
        ("scan.binlog.newly-added-table.enabled", "true"),
        ("treat-tinyint1-as-boolean.enabled", "false"),
    ] {
        options.insert(k, v);
    }
    let ctx = FactoryContext {
        pipeline_name: "fixtures".into(),
        options,
        pipeline_options: Options::new("pipeline"),
    };
    MySqlSourceConfig::from_context(&ctx).unwrap()
}

/// A column type text for a binlog column whose definition the file does not hold.
fn type_text(l: ColumnLayout, unsigned: bool, labels: Option<&Vec<String>>) -> String {
    let u = if unsigned { " unsigned" } else { "" };
    let quoted = || {
        labels.map_or_else(String::new, |l| {
            l.iter()
                .map(|s| format!("'{s}'"))
                .collect::<Vec<_>>()
                .join(",")
        })
    };
    match l.code {
        1 => format!("tinyint{u}"),
        2 => format!("smallint{u}"),
        9 => format!("mediumint{u}"),
        3 => format!("int{u}"),
        8 => format!("bigint{u}"),
        4 => "float".into(),
        5 => "double".into(),
        246 => format!("decimal({},{})", l.meta >> 8, l.meta & 0xFF),
        10 | 14 => "date".into(),
        11 => "time".into(),
        19 => format!("time({})", l.meta),
        12 => "datetime".into(),
        18 => format!("datetime({})", l.meta),
        7 => "timestamp".into(),
        17 => format!("timestamp({})", l.meta),
        13 => "year".into(),
        16 => format!("bit({})", (l.meta >> 8) * 8 + (l.meta & 0xFF)),
        245 => "json".into(),
        247 => format!("enum({})", quoted()),
        248 => format!("set({})", quoted()),
        249..=252 => "blob".into(),
        255 => "geometry".into(),
        _ => "varchar(255)".into(),
    }
}

fn is_numeric(code: u8) -> bool {
    matches!(code, 1 | 2 | 3 | 4 | 5 | 8 | 9 | 13 | 246)
}

/// A table definition from a TABLE_MAP alone.
fn meta_from_table_map(tme: &TableMapEvent<'_>) -> TableMeta {
    let layouts = layout(tme).unwrap_or_default();
    let (mut names, mut unsigned, mut enums, mut sets) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for field in tme.iter_optional_meta().flatten() {
        match field {
            OptionalMetadataField::ColumnName(n) => {
                names = n
                    .iter_names()
                    .flatten()
                    .map(|n| n.name().to_string())
                    .collect();
            }
            OptionalMetadataField::Signedness(bits) => unsigned = bits.iter().map(|b| *b).collect(),
            OptionalMetadataField::EnumStrValue(v) => {
                enums = v
                    .iter_values()
                    .flatten()
                    .map(|x| x.values().iter().map(|s| s.value().to_string()).collect())
                    .collect();
            }
            OptionalMetadataField::SetStrValue(v) => {
                sets = v
                    .iter_values()
                    .flatten()
                    .map(|x| x.values().iter().map(|s| s.value().to_string()).collect())
                    .collect();
            }
            _ => {}
        }
    }
    let (mut numeric, mut enum_i, mut set_i) = (0, 0, 0);
    let columns = layouts
        .iter()
        .enumerate()
        .map(|(i, l)| {
            let mut flag = false;
            let mut labels = None;
            if is_numeric(l.code) {
                flag = unsigned.get(numeric).copied().unwrap_or(false);
                numeric += 1;
            } else if l.code == 247 {
                labels = enums.get(enum_i);
                enum_i += 1;
            } else if l.code == 248 {
                labels = sets.get(set_i);
                set_i += 1;
            }
            MySqlColumn {
                name: names.get(i).cloned().unwrap_or_else(|| format!("c{i}")),
                type_text: type_text(*l, flag, labels),
                nullable: true,
                charset: Some("utf8mb4".into()),
                collation: None,
                default: None,
                comment: None,
            }
        })
        .collect();
    TableMeta {
        db: tme.database_name().to_string(),
        table: tme.table_name().to_string(),
        columns,
        primary_key: Vec::new(),
        comment: None,
        charset: Some("utf8mb4".into()),
    }
}

/// What reading a file gave: the events handed on (with the offset after each batch),
/// and the error that stopped the reader, if any.
#[derive(Debug, Default)]
struct Outcome {
    events: Vec<Event>,
    offsets: Vec<BinlogOffset>,
    error: Option<Error>,
    /// The file reader's own error (a broken file), if any.
    split_error: Option<String>,
    /// The reader's offset after every event (whether or not a batch carried it).
    states: Vec<BinlogOffset>,
}

impl Outcome {
    fn rows(&self) -> Vec<&cdc_api::DataChangeEvent> {
        self.events
            .iter()
            .filter_map(|e| match e {
                Event::DataChange(c) => Some(c),
                Event::SchemaChange(_) => None,
            })
            .collect()
    }

    /// Column `i` of every after image (else before image), in order.
    fn column(&self, i: usize) -> Vec<Value> {
        self.rows()
            .into_iter()
            .filter_map(|c| c.after.as_ref().or(c.before.as_ref())?.get(i).cloned())
            .collect()
    }

    fn last_gtid(&self) -> Option<&str> {
        self.offsets.last().and_then(|o| o.gtid.as_deref())
    }
}

/// Runs a file through the reader, as the replication connection would deliver it.
async fn read_file(name: &str) -> Outcome {
    read_file_from(name, None, 0).await
}

/// Like [`read_file`], streaming by MySQL GTID set from `gtid_set` (as after a
/// specific-offset start with `scan.startup.specific-offset.gtid-set`), skipping the first
/// `skip_rows` rows (a resumed transaction).
async fn read_file_from(name: &str, gtid_set: Option<&str>, skip_rows: u64) -> Outcome {
    let bytes = fixture(name);
    let (events, split_error) = split_events(&bytes);
    let (tx, mut rx) = mpsc::channel(16);
    let mut reader = BinlogReader {
        config: Arc::new(config()),
        opts: mysql_async::OptsBuilder::default().into(),
        tls_opts: None,
        tables: HashMap::new(),
        snapshot_positions: HashMap::new(),
        tx,
        stop_at: None,
        skip_before_ms: None,
        compare_conn: None,
        database_charsets: super::reader::DatabaseCharsets::default(),
        online_schema: Vec::new(),
        signal: None,
    };
    let start = BinlogOffset {
        file: name.to_string(),
        pos: 4,
        skip_rows,
        gtid: None,
        gtid_set: gtid_set.map(str::to_string),
    };
    let mut st = StreamState::starting_at(&start);
    let mut out = Outcome {
        split_error,
        ..Outcome::default()
    };
    let drain = |rx: &mut mpsc::Receiver<cdc_api::Result<crate::source::Batch>>,
                 out: &mut Outcome| {
        while let Ok(batch) = rx.try_recv() {
            match batch {
                Ok(b) => {
                    out.events.extend(b.events);
                    out.offsets.extend(b.position);
                }
                Err(e) => out.error = Some(e),
            }
        }
    };
    for event in &events {
        // Define the tables the file uses but does not create (also inside payloads).
        let inner = if event.header().event_type_raw() == 40 {
            super::reader::payload_events(event).unwrap_or_default()
        } else {
            Vec::new()
        };
        for e in std::iter::once(event).chain(&inner) {
            if e.header().event_type_raw() != 19 {
                continue;
            }
            if let Ok(tme) = e.read_event::<TableMapEvent<'_>>() {
                let key = (
                    tme.database_name().to_string(),
                    tme.table_name().to_string(),
                );
                if let std::collections::hash_map::Entry::Vacant(slot) = reader.tables.entry(key) {
                    let meta = meta_from_table_map(&tme);
                    out.events.push(Event::SchemaChange(
                        cdc_api::SchemaChangeEvent::CreateTable {
                            table_id: meta.table_id(),
                            schema: meta.to_schema(false, false),
                        },
                    ));
                    slot.insert(meta);
                }
            }
        }
        // As the driver does: a payload event, then the events inside it.
        let mut stop = false;
        for e in std::iter::once(event).chain(&inner) {
            let result = reader.handle(&mut st, e).await;
            drain(&mut rx, &mut out);
            out.states.push(st.offset());
            match result {
                Ok(true) => {}
                Ok(false) => stop = true,
                Err(e) => {
                    out.error = Some(e);
                    stop = true;
                }
            }
            if stop {
                break;
            }
        }
        if stop {
            break;
        }
    }
    out
}

fn json(values: &[Value]) -> Vec<&str> {
    values
        .iter()
        .map(|v| match v {
            Value::Json(s) => s.as_str(),
            other => panic!("not JSON: {other:?}"),
        })
        .collect()
}

/// MySQL 9 binary JSON with opaque scalars (dates, times, decimals, bit strings): the
/// same text `SELECT` prints for the column.
#[tokio::test]
async fn mysql_binary_json_with_opaque_values_renders_as_the_server_prints_it() {
    let o = read_file("json-opaque.binlog").await;
    assert!(o.error.is_none() && o.split_error.is_none(), "{o:?}");
    assert_eq!(
        json(&o.column(0)),
        [
            r#"{"a": "base64:type15:VQ=="}"#,
            r#"{"b": "2012-03-18"}"#,
            r#"{"c": "2012-03-18 11:30:45.000000"}"#,
            r#"{"c": "87:31:46.654321"}"#,
            r#"{"d": "123.456"}"#,
            r#"{"e": "9.00"}"#,
            r#"{"e": [0, 1, true, false]}"#,
            r#"{"e": null}"#,
        ]
    );
}

/// MySQL 8.0.22 binary JSON in full row images decodes; the PARTIAL_UPDATE_ROWS event
/// that follows (binlog_row_value_options=PARTIAL_JSON) stops the reader with an error
/// that names the setting, after the full images were handed on at an exact offset.
#[tokio::test]
async fn partial_json_updates_are_rejected_with_the_setting_to_change() {
    let o = read_file("json.binlog.000001").await;
    let rows = o.rows();
    assert_eq!(rows.len(), 12, "{o:?}");
    assert_eq!(
        json(&o.column(1))[..3],
        [
            r#"{"age": 24, "data": "xxxxxxxxxx", "name": "Joe"}"#,
            r#"{"age": 32, "data": "yyyyyyyyyy", "name": "Sue"}"#,
            r#"{"age": 40, "data": "zzzzzzzzzz", "name": "Pete"}"#,
        ]
    );
    assert_eq!(rows[6].op, OperationType::Update);
    let e = o
        .error
        .expect("the partial update must stop the reader")
        .to_string();
    assert!(
        e.contains("partial JSON updates") && e.contains("binlog_row_value_options"),
        "{e}"
    );
    assert!(!o.offsets.is_empty());
}

/// MySQL 8.0.32 `binlog_transaction_compression=ON`: the zstd payload is decoded and its
/// rows are handed on like any other transaction's, the offset after it.
#[tokio::test]
async fn zstd_transaction_payloads_are_decoded() {
    let o = read_file("transaction_compression.000001").await;
    assert!(o.error.is_none() && o.split_error.is_none(), "{o:?}");
    let rows = o.rows();
    assert!(
        !rows.is_empty(),
        "no rows from the compressed transactions: {o:?}"
    );
    assert!(
        rows.iter().all(|r| r.op == OperationType::Insert),
        "{rows:?}"
    );
    let last = o.offsets.last().expect("an offset");
    assert!(last.pos > 4 && last.skip_rows == 0, "{last:?}");
}

/// MySQL GTIDs (5.6, 8.0) and tagged GTIDs (9.x: `uuid:tag:gno`) are tracked in the offset.
#[tokio::test]
async fn mysql_gtids_and_tagged_gtids_are_tracked() {
    let tagged = read_file("binlog_transaction_with_GTID_TAG.000001").await;
    assert!(tagged.error.is_none(), "{tagged:?}");
    assert_eq!(
        tagged.last_gtid(),
        Some("55778904-0299-11f1-b1b8-4ef0c4956feb:mytag:3")
    );
    assert_eq!(tagged.rows().len(), 1);
    let plain = read_file("mysql_type_bit.000001").await;
    assert_eq!(
        plain.last_gtid(),
        Some("fbda2ad0-7c46-11ec-ae30-4ef7efc81a2a:3")
    );
    let old = read_file("binlog_56_gtid_reserved_word.000001").await;
    assert_eq!(
        old.last_gtid(),
        Some("11111111-1111-1111-1111-111111111111:6")
    );
    let mariadb = read_file("mariadb-bin.000001").await;
    assert_eq!(mariadb.last_gtid(), Some("0-1-2"));
    assert_eq!(mariadb.rows().len(), 2);
}

/// Temporal values: a negative TIME beyond a day (MySQL 8.0.40), and the old row formats
/// of MySQL 5.1 (v1 rows events) decode.
#[tokio::test]
async fn temporal_and_old_row_formats_decode() {
    let o = read_file("time_issue.000001").await;
    assert_eq!(
        o.column(0),
        [Value::Time(cdc_api::Time {
            negative: true,
            hours: 507,
            minutes: 48,
            seconds: 27,
            micros: 0
        })]
    );
    for name in ["ver_5_1_23.001", "ver_trunk_row_v2.001"] {
        let o = read_file(name).await;
        assert!(o.error.is_none(), "{name}: {o:?}");
        let ops: Vec<OperationType> = o.rows().iter().map(|r| r.op).collect();
        use OperationType::{Delete, Insert, Update};
        assert_eq!(ops, [Insert, Insert, Update, Update, Delete], "{name}");
        assert_eq!(o.column(1)[0], Value::String("one".into()), "{name}");
    }
}

/// ENUM and SET labels from the optional metadata (MySQL 8.0.28), before and after images.
#[tokio::test]
async fn enum_and_set_values_decode_to_labels() {
    let o = read_file("mysql-enum-string-set.000001").await;
    assert!(o.error.is_none(), "{o:?}");
    let rows = o.rows();
    assert_eq!(rows.len(), 3);
    let after = rows[1].after.as_ref().unwrap();
    assert_eq!(after[2], Value::String("variant2".into()));
    assert_eq!(after[3], Value::String("two,four".into()));
}

/// Every fixture, broken ones included, ends with rows or an error: no panic, no hang,
/// no unbounded memory (sizes are checked before anything is allocated).
#[tokio::test]
async fn every_file_ends_in_rows_or_an_error_never_a_panic() {
    let dir = fixtures_dir();
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("cannot list {} ({e})", dir.display()))
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n != "README.md")
        .collect();
    names.sort();
    assert!(
        names.len() >= 40,
        "fixtures missing in {}: {names:?}",
        dir.display()
    );
    for name in &names {
        let o = tokio::time::timeout(std::time::Duration::from_secs(10), read_file(name))
            .await
            .unwrap_or_else(|_| panic!("{name}: reading hangs"));
        let _ = o;
    }
    // The broken files: the damage is found, as an error.
    let truncated = read_file("binlog_truncated_event.000001").await;
    assert!(truncated.split_error.is_some(), "{truncated:?}");
    let corrupt = read_file("corrupt-relay-bin.000624").await;
    let e = corrupt.error.expect("corrupt query event").to_string();
    assert!(e.contains("reading the binlog"), "{e}");
    // MySQL 9 VECTOR columns are not supported: a clear error naming the table.
    let vector = read_file("vector.binlog").await;
    let e = vector.error.expect("VECTOR is not supported").to_string();
    assert!(
        e.contains("dtb.foo") && e.contains("column type 242"),
        "{e}"
    );
}

/// The distinct GTID sets the reader's offset went through.
fn gtid_sets(o: &Outcome) -> Vec<String> {
    let mut v: Vec<String> = o.states.iter().filter_map(|o| o.gtid_set.clone()).collect();
    v.dedup();
    v
}

/// Streaming by GTID set: every committed MySQL transaction (GTID and tagged GTID events,
/// MySQL 5.6 to 9.6; DDL too) is added to the set, and every offset after it carries the
/// updated set, so a restart asks the server for exactly what follows.
#[tokio::test]
async fn offsets_carry_the_executed_gtid_set_after_each_transaction() {
    // MySQL 5.6: a DDL, an INSERT transaction, a DROP.
    let u = "006c2cf2-b1ea-11e4-9057-8c705a3d3e78";
    let o = read_file_from("binlog_transaction_with_GTID.000001", Some(""), 0).await;
    assert!(o.error.is_none(), "{o:?}");
    assert_eq!(
        gtid_sets(&o),
        [
            "",
            &format!("{u}:1"),
            &format!("{u}:1-2"),
            &format!("{u}:1-3")
        ]
    );
    // A start set is kept and merged (upper-case input, canonical output).
    let other = "11111111-1111-1111-1111-111111111111";
    let start = format!("{other}:1-9,\n{}:5-7", u.to_uppercase());
    let o = read_file_from("binlog_transaction_with_GTID.000001", Some(&start), 0).await;
    assert_eq!(
        o.states.last().and_then(|s| s.gtid_set.as_deref()),
        Some(format!("{u}:1-3:5-7,{other}:1-9").as_str())
    );
    // MySQL 9.6 tagged GTID; the offset after the commit is the position after it.
    let t = "55778904-0299-11f1-b1b8-4ef0c4956feb";
    let o = read_file_from("binlog_transaction_with_GTID_TAG.000001", Some(""), 0).await;
    assert!(o.error.is_none(), "{o:?}");
    assert_eq!(gtid_sets(&o), [String::new(), format!("{t}:mytag:3")]);
    let last = o.offsets.last().expect("an offset after the commit");
    assert_eq!((last.pos, last.skip_rows), (541, 0), "{last:?}");
    assert_eq!(
        last.gtid_set.as_deref(),
        Some(format!("{t}:mytag:3").as_str())
    );
    assert_eq!(o.rows().len(), 1);
    // Resumed inside that transaction (its row handed on before): the server resends it
    // whole, the row is skipped, and the set then holds it.
    let o = read_file_from("binlog_transaction_with_GTID_TAG.000001", Some(""), 1).await;
    assert!(o.rows().is_empty(), "{o:?}");
    let last = o.states.last().expect("a state");
    assert_eq!(
        (last.skip_rows, last.gtid_set.clone()),
        (0, Some(format!("{t}:mytag:3")))
    );
    // Until the first transaction the offset stays the start, skip_rows included.
    let first = o.states.first().expect("a state");
    assert_eq!((first.skip_rows, first.gtid_set.as_deref()), (1, Some("")));
    // MySQL 8.0: a file without transactions leaves the start set as it was.
    let o = read_file_from(
        "binlog_transaction_previous_GTID_no_tag.000001",
        Some(&format!("{u}:1-3")),
        0,
    )
    .await;
    assert!(o.error.is_none(), "{o:?}");
    assert_eq!(gtid_sets(&o), [format!("{u}:1-3")]);
    // MySQL 5.6 and 8.0.26 row transactions.
    let o = read_file_from("binlog_56_gtid_reserved_word.000001", Some(""), 0).await;
    assert_eq!(
        gtid_sets(&o).last().map(String::as_str),
        Some("11111111-1111-1111-1111-111111111111:1-6")
    );
    let o = read_file_from("mysql_type_bit.000001", Some(""), 0).await;
    assert_eq!(
        gtid_sets(&o).last().map(String::as_str),
        Some("fbda2ad0-7c46-11ec-ae30-4ef7efc81a2a:1-3")
    );
    // File/position streams keep no set.
    let o = read_file("mysql_type_bit.000001").await;
    assert!(o.states.iter().all(|s| s.gtid_set.is_none()));
}
