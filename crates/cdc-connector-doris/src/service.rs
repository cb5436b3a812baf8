//! HTTP to Doris: Stream Load, 2PC commit/abort, the FE SQL API and error logs.
//!
//! Redirects are followed here, not by reqwest: the FE answers a load with 307 to a BE and
//! puts the credentials into the Location URL (`http://user:pass@be:8040/...`), while
//! reqwest drops `Authorization` on a redirect to another host. We take the credentials out
//! of the URL, send them as Basic auth, and re-send the same body (a cheap `Bytes` clone).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use bytes::Bytes;
use percent_encoding::percent_decode_str;
use reqwest::{Client, Method, StatusCode, header};
use url::Url;

use crate::retry::{Answer, TxnOp};

/// Hops a request may be redirected before we give up (FE -> master FE -> BE at most).
const MAX_REDIRECTS: usize = 4;
/// How much of an error log is read.
const ERROR_LOG_LIMIT: usize = 64 * 1024;

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

/// Talks to the FEs and (with `benodes`) the BEs of one cluster.
#[derive(Debug)]
pub(crate) struct DorisService {
    client: Client,
    fenodes: Vec<String>,
    benodes: Vec<String>,
    username: String,
    password: String,
    /// Round-robin position, so a retry after a network error tries the next node.
    next: AtomicUsize,
}

impl DorisService {
    /// A client for these nodes; no I/O.
    pub(crate) fn new(
        fenodes: Vec<String>,
        benodes: Vec<String>,
        username: String,
        password: String,
    ) -> Result<Self, String> {
        let client = Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(Duration::from_secs(10))
            .pool_idle_timeout(Duration::from_secs(30))
            .build()
            .map_err(|e| format!("cannot build the HTTP client: {e}"))?;
        Ok(Self {
            client,
            fenodes,
            benodes,
            username,
            password,
            next: AtomicUsize::new(0),
        })
    }

    fn pick(&self, nodes: &[String]) -> String {
        let i = self.next.fetch_add(1, Ordering::Relaxed);
        nodes
            .get(i % nodes.len().max(1))
            .cloned()
            .unwrap_or_default()
    }

    fn url(node: &str, segments: &[&str]) -> Result<Url, String> {
        let mut url = Url::parse(&format!("http://{node}/"))
            .map_err(|e| format!("bad address {node}: {e}"))?;
        url.path_segments_mut()
            .map_err(|()| format!("bad address {node}"))?
            .clear()
            .extend(segments);
        Ok(url)
    }

    /// `PUT /api/{db}/{table}/_stream_load` with `body`, to a BE when `benodes` is set,
    /// else to an FE following its redirect.
    pub(crate) async fn stream_load(
        &self,
        db: &str,
        table: &str,
        headers: &[(String, String)],
        body: Bytes,
        timeout: Duration,
    ) -> Attempt {
        let node = if self.benodes.is_empty() {
            self.pick(&self.fenodes)
        } else {
            self.pick(&self.benodes)
        };
        let url = Self::url(&node, &["api", db, table, "_stream_load"])?;
        let mut all: Vec<(&str, &str)> = vec![("Expect", "100-continue")];
        all.extend(headers.iter().map(|(k, v)| (k.as_str(), v.as_str())));
        self.send(Method::PUT, url, &all, Some(body), timeout).await
    }

    /// `PUT /api/{db}/_stream_load_2pc` committing or aborting by transaction id, or by
    /// label when the id is unknown.
    pub(crate) async fn two_phase(
        &self,
        db: &str,
        op: TxnOp,
        label: &str,
        txn_id: Option<i64>,
    ) -> Attempt {
        let node = self.pick(&self.fenodes);
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
        self.send(
            Method::PUT,
            url,
            &headers,
            Some(Bytes::new()),
            Duration::from_secs(60),
        )
        .await
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

    /// The first line of a load's error log (the first rejected row and why), if readable.
    pub(crate) async fn first_error_line(&self, error_url: &str) -> Option<String> {
        let url = Url::parse(error_url).ok()?;
        let answer = self
            .send(Method::GET, url, &[], None, Duration::from_secs(10))
            .await
            .ok()?;
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
        timeout: Duration,
    ) -> Attempt {
        let mut user = self.username.clone();
        let mut password = self.password.clone();
        for _ in 0..=MAX_REDIRECTS {
            if !url.username().is_empty() {
                user = percent_decode_str(url.username())
                    .decode_utf8_lossy()
                    .into_owned();
                password = percent_decode_str(url.password().unwrap_or(""))
                    .decode_utf8_lossy()
                    .into_owned();
                let _ = url.set_username("");
                let _ = url.set_password(None);
            }
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

/// The error and its causes on one line (reqwest's own message hides the cause).
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
