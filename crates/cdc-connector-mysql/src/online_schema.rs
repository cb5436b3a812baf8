//! Online schema change tools (`scan.parse.online.schema.changes.enabled`): a gh-ost or
//! pt-online-schema-change migration of a captured table reaches the target as the ALTER
//! it stands for, with the table's rows neither copied again nor doubled.
//!
//! Both tools build an altered copy of the table (the *shadow*), fill it, keep it in step
//! with the original, then swap the two by renaming. What the binlog shows (gh-ost:
//! `go/logic/applier.go` and `go/base/context.go` of github/gh-ost; pt-osc:
//! `bin/pt-online-schema-change` of percona/percona-toolkit):
//!
//! gh-ost
//! * `drop /* gh-ost */ table if exists db._t_gho`, `… _t_del`, `… _t_ghc` (leftovers)
//! * `create /* gh-ost */ table db._t_ghc (…)`: its changelog (heartbeats, state), and with
//!   checkpoints `_t_ghk` (`CreateChangelogTable`, `CreateCheckpointTable`)
//! * `create /* gh-ost */ table db._t_gho like db.t` (`CreateGhostTable`)
//! * `alter /* gh-ost */ table db._t_gho <the migration>` (`AlterGhost`), possibly
//!   `alter /* gh-ost */ table db._t_gho AUTO_INCREMENT=N` (`AlterGhostAutoIncrement`)
//! * row copy: `insert /* gh-ost */ ignore into db._t_gho (…) (select … from db.t …)`, and
//!   every change gh-ost reads from the binlog of `t` applied to `_t_gho` (replace / delete /
//!   update): row events on `_t_gho`
//! * atomic cut-over (`AtomicCutOverMagicLock`, `AtomicCutoverRename`): a sentry table
//!   `create … table db._t_del (id int auto_increment primary key) … comment='ghost-cut-over-sentry'`,
//!   `lock tables t write, _t_del write`, then `drop … table if exists db._t_del` and
//!   `rename /* gh-ost */ table db.t to db._t_del, db._t_gho to db.t` (one statement)
//! * or the two-step cut-over (`SwapTablesQuickAndBumpy`): `alter table db.t rename _t_del`,
//!   then `alter table db._t_gho rename t`
//! * later `drop table if exists db._t_del`, `… _t_ghc`
//! * names (`getSafeTableName`): `_<t>_gho`, `_<t>_ghc`, `_<t>_ghk`, `_<t>_del`
//!   (`_<t>_<YYYYMMDDhhmmss>_del` with `--timestamp-old-table`, `_<t>_rev_del` when
//!   reverting), `<t>` cut short so that the name fits 64 bytes
//!
//! pt-online-schema-change
//! * `CREATE TABLE db._t_new (…)`: the original's `SHOW CREATE TABLE` under the new name,
//!   not `LIKE` (`create_new_table`; the name gets up to 10 leading `_` until it is free)
//! * `ALTER TABLE db._t_new <the migration>`
//! * `CREATE … TRIGGER pt_osc_<db>_<t>_del|_upd|_ins AFTER DELETE|UPDATE|INSERT ON db.t …`
//!   writing into `_t_new` (`create_triggers`): in row-based logging their writes are row
//!   events on `_t_new` in the same transaction as the change to `t`
//! * row copy in chunks: `INSERT LOW_PRIORITY IGNORE INTO db._t_new (…) SELECT … FROM db.t
//!   FORCE INDEX(…) WHERE … LOCK IN SHARE MODE`
//! * `ANALYZE TABLE db._t_new`, then the swap (`swap_tables`): `RENAME TABLE db.t TO
//!   db._t_old, db._t_new TO db.t` (the old name gets more leading `_` until it is free)
//! * `DROP TABLE IF EXISTS db._t_old`, `DROP TRIGGER IF EXISTS db.pt_osc_…`
//! * `--alter-foreign-keys-method drop_swap` (`drop_swap`): `DROP TABLE IF EXISTS db.t`,
//!   then `RENAME TABLE db._t_new TO db.t`
//!
//! What is correct: every real change of `t` until the cut-over is a row event of `t`
//! itself, so the rows written into the shadow (the copy, the binlog-applied and
//! trigger-applied writes) are copies and never reach the target, and the tools' tables are
//! never captured, also where `tables` matches their names. The shadow's definition is
//! tracked from the original's (a copy of it in both tools) through its ALTERs, whose schema
//! change events are kept, named for `t`. At the cut-over those events are emitted for `t`
//! and `t` takes the shadow's definition: the target sees the ALTER and nothing else (no
//! drop, no create, no copy of rows), and rows after the cut-over decode with the new
//! definition. The shadows travel in the offset, so a restart in the middle of a migration
//! loses nothing. A shadow belongs to a captured table only; those of other tables are
//! ignored like the tables themselves.
//!
//! Flink CDC (`OnlineSchemaChangeUtils`, `BinlogSplitReader`) does the same by name
//! patterns (`^_(.*)_(gho|new)$`, `^_(.*)_(del|old)$`), keeping the shadow's ALTER in memory
//! until the rename; here the shadow's definition is tracked as well, and kept in the offset.

use std::collections::HashMap;

use cdc_api::{SchemaChangeEvent, TableId};
use serde::{Deserialize, Serialize};

use crate::MySqlSourceConfig;
use crate::ddl::{self, Lexeme, TableChange, Token, is_punct, is_word, lex, token_text};
use crate::schema::TableMeta;
use crate::source::TableKey;

