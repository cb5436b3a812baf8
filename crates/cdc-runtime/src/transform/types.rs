//! Result types: numeric promotion, decimal precision rules and common types of branches.
//!
//! Decimal rules follow Flink SQL's `LogicalTypeMerging` (which Flink CDC's Calcite type
//! system uses), capped at precision 38 the same way: keep the integer digits, give up
//! fraction digits down to 6.

use cdc_api::{DataType, DataTypeKind as K};

use super::expr::BinaryOp;

pub(crate) const MAX_PRECISION: u8 = 38;

pub(crate) fn is_numeric(k: &K) -> bool {
    matches!(
        k,
        K::TinyInt | K::SmallInt | K::Int | K::BigInt | K::Decimal { .. } | K::Float | K::Double
    )
}

pub(crate) fn is_integer(k: &K) -> bool {
    matches!(k, K::TinyInt | K::SmallInt | K::Int | K::BigInt)
}

pub(crate) fn is_text(k: &K) -> bool {
    matches!(k, K::Char { .. } | K::VarChar { .. } | K::String)
}

pub(crate) fn is_temporal(k: &K) -> bool {
    matches!(
        k,
        K::Date
            | K::Time { .. }
            | K::Timestamp { .. }
            | K::TimestampLtz { .. }
            | K::TimestampTz { .. }
    )
}

fn int_rank(k: &K) -> u8 {
    match k {
        K::TinyInt => 1,
        K::SmallInt => 2,
        K::Int => 3,
        _ => 4,
    }
}

/// An integer type seen as a decimal (for mixed arithmetic).
pub(crate) fn decimal_of(k: &K) -> Option<(u8, u8)> {
    match k {
        K::TinyInt => Some((3, 0)),
        K::SmallInt => Some((5, 0)),
        K::Int => Some((10, 0)),
        K::BigInt => Some((19, 0)),
        K::Decimal { precision, scale } => Some((*precision, *scale)),
        _ => None,
    }
}

/// Fits a precision/scale pair into 38 digits (Flink's `adjustPrecisionScale`).
pub(crate) fn adjust(precision: u32, scale: u32) -> K {
    let max = u32::from(MAX_PRECISION);
    let (p, s) = if precision <= max {
        (precision.max(1), scale)
    } else {
        let int_digits = precision - scale;
        let min_scale = scale.min(6);
        (max, max.saturating_sub(int_digits).max(min_scale))
    };
    K::Decimal {
        precision: p as u8,
        scale: s.min(p) as u8,
    }
}

/// The result type of an arithmetic operator on two numeric types, or `None` when one of
/// them is not numeric.
pub(crate) fn arithmetic(op: BinaryOp, a: &DataType, b: &DataType) -> Option<DataType> {
    let nullable = a.nullable || b.nullable;
    let (x, y) = (&a.kind, &b.kind);
    if !is_numeric(x) || !is_numeric(y) {
        return None;
    }
    let kind = if matches!(x, K::Float | K::Double) || matches!(y, K::Float | K::Double) {
        if matches!((x, y), (K::Float, K::Float)) {
            K::Float
        } else {
            K::Double
        }
    } else if matches!(x, K::Decimal { .. }) || matches!(y, K::Decimal { .. }) {
        let (p1, s1) = decimal_of(x)?;
        let (p2, s2) = decimal_of(y)?;
        let (p1, s1, p2, s2) = (u32::from(p1), u32::from(s1), u32::from(p2), u32::from(s2));
        match op {
            BinaryOp::Add | BinaryOp::Sub => {
                let s = s1.max(s2);
                adjust((p1 - s1).max(p2 - s2) + s + 1, s)
            }
            BinaryOp::Mul => adjust(p1 + p2 + 1, s1 + s2),
            BinaryOp::Div => {
                let s = (s1 + p2 + 1).max(6);
                adjust(p1 - s1 + s2 + s, s)
            }
            _ => {
                let s = s1.max(s2);
                adjust((p1 - s1).min(p2 - s2) + s, s)
            }
        }
    } else if int_rank(x) >= int_rank(y) {
        x.clone()
    } else {
        y.clone()
    };
    Some(DataType::new(kind).with_nullable(nullable))
}

/// Whether two types can be compared (numbers with numbers, text with anything scalar that
/// text converts to, temporal with temporal, booleans with booleans).
pub(crate) fn comparable(a: &K, b: &K) -> bool {
    (is_numeric(a) && is_numeric(b))
        || (is_temporal(a) && is_temporal(b))
        || (is_text(a) || is_text(b))
        || a == b
}

