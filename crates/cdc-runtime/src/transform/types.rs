//! Result types: numeric promotion, decimal precision rules and common types of branches.
//!
//! Decimal rules are Calcite's default type system, which Flink CDC's transform uses
//! (`FlinkCdcTypeSystem`): the largest precision is 19 or 38 digits after
//! `pipeline.transform.decimal.precision.mode`, and a result wider than that is cut to it
//! (precision and scale each at most the maximum) rather than trading fraction digits as
//! Flink SQL does.

use cdc_api::{DataType, DataTypeKind as K};

use super::expr::BinaryOp;

/// `pipeline.transform.decimal.precision.mode`: the widest DECIMAL an expression yields.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) enum DecimalMode {
    /// Calcite's default type system, Flink CDC's default.
    #[default]
    UpTo19,
    UpTo38,
}

impl DecimalMode {
    /// Parses the option's value (case-insensitive, as Flink's enum options).
    pub(crate) fn parse(text: &str) -> Result<Self, String> {
        match text.trim().to_ascii_uppercase().as_str() {
            "UP_TO_19" => Ok(Self::UpTo19),
            "UP_TO_38" => Ok(Self::UpTo38),
            _ => Err(format!("'{text}' is not UP_TO_19 or UP_TO_38")),
        }
    }

    /// The largest precision (and scale) of a derived DECIMAL.
    pub(crate) fn max(self) -> u8 {
        match self {
            Self::UpTo19 => 19,
            Self::UpTo38 => 38,
        }
    }

    /// A DECIMAL(p, s) as Calcite creates it in this mode: both cut to the maximum.
    pub(crate) fn decimal(self, precision: u32, scale: u32) -> K {
        let max = u32::from(self.max());
        let p = precision.clamp(1, max);
        K::Decimal {
            precision: p as u8,
            scale: scale.min(max).min(p) as u8,
        }
    }

    /// `t` as expressions see it: a wider DECIMAL is cut to the mode's maximum (Flink CDC
    /// converts every operand to a Calcite type first).
    pub(crate) fn fit(self, t: &DataType) -> DataType {
        match t.kind {
            K::Decimal { precision, scale } if precision > self.max() => {
                DataType::new(self.decimal(u32::from(precision), u32::from(scale)))
                    .with_nullable(t.nullable)
            }
            _ => t.clone(),
        }
    }
}

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

/// The result type of an arithmetic operator on two numeric types, or `None` when one of
/// them is not numeric.
pub(crate) fn arithmetic(
    op: BinaryOp,
    a: &DataType,
    b: &DataType,
    mode: DecimalMode,
) -> Option<DataType> {
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
        decimal_arithmetic(op, (p1, s1), (p2, s2), mode)
    } else if int_rank(x) >= int_rank(y) {
        x.clone()
    } else {
        y.clone()
    };
    Some(DataType::new(kind).with_nullable(nullable))
}

