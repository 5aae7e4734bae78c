//! Identity keys of contacts (`contact_keys`): every normalised email and E.164 phone of a
//! contact, primary and secondary. Each write that changes a contact's emails or phones
//! replaces its keys in the same transaction; duplicate detection groups on them.
use std::collections::BTreeSet;

use entity::prelude::ContactKey;
use entity::{contact, contact_key};
use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter};
use uuid::Uuid;

use crate::error::Result;

/// Kind of a key made from an email address.
pub const EMAIL: &str = "EMAIL";
/// Kind of a key made from a phone number.
pub const PHONE: &str = "PHONE";

fn strings(list: &serde_json::Value) -> impl Iterator<Item = &str> {
    list.as_array()
        .into_iter()
        .flatten()
        .filter_map(|v| v.as_str())
}

/// The keys of `contact`, without repeats (emails are stored lower-cased, phones in E.164).
pub fn keys_of(contact: &contact::Model) -> Vec<contact_key::Model> {
    let mut keys = BTreeSet::new();
    for email in contact
        .email
        .as_deref()
        .into_iter()
        .chain(strings(&contact.secondary_emails))
    {
        keys.insert((EMAIL, email.to_lowercase()));
    }
    for phone in contact
        .phone
        .as_deref()
        .into_iter()
        .chain(strings(&contact.secondary_phones))
    {
        keys.insert((PHONE, phone.to_string()));
    }
    keys.into_iter()
        .map(|(kind, value)| contact_key::Model {
            tenant_id: contact.tenant_id,
            kind: kind.to_string(),
            value,
            contact_id: contact.id,
        })
        .collect()
}

/// Whether `a` and `b` have different keys.
pub fn keys_differ(a: &contact::Model, b: &contact::Model) -> bool {
    a.email != b.email
        || a.phone != b.phone
        || a.secondary_emails != b.secondary_emails
        || a.secondary_phones != b.secondary_phones
}

/// Inserts the keys of new contacts.
pub async fn insert_keys<'a>(
    db: &impl ConnectionTrait,
    contacts: impl IntoIterator<Item = &'a contact::Model>,
) -> Result<()> {
    insert_key_rows(db, key_rows(contacts)).await
}

/// The key rows of new contacts, for [`insert_key_rows`] once the contacts are in.
pub fn key_rows<'a>(
    contacts: impl IntoIterator<Item = &'a contact::Model>,
) -> Vec<contact_key::Model> {
    contacts.into_iter().flat_map(keys_of).collect()
}

/// Inserts key rows made by [`key_rows`].
pub async fn insert_key_rows(
    db: &impl ConnectionTrait,
    rows: Vec<contact_key::Model>,
) -> Result<()> {
    crate::db::insert_all::<ContactKey>(db, rows, KEYS_PER_INSERT).await
}

/// Key rows per INSERT statement.
const KEYS_PER_INSERT: usize = 400;

/// Deletes the keys of `ids` (of one tenant).
pub async fn delete_keys(db: &impl ConnectionTrait, tenant: Uuid, ids: &[Uuid]) -> Result<()> {
    for chunk in ids.chunks(1_000) {
        ContactKey::delete_many()
            .filter(contact_key::Column::TenantId.eq(tenant))
            .filter(contact_key::Column::ContactId.is_in(chunk.iter().copied()))
            .exec(db)
            .await?;
    }
    Ok(())
}

/// Replaces the keys of existing contacts with their current ones.
pub async fn replace_keys(db: &impl ConnectionTrait, contacts: &[&contact::Model]) -> Result<()> {
    let Some(first) = contacts.first() else {
        return Ok(());
    };
    let ids: Vec<Uuid> = contacts.iter().map(|c| c.id).collect();
    delete_keys(db, first.tenant_id, &ids).await?;
    insert_keys(db, contacts.iter().copied()).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_cover_primary_and_secondary_values_once() {
        let mut c = crate::contacts::write::blank_contact(crate::tenancy::TenantId(Uuid::nil()), 0);
        c.email = Some("ann@example.com".into());
        c.secondary_emails = serde_json::json!(["ANN@example.com", "a2@example.com"]);
        c.phone = Some("+4915112345678".into());
        c.secondary_phones = serde_json::json!(["+4915112345678"]);
        let keys: Vec<(String, String)> =
            keys_of(&c).into_iter().map(|k| (k.kind, k.value)).collect();
        assert_eq!(
            keys,
            vec![
                ("EMAIL".into(), "a2@example.com".into()),
                ("EMAIL".into(), "ann@example.com".into()),
                ("PHONE".into(), "+4915112345678".into()),
            ]
        );
    }
}
