//! The driver: per-table buffers (one JSON array with `__op` per table), loaded by size,
//! interval or checkpoint; loads to different tables run concurrently (at most
//! `sink.io.thread-count`), loads to one table one after another so their order is the
//! order of the changes.
//!
//! # Exactly-once (`sink.semantic: exactly-once`)
//! Rows wait in memory until `prepare`, which loads every buffer through the transaction
//! interface (`begin` / `load` / `prepare`) under a label derived from the pipeline, the
//! table, the *upcoming* checkpoint and a part number: `{prefix}_{pipeline}_{db}_{table}
//! _{checkpoint}_{part}` (a buffer over `sink.buffer-flush.max-bytes` prepares an extra
//! part early). Prepared rows are durable but invisible; `commit`, which the runtime calls
//! only after it recorded the checkpoint with our committables, commits them by label
//! (committing twice answers OK, so a replayed commit is harmless).
//!
//! On every start the runtime calls `recover(last)` (after committing the last recorded
//! checkpoint again when resuming). Transactions prepared after it belong to checkpoint
//! `last + 1` (or 1 on a fresh start), whose labels we can compute: before the first load
//! to a table in the new run (and, for tables known but not loaded yet, before the first
//! checkpoint is handed back), we ask `get_load_state` for `..._{last+1}_0`, `_1`, ... until
//! StarRocks knows none, and roll back those still PREPARE / PREPARED. The new run reuses
//! those labels for the replayed rows (StarRocks lets a label of an aborted transaction be
//! used again). A label found VISIBLE there means another writer (or a run whose state was
//! deleted) uses our labels: the load stops and asks for another `sink.label-prefix`
//! rather than skip data.
//!
//! # At-least-once (the default)
//! Each load gets a label unique to this run and batch, and is either one transaction
//! (`begin` / `load` / `prepare` / `commit`, the default
//! `sink.at-least-once.use-transaction-stream-load: true`) or one plain Stream Load. A
//! retry reuses the label, so a load whose answer was lost is not applied twice; replays
//! after a restart rely on the PRIMARY KEY upsert, as in Flink CDC.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use cdc_api::{
    CheckpointId, Committable, DataChangeEvent, Error, Event, OperationType, Result, Schema,
    SchemaChangeEvent, Sink, SinkStats, TableId,
};
use serde::{Deserialize, Serialize};
use tokio::sync::Semaphore;
use tokio::task::JoinHandle;
use tokio::time::Instant;

use crate::config::StarRocksSinkConfig;
use crate::encoder::{RowEncoder, finish};
use crate::retry::{TxnOp, Verdict, classify_stream_load, classify_txn, load_state};
use crate::service::{StarRocksService, as_answer};

/// The longest a load waits for an earlier job with its label that is still running.
const MAX_RUNNING_WAIT: Duration = Duration::from_secs(600);
/// Parts of one table and checkpoint probed at most when recovering.
const MAX_PARTS: u32 = 100_000;
/// Longest StarRocks label.
const MAX_LABEL: usize = 128;

/// What `prepare` hands to the runtime and `commit` gets back.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct StarRocksCommittable {
    /// Target database.
    pub(crate) db: String,
    /// Target table.
    pub(crate) table: String,
    /// The transaction's label.
    pub(crate) label: String,
}

struct TableBuffer {
    schema: Schema,
    encoder: RowEncoder,
    key_indexes: Vec<usize>,
    body: Vec<u8>,
    rows: usize,
    since: Option<Instant>,
}

/// How a batch is loaded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// One plain Stream Load.
    Plain,
    /// begin / load / prepare / commit.
    Transaction,
    /// begin / load / prepare; committed at the checkpoint.
    Prepare,
}

struct LoadJob {
    db: String,
    table: String,
    label: String,
    body: Bytes,
    rows: usize,
    mode: Mode,
}

