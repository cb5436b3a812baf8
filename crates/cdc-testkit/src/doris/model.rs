//! The records the emulator hands back to tests.

use std::time::Duration;

/// One column of a table, as `DESC` shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ColumnInfo {
    /// Column name.
    pub name: String,
    /// Type as Doris prints it, upper case: `VARCHAR(96)`, `DECIMAL(12, 2)`, `DATETIME(3)`.
    pub type_text: String,
    /// Whether NULL is allowed.
    pub nullable: bool,
    /// Whether the column is a key column.
    pub is_key: bool,
    /// The column comment (empty when none).
    pub comment: String,
}

/// The data model of a table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TableModel {
    /// `UNIQUE KEY`: one row per key, loads upsert, `__DORIS_DELETE_SIGN__` deletes.
    Unique,
    /// `DUPLICATE KEY`: loads append.
    Duplicate,
}

/// The result of one SQL statement.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct QueryResult {
    /// `true` for a result set (`SELECT`, `SHOW`, `DESC`), `false` for a statement that
    /// only reports success (`exec_status` in the HTTP API).
    pub is_result_set: bool,
    /// Column names of the result set.
    pub columns: Vec<String>,
    /// Column types of the result set, as the HTTP API's `meta` reports them.
    pub column_types: Vec<String>,
    /// Rows, each value as text (`None` = NULL).
    pub rows: Vec<Vec<Option<String>>>,
}

/// One stream load the BE saw.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoadRecord {
    /// The label (given or generated).
    pub label: String,
    /// Database from the URL.
    pub db: String,
    /// Table from the URL.
    pub table: String,
    /// The `Status` text answered: `Success`, `Publish Timeout`, `Label Already Exists`, `Fail`.
    pub status: String,
    /// The `Message` answered.
    pub message: String,
    /// The transaction id answered (`-1` for a label conflict, `0` before a transaction began).
    pub txn_id: i64,
    /// Whether the load asked for two-phase commit.
    pub two_phase_commit: bool,
    /// `NumberTotalRows`.
    pub total_rows: u64,
    /// `NumberLoadedRows`.
    pub loaded_rows: u64,
    /// `NumberFilteredRows`.
    pub filtered_rows: u64,
}

/// State of a transaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TxnState {
    /// The load is still running (Doris PREPARE).
    Running,
    /// Loaded with `two_phase_commit: true`, not yet committed: not visible.
    PreCommitted,
    /// Committed and visible.
    Committed,
    /// Aborted (failed load, `txn_operation: abort`, or pre-commit timeout); its label may
    /// be used again.
    Aborted,
}

/// One transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TxnRecord {
    /// Transaction id.
    pub txn_id: i64,
    /// Its label.
    pub label: String,
    /// Database.
    pub db: String,
    /// Table.
    pub table: String,
    /// Current state.
    pub state: TxnState,
    /// Why it was aborted, when it was.
    pub abort_reason: Option<String>,
}

