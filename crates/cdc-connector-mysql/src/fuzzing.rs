//! Entry points for the coverage-guided fuzz targets in `fuzz/` (see `docs/fuzzing.md`).
//!
//! Not an API: hidden from the docs, changed whenever the internals change. Each function
//! takes arbitrary input, drives the same code the source runs on server data, and throws
//! the results away; its only contract is to return — no panic, no hang, no unbounded
//! memory — whatever the input. Nothing here opens a connection or touches files.
#![doc(hidden)]

use std::collections::HashMap;
use std::future::Future;
use std::io::Read as _;
use std::sync::{Arc, LazyLock};
use std::task::{Context, Poll, Waker};

use cdc_api::{FactoryContext, Options};
use mysql_common::binlog::EventStreamReader;
use mysql_common::binlog::consts::BinlogVersion;
use mysql_common::binlog::events::{Event, TableMapEvent, TransactionPayloadEvent};
use tokio::sync::mpsc;

use crate::MySqlSourceConfig;
use crate::binlog::reader::{BinlogOffset, BinlogReader, StreamState, column_infos};
use crate::binlog::rows::{ColumnLayout, layout};
use crate::ddl::{self, TableChange};
use crate::schema::{MySqlColumn, TableMeta};
use crate::source::TableKey;

/// Binlog event header length (v4).
const HEADER_LEN: usize = 19;
/// Event type codes the harness builds or treats specially.
const FORMAT_DESCRIPTION: u8 = 15;
const XID: u8 = 16;
const TABLE_MAP: u8 = 19;
const TRANSACTION_PAYLOAD: u8 = 40;
/// At most this many bytes of a transaction payload are decompressed (the driver itself
/// has no bound; see `docs/fuzzing.md`).
const MAX_PAYLOAD: u64 = 1 << 20;
/// The schema every harness table lives in.
const DB: &str = "fz";

/// The source configuration the harness runs with: every table captured, no connection
/// ever opened (`scan.binlog.newly-added-table.enabled` stays off, so a `CREATE TABLE`
/// never makes the reader ask the server for the definition).
fn config(tinyint1_as_boolean: bool) -> Arc<MySqlSourceConfig> {
    static CONFIGS: LazyLock<[Arc<MySqlSourceConfig>; 2]> =
        LazyLock::new(|| [build_config(false), build_config(true)]);
    CONFIGS[usize::from(tinyint1_as_boolean)].clone()
}

fn build_config(tinyint1_as_boolean: bool) -> Arc<MySqlSourceConfig> {
    let mut options = Options::new("source");
    for (k, v) in [
        ("hostname", "fuzz.invalid"),
        ("username", "fuzz"),
        ("password", "fuzz"),
        ("tables", ".*\\..*"),
        (
            "treat-tinyint1-as-boolean.enabled",
            if tinyint1_as_boolean { "true" } else { "false" },
        ),
    ] {
        options.insert(k, v);
    }
    let ctx = FactoryContext {
        pipeline_name: "fuzz".into(),
        options,
        pipeline_options: Options::new("pipeline"),
    };
    match MySqlSourceConfig::from_context(&ctx) {
        Ok(c) => Arc::new(c),
        // Fixed options: only a change to the option rules can get here.
        Err(e) => panic!("the fuzz harness's fixed source options are rejected: {e}"),
    }
}

/// Runs a future that must not wait: the reader only waits for the network (never
/// reached here) or for a full channel (drained after every event).
fn run_ready<F: Future>(future: F) -> F::Output {
    let mut future = std::pin::pin!(future);
    let mut cx = Context::from_waker(Waker::noop());
    match future.as_mut().poll(&mut cx) {
        Poll::Ready(v) => v,
        Poll::Pending => {
            panic!("the binlog reader waited on fuzz input (it would block forever here)")
        }
    }
}

