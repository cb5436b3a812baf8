//! Exact arithmetic: integers with overflow checks, decimals as scaled `i128` (38 digits,
//! the most a derived type holds) with HALF_UP rounding as Java's `BigDecimal`, and floats.

use cdc_api::{DataType, DataTypeKind as K, Decimal, Value};

use super::expr::BinaryOp;

/// A number taken out of a [`Value`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Num {
    Int(i64),
    /// Unscaled value and scale.
    Dec(i128, u8),
    Float(f64),
}

/// The number in `v` (`None` for NULL, an error for a non-number).
pub(crate) fn num(v: &Value) -> Result<Option<Num>, String> {
    Ok(Some(match v {
        Value::Null => return Ok(None),
        Value::TinyInt(_) | Value::SmallInt(_) | Value::Int(_) | Value::BigInt(_) => {
            Num::Int(v.as_i64().unwrap_or_default())
        }
        Value::Float(f) => Num::Float(f64::from(*f)),
        Value::Double(f) => Num::Float(*f),
        Value::Decimal(d) => Num::Dec(
            d.unscaled_i128()
                .ok_or_else(|| format!("{d} has more than 38 digits"))?,
            d.scale(),
        ),
        Value::Boolean(b) => Num::Int(i64::from(*b)),
        other => return Err(format!("'{other}' is not a number")),
    }))
}

impl Num {
    pub(crate) fn as_f64(self) -> f64 {
        match self {
            Self::Int(v) => v as f64,
            Self::Dec(v, s) => v as f64 / 10f64.powi(i32::from(s)),
            Self::Float(f) => f,
        }
    }

    /// As an exact decimal (floats through their shortest text, as `BigDecimal.valueOf`).
    pub(crate) fn as_dec(self) -> Result<(i128, u8), String> {
        match self {
            Self::Int(v) => Ok((i128::from(v), 0)),
            Self::Dec(v, s) => Ok((v, s)),
            Self::Float(f) => {
                if !f.is_finite() {
                    return Err(format!("{f} is not a finite number"));
                }
                let d = Decimal::parse(&format!("{f}")).map_err(|e| e.to_string())?;
                d.unscaled_i128()
                    .map(|v| (v, d.scale()))
                    .ok_or_else(|| format!("{f} has more than 38 digits"))
            }
        }
    }

    /// As an integer, truncating any fraction toward zero (Java's narrowing).
    pub(crate) fn as_i64(self) -> Result<i64, String> {
        match self {
            Self::Int(v) => Ok(v),
            Self::Dec(v, s) => {
                let t = v / pow10(s).ok_or("scale too large")?;
                i64::try_from(t).map_err(|_| "out of range of BIGINT".to_string())
            }
            Self::Float(f) => {
                let t = f.trunc();
                if t.is_finite() && t >= i64::MIN as f64 && t <= i64::MAX as f64 {
                    Ok(t as i64)
                } else {
                    Err(format!("{f} is out of range of BIGINT"))
                }
            }
        }
    }
}

pub(crate) fn pow10(n: u8) -> Option<i128> {
    10i128.checked_pow(u32::from(n))
}

fn digits(v: i128) -> u32 {
    let mut v = v.unsigned_abs();
    let mut n = 1;
    while v >= 10 {
        v /= 10;
        n += 1;
    }
    n
}

/// Divides rounding half away from zero (Java's HALF_UP).
fn div_half_up(a: i128, b: i128) -> Option<i128> {
    let q = a.checked_div(b)?;
    let r = a.checked_rem(b)?;
    if r.unsigned_abs().checked_mul(2)? >= b.unsigned_abs() {
        Some(if (a < 0) == (b < 0) { q + 1 } else { q - 1 })
    } else {
        Some(q)
    }
}

/// Changes the scale of an unscaled value, rounding HALF_UP when digits are dropped.
pub(crate) fn rescale(v: i128, from: u8, to: u8) -> Option<i128> {
    if to >= from {
        v.checked_mul(pow10(to - from)?)
    } else {
        div_half_up(v, pow10(from - to)?)
    }
}

