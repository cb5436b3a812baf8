//! The initial snapshot, without global locks and without backfill.
//!
//! Each table is read inside its own `START TRANSACTION WITH CONSISTENT SNAPSHOT`. MariaDB
//! reports the exact binlog position of that snapshot (`binlog_snapshot_file` /
//! `binlog_snapshot_position`), so the rows read are precisely the table's state at that
//! position: a binlog transaction that starts before it is already in the rows, one that
//! starts at or after it is not. The binlog reader later skips, per table, every
//! transaction before the table's position, which gives each change exactly once with
//! no low/high watermark reconciliation. Tables are read in parallel on separate
//! connections; inside a table rows are paged by key (`scan.incremental.snapshot.chunk.size`
//! rows per query) and handed on in batches of `scan.snapshot.fetch.size`, so memory does
//! not grow with the table. A table without a primary key or chunk key is read in one
//! streamed pass (logged as a warning: it cannot be split).
//!
//! MySQL has no such status variables; there the position is taken under a brief
//! `FLUSH TABLES t WITH READ LOCK` held only while the transaction starts.

use std::sync::Arc;

use cdc_api::{DataChangeEvent, Error, Event, Result, TableId};
use mysql_async::prelude::Queryable;
use mysql_async::{Params, Row, Value as My};
use tokio::sync::mpsc;

use crate::MySqlSourceConfig;
use crate::binlog::position::BinlogPosition;
use crate::error::from_mysql;
use crate::schema::TableMeta;
use crate::snapshot_value::convert;
use crate::source::Batch;

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
    let status: Vec<(String, String)> = conn
        .query("SHOW STATUS LIKE 'binlog_snapshot_%'")
        .await
        .map_err(err)?;
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
    // MySQL: no snapshot position; hold the table still while the snapshot starts.
    conn.query_drop("ROLLBACK").await.map_err(err)?;
    let table = format!("{}.{}", quote(&meta.db), quote(&meta.table));
    conn.query_drop(format!("FLUSH TABLES {table} WITH READ LOCK"))
        .await
        .map_err(err)?;
    let started = async {
        conn.query_drop("START TRANSACTION WITH CONSISTENT SNAPSHOT, READ ONLY")
            .await?;
        let row: Option<Row> = conn.query_first("SHOW MASTER STATUS").await?;
        Ok::<_, mysql_async::Error>(row)
    }
    .await;
    let unlock = conn.query_drop("UNLOCK TABLES").await;
    let row = started.map_err(err)?;
    unlock.map_err(err)?;
    let row = row.ok_or_else(|| {
        Error::permanent(context, "SHOW MASTER STATUS returned nothing")
            .with_hint("enable the binary log (log_bin)")
    })?;
    let file: Option<String> = row.get(0);
    let pos: Option<u64> = row.get(1);
    match (file, pos) {
        (Some(f), Some(p)) => Ok(BinlogPosition::new(f, p)),
        _ => Err(Error::permanent(context, "cannot read the binlog position")),
    }
}

/// Reads one table and sends its rows; the last batch marks the table done at its
/// snapshot position.
pub(crate) async fn snapshot_table(
    pool: mysql_async::Pool,
    meta: TableMeta,
    config: Arc<MySqlSourceConfig>,
    tx: mpsc::Sender<Result<Batch>>,
) -> Result<BinlogPosition> {
    let context = format!("snapshot of {}.{}", meta.db, meta.table);
    let err = |e| from_mysql(&context, e);
    let mut conn = pool.get_conn().await.map_err(err)?;
    let position = begin_snapshot(&mut conn, &meta, &context).await?;
    let table_id = TableId::new(&meta.db, &meta.table);
    let infos = crate::binlog::reader::column_infos(&meta);
    let columns: Vec<String> = meta.columns.iter().map(|c| quote(&c.name)).collect();
    let from = format!("{}.{}", quote(&meta.db), quote(&meta.table));
    let key: Vec<String> = match config.chunk_key_for(&meta.db, &meta.table) {
        Some(k) => vec![k.to_string()],
        None => meta.primary_key.clone(),
    };
    let key_idx: Vec<usize> = key
        .iter()
        .map(|k| {
            meta.columns
                .iter()
                .position(|c| c.name.eq_ignore_ascii_case(k))
                .ok_or_else(|| {
                    Error::invalid_option(
                        "source.scan.incremental.snapshot.chunk.key-column",
                        format!("{table_id} has no column `{k}`"),
                    )
                })
        })
        .collect::<Result<_>>()?;
    if key.is_empty() {
        tracing::warn!(table = %table_id, "no primary key and no chunk key: reading the table in one pass (set scan.incremental.snapshot.chunk.key-column to split it)");
    }
    let order = key.iter().map(|k| quote(k)).collect::<Vec<_>>().join(", ");
    let tiny = config.tinyint1_as_boolean;
    let mut batch: Vec<Event> = Vec::with_capacity(config.fetch_size);
    let mut last_key: Option<Vec<My>> = None;
    let mut total = 0u64;
    loop {
        let (sql, params) = if key.is_empty() {
            (
                format!("SELECT {} FROM {from}", columns.join(", ")),
                Params::Empty,
            )
        } else {
            let filter = match &last_key {
                None => String::new(),
                Some(_) => format!(" WHERE ({order}) > ({})", vec!["?"; key.len()].join(", ")),
            };
            (
                format!(
                    "SELECT {} FROM {from}{filter} ORDER BY {order} LIMIT {}",
                    columns.join(", "),
                    config.chunk_size
                ),
                last_key.clone().map_or(Params::Empty, Params::Positional),
            )
        };
        let mut result = conn.exec_iter(sql, params).await.map_err(err)?;
        let mut rows_in_chunk = 0u64;
        let mut stream = result.stream::<Row>().await.map_err(err)?;
        if let Some(stream) = stream.as_mut() {
            use futures::StreamExt;
            while let Some(row) = stream.next().await {
                let row = row.map_err(err)?;
                let raw = row.unwrap();
                if !key.is_empty() {
                    last_key = Some(key_idx.iter().map(|&i| raw[i].clone()).collect());
                }
                let mut values = Vec::with_capacity(raw.len());
                for (v, (info, column)) in raw.into_iter().zip(infos.iter().zip(&meta.columns)) {
                    values.push(convert(&info.mysql_type, &info.charset, tiny, v).map_err(
                        |m| Error::permanent(&context, format!("column `{}`: {m}", column.name)),
                    )?);
                }
                let mut event = DataChangeEvent::insert(table_id.clone(), values);
                if config.op_ts {
                    event = event.with_meta("op_ts", "0");
                }
                batch.push(Event::DataChange(event));
                rows_in_chunk += 1;
                if batch.len() >= config.fetch_size {
                    let events =
                        std::mem::replace(&mut batch, Vec::with_capacity(config.fetch_size));
                    if tx.send(Ok(Batch::rows(events))).await.is_err() {
                        return Ok(position);
                    }
                }
            }
        }
        drop(stream);
        drop(result);
        total += rows_in_chunk;
        if key.is_empty() || rows_in_chunk < config.chunk_size {
            break;
        }
    }
    conn.query_drop("COMMIT").await.map_err(err)?;
    tracing::info!(table = %table_id, rows = total, position = %position, "snapshot of table done");
    let mut done = Batch::rows(batch);
    done.snapshot_done
        .push(((meta.db.clone(), meta.table.clone()), position.clone()));
    let _ = tx.send(Ok(done)).await;
    Ok(position)
}
