//! Every way a checkpoint's commit can end: a save that may or may not be durable, a
//! target that lost the prepared transactions (at restart and while running), a reset over
//! a commit that keeps failing, and a run that lost ownership of its state. In each case
//! nothing is lost, nothing doubled, and checkpoint numbers are never reused.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers may panic

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, LazyLock, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use cdc_api::{
    CheckpointId, Column, Committable, DataChangeEvent, DataType, DataTypeKind, Error, Event,
    FactoryContext, OwnerEpoch, Recovery, Result, Schema, SchemaChangeEvent, Sink, SinkFactory,
    SinkParts, TableId, Value,
};
use cdc_runtime::{
    Checkpoint, FileStateStore, MemoryStateStore, Ownership, Pipeline, PipelineDefinition,
    RunSummary, RuntimeError, StateStore,
};
use cdc_testkit::{ValuesSinkFactory, register_event_set, test_registry, values_database};

/// What a test makes the target do, and what the sink was asked, per `sink-id`.
#[derive(Default)]
struct Control {
    /// `prepare 3`, `commit [3]`, `abort [3]`, `recover last=Some(2) earlier=1`, in order.
    calls: Mutex<Vec<String>>,
    /// Checkpoints whose prepared transactions the target has lost (aborted, expired).
    lost: Mutex<BTreeSet<u64>>,
    /// Checkpoints whose commit fails with a permanent error.
    failing: Mutex<BTreeSet<u64>>,
    /// The recoveries the sink got.
    recoveries: Mutex<Vec<Recovery>>,
    /// The target loses the first checkpoint prepared after a schema change.
    lose_after_schema_change: Mutex<bool>,
    /// This many commits fail with a transient error (a target away for longer than the
    /// connector's own retries), before anything is committed.
    transient_commit_failures: Mutex<u32>,
}

static CONTROLS: LazyLock<Mutex<HashMap<String, Arc<Control>>>> = LazyLock::new(Mutex::default);

fn control(sink_id: &str) -> Arc<Control> {
    CONTROLS
        .lock()
        .unwrap()
        .entry(sink_id.to_string())
        .or_default()
        .clone()
}

fn ids(committables: &[Committable]) -> Vec<u64> {
    committables
        .iter()
        .filter_map(|c| c.0.get("checkpoint").and_then(serde_json::Value::as_u64))
        .collect()
}

/// `type: recording`: the values sink, with every call recorded and the target's
/// failures injected through [`Control`].
struct RecordingFactory;

impl SinkFactory for RecordingFactory {
    fn identifier(&self) -> &'static str {
        "recording"
    }

    fn options(&self) -> Vec<cdc_api::ConfigOption> {
        ValuesSinkFactory.options()
    }

    fn create(&self, ctx: &FactoryContext) -> Result<SinkParts> {
        let parts = ValuesSinkFactory.create(ctx)?;
        let sink_id = ctx.options.get_raw("sink-id").unwrap_or("default");
        Ok(SinkParts {
            sink: Box::new(Recording {
                inner: parts.sink,
                control: control(sink_id),
                schema_changed: false,
            }),
            applier: parts.applier,
        })
    }
}

struct Recording {
    inner: Box<dyn Sink>,
    control: Arc<Control>,
    /// A schema change was written since the last prepare.
    schema_changed: bool,
}

impl Recording {
    fn record(&self, call: String) {
        self.control.calls.lock().unwrap().push(call);
    }
}

#[async_trait]
impl Sink for Recording {
    async fn write(&mut self, events: Vec<Event>) -> Result<()> {
        if events
            .iter()
            .any(|e| matches!(e, Event::SchemaChange(SchemaChangeEvent::AddColumn { .. })))
        {
            self.schema_changed = true;
        }
        self.inner.write(events).await
    }

    async fn flush(&mut self) -> Result<()> {
        self.inner.flush().await
    }

    async fn prepare(&mut self, checkpoint: CheckpointId) -> Result<Vec<Committable>> {
        self.record(format!("prepare {checkpoint}"));
        if std::mem::take(&mut self.schema_changed)
            && std::mem::take(&mut *self.control.lose_after_schema_change.lock().unwrap())
        {
            self.control.lost.lock().unwrap().insert(checkpoint.0);
        }
        self.inner.prepare(checkpoint).await
    }

