//! HTTP to Doris: Stream Load, 2PC commit/abort, the FE SQL API and error logs.
//!
//! Redirects are followed here, not by reqwest: the FE answers a load with 307 to a BE and
//! puts the credentials into the Location URL (`http://user:pass@be:8040/...`), while
//! reqwest drops `Authorization` on a redirect to another host. We take the credentials out
//! of the URL, send them as Basic auth, and re-send the same body (a cheap `Bytes` clone).
//!
//! TLS: nodes given as `https://host:port` are reached over rustls (the `ring` provider)
//! with the system's roots, or only the CAs of `sink.ssl.ca-path`. A redirect from an
//! `https` node keeps `https` even when the Location says `http`: credentials never fall
//! back to plain text.
//!
//! Credentials: a Location's `user:pass@` is taken out of the URL before the URL is used
//! anywhere, and no error built here contains a Location or a URL with credentials.
//!
//! # Where loads go
//! As in Flink CDC's Doris pipeline sink (`BackendUtil`, `RestService`):
//! * `benodes` set: straight to those BEs;
//! * else `auto-redirect: true`: to an FE, following its 307 to a BE;
//! * else (the default): straight to the BEs the FEs list in
//!   `GET /api/backends?is_alive=true`, asked when the sink opens and again after a BE
//!   failed (connection error or timeout). Their addresses take the scheme of the FE that
//!   listed them.
//!
//! With BEs (the first and last case) every load and 2PC call goes to the next BE, round
//! robin, that answers a liveness probe (`GET /`, any status below 500), so a dead BE is
//! skipped without sending it a body. 2PC commits and aborts go to a BE as well (a BE
//! serves `/api/{db}/_stream_load_2pc` itself, which is what Flink's committer uses), or
//! to the FE with `auto-redirect: true`.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use bytes::Bytes;
use cdc_stream_load::http::{describe, fetch_error_log, is_redirect, take_credentials};
pub(crate) use cdc_stream_load::http::{follow, install_crypto_provider, read_ca};
use reqwest::{Client, Method, header};
use url::Url;

use crate::config::Password;
use crate::retry::{Answer, TxnOp};

/// Hops a request may be redirected before we give up (FE -> master FE -> BE at most).
const MAX_REDIRECTS: usize = 4;
/// How long a liveness probe of a BE may take: a BE advertised under an address that is
/// not routable from here must not hold every load for the whole connect timeout.
const PROBE_TIMEOUT: Duration = Duration::from_secs(3);
/// The shortest pause between two listings of the BEs after failures.
const MIN_RELIST: Duration = Duration::from_secs(1);
/// The BEs are listed again when the last list is this old.
const MAX_LIST_AGE: Duration = Duration::from_secs(60);
/// What to do when the BEs the FE lists cannot be used from here.
pub(crate) const DISCOVERY_HINT: &str = "with auto-redirect false (the default) and no benodes, the sink loads straight into the BEs the FE lists in /api/backends; if those addresses are not reachable from here (e.g. Doris in Docker or Kubernetes advertising internal IPs), set benodes to BE addresses that are, or auto-redirect: true to send loads through the FE";

/// An HTTP answer: status and body.
#[derive(Debug, Clone)]
pub(crate) struct HttpAnswer {
    /// The HTTP status code.
    pub(crate) status: u16,
    /// The body.
    pub(crate) body: Bytes,
}

/// One attempt's outcome: an HTTP answer, or a transport failure described as text.
pub(crate) type Attempt = Result<HttpAnswer, String>;

/// Views an attempt the way the retry classifier reads it.
pub(crate) fn as_answer(attempt: &Attempt) -> Answer<'_> {
    match attempt {
        Ok(a) => Answer::Http {
            status: a.status,
            body: &a.body,
        },
        Err(e) => Answer::Transport(e),
    }
}

