//! The driver: per-table buffers of JSON lines, flushed as Stream Loads by size, row count,
//! interval or checkpoint; loads to different tables run concurrently (at most
//! `sink.flush.queue-size` at once), loads to one table one after another so their order
//! is the order of the changes.
//!
//! # Exactly-once (two-phase commit)
//! Every load is sent with `two_phase_commit: true` and a label derived from the pipeline,
//! the table, the *upcoming* checkpoint and a part number: `{prefix}_{pipeline}_{db}_{table}
//! _{checkpoint}_{part}`. Rows wait in memory until `prepare` (or until a table's buffer
//! exceeds `max-bytes`, which pre-commits an extra part of the same checkpoint). Nothing is
//! visible before `commit`, which the runtime calls only after it recorded the checkpoint
//! with our committables; committing is idempotent ("already committed" is success).
//!
//! On every start the runtime calls `recover(last)` (after committing the last recorded
//! checkpoint again when resuming; `None` on a fresh start, which begins at checkpoint 1).
//! Loads pre-committed after it belong to checkpoint `last + 1` (or 1), whose
//! labels we can compute: before the first load to a table in the new run, we abort its
//! labels `..._{last+1}_0`, `_1`, ... until Doris knows no more. The new run reuses those
//! labels for the replayed rows, which is why they must be aborted first (Doris lets an
//! aborted label be used again); a pre-committed label found *later* in this run is then
//! our own retry, and a committed (FINISHED) one means someone else uses our labels (or an
//! earlier run whose state directory was deleted): the load stops and asks for another
//! `sink.label-prefix` instead of skipping data.
//!
//! # At-least-once (batch mode, the default)
//! Plain loads with a label unique to this run and batch; a retry reuses the label, so a
//! load whose answer was lost (or came later than `sink.properties.timeout`) is not applied
//! twice. `poll_flush` loads buffers older than `sink.buffer-flush.interval` while idle. Replays after a restart rely on the
//! UNIQUE KEY upsert, as in Flink CDC.

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

use crate::config::DorisSinkConfig;
use crate::encoder::{DELETE_SIGN, RowEncoder};
use crate::retry::{LoadVerdict, TxnOp, TxnVerdict, classify_load, classify_txn};
use crate::service::{DorisService, as_answer};

/// The longest a load may wait for an earlier load with its label that is still running.
const MAX_RUNNING_WAIT: Duration = Duration::from_secs(600);
/// Parts of one table and checkpoint probed at most when recovering.
const MAX_PARTS: u32 = 100_000;
/// Longest Doris label.
const MAX_LABEL: usize = 128;

/// What `prepare` hands to the runtime and `commit` gets back.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct DorisCommittable {
    /// Target database.
    pub(crate) db: String,
    /// Target table.
    pub(crate) table: String,
    /// The load's label.
    pub(crate) label: String,
    /// The transaction id, when Doris told it.
    pub(crate) txn_id: Option<i64>,
}

struct TableBuffer {
    schema: Schema,
    encoder: RowEncoder,
    /// UNIQUE KEY table (deletes and key changes apply); DUPLICATE tables only append.
    unique: bool,
    key_indexes: Vec<usize>,
    body: Vec<u8>,
    rows: usize,
    /// When the oldest buffered row arrived.
    since: Option<Instant>,
}

struct LoadJob {
    db: String,
    table: String,
    label: String,
    body: Bytes,
    rows: usize,
    two_phase: bool,
    headers: Vec<(String, String)>,
}

struct LoadDone {
    committable: Option<DorisCommittable>,
    buffer: Option<Vec<u8>>,
}

