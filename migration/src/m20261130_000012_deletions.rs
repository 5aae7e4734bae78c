//! Deletions at the source: `contact_sources.deleted_at` (a FULL sync run no longer saw the
//! record) and `contacts.archived_at` (every source record of the contact is deleted: hidden
//! from lists and counts unless asked for). A partial index finds a source's deleted records
//! (few) without reading its live ones (many): each run asks whether there are any.
use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::ConnectionTrait;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum ContactSources {
    Table,
    DeletedAt,
}

#[derive(DeriveIden)]
enum Contacts {
    Table,
    ArchivedAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(ContactSources::Table)
                    .add_column(
                        ColumnDef::new(ContactSources::DeletedAt)
                            .big_integer()
                            .null(),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(Contacts::Table)
                    .add_column(ColumnDef::new(Contacts::ArchivedAt).big_integer().null())
                    .to_owned(),
            )
            .await?;
        manager
            .get_connection()
            .execute_unprepared(
                "CREATE INDEX idx_contact_sources_deleted ON contact_sources \
                 (tenant_id, source, external_id) WHERE deleted_at IS NOT NULL",
            )
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .get_connection()
            .execute_unprepared("DROP INDEX idx_contact_sources_deleted")
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(Contacts::Table)
                    .drop_column(Contacts::ArchivedAt)
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(ContactSources::Table)
                    .drop_column(ContactSources::DeletedAt)
                    .to_owned(),
            )
            .await
    }
}
