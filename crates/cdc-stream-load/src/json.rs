//! One value as a JSON value in a Stream Load body, rendered the way Flink CDC's Doris and
//! StarRocks sinks leave it in the target (docs/connectors/doris.md, "How values are written"): decimals exact (as JSON
//! strings, so the target never reads them as doubles), DATETIME with six fraction digits,
//! TIMESTAMP_LTZ in the pipeline's `local-time-zone`, TIME as `HH:MM:SS` plus exactly its
//! precision's digits, bytes as base64, nested values as JSON text, NULL apart from the
//! empty string, MySQL zero dates as NULL. Written straight into the caller's buffer.

use std::fmt;

use base64::Engine as _;
use cdc_api::{DataType, DataTypeKind, Date, Timestamp, Value};

use crate::Zone;

/// DECIMAL columns up to this precision are DECIMAL in both targets (wider ones are text).
const MAX_DECIMAL_PRECISION: u8 = 38;

struct ByteWriter<'a>(&'a mut Vec<u8>);

impl fmt::Write for ByteWriter<'_> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        self.0.extend_from_slice(s.as_bytes());
        Ok(())
    }
}

/// Appends `value` (of a column typed `data_type`) as a JSON value; `scratch` is reused for
/// nested values; TIMESTAMP_LTZ is rendered in `zone`.
pub fn write_value(
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
                // MySQL zero dates have no Doris / StarRocks equivalent; Debezium and Flink CDC give NULL.
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
            // The column is text: the nested JSON goes in as text.
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
        // JSON has no NaN or infinity, and the target would turn the text into NULL anyway.
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
pub fn write_json_string(out: &mut Vec<u8>, text: &str) {
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
