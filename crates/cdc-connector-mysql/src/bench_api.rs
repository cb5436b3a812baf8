//! Entry points for the benchmarks in `crates/cdc-bench` (micro benchmarks of row decoding
//! and the single-threaded "raw decode" of a binlog file next to the end-to-end figures).
//!
//! Not an API: hidden from the docs, changed whenever the internals change. Thin wrappers
//! only: every function runs the same code the source runs on server data, so a figure
//! measured here is the figure of the real path.
#![doc(hidden)]

use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};

use cdc_api::{DataChangeEvent, Event, FactoryContext, Options, Schema, TableId};
use mysql_common::binlog::EventStreamReader;
use mysql_common::binlog::consts::BinlogVersion;
use mysql_common::binlog::events::{RowsEventData, TableMapEvent};
use tokio::sync::mpsc;

use crate::MySqlSourceConfig;
use crate::binlog::reader::{BinlogOffset, BinlogReader, StreamState};
use crate::binlog::rows::{ColumnInfo, ColumnLayout, Cursor, decode_row, layout};
use crate::schema::{MySqlColumn, TableMeta};
use crate::types::{Charset, parse_column_type};

/// Binlog event header length (v4).
const HEADER_LEN: usize = 19;
const FORMAT_DESCRIPTION: u8 = 15;

/// Which rows event a body comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RowsKind {
    /// WRITE_ROWS: one (after) image per row.
    Write,
    /// UPDATE_ROWS: a before and an after image per row.
    Update,
    /// DELETE_ROWS: one (before) image per row.
    Delete,
}

/// One column of a benchmark table, as `information_schema.COLUMNS` describes it.
#[derive(Debug, Clone)]
pub struct BenchColumn {
    /// Column name.
    pub name: String,
    /// `COLUMN_TYPE` text: `bigint(20)`, `varchar(32)`, `decimal(12,2)`, `json`, ...
    pub type_text: String,
    /// Character set of a text column (`utf8mb4`, `latin1`, `binary`); `None` otherwise.
    pub charset: Option<String>,
}

impl BenchColumn {
    /// A column with this name, type text and character set.
    pub fn new(name: &str, type_text: &str, charset: Option<&str>) -> Self {
        Self {
            name: name.to_string(),
            type_text: type_text.to_string(),
            charset: charset.map(str::to_string),
        }
    }

    fn info(&self) -> ColumnInfo {
        ColumnInfo {
            mysql_type: parse_column_type(&self.type_text),
            charset: self
                .charset
                .as_deref()
                .map_or(Charset::Utf8, Charset::from_name),
        }
    }
}

/// The source's row decoder for one table: row images to cdc-api data change events,
/// exactly as the binlog reader builds them (without the snapshot filter, which only
/// applies while a snapshot is being reconciled).
pub struct RowsDecoder {
    table: TableId,
    layouts: Vec<ColumnLayout>,
    infos: Vec<ColumnInfo>,
    all_present: Vec<bool>,
    tinyint1_as_boolean: bool,
}

impl RowsDecoder {
    /// A decoder for `db.table` whose columns are laid out as `layouts` says: per column
    /// the binlog type code and metadata as the source reads them from a TABLE_MAP event
    /// (for a `STRING` column the real type, e.g. 254 with the byte length for CHAR).
    pub fn new(db: &str, table: &str, columns: &[BenchColumn], layouts: &[(u8, u16)]) -> Self {
        Self {
            table: TableId::new(db, table),
            layouts: layouts
                .iter()
                .map(|&(code, meta)| ColumnLayout { code, meta })
                .collect(),
            infos: columns.iter().map(BenchColumn::info).collect(),
            all_present: vec![true; columns.len()],
            tinyint1_as_boolean: true,
        }
    }

    /// A decoder laid out by a TABLE_MAP event (the source's own layout reading).
    pub fn from_table_map(
        tme: &TableMapEvent<'_>,
        columns: &[BenchColumn],
    ) -> Result<Self, String> {
        let layouts = layout(tme)?;
        Ok(Self {
            table: TableId::new(tme.database_name(), tme.table_name()),
            all_present: vec![true; layouts.len()],
            layouts,
            infos: columns.iter().map(BenchColumn::info).collect(),
            tinyint1_as_boolean: true,
        })
    }

