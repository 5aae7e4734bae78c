//! `contact_events`: the change feed. One row per committed change of a contact, written in
//! the transaction of the change (so a rolled-back change leaves none), numbered in order
//! (`seq`). Each server process tails it for its subscribers; on PostgreSQL a statement
//! trigger sends `NOTIFY contact_events` (delivered at commit) so that every replica reads
//! the new rows at once.
use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::{ConnectionTrait, DbBackend};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum ContactEvents {
    Table,
    Seq,
    TenantId,
    ContactId,
    Kind,
    ChangedFields,
    SurvivorId,
    CreatedAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(ContactEvents::Table)
                    .col(
                        ColumnDef::new(ContactEvents::Seq)
                            .big_integer()
                            .not_null()
                            .auto_increment()
                            .primary_key(),
                    )
                    .col(ColumnDef::new(ContactEvents::TenantId).uuid().not_null())
                    .col(ColumnDef::new(ContactEvents::ContactId).uuid().not_null())
                    .col(ColumnDef::new(ContactEvents::Kind).string().not_null())
                    .col(ColumnDef::new(ContactEvents::ChangedFields).text())
                    .col(ColumnDef::new(ContactEvents::SurvivorId).uuid())
                    .col(
                        ColumnDef::new(ContactEvents::CreatedAt)
                            .big_integer()
                            .not_null(),
                    )
                    .to_owned(),
            )
            .await?;
        let db = manager.get_connection();
        // Old events by age, for their removal.
        db.execute_unprepared(
            "CREATE INDEX idx_contact_events_created ON contact_events (created_at)",
        )
        .await?;
        if manager.get_database_backend() == DbBackend::Postgres {
            db.execute_unprepared(
                "CREATE FUNCTION notify_contact_events() RETURNS trigger AS $$ \
                 BEGIN PERFORM pg_notify('contact_events', ''); RETURN NULL; END \
                 $$ LANGUAGE plpgsql",
            )
            .await?;
            db.execute_unprepared(
                "CREATE TRIGGER contact_events_notify AFTER INSERT ON contact_events \
                 FOR EACH STATEMENT EXECUTE FUNCTION notify_contact_events()",
            )
            .await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(ContactEvents::Table).to_owned())
            .await?;
        if manager.get_database_backend() == DbBackend::Postgres {
            manager
                .get_connection()
                .execute_unprepared("DROP FUNCTION notify_contact_events()")
                .await?;
        }
        Ok(())
    }
}
