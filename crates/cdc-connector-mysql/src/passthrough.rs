//! Flink CDC's pass-through prefixes, `debezium.*` and `jdbc.properties.*`: in Flink they
//! configure the embedded Debezium engine and the Connector/J driver. Neither exists here,
//! so each key is translated to what this source does, accepted when it asks for what this
//! source does anyway (logged, and listed in docs/connectors/mysql.md), or refused naming
//! the key and what to use instead. Nothing is accepted and ignored.

use cdc_api::{Error, Options, Result, Zone};
use regex::Regex;

/// What the pass-through keys ask for beyond the source's own options.
#[derive(Debug, Clone, Default)]
pub(crate) struct Passthrough {
    /// `debezium.skipped.operations`: binlog changes of these kinds are not emitted.
    pub(crate) skipped: SkippedOperations,
    /// `debezium.column.include.list` / `column.exclude.list`.
    pub(crate) columns: Option<ColumnSelection>,
    /// `debezium.signal.data.collection`: the table whose inserted rows request a new
    /// read of captured tables (see the `signal` module).
    pub(crate) signal_table: Option<crate::source::TableKey>,
}

/// Binlog operations left out (Debezium's `c`, `u`, `d`, `t`); snapshot rows are never
/// left out, as in Debezium, where the option covers streaming only.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct SkippedOperations {
    pub(crate) inserts: bool,
    pub(crate) updates: bool,
    pub(crate) deletes: bool,
    pub(crate) truncates: bool,
}

/// Which columns are captured: Debezium matches each regex against the whole
/// `database.table.column` name, case-insensitively.
#[derive(Debug, Clone)]
pub(crate) enum ColumnSelection {
    Include(Vec<Regex>),
    Exclude(Vec<Regex>),
}

impl ColumnSelection {
    /// Whether `db.table.column` is captured.
    pub(crate) fn keeps(&self, db: &str, table: &str, column: &str) -> bool {
        let full = format!("{db}.{table}.{column}");
        match self {
            Self::Include(res) => res.iter().any(|re| re.is_match(&full)),
            Self::Exclude(res) => !res.iter().any(|re| re.is_match(&full)),
        }
    }
}

const DEBEZIUM: &str = "debezium.";
const JDBC: &str = "jdbc.properties.";

/// Debezium keys asking for what this source does anyway, with why.
const DEBEZIUM_SAME: &[(&str, &str)] = &[
    (
        "max.queue.size",
        "the queue between reader and sink is bounded by the runtime",
    ),
    (
        "max.queue.size.in.bytes",
        "the queue between reader and sink is bounded by the runtime",
    ),
    (
        "max.batch.size",
        "batches are sized by the reader (scan.snapshot.fetch.size for the snapshot)",
    ),
    (
        "poll.interval.ms",
        "events are handed on as they arrive, with no polling",
    ),
    (
        "tombstones.on.delete",
        "a Kafka record convention; deletes reach the sink as deletes",
    ),
    (
        "provide.transaction.metadata",
        "a Kafka topic convention; transactions stay whole in the checkpoints",
    ),
    (
        "connect.keep.alive",
        "the binlog connection is kept alive by the server heartbeat (heartbeat.interval) and reconnects by itself",
    ),
    (
        "connect.keep.alive.interval.ms",
        "the binlog connection is kept alive by the server heartbeat (heartbeat.interval)",
    ),
    (
        "include.query",
        "the original SQL is not carried to Doris or StarRocks",
    ),
];

