#![allow(clippy::unwrap_used, clippy::expect_used)]
//! The StarRocks sink end to end: values source -> runtime -> StarRocks sink -> the
//! StarRocks emulator of cdc-testkit (HTTP for loads, the MySQL port for DDL).

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use cdc_api::{
    Column, ConnectorRegistry, DataChangeEvent, DataType, DataTypeKind, Date, Decimal, Event,
    OwnerEpoch, Schema, SchemaChangeEvent, TableId, Timestamp, Value,
};
use cdc_connector_starrocks::StarRocksSinkFactory;
use cdc_runtime::{
    Checkpoint, MemoryStateStore, Ownership, Pipeline, PipelineDefinition, RunSummary,
    RuntimeError, StateStore,
};
use cdc_testkit::{
    StarRocksEmulator, StarRocksEmulatorOptions, StarRocksFault, StarRocksTxnState,
    ValuesSourceFactory, register_event_set,
};

fn registry() -> ConnectorRegistry {
    let mut r = ConnectorRegistry::new();
    r.register_source(ValuesSourceFactory)
        .register_sink(StarRocksSinkFactory);
    r
}

fn definition(name: &str, sr: &StarRocksEmulator, sink: &[(&str, &str)]) -> PipelineDefinition {
    definition_of(name, name, sr, sink)
}

/// A pipeline `name` reading the values event set `event_set`.
fn definition_of(
    event_set: &str,
    name: &str,
    sr: &StarRocksEmulator,
    sink: &[(&str, &str)],
) -> PipelineDefinition {
    let mut sink_block = serde_json::json!({
        "type": "starrocks",
        "jdbc-url": format!("jdbc:mysql://{}", sr.fe_mysql_address()),
        "load-url": sr.fe_http_address(),
        "username": "root",
        "password": "",
        "table.create.properties.replication_num": "1",
    });
    for (k, v) in sink {
        sink_block[*k] = serde_json::Value::String((*v).to_string());
    }
    let yaml = serde_json::json!({
        "source": {"type": "values", "event-set": event_set, "batch-size": "3", "batch-interval": "20ms"},
        "sink": sink_block,
        "pipeline": {
            "name": name,
            "schema.change.behavior": "evolve",
            "checkpoint.interval": "100ms",
            "local-time-zone": "UTC",
            "state.dir": "none",
        },
    })
    .to_string();
    PipelineDefinition::from_yaml_str(&yaml, name).unwrap()
}

async fn run(
    name: &str,
    events: Vec<Event>,
    sr: &StarRocksEmulator,
    sink: &[(&str, &str)],
) -> Result<RunSummary, RuntimeError> {
    register_event_set(name, events);
    let pipeline = Pipeline::build(&definition(name, sr, sink), &registry())?;
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
    // The key is declared after a value column: created tables put it first.
    let logs = Schema::new(vec![
        Column::new("msg", DataType::new(DataTypeKind::String)),
        Column::new("n", DataType::new(DataTypeKind::Int).not_null()),
    ])
    .with_primary_key(["n"]);
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
        events.push(
            DataChangeEvent::insert(logs_id(), log(&format!("line {i} 😀"), i as i32)).into(),
        );
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
        .map(|i| vec![Some(i.to_string()), Some(format!("line {i} 😀"))])
        .collect();
    rows.sort();
    rows
}

fn assert_target(sr: &StarRocksEmulator) {
    assert_eq!(sr.table_rows("shop", "orders").unwrap(), expected_orders());
    assert_eq!(sr.table_rows("shop", "logs").unwrap(), expected_logs());
}

/// No label was made visible twice.
fn assert_no_label_twice(sr: &StarRocksEmulator) {
    let mut visible: HashMap<String, usize> = HashMap::new();
    for t in sr.transactions() {
        if t.state == StarRocksTxnState::Visible {
            *visible.entry(t.label).or_default() += 1;
        }
    }
    assert!(visible.values().all(|n| *n == 1), "{visible:?}");
}

