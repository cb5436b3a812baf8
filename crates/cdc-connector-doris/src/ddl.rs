//! Doris DDL text: CREATE DATABASE / TABLE for a CDC schema, and the ALTER forms of schema
//! changes. Pure functions over a [`TableLayout`], so the statements are tested as text.
//!
//! Doris wants key columns first and in key order, and cannot key STRING, FLOAT, DOUBLE or
//! JSON columns: a table with a primary key becomes UNIQUE KEY(pk) with the key columns moved
//! to the front; a table without one becomes DUPLICATE KEY on its first column that Doris
//! can key (moved to the front), or, when no column can be keyed, on its first column typed
//! as VARCHAR.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use cdc_api::{Column, DataType, Schema, TableId};

use crate::type_mapping::{doris_key_type, doris_type, is_keyable, is_temporal, takes_default};

/// One column as created in Doris.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct DorisColumn {
    /// The column name.
    pub(crate) name: String,
    /// The Doris type text.
    pub(crate) type_text: String,
    /// Whether it accepts NULL.
    pub(crate) nullable: bool,
    /// Whether it is a key column.
    pub(crate) is_key: bool,
    /// The DEFAULT clause value, already rendered (`"abc"`, `CURRENT_TIMESTAMP`, `NULL`).
    pub(crate) default: Option<String>,
    /// The comment.
    pub(crate) comment: Option<String>,
}

/// How a CDC table is laid out in Doris.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct TableLayout {
    /// UNIQUE KEY (a primary key exists) or DUPLICATE KEY.
    pub(crate) unique: bool,
    /// Columns in Doris order (keys first).
    pub(crate) columns: Vec<DorisColumn>,
    /// `AUTO PARTITION BY RANGE (date_trunc(col, unit))`, when selected and possible.
    pub(crate) partition: Option<(String, String)>,
}

impl TableLayout {
    /// Lays out `schema`; `partition` is the configured (column, unit), used when the column
    /// is a DATE/DATETIME column that can be a key.
    pub(crate) fn new(schema: &Schema, partition: Option<(String, String)>) -> Self {
        let pk: Vec<&Column> = schema
            .primary_key
            .iter()
            .filter_map(|k| schema.column(k))
            .collect();
        let unique = !pk.is_empty() && pk.len() == schema.primary_key.len();
        let partition = partition.filter(|(col, _)| {
            schema.column(col).is_some_and(|c| {
                is_temporal(&doris_type(&c.data_type))
                    && (!unique || schema.primary_key.contains(col))
            })
        });
        let key_names: Vec<String> = if unique {
            schema.primary_key.clone()
        } else if let Some((col, _)) = &partition {
            vec![col.clone()]
        } else {
            let first_keyable = schema
                .columns
                .iter()
                .find(|c| is_keyable(&doris_type(&c.data_type)));
            first_keyable
                .or_else(|| schema.columns.first())
                .map(|c| vec![c.name.clone()])
                .unwrap_or_default()
        };
        let mut columns: Vec<DorisColumn> = Vec::with_capacity(schema.columns.len());
        for name in &key_names {
            if let Some(c) = schema.column(name) {
                let is_partition = partition.as_ref().is_some_and(|(p, _)| p == name);
                columns.push(doris_column(c, true, is_partition));
            }
        }
        for c in &schema.columns {
            if !key_names.contains(&c.name) {
                columns.push(doris_column(c, false, false));
            }
        }
        Self {
            unique,
            columns,
            partition,
        }
    }

    /// Names of the key columns in order.
    pub(crate) fn key_names(&self) -> impl Iterator<Item = &str> {
        self.columns
            .iter()
            .filter(|c| c.is_key)
            .map(|c| c.name.as_str())
    }

    /// The column, by name.
    pub(crate) fn column(&self, name: &str) -> Option<&DorisColumn> {
        self.columns.iter().find(|c| c.name == name)
    }
}

