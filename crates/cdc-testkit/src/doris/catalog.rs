//! Databases, tables and their rows.

use std::collections::BTreeMap;

use super::model::{ColumnInfo, TableModel};
use super::types::DorisType;

/// A stored row: one text value per column (`None` = NULL), in column order.
pub(crate) type Row = Vec<Option<String>>;

/// A column definition.
#[derive(Debug, Clone)]
pub(crate) struct Column {
    /// Doris's column unique id: stays with the column through RENAME and MODIFY, so a
    /// load written before a rename still lands in the renamed column (light schema change
    /// binds loads by id, not by name).
    pub(crate) uid: u32,
    pub(crate) name: String,
    pub(crate) ty: DorisType,
    pub(crate) nullable: bool,
    pub(crate) is_key: bool,
    /// Default value as text; `Some(None)` = `DEFAULT NULL`.
    #[allow(clippy::option_option)] // absent vs DEFAULT NULL vs a value
    pub(crate) default: Option<Option<String>>,
    pub(crate) comment: String,
}

impl Column {
    pub(crate) fn info(&self) -> ColumnInfo {
        ColumnInfo {
            name: self.name.clone(),
            type_text: self.ty.text(),
            nullable: self.nullable,
            is_key: self.is_key,
            comment: self.comment.clone(),
        }
    }

    /// The value a row gets when a load or `ADD COLUMN` does not give one.
    pub(crate) fn default_value(&self) -> Option<String> {
        match &self.default {
            Some(Some(v)) if v.eq_ignore_ascii_case("CURRENT_TIMESTAMP") => Some(match self.ty {
                DorisType::Date => "1970-01-01".into(),
                _ => "1970-01-01 00:00:00".into(),
            }),
            Some(v) => v.clone(),
            None => None,
        }
    }
}

/// A row of a UNIQUE table with its version state.
#[derive(Debug, Clone)]
pub(crate) struct UniqueRow {
    pub(crate) values: Row,
    pub(crate) deleted: bool,
    pub(crate) seq: Option<String>,
}

/// A table.
#[derive(Debug, Clone)]
pub(crate) struct Table {
    /// Unique per table ever created: a load pre-committed into a table that was dropped
    /// and created again must not land in the new one.
    pub(crate) id: i64,
    /// The next column unique id.
    pub(crate) next_uid: u32,
    pub(crate) name: String,
    pub(crate) columns: Vec<Column>,
    pub(crate) model: TableModel,
    pub(crate) comment: String,
    pub(crate) distribution: Vec<String>,
    pub(crate) buckets: Option<u32>,
    pub(crate) properties: Vec<(String, String)>,
    /// UNIQUE rows keyed by key values.
    pub(crate) unique_rows: BTreeMap<Row, UniqueRow>,
    /// DUPLICATE rows in load order.
    pub(crate) dup_rows: Vec<Row>,
}

