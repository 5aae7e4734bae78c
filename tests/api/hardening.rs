//! Hardening: deep and broad inputs, absent and missing variables, NUL characters, empty
//! pages, sub-millisecond bounds, coded errors at every layer, slow clients, and database
//! outages. Every refused request leaves the database as it was and the server serving.
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use contact_gateway::startup::Application;
use entity::prelude::Contact;
use sea_orm::EntityTrait;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;
use uuid::Uuid;

use crate::common::{
    TestApp, client_with_key, failing_fields, single_error, snapshot, spawn_app, spawn_app_via,
    spawn_app_with, test_config,
};

const LEGACY: &str = "application/json";
const MODERN: &str = "application/graphql-response+json";

/// POSTs `body` (JSON) with `accept`; returns the status and the JSON body.
async fn post_as(app: &TestApp, accept: &str, body: &Value) -> (u16, Value) {
    let response = app
        .client
        .post(format!("{}/graphql", app.base_url))
        .header("accept", accept)
        .json(body)
        .send()
        .await
        .expect("response");
    let status = response.status().as_u16();
    let text = response.text().await.expect("body");
    let json = serde_json::from_str(&text).unwrap_or_else(|_| panic!("a JSON body: {text}"));
    (status, json)
}

/// `body` is refused as a request error with `code` under both media types (HTTP 200 for
/// `application/json`; HTTP 400 without `data` for `application/graphql-response+json`).
/// Returns the error.
async fn refused(app: &TestApp, body: &Value, code: &str) -> Value {
    let (status, legacy) = post_as(app, LEGACY, body).await;
    assert_eq!(status, 200, "{legacy}");
    single_error(&legacy, code);
    assert!(legacy.get("data").is_none_or(Value::is_null), "{legacy}");
    let (status, modern) = post_as(app, MODERN, body).await;
    assert_eq!(status, 400, "{modern}");
    assert!(modern.get("data").is_none(), "{modern}");
    single_error(&modern, code).clone()
}

/// Like [`refused`], for a request that may be refused with several errors, each of `code`.
async fn refused_with(app: &TestApp, body: &Value, code: &str) {
    let (status, legacy) = post_as(app, LEGACY, body).await;
    let (modern_status, modern) = post_as(app, MODERN, body).await;
    assert_eq!((status, modern_status), (200, 400), "{legacy} {modern}");
    assert!(legacy.get("data").is_none_or(Value::is_null), "{legacy}");
    assert!(modern.get("data").is_none(), "{modern}");
    for response in [legacy, modern] {
        let errors = response["errors"].as_array().expect("errors");
        assert!(!errors.is_empty(), "{response}");
        for error in errors {
            assert_eq!(error["extensions"]["code"], code, "{response}");
        }
    }
}

/// The server still answers an ordinary query.
async fn assert_alive(app: &TestApp) {
    let data = app
        .data("{ contacts(first: 1) { totalCount } }", json!({}))
        .await;
    assert!(data["contacts"]["totalCount"].as_u64().unwrap_or(0) > 0);
}

/// `totalCount` of `contacts(filter: $f)`.
async fn count(app: &TestApp, filter: Value) -> u64 {
    let data = app
        .data(
            "query($f: ContactFilter) { contacts(filter: $f) { totalCount } }",
            json!({ "f": filter }),
        )
        .await;
    data["contacts"]["totalCount"].as_u64().expect("totalCount")
}

/// A tag name some demo contact carries.
async fn a_used_tag(app: &TestApp) -> String {
    app.tag_names_by_contact()
        .await
        .into_values()
        .flatten()
        .next()
        .expect("a contact with a tag")
}

/// `{not: {not: ... {tag: "<tag>"}}}` with `nots` levels of `not` (a value `nots + 1` deep).
fn nested_not(nots: usize, tag: &str) -> Value {
    let mut filter = json!({ "tag": tag });
    for _ in 0..nots {
        filter = json!({ "not": filter });
    }
    filter
}

/// The same as a GraphQL literal.
fn nested_not_literal(nots: usize, tag: &str) -> String {
    format!(
        "{}{{tag: \"{tag}\"}}{}",
        "{not: ".repeat(nots),
        "}".repeat(nots)
    )
}

