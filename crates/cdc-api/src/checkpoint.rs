use std::fmt;

use serde::{Deserialize, Serialize};

/// The number of a checkpoint. Increases by one per checkpoint within a pipeline, also
/// across restarts, so sinks can derive unique, deterministic transaction labels from it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct CheckpointId(pub u64);

impl CheckpointId {
    /// The checkpoint after this one.
    pub fn next(self) -> Self {
        Self(self.0 + 1)
    }
}

impl fmt::Display for CheckpointId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// Where a source resumes: opaque to the runtime, meaningful to the source that made it.
///
/// Stored as JSON in the state store, so it survives upgrades as long as the source reads
/// its own older forms.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SourceOffset(pub serde_json::Value);

/// Something a sink prepared at a checkpoint and must commit once the checkpoint is durable
/// (for example a pre-committed Stream Load transaction with its label).
///
/// The runtime stores committables with the checkpoint and hands them back to
/// [`Sink::commit`](crate::Sink::commit), also after a restart, so committing must be
/// idempotent.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Committable(pub serde_json::Value);
