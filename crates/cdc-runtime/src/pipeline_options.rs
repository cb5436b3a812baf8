//! The `pipeline` block: Flink CDC's options plus our own (checkpoints, state).

use std::time::Duration;

use cdc_api::{ConfigOption, Options};

use crate::restart::{self, RestartStrategy};
use crate::suggest::did_you_mean;
use crate::{MEMORY_STATE, RuntimeError, StateLocation};

const NAME: ConfigOption = ConfigOption::optional(
    "name",
    "Flink CDC Pipeline Job",
    "the pipeline's name, used in logs, labels and the state dir",
);
const PARALLELISM: ConfigOption = ConfigOption::optional(
    "parallelism",
    "1",
    "how many snapshot reads run at once (the MySQL source, bounded by its connection.pool.size; unset: up to 4); sinks set their own concurrency",
);
const LOCAL_TIME_ZONE: ConfigOption = ConfigOption::optional(
    "local-time-zone",
    "systemDefault",
    "the session zone; sinks render TIMESTAMP_LTZ in it (an IANA name, an offset like +08:00, or systemDefault)",
);
const RUNTIME_MODE: ConfigOption = ConfigOption::optional(
    "execution.runtime-mode",
    "STREAMING",
    "STREAMING runs until stopped; BATCH reads the snapshot, commits and ends with exit 0",
);
const BEHAVIOR: ConfigOption = ConfigOption::optional(
    "schema.change.behavior",
    "evolve",
    "exception, evolve, try_evolve, lenient or ignore (evolve by default, as flink-cdc.sh runs with the conf/flink-cdc.yaml Flink CDC ships)",
);
const ROUTE_MODE: ConfigOption =
    ConfigOption::optional("route-mode", "ALL_MATCH", "ALL_MATCH or FIRST_MATCH");
const RPC_TIMEOUT: ConfigOption = ConfigOption::optional(
    "schema-operator.rpc-timeout",
    "3min",
    "how long applying one schema change to the target may take",
);
const UID_PREFIX: ConfigOption =
    ConfigOption::optional_no_default("operator.uid.prefix", "accepted for compatibility")
        .without_effect("there are no Flink operators to name");
const SCHEMA_OPERATOR_UID: ConfigOption = ConfigOption::optional(
    "schema.operator.uid",
    "$$_schema_operator_$$",
    "accepted for compatibility (deprecated in Flink CDC in favour of operator.uid.prefix)",
)
.without_effect("there are no Flink operators to name");
const TRANSFORM_DECIMAL_PRECISION_MODE: ConfigOption = ConfigOption::optional(
    "transform.decimal.precision.mode",
    "UP_TO_19",
    "the widest DECIMAL a transform expression yields: UP_TO_19 (Calcite's default, as Flink CDC) or UP_TO_38",
);
const PARTITIONING_STRATEGY: ConfigOption = ConfigOption::optional(
    "sink.partitioning.strategy",
    "SINK_DEFINED",
    "SINK_DEFINED, PRIMARY_KEY or TABLE_ID: how Flink CDC spreads changes over parallel sink writers",
)
.without_effect("one writer takes every change in source order, which keeps each strategy's promise (one table, and one key, never split)");
const CHECKPOINT_INTERVAL: ConfigOption = ConfigOption::optional(
    "checkpoint.interval",
    "10s",
    "how often a checkpoint is taken (exactly-once sinks commit at each one)",
);
const STATE_DIR: ConfigOption = ConfigOption::optional_no_default(
    "state.dir",
    "directory for checkpoints, or an object store: s3://bucket/prefix, gs://, az:// or file:// (credentials from the environment); --state-dir overrides; default $XDG_STATE_HOME/cdc/<name> or ~/.local/state/cdc/<name>; `none` keeps them in memory only, so a restart starts over",
);

const SHUTDOWN_TIMEOUT: ConfigOption = ConfigOption::optional(
    "shutdown.timeout",
    "1min",
    "how long `cdc run` waits, after SIGTERM or Ctrl-C, for the final checkpoint; past it (or at a second signal) it exits 143 / 130 without it, and the next run resumes from the last durable checkpoint",
);

