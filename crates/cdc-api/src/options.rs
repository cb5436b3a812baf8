use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::{ConfigOption, Error, Result};

/// The options of one pipeline block (`source`, `sink`, `pipeline`), as text, with typed
/// getters whose errors name the option.
///
/// Getters fall back to the option's declared default, so a factory reads every option
/// through its [`ConfigOption`] and never repeats a default.
///
/// ```
/// use cdc_api::{ConfigOption, Options};
/// use std::time::Duration;
/// const INTERVAL: ConfigOption = ConfigOption::optional("sink.buffer-flush.interval", "10s", "flush period");
/// let mut options = Options::new("sink");
/// assert_eq!(options.duration(&INTERVAL).unwrap(), Some(Duration::from_secs(10)));
/// options.insert("sink.buffer-flush.interval", "5min");
/// assert_eq!(options.duration(&INTERVAL).unwrap(), Some(Duration::from_secs(300)));
/// options.insert("sink.buffer-flush.interval", "soon");
/// assert!(options.duration(&INTERVAL).unwrap_err().to_string().contains("sink.buffer-flush.interval"));
/// ```
#[derive(Debug, Clone, Default)]
pub struct Options {
    block: String,
    values: BTreeMap<String, String>,
    /// Every key a getter was asked for, shared by clones: lets tests prove that each
    /// declared option is read by its factory ([`Options::keys_read`]).
    read: Arc<Mutex<BTreeSet<String>>>,
}

impl PartialEq for Options {
    fn eq(&self, other: &Self) -> bool {
        self.block == other.block && self.values == other.values
    }
}

impl Eq for Options {}

impl Options {
    /// Empty options of the named block (used in error messages).
    pub fn new(block: impl Into<String>) -> Self {
        Self::from_map(block, BTreeMap::new())
    }

    /// Options of a block from key/value pairs.
    pub fn from_map(block: impl Into<String>, values: BTreeMap<String, String>) -> Self {
        Self {
            block: block.into(),
            values,
            read: Arc::default(),
        }
    }

    /// The block name (`source`, `sink`, `pipeline`).
    pub fn block(&self) -> &str {
        &self.block
    }

    /// Sets an option.
    pub fn insert(&mut self, key: impl Into<String>, value: impl Into<String>) {
        self.values.insert(key.into(), value.into());
    }

    /// The raw text of an option, if set.
    pub fn get_raw(&self, key: &str) -> Option<&str> {
        self.note_read(key);
        self.values.get(key).map(String::as_str)
    }

    /// Whether the option is set.
    pub fn contains(&self, key: &str) -> bool {
        self.note_read(key);
        self.values.contains_key(key)
    }

    /// The keys asked for so far through any getter (by this value and its clones), set
    /// or not: a test walks every declared option and checks that its factory reads it.
    pub fn keys_read(&self) -> BTreeSet<String> {
        self.read.lock().map(|r| r.clone()).unwrap_or_default()
    }

    fn note_read(&self, key: &str) {
        if let Ok(mut read) = self.read.lock() {
            if !read.contains(key) {
                read.insert(key.to_string());
            }
        }
    }

    /// All set options in key order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.values.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }

    /// Options whose key starts with `prefix`, with the prefix removed
    /// (`sink.properties.format` -> `format`).
    pub fn with_prefix(&self, prefix: &str) -> BTreeMap<String, String> {
        self.values
            .iter()
            .filter_map(|(k, v)| {
                let rest = k.strip_prefix(prefix)?;
                self.note_read(k);
                Some((rest.to_string(), v.clone()))
            })
            .collect()
    }

    /// The full name of a key for messages (`sink.fenodes`).
    pub fn qualified(&self, key: &str) -> String {
        if self.block.is_empty() {
            key.to_string()
        } else {
            format!("{}.{key}", self.block)
        }
    }

    fn invalid(&self, key: &str, message: impl Into<String>) -> Error {
        Error::invalid_option(self.qualified(key), message)
    }

    /// The text of an option, or its default.
    pub fn string(&self, option: &ConfigOption) -> Option<String> {
        self.get_raw(option.name)
            .or(option.default)
            .map(str::to_string)
    }

    /// The text of a required option; an error naming it when absent or empty.
    pub fn required(&self, option: &ConfigOption) -> Result<String> {
        match self.string(option) {
            Some(v) if !v.trim().is_empty() => Ok(v),
            _ => Err(self.invalid(option.name, format!("is required: {}", option.description))),
        }
    }

    /// A boolean option (`true`/`false`, any case).
    pub fn bool(&self, option: &ConfigOption) -> Result<Option<bool>> {
        self.parse_with(option, "true or false", |v| {
            match v.to_ascii_lowercase().as_str() {
                "true" => Some(true),
                "false" => Some(false),
                _ => None,
            }
        })
    }

    /// An unsigned integer option.
    pub fn u64(&self, option: &ConfigOption) -> Result<Option<u64>> {
        self.parse_with(option, "a whole number >= 0", |v| v.parse().ok())
    }

    /// A signed integer option.
    pub fn i64(&self, option: &ConfigOption) -> Result<Option<i64>> {
        self.parse_with(option, "a whole number", |v| v.parse().ok())
    }

    /// A floating-point option.
    pub fn f64(&self, option: &ConfigOption) -> Result<Option<f64>> {
        self.parse_with(option, "a number", |v| v.parse().ok())
    }

