//! StarRocks tables: column types with StarRocks' limits, PRIMARY KEY / DUPLICATE KEY rows,
//! and the asynchronous schema-change jobs.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use crate::doris::ColumnInfo;
use crate::doris::types::{DorisType, ValueError};

/// Longest VARCHAR, in bytes.
pub(crate) const MAX_VARCHAR: u32 = 1_048_576;
/// Longest CHAR, in bytes.
pub(crate) const MAX_CHAR: u32 = 255;
/// Largest DECIMAL precision.
pub(crate) const MAX_DECIMAL_PRECISION: u32 = 38;

/// A StarRocks column type. Values are checked through the Doris emulator's converters,
/// which share the text rules; the limits and printed names here are StarRocks'.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SrType {
    Boolean,
    TinyInt,
    SmallInt,
    Int,
    BigInt,
    LargeInt,
    Float,
    Double,
    Decimal {
        precision: u32,
        scale: u32,
    },
    Date,
    /// StarRocks DATETIME takes no scale but keeps microseconds.
    DateTime,
    Char(u32),
    Varchar(u32),
    Json,
}

impl SrType {
    /// Builds a type from its SQL name and arguments, enforcing StarRocks' limits.
    pub(crate) fn from_sql(name: &str, args: &[u32]) -> Result<Self, String> {
        let upper = name.to_ascii_uppercase();
        let no_args = |t: Self| {
            if args.is_empty() {
                Ok(t)
            } else {
                Err(format!(
                    "Getting syntax error. Detail message: type {upper} takes no arguments."
                ))
            }
        };
        match upper.as_str() {
            "BOOLEAN" | "BOOL" => no_args(Self::Boolean),
            "TINYINT" => Ok(Self::TinyInt),
            "SMALLINT" => Ok(Self::SmallInt),
            "INT" | "INTEGER" => Ok(Self::Int),
            "BIGINT" => Ok(Self::BigInt),
            "LARGEINT" => no_args(Self::LargeInt),
            "FLOAT" => no_args(Self::Float),
            "DOUBLE" => no_args(Self::Double),
            "DATE" => no_args(Self::Date),
            "DATETIME" => no_args(Self::DateTime),
            "JSON" => no_args(Self::Json),
            "STRING" => no_args(Self::Varchar(65533)),
            "DECIMAL" | "DECIMALV3" | "DECIMAL32" | "DECIMAL64" | "DECIMAL128" | "NUMERIC" => {
                let precision = args.first().copied().unwrap_or(10);
                let scale = args.get(1).copied().unwrap_or(0);
                if args.len() > 2 || precision == 0 || precision > MAX_DECIMAL_PRECISION {
                    return Err(format!(
                        "DECIMAL's precision should range from 1 to {MAX_DECIMAL_PRECISION}, got {precision}"
                    ));
                }
                if scale > precision {
                    return Err(format!(
                        "DECIMAL's scale should be less than or equal to precision, scale: {scale}, precision: {precision}"
                    ));
                }
                Ok(Self::Decimal { precision, scale })
            }
            "CHAR" => {
                let n = args.first().copied().unwrap_or(1);
                if n == 0 || n > MAX_CHAR || args.len() > 1 {
                    return Err(format!(
                        "Char size must be between 1 and {MAX_CHAR}, size: {n}"
                    ));
                }
                Ok(Self::Char(n))
            }
            "VARCHAR" => {
                let n = args.first().copied().unwrap_or(1);
                if n == 0 || n > MAX_VARCHAR || args.len() > 1 {
                    return Err(format!(
                        "Varchar size must be between 1 and {MAX_VARCHAR}, size: {n}"
                    ));
                }
                Ok(Self::Varchar(n))
            }
            _ => Err(format!("Unknown type: {name}")),
        }
    }

    fn as_doris(self) -> DorisType {
        match self {
            Self::Boolean => DorisType::Boolean,
            Self::TinyInt => DorisType::TinyInt,
            Self::SmallInt => DorisType::SmallInt,
            Self::Int => DorisType::Int,
            Self::BigInt => DorisType::BigInt,
            Self::LargeInt => DorisType::LargeInt,
            Self::Float => DorisType::Float,
            Self::Double => DorisType::Double,
            Self::Decimal { precision, scale } => DorisType::Decimal { precision, scale },
            Self::Date => DorisType::Date,
            Self::DateTime => DorisType::DateTime { scale: 6 },
            Self::Char(n) => DorisType::Char(n),
            Self::Varchar(n) => DorisType::Varchar(n),
            Self::Json => DorisType::Json,
        }
    }

    /// The type as `DESC` prints it.
    pub(crate) fn text(self) -> String {
        match self {
            Self::Decimal { precision, scale } => format!("DECIMAL({precision},{scale})"),
            Self::DateTime => "DATETIME".into(),
            other => other.as_doris().text(),
        }
    }

