//! `ContactFilter`: which contacts a query returns.
use entity::contact::Column;
use entity::prelude::{Contact, ContactAssignee, ContactTag, Tag};
use entity::{contact_assignee, contact_tag, tag};
use sea_orm::DbBackend;
use sea_orm::sea_query::{Condition, Expr, ExprTrait, Query, SelectStatement};
use sea_orm::{ColumnTrait, IntoSimpleExpr};

use super::ResolutionStatus;
use super::phone::to_e164;
use super::search::{self, SearchPlan};
use crate::error::{Error, FieldFailure, Result};
use crate::filter::{DateTimeFilter, check_search, collect_id};
use crate::tenancy::TenantId;

/// Which contacts to return. Every field given must match (AND); `and`, `or` and `not`
/// combine nested filters.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct ContactFilter {
    /// Case-insensitive substring of first, last or full name, email, phone or company
    /// (seed 002's `search`; at most 255 characters; `%` and `_` match themselves).
    pub search: Option<String>,
    /// Exact email address, any case.
    pub email: Option<String>,
    /// Exact phone number, compared in E.164 (`+49 151 2345 6789` finds `+4915123456789`).
    pub phone: Option<String>,
    /// Carries a tag of this name.
    pub tag: Option<String>,
    /// Carries at least one tag of these names.
    pub tags_any: Option<Vec<String>>,
    /// Belongs to this account (a UUID's text; checked when the filter is built).
    pub account_id: Option<String>,
    /// Belongs to this business (a UUID's text; checked when the filter is built).
    pub business_id: Option<String>,
    /// How the contact was identified.
    pub resolution_status: Option<ResolutionStatus>,
    /// Exact status (seed 004).
    pub status: Option<String>,
    /// Exact pipeline id (seed 004).
    pub pipeline_id: Option<String>,
    /// Exact pipeline stage (seed 004).
    pub pipeline_stage: Option<String>,
    /// Exact source (seeds 002, 004).
    pub source: Option<String>,
    /// Exact lead source (seed 004).
    pub lead_source: Option<String>,
    /// Exact owner (seed 004).
    pub owner: Option<String>,
    /// Has this assignee among its assignees (seed 004).
    pub assignee: Option<String>,
    /// Exact message status (seed 004).
    pub message_status: Option<String>,
    /// Test contacts only (true) or real ones only (false) (seed 002).
    pub is_test_contact: Option<bool>,
    /// Archived contacts only (true) or live ones only (false); see
    /// [`ContactFilter::visible_condition`] for the default.
    pub archived: Option<bool>,
    /// Creation time range.
    pub created_at: Option<DateTimeFilter>,
    /// Last update time range (seed 003's `updated_at`).
    pub updated_at: Option<DateTimeFilter>,
    /// Last message time range (seed 004's `lastMessageTimeRange`).
    pub last_message_at: Option<DateTimeFilter>,
    /// All of these filters match.
    pub and: Option<Vec<ContactFilter>>,
    /// At least one of these filters matches.
    pub or: Option<Vec<ContactFilter>>,
    /// This filter does not match.
    pub not: Option<Box<ContactFilter>>,
}

/// Where a filter runs: the tenant it is confined to and the database it is written for.
#[derive(Clone, Copy)]
pub struct FilterTarget {
    /// The caller's tenant, applied in every subquery.
    pub tenant: TenantId,
    /// The database, for the search index.
    pub backend: DbBackend,
    /// How the top-level `search` finds its contacts (nested filters' use the index).
    pub search: SearchPlan,
}

impl FilterTarget {
    /// The target of a nested filter (`and`, `or`, `not`): the same, its searches through
    /// the index.
    fn nested(self) -> Self {
        Self {
            search: SearchPlan::Index,
            ..self
        }
    }
}

impl ContactFilter {
    /// The condition of a query's whole filter: [`ContactFilter::condition`], and live
    /// contacts only unless the filter says `archived` itself (anywhere in it, e.g.
    /// `or: [{ archived: true }, { tag: "VIP" }]`).
    pub fn visible_condition(&self, target: FilterTarget, path: &str) -> Result<Condition> {
        let cond = self.condition(target, path)?;
        Ok(if !self.mentions_archived() {
            cond.add(Expr::col((Contact, Column::ArchivedAt)).is_null())
        } else {
            cond
        })
    }

    /// Whether `archived` is given here or in a nested filter.
    fn mentions_archived(&self) -> bool {
        self.archived.is_some()
            || [&self.and, &self.or]
                .into_iter()
                .flatten()
                .flat_map(|list| list.iter())
                .chain(self.not.as_deref())
                .any(ContactFilter::mentions_archived)
    }

    /// The SQL condition of this filter, or every invalid field at once (paths under
    /// `path`, e.g. `filter.and[0].phone`).
    pub fn condition(&self, target: FilterTarget, path: &str) -> Result<Condition> {
        let mut failures = Vec::new();
        let cond = self.build(target, path, &mut failures);
        if failures.is_empty() {
            Ok(cond)
        } else {
            Err(Error::Validation(failures))
        }
    }

