//! `ContactOrder`: the orders contacts can be read in.
use entity::contact::{Column, Model};
use entity::prelude::Contact;
use sea_orm::IntoSimpleExpr;
use sea_orm::sea_query::{Expr, Func};

use crate::paging::{Direction, KeyValue, Ordering, SortKey};

/// A field contacts can be sorted by.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
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
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ContactOrder {
    /// What to sort by.
    pub field: ContactOrderField,
    /// Which way.
    pub direction: Direction,
}

/// The sort key of one order.
fn sort_key(order: &ContactOrder) -> SortKey<Model> {
    let (name, expr, value): (&'static str, Expr, fn(&Model) -> KeyValue) = match order.field {
        ContactOrderField::CreatedAt => ("CREATED_AT", Column::CreatedAt.into_simple_expr(), |m| {
            KeyValue::Int(m.created_at)
        }),
        ContactOrderField::UpdatedAt => ("UPDATED_AT", Column::UpdatedAt.into_simple_expr(), |m| {
            KeyValue::Int(m.updated_at)
        }),
        ContactOrderField::Name => ("NAME", Column::SortName.into_simple_expr(), |m| {
            KeyValue::Text(m.sort_name.clone())
        }),
        ContactOrderField::Email => (
            "EMAIL",
            Func::coalesce([Expr::col((Contact, Column::Email)), Expr::val("")]).into(),
            |m| KeyValue::Text(m.email.clone().unwrap_or_default()),
        ),
        ContactOrderField::LastMessageAt => (
            "LAST_MESSAGE_AT",
            Func::coalesce([
                Expr::col((Contact, Column::LastMessageAt)),
                Expr::val(-1i64),
            ])
            .into(),
            |m| KeyValue::Int(m.last_message_at.unwrap_or(-1)),
        ),
    };
    SortKey {
        name,
        expr,
        direction: order.direction,
        value,
        text: matches!(
            order.field,
            ContactOrderField::Name | ContactOrderField::Email
        ),
    }
}

impl ContactOrderField {
    /// The column this order's key is made of (what a page must read for its cursors).
    pub fn column(self) -> Column {
        match self {
            Self::CreatedAt => Column::CreatedAt,
            Self::UpdatedAt => Column::UpdatedAt,
            Self::Name => Column::SortName,
            Self::Email => Column::Email,
            Self::LastMessageAt => Column::LastMessageAt,
        }
    }
}

/// The total order of `orders` (default: newest first), ties broken by id.
/// A field named twice counts once, where it is first named.
pub fn ordering(orders: &[ContactOrder]) -> Ordering<Model> {
    let newest_first = ContactOrder {
        field: ContactOrderField::CreatedAt,
        direction: Direction::Desc,
    };
    Ordering::dedup(
        orders.iter().map(sort_key),
        sort_key(&newest_first),
        Column::Id.into_simple_expr(),
        |m| m.id,
    )
}
