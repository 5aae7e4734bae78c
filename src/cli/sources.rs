//! `contact-gateway source …` (create, update, delete, list: what `createSource`,
//! `updateSource`, `deleteSource` and `sources` do) and `contact-gateway sync` (run sources
//! now and wait for them).
use entity::prelude::Source;
use entity::source;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QueryOrder};
use uuid::Uuid;

use super::open;
use crate::change::Change;
use crate::config::{DatabaseConfig, SyncConfig};
use crate::contacts::WriteSettings;
use crate::secrets::SecretKey;
use crate::sources::catalog::{self, SourcePatch};
use crate::sources::config::SourcesFile;
use crate::sources::definition::{SourceDraft, format_duration};
use crate::sources::runs::{RunMode, RunTrigger};
use crate::sources::sync::{RunRequest, Syncer};
use crate::tenancy::TenantId;
use crate::time::format_millis;

/// Arguments of `sync`.
#[derive(clap::Args, Debug)]
pub struct SyncArgs {
    #[command(flatten)]
    database: DatabaseConfig,
    #[command(flatten)]
    sync: SyncConfig,
    /// A sources file (TOML) to upsert first.
    #[arg(long = "sources", env = "SOURCES_FILE")]
    sources_file: Option<std::path::PathBuf>,
    /// Only this tenant's sources.
    #[arg(long)]
    tenant: Option<Uuid>,
    /// Only the source of this name (with --tenant when several tenants have one).
    #[arg(long)]
    source: Option<String>,
    /// FULL (every record; deletions detected) or INCREMENTAL; default: as the schedule
    /// would (FULL once `full_every` has passed).
    #[arg(long, value_parser = parse_mode)]
    mode: Option<RunMode>,
    /// Let deletion detection mark more than the allowed share of records deleted.
    #[arg(long)]
    allow_mass_deletion: bool,
    /// Region (ISO 3166 code, e.g. DE) for phone numbers without a country code.
    #[arg(long, env = "DEFAULT_PHONE_REGION", value_parser = crate::config::parse_region)]
    default_phone_region: Option<phonenumber::country::Id>,
}

fn parse_mode(text: &str) -> Result<RunMode, String> {
    RunMode::parse(&text.to_ascii_uppercase()).ok_or_else(|| "FULL or INCREMENTAL".to_string())
}

/// What a source is, as flags (`source create` / `source update`).
#[derive(clap::Args, Debug, Default)]
pub struct SourceFlags {
    /// account-contacts, business-contacts, client-contacts or pipeline-contacts.
    #[arg(long)]
    format: Option<String>,
    /// The list URL.
    #[arg(long)]
    url: Option<String>,
    /// A value of `{accountId}` (repeat the flag for several).
    #[arg(long = "account")]
    accounts: Vec<String>,
    /// A value of `{businessId}` (repeat the flag for several).
    #[arg(long = "business")]
    businesses: Vec<String>,
    /// An extra header, `Name: value` (repeat the flag for several).
    #[arg(long = "header", value_parser = parse_header)]
    headers: Vec<(String, String)>,
    /// The environment variable holding the bearer token (stored encrypted).
    #[arg(long)]
    token_env: Option<String>,
    /// Time between scheduled runs (e.g. 15m).
    #[arg(long)]
    interval: Option<String>,
    /// Time between FULL runs (e.g. 1d).
    #[arg(long)]
    full_every: Option<String>,
    /// How far before the watermark incremental runs ask from (e.g. 5m).
    #[arg(long)]
    overlap: Option<String>,
    /// Requests per minute to pace runs to.
    #[arg(long)]
    max_requests_per_minute: Option<i64>,
}

fn parse_header(text: &str) -> Result<(String, String), String> {
    let (name, value) = text
        .split_once(':')
        .ok_or_else(|| "write a header as `Name: value`".to_string())?;
    Ok((name.trim().to_string(), value.trim().to_string()))
}

