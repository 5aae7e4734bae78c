//! Scope checks in one place: queries need `contacts:read`, mutations `contacts:write`,
//! the root fields over sources ([`SOURCE_FIELDS`]) `sources:manage` instead, and those
//! over webhooks ([`WEBHOOK_FIELDS`]) `webhooks:manage`.
use crate::code::Code;

use async_graphql::ServerResult;
use async_graphql::parser::types::{ExecutableDocument, OperationType, Selection, SelectionSet};

use super::limits::coded_error;
use crate::auth::{Principal, Scope};

/// Refuses a document whose operations need a scope `principal`'s key lacks: each operation
/// needs `contacts:write` (mutations) or `contacts:read` (queries and subscriptions) for its
/// root fields, except those in [`SOURCE_FIELDS`] and [`WEBHOOK_FIELDS`], which need their
/// own scope instead.
///
/// # Errors
/// `FORBIDDEN`, naming the first scope missing.
pub fn check(document: &ExecutableDocument, principal: &Principal) -> ServerResult<()> {
    for (_, operation) in document.operations.iter() {
        let general = match operation.node.ty {
            OperationType::Mutation => Scope::ContactsWrite,
            _ => Scope::ContactsRead,
        };
        let mut needed = Vec::new();
        root_fields(
            document,
            &operation.node.selection_set.node,
            0,
            &mut |name| {
                let scope = if SOURCE_FIELDS.contains(&name) {
                    Scope::SourcesManage
                } else if WEBHOOK_FIELDS.contains(&name) {
                    Scope::WebhooksManage
                } else {
                    general
                };
                if !needed.contains(&scope) {
                    needed.push(scope);
                }
            },
        );
        if needed.is_empty() {
            needed.push(general);
        }
        for scope in needed {
            if !principal.allows(scope) {
                return Err(coded_error(
                    Code::Forbidden,
                    format!("this API key lacks the {scope} scope"),
                ));
            }
        }
    }
    Ok(())
}

/// Root fields over the tenant's webhooks: they need `webhooks:manage`.
pub const WEBHOOK_FIELDS: [&str; 6] = [
    "webhooks",
    "createWebhook",
    "updateWebhook",
    "deleteWebhook",
    "rotateWebhookSecret",
    "redeliverWebhookDelivery",
];

/// Root fields that read, change or run the tenant's sources: they need `sources:manage`
/// (and not `contacts:*`).
pub const SOURCE_FIELDS: [&str; 6] = [
    "sources",
    "source",
    "createSource",
    "updateSource",
    "deleteSource",
    "syncSource",
];

/// Calls `each` with the name of every root field of `set`, looking into fragments; past 16
/// nested fragments it reports a source field and a contact field, so that a document
/// nested that deep needs every scope its operation could touch.
fn root_fields(
    document: &ExecutableDocument,
    set: &SelectionSet,
    depth: usize,
    each: &mut impl FnMut(&str),
) {
    if depth > 16 {
        // Too deep to look into: taken to need every scope.
        for field in SOURCE_FIELDS.iter().chain(["contacts"].iter()) {
            each(field);
        }
        return;
    }
    for selection in &set.items {
        match &selection.node {
            Selection::Field(field) => each(field.node.name.node.as_str()),
            Selection::InlineFragment(fragment) => {
                root_fields(document, &fragment.node.selection_set.node, depth + 1, each);
            }
            Selection::FragmentSpread(spread) => {
                if let Some(fragment) = document.fragments.get(&spread.node.fragment_name.node) {
                    root_fields(document, &fragment.node.selection_set.node, depth + 1, each);
                }
            }
        }
    }
}
