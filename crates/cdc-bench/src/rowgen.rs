//! Row images in MySQL's binary row format (the rows part of WRITE/UPDATE/DELETE_ROWS
//! events), written for benchmark tables from a row number, so every run decodes the same
//! bytes.
//!
//! The layouts follow what MariaDB 10.11 writes with `binlog_row_image=FULL`: a NULL
//! bitmap per image, then each value in its column's binlog form (little-endian integers,
//! packed DECIMAL, length-prefixed strings, big-endian packed DATETIME2 / TIME2 /
//! TIMESTAMP2, ...), and rows events split at about 8 KiB (`binlog_row_event_max_size`).
//! The tests decode what is written here with the source's own decoder and check the
//! values, so a mistake in an encoder cannot go unnoticed as a fast benchmark of wrong data.

use cdc_connector_mysql::bench_api::{BenchColumn, BenchTable, RowsDecoder, RowsKind};

/// The largest rows event body MariaDB writes before starting a new event (its default
/// `binlog_row_event_max_size`); a body ends with the first row that crosses it.
pub const MAX_EVENT_BYTES: usize = 8192;

/// Binlog type codes (include/field_types.h).
mod code {
    pub(super) const TINY: u8 = 1;
    pub(super) const SHORT: u8 = 2;
    pub(super) const LONG: u8 = 3;
    pub(super) const FLOAT: u8 = 4;
    pub(super) const DOUBLE: u8 = 5;
    pub(super) const LONGLONG: u8 = 8;
    pub(super) const INT24: u8 = 9;
    pub(super) const DATE: u8 = 10;
    pub(super) const VARCHAR: u8 = 15;
    pub(super) const TIMESTAMP2: u8 = 17;
    pub(super) const DATETIME2: u8 = 18;
    pub(super) const TIME2: u8 = 19;
    pub(super) const JSON: u8 = 245;
    pub(super) const NEWDECIMAL: u8 = 246;
    pub(super) const BLOB: u8 = 252;
    pub(super) const STRING: u8 = 254;
}

/// A column type the benchmarks use, with how it is declared, laid out and written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ColumnKind {
    /// TINYINT (signed, not TINYINT(1)).
    TinyInt,
    /// SMALLINT.
    SmallInt,
    /// MEDIUMINT.
    MediumInt,
    /// INT.
    Int,
    /// BIGINT.
    BigInt,
    /// BIGINT UNSIGNED (decoded as DECIMAL(20, 0)).
    BigIntUnsigned,
    /// DECIMAL(precision, scale).
    Decimal(u8, u8),
    /// FLOAT.
    Float,
    /// DOUBLE.
    Double,
    /// VARCHAR(n), utf8mb4.
    VarChar(u32),
    /// CHAR(n), utf8mb4.
    Char(u32),
    /// TEXT, utf8mb4.
    Text,
    /// DATE.
    Date,
    /// TIME(fsp).
    Time(u8),
    /// DATETIME(fsp).
    DateTime(u8),
    /// TIMESTAMP(fsp).
    Timestamp(u8),
    /// JSON as MariaDB stores it: LONGTEXT holding JSON text.
    JsonText,
    /// JSON as MySQL 8 stores it: its binary JSON format.
    JsonBinary,
    /// BLOB.
    Blob,
    /// VARBINARY(n).
    VarBinary(u32),
}

