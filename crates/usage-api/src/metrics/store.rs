//! [`MeteredRepository`]: the store, with every failed operation counted.

use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use usage_domain::{
    ExportCursor, RepositoryError, StatsWindows, SummaryGroup, TimeRange, UsageRecord,
    UsageRepository, UsageStats, UserId,
};

use super::Metrics;

/// The `operation` labels of `usage_store_errors_total`: one per port method.
pub(super) const OPERATIONS: [&str; 7] = [
    "insert_new",
    "summary_groups",
    "window_totals",
    "export_page",
    "delete_user",
    "delete_older_than",
    "ping",
];
const UNAVAILABLE: &str = "unavailable";
const INTERNAL: &str = "internal";
/// The `kind` labels of `usage_store_errors_total`, one per [`RepositoryError`] variant.
pub(super) const KINDS: [&str; 2] = [UNAVAILABLE, INTERNAL];

/// Wraps the configured store so that `usage_store_errors_total` sees every failure, from
/// routes and from the purge task alike, without the adapters knowing about metrics.
#[derive(Debug)]
pub struct MeteredRepository {
    inner: Arc<dyn UsageRepository>,
    metrics: Arc<Metrics>,
}

impl MeteredRepository {
    pub fn new(inner: Arc<dyn UsageRepository>, metrics: Arc<Metrics>) -> Self {
        Self { inner, metrics }
    }

    fn count<T>(
        &self,
        operation: &'static str,
        result: Result<T, RepositoryError>,
    ) -> Result<T, RepositoryError> {
        if let Err(error) = &result {
            debug_assert!(
                OPERATIONS.contains(&operation),
                "{operation} is missing from OPERATIONS, so its series does not start at zero"
            );
            let kind = match error {
                RepositoryError::Unavailable(_) => UNAVAILABLE,
                RepositoryError::Internal(_) => INTERNAL,
            };
            self.metrics.record_store_error(operation, kind);
        }
        result
    }
}

#[async_trait]
impl UsageRepository for MeteredRepository {
    async fn insert_new(
        &self,
        user: &UserId,
        records: &[UsageRecord],
    ) -> Result<u64, RepositoryError> {
        let result = self.inner.insert_new(user, records).await;
        self.count("insert_new", result)
    }

    async fn summary_groups(
        &self,
        user: &UserId,
        range: TimeRange,
        tz: Tz,
    ) -> Result<Vec<SummaryGroup>, RepositoryError> {
        let result = self.inner.summary_groups(user, range, tz).await;
        self.count("summary_groups", result)
    }

    async fn window_totals(
        &self,
        user: &UserId,
        windows: StatsWindows,
    ) -> Result<UsageStats, RepositoryError> {
        let result = self.inner.window_totals(user, windows).await;
        self.count("window_totals", result)
    }

    async fn export_page(
        &self,
        user: &UserId,
        range: TimeRange,
        after: Option<ExportCursor>,
        limit: u32,
    ) -> Result<Vec<UsageRecord>, RepositoryError> {
        let result = self.inner.export_page(user, range, after, limit).await;
        self.count("export_page", result)
    }

    async fn delete_user(&self, user: &UserId) -> Result<u64, RepositoryError> {
        let result = self.inner.delete_user(user).await;
        self.count("delete_user", result)
    }

    async fn delete_older_than(&self, cutoff: DateTime<Utc>) -> Result<u64, RepositoryError> {
        let result = self.inner.delete_older_than(cutoff).await;
        self.count("delete_older_than", result)
    }

    async fn ping(&self) -> Result<(), RepositoryError> {
        let result = self.inner.ping().await;
        self.count("ping", result)
    }
}

#[cfg(test)]
mod tests {
    use usage_domain::MockUsageRepository;

    use super::*;

    #[tokio::test]
    async fn failures_are_counted_by_operation_and_kind_and_passed_on() {
        let mut inner = MockUsageRepository::new();
        inner
            .expect_ping()
            .returning(|| Err(RepositoryError::unavailable("down")));
        inner.expect_delete_user().returning(|_| Ok(2));
        let metrics = Arc::new(Metrics::new(None).unwrap());
        let repository = MeteredRepository::new(Arc::new(inner), metrics.clone());

        assert!(repository.ping().await.is_err());
        let user = UserId::parse("alice").unwrap();
        assert_eq!(repository.delete_user(&user).await.unwrap(), 2);

        let text = metrics.render().unwrap();
        let failed = "usage_store_errors_total{kind=\"unavailable\",operation=\"ping\"} 1";
        assert!(text.contains(failed), "{text}");
        for kind in KINDS {
            let untouched =
                format!("usage_store_errors_total{{kind=\"{kind}\",operation=\"delete_user\"}} 0");
            assert!(text.contains(&untouched), "{text}");
        }
    }
}
