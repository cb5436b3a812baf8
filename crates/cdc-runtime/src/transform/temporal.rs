//! Time zones, Java-style date patterns (`yyyy-MM-dd HH:mm:ss`, as Flink CDC's DATE_FORMAT
//! and TO_TIMESTAMP take), and calendar arithmetic for TIMESTAMPADD / TIMESTAMPDIFF.

use chrono::{Offset, TimeZone};

use cdc_api::{Date, Time, Timestamp};

use super::parse::TimeUnit;

/// The session zone (`pipeline.local-time-zone`) the temporal functions work in.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Zone {
    /// A fixed offset from UTC in seconds.
    Fixed(i32),
    /// An IANA zone with daylight saving rules.
    Named(chrono_tz::Tz),
}

const MICROS_PER_SECOND: i64 = 1_000_000;
const MICROS_PER_DAY: i64 = 86_400 * MICROS_PER_SECOND;

impl Zone {
    /// Parses `systemDefault`, an IANA name, `UTC`, or an offset such as `+08:00`.
    pub(crate) fn parse(text: &str) -> Result<Self, String> {
        let text = text.trim();
        if text.is_empty() || text.eq_ignore_ascii_case("systemDefault") {
            let name = iana_time_zone::get_timezone().unwrap_or_default();
            return Ok(Self::parse_named(&name).unwrap_or(Self::Fixed(0)));
        }
        Self::parse_named(text).ok_or_else(|| {
            format!("'{text}' is not a time zone: use an IANA name such as Asia/Shanghai, an offset such as +08:00, or systemDefault")
        })
    }

    /// Parses a zone ID as Java's `ZoneId.of` takes it (an IANA name, `UTC`, `+08:00`), for
    /// functions that name their zone.
    pub(crate) fn parse_id(text: &str) -> Result<Self, String> {
        Self::parse_named(text.trim()).ok_or_else(|| {
            format!("'{text}' is not a time zone: use an IANA name such as Asia/Shanghai or an offset such as +08:00")
        })
    }

    fn parse_named(text: &str) -> Option<Self> {
        if ["utc", "z", "gmt", "etc/utc", "universal"]
            .iter()
            .any(|u| text.eq_ignore_ascii_case(u))
        {
            return Some(Self::Fixed(0));
        }
        if let Ok(tz) = text.parse::<chrono_tz::Tz>() {
            return Some(Self::Named(tz));
        }
        let offset = text
            .strip_prefix("UTC")
            .or_else(|| text.strip_prefix("GMT"))
            .unwrap_or(text);
        let (sign, rest) = match offset.as_bytes().first()? {
            b'+' => (1, &offset[1..]),
            b'-' => (-1, &offset[1..]),
            _ => return None,
        };
        let (h, m) = match rest.split_once(':') {
            Some(p) => p,
            None if rest.len() == 4 => rest.split_at(2),
            None => (rest, "0"),
        };
        let (h, m): (i32, i32) = (h.parse().ok()?, m.parse().ok()?);
        (h <= 18 && m < 60).then_some(Self::Fixed(sign * (h * 3600 + m * 60)))
    }

    /// The wall-clock time in this zone of an instant (microseconds since the epoch).
    pub(crate) fn to_local(self, micros: i64) -> Timestamp {
        let offset = match self {
            Self::Fixed(s) => s,
            Self::Named(tz) => {
                let secs = micros.div_euclid(MICROS_PER_SECOND);
                let naive = chrono::DateTime::from_timestamp(secs, 0)
                    .unwrap_or_default()
                    .naive_utc();
                tz.offset_from_utc_datetime(&naive).fix().local_minus_utc()
            }
        };
        Timestamp::from_epoch_micros(micros.saturating_add(i64::from(offset) * MICROS_PER_SECOND))
    }

    /// The instant of a wall-clock time in this zone (the earlier one when the clock was
    /// turned back; the time after the gap when it was turned forward).
    pub(crate) fn to_instant(self, local: &Timestamp) -> i64 {
        let wall = local.to_epoch_micros();
        let offset = match self {
            Self::Fixed(s) => s,
            Self::Named(tz) => {
                let secs = wall.div_euclid(MICROS_PER_SECOND);
                let naive = chrono::DateTime::from_timestamp(secs, 0)
                    .unwrap_or_default()
                    .naive_utc();
                match tz.offset_from_local_datetime(&naive).earliest() {
                    Some(o) => o.fix().local_minus_utc(),
                    // In a DST gap: use the offset in force just before it.
                    None => tz.offset_from_utc_datetime(&naive).fix().local_minus_utc(),
                }
            }
        };
        wall.saturating_sub(i64::from(offset) * MICROS_PER_SECOND)
    }
}

