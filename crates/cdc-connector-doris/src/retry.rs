//! What to do with a Stream Load or 2PC answer: a pure function from (transport error or
//! HTTP status, body) to [`LoadVerdict`], so every rule is a unit test.
//!
//! A Doris BE answers every load with HTTP 200 and the outcome in the JSON `Status`; the FE
//! answers its own errors with HTTP 200 too (`{"status":"FAILED","msg":...}`, a bad password
//! as `{"msg":"Unauthorized","code":401}`). So the body decides, the HTTP code only for 5xx
//! and real 401s. Retries reuse the label, which makes a retry after a lost answer safe:
//! the server answers `Label Already Exists` instead of loading twice.

use serde_json::Value as Json;

/// What one attempt's answer means.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum LoadVerdict {
    /// Loaded (or pre-committed, in 2PC). `txn_id` when the server told it.
    Success {
        /// The transaction id, when known.
        txn_id: Option<i64>,
    },
    /// Send the same request again, with the same label, after a backoff.
    Retry {
        /// Why, for logs and for the final error when retries run out.
        reason: String,
        /// An earlier load with this label is still running: waiting is expected, and
        /// does not count as a failed attempt.
        still_running: bool,
    },
    /// Give up: retrying cannot help.
    Stop {
        /// Why, for the user.
        reason: String,
        /// Where the server lists the rejected rows, when it said.
        error_url: Option<String>,
    },
}

/// What came back from one attempt.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Answer<'a> {
    /// No HTTP answer: connection refused or reset, timeout, broken body.
    Transport(&'a str),
    /// An HTTP answer with its status code and body.
    Http {
        /// The HTTP status code.
        status: u16,
        /// The body.
        body: &'a [u8],
    },
}

fn retry(reason: impl Into<String>) -> LoadVerdict {
    LoadVerdict::Retry {
        reason: reason.into(),
        still_running: false,
    }
}

fn stop(reason: impl Into<String>) -> LoadVerdict {
    LoadVerdict::Stop {
        reason: reason.into(),
        error_url: None,
    }
}

/// Checks shared by loads and 2PC calls: transport, HTTP status, FE auth and FE errors.
/// `Ok(json)` when the body is a JSON object worth reading further.
fn common(answer: Answer<'_>) -> Result<Json, LoadVerdict> {
    let (status, body) = match answer {
        Answer::Transport(e) => return Err(retry(format!("network error: {e}"))),
        Answer::Http { status, body } => (status, body),
    };
    let text = String::from_utf8_lossy(body);
    let snippet: String = text.chars().take(300).collect();
    match status {
        401 | 403 => {
            return Err(stop(format!(
                "authentication failed (HTTP {status}): check username and password ({snippet})"
            )));
        }
        408 | 429 | 500..=599 => return Err(retry(format!("HTTP {status}: {snippet}"))),
        200 => {}
        _ => return Err(stop(format!("unexpected HTTP {status}: {snippet}"))),
    }
    let json: Json = match serde_json::from_slice(body) {
        Ok(j @ Json::Object(_)) => j,
        _ => {
            return Err(stop(format!(
                "malformed answer (not a JSON object): {snippet}"
            )));
        }
    };
    let msg = json
        .get("msg")
        .and_then(Json::as_str)
        .unwrap_or_default()
        .to_string();
    let code = json.get("code").and_then(Json::as_i64);
    if code == Some(401) || msg.eq_ignore_ascii_case("Unauthorized") {
        let why = json.get("data").and_then(Json::as_str).unwrap_or("");
        return Err(stop(format!(
            "authentication failed: Unauthorized {why}: check username and password"
        )));
    }
    Ok(json)
}

fn field<'a>(json: &'a Json, names: &[&str]) -> Option<&'a str> {
    names
        .iter()
        .find_map(|n| json.get(*n).and_then(Json::as_str))
}

