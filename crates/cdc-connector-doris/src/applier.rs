//! Schema changes through the FE's HTTP SQL API (`POST /api/query/default_cluster/{db}`),
//! as Flink CDC's Doris sink does.
//!
//! Doris runs a column change as a schema-change job. A light ADD / DROP COLUMN (a value
//! column of a table with `light_schema_change`, the default) changes the schema at once and
//! is listed as a FINISHED job; a MODIFY COLUMN, and an ADD / DROP that cannot be light, is
//! an asynchronous job: PENDING, WAITING_TXN (until every transaction on the table that
//! began before it is finished, pre-committed ones included), RUNNING, then FINISHED, when
//! the new schema takes effect. Rows loaded before that are read with the old schema (a
//! value too large for the old INT becomes NULL). So after every ADD / DROP / RENAME /
//! MODIFY COLUMN we poll `SHOW ALTER TABLE COLUMN FROM db WHERE TableName = ..` until no job
//! of the table is unfinished (a CANCELLED job that was not listed before the statement is
//! an error with its message), for at most `table.schema-change.timeout`, before the runtime
//! loads a row of the new shape. Not "the newest job": `CreateTime` has one-second resolution
//! and ties keep job-id order, so right after a light change in the same second `ORDER BY
//! CreateTime DESC LIMIT 1` names that finished job and not the one still running.
//!
//! Our own transactions never hold a job: the runtime takes a checkpoint just before a
//! schema change, so everything loaded before it is committed. A job held by someone else's
//! transaction is waited for like any other, within the timeout. While a job runs, Doris
//! refuses every other ALTER (and TRUNCATE) of the table ("... is not NORMAL"); such a
//! statement is retried within the same timeout.
//!
//! Replays must be harmless (after a crash the runtime may apply a change again), so an
//! ADD of a column that exists, a DROP of one that is gone, a RENAME already done, or a
//! MODIFY that Doris finds changes nothing count as success; the table's jobs are still
//! waited for, as the earlier run's job may still run.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use cdc_api::{
    ColumnPosition, Error, Result, SchemaApplier, SchemaChangeEvent, SchemaChangeKind, TableId,
};
use serde_json::Value as Json;
use tokio::time::Instant;

use crate::config::DorisSinkConfig;
use crate::ddl::{self, Placement, TableLayout};
use crate::retry::{LoadVerdict, classify_load};
use crate::service::{DorisService, as_answer};

/// The longest pause between two polls of a schema-change job, and between two tries of a
/// statement refused because a job holds the table.
const MAX_POLL: Duration = Duration::from_secs(1);

/// A SQL statement's failure.
#[derive(Debug)]
enum SqlError {
    /// The server refused the statement (the message says why).
    Refused(String),
    /// Retrying did not get through (network, 5xx, authentication).
    Failed(Error),
}

struct TableState {
    schema: cdc_api::Schema,
    layout: TableLayout,
}

/// Applies schema changes to Doris.
pub(crate) struct DorisSchemaApplier {
    service: Arc<DorisService>,
    config: Arc<DorisSinkConfig>,
    tables: HashMap<TableId, TableState>,
}

impl DorisSchemaApplier {
    pub(crate) fn new(service: Arc<DorisService>, config: Arc<DorisSinkConfig>) -> Self {
        Self {
            service,
            config,
            tables: HashMap::new(),
        }
    }

