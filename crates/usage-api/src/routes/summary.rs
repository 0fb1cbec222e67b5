//! `GET /api/usage/summary`: totals, per provider and per day, over an inclusive range.

use actix_web::HttpResponse;
use actix_web::web::{Data, Query, ReqData};
use serde::{Deserialize, Serialize};
use usage_domain::{SummaryQuery, UsageSummary, UserId};

use crate::error::ApiError;
use crate::startup::AppState;

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SummaryParams {
    start_date: Option<String>,
    end_date: Option<String>,
    tz: Option<String>,
}

#[derive(Serialize)]
struct SummaryResponse {
    success: bool,
    summary: UsageSummary,
}

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
