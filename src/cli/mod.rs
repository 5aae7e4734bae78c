//! The command line: `serve` (the default), `migrate`, `schema`, `seed`, `tenant`,
//! `api-key`, `import`, and `source` and `sync` (in `sources.rs`).
mod sources;

use clap::{Parser, Subcommand};

use crate::config::{Config, DatabaseConfig};
use crate::startup::Application;
use uuid::Uuid;

use crate::auth::{Scope, api_keys};
use crate::contacts::WriteSettings;
use crate::sources::import::{self, ImportOptions};
use crate::sources::{Format, MapContext};
use crate::tenancy::TenantId;
use crate::time::format_millis;
use crate::{db, demo, graphql};

/// contact-gateway: one GraphQL API over the contacts of several vendor systems.
#[derive(Parser, Debug)]
#[command(name = "contact-gateway", version, about)]
pub struct Cli {
    /// Log lines as human-readable text or as JSON objects (one per line).
    #[arg(
        long,
        global = true,
        value_enum,
        env = "LOG_FORMAT",
        default_value = "text"
    )]
    pub log_format: LogFormat,
    #[command(subcommand)]
    command: Option<Command>,
}

impl Cli {
    /// Whether the command loads data in bulk (`seed`, `import`, `sync`): a short-lived
    /// process that allocates and frees the same few hundred megabytes over and over.
    pub fn loads_in_bulk(&self) -> bool {
        matches!(
            self.command,
            Some(Command::Seed(_) | Command::Import(_) | Command::Sync(_))
        )
    }
}

/// How log lines are written (to standard error).
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// Human-readable text.
    Text,
    /// One JSON object per line, with the request's span fields (request id, method, path).
    Json,
}

/// Sets up logging to standard error in `format`; `RUST_LOG` filters (default `info`).
pub fn init_logging(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder
            .json()
            .with_current_span(true)
            .with_span_list(false)
            .init(),
    }
}

/// `serve`'s settings from the environment alone, for a bare `contact-gateway`.
#[derive(Parser, Debug)]
struct ServeDefaults {
    #[command(flatten)]
    config: Config,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Serve the GraphQL API (the default when no command is given).
    Serve(Config),
    /// Apply pending database migrations and exit.
    Migrate(DatabaseConfig),
    /// Print the GraphQL schema (SDL).
    Schema,
    /// Add generated demo contacts to the demo tenant (created if missing).
    Seed(SeedArgs),
    /// Manage tenants.
    #[command(subcommand)]
    Tenant(TenantCommand),
    /// Manage API keys.
    #[command(subcommand, name = "api-key")]
    ApiKey(ApiKeyCommand),
    /// Import a vendor export (JSON) into a tenant; importing the same file again changes
    /// nothing.
    Import(ImportArgs),
    /// Run sources now and wait for them: every enabled source, a tenant's, or one
    /// (--source); a sources file given is upserted first.
    Sync(sources::SyncArgs),
    /// Manage sources (vendor APIs) as `createSource`/`updateSource`/`deleteSource` do.
    #[command(subcommand)]
    Source(sources::SourceCommand),
}

#[derive(clap::Args, Debug)]
struct ImportArgs {
    #[command(flatten)]
    database: DatabaseConfig,
    /// The file's format.
    #[arg(long, value_enum)]
    format: Format,
    /// The tenant to import into.
    #[arg(long)]
    tenant: Uuid,
    /// The source's name; records are matched by (source, vendor id). Default: the format.
    #[arg(long)]
    source: Option<String>,
    /// The account the contacts belong to (required by account-contacts).
    #[arg(long)]
    account: Option<String>,
    /// Fail and write nothing on any warning or rejected record.
    #[arg(long)]
    strict: bool,
    /// Region (ISO 3166 code, e.g. DE) for phone numbers without a country code.
    #[arg(long, env = "DEFAULT_PHONE_REGION", value_parser = crate::config::parse_region)]
    default_phone_region: Option<phonenumber::country::Id>,
    /// The file to read; `-` reads standard input.
    file: std::path::PathBuf,
}

#[derive(Subcommand, Debug)]
enum TenantCommand {
    /// Create a tenant and print its id.
    Create {
        #[command(flatten)]
        database: DatabaseConfig,
        /// The tenant's name.
        #[arg(long)]
        name: String,
    },
    /// List the tenants.
    List {
        #[command(flatten)]
        database: DatabaseConfig,
    },
}

/// The scopes of `api-key create --scopes`.
#[derive(Clone, Debug)]
struct ScopeList(Vec<Scope>);

fn parse_scope_list(list: &str) -> Result<ScopeList, String> {
    api_keys::parse_scopes(list).map(ScopeList)
}

