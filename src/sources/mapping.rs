//! Helpers that copy vendor fields into the unified field map, shared by the connectors.
use serde::Deserializer as _;
use serde::de::{DeserializeSeed, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::value::RawValue;
use serde_json::{Map, Value, json};

use super::MappedRecord;
use crate::error::FieldFailure;
use crate::time::parse_rfc3339_millis;

/// Whether `text` is a documentation placeholder such as `<string>` or `<unknown>`.
pub fn is_placeholder(text: &str) -> bool {
    let t = text.trim();
    t.len() > 2
        && t.starts_with('<')
        && t.ends_with('>')
        && t[1..t.len() - 1]
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

/// The vendor id of `record` (its `id_field`, text or number), or why it has none.
pub fn record_id(record: &Value, id_field: &str) -> Result<String, String> {
    let record = record
        .as_object()
        .ok_or_else(|| "the record is not a JSON object".to_string())?;
    match record.get(id_field) {
        Some(Value::String(s)) if !s.trim().is_empty() && !is_placeholder(s) => {
            Ok(s.trim().to_string())
        }
        Some(Value::Number(n)) => Ok(n.to_string()),
        _ => Err(format!("the record has no `{id_field}`")),
    }
}

/// The vendor id of a record still in its raw JSON text, as [`record_id`] reads it, without
/// building the record: every other field is skipped.
pub fn raw_record_id(record: &RawValue, id_field: &str) -> Result<String, String> {
    /// The record's `id_field` value: `Err` when the record is not an object.
    struct IdOf<'f>(&'f str);

    impl<'de> Visitor<'de> for IdOf<'_> {
        type Value = Result<Option<Value>, ()>;

        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("a JSON value")
        }

        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
            let mut id = None;
            while let Some(is_id) = map.next_key_seed(KeyIs(self.0))? {
                if is_id {
                    // The last of repeated keys counts, as in a parsed record.
                    id = Some(map.next_value::<Value>()?);
                } else {
                    map.next_value::<IgnoredAny>()?;
                }
            }
            Ok(Ok(id))
        }

        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
            while seq.next_element::<IgnoredAny>()?.is_some() {}
            Ok(Err(()))
        }

        fn visit_bool<E>(self, _: bool) -> Result<Self::Value, E> {
            Ok(Err(()))
        }
        fn visit_i64<E>(self, _: i64) -> Result<Self::Value, E> {
            Ok(Err(()))
        }
        fn visit_u64<E>(self, _: u64) -> Result<Self::Value, E> {
            Ok(Err(()))
        }
        fn visit_f64<E>(self, _: f64) -> Result<Self::Value, E> {
            Ok(Err(()))
        }
        fn visit_str<E>(self, _: &str) -> Result<Self::Value, E> {
            Ok(Err(()))
        }
        fn visit_unit<E>(self) -> Result<Self::Value, E> {
            Ok(Err(()))
        }
    }

    /// Whether a key is `id_field`, compared without copying the key.
    struct KeyIs<'f>(&'f str);

    impl<'de> DeserializeSeed<'de> for KeyIs<'_> {
        type Value = bool;

        fn deserialize<D: serde::Deserializer<'de>>(self, keys: D) -> Result<bool, D::Error> {
            keys.deserialize_str(self)
        }
    }

    impl Visitor<'_> for KeyIs<'_> {
        type Value = bool;

        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("a key")
        }

        fn visit_str<E>(self, key: &str) -> Result<bool, E> {
            Ok(key == self.0)
        }
    }

    let mut reader = serde_json::Deserializer::from_str(record.get());
    let found = reader
        .deserialize_any(IdOf(id_field))
        .map_err(|err| format!("the record is not valid JSON: {err}"))?;
    let Ok(id) = found else {
        return Err("the record is not a JSON object".to_string());
    };
    let mut object = Map::new();
    if let Some(id) = id {
        object.insert(id_field.to_string(), id);
    }
    record_id(&Value::Object(object), id_field)
}

