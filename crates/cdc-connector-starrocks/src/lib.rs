//! # cdc-connector-starrocks
//!
//! The StarRocks sink (`type: starrocks`): rows go in as JSON arrays with `__op` (0 upsert,
//! 1 delete) into PRIMARY KEY tables, through StarRocks' transaction Stream Load interface
//! (or plain Stream Load); tables and schema changes go over the FE's MySQL port. Option
//! names and defaults are Flink CDC's (`jdbc-url`, `load-url`, `sink.buffer-flush.max-bytes`,
//! ...), plus `sink.semantic` and `sink.max-retries`.
//!
//! * At-least-once (the default): per-table buffers loaded by size, interval and at every
//!   checkpoint; primary-key upserts make replays harmless.
//! * Exactly-once (`sink.semantic: exactly-once`): transactions prepared at each checkpoint
//!   barrier and committed once the checkpoint is durable, with deterministic labels per
//!   pipeline, table and checkpoint; see the `sink` module.
//!
//! Modules, each with one job: `config` (options), `type_mapping` (CDC -> StarRocks types),
//! `ddl` (statements), `encoder` (rows -> JSON), `service` (HTTP), `retry` (what an answer
//! means), `applier` (schema changes over the MySQL port), `sink` (buffers, loads,
//! checkpoints).
//!
//! ```
//! use cdc_api::{FactoryContext, Options, SinkFactory};
//! use cdc_connector_starrocks::StarRocksSinkFactory;
//! let mut options = Options::new("sink");
//! options.insert("jdbc-url", "jdbc:mysql://127.0.0.1:9030");
//! options.insert("load-url", "127.0.0.1:8030");
//! options.insert("username", "root");
//! options.insert("password", "");
//! let ctx = FactoryContext {
//!     pipeline_name: "orders".into(),
//!     options,
//!     pipeline_options: Options::new("pipeline"),
//! };
//! assert!(StarRocksSinkFactory.create(&ctx).is_ok());
//! ```
#![warn(missing_docs)]

mod applier;
pub mod bench_api;
mod config;
mod ddl;
mod encoder;
#[cfg(test)]
mod fuzz_tests;
pub mod fuzzing;
mod retry;
mod service;
mod sink;
mod type_mapping;

use std::sync::Arc;

use cdc_api::{ConfigOption, Error, FactoryContext, Result, SinkFactory, SinkParts};

use crate::applier::StarRocksSchemaApplier;
use crate::config::StarRocksSinkConfig;
use crate::service::StarRocksService;
use crate::sink::starrocks_sink;

/// Builds the StarRocks sink from a `sink: {type: starrocks, ...}` block.
#[derive(Debug, Clone, Copy, Default)]
pub struct StarRocksSinkFactory;

impl SinkFactory for StarRocksSinkFactory {
    fn identifier(&self) -> &'static str {
        "starrocks"
    }

    fn options(&self) -> Vec<ConfigOption> {
        config::all_options()
    }

    fn option_prefixes(&self) -> Vec<&'static str> {
        vec![config::PROPERTIES_PREFIX, config::TABLE_PROPERTIES_PREFIX]
    }

    fn create(&self, ctx: &FactoryContext) -> Result<SinkParts> {
        let config = Arc::new(StarRocksSinkConfig::from_context(ctx)?);
        let ca = match &config.ca_path {
            Some(path) => Some(service::read_ca(path).map_err(|e| {
                Error::invalid_option(ctx.options.qualified(config::SSL_CA_PATH.name), e)
            })?),
            None => None,
        };
        let service = StarRocksService::new(
            config.load_urls.clone(),
            config.username.clone(),
            config.password.clone(),
            ca,
            config.connect_timeout,
            config.request_timeout,
        )
        .map_err(|e| Error::permanent("building the StarRocks sink", e))?
        .with_probe_timeout(config.wait_for_continue);
        let service = Arc::new(service);
        Ok(SinkParts {
            sink: Box::new(starrocks_sink(Arc::clone(&config), Arc::clone(&service))),
            applier: Box::new(StarRocksSchemaApplier::new(config, service)),
        })
    }
}

/// The MySQL-protocol connection options of the sink block of `ctx` (`jdbc-url`,
/// `username`, `password`), as its DDL connects, and its connect timeout; for tools that
/// read the target, such as `cdc verify`. No network I/O.
pub fn mysql_opts(ctx: &FactoryContext) -> Result<(mysql_async::Opts, std::time::Duration)> {
    let config = StarRocksSinkConfig::from_context(ctx)?;
    let (host, port) = config
        .mysql_address
        .rsplit_once(':')
        .map_or((config.mysql_address.as_str(), 9030), |(h, p)| {
            (h, p.parse().unwrap_or(9030))
        });
    let opts = mysql_async::OptsBuilder::default()
        .ip_or_hostname(host.to_string())
        .tcp_port(port)
        .user(Some(config.username.clone()))
        .pass(Some(config.password.expose().to_string()))
        .prefer_socket(false);
    Ok((opts.into(), config.connect_timeout))
}
