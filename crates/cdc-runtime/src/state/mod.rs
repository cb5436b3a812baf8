//! Where checkpoints live between runs, and which run owns them.
//!
//! One run at a time owns a pipeline's state: it [claims](StateStore::claim) it before it
//! touches the target and gets an [`OwnerEpoch`] larger than every earlier one; every save
//! is conditional on still owning it, and the runtime [verifies](StateStore::verify)
//! ownership before each commit or abort in the target. A run that lost ownership (a second
//! instance took over) therefore stops before it changes anything the owner relies on.

mod checksum;
mod file;
mod location;
mod memory;
mod object;

use async_trait::async_trait;
use cdc_api::{CheckpointId, Committable, OwnerEpoch, Schema, SourceOffset, TableId};
use serde::{Deserialize, Serialize};

pub use file::FileStateStore;
pub use location::{MEMORY_STATE, StateLocation, default_state_dir};
pub use memory::MemoryStateStore;
pub use object::{ObjectStateStore, StoreLimits};

use crate::RuntimeError;

/// The version of the checkpoint file format this build writes (it reads 1 to 3).
/// 2 added [`Checkpoint::schemas`]; 3 added [`Checkpoint::owner`],
/// [`Checkpoint::committed`] and the file's checksum.
const FORMAT_VERSION: u32 = 3;

/// One durable checkpoint: where the source resumes and what the sink must commit.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Checkpoint {
    /// File format version.
    pub format_version: u32,
    /// The pipeline's name when it was written.
    pub pipeline: String,
    /// The source connector type (`mysql`).
    pub source_type: String,
    /// The sink connector type (`doris`).
    pub sink_type: String,
    /// The checkpoint number.
    pub id: CheckpointId,
    /// Where the source resumes.
    pub offset: SourceOffset,
    /// What the sink prepared and must commit (again, idempotently, after a crash).
    pub committables: Vec<Committable>,
    /// The tables and schemas the pipeline had reached at this checkpoint (empty in
    /// format 1 files).
    #[serde(default)]
    pub schemas: SchemaState,
    /// The run that wrote it ([`OwnerEpoch::LEGACY`] in format 1 and 2 files); a store
    /// saves it only while that run still owns the state.
    #[serde(default = "legacy")]
    pub owner: OwnerEpoch,
    /// The last checkpoint whose commit had completed when this one was taken: where a
    /// restart rewinds to if the target lost this checkpoint's prepared work
    /// ([`Error::TransactionLost`](cdc_api::Error::TransactionLost)). `None` when no
    /// checkpoint of this run's lineage was fully committed yet (the rewind then starts
    /// over), and in format 1 and 2 files.
    #[serde(default)]
    pub committed: Option<CommittedPosition>,
}

fn legacy() -> OwnerEpoch {
    OwnerEpoch::LEGACY
}

/// A fully committed checkpoint's position: everything a restart needs to resume from it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CommittedPosition {
    /// The checkpoint number.
    pub id: CheckpointId,
    /// Where the source resumes after it.
    pub offset: SourceOffset,
    /// The tables and schemas at it; `None` when they are those of the checkpoint that
    /// carries this position ([`Checkpoint::schemas`]): no schema change in between, the
    /// usual case, and it keeps the file from doubling.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schemas: Option<SchemaState>,
}

/// The tables and schemas of a pipeline at a checkpoint: what a restart needs so that
/// schema evolution and route merging continue from where they were, rather than from the
/// schemas the source re-announces.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SchemaState {
    /// Every source table the pipeline captured (announced by the source, not dropped).
    #[serde(default)]
    pub source_tables: Vec<TableId>,
    /// Per table reaching the sink (after transform and route): the schema the rows arrive
    /// with and the schema the target has (they differ under `lenient`).
    #[serde(default)]
    pub targets: Vec<TargetSchemas>,
    /// Route state: the current schema of each routed source table.
    #[serde(default)]
    pub routed_sources: Vec<(TableId, Schema)>,
    /// Route state: the merged schema of each route target.
    #[serde(default)]
    pub routed_targets: Vec<(TableId, Schema)>,
}

