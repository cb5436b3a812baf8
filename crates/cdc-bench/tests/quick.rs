//! `cdc-bench --quick` runs end to end: a private MariaDB, the Doris emulator, every
//! phase in its child process, the references, and the markdown report. Figures are not
//! checked (benchmarks never fail on time); what is checked is that every section is
//! there and nothing failed.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::Command;

#[test]
fn quick_mode_runs_end_to_end() {
    if !cdc_testkit::MariaDb::installed_or_skip() {
        return;
    }
    let out = Command::new(env!("CARGO_BIN_EXE_cdc-bench"))
        .args(["--quick", "--python-missing", "not in the smoke test"])
        .output()
        .expect("cdc-bench runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "cdc-bench --quick failed\n--- stdout\n{stdout}\n--- stderr\n{stderr}"
    );
    for section in [
        "### Targets",
        "### Binlog catch-up: 20,000 row changes",
        "raw decode",
        "catch-up** → counting sink",
        "catch-up** → Doris sink",
        "### Snapshot",
        "snapshot** → Doris sink",
        "wide (50 columns)",
        "| reference | **snapshot** → counting sink | 50,000 |",
        "### Latency",
        "exactly-once",
        "python-mysql-replication: not measured: not in the smoke test",
    ] {
        assert!(
            stdout.contains(section),
            "no '{section}' in the report:\n{stdout}\n--- stderr\n{stderr}"
        );
    }
}
