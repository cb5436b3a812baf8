//! The replication connection: reads events from a position, verifies checksums, tracks
//! transactions, decodes rows of captured tables and hands them on in batches that carry
//! the position to resume from.
//!
//! Positions are transaction-exact: a batch's position is the start of the transaction it
//! ends in plus how many of its rows were already handed on (`skip_rows`), or the position
//! after the last committed transaction. Resuming there repeats nothing and loses nothing.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use cdc_api::{DataChangeEvent, Error, Event, Result, TableId};
use futures::StreamExt;
use mysql_async::BinlogStreamRequest;
use mysql_async::prelude::Queryable;
use mysql_common::binlog::events::{QueryEvent, RotateEvent, TableMapEvent};
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;

use super::gtid_set::{Gtid, GtidSet};
use super::mariadb_gtid::GtidPos;
use super::position::BinlogPosition;
use super::rows::{ColumnInfo, ColumnLayout, Cursor, decode_row, layout};
use crate::MySqlSourceConfig;
use crate::ddl::{self, TableChange};
use crate::schema::TableMeta;
use crate::snapshot_key::{KeyColumns, KeyPart, TableSegments, cmp_local};
use crate::source::{Batch, TableKey, TableUpdate};

/// Where to resume in the binlog.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct BinlogOffset {
    pub(crate) file: String,
    pub(crate) pos: u64,
    /// Rows of the transaction starting at `pos` already handed on.
    pub(crate) skip_rows: u64,
    /// The GTID of the last committed transaction, when the server uses GTIDs.
    #[serde(default)]
    pub(crate) gtid: Option<String>,
    /// MySQL: the executed GTID set to resume after (started from a GTID set). When set,
    /// the stream is requested by this set, not by `file`/`pos` (which only inform).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) gtid_set: Option<String>,
}

const BATCH_EVENTS: usize = 1024;

// Event type codes.
const QUERY: u8 = 2;
const ROTATE: u8 = 4;
const FORMAT_DESCRIPTION: u8 = 15;
const XID: u8 = 16;
const TABLE_MAP: u8 = 19;
const WRITE_V1: u8 = 23;
const UPDATE_V1: u8 = 24;
const DELETE_V1: u8 = 25;
const HEARTBEAT: u8 = 27;
const WRITE_V2: u8 = 30;
const UPDATE_V2: u8 = 31;
const DELETE_V2: u8 = 32;
const MYSQL_GTID: u8 = 33;
const MYSQL_ANONYMOUS_GTID: u8 = 34;
const MARIADB_GTID: u8 = 162;
const MARIADB_COMPRESSED_FIRST: u8 = 166;
const MARIADB_COMPRESSED_LAST: u8 = 171;
const MYSQL_PARTIAL_UPDATE: u8 = 39;
const TRANSACTION_PAYLOAD: u8 = 40;
const MYSQL_GTID_TAGGED: u8 = 42;
/// Binlog event header length (v4).
#[cfg(test)]
pub(crate) const HEADER_LEN: usize = 19;

/// How long the stream must stay quiet before the reader counts as caught up.
const QUIET_AFTER: Duration = Duration::from_millis(300);

pub(crate) struct BinlogReader {
    pub(crate) config: Arc<MySqlSourceConfig>,
    pub(crate) opts: mysql_async::Opts,
    /// `ssl.mode: preferred` after the first connection fell back to plaintext: the TLS
    /// options, tried first again by every new binlog connection (the server may offer
    /// TLS by then; the fallback is decided per connection, not once for the run).
    pub(crate) tls_opts: Option<mysql_async::Opts>,
    pub(crate) tables: HashMap<TableKey, TableMeta>,
    /// Captured tables whose snapshot was read at a position: their changes before it are
    /// already in the snapshot.
    pub(crate) snapshot_positions: HashMap<TableKey, TableSegments>,
    pub(crate) tx: mpsc::Sender<Result<Batch>>,
    /// Stop after this position (bounded reads for tests); None = forever.
    pub(crate) stop_at: Option<BinlogPosition>,
    /// `scan.startup.mode: timestamp`: changes committed before this (ms since the epoch)
    /// are skipped.
    pub(crate) skip_before_ms: Option<i64>,
    /// A connection for text key comparisons (resumed snapshots only), opened on demand.
    pub(crate) compare_conn: Option<mysql_async::Conn>,
    /// Every database's default character set (read at start, then kept by the DDL), for
    /// tables created without one.
    pub(crate) database_charsets: DatabaseCharsets,
    /// gh-ost / pt-osc shadow tables of migrations in progress (kept in the offset).
    pub(crate) online_schema: crate::online_schema::Shadows,
    /// `debezium.signal.data.collection`: the signalling table's definition (its rows are
    /// read for requests, never handed on).
    pub(crate) signal: Option<TableMeta>,
}

/// The default character set of each database, and the server's for the others.
#[derive(Debug, Clone)]
pub(crate) struct DatabaseCharsets {
    pub(crate) by_database: HashMap<String, String>,
    pub(crate) server: String,
}

impl Default for DatabaseCharsets {
    fn default() -> Self {
        Self {
            by_database: HashMap::new(),
            server: "utf8mb4".into(),
        }
    }
}

impl DatabaseCharsets {
    fn of(&self, db: &str) -> &str {
        self.by_database.get(db).unwrap_or(&self.server)
    }

    fn apply(&mut self, change: ddl::DatabaseCharset) {
        match change {
            ddl::DatabaseCharset::Set(db, charset) => {
                let charset = charset.unwrap_or_else(|| self.server.clone());
                self.by_database.insert(db, charset);
            }
            ddl::DatabaseCharset::Dropped(db) => {
                self.by_database.remove(&db);
            }
        }
    }
}

pub(crate) struct StreamState {
    file: String,
    next_pos: u64,
    in_txn: bool,
    txn_start: BinlogPosition,
    rows_seen: u64,
    rows_sent: u64,
    skip_rows: u64,
    gtid: Option<String>,
    txn_gtid: Option<String>,
    /// Streaming by MySQL GTID set: the executed set, with every committed transaction
    /// added (and its text, handed out with every offset).
    gtid_set: Option<GtidSet>,
    gtid_set_text: Option<String>,
    /// MariaDB: every domain's last GTID (from the start's position, then each commit).
    mariadb_pos: GtidPos,
    /// The MySQL GTID of the open transaction, added to `gtid_set` at its commit.
    txn_mysql_gtid: Option<Gtid>,
    table_maps: HashMap<u64, (TableKey, Vec<ColumnLayout>)>,
    infos: HashMap<TableKey, Arc<Vec<ColumnInfo>>>,
    pending: Vec<Event>,
    updates: Vec<TableUpdate>,
    last_send: Instant,
    seen_format_description: bool,
    /// Between a transaction payload event and the commit inside it.
    in_payload: bool,
    /// Started from a MariaDB GTID or a MySQL GTID set (no file yet, or the server picks
    /// it): the offset stays the start until the first transaction gives a position.
    gtid_start: Option<BinlogOffset>,
    /// Commit timestamp (seconds) of the last transaction event read, 0 before any.
    last_event_ts: u32,
    /// Nothing more to read right now (the stream went quiet or a heartbeat came).
    caught_up: bool,
    /// Tables that entered the capture with rows the binlog never showed (renamed or
    /// created from another table): read once the DDL's batch is out.
    to_copy: Vec<TableMeta>,
    /// `scan.startup.specific-offset.skip-events` / `skip-rows` of a start at the
    /// configured offset.
    startup_skip: Option<StartupSkip>,
    /// Tables in `to_copy` that a signal asked to read again: no binlog filter after.
    rereads: Vec<TableKey>,
}

