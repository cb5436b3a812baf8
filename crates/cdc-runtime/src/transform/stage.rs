//! The transform stage: rewrites each matched table's schema changes and rows.

use std::collections::{BTreeMap, HashMap};

use cdc_api::{
    DataChangeEvent, Error, Event, OperationType, Schema, SchemaChangeEvent, TableId, Value,
};

use super::cast::cast;
use super::eval::{Ctx, eval};
use super::expr::Node;
use super::rule::Rule;
use super::schema::{Bound, derive, diff};
use super::temporal::Zone;
use super::types::DecimalMode;
use crate::RuntimeError;

/// Applies the `transform` rules, between the source and routing (as Flink CDC's
/// PreTransform/PostTransform operators run before its SchemaOperator, so `source-table`
/// names source tables even when a route renames them).
#[derive(Debug, Default)]
pub(crate) struct Transformer {
    rules: Vec<Rule>,
    zone: Option<Zone>,
    /// The rule of each table seen so far (`None`: no rule matches, events pass through).
    matched: HashMap<TableId, Option<usize>>,
    /// Input schema and bound rule of each transformed table.
    tables: HashMap<TableId, (Schema, Bound)>,
}

impl Transformer {
    /// Parses the rules; `local_time_zone` is the pipeline's session zone. Decimal results
    /// follow Flink CDC's default `transform.decimal.precision.mode` (UP_TO_19).
    pub(crate) fn new(
        rules: &[BTreeMap<String, String>],
        local_time_zone: &str,
        origin: &str,
    ) -> Result<Self, RuntimeError> {
        Self::with_decimal_mode(rules, local_time_zone, DecimalMode::default(), origin)
    }

    /// [`Self::new`] with `pipeline.transform.decimal.precision.mode` (see
    /// [`crate::pipeline_options::transform_decimal_mode`]).
    pub(crate) fn with_decimal_mode(
        rules: &[BTreeMap<String, String>],
        local_time_zone: &str,
        decimal_mode: DecimalMode,
        origin: &str,
    ) -> Result<Self, RuntimeError> {
        let rules = rules
            .iter()
            .enumerate()
            .map(|(i, r)| Rule::parse(i, r, origin, decimal_mode))
            .collect::<Result<Vec<_>, _>>()?;
        let zone = if rules.is_empty() {
            None
        } else {
            Some(Zone::parse(local_time_zone).map_err(|m| {
                RuntimeError::definition(format!("{origin}: pipeline.local-time-zone"), m)
            })?)
        };
        Ok(Self {
            rules,
            zone,
            ..Self::default()
        })
    }

    /// Whether there is nothing to do.
    pub(crate) fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    fn rule_of(&mut self, table: &TableId) -> Option<usize> {
        if let Some(m) = self.matched.get(table) {
            return *m;
        }
        let name = table.to_string();
        // Only the first matching rule applies (as in Flink CDC).
        let m = self.rules.iter().position(|r| r.selector.is_match(&name));
        self.matched.insert(table.clone(), m);
        m
    }

