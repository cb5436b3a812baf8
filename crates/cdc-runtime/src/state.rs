//! Where checkpoints live between runs.

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use async_trait::async_trait;
use cdc_api::{CheckpointId, Committable, Schema, SourceOffset, TableId};
use serde::{Deserialize, Serialize};

use crate::RuntimeError;

/// The version of the checkpoint file format this build writes (it reads 1 and 2).
/// 2 added [`Checkpoint::schemas`].
const FORMAT_VERSION: u32 = 2;
const CHECKPOINT_FILE: &str = "checkpoint.json";

/// One durable checkpoint: where the source resumes and what the sink must commit.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Checkpoint {
    /// File format version.
    pub format_version: u32,
    /// The pipeline's name when it was written.
    pub pipeline: String,
    /// The source connector type (`mysql`).
    pub source_type: String,
    /// The sink connector type (`doris`).
    pub sink_type: String,
    /// The checkpoint number.
    pub id: CheckpointId,
    /// Where the source resumes.
    pub offset: SourceOffset,
    /// What the sink prepared and must commit (again, idempotently, after a crash).
    pub committables: Vec<Committable>,
    /// The tables and schemas the pipeline had reached at this checkpoint (empty in
    /// format 1 files).
    #[serde(default)]
    pub schemas: SchemaState,
}

/// The tables and schemas of a pipeline at a checkpoint: what a restart needs so that
/// schema evolution and route merging continue from where they were, rather than from the
/// schemas the source re-announces.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SchemaState {
    /// Every source table the pipeline captured (announced by the source, not dropped).
    #[serde(default)]
    pub source_tables: Vec<TableId>,
    /// Per table reaching the sink (after transform and route): the schema the rows arrive
    /// with and the schema the target has (they differ under `lenient`).
    #[serde(default)]
    pub targets: Vec<TargetSchemas>,
    /// Route state: the current schema of each routed source table.
    #[serde(default)]
    pub routed_sources: Vec<(TableId, Schema)>,
    /// Route state: the merged schema of each route target.
    #[serde(default)]
    pub routed_targets: Vec<(TableId, Schema)>,
}

/// The two schemas the runtime keeps for a table that reaches the sink.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TargetSchemas {
    /// The table in the target.
    pub table: TableId,
    /// The schema of the rows arriving for it.
    pub upstream: Schema,
    /// The schema the target table has.
    pub target: Schema,
}

impl Checkpoint {
    /// A checkpoint in the current format.
    pub fn new(
        pipeline: &str,
        source_type: &str,
        sink_type: &str,
        id: CheckpointId,
        offset: SourceOffset,
        committables: Vec<Committable>,
    ) -> Self {
        Self {
            format_version: FORMAT_VERSION,
            pipeline: pipeline.to_string(),
            source_type: source_type.to_string(),
            sink_type: sink_type.to_string(),
            id,
            offset,
            committables,
            schemas: SchemaState::default(),
        }
    }

    /// The same checkpoint with the pipeline's tables and schemas.
    #[must_use]
    pub fn with_schemas(mut self, schemas: SchemaState) -> Self {
        self.schemas = schemas;
        self
    }
}

/// Keeps the latest checkpoint durably.
///
/// # Contract
/// After `save` returns `Ok`, a later `load` (also in another process after a crash)
/// returns that checkpoint or a newer one, never a torn mix of two.
#[async_trait]
pub trait StateStore: Send + Sync {
    /// The latest saved checkpoint, if any.
    async fn load(&self) -> Result<Option<Checkpoint>, RuntimeError>;
    /// Replaces the latest checkpoint, atomically and durably.
    async fn save(&self, checkpoint: &Checkpoint) -> Result<(), RuntimeError>;
    /// A short description for logs (`directory /var/lib/cdc/orders`).
    fn describe(&self) -> String;
}

/// Checkpoints in a local directory: `checkpoint.json`, replaced by writing a temporary
/// file, fsyncing it, renaming it over the old one and fsyncing the directory, so a crash
/// at any moment leaves either the old or the new checkpoint.
#[derive(Debug, Clone)]
pub struct FileStateStore {
    dir: PathBuf,
}

impl FileStateStore {
    /// A store in `dir` (created on first save).
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self { dir: dir.into() }
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn error(&self, what: &str, e: &std::io::Error) -> RuntimeError {
        RuntimeError::State {
            location: self.dir.display().to_string(),
            message: format!("{what}: {e}"),
        }
    }

