//! Stream load: header checks, transaction begin, and turning the body into rows.

use std::collections::HashMap;

use super::body::{self, CsvOptions, Record};
use super::catalog::{Row, Table};
use super::model::{LoadRecord, TableModel, TxnState};
use super::response::LoadResponse;
use super::state::{Op, PendingLoad, State};
use super::types::ValueError;

/// The hidden delete-sign column.
pub(crate) const DELETE_SIGN: &str = "__DORIS_DELETE_SIGN__";
const SEQUENCE_COL: &str = "__DORIS_SEQUENCE_COL__";
/// The rows a load's error log lists at most (`MAX_ERROR_NUM` in the BE's
/// be/src/runtime/runtime_state.cpp).
const MAX_ERROR_LOG_ROWS: usize = 50;

/// What the BE knows of a stream-load request before reading its body.
#[derive(Debug, Clone)]
pub(crate) struct LoadRequest {
    pub(crate) db: String,
    pub(crate) table: String,
    /// Header names in lower case.
    pub(crate) headers: HashMap<String, String>,
    pub(crate) auth: Option<(String, String)>,
}

impl LoadRequest {
    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).map(String::as_str)
    }

    fn flag(&self, name: &str) -> bool {
        self.header(name)
            .is_some_and(|v| v.trim().eq_ignore_ascii_case("true"))
    }

    pub(crate) fn two_phase(&self) -> bool {
        self.flag("two_phase_commit")
    }
}

/// A load whose transaction has begun.
#[derive(Debug, Clone)]
pub(crate) struct Begun {
    pub(crate) txn_id: i64,
    pub(crate) label: String,
    pub(crate) two_phase: bool,
    pub(crate) group_commit: bool,
}

fn generated_label(state: &mut State) -> String {
    let a = state.next_id();
    format!(
        "{a:08x}-1c40-4d51-b75e-{:012x}",
        a.wrapping_mul(2_654_435_761)
    )
}

fn record(state: &mut State, req: &LoadRequest, resp: &LoadResponse) {
    state.load_log.push(LoadRecord {
        label: resp.label.clone(),
        db: req.db.clone(),
        table: req.table.clone(),
        status: resp.status.clone(),
        message: resp.message.clone(),
        txn_id: resp.txn_id,
        two_phase_commit: resp.two_phase_commit,
        total_rows: resp.total_rows,
        loaded_rows: resp.loaded_rows,
        filtered_rows: resp.filtered_rows,
    });
}

/// Checks done before the body is read, up to beginning the transaction. `Err` is the
/// final answer (already logged).
pub(crate) fn begin(state: &mut State, req: &LoadRequest) -> Result<Begun, Box<LoadResponse>> {
    state.tick();
    begin_inner(state, req).map_err(|resp| {
        record(state, req, &resp);
        Box::new(resp)
    })
}

