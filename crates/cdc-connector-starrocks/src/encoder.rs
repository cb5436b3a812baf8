//! Rows to Stream Load bodies: one JSON array of objects (`strip_outer_array: true`), each
//! with `"__op"` (0 upsert, 1 delete), written straight into the caller's reusable buffer.
//!
//! Values are rendered the way Flink CDC's StarRocks sink leaves them in the target (see
//! the reference, section 10): decimals exact (as JSON strings, so StarRocks never reads
//! them as doubles), DATETIME with all six fraction digits (StarRocks' DATETIME takes no
//! scale but stores microseconds), TIMESTAMP_LTZ in the pipeline's `local-time-zone`, TIME
//! as `HH:MM:SS` plus exactly its precision's digits, bytes as base64, nested values as
//! JSON text, NULL apart from the empty string.

use std::fmt;

use base64::Engine as _;
use cdc_api::{DataType, DataTypeKind, Date, Schema, Timestamp, Value};

use crate::config::Zone;
use crate::type_mapping::MAX_DECIMAL_PRECISION;

struct ColumnEncoding {
    /// `"name":`, escaped once.
    key: Vec<u8>,
    data_type: DataType,
}

/// Encodes rows of one table schema as JSON lines.
pub(crate) struct RowEncoder {
    columns: Vec<ColumnEncoding>,
    zone: Zone,
    /// Nested values are built here before being written as one JSON string.
    scratch: Vec<u8>,
}

impl RowEncoder {
    /// An encoder for rows of `schema`, rendering TIMESTAMP_LTZ in `zone`.
    pub(crate) fn new(schema: &Schema, zone: Zone) -> Self {
        let columns = schema
            .columns
            .iter()
            .map(|c| {
                let mut key = Vec::with_capacity(c.name.len() + 3);
                write_json_string(&mut key, &c.name);
                key.push(b':');
                ColumnEncoding {
                    key,
                    data_type: c.data_type.clone(),
                }
            })
            .collect();
        Self {
            columns,
            zone,
            scratch: Vec::new(),
        }
    }

    /// Appends one row to the JSON array in `out` (opening it when `out` is empty), with
    /// `"__op": 1` when `delete`, else `0`. Values beyond the schema are ignored and missing
    /// ones written as NULL. [`finish`] closes the array.
    pub(crate) fn encode(&mut self, out: &mut Vec<u8>, row: &[Value], delete: bool) {
        out.push(if out.is_empty() { b'[' } else { b',' });
        out.push(b'{');
        let mut scratch = std::mem::take(&mut self.scratch);
        for (i, column) in self.columns.iter().enumerate() {
            out.extend_from_slice(&column.key);
            let value = row.get(i).unwrap_or(&Value::Null);
            write_value(out, &mut scratch, value, &column.data_type, self.zone);
            out.push(b',');
        }
        self.scratch = scratch;
        out.extend_from_slice(if delete {
            b"\"__op\":1}"
        } else {
            b"\"__op\":0}"
        });
    }
}

/// Closes the JSON array of a body [`RowEncoder::encode`] wrote (`[]` when empty).
pub(crate) fn finish(out: &mut Vec<u8>) {
    if out.is_empty() {
        out.push(b'[');
    }
    out.push(b']');
}

/// Lets `write!` and `Display` impls append to a byte buffer without a temporary String.
struct ByteWriter<'a>(&'a mut Vec<u8>);

impl fmt::Write for ByteWriter<'_> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        self.0.extend_from_slice(s.as_bytes());
        Ok(())
    }
}

