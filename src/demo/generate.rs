//! Generated demo rows: names, places and statuses to pick from, and contacts that use every
//! field, drawn from a seeded generator so that a seed always gives the same rows.
use entity::{account, business, contact, contact_assignee, contact_key, contact_tag, tag};
use rand::Rng;
use rand::rngs::StdRng;
use rand::seq::{IndexedRandom, SliceRandom};
use serde_json::json;
use uuid::{NoContext, Timestamp, Uuid};

use crate::contacts::identity_keys::keys_of;
use crate::contacts::{ResolutionStatus, search_text, sort_name};
use crate::tenancy::TenantId;

pub(super) const FIRST_NAMES: &[&str] = &[
    "Jan", "Anna", "Henrik", "Sofia", "Liam", "Mia", "Noah", "Emma", "Lukas", "Olivia", "Mateo",
    "Yuki", "Amara", "Chen", "Fatima", "Oskar", "Ines", "Ravi", "Zoe", "Tomás",
];
pub(super) const LAST_NAMES: &[&str] = &[
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
pub(super) const BUSINESSES: &[&str] = &[
    "Northwind Support",
    "Globex Sales",
    "Initech Services",
    "Umbrella Care",
];
pub(super) const TAGS: &[&str] = &[
    "VIP",
    "Lead",
    "Customer",
    "Churn risk",
    "Newsletter",
    "Partner",
];
pub(super) const ACCOUNTS: &[(&str, &str)] = &[
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
pub(super) const ROLES: &[&str] = &[
    "CTO",
    "Head of Support",
    "Buyer",
    "CEO",
    "Engineer",
    "Office Manager",
];
pub(super) const TIMEZONES: &[&str] = &[
    "Europe/Berlin",
    "Europe/London",
    "America/New_York",
    "Asia/Tokyo",
    "Europe/Paris",
    "America/Los_Angeles",
];
pub(super) const CITIES: &[(&str, &str, &str, &str)] = &[
    ("Berlin", "BE", "DE", "10115"),
    ("London", "England", "GB", "EC1A 1BB"),
    ("New York", "NY", "US", "10001"),
    ("Tokyo", "Tokyo", "JP", "100-0001"),
    ("Paris", "IDF", "FR", "75001"),
];
pub(super) const SOURCES: &[&str] = &["website", "email", "whatsapp", "import", "api"];
pub(super) const LEAD_SOURCES: &[&str] = &["google_ads", "referral", "trade_show", "newsletter"];
pub(super) const STATUSES: &[&str] = &["new", "open", "won", "lost"];
pub(super) const PIPELINES: &[&str] = &["pl-sales", "pl-support"];
pub(super) const STAGES: &[&str] = &["new", "qualified", "proposal", "closed"];
pub(super) const MESSAGE_STATUSES: &[&str] = &["sent", "delivered", "read", "failed"];
pub(super) const USERS: &[&str] = &["user-anna", "user-ben", "user-chen", "user-dara"];

/// A UUID v7 whose time part is `millis`.
pub(super) fn uuid_at(millis: i64, rng: &mut StdRng) -> Uuid {
    let secs = (millis / 1000) as u64;
    let nanos = ((millis % 1000) * 1_000_000) as u32 + rng.random_range(0..1_000_000);
    Uuid::new_v7(Timestamp::from_unix(NoContext, secs, nanos))
}

/// Generated rows of one transaction.
pub(super) struct Batch {
    pub(super) contacts: Vec<contact::Model>,
    pub(super) links: Vec<contact_tag::Model>,
    pub(super) assignees: Vec<contact_assignee::Model>,
    pub(super) keys: Vec<contact_key::Model>,
}

/// The businesses, tags and accounts new contacts are spread over.
pub(super) struct Parents {
    pub(super) businesses: Vec<business::Model>,
    pub(super) tags: Vec<tag::Model>,
    pub(super) accounts: Vec<account::Model>,
}

/// Generates contacts `first..first + n`, with their tag links and assignees, sorted by key
/// (so that primary-key index writes are sequential).
pub(super) fn generate_batch(
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

pub(super) fn pick<'a>(rng: &mut StdRng, list: &[&'a str]) -> &'a str {
    list.choose(rng).copied().unwrap_or_default()
}

/// `make(rng)` with probability `chance`, else `None`.
pub(super) fn maybe<T>(
    rng: &mut StdRng,
    chance: f64,
    make: impl FnOnce(&mut StdRng) -> T,
) -> Option<T> {
    if rng.random_bool(chance) {
        Some(make(rng))
    } else {
        None
    }
}

pub(super) fn generate_contact(
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
        archived_at: None,
    };
    model.search_text = search_text(&model);
    model
}
