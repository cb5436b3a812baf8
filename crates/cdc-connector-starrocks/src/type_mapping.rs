//! CDC types to StarRocks column types (reference section 5, with the changes below).
//!
//! StarRocks counts CHAR and VARCHAR lengths in UTF-8 bytes while the source counts
//! characters, so lengths are multiplied by `char_bytes` (4 unless `unicode-char.max-bytes`
//! is set: Flink's 3 cannot hold emoji, FLINK-39759). DATETIME takes no scale but keeps
//! microseconds. Key columns cannot be DECIMAL, FLOAT, DOUBLE or JSON, and CHAR keys are
//! made VARCHAR as Flink CDC does. Where Flink CDC refuses a type we keep the data as text:
//! BINARY / VARBINARY / BYTES as base64, ARRAY / MAP / ROW as JSON text.

use cdc_api::{DataType, DataTypeKind};

/// Longest StarRocks CHAR, in bytes.
pub(crate) const MAX_CHAR_BYTES: u64 = 255;
/// Longest StarRocks VARCHAR, in bytes.
pub(crate) const MAX_VARCHAR_BYTES: u64 = 1_048_576;
/// Largest DECIMAL precision.
pub(crate) const MAX_DECIMAL_PRECISION: u8 = 38;

fn varchar(bytes: u64) -> String {
    format!("VARCHAR({})", bytes.clamp(1, MAX_VARCHAR_BYTES))
}

/// The StarRocks type of a column; `is_key` for primary-key columns.
pub(crate) fn starrocks_type(data_type: &DataType, is_key: bool, char_bytes: u32) -> String {
    let k = u64::from(char_bytes.max(1));
    match &data_type.kind {
        DataTypeKind::Boolean => "BOOLEAN".into(),
        DataTypeKind::TinyInt => "TINYINT".into(),
        DataTypeKind::SmallInt => "SMALLINT".into(),
        DataTypeKind::Int => "INT".into(),
        DataTypeKind::BigInt => "BIGINT".into(),
        // A float key is kept as its text.
        DataTypeKind::Float if is_key => varchar(32),
        DataTypeKind::Double if is_key => varchar(32),
        DataTypeKind::Float => "FLOAT".into(),
        DataTypeKind::Double => "DOUBLE".into(),
        DataTypeKind::Decimal { precision, scale }
            if !is_key && *precision <= MAX_DECIMAL_PRECISION =>
        {
            format!("DECIMAL({},{})", (*precision).max(1), scale)
        }
        // Sign, digits and (with a scale) the point.
        DataTypeKind::Decimal { precision, scale } => {
            varchar(u64::from(*precision) + if *scale > 0 { 2 } else { 1 })
        }
        DataTypeKind::Char { length } => {
            let bytes = u64::from((*length).max(1)) * k;
            if bytes <= MAX_CHAR_BYTES && !is_key {
                format!("CHAR({bytes})")
            } else {
                varchar(bytes)
            }
        }
        DataTypeKind::VarChar { length } => varchar(u64::from((*length).max(1)) * k),
        DataTypeKind::String => varchar(MAX_VARCHAR_BYTES),
        DataTypeKind::Date => "DATE".into(),
        // `-838:59:59` plus a point and the fraction.
        DataTypeKind::Time { precision } => varchar(match precision {
            0 => 10,
            p => 11 + u64::from(*p),
        }),
        DataTypeKind::Timestamp { .. }
        | DataTypeKind::TimestampLtz { .. }
        | DataTypeKind::TimestampTz { .. } => "DATETIME".into(),
        DataTypeKind::Binary { length } | DataTypeKind::VarBinary { length } => {
            varchar(u64::from((*length).max(1)).div_ceil(3) * 4)
        }
        DataTypeKind::Json if !is_key => "JSON".into(),
        _ => varchar(MAX_VARCHAR_BYTES),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(kind: DataTypeKind) -> DataType {
        DataType::new(kind)
    }

    #[test]
    fn value_columns() {
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
                "DECIMAL(12,2)",
            ),
            (
                DataTypeKind::Decimal {
                    precision: 38,
                    scale: 0,
                },
                "DECIMAL(38,0)",
            ),
            (
                DataTypeKind::Decimal {
                    precision: 65,
                    scale: 30,
                },
                "VARCHAR(67)",
            ),
            (DataTypeKind::Char { length: 10 }, "CHAR(40)"),
            (DataTypeKind::Char { length: 64 }, "VARCHAR(256)"),
            (DataTypeKind::VarChar { length: 20 }, "VARCHAR(80)"),
            (
                DataTypeKind::VarChar { length: 300_000 },
                "VARCHAR(1048576)",
            ),
            (DataTypeKind::String, "VARCHAR(1048576)"),
            (DataTypeKind::Date, "DATE"),
            (DataTypeKind::Time { precision: 0 }, "VARCHAR(10)"),
            (DataTypeKind::Time { precision: 3 }, "VARCHAR(14)"),
            (DataTypeKind::Timestamp { precision: 6 }, "DATETIME"),
            (DataTypeKind::TimestampLtz { precision: 3 }, "DATETIME"),
            (DataTypeKind::VarBinary { length: 16 }, "VARCHAR(24)"),
            (DataTypeKind::Bytes, "VARCHAR(1048576)"),
            (DataTypeKind::Json, "JSON"),
            (
                DataTypeKind::Array(Box::new(t(DataTypeKind::Int))),
                "VARCHAR(1048576)",
            ),
        ];
        for (kind, want) in cases {
            assert_eq!(starrocks_type(&t(kind.clone()), false, 4), want, "{kind}");
        }
        assert_eq!(
            starrocks_type(&t(DataTypeKind::VarChar { length: 20 }), false, 3),
            "VARCHAR(60)"
        );
    }

    #[test]
    fn key_columns_avoid_unkeyable_types() {
        let key = |k| starrocks_type(&t(k), true, 4);
        assert_eq!(
            key(DataTypeKind::Decimal {
                precision: 10,
                scale: 2
            }),
            "VARCHAR(12)"
        );
        assert_eq!(
            key(DataTypeKind::Decimal {
                precision: 10,
                scale: 0
            }),
            "VARCHAR(11)"
        );
        assert_eq!(key(DataTypeKind::Char { length: 10 }), "VARCHAR(40)");
        assert_eq!(key(DataTypeKind::Double), "VARCHAR(32)");
        assert_eq!(key(DataTypeKind::Json), "VARCHAR(1048576)");
        assert_eq!(key(DataTypeKind::BigInt), "BIGINT");
    }
}
