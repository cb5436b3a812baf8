//! The SQL the emulator understands, in StarRocks syntax: a small tokenizer, a parser for
//! the statements below, and their execution against [`State`].
//!
//! `CREATE/DROP DATABASE`, `CREATE TABLE` (PRIMARY KEY / DUPLICATE KEY, COMMENT,
//! `DISTRIBUTED BY HASH(..) [BUCKETS n]`, PROPERTIES), `ALTER TABLE` ADD / DROP / RENAME /
//! MODIFY COLUMN (asynchronous jobs, one per table at a time) and `COMMENT = ".."`, `TRUNCATE`, `DROP TABLE`,
//! `SHOW ALTER TABLE COLUMN`, `SELECT` (`*`, columns or `count(*)`; key ranges with
//! `WHERE`, `ORDER BY`, `LIMIT` through `crate::doris::range_select`), `DESC`,
//! `SHOW [FULL] COLUMNS`, `SHOW CREATE TABLE`, `SHOW DATABASES`, `SHOW TABLES`, `USE`,
//! `SET` (ignored) and `SELECT @@var` (what MySQL clients ask on connect).

use std::collections::BTreeMap;
use std::time::Instant;

use super::catalog::{AlterAction, AlterJob, Column, KeysType, SrType, Table};
use super::state::State;
use crate::doris::QueryResult;

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    /// An identifier or keyword; `true` when it was back-quoted.
    Ident(String, bool),
    Str(String),
    Num(String),
    Sym(char),
}

fn tokenize(sql: &str) -> Result<Vec<Tok>, String> {
    let chars: Vec<char> = sql.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c.is_whitespace() || c == ';' {
            i += 1;
        } else if c == '-' && chars.get(i + 1) == Some(&'-') {
            while i < chars.len() && chars[i] != '\n' {
                i += 1;
            }
        } else if c == '`' {
            let start = i + 1;
            i += 1;
            while i < chars.len() && chars[i] != '`' {
                i += 1;
            }
            if i >= chars.len() {
                return Err("unterminated quoted identifier".into());
            }
            out.push(Tok::Ident(chars[start..i].iter().collect(), true));
            i += 1;
        } else if c == '\'' || c == '"' {
            let mut s = String::new();
            i += 1;
            loop {
                let Some(&ch) = chars.get(i) else {
                    return Err("unterminated string literal".into());
                };
                if ch == '\\' {
                    if let Some(&n) = chars.get(i + 1) {
                        s.push(match n {
                            'n' => '\n',
                            't' => '\t',
                            other => other,
                        });
                        i += 2;
                        continue;
                    }
                }
                if ch == c {
                    if chars.get(i + 1) == Some(&c) {
                        s.push(c);
                        i += 2;
                        continue;
                    }
                    i += 1;
                    break;
                }
                s.push(ch);
                i += 1;
            }
            out.push(Tok::Str(s));
        } else if c.is_ascii_digit()
            || (c == '-' && chars.get(i + 1).is_some_and(char::is_ascii_digit))
        {
            let start = i;
            i += 1;
            while i < chars.len() && (chars[i].is_ascii_digit() || chars[i] == '.') {
                i += 1;
            }
            out.push(Tok::Num(chars[start..i].iter().collect()));
        } else if c.is_alphanumeric() || c == '_' || c == '@' || c == '$' {
            let start = i;
            while i < chars.len()
                && (chars[i].is_alphanumeric() || matches!(chars[i], '_' | '@' | '$'))
            {
                i += 1;
            }
            out.push(Tok::Ident(chars[start..i].iter().collect(), false));
        } else {
            out.push(Tok::Sym(c));
            i += 1;
        }
    }
    Ok(out)
}

struct Parser {
    toks: Vec<Tok>,
    pos: usize,
}

fn syntax(what: &str) -> String {
    format!("Getting syntax error. Detail message: {what}.")
}

impl Parser {
    fn peek(&self) -> Option<&Tok> {
        self.toks.get(self.pos)
    }

    fn done(&self) -> bool {
        self.pos >= self.toks.len()
    }

    fn is_kw(&self, kw: &str) -> bool {
        matches!(self.peek(), Some(Tok::Ident(s, false)) if s.eq_ignore_ascii_case(kw))
    }

