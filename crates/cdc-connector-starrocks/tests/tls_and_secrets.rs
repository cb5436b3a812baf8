//! HTTPS to StarRocks (the emulator serving TLS with a CA made at start), and passwords
//! that never show in errors.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use cdc_api::{
    Column, ConnectorRegistry, DataChangeEvent, DataType, DataTypeKind, Event, Schema,
    SchemaChangeEvent, TableId, Value,
};
use cdc_connector_starrocks::StarRocksSinkFactory;
use cdc_runtime::{Pipeline, PipelineDefinition, RunSummary, RuntimeError};
use cdc_testkit::{
    StarRocksEmulator, StarRocksEmulatorOptions, ValuesSourceFactory, register_event_set,
};

const SECRET: &str = "s3cr3t-Pa55";

async fn emulator(tls: bool) -> StarRocksEmulator {
    StarRocksEmulator::start_with(StarRocksEmulatorOptions {
        users: vec![("cdc".into(), SECRET.into())],
        tls,
        ..StarRocksEmulatorOptions::default()
    })
    .await
    .unwrap()
}

fn table() -> TableId {
    TableId::new("shop", "t")
}

fn workload() -> Vec<Event> {
    let schema = Schema::new(vec![
        Column::new("id", DataType::new(DataTypeKind::BigInt).not_null()),
        Column::new("v", DataType::new(DataTypeKind::VarChar { length: 5 })),
    ])
    .with_primary_key(["id"]);
    let mut events: Vec<Event> = vec![
        SchemaChangeEvent::CreateTable {
            table_id: table(),
            schema,
        }
        .into(),
    ];
    for i in 1..=5 {
        events.push(
            DataChangeEvent::insert(
                table(),
                vec![Value::BigInt(i), Value::String(format!("v{i}"))],
            )
            .into(),
        );
    }
    events
}

async fn run(
    name: &str,
    sr: &StarRocksEmulator,
    sink: &[(&str, &str)],
) -> Result<RunSummary, RuntimeError> {
    register_event_set(name, workload());
    let mut sink_block = serde_json::json!({
        "type": "starrocks",
        "jdbc-url": format!("jdbc:mysql://{}", sr.fe_mysql_address()),
        "load-url": sr.fe_http_address(),
        "username": "cdc",
        "password": SECRET,
        "table.create.properties.replication_num": "1",
        "sink.max-retries": "1",
    });
    for (k, v) in sink {
        sink_block[*k] = serde_json::Value::String((*v).to_string());
    }
    let yaml = serde_json::json!({
        "source": {"type": "values", "event-set": name, "batch-size": "2", "batch-interval": "10ms"},
        "sink": sink_block,
        "pipeline": {"name": name, "schema.change.behavior": "evolve", "checkpoint.interval": "100ms", "local-time-zone": "UTC", "state.dir": "none"},
    })
    .to_string();
    let definition = PipelineDefinition::from_yaml_str(&yaml, name).unwrap();
    let mut registry = ConnectorRegistry::new();
    registry
        .register_source(ValuesSourceFactory)
        .register_sink(StarRocksSinkFactory);
    let pipeline = Pipeline::build(&definition, &registry)?;
    tokio::time::timeout(
        Duration::from_secs(60),
        pipeline.run(std::future::pending()),
    )
    .await
    .expect("pipeline timed out")
}

#[tokio::test]
async fn loads_over_https_with_the_ca() {
    for semantic in ["at-least-once", "exactly-once"] {
        let sr = emulator(true).await;
        assert!(sr.fe_http_address().starts_with("https://"));
        let ca = sr.tls().unwrap().ca_path().to_str().unwrap().to_string();
        run(
            &format!("sr-tls-{semantic}"),
            &sr,
            &[("sink.ssl.ca-path", &ca), ("sink.semantic", semantic)],
        )
        .await
        .unwrap();
        let rows = sr.table_rows("shop", "t").unwrap();
        assert_eq!(rows.len(), 5, "{semantic}: {rows:?}");
        assert!(sr.fe_load_requests() > 0);
    }
}

#[tokio::test]
async fn an_untrusted_certificate_stops_with_an_error_naming_tls() {
    let sr = emulator(true).await;
    let err = run("sr-tls-noca", &sr, &[]).await.unwrap_err().to_string();
    assert!(err.contains("certificate") && err.contains("TLS"), "{err}");
    assert!(err.contains("sink.ssl.ca-path"), "{err}");
    assert!(!err.contains(SECRET), "{err}");
}

#[tokio::test]
async fn errors_never_show_the_password() {
    let sr = emulator(false).await;
    let err = run("sr-badpw", &sr, &[("password", "s3cr3t-wrong")])
        .await
        .unwrap_err()
        .to_string();
    assert!(
        !err.contains("s3cr3t-wrong") && !err.contains(SECRET),
        "{err}"
    );
    // nothing listens on the load-url
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    let err = run(
        "sr-down",
        &sr,
        &[("load-url", &format!("127.0.0.1:{port}"))],
    )
    .await
    .unwrap_err()
    .to_string();
    assert!(!err.contains(SECRET), "{err}");
}
