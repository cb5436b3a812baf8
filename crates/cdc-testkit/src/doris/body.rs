//! Splitting a stream-load body into records: CSV lines and JSON objects.

/// One record of the body: its fields by name (JSON) or position (CSV), and its source
/// text for the error log.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Record {
    /// CSV fields; `None` is `\N`.
    Csv {
        fields: Vec<Option<String>>,
        src: String,
    },
    /// A JSON object.
    Json {
        object: serde_json::Map<String, serde_json::Value>,
        src: String,
    },
    /// A record that could not be parsed at all (always filtered).
    Bad { reason: String, src: String },
}

/// CSV settings.
#[derive(Debug, Clone)]
pub(crate) struct CsvOptions {
    pub(crate) column_separator: String,
    pub(crate) line_delimiter: String,
    pub(crate) enclose: Option<char>,
    pub(crate) escape: Option<char>,
    pub(crate) trim_double_quotes: bool,
    pub(crate) skip_lines: usize,
}

/// Decodes Doris separator notation: `\x01` hex form, `\t`, `\n`; otherwise as given.
pub(crate) fn decode_separator(s: &str) -> String {
    let lower = s.to_ascii_lowercase();
    if let Some(hex) = lower.strip_prefix("\\x") {
        if hex.len() % 2 == 0 && !hex.is_empty() {
            let bytes: Option<Vec<u8>> = (0..hex.len())
                .step_by(2)
                .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).ok())
                .collect();
            if let Some(b) = bytes.and_then(|b| String::from_utf8(b).ok()) {
                return b;
            }
        }
    }
    match s {
        "\\t" => "\t".into(),
        "\\n" => "\n".into(),
        "\\r\\n" => "\r\n".into(),
        _ => s.to_string(),
    }
}

/// Splits a CSV body into records.
pub(crate) fn parse_csv(body: &str, opts: &CsvOptions) -> Vec<Record> {
    let delim = if opts.line_delimiter.is_empty() {
        "\n"
    } else {
        opts.line_delimiter.as_str()
    };
    let mut out = Vec::new();
    for line in split_lines(body, delim, opts.enclose)
        .into_iter()
        .skip(opts.skip_lines)
    {
        if line.is_empty() {
            continue;
        }
        let fields = split_fields(&line, opts)
            .into_iter()
            .map(|f| {
                let f = if opts.trim_double_quotes {
                    f.strip_prefix('"')
                        .and_then(|x| x.strip_suffix('"'))
                        .map_or(f.clone(), str::to_string)
                } else {
                    f
                };
                (f != "\\N").then_some(f)
            })
            .collect();
        out.push(Record::Csv { fields, src: line });
    }
    out
}

fn split_lines(body: &str, delim: &str, enclose: Option<char>) -> Vec<String> {
    let Some(q) = enclose else {
        return body.split(delim).map(str::to_string).collect();
    };
    // a line delimiter inside an enclosed field does not end the line
    let mut lines = Vec::new();
    let mut cur = String::new();
    let mut quoted = false;
    let mut rest = body;
    while !rest.is_empty() {
        if !quoted && rest.starts_with(delim) {
            lines.push(std::mem::take(&mut cur));
            rest = &rest[delim.len()..];
            continue;
        }
        let Some(c) = rest.chars().next() else { break };
        if c == q {
            quoted = !quoted;
        }
        cur.push(c);
        rest = &rest[c.len_utf8()..];
    }
    lines.push(cur);
    lines
}

fn split_fields(line: &str, opts: &CsvOptions) -> Vec<String> {
    let sep = if opts.column_separator.is_empty() {
        "\t"
    } else {
        opts.column_separator.as_str()
    };
    let Some(q) = opts.enclose else {
        return line.split(sep).map(str::to_string).collect();
    };
    let mut fields = Vec::new();
    let mut cur = String::new();
    let mut rest = line;
    let mut at_start = true;
    let mut quoted = false;
    while !rest.is_empty() {
        let Some(c) = rest.chars().next() else { break };
        if quoted {
            if Some(c) == opts.escape {
                rest = &rest[c.len_utf8()..];
                if let Some(n) = rest.chars().next() {
                    cur.push(n);
                    rest = &rest[n.len_utf8()..];
                }
                continue;
            }
            if c == q {
                quoted = false;
            } else {
                cur.push(c);
            }
            rest = &rest[c.len_utf8()..];
            continue;
        }
        if rest.starts_with(sep) {
            fields.push(std::mem::take(&mut cur));
            rest = &rest[sep.len()..];
            at_start = true;
            continue;
        }
        if at_start && c == q {
            quoted = true;
        } else {
            cur.push(c);
        }
        at_start = false;
        rest = &rest[c.len_utf8()..];
    }
    fields.push(cur);
    fields
}