/// A shadow table of a migration in progress.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct Shadow {
    pub(crate) db: String,
    /// The shadow's own name (`_t_gho`, `_t_new`).
    pub(crate) table: String,
    /// The captured table it is to replace, in the same database.
    pub(crate) origin: String,
    /// The shadow's definition so far, named as the origin: what the origin becomes at the
    /// cut-over.
    pub(crate) meta: TableMeta,
    /// The schema changes its ALTERs made, named for the origin, in order.
    #[serde(default)]
    pub(crate) events: Vec<SchemaChangeEvent>,
    /// The origin was renamed out of the way (gh-ost's two-step cut-over: `t` to `_t_del`,
    /// then `_t_gho` to `t`): the name it went to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) parked: Option<String>,
}

impl Shadow {
    fn key(&self) -> TableKey {
        (self.db.clone(), self.table.clone())
    }

    fn origin_key(&self) -> TableKey {
        (self.db.clone(), self.origin.clone())
    }
}

/// The shadows of the migrations in progress.
pub(crate) type Shadows = Vec<Shadow>;

/// What a statement begins with, as far as the tools' statements need.
#[derive(Debug, PartialEq, Eq)]
enum Head {
    /// `CREATE TABLE t …` (not temporary), with the table of `LIKE x`.
    Create {
        table: TableKey,
        like: Option<TableKey>,
    },
    /// `ALTER TABLE t …`; `rename_to` for a plain `ALTER TABLE t RENAME [TO] u`; `renames`
    /// when a rename comes with other clauses.
    Alter {
        table: TableKey,
        rename_to: Option<TableKey>,
        renames: bool,
    },
    /// `RENAME TABLE a TO b, c TO d`.
    Rename(Vec<(TableKey, TableKey)>),
    /// `DROP TABLE a, b` (not temporary).
    Drop(Vec<TableKey>),
    /// `CREATE … TRIGGER`, `DROP TRIGGER`: no table changes shape.
    Trigger,
}

/// A table name at `tokens[i]` (`t`, `db.t`, quoted or not) and the index after it.
fn name_at(sql: &str, tokens: &[Token], i: usize, default_db: &str) -> Option<(TableKey, usize)> {
    let part = |t: Option<&Token>| {
        t.filter(|t| matches!(t.kind, Lexeme::Word | Lexeme::Ident))
            .map(|t| token_text(sql, t))
    };
    let first = part(tokens.get(i))?;
    if is_punct(tokens.get(i + 1), b'.') {
        let second = part(tokens.get(i + 2))?;
        return Some(((first, second), i + 3));
    }
    Some(((default_db.to_string(), first), i + 1))
}

/// Reads the start of a statement (comments such as `/* gh-ost */` are skipped).
fn head(sql: &str, default_db: &str) -> Option<Head> {
    let tokens = lex(sql);
    let word = |i: usize, w: &str| is_word(sql, tokens.get(i), w);
    let verb = ["create", "alter", "rename", "drop"]
        .into_iter()
        .find(|v| word(0, v))?;
    // `CREATE [OR REPLACE] [DEFINER = user] [IF NOT EXISTS] TRIGGER`, `DROP TRIGGER`: the
    // word comes before any table keyword.
    if matches!(verb, "create" | "drop") {
        for i in 1..tokens.len().min(12) {
            if word(i, "trigger") {
                return Some(Head::Trigger);
            }
            if word(i, "table") || word(i, "tables") || is_punct(tokens.get(i), b'(') {
                break;
            }
        }
    }
    match verb {
        "create" => {
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
            let (table, mut i) = name_at(sql, &tokens, i, default_db)?;
            // `LIKE x` or `(LIKE x)`.
            if is_punct(tokens.get(i), b'(') && word(i + 1, "like") {
                i += 1;
            }
            let like = if word(i, "like") {
                Some(name_at(sql, &tokens, i + 1, default_db)?.0)
            } else {
                None
            };
            Some(Head::Create { table, like })
        }
        "alter" => {
            let mut i = 1;
            while word(i, "online") || word(i, "ignore") {
                i += 1;
            }
            if !word(i, "table") {
                return None;
            }
            i += 1;
            if word(i, "if") && word(i + 1, "exists") {
                i += 2;
            }
            let (table, i) = name_at(sql, &tokens, i, default_db)?;
            // A rename clause: `RENAME [TO|AS] u`, not `RENAME COLUMN|INDEX|KEY`.
            let renaming = |j: usize| {
                word(j, "rename")
                    && !(word(j + 1, "column") || word(j + 1, "index"))
                    && !word(j + 1, "key")
            };
            let mut rename_to = None;
            if renaming(i) {
                let j = i + 1 + usize::from(word(i + 1, "to") || word(i + 1, "as"));
                if let Some((new, end)) = name_at(sql, &tokens, j, default_db) {
                    let rest = tokens.get(end..).unwrap_or_default();
                    if rest.iter().all(|t| t.kind == Lexeme::Punct(b';')) {
                        rename_to = Some(new);
                    }
                }
            }
            let renames = (i..tokens.len()).any(renaming);
            Some(Head::Alter {
                table,
                rename_to,
                renames,
            })
        }
        "rename" => {
            if !(word(1, "table") || word(1, "tables")) {
                return None;
            }
            let mut i = 2;
            let mut pairs = Vec::new();
            loop {
                // MariaDB: `RENAME TABLE [IF EXISTS] a [WAIT n | NOWAIT] TO b`.
                if word(i, "if") && word(i + 1, "exists") {
                    i += 2;
                }
                let (old, mut j) = name_at(sql, &tokens, i, default_db)?;
                if word(j, "nowait") {
                    j += 1;
                } else if word(j, "wait") {
                    j += 2;
                }
                if !word(j, "to") {
                    return None;
                }
                let (new, next) = name_at(sql, &tokens, j + 1, default_db)?;
                pairs.push((old, new));
                if !is_punct(tokens.get(next), b',') {
                    break;
                }
                i = next + 1;
            }
            Some(Head::Rename(pairs))
        }
        _ => {
            if !(word(1, "table") || word(1, "tables")) {
                return None;
            }
            let mut i = 2;
            if word(i, "if") && word(i + 1, "exists") {
                i += 2;
            }
            let mut names = Vec::new();
            loop {
                let (name, next) = name_at(sql, &tokens, i, default_db)?;
                names.push(name);
                if !is_punct(tokens.get(next), b',') {
                    break;
                }
                i = next + 1;
            }
            Some(Head::Drop(names))
        }
    }
}

