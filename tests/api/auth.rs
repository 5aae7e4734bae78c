//! API keys and tenant isolation: every request needs a key; a key sees only its tenant
//! and does only what its scopes allow.
use contact_gateway::auth::api_keys::{self, Scope};
use contact_gateway::tenancy::TenantId;
use entity::prelude::ApiKey;
use sea_orm::EntityTrait;
use serde_json::{Value, json};

use crate::common::{TestApp, client_with_key, single_error, snapshot, spawn_app, spawn_app_with};

async fn post(
    client: &reqwest::Client,
    app: &TestApp,
    query: &str,
    variables: Value,
) -> (u16, Value) {
    let response = client
        .post(format!("{}/graphql", app.base_url))
        .json(&json!({ "query": query, "variables": variables }))
        .send()
        .await
        .expect("response");
    let status = response.status().as_u16();
    (status, response.json().await.expect("json"))
}

async fn demo_tenant(app: &TestApp) -> TenantId {
    contact_gateway::demo::demo_tenant(&app.db)
        .await
        .expect("query")
        .expect("demo tenant")
}

#[tokio::test]
async fn requests_without_a_valid_key_are_unauthenticated() {
    let app = spawn_app_with(|c| c.key_cache_secs = 0).await;
    let query = "{ contacts(first: 1) { totalCount } }";
    let expired = api_keys::create_key(
        &app.db,
        demo_tenant(&app).await,
        &[Scope::ContactsRead],
        None,
        Some(std::time::Duration::ZERO),
    )
    .await
    .expect("key");
    let revoked = api_keys::create_key(
        &app.db,
        demo_tenant(&app).await,
        &[Scope::ContactsRead],
        None,
        None,
    )
    .await
    .expect("key");
    // It works until it is revoked.
    let (status, _) = post(&client_with_key(&revoked.key), &app, query, json!({})).await;
    assert_eq!(status, 200);
    api_keys::revoke_key(&app.db, &revoked.record.prefix)
        .await
        .expect("revoke");

    let mut clients = vec![
        ("no header", reqwest::Client::new()),
        (
            "unknown key",
            client_with_key("sk-this-key-does-not-exist-at-all"),
        ),
        ("expired key", client_with_key(&expired.key)),
        ("revoked key", client_with_key(&revoked.key)),
    ];
    let mut malformed = reqwest::header::HeaderMap::new();
    malformed.insert(
        reqwest::header::AUTHORIZATION,
        "Basic dXNlcjpwYXNz".parse().expect("value"),
    );
    clients.push((
        "malformed header",
        reqwest::Client::builder()
            .default_headers(malformed)
            .build()
            .expect("client"),
    ));
    for (case, client) in clients {
        let (status, body) = post(&client, &app, query, json!({})).await;
        assert_eq!(status, 401, "{case}: {body}");
        single_error(&body, "UNAUTHENTICATED");
    }
}

#[tokio::test]
async fn a_read_only_key_cannot_mutate() {
    let app = spawn_app().await;
    let reader = api_keys::create_key(
        &app.db,
        demo_tenant(&app).await,
        &[Scope::ContactsRead],
        None,
        None,
    )
    .await
    .expect("key");
    let client = client_with_key(&reader.key);
    let contact = app.all_contacts().await.remove(0).id.to_string();
    let (status, data) = post(
        &client,
        &app,
        "{ contacts(first: 1) { totalCount } }",
        json!({}),
    )
    .await;
    assert_eq!(status, 200);
    assert!(data.get("errors").is_none(), "{data}");

    let before = snapshot(&app).await;
    let mutations = [
        "mutation($id: ID!) { updateContact(input: { id: $id, patch: { role: \"x\" } }) { contact { id } } }",
        "mutation($id: ID!) { deleteContact(input: { id: $id }) { deletedContactId } }",
        "mutation($id: ID!) { setContactResolution(input: { id: $id, resolutionStatus: CRM_RESOLVED }) { contact { id } } }",
        "mutation($id: ID!) { addTagsToContact(input: { contactId: $id, tagNames: [\"VIP\"] }) { contact { id } } }",
        "mutation { createContact(input: { contact: { firstName: \"X\" } }) { contact { id } } }",
        "mutation { createAccount(input: { name: \"X\" }) { account { id } } }",
        "mutation { createBusiness(input: { name: \"X\" }) { business { id } } }",
    ];
    for mutation in mutations {
        let (_, body) = post(&client, &app, mutation, json!({ "id": contact })).await;
        let error = single_error(&body, "FORBIDDEN");
        assert!(
            error["message"]
                .as_str()
                .unwrap_or_default()
                .contains("contacts:write"),
            "{error}"
        );
    }
    assert_eq!(snapshot(&app).await, before);
}

