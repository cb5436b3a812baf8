//! values -> values pipelines with `transform` rules: exact schemas and rows at the sink.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers may panic

use cdc_api::{
    Column, ColumnPosition, DataChangeEvent, DataType, DataTypeKind as K, Decimal, Event, Schema,
    SchemaChangeEvent, TableId, Value,
};
use cdc_runtime::{Pipeline, PipelineDefinition};
use cdc_testkit::{register_event_set, test_registry, values_database};

fn orders() -> TableId {
    TableId::new("shop", "orders")
}

fn orders_schema() -> Schema {
    Schema::new(vec![
        Column::new("id", DataType::new(K::BigInt).not_null()),
        Column::new("name", DataType::new(K::VarChar { length: 20 })),
        Column::new(
            "price",
            DataType::new(K::Decimal {
                precision: 10,
                scale: 2,
            }),
        ),
        Column::new("qty", DataType::new(K::Int)),
    ])
    .with_primary_key(["id"])
}

fn create(id: &TableId, schema: Schema) -> Event {
    SchemaChangeEvent::CreateTable {
        table_id: id.clone(),
        schema,
    }
    .into()
}

fn dec(text: &str) -> Value {
    Value::Decimal(Decimal::parse(text).unwrap())
}

fn s(text: &str) -> Value {
    Value::String(text.into())
}

fn row(id: i64, name: &str, price: &str, qty: i32) -> Vec<Value> {
    vec![Value::BigInt(id), s(name), dec(price), Value::Int(qty)]
}

fn definition(set: &str, transform: &str, extra: &str) -> PipelineDefinition {
    let text = format!(
        "source: {{type: values, event-set: {set}}}\n\
         sink: {{type: values, sink-id: {set}}}\n\
         transform:\n{transform}\n{extra}\
         pipeline: {{state.dir: none, name: {set}, schema.change.behavior: evolve, local-time-zone: UTC}}\n"
    );
    PipelineDefinition::from_yaml_str(&text, "test.yaml").unwrap()
}

async fn run(set: &str, events: Vec<Event>, transform: &str) -> Result<(), String> {
    run_with(set, events, transform, "").await
}

async fn run_with(
    set: &str,
    events: Vec<Event>,
    transform: &str,
    extra: &str,
) -> Result<(), String> {
    register_event_set(set, events);
    let pipeline = Pipeline::build(&definition(set, transform, extra), &test_registry())
        .map_err(|e| e.to_string())?;
    pipeline
        .run(std::future::pending())
        .await
        .map(|_| ())
        .map_err(|e| e.to_string())
}

fn table(set: &str, id: &TableId) -> (Schema, Vec<Vec<Value>>) {
    let db = values_database(set);
    let db = db.lock().unwrap();
    let t = &db.tables[id];
    (t.schema.clone(), t.rows.clone())
}

fn column_list(schema: &Schema) -> Vec<String> {
    schema
        .columns
        .iter()
        .map(|c| format!("{} {}", c.name, c.data_type))
        .collect()
}

#[tokio::test]
async fn computed_columns_filter_and_primary_key_override() {
    let events = vec![
        create(&orders(), orders_schema()),
        DataChangeEvent::insert(orders(), row(1, "apple", "1.50", 4)).into(),
        DataChangeEvent::insert(orders(), row(2, "pear", "0.20", 3)).into(),
        DataChangeEvent::insert(orders(), row(3, "plum", "9.99", 1)).into(),
        DataChangeEvent::update(
            orders(),
            row(3, "plum", "9.99", 1),
            row(3, "plum", "9.99", 2),
        )
        .into(),
        DataChangeEvent::insert(
            orders(),
            vec![Value::BigInt(4), Value::Null, dec("5.00"), Value::Null],
        )
        .into(),
    ];
    let transform = r#"  - source-table: shop.orders
    projection: "id, UPPER(name) AS name_upper, price * qty AS total, CAST(qty AS STRING) AS qty_text, __table_name__ AS src, CASE WHEN qty > 3 THEN 'bulk' ELSE 'single' END AS kind"
    filter: "total > 1 OR total IS NULL"
    primary-keys: id, src
    partition-keys: src
    table-options: replication_num=1,bucket=4
    description: enrich orders"#;
    run("computed", events, transform).await.unwrap();
    let (schema, rows) = table("computed", &orders());
    assert_eq!(
        column_list(&schema),
        [
            "id BIGINT NOT NULL",
            "name_upper STRING",
            // DECIMAL(10, 2) * INT: Calcite's DECIMAL(20, 2), cut to 19 digits by Flink
            // CDC's default transform.decimal.precision.mode (UP_TO_19).
            "total DECIMAL(19, 2)",
            "qty_text STRING",
            "src STRING NOT NULL",
            "kind STRING",
        ]
    );
    assert_eq!(schema.primary_key, ["id", "src"]);
    assert_eq!(schema.partition_keys, ["src"]);
    assert_eq!(schema.options["replication_num"], "1");
    assert_eq!(schema.options["bucket"], "4");
    // Row 2 (total 0.60) is filtered out; row 3 passes before and after its update.
    assert_eq!(
        rows,
        vec![
            vec![
                Value::BigInt(1),
                s("APPLE"),
                dec("6.00"),
                s("4"),
                s("orders"),
                s("bulk")
            ],
            vec![
                Value::BigInt(3),
                s("PLUM"),
                dec("19.98"),
                s("2"),
                s("orders"),
                s("single")
            ],
            vec![
                Value::BigInt(4),
                Value::Null,
                Value::Null,
                Value::Null,
                s("orders"),
                s("single")
            ],
        ]
    );
}