fn write_value(
    out: &mut Vec<u8>,
    scratch: &mut Vec<u8>,
    value: &Value,
    data_type: &DataType,
    zone: Zone,
) {
    match value {
        Value::Null => out.extend_from_slice(b"null"),
        Value::Boolean(b) => out.extend_from_slice(if *b { b"true" } else { b"false" }),
        Value::TinyInt(v) => write_int(out, *v),
        Value::SmallInt(v) => write_int(out, *v),
        Value::Int(v) => write_int(out, *v),
        Value::BigInt(v) => write_int(out, *v),
        Value::Float(v) => write_float(out, f64::from(*v), Some(*v)),
        Value::Double(v) => write_float(out, *v, None),
        Value::Decimal(d) => {
            out.push(b'"');
            match data_type.kind {
                DataTypeKind::Decimal { precision, scale }
                    if precision <= MAX_DECIMAL_PRECISION && d.scale() != scale =>
                {
                    write_display(out, &d.with_scale(scale));
                }
                _ => write_display(out, d),
            }
            out.push(b'"');
        }
        Value::String(s) | Value::Json(s) => write_json_string(out, s),
        Value::Bytes(b) => {
            out.push(b'"');
            write_base64(out, b);
            out.push(b'"');
        }
        Value::Date(d) => {
            if d.is_valid() {
                out.push(b'"');
                write_date(out, *d);
                out.push(b'"');
            } else {
                // MySQL zero dates have no StarRocks equivalent; Debezium and Flink CDC give NULL.
                out.extend_from_slice(b"null");
            }
        }
        Value::Time(t) => {
            let precision = match data_type.kind {
                DataTypeKind::Time { precision } => precision,
                _ => 6,
            };
            out.push(b'"');
            let _ = t.write_with_precision(&mut ByteWriter(out), precision);
            out.push(b'"');
        }
        Value::Timestamp(ts) => write_timestamp_or_null(out, ts),
        Value::TimestampLtz(micros) => write_instant(out, *micros, zone),
        Value::TimestampTz {
            timestamp,
            offset_seconds,
        } => {
            if timestamp.date.is_valid() {
                let instant = timestamp.to_epoch_micros() - i64::from(*offset_seconds) * 1_000_000;
                write_instant(out, instant, zone);
            } else {
                out.extend_from_slice(b"null");
            }
        }
        Value::Array(_) | Value::Map(_) | Value::Row(_) => {
            scratch.clear();
            write_nested(scratch, value, Some(data_type), zone);
            // The column is VARCHAR: the nested JSON goes in as text.
            match std::str::from_utf8(scratch) {
                Ok(text) => write_json_string(out, text),
                Err(_) => out.extend_from_slice(b"null"),
            }
        }
        _ => out.extend_from_slice(b"null"),
    }
}

/// Writes a value as a JSON value inside a nested structure (elements typed by `data_type`
/// when known).
fn write_nested(out: &mut Vec<u8>, value: &Value, data_type: Option<&DataType>, zone: Zone) {
    match value {
        Value::Array(items) => {
            let element = match data_type.map(|t| &t.kind) {
                Some(DataTypeKind::Array(e)) => Some(e.as_ref()),
                _ => None,
            };
            out.push(b'[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_nested(out, item, element, zone);
            }
            out.push(b']');
        }
        Value::Map(entries) => {
            let value_type = match data_type.map(|t| &t.kind) {
                Some(DataTypeKind::Map { value, .. }) => Some(value.as_ref()),
                _ => None,
            };
            out.push(b'{');
            let mut key_text = Vec::new();
            for (i, (k, v)) in entries.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                // JSON keys are strings: render the key, then quote it unless it already is.
                key_text.clear();
                write_nested(&mut key_text, k, None, zone);
                if key_text.first() == Some(&b'"') {
                    out.extend_from_slice(&key_text);
                } else {
                    out.push(b'"');
                    out.extend_from_slice(&key_text);
                    out.push(b'"');
                }
                out.push(b':');
                write_nested(out, v, value_type, zone);
            }
            out.push(b'}');
        }
        Value::Row(fields) => {
            let names = match data_type.map(|t| &t.kind) {
                Some(DataTypeKind::Row(f)) => Some(f),
                _ => None,
            };
            out.push(b'{');
            for (i, v) in fields.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                let field = names.and_then(|n| n.get(i));
                match field {
                    Some(f) => write_json_string(out, &f.name),
                    None => {
                        out.extend_from_slice(b"\"f");
                        write_int(out, i + 1);
                        out.push(b'"');
                    }
                }
                out.push(b':');
                write_nested(out, v, field.map(|f| &f.data_type), zone);
            }
            out.push(b'}');
        }
        Value::Json(text) => {
            // Already JSON: embed it as is when it parses, as a string otherwise.
            if serde_json::from_str::<serde::de::IgnoredAny>(text).is_ok() {
                out.extend_from_slice(text.as_bytes());
            } else {
                write_json_string(out, text);
            }
        }
        other => {
            let fallback = DataType::new(DataTypeKind::String);
            let mut unused = Vec::new();
            write_value(
                out,
                &mut unused,
                other,
                data_type.unwrap_or(&fallback),
                zone,
            );
        }
    }
}

