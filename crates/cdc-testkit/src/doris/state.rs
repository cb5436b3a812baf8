//! The emulator's shared state: catalog, transactions and labels, load log, error logs,
//! queued faults, schema-change jobs (advanced in [`jobs`](super::jobs)).

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::time::{Duration, Instant};

use super::catalog::{Catalog, Row};
use super::jobs::{self, AlterJob};
use super::model::{DorisFault, LoadRecord, TableModel, TxnRecord, TxnState};

/// One write of a load, in the column order of [`PendingLoad::column_ids`].
#[derive(Debug, Clone)]
pub(crate) struct Op {
    pub(crate) values: Row,
    pub(crate) delete: bool,
}

/// The rows of a load, applied when its transaction commits.
#[derive(Debug, Clone, Default)]
pub(crate) struct PendingLoad {
    /// The table the load was written into ([`Table::id`](super::catalog::Table::id)).
    pub(crate) table_id: i64,
    /// Unique ids of the columns the ops carry, bound when the load was written: a column
    /// renamed before the commit keeps the load's values, a column dropped loses them, a
    /// column added gets its default.
    pub(crate) column_ids: Vec<u32>,
    /// Partial update: columns not carried keep their current value.
    pub(crate) partial: bool,
    pub(crate) ops: Vec<Op>,
}

/// A transaction.
#[derive(Debug, Clone)]
pub(crate) struct Txn {
    pub(crate) id: i64,
    pub(crate) label: String,
    pub(crate) db: String,
    pub(crate) table: String,
    pub(crate) state: TxnState,
    pub(crate) abort_reason: Option<String>,
    pub(crate) precommitted_at: Option<Instant>,
    pub(crate) pending: Option<PendingLoad>,
}

/// The kind of request a fault may match.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RequestKind {
    Load { two_phase: bool },
    TwoPc,
}

/// What a matched fault makes the request do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FaultAction {
    ServerError(u16),
    Reset,
    PublishTimeout,
    Slow(Duration),
    TooManyVersions,
}

/// All mutable state.
#[derive(Debug)]
pub(crate) struct State {
    pub(crate) catalog: Catalog,
    pub(crate) txns: BTreeMap<i64, Txn>,
    /// (db, label) -> latest transaction with that label
    pub(crate) labels: HashMap<(String, String), i64>,
    pub(crate) load_log: Vec<LoadRecord>,
    /// Stream-load requests the FE received (answered or not).
    pub(crate) fe_stream_loads: u64,
    /// 2PC commit/abort requests the FE received.
    pub(crate) fe_two_phase: u64,
    /// `GET /api/backends` requests the FE answered.
    pub(crate) fe_backend_lists: u64,
    /// Stream-load requests each BE received, by BE index.
    pub(crate) be_stream_loads: Vec<u64>,
    /// 2PC commit/abort requests each BE received, by BE index.
    pub(crate) be_two_phase: Vec<u64>,
    pub(crate) error_logs: HashMap<String, String>,
    pub(crate) faults: VecDeque<DorisFault>,
    /// Schema-change jobs in creation (job-id) order.
    pub(crate) alter_jobs: Vec<AlterJob>,
    pub(crate) users: Vec<(String, String)>,
    pub(crate) precommit_timeout: Duration,
    /// [`DorisEmulatorOptions::alter_job_duration`](super::DorisEmulatorOptions::alter_job_duration).
    pub(crate) alter_job_duration: Duration,
    /// [`DorisEmulatorOptions::error_url_base`](super::DorisEmulatorOptions::error_url_base).
    pub(crate) error_url_base: Option<String>,
    pub(crate) backends: u32,
    next_txn: i64,
    next_id: i64,
    started: Instant,
}

impl State {
    pub(crate) fn new(
        users: Vec<(String, String)>,
        precommit_timeout: Duration,
        backends: u32,
        alter_job_duration: Duration,
    ) -> Self {
        Self {
            catalog: Catalog::default(),
            txns: BTreeMap::new(),
            labels: HashMap::new(),
            load_log: Vec::new(),
            fe_stream_loads: 0,
            fe_two_phase: 0,
            fe_backend_lists: 0,
            be_stream_loads: Vec::new(),
            be_two_phase: Vec::new(),
            error_logs: HashMap::new(),
            faults: VecDeque::new(),
            alter_jobs: Vec::new(),
            users,
            precommit_timeout,
            alter_job_duration,
            error_url_base: None,
            backends,
            next_txn: 1000,
            next_id: 10000,
            started: Instant::now(),
        }
    }

    /// Counts a request at BE `index` in `counters`.
    pub(crate) fn count_at(counters: &mut Vec<u64>, index: usize) {
        if counters.len() <= index {
            counters.resize(index + 1, 0);
        }
        counters[index] += 1;
    }

