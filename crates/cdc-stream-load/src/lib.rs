//! # cdc-stream-load
//!
//! What the Doris and StarRocks sinks share because it really is the same in both: how a
//! value and a row's fields are written into a JSON Stream Load body, the pipeline's time
//! zone, and following an FE's redirect over HTTP(S) without leaking credentials.
//! Protocols, labels, transactions and DDL differ and stay in each sink.
#![warn(missing_docs)]

pub mod http;
mod json;
mod node;
mod row;
mod zone;

pub use json::{write_json_string, write_value};
pub use node::{Password, parse_node};
pub use row::RowFields;
pub use zone::Zone;
