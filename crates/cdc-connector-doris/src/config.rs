//! The `sink: {type: doris, ...}` options: names and defaults of Flink CDC's Doris pipeline
//! sink, checked once into a [`DorisSinkConfig`] without any I/O.

use std::collections::BTreeMap;
use std::time::Duration;

use cdc_api::{ConfigOption, Error, FactoryContext, Options, Result};
use regex::Regex;

pub(crate) const FENODES: ConfigOption = ConfigOption::required(
    "fenodes",
    "FE HTTP addresses, comma-separated host:port (e.g. fe1:8030,fe2:8030); https://host:port for TLS",
);
pub(crate) const BENODES: ConfigOption = ConfigOption::optional_no_default(
    "benodes",
    "BE HTTP addresses, comma-separated; when set, loads go straight to them instead of through the FE; https://host:port for TLS",
);
pub(crate) const SSL_CA_PATH: ConfigOption = ConfigOption::optional_no_default(
    "sink.ssl.ca-path",
    "PEM file of the CA(s) that sign the FE / BE certificates of https:// addresses; when set, only these CAs are trusted (default: the system's roots)",
);
pub(crate) const DEAD_LETTER_PATH: ConfigOption = ConfigOption::optional_no_default(
    cdc_stream_load::dead_letter::DEAD_LETTER_PATH,
    cdc_stream_load::dead_letter::DEAD_LETTER_DESCRIPTION,
);
pub(crate) const JDBC_URL: ConfigOption = ConfigOption::optional_no_default(
    "jdbc-url",
    "accepted for compatibility",
)
.without_effect("DDL goes over the FE's HTTP SQL API (fenodes), as Flink CDC's Doris sink sends it, so the MySQL port is never used");
pub(crate) const USERNAME: ConfigOption = ConfigOption::required("username", "Doris user");
pub(crate) const PASSWORD: ConfigOption =
    ConfigOption::optional("password", "", "password of the Doris user");
pub(crate) const AUTO_REDIRECT: ConfigOption = ConfigOption::optional(
    "auto-redirect",
    "false",
    "without benodes: true sends loads and 2PC commits to the FE, which redirects them to a BE; false sends them straight to the BEs the FE lists in /api/backends",
);
pub(crate) const CHARSET: ConfigOption = ConfigOption::optional(
    "charset-encoding",
    "UTF-8",
    "body encoding; only UTF-8 is supported (Doris stores UTF-8)",
);
/// How long Doris keeps a pre-committed load before aborting it: the FE's
/// `stream_load_default_precommit_timeout_second` default (fe/fe-common Config.java).
const DORIS_PRECOMMIT_TIMEOUT: Duration = Duration::from_secs(3600);

