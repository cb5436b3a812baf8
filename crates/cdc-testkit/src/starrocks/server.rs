//! The FE and BE HTTP handlers: stream load, the transaction interface, `get_load_state`
//! and the error log.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU16, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use hyper::body::Incoming;
use hyper::header::{HeaderValue, LOCATION, WWW_AUTHENTICATE};
use hyper::{Method, Request, StatusCode};
use serde_json::{Map, Value, json};

use super::model::{StarRocksLoadRecord, StarRocksTxnState};
use super::state::{
    FaultAction, LOAD_PARAMS, RequestKind, State, convert, max_filter_ratio, too_many_filtered,
};
use crate::doris::http::{ConnCtl, Reset, Resp};
use crate::doris::routes::{self, Auth};

/// What both servers share.
#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) state: Arc<Mutex<State>>,
    pub(crate) be_port: AtomicU16,
    /// `http` or `https`, for the redirects' Location.
    pub(crate) scheme: &'static str,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        let mut st = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        st.tick();
        st
    }

    fn be_port(&self) -> u16 {
        self.be_port.load(Ordering::Relaxed)
    }
}

/// Pretty JSON plus a newline, as the BE prints it.
fn pretty(m: Map<String, Value>) -> Resp {
    let text = serde_json::to_string_pretty(&Value::Object(m)).unwrap_or_default();
    routes::json(text + "\n")
}

fn obj(pairs: &[(&str, Value)]) -> Map<String, Value> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_string(), v.clone()))
        .collect()
}

fn txn_result(status: &str, message: &str, label: &str, txn_id: Option<i64>) -> Resp {
    let mut m = Map::new();
    if let Some(id) = txn_id {
        m.insert("TxnId".into(), json!(id));
    }
    m.insert("Label".into(), json!(label));
    m.insert("Status".into(), json!(status));
    m.insert("Message".into(), json!(message));
    pretty(m)
}

fn injected_error(code: u16) -> Resp {
    routes::text(
        StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
        format!("injected HTTP {code} by the StarRocks emulator\n"),
    )
}

fn unauthorized(user: &str) -> Resp {
    let body = json!({
        "status": "FAILED",
        "code": "1",
        "msg": format!("Access denied for {user}@127.0.0.1"),
        "message": format!("Access denied for {user}@127.0.0.1"),
    })
    .to_string();
    let mut r = routes::respond(StatusCode::UNAUTHORIZED, "application/json", body);
    r.headers_mut().insert(
        WWW_AUTHENTICATE,
        HeaderValue::from_static("Basic realm=\"\""),
    );
    r
}

fn redirect(location: &str) -> Resp {
    let mut r = routes::respond(
        StatusCode::TEMPORARY_REDIRECT,
        "text/html;charset=utf-8",
        String::new(),
    );
    if let Ok(v) = HeaderValue::from_str(location) {
        r.headers_mut().insert(LOCATION, v);
    }
    r
}

/// The FE's redirect of a request that carries a body: StarRocks' FE decides from the
/// headers alone (LoadAction / TransactionLoadAction redirect on `Expect: 100-continue`
/// without reading the content), answers 307 and closes the connection, so a client that
/// sends the body anyway (instead of waiting for `100 Continue`) has it cut off: a large
/// body ends in "Broken pipe" or a reset, as measured against a FE stand-in. Modelled by
/// answering before the body is read, then closing with a reset (SO_LINGER 0), the less
/// convenient of the two ways a socket with unread data closes.
fn redirect_unread_body(location: &str, has_body: bool, conn: &ConnCtl) -> Resp {
    let mut r = redirect(location);
    if has_body {
        r.headers_mut()
            .insert(hyper::header::CONNECTION, HeaderValue::from_static("close"));
        conn.arm_reset();
    }
    r
}

/// Applies a fault before anything happens; `Ok(Some(delay))` for a slow request.
fn fault(
    st: &mut State,
    kind: RequestKind,
    conn: &ConnCtl,
) -> Result<Result<Option<FaultAction>, Resp>, Reset> {
    match st.take_fault(kind) {
        Some(FaultAction::ServerError(code)) => Ok(Err(injected_error(code))),
        Some(FaultAction::Reset) => {
            conn.arm_reset();
            Err(Reset)
        }
        other => Ok(Ok(other)),
    }
}

