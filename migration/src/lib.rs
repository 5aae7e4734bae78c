//! Database schema of contact-gateway, as sea-orm-migration migrations.
//!
//! Every table carries `tenant_id` and every index starts with it, so that every query,
//! which is always scoped to one tenant, can use an index; the exceptions are the indexes
//! led by a reference to a contact or a tag, which deletes need (migration 10), and the
//! scheduler's `sources_due`, which looks across tenants (migration 11).

pub use sea_orm_migration::prelude::*;

mod m20261125_000001_create_core;
mod m20261125_000002_api_keys;
mod m20261125_000003_sources;
mod m20261125_000004_sqlite_clustered_links;
mod m20261125_000005_sparse_contact_indexes;
mod m20261125_000006_owned_rows_cascade;
mod m20261125_000007_search_index_automerge;
mod m20261129_000008_folded_names;
mod m20261129_000009_source_leases;
mod m20261129_000010_foreign_key_indexes;
mod m20261130_000011_sources_as_data;
mod m20261130_000012_deletions;
mod m20261130_000013_archived_contacts_index;
mod m20261130_000014_write_backs;
mod m20261130_000015_contact_events;
mod m20261130_000016_webhooks;
mod m20261130_000017_contact_counts;
mod m20261130_000018_live_contacts_search_indexes;
mod m20261201_000019_contact_count_deltas;

/// The statement that counts every parent's live contacts into `contact_counts` (migration 17).
pub use m20261130_000017_contact_counts::BACKFILL as CONTACT_COUNTS;

/// The statement that moves the counts' pending deltas into `contact_counts` (migration 19,
/// PostgreSQL).
pub use m20261201_000019_contact_count_deltas::{
    FOLD as FOLD_CONTACT_COUNT_DELTAS, FOLD_BATCH as FOLD_CONTACT_COUNT_DELTAS_BATCH,
};

/// Runs the migrations in order.
pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(m20261125_000001_create_core::Migration),
            Box::new(m20261125_000002_api_keys::Migration),
            Box::new(m20261125_000003_sources::Migration),
            Box::new(m20261125_000004_sqlite_clustered_links::Migration),
            Box::new(m20261125_000005_sparse_contact_indexes::Migration),
            Box::new(m20261125_000006_owned_rows_cascade::Migration),
            Box::new(m20261125_000007_search_index_automerge::Migration),
            Box::new(m20261129_000008_folded_names::Migration),
            Box::new(m20261129_000009_source_leases::Migration),
            Box::new(m20261129_000010_foreign_key_indexes::Migration),
            Box::new(m20261130_000011_sources_as_data::Migration),
            Box::new(m20261130_000012_deletions::Migration),
            Box::new(m20261130_000013_archived_contacts_index::Migration),
            Box::new(m20261130_000014_write_backs::Migration),
            Box::new(m20261130_000015_contact_events::Migration),
            Box::new(m20261130_000016_webhooks::Migration),
            Box::new(m20261130_000017_contact_counts::Migration),
            Box::new(m20261130_000018_live_contacts_search_indexes::Migration),
            Box::new(m20261201_000019_contact_count_deltas::Migration),
        ]
    }
}
