//! Contacts: reading them by id, in pages, under their parents, and their tags.
pub mod counts;
pub mod duplicates;
mod filter;
pub mod identity_keys;
pub mod merge;
mod order;
mod patch;
pub mod phone;
pub mod rules;
pub mod search;
pub mod write;

use std::collections::HashMap;
use std::sync::Arc;

use entity::prelude::{Account, Business, Contact, ContactTag, Tag};
use entity::{account, business, contact, contact_tag, tag};
use sea_orm::sea_query::{Expr, ExprTrait};
use sea_orm::{
    ColumnTrait, ConnectionTrait, DatabaseConnection, DbBackend, EntityName, FromQueryResult,
    IntoSimpleExpr, PaginatorTrait, QueryFilter, QueryOrder, QuerySelect, QueryTrait, Select,
};
use search::SearchPlan;
use uuid::Uuid;

pub use filter::{ContactFilter, FilterTarget};
pub use order::{ContactOrder, ContactOrderField, ordering};
pub use patch::{AddressPatch, ContactPatch, DndPatch};
pub use rules::{WriteSettings, split_name};
pub use write::{
    TagRefs, add_tags, blank_contact, create_contact, delete_contact, remove_tags, restore_contact,
    set_resolution, update_contact,
};

use crate::error::Result;
use crate::paging::{self, Page, PageArgs, PageRead};
use crate::tenancy::{TenantId, find_by_ids, scoped};

/// How a contact was identified (seed 000).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ResolutionStatus {
    /// No CRM match was found yet.
    Unresolved,
    /// Matched to a CRM record.
    CrmResolved,
    /// Linked to a CRM record by a person.
    ManuallyResolved,
}

impl ResolutionStatus {
    /// The stored form.
    pub fn as_str(self) -> &'static str {
        match self {
            ResolutionStatus::Unresolved => "UNRESOLVED",
            ResolutionStatus::CrmResolved => "CRM_RESOLVED",
            ResolutionStatus::ManuallyResolved => "MANUALLY_RESOLVED",
        }
    }

    /// Reads the stored form (or seed 000's lower-case form); unknown values are unresolved.
    pub fn parse(value: &str) -> Self {
        match value.to_ascii_uppercase().as_str() {
            "CRM_RESOLVED" => ResolutionStatus::CrmResolved,
            "MANUALLY_RESOLVED" => ResolutionStatus::ManuallyResolved,
            _ => ResolutionStatus::Unresolved,
        }
    }
}

/// Full name: first and last name joined by a space, or whichever is known.
pub fn full_name(first: Option<&str>, last: Option<&str>) -> Option<String> {
    match (first, last) {
        (Some(f), Some(l)) => Some(format!("{f} {l}")),
        (Some(one), None) | (None, Some(one)) => Some(one.to_string()),
        (None, None) => None,
    }
}

/// The key of the NAME order: the full name, lower-cased ("" when unknown).
pub fn sort_name(first: Option<&str>, last: Option<&str>) -> String {
    full_name(first, last).unwrap_or_default().to_lowercase()
}

/// What `search` looks in: names, full name, email, phone and company, lower-cased and
/// separated by a control character no search string contains.
pub fn search_text(contact: &contact::Model) -> String {
    let full = full_name(contact.first_name.as_deref(), contact.last_name.as_deref());
    [
        full.as_deref(),
        contact.email.as_deref(),
        contact.phone.as_deref(),
        contact.company_name.as_deref(),
    ]
    .iter()
    .flatten()
    .map(|s| entity::fold(s))
    .collect::<Vec<_>>()
    .join("\u{1f}")
}

/// The parent a nested contact list hangs under.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ContactParent {
    /// `Account.contacts`.
    Account,
    /// `Business.contacts`.
    Business,
    /// `Tag.contacts`.
    Tag,
}

/// A contact list request: filter, order and page.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct ContactQuery {
    /// Which contacts.
    pub filter: ContactFilter,
    /// In which order (empty: newest first).
    pub order: Vec<ContactOrder>,
}

/// The tenant's contacts that match `filter` (live ones only unless it says `archived`): the
/// statement behind a page and a count; searches go through the index.
pub fn filtered(
    db: &DatabaseConnection,
    tenant: TenantId,
    filter: &ContactFilter,
) -> Result<Select<Contact>> {
    filtered_with(db, tenant, filter, SearchPlan::Index)
}

