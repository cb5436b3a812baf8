//! DDL from the binlog turned into schema changes, applied to the tracked MySQL schemas.
//!
//! `ALTER TABLE` column operations are parsed (sqlparser, MySQL dialect) and applied to the
//! tracked definition, so rows after the change decode with the new layout even when the
//! server has moved on. `CREATE TABLE` is resolved by the reader from the server's
//! information_schema (the table is new; later changes to it arrive after this point).
//! A statement that cannot be parsed but names a captured table is an error, never skipped.

use std::collections::{BTreeMap, HashMap};

use cdc_api::{ColumnPosition, SchemaChangeEvent, TableId};
use sqlparser::ast::{
    AlterTableOperation, ColumnDef, ColumnOption, MySQLColumnPosition, ObjectName, ObjectType,
    RenameTableNameKind, Statement,
};
use sqlparser::dialect::MySqlDialect;
use sqlparser::parser::Parser;

use crate::MySqlSourceConfig;
use crate::schema::{MySqlColumn, TableMeta, to_column};
use crate::source::TableKey;

/// What a DDL statement did to the captured tables.
#[derive(Debug)]
pub(crate) enum TableChange {
    /// The table now has this definition; emit these events.
    Upsert {
        meta: TableMeta,
        events: Vec<SchemaChangeEvent>,
        /// The table arrived with rows the binlog never showed (`RENAME TABLE` to it):
        /// the reader reads them.
        copy_rows: bool,
    },
    /// The table is gone.
    Remove {
        key: TableKey,
        events: Vec<SchemaChangeEvent>,
    },
    /// Events only (truncate).
    Events(Vec<SchemaChangeEvent>),
    /// A table matching the filter appeared (CREATE, or RENAME from an uncaptured name):
    /// the reader loads its definition and reads its rows.
    Created(TableKey),
}

fn key_of(name: &ObjectName, default_db: &str) -> TableKey {
    let parts: Vec<String> = name
        .0
        .iter()
        .map(|p| p.to_string().trim_matches('`').to_string())
        .collect();
    match parts.as_slice() {
        [db, table] => (db.clone(), table.clone()),
        [table] => (default_db.to_string(), table.clone()),
        _ => (
            default_db.to_string(),
            parts.last().cloned().unwrap_or_default(),
        ),
    }
}

fn ident(i: &sqlparser::ast::Ident) -> String {
    i.value.clone()
}

