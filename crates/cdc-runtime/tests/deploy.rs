//! The deployment files at the repository root hold what they promise (issue #20):
//!
//! * `deploy/grafana/cdc-dashboard.json` asks only for series the engine really exports,
//!   with labels they really carry, and shows every one of them: the names come from the
//!   `/metrics` text of a pipeline run in this process, so the check cannot drift from
//!   `metrics.rs`;
//! * `deploy/kubernetes/render.py` renders the example list (3 pipelines) into manifests
//!   whose invariants hold (one replica, Recreate, probes on the port the pipeline file's
//!   `metrics.port` opens on 0.0.0.0, state in an object store, no volume but the pipeline
//!   file's, passwords from Secrets), and the committed example output is what it renders;
//! * the `Dockerfile` is multi-stage, builds with `--locked -p cdc-cli`, and its runtime
//!   stage holds the binary only, run as a non-root user.
//!
//! `scripts/test.sh` also lints the Dockerfile with hadolint, validates the manifests
//! against the Kubernetes schemas and runs `cdc validate` on the rendered pipeline files.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test helpers may panic

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use async_trait::async_trait;
use cdc_api::{
    CheckpointId, Committable, ConfigOption, ConnectorRegistry, Event, FactoryContext, Recovery,
    Sink, SinkFactory, SinkParts, SinkStats, Source, SourceFactory, SourceOffset, SourceProgress,
    TableId, TableSnapshotProgress,
};
use cdc_runtime::{Pipeline, PipelineDefinition};
use cdc_testkit::{ValuesSinkFactory, ValuesSourceFactory, register_event_set};
use serde_json::Value as Json;

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .unwrap()
}

fn read(path: &str) -> String {
    let path = repo_root().join(path);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

// ---------------------------------------------------------------------------------------
// The series the engine exports, from a pipeline run in this process.

/// The values source, reporting what a MySQL source reports: snapshot progress per table
/// (with an estimate) and a binlog lag, so that every conditional series is rendered.
struct ReportingSource(Box<dyn Source>);

#[async_trait]
impl Source for ReportingSource {
    async fn open(&mut self, restore: Option<SourceOffset>) -> cdc_api::Result<()> {
        self.0.open(restore).await
    }
    async fn next_batch(&mut self) -> cdc_api::Result<Option<Vec<Event>>> {
        self.0.next_batch().await
    }
    fn offset(&self) -> cdc_api::Result<SourceOffset> {
        self.0.offset()
    }
    async fn checkpoint_complete(&mut self, offset: &SourceOffset) -> cdc_api::Result<()> {
        self.0.checkpoint_complete(offset).await
    }
    fn snapshotting(&self) -> bool {
        self.0.snapshotting()
    }
    fn progress(&self) -> SourceProgress {
        SourceProgress {
            snapshot: vec![TableSnapshotProgress {
                table: TableId::new("db", "t"),
                rows_read: 3,
                rows_estimated: Some(3),
                done: true,
            }],
            streaming: true,
            lag: Some(Duration::from_millis(250)),
        }
    }
    fn captures(&self, table: &TableId) -> Option<bool> {
        self.0.captures(table)
    }
    async fn close(&mut self) -> cdc_api::Result<()> {
        self.0.close().await
    }
}

/// The values sink, reporting load statistics as the Stream Load sinks do.
struct ReportingSink(Box<dyn Sink>);

#[async_trait]
impl Sink for ReportingSink {
    async fn open(&mut self) -> cdc_api::Result<()> {
        self.0.open().await
    }
    async fn write(&mut self, events: Vec<Event>) -> cdc_api::Result<()> {
        self.0.write(events).await
    }
    async fn flush(&mut self) -> cdc_api::Result<()> {
        self.0.flush().await
    }
    async fn prepare(&mut self, checkpoint: CheckpointId) -> cdc_api::Result<Vec<Committable>> {
        self.0.prepare(checkpoint).await
    }
    async fn commit(&mut self, committables: Vec<Committable>) -> cdc_api::Result<()> {
        self.0.commit(committables).await
    }
    async fn abort(&mut self, committables: Vec<Committable>) -> cdc_api::Result<()> {
        self.0.abort(committables).await
    }
    async fn recover(&mut self, recovery: &Recovery) -> cdc_api::Result<()> {
        self.0.recover(recovery).await
    }
    async fn source_snapshotting(&mut self, active: bool) -> cdc_api::Result<()> {
        self.0.source_snapshotting(active).await
    }
    async fn poll_flush(&mut self) -> cdc_api::Result<()> {
        self.0.poll_flush().await
    }
    fn stats(&self) -> SinkStats {
        let mut stats = SinkStats::default();
        stats.record_load(3, 300, Duration::from_millis(40));
        // A row the target rejected, so the dead-letter series shows up too.
        stats.rejected_rows.insert("app.orders".into(), 1);
        stats
    }
    async fn close(&mut self) -> cdc_api::Result<()> {
        self.0.close().await
    }
}

struct ReportingSourceFactory;

impl SourceFactory for ReportingSourceFactory {
    fn identifier(&self) -> &'static str {
        "reporting"
    }
    fn options(&self) -> Vec<ConfigOption> {
        ValuesSourceFactory.options()
    }
    fn create(&self, ctx: &FactoryContext) -> cdc_api::Result<Box<dyn Source>> {
        Ok(Box::new(ReportingSource(ValuesSourceFactory.create(ctx)?)))
    }
}