/// Builds the Doris column for a CDC column.
pub(crate) fn doris_column(column: &Column, is_key: bool, force_not_null: bool) -> DorisColumn {
    let type_text = if is_key {
        doris_key_type(&column.data_type)
    } else {
        doris_type(&column.data_type)
    };
    let default = column
        .default
        .as_deref()
        .and_then(|d| render_default(d, &type_text));
    DorisColumn {
        nullable: column.data_type.nullable && !force_not_null && !is_key,
        name: column.name.clone(),
        type_text,
        is_key,
        default,
        comment: column.comment.clone().filter(|c| !c.is_empty()),
    }
}

/// The Doris type of an altered column, keeping key columns keyable.
pub(crate) fn altered_type(data_type: &DataType, is_key: bool) -> String {
    if is_key {
        doris_key_type(data_type)
    } else {
        doris_type(data_type)
    }
}

/// Quotes an identifier with backticks.
pub(crate) fn ident(name: &str) -> String {
    format!("`{}`", name.replace('`', "``"))
}

/// A double-quoted Doris string literal.
pub(crate) fn literal(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// `db`.`table`
pub(crate) fn qualified(table: &TableId) -> String {
    format!("{}.{}", ident(table.schema_name()), ident(&table.table))
}

/// Turns a source DEFAULT (SQL text) into the value of a Doris DEFAULT clause, or `None`
/// when Doris cannot take it (STRING/JSON columns, bit and hex literals, functions).
pub(crate) fn render_default(sql: &str, doris_type: &str) -> Option<String> {
    let sql = sql.trim();
    if !takes_default(doris_type) {
        return None;
    }
    if sql.eq_ignore_ascii_case("NULL") {
        return Some("NULL".into());
    }
    let upper = sql.to_ascii_uppercase();
    if upper.starts_with("CURRENT_TIMESTAMP")
        || upper.starts_with("NOW(")
        || upper == "LOCALTIMESTAMP"
    {
        return doris_type
            .starts_with("DATETIME")
            .then(|| "CURRENT_TIMESTAMP".to_string());
    }
    let value = if let Some(inner) = sql
        .strip_prefix('\'')
        .and_then(|s| s.strip_suffix('\''))
        .or_else(|| sql.strip_prefix('"').and_then(|s| s.strip_suffix('"')))
    {
        unescape_sql(inner)
    } else if sql
        .chars()
        .all(|c| c.is_ascii_digit() || matches!(c, '-' | '+' | '.' | 'e' | 'E'))
        && !sql.is_empty()
    {
        sql.to_string()
    } else {
        // b'0', 0x1F, expressions: Doris has no equivalent default.
        return None;
    };
    let value = match value.as_str() {
        "0000-00-00 00:00:00" => "1970-01-01 00:00:00".to_string(),
        "0000-00-00" => "1970-01-01".to_string(),
        _ => value,
    };
    Some(literal(&value))
}

fn unescape_sql(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' => match chars.next() {
                Some('n') => out.push('\n'),
                Some('t') => out.push('\t'),
                Some('0') => out.push('\0'),
                Some(other) => out.push(other),
                None => out.push('\\'),
            },
            '\'' if chars.peek() == Some(&'\'') => {
                chars.next();
                out.push('\'');
            }
            c => out.push(c),
        }
    }
    out
}

fn column_definition(c: &DorisColumn, key_marker: bool) -> String {
    let mut s = format!(
        "{} {}{} {}",
        ident(&c.name),
        c.type_text,
        if key_marker && c.is_key { " KEY" } else { "" },
        if c.nullable { "NULL" } else { "NOT NULL" }
    );
    if let Some(d) = &c.default {
        if d != "NULL" || c.nullable {
            let _ = write!(s, " DEFAULT {d}");
        }
    }
    if let Some(comment) = &c.comment {
        let _ = write!(s, " COMMENT {}", literal(comment));
    }
    s
}

/// `CREATE DATABASE IF NOT EXISTS `db``
pub(crate) fn create_database(db: &str) -> String {
    format!("CREATE DATABASE IF NOT EXISTS {}", ident(db))
}

