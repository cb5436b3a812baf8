//! HTTP to StarRocks: Stream Load, the transaction interface, `get_load_state`, error logs.
//!
//! Redirects are followed here, not by reqwest: the FE answers loads and `begin` / `load` /
//! `prepare` with 307 to a BE, and its Location carries no credentials, while reqwest drops
//! `Authorization` on a redirect to another host (a BE reached without it answers
//! `no valid Basic authorization`). Every hop gets Basic auth and the same body (a cheap
//! `Bytes` clone).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use bytes::Bytes;
use reqwest::{Client, Method, StatusCode, header};
use url::Url;

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
    password: String,
    /// How long one answer may take.
    timeout: Duration,
    /// Round-robin position, so a retry after a network error tries the next FE.
    next: AtomicUsize,
}

impl StarRocksService {
    /// A client; no I/O.
    pub(crate) fn new(
        load_urls: Vec<String>,
        username: String,
        password: String,
        connect_timeout: Duration,
        timeout: Duration,
    ) -> Result<Self, String> {
        let client = Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(connect_timeout)
            .pool_idle_timeout(Duration::from_secs(30))
            .build()
            .map_err(|e| format!("cannot build the HTTP client: {e}"))?;
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
        let mut url = Url::parse(&format!("http://{node}/"))
            .map_err(|e| format!("bad address {node}: {e}"))?;
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
        for _ in 0..=MAX_REDIRECTS {
            let mut request = self
                .client
                .request(method.clone(), url.clone())
                .basic_auth(&self.username, Some(&self.password))
                .timeout(self.timeout);
            for (k, v) in headers {
                request = request.header(*k, *v);
            }
            if let Some(b) = &body {
                request = request.body(b.clone());
            }
            let response = request.send().await.map_err(|e| describe(&e))?;
            let status = response.status();
            if is_redirect(status) {
                let location = response
                    .headers()
                    .get(header::LOCATION)
                    .and_then(|v| v.to_str().ok())
                    .ok_or_else(|| format!("HTTP {status} from {url} without a Location"))?;
                url = url
                    .join(location)
                    .map_err(|e| format!("bad redirect Location '{location}': {e}"))?;
                continue;
            }
            let body = response.bytes().await.map_err(|e| describe(&e))?;
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

fn is_redirect(status: StatusCode) -> bool {
    matches!(status.as_u16(), 301 | 302 | 303 | 307 | 308)
}

/// The error and its causes on one line.
fn describe(e: &reqwest::Error) -> String {
    let mut text = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}
