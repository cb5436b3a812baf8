//! `MySqlSource`: connects, checks the server, takes the snapshot, streams the binlog, and
//! keeps the resumable offset (position, tracked schemas, snapshot progress).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use cdc_api::{
    Error, Event, Result, SchemaChangeEvent, Source, SourceOffset, SourceProgress, TableId,
    TableSnapshotProgress,
};
use mysql_async::prelude::Queryable;
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;
use tokio::task::JoinSet;

use crate::binlog::mariadb_gtid::GtidPos;
use crate::binlog::position::BinlogPosition;
use crate::binlog::reader::{BinlogOffset, BinlogReader};
use crate::binlog::status::is_mariadb;
use crate::config::StartupMode;
use crate::error::from_mysql;
use crate::schema::{TableMeta, list_tables, load_table};
use crate::snapshot_key::{KeyPart, TableSegments};
use crate::tls::Attempt;
use crate::{MySqlSourceConfig, snapshot};

/// `(database, table)`.
pub(crate) type TableKey = (String, String);

/// A change to the tracked definitions that travels with the batch it belongs to.
#[derive(Debug, Clone)]
pub(crate) enum TableUpdate {
    Upsert(TableMeta),
    Remove(TableKey),
    /// The table's rows are to be read (it entered the capture mid-stream); pending until
    /// a batch marks its snapshot done.
    SnapshotPending(TableKey),
    /// The gh-ost / pt-osc shadow tables now (all of them).
    OnlineSchema(crate::online_schema::Shadows),
    /// A signal asked to read this captured table again (see the `signal` module): its
    /// read filters nothing from the binlog.
    Reread(TableKey),
}

/// Events plus what the offset learns from them.
#[derive(Debug, Default)]
pub(crate) struct Batch {
    pub(crate) events: Vec<Event>,
    pub(crate) position: Option<BinlogOffset>,
    pub(crate) table_updates: Vec<TableUpdate>,
    /// Tables split into key ranges for parallel reads, with the ranges' upper bounds
    /// (the last range is unbounded).
    pub(crate) snapshot_plans: Vec<(TableKey, Vec<Vec<KeyPart>>)>,
    /// Snapshot progress of tables read in this batch.
    pub(crate) snapshot_progress: Vec<SnapshotProgress>,
    /// Tables whose snapshot this batch completes.
    pub(crate) snapshot_done: Vec<TableKey>,
    /// How far behind the server the binlog reader is (binlog batches only).
    pub(crate) lag: Option<Duration>,
}

/// How far the read of one key range of a table got: every row of the range ending at
/// `until` with a key up to `upto` (the whole range when `done`) was read at `pos` and
/// handed on.
#[derive(Debug, Clone)]
pub(crate) struct SnapshotProgress {
    pub(crate) table: TableKey,
    pub(crate) pos: BinlogPosition,
    pub(crate) until: Option<Vec<KeyPart>>,
    pub(crate) upto: Option<Vec<KeyPart>>,
    pub(crate) done: bool,
    /// Forget earlier segments (a table without a key read again from the start).
    pub(crate) restart: bool,
}

impl Batch {
    pub(crate) fn rows(events: Vec<Event>) -> Self {
        Self {
            events,
            ..Self::default()
        }
    }
}

/// Version 2 added per-table snapshot segments (mid-table resume); version 1 offsets are
/// still read.
const OFFSET_VERSION: u32 = 2;

/// The persisted offset.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct OffsetState {
    version: u32,
    /// Tracked definitions as of this offset.
    tables: Vec<TableMeta>,
    /// Version 1: tables whose snapshot is complete, with their snapshot positions. Read
    /// into `snapshot_segments` on restore, never written.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    snapshot_done: Vec<(TableKey, BinlogPosition)>,
    /// Per table, the key ranges read so far and the position each was read at (kept
    /// while the binlog has not passed them), for tables done and in progress.
    #[serde(default)]
    snapshot_segments: Vec<TableSegments>,
    /// Tables still to snapshot, or to finish (snapshot phase only).
    snapshot_pending: Vec<TableKey>,
    /// Where the binlog resumes; `None` while the snapshot has not finished.
    binlog: Option<BinlogOffset>,
    /// Binlog start when the snapshot phase began (the lowest position any table needs).
    #[serde(default)]
    snapshot_start: Option<BinlogPosition>,
    /// The server whose binlog the positions above belong to (absent in offsets written
    /// before it was recorded).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    server: Option<ServerIdentity>,
    /// Shadow tables of gh-ost / pt-osc migrations in progress, with their definitions and
    /// pending schema changes (absent in older offsets and when there are none).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    online_schema: crate::online_schema::Shadows,
    /// Tables read again on a signal and not done yet. Their target tables hold rows
    /// from before, so the binlog from the signal on is replayed over the read whole,
    /// with no per-row filter: a change the read already holds is applied again (an
    /// upsert, or a delete of a row the read lacks), which leaves each row as the server
    /// had it, where a filter would keep a row deleted before the read in the target.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    rereads: Vec<TableKey>,
}

/// Which server wrote a binlog: file names and positions mean nothing on another one (a
/// replica, a failover target, a rebuilt server).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct ServerIdentity {
    server_id: u32,
    /// MySQL's `@@server_uuid` (MariaDB has none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    uuid: Option<String>,
}

impl std::fmt::Display for ServerIdentity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "server_id {}", self.server_id)?;
        if let Some(uuid) = &self.uuid {
            write!(f, " (server_uuid {uuid})")?;
        }
        Ok(())
    }
}

async fn server_identity(conn: &mut mysql_async::Conn) -> Result<ServerIdentity> {
    let server_id: Option<u32> = conn
        .query_first("SELECT @@server_id")
        .await
        .map_err(|e| from_mysql("reading the server id", e))?;
    // MariaDB has no @@server_uuid: the query fails there, which only means "none".
    let uuid: Option<String> = conn
        .query_first("SELECT @@server_uuid")
        .await
        .ok()
        .flatten();
    Ok(ServerIdentity {
        server_id: server_id.unwrap_or(0),
        uuid,
    })
}

