//! An in-process Doris FE + BE for testing Stream Load clients.
//!
//! [`DorisEmulator`] runs two HTTP servers on free `127.0.0.1` ports in the current tokio
//! runtime and follows the documented Doris 2.x protocol strictly:
//!
//! * **FE** (`fe_address()`, what a sink's `fenodes` takes):
//!   `PUT /api/{db}/{table}/_stream_load` checks `group_commit`, Basic auth (a bad user
//!   gets HTTP 200 `{"msg":"Unauthorized","code":401,...}`), the presence of an `Expect`
//!   header (`{"status":"FAILED","msg":"There is no 100-continue header"}`), the database
//!   and table, then answers **307** with
//!   `Location: http://user:pass@127.0.0.1:{be}/api/{db}/{table}/_stream_load?` without
//!   reading the body. `PUT /api/{db}[/{table}]/_stream_load_2pc` validates and redirects
//!   the same way. `POST /api/query/default_cluster/{db}` with `{"stmt": "..."}` runs SQL
//!   (see below) and answers in the FE's `{"msg","code","data","count"}` shape.
//!   `GET /api/backends[?is_alive=true]` (Basic auth) lists the BEs as
//!   `{"msg":"success","code":0,"data":{"backends":[{"ip":"127.0.0.1","http_port":P,"is_alive":true}]},"count":0}`
//!   (how clients discover BEs to load into directly); `GET
//!   /api/enable_light_schema_change/{db}/{table}` and `GET /` answer as Doris does.
//! * **BEs** (`be_address()` / `be_addresses()`, for `benodes`; one by default, more with
//!   [`DorisEmulatorOptions::backends`], all sharing the data): the same stream-load and
//!   2PC paths, always HTTP 200 with the load JSON (fields in Doris's order,
//!   pretty-printed), `GET /api/_load_error_log?file=...` serving the rejected rows with
//!   their reasons, and `GET /` (200, a liveness probe). The FE redirects round robin to
//!   the BEs that are up.
//!
//! Loads: labels are unique per database (`Label Already Exists` with `ExistingJobStatus`
//! `RUNNING` / `PRECOMMITTED` / `FINISHED` and `TxnId: -1`; labels of aborted loads can be
//! reused), `format` csv / json (`read_json_by_line`, `strip_outer_array`,
//! `column_separator`, `line_delimiter`, `enclose`, `escape`, `trim_double_quotes`,
//! `skip_lines`), `columns` (plain names), `hidden_columns: __DORIS_DELETE_SIGN__`,
//! `merge_type` APPEND / DELETE, the table's sequence column, `partial_columns`,
//! `max_filter_ratio`, `strict_mode`, `two_phase_commit`, `group_commit`. Every value is
//! checked against its column (VARCHAR / CHAR length in UTF-8 bytes, DECIMAL precision,
//! integer ranges, DATE / DATETIME, BOOLEAN, JSON, NOT NULL): a value that does not convert
//! becomes NULL, or filters the row in strict mode; a value out of the column's range, or
//! NULL in a NOT NULL column, always filters the row. UNIQUE KEY tables upsert by key and
//! delete by `__DORIS_DELETE_SIGN__ = 1`; DUPLICATE KEY tables append.
//!
//! SQL (HTTP API and [`DorisEmulator::execute`]): `CREATE/DROP DATABASE`, `CREATE TABLE`
//! (UNIQUE / DUPLICATE KEY, COMMENT, DISTRIBUTED BY, PROPERTIES; Doris's key and type
//! limits, and `replication_num` must not exceed [`DorisEmulatorOptions::backends`]),
//! `ALTER TABLE` ADD / DROP / RENAME / MODIFY COLUMN and MODIFY COMMENT, `TRUNCATE`,
//! `DROP TABLE`, `SHOW ALTER TABLE COLUMN [FROM db] [WHERE TableName = "t" [AND State =
//! ".."]] [ORDER BY c [ASC|DESC], ..] [LIMIT [m,] n]`, `SELECT` (columns
//! or `*` or `count(*)`, `WHERE a = 'x' AND ...`, `LIMIT`; also
//! `information_schema.COLUMNS`), `DESC`, `SHOW CREATE TABLE`, `SHOW [FULL] COLUMNS`,
//! `SHOW DATABASES`, `SHOW TABLES`.
//!
//! Schema changes are jobs, as in Doris (details and sources in the `jobs` module): an ADD /
//! DROP of a value column on a table with `light_schema_change` (the default) takes effect
//! at once and is listed as a FINISHED job; RENAME COLUMN and MODIFY COMMENT make no job; a
//! MODIFY COLUMN (a new type, position or comment), and an ADD / DROP that cannot be light,
//! is an **asynchronous job**: the statement returns at once, the job is PENDING, then
//! WAITING_TXN while a transaction on the table that began before it is not finished (a
//! pre-committed 2PC load that nobody commits holds it), then RUNNING, and FINISHED after
//! [`DorisEmulatorOptions::alter_job_duration`] of its own time (zero: at once, unless a
//! transaction holds it), when the change is applied to the rows there then. Meanwhile the
//! table shows its old schema, loads are accepted and read with it (a value too large for
//! the old INT becomes NULL, as in any load into an INT), and every ALTER of the table is
//! refused with `Table[t]'s state(SCHEMA_CHANGE) is not NORMAL. Do not allow doing ALTER
//! ops` (a TRUNCATE with `Table' state is not NORMAL: SCHEMA_CHANGE`). A MODIFY that changes
//! nothing is refused (`Nothing is changed. please check your alter stmt.`); a job whose
//! table is dropped is CANCELLED. `SHOW ALTER TABLE COLUMN` lists jobs in job-id order with
//! a `CreateTime` of one-second resolution; ORDER BY is a stable sort, so jobs created in
//! the same second keep job-id order, also under DESC. Jobs move on whenever a request
//! reaches the emulator (or a method of [`DorisEmulator`] is called).
//!
//! Faults ([`DorisFault`]) make the next requests fail in the ways a real cluster does.
//!
//! Outside Rust tests, the `doris-emulator` binary of this crate starts one and prints its
//! addresses (`cargo run -p cdc-testkit --bin doris-emulator`), then runs until Ctrl-C.
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! let doris = cdc_testkit::DorisEmulator::start().await?;
//! doris.execute("CREATE DATABASE shop")?;
//! doris.execute("CREATE TABLE shop.t (id INT, v VARCHAR(10)) UNIQUE KEY(id) \
//!                DISTRIBUTED BY HASH(id) BUCKETS AUTO PROPERTIES (\"replication_num\" = \"1\")")?;
//! println!("fenodes: {}", doris.fe_address());
//! # Ok(()) }
//! ```
//!
//! Loads pre-committed with two-phase commit keep their columns by column id, as Doris's
//! light schema change does: rows written before a `RENAME COLUMN` show up under the new
//! name when committed later, a dropped column's values are gone, an added column gets its
//! default, and a load into a table dropped since is lost.
//!
//! Known differences from a real Doris: rows loaded while a schema-change job runs are
//! read with the old schema even after the job has created its shadow index (Doris then also
//! writes the new one from the load's input); a VARCHAR widening is a job (newer Doris
//! releases make it a light change); `CreateTime` / `FinishTime` have one-second
//! resolution (newer releases print milliseconds); the load `timeout` header is checked but not
//! enforced (a [`DorisFault::Slow`] load always finishes); FLOAT / DOUBLE values print in
//! Rust's notation (`0.00000000025` where Doris shows `2.5e-10`); DATETIME fractional digits beyond the column's
//! scale are cut, not rounded; values with a time-zone offset are rejected (the
//! `timezone` header is accepted but unused); `columns` expressions, `jsonpaths`,
//! `json_root`, `where`, `merge_type: MERGE`, compressed bodies, parquet / orc and
//! AGGREGATE KEY tables are refused with a message naming the emulator. Result sets of
//! the SQL API answer as Doris's `StatementSubmitter` does: at most the request's `limit`
//! rows (default 1000), numeric columns as JSON numbers, other values (dates included)
//! as strings, a `CAST(col AS STRING)` as a string; key-range selects (`WHERE` with
//! `<`, `>`, `AND`, `OR`, `ORDER BY`, `LIMIT`) are understood (the `range_select` module).