/// Truncates the fraction of a timestamp to `precision` digits.
pub(crate) fn truncate(ts: Timestamp, precision: u8) -> Timestamp {
    let unit = 10u32.pow(6 - u32::from(precision.min(6)));
    Timestamp {
        micros: ts.micros / unit * unit,
        ..ts
    }
}

/// A timestamp at midnight of a date.
pub(crate) fn midnight(d: Date) -> Timestamp {
    Timestamp::new(d, 0, 0, 0, 0)
}

pub(crate) fn time_of(ts: &Timestamp) -> Time {
    Time::new(u16::from(ts.hour), ts.minute, ts.second, ts.micros)
}

/// A time as signed microseconds (for comparing MySQL durations).
pub(crate) fn time_micros(t: &Time) -> i64 {
    let v = (i64::from(t.hours) * 3600 + i64::from(t.minutes) * 60 + i64::from(t.seconds))
        * MICROS_PER_SECOND
        + i64::from(t.micros);
    if t.negative { -v } else { v }
}

/// Parses `yyyy-MM-dd`, `yyyy-MM-dd HH:mm:ss[.ffffff]` (or with `T`).
pub(crate) fn parse_timestamp(text: &str) -> Option<Timestamp> {
    let text = text.trim();
    let (date, time) = match text.split_once([' ', 'T']) {
        Some((d, t)) => (d, Some(t.trim())),
        None => (text, None),
    };
    let date = parse_date(date)?;
    let Some(time) = time else {
        return Some(midnight(date));
    };
    let t = parse_time(time)?;
    if t.negative || t.hours > 23 {
        return None;
    }
    Some(Timestamp::new(
        date,
        t.hours as u8,
        t.minutes,
        t.seconds,
        t.micros,
    ))
}

/// Parses `yyyy-MM-dd` (a valid calendar date).
pub(crate) fn parse_date(text: &str) -> Option<Date> {
    let mut parts = text.trim().splitn(3, '-');
    let y: u16 = parts.next()?.parse().ok()?;
    let m: u8 = parts.next()?.parse().ok()?;
    let d: u8 = parts.next()?.parse().ok()?;
    let date = Date::new(y, m, d);
    date.is_valid().then_some(date)
}

/// Parses `HH:mm[:ss[.ffffff]]`.
pub(crate) fn parse_time(text: &str) -> Option<Time> {
    let (text, negative) = match text.strip_prefix('-') {
        Some(t) => (t, true),
        None => (text, false),
    };
    let (main, frac) = text.split_once('.').unwrap_or((text, ""));
    let mut parts = main.split(':');
    let h: u16 = parts.next()?.parse().ok()?;
    let m: u8 = parts.next()?.parse().ok()?;
    let s: u8 = parts.next().map_or(Some(0), |s| s.parse().ok())?;
    if parts.next().is_some() || m > 59 || s > 59 || frac.len() > 9 {
        return None;
    }
    if !frac.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let mut micros = 0u32;
    for (i, b) in frac.bytes().take(6).enumerate() {
        micros += u32::from(b - b'0') * 10u32.pow(5 - i as u32);
    }
    Some(Time {
        negative,
        hours: h,
        minutes: m,
        seconds: s,
        micros,
    })
}

/// One piece of a Java date pattern.
#[derive(Debug, PartialEq)]
enum Token {
    Field(char, usize),
    Literal(String),
}

