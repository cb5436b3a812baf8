//! StarRocks DDL text: CREATE DATABASE / TABLE (PRIMARY KEY tables only, key columns first
//! and NOT NULL), ALTER TABLE ADD / DROP / RENAME / MODIFY COLUMN, TRUNCATE, DROP, and the
//! query that watches asynchronous schema-change jobs.

use std::collections::BTreeMap;

use cdc_api::{Column, DataTypeKind, Error, Result, Schema, TableId};

use crate::type_mapping::starrocks_type;

/// `` `name` `` with back-quotes doubled.
pub(crate) fn ident(name: &str) -> String {
    format!("`{}`", name.replace('`', "``"))
}

/// A double-quoted string literal.
pub(crate) fn literal(text: &str) -> String {
    let mut s = String::with_capacity(text.len() + 2);
    s.push('"');
    for c in text.chars() {
        match c {
            '"' => s.push_str("\\\""),
            '\\' => s.push_str("\\\\"),
            '\n' => s.push_str("\\n"),
            c => s.push(c),
        }
    }
    s.push('"');
    s
}

/// `` `db`.`table` ``.
pub(crate) fn qualified(table: &TableId) -> String {
    format!("{}.{}", ident(table.schema_name()), ident(&table.table))
}

/// The DEFAULT clause for a source default, when StarRocks can take it as is: numbers,
/// plain strings, and CURRENT_TIMESTAMP on DATETIME. Others are left out rather than risk a
/// refused CREATE TABLE (rows always carry every column, so defaults only matter to other
/// writers).
fn default_clause(column: &Column, sr_type: &str) -> Option<String> {
    let raw = column.default.as_deref()?.trim();
    if raw.eq_ignore_ascii_case("CURRENT_TIMESTAMP")
        || raw.to_ascii_uppercase().starts_with("CURRENT_TIMESTAMP(")
    {
        return (sr_type == "DATETIME").then(|| " DEFAULT CURRENT_TIMESTAMP".to_string());
    }
    if raw.eq_ignore_ascii_case("NULL") {
        return None;
    }
    let text = raw
        .strip_prefix('\'')
        .and_then(|r| r.strip_suffix('\''))
        .unwrap_or(raw);
    let numeric = matches!(
        column.data_type.kind,
        DataTypeKind::TinyInt
            | DataTypeKind::SmallInt
            | DataTypeKind::Int
            | DataTypeKind::BigInt
            | DataTypeKind::Float
            | DataTypeKind::Double
            | DataTypeKind::Decimal { .. }
    );
    let texty = matches!(
        column.data_type.kind,
        DataTypeKind::Char { .. } | DataTypeKind::VarChar { .. }
    );
    let number = numeric && text.parse::<f64>().is_ok() && !sr_type.starts_with("VARCHAR");
    let plain_text = texty && !text.contains(['\\', '\'']);
    (number || plain_text).then(|| format!(" DEFAULT {}", literal(text)))
}

/// One column definition.
pub(crate) fn column_definition(column: &Column, is_key: bool, char_bytes: u32) -> String {
    let ty = starrocks_type(&column.data_type, is_key, char_bytes);
    let mut s = format!("{} {ty}", ident(&column.name));
    s.push_str(if is_key || !column.data_type.nullable {
        " NOT NULL"
    } else {
        " NULL"
    });
    if !is_key {
        if let Some(d) = default_clause(column, &ty) {
            s.push_str(&d);
        }
    }
    if let Some(c) = column.comment.as_deref().filter(|c| !c.is_empty()) {
        s.push_str(" COMMENT ");
        s.push_str(&literal(c));
    }
    s
}

/// `CREATE DATABASE IF NOT EXISTS`.
pub(crate) fn create_database(db: &str) -> String {
    format!("CREATE DATABASE IF NOT EXISTS {}", ident(db))
}

