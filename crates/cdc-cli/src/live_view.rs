//! The live progress view of `cdc run` on a terminal: the snapshot per table (rows read of
//! the estimate, rows/s, ETA), then the streaming rate and lag, and the sink's loads.
//!
//! The view is a few lines at the bottom of stderr, redrawn twice a second. Log lines go
//! through [`StderrWriter`], which erases the view before writing, so logs scroll above it
//! and are never overwritten; the next redraw puts the view back under them.

use std::fmt::Write as _;
use std::io::Write as _;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use cdc_api::{SinkStats, SourceProgress, TableSnapshotProgress};
use cdc_runtime::PipelineMetrics;

/// Lines of the view currently on the screen (0 when none): log writes erase them first.
static DRAWN_LINES: Mutex<usize> = Mutex::new(0);

/// How many snapshot tables the view lists before summarising the rest.
const MAX_TABLE_LINES: usize = 8;
const REDRAW_EVERY: Duration = Duration::from_millis(500);

/// Whether `cdc run` shows the live view.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum ProgressMode {
    /// When stderr is a terminal; plain log lines otherwise.
    Auto,
    /// Always (also when stderr is a file or a pipe).
    Always,
    /// Never: plain log lines only.
    Never,
}

impl ProgressMode {
    pub(crate) fn enabled(self) -> bool {
        match self {
            Self::Auto => std::io::IsTerminal::is_terminal(&std::io::stderr()),
            Self::Always => true,
            Self::Never => false,
        }
    }
}

/// stderr for the log subscriber: erases the live view (if drawn) before each write.
pub(crate) struct StderrWriter;

impl std::io::Write for StderrWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let mut drawn = DRAWN_LINES.lock().unwrap_or_else(PoisonError::into_inner);
        let mut err = std::io::stderr().lock();
        if *drawn > 0 {
            err.write_all(erase(*drawn).as_bytes())?;
            *drawn = 0;
        }
        // Log lines never show a secret the pipeline file substituted.
        let text = String::from_utf8_lossy(buf);
        err.write_all(cdc_runtime::secrets::redact(&text).as_bytes())?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        std::io::stderr().flush()
    }
}

/// Moves the cursor to the start of the view's first line and clears to the end.
fn erase(lines: usize) -> String {
    format!("\x1b[{lines}F\x1b[J")
}

/// One reading of the pipeline's counters.
#[derive(Debug, Clone)]
pub(crate) struct Sample {
    pub(crate) at: Instant,
    pub(crate) progress: SourceProgress,
    pub(crate) sink: SinkStats,
    pub(crate) changes: u64,
    /// Seconds since the last checkpoint completed, if any did.
    pub(crate) since_checkpoint: Option<u64>,
}

impl Sample {
    fn read(metrics: &PipelineMetrics) -> Self {
        let now_ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64);
        Self {
            at: Instant::now(),
            progress: metrics.source_progress(),
            sink: metrics.sink_stats(),
            changes: metrics.total_changes(),
            since_checkpoint: metrics
                .last_checkpoint_unix_ms()
                .map(|ms| now_ms.saturating_sub(ms) / 1000),
        }
    }
}

/// Draws the view until dropped, then leaves its last state on the screen.
pub(crate) struct LiveView {
    task: tokio::task::JoinHandle<()>,
    metrics: Arc<PipelineMetrics>,
    started: Instant,
}

impl LiveView {
    pub(crate) fn start(metrics: Arc<PipelineMetrics>) -> Self {
        let started = Instant::now();
        let task = tokio::spawn({
            let metrics = metrics.clone();
            async move {
                let mut previous: Option<Sample> = None;
                let mut tick = tokio::time::interval(REDRAW_EVERY);
                loop {
                    tick.tick().await;
                    let current = Sample::read(&metrics);
                    draw(&render(previous.as_ref(), &current, started.elapsed()));
                    // Rates over about two seconds: steadier than one tick.
                    if previous
                        .as_ref()
                        .is_none_or(|p| current.at.duration_since(p.at) >= Duration::from_secs(2))
                    {
                        previous = Some(current);
                    }
                }
            }
        });
        Self {
            task,
            metrics,
            started,
        }
    }
}

impl Drop for LiveView {
    fn drop(&mut self) {
        self.task.abort();
        draw(&render(
            None,
            &Sample::read(&self.metrics),
            self.started.elapsed(),
        ));
        // Keep the final view: later output goes below it.
        *DRAWN_LINES.lock().unwrap_or_else(PoisonError::into_inner) = 0;
    }
}

