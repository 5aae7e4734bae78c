//! Contact mutations: partial patches, validation that writes nothing, conditional updates
//! and the 32-writer race, creation, deletion, tags and resolution.
use entity::contact;
use entity::prelude::Contact;
use sea_orm::EntityTrait;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::common::{TestApp, failing_fields, single_error, snapshot, spawn_app, spawn_app_with};

async fn stored(app: &TestApp, id: Uuid) -> contact::Model {
    Contact::find_by_id(id)
        .one(&app.db)
        .await
        .expect("query")
        .expect("contact")
}

const UPDATE: &str = r#"mutation($input: UpdateContactInput!) {
    updateContact(input: $input) {
        clientMutationId
        contact { id name firstName lastName email phone role notes website timezone updatedAt
                  secondaryEmails assignees address { city street } dnd { sms email } }
    }
}"#;

async fn a_contact(app: &TestApp) -> contact::Model {
    app.all_contacts()
        .await
        .into_iter()
        .find(|c| c.notes.is_some() && c.role.is_some() && c.address_city.is_some())
        .expect("a contact with notes, role and address")
}

#[tokio::test]
async fn a_patch_changes_only_the_fields_it_names_and_null_clears() {
    let app = spawn_app().await;
    let before = a_contact(&app).await;
    let data = app
        .data(
            UPDATE,
            json!({ "input": { "id": before.id.to_string(), "clientMutationId": "m1",
                "patch": { "role": "Chief Listener", "notes": null, "address": { "street": null },
                           "dnd": { "sms": true } } } }),
        )
        .await;
    let payload = &data["updateContact"];
    assert_eq!(payload["clientMutationId"], "m1");
    assert_eq!(payload["contact"]["role"], "Chief Listener");
    assert_eq!(payload["contact"]["notes"], Value::Null);

    let after = stored(&app, before.id).await;
    let mut expected = before.clone();
    expected.role = Some("Chief Listener".into());
    expected.notes = None;
    expected.address_street = None;
    expected.dnd_sms = true;
    expected.updated_at = after.updated_at;
    assert_eq!(after, expected, "only the named fields changed");
    assert!(after.updated_at > before.updated_at);
    assert_eq!(
        payload["contact"]["updatedAt"],
        contact_gateway::time::format_millis(after.updated_at)
    );
}

#[tokio::test]
async fn name_is_split_and_values_are_normalised() {
    let app = spawn_app().await;
    let before = a_contact(&app).await;
    let data = app
        .data(
            UPDATE,
            json!({ "input": { "id": before.id.to_string(), "patch": {
                "name": "Henrik B. Larsen", "email": " Henrik.Larsen@Example.COM ",
                "phone": "+49 151 2345 6789", "timezone": "Europe/Copenhagen",
                "secondaryEmails": ["H@Example.com", "h@example.com"], "assignees": ["user-x"] } } }),
        )
        .await;
    let c = &data["updateContact"]["contact"];
    assert_eq!(c["firstName"], "Henrik B.");
    assert_eq!(c["lastName"], "Larsen");
    assert_eq!(c["name"], "Henrik B. Larsen");
    assert_eq!(c["email"], "henrik.larsen@example.com");
    assert_eq!(c["phone"], "+4915123456789");
    assert_eq!(c["secondaryEmails"], json!(["h@example.com"]));
    assert_eq!(c["assignees"], json!(["user-x"]));
    // The new values are searchable and filterable at once.
    let ids = app
        .contact_ids(json!({ "search": "larsen", "assignee": "user-x" }))
        .await;
    assert_eq!(ids, vec![before.id.to_string()]);
}

#[tokio::test]
async fn a_patch_that_changes_nothing_keeps_updated_at() {
    let app = spawn_app().await;
    let before = a_contact(&app).await;
    let snap = snapshot(&app).await;
    for patch in [
        json!({}),
        json!({ "role": before.role, "notes": before.notes }),
    ] {
        let data = app
            .data(
                UPDATE,
                json!({ "input": { "id": before.id.to_string(), "patch": patch } }),
            )
            .await;
        assert_eq!(
            data["updateContact"]["contact"]["updatedAt"],
            contact_gateway::time::format_millis(before.updated_at)
        );
    }
    assert_eq!(snapshot(&app).await, snap);
}