struct LoadDone {
    committable: Option<StarRocksCommittable>,
    buffer: Option<Vec<u8>>,
}

/// The StarRocks sink.
pub(crate) struct StarRocksSink {
    config: Arc<StarRocksSinkConfig>,
    service: Arc<StarRocksService>,
    tables: HashMap<TableId, TableBuffer>,
    in_flight: HashMap<TableId, JoinHandle<Result<LoadDone>>>,
    permits: Arc<Semaphore>,
    spare: Vec<Vec<u8>>,
    run_id: String,
    seq: u64,
    next_checkpoint: CheckpointId,
    parts: HashMap<TableId, u32>,
    pending: Vec<StarRocksCommittable>,
    recover_checkpoint: Option<CheckpointId>,
    recovered: HashSet<TableId>,
    /// Loads, bytes, retries and latency, shared with the load tasks.
    stats: Arc<std::sync::Mutex<SinkStats>>,
}

impl StarRocksSink {
    pub(crate) fn new(config: Arc<StarRocksSinkConfig>, service: Arc<StarRocksService>) -> Self {
        let millis = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis());
        Self {
            permits: Arc::new(Semaphore::new(config.io_threads)),
            config,
            service,
            tables: HashMap::new(),
            in_flight: HashMap::new(),
            spare: Vec::new(),
            run_id: format!("{millis}{}", std::process::id() % 1000),
            seq: 0,
            next_checkpoint: CheckpointId(1),
            parts: HashMap::new(),
            pending: Vec::new(),
            recover_checkpoint: None,
            recovered: HashSet::new(),
            stats: Arc::default(),
        }
    }

    fn take_buffer(&mut self) -> Vec<u8> {
        self.spare.pop().unwrap_or_default()
    }

    fn give_back(&mut self, mut buffer: Vec<u8>) {
        if self.spare.len() < 4 && buffer.capacity() <= self.config.max_bytes.saturating_mul(2) {
            buffer.clear();
            self.spare.push(buffer);
        }
    }

    fn label_head(&self, table: &TableId) -> Vec<String> {
        let mut parts = Vec::with_capacity(4);
        if !self.config.label_prefix.is_empty() {
            parts.push(self.config.label_prefix.clone());
        }
        parts.push(self.config.pipeline_name.clone());
        parts.push(table.schema_name().to_string());
        parts.push(table.table.clone());
        parts
    }

    fn checkpoint_label(&self, table: &TableId, checkpoint: CheckpointId, part: u32) -> String {
        make_label(&self.label_head(table), &format!("{checkpoint}_{part}"))
    }

    fn batch_label(&mut self, table: &TableId) -> String {
        self.seq += 1;
        let suffix = format!("{}_{}", self.run_id, self.seq);
        make_label(&self.label_head(table), &suffix)
    }

    fn buffered_bytes(&self) -> usize {
        self.tables.values().map(|t| t.body.len()).sum()
    }

    /// Buffers one row change; loads the largest buffer when all hold `max-bytes`.
    async fn write_change(&mut self, e: DataChangeEvent) -> Result<()> {
        let Some(t) = self.tables.get_mut(&e.table_id) else {
            return Err(Error::permanent(
                format!("writing to {}", e.table_id),
                "a row arrived before the table's CreateTable event",
            ));
        };
        let before_rows = t.rows;
        match e.op {
            OperationType::Insert | OperationType::Replace => {
                if let Some(after) = &e.after {
                    t.encoder.encode(&mut t.body, after, false);
                    t.rows += 1;
                }
            }
            OperationType::Update => {
                if let (Some(before), Some(after)) = (&e.before, &e.after) {
                    // A changed key leaves the old row behind unless it is deleted.
                    if t.key_indexes.iter().any(|&i| before.get(i) != after.get(i)) {
                        t.encoder.encode(&mut t.body, before, true);
                        t.rows += 1;
                    }
                }
                if let Some(after) = &e.after {
                    t.encoder.encode(&mut t.body, after, false);
                    t.rows += 1;
                }
            }
            OperationType::Delete => {
                if let Some(before) = &e.before {
                    t.encoder.encode(&mut t.body, before, true);
                    t.rows += 1;
                }
            }
        }
        if t.rows == before_rows {
            return Ok(());
        }
        t.since.get_or_insert_with(Instant::now);
        if self.buffered_bytes() >= self.config.max_bytes {
            let largest = self
                .tables
                .iter()
                .max_by_key(|(_, t)| t.body.len())
                .map(|(id, _)| id.clone());
            if let Some(id) = largest {
                self.load_table(&id).await?;
            }
        }
        Ok(())
    }

    /// Starts a load of the table's buffer (after the previous load of the table ended).
    async fn load_table(&mut self, table: &TableId) -> Result<()> {
        if self.tables.get(table).is_none_or(|t| t.rows == 0) {
            return Ok(());
        }
        self.wait_table(table).await?;
        self.recover_table(table).await?;
        let fresh = self.take_buffer();
        let exactly_once = self.config.exactly_once();
        let Some(t) = self.tables.get_mut(table) else {
            return Ok(());
        };
        let mut body = std::mem::replace(&mut t.body, fresh);
        finish(&mut body);
        let rows = std::mem::take(&mut t.rows);
        t.since = None;
        let (label, mode) = if exactly_once {
            let part = self.parts.entry(table.clone()).or_insert(0);
            let n = *part;
            *part += 1;
            (
                self.checkpoint_label(table, self.next_checkpoint, n),
                Mode::Prepare,
            )
        } else if self.config.alo_transactions {
            (self.batch_label(table), Mode::Transaction)
        } else {
            (self.batch_label(table), Mode::Plain)
        };
        let job = LoadJob {
            db: table.schema_name().to_string(),
            table: table.table.clone(),
            label,
            body: Bytes::from(body),
            rows,
            mode,
        };
        let permit = Arc::clone(&self.permits)
            .acquire_owned()
            .await
            .map_err(|_| Error::Cancelled)?;
        let service = Arc::clone(&self.service);
        let config = Arc::clone(&self.config);
        let stats = Arc::clone(&self.stats);
        let handle = tokio::spawn(async move {
            let result = run_load(&service, &config, job, &stats).await;
            drop(permit);
            result
        });
        self.in_flight.insert(table.clone(), handle);
        Ok(())
    }

    async fn wait_table(&mut self, table: &TableId) -> Result<()> {
        let Some(handle) = self.in_flight.remove(table) else {
            return Ok(());
        };
        let done = handle
            .await
            .map_err(|e| Error::permanent(format!("loading into {table}"), e.to_string()))??;
        if let Some(c) = done.committable {
            self.pending.push(c);
        }
        if let Some(b) = done.buffer {
            self.give_back(b);
        }
        Ok(())
    }

    /// Collects loads that ended meanwhile, so their errors surface while idle.
    async fn reap_finished(&mut self) -> Result<()> {
        let done: Vec<TableId> = self
            .in_flight
            .iter()
            .filter(|(_, h)| h.is_finished())
            .map(|(t, _)| t.clone())
            .collect();
        for t in done {
            self.wait_table(&t).await?;
        }
        Ok(())
    }

    async fn wait_all(&mut self) -> Result<()> {
        let tables: Vec<TableId> = self.in_flight.keys().cloned().collect();
        let mut first_error = None;
        for t in tables {
            if let Err(e) = self.wait_table(&t).await {
                first_error.get_or_insert(e);
            }
        }
        first_error.map_or(Ok(()), Err)
    }

    async fn load_all(&mut self) -> Result<()> {
        let tables: Vec<TableId> = self
            .tables
            .iter()
            .filter(|(_, t)| t.rows > 0)
            .map(|(id, _)| id.clone())
            .collect();
        for t in tables {
            self.load_table(&t).await?;
        }
        self.wait_all().await
    }

    /// At-least-once: loads the buffers whose oldest row waited the flush interval.
    async fn load_expired(&mut self) -> Result<()> {
        if self.config.exactly_once() {
            return Ok(());
        }
        let interval = self.config.flush_interval;
        let expired: Vec<TableId> = self
            .tables
            .iter()
            .filter(|(_, t)| t.since.is_some_and(|s| s.elapsed() >= interval))
            .map(|(id, _)| id.clone())
            .collect();
        for t in expired {
            self.load_table(&t).await?;
        }
        Ok(())
    }

    /// After a restart, rolls back what an earlier run prepared for this table after the
    /// last durable checkpoint, so its labels can be used again.
    async fn recover_table(&mut self, table: &TableId) -> Result<()> {
        let Some(checkpoint) = self.recover_checkpoint else {
            return Ok(());
        };
        if !self.recovered.insert(table.clone()) {
            return Ok(());
        }
        let db = table.schema_name().to_string();
        for part in 0..MAX_PARTS {
            let label = self.checkpoint_label(table, checkpoint, part);
            let state = ask_state(&self.service, &self.config, &db, &label).await?;
            match state.as_str() {
                "UNKNOWN" | "" => break,
                "PREPARE" | "PREPARED" => {
                    let c = StarRocksCommittable {
                        db: db.clone(),
                        table: table.table.clone(),
                        label,
                    };
                    rollback(&self.service, &self.config, &c).await?;
                    tracing::info!(label = %c.label, "rolled back a transaction left prepared by an earlier run");
                }
                // ABORTED: free again. VISIBLE / COMMITTED: the load with this label stops
                // with advice, rather than silently skipping data.
                _ => {}
            }
        }
        Ok(())
    }

    fn apply_schema_change(&mut self, change: &SchemaChangeEvent) {
        let id = change.table_id().clone();
        match change {
            SchemaChangeEvent::CreateTable { schema, .. } => {
                let body = self.take_buffer();
                self.tables.insert(
                    id,
                    TableBuffer {
                        encoder: RowEncoder::new(schema, self.config.zone),
                        key_indexes: schema.primary_key_indexes(),
                        schema: schema.clone(),
                        body,
                        rows: 0,
                        since: None,
                    },
                );
            }
            SchemaChangeEvent::DropTable { .. } => {
                self.tables.remove(&id);
            }
            SchemaChangeEvent::TruncateTable { .. } => {}
            other => {
                if let Some(t) = self.tables.get_mut(&id) {
                    match other.apply_to(&t.schema) {
                        Ok(next) => {
                            t.encoder = RowEncoder::new(&next, self.config.zone);
                            t.key_indexes = next.primary_key_indexes();
                            t.schema = next;
                        }
                        Err(e) => {
                            tracing::warn!(table = %id, error = %e, "schema change does not fit the known schema");
                        }
                    }
                }
            }
        }
    }

    /// Rolls back this table's parts prepared for the upcoming checkpoint: a truncate or
    /// drop that follows removes their rows anyway, and committing them afterwards would
    /// bring the rows back.
    async fn rollback_pending_of(&mut self, table: &TableId) -> Result<()> {
        let (drop, keep): (Vec<_>, Vec<_>) = std::mem::take(&mut self.pending)
            .into_iter()
            .partition(|c| c.db == table.schema_name() && c.table == table.table);
        self.pending = keep;
        for c in drop {
            rollback(&self.service, &self.config, &c).await?;
        }
        Ok(())
    }
}

