//! Checkpoints in an object store: `s3://bucket/prefix`, `gs://bucket/prefix`,
//! `az://container/prefix` or `file:///dir`, through the `object_store` crate.
//!
//! An object store has no lock and no rename, so the state is kept as numbered
//! **generations**, each written once with a conditional create (S3 `If-None-Match: *`,
//! GCS `ifGenerationMatch=0`, Azure `If-None-Match: *`, a hard link for `file://`):
//!
//! ```text
//! <prefix>/state/00000000000000000007.json   one generation: the owner record and the
//!                                             latest checkpoint, with a CRC-32
//! ```
//!
//! The newest generation is the state. Every change (a claim, a save, a settle) creates the
//! next generation *if it does not exist yet*, so of two writers racing for the same number
//! exactly one succeeds. A claim lists the generations and creates the one after the newest;
//! a save or settle creates the one after the last this run wrote, so if any other run
//! claimed in between, that number is taken and the write fails: the run is fenced
//! ([`RuntimeError::Fenced`]). Because old generations are deleted (all but the newest
//! [`KEEP`]), a fenced run could in principle recreate a deleted number; after every
//! successful create the store therefore lists the generations again and treats one newer
//! than its own as fencing too (listing is strongly consistent on S3, GCS and Azure), and
//! [`verify`](StateStore::verify) is exactly that check: no generation newer than this run's
//! last one exists.
//!
//! Reads take the newest generation that is whole. One that is not valid JSON (a torn
//! object: a store without atomic writes, an interrupted copy) is skipped with a warning and
//! the previous one is used, as the directory store never sees a torn temporary file; one
//! whose checksum does not match its complete content (changed after it was written) is
//! refused with a message naming it, as the directory store refuses a damaged
//! `checkpoint.json`.
//!
//! Every request is bounded: the `object_store` client retries transient failures a
//! limited number of times within a time budget, and this store repeats a failed
//! operation at most [`StoreLimits::attempts`] times. A store that stays unreachable is a
//! [`RuntimeError::StateUnavailable`] naming the URL (never the credentials, which come
//! from the environment as `object_store` reads them: `AWS_ACCESS_KEY_ID`,
//! `AWS_SECRET_ACCESS_KEY`, `AWS_ENDPOINT`, `AWS_ALLOW_HTTP`, `GOOGLE_SERVICE_ACCOUNT`,
//! `AZURE_STORAGE_ACCOUNT_NAME`, ...).

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use cdc_api::OwnerEpoch;
use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore, ObjectStoreExt as _, PutMode, PutOptions, PutPayload};
use serde::{Deserialize, Serialize};

use super::checksum::crc32;
use super::file::Holder;
use super::{Checkpoint, FORMAT_VERSION, Ownership, StateStore, next_epoch};
use crate::RuntimeError;

/// The version of the generation objects this build writes and reads.
const GENERATION_FORMAT: u32 = 1;
/// The folder under the prefix that holds the generations.
const FOLDER: &str = "state";
/// Generations kept besides the newest (the fallback when the newest is torn).
pub(crate) const KEEP: u64 = 3;
/// Claims lost to another instance before giving up.
const CLAIM_ROUNDS: u32 = 8;
const CHECKSUM_PREFIX: &str = "crc32:";

/// How long the store waits for the object store, and how often it tries.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct StoreLimits {
    /// One request, from sending to the last byte of the answer.
    pub request_timeout: Duration,
    /// Connecting to the store.
    pub connect_timeout: Duration,
    /// The `object_store` client's retries of one request: at most this many...
    pub max_retries: usize,
    /// ...within this time.
    pub retry_timeout: Duration,
    /// This store's repetitions of a failed operation (including the first attempt).
    pub attempts: u32,
    /// The pause between two of them.
    pub pause: Duration,
}

impl Default for StoreLimits {
    fn default() -> Self {
        Self {
            request_timeout: Duration::from_secs(10),
            connect_timeout: Duration::from_secs(5),
            max_retries: 3,
            retry_timeout: Duration::from_secs(30),
            attempts: 3,
            pause: Duration::from_secs(2),
        }
    }
}

impl StoreLimits {
    /// Short limits, for tests that make the store unreachable on purpose.
    pub fn short(request_timeout: Duration, attempts: u32) -> Self {
        Self {
            request_timeout,
            connect_timeout: request_timeout,
            max_retries: 1,
            retry_timeout: request_timeout,
            attempts: attempts.max(1),
            pause: Duration::from_millis(200),
        }
    }
}