#[tokio::test]
async fn at_least_once_through_transactions_leaves_tables_right() {
    let sr = StarRocksEmulator::start().await.unwrap();
    run(
        "alo",
        workload(),
        &sr,
        &[
            ("sink.buffer-flush.max-bytes", "300"),
            ("sink.semantic", "at-least-once"),
        ],
    )
    .await
    .unwrap();
    assert_target(&sr);
    let cols = sr.table_columns("shop", "orders").unwrap();
    assert_eq!(cols[1].type_text, "VARCHAR(80)");
    assert_eq!(cols[3].type_text, "DATETIME");
    let logs = sr.table_columns("shop", "logs").unwrap();
    assert_eq!((logs[0].name.as_str(), logs[0].is_key), ("n", true));
    let loads = sr.load_log();
    assert!(!loads.is_empty() && loads.iter().all(|l| l.transactional));
    assert!(
        sr.transactions()
            .iter()
            .all(|t| t.state == StarRocksTxnState::Visible)
    );
}

#[tokio::test]
async fn at_least_once_with_plain_stream_loads_leaves_tables_right() {
    let sr = StarRocksEmulator::start().await.unwrap();
    run(
        "alo-plain",
        workload(),
        &sr,
        &[
            ("sink.at-least-once.use-transaction-stream-load", "false"),
            ("sink.semantic", "at-least-once"),
        ],
    )
    .await
    .unwrap();
    assert_target(&sr);
    let loads = sr.load_log();
    assert!(
        !loads.is_empty()
            && loads
                .iter()
                .all(|l| !l.transactional && l.status == "Success")
    );
}

#[tokio::test]
async fn exactly_once_leaves_tables_right() {
    let sr = StarRocksEmulator::start().await.unwrap();
    run(
        "eo",
        workload(),
        &sr,
        &[
            ("sink.semantic", "exactly-once"),
            ("sink.label-prefix", "t"),
        ],
    )
    .await
    .unwrap();
    assert_target(&sr);
    let txns = sr.transactions();
    assert!(!txns.is_empty());
    assert!(
        txns.iter().all(|t| t.label.starts_with("t_eo_shop_")),
        "{txns:?}"
    );
    assert!(
        txns.iter().all(|t| t.state == StarRocksTxnState::Visible),
        "{txns:?}"
    );
    assert_no_label_twice(&sr);
}

#[tokio::test]
async fn tiny_max_bytes_prepares_extra_parts_in_exactly_once_mode() {
    let sr = StarRocksEmulator::start().await.unwrap();
    run(
        "parts",
        workload(),
        &sr,
        &[
            ("sink.semantic", "exactly-once"),
            ("sink.buffer-flush.max-bytes", "100"),
        ],
    )
    .await
    .unwrap();
    assert_target(&sr);
    assert!(sr.transactions().iter().any(|t| t.label.ends_with("_1")));
}

/// A state store that makes the pipeline hang (like a crash) at one checkpoint, before or
/// after saving it.
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

async fn crash_and_resume(after_save: bool, name: &str) {
    let sr = StarRocksEmulator::start().await.unwrap();
    register_event_set(name, workload());
    let store = Arc::new(CrashingStore::default());
    store.crash_at.store(2, Ordering::SeqCst);
    store.after_save.store(after_save, Ordering::SeqCst);
    let def = definition(name, &sr, &[("sink.semantic", "exactly-once")]);
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
        sr.transactions()
            .iter()
            .any(|t| t.state == StarRocksTxnState::Prepared),
        "nothing was left prepared: {:?}",
        sr.transactions()
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
    assert_target(&sr);
    assert!(
        sr.transactions()
            .iter()
            .all(|t| t.state != StarRocksTxnState::Prepared),
        "{:?}",
        sr.transactions()
    );
    assert_no_label_twice(&sr);
}

#[tokio::test]
async fn crash_after_prepare_neither_loses_nor_doubles_rows() {
    crash_and_resume(false, "crash-before-save").await;
}

#[tokio::test]
async fn crash_after_saving_the_checkpoint_commits_on_restart() {
    crash_and_resume(true, "crash-after-save").await;
}

