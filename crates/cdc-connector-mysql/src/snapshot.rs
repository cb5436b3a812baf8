//! The initial snapshot, without global locks and without backfill.
//!
//! Each table is read inside its own `START TRANSACTION WITH CONSISTENT SNAPSHOT`. MariaDB
//! reports the exact binlog position of that snapshot (`binlog_snapshot_file` /
//! `binlog_snapshot_position`), so the rows read are precisely the table's state at that
//! position: a binlog transaction that starts before it is already in the rows, one that
//! starts at or after it is not. The binlog reader later skips, per table, every
//! transaction before the table's position, which gives each change exactly once with
//! no low/high watermark reconciliation.
//!
//! Tables are read in parallel on separate connections, and so is a big table whose
//! snapshot key is unique (its primary key, of any type and any number of columns, or a
//! chunk key column that is the whole primary key): it is split into key ranges, each
//! read under a consistent snapshot of its own at its own position (the binlog reader
//! then decides per row by the range holding its key). How many ranges are read at once,
//! over all tables, and how many ranges a table is cut into: the pipeline's `parallelism`
//! when the file writes it, else `min(connection.pool.size, 4)` (the default from before
//! `parallelism` was read; Flink CDC's default of 1 would slow unchanged files down),
//! never more than `connection.pool.size`. A table is split only when the server
//! estimates at least two chunks of rows (`scan.incremental.snapshot.chunk.size`).
//!
//! Where to cut (`split_bounds`):
//! * a single integer column: evenly between its smallest and largest value (two index
//!   dives);
//! * a key led by a number or a temporal value (DECIMAL, DATE, DATETIME, TIMESTAMP, TIME,
//!   YEAR; a composite key led by one of these or an integer): at the first real key at
//!   or after evenly spread values of the leading column (`seek_split`: one index dive
//!   per cut);
//! * a key led by text (any collation), a binary string, ENUM…: at every `rows /
//!   ranges`-th key in the server's own `ORDER BY`, found by a keyset walk, one `SELECT
//!   key … WHERE key > previous ORDER BY key LIMIT 1 OFFSET n` per cut (`walk_split`).
//!   The bounds agree with the collation by construction, but the server steps over most
//!   of the index before the first row is read: about 0.3 s per million rows on the
//!   benchmark machine, a third of reading them, more than parallel reads gained there
//!   (docs/performance.md). Such a table is split only when the pipeline writes
//!   `parallelism`, and read in one range (as before) when it does not.
//!
//! Skewed leading values give uneven ranges, which still cover every key. Bounds are
//! real keys converted exactly as the rows read are (`convert`, then
//! `KeyPart::from_value`), so resume, segments and the binlog filter treat them like any
//! other key. A plan that fails leaves the table in one range (a warning says why).
//!
//! Key comparisons in the reads (`key_condition`) are spelled out column by column,
//! `k1 >= ? AND (k1 > ? OR k2 > ?)`, because MariaDB scans the whole index for a
//! row-constructor comparison `(k1, k2) > (?, ?)` (every page of a composite-key table
//! cost a scan from its first key); parameters are cast to DECIMAL, turned from bytes
//! into a number for BIT, or converted to the column's character set and collation, so
//! they compare as the column does.
//!
//! A split text key has a cost after the snapshot: for the binlog transactions between
//! the first and the last range's position, the binlog filter compares each changed key
//! of the table with the range bounds on the server (`STRCMP` under the collation), one
//! round trip per comparison. The window is short when the ranges start together, longer
//! when other tables hold the readers.
//!
//! Inside a range rows are paged by key (`scan.incremental.snapshot.chunk.size` rows per
//! query) and handed on in batches of `scan.snapshot.fetch.size`, so memory does not grow
//! with the table. A table without a primary key or chunk key is read in one streamed
//! pass (logged as a warning: it cannot be split), and so is one split by a chunk key
//! that is not its primary key.
//!
//! MySQL has no `binlog_snapshot_*` status variables; there the position is taken while
//! a second connection holds `FLUSH TABLES t WITH READ LOCK`, only while the transaction
//! starts and the position is read. The lock lives on its own connection because starting a
//! transaction releases the table locks of its session: on the reading connection the
//! lock would be gone before the snapshot exists, and a change committed in between would
//! be neither in the rows nor after the position.

use std::sync::Arc;

use cdc_api::{DataChangeEvent, Error, Event, Result, TableId};
use mysql_async::prelude::Queryable;
use mysql_async::{Params, Row, Value as My};
use tokio::sync::{Semaphore, mpsc};
use tokio::task::JoinSet;

use crate::MySqlSourceConfig;
use crate::binlog::position::BinlogPosition;
use crate::error::from_mysql;
use crate::schema::TableMeta;
use crate::snapshot_key::{KeyColumns, KeyPart, KeyRange, TableSegments};
use crate::snapshot_value::convert;
use crate::source::{Batch, SnapshotProgress};

fn is_text(t: &crate::types::MySqlType) -> bool {
    use crate::types::MySqlType as T;
    matches!(t, T::Char(_) | T::VarChar(_) | T::Text | T::Other(_))
}

fn quote(name: &str) -> String {
    format!("`{}`", name.replace('`', "``"))
}

/// Starts a consistent snapshot on `conn` and returns its binlog position.
async fn begin_snapshot(
    conn: &mut mysql_async::Conn,
    meta: &TableMeta,
    context: &str,
) -> Result<BinlogPosition> {
    let err = |e| from_mysql(context, e);
    conn.query_drop("SET SESSION TRANSACTION ISOLATION LEVEL REPEATABLE READ")
        .await
        .map_err(err)?;
    conn.query_drop("START TRANSACTION WITH CONSISTENT SNAPSHOT, READ ONLY")
        .await
        .map_err(err)?;
    let status: Vec<(String, String)> = if crate::testing::snapshot_lock_forced() {
        Vec::new()
    } else {
        conn.query("SHOW STATUS LIKE 'binlog_snapshot_%'")
            .await
            .map_err(err)?
    };
    let file = status
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("binlog_snapshot_file"));
    let pos = status
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("binlog_snapshot_position"));
    if let (Some((_, file)), Some((_, pos))) = (file, pos) {
        if !file.is_empty() {
            let pos = pos.parse().map_err(|_| {
                Error::permanent(context, format!("bad binlog_snapshot_position '{pos}'"))
            })?;
            return Ok(BinlogPosition::new(file.clone(), pos));
        }
    }
    // MySQL: no snapshot position; hold the table still (from another connection, see
    // the module docs) while the snapshot starts. The lock waits for transactions that
    // wrote the table to end, and keeps new ones out until the position is read.
    conn.query_drop("ROLLBACK").await.map_err(err)?;
    let mut lock_conn = mysql_async::Conn::new(conn.opts().clone())
        .await
        .map_err(err)?;
    let table = format!("{}.{}", quote(&meta.db), quote(&meta.table));
    let position = match lock_conn
        .query_drop(format!("FLUSH TABLES {table} WITH READ LOCK"))
        .await
    {
        Ok(()) => {
            let started = conn
                .query_drop("START TRANSACTION WITH CONSISTENT SNAPSHOT, READ ONLY")
                .await;
            match started {
                Ok(()) => crate::binlog::status::current_position(conn, context).await,
                Err(e) => Err(err(e)),
            }
        }
        Err(e) => Err(err(e)),
    };
    // Unlocked whatever happened (closing the connection would unlock too).
    let unlock = lock_conn.query_drop("UNLOCK TABLES").await;
    let _ = lock_conn.disconnect().await;
    let position = position?;
    unlock.map_err(err)?;
    Ok(position)
}