fn write_display(out: &mut Vec<u8>, value: &impl fmt::Display) {
    use fmt::Write as _;
    let _ = write!(ByteWriter(out), "{value}");
}

fn write_int(out: &mut Vec<u8>, v: impl itoa::Integer) {
    let mut buf = itoa::Buffer::new();
    out.extend_from_slice(buf.format(v).as_bytes());
}

fn write_float(out: &mut Vec<u8>, v: f64, as_f32: Option<f32>) {
    if !v.is_finite() {
        // JSON has no NaN or infinity, and StarRocks would turn the text into NULL anyway.
        out.extend_from_slice(b"null");
        return;
    }
    let mut buf = ryu::Buffer::new();
    // Format a FLOAT as f32 so 1.1 stays 1.1 rather than 1.100000023841858.
    let text = match as_f32 {
        Some(f) => buf.format_finite(f),
        None => buf.format_finite(v),
    };
    out.extend_from_slice(text.as_bytes());
}

fn write_base64(out: &mut Vec<u8>, bytes: &[u8]) {
    let engine = &base64::engine::general_purpose::STANDARD;
    let start = out.len();
    let len = bytes.len().div_ceil(3) * 4;
    out.resize(start + len, 0);
    match engine.encode_slice(bytes, &mut out[start..]) {
        Ok(written) => out.truncate(start + written),
        Err(_) => out.truncate(start),
    }
}

fn write_two(out: &mut Vec<u8>, v: u32) {
    out.push(b'0' + (v / 10 % 10) as u8);
    out.push(b'0' + (v % 10) as u8);
}

fn write_date(out: &mut Vec<u8>, d: Date) {
    let y = u32::from(d.year);
    write_two(out, y / 100);
    write_two(out, y % 100);
    out.push(b'-');
    write_two(out, u32::from(d.month));
    out.push(b'-');
    write_two(out, u32::from(d.day));
}

/// `"YYYY-MM-DD HH:MM:SS.ffffff"`; NULL for a zero date.
fn write_timestamp_or_null(out: &mut Vec<u8>, ts: &Timestamp) {
    if !ts.date.is_valid() {
        out.extend_from_slice(b"null");
        return;
    }
    out.push(b'"');
    write_date(out, ts.date);
    out.push(b' ');
    write_two(out, u32::from(ts.hour));
    out.push(b':');
    write_two(out, u32::from(ts.minute));
    out.push(b':');
    write_two(out, u32::from(ts.second));
    out.push(b'.');
    let micros = ts.micros.min(999_999);
    write_two(out, micros / 10_000);
    write_two(out, micros / 100 % 100);
    write_two(out, micros % 100);
    out.push(b'"');
}

fn write_instant(out: &mut Vec<u8>, micros: i64, zone: Zone) {
    let offset = zone.offset_at(micros.div_euclid(1_000_000));
    let local = Timestamp::from_epoch_micros(micros + i64::from(offset) * 1_000_000);
    write_timestamp_or_null(out, &local);
}

/// Appends `text` as a JSON string literal.
pub(crate) fn write_json_string(out: &mut Vec<u8>, text: &str) {
    out.push(b'"');
    let bytes = text.as_bytes();
    let mut start = 0;
    for (i, &b) in bytes.iter().enumerate() {
        let escape: &[u8] = match b {
            b'"' => b"\\\"",
            b'\\' => b"\\\\",
            b'\n' => b"\\n",
            b'\r' => b"\\r",
            b'\t' => b"\\t",
            0x08 => b"\\b",
            0x0c => b"\\f",
            0..=0x1f => b"",
            _ => continue,
        };
        out.extend_from_slice(&bytes[start..i]);
        if escape.is_empty() {
            const HEX: &[u8; 16] = b"0123456789abcdef";
            out.extend_from_slice(b"\\u00");
            out.push(HEX[(b >> 4) as usize]);
            out.push(HEX[(b & 0xf) as usize]);
        } else {
            out.extend_from_slice(escape);
        }
        start = i + 1;
    }
    out.extend_from_slice(&bytes[start..]);
    out.push(b'"');
}

#[cfg(test)]
mod tests {
    use super::*;
    use cdc_api::{Column, Decimal, RowField, Time};

    fn one(kind: DataTypeKind, value: Value) -> String {
        one_in(kind, value, Zone::Fixed(0))
    }

