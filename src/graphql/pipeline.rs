//! One GraphQL operation's way through the server, around async-graphql's execution:
//!
//! 1. the checks on the text, then one parse ([`limits::parse`]);
//! 2. the scopes the operation needs ([`scopes::check`]);
//! 3. the query limits on the document ([`limits::check_document`]) and the choice of the
//!    operation to run;
//! 4. async-graphql validates the parsed document (cost, and the engine's own limits) and
//!    executes it;
//! 5. request errors get their codes, and the data its selection order ([`Shape`]).
//!
//! Steps 1–3 and 5 run once per request, not per field: the schema has no async-graphql
//! extensions, so the engine resolves every field on its fast path, without hooks. The
//! HTTP handler and the subscription hubs both go through here.
use std::sync::Arc;

use async_graphql::parser::types::{
    DocumentOperations, ExecutableDocument, OperationType, Selection, SelectionSet,
};
use async_graphql::{Response, ServerResult, Value, Variables};

use super::field_order::Shape;
use super::limits::{self, coded_error};
use super::{error_codes, scopes};
use crate::auth::Principal;
use crate::code::Code;
use crate::config::Limits;

/// A request's document, parsed; the checks are still to be made.
pub struct Parsed(ExecutableDocument);

impl Parsed {
    /// Checks `query`'s text and parses it.
    ///
    /// # Errors
    /// `QUERY_TOO_LARGE`, `QUERY_TOO_DEEP`, `GRAPHQL_PARSE_FAILED` (see [`limits::parse`]).
    pub fn parse(query: &str, limits: &Limits) -> ServerResult<Self> {
        limits::parse(query, limits).map(Self)
    }

    /// The name of the document's only operation, if it has a name (for logs and metrics
    /// when the request names none).
    pub fn only_operation_name(&self) -> Option<&str> {
        match &self.0.operations {
            DocumentOperations::Multiple(ops) if ops.len() == 1 => {
                ops.keys().next().map(|name| name.as_str())
            }
            _ => None,
        }
    }

    /// Refuses what does not run as a subscription: a query or a mutation (they go to
    /// `POST /graphql`), or a subscription with more than one root field (the GraphQL
    /// spec's "Single root field" rule, which async-graphql does not check). A document
    /// without the operation asked for is left to [`Parsed::prepare`] to report.
    ///
    /// # Errors
    /// `BAD_REQUEST` for a query or mutation; `GRAPHQL_VALIDATION_FAILED` for several root
    /// fields.
    pub fn check_subscription(&self, operation_name: Option<&str>) -> ServerResult<()> {
        let Some(operation) = limits::selected_operation(&self.0, operation_name) else {
            return Ok(());
        };
        if operation.ty != OperationType::Subscription {
            return Err(coded_error(
                Code::BadRequest,
                "only subscriptions run over WebSocket; send queries and mutations to POST /graphql",
            ));
        }
        if root_fields(&self.0, &operation.selection_set.node, 0) > 1 {
            return Err(coded_error(
                Code::GraphqlValidationFailed,
                "a subscription must select only one top level field",
            ));
        }
        Ok(())
    }

    /// Makes the checks for `principal`, and picks the operation named `operation_name` (or
    /// the only one).
    ///
    /// # Errors
    /// `FORBIDDEN` ([`scopes::check`]); the limits' codes ([`limits::check_document`]);
    /// `GRAPHQL_VALIDATION_FAILED` when no operation has that name, or none is named in a
    /// document of several.
    pub fn prepare(
        self,
        variables: &Variables,
        operation_name: Option<&str>,
        principal: &Principal,
        limits: &Limits,
    ) -> ServerResult<Prepared> {
        let mut document = self.0;
        scopes::check(&document, principal)?;
        limits::check_document(&mut document, variables, operation_name, limits)?;
        let Some(operation) = limits::selected_operation(&document, operation_name) else {
            let message = match operation_name {
                Some(name) => format!("the document has no operation named \"{name}\""),
                None => {
                    "the document has several operations: name one in `operationName`".to_string()
                }
            };
            return Err(coded_error(Code::GraphqlValidationFailed, message));
        };
        let kind = operation.ty;
        let shape = Arc::new(Shape::of_operation(operation, &document.fragments));
        Ok(Prepared {
            document,
            kind,
            shape,
        })
    }
}

/// A request that passed the checks, ready for `Request::set_parsed_query`.
pub struct Prepared {
    /// The document, arguments whose variable is absent removed (they take their defaults).
    pub document: ExecutableDocument,
    /// What the chosen operation is.
    pub kind: OperationType,
    /// Its result's keys in selection order.
    pub shape: Arc<Shape>,
}

/// The fields selected at the root of `set`, through fragments (at most 10 deep; deeper
/// nesting is the depth limit's to refuse).
fn root_fields(document: &ExecutableDocument, set: &SelectionSet, depth: usize) -> usize {
    if depth > 10 {
        return 0;
    }
    set.items
        .iter()
        .map(|item| match &item.node {
            Selection::Field(_) => 1,
            Selection::InlineFragment(fragment) => {
                root_fields(document, &fragment.node.selection_set.node, depth + 1)
            }
            Selection::FragmentSpread(spread) => document
                .fragments
                .get(&spread.node.fragment_name.node)
                .map_or(0, |f| {
                    root_fields(document, &f.node.selection_set.node, depth + 1)
                }),
        })
        .sum()
}

