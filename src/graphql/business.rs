//! `Business`: an organisation of the tenant that owns contacts and tags.

use async_graphql::{Context, ID, InputObject, MaybeUndefined, Object, SimpleObject};
use entity::business::Model;

use super::contact::contacts_under;
use super::filter::ContactFilterInput;
use super::filter::{TagFilterInput, filter as domain_filter};
use super::ids::parse_id;
use super::limits::{filter_cost, page_cost};
use super::loader::TagPageKey;
use super::order::ContactOrderInput;
use super::order::{TagOrderInput, orders};
use super::patch::{OrganisationPatchInput, change};
use super::{Connection, Contact, RequestContext, Tag, TotalCount};
use crate::contacts::ContactParent;
use crate::organisations;
use crate::paging::{Page, PageArgs};
use crate::tags::{self, TagQuery};
use crate::time::Timestamp;

/// An organisation of the tenant that owns contacts and tags (seed 002's businesses).
#[derive(Clone)]
pub struct Business(pub Model);

/// Every field of a page's Business goes through its resolver.
impl super::plain_fields::DirectFields for Business {}

/// An organisation of the tenant that owns contacts and tags.
#[Object]
impl Business {
    /// The business's id (a UUID).
    pub async fn id(&self) -> ID {
        ID(self.0.id.to_string())
    }

    /// Name of the business.
    async fn name(&self) -> &str {
        &self.0.name
    }

    /// Identifier of the business in an external system.
    async fn external_ref(&self) -> Option<&str> {
        self.0.external_ref.as_deref()
    }

    /// When the business was created.
    async fn created_at(&self) -> Timestamp {
        Timestamp::from_millis(self.0.created_at)
    }

    /// When the business last changed.
    async fn updated_at(&self) -> Timestamp {
        Timestamp::from_millis(self.0.updated_at)
    }

    /// The business's contacts (seed 002's `GET /businesses/{businessId}/contacts`).
    #[allow(clippy::too_many_arguments)]
    #[graphql(
        complexity = "page_cost(first, last, child_complexity) + filter_cost(filter.as_ref())"
    )]
    async fn contacts(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Which contacts.")] filter: Option<ContactFilterInput>,
        #[graphql(desc = "Sort keys, most significant first; default newest first.")]
        order_by: Option<Vec<ContactOrderInput>>,
        #[graphql(desc = "Page size reading forwards (0 to 100, default 20).")] first: Option<i32>,
        #[graphql(desc = "Read the items after this cursor.")] after: Option<String>,
        #[graphql(desc = "Page size reading backwards (0 to 100).")] last: Option<i32>,
        #[graphql(desc = "Read the items before this cursor.")] before: Option<String>,
    ) -> async_graphql::Result<Connection<Contact>> {
        contacts_under(
            ctx,
            ContactParent::Business,
            self.0.id,
            filter,
            order_by,
            first,
            after,
            last,
            before,
        )
        .await
    }

    /// The business's tags; default in display order.
    #[allow(clippy::too_many_arguments)]
    #[graphql(complexity = "page_cost(first, last, child_complexity)")]
    async fn tags(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Which tags.")] filter: Option<TagFilterInput>,
        #[graphql(desc = "Sort keys, most significant first; default display order.")]
        order_by: Option<Vec<TagOrderInput>>,
        #[graphql(desc = "Page size reading forwards (0 to 100, default 20).")] first: Option<i32>,
        #[graphql(desc = "Read the items after this cursor.")] after: Option<String>,
        #[graphql(desc = "Page size reading backwards (0 to 100).")] last: Option<i32>,
        #[graphql(desc = "Read the items before this cursor.")] before: Option<String>,
    ) -> async_graphql::Result<Connection<Tag>> {
        let request = RequestContext::of(ctx)?;
        let args = PageArgs::from_relay(first, after, last, before)?;
        let query = TagQuery {
            filter: domain_filter(filter),
            order: orders(order_by),
        };
        let ordering = tags::ordering(&query.order);
        let key = TagPageKey::new(ctx, self.0.id, (), query, args.clone());
        let page = request
            .loaders
            .tag_pages
            .load_one(key)
            .await?
            .unwrap_or_else(|| Page::none(&args));
        let total = TotalCount::Known(page.total.unwrap_or(0));
        Ok(Connection::new(page, &ordering, total, Tag::new))
    }
}
/// Input of `createBusiness`.
#[derive(InputObject)]
pub struct CreateBusinessInput {
    /// Name of the business (at most 255 characters).
    pub name: String,
    /// Identifier in an external system.
    pub external_ref: MaybeUndefined<String>,
    /// Echoed in the payload.
    pub client_mutation_id: Option<String>,
}

