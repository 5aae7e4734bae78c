//! Duplicates and merge: groups by normalised email and phone, paging through them, merges
//! refused without a change, what a merge keeps, fills and unites (tags included), and a later
//! import of a moved record updating the merged contact.
use contact_gateway::sources::Format;
use serde_json::{Value, json};

use crate::common::{
    TestApp, contact_by_email, failing_fields, fixture, import, options, single_error, snapshot,
    spawn_app, tenant_of,
};

async fn create(app: &TestApp, contact: Value) -> String {
    let data = app
        .data(
            "mutation($c: ContactPatch!) { createContact(input: { contact: $c }) { contact { id } } }",
            json!({ "c": contact }),
        )
        .await;
    data["createContact"]["contact"]["id"]
        .as_str()
        .expect("id")
        .to_string()
}

const DUPLICATES: &str = r#"query($after: String) { duplicateContacts(first: 50, after: $after) {
    totalCount pageInfo { hasNextPage endCursor }
    edges { cursor node { matchedOn value contacts { id } } } } }"#;

#[tokio::test]
async fn duplicates_are_grouped_by_email_and_phone_and_merge_into_one() {
    let app = spawn_app().await;
    let a = create(
        &app,
        json!({"firstName": "Ann", "email": "Ann.Dup@Example.com", "phone": "+4915100000001"}),
    )
    .await;
    let b = create(&app, json!({"lastName": "Dupont", "email": "ann.dup@example.com", "role": "Buyer", "secondaryEmails": ["ann.private@example.com"]})).await;
    let c = create(
        &app,
        json!({"firstName": "Other", "secondaryPhones": ["+4915100000001"], "notes": "x"}),
    )
    .await;
    let tenant = tenant_of(&app).await;
    import(
        &app,
        &options(tenant, Format::AccountContacts, Some("acme")),
        &fixture("account-contacts.json"),
    )
    .await
    .expect("import");

    let data = app.data(DUPLICATES, json!({ "after": null })).await;
    let groups: Vec<(String, String, Vec<String>)> = data["duplicateContacts"]["edges"]
        .as_array()
        .expect("edges")
        .iter()
        .map(|e| {
            let n = &e["node"];
            let mut ids: Vec<String> = n["contacts"]
                .as_array()
                .expect("contacts")
                .iter()
                .map(|c| c["id"].as_str().expect("id").to_string())
                .collect();
            ids.sort();
            (
                n["matchedOn"].as_str().expect("kind").to_string(),
                n["value"].as_str().expect("value").to_string(),
                ids,
            )
        })
        .filter(|(_, _, ids)| ids.contains(&a) || ids.contains(&c))
        .collect();
    let mut ab = vec![a.clone(), b.clone()];
    ab.sort();
    let mut ac = vec![a.clone(), c.clone()];
    ac.sort();
    assert_eq!(
        groups,
        vec![
            ("EMAIL".into(), "ann.dup@example.com".into(), ab),
            ("PHONE".into(), "+4915100000001".into(), ac)
        ]
    );
    assert!(
        data["duplicateContacts"]["totalCount"]
            .as_i64()
            .expect("total")
            >= 2
    );

    // Paging with the cursor of the first group goes on after it.
    let first_cursor = data["duplicateContacts"]["edges"][0]["cursor"].clone();
    let rest = app.data(DUPLICATES, json!({ "after": first_cursor })).await;
    assert_eq!(
        rest["duplicateContacts"]["edges"]
            .as_array()
            .expect("edges")
            .len()
            + 1,
        data["duplicateContacts"]["edges"]
            .as_array()
            .expect("edges")
            .len()
    );

    // Invalid merges change nothing.
    let before = snapshot(&app).await;
    let response = app
        .graphql("mutation($t: ID!, $s: [ID!]!) { mergeContacts(input: { targetId: $t, sourceIds: $s }) { contact { id } } }", json!({ "t": a, "s": [a] }))
        .await;
    let error = single_error(&response, "VALIDATION_FAILED");
    assert_eq!(failing_fields(error), ["input.sourceIds[0]"]);
    let response = app
        .graphql("mutation($t: ID!, $s: [ID!]!) { mergeContacts(input: { targetId: $t, sourceIds: $s }) { contact { id } } }", json!({ "t": a, "s": [b, uuid::Uuid::now_v7().to_string()] }))
        .await;
    single_error(&response, "NOT_FOUND");
    assert_eq!(snapshot(&app).await, before);

    let jan = contact_by_email(&app, "jan.mueller@acme-customer.de").await;
    let merged = app
        .data(
            r#"mutation($t: ID!, $s: [ID!]!) { mergeContacts(input: { targetId: $t, sourceIds: $s, clientMutationId: "m1" }) {
                clientMutationId mergedContactIds
                contact { firstName lastName email role notes phone secondaryEmails secondaryPhones externalRef sources { externalId } } } }"#,
            json!({ "t": a, "s": [b, c, jan["id"]] }),
        )
        .await;
    let m = &merged["mergeContacts"];
    assert_eq!(m["clientMutationId"], "m1");
    assert_eq!(m["mergedContactIds"], json!([b, c, jan["id"]]));
    let contact = &m["contact"];
    assert_eq!(contact["firstName"], "Ann", "the target keeps its values");
    assert_eq!(contact["lastName"], "Dupont", "empty fields are filled");
    assert_eq!(contact["role"], "Buyer");
    assert_eq!(contact["notes"], "x");
    assert_eq!(contact["externalRef"], "CRM-CONTACT-78291");
    assert_eq!(
        contact["secondaryEmails"],
        json!(["ann.private@example.com", "jan.mueller@acme-customer.de"])
    );
    assert_eq!(contact["secondaryPhones"], json!(["+4915112345678"]));
    assert_eq!(
        contact["sources"],
        json!([{ "externalId": "0b1a2b3c-5678-4abc-8ef0-1234567890ab" }])
    );
    for gone in [&b, &c] {
        let node = app
            .data(
                "query($id: ID!) { contact(id: $id) { id } }",
                json!({ "id": gone }),
            )
            .await;
        assert_eq!(node["contact"], Value::Null);
    }
    // The merged contact's keys no longer form groups of their own.
    let data = app.data(DUPLICATES, json!({ "after": null })).await;
    let values: Vec<&str> = data["duplicateContacts"]["edges"]
        .as_array()
        .expect("edges")
        .iter()
        .map(|e| e["node"]["value"].as_str().expect("v"))
        .collect();
    assert!(!values.contains(&"ann.dup@example.com"), "{values:?}");

    // A later import of the moved record updates the merged contact.
    let changed = String::from_utf8(fixture("account-contacts.json"))
        .expect("utf8")
        .replace("Acme Customer GmbH", "Acme Renamed GmbH");
    let s = import(
        &app,
        &options(tenant, Format::AccountContacts, Some("acme")),
        changed.as_bytes(),
    )
    .await
    .expect("import");
    assert_eq!((s.created, s.updated), (0, 1));
    let node = app
        .data(
            "query($id: ID!) { contact(id: $id) { companyName } }",
            json!({ "id": a }),
        )
        .await;
    assert_eq!(node["contact"]["companyName"], "Acme Renamed GmbH");
}

