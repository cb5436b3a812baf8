//! The FE: stream-load and 2PC redirects, the HTTP SQL API, and a few status endpoints.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Instant;

use hyper::body::Incoming;
use hyper::header::{HeaderValue, LOCATION};
use hyper::{Method, Request, StatusCode};
use serde_json::{Value, json};

use super::ddl;
use super::http::{ConnCtl, Reset, Resp, Server};
use super::response::{fe_failed, rest_body};
use super::routes::{self, Auth};
use super::state::State;

/// What the FE handlers share.
#[derive(Debug)]
pub(crate) struct Frontend {
    pub(crate) state: Arc<Mutex<State>>,
    /// The BEs, in the order of `DorisEmulator::be_addresses`.
    pub(crate) backends: Vec<Arc<Server>>,
    /// Round-robin position of the redirects.
    pub(crate) next_be: AtomicUsize,
    /// `http` or `https`, for the redirects' Location.
    pub(crate) scheme: &'static str,
}

impl Frontend {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Routes an FE request.
    pub(crate) async fn handle(
        self: Arc<Self>,
        req: Request<Incoming>,
        _conn: Arc<ConnCtl>,
    ) -> Result<Resp, Reset> {
        let seg = routes::segments(&req);
        let seg: Vec<&str> = seg.iter().map(String::as_str).collect();
        Ok(match (req.method().clone(), seg.as_slice()) {
            (Method::PUT, ["api", db, table, "_stream_load"]) => {
                self.stream_load(&req, db, Some(table))
            }
            (Method::PUT, ["api", db, "_stream_load_2pc"]) => self.two_phase(&req, db),
            (Method::PUT, ["api", db, _, "_stream_load_2pc"]) => self.two_phase(&req, db),
            (Method::POST, ["api", "query", _cluster, db]) => {
                let db = (*db).to_string();
                self.query(req, &db).await
            }
            (Method::GET, ["api", "enable_light_schema_change", db, table]) => {
                match self.check_auth(&req) {
                    Err(resp) => *resp,
                    Ok(_) => {
                        let st = self.lock();
                        match st.catalog.table(db, table) {
                            Some(t) if t.light_schema_change() => {
                                routes::json(rest_body("success", 0, Value::Null))
                            }
                            Some(_) => routes::json(rest_body(
                                &format!("table {table} is not enable light schema change"),
                                1,
                                Value::Null,
                            )),
                            None => routes::json(rest_body(
                                &format!("errCode = 2, detailMessage = Unknown table '{table}'"),
                                1,
                                Value::Null,
                            )),
                        }
                    }
                }
            }
            (Method::GET, ["api", "backends"]) => match self.check_auth(&req) {
                Err(resp) => *resp,
                Ok(_) => self.backends_list(&req),
            },
            (Method::GET | Method::HEAD, [""]) => routes::text(StatusCode::OK, "OK\n".into()),
            (_, ["api", _, _, "_stream_load"]) => routes::text(
                StatusCode::METHOD_NOT_ALLOWED,
                "Method Not Allowed\n".into(),
            ),
            _ => routes::text(StatusCode::NOT_FOUND, "Not Found\n".into()),
        })
    }

    /// `Ok` when the Basic credentials are valid, else the FE's Unauthorized body.
    fn check_auth(&self, req: &Request<Incoming>) -> Result<(String, String), Box<Resp>> {
        let unauthorized = |reason: String| {
            Err(Box::new(routes::json(rest_body(
                "Unauthorized",
                401,
                Value::String(reason),
            ))))
        };
        match routes::basic_auth(req.headers()) {
            Auth::Missing => unauthorized("Need auth information.".into()),
            Auth::Invalid => unauthorized("Invalid Authorization header.".into()),
            Auth::Basic(user, password) => {
                if self.lock().check_user(&user, &password) {
                    Ok((user, password))
                } else {
                    unauthorized(format!(
                        "Access denied for user '{user}'@'127.0.0.1' (using password: {})",
                        if password.is_empty() { "NO" } else { "YES" }
                    ))
                }
            }
        }
    }

    /// `GET /api/backends[?is_alive=true]`: every BE with its HTTP port and whether it
    /// is up; with `is_alive=true` only the BEs that are up, as Doris's `BackendsAction`.
    fn backends_list(&self, req: &Request<Incoming>) -> Resp {
        self.lock().fe_backend_lists += 1;
        let only_alive = routes::query_param(req, "is_alive")
            .is_some_and(|v| v.trim().eq_ignore_ascii_case("true"));
        let list: Vec<Value> = self
            .backends
            .iter()
            .map(|be| (be.port(), be.is_up()))
            .filter(|(_, alive)| *alive || !only_alive)
            .map(|(port, alive)| json!({"ip": "127.0.0.1", "http_port": port, "is_alive": alive}))
            .collect();
        routes::json(rest_body("success", 0, json!({ "backends": list })))
    }

    /// The BE a redirect goes to: the next one that is up, round robin; the first BE when
    /// none is (as a real FE before its heartbeat notices), so the client's connection to
    /// it fails and the client retries.
    fn pick_backend(&self) -> u16 {
        let n = self.backends.len();
        let start = self.next_be.fetch_add(1, Ordering::Relaxed);
        (0..n)
            .map(|i| &self.backends[(start + i) % n])
            .find(|be| be.is_up())
            .or_else(|| self.backends.first())
            .map_or(0, |be| be.port())
    }

