//! The cache of the key server's keys, and the rules for going back to the key server.
//!
//! Tokens choose the key id, so an attacker chooses when a key is "unknown". Going to the
//! key server on every unknown id would turn a flood of made-up ids into a flood of requests
//! to the provider (which may then rate-limit us out of the keys we need). So:
//!
//! - a fetch starts at most once per `min_interval`, whatever happens in between, counting
//!   failed fetches too;
//! - concurrent misses share one fetch (single flight): the first one fetches while the
//!   others wait for it and then look again;
//! - keys older than `max_age` are refreshed in the background while the old ones keep
//!   working, so a key the provider withdrew stops working within about `max_age`;
//! - when the key server cannot be reached, keys already fetched keep working; a token whose
//!   key is not cached is then [`Rejection::KeysUnavailable`] (503), not a 401, since the
//!   client did nothing wrong.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, PoisonError, RwLock};
use std::time::Duration;

use jsonwebtoken::Algorithm;
use tokio::sync::Mutex;
use tokio::time::Instant;

use super::algorithms::AcceptedAlgorithms;
use super::jwks::FetchDocument;
use super::key_set::{KeySet, Lookup};
use super::keys::VerifyingKey;
use super::{AuthMetrics, Rejection};
use crate::error::error_chain;

/// When the key server may be asked again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RefreshPolicy {
    /// Least time between the starts of two fetches.
    pub min_interval: Duration,
    /// Age after which fetched keys are refreshed in the background.
    pub max_age: Duration,
}

/// Keys of the last successful fetch.
#[derive(Debug, Default)]
struct Snapshot {
    keys: KeySet,
    fetched_at: Option<Instant>,
    /// Grows by one at each successful fetch.
    generation: u64,
}

/// The key server's keys with the refresh rules of the module docs.
#[derive(Debug)]
pub struct KeyCache<F> {
    fetcher: F,
    accepted: AcceptedAlgorithms,
    policy: RefreshPolicy,
    current: RwLock<Arc<Snapshot>>,
    /// The start of the last fetch; held for the whole fetch, which makes it single-flight.
    last_attempt: Mutex<Option<Instant>>,
    /// The last fetch failed (and no later one succeeded).
    failing: AtomicBool,
    refreshing_in_background: AtomicBool,
    metrics: Arc<AuthMetrics>,
}

impl<F: FetchDocument> KeyCache<F> {
    /// An empty cache; the first token fetches the keys.
    pub fn new(
        fetcher: F,
        accepted: AcceptedAlgorithms,
        policy: RefreshPolicy,
        metrics: Arc<AuthMetrics>,
    ) -> Self {
        Self {
            fetcher,
            accepted,
            policy,
            current: RwLock::default(),
            last_attempt: Mutex::new(None),
            failing: AtomicBool::new(false),
            refreshing_in_background: AtomicBool::new(false),
            metrics,
        }
    }

    /// The key for a token's `kid` and `alg`, fetching the key set when it is not cached and
    /// the rules allow.
    ///
    /// # Errors
    /// [`Rejection::UnknownKey`] when the key server does not publish the key,
    /// [`Rejection::WrongAlgorithm`] when the key is not for `algorithm`, and
    /// [`Rejection::KeysUnavailable`] when no key fits and the key server could not be read.
    pub async fn key_for(
        self: &Arc<Self>,
        key_id: Option<&str>,
        algorithm: Algorithm,
    ) -> Result<Arc<VerifyingKey>, Rejection> {
        let snapshot = self.snapshot();
        match snapshot.keys.find(key_id, algorithm) {
            Lookup::Found(key) => {
                if snapshot
                    .fetched_at
                    .is_some_and(|at| at.elapsed() >= self.policy.max_age)
                {
                    self.refresh_in_background(snapshot.generation);
                }
                return Ok(key);
            }
            Lookup::WrongAlgorithm => return Err(Rejection::WrongAlgorithm),
            Lookup::Missing => {}
        }

        // The fetch runs as a task of its own: a client that hangs up must not cancel a fetch
        // that other requests wait for.
        let cache = Arc::clone(self);
        let seen_generation = snapshot.generation;
        let refresh = tokio::spawn(async move { cache.refresh(seen_generation).await });
        if let Err(error) = refresh.await {
            tracing::error!(%error, "the key fetch task ended abnormally");
        }
        let snapshot = self.snapshot();
        match snapshot.keys.find(key_id, algorithm) {
            Lookup::Found(key) => Ok(key),
            Lookup::WrongAlgorithm => Err(Rejection::WrongAlgorithm),
            Lookup::Missing if snapshot.fetched_at.is_none() => Err(Rejection::KeysUnavailable),
            Lookup::Missing if self.failing.load(Ordering::Acquire) => {
                Err(Rejection::KeysUnavailable)
            }
            Lookup::Missing => Err(Rejection::UnknownKey),
        }
    }

    /// Where the keys come from, for the log.
    pub fn source(&self) -> String {
        self.fetcher.source()
    }

