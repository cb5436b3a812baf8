//! Reading the target: Doris through the FE's HTTP SQL API, as the sink's DDL reaches it;
//! StarRocks over the MySQL protocol to `jdbc-url`.

use anyhow::{anyhow, bail};
use cdc_api::FactoryContext;
use mysql_async::prelude::Queryable;
use serde_json::Value as Json;

use super::{
    Col, KeyValue, Plan, REQUEST_TIMEOUT, order_by, quote_name, range_where, with_timeout,
};

pub(super) enum Target {
    Doris(cdc_connector_doris::DorisSqlClient),
    StarRocks(mysql_async::Conn),
}

/// A target error naming the table, with a plainer word for a table that is not there.
fn table_error(db: &str, table: &str, message: &str) -> anyhow::Error {
    let lower = message.to_ascii_lowercase();
    if lower.contains("unknown table")
        || lower.contains("unknown database")
        || lower.contains("does not exist")
        || lower.contains("doesn't exist")
    {
        anyhow!("the target table {db}.{table} does not exist ({message})")
    } else {
        anyhow!("reading the target table {db}.{table}: {message}")
    }
}

/// The rows of a Doris SQL API answer, every value as text.
///
/// The answer's shape is Doris's `StmtExecutionAction` / `StatementSubmitter`
/// (fe/fe-core/src/main/java/org/apache/doris/httpv2/util/StatementSubmitter.java,
/// `generateResultSet`): `{"code": 0, "msg": "success", "data": {"type": "result_set",
/// "meta": [{"name", "type"}], "data": [[...], ...], "time": ms}}`, each value
/// `rs.getObject(i)` (JSON numbers for numeric columns) except DATE / DATETIME
/// (`rs.getString(i)`), at most the request's `limit` rows (default 1000, see
/// StmtExecutionAction's DEFAULT_ROW_LIMIT). The verify asks for `CAST(col AS STRING)`,
/// so values arrive as strings and a DECIMAL is never rounded through a double.
fn doris_rows(body: &[u8]) -> Result<Vec<Vec<Option<String>>>, String> {
    let doc: Json = serde_json::from_slice(body).map_err(|_| {
        format!(
            "malformed answer: {}",
            String::from_utf8_lossy(body)
                .chars()
                .take(300)
                .collect::<String>()
        )
    })?;
    let code = doc.get("code").and_then(Json::as_i64).unwrap_or(-1);
    if code != 0 {
        let msg = match doc.get("data") {
            Some(Json::String(s)) if !s.is_empty() => s.clone(),
            _ => doc
                .get("msg")
                .and_then(Json::as_str)
                .unwrap_or("no message")
                .to_string(),
        };
        return Err(msg);
    }
    let data = doc.get("data").cloned().unwrap_or(Json::Null);
    if data.get("type").and_then(Json::as_str) != Some("result_set") {
        return Err("the answer is not a result set".into());
    }
    let Some(rows) = data.get("data").and_then(Json::as_array) else {
        return Ok(Vec::new());
    };
    rows.iter()
        .map(|row| {
            let Some(cells) = row.as_array() else {
                return Err("a row of the answer is not an array".to_string());
            };
            Ok(cells
                .iter()
                .map(|v| match v {
                    Json::Null => None,
                    Json::String(s) => Some(s.clone()),
                    Json::Bool(b) => Some(if *b { "1" } else { "0" }.to_string()),
                    other => Some(other.to_string()),
                })
                .collect())
        })
        .collect()
}

impl Target {
    pub(super) async fn open(kind: &str, ctx: &FactoryContext) -> anyhow::Result<Self> {
        match kind {
            "doris" => Ok(Self::Doris(
                cdc_connector_doris::DorisSqlClient::from_context(ctx)?,
            )),
            "starrocks" => {
                let (opts, connect_timeout) = cdc_connector_starrocks::mysql_opts(ctx)?;
                let conn = match tokio::time::timeout(connect_timeout, mysql_async::Conn::new(opts))
                    .await
                {
                    Ok(Ok(c)) => c,
                    Ok(Err(e)) => bail!("connecting to the StarRocks FE (jdbc-url): {e}"),
                    Err(_) => bail!(
                        "connecting to the StarRocks FE (jdbc-url): no answer within {connect_timeout:?}"
                    ),
                };
                Ok(Self::StarRocks(conn))
            }
            other => bail!(
                "cdc verify reads doris or starrocks targets; this pipeline's sink is {other}"
            ),
        }
    }

