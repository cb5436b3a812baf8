//! HTTP pieces both sinks need the same way: following an FE's redirect (credentials out
//! of the Location, never downgrading https), the TLS setup, and error texts that show the
//! cause but never a credential.

use percent_encoding::percent_decode_str;
use reqwest::StatusCode;
use url::Url;

/// Moves `user:pass@` out of `url` into `user` / `password`.
pub fn take_credentials(url: &mut Url, user: &mut String, password: &mut String) {
    if !url.username().is_empty() || url.password().is_some() {
        *user = percent_decode_str(url.username())
            .decode_utf8_lossy()
            .into_owned();
        *password = percent_decode_str(url.password().unwrap_or(""))
            .decode_utf8_lossy()
            .into_owned();
        let _ = url.set_username("");
        let _ = url.set_password(None);
    }
}

/// The next URL of a redirect: `location` resolved against `from`, its credentials moved
/// into `user` / `password`, and `https` kept when the chain started over TLS. Errors
/// never contain the Location (it carries the password).
pub fn follow(
    from: &Url,
    location: &str,
    tls: bool,
    user: &mut String,
    password: &mut String,
) -> Result<Url, String> {
    let mut next = from.join(location).map_err(|e| {
        format!("HTTP redirect from {from} with an unusable Location ({e}; Location not shown, it may carry credentials)")
    })?;
    take_credentials(&mut next, user, password);
    match next.scheme() {
        "https" => {}
        "http" if tls => {
            // never downgrade: the credentials travel with the request
            next.set_scheme("https")
                .map_err(|()| format!("HTTP redirect from {from}: cannot keep https"))?;
        }
        "http" => {}
        other => {
            return Err(format!(
                "HTTP redirect from {from} to an unsupported scheme '{other}'"
            ));
        }
    }
    Ok(next)
}

/// Makes `ring` the process's rustls provider unless one is installed already (reqwest is
/// built without a provider of its own, so nothing needs a C toolchain beyond ring's).
pub fn install_crypto_provider() {
    if rustls::crypto::CryptoProvider::get_default().is_none() {
        let _ = rustls::crypto::ring::default_provider().install_default();
    }
}

/// Reads the PEM certificates of `path` (`sink.ssl.ca-path`).
pub fn read_ca(path: &std::path::Path) -> Result<Vec<reqwest::Certificate>, String> {
    let pem = std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let certs = reqwest::Certificate::from_pem_bundle(&pem)
        .map_err(|e| format!("{} is not a PEM certificate file: {e}", path.display()))?;
    if certs.is_empty() {
        return Err(format!(
            "{} holds no PEM certificate (-----BEGIN CERTIFICATE-----)",
            path.display()
        ));
    }
    Ok(certs)
}

/// Whether an HTTP status is a redirect the sinks follow themselves (all methods, body
/// resent), as the Flink connectors do.
pub fn is_redirect(status: StatusCode) -> bool {
    matches!(status.as_u16(), 301 | 302 | 303 | 307 | 308)
}

/// The error and its causes on one line (reqwest's own message hides the cause), with a
/// hint when the TLS handshake failed. URLs here never carry credentials (they are taken
/// out before a request is made), and any that would are cut out anyway.
pub fn describe(e: reqwest::Error) -> String {
    let url = e.url().cloned();
    let mut causes = String::new();
    let mut source = std::error::Error::source(&e);
    while let Some(s) = source {
        causes.push_str(": ");
        causes.push_str(&s.to_string());
        source = s.source();
    }
    let mut text = e.without_url().to_string();
    if let Some(mut url) = url {
        let _ = url.set_username("");
        let _ = url.set_password(None);
        text.push_str(" (");
        text.push_str(url.as_str());
        text.push(')');
    }
    text.push_str(&causes);
    let lower = text.to_ascii_lowercase();
    if lower.contains("certificate") || lower.contains("tls") || lower.contains("handshake") {
        text.push_str(
            " (TLS: the server's certificate was not accepted; set sink.ssl.ca-path to the PEM file of the CA that signed it, and check that the certificate names this host)",
        );
    }
    text
}

/// The most of a load's error log that is read.
pub const ERROR_LOG_LIMIT: usize = 64 * 1024;

