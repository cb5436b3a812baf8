//! The compiled expression tree: what a projection item or a filter becomes once parsed.
//!
//! Parsing ([`super::parse`]) builds it with columns still named ([`Node::Column`]);
//! binding ([`super::bind`]) resolves names against a table's schema and gives every node
//! its result type, so the evaluator ([`super::eval`]) never looks at text again.

use cdc_api::{DataType, DataTypeKind, Value};
use regex::Regex;

/// One expression node with its result type and the SQL text it came from (for messages).
#[derive(Debug, Clone)]
pub(crate) struct Expr {
    pub(crate) node: Node,
    /// The result type; only meaningful after binding.
    pub(crate) ty: DataType,
    /// The SQL fragment, as the parser prints it back.
    pub(crate) text: String,
}

/// A metadata column, available when referenced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Meta {
    Namespace,
    Schema,
    Table,
    EventType,
    /// `op_ts`: commit time in milliseconds since the epoch (0 for snapshot rows).
    OpTs,
    /// `table_name`, `database_name`, `row_kind`: source metadata the MySQL source attaches
    /// when `metadata.list` names them.
    SourceTable,
    SourceDatabase,
    RowKind,
}

impl Meta {
    pub(crate) fn from_name(name: &str) -> Option<Self> {
        Some(match name {
            "__namespace_name__" => Self::Namespace,
            "__schema_name__" => Self::Schema,
            "__table_name__" => Self::Table,
            "__data_event_type__" => Self::EventType,
            "op_ts" => Self::OpTs,
            "table_name" => Self::SourceTable,
            "database_name" => Self::SourceDatabase,
            "row_kind" => Self::RowKind,
            _ => return None,
        })
    }

    /// Whether this is source metadata from the event's meta map: a plain name a real
    /// column may also have (the column wins), unlike the `__..__` names.
    pub(crate) fn is_source_metadata(self) -> bool {
        matches!(
            self,
            Self::OpTs | Self::SourceTable | Self::SourceDatabase | Self::RowKind
        )
    }

    pub(crate) fn data_type(self) -> DataType {
        match self {
            Self::Namespace | Self::Schema => DataType::new(DataTypeKind::String),
            Self::Table
            | Self::EventType
            | Self::SourceTable
            | Self::SourceDatabase
            | Self::RowKind => DataType::new(DataTypeKind::String).not_null(),
            Self::OpTs => DataType::new(DataTypeKind::BigInt).not_null(),
        }
    }
}

