//! Running parsed statements against the catalog, with Doris's limits and error texts.

use std::collections::BTreeMap;

use super::catalog::{Column, Database, Table};
use super::jobs::{self, AlterJob};
use super::model::{QueryResult, TableModel};
use super::sql::{
    self, AlterOp, ColumnDef, CreateTable, Position, Projection, Statement, TableRef,
};
use super::state::State;

fn err(m: impl std::fmt::Display) -> String {
    format!("errCode = 2, detailMessage = {m}")
}

fn ok() -> QueryResult {
    QueryResult::default()
}

fn result_set(columns: &[&str], rows: Vec<Vec<Option<String>>>) -> QueryResult {
    QueryResult {
        is_result_set: true,
        columns: columns.iter().map(ToString::to_string).collect(),
        column_types: columns.iter().map(|_| "VARCHAR".to_string()).collect(),
        rows,
    }
}

/// Runs one statement; `default_db` resolves unqualified table names.
pub(crate) fn execute(
    state: &mut State,
    default_db: Option<&str>,
    stmt_text: &str,
) -> Result<QueryResult, String> {
    state.tick();
    if let Some(sel) = super::range_select::parse(stmt_text) {
        let system = sel
            .db
            .as_deref()
            .is_some_and(|d| d.eq_ignore_ascii_case("information_schema"));
        if !system {
            return range_select(state, default_db, &sel);
        }
    }
    let stmt = sql::parse(stmt_text)?;
    let resolve = |t: &TableRef| -> Result<(String, String), String> {
        match (&t.db, default_db) {
            (Some(db), _) => Ok((db.clone(), t.table.clone())),
            (None, Some(db)) if !db.is_empty() => Ok((db.to_string(), t.table.clone())),
            _ => Err(err("No database selected")),
        }
    };
    match stmt {
        Statement::CreateDatabase {
            name,
            if_not_exists,
        } => {
            if state.catalog.databases.contains_key(&name) {
                if if_not_exists {
                    return Ok(ok());
                }
                return Err(err(format!(
                    "Can't create database '{name}'; database exists"
                )));
            }
            state.catalog.databases.insert(name, Database::default());
            Ok(ok())
        }
        Statement::DropDatabase { name, if_exists } => {
            if state.catalog.databases.remove(&name).is_none() && !if_exists {
                return Err(err(format!(
                    "Can't drop database '{name}'; database doesn't exist"
                )));
            }
            Ok(ok())
        }
        Statement::CreateTable(ct) => {
            let (db, name) = resolve(&ct.table)?;
            create_table(state, &db, &name, *ct)
        }
        Statement::DropTable { table, if_exists } => {
            let (db, name) = resolve(&table)?;
            let d = database(state, &db)?;
            if d.tables.remove(&name).is_none() && !if_exists {
                return Err(err(format!("Unknown table '{name}'")));
            }
            Ok(ok())
        }
        Statement::Truncate(t) => {
            let (db, name) = resolve(&t)?;
            let id = table_ref(state, &db, &name)?.id;
            // InternalCatalog.truncateTable refuses a table whose state is not NORMAL.
            if jobs::in_schema_change(state, id) {
                return Err(err("Table' state is not NORMAL: SCHEMA_CHANGE"));
            }
            table_mut(state, &db, &name)?.truncate();
            Ok(ok())
        }
        Statement::Alter { table, ops } => {
            let (db, name) = resolve(&table)?;
            alter(state, &db, &name, ops)
        }
        Statement::ShowAlter(q) => jobs::show(state, default_db, &q),
        Statement::Select {
            projection,
            table,
            filters,
            limit,
        } => select(state, default_db, &table, &projection, &filters, limit),
        Statement::Desc(t) => {
            let (db, name) = resolve(&t)?;
            let tbl = table_ref(state, &db, &name)?;
            let rows = tbl
                .columns
                .iter()
                .map(|c| {
                    vec![
                        Some(c.name.clone()),
                        Some(c.ty.text()),
                        Some(if c.nullable { "Yes" } else { "No" }.into()),
                        Some(if c.is_key { "true" } else { "false" }.into()),
                        c.default.clone().flatten(),
                        Some(String::new()),
                    ]
                })
                .collect();
            Ok(result_set(
                &["Field", "Type", "Null", "Key", "Default", "Extra"],
                rows,
            ))
        }
        Statement::ShowColumns(t) => {
            let (db, name) = resolve(&t)?;
            let tbl = table_ref(state, &db, &name)?;
            let rows = tbl
                .columns
                .iter()
                .map(|c| {
                    vec![
                        Some(c.name.clone()),
                        Some(c.ty.text()),
                        Some(String::new()),
                        Some(if c.nullable { "YES" } else { "NO" }.into()),
                        Some(if c.is_key { "YES" } else { "NO" }.into()),
                        c.default.clone().flatten(),
                        Some(String::new()),
                        Some(String::new()),
                        Some(c.comment.clone()),
                    ]
                })
                .collect();
            Ok(result_set(
                &[
                    "Field",
                    "Type",
                    "Collation",
                    "Null",
                    "Key",
                    "Default",
                    "Extra",
                    "Privileges",
                    "Comment",
                ],
                rows,
            ))
        }
        Statement::ShowCreate(t) => {
            let (db, name) = resolve(&t)?;
            let tbl = table_ref(state, &db, &name)?;
            Ok(result_set(
                &["Table", "Create Table"],
                vec![vec![Some(name.clone()), Some(tbl.create_sql(&db))]],
            ))
        }
        Statement::ShowDatabases => Ok(result_set(
            &["Database"],
            state
                .catalog
                .databases
                .keys()
                .map(|d| vec![Some(d.clone())])
                .collect(),
        )),
        Statement::ShowTables(db) => {
            let db = db
                .or_else(|| default_db.map(str::to_string))
                .ok_or_else(|| err("No database selected"))?;
            let d = state
                .catalog
                .databases
                .get(&db)
                .ok_or_else(|| err(format!("Unknown database '{db}'")))?;
            Ok(result_set(
                &[&format!("Tables_in_{db}")],
                d.tables.keys().map(|t| vec![Some(t.clone())]).collect(),
            ))
        }
    }
}

