//! Conformance checks for a [`Sink`] and its [`SchemaApplier`].
//!
//! Implement [`SinkHarness`] for your connector (build a fresh sink for a pipeline name, read
//! back what the target shows for a table, declare [`SinkCapabilities`]) and call
//! [`check`]. Every [`Case`] drives the sink the way the runtime does (open, commit of the
//! saved checkpoint, recover, writes with schema changes applied through the applier first,
//! prepare, a JSON round trip of the committables as the state store does, commit) and
//! compares what the target shows with what the rule allows. A "crash" drops the instance
//! without `commit` or `close`; a restart builds a new instance through the harness.
//!
//! Each case uses its own pipeline name (`conformance-<case>`) and its own table
//! (`<database>.<case>`), so cases do not see each other's data and the harness may share
//! one target between them. The target must not hold those tables before the run.
//!
//! ```
//! use cdc_api::{BoxError, FactoryContext, Options, Schema, SinkFactory, SinkParts, TableId, Value};
//! use cdc_testkit::conformance::sink::{self, SinkCapabilities, SinkHarness};
//! use cdc_testkit::{ValuesSinkFactory, values_database};
//!
//! /// The test kit's `values` sink: one in-memory database per pipeline.
//! struct ValuesHarness;
//!
//! #[async_trait::async_trait]
//! impl SinkHarness for ValuesHarness {
//!     fn capabilities(&self) -> SinkCapabilities {
//!         SinkCapabilities::exactly_once().with_tables_without_key()
//!     }
//!
//!     async fn create(&self, pipeline: &str) -> Result<SinkParts, BoxError> {
//!         let mut options = Options::new("sink");
//!         options.insert("sink-id", format!("doc-{pipeline}"));
//!         let ctx = FactoryContext {
//!             pipeline_name: pipeline.to_string(),
//!             options,
//!             pipeline_options: Options::new("pipeline"),
//!         };
//!         Ok(ValuesSinkFactory.create(&ctx)?)
//!     }
//!
//!     async fn read_rows(
//!         &self,
//!         pipeline: &str,
//!         table: &TableId,
//!         _schema: &Schema,
//!     ) -> Result<Vec<Vec<Value>>, BoxError> {
//!         let db = values_database(&format!("doc-{pipeline}"));
//!         let db = db.lock().map_err(|e| e.to_string())?;
//!         Ok(db.tables.get(table).map(|t| t.rows.clone()).unwrap_or_default())
//!     }
//! }
//!
//! # tokio::runtime::Runtime::new().unwrap().block_on(async {
//! let report = sink::check(ValuesHarness).await.unwrap(); // a Failure prints every broken rule
//! println!("{report}");
//! assert!(report.failed().is_empty());
//! # });
//! ```

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use cdc_api::{
    BoxError, CheckpointId, Column, ColumnPosition, Committable, DataChangeEvent, DataType,
    DataTypeKind, Event, OwnerEpoch, Recovery, Schema, SchemaApplier, SchemaChangeEvent,
    SchemaChangeKind, Sink, SinkParts, TableId, Value,
};

use super::report::{
    Outcome, Problem, Report, Status, call, isolated, multiset_diff, sample, status_of,
};
use super::{Failure, POLL_PAUSE};

/// The delivery guarantee a sink claims.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Delivery {
    /// Data becomes visible only at `commit`, once per checkpoint, also across crashes
    /// (two-phase loads, transactions).
    ExactlyOnce,
    /// Data becomes visible at `prepare` (or earlier) and may be written again after a
    /// crash; primary-key upserts make the final state right.
    AtLeastOnce,
}

/// What the sink claims to support; decides which cases run.
///
/// Build it with [`exactly_once`](Self::exactly_once) or
/// [`at_least_once`](Self::at_least_once) and adjust with the `with_*` / `without_*`
/// methods. Whether schema changes are checked follows from the applier: the
/// [`Case::SchemaChangeAddColumn`] case runs when its `supported_kinds` lists `add.column`.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct SinkCapabilities {
    /// The guarantee the sink claims.
    pub delivery: Delivery,
    /// Whether a delete removes the row with the same primary key (and an update that
    /// changes the key removes the old row). Default: yes.
    pub deletes: bool,
    /// Whether tables without a primary key keep every row, duplicates included. When set,
    /// exactly-once sinks are checked on such tables too, where a row loaded twice shows.
    /// Default: no.
    pub tables_without_key: bool,
    /// The longest any single sink, applier or harness call may take before the case fails
    /// as hanging. Default: 60 s.
    pub call_timeout: Duration,
    /// How long committed rows may take to become visible in the target (read-backs are
    /// repeated until then). Default: 30 s.
    pub visibility_timeout: Duration,
}

impl SinkCapabilities {
    /// An exactly-once sink that supports deletes, not tables without a key.
    pub fn exactly_once() -> Self {
        Self {
            delivery: Delivery::ExactlyOnce,
            deletes: true,
            tables_without_key: false,
            call_timeout: Duration::from_secs(60),
            visibility_timeout: Duration::from_secs(30),
        }
    }

    /// An at-least-once sink that supports deletes.
    pub fn at_least_once() -> Self {
        Self {
            delivery: Delivery::AtLeastOnce,
            ..Self::exactly_once()
        }
    }

    /// Deletes are not applied (an append-only or duplicate-key target).
    pub fn without_deletes(mut self) -> Self {
        self.deletes = false;
        self
    }

    /// Tables without a primary key keep every row, duplicates included.
    pub fn with_tables_without_key(mut self) -> Self {
        self.tables_without_key = true;
        self
    }

    /// Sets [`call_timeout`](Self::call_timeout).
    pub fn with_call_timeout(mut self, limit: Duration) -> Self {
        self.call_timeout = limit;
        self
    }

    /// Sets [`visibility_timeout`](Self::visibility_timeout).
    pub fn with_visibility_timeout(mut self, limit: Duration) -> Self {
        self.visibility_timeout = limit;
        self
    }

    fn exactly_once_claimed(&self) -> bool {
        self.delivery == Delivery::ExactlyOnce
    }
}

/// What the checks need from the connector's author.
#[async_trait]
pub trait SinkHarness: Send + Sync + 'static {
    /// What the sink supports.
    fn capabilities(&self) -> SinkCapabilities;

    /// The database (schema) of the test tables. Default: `conformance`.
    fn database(&self) -> String {
        "conformance".to_string()
    }

    /// A new, unopened sink and applier for `pipeline`, as the factory builds them when the
    /// process starts: each call for the same pipeline is a restart (same target, new
    /// instance). Typically `MyFactory.create(&FactoryContext { pipeline_name, .. })`.
    async fn create(&self, pipeline: &str) -> Result<SinkParts, BoxError>;

    /// The rows the target shows for `table` right now, written by `pipeline`, in any
    /// order, each with the values of `schema`'s columns in `schema`'s order (a missing
    /// value is [`Value::Null`]); an absent table has no rows. Values are compared as text
    /// (their `Display`), so a target that only keeps text may return [`Value::String`]s.
    async fn read_rows(
        &self,
        pipeline: &str,
        table: &TableId,
        schema: &Schema,
    ) -> Result<Vec<Vec<Value>>, BoxError>;
}

