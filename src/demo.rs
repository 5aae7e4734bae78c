//! Demo data: a tenant with businesses, accounts, tags and contacts that use every field,
//! generated from a fixed seed so that every run (and every test) sees the same data.
//! Also the bulk generator behind `contact-gateway seed`.
use entity::prelude::{
    Account, Business, Contact, ContactAssignee, ContactKey, ContactTag, Tag, Tenant,
};
use entity::{account, business, contact, contact_assignee, contact_key, contact_tag, tag, tenant};
use rand::rngs::StdRng;
use rand::seq::{IndexedRandom, SliceRandom};
use rand::{Rng, SeedableRng};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DatabaseConnection, DatabaseTransaction,
    DbBackend, EntityTrait, IntoActiveModel, QueryFilter, QueryOrder, Statement, TransactionTrait,
};
use serde_json::json;
use uuid::{NoContext, Timestamp, Uuid};

use crate::contacts::identity_keys::keys_of;
use crate::contacts::{ResolutionStatus, search_text, sort_name};
use crate::db::{insert_all, insert_statements};
use crate::error::{Error, Result};
use crate::tenancy::TenantId;
use crate::time::now_millis;

/// Contacts the demo tenant starts with.
pub const DEMO_CONTACTS: usize = 400;

const FIRST_NAMES: &[&str] = &[
    "Jan", "Anna", "Henrik", "Sofia", "Liam", "Mia", "Noah", "Emma", "Lukas", "Olivia", "Mateo",
    "Yuki", "Amara", "Chen", "Fatima", "Oskar", "Ines", "Ravi", "Zoe", "Tomás",
];
const LAST_NAMES: &[&str] = &[
    "Mueller",
    "Larsen",
    "Schmidt",
    "Rossi",
    "García",
    "Smith",
    "Okafor",
    "Tanaka",
    "Nowak",
    "Dubois",
    "Jensen",
    "Silva",
    "O'Brien",
    "Kowalski",
    "Singh",
    "Andersson",
    "Novak",
    "Ng",
];
const BUSINESSES: &[&str] = &[
    "Northwind Support",
    "Globex Sales",
    "Initech Services",
    "Umbrella Care",
];
const TAGS: &[&str] = &[
    "VIP",
    "Lead",
    "Customer",
    "Churn risk",
    "Newsletter",
    "Partner",
];
const ACCOUNTS: &[(&str, &str)] = &[
    ("Acme Customer GmbH", "acme-customer.de"),
    ("Blue Harbor Ltd", "blueharbor.co.uk"),
    ("Cedar & Pine Inc", "cedarpine.com"),
    ("Dune Analytics SA", "dune-analytics.fr"),
    ("Everest Logistics AG", "everest-logistics.ch"),
    ("Fjord Fisheries AS", "fjordfish.no"),
    ("Granite Health LLC", "granitehealth.com"),
    ("Helios Energy BV", "helios-energy.nl"),
    ("Iris Media Srl", "irismedia.it"),
    ("Jade Robotics KK", "jaderobotics.jp"),
    ("Kestrel Finance plc", "kestrelfinance.co.uk"),
    ("Lumen Education Oy", "lumen-edu.fi"),
];
const ROLES: &[&str] = &[
    "CTO",
    "Head of Support",
    "Buyer",
    "CEO",
    "Engineer",
    "Office Manager",
];
const TIMEZONES: &[&str] = &[
    "Europe/Berlin",
    "Europe/London",
    "America/New_York",
    "Asia/Tokyo",
    "Europe/Paris",
    "America/Los_Angeles",
];
const CITIES: &[(&str, &str, &str, &str)] = &[
    ("Berlin", "BE", "DE", "10115"),
    ("London", "England", "GB", "EC1A 1BB"),
    ("New York", "NY", "US", "10001"),
    ("Tokyo", "Tokyo", "JP", "100-0001"),
    ("Paris", "IDF", "FR", "75001"),
];
const SOURCES: &[&str] = &["website", "email", "whatsapp", "import", "api"];
const LEAD_SOURCES: &[&str] = &["google_ads", "referral", "trade_show", "newsletter"];
const STATUSES: &[&str] = &["new", "open", "won", "lost"];
const PIPELINES: &[&str] = &["pl-sales", "pl-support"];
const STAGES: &[&str] = &["new", "qualified", "proposal", "closed"];
const MESSAGE_STATUSES: &[&str] = &["sent", "delivered", "read", "failed"];
const USERS: &[&str] = &["user-anna", "user-ben", "user-chen", "user-dara"];

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

