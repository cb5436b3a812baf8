use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::DataType;

/// One column of a [`Schema`].
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Column {
    /// The column name as in the source.
    pub name: String,
    /// Type and nullability.
    pub data_type: DataType,
    /// The default value as SQL text (`'abc'`, `0`, `CURRENT_TIMESTAMP`), if any.
    pub default: Option<String>,
    /// The column comment, if any.
    pub comment: Option<String>,
}

impl Column {
    /// A column with no default and no comment.
    pub fn new(name: impl Into<String>, data_type: DataType) -> Self {
        Self {
            name: name.into(),
            data_type,
            default: None,
            comment: None,
        }
    }

    /// The same column with a comment.
    pub fn with_comment(mut self, comment: impl Into<String>) -> Self {
        self.comment = Some(comment.into());
        self
    }

    /// The same column with a default value (SQL text).
    pub fn with_default(mut self, default: impl Into<String>) -> Self {
        self.default = Some(default.into());
        self
    }
}

/// The shape of a table: columns in order, primary key, partition keys, options, comment.
///
/// Rows in [`DataChangeEvent`](crate::DataChangeEvent)s are positional and follow the columns
/// of the table's current schema. Schemas are cheap to share behind an `Arc`.
///
/// ```
/// use cdc_api::{Column, DataType, DataTypeKind, Schema};
/// let schema = Schema::new(vec![
///     Column::new("id", DataType::new(DataTypeKind::BigInt).not_null()),
///     Column::new("name", DataType::new(DataTypeKind::VarChar { length: 32 })),
/// ])
/// .with_primary_key(["id"]);
/// assert_eq!(schema.column_index("name"), Some(1));
/// assert_eq!(schema.primary_key_indexes(), vec![0]);
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Schema {
    /// Columns in table order.
    pub columns: Vec<Column>,
    /// Names of the primary-key columns, in key order. Empty when the table has none.
    pub primary_key: Vec<String>,
    /// Names of the partition-key columns (used by sinks that partition), in order.
    pub partition_keys: Vec<String>,
    /// Free-form table options (for example from a transform's `table-options`).
    pub options: BTreeMap<String, String>,
    /// The table comment, if any.
    pub comment: Option<String>,
}

impl Schema {
    /// A schema with these columns and nothing else.
    pub fn new(columns: Vec<Column>) -> Self {
        Self {
            columns,
            ..Self::default()
        }
    }

    /// The same schema with this primary key.
    pub fn with_primary_key<I, S>(mut self, names: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.primary_key = names.into_iter().map(Into::into).collect();
        self
    }

    /// The same schema with a table comment.
    pub fn with_comment(mut self, comment: impl Into<String>) -> Self {
        self.comment = Some(comment.into());
        self
    }

    /// The position of the named column.
    pub fn column_index(&self, name: &str) -> Option<usize> {
        self.columns.iter().position(|c| c.name == name)
    }

    /// The named column.
    pub fn column(&self, name: &str) -> Option<&Column> {
        self.columns.iter().find(|c| c.name == name)
    }

    /// Positions of the primary-key columns, in key order (names that do not resolve are
    /// left out).
    pub fn primary_key_indexes(&self) -> Vec<usize> {
        self.primary_key
            .iter()
            .filter_map(|k| self.column_index(k))
            .collect()
    }

    /// Column names in order.
    pub fn column_names(&self) -> impl Iterator<Item = &str> {
        self.columns.iter().map(|c| c.name.as_str())
    }
}