/// Options of [`DorisEmulator::start_with`](super::DorisEmulator::start_with).
#[derive(Debug, Clone)]
pub struct DorisEmulatorOptions {
    /// Accepted `(user, password)` pairs. Default: `[("root", "")]`.
    pub users: Vec<(String, String)>,
    /// A PRECOMMITTED transaction not committed within this time is aborted. Default 60 s.
    pub precommit_timeout: Duration,
    /// How long a heavy schema-change job (a `MODIFY COLUMN`, or an ADD / DROP COLUMN that
    /// light schema change cannot do) takes of its own time: it is PENDING for the first
    /// third, WAITING_TXN while a transaction on its table that began before it is
    /// unfinished, then RUNNING, and FINISHED (the new schema takes effect) when the rest
    /// has passed. Default 300 ms; zero finishes a job on the request that creates it,
    /// unless a transaction holds it.
    pub alter_job_duration: Duration,
    /// Where the `ErrorURL` of a load with rejected rows points instead of the BE
    /// (`http://host:port`): a test knob for a server that names a host the user did not
    /// configure (the log itself stays here). Default `None`: the BE, as Doris does.
    pub error_url_base: Option<String>,
    /// How many BEs the cluster has. Each is its own HTTP server on its own port
    /// ([`DorisEmulator::be_addresses`](super::DorisEmulator::be_addresses)), all sharing
    /// one catalog and one transaction table; the FE lists them in `GET /api/backends` and
    /// redirects loads to them round robin. `CREATE TABLE` checks `replication_num`
    /// against this number (Doris's default is 3; this cluster has 1 BE by default, so a
    /// table must say `"replication_num" = "1"`, as on a real single-BE cluster). `0`
    /// starts one BE server but lets no table be created.
    pub backends: u32,
    /// Serve HTTPS instead of HTTP on the FE and the BE, with a certificate for
    /// `127.0.0.1` / `localhost` signed by a CA made at start
    /// ([`DorisEmulator::tls`](super::DorisEmulator::tls) has its PEM file). The FE's
    /// redirects and the BE's `ErrorURL`s then say `https://`. Default false.
    pub tls: bool,
}

impl Default for DorisEmulatorOptions {
    fn default() -> Self {
        Self {
            users: vec![("root".to_string(), String::new())],
            precommit_timeout: Duration::from_secs(60),
            alter_job_duration: Duration::from_millis(300),
            backends: 1,
            tls: false,
            error_url_base: None,
        }
    }
}

/// A fault to inject; see [`DorisEmulator::inject`](super::DorisEmulator::inject).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DorisFault {
    /// The next `count` stream-load or 2PC requests at the BE answer this HTTP status
    /// (5xx) with a plain-text body, without loading anything.
    ServerError {
        /// HTTP status to answer.
        status: u16,
        /// How many requests.
        count: u32,
    },
    /// The next `count` stream-load or 2PC requests at the BE get their TCP connection
    /// reset (RST) before anything is answered or loaded.
    ResetConnection {
        /// How many requests.
        count: u32,
    },
    /// The next `count` stream loads without two-phase commit answer
    /// `Status: "Publish Timeout"`; the data IS committed (and visible).
    PublishTimeout {
        /// How many loads.
        count: u32,
    },
    /// The next `count` stream loads at the BE wait `delay` after reading the body, before
    /// they are processed (the transaction is RUNNING meanwhile, and the load finishes even
    /// if the client stopped waiting, as on a real BE).
    Slow {
        /// How long to wait.
        delay: Duration,
        /// How many requests.
        count: u32,
    },
    /// The next `count` stream loads fail with the too-many-versions error (`[E-235]`);
    /// their transaction is aborted, so the label may be reused.
    TooManyVersions {
        /// How many loads.
        count: u32,
    },
    /// `true`: every BE refuses connections (its listener is closed and open connections
    /// are dropped) until `BeDown(false)`. Applied at once, not queued.
    BeDown(bool),
    /// Like [`BeDown`](Self::BeDown) for one BE only: `index` into
    /// [`DorisEmulator::be_addresses`](super::DorisEmulator::be_addresses) (an index past
    /// the last BE does nothing). The FE notices at once: `GET /api/backends?is_alive=true`
    /// leaves a down BE out and redirects go to the other BEs (a real FE notices within a
    /// heartbeat, a few seconds). Applied at once, not queued.
    BackendDown {
        /// Which BE.
        index: usize,
        /// `true` to take it down, `false` to bring it back.
        down: bool,
    },
}

/// Why the emulator could not start.
#[derive(Debug, thiserror::Error)]
pub enum EmulatorError {
    /// Binding a listener failed.
    #[error("cannot bind the emulator's {what} listener: {source}")]
    Bind {
        /// `FE` or `BE`.
        what: &'static str,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The TLS certificates could not be made.
    #[error("cannot set up TLS for the emulator: {0}")]
    Tls(String),
    /// Started outside a tokio runtime.
    #[error("the Doris emulator must be started inside a tokio runtime")]
    NoRuntime,
}