    async fn commit(&mut self, committables: Vec<Committable>) -> Result<()> {
        let numbers = ids(&committables);
        self.record(format!("commit {numbers:?}"));
        {
            let mut left = self.control.transient_commit_failures.lock().unwrap();
            if *left > 0 {
                *left -= 1;
                return Err(
                    Error::transient("committing", "connection refused (injected)")
                        .retries_exhausted("after 4 attempts (sink.max-retries)"),
                );
            }
        }
        if numbers
            .iter()
            .any(|id| self.control.failing.lock().unwrap().contains(id))
        {
            return Err(Error::permanent(
                "committing",
                "the target refuses (injected)",
            ));
        }
        let lost: BTreeSet<u64> = self.control.lost.lock().unwrap().clone();
        let (gone, alive): (Vec<Committable>, Vec<Committable>) =
            committables.into_iter().partition(|c| {
                ids(std::slice::from_ref(c))
                    .iter()
                    .any(|id| lost.contains(id))
            });
        // What is still there is committed, as a target commits transaction by transaction.
        self.inner.commit(alive).await?;
        if gone.is_empty() {
            return Ok(());
        }
        // The target dropped the rest: its data must never show up.
        self.inner.abort(gone.clone()).await?;
        Err(Error::transaction_lost(
            format!("committing {:?}", ids(&gone)),
            "transaction not found (injected: expired in the target)",
        ))
    }

    async fn abort(&mut self, committables: Vec<Committable>) -> Result<()> {
        self.record(format!("abort {:?}", ids(&committables)));
        self.inner.abort(committables).await
    }

    async fn recover(&mut self, recovery: &Recovery) -> Result<()> {
        self.record(format!(
            "recover last={:?} earlier={}",
            recovery.last.map(|c| c.0),
            recovery.earlier.len()
        ));
        self.control
            .recoveries
            .lock()
            .unwrap()
            .push(recovery.clone());
        self.inner.recover(recovery).await
    }
}

/// A fault a [`FaultyStore`] injects when it saves checkpoint `at`.
#[derive(Debug, Clone, Copy)]
enum Fault {
    /// The save fails after the rename (directory fsync): durable or not.
    MaybeSaved { at: u64, durable: bool },
    /// Another run claims the state just before this save.
    TakenOverBeforeSave { at: u64 },
    /// Another run claims the state just after this save.
    TakenOverAfterSave { at: u64 },
}

struct FaultyStore {
    inner: Arc<MemoryStateStore>,
    fault: Fault,
}

#[async_trait]
impl StateStore for FaultyStore {
    async fn claim(&self) -> std::result::Result<Ownership, RuntimeError> {
        self.inner.claim().await
    }

    async fn verify(&self, epoch: OwnerEpoch) -> std::result::Result<(), RuntimeError> {
        self.inner.verify(epoch).await
    }

    async fn load(&self) -> std::result::Result<Option<Checkpoint>, RuntimeError> {
        self.inner.load().await
    }

    async fn save(&self, checkpoint: &Checkpoint) -> std::result::Result<(), RuntimeError> {
        match self.fault {
            Fault::MaybeSaved { at, durable } if checkpoint.id.0 == at => {
                if durable {
                    self.inner.save(checkpoint).await?;
                }
                Err(RuntimeError::StateMaybeSaved {
                    location: "test store".into(),
                    message:
                        "checkpoint.json was replaced but syncing the directory failed (injected)"
                            .into(),
                })
            }
            Fault::TakenOverBeforeSave { at } if checkpoint.id.0 == at => {
                self.inner.claim().await?;
                self.inner.save(checkpoint).await
            }
            Fault::TakenOverAfterSave { at } if checkpoint.id.0 == at => {
                self.inner.save(checkpoint).await?;
                self.inner.claim().await?;
                Ok(())
            }
            _ => self.inner.save(checkpoint).await,
        }
    }

    async fn settle(&self, epoch: OwnerEpoch) -> std::result::Result<(), RuntimeError> {
        self.inner.settle(epoch).await
    }

    fn describe(&self) -> String {
        "test store".into()
    }
}

fn events(rows: i64) -> Vec<Event> {
    let t = TableId::new("db", "t");
    let mut out: Vec<Event> = vec![
        SchemaChangeEvent::CreateTable {
            table_id: t.clone(),
            schema: Schema::new(vec![
                Column::new("id", DataType::new(DataTypeKind::BigInt).not_null()),
                Column::new("v", DataType::new(DataTypeKind::Int)),
            ])
            .with_primary_key(["id"]),
        }
        .into(),
    ];
    for i in 0..rows {
        out.push(DataChangeEvent::insert(t.clone(), vec![Value::BigInt(i), Value::Int(0)]).into());
    }
    out
}

