//! Nested lists cost a fixed number of SQL statements, and return the right pages.
use std::collections::HashMap;

use serde_json::{Value, json};
use uuid::Uuid;

use crate::common::{TestApp, spawn_app};

const NESTED: &str = r#"query($accounts: Int!, $contacts: Int!) {
    accounts(first: $accounts) { totalCount edges { node { id name
        contacts(first: $contacts) { totalCount edges { node {
            id name email account { name } business { name } tags { name }
        } } }
    } } }
}"#;

/// Statements the server sent to run `query`.
async fn statements_for(app: &TestApp, query: &str, variables: Value) -> (u64, Value) {
    let before = app.sql_statements().await;
    let data = app.data(query, variables).await;
    let after = app.sql_statements().await;
    (after - before, data)
}

#[tokio::test]
async fn the_nested_account_query_costs_the_same_few_statements_at_any_size() {
    let app = spawn_app().await;
    let mut counts = Vec::new();
    for (accounts, contacts) in [(5, 5), (50, 10), (50, 50)] {
        let (n, data) = statements_for(
            &app,
            NESTED,
            json!({ "accounts": accounts, "contacts": contacts }),
        )
        .await;
        let edges = data["accounts"]["edges"].as_array().expect("edges");
        assert!(!edges.is_empty());
        counts.push(n);
    }
    assert!(counts.iter().all(|&n| n <= 6), "{counts:?}");
    // The demo's dozen accounts fit in a page of 50, whose length is then their total: no
    // count of accounts. Beyond that, the size changes nothing.
    assert_eq!(counts[0], counts[1] + 1, "{counts:?}");
    assert_eq!(counts[1], counts[2], "{counts:?}");
}

#[tokio::test]
async fn nested_pages_hold_each_parents_own_first_contacts() {
    let app = spawn_app().await;
    let contacts = app.all_contacts().await;
    let tags = app.tag_names_by_contact().await;
    let mut by_account: HashMap<Uuid, Vec<_>> = HashMap::new();
    for c in &contacts {
        if let Some(account) = c.account_id {
            by_account.entry(account).or_default().push(c.clone());
        }
    }
    for list in by_account.values_mut() {
        list.sort_by_key(|c| std::cmp::Reverse((c.created_at, c.id)));
    }
    let data = app
        .data(NESTED, json!({ "accounts": 50, "contacts": 7 }))
        .await;
    for edge in data["accounts"]["edges"].as_array().expect("edges") {
        let account = &edge["node"];
        let id: Uuid = account["id"].as_str().expect("id").parse().expect("uuid");
        let expected = by_account.get(&id).cloned().unwrap_or_default();
        assert_eq!(account["contacts"]["totalCount"], expected.len());
        let got = account["contacts"]["edges"].as_array().expect("edges");
        assert_eq!(got.len(), expected.len().min(7));
        for (edge, want) in got.iter().zip(&expected) {
            let node = &edge["node"];
            assert_eq!(node["id"], want.id.to_string());
            assert_eq!(node["account"]["name"], account["name"]);
            let mut want_tags = tags.get(&want.id).cloned().unwrap_or_default();
            want_tags.sort();
            let mut got_tags: Vec<String> = node["tags"]
                .as_array()
                .expect("tags")
                .iter()
                .map(|t| t["name"].as_str().expect("name").to_string())
                .collect();
            got_tags.sort();
            assert_eq!(got_tags, want_tags);
            assert_eq!(node["business"].is_null(), want.business_id.is_none());
        }
    }
}

#[tokio::test]
async fn sibling_lists_that_differ_only_in_selecting_total_count_each_get_their_page() {
    // Once, the loader grouped such keys as one and filed the pages under the first key
    // only: the other alias got an empty page and a total of 0.
    let app = spawn_app().await;
    let data = app
        .data(
            "{ accounts(first: 50) { nodes { id \
               counted: contacts(first: 3) { totalCount } \
               listed: contacts(first: 3) { nodes { id } } \
               both: contacts(first: 3) { totalCount nodes { id } } } } }",
            json!({}),
        )
        .await;
    let accounts = data["accounts"]["nodes"].as_array().expect("accounts");
    let mut some_listed = false;
    for account in accounts {
        assert_eq!(
            account["counted"]["totalCount"], account["both"]["totalCount"],
            "{account}"
        );
        assert_eq!(
            account["listed"]["nodes"], account["both"]["nodes"],
            "{account}"
        );
        some_listed |= !account["listed"]["nodes"]
            .as_array()
            .expect("nodes")
            .is_empty();
    }
    assert!(some_listed, "{data}");
}

