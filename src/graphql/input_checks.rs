//! Checks on a request's input values, made before anything recursive runs on them:
//!
//! - **Nesting**: the query text's bracket nesting is bounded before it is parsed (the
//!   parser recurses on nested values and has no limit of its own), and every input value
//!   (argument literals, variable defaults, the `variables` JSON) may nest at most
//!   `max_input_depth` objects and lists. Past either: `QUERY_TOO_DEEP`.
//! - **NUL**: no string input may contain U+0000 (PostgreSQL cannot store it, SQLite's FTS5
//!   misreads it): `VALIDATION_FAILED` naming every such value.
//! - **Variables** (GraphQL spec, "Coercing Variable Values" and "Coercing Input Objects"):
//!   a required variable (`ID!` without a default) that is not provided is a request error
//!   (`GRAPHQL_VALIDATION_FAILED`); an argument or input-object field whose variable is not
//!   provided (and has no default) is absent, not null, so a patch keeps that field.
use std::collections::{HashMap, HashSet};

use async_graphql::parser::types::{
    DocumentOperations, ExecutableDocument, OperationDefinition, Selection, SelectionSet,
};
use async_graphql::{Name, Variables};
use async_graphql_value::{ConstValue, Value};

use crate::error::FieldFailure;

/// Bracket nesting (`{`, `[`, `(`) of a GraphQL document's text, ignoring strings, block
/// strings and comments; counting stops once it passes `stop_at`.
pub fn bracket_depth(query: &str, stop_at: usize) -> usize {
    let bytes = query.as_bytes();
    let (mut depth, mut deepest, mut i) = (0usize, 0usize, 0usize);
    while i < bytes.len() {
        match bytes[i] {
            b'#' => {
                while i < bytes.len() && bytes[i] != b'\n' && bytes[i] != b'\r' {
                    i += 1;
                }
            }
            b'"' if bytes[i..].starts_with(b"\"\"\"") => {
                i += 3;
                while i < bytes.len() && !bytes[i..].starts_with(b"\"\"\"") {
                    // `\"""` is an escaped triple quote inside a block string.
                    i += if bytes[i..].starts_with(b"\\\"\"\"") {
                        4
                    } else {
                        1
                    };
                }
                i += 2;
            }
            b'"' => {
                i += 1;
                while i < bytes.len() && bytes[i] != b'"' && bytes[i] != b'\n' {
                    i += if bytes[i] == b'\\' { 2 } else { 1 };
                }
            }
            b'{' | b'[' | b'(' => {
                depth += 1;
                deepest = deepest.max(depth);
                if deepest > stop_at {
                    return deepest;
                }
            }
            b'}' | b']' | b')' => depth = depth.saturating_sub(1),
            _ => {}
        }
        i += 1;
    }
    deepest
}

/// An input value as the checks see it, with variables (a literal in the document) or
/// without (`variables`, defaults): its text, or its list items and object fields.
pub trait InputNode {
    /// The string, if it is one.
    fn text(&self) -> Option<&str>;
    /// List items or object fields with their path segments; `None` for a scalar.
    fn children(&self) -> Option<Vec<(Segment<'_>, &Self)>>;
}

/// A step of a path into an input value.
pub enum Segment<'a> {
    /// A list item.
    Index(usize),
    /// An object field.
    Field(&'a Name),
}

impl std::fmt::Display for Segment<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Segment::Index(i) => write!(f, "[{i}]"),
            Segment::Field(name) => write!(f, ".{name}"),
        }
    }
}

impl InputNode for Value {
    fn text(&self) -> Option<&str> {
        match self {
            Value::String(s) => Some(s),
            _ => None,
        }
    }

    fn children(&self) -> Option<Vec<(Segment<'_>, &Self)>> {
        match self {
            Value::List(items) => Some(
                items
                    .iter()
                    .enumerate()
                    .map(|(i, v)| (Segment::Index(i), v))
                    .collect(),
            ),
            Value::Object(fields) => {
                Some(fields.iter().map(|(k, v)| (Segment::Field(k), v)).collect())
            }
            _ => None,
        }
    }
}