/// Applies one statement. `tables` are the captured tables' definitions before it.
pub(crate) fn apply(
    sql: &str,
    default_db: &str,
    tables: &HashMap<TableKey, TableMeta>,
    config: &MySqlSourceConfig,
) -> Result<Vec<TableChange>, String> {
    if let Some(change) = convert_charset(sql, default_db, tables) {
        return Ok(change);
    }
    let (normalized, if_exists) = normalize(sql);
    // Rewritten only when needed: the pattern could also match inside a string literal.
    let statements = match Parser::parse_sql(&MySqlDialect {}, &normalized).or_else(|e| {
        Parser::parse_sql(&MySqlDialect {}, &rename_with_to(&normalized)).map_err(|_| e)
    }) {
        Ok(s) => s,
        Err(e) => return unparsed(sql, default_db, tables, &e.to_string()),
    };
    let mut out = Vec::new();
    for statement in statements {
        match statement {
            Statement::AlterTable(alter) => {
                let key = key_of(&alter.name, default_db);
                // `ALTER TABLE t ..., RENAME TO u` applies the other clauses, then renames:
                // the same as those clauses followed by `RENAME TABLE t TO u`.
                let renamed_to = alter
                    .operations
                    .iter()
                    .rev()
                    .find_map(|op| match op {
                        AlterTableOperation::RenameTable {
                            table_name: RenameTableNameKind::To(n) | RenameTableNameKind::As(n),
                        } => Some(key_of(n, default_db)),
                        _ => None,
                    })
                    .filter(|new| *new != key);
                let Some(meta) = tables.get(&key) else {
                    if let Some(new) = renamed_to {
                        out.extend(rename_table(key, new, tables, config));
                    }
                    continue;
                };
                let change = alter_table(meta, &alter.operations, config, if_exists)?;
                match (renamed_to, change) {
                    (Some(new), TableChange::Upsert { meta: altered, .. }) => {
                        let mut altered_tables = HashMap::new();
                        altered_tables.insert(key.clone(), altered);
                        out.extend(rename_table(key, new, &altered_tables, config));
                    }
                    (_, change) => out.push(change),
                }
            }
            Statement::CreateTable(create) => {
                let key = key_of(&create.name, default_db);
                if config.filter.matches(&key.0, &key.1) && !create.temporary {
                    match meta_from_create(&key, &create, sql) {
                        // From the statement itself: the server may already hold a later
                        // definition (or none, after a rename or drop further on).
                        Some(meta) => out.push(TableChange::Upsert {
                            events: vec![SchemaChangeEvent::CreateTable {
                                table_id: TableId::new(&key.0, &key.1),
                                schema: meta
                                    .to_schema(config.tinyint1_as_boolean, config.include_comments),
                            }],
                            meta,
                            // Empty when created: its rows come through the binlog.
                            copy_rows: false,
                        }),
                        None => out.push(TableChange::Created(key)),
                    }
                }
            }
            Statement::Drop {
                object_type: ObjectType::Table,
                names,
                temporary: false,
                ..
            } => {
                for name in names {
                    let key = key_of(&name, default_db);
                    if tables.contains_key(&key) {
                        out.push(TableChange::Remove {
                            events: vec![SchemaChangeEvent::DropTable {
                                table_id: TableId::new(&key.0, &key.1),
                            }],
                            key,
                        });
                    }
                }
            }
            Statement::Truncate(truncate) => {
                for target in truncate.table_names {
                    let key = key_of(&target.name, default_db);
                    if tables.contains_key(&key) {
                        out.push(TableChange::Events(vec![
                            SchemaChangeEvent::TruncateTable {
                                table_id: TableId::new(&key.0, &key.1),
                            },
                        ]));
                    }
                }
            }
            Statement::RenameTable(renames) => {
                for r in renames {
                    let old = key_of(&r.old_name, default_db);
                    let new = key_of(&r.new_name, default_db);
                    out.extend(rename_table(old, new, tables, config));
                }
            }
            _ => {}
        }
    }
    Ok(out)
}

/// MariaDB forms sqlparser does not read, rewritten to ones it does: `ALTER ONLINE TABLE`
/// and `ALTER IGNORE TABLE` (how the server runs it, not what it does), and the column
/// clauses `ADD|DROP|MODIFY|CHANGE [COLUMN] IF [NOT] EXISTS`, whose guard is dropped and
/// reported (`true`) so that applying them skips what the server skipped.
fn normalize(sql: &str) -> (String, bool) {
    static IF_EXISTS: std::sync::LazyLock<Option<regex::Regex>> = std::sync::LazyLock::new(|| {
        regex::Regex::new(r"(?i)\b(ADD|DROP|MODIFY|CHANGE)(\s+COLUMN)?\s+IF\s+(NOT\s+)?EXISTS\b")
            .ok()
    });
    let sql = strip_online(sql);
    if !sql
        .trim_start()
        .get(..5)
        .is_some_and(|w| w.eq_ignore_ascii_case("alter"))
    {
        return (sql, false);
    }
    match IF_EXISTS.as_ref() {
        Some(re) if re.is_match(&sql) => (re.replace_all(&sql, "$1$2").into_owned(), true),
        _ => (sql, false),
    }
}

/// `ALTER TABLE t RENAME u`: MySQL's `TO` / `AS` are optional, sqlparser wants one.
fn rename_with_to(sql: &str) -> String {
    static RENAME: std::sync::LazyLock<Option<regex::Regex>> =
        std::sync::LazyLock::new(|| regex::Regex::new(r"(?i)\bRENAME\s+(`[^`]*`|\w+)").ok());
    let Some(re) = RENAME.as_ref() else {
        return sql.to_string();
    };
    re.replace_all(sql, |c: &regex::Captures<'_>| {
        let next = &c[1];
        let keyword = ["to", "as", "column", "index", "key"]
            .iter()
            .any(|k| next.eq_ignore_ascii_case(k));
        if keyword {
            c[0].to_string()
        } else {
            format!("RENAME TO {next}")
        }
    })
    .into_owned()
}

