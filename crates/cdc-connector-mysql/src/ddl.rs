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
    AlterTableOperation, ColumnDef, ColumnOption, CreateTableOptions, MySQLColumnPosition,
    ObjectName, ObjectType, RenameTableNameKind, SqlOption, Statement,
};
use sqlparser::dialect::MySqlDialect;
use sqlparser::parser::Parser;

use crate::MySqlSourceConfig;
use crate::schema::{MySqlColumn, TableMeta, to_column};
use crate::source::TableKey;
use crate::types::{MySqlType, charset_of_collation};

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
    let rewritten = rewrite_column_charsets(sql);
    // An ALTER TABLE's table-level character set clauses, taken out (sqlparser reads none
    // of them) and applied first: the other clauses' new columns inherit the new default.
    let mut overlay: Option<(TableKey, TableMeta, Vec<SchemaChangeEvent>)> = None;
    let statement = match split_table_charset(&rewritten, default_db) {
        None => rewritten.into_owned(),
        Some((key, change, rest)) => {
            if let Some(before) = tables.get(&key) {
                let (meta, events) = set_table_charset(before, &change, config);
                if rest.is_empty() {
                    return Ok(vec![TableChange::Upsert {
                        meta,
                        events,
                        copy_rows: false,
                    }]);
                }
                overlay = Some((key, meta, events));
            } else if rest.is_empty() {
                return Ok(Vec::new());
            }
            rest
        }
    };
    let (normalized, if_exists) = normalize(&statement);
    // Rewritten only when needed: the pattern could also match inside a string literal.
    let statements = match Parser::parse_sql(&MySqlDialect {}, &normalized).or_else(|e| {
        Parser::parse_sql(&MySqlDialect {}, &rename_with_to(&normalized)).map_err(|_| e)
    }) {
        Ok(s) => s,
        Err(e) => return unparsed(sql, default_db, tables, config, &e.to_string()),
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
                let overlaid = overlay.as_ref().filter(|(k, ..)| *k == key);
                let Some(meta) = overlaid.map(|(_, m, _)| m).or_else(|| tables.get(&key)) else {
                    if let Some(new) = renamed_to {
                        out.extend(rename_table(key, new, tables, config));
                    }
                    continue;
                };
                let mut change = alter_table(meta, &alter.operations, config, if_exists)?;
                if let (Some((_, _, first)), TableChange::Upsert { events, .. }) =
                    (overlaid, &mut change)
                {
                    events.splice(0..0, first.iter().cloned());
                }
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
                    match meta_from_create(&key, &create) {
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

/// The column names of a plain `CREATE TABLE (columns...)`; `None` for any other
/// statement, or one sqlparser cannot read.
pub(crate) fn created_columns(sql: &str) -> Option<Vec<String>> {
    let rewritten = rewrite_column_charsets(sql);
    let statements = Parser::parse_sql(&MySqlDialect {}, &rewritten).ok()?;
    match statements.as_slice() {
        [Statement::CreateTable(create)]
            if create.like.is_none() && create.query.is_none() && !create.columns.is_empty() =>
        {
            Some(create.columns.iter().map(|d| ident(&d.name)).collect())
        }
        _ => None,
    }
}

/// A table definition from a plain `CREATE TABLE (columns...)`; `None` for `LIKE` / `AS
/// SELECT`, which only the server can resolve.
fn meta_from_create(key: &TableKey, create: &sqlparser::ast::CreateTable) -> Option<TableMeta> {
    if create.columns.is_empty() || create.query.is_some() || create.like.is_some() {
        return None;
    }
    // Without one, the table takes its database's default, which the reader knows
    // (`inherit_charset`).
    let table_charset = create_table_charset(&create.table_options);
    let mut primary_key = Vec::new();
    let mut columns = Vec::new();
    for def in &create.columns {
        let column = column_from_def(def, table_charset.as_deref());
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
        charset: table_charset,
    })
}

/// What a token of a statement is, for the few rewrites done before sqlparser reads it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Lexeme {
    /// A keyword or an unquoted name.
    Word,
    /// A `'...'` or `"..."` string.
    Quoted,
    /// A `` `...` `` name.
    Ident,
    /// Any other character.
    Punct(u8),
}

/// A token and its byte range in the statement.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Token {
    pub(crate) kind: Lexeme,
    pub(crate) start: usize,
    pub(crate) end: usize,
}

/// Splits a statement into tokens, skipping spaces and comments, keeping strings and
/// quoted names whole (a keyword inside them is never taken for one).
pub(crate) fn lex(sql: &str) -> Vec<Token> {
    let b = sql.as_bytes();
    let word_byte = |c: u8| c.is_ascii_alphanumeric() || c == b'_' || c == b'$' || c >= 0x80;
    let mut out = Vec::new();
    let mut i = 0;
    while let Some(&c) = b.get(i) {
        let next = b.get(i + 1).copied();
        if c.is_ascii_whitespace() {
            i += 1;
        } else if c == b'#'
            || (c == b'-' && next == Some(b'-') && b.get(i + 2).is_none_or(u8::is_ascii_whitespace))
        {
            i = b[i..]
                .iter()
                .position(|x| *x == b'\n')
                .map_or(b.len(), |p| i + p);
        } else if c == b'/' && next == Some(b'*') {
            i = sql[i + 2..].find("*/").map_or(b.len(), |p| i + 2 + p + 2);
        } else if matches!(c, b'\'' | b'"' | b'`') {
            let start = i;
            i += 1;
            while let Some(&x) = b.get(i) {
                // A backslash escape, or a doubled quote: two bytes of the string.
                if (x == b'\\' && c != b'`') || (x == c && b.get(i + 1) == Some(&c)) {
                    i += 2;
                } else {
                    i += 1;
                    if x == c {
                        break;
                    }
                }
            }
            i = i.min(b.len());
            let kind = if c == b'`' {
                Lexeme::Ident
            } else {
                Lexeme::Quoted
            };
            out.push(Token {
                kind,
                start,
                end: i,
            });
        } else if word_byte(c) {
            let start = i;
            while b.get(i).copied().is_some_and(word_byte) {
                i += 1;
            }
            out.push(Token {
                kind: Lexeme::Word,
                start,
                end: i,
            });
        } else {
            out.push(Token {
                kind: Lexeme::Punct(c),
                start: i,
                end: i + 1,
            });
            i += 1;
        }
    }
    out
}