fn draw(lines: &[String]) {
    let mut drawn = DRAWN_LINES.lock().unwrap_or_else(PoisonError::into_inner);
    let mut out = String::new();
    if *drawn > 0 {
        out.push_str(&erase(*drawn));
    }
    for line in lines {
        out.push_str(line);
        out.push('\n');
    }
    let mut err = std::io::stderr().lock();
    if err
        .write_all(out.as_bytes())
        .and_then(|()| err.flush())
        .is_ok()
    {
        *drawn = lines.len();
    }
}

/// The view's lines for `current`, with rates measured since `previous`.
pub(crate) fn render(
    previous: Option<&Sample>,
    current: &Sample,
    elapsed: Duration,
) -> Vec<String> {
    let seconds = previous.map(|p| current.at.duration_since(p.at).as_secs_f64());
    let rate = |now: u64, before: u64| -> Option<f64> {
        seconds
            .filter(|s| *s > 0.0)
            .map(|s| now.saturating_sub(before) as f64 / s)
    };
    let mut lines = Vec::new();
    let snapshot = &current.progress.snapshot;
    if !snapshot.is_empty() {
        let done = snapshot.iter().filter(|t| t.done).count();
        let rows: u64 = snapshot.iter().map(|t| t.rows_read).sum();
        let before: u64 =
            previous.map_or(0, |p| p.progress.snapshot.iter().map(|t| t.rows_read).sum());
        let mut head = format!(
            "snapshot  {done}/{} tables  {} rows",
            snapshot.len(),
            group(rows)
        );
        if !current.progress.streaming {
            if let Some(r) = rate(rows, before) {
                let _ = write!(head, "  {} rows/s", group(r as u64));
            }
        }
        lines.push(head);
        lines.extend(table_lines(previous, current, &rate));
    }
    let mut stream = if current.progress.streaming {
        "streaming".to_string()
    } else if snapshot.is_empty() {
        "starting".to_string()
    } else if snapshot.iter().all(|t| t.done) {
        "snapshot done".to_string()
    } else {
        "reading snapshot".to_string()
    };
    let _ = write!(stream, "  {} changes written", group(current.changes));
    if let Some(r) = rate(current.changes, previous.map_or(0, |p| p.changes)) {
        let _ = write!(stream, "  {} changes/s", group(r as u64));
    }
    if let Some(lag) = current.progress.lag {
        let _ = write!(stream, "  lag {}", duration(lag));
    }
    match current.since_checkpoint {
        Some(s) => {
            let _ = write!(stream, "  last checkpoint {s}s ago");
        }
        None => stream.push_str("  no checkpoint yet"),
    }
    let _ = write!(stream, "  up {}", duration(elapsed));
    lines.push(stream);
    let sink = &current.sink;
    if sink.loads > 0 || sink.retries > 0 || sink.failures > 0 {
        let mut line = format!(
            "sink  {} loads  {}  {} rows",
            group(sink.loads),
            bytes(sink.bytes),
            group(sink.rows)
        );
        if sink.loads > 0 {
            let mean = sink.load_time / u32::try_from(sink.loads).unwrap_or(u32::MAX);
            let _ = write!(line, "  mean load {}", duration(mean));
        }
        let _ = write!(line, "  retries {}", group(sink.retries));
        if sink.failures > 0 {
            let _ = write!(line, "  FAILED {}", group(sink.failures));
        }
        lines.push(line);
    }
    lines
}

/// One line per table being read, then the waiting and finished ones summarised.
fn table_lines(
    previous: Option<&Sample>,
    current: &Sample,
    rate: &dyn Fn(u64, u64) -> Option<f64>,
) -> Vec<String> {
    let snapshot = &current.progress.snapshot;
    let width = snapshot
        .iter()
        .map(|t| t.table.to_string().len())
        .max()
        .unwrap_or(0)
        .min(40);
    let before = |t: &TableSnapshotProgress| {
        previous
            .and_then(|p| p.progress.snapshot.iter().find(|o| o.table == t.table))
            .map_or(0, |o| o.rows_read)
    };
    let active: Vec<&TableSnapshotProgress> = snapshot
        .iter()
        .filter(|t| !t.done && t.rows_read > 0)
        .collect();
    let mut lines = Vec::new();
    for t in active.iter().take(MAX_TABLE_LINES) {
        let name = t.table.to_string();
        let mut line = format!("  {name:<width$}  ");
        let r = rate(t.rows_read, before(t));
        match t.rows_estimated.filter(|e| *e > 0) {
            Some(estimate) => {
                let fraction = (t.rows_read as f64 / estimate as f64).min(1.0);
                let _ = write!(
                    line,
                    "{} {:>3.0}%  {} / ~{}",
                    bar(fraction),
                    fraction * 100.0,
                    group(t.rows_read),
                    group(estimate)
                );
                if let Some(r) = r.filter(|r| *r > 0.0) {
                    let left = estimate.saturating_sub(t.rows_read) as f64 / r;
                    let _ = write!(
                        line,
                        "  {} rows/s  ETA {}",
                        group(r as u64),
                        duration(Duration::from_secs_f64(left))
                    );
                }
            }
            None => {
                let _ = write!(line, "{} rows", group(t.rows_read));
                if let Some(r) = r {
                    let _ = write!(line, "  {} rows/s", group(r as u64));
                }
            }
        }
        lines.push(line);
    }
    let waiting = snapshot
        .iter()
        .filter(|t| !t.done && t.rows_read == 0)
        .count()
        + active.len().saturating_sub(MAX_TABLE_LINES);
    let finished = snapshot.iter().filter(|t| t.done).count();
    if waiting > 0 || finished > 0 {
        lines.push(format!("  {finished} tables done, {waiting} waiting"));
    }
    lines
}

