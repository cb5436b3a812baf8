//! Checkpoints in an S3-compatible object store (a private `moto_server`, see
//! `cdc_testkit::S3Server`): a restarted pipeline resumes exactly, two instances racing for
//! one prefix leave one owner and nothing doubled, a store that stops answering gives
//! bounded, clear errors and the pipeline resumes once it is back, and a torn object is
//! skipped.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers may panic

use std::sync::Arc;
use std::time::{Duration, Instant};

use cdc_api::{
    CheckpointId, Column, DataChangeEvent, DataType, DataTypeKind, Event, Schema,
    SchemaChangeEvent, SourceOffset, TableId, Value,
};
use cdc_runtime::{
    Checkpoint, ObjectStateStore, Pipeline, PipelineDefinition, RunSummary, RuntimeError,
    StateStore, StoreLimits,
};
use cdc_testkit::{S3Server, register_event_set, test_registry, values_database};

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
    }
    out
}

fn definition(name: &str) -> PipelineDefinition {
    let text = format!(
        "source: {{type: values, event-set: {name}, batch-size: 5, batch-interval: 10ms}}\n\
         sink: {{type: values, sink-id: {name}}}\n\
         pipeline: {{name: {name}, checkpoint.interval: 100ms, restart-strategy.type: none}}\n"
    );
    PipelineDefinition::from_yaml_str(&text, "object_state.yaml").unwrap()
}

fn store(server: &S3Server, prefix: &str, limits: StoreLimits) -> Arc<ObjectStateStore> {
    Arc::new(ObjectStateStore::open_with(&server.url(prefix), limits, &server.options()).unwrap())
}

fn quick() -> StoreLimits {
    StoreLimits::short(Duration::from_secs(2), 3)
}

/// Runs `name`'s pipeline on `store` until it ends, fails, or `stop_after` elapses.
async fn run(
    name: &str,
    store: Arc<dyn StateStore>,
    stop_after: Option<Duration>,
) -> Result<RunSummary, RuntimeError> {
    let shutdown = async move {
        match stop_after {
            Some(after) => tokio::time::sleep(after).await,
            None => std::future::pending().await,
        }
    };
    tokio::time::timeout(
        Duration::from_secs(120),
        Pipeline::build(&definition(name), &test_registry())
            .unwrap()
            .with_state_store(store)
            .run(shutdown),
    )
    .await
    .expect("the pipeline timed out")
}

/// The rows committed in `name`'s values database, each id with how often it arrived.
fn committed_rows(name: &str) -> Vec<i64> {
    let db = values_database(name);
    let db = db.lock().unwrap();
    let mut ids: Vec<i64> = db
        .log
        .iter()
        .filter_map(|e| match e {
            Event::DataChange(change) => change.after.as_ref().and_then(|row| match row.first() {
                Some(Value::BigInt(id)) => Some(*id),
                _ => None,
            }),
            Event::SchemaChange(_) => None,
        })
        .collect();
    ids.sort_unstable();
    ids
}

fn assert_exactly_once(name: &str, rows: i64) {
    let ids = committed_rows(name);
    let expected: Vec<i64> = (0..rows).collect();
    assert_eq!(ids.len(), expected.len(), "rows lost or doubled");
    assert_eq!(ids, expected);
}

#[tokio::test]
async fn a_pipeline_checkpointing_to_s3_resumes_exactly_after_a_restart() {
    let Some(server) = S3Server::start_or_skip().await else {
        return;
    };
    let name = "s3-resume";
    register_event_set(name, events(600));
    let first = run(
        name,
        store(&server, name, quick()),
        Some(Duration::from_millis(500)),
    )
    .await
    .unwrap();
    assert!(first.checkpoints > 0, "{first:?}");
    let part = committed_rows(name).len();
    assert!(part > 0 && part < 600, "stopped midway: {part} rows");

    // A new process: a new store on the same prefix.
    let second = run(name, store(&server, name, quick()), None)
        .await
        .unwrap();
    assert!(second.checkpoints > 0);
    assert_exactly_once(name, 600);
    let cp = store(&server, name, quick()).load().await.unwrap().unwrap();
    assert!(
        cp.id.0 >= first.checkpoints + second.checkpoints - 1,
        "{cp:?}"
    );
}

#[tokio::test]
async fn two_instances_racing_for_one_prefix_leave_one_owner_and_nothing_doubled() {
    let Some(server) = S3Server::start_or_skip().await else {
        return;
    };
    let name = "s3-race";
    register_event_set(name, events(1500));
    let first = tokio::spawn(run(name, store(&server, name, quick()), None));
    // Let the first run checkpoint a few times, then start a second on the same prefix.
    tokio::time::sleep(Duration::from_millis(700)).await;
    let second = run(name, store(&server, name, quick()), None).await;
    let first = first.await.unwrap();
    let err = first.expect_err("the first instance must lose the state to the second");
    assert!(matches!(err, RuntimeError::Fenced { .. }), "{err:?}");
    let text = err.to_string();
    assert!(
        text.contains("took over") && text.contains("s3://cdc-state/s3-race"),
        "{text}"
    );
    second.unwrap();
    // What the fenced run prepared after the takeover was never committed.
    assert_exactly_once(name, 1500);

    // Claims racing directly: exactly one of them owns the prefix afterwards.
    let stores: Vec<Arc<ObjectStateStore>> =
        (0..4).map(|_| store(&server, "claims", quick())).collect();
    let claims: Vec<_> = stores
        .iter()
        .map(|s| {
            let s = s.clone();
            tokio::spawn(async move { s.claim().await })
        })
        .collect();
    let mut epochs = Vec::new();
    for claim in claims {
        epochs.push(claim.await.unwrap().unwrap().epoch);
    }
    let mut owners = Vec::new();
    for (s, epoch) in stores.iter().zip(&epochs) {
        if s.verify(*epoch).await.is_ok() {
            owners.push(*epoch);
        }
    }
    assert_eq!(owners.len(), 1, "{epochs:?}");
}

