//! Conformance checks for a [`Source`].
//!
//! Implement [`SourceHarness`] for your connector (make the upstream hold a known change
//! sequence, build a fresh unopened source, declare [`SourceCapabilities`]) and call
//! [`check`]. The first case, [`Case::ReadsAllEvents`], always runs: it reads the whole
//! sequence from a source opened without an offset, and every other case compares what it
//! reads (across reopens, cancelled calls, ...) with that: the same data changes, each
//! exactly once, in any order across runs. Data changes are compared by table, operation,
//! before and after image (not metadata such as `op_ts`).
//!
//! ```
//! use cdc_api::{BoxError, FactoryContext, Options, Source, SourceFactory};
//! use cdc_testkit::ValuesSourceFactory;
//! use cdc_testkit::conformance::source::{self, SourceCapabilities, SourceHarness};
//!
//! /// The test kit's `values` source with its built-in event set, two events per batch.
//! struct ValuesHarness;
//!
//! #[async_trait::async_trait]
//! impl SourceHarness for ValuesHarness {
//!     fn capabilities(&self) -> SourceCapabilities {
//!         SourceCapabilities::bounded()
//!     }
//!
//!     async fn produce_changes(&self) -> Result<usize, BoxError> {
//!         Ok(5) // the built-in `single-table` set: 3 inserts, a delete, an update
//!     }
//!
//!     async fn create(&self) -> Result<Box<dyn Source>, BoxError> {
//!         let mut options = Options::new("source");
//!         options.insert("batch-size", "2");
//!         let ctx = FactoryContext {
//!             pipeline_name: "doc".to_string(),
//!             options,
//!             pipeline_options: Options::new("pipeline"),
//!         };
//!         Ok(ValuesSourceFactory.create(&ctx)?)
//!     }
//! }
//!
//! # tokio::runtime::Runtime::new().unwrap().block_on(async {
//! let report = source::check(ValuesHarness).await.unwrap();
//! println!("{report}");
//! # });
//! ```

use std::collections::HashSet;
use std::fmt;
use std::sync::Arc;
use std::task::Poll;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use cdc_api::{BoxError, Event, SchemaChangeEvent, Source, SourceOffset, TableId};

use super::Failure;
use super::report::{
    Outcome, Problem, Report, Status, call, isolated, multiset_diff, sample, status_of,
};

/// What kind of source it is; decides which cases run and how long they wait.
///
/// Build it with [`bounded`](Self::bounded) or [`unbounded`](Self::unbounded) and adjust
/// with the `with_*` methods.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct SourceCapabilities {
    /// Whether the source ends (`Ok(None)`) after the produced changes. An unbounded source
    /// is read until the produced number of data changes arrived, and must then idle with
    /// empty batches.
    pub bounded: bool,
    /// The longest a single source or harness call may take before the case fails as
    /// hanging. Default: 60 s.
    pub call_timeout: Duration,
    /// The longest reading all produced changes may take in one case. Default: 120 s.
    pub read_timeout: Duration,
    /// How many times [`Case::ReopenFromOffset`] closes and reopens the source, after one
    /// batch each, before reading the rest in one go. Default: 10.
    pub max_reopens: usize,
}

impl SourceCapabilities {
    /// A source that ends after the produced changes.
    pub fn bounded() -> Self {
        Self {
            bounded: true,
            call_timeout: Duration::from_secs(60),
            read_timeout: Duration::from_secs(120),
            max_reopens: 10,
        }
    }

    /// A source that keeps running (a binlog reader, a queue consumer).
    pub fn unbounded() -> Self {
        Self {
            bounded: false,
            ..Self::bounded()
        }
    }

    /// Sets [`call_timeout`](Self::call_timeout).
    pub fn with_call_timeout(mut self, limit: Duration) -> Self {
        self.call_timeout = limit;
        self
    }

    /// Sets [`read_timeout`](Self::read_timeout).
    pub fn with_read_timeout(mut self, limit: Duration) -> Self {
        self.read_timeout = limit;
        self
    }

    /// Sets [`max_reopens`](Self::max_reopens).
    pub fn with_max_reopens(mut self, reopens: usize) -> Self {
        self.max_reopens = reopens;
        self
    }
}

