//! `DELETE /api/usage`: the right to erasure. Every record of the caller goes, at once.

use actix_web::HttpResponse;
use actix_web::web::{Data, ReqData};
use serde::Serialize;
use tracing::info;
use usage_domain::UserId;

use crate::error::ApiError;
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