/// `splitmix64`: a well-mixed 64-bit value per (row, column), cheap and reproducible.
fn mix(row: u64, column: usize) -> u64 {
    let mut z = row
        .wrapping_mul(0x9E37_79B9_7F4A_7C15)
        .wrapping_add(column as u64 + 1);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

fn push_be(out: &mut Vec<u8>, value: u64, bytes: usize) {
    for i in (0..bytes).rev() {
        out.push((value >> (8 * i)) as u8);
    }
}

fn push_le(out: &mut Vec<u8>, value: u64, bytes: usize) {
    for i in 0..bytes {
        out.push((value >> (8 * i)) as u8);
    }
}

/// A string's length prefix: one byte when the column's maximum byte length is below 256.
fn push_string(out: &mut Vec<u8>, bytes: &[u8], length_bytes: usize) {
    push_le(out, bytes.len() as u64, length_bytes);
    out.extend_from_slice(bytes);
}

const DIG2BYTES: [usize; 10] = [0, 1, 1, 2, 2, 3, 3, 4, 4, 4];

/// MySQL's packed binary DECIMAL (`decimal2bin`) of `unscaled / 10^scale`.
pub fn packed_decimal(unscaled: i128, precision: u8, scale: u8) -> Vec<u8> {
    let negative = unscaled < 0;
    let digits = unscaled.unsigned_abs().to_string();
    let (intg, frac) = (usize::from(precision - scale), usize::from(scale));
    // Exactly intg + frac digits, zero-padded on the left (values are generated to fit).
    let padded = format!("{digits:0>width$}", width = intg + frac);
    let padded = &padded[padded.len() - (intg + frac)..];
    let (int_part, frac_part) = padded.split_at(intg);
    let group = |text: &str| text.parse::<u64>().unwrap_or(0);
    let mut out = Vec::new();
    let lead = intg % 9;
    if lead > 0 {
        push_be(&mut out, group(&int_part[..lead]), DIG2BYTES[lead]);
    }
    for chunk in int_part.as_bytes()[lead..].chunks(9) {
        push_be(
            &mut out,
            group(std::str::from_utf8(chunk).unwrap_or("0")),
            4,
        );
    }
    for chunk in frac_part.as_bytes().chunks(9) {
        let text = std::str::from_utf8(chunk).unwrap_or("0");
        let bytes = if chunk.len() == 9 {
            4
        } else {
            DIG2BYTES[chunk.len()]
        };
        push_be(&mut out, group(text), bytes);
    }
    if negative {
        for b in &mut out {
            *b ^= 0xFF;
        }
    }
    if let Some(first) = out.first_mut() {
        *first ^= 0x80;
    }
    out
}

/// A small object in MySQL 8's binary JSON format: `{"id": <int32>, "ok": <bool>,
/// "name": <string>}` (keys sorted by length, then bytes, as the server writes them).
pub fn binary_json(id: i32, ok: bool, name: &str) -> Vec<u8> {
    const SMALL_OBJECT: u8 = 0x00;
    const LITERAL: u8 = 0x04;
    const INT32: u8 = 0x07;
    const STRING: u8 = 0x0C;
    let keys: [&[u8]; 3] = [b"id", b"ok", b"name"];
    let header = 4 + keys.len() * 4 + keys.len() * 3;
    let keys_len: usize = keys.iter().map(|k| k.len()).sum();
    let id_offset = header + keys_len;
    let name_offset = id_offset + 4;
    let name_len = name.len();
    let mut name_value = Vec::new();
    // Variable-length size: 7 bits per byte, high bit set when more follow.
    let mut n = name_len;
    loop {
        let byte = (n & 0x7F) as u8;
        n >>= 7;
        if n == 0 {
            name_value.push(byte);
            break;
        }
        name_value.push(byte | 0x80);
    }
    name_value.extend_from_slice(name.as_bytes());
    let size = name_offset + name_value.len();
    let mut out = vec![SMALL_OBJECT];
    push_le(&mut out, keys.len() as u64, 2);
    push_le(&mut out, size as u64, 2);
    let mut key_offset = header;
    for key in keys {
        push_le(&mut out, key_offset as u64, 2);
        push_le(&mut out, key.len() as u64, 2);
        key_offset += key.len();
    }
    out.push(INT32);
    push_le(&mut out, id_offset as u64, 2);
    out.push(LITERAL);
    push_le(&mut out, u64::from(ok), 2);
    out.push(STRING);
    push_le(&mut out, name_offset as u64, 2);
    for key in keys {
        out.extend_from_slice(key);
    }
    push_le(&mut out, u64::from(id as u32), 4);
    out.extend_from_slice(&name_value);
    out
}

/// Text of a utf8mb4 column: mostly ASCII with a few multi-byte characters, at most
/// `chars` characters.
fn text(row: u64, h: u64, chars: usize) -> String {
    let words = [
        "name", "café", "Zürich", "東京", "data", "wert", "ñandú", "price",
    ];
    let mut s = format!("{}-{row}-{}", words[(h % 8) as usize], h % 1000);
    while s.chars().count() < chars.min(12 + (h % 20) as usize) {
        s.push_str(words[((h >> 8) % 8) as usize]);
    }
    s.chars().take(chars).collect()
}

impl ColumnKind {
    /// The column type as `information_schema.COLUMNS.COLUMN_TYPE` shows it.
    pub fn type_text(self) -> String {
        match self {
            Self::TinyInt => "tinyint(4)".into(),
            Self::SmallInt => "smallint(6)".into(),
            Self::MediumInt => "mediumint(9)".into(),
            Self::Int => "int(11)".into(),
            Self::BigInt => "bigint(20)".into(),
            Self::BigIntUnsigned => "bigint(20) unsigned".into(),
            Self::Decimal(p, s) => format!("decimal({p},{s})"),
            Self::Float => "float".into(),
            Self::Double => "double".into(),
            Self::VarChar(n) => format!("varchar({n})"),
            Self::Char(n) => format!("char({n})"),
            Self::Text => "text".into(),
            Self::Date => "date".into(),
            Self::Time(f) => format!("time({f})"),
            Self::DateTime(f) => format!("datetime({f})"),
            Self::Timestamp(f) => format!("timestamp({f})"),
            Self::JsonText | Self::JsonBinary => "json".into(),
            Self::Blob => "blob".into(),
            Self::VarBinary(n) => format!("varbinary({n})"),
        }
    }

    /// The type in a `CREATE TABLE` statement.
    pub fn sql_type(self) -> String {
        match self {
            Self::JsonText | Self::JsonBinary => "JSON".into(),
            other => other.type_text().to_ascii_uppercase(),
        }
    }

    fn charset(self) -> Option<&'static str> {
        match self {
            Self::VarChar(_) | Self::Char(_) | Self::Text | Self::JsonText => Some("utf8mb4"),
            Self::Blob | Self::VarBinary(_) => Some("binary"),
            _ => None,
        }
    }

    /// Binlog type code and metadata, as the source reads them from the TABLE_MAP event.
    pub fn layout(self) -> (u8, u16) {
        match self {
            Self::TinyInt => (code::TINY, 0),
            Self::SmallInt => (code::SHORT, 0),
            Self::MediumInt => (code::INT24, 0),
            Self::Int => (code::LONG, 0),
            Self::BigInt | Self::BigIntUnsigned => (code::LONGLONG, 0),
            Self::Decimal(p, s) => (code::NEWDECIMAL, (u16::from(p) << 8) | u16::from(s)),
            Self::Float => (code::FLOAT, 4),
            Self::Double => (code::DOUBLE, 8),
            // utf8mb4: up to four bytes a character.
            Self::VarChar(n) => (code::VARCHAR, (n * 4) as u16),
            Self::Char(n) => (code::STRING, (n * 4) as u16),
            Self::Text | Self::Blob => (code::BLOB, 2),
            Self::Date => (code::DATE, 0),
            Self::Time(f) => (code::TIME2, u16::from(f)),
            Self::DateTime(f) => (code::DATETIME2, u16::from(f)),
            Self::Timestamp(f) => (code::TIMESTAMP2, u16::from(f)),
            Self::JsonText => (code::BLOB, 4),
            Self::JsonBinary => (code::JSON, 4),
            Self::VarBinary(n) => (code::VARCHAR, n as u16),
        }
    }

    /// Appends the binlog form of this column's value in `row` (column `column`).
    pub fn write(self, row: u64, column: usize, out: &mut Vec<u8>) {
        let h = mix(row, column);
        match self {
            Self::TinyInt => push_le(out, h, 1),
            Self::SmallInt => push_le(out, h, 2),
            Self::MediumInt => push_le(out, h, 3),
            Self::Int => push_le(out, h % 1_000_000, 4),
            Self::BigInt => push_le(out, row.wrapping_mul(1000).wrapping_add(h % 1000), 8),
            Self::BigIntUnsigned => push_le(out, h, 8),
            Self::Decimal(p, s) => {
                let digits = u32::from(p).min(30);
                let unscaled = (u128::from(h) * u128::from(h >> 7)) % 10u128.pow(digits);
                let signed = if h & 1 == 1 {
                    -(unscaled as i128)
                } else {
                    unscaled as i128
                };
                out.extend(packed_decimal(signed, p, s));
            }
            Self::Float => push_le(out, u64::from(((h % 100_000) as f32 / 8.0).to_bits()), 4),
            Self::Double => push_le(out, ((h % 10_000_000) as f64 / 64.0).to_bits(), 8),
            Self::VarChar(n) | Self::Char(n) => {
                let length_bytes = if n * 4 < 256 { 1 } else { 2 };
                push_string(out, text(row, h, n as usize).as_bytes(), length_bytes);
            }
            Self::Text => {
                let mut s = String::new();
                while s.len() < 150 + (h % 100) as usize {
                    s.push_str(&text(row, h.rotate_left(s.len() as u32), 32));
                    s.push(' ');
                }
                push_string(out, s.as_bytes(), 2);
            }
            Self::Date => {
                let (y, m, d) = (2000 + h % 30, 1 + (h >> 8) % 12, 1 + (h >> 16) % 28);
                push_le(out, (y << 9) | (m << 5) | d, 3);
            }
            Self::Time(fsp) => {
                let (hh, mm, ss) = (h % 24, (h >> 8) % 60, (h >> 16) % 60);
                let int = (hh << 12) | (mm << 6) | ss;
                let micros = (h >> 24) % 1_000_000;
                match fsp.div_ceil(2) {
                    0 => push_be(out, 0x80_0000 + int, 3),
                    1 => {
                        push_be(out, 0x80_0000 + int, 3);
                        push_be(out, micros / 10_000, 1);
                    }
                    2 => {
                        push_be(out, 0x80_0000 + int, 3);
                        push_be(out, micros / 100, 2);
                    }
                    _ => push_be(out, 0x8000_0000_0000 + (int << 24) + micros, 6),
                }
            }
            Self::DateTime(fsp) => {
                let (y, mo, d) = (2000 + h % 30, 1 + (h >> 8) % 12, 1 + (h >> 16) % 28);
                let (hh, mi, ss) = ((h >> 24) % 24, (h >> 32) % 60, (h >> 40) % 60);
                let ymd = ((y * 13 + mo) << 5) | d;
                let hms = (hh << 12) | (mi << 6) | ss;
                push_be(out, 0x80_0000_0000 + ((ymd << 17) | hms), 5);
                write_fraction(out, fsp, (h >> 44) % 1_000_000);
            }
            Self::Timestamp(fsp) => {
                push_be(out, 1_500_000_000 + h % 300_000_000, 4);
                write_fraction(out, fsp, (h >> 40) % 1_000_000);
            }
            Self::JsonText => {
                let doc = format!(
                    "{{\"id\": {row}, \"name\": \"{}\", \"tags\": [\"a\", \"b{}\"], \"price\": {}.{:02}, \"ok\": {}}}",
                    text(row, h, 16),
                    h % 100,
                    h % 1000,
                    (h >> 10) % 100,
                    h & 1 == 1
                );
                push_string(out, doc.as_bytes(), 4);
            }
            Self::JsonBinary => {
                let doc = binary_json(row as i32, h & 1 == 1, &text(row, h, 16));
                push_string(out, &doc, 4);
            }
            Self::Blob => {
                let len = 200 + (h % 112) as usize;
                let bytes: Vec<u8> = (0..len).map(|i| mix(h, i) as u8).collect();
                push_string(out, &bytes, 2);
            }
            Self::VarBinary(n) => {
                let len = (16 + (h % 48) as usize).min(n as usize);
                let bytes: Vec<u8> = (0..len).map(|i| mix(h, i) as u8).collect();
                push_string(out, &bytes, if n < 256 { 1 } else { 2 });
            }
        }
    }
}