/// Finishes a response of an operation whose result has `shape`: errors that async-graphql
/// raised outside any field before executing (validation) get our codes and wording, any
/// other error without a code gets one ([`error_codes::ensure_codes`]), and the data is put
/// in selection order.
pub fn finish(response: &mut Response, shape: &Shape, limits: &Limits) {
    if response.data == Value::Null {
        for error in &mut response.errors {
            let coded = error
                .extensions
                .as_ref()
                .is_some_and(|extensions| extensions.get("code").is_some());
            if error.path.is_empty() && !coded {
                let raised = std::mem::replace(error, async_graphql::ServerError::new("", None));
                *error = limits::code_request_error(raised, limits);
            }
        }
    } else {
        shape.apply(&mut response.data);
    }
    error_codes::ensure_codes(&mut response.errors);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::Scope;
    use crate::tenancy::TenantId;

    fn reader() -> Principal {
        Principal {
            tenant: TenantId(uuid::Uuid::nil()),
            key_id: uuid::Uuid::nil(),
            scopes: vec![Scope::ContactsRead],
        }
    }

    fn code(error: &async_graphql::ServerError) -> Option<Value> {
        error
            .extensions
            .as_ref()
            .and_then(|e| e.get("code"))
            .cloned()
    }

    #[test]
    fn an_operation_is_chosen_by_name_or_as_the_only_one() {
        let limits = Limits::default();
        let two = "query A { contacts { totalCount } } query B { contacts { totalCount } }";
        let prepared = Parsed::parse(two, &limits)
            .and_then(|p| p.prepare(&Variables::default(), Some("B"), &reader(), &limits));
        assert_eq!(prepared.map(|p| p.kind).ok(), Some(OperationType::Query));
        for name in [None, Some("C")] {
            let refused = Parsed::parse(two, &limits)
                .and_then(|p| p.prepare(&Variables::default(), name, &reader(), &limits))
                .err();
            assert_eq!(
                refused.as_ref().and_then(code),
                Some(Value::from("GRAPHQL_VALIDATION_FAILED")),
                "{name:?}"
            );
        }
    }

    #[test]
    fn scopes_are_checked_before_the_limits() {
        let limits = Limits {
            max_aliases: 0,
            ..Limits::default()
        };
        let refused = Parsed::parse("mutation { a: deleteContact(id: \"x\") }", &limits)
            .and_then(|p| p.prepare(&Variables::default(), None, &reader(), &limits))
            .err();
        assert_eq!(
            refused.as_ref().and_then(code),
            Some(Value::from("FORBIDDEN"))
        );
    }

    #[test]
    fn only_subscriptions_of_one_root_field_run_as_subscriptions() {
        let limits = Limits::default();
        let check = |query: &str, name: Option<&str>| {
            Parsed::parse(query, &limits)
                .and_then(|p| p.check_subscription(name))
                .err()
                .as_ref()
                .and_then(code)
        };
        assert_eq!(
            check("{ contacts { totalCount } }", None),
            Some(Value::from("BAD_REQUEST"))
        );
        assert!(check("mutation { x }", None).is_some());
        assert_eq!(
            check("subscription { contactChanged { kind } }", None),
            None
        );
        let two = "query A { x } subscription B { contactChanged { kind } }";
        assert!(check(two, Some("A")).is_some());
        assert_eq!(check(two, Some("B")), None);
        // The spec's single root field, through fragments too.
        let twice = "subscription { a: contactChanged { kind } b: contactChanged { kind } }";
        assert_eq!(
            check(twice, None),
            Some(Value::from("GRAPHQL_VALIDATION_FAILED"))
        );
        let spread = "subscription { ...F contactChanged { kind } } fragment F on SubscriptionRoot { contactChanged { at } }";
        assert!(check(spread, None).is_some());
    }

    #[test]
    fn validation_errors_get_codes_and_data_its_order() {
        let limits = Limits::default();
        let mut refused = Response::from_errors(vec![
            async_graphql::ServerError::new("Query is too complex.", None),
            async_graphql::ServerError::new("Unknown field \"x\" on type \"Query\".", None),
        ]);
        let shape = Shape::default();
        finish(&mut refused, &shape, &limits);
        let codes: Vec<_> = refused.errors.iter().map(code).collect();
        assert_eq!(
            codes,
            vec![
                Some(Value::from("QUERY_TOO_COMPLEX")),
                Some(Value::from("GRAPHQL_VALIDATION_FAILED"))
            ]
        );

        let prepared = Parsed::parse("{ b: __typename a: __typename }", &limits)
            .and_then(|p| p.prepare(&Variables::default(), None, &reader(), &limits))
            .map_err(|e| e.message);
        let Ok(prepared) = prepared else {
            panic!("{prepared:?}", prepared = prepared.err());
        };
        let mut response = Response::new(async_graphql::value!({ "a": "Query", "b": "Query" }));
        finish(&mut response, &prepared.shape, &limits);
        assert_eq!(
            serde_json::to_string(&response.data).ok().as_deref(),
            Some(r#"{"b":"Query","a":"Query"}"#)
        );
    }
}
