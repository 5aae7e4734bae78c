//! `Account`: a customer company whose people are contacts.
use async_graphql::{Context, ID, Object};
use entity::account::Model;

use super::contact::contacts_under;
use super::{Connection, Contact};
use crate::contacts::{ContactFilter, ContactOrder, ContactParent};
use crate::time::Timestamp;

/// A customer company whose people are contacts (seed 000's accounts, seed 003's clients,
/// seed 004's organisations).
#[derive(Clone)]
pub struct Account(pub Model);

/// A customer company whose people are contacts.
#[Object]
impl Account {
    /// The account's id (a UUID).
    pub async fn id(&self) -> ID {
        ID(self.0.id.to_string())
    }

    /// Name of the company.
    async fn name(&self) -> &str {
        &self.0.name
    }

    /// Identifier of the account in an external CRM.
    async fn external_ref(&self) -> Option<&str> {
        self.0.external_ref.as_deref()
    }

    /// When the account was created.
    async fn created_at(&self) -> Timestamp {
        Timestamp(self.0.created_at)
    }

    /// When the account last changed.
    async fn updated_at(&self) -> Timestamp {
        Timestamp(self.0.updated_at)
    }

    /// The account's contacts (seed 000's `GET /api/accounts/{id}/contacts`).
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
            ContactParent::Account,
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