/// Whether `url` names one of `nodes` (the FE/BE addresses the user configured): the same
/// scheme, host and port.
pub fn is_configured_node(url: &Url, nodes: &[String]) -> bool {
    nodes.iter().any(|node| {
        Url::parse(node).is_ok_and(|n| {
            n.scheme() == url.scheme()
                && n.host_str() == url.host_str()
                && n.port_or_known_default() == url.port_or_known_default()
        })
    })
}

/// The first non-empty line of a load's error log (`ErrorURL`: the first rejected row and
/// why), at most 1000 characters, or `None` when it cannot be read. See
/// [`fetch_error_log`] for how the log is fetched.
pub async fn first_error_line(
    client: &reqwest::Client,
    error_url: &str,
    nodes: &[String],
    user: &str,
    password: &str,
    timeout: std::time::Duration,
) -> Option<String> {
    let text = fetch_error_log(client, error_url, nodes, user, password, timeout)
        .await
        .ok()?;
    first_line(&text)
}

/// The first non-empty line of an error log, at most 1000 characters.
pub fn first_line(text: &str) -> Option<String> {
    text.lines()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .map(|l| l.chars().take(1000).collect())
}

/// A load's error log (`ErrorURL`: one line per rejected row, at most
/// [`ERROR_LOG_LIMIT`] bytes of it), or why it cannot be read.
///
/// The URL comes from the server's answer, so it is not trusted with the credentials: they
/// are sent only to a node of `nodes` (the configured FE/BE addresses) with the same
/// scheme, host and port. Any other host (usually the BE that ran the load, which serves
/// the log without authentication in Doris and StarRocks) is asked without them, no
/// redirect is followed, credentials inside the URL are dropped, at most
/// [`ERROR_LOG_LIMIT`] bytes are read, and the whole fetch is bounded by `timeout`.
///
/// # Errors
/// A text for the user when the URL is unusable, the server does not answer 200 in time, or
/// the body breaks off before anything was read. Never contains the credentials.
pub async fn fetch_error_log(
    client: &reqwest::Client,
    error_url: &str,
    nodes: &[String],
    user: &str,
    password: &str,
    timeout: std::time::Duration,
) -> Result<String, String> {
    let mut url = Url::parse(error_url).map_err(|e| format!("the ErrorURL is not a URL ({e})"))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(format!(
            "the ErrorURL has the scheme '{}', not http or https",
            url.scheme()
        ));
    }
    let (mut ignored_user, mut ignored_password) = (String::new(), String::new());
    take_credentials(&mut url, &mut ignored_user, &mut ignored_password);
    let mut request = client.get(url.clone()).timeout(timeout);
    if is_configured_node(&url, nodes) {
        request = request.basic_auth(user, Some(password));
    }
    let read = async {
        let mut response = request.send().await.map_err(describe)?;
        if response.status() != StatusCode::OK {
            return Err(format!("HTTP {} from {url}", response.status()));
        }
        let mut body: Vec<u8> = Vec::new();
        while body.len() < ERROR_LOG_LIMIT {
            match response.chunk().await {
                Ok(Some(chunk)) => body.extend_from_slice(&chunk),
                Ok(None) => break,
                Err(_) if !body.is_empty() => break,
                Err(e) => return Err(describe(e)),
            }
        }
        body.truncate(ERROR_LOG_LIMIT);
        Ok(body)
    };
    let body = tokio::time::timeout(timeout, read)
        .await
        .map_err(|_| format!("no answer from {url} within {} s", timeout.as_secs()))??;
    Ok(String::from_utf8_lossy(&body).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redirects_take_credentials_out_and_keep_https() {
        let from = Url::parse("https://fe:8030/api/d/t/_stream_load").unwrap();
        let (mut user, mut password) = ("root".to_string(), String::new());
        let next = follow(
            &from,
            "http://cdc:s%40cret@be:8040/api/d/t/_stream_load?",
            true,
            &mut user,
            &mut password,
        )
        .unwrap();
        assert_eq!(next.as_str(), "https://be:8040/api/d/t/_stream_load?");
        assert_eq!((user.as_str(), password.as_str()), ("cdc", "s@cret"));

        let from = Url::parse("http://fe:8030/x").unwrap();
        let next = follow(&from, "http://be:8040/y", false, &mut user, &mut password).unwrap();
        assert_eq!(next.scheme(), "http");
        assert_eq!((user.as_str(), password.as_str()), ("cdc", "s@cret"));
    }

    #[test]
    fn redirect_errors_never_show_the_location() {
        let from = Url::parse("http://fe:8030/x").unwrap();
        let (mut user, mut password) = (String::new(), String::new());
        for location in [
            "http://root:s3cr3tpw@[::1",
            "ftp://root:s3cr3tpw@be:21/x",
            "http://root:s3cr3tpw@be:99999/x",
        ] {
            let e = follow(&from, location, false, &mut user, &mut password).unwrap_err();
            assert!(!e.contains("s3cr3tpw"), "{e}");
        }
    }
}

