//! A time zone as pipeline files write it (`local-time-zone`, `server-time-zone`): a fixed
//! offset or an IANA zone with its rules.

use chrono::{FixedOffset, Offset, TimeZone};

/// The zone TIMESTAMP_LTZ values are rendered in.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Zone {
    /// A fixed offset from UTC in seconds (`UTC`, `+08:00`).
    Fixed(i32),
    /// An IANA zone with daylight saving rules.
    Named(chrono_tz::Tz),
}

impl Zone {
    /// Parses `systemDefault`, an IANA name (`Asia/Shanghai`), `UTC`/`Z`, or an offset such
    /// as `+08:00`, `-0530`, `GMT+8`, `UTC+08:00`.
    pub fn parse(text: &str) -> Result<Self, String> {
        let text = text.trim();
        if text.eq_ignore_ascii_case("systemDefault") {
            let name = iana_time_zone::get_timezone()
                .map_err(|e| format!("cannot read the machine's time zone: {e}"))?;
            return Self::parse(&name).or(Ok(Self::Fixed(0)));
        }
        if ["utc", "z", "gmt", "etc/utc", "universal"]
            .iter()
            .any(|u| text.eq_ignore_ascii_case(u))
        {
            return Ok(Self::Fixed(0));
        }
        if let Ok(tz) = text.parse::<chrono_tz::Tz>() {
            return Ok(Self::Named(tz));
        }
        let offset = text
            .strip_prefix("UTC")
            .or_else(|| text.strip_prefix("GMT"))
            .unwrap_or(text);
        parse_offset(offset).map(Self::Fixed).ok_or_else(|| {
            format!("'{text}' is not a time zone: use an IANA name such as Asia/Shanghai, an offset such as +08:00, or systemDefault")
        })
    }

    /// The offset from UTC in seconds at the instant `epoch_seconds`.
    pub fn offset_at(self, epoch_seconds: i64) -> i32 {
        match self {
            Self::Fixed(s) => s,
            Self::Named(tz) => tz
                .offset_from_utc_datetime(
                    &chrono::DateTime::from_timestamp(epoch_seconds, 0)
                        .unwrap_or_default()
                        .naive_utc(),
                )
                .fix()
                .local_minus_utc(),
        }
    }
}

fn parse_offset(text: &str) -> Option<i32> {
    let (sign, rest) = match text.as_bytes().first()? {
        b'+' => (1, &text[1..]),
        b'-' => (-1, &text[1..]),
        _ => return None,
    };
    let (hours, minutes) = match rest.split_once(':') {
        Some((h, m)) => (h, m),
        None if rest.len() == 4 => rest.split_at(2),
        None => (rest, "0"),
    };
    let hours: i32 = hours.parse().ok()?;
    let minutes: i32 = minutes.parse().ok()?;
    if hours > 18 || minutes > 59 {
        return None;
    }
    let seconds = sign * (hours * 3600 + minutes * 60);
    FixedOffset::east_opt(seconds).map(|_| seconds)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zones_parse_the_flink_way() {
        assert_eq!(Zone::parse("+08:00").unwrap(), Zone::Fixed(8 * 3600));
        assert_eq!(
            Zone::parse("GMT-0530").unwrap(),
            Zone::Fixed(-(5 * 3600 + 1800))
        );
        assert_eq!(Zone::parse("UTC").unwrap(), Zone::Fixed(0));
        let berlin = Zone::parse("Europe/Berlin").unwrap();
        assert_eq!(berlin.offset_at(1_700_000_000), 3600, "winter");
        assert_eq!(berlin.offset_at(1_690_000_000), 7200, "summer");
        assert!(Zone::parse("Mars/Olympus").is_err());
        assert!(Zone::parse("systemDefault").is_ok());
    }
}
