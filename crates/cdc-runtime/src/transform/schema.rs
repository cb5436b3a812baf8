//! The output schema of a transformed table, derived from its input schema, and the schema
//! changes that turn one output schema into the next.

use std::collections::BTreeMap;

use cdc_api::{Column, ColumnPosition, DataTypeKind, Schema, SchemaChangeEvent, TableId, Value};

use super::bind::{Scope, bind};
use super::expr::{Expr, Node};
use super::parse::ProjectionItem;
use super::rule::Rule;

/// A rule bound to one input schema: the output schema and how to compute each column.
#[derive(Debug, Clone)]
pub(crate) struct Bound {
    pub(crate) output: Schema,
    /// One expression per output column, in output order.
    pub(crate) columns: Vec<Expr>,
    pub(crate) filter: Option<Expr>,
    /// Output columns are the input columns unchanged: rows need no projection.
    pub(crate) identity: bool,
}

/// Derives the output schema of `rule` on `input`. Errors name the column or key.
pub(crate) fn derive(rule: &Rule, input: &Schema) -> Result<Bound, String> {
    let no_aliases = Scope {
        schema: input,
        aliases: &[],
    };
    let wildcard = [ProjectionItem::Wildcard];
    let items = rule.projection.as_deref().unwrap_or(&wildcard);
    let mut columns: Vec<Column> = Vec::new();
    let mut exprs: Vec<Expr> = Vec::new();
    let mut computed: Vec<(String, Expr)> = Vec::new();
    for item in items {
        match item {
            ProjectionItem::Wildcard => {
                for (i, c) in input.columns.iter().enumerate() {
                    columns.push(c.clone());
                    exprs.push(Expr {
                        node: Node::Input(i),
                        ty: c.data_type.clone(),
                        text: c.name.clone(),
                    });
                }
            }
            ProjectionItem::Column { name, expr } => {
                let bound = bind(expr, &no_aliases)
                    .map_err(|m| format!("projection column `{name}`: {m}"))?;
                // Names the filter may use for this column (a plain source column is
                // found in the input anyway).
                let renamed =
                    !matches!(bound.node, Node::Input(i) if input.columns[i].name == *name);
                if renamed {
                    computed.push((name.clone(), bound.clone()));
                }
                let column = match bound.node {
                    // A source column keeps its default and comment.
                    Node::Input(i) => Column {
                        name: name.clone(),
                        ..input.columns[i].clone()
                    },
                    _ => Column::new(name.clone(), bound.ty.clone()),
                };
                columns.push(column);
                exprs.push(bound);
            }
        }
    }
    for (i, c) in columns.iter().enumerate() {
        if columns[..i].iter().any(|o| o.name == c.name) {
            return Err(format!(
                "column `{}` appears twice in the projection; give one of them another name with AS",
                c.name
            ));
        }
    }
    let filter = match &rule.filter {
        None => None,
        Some(f) => {
            let scope = Scope {
                schema: input,
                aliases: &computed,
            };
            let bound = bind(f, &scope).map_err(|m| format!("filter: {m}"))?;
            if bound.ty.kind != DataTypeKind::Boolean
                && !matches!(bound.node, Node::Literal(Value::Null))
            {
                return Err(format!(
                    "filter: the condition must be BOOLEAN, got {} at '{}'",
                    bound.ty.kind, bound.text
                ));
            }
            Some(bound)
        }
    };
    let has = |name: &String| columns.iter().any(|c| c.name == *name);
    let primary_key = match &rule.primary_keys {
        Some(keys) => {
            if let Some(missing) = keys.iter().find(|k| !has(k)) {
                return Err(format!(
                    "primary-keys: column `{missing}` is not in the output (columns: {})",
                    names(&columns)
                ));
            }
            keys.clone()
        }
        // The source key stays only when all of it is still there.
        None if input.primary_key.iter().all(has) => input.primary_key.clone(),
        None => Vec::new(),
    };
    let partition_keys = match &rule.partition_keys {
        Some(keys) => {
            if let Some(missing) = keys.iter().find(|k| !has(k)) {
                return Err(format!(
                    "partition-keys: column `{missing}` is not in the output (columns: {})",
                    names(&columns)
                ));
            }
            keys.clone()
        }
        None => input
            .partition_keys
            .iter()
            .filter(|k| has(k))
            .cloned()
            .collect(),
    };
    let mut options = input.options.clone();
    options.extend(rule.table_options.clone());
    let identity = columns.len() == input.columns.len()
        && exprs
            .iter()
            .enumerate()
            .all(|(i, e)| matches!(e.node, Node::Input(j) if j == i))
        && columns
            .iter()
            .zip(&input.columns)
            .all(|(a, b)| a.name == b.name);
    Ok(Bound {
        output: Schema {
            columns,
            primary_key,
            partition_keys,
            options,
            comment: input.comment.clone(),
        },
        columns: exprs,
        filter,
        identity,
    })
}

