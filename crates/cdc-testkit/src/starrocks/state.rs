//! Everything the emulator remembers: catalog, transactions and labels, schema-change
//! jobs, faults, logs; and the load path (body -> checked rows -> transaction).

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::time::{Duration, Instant};

use super::catalog::{AlterAction, AlterJob, Database, KeysType, Row, Table};
use super::model::{
    StarRocksEmulatorOptions, StarRocksFault, StarRocksLoadRecord, StarRocksTxnRecord,
    StarRocksTxnState,
};
use crate::doris::body::{self, CsvOptions, Record};
use crate::doris::types::ValueError;

/// One row change of a transaction.
#[derive(Debug, Clone)]
pub(crate) struct RowOp {
    /// Values by column name (the schema may change before the commit).
    pub(crate) values: BTreeMap<String, Option<String>>,
    pub(crate) delete: bool,
    pub(crate) partial: bool,
}

/// A transaction (every stream load has one too).
#[derive(Debug, Clone)]
pub(crate) struct Txn {
    pub(crate) id: i64,
    pub(crate) label: String,
    pub(crate) db: String,
    pub(crate) table: String,
    pub(crate) state: StarRocksTxnState,
    pub(crate) abort_reason: Option<String>,
    pub(crate) ops: Vec<RowOp>,
    pub(crate) total_rows: u64,
    pub(crate) filtered_rows: u64,
    pub(crate) bytes: u64,
    pub(crate) loads: u32,
    pub(crate) error_lines: Vec<String>,
    pub(crate) max_filter_ratio: f64,
    /// The format headers of the first `load`; later ones must match.
    pub(crate) load_params: Option<BTreeMap<String, String>>,
    pub(crate) begun: Instant,
    pub(crate) last_active: Instant,
    pub(crate) prepared_at: Option<Instant>,
    pub(crate) timeout: Duration,
    pub(crate) idle_timeout: Duration,
    /// A slow request is working on it: other operations answer TXN_IN_PROCESSING.
    pub(crate) busy: bool,
}

/// What a matched fault makes a request do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FaultAction {
    ServerError(u16),
    Reset,
    Slow(Duration),
    PublishTimeout,
}

/// Which kind of request a fault may match.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RequestKind {
    /// A stream load or transaction `load` (carries data).
    Data,
    /// `begin` / `prepare` / `rollback`.
    Control,
    /// `commit`.
    Commit,
}

/// All mutable state.
#[derive(Debug)]
pub(crate) struct State {
    pub(crate) options: StarRocksEmulatorOptions,
    pub(crate) dbs: BTreeMap<String, Database>,
    pub(crate) txns: BTreeMap<i64, Txn>,
    pub(crate) labels: HashMap<(String, String), i64>,
    pub(crate) jobs: Vec<AlterJob>,
    pub(crate) faults: VecDeque<StarRocksFault>,
    pub(crate) load_log: Vec<StarRocksLoadRecord>,
    pub(crate) error_logs: HashMap<String, String>,
    /// Load and transaction requests that reached the FE.
    pub(crate) fe_requests: u64,
    /// Load and transaction requests the FE received with a body (which it never reads).
    pub(crate) fe_body_requests: u64,
    next_id: i64,
    epoch: Instant,
}

/// A load that failed as a whole (bad format, unsupported header, ...).
#[derive(Debug)]
pub(crate) struct LoadFailure {
    pub(crate) message: String,
    pub(crate) total: u64,
}

/// Checked rows of one body.
#[derive(Debug, Default)]
pub(crate) struct Converted {
    pub(crate) ops: Vec<RowOp>,
    pub(crate) total: u64,
    pub(crate) filtered: u64,
    pub(crate) error_lines: Vec<String>,
}

impl State {
    pub(crate) fn new(options: StarRocksEmulatorOptions) -> Self {
        Self {
            options,
            dbs: BTreeMap::new(),
            txns: BTreeMap::new(),
            labels: HashMap::new(),
            jobs: Vec::new(),
            faults: VecDeque::new(),
            load_log: Vec::new(),
            error_logs: HashMap::new(),
            fe_requests: 0,
            fe_body_requests: 0,
            next_id: 1000,
            epoch: Instant::now(),
        }
    }

    pub(crate) fn check_user(&self, user: &str, password: &str) -> bool {
        self.options
            .users
            .iter()
            .any(|(u, p)| u == user && p == password)
    }

