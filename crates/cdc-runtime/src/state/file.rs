//! Checkpoints in a local directory, owned by one run at a time.
//!
//! The directory holds:
//! * `LOCK`: an exclusive lock (`flock`) held by the owning process for the whole run; its
//!   content names the holder (pid, host, since when) for the message a second instance
//!   gets. The lock ends with the process, so a crash never leaves the directory locked.
//! * `owner.json`: the owner record — the current epoch and the earlier, unsettled ones.
//! * `checkpoint.json`: the latest checkpoint, with a CRC-32 of its content.
//!
//! Both JSON files are replaced atomically: a temporary file with a name no other writer
//! uses, fsynced, renamed over the old one, then the directory fsynced. Files are created
//! 0600 and the directory 0700 (Unix): they hold target transaction labels and table
//! schemas.

use std::collections::BTreeSet;
use std::fmt;
use std::fs::{File, OpenOptions};
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use async_trait::async_trait;
use cdc_api::OwnerEpoch;
use serde::{Deserialize, Serialize};

use super::checksum::crc32;
use super::{Checkpoint, FORMAT_VERSION, Ownership, StateStore, next_epoch};
use crate::RuntimeError;

const CHECKPOINT_FILE: &str = "checkpoint.json";
const OWNER_FILE: &str = "owner.json";
const LOCK_FILE: &str = "LOCK";
/// The version of `owner.json` this build writes and reads.
const OWNER_FORMAT: u32 = 1;
/// Temporary files are `<file>.tmp.<pid>.<sequence>`.
const TEMP_INFIX: &str = ".tmp";
/// The checksum field added to `checkpoint.json` (not part of [`Checkpoint`]).
const CHECKSUM_FIELD: &str = "checksum";
const CHECKSUM_PREFIX: &str = "crc32:";

/// Checkpoints in a local directory (see the module documentation for its files).
///
/// [`claim`](StateStore::claim) takes the directory's lock, non-blocking: a second
/// instance on the same directory is refused with a message naming the holder. The lock is
/// kept until [`release`](StateStore::release) or until the store is dropped. Every
/// [`save`](StateStore::save) and [`verify`](StateStore::verify) re-checks that this
/// instance still holds the lock, that `LOCK` is still the file it locked, and that
/// `owner.json` still names its epoch, so an instance whose directory was taken over (a
/// deleted `LOCK`, a copied directory with a file system that does not share locks) stops.
#[derive(Debug)]
pub struct FileStateStore {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    dir: PathBuf,
    /// The claim this instance holds.
    held: Mutex<Option<Held>>,
    /// Makes temporary file names unique within the process (the pid does across them).
    temp_sequence: AtomicU64,
    /// Test hook: syncing the directory fails, as after the rename on a failing disk.
    #[cfg(test)]
    fail_directory_sync: std::sync::atomic::AtomicBool,
}

#[derive(Debug)]
struct Held {
    /// Open as long as the claim lasts: closing it releases the lock.
    lock: File,
    epoch: OwnerEpoch,
    /// The locked file's (device, inode), to notice `LOCK` being deleted or replaced.
    identity: Option<(u64, u64)>,
}

/// Who holds a directory: written into `LOCK` and `owner.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(super) struct Holder {
    pid: u32,
    host: String,
    /// RFC 3339, UTC.
    since: String,
}

impl Holder {
    pub(super) fn current() -> Self {
        let millis = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX));
        Self {
            pid: std::process::id(),
            host: host_name(),
            since: chrono::DateTime::from_timestamp_millis(millis).map_or_else(
                || format!("{millis} ms after the Unix epoch"),
                |t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            ),
        }
    }
}

impl fmt::Display for Holder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "pid {} on host {} since {}",
            self.pid, self.host, self.since
        )
    }
}

/// This machine's name, from the kernel or `/etc/hostname` (no libc call: the crate has no
/// unsafe code), else `$HOSTNAME`; only ever shown in messages.
fn host_name() -> String {
    ["/proc/sys/kernel/hostname", "/etc/hostname"]
        .iter()
        .filter_map(|p| std::fs::read_to_string(p).ok())
        .map(|s| s.trim().to_string())
        .chain(std::env::var("HOSTNAME").ok())
        .find(|s| !s.is_empty())
        .unwrap_or_else(|| "(unknown)".into())
}

/// `owner.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct OwnerRecord {
    format_version: u32,
    /// The run that owns the directory.
    epoch: OwnerEpoch,
    /// Earlier runs not settled yet, ascending.
    #[serde(default)]
    earlier: Vec<OwnerEpoch>,
    /// Where the owning run was started.
    holder: Holder,
}

