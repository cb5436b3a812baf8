//! The Doris side of the shared Stream Load driver ([`cdc_stream_load::driver`]): Doris's
//! load and two-phase-commit calls, its row encoding (JSON lines with the delete sign) and
//! its label alphabet. Buffers, labels, retries, recovery and the checkpoint bookkeeping
//! are the driver's.
//!
//! # Exactly-once (two-phase commit, the default)
//! Every load is sent with `two_phase_commit: true`: Doris pre-commits it (durable, not
//! visible) and answers with its transaction id; the runtime commits it after recording the
//! checkpoint. Committing is idempotent ("already committed" is success); a load Doris
//! aborted or forgot before the commit is [`Error::TransactionLost`], so the runtime rewinds.
//! A label found PRECOMMITTED when a load is retried is this run's own earlier attempt
//! (labels carry the run's owner epoch); one found FINISHED stops the load with the advice
//! to change `sink.label-prefix` instead of skipping data.
//!
//! # At-least-once (`sink.enable-2pc: false` or `sink.enable.batch-mode: true`)
//! Plain loads, visible at once; replays after a restart rely on the UNIQUE KEY upsert, as
//! in Flink CDC. While the source reads a snapshot the driver pre-commits instead, as in
//! two-phase mode (see the driver's documentation).

use std::sync::Arc;

use async_trait::async_trait;
use cdc_api::{DataChangeEvent, Error, OperationType, Result, Schema};
use cdc_stream_load::dead_letter::{DeadLetterFile, Rejected};
use cdc_stream_load::driver::{
    Attempt, DriverConfig, Leftover, LoadJob, LoadMode, LoadProtocol, PreparedLoad, StreamLoadSink,
    TableEncoder,
};
use cdc_stream_load::label::LabelScheme;

use crate::config::DorisSinkConfig;
use crate::encoder::{DELETE_SIGN, RowEncoder};
use crate::retry::{LoadVerdict, TxnOp, TxnVerdict, classify_load, classify_txn};
use crate::service::{DorisService, as_answer};

/// The Doris sink: the shared driver over [`DorisProtocol`].
pub(crate) type DorisSink = StreamLoadSink<DorisProtocol>;

/// Characters besides letters, digits and `_` that Doris accepts in a label.
const LABEL_CHARS: &[char] = &['-', ':'];

/// Builds the sink.
pub(crate) fn doris_sink(config: Arc<DorisSinkConfig>, service: Arc<DorisService>) -> DorisSink {
    let driver = DriverConfig {
        target: "Doris",
        labels: LabelScheme {
            prefix: config.label_prefix.clone(),
            pipeline: config.pipeline_name.clone(),
            extra_chars: LABEL_CHARS,
        },
        exactly_once: config.two_phase,
        table_max_bytes: config.max_bytes,
        // Doris bounds each table by max-bytes; all tables together by that times the
        // loads that may run at once, so many small tables cannot add up unbounded.
        total_max_bytes: config
            .max_bytes
            .saturating_mul(config.max_concurrent_loads.max(1) + 1),
        max_rows: config.max_rows,
        flush_interval: config.flush_interval,
        max_concurrent_loads: config.max_concurrent_loads,
        max_retries: config.max_retries,
        max_backoff: config.check_interval,
        spare_buffers: config.buffer_count,
        initial_buffer: config.buffer_size.min(64 * 1024),
        max_spare_capacity: config.buffer_size.max(config.max_bytes.saturating_mul(2)),
        dead_letters: config
            .dead_letter_path
            .clone()
            .map(|p| Arc::new(DeadLetterFile::new(p))),
    };
    StreamLoadSink::new(Arc::new(DorisProtocol { config, service }), driver)
}

/// Doris's calls and encoding.
pub(crate) struct DorisProtocol {
    config: Arc<DorisSinkConfig>,
    service: Arc<DorisService>,
}

/// JSON lines; on UNIQUE KEY tables with `sink.enable-delete` a delete sign per row.
pub(crate) struct DorisTableEncoder {
    rows: RowEncoder,
    key_indexes: Vec<usize>,
    /// Deletes apply (UNIQUE KEY table, `sink.enable-delete`).
    deletes: bool,
    ignore_update_before: bool,
}

