//! CAST, the text form of values, and comparison across types.
//!
//! A CAST that cannot convert its value (`CAST('abc' AS INT)`, a number too large for the
//! target) is an error that stops the pipeline, naming table, rule and column: writing NULL
//! instead would lose data silently.

use std::cmp::Ordering;

use cdc_api::{DataType, DataTypeKind as K, Decimal, Value};

use super::numeric::{Num, num, to_type};
use super::temporal::{self, Zone, midnight, parse_time, parse_timestamp, time_micros, truncate};
use super::types::is_numeric;

/// The text of a value as CAST(... AS STRING) gives it: SQL forms for temporal values
/// (LTZ in the session zone), `true`/`false`, Java's `1.0` for whole doubles.
pub(crate) fn to_text(v: &Value, zone: Zone) -> String {
    match v {
        Value::Double(f) if f.is_finite() && f.fract() == 0.0 && f.abs() < 1e15 => {
            format!("{f:.1}")
        }
        Value::Float(f) if f.is_finite() && f.fract() == 0.0 && f.abs() < 1e7 => format!("{f:.1}"),
        Value::TimestampLtz(micros) => zone.to_local(*micros).to_string(),
        other => other.to_string(),
    }
}

fn fail(v: &Value, to: &K) -> String {
    format!("cannot cast '{v}' to {to}")
}

/// Converts a value to `to` (NULL stays NULL).
pub(crate) fn cast(v: &Value, to: &DataType, zone: Zone) -> Result<Value, String> {
    if v.is_null() {
        return Ok(Value::Null);
    }
    let kind = &to.kind;
    Ok(match kind {
        K::String | K::VarChar { .. } | K::Char { .. } => match v {
            Value::String(_) => v.clone(),
            other => Value::String(to_text(other, zone)),
        },
        K::Boolean => match v {
            Value::Boolean(_) => v.clone(),
            Value::String(s) => match s.trim().to_ascii_lowercase().as_str() {
                "true" | "1" | "t" | "yes" | "y" => Value::Boolean(true),
                "false" | "0" | "f" | "no" | "n" => Value::Boolean(false),
                _ => return Err(fail(v, kind)),
            },
            other => match num(other) {
                Ok(Some(n)) => Value::Boolean(n.as_f64() != 0.0),
                _ => return Err(fail(v, kind)),
            },
        },
        k if is_numeric(k) => {
            let n = match v {
                Value::String(s) => parse_number(s.trim(), k).ok_or_else(|| fail(v, kind))?,
                other => num(other).ok().flatten().ok_or_else(|| fail(v, kind))?,
            };
            to_type(n, k).map_err(|m| format!("{} ({m})", fail(v, kind)))?
        }
        K::Timestamp { precision } => Value::Timestamp(truncate(
            local_timestamp(v, zone).ok_or_else(|| fail(v, kind))?,
            *precision,
        )),
        K::TimestampLtz { precision } => {
            let micros = match v {
                Value::TimestampLtz(m) => *m,
                other => {
                    zone.to_instant(&local_timestamp(other, zone).ok_or_else(|| fail(v, kind))?)
                }
            };
            let unit = 10i64.pow(6 - u32::from((*precision).min(6)));
            Value::TimestampLtz(micros.div_euclid(unit) * unit)
        }
        K::Date => match v {
            Value::Date(_) => v.clone(),
            other => Value::Date(
                local_timestamp(other, zone)
                    .ok_or_else(|| fail(v, kind))?
                    .date,
            ),
        },
        K::Time { .. } => match v {
            Value::Time(_) => v.clone(),
            Value::String(s) => Value::Time(
                parse_time(s.trim())
                    .or_else(|| parse_timestamp(s).map(|t| temporal::time_of(&t)))
                    .ok_or_else(|| fail(v, kind))?,
            ),
            other => Value::Time(temporal::time_of(
                &local_timestamp(other, zone).ok_or_else(|| fail(v, kind))?,
            )),
        },
        // PARSE_JSON results and subscripts of JSON stay JSON text.
        K::Json => match v {
            Value::Json(_) => v.clone(),
            Value::String(s) => Value::Json(s.clone()),
            _ => return Err(fail(v, kind)),
        },
        _ => return Err(fail(v, kind)),
    })
}