/// Debezium keys whose listed values describe what this source does; other values are
/// refused with the hint.
const DEBEZIUM_VALUES: &[(&str, &[&str], &str)] = &[
    (
        "snapshot.locking.mode",
        &["minimal", "minimal_percona", "extended", "none"],
        "the snapshot takes no global lock: on MariaDB none at all, on MySQL a lock on one table only while its consistent snapshot starts (milliseconds), without which the snapshot's binlog position would not be exact",
    ),
    (
        "decimal.handling.mode",
        &["precise"],
        "DECIMAL is carried exactly; for a DOUBLE or STRING target column, CAST it in a transform projection",
    ),
    (
        "time.precision.mode",
        &["adaptive_time_microseconds", "adaptive"],
        "temporal values are carried to the microsecond; to cut precision, use a transform (DATE_FORMAT or CAST)",
    ),
    (
        "bigint.unsigned.handling.mode",
        &["precise"],
        "BIGINT UNSIGNED maps to DECIMAL(20, 0), which holds every value; a signed BIGINT would overflow",
    ),
    (
        "binary.handling.mode",
        &["bytes"],
        "binary values are carried as bytes; to load them as base64 or hex text, use a transform",
    ),
    (
        "event.deserialization.failure.handling.mode",
        &["fail"],
        "an event that cannot be decoded stops the pipeline at the last good checkpoint: skipping it would lose the change",
    ),
    (
        "inconsistent.schema.handling.mode",
        &["fail"],
        "a row of a table whose schema is unknown stops the pipeline: skipping it would lose the change",
    ),
];

/// Debezium keys that name another option of this source.
const DEBEZIUM_MOVED: &[(&str, &str)] = &[
    ("snapshot.mode", "scan.startup.mode"),
    ("snapshot.fetch.size", "scan.snapshot.fetch.size"),
    ("database.server.id", "server-id"),
    ("database.include.list", "tables"),
    ("table.include.list", "tables"),
    ("table.exclude.list", "tables.exclude"),
    ("database.exclude.list", "tables.exclude"),
    ("include.schema.changes", "schema-change.enabled"),
    ("heartbeat.interval.ms", "heartbeat.interval"),
    ("connect.timeout.ms", "connect.timeout"),
];

/// Connector/J properties that change nothing here, with why.
const JDBC_SAME: &[(&str, &str)] = &[
    (
        "useunicode",
        "sessions always use utf8mb4, and each column is decoded by its own character set",
    ),
    (
        "characterencoding",
        "sessions always use utf8mb4, and each column is decoded by its own character set",
    ),
    (
        "allowpublickeyretrieval",
        "the driver negotiates the authentication plugin itself",
    ),
    (
        "autoreconnect",
        "every connection reconnects with backoff (connect.max-retries)",
    ),
    (
        "usecursorfetch",
        "snapshot rows are always streamed, never held whole in memory",
    ),
    (
        "defaultfetchsize",
        "snapshot rows are always streamed (scan.snapshot.fetch.size sets the batch)",
    ),
    (
        "usessl",
        "read together with sslMode / requireSSL (see ssl.mode)",
    ),
    ("sslmode", "translated to ssl.mode"),
    ("requiressl", "translated to ssl.mode"),
    ("verifyservercertificate", "translated to ssl.mode"),
    ("tcpkeepalive", "connections use TCP keepalive"),
    (
        "rewritebatchedstatements",
        "the source only reads; it writes no statements",
    ),
    ("cacheprepstmts", "the source prepares few statements"),
    ("useserverprepstmts", "the source prepares few statements"),
    (
        "useinformationschema",
        "table definitions are always read from information_schema",
    ),
    (
        "nullcatalogmeanscurrent",
        "table definitions are always read from information_schema",
    ),
];

/// Connector/J properties that name another option of this source.
const JDBC_MOVED: &[(&str, &str)] = &[
    ("connecttimeout", "connect.timeout"),
    ("tinyint1isbit", "treat-tinyint1-as-boolean.enabled"),
    ("user", "username"),
    ("password", "password"),
];

/// Zone keys: checked, with no effect on values (see `zone_note`).
const DEBEZIUM_ZONES: &[&str] = &["database.connectionTimeZone", "database.serverTimezone"];
const JDBC_ZONES: &[&str] = &["servertimezone", "connectiontimezone"];

/// Why a written zone changes no value: the source reads TIMESTAMP in a UTC session and
/// carries it as an instant, and DATETIME has no zone.
pub(crate) const ZONE_NOTE: &str = "sessions read TIMESTAMP in UTC and carry it as an exact instant (rendered in pipeline.local-time-zone by the sinks), and DATETIME has no zone, so no value depends on it";

