//! The records and options the StarRocks emulator hands to and back from tests.

use std::time::Duration;

/// Options of [`StarRocksEmulator::start_with`](super::StarRocksEmulator::start_with).
#[derive(Debug, Clone)]
pub struct StarRocksEmulatorOptions {
    /// Accepted `(user, password)` pairs. Default: `[("root", "")]`.
    pub users: Vec<(String, String)>,
    /// How long an `ALTER TABLE` job stays PENDING / RUNNING before it is FINISHED and the
    /// new schema takes effect. Default 300 ms; zero finishes jobs at once.
    pub alter_job_duration: Duration,
    /// A PREPARED transaction not committed within this time is aborted. Default 600 s.
    pub prepared_timeout: Duration,
    /// The largest JSON body accepted without `ignore_json_size: true`. Default 100 MB
    /// (StarRocks' `streaming_load_max_batch_size_mb`); tests may lower it.
    pub json_max_bytes: usize,
    /// Serve HTTPS instead of HTTP on the FE's HTTP port and the BE, with a certificate for
    /// `127.0.0.1` / `localhost` signed by a CA made at start
    /// ([`StarRocksEmulator::tls`](super::StarRocksEmulator::tls) has its PEM file); the
    /// redirects and `ErrorURL`s then say `https://`. The MySQL-protocol port stays plain.
    /// Default false.
    pub tls: bool,
    /// Where the `ErrorURL` of a load with rejected rows points instead of this BE
    /// (`http://host:port`): a test knob for a server that names a host the user did not
    /// configure (the log itself stays here). Default `None`: the BE, as StarRocks does.
    pub error_url_base: Option<String>,
}

impl Default for StarRocksEmulatorOptions {
    fn default() -> Self {
        Self {
            users: vec![("root".to_string(), String::new())],
            alter_job_duration: Duration::from_millis(300),
            prepared_timeout: Duration::from_secs(600),
            json_max_bytes: 100 * 1024 * 1024,
            tls: false,
            error_url_base: None,
        }
    }
}

/// A fault to inject; see [`StarRocksEmulator::inject`](super::StarRocksEmulator::inject).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StarRocksFault {
    /// The next `count` load or transaction requests (stream loads and `begin` / `load` /
    /// `prepare` at the BE, `commit` / `rollback` at the FE) answer this HTTP status with
    /// a plain-text body and change nothing.
    ServerError {
        /// HTTP status to answer.
        status: u16,
        /// How many requests.
        count: u32,
    },
    /// The next `count` load or transaction requests get their TCP connection reset
    /// before anything is changed.
    ResetConnection {
        /// How many requests.
        count: u32,
    },
    /// The next `count` data requests (stream loads and transaction `load`s) wait `delay`
    /// after reading the body; the transaction is busy meanwhile (other operations on its
    /// label answer `TXN_IN_PROCESSING`) and the load completes even if the client left.
    Slow {
        /// How long to wait.
        delay: Duration,
        /// How many requests.
        count: u32,
    },
    /// The next `count` commits answer `PUBLISH_TIMEOUT`; the transaction IS committed.
    PublishTimeout {
        /// How many commits.
        count: u32,
    },
    /// `true`: the BE refuses connections until `BeDown(false)`. Applied at once.
    BeDown(bool),
}

/// One data request (stream load or transaction `load`) the BE answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StarRocksLoadRecord {
    /// The label.
    pub label: String,
    /// Database.
    pub db: String,
    /// Table.
    pub table: String,
    /// `true` for `/api/transaction/load`, `false` for `_stream_load`.
    pub transactional: bool,
    /// The `Status` answered (`Success`, `Fail`, `OK`, `TXN_NOT_EXISTS`, ...).
    pub status: String,
    /// The `Message` answered.
    pub message: String,
    /// Rows in the body.
    pub total_rows: u64,
}

/// State of a transaction, as `get_load_state` names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StarRocksTxnState {
    /// Begun, taking data (`PREPARE`).
    Prepare,
    /// Prepared: durable, not visible (`PREPARED`).
    Prepared,
    /// Committed and visible (`VISIBLE`).
    Visible,
    /// Rolled back or expired (`ABORTED`); its label may be used again.
    Aborted,
}

impl StarRocksTxnState {
    /// The name `get_load_state` answers.
    pub fn name(self) -> &'static str {
        match self {
            Self::Prepare => "PREPARE",
            Self::Prepared => "PREPARED",
            Self::Visible => "VISIBLE",
            Self::Aborted => "ABORTED",
        }
    }
}

/// One transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StarRocksTxnRecord {
    /// Transaction id.
    pub txn_id: i64,
    /// Label.
    pub label: String,
    /// Database.
    pub db: String,
    /// Table.
    pub table: String,
    /// Current state.
    pub state: StarRocksTxnState,
    /// Why it was aborted, when it was.
    pub abort_reason: Option<String>,
}

/// Why the emulator could not start.
#[derive(Debug, thiserror::Error)]
pub enum StarRocksEmulatorError {
    /// Binding a listener failed.
    #[error("cannot bind the StarRocks emulator's {what} listener: {source}")]
    Bind {
        /// `FE HTTP`, `FE MySQL` or `BE`.
        what: &'static str,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The TLS certificates could not be made.
    #[error("cannot set up TLS for the StarRocks emulator: {0}")]
    Tls(String),
    /// Started outside a tokio runtime.
    #[error("the StarRocks emulator must be started inside a tokio runtime")]
    NoRuntime,
}
