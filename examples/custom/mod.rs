//! A custom source (`ticker`) and a custom sink (`jsonl`) against `cdc-api`.

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
            self.next = v.as_u64().unwrap_or(0);
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

/// `type: jsonl`: appends every change as a JSON line to `<dir>/<db>.<table>.jsonl`
/// (at-least-once: lines are written at each checkpoint's prepare).
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
                schemas: std::collections::HashMap::default(),
            }),
            applier: Box::new(AcceptAll),
        })
    }
}

struct JsonlSink {
    dir: PathBuf,
    pending: Vec<DataChangeEvent>,
    schemas: std::collections::HashMap<TableId, Schema>,
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
        std::fs::create_dir_all(&self.dir)
            .map_err(|e| Error::permanent("jsonl sink", e.to_string()))?;
        for e in self.pending.drain(..) {
            let names: Vec<&str> = self
                .schemas
                .get(&e.table_id)
                .map(|s| s.column_names().collect())
                .unwrap_or_default();
            let row = e.row().unwrap_or_default();
            let object: serde_json::Map<String, serde_json::Value> = names
                .iter()
                .zip(row)
                .map(|(n, v)| ((*n).to_string(), serde_json::Value::String(v.to_string())))
                .collect();
            let line = serde_json::json!({"op": e.op.short_tag(), "row": object});
            let path = self.dir.join(format!("{}.jsonl", e.table_id));
            let mut file = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&path)
                .map_err(|err| {
                    Error::transient(format!("writing {}", path.display()), err.to_string())
                })?;
            writeln!(file, "{line}")
                .map_err(|err| Error::transient("jsonl sink", err.to_string()))?;
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
        "source: {{type: ticker, ticks: {ticks}}}\nsink: {{type: jsonl, dir: '{}'}}\npipeline: {{name: custom}}\n",
        dir.display()
    );
    let definition = cdc_runtime::PipelineDefinition::from_yaml_str(&yaml, "custom.yaml")?;
    cdc_runtime::Pipeline::build(&definition, &registry)?
        .run(std::future::pending())
        .await?;
    let text = std::fs::read_to_string(dir.join("demo.ticks.jsonl"))?;
    Ok(text.lines().map(str::to_string).collect())
}