/// How a checkpoint resumes on the server it finds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Resume {
    /// As saved: the same server, or a MySQL GTID set (valid on any server).
    AsSaved,
    /// On another MariaDB server (a failover): after the checkpoint's GTID position.
    ByMariaDbGtid,
}

/// Refuses to resume file/position offsets on a server other than the one that wrote
/// them: they would silently point at other transactions. Offsets that resume by a MySQL
/// GTID set are valid on any server of the replication topology, and so is a MariaDB
/// offset's GTID position (`gtid_seen`: the server's binlog holds it) once the snapshot is
/// behind it (snapshot segments hold file positions of the old server).
fn resume_mode(
    saved: Option<&ServerIdentity>,
    now: &ServerIdentity,
    binlog: Option<&BinlogOffset>,
    snapshot_unsettled: bool,
    gtid_seen: bool,
    address: &str,
) -> Result<Resume> {
    let Some(saved) = saved.filter(|s| *s != now) else {
        return Ok(Resume::AsSaved);
    };
    if binlog.is_some_and(|b| b.gtid_set.is_some()) {
        return Ok(Resume::AsSaved);
    }
    let mariadb_gtid = binlog
        .and_then(|b| b.gtid.as_deref())
        .is_some_and(GtidPos::is_mariadb);
    if mariadb_gtid && gtid_seen && !snapshot_unsettled {
        return Ok(Resume::ByMariaDbGtid);
    }
    let why = match (mariadb_gtid, snapshot_unsettled) {
        (true, true) => {
            "; the snapshot is not finished (its parts hold positions of the old server), so its GTID position cannot be used yet"
        }
        (true, false) => {
            "; nor has this server's binlog the checkpoint's GTID position (not a replica of the old server, or behind it)"
        }
        _ => "",
    };
    Err(Error::permanent(
        "resuming the MySQL source",
        format!(
            "the checkpoint holds binlog positions of the server with {saved}, but {address} is the server with {now}; binlog file positions do not carry over to another server{why}"
        ),
    )
    .with_hint(
        "point `hostname` back at the server the checkpoint came from, or start over with `cdc run --reset` (a new snapshot); with MySQL GTIDs, start from scan.startup.mode: specific-offset and scan.startup.specific-offset.gtid-set to follow a failover",
    ))
}

/// MariaDB: the GTID position at a binlog file position (`None` on MySQL, which has no
/// `BINLOG_GTID_POS`, or when the server cannot tell).
async fn gtid_pos_at(conn: &mut mysql_async::Conn, at: &BinlogPosition) -> Option<String> {
    let pos: Option<Option<String>> = conn
        .exec_first("SELECT BINLOG_GTID_POS(?, ?)", (&at.file, at.pos))
        .await
        .ok()
        .flatten();
    pos.flatten().filter(|p| GtidPos::is_mariadb(p))
}

/// Whether a MariaDB server's binlog holds the GTID position `gtid` (a checkpoint's), so
/// that it can continue after it.
async fn mariadb_gtid_seen(conn: &mut mysql_async::Conn, gtid: &str) -> Result<bool> {
    let Ok(pos) = GtidPos::parse(gtid) else {
        return Ok(false);
    };
    if !is_mariadb(conn).await? {
        return Ok(false);
    }
    let binlog_state: Option<String> = conn
        .query_first("SELECT @@gtid_binlog_state")
        .await
        .map_err(|e| from_mysql("reading the server's GTID state", e))?;
    Ok(pos.seen_in(binlog_state.as_deref().unwrap_or_default()))
}

/// The MySQL / MariaDB source.
pub struct MySqlSource {
    config: Arc<MySqlSourceConfig>,
    state: OffsetState,
    rx: Option<mpsc::Receiver<Result<Batch>>>,
    announce: Vec<Event>,
    driver: Option<tokio::task::JoinHandle<()>>,
    /// The snapshot of this run, per table (for progress reports).
    snapshot_progress: Vec<TableSnapshotProgress>,
    /// The binlog reader's last reported lag.
    lag: Option<Duration>,
    /// `debezium.column.include.list` / `column.exclude.list`, when given.
    column_filter: Option<crate::column_filter::ColumnFilter>,
}

impl std::fmt::Debug for MySqlSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MySqlSource")
            .field("host", &self.config.hostname)
            .field("port", &self.config.port)
            .finish_non_exhaustive()
    }
}

/// A source dropped without `close` (an embedder's early return, a panic) must not leave
/// its binlog reader running: the reader would hold its dump thread on the server, and on
/// its next reconnect kick out the reader of whatever runs next with the same server id,
/// which would then stop with "another reader uses server-id N" about a reader nobody can
/// see.
impl Drop for MySqlSource {
    fn drop(&mut self) {
        if let Some(driver) = self.driver.take() {
            driver.abort();
        }
    }
}

impl MySqlSource {
    pub(crate) fn new(config: MySqlSourceConfig) -> Self {
        let column_filter = config
            .passthrough
            .columns
            .clone()
            .map(crate::column_filter::ColumnFilter::new);
        Self {
            column_filter,
            config: Arc::new(config),
            state: OffsetState::default(),
            rx: None,
            announce: Vec::new(),
            driver: None,
            snapshot_progress: Vec::new(),
            lag: None,
        }
    }

    /// Counts the rows of a snapshot batch for the progress report.
    fn count_snapshot_rows(&mut self, batch: &Batch) {
        let mut last: Option<usize> = None;
        for event in &batch.events {
            let Event::DataChange(e) = event else {
                continue;
            };
            let i = match last {
                Some(i) if self.snapshot_progress[i].table == e.table_id => i,
                _ => match self
                    .snapshot_progress
                    .iter()
                    .position(|t| t.table == e.table_id)
                {
                    Some(i) => i,
                    None => continue,
                },
            };
            self.snapshot_progress[i].rows_read += 1;
            last = Some(i);
        }
        for (db, table) in &batch.snapshot_done {
            if let Some(t) = self
                .snapshot_progress
                .iter_mut()
                .find(|t| t.table.schema.as_deref() == Some(db.as_str()) && t.table.table == *table)
            {
                t.done = true;
            }
        }
    }