/// A table definition from a plain `CREATE TABLE (columns...)`; `None` for `LIKE` / `AS
/// SELECT`, which only the server can resolve.
fn meta_from_create(
    key: &TableKey,
    create: &sqlparser::ast::CreateTable,
    sql: &str,
) -> Option<TableMeta> {
    if create.columns.is_empty() || create.query.is_some() || create.like.is_some() {
        return None;
    }
    static CHARSET: std::sync::LazyLock<Option<regex::Regex>> = std::sync::LazyLock::new(|| {
        regex::Regex::new(r"(?i)(?:CHARSET|CHARACTER\s+SET)\s*=?\s*(\w+)").ok()
    });
    // Table options follow the last parenthesis.
    let tail = sql.rfind(')').map_or("", |i| &sql[i..]);
    let table_charset = CHARSET
        .as_ref()
        .and_then(|re| re.captures(tail))
        .and_then(|c| c.get(1))
        .map_or_else(|| "utf8mb4".to_string(), |m| m.as_str().to_string());
    let mut primary_key = Vec::new();
    let mut columns = Vec::new();
    for def in &create.columns {
        let mut column = column_from_def(def, None);
        let is_text = matches!(
            column.mysql_type(),
            crate::types::MySqlType::Char(_)
                | crate::types::MySqlType::VarChar(_)
                | crate::types::MySqlType::Text
                | crate::types::MySqlType::Enum(_)
                | crate::types::MySqlType::Set(_)
        );
        if is_text && column.charset.is_none() {
            column.charset = Some(table_charset.clone());
        }
        if def
            .options
            .iter()
            .any(|o| matches!(o.option, ColumnOption::PrimaryKey(_)))
        {
            primary_key.push(column.name.clone());
        }
        columns.push(column);
    }
    for c in &create.constraints {
        if let sqlparser::ast::TableConstraint::PrimaryKey(pk) = c {
            for col in &pk.columns {
                let name = col.column.expr.to_string().trim_matches('`').to_string();
                primary_key.push(name);
            }
        }
    }
    for k in &primary_key {
        if let Some(c) = columns.iter_mut().find(|c| c.name.eq_ignore_ascii_case(k)) {
            c.nullable = false;
        }
    }
    Some(TableMeta {
        db: key.0.clone(),
        table: key.1.clone(),
        columns,
        primary_key,
        comment: None,
    })
}

/// `ALTER TABLE t CONVERT TO CHARACTER SET cs [COLLATE co]` (sqlparser does not read it):
/// every text column takes the new character set. The row layout is unchanged (lengths
/// come from the binlog's table map); the decoder must convert from the new set.
fn convert_charset(
    sql: &str,
    default_db: &str,
    tables: &HashMap<TableKey, TableMeta>,
) -> Option<Vec<TableChange>> {
    static CONVERT: std::sync::LazyLock<Option<regex::Regex>> = std::sync::LazyLock::new(|| {
        regex::Regex::new(r"(?i)^\s*ALTER\s+TABLE\s+(?:`?(\w+)`?\.)?`?(\w+)`?\s+CONVERT\s+TO\s+(?:CHARACTER\s+SET|CHARSET)\s+(\w+)(?:\s+COLLATE\s+(\w+))?\s*;?\s*$").ok()
    });
    let caps = CONVERT.as_ref()?.captures(sql)?;
    let db = caps.get(1).map_or(default_db, |m| m.as_str()).to_string();
    let table = caps.get(2)?.as_str().to_string();
    let Some(before) = tables.get(&(db, table)) else {
        return Some(Vec::new());
    };
    let charset = caps.get(3)?.as_str().to_string();
    let collation = caps.get(4).map(|m| m.as_str().to_string());
    let mut meta = before.clone();
    for c in &mut meta.columns {
        if c.charset.is_some() {
            c.charset = Some(charset.clone());
            c.collation.clone_from(&collation);
        }
    }
    Some(vec![TableChange::Upsert {
        meta,
        events: Vec::new(),
        copy_rows: false,
    }])
}

