//! [`MongoUsageRepository`]: the port's methods as MongoDB commands.

use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use mongodb::bson::{self, Document, doc};
use mongodb::error::{Error as DriverError, ErrorKind};
use mongodb::options::ClientOptions;
use mongodb::{Client, Collection, Database};
use tracing::{debug, info};
use usage_domain::{
    ExportCursor, RepositoryError, Retention, StatsWindows, SummaryGroup, TimeRange, UsageRecord,
    UsageRepository, UsageStats, UserId,
};

use crate::document::{DUPLICATE_KEY, bson_date, usage_document, usage_record};
use crate::error::{MongoSetupError, repository_error, unreadable};
use crate::indexes::{self, IndexSpec, ListError};
use crate::{pipeline, privacy};

/// The collection that holds one document per stored execution.
pub const COLLECTION: &str = "usages";
/// The database used when the connection string names none.
pub const DEFAULT_DATABASE: &str = "usage";

/// How to connect, beyond what the connection string says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MongoOptions {
    /// Becomes the TTL of the `timestamp_ttl` index.
    pub retention: Retention,
    /// How long an operation waits for a usable server before it fails as unavailable. The
    /// driver's own default is 30 s, too long for a request that a client will retry anyway.
    /// A `serverSelectionTimeoutMS` in the connection string wins.
    pub server_selection_timeout: Duration,
    /// How long opening one connection may take. A `connectTimeoutMS` in the connection
    /// string wins.
    pub connect_timeout: Duration,
}

impl MongoOptions {
    pub const DEFAULT_SERVER_SELECTION_TIMEOUT: Duration = Duration::from_secs(5);
    pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

    /// The default timeouts with `retention`.
    pub fn new(retention: Retention) -> Self {
        Self {
            retention,
            server_selection_timeout: Self::DEFAULT_SERVER_SELECTION_TIMEOUT,
            connect_timeout: Self::DEFAULT_CONNECT_TIMEOUT,
        }
    }
}

impl Default for MongoOptions {
    fn default() -> Self {
        Self::new(Retention::default())
    }
}

/// The usage repository on MongoDB: the `usages` collection of one database.
///
/// Cheap to clone; clones share the driver's connection pool.
#[derive(Debug, Clone)]
pub struct MongoUsageRepository {
    database: Database,
    usages: Collection<Document>,
}

impl MongoUsageRepository {
    /// Connects with the default timeouts; see [`Self::connect_with`].
    pub async fn connect(uri: &str, retention: Retention) -> Result<Self, MongoSetupError> {
        Self::connect_with(uri, MongoOptions::new(retention)).await
    }

    /// Connects to the deployment of `uri` (`mongodb://` or `mongodb+srv://`), checks that
    /// it answers, and creates or reconciles the indexes of `usages`.
    ///
    /// # Errors
    ///
    /// [`MongoSetupError::InvalidUri`] for a connection string the driver rejects,
    /// [`MongoSetupError::Unavailable`] when no server answers within the server selection
    /// timeout, and the other variants when the server refuses a set-up step.
    pub async fn connect_with(uri: &str, options: MongoOptions) -> Result<Self, MongoSetupError> {
        let client_options = client_options(uri, &options).await?;
        let database_name = database_name(&client_options).to_owned();
        let client = Client::with_options(client_options).map_err(MongoSetupError::InvalidUri)?;
        let database = client.database(&database_name);
        let repository = Self {
            usages: database.collection(COLLECTION),
            database,
        };

        repository
            .run_ping()
            .await
            .map_err(MongoSetupError::from_driver)?;
        indexes::ensure(&repository.usages, options.retention).await?;
        info!(
            database = %database_name,
            collection = COLLECTION,
            retention_days = options.retention.as_days(),
            "MongoDB store ready"
        );
        Ok(repository)
    }

    /// The name of the database that holds `usages`.
    pub fn database_name(&self) -> &str {
        self.database.name()
    }

    /// The indexes of `usages` as the server lists them; for tests and diagnostics.
    pub async fn index_specs(&self) -> Result<Vec<IndexSpec>, RepositoryError> {
        indexes::list(&self.usages)
            .await
            .map_err(|error| match error {
                ListError::Driver(error) => repository_error(LISTING)(error),
                ListError::Unreadable(error) => unreadable(LISTING)(error),
            })
    }

    async fn run_ping(&self) -> Result<(), DriverError> {
        self.database.run_command(doc! { "ping": 1 }).await?;
        Ok(())
    }

