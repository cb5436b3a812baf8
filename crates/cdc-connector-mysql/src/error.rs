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
    if let Some((message, hint)) = tls_failure(&e) {
        return Error::permanent(context, message)
            .with_hint(hint)
            .with_source(e);
    }
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
                    1045 => Some(
                        "check the source's username and password; when the account (REQUIRE SSL / X509) or the server (require_secure_transport) demands TLS, set ssl.mode (not disabled), and for X509 ssl.cert and ssl.key",
                    ),
                    1044 | 1142 | 1227 => Some(
                        "grant the source user SELECT, RELOAD, SHOW DATABASES, REPLICATION SLAVE, REPLICATION CLIENT",
                    ),
                    1049 => Some("check the database names in `tables`"),
                    // MySQL's answer under require_secure_transport=ON (MariaDB's is 1045).
                    3159 => Some(
                        "the server accepts only TLS connections: set ssl.mode to preferred, required, verify-ca or verify-identity",
                    ),
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

/// MariaDB's `ER_SLAVE_SAME_ID`. A binlog dump request with a server id kills the dump
/// thread of any other connection registered with that id (`kill_zombie_dump_threads` in
/// sql_repl.cc), and the killed thread ends its stream with this error; MariaDB 10.11 sends
/// `4052 (HY000): A slave with the same server_uuid/server_id is already connected; the
/// first event '…' at …` (seen on the wire). The number is MariaDB's own and its text can be
/// translated (`lc_messages`), so the number alone decides.
const MARIADB_SLAVE_SAME_ID: u16 = 4052;

/// Whether the server ended a binlog stream because another reader connected with the same
/// server id (or, on MySQL, the same `server_uuid`). MySQL (5.6+) kills the older dump
/// thread likewise but reports it as `1236` (`ER_MASTER_FATAL_ERROR_READING_BINLOG`, which
/// also means "position purged") with a fixed English text: "A slave with the same
/// server_uuid/server_id as this slave has connected to the master" before 8.0.26, "A
/// replica with the same server_uuid/server_id as this replica has connected to the
/// source" since (5.6 also "… the same server_uuid as this slave …"); the text tells
/// the two apart.
///
/// Only the connection that was kicked out receives this: a reader's own reconnect kills
/// its previous, already dropped connection, so a restart (also after `kill -9`) never sees
/// it.
pub(crate) fn is_same_server_id(e: &mysql_async::Error) -> bool {
    match e {
        mysql_async::Error::Server(server) => {
            server.code == MARIADB_SLAVE_SAME_ID
                || (server.code == 1236
                    && server
                        .message
                        .to_ascii_lowercase()
                        .contains("with the same server_uuid"))
        }
        _ => false,
    }
}

/// A TLS failure as a message and a hint; all are permanent: the same settings meet the same
/// certificate again.
fn tls_failure(e: &mysql_async::Error) -> Option<(String, &'static str)> {
    use rustls::CertificateError as C;
    if matches!(
        e,
        mysql_async::Error::Driver(mysql_async::DriverError::NoClientSslFlagFromServer)
    ) {
        return Some((
            "the server does not offer TLS, which ssl.mode requires".into(),
            "enable TLS on the server (ssl_cert, ssl_key and ssl_ca in its configuration), or set ssl.mode: preferred (TLS when offered) or disabled",
        ));
    }
    if let mysql_async::Error::Io(mysql_async::IoError::Tls(t)) = e {
        match t {
            // A failed handshake: below.
            mysql_async::TlsError::Tls(_) => {}
            mysql_async::TlsError::InvalidDnsName(_) => {
                return Some((
                    format!("TLS: {t}"),
                    "the host name is not a valid TLS server name: set ssl.server-name to one the certificate holds",
                ));
            }
            _ => return Some((format!("TLS settings: {t}"), "check the ssl.* options")),
        }
    }
    let t = crate::tls::rustls_error(e)?;
    Some(match t {
        rustls::Error::InvalidCertificate(
            C::NotValidForName | C::NotValidForNameContext { .. },
        ) => (
            format!("the server's TLS certificate is not for this host: {t}"),
            "connect with a host name the certificate holds (hostname, or ssl.server-name), or use ssl.mode: verify-ca to check only the CA",
        ),
        rustls::Error::InvalidCertificate(
            C::Expired | C::ExpiredContext { .. } | C::NotValidYet | C::NotValidYetContext { .. },
        ) => (
            format!("the server's TLS certificate is out of its validity period: {t}"),
            "renew the server's certificate (or check the clocks)",
        ),
        rustls::Error::InvalidCertificate(_) => (
            format!("the server's TLS certificate is not trusted: {t}"),
            "set ssl.ca to the PEM file of the CA that signed the server's certificate",
        ),
        rustls::Error::AlertReceived(_) => (
            format!("the server refused the TLS handshake: {t}"),
            "if the server checks client certificates, set ssl.cert and ssl.key to a certificate signed by a CA in its ssl_ca",
        ),
        _ => (
            format!("the TLS handshake failed: {t}"),
            "the server must offer TLS 1.2 or 1.3; ssl.mode: disabled connects in plaintext",
        ),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn server(code: u16, message: &str) -> mysql_async::Error {
        mysql_async::Error::Server(mysql_async::ServerError {
            code,
            message: message.into(),
            state: "HY000".into(),
        })
    }

    #[test]
    fn another_reader_with_the_same_server_id_is_recognised() {
        for (code, text) in [
            // MariaDB 10.11, as received by a kicked reader (tests/faults.rs).
            (
                4052,
                "A slave with the same server_uuid/server_id is already connected; the first event 'binlog.000001' at 4, the last event read from 'binlog.000001' at 767, the last byte read from 'binlog.000001' at 798.",
            ),
            // MariaDB with translated messages: the number decides.
            (
                4052,
                "Ein Slave mit derselben server_id ist bereits verbunden",
            ),
            // MySQL 5.6 - 8.0.25 and 8.0.26+.
            (
                1236,
                "A slave with the same server_uuid/server_id as this slave has connected to the master; the first event 'binlog.000017' at 4, the last event read from './binlog.000017' at 96475, the last byte read from './binlog.000017' at 96475.",
            ),
            (
                1236,
                "A replica with the same server_uuid/server_id as this replica has connected to the source; the first event 'binlog.000017' at 4",
            ),
            (
                1236,
                "A slave with the same server_uuid as this slave has connected to the master",
            ),
        ] {
            assert!(is_same_server_id(&server(code, text)), "{code}: {text}");
        }
        for e in [
            server(
                1236,
                "Could not find first log file name in binary log index file",
            ),
            server(1927, "Connection was killed"),
            server(2013, "Lost connection to server during query"),
            mysql_async::Error::Driver(mysql_async::DriverError::ConnectionClosed),
        ] {
            assert!(!is_same_server_id(&e), "{e}");
        }
    }
}
