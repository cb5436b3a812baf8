//! `cdc-bench [ROWS]`: the end-to-end benchmarks. Starts the kit's MariaDB and the Doris
//! emulator, and measures, each next to a reference run in the same session so that the
//! ratios hold on a noisy machine:
//!
//! * binlog catch-up of ROWS row changes (counting sink and Doris sink) vs
//!   `mariadb-binlog --read-from-remote-server --raw` (the wire), the source's own reader
//!   over the same file on one thread (the raw decode), and python-mysql-replication;
//! * snapshots of the reference table (ROWS and `--big-rows` rows), of a 50-column
//!   table, and of tables with an integer, a composite and a string key (`--key-rows`;
//!   `cdc-bench keys` runs only these) vs `mariadb --quick -e 'SELECT * ...' > /dev/null`;
//! * commit-to-visible latency (p50/p99) at a fixed change rate into the emulator;
//! * the peak RSS of each measured pipeline (each runs in a child process of its own).
//!
//! Prints markdown (`scripts/bench.sh` writes it to docs/performance.md); progress goes to
//! stderr. Benchmarks never fail on time: a missed target is reported, not an error.

mod child;
mod counting;
mod latency;
mod phase;
mod report;
mod run;
mod tools;

use std::path::PathBuf;

use clap::{Parser, Subcommand};

use crate::phase::PhaseArgs;

// The same allocator as the `cdc` binary, so that the figures are the product's.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Debug, Parser)]
#[command(
    name = "cdc-bench",
    about = "End-to-end benchmarks of the CDC engine against the kit's MariaDB and the Doris emulator",
    args_conflicts_with_subcommands = true
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    run: RunArgs,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Runs one measured pipeline (started by the benchmark itself).
    #[command(hide = true)]
    Phase(PhaseArgs),
    /// Only the snapshots by key type (integer, composite, string key), with their own
    /// MariaDB: prints their markdown table.
    Keys {
        /// Rows of each table.
        #[arg(default_value_t = 1_000_000)]
        rows: u64,
        /// Runs of each measurement (the median is reported).
        #[arg(long, default_value_t = 3)]
        repeat: usize,
    },
    /// Prints the criterion results under DIR as markdown tables.
    CriterionReport {
        /// criterion's output directory (`target/criterion` or `$CRITERION_HOME`).
        dir: PathBuf,
    },
}

#[derive(Debug, clap::Args)]
struct RunArgs {
    /// Rows of the reference table: the binlog catch-up's row changes and the first snapshot.
    rows: Option<u64>,
    /// Rows of the big snapshot (the reference table grown to this size); 0 skips it.
    #[arg(long)]
    big_rows: Option<u64>,
    /// Rows of the 50-column table; 0 skips it.
    #[arg(long)]
    wide_rows: Option<u64>,
    /// Rows of each key-type table (integer, composite, string key); 0 skips them.
    #[arg(long)]
    key_rows: Option<u64>,
    /// Changes per second of the latency runs.
    #[arg(long)]
    latency_rate: Option<u64>,
    /// Measured seconds of each latency run.
    #[arg(long)]
    latency_secs: Option<u64>,
    /// Seconds of changes left out of the latency percentiles at the start.
    #[arg(long)]
    warmup_secs: Option<u64>,
    /// The Doris sink's `sink.buffer-flush.interval` (and the exactly-once run's
    /// `checkpoint.interval`), in milliseconds.
    #[arg(long, default_value_t = 1000)]
    flush_ms: u64,
    /// Runs of each short measurement (the median is reported).
    #[arg(long)]
    repeat: Option<usize>,
    /// A Python with `mysql-replication` installed (python-mysql-replication side by side).
    #[arg(long)]
    python: Option<PathBuf>,
    /// Why python-mysql-replication is not measured (printed as "not measured: WHY").
    #[arg(long, conflicts_with = "python")]
    python_missing: Option<String>,
    /// At most this many rows for python-mysql-replication (its rate is reported).
    #[arg(long)]
    python_rows: Option<u64>,
    /// criterion's output directory: adds the micro benchmarks and their target.
    #[arg(long)]
    criterion: Option<PathBuf>,
    /// Smoke-test sizes (about half a minute): 20,000 rows, small tables, short latency runs.
    #[arg(long)]
    quick: bool,
}

impl RunArgs {
    fn settings(self) -> run::Settings {
        let q = self.quick;
        let pick = |given: Option<u64>, quick: u64, full: u64| {
            given.unwrap_or(if q { quick } else { full })
        };
        let rows = pick(self.rows, 20_000, 1_000_000);
        run::Settings {
            rows,
            big_rows: pick(self.big_rows, 50_000, 10_000_000),
            wide_rows: pick(self.wide_rows, 2_000, 200_000),
            latency_rate: pick(self.latency_rate, 200, 1000).max(1),
            latency_secs: pick(self.latency_secs, 3, 30),
            warmup_secs: pick(self.warmup_secs, 1, 2),
            flush_ms: self.flush_ms,
            repeat: self.repeat.unwrap_or(if q { 1 } else { 3 }).max(1),
            python: self.python,
            python_missing: self.python_missing,
            python_rows: pick(self.python_rows, 20_000, 200_000),
            criterion: self.criterion,
            key_rows: pick(self.key_rows, 20_000, 1_000_000),
        }
    }
}

#[tokio::main]
async fn main() {
    let cli = Cli::parse();
    match cli.command {
        Some(Command::Phase(args)) => phase::run(args).await,
        Some(Command::Keys { rows, repeat }) => match run::run_keys(rows, repeat).await {
            Ok(markdown) => print!("{markdown}"),
            Err(e) => {
                eprintln!("cdc-bench: {e}");
                std::process::exit(1);
            }
        },
        Some(Command::CriterionReport { dir }) => match report::read_criterion(&dir) {
            Ok(results) => print!("{}", report::micro_tables(&results)),
            Err(e) => {
                eprintln!("cdc-bench: {e}");
                std::process::exit(1);
            }
        },
        None => match run::run(cli.run.settings()).await {
            Ok(markdown) => print!("{markdown}"),
            Err(e) => {
                eprintln!("cdc-bench: {e}");
                std::process::exit(1);
            }
        },
    }
}