const METRICS_PORT: ConfigOption = ConfigOption::optional_no_default(
    "metrics.port",
    "serve /metrics (Prometheus), /healthz and /readyz on this port (off when unset)",
);
const METRICS_ADDRESS: ConfigOption = ConfigOption::optional(
    "metrics.address",
    "127.0.0.1",
    "the address the metrics port listens on: 127.0.0.1 (this machine only), 0.0.0.0 or :: (every interface), or one interface's IP",
);
const PROGRESS_INTERVAL: ConfigOption = ConfigOption::optional(
    "progress.interval",
    "10s",
    "how often a progress line (changes, rate, checkpoints) is logged; 0s turns it off",
);

/// Whether `name` is the default pipeline name (no `pipeline.name` set): the default state
/// directory is then shared by every pipeline without a name.
pub(crate) fn is_default_name(name: &str) -> bool {
    NAME.default == Some(name)
}

/// Every option of the `pipeline` block.
pub fn pipeline_options() -> Vec<ConfigOption> {
    vec![
        NAME,
        PARALLELISM,
        LOCAL_TIME_ZONE,
        RUNTIME_MODE,
        BEHAVIOR,
        ROUTE_MODE,
        RPC_TIMEOUT,
        UID_PREFIX,
        SCHEMA_OPERATOR_UID,
        TRANSFORM_DECIMAL_PRECISION_MODE,
        PARTITIONING_STRATEGY,
        CHECKPOINT_INTERVAL,
        STATE_DIR,
        SHUTDOWN_TIMEOUT,
        METRICS_PORT,
        METRICS_ADDRESS,
        PROGRESS_INTERVAL,
    ]
    .into_iter()
    .chain(restart::OPTIONS)
    .collect()
}

/// `transform.decimal.precision.mode`, checked, for the transform stage
/// (`Transformer::with_decimal_mode`).
pub(crate) fn transform_decimal_mode(
    options: &Options,
    origin: &str,
) -> Result<crate::transform::DecimalMode, RuntimeError> {
    let text = options
        .string(&TRANSFORM_DECIMAL_PRECISION_MODE)
        .unwrap_or_default();
    crate::transform::DecimalMode::parse(&text).map_err(|m| {
        RuntimeError::definition(
            format!(
                "{origin}: pipeline.{}",
                TRANSFORM_DECIMAL_PRECISION_MODE.name
            ),
            m,
        )
    })
}

/// Flink CDC pipeline keys that cannot work here, with the reason.
const REJECTED: [(&str, &str); 2] = [
    (
        "user-defined-function",
        "Java and Python UDFs need a JVM; write the function as a transform expression or a Rust connector",
    ),
    ("model", "AI model functions are not supported"),
];

/// What to do with schema changes (Flink CDC's `schema.change.behavior`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SchemaChangeBehavior {
    /// Any schema change other than a table creation stops the pipeline.
    Exception,
    /// Apply every change; a failure stops the pipeline.
    Evolve,
    /// Apply changes; when one fails, keep going with rows fitted to the old schema.
    TryEvolve,
    /// Apply changes in a way that loses no data: dropped columns stay (NULL from then on),
    /// renames add the new column, truncate and drop table are not forwarded.
    Lenient,
    /// Apply no changes; rows are fitted to the schema the table was created with.
    Ignore,
}

/// The `pipeline` block, checked and typed.
#[derive(Debug, Clone)]
pub struct PipelineSettings {
    /// `name`.
    pub name: String,
    /// `local-time-zone` as written (`systemDefault` resolved by the sinks).
    pub local_time_zone: String,
    /// `execution.runtime-mode` is BATCH.
    pub batch_mode: bool,
    /// `schema.change.behavior`.
    pub schema_change_behavior: SchemaChangeBehavior,
    /// `route-mode` is FIRST_MATCH.
    pub route_first_match: bool,
    /// `schema-operator.rpc-timeout`.
    pub schema_change_timeout: Duration,
    /// `checkpoint.interval`.
    pub checkpoint_interval: Duration,
    /// `state.dir`: a directory, [`MEMORY_STATE`] for memory only, or when unset the
    /// default directory derived from `name`.
    pub state: StateLocation,
    /// `metrics.port`.
    pub metrics_port: Option<u16>,
    /// `metrics.address`.
    pub metrics_address: std::net::IpAddr,
    /// `progress.interval` (None = off).
    pub progress_interval: Option<Duration>,
    /// `restart-strategy.*`.
    pub restart: RestartStrategy,
    /// `shutdown.timeout`: how long a signalled stop may take for its final checkpoint.
    pub shutdown_timeout: Duration,
    /// `transform.decimal.precision.mode`.
    pub(crate) decimal_mode: crate::transform::DecimalMode,
}