    /// Runs one statement; retries transient failures and a table busy with another job.
    async fn execute(&self, db: &str, sql: &str) -> std::result::Result<Json, SqlError> {
        let mut attempt = 0u32;
        let started = Instant::now();
        loop {
            let answer = self.service.query(db, sql).await;
            let verdict = match &answer {
                Ok(a) if a.status == 200 => None,
                _ => Some(classify_load(as_answer(&answer), false)),
            };
            let retry_reason = match verdict {
                Some(LoadVerdict::Retry { reason, .. }) => Some(reason),
                Some(LoadVerdict::Stop { reason, .. }) => {
                    return Err(SqlError::Failed(Error::permanent(
                        format!("running `{sql}` on the Doris FE"),
                        reason,
                    )));
                }
                _ => None,
            };
            if let Some(reason) = retry_reason {
                attempt += 1;
                if attempt > self.config.max_retries {
                    return Err(SqlError::Failed(Error::transient(
                        format!("running `{sql}` on the Doris FE"),
                        format!("{reason} (after {} retries)", self.config.max_retries),
                    )));
                }
                tokio::time::sleep(self.backoff(attempt)).await;
                continue;
            }
            let body = answer.map(|a| a.body).unwrap_or_default();
            let json: Json = serde_json::from_slice(&body).map_err(|_| {
                SqlError::Failed(Error::permanent(
                    format!("running `{sql}` on the Doris FE"),
                    format!(
                        "malformed answer: {}",
                        String::from_utf8_lossy(&body)
                            .chars()
                            .take(300)
                            .collect::<String>()
                    ),
                ))
            })?;
            let code = json.get("code").and_then(Json::as_i64).unwrap_or(-1);
            if code == 0 {
                return Ok(json.get("data").cloned().unwrap_or(Json::Null));
            }
            let msg = match json.get("data") {
                Some(Json::String(s)) if !s.is_empty() => s.clone(),
                _ => json
                    .get("msg")
                    .and_then(Json::as_str)
                    .unwrap_or("unknown error")
                    .to_string(),
            };
            if code == 401 || msg.eq_ignore_ascii_case("Unauthorized") {
                return Err(SqlError::Failed(
                    Error::permanent(format!("running `{sql}` on the Doris FE"), msg)
                        .with_hint("check the sink's username and password"),
                ));
            }
            let lower = msg.to_ascii_lowercase();
            // OlapTable.checkNormalStateForAlter ("Table[t]'s state(SCHEMA_CHANGE) is not
            // NORMAL. Do not allow doing ALTER ops") or InternalCatalog.truncateTable ("Table'
            // state is not NORMAL: SCHEMA_CHANGE"): a schema-change job still runs on the table.
            let waited = started.elapsed();
            if lower.contains("is not normal") && waited < self.config.schema_change_timeout {
                let left = self.config.schema_change_timeout.saturating_sub(waited);
                tokio::time::sleep(MAX_POLL.min(left)).await;
                continue;
            }
            return Err(SqlError::Refused(msg));
        }
    }

    fn backoff(&self, attempt: u32) -> Duration {
        cdc_stream_load::driver::backoff(attempt, self.config.check_interval)
    }

    async fn run(&self, what: &str, table: &TableId, sql: &str) -> Result<Json> {
        self.execute(table.schema_name(), sql)
            .await
            .map_err(|e| into_error(e, what, table, sql))
    }

    /// The schema-change jobs of `table` that the FE lists.
    async fn jobs(&self, table: &TableId) -> Result<Vec<Job>> {
        let data = self
            .run(
                "watching the schema-change jobs of",
                table,
                &ddl::show_alter_jobs(table),
            )
            .await?;
        Ok(jobs_of(&data))
    }

    /// Runs an ALTER that may create a schema-change job, then waits until no job of the
    /// table is unfinished. A refusal for which `replayed` holds means the change is there
    /// already (a replay after a crash), and the table's jobs are waited for all the same.
    async fn alter(
        &self,
        what: &str,
        table: &TableId,
        sql: &str,
        replayed: fn(&str) -> bool,
    ) -> Result<()> {
        let before: HashSet<String> = self.jobs(table).await?.into_iter().map(|j| j.id).collect();
        match self.execute(table.schema_name(), sql).await {
            Ok(_) => {}
            Err(SqlError::Refused(msg)) if replayed(&msg) => {
                tracing::info!(%table, statement = sql, reason = %msg, "already applied; treated as done");
            }
            Err(e) => return Err(into_error(e, what, table, sql)),
        }
        self.wait_for_jobs(what, table, sql, &before).await
    }