/// `head` joined with `_`, then `_suffix`, as a valid StarRocks label (`[-_A-Za-z0-9]`, at
/// most 128 characters). Other characters become `_`; when that changed anything or the
/// label is too long, a hash of the original keeps different tables apart.
pub(crate) fn make_label(head: &[String], suffix: &str) -> String {
    let raw = head.join("_");
    let mut clean: String = raw
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '-' | '_') {
                c
            } else {
                '_'
            }
        })
        .collect();
    let room = MAX_LABEL.saturating_sub(suffix.len() + 1);
    if clean != raw || clean.len() > room {
        let hash = format!("{:016x}", fnv1a(raw.as_bytes()));
        clean.truncate(room.saturating_sub(hash.len() + 1));
        clean.push('_');
        clean.push_str(&hash);
    }
    format!("{clean}_{suffix}")
}

fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3)
    })
}

fn backoff(config: &StarRocksSinkConfig, attempt: u32) -> Duration {
    Duration::from_millis(200)
        .saturating_mul(1 << attempt.min(10))
        .min(config.max_backoff)
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

/// An error that stops the pipeline, with the first rejected row when the server kept one.
async fn stop_error(
    service: &StarRocksService,
    context: String,
    reason: String,
    error_url: Option<String>,
) -> Error {
    let mut message = reason;
    if let Some(url) = error_url {
        match service.first_error_line(&url).await {
            Some(line) => message.push_str(&format!("; first rejected row: {line}")),
            None => message.push_str(&format!("; rejected rows: {url}")),
        }
    }
    Error::permanent(context, message)
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

/// Sends one batch until it is loaded (or prepared), retrying with the same label.
async fn run_load(
    service: &StarRocksService,
    config: &StarRocksSinkConfig,
    job: LoadJob,
    stats: &std::sync::Mutex<SinkStats>,
) -> Result<LoadDone> {
    let started = Instant::now();
    let count = |update: &dyn Fn(&mut SinkStats)| {
        update(
            &mut stats
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner),
        );
    };
    let context = || {
        format!(
            "loading {} rows into {}.{} (label {})",
            job.rows, job.db, job.table, job.label
        )
    };
    let mut attempt = 0;
    let mut waited = Duration::ZERO;
    loop {
        let outcome = match job.mode {
            Mode::Plain => plain_once(service, config, &job).await,
            Mode::Transaction | Mode::Prepare => txn_once(service, config, &job).await,
        };
        match outcome {
            Ok(()) => {
                count(&|s| {
                    s.record_load(job.rows as u64, job.body.len() as u64, started.elapsed());
                });
                let committable = (job.mode == Mode::Prepare).then(|| StarRocksCommittable {
                    db: job.db.clone(),
                    table: job.table.clone(),
                    label: job.label.clone(),
                });
                let buffer = job.body.try_into_mut().ok().map(Vec::from);
                return Ok(LoadDone {
                    committable,
                    buffer,
                });
            }
            Err(Failure::Stop(reason, url)) => {
                count(&|s| s.failures += 1);
                if job.mode != Mode::Plain {
                    let c = StarRocksCommittable {
                        db: job.db.clone(),
                        table: job.table.clone(),
                        label: job.label.clone(),
                    };
                    let _ = service
                        .txn(TxnOp::Rollback, &c.db, &c.table, &c.label, &[], None)
                        .await;
                }
                return Err(stop_error(service, context(), reason, url).await);
            }
            Err(Failure::Running(reason)) => {
                if waited >= MAX_RUNNING_WAIT {
                    count(&|s| s.failures += 1);
                    return Err(Error::permanent(context(), reason));
                }
                let pause = backoff(config, 3);
                tokio::time::sleep(pause).await;
                waited += pause;
            }
            Err(Failure::Retry(reason)) => {
                attempt += 1;
                if attempt > config.max_retries {
                    count(&|s| s.failures += 1);
                    return Err(Error::transient(context(), reason).into_permanent(&format!(
                        "gave up after {} retries (sink.max-retries)",
                        config.max_retries
                    )));
                }
                count(&|s| s.retries += 1);
                tracing::warn!(label = %job.label, attempt, %reason, "load failed; retrying with the same label");
                if job.mode != Mode::Plain {
                    // Free the label (best effort): a half-done transaction would refuse it.
                    let _ = service
                        .txn(TxnOp::Rollback, &job.db, &job.table, &job.label, &[], None)
                        .await;
                }
                tokio::time::sleep(backoff(config, attempt)).await;
            }
        }
    }
}

async fn plain_once(
    service: &StarRocksService,
    config: &StarRocksSinkConfig,
    job: &LoadJob,
) -> Result<(), Failure> {
    let mut headers = vec![("label".to_string(), job.label.clone())];
    headers.extend(body_headers(config, true));
    let answer = service
        .stream_load(&job.db, &job.table, &headers, job.body.clone())
        .await;
    match classify_stream_load(as_answer(&answer)) {
        Verdict::Done => Ok(()),
        // Our own earlier attempt committed; its answer was lost.
        Verdict::LabelExists { existing, .. } if existing == "FINISHED" => Ok(()),
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
) -> Result<(), Failure> {
    let (db, table, label) = (&job.db, &job.table, &job.label);
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
            "FINISHED" | "VISIBLE" | "COMMITTED" if job.mode == Mode::Transaction => {
                return Ok(());
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
            Verdict::Done => {}
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
    if job.mode == Mode::Prepare {
        return Ok(());
    }
    let c = StarRocksCommittable {
        db: db.clone(),
        table: table.clone(),
        label: label.clone(),
    };
    match commit_txn(service, config, &c).await {
        Ok(()) => Ok(()),
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
    c: &StarRocksCommittable,
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
                return Err(Error::permanent(
                    context(),
                    format!("the transaction was aborted before the commit ({reason}), so its rows are not in the target"),
                )
                .with_hint("restart from an earlier state, or raise the server's transaction timeouts"));
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
            return Err(Error::transient(context(), reason).into_permanent(&format!(
                "gave up after {} retries (sink.max-retries)",
                config.max_retries
            )));
        }
        tokio::time::sleep(backoff(config, attempt)).await;
    }
}

/// Rolls back a transaction by label; an aborted or unknown one is fine.
async fn rollback(
    service: &StarRocksService,
    config: &StarRocksSinkConfig,
    c: &StarRocksCommittable,
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
                    return Err(Error::transient(context(), reason).into_permanent(&format!(
                        "gave up after {} retries (sink.max-retries)",
                        config.max_retries
                    )));
                }
                tokio::time::sleep(backoff(config, attempt)).await;
            }
        }
    }
}

