//! Binding: resolves column names of a parsed expression against a table's schema (and the
//! metadata columns), checks operand types and derives every node's result type. Runs when
//! a table's schema arrives or changes, never per row.

use cdc_api::{DataType, DataTypeKind as K, Schema, Value};

use super::expr::{BinaryOp, Expr, Func, Meta, Node, UnaryOp};
use super::functions::{java_regex, like_regex};
use super::types::{self, arithmetic, common, comparable, is_integer, is_numeric, is_text};

/// What names resolve to while binding.
pub(crate) struct Scope<'a> {
    /// The input table's schema.
    pub(crate) schema: &'a Schema,
    /// Projection outputs a filter may reference by name (already bound); they win over
    /// source columns of the same name, as the filter sees the projected row in Flink CDC.
    pub(crate) aliases: &'a [(String, Expr)],
}

impl Scope<'_> {
    fn resolve(&self, name: &str) -> Option<Expr> {
        if let Some((_, e)) = self.aliases.iter().find(|(n, _)| n == name) {
            return Some(e.clone());
        }
        let index = self.schema.column_index(name).or_else(|| {
            self.schema
                .columns
                .iter()
                .position(|c| c.name.eq_ignore_ascii_case(name))
        });
        if let Some(i) = index {
            return Some(Expr {
                node: Node::Input(i),
                ty: self.schema.columns[i].data_type.clone(),
                text: name.to_string(),
            });
        }
        Meta::from_name(name).map(|m| Expr {
            node: Node::Meta(m),
            ty: m.data_type(),
            text: name.to_string(),
        })
    }
}

fn literal_type(v: &Value) -> DataType {
    let kind = match v {
        Value::Null => return DataType::new(K::String),
        Value::Boolean(_) => K::Boolean,
        Value::Int(_) => K::Int,
        Value::BigInt(_) => K::BigInt,
        Value::Double(_) => K::Double,
        Value::Decimal(d) => {
            let digits = d.to_string().chars().filter(char::is_ascii_digit).count();
            let scale = d.scale();
            types::adjust(digits.max(usize::from(scale) + 1) as u32, u32::from(scale))
        }
        _ => K::String,
    };
    DataType::new(kind).not_null()
}

fn boolean(nullable: bool) -> DataType {
    DataType::new(K::Boolean).with_nullable(nullable)
}

fn is_null_literal(e: &Expr) -> bool {
    matches!(e.node, Node::Literal(Value::Null))
}

fn require_boolean(e: &Expr, what: &str) -> Result<(), String> {
    if e.ty.kind == K::Boolean || is_null_literal(e) {
        Ok(())
    } else {
        Err(format!(
            "{what} needs a BOOLEAN, got {} at '{}'",
            e.ty.kind, e.text
        ))
    }
}

fn require_numeric(e: &Expr, func: &str) -> Result<(), String> {
    if is_numeric(&e.ty.kind) || is_null_literal(e) {
        Ok(())
    } else {
        Err(format!(
            "{func} needs a number, got {} at '{}'",
            e.ty.kind, e.text
        ))
    }
}

