//! Entry points for the coverage-guided fuzz targets in `fuzz/` (see `docs/fuzzing.md`).
//!
//! Not an API: hidden from the docs, changed whenever the internals change. Each function
//! takes arbitrary bytes, runs the sink's pure answer handling on them and throws the
//! result away; its only contract is to return — no panic, no hang, no unbounded memory.
#![doc(hidden)]

use url::Url;

use crate::retry::{Answer, TxnOp, classify_stream_load, classify_txn, is_permanent, load_state};
use crate::service::follow;

/// HTTP statuses a StarRocks FE or BE answers with (one input byte picks one).
const STATUSES: &[u16] = &[200, 200, 200, 307, 400, 401, 403, 404, 408, 429, 500, 503];

/// `(status, body)`: a first byte below 0xF0 picks a usual status, else the next two bytes
/// are any status.
fn status_and_body(data: &[u8]) -> (u16, &[u8]) {
    match data {
        [s, rest @ ..] if *s < 0xF0 => (STATUSES[usize::from(*s) % STATUSES.len()], rest),
        [_, a, b, rest @ ..] => (u16::from_le_bytes([*a, *b]), rest),
        _ => (200, data),
    }
}

/// Fuzz entry: a Stream Load, transaction-interface or `get_load_state` answer (`status`
/// byte(s), then the body) through every classifier, and the same bytes as a transport
/// error text and as a failure message.
pub fn stream_load_response(data: &[u8]) {
    let (status, body) = status_and_body(data);
    let answer = Answer::Http { status, body };
    let _ = classify_stream_load(answer);
    for op in [
        TxnOp::Begin,
        TxnOp::Load,
        TxnOp::Prepare,
        TxnOp::Commit,
        TxnOp::Rollback,
    ] {
        let _ = classify_txn(answer, op);
    }
    let _ = load_state(answer);
    let text = String::from_utf8_lossy(body);
    let _ = classify_stream_load(Answer::Transport(&text));
    let _ = classify_txn(Answer::Transport(&text), TxnOp::Commit);
    let _ = is_permanent(&text);
}

/// Fuzz entry: a redirect's `Location` (the input as text; bit 0 of the first byte: the
/// chain started over TLS) resolved the way the sink follows it.
pub fn redirect(data: &[u8]) {
    let tls = data.first().is_some_and(|b| b & 1 == 1);
    let location = String::from_utf8_lossy(data.get(1..).unwrap_or_default());
    let from = if tls {
        "https://fe.invalid:8030/api/transaction/load"
    } else {
        "http://fe.invalid:8030/api/transaction/load"
    };
    let Ok(from) = Url::parse(from) else { return };
    let (mut user, mut password) = ("root".to_string(), "secret".to_string());
    let _ = follow(&from, &location, tls, &mut user, &mut password);
}