#[allow(clippy::result_large_err)] // boxed by `begin`
fn begin_inner(state: &mut State, req: &LoadRequest) -> Result<Begun, LoadResponse> {
    let two_phase = req.two_phase();
    let given_label = req.header("label").map(str::trim).filter(|l| !l.is_empty());
    let mut group_commit = false;
    if let Some(gc) = req.header("group_commit") {
        let gc = gc.trim().to_ascii_lowercase();
        if !matches!(gc.as_str(), "async_mode" | "sync_mode" | "off_mode") {
            return Err(LoadResponse::fail(
                given_label.unwrap_or_default(),
                "[INVALID_ARGUMENT]group_commit can only be [async_mode, sync_mode, off_mode]",
            ));
        }
        group_commit = gc != "off_mode";
        if group_commit && given_label.is_some() {
            return Err(LoadResponse::fail(
                given_label.unwrap_or_default(),
                "[INVALID_ARGUMENT]label and group_commit can't be set at the same time",
            ));
        }
        if group_commit && two_phase {
            return Err(LoadResponse::fail(
                "",
                "[INVALID_ARGUMENT]two_phase_commit and group_commit can't be set at the same time",
            ));
        }
    }
    let label = match given_label {
        Some(l) => l.to_string(),
        None if group_commit => format!("group_commit_{}", generated_label(state)),
        None => generated_label(state),
    };
    let fail = |msg: String| {
        let mut r = LoadResponse::fail(&label, msg);
        r.two_phase_commit = two_phase;
        r.group_commit = group_commit;
        r
    };
    let Some((user, password)) = req.auth.clone() else {
        return Err(fail("no valid Basic authorization".into()));
    };
    let format = req
        .header("format")
        .map_or_else(|| "csv".to_string(), |f| f.trim().to_ascii_lowercase());
    if !matches!(
        format.as_str(),
        "csv"
            | "json"
            | "csv_with_names"
            | "csv_with_names_and_types"
            | "parquet"
            | "orc"
            | "arrow"
    ) {
        return Err(fail(format!(
            "[INTERNAL_ERROR]unknown data format, format={}",
            req.header("format").unwrap_or_default()
        )));
    }
    if let Some(ct) = req.header("compress_type") {
        if format == "json" {
            return Err(fail(
                "[NOT_IMPLEMENTED_ERROR]compress data of JSON format is not supported.".into(),
            ));
        }
        return Err(fail(format!(
            "[NOT_IMPLEMENTED_ERROR]the emulator does not decompress bodies (compress_type={ct})"
        )));
    }
    if let Some(t) = req.header("timeout") {
        if t.trim().parse::<u32>().is_err() {
            return Err(fail(format!(
                "[INVALID_ARGUMENT]Invalid timeout format, {t}"
            )));
        }
    }
    // begin_txn at the FE
    let fe = |code: &str, n: u32, m: String| {
        format!("[{code}]TStatus: errCode = {n}, detailMessage = {m}")
    };
    if !state.check_user(&user, &password) {
        return Err(fail(fe(
            "ANALYSIS_ERROR",
            2,
            format!(
                "Access denied for user '{user}'@'127.0.0.1' (using password: {})",
                if password.is_empty() { "NO" } else { "YES" }
            ),
        )));
    }
    let Some(db) = state.catalog.databases.get(&req.db) else {
        return Err(fail(fe(
            "NOT_FOUND",
            7,
            format!("unknown databases, dbName={}", req.db),
        )));
    };
    if !db.tables.contains_key(&req.table) {
        return Err(fail(fe(
            "NOT_FOUND",
            7,
            format!("unknown table, tableName={}", req.table),
        )));
    }
    let valid_label = !label.is_empty()
        && label.len() <= 128
        && label
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b':'));
    if !valid_label {
        return Err(fail(fe(
            "ANALYSIS_ERROR",
            2,
            format!("Label format error. regex: ^[-_A-Za-z0-9:]{{1,128}}$, label: {label}"),
        )));
    }
    if let Some(holder) = state.label_holder(&req.db, &label) {
        let existing = match holder.state {
            TxnState::Running => "RUNNING",
            TxnState::PreCommitted => "PRECOMMITTED",
            _ => "FINISHED",
        };
        let mut r = fail(format!(
            "[LABEL_ALREADY_EXISTS]TStatus: errCode = 2, detailMessage = Label [{label}] has already been used, relate to txn [{}]",
            holder.id
        ));
        r.txn_id = -1;
        r.status = "Label Already Exists".into();
        r.existing_job_status = Some(existing.into());
        return Err(r);
    }
    let txn_id = state.begin_txn(&req.db, &req.table, &label);
    Ok(Begun {
        txn_id,
        label,
        two_phase,
        group_commit,
    })
}

/// Options that decide how the body becomes rows, checked by the FE planner.
#[derive(Debug, Clone)]
struct Plan {
    format: String,
    strict: bool,
    max_filter_ratio: f64,
    delete_all: bool,
    /// Source field names in body order (CSV) or the selected JSON keys.
    columns: Option<Vec<String>>,
    /// Target columns (table columns, plus the delete sign when present).
    partial: bool,
    has_delete_sign: bool,
    csv: CsvOptions,
    json_by_line: bool,
    strip_outer_array: bool,
}

fn analysis(m: impl std::fmt::Display) -> String {
    format!("[ANALYSIS_ERROR]TStatus: errCode = 2, detailMessage = {m}")
}

