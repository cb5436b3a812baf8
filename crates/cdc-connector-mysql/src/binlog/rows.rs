//! Decoding row images of WRITE/UPDATE/DELETE_ROWS events straight from the event bytes
//! into cdc-api values, using the TABLE_MAP layout for sizes and the tracked schema for
//! what the binlog leaves out (signedness, ENUM/SET labels, character sets).

use cdc_api::{Date, Decimal, Time, Timestamp, Value};
use mysql_common::binlog::events::TableMapEvent;

use super::decimal;
use crate::types::{Charset, MySqlType};

/// Binlog column type codes (include/field_types.h).
mod code {
    pub(super) const DECIMAL: u8 = 0;
    pub(super) const TINY: u8 = 1;
    pub(super) const SHORT: u8 = 2;
    pub(super) const LONG: u8 = 3;
    pub(super) const FLOAT: u8 = 4;
    pub(super) const DOUBLE: u8 = 5;
    pub(super) const NULL: u8 = 6;
    pub(super) const TIMESTAMP: u8 = 7;
    pub(super) const LONGLONG: u8 = 8;
    pub(super) const INT24: u8 = 9;
    pub(super) const DATE: u8 = 10;
    pub(super) const TIME: u8 = 11;
    pub(super) const DATETIME: u8 = 12;
    pub(super) const YEAR: u8 = 13;
    pub(super) const NEWDATE: u8 = 14;
    pub(super) const VARCHAR: u8 = 15;
    pub(super) const BIT: u8 = 16;
    pub(super) const TIMESTAMP2: u8 = 17;
    pub(super) const DATETIME2: u8 = 18;
    pub(super) const TIME2: u8 = 19;
    pub(super) const JSON: u8 = 245;
    pub(super) const NEWDECIMAL: u8 = 246;
    pub(super) const ENUM: u8 = 247;
    pub(super) const SET: u8 = 248;
    pub(super) const TINY_BLOB: u8 = 249;
    pub(super) const MEDIUM_BLOB: u8 = 250;
    pub(super) const LONG_BLOB: u8 = 251;
    pub(super) const BLOB: u8 = 252;
    pub(super) const VAR_STRING: u8 = 253;
    pub(super) const STRING: u8 = 254;
    pub(super) const GEOMETRY: u8 = 255;
}

/// How one column is laid out in row images.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ColumnLayout {
    /// The binlog type code (for STRING: the real type from the metadata).
    pub(crate) code: u8,
    /// Type metadata: max length, length bytes, precision/scale, fsp, ...
    pub(crate) meta: u16,
}

impl ColumnLayout {
    /// MySQL's binary JSON (MariaDB logs its JSON as text in a BLOB).
    pub(crate) fn is_json(self) -> bool {
        self.code == code::JSON
    }
}

/// The layout of every column of a TABLE_MAP event.
pub(crate) fn layout(tme: &TableMapEvent<'_>) -> Result<Vec<ColumnLayout>, String> {
    let n = tme.columns_count() as usize;
    let mut out = Vec::with_capacity(n);
    for i in 0..n {
        let code = tme
            .get_raw_column_type(i)
            .map_err(|e| format!("column {i}: {e}"))?
            .ok_or_else(|| format!("column {i} missing from TABLE_MAP"))? as u8;
        let m = tme.get_column_metadata(i).unwrap_or(&[]);
        let b = |k: usize| u16::from(m.get(k).copied().unwrap_or(0));
        let (code, meta) = match code {
            code::STRING => {
                // MySQL packs the real type and a long length into two bytes.
                let (b0, b1) = (b(0), b(1));
                if b0 & 0x30 != 0x30 && b0 != 0 {
                    ((b0 | 0x30) as u8, (((b0 & 0x30) ^ 0x30) << 4) | b1)
                } else if b0 == u16::from(code::ENUM) || b0 == u16::from(code::SET) {
                    (b0 as u8, b1)
                } else {
                    (code::STRING, b1)
                }
            }
            code::VARCHAR | code::VAR_STRING => (code, b(0) | (b(1) << 8)),
            code::NEWDECIMAL => (code, (b(0) << 8) | b(1)),
            code::BIT => (code, b(0) | (b(1) << 8)),
            _ => (code, b(0)),
        };
        out.push(ColumnLayout { code, meta });
    }
    Ok(out)
}

