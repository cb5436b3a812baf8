use std::fmt::{self, Write as _};

use thiserror::Error;

/// One field value, held exactly.
///
/// Each variant matches a [`DataTypeKind`](crate::DataTypeKind): decimals keep every digit
/// (up to 65, never through a float), temporal values keep microseconds, text is UTF-8
/// (converted from the source column's character set by the source), bytes stay bytes.
///
/// ```
/// use cdc_api::{Decimal, Value};
/// let v = Value::Decimal(Decimal::parse("12345678901234567890123456789012345678901.5").unwrap());
/// assert_eq!(v.to_string(), "12345678901234567890123456789012345678901.5");
/// assert!(Value::Null.is_null());
/// ```
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Value {
    /// SQL NULL (distinct from an empty string).
    Null,
    /// BOOLEAN.
    Boolean(bool),
    /// TINYINT.
    TinyInt(i8),
    /// SMALLINT.
    SmallInt(i16),
    /// INT.
    Int(i32),
    /// BIGINT.
    BigInt(i64),
    /// FLOAT.
    Float(f32),
    /// DOUBLE.
    Double(f64),
    /// DECIMAL, exact.
    Decimal(Decimal),
    /// CHAR, VARCHAR, STRING: UTF-8 text.
    String(String),
    /// BINARY, VARBINARY, BYTES.
    Bytes(Vec<u8>),
    /// DATE.
    Date(Date),
    /// TIME (MySQL's signed duration up to ±838 hours included).
    Time(Time),
    /// TIMESTAMP: a wall-clock date and time without zone.
    Timestamp(Timestamp),
    /// TIMESTAMP_LTZ: an instant, as microseconds since 1970-01-01T00:00:00Z.
    TimestampLtz(i64),
    /// TIMESTAMP_TZ: a wall-clock time with its offset from UTC in seconds.
    TimestampTz {
        /// The local date and time.
        timestamp: Timestamp,
        /// Offset from UTC, in seconds east.
        offset_seconds: i32,
    },
    /// ARRAY elements.
    Array(Vec<Value>),
    /// MAP entries in order.
    Map(Vec<(Value, Value)>),
    /// ROW fields by position.
    Row(Vec<Value>),
    /// JSON text.
    Json(String),
}

impl Value {
    /// Whether this is SQL NULL.
    pub fn is_null(&self) -> bool {
        matches!(self, Self::Null)
    }

    /// The text of a `String` or `Json` value.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Self::String(s) | Self::Json(s) => Some(s),
            _ => None,
        }
    }

    /// The value of any integer variant widened to `i64`.
    pub fn as_i64(&self) -> Option<i64> {
        match *self {
            Self::TinyInt(v) => Some(v.into()),
            Self::SmallInt(v) => Some(v.into()),
            Self::Int(v) => Some(v.into()),
            Self::BigInt(v) => Some(v),
            _ => None,
        }
    }
}

/// Renders the value as plain text the way SQL would print it (no quotes). TIMESTAMP_LTZ is
/// shown in UTC; bytes as lowercase hex prefixed with `0x`.
impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Null => f.write_str("NULL"),
            Self::Boolean(v) => write!(f, "{v}"),
            Self::TinyInt(v) => write!(f, "{v}"),
            Self::SmallInt(v) => write!(f, "{v}"),
            Self::Int(v) => write!(f, "{v}"),
            Self::BigInt(v) => write!(f, "{v}"),
            Self::Float(v) => write!(f, "{v}"),
            Self::Double(v) => write!(f, "{v}"),
            Self::Decimal(v) => write!(f, "{v}"),
            Self::String(v) | Self::Json(v) => f.write_str(v),
            Self::Bytes(v) => {
                f.write_str("0x")?;
                for b in v {
                    write!(f, "{b:02x}")?;
                }
                Ok(())
            }
            Self::Date(v) => write!(f, "{v}"),
            Self::Time(v) => write!(f, "{v}"),
            Self::Timestamp(v) => write!(f, "{v}"),
            Self::TimestampLtz(micros) => write!(f, "{}Z", Timestamp::from_epoch_micros(*micros)),
            Self::TimestampTz {
                timestamp,
                offset_seconds,
            } => {
                let sign = if *offset_seconds < 0 { '-' } else { '+' };
                let o = offset_seconds.unsigned_abs();
                write!(f, "{timestamp}{sign}{:02}:{:02}", o / 3600, (o % 3600) / 60)
            }
            Self::Array(items) | Self::Row(items) => {
                f.write_char('[')?;
                for (i, v) in items.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{v}")?;
                }
                f.write_char(']')
            }
            Self::Map(entries) => {
                f.write_char('{')?;
                for (i, (k, v)) in entries.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{k}: {v}")?;
                }
                f.write_char('}')
            }
        }
    }
}