impl FileStateStore {
    /// A store in `dir` (created, 0700, when first claimed).
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self {
            inner: Arc::new(Inner {
                dir: dir.into(),
                held: Mutex::new(None),
                temp_sequence: AtomicU64::new(0),
                #[cfg(test)]
                fail_directory_sync: std::sync::atomic::AtomicBool::new(false),
            }),
        }
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.inner.dir
    }

    /// Test hook: make the directory sync after the rename fail from now on.
    #[cfg(test)]
    fn fail_directory_sync(&self, fail: bool) {
        self.inner
            .fail_directory_sync
            .store(fail, std::sync::atomic::Ordering::SeqCst);
    }

    /// Runs `op` on a blocking thread (file I/O and fsync must not stall the runtime).
    async fn blocking<T: Send + 'static>(
        &self,
        op: impl FnOnce(&Inner) -> Result<T, RuntimeError> + Send + 'static,
    ) -> Result<T, RuntimeError> {
        let inner = Arc::clone(&self.inner);
        tokio::task::spawn_blocking(move || op(&inner))
            .await
            .map_err(|e| RuntimeError::State {
                location: self.inner.dir.display().to_string(),
                message: format!("state task failed: {e}"),
            })?
    }
}

impl Inner {
    fn held(&self) -> MutexGuard<'_, Option<Held>> {
        // Every update under this lock is a single assignment: nothing half-done to see.
        self.held.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn location(&self) -> String {
        self.dir.display().to_string()
    }

    fn error(&self, what: &str, e: &std::io::Error) -> RuntimeError {
        RuntimeError::State {
            location: self.location(),
            message: format!("{what}: {e}"),
        }
    }

    fn fenced(&self, why: &str) -> RuntimeError {
        RuntimeError::Fenced {
            location: self.location(),
            message: format!(
                "{why}; this run stops before committing or aborting anything in the target. Run one instance per state directory (a lock reaches other hosts only on file systems that share locks)"
            ),
        }
    }

    fn claim(&self) -> Result<Ownership, RuntimeError> {
        let mut held = self.held();
        let (lock, identity) = match held.take() {
            // This instance claimed before (an embedder running the pipeline again on the
            // same store): the lock is ours already, and the new epoch fences the earlier
            // run wherever it still is.
            Some(h) => (h.lock, h.identity),
            None => self.lock()?,
        };
        self.remove_temporary_files();
        let mut earlier = BTreeSet::new();
        if let Some(previous) = self.read_owner()? {
            earlier.extend(previous.earlier);
            earlier.insert(previous.epoch);
        }
        // Also without (or with an older) owner record: the run that wrote the checkpoint
        // may have prepared more after it, LEGACY when a version without epochs wrote it.
        earlier.extend(self.checkpoint_owner());
        let epoch = next_epoch(earlier.last().copied());
        let record = OwnerRecord {
            format_version: OWNER_FORMAT,
            epoch,
            earlier: earlier.into_iter().collect(),
            holder: Holder::current(),
        };
        self.write_owner(&record)?;
        *held = Some(Held {
            lock,
            epoch,
            identity,
        });
        Ok(Ownership::new(epoch, record.earlier))
    }

    /// Creates the directory and takes `LOCK`, without waiting.
    fn lock(&self) -> Result<(File, Option<(u64, u64)>), RuntimeError> {
        create_private_directory(&self.dir)
            .map_err(|e| self.error("cannot create the state directory", &e))?;
        let path = self.dir.join(LOCK_FILE);
        let mut create = OpenOptions::new();
        // Not truncated: the holder's name must stay readable to a refused instance.
        create.write(true).create(true).truncate(false);
        private_mode(&mut create);
        create
            .open(&path)
            .map_err(|e| self.error("cannot create the lock file LOCK", &e))?;
        // The lock is taken on a read-only handle, so that holding it for the whole run
        // never keeps the file system from being remounted read-only (a file open for
        // writing would).
        let file =
            File::open(&path).map_err(|e| self.error("cannot open the lock file LOCK", &e))?;
        // `File::try_lock` (flock, non-blocking) is stable since Rust 1.89, the toolchain
        // this project builds with; the declared rust-version stays 1.85 because raising
        // it turns on lints (let-chains) the rest of the code base does not follow yet.
        #[allow(clippy::incompatible_msrv)]
        let locked = file.try_lock();
        match locked {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => return Err(self.in_use(&path)),
            Err(std::fs::TryLockError::Error(e)) => {
                return Err(self.error("cannot lock LOCK", &e));
            }
        }
        // Through a second handle; closing it keeps the lock (an flock belongs to the
        // handle that took it).
        let holder = serde_json::to_string(&Holder::current()).unwrap_or_default();
        OpenOptions::new()
            .write(true)
            .open(&path)
            .and_then(|mut w| {
                w.set_len(0)?;
                w.write_all(format!("{holder}\n").as_bytes())
            })
            .map_err(|e| self.error("cannot write the lock file LOCK", &e))?;
        let identity = file.metadata().ok().and_then(|m| identity(&m));
        Ok((file, identity))
    }

