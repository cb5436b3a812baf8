//! Rows to Stream Load bodies: one JSON array of objects (`strip_outer_array: true`), each
//! with `"__op"` (0 upsert, 1 delete), written straight into the caller's reusable buffer.
//!
//! Values are rendered the way Flink CDC's StarRocks sink leaves them in the target (see
//! docs/connectors/doris.md, "How values are written"): decimals exact (as JSON strings, so StarRocks never reads
//! them as doubles), DATETIME with all six fraction digits (StarRocks' DATETIME takes no
//! scale but stores microseconds), TIMESTAMP_LTZ in the pipeline's `local-time-zone`, TIME
//! as `HH:MM:SS` plus exactly its precision's digits, bytes as base64, nested values as
//! JSON text, NULL apart from the empty string.

use cdc_api::{Schema, Value};
use cdc_stream_load::RowFields;

use crate::config::Zone;

/// Encodes rows of one table schema as the objects of a JSON array.
pub(crate) struct RowEncoder {
    fields: RowFields,
}

impl RowEncoder {
    /// An encoder for rows of `schema`, rendering TIMESTAMP_LTZ in `zone`.
    pub(crate) fn new(schema: &Schema, zone: Zone) -> Self {
        Self {
            fields: RowFields::new(schema, zone),
        }
    }

    /// Appends one row to the JSON array in `out` (opening it when `out` is empty), with
    /// `"__op": 1` when `delete`, else `0`. Values beyond the schema are ignored and missing
    /// ones written as NULL. [`finish`] closes the array.
    pub(crate) fn encode(&mut self, out: &mut Vec<u8>, row: &[Value], delete: bool) {
        out.push(if out.is_empty() { b'[' } else { b',' });
        out.push(b'{');
        self.fields.write(out, row);
        if !self.fields.is_empty() {
            out.push(b',');
        }
        out.extend_from_slice(if delete {
            b"\"__op\":1}"
        } else {
            b"\"__op\":0}"
        });
    }
}

/// Closes the JSON array of a body [`RowEncoder::encode`] wrote (`[]` when empty).
pub(crate) fn finish(out: &mut Vec<u8>) {
    if out.is_empty() {
        out.push(b'[');
    }
    out.push(b']');
}

/// Value rendering is tested in cdc-stream-load; here the StarRocks framing.
#[cfg(test)]
mod tests {
    use super::*;
    use cdc_api::{Column, DataType, DataTypeKind};

    #[test]
    fn rows_form_one_array_with_op() {
        let schema = Schema::new(vec![
            Column::new("id", DataType::new(DataTypeKind::Int)),
            Column::new("v", DataType::new(DataTypeKind::String)),
        ]);
        let mut enc = RowEncoder::new(&schema, Zone::Fixed(0));
        let mut out = Vec::new();
        finish(&mut out);
        assert_eq!(out, b"[]");
        out.clear();
        enc.encode(
            &mut out,
            &[Value::Int(1), Value::String("a\"b".into())],
            false,
        );
        enc.encode(&mut out, &[Value::Int(2)], true);
        finish(&mut out);
        let text = String::from_utf8(out.clone()).unwrap();
        assert_eq!(
            text,
            "[{\"id\":1,\"v\":\"a\\\"b\",\"__op\":0},{\"id\":2,\"v\":null,\"__op\":1}]"
        );
        let parsed: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(parsed[1]["__op"], 1);
        // The buffer is reused: clearing keeps the capacity.
        let cap = out.capacity();
        out.clear();
        enc.encode(&mut out, &[Value::Int(3), Value::Null], false);
        assert_eq!(out.capacity(), cap);
    }
}
