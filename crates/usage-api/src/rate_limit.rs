//! Per-user rate limiting of the usage routes, off unless `rate_limit_per_minute` is set.
//!
//! The middleware runs after authentication, so it is keyed by the verified user id: one
//! user cannot spend another's budget, and a flood of bad tokens is refused by the auth
//! middleware before it costs a limiter entry. Each user has a bucket of
//! `rate_limit_per_minute` requests that refills evenly over a minute (GCRA, `governor`).
//!
//! # Limitations
//!
//! Limits are per process: behind several replicas each one counts on its own.

use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{HeaderValue, RETRY_AFTER};
use actix_web::middleware::Next;
use actix_web::{HttpMessage, web};
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota};
use usage_domain::UserId;

use crate::error::ApiError;

/// Checks between two sweeps of users whose buckets are full again, which bounds memory
/// by the users active within about a minute.
const SWEEP_EVERY: u64 = 4_096;

/// The limiter of a running app; `None` inside when rate limiting is off.
#[derive(Debug)]
pub struct RateLimit(Option<UserLimiter>);

/// One bucket per user.
pub struct UserLimiter {
    limiter: DefaultKeyedRateLimiter<UserId>,
    clock: DefaultClock,
    checks: AtomicU64,
}

impl std::fmt::Debug for UserLimiter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UserLimiter").finish_non_exhaustive()
    }
}

impl RateLimit {
    /// `per_minute` requests per user and minute; 0 turns limiting off.
    pub fn per_minute(per_minute: u32) -> Self {
        Self(NonZeroU32::new(per_minute).map(|per_minute| {
            let clock = DefaultClock::default();
            UserLimiter {
                limiter: DefaultKeyedRateLimiter::dashmap_with_clock(
                    Quota::per_minute(per_minute),
                    clock.clone(),
                ),
                clock,
                checks: AtomicU64::new(0),
            }
        }))
    }

    /// `Err` with how long to wait when `user` has no request left.
    pub fn check(&self, user: &UserId) -> Result<(), Duration> {
        let Some(limiter) = &self.0 else {
            return Ok(());
        };
        if limiter.checks.fetch_add(1, Ordering::Relaxed) % SWEEP_EVERY == SWEEP_EVERY - 1 {
            limiter.limiter.retain_recent();
            limiter.limiter.shrink_to_fit();
        }
        limiter
            .limiter
            .check_key(user)
            .map_err(|not_until| not_until.wait_time_from(limiter.clock.now()))
    }
}

/// Answers 429 `RATE_LIMITED`, with the seconds to wait in `Retry-After`, once the
/// authenticated user has spent their budget. Must run inside the auth middleware.
pub async fn limit(
    request: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let limits = request.app_data::<web::Data<RateLimit>>().cloned();
    let user = request.extensions().get::<UserId>().cloned();
    let (Some(limits), Some(user)) = (limits, user) else {
        return Ok(next.call(request).await?.map_into_left_body());
    };
    match limits.check(&user) {
        Ok(()) => Ok(next.call(request).await?.map_into_left_body()),
        Err(wait) => {
            tracing::info!(wait_ms = wait.as_millis() as u64, "request rate limited");
            let mut refusal = request.error_response(ApiError::RateLimited);
            let seconds = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
            refusal
                .headers_mut()
                .insert(RETRY_AFTER, HeaderValue::from(seconds.max(1)));
            Ok(refusal.map_into_right_body())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_user_has_a_budget_of_their_own() {
        let limits = RateLimit::per_minute(2);
        let (alice, bob) = (
            UserId::parse("alice").unwrap(),
            UserId::parse("bob").unwrap(),
        );
        assert!(limits.check(&alice).is_ok());
        assert!(limits.check(&alice).is_ok());
        let wait = limits.check(&alice).unwrap_err();
        assert!(
            wait > Duration::from_secs(20) && wait <= Duration::from_secs(30),
            "{wait:?}"
        );
        assert!(limits.check(&bob).is_ok(), "bob is not limited by alice");
    }

    #[test]
    fn zero_turns_limiting_off() {
        let limits = RateLimit::per_minute(0);
        let alice = UserId::parse("alice").unwrap();
        assert!((0..1_000).all(|_| limits.check(&alice).is_ok()));
    }
}
