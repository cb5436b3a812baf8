//! One measured pipeline, run in a child process of the benchmark so that its peak RSS
//! (`VmHWM`) is the pipeline's alone: not the Doris emulator's tables, not the data of
//! earlier phases.
//!
//! Protocol on stdout, one line each: `done` when a counting sink has seen the expected
//! changes (the parent stops its clock there), `started` for a Doris sink (the parent
//! watches the emulator instead and writes `stop` to stdin when the rows are visible), and
//! last `rss KB` after the pipeline has stopped. A failed pipeline prints `error ...` and
//! exits with status 1.

use std::io::Write as _;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use cdc_api::ConnectorRegistry;
use cdc_runtime::{MemoryStateStore, Pipeline, PipelineDefinition};
use clap::{Args, ValueEnum};
use tokio::io::AsyncBufReadExt as _;

use crate::counting::CountingSinkFactory;

/// Where the source starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum Mode {
    /// `scan.startup.mode: snapshot` (ends after the snapshot).
    Snapshot,
    /// `scan.startup.mode: initial` (snapshot, then the binlog).
    Initial,
    /// `scan.startup.mode: specific-offset` at the start of `--binlog-file`.
    Binlog,
}

/// Which sink.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum SinkKind {
    /// Counts changes and drops them.
    Count,
    /// The Doris sink, into the emulator at `--fe`.
    Doris,
}

/// Arguments of `cdc-bench phase` (set by the parent process).
#[derive(Debug, Clone, Args)]
pub(crate) struct PhaseArgs {
    /// MariaDB port on 127.0.0.1 (user root, no password).
    #[arg(long)]
    pub(crate) port: u16,
    /// Captured table, `db.table`.
    #[arg(long)]
    pub(crate) table: String,
    #[arg(long, value_enum)]
    pub(crate) mode: Mode,
    /// Binlog file to start at (mode binlog).
    #[arg(long)]
    pub(crate) binlog_file: Option<String>,
    #[arg(long, value_enum)]
    pub(crate) sink: SinkKind,
    /// Changes after which a counting sink reports `done`.
    #[arg(long, default_value_t = 0)]
    pub(crate) expect: u64,
    /// The Doris emulator's FE address.
    #[arg(long)]
    pub(crate) fe: Option<String>,
    /// `sink.buffer-flush.interval` in milliseconds.
    #[arg(long, default_value_t = 1000)]
    pub(crate) flush_ms: u64,
    /// Exactly-once: `sink.enable-2pc: true`. Doris runs take a checkpoint every flush interval.
    #[arg(long)]
    pub(crate) two_phase: bool,
    /// The source's replication server id.
    #[arg(long)]
    pub(crate) server_id: u32,
    /// Pipeline name (and Stream Load label prefix).
    #[arg(long)]
    pub(crate) name: String,
    /// The pipeline's `parallelism` (snapshot readers); the source's default when absent.
    #[arg(long)]
    pub(crate) parallelism: Option<usize>,
}

impl PhaseArgs {
    /// The command line of `cdc-bench phase` for these arguments.
    pub(crate) fn to_args(&self) -> Vec<String> {
        let mut args = vec![
            "phase".to_string(),
            format!("--port={}", self.port),
            format!("--table={}", self.table),
            format!("--mode={}", value_name(self.mode)),
            format!("--sink={}", value_name(self.sink)),
            format!("--expect={}", self.expect),
            format!("--flush-ms={}", self.flush_ms),
            format!("--server-id={}", self.server_id),
            format!("--name={}", self.name),
        ];
        if let Some(file) = &self.binlog_file {
            args.push(format!("--binlog-file={file}"));
        }
        if let Some(fe) = &self.fe {
            args.push(format!("--fe={fe}"));
        }
        if self.two_phase {
            args.push("--two-phase".into());
        }
        if let Some(p) = self.parallelism {
            args.push(format!("--parallelism={p}"));
        }
        args
    }
}

fn value_name(v: impl ValueEnum) -> String {
    v.to_possible_value()
        .map(|p| p.get_name().to_string())
        .unwrap_or_default()
}

