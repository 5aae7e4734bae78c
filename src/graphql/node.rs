//! The Relay `Node` interface: every object with an id.
use async_graphql::{ID, Interface};

use super::{Account, Business, Contact, Tag};

/// An object with a globally unique id (a UUID). Fetch any of them with `node(id:)`.
// A contact is much larger than the other variants; a `Node` lives only while one
// `node(id:)` field resolves, so boxing would buy nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Interface)]
#[graphql(field(name = "id", ty = "ID", desc = "The object's id (a UUID)."))]
pub enum Node {
    /// A contact.
    Contact(Contact),
    /// An account.
    Account(Account),
    /// A business.
    Business(Business),
    /// A tag.
    Tag(Tag),
}
