//! The change feed: one event per committed change of a contact, recorded in the change's
//! own transaction (`contact_events`, so a rolled-back change has none) and read by
//! [`feed::Feed`] in each server process for its subscribers.
pub mod feed;

use entity::prelude::ContactEvent as EventRow;
use entity::{contact, contact_event};
use sea_orm::sea_query::InsertStatement;
use sea_orm::{ConnectionTrait, EntityTrait, IntoActiveModel, Iterable, QueryTrait};
use uuid::Uuid;

use crate::error::Result;
use crate::tenancy::TenantId;

/// The kinds of event, as stored and as the GraphQL `ContactChangeKind`.
pub mod kind {
    pub const CREATED: &str = "CREATED";
    pub const UPDATED: &str = "UPDATED";
    pub const DELETED: &str = "DELETED";
    pub const ARCHIVED: &str = "ARCHIVED";
    pub const RESTORED: &str = "RESTORED";
    pub const MERGED: &str = "MERGED";
    pub const WRITE_BACK_DELIVERED: &str = "WRITE_BACK_DELIVERED";
    pub const WRITE_BACK_FAILED: &str = "WRITE_BACK_FAILED";
    pub const WRITE_CONFLICT: &str = "WRITE_CONFLICT";
}

/// An event of `kind` for contact `contact`, at `now` (milliseconds).
pub fn event(tenant: TenantId, contact: Uuid, kind: &str, now: i64) -> contact_event::Model {
    contact_event::Model {
        seq: 0,
        tenant_id: tenant.0,
        contact_id: contact,
        kind: kind.to_string(),
        changed_fields: None,
        survivor_id: None,
        created_at: now,
    }
}

/// The `UPDATED` event of a change from `before` to `after` (at `after.updated_at`).
pub fn updated(before: &contact::Model, after: &contact::Model) -> contact_event::Model {
    let mut event = event(
        TenantId(after.tenant_id),
        after.id,
        kind::UPDATED,
        after.updated_at,
    );
    event.changed_fields = Some(serde_json::json!(changed_fields(before, after)).to_string());
    event
}

/// The `ContactPatch` names of the fields that differ between `before` and `after`
/// (`firstName`, `address.city`), in column order; bookkeeping columns are left out.
pub fn changed_fields(before: &contact::Model, after: &contact::Model) -> Vec<String> {
    use sea_orm::ModelTrait;
    contact::Column::iter()
        .filter(|column| before.get(*column) != after.get(*column))
        .filter_map(field_name)
        .collect()
}

/// The `ContactPatch` name of a contact column; `None` for bookkeeping columns.
fn field_name(column: contact::Column) -> Option<String> {
    use contact::Column as C;
    use sea_orm::IdenStatic;
    if matches!(
        column,
        C::Id | C::TenantId | C::CreatedAt | C::UpdatedAt | C::SortName | C::SearchText
    ) {
        return None;
    }
    let name = column.as_str();
    let (prefix, rest) = match name.strip_prefix("address_") {
        Some(rest) => ("address.", rest),
        None => ("", name),
    };
    let mut camel = String::from(prefix);
    let mut upper = false;
    for c in rest.chars() {
        if c == '_' {
            upper = true;
        } else if upper {
            camel.extend(c.to_uppercase());
            upper = false;
        } else {
            camel.push(c);
        }
    }
    Some(camel)
}

/// The INSERT of `events` (their `seq` is assigned by the database).
pub fn insert_statement(events: Vec<contact_event::Model>) -> InsertStatement {
    EventRow::insert_many(events.into_iter().map(active)).into_query()
}

fn active(event: contact_event::Model) -> contact_event::ActiveModel {
    let mut active = event.into_active_model();
    active.seq = sea_orm::ActiveValue::NotSet;
    active
}

/// Records `events` inside `txn` (the transaction of their change); nothing when empty.
pub async fn record(txn: &impl ConnectionTrait, events: Vec<contact_event::Model>) -> Result<()> {
    if events.is_empty() {
        return Ok(());
    }
    let deliveries = crate::webhooks::fan_out::deliveries(txn, &events).await?;
    crate::webhooks::fan_out::queue(txn, deliveries).await?;
    for chunk in events.chunks(1_000) {
        EventRow::insert_many(chunk.iter().cloned().map(active))
            .exec_without_returning(txn)
            .await?;
    }
    feed::written();
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn changed_fields_are_named_as_in_a_patch() {
        let before = crate::contacts::write::blank_contact(TenantId(Uuid::nil()), 1);
        let mut after = before.clone();
        after.first_name = Some("Ana".into());
        after.address_postal_code = Some("0150".into());
        after.dnd_sms = true;
        after.updated_at = 2;
        after.search_text = "ana".into();
        assert_eq!(
            changed_fields(&before, &after),
            ["firstName", "address.postalCode", "dndSms"]
        );
    }
}