    /// The options of every connection; `ssl` from [`Self::first_connection`].
    fn opts(&self, ssl: Option<mysql_async::SslOpts>) -> mysql_async::Opts {
        let c = &self.config;
        let mut setup = vec![
            "SET time_zone = '+00:00'".to_string(),
            "SET NAMES utf8mb4".to_string(),
        ];
        if let Some(tz) = &c.server_time_zone {
            // Only checked: sessions run in UTC so TIMESTAMP values are exact instants.
            tracing::debug!(server_time_zone = %tz, "server-time-zone given; sessions read TIMESTAMP in UTC");
        }
        setup.shrink_to_fit();
        mysql_async::OptsBuilder::default()
            .ip_or_hostname(c.hostname.clone())
            .tcp_port(c.port)
            .user(Some(c.username.clone()))
            .pass(Some(c.password.expose().to_string()))
            .prefer_socket(false)
            .ssl_opts(ssl)
            .setup(setup)
            .pool_opts(mysql_async::PoolOpts::default().with_constraints(
                mysql_async::PoolConstraints::new(0, c.pool_size.max(1)).unwrap_or_default(),
            ))
            .into()
    }

    /// Opens the first connection, retrying like any connection, and settles how every
    /// later one connects (see the `tls` module): returns it with their options and the TLS
    /// attempt that worked.
    pub(crate) async fn first_connection(
        &self,
    ) -> Result<(mysql_async::Conn, mysql_async::Opts, Attempt)> {
        let c = &self.config;
        let context = format!("connecting to {}:{}", c.hostname, c.port);
        let mut tls = c.tls.first_attempt();
        let mut opts = self.opts(c.tls.ssl_opts(&tls));
        let mut attempt = 0;
        loop {
            attempt += 1;
            let result =
                tokio::time::timeout(c.connect_timeout, mysql_async::Conn::new(opts.clone())).await;
            let err = match result {
                Ok(Ok(conn)) => return Ok((conn, opts, tls)),
                Ok(Err(e)) => {
                    if let Some(next) = c.tls.next_attempt(&tls, &context, &e)? {
                        match &next.plaintext_reason {
                            // Loud: the password and the data then cross the network
                            // readable by anyone on the path.
                            Some(why) => tracing::warn!(
                                server = %format!("{}:{}", c.hostname, c.port),
                                "{why}; connecting in PLAINTEXT: the password and the data are not encrypted (ssl.mode: preferred; use required or verify-identity to refuse this)"
                            ),
                            None => tracing::debug!(
                                "the server's certificate chains to ssl.ca; checking it against a name it holds (ssl.mode: verify-ca)"
                            ),
                        }
                        tls = next;
                        opts = self.opts(c.tls.ssl_opts(&tls));
                        // A changed plan, not a failure: it does not count as a retry.
                        attempt -= 1;
                        continue;
                    }
                    from_mysql(&context, e)
                }
                Err(_) => Error::transient(
                    &context,
                    format!("no answer within {:?} (connect.timeout)", c.connect_timeout),
                ),
            };
            if !err.is_retryable() || attempt > c.connect_max_retries {
                return Err(err.retries_exhausted(&format!(
                    "after {attempt} attempts (connect.max-retries)"
                )));
            }
            tokio::time::sleep(Duration::from_millis(500 * u64::from(attempt))).await;
        }
    }

    fn apply(&mut self, batch: &Batch) {
        if batch.position.is_none() {
            self.count_snapshot_rows(batch);
        }
        if batch.lag.is_some() {
            self.lag = batch.lag;
        }
        for update in &batch.table_updates {
            match update {
                TableUpdate::Upsert(meta) => {
                    self.state
                        .tables
                        .retain(|t| !(t.db == meta.db && t.table == meta.table));
                    self.state.tables.push(meta.clone());
                }
                TableUpdate::Remove((db, table)) => {
                    self.state
                        .tables
                        .retain(|t| !(&t.db == db && &t.table == table));
                    self.state
                        .snapshot_segments
                        .retain(|s| !(&s.db == db && &s.table == table));
                    self.state
                        .snapshot_pending
                        .retain(|(d, t)| !(d == db && t == table));
                }
                TableUpdate::SnapshotPending(key) => {
                    // Reported like the tables of the initial snapshot (the live view and
                    // the metrics show its copy), without an estimate.
                    let table = TableId::new(&key.0, &key.1);
                    self.snapshot_progress.retain(|t| t.table != table);
                    self.snapshot_progress.push(TableSnapshotProgress {
                        table,
                        rows_read: 0,
                        rows_estimated: None,
                        done: false,
                    });
                    self.state
                        .snapshot_segments
                        .retain(|s| !(s.db == key.0 && s.table == key.1));
                    if !self.state.snapshot_pending.contains(key) {
                        self.state.snapshot_pending.push(key.clone());
                    }
                }
                TableUpdate::OnlineSchema(shadows) => {
                    self.state.online_schema.clone_from(shadows);
                }
                TableUpdate::Reread(key) => {
                    if !self.state.rereads.contains(key) {
                        self.state.rereads.push(key.clone());
                    }
                }
            }
        }
        for (key, bounds) in &batch.snapshot_plans {
            self.segments_of(key).plan(bounds);
        }
        for p in &batch.snapshot_progress {
            let entry = self.segments_of(&p.table);
            if p.restart {
                entry.segments.clear();
            }
            entry.record(p.until.as_ref(), &p.pos, p.upto.clone(), p.done);
        }
        for key in &batch.snapshot_done {
            self.state.snapshot_pending.retain(|k| k != key);
            if self.state.rereads.contains(key) {
                // Replayed, not filtered: its segments must not filter after a restart.
                self.state.rereads.retain(|k| k != key);
                self.state
                    .snapshot_segments
                    .retain(|s| !(s.db == key.0 && s.table == key.1));
            }
        }
        if let Some(p) = &batch.position {
            let here = BinlogPosition::new(&p.file, p.pos);
            // Snapshot positions the binlog has passed filter nothing any more.
            self.state
                .snapshot_segments
                .retain(|s| s.max_pos().is_some_and(|m| *m > here));
            self.state.binlog = Some(p.clone());
        }
    }

