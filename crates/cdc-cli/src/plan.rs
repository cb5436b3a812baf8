//! Human-readable descriptions for `cdc validate` and `cdc connectors`.

use std::fmt::Write as _;

use cdc_api::{ConfigOption, ConnectorRegistry, Options};
use cdc_runtime::{PipelineDefinition, PipelineSettings};

/// An option value as `cdc validate` prints it: secrets as `******`, credentials inside a
/// URL (`user:pass@`, `password=`) masked, and any substituted secret masked.
fn shown(key: &str, value: &str) -> String {
    if cdc_runtime::secrets::is_secret_key(key) && !key.to_ascii_lowercase().ends_with("path") {
        return "******".to_string();
    }
    cdc_runtime::secrets::redact(&mask_url_credentials(value))
}

/// `scheme://user:pass@host` -> `scheme://user:******@host`, and `password=...` in a query
/// string -> `password=******`.
fn mask_url_credentials(value: &str) -> String {
    let mut out = value.to_string();
    if let Some(scheme_end) = out.find("://") {
        let rest = &out[scheme_end + 3..];
        let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
        if let Some(at) = rest[..authority_end].rfind('@') {
            if let Some(colon) = rest[..at].find(':') {
                let start = scheme_end + 3 + colon + 1;
                let end = scheme_end + 3 + at;
                out.replace_range(start..end, "******");
            }
        }
    }
    let lower = out.to_ascii_lowercase();
    let mut masked = String::with_capacity(out.len());
    let mut last = 0;
    for (i, _) in lower.match_indices("password=") {
        let start = i + "password=".len();
        if start < last {
            continue;
        }
        let end = out[start..]
            .find(['&', ';', ' '])
            .map_or(out.len(), |e| start + e);
        masked.push_str(&out[last..start]);
        masked.push_str("******");
        last = end;
    }
    masked.push_str(&out[last..]);
    masked
}

fn write_options(out: &mut String, options: &Options) {
    for (k, v) in options.iter() {
        let _ = writeln!(out, "    {k}: {}", shown(k, v));
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
        match o.no_effect {
            Some(why) => {
                let _ = writeln!(
                    out,
                    "    {:<48} {:<22} {}; no effect here: {why}",
                    o.name, default, o.description
                );
            }
            None => {
                let _ = writeln!(out, "    {:<48} {:<22} {}", o.name, default, o.description);
            }
        }
    }
    for p in prefixes {
        let _ = writeln!(
            out,
            "    {p:<48} {:<22} keys under it are translated, passed on or refused one by one (see the connector's docs)",
            "prefix"
        );
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_inside_urls_are_masked() {
        assert_eq!(
            mask_url_credentials("jdbc:mysql://root:s3cret@fe:9030/db?x=1"),
            "jdbc:mysql://root:******@fe:9030/db?x=1"
        );
        assert_eq!(
            mask_url_credentials("jdbc:mysql://fe:9030/db?user=root&password=s3cret&ssl=1"),
            "jdbc:mysql://fe:9030/db?user=root&password=******&ssl=1"
        );
        assert_eq!(mask_url_credentials("http://fe:8030"), "http://fe:8030");
        assert_eq!(shown("password", "x"), "******");
        assert_eq!(shown("sink.ssl.ca-path", "/etc/ca.pem"), "/etc/ca.pem");
    }
}
