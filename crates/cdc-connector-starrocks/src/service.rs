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

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use bytes::Bytes;
use cdc_stream_load::http::{describe, fetch_error_log, is_redirect, take_credentials};
pub(crate) use cdc_stream_load::http::{follow, install_crypto_provider, read_ca};
use reqwest::{Client, Method, header};
use url::Url;

use crate::config::Password;
use crate::retry::{Answer, TxnOp};

/// Hops a request may be redirected (FE -> leader FE -> BE at most).
const MAX_REDIRECTS: usize = 4;
/// How long reading an error log may take.
const ERROR_LOG_TIMEOUT: Duration = Duration::from_secs(10);

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

/// The BEs the FEs redirected requests to: where bodies go directly.
#[derive(Debug, Default)]
struct Nodes {
    /// The BE of each open transaction (label -> `scheme://host:port`).
    by_label: HashMap<String, String>,
    /// A BE the FEs sent a request to, for stream loads (any BE coordinates any table).
    any_backend: Option<String>,
}

impl Nodes {
    /// Labels pinned at most (as the FE bounds its own map): transactions that were never
    /// committed or rolled back here do not grow it without end.
    const MAX_LABELS: usize = 4096;

    fn pin(&mut self, label: &str, be: String) {
        if self.by_label.len() >= Self::MAX_LABELS && !self.by_label.contains_key(label) {
            self.by_label.clear();
        }
        self.by_label.insert(label.to_string(), be);
    }
}

fn lock(nodes: &Mutex<Nodes>) -> std::sync::MutexGuard<'_, Nodes> {
    nodes.lock().unwrap_or_else(PoisonError::into_inner)
}

/// `scheme://host:port` of a URL.
fn base(url: &Url) -> String {
    match url.port_or_known_default() {
        Some(port) => format!("{}://{}:{port}", url.scheme(), url.host_str().unwrap_or("")),
        None => format!("{}://{}", url.scheme(), url.host_str().unwrap_or("")),
    }
}

/// `base` with these path segments.
fn at(base: &str, segments: &[&str]) -> Result<Url, String> {
    let mut url =
        Url::parse(&format!("{base}/")).map_err(|e| format!("bad address {base}: {e}"))?;
    url.path_segments_mut()
        .map_err(|()| format!("bad address {base}"))?
        .clear()
        .extend(segments);
    Ok(url)
}

