//! MySQL GTID sets (`uuid:1-5:7-9,uuid2:3`, and MySQL 8.4+'s tagged `uuid:tag:1-5`): the
//! executed set a binlog stream starts after, kept up to date as transactions commit so
//! that a restart resumes exactly after the last one.
//!
//! Intervals are kept sorted, disjoint and non-adjacent, so the text is always MySQL's
//! canonical form whatever form the input had (MySQL prints a newline after each comma;
//! that newline is left out here, and accepted on input).

use std::collections::BTreeMap;
use std::fmt;

use mysql_common::packets::{GnoInterval, Sid, Tag};

/// The largest transaction number MySQL hands out (`GNO_END - 1`, `INT64_MAX - 1`).
const MAX_GNO: u64 = i64::MAX as u64 - 1;
/// MySQL's longest tag.
const MAX_TAG_LEN: usize = 32;

/// One transaction's GTID: `uuid:gno`, or `uuid:tag:gno` (tag empty when untagged).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Gtid {
    pub(crate) uuid: [u8; 16],
    pub(crate) tag: String,
    pub(crate) gno: u64,
}

impl Gtid {
    /// Parses `uuid:gno` or `uuid:tag:gno`.
    pub(crate) fn parse(text: &str) -> Result<Self, String> {
        let parts: Vec<&str> = text.split(':').map(str::trim).collect();
        let (uuid, tag, gno) = match parts.as_slice() {
            [uuid, gno] => (*uuid, "", *gno),
            [uuid, tag, gno] => (*uuid, *tag, *gno),
            _ => {
                return Err(format!(
                    "'{text}' is not a GTID (uuid:number or uuid:tag:number)"
                ));
            }
        };
        let uuid = parse_uuid(uuid)?;
        let tag = if tag.is_empty() {
            String::new()
        } else {
            parse_tag(tag)?
        };
        let gno = parse_gno(gno)?;
        Ok(Self { uuid, tag, gno })
    }
}

/// Per tag ("" for untagged), the intervals.
type Tags = BTreeMap<String, Vec<(u64, u64)>>;

/// A set of GTIDs: per server UUID and tag ("" for untagged), inclusive `[start, end]`
/// intervals, sorted, disjoint and never touching.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct GtidSet {
    sets: BTreeMap<[u8; 16], Tags>,
}

impl GtidSet {
    /// Parses MySQL's text form; whitespace (newlines too) around any part is ignored, UUIDs
    /// and tags are case-insensitive. An empty text is the empty set.
    pub(crate) fn parse(text: &str) -> Result<Self, String> {
        let mut set = Self::default();
        if text.trim().is_empty() {
            return Ok(set);
        }
        for entry in text.split(',') {
            set.parse_entry(entry.trim())
                .map_err(|e| format!("GTID set '{}': {e}", text.trim()))?;
        }
        Ok(set)
    }

    /// One `uuid(:tag|:interval)+` entry.
    fn parse_entry(&mut self, entry: &str) -> Result<(), String> {
        if entry.is_empty() {
            return Err("an empty entry (two commas, or a comma at an end)".into());
        }
        let mut parts = entry.split(':').map(str::trim);
        let uuid = parse_uuid(parts.next().unwrap_or_default())?;
        let mut tag: Option<&str> = None;
        let mut tag_text = String::new();
        // Every UUID and every tag must be followed by at least one interval.
        let mut numbers = false;
        for part in parts {
            if part.starts_with(|c: char| c.is_ascii_digit()) {
                let (start, end) = parse_interval(part)?;
                self.add_interval(uuid, &tag_text, start, end);
                numbers = true;
                continue;
            }
            if let (Some(t), false) = (tag, numbers) {
                return Err(no_numbers(entry, Some(t)));
            }
            tag_text = parse_tag(part)?;
            tag = Some(part);
            numbers = false;
        }
        if numbers {
            Ok(())
        } else {
            Err(no_numbers(entry, tag))
        }
    }

