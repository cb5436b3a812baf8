//! Table schemas as the source tracks them: the MySQL view (types, charsets, ENUM labels,
//! which the binlog does not carry) next to the cdc-api [`Schema`] it maps to.

use cdc_api::{Column, Error, Result, Schema, TableId};
use mysql_async::prelude::Queryable;
use serde::{Deserialize, Serialize};

use crate::types::{Charset, MySqlType, charset_of_collation, parse_column_type, to_data_type};

/// One column as MySQL defines it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct MySqlColumn {
    pub(crate) name: String,
    /// The column type text (`int(10) unsigned`), parsed on demand into [`MySqlType`].
    pub(crate) type_text: String,
    pub(crate) nullable: bool,
    /// Character set name for text columns (`utf8mb4`, `latin1`, ...).
    pub(crate) charset: Option<String>,
    /// Collation of a text column (`utf8mb4_general_ci`): a resumed snapshot compares text
    /// keys under it. Unknown for columns added by DDL (the charset's default applies).
    #[serde(default)]
    pub(crate) collation: Option<String>,
    pub(crate) default: Option<String>,
    pub(crate) comment: Option<String>,
}

impl MySqlColumn {
    pub(crate) fn mysql_type(&self) -> MySqlType {
        parse_column_type(&self.type_text)
    }

    pub(crate) fn charset(&self) -> Charset {
        self.charset
            .as_deref()
            .map_or(Charset::Utf8, Charset::from_name)
    }
}

/// A captured table: its MySQL columns and its key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct TableMeta {
    pub(crate) db: String,
    pub(crate) table: String,
    pub(crate) columns: Vec<MySqlColumn>,
    pub(crate) primary_key: Vec<String>,
    pub(crate) comment: Option<String>,
    /// The table's default character set: what a text column added or redefined without
    /// one gets. `None` in state written before it was tracked.
    #[serde(default)]
    pub(crate) charset: Option<String>,
}

impl TableMeta {
    pub(crate) fn table_id(&self) -> TableId {
        TableId::new(&self.db, &self.table)
    }

    /// Refuses a table with a text column in a character set the binlog decoder cannot
    /// read: its changes would stop the stream later, or worse, come out as wrong text.
    pub(crate) fn check_charsets(&self) -> Result<()> {
        for c in &self.columns {
            if let Some(name) = c.charset().unsupported() {
                return Err(Error::permanent(
                    format!("capturing {}.{}", self.db, self.table),
                    format!(
                        "column {}.{}.{} uses the character set {name}, which this source cannot decode",
                        self.db, self.table, c.name
                    ),
                )
                .with_hint(
                    "convert the column to a supported character set (ALTER TABLE ... MODIFY ... CHARACTER SET utf8mb4) or leave the table out of `tables`; docs/connectors/mysql.md lists the supported sets",
                ));
            }
        }
        Ok(())
    }

    /// The cdc-api schema of this table.
    pub(crate) fn to_schema(&self, tinyint1_as_boolean: bool, include_comments: bool) -> Schema {
        let columns = self
            .columns
            .iter()
            .map(|c| self::to_column(c, tinyint1_as_boolean, include_comments))
            .collect();
        let mut schema = Schema::new(columns).with_primary_key(self.primary_key.iter().cloned());
        if include_comments {
            schema.comment.clone_from(&self.comment);
        }
        schema
    }
}

pub(crate) fn to_column(
    c: &MySqlColumn,
    tinyint1_as_boolean: bool,
    include_comments: bool,
) -> Column {
    let mut column = Column::new(
        &c.name,
        to_data_type(&c.mysql_type(), c.nullable, tinyint1_as_boolean),
    );
    column.default.clone_from(&c.default);
    if include_comments {
        column.comment.clone_from(&c.comment);
    }
    column
}

type ColumnRow = (
    String,
    String,
    String,
    Option<String>,
    Option<String>,
    Option<String>,
    String,
    Option<String>,
);