/// Calcite's `deriveDecimal{Plus,Multiply,Divide,Mod}Type` in `mode`.
fn decimal_arithmetic(
    op: BinaryOp,
    (p1, s1): (u32, u32),
    (p2, s2): (u32, u32),
    mode: DecimalMode,
) -> K {
    let max = u32::from(mode.max());
    // Operands wider than the mode were already cut when Calcite typed them.
    let (p1, p2) = (p1.min(max), p2.min(max));
    let (s1, s2) = (s1.min(p1), s2.min(p2));
    let (i1, i2) = (p1 - s1, p2 - s2);
    match op {
        BinaryOp::Add | BinaryOp::Sub => {
            let s = s1.max(s2);
            mode.decimal(i1.max(i2) + s + 1, s)
        }
        BinaryOp::Mul => mode.decimal(p1 + p2, s1 + s2),
        BinaryOp::Div => {
            let integer = (i1 + s2).min(max);
            let s = (s1 + p2 + 1).max(6).min(max - integer);
            mode.decimal(integer + s, s)
        }
        _ => {
            let s = s1.max(s2);
            mode.decimal(i1.min(i2) + s, s)
        }
    }
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
pub(crate) fn common(types: &[Option<&DataType>], mode: DecimalMode) -> DataType {
    let mut out: Option<DataType> = None;
    for t in types.iter().flatten() {
        out = Some(match out {
            None => (*t).clone(),
            Some(cur) => common2(&cur, t, mode),
        });
    }
    out.unwrap_or_else(|| DataType::new(K::String))
}

fn common2(a: &DataType, b: &DataType, mode: DecimalMode) -> DataType {
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
                    mode.decimal(u32::from((p1 - s1).max(p2 - s2) + s), u32::from(s))
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

    const M19: DecimalMode = DecimalMode::UpTo19;
    const M38: DecimalMode = DecimalMode::UpTo38;

    #[test]
    fn arithmetic_types_follow_flink() {
        let ar = |op, a: K, b: K, m| arithmetic(op, &t(a), &t(b), m);
        assert_eq!(ar(BinaryOp::Add, K::Int, K::Int, M19), Some(t(K::Int)));
        assert_eq!(
            ar(BinaryOp::Add, K::Int, K::BigInt, M19),
            Some(t(K::BigInt))
        );
        assert_eq!(
            ar(BinaryOp::Add, dec(10, 2), dec(5, 3), M19),
            Some(t(dec(12, 3)))
        );
        assert_eq!(
            ar(BinaryOp::Mul, dec(10, 2), dec(5, 3), M19),
            Some(t(dec(15, 5)))
        );
        assert_eq!(
            ar(BinaryOp::Div, dec(10, 2), dec(5, 3), M19),
            Some(t(dec(19, 8)))
        );
        assert_eq!(
            ar(BinaryOp::Add, K::Int, dec(5, 2), M19),
            Some(t(dec(13, 2)))
        );
        assert_eq!(
            ar(BinaryOp::Add, K::Int, K::Double, M19),
            Some(t(K::Double))
        );
        assert_eq!(ar(BinaryOp::Add, K::Int, K::String, M19), None);
        let n = DataType::new(K::Int);
        assert!(
            arithmetic(BinaryOp::Add, &n, &t(K::Int), M19)
                .unwrap()
                .nullable
        );
    }

    /// The expectations of Flink CDC's `specs/decimal.yaml` (DECIMAL(20, 2) columns are
    /// DECIMAL(19, 2) to expressions in UP_TO_19).
    #[test]
    fn decimal_modes_follow_flink_cdc_specs() {
        let one = dec(1, 0);
        for (mode, wide, add, mul, div) in [
            (M19, dec(19, 2), dec(19, 2), dec(19, 2), dec(19, 2)),
            (M38, dec(20, 2), dec(21, 2), dec(21, 2), dec(24, 6)),
        ] {
            let ar = |op, a: &K| arithmetic(op, &t(a.clone()), &t(one.clone()), mode).unwrap();
            assert_eq!(ar(BinaryOp::Add, &dec(10, 0)), t(dec(11, 0)));
            assert_eq!(ar(BinaryOp::Mul, &dec(10, 0)), t(dec(11, 0)));
            assert_eq!(ar(BinaryOp::Div, &dec(10, 0)), t(dec(16, 6)));
            assert_eq!(ar(BinaryOp::Add, &wide), t(add.clone()));
            assert_eq!(ar(BinaryOp::Sub, &wide), t(add));
            assert_eq!(ar(BinaryOp::Mul, &wide), t(mul));
            assert_eq!(ar(BinaryOp::Div, &wide), t(div));
        }
        assert_eq!(
            arithmetic(BinaryOp::Mul, &t(dec(38, 10)), &t(dec(38, 10)), M38),
            Some(t(dec(38, 20)))
        );
        assert_eq!(M19.fit(&t(dec(38, 18))), t(dec(19, 18)));
        assert_eq!(M38.fit(&t(dec(38, 18))), t(dec(38, 18)));
        assert_eq!(DecimalMode::parse("up_to_38"), Ok(M38));
        assert!(
            DecimalMode::parse("UP_TO_65")
                .unwrap_err()
                .contains("UP_TO_19")
        );
    }

    #[test]
    fn common_types_widen() {
        let c = |a: K, b: K| common(&[Some(&t(a)), Some(&t(b))], M19);
        assert_eq!(c(K::Int, K::BigInt), t(K::BigInt));
        assert_eq!(c(K::Int, dec(5, 2)), t(dec(12, 2)));
        assert_eq!(c(dec(21, 2), dec(1, 0)), t(dec(19, 2)));
        assert_eq!(
            common(&[Some(&t(dec(21, 2))), Some(&t(dec(1, 0)))], M38),
            t(dec(21, 2))
        );
        assert_eq!(
            c(K::VarChar { length: 3 }, K::VarChar { length: 9 }),
            t(K::VarChar { length: 9 })
        );
        assert_eq!(c(K::Int, K::Date), t(K::String));
        assert_eq!(common(&[None, Some(&t(K::Int))], M19), t(K::Int));
    }
}