fn plan(req: &LoadRequest, table: &Table) -> Result<Plan, String> {
    let format = req
        .header("format")
        .map_or_else(|| "csv".to_string(), |f| f.trim().to_ascii_lowercase());
    if matches!(format.as_str(), "parquet" | "orc" | "arrow") {
        return Err(format!(
            "[NOT_IMPLEMENTED_ERROR]the emulator does not read format={format}"
        ));
    }
    let strict = match req.header("strict_mode").map(str::trim) {
        None => false,
        Some(v) if v.eq_ignore_ascii_case("true") => true,
        Some(v) if v.eq_ignore_ascii_case("false") => false,
        Some(_) => {
            return Err("[INVALID_ARGUMENT]Invalid strict mode format. Must be bool type".into());
        }
    };
    let max_filter_ratio = match req.header("max_filter_ratio") {
        None => 0.0,
        Some(v) => match v.trim().parse::<f64>() {
            Ok(r) if (0.0..=1.0).contains(&r) => r,
            _ => {
                return Err(format!(
                    "[INVALID_ARGUMENT]Invalid max_filter_ratio: {v}, must be in [0, 1]"
                ));
            }
        },
    };
    for unsupported in [
        "jsonpaths",
        "json_root",
        "where",
        "partitions",
        "temporary_partitions",
    ] {
        if req.header(unsupported).is_some() {
            return Err(format!(
                "[NOT_IMPLEMENTED_ERROR]the emulator does not support the `{unsupported}` header"
            ));
        }
    }
    let merge_type = req
        .header("merge_type")
        .map_or_else(|| "APPEND".to_string(), |m| m.trim().to_ascii_uppercase());
    let delete_all = match merge_type.as_str() {
        "APPEND" => {
            if req.header("delete").is_some() {
                return Err(analysis(
                    "not support DELETE ON clause when merge type is not MERGE.",
                ));
            }
            false
        }
        "DELETE" => true,
        "MERGE" => {
            if req.header("delete").is_none() {
                return Err(analysis(
                    "Excepted DELETE ON clause when merge type is MERGE.",
                ));
            }
            return Err(
                "[NOT_IMPLEMENTED_ERROR]the emulator does not support merge_type MERGE".into(),
            );
        }
        other => return Err(format!("[INVALID_ARGUMENT]unknown merge type {other}")),
    };
    let unique = table.model == TableModel::Unique;
    if delete_all && !unique {
        return Err(analysis(
            "load by MERGE or DELETE is only supported in unique tables.",
        ));
    }
    let columns: Option<Vec<String>> = req.header("columns").map(|c| {
        c.split(',')
            .map(|s| s.trim().trim_matches('`').to_string())
            .filter(|s| !s.is_empty())
            .collect()
    });
    let hidden: Vec<String> = req
        .header("hidden_columns")
        .map(|h| {
            h.split(',')
                .map(|s| s.trim().to_string())
                .filter(|s| !s.is_empty())
                .collect()
        })
        .unwrap_or_default();
    let mut has_delete_sign = false;
    if let Some(cols) = &columns {
        for c in cols {
            if c.contains('=') || c.contains('(') {
                return Err(
                    "[NOT_IMPLEMENTED_ERROR]the emulator does not support expressions in `columns`"
                        .into(),
                );
            }
            if c.eq_ignore_ascii_case(DELETE_SIGN) {
                if !unique {
                    return Err(analysis(format!(
                        "Unknown column '{c}' in '{}'",
                        table.name
                    )));
                }
                has_delete_sign = true;
            } else if table.column_index(c).is_none() {
                return Err(analysis(format!(
                    "Unknown column '{c}' in '{}'",
                    table.name
                )));
            }
        }
    } else {
        for h in &hidden {
            if h.eq_ignore_ascii_case(DELETE_SIGN) || h.eq_ignore_ascii_case(SEQUENCE_COL) {
                if !unique {
                    return Err(analysis(format!(
                        "Unknown column '{h}' in '{}'",
                        table.name
                    )));
                }
                if h.eq_ignore_ascii_case(SEQUENCE_COL) {
                    return Err("[NOT_IMPLEMENTED_ERROR]the emulator does not support the hidden sequence column".into());
                }
                has_delete_sign = true;
            } else {
                return Err(analysis(format!(
                    "Unknown column '{h}' in '{}'",
                    table.name
                )));
            }
        }
    }
    match (
        req.header("function_column.sequence_col"),
        table.property("function_column.sequence_col"),
        table.property("function_column.sequence_type"),
    ) {
        (Some(_), None, None) => {
            return Err(analysis(format!(
                "There is no sequence column in the table {}",
                table.name
            )));
        }
        (None, None, Some(_)) => {
            return Err(analysis(format!(
                "Table {} has sequence column, need to specify the sequence column",
                table.name
            )));
        }
        (Some(_), None, Some(_)) => {
            return Err("[NOT_IMPLEMENTED_ERROR]the emulator supports sequence columns given by the table property function_column.sequence_col only".into());
        }
        _ => {}
    }
    let partial = req.flag("partial_columns");
    if partial && !table.merge_on_write() {
        return Err(analysis(
            "Only unique key merge on write support partial update",
        ));
    }
    if partial {
        let given = columns.clone().unwrap_or_default();
        if let Some(k) = table
            .columns
            .iter()
            .filter(|c| c.is_key)
            .find(|k| !given.iter().any(|g| g.eq_ignore_ascii_case(&k.name)))
        {
            if columns.is_some() {
                return Err(analysis(format!(
                    "Partial update should include all key columns, missing: {}",
                    k.name
                )));
            }
        }
    }
    if let (Some(cols), false) = (&columns, partial) {
        for c in &table.columns {
            let given = cols.iter().any(|g| g.eq_ignore_ascii_case(&c.name));
            if !given && !c.nullable && c.default.is_none() {
                return Err(analysis(format!(
                    "Column has no default value. column: {}",
                    c.name
                )));
            }
        }
    }
    let enclose = req
        .header("enclose")
        .and_then(|e| body::decode_separator(e).chars().next());
    let escape = req
        .header("escape")
        .and_then(|e| body::decode_separator(e).chars().next());
    let skip_lines = match format.as_str() {
        "csv_with_names" => 1,
        "csv_with_names_and_types" => 2,
        _ => req
            .header("skip_lines")
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or(0),
    };
    Ok(Plan {
        strict,
        max_filter_ratio,
        delete_all,
        columns,
        partial,
        has_delete_sign,
        csv: CsvOptions {
            column_separator: body::decode_separator(
                req.header("column_separator").unwrap_or("\t"),
            ),
            line_delimiter: body::decode_separator(req.header("line_delimiter").unwrap_or("\n")),
            enclose,
            escape,
            trim_double_quotes: req.flag("trim_double_quotes"),
            skip_lines,
        },
        json_by_line: req.flag("read_json_by_line"),
        strip_outer_array: req.flag("strip_outer_array"),
        format,
    })
}

