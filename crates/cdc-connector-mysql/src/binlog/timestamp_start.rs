//! `scan.startup.mode: timestamp`: the binlog file to start reading in.
//!
//! Each file begins with events stamped when it was opened, so the files are searched
//! by halves on the timestamp of their first stamped event (one short, non-blocking dump
//! per probe) instead of reading forward from the oldest file: a server keeping weeks of
//! binlogs is probed a handful of times. The start is the last file that opened before
//! the timestamp (its tail may hold the first events at or after it); the reader then
//! skips every event before the timestamp, as it does from any start. Flink CDC searches
//! the same way (`DebeziumUtils.findBinlogOffset`).

use std::time::Duration;

use cdc_api::{Error, Result};
use futures::StreamExt;
use mysql_async::BinlogStreamRequest;
use mysql_async::prelude::Queryable;

use super::position::BinlogPosition;
use super::reader::replication_setup;
use crate::error::from_mysql;

/// Events read from the start of a file before giving up on finding a stamped one (a
/// file starts with its format description, which is stamped).
const EVENTS_PER_PROBE: usize = 16;

/// The file to start in for `target_ms` (ms since the epoch), given the server's files in
/// order. Probes `ceil(log2(files))` files at most.
pub(crate) async fn start_for(
    opts: &mysql_async::Opts,
    server_id: u32,
    files: &[String],
    target_ms: i64,
    timeout: Duration,
) -> Result<BinlogPosition> {
    let Some(first) = files.first() else {
        return Err(Error::permanent(
            "finding the binlog file for scan.startup.timestamp-millis",
            "the server has no binlog files",
        ));
    };
    let mut chosen = first.clone();
    let (mut low, mut high) = (0usize, files.len());
    while low < high {
        let mid = low + (high - low) / 2;
        let opened = opened_at(opts, server_id, &files[mid], timeout).await?;
        if i64::from(opened) * 1000 < target_ms {
            chosen.clone_from(&files[mid]);
            low = mid + 1;
        } else {
            high = mid;
        }
    }
    tracing::info!(file = %chosen, target_ms, "scan.startup.mode timestamp: starting in this binlog file");
    Ok(BinlogPosition::new(chosen, 4))
}

/// When `file` was opened: the timestamp (seconds) of its first stamped event.
async fn opened_at(
    opts: &mysql_async::Opts,
    server_id: u32,
    file: &str,
    timeout: Duration,
) -> Result<u32> {
    let context = format!("reading the start of binlog file {file} (scan.startup.mode: timestamp)");
    let probe = async {
        let mut conn = mysql_async::Conn::new(opts.clone())
            .await
            .map_err(|e| from_mysql(&context, e))?;
        for sql in replication_setup(None) {
            conn.query_drop(sql)
                .await
                .map_err(|e| from_mysql(&context, e))?;
        }
        // Only the first events are read (a file opens with its stamped format
        // description); the timeout bounds a server that sends nothing.
        let request = BinlogStreamRequest::new(server_id)
            .with_filename(file.as_bytes())
            .with_pos(4u64);
        let mut stream = conn
            .get_binlog_stream(request)
            .await
            .map_err(|e| from_mysql(&context, e))?;
        let mut found = None;
        for _ in 0..EVENTS_PER_PROBE {
            let Some(event) = stream.next().await else {
                break;
            };
            let event = event.map_err(|e| from_mysql(&context, e))?;
            let ts = event.header().timestamp();
            if ts > 0 {
                found = Some(ts);
                break;
            }
        }
        let _ = stream.close().await;
        found.ok_or_else(|| {
            Error::permanent(
                &context,
                "no event with a timestamp at the start of the file",
            )
        })
    };
    tokio::time::timeout(timeout, probe)
        .await
        .map_err(|_| Error::transient(&context, format!("no answer within {timeout:?}")))?
}
