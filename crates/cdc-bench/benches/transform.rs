//! Transform evaluation: batches of reference-table inserts through the pipeline's own
//! `transform` stage (expressions parsed once, bound to the schema, evaluated per row).
//! Throughput is in input rows.
//!
//! `cargo bench -p cdc-bench --bench transform`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::time::Duration;

use cdc_api::{DataChangeEvent, Event, SchemaChangeEvent, TableId};
use cdc_bench::rowgen::TableSpec;
use cdc_runtime::bench_api::Transform;
use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};

/// Rows per batch (the source hands batches of about this size to the runtime).
const ROWS: u64 = 1024;

/// (benchmark name, projection, filter)
const CASES: [(&str, &str, &str); 4] = [
    ("projection_star", "*", ""),
    (
        "computed_columns",
        "*, UPPER(name) AS name_upper, amount * 2 AS amount2, CONCAT(name, '-', CAST(k AS STRING)) AS tag, score + 1 AS score1",
        "",
    ),
    ("filter", "", "k > 500000 AND name LIKE '%-1%'"),
    (
        "projection_and_filter",
        "id, k, amount, DATE_FORMAT(created, 'yyyy-MM-dd') AS day, __table_name__ AS src, __data_event_type__ AS op",
        "score > 1000 AND amount IS NOT NULL",
    ),
];

fn transform(c: &mut Criterion) {
    let spec = TableSpec::reference();
    let table = TableId::new("bench", &spec.name);
    let schema = spec.bench_table().schema();
    let batch: Vec<Event> = spec
        .values(1, ROWS)
        .expect("generated rows decode")
        .into_iter()
        .map(|row| Event::DataChange(DataChangeEvent::insert(table.clone(), row)))
        .collect();
    let mut group = c.benchmark_group("transform");
    group.throughput(Throughput::Elements(ROWS));
    for (name, projection, filter) in CASES {
        let mut rule = BTreeMap::new();
        rule.insert("source-table".to_string(), "bench.t".to_string());
        if !projection.is_empty() {
            rule.insert("projection".to_string(), projection.to_string());
        }
        if !filter.is_empty() {
            rule.insert("filter".to_string(), filter.to_string());
        }
        let mut stage = Transform::new(&[rule], "UTC").expect("the rule parses");
        stage
            .apply(vec![Event::SchemaChange(SchemaChangeEvent::CreateTable {
                table_id: table.clone(),
                schema: schema.clone(),
            })])
            .expect("the rule binds to the reference table");
        group.bench_function(name, |b| {
            b.iter_batched(
                || batch.clone(),
                |events| stage.apply(events).expect("rows transform"),
                BatchSize::LargeInput,
            );
        });
    }
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
        .sample_size(20);
    targets = transform
}
criterion_main!(benches);
