//! The indexes on contact columns that most contacts leave empty become partial indexes
//! (`WHERE column IS NOT NULL`): a contact without a business, status, pipeline, lead source,
//! owner, message status, external reference or last message no longer writes an entry into
//! each of those B-trees. Only one of the five vendor formats has pipelines, owners and
//! message statuses, and only one has businesses, so an import of any other format wrote ten
//! index entries per contact that no query could ever find. Likewise only test contacts,
//! which are few, are indexed for the `isTestContact: true` filter; real contacts are found
//! through the index of the default order (`idx_contacts_created`), skipping the few test
//! contacts among them.
//!
//! Every query that filters on these columns compares them with `=`, `IN` or a range, which
//! implies `IS NOT NULL`, so SQLite and PostgreSQL both still choose the index (a test checks
//! the query plans). The orders by email and by last message keep their full indexes.
use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::ConnectionTrait;

#[derive(DeriveMigrationName)]
pub struct Migration;

/// (index name, its columns, the column that is usually empty).
const SPARSE: [(&str, &str, &str); 10] = [
    (
        "idx_contacts_business",
        "tenant_id, business_id, created_at, id",
        "business_id",
    ),
    (
        "idx_contacts_external_ref",
        "tenant_id, external_ref",
        "external_ref",
    ),
    (
        "idx_contacts_pipeline",
        "tenant_id, pipeline_id, pipeline_stage",
        "pipeline_id",
    ),
    (
        "idx_contacts_pipeline_stage",
        "tenant_id, pipeline_stage",
        "pipeline_stage",
    ),
    (
        "idx_contacts_status",
        "tenant_id, status, created_at, id",
        "status",
    ),
    ("idx_contacts_source", "tenant_id, source", "source"),
    (
        "idx_contacts_lead_source",
        "tenant_id, lead_source",
        "lead_source",
    ),
    ("idx_contacts_owner", "tenant_id, owner", "owner"),
    (
        "idx_contacts_message_status",
        "tenant_id, message_status",
        "message_status",
    ),
    (
        "idx_contacts_last_message",
        "tenant_id, last_message_at, id",
        "last_message_at",
    ),
];

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        recreate(manager, true).await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        recreate(manager, false).await
    }

    /// All nine or none.
    fn use_transaction(&self) -> Option<bool> {
        Some(true)
    }
}

/// The index of test contacts: whole, and partial.
const TEST_CONTACTS: [&str; 2] = [
    "CREATE INDEX idx_contacts_test ON contacts (tenant_id, is_test_contact, created_at, id)",
    "CREATE INDEX idx_contacts_test ON contacts (tenant_id, created_at, id) WHERE is_test_contact",
];

/// Drops each index of [`SPARSE`] and the test contacts' index and creates them again,
/// partial or whole.
async fn recreate(manager: &SchemaManager<'_>, partial: bool) -> Result<(), DbErr> {
    let db = manager.get_connection();
    db.execute_unprepared("DROP INDEX idx_contacts_test")
        .await?;
    db.execute_unprepared(TEST_CONTACTS[usize::from(partial)])
        .await?;
    for (name, columns, sparse) in SPARSE {
        db.execute_unprepared(&format!("DROP INDEX {name}")).await?;
        let condition = if partial {
            format!(" WHERE {sparse} IS NOT NULL")
        } else {
            String::new()
        };
        db.execute_unprepared(&format!(
            "CREATE INDEX {name} ON contacts ({columns}){condition}"
        ))
        .await?;
    }
    Ok(())
}