    pub(crate) fn password_of(&self, user: &str) -> Option<&str> {
        self.options
            .users
            .iter()
            .find(|(u, _)| u == user)
            .map(|(_, p)| p.as_str())
    }

    pub(crate) fn next_id(&mut self) -> i64 {
        self.next_id += 1;
        self.next_id
    }

    /// The time of a schema-change job as `SHOW ALTER TABLE COLUMN` prints it:
    /// `2024-01-01 00:00:00` plus the emulator's age, in whole seconds (`yyyy-MM-dd
    /// HH:mm:ss`, TimeUtils.longToTimeString in the FE), so jobs created in the same second
    /// tie.
    pub(crate) fn job_time_text(&self) -> String {
        let s = self.epoch.elapsed().as_secs();
        format!(
            "2024-01-01 {:02}:{:02}:{:02}",
            (s / 3600) % 24,
            (s / 60) % 60,
            s % 60
        )
    }

    pub(crate) fn table(&self, db: &str, table: &str) -> Option<&Table> {
        self.dbs.get(db)?.tables.get(table)
    }

    pub(crate) fn table_mut(&mut self, db: &str, table: &str) -> Option<&mut Table> {
        self.dbs.get_mut(db)?.tables.get_mut(table)
    }

    /// Moves time-driven state on: finishes schema-change jobs, expires transactions.
    pub(crate) fn tick(&mut self) {
        let now = Instant::now();
        let clock = self.job_time_text();
        for i in 0..self.jobs.len() {
            // StarRocks (fe/.../alter/SchemaChangeJobV2.java, runWaitingTxnJob): after
            // PENDING a job is WAITING_TXN until every transaction on its table that began
            // before it (id below its watershed, here its job id from the same counter) is
            // finished: GlobalTransactionMgr.isPreviousTransactionsFinished, where
            // TransactionState.isRunning counts PREPARE, PREPARED and COMMITTED. A prepared
            // Stream Load transaction that nobody commits holds the job.
            let waiting = {
                let job = &self.jobs[i];
                job.action.is_some()
                    && self.txns.iter().any(|(id, t)| {
                        *id < job.job_id
                            && t.db == job.db
                            && t.table == job.table
                            && matches!(
                                t.state,
                                StarRocksTxnState::Prepare | StarRocksTxnState::Prepared
                            )
                    })
            };
            let job = &mut self.jobs[i];
            if job.action.is_none() {
                continue;
            }
            let age = now.duration_since(job.started);
            if waiting && age * 3 >= job.duration {
                // Held at the end of PENDING: the rest of the job runs once it may.
                job.state = "WAITING_TXN";
                job.started = now.checked_sub(job.duration / 3).unwrap_or(now);
                continue;
            }
            if age < job.duration {
                job.state = if age * 3 < job.duration {
                    "PENDING"
                } else {
                    "RUNNING"
                };
                continue;
            }
            job.state = "FINISHED";
            job.finish_time = Some(clock.clone());
            let (db, table, id) = (job.db.clone(), job.table.clone(), job.job_id);
            let action = job.action.take();
            if let Some(AlterAction::Rename(from, to)) = &action {
                // Prepared rows are bound to the column, not its name, as in StarRocks.
                for t in self.txns.values_mut() {
                    if t.db == db && t.table == table {
                        for op in &mut t.ops {
                            if let Some(v) = op.values.remove(from) {
                                op.values.insert(to.clone(), v);
                            }
                        }
                    }
                }
            }
            if let (Some(t), Some(action)) = (self.table_mut(&db, &table), action) {
                t.apply_alter(action);
                if t.running_job == Some(id) {
                    t.running_job = None;
                }
            }
        }
        let prepared_timeout = self.options.prepared_timeout;
        for t in self.txns.values_mut() {
            let expired = match t.state {
                StarRocksTxnState::Prepare if !t.busy => {
                    if now.duration_since(t.begun) > t.timeout {
                        Some("transaction timeout")
                    } else if now.duration_since(t.last_active) > t.idle_timeout {
                        Some("idle transaction timeout")
                    } else {
                        None
                    }
                }
                StarRocksTxnState::Prepared => t
                    .prepared_at
                    .filter(|p| now.duration_since(*p) > prepared_timeout)
                    .map(|_| "prepared transaction timeout"),
                _ => None,
            };
            if let Some(reason) = expired {
                t.state = StarRocksTxnState::Aborted;
                t.abort_reason = Some(reason.into());
                t.ops.clear();
            }
        }
    }

