//! MySQL column types: parsed from a column type text (`int(10) unsigned`,
//! `enum('a','b')`, `decimal(12,2)`, as information_schema and DDL give them) and mapped to
//! cdc-api types per Flink CDC's `MySqlTypeUtils`.

use cdc_api::{DataType, DataTypeKind};

/// The character set of a text column, as far as decoding needs to know.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Charset {
    /// utf8, utf8mb3, utf8mb4, ascii: already UTF-8 on the wire.
    Utf8,
    /// latin1 (MySQL's latin1 is cp1252).
    Latin1,
    /// gbk / gb2312 / gb18030.
    Gbk,
    /// Bytes, no conversion.
    Binary,
}

impl Charset {
    pub(crate) fn from_name(name: &str) -> Self {
        let n = name.to_ascii_lowercase();
        if n.starts_with("utf8") || n == "ascii" {
            Self::Utf8
        } else if n == "latin1" || n == "cp1252" {
            Self::Latin1
        } else if n.starts_with("gb") {
            Self::Gbk
        } else if n == "binary" {
            Self::Binary
        } else {
            // Other single-byte sets are rare; decoding as UTF-8 fails loudly if wrong.
            Self::Utf8
        }
    }

    /// Converts column bytes to UTF-8 text.
    pub(crate) fn decode(&self, bytes: &[u8]) -> Result<String, String> {
        match self {
            Self::Utf8 | Self::Binary => String::from_utf8(bytes.to_vec())
                .map_err(|_| "text is not valid UTF-8 for its utf8 column".to_string()),
            Self::Latin1 => {
                let (text, _, bad) = encoding_rs::WINDOWS_1252.decode(bytes);
                if bad {
                    return Err("text is not valid latin1".into());
                }
                Ok(text.into_owned())
            }
            Self::Gbk => {
                let (text, _, bad) = encoding_rs::GBK.decode(bytes);
                if bad {
                    return Err("text is not valid gbk".into());
                }
                Ok(text.into_owned())
            }
        }
    }
}

/// A MySQL column type with what decoding and mapping need.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum MySqlType {
    TinyInt {
        unsigned: bool,
        width: Option<u32>,
    },
    SmallInt {
        unsigned: bool,
    },
    MediumInt {
        unsigned: bool,
    },
    Int {
        unsigned: bool,
    },
    BigInt {
        unsigned: bool,
    },
    Decimal {
        precision: u8,
        scale: u8,
    },
    /// `explicit` when written FLOAT(p[,s]): Flink CDC maps that to DOUBLE.
    Float {
        explicit: bool,
    },
    Double,
    Bit(u32),
    Bool,
    Char(u32),
    VarChar(u32),
    Text,
    Binary(u32),
    VarBinary(u32),
    Blob,
    Enum(Vec<String>),
    Set(Vec<String>),
    Year,
    Date,
    Time(u8),
    DateTime(u8),
    Timestamp(u8),
    Json,
    Geometry,
    /// A type this version does not know (mapped to STRING; decoding may fail loudly).
    Other(String),
}

