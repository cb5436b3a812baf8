//! Keeps two schemas per table (the source's and the target's) and decides, per
//! `schema.change.behavior`, which schema changes reach the target. Rows are fitted from
//! the source schema to the target schema by column name when the two differ (for example
//! under `lenient`, a dropped column stays in the target and gets NULL).

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use cdc_api::{
    Column, ColumnPosition, DataChangeEvent, DataType, Error, Schema, SchemaChangeEvent,
    SchemaChangeKind, TableId, Value,
};

use crate::{SchemaChangeBehavior, TargetSchemas};

pub(crate) struct SchemaCoordinator {
    behavior: SchemaChangeBehavior,
    /// Kinds the user lets through to this sink (include/exclude lists).
    accepted: BTreeSet<SchemaChangeKind>,
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
    /// `include`/`exclude` are the sink's lists as the definition resolved them (under
    /// `lenient` the exclude list already holds Flink CDC's default drop/truncate table).
    pub(crate) fn new(
        behavior: SchemaChangeBehavior,
        include: Option<&[String]>,
        exclude: &[String],
    ) -> Self {
        let mut accepted: BTreeSet<_> = match include {
            Some(tags) => tags
                .iter()
                .flat_map(|t| SchemaChangeKind::matching(t))
                .collect(),
            None => SchemaChangeKind::ALL.into_iter().collect(),
        };
        for tag in exclude {
            for kind in SchemaChangeKind::matching(tag) {
                accepted.remove(&kind);
            }
        }
        Self {
            behavior,
            accepted,
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
            if !self.accepted.contains(&SchemaChangeKind::CreateTable) {
                // `exclude.schema.changes: [create.table]`, as in Flink CDC: the table
                // is expected to exist in the target; nothing is created there, but the
                // sink learns the schema (`announce_to_sink`) so its rows can be written.
                tracing::info!(table = %table_id, "create.table not forwarded (include/exclude.schema.changes): the target table must exist");
                self.record(&table_id, schema);
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
            SchemaChangeBehavior::Lenient => lenient(change, &known.target),
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
                self.record(&table_id, schema);
                self.told_sink.insert(table_id);
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

    /// Knows `table_id` with `schema` on both sides.
    fn record(&mut self, table_id: &TableId, schema: &Schema) {
        let mut t = TableSchemas {
            upstream: schema.clone(),
            target: schema.clone(),
            projection: None,
        };
        t.refresh_projection();
        self.tables.insert(table_id.clone(), t);
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

/// Flink CDC's lenient rewrite (SchemaDerivator.lenientizeSchemaChangeEvent): nothing the
/// target holds is lost. `target` is the target's schema before the change.
///
/// * AddColumn: the column becomes nullable and goes last (rows written before it have no
///   value for it, and the target's column order need not follow the source's).
/// * DropColumn: the column stays; a NOT NULL one becomes nullable, since rows get NULL in it
///   from now on.
/// * RenameColumn: the new name is added last as a nullable copy of the old column; the old
///   column stays and becomes nullable when it was NOT NULL.
/// * Everything else (type and comment changes, truncate and drop table) goes through as it
///   is; whether truncate/drop table reach the sink is up to the include/exclude lists.
///
/// Where Flink CDC would fail (adding a column the target already has, for example one kept
/// from an earlier drop, or renaming a column the target never received) nothing is added;
/// a re-added column whose type changed gets the new type, made nullable.
fn lenient(change: &SchemaChangeEvent, target: &Schema) -> Vec<SchemaChangeEvent> {
    let table_id = change.table_id().clone();
    let make_nullable = |names: &mut dyn Iterator<Item = &String>| -> Option<SchemaChangeEvent> {
        let types: Vec<(String, DataType)> = names
            .filter_map(|n| target.column(n))
            .filter(|c| !c.data_type.nullable)
            .map(|c| (c.name.clone(), c.data_type.clone().with_nullable(true)))
            .collect();
        (!types.is_empty()).then(|| SchemaChangeEvent::AlterColumnType {
            table_id: table_id.clone(),
            types,
            comments: BTreeMap::new(),
        })
    };
    match change {
        SchemaChangeEvent::AddColumn { columns, .. } => {
            let mut added = Vec::new();
            let mut retyped = Vec::new();
            for (column, _) in columns {
                let mut c = column.clone();
                c.data_type.nullable = true;
                match target.column(&c.name) {
                    None => added.push((c, ColumnPosition::Last)),
                    Some(kept) if kept.data_type.kind != c.data_type.kind => {
                        retyped.push((c.name.clone(), c.data_type));
                    }
                    Some(_) => {}
                }
            }
            let mut out = Vec::new();
            if !added.is_empty() {
                out.push(SchemaChangeEvent::AddColumn {
                    table_id: table_id.clone(),
                    columns: added,
                });
            }
            if !retyped.is_empty() {
                out.push(SchemaChangeEvent::AlterColumnType {
                    table_id,
                    types: retyped,
                    comments: BTreeMap::new(),
                });
            }
            out
        }
        SchemaChangeEvent::DropColumn { columns, .. } => {
            make_nullable(&mut columns.iter()).into_iter().collect()
        }
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
            let mut out = Vec::new();
            if !columns.is_empty() {
                out.push(SchemaChangeEvent::AddColumn {
                    table_id: table_id.clone(),
                    columns,
                });
            }
            out.extend(make_nullable(&mut renames.iter().map(|(old, _)| old)));
            out
        }
        other => vec![other.clone()],
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cdc_api::DataTypeKind;

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

    /// Flink CDC's meaning: the target table must exist; the sink still learns its schema.
    #[test]
    fn excluding_create_table_creates_nothing_but_the_sink_learns_the_schema() {
        let t = TableId::new("db", "t");
        for (include, exclude) in [
            (None, vec!["create.table".to_string()]),
            (Some(vec!["add.column".to_string()]), Vec::new()),
        ] {
            let mut c =
                SchemaCoordinator::new(SchemaChangeBehavior::Evolve, include.as_deref(), &exclude);
            let schema = Schema::new(vec![int("a")]).with_primary_key(["a"]);
            let create = SchemaChangeEvent::CreateTable {
                table_id: t.clone(),
                schema: schema.clone(),
            };
            assert!(c.plan(&create, &SchemaChangeKind::ALL).unwrap().is_empty());
            assert_eq!(
                c.announce_to_sink(&t),
                Some(create.clone()),
                "the sink is told the schema once"
            );
            assert_eq!(c.announce_to_sink(&t), None);
            // Later changes of the table are planned against the known schema.
            let add = SchemaChangeEvent::AddColumn {
                table_id: t.clone(),
                columns: vec![(int("b"), ColumnPosition::Last)],
            };
            assert_eq!(c.plan(&add, &SchemaChangeKind::ALL).unwrap().len(), 1);
        }
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

    fn planned(c: &mut SchemaCoordinator, change: SchemaChangeEvent) -> Vec<SchemaChangeEvent> {
        let out = c.plan(&change, &SchemaChangeKind::ALL).unwrap();
        for p in &out {
            c.applied(p).unwrap();
        }
        out
    }

    /// SchemaDerivator.lenientizeSchemaChangeEvent, case by case.
    #[test]
    fn lenient_rewrites_as_flink_cdc() {
        let t = TableId::new("db", "t");
        let drops = ["drop.table".to_string(), "truncate.table".into()];
        let mut c = SchemaCoordinator::new(SchemaChangeBehavior::Lenient, None, &drops);
        let key = Column::new("k", DataType::new(DataTypeKind::Int).not_null());
        let must = Column::new("m", DataType::new(DataTypeKind::Int).not_null()).with_comment("x");
        planned(
            &mut c,
            SchemaChangeEvent::CreateTable {
                table_id: t.clone(),
                schema: Schema::new(vec![key, int("a"), must]).with_primary_key(["k"]),
            },
        );
        // A type change goes through as it is, nullability included.
        let double = DataType::new(DataTypeKind::Double).not_null();
        let out = planned(
            &mut c,
            SchemaChangeEvent::AlterColumnType {
                table_id: t.clone(),
                types: vec![("a".into(), double.clone())],
                comments: BTreeMap::new(),
            },
        );
        assert!(
            matches!(&out[..], [SchemaChangeEvent::AlterColumnType { types, .. }] if types[0].1 == double)
        );
        // An added column becomes nullable and goes last, whatever position it had.
        let out = planned(
            &mut c,
            SchemaChangeEvent::AddColumn {
                table_id: t.clone(),
                columns: vec![(
                    Column::new("f", DataType::new(DataTypeKind::Int).not_null()),
                    ColumnPosition::First,
                )],
            },
        );
        assert!(
            matches!(&out[..], [SchemaChangeEvent::AddColumn { columns, .. }]
                if columns[0].1 == ColumnPosition::Last && columns[0].0.data_type.nullable)
        );
        // A dropped NOT NULL column stays and becomes nullable; a nullable one just stays.
        let out = planned(
            &mut c,
            SchemaChangeEvent::DropColumn {
                table_id: t.clone(),
                columns: vec!["m".into(), "f".into()],
            },
        );
        assert!(
            matches!(&out[..], [SchemaChangeEvent::AlterColumnType { types, .. }]
                if types == &[("m".to_string(), DataType::new(DataTypeKind::Int))])
        );
        // A rename adds the new name last (a nullable copy, comment kept) and makes the old
        // column nullable.
        let out = planned(
            &mut c,
            SchemaChangeEvent::RenameColumn {
                table_id: t.clone(),
                renames: vec![("a".into(), "b".into())],
            },
        );
        assert_eq!(out.len(), 2, "{out:?}");
        assert!(
            matches!(&out[0], SchemaChangeEvent::AddColumn { columns, .. }
                if columns[0].0.name == "b" && columns[0].0.data_type == DataType::new(DataTypeKind::Double)
                    && columns[0].1 == ColumnPosition::Last)
        );
        assert!(
            matches!(&out[1], SchemaChangeEvent::AlterColumnType { types, .. } if types[0].0 == "a" && types[0].1.nullable)
        );
        let target = &c.tables[&t].target;
        assert_eq!(
            target.column_names().collect::<Vec<_>>(),
            ["k", "a", "m", "f", "b"]
        );
        assert!(target.columns.iter().skip(1).all(|c| c.data_type.nullable));
        assert_eq!(target.column("m").unwrap().comment.as_deref(), Some("x"));
        // Truncate and drop table, excluded as the definition does by default under lenient.
        for change in [
            SchemaChangeEvent::TruncateTable {
                table_id: t.clone(),
            },
            SchemaChangeEvent::DropTable {
                table_id: t.clone(),
            },
        ] {
            assert!(planned(&mut c, change).is_empty());
        }
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