/// The pipeline's `parallelism` (Flink CDC's global parallelism) when the file writes it.
pub(crate) fn pipeline_parallelism(pipeline: &cdc_api::Options) -> Result<Option<usize>> {
    let Some(text) = pipeline.get_raw("parallelism") else {
        return Ok(None);
    };
    match text.trim().parse::<usize>() {
        Ok(n) if n >= 1 => Ok(Some(n)),
        _ => Err(Error::invalid_option(
            pipeline.qualified("parallelism"),
            format!("'{text}' is not a whole number of at least 1"),
        )),
    }
}

/// How many key ranges are read at once, over all tables, and into how many ranges a big
/// table is split: the pipeline's `parallelism` when the file writes it, else up to 4 (the
/// default since before `parallelism` was read: Flink CDC's default of 1 would make an
/// unchanged file slower). Never more than `connection.pool.size`: each read holds one
/// connection for its whole range. Called once per start (it warns when the pool is the
/// limit).
pub(crate) fn readers(config: &MySqlSourceConfig) -> usize {
    if let Some(p) = config.snapshot_parallelism {
        if p > config.pool_size {
            tracing::warn!(
                parallelism = p,
                pool_size = config.pool_size,
                "pipeline.parallelism is above the source's connection.pool.size: the snapshot reads {} key ranges at once (raise connection.pool.size to read more)",
                config.pool_size
            );
        }
    }
    reader_limit(config)
}

/// [`readers`] without the warning.
fn reader_limit(config: &MySqlSourceConfig) -> usize {
    match config.snapshot_parallelism {
        Some(p) => p.min(config.pool_size).max(1),
        None => config.pool_size.clamp(1, 4),
    }
}

/// How to read one table: where a resumed read continues, and what was read before.
pub(crate) struct TableRead {
    pub(crate) meta: TableMeta,
    /// Segments read by earlier runs (empty for a fresh table).
    pub(crate) prior: TableSegments,
}

/// Reads one table (the rest of it when resuming) and sends its rows, then a batch that
/// marks the table done. A big table with a unique key is split into key ranges
/// read in parallel (each under its own consistent snapshot, at its own position); the
/// number of reads running at once, over all tables, is bounded by `permits`. Returns the
/// table's segments.
pub(crate) async fn snapshot_table(
    pool: mysql_async::Pool,
    read: TableRead,
    config: Arc<MySqlSourceConfig>,
    tx: mpsc::Sender<Result<Batch>>,
    permits: Arc<Semaphore>,
) -> Result<TableSegments> {
    let TableRead { meta, mut prior } = read;
    let context = format!("snapshot of {}.{}", meta.db, meta.table);
    let table_key = (meta.db.clone(), meta.table.clone());
    let key = KeyColumns::of(&meta, config.chunk_key_for(&meta.db, &meta.table)).map_err(|m| {
        Error::invalid_option("source.scan.incremental.snapshot.chunk.key-column", m)
    })?;
    if prior.segments.is_empty() {
        let bounds = {
            let mut conn = pool.get_conn().await.map_err(|e| from_mysql(&context, e))?;
            split_bounds(&mut conn, &meta, &key, &config, reader_limit(&config)).await?
        };
        if !bounds.is_empty() {
            tracing::info!(table = %meta.table_id(), ranges = bounds.len() + 1, "reading the table in parallel key ranges");
            prior.plan(&bounds);
            let mut b = Batch::rows(Vec::new());
            b.snapshot_plans.push((table_key.clone(), bounds));
            if tx.send(Ok(b)).await.is_err() {
                return Ok(prior);
            }
        }
    }
    let meta = Arc::new(meta);
    let interrupted = !prior.segments.is_empty();
    // A table without a key, or split by a chunk key that is not its primary key, is
    // read whole, and again from the start after an interruption. Resuming such a table
    // in the middle is not exact: the binlog filter decides by chunk key, the target
    // knows rows by primary key, and a row that moved to another chunk key value between
    // the reads would be inserted by the later read and then deleted by the binlog
    // change that moved it.
    let whole = read_whole(&meta, &key);
    let ranges = if whole {
        vec![KeyRange {
            after: None,
            until: None,
        }]
    } else {
        prior.unread()
    };
    let mut reads = JoinSet::new();
    for range in ranges {
        let (pool, config, tx, meta, key, permits) = (
            pool.clone(),
            config.clone(),
            tx.clone(),
            meta.clone(),
            key.clone(),
            permits.clone(),
        );
        reads.spawn(async move {
            let _permit = permits
                .acquire_owned()
                .await
                .map_err(|e| Error::permanent("snapshot", e.to_string()))?;
            let until = range.until.clone();
            read_range(pool, &meta, &key, interrupted, range, config, tx)
                .await
                .map(|pos| (until, pos))
        });
    }
    while let Some(joined) = reads.join_next().await {
        match joined {
            Ok(Ok((until, Some(pos)))) => {
                if whole {
                    prior.segments.clear();
                }
                prior.record(until.as_ref(), &pos, None, true);
            }
            // The receiver is gone: the source is closing.
            Ok(Ok((_, None))) => return Ok(prior),
            Ok(Err(e)) => return Err(e),
            Err(e) => return Err(Error::permanent(&context, e.to_string())),
        }
    }
    tracing::info!(table = %meta.table_id(), segments = prior.segments.len(), "snapshot of table done");
    let mut done = Batch::rows(Vec::new());
    done.snapshot_done.push(table_key);
    let _ = tx.send(Ok(done)).await;
    Ok(prior)
}