    /// Polls the table's jobs until none is unfinished, for at most
    /// `table.schema-change.timeout`. `before` are the jobs listed before the statement: a
    /// CANCELLED one not among them is the statement's own.
    async fn wait_for_jobs(
        &self,
        what: &str,
        table: &TableId,
        sql: &str,
        before: &HashSet<String>,
    ) -> Result<()> {
        let timeout = self.config.schema_change_timeout;
        let started = Instant::now();
        let mut pause = Duration::from_millis(50);
        loop {
            let jobs = self.jobs(table).await?;
            if let Some(job) = jobs
                .iter()
                .find(|j| j.state == "CANCELLED" && !before.contains(&j.id))
            {
                return Err(Error::permanent(
                    format!("{what} {table}"),
                    format!(
                        "Doris cancelled schema-change job {} of `{sql}`: {}",
                        job.id, job.msg
                    ),
                ));
            }
            // None listed, or all FINISHED / CANCELLED: the schema the table shows is final.
            let Some(job) = jobs.iter().find(|j| j.unfinished()) else {
                return Ok(());
            };
            let waited = started.elapsed();
            if waited >= timeout {
                let hint = if job.state == "WAITING_TXN" {
                    "the job waits for transactions on the table that began before it (a Stream Load pre-committed by another client holds it until that client commits or aborts it); check them with SHOW PROC '/transactions', or raise table.schema-change.timeout"
                } else {
                    "check the job with SHOW ALTER TABLE COLUMN, or raise table.schema-change.timeout"
                };
                return Err(Error::permanent(
                    format!("{what} {table}"),
                    format!(
                        "schema-change job {} of the table is still {} after {} s (table.schema-change.timeout); rows of the new shape are not loaded before it finishes",
                        job.id,
                        job.state,
                        timeout.as_secs()
                    ),
                )
                .with_hint(hint));
            }
            tokio::time::sleep(pause.min(timeout.saturating_sub(waited))).await;
            pause = (pause * 2).min(MAX_POLL);
        }
    }

    async fn create_table(&mut self, table: &TableId, schema: &cdc_api::Schema) -> Result<()> {
        let db = table.schema_name();
        // The database may not exist yet, so the statement runs in information_schema.
        self.execute("information_schema", &ddl::create_database(db))
            .await
            .map_err(|e| {
                into_error(
                    e,
                    "creating the database of",
                    table,
                    &ddl::create_database(db),
                )
            })?;
        let partition = self.config.auto_partition.for_table(&table.to_string());
        let layout = TableLayout::new(schema, partition);
        let sql = ddl::create_table(
            table,
            &layout,
            schema.comment.as_deref(),
            &self.config.table_properties,
        );
        self.run("creating", table, &sql).await?;
        self.tables.insert(
            table.clone(),
            TableState {
                schema: schema.clone(),
                layout,
            },
        );
        Ok(())
    }

    async fn add_columns(
        &mut self,
        table: &TableId,
        columns: &[(cdc_api::Column, ColumnPosition)],
    ) -> Result<()> {
        for (column, position) in columns {
            let doris_column = ddl::doris_column(column, false, false);
            let placement = self
                .tables
                .get(table)
                .map_or(Placement::Last, |t| placement(&t.layout, position));
            let sql = ddl::add_column(table, &doris_column, &placement);
            // A replay finds the column there already.
            self.alter("adding a column to", table, &sql, already_exists)
                .await?;
            if let Some(state) = self.tables.get_mut(table) {
                if state.layout.column(&column.name).is_none() {
                    let at = match &placement {
                        Placement::Last => state.layout.columns.len(),
                        Placement::First => 0,
                        Placement::After(name) => state
                            .layout
                            .columns
                            .iter()
                            .position(|c| &c.name == name)
                            .map_or(state.layout.columns.len(), |i| i + 1),
                    };
                    state.layout.columns.insert(at, doris_column);
                }
            }
        }
        Ok(())
    }

    async fn drop_columns(&mut self, table: &TableId, columns: &[String]) -> Result<()> {
        for name in columns {
            let sql = ddl::drop_column(table, name);
            // A replay finds the column gone already.
            self.alter("dropping a column of", table, &sql, does_not_exist)
                .await?;
            if let Some(state) = self.tables.get_mut(table) {
                state.layout.columns.retain(|c| &c.name != name);
            }
        }
        Ok(())
    }

