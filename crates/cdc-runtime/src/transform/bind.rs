//! Binding: resolves column names of a parsed expression against a table's schema (and the
//! metadata columns), checks operand types and derives every node's result type. Runs when
//! a table's schema arrives or changes, never per row.

use cdc_api::{DataType, DataTypeKind as K, Schema, Value};

use super::expr::{BinaryOp, Expr, Func, Meta, Node, UnaryOp};
use super::functions::{java_regex, like_regex};
use super::temporal::Zone;
use super::types::{
    self, DecimalMode, arithmetic, common, comparable, is_integer, is_numeric, is_temporal, is_text,
};

/// What names resolve to while binding.
pub(crate) struct Scope<'a> {
    /// The input table's schema.
    pub(crate) schema: &'a Schema,
    /// Projection outputs a filter may reference by name (already bound); they win over
    /// source columns of the same name, as the filter sees the projected row in Flink CDC.
    pub(crate) aliases: &'a [(String, Expr)],
    /// `pipeline.transform.decimal.precision.mode`.
    pub(crate) mode: DecimalMode,
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
                ty: self.mode.fit(&self.schema.columns[i].data_type),
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

fn literal_type(v: &Value, mode: DecimalMode) -> DataType {
    let kind = match v {
        Value::Null => return DataType::new(K::String),
        Value::Boolean(_) => K::Boolean,
        Value::Int(_) => K::Int,
        Value::BigInt(_) => K::BigInt,
        Value::Double(_) => K::Double,
        Value::Decimal(d) => {
            let digits = d.to_string().chars().filter(char::is_ascii_digit).count();
            let scale = d.scale();
            mode.decimal(digits.max(usize::from(scale) + 1) as u32, u32::from(scale))
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
        Node::Literal(v) => (Node::Literal(v.clone()), literal_type(v, scope.mode)),
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
                        arithmetic(*op, &l.ty, &r.ty, scope.mode).ok_or_else(|| {
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
            let mut ty = common(&results, scope.mode);
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
            let ty = scope.mode.fit(&e.ty).with_nullable(x.ty.nullable);
            check_cast(&x.ty.kind, &ty.kind, &text)?;
            (Node::Cast(x), ty)
        }
        Node::Call { func, args, .. } => {
            let args = args
                .iter()
                .map(|a| bind(a, scope))
                .collect::<Result<Vec<_>, _>>()?;
            let ty = call_type(*func, &args, &text, scope.mode)?;
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

/// The kinds of argument a function takes, as Flink CDC's operand checkers name them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Family {
    Text,
    Integer,
    Numeric,
    Boolean,
    /// DATE, TIME, TIMESTAMP, TIMESTAMP_LTZ, or text parsed as one.
    TemporalOrText,
    /// TIMESTAMP or TIMESTAMP_LTZ (Calcite's TIMESTAMP family).
    Timestamp,
}

impl Family {
    fn accepts(self, k: &K) -> bool {
        match self {
            Self::Text => is_text(k) || *k == K::Json,
            Self::Integer => is_integer(k),
            Self::Numeric => is_numeric(k),
            Self::Boolean => *k == K::Boolean,
            Self::TemporalOrText => is_temporal(k) || is_text(k),
            Self::Timestamp => matches!(
                k,
                K::Timestamp { .. } | K::TimestampLtz { .. } | K::TimestampTz { .. }
            ),
        }
    }

    fn name(self) -> &'static str {
        match self {
            Self::Text => "a STRING",
            Self::Integer => "an integer (TINYINT, SMALLINT, INT or BIGINT)",
            Self::Numeric => "a number",
            Self::Boolean => "a BOOLEAN",
            Self::TemporalOrText => "a DATE, TIMESTAMP, TIMESTAMP_LTZ or a STRING holding one",
            Self::Timestamp => "a TIMESTAMP or TIMESTAMP_LTZ",
        }
    }
}

/// One signature of a function: the family of each argument in order.
type Signature = &'static [Family];

/// Checks `args` against the signatures `func` accepts (an untyped NULL fits anything) and
/// names the expression, the argument and the expected types when none fits.
fn check_args(
    name: &str,
    args: &[Expr],
    signatures: &[Signature],
    text: &str,
) -> Result<(), String> {
    let fits = |sig: &Signature| {
        sig.len() == args.len()
            && sig
                .iter()
                .zip(args)
                .all(|(f, a)| is_null_literal(a) || f.accepts(&a.ty.kind))
    };
    if signatures.iter().any(fits) {
        return Ok(());
    }
    // Name the first argument that breaks every signature of this arity matching so far.
    let fit = |f: &Family, a: &Expr| is_null_literal(a) || f.accepts(&a.ty.kind);
    let prefix = |sig: &Signature| sig.iter().zip(args).take_while(|(f, a)| fit(f, a)).count();
    let same_arity: Vec<&Signature> = signatures
        .iter()
        .filter(|s| s.len() == args.len())
        .collect();
    if let Some(longest) = same_arity.iter().map(|s| prefix(s)).max() {
        let mut wanted: Vec<&str> = same_arity
            .iter()
            .filter(|s| prefix(s) == longest)
            .filter_map(|s| s.get(longest).map(|f| f.name()))
            .collect();
        wanted.dedup();
        if let Some(a) = args.get(longest) {
            return Err(format!(
                "{name}'s argument {} must be {}, got {} ('{}') at '{text}'",
                longest + 1,
                wanted.join(" or "),
                a.ty.kind,
                a.text
            ));
        }
    }
    let accepted: Vec<String> = signatures
        .iter()
        .map(|s| {
            let kinds: Vec<&str> = s.iter().map(|f| f.name()).collect();
            format!("{name}({})", kinds.join(", "))
        })
        .collect();
    let got: Vec<String> = args.iter().map(|a| a.ty.kind.to_string()).collect();
    Err(format!(
        "{name} does not take ({}) at '{text}'; it takes {}",
        got.join(", "),
        accepted.join(" | ")
    ))
}

use Family as F;

/// The argument types each function accepts; `None`: any (values are converted to text
/// or checked elsewhere).
fn signatures(func: Func) -> Option<(&'static str, &'static [Signature])> {
    Some(match func {
        Func::DateFormat => ("DATE_FORMAT", &[&[F::TemporalOrText, F::Text]]),
        Func::TimestampDiff => (
            "TIMESTAMPDIFF",
            &[&[F::Text, F::TemporalOrText, F::TemporalOrText]],
        ),
        Func::TimestampAdd => ("TIMESTAMPADD", &[&[F::Text, F::Numeric, F::TemporalOrText]]),
        Func::Substr => (
            "SUBSTR",
            &[&[F::Text, F::Numeric], &[F::Text, F::Numeric, F::Numeric]],
        ),
        Func::ToTimestamp => ("TO_TIMESTAMP", &[&[F::Text], &[F::Text, F::Text]]),
        // Flink CDC takes integers; a DECIMAL or DOUBLE number of seconds works here too.
        Func::ToTimestampLtz => (
            "TO_TIMESTAMP_LTZ",
            &[
                &[F::Numeric],
                &[F::Numeric, F::Integer],
                &[F::Text],
                &[F::Text, F::Text],
                &[F::Text, F::Text, F::Text],
            ],
        ),
        Func::FromUnixtime => ("FROM_UNIXTIME", &[&[F::Numeric], &[F::Numeric, F::Text]]),
        Func::UnixTimestamp => (
            "UNIX_TIMESTAMP",
            &[&[], &[F::TemporalOrText], &[F::TemporalOrText, F::Text]],
        ),
        Func::ToDate => ("TO_DATE", &[&[F::TemporalOrText], &[F::Text, F::Text]]),
        Func::DateAdd => ("DATE_ADD", &[&[F::TemporalOrText, F::Integer]]),
        Func::DateFormatTz => (
            "DATE_FORMAT_TZ",
            &[&[F::Timestamp, F::Text], &[F::Timestamp, F::Text, F::Text]],
        ),
        Func::ParseJson => ("PARSE_JSON", &[&[F::Text], &[F::Text, F::Boolean]]),
        Func::TryParseJson => ("TRY_PARSE_JSON", &[&[F::Text], &[F::Text, F::Boolean]]),
        _ => return None,
    })
}

/// A literal time zone argument must name a zone (checked once, not per row).
fn check_zone_literal(arg: Option<&Expr>, text: &str) -> Result<(), String> {
    if let Some(Expr {
        node: Node::Literal(Value::String(z)),
        ..
    }) = arg
    {
        Zone::parse_id(z).map_err(|m| format!("{m} at '{text}'"))?;
    }
    Ok(())
}

fn call_type(func: Func, args: &[Expr], text: &str, mode: DecimalMode) -> Result<DataType, String> {
    if let Some((name, sigs)) = signatures(func) {
        check_args(name, args, sigs, text)?;
    }
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
    let common_of = |list: &[Expr]| {
        let typed: Vec<_> = list
            .iter()
            .map(|a| (!is_null_literal(a)).then_some(&a.ty))
            .collect();
        common(&typed, mode)
    };
    Ok(match func {
        Func::Abs => numeric_arg("ABS")?,
        // Calcite's ARG0_OR_EXACT_NO_SCALE: DECIMAL(p, s) gives DECIMAL(p, 0).
        Func::Ceil | Func::Floor => {
            let t = numeric_arg("CEIL / FLOOR")?;
            match t.kind {
                K::Decimal { precision, .. } => {
                    DataType::new(mode.decimal(u32::from(precision), 0)).with_nullable(t.nullable)
                }
                _ => t,
            }
        }
        // Flink's LogicalTypeMerging.findRoundDecimalType, cut to the mode.
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
                    DataType::new(mode.decimal(u32::from(precision - scale) + s + 1, s))
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
            if !is_temporal(&ts.kind) {
                return Err(format!(
                    "TIMESTAMPADD's argument 3 must be a DATE, TIMESTAMP or TIMESTAMP_LTZ, got {} at '{text}'",
                    ts.kind
                ));
            }
            ts.with_nullable(nullable)
        }
        Func::TimestampDiff => DataType::new(K::Int).with_nullable(nullable),
        // Flink CDC declares these FORCE_NULLABLE: a value that does not parse gives NULL.
        Func::ToTimestamp => DataType::new(K::Timestamp { precision: 3 }).with_nullable(true),
        Func::ToTimestampLtz => {
            let numeric = first.is_some_and(|a| is_numeric(&a.ty.kind));
            if numeric && args.len() > 1 {
                let p = integer_literal(1, "TO_TIMESTAMP_LTZ")?;
                if p != 0 && p != 3 {
                    return Err(format!(
                        "TO_TIMESTAMP_LTZ precision must be 0 (seconds) or 3 (milliseconds) at '{text}'"
                    ));
                }
            }
            if !numeric {
                check_zone_literal(args.get(2), text)?;
            }
            DataType::new(K::TimestampLtz { precision: 3 }).with_nullable(true)
        }
        Func::ToDate => DataType::new(K::Date).with_nullable(true),
        Func::DateAdd => DataType::new(K::String).with_nullable(true),
        Func::DateFormatTz => {
            check_zone_literal(args.last(), text)?;
            DataType::new(K::String).with_nullable(true)
        }
        Func::ParseJson | Func::TryParseJson => DataType::new(K::Json).with_nullable(true),
        Func::Item => item_type(args, text)?,
        Func::UnixTimestamp => DataType::new(K::BigInt).with_nullable(nullable),
        Func::Coalesce => {
            let mut ty = common_of(args);
            ty.nullable = args.iter().all(|a| a.ty.nullable || is_null_literal(a));
            ty
        }
        Func::If => {
            if let Some(c) = first {
                require_boolean(c, "IF")?;
            }
            let branches = args.get(1..).unwrap_or_default();
            let mut ty = common_of(branches);
            ty.nullable = any_nullable(branches);
            ty
        }
        // Flink CDC's TransformSqlReturnTypes.IF_NULL: a NOT NULL first argument is the
        // result as it is; otherwise the common type, nullable when the replacement is.
        Func::IfNull => match first {
            Some(a) if !a.ty.nullable && !is_null_literal(a) => a.ty.clone(),
            _ => {
                let mut ty = common_of(args);
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

/// The type of `x[i]` (Calcite's ITEM, with Flink CDC 3.6's VARIANT rules for JSON).
fn item_type(args: &[Expr], text: &str) -> Result<DataType, String> {
    let [container, key] = args else {
        return Err(format!("a subscript takes one index at '{text}'"));
    };
    let key_is = |f: Family| is_null_literal(key) || f.accepts(&key.ty.kind);
    let bad_key = |want: &str| {
        format!(
            "the subscript of {} must be {want}, got {} ('{}') at '{text}'",
            container.ty.kind, key.ty.kind, key.text
        )
    };
    let ty = match &container.ty.kind {
        K::Array(element) if key_is(Family::Integer) => (**element).clone(),
        K::Array(_) => return Err(bad_key("an integer (1-based)")),
        K::Map { key: k, value } => {
            if !is_null_literal(key) && !comparable(&k.kind, &key.ty.kind) {
                return Err(bad_key(&format!("a {}", k.kind)));
            }
            (**value).clone()
        }
        K::Row(fields) => {
            let index = match &key.node {
                Node::Literal(v) => v.as_i64(),
                _ => None,
            };
            let field = index
                .and_then(|i| usize::try_from(i).ok())
                .and_then(|i| i.checked_sub(1))
                .and_then(|i| fields.get(i))
                .ok_or_else(|| {
                    bad_key(&format!("an integer literal from 1 to {}", fields.len()))
                })?;
            field.data_type.clone()
        }
        K::Json if key_is(Family::Integer) || key_is(Family::Text) => DataType::new(K::Json),
        K::Json => return Err(bad_key("an integer (1-based) or a STRING key")),
        other => {
            return Err(format!(
                "a subscript needs an ARRAY, MAP, ROW or JSON value (such as PARSE_JSON(...)), got {other} ('{}') at '{text}'",
                container.text
            ));
        }
    };
    Ok(ty.with_nullable(true))
}

/// Binds every part of `e` that names no column (literals, metadata, functions of them)
/// against an empty table, so a type mismatch there is refused when the pipeline file is
/// checked, before any table's schema is known.
pub(crate) fn check_constants(e: &Expr, mode: DecimalMode) -> Result<(), String> {
    if !names_a_column(e) {
        let empty = Schema::new(Vec::new());
        let scope = Scope {
            schema: &empty,
            aliases: &[],
            mode,
        };
        return bind(e, &scope).map(|_| ());
    }
    children(e)
        .into_iter()
        .try_for_each(|c| check_constants(c, mode))
}

fn names_a_column(e: &Expr) -> bool {
    matches!(e.node, Node::Column(_)) || children(e).into_iter().any(names_a_column)
}

fn children(e: &Expr) -> Vec<&Expr> {
    match &e.node {
        Node::Literal(_) | Node::Column(_) | Node::Input(_) | Node::Meta(_) => Vec::new(),
        Node::Unary(_, x) | Node::Cast(x) => vec![x.as_ref()],
        Node::Binary(_, l, r) => vec![l.as_ref(), r.as_ref()],
        Node::Between {
            expr, low, high, ..
        } => vec![expr.as_ref(), low.as_ref(), high.as_ref()],
        Node::In { expr, list, .. } => std::iter::once(expr.as_ref()).chain(list).collect(),
        Node::Like { expr, pattern, .. } => vec![expr.as_ref(), pattern.as_ref()],
        Node::Case {
            operand,
            branches,
            otherwise,
        } => operand
            .as_deref()
            .into_iter()
            .chain(branches.iter().flat_map(|(w, t)| [w, t]))
            .chain(otherwise.as_deref())
            .collect(),
        Node::Call { args, .. } => args.iter().collect(),
    }
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
            mode: DecimalMode::UpTo19,
        };
        bind(&parse_filter(text)?, &scope).map(|e| e.ty)
    }

    #[test]
    fn types_are_derived() {
        assert_eq!(ty("id + 1").unwrap(), DataType::new(K::Int).not_null());
        assert_eq!(
            ty("price * 2").unwrap(),
            DataType::new(K::Decimal {
                precision: 19,
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
    fn new_functions_have_flink_cdc_types() {
        let string = DataType::new(K::String);
        assert_eq!(ty("TO_DATE('2024-01-02')").unwrap(), DataType::new(K::Date));
        assert_eq!(
            ty("TO_DATE(name, 'dd/MM/yyyy')").unwrap(),
            DataType::new(K::Date)
        );
        assert_eq!(
            ty("TO_DATE(CURRENT_TIMESTAMP)").unwrap(),
            DataType::new(K::Date)
        );
        assert_eq!(ty("DATE_ADD(name, 1)").unwrap(), string);
        assert_eq!(ty("DATE_ADD(CURRENT_DATE, id)").unwrap(), string);
        assert_eq!(ty("DATE_FORMAT_TZ(LOCALTIMESTAMP, 'UTC')").unwrap(), string);
        assert_eq!(ty("DATE_FORMAT_TZ(NOW(), 'HH', '+08:00')").unwrap(), string);
        let ltz = DataType::new(K::TimestampLtz { precision: 3 });
        assert_eq!(ty("TO_TIMESTAMP_LTZ(name)").unwrap(), ltz);
        assert_eq!(ty("TO_TIMESTAMP_LTZ(name, 'yyyy')").unwrap(), ltz);
        assert_eq!(ty("TO_TIMESTAMP_LTZ(name, 'yyyy', 'UTC')").unwrap(), ltz);
        assert_eq!(ty("TO_TIMESTAMP_LTZ(id, 0)").unwrap(), ltz);
        assert_eq!(ty("PARSE_JSON(name)").unwrap(), DataType::new(K::Json));
        assert_eq!(
            ty("TRY_PARSE_JSON(name, true)").unwrap(),
            DataType::new(K::Json)
        );
        assert_eq!(
            ty("PARSE_JSON(name)['a'][1]").unwrap(),
            DataType::new(K::Json)
        );
        for meta in ["table_name", "database_name", "row_kind"] {
            assert_eq!(ty(meta).unwrap(), DataType::new(K::String).not_null());
        }
        assert_eq!(
            ty("CEIL(price)").unwrap(),
            DataType::new(K::Decimal {
                precision: 10,
                scale: 0
            })
        );
    }

    #[test]
    fn subscripts_take_their_container_types() {
        let s = Schema::new(vec![
            Column::new(
                "arr",
                DataType::new(K::Array(Box::new(DataType::new(K::Int).not_null()))),
            ),
            Column::new(
                "m",
                DataType::new(K::Map {
                    key: Box::new(DataType::new(K::String)),
                    value: Box::new(DataType::new(K::BigInt)),
                }),
            ),
            Column::new(
                "r",
                DataType::new(K::Row(vec![cdc_api::RowField {
                    name: "f0".into(),
                    data_type: DataType::new(K::Date),
                }])),
            ),
            Column::new("id", DataType::new(K::Int)),
        ]);
        let ty = |text: &str| {
            bind(
                &parse_filter(text)?,
                &Scope {
                    schema: &s,
                    aliases: &[],
                    mode: DecimalMode::UpTo19,
                },
            )
            .map(|e| e.ty)
        };
        assert_eq!(ty("arr[1]").unwrap(), DataType::new(K::Int));
        assert_eq!(ty("m['k']").unwrap(), DataType::new(K::BigInt));
        assert_eq!(ty("r[1]").unwrap(), DataType::new(K::Date));
        assert!(
            ty("arr['x']")
                .unwrap_err()
                .contains("must be an integer (1-based)")
        );
        assert!(
            ty("r[2]")
                .unwrap_err()
                .contains("an integer literal from 1 to 1")
        );
        assert!(ty("r[id]").unwrap_err().contains("integer literal"));
        assert!(
            ty("id[1]")
                .unwrap_err()
                .contains("a subscript needs an ARRAY, MAP, ROW or JSON value")
        );
    }

    #[test]
    fn argument_types_are_checked_when_bound() {
        let cases = [
            (
                "TO_TIMESTAMP_LTZ(CURRENT_DATE)",
                "TO_TIMESTAMP_LTZ's argument 1 must be a number or a STRING, got DATE",
            ),
            (
                "TO_TIMESTAMP_LTZ(name, 3)",
                "TO_TIMESTAMP_LTZ's argument 2 must be a STRING, got INT",
            ),
            (
                "TO_TIMESTAMP_LTZ(id, 6)",
                "precision must be 0 (seconds) or 3",
            ),
            (
                "TO_TIMESTAMP_LTZ(name, 'x', 'Mars/Base')",
                "'Mars/Base' is not a time zone",
            ),
            (
                "TO_DATE(id)",
                "TO_DATE's argument 1 must be a DATE, TIMESTAMP",
            ),
            (
                "TO_DATE(CURRENT_DATE, 'yyyy')",
                "TO_DATE's argument 1 must be a STRING",
            ),
            (
                "DATE_ADD(name, 1.5)",
                "DATE_ADD's argument 2 must be an integer",
            ),
            (
                "DATE_ADD(id, 1)",
                "DATE_ADD's argument 1 must be a DATE, TIMESTAMP",
            ),
            (
                "DATE_FORMAT_TZ(name, 'UTC')",
                "DATE_FORMAT_TZ's argument 1 must be a TIMESTAMP or TIMESTAMP_LTZ, got VARCHAR(20)",
            ),
            (
                "DATE_FORMAT_TZ(CURRENT_DATE, 'UTC')",
                "must be a TIMESTAMP or TIMESTAMP_LTZ, got DATE",
            ),
            (
                "DATE_FORMAT_TZ(NOW(), 'yyyy', 'Nowhere')",
                "'Nowhere' is not a time zone",
            ),
            (
                "PARSE_JSON(id)",
                "PARSE_JSON's argument 1 must be a STRING, got INT",
            ),
            (
                "TRY_PARSE_JSON(name, 1)",
                "TRY_PARSE_JSON's argument 2 must be a BOOLEAN, got INT",
            ),
            (
                "TO_TIMESTAMP(id)",
                "TO_TIMESTAMP's argument 1 must be a STRING, got INT",
            ),
            (
                "DATE_FORMAT(id, 'yyyy')",
                "DATE_FORMAT's argument 1 must be a DATE",
            ),
            (
                "TIMESTAMPDIFF(DAY, id, NOW())",
                "TIMESTAMPDIFF's argument 2 must be",
            ),
            (
                "FROM_UNIXTIME(name)",
                "FROM_UNIXTIME's argument 1 must be a number",
            ),
            ("SUBSTR(name, 'x')", "SUBSTR's argument 2 must be a number"),
            (
                "TIMESTAMPADD(DAY, name, NOW())",
                "TIMESTAMPADD's argument 2 must be a number",
            ),
            (
                "name['k']",
                "a subscript needs an ARRAY, MAP, ROW or JSON value",
            ),
        ];
        for (text, want) in cases {
            let err = ty(text).unwrap_err();
            assert!(err.contains(want), "{text}: {err}");
            assert!(err.contains("at '"), "{text}: {err}");
        }
        // An untyped NULL fits any argument.
        assert!(ty("DATE_ADD(NULL, 1)").is_ok());
    }

    #[test]
    fn decimal_mode_cuts_types_to_19_digits() {
        let s = Schema::new(vec![Column::new(
            "wide",
            DataType::new(K::Decimal {
                precision: 20,
                scale: 2,
            }),
        )]);
        let ty = |text: &str, mode| {
            bind(
                &parse_filter(text).unwrap(),
                &Scope {
                    schema: &s,
                    aliases: &[],
                    mode,
                },
            )
            .unwrap()
            .ty
            .kind
        };
        let dec = |precision, scale| K::Decimal { precision, scale };
        let (m19, m38) = (DecimalMode::UpTo19, DecimalMode::UpTo38);
        assert_eq!(ty("wide + CAST(1 AS DECIMAL(1, 0))", m19), dec(19, 2));
        assert_eq!(ty("wide + CAST(1 AS DECIMAL(1, 0))", m38), dec(21, 2));
        assert_eq!(ty("ABS(wide)", m19), dec(19, 2));
        assert_eq!(ty("CEIL(wide)", m19), dec(19, 0));
        assert_eq!(ty("CEIL(wide)", m38), dec(20, 0));
        assert_eq!(ty("ROUND(wide, 1)", m19), dec(19, 1));
        assert_eq!(ty("ROUND(wide, 1)", m38), dec(20, 1));
        assert_eq!(ty("CAST(wide AS DECIMAL(38, 18))", m19), dec(19, 18));
        assert_eq!(ty("CAST(wide AS DECIMAL(38, 18))", m38), dec(38, 18));
        assert_eq!(ty("wide / CAST(2 AS DECIMAL(1, 0))", m19), dec(19, 2));
        assert_eq!(ty("wide / CAST(2 AS DECIMAL(1, 0))", m38), dec(24, 6));
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
