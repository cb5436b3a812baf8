//! Where a pipeline's state goes: `pipeline.state.dir` / `--state-dir`, the explicit
//! memory-only value, or the default directory derived from the pipeline's name.

use std::ffi::OsString;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use async_trait::async_trait;
use cdc_api::OwnerEpoch;

use super::checksum::crc32;
use super::object::{display_url, is_object_url};
use super::{
    Checkpoint, FileStateStore, MemoryStateStore, ObjectStateStore, Ownership, StateStore,
};
use crate::RuntimeError;

/// The `state.dir` / `--state-dir` value that keeps the state in memory only, so that a
/// restart starts over. A word rather than an empty value, so it cannot happen by accident
/// (a directory of that name is still possible as `./none`).
pub const MEMORY_STATE: &str = "none";

/// Longest directory name derived from a pipeline name (before the hash suffix), well
/// below every file system's limit.
const MAX_NAME: usize = 64;

/// Where a pipeline keeps its checkpoints.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StateLocation {
    /// `state.dir` (or `--state-dir`) names this directory.
    Directory(PathBuf),
    /// `state.dir` is not set: the default directory for the pipeline's name,
    /// `$XDG_STATE_HOME/cdc/<name>` or `~/.local/state/cdc/<name>`. `None` when neither
    /// variable is set; the run then refuses to start rather than lose its state.
    Default(Option<PathBuf>),
    /// `state.dir: none`: in memory only; a restart starts over.
    Memory,
    /// `state.dir: s3://bucket/prefix` (or `gs://`, `az://`, `file://`): an object store,
    /// with credentials from the environment ([`ObjectStateStore`]).
    Object(String),
}

impl StateLocation {
    /// The location a `state.dir` / `--state-dir` value names: [`MEMORY_STATE`] is memory,
    /// a URL with the scheme `s3://`, `gs://`, `az://` or `file://` an object store,
    /// anything else a directory.
    pub fn from_value(value: impl Into<PathBuf>) -> Self {
        let path = value.into();
        if path.as_os_str() == MEMORY_STATE {
            return Self::Memory;
        }
        match path.to_str() {
            Some(text) if is_object_url(text) => Self::Object(text.to_string()),
            _ => Self::Directory(path),
        }
    }

    /// The default location for a pipeline named `pipeline`, from the environment.
    pub fn default_for(pipeline: &str) -> Self {
        Self::Default(default_state_dir(pipeline))
    }

    /// The directory, if the state goes to one.
    pub fn directory(&self) -> Option<&Path> {
        match self {
            Self::Directory(dir) | Self::Default(Some(dir)) => Some(dir),
            Self::Default(None) | Self::Memory | Self::Object(_) => None,
        }
    }

    /// A store for this location (nothing is created or locked before it is claimed).
    pub fn open(&self) -> Arc<dyn StateStore> {
        match self {
            Self::Directory(dir) | Self::Default(Some(dir)) => Arc::new(FileStateStore::new(dir)),
            Self::Memory => Arc::new(MemoryStateStore::default()),
            Self::Default(None) => Arc::new(NoDefaultDirectory),
            Self::Object(url) => match ObjectStateStore::open(url) {
                Ok(store) => Arc::new(store),
                Err(error) => Arc::new(Unusable {
                    location: display_url(url),
                    message: match error {
                        RuntimeError::State { message, .. } => message,
                        other => other.to_string(),
                    },
                }),
            },
        }
    }
}

impl fmt::Display for StateLocation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Directory(dir) => write!(f, "directory {}", dir.display()),
            Self::Default(Some(dir)) => write!(
                f,
                "directory {} (the default for this pipeline name; pipeline.state.dir or --state-dir choose another)",
                dir.display()
            ),
            Self::Default(None) => f.write_str(NO_DEFAULT),
            Self::Memory => write!(
                f,
                "memory only (state.dir: {MEMORY_STATE}): a restart starts over"
            ),
            Self::Object(url) => write!(f, "object store {}", display_url(url)),
        }
    }
}

const NO_DEFAULT: &str = "no state directory: pipeline.state.dir is not set and neither XDG_STATE_HOME nor HOME is set to derive the default from; set pipeline.state.dir or --state-dir (or `none` to keep the state in memory only, so that a restart starts over)";