/// A run prepared rows of `logs` for checkpoint 1 and died before recording it; the next
/// run's checkpoint 1 happens to hold no `logs` rows. The old transaction must still be
/// rolled back before checkpoint 1 is recorded: after that, no restart would look for it.
#[tokio::test]
async fn a_crashed_runs_prepared_load_of_a_table_the_next_run_leaves_idle_is_rolled_back() {
    let name = "idle-after-crash";
    let sr = StarRocksEmulator::start().await.unwrap();
    let mut first = create_tables();
    for i in 1..=3 {
        first.push(DataChangeEvent::insert(logs_id(), log(&format!("l{i}"), i)).into());
    }
    register_event_set("idle-after-crash-1", first);
    let store = Arc::new(CrashingStore::default());
    store.crash_at.store(1, Ordering::SeqCst);
    let def = definition_of(
        "idle-after-crash-1",
        name,
        &sr,
        &[("sink.semantic", "exactly-once")],
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
    let open: Vec<String> = sr
        .open_transactions()
        .into_iter()
        .map(|t| t.label)
        .collect();
    // The crashed run's label of checkpoint 1, carrying its owner epoch.
    assert!(
        open.len() == 1
            && open[0].starts_with(&format!("{name}_shop_logs_"))
            && open[0].ends_with("_1_0"),
        "{open:?}"
    );

    let mut second = create_tables();
    second.push(DataChangeEvent::insert(orders_id(), order(1, "o1", "1.5")).into());
    register_event_set("idle-after-crash-2", second);
    store.crash_at.store(0, Ordering::SeqCst);
    let def = definition_of(
        "idle-after-crash-2",
        name,
        &sr,
        &[("sink.semantic", "exactly-once")],
    );
    let pipeline = Pipeline::build(&def, &registry())
        .unwrap()
        .with_state_store(store.clone());
    tokio::time::timeout(
        Duration::from_secs(60),
        pipeline.run(std::future::pending()),
    )
    .await
    .unwrap()
    .unwrap();
    assert!(
        sr.open_transactions().is_empty(),
        "{:?}",
        sr.open_transactions()
    );
    assert_eq!(
        sr.table_rows("shop", "logs").unwrap(),
        Vec::<Vec<Option<String>>>::new()
    );
    assert_eq!(sr.table_rows("shop", "orders").unwrap().len(), 1);
}

async fn survives_faults(name: &str, options: &[(&str, &str)]) {
    let sr = StarRocksEmulator::start().await.unwrap();
    sr.inject(StarRocksFault::ServerError {
        status: 503,
        count: 2,
    });
    sr.inject(StarRocksFault::ResetConnection { count: 2 });
    sr.inject(StarRocksFault::PublishTimeout { count: 1 });
    let mut opts = vec![
        ("sink.buffer-flush.max-bytes", "400"),
        ("sink.max-retries", "5"),
    ];
    opts.extend_from_slice(options);
    run(name, workload(), &sr, &opts).await.unwrap();
    assert_target(&sr);
    assert_no_label_twice(&sr);
}

#[tokio::test]
async fn injected_faults_are_survived_at_least_once() {
    survives_faults("faults-alo", &[("sink.semantic", "at-least-once")]).await;
    survives_faults(
        "faults-plain",
        &[
            ("sink.at-least-once.use-transaction-stream-load", "false"),
            ("sink.semantic", "at-least-once"),
        ],
    )
    .await;
}

#[tokio::test]
async fn injected_faults_are_survived_exactly_once() {
    survives_faults("faults-eo", &[("sink.semantic", "exactly-once")]).await;
}

#[tokio::test]
async fn a_wrong_password_stops_with_the_cause() {
    let sr = StarRocksEmulator::start_with(StarRocksEmulatorOptions {
        users: vec![("root".into(), "secret".into())],
        ..StarRocksEmulatorOptions::default()
    })
    .await
    .unwrap();
    let err = run("badpw", workload(), &sr, &[("password", "nope")])
        .await
        .unwrap_err()
        .to_string();
    assert!(err.to_lowercase().contains("access denied"), "{err}");
    assert!(err.contains("password"), "{err}");
    // The right password works through both ports.
    run("goodpw", workload(), &sr, &[("password", "secret")])
        .await
        .unwrap();
    assert_target(&sr);
}

#[tokio::test]
async fn a_rejected_row_stops_naming_table_and_row() {
    for (name, semantic) in [
        ("rejected-alo", "at-least-once"),
        ("rejected-eo", "exactly-once"),
    ] {
        let sr = StarRocksEmulator::start().await.unwrap();
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
        let err = run(name, events, &sr, &[("sink.semantic", semantic)])
            .await
            .unwrap_err()
            .to_string();
        assert!(err.contains("shop.strict"), "{err}");
        assert!(err.contains("too many filtered rows"), "{err}");
        assert!(err.contains("first rejected row"), "{err}");
        assert!(err.contains("non-nullable column 'v'"), "{err}");
    }
}

#[tokio::test]
async fn a_table_without_primary_key_stops_with_advice() {
    let sr = StarRocksEmulator::start().await.unwrap();
    let events = vec![
        SchemaChangeEvent::CreateTable {
            table_id: TableId::new("shop", "nokey"),
            schema: Schema::new(vec![Column::new("x", DataType::new(DataTypeKind::Int))]),
        }
        .into(),
    ];
    let err = run("nokey", events, &sr, &[])
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("no primary key"), "{err}");
    assert!(err.contains("primary-keys"), "{err}");
}