struct ReportingSinkFactory;

impl SinkFactory for ReportingSinkFactory {
    fn identifier(&self) -> &'static str {
        "reporting"
    }
    fn options(&self) -> Vec<ConfigOption> {
        ValuesSinkFactory.options()
    }
    fn create(&self, ctx: &FactoryContext) -> cdc_api::Result<SinkParts> {
        let parts = ValuesSinkFactory.create(ctx)?;
        Ok(SinkParts {
            sink: Box::new(ReportingSink(parts.sink)),
            applier: parts.applier,
        })
    }
}

/// The `/metrics` text of a pipeline that has read, written and checkpointed a few changes.
async fn exposition() -> String {
    use cdc_api::{
        Column, DataChangeEvent, DataType, DataTypeKind, Schema, SchemaChangeEvent, Value,
    };
    let table = TableId::new("db", "t");
    let mut events: Vec<Event> = vec![
        SchemaChangeEvent::CreateTable {
            table_id: table.clone(),
            schema: Schema::new(vec![
                Column::new("id", DataType::new(DataTypeKind::BigInt).not_null()),
                Column::new("v", DataType::new(DataTypeKind::String)),
            ])
            .with_primary_key(["id"]),
        }
        .into(),
    ];
    for i in 0..3 {
        events.push(
            DataChangeEvent::insert(
                table.clone(),
                vec![Value::BigInt(i), Value::String("v".into())],
            )
            .into(),
        );
    }
    register_event_set("deploy-dashboard", events);
    let mut registry = ConnectorRegistry::new();
    registry
        .register_source(ReportingSourceFactory)
        .register_sink(ReportingSinkFactory);
    let definition = PipelineDefinition::from_yaml_str(
        "source: {type: reporting, event-set: deploy-dashboard, unbounded: true}\n\
         sink: {type: reporting, sink-id: deploy-dashboard}\n\
         pipeline: {name: deploy-dashboard, state.dir: none, checkpoint.interval: 100ms}\n",
        "dashboard.yaml",
    )
    .unwrap();
    let handle = Pipeline::build(&definition, &registry).unwrap().spawn();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    let text = loop {
        let text = handle.metrics().render_prometheus();
        let m = handle.metrics();
        if m.checkpoints() >= 2
            && m.total_changes() >= 3
            && text.contains("cdc_snapshot_rows_estimated{")
            && text.contains("cdc_source_lag_seconds ")
            && text.contains("cdc_sink_last_load_duration_seconds ")
        {
            break text;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the pipeline did not report every series in time:\n{text}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    handle.stop();
    handle.join().await.unwrap();
    text
}

/// Metric name -> the label names its samples carry, from Prometheus text.
fn families(text: &str) -> BTreeMap<String, BTreeSet<String>> {
    let mut out: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let name = rest.split_whitespace().next().unwrap();
            out.entry(name.to_string()).or_default();
            continue;
        }
        if line.starts_with('#') || line.trim().is_empty() {
            continue;
        }
        let end = line.find(['{', ' ']).unwrap();
        let labels = out.entry(line[..end].to_string()).or_default();
        if line[end..].starts_with('{') {
            let body = &line[end + 1..line.rfind('}').unwrap()];
            // Label values here are table names and operations: no `=` or `,` inside.
            for pair in body.split("\",") {
                labels.insert(pair.split('=').next().unwrap().trim().to_string());
            }
        }
    }
    out
}

// ---------------------------------------------------------------------------------------
// Just enough PromQL: the selectors of an expression, with their label matchers.

