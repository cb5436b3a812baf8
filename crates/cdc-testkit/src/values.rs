//! In-memory `values` source and sink for runtime and connector tests.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::{Arc, LazyLock, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use async_trait::async_trait;
use cdc_api::{
    CheckpointId, Column, Committable, ConfigOption, DataChangeEvent, DataType, DataTypeKind,
    Error, Event, FactoryContext, OperationType, Result, Schema, SchemaApplier, SchemaChangeEvent,
    SchemaChangeKind, Sink, SinkFactory, SinkParts, Source, SourceFactory, SourceOffset,
    SourceProgress, TableId, Value,
};

static EVENT_SETS: LazyLock<Mutex<HashMap<String, Arc<Vec<Event>>>>> =
    LazyLock::new(|| Mutex::new(HashMap::new()));
static DATABASES: LazyLock<Mutex<HashMap<String, Arc<Mutex<ValuesDatabase>>>>> =
    LazyLock::new(|| Mutex::new(HashMap::new()));

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Makes `events` available to `source: {type: values, event-set: NAME}` in this process.
pub fn register_event_set(name: &str, events: Vec<Event>) {
    lock(&EVENT_SETS).insert(name.to_string(), Arc::new(events));
}

/// The database a `values` sink with `sink-id: ID` writes into (created empty if new).
pub fn values_database(sink_id: &str) -> Arc<Mutex<ValuesDatabase>> {
    lock(&DATABASES)
        .entry(sink_id.to_string())
        .or_default()
        .clone()
}

fn builtin_event_set(name: &str) -> Option<Vec<Event>> {
    let t = TableId::new("default_namespace", "table1");
    let schema = Schema::new(vec![
        Column::new("col1", DataType::new(DataTypeKind::String).not_null()),
        Column::new("col2", DataType::new(DataTypeKind::String)),
    ])
    .with_primary_key(["col1"]);
    let row = |a: &str, b: &str| vec![Value::String(a.into()), Value::String(b.into())];
    match name {
        "single-table" => Some(vec![
            SchemaChangeEvent::CreateTable {
                table_id: t.clone(),
                schema,
            }
            .into(),
            DataChangeEvent::insert(t.clone(), row("1", "1")).into(),
            DataChangeEvent::insert(t.clone(), row("2", "2")).into(),
            DataChangeEvent::insert(t.clone(), row("3", "3")).into(),
            DataChangeEvent::delete(t.clone(), row("1", "1")).into(),
            DataChangeEvent::update(t, row("2", "2"), row("2", "x")).into(),
        ]),
        _ => None,
    }
}

const EVENT_SET: ConfigOption = ConfigOption::optional(
    "event-set",
    "single-table",
    "the events to emit: `single-table`, or a name given to cdc_testkit::register_event_set",
);
const BATCH_SIZE: ConfigOption = ConfigOption::optional(
    "batch-size",
    "100",
    "events per batch handed to the runtime",
);
const UNBOUNDED: ConfigOption = ConfigOption::optional(
    "unbounded",
    "false",
    "keep running (idle) after the last event until the pipeline is stopped",
);
const BATCH_INTERVAL: ConfigOption = ConfigOption::optional(
    "batch-interval",
    "0ms",
    "pause before each batch, to spread the events over time (for tests)",
);
const TABLES: ConfigOption = ConfigOption::optional_no_default(
    "tables",
    "comma-separated tables (db.table) to read from the event set; the others' events are skipped (default: all)",
);
const SNAPSHOT_EVENTS: ConfigOption = ConfigOption::optional(
    "snapshot-events",
    "0",
    "the first N events count as a snapshot: the source reports snapshotting until it returned them (for tests)",
);
const FAIL_AT: ConfigOption = ConfigOption::optional_no_default(
    "fail-at",
    "fail with a permanent error instead of emitting the event at this index (for tests)",
);

/// `type: values` source: emits a fixed list of events, resumable by index.
#[derive(Debug, Clone, Copy, Default)]
pub struct ValuesSourceFactory;