/// Debezium's restart skip, which `specific-offset` options copied from a Flink CDC
/// offset mean: from the first transaction's opening event (BEGIN, or MariaDB's GTID
/// event, which opens a transaction without one), `events` events are skipped, the
/// opening one counted and table maps still read; then `rows` rows of the next rows
/// event (at most all of its rows). Skipped rows count as handed on, so an offset taken
/// in the middle of that transaction resumes after them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct StartupSkip {
    events: u64,
    rows: u64,
    /// The first transaction has opened.
    counting: bool,
}

impl StartupSkip {
    /// The skip of `config` when `start` is the configured specific offset (a reconnect or
    /// restart before the first transaction ended starts there again and skips again;
    /// its own count of rows handed on, kept in the offset, covers the same rows).
    fn for_start(config: &MySqlSourceConfig, start: &BinlogOffset) -> Option<Self> {
        let crate::config::StartupMode::SpecificOffset {
            file,
            pos,
            gtid_set,
            skip_events,
            skip_rows,
        } = &config.startup
        else {
            return None;
        };
        if *skip_events == 0 && *skip_rows == 0 {
            return None;
        }
        let at_file = file.as_deref() == Some(start.file.as_str()) && *pos == Some(start.pos);
        // A GTID start has no file until its first transaction gives one.
        let at_gtid = gtid_set.is_some() && start.file.is_empty();
        (at_file || at_gtid).then_some(Self {
            events: *skip_events,
            rows: *skip_rows,
            counting: false,
        })
    }
}

impl StreamState {
    /// The state at `start`; a `gtid_set` that does not parse (checked before the stream
    /// is requested) is not tracked.
    pub(crate) fn starting_at(start: &BinlogOffset) -> Self {
        let gtid_set = start
            .gtid_set
            .as_deref()
            .and_then(|t| GtidSet::parse(t).ok());
        Self {
            file: start.file.clone(),
            next_pos: start.pos,
            in_txn: false,
            txn_start: BinlogPosition::new(&start.file, start.pos),
            rows_seen: 0,
            rows_sent: 0,
            skip_rows: start.skip_rows,
            gtid: start.gtid.clone(),
            txn_gtid: None,
            gtid_set_text: gtid_set.as_ref().map(ToString::to_string),
            gtid_set,
            txn_mysql_gtid: None,
            // Empty for MySQL GTIDs, which do not parse as MariaDB ones.
            mariadb_pos: start
                .gtid
                .as_deref()
                .and_then(|g| GtidPos::parse(g).ok())
                .unwrap_or_default(),
            table_maps: HashMap::new(),
            infos: HashMap::new(),
            pending: Vec::new(),
            updates: Vec::new(),
            last_send: Instant::now(),
            seen_format_description: false,
            in_payload: false,
            // A MySQL GTID set stream starts where the server finds the first transaction
            // not in the set, whatever file the offset names.
            gtid_start: ((start.file.is_empty() && start.gtid.is_some())
                || start.gtid_set.is_some())
            .then(|| start.clone()),
            last_event_ts: 0,
            caught_up: false,
            to_copy: Vec::new(),
            startup_skip: None,
            rereads: Vec::new(),
        }
    }

    /// How far behind the server the reader is: zero when caught up, else the age of the
    /// last event read (second precision, as binlog timestamps are).
    fn lag(&self) -> Option<Duration> {
        if self.caught_up {
            return Some(Duration::ZERO);
        }
        if self.last_event_ts == 0 {
            return None;
        }
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        Some(Duration::from_secs(
            now.saturating_sub(u64::from(self.last_event_ts)),
        ))
    }

    pub(crate) fn offset(&self) -> BinlogOffset {
        if let Some(start) = &self.gtid_start {
            return start.clone();
        }
        if self.in_txn {
            BinlogOffset {
                file: self.txn_start.file.clone(),
                pos: self.txn_start.pos,
                skip_rows: self.rows_sent.max(self.skip_rows),
                gtid: self.gtid.clone(),
                gtid_set: self.gtid_set_text.clone(),
            }
        } else {
            BinlogOffset {
                file: self.file.clone(),
                pos: self.next_pos,
                skip_rows: 0,
                gtid: self.gtid.clone(),
                gtid_set: self.gtid_set_text.clone(),
            }
        }
    }
}

/// The statements that prepare a replication connection. MySQL 8.0.26 renamed the user
/// variables a dump thread reads to `source_*` (whether 8.4+ still reads the old names is
/// unclear); MariaDB and older MySQL read `master_*`. A user variable a server does not
/// read is harmless, so both spellings are set (mysql_async sets `@master_binlog_checksum`
/// itself).
pub(crate) fn replication_setup(heartbeat: Option<Duration>) -> Vec<String> {
    let nanos = heartbeat.map_or(0, |h| h.as_nanos() as u64);
    vec![
        // Without this MariaDB replaces its GTID events by dummy query events.
        "SET @mariadb_slave_capability = 4".to_string(),
        format!("SET @master_heartbeat_period = {nanos}"),
        format!("SET @source_heartbeat_period = {nanos}"),
        // The value mysql_async gives @master_binlog_checksum.
        "SET @source_binlog_checksum = 'ALL'".to_string(),
    ]
}

/// A driver error of the replication connection. The server ending the stream because
/// another reader connected with this reader's server id is permanent: reconnecting would
/// kick that reader out in turn, and the two would take turns forever (each time re-reading
/// from its last position), so the reader stops with one error that names the id and says
/// what to do. Everything else is sorted as usual (a lost connection is retried).
fn binlog_error(config: &MySqlSourceConfig, context: &str, e: mysql_async::Error) -> Error {
    if !crate::error::is_same_server_id(&e) {
        return crate::error::from_mysql(context, e);
    }
    let id = config.server_id;
    let said = match &e {
        mysql_async::Error::Server(s) => {
            format!("server error {} ({}): {}", s.code, s.state, s.message)
        }
        other => other.to_string(),
    };
    Error::permanent(
        context,
        format!(
            "{}:{} ended this reader's binlog stream because another reader connected with the same server-id {id} ({said})",
            config.hostname, config.port
        ),
    )
    .with_hint(format!(
        "server-id {id} is used by another reader as well: another pipeline, another copy of this pipeline, or a replica. \
         Give every pipeline its own `server-id` (or leave it unset: the default is derived from the pipeline name, hostname, port and tables), \
         and make sure only one copy of this pipeline runs; SHOW SLAVE HOSTS (MySQL 8.4+: SHOW REPLICAS) on the server lists the ids of the readers connected now"
    ))
    .with_source(e)
}

fn protocol(what: &str, detail: impl std::fmt::Display) -> Error {
    Error::permanent(format!("reading the binlog ({what})"), detail.to_string())
}