    fn snapshot(&self) -> Arc<Snapshot> {
        Arc::clone(&self.current.read().unwrap_or_else(PoisonError::into_inner))
    }

    /// Fetches the key set unless a fetch ended since `seen_generation` was read, or one
    /// started less than `min_interval` ago. Waits for a fetch in progress.
    async fn refresh(&self, seen_generation: u64) {
        let mut last_attempt = self.last_attempt.lock().await;
        if self.snapshot().generation != seen_generation {
            return;
        }
        if last_attempt.is_some_and(|at| at.elapsed() < self.policy.min_interval) {
            return;
        }
        // Counted before the fetch: a fetch cut short still counts against the rate.
        *last_attempt = Some(Instant::now());
        match self.fetch().await {
            Ok(keys) => {
                let mut current = self.current.write().unwrap_or_else(PoisonError::into_inner);
                let generation = current.generation + 1;
                *current = Arc::new(Snapshot {
                    keys,
                    fetched_at: Some(Instant::now()),
                    generation,
                });
                self.failing.store(false, Ordering::Release);
            }
            Err(()) => self.failing.store(true, Ordering::Release),
        }
    }

    fn refresh_in_background(self: &Arc<Self>, seen_generation: u64) {
        if self.refreshing_in_background.swap(true, Ordering::AcqRel) {
            return;
        }
        let cache = Arc::clone(self);
        tokio::spawn(async move {
            let _running = ClearOnDrop(&cache.refreshing_in_background);
            cache.refresh(seen_generation).await;
        });
    }

    /// One fetch, logged and counted; the error is already logged.
    async fn fetch(&self) -> Result<KeySet, ()> {
        let source = self.fetcher.source();
        let outcome = match self.fetcher.fetch().await {
            Ok(document) => {
                KeySet::from_jwks(&document, &self.accepted).map_err(|error| error_chain(&error))
            }
            Err(error) => Err(error_chain(&error)),
        };
        self.metrics.record_fetch(outcome.is_ok());
        match outcome {
            Ok((keys, skipped)) => {
                for key in &skipped {
                    tracing::debug!(kid = ?key.key_id, reason = %key.reason, "skipped a JWKS key");
                }
                tracing::info!(
                    %source,
                    keys = keys.len(),
                    skipped = skipped.len(),
                    "fetched the token signing keys"
                );
                Ok(keys)
            }
            Err(error) => {
                tracing::warn!(
                    %source,
                    %error,
                    retry_after_seconds = self.policy.min_interval.as_secs(),
                    "cannot fetch the token signing keys; keys fetched before stay in use"
                );
                Err(())
            }
        }
    }
}

/// Clears its flag when dropped, so a task cancelled with its runtime does not leave the
/// background refresh marked as running forever.
struct ClearOnDrop<'a>(&'a AtomicBool);

