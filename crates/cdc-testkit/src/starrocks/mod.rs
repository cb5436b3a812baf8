//! An in-process StarRocks FE + BE for testing StarRocks clients.
//!
//! [`StarRocksEmulator`] runs three servers on free `127.0.0.1` ports in the current tokio
//! runtime, following StarRocks 3.x:
//!
//! * **FE HTTP** ([`fe_http_address`](StarRocksEmulator::fe_http_address), a sink's
//!   `load-url`): every call is authenticated first, and a bad user or password gets a
//!   real **HTTP 401** with `WWW-Authenticate: Basic realm=""`.
//!   `PUT /api/{db}/{table}/_stream_load` needs an `Expect` header, then answers **307**
//!   with `Location: http://127.0.0.1:{be}/api/{db}/{table}/_stream_load?...`, which
//!   carries **no credentials**: the client must send `Authorization` again.
//!   `/api/transaction/{begin,load,prepare}` (POST or PUT, headers `label`, `db`, `table`)
//!   are redirected to the BE the same way; `commit` and `rollback` are answered by the FE.
//!   `GET /api/{db}/get_load_state?label=l` answers
//!   `{"status":"OK","msg":"Success","state":"PREPARED","reason":""}` (`PREPARE`,
//!   `PREPARED`, `VISIBLE`, `ABORTED` or `UNKNOWN`).
//! * **BE** ([`be_address`](StarRocksEmulator::be_address)): the same paths, always HTTP 200
//!   with the outcome in the JSON `Status`. A request without `Authorization` (a client that
//!   followed the 307 and dropped it) gets `Status: Fail` / `no valid Basic authorization`.
//!   Stream-load answers list `TxnId, Label, Status (Success | Fail | Label Already Exists
//!   with ExistingJobStatus), Message, NumberTotalRows, ...` and `ErrorURL` for rejected rows
//!   (`GET /api/_load_error_log?file=...`). Transaction answers use StarRocks' status names:
//!   `OK`, `LABEL_ALREADY_EXISTS` (with `ExistingJobStatus` `RUNNING` / `PREPARED` /
//!   `FINISHED`), `TXN_NOT_EXISTS`, `TXN_IN_PROCESSING`, `FAILED`, `PUBLISH_TIMEOUT`;
//!   committing a committed transaction and rolling back an aborted one answer `OK`.
//!   Transactions honour `timeout` and `idle_transaction_timeout` (seconds); every `load`
//!   of one transaction must use the same format headers; `prepare` without data fails.
//!   Labels are unique per database; labels of aborted transactions may be used again.
//! * **FE MySQL port** ([`fe_mysql_address`](StarRocksEmulator::fe_mysql_address), a sink's
//!   `jdbc-url`): a minimal MySQL wire-protocol server (`mysql_native_password`, text
//!   queries) running the SQL of [`execute`](StarRocksEmulator::execute).
//!
//! Loads: `format` json (`strip_outer_array`, else one object per line; bodies over
//! [`StarRocksEmulatorOptions::json_max_bytes`] need `ignore_json_size: true`) or csv
//! (`column_separator`, `row_delimiter`); `columns` (names, and `__op='delete'` /
//! `__op='upsert'`); a per-row `"__op"` (0 upsert, 1 delete) on PRIMARY KEY tables;
//! `partial_update: true` (only the given columns change); `max_filter_ratio`;
//! `strict_mode`. Values are checked strictly (VARCHAR / CHAR length in UTF-8 bytes,
//! DECIMAL precision, integer ranges, dates, NOT NULL); a rejected row fails the load with
//! `too many filtered rows` unless the ratio allows it.
//!
//! SQL: `CREATE/DROP DATABASE`, `CREATE TABLE` with StarRocks' rules (PRIMARY KEY columns
//! first and NOT NULL, no DECIMAL / FLOAT / DOUBLE / JSON keys, VARCHAR up to 1048576
//! bytes, CHAR up to 255, DECIMAL precision up to 38, `DATETIME` without a scale,
//! `DISTRIBUTED BY HASH(..) [BUCKETS n]`, `PROPERTIES`, `replication_num` at most 1),
//! `ALTER TABLE` ADD / DROP / `RENAME COLUMN a TO b` / MODIFY COLUMN as **asynchronous
//! jobs**: the statement returns at once, the job is PENDING, WAITING_TXN while a
//! transaction on the table that began before it is not finished (a prepared one that
//! nobody commits holds it, as in StarRocks), then RUNNING, and FINISHED after
//! [`StarRocksEmulatorOptions::alter_job_duration`] of its own time, when the new schema takes
//! effect (loads meanwhile see the old one); a second ALTER of the table while a job runs is
//! refused (`... is not NORMAL. Do not allow doing ALTER ops`). Jobs are listed by
//! `SHOW ALTER TABLE COLUMN FROM db [WHERE TableName = "t"] [ORDER BY CreateTime [DESC]]
//! [LIMIT n]`, with a `CreateTime` of one-second resolution and ties in job-id order.
//! Also `TRUNCATE TABLE`, `DROP TABLE`, `SELECT`, `DESC`, `SHOW COLUMNS`,
//! `SHOW CREATE TABLE`, `SHOW DATABASES`, `SHOW TABLES`, `USE`.
//!
//! Known differences from a real StarRocks: UNIQUE / AGGREGATE tables, column expressions,
//! `jsonpaths`, `where`, compression and merge commit are refused or ignored; rows of a
//! prepared transaction are applied by column name at commit (a RENAME job that finishes
//! in between renames them too, a dropped column loses them); FLOAT / DOUBLE print in Rust's notation.
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! let sr = cdc_testkit::StarRocksEmulator::start().await?;
//! sr.execute("CREATE DATABASE shop")?;
//! sr.execute("CREATE TABLE shop.t (id INT NOT NULL, v VARCHAR(10)) PRIMARY KEY(id) \
//!             DISTRIBUTED BY HASH(id) PROPERTIES (\"replication_num\" = \"1\")")?;
//! println!("load-url: {}, jdbc-url: jdbc:mysql://{}", sr.fe_http_address(), sr.fe_mysql_address());
//! # Ok(()) }
//! ```

