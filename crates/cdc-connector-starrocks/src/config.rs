//! The `sink: {type: starrocks, ...}` options: the names and defaults of Flink CDC's
//! StarRocks pipeline sink, plus `sink.semantic` and `sink.max-retries` (both options of
//! the StarRocks Flink connector), checked once into a [`StarRocksSinkConfig`] without I/O.

use std::collections::BTreeMap;
use std::time::Duration;

use cdc_api::{ConfigOption, Error, FactoryContext, Result};

pub(crate) const JDBC_URL: ConfigOption = ConfigOption::required(
    "jdbc-url",
    "FE MySQL-protocol address for DDL, e.g. jdbc:mysql://fe:9030",
);
pub(crate) const LOAD_URL: ConfigOption = ConfigOption::required(
    "load-url",
    "FE HTTP addresses separated by ';', e.g. fe1:8030;fe2:8030; https://host:port for TLS",
);
pub(crate) const SSL_CA_PATH: ConfigOption = ConfigOption::optional_no_default(
    "sink.ssl.ca-path",
    "PEM file of the CA(s) that sign the FE / BE certificates of https:// load-url addresses; when set, only these CAs are trusted (default: the system's roots)",
);
pub(crate) const DEAD_LETTER_PATH: ConfigOption = ConfigOption::optional_no_default(
    cdc_stream_load::dead_letter::DEAD_LETTER_PATH,
    cdc_stream_load::dead_letter::DEAD_LETTER_DESCRIPTION,
);
pub(crate) const USERNAME: ConfigOption = ConfigOption::required("username", "StarRocks user");
pub(crate) const PASSWORD: ConfigOption =
    ConfigOption::required("password", "StarRocks password (may be empty)");
pub(crate) const LABEL_PREFIX: ConfigOption = ConfigOption::optional_no_default(
    "sink.label-prefix",
    "prefix of Stream Load labels; give each pipeline writing one database its own",
);
pub(crate) const SEMANTIC: ConfigOption = ConfigOption::optional(
    "sink.semantic",
    "exactly-once",
    "exactly-once (transactions prepared at each checkpoint, committed once it is durable; the default here, Flink CDC's is at-least-once) or at-least-once (loads by size and interval, primary-key upserts make replays harmless)",
);
pub(crate) const MAX_RETRIES: ConfigOption = ConfigOption::optional(
    "sink.max-retries",
    "3",
    "retries of a failed load or transaction call (same label, with backoff) before the pipeline stops",
);
pub(crate) const CONNECT_TIMEOUT: ConfigOption = ConfigOption::optional(
    "sink.connect.timeout-ms",
    "30000",
    "HTTP connect timeout in milliseconds (100-60000)",
);
pub(crate) const SOCKET_TIMEOUT: ConfigOption = ConfigOption::optional(
    "sink.socket.timeout-ms",
    "-1",
    "how long to wait for one HTTP answer in milliseconds; -1 = the load's timeout (sink.properties.timeout, 600 s)",
);
pub(crate) const WAIT_FOR_CONTINUE: ConfigOption = ConfigOption::optional(
    "sink.wait-for-continue.timeout-ms",
    "30000",
    "how long the FE may take to say where a load's body goes, asked by a bodiless request before the body is sent (3000-600000 ms)",
);
pub(crate) const MAX_BYTES: ConfigOption = ConfigOption::optional(
    "sink.buffer-flush.max-bytes",
    "157286400",
    "bytes buffered across all tables; above it the largest table is loaded (exactly-once: prepared as an extra part of the checkpoint)",
);
pub(crate) const FLUSH_INTERVAL: ConfigOption = ConfigOption::optional(
    "sink.buffer-flush.interval-ms",
    "300000",
    "at-least-once: a table's buffer is loaded when its oldest row waited this long (milliseconds)",
);
pub(crate) const SCAN_FREQUENCY: ConfigOption = ConfigOption::optional(
    "sink.scan-frequency.ms",
    "50",
    "accepted for compatibility (a positive number)",
)
.without_effect("flush conditions are checked as rows arrive and at every timer tick (100 ms), with no scanning thread");
pub(crate) const IO_THREADS: ConfigOption = ConfigOption::optional(
    "sink.io.thread-count",
    "2",
    "how many loads (to different tables) run at once",
);
pub(crate) const ALO_TRANSACTIONS: ConfigOption = ConfigOption::optional(
    "sink.at-least-once.use-transaction-stream-load",
    "true",
    "at-least-once: load through the transaction interface (begin/load/prepare/commit) instead of one plain Stream Load",
);
pub(crate) const HISTOGRAM_WINDOW: ConfigOption = ConfigOption::optional(
    "sink.metric.histogram-window-size",
    "100",
    "accepted for compatibility (a positive number)",
)
.without_effect("load times are exported as Prometheus histograms, which need no window");
pub(crate) const NUM_BUCKETS: ConfigOption = ConfigOption::optional_no_default(
    "table.create.num-buckets",
    "BUCKETS of created tables (automatic when unset)",
);
pub(crate) const SCHEMA_CHANGE_TIMEOUT: ConfigOption = ConfigOption::optional(
    "table.schema-change.timeout",
    "30min",
    "how long to wait for an asynchronous schema-change job (whole seconds)",
);
pub(crate) const UNICODE_MAX_BYTES: ConfigOption = ConfigOption::optional(
    "unicode-char.max-bytes",
    "3",
    "bytes per character when sizing CHAR/VARCHAR (1-4); when not set the sink uses 4 so utf8mb4 text (emoji) fits",
);

