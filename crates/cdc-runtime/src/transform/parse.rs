//! SQL text to [`Expr`]: the projection list and the filter are parsed once, at build time,
//! with `sqlparser` (generic dialect), and the AST is compiled into our own tree. Anything
//! we cannot evaluate (an unknown function, a subquery, ...) is an error here, naming the
//! fragment, so a bad pipeline file never starts.

use cdc_api::{DataType, DataTypeKind, Decimal, Value};
use sqlparser::ast::{
    self as sql, BinaryOperator, CastKind, CeilFloorKind, CharacterLength, ExactNumberInfo,
    FunctionArg, FunctionArgExpr, FunctionArguments, SelectItem, TrimWhereField, UnaryOperator,
};
use sqlparser::dialect::GenericDialect;
use sqlparser::parser::Parser;
use sqlparser::tokenizer::Token;

use super::expr::{BinaryOp, Expr, Func, Meta, Node, UnaryOp, refused};

/// One item of a projection list.
#[derive(Debug, Clone)]
pub(crate) enum ProjectionItem {
    /// `*`: every source column, in source order, following schema changes.
    Wildcard,
    /// A column, metadata column or computed expression with its output name.
    Column { name: String, expr: Expr },
}

/// Parses a projection list (`\*, id, UPPER(name) AS n`).
pub(crate) fn parse_projection(text: &str) -> Result<Vec<ProjectionItem>, String> {
    let text = unescape_star(text);
    let dialect = GenericDialect {};
    let mut parser = Parser::new(&dialect)
        .try_with_sql(&text)
        .map_err(|e| e.to_string())?;
    let items = parser.parse_projection().map_err(|e| e.to_string())?;
    expect_end(&parser)?;
    let mut out = Vec::with_capacity(items.len());
    for item in items {
        match item {
            SelectItem::Wildcard(_) => out.push(ProjectionItem::Wildcard),
            SelectItem::UnnamedExpr(e) => {
                let expr = compile(&e)?;
                let name = match &expr.node {
                    Node::Column(name) => name.clone(),
                    Node::Meta(_) => expr.text.clone(),
                    _ => {
                        return Err(format!(
                            "a computed column needs a name: write `{e} AS name` at '{e}'"
                        ));
                    }
                };
                out.push(ProjectionItem::Column { name, expr });
            }
            SelectItem::ExprWithAlias { expr, alias } => out.push(ProjectionItem::Column {
                name: alias.value,
                expr: compile(&expr)?,
            }),
            other => return Err(format!("unsupported projection item at '{other}'")),
        }
    }
    Ok(out)
}

/// Parses a filter condition (the text after `WHERE`).
pub(crate) fn parse_filter(text: &str) -> Result<Expr, String> {
    let dialect = GenericDialect {};
    let mut parser = Parser::new(&dialect)
        .try_with_sql(text)
        .map_err(|e| e.to_string())?;
    let expr = parser.parse_expr().map_err(|e| e.to_string())?;
    expect_end(&parser)?;
    compile(&expr)
}

fn expect_end(parser: &Parser<'_>) -> Result<(), String> {
    let next = parser.peek_token();
    if next.token == Token::EOF {
        Ok(())
    } else {
        Err(format!(
            "unexpected '{}' at line {}, column {}",
            next.token, next.span.start.line, next.span.start.column
        ))
    }
}

/// Flink CDC's projection starts with `\*` because YAML would read a bare `*` as an alias;
/// a backslash before `*` outside quotes is dropped.
fn unescape_star(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut quoted = false;
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\'' {
            quoted = !quoted;
        }
        if c == '\\' && !quoted && chars.peek() == Some(&'*') {
            continue;
        }
        out.push(c);
    }
    out
}

fn unsupported(what: &str, e: &impl std::fmt::Display) -> String {
    format!("{what} is not supported at '{e}'")
}

fn boxed(e: &sql::Expr) -> Result<Box<Expr>, String> {
    compile(e).map(Box::new)
}

