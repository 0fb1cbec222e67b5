//! `GET /api/usage/stats`: today, this week and this month, in the caller's time zone.

use actix_web::HttpResponse;
use actix_web::web::{Data, Query, ReqData};
use serde::{Deserialize, Serialize};
use usage_domain::{StatsQuery, UsageStats, UserId};

use crate::error::{ApiError, ErrorBody};
use crate::startup::AppState;

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(rename_all = "camelCase")]
#[into_params(parameter_in = Query, rename_all = "camelCase")]
pub struct StatsParams {
    /// IANA time zone name; `UTC` when absent.
    tz: Option<String>,
    /// `monday` (the default) or `sunday`.
    week_start: Option<String>,
}

#[derive(Serialize, utoipa::ToSchema)]
struct StatsResponse {
    success: bool,
    stats: UsageStats,
}

#[utoipa::path(
    get,
    path = "/api/usage/stats",
    tag = "usage",
    params(StatsParams),
    responses(
        (
            status = 200,
            description = "Today, this week and this month in tz, up to now",
            body = StatsResponse
        ),
        (status = 400, description = "INVALID_QUERY: a bad tz or weekStart", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
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
