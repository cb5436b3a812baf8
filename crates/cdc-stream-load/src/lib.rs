//! # cdc-stream-load
//!
//! What the Doris and StarRocks sinks share because it really is the same in both: how a
//! value and a row's fields are written into a JSON Stream Load body, and the pipeline's
//! time zone. Protocols,
//! labels, transactions and DDL differ and stay in each sink.
#![warn(missing_docs)]

mod json;
mod row;
mod zone;

pub use json::{write_json_string, write_value};
pub use row::RowFields;
pub use zone::Zone;
