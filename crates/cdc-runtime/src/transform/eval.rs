//! Evaluates a bound [`Expr`] on one row. SQL NULL semantics: operators and functions give
//! NULL when an input is NULL, AND/OR use three-valued logic, `IS [NOT] DISTINCT FROM`
//! treats NULLs as equal, CASE/COALESCE/IF evaluate only the branch they return.

use std::cmp::Ordering;
use std::collections::BTreeMap;

use cdc_api::{TableId, Value};

use super::cast::{cast, compare, to_text};
use super::expr::{BinaryOp, Expr, Func, Meta, Node, UnaryOp};
use super::functions::{self, like_regex};
use super::numeric::{self, num};
use super::temporal::Zone;

/// What an expression sees besides its row.
pub(crate) struct Ctx<'a> {
    /// The input row, by source column position.
    pub(crate) row: &'a [Value],
    pub(crate) table: &'a TableId,
    /// `+I`, `-U`, `+U` or `-D`.
    pub(crate) event_type: &'a str,
    /// The event's source metadata (`op_ts`).
    pub(crate) meta: &'a BTreeMap<String, String>,
    /// Processing time of the batch, microseconds since the epoch: every temporal function
    /// of one batch sees the same "now".
    pub(crate) now_micros: i64,
    pub(crate) zone: Zone,
}

fn boolean(v: &Value) -> Option<bool> {
    match v {
        Value::Boolean(b) => Some(*b),
        _ => None,
    }
}

/// Evaluates `e`; errors carry a message without location (the caller adds table, rule
/// and column).
pub(crate) fn eval(e: &Expr, ctx: &Ctx<'_>) -> Result<Value, String> {
    Ok(match &e.node {
        Node::Literal(v) => v.clone(),
        Node::Column(name) => return Err(format!("column `{name}` was not bound")),
        Node::Input(i) => ctx.row.get(*i).cloned().unwrap_or(Value::Null),
        Node::Meta(m) => meta(*m, ctx)?,
        Node::Unary(op, x) => {
            let v = eval(x, ctx)?;
            match op {
                UnaryOp::Neg => match num(&v)? {
                    None => Value::Null,
                    Some(n) => numeric::arithmetic(BinaryOp::Sub, numeric::Num::Int(0), n, &e.ty)?,
                },
                UnaryOp::Not => boolean(&v).map_or(Value::Null, |b| Value::Boolean(!b)),
                UnaryOp::IsNull => Value::Boolean(v.is_null()),
                UnaryOp::IsNotNull => Value::Boolean(!v.is_null()),
                UnaryOp::IsTrue => Value::Boolean(boolean(&v) == Some(true)),
                UnaryOp::IsNotTrue => Value::Boolean(boolean(&v) != Some(true)),
                UnaryOp::IsFalse => Value::Boolean(boolean(&v) == Some(false)),
                UnaryOp::IsNotFalse => Value::Boolean(boolean(&v) != Some(false)),
            }
        }
        Node::Binary(op, l, r) => binary(*op, l, r, e, ctx)?,
        Node::Between {
            expr,
            low,
            high,
            negated,
        } => {
            let v = eval(expr, ctx)?;
            let ge = cmp_to(&v, &eval(low, ctx)?, ctx, |o| o != Ordering::Less)?;
            let le = cmp_to(&v, &eval(high, ctx)?, ctx, |o| o != Ordering::Greater)?;
            not_if(and(ge, le), *negated)
        }
        Node::In {
            expr,
            list,
            negated,
        } => {
            let v = eval(expr, ctx)?;
            if v.is_null() {
                return Ok(Value::Null);
            }
            let mut saw_null = false;
            let mut found = false;
            for item in list {
                let i = eval(item, ctx)?;
                if i.is_null() {
                    saw_null = true;
                } else if compare(&v, &i, ctx.zone)? == Ordering::Equal {
                    found = true;
                    break;
                }
            }
            let r = if found {
                Value::Boolean(true)
            } else if saw_null {
                Value::Null
            } else {
                Value::Boolean(false)
            };
            not_if(r, *negated)
        }
        Node::Like {
            expr,
            pattern,
            escape,
            negated,
            compiled,
        } => {
            let v = eval(expr, ctx)?;
            if v.is_null() {
                return Ok(Value::Null);
            }
            let text = match &v {
                Value::String(s) => s.clone(),
                other => to_text(other, ctx.zone),
            };
            let matched = if let Some(re) = compiled {
                re.is_match(&text)
            } else {
                let p = eval(pattern, ctx)?;
                if p.is_null() {
                    return Ok(Value::Null);
                }
                like_regex(&to_text(&p, ctx.zone), *escape)?.is_match(&text)
            };
            Value::Boolean(matched != *negated)
        }
        Node::Case {
            operand,
            branches,
            otherwise,
        } => {
            let subject = operand.as_deref().map(|o| eval(o, ctx)).transpose()?;
            for (when, then) in branches {
                let w = eval(when, ctx)?;
                let hit = match &subject {
                    Some(s) if s.is_null() || w.is_null() => false,
                    Some(s) => compare(s, &w, ctx.zone)? == Ordering::Equal,
                    None => boolean(&w) == Some(true),
                };
                if hit {
                    return fit(eval(then, ctx)?, e, ctx);
                }
            }
            match otherwise {
                Some(o) => fit(eval(o, ctx)?, e, ctx)?,
                None => Value::Null,
            }
        }
        Node::Cast(x) => cast(&eval(x, ctx)?, &e.ty, ctx.zone)?,
        Node::Call { func, args, regex } => match func {
            Func::Coalesce | Func::IfNull => {
                for a in args {
                    let v = eval(a, ctx)?;
                    if !v.is_null() {
                        return fit(v, e, ctx);
                    }
                }
                Value::Null
            }
            Func::If => {
                let [c, yes, no] = args.as_slice() else {
                    return Err("IF takes 3 arguments".into());
                };
                let branch = if boolean(&eval(c, ctx)?) == Some(true) {
                    yes
                } else {
                    no
                };
                fit(eval(branch, ctx)?, e, ctx)?
            }
            Func::NullIf => {
                let [a, b] = args.as_slice() else {
                    return Err("NULLIF takes 2 arguments".into());
                };
                let a = eval(a, ctx)?;
                let b = eval(b, ctx)?;
                if !a.is_null() && !b.is_null() && compare(&a, &b, ctx.zone)? == Ordering::Equal {
                    Value::Null
                } else {
                    a
                }
            }
            _ => {
                let values = args
                    .iter()
                    .map(|a| eval(a, ctx))
                    .collect::<Result<Vec<_>, _>>()?;
                functions::call(*func, &values, &e.ty, regex.as_ref(), ctx)?
            }
        },
    })
}