impl SourceFactory for ValuesSourceFactory {
    fn identifier(&self) -> &'static str {
        "values"
    }

    fn options(&self) -> Vec<ConfigOption> {
        vec![
            EVENT_SET,
            BATCH_SIZE,
            BATCH_INTERVAL,
            UNBOUNDED,
            TABLES,
            FAIL_AT,
            SNAPSHOT_EVENTS,
        ]
    }

    fn create(&self, ctx: &FactoryContext) -> Result<Box<dyn Source>> {
        let o = &ctx.options;
        let name = o.string(&EVENT_SET).unwrap_or_default();
        let events = match lock(&EVENT_SETS).get(&name) {
            Some(e) => e.clone(),
            None => Arc::new(builtin_event_set(&name).ok_or_else(|| {
                Error::invalid_option(
                    o.qualified(EVENT_SET.name),
                    format!("no event set '{name}': use single-table or register one"),
                )
            })?),
        };
        let batch_size = o.u64(&BATCH_SIZE)?.unwrap_or(100).max(1) as usize;
        let tables = match o.string(&TABLES) {
            None => None,
            Some(list) => Some(
                list.split(',')
                    .map(str::trim)
                    .filter(|t| !t.is_empty())
                    .map(|t| {
                        TableId::parse(t).ok_or_else(|| {
                            Error::invalid_option(
                                o.qualified(TABLES.name),
                                format!("'{t}' is not a table name like db.table"),
                            )
                        })
                    })
                    .collect::<Result<BTreeSet<_>>>()?,
            ),
        };
        Ok(Box::new(ValuesSource {
            events,
            next: 0,
            batch_size,
            batch_interval: o.duration(&BATCH_INTERVAL)?.unwrap_or_default(),
            unbounded: o.bool(&UNBOUNDED)?.unwrap_or(false),
            fail_at: o.u64(&FAIL_AT)?.map(|v| v as usize),
            snapshot_events: o.u64(&SNAPSHOT_EVENTS)?.unwrap_or(0) as usize,
            tables,
            announce: Vec::new(),
        }))
    }
}

struct ValuesSource {
    events: Arc<Vec<Event>>,
    next: usize,
    batch_size: usize,
    batch_interval: Duration,
    unbounded: bool,
    fail_at: Option<usize>,
    /// Events before this index count as a snapshot.
    snapshot_events: usize,
    /// The tables read (all when `None`).
    tables: Option<BTreeSet<TableId>>,
    /// CreateTable events to re-announce after a resume.
    announce: Vec<Event>,
}

impl ValuesSource {
    fn reads(&self, event: &Event) -> bool {
        let table = match event {
            Event::DataChange(e) => &e.table_id,
            Event::SchemaChange(c) => c.table_id(),
        };
        self.tables.as_ref().is_none_or(|t| t.contains(table))
    }
}

#[async_trait]
impl Source for ValuesSource {
    async fn open(&mut self, restore: Option<SourceOffset>) -> Result<()> {
        let Some(SourceOffset(offset)) = restore else {
            return Ok(());
        };
        let next = offset
            .get("next")
            .and_then(serde_json::Value::as_u64)
            .ok_or_else(|| Error::permanent("values source", format!("bad offset {offset}")))?
            as usize;
        self.next = next.min(self.events.len());
        // Rebuild the schemas as of the offset and announce them first.
        let mut schemas: BTreeMap<TableId, Schema> = BTreeMap::new();
        for e in &self.events[..self.next] {
            if let Event::SchemaChange(c) = e {
                let current = schemas.get(c.table_id()).cloned().unwrap_or_default();
                match c {
                    SchemaChangeEvent::DropTable { table_id } => {
                        schemas.remove(table_id);
                    }
                    _ => {
                        let next = c
                            .apply_to(&current)
                            .map_err(|m| Error::permanent("values source", m))?;
                        schemas.insert(c.table_id().clone(), next);
                    }
                }
            }
        }
        self.announce = schemas
            .into_iter()
            .map(|(table_id, schema)| SchemaChangeEvent::CreateTable { table_id, schema }.into())
            .filter(|e| self.reads(e))
            .collect();
        Ok(())
    }

