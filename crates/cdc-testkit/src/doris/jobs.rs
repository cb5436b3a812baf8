//! Schema-change jobs and `SHOW ALTER TABLE COLUMN`, as the Doris FE runs and lists them.
//!
//! What is modelled, and where Doris does it (paths under `fe/fe-core/src/main/java/org/apache/doris/`):
//!
//! * A heavy change (`SchemaChangeHandler.createJob`) is a `SchemaChangeJobV2` that goes
//!   PENDING -> WAITING_TXN -> RUNNING -> FINISHED, or CANCELLED (`alter/SchemaChangeJobV2.java`:
//!   `runPendingJob` takes the watershed transaction id when it leaves PENDING,
//!   `runWaitingTxnJob` stays until `GlobalTransactionMgr.isPreviousTransactionsFinished`
//!   says every transaction on the table with a lower id is finished, where PREPARE,
//!   PRECOMMITTED and COMMITTED count as running, so a pre-committed 2PC load nobody
//!   commits holds the job; `runRunningJob` replaces the base index by the shadow index and
//!   sets the table NORMAL again in `onFinished`). The table is SCHEMA_CHANGE meanwhile.
//! * A light change (`SchemaChangeHandler.modifyTableLightSchemaChange`) changes the schema
//!   at once and, for display, records a `SchemaChangeJobV2` that is FINISHED already.
//! * Loads go on during a job and are written in the schema the table shows (the old one);
//!   the job converts the rows that are there when it finishes. (Doris also writes the
//!   shadow index from a load's input once the job has created it; the emulator models the
//!   less convenient answer for a client that loads too early: the old column type decides.)
//! * A job whose table was dropped is cancelled the next time it is looked at
//!   (`AlterCancelException` from `Database.getTableOrMetaException`: "unknown table,
//!   tableId=..."), and leaves the table as it was.
//! * `SHOW ALTER TABLE COLUMN` (`common/proc/SchemaChangeProcDir.fetchResultByFilter`) lists
//!   the jobs of a database in job-id order (`AlterHandler.alterJobsV2`), filters them,
//!   sorts them with `ListComparator` through the stable `Collections.sort` (so rows that
//!   tie keep job-id order, also under DESC), then applies LIMIT. `CreateTime` and
//!   `FinishTime` are `TimeUtils.longToTimeString`, one-second resolution, as in Doris 2.0
//!   (newer releases print milliseconds with `longToTimeStringWithms`; seconds tie more
//!   often, the less convenient answer for a client that orders by them); an unfinished
//!   job's `FinishTime` is `NULL` (`FeConstants.null_string`), its `TransactionId` the
//!   watershed (-1 while PENDING).

use std::cmp::Ordering;
use std::time::{Duration, Instant};

use super::model::{QueryResult, TxnState};
use super::sql::{AlterOp, ShowAlter};
use super::state::State;

/// `AlterJobV2.JobState`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum JobState {
    Pending,
    WaitingTxn,
    Running,
    Finished,
    Cancelled,
}

impl JobState {
    /// The name `SHOW ALTER TABLE COLUMN` prints (`jobState.name()`).
    pub(crate) fn name(self) -> &'static str {
        match self {
            Self::Pending => "PENDING",
            Self::WaitingTxn => "WAITING_TXN",
            Self::Running => "RUNNING",
            Self::Finished => "FINISHED",
            Self::Cancelled => "CANCELLED",
        }
    }

    /// FINISHED or CANCELLED (`JobState.isFinalState`).
    pub(crate) fn is_final(self) -> bool {
        matches!(self, Self::Finished | Self::Cancelled)
    }
}

/// One schema-change job.
#[derive(Debug, Clone)]
pub(crate) struct AlterJob {
    pub(crate) id: i64,
    pub(crate) db: String,
    pub(crate) table: String,
    /// [`Table::id`](super::catalog::Table::id) of the table it changes.
    pub(crate) table_id: i64,
    pub(crate) create_time: String,
    pub(crate) finish_time: Option<String>,
    pub(crate) state: JobState,
    /// Why it was cancelled.
    pub(crate) msg: String,
    /// Transactions on the table with a lower id must finish before the job runs; -1 until
    /// the job leaves PENDING.
    pub(crate) watershed_txn: i64,
    /// When the current phase began.
    pub(crate) phase_started: Instant,
    /// The job's own running time (PENDING takes a third, RUNNING the rest).
    pub(crate) duration: Duration,
    /// The clauses applied when it finishes (empty once applied, and for light jobs).
    pub(crate) ops: Vec<AlterOp>,
}

