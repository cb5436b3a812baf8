//! `cdc verify`: compares every captured source table with its target table, by primary
//! key, in chunks, and reports the rows missing in the target, the extra ones and the ones
//! whose columns differ (docs/operating.md, "Verifying a pipeline").
//!
//! Tables resolve as the pipeline resolves them: the source's `tables` / `tables.exclude`
//! over the server's `information_schema`, then `route` (cdc-runtime's router). A table a
//! `transform` reshapes (projection, filter, converter) is reported as not verified.
//!
//! Each chunk is the next `--chunk-size` source rows in key order
//! (`WHERE (k1 > ?) OR (k1 = ? AND k2 > ?) ... ORDER BY k1, k2 LIMIT n`), and the target
//! rows of the same key range, read in pages; memory stays bounded by the chunk and the
//! page whatever the table size. A chunk that differs is read again after `--settle`
//! before its differences count: they may just not be loaded yet.
//!
//! Values are compared as the sinks write them (docs/connectors/doris.md, "How values are
//! written"), each side brought to one text form; see [`Kind`] for the per-type rules.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{Context, anyhow, bail};
use base64::Engine as _;
use cdc_api::{ConnectorRegistry, FactoryContext, TableId};
use cdc_runtime::{Pipeline, PipelineDefinition};
use mysql_async::prelude::Queryable;
use serde_json::{Value as Json, json};

mod target;

use target::Target;

/// How long one request to either side may take.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(120);
/// Rows of a target page: Doris's HTTP SQL API answers at most 10 000 rows a request
/// (StmtExecutionAction's MAX_ROW_LIMIT).
const PAGE_ROWS: usize = 10_000;
/// Example keys kept per kind of difference.
const EXAMPLES: usize = 5;

/// `cdc verify` options.
#[derive(Debug, clap::Args)]
pub(crate) struct VerifyArgs {
    /// The pipeline file.
    pipeline: PathBuf,
    /// Only source tables matching this selector (`db.table`, same syntax as `tables`).
    #[arg(long, value_name = "PATTERN")]
    table: Option<String>,
    /// Output: text for people, json for scripts (one document).
    #[arg(long, value_enum, default_value_t = Format::Text)]
    format: Format,
    /// How long to wait before reading a chunk that differs again (changes in flight):
    /// e.g. 5s, 500ms, 0.
    #[arg(long, default_value = "5s", value_parser = parse_duration)]
    settle: Duration,
    /// Source rows per chunk.
    #[arg(long, default_value_t = 10_000, value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    chunk_size: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum Format {
    Text,
    Json,
}

fn parse_duration(text: &str) -> Result<Duration, String> {
    let t = text.trim();
    let (number, unit) = t
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .map_or((t, "s"), |i| t.split_at(i));
    let n: f64 = number
        .parse()
        .map_err(|_| format!("'{text}' is not a duration like 5s or 500ms"))?;
    let secs = match unit.trim() {
        "ms" => n / 1000.0,
        "s" | "" => n,
        "m" | "min" => n * 60.0,
        _ => return Err(format!("'{text}' is not a duration like 5s or 500ms")),
    };
    Duration::try_from_secs_f64(secs).map_err(|e| format!("'{text}': {e}"))
}

/// How a source column's values compare with the target's (what the sink writes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// Integers, YEAR, BOOLEAN / TINYINT(1) (`true` / `false` read as 1 / 0).
    Integer,
    /// BIT(1): BOOLEAN in the target.
    Bit1,
    /// DECIMAL: exact, trailing fraction zeros ignored.
    Decimal,
    /// FLOAT: equal within a relative 1e-5 (MySQL prints FLOAT with 6 significant digits,
    /// the sink writes the shortest exact text).
    Float,
    /// DOUBLE: equal within a relative 1e-12.
    Double,
    /// DATE, DATETIME, TIMESTAMP: zero dates are NULL in the target; trailing fraction
    /// zeros ignored (StarRocks shows microseconds). TIMESTAMP is read in the pipeline's
    /// `local-time-zone`.
    Temporal,
    /// TIME: text, trailing fraction zeros ignored.
    Time,
    /// BINARY, VARBINARY, BLOB, BIT(n > 1): base64 of the bytes in the target.
    Bytes,
    /// JSON: equal as JSON documents (the target normalises whitespace).
    Json,
    /// Text, ENUM, SET: exact; MariaDB's JSON (a LONGTEXT) also equal as JSON documents.
    Text,
    /// Spatial types: not compared.
    Skipped,
}