/// What the checks need from the connector's author.
#[async_trait]
pub trait SourceHarness: Send + Sync + 'static {
    /// What kind of source it is.
    fn capabilities(&self) -> SourceCapabilities;

    /// Called once, before any source is opened: make the upstream hold a known sequence
    /// of changes (insert, update and delete rows in the test database, fill the file, ...)
    /// and return how many data change events a source opened without an offset delivers
    /// for it in all. At least 2, so the stream can be split; a few dozen make better
    /// checks.
    async fn produce_changes(&self) -> Result<usize, BoxError>;

    /// A new, unopened source reading that upstream, as the factory builds it when the
    /// process starts.
    async fn create(&self) -> Result<Box<dyn Source>, BoxError>;
}

/// One rule of the source contract.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Case {
    /// Opened without an offset, the source delivers every produced change, each table's
    /// `CreateTable` before its first row. Always runs first; the others compare with it.
    ReadsAllEvents,
    /// `offset()` (before any batch, after a batch, at the end) resumes exactly after the
    /// last returned event when the source is reopened from it, with the tables announced
    /// again.
    ReopenFromOffset,
    /// Dropping a `next_batch` future before it finished loses and repeats nothing.
    CancelledNextBatchLosesNothing,
    /// `checkpoint_complete` succeeds, reading continues, and the completed offset still
    /// resumes.
    CheckpointCompleteAccepted,
    /// `close` succeeds right after `open`, after a batch and after the end.
    CloseIsClean,
    /// An unbounded source with nothing new returns (empty batches) instead of blocking.
    IdleSourceReturns,
    /// `captures` does not deny a table the source delivers (the runtime asks it on a
    /// restart, before `open`, and refuses to resume when it says no).
    CapturesItsTables,
}

impl Case {
    /// Every case, in the order [`check`] runs them.
    pub const ALL: [Self; 7] = [
        Self::ReadsAllEvents,
        Self::ReopenFromOffset,
        Self::CancelledNextBatchLosesNothing,
        Self::CheckpointCompleteAccepted,
        Self::CloseIsClean,
        Self::IdleSourceReturns,
        Self::CapturesItsTables,
    ];

    /// The case's name, as reported (snake case).
    pub fn name(self) -> &'static str {
        match self {
            Self::ReadsAllEvents => "reads_all_events",
            Self::ReopenFromOffset => "reopen_from_offset",
            Self::CancelledNextBatchLosesNothing => "cancelled_next_batch_loses_nothing",
            Self::CheckpointCompleteAccepted => "checkpoint_complete_accepted",
            Self::CloseIsClean => "close_is_clean",
            Self::IdleSourceReturns => "idle_source_returns",
            Self::CapturesItsTables => "captures_its_tables",
        }
    }

    /// The rule the case checks.
    pub fn rule(self) -> &'static str {
        match self {
            Self::ReadsAllEvents => {
                "opened without an offset, the source delivers every produced data change, and each table's CreateTable comes before its first row"
            }
            Self::ReopenFromOffset => {
                "open(Some(offset())) resumes exactly after the last event returned before offset() was taken (also before any batch and at the end), and announces the tables again: no change lost, none repeated"
            }
            Self::CancelledNextBatchLosesNothing => {
                "next_batch is cancel safe: dropping its future before it finished loses no change and repeats none"
            }
            Self::CheckpointCompleteAccepted => {
                "checkpoint_complete(offset) succeeds, reading goes on without loss, and the source can still be reopened from that offset"
            }
            Self::CloseIsClean => {
                "close succeeds right after open, after a batch and after the last event"
            }
            Self::IdleSourceReturns => {
                "an unbounded source with nothing new returns an empty batch now and then (at least every second) instead of blocking, and delivers nothing twice"
            }
            Self::CapturesItsTables => {
                "captures(table), asked before open, is Some(true) or None for every table the source delivers"
            }
        }
    }

    /// What usually fixes a source that breaks the rule.
    pub fn hint(self) -> &'static str {
        match self {
            Self::ReadsAllEvents => {
                "check that the harness's source reads what produce_changes wrote (same server, database and table filters) and that the count is of data change events as this source emits them; emit a CreateTable for each table before its rows"
            }
            Self::ReopenFromOffset => {
                "let offset() describe the position right after the last event returned (not the last one read from upstream or buffered), keep it JSON-serializable, and re-announce every captured table's CreateTable when opening"
            }
            Self::CancelledNextBatchLosesNothing => {
                "do not advance the position before the last .await of next_batch: read into a buffer kept in self, and move events out of it (and the position past them) only when returning"
            }
            Self::CheckpointCompleteAccepted => {
                "release only what lies before the completed offset, and keep what open(Some(offset)) needs to resume there"
            }
            Self::CloseIsClean => {
                "make close tolerate every state: nothing opened yet, a stream in progress, a finished stream"
            }
            Self::IdleSourceReturns => {
                "wait for upstream data with a timeout (e.g. tokio::time::timeout of 500 ms) and return Ok(Some(vec![])) when it elapses"
            }
            Self::CapturesItsTables => {
                "answer captures from the configuration alone (table lists, patterns), without I/O, and match it to what the source reads"
            }
        }
    }
}