/// A decimal value of type `DECIMAL(p, s)`, or an overflow error.
pub(crate) fn decimal_value(
    v: i128,
    scale: u8,
    precision: u8,
    target: u8,
) -> Result<Value, String> {
    let v = rescale(v, scale, target).ok_or("decimal overflow")?;
    if digits(v) > u32::from(precision) {
        return Err(format!("value does not fit DECIMAL({precision}, {target})"));
    }
    Ok(Value::Decimal(Decimal::from_unscaled(v, target)))
}

/// An integer of the given integer kind, or an overflow error.
pub(crate) fn integer_value(v: i64, kind: &K) -> Result<Value, String> {
    let overflow = || format!("{v} is out of range of {kind}");
    Ok(match kind {
        K::TinyInt => Value::TinyInt(i8::try_from(v).map_err(|_| overflow())?),
        K::SmallInt => Value::SmallInt(i16::try_from(v).map_err(|_| overflow())?),
        K::Int => Value::Int(i32::try_from(v).map_err(|_| overflow())?),
        _ => Value::BigInt(v),
    })
}

/// `a op b` for an arithmetic operator, producing a value of type `ty` (the derived type).
/// Division or modulo by zero is an error, as in Flink CDC (Java's ArithmeticException).
pub(crate) fn arithmetic(op: BinaryOp, a: Num, b: Num, ty: &DataType) -> Result<Value, String> {
    const ZERO: &str = "division by zero";
    match &ty.kind {
        K::Float | K::Double => {
            let (x, y) = (a.as_f64(), b.as_f64());
            if matches!(op, BinaryOp::Div | BinaryOp::Mod) && y == 0.0 {
                return Err(ZERO.into());
            }
            let r = match op {
                BinaryOp::Add => x + y,
                BinaryOp::Sub => x - y,
                BinaryOp::Mul => x * y,
                BinaryOp::Div => x / y,
                _ => x % y,
            };
            Ok(if ty.kind == K::Float {
                Value::Float(r as f32)
            } else {
                Value::Double(r)
            })
        }
        K::Decimal { precision, scale } => {
            let ((x, sx), (y, sy)) = (a.as_dec()?, b.as_dec()?);
            let overflow = || "decimal overflow".to_string();
            let (v, s) = match op {
                BinaryOp::Add | BinaryOp::Sub | BinaryOp::Mod => {
                    let s = sx.max(sy);
                    let x = rescale(x, sx, s).ok_or_else(overflow)?;
                    let y = rescale(y, sy, s).ok_or_else(overflow)?;
                    let v = match op {
                        BinaryOp::Add => x.checked_add(y),
                        BinaryOp::Sub => x.checked_sub(y),
                        _ if y == 0 => return Err(ZERO.into()),
                        _ => x.checked_rem(y),
                    };
                    (v.ok_or_else(overflow)?, s)
                }
                BinaryOp::Mul => (
                    x.checked_mul(y).ok_or_else(overflow)?,
                    sx.checked_add(sy).ok_or_else(overflow)?,
                ),
                _ => {
                    if y == 0 {
                        return Err(ZERO.into());
                    }
                    // x/10^sx / (y/10^sy) at scale `scale`: x * 10^(scale + sy - sx) / y.
                    let shift = i32::from(*scale) + i32::from(sy) - i32::from(sx);
                    let v = if shift >= 0 {
                        let n = x
                            .checked_mul(pow10(shift as u8).ok_or_else(overflow)?)
                            .ok_or_else(overflow)?;
                        div_half_up(n, y)
                    } else {
                        let d = y
                            .checked_mul(pow10((-shift) as u8).ok_or_else(overflow)?)
                            .ok_or_else(overflow)?;
                        div_half_up(x, d)
                    };
                    (v.ok_or_else(overflow)?, *scale)
                }
            };
            decimal_value(v, s, *precision, *scale)
        }
        kind => {
            let (x, y) = (a.as_i64()?, b.as_i64()?);
            let v = match op {
                BinaryOp::Add => x.checked_add(y),
                BinaryOp::Sub => x.checked_sub(y),
                BinaryOp::Mul => x.checked_mul(y),
                _ if y == 0 => return Err(ZERO.into()),
                BinaryOp::Div => x.checked_div(y),
                _ => x.checked_rem(y),
            };
            integer_value(
                v.ok_or_else(|| format!("integer overflow in {x} and {y}"))?,
                kind,
            )
        }
    }
}