/// The default state directory of a pipeline named `pipeline`:
/// `$XDG_STATE_HOME/cdc/<name>`, or `$HOME/.local/state/cdc/<name>` (the XDG base
/// directory default), where `<name>` is the pipeline name made safe as a file name (with a
/// short hash of the real name when that changed it, so two names never share a
/// directory). `None` when neither variable is set to an absolute path.
pub fn default_state_dir(pipeline: &str) -> Option<PathBuf> {
    default_state_dir_from(
        pipeline,
        std::env::var_os("XDG_STATE_HOME"),
        std::env::var_os("HOME"),
    )
}

fn default_state_dir_from(
    pipeline: &str,
    xdg_state_home: Option<OsString>,
    home: Option<OsString>,
) -> Option<PathBuf> {
    // The XDG spec: a relative XDG_STATE_HOME is invalid and ignored.
    let absolute = |v: Option<OsString>| v.map(PathBuf::from).filter(|p| p.is_absolute());
    let base = absolute(xdg_state_home)
        .or_else(|| absolute(home).map(|h| h.join(".local").join("state")))?;
    Some(base.join("cdc").join(directory_name(pipeline)))
}

/// `pipeline` as one safe directory name: ASCII letters, digits, `-`, `_` and `.` kept,
/// everything else `-`, no leading dot, at most [`MAX_NAME`] characters; when that changed
/// the name, a CRC-32 of the real name is appended so that `a b` and `a/b` stay apart.
fn directory_name(pipeline: &str) -> String {
    let safe: String = pipeline
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.') {
                c
            } else {
                '-'
            }
        })
        .collect();
    let mut safe: String = safe
        .trim_start_matches('.')
        .chars()
        .take(MAX_NAME)
        .collect();
    if safe.is_empty() {
        safe.push_str("pipeline");
    } else if safe == pipeline {
        return safe;
    }
    format!("{safe}-{:08x}", crc32(pipeline.as_bytes()))
}

/// The store of [`StateLocation::Default`] without a directory: every call says why and
/// what to set, so nothing runs without its state by accident.
struct NoDefaultDirectory;

impl NoDefaultDirectory {
    fn error() -> RuntimeError {
        RuntimeError::State {
            location: "(no directory)".into(),
            message: NO_DEFAULT.into(),
        }
    }
}

#[async_trait]
impl StateStore for NoDefaultDirectory {
    async fn claim(&self) -> Result<Ownership, RuntimeError> {
        Err(Self::error())
    }

    async fn verify(&self, _epoch: OwnerEpoch) -> Result<(), RuntimeError> {
        Err(Self::error())
    }

    async fn load(&self) -> Result<Option<Checkpoint>, RuntimeError> {
        Err(Self::error())
    }

    async fn save(&self, _checkpoint: &Checkpoint) -> Result<(), RuntimeError> {
        Err(Self::error())
    }

    async fn settle(&self, _epoch: OwnerEpoch) -> Result<(), RuntimeError> {
        Err(Self::error())
    }

    fn describe(&self) -> String {
        "no state directory".into()
    }
}

/// An object store URL the client cannot be built for (a bad URL, a missing region): every
/// call says why, so the run stops at its claim with that message.
struct Unusable {
    location: String,
    message: String,
}

impl Unusable {
    fn error(&self) -> RuntimeError {
        RuntimeError::State {
            location: self.location.clone(),
            message: self.message.clone(),
        }
    }
}

#[async_trait]
impl StateStore for Unusable {
    async fn claim(&self) -> Result<Ownership, RuntimeError> {
        Err(self.error())
    }

    async fn verify(&self, _epoch: OwnerEpoch) -> Result<(), RuntimeError> {
        Err(self.error())
    }

    async fn load(&self) -> Result<Option<Checkpoint>, RuntimeError> {
        Err(self.error())
    }

    async fn save(&self, _checkpoint: &Checkpoint) -> Result<(), RuntimeError> {
        Err(self.error())
    }

    async fn settle(&self, _epoch: OwnerEpoch) -> Result<(), RuntimeError> {
        Err(self.error())
    }