/// The replication reader fed event by event, as the driver feeds it.
struct Harness {
    reader: BinlogReader,
    state: StreamState,
    batches: mpsc::Receiver<cdc_api::Result<crate::source::Batch>>,
    /// Table definitions by the TABLE_MAP event, for tables no DDL defined.
    define_from_table_map: bool,
    /// Row changes handed on (the self-tests check the seeds reach the decoder).
    rows: usize,
    /// The error that stopped the reader, if one did.
    error: Option<String>,
}

impl Harness {
    fn new(tinyint1_as_boolean: bool) -> Self {
        let (tx, batches) = mpsc::channel(4);
        let reader = BinlogReader {
            config: config(tinyint1_as_boolean),
            opts: mysql_async::OptsBuilder::default().into(),
            tls_opts: None,
            tables: HashMap::new(),
            snapshot_positions: HashMap::new(),
            tx,
            stop_at: None,
            skip_before_ms: None,
            compare_conn: None,
            database_charsets: crate::binlog::reader::DatabaseCharsets::default(),
            online_schema: Vec::new(),
            signal: None,
        };
        let start = BinlogOffset {
            file: "fuzz-bin.000001".into(),
            pos: 4,
            skip_rows: 0,
            gtid: None,
            gtid_set: None,
        };
        Self {
            reader,
            state: StreamState::starting_at(&start),
            batches,
            define_from_table_map: true,
            rows: 0,
            error: None,
        }
    }

    /// Hands one event to the reader; false once the reader stopped (an error or the end).
    fn feed(&mut self, event: &Event) -> bool {
        if self.define_from_table_map && event.header().event_type_raw() == TABLE_MAP {
            if let Ok(tme) = event.read_event::<TableMapEvent<'_>>() {
                let key = (
                    tme.database_name().to_string(),
                    tme.table_name().to_string(),
                );
                self.reader
                    .tables
                    .entry(key)
                    .or_insert_with(|| meta_from_table_map(&tme));
            }
        }
        let result = run_ready(self.reader.handle(&mut self.state, event));
        while let Ok(batch) = self.batches.try_recv() {
            if let Ok(batch) = batch {
                self.rows += batch
                    .events
                    .iter()
                    .filter(|e| matches!(e, cdc_api::Event::DataChange(_)))
                    .count();
            }
        }
        match result {
            Ok(go_on) => go_on,
            Err(e) => {
                self.error = Some(e.to_string());
                false
            }
        }
    }

    /// Feeds an event and, for a transaction payload, the events inside it the way the
    /// driver hands them on (checksums off). False once the reader stopped.
    fn feed_with_payload(&mut self, esr: &mut EventStreamReader, event: &Event) -> bool {
        if !self.feed(event) {
            return false;
        }
        if event.header().event_type_raw() != TRANSACTION_PAYLOAD {
            return true;
        }
        let Ok(inner) = payload_bytes(event) else {
            return false;
        };
        let mut pos = 0;
        while pos < inner.len() {
            let Some(size) = event_size_at(&inner, pos, false) else {
                return false;
            };
            match esr.read_decompressed(&inner[pos..pos + size]) {
                Ok(Some(e)) => {
                    if !self.feed(&e) {
                        return false;
                    }
                }
                Ok(None) => break,
                Err(_) => return false,
            }
            pos += size;
        }
        true
    }
}

/// A length-encoded integer, bounds checked.
fn read_lenenc(buf: &mut &[u8]) -> Option<u64> {
    let (&first, rest) = buf.split_first()?;
    let n = match first {
        0..=0xFA => {
            *buf = rest;
            return Some(u64::from(first));
        }
        0xFC => 2,
        0xFD => 3,
        0xFE => 8,
        _ => return None,
    };
    let mut raw = [0u8; 8];
    raw[..n].copy_from_slice(rest.get(..n)?);
    *buf = &rest[n..];
    Some(u64::from_le_bytes(raw))
}