impl Kind {
    fn of(data_type: &str, column_type: &str) -> Self {
        let ct = column_type.to_ascii_lowercase();
        match data_type.to_ascii_lowercase().as_str() {
            "tinyint" | "smallint" | "mediumint" | "int" | "integer" | "bigint" | "year"
            | "bool" | "boolean" => Self::Integer,
            "bit" if ct == "bit(1)" => Self::Bit1,
            "bit" => Self::Bytes,
            "decimal" | "numeric" => Self::Decimal,
            "float" if !ct.contains(',') => Self::Float,
            "float" | "double" | "real" => Self::Double,
            "date" | "datetime" | "timestamp" => Self::Temporal,
            "time" => Self::Time,
            "binary" | "varbinary" | "tinyblob" | "blob" | "mediumblob" | "longblob" => Self::Bytes,
            "json" => Self::Json,
            "geometry" | "point" | "linestring" | "polygon" | "multipoint" | "multilinestring"
            | "multipolygon" | "geometrycollection" => Self::Skipped,
            _ => Self::Text,
        }
    }

    fn numeric_literal(self) -> bool {
        matches!(
            self,
            Self::Integer | Self::Decimal | Self::Float | Self::Double
        )
    }
}

/// A source value in the form the target is expected to show.
fn source_text(kind: Kind, raw: &[u8]) -> Option<String> {
    match kind {
        Kind::Bytes => Some(base64::engine::general_purpose::STANDARD.encode(raw)),
        Kind::Bit1 => Some(
            if raw.iter().any(|b| *b != 0) {
                "1"
            } else {
                "0"
            }
            .into(),
        ),
        _ => canonical(kind, &String::from_utf8_lossy(raw)),
    }
}

/// One text form per value, applied to both sides.
fn canonical(kind: Kind, text: &str) -> Option<String> {
    let t = text.trim();
    match kind {
        Kind::Integer | Kind::Bit1 => Some(match t {
            "true" | "TRUE" => "1".into(),
            "false" | "FALSE" => "0".into(),
            _ => t.to_string(),
        }),
        Kind::Decimal => Some(trim_fraction(t.trim_start_matches('+'))),
        Kind::Temporal => {
            if t.starts_with("0000-00-00") {
                None
            } else {
                Some(trim_fraction(t))
            }
        }
        Kind::Time => Some(trim_fraction(t)),
        _ => Some(text.to_string()),
    }
}

/// `1.500` -> `1.5`, `2.000` -> `2`, `-0.0` -> `0`; text without a fraction unchanged.
fn trim_fraction(t: &str) -> String {
    if !t.contains('.') || t.contains(['e', 'E']) {
        return t.to_string();
    }
    let s = t.trim_end_matches('0').trim_end_matches('.');
    if s == "-0" { "0".into() } else { s.to_string() }
}

fn floats_equal(a: &str, b: &str, tolerance: f64) -> bool {
    match (a.trim().parse::<f64>(), b.trim().parse::<f64>()) {
        (Ok(x), Ok(y)) => (x - y).abs() <= tolerance * x.abs().max(y.abs()).max(f64::MIN_POSITIVE),
        _ => a == b,
    }
}

fn json_equal(a: &str, b: &str) -> bool {
    match (
        serde_json::from_str::<Json>(a),
        serde_json::from_str::<Json>(b),
    ) {
        (Ok(x), Ok(y)) => x == y,
        _ => false,
    }
}

/// Whether a canonical source value and a canonical target value are equal.
fn values_equal(kind: Kind, column_type: &str, s: Option<&str>, t: Option<&str>) -> bool {
    let (s, t) = match (s, t) {
        (None, None) => return true,
        (Some(s), Some(t)) => (s, t),
        _ => return false,
    };
    if s == t {
        return true;
    }
    match kind {
        Kind::Float => floats_equal(s, t, 1e-5),
        Kind::Double => floats_equal(s, t, 1e-12),
        Kind::Json => json_equal(s, t),
        Kind::Text if column_type.eq_ignore_ascii_case("longtext") => json_equal(s, t),
        Kind::Skipped => true,
        _ => false,
    }
}

/// A column both sides have.
#[derive(Debug, Clone)]
struct Col {
    name: String,
    kind: Kind,
    column_type: String,
}

/// Quotes a name with backticks (both MySQL and Doris / StarRocks read them).
fn quote_name(name: &str) -> String {
    format!("`{}`", name.replace('`', "``"))
}

fn quote_text(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('\'');
    for c in text.chars() {
        match c {
            '\'' => out.push_str("\\'"),
            '\\' => out.push_str("\\\\"),
            '\0' => out.push_str("\\0"),
            c => out.push(c),
        }
    }
    out.push('\'');
    out
}