#[derive(Subcommand, Debug)]
enum ApiKeyCommand {
    /// Create a key and print it (it is shown only this once).
    Create {
        #[command(flatten)]
        database: DatabaseConfig,
        /// The tenant the key acts for.
        #[arg(long)]
        tenant: Uuid,
        /// Comma-separated scopes: contacts:read, contacts:write, sources:manage.
        #[arg(long, value_parser = parse_scope_list)]
        scopes: ScopeList,
        /// Lifetime, e.g. 90d or 12h; without it the key does not expire.
        #[arg(long, value_parser = humantime::parse_duration)]
        expires_in: Option<std::time::Duration>,
        /// A label for people.
        #[arg(long)]
        name: Option<String>,
    },
    /// List a tenant's keys (prefix, scopes, dates; never the key).
    List {
        #[command(flatten)]
        database: DatabaseConfig,
        /// The tenant.
        #[arg(long)]
        tenant: Uuid,
    },
    /// Revoke a key by its prefix (e.g. sk-AbCdEfGh).
    Revoke {
        #[command(flatten)]
        database: DatabaseConfig,
        /// The key's prefix, as `api-key list` shows it.
        prefix: String,
    },
}

#[derive(clap::Args, Debug)]
struct SeedArgs {
    #[command(flatten)]
    database: DatabaseConfig,
    /// How many contacts to add.
    #[arg(long, default_value_t = 10_000)]
    contacts: usize,
    /// Random seed: the same seed gives the same contacts.
    #[arg(long, default_value_t = 7)]
    seed: u64,
}

impl Cli {
    /// Parses the command line (exits with usage on a mistake, or for `--help`/`--version`).
    pub fn from_args() -> Self {
        Self::parse()
    }
}

/// Runs the parsed command.
pub async fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        None => {
            let defaults = ServeDefaults::parse_from(["contact-gateway"]);
            serve(defaults.config).await
        }
        Some(Command::Serve(config)) => serve(config).await,
        Some(Command::Migrate(database)) => {
            let db = db::connect(&database.database_url, None).await?;
            db::migrate(&db).await?;
            println!("migrations applied");
            Ok(())
        }
        Some(Command::Schema) => {
            print!("{}", graphql::sdl());
            Ok(())
        }
        Some(Command::Seed(args)) => seed(args).await,
        Some(Command::Tenant(command)) => tenant(command).await,
        Some(Command::ApiKey(command)) => api_key(command).await,
        Some(Command::Import(args)) => import(args).await,
        Some(Command::Sync(args)) => sources::sync(args).await,
        Some(Command::Source(command)) => sources::source(command).await,
    }
}

async fn import(args: ImportArgs) -> anyhow::Result<()> {
    use std::io::{IsTerminal, Read};
    if args.format == Format::AccountContacts && args.account.is_none() {
        anyhow::bail!("account-contacts records do not name their account: pass --account NAME");
    }
    let payload = if args.file.as_os_str() == "-" {
        let mut buffer = Vec::new();
        std::io::stdin().read_to_end(&mut buffer)?;
        buffer
    } else {
        std::fs::read(&args.file)
            .map_err(|err| anyhow::anyhow!("cannot read {}: {err}", args.file.display()))?
    };
    let db = db::connect_for_import(&args.database.database_url).await?;
    db::migrate(&db).await?;
    let options = ImportOptions {
        tenant: TenantId(args.tenant),
        source: args
            .source
            .unwrap_or_else(|| args.format.name().to_string()),
        format: args.format,
        context: MapContext {
            account: args.account,
            business: None,
        },
        strict: args.strict,
        settings: WriteSettings {
            default_region: args.default_phone_region,
        },
    };
    let bar = if std::io::stderr().is_terminal() {
        indicatif::ProgressBar::new(0)
    } else {
        indicatif::ProgressBar::hidden()
    };
    let started = std::time::Instant::now();
    let result = import::import_payload(&db, &options, &payload, |done, total| {
        bar.set_length(total as u64);
        bar.set_position(done as u64);
    })
    .await;
    bar.finish_and_clear();
    let summary = result?;
    for notice in &summary.warnings {
        eprintln!("warning: {notice}");
    }
    for notice in &summary.rejected {
        eprintln!("rejected: {notice}");
    }
    let records = summary.created + summary.updated + summary.unchanged;
    println!(
        "created {}, updated {}, unchanged {}, warnings {}, rejected {} ({} records in {:.2}s)",
        summary.created,
        summary.updated,
        summary.unchanged,
        summary.warnings.len(),
        summary.rejected.len(),
        records,
        started.elapsed().as_secs_f64()
    );
    fold_counts(&db).await;
    Ok(())
}

/// Folds the contact counts' deltas a bulk write left (PostgreSQL), so that they do not wait
/// for a `serve` to fold them; a failure is only reported (reads add pending deltas).
async fn fold_counts(db: &sea_orm::DatabaseConnection) {
    if let Err(error) = crate::contacts::counts::fold_deltas(db).await {
        eprintln!(
            "warning: folding the contact counts' deltas failed: {}",
            error.detail()
        );
    }
}

