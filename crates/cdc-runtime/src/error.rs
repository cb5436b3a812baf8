use thiserror::Error;

/// Why a pipeline could not be built or stopped with an error.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum RuntimeError {
    /// The pipeline file could not be read.
    #[error("cannot read pipeline file {path}: {source}")]
    ReadFile {
        /// The path as given.
        path: String,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The pipeline file is not valid YAML or has the wrong shape.
    #[error("{location}: {message}")]
    Definition {
        /// Where: the file and, where known, the block and key (`pipeline.yaml: sink`).
        location: String,
        /// What is wrong and what to write instead.
        message: String,
    },
    /// A connector or the runtime failed.
    #[error("pipeline '{pipeline}': {source}")]
    Connector {
        /// The pipeline name.
        pipeline: String,
        /// The connector's error.
        #[source]
        source: cdc_api::Error,
    },
    /// Reading or writing the state failed, or it is in use by another run. When saving a
    /// checkpoint: it was not saved, the previous one is still the latest.
    #[error("state store {location}: {message}")]
    State {
        /// The file or directory.
        location: String,
        /// What went wrong.
        message: String,
    },
    /// Saving a checkpoint failed at a point where it may already be durable (the file
    /// system renamed it into place but syncing the directory failed): its prepared work
    /// must be neither aborted nor committed by this run; the next run commits it if the
    /// checkpoint survived and aborts it otherwise.
    #[error("state store {location}: {message}")]
    StateMaybeSaved {
        /// The file or directory.
        location: String,
        /// What went wrong.
        message: String,
    },
    /// The state store could not be reached (an object store that did not answer within
    /// its bounded retries): nothing was changed there; a later run can resume.
    #[error("state store {location}: {message}")]
    StateUnavailable {
        /// The store's URL, without credentials.
        location: String,
        /// What went wrong.
        message: String,
    },
    /// This run no longer owns the pipeline's state: another run claimed it since. The
    /// run stops without committing or aborting anything in the target.
    #[error("state store {location}: {message}")]
    Fenced {
        /// The file or directory.
        location: String,
        /// Who owns it now, as far as known.
        message: String,
    },
}

impl RuntimeError {
    /// A definition error; secret values the file substituted are masked in it.
    pub(crate) fn definition(location: impl Into<String>, message: impl Into<String>) -> Self {
        Self::Definition {
            location: crate::secrets::redact(&location.into()),
            message: crate::secrets::redact(&message.into()),
        }
    }
}