    async fn rename_columns(
        &mut self,
        table: &TableId,
        renames: &[(String, String)],
    ) -> Result<()> {
        for (old, new) in renames {
            let sql = ddl::rename_column(table, old, new);
            // A replay: the old name is gone (or the new one exists) because it ran. Doris
            // makes no job for a rename; waiting costs one look at the list.
            self.alter("renaming a column of", table, &sql, |m| {
                does_not_exist(m) || already_exists(m)
            })
            .await?;
            if let Some(state) = self.tables.get_mut(table) {
                if let Some(c) = state.layout.columns.iter_mut().find(|c| &c.name == old) {
                    c.name.clone_from(new);
                }
            }
        }
        Ok(())
    }

    async fn alter_types(
        &mut self,
        table: &TableId,
        types: &[(String, cdc_api::DataType)],
        comments: &std::collections::BTreeMap<String, String>,
    ) -> Result<()> {
        for (name, data_type) in types {
            let current = self
                .tables
                .get(table)
                .and_then(|t| t.layout.column(name))
                .cloned();
            let is_key = current.as_ref().is_some_and(|c| c.is_key);
            let new_type = ddl::altered_type(data_type, is_key);
            let comment = comments
                .get(name)
                .cloned()
                .or_else(|| current.as_ref().and_then(|c| c.comment.clone()));
            // A column only ever becomes nullable (Doris refuses the other way, and key
            // columns stay NOT NULL): lenient makes a dropped or renamed column nullable so
            // that the rows after it, which carry NULL there, load.
            let nullable = current.as_ref().map_or(data_type.nullable, |c| {
                c.nullable || (data_type.nullable && !c.is_key)
            });
            if let Some(c) = &current {
                if c.type_text == new_type && c.comment == comment && c.nullable == nullable {
                    continue;
                }
            }
            let column = ddl::DorisColumn {
                name: name.clone(),
                type_text: new_type,
                nullable,
                is_key,
                default: current.as_ref().and_then(|c| c.default.clone()),
                comment,
            };
            let sql = ddl::modify_column(table, &column);
            // A replay (after a restart the layout is not known, so the statement is sent)
            // finds the column as it should be: "Nothing is changed".
            self.alter("changing a column type of", table, &sql, nothing_changed)
                .await?;
            if let Some(state) = self.tables.get_mut(table) {
                if let Some(c) = state.layout.columns.iter_mut().find(|c| &c.name == name) {
                    *c = column;
                }
            }
        }
        Ok(())
    }
}

fn into_error(e: SqlError, what: &str, table: &TableId, sql: &str) -> Error {
    match e {
        SqlError::Failed(e) => e,
        SqlError::Refused(msg) => {
            let busy = msg.to_ascii_lowercase().contains("is not normal");
            let e = Error::permanent(
                format!("{what} {table}"),
                format!("Doris refused `{sql}`: {msg}"),
            );
            if busy {
                // Retried until table.schema-change.timeout ran out.
                e.with_hint("another schema-change job held the table for longer than table.schema-change.timeout; check it with SHOW ALTER TABLE COLUMN, or raise the timeout")
            } else {
                e
            }
        }
    }
}

fn already_exists(msg: &str) -> bool {
    let m = msg.to_ascii_lowercase();
    m.contains("already exist") || m.contains("duplicate column")
}

fn does_not_exist(msg: &str) -> bool {
    let m = msg.to_ascii_lowercase();
    m.contains("not exist") || m.contains("unknown column") || m.contains("not found")
}

/// SchemaChangeHandler.createJob: "Nothing is changed. please check your alter stmt."
fn nothing_changed(msg: &str) -> bool {
    msg.to_ascii_lowercase().contains("nothing is changed")
}

/// Where Doris should put an added value column: value columns cannot go before key
/// columns, so FIRST (or before the first value column) becomes AFTER the last key.
fn placement(layout: &TableLayout, position: &ColumnPosition) -> Placement {
    let last_key = layout.key_names().last().map(str::to_string);
    let after_keys = || last_key.clone().map_or(Placement::First, Placement::After);
    match position {
        ColumnPosition::Last => Placement::Last,
        ColumnPosition::First => after_keys(),
        ColumnPosition::After(name) => match layout.column(name) {
            Some(c) if c.is_key => after_keys(),
            Some(_) => Placement::After(name.clone()),
            None => Placement::Last,
        },
        ColumnPosition::Before(name) => match layout.columns.iter().position(|c| &c.name == name) {
            Some(0) => after_keys(),
            Some(i) if layout.columns[i - 1].is_key => after_keys(),
            Some(i) => Placement::After(layout.columns[i - 1].name.clone()),
            None => Placement::Last,
        },
    }
}