/// One rule of the sink contract, checked on its own pipeline and table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Case {
    /// Rows written before `prepare` become visible after `commit`.
    RowsVisibleAfterCommit,
    /// Exactly-once: nothing is visible before `commit`.
    NothingVisibleBeforeCommit,
    /// A repeated `commit` changes nothing.
    CommitIsIdempotent,
    /// Exactly-once: `abort` discards the prepared rows.
    AbortDiscards,
    /// A crash after `prepare`: the next run commits the saved committables and the rows
    /// appear once.
    RecoverCommitsSavedCheckpoint,
    /// Exactly-once: a crash after `prepare` without a saved checkpoint: `recover(None)`
    /// discards what was prepared.
    RecoverDiscardsUnsavedPrepare,
    /// Exactly-once: a crash after `prepare` of checkpoint n+1: `recover(Some(n))` discards it.
    RecoverDiscardsAfterOlderCheckpoint,
    /// After a restart (re-announced table, next checkpoint numbers) writes keep working.
    WritesAfterRecovery,
    /// A crash, then the source's replay from the last checkpoint: the final state is right.
    ReplayAfterCrash,
    /// Inserts, updates and replaces give the final state by primary key, in order.
    ChangesByKey,
    /// Deletes (and key-changing updates) remove rows by primary key.
    DeletesByKey,
    /// Checkpoints with nothing (or only a `CreateTable`) written work.
    EmptyCheckpoints,
    /// An `AddColumn` applied through the applier: old rows get NULL, new rows the value.
    SchemaChangeAddColumn,
    /// `flush` between writes, then a checkpoint: every row once.
    FlushThenCheckpoint,
    /// `poll_flush` keeps the guarantee (exactly-once: makes nothing visible).
    PollFlushKeepsGuarantees,
    /// `close` succeeds at any point and does not undo committed or saved work.
    CloseIsClean,
}

impl Case {
    /// Every case, in the order [`check`] runs them.
    pub const ALL: [Self; 16] = [
        Self::RowsVisibleAfterCommit,
        Self::NothingVisibleBeforeCommit,
        Self::CommitIsIdempotent,
        Self::AbortDiscards,
        Self::RecoverCommitsSavedCheckpoint,
        Self::RecoverDiscardsUnsavedPrepare,
        Self::RecoverDiscardsAfterOlderCheckpoint,
        Self::WritesAfterRecovery,
        Self::ReplayAfterCrash,
        Self::ChangesByKey,
        Self::DeletesByKey,
        Self::EmptyCheckpoints,
        Self::SchemaChangeAddColumn,
        Self::FlushThenCheckpoint,
        Self::PollFlushKeepsGuarantees,
        Self::CloseIsClean,
    ];

    /// The case's name, as reported (snake case, e.g. `commit_is_idempotent`).
    pub fn name(self) -> &'static str {
        match self {
            Self::RowsVisibleAfterCommit => "rows_visible_after_commit",
            Self::NothingVisibleBeforeCommit => "nothing_visible_before_commit",
            Self::CommitIsIdempotent => "commit_is_idempotent",
            Self::AbortDiscards => "abort_discards",
            Self::RecoverCommitsSavedCheckpoint => "recover_commits_saved_checkpoint",
            Self::RecoverDiscardsUnsavedPrepare => "recover_discards_unsaved_prepare",
            Self::RecoverDiscardsAfterOlderCheckpoint => "recover_discards_after_older_checkpoint",
            Self::WritesAfterRecovery => "writes_after_recovery",
            Self::ReplayAfterCrash => "replay_after_crash",
            Self::ChangesByKey => "changes_by_key",
            Self::DeletesByKey => "deletes_by_key",
            Self::EmptyCheckpoints => "empty_checkpoints",
            Self::SchemaChangeAddColumn => "schema_change_add_column",
            Self::FlushThenCheckpoint => "flush_then_checkpoint",
            Self::PollFlushKeepsGuarantees => "poll_flush_keeps_guarantees",
            Self::CloseIsClean => "close_is_clean",
        }
    }

    /// The rule the case checks.
    pub fn rule(self) -> &'static str {
        match self {
            Self::RowsVisibleAfterCommit => {
                "rows written before prepare(n) are visible in the target once commit of n's committables returned"
            }
            Self::NothingVisibleBeforeCommit => {
                "an exactly-once sink shows nothing of a checkpoint before its commit: not after write, not after prepare"
            }
            Self::CommitIsIdempotent => {
                "committing the same committables again (right away, after later checkpoints, or after a restart) changes nothing"
            }
            Self::AbortDiscards => {
                "abort of prepared committables discards their rows for good, also when the next run reuses the checkpoint number"
            }
            Self::RecoverCommitsSavedCheckpoint => {
                "after a crash between prepare and commit, the next run's commit of the saved committables (then recover from checkpoint n) makes the rows visible exactly once"
            }
            Self::RecoverDiscardsUnsavedPrepare => {
                "after a crash with checkpoint 1 prepared but never saved, recover (no checkpoint, the crashed run's epoch in `earlier`) discards it: the new run's checkpoint 1 shows only the new run's rows"
            }
            Self::RecoverDiscardsAfterOlderCheckpoint => {
                "after a crash with checkpoint n+1 prepared but not saved, recover from checkpoint n discards it: only checkpoint n and what the new run commits are visible"
            }
            Self::WritesAfterRecovery => {
                "after a restart (open, commit of the saved committables, recover from checkpoint n, the table announced again by CreateTable) writes and checkpoints n+1, n+2 keep working"
            }
            Self::ReplayAfterCrash => {
                "after a crash the source replays everything after the last saved checkpoint; once the new run commits, the target holds each change once"
            }
            Self::ChangesByKey => {
                "inserts, updates and replaces of the same key, within and across checkpoints, leave the last values per primary key"
            }
            Self::DeletesByKey => {
                "a delete removes the row with its primary key; an update that changes the key removes the old row"
            }
            Self::EmptyCheckpoints => {
                "prepare with nothing written (or only a CreateTable) succeeds, and its commit succeeds and changes nothing"
            }
            Self::SchemaChangeAddColumn => {
                "an AddColumn, applied by the applier and then written to the sink, gives the table the column: older rows show NULL, later rows their values"
            }
            Self::FlushThenCheckpoint => {
                "flush (which the runtime calls before schema changes) followed by more writes and a checkpoint leaves every row in the target once"
            }
            Self::PollFlushKeepsGuarantees => {
                "poll_flush (called twice a second) keeps the sink's guarantee: an exactly-once sink shows nothing uncommitted and loads nothing twice"
            }
            Self::CloseIsClean => {
                "close succeeds on a fresh sink, with unprepared rows and with prepared but uncommitted rows, and keeps prepared work committable by the next run"
            }
        }
    }

    /// What usually fixes a sink that breaks the rule.
    pub fn hint(self) -> &'static str {
        match self {
            Self::RowsVisibleAfterCommit => {
                "make commit (or prepare, for an at-least-once sink) load every row buffered by write, for every table"
            }
            Self::NothingVisibleBeforeCommit => {
                "buffer in write and load as pre-committed in prepare (two-phase load, transaction, staging file); publish only in commit. If the target cannot hide data, declare SinkCapabilities::at_least_once()"
            }
            Self::CommitIsIdempotent => {
                "identify prepared work by a deterministic label (pipeline, table, checkpoint) and treat 'already committed' as success instead of applying it again"
            }
            Self::AbortDiscards => {
                "make abort roll back the pre-committed work named by the committables (e.g. abort the transaction by label)"
            }
            Self::RecoverCommitsSavedCheckpoint => {
                "committables must hold everything needed to commit from a new instance (labels, transaction ids, file names): no state kept only in memory; they are stored as JSON"
            }
            Self::RecoverDiscardsUnsavedPrepare => {
                "in recover abort what the runs in `recovery.earlier` prepared for `recovery.next_checkpoint()` (derive their labels from pipeline, table, epoch and checkpoint), and label this run's work with `recovery.epoch`"
            }
            Self::RecoverDiscardsAfterOlderCheckpoint => {
                "in recover abort what the runs in `recovery.earlier` prepared for checkpoints after `recovery.last` before writing new data"
            }
            Self::WritesAfterRecovery => {
                "accept a CreateTable for a table that exists (applier and sink), keep no per-run state that a restart loses, and number labels from the checkpoint ids the runtime passes"
            }
            Self::ReplayAfterCrash => {
                "exactly-once: abort the crashed run's prepared work in recover; at-least-once: upsert by primary key so a replay converges"
            }
            Self::ChangesByKey => {
                "keep per-table order when buffering and loading, and upsert by primary key (an update's after image replaces the row)"
            }
            Self::DeletesByKey => {
                "turn a delete into a delete by key in the target, and an update whose key changed into a delete of the before image plus the after image; or declare without_deletes()"
            }
            Self::EmptyCheckpoints => {
                "return no committables (or committables that commit to nothing) when nothing was buffered; do not fail on tables with no rows"
            }
            Self::SchemaChangeAddColumn => {
                "track each table's schema from the CreateTable and schema change events written to the sink, and write rows by column name after the change"
            }
            Self::FlushThenCheckpoint => {
                "after flush, clear what was loaded from the buffer so prepare does not load it again"
            }
            Self::PollFlushKeepsGuarantees => {
                "in exactly-once mode poll_flush may only pre-commit (load invisibly as part of the next checkpoint), never publish"
            }
            Self::CloseIsClean => {
                "in close release connections and tasks only; do not abort prepared transactions (the runtime may have saved their checkpoint) and do not fail when there is nothing to do"
            }
        }
    }
}