    /// Decodes the rows part of a rows event whose images hold every column (the server's
    /// `binlog_row_image=FULL`), appending one event per row to `out`; returns how many.
    pub fn decode(
        &self,
        kind: RowsKind,
        rows: &[u8],
        out: &mut Vec<Event>,
    ) -> Result<usize, String> {
        self.decode_with(kind, rows, &self.all_present, &self.all_present, out)
    }

    /// Decodes a parsed rows event with its own column bitmaps.
    pub fn decode_event(
        &self,
        kind: RowsKind,
        event: &RowsEventData<'_>,
        out: &mut Vec<Event>,
    ) -> Result<usize, String> {
        let bitmap = |b: Option<Vec<bool>>| b.unwrap_or_default();
        let before = bitmap(
            event
                .columns_before_image()
                .map(|s| s.iter().map(|b| *b).collect()),
        );
        let after = bitmap(
            event
                .columns_after_image()
                .map(|s| s.iter().map(|b| *b).collect()),
        );
        self.decode_with(kind, event.rows_data(), &before, &after, out)
    }

    fn decode_with(
        &self,
        kind: RowsKind,
        rows: &[u8],
        before: &[bool],
        after: &[bool],
        out: &mut Vec<Event>,
    ) -> Result<usize, String> {
        let mut cursor = Cursor {
            bytes: rows,
            pos: 0,
        };
        let mut n = 0;
        while !cursor.is_done() {
            let start = cursor.pos;
            let first_present = if kind == RowsKind::Write {
                after
            } else {
                before
            };
            let first = decode_row(
                &mut cursor,
                &self.layouts,
                &self.infos,
                first_present,
                self.tinyint1_as_boolean,
            )?;
            if cursor.pos == start {
                return Err("a row image without columns".into());
            }
            let change = match kind {
                RowsKind::Write => DataChangeEvent::insert(self.table.clone(), first),
                RowsKind::Delete => DataChangeEvent::delete(self.table.clone(), first),
                RowsKind::Update => {
                    let second = decode_row(
                        &mut cursor,
                        &self.layouts,
                        &self.infos,
                        after,
                        self.tinyint1_as_boolean,
                    )?;
                    DataChangeEvent::update(self.table.clone(), first, second)
                }
            };
            out.push(Event::DataChange(change));
            n += 1;
        }
        Ok(n)
    }
}

/// A captured table for [`BinlogReplay`].
#[derive(Debug, Clone)]
pub struct BenchTable {
    /// Database.
    pub db: String,
    /// Table name.
    pub table: String,
    /// Columns in table order.
    pub columns: Vec<BenchColumn>,
    /// Primary key column names.
    pub primary_key: Vec<String>,
}

impl BenchTable {
    fn meta(&self) -> TableMeta {
        TableMeta {
            db: self.db.clone(),
            table: self.table.clone(),
            columns: self
                .columns
                .iter()
                .map(|c| MySqlColumn {
                    name: c.name.clone(),
                    type_text: c.type_text.clone(),
                    nullable: true,
                    charset: c.charset.clone(),
                    collation: None,
                    default: None,
                    comment: None,
                })
                .collect(),
            primary_key: self.primary_key.clone(),
            comment: None,
            charset: Some("utf8mb4".into()),
        }
    }

    /// The cdc-api schema the source announces for this table (with the default
    /// `treat-tinyint1-as-boolean.enabled: true`, without comments).
    pub fn schema(&self) -> Schema {
        self.meta().to_schema(true, false)
    }
}

/// Runs a future that must not wait: the reader only waits for the network (never reached
/// here) or for a full channel (drained after every event).
fn run_ready<F: Future>(future: F) -> Result<F::Output, String> {
    let mut future = std::pin::pin!(future);
    let mut cx = Context::from_waker(Waker::noop());
    match future.as_mut().poll(&mut cx) {
        Poll::Ready(v) => Ok(v),
        Poll::Pending => Err("the binlog reader waited for something during a replay".into()),
    }
}