const FUNCTIONS: &[&str] = &[
    "abs",
    "absent",
    "absent_over_time",
    "avg_over_time",
    "ceil",
    "changes",
    "clamp",
    "clamp_max",
    "clamp_min",
    "count_over_time",
    "delta",
    "deriv",
    "floor",
    "histogram_quantile",
    "idelta",
    "increase",
    "irate",
    "label_replace",
    "last_over_time",
    "max_over_time",
    "min_over_time",
    "predict_linear",
    "rate",
    "resets",
    "round",
    "scalar",
    "sort",
    "sort_desc",
    "sum_over_time",
    "time",
    "timestamp",
    "vector",
];
const AGGREGATIONS: &[&str] = &[
    "avg",
    "bottomk",
    "count",
    "count_values",
    "group",
    "max",
    "min",
    "quantile",
    "stddev",
    "stdvar",
    "sum",
    "topk",
];
const GROUPING: &[&str] = &[
    "by",
    "without",
    "on",
    "ignoring",
    "group_left",
    "group_right",
];
const KEYWORDS: &[&str] = &["and", "or", "unless", "bool", "offset", "inf", "nan"];
/// Labels Prometheus adds to every series of a target: the pod's `pipeline` label
/// (deploy/kubernetes sets it; the PodMonitor's podTargetLabels and the usual pod
/// labelmap copy it) and the usual target labels.
const TARGET_LABELS: &[&str] = &["pipeline", "namespace", "pod", "instance", "job"];

#[derive(Debug)]
struct Selector {
    metric: String,
    /// (label, operator, value)
    matchers: Vec<(String, String, String)>,
}

#[derive(Debug, Default)]
struct Parsed {
    selectors: Vec<Selector>,
    /// Labels named in `by (...)`, `without (...)`, `on (...)` and the like.
    grouping_labels: Vec<String>,
    /// Identifiers followed by `(` that are no PromQL function.
    unknown_functions: Vec<String>,
}

fn is_ident_start(c: char) -> bool {
    c.is_ascii_alphabetic() || c == '_' || c == ':'
}

fn is_ident(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_' || c == ':'
}

fn parse_promql(expr: &str) -> Parsed {
    let chars: Vec<char> = expr.chars().collect();
    let mut parsed = Parsed::default();
    let mut i = 0;
    let skip_space = |mut j: usize| {
        while j < chars.len() && chars[j].is_whitespace() {
            j += 1;
        }
        j
    };
    let ident_at = |mut j: usize| {
        let start = j;
        while j < chars.len() && is_ident(chars[j]) {
            j += 1;
        }
        (chars[start..j].iter().collect::<String>(), j)
    };
    while i < chars.len() {
        let c = chars[i];
        if c == '$' {
            // A Grafana variable: $name or ${name}.
            i += 1;
            if i < chars.len() && chars[i] == '{' {
                while i < chars.len() && chars[i] != '}' {
                    i += 1;
                }
                i += 1;
            } else {
                while i < chars.len() && is_ident(chars[i]) {
                    i += 1;
                }
            }
        } else if c == '[' {
            while i < chars.len() && chars[i] != ']' {
                i += 1;
            }
            i += 1;
        } else if c == '"' || c == '\'' {
            i += 1;
            while i < chars.len() && chars[i] != c {
                i += if chars[i] == '\\' { 2 } else { 1 };
            }
            i += 1;
        } else if c.is_ascii_digit()
            || (c == '.' && chars.get(i + 1).is_some_and(char::is_ascii_digit))
        {
            while i < chars.len() && (chars[i].is_ascii_alphanumeric() || chars[i] == '.') {
                i += 1;
            }
        } else if c == '{' {
            panic!("a selector without a metric name in `{expr}`");
        } else if is_ident_start(c) {
            let (word, end) = ident_at(i);
            let next = skip_space(end);
            i = end;
            if GROUPING.contains(&word.as_str()) {
                if chars.get(next) == Some(&'(') {
                    let mut j = next + 1;
                    loop {
                        j = skip_space(j);
                        match chars.get(j) {
                            Some(')') | None => break,
                            Some(',') => j += 1,
                            Some(_) => {
                                let (label, e) = ident_at(j);
                                assert!(!label.is_empty(), "cannot read `{expr}`");
                                parsed.grouping_labels.push(label);
                                j = e;
                            }
                        }
                    }
                    i = j + 1;
                }
            } else if FUNCTIONS.contains(&word.as_str())
                || AGGREGATIONS.contains(&word.as_str())
                || KEYWORDS.contains(&word.as_str())
            {
            } else if chars.get(next) == Some(&'(') {
                parsed.unknown_functions.push(word);
            } else {
                let mut selector = Selector {
                    metric: word,
                    matchers: Vec::new(),
                };
                if chars.get(next) == Some(&'{') {
                    let mut j = next + 1;
                    loop {
                        j = skip_space(j);
                        match chars.get(j) {
                            Some('}') | None => break,
                            Some(',') => j += 1,
                            Some(_) => {
                                let (label, e) = ident_at(j);
                                assert!(!label.is_empty(), "cannot read the matchers of `{expr}`");
                                j = skip_space(e);
                                let op_start = j;
                                while j < chars.len() && "=!~".contains(chars[j]) {
                                    j += 1;
                                }
                                let op: String = chars[op_start..j].iter().collect();
                                j = skip_space(j);
                                let quote = chars[j];
                                assert!(quote == '"' || quote == '\'', "cannot read `{expr}`");
                                let value_start = j + 1;
                                j += 1;
                                while chars[j] != quote {
                                    j += if chars[j] == '\\' { 2 } else { 1 };
                                }
                                let value: String = chars[value_start..j].iter().collect();
                                j += 1;
                                selector.matchers.push((label, op, value));
                            }
                        }
                    }
                    i = j + 1;
                }
                parsed.selectors.push(selector);
            }
        } else {
            i += 1;
        }
    }
    parsed
}