/// A UUID v7 whose time part is `millis`.
fn uuid_at(millis: i64, rng: &mut StdRng) -> Uuid {
    let secs = (millis / 1000) as u64;
    let nanos = ((millis % 1000) * 1_000_000) as u32 + rng.random_range(0..1_000_000);
    Uuid::new_v7(Timestamp::from_unix(NoContext, secs, nanos))
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
    Ok(())
}

/// INSERT statements ready to run; `commit` ends the transaction after them.
struct Work {
    inserts: Vec<Statement>,
    commit: bool,
}

/// Generated rows of one transaction.
struct Batch {
    contacts: Vec<contact::Model>,
    links: Vec<contact_tag::Model>,
    assignees: Vec<contact_assignee::Model>,
    keys: Vec<contact_key::Model>,
}

/// The businesses, tags and accounts new contacts are spread over.
struct Parents {
    businesses: Vec<business::Model>,
    tags: Vec<tag::Model>,
    accounts: Vec<account::Model>,
}

/// Generates contacts `first..first + n`, with their tag links and assignees, sorted by key
/// (so that primary-key index writes are sequential).
fn generate_batch(
    rng: &mut StdRng,
    tenant: TenantId,
    created: &[i64],
    parents: &Parents,
    first: usize,
    n: usize,
) -> Batch {
    let mut batch = Batch {
        contacts: Vec::with_capacity(n),
        links: Vec::new(),
        assignees: Vec::new(),
        keys: Vec::new(),
    };
    for i in 0..n {
        let c = generate_contact(
            rng,
            tenant,
            created.get(first + i).copied().unwrap_or_default(),
            &parents.businesses,
            &parents.accounts,
            first + i,
        );
        if let Some(business) = c.business_id {
            let mut own: Vec<&tag::Model> = parents
                .tags
                .iter()
                .filter(|t| t.business_id == business)
                .collect();
            own.shuffle(rng);
            for t in own.iter().take(rng.random_range(0..=3)) {
                batch
                    .links
                    .push(contact_tag::Model::new(tenant.0, c.id, t.id, c.created_at));
            }
        }
        if let serde_json::Value::Array(list) = &c.assignees {
            for a in list.iter().filter_map(|v| v.as_str()) {
                batch.assignees.push(contact_assignee::Model {
                    tenant_id: tenant.0,
                    contact_id: c.id,
                    assignee: a.to_string(),
                });
            }
        }
        batch.keys.extend(keys_of(&c));
        batch.contacts.push(c);
    }
    batch.contacts.sort_unstable_by_key(|c| c.id);
    batch
        .links
        .sort_unstable_by_key(|l| (l.contact_id, l.tag_id));
    batch
        .assignees
        .sort_unstable_by(|a, b| (a.contact_id, &a.assignee).cmp(&(b.contact_id, &b.assignee)));
    batch
        .keys
        .sort_unstable_by(|a, b| (&a.kind, &a.value).cmp(&(&b.kind, &b.value)));
    batch
}

/// From this many contacts on, [`seed_contacts`] loads in bulk: one transaction that drops
/// the secondary indexes of the contact tables (and SQLite's search trigger), inserts, then
/// builds them again in one sorted pass each. DDL is transactional on SQLite and PostgreSQL,
/// so a failed seed leaves the schema and data as they were.
pub const BULK_LOAD_THRESHOLD: usize = 50_000;