impl fmt::Display for Case {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Runs every [`Case`] against the harness's sink. `Ok` when every case that applies passed;
/// the [`Report`] lists what ran and what was skipped by capability.
pub async fn check(harness: impl SinkHarness) -> Result<Report, Failure> {
    check_cases(harness, &Case::ALL).await
}

/// Runs the given cases only, in the order given (for narrowing down a failure).
pub async fn check_cases(harness: impl SinkHarness, cases: &[Case]) -> Result<Report, Failure> {
    let harness: Arc<dyn SinkHarness> = Arc::new(harness);
    let caps = harness.capabilities();
    let database = harness.database();
    let schema_changes = probe_schema_changes(&harness, &caps).await;
    let mut report = Report::new("sink");
    for &case in cases {
        let status = match skip_reason(case, &caps, &schema_changes) {
            Some(reason) => Status::Skipped { reason },
            None => {
                let cx = Ctx {
                    harness: harness.clone(),
                    caps: caps.clone(),
                    pipeline: format!("conformance-{}", case.name().replace('_', "-")),
                    database: database.clone(),
                    case,
                    epochs: Arc::default(),
                };
                status_of(isolated(run_case(case, cx)).await)
            }
        };
        report.outcomes.push(Outcome {
            case: case.name(),
            rule: case.rule(),
            hint: case.hint(),
            status,
        });
    }
    report.into_result()
}

/// Whether the applier lists `add.column`, from a sink built (never opened) for that.
async fn probe_schema_changes(
    harness: &Arc<dyn SinkHarness>,
    caps: &SinkCapabilities,
) -> Result<bool, String> {
    match tokio::time::timeout(caps.call_timeout, harness.create("conformance-probe")).await {
        Ok(Ok(parts)) => Ok(parts
            .applier
            .supported_kinds()
            .contains(&SchemaChangeKind::AddColumn)),
        Ok(Err(e)) => Err(format!("harness.create failed: {e}")),
        Err(_) => Err("harness.create hung".to_string()),
    }
}

fn skip_reason(
    case: Case,
    caps: &SinkCapabilities,
    schema: &Result<bool, String>,
) -> Option<String> {
    let eo_only = matches!(
        case,
        Case::NothingVisibleBeforeCommit
            | Case::AbortDiscards
            | Case::RecoverDiscardsUnsavedPrepare
            | Case::RecoverDiscardsAfterOlderCheckpoint
    );
    if eo_only && !caps.exactly_once_claimed() {
        return Some(
            "at-least-once sink: prepared rows are visible at once, there is nothing to hide or discard"
                .to_string(),
        );
    }
    match case {
        Case::DeletesByKey if !caps.deletes => {
            Some("the capabilities declare no deletes".to_string())
        }
        Case::SchemaChangeAddColumn => match schema {
            Ok(true) => None,
            Ok(false) => Some("the applier's supported_kinds does not list add.column".to_string()),
            // The case runs and reports the harness failure itself.
            Err(_) => None,
        },
        _ => None,
    }
}

async fn run_case(case: Case, cx: Ctx) -> Result<Option<String>, Problem> {
    match case {
        Case::RowsVisibleAfterCommit => rows_visible_after_commit(cx).await,
        Case::NothingVisibleBeforeCommit => nothing_visible_before_commit(cx).await,
        Case::CommitIsIdempotent => commit_is_idempotent(cx).await,
        Case::AbortDiscards => abort_discards(cx).await,
        Case::RecoverCommitsSavedCheckpoint => recover_commits_saved_checkpoint(cx).await,
        Case::RecoverDiscardsUnsavedPrepare => recover_discards_unsaved_prepare(cx).await,
        Case::RecoverDiscardsAfterOlderCheckpoint => {
            recover_discards_after_older_checkpoint(cx).await
        }
        Case::WritesAfterRecovery => writes_after_recovery(cx).await,
        Case::ReplayAfterCrash => replay_after_crash(cx).await,
        Case::ChangesByKey => changes_by_key(cx).await,
        Case::DeletesByKey => deletes_by_key(cx).await,
        Case::EmptyCheckpoints => empty_checkpoints(cx).await,
        Case::SchemaChangeAddColumn => schema_change_add_column(cx).await,
        Case::FlushThenCheckpoint => flush_then_checkpoint(cx).await,
        Case::PollFlushKeepsGuarantees => poll_flush_keeps_guarantees(cx).await,
        Case::CloseIsClean => close_is_clean(cx).await,
    }
}

// ---------------------------------------------------------------------------------------
// The cases. `r(id, name)` is a row of the two-column test table.

async fn rows_visible_after_commit(cx: Ctx) -> Result<Option<String>, Problem> {
    let t = cx.table("", true);
    let mut a = cx.start(None).await?;
    a.write(vec![
        t.create(),
        t.ins(1, "a"),
        t.ins(2, "b"),
        t.ins(3, "c"),
    ])
    .await?;
    a.checkpoint(1).await?;
    let after_1 = [r(1, "a"), r(2, "b"), r(3, "c")];
    cx.expect_rows(&t, &after_1, "after prepare(1) and commit")
        .await?;
    a.write(vec![t.ins(4, "d")]).await?;
    a.checkpoint(2).await?;
    let after_2 = [r(1, "a"), r(2, "b"), r(3, "c"), r(4, "d")];
    cx.expect_rows(&t, &after_2, "after prepare(2) and commit")
        .await?;
    a.close().await?;
    Ok(None)
}

async fn nothing_visible_before_commit(cx: Ctx) -> Result<Option<String>, Problem> {
    let t = cx.table("", true);
    let mut a = cx.start(None).await?;
    a.write(vec![t.create(), t.ins(1, "a"), t.ins(2, "b")])
        .await?;
    cx.expect_now(&t, &[], "after write, before any checkpoint")
        .await?;
    let s1 = a.prepare(1).await?;
    cx.expect_now(&t, &[], "after prepare(1), before its commit")
        .await?;
    a.commit(&s1).await?;
    cx.expect_rows(&t, &[r(1, "a"), r(2, "b")], "after commit of checkpoint 1")
        .await?;
    a.write(vec![t.ins(3, "c"), t.upd((1, "a"), (1, "z"))])
        .await?;
    let s2 = a.prepare(2).await?;
    cx.expect_now(
        &t,
        &[r(1, "a"), r(2, "b")],
        "after prepare(2), before its commit (only checkpoint 1 may show)",
    )
    .await?;
    a.commit(&s2).await?;
    cx.expect_rows(
        &t,
        &[r(1, "z"), r(2, "b"), r(3, "c")],
        "after commit of checkpoint 2",
    )
    .await?;
    a.close().await?;
    Ok(None)
}

async fn commit_is_idempotent(cx: Ctx) -> Result<Option<String>, Problem> {
    let t = cx.table("", true);
    // Keyed upserts hide a second load; a table without a key shows it.
    let k = cx
        .caps
        .tables_without_key
        .then(|| cx.table("_nokey", false));
    let mut a = cx.start(None).await?;
    let mut events = vec![t.create(), t.ins(1, "a"), t.ins(2, "a")];
    if let Some(k) = &k {
        events.extend([k.create(), k.ins(1, "a"), k.ins(1, "a"), k.ins(2, "b")]);
    }
    a.write(events).await?;
    let s1 = a.prepare(1).await?;
    a.commit(&s1).await?;
    a.commit(&s1).await?;
    let keyless = [r(1, "a"), r(1, "a"), r(2, "b")];
    cx.expect_rows(
        &t,
        &[r(1, "a"), r(2, "a")],
        "after committing checkpoint 1 twice",
    )
    .await?;
    if let Some(k) = &k {
        cx.expect_rows(k, &keyless, "after committing checkpoint 1 twice")
            .await?;
    }
    a.write(vec![t.upd((1, "a"), (1, "b")), t.upd((2, "a"), (2, "c"))])
        .await?;
    let s2 = a.prepare(2).await?;
    a.commit(&s2).await?;
    let final_rows = [r(1, "b"), r(2, "c")];
    cx.expect_rows(&t, &final_rows, "after commit of checkpoint 2")
        .await?;
    a.commit(&s2).await?;
    a.commit(&s1).await?;
    cx.expect_now(
        &t,
        &final_rows,
        "after committing checkpoint 2 and then 1 again (a repeated commit must not apply its rows again)",
    )
    .await?;
    a.close().await?;
    let b = cx.start(Some(&s2)).await?;
    cx.expect_now(
        &t,
        &final_rows,
        "after a restart that committed checkpoint 2 once more",
    )
    .await?;
    if let Some(k) = &k {
        cx.expect_now(
            k,
            &keyless,
            "after committing checkpoint 1 again and a restart",
        )
        .await?;
    }
    b.close().await?;
    Ok(None)
}

async fn abort_discards(cx: Ctx) -> Result<Option<String>, Problem> {
    let t = cx.table("", true);
    let mut a = cx.start(None).await?;
    a.write(vec![t.create(), t.ins(1, "a"), t.ins(2, "b")])
        .await?;
    let s1 = a.prepare(1).await?;
    a.abort(&s1).await?;
    cx.expect_now(&t, &[], "after abort of checkpoint 1")
        .await?;
    // The runtime aborts when it cannot save the checkpoint, then stops.
    a.close().await?;
    let mut b = cx.start(None).await?;
    b.write(vec![t.create(), t.ins(3, "c")]).await?;
    b.checkpoint(1).await?;
    cx.expect_rows(
        &t,
        &[r(3, "c")],
        "after the next run committed its own checkpoint 1 (the aborted rows must never show)",
    )
    .await?;
    b.close().await?;
    Ok(None)
}

async fn recover_commits_saved_checkpoint(cx: Ctx) -> Result<Option<String>, Problem> {
    let t = cx.duplicate_revealing_table();
    let mut a = cx.start(None).await?;
    a.write(vec![t.create(), t.ins(1, "a"), t.ins(2, "b")])
        .await?;
    let s1 = a.prepare(1).await?;
    a.crash();
    let mut b = cx.start(Some(&s1)).await?;
    cx.expect_rows(
        &t,
        &[r(1, "a"), r(2, "b")],
        "after a crash between prepare(1) and commit, and a restart that committed the saved committables and called recover(Some(1))",
    )
    .await?;
    b.write(vec![t.create(), t.ins(3, "c")]).await?;
    let s2 = b.checkpoint(2).await?;
    let all = [r(1, "a"), r(2, "b"), r(3, "c")];
    cx.expect_rows(&t, &all, "after the recovered run's checkpoint 2")
        .await?;
    b.close().await?;
    let c = cx.start(Some(&s2)).await?;
    cx.expect_now(
        &t,
        &all,
        "after another restart that committed checkpoint 2 again",
    )
    .await?;
    c.close().await?;
    Ok(None)
}

async fn recover_discards_unsaved_prepare(cx: Ctx) -> Result<Option<String>, Problem> {
    let t = cx.table("", true);
    let mut a = cx.start(None).await?;
    a.write(vec![t.create(), t.ins(1, "a"), t.ins(2, "b")])
        .await?;
    a.prepare(1).await?;
    a.crash();
    let mut b = cx.start(None).await?;
    cx.expect_now(
        &t,
        &[],
        "after a crash with checkpoint 1 prepared but never saved, and a restart with recover(None)",
    )
    .await?;
    b.write(vec![t.create(), t.ins(3, "c")]).await?;
    b.checkpoint(1).await?;
    cx.expect_rows(
        &t,
        &[r(3, "c")],
        "after the new run prepared and committed its own checkpoint 1 (the crashed run's rows must never show)",
    )
    .await?;
    b.close().await?;
    Ok(None)
}

async fn recover_discards_after_older_checkpoint(cx: Ctx) -> Result<Option<String>, Problem> {
    let t = cx.table("", true);
    let mut a = cx.start(None).await?;
    a.write(vec![t.create(), t.ins(1, "a")]).await?;
    let s1 = a.checkpoint(1).await?;
    cx.expect_rows(&t, &[r(1, "a")], "after checkpoint 1")
        .await?;
    a.write(vec![t.ins(2, "b"), t.upd((1, "a"), (1, "x"))])
        .await?;
    a.prepare(2).await?;
    a.crash();
    let mut b = cx.start(Some(&s1)).await?;
    cx.expect_now(
        &t,
        &[r(1, "a")],
        "after a crash with checkpoint 2 prepared but not saved, and a restart from checkpoint 1 (recover(Some(1)))",
    )
    .await?;
    b.write(vec![t.create(), t.ins(3, "c")]).await?;
    b.checkpoint(2).await?;
    cx.expect_rows(
        &t,
        &[r(1, "a"), r(3, "c")],
        "after the new run committed its own checkpoint 2 (the crashed run's checkpoint 2 must never show)",
    )
    .await?;
    b.close().await?;
    Ok(None)
}

async fn writes_after_recovery(cx: Ctx) -> Result<Option<String>, Problem> {
    let t = cx.table("", true);
    let mut a = cx.start(None).await?;
    a.write(vec![t.create(), t.ins(1, "a")]).await?;
    let s1 = a.checkpoint(1).await?;
    a.close().await?;

    let mut b = cx.start(Some(&s1)).await?;
    b.write(vec![t.create(), t.ins(2, "b"), t.upd((1, "a"), (1, "c"))])
        .await?;
    b.checkpoint(2).await?;
    cx.expect_rows(
        &t,
        &[r(1, "c"), r(2, "b")],
        "after a restart from checkpoint 1 and the new run's checkpoint 2",
    )
    .await?;
    b.write(vec![t.ins(3, "d")]).await?;
    let s3 = b.checkpoint(3).await?;
    b.close().await?;

    let mut c = cx.start(Some(&s3)).await?;
    c.write(vec![t.create(), t.ins(4, "e")]).await?;
    c.checkpoint(4).await?;
    cx.expect_rows(
        &t,
        &[r(1, "c"), r(2, "b"), r(3, "d"), r(4, "e")],
        "after a second restart (from checkpoint 3) and checkpoint 4",
    )
    .await?;
    c.close().await?;
    Ok(None)
}

async fn replay_after_crash(cx: Ctx) -> Result<Option<String>, Problem> {
    let t = cx.duplicate_revealing_table();
    let (tail, expected) = if t.keyed() {
        (
            vec![t.ins(3, "c"), t.upd((1, "a"), (1, "z")), t.ins(4, "d")],
            vec![r(1, "z"), r(2, "b"), r(3, "c"), r(4, "d")],
        )
    } else {
        (
            vec![t.ins(3, "c"), t.ins(4, "d"), t.ins(4, "d")],
            vec![r(1, "a"), r(2, "b"), r(3, "c"), r(4, "d"), r(4, "d")],
        )
    };
    let mut a = cx.start(None).await?;
    a.write(vec![t.create(), t.ins(1, "a"), t.ins(2, "b")])
        .await?;
    let s1 = a.checkpoint(1).await?;
    a.write(tail.clone()).await?;
    a.prepare(2).await?;
    a.crash();
    let mut b = cx.start(Some(&s1)).await?;
    // The source resumes at checkpoint 1's offset: the table again, then the same changes.
    let mut replay = vec![t.create()];
    replay.extend(tail);
    b.write(replay).await?;
    b.checkpoint(2).await?;
    cx.expect_rows(
        &t,
        &expected,
        "after a crash with checkpoint 2 prepared but not saved, a restart from checkpoint 1 and the replayed changes committed as checkpoint 2",
    )
    .await?;
    b.close().await?;
    Ok(None)
}

async fn changes_by_key(cx: Ctx) -> Result<Option<String>, Problem> {
    let t = cx.table("", true);
    let mut a = cx.start(None).await?;
    a.write(vec![
        t.create(),
        t.ins(1, "a"),
        t.ins(2, "a"),
        t.ins(3, "a"),
        t.upd((1, "a"), (1, "b")),
        t.upd((1, "b"), (1, "c")),
    ])
    .await?;
    a.checkpoint(1).await?;
    cx.expect_rows(
        &t,
        &[r(1, "c"), r(2, "a"), r(3, "a")],
        "after checkpoint 1 (inserts, then two updates of key 1)",
    )
    .await?;
    a.write(vec![
        t.replace(2, "r"),
        t.upd((3, "a"), (3, "b")),
        t.ins(4, "a"),
        t.upd((4, "a"), (4, "z")),
    ])
    .await?;
    a.checkpoint(2).await?;
    cx.expect_rows(
        &t,
        &[r(1, "c"), r(2, "r"), r(3, "b"), r(4, "z")],
        "after checkpoint 2 (a replace, an update, an insert and its update)",
    )
    .await?;
    a.close().await?;
    Ok(None)
}

async fn deletes_by_key(cx: Ctx) -> Result<Option<String>, Problem> {
    let t = cx.table("", true);
    let mut a = cx.start(None).await?;
    let mut first = vec![t.create()];
    first.extend((1..=5).map(|i| t.ins(i, "a")));
    a.write(first).await?;
    a.checkpoint(1).await?;
    a.write(vec![
        t.del(2, "a"),
        t.ins(6, "a"),
        t.del(6, "a"),
        t.del(3, "a"),
        t.ins(3, "again"),
        t.upd((4, "a"), (7, "a")),
    ])
    .await?;
    a.checkpoint(2).await?;
    cx.expect_rows(
        &t,
        &[r(1, "a"), r(3, "again"), r(5, "a"), r(7, "a")],
        "after checkpoint 2 (delete 2, insert and delete 6, delete and insert 3, update of key 4 to 7)",
    )
    .await?;
    a.write(vec![t.del(1, "a")]).await?;
    a.checkpoint(3).await?;
    cx.expect_rows(
        &t,
        &[r(3, "again"), r(5, "a"), r(7, "a")],
        "after checkpoint 3 (delete 1)",
    )
    .await?;
    a.close().await?;
    Ok(None)
}

async fn empty_checkpoints(cx: Ctx) -> Result<Option<String>, Problem> {
    let t = cx.table("", true);
    let mut a = cx.start(None).await?;
    a.checkpoint(1).await?;
    a.write(vec![t.create()]).await?;
    a.checkpoint(2).await?;
    cx.expect_now(
        &t,
        &[],
        "after checkpoint 1 with nothing written and checkpoint 2 with only the CreateTable",
    )
    .await?;
    a.write(vec![t.ins(1, "a")]).await?;
    a.checkpoint(3).await?;
    cx.expect_rows(&t, &[r(1, "a")], "after checkpoint 3")
        .await?;
    let s4 = a.checkpoint(4).await?;
    cx.expect_now(&t, &[r(1, "a")], "after checkpoint 4 with nothing written")
        .await?;
    a.close().await?;
    let mut b = cx.start(Some(&s4)).await?;
    b.checkpoint(5).await?;
    b.write(vec![t.create(), t.ins(2, "b")]).await?;
    b.checkpoint(6).await?;
    cx.expect_rows(
        &t,
        &[r(1, "a"), r(2, "b")],
        "after a restart from the empty checkpoint 4, an empty checkpoint 5 and checkpoint 6",
    )
    .await?;
    b.close().await?;
    Ok(None)
}

async fn schema_change_add_column(cx: Ctx) -> Result<Option<String>, Problem> {
    let mut t = cx.table("", true);
    let mut a = cx.start(None).await?;
    a.write(vec![t.create(), t.ins(1, "a")]).await?;
    a.checkpoint(1).await?;
    cx.expect_rows(&t, &[r(1, "a")], "after checkpoint 1")
        .await?;

    let extra = Column::new("extra", DataType::new(DataTypeKind::Int));
    let add = SchemaChangeEvent::AddColumn {
        table_id: t.id.clone(),
        columns: vec![(extra, ColumnPosition::Last)],
    };
    let before = t.ins(2, "b");
    t.schema = add
        .apply_to(&t.schema)
        .map_err(|m| Problem::new(format!("building the test's AddColumn: {m}")))?;
    let wide = |id: i64, name: &str, extra: Option<i32>| {
        vec![
            Value::BigInt(id),
            Value::String(name.to_string()),
            extra.map_or(Value::Null, Value::Int),
        ]
    };
    a.write(vec![
        before,
        add.into(),
        DataChangeEvent::insert(t.id.clone(), wide(3, "c", Some(30))).into(),
        DataChangeEvent::update(t.id.clone(), wide(1, "a", None), wide(1, "a2", Some(10))).into(),
    ])
    .await?;
    let s2 = a.checkpoint(2).await?;
    cx.expect_rows(
        &t,
        &[wide(1, "a2", Some(10)), wide(2, "b", None), wide(3, "c", Some(30))],
        "after row 2, an AddColumn of `extra INT NULL` (applied by the applier, then written), row 3 and an update of row 1, committed as checkpoint 2",
    )
    .await?;
    a.close().await?;

    let mut b = cx.start(Some(&s2)).await?;
    b.write(vec![
        t.create(),
        DataChangeEvent::insert(t.id.clone(), wide(4, "d", Some(40))).into(),
    ])
    .await?;
    b.checkpoint(3).await?;
    cx.expect_rows(
        &t,
        &[
            wide(1, "a2", Some(10)),
            wide(2, "b", None),
            wide(3, "c", Some(30)),
            wide(4, "d", Some(40)),
        ],
        "after a restart that announced the table with its new schema and checkpoint 3",
    )
    .await?;
    b.close().await?;
    Ok(None)
}

async fn flush_then_checkpoint(cx: Ctx) -> Result<Option<String>, Problem> {
    let t = cx.duplicate_revealing_table();
    let mut a = cx.start(None).await?;
    a.write(vec![t.create(), t.ins(1, "a"), t.ins(2, "b")])
        .await?;
    a.flush().await?;
    a.write(vec![t.ins(3, "c")]).await?;
    a.flush().await?;
    a.flush().await?;
    a.write(vec![t.ins(4, "d")]).await?;
    a.checkpoint(1).await?;
    let four = [r(1, "a"), r(2, "b"), r(3, "c"), r(4, "d")];
    cx.expect_rows(
        &t,
        &four,
        "after writes with flush between them (twice at the end) and checkpoint 1",
    )
    .await?;
    a.write(vec![t.ins(5, "e")]).await?;
    a.flush().await?;
    a.checkpoint(2).await?;
    let mut five = four.to_vec();
    five.push(r(5, "e"));
    cx.expect_rows(&t, &five, "after another write, flush and checkpoint 2")
        .await?;
    a.close().await?;
    Ok(None)
}

async fn poll_flush_keeps_guarantees(cx: Ctx) -> Result<Option<String>, Problem> {
    let t = cx.duplicate_revealing_table();
    let eo = cx.caps.exactly_once_claimed();
    let mut a = cx.start(None).await?;
    a.write(vec![t.create(), t.ins(1, "a"), t.ins(2, "b")])
        .await?;
    for _ in 0..3 {
        a.poll_flush().await?;
    }
    if eo {
        cx.expect_now(&t, &[], "after poll_flush, before any checkpoint")
            .await?;
    }
    a.write(vec![t.ins(3, "c")]).await?;
    a.poll_flush().await?;
    let s1 = a.prepare(1).await?;
    if eo {
        cx.expect_now(
            &t,
            &[],
            "after poll_flush and prepare(1), before its commit",
        )
        .await?;
    }
    a.commit(&s1).await?;
    let three = [r(1, "a"), r(2, "b"), r(3, "c")];
    cx.expect_rows(
        &t,
        &three,
        "after commit of checkpoint 1 (poll_flush ran before)",
    )
    .await?;
    a.write(vec![t.ins(4, "d")]).await?;
    a.poll_flush().await?;
    a.poll_flush().await?;
    if eo {
        cx.expect_now(
            &t,
            &three,
            "after poll_flush of a row that is in no checkpoint yet",
        )
        .await?;
    }
    a.crash();
    let mut b = cx.start(Some(&s1)).await?;
    if eo {
        cx.expect_now(
            &t,
            &three,
            "after a crash and a restart from checkpoint 1 (row 4 was only poll_flushed, never committed)",
        )
        .await?;
    }
    b.write(vec![t.create(), t.ins(4, "d")]).await?;
    b.poll_flush().await?;
    b.checkpoint(2).await?;
    let mut four = three.to_vec();
    four.push(r(4, "d"));
    cx.expect_rows(
        &t,
        &four,
        "after the replay of row 4, poll_flush and checkpoint 2",
    )
    .await?;
    b.close().await?;
    Ok(None)
}

async fn close_is_clean(cx: Ctx) -> Result<Option<String>, Problem> {
    let t = cx.table("", true);
    let eo = cx.caps.exactly_once_claimed();
    let a = cx.start(None).await?;
    a.close().await?;

    let mut b = cx.start(None).await?;
    b.write(vec![t.create(), t.ins(1, "a")]).await?;
    let s1 = b.checkpoint(1).await?;
    cx.expect_rows(&t, &[r(1, "a")], "after checkpoint 1")
        .await?;
    b.write(vec![t.ins(2, "b")]).await?;
    b.close().await?;
    if eo {
        cx.expect_now(
            &t,
            &[r(1, "a")],
            "after close with row 2 written but not prepared",
        )
        .await?;
    }

    let mut c = cx.start(Some(&s1)).await?;
    c.write(vec![t.create(), t.ins(2, "b")]).await?;
    let s2 = c.prepare(2).await?;
    c.close().await?;
    if eo {
        cx.expect_now(
            &t,
            &[r(1, "a")],
            "after close with checkpoint 2 prepared but not committed",
        )
        .await?;
    }
    // The runtime may have saved checkpoint 2 before the close: the next run commits it.
    let d = cx.start(Some(&s2)).await?;
    cx.expect_rows(
        &t,
        &[r(1, "a"), r(2, "b")],
        "after a restart that committed checkpoint 2, which the previous run prepared and then closed without committing",
    )
    .await?;
    d.close().await?;
    Ok(None)
}

// ---------------------------------------------------------------------------------------
// Driving a sink the way the runtime does.

/// What the state store keeps of a checkpoint, as far as the sink is concerned.
struct Saved {
    id: CheckpointId,
    committables: Vec<Committable>,
}

#[derive(Clone)]
struct Ctx {
    harness: Arc<dyn SinkHarness>,
    caps: SinkCapabilities,
    pipeline: String,
    database: String,
    case: Case,
    /// The owner epochs of the instances started so far, as a state store hands them out.
    epochs: Arc<std::sync::Mutex<Vec<OwnerEpoch>>>,
}

impl Ctx {
    /// A recovery as the runtime builds it: a new epoch, every earlier one to clean up.
    fn recovery(&self, last: Option<CheckpointId>) -> Recovery {
        let mut epochs = self
            .epochs
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let millis = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
        let epoch = OwnerEpoch(millis.max(epochs.last().map_or(0, |e| e.0 + 1)));
        let earlier = epochs.clone();
        epochs.push(epoch);
        Recovery::new(last, epoch, earlier)
    }