#[derive(Debug, Clone)]
pub(crate) enum Node {
    Literal(Value),
    /// A column by name, before binding.
    Column(String),
    /// A column of the input row, after binding.
    Input(usize),
    Meta(Meta),
    Unary(UnaryOp, Box<Expr>),
    Binary(BinaryOp, Box<Expr>, Box<Expr>),
    Between {
        expr: Box<Expr>,
        low: Box<Expr>,
        high: Box<Expr>,
        negated: bool,
    },
    In {
        expr: Box<Expr>,
        list: Vec<Expr>,
        negated: bool,
    },
    Like {
        expr: Box<Expr>,
        pattern: Box<Expr>,
        escape: Option<char>,
        negated: bool,
        /// The pattern compiled once when it is a literal.
        compiled: Option<Regex>,
    },
    Case {
        operand: Option<Box<Expr>>,
        branches: Vec<(Expr, Expr)>,
        otherwise: Option<Box<Expr>>,
    },
    Cast(Box<Expr>),
    Call {
        func: Func,
        args: Vec<Expr>,
        /// REGEXP_REPLACE's pattern compiled once when it is a literal.
        regex: Option<Regex>,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum UnaryOp {
    Neg,
    Not,
    IsNull,
    IsNotNull,
    IsTrue,
    IsNotTrue,
    IsFalse,
    IsNotFalse,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum BinaryOp {
    Add,
    Sub,
    Mul,
    Div,
    Mod,
    Eq,
    NotEq,
    Lt,
    LtEq,
    Gt,
    GtEq,
    And,
    Or,
    Concat,
    IsDistinctFrom,
    IsNotDistinctFrom,
}

impl BinaryOp {
    pub(crate) fn is_arithmetic(self) -> bool {
        matches!(
            self,
            Self::Add | Self::Sub | Self::Mul | Self::Div | Self::Mod
        )
    }
}

/// A built-in function.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Func {
    Abs,
    Ceil,
    Floor,
    Round,
    Uuid,
    CharLength,
    Upper,
    Lower,
    /// TRIM: strip spaces (or the given characters) at both ends.
    Trim,
    LTrim,
    RTrim,
    Substr,
    RegexpReplace,
    Concat,
    LocalTimestamp,
    CurrentTimestamp,
    CurrentDate,
    LocalTime,
    DateFormat,
    TimestampAdd,
    TimestampDiff,
    ToTimestamp,
    ToTimestampLtz,
    ToDate,
    DateAdd,
    DateFormatTz,
    ParseJson,
    TryParseJson,
    /// `x[i]` / `x['key']` (Calcite's ITEM).
    Item,
    FromUnixtime,
    UnixTimestamp,
    Coalesce,
    If,
    IfNull,
    NullIf,
}

impl Func {
    /// The function for a SQL name (case-insensitive) and its allowed argument counts.
    pub(crate) fn lookup(name: &str) -> Option<(Self, usize, usize)> {
        let upper = name.to_ascii_uppercase();
        Some(match upper.as_str() {
            "ABS" => (Self::Abs, 1, 1),
            "CEIL" | "CEILING" => (Self::Ceil, 1, 1),
            "FLOOR" => (Self::Floor, 1, 1),
            "ROUND" => (Self::Round, 1, 2),
            "UUID" => (Self::Uuid, 0, 0),
            "CHAR_LENGTH" | "CHARACTER_LENGTH" => (Self::CharLength, 1, 1),
            "UPPER" => (Self::Upper, 1, 1),
            "LOWER" => (Self::Lower, 1, 1),
            "TRIM" => (Self::Trim, 1, 2),
            "LTRIM" => (Self::LTrim, 1, 1),
            "RTRIM" => (Self::RTrim, 1, 1),
            "SUBSTR" | "SUBSTRING" => (Self::Substr, 2, 3),
            "REGEXP_REPLACE" => (Self::RegexpReplace, 3, 3),
            "CONCAT" => (Self::Concat, 1, usize::MAX),
            "LOCALTIMESTAMP" => (Self::LocalTimestamp, 0, 0),
            "CURRENT_TIMESTAMP" | "NOW" => (Self::CurrentTimestamp, 0, 0),
            "CURRENT_DATE" => (Self::CurrentDate, 0, 0),
            "LOCALTIME" | "CURRENT_TIME" => (Self::LocalTime, 0, 0),
            "DATE_FORMAT" => (Self::DateFormat, 2, 2),
            "TIMESTAMPADD" | "TIMESTAMP_ADD" => (Self::TimestampAdd, 3, 3),
            "TIMESTAMPDIFF" | "TIMESTAMP_DIFF" => (Self::TimestampDiff, 3, 3),
            "TO_TIMESTAMP" => (Self::ToTimestamp, 1, 2),
            "TO_TIMESTAMP_LTZ" => (Self::ToTimestampLtz, 1, 3),
            "TO_DATE" => (Self::ToDate, 1, 2),
            "DATE_ADD" => (Self::DateAdd, 2, 2),
            "DATE_FORMAT_TZ" => (Self::DateFormatTz, 2, 3),
            "PARSE_JSON" => (Self::ParseJson, 1, 2),
            "TRY_PARSE_JSON" => (Self::TryParseJson, 1, 2),
            "FROM_UNIXTIME" => (Self::FromUnixtime, 1, 2),
            "UNIX_TIMESTAMP" => (Self::UnixTimestamp, 0, 2),
            "COALESCE" => (Self::Coalesce, 1, usize::MAX),
            "IF" => (Self::If, 3, 3),
            "IFNULL" => (Self::IfNull, 2, 2),
            "NULLIF" => (Self::NullIf, 2, 2),
            _ => return None,
        })
    }
}

/// Functions of Flink CDC that cannot work here, with the reason (`None`: not one of them).
pub(crate) fn refused(name: &str) -> Option<&'static str> {
    let upper = name.to_ascii_uppercase();
    Some(match upper.as_str() {
        "AI_CHAT_PREDICT" | "AI_LANGCHAIN_PREDICT" | "GET_EMBEDDING" => {
            "AI model functions need a model runtime, which cdc does not have"
        }
        "ARRAY" | "MAP" | "ROW" | "CARDINALITY" | "ARRAY_CONTAINS" | "ARRAY_POSITION"
        | "ELEMENT" | "REGEXP_EXTRACT_ALL" => {
            "it builds or reads ARRAY/MAP/ROW values, which no connector here produces; it exists only in Flink CDC's unreleased master"
        }
        "FROM_BASE64_BINARY" => "it returns VARBINARY, which transform expressions do not produce",
        "TRY_CAST" => "it exists only in Flink CDC's unreleased master; use CAST",
        "BTRIM" | "CONCAT_WS" | "DAYOFMONTH" | "DAYOFWEEK" | "DAYOFYEAR" | "ENDSWITH"
        | "FROM_BASE64" | "HOUR" | "INSTR" | "LEFT" | "LOCATE" | "LPAD" | "MINUTE" | "MONTH"
        | "QUARTER" | "REGEXP_COUNT" | "REGEXP_EXTRACT" | "REGEXP_INSTR" | "REGEXP_SUBSTR"
        | "REPEAT" | "REPLACE" | "RIGHT" | "RPAD" | "SECOND" | "STARTSWITH" | "TO_BASE64"
        | "WEEK" | "YEAR" => {
            "it exists only in Flink CDC's unreleased master (after 3.6.0), not here yet"
        }
        _ => return None,
    })
}

impl Expr {
    /// A node with a placeholder type (binding computes the real one).
    pub(crate) fn new(node: Node, text: impl Into<String>) -> Self {
        Self {
            node,
            ty: DataType::new(DataTypeKind::String),
            text: text.into(),
        }
    }
}