pub(crate) const BATCH_MODE: ConfigOption = ConfigOption::optional(
    "sink.enable.batch-mode",
    "false",
    "true: at-least-once batches flushed by size and interval (Flink CDC's default; here exactly-once is the default unless this or sink.enable-2pc chooses otherwise)",
);
pub(crate) const FLUSH_QUEUE_SIZE: ConfigOption = ConfigOption::optional(
    "sink.flush.queue-size",
    "2",
    "how many Stream Loads (to different tables) may run at once",
);
pub(crate) const MAX_ROWS: ConfigOption = ConfigOption::optional(
    "sink.buffer-flush.max-rows",
    "50000",
    "a table's buffer is loaded when it holds this many rows",
);
pub(crate) const MAX_BYTES: ConfigOption = ConfigOption::optional(
    "sink.buffer-flush.max-bytes",
    "10mb",
    "a table's buffer is loaded when it holds this many bytes",
);
pub(crate) const FLUSH_INTERVAL: ConfigOption = ConfigOption::optional(
    "sink.buffer-flush.interval",
    "10s",
    "a table's buffer is loaded when its oldest row waited this long, also while no rows arrive (at-least-once mode; with 2PC rows wait for the checkpoint)",
);
pub(crate) const ENABLE_DELETE: ConfigOption = ConfigOption::optional(
    "sink.enable-delete",
    "true",
    "apply deletes to UNIQUE KEY tables through __DORIS_DELETE_SIGN__",
);
pub(crate) const MAX_RETRIES: ConfigOption = ConfigOption::optional(
    "sink.max-retries",
    "3",
    "retries of a failed load (same label, with backoff) before the pipeline stops",
);
pub(crate) const IGNORE_UPDATE_BEFORE: ConfigOption = ConfigOption::optional(
    "sink.ignore.update-before",
    "true",
    "false writes an update as a delete of the old row plus the new row",
);
pub(crate) const ENABLE_2PC: ConfigOption = ConfigOption::optional(
    "sink.enable-2pc",
    "true",
    "exactly-once: pre-commit at each checkpoint, commit once the checkpoint is durable (the default unless sink.enable.batch-mode: true is set; false: at-least-once)",
);
pub(crate) const LABEL_PREFIX: ConfigOption = ConfigOption::optional(
    "sink.label-prefix",
    "",
    "prefix of every Stream Load label; give each pipeline writing one database its own",
);
pub(crate) const CHECK_INTERVAL: ConfigOption = ConfigOption::optional(
    "sink.check-interval",
    "10000",
    "the longest pause between two retries or two status checks (milliseconds or a duration)",
);
pub(crate) const BUFFER_SIZE: ConfigOption = ConfigOption::optional(
    "sink.buffer-size",
    "1mb",
    "initial capacity of a table's body buffer, and the largest spare buffer kept for reuse",
);
pub(crate) const BUFFER_COUNT: ConfigOption = ConfigOption::optional(
    "sink.buffer-count",
    "3",
    "how many spare body buffers are kept for reuse",
);
pub(crate) const USE_CACHE: ConfigOption = ConfigOption::optional(
    "sink.use-cache",
    "false",
    "accepted for compatibility (true or false)",
)
.without_effect(
    "always on: a batch stays in memory until its load succeeded, and retries resend it from there",
);
/// Flink CDC's Doris sink has no such option (it does not wait for Doris's asynchronous
/// schema-change jobs); the name and default are those of its StarRocks sink, whose
/// `table.schema-change.timeout` bounds the same wait.
pub(crate) const SCHEMA_CHANGE_TIMEOUT: ConfigOption = ConfigOption::optional(
    "table.schema-change.timeout",
    "30min",
    "how long to wait for Doris's schema-change jobs of a table to finish after an ALTER, and for another job holding the table (whole seconds)",
);

/// Stream Load headers (`sink.properties.format: json`, ...).
pub(crate) const PROPERTIES_PREFIX: &str = "sink.properties.";
/// The PROPERTIES clause of auto-created tables.
pub(crate) const TABLE_PROPERTIES_PREFIX: &str = "table.create.properties.";
/// AUTO RANGE PARTITION settings of auto-created tables.
pub(crate) const AUTO_PARTITION_PREFIX: &str = "table.create.auto-partition.properties.";

/// Every option of the sink, in documentation order.
pub(crate) fn all_options() -> Vec<ConfigOption> {
    vec![
        FENODES,
        BENODES,
        JDBC_URL,
        USERNAME,
        PASSWORD,
        AUTO_REDIRECT,
        CHARSET,
        BATCH_MODE,
        FLUSH_QUEUE_SIZE,
        MAX_ROWS,
        MAX_BYTES,
        FLUSH_INTERVAL,
        ENABLE_DELETE,
        MAX_RETRIES,
        IGNORE_UPDATE_BEFORE,
        ENABLE_2PC,
        LABEL_PREFIX,
        CHECK_INTERVAL,
        BUFFER_SIZE,
        BUFFER_COUNT,
        USE_CACHE,
        SSL_CA_PATH,
        SCHEMA_CHANGE_TIMEOUT,
        DEAD_LETTER_PATH,
    ]
}

pub(crate) use cdc_stream_load::{Password, parse_node};

/// Doris's documented default Stream Load timeout.
const DEFAULT_LOAD_TIMEOUT: Duration = Duration::from_secs(600);