    /// The snapshot segments of a table in the offset (new and empty if none).
    fn segments_of(&mut self, (db, table): &TableKey) -> &mut TableSegments {
        let i = match self
            .state
            .snapshot_segments
            .iter()
            .position(|s| &s.db == db && &s.table == table)
        {
            Some(i) => i,
            None => {
                self.state.snapshot_segments.push(TableSegments {
                    db: db.clone(),
                    table: table.clone(),
                    segments: Vec::new(),
                });
                self.state.snapshot_segments.len() - 1
            }
        };
        &mut self.state.snapshot_segments[i]
    }

    fn create_events(&self, metas: &[TableMeta]) -> Vec<Event> {
        metas
            .iter()
            .map(|m| {
                Event::SchemaChange(SchemaChangeEvent::CreateTable {
                    table_id: m.table_id(),
                    schema: m.to_schema(
                        self.config.tinyint1_as_boolean,
                        self.config.include_comments,
                    ),
                })
            })
            .collect()
    }
}

/// The tables a snapshot will read, with the server's row estimates (InnoDB's
/// `TABLE_ROWS`). Estimates are for progress only: a failure to read them is no error.
async fn snapshot_estimates(
    conn: &mut mysql_async::Conn,
    tables: &[TableMeta],
) -> Vec<TableSnapshotProgress> {
    let mut estimates: HashMap<TableKey, u64> = HashMap::new();
    if !tables.is_empty() {
        let dbs: std::collections::BTreeSet<&str> = tables.iter().map(|t| t.db.as_str()).collect();
        let list = dbs
            .iter()
            .map(|d| format!("'{}'", d.replace('\\', "\\\\").replace('\'', "''")))
            .collect::<Vec<_>>()
            .join(",");
        let sql = format!(
            "SELECT TABLE_SCHEMA, TABLE_NAME, TABLE_ROWS FROM information_schema.TABLES WHERE TABLE_SCHEMA IN ({list})"
        );
        match conn.query::<(String, String, Option<u64>), _>(sql).await {
            Ok(rows) => {
                for (db, table, n) in rows {
                    if let Some(n) = n {
                        estimates.insert((db, table), n);
                    }
                }
            }
            Err(e) => tracing::debug!(error = %e, "no row estimates for the progress view"),
        }
    }
    tables
        .iter()
        .map(|t| TableSnapshotProgress {
            table: TableId::new(&t.db, &t.table),
            rows_read: 0,
            rows_estimated: estimates.get(&(t.db.clone(), t.table.clone())).copied(),
            done: false,
        })
        .collect()
}

async fn check_server(conn: &mut mysql_async::Conn) -> Result<()> {
    let context = "checking the server's binlog settings";
    let row: Option<(Option<String>, Option<String>, Option<String>)> = conn
        .query_first("SELECT @@log_bin, @@binlog_format, @@binlog_row_image")
        .await
        .map_err(|e| from_mysql(context, e))?;
    let (log_bin, format, image) = row.unwrap_or_default();
    let on = |v: &Option<String>| matches!(v.as_deref(), Some("1" | "ON"));
    if !on(&log_bin) {
        return Err(Error::permanent(context, "the binary log is off")
            .with_hint("start the server with log-bin (and binlog_format=ROW)"));
    }
    if !format
        .as_deref()
        .is_some_and(|f| f.eq_ignore_ascii_case("ROW"))
    {
        return Err(Error::permanent(
            context,
            format!(
                "binlog_format is {}, ROW is needed",
                format.unwrap_or_default()
            ),
        )
        .with_hint("SET GLOBAL binlog_format = 'ROW' (and in the server config)"));
    }
    if !image
        .as_deref()
        .is_some_and(|f| f.eq_ignore_ascii_case("FULL"))
    {
        return Err(Error::permanent(
            context,
            format!(
                "binlog_row_image is {}, FULL is needed",
                image.unwrap_or_default()
            ),
        )
        .with_hint("SET GLOBAL binlog_row_image = 'FULL' (and in the server config)"));
    }
    Ok(())
}

async fn current_position(conn: &mut mysql_async::Conn) -> Result<BinlogPosition> {
    crate::binlog::status::current_position(conn, "reading the binlog position").await
}

/// A MySQL GTID set start: checked (it parses, the server runs with GTIDs) and normalised.
async fn mysql_gtid_start(conn: &mut mysql_async::Conn, text: &str) -> Result<String> {
    const OPTION: &str = "source.scan.startup.specific-offset.gtid-set";
    let set = crate::binlog::gtid_set::GtidSet::parse(text)
        .map_err(|m| Error::invalid_option(OPTION, m))?;
    let mode: Option<String> = conn
        .query_first("SELECT @@GLOBAL.gtid_mode")
        .await
        .map_err(|e| from_mysql("reading the server's gtid_mode", e))?;
    if !mode
        .as_deref()
        .is_some_and(|m| m.eq_ignore_ascii_case("ON"))
    {
        return Err(Error::invalid_option(
            OPTION,
            format!(
                "the server's gtid_mode is {}: streaming by GTID set needs gtid_mode=ON",
                mode.unwrap_or_default()
            ),
        )
        .with_hint("give scan.startup.specific-offset.file and .pos instead, or enable GTIDs on the server (gtid_mode=ON, enforce_gtid_consistency=ON)"));
    }
    Ok(set.to_string())
}

/// The server's binlog files in order (`SHOW BINARY LOGS`).
async fn binlog_files(conn: &mut mysql_async::Conn) -> Result<Vec<String>> {
    let rows: Vec<mysql_async::Row> = conn
        .query("SHOW BINARY LOGS")
        .await
        .map_err(|e| from_mysql("listing binlog files", e))?;
    Ok(rows.into_iter().filter_map(|r| r.get(0)).collect())
}

