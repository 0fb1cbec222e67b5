//! The storage port. Adapters (embedded SQLite, MongoDB) implement it; the domain only sees it.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use chrono_tz::Tz;

use crate::export::ExportCursor;
use crate::record::UsageRecord;
use crate::stats::{StatsWindows, UsageStats};
use crate::summary::SummaryGroup;
use crate::user::UserId;
use crate::window::TimeRange;

type Source = Box<dyn std::error::Error + Send + Sync>;

/// A storage failure. Neither variant means that any record was partly stored: a retry of
/// the same records is always safe, because inserts are deduplicated.
#[derive(Debug, thiserror::Error)]
pub enum RepositoryError {
    /// The store cannot be reached or cannot take writes right now; retrying later may work.
    #[error("the store is unavailable")]
    Unavailable(#[source] Source),
    /// The store answered with something the adapter does not understand.
    #[error("the store failed")]
    Internal(#[source] Source),
}

impl RepositoryError {
    pub fn unavailable(source: impl Into<Source>) -> Self {
        Self::Unavailable(source.into())
    }

    pub fn internal(source: impl Into<Source>) -> Self {
        Self::Internal(source.into())
    }
}

/// Durable storage of usage records, partitioned by user.
///
/// Contract, held by the shared suite in `tests/` for every adapter:
/// - records are unique per `(user, execution id)`; one user's ids never affect another's;
/// - every method only sees the given user's records;
/// - ranges and windows are inclusive at both ends, at millisecond precision;
/// - a failure is an `Err`, never a silently partial result.
#[cfg_attr(any(test, feature = "mock"), mockall::automock)]
#[async_trait]
pub trait UsageRepository: Send + Sync + std::fmt::Debug {
    /// Stores the records that are not stored yet for `user` and returns how many it stored.
    ///
    /// The ids within `records` are distinct. A record whose id is already stored for `user`
    /// is skipped, not updated and not an error, also when another request stores it at the
    /// same moment. On `Err`, some records may be stored; storing them again is a no-op.
    async fn insert_new(
        &self,
        user: &UserId,
        records: &[UsageRecord],
    ) -> Result<u64, RepositoryError>;

    /// Groups `user`'s records with a timestamp in `range` by (day in `tz`, provider, model).
    async fn summary_groups(
        &self,
        user: &UserId,
        range: TimeRange,
        tz: Tz,
    ) -> Result<Vec<SummaryGroup>, RepositoryError>;

    /// Totals of `user`'s records in each window, all three computed in one query.
    async fn window_totals(
        &self,
        user: &UserId,
        windows: StatsWindows,
    ) -> Result<UsageStats, RepositoryError>;

    /// Up to `limit` of `user`'s records with a timestamp in `range`, in ascending order of
    /// `(timestamp, execution id)`, ids compared by their UTF-8 bytes.
    ///
    /// With `after`, only records strictly after that position are returned, so a caller
    /// pages through a large export with bounded memory by passing the position of the last
    /// record of the previous page ([`ExportCursor::after`]). Fewer than `limit` records
    /// (possibly none) means there are no more. Records stored or deleted between pages may
    /// or may not appear; no record appears twice.
    async fn export_page(
        &self,
        user: &UserId,
        range: TimeRange,
        after: Option<ExportCursor>,
        limit: u32,
    ) -> Result<Vec<UsageRecord>, RepositoryError>;

    /// Deletes every record of `user`, whatever its timestamp, and returns how many; 0 for a
    /// user with no records. Other users' records are untouched. Deleted ids may be stored
    /// again later, as new records.
    async fn delete_user(&self, user: &UserId) -> Result<u64, RepositoryError>;

    /// Deletes every user's records with a timestamp before `cutoff`; returns how many.
    async fn delete_older_than(&self, cutoff: DateTime<Utc>) -> Result<u64, RepositoryError>;

    /// Succeeds when the store answers.
    async fn ping(&self) -> Result<(), RepositoryError>;
}