    async fn next_batch(&mut self) -> Result<Option<Vec<Event>>> {
        if !self.announce.is_empty() {
            return Ok(Some(std::mem::take(&mut self.announce)));
        }
        if self.next >= self.events.len() {
            if self.unbounded {
                tokio::time::sleep(Duration::from_millis(100)).await;
                return Ok(Some(Vec::new()));
            }
            return Ok(None);
        }
        if !self.batch_interval.is_zero() {
            tokio::time::sleep(self.batch_interval).await;
        }
        let mut end = (self.next + self.batch_size).min(self.events.len());
        // A schema change starts a batch of its own (the runtime checkpoints before it).
        if let Some(i) = self.events[self.next + 1..end].iter().position(|e| {
            matches!(e, Event::SchemaChange(c) if !matches!(c, SchemaChangeEvent::CreateTable { .. }))
        }) {
            end = self.next + 1 + i;
        }
        if let Some(fail_at) = self.fail_at {
            if fail_at == self.next {
                return Err(Error::permanent(
                    "values source",
                    format!("injected failure at event {fail_at}"),
                ));
            }
            if (self.next..end).contains(&fail_at) {
                end = fail_at;
            }
        }
        let batch = self.events[self.next..end]
            .iter()
            .filter(|e| self.reads(e))
            .cloned()
            .collect();
        self.next = end;
        Ok(Some(batch))
    }

    fn offset(&self) -> Result<SourceOffset> {
        Ok(SourceOffset(serde_json::json!({ "next": self.next })))
    }

    fn progress(&self) -> SourceProgress {
        SourceProgress {
            streaming: self.next >= self.snapshot_events,
            ..SourceProgress::default()
        }
    }

    fn captures(&self, table: &TableId) -> Option<bool> {
        Some(self.tables.as_ref().is_none_or(|t| t.contains(table)))
    }
}

/// One table of a [`ValuesDatabase`].
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ValuesTable {
    /// The current schema.
    pub schema: Schema,
    /// Rows (upserted by primary key when the table has one; a delete moves the last row
    /// into the deleted one's place).
    pub rows: Vec<Vec<Value>>,
    /// Row position by rendered primary key, so upserts and deletes do not scan.
    index: HashMap<String, usize>,
}

impl ValuesTable {
    fn new(schema: Schema) -> Self {
        Self {
            schema,
            ..Self::default()
        }
    }

    fn key_of(&self, row: &[Value]) -> Option<String> {
        let idx = self.schema.primary_key_indexes();
        (!idx.is_empty()).then(|| {
            let mut key = String::new();
            for i in idx {
                key.push_str(&row.get(i).map(ToString::to_string).unwrap_or_default());
                key.push('\u{1}');
            }
            key
        })
    }

    fn reindex(&mut self) {
        let index: HashMap<String, usize> = self
            .rows
            .iter()
            .enumerate()
            .filter_map(|(i, r)| self.key_of(r).map(|k| (k, i)))
            .collect();
        self.index = index;
    }

    fn remove_at(&mut self, i: usize) {
        if let Some(k) = self.key_of(&self.rows[i]) {
            self.index.remove(&k);
        }
        self.rows.swap_remove(i);
        if i < self.rows.len() {
            if let Some(k) = self.key_of(&self.rows[i]) {
                self.index.insert(k, i);
            }
        }
    }

    fn apply(&mut self, e: &DataChangeEvent) {
        if let Some(before) = &e.before {
            if e.op != OperationType::Insert {
                let at = match self.key_of(before) {
                    Some(k) => self.index.get(&k).copied(),
                    None => self.rows.iter().position(|r| r == before),
                };
                if let Some(i) = at {
                    self.remove_at(i);
                }
            }
        }
        if let Some(after) = &e.after {
            if let Some(k) = self.key_of(after) {
                if let Some(&i) = self.index.get(&k) {
                    self.rows[i].clone_from(after);
                    return;
                }
                self.index.insert(k, self.rows.len());
            }
            self.rows.push(after.clone());
        }
    }