    async fn doris_query(
        client: &cdc_connector_doris::DorisSqlClient,
        db: &str,
        table: &str,
        sql: &str,
        limit: usize,
    ) -> anyhow::Result<Vec<Vec<Option<String>>>> {
        let what = format!("reading the target table {db}.{table}");
        let (status, body) =
            with_timeout(&what, client.query(db, sql, limit, REQUEST_TIMEOUT)).await?;
        if status != 200 {
            bail!(
                "{what}: HTTP {status}: {}",
                String::from_utf8_lossy(&body)
                    .chars()
                    .take(300)
                    .collect::<String>()
            );
        }
        doris_rows(&body).map_err(|m| table_error(db, table, &m))
    }

    async fn mysql_query(
        conn: &mut mysql_async::Conn,
        db: &str,
        table: &str,
        sql: String,
    ) -> anyhow::Result<Vec<Vec<Option<String>>>> {
        let rows: Vec<mysql_async::Row> =
            match tokio::time::timeout(REQUEST_TIMEOUT, conn.query(sql)).await {
                Ok(Ok(r)) => r,
                Ok(Err(e)) => return Err(table_error(db, table, &e.to_string())),
                Err(_) => bail!(
                    "reading the target table {db}.{table}: no answer within {REQUEST_TIMEOUT:?}"
                ),
            };
        Ok(rows
            .into_iter()
            .map(|row| {
                row.unwrap()
                    .into_iter()
                    .map(|v| match v {
                        mysql_async::Value::NULL => None,
                        mysql_async::Value::Bytes(b) => {
                            Some(String::from_utf8_lossy(&b).into_owned())
                        }
                        other => Some(other.as_sql(true)),
                    })
                    .collect()
            })
            .collect())
    }

    /// The target table's column names (`DESC`); an error naming it when it is missing.
    pub(super) async fn columns(&mut self, db: &str, table: &str) -> anyhow::Result<Vec<String>> {
        let sql = format!("DESC {}.{}", quote_name(db), quote_name(table));
        let rows = match self {
            Self::Doris(client) => {
                Self::doris_query(client, db, table, &sql, super::PAGE_ROWS).await?
            }
            Self::StarRocks(conn) => Self::mysql_query(conn, db, table, sql).await?,
        };
        let names: Vec<String> = rows
            .into_iter()
            .filter_map(|r| r.into_iter().next().flatten())
            .collect();
        if names.is_empty() {
            bail!("the target table {db}.{table} does not exist (DESC lists no columns)");
        }
        Ok(names)
    }

    /// The target rows of the key range `(lower, upper]`, in key order, at most `limit`.
    pub(super) async fn read(
        &mut self,
        plan: &Plan<'_>,
        keys: &[Col],
        lower: Option<&[KeyValue]>,
        upper: Option<&[KeyValue]>,
        limit: usize,
    ) -> anyhow::Result<Vec<Vec<Option<String>>>> {
        let (db, table) = (plan.target_db, plan.target_table);
        let cast = matches!(self, Self::Doris(_));
        let sql = format!(
            "SELECT {} FROM {}.{}{}{} LIMIT {limit}",
            plan.select_list(cast),
            quote_name(db),
            quote_name(table),
            range_where(keys, lower, upper, true),
            order_by(keys),
        );
        match self {
            Self::Doris(client) => Self::doris_query(client, db, table, &sql, limit).await,
            Self::StarRocks(conn) => Self::mysql_query(conn, db, table, sql).await,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doris_answers_are_read_as_text() {
        let body = br#"{"msg":"success","code":0,"data":{"type":"result_set","data":[[1,"a",null,true]],"meta":[],"status":{},"time":3},"count":0}"#;
        assert_eq!(
            doris_rows(body).unwrap(),
            vec![vec![
                Some("1".into()),
                Some("a".into()),
                None,
                Some("1".into())
            ]]
        );
        let err = br#"{"msg":"errCode = 2, detailMessage = Unknown table 't'","code":1,"data":null,"count":0}"#;
        assert!(doris_rows(err).unwrap_err().contains("Unknown table"));
    }
}
