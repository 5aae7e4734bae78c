//! Resolving an object whose selection is plain fields without a boxed future per field.
//!
//! async-graphql resolves every field of every object as a boxed future in a
//! `FuturesUnordered` (one more allocation, an `Arc`'d task, and a wake-up each), then merges
//! each value into the object's map. For the hundreds of nodes of a nested page that was
//! the largest share of the server's CPU per request (perf, the nested accounts → contacts
//! query). [`PlainFields`] resolves such an object's fields as one `join_all` of the same
//! generated `resolve_field` the engine calls, straight into a map in selection order, and
//! leaves anything else to the engine: fragments, directives other than `@skip`/`@include`
//! (which the engine has already applied), and response keys selected twice (whose values
//! the engine merges).
//!
//! A type can go further ([`DirectFields`]): scalar fields it reads straight off its row are
//! made without a field context or a call of `resolve_field` at all.
use std::borrow::Cow;

use async_graphql::indexmap::IndexMap;
use async_graphql::parser::types::{Field, Selection};
use async_graphql::registry::Registry;
use async_graphql::resolver_utils::{ContainerType, resolve_container};
use async_graphql::{ContextSelectionSet, Name, OutputType, Positioned, ServerResult, Value};
use futures::future::join_all;

/// `T`, resolved as in the module's docs; the same GraphQL type as `T` (its name, fields and
/// descriptions are `T`'s).
#[derive(Clone, Debug)]
pub struct PlainFields<T>(pub T);

/// Fields of a GraphQL object made from its row alone: nothing to wait for, no context.
/// [`PlainFields`] takes them from here, when the query passes the field no argument and
/// selects nothing under it, instead of calling the generated `resolve_field`. So only
/// fields without arguments in the schema (a default would be skipped) and without guards
/// may be listed, and each value must be exactly what the field's resolver gives
/// (`batching::page_nodes_resolve_as_the_same_contact_looked_up_alone` and
/// `batching::direct_tag_fields_equal_the_engine_s` compare the two).
pub trait DirectFields {
    /// The value of the field named `name` (its GraphQL name), or `None` when it must go
    /// through the field's resolver.
    fn direct_field(&self, _name: &str) -> Option<Value> {
        None
    }
}

impl<T: DirectFields + ?Sized> DirectFields for &T {
    fn direct_field(&self, name: &str) -> Option<Value> {
        (**self).direct_field(name)
    }
}

/// A nullable string field's value.
pub fn text(value: Option<&str>) -> Value {
    value.map_or(Value::Null, |s| Value::String(s.to_owned()))
}

impl<T: ContainerType + DirectFields> OutputType for PlainFields<T> {
    fn type_name() -> Cow<'static, str> {
        T::type_name()
    }

    fn qualified_type_name() -> String {
        T::qualified_type_name()
    }

    fn introspection_type_name(&self) -> Cow<'static, str> {
        self.0.introspection_type_name()
    }

    fn create_type_info(registry: &mut Registry) -> String {
        T::create_type_info(registry)
    }

    async fn resolve(
        &self,
        ctx: &ContextSelectionSet<'_>,
        _field: &Positioned<Field>,
    ) -> ServerResult<Value> {
        let Some(fields) = plain_fields(ctx) else {
            return resolve_container(ctx, &self.0).await;
        };
        let values = join_all(fields.iter().map(|field| async move {
            if field.node.name.node == "__typename" {
                return Ok(Some(Value::String(
                    self.0.introspection_type_name().into_owned(),
                )));
            }
            if field.node.arguments.is_empty()
                && field.node.selection_set.node.items.is_empty()
                && let Some(value) = self.0.direct_field(&field.node.name.node)
            {
                return Ok(Some(value));
            }
            let ctx = ctx.clone();
            self.0.resolve_field(&ctx.with_field(field)).await
        }))
        .await;
        let mut object = IndexMap::with_capacity(fields.len());
        for (field, value) in fields.iter().zip(values) {
            match value {
                Ok(value) => {
                    object.insert(
                        field.node.response_key().node.clone(),
                        value.unwrap_or_default(),
                    );
                }
                // As the engine does: the error is reported and the field left out.
                Err(err) => ctx.add_error(err),
            }
        }
        Ok(if object.is_empty() {
            Value::Null
        } else {
            Value::Object(object)
        })
    }
}

/// The fields of `ctx`'s selection when it is plain: fields only, without directives (the
/// engine has removed `@skip`/`@include` by now) and each response key once; `None`
/// otherwise. (Engine extensions' per-field hooks would be skipped here: the schema installs
/// none, see `graphql/pipeline.rs`.)
fn plain_fields<'a>(ctx: &ContextSelectionSet<'a>) -> Option<Vec<&'a Positioned<Field>>> {
    let mut fields: Vec<&'a Positioned<Field>> = Vec::with_capacity(ctx.item.node.items.len());
    for selection in &ctx.item.node.items {
        let Selection::Field(field) = &selection.node else {
            return None;
        };
        let key: &Name = &field.node.response_key().node;
        if !field.node.directives.is_empty()
            || fields.iter().any(|f| &f.node.response_key().node == key)
        {
            return None;
        }
        fields.push(field);
    }
    Some(fields)
}
