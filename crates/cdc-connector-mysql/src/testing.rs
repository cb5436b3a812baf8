//! Switches for this crate's own integration tests; not part of the interface.

use std::sync::atomic::{AtomicBool, Ordering};

static FORCE_SNAPSHOT_LOCK: AtomicBool = AtomicBool::new(false);

/// Makes every snapshot take its position under `FLUSH TABLES t WITH READ LOCK` (MySQL's
/// way) even where the server reports the snapshot's position itself (MariaDB), so the
/// MySQL path can be tested on MariaDB. Process-wide: set it only in a test binary of its
/// own.
pub fn force_snapshot_lock(on: bool) {
    FORCE_SNAPSHOT_LOCK.store(on, Ordering::SeqCst);
}

pub(crate) fn snapshot_lock_forced() -> bool {
    FORCE_SNAPSHOT_LOCK.load(Ordering::SeqCst)
}

/// Decodes text stored in the character set `charset` as the binlog reader does (for the
/// tests that compare it with the server's own conversion).
pub fn decode_text(charset: &str, bytes: &[u8]) -> Result<String, String> {
    crate::types::Charset::from_name(charset).decode(bytes)
}

static PLANS: std::sync::Mutex<Vec<(String, Vec<String>)>> = std::sync::Mutex::new(Vec::new());

/// Every snapshot split planned in this process: the table (`db.table`) and its range
/// bounds, printed. For tests that must show a table was read in several key ranges.
pub fn snapshot_plans() -> Vec<(String, Vec<String>)> {
    PLANS.lock().map(|p| p.clone()).unwrap_or_default()
}

pub(crate) fn record_plan<T: std::fmt::Debug>(table: &str, bounds: &[T]) {
    if let Ok(mut plans) = PLANS.lock() {
        // Bounded: a long-running process plans each table once per snapshot.
        if plans.len() < 10_000 {
            plans.push((
                table.to_string(),
                bounds.iter().map(|b| format!("{b:?}")).collect(),
            ));
        }
    }
}
