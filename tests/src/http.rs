//! The real app on a free port with a throwaway store, and a client with a method per route.

use std::net::SocketAddr;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use jsonwebtoken::{Algorithm, EncodingKey, Header, encode};
use reqwest::{Response, StatusCode};
use serde_json::{Value, json};
use usage_api::auth::AuthMetrics;
use usage_api::settings::{Secret, Settings};
use usage_api::startup::{Application, ServerHandle, StoreUrl, open_store};
use usage_domain::{ManualClock, Retention};

use crate::records::utc;

/// The shared secret every test app verifies tokens with.
pub const SECRET: &str = "http-suite-secret-that-is-long-enough";

/// Where a test app keeps its records.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TestStore {
    Sqlite,
    Mongo,
}

/// The variable that names the MongoDB server the Mongo variant of the suites uses.
pub const MONGODB_URI_ENV: &str = "USAGE_TEST_MONGODB_URI";

impl TestStore {
    /// A database URL no other test uses; `dir` holds SQLite files.
    pub fn fresh_url(self, dir: &std::path::Path) -> String {
        match self {
            Self::Sqlite => format!("sqlite://{}", dir.join("usage.sqlite3").display()),
            Self::Mongo => mongo_url(&unique_name("http")),
        }
    }
}

/// The MongoDB URI of `USAGE_TEST_MONGODB_URI` with `database` as its path. Panics with
/// directions when the variable is missing: a suite that needs a server must never pass
/// without one.
pub fn mongo_url(database: &str) -> String {
    let Ok(base) = std::env::var(MONGODB_URI_ENV) else {
        panic!(
            "{MONGODB_URI_ENV} is not set. These tests need a MongoDB server: start the \
             wire-protocol stand-in with `eval \"$(bash tests/support/mongo/start.sh)\"`, or \
             point {MONGODB_URI_ENV} at a real MongoDB (mongodb://host:port/)"
        )
    };
    let (before_query, query) = base.split_once('?').unwrap_or((&base, ""));
    let scheme_end = before_query.find("://").map_or(0, |index| index + 3);
    let host_end = before_query[scheme_end..]
        .find('/')
        .map_or(before_query.len(), |index| scheme_end + index);
    let query = if query.is_empty() {
        String::new()
    } else {
        format!("?{query}")
    };
    format!("{}/{database}{query}", &before_query[..host_end])
}

/// The address of the first host of `USAGE_TEST_MONGODB_URI`'s server.
pub fn mongo_server_address() -> std::net::SocketAddr {
    let url = mongo_url("unused");
    let hosts = url
        .split("://")
        .nth(1)
        .and_then(|rest| rest.split('/').next());
    let host = hosts
        .and_then(|hosts| hosts.split(',').next())
        .expect("a host in the URI");
    std::net::ToSocketAddrs::to_socket_addrs(host)
        .ok()
        .and_then(|mut addresses| addresses.next())
        .unwrap_or_else(|| panic!("{MONGODB_URI_ENV} must name host:port, not {host}"))
}

/// A database or file name unique to this process and call.
pub fn unique_name(prefix: &str) -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    format!(
        "{prefix}_{}_{n}_{}",
        std::process::id(),
        Utc::now().timestamp_millis()
    )
}

/// The instant the pinned clock starts at: Wednesday 2026-12-02 12:00 UTC, in a week that
/// began on Monday 2026-11-30, in the previous month.
pub fn pinned_now() -> DateTime<Utc> {
    utc(2026, 12, 2, 12, 0)
}

/// A running app and an HTTP client for it.
#[derive(Debug)]
pub struct TestApp {
    pub address: SocketAddr,
    pub clock: Arc<ManualClock>,
    pub settings: Settings,
    client: reqwest::Client,
    handle: ServerHandle,
    /// The app's counts of accepted and refused tokens.
    pub auth_metrics: Arc<AuthMetrics>,
    _dir: Arc<tempfile::TempDir>,
}

