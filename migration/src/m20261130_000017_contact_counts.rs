//! `contact_counts`: how many live (not archived) contacts each account, business and tag
//! has, kept by triggers in the transaction of every write that changes it, so that
//! `totalCount` of an unfiltered `Account.contacts`, `Business.contacts` or `Tag.contacts`
//! is one indexed read instead of counting up to every contact of the parent.
//!
//! Triggers rather than code in each write path: contacts are inserted, moved, archived,
//! restored, merged and deleted by mutations, imports, syncs and merges, and tag links by
//! even more; a trigger cannot be forgotten by a new one.
//!
//! - **PostgreSQL**: statement-level triggers with transition tables, one grouped upsert per
//!   statement (an import's 500-row `INSERT` changes each parent's row once). The upsert
//!   takes the rows in key order, so two statements lock them in the same order. Deleting a
//!   contact first deletes its tag links (a row-level `BEFORE DELETE` trigger), so that the
//!   links' trigger still sees the contact live and counts its tags down.
//!   (Migration 19 turns the upsert into appended deltas, folded later: in-place updates
//!   could deadlock across the statements of two transactions.)
//! - **SQLite**: row-level triggers (a write there is one in-process B-tree update; there is
//!   one writer at a time).
//!
//! A parent's row appears with its first contact and stays (at 0) after its last one goes.
use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::{ConnectionTrait, DbBackend};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum ContactCounts {
    Table,
    TenantId,
    ParentKind,
    ParentId,
    Live,
}

/// Adds the rows of `deltas` (columns tenant_id, parent_kind, parent_id, d) to the counts,
/// parents in key order.
pub(crate) fn upsert_pg(deltas: &str) -> String {
    format!(
        "INSERT INTO contact_counts (tenant_id, parent_kind, parent_id, live) \
         SELECT tenant_id, parent_kind, parent_id, sum(d) FROM ({deltas}) deltas \
         GROUP BY tenant_id, parent_kind, parent_id HAVING sum(d) <> 0 \
         ORDER BY tenant_id, parent_kind, parent_id \
         ON CONFLICT (tenant_id, parent_kind, parent_id) \
         DO UPDATE SET live = contact_counts.live + excluded.live"
    )
}

/// The account and business deltas of contact rows `rows` (live ones count `sign`).
fn parents_of(rows: &str, sign: &str) -> String {
    format!(
        "SELECT tenant_id, 'account' AS parent_kind, account_id AS parent_id, {sign} AS d \
           FROM {rows} WHERE archived_at IS NULL AND account_id IS NOT NULL \
         UNION ALL SELECT tenant_id, 'business', business_id, {sign} \
           FROM {rows} WHERE archived_at IS NULL AND business_id IS NOT NULL"
    )
}

/// The tag deltas of link rows `links` whose contact is live (each counts `sign`).
fn tags_of_links(links: &str, sign: &str) -> String {
    format!(
        "SELECT l.tenant_id, 'tag' AS parent_kind, l.tag_id AS parent_id, {sign} AS d \
           FROM {links} l JOIN contacts c ON c.tenant_id = l.tenant_id AND c.id = l.contact_id \
          WHERE c.archived_at IS NULL"
    )
}

/// The six counting functions of the PostgreSQL triggers, each `create` (`CREATE FUNCTION`,
/// or `CREATE OR REPLACE FUNCTION` for a later migration that changes them) and applying its
/// statement's deltas (a query of tenant_id, parent_kind, parent_id, d) with `apply`.
pub(crate) fn postgres_functions(create: &str, apply: fn(&str) -> String) -> Vec<String> {
    // Rows of an UPDATE whose parents or liveness changed, before (`o`) or after (`n`).
    let moved = |side: &str| {
        format!(
            "(SELECT {side}.* FROM old_contacts o JOIN new_contacts n ON n.id = o.id \
             WHERE n.account_id IS DISTINCT FROM o.account_id \
                OR n.business_id IS DISTINCT FROM o.business_id \
                OR (n.archived_at IS NULL) <> (o.archived_at IS NULL)) moved_{side}"
        )
    };
    // Tags of contacts archived (-1) or restored (+1) by an UPDATE.
    let relived = "SELECT l.tenant_id, 'tag' AS parent_kind, l.tag_id AS parent_id, \
                     CASE WHEN n.archived_at IS NULL THEN 1 ELSE -1 END AS d \
                   FROM old_contacts o JOIN new_contacts n ON n.id = o.id \
                   JOIN contact_tags l ON l.tenant_id = n.tenant_id AND l.contact_id = n.id \
                  WHERE (n.archived_at IS NULL) <> (o.archived_at IS NULL)";
    let function = |name: &str, body: String| {
        format!(
            "{create} {name}() RETURNS trigger LANGUAGE plpgsql AS $$ \
             BEGIN {body}; RETURN NULL; END $$"
        )
    };
    vec![
        function(
            "contact_counts_insert",
            apply(&parents_of("new_contacts", "1")),
        ),
        function(
            "contact_counts_delete",
            apply(&parents_of("old_contacts", "-1")),
        ),
        function(
            "contact_counts_update",
            apply(&format!(
                "{} UNION ALL {} UNION ALL {relived}",
                parents_of(&moved("o"), "-1"),
                parents_of(&moved("n"), "1")
            )),
        ),
        function(
            "contact_counts_link_insert",
            apply(&tags_of_links("new_links", "1")),
        ),
        function(
            "contact_counts_link_delete",
            apply(&tags_of_links("old_links", "-1")),
        ),
        function(
            "contact_counts_link_update",
            apply(&format!(
                "{} UNION ALL {}",
                tags_of_links("old_links", "-1"),
                tags_of_links("new_links", "1")
            )),
        ),
    ]
}

