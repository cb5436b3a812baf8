//! The MySQL source's DDL tracking: NUL-separated statements applied in order to tracked
//! tables (see `cdc_connector_mysql::fuzzing::ddl`).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        cdc_connector_mysql::fuzzing::ddl(text);
    }
});
