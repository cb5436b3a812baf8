//! `cdc`: run and check change-data-capture pipelines described in Flink-CDC-style YAML.

use std::path::PathBuf;
use std::process::ExitCode;

use cdc_api::ConnectorRegistry;
use cdc_runtime::{Pipeline, PipelineDefinition, StateLocation};
use clap::{Parser, Subcommand};

mod live_view;
mod plan;
mod quickstart;
mod verify;

use live_view::{LiveView, ProgressMode};

// Rows are decoded on the reader's threads and freed on the sink's: glibc's allocator
// serialises those cross-thread frees on an arena lock (a tenth of the snapshot's CPU in
// a profile); mimalloc frees them without it. Measured in docs/performance.md.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Replicates MySQL / MariaDB into Apache Doris and StarRocks: a consistent snapshot, then
/// the binlog, continuously. Pipelines are YAML files in the Flink CDC format.
#[derive(Debug, Parser)]
#[command(name = "cdc", version)]
#[command(
    after_help = "Examples:\n  cdc validate examples/mariadb-to-doris.yaml\n  cdc run examples/mariadb-to-doris.yaml --state-dir ./state\n\nLogs: set RUST_LOG (e.g. RUST_LOG=debug)."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run a pipeline until its source ends or it is stopped (Ctrl-C / SIGTERM stop it
    /// cleanly after a final checkpoint).
    Run {
        /// The pipeline file.
        pipeline: PathBuf,
        /// Keep checkpoints in this directory, or in an object store (s3://bucket/prefix,
        /// gs://, az://, file://; credentials from the environment); overrides
        /// pipeline.state.dir; a restart resumes from them. `none` keeps them in memory
        /// only, so a restart starts over.
        /// Default: pipeline.state.dir, else $XDG_STATE_HOME/cdc/<pipeline name> or
        /// ~/.local/state/cdc/<pipeline name>. One run at a time may use a directory.
        #[arg(long, value_name = "DIR|URL|none")]
        state_dir: Option<PathBuf>,
        /// Start over instead of resuming: a new snapshot, schemas learnt afresh. The last
        /// checkpoint only finishes its commits and continues its numbering. Needed after
        /// a definition change that cannot resume (other source, tables removed).
        #[arg(long)]
        reset: bool,
        /// The live progress view (snapshot per table, streaming rate and lag): auto shows
        /// it when stderr is a terminal, plain log lines otherwise.
        #[arg(long, value_enum, default_value_t = ProgressMode::Auto)]
        progress: ProgressMode,
    },
    /// Check a pipeline file and print what it would do, without connecting anywhere
    /// (with --connect: also check the servers' settings, privileges and credentials).
    Validate {
        /// The pipeline file.
        pipeline: PathBuf,
        /// Also connect to the source and the target and check they can run the pipeline.
        #[arg(long)]
        connect: bool,
    },
    /// Ask a running pipeline to read tables again while it streams (a changed or
    /// repaired target): writes an execute-snapshot row into the signalling table named by
    /// the source's `debezium.signal.data.collection`.
    Snapshot {
        /// The pipeline file.
        pipeline: PathBuf,
        /// A captured `db.table` (or a regex over it) to read again; repeat for more.
        #[arg(long = "table", required = true, value_name = "DB.TABLE")]
        tables: Vec<String>,
    },
    /// Compare every captured source table with its target table by primary key and
    /// report missing, extra and different rows (exit 0 equal, 1 different, 2 error).
    Verify(verify::VerifyArgs),
    /// List the built-in connectors and their options.
    Connectors,
    /// Try it: a private MariaDB with a demo shop, a Doris emulator, the pipeline between
    /// them, live changes, and the two sides compared. Needs MariaDB installed; leaves
    /// nothing behind.
    Quickstart,
}

/// Every connector the `cdc` binary knows.
fn registry() -> ConnectorRegistry {
    let mut registry = ConnectorRegistry::new();
    registry
        .register_source(cdc_connector_mysql::MySqlSourceFactory)
        .register_sink(cdc_connector_doris::DorisSinkFactory)
        .register_sink(cdc_connector_starrocks::StarRocksSinkFactory)
        .register_source(cdc_testkit::ValuesSourceFactory)
        .register_sink(cdc_testkit::ValuesSinkFactory);
    registry
}