    fn one_in(kind: DataTypeKind, value: Value, zone: Zone) -> String {
        let schema = Schema::new(vec![Column::new("c", DataType::new(kind))]);
        let mut enc = RowEncoder::new(&schema, zone);
        let mut out = Vec::new();
        enc.encode(&mut out, &[value], false);
        finish(&mut out);
        let text = String::from_utf8(out).unwrap();
        let inner = text
            .strip_prefix("[{\"c\":")
            .and_then(|t| t.strip_suffix(",\"__op\":0}]"))
            .unwrap();
        // The body must be valid JSON.
        serde_json::from_str::<serde_json::Value>(&text).unwrap();
        inner.to_string()
    }

    fn ts(y: u16, mo: u8, d: u8, h: u8, mi: u8, s: u8, us: u32) -> Timestamp {
        Timestamp::new(Date::new(y, mo, d), h, mi, s, us)
    }

    #[test]
    fn scalars() {
        assert_eq!(one(DataTypeKind::Int, Value::Null), "null");
        assert_eq!(one(DataTypeKind::Boolean, Value::Boolean(true)), "true");
        assert_eq!(one(DataTypeKind::Boolean, Value::Boolean(false)), "false");
        assert_eq!(one(DataTypeKind::TinyInt, Value::TinyInt(-128)), "-128");
        assert_eq!(one(DataTypeKind::SmallInt, Value::SmallInt(255)), "255");
        assert_eq!(one(DataTypeKind::Int, Value::Int(i32::MIN)), "-2147483648");
        assert_eq!(
            one(DataTypeKind::BigInt, Value::BigInt(i64::MAX)),
            "9223372036854775807"
        );
        assert_eq!(one(DataTypeKind::Float, Value::Float(1.1)), "1.1");
        assert_eq!(
            one(DataTypeKind::Double, Value::Double(-2.5e-300)),
            "-2.5e-300"
        );
        assert_eq!(one(DataTypeKind::Double, Value::Double(f64::NAN)), "null");
        assert_eq!(
            one(DataTypeKind::String, Value::String(String::new())),
            "\"\""
        );
        assert_eq!(
            one(
                DataTypeKind::String,
                Value::String("a\"b\\c\n\u{1}é😀".into())
            ),
            "\"a\\\"b\\\\c\\n\\u0001é😀\""
        );
    }

    #[test]
    fn decimals_are_exact_strings() {
        let d = |s: &str| Value::Decimal(Decimal::parse(s).unwrap());
        let dec = |p, s| DataTypeKind::Decimal {
            precision: p,
            scale: s,
        };
        assert_eq!(one(dec(12, 2), d("123.45")), "\"123.45\"");
        assert_eq!(one(dec(12, 3), d("1.5")), "\"1.500\"");
        assert_eq!(
            one(dec(38, 0), d("99999999999999999999999999999999999999")),
            "\"99999999999999999999999999999999999999\""
        );
        assert_eq!(one(dec(50, 1), d("34567892.1")), "\"34567892.1\"");
        assert_eq!(
            one(
                dec(65, 30),
                d("-12345678901234567890123456789012345.678901234567890123456789012345")
            ),
            "\"-12345678901234567890123456789012345.678901234567890123456789012345\""
        );
    }

