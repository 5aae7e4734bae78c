//! The command line: `serve` (the default), `migrate`, `schema` and `seed`.
use clap::{Parser, Subcommand};

use crate::config::{Config, DatabaseConfig};
use crate::startup::Application;
use crate::{db, demo, graphql};

/// contact-gateway: one GraphQL API over the contacts of several vendor systems.
#[derive(Parser, Debug)]
#[command(name = "contact-gateway", version, about)]
pub struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
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

/// Parses the command line and runs the command.
pub async fn run() -> anyhow::Result<()> {
    let cli = Cli::parse();
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
    }
}

async fn serve(config: Config) -> anyhow::Result<()> {
    let app = Application::build(&config).await?;
    let address = app.address();
    println!("contact-gateway listening on http://{address}");
    println!("GraphiQL: http://{address}/graphql");
    tracing::info!(%address, "listening");
    app.run_until_stopped().await?;
    Ok(())
}

async fn seed(args: SeedArgs) -> anyhow::Result<()> {
    let db = db::connect(&args.database.database_url, None).await?;
    db::migrate(&db).await?;
    let tenant = match demo::default_tenant(&db).await? {
        Some(tenant) => tenant,
        None => demo::create_demo_tenant(&db).await?,
    };
    let started = std::time::Instant::now();
    demo::seed_contacts(&db, tenant, args.contacts, args.seed).await?;
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