fn parse_committable(c: &Committable) -> Result<StarRocksCommittable> {
    serde_json::from_value(c.0.clone()).map_err(|e| {
        Error::permanent(
            "reading a StarRocks committable from the checkpoint",
            format!("{e}: {}", c.0),
        )
    })
}

#[async_trait]
impl Sink for StarRocksSink {
    async fn write(&mut self, events: Vec<Event>) -> Result<()> {
        for event in events {
            match event {
                Event::DataChange(e) => self.write_change(e).await?,
                Event::SchemaChange(change) => {
                    let id = change.table_id().clone();
                    if matches!(
                        change,
                        SchemaChangeEvent::TruncateTable { .. }
                            | SchemaChangeEvent::DropTable { .. }
                    ) {
                        self.wait_table(&id).await?;
                        self.rollback_pending_of(&id).await?;
                    }
                    self.apply_schema_change(&change);
                }
            }
        }
        self.load_expired().await
    }

    /// At-least-once: loads everything and waits. Exactly-once: prepares everything as
    /// parts of the upcoming checkpoint (durable, not yet visible).
    async fn flush(&mut self) -> Result<()> {
        self.load_all().await
    }

    async fn prepare(&mut self, checkpoint: CheckpointId) -> Result<Vec<Committable>> {
        if !self.config.exactly_once() {
            self.load_all().await?;
            return Ok(Vec::new());
        }
        if checkpoint > self.next_checkpoint {
            self.next_checkpoint = checkpoint;
        }
        // A table this run has not loaded yet may still hold transactions an earlier run
        // prepared under the recovered checkpoint's labels. Once this checkpoint is
        // recorded, the next restart probes only later labels, so they would stay
        // PREPARED (holding the server's resources) until its timeout: free them now.
        let unrecovered: Vec<TableId> = self
            .tables
            .keys()
            .filter(|t| !self.recovered.contains(*t))
            .cloned()
            .collect();
        for t in unrecovered {
            self.recover_table(&t).await?;
        }
        self.load_all().await?;
        let prepared = std::mem::take(&mut self.pending);
        self.parts.clear();
        self.next_checkpoint = checkpoint.next();
        prepared
            .into_iter()
            .map(|c| {
                serde_json::to_value(&c).map(Committable).map_err(|e| {
                    Error::permanent("encoding a StarRocks committable", e.to_string())
                })
            })
            .collect()
    }