#[tokio::test]
async fn nested_pages_follow_cursors_and_keep_their_totals() {
    let app = spawn_app().await;
    let query = r#"query($after: String) {
        tags(first: 100) { nodes { id contacts(first: 3, after: $after) { totalCount nodes { id } edges { cursor } pageInfo { startCursor endCursor hasNextPage hasPreviousPage } } } }
    }"#;
    let first = app.data(query, json!({})).await;
    // A nested page's edge cursors are made when selected: the same as pageInfo's.
    for tag in first["tags"]["nodes"].as_array().expect("tags") {
        let page = &tag["contacts"];
        let edges = page["edges"].as_array().expect("edges");
        if let (Some(first_edge), Some(last_edge)) = (edges.first(), edges.last()) {
            assert_eq!(first_edge["cursor"], page["pageInfo"]["startCursor"]);
            assert_eq!(last_edge["cursor"], page["pageInfo"]["endCursor"]);
            assert!(first_edge["cursor"].as_str().is_some_and(|c| !c.is_empty()));
        }
    }
    let tag = first["tags"]["nodes"]
        .as_array()
        .expect("tags")
        .iter()
        .find(|t| t["contacts"]["totalCount"].as_u64().unwrap_or(0) > 6)
        .expect("a tag with several contacts")
        .clone();
    let single = r#"query($id: ID!, $after: String, $first: Int) { tag(id: $id) { contacts(first: $first, after: $after) { totalCount nodes { id } pageInfo { endCursor hasPreviousPage } } } }"#;
    let all = app
        .data(single, json!({ "id": tag["id"], "first": 100 }))
        .await;
    let all_ids: Vec<Value> = all["tag"]["contacts"]["nodes"]
        .as_array()
        .expect("nodes")
        .iter()
        .map(|n| n["id"].clone())
        .collect();
    let second = app
        .data(
            single,
            json!({ "id": tag["id"], "first": 3, "after": tag["contacts"]["pageInfo"]["endCursor"] }),
        )
        .await;
    let page = &second["tag"]["contacts"];
    assert_eq!(page["totalCount"], tag["contacts"]["totalCount"]);
    assert_eq!(page["pageInfo"]["hasPreviousPage"], true);
    let ids: Vec<Value> = page["nodes"]
        .as_array()
        .expect("nodes")
        .iter()
        .map(|n| n["id"].clone())
        .collect();
    assert_eq!(ids, all_ids[3..6].to_vec());
}

#[tokio::test]
async fn business_tags_and_contacts_are_batched_too() {
    let app = spawn_app().await;
    let query = r#"query($b: Int!, $t: Int!, $c: Int!) { businesses(first: $b) { nodes { name
        tags(first: $t) { totalCount nodes { name contacts(first: $c) { totalCount nodes { name business { name } } } } }
        contacts(first: $c) { totalCount nodes { name tags { name } account { name } } }
    } } }"#;
    let mut counts = Vec::new();
    for (b, t, c) in [(2, 2, 2), (10, 10, 5)] {
        let (n, data) = statements_for(&app, query, json!({ "b": b, "t": t, "c": c })).await;
        let businesses = data["businesses"]["nodes"].as_array().expect("nodes");
        assert!(businesses.len() >= 2);
        counts.push(n);
        if b == 10 {
            let tag_count = app.all_tags().await.len();
            let listed: u64 = businesses
                .iter()
                .map(|b| b["tags"]["totalCount"].as_u64().expect("count"))
                .sum();
            assert_eq!(listed as usize, tag_count);
        }
    }
    // businesses; tag pages + their totals; contact pages under tags + totals + their
    // businesses; contact pages under businesses + totals + their tags + their accounts.
    assert_eq!(counts, vec![10, 10]);
}

/// Subselections of `Contact`'s object fields, for reading every field one at a time.
fn selection_of(field: &str, kind: &str) -> String {
    match (field, kind) {
        (_, "SCALAR" | "ENUM") => field.to_string(),
        ("address", _) => "address { street city state country postalCode }".to_string(),
        ("dnd", _) => "dnd { email sms call whatsapp }".to_string(),
        ("account" | "business", _) => format!("{field} {{ id name }}"),
        ("tags", _) => "tags { id name }".to_string(),
        ("sources", _) => "sources { source externalId }".to_string(),
        ("writeBacks", _) => "writeBacks { id }".to_string(),
        _ => panic!("Contact.{field} ({kind}) is new here: give it a selection"),
    }
}

