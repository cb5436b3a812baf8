//! `schema.change.behavior` end to end (values -> values), and bounded memory with a
//! stalled sink.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use async_trait::async_trait;
use cdc_api::{
    Column, ColumnPosition, ConfigOption, ConnectorRegistry, DataChangeEvent, DataType,
    DataTypeKind, Event, FactoryContext, Result, Schema, SchemaApplier, SchemaChangeEvent,
    SchemaChangeKind, Sink, SinkFactory, SinkParts, Source, SourceFactory, SourceOffset, TableId,
    Value,
};
use cdc_runtime::{Pipeline, PipelineDefinition};
use cdc_testkit::{register_event_set, test_registry, values_database};

fn t() -> TableId {
    TableId::new("db", "t")
}

fn int(name: &str) -> Column {
    Column::new(name, DataType::new(DataTypeKind::Int))
}

/// create (a, b); row; add c; row; drop b; row; rename a -> id; row; truncate; row.
fn evolving_events() -> Vec<Event> {
    vec![
        SchemaChangeEvent::CreateTable {
            table_id: t(),
            schema: Schema::new(vec![int("a"), int("b")]).with_primary_key(["a"]),
        }
        .into(),
        DataChangeEvent::insert(t(), vec![Value::Int(1), Value::Int(10)]).into(),
        SchemaChangeEvent::AddColumn {
            table_id: t(),
            columns: vec![(int("c"), ColumnPosition::Last)],
        }
        .into(),
        DataChangeEvent::insert(t(), vec![Value::Int(2), Value::Int(20), Value::Int(200)]).into(),
        SchemaChangeEvent::DropColumn {
            table_id: t(),
            columns: vec!["b".into()],
        }
        .into(),
        DataChangeEvent::insert(t(), vec![Value::Int(3), Value::Int(300)]).into(),
        SchemaChangeEvent::RenameColumn {
            table_id: t(),
            renames: vec![("c".into(), "d".into())],
        }
        .into(),
        DataChangeEvent::insert(t(), vec![Value::Int(4), Value::Int(400)]).into(),
        SchemaChangeEvent::TruncateTable { table_id: t() }.into(),
        DataChangeEvent::insert(t(), vec![Value::Int(5), Value::Int(500)]).into(),
    ]
}

async fn run_with(
    behavior: &str,
    extra_sink: &str,
) -> std::result::Result<(Vec<String>, Vec<Vec<String>>), String> {
    let name = format!("behavior-{behavior}{}", extra_sink.len());
    register_event_set(&name, evolving_events());
    let text = format!(
        "source: {{type: values, event-set: {name}}}\nsink: {{type: values, sink-id: {name}{extra_sink}}}\n\
         pipeline: {{state.dir: none, name: {name}, schema.change.behavior: {behavior}}}\n"
    );
    let def = PipelineDefinition::from_yaml_str(&text, "b.yaml").unwrap();
    Pipeline::build(&def, &test_registry())
        .unwrap()
        .run(std::future::pending())
        .await
        .map_err(|e| e.to_string())?;
    let db = values_database(&name);
    let db = db.lock().unwrap();
    let table = &db.tables[&t()];
    Ok((
        table.schema.column_names().map(str::to_string).collect(),
        table.sorted_text_rows(),
    ))
}

fn rows(rows: &[&[&str]]) -> Vec<Vec<String>> {
    rows.iter()
        .map(|r| r.iter().map(|s| (*s).to_string()).collect())
        .collect()
}

#[tokio::test]
async fn evolve_applies_every_change() {
    let (columns, data) = run_with("evolve", "").await.unwrap();
    assert_eq!(columns, ["a", "d"]);
    assert_eq!(data, rows(&[&["5", "500"]]), "truncate emptied the table");
}

#[tokio::test]
async fn lenient_loses_nothing() {
    let (columns, data) = run_with("lenient", "").await.unwrap();
    // b stays (NULL from its drop on), the rename adds d, truncate is not forwarded.
    assert_eq!(columns, ["a", "b", "c", "d"]);
    assert_eq!(
        data,
        rows(&[
            &["1", "10", "NULL", "NULL"],
            &["2", "20", "200", "NULL"],
            &["3", "NULL", "300", "NULL"],
            &["4", "NULL", "NULL", "400"],
            &["5", "NULL", "NULL", "500"],
        ])
    );
}

