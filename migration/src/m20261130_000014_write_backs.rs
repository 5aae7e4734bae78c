//! Write-back (issue 17): `sources.write_back` (how a source is written to; null: read-only),
//! the `write_backs` outbox, filled in the transaction of each contact change and drained by
//! the delivery worker (no foreign key to `sources` either: a deleted source's changes stay,
//! and are failed when they come due), and `write_conflicts`, the fields of changes a vendor refused because
//! its record had changed. No foreign key to `contacts`: a deleted contact's
//! `DELETE` must outlive its row.
use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::ConnectionTrait;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Sources {
    Table,
    WriteBack,
}

#[derive(DeriveIden)]
enum Tenants {
    Table,
    Id,
}

#[derive(DeriveIden)]
enum WriteConflicts {
    Table,
    Id,
    TenantId,
    WriteBackId,
    ContactId,
    SourceId,
    Source,
    Field,
    VendorField,
    Ours,
    Theirs,
    DetectedAt,
    Resolution,
    ResolvedAt,
}

#[derive(DeriveIden)]
enum WriteBacks {
    Table,
    Id,
    TenantId,
    ContactId,
    SourceId,
    Source,
    ExternalId,
    Operation,
    Body,
    Url,
    BaseVersion,
    State,
    IdempotencyKey,
    Attempts,
    LastError,
    NextAttemptAt,
    DeliveredAt,
    CreatedAt,
    UpdatedAt,
}

fn text(name: impl IntoIden) -> ColumnDef {
    ColumnDef::new(name).text().not_null().to_owned()
}

fn big(name: impl IntoIden) -> ColumnDef {
    ColumnDef::new(name).big_integer().not_null().to_owned()
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(Sources::Table)
                    .add_column(ColumnDef::new(Sources::WriteBack).text().null())
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(WriteBacks::Table)
                    .col(
                        ColumnDef::new(WriteBacks::Id)
                            .uuid()
                            .not_null()
                            .primary_key(),
                    )
                    .col(ColumnDef::new(WriteBacks::TenantId).uuid().not_null())
                    .col(ColumnDef::new(WriteBacks::ContactId).uuid().not_null())
                    .col(ColumnDef::new(WriteBacks::SourceId).uuid().not_null())
                    .col(text(WriteBacks::Source))
                    .col(text(WriteBacks::ExternalId))
                    .col(text(WriteBacks::Operation))
                    .col(text(WriteBacks::Body))
                    .col(text(WriteBacks::Url))
                    .col(ColumnDef::new(WriteBacks::BaseVersion).text().null())
                    .col(text(WriteBacks::State))
                    .col(text(WriteBacks::IdempotencyKey))
                    .col(ColumnDef::new(WriteBacks::Attempts).integer().not_null())
                    .col(ColumnDef::new(WriteBacks::LastError).text().null())
                    .col(big(WriteBacks::NextAttemptAt))
                    .col(ColumnDef::new(WriteBacks::DeliveredAt).big_integer().null())
                    .col(big(WriteBacks::CreatedAt))
                    .col(big(WriteBacks::UpdatedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .from(WriteBacks::Table, WriteBacks::TenantId)
                            .to(Tenants::Table, Tenants::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        let db = manager.get_connection();
        // What the worker claims: due changes (few) without reading delivered ones (many).
        db.execute_unprepared(
            "CREATE INDEX idx_write_backs_due ON write_backs (next_attempt_at) \
             WHERE state IN ('PENDING', 'DELIVERING')",
        )
        .await?;
        // A contact's changes by state and source, in order: the pending ones a change is
        // merged into, those ahead of a change being claimed, `Contact.writeBacks`. The state
        // comes before the source so that looking up a contact's pending changes has three
        // equal columns here, against two in `idx_write_backs_state` (SQLite, without
        // statistics, would otherwise walk every pending change of the tenant).
        db.execute_unprepared(
            "CREATE INDEX idx_write_backs_contact ON write_backs \
             (tenant_id, contact_id, state, source_id, id)",
        )
        .await?;
        // The tenant's queue by state, in order (`writeBacks(filter: { state })`).
        db.execute_unprepared(
            "CREATE INDEX idx_write_backs_state ON write_backs (tenant_id, state, id)",
        )
        .await?;
        // Delivered changes by age, for their removal after the retention.
        db.execute_unprepared(
            "CREATE INDEX idx_write_backs_delivered ON write_backs (delivered_at) \
             WHERE state = 'DELIVERED'",
        )
        .await?;
        // `writeBacks(filter: { source })`.
        db.execute_unprepared(
            "CREATE INDEX idx_write_backs_source ON write_backs (tenant_id, source, id)",
        )
        .await?;
        manager
            .create_table(
                Table::create()
                    .table(WriteConflicts::Table)
                    .col(
                        ColumnDef::new(WriteConflicts::Id)
                            .uuid()
                            .not_null()
                            .primary_key(),
                    )
                    .col(ColumnDef::new(WriteConflicts::TenantId).uuid().not_null())
                    .col(
                        ColumnDef::new(WriteConflicts::WriteBackId)
                            .uuid()
                            .not_null(),
                    )
                    .col(ColumnDef::new(WriteConflicts::ContactId).uuid().not_null())
                    .col(ColumnDef::new(WriteConflicts::SourceId).uuid().not_null())
                    .col(text(WriteConflicts::Source))
                    .col(text(WriteConflicts::Field))
                    .col(text(WriteConflicts::VendorField))
                    .col(text(WriteConflicts::Ours))
                    .col(text(WriteConflicts::Theirs))
                    .col(big(WriteConflicts::DetectedAt))
                    .col(ColumnDef::new(WriteConflicts::Resolution).text().null())
                    .col(
                        ColumnDef::new(WriteConflicts::ResolvedAt)
                            .big_integer()
                            .null(),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .from(WriteConflicts::Table, WriteConflicts::WriteBackId)
                            .to(WriteBacks::Table, WriteBacks::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        // The tenant's conflicts in order, open ones apart (`writeConflicts`).
        db.execute_unprepared(
            "CREATE INDEX idx_write_conflicts_tenant ON write_conflicts \
             (tenant_id, resolved_at, id)",
        )
        .await?;
        db.execute_unprepared(
            "CREATE INDEX idx_write_conflicts_change ON write_conflicts (write_back_id)",
        )
        .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(WriteConflicts::Table).to_owned())
            .await?;
        manager
            .drop_table(Table::drop().table(WriteBacks::Table).to_owned())
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(Sources::Table)
                    .drop_column(Sources::WriteBack)
                    .to_owned(),
            )
            .await
    }
}