    fn in_use(&self, lock: &Path) -> RuntimeError {
        let holder = std::fs::read_to_string(lock)
            .ok()
            .and_then(|t| serde_json::from_str::<Holder>(t.trim()).ok())
            .map_or_else(
                || "another process (LOCK does not name it)".to_string(),
                |h| h.to_string(),
            );
        RuntimeError::State {
            location: self.location(),
            message: format!(
                "in use by {holder}: another run of this pipeline owns this state directory. Stop that run first, or give this one its own state directory (pipeline.state.dir or --state-dir); two runs on one state would deliver rows twice"
            ),
        }
    }

    /// Temporary files left by a crash mid-write: never renamed, so never valid.
    fn remove_temporary_files(&self) {
        let Ok(entries) = std::fs::read_dir(&self.dir) else {
            return;
        };
        for entry in entries.flatten() {
            let name = entry.file_name();
            let name = name.to_string_lossy();
            if [CHECKPOINT_FILE, OWNER_FILE]
                .iter()
                .any(|f| name.starts_with(&format!("{f}{TEMP_INFIX}")))
            {
                let _ = std::fs::remove_file(entry.path());
            }
        }
    }

    fn read_owner(&self) -> Result<Option<OwnerRecord>, RuntimeError> {
        let path = self.dir.join(OWNER_FILE);
        let bytes = match std::fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(self.error("cannot read owner.json", &e)),
        };
        let record: OwnerRecord = serde_json::from_slice(&bytes).map_err(|e| RuntimeError::State {
            location: path.display().to_string(),
            message: format!(
                "not a readable owner record ({e}); it names the run that owns this directory: if no instance runs on it, remove the file (prepared work of earlier runs it listed then waits for the target's transaction timeout)"
            ),
        })?;
        if record.format_version > OWNER_FORMAT {
            return Err(RuntimeError::State {
                location: path.display().to_string(),
                message: format!(
                    "written by a newer version (owner format {}, this build reads {OWNER_FORMAT}); run the newer version",
                    record.format_version
                ),
            });
        }
        Ok(Some(record))
    }

    fn write_owner(&self, record: &OwnerRecord) -> Result<(), RuntimeError> {
        let bytes = serde_json::to_vec_pretty(record).map_err(|e| RuntimeError::State {
            location: self.location(),
            message: format!("cannot encode the owner record: {e}"),
        })?;
        self.replace(OWNER_FILE, &bytes)
    }

    /// The epoch of the run that wrote `checkpoint.json`, if there is one:
    /// [`OwnerEpoch::LEGACY`] for files without it, and for files that cannot be read (the
    /// load reports those; the claim only errs on the side of cleaning up more).
    fn checkpoint_owner(&self) -> Option<OwnerEpoch> {
        match std::fs::read(self.dir.join(CHECKPOINT_FILE)) {
            Ok(bytes) => Some(
                serde_json::from_slice::<serde_json::Value>(&bytes)
                    .ok()
                    .and_then(|v| v.get("owner").and_then(serde_json::Value::as_u64))
                    .map_or(OwnerEpoch::LEGACY, OwnerEpoch),
            ),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(_) => Some(OwnerEpoch::LEGACY),
        }
    }

    /// `Ok` while this instance holds the claim of `epoch`, `LOCK` is the file it locked
    /// and `owner.json` names `epoch`.
    fn verify(&self, held: Option<&Held>, epoch: OwnerEpoch) -> Result<(), RuntimeError> {
        let Some(held) = held else {
            return Err(self.fenced(&format!(
                "run {epoch} does not hold this directory (it never claimed it, or its claim ended)"
            )));
        };
        if held.epoch != epoch {
            return Err(self.fenced(&format!(
                "run {epoch} was superseded by run {}, which claimed this directory through the same store",
                held.epoch
            )));
        }
        if let Some(locked) = held.identity {
            let current = std::fs::metadata(self.dir.join(LOCK_FILE))
                .ok()
                .and_then(|m| identity(&m));
            if current != Some(locked) {
                return Err(self.fenced(&format!(
                    "the LOCK file run {epoch} holds was removed or replaced, so another instance may have claimed the directory"
                )));
            }
        }
        match self.read_owner()? {
            Some(owner) if owner.epoch == epoch => Ok(()),
            Some(owner) => Err(self.fenced(&format!(
                "owner.json names run {} ({}), not this run {epoch}: another instance took over this pipeline's state",
                owner.epoch, owner.holder
            ))),
            None => Err(self.fenced(&format!(
                "owner.json is gone, so run {epoch} cannot prove it still owns the directory"
            ))),
        }
    }

    fn save(&self, owner: OwnerEpoch, bytes: &[u8]) -> Result<(), RuntimeError> {
        // Held across the write: a claim or settle through this store waits for it.
        let held = self.held();
        self.verify(held.as_ref(), owner)?;
        self.replace(CHECKPOINT_FILE, bytes)
    }

    fn settle(&self, epoch: OwnerEpoch) -> Result<(), RuntimeError> {
        let held = self.held();
        self.verify(held.as_ref(), epoch)?;
        let Some(mut record) = self.read_owner()? else {
            return Err(self.fenced("owner.json is gone"));
        };
        if record.earlier.is_empty() {
            return Ok(());
        }
        record.earlier.clear();
        self.write_owner(&record)
    }

    /// Replaces `name` atomically: unique temporary file, fsync, rename, directory fsync.
    /// A failure before the rename leaves the old file ([`RuntimeError::State`]); one
    /// after it may or may not have made the new one durable
    /// ([`RuntimeError::StateMaybeSaved`]).
    fn replace(&self, name: &str, bytes: &[u8]) -> Result<(), RuntimeError> {
        let sequence = self.temp_sequence.fetch_add(1, Ordering::Relaxed);
        let temporary = self.dir.join(format!(
            "{name}{TEMP_INFIX}.{}.{sequence}",
            std::process::id()
        ));
        let written = create_private_file(&temporary).and_then(|mut file| {
            file.write_all(bytes)?;
            file.sync_all()
        });
        if let Err(e) = written {
            let _ = std::fs::remove_file(&temporary);
            return Err(self.error(&format!("cannot write {name}"), &e));
        }
        if let Err(e) = std::fs::rename(&temporary, self.dir.join(name)) {
            let _ = std::fs::remove_file(&temporary);
            return Err(self.error(&format!("cannot replace {name}"), &e));
        }
        self.sync_directory()
            .map_err(|e| RuntimeError::StateMaybeSaved {
                location: self.location(),
                message: format!(
                    "{name} was replaced but syncing the directory failed ({e}), so the new version may or may not survive a crash"
                ),
            })
    }

    fn sync_directory(&self) -> std::io::Result<()> {
        #[cfg(test)]
        if self
            .fail_directory_sync
            .load(std::sync::atomic::Ordering::SeqCst)
        {
            return Err(std::io::Error::other("injected directory sync failure"));
        }
        File::open(&self.dir).and_then(|d| d.sync_all())
    }
}