    /// A duration option (`500ms`, `30s`, `5min`, `1h`; a plain number is milliseconds).
    pub fn duration(&self, option: &ConfigOption) -> Result<Option<Duration>> {
        self.parse_with(option, "a duration such as 500ms, 30s, 5min or 1h", |v| {
            parse_duration(v).ok()
        })
    }

    /// A size option (`512kb`, `10mb`, `1gb`; a plain number is bytes).
    pub fn size(&self, option: &ConfigOption) -> Result<Option<u64>> {
        self.parse_with(option, "a size such as 512kb, 10mb or 1gb", |v| {
            parse_size(v).ok()
        })
    }

    fn parse_with<T>(
        &self,
        option: &ConfigOption,
        expected: &str,
        parse: impl FnOnce(&str) -> Option<T>,
    ) -> Result<Option<T>> {
        let Some(text) = self.get_raw(option.name).or(option.default) else {
            return Ok(None);
        };
        parse(text.trim())
            .map(Some)
            .ok_or_else(|| self.invalid(option.name, format!("'{text}' is not {expected}")))
    }
}

/// Parses a Flink-style duration: a number and a unit (`ns`, `us`, `ms`, `s`, `min`, `h`,
/// `d`, and their long forms such as `seconds`); a bare number is milliseconds.
///
/// ```
/// use std::time::Duration;
/// assert_eq!(cdc_api::parse_duration("5 min").unwrap(), Duration::from_secs(300));
/// assert_eq!(cdc_api::parse_duration("250").unwrap(), Duration::from_millis(250));
/// assert!(cdc_api::parse_duration("5 parsecs").is_err());
/// ```
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let (number, unit) = split_number(text)?;
    let nanos_per_unit: u128 = match unit.to_ascii_lowercase().as_str() {
        "ns" | "nano" | "nanos" | "nanosecond" | "nanoseconds" => 1,
        "us" | "µs" | "micro" | "micros" | "microsecond" | "microseconds" => 1_000,
        "" | "ms" | "milli" | "millis" | "millisecond" | "milliseconds" => 1_000_000,
        "s" | "sec" | "secs" | "second" | "seconds" => 1_000_000_000,
        "m" | "min" | "mins" | "minute" | "minutes" => 60_000_000_000,
        "h" | "hour" | "hours" => 3_600_000_000_000,
        "d" | "day" | "days" => 86_400_000_000_000,
        other => return Err(format!("unknown time unit '{other}' in '{text}'")),
    };
    let nanos = number
        .checked_mul(nanos_per_unit)
        .ok_or_else(|| format!("'{text}' is too long"))?;
    let secs = u64::try_from(nanos / 1_000_000_000).map_err(|_| format!("'{text}' is too long"))?;
    Ok(Duration::new(secs, (nanos % 1_000_000_000) as u32))
}

/// Parses a Flink-style memory size: a number and a unit (`b`, `kb`, `mb`, `gb`, `tb`, also
/// `k`, `m`, `g`, `kib`, ...; all binary multiples as in Flink); a bare number is bytes.
///
/// ```
/// assert_eq!(cdc_api::parse_size("10mb").unwrap(), 10 * 1024 * 1024);
/// assert_eq!(cdc_api::parse_size("4096").unwrap(), 4096);
/// ```
pub fn parse_size(text: &str) -> Result<u64, String> {
    let (number, unit) = split_number(text)?;
    let multiplier: u128 = match unit.to_ascii_lowercase().as_str() {
        "" | "b" | "bytes" => 1,
        "k" | "kb" | "kib" | "kibibytes" => 1 << 10,
        "m" | "mb" | "mib" | "mebibytes" => 1 << 20,
        "g" | "gb" | "gib" | "gibibytes" => 1 << 30,
        "t" | "tb" | "tib" | "tebibytes" => 1 << 40,
        other => return Err(format!("unknown size unit '{other}' in '{text}'")),
    };
    number
        .checked_mul(multiplier)
        .and_then(|v| u64::try_from(v).ok())
        .ok_or_else(|| format!("'{text}' is too large"))
}

fn split_number(text: &str) -> Result<(u128, &str), String> {
    let text = text.trim();
    let digits_end = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    if digits_end == 0 {
        return Err(format!("'{text}' does not start with a number"));
    }
    let number = text[..digits_end]
        .parse::<u128>()
        .map_err(|_| format!("'{text}' is too large"))?;
    Ok((number, text[digits_end..].trim()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_and_sizes_parse_the_flink_way() {
        assert_eq!(parse_duration("30s").unwrap(), Duration::from_secs(30));
        assert_eq!(parse_duration("1h").unwrap(), Duration::from_secs(3600));
        assert_eq!(parse_duration("10 ms").unwrap(), Duration::from_millis(10));
        assert!(parse_duration("").is_err());
        assert!(parse_duration("s").is_err());
        assert_eq!(parse_size("150 MB").unwrap(), 150 << 20);
        assert_eq!(parse_size("1gb").unwrap(), 1 << 30);
        assert!(parse_size("1 parsec").is_err());
        assert!(parse_size("99999999999999999999999tb").is_err());
    }

    #[test]
    fn required_option_names_itself() {
        const HOST: ConfigOption = ConfigOption::required("hostname", "the MySQL host");
        let err = Options::new("source").required(&HOST).unwrap_err();
        assert_eq!(
            err.to_string(),
            "option 'source.hostname': is required: the MySQL host"
        );
    }
}