/// [`filtered`], its top-level search found by `search`.
fn filtered_with(
    db: &DatabaseConnection,
    tenant: TenantId,
    filter: &ContactFilter,
    search: SearchPlan,
) -> Result<Select<Contact>> {
    let target = FilterTarget {
        tenant,
        backend: db.get_database_backend(),
        search,
    };
    Ok(scoped::<Contact>(tenant).filter(filter.visible_condition(target, "filter")?))
}

/// Which of contacts `ids` of the tenant match `filter` now (as `contacts(filter)` would
/// list them): one statement.
pub async fn matching(
    db: &DatabaseConnection,
    tenant: TenantId,
    filter: &ContactFilter,
    ids: &[Uuid],
) -> Result<std::collections::HashSet<Uuid>> {
    let mut select = filtered(db, tenant, filter)?
        .select_only()
        .column(contact::Column::Id);
    crate::db::walk_ids(
        QuerySelect::query(&mut select),
        Contact.table_ref(),
        Expr::col((Contact, contact::Column::Id)),
        ids,
        db.get_database_backend(),
    );
    Ok(select
        .into_tuple::<Uuid>()
        .all(db)
        .await?
        .into_iter()
        .collect())
}

/// One page of the tenant's contacts.
///
/// With a top-level `search`, the plan of [`search::choose`] (on SQLite one more statement, a
/// probe of the trigram index, for strings of 3 or more characters) decides how the page is
/// read: on SQLite a search through the index sorts its matches (`PageRead::SortMatches`, so
/// that SQLite does not walk the whole order probing the matches instead).
pub async fn page(
    db: &DatabaseConnection,
    tenant: TenantId,
    query: &ContactQuery,
    args: &PageArgs,
) -> Result<Page<contact::Model>> {
    // Checked before the probe: a rejected filter runs no SQL.
    let select = filtered(db, tenant, &query.filter)?;
    let plan = search::choose(db, &query.filter).await?;
    let select = match plan {
        Some(SearchPlan::Walk) => filtered_with(db, tenant, &query.filter, SearchPlan::Walk)?,
        _ => select,
    };
    let read = match (plan, db.get_database_backend()) {
        (Some(SearchPlan::Index), DbBackend::Sqlite) => PageRead::SortMatches,
        _ => PageRead::InOrder,
    };
    paging::fetch_page_read(db, select, &ordering(&query.order), args, read).await
}

/// How many of the tenant's contacts match `filter`.
pub async fn count(
    db: &DatabaseConnection,
    tenant: TenantId,
    filter: &ContactFilter,
) -> Result<i64> {
    Ok(counted(db, tenant, filter)?.count(db).await? as i64)
}

/// The contacts [`count`] counts: [`filtered`], with [`search::count_hint`].
pub fn counted(
    db: &DatabaseConnection,
    tenant: TenantId,
    filter: &ContactFilter,
) -> Result<Select<Contact>> {
    let select = filtered(db, tenant, filter)?;
    Ok(
        match search::count_hint(db.get_database_backend(), filter) {
            Some(hint) => select.filter(hint),
            None => select,
        },
    )
}

/// The same page of contacts under each of `parents`, in one statement (and their totals
/// in one more, when `with_totals`: read from the kept counts ([`counts`]) when the filter
/// is empty, else counted).
///
/// Only `columns` are read, with what the page itself needs ([`page_columns`]); the other
/// fields of the rows are empty.
#[allow(clippy::too_many_arguments)]
pub async fn pages_by_parent(
    db: &DatabaseConnection,
    tenant: TenantId,
    parent: ContactParent,
    parents: &[Uuid],
    query: &ContactQuery,
    args: &PageArgs,
    with_totals: bool,
    columns: contact::Columns,
) -> Result<HashMap<Uuid, Page<contact::Model>>> {
    let columns = page_columns(columns, &query.order);
    let select = filtered(db, tenant, &query.filter)?
        .select_only()
        .columns(columns.iter());
    let (select, parent_expr) = match parent {
        ContactParent::Account => (select, contact::Column::AccountId.into_simple_expr()),
        ContactParent::Business => (select, contact::Column::BusinessId.into_simple_expr()),
        ContactParent::Tag => {
            let mut select = select.filter(contact_tag::Column::TenantId.eq(tenant.0));
            QuerySelect::query(&mut select).inner_join(
                ContactTag,
                Expr::col((ContactTag, contact_tag::Column::ContactId))
                    .equals((Contact, contact::Column::Id)),
            );
            (select, contact_tag::Column::TagId.into_simple_expr())
        }
    };
    // An unfiltered connection's total is kept by the database (`counts`).
    let kept = with_totals && query.filter == ContactFilter::default();
    let mut pages = paging::fetch_pages_by_parent(
        db,
        select,
        columns.iter(),
        parent_expr,
        parents,
        &ordering(&query.order),
        args,
        with_totals && !kept,
        |row| contact::Model::from_partial(row, columns),
    )
    .await?;
    if kept {
        let live = counts::live_by_parent(db, tenant, parent, parents).await?;
        for (parent_id, page) in &mut pages {
            page.total = Some(live.get(parent_id).copied().unwrap_or(0));
        }
    }
    Ok(pages)
}

