//! The `source: {type: mysql}` options: names and defaults of Flink CDC's MySQL pipeline
//! source, checked without touching the server.

use std::time::Duration;

use cdc_api::{ConfigOption, Error, FactoryContext, Options, Result};

use crate::table_filter::TableFilter;
use crate::tls::{SSL_CA, SSL_CERT, SSL_KEY, SSL_MODE, SSL_SERVER_NAME, TlsConfig};

pub(crate) const HOSTNAME: ConfigOption =
    ConfigOption::required("hostname", "MySQL / MariaDB host name or IP");
pub(crate) const PORT: ConfigOption = ConfigOption::optional("port", "3306", "server port");
pub(crate) const USERNAME: ConfigOption = ConfigOption::required(
    "username",
    "user with SELECT, REPLICATION SLAVE and REPLICATION CLIENT",
);
pub(crate) const PASSWORD: ConfigOption = ConfigOption::required("password", "the user's password");
pub(crate) const TABLES: ConfigOption = ConfigOption::required(
    "tables",
    "comma-separated `db.table` regexes; `.` separates database and table, `\\.` is a regex dot",
);
pub(crate) const TABLES_EXCLUDE: ConfigOption =
    ConfigOption::optional_no_default("tables.exclude", "`db.table` regexes to leave out");
pub(crate) const SCHEMA_CHANGE_ENABLED: ConfigOption =
    ConfigOption::optional("schema-change.enabled", "true", "emit schema change events");
