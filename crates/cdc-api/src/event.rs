use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::{Column, DataType, Schema, TableId, Value};

/// Everything that flows through a pipeline, in order.
///
/// A table's [`SchemaChangeEvent::CreateTable`] always comes before any of its data; a
/// [`DataChangeEvent`]'s rows follow the table's schema as of that point in the stream.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    /// A row was inserted, updated or deleted.
    DataChange(DataChangeEvent),
    /// A table's shape changed (or the table was created, truncated or dropped).
    SchemaChange(SchemaChangeEvent),
}

impl Event {
    /// The table the event belongs to.
    pub fn table_id(&self) -> &TableId {
        match self {
            Self::DataChange(e) => &e.table_id,
            Self::SchemaChange(e) => e.table_id(),
        }
    }
}

impl From<DataChangeEvent> for Event {
    fn from(e: DataChangeEvent) -> Self {
        Self::DataChange(e)
    }
}

impl From<SchemaChangeEvent> for Event {
    fn from(e: SchemaChangeEvent) -> Self {
        Self::SchemaChange(e)
    }
}

/// What a [`DataChangeEvent`] did to its row.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum OperationType {
    /// A new row (`after` only). Snapshot rows are inserts.
    Insert,
    /// A changed row (`before` and `after`).
    Update,
    /// A removed row (`before` only).
    Delete,
    /// The row is replaced whole by `after` (upsert semantics, no before image).
    Replace,
}

impl OperationType {
    /// The short tag Flink CDC shows in `__data_event_type__`: `+I`, `+U`, `-D`, `+R`.
    pub fn short_tag(self) -> &'static str {
        match self {
            Self::Insert => "+I",
            Self::Update => "+U",
            Self::Delete => "-D",
            Self::Replace => "+R",
        }
    }
}

/// A change to one row of one table.
///
/// ```
/// use cdc_api::{DataChangeEvent, OperationType, TableId, Value};
/// let e = DataChangeEvent::insert(TableId::new("shop", "orders"), vec![Value::BigInt(1)]);
/// assert_eq!(e.op, OperationType::Insert);
/// assert_eq!(e.row(), Some(&[Value::BigInt(1)][..]));
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct DataChangeEvent {
    /// The table whose row changed.
    pub table_id: TableId,
    /// What happened.
    pub op: OperationType,
    /// The row before the change (updates and deletes), by column position.
    pub before: Option<Vec<Value>>,
    /// The row after the change (inserts, updates, replaces), by column position.
    pub after: Option<Vec<Value>>,
    /// Source metadata such as `op_ts` (commit time, milliseconds since the epoch).
    pub meta: BTreeMap<String, String>,
}

impl DataChangeEvent {
    /// An insert of `after`.
    pub fn insert(table_id: TableId, after: Vec<Value>) -> Self {
        Self::new(table_id, OperationType::Insert, None, Some(after))
    }

    /// An update from `before` to `after`.
    pub fn update(table_id: TableId, before: Vec<Value>, after: Vec<Value>) -> Self {
        Self::new(table_id, OperationType::Update, Some(before), Some(after))
    }

    /// A delete of `before`.
    pub fn delete(table_id: TableId, before: Vec<Value>) -> Self {
        Self::new(table_id, OperationType::Delete, Some(before), None)
    }

    /// A whole-row replace with `after`.
    pub fn replace(table_id: TableId, after: Vec<Value>) -> Self {
        Self::new(table_id, OperationType::Replace, None, Some(after))
    }

    fn new(
        table_id: TableId,
        op: OperationType,
        before: Option<Vec<Value>>,
        after: Option<Vec<Value>>,
    ) -> Self {
        Self {
            table_id,
            op,
            before,
            after,
            meta: BTreeMap::new(),
        }
    }

    /// The same event with one metadata entry added.
    pub fn with_meta(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.meta.insert(key.into(), value.into());
        self
    }

    /// The row that describes the result: `after`, or `before` for a delete.
    pub fn row(&self) -> Option<&[Value]> {
        self.after.as_deref().or(self.before.as_deref())
    }
}

/// Where an added column goes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ColumnPosition {
    /// At the end (the default).
    Last,
    /// Before all other columns.
    First,
    /// Right before the named column.
    Before(String),
    /// Right after the named column.
    After(String),
}

