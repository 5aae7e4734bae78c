//! Vendor sources: the raw record behind each imported contact, the vendor ids of accounts,
//! businesses and tags, each source's sync state, and the identity keys (emails, phones) that
//! duplicate detection groups on.
use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum ContactSources {
    Table,
    Id,
    TenantId,
    ContactId,
    Source,
    Format,
    ExternalId,
    Record,
    Mapped,
    RecordHash,
    FetchedAt,
}

#[derive(DeriveIden)]
enum SourceEntities {
    Table,
    TenantId,
    Source,
    Kind,
    ExternalId,
    EntityId,
}

#[derive(DeriveIden)]
enum SourceStates {
    Table,
    TenantId,
    Name,
    Format,
    LastRunAt,
    LastSuccessAt,
    LastError,
    Watermark,
    Cursor,
    Created,
    Updated,
    Unchanged,
    Warnings,
    Rejected,
}

#[derive(DeriveIden)]
enum ContactKeys {
    Table,
    TenantId,
    Kind,
    Value,
    ContactId,
}

#[derive(DeriveIden)]
enum Contacts {
    Table,
    Id,
}

#[derive(DeriveIden)]
enum Tenants {
    Table,
    Id,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(ContactSources::Table)
                    .col(uuid(ContactSources::Id).primary_key())
                    .col(uuid(ContactSources::TenantId))
                    .col(uuid(ContactSources::ContactId))
                    .col(text(ContactSources::Source))
                    .col(text(ContactSources::Format))
                    .col(text(ContactSources::ExternalId))
                    .col(text(ContactSources::Record))
                    .col(text(ContactSources::Mapped))
                    .col(text(ContactSources::RecordHash))
                    .col(big_integer(ContactSources::FetchedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .from(ContactSources::Table, ContactSources::ContactId)
                            .to(Contacts::Table, Contacts::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_contact_sources_identity")
                    .table(ContactSources::Table)
                    .col(ContactSources::TenantId)
                    .col(ContactSources::Source)
                    .col(ContactSources::ExternalId)
                    .unique()
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_contact_sources_contact")
                    .table(ContactSources::Table)
                    .col(ContactSources::TenantId)
                    .col(ContactSources::ContactId)
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(SourceEntities::Table)
                    .col(uuid(SourceEntities::TenantId))
                    .col(text(SourceEntities::Source))
                    .col(text(SourceEntities::Kind))
                    .col(text(SourceEntities::ExternalId))
                    .col(uuid(SourceEntities::EntityId))
                    .primary_key(
                        Index::create()
                            .col(SourceEntities::TenantId)
                            .col(SourceEntities::Source)
                            .col(SourceEntities::Kind)
                            .col(SourceEntities::ExternalId),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .from(SourceEntities::Table, SourceEntities::TenantId)
                            .to(Tenants::Table, Tenants::Id),
                    )
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(SourceStates::Table)
                    .col(uuid(SourceStates::TenantId))
                    .col(text(SourceStates::Name))
                    .col(text(SourceStates::Format))
                    .col(big_integer_null(SourceStates::LastRunAt))
                    .col(big_integer_null(SourceStates::LastSuccessAt))
                    .col(text_null(SourceStates::LastError))
                    .col(text_null(SourceStates::Watermark))
                    .col(text_null(SourceStates::Cursor))
                    .col(big_integer(SourceStates::Created).default(0))
                    .col(big_integer(SourceStates::Updated).default(0))
                    .col(big_integer(SourceStates::Unchanged).default(0))
                    .col(big_integer(SourceStates::Warnings).default(0))
                    .col(big_integer(SourceStates::Rejected).default(0))
                    .primary_key(
                        Index::create()
                            .col(SourceStates::TenantId)
                            .col(SourceStates::Name),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .from(SourceStates::Table, SourceStates::TenantId)
                            .to(Tenants::Table, Tenants::Id),
                    )
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(ContactKeys::Table)
                    .col(uuid(ContactKeys::TenantId))
                    .col(text(ContactKeys::Kind))
                    .col(text(ContactKeys::Value))
                    .col(uuid(ContactKeys::ContactId))
                    .primary_key(
                        Index::create()
                            .col(ContactKeys::TenantId)
                            .col(ContactKeys::Kind)
                            .col(ContactKeys::Value)
                            .col(ContactKeys::ContactId),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .from(ContactKeys::Table, ContactKeys::ContactId)
                            .to(Contacts::Table, Contacts::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_contact_keys_contact")
                    .table(ContactKeys::Table)
                    .col(ContactKeys::TenantId)
                    .col(ContactKeys::ContactId)
                    .to_owned(),
            )
            .await?;
        // Contacts written before this migration get their keys here.
        let db = manager.get_connection();
        let backfill = match manager.get_database_backend() {
            sea_orm::DatabaseBackend::Postgres => {
                "INSERT INTO contact_keys (tenant_id, kind, value, contact_id)
                 SELECT DISTINCT tenant_id, kind, value, id FROM (
                   SELECT tenant_id, 'EMAIL' AS kind, email AS value, id FROM contacts WHERE email IS NOT NULL
                   UNION ALL SELECT tenant_id, 'PHONE', phone, id FROM contacts WHERE phone IS NOT NULL
                   UNION ALL SELECT c.tenant_id, 'EMAIL', e.value, c.id FROM contacts c, json_array_elements_text(c.secondary_emails::json) e
                   UNION ALL SELECT c.tenant_id, 'PHONE', p.value, c.id FROM contacts c, json_array_elements_text(c.secondary_phones::json) p
                 ) k"
            }
            _ => {
                "INSERT INTO contact_keys (tenant_id, kind, value, contact_id)
                 SELECT DISTINCT tenant_id, kind, value, id FROM (
                   SELECT tenant_id, 'EMAIL' AS kind, email AS value, id FROM contacts WHERE email IS NOT NULL
                   UNION ALL SELECT tenant_id, 'PHONE', phone, id FROM contacts WHERE phone IS NOT NULL
                   UNION ALL SELECT c.tenant_id, 'EMAIL', e.value, c.id FROM contacts c, json_each(c.secondary_emails) e
                   UNION ALL SELECT c.tenant_id, 'PHONE', p.value, c.id FROM contacts c, json_each(c.secondary_phones) p
                 )"
            }
        };
        db.execute_unprepared(backfill).await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in [
            "contact_keys",
            "source_states",
            "source_entities",
            "contact_sources",
        ] {
            manager
                .drop_table(Table::drop().table(Alias::new(table)).to_owned())
                .await?;
        }
        Ok(())
    }
}