/// One schema-change job as `SHOW ALTER TABLE COLUMN` lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Job {
    id: String,
    /// Upper case: PENDING, WAITING_TXN, RUNNING, FINISHED, CANCELLED.
    state: String,
    msg: String,
}

impl Job {
    /// Not FINISHED or CANCELLED: PENDING, WAITING_TXN, RUNNING, or a state this code does
    /// not know (waited for, the safe side).
    fn unfinished(&self) -> bool {
        self.state != "FINISHED" && self.state != "CANCELLED"
    }
}

/// The rows of a result set of the SQL API (`{"meta": [{"name": ..}], "data": [[..]]}`), by
/// column name; values as text.
fn result_rows(data: &Json) -> Vec<HashMap<String, String>> {
    let names: Vec<String> = data
        .get("meta")
        .and_then(Json::as_array)
        .map(|meta| {
            meta.iter()
                .map(|c| {
                    c.get("name")
                        .and_then(Json::as_str)
                        .or_else(|| c.as_str())
                        .unwrap_or_default()
                        .to_string()
                })
                .collect()
        })
        .unwrap_or_default();
    let text = |v: &Json| v.as_str().map_or_else(|| v.to_string(), str::to_string);
    data.get("data")
        .and_then(Json::as_array)
        .map(|rows| {
            rows.iter()
                .filter_map(Json::as_array)
                .map(|row| names.iter().cloned().zip(row.iter().map(text)).collect())
                .collect()
        })
        .unwrap_or_default()
}

fn jobs_of(data: &Json) -> Vec<Job> {
    result_rows(data)
        .into_iter()
        .map(|mut r| {
            let mut take = |k: &str| r.remove(k).unwrap_or_default();
            Job {
                id: take("JobId"),
                state: take("State").to_ascii_uppercase(),
                msg: take("Msg"),
            }
        })
        .collect()
}

#[async_trait]
impl SchemaApplier for DorisSchemaApplier {
    fn supported_kinds(&self) -> Vec<SchemaChangeKind> {
        SchemaChangeKind::ALL.to_vec()
    }

    async fn preflight(&mut self) -> Result<Vec<String>> {
        let data = self
            .execute("information_schema", "SHOW DATABASES")
            .await
            .map_err(|e| {
                into_error(
                    e,
                    "checking the Doris FE",
                    &TableId::new("information_schema", "-"),
                    "SHOW DATABASES",
                )
            })?;
        let databases = data
            .get("data")
            .and_then(Json::as_array)
            .map_or(0, Vec::len);
        let mut lines = vec![format!(
            "Doris FE answers and accepts the credentials ({databases} databases visible)"
        )];
        // Where loads will go, checked as the sink checks it when it opens: without
        // benodes and auto-redirect, the BEs the FE lists must answer from here.
        match self.service.open().await {
            Ok(backends) if backends.is_empty() => lines.push(self.service.route_text()),
            Ok(backends) => lines.push(format!(
                "{}: {}",
                self.service.route_text(),
                backends.join(", ")
            )),
            Err(e) => return Err(e.into_error()),
        }
        Ok(lines)
    }