pub(super) fn create_private_directory(dir: &Path) -> std::io::Result<()> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt as _;
        builder.mode(0o700);
    }
    builder.create(dir)
}

fn private_mode(options: &mut OpenOptions) {
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        options.mode(0o600);
    }
    #[cfg(not(unix))]
    let _ = options;
}

fn create_private_file(path: &Path) -> std::io::Result<File> {
    let mut options = OpenOptions::new();
    options.write(true).create_new(true);
    private_mode(&mut options);
    options.open(path)
}

/// A file's (device, inode); `None` where the platform has no such notion.
#[cfg_attr(unix, allow(clippy::unnecessary_wraps))] // `None` on other platforms
fn identity(metadata: &std::fs::Metadata) -> Option<(u64, u64)> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt as _;
        Some((metadata.dev(), metadata.ino()))
    }
    #[cfg(not(unix))]
    {
        let _ = metadata;
        None
    }
}

/// `checkpoint.json`'s bytes: the checkpoint's JSON plus a `checksum` field, the CRC-32 of
/// the compact JSON of everything else.
fn encode(checkpoint: &Checkpoint) -> Result<Vec<u8>, serde_json::Error> {
    let mut value = serde_json::to_value(checkpoint)?;
    let sum = crc32(&serde_json::to_vec(&value)?);
    if let Some(fields) = value.as_object_mut() {
        fields.insert(
            CHECKSUM_FIELD.into(),
            format!("{CHECKSUM_PREFIX}{sum:08x}").into(),
        );
    }
    serde_json::to_vec_pretty(&value)
}

