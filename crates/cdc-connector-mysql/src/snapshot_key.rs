//! Snapshot progress and the per-row binlog filter of a resumed snapshot.
//!
//! A table's snapshot is read in key order. Each batch handed on records the key of its last
//! row, and batches are cut only where the key changes, so "every row with a key up to `k`
//! was emitted" holds at every offset. When a pipeline restarts in the middle of a table,
//! the rest of the table (keys above `k`) is read under a *new* consistent snapshot at a
//! *new* binlog position. The table then has several **segments**: key ranges, each read at
//! its own position:
//!
//! ```text
//!   keys (-inf, k1]  read at P1
//!   keys (k1, k2]    read at P2
//!   keys (k2, +inf)  read at P3
//! ```
//!
//! The binlog (replayed from before P1) must then decide per row whether a change is
//! already in the snapshot: a change at transaction position `T` to a row with key `x` is
//! covered when the segment holding `x` was read at a position after `T`. An UPDATE whose
//! before and after images fall on different sides becomes a DELETE of the before image
//! (the after row is in a later snapshot) or an INSERT of the after image (the before row
//! was never emitted). Replaying the snapshot rows and then the filtered binlog gives every
//! key exactly the history it had on the server.
//!
//! Comparing a binlog row's key with a segment bound must agree with the server's
//! `ORDER BY`, which cut the segments. Integers, decimals, floats, temporal values,
//! binary strings, ENUM (by index) and SET (by bit mask) compare exactly here. Text
//! compares under the column's collation (case, accents, trailing-space padding), which
//! this crate does not reimplement: such comparisons are sent to the server (`STRCMP`
//! under the column's character set and collation). They happen only for rows of a
//! resumed table in transactions between its first and last segment position, a short
//! window right after a restart.

use std::cmp::Ordering;

use cdc_api::Value;
use serde::{Deserialize, Serialize};

use crate::binlog::position::BinlogPosition;
use crate::schema::TableMeta;
use crate::types::MySqlType;

/// One key column value in a form that orders like the server's `ORDER BY`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) enum KeyPart {
    /// NULL sorts first (only a nullable chunk key column can hold it).
    Null,
    /// Integers, booleans, years, ENUM indexes and SET masks (as decimal text: JSON
    /// numbers cannot hold every u64 / i128).
    Int(String),
    /// DECIMAL as its exact text.
    Decimal(String),
    /// FLOAT / DOUBLE.
    Double(f64),
    /// Binary strings and BIT: bytewise.
    Bytes(Vec<u8>),
    /// Text under a collation: compared by the server.
    Text(String),
    /// DATE.
    Date(u16, u8, u8),
    /// DATETIME, and TIMESTAMP as its UTC wall-clock time.
    DateTime(u16, u8, u8, u8, u8, u8, u32),
    /// TIME as signed microseconds.
    Time(i64),
}

impl KeyPart {
    /// The part from a decoded value (snapshot and binlog decode the same column to the
    /// same value).
    pub(crate) fn from_value(t: &MySqlType, v: &Value) -> Result<Self, String> {
        Ok(match v {
            Value::Null => Self::Null,
            Value::Boolean(b) => Self::Int(u8::from(*b).to_string()),
            Value::TinyInt(i) => Self::Int(i.to_string()),
            Value::SmallInt(i) => Self::Int(i.to_string()),
            Value::Int(i) => Self::Int(i.to_string()),
            Value::BigInt(i) => Self::Int(i.to_string()),
            Value::Decimal(d) if matches!(t, MySqlType::BigInt { unsigned: true }) => {
                Self::Int(d.to_string())
            }
            Value::Decimal(d) => Self::Decimal(d.to_string()),
            Value::Float(f) => Self::Double(f64::from(*f)),
            Value::Double(f) => Self::Double(*f),
            Value::Bytes(b) => Self::Bytes(b.clone()),
            Value::String(s) => match t {
                MySqlType::Enum(labels) => Self::Int(
                    labels
                        .iter()
                        .position(|l| l == s)
                        .map_or(0, |i| i + 1)
                        .to_string(),
                ),
                MySqlType::Set(labels) => {
                    let mut mask = 0u64;
                    for item in s.split(',').filter(|i| !i.is_empty()) {
                        if let Some(i) = labels.iter().position(|l| l == item) {
                            mask |= 1 << i;
                        }
                    }
                    Self::Int(mask.to_string())
                }
                // DECIMAL wider than 38 digits travels as text.
                MySqlType::Decimal { .. } => Self::Decimal(s.clone()),
                _ => Self::Text(s.clone()),
            },
            Value::Date(d) => Self::Date(d.year, d.month, d.day),
            Value::Timestamp(ts) => Self::DateTime(
                ts.date.year,
                ts.date.month,
                ts.date.day,
                ts.hour,
                ts.minute,
                ts.second,
                ts.micros,
            ),
            Value::TimestampLtz(micros) => {
                let ts = cdc_api::Timestamp::from_epoch_micros(*micros);
                Self::DateTime(
                    ts.date.year,
                    ts.date.month,
                    ts.date.day,
                    ts.hour,
                    ts.minute,
                    ts.second,
                    ts.micros,
                )
            }
            Value::Time(t) => {
                let abs = ((i64::from(t.hours) * 60 + i64::from(t.minutes)) * 60
                    + i64::from(t.seconds))
                    * 1_000_000
                    + i64::from(t.micros);
                Self::Time(if t.negative { -abs } else { abs })
            }
            other => return Err(format!("a {other:?} value cannot be a snapshot key")),
        })
    }

