//! `Account`: a customer company whose people are contacts.
use async_graphql::{Context, ID, InputObject, MaybeUndefined, Object, SimpleObject};
use entity::account::Model;

use super::contact::contacts_under;
use super::filter::ContactFilterInput;
use super::ids::parse_id;
use super::limits::{filter_cost, page_cost};
use super::order::ContactOrderInput;
use super::patch::{OrganisationPatchInput, change};
use super::{Connection, Contact, RequestContext};
use crate::contacts::ContactParent;
use crate::organisations;
use crate::time::Timestamp;

/// A customer company whose people are contacts (seed 000's accounts, seed 003's clients,
/// seed 004's organisations).
#[derive(Clone)]
pub struct Account(pub Model);

/// Every field of a page's Account goes through its resolver.
impl super::plain_fields::DirectFields for Account {}

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
        Timestamp::from_millis(self.0.created_at)
    }

    /// When the account last changed.
    async fn updated_at(&self) -> Timestamp {
        Timestamp::from_millis(self.0.updated_at)
    }

    /// The account's contacts (seed 000's `GET /api/accounts/{id}/contacts`).
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

/// Input of `createAccount`.
#[derive(InputObject)]
pub struct CreateAccountInput {
    /// Name of the company (at most 255 characters).
    pub name: String,
    /// Identifier in an external CRM.
    pub external_ref: MaybeUndefined<String>,
    /// Echoed in the payload.
    pub client_mutation_id: Option<String>,
}

/// Input of `updateAccount`.
#[derive(InputObject)]
pub struct UpdateAccountInput {
    /// The account.
    pub id: ID,
    /// The fields to change.
    pub patch: OrganisationPatchInput,
    /// Echoed in the payload.
    pub client_mutation_id: Option<String>,
}

/// Input of `deleteAccount`.
#[derive(InputObject)]
pub struct DeleteAccountInput {
    /// The account.
    pub id: ID,
    /// Echoed in the payload.
    pub client_mutation_id: Option<String>,
}

/// Result of a mutation that changes an account.
#[derive(SimpleObject)]
pub struct AccountPayload {
    /// The account after the change.
    pub account: Account,
    /// The input's `clientMutationId`.
    pub client_mutation_id: Option<String>,
}

/// Result of `deleteAccount`.
#[derive(SimpleObject)]
pub struct DeleteAccountPayload {
    /// The id of the account that was deleted.
    pub deleted_account_id: ID,
    /// The input's `clientMutationId`.
    pub client_mutation_id: Option<String>,
}

/// Account mutations.
#[derive(Default)]
pub struct AccountMutations;

/// Account mutations.
#[Object]
impl AccountMutations {
    /// Creates an account. Example: `createAccount(input: { name: "Acme GmbH", externalRef: "CRM-ACC-1" }) { account { id } }`.
    async fn create_account(
        &self,
        ctx: &Context<'_>,
        input: CreateAccountInput,
    ) -> async_graphql::Result<AccountPayload> {
        let request = RequestContext::of(ctx)?;
        let account = organisations::create::<entity::prelude::Account>(
            request.db,
            request.tenant,
            &input.name,
            &change(input.external_ref),
        )
        .await
        .map_err(|e| e.under("input"))?;
        Ok(AccountPayload {
            account: Account(account),
            client_mutation_id: input.client_mutation_id,
        })
    }

    /// Renames an account or changes its external reference. Example:
    /// `updateAccount(input: { id: "…", patch: { name: "Acme AG" } }) { account { name } }`.
    async fn update_account(
        &self,
        ctx: &Context<'_>,
        input: UpdateAccountInput,
    ) -> async_graphql::Result<AccountPayload> {
        let request = RequestContext::of(ctx)?;
        let id = parse_id("input.id", &input.id)?;
        let account = organisations::update::<entity::prelude::Account>(
            request.db,
            request.tenant,
            id,
            &input.patch.into(),
        )
        .await
        .map_err(|e| e.under("input.patch"))?;
        Ok(AccountPayload {
            account: Account(account),
            client_mutation_id: input.client_mutation_id,
        })
    }

    /// Deletes an account. Fails with `CONFLICT` (saying how many) while contacts belong to
    /// it. Example: `deleteAccount(input: { id: "…" }) { deletedAccountId }`.
    async fn delete_account(
        &self,
        ctx: &Context<'_>,
        input: DeleteAccountInput,
    ) -> async_graphql::Result<DeleteAccountPayload> {
        let request = RequestContext::of(ctx)?;
        let id = organisations::delete::<entity::prelude::Account>(
            request.db,
            request.tenant,
            parse_id("input.id", &input.id)?,
        )
        .await?;
        Ok(DeleteAccountPayload {
            deleted_account_id: ID(id.to_string()),
            client_mutation_id: input.client_mutation_id,
        })
    }
}