/// A key value as it goes into a query: `raw` the source's bytes (source side) or the
/// target's text (target side).
fn literal(kind: Kind, value: &KeyValue, target_side: bool) -> String {
    if !target_side && matches!(kind, Kind::Bytes | Kind::Bit1) {
        let mut hex = String::with_capacity(value.raw.len() * 2 + 3);
        hex.push_str("X'");
        for b in &value.raw {
            let _ = write!(hex, "{b:02X}");
        }
        hex.push('\'');
        return hex;
    }
    let text = if target_side {
        value.text.clone()
    } else {
        String::from_utf8_lossy(&value.raw).into_owned()
    };
    if kind.numeric_literal()
        && !text.is_empty()
        && text
            .chars()
            .all(|c| c.is_ascii_digit() || matches!(c, '-' | '+' | '.' | 'e' | 'E'))
    {
        text
    } else {
        quote_text(&text)
    }
}

/// A key column's value: the bytes the source gave, and its canonical text.
#[derive(Debug, Clone)]
struct KeyValue {
    raw: Vec<u8>,
    text: String,
}

/// `(k1 > v1) OR (k1 = v1 AND k2 > v2) ...` (`strict`), or with `<` and a last `<=`.
fn bound(keys: &[Col], values: &[KeyValue], after: bool, target_side: bool) -> String {
    let mut terms = Vec::with_capacity(keys.len());
    for i in 0..keys.len() {
        let mut parts = Vec::with_capacity(i + 1);
        for j in 0..i {
            parts.push(format!(
                "{} = {}",
                quote_name(&keys[j].name),
                literal(keys[j].kind, &values[j], target_side)
            ));
        }
        let op = match (after, i + 1 == keys.len()) {
            (true, _) => ">",
            (false, true) => "<=",
            (false, false) => "<",
        };
        parts.push(format!(
            "{} {op} {}",
            quote_name(&keys[i].name),
            literal(keys[i].kind, &values[i], target_side)
        ));
        terms.push(format!("({})", parts.join(" AND ")));
    }
    format!("({})", terms.join(" OR "))
}

fn range_where(
    keys: &[Col],
    lower: Option<&[KeyValue]>,
    upper: Option<&[KeyValue]>,
    target_side: bool,
) -> String {
    let mut conds = Vec::new();
    if let Some(l) = lower {
        conds.push(bound(keys, l, true, target_side));
    }
    if let Some(u) = upper {
        conds.push(bound(keys, u, false, target_side));
    }
    if conds.is_empty() {
        String::new()
    } else {
        format!(" WHERE {}", conds.join(" AND "))
    }
}

fn order_by(keys: &[Col]) -> String {
    let names: Vec<String> = keys.iter().map(|k| quote_name(&k.name)).collect();
    format!(" ORDER BY {}", names.join(", "))
}

/// One kind of difference: how many keys, and the first few.
#[derive(Debug, Default, Clone)]
struct Found {
    count: u64,
    examples: Vec<String>,
}

impl Found {
    fn add(&mut self, key: &str) {
        self.count += 1;
        if self.examples.len() < EXAMPLES {
            self.examples.push(key.to_string());
        }
    }
    fn merge(&mut self, other: Found) {
        self.count += other.count;
        for e in other.examples {
            if self.examples.len() < EXAMPLES {
                self.examples.push(e);
            }
        }
    }
}

/// What comparing one chunk found.
#[derive(Debug, Default, Clone)]
struct ChunkDiff {
    rows: u64,
    missing: Found,
    extra: Found,
    different: Found,
}

impl ChunkDiff {
    fn is_equal(&self) -> bool {
        self.missing.count == 0 && self.extra.count == 0 && self.different.count == 0
    }
}

/// The outcome for one source table and one of its targets.
#[derive(Debug)]
struct TableReport {
    source: String,
    target: String,
    status: Status,
    rows: u64,
    chunks: u64,
    missing: Found,
    extra: Found,
    different: Found,
    notes: Vec<String>,
    seconds: f64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Status {
    Equal,
    Different,
    NotVerified(String),
    Error(String),
}

impl TableReport {
    fn new(source: &TableId, target: &TableId) -> Self {
        Self {
            source: source.to_string(),
            target: target.to_string(),
            status: Status::Equal,
            rows: 0,
            chunks: 0,
            missing: Found::default(),
            extra: Found::default(),
            different: Found::default(),
            notes: Vec::new(),
            seconds: 0.0,
        }
    }
}

/// The source side of one table: its server connection and what to read.
struct Plan<'a> {
    db: &'a str,
    table: &'a str,
    target_db: &'a str,
    target_table: &'a str,
    cols: Vec<Col>,
    /// Indexes into `cols` of the key columns, in key order.
    key_idx: Vec<usize>,
    /// Extra target rows are not counted (a merged target holds other sources' rows).
    count_extra: bool,
}