/// Flink CDC's lenient mode excludes truncate.table and drop.table only while
/// `exclude.schema.changes` is not written (YamlPipelineDefinitionParser, FLINK-36514):
/// including truncate.table does not bring it back (exclude wins), an explicit empty
/// exclude list does.
#[tokio::test]
async fn lenient_forwards_truncate_only_when_exclude_is_written() {
    let (_, data) = run_with(
        "lenient",
        ", include.schema.changes: [add.column, truncate.table]",
    )
    .await
    .unwrap();
    assert_eq!(data.len(), 5, "truncate stays excluded: {data:?}");
    let (_, data) = run_with(
        "lenient",
        ", include.schema.changes: [add.column, truncate.table], exclude.schema.changes: []",
    )
    .await
    .unwrap();
    assert_eq!(data.len(), 1, "truncate forwarded: {data:?}");
    let (_, data) = run_with("lenient", ", exclude.schema.changes: [drop.column]")
        .await
        .unwrap();
    assert_eq!(data.len(), 1, "truncate forwarded: {data:?}");
    // Without `schema.change.behavior` in the file, Flink CDC's parser takes it for
    // lenient when it resolves the exclude list, whatever behavior the pipeline then runs.
    let tables = run_events("no-behavior-written", evolving_events(), "", "")
        .await
        .unwrap();
    assert_eq!(tables[&t()].rows.len(), 5, "truncate excluded");
}

async fn run_events(
    name: &str,
    events: Vec<Event>,
    pipeline: &str,
    extra: &str,
) -> std::result::Result<std::collections::BTreeMap<TableId, cdc_testkit::ValuesTable>, String> {
    register_event_set(name, events);
    let text = format!(
        "source: {{type: values, event-set: {name}}}\nsink: {{type: values, sink-id: {name}}}\n{extra}\
         pipeline: {{state.dir: none, name: {name}, {pipeline}}}\n"
    );
    let def = PipelineDefinition::from_yaml_str(&text, "b.yaml").map_err(|e| e.to_string())?;
    Pipeline::build(&def, &test_registry())
        .map_err(|e| e.to_string())?
        .run(std::future::pending())
        .await
        .map_err(|e| e.to_string())?;
    let db = values_database(name);
    let tables = db.lock().unwrap().tables.clone();
    Ok(tables)
}

fn column_list(schema: &Schema) -> Vec<String> {
    schema
        .columns
        .iter()
        .map(|c| format!("{} {}", c.name, c.data_type))
        .collect()
}