/// Converts a branch result to the node's (common) type.
fn fit(v: Value, e: &Expr, ctx: &Ctx<'_>) -> Result<Value, String> {
    cast(&v, &e.ty, ctx.zone)
}

fn meta(m: Meta, ctx: &Ctx<'_>) -> Result<Value, String> {
    let opt = |s: &Option<String>| s.clone().map_or(Value::Null, Value::String);
    Ok(match m {
        Meta::Namespace => opt(&ctx.table.namespace),
        Meta::Schema => opt(&ctx.table.schema),
        Meta::Table => Value::String(ctx.table.table.clone()),
        Meta::EventType => Value::String(ctx.event_type.to_string()),
        Meta::SourceTable => source_meta(ctx, "table_name")?,
        Meta::SourceDatabase => source_meta(ctx, "database_name")?,
        // The source gives one kind per event; an update's images are its two halves, as
        // __data_event_type__ tells them apart.
        Meta::RowKind => match source_meta(ctx, "row_kind")? {
            _ if matches!(ctx.event_type, "-U" | "+U") => Value::String(ctx.event_type.to_string()),
            kind => kind,
        },
        Meta::OpTs => match ctx.meta.get("op_ts") {
            Some(v) => Value::BigInt(
                v.trim()
                    .parse()
                    .map_err(|_| format!("op_ts '{v}' is not a number"))?,
            ),
            // Flink CDC gives 0 when the source did not attach a time (snapshot rows).
            None => Value::BigInt(0),
        },
    })
}

/// A metadata value the source attaches only when asked to.
fn source_meta(ctx: &Ctx<'_>, key: &str) -> Result<Value, String> {
    ctx.meta.get(key).map(|v| Value::String(v.clone())).ok_or_else(|| {
        format!(
            "the event carries no `{key}` metadata: add {key} to the source's metadata.list (or rename a real column to `{key}`)"
        )
    })
}

fn not_if(v: Value, negated: bool) -> Value {
    match v {
        Value::Boolean(b) if negated => Value::Boolean(!b),
        other => other,
    }
}

fn and(a: Value, b: Value) -> Value {
    match (boolean(&a), boolean(&b)) {
        (Some(false), _) | (_, Some(false)) => Value::Boolean(false),
        (Some(true), Some(true)) => Value::Boolean(true),
        _ => Value::Null,
    }
}