impl InputNode for ConstValue {
    fn text(&self) -> Option<&str> {
        match self {
            ConstValue::String(s) => Some(s),
            _ => None,
        }
    }

    fn children(&self) -> Option<Vec<(Segment<'_>, &Self)>> {
        match self {
            ConstValue::List(items) => Some(
                items
                    .iter()
                    .enumerate()
                    .map(|(i, v)| (Segment::Index(i), v))
                    .collect(),
            ),
            ConstValue::Object(fields) => {
                Some(fields.iter().map(|(k, v)| (Segment::Field(k), v)).collect())
            }
            _ => None,
        }
    }
}

/// Whether `value` nests objects and lists deeper than `limit` (a scalar is depth 0, `[1]`
/// and `{a: 1}` depth 1). Recursion stops at `limit`, so any value is safe to check.
pub fn deeper_than<V: InputNode>(value: &V, limit: usize) -> bool {
    match value.children() {
        None => false,
        Some(_) if limit == 0 => true,
        Some(children) => children
            .iter()
            .any(|(_, child)| deeper_than(*child, limit - 1)),
    }
}

/// Every input value of a document: field and directive arguments, in operations and
/// fragments, with a path for messages (`contacts.filter`), and variable defaults.
fn for_each_argument<'a>(document: &'a ExecutableDocument, f: &mut impl FnMut(String, &'a Value)) {
    for (_, operation) in document.operations.iter() {
        selection_arguments(&operation.node.selection_set.node, f);
    }
    for fragment in document.fragments.values() {
        selection_arguments(&fragment.node.selection_set.node, f);
    }
}

fn selection_arguments<'a>(set: &'a SelectionSet, f: &mut impl FnMut(String, &'a Value)) {
    for item in &set.items {
        let (directives, children) = match &item.node {
            Selection::Field(field) => {
                let field = &field.node;
                for (name, value) in &field.arguments {
                    f(format!("{}.{}", field.name.node, name.node), &value.node);
                }
                (&field.directives, Some(&field.selection_set.node))
            }
            Selection::InlineFragment(fragment) => (
                &fragment.node.directives,
                Some(&fragment.node.selection_set.node),
            ),
            Selection::FragmentSpread(spread) => (&spread.node.directives, None),
        };
        for directive in directives {
            for (name, value) in &directive.node.arguments {
                f(
                    format!("@{}.{}", directive.node.name.node, name.node),
                    &value.node,
                );
            }
        }
        if let Some(children) = children {
            selection_arguments(children, f);
        }
    }
}

/// Whether any input value of the request nests deeper than `limit`.
pub fn input_too_deep(document: &ExecutableDocument, variables: &Variables, limit: usize) -> bool {
    let mut too_deep = variables.values().any(|value| deeper_than(value, limit));
    for_each_argument(document, &mut |_, value| {
        too_deep = too_deep || deeper_than(value, limit);
    });
    too_deep
        || operations(document).any(|operation| {
            operation.variable_definitions.iter().any(|definition| {
                definition
                    .node
                    .default_value
                    .as_ref()
                    .is_some_and(|value| deeper_than(&value.node, limit))
            })
        })
}

fn operations(document: &ExecutableDocument) -> impl Iterator<Item = &OperationDefinition> {
    document.operations.iter().map(|(_, op)| &op.node)
}

/// Every string input (in `variables` or the document) that contains U+0000, by path:
/// `$name.field[0]` for variables, `field.argument.field` for literals.
pub fn nul_failures(document: &ExecutableDocument, variables: &Variables) -> Vec<FieldFailure> {
    let mut failures = Vec::new();
    for (name, value) in variables.iter() {
        nuls(value, format!("${name}"), &mut failures);
    }
    for_each_argument(document, &mut |path, value| {
        nuls(value, path, &mut failures)
    });
    failures
}

const NUL_MESSAGE: &str = "must not contain the NUL character (U+0000)";

/// Whether any string in `value` holds a NUL (checked before any path is built).
fn has_nul<V: InputNode>(value: &V) -> bool {
    match (value.text(), value.children()) {
        (Some(text), _) => text.contains('\0'),
        (None, Some(children)) => children.iter().any(|(_, child)| has_nul(*child)),
        (None, None) => false,
    }
}