/// Every PromQL expression of the dashboard: panel targets (in rows too) and the
/// template variables' queries (`label_values(selector, label)`, Grafana's).
fn dashboard_exprs(dashboard: &Json) -> (Vec<(String, String)>, Vec<String>) {
    fn walk(panels: &Json, out: &mut Vec<(String, String)>) {
        for panel in panels.as_array().into_iter().flatten() {
            let title = panel["title"].as_str().unwrap_or("?").to_string();
            for target in panel["targets"].as_array().into_iter().flatten() {
                let expr = target["expr"]
                    .as_str()
                    .unwrap_or_else(|| panic!("panel `{title}`: a target without expr"));
                out.push((title.clone(), expr.to_string()));
            }
            walk(&panel["panels"], out);
        }
    }
    let mut exprs = Vec::new();
    walk(&dashboard["panels"], &mut exprs);
    let mut variables = Vec::new();
    for var in dashboard["templating"]["list"].as_array().unwrap() {
        if var["type"] == "query" {
            let query = var["query"]["query"]
                .as_str()
                .or(var["query"].as_str())
                .unwrap();
            let inner = query
                .strip_prefix("label_values(")
                .and_then(|q| q.strip_suffix(')'))
                .unwrap_or_else(|| {
                    panic!("variable query `{query}`: label_values(selector, label) expected")
                });
            let (selector, label) = inner.rsplit_once(',').unwrap();
            exprs.push((
                format!("variable {}", var["name"]),
                selector.trim().to_string(),
            ));
            variables.push(label.trim().to_string());
        }
    }
    (exprs, variables)
}

#[tokio::test]
async fn the_dashboard_shows_exactly_the_exported_series() {
    let exported = families(&exposition().await);
    assert!(
        exported.len() >= 18,
        "too few series exported: {exported:?}"
    );
    let dashboard: Json = serde_json::from_str(&read("deploy/grafana/cdc-dashboard.json"))
        .expect("deploy/grafana/cdc-dashboard.json is not valid JSON");
    let (exprs, variable_labels) = dashboard_exprs(&dashboard);
    assert!(exprs.len() >= 15, "the dashboard has too few queries");

    let names: Vec<&str> = dashboard["templating"]["list"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["name"].as_str().unwrap())
        .collect();
    assert!(
        names.contains(&"pipeline"),
        "the dashboard needs a `pipeline` variable: {names:?}"
    );
    assert_eq!(
        variable_labels.first().map(String::as_str),
        Some("pipeline")
    );

    let mut problems = Vec::new();
    let mut used = BTreeSet::new();
    for (title, expr) in &exprs {
        let parsed = parse_promql(expr);
        for f in &parsed.unknown_functions {
            problems.push(format!("`{title}`: `{f}(` is no PromQL function: {expr}"));
        }
        if parsed.selectors.is_empty() {
            problems.push(format!("`{title}`: no series selected: {expr}"));
        }
        let mut allowed_grouping: BTreeSet<&str> = TARGET_LABELS.iter().copied().collect();
        for selector in &parsed.selectors {
            let Some(labels) = exported.get(&selector.metric) else {
                problems.push(format!(
                    "`{title}`: `{}` is not a series the engine exports (it exports {})",
                    selector.metric,
                    exported.keys().cloned().collect::<Vec<_>>().join(", ")
                ));
                continue;
            };
            used.insert(selector.metric.clone());
            allowed_grouping.extend(labels.iter().map(String::as_str));
            for (label, _, _) in &selector.matchers {
                if !labels.contains(label) && !TARGET_LABELS.contains(&label.as_str()) {
                    problems.push(format!(
                        "`{title}`: `{}` carries no label `{label}` (it has {labels:?})",
                        selector.metric
                    ));
                }
            }
            if !title.starts_with("variable") {
                let per_pipeline = selector
                    .matchers
                    .iter()
                    .any(|(l, op, v)| l == "pipeline" && op == "=~" && v == "$pipeline");
                if !per_pipeline {
                    problems.push(format!(
                        "`{title}`: `{}` is not filtered by pipeline=~\"$pipeline\": {expr}",
                        selector.metric
                    ));
                }
            }
        }
        for label in &parsed.grouping_labels {
            if !allowed_grouping.contains(label.as_str()) {
                problems.push(format!(
                    "`{title}`: groups by `{label}`, which its series do not carry: {expr}"
                ));
            }
        }
    }
    // The alerts docs/operating.md suggests ask for exported series too.
    let operating = read("docs/operating.md");
    let section = operating
        .split_once("## Many pipelines")
        .expect("docs/operating.md has a \"Many pipelines\" chapter")
        .1;
    let section = section.split("\n## ").next().unwrap();
    let mut alerts = 0;
    for span in section.split('`').skip(1).step_by(2) {
        if !span.contains("cdc_") || !span.contains('(') {
            continue;
        }
        alerts += 1;
        for selector in parse_promql(span).selectors {
            if selector.metric.starts_with("cdc_") && !exported.contains_key(&selector.metric) {
                problems.push(format!(
                    "docs/operating.md (Many pipelines): `{}` is not exported: {span}",
                    selector.metric
                ));
            }
        }
    }
    assert!(
        alerts >= 5,
        "docs/operating.md: the alerts' PromQL was not found"
    );
    for name in exported.keys() {
        if !used.contains(name) {
            problems.push(format!(
                "the engine exports `{name}` but the dashboard does not show it: add it to \
                 deploy/grafana/cdc-dashboard.json (and to docs/operating.md's series table)"
            ));
        }
    }
    assert!(
        problems.is_empty(),
        "deploy/grafana/cdc-dashboard.json:\n{}",
        problems.join("\n")
    );
}