#[tokio::test]
async fn every_real_change_moves_updated_at_strictly_forward() {
    let app = spawn_app().await;
    let c = a_contact(&app).await;
    let mut last = c.updated_at;
    for i in 0..5 {
        app.data(
            UPDATE,
            json!({ "input": { "id": c.id.to_string(), "patch": { "role": format!("role {i}") } } }),
        )
        .await;
        let now = stored(&app, c.id).await.updated_at;
        assert!(now > last, "{now} > {last}");
        last = now;
    }
}

#[tokio::test]
async fn invalid_input_lists_every_failure_and_writes_nothing() {
    let app = spawn_app().await;
    let c = a_contact(&app).await;
    let snap = snapshot(&app).await;
    let response = app
        .graphql(
            UPDATE,
            json!({ "input": { "id": c.id.to_string(), "patch": {
                "firstName": "x".repeat(101),
                "email": "not-an-email",
                "secondaryEmails": ["ok@example.com", "nope"],
                "phone": "0151 2345",
                "website": "ftp://example.com",
                "linkedin": "x".repeat(251),
                "role": "x".repeat(76),
                "timezone": "Mars/Olympus_Mons",
                "accountId": "42",
                "businessId": Uuid::now_v7().to_string(),
            } } }),
        )
        .await;
    let error = single_error(&response, "VALIDATION_FAILED");
    let mut fields = failing_fields(error);
    fields.sort();
    let mut expected = vec![
        "input.patch.firstName",
        "input.patch.email",
        "input.patch.secondaryEmails[1]",
        "input.patch.phone",
        "input.patch.website",
        "input.patch.linkedin",
        "input.patch.role",
        "input.patch.timezone",
        "input.patch.accountId",
        "input.patch.businessId",
    ];
    expected.sort();
    assert_eq!(fields, expected, "{response}");
    assert_eq!(snapshot(&app).await, snap);

    let both = app
        .graphql(
            UPDATE,
            json!({ "input": { "id": c.id.to_string(), "patch": { "name": "A B", "lastName": "C" } } }),
        )
        .await;
    let error = single_error(&both, "VALIDATION_FAILED");
    assert_eq!(failing_fields(error), vec!["input.patch.name"]);
    assert_eq!(snapshot(&app).await, snap);
}

#[tokio::test]
async fn unknown_ids_are_not_found_and_malformed_ids_invalid() {
    let app = spawn_app().await;
    let snap = snapshot(&app).await;
    let unknown = Uuid::now_v7().to_string();
    let cases = [
        (
            UPDATE,
            json!({ "input": { "id": unknown, "patch": { "role": "x" } } }),
        ),
        (
            "mutation($input: DeleteContactInput!) { deleteContact(input: $input) { deletedContactId } }",
            json!({ "input": { "id": unknown } }),
        ),
        (
            "mutation($input: ContactTagsInput!) { addTagsToContact(input: $input) { contact { id } } }",
            json!({ "input": { "contactId": unknown, "tagNames": ["VIP"] } }),
        ),
        (
            "mutation($input: SetContactResolutionInput!) { setContactResolution(input: $input) { contact { id } } }",
            json!({ "input": { "id": unknown, "resolutionStatus": "CRM_RESOLVED" } }),
        ),
    ];
    for (query, variables) in cases {
        let response = app.graphql(query, variables).await;
        single_error(&response, "NOT_FOUND");
    }
    let response = app
        .graphql(
            UPDATE,
            json!({ "input": { "id": "ct1a2b3c", "patch": {} } }),
        )
        .await;
    assert_eq!(
        failing_fields(single_error(&response, "VALIDATION_FAILED")),
        vec!["input.id"]
    );
    assert_eq!(snapshot(&app).await, snap);
}

#[tokio::test]
async fn a_stale_expected_updated_at_fails_and_writes_nothing() {
    let app = spawn_app().await;
    let c = a_contact(&app).await;
    let snap = snapshot(&app).await;
    let stale = contact_gateway::time::format_millis(c.updated_at - 1);
    let response = app
        .graphql(
            UPDATE,
            json!({ "input": { "id": c.id.to_string(), "expectedUpdatedAt": stale, "patch": { "role": "x" } } }),
        )
        .await;
    single_error(&response, "PRECONDITION_FAILED");
    assert_eq!(snapshot(&app).await, snap);

    let current = contact_gateway::time::format_millis(c.updated_at);
    let data = app
        .data(
            UPDATE,
            json!({ "input": { "id": c.id.to_string(), "expectedUpdatedAt": current, "patch": { "role": "x" } } }),
        )
        .await;
    assert_eq!(data["updateContact"]["contact"]["role"], "x");
}