/// The source's binlog reader fed from the bytes of a binlog file instead of the
/// replication connection: event parsing, checksums, transactions, table maps and row
/// decoding into batches of cdc-api events, on the calling thread, without the network
/// and without the runtime.
pub struct BinlogReplay {
    reader: BinlogReader,
    state: StreamState,
    batches: mpsc::Receiver<cdc_api::Result<crate::source::Batch>>,
}

impl BinlogReplay {
    /// A reader capturing `tables`, starting at the beginning of `file`.
    pub fn new(file: &str, tables: &[BenchTable]) -> Result<Self, String> {
        let mut options = Options::new("source");
        for (k, v) in [
            ("hostname", "bench.invalid"),
            ("username", "bench"),
            ("password", "bench"),
            ("tables", ".*\\..*"),
        ] {
            options.insert(k, v);
        }
        let ctx = FactoryContext {
            pipeline_name: "bench".into(),
            options,
            pipeline_options: Options::new("pipeline"),
        };
        let config = MySqlSourceConfig::from_context(&ctx).map_err(|e| e.to_string())?;
        let tables = tables
            .iter()
            .map(|t| ((t.db.clone(), t.table.clone()), t.meta()))
            .collect();
        let (tx, batches) = mpsc::channel(4);
        let reader = BinlogReader {
            config: Arc::new(config),
            opts: mysql_async::OptsBuilder::default().into(),
            tls_opts: None,
            tables,
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
            file: file.to_string(),
            pos: 4,
            skip_rows: 0,
            gtid: None,
            gtid_set: None,
        };
        Ok(Self {
            reader,
            state: StreamState::starting_at(&start),
            batches,
        })
    }

    /// Feeds every event of a binlog file (magic number included) to the reader and
    /// returns how many data change events it handed on.
    pub fn replay(&mut self, bytes: &[u8]) -> Result<u64, String> {
        if bytes.get(..4) != Some(b"\xfebin".as_slice()) {
            return Err("not a binlog file (no magic number)".into());
        }
        let mut esr = EventStreamReader::new(BinlogVersion::Version4);
        let mut changes = 0u64;
        let mut pos = 4;
        while pos < bytes.len() {
            let header = bytes
                .get(pos..pos + HEADER_LEN)
                .ok_or_else(|| format!("truncated event header at byte {pos}"))?;
            let size = u32::from_le_bytes([header[9], header[10], header[11], header[12]]) as usize;
            let footer = esr.get_fde().footer();
            let checksum = footer.get_checksum_enabled()
                && matches!(footer.get_checksum_alg(), Ok(Some(a)) if a as u8 != 0);
            let min = HEADER_LEN
                + if header[4] == FORMAT_DESCRIPTION {
                    5
                } else {
                    4 * usize::from(checksum)
                };
            if size < min || bytes.len() - pos < size {
                return Err(format!("event at byte {pos} claims {size} bytes"));
            }
            let event = esr
                .read(&bytes[pos..pos + size])
                .map_err(|e| format!("event at byte {pos}: {e}"))?
                .ok_or_else(|| format!("no event at byte {pos}"))?;
            // Unconstrained: called from inside a tokio task, the channel's sends would
            // otherwise use up the task's cooperative budget and report Pending.
            let handled = tokio::task::unconstrained(self.reader.handle(&mut self.state, &event));
            let go_on = run_ready(handled)?.map_err(|e| e.to_string())?;
            while let Ok(batch) = self.batches.try_recv() {
                let batch = batch.map_err(|e| e.to_string())?;
                changes += batch
                    .events
                    .iter()
                    .filter(|e| matches!(e, Event::DataChange(_)))
                    .count() as u64;
            }
            if !go_on {
                break;
            }
            pos += size;
        }
        Ok(changes)
    }
}
