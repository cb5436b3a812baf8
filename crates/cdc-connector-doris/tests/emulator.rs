//! The Doris sink end to end: values source -> runtime -> Doris sink -> the Stream Load
//! emulator of cdc-testkit.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use cdc_api::{
    CheckpointId, Column, ConnectorRegistry, DataChangeEvent, DataType, DataTypeKind, Date,
    Decimal, Event, OwnerEpoch, Schema, SchemaChangeEvent, TableId, Timestamp, Value,
};
use cdc_connector_doris::DorisSinkFactory;
use cdc_runtime::{
    Checkpoint, MemoryStateStore, Ownership, Pipeline, PipelineDefinition, RunSummary,
    RuntimeError, StateStore,
};
use cdc_testkit::{
    DorisEmulator, DorisEmulatorOptions, DorisFault, TableModel, TxnState, ValuesSourceFactory,
    register_event_set,
};

fn registry() -> ConnectorRegistry {
    let mut r = ConnectorRegistry::new();
    r.register_source(ValuesSourceFactory)
        .register_sink(DorisSinkFactory);
    r
}

fn definition(name: &str, event_set: &str, fe: &str, sink: &[(&str, &str)]) -> PipelineDefinition {
    definition_in(name, event_set, fe, sink, &[])
}

/// `pipeline` entries override the pipeline block (e.g. `local-time-zone`); those named
/// `source.x` set the source's option `x` instead.
fn definition_in(
    name: &str,
    event_set: &str,
    fe: &str,
    sink: &[(&str, &str)],
    pipeline: &[(&str, &str)],
) -> PipelineDefinition {
    let mut sink_block = serde_json::json!({
        "type": "doris",
        "fenodes": fe,
        "username": "root",
        "password": "",
        "table.create.properties.replication_num": "1",
        "sink.check-interval": "200ms",
    });
    for (k, v) in sink {
        sink_block[*k] = serde_json::Value::String((*v).to_string());
    }
    let mut pipeline_block = serde_json::json!({
        "name": name,
        "schema.change.behavior": "evolve",
        "checkpoint.interval": "100ms",
        "local-time-zone": "UTC",
        "state.dir": "none",
    });
    let mut source_block = serde_json::json!({"type": "values", "event-set": event_set, "batch-size": "3", "batch-interval": "20ms"});
    for (k, v) in pipeline {
        let value = serde_json::Value::String((*v).to_string());
        match k.strip_prefix("source.") {
            Some(option) => source_block[option] = value,
            None => pipeline_block[*k] = value,
        }
    }
    let yaml = serde_json::json!({
        "source": source_block,
        "sink": sink_block,
        "pipeline": pipeline_block,
    })
    .to_string();
    PipelineDefinition::from_yaml_str(&yaml, name).unwrap()
}

async fn run(
    name: &str,
    events: Vec<Event>,
    doris: &DorisEmulator,
    sink: &[(&str, &str)],
) -> Result<RunSummary, RuntimeError> {
    run_in(name, events, doris, sink, &[]).await
}

/// [`run`] with `pipeline` options (see [`definition_in`]).
async fn run_in(
    name: &str,
    events: Vec<Event>,
    doris: &DorisEmulator,
    sink: &[(&str, &str)],
    pipeline: &[(&str, &str)],
) -> Result<RunSummary, RuntimeError> {
    register_event_set(name, events);
    let pipeline = Pipeline::build(
        &definition_in(name, name, &doris.fe_address(), sink, pipeline),
        &registry(),
    )?;
    tokio::time::timeout(
        Duration::from_secs(60),
        pipeline.run(std::future::pending()),
    )
    .await
    .expect("pipeline timed out")
}

fn orders_id() -> TableId {
    TableId::new("shop", "orders")
}

fn logs_id() -> TableId {
    TableId::new("shop", "logs")
}

fn create_tables() -> Vec<Event> {
    let orders = Schema::new(vec![
        Column::new("id", DataType::new(DataTypeKind::BigInt).not_null()),
        Column::new("name", DataType::new(DataTypeKind::VarChar { length: 20 })),
        Column::new(
            "amount",
            DataType::new(DataTypeKind::Decimal {
                precision: 10,
                scale: 2,
            }),
        ),
        Column::new(
            "ts",
            DataType::new(DataTypeKind::Timestamp { precision: 6 }),
        ),
    ])
    .with_primary_key(["id"]);
    let logs = Schema::new(vec![
        Column::new("msg", DataType::new(DataTypeKind::String)),
        Column::new("n", DataType::new(DataTypeKind::Int)),
    ]);
    vec![
        SchemaChangeEvent::CreateTable {
            table_id: orders_id(),
            schema: orders,
        }
        .into(),
        SchemaChangeEvent::CreateTable {
            table_id: logs_id(),
            schema: logs,
        }
        .into(),
    ]
}

fn order(id: i64, name: &str, amount: &str) -> Vec<Value> {
    vec![
        Value::BigInt(id),
        Value::String(name.into()),
        Value::Decimal(Decimal::parse(amount).unwrap()),
        Value::Timestamp(Timestamp::new(Date::new(2020, 7, 17), 18, 0, 22, 123_456)),
    ]
}

fn log(msg: &str, n: i32) -> Vec<Value> {
    vec![Value::String(msg.into()), Value::Int(n)]
}

/// Creates, 12 orders with updates and deletes, and 12 log lines.
fn workload() -> Vec<Event> {
    let mut events = create_tables();
    for i in 1..=12 {
        events.push(DataChangeEvent::insert(orders_id(), order(i, &format!("o{i}"), "1.5")).into());
        events.push(DataChangeEvent::insert(logs_id(), log(&format!("line {i}"), i as i32)).into());
    }
    events.push(
        DataChangeEvent::update(orders_id(), order(2, "o2", "1.5"), order(2, "two", "22.25"))
            .into(),
    );
    events.push(DataChangeEvent::delete(orders_id(), order(3, "o3", "1.5")).into());
    // A key change: the old row must go.
    events.push(
        DataChangeEvent::update(orders_id(), order(4, "o4", "1.5"), order(40, "o4", "1.5")).into(),
    );
    events
}

fn expected_orders() -> Vec<Vec<Option<String>>> {
    let mut rows: Vec<Vec<Option<String>>> = (1..=12)
        .filter(|i| *i != 3 && *i != 4)
        .map(|i| {
            (
                i,
                if i == 2 {
                    "two".to_string()
                } else {
                    format!("o{i}")
                },
            )
        })
        .chain(std::iter::once((40, "o4".to_string())))
        .map(|(i, name)| {
            vec![
                Some(i.to_string()),
                Some(name),
                Some(if i == 2 {
                    "22.25".into()
                } else {
                    "1.50".into()
                }),
                Some("2020-07-17 18:00:22.123456".into()),
            ]
        })
        .collect();
    rows.sort();
    rows
}

fn expected_logs() -> Vec<Vec<Option<String>>> {
    let mut rows: Vec<Vec<Option<String>>> = (1..=12)
        .map(|i| vec![Some(i.to_string()), Some(format!("line {i}"))])
        .collect();
    rows.sort();
    rows
}

fn assert_target(doris: &DorisEmulator) {
    assert_eq!(
        doris.table_model("shop", "orders"),
        Some(TableModel::Unique)
    );
    assert_eq!(
        doris.table_model("shop", "logs"),
        Some(TableModel::Duplicate)
    );
    assert_eq!(
        doris.table_rows("shop", "orders").unwrap(),
        expected_orders()
    );
    assert_eq!(doris.table_rows("shop", "logs").unwrap(), expected_logs());
}

#[tokio::test]
async fn at_least_once_leaves_unique_and_duplicate_tables_right() {
    let doris = DorisEmulator::start().await.unwrap();
    run(
        "alo",
        workload(),
        &doris,
        &[
            ("sink.buffer-flush.max-rows", "5"),
            ("sink.enable-2pc", "false"),
        ],
    )
    .await
    .unwrap();
    assert_target(&doris);
    let cols = doris.table_columns("shop", "orders").unwrap();
    assert_eq!(cols[1].type_text.to_ascii_uppercase(), "VARCHAR(80)");
    assert!(doris.load_log().iter().all(|l| !l.two_phase_commit));
}

#[tokio::test]
async fn two_phase_commit_leaves_unique_and_duplicate_tables_right() {
    let doris = DorisEmulator::start().await.unwrap();
    run(
        "tpc",
        workload(),
        &doris,
        &[("sink.enable-2pc", "true"), ("sink.label-prefix", "t")],
    )
    .await
    .unwrap();
    assert_target(&doris);
    let loads = doris.load_log();
    assert!(!loads.is_empty() && loads.iter().all(|l| l.two_phase_commit));
    assert!(
        loads.iter().all(|l| l.label.starts_with("t_tpc_shop_")),
        "{loads:?}"
    );
}

