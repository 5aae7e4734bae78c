//! Sources as data: `sources` (each tenant's vendor APIs, their schedule and their encrypted
//! bearer token) and `sync_runs` (the history of their runs, the last 50 per source).
//!
//! `sources_due` is the one index not led by `tenant_id`: the scheduler of every `serve`
//! process looks for due sources of every tenant at once.
use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Sources {
    Table,
    Id,
    TenantId,
    Name,
    Format,
    Url,
    Accounts,
    Businesses,
    Headers,
    Token,
    TokenLast4,
    IntervalMs,
    FullEveryMs,
    OverlapMs,
    MaxRequestsPerMinute,
    Enabled,
    Suspended,
    NextRunAt,
    LastFullAt,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum SyncRuns {
    Table,
    Id,
    TenantId,
    SourceId,
    Mode,
    Trigger,
    StartedAt,
    FinishedAt,
    Status,
    Created,
    Updated,
    Unchanged,
    Deleted,
    Warnings,
    Rejected,
    Requests,
    Retries,
    ErrorCode,
    ErrorMessage,
}

#[derive(DeriveIden)]
enum Tenants {
    Table,
    Id,
}

fn big(name: impl IntoIden) -> ColumnDef {
    ColumnDef::new(name).big_integer().not_null().to_owned()
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Sources::Table)
                    .col(ColumnDef::new(Sources::Id).uuid().not_null().primary_key())
                    .col(ColumnDef::new(Sources::TenantId).uuid().not_null())
                    .col(ColumnDef::new(Sources::Name).text().not_null())
                    .col(ColumnDef::new(Sources::Format).text().not_null())
                    .col(ColumnDef::new(Sources::Url).text().not_null())
                    .col(ColumnDef::new(Sources::Accounts).text().not_null())
                    .col(ColumnDef::new(Sources::Businesses).text().not_null())
                    .col(ColumnDef::new(Sources::Headers).text().not_null())
                    .col(ColumnDef::new(Sources::Token).text().null())
                    .col(ColumnDef::new(Sources::TokenLast4).text().null())
                    .col(big(Sources::IntervalMs))
                    .col(big(Sources::FullEveryMs))
                    .col(big(Sources::OverlapMs))
                    .col(
                        ColumnDef::new(Sources::MaxRequestsPerMinute)
                            .integer()
                            .null(),
                    )
                    .col(ColumnDef::new(Sources::Enabled).boolean().not_null())
                    .col(ColumnDef::new(Sources::Suspended).text().null())
                    .col(ColumnDef::new(Sources::NextRunAt).big_integer().null())
                    .col(ColumnDef::new(Sources::LastFullAt).big_integer().null())
                    .col(big(Sources::CreatedAt))
                    .col(big(Sources::UpdatedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .from(Sources::Table, Sources::TenantId)
                            .to(Tenants::Table, Tenants::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("sources_tenant_name")
                    .table(Sources::Table)
                    .col(Sources::TenantId)
                    .col(Sources::Name)
                    .unique()
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("sources_due")
                    .table(Sources::Table)
                    .col(Sources::NextRunAt)
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(SyncRuns::Table)
                    .col(ColumnDef::new(SyncRuns::Id).uuid().not_null().primary_key())
                    .col(ColumnDef::new(SyncRuns::TenantId).uuid().not_null())
                    .col(ColumnDef::new(SyncRuns::SourceId).uuid().not_null())
                    .col(ColumnDef::new(SyncRuns::Mode).text().not_null())
                    .col(ColumnDef::new(SyncRuns::Trigger).text().not_null())
                    .col(big(SyncRuns::StartedAt))
                    .col(ColumnDef::new(SyncRuns::FinishedAt).big_integer().null())
                    .col(ColumnDef::new(SyncRuns::Status).text().not_null())
                    .col(big(SyncRuns::Created))
                    .col(big(SyncRuns::Updated))
                    .col(big(SyncRuns::Unchanged))
                    .col(big(SyncRuns::Deleted))
                    .col(big(SyncRuns::Warnings))
                    .col(big(SyncRuns::Rejected))
                    .col(big(SyncRuns::Requests))
                    .col(big(SyncRuns::Retries))
                    .col(ColumnDef::new(SyncRuns::ErrorCode).text().null())
                    .col(ColumnDef::new(SyncRuns::ErrorMessage).text().null())
                    .foreign_key(
                        ForeignKey::create()
                            .from(SyncRuns::Table, SyncRuns::SourceId)
                            .to(Sources::Table, Sources::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        // A source's runs, newest first (ids are UUIDv7, so in start order); also what the
        // cascade from `sources` needs.
        manager
            .create_index(
                Index::create()
                    .name("sync_runs_source")
                    .table(SyncRuns::Table)
                    .col(SyncRuns::SourceId)
                    .col(SyncRuns::Id)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(SyncRuns::Table).to_owned())
            .await?;
        manager
            .drop_table(Table::drop().table(Sources::Table).to_owned())
            .await
    }
}
