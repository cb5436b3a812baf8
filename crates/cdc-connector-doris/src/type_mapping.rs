//! CDC types to Doris column types.
//!
//! Doris counts CHAR and VARCHAR lengths in UTF-8 bytes while the source counts characters,
//! and utf8mb4 text takes up to 4 bytes a character, so lengths are multiplied by 4 (Flink
//! CDC uses 3, which cannot hold emoji: FLINK-39759).

use cdc_api::{DataType, DataTypeKind};

/// Longest Doris CHAR, in bytes.
pub(crate) const MAX_CHAR_BYTES: u64 = 255;
/// Longest Doris VARCHAR, in bytes.
pub(crate) const MAX_VARCHAR_BYTES: u64 = 65533;
/// Largest DECIMAL precision Doris accepts without `enable_decimal256`.
pub(crate) const MAX_DECIMAL_PRECISION: u8 = 38;
/// Bytes one utf8mb4 character may take.
const BYTES_PER_CHAR: u64 = 4;

/// The Doris type of a value column.
pub(crate) fn doris_type(data_type: &DataType) -> String {
    match &data_type.kind {
        DataTypeKind::Boolean => "BOOLEAN".into(),
        DataTypeKind::TinyInt => "TINYINT".into(),
        DataTypeKind::SmallInt => "SMALLINT".into(),
        DataTypeKind::Int => "INT".into(),
        DataTypeKind::BigInt => "BIGINT".into(),
        DataTypeKind::Float => "FLOAT".into(),
        DataTypeKind::Double => "DOUBLE".into(),
        DataTypeKind::Decimal { precision, scale } if *precision <= MAX_DECIMAL_PRECISION => {
            format!("DECIMAL({}, {})", (*precision).max(1), scale)
        }
        DataTypeKind::Char { length } => {
            let bytes = u64::from((*length).max(1)) * BYTES_PER_CHAR;
            if bytes <= MAX_CHAR_BYTES {
                format!("CHAR({bytes})")
            } else {
                varchar_or_string(bytes)
            }
        }
        DataTypeKind::VarChar { length } => {
            varchar_or_string(u64::from((*length).max(1)) * BYTES_PER_CHAR)
        }
        DataTypeKind::Date => "DATE".into(),
        DataTypeKind::Timestamp { precision }
        | DataTypeKind::TimestampLtz { precision }
        | DataTypeKind::TimestampTz { precision } => datetime(*precision),
        DataTypeKind::Json => "JSON".into(),
        // Text renderings: decimals beyond 38 digits, TIME (Doris has none), base64 bytes,
        // and nested values as JSON text.
        _ => "STRING".into(),
    }
}

/// The Doris type of a key column: Doris cannot key STRING, FLOAT, DOUBLE or JSON, so those
/// become a VARCHAR long enough for the value's text.
pub(crate) fn doris_key_type(data_type: &DataType) -> String {
    let value_type = doris_type(data_type);
    if is_keyable(&value_type) {
        return value_type;
    }
    let bytes = match &data_type.kind {
        // Sign, point and digits.
        DataTypeKind::Decimal { precision, .. } => u64::from(*precision) + 2,
        DataTypeKind::Float | DataTypeKind::Double => 32,
        // `-838:59:59.999999`
        DataTypeKind::Time { .. } => 17,
        DataTypeKind::Binary { length } | DataTypeKind::VarBinary { length } => {
            u64::from(*length).div_ceil(3) * 4
        }
        _ => MAX_VARCHAR_BYTES,
    };
    format!("VARCHAR({})", bytes.clamp(1, MAX_VARCHAR_BYTES))
}

/// Whether Doris accepts a column of this (rendered) type as a key column.
pub(crate) fn is_keyable(doris_type: &str) -> bool {
    !matches!(doris_type, "STRING" | "FLOAT" | "DOUBLE" | "JSON")
}

/// Whether a column of this type may have a DEFAULT in Doris DDL.
pub(crate) fn takes_default(doris_type: &str) -> bool {
    !matches!(doris_type, "STRING" | "JSON")
}

/// Whether this is a DATE or DATETIME column (auto partition and CURRENT_TIMESTAMP).
pub(crate) fn is_temporal(doris_type: &str) -> bool {
    doris_type == "DATE" || doris_type.starts_with("DATETIME")
}

fn varchar_or_string(bytes: u64) -> String {
    if bytes <= MAX_VARCHAR_BYTES {
        format!("VARCHAR({bytes})")
    } else {
        "STRING".into()
    }
}