    fn table(&self, suffix: &str, keyed: bool) -> TestTable {
        TestTable::new(
            TableId::new(&self.database, format!("{}{suffix}", self.case.name())),
            keyed,
        )
    }

    /// A table without a key when the sink is exactly-once and supports such tables (a row
    /// loaded twice shows there), else a keyed one.
    fn duplicate_revealing_table(&self) -> TestTable {
        let keyless = self.caps.exactly_once_claimed() && self.caps.tables_without_key;
        self.table("", !keyless)
    }

    /// A new instance: create, open, commit of the saved checkpoint, recover.
    async fn start(&self, restored: Option<&Saved>) -> Result<Instance, Problem> {
        let limit = self.caps.call_timeout;
        let parts = call(
            format!("harness.create({:?})", self.pipeline),
            limit,
            self.harness.create(&self.pipeline),
        )
        .await?;
        let mut instance = Instance {
            sink: parts.sink,
            applier: parts.applier,
            limit,
        };
        call("sink.open()", limit, instance.sink.open()).await?;
        if let Some(saved) = restored {
            // As the runtime: the crash may have come between saving and committing.
            call(
                format!("sink.commit(checkpoint {} again, on start)", saved.id),
                limit,
                instance.sink.commit(saved.committables.clone()),
            )
            .await?;
        }
        let recovery = self.recovery(restored.map(|s| s.id));
        call(
            format!("sink.recover({recovery:?})"),
            limit,
            instance.sink.recover(&recovery),
        )
        .await?;
        Ok(instance)
    }

