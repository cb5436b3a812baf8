//! Dead letters: rows the target rejects, written to a JSON-lines file instead of stopping
//! the pipeline (`sink.dead-letter.path`, the same option in both sinks).
//!
//! # How rows get here
//! With the option set, the sinks send every load with `max_filter_ratio: 1` (unless
//! `sink.properties.max_filter_ratio` is set: then the user's ratio stands), so the target
//! loads the good rows and filters the bad ones instead of failing the whole load. Doris
//! and StarRocks answer such a load with success, `NumberFilteredRows` > 0 and an
//! `ErrorURL` (Doris `be/src/runtime/stream_load/stream_load_context.cpp`
//! `StreamLoadContext::to_json`; StarRocks the same file, `to_json` for a plain Stream
//! Load and `to_resp_json` for the transaction interface's `prepare` / `commit`). The
//! driver then reads the error log at the `ErrorURL` (bounded, credentials only to
//! configured nodes: [`crate::http::fetch_error_log`]) and appends one JSON line per
//! rejected row, fsynced before the load counts as done, so before the checkpoint that
//! covers it completes.
//!
//! # The error log
//! One line per filtered row, written by the BE's `RuntimeState::append_error_msg_to_file`
//! (`be/src/runtime/runtime_state.cpp` in both):
//! * Doris: `Reason: {reason}. src line [{row}]; `, and after `MAX_ERROR_NUM` (50) rows
//!   one `TOO MUCH ERROR! already reach 50. show no more next error.` line;
//! * StarRocks: `Error: {reason}. Row: {row}`, silently no more after `MAX_ERROR_NUM` (50).
//!
//! So a load may filter more rows than its log lists, and StarRocks may answer without an
//! `ErrorURL` at all (older BEs set it only after answering:
//! `be/src/runtime/stream_load/stream_load_executor.cpp`, `error_url` assigned after
//! `promise.set_value`). Rows without detail still get a line: `rows` says how many, and
//! `reason` why the detail is missing. Nothing is dropped silently.
//!
//! # Guarantees
//! Accepted rows keep the sink's guarantee (exactly-once with 2PC). Dead letters are
//! at-least-once: after a crash the batch may be loaded again and its rejected rows
//! written again (same `label`, so duplicates can be recognised).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, PoisonError};

use serde_json::{Value as Json, json};

/// The option naming the dead-letter file, in both sinks.
pub const DEAD_LETTER_PATH: &str = "sink.dead-letter.path";
/// The Stream Load header that lets a load succeed with filtered rows.
pub const MAX_FILTER_RATIO: &str = "max_filter_ratio";
/// The longest row or reason text kept in one dead letter.
const MAX_TEXT: usize = 64 * 1024;

/// What a successful load's answer says about rows the target filtered.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Rejected {
    /// `NumberFilteredRows`.
    pub rows: u64,
    /// `ErrorURL`, when the answer has one.
    pub error_url: Option<String>,
}

impl Rejected {
    /// Reads `NumberFilteredRows` and `ErrorURL` from a load answer (Doris and StarRocks
    /// name them alike); `None` when no row was filtered or the body is no JSON object.
    pub fn from_answer(body: &[u8]) -> Option<Self> {
        let json: Json = serde_json::from_slice(body).ok()?;
        let rows = json.get("NumberFilteredRows").and_then(Json::as_u64)?;
        if rows == 0 {
            return None;
        }
        let error_url = json
            .get("ErrorURL")
            .and_then(Json::as_str)
            .map(str::trim)
            .filter(|u| !u.is_empty())
            .map(str::to_string);
        Some(Self { rows, error_url })
    }
}

/// One row of an error log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RejectedRow {
    /// Why the target rejected it.
    pub reason: String,
    /// The row as the target reported it, when the line carries it.
    pub row: Option<String>,
}

/// The rows an error log lists, in order (see the module documentation for the formats);
/// lines that are no row (Doris's `TOO MUCH ERROR!` and `Summary:`) are skipped.
pub fn parse_error_log(text: &str) -> Vec<RejectedRow> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .filter(|l| !l.starts_with("TOO MUCH ERROR!") && !l.starts_with("Summary:"))
        .map(parse_line)
        .collect()
}