#[tokio::test]
async fn deep_input() {
    let app = spawn_app().await;
    let before = snapshot(&app).await;

    // 700 nested `not` in a literal: refused from the text's nesting, before parsing.
    let query = format!(
        "{{ contacts(filter: {}) {{ totalCount }} }}",
        nested_not_literal(700, "x")
    );
    refused(&app, &json!({ "query": query }), "QUERY_TOO_DEEP").await;
    // 20 levels: within the text's bound, refused by the value's depth (16).
    let query = format!(
        "{{ contacts(filter: {}) {{ totalCount }} }}",
        nested_not_literal(20, "x")
    );
    refused(&app, &json!({ "query": query }), "QUERY_TOO_DEEP").await;
    // The same in a variable's default.
    let query = format!(
        "query($f: ContactFilter = {}) {{ contacts(filter: $f) {{ totalCount }} }}",
        nested_not_literal(20, "x")
    );
    refused(&app, &json!({ "query": query }), "QUERY_TOO_DEEP").await;
    // A variable nested 100 levels (below serde_json's 128).
    let variable = json!({
        "query": "query($f: ContactFilter) { contacts(filter: $f) { totalCount } }",
        "variables": { "f": nested_not(99, "x") },
    });
    refused(&app, &variable, "QUERY_TOO_DEEP").await;
    // 5000 nested list brackets in `tagsAny`.
    let query = format!(
        "{{ contacts(filter: {{tagsAny: {}\"x\"{}}}) {{ totalCount }} }}",
        "[".repeat(5000),
        "]".repeat(5000)
    );
    refused(&app, &json!({ "query": query }), "QUERY_TOO_DEEP").await;
    assert_alive(&app).await;

    // A legitimate filter, five operators deep (`and`, `or`, `not`, `not`, `and`), works and
    // means what it says.
    let tag = a_used_tag(&app).await;
    let plain = count(&app, json!({ "tag": tag })).await;
    assert!(plain > 0);
    let nested = json!({ "and": [{ "or": [{ "not": { "not": { "and": [{ "tag": tag }] } } }] }] });
    assert_eq!(count(&app, nested.clone()).await, plain);
    let literal = format!(
        "{{ contacts(filter: {{and: [{{or: [{{not: {{not: {{and: [{{tag: \"{tag}\"}}]}}}}}}]}}]}}) {{ totalCount }} }}"
    );
    let data = app.data(&literal, json!({})).await;
    assert_eq!(data["contacts"]["totalCount"].as_u64(), Some(plain));
    assert_eq!(
        snapshot(&app).await,
        before,
        "refused queries wrote nothing"
    );

    // `max_input_depth` is the limit: with 4, a value 4 deep passes and one 5 deep does not,
    // in a literal and in a variable.
    let strict = spawn_app_with(|c| c.limits.max_input_depth = 4).await;
    let query = "query($f: ContactFilter) { contacts(filter: $f) { totalCount } }";
    // `{not: {not: {not: {tag}}}}` is 4 objects deep; `not` three times is `not`.
    let not_tag = count(&strict, json!({ "not": { "tag": tag } })).await;
    assert_eq!(count(&strict, nested_not(3, &tag)).await, not_tag);
    refused(
        &strict,
        &json!({ "query": query, "variables": { "f": nested_not(4, &tag) } }),
        "QUERY_TOO_DEEP",
    )
    .await;
    let literal = |nots| {
        format!(
            "{{ contacts(filter: {}) {{ totalCount }} }}",
            nested_not_literal(nots, &tag)
        )
    };
    let data = strict.data(&literal(3), json!({})).await;
    assert_eq!(data["contacts"]["totalCount"].as_u64(), Some(not_tag));
    refused(&strict, &json!({ "query": literal(4) }), "QUERY_TOO_DEEP").await;
    // Lists count one level each: `{and: [{tag}]}` is 3 deep, `{and: [{and: [{tag}]}]}` 5.
    assert_eq!(
        count(&strict, json!({ "and": [{ "tag": tag }] })).await,
        plain
    );
    refused(
        &strict,
        &json!({ "query": query, "variables": { "f": { "and": [{ "and": [{ "tag": tag }] }] } } }),
        "QUERY_TOO_DEEP",
    )
    .await;
    assert_alive(&strict).await;
}

/// `n` branches `{ tag: "x" }`, comma-separated.
fn branches(n: usize) -> String {
    vec!["{ tag: \"x\" }"; n].join(", ")
}

#[tokio::test]
async fn filter_cost() {
    let app = spawn_app().await;
    let before = snapshot(&app).await;
    // 600 branches of 2 conditions at 100 each: 120,000 > 50,000.
    let wide = format!(
        "{{ contacts(filter: {{ or: [{}] }}) {{ totalCount }} }}",
        branches(600)
    );
    refused(&app, &json!({ "query": wide }), "QUERY_TOO_COMPLEX").await;
    // 50 branches: 10,000.
    let narrow = format!(
        "{{ contacts(filter: {{ or: [{}] }}) {{ totalCount }} }}",
        branches(50)
    );
    let data = app.data(&narrow, json!({})).await;
    assert_eq!(
        data["contacts"]["totalCount"].as_u64(),
        Some(count(&app, json!({ "tag": "x" })).await)
    );
    // Nested, the filter's cost is multiplied by the parent's page: 50 × 4,000 is refused,
    // 2 × 4,000 is answered.
    let nested = |accounts: usize| {
        format!(
            "{{ accounts(first: {accounts}) {{ nodes {{ contacts(filter: {{ or: [{}] }}) {{ totalCount }} }} }} }}",
            branches(20)
        )
    };
    refused(&app, &json!({ "query": nested(50) }), "QUERY_TOO_COMPLEX").await;
    let data = app.data(&nested(2), json!({})).await;
    assert_eq!(data["accounts"]["nodes"].as_array().map(Vec::len), Some(2));
    assert_eq!(snapshot(&app).await, before);
    assert_alive(&app).await;
}