/// Two column jobs in the same second: a quick ADD COLUMN (FINISHED), then a VARCHAR
/// widening. `SHOW ALTER ... ORDER BY CreateTime DESC LIMIT 1` names the finished ADD job
/// (one-second `CreateTime`, ties in job-id order), so an applier watching "the newest job"
/// let a 90-character name reach the table while the widening still ran, and StarRocks
/// refused it as too long for VARCHAR(80). The applier waits until no job of the table is
/// unfinished.
#[tokio::test]
async fn a_second_job_in_the_same_second_is_waited_for() {
    let sr = StarRocksEmulator::start_with(StarRocksEmulatorOptions {
        alter_job_duration: Duration::from_millis(600),
        ..StarRocksEmulatorOptions::default()
    })
    .await
    .unwrap();
    let t = orders_id();
    let mut events = create_tables();
    events.push(DataChangeEvent::insert(t.clone(), order(1, "a", "1")).into());
    events.push(
        SchemaChangeEvent::AddColumn {
            table_id: t.clone(),
            columns: vec![(
                Column::new("qty", DataType::new(DataTypeKind::Int)),
                cdc_api::ColumnPosition::Last,
            )],
        }
        .into(),
    );
    events.push(
        SchemaChangeEvent::AlterColumnType {
            table_id: t.clone(),
            types: vec![(
                "name".into(),
                DataType::new(DataTypeKind::VarChar { length: 100 }),
            )],
            comments: std::collections::BTreeMap::new(),
        }
        .into(),
    );
    // VARCHAR(20) characters are VARCHAR(80) bytes in StarRocks (4 bytes a character).
    let long = "n".repeat(90);
    let mut row = order(2, &long, "2");
    row.push(Value::Int(7));
    events.push(DataChangeEvent::insert(t.clone(), row).into());
    run("same-second-jobs", events, &sr, &[]).await.unwrap();
    let names: Vec<Option<String>> = sr
        .table_rows("shop", "orders")
        .unwrap()
        .into_iter()
        .map(|r| r[1].clone())
        .collect();
    assert_eq!(names, [Some("a".to_string()), Some(long)]);
}