impl fmt::Display for Case {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Runs every [`Case`] against the harness's source. `Ok` when every case that applies
/// passed; the [`Report`] lists what ran and what was skipped.
pub async fn check(harness: impl SourceHarness) -> Result<Report, Failure> {
    check_cases(harness, &Case::ALL).await
}

/// Runs [`Case::ReadsAllEvents`] and then the given cases, in the order given.
pub async fn check_cases(harness: impl SourceHarness, cases: &[Case]) -> Result<Report, Failure> {
    let harness: Arc<dyn SourceHarness> = Arc::new(harness);
    let caps = harness.capabilities();
    let mut report = Report::new("source");
    let first = isolated(read_reference(harness.clone(), caps.clone())).await;
    let (reference, first_status) = match first {
        Ok((reference, note)) => (
            Some(Arc::new(reference)),
            Status::Passed { note: Some(note) },
        ),
        Err(Problem(detail)) => (None, Status::Failed { detail }),
    };
    report
        .outcomes
        .push(outcome(Case::ReadsAllEvents, first_status));
    for &case in cases {
        if case == Case::ReadsAllEvents {
            continue;
        }
        let status = match (&reference, skip_reason(case, &caps)) {
            (_, Some(reason)) => Status::Skipped { reason },
            (None, None) => Status::Skipped {
                reason: "reads_all_events failed, so there is nothing to compare with".to_string(),
            },
            (Some(reference), None) => {
                let cx = Ctx {
                    harness: harness.clone(),
                    caps: caps.clone(),
                    reference: reference.clone(),
                };
                status_of(isolated(run_case(case, cx)).await)
            }
        };
        report.outcomes.push(outcome(case, status));
    }
    report.into_result()
}

fn outcome(case: Case, status: Status) -> Outcome {
    Outcome {
        case: case.name(),
        rule: case.rule(),
        hint: case.hint(),
        status,
    }
}

fn skip_reason(case: Case, caps: &SourceCapabilities) -> Option<String> {
    match case {
        Case::IdleSourceReturns if caps.bounded => {
            Some("bounded source: it ends instead of idling".to_string())
        }
        _ => None,
    }
}

async fn run_case(case: Case, cx: Ctx) -> Result<Option<String>, Problem> {
    match case {
        Case::ReadsAllEvents => Ok(None),
        Case::ReopenFromOffset => reopen_from_offset(cx).await,
        Case::CancelledNextBatchLosesNothing => cancelled_next_batch_loses_nothing(cx).await,
        Case::CheckpointCompleteAccepted => checkpoint_complete_accepted(cx).await,
        Case::CloseIsClean => close_is_clean(cx).await,
        Case::IdleSourceReturns => idle_source_returns(cx).await,
        Case::CapturesItsTables => captures_its_tables(cx).await,
    }
}

// ---------------------------------------------------------------------------------------
// The cases.

/// Produces the changes and reads them all once: the reference the other cases compare
/// with.
async fn read_reference(
    harness: Arc<dyn SourceHarness>,
    caps: SourceCapabilities,
) -> Result<(Reference, String), Problem> {
    let expected = call(
        "harness.produce_changes()",
        caps.call_timeout,
        harness.produce_changes(),
    )
    .await?;
    if expected < 2 {
        return Err(Problem::new(format!(
            "harness.produce_changes() said {expected} data change(s); the checks need at least 2 to split the stream (produce a few inserts, updates and deletes)"
        )));
    }
    let cx = Ctx {
        harness,
        caps,
        reference: Arc::new(Reference::default()),
    };
    let mut out = Vec::new();
    let mut rd = cx.open(None, "a source opened with open(None)").await?;
    cx.drain(&mut rd, &mut out, expected).await?;
    let mut tables: Vec<TableId> = rd.announced.iter().cloned().collect();
    tables.sort();
    rd.close().await?;
    if out.len() != expected {
        return Err(Problem::new(format!(
            "a source opened with open(None) delivered {} data change(s), harness.produce_changes() said {expected}; first ones: {}",
            out.len(),
            sample(&out, 5)
        )));
    }
    let note = format!("{expected} data changes, {} table(s)", tables.len());
    Ok((
        Reference {
            changes: out,
            tables,
        },
        note,
    ))
}

async fn reopen_from_offset(cx: Ctx) -> Result<Option<String>, Problem> {
    let mut out = Vec::new();
    let a = cx
        .open(None, "run 1 (open(None), offset() before any next_batch)")
        .await?;
    let offset = a.offset()?;
    a.close().await?;
    let b = cx
        .open(
            Some(offset),
            "run 2 (opened from run 1's offset, offset() before any next_batch)",
        )
        .await?;
    let mut offset = b.offset()?;
    b.close().await?;
    let mut run = 3;
    loop {
        let what = format!(
            "run {run} (opened from run {}'s offset, after {} data change(s))",
            run - 1,
            out.len()
        );
        let mut rd = cx.open(Some(offset), &what).await?;
        if run > 2 + cx.caps.max_reopens {
            cx.drain(&mut rd, &mut out, cx.expected()).await?;
        } else {
            cx.read_data_batch(&mut rd, &mut out).await?;
        }
        offset = rd.offset()?;
        let done = rd.ended || (!cx.caps.bounded && out.len() >= cx.expected());
        rd.close().await?;
        if done {
            break;
        }
        run += 1;
    }
    if cx.caps.bounded {
        let what = format!("run {} (opened from the offset taken at the end)", run + 1);
        let mut rd = cx.open(Some(offset), &what).await?;
        cx.drain(&mut rd, &mut out, cx.expected()).await?;
        rd.close().await?;
        run += 1;
    }
    cx.compare(&out, "the data changes of all runs together")?;
    Ok(Some(format!("{run} runs")))
}

async fn cancelled_next_batch_loses_nothing(cx: Ctx) -> Result<Option<String>, Problem> {
    let mut out = Vec::new();
    let mut rd = cx.open(None, "open(None)").await?;
    let deadline = Instant::now() + cx.caps.read_timeout;
    let mut cancelled = 0usize;
    let mut attempt = 0usize;
    while !rd.ended && (cx.caps.bounded || out.len() < cx.expected()) {
        if Instant::now() >= deadline {
            return Err(cx.too_slow(&out, cx.expected()));
        }
        // Drop the future after one poll, after a few polls, after 5 ms; every fourth
        // call runs to completion so the stream always moves on.
        let mode = match attempt % 4 {
            0 => Attempt::PollOnce,
            1 => Attempt::PollFew,
            2 => Attempt::Timeout,
            _ => Attempt::Complete,
        };
        attempt += 1;
        match rd.attempt(mode).await? {
            None => cancelled += 1,
            Some(None) => rd.ended = true,
            Some(Some(batch)) => rd.absorb(batch, &mut out)?,
        }
        if cx.caps.bounded && out.len() > too_many(cx.expected()) {
            break;
        }
    }
    let offset = rd.offset()?;
    rd.close().await?;
    if cx.caps.bounded {
        // The offset after the dropped calls must sit right at the end.
        let mut rd = cx
            .open(
                Some(offset),
                "a source reopened from the offset taken after the dropped calls",
            )
            .await?;
        cx.drain(&mut rd, &mut out, cx.expected()).await?;
        rd.close().await?;
    }
    cx.compare(
        &out,
        &format!("after {attempt} next_batch calls of which {cancelled} were dropped unfinished"),
    )?;
    Ok(Some(format!(
        "{cancelled} of {attempt} next_batch futures dropped unfinished"
    )))
}

async fn checkpoint_complete_accepted(cx: Ctx) -> Result<Option<String>, Problem> {
    let mut out = Vec::new();
    let mut rd = cx.open(None, "open(None)").await?;
    cx.read_data_batch(&mut rd, &mut out).await?;
    let first = rd.offset()?;
    let seen = out.len();
    rd.checkpoint_complete(&first).await?;
    cx.drain(&mut rd, &mut out, cx.expected()).await?;
    let last = rd.offset()?;
    rd.checkpoint_complete(&last).await?;
    rd.close().await?;
    cx.compare(
        &out,
        "reading on after checkpoint_complete of the offset after the first batch",
    )?;
    // A crash right after the checkpoint: the next run starts at the completed offset.
    let mut again = out[..seen].to_vec();
    let mut rd = cx
        .open(
            Some(first),
            "a source reopened from the offset passed to checkpoint_complete",
        )
        .await?;
    cx.drain(&mut rd, &mut again, cx.expected()).await?;
    rd.close().await?;
    cx.compare(
        &again,
        "the changes before the completed offset plus what a source reopened from it delivered",
    )?;
    Ok(None)
}

async fn close_is_clean(cx: Ctx) -> Result<Option<String>, Problem> {
    let rd = cx.open(None, "open(None), then close at once").await?;
    rd.close().await?;
    let mut out = Vec::new();
    let mut rd = cx.open(None, "open(None), one batch, then close").await?;
    rd.next(&mut out).await?;
    rd.close().await?;
    let mut out = Vec::new();
    let mut rd = cx
        .open(None, "open(None), read to the end, then close")
        .await?;
    cx.drain(&mut rd, &mut out, cx.expected()).await?;
    rd.close().await?;
    cx.compare(&out, "a source read to the end and closed")?;
    Ok(None)
}

async fn captures_its_tables(cx: Ctx) -> Result<Option<String>, Problem> {
    // As the runtime on a restart: a new instance, not opened.
    let source = call(
        "harness.create()",
        cx.caps.call_timeout,
        cx.harness.create(),
    )
    .await?;
    let denied: Vec<String> = cx
        .reference
        .tables
        .iter()
        .filter(|t| source.captures(t) == Some(false))
        .map(ToString::to_string)
        .collect();
    if !denied.is_empty() {
        return Err(Problem::new(format!(
            "captures() said Some(false) for {}, which the source delivers: the runtime would refuse to resume a checkpoint that covers them",
            denied.join(", ")
        )));
    }
    let unknown = cx
        .reference
        .tables
        .iter()
        .filter(|t| source.captures(t).is_none())
        .count();
    Ok((unknown > 0).then(|| format!("captures() cannot tell for {unknown} table(s)")))
}

async fn idle_source_returns(cx: Ctx) -> Result<Option<String>, Problem> {
    let mut out = Vec::new();
    let mut rd = cx.open(None, "open(None)").await?;
    cx.drain(&mut rd, &mut out, cx.expected()).await?;
    for _ in 0..3 {
        if rd.next(&mut out).await?.is_none() {
            return Err(Problem::new(
                "the source returned Ok(None) (ended) although the capabilities declare it unbounded; declare SourceCapabilities::bounded() or keep running",
            ));
        }
    }
    rd.close().await?;
    cx.compare(
        &out,
        "all changes and then three more next_batch calls with nothing new upstream",
    )?;
    Ok(None)
}

// ---------------------------------------------------------------------------------------
// Reading.

#[derive(Clone)]
struct Ctx {
    harness: Arc<dyn SourceHarness>,
    caps: SourceCapabilities,
    reference: Arc<Reference>,
}

/// What a source opened without an offset delivered.
#[derive(Default)]
struct Reference {
    /// Its data changes, rendered.
    changes: Vec<String>,
    /// The tables it announced.
    tables: Vec<TableId>,
}

/// More data changes than this means a bounded source repeats itself; stop reading.
fn too_many(expected: usize) -> usize {
    expected * 2 + 100
}

impl Ctx {
    fn expected(&self) -> usize {
        self.reference.changes.len()
    }

