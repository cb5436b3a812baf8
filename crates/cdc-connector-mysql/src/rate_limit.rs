//! `scan.snapshot.rate-limit`, `scan.snapshot.rate-limit.bytes` and `scan.binlog.rate-limit`:
//! how fast the source may read, so that a snapshot or a catch-up does not take the server's
//! disks and network from its applications.
//!
//! A token bucket that starts empty and may go into debt: a batch takes its rows (and
//! bytes) at once and the reader then waits until the debt is paid back at the configured
//! rate. All readers of a limit share one bucket, so the limit holds for the source as a
//! whole whatever the number of parallel snapshot reads. Over any stretch of time the rows
//! read stay below `rate × seconds + one batch`. Unset, a limit is `None` and costs nothing.

use std::sync::Mutex;
use std::time::{Duration, Instant};

/// One rate: units per second, with the debt owed.
#[derive(Debug)]
struct Bucket {
    per_second: f64,
    /// Units that may be taken now (negative: owed), as of `at`.
    state: Mutex<(f64, Instant)>,
}

impl Bucket {
    fn new(per_second: u64) -> Self {
        Self {
            per_second: per_second as f64,
            state: Mutex::new((0.0, Instant::now())),
        }
    }

    /// Takes `units` and returns how long the taker must wait for them.
    fn take(&self, units: u64) -> Duration {
        let Ok(mut state) = self.state.lock() else {
            return Duration::ZERO;
        };
        let now = Instant::now();
        let (available, at) = *state;
        // Unused time may carry at most one second's worth: a reader that paused does not
        // earn a burst it could then spend at once.
        let refilled = (available + now.duration_since(at).as_secs_f64() * self.per_second)
            .min(self.per_second);
        let left = refilled - units as f64;
        *state = (left, now);
        if left >= 0.0 {
            Duration::ZERO
        } else {
            Duration::from_secs_f64(-left / self.per_second)
        }
    }
}

/// The limits of one kind of reading (the snapshot, or the binlog).
#[derive(Debug, Default)]
pub(crate) struct RateLimiter {
    rows: Option<Bucket>,
    bytes: Option<Bucket>,
}

impl RateLimiter {
    /// A limiter for at most `rows` rows and `bytes` bytes per second (either unset).
    pub(crate) fn new(rows: Option<u64>, bytes: Option<u64>) -> Self {
        Self {
            rows: rows.map(Bucket::new),
            bytes: bytes.map(Bucket::new),
        }
    }

    /// Whether any limit is set.
    pub(crate) fn is_set(&self) -> bool {
        self.rows.is_some() || self.bytes.is_some()
    }

    /// Accounts for a batch read and waits as long as the limits ask.
    pub(crate) async fn pace(&self, rows: u64, bytes: u64) {
        let wait = self
            .rows
            .as_ref()
            .map_or(Duration::ZERO, |b| b.take(rows))
            .max(
                self.bytes
                    .as_ref()
                    .map_or(Duration::ZERO, |b| b.take(bytes)),
            );
        if !wait.is_zero() {
            tokio::time::sleep(wait).await;
        }
    }

    /// The longest a reader may wait for one batch of `rows` rows (and `bytes` bytes): the
    /// server must not close an idle result stream meanwhile (`net_write_timeout`).
    pub(crate) fn longest_wait(&self, rows: u64, bytes: u64) -> Duration {
        let secs = |b: &Option<Bucket>, n: u64| {
            b.as_ref()
                .map_or(0.0, |b| n as f64 / b.per_second.max(f64::MIN_POSITIVE))
        };
        Duration::from_secs_f64(secs(&self.rows, rows).max(secs(&self.bytes, bytes)))
    }
}

/// The approximate size of a row as the server sends it (text and binary values by their
/// length, other values as 8 bytes), for the bytes limit.
pub(crate) fn row_bytes(row: &[mysql_async::Value]) -> u64 {
    row.iter()
        .map(|v| match v {
            mysql_async::Value::Bytes(b) => b.len() as u64,
            mysql_async::Value::NULL => 1,
            _ => 8,
        })
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn readers_sharing_a_limit_wait_for_all_rows_taken() {
        // Batches taken back to back (no time passes to speak of): each waits until the
        // rows taken so far, its own included, fit the rate.
        let limiter = RateLimiter::new(Some(1000), None);
        let bucket = limiter.rows.as_ref().unwrap();
        let mut wait = Duration::ZERO;
        for _ in 0..40 {
            wait = bucket.take(256);
        }
        // 40 x 256 = 10 240 rows at 1000 rows/s.
        let secs = wait.as_secs_f64();
        assert!((10.1..=10.25).contains(&secs), "{secs}");
    }

    #[test]
    fn debt_is_paid_back_at_the_rate_and_pauses_earn_no_burst() {
        let bucket = Bucket::new(100);
        let wait = bucket.take(50);
        assert!(wait > Duration::from_millis(490) && wait <= Duration::from_millis(500));
        // A long pause refills at most one second's worth.
        let long_ago = Instant::now().checked_sub(Duration::from_secs(60)).unwrap();
        *bucket.state.lock().unwrap() = (0.0, long_ago);
        assert_eq!(bucket.take(100), Duration::ZERO);
        assert!(bucket.take(100) > Duration::from_millis(990));
    }

    #[test]
    fn unset_limits_never_wait() {
        let limiter = RateLimiter::new(None, None);
        assert!(!limiter.is_set());
        assert_eq!(limiter.longest_wait(1_000_000, 1 << 30), Duration::ZERO);
        let limiter = RateLimiter::new(Some(10), Some(1000));
        assert_eq!(limiter.longest_wait(20, 500), Duration::from_secs(2));
    }
}
