//! What a StarRocks answer means: pure functions from (transport error or HTTP status,
//! body) to a verdict, so every rule is a unit test.
//!
//! The FE answers a bad password with a real HTTP 401; the BE always answers HTTP 200 with
//! the outcome in the JSON `Status` (`Success` / `Fail` / ... for a stream load, `OK` /
//! `LABEL_ALREADY_EXISTS` / `TXN_NOT_EXISTS` / `TXN_IN_PROCESSING` / `FAILED` /
//! `PUBLISH_TIMEOUT` for the transaction interface). So the body decides, the HTTP code
//! only for 401/403 and 5xx. Retries reuse the label, which makes a retry after a lost
//! answer safe: the server refuses the label instead of loading twice.

use serde_json::Value as Json;

/// What came back from one attempt.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Answer<'a> {
    /// No HTTP answer: connection refused or reset, timeout, broken body.
    Transport(&'a str),
    /// An HTTP answer.
    Http {
        /// The HTTP status code.
        status: u16,
        /// The body.
        body: &'a [u8],
    },
}

/// The transaction-interface operation an answer belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TxnOp {
    Begin,
    Load,
    Prepare,
    Commit,
    Rollback,
}

impl TxnOp {
    /// The path segment (`/api/transaction/{op}`).
    pub(crate) fn path(self) -> &'static str {
        match self {
            Self::Begin => "begin",
            Self::Load => "load",
            Self::Prepare => "prepare",
            Self::Commit => "commit",
            Self::Rollback => "rollback",
        }
    }
}

/// What one answer means.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// Done (loaded, begun, prepared, committed, rolled back).
    Done,
    /// `begin` or a stream load: the label is taken by a job in this state (`RUNNING`,
    /// `PREPARED`, `FINISHED`, ...).
    LabelExists {
        /// `ExistingJobStatus`.
        existing: String,
        /// The server's message.
        message: String,
    },
    /// The server knows no (running) transaction with this label.
    NotFound(String),
    /// A definite refusal of this operation in the transaction's state (commit of an
    /// aborted transaction, rollback of a committed one).
    WrongState(String),
    /// Send again (same label) after a backoff.
    Retry(String),
    /// Give up: retrying cannot help.
    Stop {
        /// Why, for the user.
        reason: String,
        /// Where the server lists rejected rows, when it said.
        error_url: Option<String>,
    },
}

fn stop(reason: impl Into<String>) -> Verdict {
    Verdict::Stop {
        reason: reason.into(),
        error_url: None,
    }
}

/// Transport, HTTP status and body shape; `Ok(json)` for a JSON object to read further.
pub(crate) fn common(answer: Answer<'_>) -> Result<Json, Verdict> {
    let (status, body) = match answer {
        Answer::Transport(e) => return Err(Verdict::Retry(format!("network error: {e}"))),
        Answer::Http { status, body } => (status, body),
    };
    let text = String::from_utf8_lossy(body);
    let snippet: String = text.chars().take(300).collect();
    match status {
        401 | 403 => {
            return Err(stop(format!(
                "access denied (HTTP {status}): check username and password ({snippet})"
            )));
        }
        408 | 429 | 500..=599 => return Err(Verdict::Retry(format!("HTTP {status}: {snippet}"))),
        200 => {}
        // A 307 left over means the FE kept redirecting (Flink: "FE responds slowly").
        _ => return Err(stop(format!("unexpected HTTP {status}: {snippet}"))),
    }
    match serde_json::from_slice(body) {
        Ok(j @ Json::Object(_)) => Ok(j),
        _ => Err(stop(format!(
            "malformed answer (not a JSON object): {snippet}"
        ))),
    }
}

fn field<'a>(json: &'a Json, names: &[&str]) -> &'a str {
    names
        .iter()
        .find_map(|n| json.get(*n).and_then(Json::as_str))
        .unwrap_or("")
}

/// Failure messages that retrying cannot fix (Flink's `ErrorUtils` list plus
/// authentication and unknown objects).
pub(crate) fn is_permanent(message: &str) -> bool {
    let m = message.to_ascii_lowercase();
    [
        "too many filtered rows",
        "primary key size exceed the limit",
        "only primary key table support partial update",
        "access denied",
        "no valid basic authorization",
        "current running txns on db",
        "does not exist",
        "not exist",
        "unknown table",
        "unknown database",
        "no database selected",
        "empty label",
        "unknown data format",
        "invalid",
        "not supported",
        "json data",
        "exceed the max size",
        "no 100-continue",
    ]
    .iter()
    .any(|p| m.contains(p))
        && !m.contains("transaction with label")
}

fn error_url(json: &Json) -> Option<String> {
    json.get("ErrorURL")
        .and_then(Json::as_str)
        .map(str::to_string)
}