/// Reads `checkpoint.json`: the format version first (a newer file gets its own message),
/// then the checksum when there is one (files before format 3 have none), then the fields.
fn decode(bytes: &[u8], path: &Path) -> Result<Checkpoint, RuntimeError> {
    let unreadable = |e: &dyn fmt::Display| RuntimeError::State {
        location: path.display().to_string(),
        message: format!(
            "not a readable checkpoint ({e}); restore it from a backup, or move the directory away to start over"
        ),
    };
    let mut value: serde_json::Value = serde_json::from_slice(bytes).map_err(|e| unreadable(&e))?;
    let version = value
        .get("format_version")
        .and_then(serde_json::Value::as_u64)
        .unwrap_or(0);
    if version > u64::from(FORMAT_VERSION) {
        return Err(RuntimeError::State {
            location: path.display().to_string(),
            message: format!(
                "written by a newer version (format {version}, this build reads up to {FORMAT_VERSION}); run the newer version, or start over with `cdc run --reset`"
            ),
        });
    }
    let stated = value
        .as_object_mut()
        .and_then(|fields| fields.shift_remove(CHECKSUM_FIELD));
    if let Some(stated) = stated {
        let actual = crc32(&serde_json::to_vec(&value).map_err(|e| unreadable(&e))?);
        let expected = stated
            .as_str()
            .and_then(|s| s.strip_prefix(CHECKSUM_PREFIX))
            .and_then(|h| u32::from_str_radix(h, 16).ok());
        if expected != Some(actual) {
            return Err(RuntimeError::State {
                location: path.display().to_string(),
                message: format!(
                    "checksum mismatch (the file says {stated}, its content gives {CHECKSUM_PREFIX}{actual:08x}): it was changed or damaged after it was written. Restore it from a backup; if you edited it on purpose, delete its \"checksum\" line"
                ),
            });
        }
    }
    serde_json::from_value(value).map_err(|e| unreadable(&e))
}

#[async_trait]
impl StateStore for FileStateStore {
    async fn claim(&self) -> Result<Ownership, RuntimeError> {
        self.blocking(Inner::claim).await
    }

    async fn verify(&self, epoch: OwnerEpoch) -> Result<(), RuntimeError> {
        self.blocking(move |inner| inner.verify(inner.held().as_ref(), epoch))
            .await
    }

    async fn load(&self) -> Result<Option<Checkpoint>, RuntimeError> {
        let path = self.inner.dir.join(CHECKPOINT_FILE);
        let bytes = match tokio::fs::read(&path).await {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(self.inner.error("cannot read checkpoint.json", &e)),
        };
        decode(&bytes, &path).map(Some)
    }

    async fn save(&self, checkpoint: &Checkpoint) -> Result<(), RuntimeError> {
        let bytes = encode(checkpoint).map_err(|e| RuntimeError::State {
            location: self.inner.location(),
            message: format!("cannot encode checkpoint: {e}"),
        })?;
        let owner = checkpoint.owner;
        self.blocking(move |inner| inner.save(owner, &bytes)).await
    }

    async fn settle(&self, epoch: OwnerEpoch) -> Result<(), RuntimeError> {
        self.blocking(move |inner| inner.settle(epoch)).await
    }

    async fn release(&self, epoch: OwnerEpoch) {
        let mut held = self.inner.held();
        if held.as_ref().is_some_and(|h| h.epoch == epoch) {
            // Closing the file releases the lock.
            *held = None;
        }
    }

    fn describe(&self) -> String {
        format!("directory {}", self.inner.dir.display())
    }
}

#[cfg(test)]
mod tests {
    use cdc_api::{CheckpointId, Committable, SourceOffset};

    use super::*;
    use crate::SchemaState;

    fn checkpoint(id: u64, owner: OwnerEpoch) -> Checkpoint {
        Checkpoint::new(
            "p",
            "values",
            "values",
            CheckpointId(id),
            SourceOffset(serde_json::json!({"n": id, "f": 1.5, "s": "x\u{e9}"})),
            vec![Committable(serde_json::json!({"label": format!("l{id}")}))],
        )
        .with_owner(owner)
    }

    async fn claim_in(dir: &Path) -> (FileStateStore, Ownership) {
        let store = FileStateStore::new(dir);
        let ownership = store.claim().await.unwrap();
        (store, ownership)
    }

    fn names(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }

