//! The StarRocks side of the shared Stream Load driver ([`cdc_stream_load::driver`]):
//! StarRocks's Stream Load and transaction calls, its row encoding (one JSON array with
//! `__op` per load) and its label alphabet. Buffers, labels, retries, recovery and the
//! checkpoint bookkeeping are the driver's.
//!
//! # Exactly-once (the default)
//! Each part goes through the transaction interface (`begin` / `load` / `prepare`) and is
//! committed by label after the runtime recorded the checkpoint (committing twice answers
//! OK, so a replayed commit is harmless). A transaction StarRocks aborted before the
//! commit (past its `timeout`) is [`Error::TransactionLost`], so the runtime rewinds. A
//! label found PREPARED when `begin` is retried is this run's own earlier attempt (labels
//! carry the run's owner epoch); one found VISIBLE stops the load with the advice to change
//! `sink.label-prefix` rather than skip data.
//!
//! # At-least-once (`sink.semantic: at-least-once`)
//! Each load is one transaction committed at once (the default
//! `sink.at-least-once.use-transaction-stream-load: true`) or one plain Stream Load;
//! replays after a restart rely on the PRIMARY KEY upsert, as in Flink CDC. While the
//! source reads a snapshot the driver prepares and commits at checkpoints instead, as in
//! exactly-once mode (see the driver's documentation).

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use cdc_api::{DataChangeEvent, Error, OperationType, Result, Schema};
use cdc_stream_load::dead_letter::{DeadLetterFile, Rejected};
use cdc_stream_load::driver::{
    Attempt, DriverConfig, Leftover, LoadJob, LoadMode, LoadProtocol, PreparedLoad, StreamLoadSink,
    TableEncoder,
};
use cdc_stream_load::label::LabelScheme;

use crate::config::StarRocksSinkConfig;
use crate::encoder::{RowEncoder, finish};
use crate::retry::{TxnOp, Verdict, classify_stream_load, classify_txn, load_state};
use crate::service::{StarRocksService, as_answer};

/// The StarRocks sink: the shared driver over [`StarRocksProtocol`].
pub(crate) type StarRocksSink = StreamLoadSink<StarRocksProtocol>;

/// Characters besides letters, digits and `_` that StarRocks accepts in a label.
const LABEL_CHARS: &[char] = &['-'];

/// Builds the sink.
pub(crate) fn starrocks_sink(
    config: Arc<StarRocksSinkConfig>,
    service: Arc<StarRocksService>,
) -> StarRocksSink {
    let driver = DriverConfig {
        target: "StarRocks",
        labels: LabelScheme {
            prefix: config.label_prefix.clone(),
            pipeline: config.pipeline_name.clone(),
            extra_chars: LABEL_CHARS,
        },
        exactly_once: config.exactly_once(),
        // `sink.buffer-flush.max-bytes` bounds all buffers together, as in Flink's
        // connector; one table alone may use all of it.
        table_max_bytes: config.max_bytes,
        total_max_bytes: config.max_bytes,
        // StarRocks flushes by bytes and interval only.
        max_rows: usize::MAX,
        flush_interval: config.flush_interval,
        max_concurrent_loads: config.io_threads,
        max_retries: config.max_retries,
        max_backoff: config.max_backoff,
        spare_buffers: 4,
        initial_buffer: 0,
        max_spare_capacity: config.max_bytes.saturating_mul(2),
        dead_letters: config
            .dead_letter_path
            .clone()
            .map(|p| Arc::new(DeadLetterFile::new(p))),
    };
    StreamLoadSink::new(Arc::new(StarRocksProtocol { config, service }), driver)
}

/// StarRocks's calls and encoding.
pub(crate) struct StarRocksProtocol {
    config: Arc<StarRocksSinkConfig>,
    service: Arc<StarRocksService>,
}

/// JSON objects with `__op` (0 upsert, 1 delete) in one array.
pub(crate) struct StarRocksTableEncoder {
    rows: RowEncoder,
    key_indexes: Vec<usize>,
}

