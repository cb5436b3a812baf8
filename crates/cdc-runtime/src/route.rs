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

/// The targets of each of `tables` under these `route` rules, as a pipeline routes them
/// (`first_match` for `route-mode: FIRST_MATCH`): in rule order, the table itself when no
/// rule matches. For tools that compare both sides, such as `cdc verify`.
pub fn route_targets(
    rules: &[BTreeMap<String, String>],
    first_match: bool,
    origin: &str,
    tables: &[TableId],
) -> Result<Vec<Vec<TableId>>, RuntimeError> {
    let mut router = Router::new(rules, first_match, origin)?;
    tables
        .iter()
        .map(|t| {
            router
                .targets_of(t)
                .map_err(|e| RuntimeError::definition(origin, e.to_string()))
        })
        .collect()
}

/// Whether the `transform` rule that applies to `table` (the first whose `source-table`
/// matches) changes its rows: a projection other than `*`, a filter, or a converter.
/// For `cdc verify`, which compares untransformed tables only.
pub fn transform_changes_rows(transforms: &[BTreeMap<String, String>], table: &TableId) -> bool {
    let full = table.to_string();
    let Some(rule) = transforms.iter().find(|r| {
        r.get("source-table")
            .and_then(|s| selector_regex(s).ok())
            .is_some_and(|re| re.is_match(&full))
    }) else {
        return false;
    };
    let set = |k: &str| rule.get(k).is_some_and(|v| !v.trim().is_empty());
    let projection = rule
        .get("projection")
        .map(|p| p.trim().trim_start_matches('\\').trim())
        .filter(|p| !p.is_empty());
    projection.is_some_and(|p| p != "*") || set("filter") || set("converter-after-transform")
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

/// The type a merged column takes when two sources disagree: Flink CDC's
/// `SchemaMergingUtils.getLeastCommonType`. Nullable when either side is. Integers widen to
/// the larger integer; TINYINT/SMALLINT with FLOAT give FLOAT, other integers with a float
/// DOUBLE; a DECIMAL with a DECIMAL or an integer gives a DECIMAL holding both; timestamps
/// give the most zoned kind with the larger precision; DATE with a timestamp gives that
/// timestamp kind at full precision; every other pair that differs (text of two lengths,
/// CHAR and VARCHAR, two TIME precisions, two binary lengths, numbers with text, DECIMAL
/// with FLOAT/DOUBLE, ...) gives STRING.
fn widen(a: &DataType, b: &DataType) -> DataType {
    use DataTypeKind as K;
    let nullable = a.nullable || b.nullable;
    let kind = if a.kind == b.kind {
        a.kind.clone()
    } else {
        match (&a.kind, &b.kind) {
            (x, y) if timestamp_level(x).is_some() && timestamp_level(y).is_some() => {
                merge_timestamps(x, y)
            }
            (K::Decimal { .. }, _) | (_, K::Decimal { .. }) => merge_decimals(&a.kind, &b.kind),
            (x, y) => {
                let theirs = merge_ladder(y);
                merge_ladder(x)
                    .into_iter()
                    .find(|k| theirs.contains(k))
                    .unwrap_or(K::String)
            }
        }
    };
    DataType::new(kind).with_nullable(nullable)
}

/// The widest fraction precision a timestamp holds here (Flink CDC's is 9; MySQL, Doris
/// and StarRocks stop at 6).
const MAX_TIMESTAMP_PRECISION: u8 = 6;

/// Flink CDC's decimal limit; wider MySQL decimals (up to 65 digits) keep their own width.
const MAX_MERGED_DECIMAL_PRECISION: u8 = 38;

/// TIMESTAMP < TIMESTAMP_LTZ < TIMESTAMP_TZ, with the precision.
fn timestamp_level(k: &DataTypeKind) -> Option<(u8, u8)> {
    match k {
        DataTypeKind::Timestamp { precision } => Some((0, *precision)),
        DataTypeKind::TimestampLtz { precision } => Some((1, *precision)),
        DataTypeKind::TimestampTz { precision } => Some((2, *precision)),
        _ => None,
    }
}

fn merge_timestamps(x: &DataTypeKind, y: &DataTypeKind) -> DataTypeKind {
    let (Some((lx, px)), Some((ly, py))) = (timestamp_level(x), timestamp_level(y)) else {
        return DataTypeKind::String;
    };
    timestamp_kind(lx.max(ly), px.max(py))
}

fn timestamp_kind(level: u8, precision: u8) -> DataTypeKind {
    match level {
        0 => DataTypeKind::Timestamp { precision },
        1 => DataTypeKind::TimestampLtz { precision },
        _ => DataTypeKind::TimestampTz { precision },
    }
}

/// The digits an integer type needs, as Flink CDC counts them for a decimal.
fn integer_digits(k: &DataTypeKind) -> Option<u8> {
    match k {
        DataTypeKind::TinyInt => Some(3),
        DataTypeKind::SmallInt => Some(5),
        DataTypeKind::Int => Some(10),
        DataTypeKind::BigInt => Some(19),
        _ => None,
    }
}

/// `SchemaMergingUtils.mergeDecimalType`: a DECIMAL with a DECIMAL keeps the larger integer
/// part and the larger scale; with an integer it keeps its scale and makes room for the
/// integer's digits; beyond the precision limit fraction digits are given up; with
/// anything else the result is STRING.
fn merge_decimals(x: &DataTypeKind, y: &DataTypeKind) -> DataTypeKind {
    use DataTypeKind as K;
    let (precision, scale, limit) = match (x, y) {
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
            let int_digits = (p1 - s1).max(p2 - s2);
            let scale = *s1.max(s2);
            (
                u16::from(int_digits) + u16::from(scale),
                scale,
                MAX_MERGED_DECIMAL_PRECISION.max(*p1).max(*p2),
            )
        }
        (K::Decimal { precision, scale }, other) | (other, K::Decimal { precision, scale }) => {
            let Some(digits) = integer_digits(other) else {
                return K::String;
            };
            (
                u16::from(*precision).max(u16::from(*scale) + u16::from(digits)),
                *scale,
                MAX_MERGED_DECIMAL_PRECISION.max(*precision),
            )
        }
        _ => return K::String,
    };
    // Flink CDC's createDecimalBounded: the integer part stays, the scale gives way.
    let lost = precision.saturating_sub(u16::from(limit));
    match u16::from(scale).checked_sub(lost) {
        Some(scale) => K::Decimal {
            precision: (precision - lost) as u8,
            scale: scale as u8,
        },
        None => K::String,
    }
}

