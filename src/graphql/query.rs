//! The root `Query`.
use std::sync::Arc;

use async_graphql::{Context, ID, MergedObject, Object};
use entity::prelude::{Account as AccountRow, Business as BusinessRow};
use futures::FutureExt;

use super::contact::preload_for;
use super::filter::{
    ContactFilterInput, OrganisationFilterInput, TagFilterInput, filter as domain_filter,
};
use super::limits::{filter_cost, page_cost};
use super::order::{ContactOrderInput, OrganisationOrderInput, TagOrderInput, orders};
use super::{Account, Business, Connection, Contact, Node, RequestContext, Tag, TotalCount};
use crate::contacts::{self, ContactQuery};
use crate::filter::parse_id;
use crate::organisations::{self, OrganisationQuery};
use crate::paging::PageArgs;
use crate::tags::{self, TagQuery};

/// Entry points for reading the unified contact graph: the graph here, sources and
/// duplicates next to their types.
#[derive(MergedObject, Default)]
#[graphql(name = "Query")]
pub struct QueryRoot(
    GraphQueries,
    super::source::SourceQueries,
    super::duplicate::DuplicateQueries,
    super::write_back::WriteBackQueries,
    super::webhook::WebhookQueries,
);

/// Reading contacts, accounts, businesses and tags.
#[derive(Default)]
pub struct GraphQueries;

/// The total of `page`'s list: its length when it holds the whole list
/// ([`crate::paging::Page::whole_total`]: a string no contact contains is then not looked for
/// a second time), else a count run only if `totalCount` is selected.
macro_rules! deferred_count {
    ($request:expr, $page:expr, $count:expr, $filter:expr) => {{
        match $page.whole_total() {
            Some(total) => TotalCount::Known(total),
            None => {
                let db = $request.db.clone();
                let tenant = $request.tenant;
                let filter = Arc::new($filter);
                TotalCount::Deferred(Arc::new(move || {
                    let (db, filter) = (db.clone(), filter.clone());
                    async move { $count(&db, tenant, &filter).await }.boxed()
                }))
            }
        }
    }};
}

/// Entry points for reading the unified contact graph.
#[Object]
impl GraphQueries {
    /// Any object by its id: a contact, account, business or tag. Null when no such object
    /// exists in your tenant.
    async fn node(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The object's id (a UUID).")] id: ID,
    ) -> async_graphql::Result<Option<Node>> {
        let request = RequestContext::of(ctx)?;
        let id = parse_id("id", &id)?;
        let l = request.loaders;
        let (contact, account, business, tag) = futures::try_join!(
            l.contacts.load_one(id),
            l.accounts.load_one(id),
            l.businesses.load_one(id),
            l.tags.load_one(id),
        )?;
        Ok(contact
            .map(|m| Node::Contact(Contact::new(m)))
            .or_else(|| account.map(|m| Node::Account(Account(m))))
            .or_else(|| business.map(|m| Node::Business(Business(m))))
            .or_else(|| tag.map(|m| Node::Tag(Tag::new(m)))))
    }

    /// One contact by id; null when it does not exist in your tenant.
    async fn contact(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The contact's id (a UUID).")] id: ID,
    ) -> async_graphql::Result<Option<Contact>> {
        let request = RequestContext::of(ctx)?;
        let id = parse_id("id", &id)?;
        Ok(request
            .loaders
            .contacts
            .load_one(id)
            .await?
            .map(Contact::new))
    }

