//! A partial index of archived contacts (few): lists that are not filtered by the contacts'
//! columns, such as the duplicate groups read from `contact_keys`, leave them out by looking
//! them up here instead of reading every contact.
use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::ConnectionTrait;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .get_connection()
            .execute_unprepared(
                "CREATE INDEX idx_contacts_archived ON contacts (tenant_id, id) \
                 WHERE archived_at IS NOT NULL",
            )
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .get_connection()
            .execute_unprepared("DROP INDEX idx_contacts_archived")
            .await?;
        Ok(())
    }
}