impl Table {
    pub(crate) fn property(&self, key: &str) -> Option<&str> {
        self.properties
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(key))
            .map(|(_, v)| v.as_str())
    }

    pub(crate) fn column_index(&self, name: &str) -> Option<usize> {
        self.columns
            .iter()
            .position(|c| c.name.eq_ignore_ascii_case(name))
    }

    pub(crate) fn key_indexes(&self) -> Vec<usize> {
        (0..self.columns.len())
            .filter(|i| self.columns[*i].is_key)
            .collect()
    }

    /// The sequence column of a UNIQUE table, from `function_column.sequence_col`.
    pub(crate) fn sequence_column(&self) -> Option<usize> {
        self.property("function_column.sequence_col")
            .and_then(|c| self.column_index(c))
    }

    /// Whether the table uses merge-on-write (the default for UNIQUE tables).
    pub(crate) fn merge_on_write(&self) -> bool {
        self.model == TableModel::Unique
            && self
                .property("enable_unique_key_merge_on_write")
                .is_none_or(|v| !v.eq_ignore_ascii_case("false"))
    }

    pub(crate) fn light_schema_change(&self) -> bool {
        self.property("light_schema_change")
            .is_none_or(|v| !v.eq_ignore_ascii_case("false"))
    }

    /// Visible rows, sorted.
    pub(crate) fn visible_rows(&self) -> Vec<Row> {
        let mut rows: Vec<Row> = match self.model {
            TableModel::Unique => self
                .unique_rows
                .values()
                .filter(|r| !r.deleted)
                .map(|r| r.values.clone())
                .collect(),
            TableModel::Duplicate => self.dup_rows.clone(),
        };
        rows.sort();
        rows
    }

    /// Applies `f` to every stored row (schema changes).
    pub(crate) fn for_each_row(&mut self, mut f: impl FnMut(&mut Row)) {
        for row in &mut self.dup_rows {
            f(row);
        }
        let old = std::mem::take(&mut self.unique_rows);
        let keys = self.key_indexes();
        for (_, mut row) in old {
            f(&mut row.values);
            let key: Row = keys.iter().map(|i| row.values[*i].clone()).collect();
            self.unique_rows.insert(key, row);
        }
    }

    pub(crate) fn truncate(&mut self) {
        self.unique_rows.clear();
        self.dup_rows.clear();
    }

    /// Upserts (or deletes) one full row of a UNIQUE table, honouring the sequence column.
    pub(crate) fn apply_unique(&mut self, values: Row, delete: bool) {
        let keys = self.key_indexes();
        let key: Row = keys.iter().map(|i| values[*i].clone()).collect();
        let seq_col = self.sequence_column();
        let seq = seq_col.and_then(|i| values[i].clone());
        if let (Some(i), Some(existing)) = (seq_col, self.unique_rows.get(&key)) {
            let ty = self.columns[i].ty;
            let older = match (&seq, &existing.seq) {
                (Some(new), Some(old)) => ty.compare(new, old).is_lt(),
                (None, Some(_)) => true,
                _ => false,
            };
            if older {
                return;
            }
        }
        self.unique_rows.insert(
            key,
            UniqueRow {
                values,
                deleted: delete,
                seq,
            },
        );
    }

    /// The current visible row with this key, if any.
    pub(crate) fn unique_row(&self, key: &Row) -> Option<&Row> {
        self.unique_rows
            .get(key)
            .filter(|r| !r.deleted)
            .map(|r| &r.values)
    }

    /// `SHOW CREATE TABLE` text.
    pub(crate) fn create_sql(&self, db: &str) -> String {
        let mut s = format!("CREATE TABLE `{}` (\n", self.name);
        let cols: Vec<String> = self
            .columns
            .iter()
            .map(|c| {
                let mut d = format!(
                    "  `{}` {} {}",
                    c.name,
                    c.ty.text(),
                    if c.nullable { "NULL" } else { "NOT NULL" }
                );
                match &c.default {
                    Some(Some(v)) if v.eq_ignore_ascii_case("CURRENT_TIMESTAMP") => {
                        d.push_str(" DEFAULT CURRENT_TIMESTAMP");
                    }
                    Some(Some(v)) => d.push_str(&format!(" DEFAULT \"{v}\"")),
                    Some(None) => d.push_str(" DEFAULT NULL"),
                    None => {}
                }
                if !c.comment.is_empty() {
                    d.push_str(&format!(" COMMENT '{}'", c.comment.replace('\'', "\\'")));
                }
                d
            })
            .collect();
        s.push_str(&cols.join(",\n"));
        let keys: Vec<String> = self
            .columns
            .iter()
            .filter(|c| c.is_key)
            .map(|c| format!("`{}`", c.name))
            .collect();
        let model = match self.model {
            TableModel::Unique => "UNIQUE",
            TableModel::Duplicate => "DUPLICATE",
        };
        s.push_str(&format!(
            "\n) ENGINE=OLAP\n{model} KEY({})",
            keys.join(", ")
        ));
        s.push_str(&format!(
            "\nCOMMENT '{}'",
            self.comment.replace('\'', "\\'")
        ));
        let buckets = self
            .buckets
            .map_or_else(|| "AUTO".to_string(), |b| b.to_string());
        if self.distribution.is_empty() {
            s.push_str(&format!("\nDISTRIBUTED BY RANDOM BUCKETS {buckets}"));
        } else {
            let d: Vec<String> = self.distribution.iter().map(|c| format!("`{c}`")).collect();
            s.push_str(&format!(
                "\nDISTRIBUTED BY HASH({}) BUCKETS {buckets}",
                d.join(", ")
            ));
        }
        let props: Vec<String> = self
            .properties
            .iter()
            .map(|(k, v)| format!("\"{k}\" = \"{v}\""))
            .collect();
        s.push_str(&format!("\nPROPERTIES (\n{}\n);", props.join(",\n")));
        let _ = db;
        s
    }
}

/// A database.
#[derive(Debug, Clone, Default)]
pub(crate) struct Database {
    pub(crate) tables: BTreeMap<String, Table>,
}

/// All databases.
#[derive(Debug, Clone, Default)]
pub(crate) struct Catalog {
    pub(crate) databases: BTreeMap<String, Database>,
}

impl Catalog {
    pub(crate) fn table(&self, db: &str, table: &str) -> Option<&Table> {
        self.databases.get(db)?.tables.get(table)
    }

    pub(crate) fn table_mut(&mut self, db: &str, table: &str) -> Option<&mut Table> {
        self.databases.get_mut(db)?.tables.get_mut(table)
    }
}
