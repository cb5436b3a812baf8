//! Every type round-trips exactly, and identically through the snapshot and the binlog.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers may panic

use std::time::Duration;

use cdc_api::{Event, TableId, Value};
use cdc_runtime::{Pipeline, PipelineDefinition};
use cdc_testkit::{MariaDb, values_database};

const COLUMNS: &str = "
  id INT PRIMARY KEY,
  ti TINYINT, tu TINYINT UNSIGNED, b1 TINYINT(1), si SMALLINT, su SMALLINT UNSIGNED,
  mi MEDIUMINT, mu MEDIUMINT UNSIGNED, i INT, iu INT UNSIGNED, bi BIGINT, bu BIGINT UNSIGNED,
  d1 DECIMAL(12,2), d2 DECIMAL(65,30), d3 DECIMAL(38,10), f FLOAT, fp FLOAT(10,2), db DOUBLE,
  bit1 BIT(1), bit12 BIT(12), bit64 BIT(64), bo BOOL,
  c CHAR(5), vc VARCHAR(20), tx TEXT, lat VARCHAR(10) CHARACTER SET latin1, gb VARCHAR(10) CHARACTER SET gbk,
  bn BINARY(4), vb VARBINARY(8), bl BLOB,
  e ENUM('red','green','blue'), st SET('a','b','c'),
  y YEAR, dt DATE, t0 TIME, t3 TIME(3), t6 TIME(6), dt0 DATETIME, dt6 DATETIME(6),
  ts0 TIMESTAMP NULL DEFAULT NULL, ts3 TIMESTAMP(3) NULL DEFAULT NULL,
  js JSON, g GEOMETRY, gen INT AS (i + 1) STORED, nul VARCHAR(5)
";

const ROWS: &str = "
 (1, -128, 255, 1, -32768, 65535, -8388608, 16777215, -2147483648, 4294967295,
  -9223372036854775808, 18446744073709551615,
  -1234567890.12, 12345678901234567890123456789012345.123456789012345678901234567890,
  -1234567890123456789012345678.0123456789, 3.14159, 1234.56, -2.718281828459045,
  b'1', b'101010101010', b'1111111111111111111111111111111111111111111111111111111111111111', TRUE,
  'ab', 'héllo wörld 🎉', 'long text', 'café', '你好',
  X'0102', X'00FF00', X'DEADBEEF',
  'green', 'a,c',
  2024, '2024-02-29', '-838:59:59', '12:34:56.789', '838:59:59.999999', '2020-07-17 18:00:22', '2020-07-17 18:00:22.123456',
  '2021-01-01 00:00:01', '2038-01-19 03:14:07.999',
  '{\"k\": [1, 2, {\"x\": null}]}', ST_GeomFromText('POINT(1 1)'), DEFAULT, NULL),
 (2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
  b'0', b'0', b'0', FALSE, '', '', '', '', '', X'', X'', X'', 'red', '', 1901, '1000-01-01', '00:00:00', '-00:00:01.500', '00:00:00',
  '1000-01-01 00:00:00', '9999-12-31 23:59:59.999999', '1970-01-01 00:00:01', NULL,
  '[]', ST_GeomFromText('MULTIPOINT(1 1, 2 2)'), DEFAULT, ''),
 (3, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
  NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
  NULL, NULL, NULL, NULL, NULL, NULL, DEFAULT, NULL)
";