/// The Doris sink.
pub(crate) struct DorisSink {
    config: Arc<DorisSinkConfig>,
    service: Arc<DorisService>,
    tables: HashMap<TableId, TableBuffer>,
    in_flight: HashMap<TableId, JoinHandle<Result<LoadDone>>>,
    permits: Arc<Semaphore>,
    spare: Vec<Vec<u8>>,
    /// Makes at-least-once labels unique to this run.
    run_id: String,
    seq: u64,
    /// The checkpoint pre-committed parts belong to (2PC).
    next_checkpoint: CheckpointId,
    /// Next part number per table for `next_checkpoint` (2PC).
    parts: HashMap<TableId, u32>,
    /// Parts pre-committed for `next_checkpoint`, in load order per table (2PC).
    pending: Vec<DorisCommittable>,
    /// After a restart: the checkpoint whose leftovers must be aborted per table before
    /// the first load to it, and the tables already cleaned.
    recover_checkpoint: Option<CheckpointId>,
    recovered: HashSet<TableId>,
    /// Loads, bytes, retries and latency, shared with the load tasks.
    stats: Arc<std::sync::Mutex<SinkStats>>,
}

impl DorisSink {
    pub(crate) fn new(config: Arc<DorisSinkConfig>, service: Arc<DorisService>) -> Self {
        let millis = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis());
        Self {
            permits: Arc::new(Semaphore::new(config.max_concurrent_loads)),
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
        self.spare
            .pop()
            .unwrap_or_else(|| Vec::with_capacity(self.config.buffer_size.min(64 * 1024)))
    }

