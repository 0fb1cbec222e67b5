//! Wiring: the store named by the settings, the authenticator, the purge task and the server.
//!
//! This is the only place that names concrete adapters; everything else sees the port.

use std::net::{SocketAddr, TcpListener};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use actix_web::dev::Server;
pub use actix_web::dev::ServerHandle;
use actix_web::middleware::from_fn;
use actix_web::web::{self, Data};
use actix_web::{App, HttpServer};
use tracing_actix_web::TracingLogger;
use usage_domain::{Clock, Retention, UsageRepository, UsageService};
use usage_mongo::MongoUsageRepository;
use usage_sqlite::SqliteUsageRepository;

use crate::auth::Authenticator;
use crate::error::error_chain;
use crate::metrics::{self, Metrics, store::MeteredRepository};
use crate::rate_limit::RateLimit;
use crate::routes;
use crate::settings::Settings;
use crate::telemetry::{RequestSpan, echo_request_id};

/// What the handlers share.
#[derive(Debug)]
pub struct AppState {
    pub service: UsageService,
    pub limits: Limits,
}

/// Bounds on request input.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub max_body_bytes: usize,
    pub max_batch_records: usize,
    /// Longest time to receive a request body.
    pub body_timeout: Duration,
}

/// Where records are kept, from `USAGE_DATABASE_URL`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreUrl {
    Sqlite(PathBuf),
    Mongo(String),
}

