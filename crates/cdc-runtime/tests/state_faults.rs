//! The state directory failing under the pipeline: disk full, read-only, a failing store.
//! In every case the pipeline stops with a message naming the state location, the last
//! checkpoint stays readable, and a restart delivers every event exactly once.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers may panic

use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

use async_trait::async_trait;
use cdc_api::{
    CheckpointId, Column, DataChangeEvent, DataType, DataTypeKind, Event, OwnerEpoch, Schema,
    SchemaChangeEvent, SourceOffset, TableId, Value,
};
use cdc_runtime::{
    Checkpoint, FileStateStore, MemoryStateStore, Ownership, Pipeline, PipelineDefinition,
    RuntimeError, StateStore,
};
use cdc_testkit::{register_event_set, test_registry, values_database};

/// A store whose saves fail, as a full disk does, once `good_saves` succeeded.
struct FullAfter {
    inner: Arc<MemoryStateStore>,
    good_saves: AtomicU32,
}

#[async_trait]
impl StateStore for FullAfter {
    async fn claim(&self) -> Result<Ownership, RuntimeError> {
        self.inner.claim().await
    }

    async fn verify(&self, epoch: OwnerEpoch) -> Result<(), RuntimeError> {
        self.inner.verify(epoch).await
    }

    async fn settle(&self, epoch: OwnerEpoch) -> Result<(), RuntimeError> {
        self.inner.settle(epoch).await
    }

    async fn load(&self) -> Result<Option<Checkpoint>, RuntimeError> {
        self.inner.load().await
    }

    async fn save(&self, checkpoint: &Checkpoint) -> Result<(), RuntimeError> {
        if self.good_saves.load(Ordering::SeqCst) == 0 {
            return Err(RuntimeError::State {
                location: "directory /state".into(),
                message: format!(
                    "cannot write: {}",
                    std::io::Error::from_raw_os_error(28) // ENOSPC
                ),
            });
        }
        self.good_saves.fetch_sub(1, Ordering::SeqCst);
        self.inner.save(checkpoint).await
    }

    fn describe(&self) -> String {
        "directory /state".into()
    }
}

fn events(rows: i64) -> Vec<Event> {
    let t = TableId::new("db", "t");
    let mut out: Vec<Event> = vec![
        SchemaChangeEvent::CreateTable {
            table_id: t.clone(),
            schema: Schema::new(vec![
                Column::new("id", DataType::new(DataTypeKind::BigInt).not_null()),
                Column::new("v", DataType::new(DataTypeKind::Int)),
            ])
            .with_primary_key(["id"]),
        }
        .into(),
    ];
    for i in 0..rows {
        out.push(DataChangeEvent::insert(t.clone(), vec![Value::BigInt(i), Value::Int(0)]).into());
        if i % 3 == 0 {
            out.push(
                DataChangeEvent::update(
                    t.clone(),
                    vec![Value::BigInt(i), Value::Int(0)],
                    vec![Value::BigInt(i), Value::Int(1)],
                )
                .into(),
            );
        }
    }
    out
}

#[tokio::test]
async fn a_full_state_disk_stops_the_pipeline_and_a_restart_loses_nothing() {
    let evs = events(300);
    register_event_set("state-full", evs.clone());
    let text = "source: {type: values, event-set: state-full, batch-size: 10, batch-interval: 10ms}\n\
                sink: {type: values, sink-id: state-full}\n\
                pipeline: {name: state-full, checkpoint.interval: 100ms}\n";
    let def = PipelineDefinition::from_yaml_str(text, "s.yaml").unwrap();
    let inner = Arc::new(MemoryStateStore::default());
    let full = Arc::new(FullAfter {
        inner: inner.clone(),
        good_saves: AtomicU32::new(2),
    });
    let err = Pipeline::build(&def, &test_registry())
        .unwrap()
        .with_state_store(full)
        .run(std::future::pending())
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("/state") && err.contains("No space left on device"),
        "{err}"
    );
    let kept = inner
        .load()
        .await
        .unwrap()
        .expect("the last good checkpoint");
    assert_eq!(kept.id, CheckpointId(2));

    // Only what the kept checkpoint covers is visible; the rest was aborted.
    let db = values_database("state-full");
    let visible_before = db.lock().unwrap().log.len();
    let covered = kept.offset.0["next"].as_u64().unwrap() as usize;
    assert_eq!(
        visible_before, covered,
        "nothing beyond the kept checkpoint is visible"
    );

    // The disk has room again: the restart resumes and delivers the rest exactly once.
    let summary = Pipeline::build(&def, &test_registry())
        .unwrap()
        .with_state_store(inner)
        .run(std::future::pending())
        .await
        .unwrap();
    assert!(summary.resumed);
    assert_eq!(db.lock().unwrap().log, evs);
}

