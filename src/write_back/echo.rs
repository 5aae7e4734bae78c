//! No echo: once a change is delivered, the stored record's mapped state takes the values
//! written, so the next sync sees no difference between them and what the vendor now holds
//! (it would otherwise take the gateway's own write for a vendor change, and could undo a
//! later local change with it).
use entity::prelude::ContactSource;
use entity::{contact_source, write_back};
use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, sea_query::Expr};
use serde_json::{Map, Value};

use super::fields::writable_fields;
use crate::error::Result;
use crate::sources::definition::parse_format;

/// `state` (a stored mapped state's JSON) with `body`'s values put at the contact fields
/// they stand for in `format`.
pub fn with_written(format: &str, state: &str, body: &Map<String, Value>) -> String {
    let mut state: Value =
        serde_json::from_str(state).unwrap_or_else(|_| Value::Object(Map::new()));
    let Some(format) = parse_format(format) else {
        return state.to_string();
    };
    let Some(root) = state.as_object_mut() else {
        return state.to_string();
    };
    // Tags written are the record's tags: those the vendor knows by id.
    if let Some(Value::Array(tags)) = body.get("tags")
        && super::fields::carries_tags(format)
    {
        let ids: Vec<Value> = tags.iter().filter_map(|t| t.get("id").cloned()).collect();
        root.insert("tags".into(), Value::Array(ids));
    }
    let fields = root
        .entry("fields")
        .or_insert_with(|| Value::Object(Map::new()));
    for f in writable_fields(format) {
        let Some(value) = body.get(f.vendor) else {
            continue;
        };
        if f.path == "name" {
            // A full name is split as a patch splits it (seed 001's records hold the parts).
            let (first, last) = match value.as_str() {
                Some(full) => crate::contacts::split_name(full),
                None => (None, None),
            };
            if let Some(fields) = fields.as_object_mut() {
                fields.insert("firstName".into(), first.map_or(Value::Null, Value::String));
                fields.insert("lastName".into(), last.map_or(Value::Null, Value::String));
            }
            continue;
        }
        let mut target = &mut *fields;
        let mut parts = f.path.split('.').peekable();
        while let Some(part) = parts.next() {
            let Some(object) = target.as_object_mut() else {
                break;
            };
            if parts.peek().is_none() {
                object.insert(part.to_string(), value.clone());
                break;
            }
            target = object
                .entry(part.to_string())
                .or_insert_with(|| Value::Object(Map::new()));
        }
    }
    state.to_string()
}

/// `record` (a stored vendor record's JSON) with the version the vendor `answer`ed a write
/// with (`updated_at`, `updatedAt`, `etag`), so that the next change's precondition is
/// made against it.
pub fn with_version(record: &str, answer: Option<&Value>) -> Option<String> {
    let answer = answer?.as_object()?;
    let mut record: Map<String, Value> = serde_json::from_str(record).ok()?;
    let mut changed = false;
    for field in ["updated_at", "updatedAt", "etag"] {
        if let Some(value) = answer.get(field) {
            record.insert(field.to_string(), value.clone());
            changed = true;
        }
    }
    changed.then(|| Value::Object(record).to_string())
}

/// Puts the values of the delivered update `change` into its stored record's mapped state,
/// and the vendor's new version of the record (from its `answer`) into the stored record.
pub(super) async fn remember_written(
    txn: &impl ConnectionTrait,
    change: &write_back::Model,
    answer: Option<&Value>,
) -> Result<()> {
    let body: Map<String, Value> = serde_json::from_str(&change.body).unwrap_or_default();
    let Some(record) = super::outbox::record_of(txn, change).await? else {
        return Ok(());
    };
    let mapped = with_written(&record.format, &record.mapped, &body);
    let mut update = ContactSource::update_many()
        .col_expr(contact_source::Column::Mapped, Expr::value(mapped))
        .filter(contact_source::Column::Id.eq(record.id));
    if let Some(versioned) = with_version(&record.record, answer) {
        update = update.col_expr(contact_source::Column::Record, Expr::value(versioned));
    }
    update.exec(txn).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn written_values_replace_what_the_last_import_mapped() {
        let state = json!({ "fields": { "lastName": "Lee", "address": { "city": "Rome" } },
                            "business": "b1", "account": null, "tags": null })
        .to_string();
        let body = json!({ "lastName": "Smith", "city": "Oslo", "smsDND": true });
        let written: Value = serde_json::from_str(&with_written(
            "business-contacts",
            &state,
            body.as_object().expect("object"),
        ))
        .expect("json");
        assert_eq!(
            written,
            json!({ "fields": { "lastName": "Smith", "address": { "city": "Oslo" },
                                "dnd": { "sms": true } },
                    "business": "b1", "account": null, "tags": null })
        );
    }
}