/// What the decoder needs to know of each schema column.
pub(crate) struct ColumnInfo {
    pub(crate) mysql_type: MySqlType,
    pub(crate) charset: Charset,
}

/// A cursor over row-image bytes; every read checks the bounds (a truncated or corrupt
/// event is an error, never a panic).
pub(crate) struct Cursor<'a> {
    pub(crate) bytes: &'a [u8],
    pub(crate) pos: usize,
}

impl<'a> Cursor<'a> {
    pub(crate) fn take(&mut self, n: usize) -> Result<&'a [u8], String> {
        let end = self.pos.checked_add(n).ok_or("length overflow")?;
        let slice = self
            .bytes
            .get(self.pos..end)
            .ok_or_else(|| format!("row data truncated at byte {} (wanted {n} more)", self.pos))?;
        self.pos = end;
        Ok(slice)
    }

    fn le(&mut self, n: usize) -> Result<u64, String> {
        Ok(self
            .take(n)?
            .iter()
            .rev()
            .fold(0u64, |a, b| (a << 8) | u64::from(*b)))
    }

    fn be(&mut self, n: usize) -> Result<u64, String> {
        Ok(self
            .take(n)?
            .iter()
            .fold(0u64, |a, b| (a << 8) | u64::from(*b)))
    }

    pub(crate) fn is_done(&self) -> bool {
        self.pos >= self.bytes.len()
    }
}

fn bit_set(bitmap: &[u8], i: usize) -> bool {
    bitmap.get(i / 8).is_some_and(|b| b & (1 << (i % 8)) != 0)
}

/// Decodes one row image: `present` is the event's column bitmap. Columns not in the image
/// come out as NULL.
pub(crate) fn decode_row(
    cursor: &mut Cursor<'_>,
    layouts: &[ColumnLayout],
    columns: &[ColumnInfo],
    present: &[bool],
    tinyint1_as_boolean: bool,
) -> Result<Vec<Value>, String> {
    if layouts.len() != columns.len() {
        return Err(format!(
            "the binlog has {} columns, the tracked schema {}",
            layouts.len(),
            columns.len()
        ));
    }
    let is_present = |i: usize| present.get(i).copied().unwrap_or(false);
    let present_count = (0..layouts.len()).filter(|&i| is_present(i)).count();
    let nulls = cursor.take(present_count.div_ceil(8))?;
    let mut row = Vec::with_capacity(layouts.len());
    let mut k = 0;
    for (i, (layout, column)) in layouts.iter().zip(columns).enumerate() {
        if !is_present(i) {
            row.push(Value::Null);
            continue;
        }
        let is_null = bit_set(nulls, k);
        k += 1;
        if is_null {
            row.push(Value::Null);
            continue;
        }
        row.push(decode_value(cursor, *layout, column, tinyint1_as_boolean)?);
    }
    Ok(row)
}

fn sign_extend(v: u64, bytes: usize) -> i64 {
    let shift = 64 - bytes * 8;
    ((v << shift) as i64) >> shift
}

/// Fraction bytes of TIME2/DATETIME2/TIMESTAMP2 for `fsp` digits.
fn frac_len(fsp: u16) -> usize {
    usize::from(fsp).div_ceil(2)
}

fn read_frac(cursor: &mut Cursor<'_>, fsp: u16) -> Result<u32, String> {
    Ok(match frac_len(fsp) {
        0 => 0,
        1 => cursor.be(1)? as u32 * 10_000,
        2 => cursor.be(2)? as u32 * 100,
        _ => cursor.be(3)? as u32,
    })
}

