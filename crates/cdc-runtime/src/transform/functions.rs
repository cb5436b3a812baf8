//! Built-in functions on evaluated arguments (the conditional ones, which must not evaluate
//! every argument, live in the evaluator).

use std::collections::hash_map::RandomState;
use std::fmt::Write as _;
use std::hash::{BuildHasher, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};

use cdc_api::{DataType, Value};
use regex::Regex;

use super::cast::{compare, local_timestamp, to_text};
use super::eval::Ctx;
use super::expr::Func;
use super::json;
use super::numeric::{self, num};
use super::parse::{TimeUnit, time_unit};
use super::temporal::{self, Zone, truncate};

const DEFAULT_FORMAT: &str = "yyyy-MM-dd HH:mm:ss";
const DATE_FORMAT: &str = "yyyy-MM-dd";
/// TO_TIMESTAMP_LTZ(string)'s default pattern in Flink CDC 3.6.
const LTZ_FORMAT: &str = "yyyy-MM-dd HH:mm:ss.SSS";

/// A SQL LIKE pattern as an anchored regex (`%` any run, `_` one character).
pub(crate) fn like_regex(pattern: &str, escape: Option<char>) -> Result<Regex, String> {
    let mut out = String::with_capacity(pattern.len() + 8);
    out.push_str("^(?s:");
    let mut chars = pattern.chars();
    while let Some(c) = chars.next() {
        if Some(c) == escape {
            match chars.next() {
                Some(n) => out.push_str(&regex::escape(&n.to_string())),
                None => return Err("LIKE pattern ends with the escape character".into()),
            }
        } else if c == '%' {
            out.push_str(".*");
        } else if c == '_' {
            out.push('.');
        } else {
            out.push_str(&regex::escape(&c.to_string()));
        }
    }
    out.push_str(")$");
    Regex::new(&out).map_err(|e| format!("bad LIKE pattern: {e}"))
}

/// A Java regular expression (as REGEXP_REPLACE takes) compiled with the `regex` crate;
/// the common syntax is the same, look-around and back-references are not supported.
pub(crate) fn java_regex(pattern: &str) -> Result<Regex, String> {
    Regex::new(pattern).map_err(|e| {
        let first = e
            .to_string()
            .lines()
            .last()
            .unwrap_or_default()
            .trim()
            .to_string();
        format!("'{pattern}' is not a supported regular expression ({first})")
    })
}

/// Java's replacement syntax (`$1`, `\$`) in the `regex` crate's (`${1}`, `$$`).
fn java_replacement(r: &str) -> String {
    let mut out = String::with_capacity(r.len() + 4);
    let mut chars = r.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' => match chars.next() {
                Some('$') => out.push_str("$$"),
                Some(n) => out.push(n),
                None => {}
            },
            '$' => {
                let mut digits = String::new();
                while let Some(d) = chars.peek().filter(|d| d.is_ascii_digit()) {
                    digits.push(*d);
                    chars.next();
                }
                if digits.is_empty() {
                    out.push_str("$$");
                } else {
                    out.push_str(&format!("${{{digits}}}"));
                }
            }
            other => out.push(other),
        }
    }
    out
}

fn text(v: &Value, ctx: &Ctx<'_>) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => to_text(other, ctx.zone),
    }
}

fn integer(v: &Value, what: &str) -> Result<i64, String> {
    num(v)?
        .ok_or_else(|| format!("{what} is NULL"))?
        .as_i64()
        .map_err(|m| format!("{what}: {m}"))
}

/// A random (version 4) UUID; the std hasher's per-process random keys plus a counter are
/// enough randomness for row ids and avoid another dependency.
fn uuid() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let mut bytes = [0u8; 16];
    for (i, half) in bytes.chunks_mut(8).enumerate() {
        let mut h = RandomState::new().build_hasher();
        h.write_u64(n);
        h.write_u128(nanos);
        h.write_usize(i);
        half.copy_from_slice(&h.finish().to_le_bytes());
    }
    bytes[6] = (bytes[6] & 0x0f) | 0x40;
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    let hex = bytes.iter().fold(String::with_capacity(32), |mut acc, b| {
        let _ = write!(acc, "{b:02x}");
        acc
    });
    format!(
        "{}-{}-{}-{}-{}",
        &hex[..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..]
    )
}