#[tokio::test]
async fn rows_moving_across_the_filter_become_inserts_and_deletes() {
    let events = vec![
        create(&orders(), orders_schema()),
        DataChangeEvent::insert(orders(), row(1, "a", "1.00", 1)).into(),
        DataChangeEvent::insert(orders(), row(2, "b", "1.00", 1)).into(),
        // 1 leaves the filter, 2 enters it, 3 stays out.
        DataChangeEvent::update(orders(), row(1, "a", "1.00", 1), row(1, "a", "1.00", 0)).into(),
        DataChangeEvent::update(orders(), row(2, "b", "1.00", 1), row(2, "b", "1.00", 5)).into(),
        DataChangeEvent::insert(orders(), row(3, "c", "1.00", 0)).into(),
        DataChangeEvent::delete(orders(), row(3, "c", "1.00", 0)).into(),
    ];
    let transform = "  - {source-table: shop.orders, filter: qty > 0}";
    run("moving", events, transform).await.unwrap();
    let (schema, rows) = table("moving", &orders());
    assert_eq!(schema, orders_schema());
    assert_eq!(rows, vec![row(2, "b", "1.00", 5)]);
    let db = values_database("moving");
    let db = db.lock().unwrap();
    let ops: Vec<_> = db
        .log
        .iter()
        .filter_map(|e| match e {
            Event::DataChange(d) => Some(d.op.short_tag()),
            Event::SchemaChange(_) => None,
        })
        .collect();
    assert_eq!(ops, ["+I", "+I", "-D", "+U"]);
}

#[tokio::test]
async fn metadata_columns_and_soft_delete() {
    let events = vec![
        create(&orders(), orders_schema()),
        DataChangeEvent::insert(orders(), row(1, "a", "1.00", 1))
            .with_meta("op_ts", "1700000000000")
            .into(),
        DataChangeEvent::update(orders(), row(1, "a", "1.00", 1), row(1, "a", "2.00", 1))
            .with_meta("op_ts", "1700000001000")
            .into(),
        DataChangeEvent::delete(orders(), row(1, "a", "2.00", 1))
            .with_meta("op_ts", "1700000002000")
            .into(),
    ];
    let transform = r#"  - source-table: shop.\.*
    projection: "id, price, __data_event_type__ AS op, op_ts, __schema_name__ AS db, __namespace_name__ AS ns, TO_TIMESTAMP_LTZ(op_ts) AS changed_at"
    converter-after-transform: SOFT_DELETE"#;
    run("soft", events, transform).await.unwrap();
    let (schema, rows) = table("soft", &orders());
    assert_eq!(
        column_list(&schema),
        [
            "id BIGINT NOT NULL",
            "price DECIMAL(10, 2)",
            "op STRING NOT NULL",
            "op_ts BIGINT NOT NULL",
            "db STRING",
            "ns STRING",
            "changed_at TIMESTAMP_LTZ(3)",
        ]
    );
    // The delete arrived as an insert of the before image, tagged -D: the row stays.
    assert_eq!(
        rows,
        vec![vec![
            Value::BigInt(1),
            dec("2.00"),
            s("-D"),
            Value::BigInt(1_700_000_002_000),
            s("shop"),
            Value::Null,
            Value::TimestampLtz(1_700_000_002_000_000),
        ]]
    );
    let db = values_database("soft");
    let db = db.lock().unwrap();
    let tags: Vec<_> = db
        .log
        .iter()
        .filter_map(|e| match e {
            Event::DataChange(d) => Some((d.op.short_tag(), d.row().unwrap()[2].to_string())),
            Event::SchemaChange(_) => None,
        })
        .collect();
    assert_eq!(
        tags,
        [
            ("+I", "+I".to_string()),
            ("+U", "+U".to_string()),
            ("+I", "-D".to_string())
        ]
    );
    let Event::DataChange(update) = &db.log[2] else {
        panic!("{:?}", db.log[2])
    };
    assert_eq!(update.before.as_ref().unwrap()[2], s("-U"));
}