/// Binds `e` in `scope`: a new tree with columns resolved and types derived.
pub(crate) fn bind(e: &Expr, scope: &Scope<'_>) -> Result<Expr, String> {
    let text = e.text.clone();
    let b = |x: &Expr| bind(x, scope).map(Box::new);
    let (node, ty) = match &e.node {
        Node::Literal(v) => (Node::Literal(v.clone()), literal_type(v)),
        Node::Column(name) => {
            return scope
                .resolve(name)
                .ok_or_else(|| format!("unknown column `{name}`"));
        }
        Node::Input(_) => (e.node.clone(), e.ty.clone()),
        Node::Meta(m) => (Node::Meta(*m), m.data_type()),
        Node::Unary(op, x) => {
            let x = b(x)?;
            let ty = match op {
                UnaryOp::Neg => {
                    require_numeric(&x, "unary minus")?;
                    x.ty.clone()
                }
                UnaryOp::Not => {
                    require_boolean(&x, "NOT")?;
                    boolean(x.ty.nullable)
                }
                UnaryOp::IsNull | UnaryOp::IsNotNull => boolean(false),
                _ => {
                    require_boolean(&x, "IS TRUE / IS FALSE")?;
                    boolean(false)
                }
            };
            (Node::Unary(*op, x), ty)
        }
        Node::Binary(op, l, r) => {
            let (l, r) = (b(l)?, b(r)?);
            let nullable = l.ty.nullable || r.ty.nullable;
            let ty = match op {
                op if op.is_arithmetic() => {
                    if is_null_literal(&l) || is_null_literal(&r) {
                        let other = if is_null_literal(&l) { &r.ty } else { &l.ty };
                        other.clone().with_nullable(true)
                    } else {
                        arithmetic(*op, &l.ty, &r.ty).ok_or_else(|| {
                            format!(
                                "arithmetic needs numbers, got {} and {} at '{text}'",
                                l.ty.kind, r.ty.kind
                            )
                        })?
                    }
                }
                BinaryOp::And | BinaryOp::Or => {
                    require_boolean(&l, "AND / OR")?;
                    require_boolean(&r, "AND / OR")?;
                    boolean(nullable)
                }
                BinaryOp::Concat => DataType::new(K::String).with_nullable(nullable),
                BinaryOp::IsDistinctFrom | BinaryOp::IsNotDistinctFrom => {
                    check_comparable(&l, &r, &text)?;
                    boolean(false)
                }
                _ => {
                    check_comparable(&l, &r, &text)?;
                    boolean(nullable)
                }
            };
            (Node::Binary(*op, l, r), ty)
        }
        Node::Between {
            expr,
            low,
            high,
            negated,
        } => {
            let (x, lo, hi) = (b(expr)?, b(low)?, b(high)?);
            check_comparable(&x, &lo, &text)?;
            check_comparable(&x, &hi, &text)?;
            let ty = boolean(x.ty.nullable || lo.ty.nullable || hi.ty.nullable);
            (
                Node::Between {
                    expr: x,
                    low: lo,
                    high: hi,
                    negated: *negated,
                },
                ty,
            )
        }
        Node::In {
            expr,
            list,
            negated,
        } => {
            let x = b(expr)?;
            let list = list
                .iter()
                .map(|i| bind(i, scope))
                .collect::<Result<Vec<_>, _>>()?;
            for i in &list {
                check_comparable(&x, i, &text)?;
            }
            let ty = boolean(x.ty.nullable || list.iter().any(|i| i.ty.nullable));
            (
                Node::In {
                    expr: x,
                    list,
                    negated: *negated,
                },
                ty,
            )
        }
        Node::Like {
            expr,
            pattern,
            escape,
            negated,
            ..
        } => {
            let (x, p) = (b(expr)?, b(pattern)?);
            let compiled = match &p.node {
                Node::Literal(Value::String(s)) => {
                    Some(like_regex(s, *escape).map_err(|m| format!("{m} at '{text}'"))?)
                }
                _ => None,
            };
            let ty = boolean(x.ty.nullable || p.ty.nullable);
            (
                Node::Like {
                    expr: x,
                    pattern: p,
                    escape: *escape,
                    negated: *negated,
                    compiled,
                },
                ty,
            )
        }
        Node::Case {
            operand,
            branches,
            otherwise,
        } => {
            let operand = operand.as_deref().map(b).transpose()?;
            let mut bound = Vec::with_capacity(branches.len());
            for (w, t) in branches {
                let w = bind(w, scope)?;
                match &operand {
                    Some(o) => check_comparable(o, &w, &text)?,
                    None => require_boolean(&w, "CASE WHEN")?,
                }
                bound.push((w, bind(t, scope)?));
            }
            let otherwise = otherwise.as_deref().map(b).transpose()?;
            let mut results: Vec<Option<&DataType>> = bound
                .iter()
                .map(|(_, t)| (!is_null_literal(t)).then_some(&t.ty))
                .collect();
            results.push(
                otherwise
                    .as_deref()
                    .filter(|o| !is_null_literal(o))
                    .map(|o| &o.ty),
            );
            let mut ty = common(&results);
            ty.nullable = ty.nullable
                || otherwise
                    .as_deref()
                    .is_none_or(|o| o.ty.nullable || is_null_literal(o))
                || bound
                    .iter()
                    .any(|(_, t)| t.ty.nullable || is_null_literal(t));
            (
                Node::Case {
                    operand,
                    branches: bound,
                    otherwise,
                },
                ty,
            )
        }
        Node::Cast(x) => {
            let x = b(x)?;
            let ty = e.ty.clone().with_nullable(x.ty.nullable);
            check_cast(&x.ty.kind, &ty.kind, &text)?;
            (Node::Cast(x), ty)
        }
        Node::Call { func, args, .. } => {
            let args = args
                .iter()
                .map(|a| bind(a, scope))
                .collect::<Result<Vec<_>, _>>()?;
            let ty = call_type(*func, &args, &text)?;
            let regex = match (func, args.get(1).map(|a| &a.node)) {
                (Func::RegexpReplace, Some(Node::Literal(Value::String(p)))) => {
                    Some(java_regex(p).map_err(|m| format!("{m} at '{text}'"))?)
                }
                _ => None,
            };
            (
                Node::Call {
                    func: *func,
                    args,
                    regex,
                },
                ty,
            )
        }
    };
    Ok(Expr { node, ty, text })
}