#[tokio::test]
async fn tiny_max_bytes_precommits_extra_parts_in_two_phase_mode() {
    let doris = DorisEmulator::start().await.unwrap();
    run(
        "parts",
        workload(),
        &doris,
        &[
            ("sink.enable-2pc", "true"),
            ("sink.buffer-flush.max-bytes", "100"),
        ],
    )
    .await
    .unwrap();
    assert_target(&doris);
    assert!(doris.load_log().iter().any(|l| l.label.ends_with("_1")));
}

/// A state store that can make the pipeline hang (like a crash) at one checkpoint, before
/// or after saving it.
#[derive(Default)]
struct CrashingStore {
    inner: MemoryStateStore,
    crash_at: AtomicU64,
    after_save: AtomicBool,
    reached: tokio::sync::Notify,
}

#[async_trait]
impl StateStore for CrashingStore {
    async fn claim(&self) -> Result<Ownership, RuntimeError> {
        self.inner.claim().await
    }

    async fn verify(&self, epoch: OwnerEpoch) -> Result<(), RuntimeError> {
        self.inner.verify(epoch).await
    }

    async fn settle(&self, epoch: OwnerEpoch) -> Result<(), RuntimeError> {
        self.inner.settle(epoch).await
    }

    async fn load(&self) -> Result<Option<Checkpoint>, RuntimeError> {
        self.inner.load().await
    }

    async fn save(&self, checkpoint: &Checkpoint) -> Result<(), RuntimeError> {
        if checkpoint.id.0 == self.crash_at.load(Ordering::SeqCst) {
            if self.after_save.load(Ordering::SeqCst) {
                self.inner.save(checkpoint).await?;
            }
            self.reached.notify_one();
            std::future::pending::<()>().await;
        }
        self.inner.save(checkpoint).await
    }

    fn describe(&self) -> String {
        "crashing test store".into()
    }
}

async fn crash_and_resume(after_save: bool, name: &str, auto_redirect: &str) {
    let doris = DorisEmulator::start().await.unwrap();
    register_event_set(name, workload());
    let store = Arc::new(CrashingStore::default());
    store.crash_at.store(2, Ordering::SeqCst);
    store.after_save.store(after_save, Ordering::SeqCst);
    let def = definition(
        name,
        name,
        &doris.fe_address(),
        &[
            ("sink.enable-2pc", "true"),
            ("auto-redirect", auto_redirect),
        ],
    );
    let pipeline = Pipeline::build(&def, &registry())
        .unwrap()
        .with_state_store(store.clone());
    let task = tokio::spawn(pipeline.run(std::future::pending()));
    tokio::time::timeout(Duration::from_secs(30), store.reached.notified())
        .await
        .expect("checkpoint 2 was never reached");
    // The crash: the process dies with checkpoint 2 prepared but not committed.
    task.abort();
    let _ = task.await;
    assert!(
        doris
            .transactions()
            .iter()
            .any(|t| t.state == cdc_testkit::TxnState::PreCommitted),
        "nothing was left pre-committed: {:?}",
        doris.transactions()
    );
    store.crash_at.store(0, Ordering::SeqCst);
    let pipeline = Pipeline::build(&def, &registry())
        .unwrap()
        .with_state_store(store.clone());
    let summary = tokio::time::timeout(
        Duration::from_secs(60),
        pipeline.run(std::future::pending()),
    )
    .await
    .unwrap()
    .unwrap();
    assert!(summary.resumed);
    assert_target(&doris);
    assert!(
        doris
            .transactions()
            .iter()
            .all(|t| t.state != cdc_testkit::TxnState::PreCommitted),
        "{:?}",
        doris.transactions()
    );
    assert_route(&doris, name, auto_redirect == "true");
}

/// A checkpoint is recorded, the process dies before committing it and stays down longer
/// than Doris's pre-commit timeout, so Doris aborts the pre-committed loads ("timeout by
/// txn manager"). The restart's commit finds them aborted: instead of stopping on every
/// restart, it rewinds to the last fully committed checkpoint and replays from there.
#[tokio::test]
async fn commits_refused_as_aborted_after_a_long_downtime_rewind() {
    let doris = DorisEmulator::start_with(DorisEmulatorOptions {
        precommit_timeout: Duration::from_secs(1),
        ..DorisEmulatorOptions::default()
    })
    .await
    .unwrap();
    let name = "downtime";
    register_event_set(name, workload());
    let store = Arc::new(CrashingStore::default());
    store.crash_at.store(2, Ordering::SeqCst);
    store.after_save.store(true, Ordering::SeqCst);
    // The default delivery: two-phase commit.
    let def = definition(name, name, &doris.fe_address(), &[]);
    let pipeline = Pipeline::build(&def, &registry())
        .unwrap()
        .with_state_store(store.clone());
    let task = tokio::spawn(pipeline.run(std::future::pending()));
    tokio::time::timeout(Duration::from_secs(30), store.reached.notified())
        .await
        .expect("checkpoint 2 was never reached");
    task.abort();
    let _ = task.await;
    // The downtime: longer than the pre-commit timeout.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    store.crash_at.store(0, Ordering::SeqCst);
    let pipeline = Pipeline::build(&def, &registry())
        .unwrap()
        .with_state_store(store.clone());
    let summary = tokio::time::timeout(
        Duration::from_secs(60),
        pipeline.run(std::future::pending()),
    )
    .await
    .unwrap()
    .unwrap();
    assert_eq!(summary.rewound_from, Some(CheckpointId(2)), "{summary:?}");
    let txns = doris.transactions();
    assert!(
        txns.iter().any(|t| t.state == TxnState::Aborted
            && t.abort_reason.as_deref() == Some("timeout by txn manager")),
        "nothing expired: {txns:?}"
    );
    assert_target(&doris);
    assert!(txns.iter().all(|t| t.state != TxnState::PreCommitted));
}

/// Loads and 2PC calls went where `auto-redirect` says: through the FE's redirect, or
/// straight to the BEs the FE listed (none through the FE).
fn assert_route(doris: &DorisEmulator, name: &str, auto_redirect: bool) {
    let at_bes: u64 = (0..doris.be_addresses().len())
        .map(|i| doris.be_stream_load_requests(i))
        .sum();
    assert_eq!(at_bes, doris.load_log().len() as u64, "{name}");
    if auto_redirect {
        assert_eq!(doris.fe_backend_list_requests(), 0, "{name}");
        assert!(doris.fe_stream_load_requests() > 0, "{name}");
    } else {
        assert!(doris.fe_backend_list_requests() > 0, "{name}");
        assert_eq!(doris.fe_stream_load_requests(), 0, "{name}");
        assert_eq!(doris.fe_two_phase_requests(), 0, "{name}");
    }
}

#[tokio::test]
async fn crash_after_prepare_neither_loses_nor_doubles_rows() {
    crash_and_resume(false, "crash-before-save", "false").await;
    crash_and_resume(false, "crash-before-save-fe", "true").await;
}

#[tokio::test]
async fn crash_after_saving_the_checkpoint_commits_on_restart() {
    crash_and_resume(true, "crash-after-save", "false").await;
    crash_and_resume(true, "crash-after-save-fe", "true").await;
}

async fn survives_faults(name: &str, two_phase: bool) {
    let doris = DorisEmulator::start().await.unwrap();
    doris.inject(DorisFault::ServerError {
        status: 503,
        count: 2,
    });
    doris.inject(DorisFault::ResetConnection { count: 2 });
    doris.inject(DorisFault::PublishTimeout { count: 1 });
    doris.inject(DorisFault::TooManyVersions { count: 1 });
    let mut options = vec![
        ("sink.buffer-flush.max-rows", "4"),
        ("sink.max-retries", "5"),
    ];
    options.push(("sink.enable-2pc", if two_phase { "true" } else { "false" }));
    run(name, workload(), &doris, &options).await.unwrap();
    assert_target(&doris);
}

#[tokio::test]
async fn injected_faults_are_survived_at_least_once() {
    survives_faults("faults-alo", false).await;
}

#[tokio::test]
async fn injected_faults_are_survived_with_two_phase_commit() {
    survives_faults("faults-2pc", true).await;
}

#[tokio::test]
async fn a_wrong_password_stops_with_the_cause() {
    let doris = DorisEmulator::start().await.unwrap();
    let err = run("badpw", workload(), &doris, &[("password", "nope")])
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.to_lowercase().contains("unauthorized") || err.to_lowercase().contains("access denied"),
        "{err}"
    );
}

