//! PARSE_JSON / TRY_PARSE_JSON and subscripts on JSON values.
//!
//! Flink CDC 3.6 parses into a VARIANT; here the result is the JSON type (text that sinks
//! can write to a JSON column). The text is normalised as Flink's variant prints it back:
//! no insignificant whitespace, object keys in sorted order.

use std::collections::BTreeMap;
use std::fmt;

use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::Value as Json;

/// Parses `text` as JSON; a repeated key in one object is an error unless
/// `allow_duplicate_keys`, which keeps its last value (as Flink CDC does).
pub(crate) fn parse(text: &str, allow_duplicate_keys: bool) -> Result<String, String> {
    let mut de = serde_json::Deserializer::from_str(text);
    let value = Checked {
        allow_duplicate_keys,
    }
    .deserialize(&mut de)
    .and_then(|v| de.end().map(|()| v))
    .map_err(|e| format!("'{}' is not valid JSON ({e})", shorten(text)))?;
    Ok(value.to_string())
}

/// Long inputs are cut in messages so an error line stays readable.
fn shorten(text: &str) -> String {
    const MAX: usize = 60;
    match text.char_indices().nth(MAX) {
        Some((i, _)) => format!("{}...", &text[..i]),
        None => text.to_string(),
    }
}

/// Builds a `serde_json::Value` with sorted keys, refusing duplicate keys when asked to.
#[derive(Clone, Copy)]
struct Checked {
    allow_duplicate_keys: bool,
}

impl<'de> DeserializeSeed<'de> for Checked {
    type Value = Json;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Json, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Checked {
    type Value = Json;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_bool<E>(self, v: bool) -> Result<Json, E> {
        Ok(Json::Bool(v))
    }

    fn visit_i64<E>(self, v: i64) -> Result<Json, E> {
        Ok(Json::from(v))
    }

    fn visit_u64<E>(self, v: u64) -> Result<Json, E> {
        Ok(Json::from(v))
    }

    fn visit_f64<E>(self, v: f64) -> Result<Json, E> {
        Ok(serde_json::Number::from_f64(v).map_or(Json::Null, Json::Number))
    }

    fn visit_str<E>(self, v: &str) -> Result<Json, E> {
        Ok(Json::String(v.to_string()))
    }

    fn visit_string<E>(self, v: String) -> Result<Json, E> {
        Ok(Json::String(v))
    }

    fn visit_unit<E>(self) -> Result<Json, E> {
        Ok(Json::Null)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Json, A::Error> {
        let mut out = Vec::new();
        while let Some(v) = seq.next_element_seed(self)? {
            out.push(v);
        }
        Ok(Json::Array(out))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Json, A::Error> {
        let mut fields = BTreeMap::new();
        while let Some(key) = map.next_key::<String>()? {
            let value = map.next_value_seed(self)?;
            if fields.insert(key.clone(), value).is_some() && !self.allow_duplicate_keys {
                return Err(de::Error::custom(format!("duplicate key \"{key}\"")));
            }
        }
        Ok(Json::Object(fields.into_iter().collect()))
    }
}

/// What a subscript on a JSON value is given.
pub(crate) enum Key<'a> {
    /// 1-based array position.
    Index(i64),
    Field(&'a str),
}

/// `json[key]` as Flink CDC's `itemAccess(Variant, ...)`: the element or field as JSON text,
/// `None` when it is missing or the value is not an array (index) or object (field).
pub(crate) fn item(text: &str, key: Key<'_>) -> Result<Option<String>, String> {
    let value: Json = serde_json::from_str(text)
        .map_err(|e| format!("'{}' is not valid JSON ({e})", shorten(text)))?;
    let found = match (&value, key) {
        (Json::Array(items), Key::Index(i)) => usize::try_from(i)
            .ok()
            .and_then(|i| i.checked_sub(1))
            .and_then(|i| items.get(i)),
        (Json::Object(fields), Key::Field(name)) => fields.get(name),
        _ => None,
    };
    Ok(found.map(Json::to_string))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn parses_and_normalises() {
        assert_eq!(
            parse(
                r#" {"b": [1, 2.5, "x"], "a": {"z": null, "y": true}} "#,
                false
            )
            .unwrap(),
            r#"{"a":{"y":true,"z":null},"b":[1,2.5,"x"]}"#
        );
        assert_eq!(parse("42", false).unwrap(), "42");
        assert!(parse("{", false).unwrap_err().contains("not valid JSON"));
        assert!(parse("[1] x", false).is_err());
    }

    #[test]
    fn duplicate_keys_are_refused_unless_allowed() {
        let text = r#"{"k": 1, "k": 2}"#;
        assert!(
            parse(text, false)
                .unwrap_err()
                .contains("duplicate key \"k\"")
        );
        assert_eq!(parse(text, true).unwrap(), r#"{"k":2}"#);
    }

    #[test]
    fn subscripts_follow_flink_cdc() {
        let doc = r#"{"a":[10,{"b":"x"}],"n":1}"#;
        assert_eq!(item(doc, Key::Field("n")).unwrap().unwrap(), "1");
        assert_eq!(item(doc, Key::Field("zz")).unwrap(), None);
        assert_eq!(item(doc, Key::Index(1)).unwrap(), None);
        let arr = item(doc, Key::Field("a")).unwrap().unwrap();
        assert_eq!(item(&arr, Key::Index(1)).unwrap().unwrap(), "10");
        assert_eq!(item(&arr, Key::Index(0)).unwrap(), None);
        assert_eq!(item(&arr, Key::Index(3)).unwrap(), None);
        assert_eq!(item(&arr, Key::Index(i64::MIN)).unwrap(), None);
        assert_eq!(item(&arr, Key::Index(2)).unwrap().unwrap(), r#"{"b":"x"}"#);
    }
}
