//! Prometheus metrics, served as text by `GET /metrics`.
//!
//! [`Metrics`] owns one registry per application (so tests can run several apps in one
//! process); [`middleware::track`] counts and times every request; [`store::MeteredRepository`]
//! counts store failures by operation; the sync and privacy routes count records. The auth
//! counters live in [`AuthMetrics`], kept by the authenticator, and are copied in at scrape
//! time. Labels are low-cardinality by design: route patterns, never paths or user ids.

pub mod middleware;
pub mod store;

use std::sync::{Arc, Mutex};

use prometheus::{
    Encoder, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, Opts, Registry, TextEncoder,
};
use usage_domain::{RecordError, SyncReport};

use crate::auth::AuthMetrics;

/// Latency buckets in seconds: from a cached summary to a multi-megabyte batch on a busy store.
const LATENCY_BUCKETS: [f64; 12] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0,
];

/// Every metric the service exports, and the registry that renders them.
pub struct Metrics {
    registry: Registry,
    http_requests: IntCounterVec,
    http_duration: HistogramVec,
    records_stored: IntCounter,
    records_duplicate: IntCounter,
    records_rejected: IntCounterVec,
    records_erased: IntCounter,
    store_errors: IntCounterVec,
    auth: Option<AuthMirror>,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

/// Counters that copy the authenticator's own counts when scraped.
struct AuthMirror {
    source: Arc<AuthMetrics>,
    accepted: IntCounter,
    rejected: IntCounterVec,
    key_fetches: IntCounterVec,
    /// Scrapes may run concurrently; each copy must see the counters it raises alone.
    copying: Mutex<()>,
}

impl Metrics {
    /// Registers every metric; `auth` is the authenticator's counters, when there is one.
    ///
    /// # Errors
    ///
    /// Only if two metrics were given the same name, which is a programming error.
    pub fn new(auth: Option<Arc<AuthMetrics>>) -> Result<Self, prometheus::Error> {
        let registry = Registry::new();
        let http_requests = IntCounterVec::new(
            Opts::new("usage_http_requests_total", "HTTP requests answered"),
            &["method", "route", "status"],
        )?;
        let http_duration = HistogramVec::new(
            HistogramOpts::new(
                "usage_http_request_duration_seconds",
                "Time from a request's head to its response head",
            )
            .buckets(LATENCY_BUCKETS.to_vec()),
            &["method", "route", "status"],
        )?;
        let records_stored = IntCounter::new(
            "usage_records_stored_total",
            "Records newly stored by syncs",
        )?;
        let records_duplicate = IntCounter::new(
            "usage_records_duplicate_total",
            "Records of syncs that were already stored or repeated within their batch",
        )?;
        let records_rejected = IntCounterVec::new(
            Opts::new(
                "usage_records_rejected_total",
                "Records of syncs rejected as invalid, by reason",
            ),
            &["reason"],
        )?;
        let records_erased = IntCounter::new(
            "usage_records_erased_total",
            "Records erased at their owner's request",
        )?;
        let store_errors = IntCounterVec::new(
            Opts::new(
                "usage_store_errors_total",
                "Failed store operations, by operation and kind (unavailable or internal)",
            ),
            &["operation", "kind"],
        )?;
        for reason in RecordError::KINDS {
            records_rejected.with_label_values(&[reason]);
        }
        // Zeros from the start, so the first failure is an increase a rate() can see.
        for operation in store::OPERATIONS {
            for kind in store::KINDS {
                store_errors.with_label_values(&[operation, kind]);
            }
        }
        registry.register(Box::new(http_requests.clone()))?;
        registry.register(Box::new(http_duration.clone()))?;
        registry.register(Box::new(records_stored.clone()))?;
        registry.register(Box::new(records_duplicate.clone()))?;
        registry.register(Box::new(records_rejected.clone()))?;
        registry.register(Box::new(records_erased.clone()))?;
        registry.register(Box::new(store_errors.clone()))?;
        let auth = auth
            .map(|source| AuthMirror::register(source, &registry))
            .transpose()?;
        Ok(Self {
            registry,
            http_requests,
            http_duration,
            records_stored,
            records_duplicate,
            records_rejected,
            records_erased,
            store_errors,
            auth,
        })
    }

