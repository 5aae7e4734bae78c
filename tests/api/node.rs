//! Fetching by id: `node`, `contact`, `account`, `business`, `tag`.
use serde_json::{Value, json};
use uuid::Uuid;

use crate::common::{failing_fields, single_error, spawn_app};

#[tokio::test]
async fn node_finds_every_type_by_id() {
    let app = spawn_app().await;
    let contact = app.all_contacts().await.remove(0);
    let account = app.all_accounts().await.remove(0);
    let tag = app.all_tags().await.remove(0);
    let query = r#"query($id: ID!) { node(id: $id) { __typename id ... on Contact { email } ... on Account { name } ... on Tag { name business { id } } } }"#;
    for (id, typename) in [
        (contact.id, "Contact"),
        (account.id, "Account"),
        (tag.id, "Tag"),
        (tag.business_id, "Business"),
    ] {
        let data = app.data(query, json!({ "id": id.to_string() })).await;
        assert_eq!(data["node"]["__typename"], typename);
        assert_eq!(data["node"]["id"], id.to_string());
    }
    let data = app
        .data(query, json!({ "id": contact.id.to_string() }))
        .await;
    assert_eq!(data["node"]["email"], json!(contact.email));
}

#[tokio::test]
async fn unknown_ids_read_as_null_and_malformed_ids_are_rejected() {
    let app = spawn_app().await;
    let unknown = Uuid::now_v7().to_string();
    let data = app
        .data(
            r#"query($id: ID!) { node(id: $id) { id } contact(id: $id) { id } account(id: $id) { id }
                 business(id: $id) { id } tag(id: $id) { id } }"#,
            json!({ "id": unknown }),
        )
        .await;
    for field in ["node", "contact", "account", "business", "tag"] {
        assert_eq!(data[field], Value::Null, "{field}");
    }
    let response = app
        .graphql("{ contact(id: \"ct1a2b3c\") { id } }", json!({}))
        .await;
    let error = single_error(&response, "VALIDATION_FAILED");
    assert_eq!(failing_fields(error), vec!["id"]);
}

#[tokio::test]
async fn a_contact_shows_every_field_in_the_api_forms() {
    let app = spawn_app().await;
    let contacts = app.all_contacts().await;
    let c = contacts
        .iter()
        .find(|c| c.address_city.is_some() && c.last_message_at.is_some() && c.account_id.is_some())
        .expect("a rich contact");
    let data = app
        .data(
            r#"query($id: ID!) { contact(id: $id) {
                id externalRef resolutionStatus firstName lastName name email secondaryEmails phone
                secondaryPhones companyName website linkedin role description notes
                address { street city state country postalCode } timezone source leadSource status
                pipelineId pipelineStage messageStatus owner assignees createdBy
                dnd { email sms call whatsapp } isTestContact lastMessageAt createdAt updatedAt
                account { id } business { id } tags { name displayOrder }
            } }"#,
            json!({ "id": c.id.to_string() }),
        )
        .await;
    let got = &data["contact"];
    assert_eq!(got["email"], json!(c.email));
    assert_eq!(got["phone"], json!(c.phone));
    assert_eq!(got["address"]["city"], json!(c.address_city));
    assert_eq!(
        got["account"]["id"],
        json!(c.account_id.map(|id| id.to_string()))
    );
    assert_eq!(got["dnd"]["sms"], json!(c.dnd_sms));
    assert_eq!(got["resolutionStatus"], json!(c.resolution_status));
    assert_eq!(
        got["createdAt"],
        contact_gateway::time::format_millis(c.created_at)
    );
    for field in ["createdAt", "updatedAt", "lastMessageAt"] {
        let text = got[field].as_str().expect("timestamp");
        assert_eq!(text.len(), 24, "{text}");
        assert!(text.ends_with('Z') && text.as_bytes()[19] == b'.', "{text}");
    }
    let expected_name = [c.first_name.clone(), c.last_name.clone()]
        .into_iter()
        .flatten()
        .collect::<Vec<_>>()
        .join(" ");
    assert_eq!(got["name"], expected_name);
}
