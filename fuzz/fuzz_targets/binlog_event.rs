//! The MySQL source's binlog event decoding: a binlog file, or events around a
//! synthesized format description (see `cdc_connector_mysql::fuzzing::binlog_event`).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| cdc_connector_mysql::fuzzing::binlog_event(data));