impl TableEncoder for DorisTableEncoder {
    fn encode(&mut self, body: &mut Vec<u8>, e: &DataChangeEvent) -> usize {
        let deletes = self.deletes;
        let sign = |delete: bool| deletes.then_some(delete);
        let mut added = 0;
        match e.op {
            OperationType::Insert | OperationType::Replace => {
                if let Some(after) = &e.after {
                    self.rows.encode(body, after, sign(false));
                    added += 1;
                }
            }
            OperationType::Update => {
                if let (Some(before), true) = (&e.before, deletes) {
                    // A changed key leaves the old row behind unless it is deleted.
                    let key_changed = e.after.as_ref().is_some_and(|after| {
                        self.key_indexes
                            .iter()
                            .any(|&i| before.get(i) != after.get(i))
                    });
                    if key_changed || !self.ignore_update_before {
                        self.rows.encode(body, before, Some(true));
                        added += 1;
                    }
                }
                if let Some(after) = &e.after {
                    self.rows.encode(body, after, sign(false));
                    added += 1;
                }
            }
            OperationType::Delete => {
                if let (Some(before), true) = (&e.before, deletes) {
                    self.rows.encode(body, before, Some(true));
                    added += 1;
                }
                // DUPLICATE KEY tables cannot delete: the row stays, as in Flink CDC.
            }
        }
        added
    }
}

impl DorisProtocol {
    fn headers(&self, keyed: bool, label: &str, two_phase: bool) -> Vec<(String, String)> {
        let mut h: Vec<(String, String)> = vec![
            ("label".into(), label.into()),
            ("format".into(), "json".into()),
            ("read_json_by_line".into(), "true".into()),
        ];
        if keyed && self.config.enable_delete {
            h.push(("hidden_columns".into(), DELETE_SIGN.into()));
        }
        if two_phase {
            h.push(("two_phase_commit".into(), "true".into()));
        }
        for (k, v) in &self.config.load_headers {
            if k != "format" && k != "read_json_by_line" {
                h.push((k.clone(), v.clone()));
            }
        }
        h
    }
}

#[async_trait]
impl LoadProtocol for DorisProtocol {
    type Encoder = DorisTableEncoder;

    fn encoder(&self, schema: &Schema) -> DorisTableEncoder {
        let keyed = cdc_stream_load::driver::is_keyed(schema);
        DorisTableEncoder {
            rows: RowEncoder::new(schema, self.config.zone),
            key_indexes: schema.primary_key_indexes(),
            deletes: keyed && self.config.enable_delete,
            ignore_update_before: self.config.ignore_update_before,
        }
    }

    /// Finds the BEs to load into (without `benodes` and `auto-redirect`), retrying
    /// transient failures like a load.
    async fn open(&self) -> Result<()> {
        let mut attempt = 0;
        loop {
            match self.service.open().await {
                Ok(backends) => {
                    tracing::info!(backends = %backends.join(", "), "{}", self.service.route_text());
                    return Ok(());
                }
                Err(e) if e.retryable && attempt < self.config.max_retries => {
                    attempt += 1;
                    tracing::warn!(attempt, error = %e.message, "cannot find a Doris BE to load into; retrying");
                    tokio::time::sleep(backoff(&self.config, attempt)).await;
                }
                Err(mut e) => {
                    if e.retryable {
                        e.message.push_str(&format!(
                            " (gave up after {} retries, sink.max-retries)",
                            self.config.max_retries
                        ));
                    }
                    return Err(e.into_error());
                }
            }
        }
    }