/// The pipeline file of a phase.
pub(crate) fn pipeline_yaml(a: &PhaseArgs) -> String {
    let mut source = format!(
        "source:\n  type: mysql\n  hostname: 127.0.0.1\n  port: {}\n  username: root\n  password: ''\n  \
         tables: {}\n  server-id: {}\n  server-time-zone: UTC\n",
        a.port,
        a.table.replace('.', "\\."),
        a.server_id
    );
    match a.mode {
        Mode::Snapshot => source.push_str("  scan.startup.mode: snapshot\n"),
        Mode::Initial => source.push_str("  scan.startup.mode: initial\n"),
        Mode::Binlog => source.push_str(&format!(
            "  scan.startup.mode: specific-offset\n  scan.startup.specific-offset.file: {}\n  \
             scan.startup.specific-offset.pos: 4\n",
            a.binlog_file.as_deref().unwrap_or_default()
        )),
    }
    let sink = match a.sink {
        SinkKind::Count => "sink:\n  type: count\n".to_string(),
        SinkKind::Doris => format!(
            "sink:\n  type: doris\n  fenodes: {}\n  username: root\n  password: ''\n  \
             sink.buffer-flush.interval: {}ms\n  sink.enable-2pc: {}\n  sink.label-prefix: {}\n  \
             table.create.properties.replication_num: 1\n",
            a.fe.as_deref().unwrap_or_default(),
            a.flush_ms,
            a.two_phase,
            a.name
        ),
    };
    let mut pipeline = format!("pipeline:\n  name: {}\n  local-time-zone: UTC\n", a.name);
    if let Some(p) = a.parallelism {
        pipeline.push_str(&format!("  parallelism: {p}\n"));
    }
    if a.sink == SinkKind::Doris {
        // Exactly-once makes rows visible at each checkpoint; at-least-once, too, for rows
        // of a snapshot (and after one ends, from the checkpoint that follows it).
        pipeline.push_str(&format!("  checkpoint.interval: {}ms\n", a.flush_ms));
    }
    format!("{source}{sink}{pipeline}")
}

/// The peak resident set size of this process so far, in KiB (`VmHWM`).
pub(crate) fn peak_rss_kb() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))?
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()
}

fn say(line: &str) {
    let mut out = std::io::stdout().lock();
    // The parent reads these lines; a closed pipe means it is gone and nothing is lost.
    let _ = writeln!(out, "{line}");
    let _ = out.flush();
}

/// Runs the phase and exits the process (a pending read of stdin would otherwise keep
/// the runtime from shutting down).
pub(crate) async fn run(args: PhaseArgs) -> ! {
    let code = match run_inner(&args).await {
        Ok(()) => 0,
        Err(e) => {
            say(&format!("error {e}"));
            1
        }
    };
    say(&format!("rss {}", peak_rss_kb().unwrap_or(0)));
    std::process::exit(code)
}

async fn run_inner(args: &PhaseArgs) -> Result<(), Box<dyn std::error::Error>> {
    let count = Arc::new(AtomicU64::new(0));
    let mut registry = ConnectorRegistry::new();
    registry
        .register_source(cdc_connector_mysql::MySqlSourceFactory)
        .register_sink(CountingSinkFactory(count.clone()))
        .register_sink(cdc_connector_doris::DorisSinkFactory);
    let yaml = pipeline_yaml(args);
    let definition = PipelineDefinition::from_yaml_str(&yaml, "bench.yaml")?;
    // State in memory, as before durable state became the default: every phase starts
    // from scratch, and the figures stay comparable with the earlier runs.
    let handle = Pipeline::build(&definition, &registry)?
        .with_state_store(Arc::new(MemoryStateStore::default()))
        .without_progress_log()
        .spawn();
    match args.sink {
        SinkKind::Count => {
            while count.load(Ordering::Relaxed) < args.expect && !handle.is_finished() {
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
            if count.load(Ordering::Relaxed) >= args.expect {
                say("done");
            }
        }
        SinkKind::Doris => {
            say("started");
            let mut lines = tokio::io::BufReader::new(tokio::io::stdin()).lines();
            let mut tick = tokio::time::interval(Duration::from_millis(20));
            loop {
                tokio::select! {
                    // `stop`, or the parent closed stdin: either way, stop.
                    _ = lines.next_line() => break,
                    _ = tick.tick() => if handle.is_finished() { break },
                }
            }
        }
    }
    handle.stop();
    let summary = handle.join().await?;
    if args.sink == SinkKind::Count && count.load(Ordering::Relaxed) < args.expect {
        return Err(format!(
            "the pipeline ended after {} of the {} expected changes",
            summary.data_changes, args.expect
        )
        .into());
    }
    Ok(())
}