/// The names of the table `name` may be the shadow of, most likely first: gh-ost's
/// `_<t>_gho`, pt-osc's `_<t>_new` with one or more leading `_`.
fn shadow_bases(name: &str) -> Vec<&str> {
    let mut out = Vec::new();
    if let Some(base) = name.strip_prefix('_').and_then(|n| n.strip_suffix("_gho")) {
        out.push(base);
    }
    if let Some(rest) = name.strip_suffix("_new") {
        let mut base = rest;
        while let Some(shorter) = base.strip_prefix('_') {
            base = shorter;
            out.push(base);
        }
    }
    out.retain(|b| !b.is_empty());
    out
}

/// The names of the table `name` may be another table of a migration of: gh-ost's
/// `_<t>_ghc`, `_<t>_ghk`, `_<t>_del`, `_<t>_<timestamp>_del`, `_<t>_rev_del`, pt-osc's
/// `_<t>_old` with one or more leading `_`.
fn tool_bases(name: &str) -> Vec<&str> {
    let mut out = Vec::new();
    if let Some(inner) = name.strip_prefix('_') {
        for suffix in ["_ghc", "_ghk", "_rev_del", "_del"] {
            if let Some(base) = inner.strip_suffix(suffix) {
                out.push(base);
                // `_<t>_20240131235959_del`
                if let Some((base, stamp)) = base.rsplit_once('_') {
                    if stamp.len() == 14 && stamp.bytes().all(|b| b.is_ascii_digit()) {
                        out.push(base);
                    }
                }
            }
        }
    }
    if let Some(rest) = name.strip_suffix("_old") {
        let mut base = rest;
        while let Some(shorter) = base.strip_prefix('_') {
            base = shorter;
            out.push(base);
        }
    }
    out.retain(|b| !b.is_empty());
    out
}

/// The captured table one of `bases` names in `db`. gh-ost cuts the base short so that the
/// whole name fits 64 bytes: a name of that length may stand for a longer table.
fn captured_base(
    db: &str,
    name: &str,
    bases: &[&str],
    tables: &HashMap<TableKey, TableMeta>,
) -> Option<String> {
    for base in bases {
        if tables.contains_key(&(db.to_string(), (*base).to_string())) {
            return Some((*base).to_string());
        }
    }
    if name.len() == 64 && name.starts_with('_') {
        let mut longer: Vec<&String> = tables
            .keys()
            .filter(|(d, t)| d == db && bases.iter().any(|b| t.len() > b.len() && t.starts_with(b)))
            .map(|(_, t)| t)
            .collect();
        longer.sort();
        return longer.first().map(|t| (*t).clone());
    }
    None
}

/// Whether `key` is named as one of the tools' tables: never captured itself, whichever
/// table it belongs to (those of tables that are not captured are ignored like them). By
/// name alone, as Flink CDC decides: the table it stands for may not be known here.
fn is_tool_table(key: &TableKey, shadows: &Shadows) -> bool {
    shadows.iter().any(|s| s.key() == *key)
        || !shadow_bases(&key.1).is_empty()
        || !tool_bases(&key.1).is_empty()
}

