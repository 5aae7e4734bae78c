//! `Tag`: a label of a business that contacts carry.
use std::sync::Arc;

use async_graphql::{Context, ID, InputObject, Object, SimpleObject, Value};

use super::plain_fields::DirectFields;
use entity::tag::Model;

use super::contact::contacts_under;
use super::filter::ContactFilterInput;
use super::ids::parse_id;
use super::limits::{filter_cost, page_cost};
use super::order::ContactOrderInput;
use super::patch::TagPatchInput;
use super::{Business, Connection, Contact, RequestContext};
use crate::contacts::ContactParent;
use crate::tags;
use crate::time::Timestamp;

/// A label of a business that contacts carry (seed 002). Unique by name within its business.
#[derive(Clone)]
pub struct Tag(pub Arc<Model>);

impl Tag {
    /// The tag of `model`.
    pub fn new(model: Model) -> Self {
        Self(Arc::new(model))
    }
}

/// `id` and `name`, as their resolvers below give them.
impl DirectFields for Tag {
    fn direct_field(&self, name: &str) -> Option<Value> {
        match name {
            "id" => Some(Value::String(self.0.id.to_string())),
            "name" => Some(Value::String(self.0.name.clone())),
            _ => None,
        }
    }
}

/// A label of a business that contacts carry.
#[Object]
impl Tag {
    /// The tag's id (a UUID).
    pub async fn id(&self) -> ID {
        ID(self.0.id.to_string())
    }

    /// Name of the tag, unique within its business.
    async fn name(&self) -> &str {
        &self.0.name
    }

    /// Position of the tag in lists, ascending.
    async fn display_order(&self) -> i32 {
        self.0.display_order
    }

    /// When the tag was created.
    async fn created_at(&self) -> Timestamp {
        Timestamp::from_millis(self.0.created_at)
    }

    /// When the tag last changed.
    async fn updated_at(&self) -> Timestamp {
        Timestamp::from_millis(self.0.updated_at)
    }

    /// The business the tag belongs to.
    async fn business(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<Business>> {
        let request = RequestContext::of(ctx)?;
        Ok(request
            .loaders
            .businesses
            .load_one(self.0.business_id)
            .await?
            .map(Business))
    }

    /// The contacts that carry this tag.
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
            ContactParent::Tag,
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
}

/// Input of `createTag`.
#[derive(InputObject)]
pub struct CreateTagInput {
    /// The business the tag belongs to.
    pub business_id: ID,
    /// Name, unique within the business (at most 255 characters).
    pub name: String,
    /// Position in lists; default: after the business's other tags.
    pub display_order: Option<i32>,
    /// Echoed in the payload.
    pub client_mutation_id: Option<String>,
}

/// Input of `updateTag`.
#[derive(InputObject)]
pub struct UpdateTagInput {
    /// The tag.
    pub id: ID,
    /// The fields to change.
    pub patch: TagPatchInput,
    /// Echoed in the payload.
    pub client_mutation_id: Option<String>,
}

/// Input of `deleteTag`.
#[derive(InputObject)]
pub struct DeleteTagInput {
    /// The tag.
    pub id: ID,
    /// Echoed in the payload.
    pub client_mutation_id: Option<String>,
}

/// Result of a mutation that changes a tag.
#[derive(SimpleObject)]
pub struct TagPayload {
    /// The tag after the change.
    pub tag: Tag,
    /// The input's `clientMutationId`.
    pub client_mutation_id: Option<String>,
}

/// Result of `deleteTag`.
#[derive(SimpleObject)]
pub struct DeleteTagPayload {
    /// The id of the tag that was deleted.
    pub deleted_tag_id: ID,
    /// The input's `clientMutationId`.
    pub client_mutation_id: Option<String>,
}

/// Tag mutations.
#[derive(Default)]
pub struct TagMutations;

/// Tag mutations.
#[Object]
impl TagMutations {
    /// Creates a tag in a business. Example:
    /// `createTag(input: { businessId: "…", name: "Beta tester" }) { tag { id displayOrder } }`.
    async fn create_tag(
        &self,
        ctx: &Context<'_>,
        input: CreateTagInput,
    ) -> async_graphql::Result<TagPayload> {
        let request = RequestContext::of(ctx)?;
        let business = parse_id("input.businessId", &input.business_id)?;
        let tag = tags::create(
            request.db,
            request.tenant,
            business,
            &input.name,
            input.display_order,
        )
        .await
        .map_err(|e| e.under("input"))?;
        Ok(TagPayload {
            tag: Tag::new(tag),
            client_mutation_id: input.client_mutation_id,
        })
    }

    /// Renames or reorders a tag. Example:
    /// `updateTag(input: { id: "…", patch: { displayOrder: 1 } }) { tag { name displayOrder } }`.
    async fn update_tag(
        &self,
        ctx: &Context<'_>,
        input: UpdateTagInput,
    ) -> async_graphql::Result<TagPayload> {
        let request = RequestContext::of(ctx)?;
        let id = parse_id("input.id", &input.id)?;
        let tag = tags::update(request.db, request.tenant, id, &input.patch.into())
            .await
            .map_err(|e| e.under("input.patch"))?;
        Ok(TagPayload {
            tag: Tag::new(tag),
            client_mutation_id: input.client_mutation_id,
        })
    }

    /// Deletes a tag; contacts that carried it lose it. Example:
    /// `deleteTag(input: { id: "…" }) { deletedTagId }`.
    async fn delete_tag(
        &self,
        ctx: &Context<'_>,
        input: DeleteTagInput,
    ) -> async_graphql::Result<DeleteTagPayload> {
        let request = RequestContext::of(ctx)?;
        let id = parse_id("input.id", &input.id)?;
        let id = tags::delete(request.db, request.tenant, id).await?;
        Ok(DeleteTagPayload {
            deleted_tag_id: ID(id.to_string()),
            client_mutation_id: input.client_mutation_id,
        })
    }
}
