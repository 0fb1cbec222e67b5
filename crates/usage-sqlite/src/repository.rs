//! [`SqliteUsageRepository`]: the port implemented with SQL over a pooled connection.

use std::path::{Path, PathBuf};
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use r2d2::{Pool, PooledConnection};
use r2d2_sqlite::SqliteConnectionManager;
use rusqlite::{self, Connection, TransactionBehavior, params};
use usage_domain::{
    RepositoryError, StatsWindows, SummaryGroup, TimeRange, UsageRecord, UsageRepository,
    UsageStats, UserId, WindowTotals,
};

use crate::error::{SqliteSetupError, from_pool, from_sqlite};
use crate::local_day;
use crate::schema;

/// Connections kept open; SQLite serialises writers, so more mainly helps readers.
const POOL_SIZE: u32 = 8;
/// How long a request waits for a free connection before the store counts as unavailable.
const POOL_WAIT: Duration = Duration::from_secs(10);
/// Rows deleted per transaction when purging, so a large purge never blocks writers for long.
const PURGE_CHUNK: i64 = 5_000;

/// The embedded store. Cloning shares the pool.
#[derive(Clone)]
pub struct SqliteUsageRepository {
    pool: Pool<SqliteConnectionManager>,
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
        tracing::info!(path = %path.display(), "SQLite store ready");
        Ok(Self {
            pool,
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
        let user = user.as_str().to_owned();
        let records = records.to_vec();
        self.with_connection(move |connection| insert(connection, &user, &records))
            .await
    }

    async fn summary_groups(
        &self,
        user: &UserId,
        range: TimeRange,
        tz: Tz,
    ) -> Result<Vec<SummaryGroup>, RepositoryError> {
        let user = user.as_str().to_owned();
        self.with_connection(move |connection| summary(connection, &user, range, tz))
            .await
    }

    async fn window_totals(
        &self,
        user: &UserId,
        windows: StatsWindows,
    ) -> Result<UsageStats, RepositoryError> {
        let user = user.as_str().to_owned();
        self.with_connection(move |connection| stats(connection, &user, windows))
            .await
    }

    async fn delete_older_than(&self, cutoff: DateTime<Utc>) -> Result<u64, RepositoryError> {
        self.with_connection(move |connection| purge(connection, cutoff))
            .await
    }

    async fn ping(&self) -> Result<(), RepositoryError> {
        self.with_connection(|connection| connection.query_row("SELECT 1", [], |_| Ok(())))
            .await
    }
}

fn insert(
    connection: &mut Connection,
    user: &str,
    records: &[UsageRecord],
) -> rusqlite::Result<u64> {
    let now = Utc::now().timestamp_millis();
    // IMMEDIATE takes the write lock up front, so the busy timeout applies instead of a
    // deadlock error when two writers upgrade at once.
    let transaction = connection.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let mut inserted = 0;
    {
        let mut statement = transaction.prepare_cached(
            "INSERT INTO usages (
                user_id, execution_id, timestamp_ms, provider, model, prompt_tokens,
                completion_tokens, total_tokens, duration_ms, success, error, execution_mode,
                context, has_compiled_prompt, has_response, created_at_ms, updated_at_ms
            ) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?16)
            ON CONFLICT (user_id, execution_id) DO NOTHING",
        )?;
        for record in records {
            inserted += statement.execute(params![
                user,
                record.id.as_str(),
                record.timestamp.timestamp_millis(),
                record.provider.as_str(),
                record.model.as_str(),
                sql_int(record.tokens.prompt()),
                sql_int(record.tokens.completion()),
                sql_int(record.tokens.total()),
                record.duration_ms,
                record.success,
                record.error,
                record.execution_mode.as_str(),
                record.context,
                record.has_compiled_prompt,
                record.has_response,
                now,
            ])? as u64;
        }
    }
    transaction.commit()?;
    Ok(inserted)
}

fn summary(
    connection: &Connection,
    user: &str,
    range: TimeRange,
    tz: Tz,
) -> rusqlite::Result<Vec<SummaryGroup>> {
    let sql = format!(
        "SELECT {}(timestamp_ms, ?4) AS day, provider, model, COUNT(*), SUM(success),
                SUM(prompt_tokens), SUM(completion_tokens), SUM(total_tokens)
         FROM usages
         WHERE user_id = ?1 AND timestamp_ms BETWEEN ?2 AND ?3
         GROUP BY day, provider, model",
        local_day::FUNCTION
    );
    let mut statement = connection.prepare_cached(&sql)?;
    let range_ms = (range.start.timestamp_millis(), range.end.timestamp_millis());
    let rows = statement.query_map(params![user, range_ms.0, range_ms.1, tz.name()], |row| {
        let day: i32 = row.get(0)?;
        Ok(SummaryGroup {
            day: local_day::to_date(day).unwrap_or_default(),
            provider: row.get(1)?,
            model: row.get(2)?,
            executions: count(row.get(3)?),
            successes: count(row.get(4)?),
            prompt_tokens: count(row.get(5)?),
            completion_tokens: count(row.get(6)?),
            total_tokens: count(row.get(7)?),
        })
    })?;
    rows.collect()
}

fn stats(
    connection: &Connection,
    user: &str,
    windows: StatsWindows,
) -> rusqlite::Result<UsageStats> {
    let mut statement = connection.prepare_cached(
        "SELECT
            SUM(timestamp_ms >= ?2), SUM(IIF(timestamp_ms >= ?2, total_tokens, 0)),
            SUM(timestamp_ms >= ?2 AND NOT success),
            SUM(timestamp_ms >= ?3), SUM(IIF(timestamp_ms >= ?3, total_tokens, 0)),
            SUM(timestamp_ms >= ?3 AND NOT success),
            SUM(timestamp_ms >= ?4), SUM(IIF(timestamp_ms >= ?4, total_tokens, 0)),
            SUM(timestamp_ms >= ?4 AND NOT success)
         FROM usages
         WHERE user_id = ?1 AND timestamp_ms BETWEEN ?5 AND ?6",
    )?;
    let bounds = params![
        user,
        windows.today.timestamp_millis(),
        windows.week.timestamp_millis(),
        windows.month.timestamp_millis(),
        windows.earliest().timestamp_millis(),
        windows.end.timestamp_millis(),
    ];
    statement.query_row(bounds, |row| {
        let window = |first: usize| -> rusqlite::Result<WindowTotals> {
            Ok(WindowTotals {
                executions: count(row.get(first)?),
                tokens: count(row.get(first + 1)?),
                errors: count(row.get(first + 2)?),
            })
        };
        Ok(UsageStats {
            today: window(0)?,
            this_week: window(3)?,
            this_month: window(6)?,
        })
    })
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

/// Token counts are bounded far below `i64::MAX` by the domain.
fn sql_int(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

/// SQL sums are NULL over no rows and never negative here.
fn count(value: Option<i64>) -> u64 {
    value
        .and_then(|value| u64::try_from(value).ok())
        .unwrap_or(0)
}
