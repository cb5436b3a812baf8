//! The BE: stream load, 2PC, and the load error log.

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Instant;

use hyper::body::Incoming;
use hyper::{Method, Request, StatusCode};

use super::http::{ConnCtl, Reset, Resp};
use super::load::{self, LoadRequest};
use super::response::{LoadResponse, status_msg};
use super::routes::{self, Auth};
use super::state::{FaultAction, RequestKind, State};

/// What the BE handlers share.
#[derive(Debug)]
pub(crate) struct Backend {
    pub(crate) state: Arc<Mutex<State>>,
    /// Which BE this is (its place in the emulator's list), for the request counters.
    pub(crate) index: usize,
    pub(crate) port: std::sync::atomic::AtomicU16,
    /// `http` or `https`, for the `ErrorURL`s.
    pub(crate) scheme: &'static str,
}

impl Backend {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn base_url(&self) -> String {
        format!(
            "{}://127.0.0.1:{}",
            self.scheme,
            self.port.load(std::sync::atomic::Ordering::Relaxed)
        )
    }

    /// Routes a BE request.
    pub(crate) async fn handle(
        self: Arc<Self>,
        req: Request<Incoming>,
        conn: Arc<ConnCtl>,
    ) -> Result<Resp, Reset> {
        let seg = routes::segments(&req);
        let seg: Vec<&str> = seg.iter().map(String::as_str).collect();
        match (req.method().clone(), seg.as_slice()) {
            (Method::PUT, ["api", db, table, "_stream_load"]) => {
                State::count_at(&mut self.lock().be_stream_loads, self.index);
                let (db, table) = ((*db).to_string(), (*table).to_string());
                self.stream_load(req, conn, db, table).await
            }
            (Method::PUT, ["api", db, "_stream_load_2pc"] | ["api", db, _, "_stream_load_2pc"]) => {
                State::count_at(&mut self.lock().be_two_phase, self.index);
                let db = (*db).to_string();
                self.two_phase(&req, &conn, &db)
            }
            (Method::GET, ["api", "_load_error_log"]) => {
                let file = routes::query_param(&req, "file").unwrap_or_default();
                let log = self.lock().error_logs.get(&file).cloned();
                Ok(match log {
                    Some(text) => routes::text(StatusCode::OK, text),
                    None => routes::text(
                        StatusCode::NOT_FOUND,
                        format!("error log {file} not found\n"),
                    ),
                })
            }
            (Method::GET | Method::HEAD, [""]) => Ok(routes::text(StatusCode::OK, "OK\n".into())),
            _ => Ok(routes::text(StatusCode::NOT_FOUND, "Not Found\n".into())),
        }
    }

    /// Applies a fault matched by a 2PC request.
    fn pre_fault(&self, conn: &ConnCtl) -> Result<Option<Resp>, Reset> {
        let fault = self.lock().take_fault(RequestKind::TwoPc);
        match fault {
            Some(FaultAction::ServerError(code)) => Ok(Some(injected_error(code))),
            Some(FaultAction::Reset) => {
                conn.arm_reset();
                Err(Reset)
            }
            _ => Ok(None),
        }
    }

