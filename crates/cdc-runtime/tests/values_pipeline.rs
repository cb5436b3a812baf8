//! values -> values pipelines through the runtime: order, checkpoints, restart, stop.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers may panic

use std::sync::Arc;
use std::time::Duration;

use cdc_api::{
    Column, ColumnPosition, DataChangeEvent, DataType, DataTypeKind, Event, Schema,
    SchemaChangeEvent, TableId, Value,
};
use cdc_runtime::{MemoryStateStore, Pipeline, PipelineDefinition, StateStore};
use cdc_testkit::{register_event_set, test_registry, values_database};

fn events(tables: usize, rows: i64) -> Vec<Event> {
    let mut out = Vec::new();
    for t in 0..tables {
        let id = TableId::new("db", format!("t{t}"));
        out.push(
            SchemaChangeEvent::CreateTable {
                table_id: id.clone(),
                schema: Schema::new(vec![
                    Column::new("id", DataType::new(DataTypeKind::BigInt).not_null()),
                    Column::new("v", DataType::new(DataTypeKind::String)),
                ])
                .with_primary_key(["id"]),
            }
            .into(),
        );
    }
    for i in 0..rows {
        let id = TableId::new("db", format!("t{}", i as usize % tables));
        out.push(
            DataChangeEvent::insert(
                id.clone(),
                vec![Value::BigInt(i), Value::String(format!("v{i}"))],
            )
            .into(),
        );
        if i % 7 == 0 {
            out.push(
                DataChangeEvent::update(
                    id.clone(),
                    vec![Value::BigInt(i), Value::String(format!("v{i}"))],
                    vec![Value::BigInt(i), Value::String(format!("u{i}"))],
                )
                .into(),
            );
        }
        if i % 11 == 0 {
            out.push(
                DataChangeEvent::delete(id, vec![Value::BigInt(i), Value::String(String::new())])
                    .into(),
            );
        }
    }
    out.push(
        SchemaChangeEvent::AddColumn {
            table_id: TableId::new("db", "t0"),
            columns: vec![(
                Column::new("extra", DataType::new(DataTypeKind::Int)),
                ColumnPosition::Last,
            )],
        }
        .into(),
    );
    out.push(
        DataChangeEvent::insert(
            TableId::new("db", "t0"),
            vec![
                Value::BigInt(rows),
                Value::String("after".into()),
                Value::Int(42),
            ],
        )
        .into(),
    );
    out
}

fn yaml(set: &str, sink: &str, extra_source: &str) -> PipelineDefinition {
    let text = format!(
        "source: {{type: values, event-set: {set}, batch-size: 37{extra_source}}}\n\
         sink: {{type: values, sink-id: {sink}}}\n\
         pipeline: {{state.dir: none, name: test-{sink}, checkpoint.interval: 100ms, schema.change.behavior: evolve}}\n"
    );
    PipelineDefinition::from_yaml_str(&text, "test.yaml").unwrap()
}

#[tokio::test]
async fn every_event_arrives_in_order() {
    let evs = events(3, 2000);
    register_event_set("ordered", evs.clone());
    let pipeline = Pipeline::build(&yaml("ordered", "ordered", ""), &test_registry()).unwrap();
    let summary = pipeline.run(std::future::pending()).await.unwrap();
    assert!(summary.checkpoints >= 1);
    let db = values_database("ordered");
    let db = db.lock().unwrap();
    assert_eq!(
        db.log, evs,
        "the sink must see exactly the source's events, in order"
    );
    let t0 = &db.tables[&TableId::new("db", "t0")];
    assert_eq!(t0.schema.columns.len(), 3);
    assert_eq!(
        t0.rows.last().unwrap(),
        &vec![
            Value::BigInt(2000),
            Value::String("after".into()),
            Value::Int(42)
        ]
    );
}

