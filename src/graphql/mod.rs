//! The GraphQL schema: thin resolvers over the domain modules, one file per type.
mod account;
mod business;
mod connection;
mod contact;
mod duplicate;
pub mod error_codes;
mod errors;
pub mod field_order;
mod filter;
mod ids;
pub mod input_checks;
pub mod limits;
pub mod loader;
mod mutation;
mod node;
mod order;
mod patch;
pub mod pipeline;
mod plain_fields;
mod query;
mod scalars;
pub mod scopes;
mod source;
mod source_mutations;
pub mod subscription;
pub mod subscription_hub;
mod tag;
mod webhook;
mod write_back;

use std::sync::Arc;

use async_graphql::{Context, Schema};
use sea_orm::DatabaseConnection;

pub use account::Account;
pub use business::Business;
pub use connection::{Connection, PageInfo, TotalCount};
pub use contact::Contact;
pub use loader::Loaders;
pub use mutation::MutationRoot;
pub use node::Node;
pub use query::QueryRoot;
pub use subscription::{ConnectionSubscriptions, SubscriptionRoot, SubscriptionSlots};
pub use subscription_hub::SubscriptionHubs;
pub use tag::Tag;

use crate::auth::Principal;
use crate::config::Limits;
use crate::contacts::WriteSettings;
use crate::events::feed::Feed;
use crate::sources::sync::Syncer;
use crate::tenancy::TenantId;
use crate::webhooks::store::UrlPolicy;

/// What resolvers share beside the pool: the sources' syncer, the change feed and which
/// webhook URLs are allowed.
pub struct Services {
    pub syncer: Arc<Syncer>,
    pub feed: Arc<Feed>,
    pub webhook_urls: UrlPolicy,
}

/// The schema served at `/graphql`.
pub type AppSchema = Schema<QueryRoot, MutationRoot, SubscriptionRoot>;

/// Builds the schema; the database pool, write settings and the sources' syncer are shared
/// by every request.
/// In production, introspection and field suggestions are off.
pub fn build_schema(
    db: DatabaseConnection,
    settings: WriteSettings,
    limits: Limits,
    production: bool,
    services: Services,
) -> AppSchema {
    let Services {
        syncer,
        feed,
        webhook_urls,
    } = services;
    // No engine extensions (`.extension(…)`): their per-field hooks would cost every field,
    // and `plain_fields` resolves nodes without them. What they would do runs in `pipeline`.
    let mut builder = Schema::build(
        QueryRoot::default(),
        MutationRoot::default(),
        SubscriptionRoot,
    )
    .data(db)
    .data(feed)
    .data(webhook_urls)
    .data(syncer)
    .data(settings)
    // The exact per-operation depth limits are checked by `pipeline` (introspection may
    // nest deeper); this is the backstop. No extensions: the checks that once were ones
    // run once per request in `pipeline`, and without any the engine skips its per-field
    // hooks.
    .limit_depth(limits.max_depth.max(limits::INTROSPECTION_MAX_DEPTH))
    .limit_complexity(limits.max_complexity)
    .limit_directives(limits.max_directives_per_field);
    if production {
        builder = builder.disable_introspection().disable_suggestions();
    }
    builder.finish()
}

/// The schema in SDL, as checked in at `schema.graphql`.
pub fn sdl() -> String {
    Schema::build(
        QueryRoot::default(),
        MutationRoot::default(),
        SubscriptionRoot,
    )
    .finish()
    .sdl()
}

/// What every resolver needs from its request: the pool, the caller's tenant and the
/// request's loaders.
pub(crate) struct RequestContext<'a> {
    pub db: &'a DatabaseConnection,
    pub tenant: TenantId,
    pub loaders: &'a Loaders,
}

impl<'a> RequestContext<'a> {
    /// Reads it from the GraphQL context (the HTTP layer puts the caller there).
    pub fn of(ctx: &Context<'a>) -> async_graphql::Result<Self> {
        Ok(Self {
            db: ctx.data::<DatabaseConnection>()?,
            tenant: ctx.data::<Principal>()?.tenant,
            loaders: ctx.data::<Arc<Loaders>>()?,
        })
    }
}