    /// Runs `pipeline` on `usages` and collects its (small, already aggregated) output.
    async fn aggregate(
        &self,
        pipeline: Vec<Document>,
        action: &'static str,
    ) -> Result<Vec<Document>, RepositoryError> {
        let mut cursor = self
            .usages
            .aggregate(pipeline)
            .await
            .map_err(repository_error(action))?;
        let mut output = Vec::new();
        while cursor.advance().await.map_err(repository_error(action))? {
            output.push(
                cursor
                    .deserialize_current()
                    .map_err(repository_error(action))?,
            );
        }
        Ok(output)
    }
}

/// Parses `uri` with the driver and applies the adapter's timeouts where `uri` sets none.
async fn client_options(
    uri: &str,
    options: &MongoOptions,
) -> Result<ClientOptions, MongoSetupError> {
    let mut parsed = ClientOptions::parse(uri)
        .await
        .map_err(MongoSetupError::InvalidUri)?;
    parsed
        .server_selection_timeout
        .get_or_insert(options.server_selection_timeout);
    parsed
        .connect_timeout
        .get_or_insert(options.connect_timeout);
    parsed
        .app_name
        .get_or_insert_with(|| "usage-service".to_owned());
    Ok(parsed)
}

/// The database named in the connection string's path, else [`DEFAULT_DATABASE`].
fn database_name(options: &ClientOptions) -> &str {
    options
        .default_database
        .as_deref()
        .filter(|name| !name.is_empty())
        .unwrap_or(DEFAULT_DATABASE)
}

const INSERTING: &str = "inserting usage records";
const LISTING: &str = "listing the indexes of `usages`";

/// How many documents an unordered `insertMany` stored, when it failed only on duplicates.
///
/// With `ordered: false` the server tries every document, so each one is either stored or
/// named by exactly one write error. Duplicate key errors (11000) are expected: the record
/// is already stored, by an earlier request or a concurrent one. Any other write error, a
/// write concern error, or a failure that is not a bulk write failure is an error.
fn stored_despite(error: DriverError, attempted: usize) -> Result<u64, RepositoryError> {
    let ErrorKind::InsertMany(failure) = error.kind.as_ref() else {
        return Err(repository_error(INSERTING)(error));
    };
    if failure.write_concern_error.is_some() {
        return Err(repository_error(INSERTING)(error));
    }
    let write_errors = failure.write_errors.as_deref().unwrap_or_default();
    if write_errors.iter().any(|write| write.code != DUPLICATE_KEY) {
        return Err(repository_error(INSERTING)(error));
    }
    Ok(attempted.saturating_sub(write_errors.len()) as u64)
}

#[async_trait]
impl UsageRepository for MongoUsageRepository {
    async fn insert_new(
        &self,
        user: &UserId,
        records: &[UsageRecord],
    ) -> Result<u64, RepositoryError> {
        // The driver refuses an empty `insertMany`; nothing to store is not an error.
        if records.is_empty() {
            return Ok(0);
        }
        let now = bson::DateTime::now();
        let documents = records
            .iter()
            .map(|record| usage_document(user, record, now));

        let stored = match self.usages.insert_many(documents).ordered(false).await {
            Ok(result) => result.inserted_ids.len() as u64,
            Err(error) => stored_despite(error, records.len())?,
        };
        debug!(
            stored,
            duplicates = (records.len() as u64).saturating_sub(stored),
            "inserted usage records"
        );
        Ok(stored)
    }

    async fn summary_groups(
        &self,
        user: &UserId,
        range: TimeRange,
        tz: Tz,
    ) -> Result<Vec<SummaryGroup>, RepositoryError> {
        const SUMMARIZING: &str = "running the summary aggregation";
        let output = self
            .aggregate(pipeline::summary(user, range, tz), SUMMARIZING)
            .await?;
        output
            .iter()
            .map(pipeline::summary_group)
            .collect::<Result<_, _>>()
            .map_err(unreadable(SUMMARIZING))
    }

    async fn window_totals(
        &self,
        user: &UserId,
        windows: StatsWindows,
    ) -> Result<UsageStats, RepositoryError> {
        const TOTALLING: &str = "running the stats aggregation";
        let output = self
            .aggregate(pipeline::window_totals(user, windows), TOTALLING)
            .await?;
        pipeline::usage_stats(output.first()).map_err(unreadable(TOTALLING))
    }