/// A values -> recording pipeline over `name`'s event set, about ten checkpoints long.
fn definition(name: &str, extra_pipeline: &str) -> PipelineDefinition {
    let text = format!(
        "source: {{type: values, event-set: {name}, batch-size: 5, batch-interval: 10ms}}\n\
         sink: {{type: recording, sink-id: {name}}}\n\
         pipeline: {{name: {name}, checkpoint.interval: 100ms{extra_pipeline}}}\n"
    );
    PipelineDefinition::from_yaml_str(&text, "recovery.yaml").unwrap()
}

fn registry() -> cdc_api::ConnectorRegistry {
    let mut registry = test_registry();
    registry.register_sink(RecordingFactory);
    registry
}

async fn run(
    name: &str,
    store: Arc<dyn StateStore>,
    reset: bool,
) -> std::result::Result<RunSummary, RuntimeError> {
    run_with(name, store, reset, ", restart-strategy.type: none").await
}

/// [`run`] with more `pipeline` options (`, key: value`).
async fn run_with(
    name: &str,
    store: Arc<dyn StateStore>,
    reset: bool,
    extra_pipeline: &str,
) -> std::result::Result<RunSummary, RuntimeError> {
    tokio::time::timeout(
        Duration::from_secs(60),
        Pipeline::build(&definition(name, extra_pipeline), &registry())
            .unwrap()
            .with_state_store(store)
            .with_reset(reset)
            .run(std::future::pending()),
    )
    .await
    .expect("the pipeline timed out")
}

fn calls(name: &str) -> Vec<String> {
    control(name).calls.lock().unwrap().clone()
}

fn take_calls(name: &str) -> Vec<String> {
    std::mem::take(&mut *control(name).calls.lock().unwrap())
}

/// The numbers of the checkpoints `calls` prepared.
fn prepared(calls: &[String]) -> Vec<u64> {
    calls
        .iter()
        .filter_map(|c| c.strip_prefix("prepare "))
        .map(|n| n.parse().unwrap())
        .collect()
}

fn committed_log(name: &str) -> Vec<Event> {
    values_database(name).lock().unwrap().log.clone()
}

#[tokio::test]
async fn a_save_that_may_be_durable_aborts_nothing_and_the_restart_settles_it() {
    for durable in [true, false] {
        let name = format!("maybe-saved-{durable}");
        let evs = events(400);
        register_event_set(&name, evs.clone());
        let store = Arc::new(MemoryStateStore::default());
        let faulty = Arc::new(FaultyStore {
            inner: store.clone(),
            fault: Fault::MaybeSaved { at: 3, durable },
        });
        let err = run(&name, faulty, false).await.unwrap_err();
        assert!(
            matches!(err, RuntimeError::StateMaybeSaved { .. }),
            "{err:?}"
        );
        let text = err.to_string();
        assert!(
            text.contains("checkpoint 3's prepared transactions are left as they are")
                && text.contains("the restart commits them"),
            "{text}"
        );
        let first = take_calls(&name);
        assert!(first.contains(&"prepare 3".to_string()), "{first:?}");
        assert!(
            !first.iter().any(|c| c.contains("[3]")),
            "checkpoint 3 was neither committed nor aborted: {first:?}"
        );
        let kept = store.load().await.unwrap().unwrap();
        assert_eq!(kept.id, CheckpointId(if durable { 3 } else { 2 }));

        let summary = run(&name, store.clone(), false).await.unwrap();
        assert!(summary.resumed && summary.rewound_from.is_none());
        let second = take_calls(&name);
        // Committed again first (idempotent), then recovery, then new checkpoints after it.
        assert_eq!(
            second[0],
            if durable { "commit [3]" } else { "commit [2]" },
            "{second:?}"
        );
        assert!(second[1].starts_with("recover last="), "{second:?}");
        assert_eq!(prepared(&second)[0], if durable { 4 } else { 3 });
        assert_eq!(committed_log(&name), evs, "exactly once");
    }
}