#[tokio::test]
async fn absent_variables() {
    let app = spawn_app().await;

    // Contacts.
    let data = app
        .data(
            r#"mutation { createContact(input: { contact: { firstName: "Absent", lastName: "Probe", role: "Keeper", notes: "Kept notes" } }) { contact { id } } }"#,
            json!({}),
        )
        .await;
    let id = data["createContact"]["contact"]["id"]
        .as_str()
        .expect("id")
        .to_string();
    let update = r#"mutation($id: ID!, $first: String, $role: String, $notes: String) {
        updateContact(input: { id: $id, patch: { firstName: $first, role: $role, notes: $notes } }) {
            contact { firstName role notes }
        }
    }"#;
    let data = app
        .data(update, json!({ "id": id, "first": "Renamed" }))
        .await;
    assert_eq!(
        data["updateContact"]["contact"],
        json!({ "firstName": "Renamed", "role": "Keeper", "notes": "Kept notes" })
    );
    let stored = Contact::find_by_id(Uuid::parse_str(&id).expect("uuid"))
        .one(&app.db)
        .await
        .expect("query")
        .expect("contact");
    assert_eq!(
        (stored.role.as_deref(), stored.notes.as_deref()),
        (Some("Keeper"), Some("Kept notes"))
    );
    // Sent as null: cleared; still absent: kept.
    let data = app
        .data(update, json!({ "id": id, "first": "Again", "role": null }))
        .await;
    assert_eq!(
        data["updateContact"]["contact"],
        json!({ "firstName": "Again", "role": null, "notes": "Kept notes" })
    );

    // Accounts and businesses: `externalRef` absent is kept, null is cleared.
    for (kind, create, update, field) in [
        (
            "account",
            r#"mutation { createAccount(input: { name: "Absent Co", externalRef: "EXT-A" }) { account { id } } }"#,
            r#"mutation($id: ID!, $name: String, $ref: String) { updateAccount(input: { id: $id, patch: { name: $name, externalRef: $ref } }) { account { name externalRef } } }"#,
            "updateAccount",
        ),
        (
            "business",
            r#"mutation { createBusiness(input: { name: "Absent Biz", externalRef: "EXT-B" }) { business { id } } }"#,
            r#"mutation($id: ID!, $name: String, $ref: String) { updateBusiness(input: { id: $id, patch: { name: $name, externalRef: $ref } }) { business { name externalRef } } }"#,
            "updateBusiness",
        ),
    ] {
        let created = app.data(create, json!({})).await;
        let payload = created
            .as_object()
            .expect("data")
            .values()
            .next()
            .expect("payload");
        let id = payload[kind]["id"].as_str().expect("id").to_string();
        let data = app
            .data(update, json!({ "id": id, "name": "Renamed Org" }))
            .await;
        let expected_ref = if kind == "account" { "EXT-A" } else { "EXT-B" };
        assert_eq!(
            data[field][kind],
            json!({ "name": "Renamed Org", "externalRef": expected_ref }),
            "{kind}: an absent externalRef is kept"
        );
        let data = app.data(update, json!({ "id": id, "ref": null })).await;
        assert_eq!(
            data[field][kind],
            json!({ "name": "Renamed Org", "externalRef": null }),
            "{kind}: a null externalRef is cleared, an absent name kept"
        );
    }

    // Tags: an absent `displayOrder` or `name` is kept.
    let tag = app.all_tags().await.remove(0);
    let update = r#"mutation($id: ID!, $name: String, $order: Int) {
        updateTag(input: { id: $id, patch: { name: $name, displayOrder: $order } }) { tag { name displayOrder } }
    }"#;
    let data = app
        .data(
            update,
            json!({ "id": tag.id.to_string(), "name": "Absent Tag" }),
        )
        .await;
    assert_eq!(
        data["updateTag"]["tag"],
        json!({ "name": "Absent Tag", "displayOrder": tag.display_order })
    );
    let data = app
        .data(update, json!({ "id": tag.id.to_string(), "order": 77 }))
        .await;
    assert_eq!(
        data["updateTag"]["tag"],
        json!({ "name": "Absent Tag", "displayOrder": 77 })
    );
}