fn header_secs(
    headers: &HashMap<String, String>,
    name: &str,
    default: u64,
) -> Result<Duration, String> {
    match headers.get(name) {
        None => Ok(Duration::from_secs(default)),
        Some(v) => v
            .trim()
            .parse::<u64>()
            .ok()
            .filter(|s| (1..=259_200).contains(s))
            .map(Duration::from_secs)
            .ok_or_else(|| format!("Invalid {name}: {v}")),
    }
}

impl Shared {
    /// The FE (`:8030`).
    #[allow(clippy::unused_async)] // the HTTP handler type wants a future
    pub(crate) async fn fe(
        self: Arc<Self>,
        req: Request<Incoming>,
        conn: Arc<ConnCtl>,
    ) -> Result<Resp, Reset> {
        let seg = routes::segments(&req);
        let seg: Vec<&str> = seg.iter().map(String::as_str).collect();
        let method = req.method().clone();
        if matches!(seg.as_slice(), [""]) {
            return Ok(routes::text(StatusCode::OK, "OK\n".into()));
        }
        // Every API call authenticates at the FE: a bad password is a real 401.
        let user = match routes::basic_auth(req.headers()) {
            Auth::Basic(u, p) => {
                if !self.lock().check_user(&u, &p) {
                    return Ok(unauthorized(&u));
                }
                u
            }
            Auth::Missing | Auth::Invalid => return Ok(unauthorized("")),
        };
        let _ = user;
        if matches!(
            seg.as_slice(),
            ["api", "transaction", _] | ["api", _, _, "_stream_load"]
        ) {
            self.lock().fe_requests += 1;
        }
        let headers = routes::header_map(req.headers());
        let query = req.uri().query().unwrap_or("").to_string();
        let be = self.be_port();
        let has_body = headers
            .get("content-length")
            .is_some_and(|l| l.trim() != "0")
            || headers.contains_key("transfer-encoding");
        if has_body
            && matches!(
                seg.as_slice(),
                ["api", "transaction", _] | ["api", _, _, "_stream_load"]
            )
        {
            self.lock().fe_body_requests += 1;
        }
        match (method, seg.as_slice()) {
            (Method::PUT, ["api", db, table, "_stream_load"]) => {
                if !headers.contains_key("expect") {
                    return Ok(pretty(obj(&[
                        ("Status", json!("FAILED")),
                        (
                            "Message",
                            json!(
                                "class com.starrocks.common.DdlException: There is no 100-continue header"
                            ),
                        ),
                    ])));
                }
                if !self.lock().dbs.contains_key(*db) {
                    return Ok(pretty(obj(&[
                        ("Status", json!("FAILED")),
                        ("Message", json!(format!("Database[{db}] does not exist"))),
                    ])));
                }
                Ok(redirect_unread_body(
                    &format!(
                        "{}://127.0.0.1:{be}/api/{db}/{table}/_stream_load?{query}",
                        self.scheme
                    ),
                    has_body,
                    &conn,
                ))
            }
            (Method::POST | Method::PUT, ["api", "transaction", op]) => {
                let label = headers.get("label").cloned().unwrap_or_default();
                if label.is_empty() {
                    return Ok(txn_result("FAILED", "Empty label.", "", None));
                }
                let Some(db) = headers.get("db").cloned().filter(|d| !d.is_empty()) else {
                    return Ok(txn_result("FAILED", "No database selected.", &label, None));
                };
                match *op {
                    "begin" | "load" | "prepare" => Ok(redirect_unread_body(
                        &format!(
                            "{}://127.0.0.1:{be}/api/transaction/{op}?{query}",
                            self.scheme
                        ),
                        has_body,
                        &conn,
                    )),
                    "commit" | "rollback" => {
                        let commit = *op == "commit";
                        let kind = if commit {
                            RequestKind::Commit
                        } else {
                            RequestKind::Control
                        };
                        let mut st = self.lock();
                        let action = match fault(&mut st, kind, &conn)? {
                            Ok(a) => a,
                            Err(resp) => return Ok(resp),
                        };
                        Ok(finish_txn(
                            &mut st,
                            &db,
                            &label,
                            commit,
                            action == Some(FaultAction::PublishTimeout),
                        ))
                    }
                    other => Ok(txn_result(
                        "FAILED",
                        &format!("Unsupported operation: {other}"),
                        &label,
                        None,
                    )),
                }
            }
            (Method::GET, ["api", db, "get_load_state"]) => {
                let label = routes::query_param(&req, "label").unwrap_or_default();
                let st = self.lock();
                if !st.dbs.contains_key(*db) {
                    return Ok(routes::json(
                        json!({"status": "FAILED", "msg": format!("Database[{db}] does not exist")}).to_string(),
                    ));
                }
                let state = st
                    .txn_by_label(db, &label)
                    .map_or("UNKNOWN", |t| t.state.name());
                Ok(routes::json(
                    json!({"status": "OK", "msg": "Success", "state": state, "reason": ""})
                        .to_string(),
                ))
            }
            _ => Ok(routes::text(StatusCode::NOT_FOUND, "Not Found\n".into())),
        }
    }

