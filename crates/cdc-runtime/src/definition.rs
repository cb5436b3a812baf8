//! The pipeline file: YAML with Flink CDC's blocks (`source`, `sink`, `route`, `transform`,
//! `pipeline`) read into plain options. Which options are *known* is checked later against
//! the factories, in [`crate::Pipeline::build`].

use std::collections::BTreeMap;
use std::path::Path;

use cdc_api::Options;
use serde_json::Value as Json;

use crate::RuntimeError;
use crate::secrets;
use crate::suggest::did_you_mean;

const TOP_LEVEL_KEYS: [&str; 5] = ["source", "sink", "route", "transform", "pipeline"];
const ROUTE_KEYS: [&str; 4] = [
    "source-table",
    "sink-table",
    "replace-symbol",
    "description",
];
const TRANSFORM_KEYS: [&str; 9] = [
    "source-table",
    "projection",
    "filter",
    "primary-keys",
    "partition-keys",
    "table-options",
    "table-options.delimiter",
    "converter-after-transform",
    "description",
];

/// A parsed pipeline file.
#[derive(Debug, Clone)]
pub struct PipelineDefinition {
    /// Where it came from, for messages (`pipeline.yaml`, or `<string>`).
    pub origin: String,
    /// The `source` block.
    pub source: ConnectorBlock,
    /// The `sink` block.
    pub sink: SinkBlock,
    /// The `route` rules, each as its keys.
    pub routes: Vec<BTreeMap<String, String>>,
    /// The `transform` rules, each as its keys.
    pub transforms: Vec<BTreeMap<String, String>>,
    /// The `pipeline` block.
    pub pipeline: Options,
}

/// A `source` or `sink` block: the connector type, an optional display name and the
/// connector's own options.
#[derive(Debug, Clone)]
pub struct ConnectorBlock {
    /// `type:`, the factory identifier.
    pub connector_type: String,
    /// `name:`, for logs.
    pub name: Option<String>,
    /// Everything else, flattened to `key: text`.
    pub options: Options,
}

/// The `sink` block: a connector plus the schema-change filters Flink CDC puts there.
#[derive(Debug, Clone)]
pub struct SinkBlock {
    /// The connector part.
    pub connector: ConnectorBlock,
    /// `include.schema.changes`, when given.
    pub include_schema_changes: Option<Vec<String>>,
    /// `exclude.schema.changes`; when the key is not written and the file's
    /// `schema.change.behavior` is `lenient` or not written, `drop.table` and
    /// `truncate.table`, as Flink CDC's parser sets it (an explicit `[]` lets them through).
    pub exclude_schema_changes: Vec<String>,
}

impl PipelineDefinition {
    /// Reads and parses a pipeline file.
    pub fn from_yaml_file(path: &Path) -> Result<Self, RuntimeError> {
        let text = std::fs::read_to_string(path).map_err(|source| RuntimeError::ReadFile {
            path: path.display().to_string(),
            source,
        })?;
        Self::from_yaml_str(&text, &path.display().to_string())
    }

    /// Parses pipeline YAML; `origin` names it in messages. `${NAME}` is replaced by the
    /// environment variable `NAME` first and `${file:/path}` by the file's content (an unset
    /// variable or unreadable file is an error naming it; `$${` writes a literal `${`), so
    /// secrets and ports need not be written into the file.
    pub fn from_yaml_str(text: &str, origin: &str) -> Result<Self, RuntimeError> {
        Self::parse(text, origin, &|name| std::env::var(name).ok())
    }