#[tokio::test]
async fn a_merge_unites_the_tags_of_its_contacts_once_each() {
    let app = spawn_app().await;
    let business = app
        .data(
            r#"mutation { createBusiness(input: { name: "Merge Shop" }) { business { id } } }"#,
            json!({}),
        )
        .await["createBusiness"]["business"]["id"]
        .clone();
    for name in ["VIP", "Gold", "Local"] {
        app.data(
            "mutation($b: ID!, $n: String!) { createTag(input: { businessId: $b, name: $n }) { tag { id } } }",
            json!({ "b": business, "n": name }),
        )
        .await;
    }
    let mut ids = Vec::new();
    for (email, tags) in [
        ("t@merge.example", json!(["VIP"])),
        ("s1@merge.example", json!(["VIP", "Gold"])),
        ("s2@merge.example", json!(["Gold", "Local"])),
    ] {
        let id = create(&app, json!({ "email": email, "businessId": business })).await;
        app.data(
            "mutation($id: ID!, $t: [String!]) { addTagsToContact(input: { contactId: $id, tagNames: $t }) { contact { id } } }",
            json!({ "id": id, "t": tags }),
        )
        .await;
        ids.push(id);
    }
    let merged = app
        .data(
            "mutation($t: ID!, $s: [ID!]!) { mergeContacts(input: { targetId: $t, sourceIds: $s }) { contact { tags { name } } } }",
            json!({ "t": ids[0], "s": [ids[1], ids[2]] }),
        )
        .await;
    let mut names: Vec<&str> = merged["mergeContacts"]["contact"]["tags"]
        .as_array()
        .expect("tags")
        .iter()
        .map(|t| t["name"].as_str().expect("name"))
        .collect();
    names.sort();
    assert_eq!(names, ["Gold", "Local", "VIP"]);
}
