//! Reading the binlog: positions, the replication stream, and row decoding.

pub(crate) mod decimal;
#[cfg(test)]
mod fixture_tests;
pub(crate) mod gtid_set;
pub(crate) mod mariadb_gtid;
pub(crate) mod position;
pub(crate) mod reader;
pub(crate) mod rows;
pub(crate) mod status;
pub(crate) mod timestamp_start;
