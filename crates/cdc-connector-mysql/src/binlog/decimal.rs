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
}