fn or(a: Value, b: Value) -> Value {
    match (boolean(&a), boolean(&b)) {
        (Some(true), _) | (_, Some(true)) => Value::Boolean(true),
        (Some(false), Some(false)) => Value::Boolean(false),
        _ => Value::Null,
    }
}

fn cmp_to(
    a: &Value,
    b: &Value,
    ctx: &Ctx<'_>,
    test: impl Fn(Ordering) -> bool,
) -> Result<Value, String> {
    if a.is_null() || b.is_null() {
        return Ok(Value::Null);
    }
    Ok(Value::Boolean(test(compare(a, b, ctx.zone)?)))
}

fn binary(op: BinaryOp, l: &Expr, r: &Expr, e: &Expr, ctx: &Ctx<'_>) -> Result<Value, String> {
    // AND / OR short-circuit so `b <> 0 AND a / b > 1` never divides by zero.
    if op == BinaryOp::And {
        let a = eval(l, ctx)?;
        if boolean(&a) == Some(false) {
            return Ok(a);
        }
        return Ok(and(a, eval(r, ctx)?));
    }
    if op == BinaryOp::Or {
        let a = eval(l, ctx)?;
        if boolean(&a) == Some(true) {
            return Ok(a);
        }
        return Ok(or(a, eval(r, ctx)?));
    }
    let (a, b) = (eval(l, ctx)?, eval(r, ctx)?);
    Ok(match op {
        BinaryOp::IsDistinctFrom | BinaryOp::IsNotDistinctFrom => {
            let same = match (a.is_null(), b.is_null()) {
                (true, true) => true,
                (false, false) => compare(&a, &b, ctx.zone)? == Ordering::Equal,
                _ => false,
            };
            Value::Boolean(same == (op == BinaryOp::IsNotDistinctFrom))
        }
        _ if a.is_null() || b.is_null() => Value::Null,
        BinaryOp::Concat => Value::String(to_text(&a, ctx.zone) + &to_text(&b, ctx.zone)),
        BinaryOp::Eq => cmp_to(&a, &b, ctx, |o| o == Ordering::Equal)?,
        BinaryOp::NotEq => cmp_to(&a, &b, ctx, |o| o != Ordering::Equal)?,
        BinaryOp::Lt => cmp_to(&a, &b, ctx, |o| o == Ordering::Less)?,
        BinaryOp::LtEq => cmp_to(&a, &b, ctx, |o| o != Ordering::Greater)?,
        BinaryOp::Gt => cmp_to(&a, &b, ctx, |o| o == Ordering::Greater)?,
        BinaryOp::GtEq => cmp_to(&a, &b, ctx, |o| o != Ordering::Less)?,
        _ => {
            let (Some(x), Some(y)) = (num(&a)?, num(&b)?) else {
                return Ok(Value::Null);
            };
            numeric::arithmetic(op, x, y, &e.ty)?
        }
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use cdc_api::{Column, DataType, DataTypeKind as K, Decimal, Schema};

    use super::*;
    use crate::transform::bind::{Scope, bind};
    use crate::transform::parse::parse_filter;

    fn schema() -> Schema {
        Schema::new(vec![
            Column::new("id", DataType::new(K::Int).not_null()),
            Column::new(
                "price",
                DataType::new(K::Decimal {
                    precision: 10,
                    scale: 2,
                }),
            ),
            Column::new("name", DataType::new(K::VarChar { length: 20 })),
            Column::new("ts", DataType::new(K::Timestamp { precision: 0 })),
            Column::new("n", DataType::new(K::Int)),
        ])
    }

    fn run(text: &str) -> Result<Value, String> {
        let mut meta = BTreeMap::new();
        meta.insert("op_ts".to_string(), "1700000000000".to_string());
        run_with(text, "+I", &meta)
    }

    fn run_with(
        text: &str,
        event_type: &str,
        meta: &BTreeMap<String, String>,
    ) -> Result<Value, String> {
        let s = schema();
        let e = bind(
            &parse_filter(text)?,
            &Scope {
                schema: &s,
                aliases: &[],
                mode: crate::transform::types::DecimalMode::UpTo38,
            },
        )?;
        let row = vec![
            Value::Int(7),
            Value::Decimal(Decimal::parse("12.50").unwrap()),
            Value::String("Alice Smith".into()),
            Value::Timestamp(
                crate::transform::temporal::parse_timestamp("2024-03-05 14:07:09").unwrap(),
            ),
            Value::Null,
        ];
        let table = TableId::new("shop", "orders");
        let ctx = Ctx {
            row: &row,
            table: &table,
            event_type,
            meta,
            now_micros: 1_700_000_000_123_456,
            zone: Zone::Fixed(8 * 3600),
        };
        eval(&e, &ctx)
    }

    fn s(v: &str) -> Value {
        Value::String(v.into())
    }

    #[test]
    fn comparison_and_logic() {
        assert_eq!(run("id = 7").unwrap(), Value::Boolean(true));
        assert_eq!(run("id <> 7").unwrap(), Value::Boolean(false));
        assert_eq!(run("price >= 12.5").unwrap(), Value::Boolean(true));
        assert_eq!(run("n = 1").unwrap(), Value::Null);
        assert_eq!(run("n IS NULL").unwrap(), Value::Boolean(true));
        assert_eq!(
            run("n IS NOT DISTINCT FROM NULL").unwrap(),
            Value::Boolean(true)
        );
        assert_eq!(run("id IS DISTINCT FROM n").unwrap(), Value::Boolean(true));
        assert_eq!(run("id BETWEEN 1 AND 7").unwrap(), Value::Boolean(true));
        assert_eq!(
            run("id NOT BETWEEN 1 AND 7").unwrap(),
            Value::Boolean(false)
        );
        assert_eq!(run("name LIKE 'Ali%'").unwrap(), Value::Boolean(true));
        assert_eq!(
            run("name NOT LIKE '_lice%'").unwrap(),
            Value::Boolean(false)
        );
        assert_eq!(run("id IN (1, 7)").unwrap(), Value::Boolean(true));
        assert_eq!(run("id NOT IN (1, 2)").unwrap(), Value::Boolean(true));
        assert_eq!(run("id IN (1, NULL)").unwrap(), Value::Null);
        assert_eq!(run("n = 1 OR id = 7").unwrap(), Value::Boolean(true));
        assert_eq!(run("n = 1 AND id = 8").unwrap(), Value::Boolean(false));
        assert_eq!(run("n = 1 AND id = 7").unwrap(), Value::Null);
        assert_eq!(run("NOT (id = 7)").unwrap(), Value::Boolean(false));
        assert_eq!(run("(n = 1) IS NOT TRUE").unwrap(), Value::Boolean(true));
        assert_eq!(run("(id = 7) IS FALSE").unwrap(), Value::Boolean(false));
        assert_eq!(run("id = 0 AND 1 / 0 = 1").unwrap(), Value::Boolean(false));
        assert_eq!(run("ts > '2024-03-05'").unwrap(), Value::Boolean(true));
        assert_eq!(run("(n = 1) IS UNKNOWN").unwrap(), Value::Boolean(true));
        assert_eq!(run("(n = 1) IS NOT FALSE").unwrap(), Value::Boolean(true));
        assert_eq!(
            run("(id = 1) IS NOT UNKNOWN").unwrap(),
            Value::Boolean(true)
        );
        assert_eq!(
            run("name LIKE CONCAT(SUBSTR(name, 1, 3), '%')").unwrap(),
            Value::Boolean(true)
        );
        assert_eq!(run("name LIKE n").unwrap(), Value::Null);
        assert_eq!(
            run("'a' < 'b' AND 2.50 = 2.5").unwrap(),
            Value::Boolean(true)
        );
        assert_eq!(run("id != 7").unwrap(), Value::Boolean(false));
    }

    #[test]
    fn arithmetic_and_strings() {
        assert_eq!(run("id * 2 + 1").unwrap(), Value::Int(15));
        assert_eq!(run("-id").unwrap(), Value::Int(-7));
        assert_eq!(run("id % 4").unwrap(), Value::Int(3));
        assert_eq!(run("price * 2").unwrap().to_string(), "25.00");
        assert_eq!(run("price / 3").unwrap().to_string(), "4.1666666666667");
        assert_eq!(run("n + 1").unwrap(), Value::Null);
        assert_eq!(run("id / 0").unwrap_err(), "division by zero");
        assert_eq!(run("ABS(-3)").unwrap(), Value::Int(3));
        assert_eq!(run("CEIL(price)").unwrap().to_string(), "13");
        assert_eq!(run("FLOOR(price)").unwrap().to_string(), "12");
        assert_eq!(run("ROUND(price, 1)").unwrap().to_string(), "12.5");
        assert_eq!(run("UPPER(name) || '!'").unwrap(), s("ALICE SMITH!"));
        assert_eq!(run("LOWER(name)").unwrap(), s("alice smith"));
        assert_eq!(run("CHAR_LENGTH(name)").unwrap(), Value::Int(11));
        assert_eq!(run("TRIM('  x ')").unwrap(), s("x"));
        assert_eq!(run("SUBSTR(name, 1, 5)").unwrap(), s("Alice"));
        assert_eq!(run("SUBSTRING(name FROM 7)").unwrap(), s("Smith"));
        assert_eq!(
            run("REGEXP_REPLACE(name, '([A-Z])[a-z]+', '$1.')").unwrap(),
            s("A. S.")
        );
        assert_eq!(run("CONCAT(name, '-', id)").unwrap(), s("Alice Smith-7"));
        assert_eq!(run("CONCAT(name, n)").unwrap(), Value::Null);
        assert_eq!(run("name || n").unwrap(), Value::Null);
    }

    #[test]
    fn conditionals_and_casts() {
        assert_eq!(
            run("CASE WHEN id > 5 THEN 'big' ELSE 'small' END").unwrap(),
            s("big")
        );
        assert_eq!(
            run("CASE id WHEN 1 THEN 'one' WHEN 7 THEN 'seven' END").unwrap(),
            s("seven")
        );
        assert_eq!(run("CASE id WHEN 1 THEN 'one' END").unwrap(), Value::Null);
        assert_eq!(
            run("CASE WHEN id > 5 THEN 1 ELSE 2.5 END")
                .unwrap()
                .to_string(),
            "1.0"
        );
        assert_eq!(run("COALESCE(n, id, 1 / 0)").unwrap(), Value::Int(7));
        assert_eq!(run("IF(id > 5, 'y', 'n')").unwrap(), s("y"));
        assert_eq!(run("IFNULL(n, 3)").unwrap(), Value::Int(3));
        assert_eq!(run("NULLIF(id, 7)").unwrap(), Value::Null);
        assert_eq!(run("CAST(id AS STRING)").unwrap(), s("7"));
        assert_eq!(run("CAST(price AS INT)").unwrap(), Value::Int(12));
        assert_eq!(
            run("CAST(price AS DECIMAL(5, 1))").unwrap().to_string(),
            "12.5"
        );
        assert_eq!(run("CAST('1' AS BOOLEAN)").unwrap(), Value::Boolean(true));
        assert_eq!(
            run("CAST('x' AS DOUBLE)").unwrap_err(),
            "cannot cast 'x' to DOUBLE"
        );
        assert_eq!(run("CAST(ts AS DATE)").unwrap().to_string(), "2024-03-05");
    }

    #[test]
    fn temporal_functions() {
        // now = 2023-11-14 22:13:20.123456 UTC, session zone +08:00.
        assert_eq!(
            run("LOCALTIMESTAMP").unwrap().to_string(),
            "2023-11-15 06:13:20.123000"
        );
        assert_eq!(
            run("CURRENT_TIMESTAMP").unwrap(),
            Value::TimestampLtz(1_700_000_000_123_000)
        );
        assert_eq!(
            run("NOW()").unwrap(),
            Value::TimestampLtz(1_700_000_000_123_000)
        );
        assert_eq!(run("CURRENT_DATE").unwrap().to_string(), "2023-11-15");
        assert_eq!(
            run("DATE_FORMAT(ts, 'yyyy/MM/dd')").unwrap(),
            s("2024/03/05")
        );
        assert_eq!(
            run("DATE_FORMAT('2024-01-02 03:04:05', 'HH:mm')").unwrap(),
            s("03:04")
        );
        assert_eq!(
            run("TIMESTAMPADD(DAY, 30, ts)").unwrap().to_string(),
            "2024-04-04 14:07:09"
        );
        assert_eq!(
            run("TIMESTAMPDIFF(HOUR, ts, TIMESTAMP '2024-03-06 15:00:00')").unwrap(),
            Value::Int(24)
        );
        assert_eq!(
            run("TO_TIMESTAMP('2024-01-02 03:04:05')")
                .unwrap()
                .to_string(),
            "2024-01-02 03:04:05"
        );
        assert_eq!(
            run("TO_TIMESTAMP('02/01/2024', 'dd/MM/yyyy')")
                .unwrap()
                .to_string(),
            "2024-01-02 00:00:00"
        );
        assert_eq!(run("TO_TIMESTAMP('nope')").unwrap(), Value::Null);
        assert_eq!(
            run("TO_TIMESTAMP_LTZ(1700000000000)").unwrap(),
            Value::TimestampLtz(1_700_000_000_000_000)
        );
        assert_eq!(
            run("TO_TIMESTAMP_LTZ(1700000000, 0)").unwrap(),
            Value::TimestampLtz(1_700_000_000_000_000)
        );
        assert_eq!(run("FROM_UNIXTIME(0)").unwrap(), s("1970-01-01 08:00:00"));
        assert_eq!(run("FROM_UNIXTIME(0, 'yyyy')").unwrap(), s("1970"));
        assert_eq!(
            run("UNIX_TIMESTAMP('1970-01-01 08:00:01')").unwrap(),
            Value::BigInt(1)
        );
        assert_eq!(
            run("UNIX_TIMESTAMP()").unwrap(),
            Value::BigInt(1_700_000_000)
        );
        assert_eq!(
            run("TIMESTAMPADD(MONTH, 1, DATE '2024-01-31')")
                .unwrap()
                .to_string(),
            "2024-02-29"
        );
        assert!(
            run("TIMESTAMPADD(HOUR, 1, DATE '2024-01-31')")
                .unwrap_err()
                .contains("CAST it to TIMESTAMP")
        );
        assert_eq!(
            run("TIMESTAMPADD(HOUR, 1, CURRENT_TIMESTAMP)").unwrap(),
            Value::TimestampLtz(1_700_003_600_123_000)
        );
        assert_eq!(
            run("CAST(CURRENT_TIMESTAMP AS STRING)").unwrap(),
            s("2023-11-15 06:13:20.123000")
        );
        assert_eq!(
            run("DATE_FORMAT(CURRENT_TIMESTAMP, 'HH:mm:ss.SSS')").unwrap(),
            s("06:13:20.123")
        );
    }

    #[test]
    fn metadata_columns() {
        assert_eq!(run("__table_name__").unwrap(), s("orders"));
        assert_eq!(run("__schema_name__").unwrap(), s("shop"));
        assert_eq!(run("__namespace_name__").unwrap(), Value::Null);
        assert_eq!(run("__data_event_type__").unwrap(), s("+I"));
        assert_eq!(run("op_ts").unwrap(), Value::BigInt(1_700_000_000_000));
        assert!(run("UUID()").unwrap().to_string().len() == 36);
    }

    #[test]
    fn source_metadata_columns() {
        let meta: BTreeMap<String, String> = [
            ("table_name", "orders_src"),
            ("database_name", "shop_src"),
            ("row_kind", "+U"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        assert_eq!(
            run_with("table_name", "+I", &meta).unwrap(),
            s("orders_src")
        );
        assert_eq!(
            run_with("database_name", "+I", &meta).unwrap(),
            s("shop_src")
        );
        // An update's before image reads -U, its after image +U.
        assert_eq!(run_with("row_kind", "-U", &meta).unwrap(), s("-U"));
        assert_eq!(run_with("row_kind", "+U", &meta).unwrap(), s("+U"));
        let mut delete = meta.clone();
        delete.insert("row_kind".into(), "-D".into());
        assert_eq!(run_with("row_kind", "-D", &delete).unwrap(), s("-D"));
        for key in ["table_name", "database_name", "row_kind"] {
            let err = run(key).unwrap_err();
            assert!(
                err.contains(&format!(
                    "no `{key}` metadata: add {key} to the source's metadata.list"
                )),
                "{err}"
            );
        }
    }

    #[test]
    fn flink_cdc_3_6_temporal_functions() {
        // Session zone +08:00; ts = 2024-03-05 14:07:09.
        assert_eq!(
            run("TO_DATE('2024-01-02')").unwrap().to_string(),
            "2024-01-02"
        );
        assert_eq!(
            run("TO_DATE('02/01/2024', 'dd/MM/yyyy')")
                .unwrap()
                .to_string(),
            "2024-01-02"
        );
        assert_eq!(run("TO_DATE('nope')").unwrap(), Value::Null);
        assert_eq!(run("TO_DATE(ts)").unwrap().to_string(), "2024-03-05");
        assert_eq!(run("DATE_ADD(ts, 30)").unwrap(), s("2024-04-04"));
        assert_eq!(
            run("DATE_ADD(CAST(ts AS DATE), -5)").unwrap(),
            s("2024-02-29")
        );
        assert_eq!(run("DATE_ADD('2024-02-28', 1)").unwrap(), s("2024-02-29"));
        assert_eq!(
            run("DATE_ADD('2024-02-28 23:59:59', 2)").unwrap(),
            s("2024-03-01")
        );
        assert!(
            run("DATE_ADD('2024-2-8', 1)")
                .unwrap_err()
                .contains("DATE_ADD cannot read '2024-2-8'")
        );
        assert!(run("DATE_ADD('2024-02-30', 1)").is_err());
        // 2023-11-14 22:13:20 UTC is already the 15th at +08:00.
        assert_eq!(
            run("DATE_ADD(CURRENT_TIMESTAMP, 0)").unwrap(),
            s("2023-11-15")
        );
        assert_eq!(run("DATE_ADD(ts, n)").unwrap(), Value::Null);
        assert!(
            run("DATE_ADD(ts, 9999999)")
                .unwrap_err()
                .contains("out of range")
        );
        assert_eq!(
            run("DATE_FORMAT_TZ(CURRENT_TIMESTAMP, 'UTC')").unwrap(),
            s("2023-11-14 22:13:20")
        );
        assert_eq!(
            run("DATE_FORMAT_TZ(CURRENT_TIMESTAMP, 'yyyy-MM-dd HH:mm', 'Asia/Tokyo')").unwrap(),
            s("2023-11-15 07:13")
        );
        // A TIMESTAMP is the zone's wall clock: the zone changes nothing but zone letters.
        assert_eq!(
            run("DATE_FORMAT_TZ(ts, 'HH:mm', '-05:00')").unwrap(),
            s("14:07")
        );
        assert_eq!(
            run("TO_TIMESTAMP_LTZ('2024-01-02 03:04:05.678')").unwrap(),
            Value::TimestampLtz(1_704_164_645_678_000)
        );
        assert_eq!(
            run("TO_TIMESTAMP_LTZ('2024-01-02 03:04', 'yyyy-MM-dd HH:mm')").unwrap(),
            Value::TimestampLtz(1_704_164_640_000_000)
        );
        assert_eq!(
            run("TO_TIMESTAMP_LTZ('2024-01-02 11:04', 'yyyy-MM-dd HH:mm', 'Asia/Shanghai')")
                .unwrap(),
            Value::TimestampLtz(1_704_164_640_000_000)
        );
        assert!(
            run("TO_TIMESTAMP_LTZ('2024-01-02 03:04:05')")
                .unwrap_err()
                .contains(
                    "cannot read '2024-01-02 03:04:05' with the pattern 'yyyy-MM-dd HH:mm:ss.SSS'"
                )
        );
        assert_eq!(run("TO_TIMESTAMP_LTZ(name || n)").unwrap(), Value::Null);
    }

    #[test]
    fn json_functions_and_subscripts() {
        assert_eq!(
            run("PARSE_JSON('{\"b\": [1, 2], \"a\": \"x\"}')").unwrap(),
            Value::Json(r#"{"a":"x","b":[1,2]}"#.into())
        );
        assert_eq!(
            run("PARSE_JSON('{\"b\": [1, 2]}')['b'][2]").unwrap(),
            Value::Json("2".into())
        );
        assert_eq!(run("PARSE_JSON('[1]')[5]").unwrap(), Value::Null);
        assert_eq!(run("PARSE_JSON('[1]')['k']").unwrap(), Value::Null);
        assert_eq!(run("PARSE_JSON('')").unwrap(), Value::Null);
        assert!(
            run("PARSE_JSON(name)")
                .unwrap_err()
                .starts_with("PARSE_JSON: 'Alice Smith' is not valid JSON")
        );
        assert_eq!(run("TRY_PARSE_JSON(name)").unwrap(), Value::Null);
        let dup = "'{\"k\": 1, \"k\": 2}'";
        assert!(
            run(&format!("PARSE_JSON({dup})"))
                .unwrap_err()
                .contains("duplicate key")
        );
        assert_eq!(run(&format!("TRY_PARSE_JSON({dup})")).unwrap(), Value::Null);
        assert_eq!(
            run(&format!("PARSE_JSON({dup}, TRUE)")).unwrap(),
            Value::Json(r#"{"k":2}"#.into())
        );
        assert_eq!(
            run("CAST(PARSE_JSON('{\"a\":1}')['a'] AS STRING)").unwrap(),
            s("1")
        );
    }
}

#[cfg(test)]
mod extreme_values {
    #![allow(clippy::unwrap_used)]
    use cdc_api::{Column, DataType, DataTypeKind as K, Decimal, Schema, Timestamp};

    use super::*;
    use crate::transform::bind::{Scope, bind};
    use crate::transform::parse::parse_projection;

    /// Every function and operator on extreme inputs gives a value or an error, never a panic.
    #[test]
    fn nothing_panics() {
        let schema = Schema::new(vec![
            Column::new("b", DataType::new(K::BigInt)),
            Column::new(
                "d",
                DataType::new(K::Decimal {
                    precision: 38,
                    scale: 0,
                }),
            ),
            Column::new("f", DataType::new(K::Double)),
            Column::new("s", DataType::new(K::String)),
            Column::new("t", DataType::new(K::Timestamp { precision: 6 })),
            Column::new("l", DataType::new(K::TimestampLtz { precision: 6 })),
        ]);
        let rows = [
            vec![
                Value::BigInt(i64::MIN),
                Value::Decimal(Decimal::parse(&"9".repeat(38)).unwrap()),
                Value::Double(f64::MAX),
                Value::String("\u{1F600}%_\\".into()),
                Value::Timestamp(Timestamp::new(
                    cdc_api::Date::new(9999, 12, 31),
                    23,
                    59,
                    59,
                    999_999,
                )),
                Value::TimestampLtz(i64::MAX),
            ],
            vec![
                Value::BigInt(i64::MAX),
                Value::Decimal(Decimal::parse(&format!("-{}", "9".repeat(38))).unwrap()),
                Value::Double(f64::NAN),
                Value::String(String::new()),
                Value::Timestamp(Timestamp::new(cdc_api::Date::new(0, 0, 0), 0, 0, 0, 0)),
                Value::TimestampLtz(i64::MIN),
            ],
        ];
        let exprs = [
            "b + 1",
            "b - 1",
            "b * b",
            "b / -1",
            "b % -1",
            "-b",
            "ABS(b)",
            "d + d",
            "d * d",
            "d / 0.0000001",
            "d % 7",
            "ROUND(d, -40)",
            "ROUND(b, -30)",
            "CEIL(f)",
            "ROUND(f, 2)",
            "CAST(f AS BIGINT)",
            "CAST(f AS DECIMAL(38, 10))",
            "CAST(d AS INT)",
            "CAST(s AS DATE)",
            "SUBSTR(s, b, b)",
            "SUBSTR(s, -1)",
            "TIMESTAMPADD(YEAR, b, t)",
            "TIMESTAMPADD(SECOND, b, l)",
            "TIMESTAMPDIFF(SECOND, t, l)",
            "TIMESTAMPDIFF(YEAR, t, l)",
            "DATE_FORMAT(l, 'yyyy-MM-dd E D')",
            "DATE_FORMAT(t, 'yyyy-MM-dd E D a h k K')",
            "FROM_UNIXTIME(b)",
            "TO_TIMESTAMP_LTZ(b)",
            "TO_TIMESTAMP_LTZ(f, 0)",
            "TO_TIMESTAMP(s, 'yyyyMMddHHmmssSSS')",
            "UNIX_TIMESTAMP(s)",
            "s LIKE s",
            "REGEXP_REPLACE(s, s, s)",
            "CAST(l AS STRING)",
            "CAST(t AS TIMESTAMP(3))",
            "b BETWEEN d AND f",
            "f = f",
            "t = l",
            "CAST(l AS DATE)",
            "DATE_ADD(t, b)",
            "DATE_ADD(s, b)",
            "TO_DATE(s, s)",
            "TO_DATE(l)",
            "DATE_FORMAT_TZ(l, s, s)",
            "DATE_FORMAT_TZ(t, 'Pacific/Kiritimati')",
            "TO_TIMESTAMP_LTZ(s, s, s)",
            "TRY_PARSE_JSON(s)['k'][b]",
            "PARSE_JSON(s, TRUE)",
        ];
        let table = TableId::new("db", "t");
        let meta = BTreeMap::new();
        let mut evaluated = 0;
        for text in exprs {
            let items = parse_projection(&format!("{text} AS x")).unwrap();
            let crate::transform::parse::ProjectionItem::Column { expr, .. } = &items[0] else {
                panic!("{text}");
            };
            let Ok(bound) = bind(
                expr,
                &Scope {
                    schema: &schema,
                    aliases: &[],
                    mode: crate::transform::types::DecimalMode::UpTo38,
                },
            ) else {
                panic!("{text} does not bind");
            };
            evaluated += 1;
            for row in &rows {
                for zone in [Zone::Fixed(0), Zone::parse("America/New_York").unwrap()] {
                    let ctx = Ctx {
                        row,
                        table: &table,
                        event_type: "+I",
                        meta: &meta,
                        now_micros: 0,
                        zone,
                    };
                    let _ = eval(&bound, &ctx);
                }
            }
        }
        assert_eq!(evaluated, exprs.len());
    }
}