/// Stream Load headers (`sink.properties.timeout: 600`, ...).
pub(crate) const PROPERTIES_PREFIX: &str = "sink.properties.";
/// PROPERTIES of created tables.
pub(crate) const TABLE_PROPERTIES_PREFIX: &str = "table.create.properties.";

/// Every option, in documentation order.
pub(crate) fn all_options() -> Vec<ConfigOption> {
    vec![
        JDBC_URL,
        LOAD_URL,
        USERNAME,
        PASSWORD,
        LABEL_PREFIX,
        SEMANTIC,
        MAX_RETRIES,
        CONNECT_TIMEOUT,
        SOCKET_TIMEOUT,
        WAIT_FOR_CONTINUE,
        MAX_BYTES,
        FLUSH_INTERVAL,
        SCAN_FREQUENCY,
        IO_THREADS,
        ALO_TRANSACTIONS,
        HISTOGRAM_WINDOW,
        NUM_BUCKETS,
        SCHEMA_CHANGE_TIMEOUT,
        UNICODE_MAX_BYTES,
        SSL_CA_PATH,
        DEAD_LETTER_PATH,
    ]
}

pub(crate) use cdc_stream_load::{Password, parse_node};

/// StarRocks' documented default load timeout.
const DEFAULT_LOAD_TIMEOUT: Duration = Duration::from_secs(600);

/// The pipeline's `local-time-zone` option (read from the `pipeline` block).
const LOCAL_TIME_ZONE: ConfigOption = ConfigOption::optional(
    "local-time-zone",
    "systemDefault",
    "zone TIMESTAMP_LTZ values are shown in",
);

/// Headers the sink sets itself.
const RESERVED_HEADERS: [(&str, &str); 5] = [
    (
        "label",
        "labels are derived from sink.label-prefix, the table and the checkpoint",
    ),
    (
        "columns",
        "rows carry their column names and __op, so a column list is not needed",
    ),
    ("partial_update", "rows carry every column"),
    ("db", "the database comes from the table id"),
    ("table", "the table comes from the table id"),
];

pub(crate) use cdc_stream_load::Zone;

/// Delivery guarantee.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Semantic {
    /// Loads by size and interval; replays rely on primary-key upserts.
    AtLeastOnce,
    /// Transactions prepared at each checkpoint and committed once it is durable.
    ExactlyOnce,
}