impl PipelineSettings {
    /// Checks the block: unknown keys (with the nearest known one), values, rejected keys.
    pub fn from_options(options: &Options, origin: &str) -> Result<Self, RuntimeError> {
        let known = pipeline_options();
        for (key, _) in options.iter() {
            if let Some((_, why)) = REJECTED
                .iter()
                .find(|(k, _)| key == *k || key.starts_with(&format!("{k}.")))
            {
                return Err(RuntimeError::definition(
                    format!("{origin}: pipeline.{key}"),
                    format!("not supported: {why}"),
                ));
            }
            if !known.iter().any(|o| o.name == key) {
                return Err(RuntimeError::definition(
                    format!("{origin}: pipeline"),
                    format!(
                        "unknown option '{key}'{}",
                        did_you_mean(key, known.iter().map(|o| o.name))
                    ),
                ));
            }
        }
        let wrap = |e: cdc_api::Error| RuntimeError::definition(origin, e.to_string());
        let bad = |key: &str, message: String| {
            RuntimeError::definition(format!("{origin}: pipeline.{key}"), message)
        };
        let behavior_text = options.string(&BEHAVIOR).unwrap_or_default();
        let schema_change_behavior = match behavior_text.to_ascii_lowercase().as_str() {
            "exception" => SchemaChangeBehavior::Exception,
            "evolve" => SchemaChangeBehavior::Evolve,
            "try_evolve" => SchemaChangeBehavior::TryEvolve,
            "lenient" => SchemaChangeBehavior::Lenient,
            "ignore" => SchemaChangeBehavior::Ignore,
            other => {
                return Err(bad(
                    BEHAVIOR.name,
                    format!(
                        "'{other}' is not one of exception, evolve, try_evolve, lenient, ignore"
                    ),
                ));
            }
        };
        let mode = options
            .string(&RUNTIME_MODE)
            .unwrap_or_default()
            .to_ascii_uppercase();
        let batch_mode = match mode.as_str() {
            "STREAMING" => false,
            "BATCH" => true,
            other => {
                return Err(bad(
                    RUNTIME_MODE.name,
                    format!("'{other}' is not STREAMING or BATCH"),
                ));
            }
        };
        let route = options
            .string(&ROUTE_MODE)
            .unwrap_or_default()
            .to_ascii_uppercase();
        let route_first_match = match route.as_str() {
            "ALL_MATCH" => false,
            "FIRST_MATCH" => true,
            other => {
                return Err(bad(
                    ROUTE_MODE.name,
                    format!("'{other}' is not ALL_MATCH or FIRST_MATCH"),
                ));
            }
        };
        // Accepted because a single writer gives what every strategy promises; the value
        // is still checked, as Flink CDC parses it.
        let strategy = options.string(&PARTITIONING_STRATEGY).unwrap_or_default();
        if !["SINK_DEFINED", "PRIMARY_KEY", "TABLE_ID"]
            .iter()
            .any(|s| s.eq_ignore_ascii_case(strategy.trim()))
        {
            return Err(bad(
                PARTITIONING_STRATEGY.name,
                format!("'{strategy}' is not one of SINK_DEFINED, PRIMARY_KEY, TABLE_ID"),
            ));
        }
        let parallelism = options.u64(&PARALLELISM).map_err(wrap)?.unwrap_or(1);
        if parallelism == 0 {
            return Err(bad(PARALLELISM.name, "must be at least 1".into()));
        }
        let checkpoint_interval = options
            .duration(&CHECKPOINT_INTERVAL)
            .map_err(wrap)?
            .unwrap_or(Duration::from_secs(10));
        if checkpoint_interval < Duration::from_millis(100) {
            return Err(bad(
                CHECKPOINT_INTERVAL.name,
                "must be at least 100ms".into(),
            ));
        }
        let name = options.string(&NAME).unwrap_or_default();
        let state = match options.string(&STATE_DIR) {
            Some(dir) if dir.trim().is_empty() => {
                return Err(bad(
                    STATE_DIR.name,
                    format!(
                        "is empty; name a directory, or '{MEMORY_STATE}' to keep the state in memory only"
                    ),
                ));
            }
            Some(dir) => StateLocation::from_value(dir),
            None => StateLocation::default_for(&name),
        };
        Ok(Self {
            name,
            local_time_zone: options.string(&LOCAL_TIME_ZONE).unwrap_or_default(),
            batch_mode,
            schema_change_behavior,
            route_first_match,
            schema_change_timeout: options
                .duration(&RPC_TIMEOUT)
                .map_err(wrap)?
                .unwrap_or(Duration::from_secs(180)),
            checkpoint_interval,
            state,
            shutdown_timeout: options
                .duration(&SHUTDOWN_TIMEOUT)
                .map_err(wrap)?
                .unwrap_or(Duration::from_secs(60)),
            metrics_port: match options.u64(&METRICS_PORT).map_err(wrap)? {
                None => None,
                Some(p) => Some(
                    u16::try_from(p)
                        .ok()
                        .filter(|p| *p > 0)
                        .ok_or_else(|| bad(METRICS_PORT.name, format!("{p} is not a TCP port")))?,
                ),
            },
            metrics_address: {
                let text = options.string(&METRICS_ADDRESS).unwrap_or_default();
                text.trim().parse().map_err(|_| {
                    bad(
                        METRICS_ADDRESS.name,
                        format!("'{text}' is not an IP address (127.0.0.1, 0.0.0.0, ::, ...)"),
                    )
                })?
            },
            progress_interval: options
                .duration(&PROGRESS_INTERVAL)
                .map_err(wrap)?
                .filter(|d| !d.is_zero()),
            restart: RestartStrategy::from_options(options, origin)?,
            decimal_mode: transform_decimal_mode(options, origin)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(pairs: &[(&str, &str)]) -> Result<PipelineSettings, RuntimeError> {
        let mut o = Options::new("pipeline");
        for (k, v) in pairs {
            o.insert(*k, *v);
        }
        PipelineSettings::from_options(&o, "p.yaml")
    }

    #[test]
    fn defaults_follow_flink_cdc() {
        let s = settings(&[]).unwrap();
        assert_eq!(s.name, "Flink CDC Pipeline Job");
        // Flink CDC's distribution runs pipelines with schema.change.behavior: EVOLVE
        // (flink-cdc-dist/src/main/flink-cdc-bin/conf/flink-cdc.yaml).
        assert_eq!(s.schema_change_behavior, SchemaChangeBehavior::Evolve);
        assert!(!s.batch_mode && !s.route_first_match);
        assert_eq!(s.schema_change_timeout, Duration::from_secs(180));
        // Durable by default: a directory derived from the name (where depends on the
        // environment, so only its shape is checked).
        assert!(
            matches!(s.state, StateLocation::Default(_)),
            "{:?}",
            s.state
        );
        if let StateLocation::Default(Some(dir)) = &s.state {
            assert!(dir.ends_with(format!(
                "cdc/{}",
                dir.file_name().unwrap().to_string_lossy()
            )));
            assert!(
                dir.to_string_lossy().contains("Flink-CDC-Pipeline-Job-"),
                "{dir:?}"
            );
        }
    }

    #[test]
    fn state_dir_names_a_directory_or_none_for_memory() {
        let s = settings(&[("state.dir", "/var/lib/cdc/x")]).unwrap();
        assert_eq!(s.state, StateLocation::Directory("/var/lib/cdc/x".into()));
        let s = settings(&[("state.dir", "none")]).unwrap();
        assert_eq!(s.state, StateLocation::Memory);
        let e = settings(&[("state.dir", " ")]).unwrap_err().to_string();
        assert!(
            e.contains("pipeline.state.dir") && e.contains("'none'"),
            "{e}"
        );
    }

    #[test]
    fn bad_pipeline_options_are_named() {
        let e = settings(&[("schema.change.behaviour", "evolve")])
            .unwrap_err()
            .to_string();
        assert!(e.contains("did you mean 'schema.change.behavior'"), "{e}");
        let e = settings(&[("schema.change.behavior", "yolo")])
            .unwrap_err()
            .to_string();
        assert!(e.contains("pipeline.schema.change.behavior"), "{e}");
        let e = settings(&[("user-defined-function", "[]")])
            .unwrap_err()
            .to_string();
        assert!(e.contains("JVM"), "{e}");
        let e = settings(&[("checkpoint.interval", "soon")])
            .unwrap_err()
            .to_string();
        assert!(e.contains("checkpoint.interval"), "{e}");
    }
}