/// Parses a column type as MySQL prints it in information_schema.COLUMNS.COLUMN_TYPE or as
/// written in DDL (case-insensitive, `(n)` / `(p,s)` / value lists, `unsigned`, `zerofill`).
pub(crate) fn parse_column_type(text: &str) -> MySqlType {
    let trimmed = text.trim();
    let lower = trimmed.to_ascii_lowercase();
    let name_end = lower
        .find(|c: char| c == '(' || c.is_whitespace())
        .unwrap_or(lower.len());
    let name = &lower[..name_end];
    let args = paren_args(trimmed);
    let unsigned = lower.contains(" unsigned") || lower.contains(" zerofill");
    let n = |i: usize| args.get(i).and_then(|a| a.trim().parse::<u32>().ok());
    match name {
        "tinyint" | "int1" => MySqlType::TinyInt {
            unsigned,
            width: n(0),
        },
        "bool" | "boolean" => MySqlType::Bool,
        "smallint" | "int2" => MySqlType::SmallInt { unsigned },
        "mediumint" | "int3" | "middleint" => MySqlType::MediumInt { unsigned },
        "int" | "integer" | "int4" => MySqlType::Int { unsigned },
        "bigint" | "int8" => MySqlType::BigInt { unsigned },
        "serial" => MySqlType::BigInt { unsigned: true },
        "decimal" | "numeric" | "dec" | "fixed" => MySqlType::Decimal {
            precision: n(0).unwrap_or(10) as u8,
            scale: n(1).unwrap_or(0) as u8,
        },
        "float" => MySqlType::Float {
            explicit: !args.is_empty(),
        },
        "double" | "real" | "float8" => MySqlType::Double,
        "bit" => MySqlType::Bit(n(0).unwrap_or(1)),
        "char" | "nchar" | "character" => MySqlType::Char(n(0).unwrap_or(1)),
        "varchar" | "nvarchar" | "character varying" | "varchar2" => {
            MySqlType::VarChar(n(0).unwrap_or(255))
        }
        "tinytext" | "text" | "mediumtext" | "longtext" | "long" => MySqlType::Text,
        "binary" => MySqlType::Binary(n(0).unwrap_or(1)),
        "varbinary" => MySqlType::VarBinary(n(0).unwrap_or(255)),
        "tinyblob" | "blob" | "mediumblob" | "longblob" => MySqlType::Blob,
        "enum" => MySqlType::Enum(quoted_list(&args)),
        "set" => MySqlType::Set(quoted_list(&args)),
        "year" => MySqlType::Year,
        "date" => MySqlType::Date,
        "time" => MySqlType::Time(n(0).unwrap_or(0) as u8),
        "datetime" => MySqlType::DateTime(n(0).unwrap_or(0) as u8),
        "timestamp" => MySqlType::Timestamp(n(0).unwrap_or(0) as u8),
        "json" => MySqlType::Json,
        "geometry" | "point" | "linestring" | "polygon" | "multipoint" | "multilinestring"
        | "multipolygon" | "geometrycollection" | "geomcollection" => MySqlType::Geometry,
        _ => MySqlType::Other(trimmed.to_string()),
    }
}

/// The arguments inside the first parentheses, split on top-level commas (quotes respected).
fn paren_args(text: &str) -> Vec<String> {
    let Some(start) = text.find('(') else {
        return Vec::new();
    };
    let mut args = Vec::new();
    let mut current = String::new();
    let mut quote: Option<char> = None;
    let mut chars = text[start + 1..].chars().peekable();
    while let Some(c) = chars.next() {
        match (quote, c) {
            (Some(q), c) if c == q => {
                if chars.peek() == Some(&q) {
                    current.push(q);
                    current.push(q);
                    chars.next();
                } else {
                    quote = None;
                    current.push(c);
                }
            }
            (Some(_), '\\') => {
                current.push(c);
                if let Some(n) = chars.next() {
                    current.push(n);
                }
            }
            (Some(_), c) => current.push(c),
            (None, '\'' | '"') => {
                quote = Some(c);
                current.push(c);
            }
            (None, ',') => args.push(std::mem::take(&mut current)),
            (None, ')') => break,
            (None, c) => current.push(c),
        }
    }
    args.push(current);
    args
}

fn quoted_list(args: &[String]) -> Vec<String> {
    args.iter()
        .map(|a| {
            let a = a.trim();
            let q = a.chars().next().unwrap_or('\'');
            let inner = a
                .strip_prefix(q)
                .and_then(|s| s.strip_suffix(q))
                .unwrap_or(a);
            inner
                .replace(&format!("{q}{q}"), &q.to_string())
                .replace("\\\\", "\\")
        })
        .collect()
}

