//! A custom source (`ticker`) and a custom sink (`jsonl`) against `cdc-api`.

use std::collections::{BTreeMap, HashMap};
use std::io::Write as _;
use std::path::{Path, PathBuf};

use async_trait::async_trait;
use cdc_api::{
    Column, ConfigOption, ConnectorRegistry, DataChangeEvent, DataType, DataTypeKind, Error, Event,
    FactoryContext, Result, Schema, SchemaApplier, SchemaChangeEvent, SchemaChangeKind, Sink,
    SinkFactory, SinkParts, Source, SourceFactory, SourceOffset, TableId, Value,
};

const TICKS: ConfigOption = ConfigOption::optional("ticks", "10", "how many rows to emit");

/// `type: ticker`: emits `ticks` rows `(n, "tick n")` into `demo.ticks`, then ends.
pub struct TickerFactory;

impl SourceFactory for TickerFactory {
    fn identifier(&self) -> &'static str {
        "ticker"
    }
    fn options(&self) -> Vec<ConfigOption> {
        vec![TICKS]
    }
    fn create(&self, ctx: &FactoryContext) -> Result<Box<dyn Source>> {
        let ticks = ctx.options.u64(&TICKS)?.unwrap_or(10);
        Ok(Box::new(Ticker {
            next: 0,
            ticks,
            announced: false,
        }))
    }
}

struct Ticker {
    next: u64,
    ticks: u64,
    announced: bool,
}

fn table() -> TableId {
    TableId::new("demo", "ticks")
}

#[async_trait]
impl Source for Ticker {
    async fn open(&mut self, restore: Option<SourceOffset>) -> Result<()> {
        if let Some(SourceOffset(v)) = restore {
            // Starting over on an offset we cannot read would repeat every row: refuse.
            self.next = v.as_u64().ok_or_else(|| {
                Error::permanent(
                    "ticker source",
                    format!("the saved offset {v} is not a tick number"),
                )
                .with_hint("the state directory belongs to another pipeline; use a fresh one")
            })?;
        }
        Ok(())
    }

    async fn next_batch(&mut self) -> Result<Option<Vec<Event>>> {
        if !self.announced {
            // A table's CreateTable comes before its rows, also after a resume.
            self.announced = true;
            let schema = Schema::new(vec![
                Column::new("n", DataType::new(DataTypeKind::BigInt).not_null()),
                Column::new("label", DataType::new(DataTypeKind::String)),
            ])
            .with_primary_key(["n"]);
            return Ok(Some(vec![
                SchemaChangeEvent::CreateTable {
                    table_id: table(),
                    schema,
                }
                .into(),
            ]));
        }
        if self.next >= self.ticks {
            return Ok(None);
        }
        let n = self.next as i64;
        self.next += 1;
        Ok(Some(vec![
            DataChangeEvent::insert(
                table(),
                vec![Value::BigInt(n), Value::String(format!("tick {n}"))],
            )
            .into(),
        ]))
    }

    fn offset(&self) -> Result<SourceOffset> {
        Ok(SourceOffset(self.next.into()))
    }
}

const DIR: ConfigOption =
    ConfigOption::required("dir", "directory for the <db>.<table>.jsonl files");

/// `type: jsonl`: appends every change as a JSON line to `<dir>/<db>.<table>.jsonl`.
///
/// At-least-once: lines are appended and synced to disk at each checkpoint's `prepare`
/// (the default `prepare` calls `flush`) and before schema changes; after a crash the source
/// replays from the last checkpoint, so some lines may repeat. Replaying the file by primary
/// key (an upsert per line, a delete for `-D`) gives the table's state either way. An
/// update that changes the key is written as a `-D` of the old row followed by the `+U`.
pub struct JsonlFactory;

impl SinkFactory for JsonlFactory {
    fn identifier(&self) -> &'static str {
        "jsonl"
    }
    fn options(&self) -> Vec<ConfigOption> {
        vec![DIR]
    }
    fn create(&self, ctx: &FactoryContext) -> Result<SinkParts> {
        let dir = PathBuf::from(ctx.options.required(&DIR)?);
        Ok(SinkParts {
            sink: Box::new(JsonlSink {
                dir,
                pending: Vec::new(),
                schemas: HashMap::new(),
            }),
            applier: Box::new(AcceptAll),
        })
    }
}

struct JsonlSink {
    dir: PathBuf,
    pending: Vec<DataChangeEvent>,
    schemas: HashMap<TableId, Schema>,
}