/// Where Stream Loads and 2PC calls go; see the module documentation.
#[derive(Debug)]
enum Route {
    /// `benodes`: straight to these BEs.
    Benodes(Vec<String>),
    /// `auto-redirect: true`: to an FE, which redirects to a BE.
    Redirect,
    /// Neither: to the BEs the FEs list.
    Discovered(Mutex<Discovered>),
}

/// The BEs an FE listed last.
#[derive(Debug, Default)]
struct Discovered {
    /// Base URLs (`scheme://ip:port`).
    backends: Vec<String>,
    /// A BE failed since they were listed: ask the FE again before the next pick.
    stale: bool,
    /// When the FE was last asked.
    listed_at: Option<Instant>,
}

impl Discovered {
    /// Whether to ask the FE again before picking a BE: no list yet, a BE failed (at
    /// most once per [`MIN_RELIST`], so a dead BE the FE still lists does not double
    /// every load's requests), or the list is old (a BE that came back, or a new one,
    /// is used again).
    fn needs_listing(&self) -> bool {
        match self.listed_at {
            Some(at) if !self.backends.is_empty() => {
                (self.stale && at.elapsed() >= MIN_RELIST) || at.elapsed() >= MAX_LIST_AGE
            }
            _ => true,
        }
    }

    fn store(&mut self, backends: Vec<String>) {
        if backends != self.backends {
            tracing::info!(backends = %backends.join(", "), "Doris BEs for loads (from the FE's /api/backends)");
        }
        self.backends = backends;
        self.stale = false;
        self.listed_at = Some(Instant::now());
    }
}

/// Why the BEs could not be found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct DiscoveryError {
    /// What went wrong, per FE asked.
    pub(crate) message: String,
    /// Whether asking again later may help (an FE unreachable or without alive BEs, BEs
    /// not answering); not for refused credentials or an answer we cannot read.
    pub(crate) retryable: bool,
    /// The FE refused the credentials: nothing to do with addresses.
    pub(crate) credentials: bool,
}

impl DiscoveryError {
    fn new(message: String, retryable: bool) -> Self {
        Self {
            message,
            retryable,
            credentials: false,
        }
    }

    fn credentials(message: String) -> Self {
        Self {
            message,
            retryable: false,
            credentials: true,
        }
    }

    /// The sink's error for it: permanent, advising `benodes` or `auto-redirect` unless
    /// the credentials were refused.
    pub(crate) fn into_error(self) -> cdc_api::Error {
        let error = cdc_api::Error::permanent(
            "finding the Doris BEs to load into (no benodes, auto-redirect false)",
            self.message,
        );
        if self.credentials {
            error
        } else {
            error.with_hint(DISCOVERY_HINT)
        }
    }
}

/// Talks to the FEs and BEs of one cluster.
#[derive(Debug)]
pub(crate) struct DorisService {
    client: Client,
    fenodes: Vec<String>,
    route: Route,
    username: String,
    password: Password,
    /// Round-robin position over the FEs, so a retry after a network error tries the next.
    next: AtomicUsize,
    /// Round-robin position over the BEs, kept apart from the FEs' so that loads spread
    /// evenly whatever the DDL in between.
    next_be: AtomicUsize,
}

impl DorisService {
    /// A client for these nodes (base URLs such as `https://fe:8030`), trusting only
    /// `ca` when given (see [`read_ca`]); no network I/O. Loads go to `benodes` when not
    /// empty, else through the FE with `auto_redirect`, else to the BEs the FE lists.
    pub(crate) fn new(
        fenodes: Vec<String>,
        benodes: Vec<String>,
        auto_redirect: bool,
        username: String,
        password: Password,
        ca: Option<Vec<reqwest::Certificate>>,
    ) -> Result<Self, String> {
        install_crypto_provider();
        let mut builder = Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(Duration::from_secs(10))
            .pool_idle_timeout(Duration::from_secs(30));
        if let Some(certs) = ca {
            builder = builder.tls_certs_only(certs);
        }
        let client = builder
            .build()
            .map_err(|e| format!("cannot build the HTTP client: {}", describe(e)))?;
        let route = if !benodes.is_empty() {
            Route::Benodes(benodes)
        } else if auto_redirect {
            Route::Redirect
        } else {
            Route::Discovered(Mutex::new(Discovered::default()))
        };
        Ok(Self {
            client,
            fenodes,
            route,
            username,
            password,
            next: AtomicUsize::new(0),
            next_be: AtomicUsize::new(0),
        })
    }

