//! Keeps two schemas per table (the source's and the target's) and decides, per
//! `schema.change.behavior`, which schema changes reach the target. Rows are fitted from
//! the source schema to the target schema by column name when the two differ (for example
//! under `lenient`, a dropped column stays in the target and gets NULL).

use std::collections::{BTreeSet, HashMap, HashSet};

use cdc_api::{
    Column, ColumnPosition, DataChangeEvent, Error, Schema, SchemaChangeEvent, SchemaChangeKind,
    TableId, Value,
};

use crate::{SchemaChangeBehavior, TargetSchemas};

pub(crate) struct SchemaCoordinator {
    behavior: SchemaChangeBehavior,
    /// Kinds the user lets through to this sink (include/exclude lists).
    accepted: BTreeSet<SchemaChangeKind>,
    /// Whether `include.schema.changes` named truncate/drop table explicitly (lenient
    /// forwards them only then).
    explicitly_included: BTreeSet<SchemaChangeKind>,
    tables: HashMap<TableId, TableSchemas>,
    /// Tables whose target schema the sink has been told in this run (by a CreateTable).
    /// A sink instance starts knowing nothing; after a resume the runtime knows tables the
    /// sink does not.
    told_sink: HashSet<TableId>,
}

struct TableSchemas {
    upstream: Schema,
    target: Schema,
    /// For each target column, the position of the upstream column with the same name;
    /// `None` when identical.
    projection: Option<Vec<Option<usize>>>,
}

impl TableSchemas {
    fn refresh_projection(&mut self) {
        let same = self.upstream.columns.len() == self.target.columns.len()
            && self
                .upstream
                .columns
                .iter()
                .zip(&self.target.columns)
                .all(|(a, b)| a.name == b.name);
        self.projection = (!same).then(|| {
            self.target
                .columns
                .iter()
                .map(|c| self.upstream.column_index(&c.name))
                .collect()
        });
    }
}

impl SchemaCoordinator {
    pub(crate) fn new(
        behavior: SchemaChangeBehavior,
        include: Option<&[String]>,
        exclude: &[String],
    ) -> Self {
        let explicitly_included: BTreeSet<_> = include
            .unwrap_or_default()
            .iter()
            .flat_map(|t| SchemaChangeKind::matching(t))
            .collect();
        let mut accepted: BTreeSet<_> = match include {
            Some(_) => explicitly_included.clone(),
            None => SchemaChangeKind::ALL.into_iter().collect(),
        };
        accepted.insert(SchemaChangeKind::CreateTable);
        for tag in exclude {
            for kind in SchemaChangeKind::matching(tag) {
                accepted.remove(&kind);
            }
        }
        Self {
            behavior,
            accepted,
            explicitly_included,
            tables: HashMap::new(),
            told_sink: HashSet::new(),
        }
    }

    /// The schemas of every table, for a checkpoint (sorted, so equal states save equal).
    pub(crate) fn export(&self) -> Vec<TargetSchemas> {
        let mut out: Vec<TargetSchemas> = self
            .tables
            .iter()
            .map(|(table, t)| TargetSchemas {
                table: table.clone(),
                upstream: t.upstream.clone(),
                target: t.target.clone(),
            })
            .collect();
        out.sort_by(|a, b| a.table.cmp(&b.table));
        out
    }

    /// Continues from the schemas of a checkpoint: a table re-announced by the source is
    /// then known, and the target keeps the schema it had (for example the columns
    /// `lenient` kept).
    pub(crate) fn restore(&mut self, tables: &[TargetSchemas]) {
        for t in tables {
            let mut schemas = TableSchemas {
                upstream: t.upstream.clone(),
                target: t.target.clone(),
                projection: None,
            };
            schemas.refresh_projection();
            self.tables.insert(t.table.clone(), schemas);
        }
    }

    /// For a table the source re-announced (see [`plan`](Self::plan)): the CreateTable the
    /// sink still needs, with the target's schema, once per run. `None` when the sink knows
    /// the table already.
    pub(crate) fn announce_to_sink(&mut self, table_id: &TableId) -> Option<SchemaChangeEvent> {
        let known = self.tables.get(table_id)?;
        if !self.told_sink.insert(table_id.clone()) {
            return None;
        }
        Some(SchemaChangeEvent::CreateTable {
            table_id: table_id.clone(),
            schema: known.target.clone(),
        })
    }