    fn eat_kw(&mut self, kw: &str) -> bool {
        if self.is_kw(kw) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    fn kw(&mut self, kw: &str) -> Result<(), String> {
        if self.eat_kw(kw) {
            Ok(())
        } else {
            Err(syntax(&format!("expected {kw} near {:?}", self.peek())))
        }
    }

    fn eat_sym(&mut self, c: char) -> bool {
        if self.peek() == Some(&Tok::Sym(c)) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    fn sym(&mut self, c: char) -> Result<(), String> {
        if self.eat_sym(c) {
            Ok(())
        } else {
            Err(syntax(&format!("expected '{c}' near {:?}", self.peek())))
        }
    }

    fn ident(&mut self) -> Result<String, String> {
        match self.toks.get(self.pos) {
            Some(Tok::Ident(s, _)) => {
                self.pos += 1;
                Ok(s.clone())
            }
            other => Err(syntax(&format!("expected a name near {other:?}"))),
        }
    }

    fn string(&mut self) -> Result<String, String> {
        match self.toks.get(self.pos) {
            Some(Tok::Str(s) | Tok::Num(s)) => {
                self.pos += 1;
                Ok(s.clone())
            }
            other => Err(syntax(&format!("expected a literal near {other:?}"))),
        }
    }

    fn number(&mut self) -> Result<u32, String> {
        match self.toks.get(self.pos) {
            Some(Tok::Num(s)) => {
                self.pos += 1;
                s.parse().map_err(|_| syntax(&format!("bad number {s}")))
            }
            other => Err(syntax(&format!("expected a number near {other:?}"))),
        }
    }

    /// `[db.]table`.
    fn table_name(&mut self, current: Option<&str>) -> Result<(String, String), String> {
        let first = self.ident()?;
        if self.eat_sym('.') {
            Ok((first, self.ident()?))
        } else {
            let db = current.ok_or_else(|| "No database selected".to_string())?;
            Ok((db.to_string(), first))
        }
    }

    fn name_list(&mut self) -> Result<Vec<String>, String> {
        self.sym('(')?;
        let mut names = vec![self.ident()?];
        while self.eat_sym(',') {
            names.push(self.ident()?);
        }
        self.sym(')')?;
        Ok(names)
    }

    fn properties(&mut self) -> Result<BTreeMap<String, String>, String> {
        let mut props = BTreeMap::new();
        self.sym('(')?;
        loop {
            let k = self.string()?;
            self.sym('=')?;
            let v = self.string()?;
            props.insert(k, v);
            if !self.eat_sym(',') {
                break;
            }
        }
        self.sym(')')?;
        Ok(props)
    }

    fn data_type(&mut self) -> Result<SrType, String> {
        let name = self.ident()?;
        let mut args = Vec::new();
        if self.eat_sym('(') {
            args.push(self.number()?);
            while self.eat_sym(',') {
                args.push(self.number()?);
            }
            self.sym(')')?;
        }
        SrType::from_sql(&name, &args)
    }

    /// `name TYPE [NOT NULL | NULL] [DEFAULT x] [COMMENT "c"]`; `nullable` is `None`
    /// when not said.
    fn column(&mut self) -> Result<(Column, Option<bool>), String> {
        let name = self.ident()?;
        let ty = self.data_type()?;
        let mut nullable = None;
        let mut default = None;
        let mut comment = String::new();
        loop {
            if self.eat_kw("NOT") {
                self.kw("NULL")?;
                nullable = Some(false);
            } else if self.eat_kw("NULL") {
                nullable = Some(true);
            } else if self.eat_kw("DEFAULT") {
                if self.eat_kw("CURRENT_TIMESTAMP") {
                    default = Some("CURRENT_TIMESTAMP".to_string());
                } else if self.eat_kw("NULL") {
                    default = None;
                } else {
                    default = Some(self.string()?);
                }
            } else if self.eat_kw("COMMENT") {
                comment = self.string()?;
            } else {
                break;
            }
        }
        if let Some(d) = &default {
            if d == "CURRENT_TIMESTAMP" && ty != SrType::DateTime {
                return Err(format!(
                    "Invalid default value for '{name}': CURRENT_TIMESTAMP needs DATETIME"
                ));
            }
            if d != "CURRENT_TIMESTAMP" && ty.convert(d, &name).is_err() {
                return Err(format!("Invalid default value for '{name}': {d}"));
            }
        }
        Ok((
            Column {
                name,
                ty,
                nullable: nullable.unwrap_or(true),
                default,
                comment,
            },
            nullable,
        ))
    }
}

/// Runs one statement. `current` is the connection's database (`USE`), which a `USE`
/// statement changes.
pub(crate) fn execute(
    state: &mut State,
    current: &mut Option<String>,
    sql: &str,
) -> Result<QueryResult, String> {
    state.tick();
    if let Some(sel) = crate::doris::range_select::parse(sql) {
        return range_select(state, current.as_deref(), &sel);
    }
    let mut p = Parser {
        toks: tokenize(sql)?,
        pos: 0,
    };
    if p.done() {
        return Err(syntax("empty statement"));
    }
    let cur = current.clone();
    let cur = cur.as_deref();
    let result = if p.eat_kw("CREATE") {
        if p.eat_kw("DATABASE") {
            let if_not = p.eat_kw("IF") && {
                p.kw("NOT")?;
                p.kw("EXISTS")?;
                true
            };
            let name = p.ident()?;
            if let std::collections::btree_map::Entry::Vacant(e) = state.dbs.entry(name.clone()) {
                e.insert(super::catalog::Database::default());
            } else if !if_not {
                return Err(format!("Can't create database '{name}'; database exists"));
            }
            ok()
        } else {
            p.kw("TABLE")?;
            create_table(state, &mut p, cur)?
        }
    } else if p.eat_kw("DROP") {
        if p.eat_kw("DATABASE") {
            let if_exists = p.eat_kw("IF") && {
                p.kw("EXISTS")?;
                true
            };
            let name = p.ident()?;
            if state.dbs.remove(&name).is_none() && !if_exists {
                return Err(format!(
                    "Can't drop database '{name}'; database doesn't exist"
                ));
            }
            ok()
        } else {
            p.kw("TABLE")?;
            let if_exists = p.eat_kw("IF") && {
                p.kw("EXISTS")?;
                true
            };
            let (db, t) = p.table_name(cur)?;
            let removed = state.dbs.get_mut(&db).and_then(|d| d.tables.remove(&t));
            if removed.is_none() && !if_exists {
                return Err(unknown_table(&db, &t));
            }
            ok()
        }
    } else if p.eat_kw("TRUNCATE") {
        p.kw("TABLE")?;
        let (db, t) = p.table_name(cur)?;
        state
            .table_mut(&db, &t)
            .ok_or_else(|| unknown_table(&db, &t))?
            .rows
            .clear();
        ok()
    } else if p.eat_kw("ALTER") {
        p.kw("TABLE")?;
        alter_table(state, &mut p, cur)?
    } else if p.eat_kw("USE") {
        let db = p.ident()?;
        if !state.dbs.contains_key(&db) {
            return Err(format!("Unknown database '{db}'"));
        }
        *current = Some(db);
        ok()
    } else if p.eat_kw("SET") {
        ok()
    } else if p.eat_kw("SHOW") {
        show(state, &mut p, cur)?
    } else if p.eat_kw("DESC") || p.eat_kw("DESCRIBE") {
        let (db, t) = p.table_name(cur)?;
        describe(state, &db, &t)?
    } else if p.eat_kw("SELECT") {
        select(state, &mut p, cur)?
    } else {
        return Err(syntax(&format!("unsupported statement: {sql}")));
    };
    Ok(result)
}

fn ok() -> QueryResult {
    QueryResult::default()
}

fn unknown_table(db: &str, t: &str) -> String {
    format!("Unknown table '{db}.{t}'")
}

fn result_set(columns: &[&str], rows: Vec<Vec<Option<String>>>) -> QueryResult {
    QueryResult {
        is_result_set: true,
        columns: columns.iter().map(|c| (*c).to_string()).collect(),
        column_types: columns.iter().map(|_| "VARCHAR".to_string()).collect(),
        rows,
    }
}

fn create_table(
    state: &mut State,
    p: &mut Parser,
    cur: Option<&str>,
) -> Result<QueryResult, String> {
    let if_not = p.eat_kw("IF") && {
        p.kw("NOT")?;
        p.kw("EXISTS")?;
        true
    };
    let (db, name) = p.table_name(cur)?;
    p.sym('(')?;
    let mut columns: Vec<(Column, Option<bool>)> = Vec::new();
    loop {
        columns.push(p.column()?);
        if !p.eat_sym(',') {
            break;
        }
    }
    p.sym(')')?;
    let mut keys_type = KeysType::Duplicate;
    let mut keys: Vec<String> = Vec::new();
    let mut comment = String::new();
    let mut hash: Vec<String> = Vec::new();
    let mut buckets = None;
    let mut properties = BTreeMap::new();
    while !p.done() {
        if p.eat_kw("ENGINE") {
            p.sym('=')?;
            let e = p.ident()?;
            if !e.eq_ignore_ascii_case("OLAP") {
                return Err(format!("Unknown engine name: {e}"));
            }
        } else if p.eat_kw("PRIMARY") {
            p.kw("KEY")?;
            keys_type = KeysType::Primary;
            keys = p.name_list()?;
        } else if p.eat_kw("DUPLICATE") {
            p.kw("KEY")?;
            keys = p.name_list()?;
        } else if p.is_kw("UNIQUE") || p.is_kw("AGGREGATE") {
            return Err(
                "the StarRocks emulator supports PRIMARY KEY and DUPLICATE KEY tables only".into(),
            );
        } else if p.eat_kw("COMMENT") {
            comment = p.string()?;
        } else if p.eat_kw("DISTRIBUTED") {
            p.kw("BY")?;
            p.kw("HASH")?;
            hash = p.name_list()?;
            if p.eat_kw("BUCKETS") {
                let n = p.number()?;
                if n == 0 {
                    return Err("Number of hash distribution should be greater than zero.".into());
                }
                buckets = Some(n);
            }
        } else if p.eat_kw("PROPERTIES") {
            properties = p.properties()?;
        } else if p.eat_kw("ORDER") {
            p.kw("BY")?;
            p.name_list()?;
        } else {
            return Err(syntax(&format!("unexpected {:?}", p.peek())));
        }
    }
    if !state.dbs.contains_key(&db) {
        return Err(format!("Unknown database '{db}'"));
    }
    if state.table(&db, &name).is_some() {
        if if_not {
            return Ok(ok());
        }
        return Err(format!("Table '{name}' already exists"));
    }
    if keys_type == KeysType::Primary && keys.is_empty() {
        return Err("Primary key table must have primary key columns".into());
    }
    if keys.is_empty() {
        // DUPLICATE KEY default: the first column.
        keys.push(
            columns
                .first()
                .map(|c| c.0.name.clone())
                .unwrap_or_default(),
        );
    }
    for (i, k) in keys.iter().enumerate() {
        let Some((c, said)) = columns.get(i) else {
            return Err(format!("Key column '{k}' does not exist"));
        };
        if !c.name.eq_ignore_ascii_case(k) {
            return Err(format!(
                "Key columns must be the first few columns of the schema and the order of the key columns must be consistent with the order of the schema (key column '{k}')"
            ));
        }
        if keys_type == KeysType::Primary {
            if *said != Some(false) {
                return Err(format!(
                    "primary key column[{k}] cannot be nullable: declare it NOT NULL"
                ));
            }
            if let Some(e) = c.ty.key_error(k) {
                return Err(e);
            }
        }
    }
    let mut seen = std::collections::HashSet::new();
    for (c, _) in &columns {
        if !seen.insert(c.name.to_ascii_lowercase()) {
            return Err(format!("Duplicate column name '{}'", c.name));
        }
        if c.name.starts_with("__") {
            return Err(format!("Column name '{}' is reserved", c.name));
        }
    }
    for h in &hash {
        if !keys.iter().any(|k| k.eq_ignore_ascii_case(h)) {
            return Err(format!("Distribution column[{h}] is not key column"));
        }
    }
    if hash.is_empty() && keys_type == KeysType::Primary {
        return Err(syntax("DISTRIBUTED BY HASH(...) is required"));
    }
    if let Some(r) = properties.get("replication_num") {
        if r.trim() != "1" {
            return Err(format!(
                "Table replication num should be less than or equal to the number of available BE nodes. You can change this default by setting the replication_num table properties. Current alive backend is [1]. replication_num={r}"
            ));
        }
    }
    let key_count = keys.len();
    let table = Table {
        columns: columns.into_iter().map(|(c, _)| c).collect(),
        keys_type,
        key_count,
        buckets,
        properties,
        comment,
        rows: Vec::new(),
        running_job: None,
    };
    if let Some(d) = state.dbs.get_mut(&db) {
        d.tables.insert(name, table);
    }
    Ok(ok())
}

fn alter_table(
    state: &mut State,
    p: &mut Parser,
    cur: Option<&str>,
) -> Result<QueryResult, String> {
    let (db, name) = p.table_name(cur)?;
    let table = state
        .table(&db, &name)
        .ok_or_else(|| unknown_table(&db, &name))?
        .clone();
    if p.eat_kw("COMMENT") {
        // `ALTER TABLE t COMMENT = "..."`: metadata only, no job.
        p.sym('=')?;
        let c = p.string()?;
        if let Some(t) = state.table_mut(&db, &name) {
            t.comment = c;
        }
        return Ok(ok());
    }
    let action = if p.eat_kw("ADD") {
        let mut cols = Vec::new();
        loop {
            p.eat_kw("COLUMN");
            let (col, _) = p.column()?;
            let after = if p.eat_kw("FIRST") {
                Some(String::new())
            } else if p.eat_kw("AFTER") {
                Some(p.ident()?)
            } else {
                None
            };
            if table.column_index(&col.name).is_some()
                || cols.iter().any(|(c, _): &(Column, _)| c.name == col.name)
            {
                return Err(format!(
                    "Can not add column which already exists in base table: {}",
                    col.name
                ));
            }
            if let Some(a) = after.as_deref().filter(|a| !a.is_empty()) {
                if table.column_index(a).is_none() {
                    return Err(format!("Column[{a}] does not exist"));
                }
            }
            if !col.nullable && col.default.is_none() {
                return Err(format!(
                    "Can not add NOT NULL column '{}' without a default value",
                    col.name
                ));
            }
            cols.push((col, after));
            if !(p.eat_sym(',') && p.is_kw("ADD") && p.eat_kw("ADD")) {
                break;
            }
        }
        AlterAction::Add(cols)
    } else if p.eat_kw("DROP") {
        let mut names = Vec::new();
        loop {
            p.eat_kw("COLUMN");
            let n = p.ident()?;
            match table.column_index(&n) {
                None => return Err(format!("Column does not exists: {n}")),
                Some(i) if i < table.key_count => {
                    return Err(format!(
                        "Can not drop key column {n} in primary data model table"
                    ));
                }
                Some(_) => names.push(n),
            }
            if !(p.eat_sym(',') && p.is_kw("DROP") && p.eat_kw("DROP")) {
                break;
            }
        }
        AlterAction::Drop(names)
    } else if p.eat_kw("RENAME") {
        p.kw("COLUMN")?;
        let from = p.ident()?;
        p.kw("TO")?;
        let to = p.ident()?;
        if table.column_index(&from).is_none() {
            return Err(format!("Column '{from}' does not exist"));
        }
        if table.column_index(&to).is_some() {
            return Err(format!("Column '{to}' already exists"));
        }
        AlterAction::Rename(from, to)
    } else if p.eat_kw("MODIFY") {
        if p.eat_kw("COMMENT") {
            let c = p.string()?;
            if let Some(t) = state.table_mut(&db, &name) {
                t.comment = c;
            }
            return Ok(ok());
        }
        p.kw("COLUMN")?;
        let (col, said) = p.column()?;
        let Some(i) = table.column_index(&col.name) else {
            return Err(format!("Column[{}] does not exists", col.name));
        };
        if i < table.key_count {
            return Err(format!("Can not modify key column: {}", col.name));
        }
        let old = &table.columns[i];
        old.ty.can_change_to(col.ty)?;
        if old.nullable && said == Some(false) {
            return Err(format!(
                "Can not change column {} from nullable to not null",
                col.name
            ));
        }
        let mut col = col;
        col.name.clone_from(&old.name);
        if said.is_none() {
            col.nullable = old.nullable;
        }
        AlterAction::Modify(col)
    } else {
        return Err(syntax("expected ADD, DROP, RENAME or MODIFY"));
    };
    if p.eat_kw("PROPERTIES") {
        p.properties()?;
    }
    if !p.done() {
        return Err(syntax(&format!("unexpected {:?}", p.peek())));
    }
    if table.running_job.is_some() {
        return Err(format!(
            "Table[{name}]'s state(SCHEMA_CHANGE) is not NORMAL. Do not allow doing ALTER ops"
        ));
    }
    let job_id = state.next_id();
    let create_time = state.job_time_text();
    state.jobs.push(AlterJob {
        job_id,
        db: db.clone(),
        table: name.clone(),
        create_time,
        finish_time: None,
        started: Instant::now(),
        duration: state.options.alter_job_duration,
        action: Some(action),
        state: "PENDING",
    });
    if let Some(t) = state.table_mut(&db, &name) {
        t.running_job = Some(job_id);
    }
    state.tick();
    Ok(ok())
}

fn describe(state: &State, db: &str, t: &str) -> Result<QueryResult, String> {
    let table = state.table(db, t).ok_or_else(|| unknown_table(db, t))?;
    let rows = table
        .columns
        .iter()
        .enumerate()
        .map(|(i, c)| {
            vec![
                Some(c.name.clone()),
                Some(c.ty.text().to_ascii_lowercase()),
                Some(if c.nullable { "YES" } else { "NO" }.into()),
                Some(if i < table.key_count { "true" } else { "false" }.into()),
                c.default.clone(),
                Some(String::new()),
                Some(c.comment.clone()),
            ]
        })
        .collect();
    Ok(result_set(
        &[
            "Field", "Type", "Null", "Key", "Default", "Extra", "Comment",
        ],
        rows,
    ))
}

fn show(state: &mut State, p: &mut Parser, cur: Option<&str>) -> Result<QueryResult, String> {
    if p.eat_kw("DATABASES") {
        let rows = state.dbs.keys().map(|d| vec![Some(d.clone())]).collect();
        return Ok(result_set(&["Database"], rows));
    }
    if p.eat_kw("TABLES") {
        let db = if p.eat_kw("FROM") || p.eat_kw("IN") {
            p.ident()?
        } else {
            cur.ok_or("No database selected")?.to_string()
        };
        let d = state
            .dbs
            .get(&db)
            .ok_or_else(|| format!("Unknown database '{db}'"))?;
        let rows = d.tables.keys().map(|t| vec![Some(t.clone())]).collect();
        return Ok(result_set(&[&format!("Tables_in_{db}")], rows));
    }
    if p.eat_kw("CREATE") {
        p.kw("TABLE")?;
        let (db, t) = p.table_name(cur)?;
        let table = state.table(&db, &t).ok_or_else(|| unknown_table(&db, &t))?;
        return Ok(result_set(
            &["Table", "Create Table"],
            vec![vec![Some(t.clone()), Some(table.create_sql(&t))]],
        ));
    }
    if p.eat_kw("FULL") || p.is_kw("COLUMNS") {
        p.kw("COLUMNS")?;
        if !(p.eat_kw("FROM") || p.eat_kw("IN")) {
            return Err(syntax("expected FROM"));
        }
        let (db, t) = p.table_name(cur)?;
        return describe(state, &db, &t);
    }
    if p.eat_kw("ALTER") {
        p.kw("TABLE")?;
        p.kw("COLUMN")?;
        let db = if p.eat_kw("FROM") || p.eat_kw("IN") {
            p.ident()?
        } else {
            cur.ok_or("No database selected")?.to_string()
        };
        if !state.dbs.contains_key(&db) {
            return Err(format!("Unknown database '{db}'"));
        }
        let mut table_filter = None;
        let mut desc = false;
        let mut order_by_time = false;
        let mut limit = None;
        while !p.done() {
            if p.eat_kw("WHERE") {
                p.kw("TableName")?;
                p.sym('=')?;
                table_filter = Some(p.string()?);
            } else if p.eat_kw("ORDER") {
                p.kw("BY")?;
                order_by_time = p.ident()?.eq_ignore_ascii_case("CreateTime");
                if p.eat_kw("DESC") {
                    desc = true;
                } else {
                    p.eat_kw("ASC");
                }
            } else if p.eat_kw("LIMIT") {
                limit = Some(p.number()? as usize);
            } else {
                return Err(syntax(&format!("unexpected {:?}", p.peek())));
            }
        }
        let mut jobs: Vec<&AlterJob> = state
            .jobs
            .iter()
            .filter(|j| j.db == db && table_filter.as_ref().is_none_or(|t| &j.table == t))
            .collect();
        // StarRocks lists jobs in job-id order; ORDER BY CreateTime sorts by a text of
        // one-second resolution (`yyyy-MM-dd HH:mm:ss`, ShowAlterStmt / SchemaChangeJobV2
        // getInfo), and jobs created in the same second keep job-id order, also under
        // DESC: the newest of two same-second jobs is listed second.
        jobs.sort_by_key(|j| j.job_id);
        if order_by_time {
            if desc {
                jobs.sort_by(|a, b| b.create_time.cmp(&a.create_time));
            } else {
                jobs.sort_by(|a, b| a.create_time.cmp(&b.create_time));
            }
        } else if desc {
            jobs.reverse();
        }
        if let Some(n) = limit {
            jobs.truncate(n);
        }
        let rows = jobs
            .iter()
            .map(|j| {
                vec![
                    Some(j.job_id.to_string()),
                    Some(j.table.clone()),
                    Some(j.create_time.clone()),
                    j.finish_time.clone(),
                    Some(j.table.clone()),
                    Some((j.job_id + 1).to_string()),
                    Some((j.job_id - 1).to_string()),
                    Some("1:0".into()),
                    Some(j.job_id.to_string()),
                    Some(j.state.to_string()),
                    Some(String::new()),
                    None,
                    Some("86400".into()),
                ]
            })
            .collect();
        return Ok(result_set(
            &[
                "JobId",
                "TableName",
                "CreateTime",
                "FinishTime",
                "IndexName",
                "IndexId",
                "OriginIndexId",
                "SchemaVersion",
                "TransactionId",
                "State",
                "Msg",
                "Progress",
                "Timeout",
            ],
            rows,
        ));
    }
    if p.eat_kw("VARIABLES") {
        return Ok(result_set(&["Variable_name", "Value"], Vec::new()));
    }
    Err(syntax("unsupported SHOW statement"))
}

fn variable(name: &str) -> Option<String> {
    let n = name.trim_start_matches('@').to_ascii_lowercase();
    let n = n
        .strip_prefix("session.")
        .or_else(|| n.strip_prefix("global."))
        .unwrap_or(&n);
    match n {
        "max_allowed_packet" => Some("16777216".into()),
        "wait_timeout" => Some("28800".into()),
        "version_comment" => Some("StarRocks emulator (cdc-testkit)".into()),
        "version" => Some("8.0.33".into()),
        "autocommit" => Some("1".into()),
        "sql_mode" => Some(String::new()),
        "time_zone" | "system_time_zone" => Some("UTC".into()),
        "character_set_client" | "character_set_results" | "character_set_connection" => {
            Some("utf8".into())
        }
        _ => None,
    }
}

/// A key-range `SELECT` (see `crate::doris::range_select`); the MySQL protocol carries
/// every value as text, as StarRocks' text result rows do.
fn range_select(
    state: &State,
    cur: Option<&str>,
    sel: &crate::doris::range_select::RangeSelect,
) -> Result<QueryResult, String> {
    let db = sel
        .db
        .clone()
        .or_else(|| cur.map(str::to_string))
        .ok_or_else(|| "No database selected".to_string())?;
    let table = state
        .table(&db, &sel.table)
        .ok_or_else(|| unknown_table(&db, &sel.table))?;
    let columns: Vec<(String, bool)> = table
        .columns
        .iter()
        .map(|c| {
            (
                c.name.clone(),
                crate::doris::range_select::numeric_type(&c.ty.text()),
            )
        })
        .collect();
    let out = sel.run(&columns, table.sorted_rows())?;
    let labels: Vec<&str> = out.labels.iter().map(String::as_str).collect();
    Ok(result_set(&labels, out.rows))
}

fn select(state: &State, p: &mut Parser, cur: Option<&str>) -> Result<QueryResult, String> {
    // `SELECT @@a, @@b` (clients ask these on connect) and `SELECT 1`.
    if matches!(p.peek(), Some(Tok::Ident(s, false)) if s.starts_with("@@"))
        || matches!(p.peek(), Some(Tok::Num(_)))
    {
        let mut names = Vec::new();
        let mut values = Vec::new();
        loop {
            match p.toks.get(p.pos).cloned() {
                Some(Tok::Num(n)) => {
                    p.pos += 1;
                    names.push(n.clone());
                    values.push(Some(n));
                }
                Some(Tok::Ident(s, _)) => {
                    p.pos += 1;
                    let mut full = s.clone();
                    while p.eat_sym('.') {
                        full.push('.');
                        full.push_str(&p.ident()?);
                    }
                    names.push(full.clone());
                    values.push(variable(&full));
                }
                _ => return Err(syntax("bad select list")),
            }
            if !p.eat_sym(',') {
                break;
            }
        }
        let names: Vec<&str> = names.iter().map(String::as_str).collect();
        return Ok(result_set(&names, vec![values]));
    }
    enum Proj {
        All,
        Count,
        Cols(Vec<String>),
    }
    let proj = if p.eat_sym('*') {
        Proj::All
    } else if p.is_kw("count") {
        p.pos += 1;
        p.sym('(')?;
        p.sym('*')?;
        p.sym(')')?;
        Proj::Count
    } else {
        let mut cols = vec![p.ident()?];
        while p.eat_sym(',') {
            cols.push(p.ident()?);
        }
        Proj::Cols(cols)
    };
    p.kw("FROM")?;
    let (db, t) = p.table_name(cur)?;
    let table = state.table(&db, &t).ok_or_else(|| unknown_table(&db, &t))?;
    let rows = table.sorted_rows();
    Ok(match proj {
        Proj::Count => result_set(&["count(*)"], vec![vec![Some(rows.len().to_string())]]),
        Proj::All => {
            let names: Vec<&str> = table.columns.iter().map(|c| c.name.as_str()).collect();
            result_set(&names, rows)
        }
        Proj::Cols(cols) => {
            let idx: Vec<usize> = cols
                .iter()
                .map(|c| {
                    table
                        .column_index(c)
                        .ok_or_else(|| format!("Unknown column '{c}' in '{t}'"))
                })
                .collect::<Result<_, _>>()?;
            let names: Vec<&str> = cols.iter().map(String::as_str).collect();
            let rows = rows
                .into_iter()
                .map(|r| idx.iter().map(|i| r[*i].clone()).collect())
                .collect();
            result_set(&names, rows)
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::starrocks::model::StarRocksEmulatorOptions;

    fn run(st: &mut State, sql: &str) -> Result<QueryResult, String> {
        execute(st, &mut None, sql)
    }

    #[test]
    fn create_table_enforces_primary_key_rules() {
        let mut st = State::new(StarRocksEmulatorOptions::default());
        run(&mut st, "CREATE DATABASE IF NOT EXISTS d").unwrap();
        let ok = "CREATE TABLE d.t (`id` BIGINT NOT NULL, v VARCHAR(1048576) NULL, ts DATETIME) PRIMARY KEY (`id`) DISTRIBUTED BY HASH (`id`) BUCKETS 4 PROPERTIES (\"replication_num\" = \"1\")";
        run(&mut st, ok).unwrap();
        for (sql, want) in [
            (
                "CREATE TABLE d.a (v INT NULL, id INT NOT NULL) PRIMARY KEY(id) DISTRIBUTED BY HASH(id)",
                "first few columns",
            ),
            (
                "CREATE TABLE d.a (id INT NULL) PRIMARY KEY(id) DISTRIBUTED BY HASH(id)",
                "nullable",
            ),
            (
                "CREATE TABLE d.a (id DECIMAL(10,2) NOT NULL) PRIMARY KEY(id) DISTRIBUTED BY HASH(id)",
                "key column",
            ),
            (
                "CREATE TABLE d.a (id INT NOT NULL, v VARCHAR(1048577)) PRIMARY KEY(id) DISTRIBUTED BY HASH(id)",
                "Varchar size",
            ),
            (
                "CREATE TABLE d.a (id INT NOT NULL, v CHAR(256)) PRIMARY KEY(id) DISTRIBUTED BY HASH(id)",
                "Char size",
            ),
            (
                "CREATE TABLE d.a (id INT NOT NULL, v DATETIME(6)) PRIMARY KEY(id) DISTRIBUTED BY HASH(id)",
                "syntax",
            ),
            (
                "CREATE TABLE d.a (id INT NOT NULL, v DECIMAL(39, 2)) PRIMARY KEY(id) DISTRIBUTED BY HASH(id)",
                "precision",
            ),
        ] {
            let err = run(&mut st, sql).unwrap_err();
            assert!(err.contains(want), "{sql}: {err}");
        }
    }
}