    fn pick(&self, nodes: &[String]) -> String {
        let i = self.next.fetch_add(1, Ordering::Relaxed);
        nodes
            .get(i % nodes.len().max(1))
            .cloned()
            .unwrap_or_default()
    }

    /// One line on where loads go, for logs and `cdc validate --connect`.
    pub(crate) fn route_text(&self) -> String {
        match &self.route {
            Route::Benodes(b) => format!("loads go straight to benodes {}", b.join(", ")),
            Route::Redirect => {
                "loads go to the FE and follow its redirect to a BE (auto-redirect: true)".into()
            }
            Route::Discovered(_) => {
                "loads go straight to the BEs the FE lists (auto-redirect: false)".into()
            }
        }
    }

    /// Makes sure loads can be sent: without `benodes` and `auto-redirect`, asks the FEs
    /// for their BEs and checks that one answers from here. Returns the BEs found (empty
    /// when there is nothing to find).
    pub(crate) async fn open(&self) -> Result<Vec<String>, DiscoveryError> {
        let Route::Discovered(state) = &self.route else {
            return Ok(Vec::new());
        };
        let backends = self.discover().await?;
        lock(state).store(backends.clone());
        if self.first_alive(&backends).await.is_none() {
            return Err(DiscoveryError::new(
                format!(
                    "the FE lists the BEs {}, but none answers from here",
                    backends.join(", ")
                ),
                true,
            ));
        }
        Ok(backends)
    }

    /// Whether a BE answers its liveness probe: `GET /` with any status below 500.
    async fn is_alive(&self, node: &str) -> bool {
        let Ok(url) = Self::url(node, &[]) else {
            return false;
        };
        match self.client.get(url).timeout(PROBE_TIMEOUT).send().await {
            Ok(r) => r.status().as_u16() < 500,
            Err(_) => false,
        }
    }

    /// The next of `nodes`, round robin, that answers the liveness probe.
    async fn first_alive(&self, nodes: &[String]) -> Option<String> {
        if nodes.is_empty() {
            return None;
        }
        let start = self.next_be.fetch_add(1, Ordering::Relaxed);
        for i in 0..nodes.len() {
            let node = &nodes[(start + i) % nodes.len()];
            if self.is_alive(node).await {
                return Some(node.clone());
            }
            tracing::debug!(backend = %node, "Doris BE does not answer; trying the next one");
            if let Route::Discovered(state) = &self.route {
                lock(state).stale = true;
            }
        }
        None
    }

    /// Where the next load or 2PC call goes (see the module documentation). An `Err` is
    /// reported like a network error, so the caller retries it.
    async fn target(&self) -> Result<String, String> {
        match &self.route {
            Route::Redirect => Ok(self.pick(&self.fenodes)),
            // The configured BEs: the next that answers, else the next one anyway (its
            // load fails as a network error and is retried).
            Route::Benodes(nodes) => match self.first_alive(nodes).await {
                Some(node) => Ok(node),
                None => Ok(self.pick(nodes)),
            },
            Route::Discovered(state) => self.discovered_target(state).await,
        }
    }

