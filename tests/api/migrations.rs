//! Migrations keep the data: the SQLite rebuild of the link tables as `WITHOUT ROWID`
//! tables (and back) loses no row and no index; the sparse contact indexes become partial
//! and whole again; on PostgreSQL the foreign keys of the rows a contact owns give way to a
//! trigger and come back; on SQLite the search index's `automerge` goes to 16 and back.
//! Deleting a contact deletes what it owns on both databases.
use migration::{Migrator, MigratorTrait};
use sea_orm::{ConnectionTrait, DatabaseConnection, DbBackend, Statement};

use crate::common::spawn_app;

const LINK_TABLES: [&str; 4] = [
    "contact_tags",
    "contact_assignees",
    "contact_keys",
    "source_entities",
];

/// Every row of the link tables, as text, sorted.
/// Rolls the migrations back until `count` remain applied (migration `count` the newest).
async fn down_to(db: &DatabaseConnection, count: usize) {
    let steps = Migrator::migrations().len() - count;
    Migrator::down(db, Some(steps as u32)).await.expect("down");
}

async fn link_rows(db: &DatabaseConnection) -> Vec<String> {
    let backend = db.get_database_backend();
    let mut rows = Vec::new();
    for table in LINK_TABLES {
        let cast = match backend {
            DbBackend::Sqlite => "quote(t.tenant_id) || '/' || quote(t.contact_id)",
            _ => "t.tenant_id::text || '/' || t.contact_id::text",
        };
        let key = if table == "source_entities" {
            cast.replace("contact_id", "entity_id")
        } else {
            cast.to_string()
        };
        let sql = format!("SELECT '{table}/' || {key} AS row FROM {table} t");
        for row in db
            .query_all_raw(Statement::from_string(backend, sql))
            .await
            .expect("rows")
        {
            rows.push(row.try_get::<String>("", "row").expect("row"));
        }
    }
    rows.sort();
    rows
}

/// The SQL SQLite stores for the link tables and their indexes.
async fn definitions(db: &DatabaseConnection) -> Vec<String> {
    let sql = "SELECT name || ': ' || sql AS def FROM sqlite_master WHERE sql IS NOT NULL AND \
               type IN ('table', 'index') AND tbl_name IN ('contact_tags', 'contact_assignees', 'contact_keys', 'source_entities') \
               ORDER BY name";
    db.query_all_raw(Statement::from_string(DbBackend::Sqlite, sql))
        .await
        .expect("schema")
        .iter()
        .map(|r| r.try_get::<String>("", "def").expect("def"))
        .collect()
}

/// How the database defines index `name`.
async fn index_definition(db: &DatabaseConnection, name: &str) -> String {
    let backend = db.get_database_backend();
    let sql = match backend {
        DbBackend::Sqlite => "SELECT sql AS def FROM sqlite_master WHERE name = ?",
        _ => "SELECT indexdef AS def FROM pg_indexes WHERE indexname = $1",
    };
    db.query_one_raw(Statement::from_sql_and_values(backend, sql, [name.into()]))
        .await
        .expect("index")
        .expect("the index exists")
        .try_get::<String>("", "def")
        .expect("def")
}

/// On PostgreSQL, what deletes a contact's keys and source records with it: the foreign keys
/// of `contact_keys` and `contact_sources` to `contacts`, or the trigger that replaces them.
async fn owned_rows_cascade(db: &DatabaseConnection) -> Vec<String> {
    if db.get_database_backend() != DbBackend::Postgres {
        return Vec::new();
    }
    let sql = "SELECT conname::text AS name FROM pg_constraint WHERE contype = 'f' \
               AND conrelid IN ('contact_keys'::regclass, 'contact_sources'::regclass) \
               UNION ALL SELECT 'trigger ' || tgname FROM pg_trigger \
               WHERE tgrelid = 'contacts'::regclass AND NOT tgisinternal \
               AND tgname NOT LIKE 'contact_counts_%' ORDER BY 1";
    crate::common::names(db, sql, sql).await
}

