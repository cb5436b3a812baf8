//! # cdc-testkit: real parts for testing pipelines and connectors
//!
//! * [`MariaDb`]: a private MariaDB server (temporary data directory, free port, binlog on in
//!   ROW format with full row images, a unique server id), stopped when dropped.
//! * [`DorisEmulator`]: an in-process Doris FE + BE (Stream Load, 2PC, the HTTP SQL API),
//!   strict like the real servers, with injectable faults; see [`doris`].
//! * [`StarRocksEmulator`]: an in-process StarRocks FE (HTTP and MySQL ports) + BE
//!   (Stream Load, the transaction interface, asynchronous schema changes), strict like
//!   the real servers, with injectable faults; see [`starrocks`].
//! * [`ValuesSourceFactory`] / [`ValuesSinkFactory`]: in-memory connectors (`type: values`)
//!   for runtime tests, like Flink CDC's values connector. The sink keeps what was committed
//!   in a [`ValuesDatabase`] you can read back.
//!
//! Tests that need MariaDB call [`MariaDb::start_or_skip`]: when the server binaries are
//! missing it prints how to install them and returns `None`, unless the environment variable
//! `CDC_TEST_REQUIRE_MARIADB=1` is set (CI sets it), in which case the test fails.
#![warn(missing_docs)]

pub mod conformance;
pub mod doris;
pub mod fuzz;
mod mariadb;
mod recorder;
mod s3;
pub mod starrocks;
mod tls;
mod values;

pub use doris::{
    ColumnInfo, DorisEmulator, DorisEmulatorOptions, DorisFault, EmulatorError, LoadRecord,
    QueryResult, TableModel, TxnRecord, TxnState,
};
pub use mariadb::{MariaDb, MariaDbError, REQUIRE_MARIADB_ENV};
pub use recorder::RequestRecorder;
pub use s3::{REQUIRE_S3_ENV, S3Server, S3ServerError};
pub use starrocks::{
    StarRocksEmulator, StarRocksEmulatorError, StarRocksEmulatorOptions, StarRocksFault,
    StarRocksLoadRecord, StarRocksTxnRecord, StarRocksTxnState,
};
pub use tls::{TestTls, install_crypto_provider};
pub use values::{
    ValuesDatabase, ValuesSinkFactory, ValuesSourceFactory, ValuesTable, register_event_set,
    values_database,
};

/// A registry with the values source and sink, for tests.
pub fn test_registry() -> cdc_api::ConnectorRegistry {
    let mut registry = cdc_api::ConnectorRegistry::new();
    registry
        .register_source(ValuesSourceFactory)
        .register_sink(ValuesSinkFactory);
    registry
}