/// The fraction of DATETIME2 / TIMESTAMP2 for `fsp` digits, from microseconds.
fn write_fraction(out: &mut Vec<u8>, fsp: u8, micros: u64) {
    match fsp.div_ceil(2) {
        0 => {}
        1 => push_be(out, micros / 10_000, 1),
        2 => push_be(out, micros / 100, 2),
        _ => push_be(out, micros, 3),
    }
}

/// A benchmark table: a name and typed columns.
#[derive(Debug, Clone)]
pub struct TableSpec {
    /// Table name (the database is always `bench`).
    pub name: String,
    /// Column names and kinds, in table order; the first column is the primary key.
    pub columns: Vec<(String, ColumnKind)>,
}

/// The column kinds of the 50-column wide table after its `id BIGINT` key, cycling
/// through the reference table's families plus BIGINT and DATE.
pub const WIDE_CYCLE: [ColumnKind; 7] = [
    ColumnKind::Int,
    ColumnKind::VarChar(32),
    ColumnKind::Decimal(12, 2),
    ColumnKind::DateTime(3),
    ColumnKind::Double,
    ColumnKind::BigInt,
    ColumnKind::Date,
];

impl TableSpec {
    fn new(name: &str, columns: &[(&str, ColumnKind)]) -> Self {
        Self {
            name: name.to_string(),
            columns: columns
                .iter()
                .map(|(n, k)| ((*n).to_string(), *k))
                .collect(),
        }
    }