/// At-least-once batch mode while the source reads a snapshot: snapshot rows are
/// pre-committed and become visible with their checkpoint (a crash mid-snapshot could
/// otherwise leave rows the source deletes before re-reading the range); once that
/// checkpoint is committed after the snapshot ended, loads are plain and visible at once.
#[tokio::test]
async fn at_least_once_prepares_snapshot_rows_and_streams_visibly_after() {
    let doris = DorisEmulator::start().await.unwrap();
    let name = "alo-snapshot";
    let mut events = workload();
    let snapshot_events = 2 + 24; // the CreateTables and the inserts
    for i in 13..=40 {
        events.push(DataChangeEvent::insert(logs_id(), log(&format!("line {i}"), i)).into());
    }
    register_event_set(name, events);
    let def = definition_in(
        name,
        name,
        &doris.fe_address(),
        &[("sink.enable.batch-mode", "true")],
        &[("source.snapshot-events", &snapshot_events.to_string())],
    );
    let summary = tokio::time::timeout(
        Duration::from_secs(60),
        Pipeline::build(&def, &registry())
            .unwrap()
            .run(std::future::pending()),
    )
    .await
    .unwrap()
    .unwrap();
    assert!(summary.checkpoints >= 2, "{summary:?}");
    assert_eq!(
        doris.table_rows("shop", "orders").unwrap(),
        expected_orders()
    );
    let mut logs: Vec<Vec<Option<String>>> = (1..=40)
        .map(|i| vec![Some(i.to_string()), Some(format!("line {i}"))])
        .collect();
    logs.sort();
    assert_eq!(doris.table_rows("shop", "logs").unwrap(), logs);
    let loads = doris.load_log();
    let first_plain = loads
        .iter()
        .position(|l| !l.two_phase_commit)
        .expect("no plain load after the snapshot");
    assert!(
        first_plain > 0,
        "the snapshot rows were not pre-committed: {loads:?}"
    );
    assert!(
        loads[first_plain..].iter().all(|l| !l.two_phase_commit),
        "a pre-committed load after the plain ones: {loads:?}"
    );
    let txns = doris.transactions();
    assert!(
        txns.iter().all(|t| t.state != TxnState::PreCommitted),
        "{txns:?}"
    );
}

/// A checkpoint whose prepare fails (one table's load gives up) aborts the parts it had
/// already pre-committed for other tables: nothing is left waiting for Doris's timeout.
#[tokio::test]
async fn a_failed_prepare_aborts_what_it_precommitted() {
    let doris = DorisEmulator::start().await.unwrap();
    // One of the two tables' loads fails for good; the other one is pre-committed.
    doris.inject(DorisFault::ServerError {
        status: 503,
        count: 1,
    });
    let err = run_in(
        "failed-prepare",
        workload(),
        &doris,
        // Two loads at once (the default queue size): one gets the 503.
        &[("sink.max-retries", "0")],
        // The run's failure is the subject, not a restart that would succeed.
        &[("restart-strategy.type", "none")],
    )
    .await
    .unwrap_err()
    .to_string();
    assert!(err.contains("503"), "{err}");
    let txns = doris.transactions();
    assert!(
        txns.iter().all(|t| t.state != TxnState::PreCommitted),
        "{txns:?}"
    );
    assert!(
        txns.iter().any(
            |t| t.state == TxnState::Aborted && t.abort_reason.as_deref() == Some("User Abort")
        ),
        "the pre-committed part was not aborted: {txns:?}"
    );
    assert!(
        doris
            .table_rows("shop", "orders")
            .unwrap_or_default()
            .is_empty()
    );
}

#[tokio::test]
async fn a_rejected_row_stops_naming_table_and_row() {
    let doris = DorisEmulator::start().await.unwrap();
    let t = TableId::new("shop", "strict");
    let schema = Schema::new(vec![
        Column::new("id", DataType::new(DataTypeKind::Int).not_null()),
        Column::new("v", DataType::new(DataTypeKind::Int).not_null()),
    ])
    .with_primary_key(["id"]);
    let events = vec![
        SchemaChangeEvent::CreateTable {
            table_id: t.clone(),
            schema,
        }
        .into(),
        DataChangeEvent::insert(t.clone(), vec![Value::Int(1), Value::Int(1)]).into(),
        DataChangeEvent::insert(t, vec![Value::Int(2), Value::Null]).into(),
    ];
    let err = run("rejected", events, &doris, &[])
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("shop.strict"), "{err}");
    assert!(err.contains("rows"), "{err}");
    assert!(err.contains("first rejected row"), "{err}");
}

#[tokio::test]
async fn schema_changes_reach_doris() {
    let doris = DorisEmulator::start().await.unwrap();
    let t = orders_id();
    let mut events = create_tables();
    events.push(DataChangeEvent::insert(t.clone(), order(1, "a", "1")).into());
    events.push(
        SchemaChangeEvent::AddColumn {
            table_id: t.clone(),
            columns: vec![(
                Column::new("qty", DataType::new(DataTypeKind::Int)).with_comment("how many"),
                cdc_api::ColumnPosition::After("name".into()),
            )],
        }
        .into(),
    );
    let mut with_qty = order(2, "b", "2");
    with_qty.insert(2, Value::Int(7));
    events.push(DataChangeEvent::insert(t.clone(), with_qty).into());
    events.push(
        SchemaChangeEvent::RenameColumn {
            table_id: t.clone(),
            renames: vec![("name".into(), "title".into())],
        }
        .into(),
    );
    events.push(
        SchemaChangeEvent::AlterColumnType {
            table_id: t.clone(),
            types: vec![("qty".into(), DataType::new(DataTypeKind::BigInt))],
            comments: std::collections::BTreeMap::new(),
        }
        .into(),
    );
    events.push(
        SchemaChangeEvent::DropColumn {
            table_id: t.clone(),
            columns: vec!["amount".into()],
        }
        .into(),
    );
    events.push(
        SchemaChangeEvent::AlterTableComment {
            table_id: t.clone(),
            comment: "orders table".into(),
        }
        .into(),
    );
    events.push(
        DataChangeEvent::insert(
            t.clone(),
            vec![
                Value::BigInt(3),
                Value::String("c".into()),
                Value::BigInt(9_000_000_000),
                Value::Timestamp(Timestamp::new(Date::new(2021, 1, 2), 3, 4, 5, 0)),
            ],
        )
        .into(),
    );
    events.push(
        SchemaChangeEvent::TruncateTable {
            table_id: logs_id(),
        }
        .into(),
    );
    events.push(DataChangeEvent::insert(logs_id(), log("after truncate", 1)).into());
    events.push(
        SchemaChangeEvent::DropTable {
            table_id: TableId::new("shop", "gone"),
        }
        .into(),
    );
    // A table created and dropped.
    let mut with_drop = vec![
        SchemaChangeEvent::CreateTable {
            table_id: TableId::new("shop", "gone"),
            schema: Schema::new(vec![Column::new("x", DataType::new(DataTypeKind::Int))]),
        }
        .into(),
    ];
    with_drop.extend(events);
    let mut events = with_drop;
    events.insert(
        3,
        DataChangeEvent::insert(logs_id(), log("before truncate", 0)).into(),
    );

    for (name, opts) in [
        ("ddl-alo", vec![]),
        ("ddl-2pc", vec![("sink.enable-2pc", "true")]),
    ] {
        doris.execute("DROP DATABASE IF EXISTS shop").ok();
        run(name, events.clone(), &doris, &opts).await.unwrap();
        let cols: Vec<(String, String)> = doris
            .table_columns("shop", "orders")
            .unwrap()
            .into_iter()
            .map(|c| (c.name, c.type_text.to_ascii_uppercase()))
            .collect();
        assert_eq!(
            cols,
            [
                ("id".to_string(), "BIGINT".to_string()),
                ("title".into(), "VARCHAR(80)".into()),
                ("qty".into(), "BIGINT".into()),
                ("ts".into(), "DATETIME(6)".into()),
            ],
            "{name}"
        );
        // Also with 2PC, where rows 1 and 2 were pre-committed before the rename and
        // committed after it: Doris binds a load's columns when it writes them.
        let rows = doris.table_rows("shop", "orders").unwrap();
        assert_eq!(
            rows,
            vec![
                vec![
                    Some("1".into()),
                    Some("a".into()),
                    None,
                    Some("2020-07-17 18:00:22.123456".into())
                ],
                vec![
                    Some("2".into()),
                    Some("b".into()),
                    Some("7".into()),
                    Some("2020-07-17 18:00:22.123456".into())
                ],
                vec![
                    Some("3".into()),
                    Some("c".into()),
                    Some("9000000000".into()),
                    Some("2021-01-02 03:04:05.000000".into())
                ],
            ],
            "{name}"
        );
        assert_eq!(
            doris.table_rows("shop", "logs").unwrap(),
            vec![vec![Some("1".into()), Some("after truncate".into())]],
            "{name}"
        );
        assert!(doris.table_rows("shop", "gone").is_none(), "{name}");
    }
}

/// Polls `cond` every 10 ms until it holds, failing after `secs` seconds.
async fn wait_until(secs: u64, what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
    while !cond() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test]
async fn loads_go_straight_to_benodes() {
    for (name, two_phase) in [("be-alo", "false"), ("be-2pc", "true")] {
        let doris = DorisEmulator::start().await.unwrap();
        run(
            name,
            workload(),
            &doris,
            &[
                ("benodes", &doris.be_address()),
                ("sink.enable-2pc", two_phase),
            ],
        )
        .await
        .unwrap();
        assert_target(&doris);
        // No load or 2PC call went through the FE (DDL still does), and the FE was not
        // asked for its BEs.
        assert_eq!(doris.fe_stream_load_requests(), 0, "{name}");
        assert_eq!(doris.fe_two_phase_requests(), 0, "{name}");
        assert_eq!(doris.fe_backend_list_requests(), 0, "{name}");
        assert!(!doris.load_log().is_empty(), "{name}");
    }
}