/// The exit codes a supervisor can act on (docs/operating.md, "Exit codes").
mod exit {
    /// The pipeline ended (BATCH done, the source ended) or stopped cleanly on a signal
    /// after its final checkpoint; also `cdc validate` and the other commands succeeding.
    pub(crate) const OK: u8 = 0;
    /// A configuration problem a person must fix: the command line, the pipeline file, a
    /// checkpoint that cannot resume, a state location that is unusable or in use by
    /// another run; also anything not classified below.
    pub(crate) const CONFIG: u8 = 1;
    /// A permanent failure: a connector says retrying cannot help (credentials, a missing
    /// table, rows the target refuses).
    pub(crate) const PERMANENT: u8 = 2;
    /// A transient failure that outlasted the retries and restarts: the source, the target
    /// or the state store away. Restarting later resumes from the last checkpoint.
    pub(crate) const TRANSIENT: u8 = 3;
    /// Another instance took over the pipeline's state: this one stopped before
    /// committing anything. Do not restart it while the other runs.
    pub(crate) const FENCED: u8 = 4;
}

/// A signal that stopped `cdc run` before its final checkpoint completed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Signal {
    Interrupt,
    Terminate,
}

impl Signal {
    /// 128 + the signal number, as a shell reports a process the signal killed.
    fn exit_code(self) -> u8 {
        match self {
            Self::Interrupt => 130,
            Self::Terminate => 143,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Self::Interrupt => "SIGINT",
            Self::Terminate => "SIGTERM",
        }
    }
}

/// `cdc run` gave up waiting for its final checkpoint.
#[derive(Debug)]
struct StoppedBySignal {
    signal: Signal,
    why: String,
}

impl std::fmt::Display for StoppedBySignal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "stopped by {} {}, without the final checkpoint; the next run resumes from the last durable checkpoint",
            self.signal.name(),
            self.why
        )
    }
}

impl std::error::Error for StoppedBySignal {}

/// The exit code for an error that ended a command (see [`exit`]).
fn exit_code(error: &anyhow::Error) -> u8 {
    use cdc_runtime::RuntimeError;
    if let Some(stopped) = error.downcast_ref::<StoppedBySignal>() {
        return stopped.signal.exit_code();
    }
    match error.downcast_ref::<RuntimeError>() {
        Some(RuntimeError::Fenced { .. }) => exit::FENCED,
        Some(RuntimeError::StateUnavailable { .. } | RuntimeError::StateMaybeSaved { .. }) => {
            exit::TRANSIENT
        }
        Some(RuntimeError::Connector { source, .. }) => {
            if source.is_retryable() || source.is_transaction_lost() {
                exit::TRANSIENT
            } else if matches!(source, cdc_api::Error::InvalidOption { .. }) {
                exit::CONFIG
            } else {
                exit::PERMANENT
            }
        }
        _ => exit::CONFIG,
    }
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            // --help and --version print to stdout and succeed; a usage error is a
            // configuration error (1), not clap's default 2, which means a permanent failure here.
            let _ = e.print();
            return if e.use_stderr() {
                ExitCode::from(exit::CONFIG)
            } else {
                ExitCode::from(exit::OK)
            };
        }
    };
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(|| live_view::StderrWriter)
        .with_target(false)
        .init();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    if let Command::Verify(args) = cli.command {
        // Its own exit codes: 0 equal, 1 a difference, 2 an error (docs/operating.md).
        let code = runtime.block_on(verify::run(args, &registry()));
        runtime.shutdown_timeout(std::time::Duration::from_secs(1));
        return ExitCode::from(code);
    }
    let result = runtime.block_on(execute(cli.command));
    // A run that gave up on its final checkpoint leaves tasks behind: do not wait for them.
    runtime.shutdown_timeout(std::time::Duration::from_secs(1));
    match result {
        Ok(()) => ExitCode::from(exit::OK),
        Err(e) => {
            // Secret values the pipeline file substituted never reach the terminal.
            let mut printed = cdc_runtime::secrets::redact(&e.to_string());
            eprintln!("error: {printed}");
            let mut source = e.source();
            while let Some(cause) = source {
                // Wrapping errors often repeat their cause's text; print what is new only.
                let text = cdc_runtime::secrets::redact(&cause.to_string());
                if !printed.contains(&text) {
                    eprintln!("  caused by: {text}");
                    printed = text;
                }
                source = cause.source();
            }
            ExitCode::from(exit_code(&e))
        }
    }
}