impl Drop for ClearOnDrop<'_> {
    fn drop(&mut self) {
        self.0.store(false, Ordering::Release);
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex as StdMutex;
    use std::sync::atomic::AtomicUsize;

    use base64::Engine;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use serde_json::{Value, json};

    use super::super::jwks::FetchError;
    use super::*;

    const EC_PUBLIC_PEM: &str = include_str!("../../../../tests/fixtures/auth/ec-a.pub.pem");

    /// A key server in memory: serves `document`, or fails while it is `None`.
    #[derive(Debug, Default)]
    struct FakeServer {
        document: StdMutex<Option<Value>>,
        hits: AtomicUsize,
    }

    impl FakeServer {
        fn publish(&self, kids: &[&str]) {
            let keys: Vec<Value> = kids.iter().map(|kid| ec_jwk(kid)).collect();
            *self.document.lock().unwrap() = Some(json!({ "keys": keys }));
        }

        fn go_down(&self) {
            *self.document.lock().unwrap() = None;
        }

        fn hits(&self) -> usize {
            self.hits.load(Ordering::SeqCst)
        }
    }

    impl FetchDocument for Arc<FakeServer> {
        async fn fetch(&self) -> Result<Vec<u8>, FetchError> {
            self.hits.fetch_add(1, Ordering::SeqCst);
            // Lets concurrent callers pile up behind the fetch in progress.
            tokio::time::sleep(Duration::from_millis(50)).await;
            let document = self.document.lock().unwrap().clone();
            document
                .map(|document| document.to_string().into_bytes())
                .ok_or(FetchError::Status(503))
        }

        fn source(&self) -> String {
            "memory".into()
        }
    }

    fn ec_jwk(kid: &str) -> Value {
        use p256::elliptic_curve::sec1::ToEncodedPoint;
        use p256::pkcs8::DecodePublicKey;
        let key = p256::PublicKey::from_public_key_pem(EC_PUBLIC_PEM).unwrap();
        let point = key.to_encoded_point(false);
        json!({
            "kty": "EC", "crv": "P-256", "kid": kid,
            "x": URL_SAFE_NO_PAD.encode(point.x().unwrap()),
            "y": URL_SAFE_NO_PAD.encode(point.y().unwrap()),
        })
    }

    const MIN_INTERVAL: Duration = Duration::from_secs(10);
    const MAX_AGE: Duration = Duration::from_secs(600);

    fn cache(server: &Arc<FakeServer>) -> Arc<KeyCache<Arc<FakeServer>>> {
        let policy = RefreshPolicy {
            min_interval: MIN_INTERVAL,
            max_age: MAX_AGE,
        };
        let metrics = Arc::new(AuthMetrics::default());
        Arc::new(KeyCache::new(
            Arc::clone(server),
            AcceptedAlgorithms::default(),
            policy,
            metrics,
        ))
    }

    async fn lookup(cache: &Arc<KeyCache<Arc<FakeServer>>>, kid: &str) -> Result<(), Rejection> {
        cache.key_for(Some(kid), Algorithm::ES256).await.map(drop)
    }

    #[tokio::test(start_paused = true)]
    async fn keys_are_fetched_once_and_then_served_from_the_cache() {
        let server = Arc::new(FakeServer::default());
        server.publish(&["a"]);
        let cache = cache(&server);

        for _ in 0..5 {
            assert_eq!(lookup(&cache, "a").await, Ok(()));
        }
        assert_eq!(server.hits(), 1);
        assert_eq!(cache.metrics.key_fetches(), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn concurrent_misses_share_one_fetch_and_later_ones_wait_for_the_interval() {
        let server = Arc::new(FakeServer::default());
        server.publish(&["a"]);
        let cache = cache(&server);

        let lookups = (0..50).map(|i| {
            let cache = Arc::clone(&cache);
            tokio::spawn(async move { lookup(&cache, &format!("made-up-{i}")).await })
        });
        for outcome in futures_join(lookups).await {
            assert_eq!(outcome, Err(Rejection::UnknownKey));
        }
        assert_eq!(server.hits(), 1, "one fetch for fifty concurrent misses");

        for i in 0..50 {
            assert_eq!(
                lookup(&cache, &format!("again-{i}")).await,
                Err(Rejection::UnknownKey)
            );
        }
        assert_eq!(server.hits(), 1, "no fetch within the interval");

        server.publish(&["a", "b"]);
        tokio::time::advance(MIN_INTERVAL).await;
        assert_eq!(
            lookup(&cache, "b").await,
            Ok(()),
            "a rotated key after the interval"
        );
        assert_eq!(server.hits(), 2);
    }

    #[tokio::test(start_paused = true)]
    async fn a_key_server_down_is_unavailable_until_it_answers_again() {
        let server = Arc::new(FakeServer::default());
        let cache = cache(&server);

        assert_eq!(lookup(&cache, "a").await, Err(Rejection::KeysUnavailable));
        assert_eq!(lookup(&cache, "a").await, Err(Rejection::KeysUnavailable));
        assert_eq!(
            server.hits(),
            1,
            "a failed fetch counts against the interval"
        );
        assert_eq!(cache.metrics.key_fetch_failures(), 1);

        server.publish(&["a"]);
        tokio::time::advance(MIN_INTERVAL).await;
        assert_eq!(lookup(&cache, "a").await, Ok(()));
    }

    #[tokio::test(start_paused = true)]
    async fn cached_keys_outlive_the_key_server_and_stale_ones_are_refreshed() {
        let server = Arc::new(FakeServer::default());
        server.publish(&["a"]);
        let cache = cache(&server);
        assert_eq!(lookup(&cache, "a").await, Ok(()));

        server.go_down();
        tokio::time::advance(MAX_AGE).await;
        assert_eq!(lookup(&cache, "a").await, Ok(()), "stale keys keep working");
        settle().await;
        assert_eq!(server.hits(), 2, "a background refresh was tried");
        assert_eq!(
            lookup(&cache, "b").await,
            Err(Rejection::KeysUnavailable),
            "a key not cached while the key server is down"
        );

        server.publish(&["b"]);
        tokio::time::advance(MIN_INTERVAL).await;
        assert_eq!(
            lookup(&cache, "a").await,
            Ok(()),
            "still stale, still served"
        );
        settle().await;
        assert_eq!(server.hits(), 3);
        assert_eq!(
            lookup(&cache, "a").await,
            Err(Rejection::UnknownKey),
            "withdrawn"
        );
        assert_eq!(lookup(&cache, "b").await, Ok(()));
    }

    /// Lets spawned tasks, and the fake server's delay, run to their end.
    async fn settle() {
        tokio::time::sleep(Duration::from_secs(1)).await;
    }

    async fn futures_join<T: Send + 'static>(
        handles: impl Iterator<Item = tokio::task::JoinHandle<T>>,
    ) -> Vec<T> {
        let mut outcomes = Vec::new();
        for handle in handles.collect::<Vec<_>>() {
            outcomes.push(handle.await.unwrap());
        }
        outcomes
    }
}
