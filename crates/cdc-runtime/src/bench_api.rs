//! Entry points for the benchmarks in `crates/cdc-bench` (transform evaluation).
//!
//! Not an API: hidden from the docs, changed whenever the internals change. A thin wrapper
//! over the pipeline's own transform stage, so a figure measured here is the figure of the
//! real path.
#![doc(hidden)]

use std::collections::BTreeMap;

use cdc_api::Event;

use crate::RuntimeError;
use crate::transform::Transformer;

/// The `transform` stage of a pipeline: parses the rules once, then rewrites batches.
pub struct Transform(Transformer);

impl Transform {
    /// Parses `rules` (each the keys of one `transform` entry: `source-table`,
    /// `projection`, `filter`, ...) with `local_time_zone` as the session zone.
    pub fn new(
        rules: &[BTreeMap<String, String>],
        local_time_zone: &str,
    ) -> Result<Self, RuntimeError> {
        Transformer::new(rules, local_time_zone, "bench").map(Self)
    }

    /// Transforms one batch: schema changes re-derive the output schema, rows are filtered
    /// and projected.
    pub fn apply(&mut self, events: Vec<Event>) -> cdc_api::Result<Vec<Event>> {
        self.0.apply(events)
    }
}
