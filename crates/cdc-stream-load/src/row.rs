//! The members of one JSON object for a row: `"name":value` pairs in schema order, with
//! the keys escaped once per schema. Each sink adds its own framing (Doris: one object per
//! line with a delete sign; StarRocks: objects in an array with `__op`).

use cdc_api::{DataType, Schema, Value};

use crate::{Zone, write_json_string, write_value};

struct ColumnEncoding {
    /// `"name":`, escaped once.
    key: Vec<u8>,
    data_type: DataType,
}

/// Writes the fields of rows of one table schema.
pub struct RowFields {
    columns: Vec<ColumnEncoding>,
    zone: Zone,
    /// Nested values are built here before being written as one JSON string.
    scratch: Vec<u8>,
}

impl RowFields {
    /// A writer for rows of `schema`, rendering TIMESTAMP_LTZ in `zone`.
    pub fn new(schema: &Schema, zone: Zone) -> Self {
        let columns = schema
            .columns
            .iter()
            .map(|c| {
                let mut key = Vec::with_capacity(c.name.len() + 3);
                write_json_string(&mut key, &c.name);
                key.push(b':');
                ColumnEncoding {
                    key,
                    data_type: c.data_type.clone(),
                }
            })
            .collect();
        Self {
            columns,
            zone,
            scratch: Vec::new(),
        }
    }

    /// Whether the schema has no column.
    pub fn is_empty(&self) -> bool {
        self.columns.is_empty()
    }

    /// Appends `"a":1,"b":"x"` for `row` (no braces). Values beyond the schema are ignored
    /// and missing ones written as NULL.
    pub fn write(&mut self, out: &mut Vec<u8>, row: &[Value]) {
        let mut scratch = std::mem::take(&mut self.scratch);
        for (i, column) in self.columns.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            out.extend_from_slice(&column.key);
            let value = row.get(i).unwrap_or(&Value::Null);
            write_value(out, &mut scratch, value, &column.data_type, self.zone);
        }
        self.scratch = scratch;
    }
}

/// How every cdc-api value is rendered (docs/connectors/doris.md, "How values are written"), through a one-column row.
#[cfg(test)]
mod tests {
    use super::*;
    use cdc_api::{Column, DataTypeKind, Date, Decimal, RowField, Time, Timestamp};

    fn one(kind: DataTypeKind, value: Value) -> String {
        one_in(kind, value, Zone::Fixed(0))
    }

    fn one_in(kind: DataTypeKind, value: Value, zone: Zone) -> String {
        let schema = Schema::new(vec![Column::new("c", DataType::new(kind))]);
        let mut fields = RowFields::new(&schema, zone);
        let mut out = b"{".to_vec();
        fields.write(&mut out, &[value]);
        out.push(b'}');
        let text = String::from_utf8(out).unwrap();
        // The object must be valid JSON.
        serde_json::from_str::<serde_json::Value>(&text).unwrap();
        text.strip_prefix("{\"c\":")
            .and_then(|t| t.strip_suffix('}'))
            .unwrap()
            .to_string()
    }

    fn ts(y: u16, mo: u8, d: u8, h: u8, mi: u8, s: u8, us: u32) -> Timestamp {
        Timestamp::new(Date::new(y, mo, d), h, mi, s, us)
    }

    #[test]
    fn scalars() {
        assert_eq!(one(DataTypeKind::Int, Value::Null), "null");
        assert_eq!(one(DataTypeKind::Boolean, Value::Boolean(true)), "true");
        assert_eq!(one(DataTypeKind::Boolean, Value::Boolean(false)), "false");
        assert_eq!(one(DataTypeKind::TinyInt, Value::TinyInt(-128)), "-128");
        assert_eq!(one(DataTypeKind::SmallInt, Value::SmallInt(255)), "255");
        assert_eq!(one(DataTypeKind::Int, Value::Int(i32::MIN)), "-2147483648");
        assert_eq!(
            one(DataTypeKind::BigInt, Value::BigInt(i64::MAX)),
            "9223372036854775807"
        );
        assert_eq!(one(DataTypeKind::Float, Value::Float(1.1)), "1.1");
        assert_eq!(
            one(DataTypeKind::Double, Value::Double(-2.5e-300)),
            "-2.5e-300"
        );
        assert_eq!(one(DataTypeKind::Double, Value::Double(f64::NAN)), "null");
        assert_eq!(
            one(DataTypeKind::String, Value::String(String::new())),
            "\"\""
        );
        assert_eq!(
            one(
                DataTypeKind::String,
                Value::String("a\"b\\c\n\u{1}é😀".into())
            ),
            "\"a\\\"b\\\\c\\n\\u0001é😀\""
        );
    }