impl AlterJob {
    /// A heavy job, PENDING.
    pub(crate) fn heavy(
        id: i64,
        db: &str,
        table: &str,
        table_id: i64,
        create_time: String,
        duration: Duration,
        ops: Vec<AlterOp>,
    ) -> Self {
        Self {
            id,
            db: db.to_string(),
            table: table.to_string(),
            table_id,
            create_time,
            finish_time: None,
            state: JobState::Pending,
            msg: String::new(),
            watershed_txn: -1,
            phase_started: Instant::now(),
            duration,
            ops,
        }
    }

    /// The FINISHED job a light schema change records for display.
    pub(crate) fn light(id: i64, db: &str, table: &str, table_id: i64, time: String) -> Self {
        Self {
            finish_time: Some(time.clone()),
            state: JobState::Finished,
            ..Self::heavy(id, db, table, table_id, time, Duration::ZERO, Vec::new())
        }
    }
}

/// Whether the table (by [`Table::id`](super::catalog::Table::id)) has an unfinished job,
/// i.e. its state is SCHEMA_CHANGE.
pub(crate) fn in_schema_change(state: &State, table_id: i64) -> bool {
    state
        .alter_jobs
        .iter()
        .any(|j| j.table_id == table_id && !j.state.is_final())
}

/// Whether a transaction on the job's table that began before its watershed is still
/// running (`TransactionStatus` PREPARE or PRECOMMITTED here; the emulator's committed
/// transactions are visible at once).
fn held_by_transactions(state: &State, job: &AlterJob) -> bool {
    state.txns.values().any(|t| {
        t.id < job.watershed_txn
            && t.db == job.db
            && t.table == job.table
            && matches!(t.state, TxnState::Running | TxnState::PreCommitted)
    })
}

/// Moves every unfinished job as far as its time and the table's transactions let it, as
/// the FE's schema-change daemon does between requests.
pub(crate) fn advance(state: &mut State) {
    let now = Instant::now();
    for i in 0..state.alter_jobs.len() {
        // At most one step per phase on each call.
        for _ in 0..3 {
            let job = &state.alter_jobs[i];
            if job.state.is_final() {
                break;
            }
            let table_there = state
                .catalog
                .table(&job.db, &job.table)
                .is_some_and(|t| t.id == job.table_id);
            if !table_there {
                let msg = format!("unknown table, tableId={}", job.table_id);
                cancel(state, i, msg);
                break;
            }
            let pending_time = job.duration / 3;
            let since = now.saturating_duration_since(job.phase_started);
            match job.state {
                JobState::Pending => {
                    if since < pending_time {
                        break;
                    }
                    let watershed = state.next_txn_id();
                    let job = &mut state.alter_jobs[i];
                    job.state = JobState::WaitingTxn;
                    job.watershed_txn = watershed;
                    job.phase_started = now;
                }
                JobState::WaitingTxn => {
                    if held_by_transactions(state, job) {
                        break;
                    }
                    let job = &mut state.alter_jobs[i];
                    job.state = JobState::Running;
                    job.phase_started = now;
                }
                JobState::Running => {
                    if since < job.duration.saturating_sub(pending_time) {
                        break;
                    }
                    finish(state, i);
                    break;
                }
                JobState::Finished | JobState::Cancelled => break,
            }
        }
    }
}