/// One generation object.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Generation {
    format_version: u32,
    generation: u64,
    /// Unique per write, so that a write whose answer was lost is recognised on read-back.
    write_id: String,
    owner: OwnerRecord,
    /// The latest checkpoint (the [`Checkpoint`] JSON), if one was saved yet.
    #[serde(default)]
    checkpoint: Option<serde_json::Value>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct OwnerRecord {
    epoch: OwnerEpoch,
    #[serde(default)]
    earlier: Vec<OwnerEpoch>,
    holder: Holder,
}

/// What this instance holds after a claim.
#[derive(Debug, Clone)]
struct Held {
    generation: u64,
    owner: OwnerRecord,
    checkpoint: Option<serde_json::Value>,
}

/// What reading one generation found.
enum Read {
    Whole(Box<Generation>),
    Missing,
    Torn(String),
}

/// Checkpoints in an object store (see the module documentation).
///
/// A second instance on the same prefix is not refused: its claim succeeds and the first
/// stops with [`RuntimeError::Fenced`] at its next save, commit or abort.
#[derive(Debug)]
pub struct ObjectStateStore {
    store: Arc<dyn ObjectStore>,
    /// `<prefix>/state`.
    folder: ObjectPath,
    /// The URL without credentials, for messages.
    url: String,
    limits: StoreLimits,
    held: tokio::sync::Mutex<Option<Held>>,
}

/// Whether a `state.dir` value names an object store rather than a directory.
pub(crate) fn is_object_url(value: &str) -> bool {
    [
        "s3://", "s3a://", "gs://", "az://", "azure://", "abfs://", "abfss://", "file://",
    ]
    .iter()
    .any(|scheme| value.len() >= scheme.len() && value[..scheme.len()].eq_ignore_ascii_case(scheme))
}

/// `url` without user name, password and query (which can carry credentials).
pub(crate) fn display_url(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut parsed) => {
            let _ = parsed.set_username("");
            let _ = parsed.set_password(None);
            parsed.set_query(None);
            parsed.set_fragment(None);
            crate::secrets::redact(parsed.as_str())
        }
        Err(_) => crate::secrets::redact(url.split(['?', '#']).next().unwrap_or(url)),
    }
}

/// Credentials the object store clients read from the environment are masked in every
/// message, like the secrets of the pipeline file.
fn remember_environment_secrets() {
    for (key, value) in std::env::vars() {
        let cloud = ["AWS_", "GOOGLE_", "AZURE_"]
            .iter()
            .any(|p| key.starts_with(p));
        if cloud && crate::secrets::is_secret_key(&key) {
            crate::secrets::remember(&value);
        }
    }
}

impl ObjectStateStore {
    /// A store at `url` (`s3://`, `gs://`, `az://` or `file://`), with credentials and
    /// endpoints from the environment and the default [`StoreLimits`]. Nothing is read or
    /// written before the claim.
    pub fn open(url: &str) -> Result<Self, RuntimeError> {
        Self::open_with(url, StoreLimits::default(), &[])
    }

    /// [`open`](Self::open) with other limits, and `object_store` configuration keys
    /// (`aws_endpoint`, `aws_allow_http`, ...) that take precedence over the environment.
    pub fn open_with(
        url: &str,
        limits: StoreLimits,
        options: &[(String, String)],
    ) -> Result<Self, RuntimeError> {
        remember_environment_secrets();
        let shown = display_url(url);
        let invalid = |message: String| RuntimeError::State {
            location: shown.clone(),
            message: crate::secrets::redact(&message),
        };
        let parsed = url::Url::parse(url).map_err(|e| invalid(format!("not a valid URL: {e}")))?;
        let (store, prefix) = build(&parsed, &limits, options).map_err(invalid)?;
        let folder = prefix.join(FOLDER);
        Ok(Self {
            store,
            folder,
            url: shown,
            limits,
            held: tokio::sync::Mutex::new(None),
        })
    }

    /// The URL, without credentials.
    pub fn url(&self) -> &str {
        &self.url
    }

    fn key(&self, generation: u64) -> ObjectPath {
        self.folder
            .clone()
            .join(format!("{generation:020}.json").as_str())
    }

    fn object_name(&self, generation: u64) -> String {
        format!(
            "{}/{FOLDER}/{generation:020}.json",
            self.url.trim_end_matches('/')
        )
    }

    fn state_error(&self, message: impl AsRef<str>) -> RuntimeError {
        RuntimeError::State {
            location: self.url.clone(),
            message: crate::secrets::redact(message.as_ref()),
        }
    }