/// With the default options (no benodes, `auto-redirect: false`, Flink CDC's pipeline
/// default) the sink asks the FE for its BEs and loads straight into them, round robin:
/// the FE sees no load and no 2PC call, both BEs get requests.
#[tokio::test]
async fn default_options_load_straight_into_the_bes_the_fe_lists() {
    for (name, two_phase) in [("disc-alo", "false"), ("disc-2pc", "true")] {
        let doris = DorisEmulator::start_with(DorisEmulatorOptions {
            backends: 2,
            ..DorisEmulatorOptions::default()
        })
        .await
        .unwrap();
        run(
            name,
            workload(),
            &doris,
            &[
                ("sink.enable-2pc", two_phase),
                ("sink.buffer-flush.max-rows", "4"),
            ],
        )
        .await
        .unwrap();
        assert_target(&doris);
        assert_route(&doris, name, false);
        for be in 0..2 {
            let requests = doris.be_stream_load_requests(be) + doris.be_two_phase_requests(be);
            assert!(requests > 0, "{name}: BE {be} got no request");
        }
        if two_phase == "true" {
            let commits: u64 = (0..2).map(|be| doris.be_two_phase_requests(be)).sum();
            assert!(commits > 0, "{name}: no 2PC call reached a BE");
        }
    }
}

/// `auto-redirect: true` keeps the FE path: every load reaches the FE and follows its 307;
/// the FE is never asked for its BEs.
#[tokio::test]
async fn auto_redirect_sends_loads_through_the_fe() {
    for (name, two_phase) in [("redir-alo", "false"), ("redir-2pc", "true")] {
        let doris = DorisEmulator::start().await.unwrap();
        run(
            name,
            workload(),
            &doris,
            &[("sink.enable-2pc", two_phase), ("auto-redirect", "true")],
        )
        .await
        .unwrap();
        assert_target(&doris);
        assert_route(&doris, name, true);
        assert_eq!(
            doris.fe_stream_load_requests(),
            doris.load_log().len() as u64,
            "{name}: every load went through the FE"
        );
        if two_phase == "true" {
            assert!(doris.fe_two_phase_requests() > 0, "{name}");
        }
    }
}

/// Creates the two tables, then `n` orders and `n` log lines, one after another.
fn long_workload(n: i64) -> Vec<Event> {
    let mut events = create_tables();
    for i in 1..=n {
        events.push(DataChangeEvent::insert(orders_id(), order(i, &format!("o{i}"), "1.5")).into());
        events.push(DataChangeEvent::insert(logs_id(), log(&format!("line {i}"), i as i32)).into());
    }
    events
}

/// One of two BEs goes down in the middle of a run (open connections dropped, new ones
/// refused): loads, retries with the same label and 2PC calls continue on the other BE;
/// the DUPLICATE KEY table shows that no row is lost or loaded twice.
#[tokio::test]
async fn one_of_two_bes_going_down_moves_loads_to_the_other() {
    for (name, two_phase) in [("onebe-alo", "false"), ("onebe-2pc", "true")] {
        let doris = Arc::new(
            DorisEmulator::start_with(DorisEmulatorOptions {
                backends: 2,
                ..DorisEmulatorOptions::default()
            })
            .await
            .unwrap(),
        );
        let n = 150;
        register_event_set(name, long_workload(n));
        let def = definition(
            name,
            name,
            &doris.fe_address(),
            &[
                ("sink.enable-2pc", two_phase),
                ("sink.buffer-flush.max-rows", "4"),
                ("sink.max-retries", "10"),
            ],
        );
        let pipeline = Pipeline::build(&def, &registry()).unwrap();
        let task = tokio::spawn(pipeline.run(std::future::pending()));
        wait_until(30, "loads on both BEs", || {
            doris.be_stream_load_requests(0) > 0 && doris.be_stream_load_requests(1) > 0
        })
        .await;
        doris.inject(DorisFault::BackendDown {
            index: 1,
            down: true,
        });
        let (on_0, on_1) = (
            doris.be_stream_load_requests(0),
            doris.be_stream_load_requests(1),
        );
        assert!(!task.is_finished(), "{name}: the run ended too early");
        tokio::time::timeout(Duration::from_secs(60), task)
            .await
            .expect("pipeline timed out")
            .unwrap()
            .unwrap();
        assert!(
            doris.be_stream_load_requests(0) > on_0,
            "{name}: no load reached the remaining BE"
        );
        assert_eq!(doris.be_stream_load_requests(1), on_1, "{name}");
        let mut orders: Vec<Vec<Option<String>>> = (1..=n)
            .map(|i| {
                vec![
                    Some(i.to_string()),
                    Some(format!("o{i}")),
                    Some("1.50".into()),
                    Some("2020-07-17 18:00:22.123456".into()),
                ]
            })
            .collect();
        orders.sort();
        let mut logs: Vec<Vec<Option<String>>> = (1..=n)
            .map(|i| vec![Some(i.to_string()), Some(format!("line {i}"))])
            .collect();
        logs.sort();
        assert_eq!(
            doris.table_rows("shop", "orders").unwrap(),
            orders,
            "{name}"
        );
        assert_eq!(doris.table_rows("shop", "logs").unwrap(), logs, "{name}");
        assert!(
            doris
                .transactions()
                .iter()
                .all(|t| t.state != TxnState::PreCommitted),
            "{name}: {:?}",
            doris.transactions()
        );
        assert_route(&doris, name, false);
    }
}

/// Without benodes and auto-redirect, BEs the FE lists but that do not answer from here
/// (the Docker case), an FE that cannot list them, or one that lists none, stop the
/// pipeline with an error that says what to set.
#[tokio::test]
async fn a_failed_be_discovery_says_to_set_benodes_or_auto_redirect() {
    // Every BE down: the FE lists none alive.
    let doris = DorisEmulator::start().await.unwrap();
    doris.inject(DorisFault::BeDown(true));
    let err = run(
        "disc-none",
        workload(),
        &doris,
        &[("sink.max-retries", "1")],
    )
    .await
    .unwrap_err()
    .to_string();
    assert!(err.contains("lists no alive BE"), "{err}");
    assert_discovery_hint(&err);
    assert!(doris.load_log().is_empty());

    // The FE cannot be reached (nothing listens there): no BE can be listed.
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let name = "disc-nofe";
    register_event_set(name, workload());
    let def = definition(
        name,
        name,
        &format!("127.0.0.1:{port}"),
        &[("sink.max-retries", "1")],
    );
    let err = tokio::time::timeout(
        Duration::from_secs(60),
        Pipeline::build(&def, &registry())
            .unwrap()
            .run(std::future::pending()),
    )
    .await
    .unwrap()
    .unwrap_err()
    .to_string();
    assert!(err.contains("/api/backends"), "{err}");
    assert_discovery_hint(&err);
}

fn assert_discovery_hint(err: &str) {
    eprintln!("discovery error: {err}");
    assert!(
        err.contains("benodes") && err.contains("auto-redirect: true"),
        "{err}"
    );
}

/// A load whose answer takes longer than the sink waits (`sink.properties.timeout`) is
/// sent again with the same label: Doris answers "Label Already Exists" while the first is
/// RUNNING, then FINISHED / PRECOMMITTED, so the rows load once.
#[tokio::test]
async fn a_load_slower_than_the_timeout_is_retried_with_its_label_and_loads_once() {
    for (name, two_phase) in [("slow-alo", "false"), ("slow-2pc", "true")] {
        let doris = DorisEmulator::start().await.unwrap();
        doris.inject(DorisFault::Slow {
            delay: Duration::from_millis(2500),
            count: 1,
        });
        run(
            name,
            workload(),
            &doris,
            &[
                ("sink.properties.timeout", "1"),
                ("sink.enable-2pc", two_phase),
            ],
        )
        .await
        .unwrap();
        // The DUPLICATE table would show a second load of the same rows.
        assert_target(&doris);
        let log = doris.load_log();
        let mut labels: Vec<&str> = log.iter().map(|l| l.label.as_str()).collect();
        labels.dedup();
        for label in labels {
            let of = |status: &str| {
                log.iter()
                    .filter(|l| l.label == label && l.status == status)
                    .count()
            };
            assert!(of("Success") <= 1, "{name}: {label} loaded twice: {log:?}");
        }
        let retried = log
            .iter()
            .find(|l| l.status == "Label Already Exists")
            .unwrap_or_else(|| panic!("{name}: no retry with the same label: {log:?}"));
        assert!(
            log.iter()
                .any(|l| l.label == retried.label && l.status == "Success"),
            "{name}: {log:?}"
        );
    }
}

