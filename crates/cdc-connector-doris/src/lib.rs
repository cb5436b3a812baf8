//! # cdc-connector-doris
//!
//! The Apache Doris sink (`type: doris`).
#![warn(missing_docs)]

use cdc_api::{ConfigOption, Error, FactoryContext, Result, SinkFactory, SinkParts};

/// Builds the Doris sink from a `sink: {type: doris, ...}` block.
#[derive(Debug, Clone, Copy, Default)]
pub struct DorisSinkFactory;

impl SinkFactory for DorisSinkFactory {
    fn identifier(&self) -> &'static str {
        "doris"
    }

    fn options(&self) -> Vec<ConfigOption> {
        vec![
            ConfigOption::required("fenodes", "FE HTTP addresses"),
            ConfigOption::required("username", "Doris user"),
        ]
    }

    fn create(&self, _ctx: &FactoryContext) -> Result<SinkParts> {
        Err(Error::permanent("sink 'doris'", "not implemented yet"))
    }
}
