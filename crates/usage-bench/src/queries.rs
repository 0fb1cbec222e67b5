//! Query phases: one heavy user's history loaded at growing sizes, dashboards timed at each.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use chrono::{DateTime, Days, TimeDelta, Utc};
use serde::Serialize;
use usage_domain::{UsageRecord, UsageRepository, UserId};

use crate::latency::Percentiles;
use crate::workload::history;

/// Records per `insert_new` call while loading; one transaction each on SQLite.
const LOAD_CHUNK: usize = 5_000;
/// Requests sent before timing starts, so caches are warm as they are in service.
const WARM_UP: usize = 2;
/// How far back the history reaches: the default retention, less an hour of margin so no
/// record expires during the run.
pub const HISTORY_SPAN: TimeDelta = TimeDelta::hours(90 * 24 - 1);

/// How many requests of each kind to time at each size.
#[derive(Debug, Clone, Copy)]
pub struct QueryBudget {
    pub samples: usize,
    pub time: Duration,
}

/// How long loading took and what each dashboard request took at one size.
#[derive(Debug, Clone, Serialize)]
pub struct SizeResult {
    pub records: u64,
    pub load_seconds: f64,
    pub load_records_per_second: f64,
    pub summary_all: Percentiles,
    pub summary_7d_berlin: Percentiles,
    pub stats_berlin: Percentiles,
    /// `totalExecutions` of the whole-range summary: must equal `records`.
    pub summary_total: u64,
}

/// Adds records `from..to` of the heavy user's history through the repository.
pub async fn load(
    repository: &Arc<dyn UsageRepository>,
    user: &UserId,
    from: u64,
    to: u64,
    now: DateTime<Utc>,
) -> anyhow::Result<Duration> {
    let started = Instant::now();
    let mut records = history(from, to - from, now, HISTORY_SPAN).peekable();
    while records.peek().is_some() {
        let chunk: Vec<UsageRecord> = records.by_ref().take(LOAD_CHUNK).collect();
        let stored = repository
            .insert_new(user, &chunk)
            .await
            .context("while loading the history")?;
        if stored != chunk.len() as u64 {
            bail!("loading stored {stored} of {} new records", chunk.len());
        }
    }
    Ok(started.elapsed())
}

/// The dashboard requests, with the user's token.
#[derive(Debug, Clone)]
pub struct Dashboard {
    pub client: reqwest::Client,
    pub base_url: String,
    pub token: String,
}

impl Dashboard {
    /// Times the three dashboard requests against whatever the user has stored now.
    pub async fn measure(
        &self,
        records: u64,
        load: Duration,
        budget: QueryBudget,
    ) -> anyhow::Result<SizeResult> {
        let today = Utc::now()
            .with_timezone(&chrono_tz::Europe::Berlin)
            .date_naive();
        let week_ago = today.checked_sub_days(Days::new(6)).unwrap_or(today);
        let last_week =
            format!("/api/usage/summary?startDate={week_ago}&endDate={today}&tz=Europe/Berlin");
        let whole = "/api/usage/summary";
        let summary_total = self.get(whole).await?["summary"]["totalExecutions"]
            .as_u64()
            .unwrap_or(0);
        Ok(SizeResult {
            records,
            load_seconds: load.as_secs_f64(),
            load_records_per_second: records as f64 / load.as_secs_f64().max(f64::EPSILON),
            summary_all: self.time(whole, budget).await?,
            summary_7d_berlin: self.time(&last_week, budget).await?,
            stats_berlin: self
                .time("/api/usage/stats?tz=Europe/Berlin", budget)
                .await?,
            summary_total,
        })
    }

    async fn time(&self, path: &str, budget: QueryBudget) -> anyhow::Result<Percentiles> {
        for _ in 0..WARM_UP {
            self.get(path).await?;
        }
        let started = Instant::now();
        let mut samples = Vec::with_capacity(budget.samples);
        while samples.len() < budget.samples && started.elapsed() < budget.time {
            let sent = Instant::now();
            self.get(path).await?;
            samples.push(sent.elapsed());
        }
        Ok(Percentiles::of(samples))
    }

    async fn get(&self, path: &str) -> anyhow::Result<serde_json::Value> {
        let response = self
            .client
            .get(format!("{}{path}", self.base_url))
            .bearer_auth(&self.token)
            .send()
            .await
            .with_context(|| format!("GET {path} failed"))?;
        let status = response.status();
        let body: serde_json::Value = response.json().await.unwrap_or_default();
        if !status.is_success() {
            bail!("GET {path} answered {status}: {body}");
        }
        Ok(body)
    }
}
