//! Stream Load body encoding: rows of cdc-api values to the JSON bodies the Doris sink
//! (JSON lines with `__DORIS_DELETE_SIGN__`, as for a UNIQUE KEY table) and the StarRocks
//! sink (a JSON array with `__op`) send, into a reused buffer as the sinks do. Each case
//! runs twice: once with throughput in rows (`.../rows`), once in body bytes
//! (`.../bytes`); per type family the Doris encoder runs in rows only.
//!
//! `cargo bench -p cdc-bench --bench stream_load`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use cdc_api::{Schema, Value};
use cdc_bench::rowgen::TableSpec;
use cdc_connector_doris::bench_api::DorisJsonEncoder;
use cdc_connector_starrocks::bench_api::StarRocksJsonEncoder;
use cdc_stream_load::Zone;
use criterion::measurement::WallTime;
use criterion::{BenchmarkGroup, Criterion, Throughput, criterion_group, criterion_main};

/// Rows encoded per iteration.
const ROWS: u64 = 4096;

fn doris_body(schema: &Schema, rows: &[Vec<Value>], out: &mut Vec<u8>) {
    let mut encoder = DorisJsonEncoder::new(schema, Zone::Fixed(0));
    out.clear();
    for row in rows {
        encoder.encode(out, row, Some(false));
    }
}

fn starrocks_body(schema: &Schema, rows: &[Vec<Value>], out: &mut Vec<u8>) {
    let mut encoder = StarRocksJsonEncoder::new(schema, Zone::Fixed(0));
    out.clear();
    for row in rows {
        encoder.encode(out, row, false);
    }
    StarRocksJsonEncoder::finish(out);
}

type Encode = fn(&Schema, &[Vec<Value>], &mut Vec<u8>);

fn both_throughputs(
    group: &mut BenchmarkGroup<'_, WallTime>,
    name: &str,
    encode: Encode,
    spec: &TableSpec,
) {
    let schema = spec.bench_table().schema();
    let rows = spec.values(1, ROWS).expect("generated rows decode");
    let mut out = Vec::with_capacity(1 << 20);
    encode(&schema, &rows, &mut out);
    let bytes = out.len() as u64;
    for (unit, throughput) in [
        ("rows", Throughput::Elements(ROWS)),
        ("bytes", Throughput::Bytes(bytes)),
    ] {
        group.throughput(throughput);
        group.bench_function(format!("{name}/{unit}"), |b| {
            b.iter(|| {
                encode(&schema, std::hint::black_box(&rows), &mut out);
                std::hint::black_box(out.len())
            });
        });
    }
}

fn encode(c: &mut Criterion) {
    let mut group = c.benchmark_group("stream_load");
    for (table, spec) in [
        ("reference", TableSpec::reference()),
        ("wide", TableSpec::wide()),
    ] {
        both_throughputs(&mut group, &format!("doris_{table}"), doris_body, &spec);
        both_throughputs(
            &mut group,
            &format!("starrocks_{table}"),
            starrocks_body,
            &spec,
        );
    }
    group.throughput(Throughput::Elements(ROWS));
    for spec in TableSpec::families() {
        if spec.name == "json_binary" {
            // Decodes to the same JSON text values as json_text.
            continue;
        }
        let schema = spec.bench_table().schema();
        let rows = spec.values(1, ROWS).expect("generated rows decode");
        let mut out = Vec::with_capacity(1 << 20);
        group.bench_function(format!("doris_{}/rows", spec.name), |b| {
            b.iter(|| {
                doris_body(&schema, std::hint::black_box(&rows), &mut out);
                std::hint::black_box(out.len())
            });
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
    targets = encode
}
criterion_main!(benches);