/// The BE is down for a while (connections refused); the sink keeps retrying and the
/// pipeline ends with every row in place: through the FE's redirect, and with BEs listed
/// by the FE (which lists none while the BE is down).
#[tokio::test]
async fn the_pipeline_survives_a_be_outage() {
    for (name, two_phase, auto_redirect) in [
        ("bedown-alo", "false", "true"),
        ("bedown-2pc", "true", "true"),
        ("bedown-disc-alo", "false", "false"),
        ("bedown-disc-2pc", "true", "false"),
    ] {
        let doris = Arc::new(DorisEmulator::start().await.unwrap());
        doris.inject(DorisFault::BeDown(true));
        register_event_set(name, workload());
        let def = definition(
            name,
            name,
            &doris.fe_address(),
            &[
                ("sink.max-retries", "1000"),
                ("sink.enable-2pc", two_phase),
                ("auto-redirect", auto_redirect),
            ],
        );
        let pipeline = Pipeline::build(&def, &registry()).unwrap();
        let task = tokio::spawn(pipeline.run(std::future::pending()));
        // Several attempts failed against the dead BE before it comes back.
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        // 2PC: the first requests are the recovery's aborts of leftover labels. Without
        // auto-redirect: the sink asks the FE for BEs again and again.
        while doris.fe_stream_load_requests()
            + doris.fe_two_phase_requests()
            + doris.fe_backend_list_requests()
            < 4
        {
            assert!(
                !task.is_finished(),
                "{name}: the pipeline ended while the BE was down: {:?}",
                task.await
            );
            assert!(
                tokio::time::Instant::now() < deadline,
                "{name}: timed out waiting for loads retried while the BE is down"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert!(doris.load_log().is_empty());
        doris.inject(DorisFault::BeDown(false));
        tokio::time::timeout(Duration::from_secs(60), task)
            .await
            .expect("pipeline timed out")
            .unwrap()
            .unwrap();
        assert_target(&doris);
    }
}

/// Runs `events` with `local-time-zone` set to `zone`.
async fn run_in_zone(
    name: &str,
    events: Vec<Event>,
    doris: &DorisEmulator,
    zone: &str,
) -> Result<RunSummary, RuntimeError> {
    register_event_set(name, events);
    let def = definition_in(
        name,
        name,
        &doris.fe_address(),
        &[],
        &[("local-time-zone", zone)],
    );
    let pipeline = Pipeline::build(&def, &registry())?;
    tokio::time::timeout(
        Duration::from_secs(60),
        pipeline.run(std::future::pending()),
    )
    .await
    .expect("pipeline timed out")
}

/// TIMESTAMP_LTZ values (instants) show as the wall-clock time of `local-time-zone`,
/// including daylight saving; plain TIMESTAMP values are never shifted.
#[tokio::test]
async fn timestamp_ltz_is_shown_in_the_local_time_zone() {
    let doris = DorisEmulator::start().await.unwrap();
    let t = TableId::new("shop", "times");
    let schema = Schema::new(vec![
        Column::new("id", DataType::new(DataTypeKind::Int).not_null()),
        Column::new(
            "at",
            DataType::new(DataTypeKind::TimestampLtz { precision: 6 }),
        ),
        Column::new(
            "wall",
            DataType::new(DataTypeKind::Timestamp { precision: 0 }),
        ),
    ])
    .with_primary_key(["id"]);
    let wall = Value::Timestamp(Timestamp::new(Date::new(2024, 1, 15), 12, 0, 0, 0));
    let events = vec![
        SchemaChangeEvent::CreateTable {
            table_id: t.clone(),
            schema,
        }
        .into(),
        // 2024-01-15T12:00:00.123456Z: winter, Berlin is UTC+1.
        DataChangeEvent::insert(
            t.clone(),
            vec![
                Value::Int(1),
                Value::TimestampLtz(1_705_320_000_123_456),
                wall.clone(),
            ],
        )
        .into(),
        // 2024-07-15T12:00:00Z: summer, UTC+2.
        DataChangeEvent::insert(
            t.clone(),
            vec![
                Value::Int(2),
                Value::TimestampLtz(1_721_044_800_000_000),
                wall,
            ],
        )
        .into(),
    ];
    run_in_zone("ltz", events, &doris, "Europe/Berlin")
        .await
        .unwrap();
    assert_eq!(
        doris.table_columns("shop", "times").unwrap()[1].type_text,
        "DATETIME(6)"
    );
    assert_eq!(
        doris.table_rows("shop", "times").unwrap(),
        vec![
            vec![
                Some("1".into()),
                Some("2024-01-15 13:00:00.123456".into()),
                Some("2024-01-15 12:00:00".into())
            ],
            vec![
                Some("2".into()),
                Some("2024-07-15 14:00:00.000000".into()),
                Some("2024-01-15 12:00:00".into())
            ],
        ]
    );
}

/// Every cdc-api value type, loaded through the sink and read back as the text Doris
/// shows in SELECT.
#[tokio::test]
async fn every_value_type_reads_back_as_doris_shows_it() {
    use cdc_api::{RowField, Time};
    let doris = DorisEmulator::start().await.unwrap();
    let t = TableId::new("shop", "all_types");
    let ty = DataType::new;
    let dec = |precision, scale| ty(DataTypeKind::Decimal { precision, scale });
    let columns = vec![
        Column::new("id", ty(DataTypeKind::Int).not_null()),
        Column::new("b", ty(DataTypeKind::Boolean)),
        Column::new("ti", ty(DataTypeKind::TinyInt)),
        Column::new("si", ty(DataTypeKind::SmallInt)),
        Column::new("bi", ty(DataTypeKind::BigInt)),
        Column::new("f", ty(DataTypeKind::Float)),
        Column::new("d", ty(DataTypeKind::Double)),
        Column::new("dec", dec(12, 2)),
        Column::new("dec38", dec(38, 10)),
        Column::new("dec65", dec(65, 30)),
        Column::new("c", ty(DataTypeKind::Char { length: 2 })),
        // VARCHAR(4) of utf8mb4: four emoji are 16 bytes and must fit.
        Column::new("vc", ty(DataTypeKind::VarChar { length: 4 })),
        Column::new("s", ty(DataTypeKind::String)),
        Column::new("bin", ty(DataTypeKind::Binary { length: 1 })),
        Column::new("vb", ty(DataTypeKind::VarBinary { length: 8 })),
        Column::new("blob", ty(DataTypeKind::Bytes)),
        Column::new("dt", ty(DataTypeKind::Date)),
        Column::new("tm", ty(DataTypeKind::Time { precision: 3 })),
        Column::new("ts0", ty(DataTypeKind::Timestamp { precision: 0 })),
        Column::new("ts6", ty(DataTypeKind::Timestamp { precision: 6 })),
        Column::new("ltz", ty(DataTypeKind::TimestampLtz { precision: 3 })),
        Column::new("tz", ty(DataTypeKind::TimestampTz { precision: 0 })),
        Column::new("j", ty(DataTypeKind::Json)),
        Column::new(
            "arr",
            ty(DataTypeKind::Array(Box::new(ty(DataTypeKind::Int)))),
        ),
        Column::new(
            "m",
            ty(DataTypeKind::Map {
                key: Box::new(ty(DataTypeKind::String)),
                value: Box::new(dec(5, 2)),
            }),
        ),
        Column::new(
            "r",
            ty(DataTypeKind::Row(vec![
                RowField {
                    name: "n".into(),
                    data_type: ty(DataTypeKind::Int),
                },
                RowField {
                    name: "s".into(),
                    data_type: ty(DataTypeKind::String),
                },
            ])),
        ),
    ];
    let width = columns.len();
    let schema = Schema::new(columns).with_primary_key(["id"]);
    let decimal = |s: &str| Value::Decimal(Decimal::parse(s).unwrap());
    let full = vec![
        Value::Int(1),
        Value::Boolean(true),
        Value::TinyInt(-128),
        Value::SmallInt(32767),
        Value::BigInt(i64::MIN),
        Value::Float(1.1),
        Value::Double(-1234.5678),
        decimal("1234567890.5"),
        decimal("1234567890123456789012345678.0123456789"),
        decimal("-12345678901234567890123456789012345.678901234567890123456789012345"),
        Value::String("ab".into()),
        Value::String("😀🎉👍🏽".into()),
        Value::String("line\nbreak \"quoted\" \\ tab\t é".into()),
        Value::Bytes(vec![0x10]),
        Value::Bytes(vec![0, 255, 1]),
        Value::Bytes(b"hello".to_vec()),
        Value::Date(Date::new(1, 1, 1)),
        Value::Time(Time::new(21, 49, 13, 123_456)),
        Value::Timestamp(Timestamp::new(Date::new(9999, 12, 31), 23, 59, 59, 0)),
        Value::Timestamp(Timestamp::new(Date::new(2020, 7, 17), 18, 0, 22, 123_456)),
        Value::TimestampLtz(1_595_008_822_123_000),
        Value::TimestampTz {
            timestamp: Timestamp::new(Date::new(2020, 1, 1), 8, 0, 0, 0),
            offset_seconds: 8 * 3600,
        },
        Value::Json("{\"a\": [1, 2], \"b\": null}".into()),
        Value::Array(vec![Value::Int(1), Value::Null, Value::Int(3)]),
        Value::Map(vec![(Value::String("k".into()), decimal("1.5"))]),
        Value::Row(vec![Value::Int(7), Value::String("x".into())]),
    ];
    assert_eq!(full.len(), width);
    let mut nulls = vec![Value::Null; width];
    nulls[0] = Value::Int(2);
    // Empty, not NULL.
    let mut empty = vec![Value::Null; width];
    empty[0] = Value::Int(3);
    for i in [10, 11, 12] {
        empty[i] = Value::String(String::new());
    }
    for i in [13, 14, 15] {
        empty[i] = Value::Bytes(Vec::new());
    }
    empty[24] = Value::Map(Vec::new());
    empty[23] = Value::Array(Vec::new());
    let events = vec![
        SchemaChangeEvent::CreateTable {
            table_id: t.clone(),
            schema,
        }
        .into(),
        DataChangeEvent::insert(t.clone(), full).into(),
        DataChangeEvent::insert(t.clone(), nulls).into(),
        DataChangeEvent::insert(t.clone(), empty).into(),
    ];
    run("all-types", events, &doris, &[]).await.unwrap();
    let types: Vec<String> = doris
        .table_columns("shop", "all_types")
        .unwrap()
        .into_iter()
        .map(|c| c.type_text)
        .collect();
    assert_eq!(
        types,
        [
            "INT",
            "BOOLEAN",
            "TINYINT",
            "SMALLINT",
            "BIGINT",
            "FLOAT",
            "DOUBLE",
            "DECIMAL(12, 2)",
            "DECIMAL(38, 10)",
            "TEXT",
            "CHAR(8)",
            "VARCHAR(16)",
            "TEXT",
            "TEXT",
            "TEXT",
            "TEXT",
            "DATE",
            "TEXT",
            "DATETIME",
            "DATETIME(6)",
            "DATETIME(3)",
            "DATETIME",
            "JSON",
            "TEXT",
            "TEXT",
            "TEXT",
        ]
    );
    let s = |v: &str| Some(v.to_string());
    let rows = doris.table_rows("shop", "all_types").unwrap();
    assert_eq!(
        rows[0],
        vec![
            s("1"),
            s("1"),
            s("-128"),
            s("32767"),
            s("-9223372036854775808"),
            s("1.1"),
            s("-1234.5678"),
            s("1234567890.50"),
            s("1234567890123456789012345678.0123456789"),
            s("-12345678901234567890123456789012345.678901234567890123456789012345"),
            s("ab"),
            s("😀🎉👍🏽"),
            s("line\nbreak \"quoted\" \\ tab\t é"),
            s("EA=="),
            s("AP8B"),
            s("aGVsbG8="),
            s("0001-01-01"),
            s("21:49:13.123"),
            s("9999-12-31 23:59:59"),
            s("2020-07-17 18:00:22.123456"),
            s("2020-07-17 18:00:22.123"),
            s("2020-01-01 00:00:00"),
            s("{\"a\":[1,2],\"b\":null}"),
            s("[1,null,3]"),
            s("{\"k\":\"1.50\"}"),
            s("{\"n\":7,\"s\":\"x\"}"),
        ]
    );
    let mut want_nulls = vec![None; width];
    want_nulls[0] = s("2");
    assert_eq!(rows[1], want_nulls);
    let mut want_empty = vec![None; width];
    want_empty[0] = s("3");
    for cell in &mut want_empty[10..=15] {
        *cell = s("");
    }
    want_empty[23] = s("[]");
    want_empty[24] = s("{}");
    assert_eq!(rows[2], want_empty);
}

/// `sink.buffer-flush.interval` loads a buffer while no new rows arrive: the source stops
/// sending, and the rows still become visible before the (long) checkpoint interval.
#[tokio::test]
async fn the_flush_interval_loads_an_idle_buffer() {
    let doris = DorisEmulator::start().await.unwrap();
    let name = "interval";
    register_event_set(name, workload());
    let def = definition_in(
        name,
        name,
        &doris.fe_address(),
        &[
            ("sink.buffer-flush.interval", "1s"),
            ("sink.enable.batch-mode", "true"),
        ],
        &[
            ("checkpoint.interval", "30min"),
            ("source.unbounded", "true"),
        ],
    );
    let pipeline = Pipeline::build(&def, &registry()).unwrap();
    // An unbounded source and no checkpoint for 30 minutes: only the interval can load the
    // rows, since none arrive after the first ~200 ms.
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(pipeline.run(async move {
        let _ = stop_rx.await;
    }));
    wait_until(20, "the interval flush", || {
        doris
            .table_rows("shop", "logs")
            .is_some_and(|r| r.len() == 12)
    })
    .await;
    assert_target(&doris);
    let _ = stop_tx.send(());
    let _ = tokio::time::timeout(Duration::from_secs(30), task).await;
}

/// A run crashes with checkpoint 1 pre-committed and never saved: the next run (nothing to
/// resume from, `recover` with no checkpoint) learns the crashed run's epoch from the state
/// store and aborts its leftovers of checkpoint 1; its own loads carry its own epoch, so
/// no label is reused and nothing loads twice.
#[tokio::test]
async fn a_fresh_start_aborts_leftovers_of_checkpoint_one() {
    let doris = DorisEmulator::start().await.unwrap();
    let name = "fresh";
    register_event_set(name, workload());
    let store = Arc::new(CrashingStore::default());
    store.crash_at.store(1, Ordering::SeqCst);
    let def = definition(
        name,
        name,
        &doris.fe_address(),
        &[("sink.enable-2pc", "true")],
    );
    let pipeline = Pipeline::build(&def, &registry())
        .unwrap()
        .with_state_store(store.clone());
    let task = tokio::spawn(pipeline.run(std::future::pending()));
    tokio::time::timeout(Duration::from_secs(30), store.reached.notified())
        .await
        .expect("checkpoint 1 was never reached");
    task.abort();
    let _ = task.await;
    let leftovers: Vec<String> = doris
        .transactions()
        .into_iter()
        .filter(|t| t.state == TxnState::PreCommitted)
        .map(|t| t.label)
        .collect();
    assert!(
        !leftovers.is_empty() && leftovers.iter().all(|l| l.ends_with("_1_0")),
        "{leftovers:?}"
    );
    // The same state, still without a checkpoint.
    store.crash_at.store(0, Ordering::SeqCst);
    let pipeline = Pipeline::build(&def, &registry())
        .unwrap()
        .with_state_store(store.clone());
    let summary = tokio::time::timeout(
        Duration::from_secs(60),
        pipeline.run(std::future::pending()),
    )
    .await
    .unwrap()
    .unwrap();
    assert!(!summary.resumed);
    assert_target(&doris);
    let txns = doris.transactions();
    for label in &leftovers {
        assert!(
            txns.iter().any(|t| &t.label == label
                && t.state == TxnState::Aborted
                && t.abort_reason.as_deref() == Some("User Abort")),
            "{label} was not aborted: {txns:?}"
        );
        assert!(
            !txns
                .iter()
                .any(|t| &t.label == label && t.state == TxnState::Committed),
            "{label} of the crashed run was used again: {txns:?}"
        );
    }
    assert!(txns.iter().all(|t| t.state != TxnState::PreCommitted));
}

// ---- Schema-change jobs (issue #21 point 1) ----

fn customers_id() -> TableId {
    TableId::new("shop", "customers")
}

fn customers(with_score: bool) -> Event {
    let mut columns = vec![
        Column::new("id", DataType::new(DataTypeKind::Int).not_null()),
        Column::new("name", DataType::new(DataTypeKind::VarChar { length: 20 })),
    ];
    if with_score {
        columns.push(Column::new("score", DataType::new(DataTypeKind::Int)));
    }
    SchemaChangeEvent::CreateTable {
        table_id: customers_id(),
        schema: Schema::new(columns).with_primary_key(["id"]),
    }
    .into()
}

fn customer(id: i32, name: &str, score: Option<i64>) -> Vec<Value> {
    vec![
        Value::Int(id),
        Value::String(name.into()),
        score.map_or(Value::Null, Value::BigInt),
    ]
}

fn score_to_bigint() -> Event {
    SchemaChangeEvent::AlterColumnType {
        table_id: customers_id(),
        types: vec![("score".into(), DataType::new(DataTypeKind::BigInt))],
        comments: std::collections::BTreeMap::new(),
    }
    .into()
}

fn row(values: &[&str]) -> Vec<Option<String>> {
    values.iter().map(|v| Some((*v).to_string())).collect()
}

/// `ALTER TABLE customers MODIFY COLUMN score BIGINT` right after a light ADD COLUMN, then
/// scores above 2^31: Doris lists the ADD as a FINISHED job and the MODIFY as a job that
/// runs for a while, both with the same one-second `CreateTime`, ties in job-id order. An
/// applier that waited for "the newest job" (`ORDER BY CreateTime DESC LIMIT 1`) got the
/// finished ADD job, loaded the rows while the column was still INT, and Doris showed NULL.
#[tokio::test]
async fn a_type_change_right_after_a_light_change_is_waited_for() {
    for (name, sink) in [
        ("same-second-2pc", vec![]),
        ("same-second-alo", vec![("sink.enable-2pc", "false")]),
    ] {
        let doris = DorisEmulator::start_with(DorisEmulatorOptions {
            alter_job_duration: Duration::from_millis(600),
            ..DorisEmulatorOptions::default()
        })
        .await
        .unwrap();
        let t = customers_id();
        let events = vec![
            customers(false),
            DataChangeEvent::insert(t.clone(), vec![Value::Int(1), Value::String("a".into())])
                .into(),
            SchemaChangeEvent::AddColumn {
                table_id: t.clone(),
                columns: vec![(
                    Column::new("score", DataType::new(DataTypeKind::Int)),
                    cdc_api::ColumnPosition::Last,
                )],
            }
            .into(),
            score_to_bigint(),
            DataChangeEvent::update(
                t.clone(),
                customer(1, "a", None),
                customer(1, "a", Some(9_000_000_004)),
            )
            .into(),
            DataChangeEvent::insert(t.clone(), customer(2, "b", Some(9_000_000_005))).into(),
        ];
        run(name, events, &doris, &sink).await.unwrap();
        assert_eq!(
            doris.table_columns("shop", "customers").unwrap()[2].type_text,
            "BIGINT",
            "{name}"
        );
        assert_eq!(
            doris.table_rows("shop", "customers").unwrap(),
            vec![
                row(&["1", "a", "9000000004"]),
                row(&["2", "b", "9000000005"])
            ],
            "{name}"
        );
    }
}

/// A Stream Load of another client, pre-committed (two-phase commit) and not yet committed.
async fn precommit_elsewhere(doris: &DorisEmulator, label: &str, body: &str) -> String {
    cdc_testkit::install_crypto_provider();
    let v: serde_json::Value = reqwest::Client::new()
        .put(format!(
            "http://{}/api/shop/customers/_stream_load",
            doris.be_address()
        ))
        .basic_auth("root", Some(""))
        .header("Expect", "100-continue")
        .header("label", label)
        .header("format", "json")
        .header("read_json_by_line", "true")
        .header("two_phase_commit", "true")
        .body(body.to_string())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(v["Status"], "Success", "{v}");
    v["TxnId"].as_i64().unwrap().to_string()
}

/// Commits or aborts another client's transaction.
async fn finish_elsewhere(doris: &DorisEmulator, txn: &str, operation: &str) {
    let v: serde_json::Value = reqwest::Client::new()
        .put(format!(
            "http://{}/api/shop/_stream_load_2pc",
            doris.be_address()
        ))
        .basic_auth("root", Some(""))
        .header("txn_id", txn)
        .header("txn_operation", operation)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(v["status"], "Success", "{v}");
}

/// The `State` of every schema-change job of shop.customers, in job-id order.
fn job_states(doris: &DorisEmulator) -> Vec<String> {
    let r = doris
        .execute("SHOW ALTER TABLE COLUMN FROM shop WHERE TableName = \"customers\"")
        .unwrap();
    let state = r.columns.iter().position(|c| c == "State").unwrap();
    r.rows
        .iter()
        .map(|row| row[state].clone().unwrap_or_default())
        .collect()
}

/// Loads into shop.customers other than `except`'s.
fn pipeline_loads(doris: &DorisEmulator, except: &str) -> usize {
    doris
        .load_log()
        .iter()
        .filter(|l| l.table == "customers" && l.label != except)
        .count()
}

/// A MODIFY COLUMN job stays WAITING_TXN while a transaction on the table that began
/// before it is unfinished: here another client's pre-committed load. The applier waits
/// for it (not only for its own transactions, which are all committed before a schema
/// change), and the rows of the new type are loaded only after the job finished.
#[tokio::test]
async fn a_job_held_by_another_clients_transaction_is_waited_for() {
    let doris = DorisEmulator::start().await.unwrap();
    let t = customers_id();
    run(
        "held-1",
        vec![
            customers(true),
            DataChangeEvent::insert(t.clone(), customer(1, "a", Some(1))).into(),
        ],
        &doris,
        &[],
    )
    .await
    .unwrap();
    let txn = precommit_elsewhere(
        &doris,
        "other-client-1",
        "{\"id\": 100, \"name\": \"other\"}\n",
    )
    .await;
    let loads_before = pipeline_loads(&doris, "other-client-1");
    let events = vec![
        customers(true),
        score_to_bigint(),
        DataChangeEvent::insert(t.clone(), customer(2, "b", Some(9_000_000_004))).into(),
    ];
    let pipeline = run("held-2", events, &doris, &[]);
    let other_client = async {
        wait_until(20, "the job to wait for the transaction", || {
            job_states(&doris)
                .last()
                .is_some_and(|s| s == "WAITING_TXN")
        })
        .await;
        // Longer than the job's own 300 ms: only the transaction holds it now.
        tokio::time::sleep(Duration::from_millis(800)).await;
        assert_eq!(job_states(&doris).last().unwrap(), "WAITING_TXN");
        assert_eq!(
            doris.table_columns("shop", "customers").unwrap()[2].type_text,
            "INT"
        );
        assert_eq!(
            pipeline_loads(&doris, "other-client-1"),
            loads_before,
            "rows were loaded while the column was still INT"
        );
        finish_elsewhere(&doris, &txn, "commit").await;
    };
    let (result, ()) = tokio::join!(pipeline, other_client);
    result.unwrap();
    assert_eq!(job_states(&doris).last().unwrap(), "FINISHED");
    assert_eq!(
        doris.table_rows("shop", "customers").unwrap(),
        vec![
            row(&["1", "a", "1"]),
            vec![Some("100".into()), Some("other".into()), None],
            row(&["2", "b", "9000000004"]),
        ]
    );
}

/// The same job held for longer than `table.schema-change.timeout`: the pipeline stops with
/// an error that names the job's state, the option and what holds the job, and loads
/// nothing of the new shape.
#[tokio::test]
async fn a_job_held_past_the_timeout_stops_with_the_reason() {
    let doris = DorisEmulator::start().await.unwrap();
    let t = customers_id();
    run(
        "held-long-1",
        vec![
            customers(true),
            DataChangeEvent::insert(t.clone(), customer(1, "a", Some(1))).into(),
        ],
        &doris,
        &[],
    )
    .await
    .unwrap();
    let txn = precommit_elsewhere(
        &doris,
        "other-client-2",
        "{\"id\": 100, \"name\": \"other\"}\n",
    )
    .await;
    let loads_before = pipeline_loads(&doris, "other-client-2");
    let events = vec![
        customers(true),
        score_to_bigint(),
        DataChangeEvent::insert(t.clone(), customer(2, "b", Some(9_000_000_004))).into(),
    ];
    let started = std::time::Instant::now();
    let err = run(
        "held-long-2",
        events,
        &doris,
        &[("table.schema-change.timeout", "1s")],
    )
    .await
    .unwrap_err()
    .to_string();
    assert!(started.elapsed() >= Duration::from_secs(1));
    assert!(err.contains("shop.customers"), "{err}");
    assert!(err.contains("WAITING_TXN"), "{err}");
    assert!(err.contains("table.schema-change.timeout"), "{err}");
    assert!(err.contains("pre-committed by another client"), "{err}");
    assert_eq!(pipeline_loads(&doris, "other-client-2"), loads_before);
    finish_elsewhere(&doris, &txn, "abort").await;
    assert_eq!(
        doris.table_rows("shop", "customers").unwrap(),
        vec![row(&["1", "a", "1"])]
    );
}

/// While another client's job runs on the table, Doris refuses every other ALTER ("...
/// is not NORMAL. Do not allow doing ALTER ops"); the applier tries again until the table
/// is NORMAL, then applies its own change and waits for it.
#[tokio::test]
async fn an_alter_refused_while_another_job_runs_is_retried() {
    let doris = DorisEmulator::start_with(DorisEmulatorOptions {
        alter_job_duration: Duration::from_millis(1500),
        ..DorisEmulatorOptions::default()
    })
    .await
    .unwrap();
    let t = customers_id();
    run(
        "busy-1",
        vec![
            customers(true),
            DataChangeEvent::insert(t.clone(), customer(1, "a", Some(1))).into(),
        ],
        &doris,
        &[],
    )
    .await
    .unwrap();
    doris
        .execute("ALTER TABLE shop.customers MODIFY COLUMN name VARCHAR(100) NULL")
        .unwrap();
    let e = doris
        .execute("ALTER TABLE shop.customers ADD COLUMN probe INT")
        .unwrap_err();
    assert!(
        e.contains("is not NORMAL. Do not allow doing ALTER ops"),
        "{e}"
    );
    let events = vec![
        customers(true),
        score_to_bigint(),
        DataChangeEvent::insert(t.clone(), customer(2, "b", Some(9_000_000_004))).into(),
    ];
    run("busy-2", events, &doris, &[]).await.unwrap();
    assert_eq!(job_states(&doris), ["FINISHED", "FINISHED"]);
    let types: Vec<String> = doris
        .table_columns("shop", "customers")
        .unwrap()
        .into_iter()
        .map(|c| c.type_text)
        .collect();
    assert_eq!(types, ["INT", "VARCHAR(100)", "BIGINT"]);
    assert_eq!(
        doris.table_rows("shop", "customers").unwrap(),
        vec![row(&["1", "a", "1"]), row(&["2", "b", "9000000004"])]
    );
}

/// Under lenient a dropped NOT NULL column stays in the target and becomes nullable, so the
/// rows after the drop, which carry NULL there, load instead of being refused.
#[tokio::test]
async fn lenient_makes_a_dropped_not_null_column_nullable() {
    let doris = DorisEmulator::start().await.unwrap();
    let t = TableId::new("shop", "dropped");
    let events = vec![
        SchemaChangeEvent::CreateTable {
            table_id: t.clone(),
            schema: Schema::new(vec![
                Column::new("id", DataType::new(DataTypeKind::Int).not_null()),
                Column::new("v", DataType::new(DataTypeKind::Int).not_null()),
            ])
            .with_primary_key(["id"]),
        }
        .into(),
        DataChangeEvent::insert(t.clone(), vec![Value::Int(1), Value::Int(10)]).into(),
        SchemaChangeEvent::DropColumn {
            table_id: t.clone(),
            columns: vec!["v".into()],
        }
        .into(),
        DataChangeEvent::insert(t.clone(), vec![Value::Int(2)]).into(),
    ];
    run_in(
        "lenient-drop",
        events,
        &doris,
        &[],
        &[("schema.change.behavior", "lenient")],
    )
    .await
    .unwrap();
    let mut rows = doris.table_rows("shop", "dropped").unwrap();
    rows.sort();
    assert_eq!(
        rows,
        [
            vec![Some("1".to_string()), Some("10".to_string())],
            vec![Some("2".to_string()), None]
        ]
    );
    let v = doris
        .table_columns("shop", "dropped")
        .unwrap()
        .into_iter()
        .find(|c| c.name == "v")
        .unwrap();
    assert!(v.nullable, "{v:?}");
}

/// The `ErrorURL` of a rejected load comes from the server's answer: when it names a host
/// the user did not configure, the log is asked for without the credentials.
#[tokio::test]
async fn an_error_url_elsewhere_gets_no_credentials() {
    let elsewhere = cdc_testkit::RequestRecorder::start("Reason: see elsewhere")
        .await
        .unwrap();
    let doris = DorisEmulator::start_with(DorisEmulatorOptions {
        users: vec![("root".into(), "s3cret-pw".into())],
        error_url_base: Some(elsewhere.url().to_string()),
        ..DorisEmulatorOptions::default()
    })
    .await
    .unwrap();
    let t = TableId::new("shop", "strict");
    let events = vec![
        SchemaChangeEvent::CreateTable {
            table_id: t.clone(),
            schema: Schema::new(vec![
                Column::new("id", DataType::new(DataTypeKind::Int).not_null()),
                Column::new("v", DataType::new(DataTypeKind::Int).not_null()),
            ])
            .with_primary_key(["id"]),
        }
        .into(),
        DataChangeEvent::insert(t, vec![Value::Int(2), Value::Null]).into(),
    ];
    let err = run_in(
        "doris-error-url",
        events,
        &doris,
        &[("password", "s3cret-pw")],
        &[("restart-strategy.type", "none")],
    )
    .await
    .unwrap_err()
    .to_string();
    assert!(err.contains("too many filtered rows"), "{err}");
    assert!(!err.contains("s3cret-pw"), "{err}");
    let heads = elsewhere.heads();
    assert_eq!(heads.len(), 1, "the error log was not asked for: {heads:?}");
    assert!(
        heads[0].starts_with("GET /api/_load_error_log"),
        "{heads:?}"
    );
    assert!(
        !heads[0].to_ascii_lowercase().contains("authorization"),
        "{heads:?}"
    );
}

/// A table whose `v` is NOT NULL, without a key (a DUPLICATE KEY table, where a row loaded
/// twice would show twice), and three rows of which the second has a NULL `v`.
fn one_bad_row(table: &str) -> Vec<Event> {
    let t = TableId::new("shop", table);
    vec![
        SchemaChangeEvent::CreateTable {
            table_id: t.clone(),
            schema: Schema::new(vec![
                Column::new("id", DataType::new(DataTypeKind::Int).not_null()),
                Column::new("v", DataType::new(DataTypeKind::Int).not_null()),
            ]),
        }
        .into(),
        DataChangeEvent::insert(t.clone(), vec![Value::Int(1), Value::Int(10)]).into(),
        DataChangeEvent::insert(t.clone(), vec![Value::Int(2), Value::Null]).into(),
        DataChangeEvent::insert(t, vec![Value::Int(3), Value::Int(30)]).into(),
    ]
}

/// A fresh dead-letter file path in a fresh directory.
fn dead_letter_path(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("cdc-doris-dl-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir.join("dead-letters.jsonl")
}

fn dead_letters(path: &std::path::Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// With `sink.dead-letter.path` the rejected row is written there with the target's reason,
/// the row as Doris reported it, the load's label and checkpoint, while the other rows
/// land exactly once (a DUPLICATE KEY table would show a double), in both delivery modes.
#[tokio::test]
async fn a_rejected_row_goes_to_the_dead_letter_file_and_the_rest_loads_once() {
    for (name, two_phase) in [("dl-2pc", "true"), ("dl-alo", "false")] {
        let doris = DorisEmulator::start().await.unwrap();
        let path = dead_letter_path(name);
        let table = format!("dl_{two_phase}");
        run(
            name,
            one_bad_row(&table),
            &doris,
            &[
                ("sink.enable-2pc", two_phase),
                ("sink.dead-letter.path", path.to_str().unwrap()),
            ],
        )
        .await
        .unwrap();
        let mut rows = doris.table_rows("shop", &table).unwrap();
        rows.sort();
        assert_eq!(
            rows,
            [
                vec![Some("1".to_string()), Some("10".to_string())],
                vec![Some("3".to_string()), Some("30".to_string())],
            ],
            "{name}"
        );
        let txns = doris.transactions();
        assert!(
            txns.iter().all(|t| t.state != TxnState::PreCommitted),
            "{name}: {txns:?}"
        );
        let letters = dead_letters(&path);
        assert_eq!(letters.len(), 1, "{name}: {letters:?}");
        let l = &letters[0];
        assert_eq!(l["table"], format!("shop.{table}"), "{l}");
        assert_eq!(l["target"], "Doris", "{l}");
        assert_eq!(l["rows"], 1, "{l}");
        assert!(
            l["reason"]
                .as_str()
                .unwrap()
                .contains("column(v) values is null while columns is not nullable"),
            "{l}"
        );
        let row = l["row"].as_str().unwrap();
        assert!(row.contains("\"id\":2"), "{l}");
        let label = l["label"].as_str().unwrap();
        assert!(label.contains(&table), "{l}");
        assert!(l["checkpoint"].as_u64().unwrap() >= 1, "{l}");
        assert!(
            doris
                .load_log()
                .iter()
                .any(|r| r.label == label && r.status == "Success" && r.filtered_rows == 1),
            "{name}: no successful load with one filtered row under {label}"
        );
    }
}

/// An `ErrorURL` that cannot be read still leaves a dead letter: the count of rejected
/// rows and why their detail is missing.
#[tokio::test]
async fn an_unreadable_error_url_still_records_the_rejected_count() {
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let dead = format!("http://{}", closed.local_addr().unwrap());
    drop(closed);
    let doris = DorisEmulator::start_with(DorisEmulatorOptions {
        error_url_base: Some(dead),
        ..DorisEmulatorOptions::default()
    })
    .await
    .unwrap();
    let path = dead_letter_path("dl-unreadable");
    run(
        "dl-unreadable",
        one_bad_row("dl_unreadable"),
        &doris,
        &[("sink.dead-letter.path", path.to_str().unwrap())],
    )
    .await
    .unwrap();
    assert_eq!(doris.table_rows("shop", "dl_unreadable").unwrap().len(), 2);
    let letters = dead_letters(&path);
    assert_eq!(letters.len(), 1, "{letters:?}");
    assert_eq!(letters[0]["rows"], 1);
    assert!(letters[0]["row"].is_null());
    let reason = letters[0]["reason"].as_str().unwrap();
    assert!(reason.contains("could not be fetched"), "{reason}");
}

/// Unset, the option changes nothing: the rejected row stops the pipeline with Doris's
/// message (no filter ratio is sent: `request_headers` in src/sink.rs).
#[tokio::test]
async fn without_a_dead_letter_file_a_rejected_row_still_stops() {
    let doris = DorisEmulator::start().await.unwrap();
    let err = run("dl-unset", one_bad_row("dl_unset"), &doris, &[])
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("too many filtered rows"), "{err}");
    assert!(err.contains("first rejected row"), "{err}");
}