/// SUBSTR as Flink CDC: 1-based, 0 counts as 1, negative counts from the end, a position
/// past the end gives ''.
fn substr(s: &str, pos: i64, len: Option<i64>) -> Result<String, String> {
    if let Some(l) = len {
        if l < 0 {
            return Err(format!("SUBSTR length must be >= 0, got {l}"));
        }
    }
    let chars: Vec<char> = s.chars().collect();
    let n = chars.len() as i64;
    if pos.unsigned_abs() > n.unsigned_abs() {
        return Ok(String::new());
    }
    let start = match pos.cmp(&0) {
        std::cmp::Ordering::Equal => 0,
        std::cmp::Ordering::Less => n + pos,
        std::cmp::Ordering::Greater => pos - 1,
    };
    let end = len.map_or(n, |l| start.saturating_add(l).min(n));
    Ok(chars[start as usize..end.max(start) as usize]
        .iter()
        .collect())
}

fn trim(s: &str, what: Option<&str>, func: Func) -> String {
    let set: Vec<char> = what.map_or_else(|| vec![' '], |w| w.chars().collect());
    let m = |c: char| set.contains(&c);
    match func {
        Func::LTrim => s.trim_start_matches(m).to_string(),
        Func::RTrim => s.trim_end_matches(m).to_string(),
        _ => s.trim_matches(m).to_string(),
    }
}