/// Whether the driver's parser (mysql_common 0.37) can read this transaction payload
/// header without panicking: it slices past the end for a truncated unknown field, and
/// unwraps an unknown compression type and a field type above 255. The driver calls it on every payload event
/// before the reader sees it, so inputs it would panic on are skipped here (reported in
/// `docs/fuzzing.md`); the reader's own code is what this target is about.
fn driver_parses_payload(mut body: &[u8]) -> bool {
    let (mut size, mut compression) = (None, false);
    while !body.is_empty() {
        let Some(field) = read_lenenc(&mut body) else {
            return false;
        };
        match field {
            0 => {
                return compression
                    && size.is_some_and(|s| usize::try_from(s).is_ok_and(|s| s <= body.len()));
            }
            1..=3 => {
                let (Some(_), Some(value)) = (read_lenenc(&mut body), read_lenenc(&mut body))
                else {
                    return false;
                };
                match field {
                    1 => size = Some(value),
                    2 if value == 0 || value == 255 => compression = true,
                    2 => return false,
                    _ => {}
                }
            }
            // An unknown field's type must fit a byte (the parser unwraps that).
            4..=255 => {
                let Some(len) = read_lenenc(&mut body).and_then(|l| usize::try_from(l).ok()) else {
                    return false;
                };
                let Some(rest) = body.get(len..) else {
                    return false;
                };
                body = rest;
            }
            _ => return false,
        }
    }
    true
}

/// The decompressed bytes of a transaction payload event, at most [`MAX_PAYLOAD`].
fn payload_bytes(event: &Event) -> std::io::Result<Vec<u8>> {
    if !driver_parses_payload(event.data()) {
        return Err(std::io::Error::other(
            "payload header the driver cannot parse",
        ));
    }
    let payload: TransactionPayloadEvent<'_> = event.read_event()?;
    let mut out = Vec::new();
    payload
        .decompressed()?
        .take(MAX_PAYLOAD)
        .read_to_end(&mut out)?;
    Ok(out)
}

/// The size of the event starting at `pos` when it is complete and big enough for the
/// parser (which assumes both: it cuts the checksum off without looking), else `None`.
fn event_size_at(bytes: &[u8], pos: usize, checksum: bool) -> Option<usize> {
    let header = bytes.get(pos..pos.checked_add(HEADER_LEN)?)?;
    let size = u32::from_le_bytes([header[9], header[10], header[11], header[12]]) as usize;
    let min = HEADER_LEN
        + if header[4] == FORMAT_DESCRIPTION {
            5
        } else {
            4 * usize::from(checksum)
        };
    (size >= min && bytes.len() - pos >= size).then_some(size)
}

/// Whether the parser takes the events under the current format description to end in
/// a checksum: any algorithm but OFF, an unknown one included.
fn checksummed(esr: &EventStreamReader) -> bool {
    let footer = esr.get_fde().footer();
    footer.get_checksum_enabled()
        && match footer.get_checksum_alg() {
            Ok(Some(a)) => a as u8 != 0,
            Ok(None) => false,
            Err(_) => true,
        }
}

/// Feeds the events of a binlog file (after the 4-byte magic) until one is incomplete or
/// the reader stops.
fn feed_file(harness: &mut Harness, bytes: &[u8]) {
    let mut esr = EventStreamReader::new(BinlogVersion::Version4);
    let mut pos = 4;
    while pos < bytes.len() {
        let Some(size) = event_size_at(bytes, pos, checksummed(&esr)) else {
            return;
        };
        let Ok(Some(event)) = esr.read(&bytes[pos..pos + size]) else {
            return;
        };
        if !harness.feed_with_payload(&mut esr, &event) {
            return;
        }
        pos += size;
    }
}