    /// Records a source schema change and returns the changes to apply to the target, in
    /// order. `supported` are the kinds the sink's applier can apply.
    pub(crate) fn plan(
        &mut self,
        change: &SchemaChangeEvent,
        supported: &[SchemaChangeKind],
    ) -> Result<Vec<SchemaChangeEvent>, Error> {
        let table_id = change.table_id().clone();
        let context = format!("schema change on {table_id}");
        if let SchemaChangeEvent::CreateTable { schema, .. } = change {
            if let Some(known) = self.tables.get_mut(&table_id) {
                // A re-announced table (source reconnect or restart): keep the target as is.
                // Rows are fitted to the target by column name from here on.
                known.upstream = schema.clone();
                known.refresh_projection();
                return Ok(Vec::new());
            }
            return Ok(vec![change.clone()]);
        }
        let Some(known) = self.tables.get_mut(&table_id) else {
            return Err(Error::permanent(
                context,
                "the source sent a schema change for a table it never announced",
            ));
        };
        known.upstream = change
            .apply_to(&known.upstream)
            .map_err(|m| Error::permanent(context.clone(), m))?;
        known.refresh_projection();

        let candidates: Vec<SchemaChangeEvent> = match self.behavior {
            SchemaChangeBehavior::Ignore => Vec::new(),
            SchemaChangeBehavior::Exception => {
                return Err(Error::permanent(
                    context,
                    format!(
                        "{} is not allowed by schema.change.behavior: exception",
                        change.kind()
                    ),
                )
                .with_hint("use evolve or lenient to let schema changes through"));
            }
            SchemaChangeBehavior::Evolve | SchemaChangeBehavior::TryEvolve => vec![change.clone()],
            SchemaChangeBehavior::Lenient => {
                lenient(change, &known.target, &self.explicitly_included)
            }
        };
        let mut out = Vec::new();
        for c in candidates {
            let kind = c.kind();
            if !self.accepted.contains(&kind) {
                tracing::info!(table = %table_id, change = %kind, "schema change not forwarded (include/exclude.schema.changes)");
                continue;
            }
            if !supported.contains(&kind) {
                if self.behavior == SchemaChangeBehavior::Evolve {
                    return Err(
                        Error::permanent(context, format!("the sink cannot apply {kind}"))
                            .with_hint(format!(
                                "exclude it with exclude.schema.changes: [{kind}] or use lenient"
                            )),
                    );
                }
                tracing::warn!(table = %table_id, change = %kind, "the sink cannot apply this schema change; skipped");
                continue;
            }
            out.push(c);
        }
        Ok(out)
    }

    /// Whether a failed apply should stop the pipeline (false under try_evolve).
    pub(crate) fn apply_failure_is_fatal(&self) -> bool {
        self.behavior != SchemaChangeBehavior::TryEvolve
    }

    /// Records that `change` was applied to the target.
    pub(crate) fn applied(&mut self, change: &SchemaChangeEvent) -> Result<(), Error> {
        let table_id = change.table_id().clone();
        match change {
            SchemaChangeEvent::CreateTable { schema, .. } => {
                let mut t = TableSchemas {
                    upstream: schema.clone(),
                    target: schema.clone(),
                    projection: None,
                };
                t.refresh_projection();
                self.told_sink.insert(table_id.clone());
                self.tables.insert(table_id, t);
            }
            SchemaChangeEvent::DropTable { .. } => {
                // The source may create it again later; forget both schemas.
                self.told_sink.remove(&table_id);
                self.tables.remove(&table_id);
            }
            other => {
                if let Some(t) = self.tables.get_mut(&table_id) {
                    t.target = other
                        .apply_to(&t.target)
                        .map_err(|m| Error::permanent(format!("schema change on {table_id}"), m))?;
                    t.refresh_projection();
                }
            }
        }
        Ok(())
    }

    /// Fits a row to the target schema (by column name) when the schemas differ.
    pub(crate) fn fit(&self, mut event: DataChangeEvent) -> DataChangeEvent {
        let Some(projection) = self
            .tables
            .get(&event.table_id)
            .and_then(|t| t.projection.as_ref())
        else {
            return event;
        };
        let fit_row = |row: Vec<Value>| -> Vec<Value> {
            projection
                .iter()
                .map(|p| p.and_then(|i| row.get(i).cloned()).unwrap_or(Value::Null))
                .collect()
        };
        event.before = event.before.map(fit_row);
        event.after = event.after.map(fit_row);
        event
    }
}

