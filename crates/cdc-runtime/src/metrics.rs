//! Pipeline counters, a periodic progress line, and their Prometheus text (served by
//! [`endpoint`](crate::endpoint) on `pipeline.metrics.port`).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};
use std::time::{SystemTime, UNIX_EPOCH};

use cdc_api::{Event, OperationType, SinkStats, SourceProgress};

/// Counters of one running pipeline; cheap to share.
#[derive(Debug, Default)]
pub struct PipelineMetrics {
    /// Data changes handed to the sink, by table and operation.
    changes: Mutex<BTreeMap<(String, &'static str), u64>>,
    /// Data changes read from the source, by source table.
    source_events: Mutex<BTreeMap<String, u64>>,
    source_progress: Mutex<SourceProgress>,
    sink_stats: Mutex<SinkStats>,
    schema_changes: AtomicU64,
    checkpoints: AtomicU64,
    last_checkpoint_unix_ms: AtomicU64,
    last_checkpoint_duration_ms: AtomicU64,
    restarts: AtomicU64,
    /// When the current run opened its source (Unix ms); 0 while no run is reading.
    run_started_unix_ms: AtomicU64,
}

fn now_unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

fn op_label(op: OperationType) -> &'static str {
    match op {
        OperationType::Insert => "insert",
        OperationType::Update => "update",
        OperationType::Delete => "delete",
        OperationType::Replace => "replace",
    }
}

impl PipelineMetrics {
    /// Counts a batch on its way to the sink.
    pub(crate) fn record(&self, events: &[Event]) {
        let mut map = self.changes.lock().unwrap_or_else(PoisonError::into_inner);
        for event in events {
            match event {
                Event::DataChange(e) => {
                    *map.entry((e.table_id.to_string(), op_label(e.op)))
                        .or_default() += 1;
                }
                Event::SchemaChange(_) => {
                    self.schema_changes.fetch_add(1, Ordering::Relaxed);
                }
            }
        }
    }

    /// Counts a batch as it comes from the source.
    pub(crate) fn record_in(&self, events: &[Event]) {
        let mut map = self
            .source_events
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let mut last: Option<(&cdc_api::TableId, u64)> = None;
        // Batches mostly hold runs of one table: count runs, not single events.
        for event in events {
            if let Event::DataChange(e) = event {
                match &mut last {
                    Some((t, n)) if *t == &e.table_id => *n += 1,
                    _ => {
                        if let Some((t, n)) = last.take() {
                            *map.entry(t.to_string()).or_default() += n;
                        }
                        last = Some((&e.table_id, 1));
                    }
                }
            }
        }
        if let Some((t, n)) = last {
            *map.entry(t.to_string()).or_default() += n;
        }
    }

    pub(crate) fn set_source_progress(&self, progress: SourceProgress) {
        *self
            .source_progress
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = progress;
    }

    pub(crate) fn set_sink_stats(&self, stats: SinkStats) {
        *self
            .sink_stats
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = stats;
    }