/// `CREATE TABLE IF NOT EXISTS ...` for a laid-out table.
pub(crate) fn create_table(
    table: &TableId,
    layout: &TableLayout,
    comment: Option<&str>,
    properties: &BTreeMap<String, String>,
) -> String {
    let mut s = format!("CREATE TABLE IF NOT EXISTS {} (\n", qualified(table));
    let defs: Vec<String> = layout
        .columns
        .iter()
        .map(|c| format!("  {}", column_definition(c, false)))
        .collect();
    s.push_str(&defs.join(",\n"));
    s.push_str("\n) ENGINE = OLAP\n");
    let keys: Vec<String> = layout.key_names().map(ident).collect();
    let keys = keys.join(", ");
    let _ = writeln!(
        s,
        "{} KEY({keys})",
        if layout.unique { "UNIQUE" } else { "DUPLICATE" }
    );
    if let Some(comment) = comment.filter(|c| !c.is_empty()) {
        let _ = writeln!(s, "COMMENT {}", literal(comment));
    }
    if let Some((col, unit)) = &layout.partition {
        let _ = writeln!(
            s,
            "AUTO PARTITION BY RANGE (date_trunc({}, '{unit}')) ()",
            ident(col)
        );
    }
    let _ = write!(s, "DISTRIBUTED BY HASH({keys}) BUCKETS AUTO");
    if !properties.is_empty() {
        let props: Vec<String> = properties
            .iter()
            .map(|(k, v)| format!("{} = {}", literal(k), literal(v)))
            .collect();
        let _ = write!(s, "\nPROPERTIES ({})", props.join(", "));
    }
    s
}

/// Where an added column goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Placement {
    /// At the end.
    Last,
    /// Before every column.
    First,
    /// After the named column.
    After(String),
}

/// `ALTER TABLE ... ADD COLUMN ...`
pub(crate) fn add_column(table: &TableId, column: &DorisColumn, placement: &Placement) -> String {
    let mut s = format!(
        "ALTER TABLE {} ADD COLUMN {}",
        qualified(table),
        column_definition(column, false)
    );
    match placement {
        Placement::Last => {}
        Placement::First => s.push_str(" FIRST"),
        Placement::After(name) => {
            let _ = write!(s, " AFTER {}", ident(name));
        }
    }
    s
}

/// `ALTER TABLE ... DROP COLUMN ...`
pub(crate) fn drop_column(table: &TableId, name: &str) -> String {
    format!(
        "ALTER TABLE {} DROP COLUMN {}",
        qualified(table),
        ident(name)
    )
}

/// `ALTER TABLE ... RENAME COLUMN old new` (Doris takes no `TO`).
pub(crate) fn rename_column(table: &TableId, old: &str, new: &str) -> String {
    format!(
        "ALTER TABLE {} RENAME COLUMN {} {}",
        qualified(table),
        ident(old),
        ident(new)
    )
}

/// `ALTER TABLE ... MODIFY COLUMN ...` (an asynchronous schema-change job in Doris).
pub(crate) fn modify_column(table: &TableId, column: &DorisColumn) -> String {
    // Doris wants the KEY marker kept on a key column it modifies.
    format!(
        "ALTER TABLE {} MODIFY COLUMN {}",
        qualified(table),
        column_definition(column, true)
    )
}

/// `TRUNCATE TABLE ...`
pub(crate) fn truncate_table(table: &TableId) -> String {
    format!("TRUNCATE TABLE {}", qualified(table))
}

/// `DROP TABLE IF EXISTS ...`
pub(crate) fn drop_table(table: &TableId) -> String {
    format!("DROP TABLE IF EXISTS {}", qualified(table))
}

/// `ALTER TABLE ... MODIFY COMMENT "..."`
pub(crate) fn alter_comment(table: &TableId, comment: &str) -> String {
    format!(
        "ALTER TABLE {} MODIFY COMMENT {}",
        qualified(table),
        literal(comment)
    )
}