/// Index and trigger definitions dropped for a bulk load, to be run again after it.
struct Suspended {
    create_statements: Vec<String>,
    rebuild_search: bool,
}

async fn suspend_indexes(txn: &DatabaseTransaction) -> Result<Suspended> {
    let backend = txn.get_database_backend();

    let list = match backend {
        DbBackend::Sqlite => {
            "SELECT name, sql FROM sqlite_master WHERE type IN ('index', 'trigger') \
             AND tbl_name IN ('contacts', 'contact_tags', 'contact_assignees', 'contact_keys') \
             AND sql IS NOT NULL AND name <> 'contacts_search_delete' \
             AND name <> 'contacts_search_update' ORDER BY type, name"
        }
        _ => {
            "SELECT indexname AS name, indexdef AS sql FROM pg_indexes \
             WHERE schemaname = current_schema() \
             AND tablename IN ('contacts', 'contact_tags', 'contact_assignees', 'contact_keys') \
             AND indexname NOT LIKE '%_pkey' ORDER BY indexname"
        }
    };
    let rows = txn
        .query_all_raw(Statement::from_string(backend, list))
        .await?;
    let mut create_statements = Vec::new();
    let mut rebuild_search = false;
    for row in rows {
        let name: String = row.try_get("", "name")?;
        let sql: String = row.try_get("", "sql")?;
        let kind = if sql.to_uppercase().starts_with("CREATE TRIGGER") {
            rebuild_search = true;
            "TRIGGER"
        } else {
            "INDEX"
        };
        txn.execute_unprepared(&format!("DROP {kind} \"{name}\""))
            .await?;
        create_statements.push(sql);
    }
    Ok(Suspended {
        create_statements,
        rebuild_search,
    })
}

async fn restore_indexes(txn: &DatabaseTransaction, suspended: Suspended) -> Result<()> {
    for sql in &suspended.create_statements {
        let started = std::time::Instant::now();
        txn.execute_unprepared(sql).await?;
        tracing::debug!(elapsed = ?started.elapsed(), %sql, "index restored");
    }
    if suspended.rebuild_search {
        let started = std::time::Instant::now();
        txn.execute_unprepared("INSERT INTO contact_search(contact_search) VALUES ('rebuild')")
            .await?;
        tracing::debug!(elapsed = ?started.elapsed(), "search index rebuilt");
    }
    Ok(())
}

fn pick<'a>(rng: &mut StdRng, list: &[&'a str]) -> &'a str {
    list.choose(rng).copied().unwrap_or_default()
}

/// `make(rng)` with probability `chance`, else `None`.
fn maybe<T>(rng: &mut StdRng, chance: f64, make: impl FnOnce(&mut StdRng) -> T) -> Option<T> {
    if rng.random_bool(chance) {
        Some(make(rng))
    } else {
        None
    }
}