impl BinlogReader {
    /// Streams from `start` until the channel closes, a permanent error, or `stop_at`.
    pub(crate) async fn run(mut self, start: BinlogOffset) {
        let mut offset = start;
        let mut failures = 0u32;
        loop {
            match self.stream_once(&offset).await {
                Ok(Some(last)) => {
                    // The server ended the stream (shutdown, KILL): reconnect, after a
                    // pause so a server that keeps closing at once is not hammered.
                    tracing::warn!(position = %format!("{}:{}", last.file, last.pos), "binlog stream ended by the server; reconnecting");
                    offset = last;
                    failures = 0;
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
                Ok(None) => return,
                Err((e, last)) if e.is_retryable() => {
                    offset = last;
                    failures += 1;
                    if failures > self.config.connect_max_retries.max(1) * 10 {
                        let _ = self
                            .tx
                            .send(Err(e.retries_exhausted("gave up reconnecting")))
                            .await;
                        return;
                    }
                    let wait = Duration::from_millis(200 * u64::from(failures.min(25)));
                    tracing::warn!(error = %e, retry_in = ?wait, position = %format!("{}:{}", offset.file, offset.pos), "binlog connection lost; reconnecting");
                    tokio::time::sleep(wait).await;
                }
                Err((e, _)) => {
                    let _ = self.tx.send(Err(e)).await;
                    return;
                }
            }
        }
    }

    /// A connection for the binlog: over TLS when the server offers it again (see
    /// `tls_opts`), else as the first connection settled.
    async fn connect_for_binlog(
        &self,
    ) -> std::result::Result<mysql_async::Conn, mysql_async::Error> {
        if let Some(tls) = &self.tls_opts {
            match mysql_async::Conn::new(tls.clone()).await {
                Ok(conn) => {
                    tracing::info!(
                        "the server offers TLS again: the binlog connection is encrypted (ssl.mode: preferred)"
                    );
                    return Ok(conn);
                }
                Err(e) => tracing::warn!(
                    server = %format!("{}:{}", self.config.hostname, self.config.port),
                    error = %e,
                    "TLS still fails; the binlog connection goes in PLAINTEXT: the password and the data are not encrypted (ssl.mode: preferred; use required or verify-identity to refuse this)"
                ),
            }
        }
        mysql_async::Conn::new(self.opts.clone()).await
    }

    /// One connection's worth of streaming. `Ok(None)`: done (channel closed or stop
    /// reached). `Ok(Some(offset))`: the connection ended cleanly, resume there.
    async fn stream_once(
        &mut self,
        start: &BinlogOffset,
    ) -> Result<Option<BinlogOffset>, (Error, BinlogOffset)> {
        let fail = |e: Error| (e, start.clone());
        let mut conn = self
            .connect_for_binlog()
            .await
            .map_err(|e| fail(crate::error::from_mysql("connecting for the binlog", e)))?;
        let mut setup = replication_setup(self.config.heartbeat);
        if self.config.binlog_limit.is_set() {
            // The rate limit holds the reader back; the server must not give up writing
            // to it meanwhile (net_write_timeout, 60 s by default).
            setup.push("SET SESSION net_write_timeout = 3600".to_string());
        }
        // MySQL: request by GTID set (COM_BINLOG_DUMP_GTID).
        let sids = match &start.gtid_set {
            Some(text) => Some(GtidSet::parse(text).and_then(|set| set.to_sids()).map_err(
                |m| {
                    fail(Error::invalid_option(
                        "source.scan.startup.specific-offset.gtid-set",
                        m,
                    ))
                },
            )?),
            None => None,
        };
        if sids.is_none() && start.file.is_empty() {
            if let Some(gtid) = &start.gtid {
                // MariaDB: start after this GTID position; file and position are ignored.
                let pos = GtidPos::parse(gtid).map_err(|_| {
                    fail(Error::invalid_option(
                        "source.scan.startup.specific-offset.gtid-set",
                        format!("'{gtid}' is not a MariaDB GTID list like 0-1-42,1-1-7"),
                    ))
                })?;
                setup.push(format!("SET @slave_connect_state = '{pos}'"));
                setup.push("SET @slave_gtid_strict_mode = 0".to_string());
                setup.push("SET @slave_gtid_ignore_duplicates = 0".to_string());
            }
        }
        for sql in setup {
            conn.query_drop(&sql).await.map_err(|e| {
                fail(crate::error::from_mysql(
                    "preparing the binlog connection",
                    e,
                ))
            })?;
        }
        let request = BinlogStreamRequest::new(self.config.server_id);
        let (request, at) = match sids {
            // No file name: the server starts in the first file holding a transaction
            // that is not in the set, and skips every transaction that is.
            Some(sids) => (
                request.with_gtid().with_gtid_set(sids).with_pos(4),
                format!(
                    "after the GTID set {}",
                    start.gtid_set.as_deref().unwrap_or_default()
                ),
            ),
            None => (
                request
                    .with_filename(start.file.as_bytes())
                    .with_pos(start.pos),
                format!("at {}:{}", start.file, start.pos),
            ),
        };
        let mut stream = conn.get_binlog_stream(request).await.map_err(|e| {
            fail(binlog_error(
                &self.config,
                &format!("requesting the binlog {at}"),
                e,
            ))
        })?;

        tracing::debug!(position = %at, "binlog stream opened");
        let mut st = StreamState::starting_at(start);
        st.startup_skip = StartupSkip::for_start(&self.config, start);
        let idle_limit = self
            .config
            .heartbeat
            .map(|h| h * 3 + Duration::from_secs(5));
        loop {
            // Waiting in short steps tells when the reader has caught up (the stream went
            // quiet), for the lag it reports; dropping `next()` loses nothing, the stream
            // keeps its state.
            let mut idle = Duration::ZERO;
            let next = loop {
                match tokio::time::timeout(QUIET_AFTER, stream.next()).await {
                    Ok(n) => break n,
                    Err(_) => {
                        idle += QUIET_AFTER;
                        if let Some(limit) = idle_limit.filter(|l| idle >= *l) {
                            return Err((
                                Error::transient(
                                    "reading the binlog",
                                    format!("no event or heartbeat for {limit:?}"),
                                ),
                                st.offset(),
                            ));
                        }
                        if !st.caught_up && !st.in_txn {
                            st.caught_up = true;
                            match self.send(&mut st).await {
                                Ok(true) => {}
                                Ok(false) => return Ok(None),
                                Err(e) => return Err((e, st.offset())),
                            }
                        }
                    }
                }
            };
            tracing::trace!(event = ?next.as_ref().map(|e| e.as_ref().map(|e| (e.header().event_type_raw(), e.header().log_pos()))), "binlog event");
            let event = match next {
                Some(Ok(e)) => e,
                Some(Err(e)) => {
                    return Err((
                        binlog_error(&self.config, "reading the binlog", e),
                        st.offset(),
                    ));
                }
                None => return Ok(Some(st.offset())),
            };
            match self.handle(&mut st, &event).await {
                Ok(true) => {}
                Ok(false) => return Ok(None),
                Err(e) => return Err((e, st.offset())),
            }
        }
    }

    async fn send(&self, st: &mut StreamState) -> Result<bool> {
        let events = std::mem::take(&mut st.pending);
        let sent_rows = events
            .iter()
            .filter(|e| matches!(e, Event::DataChange(_)))
            .count() as u64;
        if st.in_txn {
            st.rows_sent += sent_rows;
        }
        let batch = Batch {
            events,
            position: Some(st.offset()),
            table_updates: std::mem::take(&mut st.updates),
            lag: st.lag(),
            ..Batch::default()
        };
        st.last_send = Instant::now();
        Ok(self.tx.send(Ok(batch)).await.is_ok())
    }

    /// Returns Ok(false) when the reader should stop.
    pub(crate) async fn handle(
        &mut self,
        st: &mut StreamState,
        event: &mysql_common::binlog::events::Event,
    ) -> Result<bool> {
        if event.header().event_type_raw() == TRANSACTION_PAYLOAD {
            // MySQL `binlog_transaction_compression`: one event holds the whole
            // transaction (BEGIN .. XID) after its GTID event; the driver decompresses it
            // and hands on the inner events next. They have no positions of their own:
            // the next transaction starts after the payload event, and this one's start
            // (its GTID event) is recorded already.
            let end = event.header().log_pos();
            if end > 0 {
                st.next_pos = u64::from(end);
            }
            st.in_payload = true;
            return Ok(true);
        }
        let nested = st.in_payload;
        let go_on = self.handle_one(st, event, nested).await?;
        if nested && !st.in_txn {
            // The payload's transaction committed: back to the outer stream.
            st.in_payload = false;
            return Ok(go_on && self.check_stop(st).await?);
        }
        Ok(go_on)
    }

    /// One event; `nested` for the events inside a transaction payload.
    async fn handle_one(
        &mut self,
        st: &mut StreamState,
        event: &mysql_common::binlog::events::Event,
        nested: bool,
    ) -> Result<bool> {
        let header = event.header();
        // Events inside a transaction payload carry no checksum of their own.
        if let Some(sum) = event.checksum().filter(|_| !nested) {
            if let Ok(Some(alg)) = event.footer().get_checksum_alg() {
                if u32::from_le_bytes(sum) != event.calc_checksum(alg) {
                    return Err(Error::transient(
                        "reading the binlog",
                        format!(
                            "checksum mismatch in the event ending at {}:{}",
                            st.file,
                            header.log_pos()
                        ),
                    ));
                }
            }
        }
        let kind = header.event_type_raw();
        if st.gtid_start.is_some()
            && header.log_pos() > 0
            && matches!(
                kind,
                MARIADB_GTID
                    | MYSQL_GTID
                    | MYSQL_GTID_TAGGED
                    | MYSQL_ANONYMOUS_GTID
                    | QUERY
                    | XID
                    | TABLE_MAP
            )
        {
            // The first event after the GTID: from here positions are real. This event
            // starts where the previous one ended, which the header does not say; its
            // own end minus its length does.
            st.gtid_start = None;
            st.next_pos =
                u64::from(header.log_pos()).saturating_sub(u64::from(header.event_size()));
        }
        if st.gtid_set.is_some()
            && !nested
            && matches!(kind, MYSQL_GTID | MYSQL_GTID_TAGGED | MYSQL_ANONYMOUS_GTID)
            && header.log_pos() >= header.event_size()
        {
            // The server skips the transactions already in the set; a transaction's
            // start is where its GTID event begins, whatever was skipped before it.
            st.next_pos =
                u64::from(header.log_pos()).saturating_sub(u64::from(header.event_size()));
        }
        let event_start = st.next_pos;
        if header.timestamp() > 0
            && matches!(
                kind,
                QUERY
                    | XID
                    | MARIADB_GTID
                    | MYSQL_GTID
                    | MYSQL_GTID_TAGGED
                    | WRITE_V1
                    | UPDATE_V1
                    | DELETE_V1
                    | WRITE_V2
                    | UPDATE_V2
                    | DELETE_V2
            )
        {
            st.last_event_ts = header.timestamp();
            st.caught_up = false;
        }
        if header.log_pos() > 0 && kind != ROTATE && !nested {
            st.next_pos = u64::from(header.log_pos());
        }
        match kind {
            ROTATE => {
                let rotate: RotateEvent<'_> =
                    event.read_event().map_err(|e| protocol("rotate", e))?;
                // The artificial ROTATE that opens a stream arrives before the format
                // description, so the parser leaves its CRC32 (always on: the connection asks
                // for checksums) at the end of the name.
                let raw = rotate.name_raw();
                let name = if st.seen_format_description || raw.len() <= 4 {
                    raw
                } else {
                    &raw[..raw.len() - 4]
                };
                st.file = String::from_utf8(name.to_vec())
                    .map_err(|_| protocol("rotate", "binlog file name is not UTF-8"))?;
                st.next_pos = rotate.position();
                if !st.in_txn {
                    st.txn_start = BinlogPosition::new(&st.file, st.next_pos);
                }
            }
            FORMAT_DESCRIPTION => st.seen_format_description = true,
            HEARTBEAT => {
                // The server sends heartbeats only when it has nothing else to send.
                st.caught_up = true;
                if !st.in_txn && st.last_send.elapsed() > Duration::from_secs(1) {
                    return self.send(st).await;
                }
            }
            MARIADB_GTID | MYSQL_GTID | MYSQL_ANONYMOUS_GTID | MYSQL_GTID_TAGGED => {
                Self::begin(st, event_start);
                if kind == MARIADB_GTID {
                    Self::open_startup_skip(st);
                }
                st.txn_gtid = gtid_text(kind, event.data(), header.server_id());
                st.txn_mysql_gtid = None;
                if st.gtid_set.is_some() && matches!(kind, MYSQL_GTID | MYSQL_GTID_TAGGED) {
                    // Tracked exactly: a transaction missing from the set would be sent
                    // again after a restart.
                    let gtid = st
                        .txn_gtid
                        .as_deref()
                        .ok_or_else(|| "unreadable".to_string())
                        .and_then(Gtid::parse)
                        .map_err(|m| protocol("GTID event", m))?;
                    st.txn_mysql_gtid = Some(gtid);
                }
                // A MariaDB GTID flagged standalone has no BEGIN/COMMIT (a DDL).
            }
            QUERY => {
                let q: QueryEvent<'_> = event.read_event().map_err(|e| protocol("query", e))?;
                let sql = q.query().trim().to_string();
                let upper = sql.get(..6).unwrap_or("").to_ascii_uppercase();
                if upper == "BEGIN" || sql.eq_ignore_ascii_case("BEGIN") {
                    if !st.in_txn {
                        Self::begin(st, event_start);
                    }
                    Self::open_startup_skip(st);
                } else if sql.eq_ignore_ascii_case("COMMIT") || sql.eq_ignore_ascii_case("ROLLBACK")
                {
                    return self.commit_then_copy(st).await;
                } else {
                    if !st.in_txn {
                        Self::begin(st, event_start);
                    }
                    self.on_ddl(st, &q.schema(), &sql, header.timestamp())
                        .await?;
                    let go_on = self.commit(st).await?;
                    if go_on && !st.to_copy.is_empty() {
                        self.copy_tables(st).await?;
                    }
                    return Ok(go_on);
                }
            }
            XID => return self.commit_then_copy(st).await,
            TABLE_MAP => {
                let tme: TableMapEvent<'_> =
                    event.read_event().map_err(|e| protocol("table map", e))?;
                let key = (
                    tme.database_name().to_string(),
                    tme.table_name().to_string(),
                );
                if self.tables.contains_key(&key) || self.is_signal(&key) {
                    let layouts = layout(&tme).map_err(|m| protocol("table map", m))?;
                    st.table_maps.insert(tme.table_id(), (key, layouts));
                } else {
                    st.table_maps.remove(&tme.table_id());
                }
            }
            WRITE_V1 | UPDATE_V1 | DELETE_V1 | WRITE_V2 | UPDATE_V2 | DELETE_V2 => {
                let skip = st.startup_skip.filter(|s| s.counting);
                match skip {
                    // Within the skipped events: every row.
                    Some(s) if s.events > 0 => st.skip_rows = u64::MAX,
                    Some(s) => st.skip_rows = st.skip_rows.max(st.rows_seen + s.rows),
                    None => {}
                }
                self.on_rows(st, event, kind, header.timestamp()).await?;
                if let Some(s) = skip {
                    // Skipped rows count as handed on; `rows` applies to one event only.
                    st.skip_rows = st.skip_rows.min(st.rows_seen);
                    if s.events == 0 {
                        st.startup_skip = None;
                    }
                }
                if st.pending.len() >= BATCH_EVENTS {
                    return self.send(st).await;
                }
            }
            MYSQL_PARTIAL_UPDATE => {
                return Err(Error::permanent(
                    "reading the binlog",
                    "partial JSON updates (binlog_row_value_options=PARTIAL_JSON) are not supported",
                )
                .with_hint("set binlog_row_value_options='' on the server"));
            }
            TRANSACTION_PAYLOAD => {
                return Err(protocol(
                    "transaction payload",
                    "a transaction payload inside a transaction payload",
                ));
            }
            MARIADB_COMPRESSED_FIRST..=MARIADB_COMPRESSED_LAST => {
                return Err(Error::permanent(
                    "reading the binlog",
                    "compressed binlog events (log_bin_compress=ON) are not supported",
                )
                .with_hint("set log_bin_compress=OFF on the server"));
            }
            _ => {}
        }
        if let Some(s) = st
            .startup_skip
            .as_mut()
            .filter(|s| s.counting && s.events > 0)
        {
            s.events -= 1;
        }
        if nested {
            return Ok(true);
        }
        self.check_stop(st).await
    }

    /// The first transaction opens: the startup skip starts counting with this event.
    fn open_startup_skip(st: &mut StreamState) {
        if let Some(s) = st.startup_skip.as_mut() {
            s.counting = true;
        }
    }

    /// Whether to go on: false once past `stop_at` (after handing on what is pending).
    async fn check_stop(&self, st: &mut StreamState) -> Result<bool> {
        if let Some(stop) = &self.stop_at {
            if !st.in_txn && BinlogPosition::new(&st.file, st.next_pos) >= *stop {
                self.send(st).await?;
                return Ok(false);
            }
        }
        Ok(true)
    }

    fn begin(st: &mut StreamState, start: u64) {
        st.in_txn = true;
        st.txn_start = BinlogPosition::new(&st.file, start);
        st.rows_seen = 0;
        st.rows_sent = 0;
    }

    async fn commit(&self, st: &mut StreamState) -> Result<bool> {
        st.in_txn = false;
        if st.startup_skip.is_some_and(|s| s.counting) {
            // Only the first transaction is skipped into.
            st.startup_skip = None;
        }
        st.skip_rows = 0;
        st.rows_seen = 0;
        st.rows_sent = 0;
        if let Some(g) = st.txn_gtid.take() {
            // MariaDB: the offset carries the whole GTID position (every domain's last
            // GTID), which a replica understands after a failover; MySQL: the last GTID
            // (its resumable form is the GTID set below).
            st.gtid = Some(match st.mariadb_pos.set(&g) {
                Ok(()) => st.mariadb_pos.to_string(),
                Err(_) => g,
            });
        }
        if let (Some(g), Some(set)) = (st.txn_mysql_gtid.take(), st.gtid_set.as_mut()) {
            set.add(&g);
            st.gtid_set_text = Some(set.to_string());
        }
        if !st.pending.is_empty()
            || !st.updates.is_empty()
            || st.last_send.elapsed() > Duration::from_millis(500)
        {
            return self.send(st).await;
        }
        Ok(true)
    }

    /// Commits, then reads the tables a signal in the transaction asked for (a rolled
    /// back transaction's signal rows never reach the binlog).
    async fn commit_then_copy(&mut self, st: &mut StreamState) -> Result<bool> {
        let go_on = self.commit(st).await?;
        if go_on && !st.to_copy.is_empty() {
            self.copy_tables(st).await?;
        }
        Ok(go_on)
    }

    fn is_signal(&self, key: &TableKey) -> bool {
        self.signal
            .as_ref()
            .is_some_and(|m| m.db == key.0 && m.table == key.1)
    }

    /// Rows inserted into the signalling table: each `execute-snapshot` queues the named
    /// captured tables for a new read once the transaction commits.
    fn on_signal_rows(
        &mut self,
        st: &mut StreamState,
        data: &[u8],
        layouts: &[ColumnLayout],
        present: Option<&[bool]>,
    ) -> Result<()> {
        let Some(meta) = self.signal.clone() else {
            return Ok(());
        };
        let column = |name: &str| {
            meta.columns
                .iter()
                .position(|c| c.name.eq_ignore_ascii_case(name))
        };
        let (Some(type_at), Some(data_at)) = (column("type"), column("data")) else {
            tracing::warn!(table = %meta.table_id(), "the signalling table has no type and data columns; its rows are ignored");
            return Ok(());
        };
        let infos = column_infos(&meta);
        let mut cursor = Cursor {
            bytes: data,
            pos: 0,
        };
        while !cursor.is_done() {
            let start = cursor.pos;
            let row = decode_row(
                &mut cursor,
                layouts,
                &infos,
                present.unwrap_or_default(),
                self.config.tinyint1_as_boolean,
            )
            .map_err(|m| crate::schema::mismatch(&meta.table_id(), &m))?;
            if cursor.pos == start {
                break;
            }
            match crate::signal::parse(&row, type_at, data_at) {
                Ok(crate::signal::Signal::Snapshot(names)) => {
                    for name in names {
                        let keys = match crate::signal::resolve(&name, self.tables.keys()) {
                            Ok(keys) => keys,
                            Err(m) => {
                                tracing::warn!(signal = %name, "execute-snapshot ignored: {m}");
                                continue;
                            }
                        };
                        if keys.is_empty() {
                            tracing::warn!(signal = %name, "execute-snapshot names no captured table; ignored");
                        }
                        for key in keys {
                            let Some(table) = self.tables.get(&key).cloned() else {
                                continue;
                            };
                            if st.to_copy.iter().any(|m| m.db == key.0 && m.table == key.1) {
                                continue;
                            }
                            tracing::info!(table = %table.table_id(), "execute-snapshot: the table is read again once this transaction commits");
                            self.snapshot_positions.remove(&key);
                            st.updates.push(TableUpdate::SnapshotPending(key.clone()));
                            st.updates.push(TableUpdate::Reread(key.clone()));
                            st.rereads.push(key);
                            st.to_copy.push(table);
                        }
                    }
                }
                Ok(crate::signal::Signal::Other(kind)) => {
                    tracing::info!(signal = %kind, "signal type not acted on by this source");
                }
                Err(m) => tracing::warn!(table = %meta.table_id(), "a signal row was ignored: {m}"),
            }
        }
        Ok(())
    }

    /// Whether `debezium.skipped.operations` leaves out this kind of rows event.
    fn skipped_operation(&self, kind: u8) -> bool {
        let skipped = self.config.passthrough.skipped;
        match kind {
            WRITE_V1 | WRITE_V2 => skipped.inserts,
            UPDATE_V1 | UPDATE_V2 => skipped.updates,
            DELETE_V1 | DELETE_V2 => skipped.deletes,
            _ => false,
        }
    }

    /// Whether an event's timestamp (seconds) is before `scan.startup.timestamp-millis`.
    fn too_old(&self, timestamp: u32) -> bool {
        self.skip_before_ms
            .is_some_and(|ms| i64::from(timestamp) * 1000 < ms)
    }

    /// Compares two keys of a table in the server's order; text under its collation is
    /// compared by the server (see `snapshot_key`).
    async fn cmp_keys(
        &mut self,
        cols: &KeyColumns,
        a: &[KeyPart],
        b: &[KeyPart],
    ) -> Result<std::cmp::Ordering> {
        use std::cmp::Ordering;
        for (i, (x, y)) in a.iter().zip(b).enumerate() {
            let ord = match cmp_local(x, y) {
                Some(o) => o,
                None => match (x, y) {
                    (KeyPart::Text(x), KeyPart::Text(y)) => {
                        self.server_strcmp(&cols.strcmp_sql(i), x, y).await?
                    }
                    _ => {
                        return Err(protocol(
                            "snapshot filter",
                            format!("cannot compare key values {x:?} and {y:?}"),
                        ));
                    }
                },
            };
            if ord != Ordering::Equal {
                return Ok(ord);
            }
        }
        Ok(a.len().cmp(&b.len()))
    }

    async fn server_strcmp(&mut self, sql: &str, a: &str, b: &str) -> Result<std::cmp::Ordering> {
        let context = "comparing text keys for a resumed snapshot";
        if self.compare_conn.is_none() {
            let conn = mysql_async::Conn::new(self.opts.clone())
                .await
                .map_err(|e| crate::error::from_mysql(context, e))?;
            self.compare_conn = Some(conn);
        }
        let Some(conn) = self.compare_conn.as_mut() else {
            return Err(protocol(context, "no connection"));
        };
        let r: Option<Option<i64>> = conn
            .exec_first(sql, (a, b))
            .await
            .map_err(|e| crate::error::from_mysql(context, e))?;
        Ok(r.flatten().unwrap_or(0).cmp(&0))
    }

    /// Whether a row with this key, changed by the current transaction, is already in
    /// the table's snapshot.
    async fn row_covered(
        &mut self,
        segments: &TableSegments,
        cols: &KeyColumns,
        row: &[cdc_api::Value],
        txn: &BinlogPosition,
    ) -> Result<bool> {
        let key = cols
            .key_of(row)
            .map_err(|m| protocol("snapshot filter", m))?;
        for segment in &segments.segments {
            let inside = match &segment.upto {
                None => true,
                Some(upto) => self.cmp_keys(cols, &key, upto).await? != std::cmp::Ordering::Greater,
            };
            if inside {
                // A range not read yet will be read at a later position: it holds the
                // change already.
                return Ok(segment.unread || segment.pos > *txn);
            }
        }
        // Beyond every bound read so far: not in any snapshot (cannot happen once the
        // table is done, whose last segment is unbounded).
        Ok(false)
    }

    async fn on_rows(
        &mut self,
        st: &mut StreamState,
        event: &mysql_common::binlog::events::Event,
        kind: u8,
        timestamp: u32,
    ) -> Result<()> {
        let Some(mysql_common::binlog::events::EventData::RowsEvent(data)) =
            event.read_data().map_err(|e| protocol("rows", e))?
        else {
            return Err(protocol("rows", "not a rows event"));
        };
        if self.too_old(timestamp) {
            return Ok(());
        }
        let (table_id, present_before, present_after, data) = rows_parts(&data);
        let Some((key, layouts)) = st.table_maps.get(&table_id) else {
            return Ok(());
        };
        let (key, layouts) = (key.clone(), layouts.clone());
        if self.is_signal(&key) {
            // Only inserts request anything (as in Debezium); the rows are not data.
            if matches!(kind, WRITE_V1 | WRITE_V2) {
                self.on_signal_rows(st, &data, &layouts, present_after.as_deref())?;
            }
            return Ok(());
        }
        if self.skipped_operation(kind) {
            return Ok(());
        }
        // A session may set binlog_row_image = MINIMAL / NOBLOB although the server's
        // default is FULL (checked at start): rows with missing columns cannot be applied
        // exactly, so stop rather than write NULLs over real values.
        let full = |present: &Option<Vec<bool>>| {
            present
                .as_ref()
                .is_none_or(|bits| bits.iter().take(layouts.len()).all(|b| *b))
        };
        if !full(&present_before) || !full(&present_after) {
            return Err(Error::permanent(
                format!(
                    "reading the binlog at {}:{} (table {}.{})",
                    st.txn_start.file, st.txn_start.pos, key.0, key.1
                ),
                "a row image without all columns: this change was logged with binlog_row_image MINIMAL or NOBLOB (set for the session that made it)",
            )
            .with_hint("keep binlog_row_image = FULL for every session (do not SET SESSION binlog_row_image), then start over from a new snapshot (cdc run --reset): changes with partial images cannot be replayed exactly"));
        }
        // Per table, per transaction: everything covered, nothing, or decided per row.
        let filter = match self.snapshot_positions.get(&key) {
            None => None,
            Some(s) => match s.uniform(&st.txn_start) {
                Some(true) => return Ok(()),
                Some(false) => None,
                None => Some(s.clone()),
            },
        };
        let Some(meta) = self.tables.get(&key) else {
            return Ok(());
        };
        let key_cols = match &filter {
            None => None,
            Some(_) => Some(
                KeyColumns::of(meta, self.config.chunk_key_for(&key.0, &key.1))
                    .map_err(|m| protocol("snapshot filter", m))?,
            ),
        };
        let infos = st
            .infos
            .entry(key.clone())
            .or_insert_with(|| Arc::new(column_infos(meta)))
            .clone();
        let tid = TableId::new(&key.0, &key.1);
        let tinyint = self.config.tinyint1_as_boolean;
        let mut cursor = Cursor {
            bytes: &data,
            pos: 0,
        };
        let is_update = matches!(kind, UPDATE_V1 | UPDATE_V2);
        let is_delete = matches!(kind, DELETE_V1 | DELETE_V2);
        let mut rows_in_event = 0u64;
        while !cursor.is_done() {
            rows_in_event += 1;
            let start = cursor.pos;
            // A write event's only image is the after image.
            let first_present = if is_update || is_delete {
                &present_before
            } else {
                &present_after
            };
            let first = decode_row(
                &mut cursor,
                &layouts,
                &infos,
                first_present.as_deref().unwrap_or_default(),
                tinyint,
            )
            .map_err(|m| crate::schema::mismatch(&tid, &m))?;
            if cursor.pos == start {
                return Err(crate::schema::mismatch(&tid, "a row image without columns"));
            }
            let after = if is_update {
                Some(
                    decode_row(
                        &mut cursor,
                        &layouts,
                        &infos,
                        present_after.as_deref().unwrap_or_default(),
                        tinyint,
                    )
                    .map_err(|m| crate::schema::mismatch(&tid, &m))?,
                )
            } else {
                None
            };
            let change = match (&filter, &key_cols) {
                (Some(segments), Some(cols)) => {
                    let txn = st.txn_start.clone();
                    let first_covered = self.row_covered(segments, cols, &first, &txn).await?;
                    match after {
                        Some(after) => {
                            let after_covered =
                                self.row_covered(segments, cols, &after, &txn).await?;
                            match (first_covered, after_covered) {
                                (true, true) => None,
                                (false, false) => {
                                    Some(DataChangeEvent::update(tid.clone(), first, after))
                                }
                                // The after row is in a later segment's snapshot.
                                (false, true) => Some(DataChangeEvent::delete(tid.clone(), first)),
                                // The before row was never emitted.
                                (true, false) => Some(DataChangeEvent::insert(tid.clone(), after)),
                            }
                        }
                        None if first_covered => None,
                        None if is_delete => Some(DataChangeEvent::delete(tid.clone(), first)),
                        None => Some(DataChangeEvent::insert(tid.clone(), first)),
                    }
                }
                _ => Some(match after {
                    Some(after) => DataChangeEvent::update(tid.clone(), first, after),
                    None if is_delete => DataChangeEvent::delete(tid.clone(), first),
                    None => DataChangeEvent::insert(tid.clone(), first),
                }),
            };
            let Some(mut change) = change else { continue };
            st.rows_seen += 1;
            if st.rows_seen <= st.skip_rows {
                continue;
            }
            if self.config.op_ts {
                change = change.with_meta("op_ts", (u64::from(timestamp) * 1000).to_string());
            }
            if self.config.compact_json {
                compact_binary_json(&mut change, &layouts);
            }
            st.pending.push(Event::DataChange(change));
        }
        let limit = &self.config.binlog_limit;
        if limit.is_set() {
            // `scan.binlog.rate-limit`: reading faster than the limit happens only while
            // catching up; then each event's rows wait their turn.
            limit.pace(rows_in_event, data.len() as u64).await;
        }
        Ok(())
    }

    async fn load_created(&self, key: &TableKey) -> Result<Option<TableMeta>> {
        let mut conn = mysql_async::Conn::new(self.opts.clone())
            .await
            .map_err(|e| crate::error::from_mysql("reading a created table", e))?;
        let meta = crate::schema::load_table(&mut conn, &key.0, &key.1).await;
        let _ = conn.disconnect().await;
        meta
    }

    /// Reads the rows of tables that entered the capture mid-stream, as a snapshot at the
    /// server's current position: binlog changes to them before that position are then
    /// skipped (the snapshot holds them), later ones applied; the offset keeps them
    /// pending until read, so a crash reads them again.
    async fn copy_tables(&mut self, st: &mut StreamState) -> Result<()> {
        for meta in std::mem::take(&mut st.to_copy) {
            let key = (meta.db.clone(), meta.table.clone());
            let read = crate::snapshot::TableRead {
                prior: TableSegments {
                    db: meta.db.clone(),
                    table: meta.table.clone(),
                    segments: Vec::new(),
                },
                meta,
            };
            let pool = mysql_async::Pool::new(self.opts.clone());
            let copied = crate::snapshot::snapshot_table(
                pool.clone(),
                read,
                self.config.clone(),
                self.tx.clone(),
                Arc::new(tokio::sync::Semaphore::new(crate::snapshot::readers(
                    &self.config,
                ))),
            )
            .await;
            let _ = pool.disconnect().await;
            match copied {
                Ok(segments) => {
                    if st.rereads.contains(&key) {
                        // Replayed over, not filtered (see `rereads` in the offset).
                        st.rereads.retain(|k| *k != key);
                        tracing::info!(table = %format!("{}.{}", key.0, key.1), "the table was read again; the binlog from the signal on is applied over it");
                    } else {
                        tracing::info!(table = %format!("{}.{}", key.0, key.1), "rows of a table that entered the capture were read");
                        self.snapshot_positions.insert(key, segments);
                    }
                }
                // Reading history: the table may be gone (or changed) by now; its later
                // DDL follows in the binlog.
                Err(e)
                    if e.to_string().contains("server error 1146")
                        || e.to_string().contains("server error 1054") =>
                {
                    tracing::warn!(table = %format!("{}.{}", key.0, key.1), error = %e, "the table that entered the capture no longer matches the server; its earlier rows are not copied");
                    let mut done = Batch::rows(Vec::new());
                    done.snapshot_done.push(key);
                    if self.tx.send(Ok(done)).await.is_err() {
                        return Ok(());
                    }
                }
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    async fn on_ddl(
        &mut self,
        st: &mut StreamState,
        db: &str,
        sql: &str,
        timestamp: u32,
    ) -> Result<()> {
        if self.too_old(timestamp) {
            // The tracked schemas were read from the server at start, after this DDL.
            return Ok(());
        }
        if let Some(change) = ddl::database_charset(sql, db) {
            self.database_charsets.apply(change);
        }
        let changes = if self.config.parse_online_schema_changes {
            crate::online_schema::apply(
                sql,
                db,
                &self.tables,
                &mut self.online_schema,
                &self.config,
            )
            .map(|(changes, shadows_changed)| {
                // The offset learns the shadows with this statement's batch.
                if shadows_changed {
                    st.updates
                        .push(TableUpdate::OnlineSchema(self.online_schema.clone()));
                }
                changes
            })
        } else {
            ddl::apply(sql, db, &self.tables, &self.config)
        };
        let changes = changes.map_err(|m| {
            Error::permanent(
                format!("schema change at {}:{}", st.txn_start.file, st.txn_start.pos),
                format!("{m}: {sql}"),
            )
            .with_hint("report this statement; to continue, exclude the table from `tables` or restart from a new snapshot")
        })?;
        for change in changes {
            match change {
                TableChange::Upsert {
                    mut meta,
                    events,
                    copy_rows,
                } => {
                    if ddl::needs_charset(&meta) {
                        let charset = self.database_charsets.of(&meta.db).to_string();
                        ddl::inherit_charset(&mut meta, &charset);
                    }
                    meta.check_charsets()?;
                    let key = (meta.db.clone(), meta.table.clone());
                    st.infos.remove(&key);
                    // An ALTER keeps the snapshot filter: changes before the table's
                    // snapshot position are in the snapshot whatever the DDL between.
                    self.tables.insert(key.clone(), meta.clone());
                    st.updates.push(TableUpdate::Upsert(meta.clone()));
                    if self.config.schema_change_enabled {
                        st.pending
                            .extend(events.into_iter().map(Event::SchemaChange));
                    }
                    if copy_rows {
                        self.snapshot_positions.remove(&key);
                        st.updates.push(TableUpdate::SnapshotPending(key));
                        st.to_copy.push(meta);
                    }
                }
                TableChange::Remove { key, events } => {
                    st.infos.remove(&key);
                    self.tables.remove(&key);
                    self.snapshot_positions.remove(&key);
                    st.updates.push(TableUpdate::Remove(key));
                    if self.config.schema_change_enabled {
                        st.pending
                            .extend(events.into_iter().map(Event::SchemaChange));
                    }
                }
                TableChange::Created(key) => {
                    if !self.config.binlog_newly_added_tables {
                        tracing::info!(table = %format!("{}.{}", key.0, key.1), "new table not captured (scan.binlog.newly-added-table.enabled is false)");
                        continue;
                    }
                    let meta = self.load_created(&key).await?;
                    if let Some(meta) = meta {
                        st.infos.remove(&key);
                        self.snapshot_positions.remove(&key);
                        self.tables.insert(key.clone(), meta.clone());
                        st.updates.push(TableUpdate::Upsert(meta.clone()));
                        st.updates.push(TableUpdate::SnapshotPending(key));
                        st.to_copy.push(meta.clone());
                        st.pending.push(Event::SchemaChange(
                            cdc_api::SchemaChangeEvent::CreateTable {
                                table_id: meta.table_id(),
                                schema: meta.to_schema(
                                    self.config.tinyint1_as_boolean,
                                    self.config.include_comments,
                                ),
                            },
                        ));
                    }
                }
                TableChange::Events(events) => {
                    if self.config.schema_change_enabled {
                        st.pending
                            .extend(events.into_iter().map(Event::SchemaChange));
                    }
                }
            }
        }
        Ok(())
    }
}

type RowsParts = (u64, Option<Vec<bool>>, Option<Vec<bool>>, Vec<u8>);

/// `use.legacy.json.format: true`: MySQL binary JSON columns in Flink's legacy compact
/// text. MariaDB's JSON is text as written, which Flink leaves alone too.
fn compact_binary_json(change: &mut DataChangeEvent, layouts: &[ColumnLayout]) {
    for row in [change.before.as_mut(), change.after.as_mut()]
        .into_iter()
        .flatten()
    {
        for (value, layout) in row.iter_mut().zip(layouts) {
            if let (cdc_api::Value::Json(text), true) = (&mut *value, layout.is_json()) {
                *text = crate::binlog::rows::compact_json(text);
            }
        }
    }
}

fn rows_parts(e: &mysql_common::binlog::events::RowsEventData<'_>) -> RowsParts {
    (
        e.table_id(),
        e.columns_before_image()
            .map(|s| s.iter().map(|b| *b).collect()),
        e.columns_after_image()
            .map(|s| s.iter().map(|b| *b).collect()),
        e.rows_data().to_vec(),
    )
}

pub(crate) fn column_infos(meta: &TableMeta) -> Vec<ColumnInfo> {
    meta.columns
        .iter()
        .map(|c| ColumnInfo {
            mysql_type: c.mysql_type(),
            charset: c.charset(),
        })
        .collect()
}

/// The events inside a MySQL transaction payload event (zstd or uncompressed), as the
/// driver hands them on after the payload event (the file tests do it with this).
///
/// Every inner event's size is checked against what is left of the declared payload
/// before it is read, so a corrupt size is an error, not a huge allocation or a panic in
/// the parser (which assumes complete events).
#[cfg(test)]
pub(crate) fn payload_events(
    event: &mysql_common::binlog::events::Event,
) -> Result<Vec<mysql_common::binlog::events::Event>, String> {
    use mysql_common::binlog::events::{Event, TransactionPayloadEvent};
    use std::io::Read as _;
    let payload: TransactionPayloadEvent<'_> = event.read_event().map_err(|e| e.to_string())?;
    let declared = payload.uncompressed_size();
    let mut reader = payload.decompressed().map_err(|e| e.to_string())?;
    // Inner events carry no checksum (WL#3549): parse them with checksums off.
    let mut footer = event.fde().footer();
    footer.set_checksum_enabled(false);
    let fde = event.fde().clone().with_footer(footer);
    let mut out = Vec::new();
    let mut read: u64 = 0;
    loop {
        let mut header = [0u8; HEADER_LEN];
        let got = read_full(&mut reader, &mut header)?;
        if got == 0 {
            break;
        }
        if got < HEADER_LEN {
            return Err(format!("payload ends inside an event header ({got} bytes)"));
        }
        let size = u64::from(u32::from_le_bytes([
            header[9], header[10], header[11], header[12],
        ]));
        read += size;
        if size < HEADER_LEN as u64 || read > declared {
            return Err(format!(
                "an inner event of {size} bytes does not fit the payload's declared {declared} bytes"
            ));
        }
        let mut bytes = header.to_vec();
        bytes.resize(usize::try_from(size).map_err(|e| e.to_string())?, 0);
        reader
            .read_exact(&mut bytes[HEADER_LEN..])
            .map_err(|e| format!("payload truncated: {e}"))?;
        out.push(Event::read(&fde, &bytes[..]).map_err(|e| e.to_string())?);
    }
    Ok(out)
}

#[cfg(test)]
/// Reads until `buf` is full or the input ends; returns how many bytes were read.
fn read_full(reader: &mut impl std::io::Read, buf: &mut [u8]) -> Result<usize, String> {
    let mut n = 0;
    while n < buf.len() {
        match reader.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(format!("cannot decompress the payload: {e}")),
        }
    }
    Ok(n)
}

fn uuid_text(sid: &[u8]) -> Option<String> {
    let hex = sid.iter().fold(String::with_capacity(32), |mut acc, b| {
        use std::fmt::Write as _;
        let _ = write!(acc, "{b:02x}");
        acc
    });
    Some(format!(
        "{}-{}-{}-{}-{}",
        hex.get(..8)?,
        hex.get(8..12)?,
        hex.get(12..16)?,
        hex.get(16..20)?,
        hex.get(20..)?
    ))
}

/// A variable-length unsigned integer of MySQL's serialization library: the number of
/// trailing one bits of the first byte says how many more bytes follow.
fn varlen_uint(buf: &mut &[u8]) -> Option<u64> {
    let first = *buf.first()?;
    let ones = first.trailing_ones() as usize;
    if ones == 8 {
        let v = u64::from_le_bytes(buf.get(1..9)?.try_into().ok()?);
        *buf = buf.get(9..)?;
        return Some(v);
    }
    let n = ones + 1;
    let mut raw = [0u8; 8];
    raw.get_mut(..n)?.copy_from_slice(buf.get(..n)?);
    *buf = buf.get(n..)?;
    Some(u64::from_le_bytes(raw) >> n)
}

/// `uuid:tag:gno` from a MySQL 8.4+ tagged GTID event (serialization format version 2:
/// payload size, last non-ignorable field id, then `field id, value` pairs).
fn tagged_gtid_text(data: &[u8]) -> Option<String> {
    let (&version, mut buf) = data.split_first()?;
    if version != 2 {
        return None;
    }
    let size = usize::try_from(varlen_uint(&mut buf)?).ok()?;
    let _last_non_ignorable = varlen_uint(&mut buf)?;
    // The size counts the whole message, the version byte and envelope included.
    let envelope = data.len() - buf.len();
    let mut fields = buf.get(..size.checked_sub(envelope)?)?;
    let (mut sid, mut gno, mut tag) = (None, None, None);
    while !fields.is_empty() {
        match varlen_uint(&mut fields)? {
            1 => {
                let mut bytes = [0u8; 16];
                for b in &mut bytes {
                    *b = u8::try_from(varlen_uint(&mut fields)?).ok()?;
                }
                sid = Some(bytes);
            }
            // Signed (zig-zag); a GNO is never negative.
            2 => gno = Some(varlen_uint(&mut fields)? >> 1),
            3 => {
                let len = usize::try_from(varlen_uint(&mut fields)?).ok()?;
                tag = Some(std::str::from_utf8(fields.get(..len)?).ok()?.to_string());
                fields = fields.get(len..)?;
            }
            // Every other field of version 2 is one integer.
            _ => {
                varlen_uint(&mut fields)?;
            }
        }
    }
    let uuid = uuid_text(&sid?)?;
    Some(match tag.filter(|t| !t.is_empty()) {
        Some(t) => format!("{uuid}:{t}:{}", gno?),
        None => format!("{uuid}:{}", gno?),
    })
}

/// `domain-server-sequence` for MariaDB, `uuid:gno` (or `uuid:tag:gno`) for MySQL.
fn gtid_text(kind: u8, data: &[u8], server_id: u32) -> Option<String> {
    if kind == MYSQL_GTID_TAGGED {
        return tagged_gtid_text(data);
    }
    if kind == MARIADB_GTID {
        let seq = u64::from_le_bytes(data.get(..8)?.try_into().ok()?);
        let domain = u32::from_le_bytes(data.get(8..12)?.try_into().ok()?);
        return Some(format!("{domain}-{server_id}-{seq}"));
    }
    if kind == MYSQL_GTID {
        let sid = data.get(1..17)?;
        let gno = i64::from_le_bytes(data.get(17..25)?.try_into().ok()?);
        return Some(format!("{}:{gno}", uuid_text(sid)?));
    }
    None
}
