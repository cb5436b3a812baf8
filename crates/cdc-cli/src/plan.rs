//! Human-readable descriptions for `cdc validate` and `cdc connectors`.

use std::fmt::Write as _;

use cdc_api::{ConfigOption, ConnectorRegistry, Options};
use cdc_runtime::{PipelineDefinition, PipelineSettings};

/// Option values that must never be printed.
fn is_secret(key: &str) -> bool {
    let k = key.to_ascii_lowercase();
    k.contains("password") || k.contains("secret") || k.contains("token")
}

fn write_options(out: &mut String, options: &Options) {
    for (k, v) in options.iter() {
        let v = if is_secret(k) { "******" } else { v };
        let _ = writeln!(out, "    {k}: {v}");
    }
}

pub(crate) fn describe(definition: &PipelineDefinition, settings: &PipelineSettings) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "Pipeline '{}'", settings.name);
    let _ = writeln!(out, "  source: {}", definition.source.connector_type);
    write_options(&mut out, &definition.source.options);
    let _ = writeln!(out, "  sink: {}", definition.sink.connector.connector_type);
    write_options(&mut out, &definition.sink.connector.options);
    if let Some(include) = &definition.sink.include_schema_changes {
        let _ = writeln!(out, "    include.schema.changes: [{}]", include.join(", "));
    }
    if !definition.sink.exclude_schema_changes.is_empty() {
        let _ = writeln!(
            out,
            "    exclude.schema.changes: [{}]",
            definition.sink.exclude_schema_changes.join(", ")
        );
    }
    let _ = writeln!(
        out,
        "  schema.change.behavior: {:?}",
        settings.schema_change_behavior
    );
    let _ = writeln!(
        out,
        "  checkpoint.interval: {:?}",
        settings.checkpoint_interval
    );
    let _ = writeln!(out, "  state: {}", settings.state);
    out
}

fn write_option_table(out: &mut String, options: &[ConfigOption], prefixes: &[&str]) {
    for o in options {
        let default = match (o.required, o.default) {
            (true, _) => "required".to_string(),
            (false, Some(d)) => format!("default {d}"),
            (false, None) => "optional".to_string(),
        };
        let _ = writeln!(out, "    {:<48} {:<22} {}", o.name, default, o.description);
    }
    for p in prefixes {
        let _ = writeln!(out, "    {p:<48} {:<22} passed through", "prefix");
    }
}

pub(crate) fn connectors(registry: &ConnectorRegistry) -> String {
    let mut out = String::new();
    for id in registry.source_identifiers() {
        if let Some(f) = registry.source(id) {
            let _ = writeln!(out, "source {id}");
            write_option_table(&mut out, &f.options(), &f.option_prefixes());
        }
    }
    for id in registry.sink_identifiers() {
        if let Some(f) = registry.sink(id) {
            let _ = writeln!(out, "sink {id}");
            write_option_table(&mut out, &f.options(), &f.option_prefixes());
        }
    }
    out
}
