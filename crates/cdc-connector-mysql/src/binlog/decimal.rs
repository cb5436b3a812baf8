//! MySQL's packed binary DECIMAL (binlog NEWDECIMAL) to exact decimal text.

const DIG2BYTES: [usize; 10] = [0, 1, 1, 2, 2, 3, 3, 4, 4, 4];

/// Bytes a DECIMAL(precision, scale) takes in a row image.
pub(crate) fn packed_len(precision: u8, scale: u8) -> usize {
    let intg = usize::from(precision.saturating_sub(scale));
    let scale = usize::from(scale);
    (intg / 9) * 4 + DIG2BYTES[intg % 9] + (scale / 9) * 4 + DIG2BYTES[scale % 9]
}

fn read_be(bytes: &[u8]) -> u32 {
    bytes.iter().fold(0u32, |acc, b| (acc << 8) | u32::from(*b))
}

/// The largest DECIMAL MySQL and MariaDB define: DECIMAL(65, 30).
const MAX_PRECISION: u8 = 65;
const MAX_SCALE: u8 = 30;

/// Whether DECIMAL(precision, scale) is one MySQL and MariaDB can define.
pub(crate) fn is_valid(precision: u8, scale: u8) -> bool {
    precision <= MAX_PRECISION && scale <= MAX_SCALE && scale <= precision
}

/// Decodes `packed_len(precision, scale)` bytes into text such as `-123.4500`.
pub(crate) fn decode(bytes: &[u8], precision: u8, scale: u8) -> Result<String, String> {
    // The precision and scale come from the TABLE_MAP event: a corrupt one must not make
    // the value longer than any DECIMAL can be.
    if !is_valid(precision, scale) {
        return Err(format!(
            "DECIMAL({precision},{scale}) in the binlog's table map is not a valid DECIMAL \
             (at most DECIMAL({MAX_PRECISION},{MAX_SCALE}), scale not above precision)"
        ));
    }
    let len = packed_len(precision, scale);
    let raw = bytes.get(..len).ok_or("decimal value is truncated")?;
    if raw.is_empty() {
        return Ok("0".into());
    }
    let negative = raw[0] & 0x80 == 0;
    let mut buf = [0u8; 32];
    let buf = &mut buf[..len];
    buf.copy_from_slice(raw);
    buf[0] ^= 0x80;
    if negative {
        for b in buf.iter_mut() {
            *b ^= 0xFF;
        }
    }
    let intg = usize::from(precision.saturating_sub(scale));
    let (intg0, intg0x) = (intg / 9, intg % 9);
    let (frac0, frac0x) = (usize::from(scale) / 9, usize::from(scale) % 9);
    let mut pos = 0;
    let mut int_digits = String::with_capacity(intg + 1);
    if intg0x > 0 {
        let n = DIG2BYTES[intg0x];
        int_digits.push_str(&read_be(&buf[pos..pos + n]).to_string());
        pos += n;
    }
    for _ in 0..intg0 {
        let v = read_be(&buf[pos..pos + 4]);
        if int_digits.is_empty() {
            int_digits.push_str(&v.to_string());
        } else {
            int_digits.push_str(&format!("{v:09}"));
        }
        pos += 4;
    }
    let trimmed = int_digits.trim_start_matches('0');
    let mut out = String::with_capacity(len * 3);
    if negative {
        out.push('-');
    }
    out.push_str(if trimmed.is_empty() { "0" } else { trimmed });
    if scale > 0 {
        out.push('.');
        for _ in 0..frac0 {
            out.push_str(&format!("{:09}", read_be(&buf[pos..pos + 4])));
            pos += 4;
        }
        if frac0x > 0 {
            let n = DIG2BYTES[frac0x];
            out.push_str(&format!(
                "{:0width$}",
                read_be(&buf[pos..pos + n]),
                width = frac0x
            ));
        }
    }
    Ok(out)
}

/// The most digits an `i128` holds whatever they are.
pub(crate) const MAX_UNSCALED_PRECISION: u8 = 38;

const POW10: [i128; 10] = [
    1,
    10,
    100,
    1_000,
    10_000,
    100_000,
    1_000_000,
    10_000_000,
    100_000_000,
    1_000_000_000,
];