#[tokio::test]
async fn nested_pages_read_the_columns_each_field_needs() {
    let app = spawn_app().await;
    let fields = app
        .data(
            r#"{ __type(name: "Contact") { fields { name args { name } type { kind ofType { kind ofType { kind ofType { kind } } } } } } }"#,
            json!({}),
        )
        .await;
    let fields = fields["__type"]["fields"].as_array().expect("fields");
    assert!(fields.len() > 30, "{fields:?}");
    for field in fields {
        let name = field["name"].as_str().expect("name");
        // The innermost kind: lists and non-nulls wrap it.
        let mut ty = &field["type"];
        while matches!(ty["kind"].as_str(), Some("LIST" | "NON_NULL")) {
            ty = &ty["ofType"];
        }
        let selection = selection_of(name, ty["kind"].as_str().unwrap_or_default());
        let nested = format!(
            "{{ accounts(first: 20) {{ nodes {{ contacts(first: 20) {{ nodes {{ id {selection} }} }} }} }} }}"
        );
        let full = format!("{{ contacts(first: 100) {{ nodes {{ id {selection} }} }} }}");
        let nested = app.data(&nested, json!({})).await;
        let full = app.data(&full, json!({})).await;
        let by_id: HashMap<&str, &Value> = full["contacts"]["nodes"]
            .as_array()
            .expect("nodes")
            .iter()
            .map(|n| (n["id"].as_str().unwrap_or_default(), n))
            .collect();
        let mut compared = 0;
        for account in nested["accounts"]["nodes"].as_array().expect("accounts") {
            for node in account["contacts"]["nodes"].as_array().expect("nodes") {
                if let Some(read_whole) = by_id.get(node["id"].as_str().unwrap_or_default()) {
                    assert_eq!(&node, read_whole, "Contact.{name}");
                    compared += 1;
                }
            }
        }
        assert!(compared > 0, "Contact.{name}: no contact in both lists");
    }
}

/// A page's nodes and edges are resolved without a future per field (`PlainFields`) when
/// their selection is plain fields, and by the engine otherwise: aliases, `__typename`, a
/// field selected twice (merged), fragments, and nested lists must come out exactly as the
/// engine gives the same contact looked up alone.
#[tokio::test]
async fn page_nodes_resolve_as_the_same_contact_looked_up_alone() {
    let app = spawn_app().await;
    let selections = [
        "__typename id first: firstName lastName email tags { __typename name n: name }",
        // Every field `DirectFields` makes, with and without an alias.
        "id firstName lastName name email phone companyName c: companyName tags { id name }",
        "id name tags { name } tags { displayOrder }",
        "id ... on Contact { email tags { name } } ...More",
        "id account { name contacts(first: 2) { nodes { id first: firstName } } }",
    ];
    for selection in selections {
        let fragment = "fragment More on Contact { phone business { name } }";
        let fragment = if selection.contains("...More") {
            fragment
        } else {
            ""
        };
        let page = app
            .data(
                &format!(
                    "{{ contacts(first: 5) {{ nodes {{ {selection} }} edges {{ cursor node {{ {selection} }} }} }} }} {fragment}"
                ),
                json!({}),
            )
            .await;
        let nodes = page["contacts"]["nodes"].as_array().expect("nodes");
        let edges = page["contacts"]["edges"].as_array().expect("edges");
        assert_eq!(nodes.len(), 5, "{selection}");
        for (node, edge) in nodes.iter().zip(edges) {
            assert_eq!(node, &edge["node"], "{selection}");
            assert!(edge["cursor"].is_string());
            let alone = app
                .data(
                    &format!("query($id: ID!) {{ contact(id: $id) {{ {selection} }} }} {fragment}"),
                    json!({ "id": node["id"] }),
                )
                .await;
            assert_eq!(node, &alone["contact"], "{selection}");
            // The response keeps the selection's order.
            let keys: Vec<&String> = node.as_object().expect("object").keys().collect();
            let alone_keys: Vec<&String> = alone["contact"]
                .as_object()
                .expect("object")
                .keys()
                .collect();
            assert_eq!(keys, alone_keys, "{selection}");
        }
    }
}

