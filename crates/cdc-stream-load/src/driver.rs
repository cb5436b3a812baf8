//! The Stream Load driver both sinks run: per-table buffers, loads in flight, labels,
//! retries with the same label, recovery by label, the prepare / commit / abort bookkeeping
//! of exactly-once delivery, and a memory bound. What differs between Doris and StarRocks
//! (the HTTP calls, the row encoding, the label alphabet) sits behind [`LoadProtocol`].
//!
//! # Order and concurrency
//! Rows wait in one buffer per table. Loads to different tables run concurrently (at most
//! [`DriverConfig::max_concurrent_loads`]); loads to one table one after another, so their
//! order is the order of the changes.
//!
//! # Exactly-once
//! Rows wait until [`Sink::prepare`], which loads every buffer as a *prepared* (durable,
//! invisible) transaction labelled `{prefix}_{pipeline}_{db}_{table}_{epoch}_{checkpoint}
//! _{part}` for the upcoming checkpoint; a table buffer over
//! [`DriverConfig::table_max_bytes`] (or all buffers together over
//! [`DriverConfig::total_max_bytes`]) prepares an extra part early. The runtime commits
//! the parts only after it recorded them in a durable checkpoint. The label carries the
//! run's owner epoch, so no run ever reuses, adopts or aborts another run's label: a
//! prepared label found again while retrying is this run's own earlier attempt.
//!
//! On start, [`Sink::recover`] names the checkpoint after the last durable one and the
//! earlier runs that may have prepared parts for it. Before the first load to a table,
//! and for every table known at the first checkpoint, their labels `_{epoch}_{next}_0`,
//! `_1`, ... are aborted until the target knows no more, so nothing stays prepared until
//! the server's timeout. A prepare that fails aborts what it prepared.
//!
//! # At-least-once
//! Each load is visible at once, labelled uniquely for this run; a retry reuses the label,
//! so a load whose answer was lost is not applied twice. Buffers are loaded by size, row
//! count, age ([`DriverConfig::flush_interval`], also while idle) and at every checkpoint.
//!
//! Except while the source reads a snapshot ([`Sink::source_snapshotting`]): then rows are
//! prepared and committed with their checkpoint, exactly as in exactly-once mode, because
//! after a crash mid-snapshot the source reads the unfinished key ranges again at a later
//! position, and a visible row the source deleted meanwhile would stay. When the snapshot
//! ends, what is buffered is prepared into the next checkpoint and loads turn visible only
//! after that checkpoint's commit, so no visible load overtakes a prepared one of the same
//! table.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use cdc_api::{
    CheckpointId, Committable, DataChangeEvent, Error, Event, OwnerEpoch, Recovery, Result, Schema,
    SchemaChangeEvent, Sink, SinkStats, TableId,
};
use serde::{Deserialize, Serialize};
use tokio::sync::Semaphore;
use tokio::task::JoinHandle;
use tokio::time::Instant;

use crate::dead_letter::{BatchOrigin, DeadLetterFile, Rejected, letters, parse_error_log};
use crate::label::LabelScheme;

/// The longest a load waits for an earlier job with its label that is still running.
const MAX_RUNNING_WAIT: Duration = Duration::from_secs(600);
/// Parts of one table, run and checkpoint probed at most when recovering.
const MAX_PARTS: u32 = 100_000;

/// How the driver buffers, labels and retries.
#[derive(Debug, Clone)]
pub struct DriverConfig {
    /// The target's name for messages (`Doris`).
    pub target: &'static str,
    /// How labels are spelt.
    pub labels: LabelScheme,
    /// Prepare at checkpoints and commit after them (else every load is visible at once).
    pub exactly_once: bool,
    /// A table's buffer is loaded when it reaches this many bytes.
    pub table_max_bytes: usize,
    /// The largest buffer is loaded when all together reach this many bytes.
    pub total_max_bytes: usize,
    /// At-least-once: a table's buffer is loaded when it holds this many rows.
    pub max_rows: usize,
    /// At-least-once: a buffer is loaded when its oldest row waited this long.
    pub flush_interval: Duration,
    /// Loads in flight at once, over all tables.
    pub max_concurrent_loads: usize,
    /// Failed attempts retried per call before giving up.
    pub max_retries: u32,
    /// The longest pause between attempts.
    pub max_backoff: Duration,
    /// Emptied buffers kept for reuse.
    pub spare_buffers: usize,
    /// The capacity a new buffer starts with.
    pub initial_buffer: usize,
    /// The largest emptied buffer kept for reuse.
    pub max_spare_capacity: usize,
    /// `sink.dead-letter.path`: where rows the target rejects (filters) go; `None` stops
    /// the pipeline on them, as loads are then sent without a filter ratio.
    pub dead_letters: Option<Arc<DeadLetterFile>>,
}

impl DriverConfig {
    /// The pause before attempt `attempt` (see [`backoff`]).
    pub fn backoff(&self, attempt: u32) -> Duration {
        backoff(attempt, self.max_backoff)
    }
}

/// The pause before retry `attempt` of a call to the target: exponential from 200 ms, at
/// most `max`. Used for loads and for every protocol call the sinks retry.
pub fn backoff(attempt: u32, max: Duration) -> Duration {
    Duration::from_millis(200)
        .saturating_mul(1 << attempt.min(10))
        .min(max)
}

/// How a batch is to be loaded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LoadMode {
    /// Visible when the load returns (at-least-once).
    Visible,
    /// Prepared (durable, invisible) until committed (exactly-once).
    Prepare,
}

/// One batch of rows for one table.
#[derive(Debug)]
pub struct LoadJob {
    /// Target database.
    pub db: String,
    /// Target table.
    pub table: String,
    /// The label, the same for every attempt.
    pub label: String,
    /// The encoded rows, finished by [`TableEncoder::finish`].
    pub body: Bytes,
    /// Rows in the body.
    pub rows: usize,
    /// Whether the table has a key (so deletes and upserts apply).
    pub keyed: bool,
    /// Visible or prepared.
    pub mode: LoadMode,
    /// The checkpoint whose completion covers the batch: the one it is prepared for, or
    /// for a visible load the next one.
    pub checkpoint: CheckpointId,
    /// The `op_ts` metadata (source commit time) of the batch's first and last change,
    /// when the source attached it.
    pub source_op_ts: Option<(String, String)>,
}