    /// The BE (`:8040`). Requests run in their own task, so a load finishes even when
    /// its client stopped waiting, as on a real BE.
    pub(crate) async fn be(
        self: Arc<Self>,
        req: Request<Incoming>,
        conn: Arc<ConnCtl>,
    ) -> Result<Resp, Reset> {
        tokio::spawn(self.be_inner(req, conn))
            .await
            .unwrap_or(Err(Reset))
    }

    async fn be_inner(
        self: Arc<Self>,
        req: Request<Incoming>,
        conn: Arc<ConnCtl>,
    ) -> Result<Resp, Reset> {
        let seg = routes::segments(&req);
        let seg: Vec<&str> = seg.iter().map(String::as_str).collect();
        let method = req.method().clone();
        match (method, seg.as_slice()) {
            (Method::GET, ["api", "_load_error_log"]) => {
                let file = routes::query_param(&req, "file").unwrap_or_default();
                let log = self.lock().error_logs.get(&file).cloned();
                Ok(match log {
                    Some(text) => routes::text(StatusCode::OK, text),
                    None => routes::text(StatusCode::NOT_FOUND, "Not Found\n".into()),
                })
            }
            (Method::GET | Method::HEAD, [""]) => Ok(routes::text(StatusCode::OK, "OK\n".into())),
            (Method::PUT, ["api", db, table, "_stream_load"]) => {
                let (db, table) = ((*db).to_string(), (*table).to_string());
                self.stream_load(req, &conn, db, table).await
            }
            (Method::POST | Method::PUT, ["api", "transaction", op]) => {
                let op = (*op).to_string();
                self.transaction(req, &conn, &op).await
            }
            _ => Ok(routes::text(StatusCode::NOT_FOUND, "Not Found\n".into())),
        }
    }

    /// The BE's own auth check: a request whose client dropped `Authorization` on the
    /// redirect gets `no valid Basic authorization`.
    fn be_auth(&self, req: &Request<Incoming>) -> Option<String> {
        match routes::basic_auth(req.headers()) {
            Auth::Basic(u, p) => {
                if self.lock().check_user(&u, &p) {
                    None
                } else {
                    Some(format!("Access denied for user '{u}'@'127.0.0.1'"))
                }
            }
            Auth::Missing | Auth::Invalid => Some("no valid Basic authorization".into()),
        }
    }