/// The rows of a load after checking every value.
#[derive(Debug, Default)]
pub(crate) struct Converted {
    pub(crate) pending: PendingLoad,
    pub(crate) total: u64,
    pub(crate) filtered: u64,
    /// Error-log lines.
    pub(crate) errors: Vec<String>,
    pub(crate) max_filter_ratio: f64,
}

/// Plans and converts the body. `Err` is a planner failure message.
pub(crate) fn convert(req: &LoadRequest, table: &Table, data: &[u8]) -> Result<Converted, String> {
    let plan = plan(req, table)?;
    let text = String::from_utf8_lossy(data);
    let records = if plan.format == "json" {
        body::parse_json(&text, plan.json_by_line, plan.strip_outer_array)
    } else {
        body::parse_csv(&text, &plan.csv)
    };
    // the columns the rows carry
    let target: Vec<usize> = if plan.partial {
        match &plan.columns {
            Some(cols) => (0..table.columns.len())
                .filter(|i| {
                    cols.iter()
                        .any(|c| c.eq_ignore_ascii_case(&table.columns[*i].name))
                })
                .collect(),
            None => (0..table.columns.len()).collect(),
        }
    } else {
        (0..table.columns.len()).collect()
    };
    let csv_sources: Vec<String> = plan.columns.clone().unwrap_or_else(|| {
        let mut v: Vec<String> = table.columns.iter().map(|c| c.name.clone()).collect();
        if plan.has_delete_sign {
            v.push(DELETE_SIGN.to_string());
        }
        v
    });
    let mut out = Converted {
        pending: PendingLoad {
            table_id: table.id,
            column_ids: target.iter().map(|i| table.columns[*i].uid).collect(),
            partial: plan.partial,
            ops: Vec::new(),
        },
        max_filter_ratio: plan.max_filter_ratio,
        ..Converted::default()
    };
    for rec in records {
        out.total += 1;
        match convert_record(&plan, table, &target, &csv_sources, &rec) {
            Ok(op) => out.pending.ops.push(op),
            Err(reason) => {
                out.filtered += 1;
                let src = match &rec {
                    Record::Csv { src, .. }
                    | Record::Json { src, .. }
                    | Record::Bad { src, .. } => src,
                };
                let src = if reason.contains("too long than schema") {
                    ""
                } else {
                    src.as_str()
                };
                // RuntimeState::append_error_msg_to_file (be/src/runtime/runtime_state.cpp):
                // `Reason: {reason}. src line [{row}]; ` for the first MAX_ERROR_NUM (50)
                // rows, then one `TOO MUCH ERROR!` line and nothing more; the counts in
                // the answer still cover every filtered row.
                match out.errors.len() {
                    n if n < MAX_ERROR_LOG_ROWS => out
                        .errors
                        .push(format!("Reason: {reason}. src line [{src}]; ")),
                    n if n == MAX_ERROR_LOG_ROWS => out.errors.push(format!(
                        "TOO MUCH ERROR! already reach {MAX_ERROR_LOG_ROWS}. show no more next error."
                    )),
                    _ => {}
                }
            }
        }
    }
    Ok(out)
}