#[tokio::test]
async fn a_checkpoint_lost_in_the_target_rewinds_the_restart_to_the_last_fully_committed() {
    let name = "lost-on-restart";
    let evs = events(400);
    register_event_set(name, evs.clone());
    let store = Arc::new(MemoryStateStore::default());
    // The run stops right after checkpoint 3 is durable, before its commit.
    let faulty = Arc::new(FaultyStore {
        inner: store.clone(),
        fault: Fault::MaybeSaved {
            at: 3,
            durable: true,
        },
    });
    run(name, faulty, false).await.unwrap_err();
    let kept = store.load().await.unwrap().unwrap();
    assert_eq!(kept.id, CheckpointId(3));
    let committed = kept.committed.clone().expect("checkpoint 2 was committed");
    assert_eq!(committed.id, CheckpointId(2));
    assert_ne!(committed.offset, kept.offset);
    assert_eq!(
        committed.schemas, None,
        "no schema change in between: the schemas are stored once"
    );
    take_calls(name);

    // A long downtime: the target expired checkpoint 3's transactions.
    control(name).lost.lock().unwrap().insert(3);
    let summary = run(name, store.clone(), false).await.unwrap();
    assert_eq!(summary.rewound_from, Some(CheckpointId(3)));
    assert!(summary.resumed);
    let calls = take_calls(name);
    assert_eq!(calls[0], "commit [3]", "{calls:?}");
    assert_eq!(
        calls[1], "abort [3]",
        "what is left of it is aborted: {calls:?}"
    );
    assert!(calls[2].starts_with("recover last=Some(3)"), "{calls:?}");
    assert_eq!(
        prepared(&calls)[0],
        4,
        "numbering continues after the lost checkpoint: {calls:?}"
    );
    let db = values_database(name);
    let db = db.lock().unwrap();
    assert!(!db.committed_checkpoints.contains(&CheckpointId(3)));
    assert_eq!(db.log, evs, "the rows of checkpoint 3 arrive once, later");
}

#[tokio::test]
async fn a_rewind_across_a_schema_change_resumes_with_the_schemas_before_it() {
    let name = "lost-after-schema-change";
    let t = TableId::new("db", "t");
    let mut evs = events(200);
    evs.push(
        SchemaChangeEvent::AddColumn {
            table_id: t.clone(),
            columns: vec![(
                Column::new("extra", DataType::new(DataTypeKind::Int)),
                cdc_api::ColumnPosition::Last,
            )],
        }
        .into(),
    );
    for i in 200..400 {
        evs.push(
            DataChangeEvent::insert(
                t.clone(),
                vec![Value::BigInt(i), Value::Int(0), Value::Int(7)],
            )
            .into(),
        );
    }
    register_event_set(name, evs.clone());
    *control(name).lose_after_schema_change.lock().unwrap() = true;
    let store = Arc::new(MemoryStateStore::default());
    let err = run(name, store.clone(), false)
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("a restart rewinds to checkpoint"), "{err}");
    let kept = store.load().await.unwrap().unwrap();
    let committed = kept.committed.clone().unwrap();
    let before = committed
        .schemas
        .expect("the schemas before the change are stored with the position");
    assert_eq!(before.targets[0].target.columns.len(), 2);
    assert_eq!(kept.schemas.targets[0].target.columns.len(), 3);

    let summary = run(name, store, false).await.unwrap();
    assert_eq!(summary.rewound_from, Some(kept.id));
    let db = values_database(name);
    let db = db.lock().unwrap();
    // The change was replayed against the old schemas, so it reached the target once.
    assert!(
        db.log == evs,
        "{} events committed, {} expected",
        db.log.len(),
        evs.len()
    );
    assert_eq!(db.tables[&t].schema.columns.len(), 3);
}

#[tokio::test]
async fn a_lost_first_checkpoint_starts_over() {
    let name = "lost-first";
    let evs = events(200);
    register_event_set(name, evs.clone());
    let store = Arc::new(MemoryStateStore::default());
    let faulty = Arc::new(FaultyStore {
        inner: store.clone(),
        fault: Fault::MaybeSaved {
            at: 1,
            durable: true,
        },
    });
    run(name, faulty, false).await.unwrap_err();
    assert_eq!(store.load().await.unwrap().unwrap().committed, None);
    control(name).lost.lock().unwrap().insert(1);
    take_calls(name);

    let summary = run(name, store, false).await.unwrap();
    assert_eq!(summary.rewound_from, Some(CheckpointId(1)));
    assert!(
        !summary.resumed,
        "nothing was fully committed: a fresh start"
    );
    assert_eq!(prepared(&calls(name))[0], 2);
    assert_eq!(committed_log(name), evs);
}