    /// How many conditions the filter holds: each field given counts one, each name in
    /// `tagsAny` one, and nested filters (`and`, `or`, `not`) count theirs. The SQL the
    /// filter becomes grows with it, so the query cost does too (see `graphql::limits`).
    pub fn conditions(&self) -> usize {
        let flat = [
            self.search.is_some(),
            self.email.is_some(),
            self.phone.is_some(),
            self.tag.is_some(),
            self.account_id.is_some(),
            self.business_id.is_some(),
            self.resolution_status.is_some(),
            self.status.is_some(),
            self.pipeline_id.is_some(),
            self.pipeline_stage.is_some(),
            self.source.is_some(),
            self.lead_source.is_some(),
            self.owner.is_some(),
            self.assignee.is_some(),
            self.message_status.is_some(),
            self.is_test_contact.is_some(),
            self.archived.is_some(),
            self.created_at.is_some(),
            self.updated_at.is_some(),
            self.last_message_at.is_some(),
        ]
        .into_iter()
        .filter(|given| *given)
        .count();
        let names = self.tags_any.as_ref().map_or(0, |names| names.len().max(1));
        let nested: usize = [&self.and, &self.or]
            .into_iter()
            .flatten()
            .flat_map(|list| list.iter())
            .chain(self.not.as_deref())
            .map(|f| 1 + f.conditions())
            .sum();
        flat + names + nested
    }

    fn build(
        &self,
        target: FilterTarget,
        path: &str,
        failures: &mut Vec<FieldFailure>,
    ) -> Condition {
        let field = |name: &str| format!("{path}.{name}");
        let mut cond = Condition::all();
        if let Some(search) = &self.search {
            check_search(&field("search"), search, failures);
            if !search.is_empty() {
                cond = cond.add(search::condition(target, search));
            }
        }
        if let Some(email) = &self.email {
            cond = cond.add(Column::Email.eq(email.trim().to_lowercase()));
        }
        if let Some(phone) = &self.phone {
            match to_e164(phone, None) {
                Some(e164) => cond = cond.add(Column::Phone.eq(e164)),
                None => failures.push(FieldFailure::new(
                    field("phone"),
                    "not a phone number in international form, e.g. +4915123456789",
                )),
            }
        }
        if let Some(name) = &self.tag {
            cond = cond.add(
                Column::Id
                    .in_subquery(tagged(target, Expr::col((Tag, tag::Column::Name)).eq(name))),
            );
        }
        if let Some(names) = &self.tags_any {
            cond = cond.add(Column::Id.in_subquery(tagged(
                target,
                Expr::col((Tag, tag::Column::Name)).is_in(names.iter().cloned()),
            )));
        }
        if let Some(id) = &self.account_id
            && let Some(id) = collect_id(&field("accountId"), id, failures)
        {
            cond = cond.add(Column::AccountId.eq(id));
        }
        if let Some(id) = &self.business_id
            && let Some(id) = collect_id(&field("businessId"), id, failures)
        {
            cond = cond.add(Column::BusinessId.eq(id));
        }
        if let Some(status) = self.resolution_status {
            cond = cond.add(Column::ResolutionStatus.eq(status.as_str()));
        }
        for (value, column) in [
            (&self.status, Column::Status),
            (&self.pipeline_id, Column::PipelineId),
            (&self.pipeline_stage, Column::PipelineStage),
            (&self.source, Column::Source),
            (&self.lead_source, Column::LeadSource),
            (&self.owner, Column::Owner),
            (&self.message_status, Column::MessageStatus),
        ] {
            if let Some(value) = value {
                cond = cond.add(column.eq(value.clone()));
            }
        }
        if let Some(assignee) = &self.assignee {
            let sub = Query::select()
                .column(contact_assignee::Column::ContactId)
                .from(ContactAssignee)
                .and_where(contact_assignee::Column::TenantId.eq(target.tenant.0))
                .and_where(contact_assignee::Column::Assignee.eq(assignee.clone()))
                .to_owned();
            cond = cond.add(Column::Id.in_subquery(sub));
        }
        // Written as the bare column (or its negation), the form of the partial index of test
        // contacts; real contacts are read through the default order's index.
        if let Some(flag) = self.is_test_contact {
            let test_contact = Expr::col((Contact, Column::IsTestContact));
            cond = cond.add(if flag {
                test_contact
            } else {
                test_contact.not()
            });
        }
        if let Some(archived) = self.archived {
            let column = Expr::col((Contact, Column::ArchivedAt));
            cond = cond.add(if archived {
                column.is_not_null()
            } else {
                column.is_null()
            });
        }
        for (range, column) in [
            (&self.created_at, Column::CreatedAt),
            (&self.updated_at, Column::UpdatedAt),
            (&self.last_message_at, Column::LastMessageAt),
        ] {
            if let Some(range) = range {
                cond = cond.add(range.condition(column.into_simple_expr()));
            }
        }
        if let Some(list) = &self.and {
            for (i, f) in list.iter().enumerate() {
                cond = cond.add(f.build(target.nested(), &format!("{path}.and[{i}]"), failures));
            }
        }
        if let Some(list) = &self.or {
            let mut any = Condition::any();
            for (i, f) in list.iter().enumerate() {
                any = any.add(f.build(target.nested(), &format!("{path}.or[{i}]"), failures));
            }
            cond = cond.add(any);
        }
        if let Some(f) = &self.not {
            cond = cond.add(
                f.build(target.nested(), &format!("{path}.not"), failures)
                    .not(),
            );
        }
        cond
    }
}

/// Ids of the tenant's contacts that carry a tag matching `tag_condition`.
fn tagged(target: FilterTarget, tag_condition: Expr) -> SelectStatement {
    Query::select()
        .column((ContactTag, contact_tag::Column::ContactId))
        .from(ContactTag)
        .inner_join(
            Tag,
            Expr::col((Tag, tag::Column::Id)).equals((ContactTag, contact_tag::Column::TagId)),
        )
        .and_where(Expr::col((ContactTag, contact_tag::Column::TenantId)).eq(target.tenant.0))
        .and_where(Expr::col((Tag, tag::Column::TenantId)).eq(target.tenant.0))
        .and_where(tag_condition)
        .to_owned()
}
