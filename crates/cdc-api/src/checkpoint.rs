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

/// Which run owns a pipeline's state: a number the state store hands out when a run
/// claims the pipeline, larger than every epoch it handed out before and, in practice,
/// unique even between copies of one state directory (it is at least the claim's Unix time
/// in milliseconds).
///
/// Sinks put it into their transaction labels, so a run never reuses, adopts or aborts a
/// label of another run: an instance that lost ownership (paused, or started on a copy of
/// the state) cannot touch the live one's transactions. `OwnerEpoch::LEGACY` (0) names
/// labels written before epochs existed, which carry no epoch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct OwnerEpoch(pub u64);

impl OwnerEpoch {
    /// Labels written by versions without epochs (no epoch in the label).
    pub const LEGACY: Self = Self(0);
}

impl fmt::Display for OwnerEpoch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// What a sink learns before its first write, in [`Sink::recover`](crate::Sink::recover).
///
/// ```
/// use cdc_api::{CheckpointId, OwnerEpoch, Recovery};
/// let r = Recovery::new(Some(CheckpointId(7)), OwnerEpoch(1_765_000_000_000), vec![OwnerEpoch::LEGACY]);
/// assert_eq!(r.next_checkpoint(), CheckpointId(8));
/// assert_eq!(Recovery::fresh(OwnerEpoch(5)).next_checkpoint(), CheckpointId(1));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Recovery {
    /// The last durable checkpoint (its committables were already committed again through
    /// [`Sink::commit`](crate::Sink::commit)); `None` on a fresh start.
    pub last: Option<CheckpointId>,
    /// This run's owner epoch: put it into every transaction label this run creates.
    pub epoch: OwnerEpoch,
    /// Earlier runs whose work prepared after `last` may still wait in the target: abort
    /// what they prepared for [`next_checkpoint`](Self::next_checkpoint).
    pub earlier: Vec<OwnerEpoch>,
}

impl Recovery {
    /// A recovery after `last` for the run `epoch`.
    pub fn new(last: Option<CheckpointId>, epoch: OwnerEpoch, earlier: Vec<OwnerEpoch>) -> Self {
        Self {
            last,
            epoch,
            earlier,
        }
    }

    /// A first start: no checkpoint, no earlier run.
    pub fn fresh(epoch: OwnerEpoch) -> Self {
        Self::new(None, epoch, Vec::new())
    }

    /// The checkpoint this run prepares first: the one after `last`, or 1.
    pub fn next_checkpoint(&self) -> CheckpointId {
        self.last.map_or(CheckpointId(1), CheckpointId::next)
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
