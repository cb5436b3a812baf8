//! No option is accepted and ignored: every option a connector or the pipeline block
//! declares is either read by its factory when it is set (proved here through
//! `Options::keys_read`), or declared `without_effect` with the reason users see.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;

use cdc_api::{ConfigOption, FactoryContext, Options, SinkFactory, SourceFactory};

/// PEM files for the TLS options (leaked: they live as long as the test process).
struct Pem {
    ca: &'static str,
    cert: &'static str,
    key: &'static str,
}

fn tls() -> &'static Pem {
    static PEM: std::sync::OnceLock<Pem> = std::sync::OnceLock::new();
    PEM.get_or_init(|| {
        let tls = Box::leak(Box::new(cdc_testkit::TestTls::generate().unwrap()));
        let (cert, key) = tls.client_cert("cdc").unwrap();
        let leak = |p: &std::path::Path| -> &'static str {
            Box::leak(p.display().to_string().into_boxed_str())
        };
        Pem {
            ca: leak(tls.ca_path()),
            cert: leak(&cert),
            key: leak(&key),
        }
    })
}

/// A valid value for options without a default, and the options some need beside them.
fn sample(name: &str) -> (&'static str, Vec<(&'static str, &'static str)>) {
    let specific = vec![
        ("scan.startup.mode", "specific-offset"),
        ("scan.startup.specific-offset.file", "mysql-bin.000001"),
        ("scan.startup.specific-offset.pos", "4"),
    ];
    match name {
        "server-id" => ("5400", vec![]),
        "server-time-zone" => ("Asia/Shanghai", vec![]),
        "tables.exclude" => ("shop.tmp", vec![]),
        "scan.incremental.snapshot.chunk.key-column" => ("shop.t:id", vec![]),
        "scan.startup.specific-offset.file" => ("mysql-bin.000001", specific),
        "scan.startup.specific-offset.pos" => ("4", specific),
        "scan.startup.specific-offset.gtid-set" => ("0-1-42", specific),
        "scan.startup.specific-offset.skip-events" => ("2", specific),
        "scan.startup.specific-offset.skip-rows" => ("1", specific),
        "scan.startup.timestamp-millis" => {
            ("1700000000000", vec![("scan.startup.mode", "timestamp")])
        }
        "use.legacy.json.format" => ("true", vec![]),
        "metadata.list" => ("op_ts,table_name", vec![]),
        "ssl.ca" | "sink.ssl.ca-path" => (tls().ca, vec![]),
        "ssl.cert" => (tls().cert, vec![("ssl.key", tls().key)]),
        "ssl.key" => (tls().key, vec![("ssl.cert", tls().cert)]),
        "restart-strategy.fixed-delay.attempts" | "restart-strategy.fixed-delay.delay" => {
            ("", vec![("restart-strategy.type", "fixed-delay")])
        }
        "ssl.server-name" => ("db.example.com", vec![]),
        "table.create.num-buckets" => ("8", vec![]),
        "metrics.port" => ("9249", vec![]),
        "state.dir" => ("none", vec![]),
        "operator.uid.prefix" => ("cdc", vec![]),
        "restart-strategy.exponential-delay.attempts-before-reset-backoff" => ("5", vec![]),
        "benodes" => ("127.0.0.1:8040", vec![]),
        "jdbc-url" => ("127.0.0.1:9030", vec![]),
        "sink.label-prefix" => ("cdc", vec![]),
        // Relative: its directory (the working directory) exists; nothing is created.
        "sink.dead-letter.path" => ("dead-letters.jsonl", vec![]),
        "scan.snapshot.rate-limit" | "scan.binlog.rate-limit" => ("1000", vec![]),
        "scan.snapshot.rate-limit.bytes" => ("10mb", vec![]),
        _ => ("", vec![]),
    }
}

/// The value an option is set to: the base's, the sample, or its default.
fn value_for(
    o: &ConfigOption,
    base: &[(&str, &str)],
) -> Option<(String, Vec<(&'static str, &'static str)>)> {
    if let Some((_, v)) = base.iter().find(|(k, _)| *k == o.name) {
        return Some((v.to_string(), Vec::new()));
    }
    let (sample, extra) = sample(o.name);
    if !sample.is_empty() {
        return Some((sample.to_string(), extra));
    }
    o.default.map(|d| (d.to_string(), extra))
}

