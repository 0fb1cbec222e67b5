//! `GET /api/usage/stats`: today, this week and this month, in the caller's time zone.

use actix_web::HttpResponse;
use actix_web::web::{Data, Query, ReqData};
use serde::{Deserialize, Serialize};
use usage_domain::{StatsQuery, UsageStats, UserId};

use crate::error::ApiError;
use crate::startup::AppState;

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StatsParams {
    tz: Option<String>,
    week_start: Option<String>,
}

#[derive(Serialize)]
struct StatsResponse {
    success: bool,
    stats: UsageStats,
}

pub async fn stats(
    state: Data<AppState>,
    user: ReqData<UserId>,
    params: Query<StatsParams>,
) -> Result<HttpResponse, ApiError> {
    let query = StatsQuery::parse(params.tz.as_deref(), params.week_start.as_deref())
        .map_err(|error| ApiError::InvalidQuery(error.to_string()))?;
    let stats = state.service.stats(&user, query).await?;
    Ok(HttpResponse::Ok().json(StatsResponse {
        success: true,
        stats,
    }))
}