    /// The value as a statement parameter, for `WHERE (key) > (?)` on resume. The session
    /// runs in UTC, so a TIMESTAMP bound given as its UTC wall-clock time is exact.
    pub(crate) fn to_param(&self) -> mysql_async::Value {
        use mysql_async::Value as My;
        match self {
            Self::Null => My::NULL,
            Self::Int(s) => s
                .parse::<i64>()
                .map(My::Int)
                .or_else(|_| s.parse::<u64>().map(My::UInt))
                .unwrap_or_else(|_| My::Bytes(s.clone().into_bytes())),
            Self::Decimal(s) => My::Bytes(s.clone().into_bytes()),
            Self::Double(f) => My::Double(*f),
            Self::Bytes(b) => My::Bytes(b.clone()),
            Self::Text(s) => My::Bytes(s.clone().into_bytes()),
            Self::Date(y, m, d) => My::Date(*y, *m, *d, 0, 0, 0, 0),
            Self::DateTime(y, mo, d, h, mi, s, us) => My::Date(*y, *mo, *d, *h, *mi, *s, *us),
            Self::Time(micros) => {
                let abs = micros.unsigned_abs();
                let secs = abs / 1_000_000;
                let hours = secs / 3600;
                My::Time(
                    *micros < 0,
                    u32::try_from(hours / 24).unwrap_or(u32::MAX),
                    (hours % 24) as u8,
                    ((secs / 60) % 60) as u8,
                    (secs % 60) as u8,
                    (abs % 1_000_000) as u32,
                )
            }
        }
    }
}

/// Compares two decimal texts numerically (exact, any number of digits).
fn cmp_decimal_text(a: &str, b: &str) -> Ordering {
    fn parts(s: &str) -> (bool, String, String) {
        let s = s.trim();
        let (neg, s) = s.strip_prefix('-').map_or((false, s), |r| (true, r));
        let (int, frac) = s.split_once('.').unwrap_or((s, ""));
        let int = int.trim_start_matches('0').to_string();
        let frac = frac.trim_end_matches('0').to_string();
        let zero = int.is_empty() && frac.is_empty();
        (neg && !zero, int, frac)
    }
    let (na, ia, fa) = parts(a);
    let (nb, ib, fb) = parts(b);
    let magnitude = ia
        .len()
        .cmp(&ib.len())
        .then_with(|| ia.cmp(&ib))
        .then_with(|| fa.cmp(&fb));
    match (na, nb) {
        (false, true) => Ordering::Greater,
        (true, false) => Ordering::Less,
        (false, false) => magnitude,
        (true, true) => magnitude.reverse(),
    }
}

fn cmp_int_text(a: &str, b: &str) -> Ordering {
    match (a.parse::<i128>(), b.parse::<i128>()) {
        (Ok(x), Ok(y)) => x.cmp(&y),
        _ => cmp_decimal_text(a, b),
    }
}

/// Compares two parts of the same column locally; `None` when the server must decide
/// (text under a collation).
pub(crate) fn cmp_local(a: &KeyPart, b: &KeyPart) -> Option<Ordering> {
    use KeyPart as K;
    Some(match (a, b) {
        (K::Null, K::Null) => Ordering::Equal,
        (K::Null, _) => Ordering::Less,
        (_, K::Null) => Ordering::Greater,
        (K::Int(x), K::Int(y)) => cmp_int_text(x, y),
        (K::Decimal(x) | K::Int(x), K::Decimal(y) | K::Int(y)) => cmp_decimal_text(x, y),
        (K::Double(x), K::Double(y)) => x.total_cmp(y),
        (K::Bytes(x), K::Bytes(y)) => x.cmp(y),
        (K::Date(a1, a2, a3), K::Date(b1, b2, b3)) => (a1, a2, a3).cmp(&(b1, b2, b3)),
        (K::DateTime(a1, a2, a3, a4, a5, a6, a7), K::DateTime(b1, b2, b3, b4, b5, b6, b7)) => {
            (a1, a2, a3, a4, a5, a6, a7).cmp(&(b1, b2, b3, b4, b5, b6, b7))
        }
        (K::Time(x), K::Time(y)) => x.cmp(y),
        _ => return None,
    })
}