/// The pipeline's `local-time-zone` option (read from the `pipeline` block).
const LOCAL_TIME_ZONE: ConfigOption = ConfigOption::optional(
    "local-time-zone",
    "systemDefault",
    "zone TIMESTAMP_LTZ values are shown in",
);

/// Headers the sink sets itself; letting `sink.properties.*` override them would break
/// labels, deletes or the body format.
const RESERVED_HEADERS: [(&str, &str); 6] = [
    (
        "label",
        "labels are derived from sink.label-prefix, the table and the checkpoint",
    ),
    ("two_phase_commit", "set sink.enable-2pc instead"),
    ("hidden_columns", "set sink.enable-delete instead"),
    (
        "columns",
        "the body carries column names, so a column list is not needed",
    ),
    (
        "merge_type",
        "deletes are sent per row through __DORIS_DELETE_SIGN__",
    ),
    (
        "strip_outer_array",
        "the body is JSON lines (read_json_by_line)",
    ),
];

pub(crate) use cdc_stream_load::Zone;

/// How auto-created tables are partitioned (`table.create.auto-partition.properties.*`).
#[derive(Debug, Clone, Default)]
pub(crate) struct AutoPartition {
    /// Tables (`db.table` regexes) to partition; empty = none.
    pub(crate) include: Vec<Regex>,
    /// Tables never partitioned.
    pub(crate) exclude: Vec<Regex>,
    /// Partition column when a table has no own setting.
    pub(crate) default_key: Option<String>,
    /// `year`, `quarter`, `month`, `week`, `day` or `hour`.
    pub(crate) default_unit: String,
    /// Per table (`db.table`): (column, unit).
    pub(crate) per_table: BTreeMap<String, (Option<String>, Option<String>)>,
}

const PARTITION_UNITS: [&str; 6] = ["year", "quarter", "month", "week", "day", "hour"];

impl AutoPartition {
    fn parse(options: &Options) -> Result<Self> {
        let raw = options.with_prefix(AUTO_PARTITION_PREFIX);
        let mut out = Self {
            default_unit: "day".into(),
            ..Self::default()
        };
        let key_name = |k: &str| options.qualified(&format!("{AUTO_PARTITION_PREFIX}{k}"));
        let regexes = |k: &str, v: &str| -> Result<Vec<Regex>> {
            v.split(',')
                .map(str::trim)
                .filter(|p| !p.is_empty())
                .map(|p| {
                    Regex::new(&format!("^(?:{p})$")).map_err(|e| {
                        Error::invalid_option(key_name(k), format!("'{p}' is not a regex: {e}"))
                    })
                })
                .collect()
        };
        let unit = |k: &str, v: &str| -> Result<String> {
            let v = v.trim().to_ascii_lowercase();
            if PARTITION_UNITS.contains(&v.as_str()) {
                Ok(v)
            } else {
                Err(Error::invalid_option(
                    key_name(k),
                    format!("'{v}' is not one of {}", PARTITION_UNITS.join(", ")),
                ))
            }
        };
        for (k, v) in &raw {
            match k.as_str() {
                "include" => out.include = regexes(k, v)?,
                "exclude" => out.exclude = regexes(k, v)?,
                "default-partition-key" => out.default_key = Some(v.trim().to_string()),
                "default-partition-unit" => out.default_unit = unit(k, v)?,
                other => {
                    if let Some(table) = other.strip_suffix(".partition-key") {
                        out.per_table.entry(table.to_string()).or_default().0 =
                            Some(v.trim().to_string());
                    } else if let Some(table) = other.strip_suffix(".partition-unit") {
                        out.per_table.entry(table.to_string()).or_default().1 = Some(unit(k, v)?);
                    } else {
                        return Err(Error::invalid_option(
                            key_name(k),
                            "unknown key: use include, exclude, default-partition-key, default-partition-unit, DB.TABLE.partition-key or DB.TABLE.partition-unit",
                        ));
                    }
                }
            }
        }
        Ok(out)
    }