/// A number as a value of the numeric type `ty` (HALF_UP to a decimal scale, truncation
/// toward zero to an integer, as Java casts).
pub(crate) fn to_type(n: Num, ty: &K) -> Result<Value, String> {
    Ok(match ty {
        K::Float => Value::Float(n.as_f64() as f32),
        K::Double => Value::Double(n.as_f64()),
        K::Decimal { precision, scale } => {
            let (v, s) = n.as_dec()?;
            decimal_value(v, s, *precision, *scale)?
        }
        kind => integer_value(n.as_i64()?, kind)?,
    })
}

/// ABS, CEIL, FLOOR and ROUND(x, digits) into the derived type `ty`.
pub(crate) fn unary(name: &str, n: Num, digits: i64, ty: &K) -> Result<Value, String> {
    let result = match (name, n) {
        ("ABS", Num::Int(v)) => Num::Int(v.checked_abs().ok_or("integer overflow in ABS")?),
        ("ABS", Num::Dec(v, s)) => Num::Dec(v.checked_abs().ok_or("decimal overflow")?, s),
        ("ABS", Num::Float(f)) => Num::Float(f.abs()),
        ("CEIL" | "FLOOR", Num::Float(f)) => {
            Num::Float(if name == "CEIL" { f.ceil() } else { f.floor() })
        }
        ("CEIL" | "FLOOR", Num::Int(v)) => Num::Int(v),
        ("CEIL" | "FLOOR", Num::Dec(v, s)) => {
            let p = pow10(s).ok_or("scale too large")?;
            let (q, r) = (v.div_euclid(p), v.rem_euclid(p));
            Num::Dec(if name == "CEIL" && r != 0 { q + 1 } else { q }, 0)
        }
        (_, Num::Float(f)) => {
            // ROUND on a double goes through its decimal text, HALF_UP, like BigDecimal.
            if !f.is_finite() {
                return Ok(Value::Double(f));
            }
            let (v, s) = n.as_dec()?;
            let (r, rs) = round_dec(v, s, digits)?;
            Num::Float(r as f64 / 10f64.powi(i32::from(rs)))
        }
        (_, Num::Int(v)) => {
            let (r, _) = round_dec(i128::from(v), 0, digits)?;
            Num::Int(i64::try_from(r).map_err(|_| "integer overflow in ROUND")?)
        }
        (_, Num::Dec(v, s)) => {
            let (r, rs) = round_dec(v, s, digits)?;
            Num::Dec(r, rs)
        }
    };
    to_type(result, ty)
}

