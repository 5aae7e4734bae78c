//! The root `Mutation`: Relay-style, one `input` argument and a payload object each.
use async_graphql::{Context, ID, InputObject, MaybeUndefined, MergedObject, Object, SimpleObject};

use super::contact::ResolutionStatus;
use super::ids::{parse_id, parse_ids};
use super::patch::{ContactPatchInput, change};
use super::{Contact, RequestContext};
use crate::contacts::{self, TagRefs, WriteSettings};
use crate::time::Timestamp;

/// Entry points for changing the contact graph: contact mutations here, those of accounts,
/// businesses and tags next to their types.
#[derive(MergedObject, Default)]
#[graphql(name = "Mutation")]
pub struct MutationRoot(
    ContactMutations,
    super::account::AccountMutations,
    super::business::BusinessMutations,
    super::tag::TagMutations,
    super::duplicate::DuplicateMutations,
    super::source_mutations::SourceMutations,
    super::write_back::WriteBackMutations,
    super::webhook::WebhookMutations,
);

/// Contact mutations.
#[derive(Default)]
pub struct ContactMutations;

/// Input of `updateContact`.
#[derive(InputObject)]
pub struct UpdateContactInput {
    /// The contact to change.
    pub id: ID,
    /// The fields to change: only those present change; `null` clears.
    pub patch: ContactPatchInput,
    /// Change only if the contact's `updatedAt` is still this (as read); otherwise fail
    /// with `PRECONDITION_FAILED` and change nothing.
    pub expected_updated_at: Option<Timestamp>,
    /// Echoed in the payload.
    pub client_mutation_id: Option<String>,
}

/// Result of `updateContact`.
#[derive(SimpleObject)]
pub struct UpdateContactPayload {
    /// The contact as stored after the update.
    pub contact: Contact,
    /// The input's `clientMutationId`.
    pub client_mutation_id: Option<String>,
}

/// Input of `createContact`.
#[derive(InputObject)]
pub struct CreateContactInput {
    /// The new contact's fields (absent fields stay empty).
    pub contact: ContactPatchInput,
    /// Echoed in the payload.
    pub client_mutation_id: Option<String>,
}

/// Result of `createContact`.
#[derive(SimpleObject)]
pub struct CreateContactPayload {
    /// The new contact.
    pub contact: Contact,
    /// The input's `clientMutationId`.
    pub client_mutation_id: Option<String>,
}

/// Input of `deleteContact`.
#[derive(InputObject)]
pub struct DeleteContactInput {
    /// The contact to delete.
    pub id: ID,
    /// Echoed in the payload.
    pub client_mutation_id: Option<String>,
}

/// Input of `restoreContact`.
#[derive(InputObject)]
pub struct RestoreContactInput {
    /// The archived contact.
    pub id: ID,
    /// Echoed in the payload.
    pub client_mutation_id: Option<String>,
}

/// Result of `deleteContact`.
#[derive(SimpleObject)]
pub struct DeleteContactPayload {
    /// The id of the contact that was deleted.
    pub deleted_contact_id: ID,
    /// The input's `clientMutationId`.
    pub client_mutation_id: Option<String>,
}

/// Input of `addTagsToContact` and `removeTagsFromContact`.
#[derive(InputObject)]
pub struct ContactTagsInput {
    /// The contact.
    pub contact_id: ID,
    /// Tags by id.
    pub tag_ids: Option<Vec<ID>>,
    /// Tags by name, in the contact's business.
    pub tag_names: Option<Vec<String>>,
    /// Echoed in the payload.
    pub client_mutation_id: Option<String>,
}

impl ContactTagsInput {
    /// The contact's id and the tags, as the domain takes them.
    fn parse(&self) -> crate::Result<(uuid::Uuid, TagRefs)> {
        let id = parse_id("input.contactId", &self.contact_id)?;
        let tag_ids = match &self.tag_ids {
            Some(ids) => Some(parse_ids("input.tagIds", ids)?),
            None => None,
        };
        Ok((
            id,
            TagRefs {
                tag_ids,
                tag_names: self.tag_names.clone(),
            },
        ))
    }
}

/// Result of a mutation that changes one contact.
#[derive(SimpleObject)]
pub struct ContactPayload {
    /// The contact after the change.
    pub contact: Contact,
    /// The input's `clientMutationId`.
    pub client_mutation_id: Option<String>,
}

/// Input of `setContactResolution`.
#[derive(InputObject)]
pub struct SetContactResolutionInput {
    /// The contact.
    pub id: ID,
    /// How the contact is now identified.
    pub resolution_status: ResolutionStatus,
    /// The CRM record it was resolved to; `null` clears it, leaving it out keeps it.
    pub external_ref: MaybeUndefined<String>,
    /// Echoed in the payload.
    pub client_mutation_id: Option<String>,
}

fn settings(ctx: &Context<'_>) -> WriteSettings {
    ctx.data_opt::<WriteSettings>().copied().unwrap_or_default()
}