    #[cfg(test)]
    pub(crate) fn is_empty(&self) -> bool {
        self.sets.is_empty()
    }

    #[cfg(test)]
    /// Whether any GTID of the set has a tag (MySQL 8.4+).
    pub(crate) fn is_tagged(&self) -> bool {
        self.sets
            .values()
            .any(|tags| tags.keys().any(|t| !t.is_empty()))
    }

    pub(crate) fn add(&mut self, gtid: &Gtid) {
        self.add_interval(gtid.uuid, &gtid.tag, gtid.gno, gtid.gno);
    }

    #[cfg(test)]
    pub(crate) fn contains(&self, gtid: &Gtid) -> bool {
        self.sets
            .get(&gtid.uuid)
            .and_then(|tags| tags.get(&gtid.tag))
            .is_some_and(|ivs| {
                // The last interval starting at or before the number.
                let i = ivs.partition_point(|(s, _)| *s <= gtid.gno);
                i > 0 && ivs[i - 1].1 >= gtid.gno
            })
    }

    fn add_interval(&mut self, uuid: [u8; 16], tag: &str, start: u64, end: u64) {
        let ivs = self
            .sets
            .entry(uuid)
            .or_default()
            .entry(tag.to_string())
            .or_default();
        // Intervals that overlap or touch [start, end] merge with it.
        let first = ivs.partition_point(|(_, e)| e.saturating_add(1) < start);
        let last = ivs.partition_point(|(s, _)| *s <= end.saturating_add(1));
        let (mut lo, mut hi) = (start, end);
        if first < last {
            lo = lo.min(ivs[first].0);
            hi = hi.max(ivs[last - 1].1);
        }
        ivs.splice(first..last, [(lo, hi)]);
    }

    /// The set as the SID blocks of COM_BINLOG_DUMP_GTID: one block per UUID and tag,
    /// intervals as `[start, end + 1)`.
    pub(crate) fn to_sids(&self) -> Result<Vec<Sid<'static>>, String> {
        let mut out = Vec::new();
        for (uuid, tags) in &self.sets {
            for (tag, ivs) in tags {
                let mut sid = Sid::new(*uuid).with_intervals(
                    ivs.iter()
                        .map(|(s, e)| GnoInterval::new(*s, e + 1))
                        .collect(),
                );
                if !tag.is_empty() {
                    let tag = Tag::new(tag.clone()).map_err(|e| format!("tag '{tag}': {e}"))?;
                    sid = sid.with_tag(tag);
                }
                out.push(sid);
            }
        }
        Ok(out)
    }
}

impl std::str::FromStr for GtidSet {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Self::parse(s)
    }
}

impl fmt::Display for GtidSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (n, (uuid, tags)) in self.sets.iter().enumerate() {
            if n > 0 {
                f.write_str(",")?;
            }
            f.write_str(&uuid_text(uuid))?;
            // Untagged ("") first, then tags in order, as MySQL prints them.
            for (tag, ivs) in tags {
                if !tag.is_empty() {
                    write!(f, ":{tag}")?;
                }
                for (s, e) in ivs {
                    if s == e {
                        write!(f, ":{s}")?;
                    } else {
                        write!(f, ":{s}-{e}")?;
                    }
                }
            }
        }
        Ok(())
    }
}

fn no_numbers(entry: &str, tag: Option<&str>) -> String {
    match tag {
        Some(t) => format!("the tag '{t}' in '{entry}' has no transaction numbers"),
        None => format!("'{entry}' has no transaction numbers"),
    }
}