/// A key range of a table's snapshot read at one binlog position: the keys above the
/// previous segment's `upto` and at most this one's (`None`: no upper bound).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct Segment {
    pub(crate) pos: BinlogPosition,
    pub(crate) upto: Option<Vec<KeyPart>>,
    /// Not read yet: a range planned for a parallel read (its `pos` means nothing).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub(crate) unread: bool,
}

/// A key range still to read: keys above `after` up to `until` (both `None` = unbounded).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct KeyRange {
    pub(crate) after: Option<Vec<KeyPart>>,
    pub(crate) until: Option<Vec<KeyPart>>,
}

/// The snapshot segments of one table, in key order.
///
/// A big table is split into ranges read in parallel, each under its own consistent
/// snapshot: the ranges start as `unread` segments, and each read turns its range into
/// read segments as it goes. A range is named by its upper bound, which never changes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct TableSegments {
    pub(crate) db: String,
    pub(crate) table: String,
    pub(crate) segments: Vec<Segment>,
}

impl TableSegments {
    /// The position after which no change of this table is in its snapshot.
    pub(crate) fn max_pos(&self) -> Option<&BinlogPosition> {
        self.segments
            .iter()
            .filter(|s| !s.unread)
            .map(|s| &s.pos)
            .max()
    }

    /// Splits a table not read at all into ranges ending at `bounds` (ascending) and one
    /// unbounded range after them.
    pub(crate) fn plan(&mut self, bounds: &[Vec<KeyPart>]) {
        if !self.segments.is_empty() || bounds.is_empty() {
            return;
        }
        let unread = |upto| Segment {
            pos: BinlogPosition::new("", 0),
            upto,
            unread: true,
        };
        self.segments = bounds.iter().cloned().map(Some).map(unread).collect();
        self.segments.push(unread(None));
    }

    /// The ranges still to read, in key order. A table read in one pass that stopped
    /// half-way (no planned ranges) has one: the keys above the last one read.
    pub(crate) fn unread(&self) -> Vec<KeyRange> {
        let mut out = Vec::new();
        let mut after: Option<Vec<KeyPart>> = None;
        for s in &self.segments {
            if s.unread {
                out.push(KeyRange {
                    after: after.clone(),
                    until: s.upto.clone(),
                });
            }
            after.clone_from(&s.upto);
        }
        match self.segments.last() {
            None => out.push(KeyRange {
                after: None,
                until: None,
            }),
            Some(last) if !last.unread && last.upto.is_some() => out.push(KeyRange {
                after: last.upto.clone(),
                until: None,
            }),
            Some(_) => {}
        }
        out
    }

    /// Records that the read of the range ending at `until`, at `pos`, handed on every row
    /// with a key up to `upto` (the whole range when `done`).
    pub(crate) fn record(
        &mut self,
        until: Option<&Vec<KeyPart>>,
        pos: &BinlogPosition,
        upto: Option<Vec<KeyPart>>,
        done: bool,
    ) {
        let upto = if done { until.cloned() } else { upto };
        let hole = self
            .segments
            .iter()
            .position(|s| s.unread && s.upto.as_ref() == until);
        match hole {
            Some(h) => {
                let read = Segment {
                    pos: pos.clone(),
                    upto,
                    unread: false,
                };
                // What this range read so far sits right before its hole. A read segment
                // there at the same position is extended: it is this range's own, or the
                // end of the previous range read at the same position; either way the
                // keys up to `upto` were all read at `pos`.
                let at = match h.checked_sub(1).map(|p| &self.segments[p]) {
                    Some(prev) if !prev.unread && prev.pos == *pos => h - 1,
                    _ => {
                        self.segments.insert(h, read.clone());
                        h
                    }
                };
                self.segments[at] = read;
                if done {
                    self.segments.remove(at + 1);
                }
            }
            // The one range of a table read in one pass.
            None => match self.segments.last_mut() {
                Some(last) if !last.unread && last.pos == *pos => last.upto = upto,
                _ => self.segments.push(Segment {
                    pos: pos.clone(),
                    upto,
                    unread: false,
                }),
            },
        }
    }