impl TableEncoder for StarRocksTableEncoder {
    fn encode(&mut self, body: &mut Vec<u8>, e: &DataChangeEvent) -> usize {
        let mut added = 0;
        match e.op {
            OperationType::Insert | OperationType::Replace => {
                if let Some(after) = &e.after {
                    self.rows.encode(body, after, false);
                    added += 1;
                }
            }
            OperationType::Update => {
                if let (Some(before), Some(after)) = (&e.before, &e.after) {
                    // A changed key leaves the old row behind unless it is deleted.
                    if self
                        .key_indexes
                        .iter()
                        .any(|&i| before.get(i) != after.get(i))
                    {
                        self.rows.encode(body, before, true);
                        added += 1;
                    }
                }
                if let Some(after) = &e.after {
                    self.rows.encode(body, after, false);
                    added += 1;
                }
            }
            OperationType::Delete => {
                if let Some(before) = &e.before {
                    self.rows.encode(body, before, true);
                    added += 1;
                }
            }
        }
        added
    }

    fn finish(&self, body: &mut Vec<u8>) {
        finish(body);
    }
}

#[async_trait]
impl LoadProtocol for StarRocksProtocol {
    type Encoder = StarRocksTableEncoder;

    fn encoder(&self, schema: &Schema) -> StarRocksTableEncoder {
        StarRocksTableEncoder {
            rows: RowEncoder::new(schema, self.config.zone),
            key_indexes: schema.primary_key_indexes(),
        }
    }

    async fn attempt(&self, job: &LoadJob) -> Attempt {
        let outcome = if job.mode == LoadMode::Visible && !self.config.alo_transactions {
            plain_once(&self.service, &self.config, job).await
        } else {
            txn_once(&self.service, &self.config, job).await
        };
        match outcome {
            Ok(rejected) => Attempt::Loaded {
                txn_id: None,
                rejected,
            },
            Err(Failure::Retry(r)) => Attempt::Retry(r),
            Err(Failure::Running(r)) => Attempt::Running(r),
            Err(Failure::Stop(reason, error_url)) => Attempt::Stop { reason, error_url },
        }
    }

    /// Frees the label (best effort): a half-done transaction would refuse it.
    async fn discard(&self, job: &LoadJob) {
        if job.mode == LoadMode::Prepare || self.config.alo_transactions {
            let _ = self
                .service
                .txn(TxnOp::Rollback, &job.db, &job.table, &job.label, &[], None)
                .await;
        }
    }

    async fn error_log(&self, error_url: &str) -> std::result::Result<String, String> {
        self.service.error_log(error_url).await
    }

    async fn commit(&self, load: &PreparedLoad) -> Result<()> {
        commit_txn(&self.service, &self.config, load).await
    }

    async fn abort(&self, load: &PreparedLoad) -> Result<()> {
        rollback(&self.service, &self.config, load).await
    }

    async fn abort_leftover(&self, db: &str, table: &str, label: &str) -> Result<Leftover> {
        let state = ask_state(&self.service, &self.config, db, label).await?;
        Ok(match state.as_str() {
            "UNKNOWN" | "" => Leftover::Unknown,
            "PREPARE" | "PREPARED" => {
                let load = PreparedLoad {
                    db: db.to_string(),
                    table: table.to_string(),
                    label: label.to_string(),
                    txn_id: None,
                };
                rollback(&self.service, &self.config, &load).await?;
                Leftover::Aborted
            }
            "VISIBLE" | "COMMITTED" | "FINISHED" => Leftover::Committed,
            _ => Leftover::Settled,
        })
    }
}

fn backoff(config: &StarRocksSinkConfig, attempt: u32) -> Duration {
    cdc_stream_load::driver::backoff(attempt, config.max_backoff)
}