    fn save_blocking(&self, bytes: &[u8]) -> Result<(), RuntimeError> {
        use std::io::Write as _;
        std::fs::create_dir_all(&self.dir).map_err(|e| self.error("cannot create", &e))?;
        let tmp = self.dir.join(format!("{CHECKPOINT_FILE}.tmp"));
        let mut file = std::fs::File::create(&tmp).map_err(|e| self.error("cannot write", &e))?;
        file.write_all(bytes)
            .and_then(|()| file.sync_all())
            .map_err(|e| self.error("cannot write", &e))?;
        drop(file);
        std::fs::rename(&tmp, self.dir.join(CHECKPOINT_FILE))
            .map_err(|e| self.error("cannot replace the checkpoint", &e))?;
        std::fs::File::open(&self.dir)
            .and_then(|d| d.sync_all())
            .map_err(|e| self.error("cannot sync the directory", &e))
    }
}

#[async_trait]
impl StateStore for FileStateStore {
    async fn load(&self) -> Result<Option<Checkpoint>, RuntimeError> {
        let path = self.dir.join(CHECKPOINT_FILE);
        let bytes = match tokio::fs::read(&path).await {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(self.error("cannot read", &e)),
        };
        let checkpoint: Checkpoint =
            serde_json::from_slice(&bytes).map_err(|e| RuntimeError::State {
                location: path.display().to_string(),
                message: format!("not a readable checkpoint ({e}); restore it from a backup or remove the directory to start over"),
            })?;
        if checkpoint.format_version > FORMAT_VERSION {
            return Err(RuntimeError::State {
                location: path.display().to_string(),
                message: format!(
                    "written by a newer version (format {}, this build reads up to {FORMAT_VERSION}); run the newer version, or start over with `cdc run --reset`",
                    checkpoint.format_version
                ),
            });
        }
        Ok(Some(checkpoint))
    }

    async fn save(&self, checkpoint: &Checkpoint) -> Result<(), RuntimeError> {
        let bytes = serde_json::to_vec_pretty(checkpoint).map_err(|e| RuntimeError::State {
            location: self.dir.display().to_string(),
            message: format!("cannot encode checkpoint: {e}"),
        })?;
        let store = self.clone();
        tokio::task::spawn_blocking(move || store.save_blocking(&bytes))
            .await
            .map_err(|e| RuntimeError::State {
                location: self.dir.display().to_string(),
                message: format!("writer task failed: {e}"),
            })?
    }

    fn describe(&self) -> String {
        format!("directory {}", self.dir.display())
    }
}

/// Checkpoints in memory only: a restart starts from scratch. For tests and for pipelines
/// without `state.dir`.
#[derive(Debug, Default)]
pub struct MemoryStateStore {
    latest: Mutex<Option<Checkpoint>>,
}

#[async_trait]
impl StateStore for MemoryStateStore {
    async fn load(&self) -> Result<Option<Checkpoint>, RuntimeError> {
        Ok(self.latest.lock().map(|g| g.clone()).unwrap_or_default())
    }

    async fn save(&self, checkpoint: &Checkpoint) -> Result<(), RuntimeError> {
        if let Ok(mut g) = self.latest.lock() {
            *g = Some(checkpoint.clone());
        }
        Ok(())
    }

    fn describe(&self) -> String {
        "memory (not kept across restarts)".into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn file_store_round_trips_and_replaces() {
        let dir = tempfile::tempdir().unwrap();
        let store = FileStateStore::new(dir.path().join("state"));
        assert!(store.load().await.unwrap().is_none());
        for id in 1..=3 {
            let cp = Checkpoint::new(
                "p",
                "values",
                "values",
                CheckpointId(id),
                SourceOffset(serde_json::json!({"n": id})),
                vec![Committable(serde_json::json!({"label": format!("l{id}")}))],
            );
            store.save(&cp).await.unwrap();
            assert_eq!(store.load().await.unwrap(), Some(cp));
        }
        assert!(!dir.path().join("state/checkpoint.json.tmp").exists());
    }

    #[tokio::test]
    async fn a_format_1_checkpoint_still_loads() {
        let dir = tempfile::tempdir().unwrap();
        let v1 = r#"{"format_version":1,"pipeline":"p","source_type":"mysql","sink_type":"doris",
            "id":7,"offset":{"file":"b.000001","pos":4},"committables":[]}"#;
        std::fs::write(dir.path().join(CHECKPOINT_FILE), v1).unwrap();
        let cp = FileStateStore::new(dir.path())
            .load()
            .await
            .unwrap()
            .unwrap();
        assert_eq!(cp.id, CheckpointId(7));
        assert_eq!(cp.schemas, SchemaState::default());
    }

    #[tokio::test]
    async fn a_corrupt_checkpoint_is_a_clear_error() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(CHECKPOINT_FILE), b"{half").unwrap();
        let err = FileStateStore::new(dir.path()).load().await.unwrap_err();
        assert!(
            err.to_string().contains("not a readable checkpoint"),
            "{err}"
        );
    }
}
