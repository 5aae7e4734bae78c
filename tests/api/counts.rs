//! `totalCount` of an unfiltered nested connection comes from the counts the database keeps
//! (migration 17); every kind of write keeps them equal to counting.
use std::collections::HashMap;

use entity::contact;
use entity::prelude::Contact;
use sea_orm::sea_query::Expr;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::common::{TestApp, fixture, import, options, spawn_app, tenant_of};
use contact_gateway::sources::Format;

/// Each parent's `totalCount`, kept (unfiltered) and counted (`archived: false` selects the
/// same live contacts through a filter, so they are counted).
const BOTH: [&str; 3] = [
    r#"{ accounts(first: 100) { nodes { id kept: contacts(first: 1) { totalCount } counted: contacts(first: 1, filter: { archived: false }) { totalCount } } } }"#,
    r#"{ businesses(first: 100) { nodes { id kept: contacts(first: 1) { totalCount } counted: contacts(first: 1, filter: { archived: false }) { totalCount } } } }"#,
    r#"{ tags(first: 100) { nodes { id kept: contacts(first: 1) { totalCount } counted: contacts(first: 1, filter: { archived: false }) { totalCount } } } }"#,
];

/// Checks that kept and counted totals agree for every account, business and tag, and that
/// the accounts' agree with the rows themselves; returns the accounts' totals.
async fn assert_counts_agree(app: &TestApp, after: &str) -> HashMap<String, u64> {
    let mut lists = Vec::new();
    for query in BOTH {
        lists.push(app.data(query, json!({})).await);
    }
    let [accounts, businesses, tags] = &lists[..] else {
        unreachable!("three queries");
    };
    let accounts = accounts["accounts"]["nodes"].as_array().expect("accounts");
    let parents: Vec<&Value> = accounts
        .iter()
        .chain(
            businesses["businesses"]["nodes"]
                .as_array()
                .expect("businesses"),
        )
        .chain(tags["tags"]["nodes"].as_array().expect("tags"))
        .collect();
    assert!(parents.len() > accounts.len(), "{parents:?}");
    for parent in &parents {
        assert_eq!(
            parent["kept"]["totalCount"], parent["counted"]["totalCount"],
            "after {after}: {parent}"
        );
    }
    let mut live: HashMap<String, u64> = HashMap::new();
    for c in app.all_contacts().await {
        if let (Some(account), None) = (c.account_id, c.archived_at) {
            *live.entry(account.to_string()).or_default() += 1;
        }
    }
    let mut kept = HashMap::new();
    for account in accounts {
        let id = account["id"].as_str().expect("id").to_string();
        let total = account["kept"]["totalCount"].as_u64().expect("count");
        assert_eq!(
            total,
            live.get(&id).copied().unwrap_or(0),
            "after {after}: {id}"
        );
        kept.insert(id, total);
    }
    kept
}

async fn mutate(app: &TestApp, query: &str, variables: Value) -> Value {
    let response = app.graphql(query, variables).await;
    assert!(response.get("errors").is_none(), "{response}");
    response["data"].clone()
}

async fn set_archived(app: &TestApp, id: Uuid, archived_at: Option<i64>) {
    Contact::update_many()
        .col_expr(contact::Column::ArchivedAt, Expr::value(archived_at))
        .filter(contact::Column::Id.eq(id))
        .exec(&app.db)
        .await
        .expect("archive");
}

