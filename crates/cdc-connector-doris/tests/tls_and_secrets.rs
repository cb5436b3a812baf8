//! HTTPS to Doris (the emulator serving TLS with a CA made at start), and passwords that
//! never show in errors or logs.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::Write;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use cdc_api::{
    Column, ConnectorRegistry, DataChangeEvent, DataType, DataTypeKind, Event, Schema,
    SchemaChangeEvent, TableId, Value,
};
use cdc_connector_doris::DorisSinkFactory;
use cdc_runtime::{Pipeline, PipelineDefinition, RunSummary, RuntimeError};
use cdc_testkit::{
    DorisEmulator, DorisEmulatorOptions, DorisFault, ValuesSourceFactory, register_event_set,
};

/// The password of every emulator here; it must appear in no error and no log line.
const SECRET: &str = "s3cr3t-Pa55";

/// Every log line of this test binary (all levels).
fn logs() -> &'static Arc<Mutex<Vec<u8>>> {
    static LOGS: OnceLock<Arc<Mutex<Vec<u8>>>> = OnceLock::new();
    LOGS.get_or_init(|| {
        let buf = Arc::new(Mutex::new(Vec::new()));
        let writer = buf.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_max_level(tracing::Level::TRACE)
            .with_ansi(false)
            .with_writer(move || LogWriter(writer.clone()))
            .finish();
        let _ = tracing::subscriber::set_global_default(subscriber);
        buf
    })
}

struct LogWriter(Arc<Mutex<Vec<u8>>>);

