//! One `transform` rule of the pipeline file, checked and with its expressions parsed.

use std::collections::BTreeMap;

use regex::Regex;

use super::bind::check_constants;
use super::expr::Expr;
use super::parse::{ProjectionItem, parse_filter, parse_projection};
use super::types::DecimalMode;
use crate::RuntimeError;
use crate::route::selector_regex;

/// A parsed `transform` rule.
#[derive(Debug, Clone)]
pub(crate) struct Rule {
    pub(crate) selector: Regex,
    /// `None`: every source column, as `*`.
    pub(crate) projection: Option<Vec<ProjectionItem>>,
    pub(crate) filter: Option<Expr>,
    pub(crate) primary_keys: Option<Vec<String>>,
    pub(crate) partition_keys: Option<Vec<String>>,
    pub(crate) table_options: BTreeMap<String, String>,
    /// `converter-after-transform: SOFT_DELETE`.
    pub(crate) soft_delete: bool,
    /// `pipeline.transform.decimal.precision.mode`, for binding.
    pub(crate) decimal_mode: DecimalMode,
}

fn key_list(text: Option<&String>) -> Option<Vec<String>> {
    let keys: Vec<String> = text?
        .split(',')
        .map(|k| k.trim().trim_matches('`').to_string())
        .filter(|k| !k.is_empty())
        .collect();
    (!keys.is_empty()).then_some(keys)
}

impl Rule {
    /// Parses rule `index` (`origin` names the file in messages) and checks the types of
    /// every part of its expressions that does not depend on a table's columns.
    pub(crate) fn parse(
        index: usize,
        map: &BTreeMap<String, String>,
        origin: &str,
        decimal_mode: DecimalMode,
    ) -> Result<Self, RuntimeError> {
        let at = |key: &str| format!("{origin}: transform[{index}].{key}");
        let get = |key: &str| map.get(key).filter(|v| !v.trim().is_empty());
        let selector = selector_regex(get("source-table").map(String::as_str).unwrap_or_default())
            .map_err(|m| RuntimeError::definition(at("source-table"), m))?;
        let projection = get("projection")
            .map(|p| parse_projection(p))
            .transpose()
            .map_err(|m| RuntimeError::definition(at("projection"), m))?;
        let filter = get("filter")
            .map(|f| parse_filter(f))
            .transpose()
            .map_err(|m| RuntimeError::definition(at("filter"), m))?;
        for item in projection.iter().flatten() {
            if let ProjectionItem::Column { name, expr } = item {
                check_constants(expr, decimal_mode).map_err(|m| {
                    RuntimeError::definition(at("projection"), format!("column `{name}`: {m}"))
                })?;
            }
        }
        if let Some(f) = &filter {
            check_constants(f, decimal_mode)
                .map_err(|m| RuntimeError::definition(at("filter"), m))?;
        }
        let delimiter = get("table-options.delimiter").map_or(",", String::as_str);
        let mut table_options = BTreeMap::new();
        if let Some(text) = get("table-options") {
            for pair in text
                .split(delimiter)
                .map(str::trim)
                .filter(|p| !p.is_empty())
            {
                let (k, v) = pair.split_once('=').ok_or_else(|| {
                    RuntimeError::definition(
                        at("table-options"),
                        format!(
                            "'{pair}' is not key=value (options are separated by '{delimiter}')"
                        ),
                    )
                })?;
                table_options.insert(k.trim().to_string(), v.trim().to_string());
            }
        }
        let soft_delete = match get("converter-after-transform") {
            None => false,
            Some(c) if c.trim().eq_ignore_ascii_case("SOFT_DELETE") => true,
            Some(c) => {
                return Err(RuntimeError::definition(
                    at("converter-after-transform"),
                    format!("unknown converter '{c}'; the only one is SOFT_DELETE"),
                ));
            }
        };
        Ok(Self {
            selector,
            projection,
            filter,
            primary_keys: key_list(get("primary-keys")),
            partition_keys: key_list(get("partition-keys")),
            table_options,
            soft_delete,
            decimal_mode,
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn rule(pairs: &[(&str, &str)]) -> Result<Rule, RuntimeError> {
        let map = pairs
            .iter()
            .map(|(k, v)| ((*k).to_string(), (*v).to_string()))
            .collect();
        Rule::parse(0, &map, "p.yaml", DecimalMode::default())
    }

    #[test]
    fn keys_are_read() {
        let r = rule(&[
            ("source-table", "db.\\.*"),
            ("projection", "\\*, id + 1 AS n"),
            ("filter", "id > 0"),
            ("primary-keys", "id, n"),
            ("partition-keys", "n"),
            ("table-options", "a=1;b = x=y"),
            ("table-options.delimiter", ";"),
            ("converter-after-transform", "soft_delete"),
        ])
        .unwrap();
        assert!(r.selector.is_match("db.orders") && !r.selector.is_match("other.orders"));
        assert_eq!(r.primary_keys.unwrap(), ["id", "n"]);
        assert_eq!(r.partition_keys.unwrap(), ["n"]);
        assert_eq!(r.table_options["b"], "x=y");
        assert!(r.soft_delete);
    }

    #[test]
    fn errors_name_rule_and_key() {
        let err = rule(&[("source-table", "db.t"), ("projection", "id, FOO(x) AS y")]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "p.yaml: transform[0].projection: unknown function FOO at 'FOO(x)'"
        );
        let err = rule(&[("source-table", "db.t"), ("filter", "id >")]).unwrap_err();
        assert!(
            err.to_string().starts_with("p.yaml: transform[0].filter: "),
            "{err}"
        );
        let err = rule(&[
            ("source-table", "db.t"),
            ("converter-after-transform", "HARD"),
        ])
        .unwrap_err();
        assert!(err.to_string().contains("SOFT_DELETE"), "{err}");
        let err = rule(&[("source-table", "db.t"), ("table-options", "novalue")]).unwrap_err();
        assert!(err.to_string().contains("not key=value"), "{err}");
    }

    #[test]
    fn constant_type_errors_are_refused_before_any_schema() {
        let err = rule(&[
            ("source-table", "db.t"),
            ("projection", "id, TO_TIMESTAMP_LTZ(TRUE) AS t"),
        ])
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "p.yaml: transform[0].projection: column `t`: TO_TIMESTAMP_LTZ's argument 1 must be \
             a number or a STRING, got BOOLEAN ('true') at 'TO_TIMESTAMP_LTZ(true)'"
        );
        let err = rule(&[
            ("source-table", "db.t"),
            ("filter", "a > 1 AND DATE_ADD('2024-01-01', 'x') = ''"),
        ])
        .unwrap_err();
        assert!(
            err.to_string().starts_with(
                "p.yaml: transform[0].filter: DATE_ADD's argument 2 must be an integer"
            ),
            "{err}"
        );
        // Column types are only known when the table's schema arrives.
        assert!(
            rule(&[
                ("source-table", "db.t"),
                ("projection", "TO_TIMESTAMP_LTZ(c) AS t")
            ])
            .is_ok()
        );
        assert!(
            rule(&[
                ("source-table", "db.t"),
                (
                    "projection",
                    "TO_TIMESTAMP_LTZ('2024-01-01 00:00:00.000') AS t"
                )
            ])
            .is_ok()
        );
    }
}
