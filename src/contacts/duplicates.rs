//! Duplicate detection: contacts of a tenant that share a normalised email (primary or
//! secondary, any case) or an E.164 phone, grouped with indexed SQL over `contact_keys`.
//! Archived contacts (every vendor record deleted) are left out, as from every list: their
//! ids come from a partial index of the few archived contacts.
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use entity::prelude::{Contact, ContactKey};
use entity::{contact, contact_key};
use sea_orm::sea_query::{Condition, Expr, ExprTrait, Query, SimpleExpr};
use sea_orm::{
    ColumnTrait, ConnectionTrait, EntityTrait, FromQueryResult, QueryFilter, QueryOrder,
    QuerySelect,
};
use uuid::Uuid;

use crate::error::{Error, Result};
use crate::paging::{DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE};
use crate::tenancy::TenantId;

/// Contacts that share one email or phone.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DuplicateGroup {
    /// `EMAIL` or `PHONE`.
    pub kind: String,
    /// The shared value.
    pub value: String,
    /// The contacts sharing it, oldest id first.
    pub contact_ids: Vec<Uuid>,
}

impl DuplicateGroup {
    /// The group's opaque cursor.
    pub fn cursor(&self) -> String {
        URL_SAFE_NO_PAD.encode(format!("{}\n{}", self.kind, self.value))
    }
}

fn parse_cursor(cursor: &str) -> Result<(String, String)> {
    URL_SAFE_NO_PAD
        .decode(cursor)
        .ok()
        .and_then(|bytes| String::from_utf8(bytes).ok())
        // No stored value holds a NUL, and PostgreSQL refuses one in a parameter.
        .filter(|text| !text.contains('\0'))
        .and_then(|text| {
            let (kind, value) = text.split_once('\n')?;
            Some((kind.to_string(), value.to_string()))
        })
        .ok_or_else(|| Error::invalid("after", "not a cursor of this list"))
}

/// `contact_keys.contact_id NOT IN (the tenant's archived contacts)`.
fn live(tenant: TenantId) -> SimpleExpr {
    Expr::col((ContactKey, contact_key::Column::ContactId)).not_in_subquery(
        Query::select()
            .column(contact::Column::Id)
            .from(Contact)
            .and_where(Expr::col(contact::Column::TenantId).eq(tenant.0))
            .and_where(Expr::col(contact::Column::ArchivedAt).is_not_null())
            .to_owned(),
    )
}

#[derive(FromQueryResult)]
struct GroupRow {
    kind: String,
    value: String,
}

/// A page of duplicate groups ordered by kind and value, after the cursor `after`, with
/// whether more follow. Two statements: the groups (a grouped walk of the
/// `(tenant_id, kind, value, contact_id)` primary key, archived contacts left out) and their
/// members.
pub async fn duplicate_groups(
    db: &impl ConnectionTrait,
    tenant: TenantId,
    first: Option<i32>,
    after: Option<&str>,
) -> Result<(Vec<DuplicateGroup>, bool)> {
    let size = first.unwrap_or(DEFAULT_PAGE_SIZE);
    if !(0..=MAX_PAGE_SIZE).contains(&size) {
        return Err(Error::invalid(
            "first",
            format!("must be between 0 and {MAX_PAGE_SIZE}"),
        ));
    }
    let mut groups = ContactKey::find()
        .select_only()
        .column(contact_key::Column::Kind)
        .column(contact_key::Column::Value)
        .filter(contact_key::Column::TenantId.eq(tenant.0))
        .filter(live(tenant))
        .group_by(contact_key::Column::Kind)
        .group_by(contact_key::Column::Value)
        .having(Expr::col(contact_key::Column::ContactId).count().gt(1))
        .order_by_asc(contact_key::Column::Kind)
        .order_by_asc(contact_key::Column::Value)
        .limit(size as u64 + 1);
    if let Some(after) = after {
        let (kind, value) = parse_cursor(after)?;
        groups = groups.filter(
            Expr::tuple([
                Expr::col(contact_key::Column::Kind),
                Expr::col(contact_key::Column::Value),
            ])
            .gt(Expr::tuple([Expr::value(kind), Expr::value(value)])),
        );
    }
    let mut rows = groups.into_model::<GroupRow>().all(db).await?;
    let has_next = rows.len() > size as usize;
    rows.truncate(size as usize);
    if rows.is_empty() {
        return Ok((Vec::new(), has_next));
    }
    let members = ContactKey::find()
        .filter(contact_key::Column::TenantId.eq(tenant.0))
        .filter(live(tenant))
        .filter(rows.iter().fold(Condition::any(), |any, r| {
            any.add(
                Condition::all()
                    .add(contact_key::Column::Kind.eq(r.kind.clone()))
                    .add(contact_key::Column::Value.eq(r.value.clone())),
            )
        }))
        .order_by_asc(contact_key::Column::ContactId)
        .all(db)
        .await?;
    let groups = rows
        .into_iter()
        .map(|r| DuplicateGroup {
            contact_ids: members
                .iter()
                .filter(|m| m.kind == r.kind && m.value == r.value)
                .map(|m| m.contact_id)
                .collect(),
            kind: r.kind,
            value: r.value,
        })
        .collect();
    Ok((groups, has_next))
}

/// How many duplicate groups the tenant has.
pub async fn count_groups(db: &impl ConnectionTrait, tenant: TenantId) -> Result<i64> {
    let inner = Query::select()
        .expr(Expr::val(1))
        .from(ContactKey)
        .and_where(Expr::col(contact_key::Column::TenantId).eq(tenant.0))
        .and_where(live(tenant))
        .group_by_columns([contact_key::Column::Kind, contact_key::Column::Value])
        .and_having(Expr::col(contact_key::Column::ContactId).count().gt(1))
        .to_owned();
    let outer = Query::select()
        .expr_as(Expr::cust("COUNT(*)"), "n")
        .from_subquery(inner, "g")
        .to_owned();
    let row = db.query_one(&outer).await?;
    Ok(match row {
        Some(row) => row.try_get::<i64>("", "n")?,
        None => 0,
    })
}