/// The type both `a` and `b` convert to (for CASE, COALESCE, IF, IN): the wider number, the
/// longer text, otherwise STRING. `None` marks an untyped NULL literal.
pub(crate) fn common(types: &[Option<&DataType>]) -> DataType {
    let mut out: Option<DataType> = None;
    for t in types.iter().flatten() {
        out = Some(match out {
            None => (*t).clone(),
            Some(cur) => common2(&cur, t),
        });
    }
    out.unwrap_or_else(|| DataType::new(K::String))
}

fn common2(a: &DataType, b: &DataType) -> DataType {
    let nullable = a.nullable || b.nullable;
    let kind = match (&a.kind, &b.kind) {
        (x, y) if x == y => x.clone(),
        (x, y) if is_numeric(x) && is_numeric(y) => {
            if matches!(x, K::Float | K::Double) || matches!(y, K::Float | K::Double) {
                K::Double
            } else if let (Some((p1, s1)), Some((p2, s2))) = (decimal_of(x), decimal_of(y)) {
                if is_integer(x) && is_integer(y) {
                    if int_rank(x) >= int_rank(y) {
                        x.clone()
                    } else {
                        y.clone()
                    }
                } else {
                    let s = s1.max(s2);
                    adjust(u32::from((p1 - s1).max(p2 - s2) + s), u32::from(s))
                }
            } else {
                K::Double
            }
        }
        (
            K::VarChar { length: x } | K::Char { length: x },
            K::VarChar { length: y } | K::Char { length: y },
        ) => K::VarChar { length: *x.max(y) },
        (K::Timestamp { precision: x }, K::Timestamp { precision: y }) => K::Timestamp {
            precision: *x.max(y),
        },
        (K::TimestampLtz { precision: x }, K::TimestampLtz { precision: y }) => K::TimestampLtz {
            precision: *x.max(y),
        },
        _ => K::String,
    };
    DataType::new(kind).with_nullable(nullable)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(k: K) -> DataType {
        DataType::new(k).not_null()
    }

    fn dec(p: u8, s: u8) -> K {
        K::Decimal {
            precision: p,
            scale: s,
        }
    }

    #[test]
    fn arithmetic_types_follow_flink() {
        assert_eq!(
            arithmetic(BinaryOp::Add, &t(K::Int), &t(K::Int)),
            Some(t(K::Int))
        );
        assert_eq!(
            arithmetic(BinaryOp::Add, &t(K::Int), &t(K::BigInt)),
            Some(t(K::BigInt))
        );
        assert_eq!(
            arithmetic(BinaryOp::Add, &t(dec(10, 2)), &t(dec(5, 3))),
            Some(t(dec(12, 3)))
        );
        assert_eq!(
            arithmetic(BinaryOp::Mul, &t(dec(10, 2)), &t(dec(5, 3))),
            Some(t(dec(16, 5)))
        );
        assert_eq!(
            arithmetic(BinaryOp::Div, &t(dec(10, 2)), &t(dec(5, 3))),
            Some(t(dec(19, 8)))
        );
        assert_eq!(
            arithmetic(BinaryOp::Add, &t(K::Int), &t(dec(5, 2))),
            Some(t(dec(13, 2)))
        );
        assert_eq!(
            arithmetic(BinaryOp::Mul, &t(dec(38, 10)), &t(dec(38, 10))),
            Some(t(dec(38, 6)))
        );
        assert_eq!(
            arithmetic(BinaryOp::Add, &t(K::Int), &t(K::Double)),
            Some(t(K::Double))
        );
        assert_eq!(arithmetic(BinaryOp::Add, &t(K::Int), &t(K::String)), None);
        let n = DataType::new(K::Int);
        assert!(arithmetic(BinaryOp::Add, &n, &t(K::Int)).unwrap().nullable);
    }

    #[test]
    fn common_types_widen() {
        assert_eq!(
            common(&[Some(&t(K::Int)), Some(&t(K::BigInt))]),
            t(K::BigInt)
        );
        assert_eq!(
            common(&[Some(&t(K::Int)), Some(&t(dec(5, 2)))]),
            t(dec(12, 2))
        );
        assert_eq!(
            common(&[
                Some(&t(K::VarChar { length: 3 })),
                Some(&t(K::VarChar { length: 9 }))
            ]),
            t(K::VarChar { length: 9 })
        );
        assert_eq!(common(&[Some(&t(K::Int)), Some(&t(K::Date))]), t(K::String));
        assert_eq!(common(&[None, Some(&t(K::Int))]), t(K::Int));
    }
}