#[tokio::test]
async fn an_unreachable_store_gives_bounded_clear_errors_and_the_pipeline_resumes_after() {
    let Some(server) = S3Server::start_or_skip().await else {
        return;
    };
    let name = "s3-away";
    register_event_set(name, events(1500));

    // A store nobody listens on: a claim fails within its bounds, naming the URL only.
    let dead = ObjectStateStore::open_with(
        "s3://cdc-state/dead",
        StoreLimits::short(Duration::from_millis(500), 2),
        &[
            ("aws_endpoint".into(), "http://127.0.0.1:9".into()),
            ("aws_allow_http".into(), "true".into()),
            ("aws_access_key_id".into(), "testing-key-id".into()),
            ("aws_secret_access_key".into(), "testing-secret-key".into()),
            ("aws_region".into(), "us-east-1".into()),
        ],
    )
    .unwrap();
    let started = Instant::now();
    let err = dead.claim().await.unwrap_err();
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "{:?}",
        started.elapsed()
    );
    assert!(
        matches!(err, RuntimeError::StateUnavailable { .. }),
        "{err:?}"
    );
    let text = err.to_string();
    assert!(
        text.contains("s3://cdc-state/dead") && text.contains("did not answer"),
        "{text}"
    );
    assert!(!text.contains("testing-secret-key"), "{text}");

    // A short pause (shorter than the retries) goes unnoticed.
    let s = store(&server, "pause", quick());
    let mine = s.claim().await.unwrap();
    server.pause();
    let resume = async {
        tokio::time::sleep(Duration::from_millis(1500)).await;
        server.resume();
    };
    let cp = Checkpoint::new(
        "p",
        "values",
        "values",
        CheckpointId(1),
        SourceOffset(serde_json::json!({})),
        Vec::new(),
    )
    .with_owner(mine.epoch);
    let (saved, ()) = tokio::join!(s.save(&cp), resume);
    saved.unwrap();
    assert_eq!(s.load().await.unwrap().unwrap().id, CheckpointId(1));

    // A pipeline whose store stops answering for longer: it stops with a clear error...
    let running = tokio::spawn(run(name, store(&server, name, quick()), None));
    tokio::time::sleep(Duration::from_millis(600)).await;
    server.pause();
    let stopped = Instant::now();
    let outcome = running.await.unwrap();
    assert!(
        stopped.elapsed() < Duration::from_secs(40),
        "{:?}",
        stopped.elapsed()
    );
    server.resume();
    let err = outcome.expect_err("the pipeline must stop while the store is away");
    assert!(
        matches!(
            err,
            RuntimeError::StateUnavailable { .. } | RuntimeError::StateMaybeSaved { .. }
        ),
        "{err:?}"
    );
    assert!(err.to_string().contains("s3://cdc-state/s3-away"), "{err}");
    // ...and a restart once it is back resumes exactly.
    run(name, store(&server, name, quick()), None)
        .await
        .unwrap();
    assert_exactly_once(name, 1500);
}

#[tokio::test]
async fn a_torn_state_object_in_s3_is_skipped() {
    use object_store::{ObjectStore as _, ObjectStoreExt as _};
    let Some(server) = S3Server::start_or_skip().await else {
        return;
    };
    let name = "s3-torn";
    register_event_set(name, events(300));
    run(
        name,
        store(&server, name, quick()),
        Some(Duration::from_millis(400)),
    )
    .await
    .unwrap();
    let saved = store(&server, name, quick()).load().await.unwrap().unwrap();

    // A torn object as the newest generation (written past the store, as a tool without
    // atomic uploads might leave it).
    let mut raw = object_store::aws::AmazonS3Builder::new().with_bucket_name(server.bucket());
    for (k, v) in server.options() {
        raw = raw.with_config(k.parse().unwrap(), v);
    }
    let raw = raw.build().unwrap();
    let folder = object_store::path::Path::from(format!("{name}/state"));
    let listing = raw.list_with_delimiter(Some(&folder)).await.unwrap();
    let newest = listing
        .objects
        .iter()
        .map(|o| o.location.clone())
        .max_by(|a, b| a.as_ref().cmp(b.as_ref()))
        .unwrap();
    let whole = raw.get(&newest).await.unwrap().bytes().await.unwrap();
    let number: u64 = newest
        .filename()
        .unwrap()
        .trim_end_matches(".json")
        .parse()
        .unwrap();
    let torn = folder
        .clone()
        .join(format!("{:020}.json", number + 1).as_str());
    raw.put(&torn, whole.slice(..whole.len() / 2).into())
        .await
        .unwrap();

    let store_after = store(&server, name, quick());
    assert_eq!(store_after.load().await.unwrap().unwrap().id, saved.id);
    // The pipeline resumes from the generation before it and finishes exactly.
    run(name, store_after, None).await.unwrap();
    assert_exactly_once(name, 300);
}
