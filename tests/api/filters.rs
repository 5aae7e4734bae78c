//! Every contact filter against the same filter computed in Rust over the stored rows.
use std::collections::{BTreeSet, HashMap};

use entity::contact;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::common::{TestApp, failing_fields, single_error, spawn_app};

type Predicate<'a> = Box<dyn Fn(&contact::Model) -> bool + 'a>;

fn set(ids: Vec<String>) -> BTreeSet<String> {
    ids.into_iter().collect()
}

async fn assert_filter(
    app: &TestApp,
    contacts: &[contact::Model],
    filter: Value,
    pred: Predicate<'_>,
) {
    let expected: BTreeSet<String> = contacts
        .iter()
        .filter(|c| pred(c))
        .map(|c| c.id.to_string())
        .collect();
    let got = set(app.contact_ids(filter.clone()).await);
    assert_eq!(got, expected, "filter {filter}");
}

fn full_name(c: &contact::Model) -> String {
    [c.first_name.clone(), c.last_name.clone()]
        .into_iter()
        .flatten()
        .collect::<Vec<_>>()
        .join(" ")
}

fn searchable(c: &contact::Model) -> Vec<String> {
    [
        Some(full_name(c)),
        c.email.clone(),
        c.phone.clone(),
        c.company_name.clone(),
    ]
    .into_iter()
    .flatten()
    .map(|s| s.to_lowercase())
    .collect()
}

fn search_matches(c: &contact::Model, needle: &str) -> bool {
    let needle = needle.to_lowercase();
    searchable(c).iter().any(|field| field.contains(&needle))
}

#[tokio::test]
async fn search_is_a_case_insensitive_literal_substring_match() {
    let app = spawn_app().await;
    let contacts = app.all_contacts().await;
    let some = contacts
        .iter()
        .find(|c| c.phone.is_some() && c.email.is_some() && c.company_name.is_some())
        .expect("a complete contact");
    let phone_part = some.phone.as_deref().expect("phone")[3..9].to_string();
    let email_part = some.email.as_deref().expect("email")[..6].to_uppercase();
    for needle in [
        "ANNA".to_string(),
        "ue".to_string(),
        "o'brien".to_string(),
        "anna garc".to_string(),
        "robotics".to_string(),
        phone_part,
        email_part,
        "%".to_string(),
        "_".to_string(),
        "a%".to_string(),
        "a\\".to_string(),
        "q'".to_string(),
        "zzzz-nothing".to_string(),
    ] {
        let n = needle.clone();
        assert_filter(
            &app,
            &contacts,
            json!({ "search": needle }),
            Box::new(move |c| search_matches(c, &n)),
        )
        .await;
    }
}

