//! The initial snapshot, without global locks and without backfill.
//!
//! Each table is read inside its own `START TRANSACTION WITH CONSISTENT SNAPSHOT`. MariaDB
//! reports the exact binlog position of that snapshot (`binlog_snapshot_file` /
//! `binlog_snapshot_position`), so the rows read are precisely the table's state at that
//! position: a binlog transaction that starts before it is already in the rows, one that
//! starts at or after it is not. The binlog reader later skips, per table, every
//! transaction before the table's position, which gives each change exactly once with
//! no low/high watermark reconciliation. Tables are read in parallel on separate
//! connections, and so is a big table with a single integer key: it is split evenly
//! between its smallest and largest key into up to `min(connection.pool.size, 4)` ranges,
//! each read under a consistent snapshot of its own at its own position (the binlog
//! reader then decides per row by the range holding its key). Inside a range rows are
//! paged by key (`scan.incremental.snapshot.chunk.size` rows per query) and handed on in
//! batches of `scan.snapshot.fetch.size`, so memory does not grow with the table. A table
//! without a primary key or chunk key is read in one streamed pass (logged as a warning:
//! it cannot be split).
//!
//! MySQL has no such status variables; there the position is taken while a second
//! connection holds `FLUSH TABLES t WITH READ LOCK`, only while the transaction starts and
//! the position is read. The lock lives on its own connection because starting a
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

/// How many key ranges are read at once, over all tables.
pub(crate) fn readers(config: &MySqlSourceConfig) -> usize {
    config.pool_size.clamp(1, 4)
}

/// How to read one table: where a resumed read continues, and what was read before.
pub(crate) struct TableRead {
    pub(crate) meta: TableMeta,
    /// Segments read by earlier runs (empty for a fresh table).
    pub(crate) prior: TableSegments,
}

/// Reads one table (the rest of it when resuming) and sends its rows, then a batch that
/// marks the table done. A big table with a single integer key is split into key ranges
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
            split_bounds(&mut conn, &meta, &key, &config, readers(&config)).await?
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

/// Where to split a table for parallel reads: evenly between the smallest and largest
/// key, when the key is one integer column, unique, and the server estimates at least two
/// chunks of rows. Empty: read the table in one range.
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
    let integer = matches!(
        key.types.as_slice(),
        [T::TinyInt { .. }
            | T::SmallInt { .. }
            | T::MediumInt { .. }
            | T::Int { .. }
            | T::BigInt { .. }]
    );
    if !integer || !key_is_unique(meta, key) || readers < 2 {
        return Ok(Vec::new());
    }
    let estimate: Option<u64> = conn
        .exec_first(
            "SELECT TABLE_ROWS FROM information_schema.TABLES WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ?",
            (&meta.db, &meta.table),
        )
        .await
        .map_err(err)?;
    let chunks = estimate.unwrap_or(0) / config.chunk_size.max(1);
    let ranges = usize::try_from(chunks).unwrap_or(usize::MAX).min(readers);
    if ranges < 2 {
        return Ok(Vec::new());
    }
    let k = quote(&key.names[0]);
    let from = format!("{}.{}", quote(&meta.db), quote(&meta.table));
    let row: Option<(My, My)> = conn
        .query_first(format!("SELECT MIN({k}), MAX({k}) FROM {from}"))
        .await
        .map_err(err)?;
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
    let placeholders = vec!["?"; key.names.len()].join(", ");
    let tiny = config.tinyint1_as_boolean;
    let fetch = config.fetch_size;
    let table_key = (meta.db.clone(), meta.table.clone());

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
                    (format!(" AND ({order}) > ({placeholders})"), k.clone())
                }
                _ => (String::new(), Vec::new()),
            };
            // The end of this read's key range.
            if let Some(until) = &until {
                lower.push_str(&format!(" AND ({order}) <= ({placeholders})"));
                params.extend(until.iter().map(KeyPart::to_param));
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
    use super::even_bounds;

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