#[tokio::test]
async fn a_failed_run_resumes_exactly_once() {
    let evs = events(2, 3000);
    register_event_set("resume", evs.clone());
    let state: Arc<dyn StateStore> = Arc::new(MemoryStateStore::default());
    // First run: the source fails part-way; nothing after the last checkpoint is committed.
    let mut fail_at = 900;
    let mut runs = 0;
    loop {
        runs += 1;
        let mut extra = ", batch-interval: 5ms".to_string();
        if fail_at < evs.len() {
            extra.push_str(&format!(", fail-at: {fail_at}"));
        }
        let pipeline = Pipeline::build(&yaml("resume", "resume", &extra), &test_registry())
            .unwrap()
            .with_state_store(state.clone());
        let result = pipeline.run(std::future::pending()).await;
        if fail_at < evs.len() {
            let err = result.unwrap_err().to_string();
            assert!(err.contains("injected failure"), "{err}");
            fail_at += 1100;
        } else {
            let summary = result.unwrap();
            assert!(summary.resumed);
            break;
        }
    }
    assert!(runs >= 3);
    let db = values_database("resume");
    let db = db.lock().unwrap();
    // Re-announced CreateTable events are absorbed by the runtime; data arrives once.
    let data = |log: &[Event]| -> Vec<Event> {
        log.iter()
            .filter(|e| matches!(e, Event::DataChange(_)))
            .cloned()
            .collect()
    };
    assert_eq!(
        data(&db.log),
        data(&evs),
        "no event lost or repeated across restarts"
    );
}

#[tokio::test]
async fn stop_takes_a_final_checkpoint() {
    let evs = events(1, 500);
    register_event_set("stoppable", evs.clone());
    let def = yaml("stoppable", "stoppable", ", unbounded: true");
    let handle = Pipeline::build(&def, &test_registry()).unwrap().spawn();
    let db = values_database("stoppable");
    // Wait until the data is committed by a periodic checkpoint, then stop.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while db.lock().unwrap().log.len() < evs.len() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "pipeline did not deliver in time"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    handle.stop();
    let summary = handle.join().await.unwrap();
    assert!(summary.checkpoints >= 2);
    assert_eq!(db.lock().unwrap().log, evs);
}

#[tokio::test]
async fn unknown_and_missing_options_are_named() {
    let cases = [
        (
            "source: {type: values, event-sett: x}\nsink: {type: values}\npipeline: {name: p}",
            "unknown option 'event-sett' for connector 'values' (did you mean 'event-set'?)",
        ),
        (
            "source: {type: valuez}\nsink: {type: values}\npipeline: {name: p}",
            "no source connector 'valuez' (did you mean 'values'?)",
        ),
        (
            "source: {type: values}\nsink: {type: values, sink-id: a, batch: 1}\npipeline: {name: p}",
            "unknown option 'batch'",
        ),
        (
            "source: {type: values, batch-size: many}\nsink: {type: values}\npipeline: {name: p}",
            "source.batch-size",
        ),
    ];
    for (text, expected) in cases {
        let def = PipelineDefinition::from_yaml_str(text, "p.yaml").unwrap();
        let err = Pipeline::build(&def, &test_registry())
            .unwrap_err()
            .to_string();
        assert!(err.contains(expected), "{text}\n gave: {err}");
    }
}