/// Where to split a table for parallel reads, when its key is unique (every primary key,
/// or a chunk key column that is the whole primary key) and the server estimates at
/// least two chunks of rows: `ranges - 1` key values, ascending, each the upper bound
/// (inclusive) of a range. Empty: read the table in one range.
///
/// A single integer column is cut evenly between its smallest and largest value (two
/// index dives). A key led by a number or a temporal value is cut at the real keys that
/// follow evenly spread values of its leading column ([`seek_split`]: a few index
/// dives). Any other key (led by text under any collation, binary, ENUM…) is cut at real
/// key values the server picks in its own `ORDER BY` order: a keyset walk of the key
/// index ([`walk_split`]), only when the pipeline writes `parallelism` (see the module
/// docs for why). The bounds agree with the server's order by construction, and they
/// are converted exactly as the reading path converts key values, so the segments and
/// the binlog filter compare them like any other key.
async fn split_bounds(
    conn: &mut mysql_async::Conn,
    meta: &TableMeta,
    key: &KeyColumns,
    config: &MySqlSourceConfig,
    readers: usize,
) -> Result<Vec<Vec<KeyPart>>> {
    use crate::types::MySqlType as T;
    let context = format!("planning the snapshot of {}.{}", meta.db, meta.table);
    let err = |e| from_mysql(&context, e);
    if key.is_empty() || !key_is_unique(meta, key) || readers < 2 {
        return Ok(Vec::new());
    }
    let estimate: Option<u64> = conn
        .exec_first(
            "SELECT TABLE_ROWS FROM information_schema.TABLES WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ?",
            (&meta.db, &meta.table),
        )
        .await
        .map_err(err)?;
    let estimate = estimate.unwrap_or(0);
    let chunks = estimate / config.chunk_size.max(1);
    let ranges = usize::try_from(chunks).unwrap_or(usize::MAX).min(readers);
    if ranges < 2 {
        return Ok(Vec::new());
    }
    let integer = matches!(
        key.types.as_slice(),
        [T::TinyInt { .. }
            | T::SmallInt { .. }
            | T::MediumInt { .. }
            | T::Int { .. }
            | T::BigInt { .. }]
    );
    let started = std::time::Instant::now();
    let planned = if integer {
        even_split(conn, meta, key, ranges, &context).await
    } else if key.types.first().is_some_and(|t| ordinal_type(t).is_some()) {
        seek_split(conn, meta, key, config, ranges, &context).await
    } else if config.snapshot_parallelism.is_some() {
        walk_split(conn, meta, key, config, estimate, ranges, &context).await
    } else {
        // The walk steps over most of the key index before the first row is read: about
        // a quarter of a sequential read's time where the index is not cached, more than
        // parallel reads gained on the 2-core benchmark machine (docs/performance.md).
        // Without `parallelism` written such a table is read in one range, as before.
        tracing::debug!(table = %meta.table_id(), "text or binary leading key column: read in one range (write pipeline.parallelism to split it)");
        Ok(Vec::new())
    };
    // Splitting only speeds the read up: a plan that fails (a key value this planner
    // cannot convert, a statement the server refuses) leaves the table in one range.
    let bounds = planned.unwrap_or_else(|e| {
        tracing::warn!(table = %meta.table_id(), error = %e, "cannot plan a split of the snapshot: reading the table in one range");
        Vec::new()
    });
    tracing::debug!(table = %meta.table_id(), ranges = bounds.len() + 1, elapsed = ?started.elapsed(), "snapshot split planned");
    crate::testing::record_plan(&meta.table_id().to_string(), &bounds);
    Ok(bounds)
}

/// Bounds cutting a single integer key evenly between its smallest and largest value.
async fn even_split(
    conn: &mut mysql_async::Conn,
    meta: &TableMeta,
    key: &KeyColumns,
    ranges: usize,
    context: &str,
) -> Result<Vec<Vec<KeyPart>>> {
    let k = quote(&key.names[0]);
    let from = format!("{}.{}", quote(&meta.db), quote(&meta.table));
    let row: Option<(My, My)> = conn
        .query_first(format!("SELECT MIN({k}), MAX({k}) FROM {from}"))
        .await
        .map_err(|e| from_mysql(context, e))?;
    let as_int = |v: &My| match v {
        My::Int(i) => Some(i128::from(*i)),
        My::UInt(u) => Some(i128::from(*u)),
        My::Bytes(b) => std::str::from_utf8(b).ok()?.parse().ok(),
        _ => None,
    };
    let Some((Some(min), Some(max))) = row.map(|(a, b)| (as_int(&a), as_int(&b))) else {
        return Ok(Vec::new());
    };
    Ok(even_bounds(min, max, ranges)
        .into_iter()
        .map(|b| vec![KeyPart::Int(b.to_string())])
        .collect())
}

/// How the leading key column maps to whole numbers in key order, for [`seek_split`]:
/// `Some(scale)` for types it can interpolate (the DECIMAL scale; 0 for the others).
fn ordinal_type(t: &crate::types::MySqlType) -> Option<u32> {
    use crate::types::MySqlType as T;
    match t {
        T::TinyInt { .. }
        | T::SmallInt { .. }
        | T::MediumInt { .. }
        | T::Int { .. }
        | T::BigInt { .. }
        | T::Year
        | T::Date
        | T::DateTime(_)
        | T::Timestamp(_)
        | T::Time(_) => Some(0),
        T::Decimal { scale, .. } => Some(u32::from(*scale)),
        _ => None,
    }
}

/// A key part of the leading column as a whole number in key order: integers as they
/// are, DECIMAL scaled to an integer, temporal values in microseconds.
fn ordinal(part: &KeyPart, scale: u32) -> Option<i128> {
    use cdc_api::{Date, Timestamp};
    match part {
        KeyPart::Int(s) => s.parse().ok(),
        KeyPart::Decimal(s) => {
            let s = s.trim();
            let (neg, digits) = s.strip_prefix('-').map_or((false, s), |r| (true, r));
            let (int, frac) = digits.split_once('.').unwrap_or((digits, ""));
            if frac.len() > scale as usize {
                return None;
            }
            let text = format!("{int}{frac:0<width$}", width = scale as usize);
            let n: i128 = text.parse().ok()?;
            Some(if neg { -n } else { n })
        }
        KeyPart::Date(y, m, d) => Some(i128::from(
            Timestamp::new(Date::new(*y, *m, *d), 0, 0, 0, 0).to_epoch_micros(),
        )),
        KeyPart::DateTime(y, mo, d, h, mi, sec, us) => Some(i128::from(
            Timestamp::new(Date::new(*y, *mo, *d), *h, *mi, *sec, *us).to_epoch_micros(),
        )),
        KeyPart::Time(us) => Some(i128::from(*us)),
        _ => None,
    }
}