/// Decodes `packed_len(precision, scale)` bytes of a DECIMAL of at most 38 digits into its
/// unscaled value (`-123.4500` as DECIMAL(7,4) is -1234500), without going through text.
pub(crate) fn decode_unscaled(bytes: &[u8], precision: u8, scale: u8) -> Result<i128, String> {
    if !is_valid(precision, scale) || precision > MAX_UNSCALED_PRECISION {
        return Err(format!(
            "DECIMAL({precision},{scale}) does not fit the fast path (at most \
             {MAX_UNSCALED_PRECISION} digits)"
        ));
    }
    let len = packed_len(precision, scale);
    let raw = bytes.get(..len).ok_or("decimal value is truncated")?;
    let Some(&first) = raw.first() else {
        return Ok(0);
    };
    // Non-negative values have the top bit set; negative ones are stored inverted.
    let flip = if first & 0x80 == 0 { 0xFF } else { 0x00 };
    let byte = |i: usize| {
        let b = raw[i] ^ flip;
        if i == 0 { b ^ 0x80 } else { b }
    };
    let intg = usize::from(precision - scale);
    let scale = usize::from(scale);
    // Digit groups in order: a partial leading integer group, full integer groups, full
    // fraction groups, a partial trailing fraction group.
    let mut groups = [0usize; 10];
    let mut n = 0;
    let mut push = |digits: usize| {
        groups[n] = digits;
        n += 1;
    };
    if intg % 9 > 0 {
        push(intg % 9);
    }
    (0..intg / 9).for_each(|_| push(9));
    (0..scale / 9).for_each(|_| push(9));
    if scale % 9 > 0 {
        push(scale % 9);
    }
    let mut acc: i128 = 0;
    let mut at = 0;
    for &digits in &groups[..n] {
        let width = DIG2BYTES[digits];
        let v = (at..at + width).fold(0u32, |v, i| (v << 8) | u32::from(byte(i)));
        at += width;
        let v = i128::from(v);
        if v >= POW10[digits] {
            return Err(format!(
                "corrupt DECIMAL({precision},{scale}) value: a {digits}-digit group holds {v}"
            ));
        }
        acc = acc * POW10[digits] + v;
    }
    Ok(if flip == 0 { acc } else { -acc })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_the_documented_example() {
        // From MySQL's decimal.c: 1234567890.1234 as DECIMAL(14,4).
        let bytes = [0x81, 0x0D, 0xFB, 0x38, 0xD2, 0x04, 0xD2];
        assert_eq!(decode(&bytes, 14, 4).unwrap(), "1234567890.1234");
        let neg: Vec<u8> = bytes.iter().map(|b| b ^ 0xFF).collect();
        assert_eq!(decode(&neg, 14, 4).unwrap(), "-1234567890.1234");
        assert_eq!(packed_len(65, 30), 30);
        assert!(decode(&bytes[..3], 14, 4).is_err());
    }

    /// Fuzzing found it: a table map claiming DECIMAL(255,0) panicked on a fixed buffer.
    #[test]
    fn impossible_precisions_and_scales_are_errors() {
        let bytes = [0x80u8; 200];
        for (p, s) in [(255, 0), (66, 0), (65, 31), (10, 11), (255, 255)] {
            let e = decode(&bytes[..packed_len(p, s)], p, s).unwrap_err();
            assert!(e.contains(&format!("DECIMAL({p},{s})")), "{e}");
        }
        assert!(decode(&bytes[..packed_len(65, 30)], 65, 30).is_ok());
        assert_eq!(decode(&[0x80], 1, 1).unwrap(), "0.0");
    }

    /// The fast path gives the same number as the text path for every shape of DECIMAL.
    #[test]
    fn unscaled_path_matches_the_text_path() {
        let mut seed = 0x9E37_79B9_7F4A_7C15u64;
        let mut next = || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        for precision in 1..=MAX_UNSCALED_PRECISION {
            for scale in 0..=precision.min(MAX_SCALE) {
                for _ in 0..20 {
                    // Valid packed bytes: each group below 10^digits, sign bit set, maybe
                    // inverted for a negative value.
                    let len = packed_len(precision, scale);
                    let mut bytes = vec![0u8; len];
                    let intg = usize::from(precision - scale);
                    let sc = usize::from(scale);
                    let mut widths = Vec::new();
                    if intg % 9 > 0 {
                        widths.push(intg % 9);
                    }
                    widths.extend(std::iter::repeat_n(9, intg / 9 + sc / 9));
                    if sc % 9 > 0 {
                        widths.push(sc % 9);
                    }
                    let mut at = 0;
                    for digits in widths {
                        let w = DIG2BYTES[digits];
                        let max = u64::try_from(POW10[digits]).unwrap();
                        let v = next() % max;
                        for i in 0..w {
                            bytes[at + i] = (v >> (8 * (w - 1 - i))) as u8;
                        }
                        at += w;
                    }
                    if !bytes.is_empty() {
                        bytes[0] |= 0x80;
                        if next() % 2 == 0 {
                            for b in &mut bytes {
                                *b ^= 0xFF;
                            }
                        }
                    }
                    let text = decode(&bytes, precision, scale).unwrap();
                    let fast = decode_unscaled(&bytes, precision, scale).unwrap();
                    assert_eq!(
                        cdc_api::Decimal::from_unscaled(fast, scale),
                        cdc_api::Decimal::parse(&text).unwrap(),
                        "DECIMAL({precision},{scale}) {bytes:02x?}: {text}"
                    );
                }
            }
        }
        let e = decode_unscaled(&[0xFF; 4], 9, 0).unwrap_err();
        assert!(e.contains("corrupt"), "{e}");
        assert!(decode_unscaled(&[0x80; 30], 65, 30).is_err());
    }
}