/// Compiles one SQL expression.
pub(crate) fn compile(e: &sql::Expr) -> Result<Expr, String> {
    let text = e.to_string();
    let node = match e {
        sql::Expr::Identifier(ident) => ident_node(&ident.value),
        sql::Expr::CompoundIdentifier(parts) => {
            // `t.col` or `db.t.col`: only the column part matters (one table per rule).
            match parts.last() {
                Some(last) => ident_node(&last.value),
                None => return Err(unsupported("an empty identifier", e)),
            }
        }
        sql::Expr::Nested(inner) => return compile(inner),
        sql::Expr::Value(v) => Node::Literal(literal(&v.value, e)?),
        sql::Expr::TypedString(ts) => {
            let target = data_type(&ts.data_type, e)?;
            let s = match &ts.value.value {
                sql::Value::SingleQuotedString(s) => s.clone(),
                other => other.to_string(),
            };
            let mut out = Expr::new(
                Node::Cast(Box::new(Expr::new(
                    Node::Literal(Value::String(s.clone())),
                    format!("'{s}'"),
                ))),
                text,
            );
            out.ty = target;
            return Ok(out);
        }
        sql::Expr::IsNull(x) => Node::Unary(UnaryOp::IsNull, boxed(x)?),
        sql::Expr::IsNotNull(x) => Node::Unary(UnaryOp::IsNotNull, boxed(x)?),
        sql::Expr::IsTrue(x) => Node::Unary(UnaryOp::IsTrue, boxed(x)?),
        sql::Expr::IsNotTrue(x) => Node::Unary(UnaryOp::IsNotTrue, boxed(x)?),
        sql::Expr::IsFalse(x) => Node::Unary(UnaryOp::IsFalse, boxed(x)?),
        sql::Expr::IsNotFalse(x) => Node::Unary(UnaryOp::IsNotFalse, boxed(x)?),
        // UNKNOWN is the boolean NULL.
        sql::Expr::IsUnknown(x) => Node::Unary(UnaryOp::IsNull, boxed(x)?),
        sql::Expr::IsNotUnknown(x) => Node::Unary(UnaryOp::IsNotNull, boxed(x)?),
        sql::Expr::IsDistinctFrom(a, b) => {
            Node::Binary(BinaryOp::IsDistinctFrom, boxed(a)?, boxed(b)?)
        }
        sql::Expr::IsNotDistinctFrom(a, b) => {
            Node::Binary(BinaryOp::IsNotDistinctFrom, boxed(a)?, boxed(b)?)
        }
        sql::Expr::Between {
            expr,
            negated,
            low,
            high,
        } => Node::Between {
            expr: boxed(expr)?,
            low: boxed(low)?,
            high: boxed(high)?,
            negated: *negated,
        },
        sql::Expr::In {
            expr,
            target: sql::InTarget::List(list),
            negated,
            ..
        } => Node::In {
            expr: boxed(expr)?,
            list: list.iter().map(compile).collect::<Result<_, _>>()?,
            negated: *negated,
        },
        sql::Expr::Like {
            negated,
            any: false,
            expr,
            pattern,
            escape_char,
        } => {
            let escape = match escape_char.as_deref() {
                None => None,
                Some(sql::Expr::Value(v)) => match &v.value {
                    sql::Value::SingleQuotedString(s) if s.chars().count() == 1 => s.chars().next(),
                    _ => return Err(format!("ESCAPE takes one character at '{e}'")),
                },
                Some(_) => return Err(format!("ESCAPE takes one character at '{e}'")),
            };
            Node::Like {
                expr: boxed(expr)?,
                pattern: boxed(pattern)?,
                escape,
                negated: *negated,
                compiled: None,
            }
        }
        sql::Expr::BinaryOp { left, op, right } => {
            let op = match op {
                BinaryOperator::Plus => BinaryOp::Add,
                BinaryOperator::Minus => BinaryOp::Sub,
                BinaryOperator::Multiply => BinaryOp::Mul,
                BinaryOperator::Divide => BinaryOp::Div,
                BinaryOperator::Modulo => BinaryOp::Mod,
                BinaryOperator::StringConcat => BinaryOp::Concat,
                BinaryOperator::Gt => BinaryOp::Gt,
                BinaryOperator::Lt => BinaryOp::Lt,
                BinaryOperator::GtEq => BinaryOp::GtEq,
                BinaryOperator::LtEq => BinaryOp::LtEq,
                BinaryOperator::Eq => BinaryOp::Eq,
                BinaryOperator::NotEq => BinaryOp::NotEq,
                BinaryOperator::And => BinaryOp::And,
                BinaryOperator::Or => BinaryOp::Or,
                other => return Err(unsupported(&format!("the operator {other}"), e)),
            };
            Node::Binary(op, boxed(left)?, boxed(right)?)
        }
        sql::Expr::UnaryOp { op, expr } => match op {
            UnaryOperator::Minus => negate(compile(expr)?),
            UnaryOperator::Plus => return compile(expr),
            UnaryOperator::Not => Node::Unary(UnaryOp::Not, boxed(expr)?),
            other => return Err(unsupported(&format!("the operator {other}"), e)),
        },
        sql::Expr::Cast {
            kind: CastKind::Cast | CastKind::DoubleColon,
            expr,
            data_type: target,
            format: None,
        } => {
            let mut out = Expr::new(Node::Cast(boxed(expr)?), text);
            out.ty = data_type(target, e)?;
            return Ok(out);
        }
        sql::Expr::Ceil {
            expr,
            field: CeilFloorKind::DateTimeField(sql::DateTimeField::NoDateTime),
        } => call(Func::Ceil, vec![compile(expr)?]),
        sql::Expr::Floor {
            expr,
            field: CeilFloorKind::DateTimeField(sql::DateTimeField::NoDateTime),
        } => call(Func::Floor, vec![compile(expr)?]),
        sql::Expr::Substring {
            expr,
            substring_from,
            substring_for,
            ..
        } => {
            let mut args = vec![compile(expr)?];
            match substring_from {
                Some(from) => args.push(compile(from)?),
                None => args.push(Expr::new(Node::Literal(Value::Int(1)), "1")),
            }
            if let Some(len) = substring_for {
                args.push(compile(len)?);
            }
            call(Func::Substr, args)
        }
        sql::Expr::Trim {
            trim_where,
            trim_what,
            expr,
            trim_characters,
        } => {
            if trim_characters.is_some() {
                return Err(unsupported("TRIM with a character list", e));
            }
            let func = match trim_where {
                None | Some(TrimWhereField::Both) => Func::Trim,
                Some(TrimWhereField::Leading) => Func::LTrim,
                Some(TrimWhereField::Trailing) => Func::RTrim,
            };
            let mut args = vec![compile(expr)?];
            if let Some(what) = trim_what {
                args.push(compile(what)?);
            }
            call(func, args)
        }
        sql::Expr::Case {
            operand,
            conditions,
            else_result,
            ..
        } => Node::Case {
            operand: operand.as_deref().map(boxed).transpose()?,
            branches: conditions
                .iter()
                .map(|w| Ok((compile(&w.condition)?, compile(&w.result)?)))
                .collect::<Result<_, String>>()?,
            otherwise: else_result.as_deref().map(boxed).transpose()?,
        },
        sql::Expr::Function(f) => function(f, e)?,
        sql::Expr::CompoundFieldAccess { root, access_chain } => {
            return subscripts(compile(root)?, access_chain, e);
        }
        _ => return Err(unsupported("this expression", e)),
    };
    Ok(Expr::new(node, text))
}