/// Applies one statement with the tools' statements recognised. `tables` are the captured
/// tables' definitions before it; `shadows` is updated. Returns the changes and whether
/// `shadows` changed (the offset must learn it).
pub(crate) fn apply(
    sql: &str,
    default_db: &str,
    tables: &HashMap<TableKey, TableMeta>,
    shadows: &mut Shadows,
    config: &MySqlSourceConfig,
) -> Result<(Vec<TableChange>, bool), String> {
    let plain = |shadows_changed| {
        ddl::apply(sql, default_db, tables, config).map(|changes| (changes, shadows_changed))
    };
    let Some(head) = head(sql, default_db) else {
        return plain(false);
    };
    match head {
        // pt-osc's triggers copy rows into its shadow; they change no table's shape.
        Head::Trigger => Ok((Vec::new(), false)),
        // A table of that name already captured: as any other statement.
        Head::Create { table, .. } if tables.contains_key(&table) => plain(false),
        Head::Create { table, like } => {
            // gh-ost: `LIKE` the original, which names it even when the shadow's name was
            // cut short; pt-osc: a copy of the original's definition.
            let origin = match &like {
                Some(like) if tables.contains_key(like) && like.0 == table.0 => {
                    (!shadow_bases(&table.1).is_empty()).then(|| like.1.clone())
                }
                Some(_) => None,
                // A copy of the original, unless the statement says otherwise (a table
                // of that name made for something else).
                None => captured_base(&table.0, &table.1, &shadow_bases(&table.1), tables).filter(
                    |origin| {
                        let origin_meta = tables.get(&(table.0.clone(), origin.clone()));
                        match (ddl::created_columns(sql), origin_meta) {
                            (Some(names), Some(meta)) => {
                                names.len() == meta.columns.len()
                                    && names
                                        .iter()
                                        .zip(&meta.columns)
                                        .all(|(n, c)| n.eq_ignore_ascii_case(&c.name))
                            }
                            _ => true,
                        }
                    },
                ),
            };
            if let Some(origin) = origin {
                let origin_key = (table.0.clone(), origin.clone());
                let Some(meta) = tables.get(&origin_key) else {
                    return plain(false);
                };
                shadows.retain(|s| s.key() != table);
                tracing::info!(shadow = %format!("{}.{}", table.0, table.1), table = %format!("{}.{}", table.0, origin), "online schema change: shadow table created; its rows are not captured");
                shadows.push(Shadow {
                    db: table.0,
                    table: table.1,
                    origin,
                    meta: meta.clone(),
                    events: Vec::new(),
                    parked: None,
                });
                return Ok((Vec::new(), true));
            }
            if is_tool_table(&table, shadows) {
                // The changelog, checkpoint or cut-over sentry table of a migration.
                return Ok((Vec::new(), false));
            }
            plain(false)
        }
        Head::Alter {
            table,
            rename_to: Some(new),
            ..
        } => renames(&[(table, new)], sql, default_db, tables, shadows, config),
        Head::Alter { table, renames, .. } => {
            let Some(at) = shadows.iter().position(|s| s.key() == table) else {
                return plain(false);
            };
            if renames {
                return Err(format!(
                    "an ALTER that changes and renames the shadow table {}.{} of an online schema change of {}.{} is not supported",
                    table.0, table.1, table.0, shadows[at].origin
                ));
            }
            alter_shadow(&mut shadows[at], sql, default_db, config)?;
            Ok((Vec::new(), true))
        }
        Head::Rename(pairs) => renames(&pairs, sql, default_db, tables, shadows, config),
        Head::Drop(names) => {
            // A shadow dropped: the migration was abandoned (or a leftover is cleaned up).
            let before = shadows.len();
            shadows.retain(|s| !names.contains(&s.key()));
            plain(shadows.len() != before)
        }
    }
}

/// Applies an ALTER of a shadow table to its tracked definition and keeps its events.
fn alter_shadow(
    shadow: &mut Shadow,
    sql: &str,
    default_db: &str,
    config: &MySqlSourceConfig,
) -> Result<(), String> {
    // Keyed by the shadow's name, defined under the origin's: the events name the origin.
    let one = HashMap::from([(shadow.key(), shadow.meta.clone())]);
    let context = |m: String| {
        format!(
            "{m} (the shadow table {}.{} of an online schema change of {}.{})",
            shadow.db, shadow.table, shadow.db, shadow.origin
        )
    };
    for change in ddl::apply(sql, default_db, &one, config).map_err(context)? {
        match change {
            TableChange::Upsert { meta, events, .. } => {
                shadow.meta = meta;
                shadow.events.extend(events);
            }
            other => {
                return Err(context(format!(
                    "unexpected result of an ALTER of a shadow table: {other:?}"
                )));
            }
        }
    }
    Ok(())
}

/// `RENAME TABLE` pairs (or an `ALTER TABLE … RENAME`): the cut-overs among them, and the
/// other pairs as usual, except that the tools' tables are never captured.
fn renames(
    pairs: &[(TableKey, TableKey)],
    sql: &str,
    default_db: &str,
    tables: &HashMap<TableKey, TableMeta>,
    shadows: &mut Shadows,
    config: &MySqlSourceConfig,
) -> Result<(Vec<TableChange>, bool), String> {
    let mut out = Vec::new();
    let mut changed = false;
    let mut plain = Vec::new();
    for (i, (old, new)) in pairs.iter().enumerate() {
        // The original stepping aside for its shadow: in the same statement (atomic
        // cut-over; the shadow renamed there), or to one of the tools' names (two-step
        // cut-over).
        let waiting = |s: &Shadow| s.origin_key() == *old && s.parked.is_none();
        let aside = if tables.contains_key(old) {
            shadows
                .iter()
                .position(|s| {
                    waiting(s)
                        && pairs[i + 1..]
                            .iter()
                            .any(|(o, n)| *o == s.key() && n == old)
                })
                .or_else(|| {
                    let to_tool = new.0 == old.0
                        && captured_base(&new.0, &new.1, &tool_bases(&new.1), tables).as_ref()
                            == Some(&old.1);
                    shadows.iter().position(|s| to_tool && waiting(s))
                })
        } else {
            None
        };
        if let Some(at) = aside {
            shadows[at].parked = Some(new.1.clone());
            changed = true;
            continue;
        }
        // The shadow taking the original's place.
        if let Some(at) = shadows.iter().position(|s| s.key() == *old) {
            let shadow = shadows.remove(at);
            changed = true;
            if *new == shadow.origin_key() {
                out.push(cut_over(shadow, tables, config));
                continue;
            }
            // Renamed elsewhere: no longer a shadow; the pair is an ordinary rename.
        }
        // The original coming back (the two-step cut-over undone).
        if let Some(s) = shadows.iter_mut().find(|s| {
            s.db == old.0 && s.parked.as_deref() == Some(&old.1) && s.origin_key() == *new
        }) {
            s.parked = None;
            changed = true;
            continue;
        }
        plain.push((old.clone(), new.clone()));
    }
    if plain.len() == pairs.len() && !changed {
        // Nothing of a migration: exactly as without the option, except for the tools'
        // tables (a `RENAME t TO _t_del` without a shadow drops `t`, captures nothing).
        if !pairs.iter().any(|(_, n)| is_tool_table(n, shadows)) {
            return ddl::apply(sql, default_db, tables, config).map(|c| (c, false));
        }
    }
    let may_capture = |k: &TableKey| !is_tool_table(k, shadows);
    for (old, new) in plain {
        out.extend(ddl::rename_table_where(
            old,
            new,
            tables,
            config,
            &may_capture,
        ));
    }
    Ok((out, changed))
}

