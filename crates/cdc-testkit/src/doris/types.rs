//! Doris column types: their limits, their printed names, and how a loaded text value is
//! checked and normalised to the text Doris prints in `SELECT`.

use std::cmp::Ordering;

/// Largest VARCHAR length, in bytes.
pub(crate) const MAX_VARCHAR: u32 = 65533;
/// Largest CHAR length, in bytes.
pub(crate) const MAX_CHAR: u32 = 255;
/// Largest DECIMAL precision (without `enable_decimal256`).
pub(crate) const MAX_DECIMAL_PRECISION: u32 = 38;
/// Default soft limit of a STRING value, in bytes.
pub(crate) const MAX_STRING_BYTES: usize = 1_048_576;

/// A Doris column type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum DorisType {
    Boolean,
    TinyInt,
    SmallInt,
    Int,
    BigInt,
    LargeInt,
    Float,
    Double,
    Decimal { precision: u32, scale: u32 },
    Date,
    DateTime { scale: u32 },
    Char(u32),
    Varchar(u32),
    String,
    Json,
}

/// Why a value could not be stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ValueError {
    /// The text does not convert to the type: NULL without strict mode, filtered with it.
    Convert,
    /// The value converts but does not fit the column: always filtered, with this reason.
    Range(String),
}

impl DorisType {
    /// Builds a type from its SQL name and arguments, enforcing Doris's limits. Errors are
    /// the `detailMessage` part of the Doris error.
    pub(crate) fn from_sql(name: &str, args: &[u32]) -> Result<Self, String> {
        let upper = name.to_ascii_uppercase();
        let arity = |max: usize| -> Result<(), String> {
            if args.len() > max {
                Err(format!("Syntax error: too many arguments for type {upper}"))
            } else {
                Ok(())
            }
        };
        let ty = match upper.as_str() {
            "BOOLEAN" | "BOOL" => {
                arity(0)?;
                Self::Boolean
            }
            "TINYINT" => {
                arity(1)?;
                Self::TinyInt
            }
            "SMALLINT" => {
                arity(1)?;
                Self::SmallInt
            }
            "INT" | "INTEGER" => {
                arity(1)?;
                Self::Int
            }
            "BIGINT" => {
                arity(1)?;
                Self::BigInt
            }
            "LARGEINT" => {
                arity(0)?;
                Self::LargeInt
            }
            "FLOAT" => {
                arity(0)?;
                Self::Float
            }
            "DOUBLE" => {
                arity(0)?;
                Self::Double
            }
            "DECIMAL" | "DECIMALV3" | "DECIMALV2" | "NUMERIC" => {
                arity(2)?;
                let precision = args.first().copied().unwrap_or(9);
                let scale = args.get(1).copied().unwrap_or(0);
                if precision == 0 || precision > MAX_DECIMAL_PRECISION {
                    return Err(format!(
                        "Precision of decimal must between 1 and {MAX_DECIMAL_PRECISION}. Precision was set to: {precision}."
                    ));
                }
                if scale > precision {
                    return Err(format!(
                        "Scale of decimal must between 0 and precision. Scale was set to: {scale}."
                    ));
                }
                Self::Decimal { precision, scale }
            }
            "DATE" | "DATEV2" => {
                arity(0)?;
                Self::Date
            }
            "DATETIME" | "DATETIMEV2" => {
                arity(1)?;
                let scale = args.first().copied().unwrap_or(0);
                if scale > 6 {
                    return Err(format!(
                        "Scale of Datetime/Time must between 0 and 6. Scale was set to: {scale}"
                    ));
                }
                Self::DateTime { scale }
            }
            "CHAR" | "CHARACTER" => {
                arity(1)?;
                let len = args.first().copied().unwrap_or(1);
                if len == 0 || len > MAX_CHAR {
                    return Err(format!(
                        "Char size must be between 1 and {MAX_CHAR}. Size was set to: {len}."
                    ));
                }
                Self::Char(len)
            }
            "VARCHAR" => {
                arity(1)?;
                let len = args.first().copied().unwrap_or(1);
                if len == 0 || len > MAX_VARCHAR {
                    return Err(format!(
                        "Varchar size must be between 1 and {MAX_VARCHAR}. Size was set to: {len}."
                    ));
                }
                Self::Varchar(len)
            }
            "STRING" | "TEXT" => {
                arity(0)?;
                Self::String
            }
            "JSON" | "JSONB" => {
                arity(0)?;
                Self::Json
            }
            "TIME" | "TIMEV2" => return Err("Unsupported data type: TIME".to_string()),
            other => return Err(format!("Unsupported data type: {other}")),
        };
        Ok(ty)
    }