fn strip_online(sql: &str) -> String {
    let words: Vec<&str> = sql.split_whitespace().take(3).collect();
    if words.len() == 3
        && words[0].eq_ignore_ascii_case("alter")
        && (words[1].eq_ignore_ascii_case("online") || words[1].eq_ignore_ascii_case("ignore"))
        && words[2].eq_ignore_ascii_case("table")
    {
        if let Some(at) = sql
            .to_ascii_lowercase()
            .find(&words[1].to_ascii_lowercase())
        {
            let mut out = sql[..at].to_string();
            out.push_str(&sql[at + words[1].len()..]);
            return out;
        }
    }
    sql.to_string()
}

fn rename_table(
    old: TableKey,
    new: TableKey,
    tables: &HashMap<TableKey, TableMeta>,
    config: &MySqlSourceConfig,
) -> Vec<TableChange> {
    let mut out = Vec::new();
    if let Some(meta) = tables.get(&old) {
        out.push(TableChange::Remove {
            events: vec![SchemaChangeEvent::DropTable {
                table_id: TableId::new(&old.0, &old.1),
            }],
            key: old,
        });
        if config.filter.matches(&new.0, &new.1) {
            let mut renamed = meta.clone();
            renamed.db.clone_from(&new.0);
            renamed.table.clone_from(&new.1);
            out.push(TableChange::Upsert {
                events: vec![SchemaChangeEvent::CreateTable {
                    table_id: TableId::new(&new.0, &new.1),
                    schema: renamed.to_schema(config.tinyint1_as_boolean, config.include_comments),
                }],
                meta: renamed,
                copy_rows: true,
            });
        }
    } else if config.filter.matches(&new.0, &new.1) {
        out.push(TableChange::Created(new));
    }
    out
}

/// A statement sqlparser could not read: fine if it cannot touch a captured table.
fn unparsed(
    sql: &str,
    default_db: &str,
    tables: &HashMap<TableKey, TableMeta>,
    parse_error: &str,
) -> Result<Vec<TableChange>, String> {
    let lower = sql.to_lowercase();
    let first = lower.split_whitespace().next().unwrap_or("");
    let could_change_tables = matches!(first, "alter" | "create" | "drop" | "rename" | "truncate");
    if !could_change_tables {
        return Ok(Vec::new());
    }
    // Whole identifiers only: a table `t` is not named by every word containing a t.
    let tokens: std::collections::HashSet<&str> = lower
        .split(|c: char| !(c.is_alphanumeric() || c == '_' || c == '$'))
        .filter(|w| !w.is_empty())
        .collect();
    let default_db = default_db.to_lowercase();
    let names_captured = tables.keys().any(|(db, table)| {
        let (db, table) = (db.to_lowercase(), table.to_lowercase());
        tokens.contains(table.as_str()) && (db == default_db || tokens.contains(db.as_str()))
    });
    if names_captured {
        Err(format!(
            "cannot parse this DDL on a captured table ({parse_error})"
        ))
    } else {
        Ok(Vec::new())
    }
}

fn column_from_def(def: &ColumnDef, table_charset: Option<&str>) -> MySqlColumn {
    let mut column = MySqlColumn {
        name: ident(&def.name),
        type_text: def.data_type.to_string(),
        nullable: true,
        charset: table_charset.map(str::to_string),
        collation: None,
        default: None,
        comment: None,
    };
    for option in &def.options {
        match &option.option {
            ColumnOption::NotNull | ColumnOption::PrimaryKey(_) => column.nullable = false,
            ColumnOption::Null => column.nullable = true,
            ColumnOption::Default(expr) => column.default = Some(expr.to_string()),
            ColumnOption::CharacterSet(name) => {
                column.charset = Some(name.to_string());
                column.collation = None;
            }
            ColumnOption::Comment(c) => column.comment = Some(c.clone()),
            _ => {}
        }
    }
    column
}

fn position_of(p: Option<&MySQLColumnPosition>) -> ColumnPosition {
    match p {
        None => ColumnPosition::Last,
        Some(MySQLColumnPosition::First) => ColumnPosition::First,
        Some(MySQLColumnPosition::After(i)) => ColumnPosition::After(ident(i)),
    }
}

fn index_of(meta: &TableMeta, name: &str) -> Result<usize, String> {
    meta.columns
        .iter()
        .position(|c| c.name.eq_ignore_ascii_case(name))
        .ok_or_else(|| {
            format!(
                "column `{name}` is not in the tracked schema of {}.{}",
                meta.db, meta.table
            )
        })
}

