//! Re-reading a table while the pipeline streams, on request: Debezium's signalling table.
//!
//! With `debezium.signal.data.collection: db.cdc_signal`, a row inserted into that table
//!
//! ```sql
//! INSERT INTO db.cdc_signal (id, type, data)
//! VALUES ('resnap-1', 'execute-snapshot', '{"data-collections": ["shop.orders"]}');
//! ```
//!
//! makes the binlog reader, once the inserting transaction has committed, read the named
//! captured tables again at the current position while every other table keeps its place
//! in the binlog: the same copy a table gets when it enters the capture by RENAME. Its
//! rows reach the target as upserts, and the binlog then skips, per row, every change the
//! copy already holds, so each change is applied once. The request is part of the offset
//! from the moment its transaction commits (the table is pending until its copy is done),
//! so a restart in the middle reads the table again. The signal table itself is never
//! captured, and only inserts are read from it (Debezium's behaviour).

use cdc_api::Value;

use crate::source::TableKey;

/// The columns Debezium's signalling table has (`id`, `type`, `data`).
pub(crate) const SIGNAL_TABLE_DDL: &str =
    "(id VARCHAR(42) PRIMARY KEY, type VARCHAR(32) NOT NULL, data VARCHAR(2048) NULL)";

/// What one signal row asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Signal {
    /// `execute-snapshot`: read these `db.table` names (or regexes) again.
    Snapshot(Vec<String>),
    /// A signal type this source does not act on (logged).
    Other(String),
}

/// Reads one inserted row, given the positions of its `type` and `data` columns.
pub(crate) fn parse(row: &[Value], type_at: usize, data_at: usize) -> Result<Signal, String> {
    let text = |i: usize| match row.get(i) {
        Some(Value::String(s)) => Some(s.as_str()),
        _ => None,
    };
    let kind = text(type_at).ok_or("the signal row has no type")?;
    if !kind.eq_ignore_ascii_case("execute-snapshot") {
        return Ok(Signal::Other(kind.to_string()));
    }
    let data = text(data_at).ok_or("execute-snapshot needs data with data-collections")?;
    let json: serde_json::Value =
        serde_json::from_str(data).map_err(|e| format!("its data is not JSON: {e}"))?;
    let collections = json
        .get("data-collections")
        .and_then(serde_json::Value::as_array)
        .ok_or("its data has no data-collections list")?;
    let names: Vec<String> = collections
        .iter()
        .filter_map(|c| c.as_str().map(str::trim).map(str::to_string))
        .filter(|c| !c.is_empty())
        .collect();
    if names.is_empty() {
        return Err("its data-collections list is empty".into());
    }
    Ok(Signal::Snapshot(names))
}

/// The captured tables a data-collection names: the table of that exact `db.table`, or
/// else every captured table whose `db.table` the name matches as a whole regex.
pub(crate) fn resolve<'a>(
    name: &str,
    captured: impl Iterator<Item = &'a TableKey> + Clone,
) -> Result<Vec<TableKey>, String> {
    if let Some(key) = captured
        .clone()
        .find(|(db, table)| format!("{db}.{table}") == name)
    {
        return Ok(vec![key.clone()]);
    }
    let re = regex::Regex::new(&format!("^(?:{name})$"))
        .map_err(|e| format!("'{name}' is neither a captured table nor a regex: {e}"))?;
    let mut out: Vec<TableKey> = captured
        .filter(|(db, table)| re.is_match(&format!("{db}.{table}")))
        .cloned()
        .collect();
    out.sort();
    Ok(out)
}

/// Asks a running pipeline to read `tables` again: writes an `execute-snapshot` row into
/// the signalling table the source's options name (what `cdc snapshot` does). Each name
/// must be a captured table. Returns the signal's id.
pub async fn request_reread(
    ctx: &cdc_api::FactoryContext,
    tables: &[String],
) -> cdc_api::Result<String> {
    use mysql_async::prelude::Queryable;
    let config = crate::MySqlSourceConfig::from_context(ctx)?;
    let Some((db, table)) = config.passthrough.signal_table.clone() else {
        return Err(cdc_api::Error::invalid_option(
            ctx.options.qualified("debezium.signal.data.collection"),
            format!(
                "is not set: name a signalling table (created with CREATE TABLE db.cdc_signal {SIGNAL_TABLE_DDL}) so that a running pipeline can be asked to read tables again"
            ),
        ));
    };
    let filter = config.filter.clone();
    let source = crate::MySqlSource::new(config);
    let (mut conn, _, _) = source.first_connection().await?;
    let context = format!("writing the signal into {db}.{table}");
    let err = |e| crate::error::from_mysql(&context, e);
    let captured = crate::schema::list_tables(&mut conn, &filter).await?;
    for name in tables {
        let keys = resolve(name, captured.iter())
            .map_err(|m| cdc_api::Error::invalid_option("--table", m))?;
        if keys.is_empty() {
            return Err(cdc_api::Error::invalid_option(
                "--table",
                format!("'{name}' names no table the pipeline captures"),
            ));
        }
    }
    let id = format!(
        "cdc-{}",
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis())
    );
    let data = serde_json::json!({ "data-collections": tables, "type": "incremental" }).to_string();
    conn.exec_drop(
        format!(
            "INSERT INTO `{}`.`{}` (id, type, data) VALUES (?, 'execute-snapshot', ?)",
            db.replace('`', "``"),
            table.replace('`', "``")
        ),
        (&id, &data),
    )
    .await
    .map_err(err)?;
    let _ = conn.disconnect().await;
    Ok(id)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(kind: &str, data: Option<&str>) -> Vec<Value> {
        vec![
            Value::String("1".into()),
            Value::String(kind.into()),
            data.map_or(Value::Null, |d| Value::String(d.into())),
        ]
    }

    #[test]
    fn execute_snapshot_rows_parse_as_debezium_writes_them() {
        assert_eq!(
            parse(
                &row(
                    "execute-snapshot",
                    Some(
                        r#"{"data-collections": ["shop.orders", " shop.items "], "type": "incremental"}"#
                    )
                ),
                1,
                2
            ),
            Ok(Signal::Snapshot(vec![
                "shop.orders".into(),
                "shop.items".into()
            ]))
        );
        assert_eq!(
            parse(&row("log", Some("{}")), 1, 2),
            Ok(Signal::Other("log".into()))
        );
        for (data, why) in [
            (None, "needs data"),
            (Some("nope"), "not JSON"),
            (Some("{}"), "no data-collections"),
            (Some(r#"{"data-collections": []}"#), "empty"),
        ] {
            let e = parse(&row("execute-snapshot", data), 1, 2).unwrap_err();
            assert!(e.contains(why), "{data:?}: {e}");
        }
    }

    #[test]
    fn names_resolve_exactly_or_as_regexes() {
        let captured: Vec<TableKey> = vec![
            ("shop".into(), "orders".into()),
            ("shop".into(), "orders_2024".into()),
            ("crm".into(), "users".into()),
        ];
        assert_eq!(
            resolve("shop.orders", captured.iter()).unwrap(),
            vec![("shop".to_string(), "orders".to_string())]
        );
        assert_eq!(
            resolve("shop\\.orders.*", captured.iter()).unwrap().len(),
            2
        );
        assert!(resolve("nothing.here", captured.iter()).unwrap().is_empty());
        assert!(resolve("bad(", captured.iter()).is_err());
    }
}