#[tokio::test]
async fn another_tenant_sees_and_changes_nothing_of_the_first() {
    let app = spawn_app().await;
    let intruder = crate::common::other_tenant_client(&app).await;
    let contact = app
        .all_contacts()
        .await
        .into_iter()
        .find(|c| c.account_id.is_some() && c.business_id.is_some())
        .expect("contact");
    let account = contact.account_id.expect("account").to_string();
    let business = contact.business_id.expect("business").to_string();
    let tag = app.all_tags().await.remove(0).id.to_string();
    let id = contact.id.to_string();
    let before = snapshot(&app).await;

    let (_, reads) = post(
        &intruder,
        &app,
        r#"query($c: ID!, $a: ID!, $b: ID!, $t: ID!) {
            contact(id: $c) { id } account(id: $a) { id } business(id: $b) { id } tag(id: $t) { id }
            nc: node(id: $c) { id } na: node(id: $a) { id } nb: node(id: $b) { id } nt: node(id: $t) { id }
            contacts { totalCount } accounts { totalCount } businesses { totalCount } tags { totalCount }
            byAccount: contacts(filter: { accountId: $a }) { totalCount nodes { id } }
            byBusiness: contacts(filter: { businessId: $b }) { totalCount }
            byTag: contacts(filter: { tag: "VIP" }) { totalCount }
            byEmail: contacts(filter: { search: "a" }) { totalCount }
            tagsOfBusiness: tags(filter: { businessId: $b }) { totalCount }
        }"#,
        json!({ "c": id, "a": account, "b": business, "t": tag }),
    )
    .await;
    assert!(reads.get("errors").is_none(), "{reads}");
    let data = &reads["data"];
    for field in [
        "contact", "account", "business", "tag", "nc", "na", "nb", "nt",
    ] {
        assert_eq!(data[field], Value::Null, "{field}: {data}");
    }
    for field in [
        "contacts",
        "accounts",
        "businesses",
        "tags",
        "byAccount",
        "byBusiness",
        "byTag",
        "byEmail",
        "tagsOfBusiness",
    ] {
        assert_eq!(data[field]["totalCount"], 0, "{field}: {data}");
    }

    let not_found = [
        "mutation($c: ID!) { updateContact(input: { id: $c, patch: { role: \"x\" } }) { contact { id } } }",
        "mutation($c: ID!) { deleteContact(input: { id: $c }) { deletedContactId } }",
        "mutation($c: ID!) { setContactResolution(input: { id: $c, resolutionStatus: CRM_RESOLVED }) { contact { id } } }",
        "mutation($c: ID!) { addTagsToContact(input: { contactId: $c, tagNames: [\"VIP\"] }) { contact { id } } }",
        "mutation($c: ID!) { removeTagsFromContact(input: { contactId: $c, tagNames: [\"VIP\"] }) { contact { id } } }",
        "mutation($a: ID!) { updateAccount(input: { id: $a, patch: { name: \"x\" } }) { account { id } } }",
        "mutation($a: ID!) { deleteAccount(input: { id: $a }) { deletedAccountId } }",
        "mutation($b: ID!) { updateBusiness(input: { id: $b, patch: { name: \"x\" } }) { business { id } } }",
        "mutation($b: ID!) { deleteBusiness(input: { id: $b }) { deletedBusinessId } }",
        "mutation($t: ID!) { updateTag(input: { id: $t, patch: { name: \"x\" } }) { tag { id } } }",
        "mutation($t: ID!) { deleteTag(input: { id: $t }) { deletedTagId } }",
    ];
    let vars = json!({ "c": id, "a": account, "b": business, "t": tag });
    for mutation in not_found {
        let (_, body) = post(&intruder, &app, mutation, vars.clone()).await;
        single_error(&body, "NOT_FOUND");
    }
    let invalid = [
        "mutation($a: ID!) { createContact(input: { contact: { firstName: \"x\", accountId: $a } }) { contact { id } } }",
        "mutation($b: ID!) { createTag(input: { businessId: $b, name: \"x\" }) { tag { id } } }",
    ];
    for mutation in invalid {
        let (_, body) = post(&intruder, &app, mutation, vars.clone()).await;
        single_error(&body, "VALIDATION_FAILED");
    }
    assert_eq!(
        snapshot(&app).await,
        before,
        "the first tenant's data is unchanged"
    );
}

