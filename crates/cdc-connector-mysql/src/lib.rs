//! # cdc-connector-mysql
//!
//! The MySQL / MariaDB source (`type: mysql`): a consistent, lock-free initial snapshot
//! (see the `snapshot` module for why it is exact), then the binlog from the lowest
//! snapshot position, with every change delivered once. Rows decode straight from the
//! binlog bytes; DDL in the binlog becomes schema change events in order with the rows;
//! the offset carries the binlog position, the tracked schemas and the snapshot progress.
//!
//! Options and defaults follow Flink CDC's MySQL pipeline source; see `docs/connectors/mysql.md`.
#![warn(missing_docs)]

pub mod bench_api;
mod binlog;
mod charset_tables;
mod column_filter;
mod config;
mod ddl;
mod error;
pub mod fuzzing;
mod geometry;
mod online_schema;
mod passthrough;
mod rate_limit;
mod schema;
mod signal;
mod snapshot;
mod snapshot_key;
mod snapshot_value;
mod source;
mod table_filter;
#[doc(hidden)]
pub mod testing;
mod tls;
mod types;

use cdc_api::{ConfigOption, FactoryContext, Result, Source, SourceFactory};

pub(crate) use config::MySqlSourceConfig;
pub use signal::request_reread;
pub use source::MySqlSource;

/// Builds the MySQL source from a `source: {type: mysql, ...}` block.
#[derive(Debug, Clone, Copy, Default)]
pub struct MySqlSourceFactory;

impl SourceFactory for MySqlSourceFactory {
    fn identifier(&self) -> &'static str {
        "mysql"
    }

    fn options(&self) -> Vec<ConfigOption> {
        config::all_options()
    }

    fn option_prefixes(&self) -> Vec<&'static str> {
        vec!["jdbc.properties.", "debezium."]
    }

    fn create(&self, ctx: &FactoryContext) -> Result<Box<dyn Source>> {
        // `debezium.*` and `jdbc.properties.*` are translated or refused by the config.
        Ok(Box::new(MySqlSource::new(MySqlSourceConfig::from_context(
            ctx,
        )?)))
    }
}

/// For tools that read the source, such as `cdc verify`: a connection to the server of the
/// source block of `ctx`, made as the source makes it (TLS, connect timeout and retries;
/// the session in UTC), and the tables it captures (`tables` / `tables.exclude`), sorted.
pub async fn connect_and_list_tables(
    ctx: &FactoryContext,
) -> Result<(mysql_async::Conn, Vec<(String, String)>)> {
    let config = MySqlSourceConfig::from_context(ctx)?;
    let filter = config.filter.clone();
    let source = MySqlSource::new(config);
    let (mut conn, _, _) = source.first_connection().await?;
    let tables = schema::list_tables(&mut conn, &filter).await?;
    Ok((conn, tables))
}
