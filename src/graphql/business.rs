//! `Business`: an organisation of the tenant that owns contacts and tags.
use std::sync::Arc;

use async_graphql::{Context, ID, Object};
use entity::business::Model;

use super::contact::contacts_under;
use super::loader::TagPageKey;
use super::{Connection, Contact, RequestScope, Tag, TotalCount};
use crate::contacts::{ContactFilter, ContactOrder, ContactParent};
use crate::paging::{Page, PageArgs};
use crate::tags::{self, TagFilter, TagOrder, TagQuery};
use crate::time::Timestamp;

/// An organisation of the tenant that owns contacts and tags (seed 002's businesses).
#[derive(Clone)]
pub struct Business(pub Model);

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
        Timestamp(self.0.created_at)
    }

    /// When the business last changed.
    async fn updated_at(&self) -> Timestamp {
        Timestamp(self.0.updated_at)
    }

    /// The business's contacts (seed 002's `GET /businesses/{businessId}/contacts`).
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
    async fn tags(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Which tags.")] filter: Option<TagFilter>,
        #[graphql(desc = "Sort keys, most significant first; default display order.")]
        order_by: Option<Vec<TagOrder>>,
        #[graphql(desc = "Page size reading forwards (0 to 100, default 20).")] first: Option<i32>,
        #[graphql(desc = "Read the items after this cursor.")] after: Option<String>,
        #[graphql(desc = "Page size reading backwards (0 to 100).")] last: Option<i32>,
        #[graphql(desc = "Read the items before this cursor.")] before: Option<String>,
    ) -> async_graphql::Result<Connection<Tag>> {
        let scope = RequestScope::of(ctx)?;
        let args = PageArgs::from_relay(first, after, last, before)?;
        let query = TagQuery {
            filter: filter.unwrap_or_default(),
            order: order_by.unwrap_or_default(),
        };
        let ordering = tags::ordering(&query.order);
        let key = TagPageKey {
            parent: (),
            parent_id: self.0.id,
            query: Arc::new(query),
            args: Arc::new(args.clone()),
            with_totals: ctx.look_ahead().field("totalCount").exists(),
        };
        let page = scope
            .loaders
            .tag_pages
            .load_one(key)
            .await?
            .unwrap_or_else(|| Page::none(&args));
        let total = TotalCount::Known(page.total.unwrap_or(0));
        Ok(Connection::new(page, &ordering, total, Tag))
    }
}