#[tokio::test]
async fn schema_changes_follow_the_wildcard_only() {
    let users = TableId::new("shop", "users");
    let base = Schema::new(vec![
        Column::new("id", DataType::new(K::Int).not_null()),
        Column::new("name", DataType::new(K::String)),
    ])
    .with_primary_key(["id"]);
    let add_age = |t: &TableId| -> Event {
        SchemaChangeEvent::AddColumn {
            table_id: t.clone(),
            columns: vec![(
                Column::new("age", DataType::new(K::Int)),
                ColumnPosition::Last,
            )],
        }
        .into()
    };
    let events = vec![
        create(&orders(), orders_schema()),
        create(&users, base.clone()),
        DataChangeEvent::insert(users.clone(), vec![Value::Int(1), s("ann")]).into(),
        DataChangeEvent::insert(orders(), row(1, "a", "1.00", 1)).into(),
        add_age(&users),
        add_age(&orders()),
        DataChangeEvent::insert(users.clone(), vec![Value::Int(2), s("bob"), Value::Int(30)])
            .into(),
        DataChangeEvent::insert(
            orders(),
            vec![
                Value::BigInt(2),
                s("b"),
                dec("2.00"),
                Value::Int(2),
                Value::Int(40),
            ],
        )
        .into(),
        SchemaChangeEvent::RenameColumn {
            table_id: users.clone(),
            renames: vec![("name".into(), "full_name".into())],
        }
        .into(),
        SchemaChangeEvent::AlterColumnType {
            table_id: users.clone(),
            types: vec![("id".into(), DataType::new(K::BigInt).not_null())],
            comments: std::collections::BTreeMap::new(),
        }
        .into(),
        DataChangeEvent::insert(
            users.clone(),
            vec![Value::BigInt(3), s("cy"), Value::Int(5)],
        )
        .into(),
    ];
    let transform = r"  - source-table: shop.users
    projection: \*, id + 100 AS big_id
  - source-table: shop.orders
    projection: id, name";
    run("evolve", events, transform).await.unwrap();

    let (schema, rows) = table("evolve", &users);
    // `*` took the new column (before the computed one), the rename and the wider key;
    // big_id's type followed id's.
    assert_eq!(
        column_list(&schema),
        [
            "id BIGINT NOT NULL",
            "full_name STRING",
            "age INT",
            "big_id BIGINT"
        ]
    );
    assert_eq!(
        rows,
        vec![
            vec![Value::Int(1), s("ann"), Value::Null, Value::Int(101)],
            vec![Value::Int(2), s("bob"), Value::Int(30), Value::Int(102)],
            vec![Value::BigInt(3), s("cy"), Value::Int(5), Value::BigInt(103)],
        ]
    );
    // The explicit projection did not see the new column at all.
    let (schema, rows) = table("evolve", &orders());
    assert_eq!(
        column_list(&schema),
        ["id BIGINT NOT NULL", "name VARCHAR(20)"]
    );
    assert_eq!(
        rows,
        vec![
            vec![Value::BigInt(1), s("a")],
            vec![Value::BigInt(2), s("b")]
        ]
    );
    let db = values_database("evolve");
    let db = db.lock().unwrap();
    let order_changes = db
        .log
        .iter()
        .filter(|e| matches!(e, Event::SchemaChange(c) if *c.table_id() == orders()))
        .count();
    assert_eq!(order_changes, 1, "only the CreateTable reaches the sink");
    let add = db
        .log
        .iter()
        .find_map(|e| match e {
            Event::SchemaChange(SchemaChangeEvent::AddColumn { columns, .. }) => {
                Some(columns.clone())
            }
            _ => None,
        })
        .unwrap();
    assert_eq!(add[0].1, ColumnPosition::After("name".into()));
}