    async fn apply(&mut self, change: &SchemaChangeEvent) -> Result<()> {
        let table = change.table_id().clone();
        match change {
            SchemaChangeEvent::CreateTable { schema, .. } => {
                self.create_table(&table, schema).await?;
                return Ok(());
            }
            SchemaChangeEvent::AddColumn { columns, .. } => {
                self.add_columns(&table, columns).await?;
            }
            SchemaChangeEvent::DropColumn { columns, .. } => {
                self.drop_columns(&table, columns).await?;
            }
            SchemaChangeEvent::RenameColumn { renames, .. } => {
                self.rename_columns(&table, renames).await?;
            }
            SchemaChangeEvent::AlterColumnType {
                types, comments, ..
            } => self.alter_types(&table, types, comments).await?,
            SchemaChangeEvent::TruncateTable { .. } => {
                self.run("truncating", &table, &ddl::truncate_table(&table))
                    .await?;
            }
            SchemaChangeEvent::DropTable { .. } => {
                self.run("dropping", &table, &ddl::drop_table(&table))
                    .await?;
                self.tables.remove(&table);
                return Ok(());
            }
            SchemaChangeEvent::AlterTableComment { comment, .. } => {
                self.run(
                    "changing the comment of",
                    &table,
                    &ddl::alter_comment(&table, comment),
                )
                .await?;
            }
            _ => {
                return Err(Error::permanent(
                    format!("applying {} to {table}", change.kind()),
                    "this schema change is not supported by the Doris sink",
                ));
            }
        }
        if let Some(state) = self.tables.get_mut(&table) {
            if let Ok(next) = change.apply_to(&state.schema) {
                state.schema = next;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cdc_api::{Column, DataType, DataTypeKind, Schema};

    fn layout() -> TableLayout {
        let schema = Schema::new(vec![
            Column::new("v1", DataType::new(DataTypeKind::Int)),
            Column::new("id", DataType::new(DataTypeKind::Int).not_null()),
            Column::new("v2", DataType::new(DataTypeKind::Int)),
        ])
        .with_primary_key(["id"]);
        TableLayout::new(&schema, None)
    }

    #[test]
    fn added_columns_stay_behind_the_keys() {
        let l = layout();
        assert_eq!(placement(&l, &ColumnPosition::Last), Placement::Last);
        assert_eq!(
            placement(&l, &ColumnPosition::First),
            Placement::After("id".into())
        );
        assert_eq!(
            placement(&l, &ColumnPosition::After("id".into())),
            Placement::After("id".into())
        );
        assert_eq!(
            placement(&l, &ColumnPosition::After("v1".into())),
            Placement::After("v1".into())
        );
        assert_eq!(
            placement(&l, &ColumnPosition::Before("v1".into())),
            Placement::After("id".into())
        );
        assert_eq!(
            placement(&l, &ColumnPosition::Before("v2".into())),
            Placement::After("v1".into())
        );
        assert_eq!(
            placement(&l, &ColumnPosition::Before("nope".into())),
            Placement::Last
        );
    }

    #[test]
    fn jobs_are_read_from_show_alter_results() {
        let data = serde_json::json!({
            "type": "result_set",
            "meta": [{"name": "JobId"}, {"name": "TableName"}, {"name": "State"}, {"name": "Msg"}],
            "data": [[11, "t", "FINISHED", ""], ["12", "t", "waiting_txn", ""], [13, "t", "CANCELLED", "bad type"]]
        });
        let jobs = jobs_of(&data);
        assert_eq!(
            jobs.iter()
                .map(|j| (j.id.as_str(), j.state.as_str(), j.msg.as_str()))
                .collect::<Vec<_>>(),
            [
                ("11", "FINISHED", ""),
                ("12", "WAITING_TXN", ""),
                ("13", "CANCELLED", "bad type")
            ]
        );
        assert_eq!(
            jobs.iter().map(Job::unfinished).collect::<Vec<_>>(),
            [false, true, false]
        );
        assert!(jobs_of(&serde_json::json!({"data": []})).is_empty());
        assert!(jobs_of(&serde_json::json!("not a result set")).is_empty());
    }

    #[test]
    fn replay_messages_are_recognised() {
        assert!(already_exists(
            "errCode = 2, detailMessage = Can not add column which already exists in base table: c"
        ));
        assert!(does_not_exist(
            "errCode = 2, detailMessage = Column does not exists: c"
        ));
        assert!(does_not_exist("Unknown column 'c'"));
        assert!(!already_exists("Table[t]'s state is not NORMAL"));
        assert!(nothing_changed(
            "errCode = 2, detailMessage = Nothing is changed. please check your alter stmt."
        ));
    }
}
