//! `contact_events`: the change feed. One row per committed change of a contact, written in
//! the transaction of the change (so a rolled-back change leaves none), numbered in order
//! (`seq`). Each server process tails it for its subscribers. (No `NOTIFY` trigger: a
//! notifying commit takes a database-wide lock until it is flushed, which serialised every
//! write; replicas read the table instead.)
use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::ConnectionTrait;

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
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(ContactEvents::Table).to_owned())
            .await?;
        Ok(())
    }
}