    async fn open(&self, restore: Option<SourceOffset>, what: &str) -> Result<Reader, Problem> {
        let limit = self.caps.call_timeout;
        let mut source = call("harness.create()", limit, self.harness.create()).await?;
        let shown = restore
            .as_ref()
            .map_or_else(|| "None".to_string(), |o| format!("Some({})", o.0));
        call(
            format!("{what}: source.open({shown})"),
            limit,
            source.open(restore),
        )
        .await?;
        Ok(Reader {
            source,
            limit,
            what: what.to_string(),
            announced: HashSet::new(),
            ended: false,
        })
    }

    /// Reads until the end (bounded) or until `expected` data changes are in `out`
    /// (unbounded).
    async fn drain(
        &self,
        rd: &mut Reader,
        out: &mut Vec<String>,
        expected: usize,
    ) -> Result<(), Problem> {
        let deadline = Instant::now() + self.caps.read_timeout;
        while !rd.ended && (self.caps.bounded || out.len() < expected) {
            if Instant::now() >= deadline {
                return Err(self.too_slow(out, expected));
            }
            if rd.next(out).await?.is_none() && !self.caps.bounded {
                return Err(Problem::new(format!(
                    "{}: the source returned Ok(None) (ended) after {} of {expected} data changes although the capabilities declare it unbounded",
                    rd.what,
                    out.len()
                )));
            }
            if self.caps.bounded && out.len() > too_many(expected) {
                return Err(Problem::new(format!(
                    "{}: the bounded source delivered {} data changes where {expected} were produced and has not ended",
                    rd.what,
                    out.len()
                )));
            }
        }
        Ok(())
    }

