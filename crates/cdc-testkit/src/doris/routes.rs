//! Request helpers shared by the FE and BE: path splitting, Basic auth, responses.

use std::collections::HashMap;

use base64::Engine;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::header::{CONTENT_TYPE, HeaderValue};
use hyper::{HeaderMap, Request, Response, StatusCode};

use super::http::Resp;

/// Decodes `%XX` escapes of a path segment.
pub(crate) fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            if let Some(v) = s
                .get(i + 1..i + 3)
                .and_then(|h| u8::from_str_radix(h, 16).ok())
            {
                out.push(v);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Encodes user info for a URL.
pub(crate) fn userinfo_encode(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~!$&'()*+,;=".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Path segments after the leading `/`.
pub(crate) fn segments(req: &Request<Incoming>) -> Vec<String> {
    req.uri()
        .path()
        .trim_start_matches('/')
        .split('/')
        .map(percent_decode)
        .collect()
}

/// A query-string parameter.
pub(crate) fn query_param(req: &Request<Incoming>, name: &str) -> Option<String> {
    req.uri().query()?.split('&').find_map(|kv| {
        let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
        (k == name).then(|| percent_decode(v))
    })
}

/// Headers as a map with lower-case names.
pub(crate) fn header_map(headers: &HeaderMap) -> HashMap<String, String> {
    headers
        .iter()
        .filter_map(|(k, v)| {
            Some((
                k.as_str().to_ascii_lowercase(),
                v.to_str().ok()?.to_string(),
            ))
        })
        .collect()
}

/// The result of reading `Authorization`.
pub(crate) enum Auth {
    Missing,
    Invalid,
    Basic(String, String),
}

pub(crate) fn basic_auth(headers: &HeaderMap) -> Auth {
    let Some(v) = headers.get(hyper::header::AUTHORIZATION) else {
        return Auth::Missing;
    };
    let Ok(v) = v.to_str() else {
        return Auth::Invalid;
    };
    let Some(b64) = v
        .strip_prefix("Basic ")
        .or_else(|| v.strip_prefix("basic "))
    else {
        return Auth::Invalid;
    };
    let Ok(raw) = base64::engine::general_purpose::STANDARD.decode(b64.trim()) else {
        return Auth::Invalid;
    };
    let Ok(text) = String::from_utf8(raw) else {
        return Auth::Invalid;
    };
    match text.split_once(':') {
        Some((u, p)) => Auth::Basic(u.to_string(), p.to_string()),
        None => Auth::Invalid,
    }
}

/// Reads the whole body.
pub(crate) async fn read_body(body: Incoming) -> Result<Bytes, hyper::Error> {
    Ok(body.collect().await?.to_bytes())
}

/// A response with a body and content type.
pub(crate) fn respond(
    status: StatusCode,
    content_type: &'static str,
    body: impl Into<Bytes>,
) -> Resp {
    let mut r = Response::new(Full::new(body.into()));
    *r.status_mut() = status;
    r.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    r
}

/// HTTP 200 with a JSON body.
pub(crate) fn json(body: String) -> Resp {
    respond(StatusCode::OK, "application/json", body)
}

/// HTTP 200 with a text body.
pub(crate) fn text(status: StatusCode, body: String) -> Resp {
    respond(status, "text/plain; charset=utf-8", body)
}
