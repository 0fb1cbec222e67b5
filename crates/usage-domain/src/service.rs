//! The use cases the routes call: sync a batch, read the summary and stats, export or erase a
//! user's records, purge expired ones.

use std::sync::Arc;

use chrono::{DateTime, NaiveDate, TimeDelta, Utc};
use tracing::{debug, instrument};

use crate::batch::{Batch, RejectedRecord};
use crate::clock::Clock;
use crate::export::ExportPages;
use crate::incoming::Acceptance;
use crate::query::{StatsQuery, SummaryQuery};
use crate::repository::{RepositoryError, UsageRepository};
use crate::stats::{StatsWindows, UsageStats};
use crate::summary::UsageSummary;
use crate::user::UserId;
use crate::window::{TimeRange, end_of_day};

/// How long records are kept, counted from each execution's own timestamp.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retention {
    days: u32,
}

impl Retention {
    pub const DEFAULT_DAYS: u32 = 90;
    /// About 68 years: the longest TTL a MongoDB index can hold (a 32-bit count of seconds).
    pub const MAX_DAYS: u32 = 24_855;

    /// `None` unless `days` is between 1 and [`Self::MAX_DAYS`].
    pub fn days(days: u32) -> Option<Self> {
        (1..=Self::MAX_DAYS)
            .contains(&days)
            .then_some(Self { days })
    }

    pub fn as_days(self) -> u32 {
        self.days
    }

    /// The oldest timestamp still kept at `now`.
    pub fn oldest_kept(self, now: DateTime<Utc>) -> DateTime<Utc> {
        now - TimeDelta::days(self.days.into())
    }
}

impl Default for Retention {
    fn default() -> Self {
        Self {
            days: Self::DEFAULT_DAYS,
        }
    }
}

/// What a sync did with each record of the batch.
#[derive(Debug, Default, PartialEq)]
pub struct SyncReport {
    /// Records stored by this request.
    pub synced: u64,
    /// Records already stored, or repeated earlier in the batch.
    pub duplicates: u64,
    pub rejected: Vec<RejectedRecord>,
}

/// A use case failed for a reason the caller cannot fix by changing the request.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    /// A read failed.
    #[error(transparent)]
    Storage(#[from] RepositoryError),
    /// A batch was not (wholly) stored. Whatever the cause, a retry is safe and may succeed,
    /// because inserts are deduplicated: callers should answer "retry later".
    #[error("the batch was not stored")]
    NotStored(#[source] RepositoryError),
}

/// The usage service: domain rules in front of a [`UsageRepository`].
#[derive(Debug, Clone)]
pub struct UsageService {
    repository: Arc<dyn UsageRepository>,
    clock: Arc<dyn Clock>,
    retention: Retention,
}

impl UsageService {
    pub fn new(
        repository: Arc<dyn UsageRepository>,
        clock: Arc<dyn Clock>,
        retention: Retention,
    ) -> Self {
        Self {
            repository,
            clock,
            retention,
        }
    }

    pub fn retention(&self) -> Retention {
        self.retention
    }

    pub(crate) fn repository(&self) -> &dyn UsageRepository {
        self.repository.as_ref()
    }

    /// Reads every record of a batch on its own, against the current time and retention.
    pub fn parse_batch<'a>(&self, texts: impl IntoIterator<Item = &'a str>) -> Batch {
        let now = self.clock.now();
        let acceptance = Acceptance {
            now,
            oldest: self.retention.oldest_kept(now),
            retention_days: self.retention.as_days(),
        };
        Batch::parse(texts, acceptance)
    }

    /// Stores a parsed batch for `user`; repeats of stored ids are counted, not stored.
    #[instrument(skip_all, fields(user = %user, records = batch.records.len()))]
    pub async fn store(&self, user: &UserId, batch: Batch) -> Result<SyncReport, ServiceError> {
        let valid = batch.records.len() as u64;
        let synced = if batch.records.is_empty() {
            0
        } else {
            self.repository
                .insert_new(user, &batch.records)
                .await
                .map_err(ServiceError::NotStored)?
        };
        let report = SyncReport {
            synced,
            duplicates: batch.repeated + valid.saturating_sub(synced),
            rejected: batch.rejected,
        };
        debug!(
            synced = report.synced,
            duplicates = report.duplicates,
            rejected = report.rejected.len(),
            "batch stored"
        );
        Ok(report)
    }

    /// The summary of `user`'s records in the query's range, never older than retention.
    #[instrument(skip_all, fields(user = %user, tz = %query.tz))]
    pub async fn summary(
        &self,
        user: &UserId,
        query: SummaryQuery,
    ) -> Result<UsageSummary, ServiceError> {
        let Some(range) = self.kept_range(&query) else {
            return Ok(UsageSummary::default());
        };
        let groups = self
            .repository
            .summary_groups(user, range, query.tz)
            .await?;
        Ok(UsageSummary::from_groups(groups))
    }

    /// `user`'s records in the query's range, never older than retention, as pages of at most
    /// `page_size` records in ascending `(timestamp, id)` order. Nothing is read until the
    /// first [`ExportPages::next_page`].
    pub fn export(&self, user: &UserId, query: SummaryQuery, page_size: u32) -> ExportPages {
        let range = self.kept_range(&query);
        ExportPages::new(self.clone(), user.clone(), range, page_size)
    }

    /// Erases every record of `user` (the right to erasure) and returns how many there were.
    #[instrument(skip_all, fields(user = %user))]
    pub async fn erase(&self, user: &UserId) -> Result<u64, ServiceError> {
        let deleted = self.repository.delete_user(user).await?;
        debug!(deleted, "user's records erased");
        Ok(deleted)
    }

    /// The query's inclusive range, its start clamped to retention; `None` when empty.
    fn kept_range(&self, query: &SummaryQuery) -> Option<TimeRange> {
        let oldest = self.retention.oldest_kept(self.clock.now());
        let start = query.start.map_or(oldest, |start| start.max(oldest));
        let end = query.end.unwrap_or_else(far_future);
        (start <= end).then_some(TimeRange { start, end })
    }

    /// Today, this week and this month in the query's time zone, up to now.
    #[instrument(skip_all, fields(user = %user, tz = %query.tz))]
    pub async fn stats(
        &self,
        user: &UserId,
        query: StatsQuery,
    ) -> Result<UsageStats, ServiceError> {
        let now = self.clock.now();
        let windows = StatsWindows::at(now, query.tz, query.week_start)
            .clamped_to(self.retention.oldest_kept(now));
        Ok(self.repository.window_totals(user, windows).await?)
    }

    /// Deletes every record that has left the retention period.
    pub async fn purge_expired(&self) -> Result<u64, ServiceError> {
        let cutoff = self.retention.oldest_kept(self.clock.now());
        Ok(self.repository.delete_older_than(cutoff).await?)
    }

    /// Succeeds when the store answers.
    pub async fn ready(&self) -> Result<(), ServiceError> {
        Ok(self.repository.ping().await?)
    }
}

