//! HTTP to StarRocks: Stream Load, the transaction interface, `get_load_state`, error logs.
//!
//! Redirects are followed here, not by reqwest: the FE answers loads and `begin` / `load` /
//! `prepare` with 307 to a BE, and its Location carries no credentials, while reqwest drops
//! `Authorization` on a redirect to another host (a BE reached without it answers
//! `no valid Basic authorization`). Every hop gets Basic auth and the same body (a cheap
//! `Bytes` clone).
//!
//! TLS: `load-url` entries written `https://host:port` are reached over rustls (the `ring`
//! provider) with the system's roots, or only the CAs of `sink.ssl.ca-path`. A redirect
//! from an `https` node keeps `https` even when the Location says `http`. A Location that
//! carries `user:pass@` has it taken out before the URL is used or shown.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use bytes::Bytes;
use percent_encoding::percent_decode_str;
use reqwest::{Client, Method, StatusCode, header};
use url::Url;

use crate::config::Password;
use crate::retry::{Answer, TxnOp};

/// Hops a request may be redirected (FE -> leader FE -> BE at most).
const MAX_REDIRECTS: usize = 4;
/// How much of an error log is read.
const ERROR_LOG_LIMIT: usize = 64 * 1024;

/// An HTTP answer.
#[derive(Debug, Clone)]
pub(crate) struct HttpAnswer {
    pub(crate) status: u16,
    pub(crate) body: Bytes,
}

/// One attempt: an HTTP answer, or a transport failure as text.
pub(crate) type Attempt = Result<HttpAnswer, String>;

/// Views an attempt as the classifier reads it.
pub(crate) fn as_answer(attempt: &Attempt) -> Answer<'_> {
    match attempt {
        Ok(a) => Answer::Http {
            status: a.status,
            body: &a.body,
        },
        Err(e) => Answer::Transport(e),
    }
}

/// Talks to the FEs of one cluster (and the BEs they redirect to).
#[derive(Debug)]
pub(crate) struct StarRocksService {
    client: Client,
    load_urls: Vec<String>,
    username: String,
    password: Password,
    /// How long one answer may take.
    timeout: Duration,
    /// Round-robin position, so a retry after a network error tries the next FE.
    next: AtomicUsize,
}

impl StarRocksService {
    /// A client for these FEs (base URLs such as `https://fe:8030`), trusting only `ca`
    /// when given (see [`read_ca`]); no network I/O.
    pub(crate) fn new(
        load_urls: Vec<String>,
        username: String,
        password: Password,
        ca: Option<Vec<reqwest::Certificate>>,
        connect_timeout: Duration,
        timeout: Duration,
    ) -> Result<Self, String> {
        install_crypto_provider();
        let mut builder = Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(connect_timeout)
            .pool_idle_timeout(Duration::from_secs(30));
        if let Some(certs) = ca {
            builder = builder.tls_certs_only(certs);
        }
        let client = builder
            .build()
            .map_err(|e| format!("cannot build the HTTP client: {}", describe(e)))?;
        Ok(Self {
            client,
            load_urls,
            username,
            password,
            timeout,
            next: AtomicUsize::new(0),
        })
    }

    fn url(&self, segments: &[&str]) -> Result<Url, String> {
        let i = self.next.fetch_add(1, Ordering::Relaxed);
        let node = self
            .load_urls
            .get(i % self.load_urls.len().max(1))
            .cloned()
            .unwrap_or_default();
        let mut url =
            Url::parse(&format!("{node}/")).map_err(|e| format!("bad address {node}: {e}"))?;
        url.path_segments_mut()
            .map_err(|()| format!("bad address {node}"))?
            .clear()
            .extend(segments);
        Ok(url)
    }

    /// `PUT /api/{db}/{table}/_stream_load`.
    pub(crate) async fn stream_load(
        &self,
        db: &str,
        table: &str,
        headers: &[(String, String)],
        body: Bytes,
    ) -> Attempt {
        let url = self.url(&["api", db, table, "_stream_load"])?;
        let mut all: Vec<(&str, &str)> = vec![("Expect", "100-continue")];
        all.extend(headers.iter().map(|(k, v)| (k.as_str(), v.as_str())));
        self.send(Method::PUT, url, &all, Some(body)).await
    }

