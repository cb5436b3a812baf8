//! # cdc-stream-load
//!
//! What the Doris and StarRocks sinks share because it really is the same in both: the
//! load driver (buffers, loads in flight, labels, retries, recovery, the exactly-once
//! bookkeeping: [`driver`]), how a value and a row's fields are written into a JSON Stream
//! Load body, the pipeline's time zone, and following an FE's redirect over HTTP(S) without
//! leaking credentials. The HTTP calls, the row encodings and DDL differ and stay in each
//! sink, behind [`driver::LoadProtocol`].
#![warn(missing_docs)]

pub mod dead_letter;
pub mod driver;
pub mod http;
mod json;
pub mod label;
mod node;
mod row;

/// The pipeline's `local-time-zone`; the one zone type lives in `cdc-api` so sources parse
/// zones by the same rules.
pub use cdc_api::Zone;
pub use json::{write_json_string, write_value};
pub use node::{Password, parse_node};
pub use row::RowFields;
