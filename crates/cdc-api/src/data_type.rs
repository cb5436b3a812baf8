use std::fmt;

use serde::{Deserialize, Serialize};

/// A column type together with its nullability.
///
/// The family follows Flink CDC's `DataTypes` so that schemas map one to one. Lengths are in
/// characters for `CHAR`/`VARCHAR` (as in the source database) and in bytes for
/// `BINARY`/`VARBINARY`; a sink converts them to what its target counts.
///
/// ```
/// use cdc_api::{DataType, DataTypeKind};
/// let t = DataType::new(DataTypeKind::Decimal { precision: 12, scale: 2 }).not_null();
/// assert_eq!(t.to_string(), "DECIMAL(12, 2) NOT NULL");
/// assert!(!t.nullable);
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct DataType {
    /// What values the column holds.
    pub kind: DataTypeKind,
    /// Whether the column accepts NULL.
    pub nullable: bool,
}

/// The kind of a [`DataType`], without nullability.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[non_exhaustive]
pub enum DataTypeKind {
    /// `true` / `false`.
    Boolean,
    /// 8-bit signed integer.
    TinyInt,
    /// 16-bit signed integer.
    SmallInt,
    /// 32-bit signed integer.
    Int,
    /// 64-bit signed integer.
    BigInt,
    /// Exact decimal with `precision` digits in all, `scale` of them after the point.
    /// Precision goes up to 65 (MySQL's limit).
    Decimal {
        /// Total number of digits, 1 to 65.
        precision: u8,
        /// Digits after the decimal point, 0 to `precision`.
        scale: u8,
    },
    /// 32-bit IEEE float.
    Float,
    /// 64-bit IEEE float.
    Double,
    /// Fixed-length text of `length` characters.
    Char {
        /// Length in characters.
        length: u32,
    },
    /// Variable-length text of at most `length` characters.
    VarChar {
        /// Maximum length in characters.
        length: u32,
    },
    /// Text without a declared length limit (TEXT, LONGTEXT, ENUM, ...).
    String,
    /// Fixed-length bytes.
    Binary {
        /// Length in bytes.
        length: u32,
    },
    /// Variable-length bytes of at most `length`.
    VarBinary {
        /// Maximum length in bytes.
        length: u32,
    },
    /// Bytes without a declared length limit (BLOB, ...).
    Bytes,
    /// A calendar date.
    Date,
    /// A time of day (or, for MySQL `TIME`, a signed duration) with `precision` fraction digits.
    Time {
        /// Fraction digits, 0 to 6.
        precision: u8,
    },
    /// A date and time without a zone (MySQL `DATETIME`).
    Timestamp {
        /// Fraction digits, 0 to 6.
        precision: u8,
    },
    /// An instant, shown in the session's local time zone (MySQL `TIMESTAMP`).
    TimestampLtz {
        /// Fraction digits, 0 to 6.
        precision: u8,
    },
    /// A date and time with an explicit offset.
    TimestampTz {
        /// Fraction digits, 0 to 6.
        precision: u8,
    },
    /// A list of elements of one type.
    Array(Box<DataType>),
    /// Key-value pairs.
    Map {
        /// Type of the keys.
        key: Box<DataType>,
        /// Type of the values.
        value: Box<DataType>,
    },
    /// A nested record of named fields.
    Row(Vec<RowField>),
    /// JSON text (MySQL `JSON`); kept apart from `String` so sinks can pick a JSON column.
    Json,
}

/// One named field of a [`DataTypeKind::Row`].
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct RowField {
    /// The field name.
    pub name: String,
    /// The field type.
    pub data_type: DataType,
}

impl DataType {
    /// A nullable type of the given kind.
    pub fn new(kind: DataTypeKind) -> Self {
        Self {
            kind,
            nullable: true,
        }
    }

    /// The same type without NULLs allowed.
    pub fn not_null(mut self) -> Self {
        self.nullable = false;
        self
    }

    /// The same type with the given nullability.
    pub fn with_nullable(mut self, nullable: bool) -> Self {
        self.nullable = nullable;
        self
    }

    /// Whether this type holds text.
    pub fn is_text(&self) -> bool {
        matches!(
            self.kind,
            DataTypeKind::Char { .. } | DataTypeKind::VarChar { .. } | DataTypeKind::String
        )
    }
}

impl fmt::Display for DataTypeKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Boolean => f.write_str("BOOLEAN"),
            Self::TinyInt => f.write_str("TINYINT"),
            Self::SmallInt => f.write_str("SMALLINT"),
            Self::Int => f.write_str("INT"),
            Self::BigInt => f.write_str("BIGINT"),
            Self::Decimal { precision, scale } => write!(f, "DECIMAL({precision}, {scale})"),
            Self::Float => f.write_str("FLOAT"),
            Self::Double => f.write_str("DOUBLE"),
            Self::Char { length } => write!(f, "CHAR({length})"),
            Self::VarChar { length } => write!(f, "VARCHAR({length})"),
            Self::String => f.write_str("STRING"),
            Self::Binary { length } => write!(f, "BINARY({length})"),
            Self::VarBinary { length } => write!(f, "VARBINARY({length})"),
            Self::Bytes => f.write_str("BYTES"),
            Self::Date => f.write_str("DATE"),
            Self::Time { precision } => write!(f, "TIME({precision})"),
            Self::Timestamp { precision } => write!(f, "TIMESTAMP({precision})"),
            Self::TimestampLtz { precision } => write!(f, "TIMESTAMP_LTZ({precision})"),
            Self::TimestampTz { precision } => write!(f, "TIMESTAMP_TZ({precision})"),
            Self::Array(e) => write!(f, "ARRAY<{e}>"),
            Self::Map { key, value } => write!(f, "MAP<{key}, {value}>"),
            Self::Row(fields) => {
                f.write_str("ROW<")?;
                for (i, field) in fields.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "`{}` {}", field.name, field.data_type)?;
                }
                f.write_str(">")
            }
            Self::Json => f.write_str("JSON"),
        }
    }
}

impl fmt::Display for DataType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.kind)?;
        if !self.nullable {
            f.write_str(" NOT NULL")?;
        }
        Ok(())
    }
}