    /// The reference table: BIGINT pk, INT, VARCHAR(32), DECIMAL(12,2), DATETIME(3),
    /// DOUBLE.
    pub fn reference() -> Self {
        Self::new(
            "t",
            &[
                ("id", ColumnKind::BigInt),
                ("k", ColumnKind::Int),
                ("name", ColumnKind::VarChar(32)),
                ("amount", ColumnKind::Decimal(12, 2)),
                ("created", ColumnKind::DateTime(3)),
                ("score", ColumnKind::Double),
            ],
        )
    }

    /// The wide table: `id BIGINT` and 49 columns of [`WIDE_CYCLE`], named `c1` .. `c49`.
    pub fn wide() -> Self {
        let mut columns = vec![("id".to_string(), ColumnKind::BigInt)];
        columns.extend((1..50).map(|i| (format!("c{i}"), WIDE_CYCLE[(i - 1) % WIDE_CYCLE.len()])));
        Self {
            name: "wide".into(),
            columns,
        }
    }

    /// One table per type family (after an `id BIGINT` key): integers, decimals, utf8mb4
    /// strings, temporal types, JSON as MariaDB writes it (text), JSON as MySQL 8 writes
    /// it (binary), blobs.
    pub fn families() -> Vec<Self> {
        use ColumnKind as K;
        let family = |name: &str, kinds: &[K]| {
            let mut columns = vec![("id".to_string(), K::BigInt)];
            columns.extend(
                kinds
                    .iter()
                    .enumerate()
                    .map(|(i, k)| (format!("c{}", i + 1), *k)),
            );
            Self {
                name: name.to_string(),
                columns,
            }
        };
        vec![
            family(
                "ints",
                &[
                    K::TinyInt,
                    K::SmallInt,
                    K::MediumInt,
                    K::Int,
                    K::BigInt,
                    K::BigIntUnsigned,
                ],
            ),
            family(
                "decimals",
                &[
                    K::Decimal(12, 2),
                    K::Decimal(18, 4),
                    K::Decimal(38, 10),
                    K::Decimal(65, 30),
                ],
            ),
            family(
                "strings",
                &[K::VarChar(32), K::VarChar(255), K::Char(10), K::Text],
            ),
            family(
                "temporal",
                &[
                    K::Date,
                    K::Time(0),
                    K::DateTime(0),
                    K::DateTime(6),
                    K::Timestamp(3),
                ],
            ),
            family("json_text", &[K::JsonText]),
            family("json_binary", &[K::JsonBinary]),
            family("blobs", &[K::Blob, K::VarBinary(64)]),
        ]
    }