fn nuls<V: InputNode>(value: &V, path: String, failures: &mut Vec<FieldFailure>) {
    if !has_nul(value) {
        return;
    }
    if value.text().is_some_and(|s| s.contains('\0')) {
        failures.push(FieldFailure::new(path, NUL_MESSAGE));
    } else if let Some(children) = value.children() {
        for (segment, child) in children {
            nuls(child, format!("{path}{segment}"), failures);
        }
    }
}

/// The required variables (non-null type, no default) of `operation` that `variables`
/// does not provide, e.g. `$id` (type `ID!`).
pub fn missing_required_variables(
    operation: &OperationDefinition,
    variables: &Variables,
) -> Vec<String> {
    operation
        .variable_definitions
        .iter()
        .filter(|definition| {
            let definition = &definition.node;
            !definition.var_type.node.nullable
                && definition.default_value.is_none()
                && !variables.contains_key(&definition.name.node)
        })
        .map(|definition| {
            format!(
                "${} (type {})",
                definition.node.name.node, definition.node.var_type.node
            )
        })
        .collect()
}

/// Removes every argument and input-object field whose value is a variable the request
/// does not provide and that has no default, so that it reads as absent (the spec's rule)
/// instead of null (async-graphql's); the definitions of such variables that are then used
/// nowhere are removed too (a variable inside a list stays, and reads as null).
pub fn drop_absent_variables(document: &mut ExecutableDocument, variables: &Variables) {
    let mut defined_with_default = HashSet::new();
    let mut absent: HashSet<Name> = HashSet::new();
    for operation in operations(document) {
        for definition in &operation.variable_definitions {
            let definition = &definition.node;
            let name = &definition.name.node;
            if definition.default_value.is_some() {
                defined_with_default.insert(name.clone());
            } else if !variables.contains_key(name) {
                absent.insert(name.clone());
            }
        }
    }
    absent.retain(|name| !defined_with_default.contains(name));
    if absent.is_empty() {
        return;
    }
    for operation in operations_mut(document) {
        strip_selection(&mut operation.selection_set.node, &absent);
    }
    for fragment in document.fragments.values_mut() {
        strip_selection(&mut fragment.node.selection_set.node, &absent);
    }
    let mut still_used = HashMap::new();
    for_each_argument(document, &mut |_, value| {
        count_variables(value, &mut still_used)
    });
    for operation in operations_mut(document) {
        for directive in &operation.directives {
            for (_, value) in &directive.node.arguments {
                count_variables(&value.node, &mut still_used);
            }
        }
        operation.variable_definitions.retain(|definition| {
            let name = &definition.node.name.node;
            !absent.contains(name) || still_used.contains_key(name)
        });
    }
}

fn operations_mut(
    document: &mut ExecutableDocument,
) -> Box<dyn Iterator<Item = &mut OperationDefinition> + '_> {
    match &mut document.operations {
        DocumentOperations::Single(operation) => Box::new(std::iter::once(&mut operation.node)),
        DocumentOperations::Multiple(operations) => {
            Box::new(operations.values_mut().map(|operation| &mut operation.node))
        }
    }
}

fn strip_selection(set: &mut SelectionSet, absent: &HashSet<Name>) {
    for item in &mut set.items {
        match &mut item.node {
            Selection::Field(field) => {
                let field = &mut field.node;
                field
                    .arguments
                    .retain(|(_, value)| !is_absent(&value.node, absent));
                for (_, value) in &mut field.arguments {
                    strip_value(&mut value.node, absent);
                }
                strip_selection(&mut field.selection_set.node, absent);
            }
            Selection::InlineFragment(fragment) => {
                strip_selection(&mut fragment.node.selection_set.node, absent)
            }
            Selection::FragmentSpread(_) => {}
        }
    }
}

fn is_absent(value: &Value, absent: &HashSet<Name>) -> bool {
    matches!(value, Value::Variable(name) if absent.contains(name))
}