fn parse_line(line: &str) -> RejectedRow {
    // Doris: `Reason: {reason}. src line [{row}]; ` (the trailing blank trimmed already).
    if let Some(rest) = line.strip_prefix("Reason: ") {
        if let Some((reason, row)) = rest.split_once(". src line [") {
            let row = row.strip_suffix(';').unwrap_or(row);
            let row = row.strip_suffix(']').unwrap_or(row);
            return RejectedRow {
                reason: cut(reason),
                row: Some(cut(row)),
            };
        }
        return RejectedRow {
            reason: cut(rest),
            row: None,
        };
    }
    // StarRocks: `Error: {reason}. Row: {row}`.
    if let Some(rest) = line.strip_prefix("Error: ") {
        if let Some((reason, row)) = rest.split_once(". Row: ") {
            return RejectedRow {
                reason: cut(reason),
                row: Some(cut(row)),
            };
        }
        return RejectedRow {
            reason: cut(rest),
            row: None,
        };
    }
    RejectedRow {
        reason: cut(line),
        row: None,
    }
}

fn cut(text: &str) -> String {
    if text.len() <= MAX_TEXT {
        return text.to_string();
    }
    let mut end = MAX_TEXT;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text[..end].to_string()
}

/// Where a rejected batch came from, for every dead letter of it.
#[derive(Debug, Clone)]
pub struct BatchOrigin<'a> {
    /// `Doris` or `StarRocks`.
    pub target: &'a str,
    /// Target database.
    pub db: &'a str,
    /// Target table.
    pub table: &'a str,
    /// The load's label.
    pub label: &'a str,
    /// The checkpoint whose completion covers the batch (the one it is prepared for, or,
    /// for a visible load, the next one).
    pub checkpoint: u64,
    /// Whether the load was prepared (2PC) or visible at once.
    pub prepared: bool,
    /// The source commit times (`op_ts`, ms since the epoch) of the batch's first and last
    /// change, when the source attached them.
    pub source_op_ts: Option<(String, String)>,
}

/// The dead letters of one rejected batch: one JSON object per listed row, plus one for
/// the rows the log does not list (or all of them, when it could not be read, with
/// `detail_error` saying why). Together their `rows` add up to `rejected.rows`.
pub fn letters(
    origin: &BatchOrigin<'_>,
    rejected: &Rejected,
    listed: &[RejectedRow],
    detail_error: Option<&str>,
) -> Vec<Json> {
    let at_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
    let base = |reason: &str, row: Option<&str>, rows: u64| {
        let mut letter = json!({
            "at_ms": at_ms,
            "target": origin.target,
            "table": format!("{}.{}", origin.db, origin.table),
            "reason": reason,
            "row": row,
            "rows": rows,
            "label": origin.label,
            "checkpoint": origin.checkpoint,
            "mode": if origin.prepared { "prepared" } else { "visible" },
            "error_url": rejected.error_url,
        });
        if let (Some((first, last)), Some(map)) = (&origin.source_op_ts, letter.as_object_mut()) {
            map.insert("source_op_ts".into(), json!([first, last]));
        }
        letter
    };
    let listed_count = u64::try_from(listed.len()).unwrap_or(u64::MAX);
    let shown = listed_count.min(rejected.rows);
    let mut out: Vec<Json> = listed
        .iter()
        .take(usize::try_from(shown).unwrap_or(usize::MAX))
        .map(|r| base(&r.reason, r.row.as_deref(), 1))
        .collect();
    let rest = rejected.rows - shown;
    if rest > 0 {
        let why = match (detail_error, rejected.error_url.is_some(), shown) {
            (Some(e), _, _) => format!(
                "rejected by the target; the detail could not be fetched from its ErrorURL: {e}"
            ),
            (None, false, _) => {
                "rejected by the target; its answer named no ErrorURL, so no detail is known"
                    .to_string()
            }
            (None, true, 0) => "rejected by the target; its error log lists no row".to_string(),
            (None, true, _) => format!(
                "rejected by the target; its error log lists only the first {shown} rejected rows of a load (the BE writes at most 50)"
            ),
        };
        out.push(base(&why, None, rest));
    }
    out
}