fn bad(o: &Options, key: &str, message: impl Into<String>) -> Error {
    Error::invalid_option(o.qualified(key), message)
}

/// Reads the two prefixes.
pub(crate) fn parse(o: &Options) -> Result<Passthrough> {
    let mut out = Passthrough::default();
    let mut include: Option<(String, String)> = None;
    let mut exclude: Option<(String, String)> = None;
    let keys: Vec<(String, String)> = o
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    for (key, value) in &keys {
        if let Some(name) = key.strip_prefix(DEBEZIUM) {
            // Read, so that the options walk sees the prefix honoured.
            o.get_raw(key);
            match name {
                "skipped.operations" => out.skipped = skipped_operations(o, key, value)?,
                "column.include.list" => include = Some((key.clone(), value.clone())),
                "column.exclude.list" => exclude = Some((key.clone(), value.clone())),
                "signal.data.collection" => out.signal_table = Some(signal_table(o, key, value)?),
                "signal.enabled.channels" => {
                    if !value
                        .split(',')
                        .any(|c| c.trim().eq_ignore_ascii_case("source"))
                    {
                        return Err(bad(
                            o,
                            key,
                            "only the source channel (the signalling table) exists here; include `source`",
                        ));
                    }
                }
                _ => debezium_key(o, key, name, value)?,
            }
        } else if let Some(name) = key.strip_prefix(JDBC) {
            o.get_raw(key);
            jdbc_key(o, key, name, value)?;
        }
    }
    out.columns = match (include, exclude) {
        (Some((k, _)), Some(_)) => {
            return Err(bad(
                o,
                &k,
                "cannot be combined with debezium.column.exclude.list (Debezium refuses the pair too); keep one",
            ));
        }
        (Some((k, v)), None) => Some(ColumnSelection::Include(column_regexes(o, &k, &v)?)),
        (None, Some((k, v))) => Some(ColumnSelection::Exclude(column_regexes(o, &k, &v)?)),
        (None, None) => None,
    };
    Ok(out)
}

fn debezium_key(o: &Options, key: &str, name: &str, value: &str) -> Result<()> {
    if name.starts_with("database.ssl.") {
        return Err(bad(
            o,
            key,
            "TLS is set with ssl.mode, ssl.ca, ssl.cert and ssl.key (PEM files) here",
        ));
    }
    if DEBEZIUM_ZONES.contains(&name) {
        check_zone(o, key, value)?;
        tracing::info!(option = %o.qualified(key), "accepted; {ZONE_NOTE}");
        return Ok(());
    }
    if let Some((_, why)) = DEBEZIUM_SAME.iter().find(|(n, _)| *n == name) {
        tracing::info!(option = %o.qualified(key), "accepted, no effect here: {why}");
        return Ok(());
    }
    if name.starts_with("schema.history.internal.") || name.starts_with("database.history.") {
        tracing::info!(option = %o.qualified(key), "accepted, no effect here: the tracked table definitions live in the checkpoint");
        return Ok(());
    }
    if let Some((_, allowed, why)) = DEBEZIUM_VALUES.iter().find(|(n, ..)| *n == name) {
        let v = value.trim().to_ascii_lowercase();
        if allowed.contains(&v.as_str()) {
            tracing::info!(option = %o.qualified(key), value = %v, "accepted: {why}");
            return Ok(());
        }
        return Err(bad(
            o,
            key,
            format!(
                "'{value}' is not supported; accepted: {} ({why})",
                allowed.join(", ")
            ),
        ));
    }
    if let Some((_, instead)) = DEBEZIUM_MOVED.iter().find(|(n, _)| *n == name) {
        return Err(bad(
            o,
            key,
            format!("there is no Debezium engine here: set the source option `{instead}` instead"),
        ));
    }
    Err(bad(
        o,
        key,
        "there is no Debezium engine here and this property has no equivalent; see docs/connectors/mysql.md for the debezium.* keys that are translated",
    ))
}

