//! The emulator's shared state: catalog, transactions and labels, load log, error logs,
//! queued faults, schema-change jobs.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::time::{Duration, Instant};

use super::catalog::{Catalog, Row};
use super::model::{DorisFault, LoadRecord, TableModel, TxnRecord, TxnState};

/// One write of a load, in the column order of [`PendingLoad::columns`].
#[derive(Debug, Clone)]
pub(crate) struct Op {
    pub(crate) values: Row,
    pub(crate) delete: bool,
}

/// The rows of a load, applied when its transaction commits.
#[derive(Debug, Clone, Default)]
pub(crate) struct PendingLoad {
    /// Names of the columns the ops carry.
    pub(crate) columns: Vec<String>,
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

/// A schema-change job (for `SHOW ALTER TABLE COLUMN`).
#[derive(Debug, Clone)]
pub(crate) struct AlterJob {
    pub(crate) id: i64,
    pub(crate) db: String,
    pub(crate) table: String,
    pub(crate) create_time: String,
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
    pub(crate) error_logs: HashMap<String, String>,
    pub(crate) faults: VecDeque<DorisFault>,
    pub(crate) alter_jobs: Vec<AlterJob>,
    pub(crate) users: Vec<(String, String)>,
    pub(crate) precommit_timeout: Duration,
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
    ) -> Self {
        Self {
            catalog: Catalog::default(),
            txns: BTreeMap::new(),
            labels: HashMap::new(),
            load_log: Vec::new(),
            error_logs: HashMap::new(),
            faults: VecDeque::new(),
            alter_jobs: Vec::new(),
            users,
            precommit_timeout,
            backends,
            next_txn: 1000,
            next_id: 10000,
            started: Instant::now(),
        }
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

    /// Aborts pre-committed transactions past their timeout.
    pub(crate) fn expire(&mut self) {
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
                DorisFault::Slow { delay, count } => (FaultAction::Slow(*delay), count),
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

    /// A 2PC operation (`txn_operation`) by id or label: `Ok(msg)` or `Err(msg)`.
    pub(crate) fn two_phase(
        &mut self,
        db: &str,
        txn_id: Option<&str>,
        label: Option<&str>,
        commit: bool,
    ) -> Result<String, String> {
        let err = |m: String| format!("errCode = 2, detailMessage = {m}");
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
            let label = label.unwrap_or_default();
            let id = self
                .labels
                .get(&(db.to_string(), label.to_string()))
                .copied()
                .ok_or_else(|| err(format!("label [{label}] not found")))?;
            (id, format!("label [{label}]"))
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
    let positions: Vec<Option<usize>> = table
        .columns
        .iter()
        .map(|c| {
            load.columns
                .iter()
                .position(|n| n.eq_ignore_ascii_case(&c.name))
        })
        .collect();
    let keys = table.key_indexes();
    for op in load.ops {
        let mut row: Row = Vec::with_capacity(table.columns.len());
        for (i, col) in table.columns.iter().enumerate() {
            row.push(match positions[i] {
                Some(p) => op.values.get(p).cloned().flatten(),
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