fn postgres_up() -> Vec<String> {
    let mut statements = postgres_functions("CREATE FUNCTION", upsert_pg);
    statements.extend([
        "CREATE FUNCTION contact_counts_unlink() RETURNS trigger LANGUAGE plpgsql AS $$ \
         BEGIN DELETE FROM contact_tags WHERE tenant_id = OLD.tenant_id AND contact_id = OLD.id; \
         RETURN OLD; END $$"
            .to_string(),
        "CREATE TRIGGER contact_counts_unlink BEFORE DELETE ON contacts \
         FOR EACH ROW EXECUTE FUNCTION contact_counts_unlink()"
            .to_string(),
        statement_trigger(
            "contact_counts_insert",
            "INSERT",
            "contacts",
            "NEW TABLE AS new_contacts",
        ),
        statement_trigger(
            "contact_counts_delete",
            "DELETE",
            "contacts",
            "OLD TABLE AS old_contacts",
        ),
        statement_trigger(
            "contact_counts_update",
            "UPDATE",
            "contacts",
            "OLD TABLE AS old_contacts NEW TABLE AS new_contacts",
        ),
        statement_trigger(
            "contact_counts_link_insert",
            "INSERT",
            "contact_tags",
            "NEW TABLE AS new_links",
        ),
        statement_trigger(
            "contact_counts_link_delete",
            "DELETE",
            "contact_tags",
            "OLD TABLE AS old_links",
        ),
        statement_trigger(
            "contact_counts_link_update",
            "UPDATE",
            "contact_tags",
            "OLD TABLE AS old_links NEW TABLE AS new_links",
        ),
    ]);
    statements
}

/// An `AFTER {event}` statement trigger on `table` running the function of its own name,
/// with the transition tables `referencing` (PostgreSQL).
fn statement_trigger(name: &str, event: &str, table: &str, referencing: &str) -> String {
    format!(
        "CREATE TRIGGER {name} AFTER {event} ON {table} REFERENCING {referencing} \
         FOR EACH STATEMENT EXECUTE FUNCTION {name}()"
    )
}

/// Adds `d` to the count of (`tenant`, `kind`, `parent`) when `when` holds (SQLite).
fn upsert_sqlite(tenant: &str, kind: &str, parent: &str, d: &str, when: &str) -> String {
    format!(
        "INSERT INTO contact_counts (tenant_id, parent_kind, parent_id, live) \
         SELECT {tenant}, '{kind}', {parent}, {d} WHERE {when} \
         ON CONFLICT (tenant_id, parent_kind, parent_id) \
         DO UPDATE SET live = live + excluded.live;"
    )
}