#[cfg(test)]
mod error_log_tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use std::sync::{Arc, Mutex};
    use std::time::Duration;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpListener;

    fn client() -> reqwest::Client {
        install_crypto_provider();
        reqwest::Client::new()
    }

    /// A server that records each request head and answers with `body` (`size` bytes of
    /// it, streamed), for `answers` connections.
    async fn server(body: &'static str, size: usize) -> (String, Arc<Mutex<Vec<String>>>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = format!("http://{}", listener.local_addr().unwrap());
        let heads = Arc::new(Mutex::new(Vec::new()));
        let seen = heads.clone();
        tokio::spawn(async move {
            loop {
                let (mut socket, _) = listener.accept().await.unwrap();
                let seen = seen.clone();
                tokio::spawn(async move {
                    let mut buf = vec![0u8; 4096];
                    let n = socket.read(&mut buf).await.unwrap_or(0);
                    seen.lock()
                        .unwrap()
                        .push(String::from_utf8_lossy(&buf[..n]).to_ascii_lowercase());
                    let head = format!("HTTP/1.1 200 OK\r\nContent-Length: {size}\r\n\r\n");
                    let _ = socket.write_all(head.as_bytes()).await;
                    let mut sent = 0;
                    while sent < size {
                        let part = body.as_bytes();
                        let n = part.len().min(size - sent);
                        if socket.write_all(&part[..n]).await.is_err() {
                            return;
                        }
                        sent += n;
                    }
                });
            }
        });
        (address, heads)
    }

    #[tokio::test]
    async fn credentials_go_only_to_configured_nodes() {
        let client = client();
        let (node, heads) = server("Reason: column_name[v], too long\n", 33).await;
        let timeout = Duration::from_secs(5);
        // A configured node gets the credentials.
        let line = first_error_line(
            &client,
            &format!("{node}/api/_load_error_log?file=a"),
            std::slice::from_ref(&node),
            "root",
            "s3cret",
            timeout,
        )
        .await;
        assert_eq!(line.as_deref(), Some("Reason: column_name[v], too long"));
        assert!(heads.lock().unwrap()[0].contains("authorization: basic"));
        // The same host named by another URL (a hostile or just different ErrorURL: here
        // the configured list names another port) is asked without them, and credentials
        // inside the URL are not used either.
        let hostile = node.replace("http://", "http://evil:pw@");
        let line = first_error_line(
            &client,
            &format!("{hostile}/api/_load_error_log?file=b"),
            &["http://127.0.0.1:1".to_string()],
            "root",
            "s3cret",
            timeout,
        )
        .await;
        assert!(line.is_some());
        let head = heads.lock().unwrap()[1].clone();
        assert!(!head.contains("authorization"), "{head}");
        // https configured, http named: no credentials in clear.
        let https = node.replace("http://", "https://");
        let line = first_error_line(
            &client,
            &format!("{node}/x"),
            &[https],
            "root",
            "s3cret",
            timeout,
        )
        .await;
        assert!(line.is_some());
        assert!(!heads.lock().unwrap()[2].contains("authorization"));
        assert!(
            first_error_line(&client, "file:///etc/passwd", &[], "u", "p", timeout)
                .await
                .is_none()
        );
    }

    #[tokio::test]
    async fn a_huge_error_log_is_read_only_up_to_the_limit() {
        let client = client();
        // 50 MB of one line: only ERROR_LOG_LIMIT bytes are read, the line is cut.
        let (node, _) = server(
            "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
            50 << 20,
        )
        .await;
        let line = first_error_line(
            &client,
            &format!("{node}/log"),
            &[],
            "u",
            "p",
            Duration::from_secs(10),
        )
        .await
        .unwrap();
        assert_eq!(line.len(), 1000);
    }
}