    /// Why this type cannot be a key column; `None` if it can.
    pub(crate) fn key_error(self, column: &str) -> Option<String> {
        match self {
            Self::Float | Self::Double | Self::Decimal { .. } | Self::Json => Some(format!(
                "Invalid data type of key column '{column}': '{}'",
                self.text()
            )),
            _ => None,
        }
    }

    /// Whether `MODIFY COLUMN` may change this type to `to`.
    pub(crate) fn can_change_to(self, to: Self) -> Result<(), String> {
        if self == to {
            return Ok(());
        }
        self.as_doris()
            .can_widen_to(to.as_doris())
            .map_err(|_| format!("Can not change {} to {}", self.text(), to.text()))
    }

    /// Converts a loaded text value into the text `SELECT` shows.
    pub(crate) fn convert(self, raw: &str, column: &str) -> Result<String, ValueError> {
        if let Self::Varchar(len) | Self::Char(len) = self {
            // StarRocks counts bytes and words the error as
            // OlapTableSink::_print_varchar_error_msg (be/src/exec/tablet_sink.cpp) does.
            if raw.len() > len as usize {
                let shown: String = if raw.len() > 100 {
                    format!("{}...", raw.chars().take(100).collect::<String>())
                } else {
                    raw.to_string()
                };
                return Err(ValueError::Range(format!(
                    "String '{shown}'(length={}) is too long. The max length of '{column}' is {len}",
                    raw.len()
                )));
            }
        }
        let text = self.as_doris().convert(raw, column)?;
        Ok(match self {
            // StarRocks prints the fraction of a DATETIME only when it is not zero.
            Self::DateTime => text.strip_suffix(".000000").unwrap_or(&text).to_string(),
            Self::Json => {
                let value: serde_json::Value =
                    serde_json::from_str(&text).map_err(|_| ValueError::Convert)?;
                let mut out = String::with_capacity(text.len() + 8);
                write_json(&mut out, &value);
                out
            }
            _ => text,
        })
    }
}

/// JSON as StarRocks prints a JSON column (velocypack's single-line pretty print): `": "`
/// after keys and `", "` between items, `{"k": [1, 2]}`; keys stay in their given order.
fn write_json(out: &mut String, value: &serde_json::Value) {
    match value {
        serde_json::Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                write_json(out, item);
            }
            out.push(']');
        }
        serde_json::Value::Object(map) => {
            out.push('{');
            for (i, (key, item)) in map.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                out.push_str(&serde_json::Value::String(key.clone()).to_string());
                out.push_str(": ");
                write_json(out, item);
            }
            out.push('}');
        }
        scalar => out.push_str(&scalar.to_string()),
    }
}

/// A stored row; `None` = NULL.
pub(crate) type Row = Vec<Option<String>>;

/// One column.
#[derive(Debug, Clone)]
pub(crate) struct Column {
    pub(crate) name: String,
    pub(crate) ty: SrType,
    pub(crate) nullable: bool,
    /// Stored text of the default (`CURRENT_TIMESTAMP` kept as the keyword).
    pub(crate) default: Option<String>,
    pub(crate) comment: String,
}

impl Column {
    pub(crate) fn info(&self, is_key: bool) -> ColumnInfo {
        ColumnInfo {
            name: self.name.clone(),
            type_text: self.ty.text(),
            nullable: self.nullable,
            is_key,
            comment: self.comment.clone(),
        }
    }

    /// The value a row gets when the load does not give this column.
    pub(crate) fn fill_value(&self) -> Option<String> {
        match self.default.as_deref() {
            Some(d) if d.eq_ignore_ascii_case("CURRENT_TIMESTAMP") => {
                Some("1970-01-01 00:00:00".into())
            }
            Some(d) => self.ty.convert(d, &self.name).ok(),
            None => None,
        }
    }
}

/// PRIMARY KEY (one row per key; `__op` deletes) or DUPLICATE KEY (append).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum KeysType {
    Primary,
    Duplicate,
}

/// A schema change waiting to take effect.
#[derive(Debug, Clone)]
pub(crate) enum AlterAction {
    Add(Vec<(Column, Option<String>)>),
    Drop(Vec<String>),
    Rename(String, String),
    Modify(Column),
}

/// An `ALTER TABLE ... COLUMN` job as `SHOW ALTER TABLE COLUMN` lists it.
#[derive(Debug, Clone)]
pub(crate) struct AlterJob {
    pub(crate) job_id: i64,
    pub(crate) db: String,
    pub(crate) table: String,
    pub(crate) create_time: String,
    pub(crate) finish_time: Option<String>,
    pub(crate) started: Instant,
    pub(crate) duration: Duration,
    /// `None` once applied.
    pub(crate) action: Option<AlterAction>,
    pub(crate) state: &'static str,
}

/// A table.
#[derive(Debug, Clone)]
pub(crate) struct Table {
    pub(crate) columns: Vec<Column>,
    pub(crate) keys_type: KeysType,
    /// The first `key_count` columns are the key.
    pub(crate) key_count: usize,
    pub(crate) buckets: Option<u32>,
    pub(crate) properties: BTreeMap<String, String>,
    pub(crate) comment: String,
    pub(crate) rows: Vec<Row>,
    /// The running ALTER job, if any.
    pub(crate) running_job: Option<i64>,
}

