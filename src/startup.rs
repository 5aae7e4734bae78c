//! Building the application from its configuration, and running it.
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use sea_orm::DatabaseConnection;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::auth::{Authenticator, api_keys};
use crate::config::Limits;
use crate::config::{Config, ConnectionLimits};
use crate::contacts::WriteSettings;
use crate::events::feed::Feed;
use crate::graphql::{AppSchema, Services, SubscriptionHubs, SubscriptionSlots, build_schema};
use crate::metrics::Metrics;
use crate::secrets::SecretKey;
use crate::sources::config::SourcesFile;
use crate::sources::sync::Syncer;
use crate::sources::{catalog, scheduler};
use crate::webhooks::store::UrlPolicy;
use crate::write_back::outcomes::RetryPolicy;
use crate::{db, demo, http, webhooks, write_back};

/// What every handler shares.
#[derive(Clone)]
pub struct AppState {
    /// The GraphQL schema.
    pub schema: AppSchema,
    /// The database pool.
    pub db: DatabaseConnection,
    /// The application's metrics.
    pub metrics: Metrics,
    /// Verifies API keys.
    pub auth: Arc<Authenticator>,
    /// The demo key GraphiQL opens with (not in production).
    pub graphiql_key: Option<String>,
    /// Request limits.
    pub limits: Limits,
    /// Production mode (no GraphiQL page).
    pub production: bool,
    /// Subscriptions over WebSocket, each distinct operation run once.
    pub subscriptions: Arc<SubscriptionHubs>,
    /// How often WebSocket connections are pinged.
    pub ws_ping: Duration,
}

impl axum::extract::FromRef<AppState> for Arc<Authenticator> {
    fn from_ref(state: &AppState) -> Self {
        state.auth.clone()
    }
}

/// A built application, bound to its address and ready to serve.
pub struct Application {
    listener: TcpListener,
    router: Router,
    address: SocketAddr,
    state: AppState,
    demo_key: Option<String>,
    connection_limits: ConnectionLimits,
    syncer: Arc<Syncer>,
    /// How often the scheduler polls; `None`: no scheduler in this process.
    scheduler_poll: Option<Duration>,
    /// The write-back delivery worker; `None`: not in this process.
    write_back: Option<Arc<write_back::worker::Worker>>,
    /// The webhook delivery worker; `None`: not in this process.
    webhooks: Option<Arc<webhooks::worker::Worker>>,
    /// Cancelled when the server stops: background work (delivery, the change feed) ends.
    stopping: CancellationToken,
    /// PostgreSQL: a pool of its own for folding the contact counts' deltas, outside the
    /// serving pool's statement time limit and request metrics.
    counts_folder: Option<DatabaseConnection>,
}