    /// Contacts, filtered and sorted, a page at a time.
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
        let request = RequestContext::of(ctx)?;
        let args = PageArgs::from_relay(first, after, last, before)?;
        let query = ContactQuery {
            filter: domain_filter(filter),
            order: orders(order_by),
        };
        let page = contacts::page(request.db, request.tenant, &query, &args).await?;
        let related = Arc::new(
            contacts::load_related(
                request.db,
                request.tenant,
                page.rows.iter(),
                preload_for(ctx),
            )
            .await?,
        );
        let total = deferred_count!(request, page, contacts::count, query.filter.clone());
        Ok(Connection::new(
            page,
            &contacts::ordering(&query.order),
            total,
            |m| Contact::with_related(m, related.clone()),
        ))
    }

    /// One account by id; null when it does not exist in your tenant.
    async fn account(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The account's id (a UUID).")] id: ID,
    ) -> async_graphql::Result<Option<Account>> {
        let request = RequestContext::of(ctx)?;
        let id = parse_id("id", &id)?;
        Ok(request.loaders.accounts.load_one(id).await?.map(Account))
    }

    /// Accounts, filtered and sorted, a page at a time.
    #[allow(clippy::too_many_arguments)]
    #[graphql(complexity = "page_cost(first, last, child_complexity)")]
    async fn accounts(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Which accounts.")] filter: Option<OrganisationFilterInput>,
        #[graphql(desc = "Sort keys, most significant first; default by name.")] order_by: Option<
            Vec<OrganisationOrderInput>,
        >,
        #[graphql(desc = "Page size reading forwards (0 to 100, default 20).")] first: Option<i32>,
        #[graphql(desc = "Read the items after this cursor.")] after: Option<String>,
        #[graphql(desc = "Page size reading backwards (0 to 100).")] last: Option<i32>,
        #[graphql(desc = "Read the items before this cursor.")] before: Option<String>,
    ) -> async_graphql::Result<Connection<Account>> {
        let request = RequestContext::of(ctx)?;
        let args = PageArgs::from_relay(first, after, last, before)?;
        let query = OrganisationQuery {
            filter: domain_filter(filter),
            order: orders(order_by),
        };
        let page =
            organisations::page::<AccountRow>(request.db, request.tenant, &query, &args).await?;
        // Prime the account loader: `contact.account` under these accounts costs nothing.
        request
            .loaders
            .accounts
            .feed_many(page.rows.iter().map(|m| (m.id, m.clone())))
            .await;
        let total = deferred_count!(
            request,
            page,
            organisations::count::<AccountRow>,
            query.filter.clone()
        );
        Ok(Connection::new(
            page,
            &organisations::ordering::<AccountRow>(&query.order),
            total,
            Account,
        ))
    }

    /// One business by id; null when it does not exist in your tenant.
    async fn business(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The business's id (a UUID).")] id: ID,
    ) -> async_graphql::Result<Option<Business>> {
        let request = RequestContext::of(ctx)?;
        let id = parse_id("id", &id)?;
        Ok(request.loaders.businesses.load_one(id).await?.map(Business))
    }

    /// Businesses, filtered and sorted, a page at a time.
    #[allow(clippy::too_many_arguments)]
    #[graphql(complexity = "page_cost(first, last, child_complexity)")]
    async fn businesses(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Which businesses.")] filter: Option<OrganisationFilterInput>,
        #[graphql(desc = "Sort keys, most significant first; default by name.")] order_by: Option<
            Vec<OrganisationOrderInput>,
        >,
        #[graphql(desc = "Page size reading forwards (0 to 100, default 20).")] first: Option<i32>,
        #[graphql(desc = "Read the items after this cursor.")] after: Option<String>,
        #[graphql(desc = "Page size reading backwards (0 to 100).")] last: Option<i32>,
        #[graphql(desc = "Read the items before this cursor.")] before: Option<String>,
    ) -> async_graphql::Result<Connection<Business>> {
        let request = RequestContext::of(ctx)?;
        let args = PageArgs::from_relay(first, after, last, before)?;
        let query = OrganisationQuery {
            filter: domain_filter(filter),
            order: orders(order_by),
        };
        let page =
            organisations::page::<BusinessRow>(request.db, request.tenant, &query, &args).await?;
        request
            .loaders
            .businesses
            .feed_many(page.rows.iter().map(|m| (m.id, m.clone())))
            .await;
        let total = deferred_count!(
            request,
            page,
            organisations::count::<BusinessRow>,
            query.filter.clone()
        );
        Ok(Connection::new(
            page,
            &organisations::ordering::<BusinessRow>(&query.order),
            total,
            Business,
        ))
    }

    /// One tag by id; null when it does not exist in your tenant.
    async fn tag(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The tag's id (a UUID).")] id: ID,
    ) -> async_graphql::Result<Option<Tag>> {
        let request = RequestContext::of(ctx)?;
        let id = parse_id("id", &id)?;
        Ok(request.loaders.tags.load_one(id).await?.map(Tag::new))
    }

    /// Tags of all businesses, filtered and sorted, a page at a time.
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
        let page = tags::page(request.db, request.tenant, &query, &args).await?;
        let total = deferred_count!(request, page, tags::count, query.filter.clone());
        Ok(Connection::new(
            page,
            &tags::ordering(&query.order),
            total,
            Tag::new,
        ))
    }
}