/// The types a kind widens to, narrowest first: Flink CDC's TYPE_MERGING_TREE. The first
/// entry of one ladder that the other ladder also has is the merged type. Decimals and
/// timestamps are handled before; entries standing for Flink's widest DECIMAL and
/// TIMESTAMP are only there so that integers and dates meet them at the same rung.
fn merge_ladder(k: &DataTypeKind) -> Vec<DataTypeKind> {
    use DataTypeKind as K;
    let widest_decimal = K::Decimal {
        precision: MAX_MERGED_DECIMAL_PRECISION,
        scale: 0,
    };
    let p = MAX_TIMESTAMP_PRECISION;
    match k {
        K::TinyInt => vec![
            K::TinyInt,
            K::SmallInt,
            K::Int,
            K::BigInt,
            widest_decimal,
            K::Float,
            K::Double,
            K::String,
        ],
        K::SmallInt => vec![
            K::SmallInt,
            K::Int,
            K::BigInt,
            widest_decimal,
            K::Float,
            K::Double,
            K::String,
        ],
        K::Int => vec![K::Int, K::BigInt, widest_decimal, K::Double, K::String],
        K::BigInt => vec![K::BigInt, widest_decimal, K::Double, K::String],
        K::Float => vec![K::Float, K::Double, K::String],
        K::Double => vec![K::Double, K::String],
        K::Date => vec![
            K::Date,
            timestamp_kind(0, p),
            timestamp_kind(1, p),
            timestamp_kind(2, p),
            K::String,
        ],
        K::Timestamp { .. } => vec![
            timestamp_kind(0, p),
            timestamp_kind(1, p),
            timestamp_kind(2, p),
            K::String,
        ],
        K::TimestampLtz { .. } => vec![timestamp_kind(1, p), timestamp_kind(2, p), K::String],
        K::TimestampTz { .. } => vec![timestamp_kind(2, p), K::String],
        _ => vec![K::String],
    }
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

    /// SchemaMergingUtils.getLeastCommonType, pair by pair (SchemaMergingUtilsTest has the
    /// same expectations; TIMESTAMP's full precision is 6 here, 9 there).
    #[test]
    fn merged_types_follow_flink_cdc() {
        use DataTypeKind as K;
        let dec = |precision, scale| K::Decimal { precision, scale };
        let ts = |precision| K::Timestamp { precision };
        let ltz = |precision| K::TimestampLtz { precision };
        let tz = |precision| K::TimestampTz { precision };
        let cases = [
            (
                K::VarChar { length: 10 },
                K::VarChar { length: 68 },
                K::String,
            ),
            (K::VarChar { length: 10 }, K::String, K::String),
            (K::Char { length: 3 }, K::VarChar { length: 3 }, K::String),
            (K::Char { length: 3 }, K::Char { length: 5 }, K::String),
            (K::TinyInt, K::SmallInt, K::SmallInt),
            (K::SmallInt, K::BigInt, K::BigInt),
            (K::Int, K::BigInt, K::BigInt),
            (K::TinyInt, K::Float, K::Float),
            (K::SmallInt, K::Float, K::Float),
            (K::Int, K::Float, K::Double),
            (K::BigInt, K::Float, K::Double),
            (K::Int, K::Double, K::Double),
            (K::Float, K::Double, K::Double),
            (K::Int, K::String, K::String),
            (K::Boolean, K::Int, K::String),
            (K::Boolean, K::String, K::String),
            (dec(10, 2), dec(5, 4), dec(12, 4)),
            (dec(38, 0), dec(38, 37), dec(38, 0)),
            (dec(10, 2), K::Int, dec(12, 2)),
            (dec(10, 5), K::BigInt, dec(24, 5)),
            (dec(30, 10), K::BigInt, dec(30, 10)),
            (dec(38, 25), K::BigInt, dec(38, 19)),
            (dec(20, 0), K::TinyInt, dec(20, 0)),
            (dec(10, 2), K::Double, K::String),
            (dec(10, 2), K::Float, K::String),
            (dec(10, 2), K::String, K::String),
            (dec(50, 10), dec(20, 5), dec(50, 10)),
            (ts(0), ts(3), ts(3)),
            (ts(6), ltz(3), ltz(6)),
            (ltz(0), tz(2), tz(2)),
            (K::Date, ts(3), ts(6)),
            (K::Date, ltz(0), ltz(6)),
            (K::Date, tz(0), tz(6)),
            (K::Date, K::Time { precision: 0 }, K::String),
            (
                K::Time { precision: 0 },
                K::Time { precision: 3 },
                K::String,
            ),
            (
                K::Binary { length: 4 },
                K::VarBinary { length: 4 },
                K::String,
            ),
            (
                K::VarBinary { length: 4 },
                K::VarBinary { length: 8 },
                K::String,
            ),
            (K::Json, K::String, K::String),
            (K::Int, K::Date, K::String),
        ];
        for (a, b, want) in cases {
            for (x, y) in [(&a, &b), (&b, &a)] {
                let got = widen(
                    &DataType::new(x.clone()).not_null(),
                    &DataType::new(y.clone()).not_null(),
                );
                assert_eq!(got, DataType::new(want.clone()).not_null(), "{x} + {y}");
            }
        }
        // Nullable when either side is; equal types stay as they are.
        let v10 = DataType::new(K::VarChar { length: 10 });
        assert_eq!(widen(&v10.clone().not_null(), &v10), v10);
        assert_eq!(widen(&v10, &v10.clone().not_null()), v10);
        let int = DataType::new(K::Int).not_null();
        assert_eq!(widen(&int, &int), int);
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