/// A field as found in a record: absent, NULL, or text.
enum Field {
    Missing,
    Null,
    Text(String),
}

fn convert_record(
    plan: &Plan,
    table: &Table,
    target: &[usize],
    csv_sources: &[String],
    rec: &Record,
) -> Result<Op, String> {
    let lookup: Box<dyn Fn(&str) -> Field + '_> = match rec {
        Record::Bad { reason, .. } => return Err(reason.clone()),
        Record::Csv { fields, .. } => {
            if fields.len() != csv_sources.len() {
                let which = if fields.len() < csv_sources.len() {
                    "less"
                } else {
                    "more"
                };
                let values: Vec<String> = fields
                    .iter()
                    .map(|f| f.clone().unwrap_or_else(|| "\\N".into()))
                    .collect();
                return Err(format!(
                    "actual column number in csv file is {which} than schema column number.actual number: {}, schema column number: {}; line delimiter: [{}], column separator: [{}], result values:[{}]",
                    fields.len(),
                    csv_sources.len(),
                    plan.csv.line_delimiter.escape_debug(),
                    plan.csv.column_separator.escape_debug(),
                    values.join(", ")
                ));
            }
            Box::new(move |name: &str| {
                match csv_sources
                    .iter()
                    .position(|s| s.eq_ignore_ascii_case(name))
                {
                    None => Field::Missing,
                    Some(i) => match &fields[i] {
                        None => Field::Null,
                        Some(t) => Field::Text(t.clone()),
                    },
                }
            })
        }
        Record::Json { object, .. } => {
            let selected = plan.columns.clone();
            Box::new(move |name: &str| {
                if let Some(sel) = &selected {
                    if !sel.iter().any(|s| s.eq_ignore_ascii_case(name)) {
                        return Field::Missing;
                    }
                }
                let v = object.get(name).or_else(|| {
                    object
                        .iter()
                        .find(|(k, _)| k.eq_ignore_ascii_case(name))
                        .map(|(_, v)| v)
                });
                match v {
                    None => Field::Missing,
                    Some(v) => body::json_text(v).map_or(Field::Null, Field::Text),
                }
            })
        }
    };
    let is_json = matches!(rec, Record::Json { .. });
    let mut values: Row = Vec::with_capacity(target.len());
    for &i in target {
        let col = &table.columns[i];
        let value = match lookup(&col.name) {
            Field::Missing if plan.partial => None,
            Field::Missing => {
                let d = col.default_value();
                if d.is_none() && !col.nullable {
                    return Err(if is_json {
                        format!(
                            "The column `{}` is not nullable, but it's not found in jsondata.",
                            col.name
                        )
                    } else {
                        format!(
                            "column({}) values is null while columns is not nullable",
                            col.name
                        )
                    });
                }
                d
            }
            Field::Null => None,
            Field::Text(raw) => match col.ty.convert(&raw, &col.name) {
                Ok(v) => Some(v),
                Err(ValueError::Range(reason)) => return Err(reason),
                Err(ValueError::Convert) if plan.strict => {
                    return Err(format!(
                        "column({}) value is incorrect while strict mode is true, src value is {raw}",
                        col.name
                    ));
                }
                Err(ValueError::Convert) => None,
            },
        };
        if value.is_none() && !col.nullable {
            if plan.partial && matches!(lookup(&col.name), Field::Missing) {
                // kept from the existing row (checked when new keys are inserted)
            } else {
                return Err(format!(
                    "column({}) values is null while columns is not nullable",
                    col.name
                ));
            }
        }
        values.push(value);
    }
    let delete = if plan.delete_all {
        true
    } else if plan.has_delete_sign {
        match lookup(DELETE_SIGN) {
            Field::Missing => false,
            Field::Null => {
                return Err(format!(
                    "column({DELETE_SIGN}) values is null while columns is not nullable"
                ));
            }
            Field::Text(t) => match t.trim().to_ascii_lowercase().as_str() {
                "0" | "false" => false,
                "1" | "true" => true,
                _ if plan.strict => {
                    return Err(format!(
                        "column({DELETE_SIGN}) value is incorrect while strict mode is true, src value is {t}"
                    ));
                }
                _ => {
                    return Err(format!(
                        "column({DELETE_SIGN}) values is null while columns is not nullable"
                    ));
                }
            },
        }
    } else {
        false
    };
    Ok(Op { values, delete })
}

