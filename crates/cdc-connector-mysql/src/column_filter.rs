//! `debezium.column.include.list` / `column.exclude.list`: columns left out of the capture.
//!
//! Applied to the events as they leave the source, so the snapshot, the binlog and every
//! schema change agree: each table's full schema is followed through its schema changes,
//! and the schema, the changes and the rows handed on hold only the kept columns. The
//! state is rebuilt after a restart from the CreateTable events the source announces first.

use std::collections::HashMap;

use cdc_api::{Error, Event, Result, Schema, SchemaChangeEvent, TableId};

use crate::passthrough::ColumnSelection;

/// One table: its full schema and which of its columns are kept.
struct Table {
    full: Schema,
    keep: Vec<bool>,
}

impl Table {
    fn new(table_id: &TableId, full: Schema, selection: &ColumnSelection) -> Result<Self> {
        let db = table_id.schema.as_deref().unwrap_or_default();
        let keep: Vec<bool> = full
            .columns
            .iter()
            .map(|c| selection.keeps(db, &table_id.table, &c.name))
            .collect();
        for key in &full.primary_key {
            if let Some(i) = full.column_index(key) {
                if !keep[i] {
                    return Err(Error::invalid_option(
                        "source.debezium.column.exclude.list",
                        format!(
                            "would leave out {table_id}'s primary key column '{key}', without which the target cannot apply updates and deletes"
                        ),
                    ));
                }
            }
        }
        Ok(Self { full, keep })
    }

    fn kept_schema(&self) -> Schema {
        let mut schema = self.full.clone();
        schema.columns = self
            .full
            .columns
            .iter()
            .zip(&self.keep)
            .filter(|(_, k)| **k)
            .map(|(c, _)| c.clone())
            .collect();
        schema
    }

    fn kept(&self, name: &str) -> bool {
        self.full
            .column_index(name)
            .is_some_and(|i| self.keep.get(i).copied().unwrap_or(false))
    }
}

/// The filter with every table's state.
pub(crate) struct ColumnFilter {
    selection: ColumnSelection,
    tables: HashMap<TableId, Table>,
}

impl ColumnFilter {
    pub(crate) fn new(selection: ColumnSelection) -> Self {
        Self {
            selection,
            tables: HashMap::new(),
        }
    }

    /// The events with the left-out columns removed.
    pub(crate) fn apply(&mut self, events: Vec<Event>) -> Result<Vec<Event>> {
        let mut out = Vec::with_capacity(events.len());
        for event in events {
            match event {
                Event::DataChange(mut change) => {
                    if let Some(t) = self.tables.get(&change.table_id) {
                        if t.keep.iter().all(|k| *k) {
                            out.push(Event::DataChange(change));
                            continue;
                        }
                        let project = |row: Vec<cdc_api::Value>| -> Vec<cdc_api::Value> {
                            row.into_iter()
                                .zip(&t.keep)
                                .filter(|(_, k)| **k)
                                .map(|(v, _)| v)
                                .collect()
                        };
                        change.before = change.before.map(project);
                        change.after = change.after.map(project);
                    }
                    out.push(Event::DataChange(change));
                }
                Event::SchemaChange(change) => {
                    if let Some(c) = self.schema_change(change)? {
                        out.push(Event::SchemaChange(c));
                    }
                }
            }
        }
        Ok(out)
    }