#[tokio::test]
async fn kept_counts_agree_with_counting_after_every_kind_of_write() {
    let app = spawn_app().await;
    let before = assert_counts_agree(&app, "the demo data").await;
    assert!(before.values().any(|&n| n > 1), "{before:?}");

    let contacts = app.all_contacts().await;
    let with_account: Vec<&contact::Model> = contacts
        .iter()
        .filter(|c| c.account_id.is_some() && c.business_id.is_some())
        .collect();
    let [moved, archived, restored, deleted, target, source, ..] = with_account[..] else {
        panic!("the demo data has too few contacts with an account and a business");
    };
    let other_account = contacts
        .iter()
        .filter_map(|c| c.account_id)
        .find(|a| Some(*a) != moved.account_id)
        .expect("a second account");

    mutate(
        &app,
        "mutation($id: ID!, $a: ID) { updateContact(input: { id: $id, patch: { accountId: $a } }) { contact { id } } }",
        json!({ "id": moved.id, "a": other_account }),
    )
    .await;
    let after_move = assert_counts_agree(&app, "a move").await;
    let from = moved.account_id.map(|a| a.to_string()).unwrap_or_default();
    assert_eq!(
        after_move[&from] + 1,
        before[&from],
        "the old account lost one"
    );

    let tags = app.tag_names_by_contact().await;
    if let Some(name) = tags.get(&moved.id).and_then(|t| t.first()) {
        mutate(
            &app,
            "mutation($id: ID!, $n: [String!]) { removeTagsFromContact(input: { contactId: $id, tagNames: $n }) { contact { id } } }",
            json!({ "id": moved.id, "n": [name] }),
        )
        .await;
        assert_counts_agree(&app, "a tag removed").await;
    }
    let names: Vec<String> = app.all_tags().await.into_iter().map(|t| t.name).collect();
    mutate(
        &app,
        "mutation($id: ID!, $n: [String!]) { addTagsToContact(input: { contactId: $id, tagNames: $n }) { contact { id } } }",
        json!({ "id": archived.id, "n": names.iter().take(3).collect::<Vec<_>>() }),
    )
    .await;
    assert_counts_agree(&app, "tags added").await;

    set_archived(&app, archived.id, Some(1)).await;
    set_archived(&app, restored.id, Some(1)).await;
    assert_counts_agree(&app, "archiving").await;
    mutate(
        &app,
        "mutation($id: ID!) { restoreContact(input: { id: $id }) { contact { id } } }",
        json!({ "id": restored.id }),
    )
    .await;
    assert_counts_agree(&app, "a restore").await;

    mutate(
        &app,
        "mutation($id: ID!) { deleteContact(input: { id: $id }) { deletedContactId } }",
        json!({ "id": deleted.id }),
    )
    .await;
    assert_counts_agree(&app, "a delete").await;
    // An archived contact deleted (by any statement) takes nothing from the counts.
    Contact::delete_many()
        .filter(contact::Column::Id.eq(archived.id))
        .exec(&app.db)
        .await
        .expect("delete");
    assert_counts_agree(&app, "an archived contact deleted").await;

    mutate(
        &app,
        "mutation($t: ID!, $s: [ID!]!) { mergeContacts(input: { targetId: $t, sourceIds: $s }) { contact { id } } }",
        json!({ "t": target.id, "s": [source.id] }),
    )
    .await;
    assert_counts_agree(&app, "a merge").await;

    mutate(
        &app,
        "mutation($a: ID, $b: ID) { createContact(input: { contact: { lastName: \"Counted\", accountId: $a, businessId: $b } }) { contact { id } } }",
        json!({ "a": other_account, "b": moved.business_id }),
    )
    .await;
    assert_counts_agree(&app, "a create").await;

    let tenant = tenant_of(&app).await;
    import(
        &app,
        &options(tenant, Format::BusinessContacts, Some("Imported")),
        &fixture("business-contacts.json"),
    )
    .await
    .expect("import");
    assert_counts_agree(&app, "an import").await;

    let tag = app.all_tags().await.into_iter().next().expect("a tag");
    mutate(
        &app,
        "mutation($id: ID!) { deleteTag(input: { id: $id }) { deletedTagId } }",
        json!({ "id": tag.id }),
    )
    .await;
    assert_counts_agree(&app, "a tag deleted").await;
}