    pub(crate) fn check_user(&self, user: &str, password: &str) -> bool {
        self.users.iter().any(|(u, p)| u == user && p == password)
    }

    /// A fresh id for jobs and error-log names.
    pub(crate) fn next_id(&mut self) -> i64 {
        self.next_id += 1;
        self.next_id
    }

    /// Seconds since start, for generated timestamps.
    pub(crate) fn clock_text(&self) -> String {
        let secs = self.started.elapsed().as_secs();
        format!(
            "2024-01-01 {:02}:{:02}:{:02}",
            (secs / 3600) % 24,
            (secs / 60) % 60,
            secs % 60
        )
    }

    /// The id the next transaction will get (a job's watershed when it leaves PENDING).
    pub(crate) fn next_txn_id(&self) -> i64 {
        self.next_txn + 1
    }

    /// Moves time-driven state on before a request is served: expires pre-committed
    /// transactions, then advances schema-change jobs (which a transaction's end may
    /// release).
    pub(crate) fn tick(&mut self) {
        self.expire();
        jobs::advance(self);
    }

    /// Aborts pre-committed transactions past their timeout.
    fn expire(&mut self) {
        let timeout = self.precommit_timeout;
        for txn in self.txns.values_mut() {
            if txn.state == TxnState::PreCommitted
                && txn.precommitted_at.is_some_and(|t| t.elapsed() >= timeout)
            {
                txn.state = TxnState::Aborted;
                txn.abort_reason = Some("timeout by txn manager".into());
                txn.pending = None;
            }
        }
    }

    /// Takes the first queued fault matching this request.
    pub(crate) fn take_fault(&mut self, kind: RequestKind) -> Option<FaultAction> {
        for i in 0..self.faults.len() {
            let (action, count) = match &mut self.faults[i] {
                DorisFault::ServerError { status, count } => {
                    (FaultAction::ServerError(*status), count)
                }
                DorisFault::ResetConnection { count } => (FaultAction::Reset, count),
                DorisFault::Slow { delay, count } if matches!(kind, RequestKind::Load { .. }) => {
                    (FaultAction::Slow(*delay), count)
                }
                DorisFault::PublishTimeout { count }
                    if kind == (RequestKind::Load { two_phase: false }) =>
                {
                    (FaultAction::PublishTimeout, count)
                }
                DorisFault::TooManyVersions { count }
                    if matches!(kind, RequestKind::Load { .. }) =>
                {
                    (FaultAction::TooManyVersions, count)
                }
                _ => continue,
            };
            if *count == 0 {
                continue;
            }
            *count -= 1;
            if *count == 0 {
                self.faults.remove(i);
            }
            return Some(action);
        }
        None
    }

    /// The transaction currently holding `label` in `db` (not aborted).
    pub(crate) fn label_holder(&self, db: &str, label: &str) -> Option<&Txn> {
        let id = self.labels.get(&(db.to_string(), label.to_string()))?;
        self.txns.get(id).filter(|t| t.state != TxnState::Aborted)
    }

    pub(crate) fn begin_txn(&mut self, db: &str, table: &str, label: &str) -> i64 {
        self.next_txn += 1;
        let id = self.next_txn;
        self.txns.insert(
            id,
            Txn {
                id,
                label: label.to_string(),
                db: db.to_string(),
                table: table.to_string(),
                state: TxnState::Running,
                abort_reason: None,
                precommitted_at: None,
                pending: None,
            },
        );
        self.labels.insert((db.to_string(), label.to_string()), id);
        id
    }

    pub(crate) fn abort_txn(&mut self, id: i64, reason: &str) {
        if let Some(t) = self.txns.get_mut(&id) {
            t.state = TxnState::Aborted;
            t.abort_reason = Some(reason.to_string());
            t.pending = None;
        }
    }

    pub(crate) fn precommit_txn(&mut self, id: i64, pending: PendingLoad) {
        if let Some(t) = self.txns.get_mut(&id) {
            t.state = TxnState::PreCommitted;
            t.precommitted_at = Some(Instant::now());
            t.pending = Some(pending);
        }
    }

    /// Commits: applies the rows and makes them visible.
    pub(crate) fn commit_txn(&mut self, id: i64, pending: Option<PendingLoad>) {
        let Some(t) = self.txns.get_mut(&id) else {
            return;
        };
        t.state = TxnState::Committed;
        let pending = pending.or_else(|| t.pending.take());
        let (db, table) = (t.db.clone(), t.table.clone());
        if let (Some(p), Some(tbl)) = (pending, self.catalog.table_mut(&db, &table)) {
            apply(tbl, p);
        }
    }