    async fn read(&self, t: &TestTable) -> Result<Vec<String>, Problem> {
        let rows = call(
            format!("harness.read_rows({:?}, {})", self.pipeline, t.id),
            self.caps.call_timeout,
            self.harness.read_rows(&self.pipeline, &t.id, &t.schema),
        )
        .await?;
        Ok(render(&rows))
    }

    /// Reads until the target shows exactly `expected` (any order), up to the visibility
    /// timeout.
    async fn expect_rows(
        &self,
        t: &TestTable,
        expected: &[Vec<Value>],
        when: &str,
    ) -> Result<(), Problem> {
        let want = render(expected);
        let deadline = Instant::now() + self.caps.visibility_timeout;
        loop {
            let got = self.read(t).await?;
            if got == want {
                return Ok(());
            }
            if Instant::now() >= deadline {
                return Err(mismatch(
                    t,
                    &want,
                    &got,
                    when,
                    Some(self.caps.visibility_timeout),
                ));
            }
            tokio::time::sleep(POLL_PAUSE).await;
        }
    }

    /// One read: the target must show exactly `expected` now. Used where waiting cannot
    /// help (rows that must not be there) or the rows were already seen.
    async fn expect_now(
        &self,
        t: &TestTable,
        expected: &[Vec<Value>],
        when: &str,
    ) -> Result<(), Problem> {
        let want = render(expected);
        let got = self.read(t).await?;
        if got == want {
            Ok(())
        } else {
            Err(mismatch(t, &want, &got, when, None))
        }
    }
}

fn mismatch(
    t: &TestTable,
    want: &[String],
    got: &[String],
    when: &str,
    waited: Option<Duration>,
) -> Problem {
    let (missing, extra) = multiset_diff(want, got);
    let waited = waited.map_or_else(String::new, |d| format!(" (waited {d:?})"));
    Problem::new(format!(
        "{when}: {} should show {} row(s) [{}] but shows {} [{}]{waited}; missing: {}; unexpected or repeated: {}",
        t.id,
        want.len(),
        sample(want, 8),
        got.len(),
        sample(got, 8),
        sample(&missing, 8),
        sample(&extra, 8),
    ))
}

/// Rows as sorted text, so targets that keep text and targets that keep types compare
/// alike and order does not matter.
fn render(rows: &[Vec<Value>]) -> Vec<String> {
    let mut out: Vec<String> = rows
        .iter()
        .map(|row| {
            let cells: Vec<String> = row.iter().map(ToString::to_string).collect();
            format!("({})", cells.join(", "))
        })
        .collect();
    out.sort();
    out
}

/// One sink instance, between a (re)start and a close or crash.
struct Instance {
    sink: Box<dyn Sink>,
    applier: Box<dyn SchemaApplier>,
    limit: Duration,
}

impl Instance {
    /// Writes as the runtime does: a schema change goes, after the rows before it are
    /// written and flushed, first through the applier and then to the sink.
    async fn write(&mut self, events: Vec<Event>) -> Result<(), Problem> {
        let limit = self.limit;
        let mut rows: Vec<Event> = Vec::new();
        for event in events {
            match event {
                Event::DataChange(_) => rows.push(event),
                Event::SchemaChange(change) => {
                    if !rows.is_empty() {
                        let n = rows.len();
                        call(
                            format!("sink.write({n} row changes)"),
                            limit,
                            self.sink.write(std::mem::take(&mut rows)),
                        )
                        .await?;
                    }
                    call(
                        format!(
                            "sink.flush() before {} of {}",
                            change.kind(),
                            change.table_id()
                        ),
                        limit,
                        self.sink.flush(),
                    )
                    .await?;
                    call(
                        format!("applier.apply({} of {})", change.kind(), change.table_id()),
                        limit,
                        self.applier.apply(&change),
                    )
                    .await?;
                    let what = format!("sink.write({} of {})", change.kind(), change.table_id());
                    call(
                        what,
                        limit,
                        self.sink.write(vec![Event::SchemaChange(change)]),
                    )
                    .await?;
                }
            }
        }
        if !rows.is_empty() {
            let n = rows.len();
            call(
                format!("sink.write({n} row changes)"),
                limit,
                self.sink.write(rows),
            )
            .await?;
        }
        Ok(())
    }