/// The shadow becomes the original: its events for the original, its definition.
fn cut_over(
    shadow: Shadow,
    tables: &HashMap<TableKey, TableMeta>,
    config: &MySqlSourceConfig,
) -> TableChange {
    let key = shadow.origin_key();
    tracing::info!(table = %format!("{}.{}", key.0, key.1), shadow = %shadow.table, changes = shadow.events.len(), "online schema change: cut-over; the table takes the shadow's definition");
    if tables.contains_key(&key) {
        return TableChange::Upsert {
            meta: shadow.meta,
            events: shadow.events,
            copy_rows: false,
        };
    }
    // The original was dropped first (pt-osc's drop_swap) or is not captured: the target
    // has lost it, so the table arrives as a new one with its rows.
    let table_id = TableId::new(&key.0, &key.1);
    TableChange::Upsert {
        events: vec![SchemaChangeEvent::CreateTable {
            table_id,
            schema: shadow
                .meta
                .to_schema(config.tinyint1_as_boolean, config.include_comments),
        }],
        meta: shadow.meta,
        copy_rows: true,
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use cdc_api::{FactoryContext, Options};

    use super::*;
    use crate::schema::MySqlColumn;

    /// A source capturing every table of `d` but `x`, with the option set as given.
    fn config(online: bool) -> MySqlSourceConfig {
        let mut options = Options::new("source");
        for (k, v) in [
            ("hostname", "h"),
            ("username", "u"),
            ("password", "p"),
            ("tables", "d.\\.*"),
            ("tables.exclude", "d.x"),
            ("scan.binlog.newly-added-table.enabled", "true"),
        ] {
            options.insert(k, v);
        }
        options.insert(
            "scan.parse.online.schema.changes.enabled",
            if online { "true" } else { "false" },
        );
        let ctx = FactoryContext {
            pipeline_name: "t".into(),
            options,
            pipeline_options: Options::new("pipeline"),
        };
        MySqlSourceConfig::from_context(&ctx).unwrap()
    }

    fn column(name: &str, type_text: &str) -> MySqlColumn {
        MySqlColumn {
            name: name.into(),
            type_text: type_text.into(),
            nullable: name != "id",
            charset: type_text.starts_with("varchar").then(|| "utf8mb4".into()),
            collation: None,
            default: None,
            comment: None,
        }
    }

    fn meta(table: &str) -> TableMeta {
        TableMeta {
            db: "d".into(),
            table: table.into(),
            columns: vec![
                column("id", "int(11)"),
                column("a", "varchar(20)"),
                column("b", "int(11)"),
            ],
            primary_key: vec!["id".into()],
            comment: None,
            charset: Some("utf8mb4".into()),
        }
    }

    /// The reader's side: applies each statement's changes to the tracked tables, as
    /// `on_ddl` does, and returns every change.
    struct Run {
        tables: HashMap<TableKey, TableMeta>,
        shadows: Shadows,
        config: MySqlSourceConfig,
    }

    impl Run {
        fn new(online: bool) -> Self {
            let tables = ["t", "other"]
                .into_iter()
                .map(|t| (("d".to_string(), t.to_string()), meta(t)))
                .collect();
            Self {
                tables,
                shadows: Vec::new(),
                config: config(online),
            }
        }

        fn apply(&mut self, sql: &str) -> Vec<TableChange> {
            let changes = if self.config.parse_online_schema_changes {
                apply(sql, "d", &self.tables, &mut self.shadows, &self.config).map(|(c, _)| c)
            } else {
                ddl::apply(sql, "d", &self.tables, &self.config)
            };
            let changes = changes.unwrap_or_else(|e| panic!("{sql}: {e}"));
            for c in &changes {
                match c {
                    TableChange::Upsert { meta, .. } => {
                        self.tables
                            .insert((meta.db.clone(), meta.table.clone()), meta.clone());
                    }
                    TableChange::Remove { key, .. } => {
                        self.tables.remove(key);
                    }
                    TableChange::Created(key) => {
                        self.tables.insert(key.clone(), meta(&key.1));
                    }
                    TableChange::Events(_) => {}
                }
            }
            changes
        }

        /// Applies every statement, expecting no change from any.
        fn quiet(&mut self, sqls: &[&str]) {
            for sql in sqls {
                let changes = self.apply(sql);
                assert!(changes.is_empty(), "{sql}: {changes:?}");
            }
        }

        fn columns(&self, table: &str) -> Vec<(String, String)> {
            self.tables[&("d".to_string(), table.to_string())]
                .columns
                .iter()
                .map(|c| (c.name.clone(), c.type_text.to_lowercase()))
                .collect()
        }
    }

    fn cols(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(n, t)| ((*n).to_string(), (*t).to_string()))
            .collect()
    }

    /// The events a cut-over gives: one definition for `d.t`, no rows to copy.
    fn altered(changes: &[TableChange]) -> Vec<String> {
        match changes {
            [
                TableChange::Upsert {
                    meta,
                    events,
                    copy_rows: false,
                },
            ] if meta.table == "t" => events
                .iter()
                .map(|e| format!("{} {}", e.kind(), e.table_id()))
                .collect(),
            other => panic!("not a cut-over of d.t: {other:?}"),
        }
    }

    /// The option parses (it was refused before), false by default as in Flink CDC.
    #[test]
    fn the_option_parses() {
        assert!(config(true).parse_online_schema_changes);
        assert!(!config(false).parse_online_schema_changes);
    }

    /// gh-ost's statements (go/logic/applier.go), atomic cut-over.
    #[test]
    fn gh_ost_migration_is_the_alter() {
        let mut run = Run::new(true);
        run.quiet(&[
            "drop /* gh-ost */ table if exists `d`.`_t_gho`",
            "drop /* gh-ost */ table if exists `d`.`_t_del`",
            "drop /* gh-ost */ table if exists `d`.`_t_ghc`",
            "create /* gh-ost */ table `d`.`_t_ghc` (\n\t\t\tid bigint unsigned auto_increment,\n\t\t\tlast_update timestamp not null DEFAULT CURRENT_TIMESTAMP ON UPDATE CURRENT_TIMESTAMP,\n\t\t\thint varchar(64) charset ascii not null,\n\t\t\tvalue varchar(4096) charset ascii not null,\n\t\t\tprimary key(id),\n\t\t\tunique key hint_uidx(hint)\n\t\t) auto_increment=256 comment='gh-ost changelog'",
            "create /* gh-ost */ table `d`.`_t_gho` like `d`.`t`",
            "alter /* gh-ost */ table `d`.`_t_gho` add column c varchar(10), modify b bigint",
            "alter /* gh-ost */ table `d`.`_t_gho` AUTO_INCREMENT=7",
            "create /* gh-ost */ table `d`.`_t_del` (\n\t\t\tid int auto_increment primary key\n\t\t) engine=InnoDB comment='ghost-cut-over-sentry'",
            "drop /* gh-ost */ table if exists `d`.`_t_del`",
        ]);
        assert_eq!(run.shadows.len(), 1);
        assert_eq!(run.tables.len(), 2, "no tool table is captured");
        assert_eq!(
            run.columns("t"),
            cols(&[("id", "int(11)"), ("a", "varchar(20)"), ("b", "int(11)")]),
            "the original keeps its definition until the cut-over"
        );
        let changes =
            run.apply("rename /* gh-ost */ table `d`.`t` to `d`.`_t_del`, `d`.`_t_gho` to `d`.`t`");
        assert_eq!(
            altered(&changes),
            ["add.column d.t", "alter.column.type d.t"]
        );
        assert_eq!(
            run.columns("t"),
            cols(&[
                ("id", "int(11)"),
                ("a", "varchar(20)"),
                ("b", "bigint"),
                ("c", "varchar(10)")
            ])
        );
        assert!(run.shadows.is_empty());
        run.quiet(&[
            "drop /* gh-ost */ table if exists `d`.`_t_ghc`",
            "drop /* gh-ost */ table if exists `d`.`_t_del`",
        ]);
        assert_eq!(run.tables.len(), 2);
    }

    /// gh-ost's two-step cut-over (`SwapTablesQuickAndBumpy`), and one undone.
    #[test]
    fn gh_ost_two_step_cut_over() {
        let mut run = Run::new(true);
        run.quiet(&[
            "create /* gh-ost */ table `d`.`_t_gho` like `d`.`t`",
            "alter /* gh-ost */ table `d`.`_t_gho` drop column a",
            "alter /* gh-ost */ table `d`.`t` rename `_t_del`",
        ]);
        assert!(run.tables.contains_key(&("d".into(), "t".into())));
        let changes = run.apply("alter /* gh-ost */ table `d`.`_t_gho` rename `t`");
        assert_eq!(altered(&changes), ["drop.column d.t"]);
        assert_eq!(
            run.columns("t"),
            cols(&[("id", "int(11)"), ("b", "int(11)")])
        );

        // Renamed aside and back: nothing happened to the table.
        let mut run = Run::new(true);
        run.quiet(&[
            "create table d._t_gho like d.t",
            "alter table d._t_gho add x int",
            "rename table d.t to d._t_20240131235959_del",
            "rename table d._t_20240131235959_del to d.t",
            "drop table d._t_gho",
        ]);
        assert!(run.shadows.is_empty());
        assert_eq!(run.columns("t").len(), 3);
    }

    /// pt-online-schema-change's statements (bin/pt-online-schema-change), as MariaDB logs
    /// them.
    #[test]
    fn pt_osc_migration_is_the_alter() {
        let mut run = Run::new(true);
        run.quiet(&[
            "CREATE TABLE `d`.`__t_new` (\n  `id` int(11) NOT NULL,\n  `a` varchar(20) DEFAULT NULL,\n  `b` int(11) DEFAULT NULL,\n  PRIMARY KEY (`id`)\n) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4",
            "ALTER TABLE `d`.`__t_new` CHANGE a a2 varchar(40), ADD COLUMN z int FIRST",
            "CREATE DEFINER=`root`@`localhost` TRIGGER `pt_osc_d_t_del` AFTER DELETE ON `d`.`t` FOR EACH ROW BEGIN DECLARE CONTINUE HANDLER FOR 1146 begin end; DELETE IGNORE FROM `d`.`__t_new` WHERE `d`.`__t_new`.`id` <=> OLD.`id`; END",
            "CREATE DEFINER=`root`@`localhost` TRIGGER `pt_osc_d_t_upd` AFTER UPDATE ON `d`.`t` FOR EACH ROW BEGIN DECLARE CONTINUE HANDLER FOR 1146 begin end; DELETE IGNORE FROM `d`.`__t_new` WHERE !(OLD.`id` <=> NEW.`id`) AND `d`.`__t_new`.`id` <=> OLD.`id`; REPLACE INTO `d`.`__t_new` (`id`, `a2`, `b`) VALUES (NEW.`id`, NEW.`a`, NEW.`b`); END",
            "CREATE DEFINER=`root`@`localhost` TRIGGER `pt_osc_d_t_ins` AFTER INSERT ON `d`.`t` FOR EACH ROW BEGIN DECLARE CONTINUE HANDLER FOR 1146 begin end; REPLACE INTO `d`.`__t_new` (`id`, `a2`, `b`) VALUES (NEW.`id`, NEW.`a`, NEW.`b`);END",
            "ANALYZE TABLE `d`.`__t_new` /* pt-online-schema-change */",
        ]);
        let changes = run.apply("RENAME TABLE `d`.`t` TO `d`.`_t_old`, `d`.`__t_new` TO `d`.`t`");
        assert_eq!(
            altered(&changes),
            [
                "rename.column d.t",
                "alter.column.type d.t",
                "add.column d.t"
            ]
        );
        run.quiet(&[
            "DROP TABLE IF EXISTS `_t_old` /* generated by server */",
            "DROP TRIGGER IF EXISTS `d`.`pt_osc_d_t_del`",
            "DROP TRIGGER IF EXISTS `d`.`pt_osc_d_t_upd`",
            "DROP TRIGGER IF EXISTS `d`.`pt_osc_d_t_ins`",
        ]);
        assert_eq!(
            run.columns("t"),
            cols(&[
                ("z", "int"),
                ("id", "int(11)"),
                ("a2", "varchar(40)"),
                ("b", "int(11)")
            ])
        );
    }

    /// A table named like pt-osc's shadow but defined otherwise is not a copy of the
    /// original: ignored (not captured), and the real shadow (`__t_new`) is followed.
    #[test]
    fn pt_osc_shadow_must_be_a_copy() {
        let mut run = Run::new(true);
        run.quiet(&[
            "CREATE TABLE `d`.`_t_new` (x int)",
            "CREATE TABLE `d`.`__t_new` (`id` int(11) NOT NULL, `a` varchar(20), `b` int(11), PRIMARY KEY (`id`))",
            "ALTER TABLE `d`.`__t_new` ADD c int",
        ]);
        assert_eq!(run.shadows.len(), 1);
        assert_eq!(run.shadows[0].table, "__t_new");
        let changes = run.apply("RENAME TABLE `d`.`t` TO `d`.`_t_old`, `d`.`__t_new` TO `d`.`t`");
        assert_eq!(altered(&changes), ["add.column d.t"]);
        run.quiet(&["DROP TABLE `d`.`_t_new`", "DROP TABLE `d`.`_t_old`"]);
    }

    /// pt-osc's `--alter-foreign-keys-method drop_swap`: the original is dropped first, so
    /// the table arrives again whole.
    #[test]
    fn pt_osc_drop_swap_recreates_the_table() {
        let mut run = Run::new(true);
        run.quiet(&[
            "CREATE TABLE `d`.`_t_new` (`id` int(11) NOT NULL, `a` varchar(20), `b` int(11), PRIMARY KEY (`id`))",
            "ALTER TABLE `d`.`_t_new` ADD c int",
        ]);
        let dropped = run.apply("DROP TABLE IF EXISTS `d`.`t`");
        assert!(matches!(dropped.as_slice(), [TableChange::Remove { .. }]));
        let changes = run.apply("RENAME TABLE `d`.`_t_new` TO `d`.`t`");
        let [
            TableChange::Upsert {
                meta,
                events,
                copy_rows: true,
            },
        ] = changes.as_slice()
        else {
            panic!("{changes:?}");
        };
        assert_eq!(meta.columns.len(), 4);
        assert!(matches!(
            events.as_slice(),
            [SchemaChangeEvent::CreateTable { .. }]
        ));
    }

    /// Without the option: today's behaviour, the rename drops `t` and copies the shadow.
    #[test]
    fn without_the_option_a_cut_over_is_a_rename() {
        let mut run = Run::new(false);
        run.apply("create table d._t_gho like d.t");
        assert!(run.tables.contains_key(&("d".into(), "_t_gho".into())));
        let changes = run.apply("rename table d.t to d._t_del, d._t_gho to d.t");
        let summary: Vec<String> = changes
            .iter()
            .map(|c| match c {
                TableChange::Upsert {
                    meta, copy_rows, ..
                } => format!("upsert {} {copy_rows}", meta.table),
                TableChange::Remove { key, .. } => format!("remove {}", key.1),
                TableChange::Created(k) => format!("created {}", k.1),
                TableChange::Events(_) => "events".into(),
            })
            .collect();
        assert_eq!(
            summary,
            [
                "remove t",
                "upsert _t_del true",
                "remove _t_gho",
                "upsert t true"
            ]
        );
    }

    /// Shadows of tables that are not captured are ignored, and so are the tools' tables,
    /// whatever `tables` matches.
    #[test]
    fn tools_tables_of_other_tables_are_ignored() {
        let mut run = Run::new(true);
        run.quiet(&[
            "create table d._x_gho like d.x",
            "alter table d._x_gho add c int",
            "create table d._x_ghc (id int primary key)",
            "insert into d._x_ghc values (1)",
            "rename table d.x to d._x_del, d._x_gho to d.x",
            "drop table if exists d._x_del",
        ]);
        assert!(run.shadows.is_empty());
        assert_eq!(run.tables.len(), 2);
        // An ordinary table is still captured, and renames of captured tables are as
        // before, except that a tool's name is not captured.
        let created = run.apply("create table d.fresh (id int primary key)");
        assert!(matches!(created.as_slice(), [TableChange::Upsert { .. }]));
        let renamed = run.apply("rename table d.other to d._other_old");
        assert!(matches!(renamed.as_slice(), [TableChange::Remove { .. }]));
        assert!(!run.tables.contains_key(&("d".into(), "_other_old".into())));
    }

    /// An unparseable ALTER of a shadow stops, as one of a captured table does: the table's
    /// definition after the cut-over would be unknown.
    #[test]
    fn unparseable_shadow_alters_are_errors() {
        let mut run = Run::new(true);
        run.quiet(&["create table d._t_gho like d.t"]);
        let err = apply(
            "alter table d._t_gho add system versioning",
            "d",
            &run.tables,
            &mut run.shadows,
            &run.config,
        )
        .unwrap_err();
        assert!(err.contains("shadow table d._t_gho"), "{err}");
    }

    #[test]
    fn tool_names() {
        assert_eq!(shadow_bases("_t_gho"), ["t"]);
        assert_eq!(shadow_bases("___t_new"), ["__t", "_t", "t"]);
        assert!(shadow_bases("t_new").is_empty() && shadow_bases("_gho").is_empty());
        assert_eq!(tool_bases("_t_ghc"), ["t"]);
        assert_eq!(
            tool_bases("_t_20240131235959_del"),
            ["t_20240131235959", "t"]
        );
        assert_eq!(tool_bases("_t_rev_del"), ["t", "t_rev"]);
        assert_eq!(tool_bases("__t_old"), ["_t", "t"]);
        assert!(tool_bases("t_old").is_empty() && tool_bases("told").is_empty());
        // gh-ost cuts a long name's base to fit 64 bytes.
        let long = "t".repeat(70);
        let tables = HashMap::from([(("d".to_string(), long.clone()), meta(&long))]);
        let ghost = format!("_{}_gho", &long[..59]);
        assert_eq!(ghost.len(), 64);
        assert_eq!(
            captured_base("d", &ghost, &shadow_bases(&ghost), &tables),
            Some(long)
        );
    }

    #[test]
    fn heads() {
        let key = |t: &str| ("d".to_string(), t.to_string());
        assert_eq!(
            head("create /* gh-ost */ table `d`.`_t_gho` like `d`.`t`", "x"),
            Some(Head::Create {
                table: key("_t_gho"),
                like: Some(key("t"))
            })
        );
        assert_eq!(
            head("CREATE TABLE IF NOT EXISTS _t_gho (LIKE t)", "d"),
            Some(Head::Create {
                table: key("_t_gho"),
                like: Some(key("t"))
            })
        );
        assert_eq!(
            head("RENAME TABLE t TO _t_old, d.__t_new NOWAIT TO `t`;", "d"),
            Some(Head::Rename(vec![
                (key("t"), key("_t_old")),
                (key("__t_new"), key("t"))
            ]))
        );
        assert_eq!(
            head("alter table t rename as u", "d"),
            Some(Head::Alter {
                table: key("t"),
                rename_to: Some(key("u")),
                renames: true
            })
        );
        assert_eq!(
            head("alter table t add c int, rename to u", "d"),
            Some(Head::Alter {
                table: key("t"),
                rename_to: None,
                renames: true
            })
        );
        assert_eq!(
            head("alter table t rename column a to b", "d"),
            Some(Head::Alter {
                table: key("t"),
                rename_to: None,
                renames: false
            })
        );
        assert_eq!(
            head(
                "DROP TABLE IF EXISTS a, `d`.`b` /* generated by server */",
                "d"
            ),
            Some(Head::Drop(vec![key("a"), key("b")]))
        );
        assert_eq!(
            head(
                "CREATE OR REPLACE DEFINER=`u`@`%` TRIGGER x AFTER INSERT ON t FOR EACH ROW SET @a=1",
                "d"
            ),
            Some(Head::Trigger)
        );
        for other in [
            "CREATE TEMPORARY TABLE t (a int)",
            "DROP TEMPORARY TABLE t",
            "INSERT INTO t VALUES (1)",
            "RENAME USER a TO b",
            "CREATE TABLE",
            "RENAME TABLE t",
            "",
        ] {
            assert_eq!(head(other, "d"), None, "{other}");
        }
    }

    /// The shadows travel in the offset: they survive serialization, and older fields stay
    /// optional.
    #[test]
    fn shadows_serialize() {
        let mut run = Run::new(true);
        run.quiet(&[
            "create table d._t_gho like d.t",
            "alter table d._t_gho add c int after a",
        ]);
        let json = serde_json::to_value(&run.shadows).unwrap();
        let back: Shadows = serde_json::from_value(json).unwrap();
        assert_eq!(back, run.shadows);
        let minimal = serde_json::json!([{
            "db": "d", "table": "_t_gho", "origin": "t",
            "meta": serde_json::to_value(meta("t")).unwrap()
        }]);
        let back: Shadows = serde_json::from_value(minimal).unwrap();
        assert!(back[0].events.is_empty() && back[0].parked.is_none());
    }
}