/// A plain Stream Load answer.
pub(crate) fn classify_stream_load(answer: Answer<'_>) -> Verdict {
    let json = match common(answer) {
        Ok(j) => j,
        Err(v) => return v,
    };
    let status = field(&json, &["Status", "status"]);
    let message = field(&json, &["Message", "msg"]).to_string();
    match status {
        "Success" | "OK" | "Publish Timeout" => Verdict::Done,
        "Label Already Exists" => Verdict::LabelExists {
            existing: field(&json, &["ExistingJobStatus"]).to_string(),
            message,
        },
        _ if is_permanent(&message) => Verdict::Stop {
            reason: format!("StarRocks refused the load: {message}"),
            error_url: error_url(&json),
        },
        "" => stop(format!("malformed answer (no Status): {json}")),
        _ => Verdict::Retry(format!("{status}: {message}")),
    }
}

/// A transaction-interface answer.
pub(crate) fn classify_txn(answer: Answer<'_>, op: TxnOp) -> Verdict {
    let json = match common(answer) {
        Ok(j) => j,
        Err(v) => return v,
    };
    let status = field(&json, &["Status", "status"]);
    let message = field(&json, &["Message", "msg"]).to_string();
    let lower = message.to_ascii_lowercase();
    match status {
        "OK" | "Success" => Verdict::Done,
        // Committed; visible shortly.
        "PUBLISH_TIMEOUT" if op == TxnOp::Commit => Verdict::Done,
        "LABEL_ALREADY_EXISTS" => Verdict::LabelExists {
            existing: field(&json, &["ExistingJobStatus"]).to_string(),
            message,
        },
        "TXN_NOT_EXISTS" => Verdict::NotFound(message),
        "FAILED" if lower.contains("txn_not_exists") || lower.contains("not exists") => {
            Verdict::NotFound(message)
        }
        "TXN_IN_PROCESSING" => Verdict::Retry(format!("{status}: {message}")),
        _ if lower.contains("too many filtered rows") => Verdict::Stop {
            reason: format!("StarRocks rejected rows: {message}"),
            error_url: error_url(&json),
        },
        _ if op == TxnOp::Commit && (lower.contains("aborted") || lower.contains("abort")) => {
            Verdict::WrongState(message)
        }
        _ if op == TxnOp::Rollback && lower.contains("committed") => Verdict::WrongState(message),
        _ if op == TxnOp::Prepare && lower.contains("already committed") => {
            Verdict::WrongState(message)
        }
        _ if is_permanent(&message) => stop(format!("StarRocks refused {}: {message}", op.path())),
        "" => stop(format!("malformed answer (no Status): {json}")),
        _ => Verdict::Retry(format!("{status}: {message}")),
    }
}