fn jdbc_key(o: &Options, key: &str, name: &str, value: &str) -> Result<()> {
    let lower = name.to_ascii_lowercase();
    if lower.contains("keystore") {
        // Key store URLs are refused with their reason by the TLS options.
        if lower.ends_with("url") {
            return Ok(());
        }
        return Err(bad(
            o,
            key,
            "Java key stores cannot be read here: give the CA as a PEM file in ssl.ca, a client certificate in ssl.cert and ssl.key",
        ));
    }
    if JDBC_ZONES.contains(&lower.as_str()) {
        check_zone(o, key, value)?;
        tracing::info!(option = %o.qualified(key), "accepted; {ZONE_NOTE}");
        return Ok(());
    }
    if lower == "zerodatetimebehavior" {
        // Both sinks write a zero date as NULL (docs/connectors/doris.md, starrocks.md):
        // Connector/J's CONVERT_TO_NULL.
        let v = value.trim().to_ascii_lowercase().replace('_', "");
        if v == "converttonull" {
            return Ok(());
        }
        return Err(bad(
            o,
            key,
            format!(
                "'{value}' is not supported: zero dates reach Doris and StarRocks as NULL (CONVERT_TO_NULL)"
            ),
        ));
    }
    if let Some((_, why)) = JDBC_SAME.iter().find(|(n, _)| *n == lower) {
        tracing::debug!(option = %o.qualified(key), "accepted, no effect here: {why}");
        return Ok(());
    }
    if let Some((_, instead)) = JDBC_MOVED.iter().find(|(n, _)| *n == lower) {
        return Err(bad(
            o,
            key,
            format!("there is no JDBC driver here: set the source option `{instead}` instead"),
        ));
    }
    Err(bad(
        o,
        key,
        "there is no JDBC driver here and this Connector/J property has no equivalent; see docs/connectors/mysql.md for the jdbc.properties.* keys that are translated",
    ))
}

/// A zone as Flink reads it (an IANA name or an offset): `Mars/Olympus` is an error.
pub(crate) fn check_zone(o: &Options, key: &str, value: &str) -> Result<()> {
    Zone::parse(value).map(|_| ()).map_err(|m| bad(o, key, m))
}

/// `db.table` of the signalling table.
fn signal_table(o: &Options, key: &str, value: &str) -> Result<crate::source::TableKey> {
    match value.trim().split_once('.') {
        Some((db, table)) if !db.is_empty() && !table.is_empty() && !table.contains('.') => {
            Ok((db.to_string(), table.to_string()))
        }
        _ => Err(bad(
            o,
            key,
            format!("'{value}' is not a table name like db.cdc_signal"),
        )),
    }
}

fn skipped_operations(o: &Options, key: &str, value: &str) -> Result<SkippedOperations> {
    let mut out = SkippedOperations::default();
    for op in value.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        match op.to_ascii_lowercase().as_str() {
            "c" => out.inserts = true,
            "u" => out.updates = true,
            "d" => out.deletes = true,
            "t" => out.truncates = true,
            "none" => {}
            other => {
                return Err(bad(
                    o,
                    key,
                    format!(
                        "'{other}' is not an operation: use c (insert), u (update), d (delete), t (truncate) or none"
                    ),
                ));
            }
        }
    }
    Ok(out)
}