    fn fenced(&self, why: &str) -> RuntimeError {
        RuntimeError::Fenced {
            location: self.url.clone(),
            message: crate::secrets::redact(&format!(
                "{why}; this run stops before committing or aborting anything in the target. Run one instance per state location"
            )),
        }
    }

    /// An `object_store` failure, after this store's attempts.
    fn failure(&self, what: &str, e: &object_store::Error) -> RuntimeError {
        use object_store::Error as E;
        match e {
            E::PermissionDenied { .. } | E::Unauthenticated { .. } => self.state_error(format!(
                "{what}: access denied ({e}); check the credentials in the environment (AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY, GOOGLE_SERVICE_ACCOUNT, AZURE_STORAGE_ACCOUNT_KEY, ...)"
            )),
            E::NotSupported { .. } | E::NotImplemented { .. } => self.state_error(format!(
                "{what}: the store does not support conditional writes ({e}), which the state needs so that two instances never both own it"
            )),
            _ => RuntimeError::StateUnavailable {
                location: self.url.clone(),
                message: crate::secrets::redact(&format!(
                    "{what}: the object store did not answer after {} attempts ({e}); check that it is reachable, then restart: the state there is unchanged",
                    self.limits.attempts
                )),
            },
        }
    }

    /// Runs `op` up to [`StoreLimits::attempts`] times while it fails with something other
    /// than an answer (not found, already exists, precondition, access denied).
    async fn retrying<T, F, Fut>(&self, what: &str, mut op: F) -> Result<T, RuntimeError>
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Result<T, object_store::Error>>,
    {
        let mut attempt = 1;
        loop {
            match op().await {
                Ok(v) => return Ok(v),
                Err(e) if is_answer(&e) || attempt >= self.limits.attempts => {
                    return Err(self.failure(what, &e));
                }
                Err(e) => {
                    tracing::warn!(
                        store = %self.url,
                        attempt,
                        error = %crate::secrets::redact(&e.to_string()),
                        "{what}: the object store did not answer; trying again"
                    );
                    attempt += 1;
                    tokio::time::sleep(self.limits.pause).await;
                }
            }
        }
    }