#[tokio::test]
async fn transform_runs_before_route() {
    let events = vec![
        create(&TableId::new("shard_1", "users"), orders_schema()),
        create(&TableId::new("shard_2", "users"), orders_schema()),
        DataChangeEvent::insert(TableId::new("shard_1", "users"), row(1, "a", "1.00", 1)).into(),
        DataChangeEvent::insert(TableId::new("shard_2", "users"), row(1, "b", "2.00", 1)).into(),
    ];
    let transform = r#"  - source-table: shard_\.*.users
    projection: "id, name, __schema_name__ AS shard"
    primary-keys: id, shard"#;
    let route = "route:\n  - {source-table: \"shard_\\\\.*.users\", sink-table: all.users}\n";
    run_with("routed", events, transform, route).await.unwrap();
    let (schema, rows) = table("routed", &TableId::new("all", "users"));
    assert_eq!(schema.primary_key, ["id", "shard"]);
    assert_eq!(
        rows,
        vec![
            vec![Value::BigInt(1), s("a"), s("shard_1")],
            vec![Value::BigInt(1), s("b"), s("shard_2")],
        ]
    );
}

#[tokio::test]
async fn temporal_and_string_functions_in_a_pipeline() {
    let events_table = TableId::new("app", "events");
    let schema = Schema::new(vec![
        Column::new("id", DataType::new(K::Int).not_null()),
        Column::new("at", DataType::new(K::Timestamp { precision: 0 })),
        Column::new("tag", DataType::new(K::String)),
    ]);
    let at = |text: &str| {
        let (d, t) = text.split_once(' ').unwrap();
        let d: Vec<u16> = d.split('-').map(|p| p.parse().unwrap()).collect();
        let t: Vec<u8> = t.split(':').map(|p| p.parse().unwrap()).collect();
        Value::Timestamp(cdc_api::Timestamp::new(
            cdc_api::Date::new(d[0], d[1] as u8, d[2] as u8),
            t[0],
            t[1],
            t[2],
            0,
        ))
    };
    let events = vec![
        create(&events_table, schema),
        DataChangeEvent::insert(
            events_table.clone(),
            vec![Value::Int(1), at("2024-01-31 23:30:00"), s("  a-b  ")],
        )
        .into(),
    ];
    let transform = r#"  - source-table: app.events
    projection: "id, DATE_FORMAT(at, 'yyyyMMdd') AS day, TIMESTAMPADD(MONTH, 1, at) AS next_month, TIMESTAMPDIFF(MINUTE, at, TIMESTAMP '2024-02-01 00:00:00') AS to_midnight, TRIM(tag) AS tag, REGEXP_REPLACE(TRIM(tag), '-', '_') AS tag2, CHAR_LENGTH(tag) AS len, SUBSTRING(TRIM(tag), 1, 1) AS first, UNIX_TIMESTAMP(CAST(at AS STRING)) AS epoch, COALESCE(NULLIF(id, 1), -1) AS not_one"
    filter: "tag LIKE '%-%' AND id IN (1, 2) AND id BETWEEN 0 AND 10 AND id IS NOT DISTINCT FROM 1""#;
    run("temporal", events, transform).await.unwrap();
    let (schema, rows) = table("temporal", &events_table);
    assert_eq!(
        column_list(&schema),
        [
            "id INT NOT NULL",
            "day STRING",
            "next_month TIMESTAMP(0)",
            "to_midnight INT",
            "tag STRING",
            "tag2 STRING",
            "len INT",
            "first STRING",
            "epoch BIGINT",
            "not_one INT",
        ]
    );
    assert_eq!(
        rows,
        vec![vec![
            Value::Int(1),
            s("20240131"),
            at("2024-02-29 23:30:00"),
            Value::Int(30),
            s("a-b"),
            s("a_b"),
            Value::Int(7),
            s("a"),
            Value::BigInt(1_706_743_800),
            Value::Int(-1),
        ]]
    );
}

