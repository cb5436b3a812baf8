//! Schema changes over the FE's MySQL port, as Flink CDC's StarRocks sink does.
//!
//! StarRocks runs ADD / DROP / RENAME / MODIFY COLUMN as asynchronous jobs: the statement
//! returns at once and the new schema takes effect when the job is FINISHED, so rows of
//! the new shape must not be loaded before. After each ALTER we poll
//! `SHOW ALTER TABLE COLUMN FROM db WHERE TableName = ..` until no job of the table is
//! unfinished (a new CANCELLED one is an error with its message), for at most
//! `table.schema-change.timeout`. Only one job may run per table; a statement refused
//! because another job holds the table is retried until the same timeout.
//!
//! Replays must be harmless (after a crash the runtime may apply a change again), so an
//! ADD of a column that exists, a DROP of one that is gone, a RENAME already done or a
//! MODIFY to the type the column already has are skipped after reading the table's
//! columns; CREATE uses IF NOT EXISTS and DROP TABLE IF EXISTS. Table comments are set with
//! `ALTER TABLE .. COMMENT = ".."` (StarRocks >= 3.1), where Flink CDC ignores them.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use cdc_api::{Column, Error, Result, SchemaApplier, SchemaChangeEvent, SchemaChangeKind, TableId};
use mysql_async::prelude::Queryable;
use tokio::time::Instant;

use crate::config::StarRocksSinkConfig;
use crate::ddl;
use crate::retry::{Verdict, common};
use crate::service::{StarRocksService, as_answer};
use crate::type_mapping::starrocks_type;

/// The longest pause between two polls of a schema-change job.
const MAX_POLL: Duration = Duration::from_secs(1);

/// A statement's failure.
#[derive(Debug)]
enum SqlError {
    /// The server refused the statement (code, message).
    Refused(u16, String),
    /// The connection failed.
    Transport(String),
}

impl std::fmt::Display for SqlError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Refused(code, m) => write!(f, "error {code}: {m}"),
            Self::Transport(m) => f.write_str(m),
        }
    }
}

type Rows = Vec<HashMap<String, Option<String>>>;

/// Applies schema changes to StarRocks.
pub(crate) struct StarRocksSchemaApplier {
    config: Arc<StarRocksSinkConfig>,
    /// For the HTTP side of `preflight`.
    service: Arc<StarRocksService>,
    conn: Option<mysql_async::Conn>,
}

impl StarRocksSchemaApplier {
    pub(crate) fn new(config: Arc<StarRocksSinkConfig>, service: Arc<StarRocksService>) -> Self {
        Self {
            config,
            service,
            conn: None,
        }
    }

    async fn connect(&self) -> std::result::Result<mysql_async::Conn, SqlError> {
        let (host, port) = self
            .config
            .mysql_address
            .rsplit_once(':')
            .map_or((self.config.mysql_address.as_str(), 9030), |(h, p)| {
                (h, p.parse().unwrap_or(9030))
            });
        let opts = mysql_async::OptsBuilder::default()
            .ip_or_hostname(host.to_string())
            .tcp_port(port)
            .user(Some(self.config.username.clone()))
            .pass(Some(self.config.password.expose().to_string()))
            .prefer_socket(false);
        let connecting = mysql_async::Conn::new(opts);
        match tokio::time::timeout(self.config.connect_timeout, connecting).await {
            Ok(Ok(c)) => Ok(c),
            Ok(Err(e)) => Err(sql_error(e)),
            Err(_) => Err(SqlError::Transport(format!(
                "connecting to {} timed out",
                self.config.mysql_address
            ))),
        }
    }

