//! Helpers of the integration tests: the server to test against, a database per test, records.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use chrono::{DateTime, NaiveDate, TimeDelta, Utc};
use mongodb::Client;
use mongodb::bson::{Document, doc};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;
use usage_domain::{
    ExecutionId, ExecutionMode, Model, Provider, Retention, TokenUsage, UsageRecord, UserId,
};
use usage_mongo::{MongoOptions, MongoUsageRepository};

/// The variable that names the server under test.
pub const URI_VARIABLE: &str = "USAGE_TEST_MONGODB_URI";

/// The connection string of the server under test. Without one the tests fail: a test suite
/// that passes without running would hide a broken adapter.
pub fn server_uri() -> String {
    match std::env::var(URI_VARIABLE) {
        Ok(uri) if !uri.trim().is_empty() => uri,
        _ => panic!(
            "{URI_VARIABLE} is not set, and these tests need a MongoDB server.\n\
             Start the mongoeco stand-in from the workspace root with\n\
             \n    eval \"$(tests/support/mongo/start.sh)\"\n\n\
             (or point {URI_VARIABLE} at a real MongoDB, e.g. \
             mongodb://127.0.0.1:27017/?directConnection=true) and run the tests again."
        ),
    }
}

/// A `mongodb://` connection string cut into the parts the tests rewrite.
#[derive(Debug, Clone)]
pub struct UriParts {
    /// `mongodb://`.
    pub scheme: String,
    /// `user:password@`, or empty.
    pub credentials: String,
    /// `host:port[,host:port...]`.
    pub hosts: String,
    /// The database of the path, possibly empty.
    pub database: String,
    /// The options after `?`, without it; possibly empty.
    pub query: String,
}

impl UriParts {
    pub fn parse(uri: &str) -> Self {
        let (scheme, rest) = uri
            .split_once("://")
            .map(|(scheme, rest)| (format!("{scheme}://"), rest))
            .unwrap_or_else(|| panic!("{URI_VARIABLE} is not a MongoDB connection string"));
        let (before_query, query) = rest.split_once('?').unwrap_or((rest, ""));
        let (authority, database) = before_query.split_once('/').unwrap_or((before_query, ""));
        let (credentials, hosts) = match authority.rsplit_once('@') {
            Some((credentials, hosts)) => (format!("{credentials}@"), hosts),
            None => (String::new(), authority),
        };
        Self {
            scheme,
            credentials,
            hosts: hosts.to_owned(),
            database: database.to_owned(),
            query: query.to_owned(),
        }
    }

    /// The connection string with `database` in the path and `extra` options, which replace
    /// options of the same name.
    ///
    /// With credentials and no `authSource`, the driver authenticates against the path's
    /// database; the original one is kept as `authSource` so that swapping it is harmless.
    pub fn with_database(&self, database: &str, extra: &[&str]) -> String {
        let mut options: Vec<String> = self
            .query
            .split('&')
            .filter(|option| !option.is_empty())
            .map(str::to_owned)
            .collect();
        let has_auth_source = options
            .iter()
            .any(|option| option.to_ascii_lowercase().starts_with("authsource="));
        if !self.credentials.is_empty() && !has_auth_source {
            let source = if self.database.is_empty() {
                "admin"
            } else {
                &self.database
            };
            options.push(format!("authSource={source}"));
        }
        for option in extra {
            let key = option
                .split('=')
                .next()
                .unwrap_or_default()
                .to_ascii_lowercase();
            options.retain(|kept| !kept.to_ascii_lowercase().starts_with(&format!("{key}=")));
            options.push((*option).to_owned());
        }
        format!(
            "{}{}{}/{}?{}",
            self.scheme,
            self.credentials,
            self.hosts,
            database,
            options.join("&")
        )
    }
}

/// A database of its own for one test, dropped by [`TestDatabase::drop`].
#[derive(Debug)]
pub struct TestDatabase {
    pub name: String,
    pub uri: String,
}

impl TestDatabase {
    /// A fresh database name for `test` with a random suffix, within MongoDB's 64 bytes.
    pub fn new(test: &str) -> Self {
        let prefix: String = test.chars().take(40).collect();
        let name = format!("usage_t_{prefix}_{:08x}", rand::random::<u32>());
        let uri = UriParts::parse(&server_uri()).with_database(&name, &[]);
        Self { name, uri }
    }

    pub async fn connect(&self) -> MongoUsageRepository {
        self.connect_with(Retention::default()).await
    }

    pub async fn connect_with(&self, retention: Retention) -> MongoUsageRepository {
        show_logs();
        MongoUsageRepository::connect(&self.uri, retention)
            .await
            .unwrap_or_else(|error| panic!("cannot connect to {}: {error:?}", self.name))
    }

    /// The `usages` collection, through a client of its own, to look behind the adapter.
    pub async fn usages(&self) -> mongodb::Collection<Document> {
        let client = Client::with_uri_str(&self.uri).await.unwrap();
        client.database(&self.name).collection("usages")
    }