impl Table {
    pub(crate) fn column_index(&self, name: &str) -> Option<usize> {
        self.columns
            .iter()
            .position(|c| c.name.eq_ignore_ascii_case(name))
    }

    /// Rows sorted, as tests compare them.
    pub(crate) fn sorted_rows(&self) -> Vec<Row> {
        let mut rows = self.rows.clone();
        rows.sort();
        rows
    }

    /// Upserts (or with `delete` removes) a row by key; DUPLICATE tables append.
    /// `present` says which columns the row gives (partial update): the others keep their
    /// stored value, or their default for a new row.
    pub(crate) fn apply(&mut self, row: Row, present: Option<&[bool]>, delete: bool) {
        if self.keys_type == KeysType::Duplicate {
            if !delete {
                self.rows.push(row);
            }
            return;
        }
        let k = self.key_count;
        let pos = self.rows.iter().position(|r| r[..k] == row[..k]);
        match (pos, delete) {
            (Some(i), true) => {
                self.rows.swap_remove(i);
            }
            (None, true) => {}
            (Some(i), false) => match present {
                Some(mask) => {
                    for (j, v) in row.into_iter().enumerate() {
                        if mask.get(j).copied().unwrap_or(true) {
                            self.rows[i][j] = v;
                        }
                    }
                }
                None => self.rows[i] = row,
            },
            (None, false) => {
                let mut row = row;
                if let Some(mask) = present {
                    for (j, c) in self.columns.iter().enumerate() {
                        if !mask.get(j).copied().unwrap_or(true) {
                            row[j] = c.fill_value();
                        }
                    }
                }
                self.rows.push(row);
            }
        }
    }

    /// Applies a finished schema change to the columns and rows.
    pub(crate) fn apply_alter(&mut self, action: AlterAction) {
        match action {
            AlterAction::Add(cols) => {
                for (col, after) in cols {
                    let at = match after.as_deref() {
                        Some("") => self.key_count,
                        Some(a) => self.column_index(a).map_or(self.columns.len(), |i| i + 1),
                        None => self.columns.len(),
                    };
                    let fill = col.fill_value();
                    self.columns.insert(at, col);
                    for r in &mut self.rows {
                        r.insert(at, fill.clone());
                    }
                }
            }
            AlterAction::Drop(names) => {
                for n in names {
                    if let Some(i) = self.column_index(&n) {
                        self.columns.remove(i);
                        for r in &mut self.rows {
                            r.remove(i);
                        }
                    }
                }
            }
            AlterAction::Rename(from, to) => {
                if let Some(i) = self.column_index(&from) {
                    self.columns[i].name = to;
                }
            }
            AlterAction::Modify(col) => {
                if let Some(i) = self.column_index(&col.name) {
                    let name = col.name.clone();
                    for r in &mut self.rows {
                        if let Some(v) = r[i].take() {
                            r[i] = col.ty.convert(&v, &name).ok();
                        }
                    }
                    self.columns[i] = col;
                }
            }
        }
    }

    /// `SHOW CREATE TABLE` text.
    pub(crate) fn create_sql(&self, name: &str) -> String {
        let mut s = format!("CREATE TABLE `{name}` (\n");
        let cols: Vec<String> = self
            .columns
            .iter()
            .map(|c| {
                let mut d = format!(
                    "  `{}` {} {}",
                    c.name,
                    c.ty.text().to_ascii_lowercase(),
                    if c.nullable { "NULL" } else { "NOT NULL" }
                );
                if let Some(v) = &c.default {
                    d.push_str(&format!(" DEFAULT \"{v}\""));
                }
                d.push_str(&format!(" COMMENT \"{}\"", c.comment));
                d
            })
            .collect();
        s.push_str(&cols.join(",\n"));
        let keys: Vec<String> = self.columns[..self.key_count]
            .iter()
            .map(|c| format!("`{}`", c.name))
            .collect();
        let model = match self.keys_type {
            KeysType::Primary => "PRIMARY KEY",
            KeysType::Duplicate => "DUPLICATE KEY",
        };
        s.push_str(&format!(
            "\n) ENGINE=OLAP\n{model}({})\nCOMMENT \"{}\"\nDISTRIBUTED BY HASH({})",
            keys.join(", "),
            self.comment,
            keys.join(", ")
        ));
        if let Some(b) = self.buckets {
            s.push_str(&format!(" BUCKETS {b}"));
        }
        let props: Vec<String> = self
            .properties
            .iter()
            .map(|(k, v)| format!("\"{k}\" = \"{v}\""))
            .collect();
        s.push_str(&format!("\nPROPERTIES (\n{}\n);", props.join(",\n")));
        s
    }
}

/// A database.
#[derive(Debug, Clone, Default)]
pub(crate) struct Database {
    pub(crate) tables: BTreeMap<String, Table>,
}