/// The tag of a schema change kind, as used by `include.schema.changes` /
/// `exclude.schema.changes` (`add.column`, `drop.table`, ...).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum SchemaChangeKind {
    /// `create.table`
    CreateTable,
    /// `add.column`
    AddColumn,
    /// `drop.column`
    DropColumn,
    /// `rename.column`
    RenameColumn,
    /// `alter.column.type`
    AlterColumnType,
    /// `truncate.table`
    TruncateTable,
    /// `drop.table`
    DropTable,
    /// `alter.table.comment`
    AlterTableComment,
}

impl SchemaChangeKind {
    /// Every kind, in a stable order.
    pub const ALL: [Self; 8] = [
        Self::CreateTable,
        Self::AddColumn,
        Self::DropColumn,
        Self::RenameColumn,
        Self::AlterColumnType,
        Self::TruncateTable,
        Self::DropTable,
        Self::AlterTableComment,
    ];

    /// The Flink CDC tag, such as `add.column`.
    pub fn tag(self) -> &'static str {
        match self {
            Self::CreateTable => "create.table",
            Self::AddColumn => "add.column",
            Self::DropColumn => "drop.column",
            Self::RenameColumn => "rename.column",
            Self::AlterColumnType => "alter.column.type",
            Self::TruncateTable => "truncate.table",
            Self::DropTable => "drop.table",
            Self::AlterTableComment => "alter.table.comment",
        }
    }

    /// The kinds a tag selects; partial tags match by prefix, as in Flink CDC (`drop`
    /// selects `drop.column` and `drop.table`).
    pub fn matching(tag: &str) -> Vec<Self> {
        Self::ALL
            .into_iter()
            .filter(|k| {
                let full = k.tag();
                full == tag || full.starts_with(&format!("{tag}."))
            })
            .collect()
    }
}

impl fmt::Display for SchemaChangeKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.tag())
    }
}

/// A change to a table's shape, in stream order with the data.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub enum SchemaChangeEvent {
    /// A table appears with this schema; comes before any of its rows.
    CreateTable {
        /// The table.
        table_id: TableId,
        /// Its full schema.
        schema: Schema,
    },
    /// Columns are added, each at its position (applied in order).
    AddColumn {
        /// The table.
        table_id: TableId,
        /// New columns with where they go.
        columns: Vec<(Column, ColumnPosition)>,
    },
    /// Columns are removed.
    DropColumn {
        /// The table.
        table_id: TableId,
        /// Names of the removed columns.
        columns: Vec<String>,
    },
    /// Columns are renamed (old name -> new name).
    RenameColumn {
        /// The table.
        table_id: TableId,
        /// Pairs of (old name, new name).
        renames: Vec<(String, String)>,
    },
    /// Column types change (name -> new type; comments where known).
    AlterColumnType {
        /// The table.
        table_id: TableId,
        /// Pairs of (column name, new type).
        types: Vec<(String, DataType)>,
        /// New comments by column name, where the change set one.
        comments: BTreeMap<String, String>,
    },
    /// All rows are removed; the table stays.
    TruncateTable {
        /// The table.
        table_id: TableId,
    },
    /// The table is removed.
    DropTable {
        /// The table.
        table_id: TableId,
    },
    /// The table comment changes.
    AlterTableComment {
        /// The table.
        table_id: TableId,
        /// The new comment (empty to clear it).
        comment: String,
    },
}

impl SchemaChangeEvent {
    /// The table the change applies to.
    pub fn table_id(&self) -> &TableId {
        match self {
            Self::CreateTable { table_id, .. }
            | Self::AddColumn { table_id, .. }
            | Self::DropColumn { table_id, .. }
            | Self::RenameColumn { table_id, .. }
            | Self::AlterColumnType { table_id, .. }
            | Self::TruncateTable { table_id }
            | Self::DropTable { table_id }
            | Self::AlterTableComment { table_id, .. } => table_id,
        }
    }

    /// The same change applied to another table (used by routing).
    pub fn with_table_id(&self, new_id: TableId) -> Self {
        let mut copy = self.clone();
        match &mut copy {
            Self::CreateTable { table_id, .. }
            | Self::AddColumn { table_id, .. }
            | Self::DropColumn { table_id, .. }
            | Self::RenameColumn { table_id, .. }
            | Self::AlterColumnType { table_id, .. }
            | Self::TruncateTable { table_id }
            | Self::DropTable { table_id }
            | Self::AlterTableComment { table_id, .. } => *table_id = new_id,
        }
        copy
    }