/// PostgreSQL: two transactions that change the same account's and tag's counts in opposite
/// orders (one moves a contact out of the account, then links another to the tag; the other
/// unlinks the tag, then moves a contact out of the account) both commit. When the triggers
/// updated the count rows in place, each held the row the other wanted next, and PostgreSQL
/// aborted one of them with a deadlock. The counts still agree with counting afterwards, and
/// after the deltas are folded.
#[tokio::test]
async fn writes_that_change_the_same_counts_in_opposite_orders_both_commit() {
    use sea_orm::{ConnectionTrait, DbBackend, TransactionTrait};
    let app = spawn_app().await;
    if app.db.get_database_backend() != DbBackend::Postgres {
        return; // one writer at a time on SQLite
    }
    let contacts = app.all_contacts().await;
    let tags = app.all_tags().await;
    let links: HashMap<Uuid, Vec<String>> = app.tag_names_by_contact().await;
    // c1: in an account, linked to tag T; c2: in the same account, not linked to T.
    let (c1, tag, c2) = contacts
        .iter()
        .filter(|c| c.account_id.is_some() && c.archived_at.is_none())
        .find_map(|c1| {
            let name = links.get(&c1.id)?.first()?;
            let tag = tags.iter().find(|t| &t.name == name)?;
            let c2 = contacts.iter().find(|c2| {
                c2.id != c1.id
                    && c2.account_id == c1.account_id
                    && c2.archived_at.is_none()
                    && !links.get(&c2.id).is_some_and(|names| names.contains(name))
            })?;
            Some((c1, tag, c2))
        })
        .expect("the demo data has two contacts of one account, one of them tagged");
    let sql = |text: String| sea_orm::Statement::from_string(DbBackend::Postgres, text);

    let one = app.db.begin().await.expect("begin");
    let two = app.db.begin().await.expect("begin");
    one.execute_raw(sql(format!(
        "UPDATE contacts SET account_id = NULL WHERE id = '{}'",
        c2.id
    )))
    .await
    .expect("one: the account's count");
    two.execute_raw(sql(format!(
        "DELETE FROM contact_tags WHERE contact_id = '{}' AND tag_id = '{}'",
        c1.id, tag.id
    )))
    .await
    .expect("two: the tag's count");
    // Each now wants the count the other changed. Both run at once: with in-place updates
    // one of them waited for the other, which in turn waited for it.
    let link = one.execute_raw(sql(format!(
        "INSERT INTO contact_tags (tenant_id, contact_id, tag_id, created_at) \
         VALUES ('{}', '{}', '{}', 0)",
        c2.tenant_id, c2.id, tag.id
    )));
    let moved = two.execute_raw(sql(format!(
        "UPDATE contacts SET account_id = NULL WHERE id = '{}'",
        c1.id
    )));
    let (link, moved) = tokio::time::timeout(
        std::time::Duration::from_secs(10),
        futures::future::join(link, moved),
    )
    .await
    .expect("neither waits for the other for ever");
    link.expect("one: the tag's count");
    moved.expect("two: the account's count");
    one.commit().await.expect("one commits");
    two.commit().await.expect("two commits");

    let account = c1.account_id.map(|a| a.to_string()).unwrap_or_default();
    let before = assert_counts_agree(&app, "the two transactions").await;
    // (The server folds too, every two seconds: either may take a delta, never both.)
    let pending = fold_all(&app).await;
    assert_eq!(pending, Some(0), "a fold takes every committed delta");
    let after = assert_counts_agree(&app, "the fold").await;
    assert_eq!(before.get(&account), after.get(&account));

    // A backlog larger than one fold's batch (10,000) is folded whole, and read meanwhile.
    let total = kept_total(&app, &account).await;
    let backlog = |d: i64, rows: i64| {
        sql(format!(
            "INSERT INTO contact_count_deltas (tenant_id, parent_kind, parent_id, d) \
             SELECT '{}', 'account', '{account}', {d} FROM generate_series(1, {rows})",
            c1.tenant_id
        ))
    };
    app.db
        .execute_raw(backlog(1, 25_000))
        .await
        .expect("a backlog");
    assert_eq!(
        kept_total(&app, &account).await,
        total + 25_000,
        "reads add pending deltas"
    );
    let pending = fold_all(&app).await;
    assert_eq!(pending, Some(0), "every batch is folded");
    assert_eq!(
        kept_total(&app, &account).await,
        total + 25_000,
        "folded, the same total"
    );
    app.db
        .execute_raw(backlog(-25_000, 1))
        .await
        .expect("the backlog taken back");
    assert_counts_agree(&app, "the backlog taken back").await;
}

/// An account's unfiltered `totalCount` (kept, deltas included).
async fn kept_total(app: &TestApp, account: &str) -> u64 {
    let query = "query($id: ID!) { account(id: $id) { contacts(first: 1) { totalCount } } }";
    app.data(query, json!({ "id": account })).await["account"]["contacts"]["totalCount"]
        .as_u64()
        .expect("a total")
}

/// Folds the counts' deltas (PostgreSQL); the deltas left afterwards.
async fn fold_all(app: &TestApp) -> Option<i64> {
    use sea_orm::ConnectionTrait;
    contact_gateway::contacts::counts::fold_deltas(&app.db)
        .await
        .expect("fold");
    let count = "SELECT count(*) AS n FROM contact_count_deltas";
    app.db
        .query_one_raw(sea_orm::Statement::from_string(
            sea_orm::DbBackend::Postgres,
            count,
        ))
        .await
        .expect("deltas")
        .and_then(|row| row.try_get::<i64>("", "n").ok())
}