    async fn discovered_target(&self, state: &Mutex<Discovered>) -> Result<String, String> {
        let (mut backends, relist) = {
            let st = lock(state);
            (st.backends.clone(), st.needs_listing())
        };
        let mut refreshed = false;
        if relist {
            match self.discover().await {
                Ok(fresh) => {
                    lock(state).store(fresh.clone());
                    backends = fresh;
                    refreshed = true;
                }
                Err(e) if backends.is_empty() => {
                    return Err(format!("{} ({DISCOVERY_HINT})", e.message));
                }
                Err(e) => {
                    tracing::warn!(error = %e.message, "cannot list the Doris BEs again; keeping the last known ones");
                }
            }
        }
        if let Some(node) = self.first_alive(&backends).await {
            return Ok(node);
        }
        // None answers: the cluster may have changed since the list was made.
        if !refreshed {
            if let Ok(fresh) = self.discover().await {
                lock(state).store(fresh.clone());
                if let Some(node) = self.first_alive(&fresh).await {
                    return Ok(node);
                }
                backends = fresh;
            }
        }
        lock(state).stale = true;
        Err(format!(
            "no Doris BE answers from here (tried {}) ({DISCOVERY_HINT})",
            backends.join(", ")
        ))
    }

    /// After a request to `node` failed without an HTTP answer: list the BEs again before
    /// the next pick (the BE may be gone, or the cluster changed).
    fn failed(&self, attempt: &Attempt) {
        if let (Err(_), Route::Discovered(state)) = (attempt, &self.route) {
            lock(state).stale = true;
        }
    }

    /// Asks the FEs, one after another, for their alive BEs
    /// (`GET /api/backends?is_alive=true`); the first usable answer wins.
    async fn discover(&self) -> Result<Vec<String>, DiscoveryError> {
        let mut problems = Vec::new();
        let mut retryable = false;
        let mut credentials = false;
        let start = self.next.fetch_add(1, Ordering::Relaxed);
        for i in 0..self.fenodes.len() {
            let fe = &self.fenodes[(start + i) % self.fenodes.len()];
            match self.backends_of(fe).await {
                Ok(list) => return Ok(list),
                Err(e) => {
                    retryable |= e.retryable;
                    credentials |= e.credentials;
                    problems.push(format!("{fe}: {}", e.message));
                }
            }
        }
        Err(DiscoveryError {
            message: format!(
                "cannot list the Doris BEs (GET /api/backends?is_alive=true): {}",
                problems.join("; ")
            ),
            retryable,
            credentials,
        })
    }

    /// One FE's answer to `GET /api/backends?is_alive=true`, as BE base URLs in the FE's
    /// scheme.
    async fn backends_of(&self, fe: &str) -> Result<Vec<String>, DiscoveryError> {
        let fail = DiscoveryError::new;
        let mut url = Self::url(fe, &["api", "backends"]).map_err(|e| fail(e, false))?;
        url.set_query(Some("is_alive=true"));
        let scheme = url.scheme().to_string();
        let answer = self
            .send(Method::GET, url, &[], None, Duration::from_secs(30))
            .await
            .map_err(|e| fail(format!("network error: {e}"), true))?;
        let text = String::from_utf8_lossy(&answer.body);
        let snippet: String = text.chars().take(300).collect();
        match answer.status {
            200 => {}
            401 | 403 => {
                return Err(DiscoveryError::credentials(format!(
                    "authentication failed (HTTP {}): check username and password",
                    answer.status
                )));
            }
            408 | 429 | 500..=599 => {
                return Err(fail(format!("HTTP {}: {snippet}", answer.status), true));
            }
            other => return Err(fail(format!("unexpected HTTP {other}: {snippet}"), false)),
        }
        parse_backends(&scheme, &answer.body)
    }

    fn url(node: &str, segments: &[&str]) -> Result<Url, String> {
        let mut url =
            Url::parse(&format!("{node}/")).map_err(|e| format!("bad address {node}: {e}"))?;
        url.path_segments_mut()
            .map_err(|()| format!("bad address {node}"))?
            .clear()
            .extend(segments);
        Ok(url)
    }