async fn execute(command: Command) -> anyhow::Result<()> {
    let registry = registry();
    match command {
        Command::Validate { pipeline, connect } => {
            let definition = PipelineDefinition::from_yaml_file(&pipeline)?;
            let mut built = Pipeline::build(&definition, &registry)?;
            print!("{}", plan::describe(&definition, built.settings()));
            if connect {
                for (side, line) in built.preflight().await? {
                    println!("  {side}: {line}");
                }
            }
            println!("OK: {} is valid.", pipeline.display());
            Ok(())
        }
        Command::Snapshot { pipeline, tables } => {
            let definition = PipelineDefinition::from_yaml_file(&pipeline)?;
            if definition.source.connector_type != "mysql" {
                anyhow::bail!(
                    "{}: cdc snapshot asks a MySQL source to read tables again; this source is '{}'",
                    pipeline.display(),
                    definition.source.connector_type
                );
            }
            let settings = cdc_runtime::PipelineSettings::from_options(
                &definition.pipeline,
                &definition.origin,
            )?;
            let context = cdc_api::FactoryContext {
                pipeline_name: settings.name.clone(),
                options: definition.source.options.clone(),
                pipeline_options: definition.pipeline.clone(),
            };
            let id = cdc_connector_mysql::request_reread(&context, &tables).await?;
            println!(
                "requested: {} will be read again by the running pipeline '{}' (signal {id})",
                tables.join(", "),
                settings.name
            );
            Ok(())
        }
        Command::Run {
            pipeline,
            state_dir,
            reset,
            progress,
        } => {
            let definition = PipelineDefinition::from_yaml_file(&pipeline)?;
            let mut built = Pipeline::build(&definition, &registry)?.with_reset(reset);
            if let Some(dir) = state_dir {
                built = built.with_state_location(StateLocation::from_value(dir));
            }
            // The run logs where its state is (`state: directory ...`) when it claims it.
            let show_view = progress.enabled();
            if show_view {
                built = built.without_progress_log();
            }
            let view = show_view.then(|| LiveView::start(built.metrics()));
            let timeout = built.settings().shutdown_timeout;
            let outcome = run_until_signalled(built, timeout).await;
            drop(view);
            let summary = outcome?;
            tracing::info!(
                data_changes = summary.data_changes,
                schema_changes = summary.schema_changes,
                checkpoints = summary.checkpoints,
                "pipeline finished"
            );
            Ok(())
        }
        Command::Connectors => {
            print!("{}", plan::connectors(&registry));
            Ok(())
        }
        Command::Quickstart => quickstart::run(&registry).await,
        Command::Verify(_) => Ok(()),
    }
}

/// Runs `pipeline`; the first SIGINT / SIGTERM stops it with a final checkpoint, which may
/// take up to `timeout`. Past it, or at a second signal, it gives up with
/// [`StoppedBySignal`] (exit 130 / 143): the state keeps the last durable checkpoint.
async fn run_until_signalled(
    pipeline: Pipeline,
    timeout: std::time::Duration,
) -> Result<cdc_runtime::RunSummary, anyhow::Error> {
    let mut signals = listen_for_signals();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let run = pipeline.run(async move {
        let _ = stopped.await;
    });
    tokio::pin!(run);
    let mut stop = Some(stop);
    let mut deadline: Option<(Signal, tokio::time::Instant)> = None;
    loop {
        let overdue = async {
            match deadline {
                Some((_, at)) => tokio::time::sleep_until(at).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            outcome = &mut run => return Ok(outcome?),
            Some(signal) = signals.recv() => {
                if let Some(stop) = stop.take() {
                    tracing::info!(
                        "{}: stopping after a final checkpoint (pipeline.shutdown.timeout {}; a second signal stops at once)",
                        signal.name(),
                        humanize(timeout)
                    );
                    let _ = stop.send(());
                    deadline = Some((signal, tokio::time::Instant::now() + timeout));
                } else {
                    return Err(StoppedBySignal {
                        signal,
                        why: "a second time".into(),
                    }
                    .into());
                }
            }
            () = overdue => {
                let signal = deadline.map_or(Signal::Terminate, |(s, _)| s);
                return Err(StoppedBySignal {
                    signal,
                    why: format!(
                        "and the final checkpoint did not complete within pipeline.shutdown.timeout ({})",
                        humanize(timeout)
                    ),
                }
                .into());
            }
        }
    }
}

fn humanize(d: std::time::Duration) -> String {
    if d.subsec_millis() == 0 {
        format!("{}s", d.as_secs())
    } else {
        format!("{}ms", d.as_millis())
    }
}

/// Every SIGINT (Ctrl-C) and SIGTERM, as they arrive.
fn listen_for_signals() -> tokio::sync::mpsc::UnboundedReceiver<Signal> {
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{SignalKind, signal};
            if let Ok(mut term) = signal(SignalKind::terminate()) {
                loop {
                    let got = tokio::select! {
                        r = tokio::signal::ctrl_c() => r.ok().map(|()| Signal::Interrupt),
                        r = term.recv() => r.map(|()| Signal::Terminate),
                    };
                    match got {
                        Some(s) if tx.send(s).is_ok() => {}
                        _ => return,
                    }
                }
            }
        }
        while tokio::signal::ctrl_c().await.is_ok() {
            if tx.send(Signal::Interrupt).is_err() {
                return;
            }
        }
    });
    rx
}