/// Why the service cannot start.
#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error("database URL must start with sqlite://, mongodb:// or mongodb+srv://")]
    UnsupportedDatabaseUrl,
    #[error(transparent)]
    Sqlite(#[from] usage_sqlite::SqliteSetupError),
    #[error(transparent)]
    Mongo(#[from] usage_mongo::MongoSetupError),
    #[error(transparent)]
    Auth(#[from] crate::auth::AuthSetupError),
    #[error("cannot register the metrics")]
    Metrics(#[from] prometheus::Error),
    #[error("cannot listen on {addr}")]
    Bind {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
}

impl StoreUrl {
    /// `sqlite://relative/path`, `sqlite:///absolute/path`, or a MongoDB URI.
    pub fn parse(url: &str) -> Result<Self, StartupError> {
        if let Some(path) = url.strip_prefix("sqlite://") {
            if path.is_empty() {
                return Err(StartupError::UnsupportedDatabaseUrl);
            }
            return Ok(Self::Sqlite(PathBuf::from(path)));
        }
        if url.starts_with("mongodb://") || url.starts_with("mongodb+srv://") {
            return Ok(Self::Mongo(url.to_owned()));
        }
        Err(StartupError::UnsupportedDatabaseUrl)
    }
}

/// Opens the store named by `url`, creating what it needs.
///
/// An unreachable MongoDB server fails here after the driver's server selection timeout
/// (5 seconds unless the URI sets `serverSelectionTimeoutMS`): the process exits non-zero
/// and its supervisor restarts it, rather than it serving nothing but errors.
pub async fn open_store(
    url: &StoreUrl,
    retention: Retention,
) -> Result<Arc<dyn UsageRepository>, StartupError> {
    match url {
        // Opening blocks briefly; nothing else runs yet at start-up.
        StoreUrl::Sqlite(path) => Ok(Arc::new(SqliteUsageRepository::open(path)?)),
        StoreUrl::Mongo(uri) => Ok(Arc::new(
            MongoUsageRepository::connect(uri, retention).await?,
        )),
    }
}

/// A bound, not yet running, server with its background purge.
pub struct Application {
    server: Server,
    address: SocketAddr,
    purger: tokio::task::JoinHandle<()>,
}

impl std::fmt::Debug for Application {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Application")
            .field("address", &self.address)
            .finish_non_exhaustive()
    }
}

impl Application {
    /// Binds the listener and prepares the server on `repository`, with time from `clock`.
    pub fn build(
        settings: &Settings,
        repository: Arc<dyn UsageRepository>,
        authenticator: Authenticator,
        clock: Arc<dyn Clock>,
    ) -> Result<Self, StartupError> {
        let retention = Retention::days(settings.retention_days).unwrap_or_default();
        let metrics = Arc::new(Metrics::new(Some(authenticator.metrics().clone()))?);
        let repository = Arc::new(MeteredRepository::new(repository, metrics.clone()));
        let service = UsageService::new(repository, clock, retention);
        let purger = spawn_purger(service.clone(), settings.purge_interval_seconds);
        let limits = Limits {
            max_body_bytes: settings.max_body_bytes,
            max_batch_records: settings.max_batch_records,
            body_timeout: Duration::from_secs(settings.body_timeout_seconds),
        };
        let state = Data::new(AppState { service, limits });
        let authenticator = Data::new(authenticator);
        let rate_limit = Data::new(RateLimit::per_minute(settings.rate_limit_per_minute));
        let cors_origins = settings.cors_allowed_origins.clone();

        let bind_error = |source| StartupError::Bind {
            addr: settings.http_addr,
            source,
        };
        let listener = TcpListener::bind(settings.http_addr).map_err(bind_error)?;
        let address = listener.local_addr().map_err(bind_error)?;
        let mut server = HttpServer::new(move || {
            App::new()
                .wrap(crate::cors::middleware(&cors_origins))
                .wrap(from_fn(echo_request_id))
                .wrap(TracingLogger::<RequestSpan>::new())
                .wrap(from_fn({
                    let metrics = metrics.clone();
                    move |request, next| metrics::middleware::track(metrics.clone(), request, next)
                }))
                .app_data(Data::from(metrics.clone()))
                .app_data(rate_limit.clone())
                .app_data(state.clone())
                .app_data(authenticator.clone())
                .app_data(web::PayloadConfig::new(limits.max_body_bytes))
                .app_data(
                    web::QueryConfig::default()
                        .error_handler(|error, _| routes::query_error(error).into()),
                )
                .configure(routes::configure)
                .default_service(web::to(routes::not_found))
        })
        .shutdown_timeout(settings.shutdown_timeout_seconds)
        .client_request_timeout(Duration::from_secs(settings.header_timeout_seconds));
        if let Some(workers) = settings.workers {
            server = server.workers(workers);
        }
        let server = server.listen(listener).map_err(bind_error)?.run();
        Ok(Self {
            server,
            address,
            purger,
        })
    }

    /// The address the server listens on (useful with port 0).
    pub fn address(&self) -> SocketAddr {
        self.address
    }

    /// A handle to stop the server gracefully.
    pub fn handle(&self) -> ServerHandle {
        self.server.handle()
    }

    /// Serves until a graceful stop (SIGINT, SIGTERM or a handle), then stops the purge.
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        tracing::info!(address = %self.address, "listening");
        let result = self.server.await;
        self.purger.abort();
        tracing::info!("stopped");
        result
    }
}

/// Deletes expired records now and then every `interval_seconds`.
fn spawn_purger(service: UsageService, interval_seconds: u64) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut ticks = tokio::time::interval(Duration::from_secs(interval_seconds));
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticks.tick().await;
            match service.purge_expired().await {
                Ok(0) => tracing::debug!("no expired records"),
                Ok(deleted) => tracing::info!(deleted, "expired records purged"),
                Err(error) => tracing::warn!(error = %error_chain(&error), "purge failed"),
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn database_urls_name_a_store() {
        assert_eq!(
            StoreUrl::parse("sqlite://data/usage.sqlite3").unwrap(),
            StoreUrl::Sqlite(PathBuf::from("data/usage.sqlite3"))
        );
        assert_eq!(
            StoreUrl::parse("sqlite:///var/lib/usage/usage.sqlite3").unwrap(),
            StoreUrl::Sqlite(PathBuf::from("/var/lib/usage/usage.sqlite3"))
        );
        let mongo = "mongodb+srv://cluster.example/usage";
        assert_eq!(
            StoreUrl::parse(mongo).unwrap(),
            StoreUrl::Mongo(mongo.to_owned())
        );
        assert!(StoreUrl::parse("postgres://localhost/usage").is_err());
        assert!(StoreUrl::parse("sqlite://").is_err());
    }
}