fn bar(fraction: f64) -> String {
    const WIDTH: usize = 20;
    let full = ((fraction * WIDTH as f64).round() as usize).min(WIDTH);
    format!("[{}{}]", "#".repeat(full), ".".repeat(WIDTH - full))
}

/// `1234567` -> `1,234,567`.
pub(crate) fn group(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

fn bytes(n: u64) -> String {
    let n = n as f64;
    if n >= 1e9 {
        format!("{:.1} GB", n / 1e9)
    } else if n >= 1e6 {
        format!("{:.1} MB", n / 1e6)
    } else if n >= 1e3 {
        format!("{:.1} kB", n / 1e3)
    } else {
        format!("{n} B")
    }
}

fn duration(d: Duration) -> String {
    let secs = d.as_secs();
    if secs >= 3600 {
        format!("{}h{:02}m", secs / 3600, secs % 3600 / 60)
    } else if secs >= 60 {
        format!("{}m{:02}s", secs / 60, secs % 60)
    } else if secs >= 10 {
        format!("{secs}s")
    } else {
        format!("{:.1}s", d.as_secs_f64())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cdc_api::TableId;

    fn table(name: &str, read: u64, estimate: Option<u64>, done: bool) -> TableSnapshotProgress {
        TableSnapshotProgress {
            table: TableId::new("shop", name),
            rows_read: read,
            rows_estimated: estimate,
            done,
        }
    }

    fn sample(at: Instant, tables: Vec<TableSnapshotProgress>, streaming: bool) -> Sample {
        Sample {
            at,
            progress: SourceProgress {
                snapshot: tables,
                streaming,
                lag: streaming.then_some(Duration::from_millis(400)),
            },
            sink: SinkStats::default(),
            changes: 0,
            since_checkpoint: None,
        }
    }

    #[test]
    fn snapshot_lines_show_progress_rate_and_eta() {
        let t0 = Instant::now();
        let before = sample(
            t0,
            vec![
                table("orders", 100_000, Some(1_000_000), false),
                table("customers", 5_000, Some(5_000), true),
                table("items", 0, Some(10), false),
            ],
            false,
        );
        let now = sample(
            t0 + Duration::from_secs(2),
            vec![
                table("orders", 300_000, Some(1_000_000), false),
                table("customers", 5_000, Some(5_000), true),
                table("items", 0, Some(10), false),
            ],
            false,
        );
        let lines = render(Some(&before), &now, Duration::from_secs(5));
        assert_eq!(
            lines[0],
            "snapshot  1/3 tables  305,000 rows  100,000 rows/s"
        );
        assert!(lines[1].starts_with("  shop.orders     [######..............]  30%  300,000 / ~1,000,000  100,000 rows/s  ETA 7.0s"), "{}", lines[1]);
        assert_eq!(lines[2], "  1 tables done, 1 waiting");
        assert!(
            lines[3].starts_with("reading snapshot  0 changes written"),
            "{}",
            lines[3]
        );
    }

    #[test]
    fn streaming_line_shows_lag_and_sink() {
        let t0 = Instant::now();
        let mut now = sample(t0, Vec::new(), true);
        now.changes = 1_234_567;
        now.since_checkpoint = Some(3);
        let mut stats = SinkStats::default();
        stats.record_load(1000, 2_500_000, Duration::from_millis(80));
        stats.retries = 2;
        now.sink = stats;
        let lines = render(None, &now, Duration::from_secs(75));
        assert_eq!(
            lines,
            [
                "streaming  1,234,567 changes written  lag 0.4s  last checkpoint 3s ago  up 1m15s",
                "sink  1 loads  2.5 MB  1,000 rows  mean load 0.1s  retries 2",
            ]
        );
    }

    #[test]
    fn numbers_are_grouped() {
        assert_eq!(group(0), "0");
        assert_eq!(group(999), "999");
        assert_eq!(group(1000), "1,000");
        assert_eq!(group(12_345_678), "12,345,678");
    }
}