    /// The generation numbers present, ascending.
    async fn generations(&self) -> Result<Vec<u64>, RuntimeError> {
        let listing = self
            .retrying("listing the state", move || {
                self.store.list_with_delimiter(Some(&self.folder))
            })
            .await?;
        let mut numbers: Vec<u64> = listing
            .objects
            .iter()
            .filter_map(|o| o.location.filename())
            .filter_map(|name| name.strip_suffix(".json"))
            .filter(|digits| !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()))
            .filter_map(|digits| digits.parse().ok())
            .collect();
        numbers.sort_unstable();
        Ok(numbers)
    }

    async fn read(&self, generation: u64) -> Result<Read, RuntimeError> {
        let key = &self.key(generation);
        let got = self
            .retrying("reading the state", move || async move {
                match self.store.get(key).await {
                    Ok(result) => result.bytes().await.map(Some),
                    Err(object_store::Error::NotFound { .. }) => Ok(None),
                    Err(e) => Err(e),
                }
            })
            .await?;
        let Some(bytes) = got else {
            return Ok(Read::Missing);
        };
        self.decode(generation, &bytes)
    }

    fn decode(&self, generation: u64, bytes: &[u8]) -> Result<Read, RuntimeError> {
        let name = self.object_name(generation);
        let mut value: serde_json::Value = match serde_json::from_slice(bytes) {
            Ok(v) => v,
            Err(e) => return Ok(Read::Torn(format!("not valid JSON ({e})"))),
        };
        let version = value
            .get("format_version")
            .and_then(serde_json::Value::as_u64)
            .unwrap_or(0);
        if version > u64::from(GENERATION_FORMAT) {
            return Err(RuntimeError::State {
                location: name,
                message: format!(
                    "written by a newer version (state format {version}, this build reads {GENERATION_FORMAT}); run the newer version"
                ),
            });
        }
        let stated = value
            .as_object_mut()
            .and_then(|fields| fields.shift_remove("checksum"));
        let actual = crc32(&serde_json::to_vec(&value).unwrap_or_default());
        let expected = stated
            .as_ref()
            .and_then(serde_json::Value::as_str)
            .and_then(|s| s.strip_prefix(CHECKSUM_PREFIX))
            .and_then(|h| u32::from_str_radix(h, 16).ok());
        if expected != Some(actual) {
            let previous = generation.saturating_sub(1);
            return Err(RuntimeError::State {
                location: name,
                message: format!(
                    "checksum mismatch (the object says {}, its content gives {CHECKSUM_PREFIX}{actual:08x}): it was changed or damaged after it was written. Restore it from a backup or a bucket version, or delete it to fall back to generation {previous}",
                    stated.map_or_else(|| "nothing".to_string(), |s| s.to_string())
                ),
            });
        }
        let generation_read: Generation =
            serde_json::from_value(value).map_err(|e| RuntimeError::State {
                location: name.clone(),
                message: format!("not a readable state object ({e})"),
            })?;
        if generation_read.generation != generation {
            return Err(RuntimeError::State {
                location: name,
                message: format!(
                    "names generation {} but is stored as {generation}: it was copied or renamed by hand; move it back or delete it",
                    generation_read.generation
                ),
            });
        }
        Ok(Read::Whole(Box::new(generation_read)))
    }

    /// The newest whole generation, and the newest number present (whole or not).
    async fn newest(&self) -> Result<(Option<Generation>, u64), RuntimeError> {
        let numbers = self.generations().await?;
        let head = numbers.last().copied().unwrap_or(0);
        for &number in numbers.iter().rev() {
            match self.read(number).await? {
                Read::Whole(generation) => return Ok((Some(*generation), head)),
                // Deleted between the listing and the read: an older one a newer owner
                // cleaned up, or the newest by hand; the next one down is the state.
                Read::Missing => {}
                Read::Torn(why) => tracing::warn!(
                    object = %self.object_name(number),
                    "skipping a torn state object ({why}); using the generation before it"
                ),
            }
        }
        Ok((None, head))
    }

    fn encode(&self, generation: &Generation) -> Result<Vec<u8>, RuntimeError> {
        let encode = || -> Result<Vec<u8>, serde_json::Error> {
            let mut value = serde_json::to_value(generation)?;
            let sum = crc32(&serde_json::to_vec(&value)?);
            if let Some(fields) = value.as_object_mut() {
                fields.insert(
                    "checksum".into(),
                    format!("{CHECKSUM_PREFIX}{sum:08x}").into(),
                );
            }
            serde_json::to_vec_pretty(&value)
        };
        encode().map_err(|e| self.state_error(format!("cannot encode the state: {e}")))
    }

    /// Creates generation `generation` if it does not exist. `Ok(true)`: this write made
    /// it (also when an earlier attempt's answer was lost); `Ok(false)`: another writer's.
    async fn create(&self, document: &Generation, what: &str) -> Result<bool, RuntimeError> {
        let bytes = self.encode(document)?;
        let key = &self.key(document.generation);
        let bytes = &bytes;
        let outcome = self
            .retrying(what, move || {
                let payload = PutPayload::from(bytes.clone());
                let options = PutOptions {
                    mode: PutMode::Create,
                    ..PutOptions::default()
                };
                async move {
                    match self.store.put_opts(key, payload, options).await {
                        Ok(_) => Ok(true),
                        Err(
                            object_store::Error::AlreadyExists { .. }
                            | object_store::Error::Precondition { .. },
                        ) => Ok(false),
                        Err(e) => Err(e),
                    }
                }
            })
            .await?;
        if outcome {
            return Ok(true);
        }
        // Taken: by another writer, or by this write when an earlier attempt's answer was
        // lost on the way back.
        match self.read(document.generation).await? {
            Read::Whole(existing) => Ok(existing.write_id == document.write_id),
            Read::Missing | Read::Torn(_) => Ok(false),
        }
    }

    /// The generations newer than `generation`, newest first, with the owner of the newest
    /// whole one.
    async fn newer_than(&self, generation: u64) -> Result<Option<String>, RuntimeError> {
        let numbers = self.generations().await?;
        let newer: Vec<u64> = numbers.into_iter().filter(|&n| n > generation).collect();
        let Some(&newest) = newer.last() else {
            return Ok(None);
        };
        let owner = match self.read(newest).await {
            Ok(Read::Whole(g)) => format!("run {} ({})", g.owner.epoch, g.owner.holder),
            _ => "another run".to_string(),
        };
        Ok(Some(format!(
            "generation {newest} of the state was written by {owner}, after this run's generation {generation}: another instance took over this pipeline's state"
        )))
    }

    /// Deletes the generations older than `generation - KEEP`, best effort.
    async fn collect_garbage(&self, numbers: &[u64], generation: u64) {
        for &old in numbers
            .iter()
            .filter(|&&n| n.saturating_add(KEEP) < generation)
        {
            if let Err(e) = self.store.delete(&self.key(old)).await {
                tracing::debug!(
                    object = %self.object_name(old),
                    error = %crate::secrets::redact(&e.to_string()),
                    "could not delete an old state generation; the next checkpoint tries again"
                );
                return;
            }
        }
    }

    /// Writes the next generation after `held`'s, with `owner` and `checkpoint`: fenced
    /// when another run wrote one since.
    async fn advance(
        &self,
        held: &mut Held,
        owner: OwnerRecord,
        checkpoint: Option<serde_json::Value>,
        what: &str,
    ) -> Result<(), RuntimeError> {
        let document = Generation {
            format_version: GENERATION_FORMAT,
            generation: held.generation + 1,
            write_id: write_id(owner.epoch),
            owner,
            checkpoint,
        };
        if !self.create(&document, what).await? {
            let why = self
                .newer_than(held.generation)
                .await?
                .unwrap_or_else(|| {
                    format!(
                        "generation {} of the state was written by another run after this run's generation {}",
                        document.generation, held.generation
                    )
                });
            return Err(self.fenced(&why));
        }
        // The number may have been free only because a newer owner already deleted it
        // with the other old generations: then newer ones exist.
        let numbers = self.generations().await?;
        if numbers.iter().any(|&n| n > document.generation) {
            let _ = self.store.delete(&self.key(document.generation)).await;
            let why = self
                .newer_than(document.generation)
                .await?
                .unwrap_or_else(|| "another instance took over this pipeline's state".into());
            return Err(self.fenced(&why));
        }
        held.generation = document.generation;
        held.owner = document.owner;
        held.checkpoint = document.checkpoint;
        self.collect_garbage(&numbers, held.generation).await;
        Ok(())
    }

    async fn verify_held(
        &self,
        held: Option<&Held>,
        epoch: OwnerEpoch,
    ) -> Result<(), RuntimeError> {
        let Some(held) = held else {
            return Err(self.fenced(&format!(
                "run {epoch} does not hold this state (it never claimed it through this store)"
            )));
        };
        if held.owner.epoch != epoch {
            return Err(self.fenced(&format!(
                "run {epoch} was superseded by run {}, which claimed this state through the same store",
                held.owner.epoch
            )));
        }
        match self.newer_than(held.generation).await? {
            None => Ok(()),
            Some(why) => Err(self.fenced(&why)),
        }
    }
}