/// `source` subcommands.
#[derive(clap::Subcommand, Debug)]
pub enum SourceCommand {
    /// Add a source to a tenant.
    Create {
        #[command(flatten)]
        database: DatabaseConfig,
        #[command(flatten)]
        sync: SyncConfig,
        /// The tenant.
        #[arg(long)]
        tenant: Uuid,
        /// The source's name.
        #[arg(long)]
        name: String,
        #[command(flatten)]
        flags: SourceFlags,
        /// Create it disabled (off the schedule).
        #[arg(long)]
        disabled: bool,
    },
    /// Change a source: the flags given replace what is stored.
    Update {
        #[command(flatten)]
        database: DatabaseConfig,
        #[command(flatten)]
        sync: SyncConfig,
        /// The tenant.
        #[arg(long)]
        tenant: Uuid,
        /// The source's name.
        #[arg(long)]
        name: String,
        #[command(flatten)]
        flags: SourceFlags,
        /// Remove the stored token.
        #[arg(long, conflicts_with = "token_env")]
        clear_token: bool,
        /// Put it on the schedule.
        #[arg(long, conflicts_with = "disable")]
        enable: bool,
        /// Take it off the schedule.
        #[arg(long)]
        disable: bool,
    },
    /// Delete a source with its runs (its contacts stay).
    Delete {
        #[command(flatten)]
        database: DatabaseConfig,
        /// The tenant.
        #[arg(long)]
        tenant: Uuid,
        /// The source's name.
        #[arg(long)]
        name: String,
    },
    /// List sources (never their tokens).
    List {
        #[command(flatten)]
        database: DatabaseConfig,
        /// Only this tenant's.
        #[arg(long)]
        tenant: Option<Uuid>,
    },
}

fn key(sync: &SyncConfig, database: &DatabaseConfig) -> anyhow::Result<Option<SecretKey>> {
    Ok(SecretKey::load(
        sync.secret_key.as_deref(),
        &database.database_url,
    )?)
}

fn token_of(var: &Option<String>) -> anyhow::Result<Option<String>> {
    match var {
        None => Ok(None),
        Some(var) => std::env::var(var)
            .map(Some)
            .map_err(|_| anyhow::anyhow!("environment variable {var} (--token-env) is not set")),
    }
}

/// Runs a `source` subcommand.
pub async fn source(command: SourceCommand) -> anyhow::Result<()> {
    match command {
        SourceCommand::Create {
            database,
            sync,
            tenant,
            name,
            flags,
            disabled,
        } => {
            let db = open(&database).await?;
            let token = token_of(&flags.token_env)?;
            let draft = SourceDraft {
                write: None,
                name,
                format: flags.format.unwrap_or_default(),
                url: flags.url.unwrap_or_default(),
                accounts: flags.accounts,
                businesses: flags.businesses,
                headers: flags.headers,
                interval: flags.interval,
                full_every: flags.full_every,
                overlap: flags.overlap,
                max_requests_per_minute: flags.max_requests_per_minute,
                enabled: Some(!disabled),
            };
            let key = key(&sync, &database)?;
            let row = catalog::create(
                &db,
                key.as_ref(),
                TenantId(tenant),
                &draft,
                token.as_deref(),
            )
            .await?;
            println!("{}", row.id);
        }
        SourceCommand::Update {
            database,
            sync,
            tenant,
            name,
            flags,
            clear_token,
            enable,
            disable,
        } => {
            let db = open(&database).await?;
            let token = match token_of(&flags.token_env)? {
                Some(token) => Change::Set(token),
                None if clear_token => Change::Clear,
                None => Change::Keep,
            };
            let some = |list: Vec<String>| (!list.is_empty()).then_some(list);
            let patch = SourcePatch {
                write: Change::Keep,
                format: flags.format,
                url: flags.url,
                accounts: some(flags.accounts),
                businesses: some(flags.businesses),
                headers: (!flags.headers.is_empty()).then_some(flags.headers),
                interval: flags.interval,
                full_every: flags.full_every,
                overlap: flags.overlap,
                max_requests_per_minute: match flags.max_requests_per_minute {
                    Some(n) => Change::Set(n),
                    None => Change::Keep,
                },
                enabled: (enable || disable).then_some(enable),
                token,
            };
            let key = key(&sync, &database)?;
            catalog::update(&db, key.as_ref(), TenantId(tenant), &name, &patch).await?;
            println!("updated {name}");
        }
        SourceCommand::Delete {
            database,
            tenant,
            name,
        } => {
            let db = open(&database).await?;
            catalog::delete(&db, TenantId(tenant), &name).await?;
            println!("deleted {name}");
        }
        SourceCommand::List { database, tenant } => {
            let db = open(&database).await?;
            println!("tenant\tname\tformat\tenabled\tinterval\tnext run\ttoken\turl");
            for row in rows(&db, tenant, None).await? {
                let millis = |ms: i64| format_duration(std::time::Duration::from_millis(ms as u64));
                println!(
                    "{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}",
                    row.tenant_id,
                    row.name,
                    row.format,
                    row.enabled,
                    millis(row.interval_ms),
                    row.next_run_at.map_or("-".to_string(), format_millis),
                    match (&row.token, &row.token_last4) {
                        (Some(_), Some(last4)) => format!("…{last4}"),
                        (Some(_), None) => "set".to_string(),
                        (None, _) => "-".to_string(),
                    },
                    row.url
                );
            }
        }
    }
    Ok(())
}