fn sqlite_up() -> Vec<String> {
    // One contact row `r` (NEW or OLD) counted `d` in its account and business when live.
    let parents = |r: &str, d: &str| {
        format!(
            "{}{}",
            upsert_sqlite(
                &format!("{r}.tenant_id"),
                "account",
                &format!("{r}.account_id"),
                d,
                &format!("{r}.archived_at IS NULL AND {r}.account_id IS NOT NULL"),
            ),
            upsert_sqlite(
                &format!("{r}.tenant_id"),
                "business",
                &format!("{r}.business_id"),
                d,
                &format!("{r}.archived_at IS NULL AND {r}.business_id IS NOT NULL"),
            )
        )
    };
    // One link row `r` counted `d` in its tag when its contact is live.
    let tag = |r: &str, d: &str| {
        upsert_sqlite(
            &format!("{r}.tenant_id"),
            "tag",
            &format!("{r}.tag_id"),
            d,
            &format!(
                "EXISTS (SELECT 1 FROM contacts c WHERE c.tenant_id = {r}.tenant_id \
                 AND c.id = {r}.contact_id AND c.archived_at IS NULL)"
            ),
        )
    };
    let relived = "INSERT INTO contact_counts (tenant_id, parent_kind, parent_id, live) \
         SELECT l.tenant_id, 'tag', l.tag_id, CASE WHEN NEW.archived_at IS NULL THEN 1 ELSE -1 END \
           FROM contact_tags l WHERE l.tenant_id = NEW.tenant_id AND l.contact_id = NEW.id \
            AND (OLD.archived_at IS NULL) <> (NEW.archived_at IS NULL) \
         ON CONFLICT (tenant_id, parent_kind, parent_id) \
         DO UPDATE SET live = live + excluded.live;";
    vec![
        format!(
            "CREATE TRIGGER contact_counts_insert AFTER INSERT ON contacts BEGIN {} END",
            parents("NEW", "1")
        ),
        format!(
            "CREATE TRIGGER contact_counts_delete AFTER DELETE ON contacts BEGIN {} END",
            parents("OLD", "-1")
        ),
        format!(
            "CREATE TRIGGER contact_counts_update AFTER UPDATE OF account_id, business_id, \
             archived_at ON contacts \
             WHEN OLD.account_id IS NOT NEW.account_id OR OLD.business_id IS NOT NEW.business_id \
               OR (OLD.archived_at IS NULL) <> (NEW.archived_at IS NULL) \
             BEGIN {}{}{relived} END",
            parents("OLD", "-1"),
            parents("NEW", "1")
        ),
        "CREATE TRIGGER contact_counts_unlink BEFORE DELETE ON contacts BEGIN \
         DELETE FROM contact_tags WHERE tenant_id = OLD.tenant_id AND contact_id = OLD.id; END"
            .to_string(),
        format!(
            "CREATE TRIGGER contact_counts_link_insert AFTER INSERT ON contact_tags BEGIN {} END",
            tag("NEW", "1")
        ),
        format!(
            "CREATE TRIGGER contact_counts_link_delete AFTER DELETE ON contact_tags BEGIN {} END",
            tag("OLD", "-1")
        ),
        format!(
            "CREATE TRIGGER contact_counts_link_update AFTER UPDATE OF tenant_id, contact_id, \
             tag_id ON contact_tags BEGIN {}{} END",
            tag("OLD", "-1"),
            tag("NEW", "1")
        ),
    ]
}

/// The counts of the contacts already there (also how a bulk load that suspended the
/// triggers makes them again: `migration::CONTACT_COUNTS`).
pub const BACKFILL: &str = "INSERT INTO contact_counts (tenant_id, parent_kind, parent_id, live) \
     SELECT tenant_id, 'account', account_id, count(*) FROM contacts \
      WHERE archived_at IS NULL AND account_id IS NOT NULL GROUP BY tenant_id, account_id \
     UNION ALL SELECT tenant_id, 'business', business_id, count(*) FROM contacts \
      WHERE archived_at IS NULL AND business_id IS NOT NULL GROUP BY tenant_id, business_id \
     UNION ALL SELECT l.tenant_id, 'tag', l.tag_id, count(*) FROM contact_tags l \
       JOIN contacts c ON c.tenant_id = l.tenant_id AND c.id = l.contact_id \
      WHERE c.archived_at IS NULL GROUP BY l.tenant_id, l.tag_id";

const TRIGGERS: [&str; 7] = [
    "contact_counts_insert",
    "contact_counts_delete",
    "contact_counts_update",
    "contact_counts_unlink",
    "contact_counts_link_insert",
    "contact_counts_link_delete",
    "contact_counts_link_update",
];

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(ContactCounts::Table)
                    .col(ColumnDef::new(ContactCounts::TenantId).uuid().not_null())
                    .col(
                        ColumnDef::new(ContactCounts::ParentKind)
                            .string()
                            .not_null(),
                    )
                    .col(ColumnDef::new(ContactCounts::ParentId).uuid().not_null())
                    .col(ColumnDef::new(ContactCounts::Live).big_integer().not_null())
                    .primary_key(
                        Index::create()
                            .col(ContactCounts::TenantId)
                            .col(ContactCounts::ParentKind)
                            .col(ContactCounts::ParentId),
                    )
                    .to_owned(),
            )
            .await?;
        let db = manager.get_connection();
        if manager.get_database_backend() == DbBackend::Postgres {
            // No contact written by another process between the count and the triggers
            // goes uncounted (the migration runs in a transaction on PostgreSQL).
            db.execute_unprepared("LOCK TABLE contacts, contact_tags IN SHARE MODE")
                .await?;
        }
        db.execute_unprepared(BACKFILL).await?;
        let statements = match manager.get_database_backend() {
            DbBackend::Postgres => postgres_up(),
            _ => sqlite_up(),
        };
        for statement in statements {
            db.execute_unprepared(&statement).await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let db = manager.get_connection();
        let postgres = manager.get_database_backend() == DbBackend::Postgres;
        for trigger in TRIGGERS {
            let on = if trigger.contains("link") && trigger != "contact_counts_unlink" {
                "contact_tags"
            } else {
                "contacts"
            };
            if postgres {
                db.execute_unprepared(&format!("DROP TRIGGER IF EXISTS {trigger} ON {on}"))
                    .await?;
                db.execute_unprepared(&format!("DROP FUNCTION IF EXISTS {trigger}()"))
                    .await?;
            } else {
                db.execute_unprepared(&format!("DROP TRIGGER IF EXISTS {trigger}"))
                    .await?;
            }
        }
        manager
            .drop_table(Table::drop().table(ContactCounts::Table).to_owned())
            .await
    }
}
