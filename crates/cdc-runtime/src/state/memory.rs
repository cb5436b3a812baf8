//! Checkpoints in memory: `state.dir: none`, and tests.

use std::collections::BTreeSet;
use std::sync::{Mutex, MutexGuard, PoisonError};

use async_trait::async_trait;
use cdc_api::OwnerEpoch;

use super::{Checkpoint, Ownership, StateStore, next_epoch};
use crate::RuntimeError;

/// Checkpoints in memory only: a new process starts from scratch (`state.dir: none`).
///
/// Ownership works as in [`FileStateStore`](super::FileStateStore), within the one
/// instance: epochs come from the clock, a first claim has nothing earlier, and claiming
/// the same instance again (a test restarting a pipeline on a kept store) hands out a larger
/// epoch, lists the unsettled earlier ones and fences the previous claimant.
#[derive(Debug, Default)]
pub struct MemoryStateStore {
    inner: Mutex<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    latest: Option<Checkpoint>,
    owner: Option<OwnerEpoch>,
    earlier: BTreeSet<OwnerEpoch>,
}

impl MemoryStateStore {
    fn inner(&self) -> MutexGuard<'_, Inner> {
        // Nothing can be left half-updated under this lock: every update is one assignment.
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Inner {
    fn verify(&self, epoch: OwnerEpoch) -> Result<(), RuntimeError> {
        match self.owner {
            Some(owner) if owner == epoch => Ok(()),
            Some(owner) => Err(RuntimeError::Fenced {
                location: DESCRIPTION.into(),
                message: format!(
                    "run {epoch} lost ownership to run {owner}, which claimed this state later; it stops before committing or aborting anything"
                ),
            }),
            None => Err(RuntimeError::Fenced {
                location: DESCRIPTION.into(),
                message: format!("run {epoch} never claimed this state"),
            }),
        }
    }
}

const DESCRIPTION: &str = "memory (not kept across restarts)";

#[async_trait]
impl StateStore for MemoryStateStore {
    async fn claim(&self) -> Result<Ownership, RuntimeError> {
        let mut inner = self.inner();
        let mut earlier = inner.earlier.clone();
        earlier.extend(inner.owner);
        let epoch = next_epoch(earlier.last().copied());
        inner.owner = Some(epoch);
        inner.earlier.clone_from(&earlier);
        Ok(Ownership {
            epoch,
            earlier: earlier.into_iter().collect(),
        })
    }

    async fn verify(&self, epoch: OwnerEpoch) -> Result<(), RuntimeError> {
        self.inner().verify(epoch)
    }

    async fn load(&self) -> Result<Option<Checkpoint>, RuntimeError> {
        Ok(self.inner().latest.clone())
    }

    async fn save(&self, checkpoint: &Checkpoint) -> Result<(), RuntimeError> {
        let mut inner = self.inner();
        inner.verify(checkpoint.owner)?;
        inner.latest = Some(checkpoint.clone());
        Ok(())
    }

    async fn settle(&self, epoch: OwnerEpoch) -> Result<(), RuntimeError> {
        let mut inner = self.inner();
        inner.verify(epoch)?;
        inner.earlier.clear();
        Ok(())
    }

    fn describe(&self) -> String {
        DESCRIPTION.into()
    }
}