#[tokio::test]
async fn a_torn_temporary_file_from_a_crash_mid_write_is_ignored() {
    // A crash while writing leaves a temporary file half written; the rename never
    // happened, so the previous checkpoint is the valid one.
    let dir = tempfile::tempdir().unwrap();
    let store = FileStateStore::new(dir.path());
    let owner = store.claim().await.unwrap().epoch;
    let cp = Checkpoint::new(
        "p",
        "values",
        "values",
        CheckpointId(4),
        SourceOffset(serde_json::json!({"next": 40})),
        Vec::new(),
    )
    .with_owner(owner);
    store.save(&cp).await.unwrap();
    let torn = dir
        .path()
        .join(format!("checkpoint.json.tmp.{}.99", std::process::id()));
    std::fs::write(&torn, b"{\"format_version\":3,\"pipe").unwrap();
    assert_eq!(store.load().await.unwrap(), Some(cp.clone()));
    let next = Checkpoint {
        id: CheckpointId(5),
        ..cp
    };
    store.save(&next).await.unwrap();
    assert_eq!(store.load().await.unwrap(), Some(next));
    // The next claim of the directory removes the leftover.
    drop(store);
    FileStateStore::new(dir.path()).claim().await.unwrap();
    assert!(!torn.exists());
}

/// Runs `inner_disk_full_and_read_only` in a private mount namespace (`unshare -Urm`), where
/// it may mount a tiny tmpfs without touching the machine's mounts.
#[test]
fn disk_full_and_read_only_state_directories() {
    let exe = std::env::current_exe().unwrap();
    let out = Command::new("unshare")
        .args(["-Urm", "--"])
        .arg(&exe)
        .args([
            "--exact",
            "inner_disk_full_and_read_only",
            "--ignored",
            "--nocapture",
        ])
        .env("CDC_STATE_FAULT_INNER", "1")
        .output()
        .expect("`unshare` (util-linux) is needed to mount a private tmpfs for this test");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && stdout.contains("1 passed"),
        "the state-dir fault test failed inside `unshare -Urm` (needs user namespaces or root):\n{stdout}\n{stderr}"
    );
}

fn mount(args: &[&str], dir: &Path) {
    let status = Command::new("mount").args(args).arg(dir).status().unwrap();
    assert!(status.success(), "mount {args:?} {} failed", dir.display());
}

#[tokio::test]
#[ignore = "runs inside `unshare -Urm` through disk_full_and_read_only_state_directories"]
async fn inner_disk_full_and_read_only() {
    assert_eq!(
        std::env::var("CDC_STATE_FAULT_INNER").as_deref(),
        Ok("1"),
        "run through disk_full_and_read_only_state_directories"
    );
    let dir = tempfile::tempdir().unwrap();
    mount(&["-t", "tmpfs", "-o", "size=64k", "tmpfs"], dir.path());
    let store = FileStateStore::new(dir.path().join("state"));
    let owner = store.claim().await.unwrap().epoch;
    let checkpoint = |id: u64| {
        Checkpoint::new(
            "p",
            "values",
            "values",
            CheckpointId(id),
            SourceOffset(serde_json::json!({"next": id, "pad": "x".repeat(2000)})),
            Vec::new(),
        )
        .with_owner(owner)
    };
    store.save(&checkpoint(1)).await.unwrap();

    // Fill the disk.
    let filler = dir.path().join("filler");
    let mut file = std::fs::File::create(&filler).unwrap();
    let block = vec![0u8; 4096];
    while std::io::Write::write_all(&mut file, &block).is_ok() {}
    drop(file);
    let err = store.save(&checkpoint(2)).await.unwrap_err().to_string();
    assert!(
        err.contains("No space left on device") && err.contains("state"),
        "{err}"
    );
    assert_eq!(
        store.load().await.unwrap(),
        Some(checkpoint(1)),
        "the last checkpoint stays valid"
    );

    // Room again: saving works.
    std::fs::remove_file(&filler).unwrap();
    store.save(&checkpoint(2)).await.unwrap();

    // Read-only.
    mount(&["-o", "remount,ro"], dir.path());
    let err = store.save(&checkpoint(3)).await.unwrap_err().to_string();
    assert!(err.contains("Read-only file system"), "{err}");
    assert_eq!(store.load().await.unwrap(), Some(checkpoint(2)));
    // Holding the lock did not keep the disk from going read-only, and a new run on it
    // is refused with the reason.
    let err = FileStateStore::new(dir.path().join("state"))
        .claim()
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("Read-only file system"), "{err}");
    mount(&["-o", "remount,rw"], dir.path());
    let _ = Command::new("umount").arg(dir.path()).status();
}