    async fn stream_load(
        &self,
        req: Request<Incoming>,
        conn: &ConnCtl,
        db: String,
        table: String,
    ) -> Result<Resp, Reset> {
        let started = Instant::now();
        let headers = routes::header_map(req.headers());
        let label = headers
            .get("label")
            .cloned()
            .unwrap_or_else(|| format!("auto_{}", self.lock().next_id()));
        let fail = |msg: &str, txn: i64| {
            pretty(obj(&[
                ("TxnId", json!(txn)),
                ("Label", json!(label)),
                ("Status", json!("Fail")),
                ("Message", json!(msg)),
                ("NumberTotalRows", json!(0)),
                ("NumberLoadedRows", json!(0)),
                ("NumberFilteredRows", json!(0)),
                ("NumberUnselectedRows", json!(0)),
                ("LoadBytes", json!(0)),
                ("LoadTimeMs", json!(0)),
                ("BeginTxnTimeMs", json!(0)),
                ("StreamLoadPlanTimeMs", json!(0)),
                ("ReadDataTimeMs", json!(0)),
                ("WriteDataTimeMs", json!(0)),
                ("CommitAndPublishTimeMs", json!(0)),
            ]))
        };
        if let Some(msg) = self.be_auth(&req) {
            return Ok(fail(&msg, -1));
        }
        let action = {
            let mut st = self.lock();
            match fault(&mut st, RequestKind::Data, conn)? {
                Ok(a) => a,
                Err(resp) => return Ok(resp),
            }
        };
        let timeout = match header_secs(&headers, "timeout", 600) {
            Ok(t) => t,
            Err(m) => return Ok(fail(&m, -1)),
        };
        let txn_id = {
            let mut st = self.lock();
            if st.table(&db, &table).is_none() {
                return Ok(fail(
                    &format!("Table '{table}' does not exist in database '{db}'"),
                    -1,
                ));
            }
            match st.begin(&db, &table, &label, timeout, timeout) {
                Ok(id) => id,
                Err((existing, msg)) => {
                    st.load_log.push(StarRocksLoadRecord {
                        label: label.clone(),
                        db: db.clone(),
                        table: table.clone(),
                        transactional: false,
                        status: "Label Already Exists".into(),
                        message: msg.clone(),
                        total_rows: 0,
                    });
                    return Ok(pretty(obj(&[
                        ("TxnId", json!(-1)),
                        ("Label", json!(label)),
                        ("Status", json!("Label Already Exists")),
                        ("ExistingJobStatus", json!(existing)),
                        ("Message", json!(msg)),
                        ("NumberTotalRows", json!(0)),
                        ("NumberLoadedRows", json!(0)),
                        ("NumberFilteredRows", json!(0)),
                        ("NumberUnselectedRows", json!(0)),
                        ("LoadBytes", json!(0)),
                        ("LoadTimeMs", json!(0)),
                    ])));
                }
            }
        };
        let data = match routes::read_body(req.into_body()).await {
            Ok(d) => d,
            Err(e) => {
                self.lock().abort(txn_id, "body read failed");
                return Ok(fail(&format!("read body failed: {e}"), txn_id));
            }
        };
        if let Some(FaultAction::Slow(d)) = action {
            if let Some(t) = self.lock().txns.get_mut(&txn_id) {
                t.busy = true;
            }
            tokio::time::sleep(d).await;
        }
        let mut st = self.lock();
        if let Some(t) = st.txns.get_mut(&txn_id) {
            t.busy = false;
        }
        let ratio = match max_filter_ratio(&headers) {
            Ok(r) => r,
            Err(m) => {
                st.abort(txn_id, &m);
                return Ok(fail(&m, txn_id));
            }
        };
        let json_max = st.options.json_max_bytes;
        let converted = match st.table(&db, &table) {
            None => Err(super::state::LoadFailure {
                message: format!("Table '{table}' does not exist"),
                total: 0,
            }),
            Some(t) => convert(t, &headers, &data, json_max),
        };
        let record = |st: &mut State, status: &str, message: &str, total: u64| {
            st.load_log.push(StarRocksLoadRecord {
                label: label.clone(),
                db: db.clone(),
                table: table.clone(),
                transactional: false,
                status: status.into(),
                message: message.into(),
                total_rows: total,
            });
        };
        let c = match converted {
            Ok(c) => c,
            Err(f) => {
                st.abort(txn_id, &f.message);
                record(&mut st, "Fail", &f.message, f.total);
                return Ok(fail(&f.message, txn_id));
            }
        };
        let be = self.be_port();
        let error_url = st.save_error_log(be, &c.error_lines);
        let (status, message) = if too_many_filtered(c.total, c.filtered, ratio) {
            st.abort(txn_id, "too many filtered rows");
            ("Fail", "too many filtered rows")
        } else {
            if let Some(t) = st.txns.get_mut(&txn_id) {
                t.ops = c.ops;
            }
            st.commit(txn_id);
            ("Success", "OK")
        };
        record(&mut st, status, message, c.total);
        let mut m = obj(&[
            ("TxnId", json!(txn_id)),
            ("Label", json!(label)),
            ("Status", json!(status)),
            ("Message", json!(message)),
            ("NumberTotalRows", json!(c.total)),
            ("NumberLoadedRows", json!(c.total - c.filtered)),
            ("NumberFilteredRows", json!(c.filtered)),
            ("NumberUnselectedRows", json!(0)),
            ("LoadBytes", json!(data.len())),
            ("LoadTimeMs", json!(started.elapsed().as_millis() as u64)),
            ("BeginTxnTimeMs", json!(0)),
            ("StreamLoadPlanTimeMs", json!(0)),
            ("ReadDataTimeMs", json!(0)),
            ("WriteDataTimeMs", json!(0)),
            ("CommitAndPublishTimeMs", json!(0)),
        ]);
        if let Some(url) = error_url {
            m.insert("ErrorURL".into(), json!(url));
        }
        Ok(pretty(m))
    }