    /// Its kind, for include/exclude filtering and applier support checks.
    pub fn kind(&self) -> SchemaChangeKind {
        match self {
            Self::CreateTable { .. } => SchemaChangeKind::CreateTable,
            Self::AddColumn { .. } => SchemaChangeKind::AddColumn,
            Self::DropColumn { .. } => SchemaChangeKind::DropColumn,
            Self::RenameColumn { .. } => SchemaChangeKind::RenameColumn,
            Self::AlterColumnType { .. } => SchemaChangeKind::AlterColumnType,
            Self::TruncateTable { .. } => SchemaChangeKind::TruncateTable,
            Self::DropTable { .. } => SchemaChangeKind::DropTable,
            Self::AlterTableComment { .. } => SchemaChangeKind::AlterTableComment,
        }
    }

    /// Applies this change to `schema` (the table's schema before it), giving the schema
    /// after it. `CreateTable` replaces the schema; `TruncateTable` and `DropTable` leave it
    /// as it is. Fails with a message when the change names a column that does not exist.
    pub fn apply_to(&self, schema: &Schema) -> Result<Schema, String> {
        let mut next = schema.clone();
        match self {
            Self::CreateTable { schema, .. } => return Ok(schema.clone()),
            Self::AddColumn { columns, .. } => {
                for (column, position) in columns {
                    if next.column_index(&column.name).is_some() {
                        return Err(format!("column `{}` already exists", column.name));
                    }
                    let at = match position {
                        ColumnPosition::Last => next.columns.len(),
                        ColumnPosition::First => 0,
                        ColumnPosition::Before(name) => index_of(&next, name)?,
                        ColumnPosition::After(name) => index_of(&next, name)? + 1,
                    };
                    next.columns.insert(at, column.clone());
                }
            }
            Self::DropColumn { columns, .. } => {
                for name in columns {
                    let at = index_of(&next, name)?;
                    next.columns.remove(at);
                    next.primary_key.retain(|k| k != name);
                    next.partition_keys.retain(|k| k != name);
                }
            }
            Self::RenameColumn { renames, .. } => {
                for (old, new) in renames {
                    let at = index_of(&next, old)?;
                    next.columns[at].name.clone_from(new);
                    for k in next
                        .primary_key
                        .iter_mut()
                        .chain(next.partition_keys.iter_mut())
                    {
                        if k == old {
                            k.clone_from(new);
                        }
                    }
                }
            }
            Self::AlterColumnType {
                types, comments, ..
            } => {
                for (name, data_type) in types {
                    let at = index_of(&next, name)?;
                    next.columns[at].data_type = data_type.clone();
                }
                for (name, comment) in comments {
                    let at = index_of(&next, name)?;
                    next.columns[at].comment = Some(comment.clone());
                }
            }
            Self::AlterTableComment { comment, .. } => {
                next.comment = (!comment.is_empty()).then(|| comment.clone());
            }
            Self::TruncateTable { .. } | Self::DropTable { .. } => {}
        }
        Ok(next)
    }
}

fn index_of(schema: &Schema, name: &str) -> Result<usize, String> {
    schema
        .column_index(name)
        .ok_or_else(|| format!("column `{name}` does not exist"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::DataTypeKind;

    fn int(name: &str) -> Column {
        Column::new(name, DataType::new(DataTypeKind::Int))
    }

    #[test]
    fn schema_changes_apply_in_order() {
        let t = TableId::new("db", "t");
        let base = Schema::new(vec![int("a"), int("b")]).with_primary_key(["a"]);
        let added = SchemaChangeEvent::AddColumn {
            table_id: t.clone(),
            columns: vec![
                (int("z"), ColumnPosition::First),
                (int("c"), ColumnPosition::After("a".into())),
            ],
        }
        .apply_to(&base)
        .unwrap();
        assert_eq!(
            added.column_names().collect::<Vec<_>>(),
            ["z", "a", "c", "b"]
        );
        let renamed = SchemaChangeEvent::RenameColumn {
            table_id: t.clone(),
            renames: vec![("a".into(), "id".into())],
        }
        .apply_to(&added)
        .unwrap();
        assert_eq!(renamed.primary_key, ["id"]);
        let err = SchemaChangeEvent::DropColumn {
            table_id: t,
            columns: vec!["nope".into()],
        }
        .apply_to(&renamed)
        .unwrap_err();
        assert!(err.contains("nope"));
    }

    #[test]
    fn partial_tags_match_by_prefix() {
        assert_eq!(
            SchemaChangeKind::matching("drop"),
            vec![SchemaChangeKind::DropColumn, SchemaChangeKind::DropTable]
        );
        assert_eq!(
            SchemaChangeKind::matching("add.column"),
            vec![SchemaChangeKind::AddColumn]
        );
        assert!(SchemaChangeKind::matching("dro").is_empty());
    }
}