pub(crate) const SERVER_ID: ConfigOption = ConfigOption::optional_no_default(
    "server-id",
    "replica server id or range `5400-5408` (default: derived from the pipeline name, hostname, port and tables, in 10000000-2147483647); must differ from every other replica",
);
pub(crate) const SERVER_TIME_ZONE: ConfigOption = ConfigOption::optional_no_default(
    "server-time-zone",
    "the session time zone of the server (e.g. UTC, Asia/Shanghai, +08:00); checked as a zone",
)
.without_effect(crate::passthrough::ZONE_NOTE);
pub(crate) const CHUNK_SIZE: ConfigOption = ConfigOption::optional(
    "scan.incremental.snapshot.chunk.size",
    "8096",
    "rows per snapshot chunk",
);
pub(crate) const FETCH_SIZE: ConfigOption = ConfigOption::optional(
    "scan.snapshot.fetch.size",
    "1024",
    "rows per batch handed on while reading a chunk",
);
pub(crate) const CHUNK_KEY: ConfigOption = ConfigOption::optional_no_default(
    "scan.incremental.snapshot.chunk.key-column",
    "chunk key per table: `db.tbl_[0-9]+:col1;db2.t:col2` (default: the first primary-key column)",
);
pub(crate) const CHUNK_META_GROUP: ConfigOption = ConfigOption::optional(
    "chunk-meta.group.size",
    "1000",
    "accepted for compatibility",
)
.without_effect("chunk metadata is not shipped between processes");
pub(crate) const EVEN_UPPER: ConfigOption = ConfigOption::optional(
    "chunk-key.even-distribution.factor.upper-bound",
    "1000.0",
    "accepted for compatibility",
)
.without_effect("chunks are cut by keyset pagination, never by an assumed even key distribution");
pub(crate) const EVEN_LOWER: ConfigOption = ConfigOption::optional(
    "chunk-key.even-distribution.factor.lower-bound",
    "0.05",
    "accepted for compatibility",
)
.without_effect("chunks are cut by keyset pagination, never by an assumed even key distribution");
pub(crate) const STARTUP_MODE: ConfigOption = ConfigOption::optional(
    "scan.startup.mode",
    "initial",
    "initial, earliest-offset, latest-offset, specific-offset, timestamp or snapshot",
);
pub(crate) const STARTUP_FILE: ConfigOption = ConfigOption::optional_no_default(
    "scan.startup.specific-offset.file",
    "binlog file for specific-offset",
);
pub(crate) const STARTUP_POS: ConfigOption = ConfigOption::optional_no_default(
    "scan.startup.specific-offset.pos",
    "binlog position for specific-offset",
);
pub(crate) const STARTUP_GTID: ConfigOption = ConfigOption::optional_no_default(
    "scan.startup.specific-offset.gtid-set",
    "GTID set (MySQL) or GTID list (MariaDB, e.g. 0-1-42) for specific-offset",
);
pub(crate) const STARTUP_SKIP_EVENTS: ConfigOption = ConfigOption::optional_no_default(
    "scan.startup.specific-offset.skip-events",
    "binlog events to skip from the start of the transaction at the specific offset (counted as Debezium does: the transaction's first event is the first)",
);
pub(crate) const STARTUP_SKIP_ROWS: ConfigOption = ConfigOption::optional_no_default(
    "scan.startup.specific-offset.skip-rows",
    "rows to skip in the first row event not skipped by skip-events",
);
pub(crate) const STARTUP_TIMESTAMP: ConfigOption = ConfigOption::optional_no_default(
    "scan.startup.timestamp-millis",
    "start at the first binlog event at or after this time (ms since epoch)",
);
pub(crate) const CONNECT_TIMEOUT: ConfigOption = ConfigOption::optional(
    "connect.timeout",
    "30s",
    "how long to wait for a connection (>= 250ms)",
);
pub(crate) const CONNECT_MAX_RETRIES: ConfigOption = ConfigOption::optional(
    "connect.max-retries",
    "3",
    "connection attempts before giving up",
);
pub(crate) const POOL_SIZE: ConfigOption = ConfigOption::optional(
    "connection.pool.size",
    "20",
    "most connections used at once",
);
pub(crate) const HEARTBEAT: ConfigOption = ConfigOption::optional(
    "heartbeat.interval",
    "30s",
    "server heartbeat on an idle binlog connection; 0s disables",
);
pub(crate) const CLOSE_IDLE_READER: ConfigOption = ConfigOption::optional(
    "scan.incremental.close-idle-reader.enabled",
    "false",
    "accepted for compatibility",
)
.without_effect("readers always close when their snapshot work is done");
pub(crate) const NEWLY_ADDED: ConfigOption = ConfigOption::optional(
    "scan.newly-added-table.enabled",
    "false",
    "on restart, snapshot then stream tables newly matched by `tables`",
);
pub(crate) const BINLOG_NEWLY_ADDED: ConfigOption = ConfigOption::optional(
    "scan.binlog.newly-added-table.enabled",
    "false",
    "stream tables created while running that match `tables` (no snapshot)",
);
pub(crate) const ONLINE_SCHEMA_CHANGES: ConfigOption = ConfigOption::optional(
    "scan.parse.online.schema.changes.enabled",
    "false",
    "follow gh-ost / pt-online-schema-change migrations of captured tables: their shadow tables are not captured, the cut-over reaches the target as the ALTER it stands for",
);
pub(crate) const INCLUDE_COMMENTS: ConfigOption = ConfigOption::optional(
    "include-comments.enabled",
    "false",
    "carry table and column comments",
);
pub(crate) const TINYINT1_BOOL: ConfigOption = ConfigOption::optional(
    "treat-tinyint1-as-boolean.enabled",
    "true",
    "map TINYINT(1) to BOOLEAN",
);
pub(crate) const LEGACY_JSON: ConfigOption = ConfigOption::optional_no_default(
    "use.legacy.json.format",
    "MySQL binary JSON from the binlog: true = compact text without spaces (Flink CDC's legacy form), false or unset = as the server prints it, the same as the snapshot",
);
pub(crate) const UNBOUNDED_CHUNK_FIRST: ConfigOption = ConfigOption::optional(
    "scan.incremental.snapshot.unbounded-chunk-first.enabled",
    "false",
    "accepted for compatibility",
)
.without_effect("chunks are streamed, so the last chunk holds no more memory than the others");
pub(crate) const BACKFILL_SKIP: ConfigOption = ConfigOption::optional(
    "scan.incremental.snapshot.backfill.skip",
    "false",
    "accepted for compatibility",
)
.without_effect("each chunk is read at an exact binlog position; there is nothing to backfill");
pub(crate) const SNAPSHOT_RATE_LIMIT: ConfigOption = ConfigOption::optional_no_default(
    "scan.snapshot.rate-limit",
    "most rows per second the snapshot reads, over all its parallel reads (unlimited when unset)",
);
pub(crate) const SNAPSHOT_RATE_LIMIT_BYTES: ConfigOption = ConfigOption::optional_no_default(
    "scan.snapshot.rate-limit.bytes",
    "most bytes per second the snapshot reads (e.g. 20mb; values counted at their size as sent; unlimited when unset)",
);
pub(crate) const BINLOG_RATE_LIMIT: ConfigOption = ConfigOption::optional_no_default(
    "scan.binlog.rate-limit",
    "most binlog rows per second read: binds only while catching up (unlimited when unset)",
);
pub(crate) const METADATA_LIST: ConfigOption = ConfigOption::optional_no_default(
    "metadata.list",
    "metadata attached to each event: op_ts (commit time in ms), table_name, database_name, row_kind (+I, +U, -D)",
);

