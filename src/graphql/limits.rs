//! Limits for hostile queries, all checked before any SQL runs: query size, depth, cost
//! (connection sizes multiply), aliases, directives per field, and (in the HTTP layer)
//! batch size, body size and a per-request timeout. Each rejection carries a stable
//! `extensions.code`.
use std::collections::HashMap;
use std::sync::Arc;

use async_graphql::extensions::{
    Extension, ExtensionContext, ExtensionFactory, NextParseQuery, NextPrepareRequest,
    NextValidation,
};
use async_graphql::parser::types::{
    ExecutableDocument, FragmentDefinition, Selection, SelectionSet,
};
use async_graphql::{
    ErrorExtensionValues, Name, Positioned, Request, ServerError, ServerResult, ValidationResult,
    Value, Variables,
};

/// The configurable limits and their defaults (see the README's table).
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// Deepest selection nesting.
    pub max_depth: usize,
    /// Highest cost: every field costs 1, a list field costs its page size times its children.
    pub max_complexity: usize,
    /// Most aliases in one query.
    pub max_aliases: usize,
    /// Most directives on one field.
    pub max_directives_per_field: usize,
    /// Longest query text, in bytes.
    pub max_query_bytes: usize,
    /// Most operations in one batched request.
    pub max_batch: usize,
    /// Largest request body, in bytes (larger: HTTP 413).
    pub max_body_bytes: usize,
    /// Longest a request may run, in seconds.
    pub timeout_secs: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_depth: 10,
            max_complexity: 50_000,
            max_aliases: 30,
            max_directives_per_field: 5,
            max_query_bytes: 64 * 1024,
            max_batch: 10,
            max_body_bytes: 1024 * 1024,
            timeout_secs: 10,
        }
    }
}

/// The cost of a connection field: its page size (default 20) times the cost of what is
/// selected in it, so a `first: 100` inside a `first: 100` costs 10,000 times its leaves.
pub fn page_cost(first: Option<i32>, last: Option<i32>, child_complexity: usize) -> usize {
    let size = first.or(last).unwrap_or(20).clamp(1, 100) as usize;
    size.saturating_mul(child_complexity).saturating_add(1)
}

/// A GraphQL error with `extensions.code`.
pub fn coded_error(code: &str, message: impl Into<String>) -> ServerError {
    let mut error = ServerError::new(message, None);
    let mut extensions = ErrorExtensionValues::default();
    extensions.set("code", Value::from(code));
    error.extensions = Some(extensions);
    error
}

/// The extension that enforces the query limits of [`Limits`].
pub struct QueryLimits(pub Limits);

impl ExtensionFactory for QueryLimits {
    fn create(&self) -> Arc<dyn Extension> {
        Arc::new(QueryLimitsExtension(self.0))
    }
}

struct QueryLimitsExtension(Limits);

#[async_graphql::async_trait::async_trait]
impl Extension for QueryLimitsExtension {
    async fn prepare_request(
        &self,
        ctx: &ExtensionContext<'_>,
        request: Request,
        next: NextPrepareRequest<'_>,
    ) -> ServerResult<Request> {
        if request.query.len() > self.0.max_query_bytes {
            return Err(coded_error(
                "QUERY_TOO_LARGE",
                format!("the query is longer than {} bytes", self.0.max_query_bytes),
            ));
        }
        next.run(ctx, request).await
    }

    async fn parse_query(
        &self,
        ctx: &ExtensionContext<'_>,
        query: &str,
        variables: &Variables,
        next: NextParseQuery<'_>,
    ) -> ServerResult<ExecutableDocument> {
        let document = next.run(ctx, query, variables).await.map_err(|error| {
            if error.message.contains("recursion") {
                coded_error("QUERY_TOO_DEEP", too_deep(&self.0))
            } else if error.message.contains("number of directives") {
                coded_error(
                    "TOO_MANY_DIRECTIVES",
                    format!(
                        "a field has more than {} directives",
                        self.0.max_directives_per_field
                    ),
                )
            } else {
                with_code(error, "GRAPHQL_PARSE_FAILED")
            }
        })?;
        for (_, operation) in document.operations.iter() {
            let set = &operation.node.selection_set.node;
            let limit = if is_introspection(set) {
                self.0.max_depth.max(INTROSPECTION_MAX_DEPTH)
            } else {
                self.0.max_depth
            };
            if depth(set, &document.fragments, &mut Vec::new(), limit) > limit {
                return Err(coded_error("QUERY_TOO_DEEP", too_deep(&self.0)));
            }
        }
        let mut count = Counts::default();
        for (_, operation) in document.operations.iter() {
            count.selection_set(&operation.node.selection_set.node);
        }
        for fragment in document.fragments.values() {
            count.selection_set(&fragment.node.selection_set.node);
        }
        if count.aliases > self.0.max_aliases {
            return Err(coded_error(
                "TOO_MANY_ALIASES",
                format!(
                    "the query has {} aliases; at most {} are allowed",
                    count.aliases, self.0.max_aliases
                ),
            ));
        }
        if count.max_directives > self.0.max_directives_per_field {
            return Err(coded_error(
                "TOO_MANY_DIRECTIVES",
                format!(
                    "a field has {} directives; at most {} are allowed",
                    count.max_directives, self.0.max_directives_per_field
                ),
            ));
        }
        Ok(document)
    }