/// The path of the first key or string in `record` that holds U+0000 (`tags[1].name`).
/// Paths are built only for a record that has one.
fn nul_path(record: &Map<String, Value>) -> Option<String> {
    fn has_nul(value: &Value) -> bool {
        match value {
            Value::String(s) => s.contains('\0'),
            Value::Array(items) => items.iter().any(has_nul),
            Value::Object(fields) => fields.iter().any(|(k, v)| k.contains('\0') || has_nul(v)),
            _ => false,
        }
    }
    if !record.iter().any(|(k, v)| k.contains('\0') || has_nul(v)) {
        return None;
    }
    fn walk(value: &Value, path: &str) -> Option<String> {
        match value {
            Value::String(s) => s.contains('\0').then(|| path.to_string()),
            Value::Array(items) => items
                .iter()
                .enumerate()
                .find_map(|(i, item)| walk(item, &format!("{path}[{i}]"))),
            Value::Object(fields) => object(fields, &format!("{path}.")),
            _ => None,
        }
    }
    fn object(fields: &Map<String, Value>, prefix: &str) -> Option<String> {
        fields.iter().find_map(|(key, value)| {
            let path = format!("{prefix}{key}");
            if key.contains('\0') {
                Some(path)
            } else {
                walk(value, &path)
            }
        })
    }
    object(record, "")
}

/// Builds a [`MappedRecord`] from one vendor record object.
pub struct RecordMapper<'a> {
    record: &'a Map<String, Value>,
    /// What has been mapped so far.
    pub mapped: MappedRecord,
}

impl<'a> RecordMapper<'a> {
    /// Starts mapping `record`; rejects it if it is not an object, has no usable `id_field`,
    /// or holds a NUL character (U+0000) anywhere: no database column can keep one, and
    /// the GraphQL API refuses it the same way.
    pub fn new(record: &'a Value, id_field: &str) -> Result<Self, String> {
        let external_id = record_id(record, id_field)?;
        let record = record
            .as_object()
            .ok_or_else(|| "the record is not a JSON object".to_string())?;
        if let Some(path) = nul_path(record) {
            return Err(format!(
                "`{path}` contains the NUL character (U+0000), which cannot be stored"
            ));
        }
        Ok(Self {
            record,
            mapped: MappedRecord {
                external_id,
                ..MappedRecord::default()
            },
        })
    }

    fn warn(&mut self, field: &str, message: impl Into<String>) {
        self.mapped
            .warnings
            .push(FieldFailure::new(field.to_string(), message));
    }

    /// The record's text value of `from` (numbers are written as text): `Some(None)` for
    /// null, `None` when absent or unusable (a warning says why).
    pub fn text(&mut self, from: &str) -> Option<Option<String>> {
        match self.record.get(from)? {
            Value::Null => Some(None),
            Value::String(s) if is_placeholder(s) => {
                self.warn(from, format!("placeholder value {s:?} not stored"));
                None
            }
            Value::String(s) => Some(Some(s.clone())),
            Value::Number(n) => Some(Some(n.to_string())),
            other => {
                self.warn(from, format!("expected text, got {}", kind(other)));
                None
            }
        }
    }

    /// Copies text field `from` to the unified field at `to` (`address.city` for nested).
    pub fn copy_text(&mut self, from: &str, to: &str) {
        if let Some(value) = self.text(from) {
            self.set(to, value.map_or(Value::Null, Value::String));
        }
    }

    /// Copies boolean field `from` to `to`.
    pub fn copy_bool(&mut self, from: &str, to: &str) {
        match self.record.get(from) {
            None | Some(Value::Null) => {}
            Some(Value::Bool(b)) => self.set(to, Value::Bool(*b)),
            Some(other) => {
                let message = format!("expected true or false, got {}", kind(other));
                self.warn(from, message);
            }
        }
    }

    /// Copies a list of text `from` to `to`, leaving out placeholders (with a warning).
    pub fn copy_list(&mut self, from: &str, to: &str) {
        match self.record.get(from) {
            None => {}
            Some(Value::Null) => self.set(to, json!([])),
            Some(Value::Array(items)) => {
                let mut out = Vec::new();
                for (i, item) in items.iter().enumerate() {
                    match item {
                        Value::String(s) if is_placeholder(s) => {
                            self.warn(
                                &format!("{from}[{i}]"),
                                format!("placeholder value {s:?} not stored"),
                            );
                        }
                        Value::String(s) => out.push(Value::String(s.clone())),
                        Value::Number(n) => out.push(Value::String(n.to_string())),
                        other => {
                            let message = format!("expected text, got {}", kind(other));
                            self.warn(&format!("{from}[{i}]"), message);
                        }
                    }
                }
                self.set(to, Value::Array(out));
            }
            Some(other) => {
                let message = format!("expected a list, got {}", kind(other));
                self.warn(from, message);
            }
        }
    }

