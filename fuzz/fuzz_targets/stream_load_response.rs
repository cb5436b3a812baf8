//! The Doris and StarRocks sinks' answer handling: Stream Load, 2PC and transaction
//! interface answers (status + body), and redirect `Location`s.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    cdc_connector_doris::fuzzing::stream_load_response(data);
    cdc_connector_doris::fuzzing::redirect(data);
    cdc_connector_starrocks::fuzzing::stream_load_response(data);
    cdc_connector_starrocks::fuzzing::redirect(data);
});