impl Plan<'_> {
    fn keys(&self) -> Vec<Col> {
        self.key_idx.iter().map(|i| self.cols[*i].clone()).collect()
    }

    fn select_list(&self, cast: bool) -> String {
        self.cols
            .iter()
            .map(|c| {
                if cast {
                    format!("CAST({} AS STRING)", quote_name(&c.name))
                } else {
                    quote_name(&c.name)
                }
            })
            .collect::<Vec<_>>()
            .join(", ")
    }

    fn key_display(values: &[String]) -> String {
        if values.len() == 1 {
            values[0].clone()
        } else {
            format!("({})", values.join(", "))
        }
    }
}

async fn with_timeout<T, E: std::fmt::Display>(
    what: &str,
    fut: impl std::future::Future<Output = Result<T, E>>,
) -> anyhow::Result<T> {
    match tokio::time::timeout(REQUEST_TIMEOUT, fut).await {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => Err(anyhow!("{what}: {e}")),
        Err(_) => Err(anyhow!("{what}: no answer within {REQUEST_TIMEOUT:?}")),
    }
}

/// Source rows of a key range, each as raw bytes per column (NULL as `None`).
async fn read_source(
    conn: &mut mysql_async::Conn,
    plan: &Plan<'_>,
    lower: Option<&[KeyValue]>,
    upper: Option<&[KeyValue]>,
    limit: Option<usize>,
) -> anyhow::Result<Vec<Vec<Option<Vec<u8>>>>> {
    let keys = plan.keys();
    let sql = format!(
        "SELECT {} FROM {}.{}{}{}{}",
        plan.select_list(false),
        quote_name(plan.db),
        quote_name(plan.table),
        range_where(&keys, lower, upper, false),
        order_by(&keys),
        limit.map(|n| format!(" LIMIT {n}")).unwrap_or_default()
    );
    let rows: Vec<mysql_async::Row> = with_timeout(
        &format!("reading {}.{} from the source", plan.db, plan.table),
        conn.query(sql),
    )
    .await?;
    Ok(rows
        .into_iter()
        .map(|row| {
            row.unwrap()
                .into_iter()
                .map(|v| match v {
                    mysql_async::Value::NULL => None,
                    mysql_async::Value::Bytes(b) => Some(b),
                    other => Some(other.as_sql(true).into_bytes()),
                })
                .collect()
        })
        .collect())
}

/// The canonical key of a source row, with the raw values for the next bound.
fn source_key(plan: &Plan<'_>, row: &[Option<Vec<u8>>]) -> (Vec<String>, Vec<KeyValue>) {
    let mut texts = Vec::with_capacity(plan.key_idx.len());
    let mut values = Vec::with_capacity(plan.key_idx.len());
    for i in &plan.key_idx {
        let raw = row[*i].clone().unwrap_or_default();
        let text = source_text(plan.cols[*i].kind, &raw).unwrap_or_default();
        texts.push(text.clone());
        values.push(KeyValue { raw, text });
    }
    (texts, values)
}

