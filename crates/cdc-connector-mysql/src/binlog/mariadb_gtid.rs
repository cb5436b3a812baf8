//! MariaDB GTID positions: the last GTID of every replication domain, as
//! `@@gtid_binlog_pos` prints them (`0-1-42,1-2-7`). Such a position means the same on every
//! server of a replication topology, so a checkpoint that carries one can continue on a
//! replica after a failover (`@slave_connect_state`), where file positions differ.

use std::collections::BTreeMap;

/// The last `(server id, sequence number)` per domain.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct GtidPos(BTreeMap<u32, (u32, u64)>);

/// One `domain-server-sequence` GTID.
fn parse_one(text: &str) -> Result<(u32, u32, u64), String> {
    let bad = || format!("'{text}' is not a MariaDB GTID like 0-1-42");
    let mut parts = text.trim().splitn(3, '-');
    let mut next = || parts.next().ok_or_else(bad);
    let domain = next()?.parse().map_err(|_| bad())?;
    let server = next()?.parse().map_err(|_| bad())?;
    let seq = next()?.parse().map_err(|_| bad())?;
    Ok((domain, server, seq))
}

impl GtidPos {
    /// Reads a position such as `0-1-42,1-2-7` (empty text: no domain yet).
    pub(crate) fn parse(text: &str) -> Result<Self, String> {
        let mut pos = Self::default();
        for gtid in text.split(',').filter(|g| !g.trim().is_empty()) {
            pos.set(gtid)?;
        }
        Ok(pos)
    }

    /// Whether `text` looks like a MariaDB GTID or position (MySQL's have `:`).
    pub(crate) fn is_mariadb(text: &str) -> bool {
        !text.trim().is_empty()
            && text
                .chars()
                .all(|c| c.is_ascii_digit() || matches!(c, '-' | ',' | ' ' | '\n'))
    }

    /// Records `gtid` as its domain's last.
    pub(crate) fn set(&mut self, gtid: &str) -> Result<(), String> {
        let (domain, server, seq) = parse_one(gtid)?;
        self.0.insert(domain, (server, seq));
        Ok(())
    }

    /// Whether a server whose `@@gtid_binlog_state` is `state` (the last sequence number
    /// per domain and server) has every GTID of this position in its binlog.
    pub(crate) fn seen_in(&self, state: &str) -> bool {
        let seen: Vec<(u32, u32, u64)> = state
            .split(',')
            .filter(|g| !g.trim().is_empty())
            .filter_map(|g| parse_one(g).ok())
            .collect();
        self.0.iter().all(|(domain, (server, seq))| {
            seen.iter()
                .any(|(d, s, n)| d == domain && s == server && n >= seq)
        })
    }
}

impl std::fmt::Display for GtidPos {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for (i, (domain, (server, seq))) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            write!(f, "{domain}-{server}-{seq}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::GtidPos;

    #[test]
    fn a_position_keeps_the_last_gtid_of_each_domain() {
        let mut pos = GtidPos::parse("1-2-7, 0-1-42").unwrap();
        assert_eq!(pos.to_string(), "0-1-42,1-2-7");
        pos.set("0-3-43").unwrap();
        pos.set("5-1-1").unwrap();
        assert_eq!(pos.to_string(), "0-3-43,1-2-7,5-1-1");
        assert_eq!(GtidPos::parse("").unwrap(), GtidPos::default());
        let e = GtidPos::parse("0-1-x").unwrap_err();
        assert!(e.contains("'0-1-x'"), "{e}");
        assert!(GtidPos::parse("0-1").is_err());
        assert!(GtidPos::is_mariadb("0-1-42,1-2-7"));
        assert!(!GtidPos::is_mariadb(
            "3e11fa47-71ca-11e1-9e33-c80aa9429562:5"
        ));
        assert!(!GtidPos::is_mariadb(""));
        let pos = GtidPos::parse("0-1-42,1-2-7").unwrap();
        assert!(pos.seen_in("0-1-50,0-9-3,1-2-7"));
        assert!(!pos.seen_in("0-1-41,1-2-7"), "an older sequence number");
        assert!(!pos.seen_in("0-9-42,1-2-7"), "another server's GTID");
        assert!(!pos.seen_in("0-1-42"), "a domain missing");
    }
}