    /// Runs one statement once; result rows by column name.
    async fn query_once(&mut self, sql: &str) -> std::result::Result<Rows, SqlError> {
        let mut conn = match self.conn.take() {
            Some(c) => c,
            None => self.connect().await?,
        };
        let result = conn.query::<mysql_async::Row, _>(sql).await;
        match result {
            Ok(rows) => {
                self.conn = Some(conn);
                Ok(rows
                    .into_iter()
                    .map(|mut row| {
                        let names: Vec<String> = row
                            .columns_ref()
                            .iter()
                            .map(|c| c.name_str().into_owned())
                            .collect();
                        names
                            .into_iter()
                            .enumerate()
                            .map(|(i, n)| {
                                let v = row
                                    .take_opt::<Option<String>, _>(i)
                                    .and_then(std::result::Result::ok)
                                    .flatten();
                                (n, v)
                            })
                            .collect()
                    })
                    .collect())
            }
            Err(e) => {
                let e = sql_error(e);
                if matches!(e, SqlError::Refused(..)) {
                    self.conn = Some(conn);
                }
                Err(e)
            }
        }
    }

    /// Runs a statement; retries connection failures, and a table busy with another
    /// schema-change job until `table.schema-change.timeout`.
    async fn run(&mut self, what: &str, table: &TableId, sql: &str) -> Result<Rows> {
        let started = Instant::now();
        let mut attempt = 0u32;
        let context = || format!("{what} {table} in StarRocks (`{}`)", first_line(sql));
        loop {
            match self.query_once(sql).await {
                Ok(rows) => return Ok(rows),
                Err(SqlError::Refused(1045, m)) => {
                    return Err(Error::permanent(context(), m)
                        .with_hint("check the sink's username and password"));
                }
                Err(SqlError::Refused(_, m))
                    if m.contains("is not NORMAL")
                        && started.elapsed() < self.config.schema_change_timeout =>
                {
                    // Another schema-change job still runs on this table.
                    tokio::time::sleep(MAX_POLL).await;
                }
                Err(SqlError::Refused(code, m)) => {
                    return Err(Error::permanent(context(), format!("error {code}: {m}")));
                }
                Err(SqlError::Transport(m)) => {
                    attempt += 1;
                    if attempt > self.config.max_retries {
                        return Err(Error::transient(context(), m).retries_exhausted(&format!(
                            "gave up after {} retries (sink.max-retries)",
                            self.config.max_retries
                        )));
                    }
                    tokio::time::sleep(cdc_stream_load::driver::backoff(
                        attempt,
                        self.config.max_backoff,
                    ))
                    .await;
                }
            }
        }
    }

    /// The table's columns (`name` -> type text, lower case); `None` if it does not exist.
    /// The table's columns: lower-case name -> (lower-case type, nullable).
    async fn columns(
        &mut self,
        table: &TableId,
    ) -> Result<Option<HashMap<String, (String, bool)>>> {
        match self.query_once(&ddl::describe(table)).await {
            Ok(rows) => Ok(Some(
                rows.into_iter()
                    .filter_map(|r| {
                        let name = r.get("Field").cloned().flatten()?;
                        let ty = r.get("Type").cloned().flatten().unwrap_or_default();
                        let nullable = r
                            .get("Null")
                            .cloned()
                            .flatten()
                            .is_some_and(|n| n.eq_ignore_ascii_case("YES"));
                        Some((
                            name.to_ascii_lowercase(),
                            (ty.to_ascii_lowercase(), nullable),
                        ))
                    })
                    .collect(),
            )),
            Err(SqlError::Refused(_, m))
                if m.contains("Unknown table") || m.contains("does not exist") =>
            {
                Ok(None)
            }
            Err(_) => {
                // Read it through the retrying path to surface a useful error.
                self.run("reading the columns of", table, &ddl::describe(table))
                    .await
                    .map(|_| Some(HashMap::new()))
            }
        }
    }

    /// Every schema-change job of the table: (JobId, State, Msg).
    async fn jobs(&mut self, table: &TableId) -> Result<Vec<(String, String, String)>> {
        let rows = self
            .run(
                "watching schema changes of",
                table,
                &ddl::show_alter_jobs(table),
            )
            .await?;
        Ok(rows
            .into_iter()
            .map(|r| {
                let get = |k: &str| r.get(k).cloned().flatten().unwrap_or_default();
                (get("JobId"), get("State"), get("Msg"))
            })
            .collect())
    }