/// Debezium's list: comma-separated regexes, each matched against the whole
/// `database.table.column` name without regard to case.
fn column_regexes(o: &Options, key: &str, value: &str) -> Result<Vec<Regex>> {
    value
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|p| {
            Regex::new(&format!("(?i)^(?:{p})$"))
                .map_err(|e| bad(o, key, format!("'{p}' is not a regular expression: {e}")))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts(pairs: &[(&str, &str)]) -> Options {
        let mut o = Options::new("source");
        for (k, v) in pairs {
            o.insert(*k, *v);
        }
        o
    }

    fn err(pairs: &[(&str, &str)]) -> String {
        parse(&opts(pairs)).unwrap_err().to_string()
    }

    #[test]
    fn skipped_operations_and_column_lists_translate() {
        let p = parse(&opts(&[
            ("debezium.skipped.operations", "c, t"),
            (
                "debezium.column.exclude.list",
                "shop\\.orders\\.secret, .*\\.pii_.*",
            ),
        ]))
        .unwrap();
        assert_eq!(
            p.skipped,
            SkippedOperations {
                inserts: true,
                truncates: true,
                ..SkippedOperations::default()
            }
        );
        let cols = p.columns.unwrap();
        assert!(!cols.keeps("shop", "orders", "secret"));
        assert!(!cols.keeps("Shop", "Orders", "SECRET"), "case-insensitive");
        assert!(!cols.keeps("a", "b", "pii_mail"));
        assert!(cols.keeps("shop", "orders", "secret2"), "whole-name match");
        let p = parse(&opts(&[(
            "debezium.column.include.list",
            "shop\\.t\\.(id|a)",
        )]))
        .unwrap();
        let cols = p.columns.unwrap();
        assert!(cols.keeps("shop", "t", "id") && !cols.keeps("shop", "t", "b"));
        assert_eq!(
            parse(&opts(&[("debezium.skipped.operations", "none")]))
                .unwrap()
                .skipped,
            SkippedOperations::default()
        );
    }

    #[test]
    fn refusals_name_the_key_and_what_to_do() {
        for (pairs, expected) in [
            (
                vec![("debezium.skipped.operations", "x")],
                "'x' is not an operation",
            ),
            (
                vec![
                    ("debezium.column.include.list", "a"),
                    ("debezium.column.exclude.list", "b"),
                ],
                "cannot be combined",
            ),
            (
                vec![("debezium.decimal.handling.mode", "string")],
                "CAST it in a transform",
            ),
            (
                vec![("debezium.time.precision.mode", "connect")],
                "'connect' is not supported",
            ),
            (
                vec![("debezium.snapshot.locking.mode", "custom")],
                "'custom' is not supported",
            ),
            (
                vec![("debezium.snapshot.mode", "initial")],
                "`scan.startup.mode`",
            ),
            (
                vec![("debezium.database.ssl.mode", "required")],
                "ssl.mode, ssl.ca",
            ),
            (
                vec![("debezium.database.connectionTimeZone", "Mars/Olympus")],
                "'Mars/Olympus' is not a time zone",
            ),
            (vec![("debezium.some.thing", "1")], "no equivalent"),
            (
                vec![("jdbc.properties.tinyInt1isBit", "false")],
                "`treat-tinyint1-as-boolean.enabled`",
            ),
            (
                vec![("jdbc.properties.zeroDateTimeBehavior", "EXCEPTION")],
                "CONVERT_TO_NULL",
            ),
            (
                vec![("jdbc.properties.serverTimezone", "Nowhere/City")],
                "is not a time zone",
            ),
            (vec![("jdbc.properties.foo", "1")], "no equivalent"),
        ] {
            let e = err(&pairs);
            assert!(e.contains(expected), "{pairs:?}: {e}");
            assert!(e.contains(pairs[0].0), "{pairs:?} names the key: {e}");
        }
    }

    #[test]
    fn harmless_keys_are_accepted() {
        parse(&opts(&[
            ("debezium.snapshot.locking.mode", "none"),
            ("debezium.decimal.handling.mode", "PRECISE"),
            ("debezium.time.precision.mode", "adaptive_time_microseconds"),
            ("debezium.database.connectionTimeZone", "Asia/Shanghai"),
            ("debezium.max.batch.size", "2048"),
            (
                "debezium.schema.history.internal.store.only.captured.tables.ddl",
                "true",
            ),
            ("jdbc.properties.useUnicode", "true"),
            ("jdbc.properties.serverTimezone", "UTC"),
            ("jdbc.properties.zeroDateTimeBehavior", "CONVERT_TO_NULL"),
            ("jdbc.properties.useSSL", "false"),
        ]))
        .unwrap();
    }
}
