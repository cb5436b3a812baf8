//! Schema changes through the FE's HTTP SQL API (`POST /api/query/default_cluster/{db}`),
//! as Flink CDC's Doris sink does.
//!
//! Replays must be harmless (after a crash the runtime may apply a change again), so an
//! ADD of a column that exists, a DROP of one that is gone, or a RENAME already done count
//! as success. MODIFY COLUMN is an asynchronous job in Doris; we wait for it through
//! `SHOW ALTER TABLE COLUMN` so rows of the new type are not loaded into the old one.

use std::collections::HashMap;
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

/// The longest pause between two polls of a schema-change job.
const MAX_POLL: Duration = Duration::from_secs(1);
/// How long a statement may keep failing because another ALTER job holds the table.
const BUSY_TABLE_WAIT: Duration = Duration::from_secs(600);

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
            if lower.contains("is not normal") && started.elapsed() < BUSY_TABLE_WAIT {
                // Another schema-change job still runs on this table.
                tokio::time::sleep(MAX_POLL).await;
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

    /// Waits until the newest column job of `table` is FINISHED.
    async fn wait_for_alter_job(&self, table: &TableId) -> Result<()> {
        let sql = ddl::show_alter_job(table);
        let mut pause = Duration::from_millis(50);
        loop {
            let data = self
                .run("waiting for the column change of", table, &sql)
                .await?;
            let (state, msg) = job_state(&data);
            match state.as_deref() {
                None | Some("FINISHED") => return Ok(()),
                Some("CANCELLED") => {
                    return Err(Error::permanent(
                        format!("changing a column type of {table}"),
                        format!("the Doris schema-change job was cancelled: {msg}"),
                    ));
                }
                // Our own pre-committed loads (2PC, and at-least-once while a snapshot is
                // read) hold the job until the next checkpoint commits them; waiting here
                // would wait for ourselves. Loads meanwhile are written in both schemas by
                // Doris.
                Some("WAITING_TXN") => return Ok(()),
                Some(_) => {}
            }
            tokio::time::sleep(pause).await;
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
            match self.execute(table.schema_name(), &sql).await {
                Ok(_) => {}
                Err(SqlError::Refused(msg)) if already_exists(&msg) => {
                    tracing::info!(%table, column = %column.name, "column exists already; add treated as done");
                }
                Err(e) => return Err(into_error(e, "adding a column to", table, &sql)),
            }
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
            match self.execute(table.schema_name(), &sql).await {
                Ok(_) => {}
                Err(SqlError::Refused(msg)) if does_not_exist(&msg) => {
                    tracing::info!(%table, column = %name, "column is gone already; drop treated as done");
                }
                Err(e) => return Err(into_error(e, "dropping a column of", table, &sql)),
            }
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
            match self.execute(table.schema_name(), &sql).await {
                Ok(_) => {}
                // A replay: the old name is gone (or the new one exists) because it ran.
                Err(SqlError::Refused(msg)) if does_not_exist(&msg) || already_exists(&msg) => {
                    tracing::info!(%table, %old, %new, "rename already applied");
                }
                Err(e) => return Err(into_error(e, "renaming a column of", table, &sql)),
            }
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
            if let Some(c) = &current {
                if c.type_text == new_type && c.comment == comment {
                    continue;
                }
            }
            let column = ddl::DorisColumn {
                name: name.clone(),
                type_text: new_type,
                nullable: current.as_ref().map_or(data_type.nullable, |c| c.nullable),
                is_key,
                default: current.as_ref().and_then(|c| c.default.clone()),
                comment,
            };
            let sql = ddl::modify_column(table, &column);
            self.run("changing a column type of", table, &sql).await?;
            self.wait_for_alter_job(table).await?;
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
        SqlError::Refused(msg) => Error::permanent(
            format!("{what} {table}"),
            format!("Doris refused `{sql}`: {msg}"),
        ),
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

/// (State, Msg) of the first row of a `SHOW ALTER TABLE COLUMN` result, if any.
fn job_state(data: &Json) -> (Option<String>, String) {
    let meta = data.get("meta").and_then(Json::as_array);
    let index_of = |name: &str| {
        meta.and_then(|m| {
            m.iter().position(|c| {
                c.get("name").and_then(Json::as_str) == Some(name) || c.as_str() == Some(name)
            })
        })
    };
    let row = data
        .get("data")
        .and_then(Json::as_array)
        .and_then(|rows| rows.first());
    let cell = |i: Option<usize>| -> Option<String> {
        let v = row?.get(i?)?;
        Some(v.as_str().map_or_else(|| v.to_string(), str::to_string))
    };
    (
        cell(index_of("State")).map(|s| s.to_ascii_uppercase()),
        cell(index_of("Msg")).unwrap_or_default(),
    )
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
    fn job_state_reads_show_alter_results() {
        let data = serde_json::json!({
            "type": "result_set",
            "meta": [{"name": "JobId"}, {"name": "State"}, {"name": "Msg"}],
            "data": [[1, "cancelled", "bad type"]]
        });
        assert_eq!(
            job_state(&data),
            (Some("CANCELLED".into()), "bad type".into())
        );
        assert_eq!(job_state(&serde_json::json!({"data": []})).0, None);
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
    }
}
