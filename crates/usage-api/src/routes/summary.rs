//! `GET /api/usage/summary`: totals, per provider and per day, over an inclusive range.

use actix_web::HttpResponse;
use actix_web::web::{Data, Query, ReqData};
use serde::{Deserialize, Serialize};
use usage_domain::{SummaryQuery, UsageSummary, UserId};

use crate::error::{ApiError, ErrorBody};
use crate::startup::AppState;

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(rename_all = "camelCase")]
#[into_params(parameter_in = Query, rename_all = "camelCase")]
pub struct SummaryParams {
    /// Inclusive start: RFC 3339 date-time, `YYYY-MM-DD` (start of that day in `tz`) or
    /// epoch milliseconds.
    start_date: Option<String>,
    /// Inclusive end, in the same forms; a plain date means the end of that day in `tz`.
    end_date: Option<String>,
    /// IANA time zone name; `UTC` when absent.
    tz: Option<String>,
}

#[derive(Serialize, utoipa::ToSchema)]
struct SummaryResponse {
    success: bool,
    summary: UsageSummary,
}

#[utoipa::path(
    get,
    path = "/api/usage/summary",
    tag = "usage",
    params(SummaryParams),
    responses(
        (
            status = 200,
            description = "Totals, per provider and per day in tz",
            body = SummaryResponse
        ),
        (
            status = 400,
            description = "INVALID_QUERY: a bad date or tz, or start after end",
            body = ErrorBody
        ),
    ),
    security(("bearer" = []))
)]
pub async fn summary(
    state: Data<AppState>,
    user: ReqData<UserId>,
    params: Query<SummaryParams>,
) -> Result<HttpResponse, ApiError> {
    let query = SummaryQuery::parse(
        params.start_date.as_deref(),
        params.end_date.as_deref(),
        params.tz.as_deref(),
    )
    .map_err(|error| ApiError::InvalidQuery(error.to_string()))?;
    let summary = state.service.summary(&user, query).await?;
    Ok(HttpResponse::Ok().json(SummaryResponse {
        success: true,
        summary,
    }))
}