/// SchemaDerivator.lenientizeSchemaChangeEvent: a type change reaches the target as it is
/// (`age INT` -> `DOUBLE` makes the target column DOUBLE, NOT NULL kept); an added column
/// is nullable and last; a dropped NOT NULL column stays, nullable; a rename adds the new
/// name last and makes the old column nullable.
#[tokio::test]
async fn lenient_rewrites_schema_changes_as_flink_cdc() {
    let not_null =
        |name: &str, kind: DataTypeKind| Column::new(name, DataType::new(kind).not_null());
    let events = vec![
        SchemaChangeEvent::CreateTable {
            table_id: t(),
            schema: Schema::new(vec![
                not_null("id", DataTypeKind::Int),
                not_null("age", DataTypeKind::Int),
                not_null("code", DataTypeKind::Int),
                not_null("name", DataTypeKind::String),
            ])
            .with_primary_key(["id"]),
        }
        .into(),
        DataChangeEvent::insert(
            t(),
            vec![
                Value::Int(1),
                Value::Int(30),
                Value::Int(7),
                Value::String("a".into()),
            ],
        )
        .into(),
        SchemaChangeEvent::AlterColumnType {
            table_id: t(),
            types: vec![("age".into(), DataType::new(DataTypeKind::Double).not_null())],
            comments: std::collections::BTreeMap::new(),
        }
        .into(),
        SchemaChangeEvent::AddColumn {
            table_id: t(),
            columns: vec![(
                not_null("score", DataTypeKind::BigInt),
                ColumnPosition::After("id".into()),
            )],
        }
        .into(),
        SchemaChangeEvent::DropColumn {
            table_id: t(),
            columns: vec!["code".into()],
        }
        .into(),
        SchemaChangeEvent::RenameColumn {
            table_id: t(),
            renames: vec![("name".into(), "full_name".into())],
        }
        .into(),
        // Source order now: id, score, age, full_name.
        DataChangeEvent::insert(
            t(),
            vec![
                Value::Int(2),
                Value::BigInt(9),
                Value::Double(2.5),
                Value::String("b".into()),
            ],
        )
        .into(),
    ];
    let db = run_events(
        "lenient-flink",
        events,
        "schema.change.behavior: lenient",
        "",
    )
    .await
    .unwrap();
    let table = &db[&t()];
    assert_eq!(
        column_list(&table.schema),
        [
            "id INT NOT NULL",
            "age DOUBLE NOT NULL",
            "code INT",
            "name STRING",
            "score BIGINT",
            "full_name STRING",
        ]
    );
    assert_eq!(
        table.sorted_text_rows(),
        rows(&[
            &["1", "30", "7", "a", "NULL", "NULL"],
            &["2", "2.5", "NULL", "NULL", "9", "b"],
        ])
    );
}

/// Sharded tables merged by a route get Flink CDC's least common types
/// (SchemaMergingUtils.getLeastCommonType): two VARCHAR lengths give STRING, INT and
/// DOUBLE give DOUBLE, a DECIMAL and an INT a DECIMAL holding both, TIMESTAMP and
/// TIMESTAMP_LTZ the LTZ with the larger precision.
#[tokio::test]
async fn merged_shards_take_flink_cdc_least_common_types() {
    let shard = |n: u32| TableId::new(format!("shard_{n}"), "users");
    let schema = |name_len: u32, score: DataTypeKind, amount: DataTypeKind, at: DataTypeKind| {
        Schema::new(vec![
            Column::new("id", DataType::new(DataTypeKind::Int).not_null()),
            Column::new(
                "name",
                DataType::new(DataTypeKind::VarChar { length: name_len }),
            ),
            Column::new("score", DataType::new(score)),
            Column::new("amount", DataType::new(amount)),
            Column::new("at", DataType::new(at)),
        ])
        .with_primary_key(["id"])
    };
    let events = vec![
        SchemaChangeEvent::CreateTable {
            table_id: shard(1),
            schema: schema(
                10,
                DataTypeKind::Int,
                DataTypeKind::Decimal {
                    precision: 10,
                    scale: 2,
                },
                DataTypeKind::Timestamp { precision: 0 },
            ),
        }
        .into(),
        SchemaChangeEvent::CreateTable {
            table_id: shard(2),
            schema: schema(
                68,
                DataTypeKind::Double,
                DataTypeKind::Int,
                DataTypeKind::TimestampLtz { precision: 3 },
            ),
        }
        .into(),
    ];
    let route = "route: [{source-table: 'shard_\\.*.users', sink-table: all.users}]\n";
    let db = run_events(
        "merge-types",
        events,
        "schema.change.behavior: evolve",
        route,
    )
    .await
    .unwrap();
    assert_eq!(
        column_list(&db[&TableId::new("all", "users")].schema),
        [
            "id INT NOT NULL",
            "name STRING",
            "score DOUBLE",
            "amount DECIMAL(12, 2)",
            "at TIMESTAMP_LTZ(3)",
        ]
    );
}