/// Options for [`TestApp::spawn_with`].
#[derive(Debug, Clone)]
pub struct AppOptions {
    /// A store URL of the test's own; `None` gives a fresh store of the suite's kind.
    pub database_url: Option<String>,
    pub body_timeout_seconds: u64,
    pub header_timeout_seconds: u64,
    pub max_body_bytes: usize,
    pub max_batch_records: usize,
    pub retention_days: u32,
}

impl Default for AppOptions {
    fn default() -> Self {
        let defaults = Settings::default();
        Self {
            database_url: None,
            body_timeout_seconds: defaults.body_timeout_seconds,
            header_timeout_seconds: defaults.header_timeout_seconds,
            max_body_bytes: defaults.max_body_bytes,
            max_batch_records: defaults.max_batch_records,
            retention_days: defaults.retention_days,
        }
    }
}

impl TestApp {
    pub async fn spawn(store: TestStore) -> Self {
        Self::spawn_with(store, AppOptions::default()).await
    }

    pub async fn spawn_with(store: TestStore, options: AppOptions) -> Self {
        let dir = Arc::new(tempfile::tempdir().expect("temporary directory"));
        let settings = Settings {
            http_addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            database_url: options
                .database_url
                .unwrap_or_else(|| store.fresh_url(dir.path())),
            body_timeout_seconds: options.body_timeout_seconds,
            header_timeout_seconds: options.header_timeout_seconds,
            jwt_secret: Some(Secret::new(SECRET)),
            max_body_bytes: options.max_body_bytes,
            max_batch_records: options.max_batch_records,
            retention_days: options.retention_days,
            workers: Some(2),
            shutdown_timeout_seconds: 5,
            ..Settings::default()
        };
        let clock = Arc::new(ManualClock::new(pinned_now()));
        Self::start(settings, clock, dir).await
    }

    async fn start(
        settings: Settings,
        clock: Arc<ManualClock>,
        dir: Arc<tempfile::TempDir>,
    ) -> Self {
        let url = StoreUrl::parse(&settings.database_url).expect("test database URL");
        let retention = Retention::days(settings.retention_days).expect("valid retention");
        let repository = open_store(&url, retention)
            .await
            .expect("the test store opens");
        // As the binary does; with only `jwt_secret` set this is HS256 with that secret.
        let authenticator = usage_api::auth::from_settings(&settings).expect("the auth settings");
        let auth_metrics = Arc::clone(authenticator.metrics());
        let application = Application::build(&settings, repository, authenticator, clock.clone())
            .expect("the app builds");
        let address = application.address();
        let handle = application.handle();
        tokio::spawn(application.run_until_stopped());
        Self {
            address,
            clock,
            settings,
            client: reqwest::Client::new(),
            handle,
            auth_metrics,
            _dir: dir,
        }
    }

    /// Starts the app with the settings of [`TestApp::spawn`] as `customize` changes them:
    /// the authenticator is built from them as the binary builds it, so a test can point
    /// the app at a key server, a PEM key or other claim rules. Removing `jwt_secret` makes
    /// HS256 tokens from [`token`] useless.
    pub async fn spawn_with_settings(
        store: TestStore,
        customize: impl FnOnce(&mut Settings),
    ) -> Self {
        let dir = Arc::new(tempfile::tempdir().expect("temporary directory"));
        let mut settings = Settings {
            http_addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            database_url: store.fresh_url(dir.path()),
            jwt_secret: Some(Secret::new(SECRET)),
            workers: Some(2),
            shutdown_timeout_seconds: 5,
            ..Settings::default()
        };
        customize(&mut settings);
        let clock = Arc::new(ManualClock::new(pinned_now()));
        Self::start(settings, clock, dir).await
    }