/// Talks to the FEs of one cluster (and the BEs they redirect to).
#[derive(Debug)]
pub(crate) struct StarRocksService {
    client: Client,
    /// The same client without a connection pool: every request on a new connection.
    fresh: Client,
    /// The last answer was a failure (no answer, or 5xx): the server may have closed the
    /// connection behind it, so the next request goes on a new one.
    suspect: AtomicBool,
    load_urls: Vec<String>,
    username: String,
    password: Password,
    /// How long one answer may take.
    timeout: Duration,
    /// How long the FE may take to answer the bodiless request that finds where a body
    /// goes (`sink.wait-for-continue.timeout-ms`: our `Expect: 100-continue`).
    probe_timeout: Duration,
    /// Round-robin position, so a retry after a network error tries the next FE.
    next: AtomicUsize,
    /// Where bodies go directly.
    nodes: Mutex<Nodes>,
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
        let build = |pooled: bool| {
            let mut builder = Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .connect_timeout(connect_timeout)
                .pool_idle_timeout(Duration::from_secs(30));
            if !pooled {
                builder = builder.pool_max_idle_per_host(0);
            }
            if let Some(certs) = ca.clone() {
                builder = builder.tls_certs_only(certs);
            }
            builder
                .build()
                .map_err(|e| format!("cannot build the HTTP client: {}", describe(e)))
        };
        Ok(Self {
            client: build(true)?,
            fresh: build(false)?,
            suspect: AtomicBool::new(false),
            load_urls,
            username,
            password,
            timeout,
            probe_timeout: timeout,
            next: AtomicUsize::new(0),
            nodes: Mutex::new(Nodes::default()),
        })
    }

    /// The same service with another bound on the FE's answer to a bodiless probe.
    pub(crate) fn with_probe_timeout(mut self, timeout: Duration) -> Self {
        self.probe_timeout = timeout;
        self
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

    /// `PUT /api/{db}/{table}/_stream_load`: straight to the BE an FE redirected an earlier
    /// request to, when one is known, so the body crosses the network once (an FE answers
    /// 307 before reading a body and closes the connection, so a large body sent to it
    /// breaks: "Broken pipe").
    pub(crate) async fn stream_load(
        &self,
        db: &str,
        table: &str,
        headers: &[(String, String)],
        body: Bytes,
    ) -> Attempt {
        let path = ["api", db, table, "_stream_load"];
        let mut known = lock(&self.nodes).any_backend.clone();
        if known.is_none() {
            known = self.find_backend(&path).await;
            lock(&self.nodes).any_backend.clone_from(&known);
        }
        let url = match &known {
            Some(base) => at(base, &path)?,
            None => self.url(&path)?,
        };
        let mut all: Vec<(&str, &str)> = vec![("Expect", "100-continue")];
        all.extend(headers.iter().map(|(k, v)| (k.as_str(), v.as_str())));
        let (attempt, redirected) = self.send_to(Method::PUT, url, &all, Some(body)).await;
        let mut nodes = lock(&self.nodes);
        if let Some(be) = redirected {
            nodes.any_backend = Some(be);
        } else if known.is_some() && attempt.is_err() {
            // That BE is gone: the next attempt asks an FE again.
            nodes.any_backend = None;
        }
        attempt
    }

    /// Asks an FE where a stream load of this table would go, without a body and without
    /// a label, and without following the answer: the FE only names a BE (307), nothing
    /// is loaded. `None` when the node answers otherwise (a `load-url` that names a BE
    /// itself: an empty, unlabelled load there changes no data) or cannot be reached.
    async fn find_backend(&self, path: &[&str]) -> Option<String> {
        let mut url = self.url(path).ok()?;
        let mut user = self.username.clone();
        let mut password = self.password.expose().to_string();
        take_credentials(&mut url, &mut user, &mut password);
        let response = self
            .client
            .put(url.clone())
            .basic_auth(&user, Some(&password))
            .header("Expect", "100-continue")
            .header(header::CONTENT_LENGTH, "0")
            .timeout(self.probe_timeout)
            .send()
            .await
            .ok()?;
        if !is_redirect(response.status()) {
            return None;
        }
        let location = response.headers().get(header::LOCATION)?.to_str().ok()?;
        let tls = url.scheme() == "https";
        let be = follow(&url, location, tls, &mut user, &mut password).ok()?;
        tracing::debug!(backend = %base(&be), "stream loads go straight to this BE");
        Some(base(&be))
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
        // A `load` goes straight to the BE the FE redirected the transaction's `begin` to,
        // as the FE would redirect it (TransactionLoadAction keeps label -> BE), so its
        // body crosses the network once.
        let path = ["api", "transaction", op.path()];
        let pinned = if op == TxnOp::Load {
            lock(&self.nodes).by_label.get(label).cloned()
        } else {
            None
        };
        let url = match &pinned {
            Some(base) => at(base, &path)?,
            None => self.url(&path)?,
        };
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
        let (attempt, redirected) = self
            .send_to(method, url, &headers, Some(body.unwrap_or_default()))
            .await;
        let mut nodes = lock(&self.nodes);
        match op {
            TxnOp::Begin | TxnOp::Load => {
                if let Some(be) = redirected {
                    nodes.any_backend = Some(be.clone());
                    nodes.pin(label, be);
                } else if pinned.is_some() && attempt.is_err() {
                    // The BE is gone: the next attempt goes through an FE again.
                    nodes.by_label.remove(label);
                }
            }
            TxnOp::Commit | TxnOp::Rollback if attempt.is_ok() => {
                nodes.by_label.remove(label);
            }
            _ => {}
        }
        attempt
    }

    /// `GET /api/{db}/get_load_state?label=`.
    pub(crate) async fn load_state(&self, db: &str, label: &str) -> Attempt {
        let mut url = self.url(&["api", db, "get_load_state"])?;
        url.query_pairs_mut().append_pair("label", label);
        self.send(Method::GET, url, &[], None).await
    }

    /// A load's error log (one line per rejected row), or why it cannot be read;
    /// credentials go only to a configured FE, the fetch is bounded in size and time
    /// ([`fetch_error_log`]).
    pub(crate) async fn error_log(&self, error_url: &str) -> Result<String, String> {
        fetch_error_log(
            &self.fresh,
            error_url,
            &self.load_urls,
            &self.username,
            self.password.expose(),
            ERROR_LOG_TIMEOUT,
        )
        .await
    }

    async fn send(
        &self,
        method: Method,
        url: Url,
        headers: &[(&str, &str)],
        body: Option<Bytes>,
    ) -> Attempt {
        self.send_to(method, url, headers, body).await.0
    }

    /// [`send`](Self::send), also returning the base URL (`scheme://host:port`) of the node
    /// a redirect led to, if one did.
    async fn send_to(
        &self,
        method: Method,
        url: Url,
        headers: &[(&str, &str)],
        body: Option<Bytes>,
    ) -> (Attempt, Option<String>) {
        let start = url.clone();
        let mut last = url.clone();
        let attempt = self
            .send_following(method, url, headers, body, &mut last)
            .await;
        let redirected = (base(&last) != base(&start)).then(|| base(&last));
        (attempt, redirected)
    }

    async fn send_following(
        &self,
        method: Method,
        mut url: Url,
        headers: &[(&str, &str)],
        body: Option<Bytes>,
        last: &mut Url,
    ) -> Attempt {
        let mut user = self.username.clone();
        let mut password = self.password.expose().to_string();
        take_credentials(&mut url, &mut user, &mut password);
        let tls = url.scheme() == "https";
        let mut fresh = self.suspect.swap(false, Ordering::Relaxed);
        for _ in 0..=MAX_REDIRECTS {
            let request = |client: &Client| {
                let mut request = client
                    .request(method.clone(), url.clone())
                    .basic_auth(&user, Some(&password))
                    .timeout(self.timeout);
                for (k, v) in headers {
                    request = request.header(*k, *v);
                }
                if let Some(b) = &body {
                    request = request.body(b.clone());
                }
                request
            };
            let client = if fresh { &self.fresh } else { &self.client };
            let response = match request(client).send().await {
                Ok(response) => response,
                // A pooled connection the server had closed (after an error answer, or
                // idle) fails at once with a reset or a broken pipe: that is not the
                // server's answer to this request, so it is sent again, once, on a new
                // connection, and not counted as an attempt. Safe: every request here is
                // idempotent by its label. A timeout is the server's answer (slow).
                Err(e) if !fresh && !e.is_timeout() => {
                    tracing::debug!(error = %describe(e), "request failed on a pooled connection; sending it again on a new one");
                    fresh = true;
                    request(&self.fresh)
                        .send()
                        .await
                        .map_err(|e| self.failed(describe(e)))?
                }
                Err(e) => return Err(self.failed(describe(e))),
            };
            let status = response.status();
            if status.is_server_error() {
                self.suspect.store(true, Ordering::Relaxed);
            }
            if is_redirect(status) {
                let location = response
                    .headers()
                    .get(header::LOCATION)
                    .and_then(|v| v.to_str().ok())
                    .ok_or_else(|| format!("HTTP {status} from {url} without a Location"))?;
                url = follow(&url, location, tls, &mut user, &mut password)?;
                last.clone_from(&url);
                continue;
            }
            let body = response
                .bytes()
                .await
                .map_err(|e| self.failed(describe(e)))?;
            return Ok(HttpAnswer {
                status: status.as_u16(),
                body,
            });
        }
        Err(format!(
            "more than {MAX_REDIRECTS} redirects, last to {url}"
        ))
    }

    /// A request that got no answer: the next one goes on a new connection.
    fn failed(&self, error: String) -> String {
        self.suspect.store(true, Ordering::Relaxed);
        error
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::AtomicU32;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpListener;

    const OK: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 15\r\n\r\n{\"Status\":\"OK\"}";

    /// Reads one request (headers and a Content-Length body) from `socket`.
    async fn read_request(socket: &mut tokio::net::TcpStream) -> bool {
        let mut data = Vec::new();
        let mut buf = [0u8; 4096];
        loop {
            if let Some(end) = data.windows(4).position(|w| w == b"\r\n\r\n") {
                let head = String::from_utf8_lossy(&data[..end]).to_ascii_lowercase();
                let length: usize = head
                    .lines()
                    .find_map(|l| l.strip_prefix("content-length:"))
                    .map_or(0, |v| v.trim().parse().unwrap());
                if data.len() >= end + 4 + length {
                    return true;
                }
            }
            match socket.read(&mut buf).await {
                Ok(0) | Err(_) => return false,
                Ok(n) => data.extend_from_slice(&buf[..n]),
            }
        }
    }

    /// A server that answers the first request of a connection and resets the connection
    /// on the second (as a server that closed a kept-alive connection behind an answer):
    /// the client's second request fails on the pooled connection and must go again on a
    /// new one, without the caller seeing a failure.
    #[tokio::test]
    async fn a_request_on_a_connection_the_server_closed_goes_again_on_a_new_one() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let connections = Arc::new(AtomicU32::new(0));
        let seen = connections.clone();
        tokio::spawn(async move {
            loop {
                let (mut socket, _) = listener.accept().await.unwrap();
                seen.fetch_add(1, Ordering::Relaxed);
                tokio::spawn(async move {
                    if !read_request(&mut socket).await {
                        return;
                    }
                    socket.write_all(OK).await.unwrap();
                    if read_request(&mut socket).await {
                        // Close with a reset instead of an answer.
                        socket.set_zero_linger().unwrap();
                    }
                });
            }
        });
        let service = StarRocksService::new(
            vec![format!("http://{address}")],
            "root".into(),
            Password::new(String::new()),
            None,
            Duration::from_secs(5),
            Duration::from_secs(5),
        )
        .unwrap();
        let body = Bytes::from_static(b"{\"id\":1}");
        for round in 0..3 {
            let answer = service
                .txn(TxnOp::Load, "db", "t", "label", &[], Some(body.clone()))
                .await;
            let answer = answer.unwrap_or_else(|e| panic!("round {round}: {e}"));
            assert_eq!(answer.status, 200, "round {round}");
        }
        // Rounds 2 and 3 each found their pooled connection reset and used a new one.
        assert_eq!(connections.load(Ordering::Relaxed), 3);
    }
}