/// Input of `updateBusiness`.
#[derive(InputObject)]
pub struct UpdateBusinessInput {
    /// The business.
    pub id: ID,
    /// The fields to change.
    pub patch: OrganisationPatchInput,
    /// Echoed in the payload.
    pub client_mutation_id: Option<String>,
}

/// Input of `deleteBusiness`.
#[derive(InputObject)]
pub struct DeleteBusinessInput {
    /// The business.
    pub id: ID,
    /// Echoed in the payload.
    pub client_mutation_id: Option<String>,
}

/// Result of a mutation that changes an business.
#[derive(SimpleObject)]
pub struct BusinessPayload {
    /// The business after the change.
    pub business: Business,
    /// The input's `clientMutationId`.
    pub client_mutation_id: Option<String>,
}

/// Result of `deleteBusiness`.
#[derive(SimpleObject)]
pub struct DeleteBusinessPayload {
    /// The id of the business that was deleted.
    pub deleted_business_id: ID,
    /// The input's `clientMutationId`.
    pub client_mutation_id: Option<String>,
}

/// Business mutations.
#[derive(Default)]
pub struct BusinessMutations;

/// Business mutations.
#[Object]
impl BusinessMutations {
    /// Creates an business. Example: `createBusiness(input: { name: "Support EMEA", externalRef: "BIZ-7" }) { business { id } }`.
    async fn create_business(
        &self,
        ctx: &Context<'_>,
        input: CreateBusinessInput,
    ) -> async_graphql::Result<BusinessPayload> {
        let request = RequestContext::of(ctx)?;
        let business = organisations::create::<entity::prelude::Business>(
            request.db,
            request.tenant,
            &input.name,
            &change(input.external_ref),
        )
        .await
        .map_err(|e| e.under("input"))?;
        Ok(BusinessPayload {
            business: Business(business),
            client_mutation_id: input.client_mutation_id,
        })
    }

    /// Renames an business or changes its external reference. Example:
    /// `updateBusiness(input: { id: "…", patch: { name: "Support Europe" } }) { business { name } }`.
    async fn update_business(
        &self,
        ctx: &Context<'_>,
        input: UpdateBusinessInput,
    ) -> async_graphql::Result<BusinessPayload> {
        let request = RequestContext::of(ctx)?;
        let id = parse_id("input.id", &input.id)?;
        let business = organisations::update::<entity::prelude::Business>(
            request.db,
            request.tenant,
            id,
            &input.patch.into(),
        )
        .await
        .map_err(|e| e.under("input.patch"))?;
        Ok(BusinessPayload {
            business: Business(business),
            client_mutation_id: input.client_mutation_id,
        })
    }

    /// Deletes an business. Its tags go with it. Fails with `CONFLICT` (saying how many) while contacts belong to
    /// it. Example: `deleteBusiness(input: { id: "…" }) { deletedBusinessId }`.
    async fn delete_business(
        &self,
        ctx: &Context<'_>,
        input: DeleteBusinessInput,
    ) -> async_graphql::Result<DeleteBusinessPayload> {
        let request = RequestContext::of(ctx)?;
        let id = organisations::delete::<entity::prelude::Business>(
            request.db,
            request.tenant,
            parse_id("input.id", &input.id)?,
        )
        .await?;
        Ok(DeleteBusinessPayload {
            deleted_business_id: ID(id.to_string()),
            client_mutation_id: input.client_mutation_id,
        })
    }
}