    /// Reads until a batch with at least one data change arrived, or the end.
    async fn read_data_batch(&self, rd: &mut Reader, out: &mut Vec<String>) -> Result<(), Problem> {
        let deadline = Instant::now() + self.caps.read_timeout;
        while !rd.ended {
            if Instant::now() >= deadline {
                return Err(self.too_slow(out, self.expected()));
            }
            if rd.next(out).await?.is_some_and(|n| n > 0) {
                break;
            }
        }
        Ok(())
    }

    fn too_slow(&self, out: &[String], expected: usize) -> Problem {
        Problem::new(format!(
            "after {:?} only {} of {expected} data changes had arrived (read_timeout in the capabilities)",
            self.caps.read_timeout,
            out.len(),
        ))
    }

    /// `got` must hold the reference's data changes, each as often as there.
    fn compare(&self, got: &[String], when: &str) -> Result<(), Problem> {
        let (missing, extra) = multiset_diff(&self.reference.changes, got);
        if missing.is_empty() && extra.is_empty() {
            return Ok(());
        }
        Err(Problem::new(format!(
            "{when}: {} of {} data change(s) lost [{}]; {} delivered more than once or unexpected [{}]",
            missing.len(),
            self.expected(),
            sample(&missing, 5),
            extra.len(),
            sample(&extra, 5)
        )))
    }
}

/// How long a `next_batch` future may run before it is dropped.
#[derive(Clone, Copy)]
enum Attempt {
    PollOnce,
    PollFew,
    Timeout,
    Complete,
}

/// One opened source instance.
struct Reader {
    source: Box<dyn Source>,
    limit: Duration,
    /// Which run this is, for messages.
    what: String,
    /// Tables whose `CreateTable` this instance has delivered.
    announced: HashSet<TableId>,
    ended: bool,
}

impl Reader {
    /// One `next_batch` run to completion. `Some(n)` with the number of data changes, `None`
    /// at the end.
    async fn next(&mut self, out: &mut Vec<String>) -> Result<Option<usize>, Problem> {
        let batch = call(
            format!("{}: source.next_batch()", self.what),
            self.limit,
            self.source.next_batch(),
        )
        .await?;
        match batch {
            None => {
                self.ended = true;
                Ok(None)
            }
            Some(events) => {
                let before = out.len();
                self.absorb(events, out)?;
                Ok(Some(out.len() - before))
            }
        }
    }