fn insert_at(
    meta: &mut TableMeta,
    column: MySqlColumn,
    position: &ColumnPosition,
) -> Result<(), String> {
    let at = match position {
        ColumnPosition::Last => meta.columns.len(),
        ColumnPosition::First => 0,
        ColumnPosition::After(name) => index_of(meta, name)? + 1,
        ColumnPosition::Before(name) => index_of(meta, name)?,
    };
    meta.columns.insert(at, column);
    Ok(())
}

fn alter_table(
    before: &TableMeta,
    operations: &[AlterTableOperation],
    config: &MySqlSourceConfig,
    if_exists: bool,
) -> Result<TableChange, String> {
    let table_id = TableId::new(&before.db, &before.table);
    let mut meta = before.clone();
    let mut events = Vec::new();
    // Columns of a plain ADD inherit the table's character set.
    let table_charset = meta.columns.iter().find_map(|c| c.charset.clone());
    let tiny = config.tinyint1_as_boolean;
    let comments = config.include_comments;
    let if_exists_all = if_exists;
    let mut moved = false;
    for op in operations {
        match op {
            AlterTableOperation::AddColumn {
                column_def,
                column_position,
                if_not_exists,
                ..
            } => {
                if column_def.name.quote_style.is_none()
                    && column_def.name.value.eq_ignore_ascii_case("system")
                    && column_def
                        .data_type
                        .to_string()
                        .eq_ignore_ascii_case("versioning")
                {
                    // sqlparser reads MariaDB's ADD SYSTEM VERSIONING as a column named
                    // SYSTEM; it really adds invisible row_start / row_end columns.
                    return Err(
                        "system-versioned tables (ADD SYSTEM VERSIONING) are not supported".into(),
                    );
                }
                let column = column_from_def(column_def, table_charset.as_deref());
                if (*if_not_exists || if_exists) && index_of(&meta, &column.name).is_ok() {
                    continue;
                }
                let position = position_of(column_position.as_ref());
                insert_at(&mut meta, column.clone(), &position)?;
                events.push(SchemaChangeEvent::AddColumn {
                    table_id: table_id.clone(),
                    columns: vec![(to_column(&column, tiny, comments), position)],
                });
            }
            AlterTableOperation::DropColumn {
                column_names,
                if_exists,
                ..
            } => {
                let if_exists_guard = if_exists_all;
                let mut dropped = Vec::new();
                for name in column_names {
                    let name = ident(name);
                    match index_of(&meta, &name) {
                        Ok(i) => {
                            let removed = meta.columns.remove(i);
                            meta.primary_key.retain(|k| !k.eq_ignore_ascii_case(&name));
                            dropped.push(removed.name);
                        }
                        Err(_) if *if_exists || if_exists_guard => {}
                        Err(e) => return Err(e),
                    }
                }
                if !dropped.is_empty() {
                    events.push(SchemaChangeEvent::DropColumn {
                        table_id: table_id.clone(),
                        columns: dropped,
                    });
                }
            }
            AlterTableOperation::RenameColumn {
                old_column_name,
                new_column_name,
            } => {
                let (old, new) = (ident(old_column_name), ident(new_column_name));
                let i = index_of(&meta, &old)?;
                let old = meta.columns[i].name.clone();
                meta.columns[i].name.clone_from(&new);
                rename_key(&mut meta, &old, &new);
                events.push(SchemaChangeEvent::RenameColumn {
                    table_id: table_id.clone(),
                    renames: vec![(old, new)],
                });
            }
            AlterTableOperation::ModifyColumn {
                col_name,
                data_type,
                options,
                column_position,
            } => {
                let name = ident(col_name);
                if if_exists_all && index_of(&meta, &name).is_err() {
                    continue;
                }
                moved |= change_column(
                    &mut meta,
                    &mut events,
                    &table_id,
                    &name,
                    &name,
                    data_type,
                    options,
                    column_position.as_ref(),
                    config,
                )?;
            }
            AlterTableOperation::ChangeColumn {
                old_name,
                new_name,
                data_type,
                options,
                column_position,
            } => {
                if if_exists_all && index_of(&meta, &ident(old_name)).is_err() {
                    continue;
                }
                moved |= change_column(
                    &mut meta,
                    &mut events,
                    &table_id,
                    &ident(old_name),
                    &ident(new_name),
                    data_type,
                    options,
                    column_position.as_ref(),
                    config,
                )?;
            }
            // Handled by the caller, after the other clauses (see `apply`).
            AlterTableOperation::RenameTable { .. } => {}
            // Indexes, constraints, defaults, options: the row layout and the column
            // types stay the same.
            _ => {}
        }
    }
    if moved {
        // cdc-api has no "move column" change (nor has Flink CDC): the table is announced
        // again with its new column order. Rows carry values in schema order, so the
        // runtime must learn it; the target keeps its order and gets rows by name.
        events.push(SchemaChangeEvent::CreateTable {
            table_id,
            schema: meta.to_schema(tiny, comments),
        });
    }
    Ok(TableChange::Upsert {
        meta,
        events,
        copy_rows: false,
    })
}