/// Rounds `v / 10^s` to `digits` fraction digits (negative: to tens, hundreds, ...).
fn round_dec(v: i128, s: u8, digits: i64) -> Result<(i128, u8), String> {
    if digits >= i64::from(s) {
        return Ok((v, s));
    }
    if digits >= 0 {
        let d = digits as u8;
        return Ok((rescale(v, s, d).ok_or("decimal overflow")?, d));
    }
    let drop = u8::try_from(i64::from(s).saturating_sub(digits))
        .map_err(|_| "ROUND digits out of range")?;
    let unit = pow10(drop).ok_or("ROUND digits out of range")?;
    let q = div_half_up(v, unit).ok_or("decimal overflow")?;
    let back = pow10(drop - s).ok_or("ROUND digits out of range")?;
    Ok((q.checked_mul(back).ok_or("decimal overflow")?, 0))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn dec(text: &str) -> Num {
        let d = Decimal::parse(text).unwrap();
        Num::Dec(d.unscaled_i128().unwrap(), d.scale())
    }

    fn dt(p: u8, s: u8) -> DataType {
        DataType::new(K::Decimal {
            precision: p,
            scale: s,
        })
    }

    #[test]
    fn decimals_stay_exact() {
        let v = arithmetic(BinaryOp::Add, dec("0.1"), dec("0.2"), &dt(3, 1)).unwrap();
        assert_eq!(v.to_string(), "0.3");
        let v = arithmetic(BinaryOp::Mul, dec("1.25"), dec("2.5"), &dt(7, 3)).unwrap();
        assert_eq!(v.to_string(), "3.125");
        let v = arithmetic(BinaryOp::Div, dec("10.00"), dec("3"), &dt(15, 6)).unwrap();
        assert_eq!(v.to_string(), "3.333333");
        let v = arithmetic(BinaryOp::Div, dec("2.00"), dec("3"), &dt(15, 6)).unwrap();
        assert_eq!(v.to_string(), "0.666667");
        let v = arithmetic(BinaryOp::Mod, dec("-7.5"), dec("2"), &dt(3, 1)).unwrap();
        assert_eq!(v.to_string(), "-1.5");
        assert_eq!(
            arithmetic(BinaryOp::Div, dec("1"), dec("0"), &dt(10, 6)).unwrap_err(),
            "division by zero"
        );
        assert!(
            arithmetic(BinaryOp::Add, dec("99.9"), dec("0.1"), &dt(3, 1))
                .unwrap_err()
                .contains("does not fit")
        );
    }

    #[test]
    fn integers_check_overflow_and_zero() {
        let int = DataType::new(K::Int);
        assert_eq!(
            arithmetic(BinaryOp::Div, Num::Int(7), Num::Int(2), &int).unwrap(),
            Value::Int(3)
        );
        assert_eq!(
            arithmetic(BinaryOp::Mod, Num::Int(-7), Num::Int(2), &int).unwrap(),
            Value::Int(-1)
        );
        assert!(
            arithmetic(
                BinaryOp::Add,
                Num::Int(i64::from(i32::MAX)),
                Num::Int(1),
                &int
            )
            .unwrap_err()
            .contains("out of range of INT")
        );
        assert_eq!(
            arithmetic(BinaryOp::Div, Num::Int(1), Num::Int(0), &int).unwrap_err(),
            "division by zero"
        );
        let dbl = DataType::new(K::Double);
        assert_eq!(
            arithmetic(BinaryOp::Div, Num::Int(1), Num::Float(4.0), &dbl).unwrap(),
            Value::Double(0.25)
        );
    }

    #[test]
    fn rounding_is_half_up() {
        assert_eq!(
            unary(
                "ROUND",
                dec("2.345"),
                2,
                &K::Decimal {
                    precision: 5,
                    scale: 2
                }
            )
            .unwrap()
            .to_string(),
            "2.35"
        );
        assert_eq!(
            unary(
                "ROUND",
                dec("-2.5"),
                0,
                &K::Decimal {
                    precision: 2,
                    scale: 0
                }
            )
            .unwrap()
            .to_string(),
            "-3"
        );
        assert_eq!(
            unary("ROUND", Num::Int(1250), -2, &K::Int).unwrap(),
            Value::Int(1300)
        );
        assert_eq!(
            unary("ROUND", Num::Float(2.675), 2, &K::Double).unwrap(),
            Value::Double(2.68)
        );
        assert_eq!(
            unary(
                "CEIL",
                dec("-1.5"),
                0,
                &K::Decimal {
                    precision: 2,
                    scale: 0
                }
            )
            .unwrap()
            .to_string(),
            "-1"
        );
        assert_eq!(
            unary(
                "FLOOR",
                dec("-1.5"),
                0,
                &K::Decimal {
                    precision: 2,
                    scale: 0
                }
            )
            .unwrap()
            .to_string(),
            "-2"
        );
        assert_eq!(
            unary("ABS", Num::Int(-3), 0, &K::BigInt).unwrap(),
            Value::BigInt(3)
        );
        assert!(unary("ABS", Num::Int(i64::MIN), 0, &K::BigInt).is_err());
        assert!(unary("ROUND", Num::Int(5), i64::MIN, &K::BigInt).is_err());
    }
}