pub(crate) fn is_word(sql: &str, token: Option<&Token>, word: &str) -> bool {
    token.is_some_and(|t| {
        t.kind == Lexeme::Word
            && sql
                .get(t.start..t.end)
                .is_some_and(|w| w.eq_ignore_ascii_case(word))
    })
}

pub(crate) fn is_punct(token: Option<&Token>, c: u8) -> bool {
    token.is_some_and(|t| t.kind == Lexeme::Punct(c))
}

/// A name or a character set as written: quotes removed (a doubled quote is one).
pub(crate) fn token_text(sql: &str, t: &Token) -> String {
    let text = sql.get(t.start..t.end).unwrap_or_default();
    let quote = match t.kind {
        Lexeme::Ident | Lexeme::Quoted => text.get(..1).unwrap_or_default(),
        _ => "",
    };
    match text
        .strip_prefix(quote)
        .and_then(|inner| inner.strip_suffix(quote))
    {
        Some(inner) if !quote.is_empty() => inner.replace(&format!("{quote}{quote}"), quote),
        _ => text.to_string(),
    }
}

/// MySQL's column-level character set spellings sqlparser does not read, rewritten to
/// ones it does: `CHARSET x` (→ `CHARACTER SET x`), `ASCII` (latin1), `UNICODE` (ucs2),
/// `NATIONAL CHAR` / `NATIONAL VARCHAR` (→ `NCHAR` / `NVARCHAR`, utf8mb3), and the
/// `BINARY` attribute (the set's binary collation: no difference to the rows) dropped.
fn rewrite_column_charsets(sql: &str) -> std::borrow::Cow<'_, str> {
    const TEXT_TYPES: &[&str] = &[
        "char",
        "character",
        "varchar",
        "nchar",
        "nvarchar",
        "text",
        "tinytext",
        "mediumtext",
        "longtext",
        "varying",
        "binary",
        "ascii",
        "unicode",
    ];
    let tokens = lex(sql);
    let first = tokens.first();
    if !(is_word(sql, first, "create") || is_word(sql, first, "alter")) {
        return sql.into();
    }
    let mut edits: Vec<(usize, usize, &str)> = Vec::new();
    let mut i = 0;
    while let Some(t) = tokens.get(i) {
        let word = |j: usize, w: &str| is_word(sql, tokens.get(j), w);
        // An attribute follows a type: `VARCHAR(10) CHARSET x`, `TEXT BINARY`.
        let after_type = i
            .checked_sub(1)
            .and_then(|j| tokens.get(j))
            .is_some_and(|p| {
                p.kind == Lexeme::Punct(b')')
                    || (p.kind == Lexeme::Word
                        && TEXT_TYPES
                            .iter()
                            .any(|w| sql[p.start..p.end].eq_ignore_ascii_case(w)))
            });
        let before_paren = is_punct(tokens.get(i + 1), b'(');
        if t.kind != Lexeme::Word {
        } else if after_type && word(i, "charset") {
            edits.push((t.start, t.end, "CHARACTER SET"));
        } else if after_type && !before_paren && word(i, "ascii") {
            edits.push((t.start, t.end, "CHARACTER SET latin1"));
        } else if after_type && !before_paren && word(i, "unicode") {
            edits.push((t.start, t.end, "CHARACTER SET ucs2"));
        } else if after_type && !before_paren && word(i, "binary") {
            edits.push((t.start, t.end, ""));
        } else if word(i, "national") {
            let (to, last) = if word(i + 1, "varchar") {
                ("NVARCHAR", i + 1)
            } else if word(i + 1, "character") && word(i + 2, "varying") {
                ("NVARCHAR", i + 2)
            } else if word(i + 1, "char") || word(i + 1, "character") {
                ("NCHAR", i + 1)
            } else {
                ("", i)
            };
            if let (false, Some(end)) = (to.is_empty(), tokens.get(last)) {
                edits.push((t.start, end.end, to));
                i = last;
            }
        }
        i += 1;
    }
    if edits.is_empty() {
        return sql.into();
    }
    let mut out = String::with_capacity(sql.len() + 16);
    let mut at = 0;
    for (start, end, to) in edits {
        out.push_str(&sql[at..start]);
        out.push_str(to);
        at = end;
    }
    out.push_str(&sql[at..]);
    out.into()
}

/// The table-level character set clauses of an `ALTER TABLE`.
#[derive(Debug, Default)]
struct TableCharset {
    /// `[DEFAULT] CHARACTER SET x` / `[DEFAULT] COLLATE y`: the table's new default.
    default: Option<String>,
    /// `CONVERT TO CHARACTER SET x [COLLATE y]`: the new default, also of every text column.
    convert: Option<(String, Option<String>)>,
}