/// An answer from the store rather than a failure to get one: repeating cannot change it.
fn is_answer(e: &object_store::Error) -> bool {
    use object_store::Error as E;
    matches!(
        e,
        E::NotFound { .. }
            | E::AlreadyExists { .. }
            | E::Precondition { .. }
            | E::NotModified { .. }
            | E::PermissionDenied { .. }
            | E::Unauthenticated { .. }
            | E::NotSupported { .. }
            | E::NotImplemented { .. }
            | E::InvalidPath { .. }
    )
}

/// A write id: the epoch, the process, the time and a counter, unique enough to tell this
/// write from any other.
fn write_id(epoch: OwnerEpoch) -> String {
    static SEQUENCE: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let sequence = SEQUENCE.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    format!("{epoch}-{}-{nanos}-{sequence}", std::process::id())
}

/// The `object_store` client for `url` and the prefix inside it.
fn build(
    url: &url::Url,
    limits: &StoreLimits,
    options: &[(String, String)],
) -> Result<(Arc<dyn ObjectStore>, ObjectPath), String> {
    use object_store::{ClientConfigKey, RetryConfig};
    // TLS through rustls with ring, as the sinks use it; a no-op when already installed.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let retry = RetryConfig {
        max_retries: limits.max_retries,
        retry_timeout: limits.retry_timeout,
        ..RetryConfig::default()
    };
    let timeout = format!("{}ms", limits.request_timeout.as_millis());
    let connect = format!("{}ms", limits.connect_timeout.as_millis());
    let prefix = ObjectPath::parse(url.path().trim_matches('/'))
        .map_err(|e| format!("the path of the URL is not a valid object prefix: {e}"))?;
    let scheme = url.scheme().to_ascii_lowercase();
    let store: Arc<dyn ObjectStore> = match scheme.as_str() {
        "s3" | "s3a" => {
            use object_store::aws::{AmazonS3Builder, AmazonS3ConfigKey as K};
            Arc::new(
                configured(AmazonS3Builder::from_env(), options, |b, k: K, v| {
                    b.with_config(k, v)
                })?
                .with_url(url.as_str())
                .with_config(K::Client(ClientConfigKey::Timeout), &timeout)
                .with_config(K::Client(ClientConfigKey::ConnectTimeout), &connect)
                .with_retry(retry)
                .build()
                .map_err(|e| e.to_string())?,
            )
        }
        "gs" => {
            use object_store::gcp::{GoogleCloudStorageBuilder, GoogleConfigKey as K};
            Arc::new(
                configured(
                    GoogleCloudStorageBuilder::from_env(),
                    options,
                    |b, k: K, v| b.with_config(k, v),
                )?
                .with_url(url.as_str())
                .with_config(K::Client(ClientConfigKey::Timeout), &timeout)
                .with_config(K::Client(ClientConfigKey::ConnectTimeout), &connect)
                .with_retry(retry)
                .build()
                .map_err(|e| e.to_string())?,
            )
        }
        "az" | "azure" | "abfs" | "abfss" => {
            use object_store::azure::{AzureConfigKey as K, MicrosoftAzureBuilder};
            Arc::new(
                configured(MicrosoftAzureBuilder::from_env(), options, |b, k: K, v| {
                    b.with_config(k, v)
                })?
                .with_url(url.as_str())
                .with_config(K::Client(ClientConfigKey::Timeout), &timeout)
                .with_config(K::Client(ClientConfigKey::ConnectTimeout), &connect)
                .with_retry(retry)
                .build()
                .map_err(|e| e.to_string())?,
            )
        }
        "file" => {
            let dir = url
                .to_file_path()
                .map_err(|()| "a file:// URL needs an absolute local path".to_string())?;
            super::file::create_private_directory(&dir)
                .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
            let local = object_store::local::LocalFileSystem::new_with_prefix(&dir)
                .map_err(|e| e.to_string())?;
            return Ok((Arc::new(local), ObjectPath::default()));
        }
        other => {
            return Err(format!(
                "'{other}://' is not a state store: use s3://, gs://, az://, file:// or a directory"
            ));
        }
    };
    Ok((store, prefix))
}