/// The statement parameter for ordinal `n` of the leading column shaped like `like`
/// (see [`ordinal`]).
fn ordinal_param(like: &KeyPart, n: i128, scale: u32) -> Option<My> {
    Some(match like {
        KeyPart::Int(_) => KeyPart::Int(n.to_string()).to_param(),
        KeyPart::Decimal(_) => {
            let digits = n.unsigned_abs().to_string();
            let scale = scale as usize;
            let padded = format!("{digits:0>width$}", width = scale + 1);
            let (int, frac) = padded.split_at(padded.len() - scale);
            let sign = if n < 0 { "-" } else { "" };
            let text = if scale == 0 {
                format!("{sign}{int}")
            } else {
                format!("{sign}{int}.{frac}")
            };
            My::Bytes(text.into_bytes())
        }
        KeyPart::Date(..) | KeyPart::DateTime(..) => {
            let t = cdc_api::Timestamp::from_epoch_micros(i64::try_from(n).ok()?);
            // Targets near a zero date fall before year 0 (the year wraps): no target.
            if t.date.year > 9999 {
                return None;
            }
            KeyPart::DateTime(
                t.date.year,
                t.date.month,
                t.date.day,
                t.hour,
                t.minute,
                t.second,
                t.micros,
            )
            .to_param()
        }
        KeyPart::Time(_) => KeyPart::Time(i64::try_from(n).ok()?).to_param(),
        _ => return None,
    })
}

/// Bounds for a key whose leading column is a number or a temporal value (a single
/// DECIMAL or DATETIME key, a composite key led by an integer…): targets spread evenly
/// between the smallest and largest leading value, each moved to the first real key at
/// or after it by an index dive (`WHERE k1 >= target ORDER BY key LIMIT 1`). A few
/// queries whatever the table's size; the bounds are real keys, converted as rows are.
/// Like the integer split, a skewed leading column gives uneven ranges.
async fn seek_split(
    conn: &mut mysql_async::Conn,
    meta: &TableMeta,
    key: &KeyColumns,
    config: &MySqlSourceConfig,
    ranges: usize,
    context: &str,
) -> Result<Vec<Vec<KeyPart>>> {
    let err = |e| from_mysql(context, e);
    let Some(scale) = key.types.first().and_then(ordinal_type) else {
        return Ok(Vec::new());
    };
    let quoted: Vec<String> = key.names.iter().map(|k| quote(k)).collect();
    let cols = quoted.join(", ");
    let from = format!("{}.{}", quote(&meta.db), quote(&meta.table));
    let infos = crate::binlog::reader::column_infos(meta);
    let lead = KeyColumns {
        names: key.names[..1].to_vec(),
        idx: key.idx[..1].to_vec(),
        types: key.types[..1].to_vec(),
        collations: key.collations[..1].to_vec(),
    };
    let k1 = &quoted[0];
    // The binary protocol, as the reads use: values arrive typed (the text protocol
    // would send a DATETIME as text, which `convert` rejects).
    let row: Option<Row> = conn
        .exec_first(
            format!("SELECT MIN({k1}), MAX({k1}) FROM {from}"),
            Params::Empty,
        )
        .await
        .map_err(err)?;
    let Some(mut raw) = row.map(Row::unwrap) else {
        return Ok(Vec::new());
    };
    if raw.len() != 2 {
        return Ok(Vec::new());
    }
    let max_raw = raw.pop().unwrap_or(My::NULL);
    let min_raw = raw.pop().unwrap_or(My::NULL);
    let tiny = config.tinyint1_as_boolean;
    let part = |v: My| -> Result<KeyPart> {
        let mut parts =
            key_from_raw(&lead, &infos, tiny, vec![v]).map_err(|m| Error::permanent(context, m))?;
        Ok(parts.pop().unwrap_or(KeyPart::Null))
    };
    let (min, max) = (part(min_raw)?, part(max_raw)?);
    let (Some(lo), Some(hi)) = (ordinal(&min, scale), ordinal(&max, scale)) else {
        return Ok(Vec::new());
    };
    let mut bounds: Vec<Vec<KeyPart>> = Vec::new();
    for target in even_bounds(lo, hi, ranges) {
        // The first bound is above the smallest key: the first range is never empty.
        let Some(param) = ordinal_param(&min, target.saturating_add(1), scale) else {
            continue;
        };
        let sql = format!(
            "SELECT {cols} FROM {from} WHERE {k1} >= {} ORDER BY {cols} LIMIT 1",
            placeholder(key, 0)
        );
        let row: Option<Row> = conn
            .exec_first(sql, Params::Positional(vec![param]))
            .await
            .map_err(err)?;
        let Some(row) = row else { break };
        let bound = key_from_raw(key, &infos, tiny, row.unwrap())
            .map_err(|m| Error::permanent(context, m))?;
        if bounds.last() != Some(&bound) {
            bounds.push(bound);
        }
    }
    Ok(bounds)
}

/// Bounds at every `estimate / ranges`-th key in the server's key order, found by a
/// keyset walk: `ranges - 1` queries at most, each starting after the previous bound.
/// Ends early (fewer ranges) when the table holds fewer rows than estimated; a table
/// holding more makes the last range bigger. Either way the ranges cover every key.
async fn walk_split(
    conn: &mut mysql_async::Conn,
    meta: &TableMeta,
    key: &KeyColumns,
    config: &MySqlSourceConfig,
    estimate: u64,
    ranges: usize,
    context: &str,
) -> Result<Vec<Vec<KeyPart>>> {
    let step = estimate / u64::try_from(ranges).unwrap_or(u64::MAX).max(1);
    let quoted: Vec<String> = key.names.iter().map(|k| quote(k)).collect();
    let cols = quoted.join(", ");
    let from = format!("{}.{}", quote(&meta.db), quote(&meta.table));
    let infos = crate::binlog::reader::column_infos(meta);
    let mut bounds: Vec<Vec<KeyPart>> = Vec::new();
    for _ in 1..ranges {
        let (cond, params) = match bounds.last() {
            None => (String::new(), Vec::new()),
            Some(prev) => {
                let values: Vec<My> = prev.iter().map(KeyPart::to_param).collect();
                let (c, p) = key_condition(key, &quoted, &values, false);
                (format!(" WHERE {c}"), p)
            }
        };
        let sql = format!(
            "SELECT {cols} FROM {from}{cond} ORDER BY {cols} LIMIT 1 OFFSET {}",
            step.saturating_sub(1)
        );
        let row: Option<Row> = conn
            .exec_first(sql, to_params(params))
            .await
            .map_err(|e| from_mysql(context, e))?;
        let Some(row) = row else { break };
        let bound = key_from_raw(key, &infos, config.tinyint1_as_boolean, row.unwrap())
            .map_err(|m| Error::permanent(context, m))?;
        bounds.push(bound);
    }
    Ok(bounds)
}