    /// Rows rendered as text, sorted: easy to compare in tests.
    pub fn sorted_text_rows(&self) -> Vec<Vec<String>> {
        let mut rows: Vec<Vec<String>> = self
            .rows
            .iter()
            .map(|r| r.iter().map(ToString::to_string).collect())
            .collect();
        rows.sort();
        rows
    }
}

/// What a `values` sink committed: tables with their rows, and every committed event in
/// order.
#[derive(Debug, Default)]
pub struct ValuesDatabase {
    /// Tables by id.
    pub tables: BTreeMap<TableId, ValuesTable>,
    /// Every committed event, in order (a CreateTable for a table that exists with the same
    /// schema, as a new sink instance receives after a resume, changes nothing and is not
    /// logged).
    pub log: Vec<Event>,
    /// Checkpoints committed, in order (a repeated commit is not recorded twice).
    pub committed_checkpoints: Vec<CheckpointId>,
    prepared: BTreeMap<CheckpointId, Vec<Event>>,
}

impl ValuesDatabase {
    fn apply_event(&mut self, event: &Event) {
        if let Event::SchemaChange(SchemaChangeEvent::CreateTable { table_id, schema }) = event {
            if self
                .tables
                .get(table_id)
                .is_some_and(|t| &t.schema == schema)
            {
                return;
            }
        }
        match event {
            Event::DataChange(e) => {
                self.tables.entry(e.table_id.clone()).or_default().apply(e);
            }
            Event::SchemaChange(c) => self.apply_schema_change(c),
        }
        self.log.push(event.clone());
    }

    fn apply_schema_change(&mut self, change: &SchemaChangeEvent) {
        let id = change.table_id().clone();
        match change {
            SchemaChangeEvent::CreateTable { schema, .. } => {
                self.tables
                    .entry(id)
                    .or_insert_with(|| ValuesTable::new(schema.clone()));
            }
            SchemaChangeEvent::DropTable { .. } => {
                self.tables.remove(&id);
            }
            SchemaChangeEvent::TruncateTable { .. } => {
                if let Some(t) = self.tables.get_mut(&id) {
                    t.rows.clear();
                    t.index.clear();
                }
            }
            other => {
                if let Some(t) = self.tables.get_mut(&id) {
                    if let Ok(next) = other.apply_to(&t.schema) {
                        let renames: HashMap<&str, &str> = match other {
                            SchemaChangeEvent::RenameColumn { renames, .. } => renames
                                .iter()
                                .map(|(o, n)| (n.as_str(), o.as_str()))
                                .collect(),
                            _ => HashMap::new(),
                        };
                        let map: Vec<Option<usize>> = next
                            .columns
                            .iter()
                            .map(|c| {
                                let old = renames.get(c.name.as_str()).copied().unwrap_or(&c.name);
                                t.schema.column_index(old)
                            })
                            .collect();
                        for row in &mut t.rows {
                            *row = map
                                .iter()
                                .map(|m| m.and_then(|i| row.get(i).cloned()).unwrap_or(Value::Null))
                                .collect();
                        }
                        t.schema = next;
                        t.reindex();
                    }
                }
            }
        }
    }
}

const SINK_ID: ConfigOption = ConfigOption::optional(
    "sink-id",
    "default",
    "the name under which tests read what was committed (cdc_testkit::values_database)",
);
const MATERIALIZE: ConfigOption = ConfigOption::optional(
    "materialize.in.memory",
    "true",
    "accepted for Flink CDC compatibility; the sink always keeps its tables in memory",
);

/// `type: values` sink: keeps committed events and tables in memory, exactly once: data
/// becomes visible at checkpoint commit, and a repeated commit is ignored.
#[derive(Debug, Clone, Copy, Default)]
pub struct ValuesSinkFactory;