fn tokenize(pattern: &str) -> Result<Vec<Token>, String> {
    let mut out = Vec::new();
    let chars: Vec<char> = pattern.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c == '\'' {
            // Quoted text; '' is a literal quote.
            let mut lit = String::new();
            i += 1;
            if chars.get(i) == Some(&'\'') {
                out.push(Token::Literal("'".into()));
                i += 1;
                continue;
            }
            while i < chars.len() {
                if chars[i] == '\'' {
                    if chars.get(i + 1) == Some(&'\'') {
                        lit.push('\'');
                        i += 2;
                        continue;
                    }
                    break;
                }
                lit.push(chars[i]);
                i += 1;
            }
            i += 1;
            out.push(Token::Literal(lit));
        } else if c.is_ascii_alphabetic() {
            if !"yMdHhmsSaEDkK".contains(c) {
                return Err(format!(
                    "unsupported date pattern letter '{c}' in '{pattern}'"
                ));
            }
            let start = i;
            while i < chars.len() && chars[i] == c {
                i += 1;
            }
            out.push(Token::Field(c, i - start));
        } else {
            out.push(Token::Literal(c.to_string()));
            i += 1;
        }
    }
    Ok(out)
}

const MONTHS: [&str; 12] = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
];
const DAYS: [&str; 7] = [
    "Thursday",
    "Friday",
    "Saturday",
    "Sunday",
    "Monday",
    "Tuesday",
    "Wednesday",
];

/// Formats a wall-clock time with a Java pattern (`yyyy-MM-dd HH:mm:ss.SSS`).
pub(crate) fn format(ts: &Timestamp, pattern: &str) -> Result<String, String> {
    let mut out = String::with_capacity(pattern.len() + 8);
    for token in tokenize(pattern)? {
        let (c, n) = match token {
            Token::Literal(s) => {
                out.push_str(&s);
                continue;
            }
            Token::Field(c, n) => (c, n),
        };
        let num = |out: &mut String, v: u32| out.push_str(&format!("{v:0n$}"));
        match c {
            'y' if n == 2 => num(&mut out, u32::from(ts.date.year) % 100),
            'y' => num(&mut out, u32::from(ts.date.year)),
            'M' if n >= 4 => out.push_str(MONTHS[usize::from(ts.date.month.clamp(1, 12)) - 1]),
            'M' if n == 3 => {
                out.push_str(&MONTHS[usize::from(ts.date.month.clamp(1, 12)) - 1][..3]);
            }
            'M' => num(&mut out, u32::from(ts.date.month)),
            'd' => num(&mut out, u32::from(ts.date.day)),
            'D' => {
                let start = Date::new(ts.date.year, 1, 1).days_since_epoch();
                num(&mut out, (ts.date.days_since_epoch() - start + 1) as u32);
            }
            'H' => num(&mut out, u32::from(ts.hour)),
            'k' => num(&mut out, if ts.hour == 0 { 24 } else { u32::from(ts.hour) }),
            'K' => num(&mut out, u32::from(ts.hour % 12)),
            'h' => num(
                &mut out,
                if ts.hour % 12 == 0 {
                    12
                } else {
                    u32::from(ts.hour % 12)
                },
            ),
            'm' => num(&mut out, u32::from(ts.minute)),
            's' => num(&mut out, u32::from(ts.second)),
            'S' => {
                let digits = format!("{:06}", ts.micros);
                let n = n.min(6);
                out.push_str(&digits[..n]);
            }
            'a' => out.push_str(if ts.hour < 12 { "AM" } else { "PM" }),
            'E' => {
                let day = DAYS[ts.date.days_since_epoch().rem_euclid(7) as usize];
                out.push_str(if n >= 4 { day } else { &day[..3] });
            }
            _ => return Err(format!("unsupported date pattern letter '{c}'")),
        }
    }
    Ok(out)
}

