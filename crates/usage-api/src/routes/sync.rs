//! `POST /api/usage/sync`: store a batch of executions, each record judged on its own.

use actix_web::HttpResponse;
use actix_web::web::{Bytes, Data, ReqData};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use tracing::{debug, info};
use usage_domain::{Batch, UserId};

use crate::error::ApiError;
use crate::startup::AppState;

/// The request body. Records stay raw JSON here so each is parsed, and rejected, on its own.
#[derive(Deserialize)]
struct SyncBody<'a> {
    #[serde(borrow)]
    executions: Vec<&'a RawValue>,
}

#[derive(Serialize)]
struct SyncResponse {
    success: bool,
    synced: u64,
    duplicates: u64,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    errors: Vec<String>,
}

pub async fn sync(
    state: Data<AppState>,
    user: ReqData<UserId>,
    body: Result<Bytes, actix_web::Error>,
) -> Result<HttpResponse, ApiError> {
    let body = body.map_err(|error| body_error(&error, state.limits.max_body_bytes))?;
    let batch = parse(&body, &state)?;
    // The body holds prompt and response text: drop it before waiting on the store.
    drop(body);

    let rejected = batch.rejected.len();
    for rejection in &batch.rejected {
        debug!(%rejection, "record rejected");
    }
    let report = state.service.store(&user, batch).await?;
    info!(
        synced = report.synced,
        duplicates = report.duplicates,
        rejected,
        "batch synced"
    );
    Ok(HttpResponse::Ok().json(SyncResponse {
        success: true,
        synced: report.synced,
        duplicates: report.duplicates,
        errors: report.rejected.iter().map(ToString::to_string).collect(),
    }))
}

fn parse(body: &[u8], state: &AppState) -> Result<Batch, ApiError> {
    let body: SyncBody<'_> = serde_json::from_slice(body).map_err(|error| {
        ApiError::InvalidBody(format!(
            "the body must be a JSON object with an \"executions\" array: {error}"
        ))
    })?;
    let limit = state.limits.max_batch_records;
    if body.executions.len() > limit {
        return Err(ApiError::BatchTooLarge {
            count: body.executions.len(),
            limit,
        });
    }
    Ok(state
        .service
        .parse_batch(body.executions.iter().map(|record| record.get())))
}

/// Reading the body failed: too large, or the connection broke off mid-body.
fn body_error(error: &actix_web::Error, limit: usize) -> ApiError {
    if error.as_response_error().status_code() == actix_web::http::StatusCode::PAYLOAD_TOO_LARGE {
        ApiError::PayloadTooLarge { limit }
    } else {
        ApiError::InvalidBody(format!("the request body could not be read: {error}"))
    }
}