impl JsonlSink {
    /// The lines for the pending changes, per file, in stream order.
    fn render_pending(&self) -> Result<BTreeMap<PathBuf, String>> {
        let mut files: BTreeMap<PathBuf, String> = BTreeMap::new();
        for e in &self.pending {
            let schema = self.schemas.get(&e.table_id).ok_or_else(|| {
                Error::permanent(
                    format!("jsonl sink, table {}", e.table_id),
                    "a row arrived before the table's CreateTable event",
                )
            })?;
            let text = files
                .entry(self.dir.join(format!("{}.jsonl", e.table_id)))
                .or_default();
            let key = schema.primary_key_indexes();
            if let (Some(before), Some(after)) = (&e.before, &e.after) {
                let key_changed = key.iter().any(|&i| before.get(i) != after.get(i));
                if key_changed {
                    // The old key disappears; readers must not keep its row.
                    push_line(text, "-D", schema, before);
                }
            }
            push_line(text, e.op.short_tag(), schema, e.row().unwrap_or_default());
        }
        Ok(files)
    }
}

/// One line: `{"op":"+I","row":{"column":"value",...}}`, NULL as `null`.
fn push_line(text: &mut String, op: &str, schema: &Schema, row: &[Value]) {
    let object: serde_json::Map<String, serde_json::Value> = schema
        .column_names()
        .zip(row)
        .map(|(name, v)| {
            let v = match v {
                Value::Null => serde_json::Value::Null,
                other => serde_json::Value::String(other.to_string()),
            };
            (name.to_string(), v)
        })
        .collect();
    text.push_str(&serde_json::json!({"op": op, "row": object}).to_string());
    text.push('\n');
}

/// Appends each file's lines and syncs them to disk (blocking: run it off the runtime).
fn append_and_sync(dir: &Path, files: &BTreeMap<PathBuf, String>) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    let mut created = false;
    for (path, text) in files {
        created |= !path.exists();
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)?;
        file.write_all(text.as_bytes())?;
        file.sync_data()?;
    }
    if created {
        // A new file's name is durable only once its directory is synced.
        std::fs::File::open(dir)?.sync_all()?;
    }
    Ok(())
}

#[async_trait]
impl Sink for JsonlSink {
    async fn write(&mut self, events: Vec<Event>) -> Result<()> {
        for event in events {
            match event {
                Event::DataChange(e) => self.pending.push(e),
                Event::SchemaChange(SchemaChangeEvent::CreateTable { table_id, schema }) => {
                    self.schemas.insert(table_id, schema);
                }
                Event::SchemaChange(other) => {
                    if let Some(s) = self.schemas.get(other.table_id()) {
                        let next = other
                            .apply_to(s)
                            .map_err(|m| Error::permanent("jsonl sink", m))?;
                        self.schemas.insert(other.table_id().clone(), next);
                    }
                }
            }
        }
        Ok(())
    }

    async fn flush(&mut self) -> Result<()> {
        if self.pending.is_empty() {
            return Ok(());
        }
        let files = self.render_pending()?;
        let dir = self.dir.clone();
        // Keep the pending rows until the lines are on disk: a failed flush loses nothing.
        tokio::task::spawn_blocking(move || append_and_sync(&dir, &files))
            .await
            .map_err(|e| Error::permanent("jsonl sink", e.to_string()))?
            .map_err(|e| {
                Error::permanent(
                    format!("jsonl sink, writing under {}", self.dir.display()),
                    e.to_string(),
                )
                .with_hint(
                    "check that the directory exists or can be created, is writable and has space",
                )
            })?;
        self.pending.clear();
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

/// Registers both connectors, runs `ticker -> jsonl` from YAML and returns the lines written.
pub async fn run_ticker_to_jsonl(
    dir: &Path,
    ticks: u64,
) -> std::result::Result<Vec<String>, Box<dyn std::error::Error>> {
    let mut registry = ConnectorRegistry::new();
    registry
        .register_source(TickerFactory)
        .register_sink(JsonlFactory);
    let yaml = format!(
        "source: {{type: ticker, ticks: {ticks}}}\nsink: {{type: jsonl, dir: '{0}'}}\npipeline: {{name: custom, state.dir: '{0}/state'}}\n",
        dir.display()
    );
    let definition = cdc_runtime::PipelineDefinition::from_yaml_str(&yaml, "custom.yaml")?;
    cdc_runtime::Pipeline::build(&definition, &registry)?
        .run(std::future::pending())
        .await?;
    let text = std::fs::read_to_string(dir.join("demo.ticks.jsonl"))?;
    Ok(text.lines().map(str::to_string).collect())
}