/// `asked` and the columns a page of contacts reads whatever is asked: its keys, its
/// order's keys (for cursors) and the parents its relations are loaded through.
pub fn page_columns(asked: contact::Columns, order: &[ContactOrder]) -> contact::Columns {
    use contact::Column;
    let mut columns = asked
        .with(Column::Id)
        .with(Column::TenantId)
        .with(Column::AccountId)
        .with(Column::BusinessId)
        .with(Column::CreatedAt);
    for key in order {
        columns = columns.with(key.field.column());
    }
    columns
}

/// Which relations of a page of contacts to load with it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Preload {
    /// Their tags.
    pub tags: bool,
    /// Their businesses.
    pub business: bool,
    /// Their accounts.
    pub account: bool,
}

/// Relations of a set of contacts, loaded with one statement per relation.
#[derive(Clone, Debug, Default)]
pub struct Related {
    /// Tags by contact id (when preloaded).
    pub tags: Option<HashMap<Uuid, Vec<Arc<tag::Model>>>>,
    /// Businesses by id (when preloaded).
    pub businesses: Option<HashMap<Uuid, business::Model>>,
    /// Accounts by id (when preloaded).
    pub accounts: Option<HashMap<Uuid, account::Model>>,
}

/// Loads the relations `preload` asks for of all of `rows` at once.
pub async fn load_related<'a>(
    db: &DatabaseConnection,
    tenant: TenantId,
    rows: impl Iterator<Item = &'a contact::Model> + Clone,
    preload: Preload,
) -> Result<Related> {
    let mut related = Related::default();
    if preload.tags {
        let ids: Vec<Uuid> = rows.clone().map(|c| c.id).collect();
        related.tags = Some(tags_of(db, tenant, &ids).await?);
    }
    if preload.business {
        let ids = unique(rows.clone().filter_map(|c| c.business_id));
        related.businesses = Some(find_by_ids::<Business>(db, tenant, &ids).await?);
    }
    if preload.account {
        let ids = unique(rows.filter_map(|c| c.account_id));
        related.accounts = Some(find_by_ids::<Account>(db, tenant, &ids).await?);
    }
    Ok(related)
}

fn unique(ids: impl Iterator<Item = Uuid>) -> Vec<Uuid> {
    let mut ids: Vec<Uuid> = ids.collect();
    ids.sort_unstable();
    ids.dedup();
    ids
}

/// The tags of each of `contacts`, in display order, in one statement. A tag carried by many
/// of them is decoded once and shared.
pub async fn tags_of(
    db: &DatabaseConnection,
    tenant: TenantId,
    contacts: &[Uuid],
) -> Result<HashMap<Uuid, Vec<Arc<tag::Model>>>> {
    let mut select = scoped::<Tag>(tenant)
        .filter(contact_tag::Column::TenantId.eq(tenant.0))
        .column_as(contact_tag::Column::ContactId, "cg_contact")
        .order_by_asc(tag::Column::DisplayOrder)
        .order_by_asc(tag::Column::Name);
    // From the contacts' links to their tags: the links are what the ids find.
    let query = QuerySelect::query(&mut select);
    crate::db::walk_ids(
        query,
        ContactTag.table_ref(),
        Expr::col((ContactTag, contact_tag::Column::ContactId)),
        contacts,
        db.get_database_backend(),
    );
    query.inner_join(
        Tag,
        Expr::col((Tag, tag::Column::Id)).equals((ContactTag, contact_tag::Column::TagId)),
    );
    let mut out: HashMap<Uuid, Vec<Arc<tag::Model>>> = HashMap::new();
    let mut decoded: HashMap<Uuid, Arc<tag::Model>> = HashMap::new();
    for row in db.query_all(&select.into_query()).await? {
        let contact: Uuid = row.try_get("", "cg_contact")?;
        let id: Uuid = row.try_get("", "id")?;
        let tag = match decoded.get(&id) {
            Some(tag) => Arc::clone(tag),
            None => {
                let tag = Arc::new(tag::Model::from_query_result(&row, "")?);
                decoded.insert(id, Arc::clone(&tag));
                tag
            }
        };
        out.entry(contact).or_default().push(tag);
    }
    Ok(out)
}