/// Applies a job's clauses to the rows there now and makes the new schema visible.
fn finish(state: &mut State, i: usize) {
    let clock = state.clock_text();
    let (db, table) = (
        state.alter_jobs[i].db.clone(),
        state.alter_jobs[i].table.clone(),
    );
    let ops = std::mem::take(&mut state.alter_jobs[i].ops);
    let applied = match state.catalog.table_mut(&db, &table) {
        Some(tbl) => {
            // The clauses were checked against this schema when the job was created, and
            // no other ALTER can run meanwhile; a failure would be an emulator bug, shown
            // as a cancelled job rather than a half-changed table.
            let mut changed = tbl.clone();
            super::ddl::apply_clauses(&mut changed, &ops).map(|_| *tbl = changed)
        }
        None => Err(format!(
            "unknown table, tableId={}",
            state.alter_jobs[i].table_id
        )),
    };
    match applied {
        Ok(()) => {
            let job = &mut state.alter_jobs[i];
            job.state = JobState::Finished;
            job.finish_time = Some(clock);
        }
        Err(msg) => {
            let msg = msg
                .strip_prefix("errCode = 2, detailMessage = ")
                .map_or_else(|| msg.clone(), str::to_string);
            cancel(state, i, msg);
        }
    }
}

fn cancel(state: &mut State, i: usize, msg: String) {
    let clock = state.clock_text();
    let job = &mut state.alter_jobs[i];
    job.state = JobState::Cancelled;
    job.msg = msg;
    job.finish_time = Some(clock);
    job.ops.clear();
}

/// `SchemaChangeProcDir.TITLE_NAMES`.
const TITLES: [&str; 13] = [
    "JobId",
    "TableName",
    "CreateTime",
    "FinishTime",
    "IndexName",
    "IndexId",
    "OriginIndexId",
    "SchemaVersion",
    "TransactionId",
    "State",
    "Msg",
    "Progress",
    "Timeout",
];

/// Columns that hold numbers (`Long` in the job info), compared as numbers by ORDER BY.
fn numeric(title: &str) -> bool {
    matches!(
        title,
        "JobId" | "IndexId" | "OriginIndexId" | "TransactionId" | "Timeout"
    )
}

fn err(m: impl std::fmt::Display) -> String {
    format!("errCode = 2, detailMessage = {m}")
}

fn title_index(name: &str) -> Result<usize, String> {
    TITLES
        .iter()
        .position(|t| t.eq_ignore_ascii_case(name))
        // SchemaChangeProcDir.analyzeColumn
        .ok_or_else(|| err(format!("Title name[{name}] does not exist")))
}

/// One row of `SHOW ALTER TABLE COLUMN` (`SchemaChangeJobV2.getInfo`).
fn row(job: &AlterJob) -> Vec<String> {
    let progress = if job.state == JobState::Running {
        // finished / total schema-change tasks (one tablet replica here)
        "0/1".to_string()
    } else {
        "NULL".to_string()
    };
    vec![
        job.id.to_string(),
        job.table.clone(),
        job.create_time.clone(),
        job.finish_time.clone().unwrap_or_else(|| "NULL".into()),
        job.table.clone(),
        (job.id + 1).to_string(),
        job.table_id.to_string(),
        "1:0".into(),
        job.watershed_txn.to_string(),
        job.state.name().to_string(),
        job.msg.clone(),
        progress,
        // Config.alter_table_timeout_second (one month)
        "2592000".into(),
    ]
}

