//! Limits for hostile queries, all checked before any SQL runs: query size, depth, cost
//! (connection sizes multiply), aliases, directives per field, and (in the HTTP layer)
//! batch size, body size and a per-request timeout. Each rejection carries a stable
//! `extensions.code`. Plain functions over the text and the parsed document, called once
//! per request by [`super::pipeline`].
use crate::code::Code;
use std::collections::HashMap;

use async_graphql::parser::types::{
    DocumentOperations, ExecutableDocument, FragmentDefinition, OperationDefinition, Selection,
    SelectionSet,
};
use async_graphql::{
    ErrorExtensionValues, Name, Positioned, ServerError, ServerResult, Value, Variables,
};

use super::filter::ContactFilterInput;
use super::{error_codes, input_checks};
use crate::config::Limits;
use crate::contacts::ContactFilter;
use crate::error::FieldFailure;

/// The cost of a connection field: its page size (default 20) times the cost of what is
/// selected in it, so a `first: 100` inside a `first: 100` costs 10,000 times its leaves.
pub fn page_cost(first: Option<i32>, last: Option<i32>, child_complexity: usize) -> usize {
    let size = first.or(last).unwrap_or(20).clamp(1, 100) as usize;
    size.saturating_mul(child_complexity).saturating_add(1)
}

/// What one condition of a contact filter adds to the cost: each becomes a term or a
/// subquery of the statement, run once per parent when the connection is nested, so an
/// `or:` of 250 `{ tag }` branches (500 conditions: each branch and its `tag`) alone reaches
/// the default limit of 50,000.
pub const FILTER_CONDITION_COST: usize = 100;

/// The cost of a contact filter: [`FILTER_CONDITION_COST`] per condition.
pub fn filter_cost(filter: Option<&ContactFilterInput>) -> usize {
    filter.map_or(0, |f| {
        ContactFilter::from(f.clone())
            .conditions()
            .saturating_mul(FILTER_CONDITION_COST)
    })
}

/// A GraphQL error with `extensions.code`.
pub fn coded_error(code: Code, message: impl Into<String>) -> ServerError {
    let mut error = ServerError::new(message, None);
    let mut extensions = ErrorExtensionValues::default();
    extensions.set("code", Value::from(code.as_str()));
    error.extensions = Some(extensions);
    error
}

/// How deep the query text's brackets may nest: the deepest selection, its arguments'
/// parentheses, the deepest input value, and room for inline fragments (which add braces
/// but no depth). Capped so that the parser's recursion stays far from the stack's end
/// whatever the flags say.
fn text_nesting_limit(limits: &Limits) -> usize {
    (limits.max_depth.max(INTROSPECTION_MAX_DEPTH) + limits.max_input_depth + 10).min(256)
}

/// The checks on a query's text, made before it is parsed: its length and its bracket
/// nesting.
///
/// # Errors
/// `QUERY_TOO_LARGE` past `limits.max_query_bytes`, `QUERY_TOO_DEEP` for brackets nested
/// deeper than the depth limits allow.
fn check_query_text(query: &str, limits: &Limits) -> ServerResult<()> {
    if query.len() > limits.max_query_bytes {
        return Err(coded_error(
            Code::QueryTooLarge,
            format!("the query is longer than {} bytes", limits.max_query_bytes),
        ));
    }
    let limit = text_nesting_limit(limits);
    if input_checks::bracket_depth(query, limit) > limit {
        return Err(coded_error(Code::QueryTooDeep, too_deep_input(limits)));
    }
    Ok(())
}

/// Parses `query` after [`check_query_text`].
///
/// # Errors
/// Those of [`check_query_text`]; `QUERY_TOO_DEEP` when the parser's recursion limit is
/// reached; `GRAPHQL_PARSE_FAILED` for any other syntax error.
pub fn parse(query: &str, limits: &Limits) -> ServerResult<ExecutableDocument> {
    check_query_text(query, limits)?;
    async_graphql::parser::parse_query(query).map_err(|error| {
        let error = ServerError::from(error);
        match error_codes::engine_code(&error.message) {
            Some(Code::QueryTooDeep) => coded_error(Code::QueryTooDeep, too_deep(limits)),
            _ => with_code(error, Code::GraphqlParseFailed),
        }
    })
}