    /// `prepare`, then the JSON round trip the state store puts committables through.
    async fn prepare(&mut self, id: u64) -> Result<Saved, Problem> {
        let id = CheckpointId(id);
        let committables = call(
            format!("sink.prepare(checkpoint {id})"),
            self.limit,
            self.sink.prepare(id),
        )
        .await?;
        let stored = serde_json::to_string(&committables).map_err(|e| {
            Problem::new(format!(
                "the committables of checkpoint {id} cannot be stored as JSON: {e}"
            ))
        })?;
        let committables: Vec<Committable> = serde_json::from_str(&stored).map_err(|e| {
            Problem::new(format!(
                "the committables of checkpoint {id} do not read back from JSON: {e}"
            ))
        })?;
        Ok(Saved { id, committables })
    }

    async fn commit(&mut self, saved: &Saved) -> Result<(), Problem> {
        call(
            format!("sink.commit(checkpoint {})", saved.id),
            self.limit,
            self.sink.commit(saved.committables.clone()),
        )
        .await
    }

    async fn abort(&mut self, saved: &Saved) -> Result<(), Problem> {
        call(
            format!("sink.abort(checkpoint {})", saved.id),
            self.limit,
            self.sink.abort(saved.committables.clone()),
        )
        .await
    }

    /// A whole checkpoint: prepare, save, commit.
    async fn checkpoint(&mut self, id: u64) -> Result<Saved, Problem> {
        let saved = self.prepare(id).await?;
        self.commit(&saved).await?;
        Ok(saved)
    }