    #[tokio::test]
    async fn file_store_round_trips_and_replaces() {
        let dir = tempfile::tempdir().unwrap();
        let store = FileStateStore::new(dir.path().join("state"));
        assert!(store.load().await.unwrap().is_none());
        let owner = store.claim().await.unwrap();
        for id in 1..=3 {
            let cp = checkpoint(id, owner.epoch).with_committed((id > 1).then(|| {
                super::super::CommittedPosition {
                    id: CheckpointId(id - 1),
                    offset: SourceOffset(serde_json::json!({"n": id - 1})),
                    schemas: (id == 3).then(SchemaState::default),
                }
            }));
            store.save(&cp).await.unwrap();
            assert_eq!(store.load().await.unwrap(), Some(cp));
        }
        assert_eq!(
            names(&dir.path().join("state")),
            ["LOCK", "checkpoint.json", "owner.json"],
            "no temporary file is left"
        );
        let text = std::fs::read_to_string(dir.path().join("state/checkpoint.json")).unwrap();
        assert!(text.contains("\"checksum\": \"crc32:"), "{text}");
        assert!(text.contains("\"format_version\": 3"), "{text}");
    }

    #[tokio::test]
    async fn a_second_instance_is_refused_with_the_holder_and_claims_after_the_first_ends() {
        let dir = tempfile::tempdir().unwrap();
        let first = FileStateStore::new(dir.path());
        let one = first.claim().await.unwrap();
        assert!(one.earlier.is_empty(), "{one:?}");

        let second = FileStateStore::new(dir.path());
        let err = second.claim().await.unwrap_err().to_string();
        assert!(
            err.contains(&format!("in use by pid {} on host ", std::process::id()))
                && err.contains(" since 20")
                && err.contains("Stop that run first")
                && err.contains(&dir.path().display().to_string()),
            "{err}"
        );
        // The refused claim changed nothing: the first still owns the directory.
        first.verify(one.epoch).await.unwrap();

        drop(first);
        let two = second.claim().await.unwrap();
        assert!(two.epoch > one.epoch);
        assert_eq!(two.earlier, vec![one.epoch]);

        // Released explicitly, another store can claim without the first being dropped.
        second.release(two.epoch).await;
        assert!(matches!(
            second.verify(two.epoch).await,
            Err(RuntimeError::Fenced { .. })
        ));
        let third = FileStateStore::new(dir.path()).claim().await.unwrap();
        assert_eq!(third.earlier, vec![one.epoch, two.epoch]);
    }

    #[tokio::test]
    async fn earlier_runs_are_listed_until_the_owner_settles() {
        let dir = tempfile::tempdir().unwrap();
        let (store, a) = claim_in(dir.path()).await;
        drop(store);
        let (store, b) = claim_in(dir.path()).await;
        assert_eq!(b.earlier, vec![a.epoch]);
        drop(store);
        // b never checkpointed: c must clean up after both.
        let (store, c) = claim_in(dir.path()).await;
        assert_eq!(c.earlier, vec![a.epoch, b.epoch]);
        store.save(&checkpoint(1, c.epoch)).await.unwrap();
        store.settle(c.epoch).await.unwrap();
        drop(store);
        let (_store, d) = claim_in(dir.path()).await;
        assert_eq!(d.earlier, vec![c.epoch], "only the previous owner");
    }