/// `xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx` (or the 32 digits alone), any case.
fn parse_uuid(text: &str) -> Result<[u8; 16], String> {
    let hyphens_ok = match text.len() {
        36 => text
            .char_indices()
            .all(|(i, c)| matches!(i, 8 | 13 | 18 | 23) == (c == '-')),
        32 => true,
        _ => false,
    };
    let digits: Vec<u8> = text.bytes().filter(|b| *b != b'-').collect();
    if !hyphens_ok || digits.len() != 32 || !digits.iter().all(u8::is_ascii_hexdigit) {
        return Err(format!(
            "'{text}' is not a server UUID (like 3e11fa47-71ca-11e1-9e33-c80aa9429562)"
        ));
    }
    let mut out = [0u8; 16];
    for (i, pair) in digits.chunks(2).enumerate() {
        let hex = std::str::from_utf8(pair).unwrap_or_default();
        out[i] =
            u8::from_str_radix(hex, 16).map_err(|_| format!("'{text}' is not a server UUID"))?;
    }
    Ok(out)
}

/// A tag: a letter or `_`, then letters, digits or `_`, at most 32 in all; MySQL keeps
/// tags in lower case.
fn parse_tag(text: &str) -> Result<String, String> {
    let ok = text.len() <= MAX_TAG_LEN
        && text.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
        && text.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    if !ok {
        return Err(format!(
            "'{text}' is neither a transaction number nor a tag (a letter or _, then letters, digits or _, at most {MAX_TAG_LEN})"
        ));
    }
    Ok(text.to_ascii_lowercase())
}

fn parse_gno(text: &str) -> Result<u64, String> {
    match text.parse::<u64>() {
        Ok(n) if (1..=MAX_GNO).contains(&n) => Ok(n),
        _ => Err(format!(
            "'{text}' is not a transaction number (1 to {MAX_GNO})"
        )),
    }
}

/// `n` or `n-m`.
fn parse_interval(text: &str) -> Result<(u64, u64), String> {
    let (start, end) = match text.split_once('-') {
        Some((s, e)) => (parse_gno(s.trim())?, parse_gno(e.trim())?),
        None => {
            let n = parse_gno(text)?;
            (n, n)
        }
    };
    if end < start {
        return Err(format!("the range '{text}' ends before it starts"));
    }
    Ok((start, end))
}