    async fn flush(&mut self) -> Result<(), Problem> {
        call("sink.flush()", self.limit, self.sink.flush()).await
    }

    async fn poll_flush(&mut self) -> Result<(), Problem> {
        call("sink.poll_flush()", self.limit, self.sink.poll_flush()).await
    }

    async fn close(mut self) -> Result<(), Problem> {
        call("sink.close()", self.limit, self.sink.close()).await
    }

    /// The process dies: no commit, no close.
    fn crash(self) {
        drop(self);
    }
}

/// A test table `(id BIGINT NOT NULL, name VARCHAR(64))`, keyed on `id` or without a key.
#[derive(Clone)]
struct TestTable {
    id: TableId,
    schema: Schema,
}

fn r(id: i64, name: &str) -> Vec<Value> {
    vec![Value::BigInt(id), Value::String(name.to_string())]
}

impl TestTable {
    fn new(id: TableId, keyed: bool) -> Self {
        let schema = Schema::new(vec![
            Column::new("id", DataType::new(DataTypeKind::BigInt).not_null()),
            Column::new("name", DataType::new(DataTypeKind::VarChar { length: 64 })),
        ]);
        let schema = if keyed {
            schema.with_primary_key(["id"])
        } else {
            schema
        };
        Self { id, schema }
    }

    fn keyed(&self) -> bool {
        !self.schema.primary_key.is_empty()
    }

    fn create(&self) -> Event {
        SchemaChangeEvent::CreateTable {
            table_id: self.id.clone(),
            schema: self.schema.clone(),
        }
        .into()
    }

    fn ins(&self, id: i64, name: &str) -> Event {
        DataChangeEvent::insert(self.id.clone(), r(id, name)).into()
    }

    fn upd(&self, before: (i64, &str), after: (i64, &str)) -> Event {
        DataChangeEvent::update(self.id.clone(), r(before.0, before.1), r(after.0, after.1)).into()
    }

    fn replace(&self, id: i64, name: &str) -> Event {
        DataChangeEvent::replace(self.id.clone(), r(id, name)).into()
    }

    fn del(&self, id: i64, name: &str) -> Event {
        DataChangeEvent::delete(self.id.clone(), r(id, name)).into()
    }
}