mod catalog;
mod model;
mod mysql;
mod server;
mod sql;
mod state;

use std::sync::atomic::{AtomicU16, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

pub use model::{
    StarRocksEmulatorError, StarRocksEmulatorOptions, StarRocksFault, StarRocksLoadRecord,
    StarRocksTxnRecord, StarRocksTxnState,
};

use crate::doris::http::{Handler, Server};
use crate::doris::{ColumnInfo, QueryResult};
use mysql::MySqlServer;
use server::Shared;
use state::State;

/// An in-process StarRocks FE (HTTP and MySQL ports) and BE; see the
/// [module documentation](self). The servers stop when this is dropped.
#[derive(Debug)]
pub struct StarRocksEmulator {
    state: Arc<Mutex<State>>,
    fe: Arc<Server>,
    be: Arc<Server>,
    mysql: MySqlServer,
    tls: Option<crate::TestTls>,
}

impl StarRocksEmulator {
    /// Starts an emulator with the default options (user `root` without password).
    pub async fn start() -> Result<Self, StarRocksEmulatorError> {
        Self::start_with(StarRocksEmulatorOptions::default()).await
    }

    /// Starts an emulator with these options, inside the current tokio runtime.
    #[allow(clippy::unused_async)] // async so that it is called inside the runtime
    pub async fn start_with(
        options: StarRocksEmulatorOptions,
    ) -> Result<Self, StarRocksEmulatorError> {
        if tokio::runtime::Handle::try_current().is_err() {
            return Err(StarRocksEmulatorError::NoRuntime);
        }
        crate::install_crypto_provider();
        let tls = if options.tls {
            Some(crate::TestTls::generate().map_err(StarRocksEmulatorError::Tls)?)
        } else {
            None
        };
        let server_tls = tls.as_ref().map(|t| t.server_config.clone());
        let state = Arc::new(Mutex::new(State::new(options)));
        let shared = Arc::new(Shared {
            state: state.clone(),
            be_port: AtomicU16::new(0),
            scheme: if tls.is_some() { "https" } else { "http" },
        });
        let be_handler: Handler = {
            let shared = shared.clone();
            Arc::new(move |req, conn| Box::pin(shared.clone().be(req, conn)))
        };
        let be = Server::start(0, be_handler, server_tls.clone())
            .map_err(|source| StarRocksEmulatorError::Bind { what: "BE", source })?;
        shared.be_port.store(be.port(), Ordering::Relaxed);
        let fe_handler: Handler = {
            let shared = shared.clone();
            Arc::new(move |req, conn| Box::pin(shared.clone().fe(req, conn)))
        };
        let fe = Server::start(0, fe_handler, server_tls).map_err(|source| {
            StarRocksEmulatorError::Bind {
                what: "FE HTTP",
                source,
            }
        })?;
        let mysql =
            MySqlServer::start(state.clone()).map_err(|source| StarRocksEmulatorError::Bind {
                what: "FE MySQL",
                source,
            })?;
        Ok(Self {
            state,
            fe,
            be,
            mysql,
            tls,
        })
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        let mut st = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        st.tick();
        st
    }

    /// The FE's HTTP `127.0.0.1:PORT` (a sink's `load-url`); `https://127.0.0.1:PORT` with
    /// [`StarRocksEmulatorOptions::tls`].
    pub fn fe_http_address(&self) -> String {
        self.http_address(self.fe.port())
    }

    fn http_address(&self, port: u16) -> String {
        if self.tls.is_some() {
            format!("https://127.0.0.1:{port}")
        } else {
            format!("127.0.0.1:{port}")
        }
    }

    /// The CA that signed the HTTP servers' certificate, with
    /// [`StarRocksEmulatorOptions::tls`].
    pub fn tls(&self) -> Option<&crate::TestTls> {
        self.tls.as_ref()
    }

    /// The FE's MySQL-protocol `127.0.0.1:PORT` (a sink's `jdbc-url` is
    /// `jdbc:mysql://` followed by it).
    pub fn fe_mysql_address(&self) -> String {
        format!("127.0.0.1:{}", self.mysql.port())
    }

    /// The BE's HTTP `127.0.0.1:PORT`.
    pub fn be_address(&self) -> String {
        self.http_address(self.be.port())
    }

    /// Runs one SQL statement as the MySQL port would (no current database). Errors are
    /// the server's message.
    pub fn execute(&self, sql: &str) -> Result<QueryResult, String> {
        sql::execute(&mut self.lock(), &mut None, sql)
    }

    /// Visible rows of a table, each value as `SELECT` prints it, sorted; `None` if there
    /// is no such table.
    pub fn table_rows(&self, db: &str, table: &str) -> Option<Vec<Vec<Option<String>>>> {
        Some(self.lock().table(db, table)?.sorted_rows())
    }

    /// The columns of a table (its current schema: a running ALTER job's change is not
    /// in it yet); `None` if there is no such table.
    pub fn table_columns(&self, db: &str, table: &str) -> Option<Vec<ColumnInfo>> {
        let st = self.lock();
        let t = st.table(db, table)?;
        Some(
            t.columns
                .iter()
                .enumerate()
                .map(|(i, c)| c.info(i < t.key_count))
                .collect(),
        )
    }

    /// Injects a fault. Faults other than [`StarRocksFault::BeDown`] are queued, each
    /// applying to the next `count` requests it matches; `BeDown` applies at once.
    pub fn inject(&self, fault: StarRocksFault) {
        match fault {
            StarRocksFault::BeDown(true) => self.be.down(),
            StarRocksFault::BeDown(false) => {
                if let Err(e) = self.be.up() {
                    tracing::warn!("the StarRocks emulator's BE could not listen again: {e}");
                }
            }
            other => self.lock().faults.push_back(other),
        }
    }

    /// Every data request (stream load or transaction `load`) the BE answered, in order.
    pub fn load_log(&self) -> Vec<StarRocksLoadRecord> {
        self.lock().load_log.clone()
    }

    /// How many stream-load and transaction requests reached the FE (answered with a
    /// redirect, an FE error, or, for commit / rollback, the outcome). Lets a test wait
    /// until a client is retrying while the BE is down.
    pub fn fe_load_requests(&self) -> u64 {
        self.lock().fe_requests
    }

    /// How many of those carried a body: data that crossed the network to the FE only to
    /// be sent again to a BE.
    pub fn fe_body_requests(&self) -> u64 {
        self.lock().fe_body_requests
    }

    /// Every transaction, by id.
    pub fn transactions(&self) -> Vec<StarRocksTxnRecord> {
        self.lock().txn_records()
    }

    /// Transactions neither committed nor aborted: begun (`PREPARE`) or `PREPARED`. A
    /// client that finished cleanly, or recovered after a crash, leaves none.
    pub fn open_transactions(&self) -> Vec<StarRocksTxnRecord> {
        self.transactions()
            .into_iter()
            .filter(|t| {
                matches!(
                    t.state,
                    StarRocksTxnState::Prepare | StarRocksTxnState::Prepared
                )
            })
            .collect()
    }

    /// How many injected faults (other than [`StarRocksFault::BeDown`]) have not yet been
    /// used up, counting each remaining request: lets a test wait until its faults hit.
    pub fn pending_faults(&self) -> u32 {
        self.lock()
            .faults
            .iter()
            .map(|f| match f {
                StarRocksFault::ServerError { count, .. }
                | StarRocksFault::ResetConnection { count }
                | StarRocksFault::Slow { count, .. }
                | StarRocksFault::PublishTimeout { count } => *count,
                StarRocksFault::BeDown(_) => 0,
            })
            .sum()
    }
}

impl Drop for StarRocksEmulator {
    fn drop(&mut self) {
        self.fe.down();
        self.be.down();
        self.mysql.stop();
    }
}