async fn earliest_position(conn: &mut mysql_async::Conn) -> Result<BinlogPosition> {
    let row: Option<mysql_async::Row> = conn
        .query_first("SHOW BINARY LOGS")
        .await
        .map_err(|e| from_mysql("listing binlog files", e))?;
    let file: Option<String> = row.and_then(|r| r.get(0));
    file.map(|f| BinlogPosition::new(f, 4))
        .ok_or_else(|| Error::permanent("listing binlog files", "the server has no binlog files"))
}

/// Privileges the source needs, as SHOW GRANTS names them.
const NEEDED_PRIVILEGES: [&str; 3] = ["SELECT", "REPLICATION SLAVE", "REPLICATION CLIENT"];

/// Which of [`NEEDED_PRIVILEGES`] the grants (SHOW GRANTS lines) lack.
fn missing_privileges(grants: &[String]) -> Vec<&'static str> {
    let global: Vec<String> = grants
        .iter()
        .map(|g| g.to_ascii_uppercase())
        .filter(|g| g.contains(" ON *.* "))
        .collect();
    if global.iter().any(|g| g.contains("ALL PRIVILEGES")) {
        return Vec::new();
    }
    NEEDED_PRIVILEGES
        .into_iter()
        .filter(|p| {
            // MariaDB 10.5+ calls REPLICATION CLIENT "BINLOG MONITOR" and REPLICATION SLAVE
            // "REPLICATION SLAVE" still; accept both spellings.
            let alt = match *p {
                "REPLICATION CLIENT" => "BINLOG MONITOR",
                _ => p,
            };
            !global.iter().any(|g| g.contains(p) || g.contains(alt))
        })
        .collect()
}

/// `metadata.list`'s `table_name`, `database_name` and `row_kind` (Flink CDC's names and
/// values; `op_ts` is attached where the commit time is known).
fn attach_metadata(change: &mut cdc_api::DataChangeEvent, c: &MySqlSourceConfig) {
    if c.meta_table_name {
        let table = change.table_id.table.clone();
        change.meta.insert("table_name".into(), table);
    }
    if c.meta_database_name {
        let db = change.table_id.schema.clone().unwrap_or_default();
        change.meta.insert("database_name".into(), db);
    }
    if c.meta_row_kind {
        let kind = change.op.short_tag().to_string();
        change.meta.insert("row_kind".into(), kind);
    }
}

impl MySqlSource {
    /// The next batch before the column filter.
    async fn next_unfiltered(&mut self) -> Result<Option<Vec<Event>>> {
        if !self.announce.is_empty() {
            return Ok(Some(std::mem::take(&mut self.announce)));
        }
        let Some(rx) = self.rx.as_mut() else {
            return Ok(None);
        };
        match tokio::time::timeout(Duration::from_secs(1), rx.recv()).await {
            Err(_) => Ok(Some(Vec::new())),
            Ok(None) => {
                self.rx = None;
                if self.config.startup == StartupMode::Snapshot {
                    // Snapshot only: the driver ends after the last table.
                    return Ok(None);
                }
                // The binlog reader never ends by itself: it sends its error first. A
                // closed channel without one is a crash, never the end of the source.
                let why = match self.driver.take() {
                    Some(driver) => match driver.await {
                        Err(e) if e.is_panic() => {
                            let payload = e.into_panic();
                            payload
                                .downcast_ref::<&str>()
                                .map(ToString::to_string)
                                .or_else(|| payload.downcast_ref::<String>().cloned())
                                .unwrap_or_else(|| "a panic".into())
                        }
                        Err(e) => e.to_string(),
                        Ok(()) => "it ended without an error".into(),
                    },
                    None => "it is gone".into(),
                };
                Err(Error::permanent(
                    "reading the binlog",
                    format!("the binlog reader stopped unexpectedly: {why}"),
                )
                .with_hint("report this with the log; restarting resumes from the last checkpoint"))
            }
            Ok(Some(Err(e))) => Err(e),
            Ok(Some(Ok(batch))) => {
                self.apply(&batch);
                Ok(Some(batch.events))
            }
        }
    }
}

#[async_trait]
impl Source for MySqlSource {
    async fn preflight(&mut self) -> Result<Vec<String>> {
        let (mut conn, _, tls) = self.first_connection().await?;
        let mut out = Vec::new();
        let version: Option<String> = conn
            .query_first("SELECT VERSION()")
            .await
            .map_err(|e| from_mysql("reading the server version", e))?;
        out.push(format!(
            "connected to {}:{} (server {})",
            self.config.hostname,
            self.config.port,
            version.unwrap_or_default()
        ));
        let cipher: Option<(String, String)> = conn
            .query_first("SHOW SESSION STATUS LIKE 'Ssl_cipher'")
            .await
            .map_err(|e| from_mysql("reading the connection's TLS cipher", e))?;
        out.push(self.config.tls.describe(
            &tls,
            &self.config.hostname,
            cipher.as_ref().map(|(_, c)| c.as_str()),
        ));
        check_server(&mut conn).await?;
        out.push("binlog on, binlog_format=ROW, binlog_row_image=FULL".into());
        let grants: Vec<String> = conn
            .query("SHOW GRANTS")
            .await
            .map_err(|e| from_mysql("reading the user's privileges", e))?;
        let missing = missing_privileges(&grants);
        if !missing.is_empty() {
            return Err(Error::permanent(
                "checking the source user's privileges",
                format!("{} lacks {}", self.config.username, missing.join(", ")),
            )
            .with_hint(format!(
                "GRANT {} ON *.* TO the source user (RELOAD and SHOW DATABASES help too)",
                missing.join(", ")
            )));
        }
        out.push("the user has SELECT, REPLICATION SLAVE and REPLICATION CLIENT".into());
        let tables = list_tables(&mut conn, &self.config.filter).await?;
        let names: Vec<String> = tables
            .iter()
            .take(10)
            .map(|(d, t)| format!("{d}.{t}"))
            .collect();
        let more = tables.len().saturating_sub(names.len());
        out.push(if tables.is_empty() {
            "no table matches `tables` yet (only tables created later will be captured)".into()
        } else {
            format!(
                "captures {} table(s): {}{}",
                tables.len(),
                names.join(", "),
                if more > 0 {
                    format!(" and {more} more")
                } else {
                    String::new()
                }
            )
        });
        let _ = conn.disconnect().await;
        Ok(out)
    }

