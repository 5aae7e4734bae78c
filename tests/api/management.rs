//! Managing accounts, businesses and tags.
use serde_json::{Value, json};

use crate::common::{TestApp, failing_fields, single_error, spawn_app};

async fn count(app: &TestApp, query: &str) -> u64 {
    let data = app.data(query, json!({})).await;
    data.as_object()
        .and_then(|o| o.values().next())
        .and_then(|v| v["totalCount"].as_u64())
        .expect("totalCount")
}

#[tokio::test]
async fn accounts_are_created_renamed_and_deleted_when_empty() {
    let app = spawn_app().await;
    let before = count(&app, "{ accounts { totalCount } }").await;
    let data = app
        .data(
            r#"mutation { createAccount(input: { name: "  Zeta Labs  ", externalRef: "CRM-ACC-9", clientMutationId: "c1" }) {
                clientMutationId account { id name externalRef contacts { totalCount } } } }"#,
            json!({}),
        )
        .await;
    let account = &data["createAccount"]["account"];
    assert_eq!(account["name"], "Zeta Labs");
    assert_eq!(account["externalRef"], "CRM-ACC-9");
    assert_eq!(account["contacts"]["totalCount"], 0);
    let id = account["id"].clone();
    assert_eq!(count(&app, "{ accounts { totalCount } }").await, before + 1);

    let data = app
        .data(
            "mutation($id: ID!) { updateAccount(input: { id: $id, patch: { name: \"Zeta Labs AG\", externalRef: null } }) { account { name externalRef } } }",
            json!({ "id": id }),
        )
        .await;
    assert_eq!(
        data["updateAccount"]["account"],
        json!({ "name": "Zeta Labs AG", "externalRef": null })
    );
    let empty_name = app
        .graphql(
            "mutation($id: ID!) { updateAccount(input: { id: $id, patch: { name: \"  \" } }) { account { name } } }",
            json!({ "id": id }),
        )
        .await;
    assert_eq!(
        failing_fields(single_error(&empty_name, "VALIDATION_FAILED")),
        vec!["input.patch.name"]
    );

    let delete = "mutation($id: ID!) { deleteAccount(input: { id: $id }) { deletedAccountId } }";
    let data = app.data(delete, json!({ "id": id })).await;
    assert_eq!(data["deleteAccount"]["deletedAccountId"], id);
    assert_eq!(count(&app, "{ accounts { totalCount } }").await, before);
    single_error(&app.graphql(delete, json!({ "id": id })).await, "NOT_FOUND");
}

#[tokio::test]
async fn an_account_or_business_with_contacts_cannot_be_deleted() {
    let app = spawn_app().await;
    let contacts = app.all_contacts().await;
    let account = contacts.iter().find_map(|c| c.account_id).expect("account");
    let business = contacts
        .iter()
        .find_map(|c| c.business_id)
        .expect("business");
    let in_account = contacts
        .iter()
        .filter(|c| c.account_id == Some(account))
        .count();
    let accounts_before = app.all_accounts().await.len();
    let response = app
        .graphql(
            "mutation($id: ID!) { deleteAccount(input: { id: $id }) { deletedAccountId } }",
            json!({ "id": account.to_string() }),
        )
        .await;
    let error = single_error(&response, "CONFLICT");
    assert!(
        error["message"]
            .as_str()
            .expect("message")
            .contains(&format!("{in_account} contacts")),
        "{error}"
    );
    let response = app
        .graphql(
            "mutation($id: ID!) { deleteBusiness(input: { id: $id }) { deletedBusinessId } }",
            json!({ "id": business.to_string() }),
        )
        .await;
    single_error(&response, "CONFLICT");
    assert_eq!(app.all_accounts().await.len(), accounts_before);
}

#[tokio::test]
async fn tags_are_managed_per_business() {
    let app = spawn_app().await;
    let data = app
        .data(
            r#"mutation { createBusiness(input: { name: "Tag Lab" }) { business { id } } }"#,
            json!({}),
        )
        .await;
    let business = data["createBusiness"]["business"]["id"].clone();
    let create = "mutation($b: ID!, $name: String!) { createTag(input: { businessId: $b, name: $name }) { tag { id name displayOrder business { id } } } }";
    let first = app
        .data(create, json!({ "b": business, "name": "Alpha" }))
        .await;
    let second = app
        .data(create, json!({ "b": business, "name": "Beta" }))
        .await;
    assert_eq!(first["createTag"]["tag"]["displayOrder"], 1);
    assert_eq!(second["createTag"]["tag"]["displayOrder"], 2);
    assert_eq!(first["createTag"]["tag"]["business"]["id"], business);

    let duplicate = app
        .graphql(create, json!({ "b": business, "name": "Alpha" }))
        .await;
    assert_eq!(
        failing_fields(single_error(&duplicate, "VALIDATION_FAILED")),
        vec!["input.name"]
    );

    let beta = second["createTag"]["tag"]["id"].clone();
    let rename = app
        .graphql(
            "mutation($id: ID!) { updateTag(input: { id: $id, patch: { name: \"Alpha\" } }) { tag { name } } }",
            json!({ "id": beta }),
        )
        .await;
    single_error(&rename, "VALIDATION_FAILED");
    let data = app
        .data(
            "mutation($id: ID!) { updateTag(input: { id: $id, patch: { name: \"Gamma\", displayOrder: 0 } }) { tag { name displayOrder } } }",
            json!({ "id": beta }),
        )
        .await;
    assert_eq!(
        data["updateTag"]["tag"],
        json!({ "name": "Gamma", "displayOrder": 0 })
    );

    // A tag in use: deleting it removes it from its contacts.
    let contact = app
        .data(
            "mutation($b: ID!) { createContact(input: { contact: { firstName: \"Tess\", businessId: $b } }) { contact { id } } }",
            json!({ "b": business }),
        )
        .await["createContact"]["contact"]["id"]
        .clone();
    app.data(
        "mutation($c: ID!, $t: ID!) { addTagsToContact(input: { contactId: $c, tagIds: [$t] }) { contact { id } } }",
        json!({ "c": contact, "t": beta }),
    )
    .await;
    let data = app
        .data(
            "mutation($id: ID!) { deleteTag(input: { id: $id }) { deletedTagId } }",
            json!({ "id": beta }),
        )
        .await;
    assert_eq!(data["deleteTag"]["deletedTagId"], beta);
    let data = app
        .data(
            "query($id: ID!) { contact(id: $id) { tags { id } } }",
            json!({ "id": contact }),
        )
        .await;
    assert_eq!(data["contact"]["tags"], json!([]));

    // A tag of another business cannot be put on the contact.
    let other = app
        .all_tags()
        .await
        .into_iter()
        .find(|t| Value::String(t.business_id.to_string()) != business)
        .expect("another business's tag");
    let response = app
        .graphql(
            "mutation($c: ID!, $t: ID!) { addTagsToContact(input: { contactId: $c, tagIds: [$t] }) { contact { id } } }",
            json!({ "c": contact, "t": other.id.to_string() }),
        )
        .await;
    assert_eq!(
        failing_fields(single_error(&response, "VALIDATION_FAILED")),
        vec!["input.tagIds[0]"]
    );
}