/// CRC-32 (IEEE), the binlog checksum.
fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = !0u32;
    for b in bytes {
        crc ^= u32::from(*b);
        for _ in 0..8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

/// Builds events with correct headers, positions and checksums around fuzzed bodies.
struct EventWriter {
    next_pos: u32,
}

impl EventWriter {
    /// One event: the header, `body`, and the checksum when `checksum` (computed, or
    /// `raw` as given to exercise the mismatch path).
    fn event(&mut self, kind: u8, body: &[u8], checksum: bool, raw: Option<[u8; 4]>) -> Vec<u8> {
        let size = (HEADER_LEN + body.len() + if checksum { 4 } else { 0 }) as u32;
        self.next_pos = self.next_pos.wrapping_add(size);
        let mut out = Vec::with_capacity(size as usize);
        out.extend(1_700_000_000u32.to_le_bytes());
        out.push(kind);
        out.extend(1u32.to_le_bytes());
        out.extend(size.to_le_bytes());
        out.extend(self.next_pos.to_le_bytes());
        out.extend(0u16.to_le_bytes());
        out.extend_from_slice(body);
        if checksum {
            let sum = raw.unwrap_or_else(|| crc32(&out).to_le_bytes());
            out.extend(sum);
        }
        out
    }

    /// A format description of a MySQL 8.0 or MariaDB 10.5 server, checksums CRC32 or
    /// off. Post-header lengths are left out: the parser's defaults are those servers'.
    fn format_description(&mut self, mariadb: bool, checksum: bool) -> Vec<u8> {
        let mut body = Vec::with_capacity(58);
        body.extend(4u16.to_le_bytes());
        let mut version = [0u8; 50];
        let text: &[u8] = if mariadb {
            b"10.5.15-MariaDB-log"
        } else {
            b"8.0.32"
        };
        version[..text.len()].copy_from_slice(text);
        body.extend(version);
        body.extend(0u32.to_le_bytes());
        body.push(HEADER_LEN as u8);
        body.push(u8::from(checksum));
        // A format description always carries the checksum field.
        self.event(FORMAT_DESCRIPTION, &body, true, None)
    }
}

/// Reads input bytes front to back; zeros once it runs out, so every input is usable.
struct Input<'a> {
    bytes: &'a [u8],
}

impl<'a> Input<'a> {
    fn byte(&mut self) -> u8 {
        match self.bytes.split_first() {
            Some((b, rest)) => {
                self.bytes = rest;
                *b
            }
            None => 0,
        }
    }

    fn take(&mut self, n: usize) -> &'a [u8] {
        let (head, rest) = self.bytes.split_at(n.min(self.bytes.len()));
        self.bytes = rest;
        head
    }
}

/// Fuzz entry: the binlog event decoder — the driver's event parser and the replication
/// reader (checksums, positions, GTIDs, transactions, DDL, table maps, row events,
/// transaction payloads).
///
/// An input starting with the binlog magic `\xfebin` is a binlog file (the corpus is
/// seeded with real ones). Anything else is `flags` then events as `type, u16 length,
/// body`; the harness writes a format description first (flags bit 0: CRC32 checksums,
/// bit 1: MariaDB, bit 2: checksums taken from the input instead of computed, bit 3:
/// TINYINT(1) as BOOLEAN) and wraps each body in a header with the right size and
/// position. Tables are defined from their TABLE_MAP events (a fitting type per column)
/// unless DDL in the input defined them first.
pub fn binlog_event(data: &[u8]) {
    let _ = run_binlog_event(data);
}

fn run_binlog_event(data: &[u8]) -> Harness {
    if data.starts_with(b"\xfebin") {
        let mut harness = Harness::new(false);
        feed_file(&mut harness, data);
        return harness;
    }
    let flags = data.first().copied().unwrap_or(0);
    let mut harness = Harness::new(flags & 8 != 0);
    feed_framed(&mut harness, data);
    harness
}