    /// The type as `DESC` / `SHOW CREATE TABLE` print it, upper case: `VARCHAR(96)`,
    /// `DECIMAL(12, 2)`, `DATETIME(3)`.
    pub(crate) fn text(self) -> String {
        match self {
            Self::Boolean => "BOOLEAN".into(),
            Self::TinyInt => "TINYINT".into(),
            Self::SmallInt => "SMALLINT".into(),
            Self::Int => "INT".into(),
            Self::BigInt => "BIGINT".into(),
            Self::LargeInt => "LARGEINT".into(),
            Self::Float => "FLOAT".into(),
            Self::Double => "DOUBLE".into(),
            Self::Decimal { precision, scale } => format!("DECIMAL({precision}, {scale})"),
            Self::Date => "DATE".into(),
            Self::DateTime { scale: 0 } => "DATETIME".into(),
            Self::DateTime { scale } => format!("DATETIME({scale})"),
            Self::Char(n) => format!("CHAR({n})"),
            Self::Varchar(n) => format!("VARCHAR({n})"),
            Self::String => "TEXT".into(),
            Self::Json => "JSON".into(),
        }
    }

    /// The bare type name (`information_schema.COLUMNS.DATA_TYPE`).
    pub(crate) fn base_name(self) -> &'static str {
        match self {
            Self::Boolean => "boolean",
            Self::TinyInt => "tinyint",
            Self::SmallInt => "smallint",
            Self::Int => "int",
            Self::BigInt => "bigint",
            Self::LargeInt => "largeint",
            Self::Float => "float",
            Self::Double => "double",
            Self::Decimal { .. } => "decimal",
            Self::Date => "date",
            Self::DateTime { .. } => "datetime",
            Self::Char(_) => "char",
            Self::Varchar(_) => "varchar",
            Self::String => "text",
            Self::Json => "json",
        }
    }

    /// Why this type cannot be a key column, in Doris words; `None` if it can.
    pub(crate) fn key_error(self, column: &str) -> Option<String> {
        match self {
            Self::Float | Self::Double => {
                Some("Float or double can not used as a key, use decimal instead.".into())
            }
            Self::String => Some(format!(
                "String Type should not be used in key column[{column}]."
            )),
            Self::Json => Some(format!(
                "JSONB type should not be used in key column[{column}]."
            )),
            _ => None,
        }
    }

    /// Storage size used to choose the default DUPLICATE keys.
    pub(crate) fn key_size(self) -> u32 {
        match self {
            Self::Boolean | Self::TinyInt => 1,
            Self::SmallInt => 2,
            Self::Int | Self::Float | Self::Date => 4,
            Self::BigInt | Self::Double | Self::DateTime { .. } => 8,
            Self::LargeInt => 16,
            Self::Decimal { precision, .. } => match precision {
                0..=9 => 4,
                10..=18 => 8,
                _ => 16,
            },
            Self::Char(n) | Self::Varchar(n) => n,
            Self::String | Self::Json => 16,
        }
    }

    fn is_integer(self) -> bool {
        matches!(
            self,
            Self::TinyInt | Self::SmallInt | Self::Int | Self::BigInt | Self::LargeInt
        )
    }

    fn int_rank(self) -> u8 {
        match self {
            Self::TinyInt => 1,
            Self::SmallInt => 2,
            Self::Int => 3,
            Self::BigInt => 4,
            Self::LargeInt => 5,
            _ => 0,
        }
    }

    /// Whether `MODIFY COLUMN` may change this type to `to` (widening only).
    pub(crate) fn can_widen_to(self, to: Self) -> Result<(), String> {
        let ok = match (self, to) {
            (a, b) if a == b => true,
            (a, b) if a.is_integer() && b.is_integer() => a.int_rank() <= b.int_rank(),
            (a, Self::Double) if a.is_integer() && a.int_rank() <= 4 => true,
            (Self::TinyInt | Self::SmallInt, Self::Float) | (Self::Float, Self::Double) => true,
            (a, Self::Varchar(_) | Self::String) if a.is_integer() => true,
            (Self::Varchar(n) | Self::Char(n), Self::Varchar(m)) => {
                if m < n {
                    return Err(format!(
                        "Shorten type length is prohibited, srcType={}, dstType={}",
                        self.text(),
                        to.text()
                    ));
                }
                true
            }
            (Self::Char(n), Self::Char(m)) => {
                if m < n {
                    return Err(format!(
                        "Shorten type length is prohibited, srcType={}, dstType={}",
                        self.text(),
                        to.text()
                    ));
                }
                true
            }
            (Self::Varchar(_) | Self::Char(_), Self::String) => true,
            (
                Self::Decimal {
                    precision: p1,
                    scale: s1,
                },
                Self::Decimal {
                    precision: p2,
                    scale: s2,
                },
            ) => s2 >= s1 && p2 - s2 >= p1 - s1,
            (Self::Date, Self::DateTime { .. }) => true,
            (Self::DateTime { scale: a }, Self::DateTime { scale: b }) => b >= a,
            _ => false,
        };
        if ok {
            Ok(())
        } else {
            Err(format!("Can not change {} to {}", self.text(), to.text()))
        }
    }

    /// Converts a loaded text value into the text Doris prints for it.
    pub(crate) fn convert(self, raw: &str, column: &str) -> Result<String, ValueError> {
        match self {
            Self::Boolean => match raw.trim().to_ascii_lowercase().as_str() {
                "1" | "true" => Ok("1".into()),
                "0" | "false" => Ok("0".into()),
                _ => Err(ValueError::Convert),
            },
            Self::TinyInt | Self::SmallInt | Self::Int | Self::BigInt | Self::LargeInt => {
                let v = parse_int(raw.trim()).ok_or(ValueError::Convert)?;
                let (lo, hi): (i128, i128) = match self {
                    Self::TinyInt => (i8::MIN.into(), i8::MAX.into()),
                    Self::SmallInt => (i16::MIN.into(), i16::MAX.into()),
                    Self::Int => (i32::MIN.into(), i32::MAX.into()),
                    Self::BigInt => (i64::MIN.into(), i64::MAX.into()),
                    _ => (i128::MIN, i128::MAX),
                };
                if v < lo || v > hi {
                    return Err(ValueError::Convert);
                }
                Ok(v.to_string())
            }
            Self::Float => {
                let v: f32 = parse_float(raw.trim()).ok_or(ValueError::Convert)?;
                Ok(format!("{v}"))
            }
            Self::Double => {
                let v: f64 = parse_float(raw.trim()).ok_or(ValueError::Convert)?;
                Ok(format!("{v}"))
            }
            Self::Decimal { precision, scale } => {
                convert_decimal(raw.trim(), precision, scale, column)
            }
            Self::Date => {
                let dt = parse_datetime(raw.trim()).ok_or(ValueError::Convert)?;
                Ok(format!("{:04}-{:02}-{:02}", dt.year, dt.month, dt.day))
            }
            Self::DateTime { scale } => {
                let dt = parse_datetime(raw.trim()).ok_or(ValueError::Convert)?;
                let mut out = format!(
                    "{:04}-{:02}-{:02} {:02}:{:02}:{:02}",
                    dt.year, dt.month, dt.day, dt.hour, dt.minute, dt.second
                );
                if scale > 0 {
                    out.push('.');
                    out.push_str(&dt.micros[..scale as usize]);
                }
                Ok(out)
            }
            Self::Char(len) | Self::Varchar(len) => {
                if raw.len() > len as usize {
                    return Err(ValueError::Range(too_long(column, raw, len as usize)));
                }
                Ok(raw.to_string())
            }
            Self::String => {
                if raw.len() > MAX_STRING_BYTES {
                    return Err(ValueError::Range(too_long(column, raw, MAX_STRING_BYTES)));
                }
                Ok(raw.to_string())
            }
            Self::Json => {
                let v: serde_json::Value =
                    serde_json::from_str(raw).map_err(|_| ValueError::Convert)?;
                Ok(v.to_string())
            }
        }
    }

    /// Orders two stored values of this type (for the sequence column).
    pub(crate) fn compare(self, a: &str, b: &str) -> Ordering {
        match self {
            Self::Boolean
            | Self::TinyInt
            | Self::SmallInt
            | Self::Int
            | Self::BigInt
            | Self::LargeInt => parse_int(a).cmp(&parse_int(b)),
            Self::Float | Self::Double | Self::Decimal { .. } => {
                let x: f64 = a.parse().unwrap_or(f64::NAN);
                let y: f64 = b.parse().unwrap_or(f64::NAN);
                x.partial_cmp(&y).unwrap_or(Ordering::Equal)
            }
            _ => a.cmp(b),
        }
    }
}

