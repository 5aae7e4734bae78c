//! Demo data: a tenant with businesses, accounts, tags and contacts that use every field,
//! generated from a fixed seed so that every run (and every test) sees the same data.
//! Also the bulk generator behind `contact-gateway seed` (`generate.rs`, `bulk_load.rs`).
mod bulk_load;
mod generate;

pub use bulk_load::BULK_LOAD_THRESHOLD;
use bulk_load::{restore_indexes, suspend_indexes};
use entity::prelude::{
    Account, Business, Contact, ContactAssignee, ContactKey, ContactTag, Tag, Tenant,
};
use entity::{account, business, tag, tenant};
use generate::{ACCOUNTS, BUSINESSES, Parents, TAGS, generate_batch, uuid_at};
use rand::rngs::StdRng;
use rand::seq::IndexedRandom;
use rand::{Rng, SeedableRng};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DatabaseConnection, EntityTrait,
    IntoActiveModel, QueryFilter, QueryOrder, Statement, TransactionTrait,
};
use uuid::Uuid;

use crate::db::{insert_all, insert_statements};
use crate::error::{Error, Result};
use crate::tenancy::TenantId;
use crate::time::now_millis;

/// Contacts the demo tenant starts with.
pub const DEMO_CONTACTS: usize = 400;

/// Name of the tenant `serve` creates on an empty database.
pub const DEMO_TENANT_NAME: &str = "Demo tenant";

/// The demo tenant, if the database has one.
pub async fn demo_tenant(db: &DatabaseConnection) -> Result<Option<TenantId>> {
    Ok(Tenant::find()
        .filter(tenant::Column::Name.eq(DEMO_TENANT_NAME))
        .order_by_asc(tenant::Column::CreatedAt)
        .one(db)
        .await?
        .map(|t| TenantId(t.id)))
}

/// The oldest tenant, if the database has any.
pub async fn default_tenant(db: &DatabaseConnection) -> Result<Option<TenantId>> {
    Ok(Tenant::find()
        .order_by_asc(tenant::Column::CreatedAt)
        .order_by_asc(tenant::Column::Id)
        .one(db)
        .await?
        .map(|t| TenantId(t.id)))
}

/// Creates the demo tenant with its businesses, tags, accounts and [`DEMO_CONTACTS`] contacts.
pub async fn create_demo_tenant(db: &DatabaseConnection) -> Result<TenantId> {
    let now = now_millis();
    let id = TenantId(Uuid::now_v7());
    tenant::Model {
        id: id.0,
        name: DEMO_TENANT_NAME.to_string(),
        created_at: now,
    }
    .into_active_model()
    .insert(db)
    .await?;
    seed_contacts(db, id, DEMO_CONTACTS, 42).await?;
    Ok(id)
}

/// The tenant's businesses, tags and accounts, created on first use.
async fn ensure_parents(
    db: &DatabaseConnection,
    tenant: TenantId,
    rng: &mut StdRng,
) -> Result<Parents> {
    let existing = Business::find()
        .filter(business::Column::TenantId.eq(tenant.0))
        .all(db)
        .await?;
    if !existing.is_empty() {
        let tags = Tag::find()
            .filter(tag::Column::TenantId.eq(tenant.0))
            .all(db)
            .await?;
        let accounts = Account::find()
            .filter(account::Column::TenantId.eq(tenant.0))
            .all(db)
            .await?;
        return Ok(Parents {
            businesses: existing,
            tags,
            accounts,
        });
    }
    let base = now_millis() - 800 * 86_400_000;
    let businesses: Vec<business::Model> = BUSINESSES
        .iter()
        .enumerate()
        .map(|(i, name)| {
            let at = base + i as i64 * 86_400_000;
            business::Model {
                id: uuid_at(at, rng),
                tenant_id: tenant.0,
                name: name.to_string(),
                name_folded: entity::fold(name),
                external_ref: Some(format!("BIZ-{}", 100 + i)),
                created_at: at,
                updated_at: at,
            }
        })
        .collect();
    let mut tags = Vec::new();
    for business in &businesses {
        for (order, name) in TAGS.iter().enumerate() {
            tags.push(tag::Model {
                id: uuid_at(business.created_at, rng),
                tenant_id: tenant.0,
                business_id: business.id,
                name: name.to_string(),
                name_folded: entity::fold(name),
                display_order: order as i32 + 1,
                created_at: business.created_at,
                updated_at: business.created_at,
            });
        }
    }
    let accounts: Vec<account::Model> = ACCOUNTS
        .iter()
        .enumerate()
        .map(|(i, (name, _))| {
            let at = base + (i as i64 + 5) * 86_400_000;
            account::Model {
                id: uuid_at(at, rng),
                tenant_id: tenant.0,
                name: name.to_string(),
                name_folded: entity::fold(name),
                external_ref: (i % 3 != 2).then(|| format!("CRM-ACC-{}", 1000 + i)),
                created_at: at,
                updated_at: at + (i as i64) * 3_600_000,
            }
        })
        .collect();
    let txn = db.begin().await?;
    insert_all::<Business>(&txn, businesses.clone(), ROWS_PER_INSERT).await?;
    insert_all::<Tag>(&txn, tags.clone(), ROWS_PER_INSERT).await?;
    insert_all::<Account>(&txn, accounts.clone(), ROWS_PER_INSERT).await?;
    txn.commit().await?;
    Ok(Parents {
        businesses,
        tags,
        accounts,
    })
}