    async fn commit(&mut self, committables: Vec<Committable>) -> Result<()> {
        for c in &committables {
            commit_txn(&self.service, &self.config, &parse_committable(c)?).await?;
        }
        Ok(())
    }

    async fn abort(&mut self, committables: Vec<Committable>) -> Result<()> {
        for c in &committables {
            rollback(&self.service, &self.config, &parse_committable(c)?).await?;
        }
        Ok(())
    }

    async fn recover(&mut self, last: Option<CheckpointId>) -> Result<()> {
        if !self.config.exactly_once() {
            return Ok(());
        }
        let next = last.map_or(CheckpointId(1), CheckpointId::next);
        self.next_checkpoint = next;
        self.recover_checkpoint = Some(next);
        self.recovered.clear();
        let known: Vec<TableId> = self.tables.keys().cloned().collect();
        for t in known {
            self.recover_table(&t).await?;
        }
        Ok(())
    }

    fn stats(&self) -> SinkStats {
        self.stats
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    async fn poll_flush(&mut self) -> Result<()> {
        self.reap_finished().await?;
        self.load_expired().await
    }

    async fn close(&mut self) -> Result<()> {
        for (_, handle) in self.in_flight.drain() {
            handle.abort();
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_are_valid_and_deterministic() {
        let head = |p: &str, d: &str, t: &str| vec![p.to_string(), d.to_string(), t.to_string()];
        assert_eq!(
            make_label(&head("pipe", "shop", "orders"), "3_0"),
            "pipe_shop_orders_3_0"
        );
        let odd = make_label(&head("Flink CDC Pipeline Job", "shop", "orders"), "3_0");
        assert!(
            odd.starts_with("Flink_CDC_Pipeline_Job_shop_orders_"),
            "{odd}"
        );
        assert_eq!(
            odd,
            make_label(&head("Flink CDC Pipeline Job", "shop", "orders"), "3_0")
        );
        assert_ne!(
            make_label(&head("p", "db", "a.b"), "1_0"),
            make_label(&head("p", "db", "a b"), "1_0")
        );
        let long = make_label(&head("p", "db", &"x".repeat(300)), "12345_7");
        assert!(long.len() <= 128 && long.ends_with("_12345_7"));
        for l in [odd, long, make_label(&head("p", "数据", "表"), "1_0")] {
            assert!(
                l.chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'),
                "{l}"
            );
        }
    }

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
    fn committables_round_trip() {
        let c = StarRocksCommittable {
            db: "d".into(),
            table: "t".into(),
            label: "l".into(),
        };
        let json = serde_json::to_value(&c).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"db": "d", "table": "t", "label": "l"})
        );
        assert_eq!(parse_committable(&Committable(json)).unwrap(), c);
        assert!(parse_committable(&Committable(serde_json::json!({"x": 1}))).is_err());
    }
}