    async fn transaction(
        &self,
        req: Request<Incoming>,
        conn: &ConnCtl,
        op: &str,
    ) -> Result<Resp, Reset> {
        let headers = routes::header_map(req.headers());
        let label = headers.get("label").cloned().unwrap_or_default();
        if let Some(msg) = self.be_auth(&req) {
            return Ok(txn_result("FAILED", &msg, &label, None));
        }
        if label.is_empty() {
            return Ok(txn_result("INVALID_ARGUMENT", "Empty label.", "", None));
        }
        let Some(db) = headers.get("db").cloned().filter(|d| !d.is_empty()) else {
            return Ok(txn_result(
                "INVALID_ARGUMENT",
                "No database selected.",
                &label,
                None,
            ));
        };
        let kind = match op {
            "load" => RequestKind::Data,
            "commit" => RequestKind::Commit,
            _ => RequestKind::Control,
        };
        let action = {
            let mut st = self.lock();
            match fault(&mut st, kind, conn)? {
                Ok(a) => a,
                Err(resp) => return Ok(resp),
            }
        };
        match op {
            "begin" => {
                let table = headers.get("table").cloned().unwrap_or_default();
                let timeout = match header_secs(&headers, "timeout", 600) {
                    Ok(t) => t,
                    Err(m) => return Ok(txn_result("INVALID_ARGUMENT", &m, &label, None)),
                };
                let idle =
                    match header_secs(&headers, "idle_transaction_timeout", timeout.as_secs()) {
                        Ok(t) => t,
                        Err(m) => return Ok(txn_result("INVALID_ARGUMENT", &m, &label, None)),
                    };
                let mut st = self.lock();
                if table.is_empty() {
                    return Ok(txn_result(
                        "INVALID_ARGUMENT",
                        "No table selected.",
                        &label,
                        None,
                    ));
                }
                if st.table(&db, &table).is_none() {
                    return Ok(txn_result(
                        "FAILED",
                        &format!("Table '{table}' does not exist in database '{db}'"),
                        &label,
                        None,
                    ));
                }
                match st.begin(&db, &table, &label, timeout, idle) {
                    Ok(id) => Ok(pretty(obj(&[
                        ("Status", json!("OK")),
                        ("Message", json!("")),
                        ("Label", json!(label)),
                        ("TxnId", json!(id)),
                        ("BeginTxnTimeMs", json!(0)),
                    ]))),
                    Err((existing, msg)) => Ok(pretty(obj(&[
                        ("Status", json!("LABEL_ALREADY_EXISTS")),
                        ("ExistingJobStatus", json!(existing)),
                        ("Message", json!(msg)),
                    ]))),
                }
            }
            "load" => self.txn_load(req, &db, &label, headers, action).await,
            "prepare" => {
                let mut st = self.lock();
                let be = self.be_port();
                Ok(prepare(&mut st, &db, &label, be))
            }
            "commit" | "rollback" => {
                let mut st = self.lock();
                Ok(finish_txn(
                    &mut st,
                    &db,
                    &label,
                    op == "commit",
                    action == Some(FaultAction::PublishTimeout),
                ))
            }
            other => Ok(txn_result(
                "INVALID_ARGUMENT",
                &format!("Unsupported operation: {other}"),
                &label,
                None,
            )),
        }
    }