/// The checked options of one StarRocks sink.
#[derive(Debug, Clone)]
pub(crate) struct StarRocksSinkConfig {
    /// The pipeline's name, part of every label.
    pub(crate) pipeline_name: String,
    /// `host:port` of the FE's MySQL port.
    pub(crate) mysql_address: String,
    /// FE HTTP base URLs (`http://host:port` or `https://host:port`).
    pub(crate) load_urls: Vec<String>,
    pub(crate) username: String,
    pub(crate) password: Password,
    /// `sink.ssl.ca-path`: trust only the CAs of this PEM file (read when the sink is built).
    pub(crate) ca_path: Option<std::path::PathBuf>,
    pub(crate) label_prefix: String,
    pub(crate) semantic: Semantic,
    pub(crate) max_retries: u32,
    pub(crate) connect_timeout: Duration,
    /// `sink.wait-for-continue.timeout-ms`.
    pub(crate) wait_for_continue: Duration,
    /// How long one HTTP answer may take.
    pub(crate) request_timeout: Duration,
    pub(crate) max_bytes: usize,
    pub(crate) flush_interval: Duration,
    pub(crate) io_threads: usize,
    /// At-least-once through the transaction interface.
    pub(crate) alo_transactions: bool,
    pub(crate) num_buckets: Option<u32>,
    pub(crate) schema_change_timeout: Duration,
    /// Bytes per character when sizing CHAR / VARCHAR.
    pub(crate) char_bytes: u32,
    /// Extra load headers from `sink.properties.*` (lower-case names).
    pub(crate) load_headers: BTreeMap<String, String>,
    /// The server-side load / transaction `timeout` in seconds.
    pub(crate) load_timeout_secs: u64,
    pub(crate) table_properties: BTreeMap<String, String>,
    pub(crate) zone: Zone,
    /// The longest pause between two retries or job polls.
    pub(crate) max_backoff: Duration,
    /// `sink.dead-letter.path`: rows the target rejects go there (loads then allow
    /// filtered rows); `None` stops on them.
    pub(crate) dead_letter_path: Option<std::path::PathBuf>,
}