pub(crate) async fn open(database: &DatabaseConfig) -> anyhow::Result<sea_orm::DatabaseConnection> {
    let db = db::connect(&database.database_url, None).await?;
    db::migrate(&db).await?;
    Ok(db)
}

async fn tenant(command: TenantCommand) -> anyhow::Result<()> {
    match command {
        TenantCommand::Create { database, name } => {
            let tenant = api_keys::create_tenant(&open(&database).await?, &name).await?;
            println!("{}", tenant.id);
        }
        TenantCommand::List { database } => {
            for t in api_keys::list_tenants(&open(&database).await?).await? {
                println!("{}\t{}\t{}", t.id, format_millis(t.created_at), t.name);
            }
        }
    }
    Ok(())
}

async fn api_key(command: ApiKeyCommand) -> anyhow::Result<()> {
    match command {
        ApiKeyCommand::Create {
            database,
            tenant,
            scopes,
            expires_in,
            name,
        } => {
            let created = api_keys::create_key(
                &open(&database).await?,
                TenantId(tenant),
                &scopes.0,
                name,
                expires_in,
            )
            .await?;
            println!("{}", created.key);
            eprintln!(
                "prefix {} (keep the key: it is not shown again)",
                created.record.prefix
            );
        }
        ApiKeyCommand::List { database, tenant } => {
            println!("prefix\tscopes\tcreated\tlast used\texpires\trevoked\tname");
            let when = |t: Option<i64>| t.map_or("-".to_string(), format_millis);
            for k in api_keys::list_keys(&open(&database).await?, TenantId(tenant)).await? {
                println!(
                    "{}\t{}\t{}\t{}\t{}\t{}\t{}",
                    k.prefix,
                    k.scopes,
                    format_millis(k.created_at),
                    when(k.last_used_at),
                    when(k.expires_at),
                    when(k.revoked_at),
                    k.name.unwrap_or_default()
                );
            }
        }
        ApiKeyCommand::Revoke { database, prefix } => {
            let key = api_keys::revoke_key(&open(&database).await?, &prefix).await?;
            println!("revoked {}", key.prefix);
        }
    }
    Ok(())
}

async fn serve(config: Config) -> anyhow::Result<()> {
    let app = Application::build(&config).await?;
    let address = app.address();
    let mut banner = format!("contact-gateway listening on http://{address}\n");
    if let Some(key) = app.demo_key() {
        banner.push_str(&format!(
            "GraphiQL: http://{address}/graphql (opens with the demo key)\n\
             demo API key: {key}\n  \
             curl -H 'Authorization: Bearer {key}' -H 'content-type: application/json' \\\n       \
             -d '{{\"query\":\"{{ contacts(first: 3) {{ nodes {{ name }} }} }}\"}}' http://{address}/graphql\n"
        ));
    }
    // Written, not printed: a closed standard output (a supervisor that stopped reading it)
    // must not stop the server.
    let mut stdout = std::io::stdout().lock();
    if let Err(err) = std::io::Write::write_all(&mut stdout, banner.as_bytes())
        .and_then(|()| std::io::Write::flush(&mut stdout))
    {
        tracing::warn!(%err, "could not write the start-up banner to standard output");
    }
    drop(stdout);
    tracing::info!(%address, "listening");
    app.run_until_stopped().await?;
    Ok(())
}

async fn seed(args: SeedArgs) -> anyhow::Result<()> {
    let db = db::connect(&args.database.database_url, None).await?;
    db::migrate(&db).await?;
    let tenant = match demo::demo_tenant(&db).await? {
        Some(tenant) => tenant,
        None => demo::create_demo_tenant(&db).await?,
    };
    let started = std::time::Instant::now();
    if args.contacts >= demo::BULK_LOAD_THRESHOLD {
        // The bulk connection needs the SQLite file to itself: close this pool first.
        let url = &args.database.database_url;
        db.clone().close().await?;
        let loader = match db::connect_for_bulk_load(url).await {
            Some(loader) => loader,
            None => db::connect(url, None).await?,
        };
        demo::seed_contacts(&loader, tenant, args.contacts, args.seed).await?;
        loader.close().await?;
    } else {
        demo::seed_contacts(&db, tenant, args.contacts, args.seed).await?;
    }
    let elapsed = started.elapsed();
    println!(
        "seeded {} contacts into tenant {} in {:.1}s ({:.0} contacts/s)",
        args.contacts,
        tenant.0,
        elapsed.as_secs_f64(),
        args.contacts as f64 / elapsed.as_secs_f64().max(0.001)
    );
    Ok(())
}