    async fn txn_load(
        &self,
        req: Request<Incoming>,
        db: &str,
        label: &str,
        headers: HashMap<String, String>,
        action: Option<FaultAction>,
    ) -> Result<Resp, Reset> {
        let not_exists = |id: Option<i64>| {
            txn_result(
                "TXN_NOT_EXISTS",
                &format!("transaction with label {label} not exists"),
                label,
                id,
            )
        };
        let params: std::collections::BTreeMap<String, String> = LOAD_PARAMS
            .iter()
            .filter_map(|k| headers.get(*k).map(|v| ((*k).to_string(), v.clone())))
            .collect();
        let txn_id = {
            let mut st = self.lock();
            let Some(t) = st.txn_by_label_mut(db, label) else {
                return Ok(not_exists(None));
            };
            match t.state {
                StarRocksTxnState::Prepare if t.busy => {
                    return Ok(txn_result(
                        "TXN_IN_PROCESSING",
                        "Transaction in processing, please retry later",
                        label,
                        Some(t.id),
                    ));
                }
                StarRocksTxnState::Prepare => {}
                StarRocksTxnState::Aborted => return Ok(not_exists(Some(t.id))),
                _ => {
                    return Ok(txn_result(
                        "FAILED",
                        &format!(
                            "Transaction {} has been prepared, can not load more data",
                            t.id
                        ),
                        label,
                        Some(t.id),
                    ));
                }
            }
            if let Some(p) = &t.load_params {
                if *p != params {
                    return Ok(txn_result(
                        "INVALID_ARGUMENT",
                        "all load requests of a transaction must use the same parameters",
                        label,
                        Some(t.id),
                    ));
                }
            }
            t.busy = true;
            t.id
        };
        let data = routes::read_body(req.into_body()).await;
        if let Some(FaultAction::Slow(d)) = action {
            tokio::time::sleep(d).await;
        }
        let mut st = self.lock();
        let json_max = st.options.json_max_bytes;
        let Some(t) = st.txns.get_mut(&txn_id) else {
            return Ok(not_exists(None));
        };
        t.busy = false;
        if t.state != StarRocksTxnState::Prepare {
            return Ok(not_exists(Some(txn_id)));
        }
        let data = match data {
            Ok(d) => d,
            Err(e) => {
                return Ok(txn_result(
                    "INTERNAL_ERROR",
                    &format!("read body failed: {e}"),
                    label,
                    Some(txn_id),
                ));
            }
        };
        let (tdb, ttable) = (t.db.clone(), t.table.clone());
        let ratio = max_filter_ratio(&headers).unwrap_or(0.0);
        let converted = match st.table(&tdb, &ttable) {
            Some(tbl) => convert(tbl, &headers, &data, json_max),
            None => Err(super::state::LoadFailure {
                message: format!("Table '{ttable}' does not exist"),
                total: 0,
            }),
        };
        let total = converted.as_ref().map_or_else(|f| f.total, |c| c.total);
        let (status, message) = match converted {
            Err(f) => {
                st.abort(txn_id, &f.message);
                ("FAILED".to_string(), f.message)
            }
            Ok(c) => {
                if let Some(t) = st.txns.get_mut(&txn_id) {
                    t.ops.extend(c.ops);
                    t.total_rows += c.total;
                    t.filtered_rows += c.filtered;
                    t.error_lines.extend(c.error_lines);
                    t.bytes += data.len() as u64;
                    t.loads += 1;
                    t.max_filter_ratio = ratio;
                    t.load_params = Some(params);
                    t.last_active = Instant::now();
                }
                ("OK".to_string(), String::new())
            }
        };
        st.load_log.push(StarRocksLoadRecord {
            label: label.to_string(),
            db: db.to_string(),
            table: ttable,
            transactional: true,
            status: status.clone(),
            message: message.clone(),
            total_rows: total,
        });
        let mut m = obj(&[
            ("TxnId", json!(txn_id)),
            ("Label", json!(label)),
            ("Status", json!(status)),
            ("Message", json!(message)),
        ]);
        if status == "OK" {
            m.insert("LoadBytes".into(), json!(data.len()));
            m.insert("StreamLoadPlanTimeMs".into(), json!(0));
            m.insert("ReceivedDataTimeMs".into(), json!(0));
        }
        Ok(pretty(m))
    }
}

