//! The filter inputs of every list (`filter`), as GraphQL types; each turns into its domain
//! filter (`crate::contacts::ContactFilter`, …), which validates it and builds its SQL.
use async_graphql::{ID, InputObject};
use chrono::NaiveDate;

use super::contact::ResolutionStatus;
use crate::time::Timestamp;
use crate::{contacts, filter, organisations, tags};

/// Range of instants (seed 003's `updated_at` on/gt/lt, seed 004's date ranges). All given
/// bounds apply together.
#[derive(InputObject, Clone, Debug, Default)]
#[graphql(name = "DateTimeFilter")]
pub struct DateTimeFilterInput {
    /// On this calendar day (UTC).
    pub on: Option<NaiveDate>,
    /// Strictly after.
    pub gt: Option<Timestamp>,
    /// At or after.
    pub gte: Option<Timestamp>,
    /// Strictly before.
    pub lt: Option<Timestamp>,
    /// At or before.
    pub lte: Option<Timestamp>,
}

impl From<DateTimeFilterInput> for filter::DateTimeFilter {
    fn from(f: DateTimeFilterInput) -> Self {
        Self {
            on: f.on,
            gt: f.gt,
            gte: f.gte,
            lt: f.lt,
            lte: f.lte,
        }
    }
}

/// Which contacts to return. Every field given must match (AND); `and`, `or` and `not`
/// combine nested filters.
#[derive(InputObject, Clone, Debug, Default)]
#[graphql(name = "ContactFilter")]
pub struct ContactFilterInput {
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
    /// Belongs to this account.
    pub account_id: Option<ID>,
    /// Belongs to this business.
    pub business_id: Option<ID>,
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
    /// Archived contacts only (true: every vendor record they came from was deleted at its
    /// source) or live ones only (false). When no part of the filter says `archived`: live
    /// ones only.
    pub archived: Option<bool>,
    /// Creation time range.
    pub created_at: Option<DateTimeFilterInput>,
    /// Last update time range (seed 003's `updated_at`).
    pub updated_at: Option<DateTimeFilterInput>,
    /// Last message time range (seed 004's `lastMessageTimeRange`).
    pub last_message_at: Option<DateTimeFilterInput>,
    /// All of these filters match.
    pub and: Option<Vec<ContactFilterInput>>,
    /// At least one of these filters matches.
    pub or: Option<Vec<ContactFilterInput>>,
    /// This filter does not match.
    pub not: Option<Box<ContactFilterInput>>,
}

/// Each element of a list of inputs, converted.
fn all<I: Into<D>, D>(list: Option<Vec<I>>) -> Option<Vec<D>> {
    list.map(|items| items.into_iter().map(Into::into).collect())
}

impl From<ContactFilterInput> for contacts::ContactFilter {
    fn from(f: ContactFilterInput) -> Self {
        Self {
            search: f.search,
            email: f.email,
            phone: f.phone,
            tag: f.tag,
            tags_any: f.tags_any,
            account_id: f.account_id.map(|id| id.0),
            business_id: f.business_id.map(|id| id.0),
            resolution_status: f.resolution_status.map(Into::into),
            status: f.status,
            pipeline_id: f.pipeline_id,
            pipeline_stage: f.pipeline_stage,
            source: f.source,
            lead_source: f.lead_source,
            owner: f.owner,
            assignee: f.assignee,
            message_status: f.message_status,
            is_test_contact: f.is_test_contact,
            archived: f.archived,
            created_at: f.created_at.map(Into::into),
            updated_at: f.updated_at.map(Into::into),
            last_message_at: f.last_message_at.map(Into::into),
            and: all(f.and),
            or: all(f.or),
            not: f.not.map(|not| Box::new((*not).into())),
        }
    }
}

/// Which accounts or businesses to return; every field given must match.
#[derive(InputObject, Clone, Debug, Default)]
#[graphql(name = "OrganisationFilter")]
pub struct OrganisationFilterInput {
    /// Case-insensitive substring of the name (at most 255 characters).
    pub search: Option<String>,
    /// Exact name.
    pub name: Option<String>,
    /// Exact external reference.
    pub external_ref: Option<String>,
    /// Creation time range.
    pub created_at: Option<DateTimeFilterInput>,
    /// Last update time range.
    pub updated_at: Option<DateTimeFilterInput>,
}

impl From<OrganisationFilterInput> for organisations::OrganisationFilter {
    fn from(f: OrganisationFilterInput) -> Self {
        Self {
            search: f.search,
            name: f.name,
            external_ref: f.external_ref,
            created_at: f.created_at.map(Into::into),
            updated_at: f.updated_at.map(Into::into),
        }
    }
}

/// Which tags to return; every field given must match.
#[derive(InputObject, Clone, Debug, Default)]
#[graphql(name = "TagFilter")]
pub struct TagFilterInput {
    /// Case-insensitive substring of the name (at most 255 characters).
    pub search: Option<String>,
    /// Exact name.
    pub name: Option<String>,
    /// Tags of this business.
    pub business_id: Option<ID>,
}

impl From<TagFilterInput> for tags::TagFilter {
    fn from(f: TagFilterInput) -> Self {
        Self {
            search: f.search,
            name: f.name,
            business_id: f.business_id.map(|id| id.0),
        }
    }
}

/// The domain filter of a `filter` argument (absent: everything).
pub fn filter<I: Into<D>, D: Default>(filter: Option<I>) -> D {
    filter.map(Into::into).unwrap_or_default()
}
