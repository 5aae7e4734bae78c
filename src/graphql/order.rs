//! The sort inputs of every list (`orderBy`), as GraphQL types; each turns into its domain
//! order (`crate::paging::Direction`, `crate::contacts::ContactOrder`, …).
use async_graphql::{Enum, InputObject};

use crate::{contacts, organisations, paging, tags};

/// Direction of a sort key.
#[derive(Enum, Clone, Copy, Debug, PartialEq, Eq)]
#[graphql(name = "OrderDirection", remote = "paging::Direction")]
pub enum OrderDirection {
    /// Smallest first.
    Asc,
    /// Largest first.
    Desc,
}

/// A field contacts can be sorted by.
#[derive(Enum, Clone, Copy, Debug, PartialEq, Eq)]
#[graphql(name = "ContactOrderField", remote = "contacts::ContactOrderField")]
pub enum ContactOrderField {
    /// When the contact was created.
    CreatedAt,
    /// When the contact was last updated.
    UpdatedAt,
    /// Full name, case-insensitive ("first last").
    Name,
    /// Email address; contacts without one come first ascending, last descending.
    Email,
    /// Last message time; contacts never messaged come first ascending, last descending.
    LastMessageAt,
}

/// One sort key of a contact list.
#[derive(InputObject, Clone, Copy, Debug)]
#[graphql(name = "ContactOrder")]
pub struct ContactOrderInput {
    /// What to sort by.
    pub field: ContactOrderField,
    /// Which way.
    pub direction: OrderDirection,
}

impl From<ContactOrderInput> for contacts::ContactOrder {
    fn from(order: ContactOrderInput) -> Self {
        Self {
            field: order.field.into(),
            direction: order.direction.into(),
        }
    }
}

/// A field accounts and businesses can be sorted by.
#[derive(Enum, Clone, Copy, Debug, PartialEq, Eq)]
#[graphql(
    name = "OrganisationOrderField",
    remote = "organisations::OrganisationOrderField"
)]
pub enum OrganisationOrderField {
    /// Name (byte order).
    Name,
    /// When it was created.
    CreatedAt,
    /// When it was last updated.
    UpdatedAt,
}

/// One sort key of an account or business list.
#[derive(InputObject, Clone, Copy, Debug)]
#[graphql(name = "OrganisationOrder")]
pub struct OrganisationOrderInput {
    /// What to sort by.
    pub field: OrganisationOrderField,
    /// Which way.
    pub direction: OrderDirection,
}

impl From<OrganisationOrderInput> for organisations::OrganisationOrder {
    fn from(order: OrganisationOrderInput) -> Self {
        Self {
            field: order.field.into(),
            direction: order.direction.into(),
        }
    }
}

/// A field tags can be sorted by.
#[derive(Enum, Clone, Copy, Debug, PartialEq, Eq)]
#[graphql(name = "TagOrderField", remote = "tags::TagOrderField")]
pub enum TagOrderField {
    /// The tag's display order.
    DisplayOrder,
    /// Name (byte order).
    Name,
    /// When the tag was created.
    CreatedAt,
}

/// One sort key of a tag list.
#[derive(InputObject, Clone, Copy, Debug)]
#[graphql(name = "TagOrder")]
pub struct TagOrderInput {
    /// What to sort by.
    pub field: TagOrderField,
    /// Which way.
    pub direction: OrderDirection,
}

impl From<TagOrderInput> for tags::TagOrder {
    fn from(order: TagOrderInput) -> Self {
        Self {
            field: order.field.into(),
            direction: order.direction.into(),
        }
    }
}

/// The domain orders of an `orderBy` argument (absent: none).
pub fn orders<I: Into<D>, D>(order_by: Option<Vec<I>>) -> Vec<D> {
    order_by
        .unwrap_or_default()
        .into_iter()
        .map(Into::into)
        .collect()
}
