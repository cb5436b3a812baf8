//! # cdc-runtime: the engine you embed
//!
//! Reads a Flink-CDC-style pipeline file ([`PipelineDefinition`]), checks it against the
//! connector factories of a [`ConnectorRegistry`](cdc_api::ConnectorRegistry), builds the
//! source and the sink, and runs them ([`Pipeline`]) with bounded channels between them,
//! checkpoints at a fixed interval, schema changes applied in order, and the state kept in a
//! [`StateStore`] so a restart resumes where the last checkpoint left off.
//!
//! The state is durable by default: `pipeline.state.dir`, else a directory derived from the
//! pipeline's name ([`default_state_dir`]); `state.dir: none` keeps it in memory. One run at
//! a time owns it (a lock and an owner epoch); tests that want nothing on disk pass a
//! [`MemoryStateStore`] to [`Pipeline::with_state_store`].
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use cdc_runtime::{Pipeline, PipelineDefinition};
//! let registry = cdc_api::ConnectorRegistry::new(); // register connectors here
//! let definition = PipelineDefinition::from_yaml_file("pipeline.yaml".as_ref())?;
//! let pipeline = Pipeline::build(&definition, &registry)?;
//! let summary = pipeline.run(std::future::pending()).await?;
//! println!("{} changes", summary.data_changes);
//! # Ok(()) }
//! ```
#![warn(missing_docs)]

pub mod bench_api;
mod definition;
mod endpoint;
mod error;
mod metrics;
mod pipeline;
mod pipeline_options;
mod restart;
mod route;
mod schema_coordinator;
pub mod secrets;
mod state;
mod suggest;
mod transform;

pub use definition::{ConnectorBlock, PipelineDefinition, SinkBlock};
pub use error::RuntimeError;
pub use metrics::PipelineMetrics;
pub use pipeline::{Pipeline, PipelineHandle, RunSummary};
pub use pipeline_options::{PipelineSettings, SchemaChangeBehavior, pipeline_options};
pub use restart::RestartStrategy;
pub use route::{route_targets, transform_changes_rows};
pub use state::{
    Checkpoint, CommittedPosition, FileStateStore, MEMORY_STATE, MemoryStateStore, Ownership,
    SchemaState, StateLocation, StateStore, TargetSchemas, default_state_dir,
};
pub use state::{ObjectStateStore, StoreLimits};
pub use suggest::nearest;