/// Compares the source rows of a key range with the target's rows of that range.
async fn compare_range(
    target: &mut Target,
    plan: &Plan<'_>,
    source_rows: Vec<Vec<Option<Vec<u8>>>>,
    lower: Option<&[KeyValue]>,
    upper: Option<&[KeyValue]>,
) -> anyhow::Result<ChunkDiff> {
    let mut diff = ChunkDiff {
        rows: source_rows.len() as u64,
        ..ChunkDiff::default()
    };
    // Source rows by canonical key, in key order for the examples.
    let mut order: Vec<String> = Vec::with_capacity(source_rows.len());
    let mut by_key: HashMap<String, (String, Vec<Option<String>>)> =
        HashMap::with_capacity(source_rows.len());
    for row in &source_rows {
        let (texts, _) = source_key(plan, row);
        let key = texts.join("\u{1f}");
        let values = row
            .iter()
            .zip(&plan.cols)
            .map(|(v, c)| v.as_deref().and_then(|raw| source_text(c.kind, raw)))
            .collect();
        order.push(key.clone());
        by_key.insert(key, (Plan::key_display(&texts), values));
    }
    drop(source_rows);
    let keys = plan.keys();
    let mut page_lower: Option<Vec<KeyValue>> = lower.map(<[KeyValue]>::to_vec);
    loop {
        let page = target
            .read(plan, &keys, page_lower.as_deref(), upper, PAGE_ROWS)
            .await?;
        let full = page.len() == PAGE_ROWS;
        let mut last = None;
        for row in page {
            if row.len() != plan.cols.len() {
                bail!(
                    "the target answered {} columns for {}.{}, {} asked",
                    row.len(),
                    plan.target_db,
                    plan.target_table,
                    plan.cols.len()
                );
            }
            let canon: Vec<Option<String>> = row
                .iter()
                .zip(&plan.cols)
                .map(|(v, c)| v.as_deref().and_then(|t| canonical(c.kind, t)))
                .collect();
            let texts: Vec<String> = plan
                .key_idx
                .iter()
                .map(|i| canon[*i].clone().unwrap_or_default())
                .collect();
            let key = texts.join("\u{1f}");
            match by_key.remove(&key) {
                None => {
                    if plan.count_extra {
                        diff.extra.add(&Plan::key_display(&texts));
                    }
                }
                Some((shown, values)) => {
                    let changed: Vec<&str> = plan
                        .cols
                        .iter()
                        .enumerate()
                        .filter(|(i, c)| {
                            !values_equal(
                                c.kind,
                                &c.column_type,
                                values[*i].as_deref(),
                                canon[*i].as_deref(),
                            )
                        })
                        .map(|(_, c)| c.name.as_str())
                        .collect();
                    if !changed.is_empty() {
                        diff.different
                            .add(&format!("{shown} [{}]", changed.join(", ")));
                    }
                }
            }
            last = Some(
                plan.key_idx
                    .iter()
                    .map(|i| KeyValue {
                        raw: Vec::new(),
                        text: row[*i].clone().unwrap_or_default(),
                    })
                    .collect::<Vec<_>>(),
            );
        }
        if !full {
            break;
        }
        match last {
            Some(l) => page_lower = Some(l),
            None => break,
        }
    }
    for key in order {
        if let Some((shown, _)) = by_key.remove(&key) {
            diff.missing.add(&shown);
        }
    }
    Ok(diff)
}

/// Compares one table, chunk by chunk.
async fn verify_table(
    conn: &mut mysql_async::Conn,
    target: &mut Target,
    plan: &Plan<'_>,
    chunk: usize,
    settle: Duration,
    report: &mut TableReport,
) -> anyhow::Result<()> {
    let mut lower: Option<Vec<KeyValue>> = None;
    loop {
        let rows = read_source(conn, plan, lower.as_deref(), None, Some(chunk)).await?;
        let upper = if rows.len() == chunk {
            rows.last().map(|r| source_key(plan, r).1)
        } else {
            None
        };
        let mut diff =
            compare_range(target, plan, rows, lower.as_deref(), upper.as_deref()).await?;
        if !diff.is_equal() && !settle.is_zero() {
            tokio::time::sleep(settle).await;
            let again = read_source(conn, plan, lower.as_deref(), upper.as_deref(), None).await?;
            diff = compare_range(target, plan, again, lower.as_deref(), upper.as_deref()).await?;
        }
        report.chunks += 1;
        report.rows += diff.rows;
        report.missing.merge(diff.missing);
        report.extra.merge(diff.extra);
        report.different.merge(diff.different);
        match upper {
            Some(u) => lower = Some(u),
            None => break,
        }
    }
    report.status = if report.missing.count + report.extra.count + report.different.count == 0 {
        Status::Equal
    } else {
        Status::Different
    };
    Ok(())
}

/// The source's columns (name, DATA_TYPE, COLUMN_TYPE) and primary key of a table.
async fn source_columns(
    conn: &mut mysql_async::Conn,
    db: &str,
    table: &str,
) -> anyhow::Result<(Vec<(String, String, String)>, Vec<String>)> {
    let what = format!("reading the columns of {db}.{table} from the source");
    let cols: Vec<(String, String, String)> = with_timeout(
        &what,
        conn.exec(
            "SELECT COLUMN_NAME, DATA_TYPE, COLUMN_TYPE FROM information_schema.COLUMNS \
             WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ? ORDER BY ORDINAL_POSITION",
            (db, table),
        ),
    )
    .await?;
    let keys: Vec<String> = with_timeout(
        &what,
        conn.exec(
            "SELECT COLUMN_NAME FROM information_schema.KEY_COLUMN_USAGE \
             WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ? AND CONSTRAINT_NAME = 'PRIMARY' \
             ORDER BY ORDINAL_POSITION",
            (db, table),
        ),
    )
    .await?;
    Ok((cols, keys))
}