    /// Stops the server gracefully and starts a new one on the same store and clock.
    pub async fn restart(self) -> Self {
        self.handle.stop(true).await;
        let mut settings = self.settings.clone();
        settings.http_addr = SocketAddr::from(([127, 0, 0, 1], 0));
        Self::start(settings, self.clock.clone(), self._dir.clone()).await
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.address)
    }

    /// `POST /api/usage/sync` with a JSON body.
    pub async fn sync(&self, user: &str, body: &Value) -> Response {
        self.sync_raw(Some(&token(user)), body.to_string().into_bytes())
            .await
    }

    /// Syncs `records` as `{"executions": records}`.
    pub async fn sync_records(&self, user: &str, records: &[Value]) -> Response {
        self.sync(user, &json!({ "executions": records })).await
    }

    /// `POST /api/usage/sync` with any bytes and an optional token.
    pub async fn sync_raw(&self, token: Option<&str>, body: Vec<u8>) -> Response {
        let request = self
            .client
            .post(self.url("/api/usage/sync"))
            .header("content-type", "application/json")
            .body(body);
        send(with_token(request, token)).await
    }

    /// `GET /api/usage/summary` with query parameters.
    pub async fn summary(&self, user: &str, query: &[(&str, &str)]) -> Response {
        self.get("/api/usage/summary", Some(&token(user)), query)
            .await
    }

    /// `GET /api/usage/stats` with query parameters.
    pub async fn stats(&self, user: &str, query: &[(&str, &str)]) -> Response {
        self.get("/api/usage/stats", Some(&token(user)), query)
            .await
    }

    /// A GET with an optional token.
    pub async fn get(&self, path: &str, token: Option<&str>, query: &[(&str, &str)]) -> Response {
        send(with_token(
            self.client.get(self.url(path)).query(query),
            token,
        ))
        .await
    }

    /// A request with a raw `Authorization` header value.
    pub async fn get_with_authorization(&self, path: &str, authorization: &str) -> Response {
        send(
            self.client
                .get(self.url(path))
                .header("authorization", authorization),
        )
        .await
    }
}

fn with_token(request: reqwest::RequestBuilder, token: Option<&str>) -> reqwest::RequestBuilder {
    match token {
        Some(token) => request.bearer_auth(token),
        None => request,
    }
}

async fn send(request: reqwest::RequestBuilder) -> Response {
    request.send().await.expect("the test app answers")
}

/// A valid token for `user`, signed with [`SECRET`], valid for an hour.
pub fn token(user: &str) -> String {
    let now = Utc::now().timestamp();
    sign(
        &json!({ "sub": user, "iat": now, "exp": now + 3600 }),
        SECRET,
    )
}

/// Signs any claims with HS256 and `secret`.
pub fn sign(claims: &Value, secret: &str) -> String {
    encode(
        &Header::new(Algorithm::HS256),
        claims,
        &EncodingKey::from_secret(secret.as_bytes()),
    )
    .expect("test tokens sign")
}

/// The body of a response, as JSON, after checking its status.
pub async fn json_body(response: Response, status: StatusCode) -> Value {
    let actual = response.status();
    let text = response.text().await.expect("a response body");
    assert_eq!(actual, status, "unexpected status; body: {text}");
    serde_json::from_str(&text).unwrap_or_else(|_| panic!("body is not JSON: {text}"))
}

/// Checks an error response against SPEC's error body and returns its message.
pub async fn expect_error(response: Response, status: StatusCode, code: &str) -> String {
    let body = json_body(response, status).await;
    assert_eq!(body["success"], json!(false), "{body}");
    assert_eq!(body["code"], json!(code), "{body}");
    let message = body["error"]
        .as_str()
        .unwrap_or_else(|| panic!("no error message: {body}"));
    assert!(!message.is_empty());
    assert_eq!(
        body.as_object().map(|o| o.len()),
        Some(3),
        "only the three keys: {body}"
    );
    message.to_owned()
}

/// The operator and privacy routes (`tests/tests/operations.rs`).
impl TestApp {
    /// `DELETE /api/usage`: erases every record of `user`.
    pub async fn erase(&self, user: &str) -> Response {
        send(
            self.request(reqwest::Method::DELETE, "/api/usage")
                .bearer_auth(token(user)),
        )
        .await
    }

    /// `GET /api/usage/export` with query parameters.
    pub async fn export(&self, user: &str, query: &[(&str, &str)]) -> Response {
        self.get("/api/usage/export", Some(&token(user)), query)
            .await
    }

    /// A request to build freely (headers, methods) with the app's client.
    pub fn request(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        self.client.request(method, self.url(path))
    }
}