#[tokio::test]
async fn exact_field_filters_match_what_is_stored() {
    let app = spawn_app().await;
    let contacts = app.all_contacts().await;
    let sample = contacts
        .iter()
        .find(|c| {
            c.status.is_some()
                && c.pipeline_id.is_some()
                && c.pipeline_stage.is_some()
                && c.lead_source.is_some()
                && c.owner.is_some()
                && c.message_status.is_some()
                && c.account_id.is_some()
                && c.business_id.is_some()
                && c.email.is_some()
                && c.phone.is_some()
        })
        .expect("a contact with every field")
        .clone();

    let text = |v: &Option<String>| v.clone().expect("value");
    let cases: Vec<(Value, Predicate)> = vec![
        (
            json!({ "email": text(&sample.email).to_uppercase() }),
            Box::new(|c| c.email == sample.email),
        ),
        (
            json!({ "status": text(&sample.status) }),
            Box::new(|c| c.status == sample.status),
        ),
        (
            json!({ "pipelineId": text(&sample.pipeline_id) }),
            Box::new(|c| c.pipeline_id == sample.pipeline_id),
        ),
        (
            json!({ "pipelineStage": text(&sample.pipeline_stage) }),
            Box::new(|c| c.pipeline_stage == sample.pipeline_stage),
        ),
        (
            json!({ "source": text(&sample.source) }),
            Box::new(|c| c.source == sample.source),
        ),
        (
            json!({ "leadSource": text(&sample.lead_source) }),
            Box::new(|c| c.lead_source == sample.lead_source),
        ),
        (
            json!({ "owner": text(&sample.owner) }),
            Box::new(|c| c.owner == sample.owner),
        ),
        (
            json!({ "messageStatus": text(&sample.message_status) }),
            Box::new(|c| c.message_status == sample.message_status),
        ),
        (
            json!({ "accountId": sample.account_id.expect("account").to_string() }),
            Box::new(|c| c.account_id == sample.account_id),
        ),
        (
            json!({ "businessId": sample.business_id.expect("business").to_string() }),
            Box::new(|c| c.business_id == sample.business_id),
        ),
        (
            json!({ "resolutionStatus": "CRM_RESOLVED" }),
            Box::new(|c| c.resolution_status == "CRM_RESOLVED"),
        ),
        (
            json!({ "isTestContact": true }),
            Box::new(|c| c.is_test_contact),
        ),
        (
            json!({ "accountId": Uuid::now_v7().to_string() }),
            Box::new(|_| false),
        ),
    ];
    for (filter, pred) in cases {
        assert_filter(&app, &contacts, filter, pred).await;
    }
}

#[tokio::test]
async fn phone_filter_compares_in_e164() {
    let app = spawn_app().await;
    let contacts = app.all_contacts().await;
    let german = contacts
        .iter()
        .filter_map(|c| c.phone.clone())
        .find(|p| p.starts_with("+49151"))
        .expect("a German mobile number");
    // +4915112345678 written the way people write it: +49 151 1234 5678.
    let spaced = format!(
        "{} {} {} {}",
        &german[..3],
        &german[3..6],
        &german[6..10],
        &german[10..]
    );
    let target = german.clone();
    assert_filter(
        &app,
        &contacts,
        json!({ "phone": spaced }),
        Box::new(move |c| c.phone.as_deref() == Some(target.as_str())),
    )
    .await;
}

#[tokio::test]
async fn tag_and_assignee_filters_follow_the_links() {
    let app = spawn_app().await;
    let contacts = app.all_contacts().await;
    let tags = app.tag_names_by_contact().await;
    let assignees = app.assignees_by_contact().await;
    let has = |map: &HashMap<Uuid, Vec<String>>, c: &contact::Model, name: &str| {
        map.get(&c.id)
            .is_some_and(|names| names.iter().any(|n| n == name))
    };
    assert_filter(
        &app,
        &contacts,
        json!({ "tag": "VIP" }),
        Box::new(|c| has(&tags, c, "VIP")),
    )
    .await;
    assert_filter(
        &app,
        &contacts,
        json!({ "tagsAny": ["Partner", "Churn risk"] }),
        Box::new(|c| has(&tags, c, "Partner") || has(&tags, c, "Churn risk")),
    )
    .await;
    assert_filter(
        &app,
        &contacts,
        json!({ "assignee": "user-ben" }),
        Box::new(|c| has(&assignees, c, "user-ben")),
    )
    .await;
}