fn check_comparable(a: &Expr, b: &Expr, text: &str) -> Result<(), String> {
    if is_null_literal(a) || is_null_literal(b) || comparable(&a.ty.kind, &b.ty.kind) {
        Ok(())
    } else {
        Err(format!(
            "cannot compare {} with {} at '{text}'",
            a.ty.kind, b.ty.kind
        ))
    }
}

fn check_cast(from: &K, to: &K, text: &str) -> Result<(), String> {
    let ok = from == to
        || is_text(to)
        || is_text(from)
        || (is_numeric(from) && (is_numeric(to) || *to == K::Boolean))
        || (*from == K::Boolean && is_numeric(to))
        || (types::is_temporal(from) && types::is_temporal(to))
        || (is_integer(from) && matches!(to, K::Timestamp { .. } | K::TimestampLtz { .. }));
    if ok {
        Ok(())
    } else {
        Err(format!("cannot CAST {from} to {to} at '{text}'"))
    }
}

fn any_nullable(args: &[Expr]) -> bool {
    args.iter().any(|a| a.ty.nullable || is_null_literal(a))
}

fn call_type(func: Func, args: &[Expr], text: &str) -> Result<DataType, String> {
    let nullable = any_nullable(args);
    let string = DataType::new(K::String).with_nullable(nullable);
    let first = args.first();
    let numeric_arg = |name: &str| -> Result<DataType, String> {
        let a = first.ok_or_else(|| format!("{name} needs an argument at '{text}'"))?;
        require_numeric(a, name)?;
        Ok(a.ty.clone())
    };
    let integer_literal = |i: usize, name: &str| -> Result<i64, String> {
        match args.get(i).map(|a| &a.node) {
            Some(Node::Literal(v)) if v.as_i64().is_some() => Ok(v.as_i64().unwrap_or(0)),
            _ => Err(format!(
                "{name}'s argument {} must be an integer literal at '{text}'",
                i + 1
            )),
        }
    };
    Ok(match func {
        Func::Abs => numeric_arg("ABS")?,
        Func::Ceil | Func::Floor => {
            let t = numeric_arg("CEIL / FLOOR")?;
            match t.kind {
                K::Decimal { precision, scale } if scale > 0 => {
                    DataType::new(types::adjust(u32::from(precision - scale) + 1, 0))
                        .with_nullable(t.nullable)
                }
                _ => t,
            }
        }
        Func::Round => {
            let t = numeric_arg("ROUND")?;
            let digits = if args.len() > 1 {
                integer_literal(1, "ROUND")?
            } else {
                0
            };
            match t.kind {
                K::Decimal { precision, scale } if i64::from(scale) > digits => {
                    let s = digits.max(0) as u32;
                    DataType::new(types::adjust(u32::from(precision - scale) + s + 1, s))
                        .with_nullable(t.nullable)
                }
                _ => t,
            }
        }
        Func::Uuid => DataType::new(K::String).not_null(),
        Func::CharLength => DataType::new(K::Int).with_nullable(nullable),
        Func::Upper
        | Func::Lower
        | Func::Trim
        | Func::LTrim
        | Func::RTrim
        | Func::Substr
        | Func::RegexpReplace
        | Func::Concat
        | Func::DateFormat
        | Func::FromUnixtime => string,
        Func::LocalTimestamp => DataType::new(K::Timestamp { precision: 3 }).not_null(),
        Func::CurrentTimestamp => DataType::new(K::TimestampLtz { precision: 3 }).not_null(),
        Func::CurrentDate => DataType::new(K::Date).not_null(),
        Func::LocalTime => DataType::new(K::Time { precision: 0 }).not_null(),
        Func::TimestampAdd => {
            let ts = args
                .get(2)
                .map_or_else(|| DataType::new(K::String), |a| a.ty.clone());
            if !types::is_temporal(&ts.kind) {
                return Err(format!(
                    "TIMESTAMPADD needs a date or timestamp, got {} at '{text}'",
                    ts.kind
                ));
            }
            ts.with_nullable(nullable)
        }
        Func::TimestampDiff => DataType::new(K::Int).with_nullable(nullable),
        Func::ToTimestamp => DataType::new(K::Timestamp { precision: 3 }).with_nullable(nullable),
        Func::ToTimestampLtz => {
            if args.len() > 1 {
                let p = integer_literal(1, "TO_TIMESTAMP_LTZ")?;
                if p != 0 && p != 3 {
                    return Err(format!(
                        "TO_TIMESTAMP_LTZ precision must be 0 (seconds) or 3 (milliseconds) at '{text}'"
                    ));
                }
            }
            DataType::new(K::TimestampLtz { precision: 3 }).with_nullable(nullable)
        }
        Func::UnixTimestamp => DataType::new(K::BigInt).with_nullable(nullable),
        Func::Coalesce => {
            let typed: Vec<_> = args
                .iter()
                .map(|a| (!is_null_literal(a)).then_some(&a.ty))
                .collect();
            let mut ty = common(&typed);
            ty.nullable = args.iter().all(|a| a.ty.nullable || is_null_literal(a));
            ty
        }
        Func::If => {
            if let Some(c) = first {
                require_boolean(c, "IF")?;
            }
            let branches = args.get(1..).unwrap_or_default();
            let typed: Vec<_> = branches
                .iter()
                .map(|a| (!is_null_literal(a)).then_some(&a.ty))
                .collect();
            let mut ty = common(&typed);
            ty.nullable = any_nullable(branches);
            ty
        }
        // Flink CDC's TransformSqlReturnTypes.IF_NULL: a NOT NULL first argument is the
        // result as it is; otherwise the common type, nullable when the replacement is.
        Func::IfNull => match first {
            Some(a) if !a.ty.nullable && !is_null_literal(a) => a.ty.clone(),
            _ => {
                let typed: Vec<_> = args
                    .iter()
                    .map(|a| (!is_null_literal(a)).then_some(&a.ty))
                    .collect();
                let mut ty = common(&typed);
                ty.nullable = args
                    .get(1)
                    .is_none_or(|r| r.ty.nullable || is_null_literal(r));
                ty
            }
        },
        Func::NullIf => {
            let t = first.map_or_else(|| DataType::new(K::String), |a| a.ty.clone());
            t.with_nullable(true)
        }
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use cdc_api::Column;

    use super::*;
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
        ])
    }

    fn ty(text: &str) -> Result<DataType, String> {
        let s = schema();
        let scope = Scope {
            schema: &s,
            aliases: &[],
        };
        bind(&parse_filter(text)?, &scope).map(|e| e.ty)
    }

    #[test]
    fn types_are_derived() {
        assert_eq!(ty("id + 1").unwrap(), DataType::new(K::Int).not_null());
        assert_eq!(
            ty("price * 2").unwrap(),
            DataType::new(K::Decimal {
                precision: 21,
                scale: 2
            })
        );
        assert_eq!(ty("id > 1").unwrap(), DataType::new(K::Boolean).not_null());
        assert_eq!(
            ty("name IS NULL").unwrap(),
            DataType::new(K::Boolean).not_null()
        );
        assert_eq!(ty("UPPER(name)").unwrap(), DataType::new(K::String));
        assert_eq!(
            ty("COALESCE(name, 'x')").unwrap(),
            DataType::new(K::String).not_null()
        );
        assert_eq!(
            ty("CASE WHEN id > 1 THEN 1 ELSE 2.5 END").unwrap(),
            DataType::new(K::Decimal {
                precision: 11,
                scale: 1
            })
            .not_null()
        );
        assert_eq!(
            ty("ROUND(price, 1)").unwrap(),
            DataType::new(K::Decimal {
                precision: 10,
                scale: 1
            })
        );
        assert_eq!(
            ty("CAST(id AS DECIMAL(5, 1))").unwrap(),
            DataType::new(K::Decimal {
                precision: 5,
                scale: 1
            })
            .not_null()
        );
        assert_eq!(
            ty("__table_name__").unwrap(),
            DataType::new(K::String).not_null()
        );
        assert_eq!(ty("op_ts").unwrap(), DataType::new(K::BigInt).not_null());
        assert_eq!(ty("ID + 0").unwrap(), DataType::new(K::Int).not_null());
    }

    #[test]
    fn bad_types_and_names_are_reported() {
        assert_eq!(ty("nope + 1").unwrap_err(), "unknown column `nope`");
        assert!(
            ty("name + 1")
                .unwrap_err()
                .contains("arithmetic needs numbers, got VARCHAR(20) and INT at 'name + 1'")
        );
        assert!(
            ty("id AND true")
                .unwrap_err()
                .contains("AND / OR needs a BOOLEAN")
        );
        assert!(ty("name LIKE '[' ").is_ok());
        assert!(
            ty("REGEXP_REPLACE(name, '(', 'x')")
                .unwrap_err()
                .contains("regular expression")
        );
    }
}