/// Feeds `flags, (type, u16 length, body)*` events (see [`binlog_event`]).
fn feed_framed(harness: &mut Harness, data: &[u8]) {
    let mut input = Input { bytes: data };
    let flags = input.byte();
    let (checksum, mariadb, raw_checksums) = (flags & 1 != 0, flags & 2 != 0, flags & 4 != 0);
    let mut writer = EventWriter { next_pos: 4 };
    let mut esr = EventStreamReader::new(BinlogVersion::Version4);
    let mut next = Some(writer.format_description(mariadb, checksum));
    loop {
        let Some(bytes) = next.take() else {
            if input.bytes.len() < 3 {
                return;
            }
            let kind = input.byte();
            let len = usize::from(u16::from_le_bytes([input.byte(), input.byte()]));
            let body = input.take(len).to_vec();
            let with_checksum = kind == FORMAT_DESCRIPTION || checksummed(&esr);
            let raw = raw_checksums.then(|| {
                let b = input.take(4);
                let mut sum = [0u8; 4];
                sum[..b.len()].copy_from_slice(b);
                sum
            });
            next = Some(writer.event(kind, &body, with_checksum, raw));
            continue;
        };
        let Some(size) = event_size_at(&bytes, 0, checksummed(&esr)) else {
            return;
        };
        let Ok(Some(event)) = esr.read(&bytes[..size]) else {
            return;
        };
        if !harness.feed_with_payload(&mut esr, &event) {
            return;
        }
    }
}

/// Binlog column type codes the rows target picks from (every one the decoder knows, the
/// pre-5.0 DECIMAL, MySQL 9's VECTOR, and codes no server writes).
const COLUMN_CODES: &[u8] = &[
    0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 245, 246, 247, 248, 249,
    250, 251, 252, 253, 254, 255, 242, 20, 244,
];

/// Metadata bytes a column of this type has in a TABLE_MAP event.
fn metadata_len(code: u8) -> usize {
    match code {
        4 | 5 | 17 | 18 | 19 | 242 | 245 | 249..=252 | 255 => 1,
        15 | 16 | 246..=248 | 254 => 2,
        _ => 0,
    }
}

/// Column types (as `information_schema` prints them) the tracked schema may hold for any
/// binlog column: a schema that disagrees with the binlog is what DDL drift looks like.
const ANY_TYPES: &[&str] = &[
    "tinyint(1)",
    "tinyint(3) unsigned",
    "smallint(6)",
    "mediumint(8) unsigned",
    "int(11)",
    "bigint(20) unsigned",
    "decimal(10,2)",
    "decimal(65,30)",
    "float",
    "float(10,2)",
    "double",
    "bit(1)",
    "bit(64)",
    "tinyint(1) zerofill",
    "char(10)",
    "varchar(300)",
    "text",
    "binary(16)",
    "varbinary(8)",
    "blob",
    "enum('a','b','c')",
    "set('x','y','z')",
    "year(4)",
    "date",
    "time(6)",
    "datetime(3)",
    "timestamp(6)",
    "json",
    "geometry",
    "vector(3)",
];

const CHARSETS: &[&str] = &[
    "utf8mb4", "latin1", "gbk", "binary", "ascii", "big5", "sjis", "ujis", "euckr", "utf16",
    "utf16le", "utf32", "ucs2", "cp1251", "swe7", "gb18030",
];

/// A column type text for a binlog column: one that fits its code and metadata, varied
/// by `flavour`, or (flavour >= 0xC0) any type at all.
fn type_text(l: ColumnLayout, flavour: u8) -> String {
    if flavour >= 0xC0 {
        return ANY_TYPES[usize::from(flavour) % ANY_TYPES.len()].to_string();
    }
    let u = if flavour & 1 != 0 { " unsigned" } else { "" };
    let pick = |choices: &[&str]| choices[usize::from(flavour >> 1) % choices.len()].to_string();
    match l.code {
        1 if flavour & 2 != 0 => "tinyint(1)".into(),
        1 => format!("tinyint{u}"),
        2 => format!("smallint{u}"),
        9 => format!("mediumint{u}"),
        3 => format!("int{u}"),
        8 => format!("bigint{u}"),
        4 if flavour & 2 != 0 => "float(12,3)".into(),
        4 => "float".into(),
        5 => "double".into(),
        246 => format!("decimal({},{}){u}", l.meta >> 8, l.meta & 0xFF),
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
        247 => "enum('a','b','c')".into(),
        248 => "set('x','y','z')".into(),
        249..=252 => pick(&["blob", "text", "json", "geometry", "longtext"]),
        255 => "geometry".into(),
        _ => match usize::from(flavour >> 1) % 8 {
            0 => "varchar(255)".into(),
            1 => format!("char({})", l.meta & 0xFF),
            2 => format!("binary({})", l.meta & 0xFF),
            3 => format!("varbinary({})", l.meta),
            4 => "enum('a','b','c')".into(),
            5 => "set('x','y','z')".into(),
            6 => "json".into(),
            _ => "text".into(),
        },
    }
}