/// A tag's fields made by `DirectFields` (a plain selection) equal the engine's (a fragment
/// makes the engine resolve the same tags).
#[tokio::test]
async fn direct_tag_fields_equal_the_engine_s() {
    let app = spawn_app().await;
    let page =
        |tags: &str| format!("{{ contacts(first: 50) {{ nodes {{ id tags {{ {tags} }} }} }} }}");
    let direct = app.data(&page("id name displayOrder"), json!({})).await;
    let engine = app
        .data(&page("... on Tag { id name displayOrder }"), json!({}))
        .await;
    assert_eq!(direct, engine);
    let tagged = direct["contacts"]["nodes"]
        .as_array()
        .expect("nodes")
        .iter()
        .filter(|n| !n["tags"].as_array().expect("tags").is_empty())
        .count();
    assert!(tagged > 0, "{direct}");
}

/// A field that fails under a page's node is reported as the engine reports it for the same
/// contact looked up alone: the same data around it, the same message, code and path below
/// the node.
#[tokio::test]
async fn a_failing_field_under_a_page_node_is_reported_as_the_engine_does() {
    let app = spawn_app().await;
    // `first: 101` is refused by the nested connection's resolver, not by validation.
    let selection = "id account { name contacts(first: 101) { totalCount } }";
    let page = app
        .graphql(
            &format!(
                "{{ accounts(first: 1) {{ nodes {{ contacts(first: 1) {{ nodes {{ {selection} }} }} }} }} }}"
            ),
            json!({}),
        )
        .await;
    let node = &page["data"]["accounts"]["nodes"][0]["contacts"]["nodes"][0];
    let alone = app
        .graphql(
            &format!("query($id: ID!) {{ contact(id: $id) {{ {selection} }} }}"),
            json!({ "id": node["id"] }),
        )
        .await;
    assert_eq!(node, &alone["data"]["contact"], "{page} {alone}");
    let errors = |response: &Value, under: usize| -> Vec<(Value, Value, Vec<Value>)> {
        response["errors"]
            .as_array()
            .expect("errors")
            .iter()
            .map(|e| {
                let path = e["path"].as_array().expect("path")[under..].to_vec();
                (e["message"].clone(), e["extensions"]["code"].clone(), path)
            })
            .collect()
    };
    // Paths: ["accounts", "nodes", 0, "contacts", "nodes", 0, …] and ["contact", …].
    let from_page = errors(&page, 6);
    assert!(!from_page.is_empty(), "{page}");
    assert_eq!(from_page, errors(&alone, 1));
}

/// A page read without a cursor with nothing after it (or, read backwards, before it) holds
/// the whole list: its length is the total, and no count runs. Any other page's total is
/// counted, with one more statement.
#[tokio::test]
async fn a_page_holding_the_whole_list_gives_its_total_without_counting() {
    let app = spawn_app().await;
    let contacts = app.all_contacts().await;
    let email = contacts
        .iter()
        .find_map(|c| c.email.clone())
        .expect("a contact with an email");
    let query = |size: &str, total: &str| {
        format!(
            "query($s: String, $n: Int) {{ contacts({size}: $n, filter: {{ search: $s }}) {{ {total} nodes {{ id }} pageInfo {{ hasNextPage hasPreviousPage }} }} }}"
        )
    };
    let mut whole = 0;
    for (search, size, n) in [
        ("zq-nothing", "first", 20),
        (email.as_str(), "first", 20),
        (email.as_str(), "last", 20),
        ("a", "first", 1),
        ("a", "last", 1),
    ] {
        let variables = json!({ "s": search, "n": n });
        let (without, _) = statements_for(&app, &query(size, ""), variables.clone()).await;
        let (with, data) = statements_for(&app, &query(size, "totalCount"), variables).await;
        let list = &data["contacts"];
        let nodes = list["nodes"].as_array().expect("nodes").len();
        let total = list["totalCount"].as_u64().expect("total") as usize;
        let expected = contacts
            .iter()
            .filter(|c| {
                let fields = [&c.first_name, &c.last_name, &c.email, &c.phone];
                fields.iter().any(|f| {
                    f.as_deref()
                        .is_some_and(|f| f.to_lowercase().contains(&search.to_lowercase()))
                })
            })
            .count();
        let info = &list["pageInfo"];
        if info["hasNextPage"] == false && info["hasPreviousPage"] == false {
            whole += 1;
            assert_eq!(total, nodes, "{search} {size}");
            assert_eq!(with, without, "{search} {size}: a count ran");
        } else {
            assert!(
                total > nodes && total >= expected,
                "{search} {size}: {total}"
            );
            assert_eq!(with, without + 1, "{search} {size}");
        }
    }
    assert_eq!(
        whole, 3,
        "the empty page and both pages of one email are whole"
    );
}
