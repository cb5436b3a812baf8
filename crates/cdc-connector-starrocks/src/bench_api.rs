//! Entry points for the benchmarks in `crates/cdc-bench` (Stream Load body encoding).
//!
//! Not an API: hidden from the docs, changed whenever the internals change. A thin wrapper
//! over the sink's own encoder, so a figure measured here is the figure of the real path.
#![doc(hidden)]

use cdc_api::{Schema, Value};
use cdc_stream_load::Zone;

use crate::encoder::{RowEncoder, finish};

/// The StarRocks sink's row encoder: rows of one table as one JSON array with `__op`.
pub struct StarRocksJsonEncoder(RowEncoder);

impl StarRocksJsonEncoder {
    /// An encoder for rows of `schema`, rendering TIMESTAMP_LTZ in `zone`.
    pub fn new(schema: &Schema, zone: Zone) -> Self {
        Self(RowEncoder::new(schema, zone))
    }

    /// Appends one row to the JSON array in `out` (`"__op": 1` when `delete`).
    pub fn encode(&mut self, out: &mut Vec<u8>, row: &[Value], delete: bool) {
        self.0.encode(out, row, delete);
    }

    /// Closes the JSON array of a body.
    pub fn finish(out: &mut Vec<u8>) {
        finish(out);
    }
}