fn database<'a>(state: &'a mut State, db: &str) -> Result<&'a mut Database, String> {
    state
        .catalog
        .databases
        .get_mut(db)
        .ok_or_else(|| err(format!("Unknown database '{db}'")))
}

fn table_mut<'a>(state: &'a mut State, db: &str, name: &str) -> Result<&'a mut Table, String> {
    database(state, db)?
        .tables
        .get_mut(name)
        .ok_or_else(|| err(format!("Unknown table '{name}'")))
}

fn table_ref<'a>(state: &'a State, db: &str, name: &str) -> Result<&'a Table, String> {
    let d = state
        .catalog
        .databases
        .get(db)
        .ok_or_else(|| err(format!("Unknown database '{db}'")))?;
    d.tables
        .get(name)
        .ok_or_else(|| err(format!("Unknown table '{name}'")))
}

fn column_from_def(def: &ColumnDef, is_key: bool) -> Result<Column, String> {
    if let Some(Some(d)) = &def.default {
        if !d.eq_ignore_ascii_case("CURRENT_TIMESTAMP") && def.ty.convert(d, &def.name).is_err() {
            return Err(err(format!(
                "Invalid default value for '{}': {d}",
                def.name
            )));
        }
    }
    if matches!(&def.default, Some(Some(d)) if d.eq_ignore_ascii_case("CURRENT_TIMESTAMP"))
        && !matches!(def.ty, super::types::DorisType::DateTime { .. })
    {
        return Err(err(
            "Types other than DATETIME and DATETIMEV2 cannot use current_timestamp as the default value",
        ));
    }
    Ok(Column {
        uid: 0,
        name: def.name.clone(),
        ty: def.ty,
        nullable: def.nullable.unwrap_or(true),
        is_key,
        default: def.default.clone().map(|d| {
            d.map(|v| {
                if v.eq_ignore_ascii_case("CURRENT_TIMESTAMP") {
                    v
                } else {
                    def.ty.convert(&v, &def.name).unwrap_or(v)
                }
            })
        }),
        comment: def.comment.clone(),
    })
}

