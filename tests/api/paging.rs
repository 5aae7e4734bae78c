//! Relay paging: every order, both directions, page info, and bad arguments.
use std::cmp::Ordering;

use entity::contact;
use serde_json::{Value, json};

use crate::common::{TestApp, failing_fields, single_error, spawn_app};

const PAGE: &str = r#"query($first: Int, $after: String, $last: Int, $before: String, $orderBy: [ContactOrder!]) {
    contacts(first: $first, after: $after, last: $last, before: $before, orderBy: $orderBy) {
        totalCount
        edges { cursor node { id } }
        nodes { id }
        pageInfo { hasNextPage hasPreviousPage startCursor endCursor }
    }
}"#;

#[derive(Clone, Copy)]
enum Key {
    CreatedAt,
    UpdatedAt,
    Name,
    Email,
    LastMessageAt,
}

fn compare_key(key: Key, a: &contact::Model, b: &contact::Model) -> Ordering {
    match key {
        Key::CreatedAt => a.created_at.cmp(&b.created_at),
        Key::UpdatedAt => a.updated_at.cmp(&b.updated_at),
        Key::Name => a.sort_name.as_bytes().cmp(b.sort_name.as_bytes()),
        Key::Email => a
            .email
            .clone()
            .unwrap_or_default()
            .as_bytes()
            .cmp(b.email.clone().unwrap_or_default().as_bytes()),
        Key::LastMessageAt => a
            .last_message_at
            .unwrap_or(-1)
            .cmp(&b.last_message_at.unwrap_or(-1)),
    }
}

fn field_name(key: Key) -> &'static str {
    match key {
        Key::CreatedAt => "CREATED_AT",
        Key::UpdatedAt => "UPDATED_AT",
        Key::Name => "NAME",
        Key::Email => "EMAIL",
        Key::LastMessageAt => "LAST_MESSAGE_AT",
    }
}

/// The ids of `contacts` in the order of `keys`, ties broken by id in the last key's
/// direction, as the API documents.
fn expected_order(mut contacts: Vec<contact::Model>, keys: &[(Key, bool)]) -> Vec<String> {
    let id_desc = keys.last().is_some_and(|k| k.1);
    contacts.sort_by(|a, b| {
        for (key, desc) in keys {
            let ord = compare_key(*key, a, b);
            let ord = if *desc { ord.reverse() } else { ord };
            if ord != Ordering::Equal {
                return ord;
            }
        }
        let ord = a.id.cmp(&b.id);
        if id_desc { ord.reverse() } else { ord }
    });
    contacts.into_iter().map(|c| c.id.to_string()).collect()
}

fn ids_of(connection: &Value) -> Vec<String> {
    connection["edges"]
        .as_array()
        .expect("edges")
        .iter()
        .map(|e| e["node"]["id"].as_str().expect("id").to_string())
        .collect()
}

/// Reads every page forwards with `first: size`.
async fn forwards(app: &TestApp, order: &Value, size: i64) -> Vec<String> {
    let mut ids = Vec::new();
    let mut after = Value::Null;
    let mut first_page = true;
    loop {
        let data = app
            .data(
                PAGE,
                json!({ "first": size, "after": after, "orderBy": order }),
            )
            .await;
        let conn = &data["contacts"];
        let info = &conn["pageInfo"];
        assert_eq!(info["hasPreviousPage"], !first_page, "{info}");
        let page = ids_of(conn);
        let nodes: Vec<String> = conn["nodes"]
            .as_array()
            .expect("nodes")
            .iter()
            .map(|n| n["id"].as_str().expect("id").to_string())
            .collect();
        assert_eq!(page, nodes, "nodes and edges agree");
        if let Some(first) = conn["edges"].as_array().and_then(|e| e.first()) {
            assert_eq!(info["startCursor"], first["cursor"]);
        }
        ids.extend(page);
        first_page = false;
        if !info["hasNextPage"].as_bool().expect("hasNextPage") {
            return ids;
        }
        after = info["endCursor"].clone();
    }
}

/// Reads every page backwards from the end with `last: size`.
async fn backwards(app: &TestApp, order: &Value, size: i64) -> Vec<String> {
    let mut pages: Vec<Vec<String>> = Vec::new();
    let mut before = Value::Null;
    let mut last_page = true;
    loop {
        let data = app
            .data(
                PAGE,
                json!({ "last": size, "before": before, "orderBy": order }),
            )
            .await;
        let conn = &data["contacts"];
        let info = &conn["pageInfo"];
        assert_eq!(info["hasNextPage"], !last_page, "{info}");
        pages.push(ids_of(conn));
        last_page = false;
        if !info["hasPreviousPage"].as_bool().expect("hasPreviousPage") {
            return pages.into_iter().rev().flatten().collect();
        }
        before = info["startCursor"].clone();
    }
}

