//! On PostgreSQL, `contact_keys` and `contact_sources` lose their foreign keys to `contacts`;
//! a trigger deletes them with their contact instead.
//!
//! PostgreSQL checks a foreign key by running a locking lookup of the parent row for each
//! inserted row. For the two key rows and the source record of every imported contact that
//! was 1.1 s of server CPU per 100,000 contacts, a fifth of the server's work for an import.
//!
//! Both tables belong to their contact: they are written in the same transaction as the
//! contact (`contacts::keys`, `sources::import`) and deleted with it
//! (`contacts::write::delete_rows`). What the foreign keys' `ON DELETE CASCADE` did for a
//! contact deleted by any other means, a statement-level trigger on `contacts` now does: it
//! deletes the keys and source records of the deleted contacts, one statement per table for
//! the whole `DELETE`.
//!
//! SQLite keeps its foreign keys: there a check is an in-process index lookup.
use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::{ConnectionTrait, DbBackend};

#[derive(DeriveMigrationName)]
pub struct Migration;

/// The trigger function and trigger that delete what belonged to deleted contacts.
const CASCADE_UP: [&str; 2] = [
    "CREATE FUNCTION contacts_delete_owned() RETURNS trigger LANGUAGE plpgsql AS $$ \
     BEGIN \
       DELETE FROM contact_keys k USING deleted_contacts d \
         WHERE k.tenant_id = d.tenant_id AND k.contact_id = d.id; \
       DELETE FROM contact_sources s USING deleted_contacts d \
         WHERE s.tenant_id = d.tenant_id AND s.contact_id = d.id; \
       RETURN NULL; \
     END $$",
    "CREATE TRIGGER contacts_delete_owned AFTER DELETE ON contacts \
     REFERENCING OLD TABLE AS deleted_contacts FOR EACH STATEMENT \
     EXECUTE FUNCTION contacts_delete_owned()",
];

/// The tables that lose their foreign key on PostgreSQL, with the key's name.
const OWNED: [(&str, &str); 2] = [
    ("contact_keys", "contact_keys_contact_id_fkey"),
    ("contact_sources", "contact_sources_contact_id_fkey"),
];

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        if manager.get_database_backend() == DbBackend::Postgres {
            let db = manager.get_connection();
            for (table, key) in OWNED {
                db.execute_unprepared(&format!("ALTER TABLE {table} DROP CONSTRAINT {key}"))
                    .await?;
            }
            for sql in CASCADE_UP {
                db.execute_unprepared(sql).await?;
            }
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        if manager.get_database_backend() == DbBackend::Postgres {
            let db = manager.get_connection();
            db.execute_unprepared("DROP TRIGGER contacts_delete_owned ON contacts")
                .await?;
            db.execute_unprepared("DROP FUNCTION contacts_delete_owned()")
                .await?;
            for (table, key) in OWNED {
                db.execute_unprepared(&format!(
                    "ALTER TABLE {table} ADD CONSTRAINT {key} FOREIGN KEY (contact_id) \
                     REFERENCES contacts (id) ON DELETE CASCADE"
                ))
                .await?;
            }
        }
        Ok(())
    }

    /// All or nothing.
    fn use_transaction(&self) -> Option<bool> {
        Some(true)
    }
}
