//! Probes for orchestrators: is the process up, and does the store answer.

use actix_web::HttpResponse;
use actix_web::web::Data;
use serde_json::json;

use crate::error::ApiError;
use crate::startup::AppState;

/// The process is up and serving HTTP.
pub async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(json!({"status": "ok"}))
}

/// The store answers; 503 `STORAGE_UNAVAILABLE` otherwise.
pub async fn readyz(state: Data<AppState>) -> Result<HttpResponse, ApiError> {
    state.service.ready().await?;
    Ok(HttpResponse::Ok().json(json!({"status": "ready"})))
}
