//! Response bodies in the shapes Doris prints them.

use serde_json::{Map, Value, json};

/// The stream-load response (BE `StreamLoadContext::to_json`), fields in Doris's order.
#[derive(Debug, Clone, Default)]
pub(crate) struct LoadResponse {
    pub(crate) txn_id: i64,
    pub(crate) label: String,
    pub(crate) comment: String,
    pub(crate) two_phase_commit: bool,
    pub(crate) group_commit: bool,
    pub(crate) status: String,
    pub(crate) existing_job_status: Option<String>,
    pub(crate) message: String,
    pub(crate) total_rows: u64,
    pub(crate) loaded_rows: u64,
    pub(crate) filtered_rows: u64,
    pub(crate) unselected_rows: u64,
    pub(crate) load_bytes: u64,
    pub(crate) load_time_ms: u64,
    pub(crate) begin_txn_time_ms: u64,
    pub(crate) put_time_ms: u64,
    pub(crate) read_data_time_ms: u64,
    pub(crate) write_data_time_ms: u64,
    pub(crate) commit_publish_time_ms: u64,
    pub(crate) error_url: Option<String>,
}

impl LoadResponse {
    pub(crate) fn fail(label: &str, message: impl Into<String>) -> Self {
        Self {
            label: label.to_string(),
            status: "Fail".into(),
            message: message.into(),
            ..Self::default()
        }
    }

    /// Pretty JSON (4-space indent, as rapidjson's PrettyWriter) plus a newline.
    pub(crate) fn to_body(&self) -> String {
        let mut m = Map::new();
        m.insert("TxnId".into(), json!(self.txn_id));
        m.insert("Label".into(), json!(self.label));
        m.insert("Comment".into(), json!(self.comment));
        if self.group_commit {
            m.insert("GroupCommit".into(), json!(true));
        } else {
            m.insert(
                "TwoPhaseCommit".into(),
                json!(if self.two_phase_commit {
                    "true"
                } else {
                    "false"
                }),
            );
        }
        m.insert("Status".into(), json!(self.status));
        if let Some(s) = &self.existing_job_status {
            m.insert("ExistingJobStatus".into(), json!(s));
        }
        m.insert("Message".into(), json!(self.message));
        m.insert("NumberTotalRows".into(), json!(self.total_rows));
        m.insert("NumberLoadedRows".into(), json!(self.loaded_rows));
        m.insert("NumberFilteredRows".into(), json!(self.filtered_rows));
        m.insert("NumberUnselectedRows".into(), json!(self.unselected_rows));
        m.insert("LoadBytes".into(), json!(self.load_bytes));
        m.insert("LoadTimeMs".into(), json!(self.load_time_ms));
        if !self.group_commit {
            m.insert("BeginTxnTimeMs".into(), json!(self.begin_txn_time_ms));
        }
        m.insert("StreamLoadPutTimeMs".into(), json!(self.put_time_ms));
        m.insert("ReadDataTimeMs".into(), json!(self.read_data_time_ms));
        m.insert("WriteDataTimeMs".into(), json!(self.write_data_time_ms));
        if !self.group_commit {
            m.insert(
                "CommitAndPublishTimeMs".into(),
                json!(self.commit_publish_time_ms),
            );
        }
        if let Some(url) = &self.error_url {
            m.insert("ErrorURL".into(), json!(url));
        }
        pretty(&Value::Object(m))
    }
}

/// `{"status": ..., "msg": ...}` (BE 2PC replies and `Status::to_json`), pretty.
pub(crate) fn status_msg(status: &str, msg: &str) -> String {
    let mut m = Map::new();
    m.insert("status".into(), json!(status));
    m.insert("msg".into(), json!(msg));
    pretty(&Value::Object(m))
}

/// FE `RestBaseResult` error: `{"status":"FAILED","msg":...}`.
pub(crate) fn fe_failed(msg: &str) -> String {
    let mut m = Map::new();
    m.insert("status".into(), json!("FAILED"));
    m.insert("msg".into(), json!(msg));
    Value::Object(m).to_string()
}

/// FE `ResponseEntityBuilder` body: `{"msg":..,"code":..,"data":..,"count":0}`.
pub(crate) fn rest_body(msg: &str, code: i64, data: Value) -> String {
    let mut m = Map::new();
    m.insert("msg".into(), json!(msg));
    m.insert("code".into(), json!(code));
    m.insert("data".into(), data);
    m.insert("count".into(), json!(0));
    Value::Object(m).to_string()
}

fn pretty(v: &Value) -> String {
    let mut buf = Vec::new();
    let fmt = serde_json::ser::PrettyFormatter::with_indent(b"    ");
    let mut ser = serde_json::Serializer::with_formatter(&mut buf, fmt);
    if serde::Serialize::serialize(v, &mut ser).is_err() {
        return format!("{v}\n");
    }
    let mut s = String::from_utf8(buf).unwrap_or_default();
    s.push('\n');
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn field_order() {
        let r = LoadResponse {
            status: "Success".into(),
            message: "OK".into(),
            error_url: Some("u".into()),
            ..LoadResponse::default()
        };
        let body = r.to_body();
        let keys: Vec<&str> = body
            .lines()
            .filter_map(|l| l.trim().strip_prefix('"'))
            .filter_map(|l| l.split('"').next())
            .collect();
        assert_eq!(
            keys,
            [
                "TxnId",
                "Label",
                "Comment",
                "TwoPhaseCommit",
                "Status",
                "Message",
                "NumberTotalRows",
                "NumberLoadedRows",
                "NumberFilteredRows",
                "NumberUnselectedRows",
                "LoadBytes",
                "LoadTimeMs",
                "BeginTxnTimeMs",
                "StreamLoadPutTimeMs",
                "ReadDataTimeMs",
                "WriteDataTimeMs",
                "CommitAndPublishTimeMs",
                "ErrorURL"
            ]
        );
        assert!(body.starts_with("{\n    \"TxnId\": 0,"));
    }
}
