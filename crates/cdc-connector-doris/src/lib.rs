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
use crate::sink::DorisSink;

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
            sink: Box::new(DorisSink::new(Arc::clone(&config), Arc::clone(&service))),
            applier: Box::new(DorisSchemaApplier::new(service, config)),
        })
    }
}

#[cfg(test)]
mod docs {
    use std::collections::BTreeMap;

    use super::*;

    /// `docs/connectors/doris.md` lists exactly the declared options, with their defaults
    /// (`required` for required ones, an empty cell for none, `""` for the empty string).
    #[test]
    fn the_option_table_matches_the_declared_options() {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../docs/connectors/doris.md"
        );
        let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{path}: {e}"));
        let mut documented = BTreeMap::new();
        let mut in_table = false;
        for line in text.lines().map(str::trim) {
            if line.starts_with("| option") {
                in_table = true;
                continue;
            }
            if !line.starts_with('|') {
                in_table = false;
                continue;
            }
            let cells: Vec<&str> = line.trim_matches('|').split('|').map(str::trim).collect();
            if !in_table || cells.len() < 3 || cells[0].starts_with("---") {
                continue;
            }
            let name = cells[0].trim_matches('`').to_string();
            let default = match cells[1] {
                "required" => "required".to_string(),
                "" => "(none)".to_string(),
                d => d.trim_matches('`').replace("\"\"", ""),
            };
            documented.insert(name, default);
        }
        let factory = DorisSinkFactory;
        let mut declared: BTreeMap<String, String> = factory
            .options()
            .into_iter()
            .map(|o| {
                let default = match (o.required, o.default) {
                    (true, _) => "required".to_string(),
                    (false, None) => "(none)".to_string(),
                    (false, Some(d)) => d.to_string(),
                };
                (o.name.to_string(), default)
            })
            .collect();
        for prefix in factory.option_prefixes() {
            declared.insert(format!("{prefix}*"), "(none)".to_string());
        }
        assert_eq!(documented, declared);
    }
}
