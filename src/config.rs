//! The one typed configuration of the server, read from flags and the environment.
use std::net::SocketAddr;

use clap::Args;

/// Default database: a SQLite file next to where the server starts, created on first start.
pub const DEFAULT_DATABASE_URL: &str = "sqlite://contact-gateway.db?mode=rwc";

/// How to reach the database.
#[derive(Args, Clone, Debug)]
pub struct DatabaseConfig {
    /// Database URL: `sqlite://FILE?mode=rwc` or `postgres://USER@HOST:PORT/DB`.
    #[arg(long, env = "DATABASE_URL", default_value = DEFAULT_DATABASE_URL)]
    pub database_url: String,
}

/// Settings of `contact-gateway serve`.
#[derive(Args, Clone, Debug)]
pub struct Config {
    /// Address to listen on (port 0 picks a free port).
    #[arg(long, env = "LISTEN_ADDR", default_value = "127.0.0.1:8000")]
    pub listen: SocketAddr,

    #[command(flatten)]
    pub database: DatabaseConfig,

    /// Do not create the demo tenant and its data on an empty database.
    #[arg(long, env = "NO_DEMO")]
    pub no_demo: bool,

    /// Region (ISO 3166 code, e.g. DE) for phone numbers written without a country code;
    /// without it such numbers are rejected.
    #[arg(long, env = "DEFAULT_PHONE_REGION", value_parser = parse_region)]
    pub default_phone_region: Option<phonenumber::country::Id>,
}

fn parse_region(code: &str) -> Result<phonenumber::country::Id, String> {
    code.to_ascii_uppercase()
        .parse()
        .map_err(|_| format!("{code} is not an ISO 3166 region code such as DE or US"))
}
