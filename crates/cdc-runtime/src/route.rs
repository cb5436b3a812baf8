//! `route` rules: send a source table's events to another table id, many-to-one merging of
//! sharded tables included.
//!
//! A rule's `source-table` uses Flink CDC's selector syntax (an unescaped `.` separates
//! database and table, `\.` is the regex "any character"). `sink-table` names the target;
//! with `replace-symbol` (e.g. `<>`) the symbol is replaced by the source table's name,
//! otherwise `$1`, `$2`, ... are replaced by the regex's capture groups. With `route-mode:
//! ALL_MATCH` (default) a table goes to every matching rule's target; with `FIRST_MATCH`
//! to the first. A table no rule matches keeps its id.
//!
//! When several source tables land in one target, the target's schema is the union of
//! their columns (first seen order) with types widened where they differ; every row is
//! fitted to it by column name. Only additive changes reach a merged target (a column
//! dropped in one shard stays, since other shards may still send it).

use std::collections::{BTreeMap, HashMap};

use cdc_api::{
    Column, ColumnPosition, DataChangeEvent, DataType, DataTypeKind, Error, Event, Schema,
    SchemaChangeEvent, TableId, Value,
};
use regex::Regex;

use crate::RuntimeError;

/// One compiled `route` rule.
#[derive(Debug, Clone)]
struct RouteRule {
    source: Regex,
    sink_table: String,
    replace_symbol: Option<String>,
}

/// Turns a Flink CDC table selector into an anchored regex over `db.table`.
pub(crate) fn selector_regex(pattern: &str) -> Result<Regex, String> {
    Regex::new(&cdc_api::table_selector_regex(pattern))
        .map_err(|e| format!("'{pattern}' is not a valid table selector: {e}"))
}

/// Routes events and merges schemas of tables that share a target.
/// Tables with their schemas, sorted by table.
pub(crate) type TableSchemaList = Vec<(TableId, Schema)>;

#[derive(Debug, Default)]
pub(crate) struct Router {
    rules: Vec<RouteRule>,
    first_match: bool,
    /// Targets of each source table, computed once.
    targets: HashMap<TableId, Vec<TableId>>,
    /// Current schema of each source table.
    sources: HashMap<TableId, Schema>,
    /// Current (merged) schema of each target and how many sources feed it.
    merged: HashMap<TableId, Schema>,
    fan_in: HashMap<TableId, usize>,
}