    /// `PUT /api/{db}/{table}/_stream_load` with `body`, to a BE or through an FE (see
    /// the module documentation).
    pub(crate) async fn stream_load(
        &self,
        db: &str,
        table: &str,
        headers: &[(String, String)],
        body: Bytes,
        timeout: Duration,
    ) -> Attempt {
        let node = self.target().await?;
        let url = Self::url(&node, &["api", db, table, "_stream_load"])?;
        let mut all: Vec<(&str, &str)> = vec![("Expect", "100-continue")];
        all.extend(headers.iter().map(|(k, v)| (k.as_str(), v.as_str())));
        let attempt = self.send(Method::PUT, url, &all, Some(body), timeout).await;
        self.failed(&attempt);
        attempt
    }

    /// `PUT /api/{db}/_stream_load_2pc` committing or aborting by transaction id, or by
    /// label when the id is unknown; to a BE, or to an FE with `auto-redirect`.
    pub(crate) async fn two_phase(
        &self,
        db: &str,
        op: TxnOp,
        label: &str,
        txn_id: Option<i64>,
    ) -> Attempt {
        let node = self.target().await?;
        let url = Self::url(&node, &["api", db, "_stream_load_2pc"])?;
        let id_text;
        let mut headers: Vec<(&str, &str)> =
            vec![("Expect", "100-continue"), ("txn_operation", op.header())];
        match txn_id {
            Some(id) => {
                id_text = id.to_string();
                headers.push(("txn_id", &id_text));
            }
            None => headers.push(("label", label)),
        }
        let attempt = self
            .send(
                Method::PUT,
                url,
                &headers,
                Some(Bytes::new()),
                Duration::from_secs(60),
            )
            .await;
        self.failed(&attempt);
        attempt
    }

    /// `POST /api/query/default_cluster/{db}` with `{"stmt": sql}`.
    pub(crate) async fn query(&self, db: &str, sql: &str) -> Attempt {
        let node = self.pick(&self.fenodes);
        let url = Self::url(&node, &["api", "query", "default_cluster", db])?;
        let body = serde_json::json!({ "stmt": sql }).to_string();
        self.send(
            Method::POST,
            url,
            &[("Content-Type", "application/json")],
            Some(Bytes::from(body)),
            Duration::from_secs(120),
        )
        .await
    }

    /// `POST /api/query/default_cluster/{db}` with `{"stmt": sql, "limit": limit}`: a
    /// `SELECT` answering up to `limit` rows (Doris's default is 1000), within `timeout`.
    pub(crate) async fn query_rows(
        &self,
        db: &str,
        sql: &str,
        limit: usize,
        timeout: Duration,
    ) -> Attempt {
        let node = self.pick(&self.fenodes);
        let url = Self::url(&node, &["api", "query", "default_cluster", db])?;
        let body = serde_json::json!({ "stmt": sql, "limit": limit }).to_string();
        self.send(
            Method::POST,
            url,
            &[("Content-Type", "application/json")],
            Some(Bytes::from(body)),
            timeout,
        )
        .await
    }

    /// A load's error log (one line per rejected row), or why it cannot be read;
    /// credentials go only to a configured FE or BE, the fetch is bounded in size and time
    /// ([`fetch_error_log`]).
    pub(crate) async fn error_log(&self, error_url: &str) -> Result<String, String> {
        let mut configured = self.fenodes.clone();
        if let Route::Benodes(benodes) = &self.route {
            configured.extend(benodes.iter().cloned());
        }
        fetch_error_log(
            &self.client,
            error_url,
            &configured,
            &self.username,
            self.password.expose(),
            Duration::from_secs(10),
        )
        .await
    }