fn counters(t: &super::state::Txn) -> Vec<(&'static str, Value)> {
    vec![
        ("NumberTotalRows", json!(t.total_rows)),
        ("NumberLoadedRows", json!(t.total_rows - t.filtered_rows)),
        ("NumberFilteredRows", json!(t.filtered_rows)),
        ("NumberUnselectedRows", json!(0)),
        ("LoadBytes", json!(t.bytes)),
        ("LoadTimeMs", json!(0)),
        ("StreamLoadPlanTimeMs", json!(0)),
        ("ReceivedDataTimeMs", json!(0)),
        ("WriteDataTimeMs", json!(0)),
        ("CommitAndPublishTimeMs", json!(0)),
    ]
}

fn ok_with_counters(t: &super::state::Txn, message: &str) -> Resp {
    let mut m = obj(&[
        ("Status", json!("OK")),
        ("Message", json!(message)),
        ("Label", json!(t.label)),
        ("TxnId", json!(t.id)),
    ]);
    for (k, v) in counters(t) {
        m.insert(k.into(), v);
    }
    pretty(m)
}

/// `prepare`: checks the data quality and makes the rows durable but invisible.
fn prepare(st: &mut State, db: &str, label: &str, be_port: u16) -> Resp {
    let Some(t) = st.txn_by_label(db, label) else {
        return txn_result(
            "TXN_NOT_EXISTS",
            &format!("transaction with label {label} not exists"),
            label,
            None,
        );
    };
    let id = t.id;
    match t.state {
        StarRocksTxnState::Prepare if t.busy => {
            return txn_result(
                "TXN_IN_PROCESSING",
                "Transaction in processing, please retry later",
                label,
                Some(id),
            );
        }
        StarRocksTxnState::Prepare => {}
        StarRocksTxnState::Prepared => return ok_with_counters(t, ""),
        StarRocksTxnState::Aborted => {
            return txn_result(
                "TXN_NOT_EXISTS",
                &format!("transaction with label {label} not exists"),
                label,
                Some(id),
            );
        }
        StarRocksTxnState::Visible => {
            return txn_result(
                "FAILED",
                &format!("Transaction {id} has already committed, label is {label}"),
                label,
                Some(id),
            );
        }
    }
    if t.loads == 0 {
        return txn_result(
            "FAILED",
            &format!("transaction {id} hasn't send any data yet"),
            label,
            Some(id),
        );
    }
    if too_many_filtered(t.total_rows, t.filtered_rows, t.max_filter_ratio) {
        let lines = t.error_lines.clone();
        let url = st.save_error_log(be_port, &lines);
        st.abort(id, "too many filtered rows");
        let mut m = obj(&[
            ("TxnId", json!(id)),
            ("Label", json!(label)),
            ("Status", json!("FAILED")),
            ("Message", json!("too many filtered rows")),
        ]);
        if let Some(t) = st.txns.get(&id) {
            for (k, v) in counters(t) {
                m.insert(k.into(), v);
            }
        }
        if let Some(u) = url {
            m.insert("ErrorURL".into(), json!(u));
        }
        return pretty(m);
    }
    // Rows filtered within the ratio: the answer is OK with the counters and the ErrorURL
    // (StreamLoadContext::to_resp_json writes `ErrorURL` whenever `error_url` is set,
    // be/src/runtime/stream_load/stream_load_context.cpp; newer BEs set it before the
    // prepare answers).
    let url = if t.filtered_rows > 0 {
        let lines = t.error_lines.clone();
        st.save_error_log(be_port, &lines)
    } else {
        None
    };
    let Some(t) = st.txns.get_mut(&id) else {
        return txn_result("TXN_NOT_EXISTS", "transaction vanished", label, None);
    };
    t.state = StarRocksTxnState::Prepared;
    t.prepared_at = Some(Instant::now());
    match url {
        Some(u) => with_error_url(t, u),
        None => ok_with_counters(t, ""),
    }
}