/// Sets the source session's time zone to the pipeline's `local-time-zone`, so TIMESTAMP
/// columns read as the wall-clock time the sink wrote. `false` when the server refuses it.
async fn set_time_zone(conn: &mut mysql_async::Conn, zone: &str) -> bool {
    let zone = match zone {
        "UTC" | "Etc/UTC" | "GMT" | "Etc/GMT" | "Z" | "Zulu" => "+00:00",
        z => z,
    };
    let sql = format!("SET time_zone = {}", quote_text(zone));
    matches!(
        tokio::time::timeout(REQUEST_TIMEOUT, conn.query_drop(sql)).await,
        Ok(Ok(()))
    )
}

/// Compares one source table with one target table.
#[allow(clippy::too_many_arguments)]
async fn check_one(
    conn: &mut mysql_async::Conn,
    target: &mut Target,
    source: &TableId,
    target_id: &TableId,
    count_extra: bool,
    timestamps_ok: bool,
    args: &VerifyArgs,
) -> anyhow::Result<TableReport> {
    let mut report = TableReport::new(source, target_id);
    let db = source.schema.as_deref().unwrap_or_default();
    let tdb = target_id.schema.as_deref().unwrap_or_default();
    let (columns, key_names) = source_columns(conn, db, &source.table).await?;
    if key_names.is_empty() {
        report.status = Status::NotVerified("no primary key".into());
        return Ok(report);
    }
    let target_cols = target.columns(tdb, &target_id.table).await?;
    let in_target = |n: &str| target_cols.iter().any(|t| t.eq_ignore_ascii_case(n));
    let mut cols = Vec::new();
    let mut only_source = Vec::new();
    for (name, data_type, column_type) in columns {
        if !in_target(&name) {
            only_source.push(name);
            continue;
        }
        let mut kind = Kind::of(&data_type, &column_type);
        if kind == Kind::Skipped {
            report
                .notes
                .push(format!("column {name} ({column_type}) not compared"));
        }
        if data_type.eq_ignore_ascii_case("timestamp") && !timestamps_ok {
            report.notes.push(format!(
                "column {name} (TIMESTAMP) not compared: the source server refused the pipeline's local-time-zone"
            ));
            kind = Kind::Skipped;
        }
        cols.push(Col {
            name,
            kind,
            column_type: column_type.to_ascii_lowercase(),
        });
    }
    if !only_source.is_empty() {
        report.notes.push(format!(
            "columns not in the target, not compared: {}",
            only_source.join(", ")
        ));
    }
    let mut key_idx = Vec::with_capacity(key_names.len());
    for k in &key_names {
        let i = cols
            .iter()
            .position(|c| c.name.eq_ignore_ascii_case(k))
            .ok_or_else(|| anyhow!("the target table {target_id} lacks the key column {k}"))?;
        key_idx.push(i);
    }
    if !count_extra {
        report.notes.push(
            "the target merges several source tables: its rows from other sources are not counted as extra"
                .into(),
        );
    }
    let plan = Plan {
        db,
        table: &source.table,
        target_db: tdb,
        target_table: &target_id.table,
        cols,
        key_idx,
        count_extra,
    };
    verify_table(
        conn,
        target,
        &plan,
        args.chunk_size as usize,
        args.settle,
        &mut report,
    )
    .await?;
    Ok(report)
}

/// Everything `cdc verify` found.
struct Outcome {
    reports: Vec<TableReport>,
    error: Option<String>,
}

impl Outcome {
    fn exit_code(&self) -> u8 {
        if self.error.is_some()
            || self
                .reports
                .iter()
                .any(|r| matches!(r.status, Status::Error(_)))
        {
            2
        } else {
            u8::from(self.reports.iter().any(|r| r.status == Status::Different))
        }
    }
}

/// An error and the causes that add something, on one line, secrets masked.
fn describe(error: &anyhow::Error) -> String {
    let mut text = error.to_string();
    let mut cause = error.source();
    while let Some(c) = cause {
        let more = c.to_string();
        if !text.contains(&more) {
            text.push_str(": ");
            text.push_str(&more);
        }
        cause = c.source();
    }
    cdc_runtime::secrets::redact(&text)
}

async fn compare_all(args: &VerifyArgs, registry: &ConnectorRegistry) -> Outcome {
    let mut reports = Vec::new();
    let error = match compare_all_inner(args, registry, &mut reports).await {
        Ok(()) => None,
        Err(e) => Some(describe(&e)),
    };
    Outcome { reports, error }
}

