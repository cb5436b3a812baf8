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