#[tokio::test]
async fn a_checkpoint_lost_while_running_stops_and_says_where_the_restart_rewinds() {
    let name = "lost-while-running";
    let evs = events(400);
    register_event_set(name, evs.clone());
    control(name).lost.lock().unwrap().insert(3);
    let store = Arc::new(MemoryStateStore::default());
    let err = run(name, store.clone(), false).await.unwrap_err();
    let RuntimeError::Connector { source, .. } = &err else {
        panic!("{err:?}");
    };
    assert!(source.is_transaction_lost(), "{err:?}");
    let text = err.to_string();
    assert!(
        text.contains("committing checkpoint 3")
            && text.contains("a restart rewinds to checkpoint 2, the last fully committed one"),
        "{text}"
    );
    take_calls(name);

    let summary = run(name, store, false).await.unwrap();
    assert_eq!(summary.rewound_from, Some(CheckpointId(3)));
    assert_eq!(prepared(&calls(name))[0], 4);
    assert_eq!(committed_log(name), evs);
}

#[tokio::test]
async fn reset_is_not_blocked_by_an_old_commit_that_keeps_failing() {
    let name = "reset-over-failing-commit";
    let evs = events(200);
    register_event_set(name, evs.clone());
    let store = Arc::new(MemoryStateStore::default());
    let faulty = Arc::new(FaultyStore {
        inner: store.clone(),
        fault: Fault::MaybeSaved {
            at: 2,
            durable: true,
        },
    });
    run(name, faulty, false).await.unwrap_err();
    control(name).failing.lock().unwrap().insert(2);
    take_calls(name);

    // Without --reset the failing commit stops the run: the checkpoint must be committed.
    let err = run(name, store.clone(), false)
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("the target refuses"), "{err}");
    assert_eq!(take_calls(name), ["commit [2]"]);

    let summary = run(name, store.clone(), true).await.unwrap();
    assert!(!summary.resumed);
    let calls = take_calls(name);
    assert_eq!(calls[..2], ["commit [2]", "abort [2]"], "{calls:?}");
    assert_eq!(prepared(&calls)[0], 3, "numbering continues: {calls:?}");
    // Started over: every row was delivered again after the reset.
    let log = committed_log(name);
    assert!(log.ends_with(&evs[1..]), "the full replay is committed");
}

#[tokio::test]
async fn a_run_that_lost_ownership_stops_before_committing_or_aborting() {
    for fault in [
        Fault::TakenOverBeforeSave { at: 3 },
        Fault::TakenOverAfterSave { at: 3 },
    ] {
        let name = format!("fenced-{fault:?}")
            .replace([' ', '{', '}', ':'], "")
            .to_lowercase();
        register_event_set(&name, events(400));
        let store = Arc::new(MemoryStateStore::default());
        let faulty = Arc::new(FaultyStore {
            inner: store.clone(),
            fault,
        });
        let err = run(&name, faulty, false).await.unwrap_err();
        assert!(
            matches!(err, RuntimeError::Fenced { .. }),
            "{fault:?}: {err:?}"
        );
        assert!(err.to_string().contains("lost ownership"), "{err}");
        let calls = calls(&name);
        assert!(calls.contains(&"prepare 3".to_string()), "{calls:?}");
        assert!(
            !calls.iter().any(|c| c.contains("[3]")),
            "{fault:?}: checkpoint 3 was neither committed nor aborted: {calls:?}"
        );
        let kept = store.load().await.unwrap().unwrap().id;
        assert_eq!(
            kept,
            CheckpointId(match fault {
                Fault::TakenOverBeforeSave { .. } => 2,
                _ => 3,
            })
        );
    }
}

#[tokio::test]
async fn the_sink_learns_the_epoch_and_the_earlier_runs_until_one_settles() {
    let name = "epochs-to-the-sink";
    register_event_set(name, events(200));
    let store = Arc::new(MemoryStateStore::default());
    // The first run stops before its first checkpoint is durable: not settled.
    let faulty = Arc::new(FaultyStore {
        inner: store.clone(),
        fault: Fault::MaybeSaved {
            at: 1,
            durable: false,
        },
    });
    run(name, faulty, false).await.unwrap_err();
    run(name, store.clone(), false).await.unwrap();
    run(name, store.clone(), false).await.unwrap();
    let recoveries = control(name).recoveries.lock().unwrap().clone();
    assert_eq!(recoveries.len(), 3);
    let (a, b, c) = (&recoveries[0], &recoveries[1], &recoveries[2]);
    assert!(a.earlier.is_empty() && a.last.is_none());
    assert!(b.epoch > a.epoch && c.epoch > b.epoch);
    assert_eq!(b.earlier, vec![a.epoch], "a never settled");
    assert_eq!(
        c.earlier,
        vec![b.epoch],
        "b settled, only the previous owner"
    );
    assert_eq!(c.next_checkpoint(), c.last.unwrap().next());
}