/// Sources by tenant and name, optionally one tenant's or of one name.
async fn rows(
    db: &sea_orm::DatabaseConnection,
    tenant: Option<Uuid>,
    name: Option<&str>,
) -> anyhow::Result<Vec<source::Model>> {
    let mut select = Source::find()
        .order_by_asc(source::Column::TenantId)
        .order_by_asc(source::Column::Name);
    if let Some(tenant) = tenant {
        select = select.filter(source::Column::TenantId.eq(tenant));
    }
    if let Some(name) = name {
        select = select.filter(source::Column::Name.eq(name));
    }
    Ok(select.all(db).await?)
}

/// Runs the chosen sources one after the other and waits for each; Ctrl-C or SIGTERM stops
/// the run under way between pages (it fails with `INTERRUPTED` and resumes next time).
pub async fn sync(args: SyncArgs) -> anyhow::Result<()> {
    let db = open(&args.database).await?;
    let key = key(&args.sync, &args.database)?;
    if let Some(path) = &args.sources_file {
        catalog::upsert_file_sources(&db, key.as_ref(), &SourcesFile::load(path)?).await?;
    }
    let chosen = rows(&db, args.tenant, args.source.as_deref()).await?;
    let chosen: Vec<source::Model> = match &args.source {
        // One named source runs even when disabled.
        Some(name) => {
            if chosen.len() > 1 {
                anyhow::bail!("several tenants have a source {name:?}: pass --tenant");
            }
            if chosen.is_empty() {
                anyhow::bail!("no source {name:?}");
            }
            chosen
        }
        None => chosen.into_iter().filter(|r| r.enabled).collect(),
    };
    let settings = WriteSettings {
        default_region: args.default_phone_region,
    };
    let mut syncer = Syncer::new(key, settings, None, args.sync.allow_private_networks);
    syncer.max_deletion_share = f64::from(args.sync.max_deletion_percent) / 100.0;
    let syncer = std::sync::Arc::new(syncer);
    // Ctrl-C or SIGTERM stops the run between pages (the batch being written commits or
    // rolls back whole); the next run resumes there.
    let stopper = syncer.clone();
    tokio::spawn(async move {
        crate::startup::shutdown_signal().await;
        eprintln!("stopping: the run ends after the pages being written");
        stopper.stop();
    });
    let mut failed = false;
    for row in chosen {
        if syncer.is_stopping() {
            eprintln!("{}: not started (stopping)", row.name);
            failed = true;
            continue;
        }
        let request = RunRequest {
            mode: args.mode,
            trigger: RunTrigger::Manual,
            allow_mass_deletion: args.allow_mass_deletion,
        };
        let outcome = match syncer
            .start(&db, TenantId(row.tenant_id), &row.name, request)
            .await
        {
            Ok(started) => syncer.finish(&db, started).await,
            Err(err) => Err(err),
        };
        let name = &row.name;
        match outcome {
            Ok(run) if run.error_code.is_none() => println!(
                "{name}: {} run: created {}, updated {}, unchanged {}, deleted {}, warnings {}, \
                 requests {}",
                run.mode,
                run.created,
                run.updated,
                run.unchanged,
                run.deleted,
                run.warnings,
                run.requests
            ),
            Ok(run) => {
                eprintln!(
                    "{name}: failed: {}: {}",
                    run.error_code.unwrap_or_default(),
                    run.error_message.unwrap_or_default()
                );
                failed = true;
            }
            Err(err) => {
                eprintln!("{name}: failed: {}", err.detail());
                failed = true;
            }
        }
    }
    super::fold_counts(&db).await;
    if failed {
        anyhow::bail!("some sources failed; run sync again to resume them");
    }
    Ok(())
}