fn create_table(
    state: &mut State,
    db: &str,
    name: &str,
    ct: CreateTable,
) -> Result<QueryResult, String> {
    let backends = state.backends;
    let d = database(state, db)?;
    if d.tables.contains_key(name) {
        if ct.if_not_exists {
            return Ok(ok());
        }
        return Err(err(format!("Table '{name}' already exists")));
    }
    if ct.columns.is_empty() {
        return Err(err("Table should contain at least one column"));
    }
    let mut seen: Vec<String> = Vec::new();
    for c in &ct.columns {
        if seen.iter().any(|s| s.eq_ignore_ascii_case(&c.name)) {
            return Err(err(format!("Duplicate column name '{}'", c.name)));
        }
        if c.name.starts_with("__DORIS_") {
            return Err(err(format!("Incorrect column name '{}'", c.name)));
        }
        seen.push(c.name.clone());
    }
    let (model, keys) = match ct.keys {
        Some((m, keys)) if m == "UNIQUE" => (TableModel::Unique, keys),
        Some((m, keys)) if m == "DUPLICATE" => (TableModel::Duplicate, keys),
        Some(_) => {
            return Err(err("the emulator does not support AGGREGATE KEY tables"));
        }
        None => {
            // default DUPLICATE keys: up to 3 leading columns within 36 bytes
            let first = &ct.columns[0];
            if first.ty.key_error(&first.name).is_some() {
                return Err(err(
                    "The olap table first column could not be float, double, string or array, struct, map, please use decimal or varchar instead.",
                ));
            }
            let mut keys = Vec::new();
            let mut size = 0;
            for c in ct.columns.iter().take(3) {
                if c.ty.key_error(&c.name).is_some() {
                    break;
                }
                size += c.ty.key_size();
                if size > 36 && !keys.is_empty() {
                    break;
                }
                keys.push(c.name.clone());
                if matches!(
                    c.ty,
                    super::types::DorisType::Varchar(_) | super::types::DorisType::Char(_)
                ) {
                    break;
                }
            }
            (TableModel::Duplicate, keys)
        }
    };
    for (i, key) in keys.iter().enumerate() {
        let Some(col) = ct.columns.get(i) else {
            return Err(err(format!("Key column[{key}] doesn't exist.")));
        };
        if !col.name.eq_ignore_ascii_case(key) {
            if !ct.columns.iter().any(|c| c.name.eq_ignore_ascii_case(key)) {
                return Err(err(format!("Key column[{key}] doesn't exist.")));
            }
            return Err(err(format!(
                "Key columns should be a ordered prefix of the schema. KeyColumns[{i}] (starts from zero) is {key}, but corresponding column is {} in the previous columns declaration.",
                col.name
            )));
        }
        if let Some(e) = col.ty.key_error(&col.name) {
            return Err(err(e));
        }
    }
    let mut columns = Vec::new();
    for (i, def) in ct.columns.iter().enumerate() {
        let mut column = column_from_def(def, i < keys.len())?;
        column.uid = u32::try_from(i).unwrap_or(u32::MAX);
        columns.push(column);
    }
    let next_uid = u32::try_from(columns.len()).unwrap_or(u32::MAX);
    let distribution = ct.distribution.unwrap_or_else(|| match model {
        TableModel::Unique => keys.clone(),
        TableModel::Duplicate => Vec::new(),
    });
    for c in &distribution {
        let Some(col) = columns.iter().find(|x| x.name.eq_ignore_ascii_case(c)) else {
            return Err(err(format!("Distribution column({c}) doesn't exist")));
        };
        if model == TableModel::Unique && !col.is_key {
            return Err(err(format!("Distribution column[{c}] is not key column")));
        }
    }
    if model == TableModel::Unique && distribution.is_empty() {
        return Err(err(
            "Random distribution for non-duplicate table is unsupported",
        ));
    }
    let mut properties = ct.properties;
    let replication = properties
        .iter()
        .find(|(k, _)| k == "replication_num" || k == "replication_allocation")
        .map(|(k, v)| {
            if k == "replication_num" {
                v.trim()
                    .parse::<u32>()
                    .map_err(|_| err(format!("Invalid replication number: {v}")))
            } else {
                v.rsplit(':')
                    .next()
                    .and_then(|n| n.trim().parse::<u32>().ok())
                    .ok_or_else(|| err(format!("Invalid replication allocation: {v}")))
            }
        })
        .transpose()?
        .unwrap_or(3);
    if replication == 0 {
        return Err(err("Total replication num should between 1 and 32767"));
    }
    if replication > backends {
        return Err(err(format!(
            "Failed to find enough backend, please check the replication num,replication tag and storage medium and avail capacity of backends or maybe all be on decommission state.\nCreate failed replications:\nreplication tag: {{\"location\" : \"default\"}}, replication num: {replication}, storage medium: HDD"
        )));
    }
    if let Some((_, seq)) = properties
        .iter()
        .find(|(k, _)| k == "function_column.sequence_col")
    {
        if model != TableModel::Unique {
            return Err(err("Sequence column only support UNIQUE_KEYS"));
        }
        if !columns.iter().any(|c| c.name.eq_ignore_ascii_case(seq)) {
            return Err(err(format!(
                "The specified sequence column[{seq}] not exists"
            )));
        }
    }
    if !properties.iter().any(|(k, _)| k == "light_schema_change") {
        properties.push(("light_schema_change".into(), "true".into()));
    }
    let id = state.next_id();
    let table = Table {
        id,
        next_uid,
        name: name.to_string(),
        columns,
        model,
        comment: ct.comment,
        distribution,
        buckets: ct.buckets,
        properties,
        unique_rows: BTreeMap::new(),
        dup_rows: Vec::new(),
    };
    database(state, db)?.tables.insert(name.to_string(), table);
    Ok(ok())
}