#[tokio::test]
async fn missing_required_variable() {
    let app = spawn_app().await;
    let before = snapshot(&app).await;
    let error = refused(
        &app,
        &json!({ "query": "query($id: ID!) { contact(id: $id) { id } }", "variables": {} }),
        "GRAPHQL_VALIDATION_FAILED",
    )
    .await;
    assert!(
        error["message"]
            .as_str()
            .unwrap_or_default()
            .contains("$id"),
        "{error}"
    );
    // No `variables` at all, and a mutation: refused, nothing deleted.
    refused(
        &app,
        &json!({ "query": "mutation($id: ID!) { deleteContact(input: { id: $id }) { deletedContactId } }" }),
        "GRAPHQL_VALIDATION_FAILED",
    )
    .await;
    // A required variable with a default may be left out.
    let contact = app.all_contacts().await.remove(0);
    let query = format!(
        "query($id: ID! = \"{}\") {{ contact(id: $id) {{ id }} }}",
        contact.id
    );
    let data = app.data(&query, json!({})).await;
    assert_eq!(data["contact"]["id"], contact.id.to_string());
    assert_eq!(snapshot(&app).await, before);
    assert_alive(&app).await;
}

#[tokio::test]
async fn nul_characters() {
    let app = spawn_app().await;
    let account = app.all_accounts().await.remove(0);
    let before = snapshot(&app).await;
    let cases = [
        (
            json!({ "query": r#"mutation { createContact(input: { contact: { firstName: "Ana\u0000" } }) { contact { id } } }"# }),
            "createContact.input.contact.firstName",
        ),
        (
            json!({
                "query": "query($s: String) { contacts(filter: { search: $s }) { totalCount } }",
                "variables": { "s": "a\u{0}b" },
            }),
            "$s",
        ),
        (
            json!({ "query": r#"{ contacts(filter: { search: "\u0000" }) { totalCount } }"# }),
            "contacts.filter.search",
        ),
        (
            json!({
                "query": "mutation($id: ID!, $name: String) { updateAccount(input: { id: $id, patch: { name: $name } }) { account { name } } }",
                "variables": { "id": account.id.to_string(), "name": "Acme\u{0}" },
            }),
            "$name",
        ),
        (
            json!({
                "query": "mutation($input: UpdateAccountInput!) { updateAccount(input: $input) { account { name } } }",
                "variables": { "input": { "id": account.id.to_string(), "patch": { "name": "\u{0}" } } },
            }),
            "$input.patch.name",
        ),
    ];
    for (body, path) in cases {
        let error = refused(&app, &body, "VALIDATION_FAILED").await;
        assert_eq!(failing_fields(&error), [path], "{error}");
    }
    assert_eq!(snapshot(&app).await, before, "nothing written");
    assert_alive(&app).await;
}

#[tokio::test]
async fn empty_pages() {
    let app = spawn_app().await;
    let page = |args: &str| {
        format!(
            "{{ contacts({args}) {{ totalCount edges {{ cursor }} pageInfo {{ hasNextPage hasPreviousPage }} }} }}"
        )
    };
    let data = app.data(&page("first: 0"), json!({})).await;
    let contacts = &data["contacts"];
    assert!(contacts["totalCount"].as_u64().unwrap_or(0) > 0, "{data}");
    assert_eq!(contacts["edges"], json!([]));
    assert_eq!(contacts["pageInfo"]["hasNextPage"], true, "{data}");
    let data = app.data(&page("last: 0"), json!({})).await;
    assert_eq!(data["contacts"]["edges"], json!([]));
    assert_eq!(
        data["contacts"]["pageInfo"]["hasPreviousPage"], true,
        "{data}"
    );

    let none = r#"filter: { email: "nobody@nowhere.invalid" }"#;
    let data = app
        .data(&page(&format!("first: 0, {none}")), json!({}))
        .await;
    assert_eq!(data["contacts"]["totalCount"], 0);
    assert_eq!(data["contacts"]["pageInfo"]["hasNextPage"], false, "{data}");
    let data = app
        .data(&page(&format!("last: 0, {none}")), json!({}))
        .await;
    assert_eq!(
        data["contacts"]["pageInfo"]["hasPreviousPage"], false,
        "{data}"
    );

    // Nested connections, with an account that has no contacts among them.
    let empty = app
        .data(
            r#"mutation { createAccount(input: { name: "Nobody Works Here" }) { account { id } } }"#,
            json!({}),
        )
        .await;
    let empty_id = empty["createAccount"]["account"]["id"]
        .as_str()
        .expect("id")
        .to_string();
    let data = app
        .data(
            "{ accounts(first: 50) { nodes { id
                next: contacts(first: 0) { totalCount edges { cursor } pageInfo { hasNextPage } }
                prev: contacts(last: 0) { totalCount edges { cursor } pageInfo { hasPreviousPage } }
            } } }",
            json!({}),
        )
        .await;
    let nodes = data["accounts"]["nodes"].as_array().expect("nodes");
    assert!(nodes.iter().any(|n| n["id"] == empty_id.as_str()), "{data}");
    let mut with_contacts = 0;
    for node in nodes {
        let total = node["next"]["totalCount"].as_u64().expect("totalCount");
        with_contacts += usize::from(total > 0);
        assert_eq!(node["next"]["edges"], json!([]));
        assert_eq!(node["prev"]["edges"], json!([]));
        assert_eq!(node["next"]["pageInfo"]["hasNextPage"], total > 0, "{node}");
        assert_eq!(
            node["prev"]["pageInfo"]["hasPreviousPage"],
            total > 0,
            "{node}"
        );
    }
    assert!(with_contacts > 0, "{data}");
}

#[tokio::test]
async fn sub_millisecond_bounds() {
    let app = spawn_app().await;
    let email = "submilli@bounds.example";
    app.data(
        &format!(
            r#"mutation {{ createContact(input: {{ contact: {{ firstName: "Bound", email: "{email}", lastMessageAt: "2026-03-28T23:30:00.000Z" }} }}) {{ contact {{ id }} }} }}"#
        ),
        json!({}),
    )
    .await;
    assert_eq!(count(&app, json!({ "email": email })).await, 1);
    for (bound, expected) in [
        (json!({ "gte": "2026-03-28T23:30:00.0000001Z" }), 0),
        (json!({ "gte": "2026-03-28T23:30:00.000Z" }), 1),
        (json!({ "lt": "2026-03-28T23:30:00.0009Z" }), 1),
        (json!({ "lt": "2026-03-28T23:30:00.000Z" }), 0),
        (json!({ "gt": "2026-03-28T23:29:59.9999Z" }), 1),
        (json!({ "gt": "2026-03-28T23:30:00.0000001Z" }), 0),
        (json!({ "lte": "2026-03-28T23:29:59.9999Z" }), 0),
        (json!({ "lte": "2026-03-28T23:30:00.0009Z" }), 1),
        // Another offset, finer than a millisecond.
        (json!({ "gte": "2026-03-29T01:30:00.0000001+02:00" }), 0),
        (json!({ "lt": "2026-03-29T01:30:00.0000001+02:00" }), 1),
    ] {
        let filter = json!({ "email": email, "lastMessageAt": bound });
        assert_eq!(count(&app, filter.clone()).await, expected, "{filter}");
    }
    // The same in a literal.
    let data = app
        .data(
            &format!(
                r#"{{ contacts(filter: {{ email: "{email}", lastMessageAt: {{ gte: "2026-03-28T23:30:00.0000001Z" }} }}) {{ totalCount }} }}"#
            ),
            json!({}),
        )
        .await;
    assert_eq!(data["contacts"]["totalCount"], 0);
}

/// Every error in `response` carries a string `extensions.code`.
fn assert_all_coded(response: &Value) {
    let errors = response["errors"].as_array().expect("errors");
    assert!(!errors.is_empty(), "{response}");
    for error in errors {
        assert!(error["extensions"]["code"].is_string(), "{response}");
    }
}

#[tokio::test]
async fn coded_errors() {
    let app = spawn_app().await;
    let before = snapshot(&app).await;
    let url = format!("{}/graphql", app.base_url);

    // A malformed DateTime, in a literal and in a variable.
    refused_with(
        &app,
        &json!({ "query": r#"{ contacts(filter: { lastMessageAt: { gte: "yesterday" } }) { totalCount } }"# }),
        "GRAPHQL_VALIDATION_FAILED",
    )
    .await;
    refused_with(
        &app,
        &json!({
            "query": "query($f: ContactFilter) { contacts(filter: $f) { totalCount } }",
            "variables": { "f": { "lastMessageAt": { "lt": "2026-02-30T00:00:00Z" } } },
        }),
        "GRAPHQL_VALIDATION_FAILED",
    )
    .await;
    refused_with(
        &app,
        &json!({
            "query": "query($t: DateTime) { contacts(filter: { createdAt: { gt: $t } }) { totalCount } }",
            "variables": { "t": "not a date" },
        }),
        "GRAPHQL_VALIDATION_FAILED",
    )
    .await;

    // An Int out of range, in a literal and in a variable: coded, naming the field.
    for (query, variables) in [
        (
            "{ duplicateContacts(first: 2147483648) { totalCount } }",
            json!({}),
        ),
        (
            "query($n: Int) { duplicateContacts(first: $n) { totalCount } }",
            json!({ "n": 2_147_483_648_u64 }),
        ),
    ] {
        let response = app.graphql(query, variables).await;
        assert_all_coded(&response);
        let error = single_error(&response, "VALIDATION_FAILED");
        assert_eq!(failing_fields(error), ["duplicateContacts"], "{response}");
    }

    // A body over `max_body_bytes` (1 MiB), declared in Content-Length.
    let big = json!({ "query": "{ __typename }", "variables": { "pad": "x".repeat(1024 * 1024) } });
    let response = app
        .client
        .post(&url)
        .json(&big)
        .send()
        .await
        .expect("response");
    assert_eq!(response.status(), 413);
    let body: Value = response.json().await.expect("a JSON body");
    single_error(&body, "REQUEST_TOO_LARGE");
    // The same, chunked (no Content-Length): refused as it is read.
    let address = app.base_url.trim_start_matches("http://").to_string();
    let mut stream = TcpStream::connect(&address).await.expect("connect");
    let head = format!(
        "POST /graphql HTTP/1.1\r\nHost: {address}\r\nAuthorization: Bearer {}\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n",
        app.key
    );
    stream.write_all(head.as_bytes()).await.expect("write");
    let chunk = "x".repeat(64 * 1024);
    for _ in 0..17 {
        let framed = format!("{:x}\r\n{chunk}\r\n", chunk.len());
        if stream.write_all(framed.as_bytes()).await.is_err() {
            break; // the server answered and closed
        }
    }
    let _ = stream.write_all(b"0\r\n\r\n").await;
    let (status, body) = read_response(&mut stream, Duration::from_secs(5)).await;
    assert_eq!(status, 413, "{body}");
    let body: Value = serde_json::from_str(&body).expect("a JSON body");
    single_error(&body, "REQUEST_TOO_LARGE");

    // 101 headers, or one of 20 KB: 431 with a JSON body.
    let mut many = reqwest::header::HeaderMap::new();
    for i in 0..101 {
        many.insert(
            reqwest::header::HeaderName::from_bytes(format!("x-h-{i}").as_bytes()).expect("name"),
            "1".parse().expect("value"),
        );
    }
    let huge = "a".repeat(20 * 1024);
    for request in [
        app.client.post(&url).headers(many),
        app.client.post(&url).header("x-big", huge.as_str()),
    ] {
        let response = request
            .json(&json!({ "query": "{ __typename }" }))
            .send()
            .await
            .expect("response");
        assert_eq!(response.status(), 431);
        let body: Value = response.json().await.expect("a JSON body");
        single_error(&body, "REQUEST_HEADERS_TOO_LARGE");
    }
    // 50 headers are fine.
    let mut some = reqwest::header::HeaderMap::new();
    for i in 0..50 {
        some.insert(
            reqwest::header::HeaderName::from_bytes(format!("x-h-{i}").as_bytes()).expect("name"),
            "1".parse().expect("value"),
        );
    }
    let response = app
        .client
        .post(&url)
        .headers(some)
        .json(&json!({ "query": "{ __typename }" }))
        .send()
        .await
        .expect("response");
    assert_eq!(response.status(), 200);

    assert_eq!(snapshot(&app).await, before);
    assert_alive(&app).await;
}

/// Reads one HTTP/1.1 response from `stream` (up to its Content-Length, or the end of the
/// connection) within `within`; returns the status and the body.
async fn read_response(stream: &mut TcpStream, within: Duration) -> (u16, String) {
    let read = async {
        let mut buffer = Vec::new();
        let mut chunk = [0u8; 8192];
        loop {
            let n = stream.read(&mut chunk).await.unwrap_or(0);
            if n == 0 {
                return buffer;
            }
            buffer.extend_from_slice(&chunk[..n]);
            if let Some(end) = buffer.windows(4).position(|w| w == b"\r\n\r\n") {
                let head = String::from_utf8_lossy(&buffer[..end]).to_ascii_lowercase();
                let length = head
                    .lines()
                    .find_map(|l| l.strip_prefix("content-length:"))
                    .and_then(|v| v.trim().parse::<usize>().ok());
                if length.is_some_and(|length| buffer.len() >= end + 4 + length) {
                    return buffer;
                }
            }
        }
    };
    let buffer = tokio::time::timeout(within, read)
        .await
        .expect("a response in time");
    let text = String::from_utf8_lossy(&buffer).to_string();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("an HTTP response: {text:?}"));
    (status, body.to_string())
}

#[tokio::test]
async fn slow_clients() {
    let app = spawn_app_with(|c| {
        c.limits.request_timeout_secs = 1;
        c.limits.header_read_timeout_secs = 1;
    })
    .await;
    let address = app.base_url.trim_start_matches("http://").to_string();

    // A body that stops short of its Content-Length: 408 after the request time limit.
    let mut stream = TcpStream::connect(&address).await.expect("connect");
    let head = format!(
        "POST /graphql HTTP/1.1\r\nHost: {address}\r\nAuthorization: Bearer {}\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{{\"query\":\"",
        app.key
    );
    let started = Instant::now();
    stream.write_all(head.as_bytes()).await.expect("write");
    let (status, body) = read_response(&mut stream, Duration::from_secs(3)).await;
    assert_eq!(status, 408, "{body}");
    let body: Value = serde_json::from_str(&body).expect("a JSON body");
    single_error(&body, "REQUEST_TIMEOUT");
    assert!(started.elapsed() >= Duration::from_millis(900));

    // Half a request line, then nothing: the connection is closed after the header timeout.
    let mut stream = TcpStream::connect(&address).await.expect("connect");
    stream.write_all(b"POST /gra").await.expect("write");
    let started = Instant::now();
    let closed = tokio::time::timeout(Duration::from_secs(3), async {
        let mut chunk = [0u8; 1024];
        loop {
            match stream.read(&mut chunk).await {
                Ok(0) | Err(_) => break,
                Ok(_) => {}
            }
        }
    })
    .await;
    assert!(
        closed.is_ok(),
        "the server closed the connection within 3 s"
    );
    assert!(started.elapsed() >= Duration::from_millis(500));
    assert_alive(&app).await;

    // A server capped at 2 connections (started without a request of its own, so that no
    // pooled connection holds a place): with 2 idle connections open, a third request waits
    // until one of them closes.
    let mut config = test_config(&app.database_url);
    config.limits.max_connections = 2;
    let capped = Application::build(&config)
        .await
        .expect("application builds");
    let capped_url = format!("http://{}/healthz", capped.address());
    let capped_address = capped.address().to_string();
    tokio::spawn(capped.run_until_stopped());
    let idle_one = TcpStream::connect(&capped_address).await.expect("connect");
    let _idle_two = TcpStream::connect(&capped_address).await.expect("connect");
    let mut third =
        tokio::spawn(async move { reqwest::Client::new().get(capped_url).send().await });
    assert!(
        tokio::time::timeout(Duration::from_millis(700), &mut third)
            .await
            .is_err(),
        "the third connection waits while two are open"
    );
    drop(idle_one);
    let response = tokio::time::timeout(Duration::from_secs(3), third)
        .await
        .expect("answered once a connection closed")
        .expect("task")
        .expect("response");
    assert_eq!(response.status(), 200);
}

/// A TCP proxy to the PostgreSQL server, which can be stopped (closing its connections)
/// and restarted on the same port.
struct Proxy {
    port: u16,
    target: String,
    accept: Option<JoinHandle<()>>,
    links: Arc<Mutex<Vec<JoinHandle<()>>>>,
}

impl Proxy {
    async fn start(target: String) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let port = listener.local_addr().expect("address").port();
        let mut proxy = Proxy {
            port,
            target,
            accept: None,
            links: Arc::default(),
        };
        proxy.serve(listener);
        proxy
    }

    fn serve(&mut self, listener: TcpListener) {
        let target = self.target.clone();
        let links = self.links.clone();
        self.accept = Some(tokio::spawn(async move {
            while let Ok((mut client, _)) = listener.accept().await {
                let target = target.clone();
                let link = tokio::spawn(async move {
                    if let Ok(mut server) = TcpStream::connect(&target).await {
                        let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
                    }
                });
                links.lock().expect("links").push(link);
            }
        }));
    }

    /// Stops listening and closes every proxied connection.
    async fn stop(&mut self) {
        let mut handles: Vec<JoinHandle<()>> = self.accept.take().into_iter().collect();
        handles.extend(self.links.lock().expect("links").drain(..));
        for handle in &handles {
            handle.abort();
        }
        for handle in handles {
            let _ = handle.await;
        }
    }

    /// Listens on the same port again.
    async fn restart(&mut self) {
        for _ in 0..50 {
            if let Ok(listener) = TcpListener::bind(("127.0.0.1", self.port)).await {
                self.serve(listener);
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("could not listen on port {} again", self.port);
    }
}

#[tokio::test]
async fn database_outage() {
    let base = match std::env::var("TEST_DATABASE_URL") {
        Ok(url) if !url.is_empty() => url,
        _ => {
            eprintln!("database_outage: PostgreSQL only (TEST_DATABASE_URL is unset); skipped");
            return;
        }
    };
    let parsed = url::Url::parse(&base).expect("TEST_DATABASE_URL is a URL");
    let target = format!(
        "{}:{}",
        parsed.host_str().expect("a host"),
        parsed.port().unwrap_or(5432)
    );
    let mut proxy = Proxy::start(target).await;
    let port = proxy.port;
    let app = spawn_app_via(
        |url| {
            let mut url = url::Url::parse(url).expect("database URL");
            url.set_host(Some("127.0.0.1")).expect("host");
            url.set_port(Some(port)).expect("port");
            url.to_string()
        },
        |c| c.key_cache_secs = 0,
    )
    .await;
    assert_alive(&app).await;
    let before = snapshot(&app).await;
    let url = format!("{}/graphql", app.base_url);
    let healthz = format!("{}/healthz", app.base_url);

    proxy.stop().await;
    let started = Instant::now();
    let response = tokio::time::timeout(
        Duration::from_secs(4),
        app.client
            .post(&url)
            .json(&json!({ "query": "{ contacts(first: 1) { totalCount } }" }))
            .send(),
    )
    .await
    .expect("answered within 4 s")
    .expect("response");
    assert_eq!(response.status(), 503, "{:?}", started.elapsed());
    assert!(response.headers().contains_key("retry-after"));
    let body: Value = response.json().await.expect("a JSON body");
    single_error(&body, "SERVICE_UNAVAILABLE");

    let started = Instant::now();
    let response =
        tokio::time::timeout(Duration::from_millis(1500), app.client.get(&healthz).send())
            .await
            .expect("health answered within 1.5 s")
            .expect("response");
    assert_eq!(response.status(), 503, "{:?}", started.elapsed());
    assert!(response.headers().contains_key("retry-after"));

    // A mutation during the outage: 503, and (checked below) nothing written.
    let response = tokio::time::timeout(
        Duration::from_secs(4),
        app.client
            .post(&url)
            .json(&json!({ "query": r#"mutation { createContact(input: { contact: { firstName: "Outage" } }) { contact { id } } }"# }))
            .send(),
    )
    .await
    .expect("answered within 4 s")
    .expect("response");
    assert_eq!(response.status(), 503);
    let body: Value = response.json().await.expect("a JSON body");
    single_error(&body, "SERVICE_UNAVAILABLE");

    // Back: requests succeed again within a few seconds.
    proxy.restart().await;
    let client = client_with_key(&app.key);
    let mut recovered = false;
    for _ in 0..40 {
        let response = client
            .post(&url)
            .json(&json!({ "query": "{ contacts(first: 1) { totalCount } }" }))
            .send()
            .await
            .expect("response");
        if response.status() == 200 {
            let body: Value = response.json().await.expect("json");
            assert!(body.get("errors").is_none(), "{body}");
            recovered = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    assert!(recovered, "requests succeed once the database is back");
    let health = client.get(&healthz).send().await.expect("health");
    assert_eq!(health.status(), 200);
    assert_eq!(
        snapshot(&app).await,
        before,
        "nothing written during the outage"
    );
    proxy.stop().await;
}

/// Whether a statement containing `marker` runs on the server, seen from another session.
async fn statement_runs(db: &sea_orm::DatabaseConnection, marker: &str) -> bool {
    use sea_orm::{ConnectionTrait, DbBackend, Statement};
    let sql = "SELECT count(*) AS n FROM pg_stat_activity WHERE state = 'active' \
               AND pid <> pg_backend_pid() AND position($1 in query) > 0";
    let row = db
        .query_one_raw(Statement::from_sql_and_values(
            DbBackend::Postgres,
            sql,
            [marker.into()],
        ))
        .await
        .expect("pg_stat_activity")
        .expect("a row");
    row.try_get::<i64>("", "n").expect("n") > 0
}

/// A request that gives up drops its statement's future; on PostgreSQL the server must stop
/// that statement then, not run it to its end (or to `statement_timeout`).
#[tokio::test]
async fn a_statement_whose_request_gave_up_is_stopped() {
    use sea_orm::{ConnectionTrait, Database, DbBackend};
    let app = spawn_app().await;
    if app.db.get_database_backend() != DbBackend::Postgres {
        return; // SQLite statements are bounded by the filter cost instead.
    }
    let observer = Database::connect(&app.database_url)
        .await
        .expect("observer");
    let marker = format!("gave_up_{}", Uuid::new_v4().simple());
    // The serving pool: `app.db` is what the server answers requests from.
    let gave_up = tokio::time::timeout(
        Duration::from_millis(300),
        app.db
            .execute_unprepared(&format!("SELECT pg_sleep(30) /* {marker} */")),
    )
    .await;
    assert!(gave_up.is_err(), "the statement cannot end in 300 ms");
    assert!(
        statement_runs(&observer, &marker).await,
        "the statement runs on after its future was dropped"
    );
    let started = Instant::now();
    while statement_runs(&observer, &marker).await {
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "the abandoned statement still runs after 5 s"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // The pool serves on with fresh connections.
    assert_alive(&app).await;
}
