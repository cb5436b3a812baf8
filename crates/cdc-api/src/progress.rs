//! What sources and sinks report about their progress, for metrics and progress views.
//!
//! The runtime *pulls* these reports (a source's after a batch, at most about once a
//! second; a sink's about ten times a second), so a connector only keeps counters and never
//! needs a handle to the runtime.

use std::time::Duration;

use crate::TableId;

/// How far a source is, as reported by [`Source::progress`](crate::Source::progress).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SourceProgress {
    /// The initial snapshot, one entry per table it covers (empty when the source takes
    /// no snapshot or has not planned it yet).
    pub snapshot: Vec<TableSnapshotProgress>,
    /// Whether the source now reads the change log (the snapshot, if any, is over).
    pub streaming: bool,
    /// How far behind the change log the source reads: the time between a change's commit
    /// on the server and the moment the source read it, measured on the last change read;
    /// zero when the source has caught up (for MySQL: a heartbeat arrived since). `None`
    /// when unknown.
    pub lag: Option<Duration>,
}

/// The snapshot of one table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableSnapshotProgress {
    /// The source table.
    pub table: TableId,
    /// Rows read so far.
    pub rows_read: u64,
    /// The server's estimate of the table's rows when the snapshot started (MySQL's
    /// `information_schema.TABLES.TABLE_ROWS`); `None` when unknown. Only an estimate:
    /// `rows_read` may exceed it.
    pub rows_estimated: Option<u64>,
    /// Whether every row of the table has been read.
    pub done: bool,
}

/// What a sink has done so far, as reported by [`Sink::stats`](crate::Sink::stats).
/// Counters only grow during a run.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SinkStats {
    /// Load requests (or transactions) that succeeded.
    pub loads: u64,
    /// Bytes of request bodies sent in successful loads.
    pub bytes: u64,
    /// Rows sent in successful loads.
    pub rows: u64,
    /// Attempts that failed and were retried.
    pub retries: u64,
    /// Loads that failed for good (the pipeline stops on them).
    pub failures: u64,
    /// The sum of the durations of successful loads (with [`loads`](Self::loads), the
    /// mean load latency).
    pub load_time: Duration,
    /// The duration of the last successful load.
    pub last_load_time: Option<Duration>,
    /// Rows the target rejected (filtered) in loads that succeeded otherwise, per table
    /// (`db.table`): routed to the dead-letter file when the sink has one.
    pub rejected_rows: std::collections::BTreeMap<String, u64>,
}

impl SinkStats {
    /// Records one successful load of `rows` rows and `bytes` bytes that took `took`.
    pub fn record_load(&mut self, rows: u64, bytes: u64, took: Duration) {
        self.loads += 1;
        self.rows += rows;
        self.bytes += bytes;
        self.load_time += took;
        self.last_load_time = Some(took);
    }
}