/// The two schemas the runtime keeps for a table that reaches the sink.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TargetSchemas {
    /// The table in the target.
    pub table: TableId,
    /// The schema of the rows arriving for it.
    pub upstream: Schema,
    /// The schema the target table has.
    pub target: Schema,
}

impl Checkpoint {
    /// A checkpoint in the current format.
    pub fn new(
        pipeline: &str,
        source_type: &str,
        sink_type: &str,
        id: CheckpointId,
        offset: SourceOffset,
        committables: Vec<Committable>,
    ) -> Self {
        Self {
            format_version: FORMAT_VERSION,
            pipeline: pipeline.to_string(),
            source_type: source_type.to_string(),
            sink_type: sink_type.to_string(),
            id,
            offset,
            committables,
            schemas: SchemaState::default(),
            owner: OwnerEpoch::LEGACY,
            committed: None,
        }
    }

    /// The same checkpoint written by the run `owner`.
    #[must_use]
    pub fn with_owner(mut self, owner: OwnerEpoch) -> Self {
        self.owner = owner;
        self
    }

    /// The same checkpoint with the last fully committed position.
    #[must_use]
    pub fn with_committed(mut self, committed: Option<CommittedPosition>) -> Self {
        self.committed = committed;
        self
    }

    /// The same checkpoint with the pipeline's tables and schemas.
    #[must_use]
    pub fn with_schemas(mut self, schemas: SchemaState) -> Self {
        self.schemas = schemas;
        self
    }
}

/// What a run gets when it claims a pipeline's state.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Ownership {
    /// This run's epoch: larger than every epoch handed out before, and at least the Unix
    /// time in milliseconds of the claim, so copies of one state directory practically
    /// never hand out the same one.
    pub epoch: OwnerEpoch,
    /// Earlier runs whose prepared-but-uncheckpointed work may still wait in the target,
    /// ascending ([`OwnerEpoch::LEGACY`] when the state comes from a version without
    /// epochs). They accumulate until a run completes its first durable checkpoint and
    /// [settles](StateStore::settle).
    pub earlier: Vec<OwnerEpoch>,
}

impl Ownership {
    /// An ownership of `epoch` with the given earlier runs (for stores outside this crate).
    pub fn new(epoch: OwnerEpoch, earlier: Vec<OwnerEpoch>) -> Self {
        Self { epoch, earlier }
    }
}

/// The epoch for a new claim: `max(previous + 1, now in Unix milliseconds)`, never
/// [`OwnerEpoch::LEGACY`].
fn next_epoch(previous: Option<OwnerEpoch>) -> OwnerEpoch {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
    let after = previous.map_or(1, |p| p.0.saturating_add(1));
    OwnerEpoch(after.max(now))
}

/// Keeps the latest checkpoint durably, for one owning run at a time.
///
/// # Contract
/// * [`claim`](Self::claim) makes the caller the owner, before it touches the target: it
///   hands out a new epoch larger than every earlier one and lists the earlier runs that
///   have not [settled](Self::settle). From then on every earlier claimant is *fenced*:
///   its [`verify`](Self::verify) and [`save`](Self::save) fail with
///   [`RuntimeError::Fenced`]. A store may also refuse the claim while another run holds
///   it (the file store's lock).
/// * [`save`](Self::save) replaces the latest checkpoint only while
///   [`Checkpoint::owner`] still owns the state. After `Ok`, a later `load` (also in
///   another process after a crash) returns that checkpoint or a newer one, never a torn
///   mix. An error is [`RuntimeError::StateMaybeSaved`] when the new checkpoint may have
///   become durable anyway (its prepared work must then be neither committed nor
///   aborted by this run); any other error means the old checkpoint is still the latest.
/// * [`settle`](Self::settle) clears the earlier runs once the owner's first checkpoint
///   is durable (the sink cleaned what they left in its recovery).
/// * [`release`](Self::release) ends the claim when the run ends (a lock is let go);
///   dropping the store does the same.
///
/// An implementation on an object store gives the same guarantees with conditional
/// writes: the owner record is one object, a claim is a compare-and-swap on its version
/// (read it, write the new epoch *if* the version is still the one read), and a save
/// writes the checkpoint object only if the owner object's version is still the one the
/// claim produced (or stores the owner version in the checkpoint object and swaps on it);
/// `verify` reads the owner object and compares. See docs/semantics.md.
#[async_trait]
pub trait StateStore: Send + Sync {
    /// Makes the caller the owner of the pipeline's state (see the trait's contract).
    async fn claim(&self) -> Result<Ownership, RuntimeError>;