    fn parse(
        text: &str,
        origin: &str,
        lookup: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Self, RuntimeError> {
        // Parsed first, substituted after: a value is never re-read as YAML, so a secret
        // keeps its exact text, cannot break the file, and no parse error can show it.
        let mut root: Json = serde_saphyr::from_str(text)
            .map_err(|e| RuntimeError::definition(origin, format!("not valid YAML: {e}")))?;
        substitute_tree(&mut root, "", lookup).map_err(|m| RuntimeError::definition(origin, m))?;
        let Json::Object(root) = root else {
            return Err(RuntimeError::definition(
                origin,
                "the file must be a mapping with the blocks source, sink and pipeline",
            ));
        };
        for key in root.keys() {
            if !TOP_LEVEL_KEYS.contains(&key.as_str()) {
                return Err(RuntimeError::definition(
                    origin,
                    format!(
                        "unknown top-level block '{key}'{}; the blocks are {}",
                        did_you_mean(key, TOP_LEVEL_KEYS),
                        TOP_LEVEL_KEYS.join(", ")
                    ),
                ));
            }
        }
        let at = |block: &str| format!("{origin}: {block}");
        let block = |name: &str| -> Result<&serde_json::Map<String, Json>, RuntimeError> {
            match root.get(name) {
                Some(Json::Object(m)) => Ok(m),
                Some(_) => Err(RuntimeError::definition(
                    at(name),
                    "must be a mapping of options",
                )),
                None => Err(RuntimeError::definition(
                    origin,
                    format!(
                        "the '{name}' block is missing; a pipeline needs source, sink and pipeline"
                    ),
                )),
            }
        };

        let source = connector_block("source", block("source")?, &at("source"))?;
        let sink_map = block("sink")?;
        let mut sink_options = sink_map.clone();
        let include = sink_options
            .remove("include.schema.changes")
            .map(|v| tag_list(&v, &at("sink.include.schema.changes")))
            .transpose()?;
        let exclude = sink_options
            .remove("exclude.schema.changes")
            .map(|v| tag_list(&v, &at("sink.exclude.schema.changes")))
            .transpose()?;
        let mut sink = SinkBlock {
            connector: connector_block("sink", &sink_options, &at("sink"))?,
            include_schema_changes: include,
            exclude_schema_changes: Vec::new(),
        };

        let pipeline_map = block("pipeline")?;
        if pipeline_map.is_empty() {
            return Err(RuntimeError::definition(
                at("pipeline"),
                "must not be empty; give at least `name:`",
            ));
        }
        let mut pipeline = Options::new("pipeline");
        flatten("", pipeline_map, &mut pipeline, &at("pipeline"), true)?;
        sink.exclude_schema_changes = match exclude {
            Some(tags) => tags,
            // Flink CDC's YamlPipelineDefinitionParser decides this from the file alone,
            // reading an unwritten behavior as its option default, lenient, even where
            // flink-cdc.sh then runs the pipeline with conf/flink-cdc.yaml's EVOLVE
            // (FLINK-36514).
            None if pipeline
                .get_raw("schema.change.behavior")
                .is_none_or(|b| b.trim().eq_ignore_ascii_case("lenient")) =>
            {
                vec!["drop.table".to_string(), "truncate.table".to_string()]
            }
            None => Vec::new(),
        };

        Ok(Self {
            origin: origin.to_string(),
            source,
            sink,
            routes: rules(root.get("route"), "route", &ROUTE_KEYS, origin)?,
            transforms: rules(root.get("transform"), "transform", &TRANSFORM_KEYS, origin)?,
            pipeline,
        })
    }
}

/// Substitutes `${...}` inside every string value of the tree (keys stay as written) and
/// remembers the secret ones (see [`secrets`]).
fn substitute_tree(
    value: &mut Json,
    key: &str,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Result<(), String> {
    match value {
        Json::Object(map) => {
            for (k, v) in map.iter_mut() {
                substitute_tree(v, k, lookup)?;
            }
        }
        Json::Array(items) => {
            for v in items {
                substitute_tree(v, key, lookup)?;
            }
        }
        Json::String(text) if text.contains('$') => {
            let (substituted, used) =
                substitute_env(text, lookup).map_err(|m| format!("in `{key}`: {m}"))?;
            for u in used {
                if u.from_file || secrets::is_secret_key(key) {
                    secrets::remember(&u.value);
                }
            }
            *text = substituted;
        }
        _ => {}
    }
    Ok(())
}

/// One value a `${...}` was replaced with.
struct Substituted {
    value: String,
    /// From `${file:...}`.
    from_file: bool,
}

/// Replaces `${NAME}` with `lookup(NAME)` and `${file:PATH}` with the file's content;
/// `$${` stays a literal `${`. Returns the text and the values put in.
fn substitute_env(
    text: &str,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Result<(String, Vec<Substituted>), String> {
    let mut used = Vec::new();
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find('$') {
        out.push_str(&rest[..at]);
        let tail = &rest[at..];
        if let Some(after) = tail.strip_prefix("$${") {
            out.push_str("${");
            rest = after;
        } else if let Some(after) = tail.strip_prefix("${") {
            let end = after
                .find('}')
                .ok_or_else(|| "an unclosed ${ (write $${ for a literal ${)".to_string())?;
            let name = &after[..end];
            if let Some(path) = name.strip_prefix("file:") {
                // A secret kept in a file (Docker/Kubernetes secrets): its content, without
                // the trailing newline.
                // Only small regular files: `/dev/stdin` or `/dev/zero` would block or never end.
                const MAX_SECRET_BYTES: u64 = 64 * 1024;
                let unreadable = |e: std::io::Error| {
                    format!("cannot read the secret file {path} (used as ${{file:{path}}}): {e}")
                };
                let meta = std::fs::metadata(path).map_err(unreadable)?;
                if !meta.is_file() || meta.len() > MAX_SECRET_BYTES {
                    return Err(format!(
                        "${{file:{path}}} must name a regular file of at most {MAX_SECRET_BYTES} bytes"
                    ));
                }
                warn_if_shared(path, &meta);
                let content = std::fs::read_to_string(path).map_err(unreadable)?;
                let content = content.trim_end_matches(['\n', '\r']);
                out.push_str(content);
                used.push(Substituted {
                    value: content.to_string(),
                    from_file: true,
                });
                rest = &after[end + 1..];
                continue;
            }
            let valid = !name.is_empty()
                && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
                && !name.starts_with(|c: char| c.is_ascii_digit());
            if !valid {
                return Err(format!(
                    "'${{{name}}}' is not an environment variable reference"
                ));
            }
            let value = lookup(name).ok_or_else(|| {
                format!("the environment variable {name} is not set (used as ${{{name}}})")
            })?;
            out.push_str(&value);
            used.push(Substituted {
                value,
                from_file: false,
            });
            rest = &after[end + 1..];
        } else {
            out.push('$');
            rest = &tail[1..];
        }
    }
    out.push_str(rest);
    Ok((out, used))
}

/// Warns when a secret file can be read by users other than its owner.
fn warn_if_shared(path: &str, meta: &std::fs::Metadata) {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = meta.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            tracing::warn!(
                "the secret file {path} can be read by other users (mode {mode:o}); make it readable by its owner only (chmod 600, or defaultMode: 0400 for a Kubernetes secret volume)"
            );
        }
    }
    #[cfg(not(unix))]
    let _ = (path, meta);
}

fn connector_block(
    block: &str,
    map: &serde_json::Map<String, Json>,
    location: &str,
) -> Result<ConnectorBlock, RuntimeError> {
    let connector_type = match map.get("type") {
        Some(Json::String(t)) if !t.trim().is_empty() => t.trim().to_string(),
        _ => {
            return Err(RuntimeError::definition(
                location,
                format!(
                    "'type' is required: the connector to use, e.g. `type: {}`",
                    if block == "source" { "mysql" } else { "doris" }
                ),
            ));
        }
    };
    let name = map.get("name").and_then(Json::as_str).map(str::to_string);
    let mut rest = map.clone();
    rest.remove("type");
    rest.remove("name");
    let mut options = Options::new(block);
    flatten("", &rest, &mut options, location, false)?;
    Ok(ConnectorBlock {
        connector_type,
        name,
        options,
    })
}

/// Turns nested mappings into dotted keys and scalars into text. Lists are joined with
/// commas when `allow_lists` is off only if they hold scalars; otherwise they are an error.
fn flatten(
    prefix: &str,
    map: &serde_json::Map<String, Json>,
    out: &mut Options,
    location: &str,
    allow_lists: bool,
) -> Result<(), RuntimeError> {
    for (key, value) in map {
        let full = if prefix.is_empty() {
            key.clone()
        } else {
            format!("{prefix}.{key}")
        };
        match value {
            Json::Object(inner) => flatten(&full, inner, out, location, allow_lists)?,
            Json::Array(items) if allow_lists => {
                out.insert(full, Json::Array(items.clone()).to_string());
            }
            Json::Array(items) => {
                let mut parts = Vec::with_capacity(items.len());
                for item in items {
                    parts.push(scalar_text(item).ok_or_else(|| {
                        RuntimeError::definition(
                            format!("{location}.{full}"),
                            "a list here may only hold plain values",
                        )
                    })?);
                }
                out.insert(full, parts.join(","));
            }
            other => {
                let text = scalar_text(other).ok_or_else(|| {
                    RuntimeError::definition(
                        format!("{location}.{full}"),
                        "has no value; remove the key or give it one",
                    )
                })?;
                out.insert(full, text);
            }
        }
    }
    Ok(())
}

fn scalar_text(value: &Json) -> Option<String> {
    match value {
        Json::String(s) => Some(s.clone()),
        Json::Number(n) => Some(n.to_string()),
        Json::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

fn tag_list(value: &Json, location: &str) -> Result<Vec<String>, RuntimeError> {
    let items: Vec<String> = match value {
        Json::Array(items) => items.iter().filter_map(scalar_text).collect(),
        Json::String(s) => s
            .trim_matches(['[', ']'])
            .split(',')
            .map(|t| t.trim().to_string())
            .filter(|t| !t.is_empty())
            .collect(),
        _ => {
            return Err(RuntimeError::definition(
                location,
                "must be a list of schema change tags such as [add.column, drop.column]",
            ));
        }
    };
    for tag in &items {
        if cdc_api::SchemaChangeKind::matching(tag).is_empty() {
            let tags = cdc_api::SchemaChangeKind::ALL.map(cdc_api::SchemaChangeKind::tag);
            return Err(RuntimeError::definition(
                location,
                format!(
                    "unknown schema change tag '{tag}'{}; known tags: {}",
                    did_you_mean(tag, tags),
                    tags.join(", ")
                ),
            ));
        }
    }
    Ok(items)
}

fn rules(
    value: Option<&Json>,
    block: &str,
    known: &[&str],
    origin: &str,
) -> Result<Vec<BTreeMap<String, String>>, RuntimeError> {
    let Some(value) = value else {
        return Ok(Vec::new());
    };
    let Json::Array(items) = value else {
        return Err(RuntimeError::definition(
            format!("{origin}: {block}"),
            "must be a list of rules (each starting with '- ')",
        ));
    };
    let mut out = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        let location = format!("{origin}: {block}[{i}]");
        let Json::Object(map) = item else {
            return Err(RuntimeError::definition(location, "must be a mapping"));
        };
        let mut rule = BTreeMap::new();
        for (key, v) in map {
            if !known.contains(&key.as_str()) {
                return Err(RuntimeError::definition(
                    location,
                    format!(
                        "unknown key '{key}'{}; known keys: {}",
                        did_you_mean(key, known.iter().copied()),
                        known.join(", ")
                    ),
                ));
            }
            let text = scalar_text(v).ok_or_else(|| {
                RuntimeError::definition(format!("{location}.{key}"), "must be a plain value")
            })?;
            rule.insert(key.clone(), text);
        }
        if !rule.contains_key("source-table") {
            return Err(RuntimeError::definition(
                location,
                "'source-table' is required",
            ));
        }
        out.push(rule);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Flink CDC's YamlPipelineDefinitionParser (FLINK-36514): without
    /// `exclude.schema.changes`, a file whose behavior is lenient or not written excludes
    /// drop.table and truncate.table; any written exclude list, `[]` included, replaces that.
    #[test]
    fn lenient_excludes_drop_and_truncate_table_unless_exclude_is_written() {
        let exclude = |sink: &str, pipeline: &str| {
            let yaml = format!(
                "source: {{type: values}}\nsink: {{type: values{sink}}}\npipeline: {{name: p{pipeline}}}\n"
            );
            PipelineDefinition::from_yaml_str(&yaml, "p.yaml")
                .unwrap()
                .sink
                .exclude_schema_changes
        };
        let defaults = ["drop.table", "truncate.table"];
        assert_eq!(exclude("", ""), defaults);
        assert_eq!(exclude("", ", schema.change.behavior: LENIENT"), defaults);
        assert_eq!(
            exclude(", include.schema.changes: [truncate.table]", ""),
            defaults
        );
        assert!(exclude("", ", schema.change.behavior: evolve").is_empty());
        assert!(exclude(", exclude.schema.changes: []", "").is_empty());
        assert_eq!(
            exclude(", exclude.schema.changes: [drop.column]", ""),
            ["drop.column"]
        );
    }

    #[test]
    fn parses_the_reference_example() {
        let yaml = r#"
source: {type: mysql, hostname: db, port: 3306, username: cdc, password: pw,
         tables: "app_db.\\.*", server-id: 5400-5404}
sink:
  type: doris
  fenodes: "fe:8030"
  table.create.properties.replication_num: 1
  exclude.schema.changes: [drop.column]
route:
  - {source-table: "app_db.\\.*", sink-table: "ods_db.ods_<>", replace-symbol: "<>"}
pipeline: {name: mysql-to-doris, parallelism: 4}
"#;
        let def = PipelineDefinition::from_yaml_str(yaml, "p.yaml").unwrap();
        assert_eq!(def.source.connector_type, "mysql");
        assert_eq!(def.source.options.get_raw("port"), Some("3306"));
        assert_eq!(def.source.options.get_raw("tables"), Some("app_db.\\.*"));
        assert_eq!(
            def.sink
                .connector
                .options
                .get_raw("table.create.properties.replication_num"),
            Some("1")
        );
        assert_eq!(def.sink.exclude_schema_changes, ["drop.column"]);
        assert_eq!(def.routes[0]["replace-symbol"], "<>");
        assert_eq!(def.pipeline.get_raw("parallelism"), Some("4"));
    }

    #[test]
    fn secret_values_keep_their_exact_text_and_never_show_in_errors() {
        // Each of these broke the file or changed silently when substitution was textual.
        let values = [
            "S3cr3t\"x",
            "a: b",
            "0x1F",
            "ab #cd",
            "back\\slash \\n \\\"",
            "line one\nline two",
            "'single' and \"double\"",
            "{[flow]}, *star &anchor !tag %pct @at `tick`",
        ];
        for (i, value) in values.iter().enumerate() {
            let env = move |n: &str| (n == "PW").then(|| (*value).to_string());
            let yaml = "source: {type: values, password: \"${PW}\", port: nope}\n\
                        sink: {type: values}\npipeline: {name: p}\n";
            let d = PipelineDefinition::parse(yaml, "s.yaml", &env).unwrap();
            assert_eq!(
                d.source.options.get_raw("password"),
                Some(*value),
                "value {i} changed"
            );
            // A plain (unquoted) scalar and one inside a block mapping behave the same.
            let yaml = format!(
                "source:\n  type: values\n  password: ${{PW}}\n  user: u{i}\nsink:\n  type: values\npipeline:\n  name: p\n"
            );
            let d = PipelineDefinition::parse(&yaml, "s.yaml", &env).unwrap();
            assert_eq!(d.source.options.get_raw("password"), Some(*value));
            // Anything that quotes the value later is masked.
            let shown = crate::secrets::redact(&format!("bad value '{value}' ({value:?})"));
            assert!(
                !shown.contains(value) || value.len() < crate::secrets::MIN_LEN,
                "{shown}"
            );
        }
        // An error about the file itself never carries the substituted text.
        let env = |n: &str| (n == "PW").then(|| "a: b\nsink: x".to_string());
        let err = PipelineDefinition::parse(
            "source: {type: values, password: \"${PW}\"}\nsink: [1\npipeline: {name: p}\n",
            "s.yaml",
            &env,
        )
        .unwrap_err()
        .to_string();
        assert!(!err.contains("a: b"), "{err}");
    }

    #[test]
    fn environment_variables_are_substituted() {
        let env = &|n: &str| (n == "PW").then(|| "s3cret".to_string());
        assert_eq!(
            substitute_env("password: ${PW}", env).unwrap().0,
            "password: s3cret"
        );
        assert_eq!(
            substitute_env("cost: $5 $${PW}", env).unwrap().0,
            "cost: $5 ${PW}"
        );
        let err = substitute_env("password: ${NOPE}", env).err().unwrap();
        assert!(err.contains("NOPE is not set"), "{err}");
        assert!(substitute_env("x: ${PW", env).is_err());
        assert!(substitute_env("x: ${1A}", env).is_err());
        let dir = tempfile::tempdir().unwrap();
        let secret = dir.path().join("pw");
        std::fs::write(&secret, "from-file\n").unwrap();
        let text = format!("password: ${{file:{}}}", secret.display());
        assert_eq!(substitute_env(&text, env).unwrap().0, "password: from-file");
        let err = substitute_env("password: ${file:/nonexistent/pw}", env)
            .err()
            .unwrap();
        assert!(
            err.contains("cannot read the secret file /nonexistent/pw"),
            "{err}"
        );
        let err = substitute_env("password: ${file:/dev/zero}", env)
            .err()
            .unwrap();
        assert!(err.contains("regular file"), "{err}");
    }

    #[test]
    fn nested_keys_flatten_to_dotted_names() {
        let yaml = "source: {type: values}\nsink:\n  type: values\n  table.create.properties:\n    replication_num: 1\npipeline: {name: x}\n";
        let def = PipelineDefinition::from_yaml_str(yaml, "p").unwrap();
        assert_eq!(
            def.sink
                .connector
                .options
                .get_raw("table.create.properties.replication_num"),
            Some("1")
        );
    }

    #[test]
    fn bad_files_name_the_problem() {
        let cases = [
            ("source: [", "not valid YAML"),
            (
                "sink: {type: values}\npipeline: {name: x}",
                "'source' block is missing",
            ),
            (
                "source: {type: values}\nsink: {type: values}\npipeline: {}",
                "must not be empty",
            ),
            (
                "source: {type: values}\nsink: {type: values}\npipeline: {name: x}\nrout: []",
                "did you mean 'route'",
            ),
            (
                "source: {hostname: x}\nsink: {type: values}\npipeline: {name: x}",
                "'type' is required",
            ),
            (
                "source: {type: values}\nsink: {type: values, exclude.schema.changes: [drop.colum]}\npipeline: {name: x}",
                "unknown schema change tag 'drop.colum'",
            ),
            (
                "source: {type: values}\nsink: {type: values}\npipeline: {name: x}\nroute: [{source-table: a, sink-tabel: b}]",
                "did you mean 'sink-table'",
            ),
        ];
        for (yaml, expected) in cases {
            let err = PipelineDefinition::from_yaml_str(yaml, "p.yaml")
                .unwrap_err()
                .to_string();
            assert!(err.contains(expected), "{yaml:?} gave {err}");
        }
    }
}