/// Evaluates a function on its (already evaluated) arguments into the derived type `ty`.
pub(crate) fn call(
    func: Func,
    args: &[Value],
    ty: &DataType,
    regex: Option<&Regex>,
    ctx: &Ctx<'_>,
) -> Result<Value, String> {
    // Volatile functions and those taking no arguments do not follow NULL-in, NULL-out.
    match func {
        Func::Uuid => return Ok(Value::String(uuid())),
        Func::LocalTimestamp => {
            return Ok(Value::Timestamp(truncate(
                ctx.zone.to_local(ctx.now_micros),
                3,
            )));
        }
        Func::CurrentTimestamp => {
            return Ok(Value::TimestampLtz(ctx.now_micros.div_euclid(1000) * 1000));
        }
        Func::CurrentDate => return Ok(Value::Date(ctx.zone.to_local(ctx.now_micros).date)),
        Func::LocalTime => {
            return Ok(Value::Time(temporal::time_of(&truncate(
                ctx.zone.to_local(ctx.now_micros),
                0,
            ))));
        }
        Func::UnixTimestamp if args.is_empty() => {
            return Ok(Value::BigInt(ctx.now_micros.div_euclid(1_000_000)));
        }
        _ => {}
    }
    if args.iter().any(Value::is_null) {
        return Ok(Value::Null);
    }
    let arg = |i: usize| args.get(i).unwrap_or(&Value::Null);
    let number = |i: usize| -> Result<numeric::Num, String> {
        num(arg(i))?.ok_or_else(|| "NULL argument".to_string())
    };
    Ok(match func {
        Func::Abs => numeric::unary("ABS", number(0)?, 0, &ty.kind)?,
        Func::Ceil => numeric::unary("CEIL", number(0)?, 0, &ty.kind)?,
        Func::Floor => numeric::unary("FLOOR", number(0)?, 0, &ty.kind)?,
        Func::Round => {
            let digits = if args.len() > 1 {
                integer(arg(1), "ROUND digits")?
            } else {
                0
            };
            numeric::unary("ROUND", number(0)?, digits, &ty.kind)?
        }
        Func::CharLength => Value::Int(text(arg(0), ctx).chars().count() as i32),
        Func::Upper => Value::String(text(arg(0), ctx).to_uppercase()),
        Func::Lower => Value::String(text(arg(0), ctx).to_lowercase()),
        Func::Trim | Func::LTrim | Func::RTrim => {
            let what = args.get(1).map(|w| text(w, ctx));
            Value::String(trim(&text(arg(0), ctx), what.as_deref(), func))
        }
        Func::Substr => {
            let len = match args.get(2) {
                Some(l) => Some(integer(l, "SUBSTR length")?),
                None => None,
            };
            Value::String(substr(
                &text(arg(0), ctx),
                integer(arg(1), "SUBSTR position")?,
                len,
            )?)
        }
        Func::RegexpReplace => {
            let compiled;
            let re = match regex {
                Some(r) => r,
                None => {
                    compiled = java_regex(&text(arg(1), ctx))?;
                    &compiled
                }
            };
            let replacement = java_replacement(&text(arg(2), ctx));
            Value::String(
                re.replace_all(&text(arg(0), ctx), replacement.as_str())
                    .into_owned(),
            )
        }
        Func::Concat => Value::String(args.iter().map(|a| text(a, ctx)).collect()),
        Func::DateFormat => {
            let source = match arg(0) {
                Value::String(s) => match temporal::parse_with(s, DEFAULT_FORMAT)? {
                    Some(t) => t,
                    None => match temporal::parse_timestamp(s) {
                        Some(t) => t,
                        None => return Ok(Value::Null),
                    },
                },
                other => local_timestamp(other, ctx.zone).ok_or_else(|| {
                    format!("DATE_FORMAT needs a date or timestamp, got '{other}'")
                })?,
            };
            Value::String(temporal::format(&source, &text(arg(1), ctx))?)
        }
        Func::TimestampAdd => timestamp_add(args, ctx)?,
        Func::ToDate => to_date(args, ctx)?,
        Func::DateAdd => date_add(arg(0), integer(arg(1), "DATE_ADD days")?, ctx)?,
        Func::DateFormatTz => date_format_tz(args, ctx)?,
        Func::ParseJson | Func::TryParseJson => parse_json(func, args, ctx)?,
        Func::Item => item(arg(0), arg(1), ctx)?,
        Func::TimestampDiff => {
            let unit = time_unit(&text(arg(0), ctx)).ok_or("unknown time unit")?;
            let a = local_timestamp(arg(1), ctx.zone)
                .ok_or_else(|| format!("TIMESTAMPDIFF needs timestamps, got '{}'", arg(1)))?;
            let b = local_timestamp(arg(2), ctx.zone)
                .ok_or_else(|| format!("TIMESTAMPDIFF needs timestamps, got '{}'", arg(2)))?;
            let d = temporal::diff(unit, &a, &b);
            Value::Int(
                i32::try_from(d)
                    .map_err(|_| format!("TIMESTAMPDIFF result {d} is out of range of INT"))?,
            )
        }
        Func::ToTimestamp => {
            let s = text(arg(0), ctx);
            let parsed = match args.get(1) {
                Some(f) => temporal::parse_with(&s, &text(f, ctx))?,
                None => temporal::parse_with(&s, DEFAULT_FORMAT)?
                    .or_else(|| temporal::parse_timestamp(&s)),
            };
            parsed.map_or(Value::Null, |t| Value::Timestamp(truncate(t, 3)))
        }
        Func::ToTimestampLtz if matches!(arg(0), Value::String(_) | Value::Json(_)) => {
            to_timestamp_ltz_text(args, ctx)?
        }
        Func::ToTimestampLtz => {
            let precision = if args.len() > 1 {
                integer(arg(1), "precision")?
            } else {
                3
            };
            let n = number(0)?;
            let factor = if precision == 0 { 1_000_000 } else { 1000 };
            let micros = match n {
                numeric::Num::Int(v) => v.checked_mul(factor),
                other => {
                    let f = other.as_f64() * factor as f64;
                    (f.is_finite() && f.abs() < 9.0e18).then_some(f as i64)
                }
            }
            .ok_or("TO_TIMESTAMP_LTZ value out of range")?;
            Value::TimestampLtz(micros.div_euclid(1000) * 1000)
        }
        Func::FromUnixtime => {
            let secs = integer(arg(0), "FROM_UNIXTIME seconds")?;
            let micros = secs
                .checked_mul(1_000_000)
                .ok_or("FROM_UNIXTIME value out of range")?;
            let format = args
                .get(1)
                .map_or_else(|| DEFAULT_FORMAT.to_string(), |f| text(f, ctx));
            Value::String(temporal::format(&ctx.zone.to_local(micros), &format)?)
        }
        Func::UnixTimestamp => {
            let s = text(arg(0), ctx);
            let format = args
                .get(1)
                .map_or_else(|| DEFAULT_FORMAT.to_string(), |f| text(f, ctx));
            match temporal::parse_with(&s, &format)? {
                Some(t) => Value::BigInt(ctx.zone.to_instant(&t).div_euclid(1_000_000)),
                None => Value::Null,
            }
        }
        // Handled above or by the evaluator.
        Func::Uuid
        | Func::LocalTimestamp
        | Func::CurrentTimestamp
        | Func::CurrentDate
        | Func::LocalTime
        | Func::Coalesce
        | Func::If
        | Func::IfNull
        | Func::NullIf => return Err(format!("{func:?} cannot be called here")),
    })
}