/// Every option the MySQL source accepts.
pub(crate) fn all_options() -> Vec<ConfigOption> {
    vec![
        HOSTNAME,
        PORT,
        USERNAME,
        PASSWORD,
        TABLES,
        TABLES_EXCLUDE,
        SCHEMA_CHANGE_ENABLED,
        SERVER_ID,
        SERVER_TIME_ZONE,
        CHUNK_SIZE,
        FETCH_SIZE,
        CHUNK_KEY,
        CHUNK_META_GROUP,
        EVEN_UPPER,
        EVEN_LOWER,
        STARTUP_MODE,
        STARTUP_FILE,
        STARTUP_POS,
        STARTUP_GTID,
        STARTUP_SKIP_EVENTS,
        STARTUP_SKIP_ROWS,
        STARTUP_TIMESTAMP,
        CONNECT_TIMEOUT,
        CONNECT_MAX_RETRIES,
        POOL_SIZE,
        HEARTBEAT,
        CLOSE_IDLE_READER,
        NEWLY_ADDED,
        BINLOG_NEWLY_ADDED,
        ONLINE_SCHEMA_CHANGES,
        INCLUDE_COMMENTS,
        TINYINT1_BOOL,
        LEGACY_JSON,
        UNBOUNDED_CHUNK_FIRST,
        BACKFILL_SKIP,
        METADATA_LIST,
        SNAPSHOT_RATE_LIMIT,
        SNAPSHOT_RATE_LIMIT_BYTES,
        BINLOG_RATE_LIMIT,
        SSL_MODE,
        SSL_CA,
        SSL_CERT,
        SSL_KEY,
        SSL_SERVER_NAME,
    ]
}

/// Where the source starts when there is no checkpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum StartupMode {
    /// Snapshot, then the binlog.
    Initial,
    /// Snapshot only, then end.
    Snapshot,
    /// The oldest binlog the server still has.
    EarliestOffset,
    /// The current end of the binlog.
    LatestOffset,
    /// A given file/position or GTID set.
    SpecificOffset {
        file: Option<String>,
        pos: Option<u64>,
        gtid_set: Option<String>,
        skip_events: u64,
        skip_rows: u64,
    },
    /// The first binlog event at or after this time.
    Timestamp(i64),
}

/// The checked options.
#[derive(Debug, Clone)]
pub(crate) struct MySqlSourceConfig {
    pub(crate) hostname: String,
    pub(crate) port: u16,
    pub(crate) username: String,
    /// Never shown: `Debug` prints `***`.
    pub(crate) password: cdc_api::Secret,
    pub(crate) filter: TableFilter,
    pub(crate) schema_change_enabled: bool,
    pub(crate) server_id: u32,
    pub(crate) server_time_zone: Option<String>,
    pub(crate) chunk_size: u64,
    pub(crate) fetch_size: usize,
    pub(crate) chunk_keys: Vec<(regex::Regex, String)>,
    pub(crate) startup: StartupMode,
    pub(crate) connect_timeout: Duration,
    pub(crate) connect_max_retries: u32,
    pub(crate) pool_size: usize,
    pub(crate) heartbeat: Option<Duration>,
    pub(crate) newly_added_tables: bool,
    pub(crate) binlog_newly_added_tables: bool,
    pub(crate) include_comments: bool,
    pub(crate) tinyint1_as_boolean: bool,
    pub(crate) op_ts: bool,
    /// `metadata.list` also holds `table_name`, `database_name`, `row_kind`.
    pub(crate) meta_table_name: bool,
    pub(crate) meta_database_name: bool,
    pub(crate) meta_row_kind: bool,
    /// `use.legacy.json.format: true` written: binlog JSON from MySQL in compact form.
    pub(crate) compact_json: bool,
    /// `scan.snapshot.rate-limit` and `.bytes`, shared by every snapshot read.
    pub(crate) snapshot_limit: std::sync::Arc<crate::rate_limit::RateLimiter>,
    /// `scan.binlog.rate-limit`.
    pub(crate) binlog_limit: std::sync::Arc<crate::rate_limit::RateLimiter>,
    /// What `debezium.*` and `jdbc.properties.*` ask for.
    pub(crate) passthrough: crate::passthrough::Passthrough,
    pub(crate) tls: TlsConfig,
    /// `scan.parse.online.schema.changes.enabled`: gh-ost / pt-osc migrations are followed
    /// (see the `online_schema` module).
    pub(crate) parse_online_schema_changes: bool,
    /// The pipeline's `parallelism` when written: how many snapshot reads run at once.
    pub(crate) snapshot_parallelism: Option<usize>,
}