#[tokio::test]
async fn errors_name_rule_table_and_column() {
    // Build time: the expression, with rule index and fragment.
    register_event_set("err-build", Vec::new());
    let err = Pipeline::build(
        &definition(
            "err-build",
            "  - {source-table: shop.orders, projection: \"id, FOO(name) AS x\"}",
            "",
        ),
        &test_registry(),
    )
    .unwrap_err()
    .to_string();
    assert_eq!(
        err,
        "test.yaml: transform[0].projection: unknown function FOO at 'FOO(name)'"
    );
    let err = Pipeline::build(
        &definition(
            "err-build",
            "  - {source-table: shop.orders, filter: \"id >\"}",
            "",
        ),
        &test_registry(),
    )
    .unwrap_err()
    .to_string();
    assert!(err.starts_with("test.yaml: transform[0].filter: "), "{err}");

    // Schema time: an unknown column, naming rule, table and column.
    let err = run(
        "err-column",
        vec![create(&orders(), orders_schema())],
        "  - {source-table: shop.nothing}\n  - {source-table: shop.orders, projection: \"id, colour AS c\"}",
    )
    .await
    .unwrap_err();
    assert!(
        err.contains("transform[1] on shop.orders: projection column `c`: unknown column `colour`"),
        "{err}"
    );

    // Row time: division by zero and a bad CAST stop the pipeline, naming the column.
    let err = run(
        "err-row",
        vec![
            create(&orders(), orders_schema()),
            DataChangeEvent::insert(orders(), row(1, "a", "1.00", 0)).into(),
        ],
        "  - {source-table: shop.orders, projection: \"id, 10 / qty AS per\"}",
    )
    .await
    .unwrap_err();
    assert!(
        err.contains("transform[0] on shop.orders: column `per` ('10 / qty'): division by zero"),
        "{err}"
    );
    let err = run(
        "err-cast",
        vec![
            create(&orders(), orders_schema()),
            DataChangeEvent::insert(orders(), row(1, "abc", "1.00", 0)).into(),
        ],
        "  - {source-table: shop.orders, projection: \"id, CAST(name AS INT) AS n\"}",
    )
    .await
    .unwrap_err();
    assert!(
        err.contains("transform[0] on shop.orders: column `n` ('CAST(name AS INT)'): cannot cast 'abc' to INT"),
        "{err}"
    );
    let err = run(
        "err-filter",
        vec![
            create(&orders(), orders_schema()),
            DataChangeEvent::insert(orders(), row(1, "abc", "1.00", 0)).into(),
        ],
        "  - {source-table: shop.orders, filter: \"price / qty > 1\"}",
    )
    .await
    .unwrap_err();
    assert!(
        err.contains("transform[0] on shop.orders: filter 'price / qty > 1': division by zero"),
        "{err}"
    );
}

fn alpha() -> TableId {
    TableId::new("db", "TABLEALPHA")
}

/// TABLEALPHA of Flink CDC's TransformE2eITCase.
fn alpha_schema() -> Schema {
    Schema::new(vec![
        Column::new("ID", DataType::new(K::Int).not_null()),
        Column::new("VERSION", DataType::new(K::VarChar { length: 17 })),
        Column::new("PRICEALPHA", DataType::new(K::Int)),
        Column::new("AGEALPHA", DataType::new(K::Int)),
        Column::new("NAMEALPHA", DataType::new(K::VarChar { length: 128 })),
    ])
    .with_primary_key(["ID"])
}

fn alpha_row(id: i32, version: &str, price: i32, age: i32, name: &str) -> Vec<Value> {
    vec![
        Value::Int(id),
        s(version),
        Value::Int(price),
        Value::Int(age),
        s(name),
    ]
}

/// Flink CDC declares computed columns nullable, whatever the expression
/// (TransformParser: CalciteDataTypeConverter builds nullable types), and their text as
/// STRING; only a top-level IFNULL keeps its own nullability. These are the projections of
/// Flink CDC's MySqlToDorisE2eITCase and TransformE2eITCase.
#[tokio::test]
async fn computed_columns_are_nullable_as_in_flink_cdc() {
    let events = vec![
        create(&alpha(), alpha_schema()),
        DataChangeEvent::insert(alpha(), alpha_row(1009, "8.1", 0, 18, "Bob")).into(),
    ];
    let transform = r"  - source-table: db.TABLEALPHA
    projection: \*, 'fine' AS FINE, ID + 1000 AS UID, 'id -> ' || ID AS LABEL, CAST(ID AS VARCHAR(8)) AS SHORT, IFNULL(VERSION, '?') AS V, IFNULL(ID, 0) AS KEPT, __table_name__ AS SRC
    filter: ID > 1008";
    run("nullable", events, transform).await.unwrap();
    let (schema, rows) = table("nullable", &alpha());
    assert_eq!(
        column_list(&schema),
        [
            "ID INT NOT NULL",
            "VERSION VARCHAR(17)",
            "PRICEALPHA INT",
            "AGEALPHA INT",
            "NAMEALPHA VARCHAR(128)",
            "FINE STRING",
            "UID INT",
            "LABEL STRING",
            "SHORT STRING",
            "V STRING NOT NULL",
            "KEPT INT NOT NULL",
            "SRC STRING NOT NULL",
        ]
    );
    assert_eq!(
        rows,
        vec![vec![
            Value::Int(1009),
            s("8.1"),
            Value::Int(0),
            Value::Int(18),
            s("Bob"),
            s("fine"),
            Value::Int(2009),
            s("id -> 1009"),
            s("1009"),
            s("8.1"),
            Value::Int(1009),
            s("TABLEALPHA"),
        ]]
    );
}