/// Headers of a load body (stream load or transaction `load`): the forced JSON settings,
/// then `sink.properties.*` (`timeout` goes to `begin` for transactions).
fn body_headers(config: &StarRocksSinkConfig, with_timeout: bool) -> Vec<(String, String)> {
    let mut h: Vec<(String, String)> = vec![
        ("format".into(), "json".into()),
        ("strip_outer_array".into(), "true".into()),
        ("ignore_json_size".into(), "true".into()),
    ];
    for (k, v) in &config.load_headers {
        if matches!(
            k.as_str(),
            "format" | "strip_outer_array" | "ignore_json_size"
        ) {
            continue;
        }
        if k == "timeout" && !with_timeout {
            continue;
        }
        h.push((k.clone(), v.clone()));
    }
    if with_timeout && !config.load_headers.contains_key("timeout") {
        h.push(("timeout".into(), config.load_timeout_secs.to_string()));
    }
    h
}

/// Why one attempt of a transactional load did not finish.
enum Failure {
    /// Roll back and start over with the same label.
    Retry(String),
    /// An earlier job with this label still runs: wait, not counted as a failed attempt.
    Running(String),
    /// Give up.
    Stop(String, Option<String>),
}

fn failure(v: Verdict) -> Failure {
    match v {
        Verdict::Stop { reason, error_url } => Failure::Stop(reason, error_url),
        Verdict::Retry(r) | Verdict::NotFound(r) | Verdict::WrongState(r) => Failure::Retry(r),
        Verdict::LabelExists { existing, message } => {
            Failure::Retry(format!("label taken ({existing}): {message}"))
        }
        Verdict::Done => Failure::Retry("unexpected success".into()),
    }
}

async fn plain_once(
    service: &StarRocksService,
    config: &StarRocksSinkConfig,
    job: &LoadJob,
) -> Result<Option<Rejected>, Failure> {
    let mut headers = vec![("label".to_string(), job.label.clone())];
    headers.extend(body_headers(config, true));
    let answer = service
        .stream_load(&job.db, &job.table, &headers, job.body.clone())
        .await;
    match classify_stream_load(as_answer(&answer)) {
        // With a max_filter_ratio StarRocks loads the good rows and answers Success with
        // NumberFilteredRows and an ErrorURL (StreamLoadContext::to_json in
        // be/src/runtime/stream_load/stream_load_context.cpp).
        Verdict::Done => Ok(answer
            .as_ref()
            .ok()
            .and_then(|a| Rejected::from_answer(&a.body))),
        // Our own earlier attempt committed; its answer (and what it filtered) was lost.
        Verdict::LabelExists { existing, .. } if existing == "FINISHED" => Ok(None),
        Verdict::LabelExists { existing, message } => Err(Failure::Running(format!(
            "a load with this label is {existing}: {message}"
        ))),
        other => Err(failure(other)),
    }
}

