//! `POST /api/usage/sync`: store a batch of executions, each record judged on its own.

use actix_web::web::{Bytes, Data, Payload, ReqData};
use actix_web::{FromRequest, HttpRequest, HttpResponse};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use tracing::{debug, info};
use usage_domain::{Batch, UserId};

use crate::error::{ApiError, ErrorBody};
use crate::metrics::Metrics;
use crate::startup::AppState;

/// The request body. Records stay raw JSON here so each is parsed, and rejected, on its own.
#[derive(Deserialize)]
struct SyncBody<'a> {
    #[serde(borrow)]
    executions: Vec<&'a RawValue>,
}

#[derive(Serialize, utoipa::ToSchema)]
struct SyncResponse {
    success: bool,
    /// Records stored by this request.
    synced: u64,
    /// Records already stored, or repeated earlier in the batch.
    duplicates: u64,
    /// `executions[i]: reason` for each rejected record; left out when none was.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    errors: Vec<String>,
}

#[utoipa::path(
    post,
    path = "/api/usage/sync",
    tag = "usage",
    request_body(content = super::openapi::SyncRequest, description = "A batch of executions"),
    responses(
        (
            status = 200,
            description = "Every record is stored, already stored, or rejected",
            body = SyncResponse
        ),
        (
            status = 400,
            description = "INVALID_BODY: not JSON, or no executions array",
            body = ErrorBody
        ),
        (
            status = 408,
            description = "REQUEST_TIMEOUT: the body arrived too slowly",
            body = ErrorBody
        ),
        (status = 413, description = "PAYLOAD_TOO_LARGE or BATCH_TOO_LARGE", body = ErrorBody),
    ),
    security(("bearer" = []))
)]

pub async fn sync(
    state: Data<AppState>,
    user: ReqData<UserId>,
    metrics: Data<Metrics>,
    request: HttpRequest,
    payload: Payload,
) -> Result<HttpResponse, ApiError> {
    let body = read_body(&state, &request, payload).await?;
    let batch = parse(&body, &state)?;
    // The body holds prompt and response text: drop it before waiting on the store.
    drop(body);

    let rejected = batch.rejected.len();
    for rejection in &batch.rejected {
        debug!(%rejection, "record rejected");
    }
    let report = state.service.store(&user, batch).await?;
    metrics.record_sync(&report);
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
    let invalid = |detail: String| {
        ApiError::InvalidBody(format!(
            "the body must be a JSON object with an \"executions\" array{detail}"
        ))
    };
    // serde would also read a struct from a JSON array; the contract is an object.
    if body.iter().find(|byte| !byte.is_ascii_whitespace()) != Some(&b'{') {
        return Err(invalid(String::new()));
    }
    let body: SyncBody<'_> =
        serde_json::from_slice(body).map_err(|error| invalid(format!(": {error}")))?;
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

/// Reads the whole body within the size limit (`PayloadConfig`) and the body timeout.
async fn read_body(
    state: &AppState,
    request: &HttpRequest,
    payload: Payload,
) -> Result<Bytes, ApiError> {
    let limits = state.limits;
    let mut payload = payload.into_inner();
    let reading = Bytes::from_request(request, &mut payload);
    match tokio::time::timeout(limits.body_timeout, reading).await {
        Ok(body) => body.map_err(|error| body_error(&error, limits.max_body_bytes)),
        Err(_) => {
            tracing::info!("request body not received in time");
            Err(ApiError::RequestTimeout {
                seconds: limits.body_timeout.as_secs(),
            })
        }
    }
}

/// Reading the body failed: too large, or the connection broke off mid-body.
fn body_error(error: &actix_web::Error, limit: usize) -> ApiError {
    if error.as_response_error().status_code() == actix_web::http::StatusCode::PAYLOAD_TOO_LARGE {
        ApiError::PayloadTooLarge { limit }
    } else {
        ApiError::InvalidBody(format!("the request body could not be read: {error}"))
    }
}