    #[test]
    fn decimals_are_exact_strings() {
        let d = |s: &str| Value::Decimal(Decimal::parse(s).unwrap());
        let dec = |p, s| DataTypeKind::Decimal {
            precision: p,
            scale: s,
        };
        assert_eq!(one(dec(12, 2), d("123.45")), "\"123.45\"");
        assert_eq!(one(dec(12, 3), d("1.5")), "\"1.500\"");
        assert_eq!(
            one(dec(38, 0), d("99999999999999999999999999999999999999")),
            "\"99999999999999999999999999999999999999\""
        );
        assert_eq!(one(dec(50, 1), d("34567892.1")), "\"34567892.1\"");
        assert_eq!(
            one(
                dec(65, 30),
                d("-12345678901234567890123456789012345.678901234567890123456789012345")
            ),
            "\"-12345678901234567890123456789012345.678901234567890123456789012345\""
        );
    }

    #[test]
    fn temporal_values() {
        assert_eq!(
            one(DataTypeKind::Date, Value::Date(Date::new(2024, 2, 29))),
            "\"2024-02-29\""
        );
        assert_eq!(
            one(DataTypeKind::Date, Value::Date(Date::new(0, 0, 0))),
            "null"
        );
        assert_eq!(
            one(
                DataTypeKind::Timestamp { precision: 6 },
                Value::Timestamp(ts(2020, 7, 17, 18, 0, 22, 123_456))
            ),
            "\"2020-07-17 18:00:22.123456\""
        );
        assert_eq!(
            one(
                DataTypeKind::Timestamp { precision: 0 },
                Value::Timestamp(ts(1, 1, 1, 0, 0, 0, 0))
            ),
            "\"0001-01-01 00:00:00.000000\""
        );
        let ltz = Value::TimestampLtz(1_595_008_822_123_456);
        assert_eq!(
            one(DataTypeKind::TimestampLtz { precision: 6 }, ltz.clone()),
            "\"2020-07-17 18:00:22.123456\""
        );
        let shanghai = Zone::parse("Asia/Shanghai").unwrap();
        assert_eq!(
            one_in(DataTypeKind::TimestampLtz { precision: 6 }, ltz, shanghai),
            "\"2020-07-18 02:00:22.123456\""
        );
        // Before the epoch.
        assert_eq!(
            one(
                DataTypeKind::TimestampLtz { precision: 3 },
                Value::TimestampLtz(-1)
            ),
            "\"1969-12-31 23:59:59.999999\""
        );
        let tz = Value::TimestampTz {
            timestamp: ts(2020, 1, 1, 8, 0, 0, 0),
            offset_seconds: 8 * 3600,
        };
        assert_eq!(
            one(DataTypeKind::TimestampTz { precision: 0 }, tz),
            "\"2020-01-01 00:00:00.000000\""
        );
        let t = Value::Time(Time::new(21, 49, 13, 123_456));
        assert_eq!(
            one(DataTypeKind::Time { precision: 3 }, t.clone()),
            "\"21:49:13.123\""
        );
        assert_eq!(one(DataTypeKind::Time { precision: 0 }, t), "\"21:49:13\"");
        let neg = Time {
            negative: true,
            hours: 838,
            minutes: 59,
            seconds: 59,
            micros: 0,
        };
        assert_eq!(
            one(DataTypeKind::Time { precision: 1 }, Value::Time(neg)),
            "\"-838:59:59.0\""
        );
    }

    #[test]
    fn bytes_json_and_nested() {
        assert_eq!(
            one(DataTypeKind::Bytes, Value::Bytes(vec![0x10])),
            "\"EA==\""
        );
        assert_eq!(one(DataTypeKind::Bytes, Value::Bytes(vec![])), "\"\"");
        assert_eq!(
            one(
                DataTypeKind::Binary { length: 3 },
                Value::Bytes(b"abc".to_vec())
            ),
            "\"YWJj\""
        );
        assert_eq!(
            one(DataTypeKind::Json, Value::Json("{\"a\": [1, 2]}".into())),
            "\"{\\\"a\\\": [1, 2]}\""
        );
        let arr = DataTypeKind::Array(Box::new(DataType::new(DataTypeKind::String)));
        assert_eq!(
            one(
                arr,
                Value::Array(vec![Value::String("x".into()), Value::Null])
            ),
            "\"[\\\"x\\\",null]\""
        );
        let map = DataTypeKind::Map {
            key: Box::new(DataType::new(DataTypeKind::Int)),
            value: Box::new(DataType::new(DataTypeKind::Decimal {
                precision: 5,
                scale: 2,
            })),
        };
        assert_eq!(
            one(
                map,
                Value::Map(vec![(
                    Value::Int(1),
                    Value::Decimal(Decimal::parse("1.5").unwrap())
                )])
            ),
            "\"{\\\"1\\\":\\\"1.50\\\"}\""
        );
        let row = DataTypeKind::Row(vec![RowField {
            name: "n".into(),
            data_type: DataType::new(DataTypeKind::Int),
        }]);
        assert_eq!(
            one(row, Value::Row(vec![Value::Int(7)])),
            "\"{\\\"n\\\":7}\""
        );
    }
}