/// One `[DEFAULT] {CHARACTER SET | CHARSET | COLLATE} [=] name` at `c[j]`: whether it is a
/// character set (else a collation), its name, and where the clause goes on.
fn charset_option(sql: &str, c: &[Token], j: usize) -> Option<(bool, String, usize)> {
    let mut k = j + usize::from(is_word(sql, c.get(j), "default"));
    let is_charset = if is_word(sql, c.get(k), "character") && is_word(sql, c.get(k + 1), "set") {
        k += 2;
        true
    } else if is_word(sql, c.get(k), "charset") {
        k += 1;
        true
    } else if is_word(sql, c.get(k), "collate") {
        k += 1;
        false
    } else {
        return None;
    };
    k += usize::from(is_punct(c.get(k), b'='));
    let value = c.get(k).filter(|t| !matches!(t.kind, Lexeme::Punct(_)))?;
    Some((
        is_charset,
        token_text(sql, value).to_ascii_lowercase(),
        k + 1,
    ))
}

/// One table option at `c[j]` that changes neither the columns nor the rows (`ENGINE=x`,
/// `ROW_FORMAT=x`, `COMMENT 'x'`, ...): where the clause goes on after it.
fn inert_table_option(sql: &str, c: &[Token], j: usize) -> Option<usize> {
    const INERT: &[&str] = &[
        "engine",
        "row_format",
        "comment",
        "key_block_size",
        "stats_persistent",
        "stats_auto_recalc",
        "stats_sample_pages",
        "pack_keys",
        "checksum",
        "page_checksum",
        "delay_key_write",
        "avg_row_length",
        "max_rows",
        "min_rows",
        "transactional",
        "page_compressed",
        "page_compression_level",
        "encrypted",
        "encryption_key_id",
    ];
    let t = c.get(j)?;
    let inert = t.kind == Lexeme::Word
        && INERT
            .iter()
            .any(|w| sql[t.start..t.end].eq_ignore_ascii_case(w));
    if !inert {
        return None;
    }
    let k = j + 1 + usize::from(is_punct(c.get(j + 1), b'='));
    c.get(k).filter(|t| !matches!(t.kind, Lexeme::Punct(_)))?;
    Some(k + 1)
}

/// Takes the table-level character set clauses out of an `ALTER TABLE`: the table, what
/// the clauses set, and the statement without them (empty when nothing else is left).
/// `None` when the statement has none.
fn split_table_charset(sql: &str, default_db: &str) -> Option<(TableKey, TableCharset, String)> {
    let tokens = lex(sql);
    let mut i = 0;
    if !is_word(sql, tokens.first(), "alter") {
        return None;
    }
    i += 1;
    while is_word(sql, tokens.get(i), "online") || is_word(sql, tokens.get(i), "ignore") {
        i += 1;
    }
    if !is_word(sql, tokens.get(i), "table") {
        return None;
    }
    i += 1;
    // MariaDB: `ALTER TABLE IF EXISTS t`.
    if is_word(sql, tokens.get(i), "if") && is_word(sql, tokens.get(i + 1), "exists") {
        i += 2;
    }
    let name = |t: Option<&Token>| {
        t.filter(|t| matches!(t.kind, Lexeme::Word | Lexeme::Ident))
            .map(|t| token_text(sql, t))
    };
    let mut key = (default_db.to_string(), name(tokens.get(i))?);
    if is_punct(tokens.get(i + 1), b'.') {
        key = (key.1, name(tokens.get(i + 2))?);
        i += 2;
    }
    let head_end = tokens.get(i)?.end;
    let body = tokens.get(i + 1..)?;
    // Top-level clauses, split at commas outside parentheses.
    let mut clauses: Vec<&[Token]> = Vec::new();
    let (mut depth, mut from) = (0usize, 0);
    for (j, t) in body.iter().enumerate() {
        match t.kind {
            Lexeme::Punct(b'(') => depth += 1,
            Lexeme::Punct(b')') => depth = depth.saturating_sub(1),
            Lexeme::Punct(b',' | b';') if depth == 0 => {
                clauses.push(&body[from..j]);
                from = j + 1;
            }
            _ => {}
        }
    }
    clauses.push(&body[from..]);
    let mut change = TableCharset::default();
    let mut found = false;
    let mut kept: Vec<&str> = Vec::new();
    for c in clauses {
        let mut j = 0;
        if is_word(sql, c.first(), "convert") && is_word(sql, c.get(1), "to") {
            if let Some((true, charset, next)) = charset_option(sql, c, 2) {
                j = next;
                let mut collation = None;
                if let Some((false, name, next)) = charset_option(sql, c, j) {
                    collation = Some(name);
                    j = next;
                }
                change.convert = Some((charset, collation));
            }
        } else {
            // MySQL separates table options by spaces or commas:
            // `ENGINE=InnoDB DEFAULT CHARSET=latin1` is one clause.
            let mut default = change.default.clone();
            loop {
                if let Some(next) = inert_table_option(sql, c, j) {
                    j = next;
                    continue;
                }
                let Some((is_charset, name, next)) = charset_option(sql, c, j) else {
                    break;
                };
                j = next;
                if name == "default" {
                    continue;
                }
                if is_charset {
                    default = Some(name);
                } else if let Some(charset) = charset_of_collation(&name) {
                    default = Some(charset.to_string());
                }
            }
            if j < c.len() {
                // Something else follows: not a clause of table options only.
                j = 0;
            } else {
                change.default = default;
            }
        }
        found |= j > 0;
        if let (Some(first), Some(last)) = (c.get(j), c.last()) {
            kept.push(&sql[first.start..last.end]);
        }
    }
    if !found {
        return None;
    }
    let rest = if kept.is_empty() {
        String::new()
    } else {
        format!("{} {}", &sql[..head_end], kept.join(", "))
    };
    Some((key, change, rest))
}

