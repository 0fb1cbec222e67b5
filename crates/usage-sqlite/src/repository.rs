//! [`SqliteUsageRepository`]: the port implemented with SQL over a pooled connection, inserts
//! going through the group-commit [`Writer`].

use std::path::{Path, PathBuf};
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use r2d2::{Pool, PooledConnection};
use r2d2_sqlite::SqliteConnectionManager;
use rusqlite::{self, Connection, params};
use usage_domain::{
    ExportCursor, RepositoryError, StatsWindows, SummaryGroup, TimeRange, UsageRecord,
    UsageRepository, UsageStats, UserId,
};

use crate::buckets;
use crate::error::{SqliteSetupError, from_pool, from_sqlite};
use crate::schema;
use crate::writer::Writer;

/// Connections kept open: the group-commit writer holds one for good, the rest serve reads
/// (and the rare purge). SQLite serialises writers, so more mainly helps readers.
const POOL_SIZE: u32 = 9;
/// How long a request waits for a free connection before the store counts as unavailable.
const POOL_WAIT: Duration = Duration::from_secs(10);
/// Rows deleted per transaction when purging, so a large purge never blocks writers for long.
const PURGE_CHUNK: i64 = 5_000;

/// The embedded store. Cloning shares the pool and the writer thread.
#[derive(Clone)]
pub struct SqliteUsageRepository {
    pool: Pool<SqliteConnectionManager>,
    writer: Writer,
    path: PathBuf,
}

impl std::fmt::Debug for SqliteUsageRepository {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteUsageRepository")
            .field("path", &self.path)
            .finish()
    }
}

impl SqliteUsageRepository {
    /// Opens the database at `path`, creating the file, its directory and the schema if needed.
    pub fn open(path: &Path) -> Result<Self, SqliteSetupError> {
        if let Some(parent) = path
            .parent()
            .filter(|parent| !parent.as_os_str().is_empty())
        {
            std::fs::create_dir_all(parent).map_err(|source| SqliteSetupError::Directory {
                path: parent.to_owned(),
                source,
            })?;
        }
        let manager = SqliteConnectionManager::file(path).with_init(schema::configure);
        let pool = Pool::builder()
            .max_size(POOL_SIZE)
            .min_idle(Some(1))
            .connection_timeout(POOL_WAIT)
            .build(manager)
            .map_err(|source| SqliteSetupError::Open {
                path: path.to_owned(),
                source,
            })?;
        let mut connection = pool.get().map_err(|source| SqliteSetupError::Open {
            path: path.to_owned(),
            source,
        })?;
        schema::migrate(&mut connection).map_err(|source| SqliteSetupError::Schema {
            path: path.to_owned(),
            source,
        })?;
        let writer = Writer::start(connection).map_err(|source| SqliteSetupError::Writer {
            path: path.to_owned(),
            source,
        })?;
        tracing::info!(path = %path.display(), "SQLite store ready");
        Ok(Self {
            pool,
            writer,
            path: path.to_owned(),
        })
    }

    /// Runs `work` with a pooled connection on a blocking thread.
    async fn with_connection<T, F>(&self, work: F) -> Result<T, RepositoryError>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> rusqlite::Result<T> + Send + 'static,
    {
        let pool = self.pool.clone();
        tokio::task::spawn_blocking(move || {
            let mut connection: PooledConnection<_> = pool.get().map_err(from_pool)?;
            work(&mut connection).map_err(from_sqlite)
        })
        .await
        .map_err(RepositoryError::internal)?
    }
}

#[async_trait]
impl UsageRepository for SqliteUsageRepository {
    async fn insert_new(
        &self,
        user: &UserId,
        records: &[UsageRecord],
    ) -> Result<u64, RepositoryError> {
        self.writer
            .insert(user.as_str().to_owned(), records.to_vec())
            .await
    }

    async fn summary_groups(
        &self,
        user: &UserId,
        range: TimeRange,
        tz: Tz,
    ) -> Result<Vec<SummaryGroup>, RepositoryError> {
        let user = user.as_str().to_owned();
        self.with_connection(move |connection| buckets::summary(connection, &user, range, tz))
            .await
    }

    async fn window_totals(
        &self,
        user: &UserId,
        windows: StatsWindows,
    ) -> Result<UsageStats, RepositoryError> {
        let user = user.as_str().to_owned();
        self.with_connection(move |connection| buckets::stats(connection, &user, windows))
            .await
    }

    async fn export_page(
        &self,
        user: &UserId,
        range: TimeRange,
        after: Option<ExportCursor>,
        limit: u32,
    ) -> Result<Vec<UsageRecord>, RepositoryError> {
        let user = user.as_str().to_owned();
        self.with_connection(move |connection| {
            crate::privacy::export_page(connection, &user, range, after.as_ref(), limit)
        })
        .await
    }

    async fn delete_user(&self, user: &UserId) -> Result<u64, RepositoryError> {
        let user = user.as_str().to_owned();
        self.with_connection(move |connection| crate::privacy::delete_user(connection, &user))
            .await
    }

    async fn delete_older_than(&self, cutoff: DateTime<Utc>) -> Result<u64, RepositoryError> {
        self.with_connection(move |connection| purge(connection, cutoff))
            .await
    }

    async fn ping(&self) -> Result<(), RepositoryError> {
        self.writer.check()?;
        self.with_connection(|connection| connection.query_row("SELECT 1", [], |_| Ok(())))
            .await
    }
}

fn purge(connection: &Connection, cutoff: DateTime<Utc>) -> rusqlite::Result<u64> {
    let mut statement = connection.prepare_cached(
        "DELETE FROM usages WHERE rowid IN (
            SELECT rowid FROM usages WHERE timestamp_ms < ?1 LIMIT ?2
        )",
    )?;
    let mut deleted = 0;
    loop {
        let chunk = statement.execute(params![cutoff.timestamp_millis(), PURGE_CHUNK])?;
        deleted += chunk as u64;
        if (chunk as i64) < PURGE_CHUNK {
            return Ok(deleted);
        }
    }
}
