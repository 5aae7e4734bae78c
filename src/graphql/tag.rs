//! `Tag`: a label of a business that contacts carry.
use async_graphql::{Context, ID, Object};
use entity::tag::Model;

use super::contact::contacts_under;
use super::{Business, Connection, Contact, RequestScope};
use crate::contacts::{ContactFilter, ContactOrder, ContactParent};
use crate::time::Timestamp;

/// A label of a business that contacts carry (seed 002). Unique by name within its business.
#[derive(Clone)]
pub struct Tag(pub Model);

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
        Timestamp(self.0.created_at)
    }

    /// When the tag last changed.
    async fn updated_at(&self) -> Timestamp {
        Timestamp(self.0.updated_at)
    }

    /// The business the tag belongs to.
    async fn business(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<Business>> {
        let scope = RequestScope::of(ctx)?;
        Ok(scope
            .loaders
            .businesses
            .load_one(self.0.business_id)
            .await?
            .map(Business))
    }

    /// The contacts that carry this tag.
    #[allow(clippy::too_many_arguments)]
    async fn contacts(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Which contacts.")] filter: Option<ContactFilter>,
        #[graphql(desc = "Sort keys, most significant first; default newest first.")]
        order_by: Option<Vec<ContactOrder>>,
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