/// Contact mutations.
#[Object]
impl ContactMutations {
    /// Changes some fields of a contact (seed 001's PATCH). Example:
    /// `updateContact(input: { id: "…", patch: { name: "Henrik B. Larsen", phone: "+45 20 12 34 56", notes: null } }) { contact { name phone updatedAt } }`.
    /// Invalid input fails with `VALIDATION_FAILED` listing every failing field; an id not
    /// in your tenant with `NOT_FOUND`; a stale `expectedUpdatedAt` with
    /// `PRECONDITION_FAILED`. Nothing is written when it fails.
    async fn update_contact(
        &self,
        ctx: &Context<'_>,
        input: UpdateContactInput,
    ) -> async_graphql::Result<UpdateContactPayload> {
        let request = RequestContext::of(ctx)?;
        let id = parse_id("input.id", &input.id)?;
        let contact = contacts::update_contact(
            request.db,
            request.tenant,
            id,
            &input.patch.into(),
            input.expected_updated_at,
            settings(ctx),
        )
        .await
        .map_err(|e| e.under("input.patch"))?;
        Ok(UpdateContactPayload {
            contact: Contact::new(contact),
            client_mutation_id: input.client_mutation_id,
        })
    }

    /// Creates a contact. Example:
    /// `createContact(input: { contact: { firstName: "Jan", lastName: "Mueller", email: "jan@acme.de" } }) { contact { id } }`.
    async fn create_contact(
        &self,
        ctx: &Context<'_>,
        input: CreateContactInput,
    ) -> async_graphql::Result<CreateContactPayload> {
        let request = RequestContext::of(ctx)?;
        let contact = contacts::create_contact(
            request.db,
            request.tenant,
            &input.contact.into(),
            settings(ctx),
        )
        .await
        .map_err(|e| e.under("input.contact"))?;
        Ok(CreateContactPayload {
            contact: Contact::new(contact),
            client_mutation_id: input.client_mutation_id,
        })
    }

    /// Deletes a contact with its tag links. Example:
    /// `deleteContact(input: { id: "…" }) { deletedContactId }`.
    async fn delete_contact(
        &self,
        ctx: &Context<'_>,
        input: DeleteContactInput,
    ) -> async_graphql::Result<DeleteContactPayload> {
        let request = RequestContext::of(ctx)?;
        let id = parse_id("input.id", &input.id)?;
        let id = contacts::delete_contact(request.db, request.tenant, id).await?;
        Ok(DeleteContactPayload {
            deleted_contact_id: ID(id.to_string()),
            client_mutation_id: input.client_mutation_id,
        })
    }

    /// Brings an archived contact (every vendor record it came from was deleted at its
    /// source) back into lists and counts. Example:
    /// `restoreContact(input: { id: "…" }) { contact { archivedAt } }`.
    async fn restore_contact(
        &self,
        ctx: &Context<'_>,
        input: RestoreContactInput,
    ) -> async_graphql::Result<ContactPayload> {
        let request = RequestContext::of(ctx)?;
        let id = parse_id("input.id", &input.id)?;
        let contact = contacts::restore_contact(request.db, request.tenant, id).await?;
        Ok(ContactPayload {
            contact: Contact::new(contact),
            client_mutation_id: input.client_mutation_id,
        })
    }

    /// Adds tags to a contact, by id or by name in its business; tags it already has stay
    /// as they are. Example:
    /// `addTagsToContact(input: { contactId: "…", tagNames: ["VIP"] }) { contact { tags { name } } }`.
    async fn add_tags_to_contact(
        &self,
        ctx: &Context<'_>,
        input: ContactTagsInput,
    ) -> async_graphql::Result<ContactPayload> {
        let request = RequestContext::of(ctx)?;
        let (id, refs) = input.parse()?;
        let contact = contacts::add_tags(request.db, request.tenant, id, &refs)
            .await
            .map_err(|e| e.under("input"))?;
        Ok(ContactPayload {
            contact: Contact::new(contact),
            client_mutation_id: input.client_mutation_id,
        })
    }

    /// Removes tags from a contact, by id or by name; tags it does not have are ignored.
    /// Example: `removeTagsFromContact(input: { contactId: "…", tagNames: ["VIP"] }) { contact { tags { name } } }`.
    async fn remove_tags_from_contact(
        &self,
        ctx: &Context<'_>,
        input: ContactTagsInput,
    ) -> async_graphql::Result<ContactPayload> {
        let request = RequestContext::of(ctx)?;
        let (id, refs) = input.parse()?;
        let contact = contacts::remove_tags(request.db, request.tenant, id, &refs)
            .await
            .map_err(|e| e.under("input"))?;
        Ok(ContactPayload {
            contact: Contact::new(contact),
            client_mutation_id: input.client_mutation_id,
        })
    }

    /// Records how a contact was identified (seed 000's manual resolution). Example:
    /// `setContactResolution(input: { id: "…", resolutionStatus: MANUALLY_RESOLVED, externalRef: "CRM-CONTACT-78291" }) { contact { resolutionStatus externalRef } }`.
    async fn set_contact_resolution(
        &self,
        ctx: &Context<'_>,
        input: SetContactResolutionInput,
    ) -> async_graphql::Result<ContactPayload> {
        let request = RequestContext::of(ctx)?;
        let id = parse_id("input.id", &input.id)?;
        let contact = contacts::set_resolution(
            request.db,
            request.tenant,
            id,
            input.resolution_status.into(),
            change(input.external_ref),
        )
        .await
        .map_err(|e| e.under("input"))?;
        Ok(ContactPayload {
            contact: Contact::new(contact),
            client_mutation_id: input.client_mutation_id,
        })
    }
}