/// What one attempt of a load came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Attempt {
    /// Loaded (or prepared); the transaction id when the target told it.
    Loaded {
        /// The target's transaction id, when known.
        txn_id: Option<i64>,
        /// Rows the target filtered out of the load (possible only with a
        /// `max_filter_ratio`), as its answer said.
        rejected: Option<Rejected>,
    },
    /// Failed in a way another attempt with the same label may fix.
    Retry(String),
    /// An earlier attempt with this label is still running: wait (not a failed attempt).
    Running(String),
    /// Retrying cannot help.
    Stop {
        /// Why, for the user.
        reason: String,
        /// Where the target lists the rejected rows, when it said.
        error_url: Option<String>,
    },
}

/// What aborting a label of an earlier run found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Leftover {
    /// The target never saw the label: later parts were not used either.
    Unknown,
    /// It was prepared and is aborted now.
    Aborted,
    /// It was committed or aborted before (the target does not say which).
    Settled,
    /// It was committed: the state is older than the target.
    Committed,
}

/// A prepared load: what a checkpoint records and commit or abort gets back.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PreparedLoad {
    /// Target database.
    pub db: String,
    /// Target table.
    pub table: String,
    /// The load's label.
    pub label: String,
    /// The transaction id, when the target told it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub txn_id: Option<i64>,
}

impl PreparedLoad {
    /// Reads one back from a checkpoint.
    ///
    /// # Errors
    /// When the committable was not written by this driver.
    pub fn parse(c: &Committable, target: &str) -> Result<Self> {
        serde_json::from_value(c.0.clone()).map_err(|e| {
            Error::permanent(
                format!("reading a {target} committable from the checkpoint"),
                format!("{e}: {}", c.0),
            )
        })
    }

    fn to_committable(&self) -> Result<Committable> {
        serde_json::to_value(self)
            .map(Committable)
            .map_err(|e| Error::permanent("encoding a committable", e.to_string()))
    }
}

/// Turns one table's row changes into the target's body format.
pub trait TableEncoder: Send + 'static {
    /// Appends what `change` means for the target; returns how many rows it appended (0
    /// when nothing applies, e.g. a delete in a table that cannot delete).
    fn encode(&mut self, body: &mut Vec<u8>, change: &DataChangeEvent) -> usize;

    /// Completes a body before it is sent (e.g. closes a JSON array). Default: nothing.
    fn finish(&self, body: &mut Vec<u8>) {
        let _ = body;
    }
}

/// The calls that differ between targets. Each call does its own retries of transient
/// failures where noted; the driver retries [`attempt`](Self::attempt).
#[async_trait]
pub trait LoadProtocol: Send + Sync + 'static {
    /// The row encoder of one table.
    type Encoder: TableEncoder;

    /// An encoder for a table with this schema.
    fn encoder(&self, schema: &Schema) -> Self::Encoder;

    /// Connects or checks the target before anything else. Default: nothing.
    async fn open(&self) -> Result<()> {
        Ok(())
    }

    /// One attempt to load (or prepare) `job`.
    async fn attempt(&self, job: &LoadJob) -> Attempt;

    /// After a failed attempt, before the next one or before giving up: frees what the
    /// attempt may have left half done (e.g. a begun transaction). Best effort. Default:
    /// nothing.
    async fn discard(&self, job: &LoadJob) {
        let _ = job;
    }

    /// The error log at `error_url` (one line per rejected row), fetched safely and
    /// bounded ([`crate::http::fetch_error_log`]), or why it cannot be read.
    async fn error_log(&self, error_url: &str) -> std::result::Result<String, String>;

    /// Commits a prepared load, idempotently (committed already is success), retrying
    /// transient failures. A load the target aborted or forgot before the commit is
    /// [`Error::TransactionLost`].
    async fn commit(&self, load: &PreparedLoad) -> Result<()>;

    /// Aborts a prepared load (aborted already or unknown is success), retrying transient
    /// failures.
    async fn abort(&self, load: &PreparedLoad) -> Result<()>;

    /// Aborts whatever the label `label` of an earlier run left prepared.
    async fn abort_leftover(&self, db: &str, table: &str, label: &str) -> Result<Leftover>;
}

struct TableBuffer<E> {
    schema: Schema,
    encoder: E,
    keyed: bool,
    body: Vec<u8>,
    rows: usize,
    /// When the oldest buffered row arrived.
    since: Option<Instant>,
    /// `op_ts` of the first and last buffered change, when the source attached it.
    op_ts: Option<(String, String)>,
}

struct LoadDone {
    prepared: Option<PreparedLoad>,
    buffer: Option<Vec<u8>>,
}

/// A [`Sink`] loading into Doris or StarRocks through a [`LoadProtocol`].
pub struct StreamLoadSink<P: LoadProtocol> {
    protocol: Arc<P>,
    config: Arc<DriverConfig>,
    tables: HashMap<TableId, TableBuffer<P::Encoder>>,
    /// Bytes in all table buffers.
    buffered: usize,
    in_flight: HashMap<TableId, JoinHandle<Result<LoadDone>>>,
    permits: Arc<Semaphore>,
    spare: Vec<Vec<u8>>,
    /// This run's owner epoch, in every label.
    epoch: OwnerEpoch,
    /// At-least-once loads started in this run.
    seq: u64,
    /// The checkpoint prepared parts belong to (exactly-once).
    next_checkpoint: CheckpointId,
    /// Next part number per table for `next_checkpoint`.
    parts: HashMap<TableId, u32>,
    /// Parts prepared for `next_checkpoint`, in load order per table.
    pending: Vec<PreparedLoad>,
    /// At-least-once: rows are prepared and committed at checkpoints (the source reads a
    /// snapshot, or one ended and its last checkpoint is not committed yet).
    holding: bool,
    /// At-least-once: the snapshot ended; loads turn visible after the next commit.
    release_after_commit: bool,
    /// After a restart: the earlier runs whose parts for `next_checkpoint` must be aborted
    /// per table, and the tables already cleaned.
    leftovers_of: Vec<OwnerEpoch>,
    recovered: HashSet<TableId>,
    /// Loads, bytes, retries and latency, shared with the load tasks.
    stats: Arc<Mutex<SinkStats>>,
}

