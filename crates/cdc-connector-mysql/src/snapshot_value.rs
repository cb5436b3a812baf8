//! Values read by the snapshot (MySQL binary protocol) to cdc-api values, exactly as the
//! binlog decoder produces them for the same column, so a row reads the same either way.

use cdc_api::{Date, Decimal, Time, Timestamp, Value};
use mysql_async::Value as My;

use crate::types::{Charset, MySqlType};

/// Converts one column value. The session runs with `time_zone = '+00:00'`, so TIMESTAMP
/// parts are UTC.
pub(crate) fn convert(
    t: &MySqlType,
    charset: &Charset,
    tinyint1_as_boolean: bool,
    value: My,
) -> Result<Value, String> {
    if matches!(value, My::NULL) {
        return Ok(Value::Null);
    }
    Ok(match t {
        MySqlType::TinyInt {
            unsigned: false,
            width: Some(1),
        } if tinyint1_as_boolean => Value::Boolean(int(&value)? != 0),
        MySqlType::Bool => Value::Boolean(int(&value)? != 0),
        MySqlType::TinyInt {
            unsigned: false, ..
        } => Value::TinyInt(int(&value)? as i8),
        MySqlType::TinyInt { unsigned: true, .. } | MySqlType::SmallInt { unsigned: false } => {
            Value::SmallInt(int(&value)? as i16)
        }
        MySqlType::SmallInt { unsigned: true }
        | MySqlType::MediumInt { .. }
        | MySqlType::Int { unsigned: false }
        | MySqlType::Year => Value::Int(int(&value)? as i32),
        MySqlType::Int { unsigned: true } | MySqlType::BigInt { unsigned: false } => {
            Value::BigInt(int(&value)? as i64)
        }
        MySqlType::BigInt { unsigned: true } => {
            Value::Decimal(Decimal::from_unscaled(int(&value)?, 0))
        }
        MySqlType::Decimal { precision, .. } => {
            let text = bytes(&value)?;
            let text = std::str::from_utf8(&text).map_err(|_| "decimal is not text")?;
            if *precision > 38 {
                Value::String(text.to_string())
            } else {
                Value::Decimal(Decimal::parse(text).map_err(|e| e.to_string())?)
            }
        }
        MySqlType::Float { explicit } => {
            let f = match value {
                My::Float(f) => f,
                My::Double(d) => d as f32,
                other => return Err(format!("expected a float, got {other:?}")),
            };
            if *explicit {
                Value::Double(f64::from(f))
            } else {
                Value::Float(f)
            }
        }
        MySqlType::Double => match value {
            My::Double(d) => Value::Double(d),
            My::Float(f) => Value::Double(f64::from(f)),
            other => return Err(format!("expected a double, got {other:?}")),
        },
        MySqlType::Bit(n) => {
            let b = bytes(&value)?;
            if *n == 1 {
                Value::Boolean(b.iter().any(|x| *x != 0))
            } else {
                Value::Bytes(pad_left(b, n.div_ceil(8) as usize))
            }
        }
        MySqlType::Char(_)
        | MySqlType::VarChar(_)
        | MySqlType::Text
        | MySqlType::Enum(_)
        | MySqlType::Set(_)
        | MySqlType::Other(_) => {
            // The session's character set is utf8mb4: the server already converted.
            let _ = charset;
            Value::String(String::from_utf8(bytes(&value)?).map_err(|_| "text is not UTF-8")?)
        }
        MySqlType::Json => {
            Value::Json(String::from_utf8(bytes(&value)?).map_err(|_| "JSON is not UTF-8")?)
        }
        MySqlType::Binary(_) | MySqlType::VarBinary(_) | MySqlType::Blob => {
            Value::Bytes(bytes(&value)?)
        }
        MySqlType::Geometry => Value::String(crate::geometry::to_geojson(&bytes(&value)?)?),
        MySqlType::Date => match value {
            My::Date(y, m, d, ..) => Value::Date(Date::new(y, m, d)),
            other => return Err(format!("expected a date, got {other:?}")),
        },
        MySqlType::DateTime(_) => match value {
            My::Date(y, mo, d, h, mi, s, us) => {
                Value::Timestamp(Timestamp::new(Date::new(y, mo, d), h, mi, s, us))
            }
            other => return Err(format!("expected a datetime, got {other:?}")),
        },
        MySqlType::Timestamp(_) => match value {
            My::Date(y, mo, d, h, mi, s, us) => {
                let date = Date::new(y, mo, d);
                if date.is_valid() {
                    Value::TimestampLtz(Timestamp::new(date, h, mi, s, us).to_epoch_micros())
                } else {
                    // The zero TIMESTAMP is stored as 0 seconds since the epoch.
                    Value::TimestampLtz(0)
                }
            }
            other => return Err(format!("expected a timestamp, got {other:?}")),
        },
        MySqlType::Time(_) => match value {
            My::Time(negative, days, h, m, s, us) => Value::Time(Time {
                negative,
                hours: (days * 24 + u32::from(h)) as u16,
                minutes: m,
                seconds: s,
                micros: us,
            }),
            other => return Err(format!("expected a time, got {other:?}")),
        },
    })
}

fn int(v: &My) -> Result<i128, String> {
    match v {
        My::Int(i) => Ok(i128::from(*i)),
        My::UInt(u) => Ok(i128::from(*u)),
        My::Bytes(b) => std::str::from_utf8(b)
            .ok()
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| "expected an integer".to_string()),
        other => Err(format!("expected an integer, got {other:?}")),
    }
}

fn bytes(v: &My) -> Result<Vec<u8>, String> {
    match v {
        My::Bytes(b) => Ok(b.clone()),
        other => Err(format!("expected bytes, got {other:?}")),
    }
}

fn pad_left(mut b: Vec<u8>, len: usize) -> Vec<u8> {
    if b.len() < len {
        let mut out = vec![0; len - b.len()];
        out.append(&mut b);
        return out;
    }
    b
}