/// Reads a table's definition from information_schema.
pub(crate) async fn load_table(
    conn: &mut mysql_async::Conn,
    db: &str,
    table: &str,
) -> Result<Option<TableMeta>> {
    let context = format!("reading the schema of {db}.{table}");
    let err = |e: mysql_async::Error| crate::error::from_mysql(&context, e);
    let rows: Vec<ColumnRow> = conn
        .exec(
            "SELECT COLUMN_NAME, COLUMN_TYPE, IS_NULLABLE, CHARACTER_SET_NAME, COLUMN_DEFAULT, \
             COLUMN_COMMENT, COLUMN_KEY, COLLATION_NAME FROM information_schema.COLUMNS \
             WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ? ORDER BY ORDINAL_POSITION",
            (db, table),
        )
        .await
        .map_err(err)?;
    if rows.is_empty() {
        return Ok(None);
    }
    let primary_key: Vec<String> = conn
        .exec(
            "SELECT COLUMN_NAME FROM information_schema.KEY_COLUMN_USAGE \
             WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ? AND CONSTRAINT_NAME = 'PRIMARY' \
             ORDER BY ORDINAL_POSITION",
            (db, table),
        )
        .await
        .map_err(err)?;
    let options: Option<(Option<String>, Option<String>, Option<String>)> = conn
        .exec_first(
            "SELECT T.TABLE_COMMENT, T.TABLE_COLLATION, C.CHARACTER_SET_NAME \
             FROM information_schema.TABLES T LEFT JOIN information_schema.COLLATIONS C \
             ON C.COLLATION_NAME = T.TABLE_COLLATION \
             WHERE T.TABLE_SCHEMA = ? AND T.TABLE_NAME = ?",
            (db, table),
        )
        .await
        .map_err(err)?;
    let (comment, collation, charset) = options.unwrap_or_default();
    let charset = charset.or_else(|| {
        collation
            .as_deref()
            .and_then(charset_of_collation)
            .map(str::to_string)
    });
    let columns = rows
        .into_iter()
        .map(
            |(name, type_text, nullable, charset, default, comment, _key, collation)| MySqlColumn {
                name,
                type_text,
                nullable: nullable.eq_ignore_ascii_case("YES"),
                charset,
                collation,
                // MariaDB shows a NULL default as the text NULL.
                default: default.filter(|d| d != "NULL"),
                comment: comment.filter(|c| !c.is_empty()),
            },
        )
        .collect();
    let meta = TableMeta {
        db: db.to_string(),
        table: table.to_string(),
        columns,
        primary_key,
        comment: comment.filter(|c| !c.is_empty()),
        charset,
    };
    meta.check_charsets()?;
    Ok(Some(meta))
}

/// Every base table the filter selects, sorted.
pub(crate) async fn list_tables(
    conn: &mut mysql_async::Conn,
    filter: &crate::table_filter::TableFilter,
) -> Result<Vec<(String, String)>> {
    let rows: Vec<(String, String)> = conn
        .query(
            "SELECT TABLE_SCHEMA, TABLE_NAME FROM information_schema.TABLES \
             WHERE TABLE_TYPE = 'BASE TABLE' \
             AND TABLE_SCHEMA NOT IN ('mysql', 'information_schema', 'performance_schema', 'sys') \
             ORDER BY TABLE_SCHEMA, TABLE_NAME",
        )
        .await
        .map_err(|e| crate::error::from_mysql("listing tables", e))?;
    Ok(rows
        .into_iter()
        .filter(|(d, t)| filter.matches(d, t))
        .collect())
}

/// A permanent error for a table whose rows cannot be decoded with the known schema.
pub(crate) fn mismatch(table: &TableId, detail: &str) -> Error {
    Error::permanent(format!("decoding rows of {table}"), detail.to_string()).with_hint(
        "the tracked schema does not match the binlog; restart with scan.startup.mode: initial into a fresh state directory",
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_with_undecodable_charsets_are_refused_by_name() {
        let column = |name: &str, charset: Option<&str>| MySqlColumn {
            name: name.into(),
            type_text: "varchar(10)".into(),
            nullable: true,
            charset: charset.map(str::to_string),
            collation: None,
            default: None,
            comment: None,
        };
        let mut meta = TableMeta {
            db: "d".into(),
            table: "t".into(),
            columns: vec![
                column("a", Some("utf8mb4")),
                column("b", Some("big5")),
                column("n", None),
            ],
            primary_key: Vec::new(),
            comment: None,
            charset: Some("utf8mb4".into()),
        };
        assert!(meta.check_charsets().is_ok());
        meta.columns.push(column("k", Some("klingon8")));
        let e = meta.check_charsets().unwrap_err();
        let text = e.to_string();
        assert!(
            text.contains("d.t.k") && text.contains("klingon8"),
            "{text}"
        );
        assert!(text.contains("(hint: convert the column"), "{text}");
    }
}