/// `x[1]['k']`: one ITEM call per subscript, innermost first (Flink CDC 3.6).
fn subscripts(root: Expr, chain: &[sql::AccessExpr], e: &sql::Expr) -> Result<Expr, String> {
    let mut out = root;
    for access in chain {
        let sql::AccessExpr::Subscript(sql::Subscript::Index { index }) = access else {
            return Err(unsupported("field access with `.` or a slice", e));
        };
        let index = compile(index)?;
        let text = format!("{}[{}]", out.text, index.text);
        out = Expr::new(call(Func::Item, vec![out, index]), text);
    }
    Ok(out)
}

/// `-` on a number literal is a negative literal (so `ROUND(x, -2)` has a literal argument
/// and `-2147483648` is an INT).
fn negate(e: Expr) -> Node {
    match &e.node {
        Node::Literal(Value::Int(v)) => Node::Literal(
            v.checked_neg()
                .map_or_else(|| Value::BigInt(-i64::from(*v)), Value::Int),
        ),
        Node::Literal(Value::BigInt(v)) if *v == i64::from(i32::MAX) + 1 => {
            Node::Literal(Value::Int(i32::MIN))
        }
        Node::Literal(Value::BigInt(v)) => match v.checked_neg() {
            Some(n) => Node::Literal(Value::BigInt(n)),
            None => Node::Unary(UnaryOp::Neg, Box::new(e)),
        },
        Node::Literal(Value::Double(v)) => Node::Literal(Value::Double(-v)),
        Node::Literal(Value::Decimal(d)) => match Decimal::parse(&format!("-{d}")) {
            Ok(n) => Node::Literal(Value::Decimal(n)),
            Err(_) => Node::Unary(UnaryOp::Neg, Box::new(e)),
        },
        _ => Node::Unary(UnaryOp::Neg, Box::new(e)),
    }
}