fn insert_at(table: &Table, pos: &Position, is_value: bool) -> Result<usize, String> {
    let key_count = table.columns.iter().filter(|c| c.is_key).count();
    let idx = match pos {
        Position::End => table.columns.len(),
        Position::First => 0,
        Position::After(a) => {
            table
                .column_index(a)
                .ok_or_else(|| err(format!("Column[{a}] does not exist")))?
                + 1
        }
    };
    if is_value && idx < key_count {
        return Err(err(format!(
            "Invalid column order. value should be after key. index[{}]",
            table.name
        )));
    }
    Ok(idx)
}

/// What an ALTER statement needs, as `SchemaChangeHandler.process` decides it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum AlterKind {
    /// No schema-change job: RENAME COLUMN (`Alter.processRename`) and MODIFY COMMENT.
    NoJob,
    /// A light schema change: the schema changes at once and a FINISHED job is listed
    /// (`modifyTableLightSchemaChange`). ADD / DROP of a value column on a table with
    /// `light_schema_change` (`addColumnInternal`, `processDropColumn`).
    Light,
    /// A `SchemaChangeJobV2` that rewrites the data (`createJob`): MODIFY COLUMN (any
    /// change, a comment or a position too: `Column.equals` compares the comment, and
    /// `processModifyColumn` only lets a VARCHAR widening be light in newer releases, which
    /// the emulator runs as a job, the less convenient answer), ADD / DROP without light
    /// schema change, DROP of a DUPLICATE table's key column.
    Heavy,
}

/// Same column as far as `Column.equals` sees it (name, type, nullability, key, default,
/// comment).
fn same_column(a: &Column, b: &Column) -> bool {
    a.name.eq_ignore_ascii_case(&b.name)
        && a.ty == b.ty
        && a.nullable == b.nullable
        && a.is_key == b.is_key
        && a.default == b.default
        && a.comment == b.comment
}