#[test]
fn the_promql_reader_finds_selectors_functions_and_labels() {
    let parsed = parse_promql(
        "sum by (pipeline, table) (rate(cdc_x_total{pipeline=~\"$pipeline\", op!='a,b'}[$__rate_interval])) \
         / on (pipeline) group_left max(cdc_y) * 60 > bogus(cdc_z offset 5m) and 1e3",
    );
    let selected: Vec<&str> = parsed.selectors.iter().map(|s| s.metric.as_str()).collect();
    assert_eq!(selected, ["cdc_x_total", "cdc_y", "cdc_z"]);
    assert_eq!(
        parsed.selectors[0].matchers,
        [
            ("pipeline".into(), "=~".into(), "$pipeline".into()),
            ("op".into(), "!=".into(), "a,b".into())
        ]
    );
    assert_eq!(parsed.grouping_labels, ["pipeline", "table", "pipeline"]);
    assert_eq!(parsed.unknown_functions, ["bogus"]);
}

// ---------------------------------------------------------------------------------------
// Kubernetes manifests.

const EXAMPLE_LIST: &str = "deploy/kubernetes/example/pipelines.json";
const EXAMPLE_MANIFESTS: &str = "deploy/kubernetes/example/manifests";
/// The largest peak RSS docs/performance.md measured (a 1M-change catch-up into Doris).
const LARGEST_MEASURED_RSS_BYTES: u64 = 105_000_000;

fn python() -> Command {
    let mut cmd = Command::new("python3");
    cmd.current_dir(repo_root());
    cmd
}