    async fn open(&mut self, restore: Option<SourceOffset>) -> Result<()> {
        let (mut conn, opts, tls) = self.first_connection().await?;
        // Went plaintext under `preferred`: later binlog connections try TLS again first.
        let tls_opts = tls
            .plaintext_reason
            .is_some()
            .then(|| self.opts(self.config.tls.ssl_opts(&self.config.tls.first_attempt())));
        check_server(&mut conn).await?;

        let (tx, rx) = mpsc::channel::<Result<Batch>>(8);
        let mut to_snapshot: Vec<TableMeta> = Vec::new();
        let mut binlog_start: Option<BinlogOffset>;
        let mut snapshot_only = false;

        if let Some(SourceOffset(json)) = restore {
            let state: OffsetState = serde_json::from_value(json).map_err(|e| {
                Error::permanent("restoring the MySQL source offset", e.to_string())
                    .with_hint("the state was written by an incompatible version; start with a fresh state directory")
            })?;
            if state.version > OFFSET_VERSION {
                return Err(Error::permanent(
                    "restoring the MySQL source offset",
                    "written by a newer version",
                ));
            }
            let mut state = state;
            for ((db, table), pos) in std::mem::take(&mut state.snapshot_done) {
                state.snapshot_segments.push(TableSegments {
                    db,
                    table,
                    segments: vec![crate::snapshot_key::Segment {
                        pos,
                        upto: None,
                        unread: false,
                    }],
                });
            }
            self.announce = self.create_events(&state.tables);
            for key in &state.snapshot_pending {
                if let Some(m) = state
                    .tables
                    .iter()
                    .find(|t| &(t.db.clone(), t.table.clone()) == key)
                {
                    to_snapshot.push(m.clone());
                }
            }
            binlog_start = state.binlog.clone();
            if binlog_start.is_none() {
                let start = match &state.snapshot_start {
                    Some(p) => p.clone(),
                    None => current_position(&mut conn).await?,
                };
                binlog_start = Some(BinlogOffset {
                    gtid: gtid_pos_at(&mut conn, &start).await,
                    file: start.file,
                    pos: start.pos,
                    skip_rows: 0,
                    gtid_set: None,
                });
            }
            let now = server_identity(&mut conn).await?;
            let address = format!("{}:{}", self.config.hostname, self.config.port);
            let gtid_seen = match state.binlog.as_ref().and_then(|b| b.gtid.as_deref()) {
                Some(g) if state.server.as_ref() != Some(&now) => {
                    mariadb_gtid_seen(&mut conn, g).await?
                }
                _ => false,
            };
            let resume = resume_mode(
                state.server.as_ref(),
                &now,
                state.binlog.as_ref(),
                !state.snapshot_pending.is_empty() || !state.snapshot_segments.is_empty(),
                gtid_seen,
                &address,
            )?;
            if let (Resume::ByMariaDbGtid, Some(b)) = (resume, &state.binlog) {
                let by_gtid = BinlogOffset {
                    file: String::new(),
                    pos: 4,
                    skip_rows: b.skip_rows,
                    gtid: b.gtid.clone(),
                    gtid_set: None,
                };
                tracing::warn!(
                    server = %address,
                    gtid_position = by_gtid.gtid.as_deref().unwrap_or_default(),
                    "the checkpoint comes from another server (a failover?): continuing after its GTID position"
                );
                state.binlog = Some(by_gtid.clone());
                binlog_start = Some(by_gtid);
            }
            // From here the positions in the offset are this server's.
            state.server = Some(now);
            snapshot_only = self.config.startup == StartupMode::Snapshot;
            self.state = state;
            if self.config.newly_added_tables {
                // Tables that match `tables` now but were not captured before: snapshot them.
                for (db, table) in list_tables(&mut conn, &self.config.filter).await? {
                    if self
                        .state
                        .tables
                        .iter()
                        .any(|t| t.db == db && t.table == table)
                    {
                        continue;
                    }
                    if let Some(meta) = load_table(&mut conn, &db, &table).await? {
                        tracing::info!(table = %meta.table_id(), "newly added table: snapshot then binlog");
                        self.announce
                            .extend(self.create_events(std::slice::from_ref(&meta)));
                        self.state.snapshot_pending.push((db, table));
                        self.state.tables.push(meta.clone());
                        to_snapshot.push(meta);
                    }
                }
            }
        } else {
            let keys = list_tables(&mut conn, &self.config.filter).await?;
            let mut metas = Vec::new();
            for (db, table) in &keys {
                if let Some(meta) = load_table(&mut conn, db, table).await? {
                    metas.push(meta);
                }
            }
            if metas.is_empty() {
                tracing::warn!(
                    "no table matches `tables`; only tables created later will be captured"
                );
            }
            self.announce = self.create_events(&metas);
            self.state = OffsetState {
                version: OFFSET_VERSION,
                tables: metas.clone(),
                server: Some(server_identity(&mut conn).await?),
                ..OffsetState::default()
            };
            let mut gtid_start: Option<String> = None;
            let mut gtid_set_start: Option<String> = None;
            let start = match &self.config.startup {
                StartupMode::Initial | StartupMode::Snapshot => {
                    snapshot_only = self.config.startup == StartupMode::Snapshot;
                    let p = current_position(&mut conn).await?;
                    self.state.snapshot_pending = metas
                        .iter()
                        .map(|m| (m.db.clone(), m.table.clone()))
                        .collect();
                    self.state.snapshot_start = Some(p.clone());
                    to_snapshot = metas;
                    p
                }
                StartupMode::LatestOffset => current_position(&mut conn).await?,
                StartupMode::EarliestOffset => earliest_position(&mut conn).await?,
                StartupMode::Timestamp(ms) => {
                    let files = binlog_files(&mut conn).await?;
                    crate::binlog::timestamp_start::start_for(
                        &opts,
                        self.config.server_id,
                        &files,
                        *ms,
                        self.config.connect_timeout,
                    )
                    .await?
                }
                StartupMode::SpecificOffset {
                    file: Some(file),
                    pos: Some(pos),
                    ..
                } => BinlogPosition::new(file, *pos),
                StartupMode::SpecificOffset {
                    gtid_set: Some(gtid),
                    ..
                } => {
                    if is_mariadb(&mut conn).await? {
                        gtid_start = Some(gtid.clone());
                    } else {
                        // MySQL: after this executed set; the server picks the file.
                        gtid_set_start = Some(mysql_gtid_start(&mut conn, gtid).await?);
                    }
                    BinlogPosition::new("", 4)
                }
                StartupMode::SpecificOffset { .. } => {
                    return Err(Error::invalid_option(
                        "source.scan.startup.specific-offset.gtid-set",
                        "specific-offset needs .file and .pos, or .gtid-set",
                    ));
                }
            };
            // `skip-events` / `skip-rows` are applied by the binlog reader (Debezium's
            // meaning: rows of one event, not of the transaction).
            let skip_rows = 0;
            let gtid = match gtid_start {
                Some(g) => Some(g),
                // MariaDB: the GTID position at the start, so that the offset can follow
                // a failover to a replica.
                None if !start.file.is_empty() => gtid_pos_at(&mut conn, &start).await,
                None => None,
            };
            binlog_start = Some(BinlogOffset {
                file: start.file,
                pos: start.pos,
                skip_rows,
                gtid,
                gtid_set: gtid_set_start,
            });
            if to_snapshot.is_empty() {
                self.state.binlog.clone_from(&binlog_start);
            }
        }
        // Tables restored from a checkpoint were never checked (or by an older version).
        for meta in &self.state.tables {
            meta.check_charsets()?;
        }
        let database_charsets = database_charsets(&mut conn).await?;
        let signal = match &self.config.passthrough.signal_table {
            Some((db, table)) => Some(load_table(&mut conn, db, table).await?.ok_or_else(|| {
                Error::invalid_option(
                    "source.debezium.signal.data.collection",
                    format!(
                        "the signalling table {db}.{table} does not exist; create it with CREATE TABLE {db}.{table} {}",
                        crate::signal::SIGNAL_TABLE_DDL
                    ),
                )
            })?),
            None => None,
        };
        self.snapshot_progress = snapshot_estimates(&mut conn, &to_snapshot).await;
        let _ = conn.disconnect().await;

        let config = self.config.clone();
        let pool = mysql_async::Pool::new(opts.clone());
        let skip_before_ms = match config.startup {
            StartupMode::Timestamp(ms) => Some(ms),
            _ => None,
        };
        let tables: HashMap<TableKey, TableMeta> = self
            .state
            .tables
            .iter()
            .map(|m| ((m.db.clone(), m.table.clone()), m.clone()))
            .collect();
        let online_schema = self.state.online_schema.clone();
        let rereads = self.state.rereads.clone();
        let mut snapshot_positions: HashMap<TableKey, TableSegments> = self
            .state
            .snapshot_segments
            .iter()
            .map(|s| ((s.db.clone(), s.table.clone()), s.clone()))
            .collect();
        let to_snapshot: Vec<snapshot::TableRead> = to_snapshot
            .into_iter()
            .map(|meta| {
                let prior = snapshot_positions
                    .get(&(meta.db.clone(), meta.table.clone()))
                    .cloned()
                    .unwrap_or_else(|| TableSegments {
                        db: meta.db.clone(),
                        table: meta.table.clone(),
                        segments: Vec::new(),
                    });
                snapshot::TableRead { meta, prior }
            })
            .collect();
        // What a table read again on a signal had read is where its read resumes, not a
        // filter for the binlog (`rereads`).
        for key in &rereads {
            snapshot_positions.remove(key);
        }
        let start = binlog_start.unwrap_or(BinlogOffset {
            file: String::new(),
            pos: 4,
            skip_rows: 0,
            gtid: None,
            gtid_set: None,
        });
        self.driver = Some(tokio::spawn(async move {
            // Snapshot: tables in parallel, bounded by the pool.
            let parallel = snapshot::readers(&config);
            let permits = Arc::new(tokio::sync::Semaphore::new(parallel));
            let mut set = JoinSet::new();
            let mut queue = to_snapshot.into_iter();
            let mut failed = false;
            loop {
                while set.len() < parallel {
                    let Some(read) = queue.next() else { break };
                    let (pool, config, tx, permits) =
                        (pool.clone(), config.clone(), tx.clone(), permits.clone());
                    let key = (read.meta.db.clone(), read.meta.table.clone());
                    set.spawn(async move {
                        snapshot::snapshot_table(pool, read, config, tx, permits)
                            .await
                            .map(|segments| (key, segments))
                    });
                }
                let Some(joined) = set.join_next().await else {
                    break;
                };
                match joined {
                    Ok(Ok((key, pos))) => {
                        // A table read again on a signal filters nothing (`rereads`).
                        if !rereads.contains(&key) {
                            snapshot_positions.insert(key, pos);
                        }
                    }
                    Ok(Err(e)) => {
                        let _ = tx.send(Err(e)).await;
                        failed = true;
                        break;
                    }
                    Err(e) => {
                        let _ = tx
                            .send(Err(Error::permanent("snapshot task", e.to_string())))
                            .await;
                        failed = true;
                        break;
                    }
                }
            }
            if failed || snapshot_only {
                return;
            }
            let reader = BinlogReader {
                config,
                opts,
                tls_opts,
                tables,
                snapshot_positions,
                tx,
                stop_at: None,
                skip_before_ms,
                compare_conn: None,
                database_charsets,
                online_schema,
                signal,
            };
            reader.run(start).await;
        }));
        self.rx = Some(rx);
        Ok(())
    }