    async fn stream_load(
        self: Arc<Self>,
        req: Request<Incoming>,
        conn: Arc<ConnCtl>,
        db: String,
        table: String,
    ) -> Result<Resp, Reset> {
        let started = Instant::now();
        let headers = routes::header_map(req.headers());
        let auth = match routes::basic_auth(req.headers()) {
            Auth::Basic(u, p) => Some((u, p)),
            Auth::Missing | Auth::Invalid => None,
        };
        let lreq = LoadRequest {
            db,
            table,
            headers,
            auth,
        };
        let kind = RequestKind::Load {
            two_phase: lreq.two_phase(),
        };
        // faults that act before anything is read
        let fault = self.lock().take_fault(kind);
        let mut publish_timeout = false;
        let mut too_many_versions = false;
        let mut delay = None;
        match fault {
            Some(FaultAction::ServerError(code)) => return Ok(injected_error(code)),
            Some(FaultAction::Reset) => {
                conn.arm_reset();
                return Err(Reset);
            }
            Some(FaultAction::Slow(d)) => delay = Some(d),
            Some(FaultAction::PublishTimeout) => publish_timeout = true,
            Some(FaultAction::TooManyVersions) => too_many_versions = true,
            None => {}
        }
        let begun = {
            let mut st = self.lock();
            load::begin(&mut st, &lreq)
        };
        let begun = match begun {
            Ok(b) => b,
            Err(resp) => return Ok(routes::json(resp.to_body())),
        };
        let begin_ms = started.elapsed().as_millis() as u64;
        let read_start = Instant::now();
        let data = match routes::read_body(req.into_body()).await {
            Ok(d) => d,
            Err(e) => {
                let mut st = self.lock();
                st.abort_txn(begun.txn_id, "body read failed");
                let mut r = LoadResponse::fail(
                    &begun.label,
                    format!("[INTERNAL_ERROR]read body failed: {e}"),
                );
                r.txn_id = begun.txn_id;
                return Ok(routes::json(r.to_body()));
            }
        };
        let read_ms = read_start.elapsed().as_millis() as u64;
        // Like a real BE, a load whose body arrived runs to its end even when the client
        // stops waiting (hyper drops this future when the connection closes): a client
        // that timed out and retries with the same label must find it RUNNING, then
        // FINISHED, never half done.
        let backend = Arc::clone(&self);
        let rest = tokio::spawn(async move {
            if let Some(d) = delay {
                tokio::time::sleep(d).await;
            }
            let write_start = Instant::now();
            let mut resp = {
                let mut st = backend.lock();
                let base = st
                    .error_url_base
                    .clone()
                    .unwrap_or_else(|| backend.base_url());
                load::finish(
                    &mut st,
                    &lreq,
                    &begun,
                    &data,
                    publish_timeout,
                    too_many_versions,
                    &base,
                )
            };
            resp.begin_txn_time_ms = begin_ms;
            resp.read_data_time_ms = read_ms;
            resp.write_data_time_ms = write_start.elapsed().as_millis() as u64;
            resp.load_time_ms = started.elapsed().as_millis() as u64;
            resp
        });
        match rest.await {
            Ok(resp) => Ok(routes::json(resp.to_body())),
            // Only if the runtime shuts down: nothing sensible to answer.
            Err(_) => Err(Reset),
        }
    }

    fn two_phase(&self, req: &Request<Incoming>, conn: &ConnCtl, db: &str) -> Result<Resp, Reset> {
        if let Some(resp) = self.pre_fault(conn)? {
            return Ok(resp);
        }
        let (user, password) = match routes::basic_auth(req.headers()) {
            Auth::Basic(u, p) => (u, p),
            Auth::Missing | Auth::Invalid => {
                return Ok(routes::json(status_msg(
                    "INTERNAL_ERROR",
                    "no valid Basic authorization",
                )));
            }
        };
        let h = routes::header_map(req.headers());
        let txn_id = h.get("txn_id").map(String::as_str);
        let label = h.get("label").map(String::as_str);
        if txn_id.is_none_or(str::is_empty) && label.is_none_or(str::is_empty) {
            return Ok(routes::json(status_msg(
                "INVALID_ARGUMENT",
                "No transaction id or label selected.",
            )));
        }
        let commit = match h
            .get("txn_operation")
            .map(|s| s.trim().to_ascii_lowercase())
        {
            Some(op) if op == "commit" => true,
            Some(op) if op == "abort" => false,
            _ => {
                return Ok(routes::json(status_msg(
                    "INVALID_ARGUMENT",
                    "transaction operation should be 'commit' or 'abort'",
                )));
            }
        };
        let mut st = self.lock();
        st.tick();
        if !st.check_user(&user, &password) {
            return Ok(routes::json(status_msg(
                "ANALYSIS_ERROR",
                &format!(
                    "errCode = 2, detailMessage = Access denied for user '{user}'@'127.0.0.1' (using password: {})",
                    if password.is_empty() { "NO" } else { "YES" }
                ),
            )));
        }
        if !st.catalog.databases.contains_key(db) {
            return Ok(routes::json(status_msg(
                "ANALYSIS_ERROR",
                &format!("errCode = 7, detailMessage = unknown databases, dbName={db}"),
            )));
        }
        Ok(routes::json(
            match st.two_phase(db, txn_id, label, commit) {
                Ok(msg) => status_msg("Success", &msg),
                Err(msg) => status_msg("ANALYSIS_ERROR", &msg),
            },
        ))
    }
}

fn injected_error(code: u16) -> Resp {
    let status = StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    routes::text(
        status,
        format!(
            "{} (injected by the Doris emulator)\n",
            status.canonical_reason().unwrap_or("error")
        ),
    )
}
