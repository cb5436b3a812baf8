//! The conformance checks themselves: the test kit's values connectors and a correct
//! in-memory sink pass, and connectors with one deliberate flaw fail the case that names it.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use cdc_api::{
    BoxError, CheckpointId, Column, Committable, DataChangeEvent, DataType, DataTypeKind, Event,
    FactoryContext, OperationType, Options, Result, Schema, SchemaApplier, SchemaChangeEvent,
    SchemaChangeKind, Sink, SinkFactory, SinkParts, Source, SourceFactory, SourceOffset, TableId,
    Value,
};
use cdc_testkit::conformance::sink::{self, SinkCapabilities, SinkHarness};
use cdc_testkit::conformance::source::{self, SourceCapabilities, SourceHarness};
use cdc_testkit::conformance::{Failure, Report, Status};
use cdc_testkit::{ValuesSinkFactory, ValuesSourceFactory, register_event_set, values_database};

fn context(block: &str, pipeline: &str, options: &[(&str, &str)]) -> FactoryContext {
    let mut o = Options::new(block);
    for (k, v) in options {
        o.insert(*k, *v);
    }
    FactoryContext {
        pipeline_name: pipeline.to_string(),
        options: o,
        pipeline_options: Options::new("pipeline"),
    }
}

fn expect_failure(result: std::result::Result<Report, Failure>, case: &str) -> Failure {
    match result {
        Ok(report) => panic!("expected `{case}` to fail, but every case passed:\n{report}"),
        Err(failure) => {
            println!("{failure}");
            assert!(
                failure.has_failed(case),
                "expected `{case}` among the failed cases, got {:?}",
                failure.failed_cases()
            );
            failure
        }
    }
}

// ---------------------------------------------------------------------------------------
// Sinks

/// The test kit's values sink: one in-memory database per pipeline.
struct ValuesSinkHarness {
    prefix: &'static str,
}

#[async_trait]
impl SinkHarness for ValuesSinkHarness {
    fn capabilities(&self) -> SinkCapabilities {
        SinkCapabilities::exactly_once().with_tables_without_key()
    }

    async fn create(&self, pipeline: &str) -> std::result::Result<SinkParts, BoxError> {
        let id = format!("{}-{pipeline}", self.prefix);
        Ok(ValuesSinkFactory.create(&context("sink", pipeline, &[("sink-id", &id)]))?)
    }

    async fn read_rows(
        &self,
        pipeline: &str,
        table: &TableId,
        _schema: &Schema,
    ) -> std::result::Result<Vec<Vec<Value>>, BoxError> {
        let db = values_database(&format!("{}-{pipeline}", self.prefix));
        let db = db.lock().unwrap();
        Ok(db
            .tables
            .get(table)
            .map(|t| t.rows.clone())
            .unwrap_or_default())
    }
}

#[tokio::test]
async fn the_values_sink_passes_every_case() {
    let report = sink::check(ValuesSinkHarness {
        prefix: "values-passes",
    })
    .await
    .unwrap();
    println!("{report}");
    assert_eq!(report.passed().len(), sink::Case::ALL.len(), "{report}");
}

/// What a [`MemorySink`] gets wrong, on purpose.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Flaw {
    None,
    /// Applies rows at write time (while the capabilities may claim exactly-once).
    VisibleAtWrite,
    /// Applies a checkpoint's rows on every commit of it.
    CommitNotIdempotent,
    /// `recover` keeps what earlier runs prepared, and preparing a checkpoint number again
    /// adds to what is there.
    RecoverKeepsPrepared,
    /// `close` discards everything prepared and not yet committed.
    CloseAbortsPrepared,
}

/// One pipeline's target: tables, plus prepared and committed checkpoints.
#[derive(Default)]
struct Store {
    tables: BTreeMap<TableId, (Schema, Vec<Vec<Value>>)>,
    prepared: BTreeMap<u64, Vec<Event>>,
    committed: BTreeSet<u64>,
}

