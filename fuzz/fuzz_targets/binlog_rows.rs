//! The MySQL source's row decoding: rows events for a table map built from the input
//! (see `cdc_connector_mysql::fuzzing::binlog_rows`).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| cdc_connector_mysql::fuzzing::binlog_rows(data));