    async fn attempt(&self, job: &LoadJob) -> Attempt {
        let two_phase = job.mode == LoadMode::Prepare;
        let answer = self
            .service
            .stream_load(
                &job.db,
                &job.table,
                &self.headers(job.keyed, &job.label, two_phase),
                job.body.clone(),
                self.config.load_timeout,
            )
            .await;
        match classify_load(as_answer(&answer), two_phase) {
            // With a max_filter_ratio Doris loads the good rows and answers Success with
            // NumberFilteredRows and an ErrorURL (StreamLoadContext::to_json in
            // be/src/runtime/stream_load/stream_load_context.cpp).
            LoadVerdict::Success { txn_id } => Attempt::Loaded {
                txn_id,
                rejected: answer
                    .as_ref()
                    .ok()
                    .and_then(|a| Rejected::from_answer(&a.body)),
            },
            LoadVerdict::Retry {
                reason,
                still_running: true,
            } => Attempt::Running(reason),
            LoadVerdict::Retry { reason, .. } => Attempt::Retry(reason),
            LoadVerdict::Stop { reason, error_url } => Attempt::Stop { reason, error_url },
        }
    }

    async fn error_log(&self, error_url: &str) -> std::result::Result<String, String> {
        self.service.error_log(error_url).await
    }

    async fn commit(&self, load: &PreparedLoad) -> Result<()> {
        txn_call(&self.service, &self.config, load, TxnOp::Commit)
            .await
            .map(drop)
    }

    async fn abort(&self, load: &PreparedLoad) -> Result<()> {
        txn_call(&self.service, &self.config, load, TxnOp::Abort)
            .await
            .map(drop)
    }

    async fn abort_leftover(&self, db: &str, table: &str, label: &str) -> Result<Leftover> {
        let load = PreparedLoad {
            db: db.to_string(),
            table: table.to_string(),
            label: label.to_string(),
            txn_id: None,
        };
        Ok(
            match txn_call(&self.service, &self.config, &load, TxnOp::Abort).await? {
                TxnVerdict::NotFound => Leftover::Unknown,
                // Committed or aborted: Doris does not say which.
                TxnVerdict::NotRunning => Leftover::Settled,
                _ => Leftover::Aborted,
            },
        )
    }
}

fn backoff(config: &DorisSinkConfig, attempt: u32) -> std::time::Duration {
    cdc_stream_load::driver::backoff(attempt, config.check_interval)
}

