//! Steady-state latency from a commit in MariaDB to the row being visible in the target.
//!
//! Method: the pipeline (MariaDB -> Doris sink -> the emulator) runs in a child process and
//! has finished its (empty) snapshot. One connection inserts rows with ids 0, 1, 2, ... at
//! a fixed rate, each in its own autocommit transaction, paced by a schedule (row `i` is
//! due at `start + i / rate`, so a late write does not lower the rate), and records the
//! instant its COMMIT was acknowledged. Meanwhile a poller reads the emulator's load log
//! every millisecond and records when the number of visible rows grows. Rows are committed
//! in id order by one connection, so the binlog, the sink's batches and the loads keep
//! that order and the visible rows are always a prefix: row `i` became visible at the
//! first poll that saw more than `i` rows. Latency of row `i` = that instant minus its
//! commit acknowledgement. The poll interval makes it err on the high side by about a
//! millisecond; rows of the first seconds (warm-up) are left out of the percentiles.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use cdc_testkit::{DorisEmulator, MariaDb};
use mysql_async::prelude::Queryable as _;

use crate::child::{PhaseChild, visible_rows};
use crate::phase::PhaseArgs;

/// What a latency run measured.
#[derive(Debug, Clone)]
pub(crate) struct Latency {
    /// Changes in the percentiles (after the warm-up).
    pub(crate) measured: u64,
    /// Changes per second actually committed.
    pub(crate) achieved_rate: f64,
    pub(crate) p50: Duration,
    pub(crate) p99: Duration,
    pub(crate) max: Duration,
    /// Rows never seen in the target before the deadline.
    pub(crate) missing: u64,
    pub(crate) rss_kb: Option<u64>,
}

/// The `q`-quantile of sorted values (nearest rank).
pub(crate) fn quantile(sorted: &[Duration], q: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = (q * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// Per-row latencies: row `i` is visible at the first observation of more than `i` rows.
pub(crate) fn latencies(
    commits: &[Instant],
    observations: &[(u64, Instant)],
) -> (Vec<Duration>, u64) {
    let mut out = Vec::with_capacity(commits.len());
    let mut missing = 0;
    let mut next = 0;
    for (i, committed) in commits.iter().enumerate() {
        while next < observations.len() && observations[next].0 <= i as u64 {
            next += 1;
        }
        match observations.get(next) {
            Some((_, seen)) => out.push(seen.saturating_duration_since(*committed)),
            None => missing += 1,
        }
    }
    (out, missing)
}

/// Runs one latency measurement into `bench.{table}` (created here) through the phase
/// described by `args` (mode initial, Doris sink).
pub(crate) async fn measure(
    db: &MariaDb,
    doris: &DorisEmulator,
    args: &PhaseArgs,
    table: &str,
    rate: u64,
    secs: u64,
    warmup_secs: u64,
) -> Result<Latency, String> {
    db.execute(&format!(
        "CREATE TABLE bench.{table} (id BIGINT PRIMARY KEY, k INT, name VARCHAR(32), \
         amount DECIMAL(12,2), created DATETIME(3), score DOUBLE)"
    ))
    .await
    .map_err(|e| format!("creating bench.{table}: {e}"))?;
    let since = doris.load_log().len();
    let mut child = PhaseChild::spawn(args)?;
    child.wait_for("started").await?;
    // The sink creates the target table when the snapshot announces it; a moment later
    // the source is reading the binlog.
    let ready_by = Instant::now() + Duration::from_secs(120);
    while doris.table_columns("bench", table).is_none() {
        if Instant::now() > ready_by || child.exited() {
            let _ = child.finish().await;
            return Err(format!(
                "the pipeline did not create bench.{table} in the emulator within 2 minutes"
            ));
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    tokio::time::sleep(Duration::from_secs(1)).await;

    let total = rate * (secs + warmup_secs);
    let mut conn = db
        .conn()
        .await
        .map_err(|e| format!("connecting the writer: {e}"))?;
    let writer_done = Arc::new(AtomicBool::new(false));
    let writer = {
        let writer_done = writer_done.clone();
        async move {
            let mut commits = Vec::with_capacity(total as usize);
            let start = tokio::time::Instant::now();
            let result = async {
                for i in 0..total {
                    let due = start + Duration::from_nanos(i * 1_000_000_000 / rate);
                    tokio::time::sleep_until(due).await;
                    conn.query_drop(format!(
                        "INSERT INTO bench.{table} VALUES ({i}, {}, 'name-{i}', {}.{:02}, NOW(3), {})",
                        i % 1000,
                        i / 100,
                        i % 100,
                        i as f64 * 1.5
                    ))
                    .await
                    .map_err(|e| format!("inserting row {i} into bench.{table}: {e}"))?;
                    commits.push(Instant::now());
                }
                Ok::<(), String>(())
            }
            .await;
            writer_done.store(true, Ordering::Relaxed);
            result.map(|()| commits)
        }
    };
    let poller = async {
        let mut observations: Vec<(u64, Instant)> = Vec::new();
        let mut last = 0;
        let mut deadline: Option<Instant> = None;
        loop {
            let visible = visible_rows(doris, "bench", table, since, args.two_phase);
            let seen = Instant::now();
            if visible > last {
                observations.push((visible, seen));
                last = visible;
            }
            if visible >= total {
                break;
            }
            // Once the writer is done, give the pipeline 60 s to deliver the rest.
            if writer_done.load(Ordering::Relaxed) {
                let d = *deadline.get_or_insert(seen + Duration::from_secs(60));
                if seen > d {
                    break;
                }
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        observations
    };
    let (commits, observations) = tokio::join!(writer, poller);
    let rss_kb = child.finish().await?;
    let commits = commits?;
    let (mut all, missing) = latencies(&commits, &observations);
    let warmup = (rate * warmup_secs) as usize;
    let mut measured: Vec<Duration> = all.split_off(warmup.min(all.len()));
    measured.sort();
    let span = match (commits.first(), commits.last()) {
        (Some(a), Some(b)) if b > a => b.duration_since(*a).as_secs_f64(),
        _ => 0.0,
    };
    Ok(Latency {
        measured: measured.len() as u64,
        achieved_rate: if span > 0.0 {
            (commits.len().saturating_sub(1)) as f64 / span
        } else {
            0.0
        },
        p50: quantile(&measured, 0.50),
        p99: quantile(&measured, 0.99),
        max: measured.last().copied().unwrap_or_default(),
        missing,
        rss_kb,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_row_is_visible_at_the_first_poll_that_covers_it() {
        let t0 = Instant::now();
        let at = |ms: u64| t0 + Duration::from_millis(ms);
        let commits = [at(0), at(1), at(2), at(3)];
        let observations = [(2, at(10)), (3, at(20))];
        let (lat, missing) = latencies(&commits, &observations);
        assert_eq!(
            lat,
            [10, 9, 18].map(Duration::from_millis).to_vec(),
            "rows 0 and 1 at 10 ms, row 2 at 20 ms"
        );
        assert_eq!(missing, 1);
    }

    #[test]
    fn quantiles_use_the_nearest_rank() {
        let v: Vec<Duration> = (1..=100).map(Duration::from_millis).collect();
        assert_eq!(quantile(&v, 0.5), Duration::from_millis(50));
        assert_eq!(quantile(&v, 0.99), Duration::from_millis(99));
        assert_eq!(quantile(&v, 1.0), Duration::from_millis(100));
        assert_eq!(quantile(&[], 0.5), Duration::ZERO);
    }
}