/// Finishes a begun load with its body: convert, check the filter ratio, commit,
/// pre-commit or abort. Logs and returns the answer.
pub(crate) fn finish(
    state: &mut State,
    req: &LoadRequest,
    begun: &Begun,
    data: &[u8],
    publish_timeout: bool,
    too_many_versions: bool,
    error_url_base: &str,
) -> LoadResponse {
    state.tick();
    let mut resp = LoadResponse {
        txn_id: begun.txn_id,
        label: begun.label.clone(),
        two_phase_commit: begun.two_phase,
        group_commit: begun.group_commit,
        load_bytes: data.len() as u64,
        ..LoadResponse::default()
    };
    if begun.group_commit {
        resp.txn_id = begun.txn_id;
    }
    let outcome = finish_inner(
        state,
        req,
        begun,
        data,
        publish_timeout,
        too_many_versions,
        error_url_base,
        &mut resp,
    );
    if let Err(msg) = outcome {
        state.abort_txn(begun.txn_id, &msg);
        resp.status = "Fail".into();
        resp.message = msg;
    }
    record(state, req, &resp);
    resp
}

#[allow(clippy::too_many_arguments)]
fn finish_inner(
    state: &mut State,
    req: &LoadRequest,
    begun: &Begun,
    data: &[u8],
    publish_timeout: bool,
    too_many_versions: bool,
    error_url_base: &str,
    resp: &mut LoadResponse,
) -> Result<(), String> {
    if state.txns.get(&begun.txn_id).map(|t| t.state) != Some(TxnState::Running) {
        return Err(format!(
            "[CANCELLED]transaction [{}] is already aborted",
            begun.txn_id
        ));
    }
    let Some(table) = state.catalog.table(&req.db, &req.table) else {
        return Err(format!(
            "[NOT_FOUND]TStatus: errCode = 7, detailMessage = unknown table, tableName={}",
            req.table
        ));
    };
    let converted = convert(req, table, data)?;
    resp.total_rows = converted.total;
    resp.filtered_rows = converted.filtered;
    if !converted.errors.is_empty() {
        let name = format!(
            "__shard_0/error_log_insert_stmt_{:x}_{:x}",
            begun.txn_id,
            state.next_id()
        );
        state
            .error_logs
            .insert(name.clone(), converted.errors.join("\n") + "\n");
        resp.error_url = Some(format!("{error_url_base}/api/_load_error_log?file={name}"));
    }
    let selected = converted.total;
    if converted.filtered > 0
        && converted.filtered as f64 > converted.max_filter_ratio * selected as f64
    {
        resp.loaded_rows = 0;
        return Err("[DATA_QUALITY_ERROR]too many filtered rows".into());
    }
    resp.loaded_rows = converted.total - converted.filtered;
    if too_many_versions {
        resp.loaded_rows = 0;
        // RowsetBuilder::check_tablet_version_count, as Status::to_string prints it.
        return Err(
            "[E-235]failed to init rowset builder. version count: 2001, exceed limit: 2000, tablet: 10086"
                .into(),
        );
    }
    if begun.two_phase {
        state.precommit_txn(begun.txn_id, converted.pending);
    } else {
        state.commit_txn(begun.txn_id, Some(converted.pending));
    }
    if publish_timeout && !begun.two_phase {
        resp.status = "Publish Timeout".into();
        resp.message =
            "[PUBLISH_TIMEOUT]transaction commit successfully, BUT data will be visible later"
                .into();
    } else {
        resp.status = "Success".into();
        resp.message = "OK".into();
    }
    Ok(())
}
