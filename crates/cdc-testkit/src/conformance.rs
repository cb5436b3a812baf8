//! # Conformance checks for `Source` and `Sink` implementations
//!
//! The same checks the project's own connectors pass, for anyone writing one: implement a
//! small harness trait in a test and call one function.
//!
//! * [`sink::check`] with a [`sink::SinkHarness`] (build a fresh sink + applier for a
//!   pipeline name, read back a table's rows, declare [`sink::SinkCapabilities`]): rows
//!   visible only after commit (exactly-once), idempotent commit, abort, crash after
//!   prepare with and without a saved checkpoint, replay, final state by key, deletes,
//!   empty checkpoints, an added column, `flush` / `poll_flush`, `close`.
//! * [`source::check`] with a [`source::SourceHarness`] (produce a known change sequence,
//!   build a fresh source, declare [`source::SourceCapabilities`]): every change arrives,
//!   reopening from `offset()` neither loses nor repeats, a dropped `next_batch` future
//!   loses nothing, `checkpoint_complete`, `close`, idling.
//!
//! Each rule is a named case. A run returns a [`Report`] (passed, and skipped by declared
//! capability), or a [`Failure`] whose text names every broken rule, what was done and
//! seen, and how such a failure is usually fixed:
//!
//! ```text
//! 1 of 16 sink conformance cases failed: nothing_visible_before_commit
//!
//! [nothing_visible_before_commit] rule: an exactly-once sink shows nothing of a checkpoint before its commit: ...
//!   what happened: after write, before any checkpoint: conformance.nothing_visible_before_commit should show 0 row(s) [none] but shows 2 [(1, a); (2, b)]; ...
//!   how to fix: buffer in write and load as pre-committed in prepare (...); publish only in commit. ...
//! ```
//!
//! The checks call the connector the way the runtime does, with generous deadlines that
//! only turn a hang into a failure; no assertion depends on timing. Each case runs on its
//! own task, so a panic fails that case only. A "crash" drops an instance without `commit`
//! or `close`; a "restart" builds a new one through the harness.
//!
//! See the [`sink`] and [`source`] modules for complete examples (against the test kit's
//! `values` connectors), and `examples/tests/conformance.rs` in the repository for a file
//! sink and a generated source.

use std::time::Duration;

mod report;
pub mod sink;
pub mod source;

pub use report::{Failure, Outcome, Report, Status};

/// The pause between two read-backs while waiting for committed rows to show.
const POLL_PAUSE: Duration = Duration::from_millis(50);