#[tokio::test]
async fn of_32_racing_conditional_updates_exactly_one_wins() {
    let app = spawn_app().await;
    let c = a_contact(&app).await;
    let expected = contact_gateway::time::format_millis(c.updated_at);
    let mut tasks = Vec::new();
    for i in 0..32 {
        let (client, url, id, expected) = (
            app.client.clone(),
            format!("{}/graphql", app.base_url),
            c.id.to_string(),
            expected.clone(),
        );
        tasks.push(tokio::spawn(async move {
            let body = json!({ "query": UPDATE, "variables": { "input": {
                "id": id, "expectedUpdatedAt": expected, "patch": { "notes": format!("writer {i}") } } } });
            let response: Value = client
                .post(url)
                .json(&body)
                .send()
                .await
                .expect("send")
                .json()
                .await
                .expect("json");
            (i, response)
        }));
    }
    let mut winners = Vec::new();
    let mut preconditions = 0;
    for task in tasks {
        let (i, response) = task.await.expect("task");
        match response.get("errors") {
            None => winners.push(i),
            Some(_) => {
                single_error(&response, "PRECONDITION_FAILED");
                preconditions += 1;
            }
        }
    }
    assert_eq!(winners.len(), 1, "winners {winners:?}");
    assert_eq!(preconditions, 31);
    let stored = stored(&app, c.id).await;
    assert_eq!(stored.notes, Some(format!("writer {}", winners[0])));
}

#[tokio::test]
async fn contacts_are_created_and_deleted() {
    let app = spawn_app().await;
    let account = app.all_accounts().await.remove(0);
    let data = app
        .data(
            r#"mutation($input: CreateContactInput!) { createContact(input: $input) {
                contact { id name email phone resolutionStatus account { id } createdAt updatedAt } } }"#,
            json!({ "input": { "contact": { "name": "Ada Lovelace", "email": "ada@example.com",
                "phone": "+44 20 7946 0958", "accountId": account.id.to_string(), "assignees": ["user-ada"] } } }),
        )
        .await;
    let created = &data["createContact"]["contact"];
    assert_eq!(created["name"], "Ada Lovelace");
    assert_eq!(created["phone"], "+442079460958");
    assert_eq!(created["resolutionStatus"], "UNRESOLVED");
    assert_eq!(created["account"]["id"], account.id.to_string());
    assert_eq!(created["createdAt"], created["updatedAt"]);
    let id = created["id"].as_str().expect("id").to_string();
    assert_eq!(
        app.contact_ids(json!({ "assignee": "user-ada" })).await,
        vec![id.clone()]
    );

    let snap = snapshot(&app).await;
    let bad = app
        .graphql(
            "mutation($input: CreateContactInput!) { createContact(input: $input) { contact { id } } }",
            json!({ "input": { "contact": { "email": "bad", "website": "nope" } } }),
        )
        .await;
    assert_eq!(
        failing_fields(single_error(&bad, "VALIDATION_FAILED")),
        vec!["input.contact.email", "input.contact.website"]
    );
    assert_eq!(snapshot(&app).await, snap);

    let delete = "mutation($input: DeleteContactInput!) { deleteContact(input: $input) { deletedContactId } }";
    let data = app.data(delete, json!({ "input": { "id": id } })).await;
    assert_eq!(data["deleteContact"]["deletedContactId"], id);
    let data = app
        .data(
            "query($id: ID!) { contact(id: $id) { id } }",
            json!({ "id": id }),
        )
        .await;
    assert_eq!(data["contact"], Value::Null);
    assert!(
        app.contact_ids(json!({ "assignee": "user-ada" }))
            .await
            .is_empty()
    );
    let again = app.graphql(delete, json!({ "input": { "id": id } })).await;
    single_error(&again, "NOT_FOUND");
}