    /// Runs an ALTER and waits until no job of the table is unfinished.
    ///
    /// Not "the newest job": `CreateTime` has one-second resolution and ties keep job-id
    /// order, so after a quick job in the same second `ORDER BY CreateTime DESC LIMIT 1`
    /// names the older, finished one, and rows of the new shape would be loaded while the
    /// new job still runs.
    async fn alter(&mut self, what: &str, table: &TableId, sql: &str) -> Result<()> {
        let before: HashSet<String> = self.jobs(table).await?.into_iter().map(|j| j.0).collect();
        self.run(what, table, sql).await?;
        let started = Instant::now();
        let mut pause = Duration::from_millis(50);
        loop {
            let jobs = self.jobs(table).await?;
            if let Some((id, _, msg)) = jobs
                .iter()
                .find(|(id, state, _)| state == "CANCELLED" && !before.contains(id))
            {
                return Err(Error::permanent(
                    format!("{what} {table} in StarRocks (`{}`)", first_line(sql)),
                    format!("schema-change job {id} was CANCELLED: {msg}"),
                ));
            }
            // No job at all, or only finished ones: the change took effect (fast schema
            // evolution creates none).
            let Some((id, state, _)) = jobs
                .iter()
                .find(|(_, state, _)| state != "FINISHED" && state != "CANCELLED")
            else {
                return Ok(());
            };
            if started.elapsed() >= self.config.schema_change_timeout {
                return Err(Error::permanent(
                    format!("{what} {table} in StarRocks (`{}`)", first_line(sql)),
                    format!(
                        "schema-change job {id} is still {state} after {:?} (table.schema-change.timeout)",
                        self.config.schema_change_timeout
                    ),
                )
                .with_hint("raise table.schema-change.timeout, or check the job with SHOW ALTER TABLE COLUMN"));
            }
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(MAX_POLL);
        }
    }
}

fn first_line(sql: &str) -> String {
    let line = sql.lines().next().unwrap_or_default();
    if line.len() < sql.len() {
        format!("{line} ...")
    } else {
        line.to_string()
    }
}

fn sql_error(e: mysql_async::Error) -> SqlError {
    match e {
        mysql_async::Error::Server(s) => SqlError::Refused(s.code, s.message),
        other => SqlError::Transport(other.to_string()),
    }
}

#[async_trait]
impl SchemaApplier for StarRocksSchemaApplier {
    fn supported_kinds(&self) -> Vec<SchemaChangeKind> {
        vec![
            SchemaChangeKind::CreateTable,
            SchemaChangeKind::AddColumn,
            SchemaChangeKind::DropColumn,
            SchemaChangeKind::RenameColumn,
            SchemaChangeKind::AlterColumnType,
            SchemaChangeKind::TruncateTable,
            SchemaChangeKind::DropTable,
            SchemaChangeKind::AlterTableComment,
        ]
    }

    /// Checks both ports with the sink's credentials: `SHOW DATABASES` over the MySQL
    /// port, and `get_load_state` of a label nobody uses over the FE's HTTP port.
    async fn preflight(&mut self) -> Result<Vec<String>> {
        let probe = TableId::new("information_schema", "-");
        let databases = self
            .run(
                "checking the MySQL port (jdbc-url) of",
                &probe,
                "SHOW DATABASES",
            )
            .await?
            .len();
        let answer = self
            .service
            .load_state("information_schema", "cdc-preflight")
            .await;
        // Any JSON answer means the FE let us in (a wrong password is a 401 first).
        match common(as_answer(&answer)) {
            Ok(_) => {}
            Err(Verdict::Stop { reason, .. } | Verdict::Retry(reason)) => {
                return Err(Error::permanent(
                    "checking the StarRocks FE HTTP port (load-url)",
                    reason,
                )
                .with_hint("check load-url, username and password"));
            }
            Err(other) => {
                return Err(Error::permanent(
                    "checking the StarRocks FE HTTP port (load-url)",
                    format!("{other:?}"),
                ));
            }
        }
        Ok(vec![
            format!(
                "StarRocks FE MySQL port {} answers and accepts the credentials ({databases} databases visible)",
                self.config.mysql_address
            ),
            format!(
                "StarRocks FE HTTP {} answers and accepts the credentials",
                self.config.load_urls.join(";")
            ),
        ])
    }