fn render(list: &Path, out: &Path) {
    let output = python()
        .arg("deploy/kubernetes/render.py")
        .arg(list)
        .arg("--out")
        .arg(out)
        .output()
        .expect("python3 is needed to run deploy/kubernetes/render.py");
    assert!(
        output.status.success(),
        "render.py failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

fn quantity_bytes(q: &str) -> u64 {
    let (number, unit) = q.split_at(q.find(|c: char| !c.is_ascii_digit()).unwrap_or(q.len()));
    let factor: u64 = match unit {
        "" => 1,
        "k" => 1000,
        "M" => 1000_u64.pow(2),
        "G" => 1000_u64.pow(3),
        "Ki" => 1 << 10,
        "Mi" => 1 << 20,
        "Gi" => 1 << 30,
        other => panic!("memory quantity {q}: unit {other} not understood here"),
    };
    number.parse::<u64>().unwrap() * factor
}

/// `${NAME}` references of a pipeline file (outside comment lines).
fn env_refs(text: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for line in text.lines().filter(|l| !l.trim_start().starts_with('#')) {
        let mut rest = line;
        while let Some(at) = rest.find("${") {
            if rest[..at].ends_with('$') {
                rest = &rest[at + 2..];
                continue;
            }
            let end = rest[at..].find('}').unwrap();
            out.insert(rest[at + 2..at + end].to_string());
            rest = &rest[at + end..];
        }
    }
    out
}

/// Checks one pipeline's manifests; returns its name.
fn check_pipeline(file: &str, docs: &[Json]) -> String {
    let kinds: Vec<(&str, &str)> = docs
        .iter()
        .map(|d| {
            (
                d["apiVersion"].as_str().unwrap(),
                d["kind"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        kinds,
        [("v1", "ConfigMap"), ("apps/v1", "Deployment")],
        "{file}"
    );
    let (config_map, deployment) = (&docs[0], &docs[1]);
    let name = deployment["metadata"]["labels"]["pipeline"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(file, format!("{name}.yaml"));
    assert_eq!(deployment["metadata"]["name"], format!("cdc-{name}"));
    assert_eq!(
        config_map["metadata"]["namespace"],
        deployment["metadata"]["namespace"]
    );

    let spec = &deployment["spec"];
    assert_eq!(spec["replicas"], 1, "{file}: one run per pipeline");
    assert_eq!(
        spec["strategy"]["type"], "Recreate",
        "{file}: the old pod stops before the new one starts"
    );
    let template = &spec["template"];
    let labels = template["metadata"]["labels"].as_object().unwrap();
    for (k, v) in spec["selector"]["matchLabels"].as_object().unwrap() {
        assert_eq!(
            labels.get(k),
            Some(v),
            "{file}: the selector must match the pod's labels"
        );
    }
    assert_eq!(
        labels["pipeline"],
        name.as_str(),
        "{file}: the dashboard's `pipeline` label"
    );

    let pod = &template["spec"];
    assert_eq!(pod["securityContext"]["runAsNonRoot"], true, "{file}");
    assert_ne!(pod["securityContext"]["runAsUser"], 0, "{file}");
    let containers = pod["containers"].as_array().unwrap();
    assert_eq!(containers.len(), 1, "{file}");
    let c = &containers[0];
    let args: Vec<&str> = c["args"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap())
        .collect();
    assert_eq!(args[0], "run", "{file}");
    let (mount_dir, config_key) = args[1].rsplit_once('/').unwrap();

    // No volume but the ConfigMap holding the pipeline file: the state is in the object store.
    let volumes = pod["volumes"].as_array().unwrap();
    assert_eq!(
        volumes.len(),
        1,
        "{file}: only the pipeline file is mounted"
    );
    assert_eq!(
        volumes[0].as_object().unwrap().len(),
        2,
        "{file}: {:?}",
        volumes[0]
    );
    assert_eq!(
        volumes[0]["configMap"]["name"], config_map["metadata"]["name"],
        "{file}"
    );
    let mounts = c["volumeMounts"].as_array().unwrap();
    assert_eq!(mounts.len(), 1, "{file}");
    assert_eq!(mounts[0]["name"], volumes[0]["name"], "{file}");
    assert_eq!(
        mounts[0]["mountPath"], mount_dir,
        "{file}: `cdc run` reads the mounted file"
    );
    assert_eq!(mounts[0]["readOnly"], true, "{file}");

    // The pipeline file: the engine parses it, and it opens the port the probes use.
    let text = config_map["data"][config_key].as_str().unwrap();
    let refs = env_refs(text);
    let mut substituted = text.to_string();
    for r in &refs {
        substituted = substituted.replace(&format!("${{{r}}}"), "x");
    }
    let definition = PipelineDefinition::from_yaml_str(&substituted, file)
        .unwrap_or_else(|e| panic!("{file}: the engine refuses the pipeline file: {e}"));
    let option = |key: &str| {
        definition
            .pipeline
            .get_raw(key)
            .unwrap_or_else(|| panic!("{file}: the pipeline file must set pipeline.{key}"))
            .to_string()
    };
    assert_eq!(option("name"), name);
    assert_eq!(
        option("metrics.address"),
        "0.0.0.0",
        "{file}: probes come from another host"
    );
    let state = option("state.dir");
    assert!(
        state.starts_with("s3://") && state.ends_with(&format!("/{name}")),
        "{file}: state.dir {state} must be s3://bucket/prefix/{name}"
    );
    let port: u64 = option("metrics.port").parse().unwrap();
    let ports = c["ports"].as_array().unwrap();
    let metrics_port = ports.iter().find(|p| p["name"] == "metrics").unwrap();
    assert_eq!(
        metrics_port["containerPort"], port,
        "{file}: container port vs metrics.port"
    );
    for (probe, path) in [("livenessProbe", "/healthz"), ("readinessProbe", "/readyz")] {
        let get = &c[probe]["httpGet"];
        assert_eq!(get["path"], path, "{file}: {probe}");
        assert!(
            get["port"] == "metrics" || get["port"] == port,
            "{file}: {probe} must use the metrics port"
        );
    }
    let annotations = &template["metadata"]["annotations"];
    assert_eq!(annotations["prometheus.io/scrape"], "true", "{file}");
    assert_eq!(
        annotations["prometheus.io/port"],
        port.to_string(),
        "{file}"
    );
    assert_eq!(annotations["prometheus.io/path"], "/metrics", "{file}");

    // Every ${NAME} is set; passwords come from a Secret, never from the manifest.
    let env = c["env"].as_array().unwrap();
    let set: BTreeSet<String> = env
        .iter()
        .map(|e| e["name"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        set, refs,
        "{file}: every ${{NAME}} of the pipeline file must be in the env"
    );
    for e in env {
        let var = e["name"].as_str().unwrap().to_ascii_lowercase();
        if ["password", "secret", "token", "key"]
            .iter()
            .any(|s| var.contains(s))
        {
            assert!(
                e["valueFrom"]["secretKeyRef"]["key"].is_string(),
                "{file}: {var} must come from a Secret"
            );
        }
    }
    assert!(
        c["envFrom"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["secretRef"]["name"].is_string()),
        "{file}: the object store's credentials come from a Secret"
    );

    // Sized from docs/performance.md's measured peak RSS.
    let request = quantity_bytes(c["resources"]["requests"]["memory"].as_str().unwrap());
    let limit = quantity_bytes(c["resources"]["limits"]["memory"].as_str().unwrap());
    assert!(
        request >= LARGEST_MEASURED_RSS_BYTES,
        "{file}: memory request {request}"
    );
    assert!(limit >= request, "{file}");
    assert!(c["resources"]["requests"]["cpu"].is_string(), "{file}");
    name
}

fn check_manifests(dir: &Path) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    let mut pod_monitors = 0;
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let file = path.file_name().unwrap().to_str().unwrap().to_string();
        let docs: Vec<Json> = serde_saphyr::from_multiple(&std::fs::read_to_string(&path).unwrap())
            .unwrap_or_else(|e| panic!("{file}: not YAML: {e}"));
        if file == "podmonitor.yaml" {
            let m = &docs[0];
            assert_eq!(m["kind"], "PodMonitor");
            assert_eq!(m["apiVersion"], "monitoring.coreos.com/v1");
            assert!(
                m["spec"]["podTargetLabels"]
                    .as_array()
                    .unwrap()
                    .contains(&Json::from("pipeline"))
            );
            assert_eq!(m["spec"]["podMetricsEndpoints"][0]["port"], "metrics");
            assert_eq!(m["spec"]["podMetricsEndpoints"][0]["path"], "/metrics");
            pod_monitors += 1;
        } else {
            names.insert(check_pipeline(&file, &docs));
        }
    }
    assert!(pod_monitors <= 1);
    names
}

#[test]
fn render_writes_valid_manifests_for_every_listed_pipeline() {
    let out = tempfile::tempdir().unwrap();
    render(&repo_root().join(EXAMPLE_LIST), out.path());
    let names = check_manifests(out.path());
    assert_eq!(
        names,
        ["billing", "inventory", "shop"].map(String::from).into(),
        "three pipelines, one Deployment each"
    );
    // The committed example is what the list renders to.
    let check = python()
        .args([
            "deploy/kubernetes/render.py",
            EXAMPLE_LIST,
            "--out",
            EXAMPLE_MANIFESTS,
            "--check",
        ])
        .output()
        .unwrap();
    assert!(
        check.status.success(),
        "{}",
        String::from_utf8_lossy(&check.stderr)
    );
    check_manifests(&repo_root().join(EXAMPLE_MANIFESTS));
}

#[test]
fn render_refuses_what_would_break_the_invariants() {
    let dir = tempfile::tempdir().unwrap();
    let write = |name: &str, text: &str| std::fs::write(dir.path().join(name), text).unwrap();
    write(
        "p.yaml",
        "source: {type: mysql, password: \"${PW}\"}\nsink: {type: doris}\n",
    );
    write(
        "own.yaml",
        "source: {type: mysql}\nsink: {type: doris}\npipeline:\n  name: x\n",
    );
    let cases = [
        (
            r#""stateUrl": "/var/lib/cdc""#,
            r#"{"name": "a", "file": "p.yaml"}"#,
            "s3://bucket/prefix",
        ),
        (
            r#""stateUrl": "s3://b/p""#,
            r#"{"name": "a", "file": "own.yaml"}"#,
            "leave the `pipeline:` block out",
        ),
        (
            r#""stateUrl": "s3://b/p""#,
            r#"{"name": "a", "file": "p.yaml", "pipeline": {"metrics.port": 1}}"#,
            "must not set metrics.port",
        ),
        (
            r#""stateUrl": "s3://b/p""#,
            r#"{"name": "A_b", "file": "p.yaml"}"#,
            "lowercase letters",
        ),
        (
            r#""stateUrl": "s3://b/p""#,
            r#"{"name": "a", "file": "p.yaml", "env": {"PW": "x", "NOPE": "y"}}"#,
            "does not use",
        ),
    ];
    for (settings, entry, message) in cases {
        write(
            "list.json",
            &format!(r#"{{"image": "cdc:1", {settings}, "pipelines": [{entry}]}}"#),
        );
        let output = python()
            .arg("deploy/kubernetes/render.py")
            .arg(dir.path().join("list.json"))
            .arg("--out")
            .arg(dir.path().join("out"))
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{entry}: {stderr}");
        assert!(
            stderr.contains(message),
            "{entry}: `{message}` expected in: {stderr}"
        );
    }
}

// ---------------------------------------------------------------------------------------
// Dockerfile.

/// The Dockerfile's instructions (continuation lines joined), by stage.
fn dockerfile_stages() -> Vec<Vec<(String, String)>> {
    let text = read("Dockerfile");
    let mut joined = Vec::new();
    let mut current = String::new();
    for line in text.lines() {
        let trimmed = line.trim();
        if current.is_empty() && (trimmed.is_empty() || trimmed.starts_with('#')) {
            continue;
        }
        if let Some(head) = trimmed.strip_suffix('\\') {
            current.push_str(head);
            current.push(' ');
        } else {
            current.push_str(trimmed);
            joined.push(std::mem::take(&mut current));
        }
    }
    let mut stages: Vec<Vec<(String, String)>> = Vec::new();
    for instruction in joined {
        let (word, rest) = instruction.split_once(' ').unwrap_or((&instruction, ""));
        let word = word.to_ascii_uppercase();
        if word == "FROM" {
            stages.push(Vec::new());
        }
        if let Some(stage) = stages.last_mut() {
            stage.push((word, rest.trim().to_string()));
        }
    }
    stages
}

#[test]
fn the_dockerfile_builds_locked_and_ships_only_the_binary_as_non_root() {
    let stages = dockerfile_stages();
    assert!(
        stages.len() >= 2,
        "multi-stage: a build stage and a runtime stage"
    );
    let build = &stages[stages.len() - 2];
    let stage_name = build[0]
        .1
        .rsplit_once(" AS ")
        .or(build[0].1.rsplit_once(" as "))
        .unwrap()
        .1;
    let cargo = build
        .iter()
        .find(|(w, r)| w == "RUN" && r.contains("cargo build"))
        .expect("the build stage runs cargo build");
    for flag in ["--release", "--locked", "-p cdc-cli"] {
        assert!(
            cargo.1.contains(flag),
            "cargo build needs {flag}: {}",
            cargo.1
        );
    }

    let runtime = stages.last().unwrap();
    let words: Vec<&str> = runtime.iter().map(|(w, _)| w.as_str()).collect();
    assert!(
        !words.contains(&"RUN") && !words.contains(&"ADD"),
        "the runtime stage only copies the binary: {words:?}"
    );
    let copies: Vec<&String> = runtime
        .iter()
        .filter(|(w, _)| w == "COPY")
        .map(|(_, r)| r)
        .collect();
    assert_eq!(copies.len(), 1, "one COPY: the binary");
    let parts: Vec<&str> = copies[0].split_whitespace().collect();
    assert_eq!(
        parts.len(),
        3,
        "COPY --from=<build> <one file> <destination>: {}",
        copies[0]
    );
    assert_eq!(parts[0], format!("--from={stage_name}"));
    assert!(
        parts[1].ends_with("/cdc") && parts[2] == "/usr/local/bin/cdc",
        "{}",
        copies[0]
    );

    let user = runtime
        .iter()
        .rev()
        .find(|(w, _)| w == "USER")
        .expect("USER in the runtime stage");
    let uid = user.1.split(':').next().unwrap();
    assert!(
        uid != "0" && uid != "root",
        "USER must not be root: {}",
        user.1
    );
    let entrypoint = runtime.iter().find(|(w, _)| w == "ENTRYPOINT").unwrap();
    assert_eq!(entrypoint.1, r#"["cdc"]"#);

    let ignore = read(".dockerignore");
    let lines: BTreeSet<&str> = ignore.lines().map(str::trim).collect();
    for excluded in ["target/", "fuzz/", ".git/"] {
        assert!(
            lines.contains(excluded),
            ".dockerignore must leave out {excluded}"
        );
    }
}
