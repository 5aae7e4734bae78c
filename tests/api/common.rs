//! `spawn_app` and the helpers every test shares, among them the ones for file imports
//! (fixtures, import options, a contact by its email). Stand-in vendor servers are in
//! `vendors`.
use std::collections::HashMap;

use contact_gateway::config::{Config, DatabaseConfig, SyncConfig};
use contact_gateway::contacts::WriteSettings;
use contact_gateway::demo;
use contact_gateway::sources::import::{ImportOptions, ImportSummary, import_payload};
use contact_gateway::sources::{Format, MapContext};
use contact_gateway::startup::Application;
use contact_gateway::tenancy::TenantId;
use entity::prelude::{
    Account, Business, Contact, ContactAssignee, ContactKey, ContactSource, ContactTag,
    SourceEntity, Tag, Tenant, WriteBack,
};
use entity::{account, contact, tag};
use sea_orm::{ConnectionTrait, Database, DatabaseConnection, EntityTrait};
use serde_json::{Value, json};
use uuid::Uuid;

/// A running server and a direct connection to its database (for expectations).
pub struct TestApp {
    pub base_url: String,
    pub database_url: String,
    /// The demo tenant's key, which `client` sends.
    pub key: String,
    /// The server's key verifier (to flush `lastUsedAt` in tests).
    pub auth: std::sync::Arc<contact_gateway::auth::Authenticator>,
    pub client: reqwest::Client,
    pub db: DatabaseConnection,
    _dir: Option<tempfile::TempDir>,
}

/// A database for one test: a fresh PostgreSQL database under TEST_DATABASE_URL, or a
/// SQLite file in a temporary directory.
async fn test_database() -> (String, Option<tempfile::TempDir>) {
    match std::env::var("TEST_DATABASE_URL") {
        Ok(base) if !base.is_empty() => {
            let admin = Database::connect(&base)
                .await
                .expect("connect to TEST_DATABASE_URL");
            let name = format!("cg_test_{}", Uuid::new_v4().simple());
            admin
                .execute_unprepared(&format!("CREATE DATABASE {name}"))
                .await
                .expect("create test database");
            let (prefix, _) = base.rsplit_once('/').expect("a URL with a database name");
            (format!("{prefix}/{name}"), None)
        }
        _ => {
            let dir = tempfile::tempdir().expect("temp dir");
            let url = format!("sqlite://{}?mode=rwc", dir.path().join("test.db").display());
            (url, Some(dir))
        }
    }
}

/// Starts the real application (migrated, with the demo data) on a free port.
pub async fn spawn_app() -> TestApp {
    spawn_app_with(|_| {}).await
}

/// Like [`spawn_app`], with the configuration changed by `configure` first.
pub async fn spawn_app_with(configure: impl FnOnce(&mut Config)) -> TestApp {
    let (database_url, dir) = test_database().await;
    spawn_app_on(database_url, dir, configure).await
}

/// Starts another server on the database of an earlier one (its demo tenant is kept; the
/// demo key is renewed).
pub async fn spawn_app_on_database_of(
    app: &TestApp,
    configure: impl FnOnce(&mut Config),
) -> TestApp {
    spawn_app_on(app.database_url.clone(), None, configure).await
}

/// Like [`spawn_app_with`], with the server reaching its fresh database through the URL
/// `rewrite` makes of the database's own (e.g. through a proxy); `database_url` is then
/// the rewritten one.
pub async fn spawn_app_via(
    rewrite: impl FnOnce(&str) -> String,
    configure: impl FnOnce(&mut Config),
) -> TestApp {
    let (database_url, dir) = test_database().await;
    spawn_app_on(rewrite(&database_url), dir, configure).await
}

/// The configuration the `spawn_app` family starts from: port 0, `database_url`, the demo
/// tenant, default limits.
pub fn test_config(database_url: &str) -> Config {
    Config {
        listen: "127.0.0.1:0".parse().expect("address"),
        database: DatabaseConfig {
            database_url: database_url.to_string(),
        },
        sqlite_cache_kib: contact_gateway::db::SQLITE_CACHE_KIB,
        no_demo: false,
        default_phone_region: None,
        production: false,
        key_cache_secs: 30,
        sources_file: None,
        // A fixed key, so that servers started on one database open each other's tokens;
        // no scheduler unless a test turns it on (it would race the runs tests start).
        sync: SyncConfig {
            secret_key: Some(TEST_SECRET_KEY.to_string()),
            no_scheduler: true,
            sync_poll_ms: 50,
            // No write-back worker unless a test turns it on (its polling would count in
            // the tests' statement counts).
            no_write_back: true,
            // Nor a webhook worker.
            no_webhook_delivery: true,
            webhook_poll_ms: 20,
            webhook_backoff_ms: 50,
            write_back_poll_ms: 20,
            write_back_backoff_ms: 100,
            // The stand-in vendors listen on 127.0.0.1.
            allow_private_networks: true,
            ..SyncConfig::default()
        },
        limits: Default::default(),
    }
}