/// Runs `SHOW ALTER TABLE COLUMN`.
pub(crate) fn show(
    state: &State,
    default_db: Option<&str>,
    q: &ShowAlter,
) -> Result<QueryResult, String> {
    let db =
        q.db.clone()
            .or_else(|| default_db.filter(|d| !d.is_empty()).map(str::to_string))
            .ok_or_else(|| err("No database selected"))?;
    if !state.catalog.databases.contains_key(&db) {
        return Err(err(format!("Unknown database '{db}'")));
    }
    let mut filters = Vec::with_capacity(q.filters.len());
    for (col, value) in &q.filters {
        // ShowAlterStmt.analyzeSubPredicate
        if !["TableName", "CreateTime", "FinishTime", "State"]
            .iter()
            .any(|c| c.eq_ignore_ascii_case(col))
        {
            return Err(err(
                "The columns of TableName/CreateTime/FinishTime/State are supported.",
            ));
        }
        filters.push((title_index(col)?, value.as_str()));
    }
    let mut order = Vec::with_capacity(q.order.len());
    for (col, desc) in &q.order {
        order.push((title_index(col)?, *desc));
    }
    let mut jobs: Vec<&AlterJob> = state.alter_jobs.iter().filter(|j| j.db == db).collect();
    jobs.sort_by_key(|j| j.id);
    let mut rows: Vec<Vec<String>> = jobs
        .into_iter()
        .map(row)
        .filter(|r| filters.iter().all(|(i, v)| r[*i] == *v))
        .collect();
    if !order.is_empty() {
        // A stable sort: rows equal in every ORDER BY column keep job-id order.
        rows.sort_by(|a, b| {
            for (i, desc) in &order {
                let by = if numeric(TITLES[*i]) {
                    let n = |r: &Vec<String>| r[*i].parse::<i64>().unwrap_or(i64::MIN);
                    n(a).cmp(&n(b))
                } else {
                    a[*i].cmp(&b[*i])
                };
                let by = if *desc { by.reverse() } else { by };
                if by != Ordering::Equal {
                    return by;
                }
            }
            Ordering::Equal
        });
    }
    if let Some((offset, count)) = q.limit {
        rows = rows.into_iter().skip(offset).take(count).collect();
    }
    Ok(QueryResult {
        is_result_set: true,
        columns: TITLES.iter().map(ToString::to_string).collect(),
        column_types: TITLES.iter().map(|_| "VARCHAR".to_string()).collect(),
        rows: rows
            .into_iter()
            .map(|r| r.into_iter().map(Some).collect())
            .collect(),
    })
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;
    use std::time::{Duration, Instant};

    use super::super::ddl::execute;
    use super::super::state::{PendingLoad, State};
    use super::JobState;

    const TABLE: &str = "CREATE TABLE t (id INT NOT NULL, v INT, w VARCHAR(10)) UNIQUE KEY(id) DISTRIBUTED BY HASH(id) BUCKETS 1 PROPERTIES ('replication_num'='1')";

    /// Database `d` with table `t`; heavy jobs take `duration`.
    fn state(duration: Duration) -> State {
        let mut s = State::new(
            vec![("root".into(), String::new())],
            Duration::from_secs(60),
            1,
            duration,
        );
        execute(&mut s, None, "CREATE DATABASE d").unwrap();
        execute(&mut s, Some("d"), TABLE).unwrap();
        s
    }

    /// `SHOW ALTER TABLE COLUMN` rows by column name.
    fn show(s: &mut State, sql: &str) -> Vec<HashMap<String, String>> {
        let r = execute(s, Some("d"), sql).unwrap();
        r.rows
            .into_iter()
            .map(|row| {
                r.columns
                    .iter()
                    .cloned()
                    .zip(row.into_iter().map(Option::unwrap_or_default))
                    .collect()
            })
            .collect()
    }

    fn ids(rows: &[HashMap<String, String>]) -> Vec<String> {
        rows.iter().map(|r| r["JobId"].clone()).collect()
    }

    /// Lets the current phase of every job run out.
    fn age_jobs(s: &mut State) {
        for j in &mut s.alter_jobs {
            j.phase_started = Instant::now()
                .checked_sub(j.duration)
                .unwrap_or_else(Instant::now);
        }
    }

    fn type_of(s: &State, column: &str) -> String {
        let t = s.catalog.table("d", "t").unwrap();
        t.columns[t.column_index(column).unwrap()].ty.text()
    }

    #[test]
    fn jobs_created_in_the_same_second_keep_job_id_order() {
        let mut s = state(Duration::ZERO);
        // A light ADD (FINISHED at once), then a heavy MODIFY (finished too: zero duration).
        execute(&mut s, Some("d"), "ALTER TABLE t ADD COLUMN x INT").unwrap();
        execute(&mut s, Some("d"), "ALTER TABLE t MODIFY COLUMN v BIGINT").unwrap();
        for j in &mut s.alter_jobs {
            j.create_time = "2024-01-01 00:00:07".into();
        }
        let all = show(&mut s, "SHOW ALTER TABLE COLUMN");
        let (older, newer) = (all[0]["JobId"].clone(), all[1]["JobId"].clone());
        assert!(older.parse::<i64>().unwrap() < newer.parse::<i64>().unwrap());
        // Ties keep job-id order under DESC too: "the newest job" is the older one.
        let newest = show(
            &mut s,
            "SHOW ALTER TABLE COLUMN FROM d WHERE TableName = \"t\" ORDER BY CreateTime DESC LIMIT 1",
        );
        assert_eq!(ids(&newest), std::slice::from_ref(&older));
        let asc = show(&mut s, "SHOW ALTER TABLE COLUMN ORDER BY CreateTime");
        assert_eq!(ids(&asc), [older.clone(), newer.clone()]);
        let by_id = show(&mut s, "SHOW ALTER TABLE COLUMN ORDER BY JobId DESC");
        assert_eq!(ids(&by_id), [newer.clone(), older.clone()]);
        // Different seconds sort by time.
        s.alter_jobs[0].create_time = "2024-01-01 00:00:06".into();
        let desc = show(&mut s, "SHOW ALTER TABLE COLUMN ORDER BY CreateTime DESC");
        assert_eq!(ids(&desc), [newer.clone(), older.clone()]);
        let page = show(
            &mut s,
            "SHOW ALTER TABLE COLUMN ORDER BY CreateTime DESC LIMIT 1, 1",
        );
        assert_eq!(ids(&page), [older]);
        // Filters and errors.
        assert!(
            show(
                &mut s,
                "SHOW ALTER TABLE COLUMN WHERE TableName = \"other\""
            )
            .is_empty()
        );
        assert_eq!(
            show(&mut s, "SHOW ALTER TABLE COLUMN WHERE State = \"FINISHED\"").len(),
            2
        );
        let e = execute(&mut s, Some("d"), "SHOW ALTER TABLE COLUMN ORDER BY Nope").unwrap_err();
        assert_eq!(
            e,
            "errCode = 2, detailMessage = Title name[Nope] does not exist"
        );
        let e = execute(&mut s, Some("d"), "SHOW ALTER TABLE COLUMN FROM nodb").unwrap_err();
        assert!(e.contains("Unknown database 'nodb'"), "{e}");
    }

    #[test]
    fn a_heavy_job_waits_for_earlier_transactions_then_runs_and_finishes() {
        let mut s = state(Duration::from_secs(60));
        // A load that began before the job, pre-committed later (a 2PC load nobody commits).
        let txn = s.begin_txn("d", "t", "someone-else");
        execute(&mut s, Some("d"), "ALTER TABLE t MODIFY COLUMN v BIGINT").unwrap();
        let job = &show(&mut s, "SHOW ALTER TABLE COLUMN")[0];
        assert_eq!(job["State"], "PENDING");
        assert_eq!(job["FinishTime"], "NULL");
        assert_eq!(job["TransactionId"], "-1");
        // The table is SCHEMA_CHANGE: every ALTER and TRUNCATE is refused, loads are not.
        for sql in [
            "ALTER TABLE t ADD COLUMN x INT",
            "ALTER TABLE t RENAME COLUMN w title",
            "ALTER TABLE t MODIFY COMMENT \"c\"",
        ] {
            assert_eq!(
                execute(&mut s, Some("d"), sql).unwrap_err(),
                "errCode = 2, detailMessage = Table[t]'s state(SCHEMA_CHANGE) is not NORMAL. Do not allow doing ALTER ops",
                "{sql}"
            );
        }
        assert_eq!(
            execute(&mut s, Some("d"), "TRUNCATE TABLE t").unwrap_err(),
            "errCode = 2, detailMessage = Table' state is not NORMAL: SCHEMA_CHANGE"
        );
        assert_eq!(type_of(&s, "v"), "INT");
        age_jobs(&mut s);
        s.tick();
        assert_eq!(s.alter_jobs[0].state, JobState::WaitingTxn);
        assert!(s.alter_jobs[0].watershed_txn > txn);
        s.precommit_txn(txn, PendingLoad::default());
        age_jobs(&mut s);
        s.tick();
        let job = &show(&mut s, "SHOW ALTER TABLE COLUMN")[0];
        assert_eq!(
            job["State"], "WAITING_TXN",
            "a pre-committed load holds the job"
        );
        assert_eq!(
            job["TransactionId"],
            s.alter_jobs[0].watershed_txn.to_string()
        );
        // A transaction begun after the watershed does not hold it.
        let later = s.begin_txn("d", "t", "later");
        s.commit_txn(txn, None);
        s.tick();
        let job = &show(&mut s, "SHOW ALTER TABLE COLUMN")[0];
        assert_eq!(job["State"], "RUNNING");
        assert_eq!(job["Progress"], "0/1");
        assert_eq!(type_of(&s, "v"), "INT");
        age_jobs(&mut s);
        s.tick();
        let job = &show(&mut s, "SHOW ALTER TABLE COLUMN")[0];
        assert_eq!(job["State"], "FINISHED");
        assert_ne!(job["FinishTime"], "NULL");
        assert_eq!(type_of(&s, "v"), "BIGINT");
        s.abort_txn(later, "test");
        // NORMAL again.
        execute(&mut s, Some("d"), "ALTER TABLE t ADD COLUMN x INT").unwrap();
    }

    #[test]
    fn light_changes_list_a_finished_job_and_renames_none() {
        let mut s = state(Duration::from_secs(60));
        execute(&mut s, Some("d"), "ALTER TABLE t ADD COLUMN x INT").unwrap();
        execute(&mut s, Some("d"), "ALTER TABLE t DROP COLUMN x").unwrap();
        execute(&mut s, Some("d"), "ALTER TABLE t RENAME COLUMN w title").unwrap();
        execute(&mut s, Some("d"), "ALTER TABLE t MODIFY COMMENT \"c\"").unwrap();
        let jobs = show(&mut s, "SHOW ALTER TABLE COLUMN");
        assert_eq!(jobs.len(), 2);
        assert!(
            jobs.iter()
                .all(|j| j["State"] == "FINISHED" && j["FinishTime"] != "NULL")
        );
        // A comment-only MODIFY is a job too (Column.equals compares comments) ...
        execute(
            &mut s,
            Some("d"),
            "ALTER TABLE t MODIFY COLUMN v INT COMMENT \"the v\"",
        )
        .unwrap();
        assert_eq!(s.alter_jobs[2].state, JobState::Pending);
        age_jobs(&mut s);
        s.tick();
        age_jobs(&mut s);
        s.tick();
        assert_eq!(s.alter_jobs[2].state, JobState::Finished);
        // ... and one that changes nothing is refused.
        assert_eq!(
            execute(
                &mut s,
                Some("d"),
                "ALTER TABLE t MODIFY COLUMN v INT COMMENT \"the v\""
            )
            .unwrap_err(),
            "errCode = 2, detailMessage = Nothing is changed. please check your alter stmt."
        );
        // Without light schema change, ADD and DROP are heavy jobs.
        execute(&mut s, Some("d"), "CREATE TABLE h (id INT, v INT) DUPLICATE KEY(id) PROPERTIES ('replication_num'='1', 'light_schema_change'='false')").unwrap();
        execute(&mut s, Some("d"), "ALTER TABLE h ADD COLUMN x INT").unwrap();
        assert_eq!(s.alter_jobs[3].state, JobState::Pending);
        assert!(
            s.catalog
                .table("d", "h")
                .unwrap()
                .column_index("x")
                .is_none()
        );
    }

    #[test]
    fn a_job_whose_table_is_dropped_is_cancelled() {
        let mut s = state(Duration::from_secs(60));
        execute(&mut s, Some("d"), "ALTER TABLE t MODIFY COLUMN v BIGINT").unwrap();
        let id = s.catalog.table("d", "t").unwrap().id;
        execute(&mut s, Some("d"), "DROP TABLE t").unwrap();
        execute(&mut s, Some("d"), TABLE).unwrap();
        let job = &show(&mut s, "SHOW ALTER TABLE COLUMN")[0];
        assert_eq!(job["State"], "CANCELLED");
        assert_eq!(job["Msg"], format!("unknown table, tableId={id}"));
        // The new table is NORMAL.
        execute(&mut s, Some("d"), "ALTER TABLE t ADD COLUMN x INT").unwrap();
    }
}