fn call(func: Func, args: Vec<Expr>) -> Node {
    Node::Call {
        func,
        args,
        regex: None,
    }
}

fn ident_node(name: &str) -> Node {
    match Meta::from_name(name) {
        // `op_ts`, `table_name`, ... may also be real columns; binding decides (a real
        // column wins).
        Some(meta) if !meta.is_source_metadata() => Node::Meta(meta),
        _ => Node::Column(name.to_string()),
    }
}

fn function(f: &sql::Function, e: &sql::Expr) -> Result<Node, String> {
    let name = f.name.to_string();
    let Some((func, min, max)) = Func::lookup(&name) else {
        return Err(match refused(&name) {
            Some(why) => format!(
                "{} is not supported: {why} at '{e}'",
                name.to_ascii_uppercase()
            ),
            None => format!("unknown function {name} at '{e}'"),
        });
    };
    if f.filter.is_some() || f.over.is_some() || !f.within_group.is_empty() {
        return Err(unsupported("an aggregate or window clause", e));
    }
    let raw: Vec<&sql::Expr> = match &f.args {
        FunctionArguments::None => Vec::new(),
        FunctionArguments::Subquery(_) => return Err(unsupported("a subquery", e)),
        FunctionArguments::List(list) => {
            if list.duplicate_treatment.is_some() || !list.clauses.is_empty() {
                return Err(unsupported("DISTINCT or clauses in a call", e));
            }
            let mut out = Vec::with_capacity(list.args.len());
            for arg in &list.args {
                match arg {
                    FunctionArg::Unnamed(FunctionArgExpr::Expr(x)) => out.push(x),
                    _ => return Err(unsupported("this kind of argument", e)),
                }
            }
            out
        }
    };
    if raw.len() < min || raw.len() > max {
        let want = if min == max {
            format!("{min}")
        } else if max == usize::MAX {
            format!("at least {min}")
        } else {
            format!("{min} to {max}")
        };
        return Err(format!(
            "{} takes {want} argument(s), got {} at '{e}'",
            name.to_ascii_uppercase(),
            raw.len()
        ));
    }
    let mut args = Vec::with_capacity(raw.len());
    for (i, a) in raw.iter().enumerate() {
        // TIMESTAMPADD(SECOND, n, ts): the unit is a keyword, kept as text.
        if i == 0 && matches!(func, Func::TimestampAdd | Func::TimestampDiff) {
            let unit = a.to_string().to_ascii_uppercase().replace('\'', "");
            if time_unit(&unit).is_none() {
                return Err(format!(
                    "unknown time unit {unit} (SECOND, MINUTE, HOUR, DAY, WEEK, MONTH, QUARTER, YEAR) at '{e}'"
                ));
            }
            args.push(Expr::new(Node::Literal(Value::String(unit.clone())), unit));
        } else {
            args.push(compile(a)?);
        }
    }
    Ok(call(func, args))
}

/// The time units of TIMESTAMPADD / TIMESTAMPDIFF.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TimeUnit {
    Second,
    Minute,
    Hour,
    Day,
    Week,
    Month,
    Quarter,
    Year,
}

pub(crate) fn time_unit(name: &str) -> Option<TimeUnit> {
    Some(match name.trim_start_matches("SQL_TSI_") {
        "SECOND" => TimeUnit::Second,
        "MINUTE" => TimeUnit::Minute,
        "HOUR" => TimeUnit::Hour,
        "DAY" => TimeUnit::Day,
        "WEEK" => TimeUnit::Week,
        "MONTH" => TimeUnit::Month,
        "QUARTER" => TimeUnit::Quarter,
        "YEAR" => TimeUnit::Year,
        _ => return None,
    })
}