#[tokio::test]
async fn tags_are_added_and_removed_idempotently() {
    let app = spawn_app().await;
    let tag_names = app.tag_names_by_contact().await;
    let c = app
        .all_contacts()
        .await
        .into_iter()
        .find(|c| c.business_id.is_some() && !tag_names.contains_key(&c.id))
        .expect("an untagged contact with a business");
    let add = "mutation($input: ContactTagsInput!) { addTagsToContact(input: $input) { contact { updatedAt tags { id name } } } }";
    let remove = "mutation($input: ContactTagsInput!) { removeTagsFromContact(input: $input) { contact { tags { name } } } }";
    let first = app
        .data(
            add,
            json!({ "input": { "contactId": c.id.to_string(), "tagNames": ["VIP", "Lead"] } }),
        )
        .await;
    let tags = first["addTagsToContact"]["contact"]["tags"].clone();
    let mut names: Vec<&str> = tags
        .as_array()
        .expect("tags")
        .iter()
        .map(|t| t["name"].as_str().expect("name"))
        .collect();
    names.sort();
    assert_eq!(names, ["Lead", "VIP"]);
    let snap = snapshot(&app).await;
    let again = app
        .data(
            add,
            json!({ "input": { "contactId": c.id.to_string(), "tagNames": ["VIP"] } }),
        )
        .await;
    assert_eq!(again["addTagsToContact"]["contact"]["tags"], tags);
    assert_eq!(
        snapshot(&app).await,
        snap,
        "adding a tag twice changes nothing"
    );

    let unknown = app
        .graphql(
            add,
            json!({ "input": { "contactId": c.id.to_string(), "tagNames": ["No such tag"] } }),
        )
        .await;
    assert_eq!(
        failing_fields(single_error(&unknown, "VALIDATION_FAILED")),
        vec!["input.tagNames[0]"]
    );
    assert_eq!(snapshot(&app).await, snap);

    let vip_id = tags
        .as_array()
        .expect("tags")
        .iter()
        .find(|t| t["name"] == "VIP")
        .expect("VIP")["id"]
        .clone();
    let data = app
        .data(
            remove,
            json!({ "input": { "contactId": c.id.to_string(), "tagIds": [vip_id] } }),
        )
        .await;
    assert_eq!(
        data["removeTagsFromContact"]["contact"]["tags"],
        json!([{ "name": "Lead" }])
    );
    let snap = snapshot(&app).await;
    app.data(
        remove,
        json!({ "input": { "contactId": c.id.to_string(), "tagIds": [vip_id] } }),
    )
    .await;
    assert_eq!(
        snapshot(&app).await,
        snap,
        "removing a missing tag changes nothing"
    );
}

#[tokio::test]
async fn resolution_is_set_manually() {
    let app = spawn_app().await;
    let c = a_contact(&app).await;
    let data = app
        .data(
            "mutation($input: SetContactResolutionInput!) { setContactResolution(input: $input) { contact { resolutionStatus externalRef } } }",
            json!({ "input": { "id": c.id.to_string(), "resolutionStatus": "MANUALLY_RESOLVED", "externalRef": "CRM-CONTACT-78291" } }),
        )
        .await;
    assert_eq!(
        data["setContactResolution"]["contact"],
        json!({ "resolutionStatus": "MANUALLY_RESOLVED", "externalRef": "CRM-CONTACT-78291" })
    );
    let stored = stored(&app, c.id).await;
    assert_eq!(stored.resolution_status, "MANUALLY_RESOLVED");
    assert_eq!(stored.external_ref.as_deref(), Some("CRM-CONTACT-78291"));
}

#[tokio::test]
async fn numbers_without_a_country_code_use_the_configured_region() {
    let query = r#"mutation { createContact(input: { contact: { firstName: "Uwe", phone: "0151 23456789" } }) { contact { phone } } }"#;
    let without = spawn_app().await;
    let response = without.graphql(query, json!({})).await;
    assert_eq!(
        failing_fields(single_error(&response, "VALIDATION_FAILED")),
        vec!["input.contact.phone"]
    );
    let german = spawn_app_with(|config| {
        config.default_phone_region = Some(phonenumber::country::Id::DE);
    })
    .await;
    let data = german.data(query, json!({})).await;
    assert_eq!(data["createContact"]["contact"]["phone"], "+4915123456789");
}
