//! # cdc-connector-doris
//!
//! The Apache Doris sink (`type: doris`): rows go in as Stream Loads of JSON lines with
//! `__DORIS_DELETE_SIGN__`, schema changes as SQL over the FE's HTTP API. Option names and
//! defaults are Flink CDC's (`fenodes`, `sink.buffer-flush.max-rows`, ...).
//!
//! * At-least-once (the default, `sink.enable.batch-mode: true`): per-table buffers loaded
//!   by size, row count, interval and at every checkpoint; UNIQUE KEY upserts make replays
//!   harmless.
//! * Exactly-once (`sink.enable-2pc: true`, or batch mode off): two-phase Stream Load with
//!   deterministic labels per pipeline, table and checkpoint; see the `sink` module.
//!
//! Modules, each with one job: `config` (options), `type_mapping` (CDC -> Doris types),
//! `ddl` (statements), `encoder` (rows -> JSON lines), `service` (HTTP), `retry` (what an
//! answer means), `applier` (schema changes), `sink` (buffers, loads, checkpoints).
//!
//! ```
//! use cdc_api::{FactoryContext, Options, SinkFactory};
//! use cdc_connector_doris::DorisSinkFactory;
//! let mut options = Options::new("sink");
//! options.insert("fenodes", "127.0.0.1:8030");
//! options.insert("username", "root");
//! let ctx = FactoryContext {
//!     pipeline_name: "orders".into(),
//!     options,
//!     pipeline_options: Options::new("pipeline"),
//! };
//! assert!(DorisSinkFactory.create(&ctx).is_ok());
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

use crate::applier::DorisSchemaApplier;
use crate::config::DorisSinkConfig;
use crate::service::DorisService;
use crate::sink::doris_sink;

/// Builds the Doris sink from a `sink: {type: doris, ...}` block.
#[derive(Debug, Clone, Copy, Default)]
pub struct DorisSinkFactory;

impl SinkFactory for DorisSinkFactory {
    fn identifier(&self) -> &'static str {
        "doris"
    }

    fn options(&self) -> Vec<ConfigOption> {
        config::all_options()
    }

    fn option_prefixes(&self) -> Vec<&'static str> {
        vec![
            config::PROPERTIES_PREFIX,
            config::TABLE_PROPERTIES_PREFIX,
            config::AUTO_PARTITION_PREFIX,
        ]
    }

    fn create(&self, ctx: &FactoryContext) -> Result<SinkParts> {
        let config = Arc::new(DorisSinkConfig::from_context(ctx)?);
        let ca = match &config.ca_path {
            Some(path) => Some(service::read_ca(path).map_err(|e| {
                Error::invalid_option(ctx.options.qualified(config::SSL_CA_PATH.name), e)
            })?),
            None => None,
        };
        let service = DorisService::new(
            config.fenodes.clone(),
            config.benodes.clone(),
            config.auto_redirect,
            config.username.clone(),
            config.password.clone(),
            ca,
        )
        .map_err(|e| Error::permanent("building the Doris sink", e))?;
        let service = Arc::new(service);
        Ok(SinkParts {
            sink: Box::new(doris_sink(Arc::clone(&config), Arc::clone(&service))),
            applier: Box::new(DorisSchemaApplier::new(service, config)),
        })
    }
}

/// The FE's HTTP SQL API reached as the sink reaches it (same `fenodes`, credentials and
/// TLS), for tools that read the target, such as `cdc verify`.
#[derive(Debug)]
pub struct DorisSqlClient {
    service: DorisService,
}

impl DorisSqlClient {
    /// A client for the sink block of `ctx`; no network I/O.
    pub fn from_context(ctx: &FactoryContext) -> Result<Self> {
        let config = DorisSinkConfig::from_context(ctx)?;
        let ca = match &config.ca_path {
            Some(path) => Some(service::read_ca(path).map_err(|e| {
                Error::invalid_option(ctx.options.qualified(config::SSL_CA_PATH.name), e)
            })?),
            None => None,
        };
        let service = DorisService::new(
            config.fenodes.clone(),
            Vec::new(),
            true,
            config.username.clone(),
            config.password.clone(),
            ca,
        )
        .map_err(|e| Error::permanent("building the Doris SQL client", e))?;
        Ok(Self { service })
    }

    /// Runs `sql` through `POST /api/query/default_cluster/{db}` asking for at most
    /// `limit` rows, within `timeout`: the HTTP status and body, or a transport failure.
    pub async fn query(
        &self,
        db: &str,
        sql: &str,
        limit: usize,
        timeout: std::time::Duration,
    ) -> std::result::Result<(u16, Vec<u8>), String> {
        self.service
            .query_rows(db, sql, limit, timeout)
            .await
            .map(|a| (a.status, a.body.to_vec()))
    }
}
