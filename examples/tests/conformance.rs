//! The custom connectors of `examples/custom` pass the test kit's conformance checks: the
//! `jsonl` sink as an at-least-once sink, the `ticker` source as a bounded source. This is
//! the pattern for your own connector: a small harness, one call.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;

use async_trait::async_trait;
use cdc_api::{
    BoxError, FactoryContext, Options, Schema, SinkFactory, SinkParts, Source, SourceFactory,
    TableId, Value,
};
use cdc_examples::custom::{JsonlFactory, TickerFactory};
use cdc_testkit::conformance::sink::{self, SinkCapabilities, SinkHarness};
use cdc_testkit::conformance::source::{self, SourceCapabilities, SourceHarness};

fn context(block: &str, pipeline: &str, options: &[(&str, &str)]) -> FactoryContext {
    let mut o = Options::new(block);
    for (key, value) in options {
        o.insert(*key, *value);
    }
    FactoryContext {
        pipeline_name: pipeline.to_string(),
        options: o,
        pipeline_options: Options::new("pipeline"),
    }
}

/// The `jsonl` sink, one directory per pipeline under a temporary directory.
struct JsonlHarness {
    root: tempfile::TempDir,
}

impl JsonlHarness {
    fn dir(&self, pipeline: &str) -> PathBuf {
        self.root.path().join(pipeline)
    }
}

#[async_trait]
impl SinkHarness for JsonlHarness {
    fn capabilities(&self) -> SinkCapabilities {
        SinkCapabilities::at_least_once()
    }

    async fn create(&self, pipeline: &str) -> Result<SinkParts, BoxError> {
        let dir = self.dir(pipeline);
        let dir = dir.to_str().ok_or("temporary directory is not UTF-8")?;
        Ok(JsonlFactory.create(&context("sink", pipeline, &[("dir", dir)]))?)
    }

    /// Replays the table's file by primary key, as a reader of these files would.
    async fn read_rows(
        &self,
        pipeline: &str,
        table: &TableId,
        schema: &Schema,
    ) -> Result<Vec<Vec<Value>>, BoxError> {
        let path = self.dir(pipeline).join(format!("{table}.jsonl"));
        let text = match std::fs::read_to_string(&path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(e.into()),
        };
        let key = schema.primary_key_indexes();
        let mut rows: Vec<Vec<Value>> = Vec::new();
        for line in text.lines() {
            let line: serde_json::Value = serde_json::from_str(line)?;
            let row: Vec<Value> = schema
                .column_names()
                .map(|name| match &line["row"][name] {
                    serde_json::Value::String(s) => Value::String(s.clone()),
                    _ => Value::Null,
                })
                .collect();
            let same = |other: &Vec<Value>| {
                if key.is_empty() {
                    *other == row
                } else {
                    key.iter().all(|&i| other[i] == row[i])
                }
            };
            if line["op"] == "-D" {
                if let Some(at) = rows.iter().position(same) {
                    rows.remove(at);
                }
            } else {
                if !key.is_empty() {
                    rows.retain(|other| !same(other));
                }
                rows.push(row);
            }
        }
        Ok(rows)
    }
}

#[tokio::test]
async fn the_jsonl_sink_passes_the_sink_checks() {
    let report = sink::check(JsonlHarness {
        root: tempfile::tempdir().unwrap(),
    })
    .await
    .unwrap();
    println!("{report}");
    // At-least-once: the cases about hiding and discarding prepared rows do not apply.
    assert_eq!(report.skipped().len(), 4, "{report}");
}

/// The `ticker` source with 25 ticks.
struct TickerHarness;

#[async_trait]
impl SourceHarness for TickerHarness {
    fn capabilities(&self) -> SourceCapabilities {
        SourceCapabilities::bounded()
    }

    async fn produce_changes(&self) -> Result<usize, BoxError> {
        // The ticker generates its rows itself: nothing to set up, 25 inserts.
        Ok(25)
    }

    async fn create(&self) -> Result<Box<dyn Source>, BoxError> {
        Ok(TickerFactory.create(&context("source", "conformance", &[("ticks", "25")]))?)
    }
}

#[tokio::test]
async fn the_ticker_source_passes_the_source_checks() {
    let report = source::check(TickerHarness).await.unwrap();
    println!("{report}");
    assert!(report.failed().is_empty());
}