/// `sink.partitioning.strategy` (a Flink CDC pipeline option) chooses how Flink spreads
/// changes over parallel sink writers. One writer here takes every change in source
/// order, which keeps each strategy's promise, so the option is accepted; its value is
/// checked as Flink CDC checks it.
#[tokio::test]
async fn sink_partitioning_strategy_is_accepted_and_checked() {
    let events = || evolving_events()[..2].to_vec();
    for value in ["TABLE_ID", "primary_key", "SINK_DEFINED"] {
        let db = run_events(
            &format!("partitioning-{value}"),
            events(),
            &format!("schema.change.behavior: evolve, sink.partitioning.strategy: {value}"),
            "",
        )
        .await
        .unwrap();
        assert_eq!(db[&t()].rows.len(), 1);
    }
    let err = run_events(
        "partitioning-bad",
        events(),
        "sink.partitioning.strategy: ROUND_ROBIN",
        "",
    )
    .await
    .unwrap_err();
    assert!(
        err.contains("pipeline.sink.partitioning.strategy")
            && err.contains("'ROUND_ROBIN' is not one of SINK_DEFINED, PRIMARY_KEY, TABLE_ID"),
        "{err}"
    );
}

#[tokio::test]
async fn ignore_keeps_the_created_shape() {
    let (columns, data) = run_with("ignore", "").await.unwrap();
    assert_eq!(columns, ["a", "b"]);
    assert_eq!(
        data,
        rows(&[
            &["1", "10"],
            &["2", "20"],
            &["3", "NULL"],
            &["4", "NULL"],
            &["5", "NULL"]
        ])
    );
}

#[tokio::test]
async fn exception_stops_at_the_first_change() {
    let err = run_with("exception", "").await.unwrap_err();
    assert!(
        err.contains("add.column is not allowed by schema.change.behavior: exception"),
        "{err}"
    );
}

#[tokio::test]
async fn evolve_with_excluded_kinds_fits_rows_by_name() {
    let (columns, data) = run_with("evolve", ", exclude.schema.changes: [drop, rename]")
        .await
        .unwrap();
    assert_eq!(columns, ["a", "b", "c"]);
    assert_eq!(data, rows(&[&["5", "NULL", "NULL"]]));
}

/// An applier that refuses add.column: try_evolve keeps the old shape, evolve stops.
#[tokio::test]
async fn try_evolve_tolerates_a_failed_change() {
    struct Refusing;
    #[async_trait]
    impl SchemaApplier for Refusing {
        fn supported_kinds(&self) -> Vec<SchemaChangeKind> {
            SchemaChangeKind::ALL.to_vec()
        }
        async fn apply(&mut self, change: &SchemaChangeEvent) -> Result<()> {
            if change.kind() == SchemaChangeKind::AddColumn {
                return Err(cdc_api::Error::permanent(
                    "test target",
                    "cannot add columns",
                ));
            }
            Ok(())
        }
    }
    struct Factory;
    impl SinkFactory for Factory {
        fn identifier(&self) -> &'static str {
            "refusing"
        }
        fn options(&self) -> Vec<ConfigOption> {
            vec![ConfigOption::optional("sink-id", "x", "")]
        }
        fn create(&self, ctx: &FactoryContext) -> Result<SinkParts> {
            let parts = cdc_testkit::ValuesSinkFactory.create(ctx)?;
            Ok(SinkParts {
                sink: parts.sink,
                applier: Box::new(Refusing),
            })
        }
    }
    let mut registry = test_registry();
    registry.register_sink(Factory);
    for (behavior, ok) in [("try_evolve", true), ("evolve", false)] {
        let name = format!("refusing-{behavior}");
        register_event_set(&name, evolving_events()[..4].to_vec());
        let text = format!(
            "source: {{type: values, event-set: {name}}}\nsink: {{type: refusing, sink-id: {name}}}\n\
             pipeline: {{state.dir: none, name: {name}, schema.change.behavior: {behavior}}}\n"
        );
        let def = PipelineDefinition::from_yaml_str(&text, "r.yaml").unwrap();
        let result = Pipeline::build(&def, &registry)
            .unwrap()
            .run(std::future::pending())
            .await;
        assert_eq!(result.is_ok(), ok, "{behavior}: {result:?}");
        if ok {
            let db = values_database(&name);
            let db = db.lock().unwrap();
            assert_eq!(
                db.tables[&t()].sorted_text_rows(),
                rows(&[&["1", "10"], &["2", "20"]])
            );
        }
    }
}