/// `builder` with each of `options` applied (a key the store does not know is an error).
fn configured<B, K: std::str::FromStr>(
    builder: B,
    options: &[(String, String)],
    apply: impl Fn(B, K, &str) -> B,
) -> Result<B, String> {
    let mut builder = builder;
    for (key, value) in options {
        let parsed: K = key
            .parse()
            .map_err(|_| format!("'{key}' is not an option of this object store"))?;
        builder = apply(builder, parsed, value);
    }
    Ok(builder)
}

#[async_trait]
impl StateStore for ObjectStateStore {
    async fn claim(&self) -> Result<Ownership, RuntimeError> {
        let mut held = self.held.lock().await;
        for _ in 0..CLAIM_ROUNDS {
            let (newest, head) = self.newest().await?;
            let mut earlier = BTreeSet::new();
            let mut checkpoint = None;
            if let Some(newest) = newest {
                earlier.extend(newest.owner.earlier.iter().copied());
                earlier.insert(newest.owner.epoch);
                if let Some(cp) = &newest.checkpoint {
                    earlier.insert(
                        cp.get("owner")
                            .and_then(serde_json::Value::as_u64)
                            .map_or(OwnerEpoch::LEGACY, OwnerEpoch),
                    );
                }
                checkpoint = newest.checkpoint;
            }
            // This store claimed before (an embedder running the pipeline again): the new
            // epoch must exceed the one it handed out, whatever the store shows.
            let floor = held.as_ref().map(|h| h.owner.epoch);
            let epoch = next_epoch(earlier.last().copied().max(floor));
            let owner = OwnerRecord {
                epoch,
                earlier: earlier.into_iter().collect(),
                holder: Holder::current(),
            };
            let document = Generation {
                format_version: GENERATION_FORMAT,
                generation: head + 1,
                write_id: write_id(epoch),
                owner: owner.clone(),
                checkpoint: checkpoint.clone(),
            };
            if self.create(&document, "claiming the state").await? {
                let earlier = owner.earlier.clone();
                *held = Some(Held {
                    generation: document.generation,
                    owner,
                    checkpoint,
                });
                if let Ok(numbers) = self.generations().await {
                    self.collect_garbage(&numbers, document.generation).await;
                }
                return Ok(Ownership::new(epoch, earlier));
            }
            tracing::info!(
                store = %self.url,
                "another instance claimed the state at the same moment; reading it again"
            );
        }
        Err(self.state_error(format!(
            "could not claim the state: other instances claimed it {CLAIM_ROUNDS} times in a row while this one tried. Run one instance per state location"
        )))
    }

    async fn verify(&self, epoch: OwnerEpoch) -> Result<(), RuntimeError> {
        let held = self.held.lock().await;
        self.verify_held(held.as_ref(), epoch).await
    }