fn rename_key(meta: &mut TableMeta, old: &str, new: &str) {
    for k in &mut meta.primary_key {
        if k.eq_ignore_ascii_case(old) {
            *k = new.to_string();
        }
    }
}

#[allow(clippy::too_many_arguments)]
fn change_column(
    meta: &mut TableMeta,
    events: &mut Vec<SchemaChangeEvent>,
    table_id: &TableId,
    old: &str,
    new: &str,
    data_type: &sqlparser::ast::DataType,
    options: &[ColumnOption],
    position: Option<&MySQLColumnPosition>,
    config: &MySqlSourceConfig,
) -> Result<bool, String> {
    let i = index_of(meta, old)?;
    let previous = meta.columns[i].clone();
    let def = ColumnDef {
        name: sqlparser::ast::Ident::new(new),
        data_type: data_type.clone(),
        options: options
            .iter()
            .map(|o| sqlparser::ast::ColumnOptionDef {
                name: None,
                option: o.clone(),
            })
            .collect(),
    };
    let mut column = column_from_def(&def, previous.charset.as_deref());
    if column.comment.is_none() {
        column.comment.clone_from(&previous.comment);
    }
    meta.columns[i] = column.clone();
    // FIRST / AFTER x: the column moves; x is looked up once the column is taken out.
    let moved = match position {
        None => false,
        Some(p) => {
            let moving = meta.columns.remove(i);
            insert_at(meta, moving, &position_of(Some(p)))?;
            index_of(meta, new)? != i
        }
    };
    let old_name = previous.name.clone();
    if !old_name.eq_ignore_ascii_case(new) {
        rename_key(meta, &old_name, new);
        events.push(SchemaChangeEvent::RenameColumn {
            table_id: table_id.clone(),
            renames: vec![(old_name, new.to_string())],
        });
    }
    let tiny = config.tinyint1_as_boolean;
    let before = to_column(&previous, tiny, config.include_comments);
    let after = to_column(&column, tiny, config.include_comments);
    if before.data_type != after.data_type {
        let mut comments = BTreeMap::new();
        if let Some(c) = &after.comment {
            comments.insert(after.name.clone(), c.clone());
        }
        events.push(SchemaChangeEvent::AlterColumnType {
            table_id: table_id.clone(),
            types: vec![(after.name.clone(), after.data_type.clone())],
            comments,
        });
    }
    Ok(moved)
}

#[cfg(test)]
mod rename_tests {
    use super::rename_with_to;

    #[test]
    fn alter_rename_without_to_gets_one() {
        assert_eq!(
            rename_with_to("ALTER TABLE a RENAME b"),
            "ALTER TABLE a RENAME TO b"
        );
        assert_eq!(
            rename_with_to("alter table a rename `d`.`b`, add x int"),
            "alter table a RENAME TO `d`.`b`, add x int"
        );
        for kept in [
            "ALTER TABLE a RENAME TO b",
            "ALTER TABLE a RENAME AS b",
            "ALTER TABLE a RENAME COLUMN x TO y",
            "ALTER TABLE a RENAME INDEX i TO j",
            "ALTER TABLE a RENAME KEY i TO j",
        ] {
            assert_eq!(rename_with_to(kept), kept);
        }
    }
}
