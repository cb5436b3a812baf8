use async_trait::async_trait;

use crate::{Event, Result, SourceOffset, SourceProgress, TableId};

/// Produces the ordered stream of change events of a pipeline.
///
/// # Contract
/// * [`open`](Self::open) connects and, given an offset from an earlier
///   [`offset`](Self::offset), resumes exactly after the last event returned before that
///   offset was taken: no event lost, none repeated.
/// * [`next_batch`](Self::next_batch) returns the next events in order, `Ok(None)` once a
///   bounded source is done. It is **cancel safe**: if its future is dropped, no event is
///   lost, because [`offset`](Self::offset) only ever covers events that were returned.
///   An idle unbounded source should return an empty batch now and then (at least every
///   second) so the runtime can take checkpoints.
/// * A table's `CreateTable` event precedes its first data event, also after a resume (a
///   source re-announces the schemas of the tables it captures when it opens).
/// * Start a new batch with every other schema change: the runtime then takes a checkpoint
///   just before it, so everything before the change is committed in the target before
///   the change is applied (a target's schema-change job waits for earlier transactions).
///   The [`offset`](Self::offset) after every batch must be exact for this.
/// * Transient failures are retried inside the source; what it returns as an error has
///   already exhausted its retries or is permanent.
///
/// ```
/// use async_trait::async_trait;
/// use cdc_api::{Event, Result, Source, SourceOffset};
///
/// /// Counts down and stops.
/// struct Countdown { left: u64 }
///
/// #[async_trait]
/// impl Source for Countdown {
///     async fn open(&mut self, restore: Option<SourceOffset>) -> Result<()> {
///         if let Some(SourceOffset(v)) = restore { self.left = v.as_u64().unwrap_or(0); }
///         Ok(())
///     }
///     async fn next_batch(&mut self) -> Result<Option<Vec<Event>>> {
///         if self.left == 0 { return Ok(None); }
///         self.left -= 1;
///         Ok(Some(Vec::new()))
///     }
///     fn offset(&self) -> Result<SourceOffset> {
///         Ok(SourceOffset(self.left.into()))
///     }
/// }
/// # tokio::runtime::Runtime::new().unwrap().block_on(async {
/// let mut s = Countdown { left: 2 };
/// s.open(None).await.unwrap();
/// while s.next_batch().await.unwrap().is_some() {}
/// assert_eq!(s.offset().unwrap(), SourceOffset(0.into()));
/// # });
/// ```
#[async_trait]
pub trait Source: Send {
    /// Connects; resumes after `restore` when given, else starts as configured.
    async fn open(&mut self, restore: Option<SourceOffset>) -> Result<()>;

    /// The next events, in order; `Ok(None)` when a bounded source has ended. Cancel safe.
    async fn next_batch(&mut self) -> Result<Option<Vec<Event>>>;

    /// The offset that resumes right after the last event returned by
    /// [`next_batch`](Self::next_batch).
    fn offset(&self) -> Result<SourceOffset>;

    /// Told when a checkpoint holding `offset` is durable (a source may then release
    /// resources kept for replay). The default does nothing.
    async fn checkpoint_complete(&mut self, offset: &SourceOffset) -> Result<()> {
        let _ = offset;
        Ok(())
    }

    /// Checks, changing nothing and reading no data, that the source can run: the server is
    /// reachable, the credentials work, its settings and the user's privileges are what
    /// the source needs. Returns what it found, one line each (e.g. "captures 3 tables");
    /// an `Err` says what is missing and how to fix it. Used by `cdc validate --connect`.
    /// The default checks nothing.
    async fn preflight(&mut self) -> Result<Vec<String>> {
        Ok(Vec::new())
    }

    /// Whether the events it returns now come from a snapshot (an initial one, or a table
    /// copied later): called after every batch, so keep it cheap. The runtime tells the
    /// sink ([`Sink::source_snapshotting`](crate::Sink::source_snapshotting)), so that an
    /// at-least-once sink keeps snapshot rows invisible until their checkpoint. The default
    /// is `!self.progress().streaming`: a source that reports no progress counts as
    /// snapshotting, which is the safe side.
    fn snapshotting(&self) -> bool {
        !self.progress().streaming
    }

    /// How far the source is: per-table snapshot progress and change-log lag, for metrics
    /// and the progress view. Called after batches, at most about once a second; keep it
    /// cheap. The default reports nothing.
    fn progress(&self) -> SourceProgress {
        SourceProgress::default()
    }

    /// Whether the source, as configured now, reads `table`. On a restart the runtime asks
    /// this for every table the last checkpoint covered and refuses to resume when a table
    /// was dropped from the definition (its rows would silently stop changing in the
    /// target). `None`, the default, means the source cannot tell.
    fn captures(&self, table: &TableId) -> Option<bool> {
        let _ = table;
        None
    }

    /// Releases connections. Called once, also after errors. The default does nothing.
    async fn close(&mut self) -> Result<()> {
        Ok(())
    }
}