fn too_long(column: &str, raw: &str, len: usize) -> String {
    let mut end = raw.len().min(32);
    while !raw.is_char_boundary(end) {
        end -= 1;
    }
    format!(
        "column_name[{column}], the length of input is too long than schema. first 32 bytes of input str: [{}] schema length: {len}; actual length: {}; ",
        &raw[..end],
        raw.len()
    )
}

fn parse_int(s: &str) -> Option<i128> {
    let digits = s.strip_prefix(['+', '-']).unwrap_or(s);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.strip_prefix('+').unwrap_or(s).parse().ok()
}

fn parse_float<T: std::str::FromStr + Copy>(s: &str) -> Option<T>
where
    f64: From<T>,
{
    let ok_chars = !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_digit() || matches!(b, b'+' | b'-' | b'.' | b'e' | b'E'));
    if !ok_chars {
        return None;
    }
    let v: T = s.parse().ok()?;
    f64::from(v).is_finite().then_some(v)
}

fn convert_decimal(
    s: &str,
    precision: u32,
    scale: u32,
    column: &str,
) -> Result<String, ValueError> {
    let (negative, body) = match s.as_bytes().first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    let (int_part, frac_part) = body.split_once('.').unwrap_or((body, ""));
    let valid = (!int_part.is_empty() || !frac_part.is_empty())
        && int_part.bytes().all(|b| b.is_ascii_digit())
        && frac_part.bytes().all(|b| b.is_ascii_digit());
    if !valid {
        return Err(ValueError::Convert);
    }
    // digits of the value scaled by 10^scale, rounded half up
    let mut digits: Vec<u8> = int_part.bytes().map(|b| b - b'0').collect();
    let frac: Vec<u8> = frac_part.bytes().map(|b| b - b'0').collect();
    for i in 0..scale as usize {
        digits.push(frac.get(i).copied().unwrap_or(0));
    }
    if frac.get(scale as usize).is_some_and(|d| *d >= 5) {
        let mut i = digits.len();
        loop {
            if i == 0 {
                digits.insert(0, 1);
                break;
            }
            i -= 1;
            if digits[i] == 9 {
                digits[i] = 0;
            } else {
                digits[i] += 1;
                break;
            }
        }
    }
    while digits.len() > scale as usize + 1 && digits.first() == Some(&0) {
        digits.remove(0);
    }
    while digits.len() < scale as usize + 1 {
        digits.insert(0, 0);
    }
    let int_digits = digits.len() - scale as usize;
    let all_zero = digits.iter().all(|d| *d == 0);
    let significant_int = if digits[..int_digits].iter().all(|d| *d == 0) {
        0
    } else {
        int_digits
    };
    if significant_int > (precision - scale) as usize {
        return Err(ValueError::Range(format!(
            "column_name[{column}], the value {s} is out of range of DECIMAL({precision}, {scale})"
        )));
    }
    let mut out = String::new();
    if negative && !all_zero {
        out.push('-');
    }
    for d in &digits[..int_digits] {
        out.push(char::from(b'0' + d));
    }
    if scale > 0 {
        out.push('.');
        for d in &digits[int_digits..] {
            out.push(char::from(b'0' + d));
        }
    }
    Ok(out)
}

