//! Helpers shared by the end-to-end tests that drive the real `cdc` binary.
#![allow(dead_code, unreachable_pub)] // each test file uses part of it; `pub` for them

use std::path::Path;
use std::process::{Child, Command, Stdio};

/// Rows as the emulators and `MariaDb::query_text` give them.
pub type Rows = Vec<Vec<Option<String>>>;

/// The rows, sorted (tables compare as sets of rows).
pub fn sorted(mut rows: Rows) -> Rows {
    rows.sort();
    rows
}

/// A small deterministic generator; tests print its seed so a run can be repeated.
pub struct Lcg(pub u64);

impl Lcg {
    /// A number below `bound` (0 when `bound` is 0).
    pub fn next(&mut self, bound: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (self.0 >> 33) % bound.max(1)
    }
}

/// Starts `cdc run FILE --state-dir STATE` (plus `extra` arguments) with stderr appended
/// to `log`.
pub fn spawn_cdc(file: &Path, state: &Path, log: &Path, extra: &[&str]) -> Child {
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .unwrap();
    Command::new(env!("CARGO_BIN_EXE_cdc"))
        .arg("run")
        .args(extra)
        .arg(file)
        .arg("--state-dir")
        .arg(state)
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .unwrap()
}

/// The last 40 lines of a log file, for failure messages.
pub fn log_tail(log: &Path) -> String {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(40)..].join("\n")
}