/// begin / load / prepare (and commit, at-least-once).
async fn txn_once(
    service: &StarRocksService,
    config: &StarRocksSinkConfig,
    job: &LoadJob,
) -> Result<Option<Rejected>, Failure> {
    let (db, table, label) = (&job.db, &job.table, &job.label);
    let mut rejected = None;
    let timeout = vec![(
        "timeout".to_string(),
        config
            .load_headers
            .get("timeout")
            .cloned()
            .unwrap_or_else(|| config.load_timeout_secs.to_string()),
    )];
    let begun = service
        .txn(TxnOp::Begin, db, table, label, &timeout, None)
        .await;
    let mut prepared = false;
    match classify_txn(as_answer(&begun), TxnOp::Begin) {
        Verdict::Done => {}
        Verdict::LabelExists { existing, message } => match existing.as_str() {
            // Only this run uses this label for this body: a prepared one is ours.
            "PREPARED" => prepared = true,
            "FINISHED" | "VISIBLE" | "COMMITTED" if job.mode == LoadMode::Visible => {
                return Ok(None);
            }
            "FINISHED" | "VISIBLE" | "COMMITTED" => {
                return Err(Failure::Stop(
                    format!(
                        "the label is already used by a committed load ({message}); another pipeline or an earlier run with lost state uses the same labels: set another sink.label-prefix"
                    ),
                    None,
                ));
            }
            _ => {
                return Err(Failure::Retry(format!(
                    "label taken ({existing}): {message}"
                )));
            }
        },
        other => return Err(failure(other)),
    }
    if !prepared {
        let headers = body_headers(config, false);
        let loaded = service
            .txn(
                TxnOp::Load,
                db,
                table,
                label,
                &headers,
                Some(job.body.clone()),
            )
            .await;
        match classify_txn(as_answer(&loaded), TxnOp::Load) {
            Verdict::Done => {}
            other => return Err(failure(other)),
        }
        let answer = service
            .txn(TxnOp::Prepare, db, table, label, &[], None)
            .await;
        match classify_txn(as_answer(&answer), TxnOp::Prepare) {
            // The prepare answer carries the load's counters and, when rows were filtered
            // (allowed by a max_filter_ratio), its ErrorURL (StreamLoadContext::to_resp_json
            // in be/src/runtime/stream_load/stream_load_context.cpp, built by
            // TransactionMgr::_commit_transaction's reply in transaction_mgr.cpp).
            Verdict::Done => {
                rejected = answer
                    .as_ref()
                    .ok()
                    .and_then(|a| Rejected::from_answer(&a.body));
            }
            // The answer may be lost after the prepare happened: ask.
            Verdict::NotFound(r) | Verdict::Retry(r) => {
                let state = load_state(as_answer(&service.load_state(db, label).await));
                if state.as_deref() != Ok("PREPARED") {
                    return Err(Failure::Retry(r));
                }
            }
            other => return Err(failure(other)),
        }
    }
    if job.mode == LoadMode::Prepare {
        return Ok(rejected);
    }
    let c = PreparedLoad {
        db: db.clone(),
        table: table.clone(),
        label: label.clone(),
        txn_id: None,
    };
    match commit_txn(service, config, &c).await {
        Ok(()) => Ok(rejected),
        Err(e) => Err(Failure::Retry(e.to_string())),
    }
}

/// `get_load_state` with retries.
async fn ask_state(
    service: &StarRocksService,
    config: &StarRocksSinkConfig,
    db: &str,
    label: &str,
) -> Result<String> {
    let mut attempt = 0;
    loop {
        match load_state(as_answer(&service.load_state(db, label).await)) {
            Ok(s) => return Ok(s),
            Err(Verdict::Retry(reason)) => {
                attempt += 1;
                if attempt > config.max_retries {
                    return Err(Error::transient(
                        format!("asking StarRocks for the state of label {label} in {db}"),
                        reason,
                    ));
                }
                tokio::time::sleep(backoff(config, attempt)).await;
            }
            Err(other) => {
                return Err(Error::permanent(
                    format!("asking StarRocks for the state of label {label} in {db}"),
                    format!("{other:?}"),
                ));
            }
        }
    }
}

/// Commits a prepared transaction by label; committing a committed one is success.
async fn commit_txn(
    service: &StarRocksService,
    config: &StarRocksSinkConfig,
    c: &PreparedLoad,
) -> Result<()> {
    let context = || {
        format!(
            "committing the prepared load {} of {}.{}",
            c.label, c.db, c.table
        )
    };
    let mut attempt = 0;
    loop {
        let answer = service
            .txn(TxnOp::Commit, &c.db, &c.table, &c.label, &[], None)
            .await;
        let reason = match classify_txn(as_answer(&answer), TxnOp::Commit) {
            Verdict::Done => return Ok(()),
            Verdict::Stop { reason, .. } => return Err(Error::permanent(context(), reason)),
            Verdict::NotFound(r) | Verdict::WrongState(r) | Verdict::Retry(r) => r,
            Verdict::LabelExists { message, .. } => message,
        };
        // After an unclear answer, the label's state decides (as Flink's connector does).
        match ask_state(service, config, &c.db, &c.label).await?.as_str() {
            "VISIBLE" | "COMMITTED" => return Ok(()),
            "ABORTED" => {
                return Err(Error::transaction_lost(
                    context(),
                    format!(
                        "the transaction was aborted before the commit ({reason}), so its rows are not in the target"
                    ),
                ));
            }
            "UNKNOWN" => {
                // A replayed commit of a checkpoint whose label StarRocks has forgotten
                // (labels are kept 3 days): committed long ago is by far the likelier case,
                // and stopping would stop every restart again.
                tracing::warn!(label = %c.label, "commit by label: StarRocks no longer knows the label; assuming it was committed earlier");
                return Ok(());
            }
            _ => {}
        }
        attempt += 1;
        if attempt > config.max_retries {
            return Err(
                Error::transient(context(), reason).retries_exhausted(&format!(
                    "gave up after {} retries (sink.max-retries)",
                    config.max_retries
                )),
            );
        }
        tokio::time::sleep(backoff(config, attempt)).await;
    }
}