    /// A `next_batch` that may be dropped unfinished: `None` when it was.
    async fn attempt(&mut self, mode: Attempt) -> Result<Option<Option<Vec<Event>>>, Problem> {
        let what = format!("{}: source.next_batch()", self.what);
        let finished = match mode {
            Attempt::PollOnce | Attempt::PollFew => {
                let polls = if matches!(mode, Attempt::PollOnce) {
                    1
                } else {
                    4
                };
                let mut fut = self.source.next_batch();
                let mut finished = None;
                for n in 0..polls {
                    if n > 0 {
                        tokio::task::yield_now().await;
                    }
                    let polled =
                        std::future::poll_fn(|cx| Poll::Ready(fut.as_mut().poll(cx))).await;
                    if let Poll::Ready(result) = polled {
                        finished = Some(result);
                        break;
                    }
                }
                // An unfinished `fut` is dropped here: that is the cancellation.
                finished
            }
            Attempt::Timeout => {
                tokio::time::timeout(Duration::from_millis(5), self.source.next_batch())
                    .await
                    .ok()
            }
            Attempt::Complete => {
                return call(&what, self.limit, self.source.next_batch())
                    .await
                    .map(Some);
            }
        };
        match finished {
            None => Ok(None),
            Some(Ok(batch)) => Ok(Some(batch)),
            Some(Err(e)) => Err(Problem::new(format!("{what} failed: {e}"))),
        }
    }