    /// The (column, unit) to partition `db.table` by, if it is selected.
    pub(crate) fn for_table(&self, qualified: &str) -> Option<(String, String)> {
        let own = self.per_table.get(qualified);
        let selected = own.is_some_and(|(k, _)| k.is_some())
            || self.include.iter().any(|r| r.is_match(qualified));
        if !selected || self.exclude.iter().any(|r| r.is_match(qualified)) {
            return None;
        }
        let key = own
            .and_then(|(k, _)| k.clone())
            .or_else(|| self.default_key.clone())?;
        let unit = own
            .and_then(|(_, u)| u.clone())
            .unwrap_or_else(|| self.default_unit.clone());
        Some((key, unit))
    }
}

/// The checked options of one Doris sink.
#[derive(Debug, Clone)]
pub(crate) struct DorisSinkConfig {
    /// The pipeline's name, part of every label.
    pub(crate) pipeline_name: String,
    /// FE base URLs (`http://host:port` or `https://host:port`).
    pub(crate) fenodes: Vec<String>,
    /// BE base URLs for direct loads (empty = discovered from the FE, or through the FE
    /// with `auto_redirect`).
    pub(crate) benodes: Vec<String>,
    /// `auto-redirect`: without `benodes`, send loads to the FE and follow its redirect
    /// instead of loading into the BEs the FE lists.
    pub(crate) auto_redirect: bool,
    pub(crate) username: String,
    pub(crate) password: Password,
    /// `sink.ssl.ca-path`: trust only the CAs of this PEM file (read when the sink is built).
    pub(crate) ca_path: Option<std::path::PathBuf>,
    /// Exactly-once through two-phase commit.
    pub(crate) two_phase: bool,
    pub(crate) max_concurrent_loads: usize,
    pub(crate) max_rows: usize,
    pub(crate) max_bytes: usize,
    pub(crate) flush_interval: Duration,
    pub(crate) enable_delete: bool,
    pub(crate) max_retries: u32,
    pub(crate) ignore_update_before: bool,
    pub(crate) label_prefix: String,
    /// The longest backoff between retries.
    pub(crate) check_interval: Duration,
    pub(crate) buffer_size: usize,
    pub(crate) buffer_count: usize,
    /// Extra Stream Load headers from `sink.properties.*`.
    pub(crate) load_headers: BTreeMap<String, String>,
    /// How long the sink waits for one load's answer: the load's server-side `timeout`
    /// (`sink.properties.timeout`, seconds), else 600 s, Doris's documented default. After
    /// that the load is sent again with the same label.
    pub(crate) load_timeout: Duration,
    /// `table.create.properties.*`.
    pub(crate) table_properties: BTreeMap<String, String>,
    pub(crate) auto_partition: AutoPartition,
    /// `table.schema-change.timeout`: the longest wait for a table's schema-change jobs
    /// (ours to finish, or another one to let the table go).
    pub(crate) schema_change_timeout: Duration,
    /// `sink.dead-letter.path`: rows the target rejects go there (loads then allow
    /// filtered rows); `None` stops on them.
    pub(crate) dead_letter_path: Option<std::path::PathBuf>,
    /// The pipeline's `local-time-zone`.
    pub(crate) zone: Zone,
}

