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
use cdc_stream_load::http::{describe, is_redirect, take_credentials};
pub(crate) use cdc_stream_load::http::{follow, install_crypto_provider, read_ca};
use reqwest::{Client, Method, header};
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
