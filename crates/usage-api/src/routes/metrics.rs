//! `GET /metrics`: every metric in the Prometheus text format, for a scraper.
//!
//! It needs no token, like the probes: operators keep it off the public internet (serve
//! `/api/usage` through a proxy that does not forward `/metrics`, or firewall it).

use actix_web::HttpResponse;
use actix_web::web::Data;

use crate::error::{ApiError, ErrorBody, error_chain};
use crate::metrics::{CONTENT_TYPE, Metrics};

#[utoipa::path(
    get,
    path = "/metrics",
    tag = "operations",
    responses(
        (
            status = 200,
            description = "Every metric in the Prometheus text format",
            body = String,
            content_type = "text/plain"
        ),
        (status = 500, description = "INTERNAL", body = ErrorBody),
    )
)]
pub async fn metrics(metrics: Data<Metrics>) -> Result<HttpResponse, ApiError> {
    let text = metrics.render().map_err(|error| {
        tracing::error!(error = %error_chain(&error), "metrics cannot be rendered");
        ApiError::Internal
    })?;
    Ok(HttpResponse::Ok().content_type(CONTENT_TYPE).body(text))
}