impl Application {
    /// Connects to the database, migrates it, creates the demo tenant on an empty database
    /// (unless `no_demo`), builds the routes and binds the listener.
    pub async fn build(config: &Config) -> anyhow::Result<Self> {
        let metrics = Metrics::new();
        let db = db::connect_for_serving(
            &config.database.database_url,
            &metrics,
            Duration::from_secs(config.limits.request_timeout_secs),
            config.sqlite_cache_kib,
        )
        .await?;
        db::migrate(&db).await?;
        let production = config.is_production();
        let limits = config.limits.limits();
        let mut demo_tenant = demo::demo_tenant(&db).await?;
        if demo::default_tenant(&db).await?.is_none() && !config.no_demo && !production {
            tracing::info!("empty database: creating the demo tenant");
            demo_tenant = Some(demo::create_demo_tenant(&db).await?);
        }
        // The demo tenant gets a fresh key at each start; the previous one is revoked.
        let demo_key = match demo_tenant {
            Some(tenant) if !production => Some(api_keys::fresh_demo_key(&db, tenant).await?.key),
            _ => None,
        };
        let key = SecretKey::load(
            config.sync.secret_key.as_deref(),
            &config.database.database_url,
        )?;
        if let Some(path) = &config.sources_file {
            catalog::upsert_file_sources(&db, key.as_ref(), &SourcesFile::load(path)?).await?;
        }
        let settings = WriteSettings {
            default_region: config.default_phone_region,
        };
        let mut syncer = Syncer::new(
            key,
            settings,
            Some(metrics.clone()),
            config.sync.allow_private_networks,
        );
        syncer.max_deletion_share = f64::from(config.sync.max_deletion_percent) / 100.0;
        let syncer = Arc::new(syncer);
        let write_back = (!config.sync.no_write_back).then(|| {
            Arc::new(write_back::worker::Worker {
                db: db.clone(),
                client: syncer.client.clone(),
                key: syncer.key.clone(),
                retry: RetryPolicy {
                    base_ms: config.sync.write_back_backoff_ms.max(1),
                    max_attempts: config.sync.write_back_max_attempts.max(1),
                },
                poll: Duration::from_millis(config.sync.write_back_poll_ms.max(10)),
                lease: Duration::from_millis(config.sync.write_back_lease_ms.max(1_000)),
                metrics: Some(metrics.clone()),
                syncer: Some(syncer.clone()),
                retention: Duration::from_secs(
                    u64::from(config.sync.write_back_retention_days) * 24 * 60 * 60,
                ),
            })
        });
        let webhook_urls = UrlPolicy {
            allow_private_networks: !production || config.sync.webhooks_allow_private_networks,
        };
        let webhooks = if config.sync.no_webhook_delivery {
            None
        } else {
            Some(Arc::new(webhooks::worker::Worker {
                db: db.clone(),
                client: webhook_client(webhook_urls)?,
                urls: webhook_urls,
                key: syncer.key.clone(),
                poll: Duration::from_millis(config.sync.webhook_poll_ms.max(10)),
                lease: Duration::from_secs(30),
                backoff_ms: config.sync.webhook_backoff_ms.max(1),
                disable_after_ms: config.sync.webhook_disable_after_secs.max(0) * 1000,
                retention: Duration::from_secs(
                    u64::from(config.sync.webhook_retention_days) * 24 * 60 * 60,
                ),
            }))
        };
        let stopping = CancellationToken::new();
        let feed = Feed::start(
            db.clone(),
            config.limits.subscription_buffer,
            stopping.clone(),
        );
        let schema = build_schema(
            db.clone(),
            settings,
            limits,
            production,
            Services {
                syncer: syncer.clone(),
                feed,
                webhook_urls,
            },
        );
        let subscriptions = SubscriptionHubs::new(
            schema.clone(),
            db.clone(),
            limits,
            SubscriptionSlots::new(
                config.limits.max_subscriptions_per_key,
                config.limits.max_subscriptions_per_connection,
            ),
            config.limits.subscription_buffer,
            &metrics,
        );
        let state = AppState {
            schema,
            subscriptions,
            ws_ping: Duration::from_secs(config.limits.ws_ping_secs.max(1)),
            auth: Authenticator::new(db.clone(), Duration::from_secs(config.key_cache_secs)),
            db,
            metrics,
            graphiql_key: demo_key.clone(),
            limits,
            production,
        };
        let counts_folder = if state.db.get_database_backend() == sea_orm::DbBackend::Postgres {
            Some(db::connect(&config.database.database_url, None).await?)
        } else {
            None
        };
        let router = http::router(state.clone());
        let listener = TcpListener::bind(config.listen).await?;
        let address = listener.local_addr()?;
        Ok(Self {
            listener,
            router,
            address,
            state,
            demo_key,
            connection_limits: config.limits.connection_limits(),
            syncer,
            scheduler_poll: (!config.sync.no_scheduler)
                .then(|| Duration::from_millis(config.sync.sync_poll_ms.max(10))),
            write_back,
            webhooks,
            stopping,
            counts_folder,
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

    /// Runs sources (shared with `syncSource`).
    pub fn syncer(&self) -> &Arc<Syncer> {
        &self.syncer
    }

    /// The demo tenant's API key made at this start, if any.
    pub fn demo_key(&self) -> Option<&str> {
        self.demo_key.as_deref()
    }

    /// Serves, and runs sources on their schedule, until Ctrl-C or SIGTERM; then finishes
    /// in-flight requests, and sync runs write the pages they fetched and stop (the next run
    /// resumes at the page after them). Keys' `lastUsedAt` is written every minute and at
    /// shutdown; the contact counts' deltas are folded every two seconds
    /// ([`crate::contacts::counts::fold_deltas`]).
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        let scheduler = self.scheduler_poll.map(|poll| {
            tokio::spawn(scheduler::run(
                self.state.db.clone(),
                self.syncer.clone(),
                poll,
            ))
        });
        let stopping = self.stopping.clone();
        let delivering = self
            .write_back
            .clone()
            .map(|worker| tokio::spawn(worker.run(stopping.clone())));
        let sending = self
            .webhooks
            .clone()
            .map(|worker| tokio::spawn(worker.run(stopping.clone())));
        let folding = self.counts_folder.clone().map(|db| {
            tokio::spawn(crate::contacts::counts::fold_deltas_until(
                db,
                stopping.clone(),
            ))
        });
        let auth = self.state.auth.clone();
        let flusher = tokio::spawn({
            let auth = auth.clone();
            async move {
                let period = Duration::from_secs(60);
                let mut every =
                    tokio::time::interval_at(tokio::time::Instant::now() + period, period);
                loop {
                    every.tick().await;
                    auth.flush_last_used().await;
                }
            }
        });
        let served = http::server::serve(self.listener, self.router, self.connection_limits, {
            // Runs stop as soon as the signal comes, not after requests have drained.
            let syncer = self.syncer.clone();
            let stopping = stopping.clone();
            async move {
                shutdown_signal().await;
                syncer.stop();
                stopping.cancel();
            }
        })
        .await;
        flusher.abort();
        stopping.cancel();
        // The batch being delivered is finished and recorded.
        if let Some(delivering) = delivering {
            let _ = delivering.await;
        }
        if let Some(sending) = sending {
            let _ = sending.await;
        }
        if let Some(folding) = folding {
            let _ = folding.await;
        }
        self.syncer.shut_down().await;
        if let Some(scheduler) = scheduler {
            let _ = scheduler.await;
        }
        auth.flush_last_used().await;
        served
    }
}

/// Resolves on Ctrl-C or, on Unix, SIGTERM.
pub async fn shutdown_signal() {
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

/// The client webhooks are sent with: no redirects, no proxy (a proxy would resolve names
/// itself), public addresses only unless `policy` allows private networks (checked on every
/// resolution). A client that cannot be built stops the start, rather than sending without
/// these checks.
fn webhook_client(policy: UrlPolicy) -> anyhow::Result<reqwest::Client> {
    let mut builder = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .user_agent(concat!("contact-gateway/", env!("CARGO_PKG_VERSION")));
    if !policy.allow_private_networks {
        builder = builder.dns_resolver(Arc::new(crate::sources::network::PublicOnly));
    }
    Ok(builder.build()?)
}