#[tokio::test]
async fn date_ranges_and_boolean_combinations() {
    let app = spawn_app().await;
    let contacts = app.all_contacts().await;
    let mut created: Vec<i64> = contacts.iter().map(|c| c.created_at).collect();
    created.sort();
    let middle = created[created.len() / 2];
    let middle_text = contact_gateway::time::format_millis(middle);
    let day = &middle_text[..10];
    let day_start = chrono::NaiveDate::parse_from_str(day, "%Y-%m-%d")
        .expect("date")
        .and_hms_opt(0, 0, 0)
        .expect("midnight")
        .and_utc()
        .timestamp_millis();

    let cases: Vec<(Value, Predicate)> = vec![
        (
            json!({ "createdAt": { "gte": middle_text } }),
            Box::new(move |c| c.created_at >= middle),
        ),
        (
            json!({ "createdAt": { "gt": middle_text } }),
            Box::new(move |c| c.created_at > middle),
        ),
        (
            json!({ "createdAt": { "lt": middle_text } }),
            Box::new(move |c| c.created_at < middle),
        ),
        (
            json!({ "createdAt": { "lte": middle_text } }),
            Box::new(move |c| c.created_at <= middle),
        ),
        (
            json!({ "createdAt": { "on": day } }),
            Box::new(move |c| c.created_at >= day_start && c.created_at < day_start + 86_400_000),
        ),
        (
            json!({ "updatedAt": { "gt": middle_text } }),
            Box::new(move |c| c.updated_at > middle),
        ),
        (
            json!({ "lastMessageAt": { "lt": middle_text } }),
            Box::new(move |c| c.last_message_at.is_some_and(|t| t < middle)),
        ),
        (
            json!({ "or": [{ "status": "won" }, { "status": "lost" }] }),
            Box::new(|c| matches!(c.status.as_deref(), Some("won" | "lost"))),
        ),
        (
            json!({ "not": { "status": "won" }, "isTestContact": false }),
            Box::new(|c| c.status.as_deref() != Some("won") && !c.is_test_contact),
        ),
        (
            json!({ "and": [{ "source": "email" }, { "not": { "resolutionStatus": "UNRESOLVED" } }] }),
            Box::new(|c| {
                c.source.as_deref() == Some("email") && c.resolution_status != "UNRESOLVED"
            }),
        ),
    ];
    for (filter, pred) in cases {
        assert_filter(&app, &contacts, filter, pred).await;
    }
}

#[tokio::test]
async fn invalid_filters_list_every_failing_field() {
    let app = spawn_app().await;
    let query = "query($filter: ContactFilter) { contacts(filter: $filter) { totalCount } }";
    let response = app
        .graphql(
            query,
            json!({ "filter": {
                "search": "x".repeat(256),
                "phone": "not a phone",
                "accountId": "42",
                "or": [{ "businessId": "nope" }],
            }}),
        )
        .await;
    let error = single_error(&response, "VALIDATION_FAILED");
    assert_eq!(
        failing_fields(error),
        vec![
            "filter.search",
            "filter.phone",
            "filter.accountId",
            "filter.or[0].businessId"
        ]
    );
    // 255 characters is still fine.
    let ok = app
        .graphql(query, json!({ "filter": { "search": "x".repeat(255) } }))
        .await;
    assert!(ok.get("errors").is_none(), "{ok}");
}

#[tokio::test]
async fn accounts_and_tags_filter_by_name() {
    let app = spawn_app().await;
    let accounts = app.all_accounts().await;
    let data = app
        .data(
            r#"{ accounts(filter: { search: "ROBOT" }) { nodes { name } }
                 tags(first: 100, filter: { name: "VIP" }) { totalCount nodes { name } } }"#,
            json!({}),
        )
        .await;
    let expected: Vec<String> = accounts
        .iter()
        .filter(|a| a.name.to_lowercase().contains("robot"))
        .map(|a| a.name.clone())
        .collect();
    let got: Vec<String> = data["accounts"]["nodes"]
        .as_array()
        .expect("nodes")
        .iter()
        .map(|n| n["name"].as_str().expect("name").to_string())
        .collect();
    assert_eq!(got, expected);
    let vip_tags = app
        .all_tags()
        .await
        .into_iter()
        .filter(|t| t.name == "VIP")
        .count();
    assert_eq!(data["tags"]["totalCount"], vip_tags);
}