/// The dead-letter file: JSON lines, appended and fsynced, opened on first use (mode 0600
/// on Unix: rows may hold personal data).
#[derive(Debug)]
pub struct DeadLetterFile {
    path: PathBuf,
    file: Mutex<Option<std::fs::File>>,
}

impl DeadLetterFile {
    /// A file at `path`, checked but not created yet (see [`check_path`]).
    pub fn new(path: PathBuf) -> Self {
        Self {
            path,
            file: Mutex::new(None),
        }
    }

    /// Where the dead letters go.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Appends `letters`, one line each, and syncs them to disk. Blocking: call it off the
    /// async workers.
    ///
    /// # Errors
    /// When the file cannot be opened, written or synced.
    pub fn append(&self, letters: &[Json]) -> std::io::Result<()> {
        let mut text = String::new();
        for l in letters {
            text.push_str(&l.to_string());
            text.push('\n');
        }
        let mut guard = self.file.lock().unwrap_or_else(PoisonError::into_inner);
        if guard.is_none() {
            let mut options = std::fs::OpenOptions::new();
            options.create(true).append(true);
            #[cfg(unix)]
            {
                use std::os::unix::fs::OpenOptionsExt;
                options.mode(0o600);
            }
            *guard = Some(options.open(&self.path)?);
        }
        let Some(file) = guard.as_mut() else {
            return Err(std::io::Error::other("the dead-letter file is not open"));
        };
        file.write_all(text.as_bytes())?;
        file.sync_data()
    }
}

/// The option's description, the same in both sinks.
pub const DEAD_LETTER_DESCRIPTION: &str = "JSON-lines file that receives the rows the target rejects (with the reason, the row as the target reported it, the load's label and checkpoint) instead of stopping the pipeline; loads are then sent with max_filter_ratio 1 unless sink.properties.max_filter_ratio is set. Unset (the default): a rejected row stops the pipeline";

/// With a dead-letter file: lets loads succeed with filtered rows (`max_filter_ratio: 1`)
/// unless the user set a ratio in `sink.properties.*` (lower-case keys); returns whether
/// the user's ratio stands.
pub fn allow_filtered_rows(load_headers: &mut std::collections::BTreeMap<String, String>) -> bool {
    if load_headers.contains_key(MAX_FILTER_RATIO) {
        return true;
    }
    load_headers.insert(MAX_FILTER_RATIO.to_string(), "1".to_string());
    false
}

/// A sink's `sink.dead-letter.path`, as both sinks read it: the checked path (`None`
/// when unset) with `max_filter_ratio: 1` added to the load headers, unless the user set
/// a ratio (kept, and said in the log).
///
/// # Errors
/// The reason, for an invalid-option error naming the option.
pub fn configure(
    raw: Option<&str>,
    load_headers: &mut std::collections::BTreeMap<String, String>,
) -> Result<Option<PathBuf>, String> {
    let Some(raw) = raw else {
        return Ok(None);
    };
    let path = check_path(raw)?;
    if allow_filtered_rows(load_headers) {
        tracing::info!(
            "sink.dead-letter.path is set and so is sink.properties.max_filter_ratio: loads keep that ratio, so a load with more rejected rows than it allows still stops the pipeline"
        );
    }
    Ok(Some(path))
}