/// Parses text with a Java pattern; fields not in the pattern default to 1970-01-01
/// 00:00:00. `None` when the text does not match.
pub(crate) fn parse_with(text: &str, pattern: &str) -> Result<Option<Timestamp>, String> {
    let tokens = tokenize(pattern)?;
    let bytes: Vec<char> = text.trim().chars().collect();
    let mut pos = 0;
    let (mut y, mut mo, mut d, mut h, mut mi, mut s, mut us) =
        (1970u32, 1u32, 1u32, 0u32, 0u32, 0u32, 0u32);
    let mut pm: Option<bool> = None;
    for (i, token) in tokens.iter().enumerate() {
        match token {
            Token::Literal(lit) => {
                for c in lit.chars() {
                    if bytes.get(pos) != Some(&c) {
                        return Ok(None);
                    }
                    pos += 1;
                }
            }
            Token::Field('a', _) => {
                let rest: String = bytes[pos.min(bytes.len())..].iter().take(2).collect();
                pm = match rest.to_ascii_uppercase().as_str() {
                    "AM" => Some(false),
                    "PM" => Some(true),
                    _ => return Ok(None),
                };
                pos += 2;
            }
            Token::Field(c, n) => {
                // Adjacent numeric fields (yyyyMMdd) take exactly their width.
                let adjacent = matches!(tokens.get(i + 1), Some(Token::Field(_, _)));
                let max = if adjacent {
                    *n
                } else if *c == 'S' {
                    9
                } else {
                    10
                };
                let start = pos;
                while pos < bytes.len() && pos - start < max && bytes[pos].is_ascii_digit() {
                    pos += 1;
                }
                if pos == start {
                    return Ok(None);
                }
                let digits: String = bytes[start..pos].iter().collect();
                let v: u32 = match digits.parse() {
                    Ok(v) => v,
                    Err(_) => return Ok(None),
                };
                match c {
                    'y' => y = if *n == 2 { v.saturating_add(2000) } else { v },
                    'M' => mo = v,
                    'd' => d = v,
                    'H' | 'k' | 'h' | 'K' => h = v,
                    'm' => mi = v,
                    's' => s = v,
                    'S' => {
                        let mut padded = digits.clone();
                        padded.truncate(6);
                        while padded.len() < 6 {
                            padded.push('0');
                        }
                        us = padded.parse().unwrap_or(0);
                    }
                    _ => return Err(format!("date pattern letter '{c}' cannot be parsed")),
                }
            }
        }
    }
    if pos != bytes.len() {
        return Ok(None);
    }
    if let Some(pm) = pm {
        h = h % 12 + if pm { 12 } else { 0 };
    }
    let date = Date::new(y.min(9999) as u16, mo.min(255) as u8, d.min(255) as u8);
    if !date.is_valid() || y > 9999 || h > 23 || mi > 59 || s > 59 {
        return Ok(None);
    }
    Ok(Some(Timestamp::new(date, h as u8, mi as u8, s as u8, us)))
}

/// Adds `months` to a date, clamping the day to the end of the month.
fn add_months(d: Date, months: i64) -> Option<Date> {
    let total = (i64::from(d.year) * 12 + i64::from(d.month) - 1).checked_add(months)?;
    let (y, m) = (total.div_euclid(12), total.rem_euclid(12) + 1);
    if !(0..=9999).contains(&y) {
        return None;
    }
    let mut day = d.day;
    while day > 28 && !Date::new(y as u16, m as u8, day).is_valid() {
        day -= 1;
    }
    Some(Date::new(y as u16, m as u8, day))
}

fn unit_micros(unit: TimeUnit) -> Option<i64> {
    Some(match unit {
        TimeUnit::Second => MICROS_PER_SECOND,
        TimeUnit::Minute => 60 * MICROS_PER_SECOND,
        TimeUnit::Hour => 3600 * MICROS_PER_SECOND,
        TimeUnit::Day => MICROS_PER_DAY,
        TimeUnit::Week => 7 * MICROS_PER_DAY,
        TimeUnit::Month | TimeUnit::Quarter | TimeUnit::Year => return None,
    })
}

fn months_of(unit: TimeUnit) -> i64 {
    match unit {
        TimeUnit::Quarter => 3,
        TimeUnit::Year => 12,
        _ => 1,
    }
}

/// `ts + n units` on the wall clock.
pub(crate) fn add(ts: &Timestamp, unit: TimeUnit, n: i64) -> Option<Timestamp> {
    match unit_micros(unit) {
        Some(u) => {
            let micros = ts.to_epoch_micros().checked_add(n.checked_mul(u)?)?;
            // Years 0 to 9999 only (checked on the instant: the year field would wrap).
            let min = Date::new(0, 1, 1).days_since_epoch() * MICROS_PER_DAY;
            let max = Date::new(10000, 1, 1).days_since_epoch() * MICROS_PER_DAY;
            (min..max)
                .contains(&micros)
                .then(|| Timestamp::from_epoch_micros(micros))
        }
        None => {
            let date = add_months(ts.date, n.checked_mul(months_of(unit))?)?;
            Some(Timestamp { date, ..*ts })
        }
    }
}

