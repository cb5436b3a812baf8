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
    /// Reading or writing the state directory failed.
    #[error("state store {location}: {message}")]
    State {
        /// The file or directory.
        location: String,
        /// What went wrong.
        message: String,
    },
}

impl RuntimeError {
    pub(crate) fn definition(location: impl Into<String>, message: impl Into<String>) -> Self {
        Self::Definition {
            location: location.into(),
            message: message.into(),
        }
    }
}