    async fn export_page(
        &self,
        user: &UserId,
        range: TimeRange,
        after: Option<ExportCursor>,
        limit: u32,
    ) -> Result<Vec<UsageRecord>, RepositoryError> {
        const EXPORTING: &str = "reading a page of a user's records";
        let mut cursor = self
            .usages
            .find(privacy::export_filter(user, range, after.as_ref()))
            .sort(privacy::export_sort())
            .limit(i64::from(limit))
            .await
            .map_err(repository_error(EXPORTING))?;
        let mut page = Vec::new();
        while cursor
            .advance()
            .await
            .map_err(repository_error(EXPORTING))?
        {
            let document: Document = cursor
                .deserialize_current()
                .map_err(repository_error(EXPORTING))?;
            page.push(usage_record(&document).map_err(unreadable(EXPORTING))?);
        }
        Ok(page)
    }

    async fn delete_user(&self, user: &UserId) -> Result<u64, RepositoryError> {
        let result = self
            .usages
            .delete_many(privacy::user_filter(user))
            .await
            .map_err(repository_error("erasing a user's records"))?;
        debug!(deleted = result.deleted_count, "erased a user's records");
        Ok(result.deleted_count)
    }

    async fn delete_older_than(&self, cutoff: DateTime<Utc>) -> Result<u64, RepositoryError> {
        let result = self
            .usages
            .delete_many(doc! { "timestamp": { "$lt": bson_date(cutoff) } })
            .await
            .map_err(repository_error("deleting expired usage records"))?;
        debug!(deleted = result.deleted_count, %cutoff, "deleted expired usage records");
        Ok(result.deleted_count)
    }

    async fn ping(&self) -> Result<(), RepositoryError> {
        self.run_ping()
            .await
            .map_err(repository_error("pinging the database"))
    }
}

#[cfg(test)]
mod tests {
    use std::io;

    use mongodb::bson::from_document;
    use mongodb::error::InsertManyError;

    use super::*;

    async fn parsed(uri: &str) -> ClientOptions {
        client_options(uri, &MongoOptions::default()).await.unwrap()
    }

    #[tokio::test]
    async fn the_database_is_the_one_in_the_uri_path_else_usage() {
        let named = parsed("mongodb://db.example:27017/stats?directConnection=true").await;
        assert_eq!(database_name(&named), "stats");
        let unnamed = parsed("mongodb://db.example:27017/?directConnection=true").await;
        assert_eq!(database_name(&unnamed), DEFAULT_DATABASE);
        let bare = parsed("mongodb://db.example").await;
        assert_eq!(database_name(&bare), DEFAULT_DATABASE);
    }

    #[tokio::test]
    async fn timeouts_in_the_uri_win_over_the_defaults() {
        let defaults = parsed("mongodb://db.example/").await;
        assert_eq!(
            defaults.server_selection_timeout,
            Some(MongoOptions::DEFAULT_SERVER_SELECTION_TIMEOUT)
        );
        let explicit = parsed("mongodb://db.example/?serverSelectionTimeoutMS=250").await;
        assert_eq!(
            explicit.server_selection_timeout,
            Some(Duration::from_millis(250))
        );
    }

    #[tokio::test]
    async fn a_malformed_uri_is_invalid() {
        let error = client_options("postgres://nope", &MongoOptions::default())
            .await
            .unwrap_err();
        assert!(matches!(error, MongoSetupError::InvalidUri(_)));
    }

    fn bulk_failure(codes: &[i32], concern: bool) -> DriverError {
        let write_errors: Vec<_> = codes
            .iter()
            .enumerate()
            .map(|(index, code)| doc! { "index": index as i32, "code": code, "errmsg": "x" })
            .collect();
        let mut failure = doc! { "writeErrors": write_errors };
        if concern {
            failure.insert(
                "writeConcernError",
                doc! { "code": 64, "errmsg": "wtimeout" },
            );
        }
        let failure: InsertManyError = from_document(failure).unwrap();
        ErrorKind::InsertMany(failure).into()
    }

    #[test]
    fn duplicates_are_counted_as_not_stored() {
        assert_eq!(
            stored_despite(bulk_failure(&[11000, 11000], false), 5).unwrap(),
            3
        );
    }

    #[test]
    fn any_other_write_error_fails_the_whole_insert() {
        let error = stored_despite(bulk_failure(&[11000, 121], false), 5).unwrap_err();
        assert!(matches!(error, RepositoryError::Internal(_)));
    }

    #[test]
    fn a_write_concern_error_fails_the_insert_as_unavailable() {
        let error = stored_despite(bulk_failure(&[11000], true), 5).unwrap_err();
        assert!(matches!(error, RepositoryError::Unavailable(_)));
    }

    #[test]
    fn a_network_error_fails_the_insert_as_unavailable() {
        let reset = DriverError::from(io::Error::from(io::ErrorKind::ConnectionReset));
        assert!(matches!(
            stored_despite(reset, 5),
            Err(RepositoryError::Unavailable(_))
        ));
    }
}