    /// The source's last reported progress (snapshot per table, streaming, lag).
    pub fn source_progress(&self) -> SourceProgress {
        self.source_progress
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// The sink's last reported counters.
    pub fn sink_stats(&self) -> SinkStats {
        self.sink_stats
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// When the last checkpoint completed, in milliseconds since the Unix epoch.
    pub fn last_checkpoint_unix_ms(&self) -> Option<u64> {
        match self.last_checkpoint_unix_ms.load(Ordering::Relaxed) {
            0 => None,
            ms => Some(ms),
        }
    }

    pub(crate) fn checkpoint_done(&self, duration_ms: u64) {
        self.checkpoints.fetch_add(1, Ordering::Relaxed);
        self.last_checkpoint_unix_ms
            .store(now_unix_ms(), Ordering::Relaxed);
        self.last_checkpoint_duration_ms
            .store(duration_ms, Ordering::Relaxed);
    }

    /// Data changes delivered so far, all tables.
    pub fn total_changes(&self) -> u64 {
        self.changes
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .values()
            .sum()
    }

    /// A run opened its source and reads.
    pub(crate) fn run_started(&self) {
        self.run_started_unix_ms
            .store(now_unix_ms().max(1), Ordering::Relaxed);
    }

    /// The run ended (stopped, failed, or about to restart).
    pub(crate) fn run_ended(&self) {
        self.run_started_unix_ms.store(0, Ordering::Relaxed);
    }

    /// Whether the pipeline does its job (`/readyz`): a run reads, and its last checkpoint
    /// (or its start, before the first) is at most `max_age` old. `Err` says why not.
    pub fn readiness(&self, max_age: std::time::Duration) -> Result<(), String> {
        let started = self.run_started_unix_ms.load(Ordering::Relaxed);
        if started == 0 {
            return Err("not ready: no run is reading (starting, or waiting to restart)".into());
        }
        let last = self
            .last_checkpoint_unix_ms
            .load(Ordering::Relaxed)
            .max(started);
        let age = now_unix_ms().saturating_sub(last);
        if u128::from(age) > max_age.as_millis() {
            return Err(format!(
                "not ready: no checkpoint for {:.1} s (more than {:.1} s)",
                age as f64 / 1000.0,
                max_age.as_secs_f64()
            ));
        }
        Ok(())
    }

    pub(crate) fn restarted(&self) {
        self.restarts.fetch_add(1, Ordering::Relaxed);
    }

    /// Restarts after failed runs (`restart-strategy.*`).
    pub fn restarts(&self) -> u64 {
        self.restarts.load(Ordering::Relaxed)
    }

    /// Checkpoints completed.
    pub fn checkpoints(&self) -> u64 {
        self.checkpoints.load(Ordering::Relaxed)
    }

    /// The Prometheus text exposition of every series.
    pub fn render_prometheus(&self) -> String {
        let mut out = String::new();
        out.push_str("# HELP cdc_changes_total Data change events written to the sink.\n# TYPE cdc_changes_total counter\n");
        for ((table, op), n) in self
            .changes
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
        {
            let _ = writeln!(
                out,
                "cdc_changes_total{{table=\"{}\",op=\"{op}\"}} {n}",
                escape(table)
            );
        }
        out.push_str("# HELP cdc_source_events_total Data change events read from the source.\n# TYPE cdc_source_events_total counter\n");
        for (table, n) in self
            .source_events
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
        {
            let _ = writeln!(
                out,
                "cdc_source_events_total{{table=\"{}\"}} {n}",
                escape(table)
            );
        }
        let progress = self.source_progress();
        render_snapshot(&mut out, &progress);
        let stats = self.sink_stats();
        // Only once a table had rejected rows (a family without samples would ask every
        // dashboard for it).
        if !stats.rejected_rows.is_empty() {
            out.push_str("# HELP cdc_sink_rejected_rows_total Rows the target rejected (filtered) in otherwise successful loads; with sink.dead-letter.path they are in the dead-letter file.\n# TYPE cdc_sink_rejected_rows_total counter\n");
        }
        for (table, n) in &stats.rejected_rows {
            let _ = writeln!(
                out,
                "cdc_sink_rejected_rows_total{{table=\"{}\"}} {n}",
                escape(table)
            );
        }
        let mut gauges = vec![
            (
                "cdc_source_streaming",
                "gauge",
                "1 once the source reads the change log (snapshot over), else 0.",
                f64::from(u8::from(progress.streaming)),
            ),
            (
                "cdc_sink_loads_total",
                "counter",
                "Successful loads (or transactions) into the target.",
                stats.loads as f64,
            ),
            (
                "cdc_sink_load_bytes_total",
                "counter",
                "Bytes of request bodies in successful loads.",
                stats.bytes as f64,
            ),
            (
                "cdc_sink_load_rows_total",
                "counter",
                "Rows in successful loads.",
                stats.rows as f64,
            ),
            (
                "cdc_sink_retries_total",
                "counter",
                "Load attempts that failed and were retried.",
                stats.retries as f64,
            ),
            (
                "cdc_sink_failures_total",
                "counter",
                "Loads that failed for good.",
                stats.failures as f64,
            ),
            (
                "cdc_sink_load_duration_seconds_sum",
                "counter",
                "Total time of successful loads.",
                stats.load_time.as_secs_f64(),
            ),
            (
                "cdc_sink_load_duration_seconds_count",
                "counter",
                "Number of successful loads timed.",
                stats.loads as f64,
            ),
        ];
        if let Some(lag) = progress.lag {
            gauges.push((
                "cdc_source_lag_seconds",
                "gauge",
                "How far behind the change log the source reads (0 when caught up).",
                lag.as_secs_f64(),
            ));
        }
        if let Some(last) = stats.last_load_time {
            gauges.push((
                "cdc_sink_last_load_duration_seconds",
                "gauge",
                "Duration of the last successful load.",
                last.as_secs_f64(),
            ));
        }
        gauges.extend([
            (
                "cdc_schema_changes_total",
                "counter",
                "Schema change events seen.",
                self.schema_changes.load(Ordering::Relaxed) as f64,
            ),
            (
                "cdc_checkpoints_total",
                "counter",
                "Checkpoints completed.",
                self.checkpoints() as f64,
            ),
            (
                "cdc_pipeline_restarts_total",
                "counter",
                "Restarts from the last checkpoint after a failed run (restart-strategy).",
                self.restarts() as f64,
            ),
            (
                "cdc_last_checkpoint_timestamp_seconds",
                "gauge",
                "When the last checkpoint completed (Unix time).",
                self.last_checkpoint_unix_ms.load(Ordering::Relaxed) as f64 / 1000.0,
            ),
            (
                "cdc_last_checkpoint_duration_seconds",
                "gauge",
                "How long the last checkpoint (prepare, save, commit) took.",
                self.last_checkpoint_duration_ms.load(Ordering::Relaxed) as f64 / 1000.0,
            ),
        ]);
        for (name, kind, help, value) in gauges {
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {value}"
            );
        }
        out
    }
}

/// A Prometheus label value.
fn escape(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

fn render_snapshot(out: &mut String, progress: &SourceProgress) {
    if progress.snapshot.is_empty() {
        return;
    }
    out.push_str("# HELP cdc_snapshot_rows_read Rows of the initial snapshot read so far.\n# TYPE cdc_snapshot_rows_read gauge\n");
    for t in &progress.snapshot {
        let _ = writeln!(
            out,
            "cdc_snapshot_rows_read{{table=\"{}\"}} {}",
            escape(&t.table.to_string()),
            t.rows_read
        );
    }
    out.push_str("# HELP cdc_snapshot_rows_estimated The server's row estimate of each table in the snapshot.\n# TYPE cdc_snapshot_rows_estimated gauge\n");
    for t in &progress.snapshot {
        if let Some(estimate) = t.rows_estimated {
            let _ = writeln!(
                out,
                "cdc_snapshot_rows_estimated{{table=\"{}\"}} {estimate}",
                escape(&t.table.to_string())
            );
        }
    }
    out.push_str("# HELP cdc_snapshot_table_done 1 once the snapshot of the table is complete.\n# TYPE cdc_snapshot_table_done gauge\n");
    for t in &progress.snapshot {
        let _ = writeln!(
            out,
            "cdc_snapshot_table_done{{table=\"{}\"}} {}",
            escape(&t.table.to_string()),
            u8::from(t.done)
        );
    }
}
