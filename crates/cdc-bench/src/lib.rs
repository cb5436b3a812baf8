//! Shared parts of the benchmarks: the criterion micro benchmarks in `benches/` and the
//! end-to-end `cdc-bench` binary (see `docs/performance.md` for what each measures).
//!
//! [`rowgen`] writes row images in MySQL's binary row format for the tables the
//! benchmarks use, so the decoder benchmarks run on realistic bytes without a server and
//! without binary files in the repository.
#![warn(missing_docs)]

pub mod rowgen;