    async fn next_batch(&mut self) -> Result<Option<Vec<Event>>> {
        let Some(mut events) = self.next_unfiltered().await? else {
            return Ok(None);
        };
        if let Some(filter) = self.column_filter.as_mut() {
            events = filter.apply(events)?;
        }
        // Only the binlog produces truncates (`debezium.skipped.operations: t`).
        if self.config.passthrough.skipped.truncates {
            events.retain(|e| {
                !matches!(
                    e,
                    Event::SchemaChange(cdc_api::SchemaChangeEvent::TruncateTable { .. })
                )
            });
        }
        let c = &self.config;
        if c.meta_table_name || c.meta_database_name || c.meta_row_kind {
            for event in &mut events {
                if let Event::DataChange(change) = event {
                    attach_metadata(change, c);
                }
            }
        }
        Ok(Some(events))
    }

    fn snapshotting(&self) -> bool {
        !(self.state.binlog.is_some() && self.state.snapshot_pending.is_empty())
    }

    fn progress(&self) -> SourceProgress {
        let streaming = self.state.binlog.is_some() && self.state.snapshot_pending.is_empty();
        SourceProgress {
            snapshot: self.snapshot_progress.clone(),
            streaming,
            lag: if streaming { self.lag } else { None },
        }
    }

    fn captures(&self, table: &TableId) -> Option<bool> {
        let db = table.schema.as_deref()?;
        Some(self.config.filter.matches(db, &table.table))
    }