/// A table after its table-level character set clauses, with the type changes they make.
fn set_table_charset(
    before: &TableMeta,
    change: &TableCharset,
    config: &MySqlSourceConfig,
) -> (TableMeta, Vec<SchemaChangeEvent>) {
    let mut meta = before.clone();
    let mut events = Vec::new();
    if let Some(charset) = &change.default {
        meta.charset = Some(charset.clone());
    }
    if let Some((charset, collation)) = &change.convert {
        meta.charset = Some(charset.clone());
        let (tiny, comments) = (config.tinyint1_as_boolean, config.include_comments);
        let mut types = Vec::new();
        for c in &mut meta.columns {
            if !is_text(&c.mysql_type()) {
                continue;
            }
            let was = to_column(c, tiny, comments).data_type;
            c.charset = Some(charset.clone());
            c.collation.clone_from(collation);
            if charset == "binary" {
                into_binary(c);
            }
            let now = to_column(c, tiny, comments).data_type;
            if now != was {
                types.push((c.name.clone(), now));
            }
        }
        if !types.is_empty() {
            events.push(SchemaChangeEvent::AlterColumnType {
                table_id: TableId::new(&meta.db, &meta.table),
                types,
                comments: BTreeMap::new(),
            });
        }
    }
    (meta, events)
}

/// The table a `CREATE TABLE` statement creates (not a temporary one).
fn created_table(sql: &str, default_db: &str) -> Option<TableKey> {
    let tokens = lex(sql);
    let word = |i: usize, w: &str| is_word(sql, tokens.get(i), w);
    if !word(0, "create") {
        return None;
    }
    let mut i = 1;
    if word(i, "or") && word(i + 1, "replace") {
        i += 2;
    }
    if !word(i, "table") {
        return None;
    }
    i += 1;
    if word(i, "if") && word(i + 1, "not") && word(i + 2, "exists") {
        i += 3;
    }
    let name = |t: Option<&Token>| {
        t.filter(|t| matches!(t.kind, Lexeme::Word | Lexeme::Ident))
            .map(|t| token_text(sql, t))
    };
    let first = name(tokens.get(i))?;
    if is_punct(tokens.get(i + 1), b'.') {
        return Some((first, name(tokens.get(i + 2))?));
    }
    Some((default_db.to_string(), first))
}

/// What a database statement does to the database's default character set.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum DatabaseCharset {
    /// The database now has this default (`None`: the server's).
    Set(String, Option<String>),
    /// The database is gone.
    Dropped(String),
}

/// What a statement does to a database's default character set, if anything.
pub(crate) fn database_charset(sql: &str, default_db: &str) -> Option<DatabaseCharset> {
    let tokens = lex(sql);
    let word = |i: usize, w: &str| is_word(sql, tokens.get(i), w);
    let verb = ["create", "alter", "drop"]
        .into_iter()
        .find(|v| word(0, v))?;
    if !(word(1, "database") || word(1, "schema")) {
        return None;
    }
    let mut i = 2;
    if word(i, "if") && word(i + 1, "not") && word(i + 2, "exists") {
        i += 3;
    } else if word(i, "if") && word(i + 1, "exists") {
        i += 2;
    }
    // `ALTER DATABASE CHARACTER SET x` names no database: the current one.
    let named = tokens
        .get(i)
        .filter(|t| matches!(t.kind, Lexeme::Word | Lexeme::Ident))
        .filter(|t| {
            t.kind == Lexeme::Ident
                || !["default", "character", "charset", "collate"]
                    .iter()
                    .any(|w| sql[t.start..t.end].eq_ignore_ascii_case(w))
        });
    let db = match named {
        Some(t) => {
            i += 1;
            token_text(sql, t)
        }
        None if verb == "alter" => default_db.to_string(),
        None => return None,
    };
    if verb == "drop" {
        return Some(DatabaseCharset::Dropped(db));
    }
    let mut charset = None;
    let mut collation = None;
    while i < tokens.len() {
        if let Some((is_charset, name, next)) = charset_option(sql, &tokens, i) {
            if is_charset {
                charset = Some(name);
            } else {
                collation = Some(name);
            }
            i = next;
        } else {
            i += 1;
        }
    }
    let charset = charset.filter(|c| c != "default").or_else(|| {
        collation
            .as_deref()
            .and_then(charset_of_collation)
            .map(str::to_string)
    });
    match (verb, charset) {
        ("alter", None) => None,
        (_, charset) => Some(DatabaseCharset::Set(db, charset)),
    }
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
    rename_table_where(old, new, tables, config, &|_| true)
}

