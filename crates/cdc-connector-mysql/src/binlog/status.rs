//! The server's current binlog position. MySQL 8.2 added `SHOW BINARY LOG STATUS` and 8.4
//! removed `SHOW MASTER STATUS`; MariaDB keeps `SHOW MASTER STATUS` (it has no `SHOW
//! BINARY LOG STATUS`). The statement is chosen by the server's version, and a syntax
//! error (1064) tries the other one, for servers whose version text misleads.

use cdc_api::{Error, Result};
use mysql_async::prelude::Queryable;

use super::position::BinlogPosition;
use crate::error::from_mysql;

pub(crate) const BINARY_LOG_STATUS: &str = "SHOW BINARY LOG STATUS";
pub(crate) const MASTER_STATUS: &str = "SHOW MASTER STATUS";

/// MySQL's syntax error.
const PARSE_ERROR: u16 = 1064;

/// Whether `VERSION()` text is a MariaDB server's.
pub(crate) fn is_mariadb_version(version: &str) -> bool {
    version.to_ascii_lowercase().contains("mariadb")
}

/// Whether the server is MariaDB (else MySQL).
pub(crate) async fn is_mariadb(conn: &mut mysql_async::Conn) -> Result<bool> {
    let version: Option<String> = conn
        .query_first("SELECT VERSION()")
        .await
        .map_err(|e| from_mysql("reading the server version", e))?;
    Ok(version.as_deref().is_some_and(is_mariadb_version))
}

/// The statement that shows the binlog position on a server whose `VERSION()` is `version`.
pub(crate) fn status_statement(version: &str) -> &'static str {
    if is_mariadb_version(version) {
        return MASTER_STATUS;
    }
    let mut numbers = version
        .split(|c: char| !c.is_ascii_digit())
        .map(|n| n.parse::<u32>().ok());
    match (numbers.next().flatten(), numbers.next().flatten()) {
        (Some(major), Some(minor)) if (major, minor) >= (8, 2) => BINARY_LOG_STATUS,
        _ => MASTER_STATUS,
    }
}

/// The current binlog file and position (`context` names the caller in errors).
pub(crate) async fn current_position(
    conn: &mut mysql_async::Conn,
    context: &str,
) -> Result<BinlogPosition> {
    let version: Option<String> = conn
        .query_first("SELECT VERSION()")
        .await
        .map_err(|e| from_mysql(context, e))?;
    let first = status_statement(version.as_deref().unwrap_or_default());
    let row: Option<mysql_async::Row> = match conn.query_first(first).await {
        Ok(row) => row,
        Err(mysql_async::Error::Server(e)) if e.code == PARSE_ERROR => {
            let other = if first == MASTER_STATUS {
                BINARY_LOG_STATUS
            } else {
                MASTER_STATUS
            };
            conn.query_first(other)
                .await
                .map_err(|e| from_mysql(context, e))?
        }
        Err(e) => return Err(from_mysql(context, e)),
    };
    let row = row.ok_or_else(|| {
        Error::permanent(context, format!("{first} is empty: the binary log is off"))
            .with_hint("enable log_bin")
    })?;
    match (row.get::<String, _>(0), row.get::<u64, _>(1)) {
        (Some(f), Some(p)) => Ok(BinlogPosition::new(f, p)),
        _ => Err(Error::permanent(
            context,
            format!("{first} did not show a file and a position"),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statement_follows_the_server_version() {
        for v in [
            "8.2.0",
            "8.4.3",
            "8.4.0-commercial",
            "9.1.0",
            "9.6.0-log",
            "10.0.1",
            "8.4.2-2",
        ] {
            assert_eq!(status_statement(v), BINARY_LOG_STATUS, "{v}");
        }
        for v in [
            "5.7.44-log",
            "8.0.36-0ubuntu0.22.04.1",
            "8.1.0",
            "10.11.6-MariaDB",
            "11.4.2-MariaDB-log",
            "5.5.5-10.6.12-MariaDB",
            "",
            "unknown",
        ] {
            assert_eq!(status_statement(v), MASTER_STATUS, "{v}");
        }
    }
}