impl Store {
    fn apply(&mut self, event: &Event) {
        match event {
            Event::SchemaChange(SchemaChangeEvent::CreateTable { table_id, schema }) => {
                self.tables
                    .entry(table_id.clone())
                    .or_insert_with(|| (schema.clone(), Vec::new()));
            }
            Event::SchemaChange(change) => {
                if let Some((schema, rows)) = self.tables.get_mut(change.table_id()) {
                    let next = change.apply_to(schema).unwrap();
                    let map: Vec<Option<usize>> = next
                        .columns
                        .iter()
                        .map(|c| schema.column_index(&c.name))
                        .collect();
                    for row in rows.iter_mut() {
                        *row = map
                            .iter()
                            .map(|i| i.map_or(Value::Null, |i| row[i].clone()))
                            .collect();
                    }
                    *schema = next;
                }
            }
            Event::DataChange(e) => {
                let (schema, rows) = self.tables.get_mut(&e.table_id).unwrap();
                let key = schema.primary_key_indexes();
                let same = |a: &[Value], b: &[Value]| {
                    if key.is_empty() {
                        a == b
                    } else {
                        key.iter().all(|&i| a[i] == b[i])
                    }
                };
                if let (Some(before), true) = (&e.before, e.op != OperationType::Insert) {
                    if let Some(at) = rows.iter().position(|r| same(r, before)) {
                        rows.remove(at);
                    }
                }
                if let Some(after) = &e.after {
                    if !key.is_empty() {
                        rows.retain(|r| !same(r, after));
                    }
                    rows.push(after.clone());
                }
            }
        }
    }
}

struct MemorySink {
    store: Arc<Mutex<Store>>,
    pending: Vec<Event>,
    flaw: Flaw,
}

fn checkpoints(committables: &[Committable]) -> Vec<u64> {
    committables
        .iter()
        .map(|c| c.0["checkpoint"].as_u64().unwrap())
        .collect()
}

#[async_trait]
impl Sink for MemorySink {
    async fn write(&mut self, events: Vec<Event>) -> Result<()> {
        if self.flaw == Flaw::VisibleAtWrite {
            let mut store = self.store.lock().unwrap();
            for e in &events {
                store.apply(e);
            }
        } else {
            self.pending.extend(events);
        }
        Ok(())
    }

    async fn flush(&mut self) -> Result<()> {
        Ok(())
    }

    async fn prepare(&mut self, checkpoint: CheckpointId) -> Result<Vec<Committable>> {
        let events = std::mem::take(&mut self.pending);
        let mut store = self.store.lock().unwrap();
        if self.flaw == Flaw::RecoverKeepsPrepared {
            store
                .prepared
                .entry(checkpoint.0)
                .or_default()
                .extend(events);
        } else {
            store.prepared.insert(checkpoint.0, events);
        }
        Ok(vec![Committable(
            serde_json::json!({ "checkpoint": checkpoint.0 }),
        )])
    }

    async fn commit(&mut self, committables: Vec<Committable>) -> Result<()> {
        let mut store = self.store.lock().unwrap();
        for id in checkpoints(&committables) {
            let events = if self.flaw == Flaw::CommitNotIdempotent {
                store.prepared.get(&id).cloned()
            } else if store.committed.contains(&id) {
                None
            } else {
                store.prepared.remove(&id)
            };
            for e in events.unwrap_or_default() {
                store.apply(&e);
            }
            store.committed.insert(id);
        }
        Ok(())
    }

    async fn abort(&mut self, committables: Vec<Committable>) -> Result<()> {
        let mut store = self.store.lock().unwrap();
        for id in checkpoints(&committables) {
            store.prepared.remove(&id);
        }
        Ok(())
    }

    async fn recover(&mut self, recovery: &cdc_api::Recovery) -> Result<()> {
        let last = recovery.last;
        if self.flaw != Flaw::RecoverKeepsPrepared {
            let last = last.map_or(0, |c| c.0);
            let mut store = self.store.lock().unwrap();
            // Checkpoint numbers after `last` will be used again by this run.
            store.prepared.retain(|id, _| *id <= last);
            store.committed.retain(|id| *id <= last);
        }
        Ok(())
    }

    async fn close(&mut self) -> Result<()> {
        if self.flaw == Flaw::CloseAbortsPrepared {
            let mut store = self.store.lock().unwrap();
            store.prepared.clear();
        }
        Ok(())
    }
}

struct AcceptAll;

#[async_trait]
impl SchemaApplier for AcceptAll {
    fn supported_kinds(&self) -> Vec<SchemaChangeKind> {
        SchemaChangeKind::ALL.to_vec()
    }

