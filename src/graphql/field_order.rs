//! Response fields in the order the query asked for them, as the GraphQL spec asks
//! ("Serialized Map Ordering"). async-graphql 7.2 collects a selection's fields as they finish
//! (a field waiting on a DataLoader comes last), so each object's keys are put back into
//! selection order after execution: the request's [`Shape`] is built once, when it is
//! prepared, and laid over every result (a subscription's too).
use std::collections::HashMap;

use async_graphql::indexmap::IndexMap;
use async_graphql::parser::types::{
    FragmentDefinition, OperationDefinition, Selection, SelectionSet,
};
use async_graphql::{Name, Positioned, Value};

/// Fragments of a document by name.
type Fragments = HashMap<Name, Positioned<FragmentDefinition>>;

/// The response keys of a selection, in order, each with the shape of its value: built once
/// per request, then laid over every object of a list.
#[derive(Debug, Default)]
pub struct Shape {
    keys: Vec<(Name, Shape)>,
}

impl Shape {
    /// The shape of `operation`'s result.
    pub fn of_operation(operation: &OperationDefinition, fragments: &Fragments) -> Self {
        Self::of(&[&operation.selection_set.node], fragments)
    }

    /// Lays this shape over `value`, a result of the selection it was built from. Objects
    /// already in order (most are: a field waits only on a DataLoader) are walked without
    /// hashing; the others are rebuilt once.
    pub fn apply(&self, value: &mut Value) {
        apply(value, self);
    }

    fn of(sets: &[&SelectionSet], fragments: &Fragments) -> Self {
        let mut keys = Vec::new();
        for set in sets {
            collect(set, fragments, &mut keys, &mut Vec::new());
        }
        Self {
            keys: keys
                .into_iter()
                .map(|(key, children)| {
                    let shape = if children.is_empty() {
                        Shape::default()
                    } else {
                        Shape::of(&children, fragments)
                    };
                    (key, shape)
                })
                .collect(),
        }
    }

    /// Whether `map`'s keys come in this shape's order (some may be absent, e.g. skipped).
    fn orders(&self, map: &IndexMap<Name, Value>) -> bool {
        let mut expected = self.keys.iter();
        map.keys().all(|key| expected.any(|(k, _)| k == key))
    }
}

fn apply(value: &mut Value, shape: &Shape) {
    if shape.keys.is_empty() {
        return;
    }
    match value {
        Value::List(items) => {
            for item in items {
                apply(item, shape);
            }
        }
        Value::Object(map) => {
            if !shape.orders(map) {
                let mut unordered = std::mem::take(map);
                for (key, _) in &shape.keys {
                    if let Some(child) = unordered.shift_remove(key) {
                        map.insert(key.clone(), child);
                    }
                }
                // Anything not found in the selection keeps its place at the end.
                map.extend(unordered);
            }
            let mut shapes = shape.keys.iter();
            for (key, child) in map.iter_mut() {
                if let Some((_, child_shape)) = shapes.find(|(k, _)| k == key) {
                    apply(child, child_shape);
                }
            }
        }
        _ => {}
    }
}

/// The response keys of `set` in order (fragments inlined), each with the selection sets
/// of its value (a key selected twice merges them).
fn collect<'a>(
    set: &'a SelectionSet,
    fragments: &'a Fragments,
    keys: &mut Vec<(Name, Vec<&'a SelectionSet>)>,
    visiting: &mut Vec<&'a str>,
) {
    for item in &set.items {
        match &item.node {
            Selection::Field(field) => {
                let key = &field.node.response_key().node;
                let children = &field.node.selection_set.node;
                let nested = !children.items.is_empty();
                match keys.iter_mut().find(|(k, _)| k == key) {
                    Some((_, sets)) if nested => sets.push(children),
                    Some(_) => {}
                    None => keys.push((key.clone(), if nested { vec![children] } else { vec![] })),
                }
            }
            Selection::InlineFragment(fragment) => {
                collect(&fragment.node.selection_set.node, fragments, keys, visiting);
            }
            Selection::FragmentSpread(spread) => {
                let name = spread.node.fragment_name.node.as_str();
                if visiting.contains(&name) {
                    continue;
                }
                if let Some(fragment) = fragments.get(name) {
                    visiting.push(name);
                    collect(&fragment.node.selection_set.node, fragments, keys, visiting);
                    visiting.pop();
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use async_graphql::value;

    #[test]
    fn keys_follow_the_selection_with_aliases_and_fragments() {
        let document = async_graphql::parser::parse_query(
            "{ b: total list { z ...F } a } fragment F on T { y x }",
        )
        .expect("parses");
        let mut data = value!({
            "a": 1,
            "list": [{ "x": 1, "y": 2, "z": 3 }, { "y": 2, "x": 1, "z": 3 }],
            "b": 2,
        });
        let op = crate::graphql::limits::selected_operation(&document, None).expect("operation");
        Shape::of_operation(op, &document.fragments).apply(&mut data);
        assert_eq!(
            data.to_string(),
            value!({
                "b": 2,
                "list": [{ "z": 3, "y": 2, "x": 1 }, { "z": 3, "y": 2, "x": 1 }],
                "a": 1,
            })
            .to_string()
        );
        let text = serde_json::to_string(&data).expect("json");
        assert_eq!(
            text,
            r#"{"b":2,"list":[{"z":3,"y":2,"x":1},{"z":3,"y":2,"x":1}],"a":1}"#
        );
    }
}