/// The key of a row of key columns as the server sent them, converted exactly as the
/// reading path converts the same columns of a full row (`convert`, then
/// `KeyPart::from_value`).
fn key_from_raw(
    key: &KeyColumns,
    infos: &[crate::binlog::rows::ColumnInfo],
    tinyint1_as_boolean: bool,
    raw: Vec<My>,
) -> std::result::Result<Vec<KeyPart>, String> {
    if raw.len() != key.idx.len() {
        return Err(format!(
            "expected {} key columns, the server sent {}",
            key.idx.len(),
            raw.len()
        ));
    }
    raw.into_iter()
        .zip(key.idx.iter().zip(&key.types))
        .zip(&key.names)
        .map(|((v, (&i, t)), name)| {
            let info = infos
                .get(i)
                .ok_or_else(|| format!("no column info for key column `{name}`"))?;
            let value = convert(&info.mysql_type, &info.charset, tinyint1_as_boolean, v)
                .map_err(|m| format!("key column `{name}`: {m}"))?;
            KeyPart::from_value(t, &value).map_err(|m| format!("key column `{name}`: {m}"))
        })
        .collect()
}

fn to_params(params: Vec<My>) -> Params {
    if params.is_empty() {
        Params::Empty
    } else {
        Params::Positional(params)
    }
}

/// `(key) > (bound)` (or, with `upper`, `(key) <= (bound)`) spelled out column by column:
/// `k1 >= ? AND (k1 > ? OR (k2 >= ? AND (k2 > ? OR k3 > ?)))`. MariaDB does not turn a
/// row-constructor comparison into an index range (`type: index`, a scan from the first
/// key on every page), but does this form (`type: range` on the leading column), and
/// means the same for NOT NULL columns: every split key is a primary key, and a single
/// nullable chunk key column is compared alone (its NULLs are read in a pass of their
/// own). Each value is compared as the column's own type: DECIMAL through a cast
/// (MariaDB compares a text parameter with a DECIMAL column exactly, but MySQL's rules
/// compare them as DOUBLE, which cannot tell apart decimals beyond 15 digits), text
/// under the column's character set and collation.
fn key_condition(
    key: &KeyColumns,
    quoted: &[String],
    bound: &[My],
    upper: bool,
) -> (String, Vec<My>) {
    let n = quoted.len().min(bound.len());
    if n == 0 {
        return ("1 = 1".to_string(), Vec::new());
    }
    let (weak, strict, last) = if upper {
        ("<=", "<", "<=")
    } else {
        (">=", ">", ">")
    };
    let ph = |i: usize| placeholder(key, i);
    let mut sql = format!("{} {last} {}", quoted[n - 1], ph(n - 1));
    let mut params = vec![bound[n - 1].clone()];
    for i in (0..n - 1).rev() {
        let (c, p) = (&quoted[i], ph(i));
        sql = format!("{c} {weak} {p} AND ({c} {strict} {p} OR ({sql}))");
        let mut outer = vec![bound[i].clone(), bound[i].clone()];
        outer.append(&mut params);
        params = outer;
    }
    (format!("({sql})"), params)
}

/// The parameter of key column `i` in a comparison with the column (see `key_condition`).
fn placeholder(key: &KeyColumns, i: usize) -> String {
    use crate::types::MySqlType as T;
    let safe = |s: &str| !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    match key.types.get(i) {
        Some(T::Decimal { precision, scale }) => {
            let p = (*precision).clamp(1, 65);
            let s = (*scale).min(p).min(38);
            format!("CAST(? AS DECIMAL({p}, {s}))")
        }
        // BIT(n > 1) values travel as big-endian bytes; the server compares a BIT column
        // with a byte string as a number read from text (wrong), so the bytes are turned
        // into the number they spell.
        Some(T::Bit(n)) if *n > 1 => "CAST(CONV(HEX(?), 16, 10) AS UNSIGNED)".to_string(),
        Some(t) if is_text(t) => match key.collations.get(i) {
            Some((Some(cs), Some(co))) if safe(cs) && safe(co) => {
                format!("CONVERT(? USING {cs}) COLLATE {co}")
            }
            _ => "?".to_string(),
        },
        _ => "?".to_string(),
    }
}

/// The snapshot key of the last row in `batch` (`None` for an empty batch or no key).
fn last_key_of(key: &KeyColumns, batch: &[Event], context: &str) -> Result<Option<Vec<KeyPart>>> {
    if key.is_empty() {
        return Ok(None);
    }
    match batch.last() {
        Some(Event::DataChange(DataChangeEvent {
            after: Some(values),
            ..
        })) => key
            .key_of(values)
            .map(Some)
            .map_err(|m| Error::permanent(context, m)),
        _ => Ok(None),
    }
}

/// `ranges - 1` ascending split points that cut `[min, max]` into near-equal parts, each
/// below `max` (so that no range is empty by construction).
fn even_bounds(min: i128, max: i128, ranges: usize) -> Vec<i128> {
    let n = i128::try_from(ranges).unwrap_or(1).max(1);
    let mut out: Vec<i128> = (1..n).map(|i| min + (max - min) * i / n).collect();
    out.retain(|b| *b < max);
    out.dedup();
    out
}

/// Whether a table is read in one range and, after an interruption, again from the start:
/// it has no key, or its chunk key is not its primary key (see `snapshot_table`).
fn read_whole(meta: &TableMeta, key: &KeyColumns) -> bool {
    key.is_empty() || !key_is_unique(meta, key)
}

/// Whether no two rows share a snapshot key: the primary key (also an empty one), or a
/// chunk key column that is the whole primary key.
fn key_is_unique(meta: &TableMeta, key: &KeyColumns) -> bool {
    key.names.len() == meta.primary_key.len()
        && key
            .names
            .iter()
            .zip(&meta.primary_key)
            .all(|(a, b)| a.eq_ignore_ascii_case(b))
}

/// Rows between two pauses for `scan.snapshot.rate-limit`: small enough that the rate is
/// smooth, large enough that the limiter's lock is taken rarely.
const PACE_EVERY_ROWS: u64 = 256;

