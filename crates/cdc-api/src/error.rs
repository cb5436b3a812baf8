use std::fmt;

use thiserror::Error;

/// A boxed error from a lower layer (driver, HTTP client, I/O).
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// The result type of every connector call.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// A failure, split the way the runtime must treat it.
///
/// * [`Error::Transient`]: the same call may succeed later (network, 5xx, timeouts, a
///   server that is busy). Connectors retry these themselves with backoff; the runtime may
///   restart from the last checkpoint if they keep failing.
/// * [`Error::Permanent`]: retrying cannot help (authentication, a missing table, rows the
///   target rejects). The pipeline stops after keeping its last good checkpoint.
/// * [`Error::InvalidOption`]: the pipeline definition is wrong; nothing has started.
///
/// Every message says what failed and where (table, column, option) and, through `hint`,
/// what to do about it.
///
/// ```
/// use cdc_api::Error;
/// let e = Error::transient("loading into shop.orders", "connection reset");
/// assert!(e.is_retryable());
/// let e = Error::permanent("loading into shop.orders", "unknown column `x`")
///     .with_hint("run with schema.change.behavior: evolve");
/// assert!(!e.is_retryable());
/// assert_eq!(
///     e.to_string(),
///     "loading into shop.orders: unknown column `x` (hint: run with schema.change.behavior: evolve)"
/// );
/// ```
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum Error {
    /// An option is missing, unknown or has a bad value.
    #[error("option '{option}': {message}")]
    InvalidOption {
        /// The option key as written in the pipeline file (`block.key` when known).
        option: String,
        /// What is wrong and what would be right.
        message: String,
    },
    /// A failure that may go away if the same call is retried.
    #[error("{context}: {message}")]
    Transient {
        /// What was being done, and on what.
        context: String,
        /// What went wrong.
        message: String,
        /// The underlying error, if any.
        #[source]
        source: Option<BoxError>,
    },
    /// A failure that retrying cannot fix.
    #[error("{context}: {message}{}", Hint(hint))]
    Permanent {
        /// What was being done, and on what.
        context: String,
        /// What went wrong.
        message: String,
        /// What the user can do about it.
        hint: Option<String>,
        /// The underlying error, if any.
        #[source]
        source: Option<BoxError>,
    },
    /// Prepared work that a durable checkpoint names is gone from the target: it was
    /// aborted or expired (for example after a downtime longer than the target's
    /// transaction timeout) before it could be committed. The runtime rewinds to the last
    /// fully committed checkpoint.
    #[error("{context}: {message}")]
    TransactionLost {
        /// What was being committed, and where.
        context: String,
        /// What the target said.
        message: String,
    },
    /// The pipeline was asked to stop while this call was running.
    #[error("cancelled")]
    Cancelled,
}

struct Hint<'a>(&'a Option<String>);

impl fmt::Display for Hint<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some(h) => write!(f, " (hint: {h})"),
            None => Ok(()),
        }
    }
}

impl Error {
    /// A retryable failure.
    pub fn transient(context: impl Into<String>, message: impl Into<String>) -> Self {
        Self::Transient {
            context: context.into(),
            message: message.into(),
            source: None,
        }
    }

    /// A failure that retrying cannot fix.
    pub fn permanent(context: impl Into<String>, message: impl Into<String>) -> Self {
        Self::Permanent {
            context: context.into(),
            message: message.into(),
            hint: None,
            source: None,
        }
    }

    /// Prepared work named by a durable checkpoint was aborted or expired by the target.
    pub fn transaction_lost(context: impl Into<String>, message: impl Into<String>) -> Self {
        Self::TransactionLost {
            context: context.into(),
            message: message.into(),
        }
    }

    /// Whether this is [`Error::TransactionLost`].
    pub fn is_transaction_lost(&self) -> bool {
        matches!(self, Self::TransactionLost { .. })
    }

    /// A bad or missing option.
    pub fn invalid_option(option: impl Into<String>, message: impl Into<String>) -> Self {
        Self::InvalidOption {
            option: option.into(),
            message: message.into(),
        }
    }

    /// Adds (or replaces) the hint of a permanent error; other kinds are returned unchanged.
    pub fn with_hint(mut self, text: impl Into<String>) -> Self {
        if let Self::Permanent { hint, .. } = &mut self {
            *hint = Some(text.into());
        }
        self
    }

    /// Attaches the underlying error of a transient or permanent error.
    pub fn with_source(mut self, err: impl Into<BoxError>) -> Self {
        match &mut self {
            Self::Transient { source, .. } | Self::Permanent { source, .. } => {
                *source = Some(err.into());
            }
            _ => {}
        }
        self
    }

    /// Whether the same call may succeed if retried.
    pub fn is_retryable(&self) -> bool {
        matches!(self, Self::Transient { .. })
    }

    /// The same transient error once the connector's own retries ran out, with `why` (how
    /// many attempts, which option bounds them) added to its message. It stays transient:
    /// the cause may still go away, and the runtime's restart strategy tries again from the
    /// last checkpoint after a backoff. Other kinds are returned unchanged.
    ///
    /// ```
    /// use cdc_api::Error;
    /// let e = Error::transient("loading into shop.orders", "connection reset")
    ///     .retries_exhausted("after 4 attempts (sink.max-retries)");
    /// assert!(e.is_retryable());
    /// assert_eq!(
    ///     e.to_string(),
    ///     "loading into shop.orders: connection reset (after 4 attempts (sink.max-retries))"
    /// );
    /// ```
    pub fn retries_exhausted(self, why: &str) -> Self {
        match self {
            Self::Transient {
                context,
                message,
                source,
            } => Self::Transient {
                context,
                message: format!("{message} ({why})"),
                source,
            },
            other => other,
        }
    }

    /// The same error turned permanent: retrying, also by a restart, cannot help. Keeps
    /// its message and adds `why` to it.
    pub fn into_permanent(self, why: &str) -> Self {
        match self {
            Self::Transient {
                context,
                message,
                source,
            } => Self::Permanent {
                context,
                message: format!("{message} ({why})"),
                hint: None,
                source,
            },
            other => other,
        }
    }
}
