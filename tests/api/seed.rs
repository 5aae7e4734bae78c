//! The bulk seeder keeps every index and the search index working.
use contact_gateway::demo;
use sea_orm::{ConnectionTrait, Statement};
use serde_json::json;

use crate::common::{analyzed_after_bulk_write, analyzed_tables, names, spawn_app};

async fn index_names(app: &crate::common::TestApp) -> Vec<String> {
    names(
        &app.db,
        "SELECT name FROM sqlite_master WHERE type IN ('index', 'trigger') ORDER BY name",
        "SELECT indexname AS name FROM pg_indexes WHERE schemaname = current_schema() ORDER BY indexname",
    )
    .await
}

#[tokio::test]
async fn a_bulk_seed_restores_every_index_and_the_search_index() {
    let app = spawn_app().await;
    let before = index_names(&app).await;
    assert_eq!(analyzed_tables(&app).await, Vec::<String>::new());
    let tenant = contact_gateway::demo::default_tenant(&app.db)
        .await
        .expect("tenant")
        .expect("demo tenant");
    demo::seed_contacts(&app.db, tenant, demo::BULK_LOAD_THRESHOLD, 99)
        .await
        .expect("bulk seed");
    assert_eq!(index_names(&app).await, before);
    // PostgreSQL's planner has statistics of what was loaded (see `db::analyze_contacts`).
    assert_eq!(analyzed_tables(&app).await, analyzed_after_bulk_write(&app));

    let contacts = app.all_contacts().await;
    assert_eq!(
        contacts.len(),
        demo::DEMO_CONTACTS + demo::BULK_LOAD_THRESHOLD
    );
    let expected = contacts
        .iter()
        .filter(|c| c.search_text.contains("o'brien"))
        .count();
    let data = app
        .data(
            r#"{ contacts(filter: { search: "O'Brien" }) { totalCount } }"#,
            json!({}),
        )
        .await;
    assert_eq!(data["contacts"]["totalCount"], expected);
    assert!(expected > 0);

    // The kept counts (whose SQLite triggers the load suspends) count the loaded contacts.
    let mut live = std::collections::HashMap::new();
    for c in &contacts {
        if let (Some(account), None) = (c.account_id, c.archived_at) {
            *live.entry(account.to_string()).or_insert(0_u64) += 1;
        }
    }
    let data = app
        .data(
            "{ accounts(first: 100) { nodes { id contacts(first: 1) { totalCount } } } }",
            json!({}),
        )
        .await;
    let accounts = data["accounts"]["nodes"].as_array().expect("accounts");
    assert!(!accounts.is_empty());
    for account in accounts {
        let id = account["id"].as_str().expect("id");
        assert_eq!(
            account["contacts"]["totalCount"].as_u64(),
            Some(live.get(id).copied().unwrap_or(0)),
            "{id}"
        );
    }
}

async fn journal_mode(db: &sea_orm::DatabaseConnection) -> String {
    db.query_one_raw(Statement::from_string(
        db.get_database_backend(),
        "PRAGMA journal_mode",
    ))
    .await
    .expect("pragma")
    .expect("row")
    .try_get_by_index::<String>(0)
    .expect("mode")
}

#[tokio::test]
async fn a_bulk_load_connection_needs_the_sqlite_file_to_itself() {
    let app = spawn_app().await;
    if !app.database_url.starts_with("sqlite") {
        // PostgreSQL loads through its usual pool.
        assert!(
            contact_gateway::db::connect_for_bulk_load(&app.database_url)
                .await
                .is_none()
        );
        return;
    }
    // The server's pool has the file open in WAL mode: no switch.
    assert!(
        contact_gateway::db::connect_for_bulk_load(&app.database_url)
            .await
            .is_none()
    );
    assert_eq!(journal_mode(&app.db).await, "wal");

    // Alone with the file, the loader gets a rollback journal; the next pool has WAL again.
    app.db.clone().close().await.expect("close");
    let loader = contact_gateway::db::connect_for_bulk_load(&app.database_url)
        .await
        .expect("exclusive loader");
    assert_eq!(journal_mode(&loader).await, "delete");
    assert_eq!(pragma(&loader, "foreign_keys").await, 0);
    loader.close().await.expect("close loader");
    let again = contact_gateway::db::connect(&app.database_url, None)
        .await
        .expect("reconnect");
    assert_eq!(journal_mode(&again).await, "wal");
    assert_eq!(pragma(&again, "foreign_keys").await, 1);
}

async fn pragma(db: &sea_orm::DatabaseConnection, name: &str) -> i64 {
    db.query_one_raw(Statement::from_string(
        db.get_database_backend(),
        format!("PRAGMA {name}"),
    ))
    .await
    .expect("pragma")
    .expect("row")
    .try_get_by_index::<i64>(0)
    .expect("value")
}
