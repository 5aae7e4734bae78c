//! contact-gateway: one GraphQL API over the contacts of several vendor systems.
//!
//! The layers, top to bottom (arrows point down only):
//! - [`http`]: axum routes (GraphQL, GraphiQL, health, metrics);
//! - [`auth`]: who is calling, as a [`auth::Principal`] carrying the tenant;
//! - [`graphql`]: the schema, thin resolvers, connections and DataLoaders;
//! - domain modules [`contacts`], [`organisations`] (accounts and businesses), [`tags`],
//!   [`sources`]: filters, orders, queries and writes as plain functions, always scoped by
//!   tenant ([`tenancy`]), paged by [`paging`]; every error is an [`Error`] with a [`code::Code`];
//! - [`db`]: connections, write transactions, bulk inserts; [`secrets`]: the key vendor
//!   tokens are sealed with;
//! - `entity` and `migration` crates: tables and schema.

pub mod auth;
pub mod change;
pub mod cli;
pub mod code;
pub mod config;
pub mod contacts;
pub mod db;
pub mod demo;
pub mod error;
pub mod events;
pub mod filter;
pub mod graphql;
pub mod http;
pub mod metrics;
pub mod organisations;
pub mod paging;
pub mod secrets;
pub mod sources;
pub mod startup;
pub mod tags;
pub mod tenancy;
pub mod time;
pub mod webhooks;
pub mod write_back;

pub use error::{Error, Result};