struct DateTimeParts {
    year: u32,
    month: u32,
    day: u32,
    hour: u32,
    minute: u32,
    second: u32,
    /// six fractional digits
    micros: String,
}

fn days_in_month(year: u32, month: u32) -> u32 {
    match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 => 29,
        2 => 28,
        _ => 0,
    }
}

fn num(s: &str, len: usize) -> Option<u32> {
    (s.len() == len && s.bytes().all(|b| b.is_ascii_digit()))
        .then(|| s.parse().ok())
        .flatten()
}

/// Parses `YYYY-MM-DD`, `YYYYMMDD`, or `YYYY-MM-DD[ T]HH:MM:SS[.f{1,6}]`. Fractional digits
/// beyond the column's scale are cut (see the module doc).
fn parse_datetime(s: &str) -> Option<DateTimeParts> {
    let (date, time) = match s.find([' ', 'T']) {
        Some(i) => (&s[..i], Some(&s[i + 1..])),
        None => (s, None),
    };
    let (year, month, day) = if date.len() == 8 && !date.contains('-') {
        (
            num(&date[..4], 4)?,
            num(&date[4..6], 2)?,
            num(&date[6..], 2)?,
        )
    } else {
        let mut it = date.split('-');
        let y = num(it.next()?, 4)?;
        let m = it.next()?;
        let d = it.next()?;
        if it.next().is_some() || m.is_empty() || m.len() > 2 || d.is_empty() || d.len() > 2 {
            return None;
        }
        (y, num(m, m.len())?, num(d, d.len())?)
    };
    if !(1..=12).contains(&month) || day == 0 || day > days_in_month(year, month) {
        return None;
    }
    let mut parts = DateTimeParts {
        year,
        month,
        day,
        hour: 0,
        minute: 0,
        second: 0,
        micros: "000000".into(),
    };
    if let Some(time) = time {
        let (hms, frac) = time.split_once('.').unwrap_or((time, ""));
        let mut it = hms.split(':');
        let h = it.next()?;
        let mi = it.next()?;
        let se = it.next()?;
        if it.next().is_some() {
            return None;
        }
        parts.hour = num(h, h.len().clamp(1, 2))?;
        parts.minute = num(mi, 2)?;
        parts.second = num(se, 2)?;
        if parts.hour > 23 || parts.minute > 59 || parts.second > 59 {
            return None;
        }
        if !frac.is_empty() {
            if !frac.bytes().all(|b| b.is_ascii_digit()) || frac.len() > 9 {
                return None;
            }
            let mut f: String = frac.chars().take(6).collect();
            while f.len() < 6 {
                f.push('0');
            }
            parts.micros = f;
        }
    }
    Some(parts)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_in_doris_words() {
        assert!(DorisType::from_sql("VARCHAR", &[65533]).is_ok());
        assert!(
            DorisType::from_sql("varchar", &[65534])
                .unwrap_err()
                .contains("65533")
        );
        assert!(DorisType::from_sql("CHAR", &[256]).is_err());
        assert!(
            DorisType::from_sql("DECIMAL", &[39, 2])
                .unwrap_err()
                .contains("Precision")
        );
        assert!(DorisType::from_sql("DATETIME", &[7]).is_err());
        assert!(DorisType::from_sql("TIME", &[]).is_err());
        assert_eq!(
            DorisType::from_sql("DECIMALV3", &[12, 2]).unwrap().text(),
            "DECIMAL(12, 2)"
        );
        assert_eq!(
            DorisType::from_sql("DATETIMEV2", &[3]).unwrap().text(),
            "DATETIME(3)"
        );
        assert_eq!(DorisType::from_sql("JSONB", &[]).unwrap().text(), "JSON");
    }

    #[test]
    fn converts_values() {
        let c = "c";
        assert_eq!(DorisType::Int.convert(" 42", c).unwrap(), "42");
        assert_eq!(
            DorisType::TinyInt.convert("200", c),
            Err(ValueError::Convert)
        );
        assert_eq!(DorisType::Int.convert("1.5", c), Err(ValueError::Convert));
        assert_eq!(DorisType::Boolean.convert("true", c).unwrap(), "1");
        let dec = DorisType::Decimal {
            precision: 5,
            scale: 2,
        };
        assert_eq!(dec.convert("1.005", c).unwrap(), "1.01");
        assert_eq!(dec.convert("-0.001", c).unwrap(), "0.00");
        assert_eq!(dec.convert("12", c).unwrap(), "12.00");
        assert!(matches!(
            dec.convert("1234.5", c),
            Err(ValueError::Range(_))
        ));
        assert!(matches!(
            dec.convert("999.995", c),
            Err(ValueError::Range(_))
        ));
        assert_eq!(dec.convert("abc", c), Err(ValueError::Convert));
        let dt = DorisType::DateTime { scale: 3 };
        assert_eq!(
            dt.convert("2024-02-29 01:02:03.123456", c).unwrap(),
            "2024-02-29 01:02:03.123"
        );
        assert_eq!(
            dt.convert("2024-01-05", c).unwrap(),
            "2024-01-05 00:00:00.000"
        );
        assert_eq!(
            dt.convert("2023-02-29 00:00:00", c),
            Err(ValueError::Convert)
        );
        assert_eq!(
            DorisType::Date.convert("2024-1-5", c).unwrap(),
            "2024-01-05"
        );
        assert_eq!(
            DorisType::Date.convert("20240105", c).unwrap(),
            "2024-01-05"
        );
        let v = DorisType::Varchar(3);
        assert_eq!(v.convert("abc", c).unwrap(), "abc");
        // "é" is two bytes in UTF-8
        assert!(matches!(v.convert("aéb", c), Err(ValueError::Range(_))));
        assert_eq!(
            DorisType::Json.convert(r#"{"a": 1}"#, c).unwrap(),
            r#"{"a":1}"#
        );
        assert_eq!(DorisType::Json.convert("{", c), Err(ValueError::Convert));
        assert_eq!(
            DorisType::Double.convert("NaN", c),
            Err(ValueError::Convert)
        );
    }

    #[test]
    fn widening_only() {
        assert!(DorisType::Int.can_widen_to(DorisType::BigInt).is_ok());
        assert!(DorisType::BigInt.can_widen_to(DorisType::Int).is_err());
        assert!(
            DorisType::Varchar(10)
                .can_widen_to(DorisType::Varchar(5))
                .unwrap_err()
                .contains("Shorten")
        );
        assert!(
            DorisType::Varchar(10)
                .can_widen_to(DorisType::String)
                .is_ok()
        );
        assert!(
            DorisType::Date
                .can_widen_to(DorisType::DateTime { scale: 0 })
                .is_ok()
        );
        assert!(DorisType::String.can_widen_to(DorisType::Int).is_err());
    }
}