/// The secret key of every test server (32 zero-to-31 bytes, base64).
pub const TEST_SECRET_KEY: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";

async fn spawn_app_on(
    database_url: String,
    dir: Option<tempfile::TempDir>,
    configure: impl FnOnce(&mut Config),
) -> TestApp {
    let mut config = test_config(&database_url);
    configure(&mut config);
    let app = Application::build(&config)
        .await
        .expect("application builds");
    let base_url = format!("http://{}", app.address());
    let db = app.state().db.clone();
    let key = app.demo_key().expect("a demo key").to_string();
    let auth = app.state().auth.clone();
    tokio::spawn(app.run_until_stopped());
    let test_app = TestApp {
        base_url,
        database_url,
        client: client_with_key(&key),
        key,
        auth,
        db,
        _dir: dir,
    };
    // Verify the key once, so that statement counts see the steady state (cached key).
    test_app.graphql("{ __typename }", json!({})).await;
    test_app
}

/// An HTTP client that sends `Authorization: Bearer <key>` with every request.
/// A client with a key of a second tenant of `app`'s database, reading and writing contacts.
pub async fn other_tenant_client(app: &TestApp) -> reqwest::Client {
    use contact_gateway::auth::{Scope, api_keys};
    let other = api_keys::create_tenant(&app.db, "Other tenant")
        .await
        .expect("tenant");
    let key = api_keys::create_key(
        &app.db,
        TenantId(other.id),
        &[Scope::ContactsRead, Scope::ContactsWrite],
        None,
        None,
    )
    .await
    .expect("key");
    client_with_key(&key.key)
}

pub fn client_with_key(key: &str) -> reqwest::Client {
    let mut headers = reqwest::header::HeaderMap::new();
    headers.insert(
        reqwest::header::AUTHORIZATION,
        format!("Bearer {key}").parse().expect("header value"),
    );
    reqwest::Client::builder()
        .default_headers(headers)
        .build()
        .expect("client")
}

impl TestApp {
    /// POSTs a GraphQL request and returns the JSON response.
    pub async fn graphql(&self, query: &str, variables: Value) -> Value {
        self.client
            .post(format!("{}/graphql", self.base_url))
            .json(&json!({ "query": query, "variables": variables }))
            .send()
            .await
            .expect("request sent")
            .json()
            .await
            .expect("JSON response")
    }

    /// Like [`graphql`], asserting there are no errors; returns `data`.
    pub async fn data(&self, query: &str, variables: Value) -> Value {
        let response = self.graphql(query, variables).await;
        assert!(
            response.get("errors").is_none(),
            "unexpected errors: {response}"
        );
        response["data"].clone()
    }

    /// `GET /metrics`, as text.
    pub async fn metrics_text(&self) -> String {
        self.client
            .get(format!("{}/metrics", self.base_url))
            .send()
            .await
            .expect("metrics")
            .text()
            .await
            .expect("metrics text")
    }

    /// `GET /graphql` as a browser asks for it (HTML): the GraphiQL page.
    pub async fn graphiql_page(&self) -> String {
        reqwest::Client::new()
            .get(format!("{}/graphql", self.base_url))
            .header("accept", "text/html,application/xhtml+xml")
            .send()
            .await
            .expect("page")
            .text()
            .await
            .expect("page text")
    }

    /// The value of `contact_gateway_sql_statements_total` in `/metrics`.
    pub async fn sql_statements(&self) -> u64 {
        let text = self.metrics_text().await;
        text.lines()
            .find_map(|l| l.strip_prefix("contact_gateway_sql_statements_total "))
            .and_then(|v| v.trim().parse::<f64>().ok())
            .expect("statement counter in /metrics") as u64
    }

    /// Every contact in the database (there is one tenant: the demo tenant).
    pub async fn all_contacts(&self) -> Vec<contact::Model> {
        Contact::find().all(&self.db).await.expect("contacts")
    }