/// Every page of `contacts(filter: { search })`, `size` at a time, and `totalCount`.
async fn search_pages(app: &TestApp, needle: &str, size: usize) -> (Vec<String>, u64) {
    let query = r#"query($s: String, $n: Int, $after: String) {
        contacts(filter: { search: $s }, first: $n, after: $after) {
            totalCount
            edges { node { id } }
            pageInfo { hasNextPage endCursor }
        }
    }"#;
    let (mut ids, mut after) = (Vec::new(), Value::Null);
    loop {
        let data = app
            .data(query, json!({ "s": needle, "n": size, "after": after }))
            .await;
        let conn = &data["contacts"];
        for edge in conn["edges"].as_array().expect("edges") {
            ids.push(edge["node"]["id"].as_str().expect("id").to_string());
        }
        if conn["pageInfo"]["hasNextPage"] != true {
            return (ids, conn["totalCount"].as_u64().expect("totalCount"));
        }
        after = conn["pageInfo"]["endCursor"].clone();
    }
}

/// A search finds its contacts by walking the order (strings many contacts contain, and
/// strings of 1–2 characters) or through the trigram index (strings few contain); each
/// plan gives the same pages, in the same order, forwards and backwards, as the filter
/// computed here over every stored contact.
#[tokio::test]
async fn a_search_pages_alike_whether_it_walks_the_order_or_reads_the_index() {
    use contact_gateway::contacts::ContactFilter;
    use contact_gateway::contacts::search::{PROBE_MATCHES, SearchPlan, choose};

    let app = spawn_app().await;
    let tenant = contact_gateway::demo::default_tenant(&app.db)
        .await
        .expect("tenant")
        .expect("demo tenant");
    contact_gateway::demo::seed_contacts(&app.db, tenant, 24_000, 5)
        .await
        .expect("seed");
    let mut contacts = app.all_contacts().await;
    contacts.sort_by_key(|c| std::cmp::Reverse((c.created_at, c.id)));
    let sqlite = app.db.get_database_backend() == sea_orm::DbBackend::Sqlite;

    // (string, the plan it gets on SQLite, on PostgreSQL)
    let cases = [
        ("MUELLER", SearchPlan::Walk, SearchPlan::Index),
        ("tomás mueller", SearchPlan::Index, SearchPlan::Index),
        ("ue", SearchPlan::Walk, SearchPlan::Walk),
        ("zzq", SearchPlan::Index, SearchPlan::Index),
        ("q", SearchPlan::Walk, SearchPlan::Walk),
    ];
    for (needle, on_sqlite, on_postgres) in cases {
        let filter = ContactFilter {
            search: Some(needle.into()),
            ..Default::default()
        };
        let plan = choose(&app.db, &filter).await.expect("plan");
        let expected_plan = if sqlite { on_sqlite } else { on_postgres };
        assert_eq!(plan, Some(expected_plan), "{needle}");
        let expected: Vec<String> = contacts
            .iter()
            .filter(|c| search_matches(c, needle))
            .map(|c| c.id.to_string())
            .collect();
        if on_sqlite == SearchPlan::Walk && needle.chars().count() >= 3 {
            assert!(expected.len() >= PROBE_MATCHES as usize, "{needle}");
        }
        let (ids, total) = search_pages(&app, needle, 25).await;
        assert_eq!(ids, expected, "{needle}");
        assert_eq!(total, expected.len() as u64, "{needle}");

        let last = app
            .data(
                "query($s: String) { contacts(filter: { search: $s }, last: 7) { nodes { id } } }",
                json!({ "s": needle }),
            )
            .await;
        let tail: Vec<&str> = last["contacts"]["nodes"]
            .as_array()
            .expect("nodes")
            .iter()
            .map(|n| n["id"].as_str().expect("id"))
            .collect();
        let from = expected.len().saturating_sub(7);
        assert_eq!(
            tail,
            expected[from..]
                .iter()
                .map(String::as_str)
                .collect::<Vec<_>>()
        );
    }
}