    async fn send(
        &self,
        method: Method,
        mut url: Url,
        headers: &[(&str, &str)],
        body: Option<Bytes>,
        timeout: Duration,
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
                .timeout(timeout);
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

/// The BEs in an FE's `GET /api/backends` answer
/// (`{"msg":"success","code":0,"data":{"backends":[{"ip":..,"http_port":..,"is_alive":..}]},"count":0}`),
/// as base URLs with `scheme`, alive ones only, without duplicates.
fn parse_backends(scheme: &str, body: &[u8]) -> Result<Vec<String>, DiscoveryError> {
    let fail = DiscoveryError::new;
    let text = String::from_utf8_lossy(body);
    let snippet: String = text.chars().take(300).collect();
    let json: serde_json::Value = serde_json::from_slice(body)
        .map_err(|_| fail(format!("the answer is not JSON: {snippet}"), false))?;
    let code = json.get("code").and_then(serde_json::Value::as_i64);
    let msg = json
        .get("msg")
        .and_then(serde_json::Value::as_str)
        .unwrap_or("");
    if code == Some(401) || msg.eq_ignore_ascii_case("Unauthorized") {
        return Err(DiscoveryError::credentials(
            "authentication failed (Unauthorized): check username and password".into(),
        ));
    }
    if code != Some(0) {
        return Err(fail(format!("the FE answered an error: {snippet}"), false));
    }
    let Some(list) = json
        .pointer("/data/backends")
        .and_then(serde_json::Value::as_array)
    else {
        return Err(fail(
            format!("the answer has no data.backends list: {snippet}"),
            false,
        ));
    };
    let mut out = Vec::new();
    for be in list {
        let ip = be
            .get("ip")
            .and_then(serde_json::Value::as_str)
            .map(str::trim)
            .filter(|ip| !ip.is_empty());
        let port = be
            .get("http_port")
            .and_then(serde_json::Value::as_u64)
            .and_then(|p| u16::try_from(p).ok())
            .filter(|p| *p > 0);
        let (Some(ip), Some(port)) = (ip, port) else {
            return Err(fail(
                format!("a BE without a usable ip or http_port in the answer: {be}"),
                false,
            ));
        };
        if be.get("is_alive").and_then(serde_json::Value::as_bool) == Some(false) {
            continue;
        }
        let host = if ip.contains(':') && !ip.starts_with('[') {
            format!("[{ip}]")
        } else {
            ip.to_string()
        };
        let node = format!("{scheme}://{host}:{port}");
        if !out.contains(&node) {
            out.push(node);
        }
    }
    if out.is_empty() {
        return Err(fail("the FE lists no alive BE".into(), true));
    }
    Ok(out)
}

fn lock(state: &Mutex<Discovered>) -> std::sync::MutexGuard<'_, Discovered> {
    state.lock().unwrap_or_else(PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_documented_backends_answer_is_read() {
        let body = br#"{"msg":"success","code":0,"data":{"backends":[{"ip":"192.1.1.1","http_port":8040,"is_alive":true}]},"count":0}"#;
        assert_eq!(
            parse_backends("http", body).unwrap(),
            ["http://192.1.1.1:8040"]
        );
        // The FE's scheme, IPv6, dead and repeated BEs.
        let body = br#"{"msg":"success","code":0,"data":{"backends":[
            {"ip":"fe80::1","http_port":8040,"is_alive":true},
            {"ip":"10.0.0.2","http_port":8040,"is_alive":false},
            {"ip":"10.0.0.3","http_port":8041},
            {"ip":"10.0.0.3","http_port":8041,"is_alive":true}]},"count":0}"#;
        assert_eq!(
            parse_backends("https", body).unwrap(),
            ["https://[fe80::1]:8040", "https://10.0.0.3:8041"]
        );
    }

    #[test]
    fn unusable_backends_answers_say_why() {
        let err = |body: &str| parse_backends("http", body.as_bytes()).unwrap_err();
        let e = err(r#"{"msg":"success","code":0,"data":{"backends":[]},"count":0}"#);
        assert!(e.retryable && e.message.contains("no alive BE"), "{e:?}");
        let e = err("<html>404 Not Found</html>");
        assert!(!e.retryable && e.message.contains("not JSON"), "{e:?}");
        let e = err(r#"{"msg":"Unauthorized","code":401,"data":"Access denied","count":0}"#);
        assert!(
            !e.retryable && e.message.contains("username and password"),
            "{e:?}"
        );
        let e = err(r#"{"msg":"success","code":0,"data":{},"count":0}"#);
        assert!(!e.retryable && e.message.contains("data.backends"), "{e:?}");
        let e = err(r#"{"msg":"success","code":0,"data":{"backends":[{"ip":"x"}]},"count":0}"#);
        assert!(!e.retryable && e.message.contains("http_port"), "{e:?}");
        let e = err(r#"{"msg":"boom","code":1,"data":null,"count":0}"#);
        assert!(!e.retryable && e.message.contains("boom"), "{e:?}");
    }

    /// The BEs the emulator's FE lists take turns; a dead one is skipped after its probe
    /// fails, and used again once it is back.
    #[tokio::test]
    async fn discovered_bes_take_turns_and_a_dead_one_is_skipped() {
        let doris = cdc_testkit::DorisEmulator::start_with(cdc_testkit::DorisEmulatorOptions {
            backends: 2,
            ..cdc_testkit::DorisEmulatorOptions::default()
        })
        .await
        .unwrap();
        let service = DorisService::new(
            vec![format!("http://{}", doris.fe_address())],
            vec![],
            false,
            "root".into(),
            Password::default(),
            None,
        )
        .unwrap();
        let bes: Vec<String> = doris
            .be_addresses()
            .iter()
            .map(|a| format!("http://{a}"))
            .collect();
        let mut listed = service.open().await.unwrap();
        listed.sort();
        let mut want = bes.clone();
        want.sort();
        assert_eq!(listed, want);
        let mut picks = Vec::new();
        for _ in 0..4 {
            picks.push(service.target().await.unwrap());
        }
        assert_ne!(picks[0], picks[1]);
        assert_eq!(picks[0], picks[2]);
        assert_eq!(picks[1], picks[3]);
        doris.inject(cdc_testkit::DorisFault::BackendDown {
            index: 1,
            down: true,
        });
        for _ in 0..4 {
            assert_eq!(service.target().await.unwrap(), bes[0]);
        }
        doris.inject(cdc_testkit::DorisFault::BeDown(true));
        let e = service.target().await.unwrap_err();
        assert!(
            e.contains("benodes") && e.contains("auto-redirect: true"),
            "{e}"
        );
        doris.inject(cdc_testkit::DorisFault::BeDown(false));
        // Both answer their probes again and take turns again.
        let mut seen = std::collections::BTreeSet::new();
        for _ in 0..4 {
            seen.insert(service.target().await.unwrap());
        }
        assert_eq!(seen.len(), 2, "{seen:?}");
    }

    /// An FE whose `/api/backends` lists a BE that nothing answers at (the Docker case:
    /// an internal address): opening fails, retryably, naming the address.
    #[tokio::test]
    async fn listed_bes_that_do_not_answer_fail_the_open() {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let dead_port = closed.local_addr().unwrap().port();
        drop(closed);
        let fe = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let fe_port = fe.local_addr().unwrap().port();
        tokio::spawn(async move {
            let body = format!(
                r#"{{"msg":"success","code":0,"data":{{"backends":[{{"ip":"127.0.0.1","http_port":{dead_port},"is_alive":true}}]}},"count":0}}"#
            );
            while let Ok((mut conn, _)) = fe.accept().await {
                let mut buf = [0u8; 4096];
                let _ = conn.read(&mut buf).await;
                let answer = format!(
                    "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = conn.write_all(answer.as_bytes()).await;
            }
        });
        let service = DorisService::new(
            vec![format!("http://127.0.0.1:{fe_port}")],
            vec![],
            false,
            "root".into(),
            Password::default(),
            None,
        )
        .unwrap();
        let e = service.open().await.unwrap_err();
        assert!(e.retryable, "{e:?}");
        assert!(
            e.message
                .contains(&format!("http://127.0.0.1:{dead_port}, but none answers")),
            "{e:?}"
        );
        let e = service.target().await.unwrap_err();
        assert!(
            e.contains("no Doris BE answers") && e.contains("benodes"),
            "{e}"
        );
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
