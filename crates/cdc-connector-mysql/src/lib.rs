//! # cdc-connector-mysql
//!
//! The MySQL / MariaDB source (`type: mysql`).
#![warn(missing_docs)]

use cdc_api::{ConfigOption, Error, FactoryContext, Result, Source, SourceFactory};

/// Builds the MySQL source from a `source: {type: mysql, ...}` block.
#[derive(Debug, Clone, Copy, Default)]
pub struct MySqlSourceFactory;

impl SourceFactory for MySqlSourceFactory {
    fn identifier(&self) -> &'static str {
        "mysql"
    }

    fn options(&self) -> Vec<ConfigOption> {
        vec![
            ConfigOption::required("hostname", "MySQL host"),
            ConfigOption::required("username", "MySQL user"),
            ConfigOption::required("password", "MySQL password"),
            ConfigOption::required("tables", "tables to capture"),
        ]
    }

    fn create(&self, _ctx: &FactoryContext) -> Result<Box<dyn Source>> {
        Err(Error::permanent("source 'mysql'", "not implemented yet"))
    }
}