/// TO_DATE(string[, format]) (NULL when it does not parse, as Flink CDC) or TO_DATE(ts).
fn to_date(args: &[Value], ctx: &Ctx<'_>) -> Result<Value, String> {
    let Some(first) = args.first() else {
        return Err("TO_DATE takes an argument".into());
    };
    if !matches!(first, Value::String(_)) {
        return local_timestamp(first, ctx.zone)
            .map(|t| Value::Date(t.date))
            .ok_or_else(|| format!("TO_DATE needs a string, date or timestamp, got '{first}'"));
    }
    let format = args
        .get(1)
        .map_or_else(|| DATE_FORMAT.to_string(), |f| text(f, ctx));
    let parsed = temporal::parse_with(&text(first, ctx), &format)?;
    Ok(parsed.map_or(Value::Null, |t| Value::Date(t.date)))
}

/// DATE_ADD(x, days) as Flink CDC 3.6: the date of `x` moved by `days`, as 'yyyy-MM-dd'
/// text; a string must be 'yyyy-MM-dd' or 'yyyy-MM-dd HH:mm:ss'.
fn date_add(x: &Value, days: i64, ctx: &Ctx<'_>) -> Result<Value, String> {
    let date = match x {
        Value::String(s) => {
            let format = match s.chars().count() {
                10 => DATE_FORMAT,
                19 => DEFAULT_FORMAT,
                _ => "",
            };
            let parsed = if format.is_empty() {
                None
            } else {
                temporal::parse_with(s, format)?
            };
            parsed
                .ok_or_else(|| {
                    format!(
                        "DATE_ADD cannot read '{s}': write 'yyyy-MM-dd' or 'yyyy-MM-dd HH:mm:ss'"
                    )
                })?
                .date
        }
        other => {
            local_timestamp(other, ctx.zone)
                .ok_or_else(|| {
                    format!("DATE_ADD needs a date, timestamp or string, got '{other}'")
                })?
                .date
        }
    };
    let moved = temporal::add(&temporal::midnight(date), TimeUnit::Day, days)
        .ok_or_else(|| format!("DATE_ADD('{date}', {days}) is out of range"))?;
    Ok(Value::String(moved.date.to_string()))
}

