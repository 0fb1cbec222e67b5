//! Counting and timing every request, labelled by its route pattern, never its path.

use std::sync::Arc;
use std::time::Instant;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::middleware::Next;

use super::Metrics;

/// The route label of a request that matched no route: paths are unbounded, so never a label.
pub const UNMATCHED: &str = "unmatched";

/// Times the rest of the chain and counts its answer by method, route and status.
pub async fn track(
    metrics: Arc<Metrics>,
    request: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let started = Instant::now();
    let method = request.method().clone();
    let route = request
        .match_pattern()
        .unwrap_or_else(|| UNMATCHED.to_owned());
    let outcome = next.call(request).await;
    let status = match &outcome {
        Ok(response) => response.status(),
        Err(error) => error.as_response_error().status_code(),
    };
    metrics.observe_request(
        method.as_str(),
        &route,
        status.as_u16(),
        started.elapsed().as_secs_f64(),
    );
    outcome
}