    async fn apply(&mut self, _change: &SchemaChangeEvent) -> Result<()> {
        Ok(())
    }
}

struct MemoryHarness {
    flaw: Flaw,
    capabilities: SinkCapabilities,
    stores: Mutex<HashMap<String, Arc<Mutex<Store>>>>,
}

impl MemoryHarness {
    fn new(flaw: Flaw, capabilities: SinkCapabilities) -> Self {
        Self {
            flaw,
            // In memory, rows show at once: no need to wait for them long.
            capabilities: capabilities.with_visibility_timeout(Duration::from_secs(1)),
            stores: Mutex::new(HashMap::new()),
        }
    }

    fn store(&self, pipeline: &str) -> Arc<Mutex<Store>> {
        self.stores
            .lock()
            .unwrap()
            .entry(pipeline.to_string())
            .or_default()
            .clone()
    }
}

#[async_trait]
impl SinkHarness for MemoryHarness {
    fn capabilities(&self) -> SinkCapabilities {
        self.capabilities.clone()
    }

    async fn create(&self, pipeline: &str) -> std::result::Result<SinkParts, BoxError> {
        Ok(SinkParts {
            sink: Box::new(MemorySink {
                store: self.store(pipeline),
                pending: Vec::new(),
                flaw: self.flaw,
            }),
            applier: Box::new(AcceptAll),
        })
    }

    async fn read_rows(
        &self,
        pipeline: &str,
        table: &TableId,
        _schema: &Schema,
    ) -> std::result::Result<Vec<Vec<Value>>, BoxError> {
        let store = self.store(pipeline);
        let store = store.lock().unwrap();
        Ok(store
            .tables
            .get(table)
            .map(|(_, rows)| rows.clone())
            .unwrap_or_default())
    }
}

fn exactly_once() -> SinkCapabilities {
    SinkCapabilities::exactly_once().with_tables_without_key()
}

#[tokio::test]
async fn a_correct_memory_sink_passes_every_case() {
    let report = sink::check(MemoryHarness::new(Flaw::None, exactly_once()))
        .await
        .unwrap();
    assert_eq!(report.passed().len(), sink::Case::ALL.len(), "{report}");
}

#[tokio::test]
async fn rows_visible_at_write_fail_an_exactly_once_claim() {
    let failure = expect_failure(
        sink::check(MemoryHarness::new(Flaw::VisibleAtWrite, exactly_once())).await,
        "nothing_visible_before_commit",
    );
    let text = failure.to_string();
    assert!(
        text.contains("after write, before any checkpoint"),
        "{text}"
    );
    assert!(text.contains("how to fix: buffer in write"), "{text}");
    assert!(failure.has_failed("abort_discards"));
    assert!(!failure.has_failed("rows_visible_after_commit"));
}

#[tokio::test]
async fn rows_visible_at_write_pass_as_at_least_once() {
    let report = sink::check(MemoryHarness::new(
        Flaw::VisibleAtWrite,
        SinkCapabilities::at_least_once(),
    ))
    .await
    .unwrap();
    println!("{report}");
    for case in [
        sink::Case::NothingVisibleBeforeCommit,
        sink::Case::AbortDiscards,
        sink::Case::RecoverDiscardsUnsavedPrepare,
        sink::Case::RecoverDiscardsAfterOlderCheckpoint,
    ] {
        let outcome = report.outcome(case.name()).unwrap();
        assert!(
            matches!(&outcome.status, Status::Skipped { reason } if reason.contains("at-least-once")),
            "{case}: {:?}",
            outcome.status
        );
    }
    assert_eq!(report.passed().len(), sink::Case::ALL.len() - 4, "{report}");
}

#[tokio::test]
async fn a_commit_that_applies_twice_fails_idempotence() {
    expect_failure(
        sink::check(MemoryHarness::new(
            Flaw::CommitNotIdempotent,
            exactly_once(),
        ))
        .await,
        "commit_is_idempotent",
    );
    // Without a table that has no key, the repeated commit shows through a later one.
    let failure = expect_failure(
        sink::check_cases(
            MemoryHarness::new(Flaw::CommitNotIdempotent, SinkCapabilities::exactly_once()),
            &[sink::Case::CommitIsIdempotent],
        )
        .await,
        "commit_is_idempotent",
    );
    assert_eq!(failure.report.outcomes.len(), 1);
}

