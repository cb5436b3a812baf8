//! Pipeline definitions: YAML parsing (with `${ENV}` substitution), then checking and
//! building the pipeline against the test kit's `values` connectors (no I/O).
#![no_main]

use cdc_runtime::{Pipeline, PipelineDefinition};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(definition) = PipelineDefinition::from_yaml_str(text, "fuzz.yaml") {
        let _ = Pipeline::build(&definition, &cdc_testkit::test_registry());
    }
});