/// Integers parse strictly (as Java's `Integer.valueOf`); decimals and floats from their
/// text, exponents allowed for floats.
fn parse_number(s: &str, k: &K) -> Option<Num> {
    match k {
        K::Float | K::Double => s.parse::<f64>().ok().map(Num::Float),
        K::Decimal { .. } => {
            let d = Decimal::parse(s).ok()?;
            Some(Num::Dec(d.unscaled_i128()?, d.scale()))
        }
        _ => s.parse::<i64>().ok().map(Num::Int),
    }
}

/// A value as a wall-clock timestamp: timestamps as they are, dates at midnight, instants in
/// the session zone, text parsed (`yyyy-MM-dd[ HH:mm:ss[.f]]`).
pub(crate) fn local_timestamp(v: &Value, zone: Zone) -> Option<cdc_api::Timestamp> {
    match v {
        Value::Timestamp(t) => Some(*t),
        Value::Date(d) => Some(midnight(*d)),
        Value::TimestampLtz(m) => Some(zone.to_local(*m)),
        Value::TimestampTz {
            timestamp,
            offset_seconds,
        } => Some(
            zone.to_local(timestamp.to_epoch_micros() - i64::from(*offset_seconds) * 1_000_000),
        ),
        Value::String(s) => parse_timestamp(s),
        _ => None,
    }
}

/// Orders two non-NULL values; text is converted to the other side's type first.
pub(crate) fn compare(a: &Value, b: &Value, zone: Zone) -> Result<Ordering, String> {
    let cannot = || format!("cannot compare '{a}' with '{b}'");
    match (a, b) {
        (Value::String(x), Value::String(y)) => Ok(x.cmp(y)),
        (Value::Boolean(x), Value::Boolean(y)) => Ok(x.cmp(y)),
        (Value::Bytes(x), Value::Bytes(y)) => Ok(x.cmp(y)),
        (Value::Time(x), Value::Time(y)) => Ok(time_micros(x).cmp(&time_micros(y))),
        (Value::Json(x), Value::Json(y)) => Ok(x.cmp(y)),
        (Value::String(_), Value::Time(_)) | (Value::Time(_), Value::String(_)) => {
            let to = DataType::new(K::Time { precision: 6 });
            compare(&cast(a, &to, zone)?, &cast(b, &to, zone)?, zone)
        }
        (Value::String(_), Value::Boolean(_)) | (Value::Boolean(_), Value::String(_)) => {
            let to = DataType::new(K::Boolean);
            compare(&cast(a, &to, zone)?, &cast(b, &to, zone)?, zone)
        }
        _ => {
            if let (Ok(Some(x)), Ok(Some(y))) = (num_or_text(a), num_or_text(b)) {
                return compare_numbers(x, y).ok_or_else(cannot);
            }
            match (local_timestamp(a, zone), local_timestamp(b, zone)) {
                (Some(x), Some(y)) if !is_string_pair(a, b) => Ok(x.cmp(&y)),
                _ => Err(cannot()),
            }
        }
    }
}

fn is_string_pair(a: &Value, b: &Value) -> bool {
    matches!((a, b), (Value::String(_), Value::String(_)))
}

fn num_or_text(v: &Value) -> Result<Option<Num>, String> {
    match v {
        Value::String(s) => {
            let s = s.trim();
            if let Ok(d) = Decimal::parse(s) {
                if let Some(u) = d.unscaled_i128() {
                    return Ok(Some(Num::Dec(u, d.scale())));
                }
            }
            s.parse::<f64>()
                .map(|f| Some(Num::Float(f)))
                .map_err(|_| String::new())
        }
        Value::Boolean(_) => Err(String::new()),
        other => num(other),
    }
}