    /// Whether every segment was read at or before `here` (the filter passes everything)
    /// or after it (everything is covered): then no key needs comparing.
    pub(crate) fn uniform(&self, txn: &BinlogPosition) -> Option<bool> {
        let read = || self.segments.iter().filter(|s| !s.unread);
        if read().all(|s| s.pos <= *txn) {
            Some(false)
        } else if read().all(|s| s.pos > *txn) {
            Some(true)
        } else {
            None
        }
    }
}

/// Which columns make a table's snapshot key, and their types.
#[derive(Debug, Clone)]
pub(crate) struct KeyColumns {
    pub(crate) names: Vec<String>,
    pub(crate) idx: Vec<usize>,
    pub(crate) types: Vec<MySqlType>,
    /// `(charset, collation)` per column, for server-side comparison of text.
    pub(crate) collations: Vec<(Option<String>, Option<String>)>,
}

impl KeyColumns {
    /// The snapshot key of `meta`: the configured chunk key, else the primary key. Empty
    /// when the table has neither.
    pub(crate) fn of(meta: &TableMeta, chunk_key: Option<&str>) -> Result<Self, String> {
        let names: Vec<String> = match chunk_key {
            Some(k) => vec![k.to_string()],
            None => meta.primary_key.clone(),
        };
        let mut out = Self {
            names: Vec::new(),
            idx: Vec::new(),
            types: Vec::new(),
            collations: Vec::new(),
        };
        for name in names {
            let i = meta
                .columns
                .iter()
                .position(|c| c.name.eq_ignore_ascii_case(&name))
                .ok_or_else(|| format!("{}.{} has no column `{name}`", meta.db, meta.table))?;
            let c = &meta.columns[i];
            out.names.push(c.name.clone());
            out.idx.push(i);
            out.types.push(c.mysql_type());
            out.collations
                .push((c.charset.clone(), c.collation.clone()));
        }
        Ok(out)
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.idx.is_empty()
    }

    /// The key of a row.
    pub(crate) fn key_of(&self, row: &[Value]) -> Result<Vec<KeyPart>, String> {
        self.idx
            .iter()
            .zip(&self.types)
            .map(|(&i, t)| KeyPart::from_value(t, row.get(i).unwrap_or(&Value::Null)))
            .collect()
    }