impl SinkFactory for ValuesSinkFactory {
    fn identifier(&self) -> &'static str {
        "values"
    }

    fn options(&self) -> Vec<ConfigOption> {
        vec![SINK_ID, MATERIALIZE]
    }

    fn create(&self, ctx: &FactoryContext) -> Result<SinkParts> {
        let sink_id = ctx.options.string(&SINK_ID).unwrap_or_default();
        ctx.options.bool(&MATERIALIZE)?;
        Ok(SinkParts {
            sink: Box::new(ValuesSink {
                db: values_database(&sink_id),
                pending: Vec::new(),
                known: HashSet::new(),
            }),
            applier: Box::new(ValuesApplier),
        })
    }
}

struct ValuesSink {
    db: Arc<Mutex<ValuesDatabase>>,
    pending: Vec<Event>,
    /// Tables this instance was told about by a CreateTable. Like a real sink it cannot
    /// write rows of a table whose schema it was never given, so it holds the runtime to
    /// the contract (also after a resume, where the target knows tables this instance
    /// does not).
    known: HashSet<TableId>,
}

#[async_trait]
impl Sink for ValuesSink {
    async fn write(&mut self, events: Vec<Event>) -> Result<()> {
        for event in &events {
            match event {
                Event::SchemaChange(SchemaChangeEvent::CreateTable { table_id, .. }) => {
                    self.known.insert(table_id.clone());
                }
                Event::DataChange(e) if !self.known.contains(&e.table_id) => {
                    return Err(Error::permanent(
                        format!("values sink, table {}", e.table_id),
                        "a row arrived before the table's CreateTable event",
                    ));
                }
                _ => {}
            }
        }
        self.pending.extend(events);
        Ok(())
    }

    /// Data waits for the checkpoint commit; nothing to do here.
    async fn flush(&mut self) -> Result<()> {
        Ok(())
    }

    async fn prepare(&mut self, checkpoint: CheckpointId) -> Result<Vec<Committable>> {
        let events = std::mem::take(&mut self.pending);
        lock(&self.db).prepared.insert(checkpoint, events);
        Ok(vec![Committable(
            serde_json::json!({ "checkpoint": checkpoint.0 }),
        )])
    }

    async fn commit(&mut self, committables: Vec<Committable>) -> Result<()> {
        let mut db = lock(&self.db);
        for Committable(c) in committables {
            let id = CheckpointId(
                c.get("checkpoint")
                    .and_then(serde_json::Value::as_u64)
                    .unwrap_or(0),
            );
            if db.committed_checkpoints.contains(&id) {
                continue;
            }
            if let Some(events) = db.prepared.remove(&id) {
                for e in &events {
                    db.apply_event(e);
                }
                db.committed_checkpoints.push(id);
            }
        }
        Ok(())
    }

    async fn abort(&mut self, committables: Vec<Committable>) -> Result<()> {
        let mut db = lock(&self.db);
        for Committable(c) in committables {
            if let Some(id) = c.get("checkpoint").and_then(serde_json::Value::as_u64) {
                db.prepared.remove(&CheckpointId(id));
            }
        }
        Ok(())
    }

    async fn recover(&mut self, recovery: &cdc_api::Recovery) -> Result<()> {
        let last = recovery.last;
        let mut db = lock(&self.db);
        let last = last.unwrap_or(CheckpointId(0));
        db.prepared.retain(|id, _| *id <= last);
        Ok(())
    }
}

/// Accepts every schema change (the sink applies them to its tables at commit).
struct ValuesApplier;

#[async_trait]
impl SchemaApplier for ValuesApplier {
    fn supported_kinds(&self) -> Vec<SchemaChangeKind> {
        SchemaChangeKind::ALL.to_vec()
    }

    async fn apply(&mut self, _change: &SchemaChangeEvent) -> Result<()> {
        Ok(())
    }
}