/// [`ok_with_counters`] plus the `ErrorURL` of the rows the load filtered.
fn with_error_url(t: &super::state::Txn, url: String) -> Resp {
    let mut m = obj(&[
        ("Status", json!("OK")),
        ("Message", json!("")),
        ("Label", json!(t.label)),
        ("TxnId", json!(t.id)),
    ]);
    for (k, v) in counters(t) {
        m.insert(k.into(), v);
    }
    m.insert("ErrorURL".into(), json!(url));
    pretty(m)
}

/// `commit` or `rollback` by label.
fn finish_txn(st: &mut State, db: &str, label: &str, commit: bool, publish_timeout: bool) -> Resp {
    let Some(t) = st.txn_by_label(db, label) else {
        return txn_result(
            "TXN_NOT_EXISTS",
            &format!("transaction with label {label} not exists"),
            label,
            None,
        );
    };
    let id = t.id;
    if t.busy {
        return txn_result(
            "TXN_IN_PROCESSING",
            "Transaction in processing, please retry later",
            label,
            Some(id),
        );
    }
    match (t.state, commit) {
        (StarRocksTxnState::Visible, true) => txn_result(
            "OK",
            &format!("Transaction {id} has already committed, label is {label}"),
            label,
            Some(id),
        ),
        (StarRocksTxnState::Aborted, true) => txn_result(
            "FAILED",
            &format!("Can not commit ABORTED transaction {id}, label is {label}"),
            label,
            Some(id),
        ),
        (StarRocksTxnState::Prepare, true) if t.loads == 0 => txn_result(
            "FAILED",
            &format!("transaction {id} hasn't send any data yet"),
            label,
            Some(id),
        ),
        (StarRocksTxnState::Prepare | StarRocksTxnState::Prepared, true) => {
            if t.state == StarRocksTxnState::Prepare
                && too_many_filtered(t.total_rows, t.filtered_rows, t.max_filter_ratio)
            {
                st.abort(id, "too many filtered rows");
                return txn_result("FAILED", "too many filtered rows", label, Some(id));
            }
            st.commit(id);
            let Some(t) = st.txns.get(&id) else {
                return txn_result("OK", "", label, Some(id));
            };
            if publish_timeout {
                let mut m = obj(&[
                    ("Status", json!("PUBLISH_TIMEOUT")),
                    (
                        "Message",
                        json!("transaction commit successfully, BUT data will be visible later"),
                    ),
                    ("Label", json!(label)),
                    ("TxnId", json!(id)),
                ]);
                for (k, v) in counters(t) {
                    m.insert(k.into(), v);
                }
                return pretty(m);
            }
            ok_with_counters(t, "")
        }
        (StarRocksTxnState::Aborted, false) => txn_result(
            "OK",
            &format!("Transaction {id} has already aborted, label is {label}"),
            label,
            Some(id),
        ),
        (StarRocksTxnState::Visible, false) => txn_result(
            "FAILED",
            &format!("Can not abort COMMITTED transaction {id}, label is {label}"),
            label,
            Some(id),
        ),
        (_, false) => {
            st.abort(id, "rolled back by the client");
            pretty(obj(&[
                ("Status", json!("OK")),
                ("Message", json!("")),
                ("Label", json!(label)),
                ("TxnId", json!(id)),
            ]))
        }
    }
}