/// A source that never ends, with 4 KB rows; a sink that takes 20 ms per batch. Memory must
/// stay bounded by the channel, not grow with what the source could read.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_sink_keeps_memory_bounded() {
    struct Endless(u64);
    #[async_trait]
    impl Source for Endless {
        async fn open(&mut self, _: Option<SourceOffset>) -> Result<()> {
            Ok(())
        }
        async fn next_batch(&mut self) -> Result<Option<Vec<Event>>> {
            let mut batch = Vec::with_capacity(257);
            if self.0 == 0 {
                batch.push(
                    SchemaChangeEvent::CreateTable {
                        table_id: t(),
                        schema: Schema::new(vec![
                            int("a"),
                            Column::new("s", DataType::new(DataTypeKind::String)),
                        ]),
                    }
                    .into(),
                );
            }
            for _ in 0..256 {
                self.0 += 1;
                batch.push(
                    DataChangeEvent::insert(
                        t(),
                        vec![Value::Int(self.0 as i32), Value::String("x".repeat(4096))],
                    )
                    .into(),
                );
            }
            Ok(Some(batch))
        }
        fn offset(&self) -> Result<SourceOffset> {
            Ok(SourceOffset(self.0.into()))
        }
    }
    struct EndlessFactory;
    impl SourceFactory for EndlessFactory {
        fn identifier(&self) -> &'static str {
            "endless"
        }
        fn options(&self) -> Vec<ConfigOption> {
            Vec::new()
        }
        fn create(&self, _: &FactoryContext) -> Result<Box<dyn Source>> {
            Ok(Box::new(Endless(0)))
        }
    }
    struct Slow;
    #[async_trait]
    impl Sink for Slow {
        async fn write(&mut self, _events: Vec<Event>) -> Result<()> {
            tokio::time::sleep(Duration::from_millis(20)).await;
            Ok(())
        }
        async fn flush(&mut self) -> Result<()> {
            Ok(())
        }
    }
    struct Accept;
    #[async_trait]
    impl SchemaApplier for Accept {
        fn supported_kinds(&self) -> Vec<SchemaChangeKind> {
            SchemaChangeKind::ALL.to_vec()
        }
        async fn apply(&mut self, _: &SchemaChangeEvent) -> Result<()> {
            Ok(())
        }
    }
    struct SlowFactory;
    impl SinkFactory for SlowFactory {
        fn identifier(&self) -> &'static str {
            "slow"
        }
        fn options(&self) -> Vec<ConfigOption> {
            Vec::new()
        }
        fn create(&self, _: &FactoryContext) -> Result<SinkParts> {
            Ok(SinkParts {
                sink: Box::new(Slow),
                applier: Box::new(Accept),
            })
        }
    }
    fn rss_kb() -> u64 {
        std::fs::read_to_string("/proc/self/status")
            .ok()
            .and_then(|s| {
                s.lines()
                    .find(|l| l.starts_with("VmRSS:"))
                    .and_then(|l| l.split_whitespace().nth(1).and_then(|v| v.parse().ok()))
            })
            .unwrap_or(0)
    }
    let mut registry = ConnectorRegistry::new();
    registry
        .register_source(EndlessFactory)
        .register_sink(SlowFactory);
    let def = PipelineDefinition::from_yaml_str(
        "source: {type: endless}\nsink: {type: slow}\npipeline: {state.dir: none, name: stalled}\n",
        "s.yaml",
    )
    .unwrap();
    let handle = Pipeline::build(&def, &registry).unwrap().spawn();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let settled = rss_kb();
    let mut peak = settled;
    // Three seconds: an unbounded pipeline would buffer gigabytes by then.
    for _ in 0..30 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        peak = peak.max(rss_kb());
    }
    handle.stop();
    handle.join().await.unwrap();
    let growth_mb = peak.saturating_sub(settled) / 1024;
    assert!(
        growth_mb < 100,
        "RSS grew by {growth_mb} MB with a stalled sink"
    );
}