#[tokio::test]
async fn a_second_pipeline_on_the_same_state_directory_is_refused_until_the_first_ends() {
    let name = "two-on-one-dir";
    register_event_set(name, events(50));
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let unbounded = |extra: &str| {
        let text = format!(
            "source: {{type: values, event-set: {name}, unbounded: true}}\n\
             sink: {{type: recording, sink-id: {name}}}\n\
             pipeline: {{name: {name}, checkpoint.interval: 100ms, state.dir: '{}'{extra}}}\n",
            state.display()
        );
        PipelineDefinition::from_yaml_str(&text, "two.yaml").unwrap()
    };
    let first = Pipeline::build(&unbounded(""), &registry())
        .unwrap()
        .spawn();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while !state.join("checkpoint.json").exists() {
        assert!(tokio::time::Instant::now() < deadline, "no checkpoint");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let err = Pipeline::build(&unbounded(""), &registry())
        .unwrap()
        .run(std::future::pending())
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.contains(&format!("in use by pid {}", std::process::id()))
            && err.contains(&state.display().to_string()),
        "{err}"
    );
    first.stop();
    first.join().await.unwrap();

    // The first ended and let go: the second resumes from its checkpoint.
    let second = Pipeline::build(&unbounded(""), &registry())
        .unwrap()
        .spawn();
    tokio::time::sleep(Duration::from_millis(300)).await;
    second.stop();
    assert!(second.join().await.unwrap().resumed);
    let cp = FileStateStore::new(&state).load().await.unwrap().unwrap();
    assert!(cp.owner > OwnerEpoch::LEGACY && cp.committed.is_some());
}

#[tokio::test]
async fn a_file_state_taken_over_mid_run_stops_the_run_without_aborting() {
    let name = "file-taken-over";
    register_event_set(name, events(50));
    let dir = tempfile::tempdir().unwrap();
    let text = format!(
        "source: {{type: values, event-set: {name}, unbounded: true}}\n\
         sink: {{type: recording, sink-id: {name}}}\n\
         pipeline: {{name: {name}, checkpoint.interval: 100ms, state.dir: '{}'}}\n",
        dir.path().display()
    );
    let def = PipelineDefinition::from_yaml_str(&text, "t.yaml").unwrap();
    let handle = Pipeline::build(&def, &registry()).unwrap().spawn();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while !dir.path().join("checkpoint.json").exists() {
        assert!(tokio::time::Instant::now() < deadline, "no checkpoint");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // Another instance took over (its file system did not share the lock): a new owner
    // record with a larger epoch.
    let owner = dir.path().join("owner.json");
    let mut record: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&owner).unwrap()).unwrap();
    record["epoch"] = (record["epoch"].as_u64().unwrap() + 1).into();
    record["holder"]["host"] = "elsewhere".into();
    // Replaced atomically, as the other instance would: the run never reads half a file.
    let temporary = dir.path().join("owner.json.new");
    std::fs::write(&temporary, serde_json::to_vec(&record).unwrap()).unwrap();
    std::fs::rename(&temporary, &owner).unwrap();

    let err = tokio::time::timeout(Duration::from_secs(20), handle.join())
        .await
        .expect("the fenced run stops by itself")
        .unwrap_err();
    assert!(matches!(err, RuntimeError::Fenced { .. }), "{err:?}");
    assert!(err.to_string().contains("elsewhere"), "{err}");
    let calls = calls(name);
    assert!(
        !calls.iter().any(|c| c.starts_with("abort")),
        "nothing aborted: {calls:?}"
    );
    // The last prepared checkpoint was not committed.
    let last = *prepared(&calls).last().unwrap();
    assert!(
        !calls.contains(&format!("commit [{last}]")),
        "checkpoint {last} not committed: {calls:?}"
    );
}