/// Whole units from `a` to `b` (negative when `b` is earlier), as Calcite counts them.
pub(crate) fn diff(unit: TimeUnit, a: &Timestamp, b: &Timestamp) -> i64 {
    match unit_micros(unit) {
        Some(u) => (b.to_epoch_micros() - a.to_epoch_micros()) / u,
        None => {
            let months_a = i64::from(a.date.year) * 12 + i64::from(a.date.month);
            let months_b = i64::from(b.date.year) * 12 + i64::from(b.date.month);
            let mut months = months_b - months_a;
            // A month only counts once the day and time of month are reached.
            let rest = |t: &Timestamp| (t.date.day, t.hour, t.minute, t.second, t.micros);
            if months > 0 && rest(b) < rest(a) {
                months -= 1;
            } else if months < 0 && rest(b) > rest(a) {
                months += 1;
            }
            months / months_of(unit)
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn ts(text: &str) -> Timestamp {
        parse_timestamp(text).unwrap()
    }

    #[test]
    fn java_patterns_format_and_parse() {
        let t = ts("2024-03-05 14:07:09.123456");
        assert_eq!(
            format(&t, "yyyy-MM-dd HH:mm:ss").unwrap(),
            "2024-03-05 14:07:09"
        );
        assert_eq!(
            format(&t, "yyyy/M/d h:mm a SSS").unwrap(),
            "2024/3/5 2:07 PM 123"
        );
        assert_eq!(
            format(&t, "yyyyMMdd'T'HHmm ''EEE MMM").unwrap(),
            "20240305T1407 'Tue Mar"
        );
        assert!(format(&t, "yyyy-QQ").unwrap_err().contains("'Q'"));
        assert_eq!(
            parse_with("20240305", "yyyyMMdd").unwrap(),
            Some(ts("2024-03-05"))
        );
        assert_eq!(
            parse_with("2024-03-05 14:07:09.5", "yyyy-MM-dd HH:mm:ss.SSS").unwrap(),
            Some(ts("2024-03-05 14:07:09.5"))
        );
        assert_eq!(
            parse_with("05/03/2024 02:00 PM", "dd/MM/yyyy hh:mm a").unwrap(),
            Some(ts("2024-03-05 14:00:00"))
        );
        assert_eq!(parse_with("2024-02-30", "yyyy-MM-dd").unwrap(), None);
        assert_eq!(parse_with("garbage", "yyyy-MM-dd").unwrap(), None);
        assert_eq!(parse_with("4294967295", "yy").unwrap(), None);
    }

    #[test]
    fn zones_convert_both_ways() {
        let sh = Zone::parse("Asia/Shanghai").unwrap();
        let t = ts("2024-01-01 08:00:00");
        assert_eq!(
            sh.to_instant(&t),
            ts("2024-01-01 00:00:00").to_epoch_micros()
        );
        assert_eq!(sh.to_local(sh.to_instant(&t)), t);
        assert_eq!(Zone::parse("+05:30").unwrap(), Zone::Fixed(19800));
        assert!(Zone::parse("Mars/Base").is_err());
    }

    #[test]
    fn calendar_arithmetic() {
        let t = ts("2024-01-31 10:00:00");
        assert_eq!(
            add(&t, TimeUnit::Month, 1).unwrap(),
            ts("2024-02-29 10:00:00")
        );
        assert_eq!(
            add(&t, TimeUnit::Hour, -11).unwrap(),
            ts("2024-01-30 23:00:00")
        );
        assert_eq!(
            add(&t, TimeUnit::Year, 1).unwrap(),
            ts("2025-01-31 10:00:00")
        );
        assert_eq!(
            diff(TimeUnit::Month, &ts("2024-01-31"), &ts("2024-02-29")),
            0
        );
        assert_eq!(
            diff(TimeUnit::Month, &ts("2024-01-31"), &ts("2024-03-31")),
            2
        );
        assert_eq!(
            diff(TimeUnit::Day, &ts("2024-01-02"), &ts("2024-01-01 01:00:00")),
            0
        );
        assert_eq!(
            diff(TimeUnit::Hour, &ts("2024-01-02"), &ts("2024-01-01")),
            -24
        );
        assert_eq!(
            diff(TimeUnit::Year, &ts("2020-06-01"), &ts("2024-05-31")),
            3
        );
    }
}