/// An exact decimal number of up to 65 significant digits.
///
/// Numbers whose unscaled value fits in an `i128` (38 digits) are stored inline; larger ones
/// keep their digits as text. Either way no digit is ever lost and no float is involved.
/// Equality compares the value and the scale (`1.0` and `1.00` differ, as in SQL output).
///
/// ```
/// use cdc_api::Decimal;
/// let d = Decimal::parse("-0.05").unwrap();
/// assert_eq!(d.scale(), 2);
/// assert_eq!(d.to_string(), "-0.05");
/// assert_eq!(Decimal::from_unscaled(12345, 2).to_string(), "123.45");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Decimal {
    repr: DecimalRepr,
    scale: u8,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum DecimalRepr {
    Small(i128),
    /// Unscaled digits without sign or leading zeros, longer than 38 digits.
    Big {
        negative: bool,
        digits: Box<str>,
    },
}

/// Why a text could not be read as a [`Decimal`].
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("'{text}' is not a decimal number: {reason}")]
pub struct DecimalParseError {
    text: String,
    reason: &'static str,
}

/// The most digits a [`Decimal`] holds (MySQL's DECIMAL limit).
const MAX_DECIMAL_DIGITS: usize = 65;

impl Decimal {
    /// A decimal of value `unscaled / 10^scale`.
    pub fn from_unscaled(unscaled: i128, scale: u8) -> Self {
        Self {
            repr: DecimalRepr::Small(unscaled),
            scale,
        }
    }

    /// Reads a decimal from text like `-123.4500`; the scale is the number of digits after
    /// the point. Accepts a leading `+` or `-`, no exponent, at most 65 digits.
    pub fn parse(text: &str) -> Result<Self, DecimalParseError> {
        let err = |reason| DecimalParseError {
            text: text.to_string(),
            reason,
        };
        let (negative, body) = match text.as_bytes().first() {
            Some(b'-') => (true, &text[1..]),
            Some(b'+') => (false, &text[1..]),
            _ => (false, text),
        };
        let (int_part, frac_part) = match body.split_once('.') {
            Some((i, f)) => (i, f),
            None => (body, ""),
        };
        if int_part.is_empty() && frac_part.is_empty() {
            return Err(err("no digits"));
        }
        if !int_part
            .bytes()
            .chain(frac_part.bytes())
            .all(|b| b.is_ascii_digit())
        {
            return Err(err("only digits, one '.' and a leading sign are allowed"));
        }
        let scale = u8::try_from(frac_part.len()).map_err(|_| err("too many fraction digits"))?;
        let mut digits = String::with_capacity(int_part.len() + frac_part.len());
        digits.push_str(int_part.trim_start_matches('0'));
        digits.push_str(frac_part);
        let digits = digits.trim_start_matches('0');
        if digits.len() > MAX_DECIMAL_DIGITS {
            return Err(err("more than 65 significant digits"));
        }
        Ok(Self::from_digits(negative, digits, scale))
    }

    /// Builds a decimal from its unscaled digits (no sign, no leading zeros).
    fn from_digits(negative: bool, digits: &str, scale: u8) -> Self {
        if digits.len() <= 38 {
            let mut v: i128 = 0;
            for b in digits.bytes() {
                v = v * 10 + i128::from(b - b'0');
            }
            Self::from_unscaled(if negative { -v } else { v }, scale)
        } else {
            Self {
                repr: DecimalRepr::Big {
                    negative,
                    digits: digits.into(),
                },
                scale,
            }
        }
    }

    /// Digits after the decimal point.
    pub fn scale(&self) -> u8 {
        self.scale
    }

    /// The unscaled value when it fits in an `i128`.
    pub fn unscaled_i128(&self) -> Option<i128> {
        match self.repr {
            DecimalRepr::Small(v) => Some(v),
            DecimalRepr::Big { .. } => None,
        }
    }

    /// Whether the value is below zero.
    pub fn is_negative(&self) -> bool {
        match &self.repr {
            DecimalRepr::Small(v) => *v < 0,
            DecimalRepr::Big { negative, .. } => *negative,
        }
    }

    /// Returns the same value with exactly `scale` fraction digits, padding with zeros or
    /// dropping digits (truncating toward zero) as needed.
    pub fn with_scale(&self, scale: u8) -> Self {
        if scale == self.scale {
            return self.clone();
        }
        let text = self.to_string();
        let (negative, body) = text
            .strip_prefix('-')
            .map_or((false, text.as_str()), |b| (true, b));
        let (int_part, frac_part) = body.split_once('.').unwrap_or((body, ""));
        let mut digits = String::with_capacity(int_part.len() + scale as usize);
        digits.push_str(int_part);
        let want = scale as usize;
        if frac_part.len() >= want {
            digits.push_str(&frac_part[..want]);
        } else {
            digits.push_str(frac_part);
            digits.extend(std::iter::repeat_n('0', want - frac_part.len()));
        }
        let digits = digits.trim_start_matches('0');
        let is_zero = digits.is_empty();
        Self::from_digits(negative && !is_zero, digits, scale)
    }
}