async fn compare_all_inner(
    args: &VerifyArgs,
    registry: &ConnectorRegistry,
    reports: &mut Vec<TableReport>,
) -> anyhow::Result<()> {
    let definition = PipelineDefinition::from_yaml_file(&args.pipeline)?;
    let built = Pipeline::build(&definition, registry)?;
    let settings = built.settings();
    if definition.source.connector_type != "mysql" {
        bail!(
            "cdc verify reads a mysql source; this pipeline's source is {}",
            definition.source.connector_type
        );
    }
    let source_ctx = FactoryContext {
        pipeline_name: settings.name.clone(),
        options: definition.source.options.clone(),
        pipeline_options: definition.pipeline.clone(),
    };
    let sink_ctx = FactoryContext {
        pipeline_name: settings.name.clone(),
        options: definition.sink.connector.options.clone(),
        pipeline_options: definition.pipeline.clone(),
    };
    let mut target = Target::open(&definition.sink.connector.connector_type, &sink_ctx).await?;
    let (mut conn, tables) = cdc_connector_mysql::connect_and_list_tables(&source_ctx)
        .await
        .context("connecting to the source")?;
    let timestamps_ok = set_time_zone(&mut conn, &settings.local_time_zone).await;
    let ids: Vec<TableId> = tables
        .iter()
        .map(|(d, t)| TableId::new(d.as_str(), t.as_str()))
        .collect();
    let targets = cdc_runtime::route_targets(
        &definition.routes,
        settings.route_first_match,
        &definition.origin,
        &ids,
    )?;
    let mut fan_in: HashMap<&TableId, usize> = HashMap::new();
    for t in targets.iter().flatten() {
        *fan_in.entry(t).or_default() += 1;
    }
    let only = match &args.table {
        Some(p) => Some(
            regex::Regex::new(&cdc_api::table_selector_regex(p))
                .map_err(|e| anyhow!("--table '{p}' is not a table selector: {e}"))?,
        ),
        None => None,
    };
    for (source, targets) in ids.iter().zip(&targets) {
        if only
            .as_ref()
            .is_some_and(|re| !re.is_match(&source.to_string()))
        {
            continue;
        }
        for target_id in targets {
            let started = Instant::now();
            if cdc_runtime::transform_changes_rows(&definition.transforms, source) {
                let mut r = TableReport::new(source, target_id);
                r.status = Status::NotVerified("transformed".into());
                reports.push(r);
                continue;
            }
            let count_extra = fan_in.get(target_id).copied().unwrap_or(1) <= 1;
            let mut report = match check_one(
                &mut conn,
                &mut target,
                source,
                target_id,
                count_extra,
                timestamps_ok,
                args,
            )
            .await
            {
                Ok(r) => r,
                Err(e) => {
                    let mut r = TableReport::new(source, target_id);
                    r.status = Status::Error(describe(&e));
                    r
                }
            };
            report.seconds = started.elapsed().as_secs_f64();
            reports.push(report);
        }
    }
    Ok(())
}

fn found_json(f: &Found) -> Json {
    json!({"count": f.count, "examples": f.examples})
}

fn render_json(outcome: &Outcome) -> String {
    let tables: Vec<Json> = outcome
        .reports
        .iter()
        .map(|r| {
            let (status, reason) = match &r.status {
                Status::Equal => ("equal", None),
                Status::Different => ("different", None),
                Status::NotVerified(why) => ("not_verified", Some(why.clone())),
                Status::Error(e) => ("error", Some(e.clone())),
            };
            json!({
                "source": r.source,
                "target": r.target,
                "status": status,
                "reason": reason,
                "rows": r.rows,
                "chunks": r.chunks,
                "missing": found_json(&r.missing),
                "extra": found_json(&r.extra),
                "different": found_json(&r.different),
                "notes": r.notes,
                "seconds": (r.seconds * 1000.0).round() / 1000.0,
            })
        })
        .collect();
    let count = |s: fn(&Status) -> bool| outcome.reports.iter().filter(|r| s(&r.status)).count();
    let doc = json!({
        "tables": tables,
        "summary": {
            "tables": outcome.reports.len(),
            "equal": count(|s| *s == Status::Equal),
            "different": count(|s| *s == Status::Different),
            "not_verified": count(|s| matches!(s, Status::NotVerified(_))),
            "errors": count(|s| matches!(s, Status::Error(_))),
            "rows": outcome.reports.iter().map(|r| r.rows).sum::<u64>(),
        },
        "error": outcome.error,
        "exit_code": outcome.exit_code(),
    });
    serde_json::to_string_pretty(&doc).unwrap_or_default()
}