/// Applies an ALTER statement's clauses to `table` (a copy: on an error it is thrown away),
/// with Doris's checks and texts; says whether the statement makes a job.
pub(crate) fn apply_clauses(table: &mut Table, ops: &[AlterOp]) -> Result<AlterKind, String> {
    let before = table.columns.clone();
    let mut kind = AlterKind::NoJob;
    let only_modify = ops.iter().all(|op| matches!(op, AlterOp::ModifyColumn(..)));
    for op in ops.iter().cloned() {
        match op {
            AlterOp::AddColumn(def, pos) => {
                if def.key {
                    return Err(err("the emulator does not support adding key columns"));
                }
                if table.column_index(&def.name).is_some() {
                    return Err(err(format!(
                        "Can not add column which already exists in base table: {}",
                        def.name
                    )));
                }
                let mut col = column_from_def(&def, false)?;
                col.uid = table.next_uid;
                table.next_uid += 1;
                if !col.nullable && col.default.is_none() {
                    return Err(err(format!(
                        "Can not add not null column without default value: {}",
                        def.name
                    )));
                }
                let idx = insert_at(table, &pos, true)?;
                let fill = col.default_value();
                table.columns.insert(idx, col);
                table.for_each_row(|r| r.insert(idx, fill.clone()));
                kind = kind.max(if table.light_schema_change() {
                    AlterKind::Light
                } else {
                    AlterKind::Heavy
                });
            }
            AlterOp::DropColumn(c) => {
                let idx = table
                    .column_index(&c)
                    .ok_or_else(|| err(format!("Column does not exists: {c}")))?;
                let col = &table.columns[idx];
                if table
                    .distribution
                    .iter()
                    .any(|d| d.eq_ignore_ascii_case(&col.name))
                {
                    return Err(err(format!(
                        "Can not drop partition or distribution column : {c}"
                    )));
                }
                if col.is_key && table.model == TableModel::Unique {
                    return Err(err("Can not drop key column in Unique data model table"));
                }
                if col.is_key && table.columns.iter().filter(|x| x.is_key).count() == 1 {
                    return Err(err("Can not drop all key columns"));
                }
                if table.columns.len() == 1 {
                    return Err(err("Do not allow remove all columns"));
                }
                if table.sequence_column() == Some(idx) {
                    return Err(err("Can not drop sequence mapping column"));
                }
                // A key column of a DUPLICATE table is never dropped lightly.
                let light = table.light_schema_change() && !table.columns[idx].is_key;
                table.columns.remove(idx);
                table.for_each_row(|r| {
                    r.remove(idx);
                });
                kind = kind.max(if light {
                    AlterKind::Light
                } else {
                    AlterKind::Heavy
                });
            }
            AlterOp::RenameColumn(from, to) => {
                if !table.light_schema_change() {
                    return Err(err(format!(
                        "Table[{}]'s light_schema_change is false, which does not support rename column",
                        table.name
                    )));
                }
                let idx = table
                    .column_index(&from)
                    .ok_or_else(|| err(format!("Column[{from}] does not exists")))?;
                if table.column_index(&to).is_some() {
                    return Err(err(format!("Column name[{to}] is already used")));
                }
                let old = table.columns[idx].name.clone();
                table.columns[idx].name.clone_from(&to);
                for d in &mut table.distribution {
                    if d.eq_ignore_ascii_case(&old) {
                        d.clone_from(&to);
                    }
                }
                for (k, v) in &mut table.properties {
                    if k == "function_column.sequence_col" && v.eq_ignore_ascii_case(&old) {
                        v.clone_from(&to);
                    }
                }
            }
            AlterOp::ModifyColumn(def, pos) => {
                let idx = table
                    .column_index(&def.name)
                    .ok_or_else(|| err(format!("Column[{}] does not exists", def.name)))?;
                let old = table.columns[idx].clone();
                let mut new = column_from_def(&def, old.is_key)?;
                new.uid = old.uid;
                if def.nullable.is_none() {
                    new.nullable = old.nullable;
                }
                if old.is_key && (new.ty != old.ty || new.nullable != old.nullable) {
                    return Err(err(format!("Can not modify key column: {}", old.name)));
                }
                if old.nullable && !new.nullable {
                    return Err(err("Can not change from nullable to non-nullable"));
                }
                old.ty.can_widen_to(new.ty).map_err(err)?;
                let ty = new.ty;
                let cname = new.name.clone();
                table.columns[idx] = new;
                table.for_each_row(|r| {
                    if let Some(v) = r[idx].take() {
                        r[idx] = Some(ty.convert(&v, &cname).unwrap_or(v));
                    }
                });
                if pos != Position::End {
                    let col = table.columns.remove(idx);
                    let mut target = insert_at(table, &pos, !col.is_key)?;
                    target = target.min(table.columns.len());
                    table.columns.insert(target, col);
                    table.for_each_row(|r| {
                        let v = r.remove(idx);
                        r.insert(target, v);
                    });
                }
                kind = AlterKind::Heavy;
            }
            AlterOp::ModifyComment(c) => table.comment = c,
        }
    }
    // SchemaChangeHandler.createJob: a MODIFY that leaves every column as it was.
    if only_modify
        && before.len() == table.columns.len()
        && before
            .iter()
            .zip(&table.columns)
            .all(|(a, b)| same_column(a, b))
    {
        return Err(err("Nothing is changed. please check your alter stmt."));
    }
    Ok(kind)
}