fn bad(options: &Options, key: &str, message: impl Into<String>) -> Error {
    Error::invalid_option(options.qualified(key), message)
}

/// A rate limit: at least 1 when written.
fn positive(o: &Options, option: &ConfigOption, value: Option<u64>) -> Result<Option<u64>> {
    match value {
        Some(0) => Err(bad(
            o,
            option.name,
            "must be at least 1 (leave it unset for no limit)",
        )),
        v => Ok(v),
    }
}

impl MySqlSourceConfig {
    pub(crate) fn from_context(ctx: &FactoryContext) -> Result<Self> {
        let o = &ctx.options;
        let port = o.u64(&PORT)?.unwrap_or(3306);
        let port = u16::try_from(port)
            .ok()
            .filter(|p| *p > 0)
            .ok_or_else(|| bad(o, PORT.name, format!("{port} is not a TCP port")))?;
        let hostname = o.required(&HOSTNAME)?;
        let tables = o.required(&TABLES)?;
        let mut filter = TableFilter::new(&tables, o.get_raw(TABLES_EXCLUDE.name))
            .map_err(|m| bad(o, TABLES.name, m))?;
        let passthrough = crate::passthrough::parse(o)?;
        if let Some((db, table)) = &passthrough.signal_table {
            // The signalling table carries requests, not data for the target.
            filter.exclude_exact(db, table);
        }
        let server_id = match o.get_raw(SERVER_ID.name) {
            None => default_server_id(&ctx.pipeline_name, &hostname, port, &tables),
            Some(text) => parse_server_id(text).map_err(|m| bad(o, SERVER_ID.name, m))?,
        };
        let connect_timeout = o
            .duration(&CONNECT_TIMEOUT)?
            .unwrap_or(Duration::from_secs(30));
        if connect_timeout < Duration::from_millis(250) {
            return Err(bad(o, CONNECT_TIMEOUT.name, "must be at least 250ms"));
        }
        let chunk_size = o.u64(&CHUNK_SIZE)?.unwrap_or(8096);
        if chunk_size == 0 {
            return Err(bad(o, CHUNK_SIZE.name, "must be at least 1"));
        }
        let fetch_size = o.u64(&FETCH_SIZE)?.unwrap_or(1024).max(1) as usize;
        let pool_size = o.u64(&POOL_SIZE)?.unwrap_or(20);
        if pool_size == 0 {
            return Err(bad(o, POOL_SIZE.name, "must be at least 1"));
        }
        let heartbeat = o.duration(&HEARTBEAT)?.filter(|d| !d.is_zero());
        let newly_added_tables = o.bool(&NEWLY_ADDED)?.unwrap_or(false);
        let binlog_newly_added_tables = o.bool(&BINLOG_NEWLY_ADDED)?.unwrap_or(false);
        if newly_added_tables && binlog_newly_added_tables {
            return Err(bad(
                o,
                BINLOG_NEWLY_ADDED.name,
                "cannot be combined with scan.newly-added-table.enabled; choose one",
            ));
        }
        let parse_online_schema_changes = o.bool(&ONLINE_SCHEMA_CHANGES)?.unwrap_or(false);
        // Checked for well-formedness only; they have no effect here (see descriptions).
        for opt in [CLOSE_IDLE_READER, UNBOUNDED_CHUNK_FIRST, BACKFILL_SKIP] {
            o.bool(&opt)?;
        }
        // Flink's default (true) renders binlog JSON unlike the snapshot; unwritten, both
        // phases agree. A file that writes true keeps Flink's meaning.
        let compact_json = o.bool(&LEGACY_JSON)?.unwrap_or(false);
        if let Some(zone) = o.get_raw(SERVER_TIME_ZONE.name) {
            crate::passthrough::check_zone(o, SERVER_TIME_ZONE.name, zone)?;
        }
        o.u64(&CHUNK_META_GROUP)?;
        o.f64(&EVEN_UPPER)?;
        o.f64(&EVEN_LOWER)?;
        let (mut op_ts, mut meta_table_name, mut meta_database_name, mut meta_row_kind) =
            (false, false, false, false);
        if let Some(list) = o.get_raw(METADATA_LIST.name) {
            for item in list.split(',').map(str::trim).filter(|s| !s.is_empty()) {
                match item {
                    "op_ts" => op_ts = true,
                    "table_name" => meta_table_name = true,
                    "database_name" => meta_database_name = true,
                    "row_kind" => meta_row_kind = true,
                    other => {
                        return Err(bad(
                            o,
                            METADATA_LIST.name,
                            format!(
                                "unknown metadata '{other}'; the MySQL source offers op_ts, table_name, database_name, row_kind"
                            ),
                        ));
                    }
                }
            }
        }
        Ok(Self {
            hostname,
            port,
            username: o.required(&USERNAME)?,
            password: cdc_api::Secret::new(
                o.get_raw(PASSWORD.name).unwrap_or_default().to_string(),
            ),
            filter,
            schema_change_enabled: o.bool(&SCHEMA_CHANGE_ENABLED)?.unwrap_or(true),
            server_id,
            server_time_zone: o.get_raw(SERVER_TIME_ZONE.name).map(str::to_string),
            chunk_size,
            fetch_size,
            chunk_keys: parse_chunk_keys(o)?,
            startup: parse_startup(o, &ctx.pipeline_options)?,
            connect_timeout,
            connect_max_retries: o.u64(&CONNECT_MAX_RETRIES)?.unwrap_or(3) as u32,
            pool_size: pool_size as usize,
            heartbeat,
            newly_added_tables,
            binlog_newly_added_tables,
            include_comments: o.bool(&INCLUDE_COMMENTS)?.unwrap_or(false),
            tinyint1_as_boolean: o.bool(&TINYINT1_BOOL)?.unwrap_or(true),
            op_ts,
            meta_table_name,
            meta_database_name,
            meta_row_kind,
            compact_json,
            passthrough,
            snapshot_limit: std::sync::Arc::new(crate::rate_limit::RateLimiter::new(
                positive(o, &SNAPSHOT_RATE_LIMIT, o.u64(&SNAPSHOT_RATE_LIMIT)?)?,
                positive(
                    o,
                    &SNAPSHOT_RATE_LIMIT_BYTES,
                    o.size(&SNAPSHOT_RATE_LIMIT_BYTES)?,
                )?,
            )),
            binlog_limit: std::sync::Arc::new(crate::rate_limit::RateLimiter::new(
                positive(o, &BINLOG_RATE_LIMIT, o.u64(&BINLOG_RATE_LIMIT)?)?,
                None,
            )),
            tls: TlsConfig::from_options(o)?,
            parse_online_schema_changes,
            snapshot_parallelism: crate::snapshot::pipeline_parallelism(&ctx.pipeline_options)?,
        })
    }