/// Whether a load failure message names a condition that retrying cannot fix.
fn is_permanent_failure(message: &str) -> bool {
    let m = message.to_ascii_lowercase();
    [
        "too many filtered rows",
        "unknown table",
        "table not found",
        "not found table",
        "does not exist",
        "unknown column",
        "column not found",
        "not exist column",
        "access denied",
        "no valid basic authorization",
        "unauthorized",
        "database not found",
        "unknown database",
        "not supported",
        "invalid",
        "parse json",
        "json data",
        "no 100-continue",
    ]
    .iter()
    .any(|p| m.contains(p))
}

/// Whether a load failure is Doris's "too many versions" (-235): loads arrive faster than
/// compaction merges them; back off and send again.
fn is_too_many_versions(message: &str) -> bool {
    let m = message.to_ascii_lowercase();
    m.contains("-235") || m.contains("too many versions") || m.contains("too many tablet versions")
}

/// The transaction id in `Label [l] has already been used, relate to txn [123]`.
pub(crate) fn txn_id_in_message(message: &str) -> Option<i64> {
    let rest = &message[message.find("txn [")? + 5..];
    rest[..rest.find(']')?].trim().parse().ok()
}

/// Classifies a Stream Load answer. `two_phase`: the load was sent with
/// `two_phase_commit: true`, so an existing PRE-COMMITTED transaction with our label is our
/// own earlier attempt.
pub(crate) fn classify_load(answer: Answer<'_>, two_phase: bool) -> LoadVerdict {
    let json = match common(answer) {
        Ok(j) => j,
        Err(v) => return v,
    };
    let Some(status) = field(&json, &["Status"]) else {
        // The FE's own error shape.
        let fe_status = field(&json, &["status"]).unwrap_or("");
        let msg = field(&json, &["msg", "message"]).unwrap_or("");
        if fe_status.eq_ignore_ascii_case("FAILED") || !msg.is_empty() {
            if is_too_many_versions(msg) || msg.to_ascii_lowercase().contains("timeout") {
                return retry(format!("FE: {msg}"));
            }
            return stop(format!("FE refused the load: {msg}"));
        }
        return stop(format!("malformed answer (no Status): {json}"));
    };
    let message = field(&json, &["Message", "msg"]).unwrap_or("");
    let txn_id = json.get("TxnId").and_then(Json::as_i64).filter(|t| *t > 0);
    match status {
        "Success" => LoadVerdict::Success { txn_id },
        // Committed; visible shortly. Sending again would be refused or load twice.
        "Publish Timeout" => LoadVerdict::Success { txn_id },
        "Label Already Exists" => {
            let existing = field(&json, &["ExistingJobStatus"]).unwrap_or("");
            match existing {
                "FINISHED" if two_phase => stop(format!(
                    "the label is already used by a committed load ({message}); another pipeline or an earlier run with lost state used the same labels: set another sink.label-prefix"
                )),
                // Our own earlier attempt committed; its answer was lost.
                "FINISHED" => LoadVerdict::Success {
                    txn_id: txn_id.or_else(|| txn_id_in_message(message)),
                },
                "PRECOMMITTED" if two_phase => {
                    match txn_id.or_else(|| txn_id_in_message(message)) {
                        Some(id) => LoadVerdict::Success { txn_id: Some(id) },
                        None => LoadVerdict::Success { txn_id: None },
                    }
                }
                "PRECOMMITTED" => stop(format!(
                    "the label belongs to a pre-committed two-phase load ({message}); set another sink.label-prefix"
                )),
                "RUNNING" | "" => LoadVerdict::Retry {
                    reason: format!("a load with this label is still running ({message})"),
                    still_running: true,
                },
                other => stop(format!("label already used, job status {other}: {message}")),
            }
        }
        "Fail" | "FAILED" => {
            if is_too_many_versions(message) {
                retry(format!(
                    "too many versions, compaction is behind: {message}"
                ))
            } else if is_permanent_failure(message) {
                LoadVerdict::Stop {
                    reason: message.to_string(),
                    error_url: field(&json, &["ErrorURL"]).map(str::to_string),
                }
            } else {
                retry(message.to_string())
            }
        }
        other => stop(format!(
            "malformed answer (unknown Status '{other}'): {message}"
        )),
    }
}