    /// The table as the source's benchmark entry points take it (database `bench`).
    pub fn bench_table(&self) -> BenchTable {
        BenchTable {
            db: "bench".into(),
            table: self.name.clone(),
            columns: self
                .columns
                .iter()
                .map(|(n, k)| BenchColumn::new(n, &k.type_text(), k.charset()))
                .collect(),
            primary_key: vec![self.columns[0].0.clone()],
        }
    }

    /// The source's row decoder for this table.
    pub fn decoder(&self) -> RowsDecoder {
        let table = self.bench_table();
        let layouts: Vec<(u8, u16)> = self.columns.iter().map(|(_, k)| k.layout()).collect();
        RowsDecoder::new(&table.db, &table.table, &table.columns, &layouts)
    }

    /// Appends one full row image (no NULLs) of row number `row`.
    pub fn write_row(&self, row: u64, out: &mut Vec<u8>) {
        out.resize(out.len() + self.columns.len().div_ceil(8), 0);
        for (i, (_, kind)) in self.columns.iter().enumerate() {
            if i == 0 {
                // The key: the row number, as the end-to-end tables have it.
                push_le(out, row, 8);
            } else {
                kind.write(row, i, out);
            }
        }
    }

    /// Rows `first .. first + count` as cdc-api values, decoded from their row images by
    /// the source's decoder (the input of the encoder and transform benchmarks).
    pub fn values(&self, first: u64, count: u64) -> Result<Vec<Vec<cdc_api::Value>>, String> {
        let decoder = self.decoder();
        let mut events = Vec::with_capacity(count as usize);
        for body in self.rows_events(first, count) {
            decoder.decode(RowsKind::Write, &body, &mut events)?;
        }
        Ok(events
            .into_iter()
            .filter_map(|e| match e {
                cdc_api::Event::DataChange(c) => c.after,
                cdc_api::Event::SchemaChange(_) => None,
            })
            .collect())
    }