fn generate_contact(
    rng: &mut StdRng,
    tenant: TenantId,
    created_at: i64,
    businesses: &[business::Model],
    accounts: &[account::Model],
    n: usize,
) -> contact::Model {
    let updated_at = created_at + rng.random_range(0..90 * 86_400_000i64);
    let first = maybe(rng, 0.97, |rng| pick(rng, FIRST_NAMES).to_string());
    let last = maybe(rng, 0.93, |rng| pick(rng, LAST_NAMES).to_string());
    let account = if rng.random_bool(0.85) {
        accounts.choose(rng)
    } else {
        None
    };
    let domain = account
        .and_then(|a| ACCOUNTS.iter().find(|(name, _)| *name == a.name))
        .map_or("example.com", |(_, d)| *d);
    let local = format!(
        "{}.{}{}",
        first.as_deref().unwrap_or("contact").to_lowercase(),
        last.as_deref()
            .unwrap_or("x")
            .to_lowercase()
            .replace('\'', ""),
        n
    );
    let email = maybe(rng, 0.9, |_| format!("{local}@{domain}"));
    let phone = maybe(rng, 0.8, |rng| {
        if rng.random_bool(0.5) {
            format!("+49151{:08}", rng.random_range(0..100_000_000))
        } else {
            format!("+1415555{:04}", rng.random_range(0..10_000))
        }
    });
    let resolution = match rng.random_range(0..10) {
        0..=5 => ResolutionStatus::Unresolved,
        6..=8 => ResolutionStatus::CrmResolved,
        _ => ResolutionStatus::ManuallyResolved,
    };
    let external_ref =
        (resolution != ResolutionStatus::Unresolved).then(|| format!("CRM-CONTACT-{}", 10_000 + n));
    let city = CITIES.choose(rng).copied();
    let with_address = rng.random_bool(0.6);
    let assignee_count = rng.random_range(0..=2);
    let assignees: Vec<&str> = USERS
        .choose_multiple(rng, assignee_count)
        .copied()
        .collect();
    let mut model = contact::Model {
        id: uuid_at(created_at, rng),
        tenant_id: tenant.0,
        account_id: account.map(|a| a.id),
        business_id: if rng.random_bool(0.9) {
            businesses.choose(rng).map(|b| b.id)
        } else {
            None
        },
        external_ref,
        resolution_status: resolution.as_str().to_string(),
        first_name: first.clone(),
        last_name: last.clone(),
        email,
        secondary_emails: if rng.random_bool(0.15) {
            json!([format!("{local}@personal.example")])
        } else {
            json!([])
        },
        phone,
        secondary_phones: if rng.random_bool(0.1) {
            json!([format!("+44207946{:04}", rng.random_range(0..10_000))])
        } else {
            json!([])
        },
        company_name: account.map(|a| a.name.clone()),
        website: account.map(|_| format!("https://{domain}")),
        linkedin: maybe(rng, 0.3, |_| format!("https://www.linkedin.com/in/{local}")),
        role: maybe(rng, 0.5, |rng| pick(rng, ROLES).to_string()),
        description: maybe(rng, 0.2, |_| "Met at the spring trade show.".to_string()),
        notes: maybe(rng, 0.2, |_| {
            "Prefers email; 50% discount agreed_once.".to_string()
        }),
        address_street: with_address.then(|| format!("{} Main Street", rng.random_range(1..200))),
        address_city: city.filter(|_| with_address).map(|c| c.0.to_string()),
        address_state: city.filter(|_| with_address).map(|c| c.1.to_string()),
        address_country: city.filter(|_| with_address).map(|c| c.2.to_string()),
        address_postal_code: city.filter(|_| with_address).map(|c| c.3.to_string()),
        timezone: maybe(rng, 0.7, |rng| pick(rng, TIMEZONES).to_string()),
        source: Some(pick(rng, SOURCES).to_string()),
        lead_source: maybe(rng, 0.6, |rng| pick(rng, LEAD_SOURCES).to_string()),
        status: Some(pick(rng, STATUSES).to_string()),
        pipeline_id: maybe(rng, 0.7, |rng| pick(rng, PIPELINES).to_string()),
        pipeline_stage: maybe(rng, 0.7, |rng| pick(rng, STAGES).to_string()),
        message_status: maybe(rng, 0.8, |rng| pick(rng, MESSAGE_STATUSES).to_string()),
        owner: maybe(rng, 0.8, |rng| pick(rng, USERS).to_string()),
        assignees: json!(assignees),
        created_by: Some(pick(rng, USERS).to_string()),
        dnd_email: rng.random_bool(0.1),
        dnd_sms: rng.random_bool(0.2),
        dnd_call: rng.random_bool(0.1),
        dnd_whatsapp: rng.random_bool(0.15),
        is_test_contact: rng.random_bool(0.05),
        last_message_at: maybe(rng, 0.75, |rng| {
            updated_at - rng.random_range(0..86_400_000)
        }),
        created_at,
        updated_at,
        sort_name: sort_name(first.as_deref(), last.as_deref()),
        search_text: String::new(),
    };
    model.search_text = search_text(&model);
    model
}