#[tokio::test]
async fn keys_are_stored_only_as_hashes_and_cost_no_sql_once_verified() {
    let app = spawn_app().await;
    let stored = ApiKey::find().all(&app.db).await.expect("keys");
    let demo = stored
        .iter()
        .find(|k| k.key_hash == api_keys::hash_key(&app.key))
        .expect("demo key stored by hash");
    let dump = format!("{stored:?}");
    assert!(!dump.contains(&app.key), "the key is not stored in clear");
    assert!(
        !dump.contains(&app.key[11..]),
        "no part beyond the prefix is stored"
    );
    assert_eq!(demo.prefix, app.key[..11]);

    let before = app.sql_statements().await;
    for _ in 0..5 {
        app.data("{ __typename }", json!({})).await;
    }
    assert_eq!(
        app.sql_statements().await,
        before,
        "a cached key costs no SQL"
    );
}

#[tokio::test]
async fn graphiql_opens_with_the_demo_key() {
    let app = spawn_app().await;
    let page = app.graphiql_page().await;
    assert!(page.contains(&app.key), "the page carries the demo key");
}

#[tokio::test]
async fn last_used_is_written_in_batches_not_per_request() {
    let app = spawn_app().await;
    let hash = api_keys::hash_key(&app.key);
    let stored = |app: &TestApp| {
        let db = app.db.clone();
        let hash = hash.clone();
        async move {
            ApiKey::find()
                .all(&db)
                .await
                .expect("keys")
                .into_iter()
                .find(|k| k.key_hash == hash)
                .expect("key")
        }
    };
    let before = app.sql_statements().await;
    app.data("{ contacts(first: 1) { totalCount } }", json!({}))
        .await;
    assert_eq!(
        app.sql_statements().await - before,
        2,
        "page and count only"
    );
    assert_eq!(
        stored(&app).await.last_used_at,
        None,
        "no write per request"
    );
    app.auth.flush_last_used().await;
    assert!(stored(&app).await.last_used_at.is_some());
}

#[tokio::test]
async fn each_start_revokes_the_previous_demo_key() {
    let app = spawn_app_with(|c| c.key_cache_secs = 0).await;
    let mut config = crate::common::test_config(&app.database_url);
    config.key_cache_secs = 0;
    let restarted = contact_gateway::startup::Application::build(&config)
        .await
        .expect("second start");
    let new_key = restarted.demo_key().expect("a new demo key").to_string();
    assert_ne!(new_key, app.key);
    let (status, body) = post(&app.client, &app, "{ __typename }", json!({})).await;
    assert_eq!(status, 401, "the previous demo key is revoked: {body}");
    let (status, _) = post(
        &client_with_key(&new_key),
        &app,
        "{ __typename }",
        json!({}),
    )
    .await;
    assert_eq!(status, 200, "the first server accepts the new key too");
}
