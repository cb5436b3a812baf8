//! Builds a pipeline from its definition and runs it.
//!
//! Two tasks joined by a bounded channel: the *reader* pulls batches from the source and,
//! every `checkpoint.interval`, puts a barrier carrying the source offset into the channel
//! right after the last batch it covers; the *writer* applies schema changes through the
//! schema coordinator and the applier, writes data to the sink and, at each barrier, runs
//! the checkpoint: prepare -> save {offset, committables} -> commit. Because the offset
//! travels in-band, everything before a barrier is exactly what its offset covers.
//!
//! Before any of that the run claims the pipeline's state (an owner epoch, see
//! [`StateStore`]) and finishes the last checkpoint's commits; every commit and abort in
//! the target is preceded by a check that this run still owns the state.

use std::collections::BTreeSet;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use cdc_api::{
    CheckpointId, Committable, ConfigOption, ConnectorRegistry, Error, Event, FactoryContext,
    Options, OwnerEpoch, Recovery, SchemaApplier, SchemaChangeEvent, SchemaChangeKind, Sink,
    SinkFactory, Source, SourceFactory, SourceOffset, TableId,
};
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;

use crate::endpoint::{self, Readiness};
use crate::metrics::PipelineMetrics;
use crate::pipeline_options::is_default_name;
use crate::restart::{Restarts, may_recover};
use crate::route::Router;
use crate::schema_coordinator::SchemaCoordinator;
use crate::suggest::did_you_mean;
use crate::transform::Transformer;
use crate::{
    Checkpoint, CommittedPosition, Ownership, PipelineDefinition, PipelineSettings, RuntimeError,
    SchemaState, StateLocation, StateStore,
};

/// Batches in flight between reader and writer; with the sources' batch sizes this bounds
/// memory whatever the table size.
const CHANNEL_CAPACITY: usize = 16;

/// What a finished run did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RunSummary {
    /// Data change events written to the sink.
    pub data_changes: u64,
    /// Schema change events seen from the source.
    pub schema_changes: u64,
    /// Checkpoints completed in this run.
    pub checkpoints: u64,
    /// The last durable checkpoint, if any.
    pub last_checkpoint: Option<CheckpointId>,
    /// Whether the run resumed from a checkpoint.
    pub resumed: bool,
    /// The checkpoint whose prepared transactions the target had lost
    /// ([`Error::TransactionLost`]), so that this run rewound to the last fully committed
    /// one before it (or started over when there was none).
    pub rewound_from: Option<CheckpointId>,
    /// Restarts after failed runs before this outcome (`restart-strategy.*`); the other
    /// figures are those of the last run.
    pub restarts: u32,
}

/// A pipeline ready to run: a source, a sink, its applier, settings and a state store.
pub struct Pipeline {
    settings: PipelineSettings,
    source_type: String,
    sink_type: String,
    /// The connectors for the first run; a restart builds new ones from `blueprint`.
    parts: Option<Parts>,
    blueprint: Blueprint,
    state: Arc<dyn StateStore>,
    /// How `state` was chosen, for the line the run logs about it.
    state_origin: StateOrigin,
    metrics: Arc<PipelineMetrics>,
    reset: bool,
}

impl std::fmt::Debug for Pipeline {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pipeline")
            .field("name", &self.settings.name)
            .field("source", &self.source_type)
            .field("sink", &self.sink_type)
            .field("state", &self.state.describe())
            .finish_non_exhaustive()
    }
}

/// Rejects unknown keys (naming the nearest known one) and reports missing required ones.
fn check_options(
    origin: &str,
    options: &Options,
    known: &[ConfigOption],
    prefixes: &[&str],
    connector: &str,
) -> Result<(), RuntimeError> {
    for (key, _) in options.iter() {
        let listed = known.iter().any(|o| o.name == key);
        let prefixed = prefixes
            .iter()
            .any(|p| key.starts_with(p) && key.len() > p.len());
        if !listed && !prefixed {
            let names = known.iter().map(|o| o.name).chain(prefixes.iter().copied());
            return Err(RuntimeError::definition(
                format!("{origin}: {}", options.block()),
                format!(
                    "unknown option '{key}' for connector '{connector}'{}",
                    did_you_mean(key, names)
                ),
            ));
        }
    }
    for option in known.iter().filter(|o| o.required) {
        if options.get_raw(option.name).is_none() {
            return Err(RuntimeError::definition(
                format!("{origin}: {}", options.block()),
                format!(
                    "missing required option '{}' for connector '{connector}': {}",
                    option.name, option.description
                ),
            ));
        }
    }
    Ok(())
}