    #[test]
    fn temporal_values() {
        assert_eq!(
            one(DataTypeKind::Date, Value::Date(Date::new(2024, 2, 29))),
            "\"2024-02-29\""
        );
        assert_eq!(
            one(DataTypeKind::Date, Value::Date(Date::new(0, 0, 0))),
            "null"
        );
        assert_eq!(
            one(
                DataTypeKind::Timestamp { precision: 6 },
                Value::Timestamp(ts(2020, 7, 17, 18, 0, 22, 123_456))
            ),
            "\"2020-07-17 18:00:22.123456\""
        );
        assert_eq!(
            one(
                DataTypeKind::Timestamp { precision: 0 },
                Value::Timestamp(ts(1, 1, 1, 0, 0, 0, 0))
            ),
            "\"0001-01-01 00:00:00.000000\""
        );
        let ltz = Value::TimestampLtz(1_595_008_822_123_456);
        assert_eq!(
            one(DataTypeKind::TimestampLtz { precision: 6 }, ltz.clone()),
            "\"2020-07-17 18:00:22.123456\""
        );
        let shanghai = Zone::parse("Asia/Shanghai").unwrap();
        assert_eq!(
            one_in(DataTypeKind::TimestampLtz { precision: 6 }, ltz, shanghai),
            "\"2020-07-18 02:00:22.123456\""
        );
        // Before the epoch.
        assert_eq!(
            one(
                DataTypeKind::TimestampLtz { precision: 3 },
                Value::TimestampLtz(-1)
            ),
            "\"1969-12-31 23:59:59.999999\""
        );
        let tz = Value::TimestampTz {
            timestamp: ts(2020, 1, 1, 8, 0, 0, 0),
            offset_seconds: 8 * 3600,
        };
        assert_eq!(
            one(DataTypeKind::TimestampTz { precision: 0 }, tz),
            "\"2020-01-01 00:00:00.000000\""
        );
        let t = Value::Time(Time::new(21, 49, 13, 123_456));
        assert_eq!(
            one(DataTypeKind::Time { precision: 3 }, t.clone()),
            "\"21:49:13.123\""
        );
        assert_eq!(one(DataTypeKind::Time { precision: 0 }, t), "\"21:49:13\"");
        let neg = Time {
            negative: true,
            hours: 838,
            minutes: 59,
            seconds: 59,
            micros: 0,
        };
        assert_eq!(
            one(DataTypeKind::Time { precision: 1 }, Value::Time(neg)),
            "\"-838:59:59.0\""
        );
    }

    #[test]
    fn bytes_json_and_nested() {
        assert_eq!(
            one(DataTypeKind::Bytes, Value::Bytes(vec![0x10])),
            "\"EA==\""
        );
        assert_eq!(one(DataTypeKind::Bytes, Value::Bytes(vec![])), "\"\"");
        assert_eq!(
            one(
                DataTypeKind::Binary { length: 3 },
                Value::Bytes(b"abc".to_vec())
            ),
            "\"YWJj\""
        );
        assert_eq!(
            one(DataTypeKind::Json, Value::Json("{\"a\": [1, 2]}".into())),
            "\"{\\\"a\\\": [1, 2]}\""
        );
        let arr = DataTypeKind::Array(Box::new(DataType::new(DataTypeKind::String)));
        assert_eq!(
            one(
                arr,
                Value::Array(vec![Value::String("x".into()), Value::Null])
            ),
            "\"[\\\"x\\\",null]\""
        );
        let map = DataTypeKind::Map {
            key: Box::new(DataType::new(DataTypeKind::Int)),
            value: Box::new(DataType::new(DataTypeKind::Decimal {
                precision: 5,
                scale: 2,
            })),
        };
        assert_eq!(
            one(
                map,
                Value::Map(vec![(
                    Value::Int(1),
                    Value::Decimal(Decimal::parse("1.5").unwrap())
                )])
            ),
            "\"{\\\"1\\\":\\\"1.50\\\"}\""
        );
        let row = DataTypeKind::Row(vec![RowField {
            name: "n".into(),
            data_type: DataType::new(DataTypeKind::Int),
        }]);
        assert_eq!(
            one(row, Value::Row(vec![Value::Int(7)])),
            "\"{\\\"n\\\":7}\""
        );
    }

    #[test]
    fn rows_form_one_array_with_op() {
        let schema = Schema::new(vec![
            Column::new("id", DataType::new(DataTypeKind::Int)),
            Column::new("v", DataType::new(DataTypeKind::String)),
        ]);
        let mut enc = RowEncoder::new(&schema, Zone::Fixed(0));
        let mut out = Vec::new();
        finish(&mut out);
        assert_eq!(out, b"[]");
        out.clear();
        enc.encode(
            &mut out,
            &[Value::Int(1), Value::String("a\"b".into())],
            false,
        );
        enc.encode(&mut out, &[Value::Int(2)], true);
        finish(&mut out);
        let text = String::from_utf8(out.clone()).unwrap();
        assert_eq!(
            text,
            "[{\"id\":1,\"v\":\"a\\\"b\",\"__op\":0},{\"id\":2,\"v\":null,\"__op\":1}]"
        );
        let parsed: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(parsed[1]["__op"], 1);
        // The buffer is reused: clearing keeps the capacity.
        let cap = out.capacity();
        out.clear();
        enc.encode(&mut out, &[Value::Int(3), Value::Null], false);
        assert_eq!(out.capacity(), cap);
    }
}