/// Rolls back a transaction by label; an aborted or unknown one is fine.
async fn rollback(
    service: &StarRocksService,
    config: &StarRocksSinkConfig,
    c: &PreparedLoad,
) -> Result<()> {
    let context = || format!("rolling back the load {} of {}.{}", c.label, c.db, c.table);
    let mut attempt = 0;
    loop {
        let answer = service
            .txn(TxnOp::Rollback, &c.db, &c.table, &c.label, &[], None)
            .await;
        match classify_txn(as_answer(&answer), TxnOp::Rollback) {
            Verdict::Done | Verdict::NotFound(_) => return Ok(()),
            Verdict::WrongState(r) => {
                tracing::warn!(label = %c.label, reason = %r, "rollback refused: the transaction is committed");
                return Ok(());
            }
            Verdict::Stop { reason, .. } => return Err(Error::permanent(context(), reason)),
            Verdict::Retry(reason)
            | Verdict::LabelExists {
                message: reason, ..
            } => {
                attempt += 1;
                if attempt > config.max_retries {
                    return Err(
                        Error::transient(context(), reason).retries_exhausted(&format!(
                            "gave up after {} retries (sink.max-retries)",
                            config.max_retries
                        )),
                    );
                }
                tokio::time::sleep(backoff(config, attempt)).await;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(pairs: &[(&str, &str)]) -> StarRocksSinkConfig {
        let mut options = cdc_api::Options::new("sink");
        options.insert("jdbc-url", "jdbc:mysql://127.0.0.1:9030");
        options.insert("load-url", "127.0.0.1:8030");
        options.insert("username", "root");
        options.insert("password", "");
        for (k, v) in pairs {
            options.insert(*k, *v);
        }
        let ctx = cdc_api::FactoryContext {
            pipeline_name: "p".into(),
            options,
            pipeline_options: cdc_api::Options::new("pipeline"),
        };
        StarRocksSinkConfig::from_context(&ctx).unwrap()
    }

    #[test]
    fn body_headers_force_json_arrays() {
        let owned = |h: &[(&str, &str)]| -> Vec<(String, String)> {
            h.iter().map(|(k, v)| ((*k).into(), (*v).into())).collect()
        };
        let c = config(&[
            ("sink.properties.strict_mode", "true"),
            ("sink.properties.timeout", "30"),
        ]);
        assert_eq!(
            body_headers(&c, true),
            owned(&[
                ("format", "json"),
                ("strip_outer_array", "true"),
                ("ignore_json_size", "true"),
                ("strict_mode", "true"),
                ("timeout", "30"),
            ])
        );
        assert_eq!(body_headers(&c, false).len(), 4);
        assert_eq!(
            body_headers(&config(&[]), true).last(),
            Some(&("timeout".to_string(), "600".to_string()))
        );
    }

    #[test]
    fn committables_of_older_checkpoints_still_read() {
        let older = serde_json::json!({"db": "d", "table": "t", "label": "l"});
        let c = PreparedLoad::parse(&cdc_api::Committable(older.clone()), "StarRocks").unwrap();
        assert_eq!(
            (c.db.as_str(), c.label.as_str(), c.txn_id),
            ("d", "l", None)
        );
        // Written back the same way.
        assert_eq!(serde_json::to_value(&c).unwrap(), older);
    }
}