fn options(
    block: &str,
    base: &[(&str, &str)],
    name: &str,
    value: String,
    extra: Vec<(&str, &str)>,
) -> Options {
    let mut map: BTreeMap<String, String> = base
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    for (k, v) in extra {
        map.insert(k.to_string(), v.to_string());
    }
    map.insert(name.to_string(), value);
    Options::from_map(block, map)
}

/// Builds with each declared option set in turn and checks it was read.
fn walk(
    what: &str,
    declared: Vec<ConfigOption>,
    build: impl Fn(&Options) -> Result<(), String>,
    block: &str,
    base: &[(&str, &str)],
) {
    let mut unread = Vec::new();
    let mut no_sample = Vec::new();
    for o in &declared {
        if o.no_effect.is_some() {
            continue;
        }
        let Some((value, extra)) = value_for(o, base) else {
            no_sample.push(o.name);
            continue;
        };
        let opts = options(block, base, o.name, value, extra);
        if let Err(e) = build(&opts) {
            panic!(
                "{what}: building with {} = {:?} failed: {e}",
                o.name,
                opts.get_raw(o.name)
            );
        }
        if !opts.keys_read().contains(o.name) {
            unread.push(o.name);
        }
    }
    assert!(
        no_sample.is_empty(),
        "{what}: options without a default need a sample value in options_read.rs: {no_sample:?}"
    );
    assert!(
        unread.is_empty(),
        "{what}: options accepted but never read (implement them, or declare them without_effect with the reason): {unread:?}"
    );
}

fn context(options: &Options) -> FactoryContext {
    FactoryContext {
        pipeline_name: "p".into(),
        options: options.clone(),
        pipeline_options: Options::new("pipeline"),
    }
}

#[test]
fn every_mysql_source_option_is_read_or_declared_without_effect() {
    let factory = cdc_connector_mysql::MySqlSourceFactory;
    walk(
        "mysql source",
        factory.options(),
        |o| {
            factory
                .create(&context(o))
                .map(drop)
                .map_err(|e| e.to_string())
        },
        "source",
        &[
            ("hostname", "db"),
            ("username", "u"),
            ("password", "p"),
            ("tables", "shop.t"),
        ],
    );
}

#[test]
fn every_doris_sink_option_is_read_or_declared_without_effect() {
    let factory = cdc_connector_doris::DorisSinkFactory;
    walk(
        "doris sink",
        factory.options(),
        |o| {
            factory
                .create(&context(o))
                .map(drop)
                .map_err(|e| e.to_string())
        },
        "sink",
        &[
            ("fenodes", "127.0.0.1:8030"),
            ("username", "root"),
            ("password", ""),
        ],
    );
}

#[test]
fn every_starrocks_sink_option_is_read_or_declared_without_effect() {
    let factory = cdc_connector_starrocks::StarRocksSinkFactory;
    walk(
        "starrocks sink",
        factory.options(),
        |o| {
            factory
                .create(&context(o))
                .map(drop)
                .map_err(|e| e.to_string())
        },
        "sink",
        &[
            ("jdbc-url", "jdbc:mysql://127.0.0.1:9030"),
            ("load-url", "127.0.0.1:8030"),
            ("username", "root"),
            ("password", ""),
        ],
    );
}

#[test]
fn every_pipeline_option_is_read_or_declared_without_effect() {
    walk(
        "pipeline",
        cdc_runtime::pipeline_options(),
        |o| {
            cdc_runtime::PipelineSettings::from_options(o, "test.yaml")
                .map(drop)
                .map_err(|e| e.to_string())
        },
        "pipeline",
        &[("name", "p")],
    );
}

/// The reason is what users read in `cdc connectors` and the docs: it must say why.
#[test]
fn options_without_effect_say_why() {
    use cdc_api::SinkFactory as _;
    let all = cdc_connector_mysql::MySqlSourceFactory
        .options()
        .into_iter()
        .chain(cdc_connector_doris::DorisSinkFactory.options())
        .chain(cdc_connector_starrocks::StarRocksSinkFactory.options())
        .chain(cdc_runtime::pipeline_options());
    for o in all {
        if let Some(why) = o.no_effect {
            assert!(why.len() > 20, "{}: '{why}' does not explain", o.name);
        }
    }
}