    /// Transforms one batch of events.
    pub(crate) fn apply(&mut self, events: Vec<Event>) -> Result<Vec<Event>, Error> {
        let now_micros = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_micros() as i64);
        let mut out = Vec::with_capacity(events.len());
        for event in events {
            let Some(rule) = self.rule_of(event.table_id()) else {
                out.push(event);
                continue;
            };
            match event {
                Event::SchemaChange(change) => self.schema_change(rule, change, &mut out)?,
                Event::DataChange(e) => {
                    if let Some(e) = self.data_change(rule, e, now_micros)? {
                        out.push(Event::DataChange(e));
                    }
                }
            }
        }
        Ok(out)
    }

    fn context(rule: usize, table: &TableId) -> String {
        format!("transform[{rule}] on {table}")
    }

    fn schema_change(
        &mut self,
        rule: usize,
        change: SchemaChangeEvent,
        out: &mut Vec<Event>,
    ) -> Result<(), Error> {
        let table = change.table_id().clone();
        let fail = |m: String| Error::permanent(format!("transform[{rule}] on {table}"), m);
        match &change {
            SchemaChangeEvent::CreateTable { schema, .. } => {
                let bound = derive(&self.rules[rule], schema).map_err(fail)?;
                out.push(Event::SchemaChange(SchemaChangeEvent::CreateTable {
                    table_id: table.clone(),
                    schema: bound.output.clone(),
                }));
                self.tables.insert(table, (schema.clone(), bound));
            }
            SchemaChangeEvent::DropTable { .. } => {
                self.tables.remove(&table);
                out.push(Event::SchemaChange(change));
            }
            SchemaChangeEvent::TruncateTable { .. } => out.push(Event::SchemaChange(change)),
            _ => {
                let Some((input, bound)) = self.tables.get(&table) else {
                    return Err(fail(
                        "the source sent a schema change for a table it never announced".into(),
                    ));
                };
                let next_input = change.apply_to(input).map_err(fail)?;
                let next = derive(&self.rules[rule], &next_input).map_err(fail)?;
                let renames = match &change {
                    SchemaChangeEvent::RenameColumn { renames, .. } => renames.clone(),
                    _ => Vec::new(),
                };
                let mut changes = diff(&table, &bound.output, &next.output, &renames);
                // Schema changes cannot move a column, yet rows come in the new output's
                // order: refuse the one case where the two would part (a projection item
                // replacing a column that `*` newly brings, at the wildcard's place).
                let mut replayed = bound.output.clone();
                for c in &changes {
                    replayed = c.apply_to(&replayed).map_err(fail)?;
                }
                if replayed.column_names().ne(next.output.column_names()) {
                    return Err(fail(format!(
                        "this change moves output columns (from {} to {}); the target cannot \
                         follow a column move, so restart with --reset or change the projection",
                        replayed.column_names().collect::<Vec<_>>().join(", "),
                        next.output.column_names().collect::<Vec<_>>().join(", ")
                    )));
                }
                if let SchemaChangeEvent::AlterTableComment { .. } = change {
                    changes.push(change);
                }
                out.extend(changes.into_iter().map(Event::SchemaChange));
                self.tables.insert(table, (next_input, next));
            }
        }
        Ok(())
    }

    fn data_change(
        &self,
        rule: usize,
        e: DataChangeEvent,
        now_micros: i64,
    ) -> Result<Option<DataChangeEvent>, Error> {
        let Some((_, bound)) = self.tables.get(&e.table_id) else {
            return Err(Error::permanent(
                Self::context(rule, &e.table_id),
                "a row arrived before the table's schema (CreateTable)",
            ));
        };
        let soft_delete = self.rules[rule].soft_delete;
        let DataChangeEvent {
            table_id,
            op,
            before,
            after,
            meta,
        } = e;
        let image = |row: Option<Vec<Value>>, tag: &str| -> Result<Option<Vec<Value>>, Error> {
            match row {
                None => Ok(None),
                Some(row) => self.image(rule, bound, (&table_id, &meta, now_micros), row, tag),
            }
        };
        let out = match op {
            OperationType::Insert | OperationType::Replace => {
                image(after, op.short_tag())?.map(|row| (op, None, Some(row)))
            }
            OperationType::Delete => {
                image(before, "-D")?.map(|row| Self::deleted(row, soft_delete))
            }
            OperationType::Update => {
                let b = image(before, "-U")?;
                let a = image(after, "+U")?;
                // A row that moves into or out of the filter becomes an insert or a delete,
                // so the target holds exactly the rows the filter accepts.
                match (b, a) {
                    (Some(b), Some(a)) => Some((op, Some(b), Some(a))),
                    (None, Some(a)) => Some((OperationType::Insert, None, Some(a))),
                    (Some(b), None) => Some(Self::deleted(b, soft_delete)),
                    (None, None) => None,
                }
            }
        };
        Ok(out.map(|(op, before, after)| DataChangeEvent {
            table_id,
            op,
            before,
            after,
            meta,
        }))
    }

    /// A delete, or with SOFT_DELETE an insert of the before image.
    fn deleted(
        row: Vec<Value>,
        soft_delete: bool,
    ) -> (OperationType, Option<Vec<Value>>, Option<Vec<Value>>) {
        if soft_delete {
            (OperationType::Insert, None, Some(row))
        } else {
            (OperationType::Delete, Some(row), None)
        }
    }

    /// Filters and projects one row image (`None`: the filter drops it).
    fn image(
        &self,
        rule: usize,
        bound: &Bound,
        (table, meta, now_micros): (&TableId, &BTreeMap<String, String>, i64),
        row: Vec<Value>,
        tag: &str,
    ) -> Result<Option<Vec<Value>>, Error> {
        let zone = self.zone.unwrap_or(Zone::Fixed(0));
        let ctx = Ctx {
            row: &row,
            table,
            event_type: tag,
            meta,
            now_micros,
            zone,
        };
        let fail = |what: String, m: String| {
            Error::permanent(Self::context(rule, table), format!("{what}: {m}"))
        };
        if let Some(filter) = &bound.filter {
            let v = eval(filter, &ctx).map_err(|m| fail(format!("filter '{}'", filter.text), m))?;
            if v != Value::Boolean(true) {
                return Ok(None);
            }
        }
        if bound.identity {
            return Ok(Some(row));
        }
        let mut out = Vec::with_capacity(bound.columns.len());
        for (expr, column) in bound.columns.iter().zip(&bound.output.columns) {
            let v = match expr.node {
                Node::Input(i) => row.get(i).cloned().unwrap_or(Value::Null),
                _ => {
                    let what = || format!("column `{}` ('{}')", column.name, expr.text);
                    let v = eval(expr, &ctx).map_err(|m| fail(what(), m))?;
                    // Values are held in the column's declared type (decimal scale included).
                    cast(&v, &column.data_type, zone).map_err(|m| fail(what(), m))?
                }
            };
            out.push(v);
        }
        Ok(Some(out))
    }
}
