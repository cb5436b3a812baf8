use std::fmt;

use serde::{Deserialize, Serialize};

/// Identifies a table: an optional namespace, an optional schema and a table name.
///
/// For MySQL and MariaDB the schema is the database and the namespace is unused, so
/// `TableId::new("shop", "orders")` names `shop.orders`. [`Display`](fmt::Display) joins the
/// present parts with dots.
///
/// ```
/// use cdc_api::TableId;
/// let id = TableId::new("shop", "orders");
/// assert_eq!(id.to_string(), "shop.orders");
/// assert_eq!(TableId::parse("shop.orders"), Some(id));
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct TableId {
    /// The namespace (catalog), when the system has one. Unused for MySQL.
    pub namespace: Option<String>,
    /// The schema; for MySQL this is the database name.
    pub schema: Option<String>,
    /// The table name.
    pub table: String,
}

impl TableId {
    /// A table inside a schema (for MySQL: a table inside a database).
    pub fn new(schema: impl Into<String>, table: impl Into<String>) -> Self {
        Self {
            namespace: None,
            schema: Some(schema.into()),
            table: table.into(),
        }
    }

    /// A table with all three parts.
    pub fn with_namespace(
        namespace: impl Into<String>,
        schema: impl Into<String>,
        table: impl Into<String>,
    ) -> Self {
        Self {
            namespace: Some(namespace.into()),
            schema: Some(schema.into()),
            table: table.into(),
        }
    }

    /// Parses `table`, `schema.table` or `namespace.schema.table`. Returns `None` for an empty
    /// part or more than three parts.
    pub fn parse(text: &str) -> Option<Self> {
        let parts: Vec<&str> = text.split('.').collect();
        if parts.iter().any(|p| p.is_empty()) {
            return None;
        }
        match parts.as_slice() {
            [t] => Some(Self {
                namespace: None,
                schema: None,
                table: (*t).to_string(),
            }),
            [s, t] => Some(Self::new(*s, *t)),
            [n, s, t] => Some(Self::with_namespace(*n, *s, *t)),
            _ => None,
        }
    }

    /// The schema (database) name, or the empty string when there is none.
    pub fn schema_name(&self) -> &str {
        self.schema.as_deref().unwrap_or("")
    }
}

impl fmt::Display for TableId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(ns) = &self.namespace {
            write!(f, "{ns}.")?;
        }
        if let Some(s) = &self.schema {
            write!(f, "{s}.")?;
        }
        f.write_str(&self.table)
    }
}

/// Translates one Flink CDC table selector into an anchored regular expression over
/// `db.table`, the syntax of the MySQL source's `tables` and of `route` / `transform`
/// `source-table`: an unescaped `.` separates database and table (it matches a literal
/// dot), `\.` is the regex "any character", everything else is regex syntax. Compile the
/// result with any regex engine.
///
/// ```
/// assert_eq!(cdc_api::table_selector_regex("app.\\.*"), "^(?:app\\..*)$");
/// assert_eq!(cdc_api::table_selector_regex("db[1-2].t_[0-9]+"), "^(?:db[1-2]\\.t_[0-9]+)$");
/// ```
pub fn table_selector_regex(selector: &str) -> String {
    let mut out = String::with_capacity(selector.len() + 8);
    out.push_str("^(?:");
    let mut chars = selector.trim().chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' if chars.peek() == Some(&'.') => {
                chars.next();
                out.push('.');
            }
            '\\' => {
                out.push('\\');
                if let Some(n) = chars.next() {
                    out.push(n);
                }
            }
            '.' => out.push_str("\\."),
            other => out.push(other),
        }
    }
    out.push_str(")$");
    out
}