/// The `state` of a `get_load_state` answer (`PREPARE`, `PREPARED`, `COMMITTED`,
/// `VISIBLE`, `ABORTED`, `UNKNOWN`), or a verdict when there is none.
pub(crate) fn load_state(answer: Answer<'_>) -> Result<String, Verdict> {
    let json = common(answer)?;
    let status = field(&json, &["status", "Status"]);
    if !status.eq_ignore_ascii_case("OK") && !status.eq_ignore_ascii_case("Success") {
        let msg = field(&json, &["msg", "Message"]);
        return Err(if is_permanent(msg) {
            stop(format!("get_load_state: {msg}"))
        } else {
            Verdict::Retry(format!("get_load_state: {status} {msg}"))
        });
    }
    Ok(field(&json, &["state", "State"]).to_ascii_uppercase())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn http(status: u16, body: &str) -> Answer<'_> {
        Answer::Http {
            status,
            body: body.as_bytes(),
        }
    }

    #[test]
    fn transport_http_and_auth() {
        assert!(matches!(
            classify_stream_load(Answer::Transport("reset")),
            Verdict::Retry(_)
        ));
        assert!(matches!(
            classify_stream_load(http(503, "busy")),
            Verdict::Retry(_)
        ));
        let Verdict::Stop { reason, .. } = classify_txn(
            http(
                401,
                r#"{"status":"FAILED","msg":"Access denied for root@127.0.0.1"}"#,
            ),
            TxnOp::Begin,
        ) else {
            panic!("401 must stop")
        };
        assert!(reason.contains("access denied"), "{reason}");
        // A BE reached without credentials.
        assert!(matches!(
            classify_stream_load(http(
                200,
                r#"{"Status":"Fail","Message":"no valid Basic authorization"}"#
            )),
            Verdict::Stop { .. }
        ));
        assert!(matches!(
            classify_stream_load(http(200, "<html>")),
            Verdict::Stop { .. }
        ));
        assert!(matches!(
            classify_stream_load(http(307, "")),
            Verdict::Stop { .. }
        ));
    }

    #[test]
    fn stream_load_statuses() {
        assert_eq!(
            classify_stream_load(http(200, r#"{"Status":"Success","Message":"OK"}"#)),
            Verdict::Done
        );
        assert_eq!(
            classify_stream_load(http(
                200,
                r#"{"Status":"Publish Timeout","Message":"transaction commit successfully, BUT data will be visible later"}"#
            )),
            Verdict::Done
        );
        assert_eq!(
            classify_stream_load(http(
                200,
                r#"{"TxnId":-1,"Status":"Label Already Exists","ExistingJobStatus":"FINISHED","Message":"Label [l] has already been used."}"#
            )),
            Verdict::LabelExists {
                existing: "FINISHED".into(),
                message: "Label [l] has already been used.".into()
            }
        );
        let Verdict::Stop { error_url, .. } = classify_stream_load(http(
            200,
            r#"{"Status":"Fail","Message":"too many filtered rows","ErrorURL":"http://be/api/_load_error_log?file=x"}"#,
        )) else {
            panic!("filtered rows must stop")
        };
        assert_eq!(
            error_url.as_deref(),
            Some("http://be/api/_load_error_log?file=x")
        );
        assert!(matches!(
            classify_stream_load(http(
                200,
                r#"{"Status":"Fail","Message":"Too many versions. tablet_id: 1, version_count: 1230, limit: 1000"}"#
            )),
            Verdict::Retry(_)
        ));
        assert!(matches!(
            classify_stream_load(http(
                200,
                r#"{"Status":"Fail","Message":"primary key size exceed the limit."}"#
            )),
            Verdict::Stop { .. }
        ));
    }

    #[test]
    fn transaction_statuses() {
        let t = |body: &str, op| classify_txn(http(200, body), op);
        assert_eq!(
            t(
                r#"{"Status":"OK","Message":"","Label":"l","TxnId":9}"#,
                TxnOp::Begin
            ),
            Verdict::Done
        );
        assert_eq!(
            t(
                r#"{"Status":"LABEL_ALREADY_EXISTS","ExistingJobStatus":"RUNNING","Message":"Label [l] has already been used."}"#,
                TxnOp::Begin
            ),
            Verdict::LabelExists {
                existing: "RUNNING".into(),
                message: "Label [l] has already been used.".into()
            }
        );
        assert!(matches!(
            t(
                r#"{"Status":"TXN_NOT_EXISTS","Message":"transaction with label l not exists"}"#,
                TxnOp::Load
            ),
            Verdict::NotFound(_)
        ));
        assert!(matches!(
            t(
                r#"{"Status":"FAILED","Message":"TXN_NOT_EXISTS"}"#,
                TxnOp::Prepare
            ),
            Verdict::NotFound(_)
        ));
        assert!(matches!(
            t(
                r#"{"Status":"TXN_IN_PROCESSING","Message":"Transaction in processing, please retry later"}"#,
                TxnOp::Commit
            ),
            Verdict::Retry(_)
        ));
        assert_eq!(
            t(
                r#"{"Status":"OK","Message":"Transaction 5 has already committed, label is l"}"#,
                TxnOp::Commit
            ),
            Verdict::Done
        );
        assert_eq!(
            t(
                r#"{"Status":"PUBLISH_TIMEOUT","Message":"transaction commit successfully, BUT data will be visible later"}"#,
                TxnOp::Commit
            ),
            Verdict::Done
        );
        assert!(matches!(
            t(
                r#"{"Status":"FAILED","Message":"Can not commit ABORTED transaction 5, label is l"}"#,
                TxnOp::Commit
            ),
            Verdict::WrongState(_)
        ));
        assert!(matches!(
            t(
                r#"{"Status":"FAILED","Message":"Can not abort COMMITTED transaction 5, label is l"}"#,
                TxnOp::Rollback
            ),
            Verdict::WrongState(_)
        ));
        assert!(matches!(
            t(
                r#"{"Status":"FAILED","Message":"too many filtered rows","ErrorURL":"u"}"#,
                TxnOp::Prepare
            ),
            Verdict::Stop {
                error_url: Some(_),
                ..
            }
        ));
        assert!(matches!(
            t(
                r#"{"Status":"INTERNAL_ERROR","Message":"rpc timeout"}"#,
                TxnOp::Prepare
            ),
            Verdict::Retry(_)
        ));
        assert!(matches!(
            t(
                r#"{"Status":"FAILED","Message":"Table 't' does not exist in database 'd'"}"#,
                TxnOp::Begin
            ),
            Verdict::Stop { .. }
        ));
    }

    #[test]
    fn load_states() {
        assert_eq!(
            load_state(http(
                200,
                r#"{"status":"OK","msg":"Success","state":"PREPARED","reason":""}"#
            ))
            .unwrap(),
            "PREPARED"
        );
        assert!(load_state(Answer::Transport("refused")).is_err());
    }
}