#[tokio::test]
async fn metrics_endpoint_serves_the_named_series() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let evs = events(2, 100);
    register_event_set("metrics", evs.clone());
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let text = format!(
        "source: {{type: values, event-set: metrics, unbounded: true}}\n\
         sink: {{type: values, sink-id: metrics}}\n\
         pipeline: {{state.dir: none, name: metrics, checkpoint.interval: 100ms, metrics.port: {port}}}\n"
    );
    let def = PipelineDefinition::from_yaml_str(&text, "m.yaml").unwrap();
    let handle = Pipeline::build(&def, &test_registry()).unwrap().spawn();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    let mut last = String::new();
    let body = loop {
        assert!(
            tokio::time::Instant::now() < deadline,
            "metrics never showed the changes: {last}"
        );
        if let Ok(mut stream) = tokio::net::TcpStream::connect(("127.0.0.1", port)).await {
            stream
                .write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
                .await
                .unwrap();
            let mut body = String::new();
            stream.read_to_string(&mut body).await.unwrap();
            last.clone_from(&body);
            if body.contains("cdc_changes_total{table=\"db.t0\",op=\"insert\"} 51")
                && handle.metrics().checkpoints() > 0
            {
                break body;
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    // A hundred idle connections (a scan, a leak, an attack) neither stop the pipeline
    // nor keep a probe out for long: the endpoint serves a bounded number at once and
    // drops the idle ones after its timeout.
    let mut idle = Vec::new();
    for _ in 0..100 {
        idle.push(
            tokio::net::TcpStream::connect(("127.0.0.1", port))
                .await
                .unwrap(),
        );
    }
    let checkpoints = handle.metrics().checkpoints();
    let probe = async {
        let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .unwrap();
        stream
            .write_all(b"GET /readyz HTTP/1.1\r\nHost: x\r\n\r\n")
            .await
            .unwrap();
        let mut answer = String::new();
        stream.read_to_string(&mut answer).await.unwrap();
        answer
    };
    let answer = tokio::time::timeout(Duration::from_secs(60), probe)
        .await
        .expect("/readyz never answered behind the idle connections");
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(
        handle.metrics().checkpoints() > checkpoints && !handle.is_finished(),
        "the pipeline stalled while the endpoint was flooded"
    );
    drop(idle);
    for series in [
        "cdc_schema_changes_total",
        "cdc_checkpoints_total",
        "cdc_last_checkpoint_timestamp_seconds",
        "cdc_last_checkpoint_duration_seconds",
        "op=\"delete\"",
    ] {
        assert!(body.contains(series), "{series} missing from\n{body}");
    }
    handle.stop();
    handle.join().await.unwrap();
}

#[tokio::test]
async fn routes_rename_tables_and_merge_shards() {
    let shard = |n: u32| TableId::new(format!("shard_{n}"), "users");
    let mut evs: Vec<Event> = Vec::new();
    for n in 1..=2 {
        let mut columns = vec![
            Column::new("id", DataType::new(DataTypeKind::BigInt).not_null()),
            Column::new(
                "name",
                DataType::new(DataTypeKind::VarChar { length: 10 * n }),
            ),
        ];
        if n == 2 {
            columns.push(Column::new("email", DataType::new(DataTypeKind::String)));
        }
        evs.push(
            SchemaChangeEvent::CreateTable {
                table_id: shard(n),
                schema: Schema::new(columns).with_primary_key(["id"]),
            }
            .into(),
        );
    }
    evs.push(
        DataChangeEvent::insert(shard(1), vec![Value::BigInt(1), Value::String("a".into())]).into(),
    );
    evs.push(
        DataChangeEvent::insert(
            shard(2),
            vec![
                Value::BigInt(2),
                Value::String("b".into()),
                Value::String("b@x".into()),
            ],
        )
        .into(),
    );
    let orders = TableId::new("app", "orders");
    evs.push(
        SchemaChangeEvent::CreateTable {
            table_id: orders.clone(),
            schema: Schema::new(vec![Column::new("id", DataType::new(DataTypeKind::Int))]),
        }
        .into(),
    );
    evs.push(DataChangeEvent::insert(orders, vec![Value::Int(9)]).into());
    register_event_set("routes", evs);
    let text = "source: {type: values, event-set: routes}\n\
                sink: {type: values, sink-id: routes}\n\
                route:\n\
                \x20 - {source-table: 'shard_\\.*.users', sink-table: all.users, description: merge shards}\n\
                \x20 - {source-table: 'app.\\.*', sink-table: 'ods.ods_<>', replace-symbol: '<>'}\n\
                pipeline: {state.dir: none, name: routes, schema.change.behavior: evolve}\n";
    let def = PipelineDefinition::from_yaml_str(text, "routes.yaml").unwrap();
    Pipeline::build(&def, &test_registry())
        .unwrap()
        .run(std::future::pending())
        .await
        .unwrap();
    let db = values_database("routes");
    let db = db.lock().unwrap();
    let users = &db.tables[&TableId::new("all", "users")];
    assert_eq!(
        users.schema.column_names().collect::<Vec<_>>(),
        ["id", "name", "email"]
    );
    assert_eq!(
        users.schema.columns[1].data_type.kind,
        DataTypeKind::String,
        "VARCHAR(10) and VARCHAR(20) merge to STRING, as in Flink CDC"
    );
    assert_eq!(
        users.sorted_text_rows(),
        [vec!["1", "a", "NULL"], vec!["2", "b", "b@x"]]
    );
    assert_eq!(
        db.tables[&TableId::new("ods", "ods_orders")].sorted_text_rows(),
        [vec!["9"]]
    );
    assert!(!db.tables.contains_key(&TableId::new("app", "orders")));
}

fn two_column_table(id: &TableId) -> Event {
    SchemaChangeEvent::CreateTable {
        table_id: id.clone(),
        schema: Schema::new(vec![
            Column::new("id", DataType::new(DataTypeKind::BigInt).not_null()),
            Column::new("v", DataType::new(DataTypeKind::String)),
        ])
        .with_primary_key(["id"]),
    }
    .into()
}

#[tokio::test]
async fn a_definition_that_drops_a_table_is_refused_until_reset() {
    let evs = events(2, 200);
    register_event_set("dropped-table", evs.clone());
    let state: Arc<dyn StateStore> = Arc::new(MemoryStateStore::default());
    let run = |extra: &str, reset: bool| {
        let pipeline = Pipeline::build(
            &yaml("dropped-table", "dropped-table", extra),
            &test_registry(),
        )
        .unwrap()
        .with_state_store(state.clone())
        .with_reset(reset);
        pipeline.run(std::future::pending())
    };
    let first = run("", false).await.unwrap();
    let first_cp = first.last_checkpoint.unwrap();
    let saved = state.load().await.unwrap().unwrap();
    assert_eq!(
        saved.schemas.source_tables,
        [TableId::new("db", "t0"), TableId::new("db", "t1")]
    );
    assert_eq!(saved.schemas.targets.len(), 2, "{saved:?}");

    let err = run(", tables: db.t0", false).await.unwrap_err().to_string();
    assert!(
        err.contains("no longer captures: db.t1") && err.contains("cdc run --reset"),
        "{err}"
    );
    assert_eq!(
        state.load().await.unwrap().unwrap().id,
        first_cp,
        "a refused run keeps the checkpoint"
    );

    let reset = run(", tables: db.t0", true).await.unwrap();
    assert!(!reset.resumed);
    assert!(
        reset.last_checkpoint.unwrap() > first_cp,
        "numbering continues after a reset, so sink labels never repeat"
    );
    let saved = state.load().await.unwrap().unwrap();
    assert_eq!(saved.schemas.source_tables, [TableId::new("db", "t0")]);
}

#[tokio::test]
async fn target_schemas_survive_a_restart() {
    // Under lenient a dropped column stays in the target. After a restart the source
    // re-announces the table without it; the runtime must still know the target has it.
    let t = TableId::new("db", "lenient");
    let mut evs = vec![
        SchemaChangeEvent::CreateTable {
            table_id: t.clone(),
            schema: Schema::new(vec![
                Column::new("id", DataType::new(DataTypeKind::BigInt).not_null()),
                Column::new("v", DataType::new(DataTypeKind::String)),
                Column::new("gone", DataType::new(DataTypeKind::Int)),
            ])
            .with_primary_key(["id"]),
        }
        .into(),
    ];
    evs.push(
        DataChangeEvent::insert(
            t.clone(),
            vec![Value::BigInt(1), Value::String("a".into()), Value::Int(7)],
        )
        .into(),
    );
    evs.push(
        SchemaChangeEvent::DropColumn {
            table_id: t.clone(),
            columns: vec!["gone".into()],
        }
        .into(),
    );
    for i in 2..40 {
        evs.push(
            DataChangeEvent::insert(t.clone(), vec![Value::BigInt(i), Value::String("b".into())])
                .into(),
        );
    }
    let fail_at = 20;
    register_event_set("lenient-restart", evs.clone());
    let state: Arc<dyn StateStore> = Arc::new(MemoryStateStore::default());
    for extra in [
        format!(", batch-size: 3, batch-interval: 30ms, fail-at: {fail_at}"),
        String::new(),
    ] {
        let text = format!(
            "source: {{type: values, event-set: lenient-restart{extra}}}\n\
             sink: {{type: values, sink-id: lenient-restart}}\n\
             pipeline: {{state.dir: none, name: lenient-restart, checkpoint.interval: 100ms, schema.change.behavior: lenient}}\n"
        );
        let def = PipelineDefinition::from_yaml_str(&text, "l.yaml").unwrap();
        let result = Pipeline::build(&def, &test_registry())
            .unwrap()
            .with_state_store(state.clone())
            .run(std::future::pending())
            .await;
        if extra.is_empty() {
            assert!(result.unwrap().resumed);
        } else {
            assert!(result.is_err());
        }
    }
    let saved = state.load().await.unwrap().unwrap();
    let target = &saved.schemas.targets[0];
    assert_eq!(
        target.target.column_names().collect::<Vec<_>>(),
        ["id", "v", "gone"]
    );
    assert_eq!(
        target.upstream.column_names().collect::<Vec<_>>(),
        ["id", "v"]
    );
    let db = values_database("lenient-restart");
    let db = db.lock().unwrap();
    let table = &db.tables[&t];
    assert_eq!(
        table.schema.column_names().collect::<Vec<_>>(),
        ["id", "v", "gone"]
    );
    assert_eq!(table.rows.len(), 39, "every row once");
    assert!(
        table.rows.iter().all(|r| r.len() == 3),
        "rows fit the target"
    );
    assert_eq!(
        table.rows[0],
        vec![Value::BigInt(1), Value::String("a".into()), Value::Int(7)]
    );
}

#[tokio::test]
async fn sharded_merge_continues_after_a_restart() {
    // Two shards merged into one target; after a restart the first shard re-announced
    // alone must not shrink the merged schema.
    let shard = |n: u32| TableId::new(format!("s{n}"), "users");
    let mut evs: Vec<Event> = vec![two_column_table(&shard(1))];
    evs.push(
        SchemaChangeEvent::CreateTable {
            table_id: shard(2),
            schema: Schema::new(vec![
                Column::new("id", DataType::new(DataTypeKind::BigInt).not_null()),
                Column::new("v", DataType::new(DataTypeKind::String)),
                Column::new("email", DataType::new(DataTypeKind::String)),
            ])
            .with_primary_key(["id"]),
        }
        .into(),
    );
    for i in 0..30 {
        let row = if i % 2 == 0 {
            DataChangeEvent::insert(shard(1), vec![Value::BigInt(i), Value::String("x".into())])
        } else {
            DataChangeEvent::insert(
                shard(2),
                vec![
                    Value::BigInt(i),
                    Value::String("y".into()),
                    Value::String("e".into()),
                ],
            )
        };
        evs.push(row.into());
    }
    register_event_set("merge-restart", evs);
    let state: Arc<dyn StateStore> = Arc::new(MemoryStateStore::default());
    for extra in [", batch-size: 4, batch-interval: 30ms, fail-at: 17", ""] {
        let text = format!(
            "source: {{type: values, event-set: merge-restart{extra}}}\n\
             sink: {{type: values, sink-id: merge-restart}}\n\
             route: [{{source-table: 's\\.*.users', sink-table: all.users}}]\n\
             pipeline: {{state.dir: none, name: merge-restart, checkpoint.interval: 100ms, schema.change.behavior: evolve}}\n"
        );
        let def = PipelineDefinition::from_yaml_str(&text, "m.yaml").unwrap();
        let result = Pipeline::build(&def, &test_registry())
            .unwrap()
            .with_state_store(state.clone())
            .run(std::future::pending())
            .await;
        assert_eq!(result.is_ok(), extra.is_empty(), "{result:?}");
    }
    let saved = state.load().await.unwrap().unwrap();
    assert_eq!(saved.schemas.routed_sources.len(), 2);
    assert_eq!(saved.schemas.routed_targets.len(), 1);
    let db = values_database("merge-restart");
    let db = db.lock().unwrap();
    let users = &db.tables[&TableId::new("all", "users")];
    assert_eq!(
        users.schema.column_names().collect::<Vec<_>>(),
        ["id", "v", "email"]
    );
    assert_eq!(users.rows.len(), 30);
}

#[tokio::test]
async fn metrics_show_source_and_sink_progress() {
    let evs = events(1, 50);
    register_event_set("progress-metrics", evs);
    let def = yaml("progress-metrics", "progress-metrics", "");
    let pipeline = Pipeline::build(&def, &test_registry()).unwrap();
    let metrics = pipeline.metrics();
    pipeline.run(std::future::pending()).await.unwrap();
    assert!(metrics.source_progress().streaming);
    let text = metrics.render_prometheus();
    for series in [
        "cdc_source_events_total{table=\"db.t0\"} 64",
        "cdc_source_streaming 1",
        "cdc_sink_loads_total",
        "cdc_sink_retries_total",
    ] {
        assert!(text.contains(series), "{series} missing from\n{text}");
    }
}
