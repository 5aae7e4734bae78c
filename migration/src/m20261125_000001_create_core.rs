//! Tenants, businesses, accounts, tags, contacts and their links, with the indexes that
//! back every filter and order of the GraphQL API.
use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::*;
use sea_orm_migration::sea_orm::DbBackend;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Tenants {
    Table,
    Id,
    Name,
    CreatedAt,
}

#[derive(DeriveIden)]
enum Businesses {
    Table,
    Id,
    TenantId,
    Name,
    ExternalRef,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum Accounts {
    Table,
    Id,
    TenantId,
    Name,
    ExternalRef,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum Tags {
    Table,
    Id,
    TenantId,
    BusinessId,
    Name,
    DisplayOrder,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum ContactTags {
    Table,
    TenantId,
    ContactId,
    TagId,
    CreatedAt,
}

#[derive(DeriveIden)]
enum ContactAssignees {
    Table,
    TenantId,
    ContactId,
    Assignee,
}

#[derive(DeriveIden)]
enum Contacts {
    Table,
    Id,
    TenantId,
    AccountId,
    BusinessId,
    ExternalRef,
    ResolutionStatus,
    FirstName,
    LastName,
    Email,
    SecondaryEmails,
    Phone,
    SecondaryPhones,
    CompanyName,
    Website,
    Linkedin,
    Role,
    Description,
    Notes,
    AddressStreet,
    AddressCity,
    AddressState,
    AddressCountry,
    AddressPostalCode,
    Timezone,
    Source,
    LeadSource,
    Status,
    PipelineId,
    PipelineStage,
    MessageStatus,
    Owner,
    Assignees,
    CreatedBy,
    DndEmail,
    DndSms,
    DndCall,
    DndWhatsapp,
    IsTestContact,
    LastMessageAt,
    CreatedAt,
    UpdatedAt,
    SortName,
    SearchText,
}

/// A text column that sorts by byte value on every backend (PostgreSQL's default collation
/// would otherwise order differently from SQLite's and ignore punctuation).
fn sort_text<T: IntoIden>(col: T, backend: DbBackend) -> ColumnDef {
    let mut def = text(col);
    if backend == DbBackend::Postgres {
        def.extra("COLLATE \"C\"");
    }
    def
}

fn index(name: &str, table: impl IntoIden, cols: &[&str]) -> IndexCreateStatement {
    let mut stmt = Index::create();
    stmt.name(name).table(table);
    for col in cols {
        stmt.col(Alias::new(*col));
    }
    stmt.to_owned()
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let backend = manager.get_database_backend();

        manager
            .create_table(
                Table::create()
                    .table(Tenants::Table)
                    .col(uuid(Tenants::Id).primary_key())
                    .col(text(Tenants::Name))
                    .col(big_integer(Tenants::CreatedAt))
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(Businesses::Table)
                    .col(uuid(Businesses::Id).primary_key())
                    .col(uuid(Businesses::TenantId))
                    .col(sort_text(Businesses::Name, backend))
                    .col(text_null(Businesses::ExternalRef))
                    .col(big_integer(Businesses::CreatedAt))
                    .col(big_integer(Businesses::UpdatedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .from(Businesses::Table, Businesses::TenantId)
                            .to(Tenants::Table, Tenants::Id),
                    )
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(Accounts::Table)
                    .col(uuid(Accounts::Id).primary_key())
                    .col(uuid(Accounts::TenantId))
                    .col(sort_text(Accounts::Name, backend))
                    .col(text_null(Accounts::ExternalRef))
                    .col(big_integer(Accounts::CreatedAt))
                    .col(big_integer(Accounts::UpdatedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .from(Accounts::Table, Accounts::TenantId)
                            .to(Tenants::Table, Tenants::Id),
                    )
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(Tags::Table)
                    .col(uuid(Tags::Id).primary_key())
                    .col(uuid(Tags::TenantId))
                    .col(uuid(Tags::BusinessId))
                    .col(sort_text(Tags::Name, backend))
                    .col(integer(Tags::DisplayOrder))
                    .col(big_integer(Tags::CreatedAt))
                    .col(big_integer(Tags::UpdatedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .from(Tags::Table, Tags::BusinessId)
                            .to(Businesses::Table, Businesses::Id),
                    )
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(Contacts::Table)
                    .col(uuid(Contacts::Id).primary_key())
                    .col(uuid(Contacts::TenantId))
                    .col(uuid_null(Contacts::AccountId))
                    .col(uuid_null(Contacts::BusinessId))
                    .col(text_null(Contacts::ExternalRef))
                    .col(text(Contacts::ResolutionStatus))
                    .col(text_null(Contacts::FirstName))
                    .col(text_null(Contacts::LastName))
                    .col(
                        text_null(Contacts::Email).extra(if backend == DbBackend::Postgres {
                            "COLLATE \"C\""
                        } else {
                            ""
                        }),
                    )
                    .col(json(Contacts::SecondaryEmails))
                    .col(text_null(Contacts::Phone))
                    .col(json(Contacts::SecondaryPhones))
                    .col(text_null(Contacts::CompanyName))
                    .col(text_null(Contacts::Website))
                    .col(text_null(Contacts::Linkedin))
                    .col(text_null(Contacts::Role))
                    .col(text_null(Contacts::Description))
                    .col(text_null(Contacts::Notes))
                    .col(text_null(Contacts::AddressStreet))
                    .col(text_null(Contacts::AddressCity))
                    .col(text_null(Contacts::AddressState))
                    .col(text_null(Contacts::AddressCountry))
                    .col(text_null(Contacts::AddressPostalCode))
                    .col(text_null(Contacts::Timezone))
                    .col(text_null(Contacts::Source))
                    .col(text_null(Contacts::LeadSource))
                    .col(text_null(Contacts::Status))
                    .col(text_null(Contacts::PipelineId))
                    .col(text_null(Contacts::PipelineStage))
                    .col(text_null(Contacts::MessageStatus))
                    .col(text_null(Contacts::Owner))
                    .col(json(Contacts::Assignees))
                    .col(text_null(Contacts::CreatedBy))
                    .col(boolean(Contacts::DndEmail))
                    .col(boolean(Contacts::DndSms))
                    .col(boolean(Contacts::DndCall))
                    .col(boolean(Contacts::DndWhatsapp))
                    .col(boolean(Contacts::IsTestContact))
                    .col(big_integer_null(Contacts::LastMessageAt))
                    .col(big_integer(Contacts::CreatedAt))
                    .col(big_integer(Contacts::UpdatedAt))
                    .col(sort_text(Contacts::SortName, backend))
                    .col(text(Contacts::SearchText))
                    .foreign_key(
                        ForeignKey::create()
                            .from(Contacts::Table, Contacts::AccountId)
                            .to(Accounts::Table, Accounts::Id),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .from(Contacts::Table, Contacts::BusinessId)
                            .to(Businesses::Table, Businesses::Id),
                    )
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(ContactTags::Table)
                    .col(uuid(ContactTags::TenantId))
                    .col(uuid(ContactTags::ContactId))
                    .col(uuid(ContactTags::TagId))
                    .col(big_integer(ContactTags::CreatedAt))
                    .primary_key(
                        Index::create()
                            .col(ContactTags::TenantId)
                            .col(ContactTags::ContactId)
                            .col(ContactTags::TagId),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .from(ContactTags::Table, ContactTags::ContactId)
                            .to(Contacts::Table, Contacts::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .from(ContactTags::Table, ContactTags::TagId)
                            .to(Tags::Table, Tags::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(ContactAssignees::Table)
                    .col(uuid(ContactAssignees::TenantId))
                    .col(uuid(ContactAssignees::ContactId))
                    .col(text(ContactAssignees::Assignee))
                    .primary_key(
                        Index::create()
                            .col(ContactAssignees::TenantId)
                            .col(ContactAssignees::ContactId)
                            .col(ContactAssignees::Assignee),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .from(ContactAssignees::Table, ContactAssignees::ContactId)
                            .to(Contacts::Table, Contacts::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;

        // Indexes: each starts with tenant_id; orders end with id, the tie-breaker.
        let plain = [
            (
                "idx_businesses_created",
                "businesses",
                &["tenant_id", "created_at", "id"][..],
            ),
            (
                "idx_businesses_name",
                "businesses",
                &["tenant_id", "name", "id"],
            ),
            (
                "idx_accounts_created",
                "accounts",
                &["tenant_id", "created_at", "id"],
            ),
            (
                "idx_accounts_name",
                "accounts",
                &["tenant_id", "name", "id"],
            ),
            (
                "idx_accounts_external_ref",
                "accounts",
                &["tenant_id", "external_ref"],
            ),
            (
                "idx_tags_business_order",
                "tags",
                &["tenant_id", "business_id", "display_order", "id"],
            ),
            (
                "idx_tags_order",
                "tags",
                &["tenant_id", "display_order", "id"],
            ),
            ("idx_tags_name", "tags", &["tenant_id", "name", "id"]),
            (
                "idx_tags_created",
                "tags",
                &["tenant_id", "created_at", "id"],
            ),
            (
                "idx_contact_tags_tag",
                "contact_tags",
                &["tenant_id", "tag_id", "contact_id"],
            ),
            (
                "idx_contact_assignees_assignee",
                "contact_assignees",
                &["tenant_id", "assignee", "contact_id"],
            ),
            (
                "idx_contacts_created",
                "contacts",
                &["tenant_id", "created_at", "id"],
            ),
            (
                "idx_contacts_updated",
                "contacts",
                &["tenant_id", "updated_at", "id"],
            ),
            (
                "idx_contacts_name",
                "contacts",
                &["tenant_id", "sort_name", "id"],
            ),
            (
                "idx_contacts_email",
                "contacts",
                &["tenant_id", "email", "id"],
            ),
            ("idx_contacts_phone", "contacts", &["tenant_id", "phone"]),
            (
                "idx_contacts_account",
                "contacts",
                &["tenant_id", "account_id", "created_at", "id"],
            ),
            (
                "idx_contacts_business",
                "contacts",
                &["tenant_id", "business_id", "created_at", "id"],
            ),
            (
                "idx_contacts_external_ref",
                "contacts",
                &["tenant_id", "external_ref"],
            ),
            (
                "idx_contacts_resolution",
                "contacts",
                &["tenant_id", "resolution_status", "created_at", "id"],
            ),
            (
                "idx_contacts_status",
                "contacts",
                &["tenant_id", "status", "created_at", "id"],
            ),
            (
                "idx_contacts_pipeline",
                "contacts",
                &["tenant_id", "pipeline_id", "pipeline_stage"],
            ),
            (
                "idx_contacts_pipeline_stage",
                "contacts",
                &["tenant_id", "pipeline_stage"],
            ),
            ("idx_contacts_source", "contacts", &["tenant_id", "source"]),
            (
                "idx_contacts_lead_source",
                "contacts",
                &["tenant_id", "lead_source"],
            ),
            ("idx_contacts_owner", "contacts", &["tenant_id", "owner"]),
            (
                "idx_contacts_message_status",
                "contacts",
                &["tenant_id", "message_status"],
            ),
            (
                "idx_contacts_test",
                "contacts",
                &["tenant_id", "is_test_contact", "created_at", "id"],
            ),
            (
                "idx_contacts_last_message",
                "contacts",
                &["tenant_id", "last_message_at", "id"],
            ),
        ];
        for (name, table, cols) in plain {
            manager
                .create_index(index(name, Alias::new(table), cols))
                .await?;
        }
        manager
            .create_index(
                index(
                    "idx_tags_business_name",
                    Tags::Table,
                    &["tenant_id", "business_id", "name"],
                )
                .unique()
                .to_owned(),
            )
            .await?;

        let db = manager.get_connection();
        // The EMAIL and LAST_MESSAGE_AT orders sort on non-null keys (see contacts::order).
        db.execute_unprepared(
            "CREATE INDEX idx_contacts_email_order ON contacts (tenant_id, (COALESCE(email, '')), id)",
        )
        .await?;
        db.execute_unprepared(
            "CREATE INDEX idx_contacts_last_message_order ON contacts (tenant_id, (COALESCE(last_message_at, -1)), id)",
        )
        .await?;

        // Substring search: trigram indexes.
        match backend {
            DbBackend::Postgres => {
                db.execute_unprepared("CREATE EXTENSION IF NOT EXISTS pg_trgm")
                    .await?;
                db.execute_unprepared("CREATE EXTENSION IF NOT EXISTS btree_gin")
                    .await?;
                db.execute_unprepared(
                    "CREATE INDEX idx_contacts_search ON contacts USING gin (tenant_id, search_text gin_trgm_ops)",
                )
                .await?;
            }
            DbBackend::Sqlite => {
                // An external-content FTS5 table over contacts.search_text, kept in step by
                // triggers; `rowid` is the contacts table's rowid.
                for sql in [
                    "CREATE VIRTUAL TABLE contact_search USING fts5(search_text, content='contacts', content_rowid='rowid', tokenize='trigram')",
                    "CREATE TRIGGER contacts_search_insert AFTER INSERT ON contacts BEGIN \
                       INSERT INTO contact_search(rowid, search_text) VALUES (new.rowid, new.search_text); END",
                    "CREATE TRIGGER contacts_search_delete AFTER DELETE ON contacts BEGIN \
                       INSERT INTO contact_search(contact_search, rowid, search_text) VALUES ('delete', old.rowid, old.search_text); END",
                    "CREATE TRIGGER contacts_search_update AFTER UPDATE OF search_text ON contacts BEGIN \
                       INSERT INTO contact_search(contact_search, rowid, search_text) VALUES ('delete', old.rowid, old.search_text); \
                       INSERT INTO contact_search(rowid, search_text) VALUES (new.rowid, new.search_text); END",
                ] {
                    db.execute_unprepared(sql).await?;
                }
            }
            _ => {}
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        if manager.get_database_backend() == DbBackend::Sqlite {
            manager
                .get_connection()
                .execute_unprepared("DROP TABLE IF EXISTS contact_search")
                .await?;
        }
        for table in [
            "contact_assignees",
            "contact_tags",
            "contacts",
            "tags",
            "accounts",
            "businesses",
            "tenants",
        ] {
            manager
                .drop_table(Table::drop().table(Alias::new(table)).to_owned())
                .await?;
        }
        Ok(())
    }
}