impl Pipeline {
    /// Checks the definition against the registry's factories and builds the connectors
    /// (no I/O yet). The state store is `pipeline.state.dir` when set (`none`: memory only,
    /// a restart starts over), otherwise the default directory for the pipeline's name
    /// ([`default_state_dir`](crate::default_state_dir): `$XDG_STATE_HOME/cdc/<name>` or
    /// `~/.local/state/cdc/<name>`); nothing is created or locked before [`run`](Self::run).
    /// [`with_state_store`](Self::with_state_store) and
    /// [`with_state_location`](Self::with_state_location) choose another.
    pub fn build(
        definition: &PipelineDefinition,
        registry: &ConnectorRegistry,
    ) -> Result<Self, RuntimeError> {
        let origin = definition.origin.as_str();
        let settings = PipelineSettings::from_options(&definition.pipeline, origin)?;

        let source_type = definition.source.connector_type.as_str();
        let source_factory = registry.source(source_type).ok_or_else(|| {
            let ids = registry.source_identifiers();
            RuntimeError::definition(
                format!("{origin}: source.type"),
                format!(
                    "no source connector '{source_type}'{}; available: {}",
                    did_you_mean(source_type, ids.iter().copied()),
                    ids.join(", ")
                ),
            )
        })?;
        let sink_type = definition.sink.connector.connector_type.as_str();
        let sink_factory = registry.sink(sink_type).ok_or_else(|| {
            let ids = registry.sink_identifiers();
            RuntimeError::definition(
                format!("{origin}: sink.type"),
                format!(
                    "no sink connector '{sink_type}'{}; available: {}",
                    did_you_mean(sink_type, ids.iter().copied()),
                    ids.join(", ")
                ),
            )
        })?;
        check_options(
            origin,
            &definition.source.options,
            &source_factory.options(),
            &source_factory.option_prefixes(),
            source_type,
        )?;
        check_options(
            origin,
            &definition.sink.connector.options,
            &sink_factory.options(),
            &sink_factory.option_prefixes(),
            sink_type,
        )?;

        let blueprint = Blueprint {
            source_factory,
            sink_factory,
            definition: definition.clone(),
        };
        let parts = blueprint.build(&settings)?;
        let state = settings.state.open();
        let state_origin = StateOrigin::of(&settings.state);
        Ok(Self {
            settings,
            source_type: source_type.to_string(),
            sink_type: sink_type.to_string(),
            parts: Some(parts),
            blueprint,
            state,
            state_origin,
            metrics: Arc::default(),
            reset: false,
        })
    }

    /// The pipeline's counters (also served at `/metrics` when `pipeline.metrics.port` is set).
    pub fn metrics(&self) -> Arc<PipelineMetrics> {
        self.metrics.clone()
    }

