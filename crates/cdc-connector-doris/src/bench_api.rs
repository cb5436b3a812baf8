//! Entry points for the benchmarks in `crates/cdc-bench` (Stream Load body encoding).
//!
//! Not an API: hidden from the docs, changed whenever the internals change. A thin wrapper
//! over the sink's own encoder, so a figure measured here is the figure of the real path.
#![doc(hidden)]

use cdc_api::{Schema, Value};
use cdc_stream_load::Zone;

use crate::encoder::RowEncoder;

/// The Doris sink's row encoder: rows of one table as JSON lines (`read_json_by_line`).
pub struct DorisJsonEncoder(RowEncoder);

impl DorisJsonEncoder {
    /// An encoder for rows of `schema`, rendering TIMESTAMP_LTZ in `zone`.
    pub fn new(schema: &Schema, zone: Zone) -> Self {
        Self(RowEncoder::new(schema, zone))
    }

    /// Appends one row and a newline to `out`; `delete_sign` adds `__DORIS_DELETE_SIGN__`
    /// as the sink does for UNIQUE KEY tables (`Some(false)` for an upsert).
    pub fn encode(&mut self, out: &mut Vec<u8>, row: &[Value], delete_sign: Option<bool>) {
        self.0.encode(out, row, delete_sign);
    }
}