fn literal(v: &sql::Value, e: &sql::Expr) -> Result<Value, String> {
    Ok(match v {
        sql::Value::Number(n, _) => {
            number_literal(n).ok_or_else(|| format!("bad number at '{e}'"))?
        }
        sql::Value::SingleQuotedString(s) => Value::String(s.clone()),
        sql::Value::Boolean(b) => Value::Boolean(*b),
        sql::Value::Null => Value::Null,
        _ => return Err(unsupported("this literal", e)),
    })
}

/// Integer literals are INT when they fit, else BIGINT; `1.5` is an exact DECIMAL; `1e3`
/// a DOUBLE (as in Calcite).
fn number_literal(n: &str) -> Option<Value> {
    if n.contains(['e', 'E']) {
        return n.parse().ok().map(Value::Double);
    }
    if n.contains('.') {
        return Decimal::parse(n).ok().map(Value::Decimal);
    }
    if let Ok(v) = n.parse::<i32>() {
        return Some(Value::Int(v));
    }
    if let Ok(v) = n.parse::<i64>() {
        return Some(Value::BigInt(v));
    }
    Decimal::parse(n).ok().map(Value::Decimal)
}

/// A CAST target.
fn data_type(t: &sql::DataType, e: &sql::Expr) -> Result<DataType, String> {
    use sql::DataType as S;
    let precision = |p: &Option<u64>, default: u8| -> Result<u8, String> {
        match p {
            None => Ok(default),
            Some(p) if *p <= 9 => Ok((*p).min(6) as u8),
            Some(_) => Err(format!("fraction precision must be 0 to 9 at '{e}'")),
        }
    };
    let kind = match t {
        S::String(_) | S::Text => DataTypeKind::String,
        S::Varchar(len) | S::Char(len) | S::Character(len) => match len {
            Some(CharacterLength::IntegerLength { length, .. }) => {
                let length =
                    u32::try_from(*length).map_err(|_| format!("length too large at '{e}'"))?;
                if matches!(t, S::Varchar(_)) {
                    DataTypeKind::VarChar { length }
                } else {
                    DataTypeKind::Char { length }
                }
            }
            _ => DataTypeKind::String,
        },
        S::Boolean | S::Bool => DataTypeKind::Boolean,
        S::TinyInt(_) => DataTypeKind::TinyInt,
        S::SmallInt(_) | S::Int16 => DataTypeKind::SmallInt,
        S::Int(_) | S::Integer(_) | S::Int32 => DataTypeKind::Int,
        S::BigInt(_) | S::Int64 | S::Int8(_) => DataTypeKind::BigInt,
        S::Float(_) | S::Real | S::Float4 | S::Float32 => DataTypeKind::Float,
        S::Double(_) | S::Float8 | S::Float64 => DataTypeKind::Double,
        S::Custom(name, _) if name.to_string().eq_ignore_ascii_case("DOUBLE") => {
            DataTypeKind::Double
        }
        S::Decimal(info) | S::Numeric(info) | S::Dec(info) => {
            let (p, s) = match info {
                ExactNumberInfo::None => (10, 0),
                ExactNumberInfo::Precision(p) => (*p, 0),
                ExactNumberInfo::PrecisionAndScale(p, s) => {
                    (*p, u64::try_from(*s).unwrap_or(u64::MAX))
                }
            };
            if p == 0 || p > 38 || s > p {
                return Err(format!(
                    "DECIMAL({p}, {s}) is out of range: precision 1 to 38, scale 0 to precision at '{e}'"
                ));
            }
            DataTypeKind::Decimal {
                precision: p as u8,
                scale: s as u8,
            }
        }
        S::Date => DataTypeKind::Date,
        S::Timestamp(p, _) | S::Datetime(p) => DataTypeKind::Timestamp {
            precision: precision(p, 6)?,
        },
        S::Time(p, _) => DataTypeKind::Time {
            precision: precision(p, 0)?,
        },
        other => return Err(format!("CAST to {other} is not supported at '{e}'")),
    };
    Ok(DataType::new(kind))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn projection_items_and_names() {
        let items = parse_projection("\\*, id, UPPER(name) AS n, __table_name__").unwrap();
        assert!(matches!(items[0], ProjectionItem::Wildcard));
        let names: Vec<_> = items
            .iter()
            .filter_map(|i| match i {
                ProjectionItem::Column { name, .. } => Some(name.as_str()),
                ProjectionItem::Wildcard => None,
            })
            .collect();
        assert_eq!(names, ["id", "n", "__table_name__"]);
    }

    #[test]
    fn errors_name_the_fragment() {
        let err = parse_projection("id, FOO(x) AS y").unwrap_err();
        assert_eq!(err, "unknown function FOO at 'FOO(x)'");
        let err = parse_projection("id + 1").unwrap_err();
        assert!(err.contains("needs a name"), "{err}");
        let err = parse_filter("id > (SELECT 1)").unwrap_err();
        assert!(err.contains("not supported at '(SELECT 1)'"), "{err}");
        let err = parse_filter("id > 1 id").unwrap_err();
        assert!(err.contains("unexpected 'id'"), "{err}");
        let err = parse_projection("REGEXP_REPLACE(a) AS b").unwrap_err();
        assert!(
            err.contains("REGEXP_REPLACE takes 3 argument(s), got 1"),
            "{err}"
        );
        let err = parse_projection("UPPER(a, b) AS b").unwrap_err();
        assert!(
            err.contains("UPPER takes 1 argument(s), got 2 at 'UPPER(a, b)'"),
            "{err}"
        );
        let err = parse_projection("GET_EMBEDDING(a, b, c) AS e").unwrap_err();
        assert_eq!(
            err,
            "GET_EMBEDDING is not supported: AI model functions need a model runtime, which cdc does not have at 'GET_EMBEDDING(a, b, c)'"
        );
        let err = parse_projection("lpad(a, 3, 'x') AS e").unwrap_err();
        assert!(
            err.starts_with(
                "LPAD is not supported: it exists only in Flink CDC's unreleased master"
            ),
            "{err}"
        );
        let err = parse_projection("CARDINALITY(a) AS e").unwrap_err();
        assert!(err.contains("ARRAY/MAP/ROW"), "{err}");
        let err = parse_filter("a.b[1:2] = 1").unwrap_err();
        assert!(err.contains("slice"), "{err}");
        let err = parse_projection("CAST(a AS DECIMAL(50, 2)) AS b").unwrap_err();
        assert!(err.contains("out of range"), "{err}");
    }

    #[test]
    fn special_syntax_compiles() {
        for text in [
            "SUBSTRING(a FROM 2 FOR 3) AS x",
            "TRIM(BOTH 'x' FROM a) AS x",
            "CEIL(a) AS x",
            "CAST(a AS DECIMAL(10, 2)) AS x",
            "TIMESTAMPADD(HOUR, 1, ts) AS x",
            "TIMESTAMPDIFF(DAY, a, b) AS x",
            "CASE WHEN a > 1 THEN 'x' ELSE 'y' END AS x",
            "IF(a > 1, 1, 2) AS x",
            "CURRENT_TIMESTAMP AS x",
            "LOCALTIMESTAMP AS x",
            "NOW() AS x",
            "TIMESTAMP '2024-01-01 00:00:00' AS x",
            "a || b AS x",
            "`weird name` AS x",
            "PARSE_JSON(j)['a'][1] AS x",
            "arr[1] AS x",
            "TO_TIMESTAMP_LTZ(s, 'yyyy', 'UTC') AS x",
            "DATE_FORMAT_TZ(ts, 'UTC') AS x",
            "DATE_ADD(d, 1) AS x",
            "TO_DATE(s) AS x",
            "table_name AS x",
        ] {
            parse_projection(text).unwrap_or_else(|e| panic!("{text}: {e}"));
        }
        for text in [
            "a IS NOT DISTINCT FROM b",
            "a NOT BETWEEN 1 AND 2",
            "a NOT LIKE 'x%' ESCAPE '!'",
            "a IN (1, 2, 3)",
            "a IS TRUE AND NOT b IS NULL OR c IS UNKNOWN",
        ] {
            parse_filter(text).unwrap_or_else(|e| panic!("{text}: {e}"));
        }
    }
}