/// `\*, CONCAT('v', VERSION) AS VERSION` (Flink CDC's TransformE2eITCase
/// testWildcardSchemaTransform): the computed VERSION replaces the source column where `*`
/// put it, with the expression's type (STRING, nullable) and value.
#[tokio::test]
async fn a_computed_column_replaces_the_wildcard_column_in_place() {
    let events = vec![
        create(&alpha(), alpha_schema()),
        DataChangeEvent::insert(alpha(), alpha_row(1008, "8", 199, 17, "Alice")).into(),
        DataChangeEvent::insert(alpha(), alpha_row(1009, "8.1", 0, 18, "Bob")).into(),
        DataChangeEvent::update(
            alpha(),
            alpha_row(1009, "8.1", 0, 18, "Bob"),
            alpha_row(1009, "100", 0, 18, "Bob"),
        )
        .into(),
        // A column added later still lands before the computed NAME, and VERSION stays put.
        SchemaChangeEvent::AddColumn {
            table_id: alpha(),
            columns: vec![(
                Column::new("RANK", DataType::new(K::Int)),
                ColumnPosition::Last,
            )],
        }
        .into(),
        DataChangeEvent::insert(
            alpha(),
            vec![
                Value::Int(3007),
                s("7"),
                Value::Int(79),
                Value::Int(16),
                s("IINA"),
                Value::Int(1),
            ],
        )
        .into(),
    ];
    let transform = r"  - source-table: db.TABLEALPHA
    projection: \*, CONCAT('v', VERSION) AS VERSION, LOWER(NAMEALPHA) AS NAME";
    run("replace-in-place", events, transform).await.unwrap();
    let (schema, rows) = table("replace-in-place", &alpha());
    assert_eq!(
        column_list(&schema),
        [
            "ID INT NOT NULL",
            "VERSION STRING",
            "PRICEALPHA INT",
            "AGEALPHA INT",
            "NAMEALPHA VARCHAR(128)",
            "RANK INT",
            "NAME STRING",
        ]
    );
    assert_eq!(schema.primary_key, ["ID"]);
    let with_rank = |mut r: Vec<Value>, name: &str, rank: Value| {
        r.push(rank);
        r.push(s(name));
        r
    };
    assert_eq!(
        rows,
        vec![
            with_rank(
                alpha_row(1008, "v8", 199, 17, "Alice"),
                "alice",
                Value::Null
            ),
            with_rank(alpha_row(1009, "v100", 0, 18, "Bob"), "bob", Value::Null),
            with_rank(alpha_row(3007, "v7", 79, 16, "IINA"), "iina", Value::Int(1)),
        ]
    );
}

/// Schema changes cannot move a target column. A projection item that takes the name of a
/// column `*` brings only later would move it to the wildcard's place: refused, naming it,
/// instead of writing values under the wrong columns.
#[tokio::test]
async fn a_change_that_would_move_an_output_column_is_refused() {
    let events = vec![
        create(&orders(), orders_schema()),
        SchemaChangeEvent::AddColumn {
            table_id: orders(),
            columns: vec![(
                Column::new("note", DataType::new(K::String)),
                ColumnPosition::Last,
            )],
        }
        .into(),
    ];
    let err = run(
        "moving-column",
        events,
        r"  - {source-table: shop.orders, projection: '\*, qty + 1 AS more, UPPER(name) AS note'}",
    )
    .await
    .unwrap_err();
    assert!(
        err.contains("transform[0] on shop.orders: this change moves output columns"),
        "{err}"
    );
}