/// DATE_FORMAT_TZ(ts, [format,] zone): an instant shown in `zone`; a TIMESTAMP is taken as
/// that zone's wall clock (as Flink CDC's `atZone`), so only its pattern applies.
fn date_format_tz(args: &[Value], ctx: &Ctx<'_>) -> Result<Value, String> {
    let (ts, format, zone) = match args {
        [ts, zone] => (ts, DEFAULT_FORMAT.to_string(), zone),
        [ts, format, zone] => (ts, text(format, ctx), zone),
        _ => return Err("DATE_FORMAT_TZ takes 2 or 3 arguments".into()),
    };
    let zone = Zone::parse_id(&text(zone, ctx))?;
    let local = match ts {
        Value::Timestamp(t) => *t,
        other => local_timestamp(other, Zone::Fixed(0))
            .map(|utc| zone.to_local(utc.to_epoch_micros()))
            .ok_or_else(|| format!("DATE_FORMAT_TZ needs a timestamp, got '{other}'"))?,
    };
    Ok(Value::String(temporal::format(&local, &format)?))
}

/// TO_TIMESTAMP_LTZ(string[, format[, zone]]) as Flink CDC 3.6: the text is a wall-clock
/// time in `zone` (UTC by default, not the session zone) read with `format` (default
/// 'yyyy-MM-dd HH:mm:ss.SSS'); text that does not match is an error, as Flink CDC throws.
fn to_timestamp_ltz_text(args: &[Value], ctx: &Ctx<'_>) -> Result<Value, String> {
    let value = text(args.first().unwrap_or(&Value::Null), ctx);
    let format = args
        .get(1)
        .map_or_else(|| LTZ_FORMAT.to_string(), |f| text(f, ctx));
    let zone = match args.get(2) {
        Some(z) => Zone::parse_id(&text(z, ctx))?,
        None => Zone::Fixed(0),
    };
    let local = temporal::parse_with(&value, &format)?.ok_or_else(|| {
        format!("TO_TIMESTAMP_LTZ cannot read '{value}' with the pattern '{format}'")
    })?;
    Ok(Value::TimestampLtz(zone.to_instant(&truncate(local, 3))))
}

/// PARSE_JSON fails on invalid text, TRY_PARSE_JSON gives NULL; '' is NULL for both.
fn parse_json(func: Func, args: &[Value], ctx: &Ctx<'_>) -> Result<Value, String> {
    let source = text(args.first().unwrap_or(&Value::Null), ctx);
    if source.is_empty() {
        return Ok(Value::Null);
    }
    let allow_duplicates = matches!(args.get(1), Some(Value::Boolean(true)));
    match json::parse(&source, allow_duplicates) {
        Ok(normalised) => Ok(Value::Json(normalised)),
        Err(_) if func == Func::TryParseJson => Ok(Value::Null),
        Err(m) => Err(format!("PARSE_JSON: {m}")),
    }
}

/// `container[key]`: 1-based for arrays and rows, by key for maps and JSON objects; NULL
/// when there is no such element.
fn item(container: &Value, key: &Value, ctx: &Ctx<'_>) -> Result<Value, String> {
    let position = || num(key).ok().flatten().and_then(|n| n.as_i64().ok());
    let nth = |items: &[Value]| {
        position()
            .and_then(|i| usize::try_from(i).ok())
            .and_then(|i| i.checked_sub(1))
            .and_then(|i| items.get(i))
            .cloned()
            .unwrap_or(Value::Null)
    };
    Ok(match container {
        Value::Array(items) | Value::Row(items) => nth(items),
        Value::Map(entries) => {
            let mut found = Value::Null;
            for (k, v) in entries {
                if !k.is_null() && compare(k, key, ctx.zone)? == std::cmp::Ordering::Equal {
                    found = v.clone();
                    break;
                }
            }
            found
        }
        Value::Json(doc) | Value::String(doc) => {
            let key = match key {
                Value::String(field) => json::Key::Field(field),
                _ => json::Key::Index(position().ok_or_else(|| {
                    format!("a JSON subscript must be an integer or a string, got '{key}'")
                })?),
            };
            json::item(doc, key)?.map_or(Value::Null, Value::Json)
        }
        other => return Err(format!("cannot subscript '{other}'")),
    })
}