/// Reads one key range of a table under a consistent snapshot of its own and sends its
/// rows; every batch records how far the range got. Returns the position it was read at
/// (`None` when the receiver is gone).
async fn read_range(
    pool: mysql_async::Pool,
    meta: &TableMeta,
    key: &KeyColumns,
    interrupted: bool,
    range: KeyRange,
    config: Arc<MySqlSourceConfig>,
    tx: mpsc::Sender<Result<Batch>>,
) -> Result<Option<BinlogPosition>> {
    let KeyRange {
        after: resume_after,
        until,
    } = range;
    let context = format!("snapshot of {}.{}", meta.db, meta.table);
    let err = |e| from_mysql(&context, e);
    let table_id = TableId::new(&meta.db, &meta.table);
    let mut conn = pool.get_conn().await.map_err(err)?;
    let position = begin_snapshot(&mut conn, meta, &context).await?;
    let infos = crate::binlog::reader::column_infos(meta);
    let columns: Vec<String> = meta.columns.iter().map(|c| quote(&c.name)).collect();
    let from = format!("{}.{}", quote(&meta.db), quote(&meta.table));
    if key.is_empty() {
        tracing::warn!(table = %table_id, "no primary key and no chunk key: reading the table in one pass (set scan.incremental.snapshot.chunk.key-column to split it)");
    }
    // A primary key is unique: pages cut by LIMIT never split equal keys. A chunk key
    // column may repeat (or be NULL): pages then end at a key bound so that equal keys
    // are never split between pages.
    let unique = key_is_unique(meta, key);
    let nullable = key
        .idx
        .iter()
        .any(|&i| meta.columns.get(i).is_some_and(|c| c.nullable));
    let quoted_key: Vec<String> = key.names.iter().map(|k| quote(k)).collect();
    let order = quoted_key.join(", ");
    let tiny = config.tinyint1_as_boolean;
    let fetch = config.fetch_size;
    let table_key = (meta.db.clone(), meta.table.clone());
    let limit = &config.snapshot_limit;
    if limit.is_set() {
        // While a rate limit holds the reader back, the server waits to write the rest of
        // a page: give it longer than the slowest page can take before it drops the
        // connection (net_write_timeout, 60 s by default).
        let page = limit.longest_wait(config.chunk_size, config.chunk_size * 1024);
        let seconds = (page.as_secs() * 2).max(3600);
        conn.query_drop(format!("SET SESSION net_write_timeout = {seconds}"))
            .await
            .map_err(err)?;
    }
    // Rows and bytes read since the last pause for the rate limit.
    let (mut paced_rows, mut paced_bytes) = (0u64, 0u64);

    // The lower bound of the next page: None = from the first key; Some(params).
    let mut last_key: Option<Vec<My>> = resume_after
        .as_ref()
        .map(|k| k.iter().map(KeyPart::to_param).collect());
    // NULL chunk keys sort first and are read in a pass of their own (`> NULL` matches
    // nothing). Once any non-NULL key was emitted, the NULL pass is done.
    let mut null_pass = nullable && resume_after.is_none();
    // Equal keys must not be split between batches. With a unique key every row differs;
    // a repeating text chunk key may hold values equal under its collation but not
    // bytewise ('a' / 'A'), so such batches are cut only at page ends (server-made bounds).
    let cut_inside_page = unique || !key.types.iter().any(is_text);
    let mut batch: Vec<Event> = Vec::with_capacity(fetch);
    let mut total = 0u64;
    // A table read whole (see `snapshot_table`) cannot continue where a killed run
    // stopped: it is read again from the start. The rows emitted before the kill are then
    // withdrawn by a TruncateTable first (exact where the sink applies truncation; the
    // module docs say what happens where it does not).
    let restart = read_whole(meta, key);
    if restart && interrupted {
        tracing::warn!(table = %table_id, "the snapshot of this table (no key, or a chunk key that is not its primary key) was interrupted: truncating and reading it again");
        let mut b = Batch::rows(vec![Event::SchemaChange(
            cdc_api::SchemaChangeEvent::TruncateTable {
                table_id: table_id.clone(),
            },
        )]);
        b.snapshot_progress.push(SnapshotProgress {
            table: table_key.clone(),
            pos: position.clone(),
            until: None,
            upto: None,
            done: false,
            restart: true,
        });
        if tx.send(Ok(b)).await.is_err() {
            return Ok(None);
        }
    }
    let send = |events: Vec<Event>, upto: Option<Vec<KeyPart>>, restart: bool| {
        let mut b = Batch::rows(events);
        b.snapshot_progress.push(SnapshotProgress {
            table: table_key.clone(),
            pos: position.clone(),
            until: until.clone(),
            upto,
            done: false,
            restart,
        });
        b
    };
    loop {
        let select = format!("SELECT {} FROM {from}", columns.join(", "));
        let (sql, params) = if key.is_empty() {
            (select, Params::Empty)
        } else if null_pass {
            let k = quoted_key.first().cloned().unwrap_or_default();
            (format!("{select} WHERE {k} IS NULL"), Params::Empty)
        } else {
            let not_null = if nullable {
                let k = quoted_key.first().cloned().unwrap_or_default();
                format!("{k} IS NOT NULL")
            } else {
                "1 = 1".to_string()
            };
            let (mut lower, mut params) = match &last_key {
                Some(k) if !(k.len() == 1 && matches!(k[0], My::NULL)) => {
                    let (c, p) = key_condition(key, &quoted_key, k, false);
                    (format!(" AND {c}"), p)
                }
                _ => (String::new(), Vec::new()),
            };
            // The end of this read's key range.
            if let Some(until) = &until {
                let values: Vec<My> = until.iter().map(KeyPart::to_param).collect();
                let (c, p) = key_condition(key, &quoted_key, &values, true);
                lower.push_str(&format!(" AND {c}"));
                params.extend(p);
            }
            if unique {
                (
                    format!(
                        "{select} WHERE {not_null}{lower} ORDER BY {order} LIMIT {}",
                        config.chunk_size
                    ),
                    if params.is_empty() {
                        Params::Empty
                    } else {
                        Params::Positional(params)
                    },
                )
            } else {
                // The page ends at the largest key among the next chunk-size rows.
                let k = quoted_key.first().cloned().unwrap_or_default();
                let bound_params = params.clone();
                let bound_sql = format!(
                    "SELECT MAX({k}) FROM (SELECT {k} FROM {from} WHERE {not_null}{lower} ORDER BY {k} LIMIT {}) AS page",
                    config.chunk_size
                );
                let bound: Option<My> = conn
                    .exec_first(
                        bound_sql,
                        if bound_params.is_empty() {
                            Params::Empty
                        } else {
                            Params::Positional(bound_params)
                        },
                    )
                    .await
                    .map_err(err)?;
                let Some(bound) = bound.filter(|b| !matches!(b, My::NULL)) else {
                    break;
                };
                params.push(bound);
                (
                    format!("{select} WHERE {not_null}{lower} AND {k} <= ? ORDER BY {order}"),
                    Params::Positional(params),
                )
            }
        };
        let mut result = conn.exec_iter(sql, params).await.map_err(err)?;
        let mut rows_in_page = 0u64;
        let mut stream = result.stream::<Row>().await.map_err(err)?;
        if let Some(stream) = stream.as_mut() {
            use futures::StreamExt;
            while let Some(row) = stream.next().await {
                let row = row.map_err(err)?;
                let raw = row.unwrap();
                if limit.is_set() {
                    paced_rows += 1;
                    paced_bytes += crate::rate_limit::row_bytes(&raw);
                    if paced_rows >= PACE_EVERY_ROWS {
                        limit.pace(paced_rows, paced_bytes).await;
                        (paced_rows, paced_bytes) = (0, 0);
                    }
                }
                let mut values = Vec::with_capacity(raw.len());
                for (v, (info, column)) in raw.into_iter().zip(infos.iter().zip(&meta.columns)) {
                    values.push(convert(&info.mysql_type, &info.charset, tiny, v).map_err(
                        |m| Error::permanent(&context, format!("column `{}`: {m}", column.name)),
                    )?);
                }
                // Cut batches only where the key changes: "all rows up to the batch's
                // last key were emitted" must hold at every offset. Keys are worked out
                // only here, once per batch, not for every row.
                if batch.len() >= fetch {
                    let cut = if key.is_empty() || unique {
                        true
                    } else if cut_inside_page {
                        let row_key = key
                            .key_of(&values)
                            .map_err(|m| Error::permanent(&context, m))?;
                        Some(row_key) != last_key_of(key, &batch, &context)?
                    } else {
                        false
                    };
                    if cut {
                        let upto = last_key_of(key, &batch, &context)?;
                        let events = std::mem::replace(&mut batch, Vec::with_capacity(fetch));
                        if tx.send(Ok(send(events, upto, restart))).await.is_err() {
                            return Ok(None);
                        }
                    }
                }
                let mut event = DataChangeEvent::insert(table_id.clone(), values);
                if config.op_ts {
                    event = event.with_meta("op_ts", "0");
                }
                batch.push(Event::DataChange(event));
                rows_in_page += 1;
            }
        }
        drop(stream);
        drop(result);
        total += rows_in_page;
        if key.is_empty() {
            break;
        }
        // The page's last row is the batch's last (batches are cut before a row is added):
        // the next page starts after its key.
        let page_last = if rows_in_page > 0 {
            last_key_of(key, &batch, &context)?
        } else {
            None
        };
        if !cut_inside_page && batch.len() >= fetch {
            let events = std::mem::replace(&mut batch, Vec::with_capacity(fetch));
            if tx
                .send(Ok(send(events, page_last.clone(), restart)))
                .await
                .is_err()
            {
                return Ok(None);
            }
        }
        if null_pass {
            null_pass = false;
            last_key = Some(vec![My::NULL]);
            continue;
        }
        if let Some(k) = page_last {
            last_key = Some(k.iter().map(KeyPart::to_param).collect());
        }
        if rows_in_page == 0 || (unique && rows_in_page < config.chunk_size) {
            break;
        }
    }
    conn.query_drop("COMMIT").await.map_err(err)?;
    if paced_rows > 0 {
        limit.pace(paced_rows, paced_bytes).await;
    }
    tracing::debug!(table = %table_id, rows = total, position = %position, after = ?resume_after, until = ?until, "snapshot range done");
    let mut done = Batch::rows(batch);
    done.snapshot_progress.push(SnapshotProgress {
        table: table_key,
        pos: position.clone(),
        until,
        upto: None,
        done: true,
        restart,
    });
    if tx.send(Ok(done)).await.is_err() {
        return Ok(None);
    }
    Ok(Some(position))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::binlog::rows::ColumnInfo;
    use crate::types::{Charset, MySqlType as T};

    fn key(types: Vec<T>, collations: Vec<(Option<String>, Option<String>)>) -> KeyColumns {
        let n = types.len();
        KeyColumns {
            names: (0..n).map(|i| format!("k{i}")).collect(),
            idx: (0..n).collect(),
            types,
            collations,
        }
    }

    fn infos(key: &KeyColumns) -> Vec<ColumnInfo> {
        key.types
            .iter()
            .map(|t| ColumnInfo {
                mysql_type: t.clone(),
                charset: Charset::from_name("utf8mb4"),
            })
            .collect()
    }

    #[test]
    fn composite_bounds_are_spelled_out_for_the_index_range() {
        let k = key(
            vec![T::Int { unsigned: false }, T::VarChar(20), T::Date],
            vec![
                (None, None),
                (Some("utf8mb4".into()), Some("utf8mb4_general_ci".into())),
                (None, None),
            ],
        );
        let quoted: Vec<String> = k.names.iter().map(|n| quote(n)).collect();
        let bound = vec![
            My::Int(7),
            My::Bytes(b"x".to_vec()),
            My::Date(2024, 1, 2, 0, 0, 0, 0),
        ];
        let (sql, params) = key_condition(&k, &quoted, &bound, false);
        let text = "CONVERT(? USING utf8mb4) COLLATE utf8mb4_general_ci";
        assert_eq!(
            sql,
            format!(
                "(`k0` >= ? AND (`k0` > ? OR (`k1` >= {text} AND (`k1` > {text} OR (`k2` > ?)))))"
            )
        );
        assert_eq!(
            params,
            [
                My::Int(7),
                My::Int(7),
                My::Bytes(b"x".to_vec()),
                My::Bytes(b"x".to_vec()),
                My::Date(2024, 1, 2, 0, 0, 0, 0)
            ]
        );
        let (upper, params) = key_condition(&k, &quoted, &bound, true);
        assert!(upper.starts_with("(`k0` <= ? AND (`k0` < ? OR (`k1` <= "));
        assert!(upper.ends_with("OR (`k2` <= ?)))))"));
        assert_eq!(params.len(), 5);
        // One column: the plain comparison, as before.
        let one = key(vec![T::BigInt { unsigned: true }], vec![(None, None)]);
        let (sql, params) = key_condition(&one, &quoted[..1], &[My::UInt(5)], true);
        assert_eq!(sql, "(`k0` <= ?)");
        assert_eq!(params, [My::UInt(5)]);
    }

    #[test]
    fn decimal_parameters_are_cast_to_the_column_type() {
        let k = key(
            vec![T::Decimal {
                precision: 30,
                scale: 10,
            }],
            vec![(None, None)],
        );
        assert_eq!(placeholder(&k, 0), "CAST(? AS DECIMAL(30, 10))");
        let bits = key(vec![T::Bit(16), T::Bit(1)], vec![(None, None); 2]);
        assert_eq!(
            placeholder(&bits, 0),
            "CAST(CONV(HEX(?), 16, 10) AS UNSIGNED)"
        );
        assert_eq!(
            placeholder(&bits, 1),
            "?",
            "BIT(1) is a boolean, sent as a number"
        );
        // Names that are not plain identifiers are never spliced into SQL.
        let bad = key(
            vec![T::VarChar(3)],
            vec![(Some("utf8mb4".into()), Some("x; DROP".into()))],
        );
        assert_eq!(placeholder(&bad, 0), "?");
    }

    #[test]
    fn bounds_from_the_server_convert_like_rows_read() {
        let k = key(
            vec![
                T::Int { unsigned: false },
                T::VarChar(10),
                T::Decimal {
                    precision: 30,
                    scale: 10,
                },
                T::DateTime(6),
                T::Timestamp(0),
                T::Enum(vec!["b".into(), "a".into()]),
                T::VarBinary(4),
                T::Time(0),
            ],
            vec![(None, None); 8],
        );
        let raw = vec![
            My::Bytes(b"-12".to_vec()),
            My::Bytes("Ké\t".as_bytes().to_vec()),
            My::Bytes(b"12345678901234567890.0000000001".to_vec()),
            My::Date(2024, 3, 1, 0, 0, 7, 3),
            My::Date(2024, 3, 1, 1, 2, 3, 0),
            My::Bytes(b"a".to_vec()),
            My::Bytes(vec![0, 0xff]),
            My::Time(true, 1, 2, 3, 4, 0),
        ];
        let got = key_from_raw(&k, &infos(&k), true, raw).unwrap();
        assert_eq!(
            got,
            [
                KeyPart::Int("-12".into()),
                KeyPart::Text("Ké\t".into()),
                KeyPart::Decimal("12345678901234567890.0000000001".into()),
                KeyPart::DateTime(2024, 3, 1, 0, 0, 7, 3),
                KeyPart::DateTime(2024, 3, 1, 1, 2, 3, 0),
                KeyPart::Int("2".into()),
                KeyPart::Bytes(vec![0, 0xff]),
                KeyPart::Time(-((26 * 3600 + 3 * 60 + 4) * 1_000_000)),
            ]
        );
        // And each converts back to a parameter the server compares with the column.
        assert_eq!(got[3].to_param(), My::Date(2024, 3, 1, 0, 0, 7, 3));
        assert!(key_from_raw(&k, &infos(&k), true, vec![My::Int(1)]).is_err());
        assert!(
            key_from_raw(
                &key(vec![T::Date], vec![(None, None)]),
                &infos(&key(vec![T::Date], vec![(None, None)])),
                true,
                vec![My::Bytes(b"not a date".to_vec())]
            )
            .is_err(),
            "a value of the wrong shape is an error, not a panic"
        );
    }

    #[test]
    fn leading_values_map_to_ordinals_and_back() {
        let dec = KeyPart::Decimal("-12.5".into());
        assert_eq!(ordinal(&dec, 3), Some(-12_500));
        assert_eq!(ordinal(&KeyPart::Decimal("7".into()), 2), Some(700));
        assert_eq!(ordinal(&KeyPart::Decimal("0.125".into()), 2), None);
        assert_eq!(
            ordinal_param(&dec, -12_501, 3),
            Some(My::Bytes(b"-12.501".to_vec()))
        );
        assert_eq!(
            ordinal_param(&dec, 5, 3),
            Some(My::Bytes(b"0.005".to_vec()))
        );
        assert_eq!(ordinal_param(&dec, 42, 0), Some(My::Bytes(b"42".to_vec())));
        // 30 digits: exact, where a DOUBLE would round.
        let wide = KeyPart::Decimal("12345678901234567890.0000000001".into());
        let n = ordinal(&wide, 10).unwrap();
        assert_eq!(
            ordinal_param(&wide, n + 1, 10),
            Some(My::Bytes(b"12345678901234567890.0000000002".to_vec()))
        );
        let dt = KeyPart::DateTime(2024, 2, 29, 23, 59, 59, 999_999);
        let n = ordinal(&dt, 0).unwrap();
        assert_eq!(
            ordinal_param(&dt, n + 1, 0),
            Some(My::Date(2024, 3, 1, 0, 0, 0, 0))
        );
        let date = KeyPart::Date(2024, 1, 31);
        let n = ordinal(&date, 0).unwrap();
        assert_eq!(
            ordinal_param(&date, n + 86_400_000_000, 0),
            Some(My::Date(2024, 2, 1, 0, 0, 0, 0))
        );
        assert_eq!(ordinal(&KeyPart::Time(-5), 0), Some(-5));
        assert_eq!(ordinal(&KeyPart::Text("a".into()), 0), None);
        // Before year 0 (near a zero date): no target rather than a wrapped year.
        assert_eq!(ordinal_param(&date, -63_000_000_000_000_000, 0), None);
        assert_eq!(ordinal_type(&crate::types::MySqlType::VarChar(3)), None);
    }

    fn config(pool: &str, parallelism: Option<&str>) -> Result<MySqlSourceConfig> {
        let mut options = cdc_api::Options::new("source");
        for (k, v) in [
            ("hostname", "h"),
            ("username", "u"),
            ("password", "p"),
            ("tables", "d.t"),
            ("connection.pool.size", pool),
        ] {
            options.insert(k, v);
        }
        let mut pipeline_options = cdc_api::Options::new("pipeline");
        if let Some(p) = parallelism {
            pipeline_options.insert("parallelism", p);
        }
        MySqlSourceConfig::from_context(&cdc_api::FactoryContext {
            pipeline_name: "t".into(),
            options,
            pipeline_options,
        })
    }

    #[test]
    fn readers_follow_pipeline_parallelism_within_the_pool() {
        let readers = |pool, p| reader_limit(&config(pool, p).unwrap());
        assert_eq!(readers("20", None), 4, "the default stays up to 4");
        assert_eq!(readers("2", None), 2);
        assert_eq!(readers("20", Some("8")), 8);
        assert_eq!(readers("20", Some("1")), 1);
        assert_eq!(readers("3", Some("8")), 3, "bounded by the pool");
        for bad in ["0", "-1", "four"] {
            let e = config("20", Some(bad)).unwrap_err().to_string();
            assert!(e.contains("pipeline.parallelism"), "{e}");
        }
    }

    #[test]
    fn bounds_split_the_key_span_evenly_and_never_empty() {
        assert_eq!(even_bounds(0, 100, 4), [25, 50, 75]);
        assert_eq!(even_bounds(-10, 10, 2), [0]);
        // Fewer distinct keys than ranges: no duplicate or empty ranges.
        assert_eq!(even_bounds(5, 6, 4), [5]);
        assert!(even_bounds(7, 7, 4).is_empty());
        let wide = even_bounds(i128::from(i64::MIN), i128::from(u64::MAX), 3);
        assert_eq!(wide.len(), 2);
        assert!(wide[0] < wide[1]);
    }
}