impl DorisSinkConfig {
    /// Reads and checks every option; errors name the option.
    pub(crate) fn from_context(ctx: &FactoryContext) -> Result<Self> {
        let o = &ctx.options;
        let invalid =
            |opt: &ConfigOption, msg: String| Error::invalid_option(o.qualified(opt.name), msg);
        let nodes = |opt: &ConfigOption| -> Result<Vec<String>> {
            let Some(raw) = o.string(opt) else {
                return Ok(Vec::new());
            };
            raw.split(',')
                .map(str::trim)
                .filter(|n| !n.is_empty())
                .map(|n| parse_node(n).map_err(|m| invalid(opt, m)))
                .collect()
        };
        let fenodes = nodes(&FENODES)?;
        if fenodes.is_empty() {
            return Err(invalid(
                &FENODES,
                "is required: at least one FE host:port".into(),
            ));
        }
        let benodes = nodes(&BENODES)?;
        let username = o.required(&USERNAME)?;
        let password = Password::new(o.string(&PASSWORD).unwrap_or_default());
        let ca_path = o
            .string(&SSL_CA_PATH)
            .map(|p| p.trim().to_string())
            .filter(|p| !p.is_empty())
            .map(std::path::PathBuf::from);
        let auto_redirect = o.bool(&AUTO_REDIRECT)?.unwrap_or(false);
        o.bool(&USE_CACHE)?;
        let charset = o.string(&CHARSET).unwrap_or_default();
        if !matches!(
            charset.to_ascii_uppercase().replace('_', "-").as_str(),
            "UTF-8" | "UTF8"
        ) {
            return Err(invalid(
                &CHARSET,
                format!(
                    "'{charset}' is not supported: Doris stores UTF-8 and the sink sends UTF-8"
                ),
            ));
        }
        // Exactly-once unless the file chooses otherwise; a file that chooses keeps Flink
        // CDC's meaning (batch mode is at-least-once, an explicit sink.enable-2pc wins).
        let batch_mode = o.bool(&BATCH_MODE)?.unwrap_or(false);
        let two_phase = match o.get_raw(ENABLE_2PC.name) {
            Some(_) => o.bool(&ENABLE_2PC)?.unwrap_or(true),
            None => !batch_mode,
        };
        {
            // Both modes pre-commit (at-least-once while a snapshot is read), and Doris
            // aborts a pre-committed load after the FE's
            // stream_load_default_precommit_timeout_second (3600 s by default, fe/Config.java).
            cdc_stream_load::driver::check_interval_fits(
                cdc_stream_load::driver::checkpoint_interval(&ctx.pipeline_options),
                DORIS_PRECOMMIT_TIMEOUT,
                &o.qualified(ENABLE_2PC.name),
                "Doris's pre-commit timeout (FE stream_load_default_precommit_timeout_second, 3600 s by default)",
            )?;
        }
        let positive = |opt: &ConfigOption, v: Option<u64>| -> Result<u64> {
            match v {
                Some(v) if v > 0 => Ok(v),
                _ => Err(invalid(opt, "must be greater than 0".into())),
            }
        };
        let max_concurrent_loads = positive(&FLUSH_QUEUE_SIZE, o.u64(&FLUSH_QUEUE_SIZE)?)? as usize;
        let max_rows = positive(&MAX_ROWS, o.u64(&MAX_ROWS)?)? as usize;
        let max_bytes = positive(&MAX_BYTES, o.size(&MAX_BYTES)?)? as usize;
        let flush_interval = o.duration(&FLUSH_INTERVAL)?.unwrap_or_default();
        if flush_interval.is_zero() {
            return Err(invalid(&FLUSH_INTERVAL, "must be longer than 0".into()));
        }
        let check_interval = o.duration(&CHECK_INTERVAL)?.unwrap_or_default();
        if check_interval.is_zero() {
            return Err(invalid(&CHECK_INTERVAL, "must be longer than 0".into()));
        }
        let max_retries = o.u64(&MAX_RETRIES)?.unwrap_or(3);
        let max_retries = u32::try_from(max_retries)
            .ok()
            .filter(|v| *v <= 1000)
            .ok_or_else(|| invalid(&MAX_RETRIES, format!("{max_retries} is more than 1000")))?;
        let label_prefix = o.string(&LABEL_PREFIX).unwrap_or_default();
        if let Some(c) = label_prefix
            .chars()
            .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | ':')))
        {
            return Err(invalid(
                &LABEL_PREFIX,
                format!(
                    "'{label_prefix}' has '{c}': Doris labels allow only letters, digits, '-', '_' and ':'"
                ),
            ));
        }
        if label_prefix.len() > 64 {
            return Err(invalid(
                &LABEL_PREFIX,
                "is longer than 64 characters".into(),
            ));
        }
        let buffer_size = positive(&BUFFER_SIZE, o.size(&BUFFER_SIZE)?)? as usize;
        let buffer_count = positive(&BUFFER_COUNT, o.u64(&BUFFER_COUNT)?)? as usize;

        let mut load_headers = BTreeMap::new();
        for (key, value) in o.with_prefix(PROPERTIES_PREFIX) {
            let option = format!("{PROPERTIES_PREFIX}{key}");
            let lower = key.to_ascii_lowercase();
            if let Some((_, why)) = RESERVED_HEADERS.iter().find(|(h, _)| *h == lower) {
                return Err(Error::invalid_option(
                    o.qualified(&option),
                    format!("cannot be set: {why}"),
                ));
            }
            match lower.as_str() {
                "format" if !value.eq_ignore_ascii_case("json") => {
                    return Err(Error::invalid_option(
                        o.qualified(&option),
                        format!(
                            "'{value}' is not supported: the sink writes JSON lines (format json)"
                        ),
                    ));
                }
                "read_json_by_line" if !value.eq_ignore_ascii_case("true") => {
                    return Err(Error::invalid_option(
                        o.qualified(&option),
                        "must be true: the sink writes one JSON object per line",
                    ));
                }
                "group_commit" if two_phase && !value.eq_ignore_ascii_case("off_mode") => {
                    return Err(Error::invalid_option(
                        o.qualified(&option),
                        "cannot be used with sink.enable-2pc: group commit does not take labels or transactions",
                    ));
                }
                "timeout" if value.trim().parse::<u32>().map_or(true, |t| t == 0) => {
                    return Err(Error::invalid_option(
                        o.qualified(&option),
                        format!("'{value}' is not a whole number of seconds greater than 0"),
                    ));
                }
                "compress_type" => {
                    return Err(Error::invalid_option(
                        o.qualified(&option),
                        "is not supported: Doris 2.1 rejects compressed JSON loads",
                    ));
                }
                _ => {}
            }
            load_headers.insert(lower, value);
        }
        let dead_letter_path = cdc_stream_load::dead_letter::configure(
            o.string(&DEAD_LETTER_PATH).as_deref(),
            &mut load_headers,
        )
        .map_err(|m| invalid(&DEAD_LETTER_PATH, m))?;
        let load_timeout = load_headers
            .get("timeout")
            .and_then(|t| t.trim().parse::<u64>().ok())
            .map_or(DEFAULT_LOAD_TIMEOUT, Duration::from_secs);
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
        let auto_partition = AutoPartition::parse(o)?;
        let schema_change_timeout = o.duration(&SCHEMA_CHANGE_TIMEOUT)?.unwrap_or_default();
        // Whole seconds, as the StarRocks sink's option of the same name.
        if schema_change_timeout.as_secs() == 0 || schema_change_timeout.subsec_nanos() != 0 {
            return Err(invalid(
                &SCHEMA_CHANGE_TIMEOUT,
                "must be a whole number of seconds, at least 1s".into(),
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
            fenodes,
            benodes,
            auto_redirect,
            username,
            password,
            ca_path,
            two_phase,
            max_concurrent_loads,
            max_rows,
            max_bytes,
            flush_interval,
            enable_delete: o.bool(&ENABLE_DELETE)?.unwrap_or(true),
            max_retries,
            ignore_update_before: o.bool(&IGNORE_UPDATE_BEFORE)?.unwrap_or(true),
            label_prefix,
            check_interval,
            buffer_size,
            buffer_count,
            load_headers,
            load_timeout,
            table_properties,
            auto_partition,
            schema_change_timeout,
            zone,
            dead_letter_path,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx(pairs: &[(&str, &str)]) -> FactoryContext {
        let mut options = Options::new("sink");
        options.insert("fenodes", "127.0.0.1:8030");
        options.insert("username", "root");
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
        DorisSinkConfig::from_context(&ctx(pairs))
            .map(|_| ())
            .unwrap_err()
            .to_string()
    }

    #[test]
    fn defaults_follow_flink_cdc() {
        let c = DorisSinkConfig::from_context(&ctx(&[])).unwrap();
        // Stronger than Flink CDC's default (batch mode, at-least-once).
        assert!(c.two_phase);
        assert_eq!(c.max_rows, 50_000);
        assert_eq!(c.max_bytes, 10 << 20);
        assert_eq!(c.flush_interval, Duration::from_secs(10));
        assert_eq!(c.max_retries, 3);
        assert_eq!(c.max_concurrent_loads, 2);
        assert!(c.enable_delete && c.ignore_update_before);
        assert_eq!(c.check_interval, Duration::from_secs(10));
        assert_eq!(c.zone, Zone::Fixed(0));
        assert_eq!(c.load_timeout, Duration::from_secs(600));
        assert_eq!(c.schema_change_timeout, Duration::from_secs(1800));
        let c =
            DorisSinkConfig::from_context(&ctx(&[("table.schema-change.timeout", "2s")])).unwrap();
        assert_eq!(c.schema_change_timeout, Duration::from_secs(2));
        for bad in ["0s", "1500ms", "soon"] {
            assert!(
                err(&[("table.schema-change.timeout", bad)])
                    .contains("table.schema-change.timeout"),
                "{bad}"
            );
        }
        // Flink CDC's pipeline default: loads go straight to the BEs the FE lists.
        assert!(!c.auto_redirect && c.benodes.is_empty());
        let c = DorisSinkConfig::from_context(&ctx(&[("sink.properties.timeout", "30")])).unwrap();
        assert_eq!(c.load_timeout, Duration::from_secs(30));
        assert!(err(&[("sink.properties.timeout", "0")]).contains("sink.properties.timeout"));
        assert!(err(&[("sink.properties.timeout", "1m")]).contains("sink.properties.timeout"));
    }

    #[test]
    fn two_phase_unless_the_file_chooses_batch_mode_or_sets_it_off() {
        let on = |p: &[(&str, &str)]| DorisSinkConfig::from_context(&ctx(p)).unwrap().two_phase;
        assert!(on(&[]));
        assert!(on(&[("sink.enable-2pc", "true")]));
        assert!(!on(&[("sink.enable-2pc", "false")]));
        assert!(!on(&[("sink.enable.batch-mode", "true")]));
        assert!(on(&[
            ("sink.enable.batch-mode", "true"),
            ("sink.enable-2pc", "true")
        ]));
        assert!(on(&[("sink.enable.batch-mode", "false")]));
        assert!(!on(&[
            ("sink.enable.batch-mode", "false"),
            ("sink.enable-2pc", "false")
        ]));
    }

    #[test]
    fn a_checkpoint_interval_the_precommit_timeout_cannot_cover_is_refused() {
        let with_interval = |interval: &str, extra: &[(&str, &str)]| {
            let mut c = ctx(extra);
            c.pipeline_options.insert("checkpoint.interval", interval);
            DorisSinkConfig::from_context(&c).map(|_| ())
        };
        assert!(with_interval("30min", &[]).is_ok());
        let e = with_interval("45min", &[]).unwrap_err().to_string();
        assert!(e.contains("2700 s") && e.contains("3600 s"), "{e}");
        // At-least-once pre-commits too, while a snapshot is read.
        assert!(with_interval("45min", &[("sink.enable-2pc", "false")]).is_err());
    }

    #[test]
    fn nodes_take_http_and_https_addresses() {
        let c = DorisSinkConfig::from_context(&ctx(&[
            ("fenodes", "fe1:8030, http://fe2:8030/,https://fe3:8443"),
            ("benodes", "https://be:8040"),
            ("sink.ssl.ca-path", "/etc/ca.pem"),
        ]))
        .unwrap();
        assert_eq!(
            c.fenodes,
            ["http://fe1:8030", "http://fe2:8030", "https://fe3:8443"]
        );
        assert_eq!(c.benodes, ["https://be:8040"]);
        assert_eq!(
            c.ca_path.as_deref(),
            Some(std::path::Path::new("/etc/ca.pem"))
        );
    }

    #[test]
    fn credentials_never_show_in_config_errors_or_debug() {
        let e = err(&[("fenodes", "root:s3cr3tpw@fe:8030")]);
        assert!(e.contains("sink.fenodes") && !e.contains("s3cr3tpw"), "{e}");
        let e = err(&[("fenodes", "https://root:s3cr3tpw@fe:8030")]);
        assert!(!e.contains("s3cr3tpw"), "{e}");
        let c = DorisSinkConfig::from_context(&ctx(&[("password", "s3cr3tpw")])).unwrap();
        assert_eq!(c.password.expose(), "s3cr3tpw");
        let debug = format!("{c:?}");
        assert!(
            !debug.contains("s3cr3tpw") && debug.contains("***"),
            "{debug}"
        );
    }

    #[test]
    fn bad_values_name_the_option() {
        assert!(err(&[("sink.buffer-flush.max-rows", "0")]).contains("sink.buffer-flush.max-rows"));
        assert!(
            err(&[("sink.buffer-flush.max-bytes", "lots")]).contains("sink.buffer-flush.max-bytes")
        );
        assert!(err(&[("fenodes", "fe")]).contains("sink.fenodes"));
        assert!(err(&[("fenodes", "ftp://fe:1")]).contains("unknown scheme"));
        assert!(err(&[("benodes", "be:1/x")]).contains("sink.benodes"));
        assert!(err(&[("charset-encoding", "GBK")]).contains("charset-encoding"));
        assert!(err(&[("sink.label-prefix", "a b")]).contains("sink.label-prefix"));
        assert!(err(&[("sink.properties.format", "csv")]).contains("sink.properties.format"));
        assert!(err(&[("sink.properties.label", "x")]).contains("cannot be set"));
        assert!(
            err(&[(
                "table.create.auto-partition.properties.default-partition-unit",
                "decade"
            )])
            .contains("default-partition-unit")
        );
    }

    #[test]
    fn zones_parse() {
        assert_eq!(Zone::parse("+08:00").unwrap(), Zone::Fixed(8 * 3600));
        assert_eq!(
            Zone::parse("GMT-0530").unwrap(),
            Zone::Fixed(-(5 * 3600 + 1800))
        );
        assert_eq!(Zone::parse("UTC").unwrap(), Zone::Fixed(0));
        let shanghai = Zone::parse("Asia/Shanghai").unwrap();
        assert_eq!(shanghai.offset_at(0), 8 * 3600);
        let berlin = Zone::parse("Europe/Berlin").unwrap();
        assert_eq!(berlin.offset_at(1_720_000_000), 7200); // summer
        assert_eq!(berlin.offset_at(1_700_000_000), 3600); // winter
        assert!(Zone::parse("Mars/Olympus").is_err());
        assert!(Zone::parse("systemDefault").is_ok());
        let bad = DorisSinkConfig::from_context(&{
            let mut c = ctx(&[]);
            c.pipeline_options.insert("local-time-zone", "nowhere");
            c
        })
        .map(|_| ())
        .unwrap_err()
        .to_string();
        assert!(bad.contains("pipeline.local-time-zone"), "{bad}");
    }

    #[test]
    fn auto_partition_selects_tables() {
        let c = DorisSinkConfig::from_context(&ctx(&[
            (
                "table.create.auto-partition.properties.include",
                "shop\\..*",
            ),
            (
                "table.create.auto-partition.properties.exclude",
                "shop\\.tmp",
            ),
            (
                "table.create.auto-partition.properties.default-partition-key",
                "created",
            ),
            (
                "table.create.auto-partition.properties.shop.orders.partition-unit",
                "month",
            ),
        ]))
        .unwrap();
        let ap = &c.auto_partition;
        assert_eq!(
            ap.for_table("shop.orders"),
            Some(("created".into(), "month".into()))
        );
        assert_eq!(
            ap.for_table("shop.items"),
            Some(("created".into(), "day".into()))
        );
        assert_eq!(ap.for_table("shop.tmp"), None);
        assert_eq!(ap.for_table("other.t"), None);
    }
}
