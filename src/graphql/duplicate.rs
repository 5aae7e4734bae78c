//! `DuplicateGroup`, `duplicateContacts` and `mergeContacts`.
use async_graphql::{Context, Enum, ID, InputObject, Object, SimpleObject};

use super::ids::collect_ids;
use super::{Connection, Contact, RequestContext, TotalCount};
use crate::contacts::duplicates::{self, DuplicateGroup as Group};
use crate::contacts::identity_keys;
use crate::contacts::merge;
use crate::filter::collect_id;
use crate::tenancy::find_by_ids;

/// What a duplicate group's contacts share.
#[derive(Enum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum MatchedOn {
    /// An email address (primary or secondary, any case).
    Email,
    /// A phone number in E.164.
    Phone,
}

/// Contacts of your tenant that share an email address or phone number.
#[derive(Clone)]
pub struct DuplicateGroup {
    group: Group,
    contacts: Vec<Contact>,
}

/// Every field of a page's DuplicateGroup goes through its resolver.
impl super::plain_fields::DirectFields for DuplicateGroup {}

/// Contacts that share an email address or phone number.
#[Object]
impl DuplicateGroup {
    /// What they share.
    async fn matched_on(&self) -> MatchedOn {
        if self.group.kind == identity_keys::PHONE {
            MatchedOn::Phone
        } else {
            MatchedOn::Email
        }
    }

    /// The shared value (a lower-cased email, or an E.164 phone).
    async fn value(&self) -> &str {
        &self.group.value
    }

    /// The contacts (two or more), oldest id first.
    async fn contacts(&self) -> &[Contact] {
        &self.contacts
    }
}

/// Reading duplicates.
#[derive(Default)]
pub struct DuplicateQueries;

/// Reading duplicates.
#[Object]
impl DuplicateQueries {
    /// Groups of contacts that share an email (any case, primary or secondary) or a phone,
    /// ordered by what they share. Merge a group with `mergeContacts`.
    async fn duplicate_contacts(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Page size (0 to 100, default 20).")] first: Option<i32>,
        #[graphql(desc = "Read the groups after this cursor.")] after: Option<String>,
    ) -> async_graphql::Result<Connection<DuplicateGroup>> {
        let request = RequestContext::of(ctx)?;
        let (groups, has_next) =
            duplicates::duplicate_groups(request.db, request.tenant, first, after.as_deref())
                .await?;
        let ids: Vec<uuid::Uuid> = groups
            .iter()
            .flat_map(|g| g.contact_ids.iter().copied())
            .collect();
        let found =
            find_by_ids::<entity::prelude::Contact>(request.db, request.tenant, &ids).await?;
        let items = groups
            .into_iter()
            .map(|group| {
                let contacts = group
                    .contact_ids
                    .iter()
                    .filter_map(|id| found.get(id).cloned().map(Contact::new))
                    .collect();
                (group.cursor(), DuplicateGroup { group, contacts })
            })
            .collect();
        let db = request.db.clone();
        let tenant = request.tenant;
        let total = TotalCount::Deferred(std::sync::Arc::new(move || {
            let db = db.clone();
            Box::pin(async move { duplicates::count_groups(&db, tenant).await })
        }));
        Ok(Connection::from_edges(
            items,
            has_next,
            after.is_some(),
            total,
        ))
    }
}

/// Input of `mergeContacts`.
#[derive(InputObject)]
pub struct MergeContactsInput {
    /// The contact that stays.
    pub target_id: ID,
    /// The contacts folded into it and then deleted (1 to 50).
    pub source_ids: Vec<ID>,
    /// Echoed in the payload.
    pub client_mutation_id: Option<String>,
}

/// Result of `mergeContacts`.
#[derive(SimpleObject)]
pub struct MergeContactsPayload {
    /// The merged contact.
    pub contact: Contact,
    /// The ids of the contacts merged into it (now deleted).
    pub merged_contact_ids: Vec<ID>,
    /// The input's `clientMutationId`.
    pub client_mutation_id: Option<String>,
}

/// Merging duplicates.
#[derive(Default)]
pub struct DuplicateMutations;

/// Merging duplicates.
#[Object]
impl DuplicateMutations {
    /// Merges contacts into one, in one transaction: the target keeps its values and fills
    /// its empty fields from the others (in the order given); tags, assignees and secondary
    /// emails and phones are united (the others' primary email and phone become secondary
    /// ones); their vendor records move to the target, so later imports update it; the
    /// others are deleted. Ids not in your tenant fail with `NOT_FOUND`. Example:
    /// `mergeContacts(input: { targetId: "…", sourceIds: ["…"] }) { contact { email secondaryEmails } }`.
    async fn merge_contacts(
        &self,
        ctx: &Context<'_>,
        input: MergeContactsInput,
    ) -> async_graphql::Result<MergeContactsPayload> {
        let request = RequestContext::of(ctx)?;
        // Every malformed id is reported at once, the target's and the others'.
        let mut failures = Vec::new();
        let target = collect_id("input.targetId", &input.target_id, &mut failures);
        let others = collect_ids("input.sourceIds", &input.source_ids, &mut failures);
        let Some(target) = target.filter(|_| failures.is_empty()) else {
            return Err(crate::Error::Validation(failures).into());
        };
        let (contact, merged) = merge::merge_contacts(request.db, request.tenant, target, &others)
            .await
            .map_err(|e| e.under("input"))?;
        Ok(MergeContactsPayload {
            contact: Contact::new(contact),
            merged_contact_ids: merged.into_iter().map(|id| ID(id.to_string())).collect(),
            client_mutation_id: input.client_mutation_id,
        })
    }
}