    /// Every account.
    pub async fn all_accounts(&self) -> Vec<account::Model> {
        Account::find().all(&self.db).await.expect("accounts")
    }

    /// Every tag.
    pub async fn all_tags(&self) -> Vec<tag::Model> {
        Tag::find().all(&self.db).await.expect("tags")
    }

    /// Tag names of each contact.
    pub async fn tag_names_by_contact(&self) -> HashMap<Uuid, Vec<String>> {
        let tags: HashMap<Uuid, String> = self
            .all_tags()
            .await
            .into_iter()
            .map(|t| (t.id, t.name))
            .collect();
        let mut out: HashMap<Uuid, Vec<String>> = HashMap::new();
        for link in ContactTag::find().all(&self.db).await.expect("links") {
            out.entry(link.contact_id)
                .or_default()
                .push(tags[&link.tag_id].clone());
        }
        out
    }

    /// Assignees of each contact.
    pub async fn assignees_by_contact(&self) -> HashMap<Uuid, Vec<String>> {
        let mut out: HashMap<Uuid, Vec<String>> = HashMap::new();
        for row in ContactAssignee::find()
            .all(&self.db)
            .await
            .expect("assignees")
        {
            out.entry(row.contact_id).or_default().push(row.assignee);
        }
        out
    }

    /// Pages through `contacts(filter:)` with `first: 100` and returns every id, in order.
    pub async fn contact_ids(&self, filter: Value) -> Vec<String> {
        let query = r#"query($filter: ContactFilter, $after: String) {
            contacts(filter: $filter, first: 100, after: $after) {
                totalCount
                edges { node { id } }
                pageInfo { hasNextPage endCursor }
            }
        }"#;
        let mut ids = Vec::new();
        let mut after = Value::Null;
        loop {
            let data = self
                .data(query, json!({ "filter": filter, "after": after }))
                .await;
            let conn = &data["contacts"];
            for edge in conn["edges"].as_array().expect("edges") {
                ids.push(edge["node"]["id"].as_str().expect("id").to_string());
            }
            if !conn["pageInfo"]["hasNextPage"]
                .as_bool()
                .expect("hasNextPage")
            {
                assert_eq!(conn["totalCount"].as_u64(), Some(ids.len() as u64));
                return ids;
            }
            after = conn["pageInfo"]["endCursor"].clone();
        }
    }
}

/// The single error of a response, asserting its `extensions.code`.
pub fn single_error<'a>(response: &'a Value, code: &str) -> &'a Value {
    let errors = response["errors"]
        .as_array()
        .unwrap_or_else(|| panic!("expected errors: {response}"));
    assert_eq!(errors.len(), 1, "{response}");
    assert_eq!(errors[0]["extensions"]["code"], code, "{response}");
    &errors[0]
}

/// The failing field names of a VALIDATION_FAILED error.
pub fn failing_fields(error: &Value) -> Vec<String> {
    error["extensions"]["failures"]
        .as_array()
        .expect("failures")
        .iter()
        .map(|f| f["field"].as_str().expect("field").to_string())
        .collect()
}

/// Every row of every table, in a stable order: equal snapshots mean an unchanged database.
pub async fn snapshot(app: &TestApp) -> String {
    let db = &app.db;
    let mut parts = vec![
        format!("{:?}", Tenant::find().all(db).await.expect("tenants")),
        format!("{:?}", Business::find().all(db).await.expect("businesses")),
        format!("{:?}", Account::find().all(db).await.expect("accounts")),
        format!("{:?}", Tag::find().all(db).await.expect("tags")),
    ];
    let mut contacts = Contact::find().all(db).await.expect("contacts");
    contacts.sort_by_key(|c| c.id);
    parts.push(format!("{contacts:?}"));
    let mut links = ContactTag::find().all(db).await.expect("links");
    links.sort_by_key(|l| (l.contact_id, l.tag_id));
    parts.push(format!("{links:?}"));
    let mut assignees = ContactAssignee::find().all(db).await.expect("assignees");
    assignees.sort_by(|a, b| (a.contact_id, &a.assignee).cmp(&(b.contact_id, &b.assignee)));
    parts.push(format!("{assignees:?}"));
    let mut sources = ContactSource::find().all(db).await.expect("sources");
    sources.sort_by_key(|s| s.id);
    parts.push(format!("{sources:?}"));
    let mut keys = ContactKey::find().all(db).await.expect("keys");
    keys.sort_by(|a, b| (&a.kind, &a.value, a.contact_id).cmp(&(&b.kind, &b.value, b.contact_id)));
    parts.push(format!("{keys:?}"));
    let mut entities = SourceEntity::find().all(db).await.expect("entities");
    entities.sort_by(|a, b| {
        (&a.source, &a.kind, &a.external_id).cmp(&(&b.source, &b.kind, &b.external_id))
    });
    parts.push(format!("{entities:?}"));
    let mut write_backs = WriteBack::find().all(db).await.expect("write-backs");
    write_backs.sort_by_key(|w| w.id);
    parts.push(format!("{write_backs:?}"));
    parts.join("\n")
}

