//! Wiring: the store named by the settings, the authenticator, the purge task and the server.
//!
//! This is the only place that names concrete adapters; everything else sees the port.

use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use actix_web::dev::Server;
pub use actix_web::dev::ServerHandle;
use actix_web::middleware::from_fn;
use actix_web::web::{self, Data};
use actix_web::{App, HttpServer};
use tracing_actix_web::TracingLogger;
use usage_domain::{Clock, Retention, UsageRepository, UsageService};
use usage_sqlite::SqliteUsageRepository;

use crate::auth::{Authenticator, ClaimRules, TokenRequest, mint_hs256};
use crate::error::error_chain;
use crate::routes;
use crate::settings::{Secret, Settings};
use crate::telemetry::{RequestSpan, echo_request_id};

/// How long a client may take to send its request head.
const REQUEST_HEAD_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a development token stays valid.
const DEV_TOKEN_TTL: Duration = Duration::from_secs(24 * 3600);

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
    #[error("MongoDB storage is not available in this build")]
    MongoUnavailable,
    #[error(transparent)]
    Sqlite(#[from] usage_sqlite::SqliteSetupError),
    #[error(
        "no token key is configured: set USAGE_JWT_SECRET (or bind to a loopback address \
         for local development)"
    )]
    NoKey,
    #[error("USAGE_JWT_JWKS_URL is not supported by this version; use USAGE_JWT_SECRET")]
    JwksUnsupported,
    #[error("cannot write the development token to {path}")]
    DevToken {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
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
pub async fn open_store(
    url: &StoreUrl,
    _retention: Retention,
) -> Result<Arc<dyn UsageRepository>, StartupError> {
    match url {
        // Opening blocks briefly; nothing else runs yet at start-up.
        StoreUrl::Sqlite(path) => Ok(Arc::new(SqliteUsageRepository::open(path)?)),
        StoreUrl::Mongo(_) => Err(StartupError::MongoUnavailable),
    }
}

/// The verifier the settings ask for. With no key at all, a loopback-only development mode
/// signs with a random secret and writes a token to `dev_token_file`.
pub fn authenticator(settings: &Settings) -> Result<Authenticator, StartupError> {
    let rules = ClaimRules {
        issuer: settings.jwt_issuer.clone(),
        audience: settings.jwt_audience.clone(),
        leeway_seconds: settings.jwt_leeway_seconds,
        require_exp: settings.jwt_require_exp,
        ..ClaimRules::default()
    };
    if let Some(secret) = &settings.jwt_secret {
        return Ok(Authenticator::shared_secret(secret, rules));
    }
    if settings.jwt_jwks_url.is_some() {
        return Err(StartupError::JwksUnsupported);
    }
    if !settings.http_addr.ip().is_loopback() {
        return Err(StartupError::NoKey);
    }
    let secret = Secret::new(random_secret());
    let mut request = TokenRequest::new("dev-user", DEV_TOKEN_TTL);
    request.issuer = rules.issuer.clone();
    request.audience = rules.audience.clone();
    write_dev_token(&settings.dev_token_file, &secret, &request)?;
    tracing::warn!(
        token_file = %settings.dev_token_file.display(),
        "DEVELOPMENT MODE: no USAGE_JWT_SECRET or USAGE_JWT_JWKS_URL is set. Tokens are signed \
         with a random secret that lives until this process stops. A token for user \
         'dev-user' is in the token file: curl -H \"Authorization: Bearer $(cat <token file>)\". \
         Never run like this in production."
    );
    Ok(Authenticator::shared_secret(&secret, rules))
}

fn random_secret() -> String {
    use rand::Rng;
    let bytes: [u8; 32] = rand::rng().random();
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}

fn write_dev_token(
    path: &Path,
    secret: &Secret,
    request: &TokenRequest,
) -> Result<(), StartupError> {
    let failed = |source| StartupError::DevToken {
        path: path.to_owned(),
        source,
    };
    let token =
        mint_hs256(secret, request).map_err(|error| failed(std::io::Error::other(error)))?;
    if let Some(parent) = path
        .parent()
        .filter(|parent| !parent.as_os_str().is_empty())
    {
        std::fs::create_dir_all(parent).map_err(failed)?;
    }
    std::fs::write(path, format!("{token}\n")).map_err(failed)?;
    restrict_to_owner(path).map_err(failed)
}

#[cfg(unix)]
fn restrict_to_owner(path: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
}

#[cfg(not(unix))]
fn restrict_to_owner(_path: &Path) -> std::io::Result<()> {
    Ok(())
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
        let service = UsageService::new(repository, clock, retention);
        let purger = spawn_purger(service.clone(), settings.purge_interval_seconds);
        let limits = Limits {
            max_body_bytes: settings.max_body_bytes,
            max_batch_records: settings.max_batch_records,
        };
        let state = Data::new(AppState { service, limits });
        let authenticator = Data::new(authenticator);

        let bind_error = |source| StartupError::Bind {
            addr: settings.http_addr,
            source,
        };
        let listener = TcpListener::bind(settings.http_addr).map_err(bind_error)?;
        let address = listener.local_addr().map_err(bind_error)?;
        let mut server = HttpServer::new(move || {
            App::new()
                .wrap(from_fn(echo_request_id))
                .wrap(TracingLogger::<RequestSpan>::new())
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
        .client_request_timeout(REQUEST_HEAD_TIMEOUT);
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

    #[test]
    fn without_a_key_only_loopback_addresses_may_start() {
        let dir = tempfile::tempdir().unwrap();
        let mut settings = Settings {
            dev_token_file: dir.path().join("token.txt"),
            ..Settings::default()
        };
        assert!(authenticator(&settings).is_ok());
        let token = std::fs::read_to_string(&settings.dev_token_file).unwrap();
        assert_eq!(token.trim().split('.').count(), 3, "a JWT was written");

        settings.http_addr = SocketAddr::from(([0, 0, 0, 0], 8080));
        assert!(matches!(authenticator(&settings), Err(StartupError::NoKey)));
    }
}