/// A 2PC operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TxnOp {
    /// Make a pre-committed load visible.
    Commit,
    /// Throw a pre-committed load away.
    Abort,
}

impl TxnOp {
    /// The `txn_operation` header value.
    pub(crate) fn header(self) -> &'static str {
        match self {
            Self::Commit => "commit",
            Self::Abort => "abort",
        }
    }
}

/// What a 2PC answer means.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum TxnVerdict {
    /// Done, or had already been done (commit and abort are idempotent for us).
    Done,
    /// No transaction with this label or id (for an abort: nothing to abort).
    NotFound,
    /// Asked by label: the label is known but its load is neither pre-committed nor (for an
    /// abort) running, i.e. it was committed or aborted already. Doris does not say which
    /// (`running transaction not found, label=...`).
    NotRunning,
    /// A commit found the load aborted: its rows are not in the target.
    Lost(String),
    /// Send again after a backoff.
    Retry(String),
    /// Give up.
    Stop(String),
}

/// Classifies an answer of `PUT /api/{db}/_stream_load_2pc`.
pub(crate) fn classify_txn(answer: Answer<'_>, op: TxnOp) -> TxnVerdict {
    let json = match common(answer) {
        Ok(j) => j,
        Err(LoadVerdict::Retry { reason, .. }) => return TxnVerdict::Retry(reason),
        Err(LoadVerdict::Stop { reason, .. }) => return TxnVerdict::Stop(reason),
        Err(LoadVerdict::Success { .. }) => return TxnVerdict::Done,
    };
    let status = field(&json, &["status", "Status"]).unwrap_or("");
    let msg = field(&json, &["msg", "Message", "message"]).unwrap_or("");
    if status.eq_ignore_ascii_case("Success") || status.eq_ignore_ascii_case("OK") {
        return TxnVerdict::Done;
    }
    let m = msg.to_ascii_lowercase();
    if m.contains("running transaction not found") {
        return TxnVerdict::NotRunning;
    }
    let committed = m.contains("already committed")
        || m.contains("already visible")
        || m.contains("is already committed")
        || m.contains("status is visible")
        || m.contains("status is committed");
    let aborted = m.contains("already aborted")
        || m.contains("is aborted")
        || m.contains("status is aborted");
    let not_found = m.contains("not found")
        || m.contains("not exist")
        || m.contains("does not exist")
        || m.contains("no such")
        || m.contains("unknown transaction")
        || m.contains("label not");
    match op {
        TxnOp::Commit if committed => TxnVerdict::Done,
        TxnOp::Commit if aborted => TxnVerdict::Lost(format!(
            "the pre-committed load was aborted before it could be committed ({msg}), so its rows are not in the target"
        )),
        TxnOp::Abort if aborted => TxnVerdict::Done,
        TxnOp::Abort if committed => TxnVerdict::Stop(format!(
            "cannot abort: the load was already committed ({msg}); another pipeline may use the same labels: set another sink.label-prefix"
        )),
        _ if not_found => TxnVerdict::NotFound,
        _ if is_permanent_failure(msg) => TxnVerdict::Stop(msg.to_string()),
        _ => TxnVerdict::Retry(format!("{status}: {msg}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn http(body: &str) -> Answer<'_> {
        Answer::Http {
            status: 200,
            body: body.as_bytes(),
        }
    }

    fn is_retry(v: &LoadVerdict) -> bool {
        matches!(v, LoadVerdict::Retry { .. })
    }

    fn is_stop(v: &LoadVerdict) -> bool {
        matches!(v, LoadVerdict::Stop { .. })
    }

    #[test]
    fn transport_and_server_errors_retry() {
        assert!(is_retry(&classify_load(
            Answer::Transport("connection reset"),
            false
        )));
        for status in [500, 502, 503, 504, 429] {
            let v = classify_load(
                Answer::Http {
                    status,
                    body: b"oops",
                },
                false,
            );
            assert!(is_retry(&v), "{status}: {v:?}");
        }
        assert!(is_stop(&classify_load(
            Answer::Http {
                status: 404,
                body: b""
            },
            false
        )));
    }

    #[test]
    fn success_and_publish_timeout_are_done() {
        assert_eq!(
            classify_load(
                http(r#"{"TxnId":1003,"Status":"Success","Message":"OK"}"#),
                false
            ),
            LoadVerdict::Success { txn_id: Some(1003) }
        );
        assert_eq!(
            classify_load(
                http(r#"{"TxnId":7,"Status":"Publish Timeout","Message":"x"}"#),
                false
            ),
            LoadVerdict::Success { txn_id: Some(7) }
        );
    }

    #[test]
    fn too_many_versions_retries() {
        for msg in [
            "[E-235]too many versions",
            // Doris 2.1 RowsetBuilder::check_tablet_version_count
            "[E-235]failed to init rowset builder. version count: 2001, exceed limit: 2000, tablet: 10086",
            // Doris 1.x: the tablet writer's code only
            "wait close failed. NodeChannel[10003-10001], load_id=x, txn_id=38873401, err: tablet writer write failed, tablet_id=1539539, txn_id=38873401, err=-235",
            "failed to write: -235 tablet 123 version count exceeds",
            "[TOO_MANY_VERSION]too many versions, versions=2001",
        ] {
            let body = format!(r#"{{"Status":"Fail","Message":"{msg}"}}"#);
            assert!(is_retry(&classify_load(http(&body), false)), "{msg}");
        }
    }

    #[test]
    fn label_already_exists_depends_on_the_existing_job() {
        let body = |s: &str| {
            format!(
                r#"{{"TxnId":-1,"Status":"Label Already Exists","ExistingJobStatus":"{s}","Message":"Label [l] has already been used, relate to txn [42]"}}"#
            )
        };
        assert_eq!(
            classify_load(http(&body("FINISHED")), false),
            LoadVerdict::Success { txn_id: Some(42) }
        );
        assert!(is_stop(&classify_load(http(&body("FINISHED")), true)));
        assert_eq!(
            classify_load(http(&body("PRECOMMITTED")), true),
            LoadVerdict::Success { txn_id: Some(42) }
        );
        assert!(is_stop(&classify_load(http(&body("PRECOMMITTED")), false)));
        assert_eq!(
            classify_load(http(&body("RUNNING")), false),
            LoadVerdict::Retry {
                reason: "a load with this label is still running (Label [l] has already been used, relate to txn [42])".into(),
                still_running: true
            }
        );
    }

    #[test]
    fn permanent_failures_stop() {
        assert!(is_stop(&classify_load(
            Answer::Http {
                status: 401,
                body: b""
            },
            false
        )));
        assert!(is_stop(&classify_load(
            http(
                r#"{"msg":"Unauthorized","code":401,"data":"Access denied for user 'root'","count":0}"#
            ),
            false
        )));
        assert!(is_stop(&classify_load(
            http(r#"{"status":"FAILED","msg":"Database not found."}"#),
            false
        )));
        assert!(is_stop(&classify_load(
            http("<html>not json</html>"),
            false
        )));
        assert!(is_stop(&classify_load(
            http(r#"{"Status":"Weird"}"#),
            false
        )));
        assert!(is_stop(&classify_load(
            http(r#"{"Status":"Fail","Message":"no valid Basic authorization"}"#),
            false
        )));
        assert!(is_stop(&classify_load(
            http(r#"{"Status":"Fail","Message":"errCode = 2, detailMessage = Unknown table 'x'"}"#),
            false
        )));
        assert!(is_stop(&classify_load(
            http(
                r#"{"Status":"Fail","Message":"errCode = 2, detailMessage = Unknown column 'y' in 't'"}"#
            ),
            false
        )));
        let filtered = classify_load(
            http(
                r#"{"Status":"Fail","Message":"[DATA_QUALITY_ERROR]too many filtered rows","ErrorURL":"http://be/api/_load_error_log?file=x"}"#,
            ),
            false,
        );
        assert_eq!(
            filtered,
            LoadVerdict::Stop {
                reason: "[DATA_QUALITY_ERROR]too many filtered rows".into(),
                error_url: Some("http://be/api/_load_error_log?file=x".into())
            }
        );
        // An unknown failure is worth another try with the same label.
        assert!(is_retry(&classify_load(
            http(r#"{"Status":"Fail","Message":"rpc timeout to be 10.0.0.1"}"#),
            false
        )));
    }

    #[test]
    fn two_phase_answers_are_idempotent() {
        let ok = r#"{"status":"Success","msg":"transaction [18036] commit successfully."}"#;
        assert_eq!(classify_txn(http(ok), TxnOp::Commit), TxnVerdict::Done);
        let visible = r#"{"status":"ANALYSIS_ERROR","msg":"errCode = 2, detailMessage = transaction [18036] is already visible, not pre-committed."}"#;
        assert_eq!(classify_txn(http(visible), TxnOp::Commit), TxnVerdict::Done);
        let committed = r#"{"status":"Fail","msg":"transaction [1] is already committed"}"#;
        assert_eq!(
            classify_txn(http(committed), TxnOp::Commit),
            TxnVerdict::Done
        );
        assert!(matches!(
            classify_txn(http(committed), TxnOp::Abort),
            TxnVerdict::Stop(_)
        ));
        let aborted = r#"{"status":"Fail","msg":"transaction [1] is already aborted"}"#;
        assert_eq!(classify_txn(http(aborted), TxnOp::Abort), TxnVerdict::Done);
        assert!(matches!(
            classify_txn(http(aborted), TxnOp::Commit),
            TxnVerdict::Lost(_)
        ));
        let missing = r#"{"status":"ANALYSIS_ERROR","msg":"TStatus: errCode = 2, detailMessage = transaction not found, label=l"}"#;
        assert_eq!(
            classify_txn(http(missing), TxnOp::Abort),
            TxnVerdict::NotFound
        );
        let by_id = r#"{"status":"ANALYSIS_ERROR","msg":"TStatus: errCode = 2, detailMessage = transaction [5] not found"}"#;
        assert_eq!(
            classify_txn(http(by_id), TxnOp::Commit),
            TxnVerdict::NotFound
        );
        let done = r#"{"status":"ANALYSIS_ERROR","msg":"TStatus: errCode = 2, detailMessage = running transaction not found, label=l"}"#;
        for op in [TxnOp::Commit, TxnOp::Abort] {
            assert_eq!(classify_txn(http(done), op), TxnVerdict::NotRunning);
        }
        let visible_abort = r#"{"status":"ANALYSIS_ERROR","msg":"TStatus: errCode = 2, detailMessage = transaction [7] is already VISIBLE, could not abort."}"#;
        assert!(matches!(
            classify_txn(http(visible_abort), TxnOp::Abort),
            TxnVerdict::Stop(_)
        ));
        let aborted_abort = r#"{"status":"ANALYSIS_ERROR","msg":"TStatus: errCode = 2, detailMessage = transaction [7] is already aborted, abort reason: User Abort"}"#;
        assert_eq!(
            classify_txn(http(aborted_abort), TxnOp::Abort),
            TxnVerdict::Done
        );
        assert!(matches!(
            classify_txn(Answer::Transport("reset"), TxnOp::Commit),
            TxnVerdict::Retry(_)
        ));
        assert!(matches!(
            classify_txn(
                Answer::Http {
                    status: 503,
                    body: b""
                },
                TxnOp::Commit
            ),
            TxnVerdict::Retry(_)
        ));
        assert!(matches!(
            classify_txn(http(r#"{"msg":"Unauthorized","code":401}"#), TxnOp::Commit),
            TxnVerdict::Stop(_)
        ));
    }

    #[test]
    fn txn_ids_are_read_from_messages() {
        assert_eq!(
            txn_id_in_message("Label [a] has already been used, relate to txn [99]"),
            Some(99)
        );
        assert_eq!(txn_id_in_message("nothing"), None);
    }
}