/// Quick restarts for the tests (Flink's exponential delay with a 20 ms start).
const FAST_RESTARTS: &str = ", restart-strategy.exponential-delay.initial-backoff: 20ms, \
     restart-strategy.exponential-delay.max-backoff: 100ms";

/// By default a run that fails with a transient error (the connector's retries ran out)
/// is followed by another from the last checkpoint, in the same process: the commit that
/// failed is finished by the restart's recovery, and nothing is lost or doubled.
#[tokio::test]
async fn a_transient_failure_restarts_from_the_last_checkpoint() {
    let name = "restart-transient";
    let evs = events(300);
    register_event_set(name, evs.clone());
    *control(name).transient_commit_failures.lock().unwrap() = 3;
    let store = Arc::new(MemoryStateStore::default());
    let summary = run_with(name, store, false, FAST_RESTARTS).await.unwrap();
    assert_eq!(summary.restarts, 3, "{summary:?}");
    assert!(summary.resumed, "the last run resumed from a checkpoint");
    assert_eq!(committed_log(name), evs);
    // The first two restarts failed again finishing the saved checkpoint's commit (before
    // their recovery); the third recovered with the failed runs listed as earlier ones.
    let recoveries = control(name).recoveries.lock().unwrap().clone();
    assert_eq!(recoveries.len(), 2);
    assert_eq!(recoveries[1].earlier.len(), 3, "{recoveries:?}");
}

/// A target that lost a checkpoint's transactions while running: the restart rewinds to
/// the last fully committed checkpoint by itself.
#[tokio::test]
async fn a_lost_checkpoint_restarts_and_rewinds_by_itself() {
    let name = "restart-lost";
    let evs = events(400);
    register_event_set(name, evs.clone());
    control(name).lost.lock().unwrap().insert(3);
    let store = Arc::new(MemoryStateStore::default());
    let summary = run_with(name, store, false, FAST_RESTARTS).await.unwrap();
    assert_eq!(summary.restarts, 1);
    assert_eq!(summary.rewound_from, Some(CheckpointId(3)));
    assert_eq!(committed_log(name), evs);
}

/// The strategy bounds the restarts; a permanent error never restarts.
#[tokio::test]
async fn restarts_are_bounded_and_permanent_errors_stop_at_once() {
    let name = "restart-bounded";
    register_event_set(name, events(300));
    *control(name).transient_commit_failures.lock().unwrap() = 100;
    let store = Arc::new(MemoryStateStore::default());
    let err = run_with(
        name,
        store,
        false,
        ", restart-strategy.type: fixed-delay, restart-strategy.fixed-delay.attempts: 2, \
         restart-strategy.fixed-delay.delay: 10ms",
    )
    .await
    .unwrap_err();
    assert!(
        err.to_string().contains("connection refused (injected)"),
        "{err}"
    );
    // The first run's commit and one by each of the two restarts.
    let commits = calls(name)
        .iter()
        .filter(|c| c.starts_with("commit"))
        .count();
    assert_eq!(commits, 3, "{:?}", calls(name));

    let name = "restart-permanent";
    register_event_set(name, events(300));
    control(name).failing.lock().unwrap().insert(2);
    let store = Arc::new(MemoryStateStore::default());
    let err = run_with(name, store, false, FAST_RESTARTS)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("the target refuses"), "{err}");
    assert_eq!(control(name).recoveries.lock().unwrap().len(), 1);
}

/// A stop asked for while the pipeline waits to restart ends it at once, with the error.
#[tokio::test]
async fn a_stop_while_waiting_to_restart_ends_the_pipeline() {
    let name = "restart-stopped";
    register_event_set(name, events(300));
    *control(name).transient_commit_failures.lock().unwrap() = 100;
    let handle = Pipeline::build(
        &definition(
            name,
            ", restart-strategy.exponential-delay.initial-backoff: 1h, \
             restart-strategy.exponential-delay.max-backoff: 1h",
        ),
        &registry(),
    )
    .unwrap()
    .with_state_store(Arc::new(MemoryStateStore::default()))
    .spawn();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while handle.metrics().restarts() == 0 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "no restart was planned"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    handle.stop();
    let err = tokio::time::timeout(Duration::from_secs(10), handle.join())
        .await
        .expect("the stop did not end the wait")
        .unwrap_err();
    assert!(
        err.to_string().contains("connection refused (injected)"),
        "{err}"
    );
}