fn datetime(precision: u8) -> String {
    match precision.min(6) {
        0 => "DATETIME".into(),
        p => format!("DATETIME({p})"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cdc_api::RowField;

    fn t(kind: DataTypeKind) -> DataType {
        DataType::new(kind)
    }

    #[test]
    fn scalar_types() {
        let cases = [
            (DataTypeKind::Boolean, "BOOLEAN"),
            (DataTypeKind::TinyInt, "TINYINT"),
            (DataTypeKind::SmallInt, "SMALLINT"),
            (DataTypeKind::Int, "INT"),
            (DataTypeKind::BigInt, "BIGINT"),
            (DataTypeKind::Float, "FLOAT"),
            (DataTypeKind::Double, "DOUBLE"),
            (
                DataTypeKind::Decimal {
                    precision: 12,
                    scale: 2,
                },
                "DECIMAL(12, 2)",
            ),
            (
                DataTypeKind::Decimal {
                    precision: 38,
                    scale: 10,
                },
                "DECIMAL(38, 10)",
            ),
            (
                DataTypeKind::Decimal {
                    precision: 39,
                    scale: 0,
                },
                "STRING",
            ),
            (
                DataTypeKind::Decimal {
                    precision: 65,
                    scale: 30,
                },
                "STRING",
            ),
            (DataTypeKind::Date, "DATE"),
            (DataTypeKind::Timestamp { precision: 0 }, "DATETIME"),
            (DataTypeKind::Timestamp { precision: 3 }, "DATETIME(3)"),
            (DataTypeKind::TimestampLtz { precision: 6 }, "DATETIME(6)"),
            (DataTypeKind::TimestampTz { precision: 9 }, "DATETIME(6)"),
            (DataTypeKind::Time { precision: 3 }, "STRING"),
            (DataTypeKind::Binary { length: 16 }, "STRING"),
            (DataTypeKind::VarBinary { length: 16 }, "STRING"),
            (DataTypeKind::Bytes, "STRING"),
            (DataTypeKind::String, "STRING"),
            (DataTypeKind::Json, "JSON"),
            (
                DataTypeKind::Array(Box::new(t(DataTypeKind::Int))),
                "STRING",
            ),
            (
                DataTypeKind::Map {
                    key: Box::new(t(DataTypeKind::String)),
                    value: Box::new(t(DataTypeKind::Int)),
                },
                "STRING",
            ),
            (
                DataTypeKind::Row(vec![RowField {
                    name: "a".into(),
                    data_type: t(DataTypeKind::Int),
                }]),
                "STRING",
            ),
        ];
        for (kind, want) in cases {
            assert_eq!(doris_type(&t(kind.clone())), want, "{kind}");
        }
    }

    #[test]
    fn text_lengths_fit_utf8mb4() {
        let char_of = |n| doris_type(&t(DataTypeKind::Char { length: n }));
        let varchar_of = |n| doris_type(&t(DataTypeKind::VarChar { length: n }));
        assert_eq!(char_of(10), "CHAR(40)");
        assert_eq!(char_of(63), "CHAR(252)");
        assert_eq!(char_of(64), "VARCHAR(256)");
        assert_eq!(char_of(255), "VARCHAR(1020)");
        assert_eq!(varchar_of(0), "VARCHAR(4)");
        assert_eq!(varchar_of(255), "VARCHAR(1020)");
        assert_eq!(varchar_of(16383), "VARCHAR(65532)");
        assert_eq!(varchar_of(16384), "STRING");
        assert_eq!(varchar_of(65535), "STRING");
    }

    #[test]
    fn key_columns_avoid_unkeyable_types() {
        assert_eq!(doris_key_type(&t(DataTypeKind::String)), "VARCHAR(65533)");
        assert_eq!(doris_key_type(&t(DataTypeKind::Double)), "VARCHAR(32)");
        assert_eq!(
            doris_key_type(&t(DataTypeKind::Decimal {
                precision: 50,
                scale: 2
            })),
            "VARCHAR(52)"
        );
        assert_eq!(
            doris_key_type(&t(DataTypeKind::VarBinary { length: 16 })),
            "VARCHAR(24)"
        );
        assert_eq!(doris_key_type(&t(DataTypeKind::BigInt)), "BIGINT");
        assert_eq!(
            doris_key_type(&t(DataTypeKind::VarChar { length: 20 })),
            "VARCHAR(80)"
        );
        assert!(!is_keyable("JSON"));
        assert!(is_keyable("DATETIME(6)"));
    }
}