    /// The configured chunk key of a table, if any.
    pub(crate) fn chunk_key_for(&self, db: &str, table: &str) -> Option<&str> {
        let full = format!("{db}.{table}");
        self.chunk_keys
            .iter()
            .find(|(re, _)| re.is_match(&full))
            .map(|(_, c)| c.as_str())
    }
}

/// The range of default server ids. Above ten million: clear of the small ids people give
/// replicas by hand (1, 2, 100, 1001, …), of the random 5400-6400 of Flink CDC and
/// Debezium, and of ids built from the last octets of an IP address (< 65 536). Below 2^31:
/// a server id is an unsigned 32-bit number, but some tools hold it in a signed one (Flink
/// CDC parses `server-id` into a Java `int`), and a pipeline file taken back to Flink with
/// the id written out must still work. About 2.1 billion values: among 100 pipelines on one
/// server the chance that any two share an id is about 2 in a million (it was about 99 %
/// with the 1001 values of 5400-6400).
pub(crate) const DEFAULT_SERVER_IDS: std::ops::RangeInclusive<u32> = 10_000_000..=2_147_483_647;

/// The server id when `server-id` is not set. Flink CDC picks a random one in 5400-6400 at
/// each start; here it is derived from what identifies the pipeline's reader, so it stays
/// the same across restarts (a new id would not replace the old reader's dump thread on the
/// server, and one the server has not yet noticed is gone keeps binlogs from purging) and
/// differs between pipelines: the pipeline name, and the server (`hostname`, `port`) and
/// `tables`, which separate the many pipelines that keep Flink's default name "Flink CDC
/// Pipeline Job". Two copies of the very same definition get the same id on purpose: a
/// second copy of a pipeline must not read silently beside the first, and the server's
/// kicking one of them out is then reported (see `error::is_same_server_id`).
///
/// The hash is spelled out (FNV-1a, then a 64-bit finalizer so every input bit moves the
/// result) rather than `std`'s, whose algorithm may change between Rust releases: the id
/// must not change when the binary is rebuilt.
fn default_server_id(pipeline: &str, hostname: &str, port: u16, tables: &str) -> u32 {
    // Case and spacing that do not change which server or tables are meant do not change
    // the id either.
    let host = hostname.trim().to_ascii_lowercase();
    let tables: Vec<&str> = tables
        .split(',')
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .collect();
    let tables = tables.join(",");
    let mut hash = 0xcbf2_9ce4_8422_2325_u64;
    for field in [pipeline, &host, &port.to_string(), &tables] {
        // 0xFF never occurs in UTF-8, so fields cannot run into each other.
        for b in field.bytes().chain([0xFF]) {
            hash = (hash ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
        }
    }
    // MurmurHash3's fmix64.
    hash ^= hash >> 33;
    hash = hash.wrapping_mul(0xff51_afd7_ed55_8ccd);
    hash ^= hash >> 33;
    hash = hash.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    hash ^= hash >> 33;
    let (low, high) = (*DEFAULT_SERVER_IDS.start(), *DEFAULT_SERVER_IDS.end());
    let span = u64::from(high - low) + 1;
    // Always inside the range; the fallback is never taken.
    u32::try_from(u64::from(low) + hash % span).unwrap_or(low)
}

fn parse_server_id(text: &str) -> Result<u32, String> {
    let text = text.trim();
    let first = match text.split_once('-') {
        Some((a, b)) => {
            let a: u32 = a
                .trim()
                .parse()
                .map_err(|_| format!("'{text}' is not an id or a range like 5400-5408"))?;
            let b: u32 = b
                .trim()
                .parse()
                .map_err(|_| format!("'{text}' is not an id or a range like 5400-5408"))?;
            if b < a {
                return Err(format!("the range '{text}' ends before it starts"));
            }
            a
        }
        None => text
            .parse()
            .map_err(|_| format!("'{text}' is not an id or a range like 5400-5408"))?,
    };
    if first == 0 {
        return Err("0 is not a valid server id".into());
    }
    Ok(first)
}

fn parse_chunk_keys(o: &Options) -> Result<Vec<(regex::Regex, String)>> {
    let Some(text) = o.get_raw(CHUNK_KEY.name) else {
        return Ok(Vec::new());
    };
    let mut out = Vec::new();
    for part in text.split(';').map(str::trim).filter(|p| !p.is_empty()) {
        let (tables, column) = part.rsplit_once(':').ok_or_else(|| {
            bad(
                o,
                CHUNK_KEY.name,
                format!("'{part}' must look like db.table_regex:column"),
            )
        })?;
        let re = crate::table_filter::table_regex(tables).map_err(|m| bad(o, CHUNK_KEY.name, m))?;
        out.push((re, column.trim().to_string()));
    }
    Ok(out)
}

fn parse_startup(o: &Options, pipeline: &Options) -> Result<StartupMode> {
    let batch = pipeline
        .get_raw("execution.runtime-mode")
        .is_some_and(|m| m.trim().eq_ignore_ascii_case("BATCH"));
    let written = o.get_raw(STARTUP_MODE.name).map(str::to_ascii_lowercase);
    let mode = match (&written, batch) {
        // A batch pipeline reads the snapshot and ends, as Flink CDC's does.
        (None, true) => "snapshot".to_string(),
        (Some(m), true) if m.trim() != "snapshot" => {
            return Err(bad(
                o,
                STARTUP_MODE.name,
                format!(
                    "'{m}' cannot end, but pipeline.execution.runtime-mode is BATCH; use snapshot (or leave it unset), or run in STREAMING mode"
                ),
            ));
        }
        _ => o
            .string(&STARTUP_MODE)
            .unwrap_or_default()
            .to_ascii_lowercase(),
    };
    let startup = match mode.as_str() {
        "initial" => StartupMode::Initial,
        "snapshot" => StartupMode::Snapshot,
        "earliest-offset" => StartupMode::EarliestOffset,
        "latest-offset" => StartupMode::LatestOffset,
        "specific-offset" => {
            let file = o.get_raw(STARTUP_FILE.name).map(str::to_string);
            let pos = o.u64(&STARTUP_POS)?;
            let gtid_set = o.get_raw(STARTUP_GTID.name).map(str::to_string);
            if gtid_set.is_none() && (file.is_none() || pos.is_none()) {
                return Err(bad(
                    o,
                    STARTUP_MODE.name,
                    "specific-offset needs scan.startup.specific-offset.file and .pos, or .gtid-set",
                ));
            }
            StartupMode::SpecificOffset {
                file,
                pos,
                gtid_set,
                skip_events: o.u64(&STARTUP_SKIP_EVENTS)?.unwrap_or(0),
                skip_rows: o.u64(&STARTUP_SKIP_ROWS)?.unwrap_or(0),
            }
        }
        "timestamp" => StartupMode::Timestamp(o.i64(&STARTUP_TIMESTAMP)?.ok_or_else(|| {
            bad(
                o,
                STARTUP_TIMESTAMP.name,
                "is required when scan.startup.mode is timestamp",
            )
        })?),
        other => {
            return Err(bad(
                o,
                STARTUP_MODE.name,
                format!(
                    "'{other}' is not one of initial, snapshot, earliest-offset, latest-offset, specific-offset, timestamp"
                ),
            ));
        }
    };
    let specific_keys = [
        STARTUP_FILE,
        STARTUP_POS,
        STARTUP_GTID,
        STARTUP_SKIP_EVENTS,
        STARTUP_SKIP_ROWS,
    ];
    if !matches!(startup, StartupMode::SpecificOffset { .. }) {
        if let Some(k) = specific_keys.iter().find(|k| o.contains(k.name)) {
            return Err(bad(
                o,
                k.name,
                "only applies with scan.startup.mode: specific-offset",
            ));
        }
    }
    if !matches!(startup, StartupMode::Timestamp(_)) && o.contains(STARTUP_TIMESTAMP.name) {
        return Err(bad(
            o,
            STARTUP_TIMESTAMP.name,
            "only applies with scan.startup.mode: timestamp",
        ));
    }
    Ok(startup)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx(pairs: &[(&str, &str)]) -> FactoryContext {
        let mut options = Options::new("source");
        for (k, v) in [
            ("hostname", "db"),
            ("username", "u"),
            ("password", "p"),
            ("tables", "shop.\\.*"),
        ] {
            options.insert(k, v);
        }
        for (k, v) in pairs {
            options.insert(*k, *v);
        }
        FactoryContext {
            pipeline_name: "p".into(),
            options,
            pipeline_options: Options::new("pipeline"),
        }
    }

    #[test]
    fn debug_never_shows_the_password() {
        let c = MySqlSourceConfig::from_context(&ctx(&[("password", "s3cret-pw")])).unwrap();
        let text = format!("{c:?}");
        assert!(
            !text.contains("s3cret-pw") && text.contains("***"),
            "{text}"
        );
        assert_eq!(c.password.expose(), "s3cret-pw");
    }

    #[test]
    fn defaults_match_flink_cdc() {
        let c = MySqlSourceConfig::from_context(&ctx(&[])).unwrap();
        assert_eq!(c.port, 3306);
        assert_eq!(c.chunk_size, 8096);
        assert_eq!(c.startup, StartupMode::Initial);
        assert_eq!(c.heartbeat, Some(Duration::from_secs(30)));
        assert!(DEFAULT_SERVER_IDS.contains(&c.server_id));
        assert!(c.tinyint1_as_boolean && c.schema_change_enabled && !c.op_ts);
    }

    #[test]
    fn bad_values_are_named() {
        let cases: &[(&[(&str, &str)], &str)] = &[
            (&[("port", "70000")], "source.port"),
            (&[("server-id", "6000-5000")], "ends before it starts"),
            (
                &[("scan.startup.mode", "latest")],
                "source.scan.startup.mode",
            ),
            (
                &[("scan.startup.mode", "specific-offset")],
                "specific-offset needs",
            ),
            (
                &[("scan.startup.specific-offset.pos", "4")],
                "only applies with scan.startup.mode: specific-offset",
            ),
            (&[("connect.timeout", "10ms")], "at least 250ms"),
            (
                &[
                    ("scan.newly-added-table.enabled", "true"),
                    ("scan.binlog.newly-added-table.enabled", "true"),
                ],
                "cannot be combined",
            ),
            (
                &[("metadata.list", "op_ts,row_kind,ts_ms")],
                "unknown metadata 'ts_ms'",
            ),
            (
                &[("server-time-zone", "Mars/Olympus")],
                "is not a time zone",
            ),
            (
                &[("use.legacy.json.format", "maybe")],
                "source.use.legacy.json.format",
            ),
        ];
        for (pairs, expected) in cases {
            let err = MySqlSourceConfig::from_context(&ctx(pairs))
                .unwrap_err()
                .to_string();
            assert!(err.contains(expected), "{pairs:?}: {err}");
        }
    }

    #[test]
    fn server_ids_and_chunk_keys_parse() {
        let c = MySqlSourceConfig::from_context(&ctx(&[
            ("server-id", "5400-5404"),
            (
                "scan.incremental.snapshot.chunk.key-column",
                "shop.orders_[0-9]+:code; shop.t:id",
            ),
        ]))
        .unwrap();
        assert_eq!(c.server_id, 5400);
        assert_eq!(c.chunk_key_for("shop", "orders_12"), Some("code"));
        assert_eq!(c.chunk_key_for("shop", "t"), Some("id"));
        assert_eq!(c.chunk_key_for("shop", "other"), None);
    }

    #[test]
    fn default_server_id_is_stable_distinct_and_in_range() {
        let id = default_server_id("shop", "db1", 3306, "shop.\\.*");
        // Stable: the same inputs give the same id in every build (a changed algorithm
        // would move every pipeline that relies on the default to a new id).
        assert_eq!(id, default_server_id("shop", "db1", 3306, "shop.\\.*"));
        assert_eq!(id, 132_820_150, "the derivation changed");
        // Case of the host and spacing of the table list do not matter.
        assert_eq!(id, default_server_id("shop", " DB1 ", 3306, " shop.\\.* "));
        // Each input moves it.
        for other in [
            default_server_id("shop2", "db1", 3306, "shop.\\.*"),
            default_server_id("shop", "db2", 3306, "shop.\\.*"),
            default_server_id("shop", "db1", 3307, "shop.\\.*"),
            default_server_id("shop", "db1", 3306, "shop.orders"),
            // Fields do not run into each other.
            default_server_id("shopd", "b1", 3306, "shop.\\.*"),
        ] {
            assert_ne!(id, other);
        }
        // Flink's default name on many servers and table lists: all in range, no two alike.
        let mut seen = std::collections::HashSet::new();
        for host in 0..50 {
            for db in 0..20 {
                let id = default_server_id(
                    "Flink CDC Pipeline Job",
                    &format!("db{host}.example.com"),
                    3306,
                    &format!("app{db}.\\.*"),
                );
                assert!(DEFAULT_SERVER_IDS.contains(&id), "{id}");
                assert!(seen.insert(id), "{id} twice");
            }
        }
        // Through the options: the pipeline name and the options reach it, an explicit
        // `server-id` wins.
        let c = MySqlSourceConfig::from_context(&ctx(&[])).unwrap();
        assert_eq!(c.server_id, default_server_id("p", "db", 3306, "shop.\\.*"));
        let c = MySqlSourceConfig::from_context(&ctx(&[("port", "3307")])).unwrap();
        assert_eq!(c.server_id, default_server_id("p", "db", 3307, "shop.\\.*"));
        let c = MySqlSourceConfig::from_context(&ctx(&[("server-id", "5401")])).unwrap();
        assert_eq!(c.server_id, 5401);
    }
}