/// `table_name`, `database_name` and `row_kind` read the event's meta map (the MySQL source
/// attaches them with `metadata.list`); an update's images read -U and +U.
#[tokio::test]
async fn source_metadata_columns_read_the_meta_map() {
    let meta = |e: DataChangeEvent, kind: &str| {
        e.with_meta("table_name", "orders")
            .with_meta("database_name", "shop")
            .with_meta("row_kind", kind)
    };
    let events = vec![
        create(&orders(), orders_schema()),
        meta(
            DataChangeEvent::insert(orders(), row(1, "a", "1.00", 1)),
            "+I",
        )
        .into(),
        meta(
            DataChangeEvent::update(orders(), row(1, "a", "1.00", 1), row(1, "a", "2.00", 1)),
            "+U",
        )
        .into(),
    ];
    let transform = r#"  - source-table: shop.orders
    projection: "id, database_name || '.' || table_name AS src, row_kind, row_kind AS kind"
    filter: "row_kind <> '-D'""#;
    run("source-meta", events, transform).await.unwrap();
    let (schema, rows) = table("source-meta", &orders());
    assert_eq!(
        column_list(&schema),
        [
            "id BIGINT NOT NULL",
            "src STRING",
            "row_kind STRING NOT NULL",
            "kind STRING NOT NULL",
        ]
    );
    assert_eq!(
        rows,
        vec![vec![Value::BigInt(1), s("shop.orders"), s("+U"), s("+U")]]
    );
    let db = values_database("source-meta");
    let db = db.lock().unwrap();
    let Event::DataChange(update) = &db.log[2] else {
        panic!("{:?}", db.log[2])
    };
    assert_eq!(update.before.as_ref().unwrap()[2], s("-U"));
}

/// A real column named like a metadata column wins; a missing meta key stops the pipeline
/// naming `metadata.list`.
#[tokio::test]
async fn source_metadata_needs_the_metadata_list() {
    let with_column = Schema::new(vec![
        Column::new("id", DataType::new(K::BigInt).not_null()),
        Column::new("table_name", DataType::new(K::Int)),
    ]);
    let events = vec![
        create(&orders(), with_column),
        DataChangeEvent::insert(orders(), vec![Value::BigInt(1), Value::Int(7)]).into(),
    ];
    run(
        "meta-column-wins",
        events,
        "  - {source-table: shop.orders, projection: \"id, table_name + 1 AS t\"}",
    )
    .await
    .unwrap();
    let (_, rows) = table("meta-column-wins", &orders());
    assert_eq!(rows, vec![vec![Value::BigInt(1), Value::Int(8)]]);

    let err = run(
        "meta-missing",
        vec![
            create(&orders(), orders_schema()),
            DataChangeEvent::insert(orders(), row(1, "a", "1.00", 1)).into(),
        ],
        "  - {source-table: shop.orders, projection: \"id, database_name AS db\"}",
    )
    .await
    .unwrap_err();
    assert!(
        err.contains(
            "transform[0] on shop.orders: column `db` ('database_name'): the event carries no `database_name` metadata: add database_name to the source's metadata.list"
        ),
        "{err}"
    );
}