    /// `SELECT STRCMP(...)` text comparing two values of key column `i` under its collation.
    pub(crate) fn strcmp_sql(&self, i: usize) -> String {
        let (charset, collation) = self.collations.get(i).cloned().unwrap_or((None, None));
        let safe = |s: &str| s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        let expr = match (charset, collation) {
            (Some(cs), Some(co)) if safe(&cs) && safe(&co) => {
                format!("CONVERT(? USING {cs}) COLLATE {co}")
            }
            (Some(cs), _) if safe(&cs) => format!("CONVERT(? USING {cs})"),
            _ => "?".to_string(),
        };
        format!("SELECT STRCMP({expr}, {expr})")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decimal_text_compares_numerically() {
        assert_eq!(cmp_decimal_text("10.5", "9.99"), Ordering::Greater);
        assert_eq!(cmp_decimal_text("-10.5", "-9.99"), Ordering::Less);
        assert_eq!(cmp_decimal_text("1.50", "1.5"), Ordering::Equal);
        assert_eq!(cmp_decimal_text("-0.00", "0"), Ordering::Equal);
        assert_eq!(cmp_decimal_text("-1", "0.1"), Ordering::Less);
        assert_eq!(
            cmp_int_text("18446744073709551615", "9223372036854775807"),
            Ordering::Greater
        );
    }

    #[test]
    fn parts_order_like_the_server() {
        let t = |us: i64| KeyPart::Time(us);
        assert_eq!(cmp_local(&t(-5), &t(3)), Some(Ordering::Less));
        assert_eq!(
            cmp_local(&KeyPart::Null, &KeyPart::Int("-9".into())),
            Some(Ordering::Less)
        );
        assert_eq!(
            cmp_local(&KeyPart::Bytes(vec![1]), &KeyPart::Bytes(vec![1, 0])),
            Some(Ordering::Less)
        );
        assert_eq!(
            cmp_local(&KeyPart::Text("a".into()), &KeyPart::Text("B".into())),
            None
        );
        let e = MySqlType::Enum(vec!["z".into(), "a".into()]);
        let z = KeyPart::from_value(&e, &Value::String("z".into())).unwrap();
        let a = KeyPart::from_value(&e, &Value::String("a".into())).unwrap();
        assert_eq!(
            cmp_local(&z, &a),
            Some(Ordering::Less),
            "ENUM sorts by index"
        );
    }

    #[test]
    fn segments_record_progress_and_resumes() {
        let p1 = BinlogPosition::new("b.000001", 100);
        let p2 = BinlogPosition::new("b.000001", 200);
        let mut s = TableSegments {
            db: "d".into(),
            table: "t".into(),
            segments: Vec::new(),
        };
        s.record(None, &p1, Some(vec![KeyPart::Int("5".into())]), false);
        s.record(None, &p1, Some(vec![KeyPart::Int("9".into())]), false);
        assert_eq!(
            s.unread(),
            [KeyRange {
                after: Some(vec![KeyPart::Int("9".into())]),
                until: None
            }]
        );
        s.record(None, &p2, None, true);
        assert!(s.unread().is_empty());
        assert_eq!(s.segments.len(), 2);
        assert_eq!(s.segments[0].upto, Some(vec![KeyPart::Int("9".into())]));
        assert_eq!(s.uniform(&BinlogPosition::new("b.000001", 50)), Some(true));
        assert_eq!(s.uniform(&BinlogPosition::new("b.000001", 150)), None);
        assert_eq!(s.uniform(&p2), Some(false));
    }

    #[allow(clippy::unnecessary_wraps)] // reads like the `upto` values it stands for
    fn int(i: i64) -> Option<Vec<KeyPart>> {
        Some(vec![KeyPart::Int(i.to_string())])
    }

    #[test]
    fn parallel_ranges_fill_their_holes_in_any_order() {
        let p1 = BinlogPosition::new("b.000001", 100);
        let p2 = BinlogPosition::new("b.000001", 200);
        let p3 = BinlogPosition::new("b.000001", 300);
        let mut s = TableSegments {
            db: "d".into(),
            table: "t".into(),
            segments: Vec::new(),
        };
        s.plan(&[
            vec![KeyPart::Int("10".into())],
            vec![KeyPart::Int("20".into())],
        ]);
        let ranges = s.unread();
        assert_eq!(
            ranges,
            [
                KeyRange {
                    after: None,
                    until: int(10)
                },
                KeyRange {
                    after: int(10),
                    until: int(20)
                },
                KeyRange {
                    after: int(20),
                    until: None
                },
            ]
        );
        // The middle range first, part of the last, then the middle one is done.
        s.record(int(20).as_ref(), &p2, int(15), false);
        s.record(None, &p3, int(25), false);
        s.record(int(20).as_ref(), &p2, None, true);
        assert_eq!(
            s.unread(),
            [
                KeyRange {
                    after: None,
                    until: int(10)
                },
                KeyRange {
                    after: int(25),
                    until: None
                },
            ]
        );
        assert_eq!(s.max_pos(), Some(&p3), "unread ranges have no position");
        // A restart reads what is left at new positions; the first range at the same
        // position as the middle one merges with nothing before it.
        s.record(int(10).as_ref(), &p1, int(5), false);
        s.record(int(10).as_ref(), &p1, None, true);
        s.record(None, &p1, None, true);
        assert!(s.unread().is_empty());
        let layout: Vec<(u64, Option<Vec<KeyPart>>)> = s
            .segments
            .iter()
            .map(|seg| (seg.pos.pos, seg.upto.clone()))
            .collect();
        assert_eq!(
            layout,
            [(100, int(10)), (200, int(20)), (300, int(25)), (100, None)]
        );
        assert_eq!(s.uniform(&BinlogPosition::new("b.000001", 50)), Some(true));
        assert_eq!(s.uniform(&p1), None);
    }

    #[test]
    fn a_range_read_at_the_position_of_its_neighbour_extends_it() {
        let p = BinlogPosition::new("b.000001", 100);
        let mut s = TableSegments {
            db: "d".into(),
            table: "t".into(),
            segments: Vec::new(),
        };
        s.plan(&[vec![KeyPart::Int("10".into())]]);
        s.record(int(10).as_ref(), &p, None, true);
        s.record(None, &p, int(12), false);
        s.record(None, &p, None, true);
        assert_eq!(s.segments.len(), 1);
        assert_eq!(s.segments[0].upto, None);
        assert!(!s.segments[0].unread);
    }

    #[test]
    fn old_offsets_without_the_unread_flag_still_load() {
        let old = r#"{"db":"d","table":"t","segments":[{"pos":{"file":"b.000001","pos":4},"upto":null}]}"#;
        let s: TableSegments = serde_json::from_str(old).unwrap();
        assert!(!s.segments[0].unread);
        assert!(!serde_json::to_string(&s).unwrap().contains("unread"));
    }
}