/// Flink CDC's lenient rewrite: nothing the target holds is lost.
fn lenient(
    change: &SchemaChangeEvent,
    target: &Schema,
    explicitly_included: &BTreeSet<SchemaChangeKind>,
) -> Vec<SchemaChangeEvent> {
    let table_id = change.table_id().clone();
    match change {
        SchemaChangeEvent::AddColumn { columns, .. } => {
            let columns = columns
                .iter()
                .filter(|(c, _)| target.column_index(&c.name).is_none())
                .map(|(c, p)| {
                    let mut c = c.clone();
                    c.data_type.nullable = true;
                    let p = match p {
                        ColumnPosition::Before(n) | ColumnPosition::After(n)
                            if target.column_index(n).is_none() =>
                        {
                            ColumnPosition::Last
                        }
                        other => other.clone(),
                    };
                    (c, p)
                })
                .collect::<Vec<_>>();
            if columns.is_empty() {
                Vec::new()
            } else {
                vec![SchemaChangeEvent::AddColumn { table_id, columns }]
            }
        }
        SchemaChangeEvent::DropColumn { .. } => Vec::new(),
        SchemaChangeEvent::RenameColumn { renames, .. } => {
            let columns: Vec<(Column, ColumnPosition)> = renames
                .iter()
                .filter(|(_, new)| target.column_index(new).is_none())
                .filter_map(|(old, new)| {
                    let mut c = target.column(old)?.clone();
                    c.name.clone_from(new);
                    c.data_type.nullable = true;
                    Some((c, ColumnPosition::Last))
                })
                .collect();
            if columns.is_empty() {
                Vec::new()
            } else {
                vec![SchemaChangeEvent::AddColumn { table_id, columns }]
            }
        }
        SchemaChangeEvent::TruncateTable { .. } | SchemaChangeEvent::DropTable { .. } => {
            if explicitly_included.contains(&change.kind()) {
                vec![change.clone()]
            } else {
                Vec::new()
            }
        }
        SchemaChangeEvent::AlterColumnType {
            types, comments, ..
        } => {
            let types: Vec<_> = types
                .iter()
                .map(|(n, t)| (n.clone(), t.clone().with_nullable(true)))
                .collect();
            vec![SchemaChangeEvent::AlterColumnType {
                table_id,
                types,
                comments: comments.clone(),
            }]
        }
        other => vec![other.clone()],
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cdc_api::{DataType, DataTypeKind};

    fn int(name: &str) -> Column {
        Column::new(name, DataType::new(DataTypeKind::Int))
    }

    fn setup(behavior: SchemaChangeBehavior) -> (SchemaCoordinator, TableId) {
        let t = TableId::new("db", "t");
        let mut c = SchemaCoordinator::new(behavior, None, &[]);
        let create = SchemaChangeEvent::CreateTable {
            table_id: t.clone(),
            schema: Schema::new(vec![int("a"), int("b")]).with_primary_key(["a"]),
        };
        for planned in c.plan(&create, &SchemaChangeKind::ALL).unwrap() {
            c.applied(&planned).unwrap();
        }
        (c, t)
    }

    #[test]
    fn lenient_keeps_dropped_columns_and_fills_null() {
        let (mut c, t) = setup(SchemaChangeBehavior::Lenient);
        let drop = SchemaChangeEvent::DropColumn {
            table_id: t.clone(),
            columns: vec!["b".into()],
        };
        assert!(c.plan(&drop, &SchemaChangeKind::ALL).unwrap().is_empty());
        let fitted = c.fit(DataChangeEvent::insert(t.clone(), vec![Value::Int(1)]));
        assert_eq!(fitted.after, Some(vec![Value::Int(1), Value::Null]));
        let rename = SchemaChangeEvent::RenameColumn {
            table_id: t,
            renames: vec![("a".into(), "id".into())],
        };
        let planned = c.plan(&rename, &SchemaChangeKind::ALL).unwrap();
        assert!(
            matches!(&planned[..], [SchemaChangeEvent::AddColumn { columns, .. }] if columns[0].0.name == "id")
        );
    }

    #[test]
    fn exception_and_ignore_and_filters() {
        let (mut c, t) = setup(SchemaChangeBehavior::Exception);
        let add = SchemaChangeEvent::AddColumn {
            table_id: t.clone(),
            columns: vec![(int("c"), ColumnPosition::Last)],
        };
        assert!(c.plan(&add, &SchemaChangeKind::ALL).is_err());

        let (mut c, _) = setup(SchemaChangeBehavior::Ignore);
        assert!(c.plan(&add, &SchemaChangeKind::ALL).unwrap().is_empty());
        let fitted = c.fit(DataChangeEvent::insert(
            t.clone(),
            vec![Value::Int(1), Value::Int(2), Value::Int(3)],
        ));
        assert_eq!(fitted.after, Some(vec![Value::Int(1), Value::Int(2)]));

        let (mut c, _) = setup(SchemaChangeBehavior::Evolve);
        assert!(c.plan(&add, &[SchemaChangeKind::CreateTable]).is_err());
        let mut c = SchemaCoordinator::new(SchemaChangeBehavior::Evolve, None, &["add".into()]);
        let create = SchemaChangeEvent::CreateTable {
            table_id: t.clone(),
            schema: Schema::new(vec![int("a")]),
        };
        for p in c.plan(&create, &SchemaChangeKind::ALL).unwrap() {
            c.applied(&p).unwrap();
        }
        assert!(c.plan(&add, &SchemaChangeKind::ALL).unwrap().is_empty());
    }
}