/// Flink CDC 3.5 / 3.6 functions end to end, with the types Flink CDC declares.
#[tokio::test]
async fn flink_cdc_3_6_functions_in_a_pipeline() {
    let events = vec![
        create(&orders(), orders_schema()),
        DataChangeEvent::insert(
            orders(),
            row(1, r#"{"tags": ["x", "y"], "n": 2}"#, "1.00", 1),
        )
        .into(),
        DataChangeEvent::insert(orders(), row(2, "not json", "1.00", 2)).into(),
    ];
    let transform = r#"  - source-table: shop.orders
    projection: "id, TO_DATE('2024-03-05') AS d, DATE_ADD('2024-02-28', qty) AS later, TO_TIMESTAMP_LTZ('2024-01-02 03:04:05.678') AS ltz, DATE_FORMAT_TZ(TO_TIMESTAMP_LTZ('2024-01-02 03:04', 'yyyy-MM-dd HH:mm'), 'yyyy-MM-dd HH:mm', 'Asia/Shanghai') AS cn, TRY_PARSE_JSON(name) AS doc, TRY_PARSE_JSON(name)['tags'][qty] AS tag""#;
    run("functions-3-6", events, transform).await.unwrap();
    let (schema, rows) = table("functions-3-6", &orders());
    assert_eq!(
        column_list(&schema),
        [
            "id BIGINT NOT NULL",
            "d DATE",
            "later STRING",
            "ltz TIMESTAMP_LTZ(3)",
            "cn STRING",
            "doc JSON",
            "tag JSON",
        ]
    );
    let date = |y, m, d| Value::Date(cdc_api::Date::new(y, m, d));
    assert_eq!(
        rows,
        vec![
            vec![
                Value::BigInt(1),
                date(2024, 3, 5),
                s("2024-02-29"),
                Value::TimestampLtz(1_704_164_645_678_000),
                s("2024-01-02 11:04"),
                Value::Json(r#"{"n":2,"tags":["x","y"]}"#.into()),
                Value::Json(r#""x""#.into()),
            ],
            vec![
                Value::BigInt(2),
                date(2024, 3, 5),
                s("2024-03-01"),
                Value::TimestampLtz(1_704_164_645_678_000),
                s("2024-01-02 11:04"),
                Value::Null,
                Value::Null,
            ],
        ]
    );
}

/// Argument types that cannot fit are refused when the pipeline is built (constants, as
/// `cdc validate` sees them) or when the table's schema arrives (columns), never at a row.
#[tokio::test]
async fn argument_types_are_refused_before_any_row() {
    register_event_set("types-build", Vec::new());
    let err = Pipeline::build(
        &definition(
            "types-build",
            "  - {source-table: shop.orders, projection: \"id, TO_TIMESTAMP_LTZ(CURRENT_DATE) AS t\"}",
            "",
        ),
        &test_registry(),
    )
    .unwrap_err()
    .to_string();
    assert_eq!(
        err,
        "test.yaml: transform[0].projection: column `t`: TO_TIMESTAMP_LTZ's argument 1 must be a number or a STRING, got DATE ('CURRENT_DATE') at 'TO_TIMESTAMP_LTZ(CURRENT_DATE)'"
    );
    let err = Pipeline::build(
        &definition(
            "types-build",
            "  - {source-table: shop.orders, filter: \"DATE_FORMAT_TZ(NOW(), 'Mars/Base') = ''\"}",
            "",
        ),
        &test_registry(),
    )
    .unwrap_err()
    .to_string();
    assert!(
        err.starts_with("test.yaml: transform[0].filter: 'Mars/Base' is not a time zone"),
        "{err}"
    );
    // A column's type is known when its table's schema arrives: refused then, before rows.
    let err = run(
        "types-schema",
        vec![
            create(&orders(), orders_schema()),
            DataChangeEvent::insert(orders(), row(1, "a", "1.00", 1)).into(),
        ],
        "  - {source-table: shop.orders, projection: \"id, DATE_ADD(name, price) AS x\"}",
    )
    .await
    .unwrap_err();
    assert!(
        err.contains(
            "transform[0] on shop.orders: projection column `x`: DATE_ADD's argument 2 must be an integer (TINYINT, SMALLINT, INT or BIGINT), got DECIMAL(10, 2) ('price') at 'DATE_ADD(name, price)'"
        ),
        "{err}"
    );
    let db = values_database("types-schema");
    assert!(db.lock().unwrap().log.is_empty());
}

/// Functions that cannot work here are refused by name with the reason.
#[tokio::test]
async fn refused_functions_name_the_reason() {
    register_event_set("refused", Vec::new());
    for (projection, want) in [
        (
            "AI_CHAT_PREDICT(name, 'm', 'p') AS x",
            "AI_CHAT_PREDICT is not supported: AI model functions",
        ),
        (
            "ARRAY_CONTAINS(name, 'a') AS x",
            "ARRAY_CONTAINS is not supported: it builds or reads ARRAY/MAP/ROW values",
        ),
        (
            "REPLACE(name, 'a', 'b') AS x",
            "REPLACE is not supported: it exists only in Flink CDC's unreleased master",
        ),
        (
            "FROM_BASE64_BINARY(name) AS x",
            "FROM_BASE64_BINARY is not supported: it returns VARBINARY",
        ),
    ] {
        let err = Pipeline::build(
            &definition(
                "refused",
                &format!("  - {{source-table: shop.orders, projection: \"id, {projection}\"}}"),
                "",
            ),
            &test_registry(),
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains(want), "{projection}: {err}");
    }
}

/// `pipeline.schema.operator.uid` is accepted (no Flink operators here) and
/// `pipeline.transform.decimal.precision.mode` checked.
#[tokio::test]
async fn transform_pipeline_options_are_accepted() {
    register_event_set("transform-options", Vec::new());
    let text = "source: {type: values, event-set: transform-options}\n\
                sink: {type: values, sink-id: transform-options}\n\
                pipeline: {state.dir: none, schema.operator.uid: my-uid, transform.decimal.precision.mode: UP_TO_38}\n";
    let definition = PipelineDefinition::from_yaml_str(text, "test.yaml").unwrap();
    Pipeline::build(&definition, &test_registry()).unwrap();
}