    /// Checks and records a batch: every data change's table was announced by this
    /// instance first.
    fn absorb(&mut self, events: Vec<Event>, out: &mut Vec<String>) -> Result<(), Problem> {
        for event in events {
            match event {
                Event::SchemaChange(SchemaChangeEvent::CreateTable { table_id, .. }) => {
                    self.announced.insert(table_id);
                }
                Event::SchemaChange(_) => {}
                Event::DataChange(e) => {
                    if !self.announced.contains(&e.table_id) {
                        return Err(Problem::new(format!(
                            "{}: a {} row of {} arrived before any CreateTable of that table from this source instance (a source announces its tables when it opens, also when it resumes)",
                            self.what,
                            e.op.short_tag(),
                            e.table_id
                        )));
                    }
                    let image = match (&e.before, &e.after) {
                        (Some(b), Some(a)) => format!("{b:?} -> {a:?}"),
                        (Some(row), None) | (None, Some(row)) => format!("{row:?}"),
                        (None, None) => "(no row)".to_string(),
                    };
                    out.push(format!("{} {} {image}", e.table_id, e.op.short_tag()));
                }
            }
        }
        Ok(())
    }

    /// `offset()`, put through the JSON round trip of the state store.
    fn offset(&self) -> Result<SourceOffset, Problem> {
        let offset = self
            .source
            .offset()
            .map_err(|e| Problem::new(format!("{}: source.offset() failed: {e}", self.what)))?;
        let stored = serde_json::to_string(&offset).map_err(|e| {
            Problem::new(format!(
                "{}: the offset cannot be stored as JSON: {e}",
                self.what
            ))
        })?;
        serde_json::from_str(&stored).map_err(|e| {
            Problem::new(format!(
                "{}: the offset {stored} does not read back from JSON: {e}",
                self.what
            ))
        })
    }

    async fn checkpoint_complete(&mut self, offset: &SourceOffset) -> Result<(), Problem> {
        call(
            format!("{}: source.checkpoint_complete({})", self.what, offset.0),
            self.limit,
            self.source.checkpoint_complete(offset),
        )
        .await
    }

    async fn close(mut self) -> Result<(), Problem> {
        call(
            format!("{}: source.close()", self.what),
            self.limit,
            self.source.close(),
        )
        .await
    }
}