    /// Rows events (their rows parts) holding rows `first .. first + count`, split the
    /// way the server splits them.
    pub fn rows_events(&self, first: u64, count: u64) -> Vec<Vec<u8>> {
        self.events(first, count, false)
    }

    /// UPDATE_ROWS events (their rows parts) changing rows `first .. first + count`: each
    /// row a before and an after image.
    pub fn update_events(&self, first: u64, count: u64) -> Vec<Vec<u8>> {
        self.events(first, count, true)
    }

    fn events(&self, first: u64, count: u64, update: bool) -> Vec<Vec<u8>> {
        let mut events = Vec::new();
        let mut body = Vec::with_capacity(MAX_EVENT_BYTES + 1024);
        for row in first..first + count {
            self.write_row(row, &mut body);
            if update {
                // Same key, other values: what an UPDATE of non-key columns writes.
                let start = body.len();
                self.write_row(row ^ (1 << 40), &mut body);
                let key = start + self.columns.len().div_ceil(8);
                body[key..key + 8].copy_from_slice(&row.to_le_bytes());
            }
            if body.len() >= MAX_EVENT_BYTES {
                events.push(std::mem::take(&mut body));
            }
        }
        if !body.is_empty() {
            events.push(body);
        }
        events
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use cdc_api::{Event, Value};

    use super::*;

    fn decode(spec: &TableSpec, rows: u64) -> Vec<Vec<Value>> {
        let decoder = spec.decoder();
        let mut out = Vec::new();
        for body in spec.rows_events(7, rows) {
            decoder.decode(RowsKind::Write, &body, &mut out).unwrap();
        }
        out.into_iter()
            .map(|e| match e {
                Event::DataChange(c) => c.after.unwrap(),
                Event::SchemaChange(_) => panic!("a schema change from row decoding"),
            })
            .collect()
    }

    #[test]
    fn every_table_decodes_with_the_sources_decoder() {
        let mut tables = TableSpec::families();
        tables.push(TableSpec::reference());
        tables.push(TableSpec::wide());
        for spec in tables {
            let rows = decode(&spec, 300);
            assert_eq!(rows.len(), 300, "{}", spec.name);
            for (i, row) in rows.iter().enumerate() {
                assert_eq!(row.len(), spec.columns.len(), "{}", spec.name);
                assert_eq!(row[0], Value::BigInt(7 + i as i64), "{}", spec.name);
                assert!(row.iter().all(|v| !v.is_null()), "{}: {row:?}", spec.name);
            }
        }
    }

    #[test]
    fn updates_carry_both_images() {
        let spec = TableSpec::reference();
        let decoder = spec.decoder();
        let mut out = Vec::new();
        for body in spec.update_events(3, 50) {
            decoder.decode(RowsKind::Update, &body, &mut out).unwrap();
        }
        assert_eq!(out.len(), 50);
        let Event::DataChange(c) = &out[0] else {
            panic!()
        };
        let (before, after) = (c.before.as_ref().unwrap(), c.after.as_ref().unwrap());
        assert_eq!(
            (&before[0], &after[0]),
            (&Value::BigInt(3), &Value::BigInt(3))
        );
        assert_ne!(before[2], after[2]);
    }

    #[test]
    fn events_split_like_the_server() {
        let events = TableSpec::reference().rows_events(0, 1000);
        assert!(events.len() > 1);
        for e in &events[..events.len() - 1] {
            assert!(e.len() >= MAX_EVENT_BYTES && e.len() < MAX_EVENT_BYTES + 200);
        }
    }

    #[test]
    fn decimals_round_trip() {
        use cdc_connector_mysql::bench_api::BenchColumn;
        for (unscaled, p, s, text) in [
            (123_456_789_012_345i128, 20u8, 4u8, "12345678901.2345"),
            (-5, 12, 2, "-0.05"),
            (0, 12, 2, "0.00"),
            (-1_234_567_890_123_456_789, 38, 10, "-123456789.0123456789"),
        ] {
            let kind = ColumnKind::Decimal(p, s);
            let column = BenchColumn::new("d", &kind.type_text(), None);
            let decoder = RowsDecoder::new("b", "t", &[column], &[kind.layout()]);
            let mut body = vec![0u8];
            body.extend(packed_decimal(unscaled, p, s));
            let mut out = Vec::new();
            decoder.decode(RowsKind::Write, &body, &mut out).unwrap();
            let Event::DataChange(c) = &out[0] else {
                panic!()
            };
            match &c.after.as_ref().unwrap()[0] {
                Value::Decimal(d) => assert_eq!(d.to_string(), text),
                other => panic!("{other:?}"),
            }
        }
    }

    #[test]
    fn binary_json_is_what_mysql_writes() {
        let spec = TableSpec::families()
            .into_iter()
            .find(|t| t.name == "json_binary")
            .unwrap();
        let rows = decode(&spec, 3);
        let Value::Json(text) = &rows[1][1] else {
            panic!("{:?}", rows[1][1])
        };
        let v: serde_json::Value = serde_json::from_str(text).unwrap();
        assert_eq!(v["id"], 8);
        assert!(v["name"].as_str().unwrap().contains("-8-"));
        assert!(v["ok"].is_boolean());
    }
}