fn decode_value(
    cursor: &mut Cursor<'_>,
    layout: ColumnLayout,
    column: &ColumnInfo,
    tinyint1_as_boolean: bool,
) -> Result<Value, String> {
    let t = &column.mysql_type;
    let int_value = |raw: u64, bytes: usize| -> i128 {
        let unsigned = matches!(
            t,
            MySqlType::TinyInt { unsigned: true, .. }
                | MySqlType::SmallInt { unsigned: true }
                | MySqlType::MediumInt { unsigned: true }
                | MySqlType::Int { unsigned: true }
                | MySqlType::BigInt { unsigned: true }
        );
        if unsigned {
            i128::from(raw)
        } else {
            i128::from(sign_extend(raw, bytes))
        }
    };
    Ok(match layout.code {
        code::TINY => int_to_value(t, int_value(cursor.le(1)?, 1), tinyint1_as_boolean),
        code::SHORT => int_to_value(t, int_value(cursor.le(2)?, 2), tinyint1_as_boolean),
        code::INT24 => int_to_value(t, int_value(cursor.le(3)?, 3), tinyint1_as_boolean),
        code::LONG => int_to_value(t, int_value(cursor.le(4)?, 4), tinyint1_as_boolean),
        code::LONGLONG => int_to_value(t, int_value(cursor.le(8)?, 8), tinyint1_as_boolean),
        code::YEAR => {
            let y = cursor.le(1)?;
            Value::Int(if y == 0 { 0 } else { 1900 + y as i32 })
        }
        code::FLOAT => {
            let f = f32::from_bits(cursor.le(4)? as u32);
            if matches!(t, MySqlType::Float { explicit: true } | MySqlType::Double) {
                Value::Double(f64::from(f))
            } else {
                Value::Float(f)
            }
        }
        code::DOUBLE => Value::Double(f64::from_bits(cursor.le(8)?)),
        code::NEWDECIMAL => {
            let (p, s) = ((layout.meta >> 8) as u8, (layout.meta & 0xFF) as u8);
            let packed = cursor.take(decimal::packed_len(p, s))?;
            if p > decimal::MAX_UNSCALED_PRECISION {
                Value::String(decimal::decode(packed, p, s)?)
            } else {
                Value::Decimal(Decimal::from_unscaled(
                    decimal::decode_unscaled(packed, p, s)?,
                    s,
                ))
            }
        }
        code::DATE | code::NEWDATE => {
            let v = cursor.le(3)?;
            Value::Date(Date::new(
                (v >> 9) as u16,
                ((v >> 5) & 15) as u8,
                (v & 31) as u8,
            ))
        }
        code::TIME => {
            let v = sign_extend(cursor.le(3)?, 3);
            let a = v.unsigned_abs();
            Value::Time(Time {
                negative: v < 0,
                hours: (a / 10_000) as u16,
                minutes: ((a / 100) % 100) as u8,
                seconds: (a % 100) as u8,
                micros: 0,
            })
        }
        code::TIME2 => Value::Time(read_time2(cursor, layout.meta)?),
        code::DATETIME => {
            let v = cursor.le(8)?;
            let (date, time) = (v / 1_000_000, v % 1_000_000);
            Value::Timestamp(Timestamp::new(
                Date::new(
                    (date / 10_000) as u16,
                    ((date / 100) % 100) as u8,
                    (date % 100) as u8,
                ),
                (time / 10_000) as u8,
                ((time / 100) % 100) as u8,
                (time % 100) as u8,
                0,
            ))
        }
        code::DATETIME2 => {
            let packed = cursor.be(5)?.wrapping_sub(0x80_0000_0000);
            let micros = read_frac(cursor, layout.meta)?;
            let ymd = packed >> 17;
            let ym = ymd >> 5;
            let hms = packed & 0x1FFFF;
            Value::Timestamp(Timestamp::new(
                Date::new((ym / 13) as u16, (ym % 13) as u8, (ymd & 31) as u8),
                (hms >> 12) as u8,
                ((hms >> 6) & 63) as u8,
                (hms & 63) as u8,
                micros,
            ))
        }
        code::TIMESTAMP => Value::TimestampLtz(cursor.le(4)? as i64 * 1_000_000),
        code::TIMESTAMP2 => {
            let secs = cursor.be(4)? as i64;
            let micros = read_frac(cursor, layout.meta)?;
            Value::TimestampLtz(secs * 1_000_000 + i64::from(micros))
        }
        code::VARCHAR | code::VAR_STRING | code::STRING => {
            let len = if layout.meta < 256 {
                cursor.le(1)?
            } else {
                cursor.le(2)?
            } as usize;
            let bytes = cursor.take(len)?;
            text_or_bytes(t, &column.charset, bytes)?
        }
        code::ENUM => {
            let index = cursor.le(usize::from(layout.meta).clamp(1, 2))? as usize;
            let MySqlType::Enum(labels) = t else {
                return Err("ENUM value for a column the schema does not know as ENUM".into());
            };
            Value::String(if index == 0 {
                String::new()
            } else {
                labels.get(index - 1).cloned().ok_or_else(|| {
                    format!(
                        "ENUM index {index} beyond the {} known labels",
                        labels.len()
                    )
                })?
            })
        }
        code::SET => {
            let mask = cursor.le(usize::from(layout.meta).clamp(1, 8))?;
            let MySqlType::Set(labels) = t else {
                return Err("SET value for a column the schema does not know as SET".into());
            };
            let chosen: Vec<&str> = labels
                .iter()
                .enumerate()
                .filter(|(i, _)| mask & (1 << i) != 0)
                .map(|(_, l)| l.as_str())
                .collect();
            Value::String(chosen.join(","))
        }
        code::BIT => {
            let bits = layout.meta & 0xFF;
            let bytes = usize::from(layout.meta >> 8) + usize::from(bits > 0);
            let raw = cursor.take(bytes)?;
            if matches!(t, MySqlType::Bit(1)) {
                Value::Boolean(raw.iter().any(|b| *b != 0))
            } else {
                Value::Bytes(raw.to_vec())
            }
        }
        code::BLOB
        | code::TINY_BLOB
        | code::MEDIUM_BLOB
        | code::LONG_BLOB
        | code::GEOMETRY
        | code::JSON => {
            let len = cursor.le(usize::from(layout.meta).clamp(1, 4))? as usize;
            let bytes = cursor.take(len)?;
            match (layout.code, t) {
                (code::GEOMETRY, _) | (_, MySqlType::Geometry) => {
                    Value::String(crate::geometry::to_geojson(bytes)?)
                }
                (code::JSON, _) => Value::Json(crate::binlog::rows::mysql_json(bytes)?),
                _ => text_or_bytes(t, &column.charset, bytes)?,
            }
        }
        code::NULL => Value::Null,
        code::DECIMAL => return Err("pre-5.0 DECIMAL columns are not supported".into()),
        other => return Err(format!("unsupported binlog column type {other}")),
    })
}

