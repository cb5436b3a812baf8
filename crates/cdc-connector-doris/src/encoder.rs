//! Rows to Stream Load bodies: one JSON object per line (`read_json_by_line`), written
//! straight into the caller's reusable buffer.
//!
//! Values are rendered the way Flink CDC's Doris sink leaves them in the target (see
//! docs/connectors/doris.md, "How values are written"): decimals exact (as JSON strings, so Doris never reads them as
//! doubles), DATETIME with six fraction digits, TIMESTAMP_LTZ in the pipeline's
//! `local-time-zone`, TIME as `HH:MM:SS` plus exactly its precision's digits, bytes as
//! base64, nested values as JSON text, NULL apart from the empty string.

use cdc_api::{Schema, Value};
use cdc_stream_load::RowFields;

use crate::config::Zone;

/// The hidden column that marks a row as deleted on UNIQUE KEY tables.
pub(crate) const DELETE_SIGN: &str = "__DORIS_DELETE_SIGN__";

/// Encodes rows of one table schema as JSON lines.
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

    /// Appends one row and a newline to `out`. `delete_sign` adds `__DORIS_DELETE_SIGN__`
    /// (`"1"` deletes the row with this key, `"0"` upserts). Values beyond the schema are
    /// ignored and missing ones written as NULL.
    pub(crate) fn encode(&mut self, out: &mut Vec<u8>, row: &[Value], delete_sign: Option<bool>) {
        out.push(b'{');
        self.fields.write(out, row);
        if let Some(delete) = delete_sign {
            if !self.fields.is_empty() {
                out.push(b',');
            }
            out.extend_from_slice(b"\"");
            out.extend_from_slice(DELETE_SIGN.as_bytes());
            out.extend_from_slice(if delete { b"\":\"1\"" } else { b"\":\"0\"" });
        }
        out.extend_from_slice(b"}\n");
    }
}

/// Value rendering is tested in cdc-stream-load; here the Doris framing.
#[cfg(test)]
mod tests {
    use super::*;
    use cdc_api::{Column, DataType, DataTypeKind};

    #[test]
    fn rows_carry_the_delete_sign_and_reuse_the_buffer() {
        let schema = Schema::new(vec![
            Column::new("id", DataType::new(DataTypeKind::Int)),
            Column::new("na\"me", DataType::new(DataTypeKind::String)),
        ]);
        let mut enc = RowEncoder::new(&schema, Zone::Fixed(0));
        let mut out = Vec::with_capacity(256);
        enc.encode(
            &mut out,
            &[Value::Int(1), Value::String("a".into())],
            Some(false),
        );
        enc.encode(&mut out, &[Value::Int(2)], Some(true));
        enc.encode(
            &mut out,
            &[Value::Int(3), Value::String(String::new()), Value::Int(9)],
            None,
        );
        assert_eq!(
            String::from_utf8(out.clone()).unwrap(),
            "{\"id\":1,\"na\\\"me\":\"a\",\"__DORIS_DELETE_SIGN__\":\"0\"}\n\
             {\"id\":2,\"na\\\"me\":null,\"__DORIS_DELETE_SIGN__\":\"1\"}\n\
             {\"id\":3,\"na\\\"me\":\"\"}\n"
        );
        let capacity = out.capacity();
        out.clear();
        enc.encode(&mut out, &[Value::Int(1), Value::String("a".into())], None);
        assert_eq!(out.capacity(), capacity);
    }
}