    /// Follows one schema change; returns it as the kept columns see it (`None` when it
    /// touches only left-out columns).
    fn schema_change(&mut self, change: SchemaChangeEvent) -> Result<Option<SchemaChangeEvent>> {
        let table_id = change.table_id().clone();
        let context = || format!("schema change on {table_id}");
        if let SchemaChangeEvent::CreateTable { schema, .. } = &change {
            let t = Table::new(&table_id, schema.clone(), &self.selection)?;
            let kept = t.kept_schema();
            self.tables.insert(table_id.clone(), t);
            return Ok(Some(SchemaChangeEvent::CreateTable {
                table_id,
                schema: kept,
            }));
        }
        if let SchemaChangeEvent::DropTable { .. } = &change {
            self.tables.remove(&table_id);
            return Ok(Some(change));
        }
        let Some(before) = self.tables.get(&table_id) else {
            return Ok(Some(change));
        };
        let full = change
            .apply_to(&before.full)
            .map_err(|m| Error::permanent(context(), m))?;
        let after = Table::new(&table_id, full, &self.selection)?;
        let out = match change {
            SchemaChangeEvent::AddColumn { table_id, columns } => {
                let columns: Vec<_> = columns
                    .into_iter()
                    .filter(|(c, _)| after.kept(&c.name))
                    .collect();
                (!columns.is_empty()).then_some(SchemaChangeEvent::AddColumn { table_id, columns })
            }
            SchemaChangeEvent::DropColumn { table_id, columns } => {
                let columns: Vec<_> = columns.into_iter().filter(|c| before.kept(c)).collect();
                (!columns.is_empty()).then_some(SchemaChangeEvent::DropColumn { table_id, columns })
            }
            SchemaChangeEvent::RenameColumn { table_id, renames } => {
                let mut kept = Vec::new();
                for (old, new) in renames {
                    match (before.kept(&old), after.kept(&new)) {
                        (true, true) => kept.push((old, new)),
                        (false, false) => {}
                        _ => {
                            return Err(Error::permanent(
                                context(),
                                format!(
                                    "renaming '{old}' to '{new}' moves the column across debezium.column.include/exclude.list, which the target cannot follow"
                                ),
                            )
                            .with_hint("make the column list select both names, or neither"));
                        }
                    }
                }
                (!kept.is_empty()).then_some(SchemaChangeEvent::RenameColumn {
                    table_id,
                    renames: kept,
                })
            }
            SchemaChangeEvent::AlterColumnType {
                table_id,
                types,
                mut comments,
            } => {
                let types: Vec<_> = types.into_iter().filter(|(c, _)| after.kept(c)).collect();
                comments.retain(|c, _| after.kept(c));
                (!types.is_empty() || !comments.is_empty()).then_some(
                    SchemaChangeEvent::AlterColumnType {
                        table_id,
                        types,
                        comments,
                    },
                )
            }
            other => Some(other),
        };
        self.tables.insert(table_id, after);
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cdc_api::{Column, ColumnPosition, DataChangeEvent, DataType, DataTypeKind, Value};

    fn col(name: &str) -> Column {
        Column::new(name, DataType::new(DataTypeKind::Int))
    }

    fn filter() -> ColumnFilter {
        let selection = ColumnSelection::Exclude(vec![
            regex::Regex::new("(?i)^(?:shop\\.t\\.secret.*)$").unwrap(),
        ]);
        ColumnFilter::new(selection)
    }

    fn schema_events(events: &[Event]) -> Vec<&SchemaChangeEvent> {
        events
            .iter()
            .filter_map(|e| match e {
                Event::SchemaChange(c) => Some(c),
                Event::DataChange(_) => None,
            })
            .collect()
    }

    #[test]
    fn schema_changes_and_rows_lose_the_left_out_columns() {
        let t = TableId::new("shop", "t");
        let mut f = filter();
        let create = SchemaChangeEvent::CreateTable {
            table_id: t.clone(),
            schema: Schema::new(vec![col("id"), col("secret"), col("a")]).with_primary_key(["id"]),
        };
        let out = f
            .apply(vec![
                Event::SchemaChange(create),
                Event::DataChange(DataChangeEvent::insert(
                    t.clone(),
                    vec![Value::Int(1), Value::Int(2), Value::Int(3)],
                )),
                Event::SchemaChange(SchemaChangeEvent::AddColumn {
                    table_id: t.clone(),
                    columns: vec![
                        (col("secret2"), ColumnPosition::Last),
                        (col("b"), ColumnPosition::Last),
                    ],
                }),
                Event::SchemaChange(SchemaChangeEvent::DropColumn {
                    table_id: t.clone(),
                    columns: vec!["secret".into()],
                }),
                Event::DataChange(DataChangeEvent::update(
                    t.clone(),
                    vec![Value::Int(1), Value::Int(3), Value::Int(9), Value::Int(4)],
                    vec![Value::Int(1), Value::Int(3), Value::Int(8), Value::Int(4)],
                )),
            ])
            .unwrap();
        let schemas = schema_events(&out);
        assert_eq!(
            schemas.len(),
            2,
            "the DropColumn of a left-out column is gone"
        );
        let SchemaChangeEvent::CreateTable { schema, .. } = schemas[0] else {
            panic!("{schemas:?}")
        };
        assert_eq!(schema.column_names().collect::<Vec<_>>(), ["id", "a"]);
        let SchemaChangeEvent::AddColumn { columns, .. } = schemas[1] else {
            panic!("{schemas:?}")
        };
        assert_eq!(columns.len(), 1);
        assert_eq!(columns[0].0.name, "b");
        let rows: Vec<&DataChangeEvent> = out
            .iter()
            .filter_map(|e| match e {
                Event::DataChange(d) => Some(d),
                Event::SchemaChange(_) => None,
            })
            .collect();
        assert_eq!(rows[0].after, Some(vec![Value::Int(1), Value::Int(3)]));
        assert_eq!(
            rows[1].after,
            Some(vec![Value::Int(1), Value::Int(3), Value::Int(4)])
        );
    }

    #[test]
    fn a_left_out_key_or_a_rename_across_the_list_is_an_error() {
        let t = TableId::new("shop", "t");
        let mut f = filter();
        let e = f
            .apply(vec![Event::SchemaChange(SchemaChangeEvent::CreateTable {
                table_id: t.clone(),
                schema: Schema::new(vec![col("secret_id")]).with_primary_key(["secret_id"]),
            })])
            .unwrap_err()
            .to_string();
        assert!(e.contains("primary key column 'secret_id'"), "{e}");
        let mut f = filter();
        f.apply(vec![Event::SchemaChange(SchemaChangeEvent::CreateTable {
            table_id: t.clone(),
            schema: Schema::new(vec![col("id"), col("a")]).with_primary_key(["id"]),
        })])
        .unwrap();
        let e = f
            .apply(vec![Event::SchemaChange(SchemaChangeEvent::RenameColumn {
                table_id: t,
                renames: vec![("a".into(), "secret".into())],
            })])
            .unwrap_err()
            .to_string();
        assert!(e.contains("moves the column across"), "{e}");
    }
}