fn read_time2(cursor: &mut Cursor<'_>, fsp: u16) -> Result<Time, String> {
    const INT_OFS: i64 = 0x80_0000;
    let packed: i64 = match frac_len(fsp) {
        0 => (cursor.be(3)? as i64 - INT_OFS) << 24,
        1 => {
            let mut int = cursor.be(3)? as i64 - INT_OFS;
            let mut frac = cursor.be(1)? as i64;
            if int < 0 && frac != 0 {
                int += 1;
                frac -= 0x100;
            }
            (int << 24) + frac * 10_000
        }
        2 => {
            let mut int = cursor.be(3)? as i64 - INT_OFS;
            let mut frac = cursor.be(2)? as i64;
            if int < 0 && frac != 0 {
                int += 1;
                frac -= 0x10000;
            }
            (int << 24) + frac * 100
        }
        _ => cursor.be(6)? as i64 - 0x8000_0000_0000,
    };
    let negative = packed < 0;
    let a = packed.unsigned_abs();
    let hms = a >> 24;
    Ok(Time {
        negative,
        hours: ((hms >> 12) % 1024) as u16,
        minutes: ((hms >> 6) % 64) as u8,
        seconds: (hms % 64) as u8,
        micros: (a % (1 << 24)) as u32,
    })
}

