use async_trait::async_trait;

use crate::{
    CheckpointId, Committable, Event, Recovery, Result, SchemaChangeEvent, SchemaChangeKind,
    SinkStats,
};

/// Writes events into a target and takes part in checkpoints.
///
/// # Contract
/// * [`write`](Self::write) receives events in stream order: data changes, and schema
///   changes *after* the [`SchemaApplier`] applied them to the target (so the sink learns
///   each table's current schema from `CreateTable` and the changes that follow). A sink
///   may buffer; it must keep per-table order.
/// * [`flush`](Self::flush) sends everything written so far to the target, so that a
///   schema change applied next does not overtake it. An at-least-once sink makes it
///   durable and visible; an exactly-once sink may keep it invisible (pre-committed) until
///   [`commit`](Self::commit). The runtime calls it before a schema change is applied and
///   when the pipeline ends.
/// * [`prepare`](Self::prepare) is the checkpoint barrier for exactly-once: write all
///   buffered data as *pre-committed* (durable, not visible) and return what must later be
///   committed. A sink without transactions flushes and returns nothing.
/// * [`commit`](Self::commit) makes prepared data visible, after the runtime durably
///   recorded the checkpoint. It must be idempotent: after a crash the runtime calls it
///   again with the same committables.
/// * [`recover`](Self::recover) runs once after [`open`](Self::open), before any write:
///   with the last durable checkpoint when resuming (its committables were already passed to
///   [`commit`](Self::commit) again), `None` on a fresh start, and this run's
///   [`OwnerEpoch`](crate::OwnerEpoch). The next checkpoint is the one after it (or 1).
///   Abort what the earlier runs prepared after it, so replayed data does not load twice,
///   and put the epoch into every label this run creates, so a run that lost ownership
///   can never touch this run's transactions.
/// * A commit that finds prepared work gone (aborted or expired by the target before the
///   commit) returns [`Error::TransactionLost`](crate::Error::TransactionLost): the runtime
///   then rewinds to the last fully committed checkpoint instead of stopping for good.
/// * [`poll_flush`](Self::poll_flush) is called about ten times a second, also when no data
///   arrives, so a sink can flush buffers whose time limit passed.
///
/// ```
/// use async_trait::async_trait;
/// use cdc_api::{CheckpointId, Committable, Event, Result, Sink};
///
/// /// Counts rows and forgets them.
/// #[derive(Default)]
/// struct Counter { rows: usize }
///
/// #[async_trait]
/// impl Sink for Counter {
///     async fn write(&mut self, events: Vec<Event>) -> Result<()> {
///         self.rows += events.iter().filter(|e| matches!(e, Event::DataChange(_))).count();
///         Ok(())
///     }
///     async fn flush(&mut self) -> Result<()> { Ok(()) }
/// }
/// # tokio::runtime::Runtime::new().unwrap().block_on(async {
/// let mut sink = Counter::default();
/// sink.write(vec![]).await.unwrap();
/// assert!(sink.prepare(CheckpointId(1)).await.unwrap().is_empty());
/// # });
/// ```
#[async_trait]
pub trait Sink: Send {
    /// Connects or checks the target. Called once before anything else. Default: nothing.
    async fn open(&mut self) -> Result<()> {
        Ok(())
    }

    /// Takes the next events in stream order. May buffer.
    async fn write(&mut self, events: Vec<Event>) -> Result<()>;

    /// Makes everything written so far durable and visible.
    async fn flush(&mut self) -> Result<()>;

    /// Pre-commits everything written so far for checkpoint `checkpoint` and returns what
    /// to commit once the checkpoint is durable. Default: [`flush`](Self::flush), nothing to
    /// commit (at-least-once).
    async fn prepare(&mut self, checkpoint: CheckpointId) -> Result<Vec<Committable>> {
        let _ = checkpoint;
        self.flush().await?;
        Ok(Vec::new())
    }

    /// Commits what [`prepare`](Self::prepare) returned. Idempotent. Default: nothing.
    async fn commit(&mut self, committables: Vec<Committable>) -> Result<()> {
        let _ = committables;
        Ok(())
    }

    /// Aborts prepared work that will not be committed. Default: nothing.
    async fn abort(&mut self, committables: Vec<Committable>) -> Result<()> {
        let _ = committables;
        Ok(())
    }

    /// Before the first write: `recovery.last` is the last durable checkpoint (already
    /// committed by the runtime through [`commit`](Self::commit)), `None` on a fresh start;
    /// abort anything the runs in `recovery.earlier` prepared after it, and label this
    /// run's transactions with `recovery.epoch`. Default: nothing.
    async fn recover(&mut self, recovery: &Recovery) -> Result<()> {
        let _ = recovery;
        Ok(())
    }

    /// Whether the source is reading a snapshot (`true`) or only its change log: told before
    /// the first event and whenever it changes, in stream order (before the first snapshot
    /// row, after the last one). While a snapshot is read, an **at-least-once** sink should
    /// keep rows invisible until the checkpoint that covers them is committed (prepare them
    /// as an exactly-once sink does): after a crash mid-snapshot the source reads the
    /// unfinished key ranges again at a later position, and a row the crashed attempt had
    /// made visible and the source deleted since would otherwise stay in the target.
    /// Exactly-once sinks can ignore it. Default: nothing.
    async fn source_snapshotting(&mut self, active: bool) -> Result<()> {
        let _ = active;
        Ok(())
    }

    /// Called periodically (about every 100 ms), also when idle: flush what waited too long
    /// (e.g. `sink.buffer-flush.interval`). Default: nothing.
    async fn poll_flush(&mut self) -> Result<()> {
        Ok(())
    }

    /// Counters of what the sink did (loads, bytes, retries, latency), for metrics. Called
    /// about ten times a second; keep it cheap. Default: all zero.
    fn stats(&self) -> SinkStats {
        SinkStats::default()
    }

    /// Releases resources. Called once at the end, also after errors. Default: nothing.
    async fn close(&mut self) -> Result<()> {
        Ok(())
    }
}

/// Applies schema changes to the target (CREATE TABLE, ALTER TABLE, ...).
///
/// The runtime drains the sink (flush) before calling [`apply`](Self::apply), and passes on
/// only the kinds listed by [`supported_kinds`](Self::supported_kinds); what happens to the
/// others depends on `schema.change.behavior`. Applying must be idempotent: after a crash a
/// change may be applied again (an added column that exists already is success).
///
/// ```
/// use async_trait::async_trait;
/// use cdc_api::{Result, SchemaApplier, SchemaChangeEvent, SchemaChangeKind};
/// struct AcceptCreates;
/// #[async_trait]
/// impl SchemaApplier for AcceptCreates {
///     fn supported_kinds(&self) -> Vec<SchemaChangeKind> { vec![SchemaChangeKind::CreateTable] }
///     async fn apply(&mut self, _change: &SchemaChangeEvent) -> Result<()> { Ok(()) }
/// }
/// assert_eq!(AcceptCreates.supported_kinds().len(), 1);
/// ```
#[async_trait]
pub trait SchemaApplier: Send {
    /// The kinds of change this target can apply.
    fn supported_kinds(&self) -> Vec<SchemaChangeKind>;

    /// Applies one change to the target; idempotent.
    async fn apply(&mut self, change: &SchemaChangeEvent) -> Result<()>;

    /// Checks, changing nothing, that the target is reachable and accepts the credentials.
    /// Returns what it found, one line each; an `Err` says what is wrong. Used by
    /// `cdc validate --connect`. The default checks nothing.
    async fn preflight(&mut self) -> Result<Vec<String>> {
        Ok(Vec::new())
    }
}