#[tokio::test]
async fn a_recover_that_keeps_prepared_rows_fails() {
    expect_failure(
        sink::check(MemoryHarness::new(
            Flaw::RecoverKeepsPrepared,
            exactly_once(),
        ))
        .await,
        "recover_discards_unsaved_prepare",
    );
}

#[tokio::test]
async fn a_close_that_aborts_prepared_work_fails() {
    expect_failure(
        sink::check(MemoryHarness::new(
            Flaw::CloseAbortsPrepared,
            exactly_once(),
        ))
        .await,
        "close_is_clean",
    );
}

// ---------------------------------------------------------------------------------------
// Sources

fn two_tables() -> Vec<Event> {
    let schema = Schema::new(vec![
        Column::new("id", DataType::new(DataTypeKind::BigInt).not_null()),
        Column::new("v", DataType::new(DataTypeKind::String)),
    ])
    .with_primary_key(["id"]);
    let a = TableId::new("shop", "a");
    let b = TableId::new("shop", "b");
    let row = |id: i64, v: &str| vec![Value::BigInt(id), Value::String(v.to_string())];
    let mut events: Vec<Event> = vec![
        SchemaChangeEvent::CreateTable {
            table_id: a.clone(),
            schema: schema.clone(),
        }
        .into(),
    ];
    for i in 0..6 {
        events.push(DataChangeEvent::insert(a.clone(), row(i, "x")).into());
    }
    events.push(
        SchemaChangeEvent::CreateTable {
            table_id: b.clone(),
            schema,
        }
        .into(),
    );
    events.push(DataChangeEvent::insert(b.clone(), row(1, "y")).into());
    events.push(DataChangeEvent::update(a.clone(), row(2, "x"), row(2, "z")).into());
    events.push(DataChangeEvent::delete(a, row(3, "x")).into());
    events.push(DataChangeEvent::update(b.clone(), row(1, "y"), row(1, "w")).into());
    events.push(DataChangeEvent::insert(b, row(2, "y")).into());
    events
}

/// The values source over [`two_tables`] (11 data changes), three events per batch.
struct ValuesSourceHarness {
    event_set: &'static str,
    unbounded: bool,
}

#[async_trait]
impl SourceHarness for ValuesSourceHarness {
    fn capabilities(&self) -> SourceCapabilities {
        if self.unbounded {
            SourceCapabilities::unbounded()
        } else {
            SourceCapabilities::bounded()
        }
    }

    async fn produce_changes(&self) -> std::result::Result<usize, BoxError> {
        let events = two_tables();
        let data = events
            .iter()
            .filter(|e| matches!(e, Event::DataChange(_)))
            .count();
        register_event_set(self.event_set, events);
        Ok(data)
    }

    async fn create(&self) -> std::result::Result<Box<dyn Source>, BoxError> {
        let unbounded = if self.unbounded { "true" } else { "false" };
        Ok(ValuesSourceFactory.create(&context(
            "source",
            "conformance",
            &[
                ("event-set", self.event_set),
                ("batch-size", "3"),
                ("unbounded", unbounded),
            ],
        ))?)
    }
}

#[tokio::test]
async fn the_values_source_passes_bounded_and_unbounded() {
    let report = source::check(ValuesSourceHarness {
        event_set: "conformance-bounded",
        unbounded: false,
    })
    .await
    .unwrap();
    println!("{report}");
    assert_eq!(report.skipped(), ["idle_source_returns"]);

    let report = source::check(ValuesSourceHarness {
        event_set: "conformance-unbounded",
        unbounded: true,
    })
    .await
    .unwrap();
    println!("{report}");
    assert_eq!(report.passed().len(), source::Case::ALL.len(), "{report}");
}

/// What a [`Counter`] source gets wrong, on purpose.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SourceFlaw {
    None,
    /// `offset()` points one event too far: a reopen skips one.
    OffsetTooFar,
    /// The position moves before the `.await` in `next_batch`: a dropped call loses a row.
    NotCancelSafe,
    /// The table is announced only on a fresh start, not after a resume.
    NoAnnounceOnResume,
    /// `captures` denies the table the source reads.
    DeniesItsTable,
}

/// Emits rows 0..total of `demo.counter`, one per batch, with an `.await` inside.
struct Counter {
    next: u64,
    total: u64,
    announced: bool,
    resumed: bool,
    flaw: SourceFlaw,
}