    pub(crate) fn txn_records(&self) -> Vec<TxnRecord> {
        self.txns
            .values()
            .map(|t| TxnRecord {
                txn_id: t.id,
                label: t.label.clone(),
                db: t.db.clone(),
                table: t.table.clone(),
                state: t.state,
                abort_reason: t.abort_reason.clone(),
            })
            .collect()
    }

    /// A 2PC operation (`txn_operation`) by id or label: `Ok(msg)` or `Err(msg)`, with
    /// the FE's texts (`FrontendServiceImpl.loadTxn2PCImpl`, `DatabaseTransactionMgr`).
    pub(crate) fn two_phase(
        &mut self,
        db: &str,
        txn_id: Option<&str>,
        label: Option<&str>,
        commit: bool,
    ) -> Result<String, String> {
        // The BE wraps the FE's TStatus message like this in its `msg`.
        let err = |m: String| format!("TStatus: errCode = 2, detailMessage = {m}");
        let (id, subject) = if let Some(raw) = txn_id.filter(|s| !s.is_empty()) {
            let id: i64 = raw
                .trim()
                .parse()
                .map_err(|_| err(format!("transaction [{raw}] not found")))?;
            if self.txns.get(&id).is_none_or(|t| t.db != db) {
                return Err(err(format!("transaction [{id}] not found")));
            }
            (id, format!("transaction [{id}]"))
        } else {
            // By label Doris looks only among the transactions an operation can act on:
            // PRECOMMITTED for a commit, also PREPARE (running) for an abort. A label whose
            // load is committed or aborted is "running transaction not found".
            let label = label.unwrap_or_default();
            let with_label: Vec<&Txn> = self
                .txns
                .values()
                .filter(|t| t.db == db && t.label == label)
                .collect();
            if with_label.is_empty() {
                return Err(err(format!("transaction not found, label={label}")));
            }
            let acts_on = |t: &&Txn| {
                t.state == TxnState::PreCommitted || (!commit && t.state == TxnState::Running)
            };
            let Some(txn) = with_label.into_iter().rev().find(acts_on) else {
                return Err(err(format!("running transaction not found, label={label}")));
            };
            (txn.id, format!("label [{label}]"))
        };
        let Some(txn) = self.txns.get(&id) else {
            return Err(err(format!("transaction [{id}] not found")));
        };
        let reason = txn.abort_reason.clone().unwrap_or_default();
        match (txn.state, commit) {
            (TxnState::PreCommitted, true) => {
                self.commit_txn(id, None);
                Ok(format!("{subject} commit successfully."))
            }
            (TxnState::PreCommitted | TxnState::Running, false) => {
                self.abort_txn(id, "User Abort");
                Ok(format!("{subject} abort successfully."))
            }
            (TxnState::Committed, true) => Err(err(format!(
                "transaction [{id}] is already visible, not pre-committed."
            ))),
            (TxnState::Committed, false) => Err(err(format!(
                "transaction [{id}] is already VISIBLE, could not abort."
            ))),
            (TxnState::Aborted, true) => Err(err(format!(
                "transaction [{id}] is already aborted. abort reason: {reason}"
            ))),
            (TxnState::Aborted, false) => Err(err(format!(
                "transaction [{id}] is already aborted, abort reason: {reason}"
            ))),
            (TxnState::Running, true) => Err(err(format!(
                "transaction [{id}] is prepare, not pre-committed."
            ))),
        }
    }
}

/// Applies a load's rows to the table's current schema.
pub(crate) fn apply(table: &mut super::catalog::Table, load: PendingLoad) {
    if load.table_id != table.id {
        // Written into a table that was dropped since; its data went with it.
        return;
    }
    let positions: Vec<Option<usize>> = table
        .columns
        .iter()
        .map(|c| load.column_ids.iter().position(|id| *id == c.uid))
        .collect();
    let keys = table.key_indexes();
    for op in load.ops {
        let mut row: Row = Vec::with_capacity(table.columns.len());
        for (i, col) in table.columns.iter().enumerate() {
            row.push(match positions[i] {
                // A MODIFY COLUMN since the load was written: stored as the new type shows it.
                Some(p) => op
                    .values
                    .get(p)
                    .cloned()
                    .flatten()
                    .map(|v| col.ty.convert(&v, &col.name).unwrap_or(v)),
                None => col.default_value(),
            });
        }
        if load.partial && table.model == TableModel::Unique {
            let key: Row = keys.iter().map(|i| row[*i].clone()).collect();
            if let Some(existing) = table.unique_row(&key) {
                for (i, p) in positions.iter().enumerate() {
                    if p.is_none() {
                        row[i].clone_from(&existing[i]);
                    }
                }
            }
        }
        match table.model {
            TableModel::Unique => table.apply_unique(row, op.delete),
            TableModel::Duplicate => table.dup_rows.push(row),
        }
    }
}