    async fn apply(&mut self, change: &SchemaChangeEvent) -> Result<()> {
        let table = change.table_id().clone();
        let k = self.config.char_bytes;
        match change {
            SchemaChangeEvent::CreateTable { schema, .. } => {
                let sql = ddl::create_table(
                    &table,
                    schema,
                    self.config.num_buckets,
                    &self.config.table_properties,
                    k,
                )?;
                self.run(
                    "creating the database of",
                    &table,
                    &ddl::create_database(table.schema_name()),
                )
                .await?;
                self.run("creating", &table, &sql).await?;
            }
            SchemaChangeEvent::AddColumn { columns, .. } => {
                for (column, _position) in columns {
                    let existing = self.columns(&table).await?.unwrap_or_default();
                    if existing.contains_key(&column.name.to_ascii_lowercase()) {
                        continue;
                    }
                    self.alter(
                        "adding a column to",
                        &table,
                        &ddl::add_column(&table, column, k),
                    )
                    .await?;
                }
            }
            SchemaChangeEvent::DropColumn { columns, .. } => {
                for name in columns {
                    let existing = self.columns(&table).await?.unwrap_or_default();
                    if !existing.contains_key(&name.to_ascii_lowercase()) {
                        continue;
                    }
                    self.alter(
                        "dropping a column of",
                        &table,
                        &ddl::drop_column(&table, name),
                    )
                    .await?;
                }
            }
            SchemaChangeEvent::RenameColumn { renames, .. } => {
                for (old, new) in renames {
                    let existing = self.columns(&table).await?.unwrap_or_default();
                    if !existing.contains_key(&old.to_ascii_lowercase())
                        && existing.contains_key(&new.to_ascii_lowercase())
                    {
                        continue;
                    }
                    self.alter(
                        "renaming a column of",
                        &table,
                        &ddl::rename_column(&table, old, new),
                    )
                    .await?;
                }
            }
            SchemaChangeEvent::AlterColumnType {
                types, comments, ..
            } => {
                for (name, data_type) in types {
                    let existing = self.columns(&table).await?.unwrap_or_default();
                    let wanted = starrocks_type(data_type, false, k).to_ascii_lowercase();
                    let current = existing.get(&name.to_ascii_lowercase());
                    // A column only ever becomes nullable (StarRocks refuses the other
                    // way): lenient makes a dropped or renamed column nullable so that the
                    // rows after it, which carry NULL there, load.
                    let nullable =
                        data_type.nullable || current.is_some_and(|(_, nullable)| *nullable);
                    if current == Some(&(wanted, nullable)) {
                        continue;
                    }
                    let mut data_type = data_type.clone();
                    data_type.nullable = nullable;
                    let mut column = Column::new(name.clone(), data_type);
                    column.comment = comments.get(name).cloned();
                    self.alter(
                        "changing a column type of",
                        &table,
                        &ddl::modify_column(&table, &column, k),
                    )
                    .await?;
                }
            }
            SchemaChangeEvent::TruncateTable { .. } => {
                self.run("truncating", &table, &ddl::truncate_table(&table))
                    .await?;
            }
            SchemaChangeEvent::DropTable { .. } => {
                self.run("dropping", &table, &ddl::drop_table(&table))
                    .await?;
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
                // Kinds added to cdc-api later are not in supported_kinds.
                tracing::warn!(table = %table, "this schema change is not applied to StarRocks");
            }
        }
        Ok(())
    }
}
