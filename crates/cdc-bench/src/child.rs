//! The parent's side of a phase run in a child process (see [`crate::phase`]).

use std::collections::HashSet;
use std::process::Stdio;
use std::time::{Duration, Instant};

use cdc_testkit::{DorisEmulator, TxnState};
use tokio::io::{AsyncBufReadExt as _, AsyncWriteExt as _, BufReader, Lines};
use tokio::process::{Child, ChildStdin, ChildStdout, Command};

use crate::phase::PhaseArgs;

/// How long a phase may take before the benchmark gives up on it (a hang, not a slow run:
/// benchmarks never fail on time).
const PHASE_DEADLINE: Duration = Duration::from_secs(3600);

/// The outcome of one measured phase.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Outcome {
    /// From starting the child process to the end condition.
    pub(crate) elapsed: Duration,
    /// The child's peak RSS in KiB.
    pub(crate) rss_kb: Option<u64>,
}

/// A running phase.
pub(crate) struct PhaseChild {
    child: Child,
    lines: Lines<BufReader<ChildStdout>>,
    stdin: Option<ChildStdin>,
    what: String,
}

impl PhaseChild {
    /// Starts `cdc-bench phase` with `args`.
    pub(crate) fn spawn(args: &PhaseArgs) -> Result<Self, String> {
        let exe = std::env::current_exe()
            .map_err(|e| format!("cannot find the cdc-bench executable: {e}"))?;
        let mut child = Command::new(exe)
            .args(args.to_args())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| format!("cannot start the phase {}: {e}", args.name))?;
        let stdout = child
            .stdout
            .take()
            .ok_or("the phase's stdout is not a pipe")?;
        let stdin = child.stdin.take();
        Ok(Self {
            child,
            lines: BufReader::new(stdout).lines(),
            stdin,
            what: args.name.clone(),
        })
    }

    /// Waits for the line `expected`; an `error` line or the end of output is an error.
    pub(crate) async fn wait_for(&mut self, expected: &str) -> Result<(), String> {
        loop {
            match self.lines.next_line().await {
                Ok(Some(line)) if line == expected => return Ok(()),
                Ok(Some(line)) if line.starts_with("error ") || line.starts_with("rss ") => {
                    let error = line.strip_prefix("error ").map(str::to_string);
                    let _ = self.child.wait().await;
                    return Err(format!(
                        "phase {} ended before '{expected}': {}",
                        self.what,
                        error.unwrap_or_else(|| "no error reported".into())
                    ));
                }
                Ok(Some(_)) => {}
                Ok(None) | Err(_) => {
                    let status = self.child.wait().await;
                    return Err(format!(
                        "phase {} exited ({status:?}) before '{expected}' (its stderr is above)",
                        self.what
                    ));
                }
            }
        }
    }

    /// Whether the child has exited.
    pub(crate) fn exited(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(Some(_)))
    }

    /// Tells the child to stop, waits for it, and returns its peak RSS.
    pub(crate) async fn finish(mut self) -> Result<Option<u64>, String> {
        if let Some(mut stdin) = self.stdin.take() {
            // It may have ended already (a bounded snapshot): then nobody reads this.
            let _ = stdin.write_all(b"stop\n").await;
        }
        let mut rss = None;
        let mut error = None;
        while let Ok(Some(line)) = self.lines.next_line().await {
            if let Some(kb) = line.strip_prefix("rss ") {
                rss = kb.trim().parse().ok().filter(|kb| *kb > 0);
            } else if let Some(e) = line.strip_prefix("error ") {
                error = Some(e.to_string());
            }
        }
        let status = self.child.wait().await;
        match error {
            Some(e) => Err(format!("phase {} failed: {e}", self.what)),
            None if !status.as_ref().is_ok_and(std::process::ExitStatus::success) => Err(format!(
                "phase {} exited with {status:?} (its stderr is above)",
                self.what
            )),
            None => Ok(rss),
        }
    }
}

/// Runs a phase with a counting sink: the time until it has seen `args.expect` changes.
pub(crate) async fn counted(args: &PhaseArgs) -> Result<Outcome, String> {
    let started = Instant::now();
    let mut child = PhaseChild::spawn(args)?;
    tokio::time::timeout(PHASE_DEADLINE, child.wait_for("done"))
        .await
        .map_err(|_| format!("phase {} did not finish within an hour", args.name))??;
    let elapsed = started.elapsed();
    let rss_kb = child.finish().await?;
    Ok(Outcome { elapsed, rss_kb })
}

/// Rows of `db.table` the emulator shows, counted from its load log after entry `since`:
/// loads without two-phase commit are visible once they succeed, two-phase ones once
/// their transaction is committed. (Reading the log is cheap; counting the table's rows
/// would copy and sort them under the emulator's lock, slowing the loads measured.)
pub(crate) fn visible_rows(
    doris: &DorisEmulator,
    db: &str,
    table: &str,
    since: usize,
    two_phase: bool,
) -> u64 {
    let log = doris.load_log();
    let loads = log
        .iter()
        .skip(since)
        .filter(|r| r.db == db && r.table == table && r.status == "Success");
    // At-least-once runs pre-commit too, while the source reads a snapshot.
    let any_two_phase = two_phase || loads.clone().any(|r| r.two_phase_commit);
    let committed: HashSet<i64> = if any_two_phase {
        doris
            .transactions()
            .into_iter()
            .filter(|t| t.state == TxnState::Committed && t.db == db && t.table == table)
            .map(|t| t.txn_id)
            .collect()
    } else {
        HashSet::new()
    };
    loads
        .filter(|r| !r.two_phase_commit || committed.contains(&r.txn_id))
        .map(|r| r.loaded_rows)
        .sum()
}

/// Runs a phase with the Doris sink: the time until `args.expect` rows of `db.table` are
/// visible in the emulator.
pub(crate) async fn into_doris(
    args: &PhaseArgs,
    doris: &DorisEmulator,
    db: &str,
    table: &str,
) -> Result<Outcome, String> {
    let since = doris.load_log().len();
    let started = Instant::now();
    let mut child = PhaseChild::spawn(args)?;
    loop {
        if visible_rows(doris, db, table, since, args.two_phase) >= args.expect {
            break;
        }
        if child.exited() {
            child.finish().await?;
            return Err(format!(
                "phase {} ended with {} of {} rows visible in the emulator",
                args.name,
                visible_rows(doris, db, table, since, args.two_phase),
                args.expect
            ));
        }
        if started.elapsed() > PHASE_DEADLINE {
            return Err(format!("phase {} did not finish within an hour", args.name));
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    let elapsed = started.elapsed();
    let rss_kb = child.finish().await?;
    Ok(Outcome { elapsed, rss_kb })
}