impl StarRocksSinkConfig {
    /// Reads and checks every option; errors name the option.
    pub(crate) fn from_context(ctx: &FactoryContext) -> Result<Self> {
        let o = &ctx.options;
        let invalid =
            |opt: &ConfigOption, msg: String| Error::invalid_option(o.qualified(opt.name), msg);
        let jdbc = o.required(&JDBC_URL)?;
        let mysql_address = parse_jdbc_url(&jdbc).map_err(|m| invalid(&JDBC_URL, m))?;
        let load_urls: Vec<String> = o
            .required(&LOAD_URL)?
            .split(';')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(|n| parse_node(n).map_err(|m| invalid(&LOAD_URL, m)))
            .collect::<Result<_>>()?;
        if load_urls.is_empty() {
            return Err(invalid(
                &LOAD_URL,
                "is required: at least one FE host:port".into(),
            ));
        }
        let username = o.required(&USERNAME)?;
        let ca_path = o
            .string(&SSL_CA_PATH)
            .map(|p| p.trim().to_string())
            .filter(|p| !p.is_empty())
            .map(std::path::PathBuf::from);
        let password = o
            .get_raw(PASSWORD.name)
            .map(|p| Password::new(p.to_string()))
            .ok_or_else(|| {
                invalid(
                    &PASSWORD,
                    "is required (write password: \"\" for none)".into(),
                )
            })?;
        let label_prefix = o.string(&LABEL_PREFIX).unwrap_or_default();
        if let Some(c) = label_prefix
            .chars()
            .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '_')))
        {
            return Err(invalid(
                &LABEL_PREFIX,
                format!(
                    "'{label_prefix}' has '{c}': StarRocks labels allow only letters, digits, '-' and '_'"
                ),
            ));
        }
        if label_prefix.len() > 64 {
            return Err(invalid(
                &LABEL_PREFIX,
                "is longer than 64 characters".into(),
            ));
        }
        let semantic = match o
            .string(&SEMANTIC)
            .unwrap_or_default()
            .to_ascii_lowercase()
            .as_str()
        {
            "at-least-once" => Semantic::AtLeastOnce,
            "exactly-once" => Semantic::ExactlyOnce,
            other => {
                return Err(invalid(
                    &SEMANTIC,
                    format!("'{other}' is not at-least-once or exactly-once"),
                ));
            }
        };
        let max_retries = o.u64(&MAX_RETRIES)?.unwrap_or(3);
        let max_retries = u32::try_from(max_retries)
            .ok()
            .filter(|v| *v <= 1000)
            .ok_or_else(|| invalid(&MAX_RETRIES, format!("{max_retries} is more than 1000")))?;
        let in_range = |opt: &ConfigOption, lo: i64, hi: i64| -> Result<i64> {
            let v = o.i64(opt)?.unwrap_or_default();
            if v < lo || v > hi {
                return Err(invalid(opt, format!("{v} is not between {lo} and {hi}")));
            }
            Ok(v)
        };
        let connect_timeout =
            Duration::from_millis(in_range(&CONNECT_TIMEOUT, 100, 60_000)? as u64);
        let wait_for_continue =
            Duration::from_millis(in_range(&WAIT_FOR_CONTINUE, 3000, 600_000)? as u64);
        let socket = o.i64(&SOCKET_TIMEOUT)?.unwrap_or(-1);
        if socket == 0 || socket < -1 {
            return Err(invalid(
                &SOCKET_TIMEOUT,
                format!("{socket} is not -1 or a positive number of milliseconds"),
            ));
        }
        let positive = |opt: &ConfigOption| -> Result<u64> {
            match o.u64(opt)? {
                Some(v) if v > 0 => Ok(v),
                _ => Err(invalid(opt, "must be greater than 0".into())),
            }
        };
        let max_bytes = match o.size(&MAX_BYTES)? {
            Some(v) if v > 0 => v as usize,
            _ => return Err(invalid(&MAX_BYTES, "must be greater than 0".into())),
        };
        let flush_interval = Duration::from_millis(positive(&FLUSH_INTERVAL)?);
        positive(&SCAN_FREQUENCY)?;
        let io_threads = positive(&IO_THREADS)? as usize;
        let alo_transactions = o.bool(&ALO_TRANSACTIONS)?.unwrap_or(true);
        positive(&HISTOGRAM_WINDOW)?;
        let num_buckets = match o.u64(&NUM_BUCKETS)? {
            None => None,
            Some(n) if n > 0 && n <= 1024 * 1024 => Some(n as u32),
            Some(n) => {
                return Err(invalid(
                    &NUM_BUCKETS,
                    format!("{n} is not a positive number of buckets"),
                ));
            }
        };
        let schema_change_timeout = o.duration(&SCHEMA_CHANGE_TIMEOUT)?.unwrap_or_default();
        if schema_change_timeout.as_secs() == 0 || schema_change_timeout.subsec_nanos() != 0 {
            return Err(invalid(
                &SCHEMA_CHANGE_TIMEOUT,
                "must be a whole number of seconds, at least 1s".into(),
            ));
        }
        // Flink sizes text at 3 bytes a character, which cannot hold emoji (FLINK-39759);
        // a StarRocks VARCHAR's declared length costs no storage, so unless the user chose
        // a value we size for utf8mb4.
        let char_bytes = if o.get_raw(UNICODE_MAX_BYTES.name).is_some() {
            let v = o.u64(&UNICODE_MAX_BYTES)?.unwrap_or(3);
            if !(1..=4).contains(&v) {
                return Err(invalid(
                    &UNICODE_MAX_BYTES,
                    format!("{v} is not between 1 and 4"),
                ));
            }
            v as u32
        } else {
            4
        };
        let mut load_headers = BTreeMap::new();
        for (key, value) in o.with_prefix(PROPERTIES_PREFIX) {
            let option = o.qualified(&format!("{PROPERTIES_PREFIX}{key}"));
            let lower = key.to_ascii_lowercase();
            if let Some((_, why)) = RESERVED_HEADERS.iter().find(|(h, _)| *h == lower) {
                return Err(Error::invalid_option(
                    option,
                    format!("cannot be set: {why}"),
                ));
            }
            let bad = match lower.as_str() {
                "format" => !value.eq_ignore_ascii_case("json"),
                "strip_outer_array" | "ignore_json_size" => !value.eq_ignore_ascii_case("true"),
                "timeout" => value
                    .trim()
                    .parse::<u64>()
                    .map_or(true, |t| t == 0 || t > 259_200),
                _ => false,
            };
            if bad {
                return Err(Error::invalid_option(
                    option,
                    format!(
                        "'{value}' is not supported: the sink sends JSON arrays (format json, strip_outer_array and ignore_json_size true) and timeout must be 1-259200 seconds"
                    ),
                ));
            }
            load_headers.insert(lower, value);
        }
        let dead_letter_path = cdc_stream_load::dead_letter::configure(
            o.string(&DEAD_LETTER_PATH).as_deref(),
            &mut load_headers,
        )
        .map_err(|m| invalid(&DEAD_LETTER_PATH, m))?;
        let load_timeout_secs = load_headers
            .get("timeout")
            .and_then(|t| t.trim().parse::<u64>().ok())
            .unwrap_or(DEFAULT_LOAD_TIMEOUT.as_secs());
        {
            // A prepared transaction lives for the `timeout` sent with `begin`; both modes
            // prepare (at-least-once while a snapshot is read).
            cdc_stream_load::driver::check_interval_fits(
                cdc_stream_load::driver::checkpoint_interval(&ctx.pipeline_options),
                Duration::from_secs(load_timeout_secs),
                &o.qualified("sink.properties.timeout"),
                "the StarRocks transaction timeout (sink.properties.timeout)",
            )?;
        }
        let request_timeout = if socket > 0 {
            Duration::from_millis(socket as u64)
        } else {
            Duration::from_secs(load_timeout_secs + 30)
        };
        let table_properties = o.with_prefix(TABLE_PROPERTIES_PREFIX);
        if let Some((k, _)) = table_properties
            .iter()
            .find(|(k, v)| k.contains('"') || v.contains('"'))
        {
            return Err(Error::invalid_option(
                o.qualified(&format!("{TABLE_PROPERTIES_PREFIX}{k}")),
                "must not contain a double quote",
            ));
        }
        let zone_text = ctx
            .pipeline_options
            .string(&LOCAL_TIME_ZONE)
            .unwrap_or_else(|| "systemDefault".into());
        let zone = Zone::parse(&zone_text).map_err(|m| {
            Error::invalid_option(ctx.pipeline_options.qualified(LOCAL_TIME_ZONE.name), m)
        })?;
        Ok(Self {
            pipeline_name: ctx.pipeline_name.clone(),
            mysql_address,
            load_urls,
            username,
            password,
            ca_path,
            label_prefix,
            semantic,
            max_retries,
            connect_timeout,
            wait_for_continue,
            request_timeout,
            max_bytes,
            flush_interval,
            io_threads,
            alo_transactions,
            num_buckets,
            schema_change_timeout,
            char_bytes,
            load_headers,
            load_timeout_secs,
            table_properties,
            zone,
            max_backoff: Duration::from_secs(5),
            dead_letter_path,
        })
    }

    /// Whether the sink prepares transactions at checkpoints.
    pub(crate) fn exactly_once(&self) -> bool {
        self.semantic == Semantic::ExactlyOnce
    }
}