impl<P: LoadProtocol> StreamLoadSink<P> {
    /// A driver for `protocol`. Until [`Sink::recover`] names this run's epoch, labels use
    /// one from the clock.
    pub fn new(protocol: Arc<P>, config: DriverConfig) -> Self {
        let millis = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(1, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
        Self {
            permits: Arc::new(Semaphore::new(config.max_concurrent_loads.max(1))),
            config: Arc::new(config),
            protocol,
            tables: HashMap::new(),
            buffered: 0,
            in_flight: HashMap::new(),
            spare: Vec::new(),
            epoch: OwnerEpoch(millis),
            seq: 0,
            next_checkpoint: CheckpointId(1),
            parts: HashMap::new(),
            pending: Vec::new(),
            // Until the runtime says the source only streams, the safe side.
            holding: true,
            release_after_commit: false,
            leftovers_of: Vec::new(),
            recovered: HashSet::new(),
            stats: Arc::default(),
        }
    }

    /// The driver's settings.
    pub fn config(&self) -> &DriverConfig {
        &self.config
    }

    /// Whether loads are prepared for the upcoming checkpoint (rather than visible at once).
    fn prepares(&self) -> bool {
        self.config.exactly_once || self.holding
    }

    fn take_buffer(&mut self) -> Vec<u8> {
        self.spare
            .pop()
            .unwrap_or_else(|| Vec::with_capacity(self.config.initial_buffer))
    }

    fn give_back(&mut self, mut buffer: Vec<u8>) {
        if self.spare.len() < self.config.spare_buffers
            && buffer.capacity() <= self.config.max_spare_capacity
        {
            buffer.clear();
            self.spare.push(buffer);
        }
    }

    /// Buffers one row change; loads the table's buffer when it is full, or the largest
    /// buffer when all together are.
    async fn write_change(&mut self, e: DataChangeEvent) -> Result<()> {
        let Some(t) = self.tables.get_mut(&e.table_id) else {
            return Err(Error::permanent(
                format!("writing to {}", e.table_id),
                "a row arrived before the table's CreateTable event",
            ));
        };
        let before = t.body.len();
        let added = t.encoder.encode(&mut t.body, &e);
        self.buffered += t.body.len() - before;
        if added == 0 {
            return Ok(());
        }
        t.rows += added;
        t.since.get_or_insert_with(Instant::now);
        if let Some(ts) = e.meta.get("op_ts") {
            match &mut t.op_ts {
                Some((_, last)) => last.clone_from(ts),
                None => t.op_ts = Some((ts.clone(), ts.clone())),
            }
        }
        let over_bytes = t.body.len() >= self.config.table_max_bytes;
        // Prepared rows wait for the checkpoint; only memory forces an early part.
        let over_rows =
            !(self.config.exactly_once || self.holding) && t.rows >= self.config.max_rows;
        if over_bytes || over_rows {
            self.load_table(&e.table_id).await?;
        } else if self.buffered >= self.config.total_max_bytes {
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
        let Some(t) = self.tables.get_mut(table) else {
            return Ok(());
        };
        let mut body = std::mem::replace(&mut t.body, fresh);
        self.buffered = self.buffered.saturating_sub(body.len());
        t.encoder.finish(&mut body);
        let rows = std::mem::take(&mut t.rows);
        t.since = None;
        let source_op_ts = t.op_ts.take();
        let keyed = t.keyed;
        let (db, name) = (table.schema_name(), table.table.as_str());
        let (label, mode) = if self.prepares() {
            let part = self.parts.entry(table.clone()).or_insert(0);
            let n = *part;
            *part += 1;
            let label =
                self.config
                    .labels
                    .checkpoint_label(db, name, self.epoch, self.next_checkpoint, n);
            (label, LoadMode::Prepare)
        } else {
            self.seq += 1;
            let label = self
                .config
                .labels
                .batch_label(db, name, self.epoch, self.seq);
            (label, LoadMode::Visible)
        };
        let job = LoadJob {
            db: db.to_string(),
            table: name.to_string(),
            label,
            body: Bytes::from(body),
            rows,
            keyed,
            mode,
            checkpoint: self.next_checkpoint,
            source_op_ts,
        };
        let permit = Arc::clone(&self.permits)
            .acquire_owned()
            .await
            .map_err(|_| Error::Cancelled)?;
        let protocol = Arc::clone(&self.protocol);
        let config = Arc::clone(&self.config);
        let stats = Arc::clone(&self.stats);
        let handle = tokio::spawn(async move {
            let result = run_load(protocol.as_ref(), &config, job, &stats).await;
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
        if let Some(p) = done.prepared {
            self.pending.push(p);
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
        let mut started = Ok(());
        for t in tables {
            started = self.load_table(&t).await;
            if started.is_err() {
                break;
            }
        }
        // Also after a failed start: what is in flight must be collected (and, when
        // prepared, aborted by the caller).
        let waited = self.wait_all().await;
        started.and(waited)
    }

    /// At-least-once: loads the buffers whose oldest row waited the flush interval.
    async fn load_expired(&mut self) -> Result<()> {
        if self.prepares() {
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

    /// After a restart, aborts what earlier runs prepared for this table for the upcoming
    /// checkpoint, so it does not hold the target's resources until its timeout.
    async fn recover_table(&mut self, table: &TableId) -> Result<()> {
        if self.leftovers_of.is_empty() || !self.recovered.insert(table.clone()) {
            return Ok(());
        }
        let (db, name) = (table.schema_name(), table.table.as_str());
        for &epoch in &self.leftovers_of {
            for part in 0..MAX_PARTS {
                let label = self.config.labels.checkpoint_label(
                    db,
                    name,
                    epoch,
                    self.next_checkpoint,
                    part,
                );
                match self.protocol.abort_leftover(db, name, &label).await? {
                    Leftover::Unknown => break,
                    Leftover::Aborted => {
                        tracing::info!(%label, "aborted a load an earlier run left prepared");
                    }
                    Leftover::Settled => {}
                    Leftover::Committed => {
                        tracing::warn!(%label, checkpoint = %self.next_checkpoint, "a load of an earlier run for this checkpoint is committed, although the state's last checkpoint is before it: the state is older than the target (restored from a copy?); rows after that checkpoint may arrive twice in tables without a key");
                    }
                }
            }
        }
        Ok(())
    }

    fn apply_schema_change(&mut self, change: &SchemaChangeEvent) {
        let id = change.table_id().clone();
        match change {
            SchemaChangeEvent::CreateTable { schema, .. } => {
                let body = self.take_buffer();
                let old = self.tables.insert(
                    id,
                    TableBuffer {
                        encoder: self.protocol.encoder(schema),
                        keyed: is_keyed(schema),
                        schema: schema.clone(),
                        body,
                        rows: 0,
                        since: None,
                        op_ts: None,
                    },
                );
                if let Some(old) = old {
                    self.buffered = self.buffered.saturating_sub(old.body.len());
                }
            }
            SchemaChangeEvent::DropTable { .. } => {
                if let Some(old) = self.tables.remove(&id) {
                    self.buffered = self.buffered.saturating_sub(old.body.len());
                }
            }
            SchemaChangeEvent::TruncateTable { .. } => {}
            other => {
                if let Some(t) = self.tables.get_mut(&id) {
                    match other.apply_to(&t.schema) {
                        Ok(next) => {
                            t.encoder = self.protocol.encoder(&next);
                            t.keyed = is_keyed(&next);
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

    /// Aborts this table's parts prepared for the upcoming checkpoint: a truncate or drop
    /// that follows removes their rows anyway, and committing them afterwards would bring
    /// the rows back.
    async fn abort_pending_of(&mut self, table: &TableId) -> Result<()> {
        let (drop, keep): (Vec<_>, Vec<_>) = std::mem::take(&mut self.pending)
            .into_iter()
            .partition(|c| c.db == table.schema_name() && c.table == table.table);
        self.pending = keep;
        for c in drop {
            self.protocol.abort(&c).await?;
        }
        Ok(())
    }

    /// After a failed prepare: aborts the parts it prepared, so none waits for the
    /// server's timeout (the checkpoint that would have named them is never written).
    async fn abort_all_pending(&mut self) {
        for c in std::mem::take(&mut self.pending) {
            if let Err(e) = self.protocol.abort(&c).await {
                tracing::warn!(label = %c.label, error = %e, "cannot abort a part of a failed checkpoint; the target's transaction timeout will");
            }
        }
        self.parts.clear();
    }
}

/// Whether every primary key column is in the schema (deletes and upserts apply).
pub fn is_keyed(schema: &Schema) -> bool {
    !schema.primary_key.is_empty() && schema.primary_key_indexes().len() == schema.primary_key.len()
}

/// Sends one batch until it is loaded (or prepared), retrying with the same label.
async fn run_load<P: LoadProtocol>(
    protocol: &P,
    config: &DriverConfig,
    job: LoadJob,
    stats: &Mutex<SinkStats>,
) -> Result<LoadDone> {
    let started = Instant::now();
    let count = |update: &dyn Fn(&mut SinkStats)| {
        update(&mut stats.lock().unwrap_or_else(PoisonError::into_inner));
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
        match protocol.attempt(&job).await {
            Attempt::Loaded { txn_id, rejected } => {
                count(&|s| {
                    s.record_load(job.rows as u64, job.body.len() as u64, started.elapsed());
                });
                let prepared = (job.mode == LoadMode::Prepare).then(|| PreparedLoad {
                    db: job.db.clone(),
                    table: job.table.clone(),
                    label: job.label.clone(),
                    txn_id,
                });
                if let Some(rejected) = rejected.filter(|r| r.rows > 0) {
                    if let Err(e) = route_rejected(protocol, config, &job, &rejected, stats).await {
                        // The checkpoint that would name the prepared load is never
                        // written: free it now rather than at the server's timeout.
                        if let Some(p) = &prepared {
                            if let Err(abort) = protocol.abort(p).await {
                                tracing::warn!(label = %p.label, error = %abort, "cannot abort the load whose dead letters could not be written; the target's transaction timeout will");
                            }
                        }
                        return Err(e);
                    }
                }
                let buffer = job.body.try_into_mut().ok().map(Vec::from);
                return Ok(LoadDone { prepared, buffer });
            }
            Attempt::Running(reason) => {
                if waited >= MAX_RUNNING_WAIT {
                    count(&|s| s.failures += 1);
                    return Err(Error::permanent(context(), reason));
                }
                let pause = config.backoff(3);
                tokio::time::sleep(pause).await;
                waited += pause;
            }
            Attempt::Retry(reason) => {
                attempt += 1;
                if attempt > config.max_retries {
                    count(&|s| s.failures += 1);
                    protocol.discard(&job).await;
                    return Err(
                        Error::transient(context(), reason).retries_exhausted(&format!(
                            "gave up after {} retries (sink.max-retries)",
                            config.max_retries
                        )),
                    );
                }
                count(&|s| s.retries += 1);
                tracing::warn!(label = %job.label, attempt, %reason, "load failed; retrying with the same label");
                protocol.discard(&job).await;
                tokio::time::sleep(config.backoff(attempt)).await;
            }
            Attempt::Stop { reason, error_url } => {
                count(&|s| s.failures += 1);
                protocol.discard(&job).await;
                let mut message = reason;
                if let Some(url) = error_url {
                    let first = protocol
                        .error_log(&url)
                        .await
                        .ok()
                        .and_then(|log| crate::http::first_line(&log));
                    match first {
                        Some(line) => message.push_str(&format!("; first rejected row: {line}")),
                        None => message.push_str(&format!("; rejected rows: {url}")),
                    }
                }
                return Err(Error::permanent(context(), message));
            }
        }
    }
}

/// A load succeeded but the target filtered some of its rows: counts them per table, logs
/// one warning for the batch, and with `sink.dead-letter.path` writes them there (fsynced)
/// before the load counts as done. Without a dead-letter file the rows were filtered by a
/// `max_filter_ratio` the user set: they are counted and logged only.
async fn route_rejected<P: LoadProtocol>(
    protocol: &P,
    config: &DriverConfig,
    job: &LoadJob,
    rejected: &Rejected,
    stats: &Mutex<SinkStats>,
) -> Result<()> {
    let table = format!("{}.{}", job.db, job.table);
    {
        let mut s = stats.lock().unwrap_or_else(PoisonError::into_inner);
        *s.rejected_rows.entry(table.clone()).or_insert(0) += rejected.rows;
    }
    let Some(file) = &config.dead_letters else {
        tracing::warn!(
            table = %table,
            label = %job.label,
            rejected = rejected.rows,
            error_url = rejected.error_url.as_deref().unwrap_or("none"),
            "the target filtered rows of a load (sink.properties.max_filter_ratio allows it); they are not loaded"
        );
        return Ok(());
    };
    let (listed, detail_error) = match &rejected.error_url {
        Some(url) => match protocol.error_log(url).await {
            Ok(log) => (parse_error_log(&log), None),
            Err(e) => (Vec::new(), Some(e)),
        },
        None => (Vec::new(), None),
    };
    let origin = BatchOrigin {
        target: config.target,
        db: &job.db,
        table: &job.table,
        label: &job.label,
        checkpoint: job.checkpoint.0,
        prepared: job.mode == LoadMode::Prepare,
        source_op_ts: job.source_op_ts.clone(),
    };
    let out = letters(&origin, rejected, &listed, detail_error.as_deref());
    let first_reason = listed.first().map_or_else(
        || detail_error.clone().unwrap_or_default(),
        |r| r.reason.clone(),
    );
    let writer = Arc::clone(file);
    let path = file.path().display().to_string();
    let written = tokio::task::spawn_blocking(move || writer.append(&out))
        .await
        .map_err(|e| e.to_string())
        .and_then(|r| r.map_err(|e| e.to_string()));
    if let Err(e) = written {
        return Err(Error::permanent(
            format!(
                "writing {} rejected rows of {table} (label {}) to the dead-letter file {path}",
                rejected.rows, job.label
            ),
            format!("{e}; the load is not counted as done, so the rows are not lost"),
        ));
    }
    tracing::warn!(
        table = %table,
        label = %job.label,
        checkpoint = %job.checkpoint,
        rejected = rejected.rows,
        reason = %first_reason,
        dead_letters = %path,
        "the target rejected rows of a load; they are in the dead-letter file, the other rows are loaded"
    );
    Ok(())
}

#[async_trait]
impl<P: LoadProtocol> Sink for StreamLoadSink<P> {
    async fn open(&mut self) -> Result<()> {
        let guarantee = if self.config.exactly_once {
            "exactly-once (rows are committed only after the checkpoint that covers them)"
        } else {
            "at-least-once (rows are visible when loaded; a restart may load some again)"
        };
        tracing::info!(
            target_system = self.config.target,
            "sink delivery: {guarantee}"
        );
        self.protocol.open().await
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

    /// At-least-once: loads everything and waits. Exactly-once: prepares everything as
    /// parts of the upcoming checkpoint (durable, not yet visible).
    async fn flush(&mut self) -> Result<()> {
        self.load_all().await
    }

    async fn prepare(&mut self, checkpoint: CheckpointId) -> Result<Vec<Committable>> {
        // A table this run has not loaded yet may still hold parts an earlier run prepared
        // for this checkpoint. Once it is recorded, the next restart probes later labels
        // only, so they would stay prepared until the server's timeout: free them now.
        let unrecovered: Vec<TableId> = self
            .tables
            .keys()
            .filter(|t| !self.recovered.contains(*t))
            .cloned()
            .collect();
        for t in unrecovered {
            self.recover_table(&t).await?;
        }
        if checkpoint > self.next_checkpoint {
            self.next_checkpoint = checkpoint;
        }
        if !self.prepares() && self.pending.is_empty() {
            // At-least-once while streaming: everything visible, nothing to commit.
            self.load_all().await?;
            self.next_checkpoint = checkpoint.next();
            self.leftovers_of.clear();
            return Ok(Vec::new());
        }
        if let Err(e) = self.load_all().await {
            self.abort_all_pending().await;
            return Err(e);
        }
        let prepared = std::mem::take(&mut self.pending);
        self.parts.clear();
        self.next_checkpoint = checkpoint.next();
        // Later checkpoints' labels were never used by earlier runs.
        self.leftovers_of.clear();
        prepared.iter().map(PreparedLoad::to_committable).collect()
    }

    async fn commit(&mut self, committables: Vec<Committable>) -> Result<()> {
        for c in &committables {
            let load = PreparedLoad::parse(c, self.config.target)?;
            self.protocol.commit(&load).await?;
        }
        // Everything prepared before the snapshot ended is visible now: later loads may be
        // visible at once without overtaking it.
        if self.release_after_commit && self.pending.is_empty() {
            self.release_after_commit = false;
            self.holding = false;
            tracing::info!(
                "the snapshot is committed: at-least-once loads are visible at once from here on"
            );
        }
        Ok(())
    }

    async fn abort(&mut self, committables: Vec<Committable>) -> Result<()> {
        for c in &committables {
            let load = PreparedLoad::parse(c, self.config.target)?;
            self.protocol.abort(&load).await?;
        }
        Ok(())
    }

    async fn recover(&mut self, recovery: &Recovery) -> Result<()> {
        self.epoch = recovery.epoch;
        self.next_checkpoint = recovery.next_checkpoint();
        // At-least-once runs prepare too, while a snapshot is read.
        self.leftovers_of.clone_from(&recovery.earlier);
        self.recovered.clear();
        let known: Vec<TableId> = self.tables.keys().cloned().collect();
        for t in known {
            self.recover_table(&t).await?;
        }
        Ok(())
    }

    async fn source_snapshotting(&mut self, active: bool) -> Result<()> {
        if self.config.exactly_once {
            return Ok(());
        }
        if active {
            if !self.holding {
                tracing::info!(
                    "the source reads a snapshot: at-least-once rows wait for their checkpoint"
                );
            }
            self.holding = true;
            self.release_after_commit = false;
        } else if self.holding {
            let nothing_held = self.pending.is_empty()
                && self.in_flight.is_empty()
                && self.tables.values().all(|t| t.rows == 0);
            if nothing_held {
                // Everything prepared so far is committed (the runtime commits right after
                // each prepare): visible loads cannot overtake anything.
                self.holding = false;
                self.release_after_commit = false;
            } else {
                // Rows of the snapshot still buffered join the next checkpoint's parts;
                // loads turn visible once it is committed.
                self.release_after_commit = true;
            }
        }
        Ok(())
    }

    fn stats(&self) -> SinkStats {
        self.stats
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// At-least-once: loads the tables whose oldest buffered row waited the flush
    /// interval, also when no rows arrive. Exactly-once: buffers wait for the checkpoint.
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

/// The pipeline's `checkpoint.interval` (10 s when unset or unreadable: the runtime
/// refuses an unreadable one with its own message).
pub fn checkpoint_interval(pipeline: &cdc_api::Options) -> Duration {
    pipeline
        .get_raw("checkpoint.interval")
        .and_then(|t| cdc_api::parse_duration(t).ok())
        .unwrap_or(Duration::from_secs(10))
}

/// Refuses an exactly-once sink whose prepared transactions would expire before the
/// checkpoint that commits them: a part prepared early waits up to one checkpoint interval
/// (plus the time the checkpoint itself takes) for its commit.
///
/// # Errors
/// When `interval` is not at most half of `timeout`, naming both numbers and `option`.
pub fn check_interval_fits(
    interval: Duration,
    timeout: Duration,
    option: &str,
    what: &str,
) -> Result<()> {
    if interval.saturating_mul(2) <= timeout {
        return Ok(());
    }
    Err(Error::invalid_option(
        option,
        format!(
            "pipeline.checkpoint.interval is {} s, but {what} is {} s: a transaction prepared early in a checkpoint would expire before the checkpoint commits it. Keep the interval at most half the timeout: shorten checkpoint.interval or raise the timeout",
            interval.as_secs_f64(),
            timeout.as_secs()
        ),
    ))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use cdc_api::{Column, DataType, DataTypeKind, Value};
    use std::path::PathBuf;

    /// A target that records every call; loads into `fail_tables` fail for good.
    #[derive(Default)]
    struct Recorder {
        calls: Mutex<Vec<String>>,
        fail_tables: Vec<String>,
        /// What every load answers about filtered rows.
        rejected: Option<Rejected>,
        /// The error log served at any URL (`None`: unreadable).
        log: Option<String>,
    }

    impl Recorder {
        fn calls(&self) -> Vec<String> {
            self.calls.lock().unwrap().clone()
        }
        fn record(&self, call: String) {
            self.calls.lock().unwrap().push(call);
        }
    }

    /// One byte per row, so sizes are row counts.
    struct OneByte;

    impl TableEncoder for OneByte {
        fn encode(&mut self, body: &mut Vec<u8>, _change: &DataChangeEvent) -> usize {
            body.push(b'r');
            1
        }
    }

    #[async_trait]
    impl LoadProtocol for Recorder {
        type Encoder = OneByte;

        fn encoder(&self, _schema: &Schema) -> OneByte {
            OneByte
        }

        async fn attempt(&self, job: &LoadJob) -> Attempt {
            let mode = match job.mode {
                LoadMode::Visible => "load",
                LoadMode::Prepare => "prepare",
            };
            self.record(format!(
                "{mode} {} {} rows={}",
                job.table, job.label, job.rows
            ));
            if self.fail_tables.contains(&job.table) {
                return Attempt::Stop {
                    reason: "refused".into(),
                    error_url: None,
                };
            }
            Attempt::Loaded {
                txn_id: None,
                rejected: self.rejected.clone(),
            }
        }

        async fn error_log(&self, error_url: &str) -> std::result::Result<String, String> {
            self.record(format!("error log {error_url}"));
            self.log.clone().ok_or_else(|| "HTTP 404".to_string())
        }

        async fn commit(&self, load: &PreparedLoad) -> Result<()> {
            self.record(format!("commit {}", load.label));
            Ok(())
        }

        async fn abort(&self, load: &PreparedLoad) -> Result<()> {
            self.record(format!("abort {}", load.label));
            Ok(())
        }

        async fn abort_leftover(&self, _db: &str, table: &str, label: &str) -> Result<Leftover> {
            self.record(format!("probe {table} {label}"));
            // Part 0 of every earlier run was prepared, part 1 never used.
            Ok(if label.ends_with("_0") {
                Leftover::Aborted
            } else {
                Leftover::Unknown
            })
        }
    }

    fn config(exactly_once: bool) -> DriverConfig {
        DriverConfig {
            target: "test",
            labels: LabelScheme {
                prefix: String::new(),
                pipeline: "p".into(),
                extra_chars: &['-'],
            },
            exactly_once,
            table_max_bytes: 1000,
            total_max_bytes: 1000,
            max_rows: 1000,
            flush_interval: Duration::from_secs(3600),
            max_concurrent_loads: 1,
            max_retries: 0,
            max_backoff: Duration::from_millis(1),
            spare_buffers: 2,
            initial_buffer: 0,
            max_spare_capacity: 1 << 20,
            dead_letters: None,
        }
    }

    fn create(table: &str) -> Event {
        let schema = Schema::new(vec![Column::new("id", DataType::new(DataTypeKind::Int))])
            .with_primary_key(["id"]);
        SchemaChangeEvent::CreateTable {
            table_id: TableId::new("db", table),
            schema,
        }
        .into()
    }

    fn rows(table: &str, n: i32) -> Vec<Event> {
        (0..n)
            .map(|i| DataChangeEvent::insert(TableId::new("db", table), vec![Value::Int(i)]).into())
            .collect()
    }

    fn sink(protocol: &Arc<Recorder>, exactly_once: bool) -> StreamLoadSink<Recorder> {
        StreamLoadSink::new(Arc::clone(protocol), config(exactly_once))
    }

    #[tokio::test]
    async fn exactly_once_prepares_at_the_checkpoint_under_the_epoch_label() {
        let target = Arc::new(Recorder::default());
        let mut s = sink(&target, true);
        s.recover(&Recovery::new(
            Some(CheckpointId(4)),
            OwnerEpoch(35),
            vec![],
        ))
        .await
        .unwrap();
        s.write(vec![create("t")]).await.unwrap();
        s.write(rows("t", 3)).await.unwrap();
        assert!(target.calls().is_empty(), "loaded before the checkpoint");
        let committables = s.prepare(CheckpointId(5)).await.unwrap();
        assert_eq!(target.calls(), ["prepare t p_db_t_z_5_0 rows=3"]);
        s.commit(committables).await.unwrap();
        assert_eq!(target.calls()[1], "commit p_db_t_z_5_0");
    }

    #[tokio::test]
    async fn recovery_aborts_the_earlier_runs_parts_of_the_next_checkpoint_once() {
        let target = Arc::new(Recorder::default());
        let mut s = sink(&target, true);
        let earlier = vec![OwnerEpoch::LEGACY, OwnerEpoch(1)];
        s.recover(&Recovery::new(
            Some(CheckpointId(7)),
            OwnerEpoch(2),
            earlier,
        ))
        .await
        .unwrap();
        s.write(vec![create("t"), create("idle")]).await.unwrap();
        s.write(rows("t", 1)).await.unwrap();
        s.prepare(CheckpointId(8)).await.unwrap();
        s.prepare(CheckpointId(9)).await.unwrap();
        let probes: Vec<String> = target
            .calls()
            .into_iter()
            .filter(|c| c.starts_with("probe"))
            .collect();
        // Every known table (also one without rows), every earlier run, parts until
        // unknown; only checkpoint 8, only once.
        let mut want = vec![];
        for table in ["idle", "t"] {
            want.push(format!("probe {table} p_db_{table}_8_0"));
            want.push(format!("probe {table} p_db_{table}_8_1"));
            want.push(format!("probe {table} p_db_{table}_1_8_0"));
            want.push(format!("probe {table} p_db_{table}_1_8_1"));
        }
        let mut got = probes.clone();
        got.sort();
        want.sort();
        assert_eq!(got, want, "{probes:?}");
    }

    #[tokio::test]
    async fn a_failed_prepare_aborts_the_parts_it_prepared() {
        let target = Arc::new(Recorder {
            fail_tables: vec!["bad".into()],
            ..Recorder::default()
        });
        // Both loads start (two at once); one fails, the other is prepared.
        let mut s = StreamLoadSink::new(
            Arc::clone(&target),
            DriverConfig {
                max_concurrent_loads: 2,
                ..config(true)
            },
        );
        s.write(vec![create("good"), create("bad")]).await.unwrap();
        s.write(rows("good", 2)).await.unwrap();
        s.write(rows("bad", 2)).await.unwrap();
        assert!(s.prepare(CheckpointId(1)).await.is_err());
        let calls = target.calls();
        let prepared: Vec<&String> = calls
            .iter()
            .filter(|c| c.starts_with("prepare good"))
            .collect();
        assert_eq!(prepared.len(), 1, "{calls:?}");
        let label = prepared[0].split(' ').nth(2).unwrap();
        assert!(calls.contains(&format!("abort {label}")), "{calls:?}");
    }

    #[tokio::test]
    async fn the_total_bound_loads_the_largest_buffer_and_a_full_one_goes_early() {
        let target = Arc::new(Recorder::default());
        let mut s = StreamLoadSink::new(
            Arc::clone(&target),
            DriverConfig {
                table_max_bytes: 4,
                total_max_bytes: 5,
                ..config(true)
            },
        );
        s.recover(&Recovery::fresh(OwnerEpoch(1))).await.unwrap();
        s.write(vec![create("a"), create("b")]).await.unwrap();
        s.write(rows("a", 3)).await.unwrap();
        s.write(rows("b", 2)).await.unwrap();
        // 3 + 2 bytes reach the total bound: the largest buffer is prepared early.
        s.wait_all().await.unwrap();
        assert_eq!(target.calls(), ["prepare a p_db_a_1_1_0 rows=3"]);
        s.write(rows("b", 2)).await.unwrap();
        s.wait_all().await.unwrap();
        // b alone reaches its table bound.
        assert_eq!(target.calls()[1], "prepare b p_db_b_1_1_0 rows=4");
        let committables = s.prepare(CheckpointId(1)).await.unwrap();
        assert_eq!(committables.len(), 2);
    }

    #[tokio::test]
    async fn at_least_once_holds_snapshot_rows_until_the_commit_after_the_snapshot() {
        let target = Arc::new(Recorder::default());
        let mut s = sink(&target, false);
        s.recover(&Recovery::fresh(OwnerEpoch(1))).await.unwrap();
        s.source_snapshotting(true).await.unwrap();
        s.write(vec![create("t")]).await.unwrap();
        s.write(rows("t", 2)).await.unwrap();
        s.flush().await.unwrap();
        // The snapshot ends with rows prepared and not committed: still held.
        s.source_snapshotting(false).await.unwrap();
        s.write(rows("t", 1)).await.unwrap();
        s.flush().await.unwrap();
        let committables = s.prepare(CheckpointId(1)).await.unwrap();
        assert_eq!(committables.len(), 2);
        s.commit(committables).await.unwrap();
        // Committed: from here on visible at once.
        s.write(rows("t", 1)).await.unwrap();
        s.flush().await.unwrap();
        let calls = target.calls();
        assert_eq!(
            calls,
            [
                "prepare t p_db_t_1_1_0 rows=2",
                "prepare t p_db_t_1_1_1 rows=1",
                "commit p_db_t_1_1_0",
                "commit p_db_t_1_1_1",
                "load t p_db_t_1_b1 rows=1",
            ]
        );
        assert!(s.prepare(CheckpointId(2)).await.unwrap().is_empty());
    }

    fn dead_letter_sink(target: &Arc<Recorder>, name: &str) -> (StreamLoadSink<Recorder>, PathBuf) {
        let dir = std::env::temp_dir().join(format!("cdc-driver-dl-{}-{name}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("dead.jsonl");
        let _ = std::fs::remove_file(&path);
        let s = StreamLoadSink::new(
            Arc::clone(target),
            DriverConfig {
                dead_letters: Some(Arc::new(DeadLetterFile::new(path.clone()))),
                ..config(true)
            },
        );
        (s, path)
    }

    fn read_letters(path: &std::path::Path) -> Vec<serde_json::Value> {
        std::fs::read_to_string(path)
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }

    #[tokio::test]
    async fn rejected_rows_are_written_before_the_prepare_returns() {
        let target = Arc::new(Recorder {
            rejected: Some(Rejected {
                rows: 1,
                error_url: Some("http://be/log".into()),
            }),
            log: Some("Reason: too big. src line [{\"id\":2}]; \n".into()),
            ..Recorder::default()
        });
        let (mut s, path) = dead_letter_sink(&target, "ok");
        s.recover(&Recovery::fresh(OwnerEpoch(3))).await.unwrap();
        s.write(vec![create("t")]).await.unwrap();
        let mut changes = rows("t", 2);
        if let Event::DataChange(e) = &mut changes[0] {
            e.meta.insert("op_ts".into(), "1000".into());
        }
        if let Event::DataChange(e) = &mut changes[1] {
            e.meta.insert("op_ts".into(), "2000".into());
        }
        s.write(changes).await.unwrap();
        let committables = s.prepare(CheckpointId(1)).await.unwrap();
        assert_eq!(committables.len(), 1, "the good rows are prepared as usual");
        let letters = read_letters(&path);
        assert_eq!(letters.len(), 1, "{letters:?}");
        assert_eq!(letters[0]["reason"], "too big");
        assert_eq!(letters[0]["row"], "{\"id\":2}");
        assert_eq!(letters[0]["label"], "p_db_t_3_1_0");
        assert_eq!(letters[0]["checkpoint"], 1);
        assert_eq!(letters[0]["table"], "db.t");
        assert_eq!(
            letters[0]["source_op_ts"],
            serde_json::json!(["1000", "2000"])
        );
        assert_eq!(s.stats().rejected_rows.get("db.t"), Some(&1));
    }

    #[tokio::test]
    async fn an_unreadable_error_log_still_records_the_count() {
        let target = Arc::new(Recorder {
            rejected: Some(Rejected {
                rows: 3,
                error_url: Some("http://be/log".into()),
            }),
            log: None,
            ..Recorder::default()
        });
        let (mut s, path) = dead_letter_sink(&target, "unreadable");
        s.write(vec![create("t")]).await.unwrap();
        s.write(rows("t", 5)).await.unwrap();
        s.prepare(CheckpointId(1)).await.unwrap();
        let letters = read_letters(&path);
        assert_eq!(letters.len(), 1, "{letters:?}");
        assert_eq!(letters[0]["rows"], 3);
        assert!(letters[0]["row"].is_null());
        let reason = letters[0]["reason"].as_str().unwrap();
        assert!(
            reason.contains("could not be fetched") && reason.contains("HTTP 404"),
            "{reason}"
        );
    }

    #[tokio::test]
    async fn a_dead_letter_file_that_cannot_be_written_fails_and_aborts_the_load() {
        let target = Arc::new(Recorder {
            rejected: Some(Rejected {
                rows: 1,
                error_url: None,
            }),
            ..Recorder::default()
        });
        // A directory cannot be opened as the file.
        let dir = std::env::temp_dir();
        let mut s = StreamLoadSink::new(
            Arc::clone(&target),
            DriverConfig {
                dead_letters: Some(Arc::new(DeadLetterFile::new(dir))),
                ..config(true)
            },
        );
        s.write(vec![create("t")]).await.unwrap();
        s.write(rows("t", 1)).await.unwrap();
        let e = s.prepare(CheckpointId(1)).await.unwrap_err().to_string();
        assert!(e.contains("dead-letter file"), "{e}");
        let calls = target.calls();
        assert!(calls.iter().any(|c| c.starts_with("abort ")), "{calls:?}");
    }

    #[tokio::test]
    async fn at_least_once_streams_at_once_when_nothing_is_held() {
        let target = Arc::new(Recorder::default());
        let mut s = sink(&target, false);
        s.recover(&Recovery::fresh(OwnerEpoch(1))).await.unwrap();
        s.source_snapshotting(false).await.unwrap();
        s.write(vec![create("t")]).await.unwrap();
        s.write(rows("t", 2)).await.unwrap();
        s.flush().await.unwrap();
        assert_eq!(target.calls(), ["load t p_db_t_1_b1 rows=2"]);
    }
}