    async fn load(&self) -> Result<Option<Checkpoint>, RuntimeError> {
        let (newest, head) = self.newest().await?;
        let Some(newest) = newest else {
            return Ok(None);
        };
        let Some(value) = newest.checkpoint else {
            return Ok(None);
        };
        let name = self.object_name(newest.generation);
        let version = value
            .get("format_version")
            .and_then(serde_json::Value::as_u64)
            .unwrap_or(0);
        if version > u64::from(FORMAT_VERSION) {
            return Err(RuntimeError::State {
                location: name,
                message: format!(
                    "written by a newer version (checkpoint format {version}, this build reads up to {FORMAT_VERSION}); run the newer version, or start over with `cdc run --reset`"
                ),
            });
        }
        if newest.generation < head {
            tracing::warn!(
                store = %self.url,
                "the newest state object is torn; resuming from generation {} (checkpoint {})",
                newest.generation,
                value.get("id").map_or_else(String::new, ToString::to_string)
            );
        }
        serde_json::from_value(value)
            .map(Some)
            .map_err(|e| RuntimeError::State {
                location: name,
                message: format!("not a readable checkpoint ({e})"),
            })
    }

    async fn save(&self, checkpoint: &Checkpoint) -> Result<(), RuntimeError> {
        let value = serde_json::to_value(checkpoint)
            .map_err(|e| self.state_error(format!("cannot encode checkpoint: {e}")))?;
        let mut guard = self.held.lock().await;
        let Some(held) = guard.as_mut() else {
            return Err(self.fenced(&format!(
                "run {} does not hold this state (it never claimed it through this store)",
                checkpoint.owner
            )));
        };
        if held.owner.epoch != checkpoint.owner {
            return Err(self.fenced(&format!(
                "run {} was superseded by run {}, which claimed this state through the same store",
                checkpoint.owner, held.owner.epoch
            )));
        }
        let owner = held.owner.clone();
        match self
            .advance(held, owner, Some(value), "saving the checkpoint")
            .await
        {
            Err(RuntimeError::StateUnavailable { location, message }) => {
                // The conditional create may have reached the store with its answer lost.
                Err(RuntimeError::StateMaybeSaved {
                    location,
                    message: format!(
                        "{message}; checkpoint {} may or may not have been saved",
                        checkpoint.id
                    ),
                })
            }
            other => other,
        }
    }

    async fn settle(&self, epoch: OwnerEpoch) -> Result<(), RuntimeError> {
        let mut guard = self.held.lock().await;
        self.verify_held(guard.as_ref(), epoch).await?;
        let Some(held) = guard.as_mut() else {
            return Err(self.fenced(&format!("run {epoch} does not hold this state")));
        };
        if held.owner.earlier.is_empty() {
            return Ok(());
        }
        let mut owner = held.owner.clone();
        owner.earlier.clear();
        let checkpoint = held.checkpoint.clone();
        self.advance(held, owner, checkpoint, "settling the state")
            .await
    }

    async fn release(&self, epoch: OwnerEpoch) {
        let mut held = self.held.lock().await;
        if held.as_ref().is_some_and(|h| h.owner.epoch == epoch) {
            *held = None;
        }
    }

    fn describe(&self) -> String {
        format!("object store {}", self.url)
    }
}

#[cfg(test)]
mod tests {
    use cdc_api::{CheckpointId, SourceOffset};

    use super::*;

    fn checkpoint(id: u64, owner: OwnerEpoch) -> Checkpoint {
        Checkpoint::new(
            "p",
            "values",
            "values",
            CheckpointId(id),
            SourceOffset(serde_json::json!({"n": id})),
            Vec::new(),
        )
        .with_owner(owner)
    }

    fn open(dir: &std::path::Path) -> ObjectStateStore {
        let url = url::Url::from_directory_path(dir).unwrap();
        ObjectStateStore::open(url.as_str()).unwrap()
    }