    /// Takes the first queued fault matching this request.
    pub(crate) fn take_fault(&mut self, kind: RequestKind) -> Option<FaultAction> {
        for i in 0..self.faults.len() {
            let (action, count) = match &mut self.faults[i] {
                StarRocksFault::ServerError { status, count } => {
                    (FaultAction::ServerError(*status), count)
                }
                StarRocksFault::ResetConnection { count } => (FaultAction::Reset, count),
                StarRocksFault::Slow { delay, count } if kind == RequestKind::Data => {
                    (FaultAction::Slow(*delay), count)
                }
                StarRocksFault::PublishTimeout { count } if kind == RequestKind::Commit => {
                    (FaultAction::PublishTimeout, count)
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

    /// The transaction holding `label` in `db` (the latest with it).
    pub(crate) fn txn_by_label(&self, db: &str, label: &str) -> Option<&Txn> {
        let id = self.labels.get(&(db.to_string(), label.to_string()))?;
        self.txns.get(id)
    }

    pub(crate) fn txn_by_label_mut(&mut self, db: &str, label: &str) -> Option<&mut Txn> {
        let id = *self.labels.get(&(db.to_string(), label.to_string()))?;
        self.txns.get_mut(&id)
    }

    /// Starts a transaction with this label, or says which job holds it.
    pub(crate) fn begin(
        &mut self,
        db: &str,
        table: &str,
        label: &str,
        timeout: Duration,
        idle_timeout: Duration,
    ) -> Result<i64, (String, String)> {
        if let Some(t) = self.txn_by_label(db, label) {
            let existing = match t.state {
                StarRocksTxnState::Aborted => None,
                StarRocksTxnState::Prepare => Some("RUNNING"),
                StarRocksTxnState::Prepared => Some("PREPARED"),
                StarRocksTxnState::Visible => Some("FINISHED"),
            };
            if let Some(e) = existing {
                return Err((
                    e.to_string(),
                    format!("Label [{label}] has already been used."),
                ));
            }
        }
        let id = self.next_id();
        let now = Instant::now();
        self.txns.insert(
            id,
            Txn {
                id,
                label: label.to_string(),
                db: db.to_string(),
                table: table.to_string(),
                state: StarRocksTxnState::Prepare,
                abort_reason: None,
                ops: Vec::new(),
                total_rows: 0,
                filtered_rows: 0,
                bytes: 0,
                loads: 0,
                error_lines: Vec::new(),
                max_filter_ratio: 0.0,
                load_params: None,
                begun: now,
                last_active: now,
                prepared_at: None,
                timeout,
                idle_timeout,
                busy: false,
            },
        );
        self.labels.insert((db.to_string(), label.to_string()), id);
        Ok(id)
    }

    pub(crate) fn abort(&mut self, id: i64, reason: &str) {
        if let Some(t) = self.txns.get_mut(&id) {
            t.state = StarRocksTxnState::Aborted;
            t.abort_reason = Some(reason.to_string());
            t.ops.clear();
            t.busy = false;
        }
    }

    /// Makes a transaction's rows visible.
    pub(crate) fn commit(&mut self, id: i64) {
        let Some(t) = self.txns.get_mut(&id) else {
            return;
        };
        t.state = StarRocksTxnState::Visible;
        let ops = std::mem::take(&mut t.ops);
        let (db, table) = (t.db.clone(), t.table.clone());
        let Some(tbl) = self.table_mut(&db, &table) else {
            return;
        };
        for op in ops {
            let mut row: Row = Vec::with_capacity(tbl.columns.len());
            let mut mask = Vec::with_capacity(tbl.columns.len());
            for c in &tbl.columns {
                match op.values.get(&c.name) {
                    Some(v) => {
                        row.push(v.clone());
                        mask.push(true);
                    }
                    None => {
                        row.push(c.fill_value());
                        mask.push(false);
                    }
                }
            }
            tbl.apply(row, op.partial.then_some(mask.as_slice()), op.delete);
        }
    }

    /// Saves rejected rows as an error log and returns its URL. As the BE's
    /// `RuntimeState::append_error_msg_to_file` (be/src/runtime/runtime_state.cpp) the log
    /// holds `Error: {reason}. Row: {row}` lines for the first rows only: it writes while
    /// its counter, before the increment, is at most `MAX_ERROR_NUM` (50), so 51 lines,
    /// and then stops without a note.
    pub(crate) fn save_error_log(&mut self, be_port: u16, lines: &[String]) -> Option<String> {
        if lines.is_empty() {
            return None;
        }
        let file = format!("error_log_{:016x}", self.next_id());
        let kept: Vec<&str> = lines.iter().take(51).map(String::as_str).collect();
        self.error_logs.insert(file.clone(), kept.join("\n") + "\n");
        let scheme = if self.options.tls { "https" } else { "http" };
        let base = self
            .options
            .error_url_base
            .clone()
            .unwrap_or_else(|| format!("{scheme}://127.0.0.1:{be_port}"));
        Some(format!("{base}/api/_load_error_log?file={file}"))
    }

    pub(crate) fn txn_records(&self) -> Vec<StarRocksTxnRecord> {
        self.txns
            .values()
            .map(|t| StarRocksTxnRecord {
                txn_id: t.id,
                label: t.label.clone(),
                db: t.db.clone(),
                table: t.table.clone(),
                state: t.state,
                abort_reason: t.abort_reason.clone(),
            })
            .collect()
    }
}

/// Format headers that must be identical across the `load`s of one transaction.
pub(crate) const LOAD_PARAMS: [&str; 9] = [
    "format",
    "columns",
    "column_separator",
    "row_delimiter",
    "strip_outer_array",
    "partial_update",
    "max_filter_ratio",
    "strict_mode",
    "jsonpaths",
];

fn truthy(headers: &HashMap<String, String>, name: &str) -> bool {
    headers
        .get(name)
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("true"))
}

/// The `__op` a `columns` header sets for every row (`__op='delete'`), if any; and the
/// plain column names it lists.
fn parse_columns(header: &str) -> Result<(Option<bool>, Vec<String>), String> {
    let mut op = None;
    let mut names = Vec::new();
    for item in header.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        if let Some((lhs, rhs)) = item.split_once('=') {
            if lhs.trim().trim_matches('`') != "__op" {
                return Err(format!(
                    "the StarRocks emulator supports no column expressions: {item}"
                ));
            }
            let v = rhs.trim().trim_matches(['\'', '"']).to_ascii_lowercase();
            op = Some(match v.as_str() {
                "delete" | "1" => true,
                "upsert" | "0" => false,
                _ => return Err(format!("invalid __op value: {rhs}")),
            });
        } else {
            names.push(item.trim_matches('`').to_string());
        }
    }
    Ok((op, names))
}

fn op_of(v: &serde_json::Value) -> Option<bool> {
    match v {
        serde_json::Value::Number(n) => match n.as_i64() {
            Some(0) => Some(false),
            Some(1) => Some(true),
            _ => None,
        },
        serde_json::Value::String(s) => match s.to_ascii_lowercase().as_str() {
            "0" | "upsert" => Some(false),
            "1" | "delete" => Some(true),
            _ => None,
        },
        serde_json::Value::Null => Some(false),
        _ => None,
    }
}

/// Looks a column's raw value up in one record (`None` = not given).
type Getter = Box<dyn Fn(&str) -> Option<Option<String>>>;

/// Parses and checks a body against a table, as the BE does.
pub(crate) fn convert(
    table: &Table,
    headers: &HashMap<String, String>,
    data: &[u8],
    json_max_bytes: usize,
) -> Result<Converted, LoadFailure> {
    let fail = |m: String| LoadFailure {
        message: m,
        total: 0,
    };
    let format = headers
        .get("format")
        .map_or("csv".to_string(), |f| f.to_ascii_lowercase());
    let strict = truthy(headers, "strict_mode");
    let partial = truthy(headers, "partial_update");
    if partial && table.keys_type != KeysType::Primary {
        return Err(fail("Only primary key table support partial update".into()));
    }
    let (header_op, listed) = match headers.get("columns") {
        Some(c) => parse_columns(c).map_err(fail)?,
        None => (None, Vec::new()),
    };
    let text = std::str::from_utf8(data).map_err(|_| fail("body is not UTF-8".into()))?;
    let records = match format.as_str() {
        "json" => {
            if data.len() > json_max_bytes && !truthy(headers, "ignore_json_size") {
                return Err(fail(format!(
                    "The size of this batch exceed the max size [{json_max_bytes}] of json type data  data [{}]. Set ignore_json_size to skip check, although it may lead huge memory consuming.",
                    data.len()
                )));
            }
            let strip = truthy(headers, "strip_outer_array");
            body::parse_json(text, !strip, strip)
        }
        "csv" => {
            let sep = headers
                .get("column_separator")
                .map_or("\t".to_string(), |s| body::decode_separator(s));
            let delim = headers
                .get("row_delimiter")
                .map_or("\n".to_string(), |s| body::decode_separator(s));
            body::parse_csv(
                text,
                &CsvOptions {
                    column_separator: sep,
                    line_delimiter: delim,
                    enclose: None,
                    escape: None,
                    trim_double_quotes: false,
                    skip_lines: 0,
                },
            )
        }
        other => return Err(fail(format!("unknown data format, format={other}"))),
    };
    let mut out = Converted::default();
    let csv_names: Vec<String> = if listed.is_empty() {
        table.columns.iter().map(|c| c.name.clone()).collect()
    } else {
        listed.clone()
    };
    for rec in records {
        out.total += 1;
        let (get, src): (Getter, String) = match rec {
            Record::Bad { reason, src } => {
                out.filtered += 1;
                out.error_lines.push(format!("Error: {reason}. Row: {src}"));
                continue;
            }
            Record::Json { object, src } => {
                let object = object.clone();
                (
                    Box::new(move |name: &str| object.get(name).map(body::json_text)),
                    src,
                )
            }
            Record::Csv { fields, src } => {
                if fields.len() != csv_names.len() {
                    out.filtered += 1;
                    out.error_lines.push(format!(
                        "Error: Value count does not match column count. Expect {}, but got {}. Row: {src}",
                        csv_names.len(),
                        fields.len()
                    ));
                    continue;
                }
                let map: HashMap<String, Option<String>> =
                    csv_names.iter().cloned().zip(fields).collect();
                (Box::new(move |name: &str| map.get(name).cloned()), src)
            }
        };
        let delete = match (header_op, get("__op")) {
            (Some(op), _) => op,
            (None, None) => false,
            (None, Some(raw)) => {
                let v = raw.map_or(serde_json::Value::Null, serde_json::Value::String);
                match op_of(&v) {
                    Some(d) => d,
                    None => {
                        out.filtered += 1;
                        out.error_lines
                            .push(format!("Error: invalid __op value. Row: {src}"));
                        continue;
                    }
                }
            }
        };
        if delete && table.keys_type != KeysType::Primary {
            return Err(fail(
                "Delete (__op = 1) is only supported by primary key tables".into(),
            ));
        }
        let mut values = BTreeMap::new();
        let mut error = None;
        for (i, c) in table.columns.iter().enumerate() {
            let given = get(&c.name);
            let in_scope = listed.is_empty() || listed.iter().any(|n| n == &c.name);
            let raw = match given {
                Some(v) if in_scope => v,
                _ if partial || (delete && i >= table.key_count) => continue,
                _ => c.fill_value(),
            };
            let value = match raw {
                None => None,
                Some(r) => match c.ty.convert(&r, &c.name) {
                    Ok(v) => Some(v),
                    Err(ValueError::Range(reason)) => {
                        error = Some(reason);
                        break;
                    }
                    Err(ValueError::Convert) if strict => {
                        error = Some(format!(
                            "Value '{r}' is out of range or invalid for column '{}' of type {}",
                            c.name,
                            c.ty.text()
                        ));
                        break;
                    }
                    Err(ValueError::Convert) => None,
                },
            };
            if value.is_none() && !c.nullable {
                error = Some(format!("NULL value in non-nullable column '{}'", c.name));
                break;
            }
            values.insert(c.name.clone(), value);
        }
        if let Some(reason) = error {
            out.filtered += 1;
            out.error_lines.push(format!("Error: {reason}. Row: {src}"));
            continue;
        }
        out.ops.push(RowOp {
            values,
            delete,
            partial,
        });
    }
    Ok(out)
}

/// `max_filter_ratio` of a request (default 0).
pub(crate) fn max_filter_ratio(headers: &HashMap<String, String>) -> Result<f64, String> {
    match headers.get("max_filter_ratio") {
        None => Ok(0.0),
        Some(v) => v
            .trim()
            .parse::<f64>()
            .ok()
            .filter(|r| (0.0..=1.0).contains(r))
            .ok_or_else(|| format!("Invalid max_filter_ratio: {v}")),
    }
}

/// Whether `filtered` of `total` rows exceed the ratio.
pub(crate) fn too_many_filtered(total: u64, filtered: u64, ratio: f64) -> bool {
    filtered > 0 && (filtered as f64) > ratio * (total as f64)
}
