//! Every option a connector declares is documented, and every documented option exists.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeSet;
use std::path::Path;

/// Names in the first cell ("| `name` |") of the rows of tables whose header starts with
/// "| option".
fn documented(path: &Path) -> BTreeSet<String> {
    let text = std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("{} is missing: {e}", path.display()));
    let mut in_table = false;
    let mut out = BTreeSet::new();
    for line in text.lines() {
        let line = line.trim();
        if line.starts_with("| option") {
            in_table = true;
        } else if !line.starts_with('|') {
            in_table = false;
        } else if in_table {
            if let Some((name, _)) = line.strip_prefix("| `").and_then(|l| l.split_once('`')) {
                out.insert(name.to_string());
            }
        }
    }
    out
}

fn check(doc: &str, declared: BTreeSet<String>) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let documented = documented(&root.join(doc));
    let missing: Vec<_> = declared.difference(&documented).collect();
    let extra: Vec<_> = documented.difference(&declared).collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "{doc}: options not documented: {missing:?}; documented but not declared: {extra:?}"
    );
}

fn names(options: Vec<cdc_api::ConfigOption>, prefixes: Vec<&'static str>) -> BTreeSet<String> {
    options
        .into_iter()
        .map(|o| o.name.to_string())
        .chain(prefixes.into_iter().map(|p| format!("{p}*")))
        .collect()
}

#[test]
fn pipeline_options_are_documented() {
    check(
        "docs/pipeline.md",
        names(cdc_runtime::pipeline_options(), Vec::new()),
    );
}

#[test]
fn connector_options_are_documented() {
    use cdc_api::{SinkFactory, SourceFactory};
    let mysql = cdc_connector_mysql::MySqlSourceFactory;
    check(
        "docs/connectors/mysql.md",
        names(mysql.options(), mysql.option_prefixes()),
    );
    let doris = cdc_connector_doris::DorisSinkFactory;
    check(
        "docs/connectors/doris.md",
        names(doris.options(), doris.option_prefixes()),
    );
    let starrocks = cdc_connector_starrocks::StarRocksSinkFactory;
    check(
        "docs/connectors/starrocks.md",
        names(starrocks.options(), starrocks.option_prefixes()),
    );
    let mut values: BTreeSet<String> =
        names(cdc_testkit::ValuesSourceFactory.options(), Vec::new());
    values.extend(names(cdc_testkit::ValuesSinkFactory.options(), Vec::new()));
    check("docs/connectors/values.md", values);
}