/// `CREATE TABLE IF NOT EXISTS` for a PRIMARY KEY table; an error saying what to do when
/// the source table has no primary key.
pub(crate) fn create_table(
    table: &TableId,
    schema: &Schema,
    num_buckets: Option<u32>,
    properties: &BTreeMap<String, String>,
    char_bytes: u32,
) -> Result<String> {
    let keys = schema.primary_key_indexes();
    if schema.primary_key.is_empty() || keys.len() != schema.primary_key.len() {
        return Err(Error::permanent(
            format!("creating the StarRocks table for {table}"),
            "the source table has no primary key, and the StarRocks sink writes only to PRIMARY KEY tables (deletes and exactly-once replays need a key)",
        )
        .with_hint(format!(
            "add a primary key to the source table, or give it one in the pipeline: transform: [{{source-table: {table}, primary-keys: <column>}}]"
        )));
    }
    let mut defs = Vec::with_capacity(schema.columns.len());
    for &i in &keys {
        defs.push(column_definition(&schema.columns[i], true, char_bytes));
    }
    for (i, c) in schema.columns.iter().enumerate() {
        if !keys.contains(&i) {
            defs.push(column_definition(c, false, char_bytes));
        }
    }
    let key_list = keys
        .iter()
        .map(|&i| ident(&schema.columns[i].name))
        .collect::<Vec<_>>()
        .join(", ");
    let mut sql = format!(
        "CREATE TABLE IF NOT EXISTS {} (\n{}\n) PRIMARY KEY ({key_list})\n",
        qualified(table),
        defs.join(",\n")
    );
    if let Some(c) = schema.comment.as_deref().filter(|c| !c.is_empty()) {
        sql.push_str(&format!("COMMENT {}\n", literal(c)));
    }
    sql.push_str(&format!("DISTRIBUTED BY HASH ({key_list})"));
    if let Some(n) = num_buckets {
        sql.push_str(&format!(" BUCKETS {n}"));
    }
    if !properties.is_empty() {
        let props = properties
            .iter()
            .map(|(k, v)| format!("{} = {}", literal(k), literal(v)))
            .collect::<Vec<_>>()
            .join(",\n");
        sql.push_str(&format!("\nPROPERTIES (\n{props}\n)"));
    }
    Ok(sql)
}

/// `ADD COLUMN`; added columns go last (as in Flink CDC) and are nullable unless they
/// have a default, because existing rows need a value.
pub(crate) fn add_column(table: &TableId, column: &Column, char_bytes: u32) -> String {
    let mut c = column.clone();
    if c.default.is_none() {
        c.data_type.nullable = true;
    }
    let mut def = column_definition(&c, false, char_bytes);
    if !c.data_type.nullable && !def.contains(" DEFAULT ") {
        def = def.replace(" NOT NULL", " NULL");
    }
    format!("ALTER TABLE {} ADD COLUMN {def}", qualified(table))
}

/// `DROP COLUMN`.
pub(crate) fn drop_column(table: &TableId, name: &str) -> String {
    format!(
        "ALTER TABLE {} DROP COLUMN {}",
        qualified(table),
        ident(name)
    )
}

/// `RENAME COLUMN a TO b` (StarRocks >= 3.3).
pub(crate) fn rename_column(table: &TableId, old: &str, new: &str) -> String {
    format!(
        "ALTER TABLE {} RENAME COLUMN {} TO {}",
        qualified(table),
        ident(old),
        ident(new)
    )
}

/// `MODIFY COLUMN` to a new type (kept nullable as it was).
pub(crate) fn modify_column(table: &TableId, column: &Column, char_bytes: u32) -> String {
    let mut c = column.clone();
    c.default = None;
    format!(
        "ALTER TABLE {} MODIFY COLUMN {}",
        qualified(table),
        column_definition(&c, false, char_bytes)
    )
}

/// `TRUNCATE TABLE`.
pub(crate) fn truncate_table(table: &TableId) -> String {
    format!("TRUNCATE TABLE {}", qualified(table))
}

/// `DROP TABLE IF EXISTS`.
pub(crate) fn drop_table(table: &TableId) -> String {
    format!("DROP TABLE IF EXISTS {}", qualified(table))
}

/// `ALTER TABLE .. COMMENT = ".."` (StarRocks >= 3.1; a metadata change, no job).
pub(crate) fn alter_comment(table: &TableId, comment: &str) -> String {
    format!(
        "ALTER TABLE {} COMMENT = {}",
        qualified(table),
        literal(comment)
    )
}