fn strip_value(value: &mut Value, absent: &HashSet<Name>) {
    match value {
        Value::Object(fields) => {
            fields.retain(|_, field| !is_absent(field, absent));
            for field in fields.values_mut() {
                strip_value(field, absent);
            }
        }
        Value::List(items) => {
            for item in items {
                strip_value(item, absent);
            }
        }
        _ => {}
    }
}

fn count_variables(value: &Value, used: &mut HashMap<Name, usize>) {
    match value {
        Value::Variable(name) => *used.entry(name.clone()).or_default() += 1,
        Value::List(items) => items.iter().for_each(|item| count_variables(item, used)),
        Value::Object(fields) => fields.values().for_each(|item| count_variables(item, used)),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use async_graphql::parser::parse_query;

    fn vars(json: serde_json::Value) -> Variables {
        Variables::from_json(json)
    }

    #[test]
    fn bracket_depth_skips_strings_and_comments() {
        assert_eq!(bracket_depth("{ a(x: [[1]]) { b } }", 100), 4);
        assert_eq!(bracket_depth(r#"{ a(s: "{{{[[[\"{") }"#, 100), 2);
        assert_eq!(bracket_depth("{ a # {{{{\n }", 100), 1);
        assert_eq!(bracket_depth(r#"{ a(s: """ {{{ \""" {{ """) }"#, 100), 2);
        // Stops counting once past the limit.
        assert_eq!(bracket_depth(&"{".repeat(10_000), 3), 4);
    }

    #[test]
    fn value_depth_counts_objects_and_lists() {
        let doc = parse_query("{ a(f: {not: {not: {x: [1]}}}) }").unwrap();
        assert!(input_too_deep(&doc, &Variables::default(), 3));
        assert!(!input_too_deep(&doc, &Variables::default(), 4));
        let nested = vars(serde_json::json!({ "f": { "and": [{ "not": {} }] } }));
        let doc = parse_query("query($f: F) { a(f: $f) }").unwrap();
        assert!(input_too_deep(&doc, &nested, 3));
        assert!(!input_too_deep(&doc, &nested, 4));
    }

    #[test]
    fn nul_characters_are_found_with_their_paths() {
        let doc = parse_query(r#"{ a(input: {names: ["ok", "b\u0000"]}) }"#).unwrap();
        let failures = nul_failures(&doc, &vars(serde_json::json!({ "n": { "x": "a\u{0}" } })));
        let fields: Vec<_> = failures.iter().map(|f| f.field.as_str()).collect();
        assert_eq!(fields, ["$n.x", "a.input.names[1]"]);
    }

    #[test]
    fn required_variables_must_be_provided() {
        let doc = parse_query("query($id: ID!, $n: Int, $d: Int! = 1) { a(id: $id) }").unwrap();
        let op = operations(&doc).next().unwrap();
        assert_eq!(
            missing_required_variables(op, &Variables::default()),
            ["$id (type ID!)"]
        );
        assert!(missing_required_variables(op, &vars(serde_json::json!({ "id": "x" }))).is_empty());
    }

    #[test]
    fn fields_of_absent_variables_are_dropped() {
        let mut doc = parse_query(
            "query($id: ID!, $a: String, $b: String, $c: String = \"c\", $l: String) {
               update(id: $id, input: {a: $a, b: $b, c: $c, list: [$l]}, extra: $b) }",
        )
        .unwrap();
        drop_absent_variables(&mut doc, &vars(serde_json::json!({ "id": "1", "a": null })));
        let op = operations(&doc).next().unwrap();
        let Selection::Field(field) = &op.selection_set.node.items[0].node else {
            panic!("a field")
        };
        let args: Vec<String> = field
            .node
            .arguments
            .iter()
            .map(|(n, v)| format!("{}: {}", n.node, v.node))
            .collect();
        // `a` was sent as null (kept), `b` was not sent (dropped), `c` has a default (kept),
        // `$l` inside a list stays (a list item reads as null).
        assert_eq!(args, ["id: $id", "input: {a: $a, c: $c, list: [$l]}"]);
        let defined: Vec<_> = op
            .variable_definitions
            .iter()
            .map(|d| d.node.name.node.to_string())
            .collect();
        assert_eq!(defined, ["id", "a", "c", "l"]);
    }
}