    fn redirect(&self, req: &Request<Incoming>, user: &str, password: &str) -> Resp {
        let location = format!(
            "{}://{}:{}@127.0.0.1:{}{}?{}",
            self.scheme,
            routes::userinfo_encode(user),
            routes::userinfo_encode(password),
            self.pick_backend(),
            req.uri().path(),
            req.uri().query().unwrap_or_default()
        );
        let mut resp = routes::respond(
            StatusCode::TEMPORARY_REDIRECT,
            "text/html;charset=utf-8",
            "",
        );
        if let Ok(v) = HeaderValue::from_str(&location) {
            resp.headers_mut().insert(LOCATION, v);
        }
        resp
    }

    fn stream_load(&self, req: &Request<Incoming>, db: &str, table: Option<&str>) -> Resp {
        self.lock().fe_stream_loads += 1;
        if let Some(gc) = req.headers().get("group_commit") {
            let v = gc.to_str().unwrap_or_default().trim().to_ascii_lowercase();
            if !matches!(v.as_str(), "async_mode" | "sync_mode" | "off_mode") {
                return routes::json(fe_failed(
                    "Header `group_commit` can only be `sync_mode`, `async_mode` or `off_mode`.",
                ));
            }
        }
        let (user, password) = match self.check_auth(req) {
            Ok(c) => c,
            Err(resp) => return *resp,
        };
        if !req.headers().contains_key(hyper::header::EXPECT) {
            return routes::json(fe_failed("There is no 100-continue header"));
        }
        if db.is_empty() {
            return routes::json(fe_failed("No database selected."));
        }
        {
            let st = self.lock();
            let Some(d) = st.catalog.databases.get(db) else {
                return routes::json(fe_failed(&format!("unknown databases, dbName={db}")));
            };
            if let Some(t) = table {
                if t.is_empty() {
                    return routes::json(fe_failed("No table selected."));
                }
                if !d.tables.contains_key(t) {
                    return routes::json(fe_failed(&format!("unknown table, tableName={t}")));
                }
            }
        }
        self.redirect(req, &user, &password)
    }

    fn two_phase(&self, req: &Request<Incoming>, db: &str) -> Resp {
        self.lock().fe_two_phase += 1;
        let (user, password) = match self.check_auth(req) {
            Ok(c) => c,
            Err(resp) => return *resp,
        };
        let h = routes::header_map(req.headers());
        let has = |k: &str| h.get(k).is_some_and(|v| !v.trim().is_empty());
        if !has("txn_id") && !has("label") {
            return routes::json(fe_failed("No transaction id or label selected."));
        }
        if !has("txn_operation") {
            return routes::json(fe_failed(
                "No transaction operation('commit' or 'abort') selected.",
            ));
        }
        if db.is_empty() {
            return routes::json(fe_failed("No database selected."));
        }
        self.redirect(req, &user, &password)
    }

    async fn query(&self, req: Request<Incoming>, db: &str) -> Resp {
        if let Err(resp) = self.check_auth(&req) {
            return *resp;
        }
        let started = Instant::now();
        let Ok(body) = routes::read_body(req.into_body()).await else {
            return routes::json(rest_body("failed to read the request body", 1, Value::Null));
        };
        let request = serde_json::from_slice::<Value>(&body).ok();
        let stmt = request
            .as_ref()
            .and_then(|v| v.get("stmt").and_then(Value::as_str).map(str::to_string));
        // Doris's StmtExecutionAction: `"limit"` in the body, default 1000 rows
        // (DEFAULT_ROW_LIMIT); StatementSubmitter stops reading the result set there.
        let limit = request
            .as_ref()
            .and_then(|v| v.get("limit").and_then(Value::as_u64))
            .unwrap_or(1000) as usize;
        let Some(stmt) = stmt else {
            return routes::json(rest_body(
                "Invalid request body: expecting {\"stmt\": \"<sql>\"}",
                403,
                Value::Null,
            ));
        };
        let result = {
            let mut st = self.lock();
            ddl::execute(&mut st, Some(db), &stmt)
        };
        let time = started.elapsed().as_millis() as u64;
        match result {
            Err(msg) => routes::json(rest_body(&msg, 1, Value::Null)),
            Ok(r) if r.is_result_set => {
                let meta: Vec<Value> = r
                    .columns
                    .iter()
                    .zip(&r.column_types)
                    .map(|(n, t)| json!({"name": n, "type": t}))
                    .collect();
                // StatementSubmitter.generateResultSet: `rs.getObject(i)` for every type but
                // DATE / DATETIME (`rs.getString(i)`), so numbers arrive as JSON numbers
                // (a DECIMAL as a JSON number too, which a client parsing into doubles
                // would round), text as strings.
                let numeric: Vec<bool> = r
                    .column_types
                    .iter()
                    .map(|t| super::range_select::numeric_type(t))
                    .collect();
                let data: Vec<Value> = r
                    .rows
                    .iter()
                    .take(limit)
                    .map(|row| {
                        Value::Array(
                            row.iter()
                                .zip(&numeric)
                                .map(|(v, n)| match v {
                                    None => Value::Null,
                                    Some(text) if *n => {
                                        serde_json::from_str::<serde_json::Number>(text)
                                            .map_or_else(
                                                |_| Value::String(text.clone()),
                                                Value::Number,
                                            )
                                    }
                                    Some(text) => Value::String(text.clone()),
                                })
                                .collect(),
                        )
                    })
                    .collect();
                routes::json(rest_body(
                    "success",
                    0,
                    json!({"type": "result_set", "data": data, "meta": meta, "status": {}, "time": time}),
                ))
            }
            Ok(_) => routes::json(rest_body(
                "success",
                0,
                json!({"type": "exec_status", "status": {}, "time": time}),
            )),
        }
    }
}