fn names(columns: &[Column]) -> String {
    columns
        .iter()
        .map(|c| c.name.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

/// The schema changes that turn output schema `old` into `new`, in the order a sink applies
/// them: renames (the ones the source made, when they reach the output), drops, adds (each
/// at its position), type and comment changes.
pub(crate) fn diff(
    table: &TableId,
    old: &Schema,
    new: &Schema,
    renames: &[(String, String)],
) -> Vec<SchemaChangeEvent> {
    let mut out = Vec::new();
    let mut current: Vec<String> = old.columns.iter().map(|c| c.name.clone()).collect();
    let renamed: Vec<(String, String)> = renames
        .iter()
        .filter(|(o, n)| {
            current.contains(o)
                && !current.contains(n)
                && new.column(n).is_some()
                && new.column(o).is_none()
        })
        .cloned()
        .collect();
    if !renamed.is_empty() {
        for name in &mut current {
            if let Some((_, n)) = renamed.iter().find(|(o, _)| o == name) {
                name.clone_from(n);
            }
        }
        out.push(SchemaChangeEvent::RenameColumn {
            table_id: table.clone(),
            renames: renamed.clone(),
        });
    }
    let old_column = |name: &str| -> Option<&Column> {
        let original = renamed
            .iter()
            .find(|(_, n)| n == name)
            .map_or(name, |(o, _)| o.as_str());
        old.column(original)
    };
    let dropped: Vec<String> = current
        .iter()
        .filter(|n| new.column(n).is_none())
        .cloned()
        .collect();
    if !dropped.is_empty() {
        current.retain(|n| !dropped.contains(n));
        out.push(SchemaChangeEvent::DropColumn {
            table_id: table.clone(),
            columns: dropped,
        });
    }
    let mut added = Vec::new();
    for (i, c) in new.columns.iter().enumerate() {
        if current.contains(&c.name) {
            continue;
        }
        let position = if i == 0 {
            ColumnPosition::First
        } else if i == new.columns.len() - 1 {
            ColumnPosition::Last
        } else {
            ColumnPosition::After(new.columns[i - 1].name.clone())
        };
        added.push((c.clone(), position));
        current.push(c.name.clone());
    }
    if !added.is_empty() {
        out.push(SchemaChangeEvent::AddColumn {
            table_id: table.clone(),
            columns: added,
        });
    }
    let mut types = Vec::new();
    let mut comments = BTreeMap::new();
    for c in &new.columns {
        if let Some(before) = old_column(&c.name) {
            if before.data_type != c.data_type {
                types.push((c.name.clone(), c.data_type.clone()));
            }
            if before.comment != c.comment {
                if let Some(comment) = &c.comment {
                    comments.insert(c.name.clone(), comment.clone());
                }
            }
        }
    }
    if !types.is_empty() || !comments.is_empty() {
        out.push(SchemaChangeEvent::AlterColumnType {
            table_id: table.clone(),
            types,
            comments,
        });
    }
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use cdc_api::{DataType, DataTypeKind as K};

    use super::*;

    fn rule(pairs: &[(&str, &str)]) -> Rule {
        let mut map: BTreeMap<String, String> = pairs
            .iter()
            .map(|(k, v)| ((*k).to_string(), (*v).to_string()))
            .collect();
        map.insert("source-table".into(), "db.t".into());
        Rule::parse(0, &map, "p").unwrap()
    }

    fn input() -> Schema {
        Schema::new(vec![
            Column::new("id", DataType::new(K::Int).not_null()).with_comment("key"),
            Column::new("name", DataType::new(K::VarChar { length: 10 })),
        ])
        .with_primary_key(["id"])
    }

    fn cols(s: &Schema) -> Vec<String> {
        s.columns
            .iter()
            .map(|c| format!("{} {}", c.name, c.data_type))
            .collect()
    }

    #[test]
    fn outputs_follow_the_projection() {
        let b = derive(
            &rule(&[("projection", "\\*, UPPER(name) AS up, id * 2 AS twice")]),
            &input(),
        )
        .unwrap();
        assert_eq!(
            cols(&b.output),
            [
                "id INT NOT NULL",
                "name VARCHAR(10)",
                "up STRING",
                "twice INT NOT NULL"
            ]
        );
        assert_eq!(b.output.primary_key, ["id"]);
        assert_eq!(b.output.columns[0].comment.as_deref(), Some("key"));
        assert!(!b.identity);
        let b = derive(&rule(&[("filter", "id > 1")]), &input()).unwrap();
        assert!(b.identity);
        let b = derive(
            &rule(&[("projection", "name"), ("primary-keys", "name")]),
            &input(),
        )
        .unwrap();
        assert_eq!(b.output.primary_key, ["name"]);
        let b = derive(&rule(&[("projection", "name")]), &input()).unwrap();
        assert!(b.output.primary_key.is_empty());
    }

    #[test]
    fn derive_errors_name_the_column() {
        let err = derive(&rule(&[("projection", "id, nope + 1 AS x")]), &input()).unwrap_err();
        assert_eq!(err, "projection column `x`: unknown column `nope`");
        let err = derive(&rule(&[("filter", "missing > 1")]), &input()).unwrap_err();
        assert_eq!(err, "filter: unknown column `missing`");
        let err = derive(
            &rule(&[("projection", "id"), ("primary-keys", "name")]),
            &input(),
        )
        .unwrap_err();
        assert!(
            err.contains("primary-keys: column `name` is not in the output"),
            "{err}"
        );
        let err = derive(&rule(&[("projection", "\\*, id")]), &input()).unwrap_err();
        assert!(err.contains("appears twice"), "{err}");
        let err = derive(&rule(&[("filter", "id + 1")]), &input()).unwrap_err();
        assert!(err.contains("must be BOOLEAN"), "{err}");
        let err = derive(&rule(&[("filter", "1")]), &input()).unwrap_err();
        assert!(err.contains("must be BOOLEAN, got INT at '1'"), "{err}");
    }

    #[test]
    fn diffs_become_schema_changes() {
        let t = TableId::new("db", "t");
        let old = input();
        let mut new = old.clone();
        new.columns
            .insert(1, Column::new("age", DataType::new(K::Int)));
        new.columns[2].name = "full_name".into();
        new.columns[0].data_type = DataType::new(K::BigInt).not_null();
        let changes = diff(&t, &old, &new, &[("name".into(), "full_name".into())]);
        let mut replay = old.clone();
        for c in &changes {
            replay = c.apply_to(&replay).unwrap();
        }
        assert_eq!(replay.columns, new.columns);
        assert!(matches!(changes[0], SchemaChangeEvent::RenameColumn { .. }));
        assert_eq!(changes.len(), 3);
        assert!(diff(&t, &old, &old, &[]).is_empty());
    }
}
