//! `DELETE /api/usage`: the right to erasure. Every record of the caller goes, at once.

use actix_web::HttpResponse;
use actix_web::web::{Data, ReqData};
use serde::Serialize;
use tracing::info;
use usage_domain::UserId;

use crate::error::{ApiError, ErrorBody};
use crate::metrics::Metrics;
use crate::startup::AppState;

#[derive(Serialize, utoipa::ToSchema)]
struct EraseResponse {
    success: bool,
    /// How many records were erased; 0 when the caller had none.
    deleted: u64,
}

#[utoipa::path(
    delete,
    path = "/api/usage",
    tag = "usage",
    responses(
        (status = 200, description = "Every record of the caller is erased", body = EraseResponse),
        (status = 401, description = "NO_TOKEN, INVALID_TOKEN or TOKEN_EXPIRED", body = ErrorBody),
        (status = 429, description = "RATE_LIMITED, when rate limiting is on", body = ErrorBody),
        (
            status = 503,
            description = "STORAGE_UNAVAILABLE or AUTH_UNAVAILABLE, with Retry-After",
            body = ErrorBody
        ),
        (status = 500, description = "INTERNAL", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn erase(
    state: Data<AppState>,
    user: ReqData<UserId>,
    metrics: Data<Metrics>,
) -> Result<HttpResponse, ApiError> {
    let deleted = state.service.erase(&user).await?;
    metrics.record_erased(deleted);
    info!(deleted, "user's records erased at their request");
    Ok(HttpResponse::Ok().json(EraseResponse {
        success: true,
        deleted,
    }))
}