impl Router {
    pub(crate) fn new(
        rules: &[BTreeMap<String, String>],
        first_match: bool,
        origin: &str,
    ) -> Result<Self, RuntimeError> {
        let mut compiled = Vec::with_capacity(rules.len());
        for (i, rule) in rules.iter().enumerate() {
            let at = format!("{origin}: route[{i}]");
            let source = rule
                .get("source-table")
                .map(String::as_str)
                .unwrap_or_default();
            let source = selector_regex(source)
                .map_err(|m| RuntimeError::definition(format!("{at}.source-table"), m))?;
            let sink_table = rule
                .get("sink-table")
                .cloned()
                .ok_or_else(|| RuntimeError::definition(&at, "'sink-table' is required"))?;
            let replace_symbol = rule
                .get("replace-symbol")
                .filter(|s| !s.is_empty())
                .cloned();
            if replace_symbol.is_some() && sink_table.contains('$') {
                return Err(RuntimeError::definition(
                    &at,
                    "capture groups ($1) cannot be combined with replace-symbol; use one of them",
                ));
            }
            if TableId::parse(
                &sink_table.replace(replace_symbol.as_deref().unwrap_or("\u{0}"), "x"),
            )
            .is_none()
                && !sink_table.contains('$')
            {
                return Err(RuntimeError::definition(
                    format!("{at}.sink-table"),
                    format!("'{sink_table}' is not a table name like db.table"),
                ));
            }
            compiled.push(RouteRule {
                source,
                sink_table,
                replace_symbol,
            });
        }
        Ok(Self {
            rules: compiled,
            first_match,
            ..Self::default()
        })
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    /// The schema of each routed source table and each merged target, for a checkpoint
    /// (sorted, so equal states save equal).
    pub(crate) fn export(&self) -> (TableSchemaList, TableSchemaList) {
        let sorted = |map: &HashMap<TableId, Schema>| {
            let mut v: Vec<(TableId, Schema)> =
                map.iter().map(|(t, s)| (t.clone(), s.clone())).collect();
            v.sort_by(|a, b| a.0.cmp(&b.0));
            v
        };
        (sorted(&self.sources), sorted(&self.merged))
    }

    /// Continues from a checkpoint's route state. Every restored source table is routed at
    /// once, so a merged target knows all its sources before the first one is
    /// re-announced (otherwise the first re-announcement would look like a lone source and
    /// replace the merged schema).
    pub(crate) fn restore(
        &mut self,
        sources: &[(TableId, Schema)],
        merged: &[(TableId, Schema)],
    ) -> Result<(), Error> {
        for (table, schema) in sources {
            self.sources.insert(table.clone(), schema.clone());
            self.targets_of(table)?;
        }
        for (table, schema) in merged {
            self.merged.insert(table.clone(), schema.clone());
        }
        Ok(())
    }

    fn targets_of(&mut self, table: &TableId) -> Result<Vec<TableId>, Error> {
        if let Some(t) = self.targets.get(table) {
            return Ok(t.clone());
        }
        let full = table.to_string();
        let mut out = Vec::new();
        for rule in &self.rules {
            let Some(caps) = rule.source.captures(&full) else {
                continue;
            };
            let name = match &rule.replace_symbol {
                Some(symbol) => rule.sink_table.replace(symbol.as_str(), &table.table),
                None => {
                    let mut expanded = String::new();
                    caps.expand(&rule.sink_table, &mut expanded);
                    expanded
                }
            };
            let target = TableId::parse(&name).ok_or_else(|| {
                Error::permanent(
                    format!("routing {table}"),
                    format!("the route gives '{name}', which is not a table name"),
                )
            })?;
            if !out.contains(&target) {
                out.push(target);
            }
            if self.first_match {
                break;
            }
        }
        if out.is_empty() {
            out.push(table.clone());
        }
        for t in &out {
            *self.fan_in.entry(t.clone()).or_default() += 1;
        }
        self.targets.insert(table.clone(), out.clone());
        Ok(out)
    }

    /// Routes one batch of events.
    pub(crate) fn route(&mut self, events: Vec<Event>) -> Result<Vec<Event>, Error> {
        let mut out = Vec::with_capacity(events.len());
        for event in events {
            match event {
                Event::DataChange(e) => {
                    let targets = self.targets_of(&e.table_id)?;
                    let last = targets.len() - 1;
                    let mut e = Some(e);
                    for (i, target) in targets.into_iter().enumerate() {
                        let source = if i == last { e.take() } else { e.clone() };
                        if let Some(source) = source {
                            out.push(Event::DataChange(self.fit(source, target)));
                        }
                    }
                }
                Event::SchemaChange(change) => self.route_schema_change(&change, &mut out)?,
            }
        }
        Ok(out)
    }

    fn fit(&self, mut e: DataChangeEvent, target: TableId) -> DataChangeEvent {
        if let (Some(src), Some(dst)) = (self.sources.get(&e.table_id), self.merged.get(&target)) {
            if src.columns.len() != dst.columns.len() || src.column_names().ne(dst.column_names()) {
                let map: Vec<Option<usize>> = dst
                    .columns
                    .iter()
                    .map(|c| src.column_index(&c.name))
                    .collect();
                let fit_row = |row: Vec<Value>| -> Vec<Value> {
                    map.iter()
                        .map(|m| m.and_then(|i| row.get(i).cloned()).unwrap_or(Value::Null))
                        .collect()
                };
                e.before = e.before.map(fit_row);
                e.after = e.after.map(fit_row);
            }
        }
        e.table_id = target;
        e
    }

    fn route_schema_change(
        &mut self,
        change: &SchemaChangeEvent,
        out: &mut Vec<Event>,
    ) -> Result<(), Error> {
        let source_id = change.table_id().clone();
        let targets = self.targets_of(&source_id)?;
        let re_announced = matches!(change, SchemaChangeEvent::CreateTable { .. })
            && self.sources.contains_key(&source_id);
        let before = self.sources.get(&source_id).cloned().unwrap_or_default();
        let after = match change {
            SchemaChangeEvent::DropTable { .. } => before.clone(),
            other => other
                .apply_to(&before)
                .map_err(|m| Error::permanent(format!("schema change on {source_id}"), m))?,
        };
        self.sources.insert(source_id.clone(), after.clone());
        for target in targets {
            let fan_in = self.fan_in.get(&target).copied().unwrap_or(1);
            let merged = self.merged.get(&target).cloned();
            match (fan_in, merged) {
                // One source, one target: the change as it is, renamed.
                (1, _) | (_, None) => {
                    let routed = change.with_table_id(target.clone());
                    let next = match &routed {
                        SchemaChangeEvent::CreateTable { schema, .. } => schema.clone(),
                        SchemaChangeEvent::DropTable { .. } => {
                            self.merged.remove(&target);
                            out.push(Event::SchemaChange(routed));
                            continue;
                        }
                        other => other
                            .apply_to(self.merged.get(&target).unwrap_or(&Schema::default()))
                            .map_err(|m| {
                                Error::permanent(format!("schema change on {target}"), m)
                            })?,
                    };
                    self.merged.insert(target.clone(), next);
                    out.push(Event::SchemaChange(routed));
                }
                // Several sources: only widen the merged schema.
                (_, Some(current)) => {
                    if re_announced {
                        // A source re-announced (after a resume): pass the merged table on
                        // as it stands, so a sink that has not heard of it learns it.
                        out.push(Event::SchemaChange(SchemaChangeEvent::CreateTable {
                            table_id: target.clone(),
                            schema: current.clone(),
                        }));
                    }
                    let (next, changes) = merge(&target, &current, &after);
                    self.merged.insert(target.clone(), next);
                    out.extend(changes.into_iter().map(Event::SchemaChange));
                }
            }
        }
        Ok(())
    }
}

/// The union of `current` and `incoming` and the changes that turn one into the other.
fn merge(
    target: &TableId,
    current: &Schema,
    incoming: &Schema,
) -> (Schema, Vec<SchemaChangeEvent>) {
    let mut next = current.clone();
    let mut added = Vec::new();
    let mut widened = Vec::new();
    for column in &incoming.columns {
        match next.column_index(&column.name) {
            None => {
                let mut c: Column = column.clone();
                c.data_type.nullable = true;
                next.columns.push(c.clone());
                added.push((c, ColumnPosition::Last));
            }
            Some(i) => {
                let have = &next.columns[i].data_type;
                let wider = widen(have, &column.data_type);
                if wider != *have {
                    next.columns[i].data_type = wider.clone();
                    widened.push((column.name.clone(), wider));
                }
            }
        }
    }
    let mut changes = Vec::new();
    if !added.is_empty() {
        changes.push(SchemaChangeEvent::AddColumn {
            table_id: target.clone(),
            columns: added,
        });
    }
    if !widened.is_empty() {
        changes.push(SchemaChangeEvent::AlterColumnType {
            table_id: target.clone(),
            types: widened,
            comments: BTreeMap::new(),
        });
    }
    (next, changes)
}

/// The narrowest type holding both (STRING when nothing narrower does).
fn widen(a: &DataType, b: &DataType) -> DataType {
    use DataTypeKind as K;
    let nullable = a.nullable || b.nullable;
    let rank = |k: &K| match k {
        K::TinyInt => Some(1),
        K::SmallInt => Some(2),
        K::Int => Some(3),
        K::BigInt => Some(4),
        _ => None,
    };
    let kind = match (&a.kind, &b.kind) {
        (x, y) if x == y => x.clone(),
        (x, y) if rank(x).is_some() && rank(y).is_some() => {
            if rank(x) >= rank(y) {
                x.clone()
            } else {
                y.clone()
            }
        }
        (
            K::VarChar { length: x } | K::Char { length: x },
            K::VarChar { length: y } | K::Char { length: y },
        ) => K::VarChar { length: *x.max(y) },
        (K::Float, K::Double) | (K::Double, K::Float) => K::Double,
        (
            K::Decimal {
                precision: p1,
                scale: s1,
            },
            K::Decimal {
                precision: p2,
                scale: s2,
            },
        ) => {
            let scale = *s1.max(s2);
            let int = (p1 - s1).max(p2 - s2);
            if u16::from(int) + u16::from(scale) <= 38 {
                K::Decimal {
                    precision: int + scale,
                    scale,
                }
            } else {
                K::String
            }
        }
        (K::Timestamp { precision: x }, K::Timestamp { precision: y }) => K::Timestamp {
            precision: *x.max(y),
        },
        _ => K::String,
    };
    DataType::new(kind).with_nullable(nullable)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_string(), (*v).to_string()))
            .collect()
    }

    fn create(t: &TableId, cols: &[(&str, DataTypeKind)]) -> Event {
        SchemaChangeEvent::CreateTable {
            table_id: t.clone(),
            schema: Schema::new(
                cols.iter()
                    .map(|(n, k)| Column::new(*n, DataType::new(k.clone())))
                    .collect(),
            ),
        }
        .into()
    }

    #[test]
    fn replace_symbol_and_capture_groups() {
        let mut r = Router::new(
            &[
                rule(&[
                    ("source-table", "app.\\.*"),
                    ("sink-table", "ods.ods_<>"),
                    ("replace-symbol", "<>"),
                ]),
                rule(&[
                    ("source-table", "db_(\\.*).(\\.*)_tbl"),
                    ("sink-table", "sink_$1.t_$2"),
                ]),
            ],
            false,
            "p",
        )
        .unwrap();
        assert_eq!(
            r.targets_of(&TableId::new("app", "orders")).unwrap(),
            [TableId::new("ods", "ods_orders")]
        );
        assert_eq!(
            r.targets_of(&TableId::new("db_1", "x_tbl")).unwrap(),
            [TableId::new("sink_1", "t_x")]
        );
        assert_eq!(
            r.targets_of(&TableId::new("other", "t")).unwrap(),
            [TableId::new("other", "t")]
        );
        assert!(
            Router::new(
                &[rule(&[
                    ("source-table", "a.b"),
                    ("sink-table", "x.$1"),
                    ("replace-symbol", "<>")
                ])],
                false,
                "p"
            )
            .is_err()
        );
    }

    #[test]
    fn sharded_tables_merge_into_one() {
        let target = TableId::new("all", "users");
        let mut r = Router::new(
            &[rule(&[
                ("source-table", "shard_\\.*.users"),
                ("sink-table", "all.users"),
            ])],
            false,
            "p",
        )
        .unwrap();
        let (s1, s2) = (
            TableId::new("shard_1", "users"),
            TableId::new("shard_2", "users"),
        );
        let out = r
            .route(vec![
                create(
                    &s1,
                    &[
                        ("id", DataTypeKind::Int),
                        ("name", DataTypeKind::VarChar { length: 10 }),
                    ],
                ),
                create(
                    &s2,
                    &[
                        ("id", DataTypeKind::BigInt),
                        ("email", DataTypeKind::String),
                    ],
                ),
                DataChangeEvent::insert(
                    s2.clone(),
                    vec![Value::BigInt(7), Value::String("a@b".into())],
                )
                .into(),
            ])
            .unwrap();
        assert!(
            matches!(&out[0], Event::SchemaChange(SchemaChangeEvent::CreateTable { table_id, .. }) if *table_id == target)
        );
        assert!(
            matches!(&out[1], Event::SchemaChange(SchemaChangeEvent::AddColumn { columns, .. }) if columns[0].0.name == "email")
        );
        assert!(
            matches!(&out[2], Event::SchemaChange(SchemaChangeEvent::AlterColumnType { types, .. }) if types[0].1.kind == DataTypeKind::BigInt)
        );
        let Event::DataChange(row) = &out[3] else {
            panic!("{out:?}")
        };
        assert_eq!(row.table_id, target);
        assert_eq!(
            row.after,
            Some(vec![
                Value::BigInt(7),
                Value::Null,
                Value::String("a@b".into())
            ])
        );
    }
}