fn alter(
    state: &mut State,
    db: &str,
    name: &str,
    ops: Vec<AlterOp>,
) -> Result<QueryResult, String> {
    let current = table_ref(state, db, name)?;
    // Alter.processAlterOlapTable -> OlapTable.checkNormalStateForAlter, for every ALTER
    // TABLE of an OLAP table (also RENAME and MODIFY COMMENT), before its clauses are
    // looked at. (Doris 2.0 and older print "'s state is not NORMAL" without the state.)
    if jobs::in_schema_change(state, current.id) {
        return Err(err(format!(
            "Table[{}]'s state(SCHEMA_CHANGE) is not NORMAL. Do not allow doing ALTER ops",
            current.name
        )));
    }
    // work on a copy so a failing clause changes nothing
    let mut table = current.clone();
    let table_id = table.id;
    let kind = apply_clauses(&mut table, &ops)?;
    match kind {
        AlterKind::NoJob => *table_mut(state, db, name)? = table,
        AlterKind::Light => {
            *table_mut(state, db, name)? = table;
            let id = state.next_id();
            let time = state.clock_text();
            state
                .alter_jobs
                .push(AlterJob::light(id, db, name, table_id, time));
        }
        AlterKind::Heavy => {
            // The table keeps its schema until the job finishes; the clauses are applied
            // again then, to the rows there at that time.
            let id = state.next_id();
            let time = state.clock_text();
            let duration = state.alter_job_duration;
            state
                .alter_jobs
                .push(AlterJob::heavy(id, db, name, table_id, time, duration, ops));
            jobs::advance(state);
        }
    }
    Ok(ok())
}

fn select(
    state: &State,
    default_db: Option<&str>,
    t: &TableRef,
    projection: &Projection,
    filters: &[(String, String)],
    limit: Option<usize>,
) -> Result<QueryResult, String> {
    let (names, mut rows): (Vec<String>, Vec<Vec<Option<String>>>) = if t
        .db
        .as_deref()
        .is_some_and(|d| d.eq_ignore_ascii_case("information_schema"))
        && t.table.eq_ignore_ascii_case("COLUMNS")
    {
        information_schema_columns(state)
    } else {
        let db =
            t.db.clone()
                .or_else(|| default_db.map(str::to_string))
                .ok_or_else(|| err("No database selected"))?;
        let tbl = table_ref(state, &db, &t.table)?;
        (
            tbl.columns.iter().map(|c| c.name.clone()).collect(),
            tbl.visible_rows(),
        )
    };
    let find = |n: &str| {
        names
            .iter()
            .position(|x| x.eq_ignore_ascii_case(n))
            .ok_or_else(|| err(format!("Unknown column '{n}' in 'table list'")))
    };
    for (col, v) in filters {
        let i = find(col)?;
        rows.retain(|r| r[i].as_deref() == Some(v.as_str()));
    }
    if let Some(n) = limit {
        rows.truncate(n);
    }
    match projection {
        Projection::Star => {
            let cols: Vec<&str> = names.iter().map(String::as_str).collect();
            Ok(result_set(&cols, rows))
        }
        Projection::Count => Ok(result_set(
            &["count(*)"],
            vec![vec![Some(rows.len().to_string())]],
        )),
        Projection::Columns(cols) => {
            let idx: Vec<usize> = cols.iter().map(|c| find(c)).collect::<Result<_, _>>()?;
            let labels: Vec<&str> = idx.iter().map(|i| names[*i].as_str()).collect();
            let out = rows
                .into_iter()
                .map(|r| idx.iter().map(|i| r[*i].clone()).collect())
                .collect();
            Ok(result_set(&labels, out))
        }
    }
}

/// A key-range `SELECT` (see [`super::range_select`]): result-set types are the columns'
/// Doris types, `VARCHAR` for a `CAST(.. AS STRING)`, so the HTTP API can answer numbers
/// as JSON numbers as Doris does.
fn range_select(
    state: &State,
    default_db: Option<&str>,
    sel: &super::range_select::RangeSelect,
) -> Result<QueryResult, String> {
    let db = sel
        .db
        .clone()
        .or_else(|| default_db.filter(|d| !d.is_empty()).map(str::to_string))
        .ok_or_else(|| err("No database selected"))?;
    let tbl = table_ref(state, &db, &sel.table)?;
    let columns: Vec<(String, bool)> = tbl
        .columns
        .iter()
        .map(|c| {
            (
                c.name.clone(),
                super::range_select::numeric_type(&c.ty.text()),
            )
        })
        .collect();
    let out = sel.run(&columns, tbl.visible_rows()).map_err(err)?;
    let column_types = out
        .sources
        .iter()
        .zip(&out.cast)
        .map(|(i, cast)| {
            if *cast {
                "VARCHAR".to_string()
            } else {
                tbl.columns[*i].ty.text()
            }
        })
        .collect();
    Ok(QueryResult {
        is_result_set: true,
        columns: out.labels,
        column_types,
        rows: out.rows,
    })
}