fn int_to_value(t: &MySqlType, v: i128, tinyint1_as_boolean: bool) -> Value {
    match t {
        MySqlType::TinyInt {
            unsigned: false,
            width: Some(1),
        } if tinyint1_as_boolean => Value::Boolean(v != 0),
        MySqlType::Bool => Value::Boolean(v != 0),
        MySqlType::TinyInt {
            unsigned: false, ..
        } => Value::TinyInt(v as i8),
        MySqlType::TinyInt { unsigned: true, .. } | MySqlType::SmallInt { unsigned: false } => {
            Value::SmallInt(v as i16)
        }
        MySqlType::SmallInt { unsigned: true }
        | MySqlType::MediumInt { .. }
        | MySqlType::Int { unsigned: false }
        | MySqlType::Year => Value::Int(v as i32),
        MySqlType::BigInt { unsigned: true } => Value::Decimal(Decimal::from_unscaled(v, 0)),
        _ => Value::BigInt(v as i64),
    }
}

fn text_or_bytes(t: &MySqlType, charset: &Charset, bytes: &[u8]) -> Result<Value, String> {
    Ok(match t {
        MySqlType::Binary(n) => {
            // The binlog drops BINARY's trailing zero bytes; SELECT returns them. BINARY
            // holds at most 255 bytes: a larger length (a corrupt definition from DDL)
            // must not become a huge allocation per row.
            let mut v = bytes.to_vec();
            v.resize(v.len().max((*n).min(255) as usize), 0);
            Value::Bytes(v)
        }
        MySqlType::VarBinary(_) | MySqlType::Blob | MySqlType::Bit(_) => {
            Value::Bytes(bytes.to_vec())
        }
        MySqlType::Json => Value::Json(charset.decode(bytes)?),
        _ => Value::String(charset.decode(bytes)?),
    })
}

/// MySQL 8 binary JSON to JSON text as the server prints it (`{"a": 1, "b": [1, 2]}`,
/// keys in the stored order), so binlog rows read the same as snapshot rows.
pub(crate) fn mysql_json(bytes: &[u8]) -> Result<String, String> {
    if bytes.is_empty() {
        return Ok("null".into());
    }
    let value: mysql_common::binlog::jsonb::Value<'_> =
        mysql_common::proto::MyDeserialize::deserialize((), &mut mysql_common::io::ParseBuf(bytes))
            .map_err(|e| format!("bad binary JSON: {e}"))?;
    let json = json_value(value, 0).map_err(|e| format!("bad binary JSON: {e}"))?;
    let mut out = Vec::new();
    serde::Serialize::serialize(
        &json,
        &mut serde_json::Serializer::with_formatter(&mut out, ServerJsonFormat),
    )
    .map_err(|e| format!("bad binary JSON: {e}"))?;
    String::from_utf8(out).map_err(|e| format!("bad binary JSON: {e}"))
}

/// MySQL's own JSON printing (`Json_wrapper::to_string`): `", "` between members and
/// elements, `": "` after a key.
struct ServerJsonFormat;

impl serde_json::ser::Formatter for ServerJsonFormat {
    fn begin_array_value<W: ?Sized + std::io::Write>(
        &mut self,
        writer: &mut W,
        first: bool,
    ) -> std::io::Result<()> {
        if first {
            Ok(())
        } else {
            writer.write_all(b", ")
        }
    }

    fn begin_object_key<W: ?Sized + std::io::Write>(
        &mut self,
        writer: &mut W,
        first: bool,
    ) -> std::io::Result<()> {
        if first {
            Ok(())
        } else {
            writer.write_all(b", ")
        }
    }

    fn begin_object_value<W: ?Sized + std::io::Write>(
        &mut self,
        writer: &mut W,
    ) -> std::io::Result<()> {
        writer.write_all(b": ")
    }
}

/// Flink CDC's legacy binlog JSON form (`use.legacy.json.format: true`): the server's text
/// without the space after each `,` and `:` between tokens (spaces inside strings stay).
pub(crate) fn compact_json(server_form: &str) -> String {
    let mut out = String::with_capacity(server_form.len());
    let mut in_string = false;
    let mut escaped = false;
    let mut previous = '\0';
    for c in server_form.chars() {
        if in_string {
            out.push(c);
            match c {
                _ if escaped => escaped = false,
                '\\' => escaped = true,
                '"' => in_string = false,
                _ => {}
            }
        } else if c == ' ' && matches!(previous, ',' | ':') {
            continue;
        } else {
            if c == '"' {
                in_string = true;
            }
            out.push(c);
        }
        previous = c;
    }
    out
}

