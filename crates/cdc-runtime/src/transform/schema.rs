//! The output schema of a transformed table, derived from its input schema, and the schema
//! changes that turn one output schema into the next.

use std::collections::BTreeMap;

use cdc_api::{
    Column, ColumnPosition, DataType, DataTypeKind, Schema, SchemaChangeEvent, TableId, Value,
};

use super::bind::{Scope, bind};
use super::expr::{Expr, Func, Node};
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
        mode: rule.decimal_mode,
    };
    let wildcard = [ProjectionItem::Wildcard];
    let items = rule.projection.as_deref().unwrap_or(&wildcard);
    let mut columns: Vec<Column> = Vec::new();
    let mut exprs: Vec<Expr> = Vec::new();
    let mut computed: Vec<(String, Expr)> = Vec::new();
    // A later item with the name of an earlier one replaces it where it stands, as Flink
    // CDC's TransformParser.generateProjectionColumns does: `\*, CONCAT('v', v) AS v` keeps
    // `v` at its place in the source order, with the expression's value and type.
    let place = |columns: &mut Vec<Column>, exprs: &mut Vec<Expr>, c: Column, e: Expr| match columns
        .iter()
        .position(|o| o.name == c.name)
    {
        Some(i) => {
            columns[i] = c;
            exprs[i] = e;
        }
        None => {
            columns.push(c);
            exprs.push(e);
        }
    };
    for item in items {
        match item {
            ProjectionItem::Wildcard => {
                for (i, c) in input.columns.iter().enumerate() {
                    computed.retain(|(n, _)| *n != c.name);
                    let e = Expr {
                        node: Node::Input(i),
                        ty: c.data_type.clone(),
                        text: c.name.clone(),
                    };
                    place(&mut columns, &mut exprs, c.clone(), e);
                }
            }
            ProjectionItem::Column { name, expr } => {
                let bound = bind(expr, &no_aliases)
                    .map_err(|m| format!("projection column `{name}`: {m}"))?;
                // Names the filter may use for this column (a plain source column is
                // found in the input anyway); a later item of the same name wins.
                let renamed =
                    !matches!(bound.node, Node::Input(i) if input.columns[i].name == *name);
                computed.retain(|(n, _)| n != name);
                if renamed {
                    computed.push((name.clone(), bound.clone()));
                }
                let column = match bound.node {
                    // A source column keeps its default and comment.
                    Node::Input(i) => Column {
                        name: name.clone(),
                        ..input.columns[i].clone()
                    },
                    _ => Column::new(name.clone(), declared_type(&bound)),
                };
                place(&mut columns, &mut exprs, column, bound);
            }
        }
    }
    let filter = match &rule.filter {
        None => None,
        Some(f) => {
            let scope = Scope {
                schema: input,
                aliases: &computed,
                mode: rule.decimal_mode,
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

/// The type Flink CDC declares for a computed column (TransformParser with
/// CalciteDataTypeConverter): nullable whatever the expression, since the converter builds
/// every type nullable, except a top-level IFNULL, which keeps its own nullability (Flink CDC
/// master, FLINK-40240). Text comes out as STRING (CHAR and VARCHAR lengths are dropped). A
/// bare metadata column keeps its own type (Flink CDC declares those NOT NULL).
fn declared_type(bound: &Expr) -> DataType {
    let kind = match &bound.ty.kind {
        DataTypeKind::Char { .. } | DataTypeKind::VarChar { .. } => DataTypeKind::String,
        other => other.clone(),
    };
    let nullable = match &bound.node {
        Node::Meta(_)
        | Node::Call {
            func: Func::IfNull, ..
        } => bound.ty.nullable,
        _ => true,
    };
    DataType::new(kind).with_nullable(nullable)
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
        Rule::parse(0, &map, "p", super::super::types::DecimalMode::UpTo38).unwrap()
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
                "twice INT"
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
        let err = derive(&rule(&[("filter", "id + 1")]), &input()).unwrap_err();
        assert!(err.contains("must be BOOLEAN"), "{err}");
        let err = derive(&rule(&[("filter", "1")]), &input()).unwrap_err();
        assert!(err.contains("must be BOOLEAN, got INT at '1'"), "{err}");
    }

    /// Flink CDC (TransformParser) declares every computed column nullable, with text as
    /// STRING; a top-level IFNULL keeps its own nullability; bare metadata columns and
    /// source columns keep theirs.
    #[test]
    fn computed_columns_are_nullable_as_flink_cdc_declares_them() {
        let b = derive(
            &rule(&[(
                "projection",
                "id, 'fine' AS fine, id + 1000 AS uid, 'id -> ' || CAST(id AS STRING) AS label, \
                 CAST(id AS VARCHAR(5)) AS short, COALESCE(name, 'x') AS co, \
                 IFNULL(name, 'x') AS ifn, IFNULL(id, 2) AS ifn_id, IFNULL(name, name) AS ifn_null, \
                 __table_name__ AS src, id AS key_copy",
            )]),
            &input(),
        )
        .unwrap();
        assert_eq!(
            cols(&b.output),
            [
                "id INT NOT NULL",
                "fine STRING",
                "uid INT",
                "label STRING",
                "short STRING",
                "co STRING",
                "ifn STRING NOT NULL",
                "ifn_id INT NOT NULL",
                "ifn_null STRING",
                "src STRING NOT NULL",
                "key_copy INT NOT NULL",
            ]
        );
    }

    /// `\*, CONCAT('v', name) AS name` (from Flink CDC's transform tests): the computed column
    /// replaces the one `*` brought, at its place, with the expression's type; any later
    /// item of a taken name replaces the earlier one, as in Flink CDC.
    #[test]
    fn a_computed_column_replaces_the_wildcard_column_of_its_name() {
        let b = derive(
            &rule(&[
                ("projection", "\\*, CONCAT('v', name) AS name, id * 2 AS id"),
                ("filter", "name <> 'vx'"),
            ]),
            &input(),
        )
        .unwrap();
        assert_eq!(cols(&b.output), ["id INT", "name STRING"]);
        assert_eq!(b.output.primary_key, ["id"]);
        assert!(!b.identity);
        // The filter sees the computed value, as it does for any computed name.
        assert!(matches!(
            &b.filter.as_ref().unwrap().node,
            Node::Binary(_, l, _) if matches!(l.node, Node::Call { .. })
        ));
        let b = derive(&rule(&[("projection", "\\*, id")]), &input()).unwrap();
        assert_eq!(cols(&b.output), ["id INT NOT NULL", "name VARCHAR(10)"]);
        assert!(b.identity);
        let b = derive(
            &rule(&[("projection", "UPPER(name) AS a, id AS a")]),
            &input(),
        )
        .unwrap();
        assert_eq!(cols(&b.output), ["a INT NOT NULL"]);
        // `*` after a computed item of a source column's name: the source column wins, in
        // the projection and in the filter.
        let b = derive(
            &rule(&[
                ("projection", "UPPER(name) AS name, \\*"),
                ("filter", "name = 'x'"),
            ]),
            &input(),
        )
        .unwrap();
        assert_eq!(cols(&b.output), ["name VARCHAR(10)", "id INT NOT NULL"]);
        assert!(matches!(
            &b.filter.as_ref().unwrap().node,
            Node::Binary(_, l, _) if matches!(l.node, Node::Input(1))
        ));
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