    fn give_back(&mut self, mut buffer: Vec<u8>) {
        let limit = self
            .config
            .buffer_size
            .max(self.config.max_bytes.saturating_mul(2));
        if self.spare.len() < self.config.buffer_count && buffer.capacity() <= limit {
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

    fn two_phase_label(&self, table: &TableId, checkpoint: CheckpointId, part: u32) -> String {
        make_label(&self.label_head(table), &format!("{checkpoint}_{part}"))
    }

    fn batch_label(&mut self, table: &TableId) -> String {
        self.seq += 1;
        let suffix = format!("{}_{}", self.run_id, self.seq);
        make_label(&self.label_head(table), &suffix)
    }

    fn headers(&self, unique: bool, label: &str) -> Vec<(String, String)> {
        let mut h: Vec<(String, String)> = vec![
            ("label".into(), label.into()),
            ("format".into(), "json".into()),
            ("read_json_by_line".into(), "true".into()),
        ];
        if unique && self.config.enable_delete {
            h.push(("hidden_columns".into(), DELETE_SIGN.into()));
        }
        if self.config.two_phase {
            h.push(("two_phase_commit".into(), "true".into()));
        }
        for (k, v) in &self.config.load_headers {
            if k != "format" && k != "read_json_by_line" {
                h.push((k.clone(), v.clone()));
            }
        }
        h
    }

    /// Buffers one row change, loading the table's buffer when it is full.
    async fn write_change(&mut self, e: DataChangeEvent) -> Result<()> {
        let enable_delete = self.config.enable_delete;
        let ignore_update_before = self.config.ignore_update_before;
        let Some(t) = self.tables.get_mut(&e.table_id) else {
            return Err(Error::permanent(
                format!("writing to {}", e.table_id),
                "a row arrived before the table's CreateTable event",
            ));
        };
        let deletes = t.unique && enable_delete;
        let sign = |delete: bool| deletes.then_some(delete);
        let mut added = 0;
        match e.op {
            OperationType::Insert | OperationType::Replace => {
                if let Some(after) = &e.after {
                    t.encoder.encode(&mut t.body, after, sign(false));
                    added += 1;
                }
            }
            OperationType::Update => {
                if let (Some(before), true) = (&e.before, deletes) {
                    // A changed key leaves the old row behind unless it is deleted.
                    let key_changed = e.after.as_ref().is_some_and(|after| {
                        t.key_indexes.iter().any(|&i| before.get(i) != after.get(i))
                    });
                    if key_changed || !ignore_update_before {
                        t.encoder.encode(&mut t.body, before, Some(true));
                        added += 1;
                    }
                }
                if let Some(after) = &e.after {
                    t.encoder.encode(&mut t.body, after, sign(false));
                    added += 1;
                }
            }
            OperationType::Delete => {
                if let (Some(before), true) = (&e.before, deletes) {
                    t.encoder.encode(&mut t.body, before, Some(true));
                    added += 1;
                }
                // DUPLICATE KEY tables cannot delete: the row stays, as in Flink CDC.
            }
        }
        if added == 0 {
            return Ok(());
        }
        t.rows += added;
        t.since.get_or_insert_with(Instant::now);
        let over_bytes = t.body.len() >= self.config.max_bytes;
        let over_rows = t.rows >= self.config.max_rows;
        // In 2PC mode rows wait for the checkpoint; only memory forces an early part.
        if over_bytes || (!self.config.two_phase && over_rows) {
            self.load_table(&e.table_id).await?;
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
        let Some(t) = self.tables.get_mut(table) else {
            return Ok(());
        };
        let body = std::mem::replace(&mut t.body, fresh);
        let rows = std::mem::take(&mut t.rows);
        t.since = None;
        let unique = t.unique;
        let label = if self.config.two_phase {
            let part = self.parts.entry(table.clone()).or_insert(0);
            let n = *part;
            *part += 1;
            self.two_phase_label(table, self.next_checkpoint, n)
        } else {
            self.batch_label(table)
        };
        let job = LoadJob {
            db: table.schema_name().to_string(),
            table: table.table.clone(),
            headers: self.headers(unique, &label),
            label,
            body: Bytes::from(body),
            rows,
            two_phase: self.config.two_phase,
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

    /// Collects loads that ended meanwhile, without waiting for running ones, so their
    /// errors surface (and their buffers return) while the pipeline is idle.
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

    /// Loads every non-empty buffer and waits for all loads.
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

    /// Loads the buffers whose oldest row waited `sink.buffer-flush.interval`.
    async fn load_expired(&mut self) -> Result<()> {
        if self.config.two_phase {
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

    /// After a restart, aborts what an earlier run pre-committed for this table after the
    /// last durable checkpoint, so its labels can be used again.
    async fn recover_table(&mut self, table: &TableId) -> Result<()> {
        let Some(checkpoint) = self.recover_checkpoint else {
            return Ok(());
        };
        if !self.recovered.insert(table.clone()) {
            return Ok(());
        }
        for part in 0..MAX_PARTS {
            let label = self.two_phase_label(table, checkpoint, part);
            let c = DorisCommittable {
                db: table.schema_name().to_string(),
                table: table.table.clone(),
                label,
                txn_id: None,
            };
            match txn_call(&self.service, &self.config, &c, TxnOp::Abort).await? {
                // Never used: later parts were not either.
                TxnVerdict::NotFound => break,
                // Used, but committed or aborted already. Aborted: the label is free again.
                // Committed (an earlier run whose state is gone got past this checkpoint):
                // the load with this label will be refused as FINISHED and stop with the
                // advice to change sink.label-prefix, rather than silently skip data.
                TxnVerdict::NotRunning => {}
                _ => {
                    tracing::info!(label = %c.label, "aborted a load left pre-committed by an earlier run");
                }
            }
        }
        Ok(())
    }

    fn apply_schema_change(&mut self, change: &SchemaChangeEvent) {
        let id = change.table_id().clone();
        match change {
            SchemaChangeEvent::CreateTable { schema, .. } => {
                let unique = !schema.primary_key.is_empty()
                    && schema.primary_key_indexes().len() == schema.primary_key.len();
                let body = self.take_buffer();
                self.tables.insert(
                    id,
                    TableBuffer {
                        encoder: RowEncoder::new(schema, self.config.zone),
                        key_indexes: schema.primary_key_indexes(),
                        schema: schema.clone(),
                        unique,
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

    /// Aborts this table's parts pre-committed for the upcoming checkpoint: a truncate or
    /// drop that follows them removes their rows anyway, and committing them afterwards
    /// would bring the rows back.
    async fn abort_pending_of(&mut self, table: &TableId) -> Result<()> {
        let (drop, keep): (Vec<_>, Vec<_>) = std::mem::take(&mut self.pending)
            .into_iter()
            .partition(|c| c.db == table.schema_name() && c.table == table.table);
        self.pending = keep;
        for c in drop {
            txn_call(&self.service, &self.config, &c, TxnOp::Abort).await?;
        }
        Ok(())
    }
}

/// `head` joined with `_`, then `_suffix`, as a valid Doris label (`[-_A-Za-z0-9:]`, at
/// most 128 characters). Other characters become `_`; when that changed anything or the
/// label is too long, a hash of the original keeps different tables apart.
pub(crate) fn make_label(head: &[String], suffix: &str) -> String {
    let raw = head.join("_");
    let mut clean: String = raw
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | ':') {
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

fn backoff(config: &DorisSinkConfig, attempt: u32) -> Duration {
    Duration::from_millis(200)
        .saturating_mul(1 << attempt.min(10))
        .min(config.check_interval)
}

/// Sends one load until it succeeds, retrying with the same label.
async fn run_load(
    service: &DorisService,
    config: &DorisSinkConfig,
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
        let answer = service
            .stream_load(
                &job.db,
                &job.table,
                &job.headers,
                job.body.clone(),
                config.load_timeout,
            )
            .await;
        match classify_load(as_answer(&answer), job.two_phase) {
            LoadVerdict::Success { txn_id } => {
                drop(answer);
                count(&|s| {
                    s.record_load(job.rows as u64, job.body.len() as u64, started.elapsed());
                });
                let committable = job.two_phase.then(|| DorisCommittable {
                    db: job.db.clone(),
                    table: job.table.clone(),
                    label: job.label.clone(),
                    txn_id,
                });
                let buffer = job.body.try_into_mut().ok().map(Vec::from);
                return Ok(LoadDone {
                    committable,
                    buffer,
                });
            }
            LoadVerdict::Retry {
                reason,
                still_running: true,
            } => {
                if waited >= MAX_RUNNING_WAIT {
                    count(&|s| s.failures += 1);
                    return Err(Error::permanent(context(), reason));
                }
                let pause = backoff(config, 3);
                tokio::time::sleep(pause).await;
                waited += pause;
            }
            LoadVerdict::Retry { reason, .. } => {
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
                tokio::time::sleep(backoff(config, attempt)).await;
            }
            LoadVerdict::Stop { reason, error_url } => {
                count(&|s| s.failures += 1);
                let mut message = reason;
                if let Some(url) = error_url {
                    match service.first_error_line(&url).await {
                        Some(line) => message.push_str(&format!("; first rejected row: {line}")),
                        None => message.push_str(&format!("; rejected rows: {url}")),
                    }
                }
                return Err(Error::permanent(context(), message));
            }
        }
    }
}

/// Commits or aborts one pre-committed load, retrying transient failures.
async fn txn_call(
    service: &DorisService,
    config: &DorisSinkConfig,
    c: &DorisCommittable,
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
                    return Err(Error::transient(context(), reason).into_permanent(&format!(
                        "gave up after {} retries (sink.max-retries)",
                        config.max_retries
                    )));
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
                let by_label = DorisCommittable {
                    txn_id: None,
                    ..c.clone()
                };
                return Box::pin(txn_call(service, config, &by_label, op)).await;
            }
            TxnVerdict::NotFound if op == TxnOp::Commit => {
                return Err(Error::permanent(
                    context(),
                    "Doris knows no such transaction: it expired or was aborted before the commit, so its rows are not in the target",
                )
                .with_hint("restart from an earlier state, or raise the server's transaction timeout"));
            }
            verdict => return Ok(verdict),
        }
    }
}

fn parse_committable(c: &Committable) -> Result<DorisCommittable> {
    serde_json::from_value(c.0.clone()).map_err(|e| {
        Error::permanent(
            "reading a Doris committable from the checkpoint",
            format!("{e}: {}", c.0),
        )
    })
}

#[async_trait]
impl Sink for DorisSink {
    /// Finds the BEs to load into (without `benodes` and `auto-redirect`), retrying
    /// transient failures like a load.
    async fn open(&mut self) -> Result<()> {
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
                        self.abort_pending_of(&id).await?;
                    }
                    self.apply_schema_change(&change);
                }
            }
        }
        self.load_expired().await
    }

    /// At-least-once: loads everything and waits. 2PC: pre-commits everything as parts of
    /// the upcoming checkpoint (durable, not yet visible).
    async fn flush(&mut self) -> Result<()> {
        self.load_all().await
    }

    async fn prepare(&mut self, checkpoint: CheckpointId) -> Result<Vec<Committable>> {
        if !self.config.two_phase {
            self.load_all().await?;
            return Ok(Vec::new());
        }
        if checkpoint > self.next_checkpoint {
            self.next_checkpoint = checkpoint;
        }
        self.load_all().await?;
        let prepared = std::mem::take(&mut self.pending);
        self.parts.clear();
        self.next_checkpoint = checkpoint.next();
        prepared
            .into_iter()
            .map(|c| {
                serde_json::to_value(&c)
                    .map(Committable)
                    .map_err(|e| Error::permanent("encoding a Doris committable", e.to_string()))
            })
            .collect()
    }

    async fn commit(&mut self, committables: Vec<Committable>) -> Result<()> {
        for c in &committables {
            let c = parse_committable(c)?;
            txn_call(&self.service, &self.config, &c, TxnOp::Commit).await?;
        }
        Ok(())
    }

    async fn abort(&mut self, committables: Vec<Committable>) -> Result<()> {
        for c in &committables {
            let c = parse_committable(c)?;
            txn_call(&self.service, &self.config, &c, TxnOp::Abort).await?;
        }
        Ok(())
    }

    async fn recover(&mut self, last: Option<CheckpointId>) -> Result<()> {
        if !self.config.two_phase {
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

    /// At-least-once: loads the tables whose oldest buffered row waited
    /// `sink.buffer-flush.interval`, also when no rows arrive. 2PC: nothing becomes visible
    /// before the checkpoint, so buffers wait (`max-bytes` is enforced as rows arrive).
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
        assert!(odd.ends_with("_3_0"));
        assert_eq!(
            odd,
            make_label(&head("Flink CDC Pipeline Job", "shop", "orders"), "3_0")
        );
        // Names that clean to the same text still get different labels.
        assert_ne!(
            make_label(&head("p", "db", "a.b"), "1_0"),
            make_label(&head("p", "db", "a b"), "1_0")
        );
        let long = make_label(&head("p", "db", &"x".repeat(300)), "12345_7");
        assert!(long.len() <= 128, "{}", long.len());
        assert!(long.ends_with("_12345_7"));
        let re = regex::Regex::new("^[-_A-Za-z0-9:]{1,128}$").unwrap();
        for l in [odd, long, make_label(&head("p", "数据", "表"), "1_0")] {
            assert!(re.is_match(&l), "{l}");
        }
    }

    fn sink(pairs: &[(&str, &str)]) -> DorisSink {
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
        DorisSink::new(config, Arc::new(service))
    }

    /// The full Stream Load header set, as sent.
    #[test]
    fn request_headers() {
        let owned = |h: &[(&str, &str)]| -> Vec<(String, String)> {
            h.iter().map(|(k, v)| ((*k).into(), (*v).into())).collect()
        };
        assert_eq!(
            sink(&[]).headers(true, "l1"),
            owned(&[
                ("label", "l1"),
                ("format", "json"),
                ("read_json_by_line", "true"),
                ("hidden_columns", "__DORIS_DELETE_SIGN__"),
            ])
        );
        // DUPLICATE tables cannot delete; 2PC and extra properties are passed on.
        assert_eq!(
            sink(&[
                ("sink.enable-2pc", "true"),
                ("sink.properties.timeout", "30"),
                ("sink.properties.strict_mode", "true"),
            ])
            .headers(false, "l2"),
            owned(&[
                ("label", "l2"),
                ("format", "json"),
                ("read_json_by_line", "true"),
                ("two_phase_commit", "true"),
                ("strict_mode", "true"),
                ("timeout", "30"),
            ])
        );
        assert_eq!(
            sink(&[("sink.enable-delete", "false")])
                .headers(true, "l3")
                .len(),
            3
        );
    }

    #[test]
    fn labels_of_a_pipeline_table_and_checkpoint() {
        let s = sink(&[("sink.label-prefix", "pre")]);
        let t = TableId::new("shop", "orders");
        assert_eq!(
            s.two_phase_label(&t, CheckpointId(7), 2),
            "pre_p_shop_orders_7_2"
        );
    }

    #[test]
    fn committables_round_trip() {
        let c = DorisCommittable {
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
        assert_eq!(parse_committable(&Committable(json)).unwrap(), c);
        assert!(parse_committable(&Committable(serde_json::json!({"x": 1}))).is_err());
    }
}