    fn offset(&self) -> Result<SourceOffset> {
        let mut state = self.state.clone();
        state.version = OFFSET_VERSION;
        serde_json::to_value(&state)
            .map(SourceOffset)
            .map_err(|e| Error::permanent("saving the MySQL source offset", e.to_string()))
    }

    async fn close(&mut self) -> Result<()> {
        if let Some(d) = self.driver.take() {
            d.abort();
        }
        self.rx = None;
        Ok(())
    }
}

#[cfg(test)]
mod server_identity_tests {
    use super::{BinlogOffset, Resume, ServerIdentity, resume_mode};

    fn offset(gtid: Option<&str>, gtid_set: Option<&str>) -> BinlogOffset {
        BinlogOffset {
            file: "binlog.000002".into(),
            pos: 400,
            skip_rows: 0,
            gtid: gtid.map(str::to_string),
            gtid_set: gtid_set.map(str::to_string),
        }
    }

    #[test]
    fn positions_of_another_server_are_refused_unless_a_gtid_position_carries_over() {
        let id = |server_id, uuid: Option<&str>| ServerIdentity {
            server_id,
            uuid: uuid.map(str::to_string),
        };
        let (a, b) = (id(1, None), id(2, None));
        let plain = offset(None, None);
        let mode = |saved, now, binlog, unsettled, mariadb| {
            resume_mode(saved, now, binlog, unsettled, mariadb, "h:1")
        };
        assert_eq!(
            mode(Some(&a), &a, Some(&plain), false, true).unwrap(),
            Resume::AsSaved
        );
        assert_eq!(
            mode(None, &b, Some(&plain), false, true).unwrap(),
            Resume::AsSaved
        );
        let e = mode(Some(&a), &b, Some(&plain), false, true)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("server_id 1") && e.contains("h:1 is the server with server_id 2"),
            "{e}"
        );
        assert!(e.contains("--reset"), "{e}");
        // MySQL GTID set: valid anywhere.
        let set = offset(None, Some("3e11fa47-71ca-11e1-9e33-c80aa9429562:1-5"));
        assert_eq!(
            mode(Some(&a), &b, Some(&set), false, false).unwrap(),
            Resume::AsSaved
        );
        // MariaDB GTID position: after the snapshot, on a MariaDB server.
        let mariadb = offset(Some("0-1-42,1-2-7"), None);
        assert_eq!(
            mode(Some(&a), &b, Some(&mariadb), false, true).unwrap(),
            Resume::ByMariaDbGtid
        );
        let e = mode(Some(&a), &b, Some(&mariadb), true, true)
            .unwrap_err()
            .to_string();
        assert!(e.contains("snapshot is not finished"), "{e}");
        assert!(mode(Some(&a), &b, Some(&mariadb), false, false).is_err());
        // Same id, another MySQL server (ids are not unique across clusters).
        let c = id(1, Some("3e11fa47-71ca-11e1-9e33-c80aa9429562"));
        let d = id(1, Some("4e11fa47-71ca-11e1-9e33-c80aa9429562"));
        assert!(mode(Some(&c), &d, Some(&plain), false, false).is_err());
    }
}

#[cfg(test)]
mod preflight_tests {
    use super::missing_privileges;

    #[test]
    fn grants_are_read_from_show_grants() {
        let all = vec!["GRANT ALL PRIVILEGES ON *.* TO `root`@`%`".to_string()];
        assert!(missing_privileges(&all).is_empty());
        let some = vec![
            "GRANT SELECT, REPLICATION SLAVE ON *.* TO `cdc`@`%`".to_string(),
            "GRANT ALL PRIVILEGES ON `app`.* TO `cdc`@`%`".to_string(),
        ];
        assert_eq!(missing_privileges(&some), ["REPLICATION CLIENT"]);
        let mariadb =
            vec!["GRANT SELECT, REPLICATION SLAVE, BINLOG MONITOR ON *.* TO `cdc`@`%`".to_string()];
        assert!(missing_privileges(&mariadb).is_empty());
    }
}

/// Every database's default character set and the server's: a table created later
/// without one takes its database's.
async fn database_charsets(
    conn: &mut mysql_async::Conn,
) -> Result<crate::binlog::reader::DatabaseCharsets> {
    let err = |e| crate::error::from_mysql("reading the databases' character sets", e);
    let by_database: Vec<(String, String)> = conn
        .query("SELECT SCHEMA_NAME, DEFAULT_CHARACTER_SET_NAME FROM information_schema.SCHEMATA")
        .await
        .map_err(err)?;
    let server: Option<String> = conn
        .query_first("SELECT @@character_set_server")
        .await
        .map_err(err)?;
    Ok(crate::binlog::reader::DatabaseCharsets {
        by_database: by_database.into_iter().collect(),
        server: server.unwrap_or_else(|| "utf8mb4".into()),
    })
}
