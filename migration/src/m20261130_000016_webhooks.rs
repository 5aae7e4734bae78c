//! Webhooks and their delivery queue. A delivery is queued in the transaction of the
//! change it reports (an outbox, as `write_backs`), one per change and subscribed webhook;
//! the worker sends them in order per webhook and contact.
use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::ConnectionTrait;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Tenants {
    Table,
    Id,
}

#[derive(DeriveIden)]
enum Webhooks {
    Table,
    Id,
    TenantId,
    Url,
    Events,
    Description,
    Secret,
    Enabled,
    FailingSince,
    DisabledReason,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum Deliveries {
    #[sea_orm(iden = "webhook_deliveries")]
    Table,
    Id,
    TenantId,
    WebhookId,
    ContactId,
    Kind,
    Body,
    State,
    Attempts,
    NextAttemptAt,
    StatusCode,
    DurationMs,
    LastError,
    DeliveredAt,
    CreatedAt,
    UpdatedAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let text = |c: Webhooks| ColumnDef::new(c).text().not_null().to_owned();
        let big = |c: Webhooks| ColumnDef::new(c).big_integer().not_null().to_owned();
        manager
            .create_table(
                Table::create()
                    .table(Webhooks::Table)
                    .col(ColumnDef::new(Webhooks::Id).uuid().not_null().primary_key())
                    .col(ColumnDef::new(Webhooks::TenantId).uuid().not_null())
                    .col(text(Webhooks::Url))
                    .col(text(Webhooks::Events))
                    .col(ColumnDef::new(Webhooks::Description).text().null())
                    .col(text(Webhooks::Secret))
                    .col(ColumnDef::new(Webhooks::Enabled).boolean().not_null())
                    .col(ColumnDef::new(Webhooks::FailingSince).big_integer().null())
                    .col(ColumnDef::new(Webhooks::DisabledReason).text().null())
                    .col(big(Webhooks::CreatedAt))
                    .col(big(Webhooks::UpdatedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .from(Webhooks::Table, Webhooks::TenantId)
                            .to(Tenants::Table, Tenants::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        let text = |c: Deliveries| ColumnDef::new(c).text().not_null().to_owned();
        let big = |c: Deliveries| ColumnDef::new(c).big_integer().not_null().to_owned();
        manager
            .create_table(
                Table::create()
                    .table(Deliveries::Table)
                    .col(
                        ColumnDef::new(Deliveries::Id)
                            .uuid()
                            .not_null()
                            .primary_key(),
                    )
                    .col(ColumnDef::new(Deliveries::TenantId).uuid().not_null())
                    .col(ColumnDef::new(Deliveries::WebhookId).uuid().not_null())
                    .col(ColumnDef::new(Deliveries::ContactId).uuid().not_null())
                    .col(text(Deliveries::Kind))
                    .col(text(Deliveries::Body))
                    .col(text(Deliveries::State))
                    .col(ColumnDef::new(Deliveries::Attempts).integer().not_null())
                    .col(big(Deliveries::NextAttemptAt))
                    .col(ColumnDef::new(Deliveries::StatusCode).integer().null())
                    .col(ColumnDef::new(Deliveries::DurationMs).big_integer().null())
                    .col(ColumnDef::new(Deliveries::LastError).text().null())
                    .col(ColumnDef::new(Deliveries::DeliveredAt).big_integer().null())
                    .col(big(Deliveries::CreatedAt))
                    .col(big(Deliveries::UpdatedAt))
                    // No foreign key to `webhooks`: another replica may queue a delivery
                    // for a webhook deleted a moment before (its list of webhooks is cached
                    // for seconds); the worker drops such deliveries.
                    .to_owned(),
            )
            .await?;
        let db = manager.get_connection();
        db.execute_unprepared(
            "CREATE INDEX idx_webhooks_tenant ON webhooks (tenant_id, created_at, id)",
        )
        .await?;
        // What the worker claims: due deliveries (few) without reading delivered ones.
        db.execute_unprepared(
            "CREATE INDEX idx_webhook_deliveries_due ON webhook_deliveries (next_attempt_at) \
             WHERE state IN ('PENDING', 'DELIVERING')",
        )
        .await?;
        // A webhook's deliveries per contact in order (those ahead of one being claimed).
        db.execute_unprepared(
            "CREATE INDEX idx_webhook_deliveries_contact ON webhook_deliveries \
             (webhook_id, contact_id, state, id)",
        )
        .await?;
        // Delivered deliveries by age, for their removal after the retention.
        db.execute_unprepared(
            "CREATE INDEX idx_webhook_deliveries_delivered ON webhook_deliveries (delivered_at) \
             WHERE state = 'DELIVERED'",
        )
        .await?;
        // The delivery log of a webhook, newest first (`Webhook.deliveries`).
        db.execute_unprepared(
            "CREATE INDEX idx_webhook_deliveries_log ON webhook_deliveries (webhook_id, created_at, id)",
        )
        .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let db = manager.get_connection();
        db.execute_unprepared("DROP TABLE webhook_deliveries")
            .await?;
        db.execute_unprepared("DROP TABLE webhooks").await?;
        Ok(())
    }
}