    /// `Ok` while `epoch` still owns the state, [`RuntimeError::Fenced`] otherwise.
    async fn verify(&self, epoch: OwnerEpoch) -> Result<(), RuntimeError>;

    /// The latest saved checkpoint, if any.
    async fn load(&self) -> Result<Option<Checkpoint>, RuntimeError>;

    /// Replaces the latest checkpoint, atomically and durably, if
    /// [`Checkpoint::owner`] still owns the state.
    async fn save(&self, checkpoint: &Checkpoint) -> Result<(), RuntimeError>;

    /// Forgets the earlier runs: `epoch`'s first checkpoint is durable and the sink has
    /// cleaned up after them. Only while `epoch` owns the state.
    async fn settle(&self, epoch: OwnerEpoch) -> Result<(), RuntimeError>;

    /// Ends `epoch`'s claim (the run ended). Default: nothing to let go.
    async fn release(&self, epoch: OwnerEpoch) {
        let _ = epoch;
    }

    /// A short description for logs (`directory /var/lib/cdc/orders`).
    fn describe(&self) -> String;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn epochs_grow_and_follow_the_clock() {
        let now = next_epoch(None);
        assert!(now.0 > 1_700_000_000_000, "{now}");
        assert_eq!(
            next_epoch(Some(OwnerEpoch(u64::MAX - 1))),
            OwnerEpoch(u64::MAX)
        );
        let ahead = OwnerEpoch(now.0 + 1_000_000);
        assert_eq!(next_epoch(Some(ahead)), OwnerEpoch(ahead.0 + 1));
        assert!(next_epoch(Some(OwnerEpoch::LEGACY)) >= now);
    }

    #[tokio::test]
    async fn a_memory_store_fences_the_previous_claimant_and_lists_it_until_settled() {
        let store = MemoryStateStore::default();
        let first = store.claim().await.unwrap();
        assert!(first.earlier.is_empty());
        let cp = |owner| {
            Checkpoint::new(
                "p",
                "values",
                "values",
                CheckpointId(1),
                SourceOffset(serde_json::json!({})),
                Vec::new(),
            )
            .with_owner(owner)
        };
        store.save(&cp(first.epoch)).await.unwrap();

        let second = store.claim().await.unwrap();
        assert!(second.epoch > first.epoch);
        assert_eq!(second.earlier, vec![first.epoch]);
        let err = store.verify(first.epoch).await.unwrap_err();
        assert!(matches!(err, RuntimeError::Fenced { .. }), "{err}");
        assert!(matches!(
            store.save(&cp(first.epoch)).await,
            Err(RuntimeError::Fenced { .. })
        ));
        store.verify(second.epoch).await.unwrap();

        // Not settled: a third claim still lists both.
        let third = store.claim().await.unwrap();
        assert_eq!(third.earlier, vec![first.epoch, second.epoch]);
        store.save(&cp(third.epoch)).await.unwrap();
        store.settle(third.epoch).await.unwrap();
        assert_eq!(store.claim().await.unwrap().earlier, vec![third.epoch]);
    }
}