/// Checks a `sink.dead-letter.path` value without creating anything: not empty, not a
/// directory, and its directory exists.
///
/// # Errors
/// The reason, for an invalid-option error.
pub fn check_path(raw: &str) -> Result<PathBuf, String> {
    let raw = raw.trim();
    if raw.is_empty() {
        return Err("must name a file (JSON lines)".into());
    }
    let path = PathBuf::from(raw);
    if path.is_dir() {
        return Err(format!(
            "{} is a directory; name a file in it, e.g. {}",
            path.display(),
            path.join("dead-letters.jsonl").display()
        ));
    }
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        if !dir.is_dir() {
            return Err(format!(
                "the directory {} does not exist; create it first",
                dir.display()
            ));
        }
    }
    Ok(path)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn doris_and_starrocks_error_logs_are_read() {
        let doris = "Reason: column(v) values is null while columns is not nullable. src line [{\"id\":2,\"v\":null}]; \n\
                     Reason: column_name[s], the length of input is too long than schema. first 32 bytes of input str: [abc] schema length: 3; actual length: 9; . src line []; \n\
                     TOO MUCH ERROR! already reach 50. show no more next error.\n";
        let rows = parse_error_log(doris);
        assert_eq!(rows.len(), 2);
        assert_eq!(
            rows[0],
            RejectedRow {
                reason: "column(v) values is null while columns is not nullable".into(),
                row: Some("{\"id\":2,\"v\":null}".into()),
            }
        );
        assert!(rows[1].reason.contains("too long than schema"));
        assert_eq!(rows[1].row.as_deref(), Some(""));
        let starrocks =
            "Error: NULL value in non-nullable column 'v'. Row: {\"id\":2,\"v\":null,\"__op\":0}\n";
        assert_eq!(
            parse_error_log(starrocks),
            [RejectedRow {
                reason: "NULL value in non-nullable column 'v'".into(),
                row: Some("{\"id\":2,\"v\":null,\"__op\":0}".into()),
            }]
        );
        assert_eq!(parse_error_log("odd line\n")[0].row, None);
    }

    #[test]
    fn the_answer_names_filtered_rows_and_the_error_url() {
        let body = br#"{"Status":"Success","NumberFilteredRows":2,"ErrorURL":"http://be/x"}"#;
        assert_eq!(
            Rejected::from_answer(body),
            Some(Rejected {
                rows: 2,
                error_url: Some("http://be/x".into())
            })
        );
        assert_eq!(Rejected::from_answer(br#"{"NumberFilteredRows":0}"#), None);
        assert_eq!(Rejected::from_answer(b"not json"), None);
    }

    fn origin() -> BatchOrigin<'static> {
        BatchOrigin {
            target: "Doris",
            db: "shop",
            table: "t",
            label: "l_1",
            checkpoint: 7,
            prepared: true,
            source_op_ts: Some(("1000".into(), "2000".into())),
        }
    }

    #[test]
    fn every_rejected_row_is_accounted_for() {
        let rejected = Rejected {
            rows: 3,
            error_url: Some("http://be/x".into()),
        };
        let listed = parse_error_log("Reason: bad. src line [r1]; \n");
        let out = letters(&origin(), &rejected, &listed, None);
        assert_eq!(out.len(), 2);
        assert_eq!(out[0]["row"], "r1");
        assert_eq!(out[0]["reason"], "bad");
        assert_eq!(out[0]["label"], "l_1");
        assert_eq!(out[0]["checkpoint"], 7);
        assert_eq!(out[0]["table"], "shop.t");
        assert_eq!(out[0]["source_op_ts"], json!(["1000", "2000"]));
        assert_eq!(out[1]["rows"], 2);
        assert!(out[1]["row"].is_null());
        // Unreadable: all rows in one letter, with the reason.
        let out = letters(&origin(), &rejected, &[], Some("HTTP 404"));
        assert_eq!(out.len(), 1);
        assert_eq!(out[0]["rows"], 3);
        assert!(out[0]["reason"].as_str().unwrap().contains("HTTP 404"));
    }

    #[test]
    fn the_file_is_appended_and_paths_are_checked() {
        let dir = std::env::temp_dir().join(format!("cdc-dl-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("dl.jsonl");
        let _ = std::fs::remove_file(&path);
        let file = DeadLetterFile::new(path.clone());
        file.append(&[json!({"a": 1})]).unwrap();
        file.append(&[json!({"a": 2}), json!({"a": 3})]).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(text, "{\"a\":1}\n{\"a\":2}\n{\"a\":3}\n");
        assert!(
            check_path(dir.to_str().unwrap())
                .unwrap_err()
                .contains("directory")
        );
        assert!(
            check_path(dir.join("no/such/x.jsonl").to_str().unwrap())
                .unwrap_err()
                .contains("does not exist")
        );
        assert!(check_path(" ").is_err());
        assert_eq!(check_path(path.to_str().unwrap()).unwrap(), path);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