/// The newest schema-change job of a table.
pub(crate) fn show_alter_jobs(table: &TableId) -> String {
    format!(
        "SHOW ALTER TABLE COLUMN FROM {} WHERE TableName = {}",
        ident(table.schema_name()),
        literal(&table.table)
    )
}

/// The table's columns.
pub(crate) fn describe(table: &TableId) -> String {
    format!("DESC {}", qualified(table))
}

#[cfg(test)]
mod tests {
    use super::*;
    use cdc_api::DataType;

    fn col(name: &str, kind: DataTypeKind) -> Column {
        Column::new(name, DataType::new(kind))
    }

    #[test]
    fn primary_key_table_puts_keys_first() {
        let schema = Schema::new(vec![
            col("note", DataTypeKind::VarChar { length: 10 }).with_comment("a \"note\""),
            Column::new("id", DataType::new(DataTypeKind::BigInt).not_null()),
            col(
                "amount",
                DataTypeKind::Decimal {
                    precision: 12,
                    scale: 2,
                },
            ),
            col(
                "code",
                DataTypeKind::Decimal {
                    precision: 10,
                    scale: 0,
                },
            ),
            col("ts", DataTypeKind::Timestamp { precision: 6 }),
        ])
        .with_primary_key(["id", "code"]);
        let mut props = BTreeMap::new();
        props.insert("replication_num".to_string(), "1".to_string());
        let sql =
            create_table(&TableId::new("shop", "orders"), &schema, Some(8), &props, 4).unwrap();
        assert_eq!(
            sql,
            "CREATE TABLE IF NOT EXISTS `shop`.`orders` (\n\
             `id` BIGINT NOT NULL,\n\
             `code` VARCHAR(11) NOT NULL,\n\
             `note` VARCHAR(40) NULL COMMENT \"a \\\"note\\\"\",\n\
             `amount` DECIMAL(12,2) NULL,\n\
             `ts` DATETIME NULL\n\
             ) PRIMARY KEY (`id`, `code`)\n\
             DISTRIBUTED BY HASH (`id`, `code`) BUCKETS 8\n\
             PROPERTIES (\n\"replication_num\" = \"1\"\n)"
        );
    }

    #[test]
    fn a_table_without_key_is_refused_with_advice() {
        let schema = Schema::new(vec![col("v", DataTypeKind::Int)]);
        let err = create_table(&TableId::new("d", "t"), &schema, None, &BTreeMap::new(), 4)
            .unwrap_err()
            .to_string();
        assert!(err.contains("no primary key"), "{err}");
        assert!(err.contains("primary-keys"), "{err}");
    }

    #[test]
    fn alter_statements() {
        let t = TableId::new("d", "t");
        assert_eq!(
            add_column(
                &t,
                &Column::new("c", DataType::new(DataTypeKind::Int).not_null()),
                4
            ),
            "ALTER TABLE `d`.`t` ADD COLUMN `c` INT NULL"
        );
        let mut with_default = Column::new("q", DataType::new(DataTypeKind::Int).not_null());
        with_default.default = Some("0".into());
        assert_eq!(
            add_column(&t, &with_default, 4),
            "ALTER TABLE `d`.`t` ADD COLUMN `q` INT NOT NULL DEFAULT \"0\""
        );
        assert_eq!(drop_column(&t, "c"), "ALTER TABLE `d`.`t` DROP COLUMN `c`");
        assert_eq!(
            rename_column(&t, "a", "b"),
            "ALTER TABLE `d`.`t` RENAME COLUMN `a` TO `b`"
        );
        assert_eq!(
            modify_column(&t, &col("c", DataTypeKind::BigInt), 4),
            "ALTER TABLE `d`.`t` MODIFY COLUMN `c` BIGINT NULL"
        );
        assert_eq!(truncate_table(&t), "TRUNCATE TABLE `d`.`t`");
        assert_eq!(drop_table(&t), "DROP TABLE IF EXISTS `d`.`t`");
        assert_eq!(
            show_alter_jobs(&t),
            "SHOW ALTER TABLE COLUMN FROM `d` WHERE TableName = \"t\""
        );
        assert_eq!(ident("a`b"), "`a``b`");
        assert_eq!(
            alter_comment(&t, "x"),
            "ALTER TABLE `d`.`t` COMMENT = \"x\""
        );
    }
}