    fn objects(dir: &std::path::Path) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(dir.join(FOLDER))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| !n.starts_with('.'))
            .collect();
        names.sort();
        names
    }

    #[tokio::test]
    async fn a_file_url_round_trips_keeps_few_generations_and_fences_the_previous_owner() {
        let dir = tempfile::tempdir().unwrap();
        let first = open(dir.path());
        assert!(first.load().await.unwrap().is_none());
        let one = first.claim().await.unwrap();
        assert!(one.earlier.is_empty());
        for id in 1..=6 {
            first.save(&checkpoint(id, one.epoch)).await.unwrap();
            assert_eq!(first.load().await.unwrap().unwrap().id, CheckpointId(id));
        }
        // Generation 1 (the claim) and 2..=7 (the saves): the newest and KEEP before it.
        assert_eq!(
            objects(dir.path()).len(),
            KEEP as usize + 1,
            "{:?}",
            objects(dir.path())
        );

        // A second instance takes over: the first is fenced before its next save.
        let second = open(dir.path());
        let two = second.claim().await.unwrap();
        assert!(two.epoch > one.epoch);
        assert_eq!(two.earlier, vec![one.epoch]);
        let err = first.verify(one.epoch).await.unwrap_err();
        assert!(matches!(err, RuntimeError::Fenced { .. }), "{err}");
        assert!(err.to_string().contains("took over"), "{err}");
        let err = first.save(&checkpoint(7, one.epoch)).await.unwrap_err();
        assert!(matches!(err, RuntimeError::Fenced { .. }), "{err}");
        assert!(first.settle(one.epoch).await.is_err());
        // The claim carried the checkpoint over; the refused save changed nothing.
        assert_eq!(second.load().await.unwrap().unwrap().id, CheckpointId(6));
        second.save(&checkpoint(7, two.epoch)).await.unwrap();
        second.settle(two.epoch).await.unwrap();
        second.verify(two.epoch).await.unwrap();
        let three = open(dir.path()).claim().await.unwrap();
        assert_eq!(
            three.earlier,
            vec![two.epoch],
            "settled: only the last owner"
        );
    }

    #[tokio::test]
    async fn a_fenced_run_cannot_recreate_a_collected_generation() {
        let dir = tempfile::tempdir().unwrap();
        let old = open(dir.path());
        let mine = old.claim().await.unwrap();
        let new = open(dir.path());
        let theirs = new.claim().await.unwrap();
        // The new owner saves enough that the generation after the old owner's is deleted.
        for id in 1..=(KEEP + 3) {
            new.save(&checkpoint(id, theirs.epoch)).await.unwrap();
        }
        assert!(!objects(dir.path()).contains(&format!("{:020}.json", 2)));
        let err = old.save(&checkpoint(1, mine.epoch)).await.unwrap_err();
        assert!(matches!(err, RuntimeError::Fenced { .. }), "{err}");
        assert_eq!(
            new.load().await.unwrap().unwrap().id,
            CheckpointId(KEEP + 3)
        );
        new.verify(theirs.epoch).await.unwrap();
    }

    #[tokio::test]
    async fn racing_claims_leave_exactly_one_owner() {
        let dir = tempfile::tempdir().unwrap();
        let stores: Vec<Arc<ObjectStateStore>> =
            (0..6).map(|_| Arc::new(open(dir.path()))).collect();
        let claims = stores.iter().map(|s| {
            let s = s.clone();
            tokio::spawn(async move { s.claim().await })
        });
        let mut epochs = Vec::new();
        for claim in claims {
            epochs.push(claim.await.unwrap().unwrap().epoch);
        }
        let mut owners = 0;
        for (store, epoch) in stores.iter().zip(&epochs) {
            if store.verify(*epoch).await.is_ok() {
                owners += 1;
                assert_eq!(Some(epoch), epochs.iter().max());
            }
        }
        assert_eq!(owners, 1, "{epochs:?}");
    }

    #[tokio::test]
    async fn a_torn_newest_generation_falls_back_and_a_damaged_one_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let store = open(dir.path());
        let mine = store.claim().await.unwrap();
        store.save(&checkpoint(1, mine.epoch)).await.unwrap();
        store.save(&checkpoint(2, mine.epoch)).await.unwrap();
        let newest = dir.path().join(FOLDER).join(format!("{:020}.json", 3));
        let whole = std::fs::read(&newest).unwrap();
        // Half of the newest object, as a store without atomic writes could leave it.
        std::fs::write(&newest, &whole[..whole.len() / 2]).unwrap();
        assert_eq!(store.load().await.unwrap().unwrap().id, CheckpointId(1));
        // A new claim goes past the torn number and keeps checkpoint 1.
        let next = open(dir.path());
        let theirs = next.claim().await.unwrap();
        assert_eq!(next.load().await.unwrap().unwrap().id, CheckpointId(1));
        next.save(&checkpoint(2, theirs.epoch)).await.unwrap();

        // Complete JSON whose checksum does not match: refused, naming the object.
        let newest = dir.path().join(FOLDER).join(format!("{:020}.json", 5));
        let text = std::fs::read_to_string(&newest).unwrap();
        assert!(text.contains("\"n\": 2"), "{text}");
        std::fs::write(&newest, text.replace("\"n\": 2", "\"n\": 9")).unwrap();
        let err = next.load().await.unwrap_err().to_string();
        assert!(
            err.contains("checksum mismatch") && err.contains("00000000000000000005.json"),
            "{err}"
        );
    }
}