pub(crate) fn uuid_text(bytes: &[u8; 16]) -> String {
    let mut s = String::with_capacity(36);
    for (i, b) in bytes.iter().enumerate() {
        if matches!(i, 4 | 6 | 8 | 10) {
            s.push('-');
        }
        s.push_str(&format!("{b:02x}"));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: &str = "3e11fa47-71ca-11e1-9e33-c80aa9429562";
    const B: &str = "55778904-0299-11f1-b1b8-4ef0c4956feb";

    fn set(text: &str) -> GtidSet {
        GtidSet::parse(text).unwrap()
    }

    fn gtid(text: &str) -> Gtid {
        Gtid::parse(text).unwrap()
    }

    #[test]
    fn parses_and_prints_the_canonical_form() {
        assert_eq!(
            set(&format!("{A}:1-5:7-9")).to_string(),
            format!("{A}:1-5:7-9")
        );
        // MySQL's own output: a newline after each comma; UUIDs in any case; sorted by UUID.
        let s = set(&format!("{B}:3,\n{}:1-5", A.to_uppercase()));
        assert_eq!(s.to_string(), format!("{A}:1-5,{B}:3"));
        // Spaces around parts, 32-digit UUIDs, single numbers written as ranges.
        let s = set(&format!(" {} : 4-4 : 1 - 2 ", A.replace('-', "")));
        assert_eq!(s.to_string(), format!("{A}:1-2:4"));
        assert!(set("").is_empty() && set(" \n").is_empty());
        assert_eq!(set("").to_string(), "");
    }

    #[test]
    fn intervals_are_merged() {
        // Overlapping, touching, unordered, repeated UUIDs.
        let s = set(&format!("{A}:7-9:1-3:4:12,{A}:8-10:13-20"));
        assert_eq!(s.to_string(), format!("{A}:1-4:7-10:12-20"));
        let s = set(&format!("{A}:5:1-100:50"));
        assert_eq!(s.to_string(), format!("{A}:1-100"));
    }

    #[test]
    fn tagged_sets_group_tags_after_untagged_numbers() {
        let s = set(&format!("{B}:MyTag:3,{B}:1-2,{B}:abc:1:5-6:mytag:4"));
        assert_eq!(s.to_string(), format!("{B}:1-2:abc:1:5-6:mytag:3-4"));
        assert!(s.is_tagged());
        assert!(!set(&format!("{B}:1-2")).is_tagged());
        assert!(s.contains(&gtid(&format!("{B}:mytag:4"))));
        assert!(!s.contains(&gtid(&format!("{B}:4"))));
        assert!(!s.contains(&gtid(&format!("{B}:other:1"))));
    }

    #[test]
    fn adding_gtids_extends_and_joins_intervals() {
        let mut s = set(&format!("{A}:1-3:5"));
        s.add(&gtid(&format!("{A}:4")));
        assert_eq!(s.to_string(), format!("{A}:1-5"));
        s.add(&gtid(&format!("{A}:7")));
        s.add(&gtid(&format!("{A}:3")));
        assert_eq!(s.to_string(), format!("{A}:1-5:7"));
        s.add(&gtid(&format!("{B}:t:9")));
        s.add(&gtid(&format!("{B}:1")));
        assert_eq!(s.to_string(), format!("{A}:1-5:7,{B}:1:t:9"));
        let mut empty = GtidSet::default();
        empty.add(&gtid(&format!("{A}:1")));
        assert_eq!(empty.to_string(), format!("{A}:1"));
    }

    #[test]
    fn contains_checks_interval_bounds() {
        let s = set(&format!("{A}:1-3:7-9"));
        for (n, inside) in [
            (1, true),
            (3, true),
            (4, false),
            (6, false),
            (7, true),
            (9, true),
            (10, false),
        ] {
            assert_eq!(s.contains(&gtid(&format!("{A}:{n}"))), inside, "{n}");
        }
        assert!(!s.contains(&gtid(&format!("{B}:1"))));
    }

    #[test]
    fn bad_input_names_the_wrong_part() {
        let err = |t: &str| GtidSet::parse(t).unwrap_err();
        let e = err("3e11fa47-71ca-11e1-9e33:1-5");
        assert!(
            e.contains("'3e11fa47-71ca-11e1-9e33' is not a server UUID"),
            "{e}"
        );
        let e = err(&format!("{A}:0-5"));
        assert!(e.contains("'0' is not a transaction number"), "{e}");
        let e = err(&format!("{A}:1-x5"));
        assert!(e.contains("'x5' is not a transaction number"), "{e}");
        let e = err(&format!("{A}:9-5"));
        assert!(e.contains("the range '9-5' ends before it starts"), "{e}");
        let e = err(&format!("{A}:1-5,"));
        assert!(e.contains("empty entry"), "{e}");
        let e = err(A);
        assert!(e.contains("has no transaction numbers"), "{e}");
        let e = err(&format!("{A}:tag"));
        assert!(
            e.contains("the tag 'tag'") && e.contains("no transaction numbers"),
            "{e}"
        );
        let e = err(&format!("{A}:bad-tag:1"));
        assert!(
            e.contains("'bad-tag' is neither a transaction number nor a tag"),
            "{e}"
        );
        let e = err(&format!("{A}:{}:1", "t".repeat(33)));
        assert!(e.contains("nor a tag"), "{e}");
        let e = err(&format!("{A}:1:99999999999999999999"));
        assert!(e.contains("is not a transaction number"), "{e}");
        // The whole input is quoted, so the user finds the entry.
        assert!(
            e.starts_with(&format!("GTID set '{A}:1:99999999999999999999'")),
            "{e}"
        );
        assert!(Gtid::parse("nonsense").is_err());
    }

    #[test]
    fn sids_carry_exclusive_interval_ends_and_tags() {
        let sids = set(&format!("{A}:1-5:7,{B}:tg:3")).to_sids().unwrap();
        assert_eq!(sids.len(), 2);
        assert_eq!(uuid_text(&sids[0].uuid()), A);
        let ivs: Vec<(u64, u64)> = sids[0]
            .intervals()
            .iter()
            .map(|i| (i.start(), i.end()))
            .collect();
        assert_eq!(ivs, [(1, 6), (7, 8)]);
        assert_eq!(sids[1].tag().map(Tag::as_str), Some("tg"));
    }

    /// The COM_BINLOG_DUMP_GTID packet, built as mysql_async builds it from the request
    /// (`BinlogStreamRequest::with_gtid().with_gtid_set(..)` fills mysql_common's
    /// `BinlogRequest`), against the protocol layout written out by hand.
    fn dump_packet(set: &GtidSet, server_id: u32) -> Vec<u8> {
        use mysql_common::misc::raw::Either;
        use mysql_common::packets::binlog_request::BinlogRequest;
        use mysql_common::proto::MySerialize;
        let request = BinlogRequest::new(server_id)
            .with_use_gtid(true)
            .with_sids(set.to_sids().unwrap())
            .with_pos(4_u64);
        let Either::Right(cmd) = request.as_cmd() else {
            panic!("not COM_BINLOG_DUMP_GTID")
        };
        let mut buf = Vec::new();
        cmd.serialize(&mut buf);
        buf
    }

    fn uuid_bytes(text: &str) -> Vec<u8> {
        parse_uuid(text).unwrap().to_vec()
    }

    /// command, flags (BINLOG_THROUGH_GTID), server id, empty file name, position 4,
    /// then the size of the SID block.
    fn header(server_id: u32, data_size: u32) -> Vec<u8> {
        let mut b = vec![0x1e, 0x04, 0x00];
        b.extend(server_id.to_le_bytes());
        b.extend(0u32.to_le_bytes());
        b.extend(4u64.to_le_bytes());
        b.extend(data_size.to_le_bytes());
        b
    }

    #[test]
    fn the_dump_request_carries_the_set_in_mysqls_layout() {
        let packet = dump_packet(&set(&format!("{B}:3,{A}:1-5:7")), 4242);
        // n_sids; per SID: UUID, n_intervals, [start, end + 1) as 8-byte LE integers.
        let mut want = header(4242, 8 + (16 + 8 + 2 * 16) + (16 + 8 + 16));
        want.extend(2u64.to_le_bytes());
        want.extend(uuid_bytes(A));
        want.extend(2u64.to_le_bytes());
        for n in [1u64, 6, 7, 8] {
            want.extend(n.to_le_bytes());
        }
        want.extend(uuid_bytes(B));
        want.extend(1u64.to_le_bytes());
        for n in [3u64, 4] {
            want.extend(n.to_le_bytes());
        }
        assert_eq!(packet, want);
    }

    #[test]
    fn a_tagged_set_uses_the_tagged_sid_format() {
        let packet = dump_packet(&set(&format!("{B}:tg:3,{A}:1")), 7);
        // MySQL 8.4+ tagged format: the count's top byte is the format (1) and the count
        // sits in bits 8..56 (MySQL also writes the format in the low byte; its decoder
        // masks that byte out, mysql_common leaves it 0); each SID's UUID is followed by
        // the tag as a variable-length length (n << 1 for one byte) and its bytes.
        let mut want = header(7, 8 + (16 + 1 + 8 + 16) + (16 + 1 + 2 + 8 + 16));
        want.extend(((1u64 << 56) | (2 << 8)).to_le_bytes());
        want.extend(uuid_bytes(A));
        want.push(0);
        want.extend(1u64.to_le_bytes());
        want.extend(1u64.to_le_bytes());
        want.extend(2u64.to_le_bytes());
        want.extend(uuid_bytes(B));
        want.push(2 << 1);
        want.extend(b"tg");
        want.extend(1u64.to_le_bytes());
        want.extend(3u64.to_le_bytes());
        want.extend(4u64.to_le_bytes());
        assert_eq!(packet, want);
    }
}