/// `jdbc:mysql://host:port[/db][?params]` (or plain `host:port`) to `host:port`.
fn parse_jdbc_url(url: &str) -> Result<String, String> {
    let rest = url.trim();
    let rest = rest
        .strip_prefix("jdbc:mysql://")
        .or_else(|| rest.strip_prefix("mysql://"))
        .unwrap_or(rest);
    let host_port = rest.split(['/', '?']).next().unwrap_or_default();
    // messages show only host:port: the rest may hold `?password=...`
    let url = host_port;
    if url.contains('@') {
        return Err("the address must not carry credentials (user:password@...); set username and password instead".into());
    }
    // Several hosts (failover) are separated by commas; the first is used.
    let first = host_port.split(',').next().unwrap_or_default();
    let (host, port) = match first.rsplit_once(':') {
        Some((h, p)) => (
            h,
            p.parse::<u16>()
                .map_err(|_| format!("'{url}' has a bad port"))?,
        ),
        None => (first, 9030),
    };
    if host.is_empty() {
        return Err(format!("'{url}' is not jdbc:mysql://host:port"));
    }
    Ok(format!("{host}:{port}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use cdc_api::Options;

    fn ctx(pairs: &[(&str, &str)]) -> FactoryContext {
        let mut options = Options::new("sink");
        options.insert("jdbc-url", "jdbc:mysql://127.0.0.1:9030");
        options.insert("load-url", "127.0.0.1:8030");
        options.insert("username", "root");
        options.insert("password", "");
        for (k, v) in pairs {
            options.insert(*k, *v);
        }
        let mut pipeline = Options::new("pipeline");
        pipeline.insert("local-time-zone", "UTC");
        FactoryContext {
            pipeline_name: "p".into(),
            options,
            pipeline_options: pipeline,
        }
    }

    fn err(pairs: &[(&str, &str)]) -> String {
        StarRocksSinkConfig::from_context(&ctx(pairs))
            .map(|_| ())
            .unwrap_err()
            .to_string()
    }

    #[test]
    fn load_urls_take_http_and_https_and_hide_credentials() {
        let c = StarRocksSinkConfig::from_context(&ctx(&[
            ("load-url", "fe1:8030; http://fe2:8030/;https://fe3:8443"),
            ("sink.ssl.ca-path", "/etc/ca.pem"),
            ("password", "s3cr3tpw"),
        ]))
        .unwrap();
        assert_eq!(
            c.load_urls,
            ["http://fe1:8030", "http://fe2:8030", "https://fe3:8443"]
        );
        assert_eq!(
            c.ca_path.as_deref(),
            Some(std::path::Path::new("/etc/ca.pem"))
        );
        assert_eq!(c.password.expose(), "s3cr3tpw");
        let debug = format!("{c:?}");
        assert!(!debug.contains("s3cr3tpw"), "{debug}");
        for (k, v) in [
            ("load-url", "root:s3cr3tpw@fe:8030"),
            ("load-url", "https://root:s3cr3tpw@fe:8030"),
            ("jdbc-url", "jdbc:mysql://root:s3cr3tpw@fe:9030"),
            (
                "jdbc-url",
                "jdbc:mysql://fe:x/db?user=root&password=s3cr3tpw",
            ),
        ] {
            let e = StarRocksSinkConfig::from_context(&ctx(&[(k, v)]))
                .map(|_| ())
                .unwrap_err()
                .to_string();
            assert!(e.contains(k) && !e.contains("s3cr3tpw"), "{e}");
        }
    }

    #[test]
    fn defaults_follow_flink_cdc() {
        let c = StarRocksSinkConfig::from_context(&ctx(&[])).unwrap();
        // Stronger than Flink CDC's default (at-least-once).
        assert_eq!(c.semantic, Semantic::ExactlyOnce);
        assert_eq!(c.max_bytes, 157_286_400);
        assert_eq!(c.flush_interval, Duration::from_secs(300));
        assert_eq!(c.io_threads, 2);
        assert!(c.alo_transactions);
        assert_eq!(c.schema_change_timeout, Duration::from_secs(1800));
        assert_eq!(c.char_bytes, 4);
        assert_eq!(c.mysql_address, "127.0.0.1:9030");
        assert_eq!(c.load_timeout_secs, 600);
        assert_eq!(c.request_timeout, Duration::from_secs(630));
        let c = StarRocksSinkConfig::from_context(&ctx(&[
            ("unicode-char.max-bytes", "3"),
            ("sink.socket.timeout-ms", "2000"),
        ]))
        .unwrap();
        assert_eq!(c.char_bytes, 3);
        assert_eq!(c.request_timeout, Duration::from_secs(2));
        assert!(
            !StarRocksSinkConfig::from_context(&ctx(&[("sink.semantic", "at-least-once")]))
                .unwrap()
                .exactly_once()
        );
    }

    #[test]
    fn a_checkpoint_interval_the_transaction_timeout_cannot_cover_is_refused() {
        let with_interval = |interval: &str, extra: &[(&str, &str)]| {
            let mut c = ctx(extra);
            c.pipeline_options.insert("checkpoint.interval", interval);
            StarRocksSinkConfig::from_context(&c).map(|_| ())
        };
        assert!(with_interval("5min", &[]).is_ok());
        let e = with_interval("10min", &[]).unwrap_err().to_string();
        assert!(
            e.contains("sink.properties.timeout") && e.contains("600 s") && e.contains("600 s"),
            "{e}"
        );
        assert!(with_interval("10min", &[("sink.properties.timeout", "1200")]).is_ok());
        // At-least-once prepares too, while a snapshot is read.
        assert!(with_interval("10min", &[("sink.semantic", "at-least-once")]).is_err());
    }

    #[test]
    fn bad_values_name_the_option() {
        assert!(err(&[("sink.semantic", "twice")]).contains("sink.semantic"));
        assert!(err(&[("sink.connect.timeout-ms", "50")]).contains("sink.connect.timeout-ms"));
        assert!(err(&[("unicode-char.max-bytes", "5")]).contains("unicode-char.max-bytes"));
        assert!(
            err(&[("table.schema-change.timeout", "1500ms")])
                .contains("table.schema-change.timeout")
        );
        assert!(err(&[("sink.properties.format", "csv")]).contains("sink.properties.format"));
        assert!(err(&[("sink.properties.label", "x")]).contains("cannot be set"));
        assert!(err(&[("sink.label-prefix", "a.b")]).contains("sink.label-prefix"));
        assert!(err(&[("load-url", "fe")]).contains("sink.load-url"));
        assert!(err(&[("jdbc-url", "jdbc:mysql://:x")]).contains("jdbc-url"));
    }

    #[test]
    fn jdbc_urls() {
        assert_eq!(
            parse_jdbc_url("jdbc:mysql://fe:9031/db?x=1").unwrap(),
            "fe:9031"
        );
        assert_eq!(parse_jdbc_url("fe").unwrap(), "fe:9030");
        assert_eq!(parse_jdbc_url("jdbc:mysql://a:1,b:2").unwrap(), "a:1");
    }
}