/// On SQLite, the `automerge` setting of the search index (FTS5's default when never set).
async fn search_automerge(db: &DatabaseConnection) -> Option<String> {
    if db.get_database_backend() != DbBackend::Sqlite {
        return None;
    }
    let sql = "SELECT CAST(v AS TEXT) AS v FROM contact_search_config WHERE k = 'automerge'";
    db.query_one_raw(Statement::from_string(DbBackend::Sqlite, sql))
        .await
        .expect("config")
        .map(|r| r.try_get::<String>("", "v").expect("v"))
}

/// How many rows of `table` belong to contact `id`.
async fn owned_rows(db: &DatabaseConnection, table: &str, id: uuid::Uuid) -> i64 {
    let backend = db.get_database_backend();
    let placeholder = if backend == DbBackend::Sqlite {
        "?"
    } else {
        "$1"
    };
    let sql = format!("SELECT COUNT(*) AS n FROM {table} WHERE contact_id = {placeholder}");
    db.query_one_raw(Statement::from_sql_and_values(backend, sql, [id.into()]))
        .await
        .expect("count")
        .expect("a row")
        .try_get::<i64>("", "n")
        .expect("n")
}

/// The references to contacts and tags (`table.column`) that no index leads with, so that a
/// delete of the row they point to scans the table.
async fn unindexed_references(db: &DatabaseConnection) -> Vec<String> {
    let mut references = crate::common::names(
        db,
        "SELECT m.name || '.' || f.\"from\" AS name \
         FROM sqlite_master m, pragma_foreign_key_list(m.name) f \
         WHERE m.type = 'table' AND f.\"table\" IN ('contacts', 'tags') \
         AND NOT EXISTS (SELECT 1 FROM pragma_index_list(m.name) l, \
         pragma_index_info(l.name) i WHERE i.seqno = 0 AND i.name = f.\"from\")",
        "SELECT child.relname || '.' || a.attname AS name \
         FROM pg_constraint c \
         JOIN pg_class child ON child.oid = c.conrelid \
         JOIN pg_class parent ON parent.oid = c.confrelid \
         JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = c.conkey[1] \
         WHERE c.contype = 'f' AND parent.relname IN ('contacts', 'tags') \
         AND child.relnamespace = to_regnamespace(current_schema())::oid \
         AND NOT EXISTS (SELECT 1 FROM pg_index i \
         WHERE i.indrelid = c.conrelid AND i.indkey[0] = c.conkey[1])",
    )
    .await;
    references.sort();
    references
}

#[tokio::test]
async fn every_reference_to_a_contact_or_a_tag_leads_an_index() {
    let app = spawn_app().await;
    assert_eq!(unindexed_references(&app.db).await, Vec::<String>::new());
    // Without migration 10 (and those after it) the link tables' references are found by
    // scans.
    down_to(&app.db, 9).await;
    assert!(
        unindexed_references(&app.db)
            .await
            .contains(&"contact_tags.contact_id".to_string())
    );
    Migrator::up(&app.db, None).await.expect("up");
    assert_eq!(unindexed_references(&app.db).await, Vec::<String>::new());
}

#[tokio::test]
async fn deleting_a_contact_row_deletes_its_keys_and_source_records() {
    let app = spawn_app().await;
    let contact = app
        .all_contacts()
        .await
        .into_iter()
        .find(|c| c.email.is_some())
        .expect("a demo contact with an email");
    let record = entity::contact_source::Model {
        id: uuid::Uuid::now_v7(),
        tenant_id: contact.tenant_id,
        contact_id: contact.id,
        source: "crm".into(),
        format: "client-contacts".into(),
        external_id: "1".into(),
        record: "{}".into(),
        mapped: "{}".into(),
        record_hash: "0".into(),
        fetched_at: 0,
        deleted_at: None,
    };
    contact_gateway::db::insert_all::<entity::prelude::ContactSource>(&app.db, vec![record], 1)
        .await
        .expect("a source record");
    for table in ["contact_keys", "contact_sources"] {
        assert!(
            owned_rows(&app.db, table, contact.id).await > 0,
            "{table} before"
        );
    }
    // Deleted by plain SQL, not through the application, which deletes them itself.
    let backend = app.db.get_database_backend();
    app.db
        .execute_raw(Statement::from_sql_and_values(
            backend,
            if backend == DbBackend::Sqlite {
                "DELETE FROM contacts WHERE id = ?"
            } else {
                "DELETE FROM contacts WHERE id = $1"
            },
            [contact.id.into()],
        ))
        .await
        .expect("delete");
    for table in ["contact_keys", "contact_sources"] {
        assert_eq!(
            owned_rows(&app.db, table, contact.id).await,
            0,
            "{table} after"
        );
    }
}