impl fmt::Display for Decimal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut buf = itoa_i128(&self.repr);
        let negative = buf.starts_with('-');
        if negative {
            buf.remove(0);
            f.write_char('-')?;
        }
        let scale = self.scale as usize;
        if scale == 0 {
            return f.write_str(&buf);
        }
        if buf.len() <= scale {
            f.write_str("0.")?;
            for _ in buf.len()..scale {
                f.write_char('0')?;
            }
            return f.write_str(&buf);
        }
        let (int_part, frac_part) = buf.split_at(buf.len() - scale);
        write!(f, "{int_part}.{frac_part}")
    }
}

fn itoa_i128(repr: &DecimalRepr) -> String {
    match repr {
        DecimalRepr::Small(v) => v.to_string(),
        DecimalRepr::Big { negative, digits } => {
            if *negative {
                format!("-{digits}")
            } else {
                digits.to_string()
            }
        }
    }
}

/// A calendar date. Zero parts are allowed because MySQL stores "zero dates" such as
/// `0000-00-00`; sinks decide how to write them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Date {
    /// Year, 0 to 9999.
    pub year: u16,
    /// Month, 1 to 12 (0 in a zero date).
    pub month: u8,
    /// Day of month, 1 to 31 (0 in a zero date).
    pub day: u8,
}

impl Date {
    /// A date from its parts (not validated: see [`Date::is_valid`]).
    pub fn new(year: u16, month: u8, day: u8) -> Self {
        Self { year, month, day }
    }

    /// Whether this is a real calendar date (not a MySQL zero or partial-zero date).
    pub fn is_valid(&self) -> bool {
        (1..=12).contains(&self.month)
            && self.day >= 1
            && self.day <= days_in_month(i64::from(self.year), self.month)
    }

    /// Days since 1970-01-01 (negative before), for valid dates.
    pub fn days_since_epoch(&self) -> i64 {
        days_from_civil(
            i64::from(self.year),
            u32::from(self.month),
            u32::from(self.day),
        )
    }

    /// The date `days` after 1970-01-01.
    pub fn from_days_since_epoch(days: i64) -> Self {
        let (y, m, d) = civil_from_days(days);
        Self::new(y as u16, m as u8, d as u8)
    }
}

impl fmt::Display for Date {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:04}-{:02}-{:02}", self.year, self.month, self.day)
    }
}

/// A MySQL TIME: a signed duration up to 838:59:59.999999, usually a time of day.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Time {
    /// Whether the duration is below zero.
    pub negative: bool,
    /// Hours, 0 to 838.
    pub hours: u16,
    /// Minutes, 0 to 59.
    pub minutes: u8,
    /// Seconds, 0 to 59.
    pub seconds: u8,
    /// Microseconds, 0 to 999999.
    pub micros: u32,
}

impl Time {
    /// A non-negative time of day.
    pub fn new(hours: u16, minutes: u8, seconds: u8, micros: u32) -> Self {
        Self {
            negative: false,
            hours,
            minutes,
            seconds,
            micros,
        }
    }

    /// Writes `[-]HH:MM:SS` plus exactly `precision` fraction digits (0 to 6).
    pub fn write_with_precision(&self, out: &mut impl fmt::Write, precision: u8) -> fmt::Result {
        if self.negative {
            out.write_char('-')?;
        }
        write!(
            out,
            "{:02}:{:02}:{:02}",
            self.hours, self.minutes, self.seconds
        )?;
        write_fraction(out, self.micros, precision)
    }
}

impl fmt::Display for Time {
    /// Shows the fraction only when it is not zero, with six digits.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.write_with_precision(f, if self.micros == 0 { 0 } else { 6 })
    }
}

/// A wall-clock date and time without a zone, to the microsecond.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Timestamp {
    /// The date part.
    pub date: Date,
    /// Hour, 0 to 23.
    pub hour: u8,
    /// Minute, 0 to 59.
    pub minute: u8,
    /// Second, 0 to 59.
    pub second: u8,
    /// Microsecond, 0 to 999999.
    pub micros: u32,
}

impl Timestamp {
    /// A timestamp from its parts.
    pub fn new(date: Date, hour: u8, minute: u8, second: u8, micros: u32) -> Self {
        Self {
            date,
            hour,
            minute,
            second,
            micros,
        }
    }