    /// Counts one answered request and its latency.
    pub fn observe_request(&self, method: &str, route: &str, status: u16, seconds: f64) {
        let status = status.to_string();
        let labels = [method, route, status.as_str()];
        self.http_requests.with_label_values(&labels).inc();
        self.http_duration
            .with_label_values(&labels)
            .observe(seconds);
    }

    /// Counts what a sync did with its records.
    pub fn record_sync(&self, report: &SyncReport) {
        self.records_stored.inc_by(report.synced);
        self.records_duplicate.inc_by(report.duplicates);
        for rejection in &report.rejected {
            self.records_rejected
                .with_label_values(&[rejection.error.kind()])
                .inc();
        }
    }

    /// Counts records erased by `DELETE /api/usage`.
    pub fn record_erased(&self, count: u64) {
        self.records_erased.inc_by(count);
    }

    /// Counts a failed store operation.
    pub fn record_store_error(&self, operation: &'static str, kind: &'static str) {
        self.store_errors
            .with_label_values(&[operation, kind])
            .inc();
    }

    /// Every metric in the Prometheus text format (version 0.0.4).
    pub fn render(&self) -> Result<String, prometheus::Error> {
        if let Some(auth) = &self.auth {
            auth.copy();
        }
        let mut text = Vec::new();
        TextEncoder::new().encode(&self.registry.gather(), &mut text)?;
        String::from_utf8(text).map_err(|error| prometheus::Error::Msg(error.to_string()))
    }
}

/// The content type of [`Metrics::render`]'s output.
pub const CONTENT_TYPE: &str = prometheus::TEXT_FORMAT;

impl AuthMirror {
    fn register(source: Arc<AuthMetrics>, registry: &Registry) -> Result<Self, prometheus::Error> {
        let accepted = IntCounter::new(
            "usage_auth_accepted_total",
            "Requests whose bearer token was verified",
        )?;
        let rejected = IntCounterVec::new(
            Opts::new(
                "usage_auth_rejections_total",
                "Requests refused by authentication, by reason",
            ),
            &["reason"],
        )?;
        let key_fetches = IntCounterVec::new(
            Opts::new(
                "usage_auth_key_fetches_total",
                "Fetches of the JWKS document, by outcome (ok or failed)",
            ),
            &["outcome"],
        )?;
        registry.register(Box::new(accepted.clone()))?;
        registry.register(Box::new(rejected.clone()))?;
        registry.register(Box::new(key_fetches.clone()))?;
        Ok(Self {
            source,
            accepted,
            rejected,
            key_fetches,
            copying: Mutex::new(()),
        })
    }

    /// Raises each mirror counter to the authenticator's count (they only ever grow).
    fn copy(&self) {
        let _one_at_a_time = self
            .copying
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        raise(&self.accepted, self.source.accepted());
        for (reason, count) in self.source.rejections() {
            raise(&self.rejected.with_label_values(&[reason]), count);
        }
        let fetches = [
            ("ok", self.source.key_fetches()),
            ("failed", self.source.key_fetch_failures()),
        ];
        for (outcome, count) in fetches {
            raise(&self.key_fetches.with_label_values(&[outcome]), count);
        }
    }
}

fn raise(counter: &IntCounter, to: u64) {
    counter.inc_by(to.saturating_sub(counter.get()));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rendered_text_names_every_family_with_zeros_for_rejections_and_store_errors() {
        let metrics = Metrics::new(Some(Arc::default())).unwrap();
        metrics.observe_request("GET", "/healthz", 200, 0.003);
        metrics.record_store_error("insert_new", "unavailable");
        let text = metrics.render().unwrap();
        for family in [
            "usage_http_requests_total{method=\"GET\",route=\"/healthz\",status=\"200\"} 1",
            "usage_http_request_duration_seconds_bucket",
            "usage_records_stored_total 0",
            "usage_records_rejected_total{reason=\"too_old\"} 0",
            "usage_store_errors_total{kind=\"unavailable\",operation=\"insert_new\"} 1",
            "usage_store_errors_total{kind=\"internal\",operation=\"delete_older_than\"} 0",
            "usage_auth_accepted_total 0",
        ] {
            assert!(text.contains(family), "missing {family} in:\n{text}");
        }
    }
}