impl Write for LogWriter {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(data);
        Ok(data.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn assert_no_secret_in_logs() {
    let text = String::from_utf8_lossy(&logs().lock().unwrap()).into_owned();
    assert!(!text.is_empty(), "no log line was captured");
    assert!(
        !text.contains(SECRET),
        "the password is in the logs:\n{text}"
    );
}

async fn emulator(tls: bool) -> DorisEmulator {
    logs();
    DorisEmulator::start_with(DorisEmulatorOptions {
        users: vec![("cdc".into(), SECRET.into())],
        tls,
        ..DorisEmulatorOptions::default()
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
    events: Vec<Event>,
    fe: &str,
    sink: &[(&str, &str)],
) -> Result<RunSummary, RuntimeError> {
    register_event_set(name, events);
    let mut sink_block = serde_json::json!({
        "type": "doris",
        "fenodes": fe,
        "username": "cdc",
        "password": SECRET,
        "table.create.properties.replication_num": "1",
        "sink.check-interval": "100ms",
        "sink.max-retries": "1",
    });
    for (k, v) in sink {
        sink_block[*k] = serde_json::Value::String((*v).to_string());
    }
    let yaml = serde_json::json!({
        "source": {"type": "values", "event-set": name, "batch-size": "2", "batch-interval": "10ms"},
        "sink": sink_block,
        // No restart after a failure: these tests look at the error a failed run reports.
        "pipeline": {"name": name, "schema.change.behavior": "evolve", "checkpoint.interval": "100ms", "local-time-zone": "UTC", "state.dir": "none", "restart-strategy.type": "none"},
    })
    .to_string();
    let definition = PipelineDefinition::from_yaml_str(&yaml, name).unwrap();
    let mut registry = ConnectorRegistry::new();
    registry
        .register_source(ValuesSourceFactory)
        .register_sink(DorisSinkFactory);
    let pipeline = Pipeline::build(&definition, &registry)?;
    tokio::time::timeout(
        Duration::from_secs(60),
        pipeline.run(std::future::pending()),
    )
    .await
    .expect("pipeline timed out")
}

fn expected() -> Vec<Vec<Option<String>>> {
    (1..=5)
        .map(|i| vec![Some(i.to_string()), Some(format!("v{i}"))])
        .collect()
}

/// How the sink reaches the BEs in a test.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Route {
    /// `auto-redirect: true`: through the FE's 307.
    Redirect,
    /// The default: the BEs the FE lists (over https, the FE's scheme).
    Discovered,
    /// `benodes`.
    Benodes,
}

#[tokio::test]
async fn loads_over_https_with_the_ca_through_the_fe_redirect_and_to_the_bes() {
    for (name, two_phase, route) in [
        ("tls-alo", "false", Route::Redirect),
        ("tls-2pc", "true", Route::Redirect),
        ("tls-disc-alo", "false", Route::Discovered),
        ("tls-disc-2pc", "true", Route::Discovered),
        ("tls-be", "true", Route::Benodes),
    ] {
        let doris = emulator(true).await;
        let fe = doris.fe_address();
        assert!(fe.starts_with("https://"), "{fe}");
        let ca = doris.tls().unwrap().ca_path().to_str().unwrap().to_string();
        let be = doris.be_address();
        let mut sink = vec![
            ("sink.ssl.ca-path", ca.as_str()),
            ("sink.enable-2pc", two_phase),
        ];
        match route {
            Route::Redirect => sink.push(("auto-redirect", "true")),
            Route::Discovered => {}
            Route::Benodes => sink.push(("benodes", be.as_str())),
        }
        run(name, workload(), &fe, &sink).await.unwrap();
        assert_eq!(doris.table_rows("shop", "t").unwrap(), expected(), "{name}");
        if route == Route::Redirect {
            assert!(doris.fe_stream_load_requests() > 0, "{name}");
        } else {
            assert_eq!(doris.fe_stream_load_requests(), 0, "{name}");
            assert!(doris.be_stream_load_requests(0) > 0, "{name}");
        }
        assert_eq!(
            doris.fe_backend_list_requests() > 0,
            route == Route::Discovered,
            "{name}"
        );
    }
    assert_no_secret_in_logs();
}

#[tokio::test]
async fn an_untrusted_certificate_stops_with_an_error_naming_tls() {
    let doris = emulator(true).await;
    // no CA: the system roots do not know the emulator's CA
    let err = run("tls-noca", workload(), &doris.fe_address(), &[])
        .await
        .unwrap_err()
        .to_string();
    eprintln!("untrusted: {err}");
    assert!(err.contains("certificate"), "{err}");
    assert!(
        err.contains("TLS") && err.contains("sink.ssl.ca-path"),
        "{err}"
    );
    assert!(!err.contains(SECRET), "{err}");

    // another CA than the one that signed the server's certificate
    let other = emulator(true).await;
    let other_ca = other.tls().unwrap().ca_path().to_str().unwrap().to_string();
    let err = run(
        "tls-otherca",
        workload(),
        &doris.fe_address(),
        &[("sink.ssl.ca-path", &other_ca)],
    )
    .await
    .unwrap_err()
    .to_string();
    assert!(err.contains("certificate") && err.contains("TLS"), "{err}");
    assert!(doris.table_rows("shop", "t").is_none());
    assert_no_secret_in_logs();
}

#[tokio::test]
async fn a_bad_ca_file_is_an_option_error() {
    let doris = emulator(true).await;
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing.pem");
    let garbage = dir.path().join("garbage.pem");
    std::fs::write(&garbage, "not a certificate\n").unwrap();
    for path in [missing, garbage] {
        let err = run(
            "tls-badca",
            workload(),
            &doris.fe_address(),
            &[("sink.ssl.ca-path", path.to_str().unwrap())],
        )
        .await
        .unwrap_err()
        .to_string();
        assert!(err.contains("sink.ssl.ca-path"), "{err}");
    }
}

#[tokio::test]
async fn plain_http_to_a_tls_emulator_fails_without_the_password() {
    let doris = emulator(true).await;
    let plain = doris.fe_address().replace("https://", "");
    let err = run("tls-plain", workload(), &plain, &[])
        .await
        .unwrap_err()
        .to_string();
    assert!(!err.contains(SECRET), "{err}");
}

/// Errors after the FE's redirect (whose Location carries `user:password@`): the BE is
/// down, the password is wrong, a row is rejected. None shows the password.
#[tokio::test]
async fn errors_never_show_the_password() {
    for tls in [false, true] {
        // the BE is down after the FE's redirect
        let doris = emulator(tls).await;
        let ca = doris
            .tls()
            .map(|t| t.ca_path().to_str().unwrap().to_string())
            .unwrap_or_default();
        let ca_opt: Vec<(&str, &str)> = if tls {
            vec![("sink.ssl.ca-path", ca.as_str())]
        } else {
            vec![]
        };
        doris.execute("CREATE DATABASE shop").unwrap();
        doris
            .execute(
                "CREATE TABLE shop.t (id BIGINT NOT NULL, v VARCHAR(5)) UNIQUE KEY(id) \
                 DISTRIBUTED BY HASH(id) BUCKETS 1 PROPERTIES (\"replication_num\" = \"1\")",
            )
            .unwrap();
        doris.inject(DorisFault::BeDown(true));
        let mut redirect = ca_opt.clone();
        redirect.push(("auto-redirect", "true"));
        let err = run("sec-bedown", workload(), &doris.fe_address(), &redirect)
            .await
            .unwrap_err()
            .to_string();
        assert!(doris.fe_stream_load_requests() > 0, "{err}");
        assert!(!err.contains(SECRET), "{err}");
        doris.inject(DorisFault::BeDown(false));

        // a wrong password: the error must not echo the configured one either
        let mut wrong = ca_opt.clone();
        wrong.push(("password", "s3cr3t-wrong"));
        let err = run("sec-badpw", workload(), &doris.fe_address(), &wrong)
            .await
            .unwrap_err()
            .to_string();
        assert!(err.to_lowercase().contains("access denied") || err.contains("Unauthorized"));
        assert!(
            !err.contains("s3cr3t-wrong") && !err.contains(SECRET),
            "{err}"
        );

        // a row rejected by the BE (value too long for VARCHAR(5)), its error log read
        let mut events = workload();
        events.push(
            DataChangeEvent::insert(
                table(),
                vec![Value::BigInt(9), Value::String("much too long".into())],
            )
            .into(),
        );
        let mut strict = ca_opt.clone();
        strict.push(("sink.properties.strict_mode", "true"));
        let err = run("sec-reject", events, &doris.fe_address(), &strict)
            .await
            .unwrap_err()
            .to_string();
        assert!(!err.contains(SECRET), "{err}");
    }
    assert_no_secret_in_logs();
}