    fn describe(&self) -> String {
        format!("object store {}", self.location)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_follows_xdg_and_falls_back_to_home() {
        let dir = |xdg: Option<&str>, home: Option<&str>| {
            default_state_dir_from("shop", xdg.map(Into::into), home.map(Into::into))
        };
        assert_eq!(
            dir(Some("/xdg"), Some("/home/u")),
            Some(PathBuf::from("/xdg/cdc/shop"))
        );
        assert_eq!(
            dir(None, Some("/home/u")),
            Some(PathBuf::from("/home/u/.local/state/cdc/shop"))
        );
        // A relative XDG_STATE_HOME is invalid (XDG spec) and ignored; so is an empty one.
        assert_eq!(
            dir(Some("rel"), Some("/home/u")),
            Some(PathBuf::from("/home/u/.local/state/cdc/shop"))
        );
        assert_eq!(
            dir(Some(""), Some("/home/u")),
            Some(PathBuf::from("/home/u/.local/state/cdc/shop"))
        );
        assert_eq!(dir(None, None), None);
        assert_eq!(dir(Some("x"), Some("")), None);
    }

    #[test]
    fn pipeline_names_become_safe_distinct_directory_names() {
        assert_eq!(directory_name("shop-to-doris_2.x"), "shop-to-doris_2.x");
        let spaced = directory_name("Flink CDC Pipeline Job");
        assert!(spaced.starts_with("Flink-CDC-Pipeline-Job-"), "{spaced}");
        assert_eq!(spaced.len(), "Flink-CDC-Pipeline-Job-".len() + 8);
        // Names that sanitise alike stay apart through the hash.
        assert_ne!(directory_name("a b"), directory_name("a/b"));
        assert_ne!(directory_name("a-b"), directory_name("a b"));
        for dangerous in ["..", ".", "../etc", "/", "", ".hidden", "ä"] {
            let name = directory_name(dangerous);
            assert!(
                !name.starts_with('.') && !name.contains('/') && !name.is_empty(),
                "{dangerous:?} -> {name:?}"
            );
            assert!(name.is_ascii(), "{name}");
        }
        let long = directory_name(&"x".repeat(300));
        assert_eq!(long.len(), MAX_NAME + 9);
    }

    #[test]
    fn none_means_memory_and_anything_else_a_directory() {
        assert_eq!(StateLocation::from_value("none"), StateLocation::Memory);
        assert_eq!(
            StateLocation::from_value("./none"),
            StateLocation::Directory("./none".into())
        );
        assert_eq!(
            StateLocation::from_value("/var/lib/cdc/shop").directory(),
            Some(Path::new("/var/lib/cdc/shop"))
        );
        assert!(
            StateLocation::Memory
                .to_string()
                .contains("restart starts over")
        );
        assert!(
            StateLocation::Default(None)
                .to_string()
                .contains("neither XDG_STATE_HOME nor HOME")
        );
    }

    #[test]
    fn object_store_urls_are_object_locations_shown_without_credentials() {
        for url in [
            "s3://b/p",
            "S3://b/p",
            "gs://b",
            "az://c/p",
            "file:///tmp/x",
        ] {
            assert_eq!(
                StateLocation::from_value(url),
                StateLocation::Object(url.into()),
                "{url}"
            );
        }
        assert_eq!(
            StateLocation::from_value("s3/b"),
            StateLocation::Directory("s3/b".into())
        );
        let shown = StateLocation::from_value("s3://AKID:hunter22@bucket/p?token=zzz").to_string();
        assert_eq!(shown, "object store s3://bucket/p", "{shown}");
    }

    #[tokio::test]
    async fn an_unusable_object_store_url_stops_the_claim_with_why() {
        let err = StateLocation::from_value("s3://")
            .open()
            .claim()
            .await
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("state store s3:"), "{err}");
        let err = StateLocation::Object("ftp://x/y".into())
            .open()
            .claim()
            .await
            .unwrap_err()
            .to_string();
        assert!(err.contains("not a state store"), "{err}");
    }

    #[tokio::test]
    async fn without_a_default_directory_the_run_is_refused_with_what_to_set() {
        let err = StateLocation::Default(None)
            .open()
            .claim()
            .await
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("pipeline.state.dir") && err.contains("--state-dir"),
            "{err}"
        );
    }
}