fn timestamp_add(args: &[Value], ctx: &Ctx<'_>) -> Result<Value, String> {
    let unit_text = match args.first() {
        Some(Value::String(s)) => s.clone(),
        _ => String::new(),
    };
    let unit = time_unit(&unit_text).ok_or("unknown time unit")?;
    let n = integer(args.get(1).unwrap_or(&Value::Null), "TIMESTAMPADD amount")?;
    let out_of_range = || format!("TIMESTAMPADD({unit_text}, {n}, ...) is out of range");
    Ok(match args.get(2).unwrap_or(&Value::Null) {
        Value::Timestamp(t) => {
            Value::Timestamp(temporal::add(t, unit, n).ok_or_else(out_of_range)?)
        }
        Value::Date(d) => {
            use super::parse::TimeUnit as U;
            if matches!(unit, U::Second | U::Minute | U::Hour) {
                return Err(format!(
                    "TIMESTAMPADD of {unit_text} to a DATE; CAST it to TIMESTAMP first"
                ));
            }
            let t = temporal::add(&temporal::midnight(*d), unit, n).ok_or_else(out_of_range)?;
            Value::Date(t.date)
        }
        Value::TimestampLtz(m) => {
            let local = ctx.zone.to_local(*m);
            let t = temporal::add(&local, unit, n).ok_or_else(out_of_range)?;
            let shift = t.to_epoch_micros() - local.to_epoch_micros();
            use super::parse::TimeUnit as U;
            // Fixed-length units move the instant; calendar units move the local date.
            if matches!(unit, U::Second | U::Minute | U::Hour) {
                Value::TimestampLtz(m.checked_add(shift).ok_or_else(out_of_range)?)
            } else {
                Value::TimestampLtz(ctx.zone.to_instant(&t))
            }
        }
        other => {
            return Err(format!(
                "TIMESTAMPADD needs a date or timestamp, got '{other}'"
            ));
        }
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn like_and_regex() {
        let re = like_regex("a%b_c", None).unwrap();
        assert!(re.is_match("aXYZbQc") && re.is_match("ab_c") && !re.is_match("abc"));
        let re = like_regex("100!%", Some('!')).unwrap();
        assert!(re.is_match("100%") && !re.is_match("1000"));
        assert!(like_regex("x!", Some('!')).is_err());
        assert_eq!(java_replacement("<$1>\\$"), "<${1}>$$");
        let re = java_regex("(\\d+)-(\\d+)").unwrap();
        assert_eq!(
            re.replace_all("12-34", java_replacement("$2/$1").as_str()),
            "34/12"
        );
    }

    #[test]
    fn substr_follows_flink() {
        assert_eq!(substr("hello", 2, Some(3)).unwrap(), "ell");
        assert_eq!(substr("hello", 0, Some(2)).unwrap(), "he");
        assert_eq!(substr("hello", -3, None).unwrap(), "llo");
        assert_eq!(substr("hello", 9, None).unwrap(), "");
        assert_eq!(substr("héllo", 2, Some(1)).unwrap(), "é");
        assert!(substr("hello", 1, Some(-1)).is_err());
        assert_eq!(substr("hello", i64::MIN, Some(i64::MAX)).unwrap(), "");
        assert_eq!(substr("hello", 2, Some(i64::MAX)).unwrap(), "ello");
    }

    #[test]
    fn uuids_are_v4_and_distinct() {
        let (a, b) = (uuid(), uuid());
        assert_ne!(a, b);
        assert_eq!(a.len(), 36);
        assert_eq!(&a[14..15], "4");
        assert!(matches!(&a[19..20], "8" | "9" | "a" | "b"));
    }

    #[test]
    fn trims() {
        assert_eq!(trim("  a  ", None, Func::Trim), "a");
        assert_eq!(trim("xxaxx", Some("x"), Func::LTrim), "axx");
        assert_eq!(trim("xxaxx", Some("x"), Func::RTrim), "xxa");
    }
}