#[tokio::test]
async fn every_order_pages_forwards_and_backwards_over_the_same_sequence() {
    let app = spawn_app().await;
    let contacts = app.all_contacts().await;
    assert!(contacts.len() >= 400);
    let mut orders: Vec<Vec<(Key, bool)>> = Vec::new();
    for key in [
        Key::CreatedAt,
        Key::UpdatedAt,
        Key::Name,
        Key::Email,
        Key::LastMessageAt,
    ] {
        orders.push(vec![(key, false)]);
        orders.push(vec![(key, true)]);
    }
    // Mixed directions over several keys.
    orders.push(vec![(Key::Name, false), (Key::CreatedAt, true)]);
    orders.push(vec![(Key::LastMessageAt, true), (Key::Email, false)]);

    for keys in orders {
        let order: Value = keys
            .iter()
            .map(|(k, desc)| {
                json!({ "field": field_name(*k), "direction": if *desc { "DESC" } else { "ASC" } })
            })
            .collect();
        let expected = expected_order(contacts.clone(), &keys);
        assert_eq!(
            forwards(&app, &order, 37).await,
            expected,
            "forwards {order}"
        );
        assert_eq!(
            backwards(&app, &order, 37).await,
            expected,
            "backwards {order}"
        );
    }
}

#[tokio::test]
async fn default_order_is_newest_first_with_twenty_per_page() {
    let app = spawn_app().await;
    let expected = expected_order(app.all_contacts().await, &[(Key::CreatedAt, true)]);
    let data = app.data(PAGE, json!({})).await;
    let conn = &data["contacts"];
    assert_eq!(ids_of(conn), expected[..20].to_vec());
    assert_eq!(conn["totalCount"], expected.len());
    assert_eq!(conn["pageInfo"]["hasNextPage"], true);
    assert_eq!(conn["pageInfo"]["hasPreviousPage"], false);
}

#[tokio::test]
async fn an_empty_page_keeps_its_count_and_has_no_cursors() {
    let app = spawn_app().await;
    let data = app.data(PAGE, json!({ "first": 0 })).await;
    let conn = &data["contacts"];
    assert_eq!(conn["edges"], json!([]));
    assert_eq!(conn["totalCount"], app.all_contacts().await.len());
    assert_eq!(conn["pageInfo"]["startCursor"], Value::Null);
    assert_eq!(conn["pageInfo"]["endCursor"], Value::Null);
}

#[tokio::test]
async fn bad_page_arguments_are_validation_errors_not_clamps() {
    let app = spawn_app().await;
    let cursor_of_other_order = {
        let data = app
            .data(
                PAGE,
                json!({ "first": 1, "orderBy": [{ "field": "NAME", "direction": "ASC" }] }),
            )
            .await;
        data["contacts"]["pageInfo"]["endCursor"].clone()
    };
    let forged = {
        use base64::Engine;
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(
            r#"{"v":1,"o":"CREATED_AT:Desc","k":["2026"],"id":"01a2119d-b4f4-75d0-a3a4-0e2f52e254ff"}"#,
        )
    };
    let cases = [
        (json!({ "first": 101 }), vec!["first"]),
        (json!({ "first": -1 }), vec!["first"]),
        (json!({ "last": -5 }), vec!["last"]),
        (json!({ "last": 500 }), vec!["last"]),
        (
            json!({ "first": 5, "after": "not-a-cursor" }),
            vec!["after"],
        ),
        (json!({ "last": 5, "before": "eyJ2Ijo5fQ" }), vec!["before"]),
        (json!({ "first": 5, "last": 5 }), vec!["last"]),
        (
            json!({ "first": 5, "after": cursor_of_other_order }),
            vec!["after"],
        ),
        // A forged cursor for the default order, with text where a timestamp belongs.
        (json!({ "first": 5, "after": forged }), vec!["after"]),
    ];
    for (variables, fields) in cases {
        let response = app.graphql(PAGE, variables.clone()).await;
        let error = single_error(&response, "VALIDATION_FAILED");
        assert_eq!(failing_fields(error), fields, "{variables}: {response}");
        assert_eq!(response["data"], Value::Null, "{response}");
    }
}

#[tokio::test]
async fn other_lists_page_by_keyset_too() {
    let app = spawn_app().await;
    let mut expected: Vec<(String, String)> = app
        .all_accounts()
        .await
        .into_iter()
        .map(|a| (a.name, a.id.to_string()))
        .collect();
    expected.sort();
    let query = r#"query($after: String) {
        accounts(first: 5, after: $after) { edges { node { id name } } pageInfo { hasNextPage endCursor } }
    }"#;
    let mut seen = Vec::new();
    let mut after = Value::Null;
    loop {
        let data = app.data(query, json!({ "after": after })).await;
        for edge in data["accounts"]["edges"].as_array().expect("edges") {
            seen.push((
                edge["node"]["name"].as_str().expect("name").to_string(),
                edge["node"]["id"].as_str().expect("id").to_string(),
            ));
        }
        if data["accounts"]["pageInfo"]["hasNextPage"] != true {
            break;
        }
        after = data["accounts"]["pageInfo"]["endCursor"].clone();
    }
    assert_eq!(seen, expected);

    let tags = app
        .data(
            "{ tags(first: 100, orderBy: [{field: DISPLAY_ORDER, direction: DESC}]) { totalCount nodes { displayOrder } } }",
            json!({}),
        )
        .await;
    let orders: Vec<i64> = tags["tags"]["nodes"]
        .as_array()
        .expect("nodes")
        .iter()
        .map(|n| n["displayOrder"].as_i64().expect("displayOrder"))
        .collect();
    assert_eq!(tags["tags"]["totalCount"], app.all_tags().await.len());
    assert!(orders.windows(2).all(|w| w[0] >= w[1]), "{orders:?}");
}