    async fn validation(
        &self,
        ctx: &ExtensionContext<'_>,
        next: NextValidation<'_>,
    ) -> Result<ValidationResult, Vec<ServerError>> {
        let limits = self.0;
        next.run(ctx).await.map_err(|errors| {
            errors
                .into_iter()
                .map(|error| match error.message.as_str() {
                    "Query is too complex." => coded_error(
                        "QUERY_TOO_COMPLEX",
                        format!(
                            "the query costs more than {}: ask for smaller pages or fewer nested lists",
                            limits.max_complexity
                        ),
                    ),
                    "Query is nested too deep." => coded_error("QUERY_TOO_DEEP", too_deep(&limits)),
                    message if message.contains("recursion") => {
                        coded_error("QUERY_TOO_DEEP", too_deep(&limits))
                    }
                    _ => with_code(error, "GRAPHQL_VALIDATION_FAILED"),
                })
                .collect()
        })
    }
}

fn too_deep(limits: &Limits) -> String {
    format!(
        "the query is nested deeper than {} levels (or its fragments spread each other)",
        limits.max_depth
    )
}

/// How deep an operation that only asks for `__schema`/`__type`/`__typename` may nest: the
/// standard introspection query of GraphiQL and graphql-js needs 15 levels.
pub const INTROSPECTION_MAX_DEPTH: usize = 15;

/// Whether every root field of `set` is an introspection field.
fn is_introspection(set: &SelectionSet) -> bool {
    set.items.iter().all(|item| match &item.node {
        Selection::Field(field) => field.node.name.node.starts_with("__"),
        _ => false,
    })
}

/// The depth of `set` counted as async-graphql does (each field one level, fragments inlined),
/// giving up past `limit`; a fragment that spreads itself counts as too deep.
fn depth<'a>(
    set: &'a SelectionSet,
    fragments: &'a HashMap<Name, Positioned<FragmentDefinition>>,
    visiting: &mut Vec<&'a str>,
    limit: usize,
) -> usize {
    let mut deepest = 0;
    for item in &set.items {
        let level = match &item.node {
            Selection::Field(field) => {
                if limit == 0 {
                    return 1;
                }
                1 + depth(
                    &field.node.selection_set.node,
                    fragments,
                    visiting,
                    limit - 1,
                )
            }
            Selection::InlineFragment(fragment) => depth(
                &fragment.node.selection_set.node,
                fragments,
                visiting,
                limit,
            ),
            Selection::FragmentSpread(spread) => {
                let name = spread.node.fragment_name.node.as_str();
                if visiting.contains(&name) {
                    return limit + 1;
                }
                match fragments.get(name) {
                    Some(fragment) => {
                        visiting.push(name);
                        let d = depth(
                            &fragment.node.selection_set.node,
                            fragments,
                            visiting,
                            limit,
                        );
                        visiting.pop();
                        d
                    }
                    None => 0,
                }
            }
        };
        deepest = deepest.max(level);
        if deepest > limit {
            break;
        }
    }
    deepest
}

/// `error` with `extensions.code` set to `code`, unless it already has one.
fn with_code(mut error: ServerError, code: &str) -> ServerError {
    let extensions = error.extensions.get_or_insert_with(Default::default);
    if extensions.get("code").is_none() {
        extensions.set("code", Value::from(code));
    }
    error
}

/// Aliases and directives in a document's selection sets (fragments counted once each).
#[derive(Default)]
struct Counts {
    aliases: usize,
    max_directives: usize,
}

impl Counts {
    fn selection_set(&mut self, set: &SelectionSet) {
        for item in &set.items {
            match &item.node {
                Selection::Field(field) => {
                    let field = &field.node;
                    if field.alias.is_some() {
                        self.aliases += 1;
                    }
                    self.max_directives = self.max_directives.max(field.directives.len());
                    self.selection_set(&field.selection_set.node);
                }
                Selection::InlineFragment(fragment) => {
                    let fragment = &fragment.node;
                    self.max_directives = self.max_directives.max(fragment.directives.len());
                    self.selection_set(&fragment.selection_set.node);
                }
                Selection::FragmentSpread(spread) => {
                    self.max_directives = self.max_directives.max(spread.node.directives.len());
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nested_pages_multiply() {
        assert_eq!(
            page_cost(Some(100), None, page_cost(Some(100), None, 1)),
            100 * 101 + 1
        );
        assert_eq!(page_cost(None, None, 1), 21);
        assert_eq!(page_cost(Some(0), None, 5), 6);
    }
}
