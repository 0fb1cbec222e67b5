//! Counters of authentication outcomes, so an operator can tell an attack (a flood of
//! `unknown_key` or `bad_signature`) from a misconfiguration (every token `wrong_audience`)
//! or a key server in trouble (`keys_unavailable`, failed key fetches).

use std::sync::atomic::{AtomicU64, Ordering};

use super::Rejection;

/// Counts since the process started. Cheap to update from any worker; read by a metrics
/// route or a test. Counters only ever grow.
#[derive(Debug, Default)]
pub struct AuthMetrics {
    accepted: AtomicU64,
    rejected: [AtomicU64; Rejection::ALL.len()],
    key_fetches: AtomicU64,
    key_fetch_failures: AtomicU64,
}

impl AuthMetrics {
    /// Requests whose token was verified.
    pub fn accepted(&self) -> u64 {
        self.accepted.load(Ordering::Relaxed)
    }

    /// Requests refused for `reason`.
    pub fn rejected(&self, reason: Rejection) -> u64 {
        self.rejected[reason.index()].load(Ordering::Relaxed)
    }

    /// Every reason's label with its count, in the order of [`Rejection::ALL`].
    pub fn rejections(&self) -> impl Iterator<Item = (&'static str, u64)> + '_ {
        Rejection::ALL
            .into_iter()
            .map(|reason| (reason.reason(), self.rejected(reason)))
    }

    /// Successful fetches of the JWKS document.
    pub fn key_fetches(&self) -> u64 {
        self.key_fetches.load(Ordering::Relaxed)
    }

    /// Fetches of the JWKS document that failed (unreachable, bad status, unusable document).
    pub fn key_fetch_failures(&self) -> u64 {
        self.key_fetch_failures.load(Ordering::Relaxed)
    }

    pub(crate) fn record_accepted(&self) {
        self.accepted.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn record_rejected(&self, reason: Rejection) {
        self.rejected[reason.index()].fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn record_fetch(&self, succeeded: bool) {
        let counter = if succeeded {
            &self.key_fetches
        } else {
            &self.key_fetch_failures
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_outcome_has_its_own_counter() {
        let metrics = AuthMetrics::default();
        metrics.record_accepted();
        metrics.record_rejected(Rejection::UnknownKey);
        metrics.record_rejected(Rejection::UnknownKey);
        metrics.record_fetch(true);
        metrics.record_fetch(false);
        metrics.record_fetch(false);

        assert_eq!(metrics.accepted(), 1);
        assert_eq!(metrics.rejected(Rejection::UnknownKey), 2);
        assert_eq!(metrics.rejected(Rejection::Expired), 0);
        assert_eq!(metrics.key_fetches(), 1);
        assert_eq!(metrics.key_fetch_failures(), 2);
        let total: u64 = metrics.rejections().map(|(_, count)| count).sum();
        assert_eq!(total, 2);
        assert!(
            metrics
                .rejections()
                .any(|entry| entry == ("unknown_key", 2))
        );
    }
}