/// An end bound later than any timestamp a record can carry.
fn far_future() -> DateTime<Utc> {
    let last_day = NaiveDate::from_ymd_opt(9999, 12, 30).unwrap_or(NaiveDate::MAX);
    end_of_day(last_day, chrono_tz::UTC)
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;
    use mockall::predicate::{always, eq};

    use super::*;
    use crate::clock::ManualClock;
    use crate::query::WeekStart;
    use crate::repository::MockUsageRepository;
    use crate::stats::WindowTotals;

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 12, 3, 12, 0, 0).unwrap()
    }

    fn service(repository: MockUsageRepository) -> UsageService {
        UsageService::new(
            Arc::new(repository),
            Arc::new(ManualClock::new(now())),
            Retention::default(),
        )
    }

    fn user() -> UserId {
        UserId::parse("alice").unwrap()
    }

    const BATCH: [&str; 4] = [
        r#"{"id": "a", "provider": "p", "model": "m"}"#,
        r#"{"id": "b", "provider": "p", "model": "m"}"#,
        r#"{"id": "a", "provider": "p", "model": "m"}"#,
        r#"{"id": "c", "provider": "", "model": "m"}"#,
    ];

    #[tokio::test]
    async fn duplicates_count_repeats_and_records_already_stored() {
        let mut repository = MockUsageRepository::new();
        repository
            .expect_insert_new()
            .withf(|user, records| user.as_str() == "alice" && records.len() == 2)
            .times(1)
            .returning(|_, _| Ok(1));
        let service = service(repository);

        let report = service
            .store(&user(), service.parse_batch(BATCH))
            .await
            .unwrap();

        assert_eq!((report.synced, report.duplicates), (1, 2));
        assert_eq!(report.rejected.len(), 1);
        assert_eq!(
            report.rejected[0].to_string(),
            "executions[3]: provider is required"
        );
    }

    #[tokio::test]
    async fn a_batch_without_valid_records_does_not_touch_the_store() {
        let service = service(MockUsageRepository::new());
        let report = service
            .store(&user(), service.parse_batch([BATCH[3]]))
            .await
            .unwrap();
        assert_eq!(
            (report.synced, report.duplicates, report.rejected.len()),
            (0, 0, 1)
        );
    }

    #[tokio::test]
    async fn a_store_failure_becomes_a_storage_error() {
        let mut repository = MockUsageRepository::new();
        repository
            .expect_insert_new()
            .returning(|_, _| Err(RepositoryError::unavailable("connection refused")));
        let service = service(repository);

        let error = service
            .store(&user(), service.parse_batch(BATCH))
            .await
            .unwrap_err();

        assert!(matches!(
            error,
            ServiceError::NotStored(RepositoryError::Unavailable(_))
        ));
    }

    #[tokio::test]
    async fn summary_never_reaches_past_retention() {
        let oldest = now() - TimeDelta::days(90);
        let mut repository = MockUsageRepository::new();
        repository
            .expect_summary_groups()
            .withf(move |_, range, _| range.start == oldest && range.end > now())
            .times(1)
            .returning(|_, _, _| Ok(vec![]));
        let query = SummaryQuery::parse(Some("2000-01-01"), None, None).unwrap();

        let summary = service(repository).summary(&user(), query).await.unwrap();

        assert_eq!(summary, UsageSummary::default());
    }

    #[tokio::test]
    async fn a_range_wholly_before_retention_is_empty_without_a_query() {
        let query = SummaryQuery::parse(Some("2000-01-01"), Some("2000-01-02"), None).unwrap();
        let summary = service(MockUsageRepository::new())
            .summary(&user(), query)
            .await
            .unwrap();
        assert_eq!(summary.total_executions, 0);
    }

    #[tokio::test]
    async fn stats_ask_for_the_windows_at_the_clock_time() {
        let expected = StatsWindows::at(now(), chrono_tz::Asia::Tokyo, WeekStart::Sunday);
        let totals = WindowTotals {
            executions: 3,
            tokens: 30,
            errors: 1,
        };
        let mut repository = MockUsageRepository::new();
        repository
            .expect_window_totals()
            .with(always(), eq(expected))
            .times(1)
            .returning(move |_, _| {
                Ok(UsageStats {
                    today: totals,
                    this_week: totals,
                    this_month: totals,
                })
            });
        let query = StatsQuery::parse(Some("Asia/Tokyo"), Some("sunday")).unwrap();

        let stats = service(repository).stats(&user(), query).await.unwrap();

        assert_eq!(stats.this_week, totals);
    }

    #[tokio::test]
    async fn purge_deletes_before_the_retention_edge() {
        let mut repository = MockUsageRepository::new();
        repository
            .expect_delete_older_than()
            .with(eq(now() - TimeDelta::days(90)))
            .times(1)
            .returning(|_| Ok(7));
        assert_eq!(service(repository).purge_expired().await.unwrap(), 7);
    }

    #[tokio::test]
    async fn an_export_pages_from_the_retention_edge_until_a_short_page() {
        let oldest = now() - TimeDelta::days(90);
        let at = now() - TimeDelta::hours(1);
        let page = |ids: &[&str]| -> Vec<crate::UsageRecord> {
            let texts: Vec<String> = ids
                .iter()
                .map(|id| format!(r#"{{"id": "{id}", "provider": "p", "model": "m"}}"#))
                .collect();
            let mut batch =
                service(MockUsageRepository::new()).parse_batch(texts.iter().map(String::as_str));
            for record in &mut batch.records {
                record.timestamp = at;
            }
            batch.records
        };
        let (first, second) = (page(&["a", "b"]), page(&["c"]));
        let mut repository = MockUsageRepository::new();
        let mut sequence = mockall::Sequence::new();
        repository
            .expect_export_page()
            .withf(move |_, range, after, limit| {
                range.start == oldest && after.is_none() && *limit == 2
            })
            .times(1)
            .in_sequence(&mut sequence)
            .return_once(move |_, _, _, _| Ok(first));
        repository
            .expect_export_page()
            .withf(|_, _, after, _| after.as_ref().map(|a| a.id.as_str()) == Some("b"))
            .times(1)
            .in_sequence(&mut sequence)
            .return_once(move |_, _, _, _| Ok(second));
        let query = SummaryQuery::parse(Some("2000-01-01"), None, None).unwrap();
        let mut pages = service(repository).export(&user(), query, 2);

        assert_eq!(pages.next_page().await.unwrap().map(|p| p.len()), Some(2));
        assert_eq!(pages.next_page().await.unwrap().map(|p| p.len()), Some(1));
        assert!(
            pages.next_page().await.unwrap().is_none(),
            "a short page ends it"
        );
    }

    #[tokio::test]
    async fn an_export_wholly_before_retention_reads_nothing() {
        let query = SummaryQuery::parse(Some("2000-01-01"), Some("2000-01-02"), None).unwrap();
        let mut pages = service(MockUsageRepository::new()).export(&user(), query, 10);
        assert!(pages.next_page().await.unwrap().is_none());
    }

    #[tokio::test]
    async fn erase_deletes_only_the_callers_records() {
        let mut repository = MockUsageRepository::new();
        repository
            .expect_delete_user()
            .withf(|user| user.as_str() == "alice")
            .times(1)
            .returning(|_| Ok(4));
        assert_eq!(service(repository).erase(&user()).await.unwrap(), 4);
    }

    #[test]
    fn retention_must_be_at_least_a_day() {
        assert_eq!(Retention::days(0), None);
        assert_eq!(Retention::days(Retention::MAX_DAYS + 1), None);
        assert_eq!(Retention::days(30).map(Retention::as_days), Some(30));
    }
}