    /// `/api/transaction/{op}` with `label`, `db`, `table` and `extra` headers; `load` is a
    /// PUT with the body, the others POST.
    pub(crate) async fn txn(
        &self,
        op: TxnOp,
        db: &str,
        table: &str,
        label: &str,
        extra: &[(String, String)],
        body: Option<Bytes>,
    ) -> Attempt {
        let url = self.url(&["api", "transaction", op.path()])?;
        let mut headers: Vec<(&str, &str)> = vec![
            ("Expect", "100-continue"),
            ("label", label),
            ("db", db),
            ("table", table),
        ];
        headers.extend(extra.iter().map(|(k, v)| (k.as_str(), v.as_str())));
        let method = if op == TxnOp::Load {
            Method::PUT
        } else {
            Method::POST
        };
        self.send(method, url, &headers, Some(body.unwrap_or_default()))
            .await
    }

    /// `GET /api/{db}/get_load_state?label=`.
    pub(crate) async fn load_state(&self, db: &str, label: &str) -> Attempt {
        let mut url = self.url(&["api", db, "get_load_state"])?;
        url.query_pairs_mut().append_pair("label", label);
        self.send(Method::GET, url, &[], None).await
    }

    /// The first line of a load's error log (the first rejected row and why), if readable.
    pub(crate) async fn first_error_line(&self, error_url: &str) -> Option<String> {
        let url = Url::parse(error_url).ok()?;
        let answer = self.send(Method::GET, url, &[], None).await.ok()?;
        if answer.status != 200 {
            return None;
        }
        let end = answer.body.len().min(ERROR_LOG_LIMIT);
        let text = String::from_utf8_lossy(&answer.body[..end]);
        text.lines()
            .map(str::trim)
            .find(|l| !l.is_empty())
            .map(|l| l.chars().take(1000).collect())
    }

    async fn send(
        &self,
        method: Method,
        mut url: Url,
        headers: &[(&str, &str)],
        body: Option<Bytes>,
    ) -> Attempt {
        let mut user = self.username.clone();
        let mut password = self.password.expose().to_string();
        take_credentials(&mut url, &mut user, &mut password);
        let tls = url.scheme() == "https";
        for _ in 0..=MAX_REDIRECTS {
            let mut request = self
                .client
                .request(method.clone(), url.clone())
                .basic_auth(&user, Some(&password))
                .timeout(self.timeout);
            for (k, v) in headers {
                request = request.header(*k, *v);
            }
            if let Some(b) = &body {
                request = request.body(b.clone());
            }
            let response = request.send().await.map_err(describe)?;
            let status = response.status();
            if is_redirect(status) {
                let location = response
                    .headers()
                    .get(header::LOCATION)
                    .and_then(|v| v.to_str().ok())
                    .ok_or_else(|| format!("HTTP {status} from {url} without a Location"))?;
                url = follow(&url, location, tls, &mut user, &mut password)?;
                continue;
            }
            let body = response.bytes().await.map_err(describe)?;
            return Ok(HttpAnswer {
                status: status.as_u16(),
                body,
            });
        }
        Err(format!(
            "more than {MAX_REDIRECTS} redirects, last to {url}"
        ))
    }
}

/// Moves `user:pass@` out of `url` into `user` / `password`.
fn take_credentials(url: &mut Url, user: &mut String, password: &mut String) {
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
pub(crate) fn follow(
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
pub(crate) fn install_crypto_provider() {
    if rustls::crypto::CryptoProvider::get_default().is_none() {
        let _ = rustls::crypto::ring::default_provider().install_default();
    }
}

/// Reads the PEM certificates of `path` (`sink.ssl.ca-path`).
pub(crate) fn read_ca(path: &std::path::Path) -> Result<Vec<reqwest::Certificate>, String> {
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

fn is_redirect(status: StatusCode) -> bool {
    matches!(status.as_u16(), 301 | 302 | 303 | 307 | 308)
}

/// The error and its causes on one line (reqwest's own message hides the cause), with a
/// hint when the TLS handshake failed. URLs here never carry credentials (they are taken
/// out before a request is made), and any that would are cut out anyway.
fn describe(e: reqwest::Error) -> String {
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
