//! Probes for orchestrators: is the process up, and does the store answer.

use actix_web::HttpResponse;
use actix_web::web::Data;
use serde::Serialize;

use crate::error::{ApiError, ErrorBody};
use crate::startup::AppState;

/// A probe's answer.
#[derive(Serialize, utoipa::ToSchema)]
struct Probe {
    /// `ok` from `/healthz`, `ready` from `/readyz`.
    #[schema(example = "ok")]
    status: &'static str,
}

/// The process is up and serving HTTP.
#[utoipa::path(
    get,
    path = "/healthz",
    tag = "operations",
    responses((status = 200, description = "The process is up", body = Probe))
)]
pub async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(Probe { status: "ok" })
}

/// The store answers; 503 `STORAGE_UNAVAILABLE` otherwise.
#[utoipa::path(
    get,
    path = "/readyz",
    tag = "operations",
    responses(
        (status = 200, description = "The store answers", body = Probe),
        (status = 503, description = "STORAGE_UNAVAILABLE, with Retry-After", body = ErrorBody),
    )
)]
pub async fn readyz(state: Data<AppState>) -> Result<HttpResponse, ApiError> {
    state.service.ready().await?;
    Ok(HttpResponse::Ok().json(Probe { status: "ready" }))
}
