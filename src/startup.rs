//! Building the application from its configuration, and running it.
use std::net::SocketAddr;

use axum::Router;
use sea_orm::DatabaseConnection;
use tokio::net::TcpListener;

use crate::config::Config;
use crate::contacts::WriteSettings;
use crate::graphql::{AppSchema, Limits, build_schema};
use crate::metrics::Metrics;
use crate::scope::TenantId;
use crate::{db, demo, http};

/// What every handler shares.
#[derive(Clone)]
pub struct AppState {
    /// The GraphQL schema.
    pub schema: AppSchema,
    /// The database pool.
    pub db: DatabaseConnection,
    /// The application's metrics.
    pub metrics: Metrics,
    /// The tenant requests act for until API keys exist.
    pub default_tenant: Option<TenantId>,
    /// Request limits.
    pub limits: Limits,
    /// Production mode (no GraphiQL page).
    pub production: bool,
}

/// A built application, bound to its address and ready to serve.
pub struct Application {
    listener: TcpListener,
    router: Router,
    address: SocketAddr,
    state: AppState,
}

impl Application {
    /// Connects to the database, migrates it, creates the demo tenant on an empty database
    /// (unless `no_demo`), builds the routes and binds the listener.
    pub async fn build(config: &Config) -> anyhow::Result<Self> {
        let metrics = Metrics::new();
        let db = db::connect(&config.database.database_url, Some(&metrics)).await?;
        db::migrate(&db).await?;
        let production = config.is_production();
        let limits = config.limits.limits();
        let mut default_tenant = demo::default_tenant(&db).await?;
        if default_tenant.is_none() && !config.no_demo && !production {
            tracing::info!("empty database: creating the demo tenant");
            default_tenant = Some(demo::create_demo_tenant(&db).await?);
        }
        let state = AppState {
            schema: build_schema(
                db.clone(),
                WriteSettings {
                    default_region: config.default_phone_region,
                },
                limits,
                production,
            ),
            db,
            metrics,
            default_tenant,
            limits,
            production,
        };
        let router = http::router(state.clone());
        let listener = TcpListener::bind(config.listen).await?;
        let address = listener.local_addr()?;
        Ok(Self {
            listener,
            router,
            address,
            state,
        })
    }

    /// The address the server listens on (useful with port 0).
    pub fn address(&self) -> SocketAddr {
        self.address
    }

    /// The shared state (database pool, metrics).
    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// Serves until Ctrl-C or SIGTERM, then finishes in-flight requests.
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        axum::serve(self.listener, self.router)
            .with_graceful_shutdown(shutdown_signal())
            .await
    }
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
}