/// A rename as [`rename_table`] does it, with `may_capture` deciding whether a new name
/// that matches `tables` is captured (the online schema change tools' own tables are not).
pub(crate) fn rename_table_where(
    old: TableKey,
    new: TableKey,
    tables: &HashMap<TableKey, TableMeta>,
    config: &MySqlSourceConfig,
    may_capture: &dyn Fn(&TableKey) -> bool,
) -> Vec<TableChange> {
    let captured = config.filter.matches(&new.0, &new.1) && may_capture(&new);
    let mut out = Vec::new();
    if let Some(meta) = tables.get(&old) {
        out.push(TableChange::Remove {
            events: vec![SchemaChangeEvent::DropTable {
                table_id: TableId::new(&old.0, &old.1),
            }],
            key: old,
        });
        if captured {
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
    } else if captured {
        out.push(TableChange::Created(new));
    }
    out
}

/// A statement sqlparser could not read: fine if it cannot touch a captured table.
fn unparsed(
    sql: &str,
    default_db: &str,
    tables: &HashMap<TableKey, TableMeta>,
    config: &MySqlSourceConfig,
    parse_error: &str,
) -> Result<Vec<TableChange>, String> {
    let lower = sql.to_lowercase();
    let first = lower.split_whitespace().next().unwrap_or("");
    let could_change_tables = matches!(first, "alter" | "create" | "drop" | "rename" | "truncate");
    if !could_change_tables || names_other_object(&lower) {
        return Ok(Vec::new());
    }
    // A new table whose statement sqlparser cannot read (MySQL syntax it lacks) is still
    // captured: its definition comes from the server, as for `CREATE TABLE ... LIKE`.
    if let Some(key) = created_table(sql, default_db) {
        if !tables.contains_key(&key) {
            return Ok(if config.filter.matches(&key.0, &key.1) {
                vec![TableChange::Created(key)]
            } else {
                Vec::new()
            });
        }
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

/// Whether a CREATE / DROP statement is about an object that has no columns of a table:
/// a trigger (pt-online-schema-change's bodies are MySQL procedural code sqlparser cannot
/// read), a routine, an event, a view, an index, a user or role. Decided by the object
/// keyword among the statement's first words (`CREATE DEFINER=... TRIGGER`).
fn names_other_object(lower: &str) -> bool {
    const NEUTRAL: [&str; 8] = [
        "trigger",
        "procedure",
        "function",
        "event",
        "view",
        "index",
        "user",
        "role",
    ];
    lower
        .split_whitespace()
        .take(8)
        .find(|w| NEUTRAL.contains(w) || matches!(*w, "table" | "database" | "schema"))
        .is_some_and(|w| NEUTRAL.contains(&w))
}

/// A column as a definition gives it. A text column without a character set (or a
/// collation naming one) takes `table_charset`; `None` there leaves it to the database's
/// default (`inherit_charset`).
fn column_from_def(def: &ColumnDef, table_charset: Option<&str>) -> MySqlColumn {
    let mut column = MySqlColumn {
        name: ident(&def.name),
        type_text: def.data_type.to_string(),
        nullable: true,
        charset: None,
        collation: None,
        default: None,
        comment: None,
    };
    let mut charset = None;
    for option in &def.options {
        match &option.option {
            ColumnOption::NotNull | ColumnOption::PrimaryKey(_) => column.nullable = false,
            ColumnOption::Null => column.nullable = true,
            ColumnOption::Default(expr) => column.default = Some(expr.to_string()),
            ColumnOption::CharacterSet(name) => charset = Some(object_text(name)),
            ColumnOption::Collation(name) => column.collation = Some(object_text(name)),
            ColumnOption::Comment(c) => column.comment = Some(c.clone()),
            _ => {}
        }
    }
    if !is_text(&column.mysql_type()) {
        column.collation = None;
        return column;
    }
    let lower = column.type_text.to_ascii_lowercase();
    let national = lower.starts_with("nchar") || lower.starts_with("nvarchar");
    let charset = charset
        .or_else(|| {
            column
                .collation
                .as_deref()
                .and_then(charset_of_collation)
                .map(str::to_string)
        })
        .or_else(|| national.then(|| "utf8mb3".to_string()))
        .or_else(|| table_charset.map(str::to_string));
    column.charset = charset;
    if column.charset.as_deref() == Some("binary") {
        into_binary(&mut column);
    }
    column
}

/// Text types carry a character set; the others do not (as information_schema shows).
fn is_text(t: &MySqlType) -> bool {
    matches!(
        t,
        MySqlType::Char(_)
            | MySqlType::VarChar(_)
            | MySqlType::Text
            | MySqlType::Enum(_)
            | MySqlType::Set(_)
    )
}

/// A text column of the `binary` character set is a binary column: CHAR(n) CHARACTER SET
/// binary is BINARY(n), VARCHAR is VARBINARY, TEXT is BLOB (ENUM and SET stay).
fn into_binary(column: &mut MySqlColumn) {
    let lower = column.type_text.to_ascii_lowercase();
    let name = lower
        .split(|c: char| c == '(' || c.is_whitespace())
        .next()
        .unwrap_or_default();
    let binary = match column.mysql_type() {
        MySqlType::Char(n) => format!("binary({n})"),
        MySqlType::VarChar(n) => format!("varbinary({n})"),
        MySqlType::Text => match name {
            "tinytext" => "tinyblob".to_string(),
            "mediumtext" | "long" => "mediumblob".to_string(),
            "longtext" => "longblob".to_string(),
            _ => "blob".to_string(),
        },
        _ => return,
    };
    column.type_text = binary;
    column.charset = None;
    column.collation = None;
}

/// A name as written, without quotes, lower case (character set and collation names).
fn object_text(name: &ObjectName) -> String {
    name.0
        .iter()
        .map(|p| {
            p.as_ident()
                .map_or_else(|| p.to_string(), |i| i.value.clone())
        })
        .collect::<Vec<_>>()
        .join(".")
        .trim_matches(|c| c == '\'' || c == '"' || c == '`')
        .to_ascii_lowercase()
}

/// The default character set a `CREATE TABLE`'s options give (`[DEFAULT] CHARSET=x`,
/// `CHARACTER SET x`, or a collation naming one).
fn create_table_charset(options: &CreateTableOptions) -> Option<String> {
    let options = match options {
        CreateTableOptions::None => return None,
        CreateTableOptions::With(o)
        | CreateTableOptions::Options(o)
        | CreateTableOptions::Plain(o)
        | CreateTableOptions::TableProperties(o) => o,
    };
    let mut charset = None;
    let mut collation = None;
    for option in options {
        let SqlOption::KeyValue { key, value } = option else {
            continue;
        };
        let value = value
            .to_string()
            .trim_matches(|c| c == '\'' || c == '"' || c == '`')
            .to_ascii_lowercase();
        if value == "default" {
            continue;
        }
        match key.to_string().to_ascii_uppercase().as_str() {
            "CHARSET" | "DEFAULT CHARSET" | "CHARACTER SET" | "DEFAULT CHARACTER SET" => {
                charset = Some(value);
            }
            "COLLATE" | "DEFAULT COLLATE" => collation = Some(value),
            _ => {}
        }
    }
    charset.or_else(|| {
        collation
            .as_deref()
            .and_then(charset_of_collation)
            .map(str::to_string)
    })
}

/// Gives a table its database's default character set where its definition left it open
/// (a `CREATE TABLE` without one): the table's default and its text columns without a set.
pub(crate) fn inherit_charset(meta: &mut TableMeta, database_charset: &str) {
    if meta.charset.is_none() {
        meta.charset = Some(database_charset.to_string());
    }
    for c in &mut meta.columns {
        if c.charset.is_none() && is_text(&c.mysql_type()) {
            c.charset = Some(database_charset.to_string());
            if database_charset == "binary" {
                into_binary(c);
            }
        }
    }
}

/// Whether [`inherit_charset`] has anything to fill in.
pub(crate) fn needs_charset(meta: &TableMeta) -> bool {
    meta.charset.is_none()
        || meta
            .columns
            .iter()
            .any(|c| c.charset.is_none() && is_text(&c.mysql_type()))
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
    // Columns added or redefined without a character set take the table's default. State
    // written before the default was tracked has none: the first text column's set is the
    // best guess there, else the reader fills in the database's default.
    let table_charset = meta.charset.clone().or_else(|| {
        meta.columns
            .iter()
            .find(|c| is_text(&c.mysql_type()))
            .and_then(|c| c.charset.clone())
    });
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
                    (&name, &name),
                    data_type,
                    options,
                    column_position.as_ref(),
                    table_charset.as_deref(),
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
                    (&ident(old_name), &ident(new_name)),
                    data_type,
                    options,
                    column_position.as_ref(),
                    table_charset.as_deref(),
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
    (old, new): (&str, &str),
    data_type: &sqlparser::ast::DataType,
    options: &[ColumnOption],
    position: Option<&MySQLColumnPosition>,
    table_charset: Option<&str>,
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
    // A redefinition is whole: without a character set the column takes the table's
    // default, not the one it had (as the server does).
    let mut column = column_from_def(&def, table_charset);
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
mod trigger_tests {
    use super::names_other_object;

    #[test]
    fn triggers_routines_and_views_name_no_table_columns() {
        for sql in [
            "create definer=`root`@`%` trigger `pt_osc_d_t_ins` after insert on `d`.`t` for each row begin declare continue handler for 1146 begin end; replace into `d`.`_t_new` (`id`) values (new.`id`); end",
            "drop trigger if exists `d`.`pt_osc_d_t_del`",
            "create or replace view v as select * from t",
            "create procedure p() begin alter table t add column x int; end",
            "create unique index ix on t (a)",
        ] {
            assert!(names_other_object(sql), "{sql}");
        }
        for sql in [
            "create table t (id int)",
            "drop table t",
            "create temporary table t (id int)",
            "alter table t add column trigger_count int",
        ] {
            assert!(!names_other_object(sql), "{sql}");
        }
    }
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

#[cfg(test)]
mod charset_tests {
    use cdc_api::{FactoryContext, Options};

    use super::*;

    /// A source capturing every table of `d`.
    fn config() -> MySqlSourceConfig {
        let mut options = Options::new("source");
        for (k, v) in [
            ("hostname", "h"),
            ("username", "u"),
            ("password", "p"),
            ("tables", "d.\\.*"),
        ] {
            options.insert(k, v);
        }
        let ctx = FactoryContext {
            pipeline_name: "t".into(),
            options,
            pipeline_options: Options::new("pipeline"),
        };
        match MySqlSourceConfig::from_context(&ctx) {
            Ok(c) => c,
            Err(e) => panic!("{e}"),
        }
    }

    fn column(name: &str, type_text: &str, charset: Option<&str>) -> MySqlColumn {
        MySqlColumn {
            name: name.into(),
            type_text: type_text.into(),
            nullable: true,
            charset: charset.map(str::to_string),
            collation: None,
            default: None,
            comment: None,
        }
    }

    /// `d.t`: a utf8mb4 table whose first text column is gbk.
    fn tables() -> HashMap<TableKey, TableMeta> {
        let meta = TableMeta {
            db: "d".into(),
            table: "t".into(),
            columns: vec![
                column("id", "int(11)", None),
                column("g", "varchar(50)", Some("gbk")),
                column("u", "text", Some("utf8mb4")),
                column("e", "enum('a','b')", Some("utf8mb4")),
            ],
            primary_key: vec!["id".into()],
            comment: None,
            charset: Some("utf8mb4".into()),
        };
        HashMap::from([(("d".to_string(), "t".to_string()), meta)])
    }

    /// The definition `sql` leaves for `d.<table>`, from `tables`.
    fn after(sql: &str, tables: &HashMap<TableKey, TableMeta>, table: &str) -> TableMeta {
        let config = config();
        let changes = match apply(sql, "d", tables, &config) {
            Ok(c) => c,
            Err(e) => panic!("{sql}: {e}"),
        };
        changes
            .into_iter()
            .find_map(|c| match c {
                TableChange::Upsert { meta, .. } if meta.table == table => Some(meta),
                _ => None,
            })
            .unwrap_or_else(|| panic!("{sql}: no new definition of {table}"))
    }

    fn charsets(meta: &TableMeta) -> Vec<(String, Option<String>)> {
        meta.columns
            .iter()
            .map(|c| (c.type_text.to_lowercase(), c.charset.clone()))
            .collect()
    }

    fn cs(pairs: &[(&str, Option<&str>)]) -> Vec<(String, Option<String>)> {
        pairs
            .iter()
            .map(|(t, c)| ((*t).to_string(), c.map(str::to_string)))
            .collect()
    }

    /// The bug behind issue #21: a column added without a character set took the first
    /// text column's (gbk here), not the table's default.
    #[test]
    fn added_columns_take_the_tables_default() {
        let t = tables();
        let meta = after("ALTER TABLE d.t ADD COLUMN c VARCHAR(20)", &t, "t");
        assert_eq!(meta.columns[4].charset.as_deref(), Some("utf8mb4"));
        let meta = after(
            "ALTER TABLE t ADD COLUMN c VARCHAR(20) CHARACTER SET gbk",
            &t,
            "t",
        );
        assert_eq!(meta.columns[4].charset.as_deref(), Some("gbk"));
        let meta = after(
            "ALTER TABLE t ADD c VARCHAR(20) CHARSET big5, ADD n INT",
            &t,
            "t",
        );
        assert_eq!(meta.columns[4].charset.as_deref(), Some("big5"));
        assert_eq!(meta.columns[5].charset, None, "not a text column");
        let meta = after("ALTER TABLE t ADD c TEXT COLLATE sjis_bin", &t, "t");
        assert_eq!(
            (
                meta.columns[4].charset.as_deref(),
                meta.columns[4].collation.as_deref()
            ),
            (Some("sjis"), Some("sjis_bin"))
        );
    }

    /// MODIFY and CHANGE redefine a column whole: without a set it takes the table's.
    #[test]
    fn redefined_columns_take_the_tables_default() {
        let t = tables();
        let meta = after("ALTER TABLE t MODIFY g VARCHAR(60)", &t, "t");
        assert_eq!(meta.columns[1].charset.as_deref(), Some("utf8mb4"));
        let meta = after(
            "ALTER TABLE t CHANGE g g2 VARCHAR(60) CHARACTER SET ujis",
            &t,
            "t",
        );
        assert_eq!(meta.columns[1].charset.as_deref(), Some("ujis"));
        let meta = after("ALTER TABLE t MODIFY g INT", &t, "t");
        assert_eq!(meta.columns[1].charset, None);
    }

    #[test]
    fn table_defaults_change_with_alter_table() {
        let t = tables();
        for sql in [
            "ALTER TABLE t DEFAULT CHARSET=latin1",
            "ALTER TABLE t CHARACTER SET latin1",
            "ALTER TABLE d.t DEFAULT CHARACTER SET = latin1 COLLATE latin1_bin",
            "ALTER TABLE `d`.`t` COLLATE=latin1_german2_ci",
            "ALTER TABLE t ENGINE=InnoDB DEFAULT CHARSET=latin1",
            "ALTER ONLINE TABLE IF EXISTS d.t CHARSET latin1;",
        ] {
            let meta = after(sql, &t, "t");
            assert_eq!(meta.charset.as_deref(), Some("latin1"), "{sql}");
            // Existing columns keep theirs.
            assert_eq!(
                charsets(&meta),
                charsets(&t[&("d".into(), "t".into())]),
                "{sql}"
            );
        }
        // The new default applies to the columns the same statement adds.
        let meta = after(
            "ALTER TABLE t ADD COLUMN x TEXT, DEFAULT CHARSET latin1, ADD y VARCHAR(3)",
            &t,
            "t",
        );
        assert_eq!(meta.columns[4].charset.as_deref(), Some("latin1"));
        assert_eq!(meta.columns[5].charset.as_deref(), Some("latin1"));
        // Only table options: no error, nothing changes.
        let meta = after("ALTER TABLE t ENGINE=InnoDB ROW_FORMAT=DYNAMIC", &t, "t");
        assert_eq!(meta, t[&("d".into(), "t".into())]);
    }

    #[test]
    fn convert_to_changes_every_text_column() {
        let t = tables();
        let meta = after(
            "ALTER TABLE t CONVERT TO CHARACTER SET cp1251 COLLATE cp1251_bin",
            &t,
            "t",
        );
        assert_eq!(meta.charset.as_deref(), Some("cp1251"));
        assert_eq!(
            charsets(&meta),
            cs(&[
                ("int(11)", None),
                ("varchar(50)", Some("cp1251")),
                ("text", Some("cp1251")),
                ("enum('a','b')", Some("cp1251")),
            ])
        );
        assert_eq!(meta.columns[1].collation.as_deref(), Some("cp1251_bin"));
        let meta = after(
            "ALTER TABLE t CONVERT TO CHARSET latin1, ADD z CHAR(2)",
            &t,
            "t",
        );
        assert_eq!(meta.columns[4].charset.as_deref(), Some("latin1"));
        // To binary: the text columns become binary ones.
        let config = config();
        let changes = apply(
            "ALTER TABLE t CONVERT TO CHARACTER SET binary",
            "d",
            &t,
            &config,
        );
        let Ok([TableChange::Upsert { meta, events, .. }]) = changes.as_deref() else {
            panic!("{changes:?}");
        };
        assert_eq!(
            charsets(meta),
            cs(&[
                ("int(11)", None),
                ("varbinary(50)", None),
                ("blob", None),
                ("enum('a','b')", Some("binary")),
            ])
        );
        assert!(
            matches!(&events[..], [SchemaChangeEvent::AlterColumnType { types, .. }] if types.len() == 2)
        );
    }

    #[test]
    fn created_tables_take_charsets_from_the_statement() {
        let t = tables();
        let meta = after(
            "CREATE TABLE d.l (id INT PRIMARY KEY, l VARCHAR(50) CHARACTER SET latin1, \
             g VARCHAR(50) CHARACTER SET gbk, s TEXT, c CHAR(10)) ENGINE=InnoDB DEFAULT CHARSET=latin1",
            &t,
            "l",
        );
        assert_eq!(meta.charset.as_deref(), Some("latin1"));
        assert_eq!(
            charsets(&meta),
            cs(&[
                ("int", None),
                ("varchar(50)", Some("latin1")),
                ("varchar(50)", Some("gbk")),
                ("text", Some("latin1")),
                ("char(10)", Some("latin1")),
            ])
        );
        let meta = after(
            "CREATE TABLE n (a VARCHAR(3) CHARSET big5, b TEXT COLLATE ujis_bin, \
             c NATIONAL VARCHAR(3), d CHAR(2) ASCII, e VARCHAR(4) CHARACTER SET binary, \
             f VARCHAR(3) BINARY, g CHAR(2) UNICODE, h VARCHAR(9) DEFAULT 'CHARSET x') \
             COLLATE=gbk_chinese_ci COMMENT='(x) CHARSET=latin1'",
            &t,
            "n",
        );
        assert_eq!(meta.charset.as_deref(), Some("gbk"));
        assert_eq!(
            charsets(&meta),
            cs(&[
                ("varchar(3)", Some("big5")),
                ("text", Some("ujis")),
                ("nvarchar(3)", Some("utf8mb3")),
                ("char(2)", Some("latin1")),
                ("varbinary(4)", None),
                ("varchar(3)", Some("gbk")),
                ("char(2)", Some("ucs2")),
                ("varchar(9)", Some("gbk")),
            ])
        );
        assert_eq!(meta.columns[7].default.as_deref(), Some("'CHARSET x'"));
    }

    /// Without a set in the statement, the table takes its database's default, which only
    /// the reader knows.
    #[test]
    fn created_tables_without_a_charset_inherit_the_databases() {
        let t = tables();
        let mut meta = after("CREATE TABLE d.p (id INT, v VARCHAR(5), b BLOB)", &t, "p");
        assert!(needs_charset(&meta));
        inherit_charset(&mut meta, "latin1");
        assert!(!needs_charset(&meta));
        assert_eq!(
            charsets(&meta),
            cs(&[
                ("int", None),
                ("varchar(5)", Some("latin1")),
                ("blob", None)
            ])
        );
    }

    /// A new table's statement sqlparser cannot read is still captured, from the server.
    #[test]
    fn unreadable_creates_of_captured_tables_fall_back_to_the_server() {
        let config = config();
        let changes = apply(
            "CREATE TABLE d.q (id INT) WITH SYSTEM VERSIONING PARTITION BY SYSTEM_TIME",
            "d",
            &tables(),
            &config,
        );
        assert!(
            matches!(changes.as_deref(), Ok([TableChange::Created(k)]) if k.1 == "q"),
            "{changes:?}"
        );
    }

    #[test]
    fn database_statements_set_their_default() {
        let set = |db: &str, cs: Option<&str>| {
            Some(DatabaseCharset::Set(db.to_string(), cs.map(str::to_string)))
        };
        for (sql, want) in [
            (
                "CREATE DATABASE x CHARACTER SET latin1",
                set("x", Some("latin1")),
            ),
            (
                "create schema if not exists `y` default collate gbk_bin",
                set("y", Some("gbk")),
            ),
            ("CREATE DATABASE z", set("z", None)),
            (
                "ALTER DATABASE CHARACTER SET = cp1251",
                set("d", Some("cp1251")),
            ),
            (
                "ALTER SCHEMA w DEFAULT CHARSET big5",
                set("w", Some("big5")),
            ),
            ("ALTER DATABASE w UPGRADE DATA DIRECTORY NAME", None),
            (
                "DROP DATABASE IF EXISTS x",
                Some(DatabaseCharset::Dropped("x".into())),
            ),
            ("CREATE TABLE x (a INT) CHARSET latin1", None),
        ] {
            assert_eq!(database_charset(sql, "d"), want, "{sql}");
        }
    }

    #[test]
    fn strings_and_comments_are_not_rewritten() {
        for sql in [
            "ALTER TABLE t ADD c VARCHAR(10) DEFAULT 'x) CHARSET y'",
            "ALTER TABLE t ADD c INT COMMENT 'BINARY ASCII'",
            "ALTER TABLE t ADD c INT -- ) CHARSET x\n",
            "ALTER TABLE t ADD `charset` VARCHAR(3)",
        ] {
            assert_eq!(rewrite_column_charsets(sql), sql);
            assert!(split_table_charset(sql, "d").is_none(), "{sql}");
        }
        // Broken input: no panic.
        for sql in [
            "ALTER TABLE t ADD c VARCHAR(3) CHARSET 'gb",
            "ALTER TABLE `t",
            "ALTER TABLE é ",
            "ALTER TABLE t COLLATE",
        ] {
            let _ = rewrite_column_charsets(sql);
            let _ = split_table_charset(sql, "d");
            let _ = created_table(sql, "d");
            let _ = database_charset(sql, "d");
        }
    }
}