/// Commits or aborts one pre-committed load, retrying transient failures.
async fn txn_call(
    service: &DorisService,
    config: &DorisSinkConfig,
    c: &PreparedLoad,
    op: TxnOp,
) -> Result<TxnVerdict> {
    let context = || {
        format!(
            "{} the pre-committed load {} of {}.{}",
            match op {
                TxnOp::Commit => "committing",
                TxnOp::Abort => "aborting",
            },
            c.label,
            c.db,
            c.table
        )
    };
    let mut attempt = 0;
    loop {
        let answer = service.two_phase(&c.db, op, &c.label, c.txn_id).await;
        match classify_txn(as_answer(&answer), op) {
            TxnVerdict::Retry(reason) => {
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
            TxnVerdict::Stop(reason) => return Err(Error::permanent(context(), reason)),
            TxnVerdict::NotRunning if op == TxnOp::Commit => {
                // Only asked by label (no transaction id known): the load is committed or
                // aborted, Doris does not say which. A replayed commit after a restart is by
                // far the likelier case, and stopping would stop every restart again.
                tracing::warn!(label = %c.label, "commit by label: no pre-committed load has this label any more; assuming it was committed earlier");
                return Ok(TxnVerdict::Done);
            }
            TxnVerdict::NotFound if op == TxnOp::Commit && c.txn_id.is_some() => {
                // The id may be unknown to this FE's cache; ask by label once.
                let by_label = PreparedLoad {
                    txn_id: None,
                    ..c.clone()
                };
                return Box::pin(txn_call(service, config, &by_label, op)).await;
            }
            TxnVerdict::NotFound if op == TxnOp::Commit => {
                return Err(Error::transaction_lost(
                    context(),
                    "Doris knows no such transaction: it expired or was aborted before the commit, so its rows are not in the target",
                ));
            }
            TxnVerdict::Lost(reason) => return Err(Error::transaction_lost(context(), reason)),
            verdict => return Ok(verdict),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn protocol(pairs: &[(&str, &str)]) -> DorisProtocol {
        let mut options = cdc_api::Options::new("sink");
        options.insert("fenodes", "127.0.0.1:8030");
        options.insert("username", "root");
        for (k, v) in pairs {
            options.insert(*k, *v);
        }
        let mut pipeline = cdc_api::Options::new("pipeline");
        pipeline.insert("local-time-zone", "UTC");
        let ctx = cdc_api::FactoryContext {
            pipeline_name: "p".into(),
            options,
            pipeline_options: pipeline,
        };
        let config = Arc::new(DorisSinkConfig::from_context(&ctx).unwrap());
        let service = DorisService::new(
            vec!["http://127.0.0.1:8030".into()],
            vec![],
            false,
            "root".into(),
            crate::config::Password::default(),
            None,
        )
        .unwrap();
        DorisProtocol {
            config,
            service: Arc::new(service),
        }
    }

    /// The full Stream Load header set, as sent.
    #[test]
    fn request_headers() {
        let owned = |h: &[(&str, &str)]| -> Vec<(String, String)> {
            h.iter().map(|(k, v)| ((*k).into(), (*v).into())).collect()
        };
        // The default is exactly-once: two-phase commit.
        assert_eq!(
            protocol(&[]).headers(true, "l1", true),
            owned(&[
                ("label", "l1"),
                ("format", "json"),
                ("read_json_by_line", "true"),
                ("hidden_columns", "__DORIS_DELETE_SIGN__"),
                ("two_phase_commit", "true"),
            ])
        );
        // DUPLICATE tables cannot delete; extra properties are passed on.
        assert_eq!(
            protocol(&[
                ("sink.enable-2pc", "true"),
                ("sink.properties.timeout", "30"),
                ("sink.properties.strict_mode", "true"),
            ])
            .headers(false, "l2", true),
            owned(&[
                ("label", "l2"),
                ("format", "json"),
                ("read_json_by_line", "true"),
                ("two_phase_commit", "true"),
                ("strict_mode", "true"),
                ("timeout", "30"),
            ])
        );
        // At-least-once when the file chooses it, as in Flink CDC.
        for chosen in [
            ("sink.enable-2pc", "false"),
            ("sink.enable.batch-mode", "true"),
        ] {
            assert_eq!(
                protocol(&[chosen, ("sink.enable-delete", "false")])
                    .headers(true, "l3", false)
                    .len(),
                3,
                "{chosen:?}"
            );
        }
    }

    /// `sink.dead-letter.path` lets loads filter rows (`max_filter_ratio: 1`) unless the
    /// user set a ratio, which then stands.
    #[test]
    fn a_dead_letter_file_sends_a_filter_ratio_unless_one_is_set() {
        let dir = std::env::temp_dir().join(format!("cdc-doris-dlh-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("dl.jsonl");
        let path = path.to_str().unwrap();
        let ratio = |p: &DorisProtocol| {
            p.headers(true, "l", true)
                .into_iter()
                .find(|(k, _)| k == "max_filter_ratio")
                .map(|(_, v)| v)
        };
        assert_eq!(ratio(&protocol(&[])), None);
        assert_eq!(
            ratio(&protocol(&[("sink.dead-letter.path", path)])).as_deref(),
            Some("1")
        );
        assert_eq!(
            ratio(&protocol(&[
                ("sink.dead-letter.path", path),
                ("sink.properties.max_filter_ratio", "0.1"),
            ]))
            .as_deref(),
            Some("0.1")
        );
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn committables_round_trip_also_from_older_checkpoints() {
        let c = PreparedLoad {
            db: "d".into(),
            table: "t".into(),
            label: "l".into(),
            txn_id: Some(5),
        };
        let json = serde_json::to_value(&c).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"db": "d", "table": "t", "label": "l", "txn_id": 5})
        );
        let parsed = PreparedLoad::parse(&cdc_api::Committable(json), "Doris").unwrap();
        assert_eq!(parsed, c);
        let older = serde_json::json!({"db": "d", "table": "t", "label": "l", "txn_id": null});
        assert_eq!(
            PreparedLoad::parse(&cdc_api::Committable(older), "Doris")
                .unwrap()
                .txn_id,
            None
        );
        assert!(
            PreparedLoad::parse(&cdc_api::Committable(serde_json::json!({"x": 1})), "Doris")
                .is_err()
        );
    }
}