fn counter_table() -> TableId {
    TableId::new("demo", "counter")
}

#[async_trait]
impl Source for Counter {
    async fn open(&mut self, restore: Option<SourceOffset>) -> Result<()> {
        if let Some(SourceOffset(v)) = restore {
            self.next = v.as_u64().unwrap();
            self.resumed = true;
        }
        Ok(())
    }

    async fn next_batch(&mut self) -> Result<Option<Vec<Event>>> {
        if !self.announced {
            self.announced = true;
            if !(self.flaw == SourceFlaw::NoAnnounceOnResume && self.resumed) {
                let schema = Schema::new(vec![Column::new(
                    "n",
                    DataType::new(DataTypeKind::BigInt).not_null(),
                )])
                .with_primary_key(["n"]);
                return Ok(Some(vec![
                    SchemaChangeEvent::CreateTable {
                        table_id: counter_table(),
                        schema,
                    }
                    .into(),
                ]));
            }
        }
        if self.next >= self.total {
            return Ok(None);
        }
        let n = self.next;
        if self.flaw == SourceFlaw::NotCancelSafe {
            self.next += 1;
            tokio::task::yield_now().await;
        } else {
            // Waiting for upstream comes first; the position moves only when returning.
            tokio::task::yield_now().await;
            self.next += 1;
        }
        Ok(Some(vec![
            DataChangeEvent::insert(counter_table(), vec![Value::BigInt(n as i64)]).into(),
        ]))
    }

    fn captures(&self, table: &TableId) -> Option<bool> {
        Some(*table == counter_table() && self.flaw != SourceFlaw::DeniesItsTable)
    }

    fn offset(&self) -> Result<SourceOffset> {
        let skip = u64::from(self.flaw == SourceFlaw::OffsetTooFar && self.next > 0);
        Ok(SourceOffset((self.next + skip).into()))
    }
}

struct CounterHarness(SourceFlaw);

#[async_trait]
impl SourceHarness for CounterHarness {
    fn capabilities(&self) -> SourceCapabilities {
        SourceCapabilities::bounded()
    }

    async fn produce_changes(&self) -> std::result::Result<usize, BoxError> {
        Ok(20)
    }

    async fn create(&self) -> std::result::Result<Box<dyn Source>, BoxError> {
        Ok(Box::new(Counter {
            next: 0,
            total: 20,
            announced: false,
            resumed: false,
            flaw: self.0,
        }))
    }
}

#[tokio::test]
async fn a_correct_counter_passes_and_really_gets_cancelled() {
    let report = source::check(CounterHarness(SourceFlaw::None))
        .await
        .unwrap();
    println!("{report}");
    let outcome = report
        .outcome("cancelled_next_batch_loses_nothing")
        .unwrap();
    let Status::Passed { note: Some(note) } = &outcome.status else {
        panic!("{:?}", outcome.status);
    };
    assert!(!note.starts_with("0 of"), "no future was dropped: {note}");
}

#[tokio::test]
async fn an_offset_past_the_last_event_fails_reopen() {
    let failure = expect_failure(
        source::check(CounterHarness(SourceFlaw::OffsetTooFar)).await,
        "reopen_from_offset",
    );
    assert!(failure.to_string().contains("lost"), "{failure}");
    assert!(!failure.has_failed("reads_all_events"));
}

#[tokio::test]
async fn moving_before_the_await_fails_cancel_safety() {
    let failure = expect_failure(
        source::check(CounterHarness(SourceFlaw::NotCancelSafe)).await,
        "cancelled_next_batch_loses_nothing",
    );
    assert!(!failure.has_failed("reopen_from_offset"));
}

#[tokio::test]
async fn no_create_table_after_a_resume_fails_reopen() {
    let failure = expect_failure(
        source::check(CounterHarness(SourceFlaw::NoAnnounceOnResume)).await,
        "reopen_from_offset",
    );
    assert!(
        failure.to_string().contains("before any CreateTable"),
        "{failure}"
    );
}

#[tokio::test]
async fn denying_a_delivered_table_fails_captures() {
    let failure = expect_failure(
        source::check(CounterHarness(SourceFlaw::DeniesItsTable)).await,
        "captures_its_tables",
    );
    assert_eq!(failure.failed_cases(), ["captures_its_tables"]);
}