/// A table definition from a TABLE_MAP alone: a fitting type per column, named `c0`,
/// `c1`, ... The optional metadata (names, signedness, ENUM/SET labels) is not read: the
/// reader never reads it, and the driver's parser of it allocates whatever count a corrupt
/// event claims (mysql_common 0.37), which would only fuzz the driver.
fn meta_from_table_map(tme: &TableMapEvent<'_>) -> TableMeta {
    let columns = layout(tme)
        .unwrap_or_default()
        .iter()
        .enumerate()
        .map(|(i, l)| column(format!("c{i}"), type_text(*l, 0), "utf8mb4"))
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

fn column(name: String, type_text: String, charset: &str) -> MySqlColumn {
    MySqlColumn {
        name,
        type_text,
        nullable: true,
        charset: Some(charset.to_string()),
        collation: None,
        default: None,
        comment: None,
    }
}

/// A length-encoded integer (below 2^24 here).
fn lenenc(out: &mut Vec<u8>, n: usize) {
    if n < 251 {
        out.push(n as u8);
    } else if n < 1 << 16 {
        out.push(0xFC);
        out.extend((n as u16).to_le_bytes());
    } else {
        out.push(0xFD);
        out.extend(&(n as u32).to_le_bytes()[..3]);
    }
}

/// Fuzz entry: the row decoder — every per-type value decoder (integers, DECIMAL, floats,
/// temporal types, strings in several character sets, BIT, ENUM/SET, JSON binary,
/// geometry) behind a TABLE_MAP built from the input.
///
/// Input: `n` (columns = n % 32 + 1); per column `type, meta low, meta high, flavour`
/// (the type indexes a list of binlog type codes; the flavour picks the tracked column
/// type and character set, sometimes one that does not fit the binlog); `kind`
/// (kind % 6: WRITE/UPDATE/DELETE, v1 then v2; bit 3: column bitmaps from the input,
/// else all columns present; bit 4: TINYINT(1) as BOOLEAN); the bitmaps when asked; the
/// rest are the row images.
pub fn binlog_rows(data: &[u8]) {
    let _ = run_binlog_rows(data);
}

fn run_binlog_rows(data: &[u8]) -> Option<Harness> {
    let mut input = Input { bytes: data };
    let n = usize::from(input.byte() % 32) + 1;
    let mut codes = Vec::with_capacity(n);
    let mut metadata = Vec::new();
    let mut flavours = Vec::with_capacity(n);
    for _ in 0..n {
        let code = COLUMN_CODES[usize::from(input.byte()) % COLUMN_CODES.len()];
        let meta = [input.byte(), input.byte()];
        metadata.extend_from_slice(&meta[..metadata_len(code)]);
        codes.push(code);
        flavours.push(input.byte());
    }
    let kind = input.byte();
    let event_type = [23u8, 24, 25, 30, 31, 32][usize::from(kind % 6)];
    let is_update = matches!(event_type, 24 | 31);
    let bitmap_len = n.div_ceil(8);
    let (before, after) = if kind & 8 != 0 {
        let before = input.take(bitmap_len).to_vec();
        let after = if is_update {
            input.take(bitmap_len).to_vec()
        } else {
            Vec::new()
        };
        (before, after)
    } else {
        (vec![0xFF; bitmap_len], vec![0xFF; bitmap_len])
    };
    let rows = input.bytes;

    let mut writer = EventWriter { next_pos: 4 };
    let mut events = vec![writer.format_description(false, false)];

    let table_id = 7u64;
    let mut tme = Vec::new();
    tme.extend(&table_id.to_le_bytes()[..6]);
    tme.extend(1u16.to_le_bytes());
    tme.push(DB.len() as u8);
    tme.extend(DB.as_bytes());
    tme.push(0);
    tme.push(1);
    tme.push(b't');
    tme.push(0);
    lenenc(&mut tme, n);
    tme.extend(&codes);
    lenenc(&mut tme, metadata.len());
    tme.extend(&metadata);
    tme.extend(std::iter::repeat_n(0xFF, bitmap_len));
    events.push(writer.event(TABLE_MAP, &tme, false, None));

    let mut body = Vec::with_capacity(rows.len() + 16);
    body.extend(&table_id.to_le_bytes()[..6]);
    body.extend(1u16.to_le_bytes());
    if event_type >= 30 {
        body.extend(2u16.to_le_bytes());
    }
    lenenc(&mut body, n);
    body.extend(&before[..]);
    body.resize(body.len() + bitmap_len - before.len(), 0);
    if is_update {
        body.extend(&after[..]);
        body.resize(body.len() + bitmap_len - after.len(), 0);
    }
    body.extend_from_slice(rows);
    events.push(writer.event(event_type, &body, false, None));
    events.push(writer.event(XID, &1u64.to_le_bytes(), false, None));

    let mut harness = Harness::new(kind & 16 != 0);
    harness.define_from_table_map = false;
    let mut esr = EventStreamReader::new(BinlogVersion::Version4);
    for (i, bytes) in events.iter().enumerate() {
        let Ok(Some(event)) = esr.read(&bytes[..]) else {
            return None;
        };
        if i == 1 {
            // The tracked definition, from the flavours, once the TABLE_MAP parsed.
            let tme = event.read_event::<TableMapEvent<'_>>().ok()?;
            let layouts = layout(&tme).ok()?;
            let columns = layouts
                .iter()
                .zip(&flavours)
                .enumerate()
                .map(|(i, (l, f))| {
                    let charset = CHARSETS[usize::from(*f >> 4) % CHARSETS.len()];
                    column(format!("c{i}"), type_text(*l, *f), charset)
                })
                .collect();
            let key: TableKey = (DB.to_string(), "t".to_string());
            harness.reader.tables.insert(
                key,
                TableMeta {
                    db: DB.into(),
                    table: "t".into(),
                    columns,
                    primary_key: Vec::new(),
                    comment: None,
                    charset: Some("utf8mb4".into()),
                },
            );
        }
        if !harness.feed(&event) {
            break;
        }
    }
    Some(harness)
}

/// The captured tables the DDL target starts from.
fn ddl_tables() -> HashMap<TableKey, TableMeta> {
    let table = |db: &str, name: &str, columns: &[(&str, &str)], key: &[&str]| TableMeta {
        db: db.into(),
        table: name.into(),
        columns: columns
            .iter()
            .map(|(n, t)| column((*n).to_string(), (*t).to_string(), "utf8mb4"))
            .collect(),
        primary_key: key.iter().map(|k| (*k).to_string()).collect(),
        comment: Some("fuzz".into()),
        charset: Some("utf8mb4".into()),
    };
    let tables = [
        table(
            "shop",
            "orders",
            &[
                ("id", "bigint(20) unsigned"),
                ("customer", "varchar(64)"),
                ("total", "decimal(12,2)"),
                ("placed", "datetime(3)"),
                ("state", "enum('new','paid','shipped')"),
                ("tags", "set('a','b')"),
                ("note", "text"),
                ("doc", "json"),
                ("flag", "tinyint(1)"),
                ("bits", "bit(5)"),
                ("at", "geometry"),
            ],
            &["id"],
        ),
        table("shop", "t", &[("a", "int(11)"), ("b", "char(3)")], &["a"]),
        table("other", "Mixed Case", &[("x", "varbinary(10)")], &[]),
    ];
    tables
        .into_iter()
        .map(|t| ((t.db.clone(), t.table.clone()), t))
        .collect()
}

/// Fuzz entry: the DDL tracker — `ALTER`/`CREATE`/`DROP`/`RENAME`/`TRUNCATE` statements
/// from the binlog applied to tracked table definitions. `text` holds up to 16 statements
/// separated by NUL characters, applied in order (in the schema `shop`) to three captured
/// tables, each result tracked as the reader tracks it, and every new definition mapped
/// to the cdc-api schema and decoder column info as the reader does next.
pub fn ddl(text: &str) {
    let mut tables = ddl_tables();
    for (i, sql) in text.split('\0').take(16).enumerate() {
        let config = config(i % 2 == 1);
        let Ok(changes) = ddl::apply(sql, "shop", &tables, &config) else {
            continue;
        };
        for change in changes {
            match change {
                TableChange::Upsert { meta, .. } => {
                    let _ = meta.to_schema(config.tinyint1_as_boolean, true);
                    let _ = column_infos(&meta);
                    tables.insert((meta.db.clone(), meta.table.clone()), meta);
                }
                TableChange::Remove { key, .. } => {
                    tables.remove(&key);
                }
                TableChange::Created(_) | TableChange::Events(_) => {}
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;

    /// The files of `fuzz/<dir>/<target>` (seeds, or inputs that once crashed).
    fn inputs(dir: &str, target: &str) -> Vec<(String, Vec<u8>)> {
        let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("../../fuzz")
            .join(dir)
            .join(target);
        let Ok(entries) = std::fs::read_dir(&path) else {
            return Vec::new();
        };
        let mut out: Vec<(String, Vec<u8>)> = entries
            .flatten()
            .map(|e| {
                let bytes = std::fs::read(e.path()).unwrap();
                (e.file_name().to_string_lossy().into_owned(), bytes)
            })
            .collect();
        out.sort();
        out
    }

    /// The committed seeds get through the harness to decoded rows: a harness change that
    /// stopped them at the framing would leave the fuzzer exploring nothing.
    #[test]
    fn binlog_seeds_reach_the_row_decoder() {
        let rows = inputs("seeds", "binlog_rows");
        assert!(rows.len() >= 4, "seeds missing: {rows:?}");
        for (name, bytes) in rows {
            let h = run_binlog_rows(&bytes).unwrap_or_else(|| panic!("{name}: no table map"));
            assert!(h.rows > 0 && h.error.is_none(), "{name}: {:?}", h.error);
        }
        let events = inputs("seeds", "binlog_event");
        assert!(events.len() >= 3, "seeds missing");
        for (name, bytes) in events {
            let h = run_binlog_event(&bytes);
            assert!(
                h.rows >= 6 && h.error.is_none(),
                "{name}: {} {:?}",
                h.rows,
                h.error
            );
        }
    }

    /// Inputs the fuzzer once crashed on (`fuzz/regressions/<target>`) now just return.
    #[test]
    fn former_crashes_return() {
        for (_, bytes) in inputs("regressions", "binlog_event") {
            binlog_event(&bytes);
        }
        for (_, bytes) in inputs("regressions", "binlog_rows") {
            binlog_rows(&bytes);
        }
        for (_, bytes) in inputs("regressions", "ddl") {
            ddl(&String::from_utf8_lossy(&bytes));
        }
        for (_, bytes) in inputs("seeds", "ddl") {
            ddl(&String::from_utf8_lossy(&bytes));
        }
    }

    #[test]
    fn a_bad_checksum_stops_the_reader_with_an_error() {
        let mut event = vec![1u8 | 4];
        event.extend([2, 5, 0]);
        event.extend([0u8; 5]);
        event.extend([0, 0, 0, 0]);
        let h = run_binlog_event(&event);
        let e = h.error.unwrap_or_default();
        assert!(e.contains("checksum mismatch"), "{e}");
    }
}
