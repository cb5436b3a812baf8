//! # cdc-api: the contract between the engine and its connectors
//!
//! This crate holds everything a connector author needs and nothing else: the data model
//! ([`TableId`], [`Schema`], [`DataType`], [`Value`]), the events that flow through a
//! pipeline ([`Event`], [`DataChangeEvent`], [`SchemaChangeEvent`]), the three connector
//! traits ([`Source`], [`Sink`], [`SchemaApplier`]), the factories that build them from
//! pipeline options ([`SourceFactory`], [`SinkFactory`], [`ConnectorRegistry`]) and the
//! error type ([`Error`]) that tells the runtime whether a failure is worth retrying.
//!
//! It knows nothing about MySQL, HTTP or YAML: those live in the connector crates and the
//! runtime. Everything here is object safe, so the runtime holds `Box<dyn Source>` and
//! `Box<dyn Sink>` and a user plugs in their own connector with one call:
//!
//! ```
//! use cdc_api::ConnectorRegistry;
//! let mut registry = ConnectorRegistry::new();
//! // registry.register_sink(MySinkFactory);
//! assert!(registry.sink_identifiers().is_empty());
//! ```
#![warn(missing_docs)]
#![deny(rustdoc::broken_intra_doc_links)]

mod checkpoint;
mod data_type;
mod error;
mod event;
mod factory;
mod options;
mod progress;
mod registry;
mod schema;
mod secret;
mod sink;
mod source;
mod table_id;
mod value;
mod zone;

pub use checkpoint::{CheckpointId, Committable, OwnerEpoch, Recovery, SourceOffset};
pub use data_type::{DataType, DataTypeKind, RowField};
pub use error::{BoxError, Error, Result};
pub use event::{
    ColumnPosition, DataChangeEvent, Event, OperationType, SchemaChangeEvent, SchemaChangeKind,
};
pub use factory::{ConfigOption, FactoryContext, SinkFactory, SinkParts, SourceFactory};
pub use options::{Options, parse_duration, parse_size};
pub use progress::{SinkStats, SourceProgress, TableSnapshotProgress};
pub use registry::ConnectorRegistry;
pub use schema::{Column, Schema};
pub use secret::Secret;
pub use sink::{SchemaApplier, Sink};
pub use source::Source;
pub use table_id::{TableId, table_selector_regex};
pub use value::{Date, Decimal, DecimalParseError, Time, Timestamp, Value};
pub use zone::Zone;