fn information_schema_columns(state: &State) -> (Vec<String>, Vec<Vec<Option<String>>>) {
    let names = [
        "TABLE_CATALOG",
        "TABLE_SCHEMA",
        "TABLE_NAME",
        "COLUMN_NAME",
        "ORDINAL_POSITION",
        "COLUMN_DEFAULT",
        "IS_NULLABLE",
        "DATA_TYPE",
        "COLUMN_TYPE",
        "COLUMN_KEY",
        "COLUMN_COMMENT",
    ];
    let mut rows = Vec::new();
    for (db, d) in &state.catalog.databases {
        for (tn, t) in &d.tables {
            for (i, c) in t.columns.iter().enumerate() {
                let key = match (c.is_key, t.model) {
                    (true, TableModel::Unique) => "UNI",
                    (true, TableModel::Duplicate) => "DUP",
                    _ => "",
                };
                rows.push(vec![
                    Some("internal".into()),
                    Some(db.clone()),
                    Some(tn.clone()),
                    Some(c.name.clone()),
                    Some((i + 1).to_string()),
                    c.default.clone().flatten(),
                    Some(if c.nullable { "YES" } else { "NO" }.into()),
                    Some(c.ty.base_name().into()),
                    Some(c.ty.text().to_ascii_lowercase()),
                    Some(key.into()),
                    Some(c.comment.clone()),
                ]);
            }
        }
    }
    (names.iter().map(ToString::to_string).collect(), rows)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    /// Database `d`; schema-change jobs finish at once (the jobs module tests them).
    fn state() -> State {
        let mut s = State::new(
            vec![("root".into(), String::new())],
            Duration::from_secs(60),
            1,
            Duration::ZERO,
        );
        execute(&mut s, None, "CREATE DATABASE d").unwrap();
        s
    }

    #[test]
    fn key_rules() {
        let mut s = state();
        let e = execute(&mut s, Some("d"), "CREATE TABLE t (a INT, b INT) UNIQUE KEY(b) DISTRIBUTED BY HASH(b) PROPERTIES('replication_num'='1')").unwrap_err();
        assert!(e.contains("ordered prefix"), "{e}");
        let e = execute(&mut s, Some("d"), "CREATE TABLE t (a STRING, b INT) UNIQUE KEY(a) DISTRIBUTED BY HASH(a) PROPERTIES('replication_num'='1')").unwrap_err();
        assert!(
            e.contains("String Type should not be used in key column[a]"),
            "{e}"
        );
        let e = execute(
            &mut s,
            Some("d"),
            "CREATE TABLE t (a DOUBLE) DUPLICATE KEY(a) PROPERTIES('replication_num'='1')",
        )
        .unwrap_err();
        assert!(e.contains("Float or double"), "{e}");
        let e = execute(&mut s, Some("d"), "CREATE TABLE t (a INT) DUPLICATE KEY(a)").unwrap_err();
        assert!(e.contains("Failed to find enough backend"), "{e}");
        execute(&mut s, Some("d"), "CREATE TABLE t (a INT NOT NULL, v VARCHAR(10)) UNIQUE KEY(a) DISTRIBUTED BY HASH(a) BUCKETS 1 PROPERTIES('replication_num'='1')").unwrap();
        let e = execute(
            &mut s,
            Some("d"),
            "ALTER TABLE t MODIFY COLUMN v VARCHAR(5)",
        )
        .unwrap_err();
        assert!(e.contains("Shorten"), "{e}");
        let e = execute(
            &mut s,
            Some("d"),
            "ALTER TABLE t MODIFY COLUMN a BIGINT NOT NULL",
        )
        .unwrap_err();
        assert!(e.contains("key column"), "{e}");
        execute(
            &mut s,
            Some("d"),
            "ALTER TABLE t MODIFY COLUMN v VARCHAR(20)",
        )
        .unwrap();
        let e = execute(&mut s, Some("d"), "ALTER TABLE t ADD COLUMN x INT FIRST").unwrap_err();
        assert!(e.contains("value should be after key"), "{e}");
        let e = execute(&mut s, Some("d"), "ALTER TABLE t DROP COLUMN a").unwrap_err();
        assert!(e.contains("distribution column"), "{e}");
    }
}