/// Every schema-change job of a table that the FE still lists. Not "the newest" with
/// `ORDER BY CreateTime DESC LIMIT 1`: `CreateTime` has one-second resolution and ties keep
/// job-id order, so that names the older of two jobs created in the same second.
pub(crate) fn show_alter_jobs(table: &TableId) -> String {
    format!(
        "SHOW ALTER TABLE COLUMN FROM {} WHERE TableName = {}",
        ident(table.schema_name()),
        literal(&table.table)
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use cdc_api::DataTypeKind;

    fn col(name: &str, kind: DataTypeKind) -> Column {
        Column::new(name, DataType::new(kind))
    }

    fn orders() -> Schema {
        Schema::new(vec![
            col("note", DataTypeKind::VarChar { length: 192 }).with_default("'n/a'"),
            Column::new("id", DataType::new(DataTypeKind::BigInt).not_null())
                .with_comment("order \"id\""),
            col(
                "amount",
                DataTypeKind::Decimal {
                    precision: 12,
                    scale: 2,
                },
            )
            .with_default("0.00"),
            col("created", DataTypeKind::Timestamp { precision: 3 })
                .with_default("CURRENT_TIMESTAMP(3)"),
            col("body", DataTypeKind::String).with_default("'x'"),
        ])
        .with_primary_key(["id"])
        .with_comment("all orders")
    }

    #[test]
    fn unique_table_puts_keys_first() {
        let t = TableId::new("shop", "orders");
        let layout = TableLayout::new(&orders(), None);
        let mut props = BTreeMap::new();
        props.insert("replication_num".to_string(), "1".to_string());
        assert_eq!(
            create_table(&t, &layout, Some("all orders"), &props),
            "CREATE TABLE IF NOT EXISTS `shop`.`orders` (\n  \
             `id` BIGINT NOT NULL COMMENT \"order \\\"id\\\"\",\n  \
             `note` VARCHAR(768) NULL DEFAULT \"n/a\",\n  \
             `amount` DECIMAL(12, 2) NULL DEFAULT \"0.00\",\n  \
             `created` DATETIME(3) NULL DEFAULT CURRENT_TIMESTAMP,\n  \
             `body` STRING NULL\n\
             ) ENGINE = OLAP\n\
             UNIQUE KEY(`id`)\n\
             COMMENT \"all orders\"\n\
             DISTRIBUTED BY HASH(`id`) BUCKETS AUTO\n\
             PROPERTIES (\"replication_num\" = \"1\")"
        );
    }

    #[test]
    fn duplicate_table_keys_a_keyable_column() {
        let t = TableId::new("db", "logs");
        let schema = Schema::new(vec![
            col("msg", DataTypeKind::String),
            col("score", DataTypeKind::Double),
            col("at", DataTypeKind::Timestamp { precision: 0 }),
        ]);
        let layout = TableLayout::new(&schema, None);
        assert!(!layout.unique);
        assert_eq!(
            create_table(&t, &layout, None, &BTreeMap::new()),
            "CREATE TABLE IF NOT EXISTS `db`.`logs` (\n  \
             `at` DATETIME NOT NULL,\n  \
             `msg` STRING NULL,\n  \
             `score` DOUBLE NULL\n\
             ) ENGINE = OLAP\n\
             DUPLICATE KEY(`at`)\n\
             DISTRIBUTED BY HASH(`at`) BUCKETS AUTO"
        );
        // Nothing keyable: the first column becomes a VARCHAR key.
        let schema = Schema::new(vec![
            col("msg", DataTypeKind::String),
            col("x", DataTypeKind::Float),
        ]);
        let layout = TableLayout::new(&schema, None);
        assert_eq!(layout.columns[0].type_text, "VARCHAR(65533)");
        assert!(layout.columns[0].is_key);
        // First column keyable: kept in place.
        let schema = Schema::new(vec![
            col("a", DataTypeKind::Int),
            col("b", DataTypeKind::String),
        ]);
        assert_eq!(
            TableLayout::new(&schema, None)
                .key_names()
                .collect::<Vec<_>>(),
            ["a"]
        );
    }

    #[test]
    fn string_primary_key_becomes_varchar() {
        let schema = Schema::new(vec![
            Column::new("k", DataType::new(DataTypeKind::String).not_null()),
            col("v", DataTypeKind::Int),
        ])
        .with_primary_key(["k"]);
        let layout = TableLayout::new(&schema, None);
        assert_eq!(layout.columns[0].type_text, "VARCHAR(65533)");
    }

    #[test]
    fn auto_partition_clause() {
        let t = TableId::new("db", "ev");
        let schema = Schema::new(vec![
            Column::new("id", DataType::new(DataTypeKind::Int).not_null()),
            Column::new("day", DataType::new(DataTypeKind::Date).not_null()),
        ])
        .with_primary_key(["id", "day"]);
        let layout = TableLayout::new(&schema, Some(("day".into(), "month".into())));
        let sql = create_table(&t, &layout, None, &BTreeMap::new());
        assert!(
            sql.contains("AUTO PARTITION BY RANGE (date_trunc(`day`, 'month')) ()\nDISTRIBUTED"),
            "{sql}"
        );
        // A value column cannot partition a UNIQUE table: no partition clause.
        let schema = schema.with_primary_key(["id"]);
        assert_eq!(
            TableLayout::new(&schema, Some(("day".into(), "day".into()))).partition,
            None
        );
    }

    #[test]
    fn alter_statements() {
        let t = TableId::new("db", "t`x");
        let c = doris_column(
            &col("c", DataTypeKind::Int).with_comment("cc"),
            false,
            false,
        );
        assert_eq!(
            add_column(&t, &c, &Placement::After("b".into())),
            "ALTER TABLE `db`.`t``x` ADD COLUMN `c` INT NULL COMMENT \"cc\" AFTER `b`"
        );
        assert_eq!(
            add_column(&t, &c, &Placement::Last),
            "ALTER TABLE `db`.`t``x` ADD COLUMN `c` INT NULL COMMENT \"cc\""
        );
        assert_eq!(
            drop_column(&t, "c"),
            "ALTER TABLE `db`.`t``x` DROP COLUMN `c`"
        );
        assert_eq!(
            rename_column(&t, "a", "b"),
            "ALTER TABLE `db`.`t``x` RENAME COLUMN `a` `b`"
        );
        let big = doris_column(&col("c", DataTypeKind::BigInt), false, false);
        assert_eq!(
            modify_column(&t, &big),
            "ALTER TABLE `db`.`t``x` MODIFY COLUMN `c` BIGINT NULL"
        );
        let key = doris_column(
            &Column::new(
                "k",
                DataType::new(DataTypeKind::VarChar { length: 20 }).not_null(),
            ),
            true,
            false,
        );
        assert_eq!(
            modify_column(&t, &key),
            "ALTER TABLE `db`.`t``x` MODIFY COLUMN `k` VARCHAR(80) KEY NOT NULL"
        );
        assert_eq!(truncate_table(&t), "TRUNCATE TABLE `db`.`t``x`");
        assert_eq!(drop_table(&t), "DROP TABLE IF EXISTS `db`.`t``x`");
        assert_eq!(
            alter_comment(&t, "new"),
            "ALTER TABLE `db`.`t``x` MODIFY COMMENT \"new\""
        );
        assert_eq!(
            show_alter_jobs(&TableId::new("db", "t")),
            "SHOW ALTER TABLE COLUMN FROM `db` WHERE TableName = \"t\""
        );
        assert_eq!(create_database("db"), "CREATE DATABASE IF NOT EXISTS `db`");
    }

    #[test]
    fn defaults_render_for_doris() {
        assert_eq!(
            render_default("'it''s'", "VARCHAR(10)").as_deref(),
            Some("\"it's\"")
        );
        assert_eq!(
            render_default("'0000-00-00 00:00:00'", "DATETIME").as_deref(),
            Some("\"1970-01-01 00:00:00\"")
        );
        assert_eq!(render_default("CURRENT_TIMESTAMP", "DATE"), None);
        assert_eq!(render_default("b'1'", "BOOLEAN"), None);
        assert_eq!(
            render_default("-1.5", "DOUBLE").as_deref(),
            Some("\"-1.5\"")
        );
        assert_eq!(render_default("'x'", "STRING"), None);
        assert_eq!(render_default("NULL", "INT").as_deref(), Some("NULL"));
    }
}