/// Contacts inserted per statement. Larger statements do not go faster: their value lists
/// outgrow the allocator's reusable blocks (a million-contact seed took 21 s to insert at
/// 500 rows a statement, 16 s at 100). Link tables take four times as many rows.
const ROWS_PER_INSERT: usize = 100;
/// Rows per transaction (and per generated batch).
const ROWS_PER_TRANSACTION: usize = 20_000;

/// Adds `count` generated contacts (with tags and assignees) to `tenant`, creating its
/// businesses, tags and accounts first if it has none. Deterministic for a given `seed`.
/// From [`crate::db::ANALYZE_AFTER_ROWS`] contacts on, ends by refreshing PostgreSQL's
/// planner statistics.
pub async fn seed_contacts(
    db: &DatabaseConnection,
    tenant: TenantId,
    count: usize,
    seed: u64,
) -> Result<()> {
    let mut rng = StdRng::seed_from_u64(seed);
    let parents = ensure_parents(db, tenant, &mut rng).await?;
    let now = now_millis();
    let span_minutes = 730 * 24 * 60;
    // A pool of creation times smaller than the contact count, so that ties occur and the
    // id tie-breaker is exercised. Contacts are generated oldest first, so that their UUID v7
    // ids (and the keys of every index that starts with them) grow: inserts append to the
    // B-trees instead of touching pages all over them.
    let pool: Vec<i64> = (0..(count * 3 / 4).max(1))
        .map(|_| now - rng.random_range(1..span_minutes) * 60_000)
        .collect();
    let mut created: Vec<i64> = (0..count)
        .map(|_| pool.choose(&mut rng).copied().unwrap_or(now))
        .collect();
    created.sort_unstable();

    let bulk = count >= BULK_LOAD_THRESHOLD;
    let backend = db.get_database_backend();
    let started = std::time::Instant::now();
    let mut txn = db.begin().await?;
    let suspended = if bulk {
        Some(suspend_indexes(&txn).await?)
    } else {
        None
    };
    // Generation, and building the INSERT statements, run on a blocking thread while the
    // statements before them execute.
    let (sender, mut work) = tokio::sync::mpsc::channel::<Work>(4);
    let generator = tokio::task::spawn_blocking(move || {
        // Match keys (emails, phones) do not follow the contacts' order: a bulk load keeps
        // them and inserts them sorted at the end, again appending to their primary key.
        let mut deferred_keys = Vec::new();
        let mut done = 0;
        while done < count {
            let n = ROWS_PER_TRANSACTION.min(count - done);
            let mut batch = generate_batch(&mut rng, tenant, &created, &parents, done, n);
            let mut inserts: Vec<Statement> =
                insert_statements::<Contact>(backend, batch.contacts, ROWS_PER_INSERT).collect();
            inserts.extend(insert_statements::<ContactTag>(
                backend,
                batch.links,
                ROWS_PER_INSERT * 4,
            ));
            inserts.extend(insert_statements::<ContactAssignee>(
                backend,
                batch.assignees,
                ROWS_PER_INSERT * 4,
            ));
            if bulk {
                deferred_keys.append(&mut batch.keys);
            } else {
                inserts.extend(insert_statements::<ContactKey>(
                    backend,
                    batch.keys,
                    ROWS_PER_INSERT * 4,
                ));
            }
            let commit = !bulk;
            if sender.blocking_send(Work { inserts, commit }).is_err() {
                return;
            }
            done += n;
        }
        deferred_keys.sort_unstable_by(|a, b| {
            (&a.kind, &a.value, a.contact_id).cmp(&(&b.kind, &b.value, b.contact_id))
        });
        let mut keys = deferred_keys.into_iter().peekable();
        while keys.peek().is_some() {
            let chunk: Vec<_> = keys.by_ref().take(ROWS_PER_TRANSACTION).collect();
            let inserts =
                insert_statements::<ContactKey>(backend, chunk, ROWS_PER_INSERT * 4).collect();
            if sender
                .blocking_send(Work {
                    inserts,
                    commit: false,
                })
                .is_err()
            {
                return;
            }
        }
    });
    while let Some(work) = work.recv().await {
        for statement in work.inserts {
            txn.execute_raw(statement).await?;
        }
        if work.commit {
            txn.commit().await?;
            txn = db.begin().await?;
        }
    }
    generator
        .await
        .map_err(|err| Error::Internal(format!("contact generator failed: {err}")))?;
    tracing::debug!(elapsed = ?started.elapsed(), "rows inserted");
    if let Some(suspended) = suspended {
        restore_indexes(&txn, suspended).await?;
    }
    txn.commit().await?;
    if count as u64 >= crate::db::ANALYZE_AFTER_ROWS {
        crate::db::analyze_contacts(db).await;
    }
    Ok(())
}

/// INSERT statements ready to run; `commit` ends the transaction after them.
struct Work {
    inserts: Vec<Statement>,
    commit: bool,
}
