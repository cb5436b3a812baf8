//! # cdc-connector-starrocks
//!
//! The StarRocks sink (`type: starrocks`). This version declares the options of Flink CDC's
//! StarRocks pipeline sink, so pipeline files are checked, but does not write yet: building
//! it fails with a message saying so.
#![warn(missing_docs)]

use cdc_api::{ConfigOption, Error, FactoryContext, Result, SinkFactory, SinkParts};

/// Builds the StarRocks sink from a `sink: {type: starrocks, ...}` block.
#[derive(Debug, Clone, Copy, Default)]
pub struct StarRocksSinkFactory;

impl SinkFactory for StarRocksSinkFactory {
    fn identifier(&self) -> &'static str {
        "starrocks"
    }

    fn options(&self) -> Vec<ConfigOption> {
        vec![
            ConfigOption::required(
                "jdbc-url",
                "FE MySQL-protocol address, e.g. jdbc:mysql://fe:9030",
            ),
            ConfigOption::required(
                "load-url",
                "FE HTTP addresses separated by ';', e.g. fe:8030",
            ),
            ConfigOption::required("username", "StarRocks user"),
            ConfigOption::required("password", "StarRocks password"),
            ConfigOption::optional_no_default("sink.label-prefix", "prefix of Stream Load labels"),
            ConfigOption::optional(
                "sink.connect.timeout-ms",
                "30000",
                "HTTP connect timeout (100-60000)",
            ),
            ConfigOption::optional(
                "sink.socket.timeout-ms",
                "-1",
                "HTTP read timeout; -1 = none",
            ),
            ConfigOption::optional(
                "sink.wait-for-continue.timeout-ms",
                "30000",
                "wait for 100-continue (3000-600000)",
            ),
            ConfigOption::optional(
                "sink.buffer-flush.max-bytes",
                "157286400",
                "bytes buffered across all tables before a flush",
            ),
            ConfigOption::optional(
                "sink.buffer-flush.interval-ms",
                "300000",
                "flush period per table",
            ),
            ConfigOption::optional(
                "sink.scan-frequency.ms",
                "50",
                "how often flush conditions are checked",
            ),
            ConfigOption::optional("sink.io.thread-count", "2", "concurrent Stream Loads"),
            ConfigOption::optional(
                "sink.at-least-once.use-transaction-stream-load",
                "true",
                "use the transaction interface for at-least-once",
            ),
            ConfigOption::optional(
                "sink.metric.histogram-window-size",
                "100",
                "window of the load latency histogram",
            ),
            ConfigOption::optional_no_default(
                "table.create.num-buckets",
                "buckets of created tables (automatic when unset)",
            ),
            ConfigOption::optional(
                "table.schema-change.timeout",
                "30min",
                "how long to wait for a schema change job",
            ),
            ConfigOption::optional(
                "unicode-char.max-bytes",
                "3",
                "bytes per character when sizing CHAR/VARCHAR (1-4)",
            ),
        ]
    }

    fn option_prefixes(&self) -> Vec<&'static str> {
        vec!["sink.properties.", "table.create.properties."]
    }

    fn create(&self, _ctx: &FactoryContext) -> Result<SinkParts> {
        Err(Error::permanent(
            "sink 'starrocks'",
            "the StarRocks sink does not write yet in this version",
        )
        .with_hint("use the doris sink, or follow issue #5"))
    }
}