#[tokio::test]
async fn rebuilding_the_link_tables_keeps_every_row_and_index() {
    let app = spawn_app().await;
    // Vendor ids too, so that every rebuilt table has rows.
    app.db
        .execute_unprepared(
            "INSERT INTO source_entities (tenant_id, source, kind, external_id, entity_id) \
             SELECT tenant_id, 'crm', 'account', name, id FROM accounts",
        )
        .await
        .expect("vendor ids");
    let rows = link_rows(&app.db).await;
    for table in LINK_TABLES {
        assert!(
            rows.iter().any(|r| r.starts_with(&format!("{table}/"))),
            "{table} has rows"
        );
    }
    let sqlite = app.db.get_database_backend() == DbBackend::Sqlite;
    let before = if sqlite {
        definitions(&app.db).await
    } else {
        Vec::new()
    };
    if sqlite {
        let tables: Vec<&String> = before
            .iter()
            .filter(|d| d.contains("CREATE TABLE"))
            .collect();
        assert_eq!(tables.len(), LINK_TABLES.len());
        assert!(
            tables.iter().all(|d| d.ends_with("WITHOUT ROWID")),
            "{tables:?}"
        );
    }

    // Every migration after the third: the archived contacts' index, deletions, sources as
    // data, the foreign-key indexes, the source leases, the folded names, the search index's
    // merging, the owned rows' cascade, the partial indexes, then the link tables.
    let automerge = search_automerge(&app.db).await;
    if sqlite {
        assert_eq!(automerge.as_deref(), Some("16"));
    }
    let partial = index_definition(&app.db, "idx_contacts_owner").await;
    assert!(partial.contains("WHERE"), "{partial}");
    let cascade = owned_rows_cascade(&app.db).await;
    if !sqlite {
        assert_eq!(cascade, ["trigger contacts_delete_owned"]);
    }
    down_to(&app.db, 3).await;
    if sqlite {
        assert_eq!(search_automerge(&app.db).await.as_deref(), Some("4"));
    }
    assert_eq!(link_rows(&app.db).await, rows);
    if !sqlite {
        assert_eq!(
            owned_rows_cascade(&app.db).await,
            [
                "contact_keys_contact_id_fkey",
                "contact_sources_contact_id_fkey"
            ]
        );
    }
    let whole = index_definition(&app.db, "idx_contacts_owner").await;
    assert!(!whole.contains("WHERE"), "{whole}");
    if sqlite {
        let after_down = definitions(&app.db).await;
        assert!(after_down.iter().all(|d| !d.contains("WITHOUT ROWID")));
        // Every table and index is still there but the two that migration 10 added.
        let name = |d: &String| d.split(':').next().unwrap_or_default().to_string();
        let expected: Vec<String> = before
            .iter()
            .map(name)
            .filter(|n| n != "idx_contact_tags_contact" && n != "idx_contact_assignees_contact")
            .collect();
        assert_eq!(
            after_down.iter().map(name).collect::<Vec<_>>(),
            expected,
            "indexes kept: {after_down:?}"
        );
    }

    Migrator::up(&app.db, None).await.expect("up again");
    assert_eq!(link_rows(&app.db).await, rows);
    // Migration 8 folded the names of the rows that were there.
    let names = app
        .db
        .query_all_raw(Statement::from_string(
            app.db.get_database_backend(),
            "SELECT name, name_folded FROM accounts UNION ALL SELECT name, name_folded FROM tags",
        ))
        .await
        .expect("names");
    assert!(!names.is_empty());
    for row in names {
        let name: String = row.try_get("", "name").expect("name");
        let folded: String = row.try_get("", "name_folded").expect("folded");
        assert_eq!(folded, name.to_lowercase());
    }
    assert_eq!(owned_rows_cascade(&app.db).await, cascade);
    assert_eq!(search_automerge(&app.db).await, automerge);
    assert_eq!(
        index_definition(&app.db, "idx_contacts_owner").await,
        partial
    );
    if sqlite {
        assert_eq!(definitions(&app.db).await, before);
    }
}