/// The demo tenant's id.
pub async fn tenant_of(app: &TestApp) -> TenantId {
    demo::demo_tenant(&app.db)
        .await
        .expect("query")
        .expect("demo tenant")
}

// ----- file imports -----

/// The bytes of `tests/fixtures/<name>` (the seeds' own examples).
pub fn fixture(name: &str) -> Vec<u8> {
    let path = format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read(&path).unwrap_or_else(|err| panic!("{path}: {err}"))
}

/// Lenient import options for `tenant`: source named after `format`, records without an
/// account of their own put in `account`, default write settings.
pub fn options(tenant: TenantId, format: Format, account: Option<&str>) -> ImportOptions {
    ImportOptions {
        tenant,
        source: format.name().to_string(),
        format,
        context: MapContext {
            account: account.map(str::to_string),
            business: None,
        },
        strict: false,
        settings: WriteSettings::default(),
    }
}

/// Imports `payload` into `app`'s database, as the `import` command does.
pub async fn import(
    app: &TestApp,
    options: &ImportOptions,
    payload: &[u8],
) -> contact_gateway::Result<ImportSummary> {
    import_payload(&app.db, options, payload, |_, _| {}).await
}

const CONTACT_BY_EMAIL: &str = r#"query($email: String!) {
    contacts(filter: { email: $email }) { nodes {
        id name firstName lastName email phone companyName externalRef resolutionStatus
        role notes linkedin description timezone website secondaryEmails secondaryPhones
        status pipelineId pipelineStage owner createdBy assignees isTestContact
        dnd { email sms call whatsapp } address { street city postalCode }
        createdAt updatedAt
        account { name externalRef } business { name } tags { name displayOrder }
        sources { source format externalId fetchedAt record }
    } } }"#;

/// The one contact with `email`, with every field, its relations and its source records.
pub async fn contact_by_email(app: &TestApp, email: &str) -> Value {
    let data = app.data(CONTACT_BY_EMAIL, json!({ "email": email })).await;
    let nodes = data["contacts"]["nodes"].as_array().expect("nodes").clone();
    assert_eq!(nodes.len(), 1, "{data}");
    nodes[0].clone()
}

/// The `name` column of every row of a catalog statement, whose text depends on the
/// database: `sqlite` on SQLite, `postgres` on PostgreSQL.
pub async fn names(db: &DatabaseConnection, sqlite: &str, postgres: &str) -> Vec<String> {
    let backend = db.get_database_backend();
    let sql = match backend {
        sea_orm::DbBackend::Sqlite => sqlite,
        _ => postgres,
    };
    db.query_all_raw(sea_orm::Statement::from_string(backend, sql))
        .await
        .expect("catalog")
        .iter()
        .map(|r| r.try_get::<String>("", "name").expect("name"))
        .collect()
}

/// The tables with planner statistics: on PostgreSQL those an `ANALYZE` statement (not
/// autovacuum) has analyzed; on SQLite the `sqlite_stat*` tables `ANALYZE` makes.
pub async fn analyzed_tables(app: &TestApp) -> Vec<String> {
    names(
        &app.db,
        "SELECT name FROM sqlite_master WHERE name LIKE 'sqlite_stat%' ORDER BY name",
        "SELECT relname AS name FROM pg_stat_user_tables WHERE last_analyze IS NOT NULL ORDER BY relname",
    )
    .await
}

/// What [`analyzed_tables`] should list after a bulk write: the contact tables on
/// PostgreSQL; nothing on SQLite, whose statements fix their own plans.
pub fn analyzed_after_bulk_write(app: &TestApp) -> Vec<String> {
    match app.db.get_database_backend() {
        sea_orm::DbBackend::Sqlite => vec![],
        _ => [
            "contact_assignees",
            "contact_counts",
            "contact_keys",
            "contact_sources",
            "contact_tags",
            "contacts",
        ]
        .map(String::from)
        .to_vec(),
    }
}