async fn wait_for_rows(
    handle: &mut Option<cdc_runtime::PipelineHandle>,
    sink: &str,
    table: &TableId,
    n: usize,
) -> Vec<Vec<Value>> {
    let db = values_database(sink);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        {
            let guard = db.lock().unwrap();
            if let Some(t) = guard.tables.get(table) {
                if t.rows.len() >= n {
                    let mut rows = t.rows.clone();
                    rows.sort_by_key(|r| r[0].as_i64());
                    return rows;
                }
            }
        }
        if handle
            .as_ref()
            .is_some_and(cdc_runtime::PipelineHandle::is_finished)
        {
            let outcome = handle.take().unwrap().join().await;
            panic!("the pipeline ended early: {outcome:?}");
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{table}: {n} rows did not arrive"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_type_is_identical_through_snapshot_and_binlog() {
    let Some(db) = MariaDb::start_or_skip().await else {
        return;
    };
    db.execute(&format!(
        "CREATE DATABASE types CHARACTER SET utf8mb4; \
         CREATE TABLE types.snap ({COLUMNS}); CREATE TABLE types.bin ({COLUMNS}); \
         INSERT INTO types.snap VALUES {ROWS};"
    ))
    .await
    .unwrap();
    let yaml = format!(
        "source: {{type: mysql, hostname: 127.0.0.1, port: {}, username: root, password: '', tables: 'types.\\.*', server-id: 5501}}\n\
         sink: {{type: values, sink-id: types}}\n\
         pipeline: {{name: types, checkpoint.interval: 200ms, state.dir: none}}\n",
        db.port()
    );
    let mut registry = cdc_testkit::test_registry();
    registry.register_source(cdc_connector_mysql::MySqlSourceFactory);
    let def = PipelineDefinition::from_yaml_str(&yaml, "types.yaml").unwrap();
    let mut handle = Some(Pipeline::build(&def, &registry).unwrap().spawn());

    let snap = wait_for_rows(&mut handle, "types", &TableId::new("types", "snap"), 3).await;
    db.execute(&format!("INSERT INTO types.bin VALUES {ROWS}"))
        .await
        .unwrap();
    let bin = wait_for_rows(&mut handle, "types", &TableId::new("types", "bin"), 3).await;
    let handle = handle.unwrap();
    handle.stop();
    handle.join().await.unwrap();

    for (s, b) in snap.iter().zip(&bin) {
        for (i, (sv, bv)) in s.iter().zip(b).enumerate() {
            assert_eq!(
                sv, bv,
                "column {i} differs between snapshot and binlog (row {})",
                s[0]
            );
        }
    }
    let row = &snap[0];
    let text: Vec<String> = row.iter().map(ToString::to_string).collect();
    let expect = [
        (1, "-128"),
        (2, "255"),
        (3, "true"),
        (5, "65535"),
        (9, "4294967295"),
        (10, "-9223372036854775808"),
        (11, "18446744073709551615"),
        (12, "-1234567890.12"),
        (
            13,
            "12345678901234567890123456789012345.123456789012345678901234567890",
        ),
        (14, "-1234567890123456789012345678.0123456789"),
        (18, "true"),
        (19, "0x0aaa"),
        (20, "0xffffffffffffffff"),
        (21, "true"),
        (22, "ab"),
        (23, "héllo wörld 🎉"),
        (25, "café"),
        (26, "你好"),
        (27, "0x01020000"),
        (28, "0x00ff00"),
        (30, "green"),
        (31, "a,c"),
        (32, "2024"),
        (33, "2024-02-29"),
        (34, "-838:59:59"),
        (36, "838:59:59.999999"),
        (38, "2020-07-17 18:00:22.123456"),
        (39, "2021-01-01 00:00:01Z"),
        (40, "2038-01-19 03:14:07.999000Z"),
        (41, "{\"k\": [1, 2, {\"x\": null}]}"),
        (42, "{\"coordinates\":[1,1],\"type\":\"Point\",\"srid\":0}"),
        (43, "-2147483647"),
        (44, "NULL"),
    ];
    for (i, want) in expect {
        assert_eq!(text[i], want, "column {i}");
    }
    assert_eq!(snap[1][35].to_string(), "-00:00:01.500000");
    assert_eq!(
        snap[1][42].to_string(),
        "{\"coordinates\":[[1,1],[2,2]],\"type\":\"MultiPoint\",\"srid\":0}"
    );
    assert_eq!(
        snap[1][44],
        Value::String(String::new()),
        "empty string is not NULL"
    );
    assert!(snap[2][1..43].iter().all(Value::is_null));

    // The schema says what the columns are.
    let guard = values_database("types");
    let guard = guard.lock().unwrap();
    let creates: Vec<_> = guard
        .log
        .iter()
        .filter_map(|e| match e {
            Event::SchemaChange(cdc_api::SchemaChangeEvent::CreateTable { table_id, schema })
                if table_id.table == "snap" =>
            {
                Some(schema.clone())
            }
            _ => None,
        })
        .collect();
    let schema = &creates[0];
    assert_eq!(schema.primary_key, ["id"]);
    assert_eq!(
        schema.columns[11].data_type.kind.to_string(),
        "DECIMAL(20, 0)"
    );
    assert_eq!(schema.columns[13].data_type.kind.to_string(), "STRING");
    assert_eq!(
        schema.columns[39].data_type.kind.to_string(),
        "TIMESTAMP_LTZ(0)"
    );
}