/// The limits a parsed document must keep, checked before any validation or SQL: depth
/// (introspection may nest to [`INTROSPECTION_MAX_DEPTH`]), aliases, directives per field,
/// input nesting, no NUL in strings, every required variable given. Then it drops the
/// arguments whose variable is absent, so that they take their defaults.
///
/// # Errors
/// `QUERY_TOO_DEEP`, `TOO_MANY_ALIASES`, `TOO_MANY_DIRECTIVES`, `VALIDATION_FAILED` (NUL,
/// with every failing field), `GRAPHQL_VALIDATION_FAILED` (a required variable missing).
pub fn check_document(
    document: &mut ExecutableDocument,
    variables: &Variables,
    operation_name: Option<&str>,
    limits: &Limits,
) -> ServerResult<()> {
    for (_, operation) in document.operations.iter() {
        let set = &operation.node.selection_set.node;
        let limit = if is_introspection(set) {
            limits.max_depth.max(INTROSPECTION_MAX_DEPTH)
        } else {
            limits.max_depth
        };
        if depth(set, &document.fragments, &mut Vec::new(), limit) > limit {
            return Err(coded_error(Code::QueryTooDeep, too_deep(limits)));
        }
    }
    let mut count = Counts::default();
    for (_, operation) in document.operations.iter() {
        count.selection_set(&operation.node.selection_set.node);
    }
    for fragment in document.fragments.values() {
        count.selection_set(&fragment.node.selection_set.node);
    }
    if count.aliases > limits.max_aliases {
        return Err(coded_error(
            Code::TooManyAliases,
            format!(
                "the query has {} aliases; at most {} are allowed",
                count.aliases, limits.max_aliases
            ),
        ));
    }
    if count.max_directives > limits.max_directives_per_field {
        return Err(too_many_directives(count.max_directives, limits));
    }
    if input_checks::input_too_deep(document, variables, limits.max_input_depth) {
        return Err(coded_error(Code::QueryTooDeep, too_deep_input(limits)));
    }
    let nul = input_checks::nul_failures(document, variables);
    if !nul.is_empty() {
        return Err(validation_error(nul));
    }
    if let Some(operation) = selected_operation(document, operation_name) {
        let missing = input_checks::missing_required_variables(operation, variables);
        if !missing.is_empty() {
            return Err(coded_error(
                Code::GraphqlValidationFailed,
                format!(
                    "required variables were not provided: {}",
                    missing.join(", ")
                ),
            ));
        }
    }
    input_checks::drop_absent_variables(document, variables);
    Ok(())
}

/// The operation a request runs: the one named, or the document's only one.
pub fn selected_operation<'a>(
    document: &'a ExecutableDocument,
    name: Option<&str>,
) -> Option<&'a OperationDefinition> {
    match (&document.operations, name) {
        (DocumentOperations::Single(op), _) => Some(&op.node),
        (DocumentOperations::Multiple(ops), Some(name)) => ops.get(name).map(|op| &op.node),
        (DocumentOperations::Multiple(ops), None) if ops.len() == 1 => {
            ops.values().next().map(|op| &op.node)
        }
        (DocumentOperations::Multiple(_), None) => None,
    }
}

/// A request error that async-graphql raised itself while validating (it has no code yet),
/// with our code and wording: `QUERY_TOO_COMPLEX`, `QUERY_TOO_DEEP`, `TOO_MANY_DIRECTIVES`,
/// else `GRAPHQL_VALIDATION_FAILED`.
pub fn code_request_error(error: ServerError, limits: &Limits) -> ServerError {
    match error_codes::engine_code(&error.message) {
        Some(Code::QueryTooComplex) => coded_error(
            Code::QueryTooComplex,
            format!(
                "the query costs more than {}: ask for smaller pages or fewer nested lists",
                limits.max_complexity
            ),
        ),
        Some(Code::QueryTooDeep) => coded_error(Code::QueryTooDeep, too_deep(limits)),
        Some(Code::TooManyDirectives) => coded_error(
            Code::TooManyDirectives,
            format!(
                "a field has more than {} directives",
                limits.max_directives_per_field
            ),
        ),
        _ => with_code(error, Code::GraphqlValidationFailed),
    }
}

fn too_many_directives(found: usize, limits: &Limits) -> ServerError {
    coded_error(
        Code::TooManyDirectives,
        format!(
            "a field has {found} directives; at most {} are allowed",
            limits.max_directives_per_field
        ),
    )
}

fn too_deep_input(limits: &Limits) -> String {
    format!(
        "an input value nests objects and lists deeper than {} levels",
        limits.max_input_depth
    )
}

/// A request-level `VALIDATION_FAILED` listing `failures` (as the domain's errors do).
fn validation_error(failures: Vec<FieldFailure>) -> ServerError {
    let mut error = async_graphql::Error::from(crate::error::Error::Validation(failures))
        .into_server_error(Default::default());
    error.locations.clear();
    error
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
fn with_code(mut error: ServerError, code: Code) -> ServerError {
    let extensions = error.extensions.get_or_insert_with(Default::default);
    if extensions.get("code").is_none() {
        extensions.set("code", Value::from(code.as_str()));
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

    #[test]
    fn filter_conditions_count_through_nesting_and_lists() {
        let tag = |name: &str| ContactFilter {
            tag: Some(name.to_string()),
            ..Default::default()
        };
        let filter = ContactFilter {
            status: Some("open".into()),
            tags_any: Some(vec!["a".into(), "b".into(), "c".into()]),
            or: Some(vec![tag("x"), tag("y")]),
            not: Some(Box::new(tag("z"))),
            ..Default::default()
        };
        // status 1, tagsAny 3, or: 2 × (branch 1 + tag 1), not: 1 + tag 1.
        assert_eq!(filter.conditions(), 1 + 3 + 4 + 2);
        let input = ContactFilterInput {
            status: Some("open".into()),
            or: Some(vec![ContactFilterInput {
                tag: Some("x".into()),
                ..Default::default()
            }]),
            ..Default::default()
        };
        // status 1, or: 1 × (branch 1 + tag 1).
        assert_eq!(filter_cost(Some(&input)), 3 * FILTER_CONDITION_COST);
        assert_eq!(filter_cost(None), 0);
    }
}