    #[tokio::test]
    async fn a_checkpoint_from_before_epochs_makes_legacy_an_earlier_run() {
        let dir = tempfile::tempdir().unwrap();
        let v2 = r#"{"format_version":2,"pipeline":"p","source_type":"values","sink_type":"values",
            "id":7,"offset":{"next":4},"committables":[]}"#;
        std::fs::write(dir.path().join(CHECKPOINT_FILE), v2).unwrap();
        let store = FileStateStore::new(dir.path());
        let ownership = store.claim().await.unwrap();
        assert_eq!(ownership.earlier, vec![OwnerEpoch::LEGACY]);
        let cp = store.load().await.unwrap().unwrap();
        assert_eq!(
            (cp.id, cp.owner, cp.committed),
            (CheckpointId(7), OwnerEpoch::LEGACY, None)
        );
    }

    #[tokio::test]
    async fn a_taken_over_directory_fences_the_old_owner() {
        let dir = tempfile::tempdir().unwrap();
        let store = FileStateStore::new(dir.path());
        let mine = store.claim().await.unwrap();
        store.save(&checkpoint(1, mine.epoch)).await.unwrap();

        // Another instance took over (say, on a host whose file system does not share the
        // lock): it rewrote owner.json with its own, larger epoch.
        let path = dir.path().join(OWNER_FILE);
        let mut record: OwnerRecord =
            serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
        record.epoch = OwnerEpoch(mine.epoch.0 + 1);
        record.holder.host = "other-host".into();
        std::fs::write(&path, serde_json::to_vec(&record).unwrap()).unwrap();

        let err = store.verify(mine.epoch).await.unwrap_err();
        assert!(matches!(err, RuntimeError::Fenced { .. }), "{err}");
        let text = err.to_string();
        assert!(
            text.contains("other-host") && text.contains("took over"),
            "{text}"
        );
        let err = store.save(&checkpoint(2, mine.epoch)).await.unwrap_err();
        assert!(matches!(err, RuntimeError::Fenced { .. }), "{err}");
        assert_eq!(
            store.load().await.unwrap().unwrap().id,
            CheckpointId(1),
            "the refused save changed nothing"
        );
        assert!(store.settle(mine.epoch).await.is_err());
    }

    #[tokio::test]
    async fn a_replaced_lock_file_fences_the_old_owner() {
        let dir = tempfile::tempdir().unwrap();
        let store = FileStateStore::new(dir.path());
        let mine = store.claim().await.unwrap();
        // Someone deleted LOCK: a second instance can now lock a new file.
        std::fs::remove_file(dir.path().join(LOCK_FILE)).unwrap();
        let other = FileStateStore::new(dir.path());
        let theirs = other.claim().await.unwrap();
        assert!(theirs.earlier.contains(&mine.epoch));
        let err = store.verify(mine.epoch).await.unwrap_err().to_string();
        assert!(err.contains("removed or replaced"), "{err}");
        assert!(store.save(&checkpoint(1, mine.epoch)).await.is_err());
        other.save(&checkpoint(1, theirs.epoch)).await.unwrap();
    }

    #[tokio::test]
    async fn saving_or_verifying_without_a_claim_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let store = FileStateStore::new(dir.path());
        let err = store.save(&checkpoint(1, OwnerEpoch(5))).await.unwrap_err();
        assert!(matches!(err, RuntimeError::Fenced { .. }), "{err}");
        assert!(store.verify(OwnerEpoch(5)).await.is_err());
        let mine = store.claim().await.unwrap();
        // A checkpoint of another epoch is refused even through the owning store.
        let err = store
            .save(&checkpoint(1, OwnerEpoch(mine.epoch.0 - 1)))
            .await
            .unwrap_err();
        assert!(matches!(err, RuntimeError::Fenced { .. }), "{err}");
        // Claiming the same store again starts a new run and fences the previous one.
        let again = store.claim().await.unwrap();
        assert_eq!(again.earlier, vec![mine.epoch]);
        assert!(store.verify(mine.epoch).await.is_err());
        store.verify(again.epoch).await.unwrap();
    }

    #[cfg(unix)]
    #[tokio::test]
    async fn the_directory_is_private_and_so_are_its_files() {
        use std::os::unix::fs::PermissionsExt as _;
        let dir = tempfile::tempdir().unwrap();
        let state = dir.path().join("a/b/state");
        let store = FileStateStore::new(&state);
        let mine = store.claim().await.unwrap();
        store.save(&checkpoint(1, mine.epoch)).await.unwrap();
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&state), 0o700);
        for file in [LOCK_FILE, OWNER_FILE, CHECKPOINT_FILE] {
            assert_eq!(mode(&state.join(file)), 0o600, "{file}");
        }
    }

    #[tokio::test]
    async fn a_checksum_mismatch_is_a_clear_error_naming_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let store = FileStateStore::new(dir.path());
        let mine = store.claim().await.unwrap();
        store.save(&checkpoint(3, mine.epoch)).await.unwrap();
        let path = dir.path().join(CHECKPOINT_FILE);
        // One digit of the offset changed: still valid JSON, still a checkpoint.
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.contains("\"n\": 3"), "{text}");
        std::fs::write(&path, text.replace("\"n\": 3", "\"n\": 4")).unwrap();
        let err = store.load().await.unwrap_err().to_string();
        assert!(
            err.contains("checksum mismatch")
                && err.contains(&path.display().to_string())
                && err.contains("backup"),
            "{err}"
        );
        // Layout does not matter, only content: the same checkpoint compact still loads.
        let value: serde_json::Value = serde_json::from_str(&text).unwrap();
        std::fs::write(&path, serde_json::to_vec(&value).unwrap()).unwrap();
        assert_eq!(store.load().await.unwrap().unwrap().id, CheckpointId(3));
        // A deliberate edit without the checksum line loads.
        let mut value = value;
        value.as_object_mut().unwrap().remove(CHECKSUM_FIELD);
        value["id"] = 9.into();
        std::fs::write(&path, serde_json::to_vec_pretty(&value).unwrap()).unwrap();
        assert_eq!(store.load().await.unwrap().unwrap().id, CheckpointId(9));
        // A checksum that is not one.
        value[CHECKSUM_FIELD] = "md5:zz".into();
        std::fs::write(&path, serde_json::to_vec_pretty(&value).unwrap()).unwrap();
        let err = store.load().await.unwrap_err().to_string();
        assert!(err.contains("checksum mismatch"), "{err}");
    }

    #[tokio::test]
    async fn format_1_and_2_checkpoints_without_checksum_still_load() {
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
        assert_eq!(cp.owner, OwnerEpoch::LEGACY);

        let v2 = r#"{"format_version":2,"pipeline":"p","source_type":"mysql","sink_type":"doris",
            "id":8,"offset":{"file":"b.000001","pos":4},"committables":[{"label":"x"}],
            "schemas":{"source_tables":[{"namespace":"shop","table":"orders"}]}}"#;
        std::fs::write(dir.path().join(CHECKPOINT_FILE), v2).unwrap();
        let cp = FileStateStore::new(dir.path())
            .load()
            .await
            .unwrap()
            .unwrap();
        assert_eq!(cp.id, CheckpointId(8));
        assert_eq!(cp.committables.len(), 1);
        assert_eq!(cp.schemas.source_tables.len(), 1);
        assert_eq!(cp.committed, None);
    }

    #[tokio::test]
    async fn a_newer_format_and_a_corrupt_file_are_clear_errors() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(CHECKPOINT_FILE);
        std::fs::write(
            &path,
            r#"{"format_version":99,"checksum":"crc32:00000000"}"#,
        )
        .unwrap();
        let err = FileStateStore::new(dir.path())
            .load()
            .await
            .unwrap_err()
            .to_string();
        assert!(err.contains("newer version (format 99"), "{err}");
        std::fs::write(&path, b"{half").unwrap();
        let err = FileStateStore::new(dir.path())
            .load()
            .await
            .unwrap_err()
            .to_string();
        assert!(err.contains("not a readable checkpoint"), "{err}");
    }

    #[tokio::test]
    async fn a_failed_directory_sync_after_the_rename_is_maybe_saved() {
        let dir = tempfile::tempdir().unwrap();
        let store = FileStateStore::new(dir.path());
        let mine = store.claim().await.unwrap();
        store.save(&checkpoint(1, mine.epoch)).await.unwrap();
        store.fail_directory_sync(true);
        let err = store.save(&checkpoint(2, mine.epoch)).await.unwrap_err();
        assert!(matches!(err, RuntimeError::StateMaybeSaved { .. }), "{err}");
        assert!(err.to_string().contains("may or may not survive"), "{err}");
        // The rename happened: this process sees the new checkpoint.
        assert_eq!(store.load().await.unwrap().unwrap().id, CheckpointId(2));
        store.fail_directory_sync(false);

        // A failure before the rename is a plain State error and keeps the old file: here
        // every temporary name the store could pick next is taken.
        for sequence in 0..64 {
            let taken = format!("checkpoint.json.tmp.{}.{sequence}", std::process::id());
            std::fs::write(dir.path().join(taken), b"").unwrap();
        }
        let err = store.save(&checkpoint(3, mine.epoch)).await.unwrap_err();
        assert!(matches!(err, RuntimeError::State { .. }), "{err}");
        assert!(
            err.to_string().contains("cannot write checkpoint.json"),
            "{err}"
        );
        assert_eq!(store.load().await.unwrap().unwrap().id, CheckpointId(2));
    }

    #[tokio::test]
    async fn temporary_files_are_unique_and_leftovers_are_removed_at_the_claim() {
        let dir = tempfile::tempdir().unwrap();
        // A crash mid-write left these (the old fixed name, and a new-style one).
        std::fs::write(
            dir.path().join("checkpoint.json.tmp"),
            b"{\"format_version\":2,",
        )
        .unwrap();
        std::fs::write(dir.path().join("owner.json.tmp.1.0"), b"{").unwrap();
        let store = FileStateStore::new(dir.path());
        let mine = store.claim().await.unwrap();
        assert_eq!(names(dir.path()), ["LOCK", "owner.json"]);
        // Two saves at once through one store: distinct temporary names, no error.
        let store = Arc::new(store);
        let saves = (1..=8).map(|id| {
            let store = store.clone();
            tokio::spawn(async move { store.save(&checkpoint(id, mine.epoch)).await })
        });
        for save in saves {
            save.await.unwrap().unwrap();
        }
        assert_eq!(names(dir.path()), ["LOCK", "checkpoint.json", "owner.json"]);
    }
}