/// Maps a MySQL type to the cdc-api type (Flink CDC's mapping, reference section 3).
pub(crate) fn to_data_type(t: &MySqlType, nullable: bool, tinyint1_as_boolean: bool) -> DataType {
    use DataTypeKind as K;
    let kind = match t {
        MySqlType::TinyInt {
            unsigned: false,
            width: Some(1),
        } if tinyint1_as_boolean => K::Boolean,
        MySqlType::Bool | MySqlType::Bit(1) => K::Boolean,
        MySqlType::TinyInt {
            unsigned: false, ..
        } => K::TinyInt,
        MySqlType::TinyInt { unsigned: true, .. } | MySqlType::SmallInt { unsigned: false } => {
            K::SmallInt
        }
        MySqlType::SmallInt { unsigned: true }
        | MySqlType::MediumInt { .. }
        | MySqlType::Int { unsigned: false }
        | MySqlType::Year => K::Int,
        MySqlType::Int { unsigned: true } | MySqlType::BigInt { unsigned: false } => K::BigInt,
        MySqlType::BigInt { unsigned: true } => K::Decimal {
            precision: 20,
            scale: 0,
        },
        MySqlType::Decimal { precision, scale } if *precision <= 38 => K::Decimal {
            precision: *precision,
            scale: *scale,
        },
        MySqlType::Decimal { .. } => K::String,
        MySqlType::Float { explicit: false } => K::Float,
        MySqlType::Float { explicit: true } | MySqlType::Double => K::Double,
        MySqlType::Bit(n) => K::Binary {
            length: n.div_ceil(8),
        },
        MySqlType::Char(n) => K::Char { length: *n },
        MySqlType::VarChar(n) => K::VarChar { length: *n },
        MySqlType::Binary(n) => K::Binary { length: *n },
        MySqlType::VarBinary(n) => K::VarBinary { length: *n },
        MySqlType::Blob => K::Bytes,
        MySqlType::Text
        | MySqlType::Enum(_)
        | MySqlType::Set(_)
        | MySqlType::Geometry
        | MySqlType::Other(_) => K::String,
        MySqlType::Json => K::Json,
        MySqlType::Date => K::Date,
        MySqlType::Time(p) => K::Time { precision: *p },
        MySqlType::DateTime(p) => K::Timestamp { precision: *p },
        MySqlType::Timestamp(p) => K::TimestampLtz { precision: *p },
    };
    DataType::new(kind).with_nullable(nullable)
}

#[cfg(test)]
mod tests {
    use super::*;
    use DataTypeKind as K;

    fn map(text: &str) -> DataTypeKind {
        to_data_type(&parse_column_type(text), true, true).kind
    }

    #[test]
    fn reference_section_3_mapping() {
        let cases = [
            ("tinyint(1)", K::Boolean),
            ("tinyint(4)", K::TinyInt),
            ("tinyint(3) unsigned", K::SmallInt),
            ("smallint(6)", K::SmallInt),
            ("smallint(5) unsigned", K::Int),
            ("mediumint(8) unsigned", K::Int),
            ("int(11)", K::Int),
            ("int(10) unsigned", K::BigInt),
            ("bigint(20)", K::BigInt),
            (
                "bigint(20) unsigned",
                K::Decimal {
                    precision: 20,
                    scale: 0,
                },
            ),
            ("decimal(65,30)", K::String),
            (
                "decimal(38,10)",
                K::Decimal {
                    precision: 38,
                    scale: 10,
                },
            ),
            ("float", K::Float),
            ("float(10,2)", K::Double),
            ("double unsigned zerofill", K::Double),
            ("bit(1)", K::Boolean),
            ("bit(12)", K::Binary { length: 2 }),
            ("char(3)", K::Char { length: 3 }),
            ("varchar(32)", K::VarChar { length: 32 }),
            ("longtext", K::String),
            ("binary(4)", K::Binary { length: 4 }),
            ("varbinary(9)", K::VarBinary { length: 9 }),
            ("mediumblob", K::Bytes),
            ("enum('a','b')", K::String),
            ("set('x','y')", K::String),
            ("year(4)", K::Int),
            ("date", K::Date),
            ("time(3)", K::Time { precision: 3 }),
            ("datetime(6)", K::Timestamp { precision: 6 }),
            ("timestamp(2)", K::TimestampLtz { precision: 2 }),
            ("json", K::Json),
            ("point", K::String),
        ];
        for (text, expected) in cases {
            assert_eq!(map(text), expected, "{text}");
        }
        assert_eq!(
            to_data_type(&parse_column_type("tinyint(1)"), true, false).kind,
            K::TinyInt
        );
    }

    #[test]
    fn enum_labels_keep_quotes_and_commas() {
        assert_eq!(
            parse_column_type("enum('a,b','it''s','x')"),
            MySqlType::Enum(vec!["a,b".into(), "it's".into(), "x".into()])
        );
    }

    #[test]
    fn charsets_convert_to_utf8() {
        assert_eq!(
            Charset::Latin1.decode(&[0x63, 0x61, 0x66, 0xe9]).unwrap(),
            "café"
        );
        assert_eq!(
            Charset::Gbk.decode(&[0xc4, 0xe3, 0xba, 0xc3]).unwrap(),
            "你好"
        );
        assert!(Charset::Utf8.decode(&[0xff]).is_err());
    }
}