/// Splits a JSON body into records.
pub(crate) fn parse_json(body: &str, by_line: bool, strip_outer_array: bool) -> Vec<Record> {
    let mut out = Vec::new();
    let docs: Vec<&str> = if by_line {
        body.split('\n')
            .map(|l| l.trim_end_matches('\r'))
            .filter(|l| !l.trim().is_empty())
            .collect()
    } else if body.trim().is_empty() {
        Vec::new()
    } else {
        vec![body]
    };
    for doc in docs {
        match serde_json::from_str::<serde_json::Value>(doc) {
            Err(e) => out.push(Record::Bad {
                reason: format!("Parse json data for JsonDoc failed. error info: {e}"),
                src: doc.to_string(),
            }),
            Ok(serde_json::Value::Array(items)) if strip_outer_array => {
                for item in items {
                    out.push(object_record(item));
                }
            }
            Ok(serde_json::Value::Array(_)) => out.push(Record::Bad {
                reason: "JSON data is array-object, `strip_outer_array` must be TRUE.".into(),
                src: doc.to_string(),
            }),
            Ok(v) if strip_outer_array => out.push(Record::Bad {
                reason: "JSON data is not an array-object, `strip_outer_array` must be FALSE."
                    .into(),
                src: v.to_string(),
            }),
            Ok(v) => out.push(object_record(v)),
        }
    }
    out
}

fn object_record(v: serde_json::Value) -> Record {
    let src = v.to_string();
    match v {
        serde_json::Value::Object(object) => Record::Json { object, src },
        _ => Record::Bad {
            reason: "Expect json object value".into(),
            src,
        },
    }
}

/// The text a JSON value loads as.
pub(crate) fn json_text(v: &serde_json::Value) -> Option<String> {
    match v {
        serde_json::Value::Null => None,
        serde_json::Value::String(s) => Some(s.clone()),
        serde_json::Value::Bool(b) => Some(if *b { "true" } else { "false" }.into()),
        other => Some(other.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn csv(sep: &str, enclose: Option<char>) -> CsvOptions {
        CsvOptions {
            column_separator: sep.into(),
            line_delimiter: "\n".into(),
            enclose,
            escape: Some('\\'),
            trim_double_quotes: false,
            skip_lines: 0,
        }
    }

    #[test]
    fn csv_fields_and_nulls() {
        let r = parse_csv("1\ta\n2\t\\N\n", &csv("\t", None));
        assert_eq!(r.len(), 2);
        let Record::Csv { fields, .. } = &r[1] else {
            panic!("csv")
        };
        assert_eq!(fields, &vec![Some("2".to_string()), None]);
    }

    #[test]
    fn csv_enclose() {
        let r = parse_csv("1,\"a,b\"\n2,\"x\ny\"\n", &csv(",", Some('"')));
        assert_eq!(r.len(), 2);
        let Record::Csv { fields, .. } = &r[1] else {
            panic!("csv")
        };
        assert_eq!(fields[1].as_deref(), Some("x\ny"));
        assert_eq!(decode_separator("\\x01"), "\u{1}");
    }

    #[test]
    fn json_lines_and_arrays() {
        let r = parse_json("{\"a\":1}\n{bad\n[{\"a\":2}]\n", true, false);
        assert_eq!(r.len(), 3);
        assert!(matches!(r[0], Record::Json { .. }));
        assert!(matches!(r[1], Record::Bad { .. }));
        assert!(matches!(r[2], Record::Bad { .. }));
        let r = parse_json("[{\"a\":1},{\"a\":2}]", false, true);
        assert_eq!(r.len(), 2);
    }
}