    /// The wall-clock time in UTC of an instant given as microseconds since the epoch.
    pub fn from_epoch_micros(micros: i64) -> Self {
        let days = micros.div_euclid(86_400_000_000);
        let rem = micros.rem_euclid(86_400_000_000);
        let secs = rem / 1_000_000;
        Self {
            date: Date::from_days_since_epoch(days),
            hour: (secs / 3600) as u8,
            minute: ((secs % 3600) / 60) as u8,
            second: (secs % 60) as u8,
            micros: (rem % 1_000_000) as u32,
        }
    }

    /// Microseconds since the epoch, reading this wall-clock time as UTC.
    pub fn to_epoch_micros(&self) -> i64 {
        let secs = self.date.days_since_epoch() * 86_400
            + i64::from(self.hour) * 3600
            + i64::from(self.minute) * 60
            + i64::from(self.second);
        secs * 1_000_000 + i64::from(self.micros)
    }

    /// Writes `YYYY-MM-DD HH:MM:SS` plus exactly `precision` fraction digits (0 to 6).
    pub fn write_with_precision(&self, out: &mut impl fmt::Write, precision: u8) -> fmt::Result {
        write!(
            out,
            "{} {:02}:{:02}:{:02}",
            self.date, self.hour, self.minute, self.second
        )?;
        write_fraction(out, self.micros, precision)
    }
}

impl fmt::Display for Timestamp {
    /// Shows the fraction only when it is not zero, with six digits.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.write_with_precision(f, if self.micros == 0 { 0 } else { 6 })
    }
}

fn write_fraction(out: &mut impl fmt::Write, micros: u32, precision: u8) -> fmt::Result {
    if precision == 0 {
        return Ok(());
    }
    let precision = u32::from(precision.min(6));
    let scaled = micros / 10u32.pow(6 - precision);
    write!(out, ".{scaled:0width$}", width = precision as usize)
}

fn is_leap(y: i64) -> bool {
    (y % 4 == 0 && y % 100 != 0) || y % 400 == 0
}

fn days_in_month(y: i64, m: u8) -> u8 {
    match m {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if is_leap(y) => 29,
        2 => 28,
        _ => 0,
    }
}

// Howard Hinnant's days_from_civil / civil_from_days, proleptic Gregorian calendar.
fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (i64::from(m) + 9) % 12;
    let doy = (153 * mp + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decimal_round_trips_every_width() {
        for text in [
            "0",
            "-0.05",
            "123.45",
            "99999999999999999999999999999999999999",
            "-99999999999999999999999999999999999.999999999999999999999999999999",
            "0.000000000000000000000000000001",
            "12345678901234567890123456789012345.678901234567890123456789012345",
        ] {
            assert_eq!(Decimal::parse(text).unwrap().to_string(), text, "{text}");
        }
        assert_eq!(Decimal::parse("007.50").unwrap().to_string(), "7.50");
        assert!(Decimal::parse("1e5").is_err());
        assert!(Decimal::parse("").is_err());
        assert!(Decimal::parse(&"9".repeat(66)).is_err());
    }

    #[test]
    fn decimal_rescales_exactly() {
        let d = Decimal::parse("1.5").unwrap();
        assert_eq!(d.with_scale(3).to_string(), "1.500");
        assert_eq!(
            Decimal::parse("-0.001").unwrap().with_scale(2).to_string(),
            "0.00"
        );
        let big = Decimal::parse(&format!("{}.5", "9".repeat(50))).unwrap();
        assert_eq!(
            big.with_scale(2).to_string(),
            format!("{}.50", "9".repeat(50))
        );
    }

    #[test]
    fn dates_convert_both_ways() {
        for days in [-719_528, -1, 0, 1, 11_016, 2_932_896] {
            assert_eq!(Date::from_days_since_epoch(days).days_since_epoch(), days);
        }
        assert_eq!(Date::from_days_since_epoch(0).to_string(), "1970-01-01");
        assert!(!Date::new(0, 0, 0).is_valid());
        assert!(Date::new(2024, 2, 29).is_valid());
        assert!(!Date::new(2023, 2, 29).is_valid());
    }

    #[test]
    fn timestamps_render_with_precision() {
        let ts = Timestamp::from_epoch_micros(1_595_008_822_123_456);
        assert_eq!(ts.to_string(), "2020-07-17 18:00:22.123456");
        let mut s = String::new();
        ts.write_with_precision(&mut s, 3).unwrap();
        assert_eq!(s, "2020-07-17 18:00:22.123");
        assert_eq!(ts.to_epoch_micros(), 1_595_008_822_123_456);
        let t = Time {
            negative: true,
            hours: 838,
            minutes: 59,
            seconds: 59,
            micros: 0,
        };
        assert_eq!(t.to_string(), "-838:59:59");
    }
}
