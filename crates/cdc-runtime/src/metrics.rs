//! Pipeline counters, a periodic progress line, and a Prometheus text endpoint
//! (`pipeline.metrics.port`).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{SystemTime, UNIX_EPOCH};

use cdc_api::{Event, OperationType};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Counters of one running pipeline; cheap to share.
#[derive(Debug, Default)]
pub struct PipelineMetrics {
    /// Data changes handed to the sink, by table and operation.
    changes: Mutex<BTreeMap<(String, &'static str), u64>>,
    schema_changes: AtomicU64,
    checkpoints: AtomicU64,
    last_checkpoint_unix_ms: AtomicU64,
    last_checkpoint_duration_ms: AtomicU64,
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

    pub(crate) fn checkpoint_done(&self, duration_ms: u64) {
        self.checkpoints.fetch_add(1, Ordering::Relaxed);
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64);
        self.last_checkpoint_unix_ms.store(now, Ordering::Relaxed);
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
            let table = table.replace('\\', "\\\\").replace('"', "\\\"");
            let _ = writeln!(
                out,
                "cdc_changes_total{{table=\"{table}\",op=\"{op}\"}} {n}"
            );
        }
        let gauges = [
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
        ];
        for (name, kind, help, value) in gauges {
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {value}"
            );
        }
        out
    }
}

/// Serves `GET /metrics` on `127.0.0.1`-or-any `port` until the task is dropped.
pub(crate) async fn serve(
    port: u16,
    metrics: Arc<PipelineMetrics>,
) -> std::io::Result<tokio::task::JoinHandle<()>> {
    let listener = tokio::net::TcpListener::bind(("0.0.0.0", port)).await?;
    Ok(tokio::spawn(async move {
        loop {
            let Ok((mut stream, _)) = listener.accept().await else {
                continue;
            };
            let metrics = metrics.clone();
            tokio::spawn(async move {
                let mut buf = [0u8; 1024];
                let n = stream.read(&mut buf).await.unwrap_or(0);
                let request = String::from_utf8_lossy(&buf[..n]);
                let (status, body) = if request.starts_with("GET /metrics") {
                    ("200 OK", metrics.render_prometheus())
                } else {
                    ("404 Not Found", "try /metrics\n".to_string())
                };
                let response = format!(
                    "HTTP/1.1 {status}\r\nContent-Type: text/plain; version=0.0.4\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = stream.write_all(response.as_bytes()).await;
            });
        }
    }))
}
