//! Turning driver errors into cdc-api errors: transient (network, server gone, lock wait)
//! or permanent (access denied, unknown database, purged binlog), each with a hint.

use cdc_api::Error;

/// MySQL server error codes that mean "try again later".
const TRANSIENT_CODES: [u16; 8] = [
    1040, // too many connections
    1053, // server shutdown in progress
    1205, // lock wait timeout
    1213, // deadlock
    2002, // can't connect
    2003, // can't connect to server
    2006, // server has gone away
    2013, // lost connection
];

pub(crate) fn from_mysql(context: &str, e: mysql_async::Error) -> Error {
    match &e {
        mysql_async::Error::Server(server) => {
            let message = format!(
                "server error {} ({}): {}",
                server.code, server.state, server.message
            );
            if TRANSIENT_CODES.contains(&server.code) {
                Error::transient(context, message).with_source(e)
            } else {
                let hint = match server.code {
                    1045 => Some("check the source's username and password"),
                    1044 | 1142 | 1227 => Some(
                        "grant the source user SELECT, RELOAD, SHOW DATABASES, REPLICATION SLAVE, REPLICATION CLIENT",
                    ),
                    1049 => Some("check the database names in `tables`"),
                    1236 => Some(
                        "the binlog position is no longer on the server (purged?); restart with a fresh state directory to take a new snapshot, and keep binlogs longer (expire_logs_days / binlog_expire_logs_seconds)",
                    ),
                    _ => None,
                };
                let err = Error::permanent(context, message).with_source(e);
                match hint {
                    Some(h) => err.with_hint(h),
                    None => err,
                }
            }
        }
        mysql_async::Error::Io(_) | mysql_async::Error::Driver(_) => {
            Error::transient(context, e.to_string()).with_source(e)
        }
        _ => Error::permanent(context, e.to_string()).with_source(e),
    }
}