/// MySQL nests JSON at most 100 levels deep.
const MAX_JSON_DEPTH: usize = 100;

/// One binary JSON value as JSON, containers walked here rather than by the driver's
/// `parse`: that one recurses without a depth limit (a corrupt value nested deeper than a
/// thread's stack would overflow it) and trusts the precision and scale of a DECIMAL
/// (a scale above the precision makes it allocate an absurd buffer and abort). Scalars
/// are converted by the driver, so the text stays what the server prints.
fn json_value(
    value: mysql_common::binlog::jsonb::Value<'_>,
    depth: usize,
) -> Result<serde_json::Value, String> {
    use mysql_common::binlog::jsonb::Value as Jsonb;
    use mysql_common::constants::ColumnType;
    if depth > MAX_JSON_DEPTH {
        return Err(format!("nested deeper than {MAX_JSON_DEPTH} levels"));
    }
    let array = |items: &mut dyn Iterator<Item = std::io::Result<Jsonb<'_>>>| {
        items
            .map(|item| json_value(item.map_err(|e| e.to_string())?, depth + 1))
            .collect::<Result<Vec<_>, _>>()
            .map(serde_json::Value::Array)
    };
    type Entry<'a> = std::io::Result<(mysql_common::binlog::jsonb::ObjectKey<'a>, Jsonb<'a>)>;
    let object = |entries: &mut dyn Iterator<Item = Entry<'_>>| {
        // In the stored order (by key length, then bytes), which is the order the server
        // prints them in.
        let mut members = serde_json::Map::new();
        for entry in entries {
            let (key, value) = entry.map_err(|e| e.to_string())?;
            members.insert(key.value().into_owned(), json_value(value, depth + 1)?);
        }
        Ok::<_, String>(serde_json::Value::Object(members))
    };
    match value {
        Jsonb::SmallArray(a) => array(&mut a.iter()),
        Jsonb::LargeArray(a) => array(&mut a.iter()),
        Jsonb::SmallObject(o) => object(&mut o.iter()),
        Jsonb::LargeObject(o) => object(&mut o.iter()),
        Jsonb::Opaque(o)
            if o.value_type() == ColumnType::MYSQL_TYPE_NEWDECIMAL
                && !matches!(o.data_raw(), [p, s, ..] if decimal::is_valid(*p, *s)) =>
        {
            Err("a DECIMAL in JSON with an impossible precision or scale".into())
        }
        scalar => Ok(scalar.parse().map_err(|e| e.to_string())?.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn legacy_json_drops_only_the_spaces_between_tokens() {
        assert_eq!(
            compact_json(r#"{"a": 1, "b c": "x, y: z", "d": [1, {"e": "\\", "f": null}]}"#),
            r#"{"a":1,"b c":"x, y: z","d":[1,{"e":"\\","f":null}]}"#
        );
        assert_eq!(compact_json(r#""a\", b""#), r#""a\", b""#);
    }

    #[test]
    fn time2_handles_negative_fractions() {
        // -00:00:01.5 with fsp 1: MySQL stores the floor (-2 s) and frac 0x100-50.
        let int = (0x80_0000i64 - 2) as u32;
        let bytes = [
            (int >> 16) as u8,
            (int >> 8) as u8,
            int as u8,
            (0x100 - 50) as u8,
        ];
        let mut c = Cursor {
            bytes: &bytes,
            pos: 0,
        };
        let t = read_time2(&mut c, 1).unwrap();
        assert!(t.negative);
        assert_eq!(
            (t.hours, t.minutes, t.seconds, t.micros),
            (0, 0, 1, 500_000)
        );
    }

    #[test]
    fn binary_padding_is_bounded_by_the_largest_binary() {
        let v = text_or_bytes(&MySqlType::Binary(4_000_000_000), &Charset::Binary, b"ab");
        let Ok(Value::Bytes(v)) = v else {
            panic!("{v:?}")
        };
        assert_eq!((v.len(), &v[..3]), (255, &b"ab\0"[..]));
        let v = text_or_bytes(&MySqlType::Binary(4), &Charset::Binary, b"ab");
        assert_eq!(v, Ok(Value::Bytes(b"ab\0\0".to_vec())));
    }

    /// Binary JSON: `[<value>]` nested `depth` times (small arrays of one element).
    fn nested_json(depth: usize, innermost: &[u8]) -> Vec<u8> {
        let mut v = innermost.to_vec();
        for _ in 0..depth {
            // type small array, count 1, size, one value entry (type, offset) then the value
            let size = (4 + 3 + v.len() - 1) as u16;
            let mut outer = vec![0x02, 1, 0];
            outer.extend(size.to_le_bytes());
            outer.push(v[0]);
            outer.extend(7u16.to_le_bytes());
            outer.extend_from_slice(&v[1..]);
            v = outer;
        }
        v
    }

    /// Fuzzing found it: an opaque DECIMAL in binary JSON whose scale is above its
    /// precision made the driver allocate exabytes and abort the process.
    #[test]
    fn json_decimals_with_impossible_scales_are_errors() {
        // opaque (0x0f), field type NEWDECIMAL, length 4: precision 2, scale 40, data
        let bad = [0x0f, 246, 4, 2, 40, 0x80, 0x01];
        let e = mysql_json(&bad).unwrap_err();
        assert!(e.contains("impossible precision or scale"), "{e}");
        assert!(mysql_json(&nested_json(3, &bad)).is_err());
        // DECIMAL(4,2) 12.34 still decodes (as text, the way the driver renders it),
        // inside containers too.
        let good = [0x0f, 246, 4, 4, 2, 0x8c, 34]; // 12 with the sign bit, then 34
        assert_eq!(mysql_json(&good).unwrap(), r#""12.34""#);
        assert_eq!(
            mysql_json(&nested_json(2, &good)).unwrap(),
            r#"[["12.34"]]"#
        );
    }

    #[test]
    fn json_nested_beyond_mysqls_limit_is_an_error_not_a_stack_overflow() {
        let int = [0x05, 7, 0];
        assert_eq!(mysql_json(&nested_json(2, &int)).unwrap(), "[[7]]");
        assert!(mysql_json(&nested_json(MAX_JSON_DEPTH, &int)).is_ok());
        let e = mysql_json(&nested_json(MAX_JSON_DEPTH + 1, &int)).unwrap_err();
        assert!(e.contains("nested deeper"), "{e}");
    }

    /// CHAR's length prefix is one byte up to 255 bytes of column (n × the set's longest
    /// character, which the TABLE_MAP gives), two beyond: gbk CHAR(127) is 254 bytes,
    /// CHAR(200) 400; utf32 CHAR(70) 280.
    #[test]
    fn char_length_prefixes_follow_the_byte_length() {
        let text = |charset: &str, meta: u16, bytes: &[u8]| {
            let column = ColumnInfo {
                mysql_type: MySqlType::Char(1),
                charset: Charset::from_name(charset),
            };
            let layout = ColumnLayout {
                code: code::STRING,
                meta,
            };
            let mut c = Cursor { bytes, pos: 0 };
            let v = decode_value(&mut c, layout, &column, false);
            (v, c.pos)
        };
        let gbk = [0xC4, 0xE3, 0xBA, 0xC3];
        let one: Vec<u8> = [&[4u8][..], &gbk].concat();
        let two: Vec<u8> = [&[4u8, 0][..], &gbk].concat();
        let nihao = Ok(Value::String("你好".into()));
        assert_eq!(text("gbk", 254, &one), (nihao.clone(), 5));
        assert_eq!(text("gbk", 255, &one), (nihao.clone(), 5));
        assert_eq!(text("gbk", 256, &two), (nihao.clone(), 6));
        assert_eq!(text("gbk", 400, &two), (nihao, 6));
        let eight = [8u8, 0, 0, 0, 0, 0x68, 0, 1, 0xF3, 0x89];
        assert_eq!(
            text("utf32", 280, &eight),
            (Ok(Value::String("h🎉".into())), 10)
        );
    }

    #[test]
    fn truncated_rows_are_errors() {
        let mut c = Cursor {
            bytes: &[1, 2],
            pos: 0,
        };
        assert!(c.take(3).is_err());
        assert_eq!(c.take(2).unwrap(), &[1, 2]);
    }
}
