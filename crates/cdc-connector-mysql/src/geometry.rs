//! MySQL geometry values (4-byte SRID + WKB) to the GeoJSON-like text Flink CDC writes:
//! `{"coordinates":[1,1],"type":"Point","srid":0}`.

use std::fmt::Write as _;

struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
    little_endian: bool,
}

impl Reader<'_> {
    fn take<const N: usize>(&mut self) -> Result<[u8; N], String> {
        let slice = self
            .bytes
            .get(self.pos..self.pos + N)
            .ok_or("geometry value is truncated")?;
        self.pos += N;
        let mut out = [0u8; N];
        out.copy_from_slice(slice);
        Ok(out)
    }

    fn u32(&mut self) -> Result<u32, String> {
        let b = self.take::<4>()?;
        Ok(if self.little_endian {
            u32::from_le_bytes(b)
        } else {
            u32::from_be_bytes(b)
        })
    }

    fn f64(&mut self) -> Result<f64, String> {
        let b = self.take::<8>()?;
        Ok(if self.little_endian {
            f64::from_le_bytes(b)
        } else {
            f64::from_be_bytes(b)
        })
    }
}

fn number(out: &mut String, v: f64) {
    if v.fract() == 0.0 && v.abs() < 1e15 {
        let _ = write!(out, "{}", v as i64);
    } else {
        let _ = write!(out, "{v}");
    }
}

fn point(r: &mut Reader<'_>, out: &mut String) -> Result<(), String> {
    let x = r.f64()?;
    let y = r.f64()?;
    out.push('[');
    number(out, x);
    out.push(',');
    number(out, y);
    out.push(']');
    Ok(())
}

fn points(r: &mut Reader<'_>, out: &mut String) -> Result<(), String> {
    let n = r.u32()?;
    out.push('[');
    for i in 0..n {
        if i > 0 {
            out.push(',');
        }
        point(r, out)?;
    }
    out.push(']');
    Ok(())
}

fn rings(r: &mut Reader<'_>, out: &mut String) -> Result<(), String> {
    let n = r.u32()?;
    out.push('[');
    for i in 0..n {
        if i > 0 {
            out.push(',');
        }
        points(r, out)?;
    }
    out.push(']');
    Ok(())
}

/// Reads one WKB geometry; writes `"coordinates":...,"type":"..."` (or geometries).
fn geometry(r: &mut Reader<'_>, out: &mut String, depth: u32) -> Result<(), String> {
    if depth > 16 {
        return Err("geometry nested too deeply".into());
    }
    let [order] = r.take::<1>()?;
    r.little_endian = order == 1;
    let kind = r.u32()?;
    let name = match kind {
        1 => "Point",
        2 => "LineString",
        3 => "Polygon",
        4 => "MultiPoint",
        5 => "MultiLineString",
        6 => "MultiPolygon",
        7 => "GeometryCollection",
        other => return Err(format!("unknown WKB geometry type {other}")),
    };
    if kind == 7 {
        out.push_str("\"geometries\":[");
        let n = r.u32()?;
        for i in 0..n {
            if i > 0 {
                out.push(',');
            }
            out.push('{');
            geometry(r, out, depth + 1)?;
            out.push('}');
        }
        out.push(']');
    } else {
        out.push_str("\"coordinates\":");
        match kind {
            1 => point(r, out)?,
            2 => points(r, out)?,
            3 => rings(r, out)?,
            _ => {
                let n = r.u32()?;
                out.push('[');
                for i in 0..n {
                    if i > 0 {
                        out.push(',');
                    }
                    // Each member is a full WKB geometry with its own header.
                    let [order] = r.take::<1>()?;
                    r.little_endian = order == 1;
                    let _member_kind = r.u32()?;
                    match kind {
                        4 => point(r, out)?,
                        5 => points(r, out)?,
                        _ => rings(r, out)?,
                    }
                }
                out.push(']');
            }
        }
    }
    let _ = write!(out, ",\"type\":\"{name}\"");
    Ok(())
}

/// Converts MySQL's internal geometry bytes to GeoJSON-like text with the SRID.
pub(crate) fn to_geojson(bytes: &[u8]) -> Result<String, String> {
    let srid_bytes: [u8; 4] = bytes
        .get(..4)
        .and_then(|b| b.try_into().ok())
        .ok_or("geometry value is truncated")?;
    let srid = u32::from_le_bytes(srid_bytes);
    let mut r = Reader {
        bytes: &bytes[4..],
        pos: 0,
        little_endian: true,
    };
    let mut out = String::with_capacity(64);
    out.push('{');
    geometry(&mut r, &mut out, 0)?;
    let _ = write!(out, ",\"srid\":{srid}}}");
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wkb_point(x: f64, y: f64) -> Vec<u8> {
        let mut v = vec![1u8];
        v.extend(1u32.to_le_bytes());
        v.extend(x.to_le_bytes());
        v.extend(y.to_le_bytes());
        v
    }

    #[test]
    fn points_and_multipoints_match_flink_cdc_text() {
        let mut p = 0u32.to_le_bytes().to_vec();
        p.extend(wkb_point(1.0, 1.0));
        assert_eq!(
            to_geojson(&p).unwrap(),
            r#"{"coordinates":[1,1],"type":"Point","srid":0}"#
        );
        let mut mp = 0u32.to_le_bytes().to_vec();
        mp.push(1);
        mp.extend(4u32.to_le_bytes());
        mp.extend(2u32.to_le_bytes());
        mp.extend(wkb_point(1.0, 1.0));
        mp.extend(wkb_point(2.0, 2.5));
        assert_eq!(
            to_geojson(&mp).unwrap(),
            r#"{"coordinates":[[1,1],[2,2.5]],"type":"MultiPoint","srid":0}"#
        );
        assert!(to_geojson(&[0, 0, 0]).is_err());
        assert!(to_geojson(&p[..10]).is_err());
    }
}
