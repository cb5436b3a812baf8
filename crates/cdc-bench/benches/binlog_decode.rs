//! Binlog row decoding into cdc-api events, per column type family: the rows parts of
//! WRITE_ROWS events (split at 8 KiB as the server splits them) through the source's own
//! decoder, one thread. Throughput is in rows (criterion's "elements").
//!
//! `cargo bench -p cdc-bench --bench binlog_decode`; `scripts/bench.sh` runs it and puts
//! the figures in docs/performance.md.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use cdc_bench::rowgen::TableSpec;
use cdc_connector_mysql::bench_api::RowsKind;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};

/// Rows decoded per iteration.
const ROWS: u64 = 4096;

fn decode(c: &mut Criterion) {
    let mut group = c.benchmark_group("binlog_decode");
    group.throughput(Throughput::Elements(ROWS));
    let mut tables = vec![TableSpec::reference()];
    tables.extend(TableSpec::families());
    tables.push(TableSpec::wide());
    for spec in &tables {
        let decoder = spec.decoder();
        let events = spec.rows_events(1, ROWS);
        let mut out = Vec::with_capacity(ROWS as usize);
        let label = if spec.name == "t" {
            "reference"
        } else {
            spec.name.as_str()
        };
        group.bench_function(label, |b| {
            b.iter(|| {
                out.clear();
                for body in &events {
                    decoder
                        .decode(RowsKind::Write, std::hint::black_box(body), &mut out)
                        .expect("generated rows decode");
                }
                std::hint::black_box(out.len())
            });
        });
    }
    // An update carries two images per row: about twice a write's work per change.
    let spec = TableSpec::reference();
    let decoder = spec.decoder();
    let events = spec.update_events(1, ROWS);
    let mut out = Vec::with_capacity(ROWS as usize);
    group.bench_function("reference_update", |b| {
        b.iter(|| {
            out.clear();
            for body in &events {
                decoder
                    .decode(RowsKind::Update, std::hint::black_box(body), &mut out)
                    .expect("generated rows decode");
            }
            std::hint::black_box(out.len())
        });
    });
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
        .sample_size(20);
    targets = decode
}
criterion_main!(benches);