    /// Connects to the source and the target and checks they can run this pipeline, without
    /// reading or writing data: returns what each side found (`("source", line)`).
    pub async fn preflight(&mut self) -> Result<Vec<(&'static str, String)>, RuntimeError> {
        let fail = |source: Error| RuntimeError::Connector {
            pipeline: self.settings.name.clone(),
            source,
        };
        let mut out: Vec<(&'static str, String)> = Vec::new();
        let parts = match self.parts.take() {
            Some(parts) => parts,
            None => self.blueprint.build(&self.settings)?,
        };
        let parts = self.parts.insert(parts);
        let source = parts.source.preflight().await.map_err(fail)?;
        out.extend(source.into_iter().map(|l| ("source", l)));
        let sink = parts.applier.preflight().await.map_err(fail)?;
        out.extend(sink.into_iter().map(|l| ("sink", l)));
        Ok(out)
    }

    /// Uses another state store (overrides `pipeline.state.dir` and the default
    /// directory). Tests that want nothing on disk pass a
    /// [`MemoryStateStore`](crate::MemoryStateStore).
    #[must_use]
    pub fn with_state_store(mut self, store: Arc<dyn StateStore>) -> Self {
        self.state = store;
        self.state_origin = StateOrigin::Given;
        self
    }

    /// Keeps the state at `location` instead (`cdc run --state-dir`; overrides
    /// `pipeline.state.dir`).
    #[must_use]
    pub fn with_state_location(mut self, location: StateLocation) -> Self {
        self.state = location.open();
        self.state_origin = StateOrigin::of(&location);
        self.settings.state = location;
        self
    }

    /// Starts over instead of resuming (`cdc run --reset`): the source starts as
    /// configured (a new snapshot), schemas are learnt afresh, and the last checkpoint is
    /// used only to finish its commits and to continue its numbering, so the sink's
    /// transaction labels never repeat one that an earlier run used. Needed after a
    /// definition change the runtime refuses to resume across.
    #[must_use]
    pub fn with_reset(mut self, reset: bool) -> Self {
        self.reset = reset;
        self
    }

    /// Turns off the periodic progress log line (`pipeline.progress.interval`), e.g. while
    /// a live terminal view shows the same figures.
    #[must_use]
    pub fn without_progress_log(mut self) -> Self {
        self.settings.progress_interval = None;
        self
    }

    /// The checked `pipeline` settings.
    pub fn settings(&self) -> &PipelineSettings {
        &self.settings
    }

    /// Runs on a background task; the handle stops it and waits for the outcome.
    pub fn spawn(self) -> PipelineHandle {
        let (stop_tx, mut stop_rx) = watch::channel(false);
        let metrics = self.metrics();
        let task = tokio::spawn(self.run(async move {
            let _ = stop_rx.wait_for(|stop| *stop).await;
        }));
        PipelineHandle {
            stop: stop_tx,
            task,
            metrics,
        }
    }

    /// Runs until the source ends, `shutdown` completes, or an error stops it. On shutdown
    /// and at the end a final checkpoint is taken. Errors come back after the last good
    /// checkpoint is kept.
    ///
    /// A run that fails with an error a restart may get past (the connector's retries ran
    /// out on a target or source that is away, a lost transaction) is followed by another
    /// from the last checkpoint, as `restart-strategy.*` says (by default Flink's
    /// exponential delay: 1 s growing to 1 min, unbounded); other errors end it at once.
    ///
    /// Each run first claims the state ([`StateStore::claim`]; refused while another run
    /// holds it), before it touches the target; the claim ends with the run.
    pub async fn run(
        mut self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<RunSummary, RuntimeError> {
        let location = self.state.describe();
        match self.state_origin {
            StateOrigin::Default => {
                tracing::info!(
                    "state: {location} (the default for pipeline '{}'; pipeline.state.dir or --state-dir choose another)",
                    self.settings.name
                );
                if is_default_name(&self.settings.name) {
                    tracing::warn!(
                        "pipeline.name is not set, so the default state directory is shared by every pipeline without a name: set pipeline.name or pipeline.state.dir"
                    );
                }
            }
            StateOrigin::Memory => tracing::warn!("state: {location}: a restart starts over"),
            StateOrigin::Given => tracing::info!("state: {location}"),
        }
        // The metrics endpoint and the progress log span every run, restarts included.
        let _metrics_server = match self.settings.metrics_port {
            Some(port) => Some(AbortOnDrop(
                endpoint::serve(
                    self.settings.metrics_address,
                    port,
                    self.metrics.clone(),
                    Readiness {
                        max_checkpoint_age: ready_checkpoint_age(self.settings.checkpoint_interval),
                    },
                )
                .await
                .map_err(|e| {
                    RuntimeError::definition(
                        "pipeline.metrics.port",
                        format!(
                            "cannot listen on {}:{port}: {e}",
                            self.settings.metrics_address
                        ),
                    )
                })?,
            )),
            None => None,
        };
        let _progress = self
            .settings
            .progress_interval
            .map(|every| AbortOnDrop(tokio::spawn(log_progress(self.metrics.clone(), every))));
        let (stop_tx, mut stop_rx) = watch::channel(false);
        let _shutdown = AbortOnDrop(tokio::spawn(async move {
            shutdown.await;
            tracing::info!("stop requested: finishing with a final checkpoint");
            let _ = stop_tx.send(true);
        }));
        let mut restarts = Restarts::new(self.settings.restart.clone());
        let mut reset = self.reset;
        let mut first = self.parts.take();
        // What every run shares; the connectors themselves are each run's own.
        let runner = Runner {
            settings: self.settings,
            source_type: self.source_type,
            sink_type: self.sink_type,
            blueprint: self.blueprint,
            state: self.state,
            metrics: self.metrics,
        };
        loop {
            let parts = match first.take() {
                Some(parts) => parts,
                None => runner.blueprint.build(&runner.settings)?,
            };
            let outcome = runner.run_once(parts, reset, stop_rx.clone()).await;
            // Only the first run starts over; a restart resumes from its checkpoints.
            reset = false;
            let error = match outcome {
                Ok(mut summary) => {
                    summary.restarts = restarts.attempts();
                    return Ok(summary);
                }
                Err(error) => error,
            };
            // A pipeline without a durable checkpoint never worked (an unreachable host, a
            // wrong password or certificate at the first start): it stops with the error at
            // once. Restarts are for a pipeline that lost its source or target for a while.
            if !may_recover(&error) || *stop_rx.borrow() || !runner.has_checkpoint().await {
                return Err(error);
            }
            let Some(delay) = restarts.next_delay(Instant::now()) else {
                tracing::error!(
                    restarts = restarts.attempts(),
                    "no restart left (restart-strategy); the pipeline stops"
                );
                return Err(error);
            };
            runner.metrics.restarted();
            tracing::warn!(
                error = %error,
                restart = restarts.attempts(),
                "the run failed with an error a restart may get past; restarting from the last checkpoint in {delay:.1?} (restart-strategy)"
            );
            tokio::select! {
                () = tokio::time::sleep(delay) => {}
                _ = stop_rx.wait_for(|stop| *stop) => {
                    tracing::warn!("stop requested while waiting to restart");
                    return Err(error);
                }
            }
        }
    }
}

/// What the runs of one pipeline share.
struct Runner {
    settings: PipelineSettings,
    source_type: String,
    sink_type: String,
    blueprint: Blueprint,
    state: Arc<dyn StateStore>,
    metrics: Arc<PipelineMetrics>,
}

impl Runner {
    /// Whether the state holds a checkpoint (of this process or an earlier one).
    async fn has_checkpoint(&self) -> bool {
        matches!(self.state.load().await, Ok(Some(_)))
    }

    /// One run: claims the state, resumes from its last checkpoint, and runs until the end,
    /// a stop, or an error.
    async fn run_once(
        &self,
        parts: Parts,
        reset: bool,
        stop: watch::Receiver<bool>,
    ) -> Result<RunSummary, RuntimeError> {
        let state = Arc::clone(&self.state);
        let ownership = state.claim().await?;
        tracing::debug!(epoch = %ownership.epoch, earlier = ?ownership.earlier, "claimed the pipeline's state");
        let epoch = ownership.epoch;
        let outcome = self.run_owned(parts, reset, ownership, stop).await;
        self.metrics.run_ended();
        state.release(epoch).await;
        outcome
    }

    async fn run_owned(
        &self,
        parts: Parts,
        reset: bool,
        ownership: Ownership,
        mut stop: watch::Receiver<bool>,
    ) -> Result<RunSummary, RuntimeError> {
        let Parts {
            mut source,
            mut sink,
            applier,
            mut coordinator,
            mut router,
            transformer,
        } = parts;
        let settings = &self.settings;
        let source_type = &self.source_type;
        let sink_type = &self.sink_type;
        let state = Arc::clone(&self.state);
        let metrics = self.metrics.clone();
        let epoch = ownership.epoch;
        let name = settings.name.clone();
        let fail = |source: Error| RuntimeError::Connector {
            pipeline: name.clone(),
            source,
        };

        let restored = state.load().await?;
        match &restored {
            Some(cp) if reset => {
                tracing::warn!(checkpoint = %cp.id, state = %state.describe(), "--reset: starting over from the source's configured start; the checkpoint only finishes its commits and continues its numbering");
            }
            Some(cp) => check_compatible(cp, source_type, sink_type, source.as_ref(), &state)?,
            None => {}
        }

        sink.open().await.map_err(fail)?;
        // The same sink type also after a reset: its prepared data is part of a durable
        // checkpoint, and its labels must not be reused.
        let start = match restored.as_ref().filter(|cp| &cp.sink_type == sink_type) {
            // The crash may have come between saving the checkpoint and committing it.
            Some(cp) => {
                finish_commits(sink.as_mut(), state.as_ref(), epoch, cp, reset, &name).await?
            }
            None => Start::default(),
        };
        if let Some(position) = &start.position {
            coordinator.restore(&position.schemas.targets);
            router
                .restore(
                    &position.schemas.routed_sources,
                    &position.schemas.routed_targets,
                )
                .map_err(fail)?;
            tracing::info!(checkpoint = %position.id, state = %state.describe(), "resuming from checkpoint");
        }
        // `last` is the last checkpoint number used (also across a reset or a rewind), so
        // the sink's next labels continue after it.
        sink.recover(&Recovery::new(
            restored.as_ref().map(|c| c.id),
            epoch,
            ownership.earlier.clone(),
        ))
        .await
        .map_err(fail)?;
        if let Err(e) = source
            .open(start.position.as_ref().map(|p| p.offset.clone()))
            .await
        {
            let _ = sink.close().await;
            let _ = source.close().await;
            return Err(fail(e));
        }
        self.metrics.run_started();

        let first_id = restored.as_ref().map_or(CheckpointId(1), |c| c.id.next());
        let (tx, rx) = mpsc::channel(CHANNEL_CAPACITY);
        let (done_tx, done_rx) = watch::channel::<Option<SourceOffset>>(None);
        let (stop_tx, stop_rx) = watch::channel(false);
        let reader = tokio::spawn(read_source(
            source,
            tx,
            ReaderControl {
                stop: stop_rx,
                done: done_rx,
                interval: settings.checkpoint_interval,
                next_id: first_id,
                metrics: metrics.clone(),
            },
        ));
        let shutdown_task = tokio::spawn(async move {
            let _ = stop.wait_for(|stop| *stop).await;
            let _ = stop_tx.send(true);
        });

        let mut writer = Writer {
            sink,
            applier,
            coordinator,
            state,
            epoch,
            settled: ownership.earlier.is_empty(),
            committed: start.position.clone(),
            settings,
            source_type,
            sink_type,
            done: done_tx,
            metrics,
            router,
            transformer,
            source_tables: start
                .position
                .as_ref()
                .map(|p| p.schemas.source_tables.iter().cloned().collect())
                .unwrap_or_default(),
            summary: RunSummary {
                resumed: start.position.is_some(),
                rewound_from: start.rewound_from,
                last_checkpoint: restored.as_ref().map(|c| c.id),
                ..RunSummary::default()
            },
        };
        let outcome = writer.consume(rx).await;
        shutdown_task.abort();
        let reader_result = reader.await;
        let close = writer.sink.close().await;
        let summary = writer.summary.clone();
        outcome?;
        match reader_result {
            Ok(Ok(())) => {}
            Ok(Err(e)) => return Err(fail(e)),
            Err(e) => return Err(fail(Error::permanent("source task", e.to_string()))),
        }
        close.map_err(fail)?;
        Ok(summary)
    }
}

/// How old the last checkpoint may be for `/readyz`: three intervals, and at least 30 s so
/// that one slow checkpoint (a large prepare, a schema change) does not flap readiness.
fn ready_checkpoint_age(interval: Duration) -> Duration {
    (interval * 3).max(Duration::from_secs(30))
}

/// The connectors and stages one run consumes.
struct Parts {
    source: Box<dyn Source>,
    sink: Box<dyn Sink>,
    applier: Box<dyn SchemaApplier>,
    coordinator: SchemaCoordinator,
    router: Router,
    transformer: Transformer,
}

/// What a restart needs to build the connectors again: the factories and the definition.
struct Blueprint {
    source_factory: Arc<dyn SourceFactory>,
    sink_factory: Arc<dyn SinkFactory>,
    definition: PipelineDefinition,
}

impl Blueprint {
    fn build(&self, settings: &PipelineSettings) -> Result<Parts, RuntimeError> {
        let definition = &self.definition;
        let origin = definition.origin.as_str();
        let router = Router::new(&definition.routes, settings.route_first_match, origin)?;
        let transformer = Transformer::with_decimal_mode(
            &definition.transforms,
            &settings.local_time_zone,
            settings.decimal_mode,
            origin,
        )?;
        let wrap = |e: Error| RuntimeError::definition(origin, e.to_string());
        let source = self
            .source_factory
            .create(&FactoryContext {
                pipeline_name: settings.name.clone(),
                options: definition.source.options.clone(),
                pipeline_options: definition.pipeline.clone(),
            })
            .map_err(wrap)?;
        let parts = self
            .sink_factory
            .create(&FactoryContext {
                pipeline_name: settings.name.clone(),
                options: definition.sink.connector.options.clone(),
                pipeline_options: definition.pipeline.clone(),
            })
            .map_err(wrap)?;
        let coordinator = SchemaCoordinator::new(
            settings.schema_change_behavior,
            definition.sink.include_schema_changes.as_deref(),
            &definition.sink.exclude_schema_changes,
        );
        Ok(Parts {
            source,
            sink: parts.sink,
            applier: parts.applier,
            coordinator,
            router,
            transformer,
        })
    }
}

/// How a pipeline's state store was chosen.
#[derive(Debug, Clone, Copy)]
enum StateOrigin {
    /// The default directory derived from the pipeline's name.
    Default,
    /// `state.dir: none`.
    Memory,
    /// A directory named in the definition or on the command line, or a store handed in.
    Given,
}

impl StateOrigin {
    fn of(location: &StateLocation) -> Self {
        match location {
            StateLocation::Default(_) => Self::Default,
            StateLocation::Memory => Self::Memory,
            StateLocation::Directory(_) | StateLocation::Object(_) => Self::Given,
        }
    }
}

/// A checkpoint's position: where the source resumes and the schemas there.
#[derive(Debug, Clone)]
struct Position {
    id: CheckpointId,
    offset: SourceOffset,
    schemas: SchemaState,
}

impl Position {
    fn of(checkpoint: &Checkpoint) -> Self {
        Self {
            id: checkpoint.id,
            offset: checkpoint.offset.clone(),
            schemas: checkpoint.schemas.clone(),
        }
    }

    /// The last fully committed position `checkpoint` names, its schemas resolved.
    fn committed_before(checkpoint: &Checkpoint) -> Option<Self> {
        checkpoint.committed.as_ref().map(|c| Self {
            id: c.id,
            offset: c.offset.clone(),
            schemas: c
                .schemas
                .clone()
                .unwrap_or_else(|| checkpoint.schemas.clone()),
        })
    }

    /// As a checkpoint whose schemas are `current` stores it.
    fn stored(&self, current: &SchemaState) -> CommittedPosition {
        CommittedPosition {
            id: self.id,
            offset: self.offset.clone(),
            schemas: (self.schemas != *current).then(|| self.schemas.clone()),
        }
    }
}

/// Where a run starts once the last checkpoint's commits are finished.
#[derive(Default)]
struct Start {
    /// The position to resume from; `None` starts as configured (first start, reset,
    /// rewind with nothing fully committed).
    position: Option<Position>,
    /// The checkpoint the target lost, when the run rewound.
    rewound_from: Option<CheckpointId>,
}

/// Commits the saved checkpoint's committables again (idempotent) and decides where the
/// run starts: after it; after the last fully committed checkpoint when the target lost
/// its transactions ([`Error::TransactionLost`]); from the source's configured start on
/// `--reset`, whatever the commit did.
async fn finish_commits(
    sink: &mut dyn Sink,
    state: &dyn StateStore,
    epoch: OwnerEpoch,
    checkpoint: &Checkpoint,
    reset: bool,
    pipeline: &str,
) -> Result<Start, RuntimeError> {
    state.verify(epoch).await?;
    let error = match sink.commit(checkpoint.committables.clone()).await {
        Ok(()) if reset => return Ok(Start::default()),
        Ok(()) => {
            return Ok(Start {
                position: Some(Position::of(checkpoint)),
                rewound_from: None,
            });
        }
        Err(e) if reset || e.is_transaction_lost() => e,
        Err(e) => {
            return Err(RuntimeError::Connector {
                pipeline: pipeline.to_string(),
                source: e,
            });
        }
    };
    let id = checkpoint.id;
    if reset {
        tracing::warn!(checkpoint = %id, error = %error, "--reset: the last checkpoint's transactions could not be committed; starting over anyway (what they held is aborted, or ends with the target's transaction timeout)");
    } else if let Some(committed) = &checkpoint.committed {
        tracing::warn!(
            lost = %id,
            rewind_to = %committed.id,
            error = %error,
            "checkpoint {id}'s prepared transactions are gone from the target (aborted or expired before their commit): rewinding to checkpoint {}, the last fully committed one, and loading everything after it again; tables without a primary key may receive some rows twice if part of checkpoint {id} had been committed",
            committed.id
        );
    } else {
        tracing::warn!(
            lost = %id,
            error = %error,
            "checkpoint {id}'s prepared transactions are gone from the target (aborted or expired before their commit) and no checkpoint before it was fully committed: starting over from the source's configured start; tables without a primary key may receive some rows twice if part of checkpoint {id} had been committed"
        );
    }
    // Nothing of the lost checkpoint may be committed later by anyone: abort what is left
    // of it (best effort: a part already committed or already gone cannot be aborted).
    state.verify(epoch).await?;
    if let Err(e) = sink.abort(checkpoint.committables.clone()).await {
        tracing::warn!(checkpoint = %id, error = %e, "could not abort the rest of the checkpoint's transactions; the target's transaction timeout ends them");
    }
    Ok(if reset {
        Start::default()
    } else {
        Start {
            position: Position::committed_before(checkpoint),
            rewound_from: Some(id),
        }
    })
}

/// Refuses to resume from a checkpoint written by an incompatible definition.
fn check_compatible(
    cp: &Checkpoint,
    source_type: &str,
    sink_type: &str,
    source: &dyn Source,
    state: &Arc<dyn StateStore>,
) -> Result<(), RuntimeError> {
    if cp.source_type != source_type || cp.sink_type != sink_type {
        return Err(RuntimeError::State {
            location: state.describe(),
            message: format!(
                "the checkpoint was written by a {} -> {} pipeline, this one is {source_type} -> {sink_type}; use another state directory, or start over with `cdc run --reset`",
                cp.source_type, cp.sink_type
            ),
        });
    }
    let removed: Vec<String> = cp
        .schemas
        .source_tables
        .iter()
        .filter(|t| source.captures(t) == Some(false))
        .map(ToString::to_string)
        .collect();
    if !removed.is_empty() {
        return Err(RuntimeError::State {
            location: state.describe(),
            message: format!(
                "checkpoint {} captured {} that this definition no longer captures: {}; resuming would leave them silently stale in the target. Put them back in the source's tables, or start over with `cdc run --reset` (a new snapshot)",
                cp.id,
                if removed.len() == 1 {
                    "a table"
                } else {
                    "tables"
                },
                removed.join(", ")
            ),
        });
    }
    Ok(())
}

/// Aborts a helper task when the run ends.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

async fn log_progress(metrics: Arc<PipelineMetrics>, every: Duration) {
    let mut last = 0u64;
    let mut tick = tokio::time::interval(every);
    tick.tick().await;
    loop {
        tick.tick().await;
        let total = metrics.total_changes();
        let rate = (total - last) as f64 / every.as_secs_f64();
        last = total;
        tracing::info!(
            changes = total,
            per_second = format!("{rate:.0}"),
            checkpoints = metrics.checkpoints(),
            "progress"
        );
    }
}

/// A pipeline running on a background task.
#[derive(Debug)]
pub struct PipelineHandle {
    stop: watch::Sender<bool>,
    task: tokio::task::JoinHandle<Result<RunSummary, RuntimeError>>,
    metrics: Arc<PipelineMetrics>,
}

impl PipelineHandle {
    /// The running pipeline's counters.
    pub fn metrics(&self) -> &PipelineMetrics {
        &self.metrics
    }

    /// Asks the pipeline to stop after a final checkpoint (returns at once).
    pub fn stop(&self) {
        let _ = self.stop.send(true);
    }

    /// Whether the pipeline has ended.
    pub fn is_finished(&self) -> bool {
        self.task.is_finished()
    }

    /// Waits for the pipeline to end and returns its outcome.
    pub async fn join(self) -> Result<RunSummary, RuntimeError> {
        self.task.await.map_err(|e| RuntimeError::Connector {
            pipeline: String::new(),
            source: Error::permanent("pipeline task", e.to_string()),
        })?
    }
}

enum Message {
    Events(Vec<Event>),
    /// From here on the source reads a snapshot (`true`) or only its change log.
    Snapshotting(bool),
    /// Everything sent before this is covered by `offset`.
    Barrier(CheckpointId, SourceOffset),
    /// The source ended or was stopped; a final barrier was sent just before.
    End,
    /// The source failed; the writer stops without a checkpoint.
    Failed,
}

/// How the reader task is steered and what it reports.
struct ReaderControl {
    stop: watch::Receiver<bool>,
    /// The offset of the last durable checkpoint.
    done: watch::Receiver<Option<SourceOffset>>,
    interval: Duration,
    next_id: CheckpointId,
    metrics: Arc<PipelineMetrics>,
}

/// How often the writer lets the sink flush what waited too long.
const POLL_FLUSH_EVERY: Duration = Duration::from_millis(100);

/// How often the reader asks the source for its progress.
const PROGRESS_EVERY: Duration = Duration::from_secs(1);

async fn read_source(
    mut source: Box<dyn Source>,
    tx: mpsc::Sender<Message>,
    control: ReaderControl,
) -> Result<(), Error> {
    let ReaderControl {
        mut stop,
        mut done,
        interval,
        mut next_id,
        metrics,
    } = control;
    let result = async {
        let mut next_barrier = Instant::now() + interval;
        let mut next_progress = Instant::now();
        let mut snapshotting = source.snapshotting();
        if tx.send(Message::Snapshotting(snapshotting)).await.is_err() {
            return Ok(());
        }
        // The offset after everything sent so far, and whether a barrier covers it yet:
        // a batch that starts with a schema change gets a checkpoint just before it.
        let mut sent_offset = source.offset()?;
        let mut unbarriered = false;
        loop {
            if Instant::now() >= next_progress {
                metrics.set_source_progress(source.progress());
                next_progress = Instant::now() + PROGRESS_EVERY;
            }
            if done.has_changed().unwrap_or(false) {
                let offset = done.borrow_and_update().clone();
                if let Some(offset) = offset {
                    source.checkpoint_complete(&offset).await?;
                }
            }
            let batch = tokio::select! {
                biased;
                _ = stop.wait_for(|s| *s) => None,
                batch = source.next_batch() => batch?,
            };
            let Some(batch) = batch else { break };
            // The phase after this batch: a snapshot that starts is announced before its
            // first rows, one that ended after its last rows.
            let now_snapshotting = source.snapshotting();
            let started = now_snapshotting && !snapshotting;
            let ended = !now_snapshotting && snapshotting;
            snapshotting = now_snapshotting;
            if started && tx.send(Message::Snapshotting(true)).await.is_err() {
                return Ok(());
            }
            if unbarriered && starts_with_schema_change(&batch) {
                // Everything before the change is committed before it is applied: a
                // target's schema-change job waits for earlier transactions (StarRocks
                // WAITING_TXN), and ours would otherwise stay prepared until a checkpoint
                // that cannot come while the change waits.
                if tx
                    .send(Message::Barrier(next_id, sent_offset.clone()))
                    .await
                    .is_err()
                {
                    return Ok(());
                }
                next_id = next_id.next();
                next_barrier = Instant::now() + interval;
                unbarriered = false;
            }
            if !batch.is_empty() {
                if tx.send(Message::Events(batch)).await.is_err() {
                    return Ok(());
                }
                sent_offset = source.offset()?;
                unbarriered = true;
            }
            if ended && tx.send(Message::Snapshotting(false)).await.is_err() {
                return Ok(());
            }
            if Instant::now() >= next_barrier {
                let offset = source.offset()?;
                if tx.send(Message::Barrier(next_id, offset)).await.is_err() {
                    return Ok(());
                }
                next_id = next_id.next();
                next_barrier = Instant::now() + interval;
                unbarriered = false;
            }
        }
        metrics.set_source_progress(source.progress());
        let offset = source.offset()?;
        let _ = tx.send(Message::Barrier(next_id, offset)).await;
        let _ = tx.send(Message::End).await;
        Ok(())
    }
    .await;
    if result.is_err() {
        let _ = tx.send(Message::Failed).await;
    }
    let closed = source.close().await;
    result.and(closed)
}

/// Whether a batch begins with a schema change that may start a job in the target (a
/// table's creation does not).
fn starts_with_schema_change(batch: &[Event]) -> bool {
    matches!(
        batch.first(),
        Some(Event::SchemaChange(change)) if !matches!(change, SchemaChangeEvent::CreateTable { .. })
    )
}

struct Writer<'a> {
    sink: Box<dyn Sink>,
    applier: Box<dyn SchemaApplier>,
    coordinator: SchemaCoordinator,
    state: Arc<dyn StateStore>,
    /// This run's owner epoch: written into every checkpoint, verified before every
    /// commit and abort.
    epoch: OwnerEpoch,
    /// Whether the store forgot the earlier runs (after this run's first durable
    /// checkpoint; at once when there were none).
    settled: bool,
    /// The last checkpoint whose commit completed: carried by every new checkpoint so
    /// that a restart can rewind to it.
    committed: Option<Position>,
    settings: &'a PipelineSettings,
    source_type: &'a str,
    sink_type: &'a str,
    done: watch::Sender<Option<SourceOffset>>,
    metrics: Arc<PipelineMetrics>,
    router: Router,
    transformer: Transformer,
    /// Source tables announced and not dropped (for the checkpoint).
    source_tables: BTreeSet<TableId>,
    summary: RunSummary,
}

impl Writer<'_> {
    async fn consume(&mut self, mut rx: mpsc::Receiver<Message>) -> Result<(), RuntimeError> {
        let supported = self.applier.supported_kinds();
        // A sink's flush interval is honoured to within one tick: keep it short (the
        // benchmarks saw p99 latency = interval + tick).
        let mut tick = tokio::time::interval(POLL_FLUSH_EVERY);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            let message = tokio::select! {
                m = rx.recv() => m,
                _ = tick.tick() => {
                    self.sink.poll_flush().await.map_err(|e| self.fail(e))?;
                    self.metrics.set_sink_stats(self.sink.stats());
                    continue;
                }
            };
            let Some(message) = message else { break };
            match message {
                Message::Events(events) => self
                    .write(events, &supported)
                    .await
                    .map_err(|e| self.fail(e))?,
                Message::Snapshotting(active) => self
                    .sink
                    .source_snapshotting(active)
                    .await
                    .map_err(|e| self.fail(e))?,
                Message::Barrier(id, offset) => self.checkpoint(id, offset).await?,
                Message::End | Message::Failed => return Ok(()),
            }
        }
        Ok(())
    }

    fn fail(&self, source: Error) -> RuntimeError {
        RuntimeError::Connector {
            pipeline: self.settings.name.clone(),
            source,
        }
    }

    async fn write(
        &mut self,
        events: Vec<Event>,
        supported: &[SchemaChangeKind],
    ) -> Result<(), Error> {
        self.metrics.record_in(&events);
        for event in &events {
            match event {
                Event::SchemaChange(SchemaChangeEvent::CreateTable { table_id, .. }) => {
                    self.source_tables.insert(table_id.clone());
                }
                Event::SchemaChange(SchemaChangeEvent::DropTable { table_id }) => {
                    self.source_tables.remove(table_id);
                }
                _ => {}
            }
        }
        // Transform before routing, as Flink CDC: rules select source tables.
        let events = if self.transformer.is_empty() {
            events
        } else {
            self.transformer.apply(events)?
        };
        let events = if self.router.is_empty() {
            events
        } else {
            self.router.route(events)?
        };
        let mut pending: Vec<Event> = Vec::with_capacity(events.len());
        for event in events {
            match event {
                Event::DataChange(e) => {
                    self.summary.data_changes += 1;
                    pending.push(Event::DataChange(self.coordinator.fit(e)));
                }
                Event::SchemaChange(change) => {
                    self.summary.schema_changes += 1;
                    let planned = self.coordinator.plan(&change, supported)?;
                    if planned.is_empty() {
                        if let SchemaChangeEvent::CreateTable { table_id, .. } = &change {
                            // Re-announced after a resume: the target has the table, but
                            // this sink instance has not heard of it yet.
                            if let Some(announce) = self.coordinator.announce_to_sink(table_id) {
                                pending.push(Event::SchemaChange(announce));
                            }
                        }
                        continue;
                    }
                    if !pending.is_empty() {
                        self.metrics.record(&pending);
                        self.sink.write(std::mem::take(&mut pending)).await?;
                    }
                    // Rows before the change must land under the old schema.
                    self.sink.flush().await?;
                    for c in planned {
                        let applied = tokio::time::timeout(
                            self.settings.schema_change_timeout,
                            self.applier.apply(&c),
                        )
                        .await
                        .unwrap_or_else(|_| {
                            Err(Error::permanent(
                                format!("applying {} to {}", c.kind(), c.table_id()),
                                "timed out (schema-operator.rpc-timeout)",
                            ))
                        });
                        match applied {
                            Ok(()) => {
                                self.coordinator.applied(&c)?;
                                let event = vec![Event::SchemaChange(c)];
                                self.metrics.record(&event);
                                self.sink.write(event).await?;
                            }
                            Err(e) if !self.coordinator.apply_failure_is_fatal() => {
                                tracing::warn!(error = %e, "schema change failed; rows keep the old schema (try_evolve)");
                            }
                            Err(e) => return Err(e),
                        }
                    }
                }
            }
        }
        if !pending.is_empty() {
            self.metrics.record(&pending);
            self.sink.write(pending).await?;
        }
        Ok(())
    }

    /// What a failed save leaves: a checkpoint that was not saved has its prepared work
    /// aborted (while this run still owns the state); one that may have been saved keeps
    /// it for the restart to commit (or abort, if the save did not survive).
    async fn failed_save(
        &mut self,
        id: CheckpointId,
        committables: Vec<Committable>,
        error: RuntimeError,
    ) -> RuntimeError {
        match error {
            RuntimeError::StateMaybeSaved { location, message } => RuntimeError::StateMaybeSaved {
                location,
                message: format!(
                    "{message}; checkpoint {id}'s prepared transactions are left as they are: the restart commits them if the checkpoint was saved, and aborts them otherwise"
                ),
            },
            fenced @ RuntimeError::Fenced { .. } => fenced,
            error => {
                match self.state.verify(self.epoch).await {
                    Ok(()) => {
                        if let Err(e) = self.sink.abort(committables).await {
                            tracing::warn!(checkpoint = %id, error = %e, "could not abort what the unsaved checkpoint prepared; the restart's recovery or the target's transaction timeout ends it");
                        }
                    }
                    Err(fenced) => {
                        tracing::warn!(checkpoint = %id, error = %fenced, "not aborting what the unsaved checkpoint prepared");
                    }
                }
                error
            }
        }
    }

    /// A commit that failed; when the target lost the prepared transactions, the message
    /// says where the restart rewinds to.
    fn failed_commit(&self, id: CheckpointId, error: Error) -> RuntimeError {
        if !error.is_transaction_lost() {
            return self.fail(error);
        }
        let rewind = match &self.committed {
            Some(c) => format!(
                "rewinds to checkpoint {}, the last fully committed one, and loads everything after it again",
                c.id
            ),
            None => "starts over from the source's configured start, since no checkpoint before it was fully committed".into(),
        };
        self.fail(Error::transaction_lost(
            format!("committing checkpoint {id}"),
            format!("{error}; the pipeline stops, and a restart {rewind}"),
        ))
    }

    fn schema_state(&self) -> SchemaState {
        let (routed_sources, routed_targets) = self.router.export();
        SchemaState {
            source_tables: self.source_tables.iter().cloned().collect(),
            targets: self.coordinator.export(),
            routed_sources,
            routed_targets,
        }
    }

    async fn checkpoint(
        &mut self,
        id: CheckpointId,
        offset: SourceOffset,
    ) -> Result<(), RuntimeError> {
        let started = Instant::now();
        let committables = self.sink.prepare(id).await.map_err(|e| self.fail(e))?;
        let schemas = self.schema_state();
        let committed = self.committed.as_ref().map(|c| c.stored(&schemas));
        let cp = Checkpoint::new(
            &self.settings.name,
            self.source_type,
            self.sink_type,
            id,
            offset.clone(),
            committables.clone(),
        )
        .with_schemas(schemas)
        .with_owner(self.epoch)
        .with_committed(committed);
        if let Err(e) = self.state.save(&cp).await {
            return Err(self.failed_save(id, committables, e).await);
        }
        if !self.settled {
            // This run's first durable checkpoint: the sink's recovery cleaned up after
            // the earlier runs, and a restart starts from here, not before them.
            self.state.settle(self.epoch).await?;
            self.settled = true;
        }
        self.state.verify(self.epoch).await?;
        if let Err(e) = self.sink.commit(committables).await {
            return Err(self.failed_commit(id, e));
        }
        self.committed = Some(Position::of(&cp));
        self.summary.checkpoints += 1;
        self.metrics
            .checkpoint_done(started.elapsed().as_millis() as u64);
        self.summary.last_checkpoint = Some(id);
        let _ = self.done.send(Some(offset));
        tracing::debug!(checkpoint = %id, "checkpoint complete");
        Ok(())
    }
}
