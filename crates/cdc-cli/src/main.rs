//! `cdc`: run and check change-data-capture pipelines described in Flink-CDC-style YAML.

use std::path::PathBuf;
use std::process::ExitCode;

use cdc_api::ConnectorRegistry;
use cdc_runtime::{Pipeline, PipelineDefinition, StateLocation};
use clap::{Parser, Subcommand};

mod live_view;
mod plan;
mod quickstart;

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
        /// Keep checkpoints in this directory (overrides pipeline.state.dir); a restart
        /// resumes from them. `none` keeps them in memory only, so a restart starts over.
        /// Default: pipeline.state.dir, else $XDG_STATE_HOME/cdc/<pipeline name> or
        /// ~/.local/state/cdc/<pipeline name>. One run at a time may use a directory.
        #[arg(long, value_name = "DIR|none")]
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

fn main() -> ExitCode {
    let cli = Cli::parse();
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
    match runtime.block_on(execute(cli.command)) {
        Ok(()) => ExitCode::SUCCESS,
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
            ExitCode::FAILURE
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
            let outcome = built.run(shutdown_signal()).await;
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
    }
}

/// Completes on Ctrl-C or SIGTERM.
async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