fn render_text(outcome: &Outcome) -> String {
    let mut out = String::new();
    for r in &outcome.reports {
        let head = if r.source == r.target {
            r.source.clone()
        } else {
            format!("{} -> {}", r.source, r.target)
        };
        match &r.status {
            Status::NotVerified(why) => {
                let _ = writeln!(out, "{head}: not verified: {why}");
            }
            Status::Error(e) => {
                let _ = writeln!(out, "{head}: ERROR: {e}");
            }
            Status::Equal | Status::Different => {
                let _ = writeln!(
                    out,
                    "{head}: {} ({} rows compared in {} chunk{}, {:.1}s): {} missing, {} extra, {} different",
                    if r.status == Status::Equal {
                        "equal"
                    } else {
                        "DIFFERENT"
                    },
                    r.rows,
                    r.chunks,
                    if r.chunks == 1 { "" } else { "s" },
                    r.seconds,
                    r.missing.count,
                    r.extra.count,
                    r.different.count
                );
                for (label, f) in [
                    ("missing in target", &r.missing),
                    ("extra in target", &r.extra),
                    ("different", &r.different),
                ] {
                    if f.count > 0 {
                        let _ = writeln!(out, "  {label}: {}", f.examples.join("; "));
                    }
                }
            }
        }
        for n in &r.notes {
            let _ = writeln!(out, "  note: {n}");
        }
    }
    let count = |s: fn(&Status) -> bool| outcome.reports.iter().filter(|r| s(&r.status)).count();
    let _ = writeln!(
        out,
        "Summary: {} table{}: {} equal, {} different, {} not verified, {} errors; {} rows compared",
        outcome.reports.len(),
        if outcome.reports.len() == 1 { "" } else { "s" },
        count(|s| *s == Status::Equal),
        count(|s| *s == Status::Different),
        count(|s| matches!(s, Status::NotVerified(_))),
        count(|s| matches!(s, Status::Error(_))),
        outcome.reports.iter().map(|r| r.rows).sum::<u64>()
    );
    out
}

/// Runs `cdc verify` and prints its report; the exit code: 0 equal, 1 a difference, 2 an
/// error (a table that could not be compared, or no comparison at all).
pub(crate) async fn run(args: VerifyArgs, registry: &ConnectorRegistry) -> u8 {
    let outcome = compare_all(&args, registry).await;
    match args.format {
        Format::Json => println!("{}", render_json(&outcome)),
        Format::Text => {
            print!("{}", render_text(&outcome));
            if let Some(e) = &outcome.error {
                eprintln!("error: {e}");
            }
        }
    }
    outcome.exit_code()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_compare_as_the_sink_writes_them() {
        assert_eq!(canonical(Kind::Decimal, "12.50"), Some("12.5".into()));
        assert_eq!(canonical(Kind::Decimal, "12.00"), Some("12".into()));
        assert_eq!(canonical(Kind::Temporal, "0000-00-00"), None);
        assert_eq!(
            canonical(Kind::Temporal, "2024-01-01 10:00:00.120000"),
            Some("2024-01-01 10:00:00.12".into())
        );
        assert_eq!(canonical(Kind::Integer, "true"), Some("1".into()));
        assert_eq!(source_text(Kind::Bytes, &[0x10]), Some("EA==".into()));
        assert_eq!(source_text(Kind::Bit1, &[1]), Some("1".into()));
        assert!(values_equal(
            Kind::Float,
            "float",
            Some("3.14159"),
            Some("3.1415927")
        ));
        assert!(!values_equal(
            Kind::Float,
            "float",
            Some("3.14"),
            Some("3.15")
        ));
        assert!(values_equal(
            Kind::Json,
            "json",
            Some("{\"a\": 1}"),
            Some("{\"a\":1}")
        ));
        assert!(!values_equal(Kind::Text, "varchar(5)", Some("a"), None));
        assert_eq!(parse_duration("5s"), Ok(Duration::from_secs(5)));
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("0"), Ok(Duration::ZERO));
        assert!(parse_duration("soon").is_err());
    }

    #[test]
    fn composite_bounds_spell_each_column() {
        let keys = vec![
            Col {
                name: "a".into(),
                kind: Kind::Integer,
                column_type: "int".into(),
            },
            Col {
                name: "b".into(),
                kind: Kind::Text,
                column_type: "varchar(5)".into(),
            },
        ];
        let v = |t: &str| KeyValue {
            raw: t.as_bytes().to_vec(),
            text: t.to_string(),
        };
        let lower = [v("1"), v("x'y")];
        let upper = [v("5"), v("z")];
        assert_eq!(
            range_where(&keys, Some(&lower), Some(&upper), true),
            " WHERE ((`a` > 1) OR (`a` = 1 AND `b` > 'x\\'y')) AND ((`a` < 5) OR (`a` = 5 AND `b` <= 'z'))"
        );
    }
}