mod be;
pub(crate) mod body;
mod catalog;
mod ddl;
mod fe;
pub(crate) mod http;
mod jobs;
mod load;
mod model;
pub(crate) mod range_select;
mod response;
pub(crate) mod routes;
mod sql;
mod state;
pub(crate) mod types;

use std::sync::atomic::{AtomicU16, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

pub use model::{
    ColumnInfo, DorisEmulatorOptions, DorisFault, EmulatorError, LoadRecord, QueryResult,
    TableModel, TxnRecord, TxnState,
};

use be::Backend;
use fe::Frontend;
use http::{Handler, Server};
use state::State;

/// An in-process Doris FE and BE; see the [module documentation](self). Both servers stop
/// when this is dropped.
#[derive(Debug)]
pub struct DorisEmulator {
    state: Arc<Mutex<State>>,
    fe: Arc<Server>,
    /// The BEs; never empty.
    bes: Vec<Arc<Server>>,
    tls: Option<crate::TestTls>,
}

impl DorisEmulator {
    /// Starts an emulator with the default options (user `root` without password).
    pub async fn start() -> Result<Self, EmulatorError> {
        Self::start_with(DorisEmulatorOptions::default()).await
    }

    /// Starts an emulator with these options. Must be called inside a tokio runtime, which
    /// then runs the servers.
    #[allow(clippy::unused_async)] // async so that it is called inside the runtime
    pub async fn start_with(options: DorisEmulatorOptions) -> Result<Self, EmulatorError> {
        if tokio::runtime::Handle::try_current().is_err() {
            return Err(EmulatorError::NoRuntime);
        }
        crate::install_crypto_provider();
        let tls = if options.tls {
            Some(crate::TestTls::generate().map_err(EmulatorError::Tls)?)
        } else {
            None
        };
        let server_tls = tls.as_ref().map(|t| t.server_config.clone());
        let scheme = if tls.is_some() { "https" } else { "http" };
        let mut state = State::new(
            options.users,
            options.precommit_timeout,
            options.backends,
            options.alter_job_duration,
        );
        state.error_url_base = options.error_url_base;
        let state = Arc::new(Mutex::new(state));
        let mut bes = Vec::new();
        for index in 0..options.backends.max(1) as usize {
            let backend = Arc::new(Backend {
                state: state.clone(),
                index,
                port: AtomicU16::new(0),
                scheme,
            });
            let be_handler: Handler = {
                let backend = backend.clone();
                Arc::new(move |req, conn| Box::pin(backend.clone().handle(req, conn)))
            };
            let be = Server::start(0, be_handler, server_tls.clone())
                .map_err(|source| EmulatorError::Bind { what: "BE", source })?;
            backend.port.store(be.port(), Ordering::Relaxed);
            bes.push(be);
        }
        let frontend = Arc::new(Frontend {
            state: state.clone(),
            backends: bes.clone(),
            next_be: AtomicUsize::new(0),
            scheme,
        });
        let fe_handler: Handler =
            Arc::new(move |req, conn| Box::pin(frontend.clone().handle(req, conn)));
        let fe = Server::start(0, fe_handler, server_tls)
            .map_err(|source| EmulatorError::Bind { what: "FE", source })?;
        Ok(Self {
            state,
            fe,
            bes,
            tls,
        })
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        let mut st = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        st.tick();
        st
    }

    /// The FE's `127.0.0.1:PORT` (a sink's `fenodes`); `https://127.0.0.1:PORT` with
    /// [`DorisEmulatorOptions::tls`].
    pub fn fe_address(&self) -> String {
        self.address(self.fe.port())
    }

    /// The (first) BE's `127.0.0.1:PORT` (a sink's `benodes`); `https://127.0.0.1:PORT`
    /// with [`DorisEmulatorOptions::tls`].
    pub fn be_address(&self) -> String {
        self.address(self.bes[0].port())
    }

    /// Every BE's address, in the order [`DorisFault::BackendDown`] and
    /// [`be_stream_load_requests`](Self::be_stream_load_requests) count them (one per
    /// [`DorisEmulatorOptions::backends`], at least one).
    pub fn be_addresses(&self) -> Vec<String> {
        self.bes.iter().map(|be| self.address(be.port())).collect()
    }

    fn address(&self, port: u16) -> String {
        if self.tls.is_some() {
            format!("https://127.0.0.1:{port}")
        } else {
            format!("127.0.0.1:{port}")
        }
    }

    /// The CA that signed the servers' certificate, with [`DorisEmulatorOptions::tls`].
    pub fn tls(&self) -> Option<&crate::TestTls> {
        self.tls.as_ref()
    }

    /// Runs one SQL statement, as the HTTP SQL API would. Errors are Doris texts
    /// (`errCode = 2, detailMessage = ...`).
    pub fn execute(&self, sql: &str) -> Result<QueryResult, String> {
        ddl::execute(&mut self.lock(), None, sql)
    }

    /// Visible rows of a table, each value as the text Doris prints in `SELECT`, sorted;
    /// `None` if there is no such table.
    pub fn table_rows(&self, db: &str, table: &str) -> Option<Vec<Vec<Option<String>>>> {
        Some(self.lock().catalog.table(db, table)?.visible_rows())
    }

    /// The columns of a table; `None` if there is no such table.
    pub fn table_columns(&self, db: &str, table: &str) -> Option<Vec<ColumnInfo>> {
        Some(
            self.lock()
                .catalog
                .table(db, table)?
                .columns
                .iter()
                .map(catalog::Column::info)
                .collect(),
        )
    }

    /// The data model of a table; `None` if there is no such table.
    pub fn table_model(&self, db: &str, table: &str) -> Option<TableModel> {
        Some(self.lock().catalog.table(db, table)?.model)
    }

    /// Injects a fault. Faults other than [`DorisFault::BeDown`] are queued, each applying
    /// to the next `count` requests it matches (in queue order); `BeDown` applies at once.
    pub fn inject(&self, fault: DorisFault) {
        match fault {
            DorisFault::BeDown(down) => {
                for be in &self.bes {
                    Self::set_down(be, down);
                }
            }
            DorisFault::BackendDown { index, down } => {
                if let Some(be) = self.bes.get(index) {
                    Self::set_down(be, down);
                }
            }
            other => self.lock().faults.push_back(other),
        }
    }

    fn set_down(be: &Server, down: bool) {
        if down {
            be.down();
        } else if let Err(e) = be.up() {
            tracing::warn!("a BE of the Doris emulator could not listen again: {e}");
        }
    }

    /// Every stream load the BE answered, in order.
    pub fn load_log(&self) -> Vec<LoadRecord> {
        self.lock().load_log.clone()
    }

    /// How many stream-load requests reached the FE (each is answered with a redirect or
    /// an FE error; the BE's [`load_log`](Self::load_log) has what was loaded). Tells
    /// whether a client went through the FE at all, and lets a test wait until a client
    /// is retrying while the BE is down.
    pub fn fe_stream_load_requests(&self) -> u64 {
        self.lock().fe_stream_loads
    }

    /// How many 2PC commit / abort requests reached the FE.
    pub fn fe_two_phase_requests(&self) -> u64 {
        self.lock().fe_two_phase
    }

    /// How many `GET /api/backends` requests the FE answered with the list (BE discovery by clients
    /// that load straight into the BEs).
    pub fn fe_backend_list_requests(&self) -> u64 {
        self.lock().fe_backend_lists
    }

    /// How many stream-load requests reached BE `index` (of
    /// [`be_addresses`](Self::be_addresses)), whether sent there directly or redirected by
    /// the FE; 0 for an index past the last BE.
    pub fn be_stream_load_requests(&self, index: usize) -> u64 {
        self.lock().be_stream_loads.get(index).copied().unwrap_or(0)
    }

    /// How many 2PC commit / abort requests reached BE `index` (of
    /// [`be_addresses`](Self::be_addresses)); 0 for an index past the last BE.
    pub fn be_two_phase_requests(&self, index: usize) -> u64 {
        self.lock().be_two_phase.get(index).copied().unwrap_or(0)
    }

    /// Every transaction, by id.
    pub fn transactions(&self) -> Vec<TxnRecord> {
        self.lock().txn_records()
    }
}

impl Drop for DorisEmulator {
    fn drop(&mut self) {
        self.fe.down();
        for be in &self.bes {
            be.down();
        }
    }
}