    /// Drops the database; a failing test leaves it behind, which only costs memory.
    pub async fn drop(self) {
        let client = Client::with_uri_str(&self.uri).await.unwrap();
        client.database(&self.name).drop().await.unwrap();
    }
}

/// Sends the adapter's logs to the test's captured output, shown when a test fails.
pub fn show_logs() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter("usage_mongo=debug")
        .with_test_writer()
        .try_init();
}

/// Options with tiny timeouts, for tests that expect the server to be gone.
pub fn impatient(retention: Retention) -> MongoOptions {
    MongoOptions {
        server_selection_timeout: std::time::Duration::from_millis(300),
        connect_timeout: std::time::Duration::from_millis(300),
        ..MongoOptions::new(retention)
    }
}

pub fn user(name: &str) -> UserId {
    UserId::parse(name).unwrap()
}

/// A successful execution of `openai`/`gpt-4o` with 10 + 5 tokens.
pub fn record(id: &str, at: DateTime<Utc>) -> UsageRecord {
    UsageRecord {
        id: ExecutionId::parse(id).unwrap(),
        timestamp: at,
        provider: Provider::parse("openai").unwrap(),
        model: Model::parse("gpt-4o").unwrap(),
        tokens: TokenUsage::new(10, 5, 0),
        duration_ms: 250.0,
        success: true,
        error: None,
        execution_mode: ExecutionMode::Local,
        context: None,
        has_compiled_prompt: true,
        has_response: true,
    }
}

/// `record` with other figures.
pub fn record_of(
    id: &str,
    at: DateTime<Utc>,
    provider: &str,
    model: &str,
    (prompt, completion, total): (u64, u64, u64),
    success: bool,
) -> UsageRecord {
    UsageRecord {
        provider: Provider::parse(provider).unwrap(),
        model: Model::parse(model).unwrap(),
        tokens: TokenUsage::new(prompt, completion, total),
        success,
        ..record(id, at)
    }
}

/// `count` records with ids `{prefix}-0`, `{prefix}-1`, ..., a second apart from `from`.
pub fn records(prefix: &str, count: usize, from: DateTime<Utc>) -> Vec<UsageRecord> {
    (0..count)
        .map(|n| {
            record(
                &format!("{prefix}-{n}"),
                from + TimeDelta::seconds(n as i64),
            )
        })
        .collect()
}

/// A calendar day a few days back: recent enough that a real server's TTL monitor keeps its
/// records under the default retention, whatever day the tests run.
pub fn recent_day() -> NaiveDate {
    Utc::now().date_naive() - TimeDelta::days(3)
}

pub fn at(day: NaiveDate, hour: u32, minute: u32) -> DateTime<Utc> {
    day.and_hms_opt(hour, minute, 0).unwrap().and_utc()
}

pub fn ms(millis: i64) -> TimeDelta {
    TimeDelta::milliseconds(millis)
}

pub async fn count(usages: &mongodb::Collection<Document>, filter: Document) -> u64 {
    usages.count_documents(filter).await.unwrap()
}

pub fn all() -> Document {
    doc! {}
}

/// A TCP forwarder in front of the server, which a test can cut to make the server vanish.
#[derive(Debug)]
pub struct Forwarder {
    pub port: u16,
    acceptor: JoinHandle<()>,
    connections: Arc<Mutex<Vec<JoinHandle<()>>>>,
}

impl Forwarder {
    /// Forwards connections on a free local port to the first host of the server's URI.
    pub async fn start() -> Self {
        let target = first_host_address().await;
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let connections = Arc::new(Mutex::new(Vec::new()));
        let tracked = Arc::clone(&connections);
        let acceptor = tokio::spawn(async move {
            while let Ok((mut inbound, _)) = listener.accept().await {
                let pipe = tokio::spawn(async move {
                    if let Ok(mut outbound) = TcpStream::connect(target).await {
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                    }
                });
                tracked.lock().unwrap().push(pipe);
            }
        });
        Self {
            port,
            acceptor,
            connections,
        }
    }

    /// A connection string to `database` through this forwarder, talking to it alone.
    pub fn uri(&self, database: &str) -> String {
        let parts = UriParts {
            hosts: format!("127.0.0.1:{}", self.port),
            ..UriParts::parse(&server_uri())
        };
        parts.with_database(database, &["directConnection=true"])
    }

    /// Closes the listening port and every forwarded connection.
    pub fn cut(&self) {
        self.acceptor.abort();
        for connection in self.connections.lock().unwrap().drain(..) {
            connection.abort();
        }
    }
}

async fn first_host_address() -> SocketAddr {
    let parts = UriParts::parse(&server_uri());
    assert_eq!(
        parts.scheme, "mongodb://",
        "this test forwards TCP, so {URI_VARIABLE} must be a mongodb:// URI"
    );
    let host = parts.hosts.split(',').next().unwrap();
    let host = if host.contains(':') {
        host.to_owned()
    } else {
        format!("{host}:27017")
    };
    tokio::net::lookup_host(host)
        .await
        .unwrap()
        .next()
        .expect("the server's host resolves")
}