#[tokio::test]
async fn schema_changes_reach_starrocks_after_their_jobs_finish() {
    let t = orders_id();
    let gone = TableId::new("shop", "gone");
    let mut events = vec![
        SchemaChangeEvent::CreateTable {
            table_id: gone.clone(),
            schema: Schema::new(vec![Column::new(
                "x",
                DataType::new(DataTypeKind::Int).not_null(),
            )])
            .with_primary_key(["x"]),
        }
        .into(),
    ];
    events.extend(create_tables());
    events.push(DataChangeEvent::insert(logs_id(), log("before truncate", 0)).into());
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
    events.push(SchemaChangeEvent::DropTable { table_id: gone }.into());

    for (name, semantic) in [("ddl-alo", "at-least-once"), ("ddl-eo", "exactly-once")] {
        // Jobs take 300 ms: rows of the new shape loaded earlier would lose values.
        let sr = StarRocksEmulator::start().await.unwrap();
        run(name, events.clone(), &sr, &[("sink.semantic", semantic)])
            .await
            .unwrap();
        let cols: Vec<(String, String)> = sr
            .table_columns("shop", "orders")
            .unwrap()
            .into_iter()
            .map(|c| (c.name, c.type_text))
            .collect();
        assert_eq!(
            cols,
            [
                ("id".to_string(), "BIGINT".to_string()),
                ("title".into(), "VARCHAR(80)".into()),
                ("ts".into(), "DATETIME".into()),
                ("qty".into(), "BIGINT".into()),
            ],
            "{name}"
        );
        assert_eq!(
            sr.table_rows("shop", "orders").unwrap(),
            vec![
                vec![
                    Some("1".into()),
                    Some("a".into()),
                    Some("2020-07-17 18:00:22.123456".into()),
                    None,
                ],
                vec![
                    Some("2".into()),
                    Some("b".into()),
                    Some("2020-07-17 18:00:22.123456".into()),
                    Some("7".into()),
                ],
                vec![
                    Some("3".into()),
                    Some("c".into()),
                    Some("2021-01-02 03:04:05".into()),
                    Some("9000000000".into()),
                ],
            ],
            "{name}"
        );
        assert_eq!(
            sr.table_rows("shop", "logs").unwrap(),
            vec![vec![Some("1".into()), Some("after truncate".into())]],
            "{name}"
        );
        assert!(sr.table_rows("shop", "gone").is_none(), "{name}");
        // Four ALTER jobs ran, all finished.
        let jobs = sr
            .execute("SHOW ALTER TABLE COLUMN FROM shop WHERE TableName = \"orders\"")
            .unwrap();
        let state = jobs.columns.iter().position(|c| c == "State").unwrap();
        assert_eq!(jobs.rows.len(), 4, "{name}: {jobs:?}");
        assert!(
            jobs.rows
                .iter()
                .all(|r| r[state].as_deref() == Some("FINISHED"))
        );
        // Replaying the changes (as after a crash) is harmless.
        run(
            &format!("{name}-again"),
            events.clone(),
            &sr,
            &[("sink.semantic", semantic)],
        )
        .await
        .unwrap();
        assert_eq!(
            sr.table_columns("shop", "orders").unwrap().len(),
            4,
            "{name}"
        );
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

/// A load whose answer takes longer than the sink waits is retried with the same label
/// and loads once.
#[tokio::test]
async fn a_load_slower_than_the_socket_timeout_is_retried_and_loads_once() {
    for (name, extra) in [
        ("slow-alo", ("sink.semantic", "at-least-once")),
        ("slow-eo", ("sink.semantic", "exactly-once")),
        (
            "slow-plain",
            ("sink.at-least-once.use-transaction-stream-load", "false"),
        ),
    ] {
        let sr = StarRocksEmulator::start().await.unwrap();
        sr.inject(StarRocksFault::Slow {
            delay: Duration::from_secs(2),
            count: 1,
        });
        run(
            name,
            workload(),
            &sr,
            &[
                ("sink.socket.timeout-ms", "700"),
                ("sink.max-retries", "8"),
                extra,
            ],
        )
        .await
        .unwrap();
        assert_target(&sr);
        assert_no_label_twice(&sr);
        let log = sr.load_log();
        let mut labels: Vec<&str> = log.iter().map(|l| l.label.as_str()).collect();
        labels.sort_unstable();
        labels.dedup();
        assert!(
            log.len() > labels.len()
                || log
                    .iter()
                    .any(|l| l.status != "OK" && l.status != "Success"),
            "{name}: no load was retried: {log:?}"
        );
    }
}

/// The BE is down for a while (connections refused); the sink keeps retrying and the
/// pipeline ends with every row in place.
#[tokio::test]
async fn the_pipeline_survives_a_be_outage() {
    for (name, semantic) in [
        ("bedown-alo", "at-least-once"),
        ("bedown-eo", "exactly-once"),
    ] {
        let sr = Arc::new(StarRocksEmulator::start().await.unwrap());
        sr.inject(StarRocksFault::BeDown(true));
        register_event_set(name, workload());
        let def = definition(
            name,
            &sr,
            &[("sink.max-retries", "1000"), ("sink.semantic", semantic)],
        );
        let pipeline = Pipeline::build(&def, &registry()).unwrap();
        let task = tokio::spawn(pipeline.run(std::future::pending()));
        let probe = sr.clone();
        wait_until(30, "loads retried while the BE is down", || {
            probe.fe_load_requests() >= 4
        })
        .await;
        assert!(
            !task.is_finished(),
            "{name}: the pipeline ended while the BE was down"
        );
        assert!(sr.load_log().is_empty());
        sr.inject(StarRocksFault::BeDown(false));
        tokio::time::timeout(Duration::from_secs(60), task)
            .await
            .expect("pipeline timed out")
            .unwrap()
            .unwrap();
        assert_target(&sr);
    }
}

/// `cdc validate --connect`: both ports answer and accept the credentials, or the error
/// says which does not.
#[tokio::test]
async fn preflight_checks_both_ports() {
    use cdc_api::{FactoryContext, Options, SinkFactory};
    let sr = StarRocksEmulator::start().await.unwrap();
    let parts = |password: &str| {
        let mut options = Options::new("sink");
        options.insert(
            "jdbc-url",
            format!("jdbc:mysql://{}", sr.fe_mysql_address()),
        );
        options.insert("load-url", sr.fe_http_address());
        options.insert("username", "root");
        options.insert("password", password);
        StarRocksSinkFactory
            .create(&FactoryContext {
                pipeline_name: "p".into(),
                options,
                pipeline_options: Options::new("pipeline"),
            })
            .unwrap()
    };
    let found = parts("").applier.preflight().await.unwrap();
    assert_eq!(found.len(), 2, "{found:?}");
    assert!(found[0].contains("MySQL port"), "{found:?}");
    let err = parts("bad")
        .applier
        .preflight()
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("Access denied"), "{err}");
}

/// The `ErrorURL` of a rejected load comes from the server's answer: when it names a host
/// the user did not configure, the log is asked for without the credentials.
#[tokio::test]
async fn an_error_url_elsewhere_gets_no_credentials() {
    let elsewhere = cdc_testkit::RequestRecorder::start("Reason: see elsewhere")
        .await
        .unwrap();
    let sr = StarRocksEmulator::start_with(StarRocksEmulatorOptions {
        users: vec![("root".into(), "s3cret-pw".into())],
        error_url_base: Some(elsewhere.url().to_string()),
        ..StarRocksEmulatorOptions::default()
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
    let err = run("error-url", events, &sr, &[("password", "s3cret-pw")])
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

/// Under lenient a dropped NOT NULL column stays in the target and becomes nullable, so the
/// rows after the drop, which carry NULL there, load instead of being refused.
#[tokio::test]
async fn lenient_makes_a_dropped_not_null_column_nullable() {
    let sr = StarRocksEmulator::start().await.unwrap();
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
    register_event_set("sr-lenient-drop", events);
    let mut definition = definition("sr-lenient-drop", &sr, &[]);
    definition
        .pipeline
        .insert("schema.change.behavior", "lenient");
    let summary = tokio::time::timeout(
        Duration::from_secs(60),
        Pipeline::build(&definition, &registry())
            .unwrap()
            .run(std::future::pending()),
    )
    .await
    .expect("pipeline timed out");
    summary.unwrap();
    let mut rows = sr.table_rows("shop", "dropped").unwrap();
    rows.sort();
    assert_eq!(
        rows,
        [
            vec![Some("1".to_string()), Some("10".to_string())],
            vec![Some("2".to_string()), None]
        ]
    );
}

/// A load body of many megabytes reaches the table in both delivery modes with default
/// options: it goes straight to the BE (the one the FE redirected the transaction's
/// `begin` to, or the one an unlabelled, bodiless probe was redirected to), since an FE
/// answers 307 before reading a body and closes the connection.
#[tokio::test]
async fn load_bodies_go_straight_to_the_backend() {
    const ROWS: i32 = 4_000;
    for semantic in ["exactly-once", "at-least-once"] {
        let sr = StarRocksEmulator::start().await.unwrap();
        let t = TableId::new("shop", "big");
        let mut events: Vec<Event> = vec![
            SchemaChangeEvent::CreateTable {
                table_id: t.clone(),
                schema: Schema::new(vec![
                    Column::new("id", DataType::new(DataTypeKind::Int).not_null()),
                    Column::new("s", DataType::new(DataTypeKind::String)),
                ])
                .with_primary_key(["id"]),
            }
            .into(),
        ];
        let filler = "x".repeat(1_000);
        for i in 0..ROWS {
            events.push(
                DataChangeEvent::insert(
                    t.clone(),
                    vec![Value::Int(i), Value::String(filler.clone())],
                )
                .into(),
            );
        }
        let name = format!("sr-big-{semantic}");
        register_event_set(&name, events);
        let mut definition = definition(&name, &sr, &[("sink.semantic", semantic)]);
        // One batch: the whole table in one load of about 4 MB.
        definition
            .source
            .options
            .insert("batch-size", ROWS.to_string());
        let summary = tokio::time::timeout(
            Duration::from_secs(120),
            Pipeline::build(&definition, &registry())
                .unwrap()
                .run(std::future::pending()),
        )
        .await
        .expect("pipeline timed out");
        summary.unwrap_or_else(|e| panic!("{semantic}: {e}"));
        assert_eq!(
            sr.table_rows("shop", "big").unwrap().len(),
            ROWS as usize,
            "{semantic}"
        );
        assert!(
            sr.fe_load_requests() > 0,
            "{semantic}: nothing asked the FE"
        );
        assert_eq!(
            sr.fe_body_requests(),
            0,
            "{semantic}: a body was sent to the FE"
        );
    }
}

/// A table keyed by `id` whose `v` is NOT NULL, and three rows of which the second has a
/// NULL `v`.
fn one_bad_row(table: &str) -> Vec<Event> {
    let t = TableId::new("shop", table);
    vec![
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
        DataChangeEvent::insert(t.clone(), vec![Value::Int(2), Value::Null]).into(),
        DataChangeEvent::insert(t, vec![Value::Int(3), Value::Int(30)]).into(),
    ]
}

/// A fresh dead-letter file path in a fresh directory.
fn dead_letter_path(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("cdc-sr-dl-{}-{name}", std::process::id()));
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

/// With `sink.dead-letter.path` the rejected row is written there with StarRocks's reason,
/// the row as it reported it, the load's label and checkpoint, while the other rows land
/// (once: every transaction is visible or aborted, none left prepared), for the
/// transaction interface in both semantics and for plain Stream Loads.
#[tokio::test]
async fn a_rejected_row_goes_to_the_dead_letter_file_and_the_rest_loads_once() {
    for (name, semantic, transactions) in [
        ("dl-eo", "exactly-once", "true"),
        ("dl-alo", "at-least-once", "true"),
        ("dl-plain", "at-least-once", "false"),
    ] {
        let sr = StarRocksEmulator::start().await.unwrap();
        let path = dead_letter_path(name);
        let table = name.replace('-', "_");
        run(
            name,
            one_bad_row(&table),
            &sr,
            &[
                ("sink.semantic", semantic),
                (
                    "sink.at-least-once.use-transaction-stream-load",
                    transactions,
                ),
                ("sink.dead-letter.path", path.to_str().unwrap()),
            ],
        )
        .await
        .unwrap();
        let mut rows = sr.table_rows("shop", &table).unwrap();
        rows.sort();
        assert_eq!(
            rows,
            [
                vec![Some("1".to_string()), Some("10".to_string())],
                vec![Some("3".to_string()), Some("30".to_string())],
            ],
            "{name}"
        );
        let txns = sr.transactions();
        assert!(
            txns.iter().all(|t| t.state != StarRocksTxnState::Prepared),
            "{name}: {txns:?}"
        );
        let letters = dead_letters(&path);
        assert_eq!(letters.len(), 1, "{name}: {letters:?}");
        let l = &letters[0];
        assert_eq!(l["table"], format!("shop.{table}"), "{l}");
        assert_eq!(l["target"], "StarRocks", "{l}");
        assert_eq!(l["rows"], 1, "{l}");
        assert_eq!(l["reason"], "NULL value in non-nullable column 'v'", "{l}");
        assert!(l["row"].as_str().unwrap().contains("\"id\":2"), "{l}");
        assert!(l["label"].as_str().unwrap().contains(&table), "{l}");
        assert!(l["checkpoint"].as_u64().unwrap() >= 1, "{l}");
    }
}

/// An `ErrorURL` that cannot be read still leaves a dead letter: the count of rejected
/// rows and why their detail is missing.
#[tokio::test]
async fn an_unreadable_error_url_still_records_the_rejected_count() {
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let dead = format!("http://{}", closed.local_addr().unwrap());
    drop(closed);
    let sr = StarRocksEmulator::start_with(StarRocksEmulatorOptions {
        error_url_base: Some(dead),
        ..StarRocksEmulatorOptions::default()
    })
    .await
    .unwrap();
    let path = dead_letter_path("dl-unreadable");
    run(
        "dl-unreadable",
        one_bad_row("dl_unreadable"),
        &sr,
        &[("sink.dead-letter.path", path.to_str().unwrap())],
    )
    .await
    .unwrap();
    assert_eq!(sr.table_rows("shop", "dl_unreadable").unwrap().len(), 2);
    let letters = dead_letters(&path);
    assert_eq!(letters.len(), 1, "{letters:?}");
    assert_eq!(letters[0]["rows"], 1);
    assert!(letters[0]["row"].is_null());
    let reason = letters[0]["reason"].as_str().unwrap();
    assert!(reason.contains("could not be fetched"), "{reason}");
}