fn compare_numbers(x: Num, y: Num) -> Option<Ordering> {
    if let (Ok((a, sa)), Ok((b, sb))) = (x.as_dec(), y.as_dec()) {
        if !matches!(x, Num::Float(_)) && !matches!(y, Num::Float(_)) {
            let s = sa.max(sb);
            if let (Some(a), Some(b)) = (
                super::numeric::rescale(a, sa, s),
                super::numeric::rescale(b, sb, s),
            ) {
                return Some(a.cmp(&b));
            }
        }
    }
    x.as_f64().partial_cmp(&y.as_f64())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    const UTC: Zone = Zone::Fixed(0);

    fn c(v: Value, k: K) -> Result<Value, String> {
        cast(&v, &DataType::new(k), UTC)
    }

    #[test]
    fn casts_convert_or_fail() {
        assert_eq!(
            c(Value::Int(5), K::String).unwrap(),
            Value::String("5".into())
        );
        assert_eq!(
            c(Value::Double(2.0), K::String).unwrap(),
            Value::String("2.0".into())
        );
        assert_eq!(
            c(Value::String(" 42 ".into()), K::BigInt).unwrap(),
            Value::BigInt(42)
        );
        assert_eq!(
            c(Value::String("abc".into()), K::Int).unwrap_err(),
            "cannot cast 'abc' to INT"
        );
        assert_eq!(
            c(
                Value::String("1.005".into()),
                K::Decimal {
                    precision: 5,
                    scale: 2
                }
            )
            .unwrap()
            .to_string(),
            "1.01"
        );
        assert!(
            c(
                Value::Int(1000),
                K::Decimal {
                    precision: 3,
                    scale: 1
                }
            )
            .unwrap_err()
            .contains("does not fit")
        );
        assert!(c(Value::Int(300), K::TinyInt).is_err());
        assert_eq!(c(Value::Double(-2.7), K::Int).unwrap(), Value::Int(-2));
        assert_eq!(
            c(Value::String("TRUE".into()), K::Boolean).unwrap(),
            Value::Boolean(true)
        );
        assert_eq!(c(Value::Int(0), K::Boolean).unwrap(), Value::Boolean(false));
        assert_eq!(
            c(
                Value::String("2024-01-02 03:04:05.123456".into()),
                K::Timestamp { precision: 3 }
            )
            .unwrap()
            .to_string(),
            "2024-01-02 03:04:05.123000"
        );
        assert_eq!(
            c(Value::String("2024-01-02".into()), K::Date)
                .unwrap()
                .to_string(),
            "2024-01-02"
        );
        assert_eq!(c(Value::Null, K::Int).unwrap(), Value::Null);
        let ltz = cast(
            &Value::TimestampLtz(0),
            &DataType::new(K::String),
            Zone::parse("+08:00").unwrap(),
        );
        assert_eq!(ltz.unwrap(), Value::String("1970-01-01 08:00:00".into()));
    }

    #[test]
    fn comparisons_cross_types() {
        let d = Value::Decimal(Decimal::parse("1.50").unwrap());
        assert_eq!(compare(&Value::Int(1), &d, UTC).unwrap(), Ordering::Less);
        assert_eq!(
            compare(&Value::Decimal(Decimal::parse("1.5").unwrap()), &d, UTC).unwrap(),
            Ordering::Equal
        );
        assert_eq!(
            compare(&Value::String("10".into()), &Value::Int(9), UTC).unwrap(),
            Ordering::Greater
        );
        assert_eq!(
            compare(&Value::String("10".into()), &Value::String("9".into()), UTC).unwrap(),
            Ordering::Less
        );
        let ts = Value::Timestamp(parse_timestamp("2024-01-01 10:00:00").unwrap());
        assert_eq!(
            compare(&ts, &Value::String("2024-01-01".into()), UTC).unwrap(),
            Ordering::Greater
        );
        assert!(compare(&Value::Int(1), &Value::String("x".into()), UTC).is_err());
    }
}
