//! Every option a connector declares is documented with its default, and every documented
//! option exists: the option tables of `docs/` cannot drift from the factories.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::path::Path;

/// The rows of tables whose header starts with "| option": name (first cell, in
/// backticks) -> default (second cell; `required`, or `(none)` for an empty cell or a dash,
/// backticks and `""` quotes removed).
fn documented(path: &Path) -> BTreeMap<String, String> {
    let text = std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("{} is missing: {e}", path.display()));
    let mut in_table = false;
    let mut out = BTreeMap::new();
    for line in text.lines() {
        let line = line.trim();
        if line.starts_with("| option") {
            in_table = true;
        } else if !line.starts_with('|') {
            in_table = false;
        } else if in_table {
            let cells: Vec<&str> = line.trim_matches('|').split('|').map(str::trim).collect();
            let Some(name) = cells[0].strip_prefix('`').and_then(|c| c.strip_suffix('`')) else {
                continue;
            };
            let default = match cells.get(1).copied().unwrap_or("") {
                "" | "—" | "-" => "(none)".to_string(),
                d => d.trim_matches('`').replace("\"\"", ""),
            };
            out.insert(name.to_string(), default);
        }
    }
    out
}

fn check(doc: &str, declared: &BTreeMap<String, String>) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let documented = documented(&root.join(doc));
    let missing: Vec<_> = declared
        .keys()
        .filter(|k| !documented.contains_key(*k))
        .collect();
    let extra: Vec<_> = documented
        .keys()
        .filter(|k| !declared.contains_key(*k))
        .collect();
    let wrong: Vec<String> = declared
        .iter()
        .filter_map(|(k, d)| {
            let doc = documented.get(k)?;
            (doc != d).then(|| format!("{k}: documented {doc}, declared {d}"))
        })
        .collect();
    assert!(
        missing.is_empty() && extra.is_empty() && wrong.is_empty(),
        "{doc}: options not documented: {missing:?}; documented but not declared: {extra:?}; defaults that differ: {wrong:?}"
    );
}

/// Declared options with their defaults as the docs write them.
fn declared(
    options: Vec<cdc_api::ConfigOption>,
    prefixes: Vec<&'static str>,
) -> BTreeMap<String, String> {
    options
        .into_iter()
        .map(|o| {
            let default = match (o.required, o.default) {
                (true, _) => "required".to_string(),
                (false, None) => "(none)".to_string(),
                (false, Some(d)) => d.to_string(),
            };
            (o.name.to_string(), default)
        })
        .chain(
            prefixes
                .into_iter()
                .map(|p| (format!("{p}*"), "(none)".to_string())),
        )
        .collect()
}

#[test]
fn pipeline_options_are_documented() {
    check(
        "docs/pipeline.md",
        &declared(cdc_runtime::pipeline_options(), Vec::new()),
    );
}

#[test]
fn connector_options_are_documented() {
    use cdc_api::{SinkFactory, SourceFactory};
    let mysql = cdc_connector_mysql::MySqlSourceFactory;
    check(
        "docs/connectors/mysql.md",
        &declared(mysql.options(), mysql.option_prefixes()),
    );
    let doris = cdc_connector_doris::DorisSinkFactory;
    check(
        "docs/connectors/doris.md",
        &declared(doris.options(), doris.option_prefixes()),
    );
    let starrocks = cdc_connector_starrocks::StarRocksSinkFactory;
    check(
        "docs/connectors/starrocks.md",
        &declared(starrocks.options(), starrocks.option_prefixes()),
    );
    let mut values = declared(cdc_testkit::ValuesSourceFactory.options(), Vec::new());
    values.extend(declared(
        cdc_testkit::ValuesSinkFactory.options(),
        Vec::new(),
    ));
    check("docs/connectors/values.md", &values);
}

/// The description cell of every documented option.
fn descriptions(doc: &str) -> BTreeMap<String, String> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let text = std::fs::read_to_string(root.join(doc)).unwrap();
    let mut in_table = false;
    let mut out = BTreeMap::new();
    for line in text.lines() {
        let line = line.trim();
        if line.starts_with("| option") {
            in_table = true;
        } else if !line.starts_with('|') {
            in_table = false;
        } else if in_table {
            let cells: Vec<&str> = line.trim_matches('|').split('|').map(str::trim).collect();
            if let Some(name) = cells[0].strip_prefix('`').and_then(|c| c.strip_suffix('`')) {
                out.insert(
                    name.to_string(),
                    cells.get(2..).unwrap_or_default().join("|"),
                );
            }
        }
    }
    out
}

/// An option accepted without effect says so in the docs, as `cdc connectors` does.
#[test]
fn options_without_effect_are_documented_as_such() {
    use cdc_api::{SinkFactory, SourceFactory};
    for (doc, options) in [
        ("docs/pipeline.md", cdc_runtime::pipeline_options()),
        (
            "docs/connectors/mysql.md",
            cdc_connector_mysql::MySqlSourceFactory.options(),
        ),
        (
            "docs/connectors/doris.md",
            cdc_connector_doris::DorisSinkFactory.options(),
        ),
        (
            "docs/connectors/starrocks.md",
            cdc_connector_starrocks::StarRocksSinkFactory.options(),
        ),
    ] {
        let described = descriptions(doc);
        let silent: Vec<&str> = options
            .iter()
            .filter(|o| o.no_effect.is_some())
            .filter(|o| {
                !described
                    .get(o.name)
                    .is_some_and(|d| d.to_ascii_lowercase().contains("no effect"))
            })
            .map(|o| o.name)
            .collect();
        assert!(
            silent.is_empty(),
            "{doc}: options without effect whose row does not say \"no effect\" and why: {silent:?}"
        );
    }
}