    /// The record's timestamp `from` in epoch milliseconds.
    pub fn time(&mut self, from: &str) -> Option<i64> {
        let text = self.text(from)??;
        match parse_rfc3339_millis(&text) {
            Some(millis) => Some(millis),
            None => {
                self.warn(from, format!("not an ISO 8601 date-time: {text:?}"));
                None
            }
        }
    }

    /// Copies timestamp `from` to `to` (as RFC 3339).
    pub fn copy_time(&mut self, from: &str, to: &str) {
        match self.record.get(from) {
            None => {}
            Some(Value::Null) => self.set(to, Value::Null),
            Some(_) => {
                if let Some(millis) = self.time(from) {
                    self.set(to, Value::String(crate::time::format_millis(millis)));
                }
            }
        }
    }

    /// Sets unified field `to` (dotted for nested objects).
    pub fn set(&mut self, to: &str, value: Value) {
        let mut target = &mut self.mapped.fields;
        let mut parts = to.split('.').peekable();
        while let Some(part) = parts.next() {
            if parts.peek().is_none() {
                target.insert(part.to_string(), value);
                return;
            }
            let entry = target
                .entry(part.to_string())
                .or_insert_with(|| Value::Object(Map::new()));
            if !entry.is_object() {
                *entry = Value::Object(Map::new());
            }
            match entry {
                Value::Object(map) => target = map,
                _ => return,
            }
        }
    }

    /// The raw value of `from`.
    pub fn raw(&self, from: &str) -> Option<&'a Value> {
        self.record.get(from)
    }

    /// Finishes with the record's creation and update times.
    pub fn finish(mut self, created: &str, updated: &str) -> MappedRecord {
        self.mapped.created_at = self.time(created);
        self.mapped.updated_at = self.time(updated);
        self.mapped
    }
}

fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "text",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_with_a_nul_are_refused_naming_where() {
        let record =
            json!({ "id": 1, "name": "Ok", "tags": [{ "name": "a" }, { "name": "b\u{0}" }] });
        let refused = RecordMapper::new(&record, "id").err().unwrap_or_default();
        assert!(refused.contains("`tags[1].name`"), "{refused}");
        assert!(RecordMapper::new(&json!({ "id": 2, "name": "Ok" }), "id").is_ok());
    }

    #[test]
    fn placeholders_are_recognised() {
        assert!(is_placeholder("<string>"));
        assert!(is_placeholder(" <unknown> "));
        assert!(!is_placeholder("Jane <jane@example.com>"));
        assert!(!is_placeholder("<>"));
        assert!(!is_placeholder("string"));
    }

    #[test]
    fn a_raw_record_has_the_id_its_parsed_form_has() {
        for text in [
            r#"{"id": 7, "name": {"first": "x"}, "tags": [1, {"id": 9}]}"#,
            r#"{"name": "x", "id": " a-1 "}"#,
            r#"{"i\u0064": "escaped-key"}"#,
            r#"{"id": 1, "id": 2}"#,
            r#"{"id": "<string>"}"#,
            r#"{"id": ""}"#,
            r#"{"id": null}"#,
            r#"{"id": [1]}"#,
            r#"{"other": 1}"#,
            r#"[1, 2]"#,
            r#""id""#,
            "3",
        ] {
            let raw: Box<RawValue> = serde_json::from_str(text).expect("json");
            let parsed: Value = serde_json::from_str(text).expect("json");
            assert_eq!(
                raw_record_id(&raw, "id"),
                record_id(&parsed, "id"),
                "{text}"
            );
        }
        let raw: Box<RawValue> = serde_json::from_str(r#"{"id": 12}"#).expect("json");
        assert_eq!(raw_record_id(&raw, "id"), Ok("12".to_string()));
    }

    #[test]
    fn nested_fields_and_warnings() {
        let record = json!({"id": 7, "city": "<string>", "zip": "10115", "dnd": "yes"});
        let mut m = RecordMapper::new(&record, "id").expect("has id");
        m.copy_text("city", "address.city");
        m.copy_text("zip", "address.postalCode");
        m.copy_bool("dnd", "dnd.email");
        let mapped = m.finish("createdAt", "updatedAt");
        assert_eq!(mapped.external_id, "7");
        assert_eq!(
            Value::Object(mapped.fields),
            json!({"address": {"postalCode": "10115"}})
        );
        let fields: Vec<&str> = mapped.warnings.iter().map(|w| w.field.as_str()).collect();
        assert_eq!(fields, ["city", "dnd"]);
    }
}
