//! Ingest phases: sync requests over HTTP, and the same records straight into the store.
//!
//! Both run `concurrency` tasks that take request numbers from a shared counter until the
//! phase's request budget or its time budget is spent, so each phase ends by itself.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use chrono::Utc;
use serde::Serialize;
use usage_domain::{UsageRepository, UserId};

use crate::latency::Percentiles;
use crate::workload::{BATCH_RECORDS, BodyBuilder, batch_records};

/// When a phase stops: whichever bound is reached first.
#[derive(Debug, Clone, Copy)]
pub struct Budget {
    pub requests: u64,
    pub time: Duration,
}

/// What one phase achieved.
#[derive(Debug, Clone, Serialize)]
pub struct IngestResult {
    pub concurrency: usize,
    pub requests: u64,
    pub records: u64,
    pub seconds: f64,
    pub records_per_second: f64,
    pub latency: Percentiles,
    /// Requests that did not store all their records; a correct run has none.
    pub failures: u64,
    /// CPU the service used during the phase, in percent of one core (HTTP phases only).
    pub service_cpu_percent: Option<f64>,
    /// CPU this driver used during the phase, in percent of one core; in the store phases
    /// that includes the store itself, which runs in this process.
    pub driver_cpu_percent: Option<f64>,
}

/// Hands out request numbers until the budget is spent.
#[derive(Debug)]
struct Tickets {
    next: AtomicU64,
    first: u64,
    budget: Budget,
    started: Instant,
    /// Whether a failure was already shown; one per phase is enough to see what went wrong.
    failure_shown: AtomicBool,
}

impl Tickets {
    fn new(first: u64, budget: Budget) -> Self {
        Self {
            next: AtomicU64::new(first),
            first,
            budget,
            started: Instant::now(),
            failure_shown: AtomicBool::new(false),
        }
    }

    /// Counts a failed request in `tally`, and shows the phase's first failure.
    fn fail(&self, tally: &mut Tally, what: impl std::fmt::Display) {
        tally.failures += 1;
        if !self.failure_shown.swap(true, Ordering::Relaxed) {
            eprintln!("  a request failed (further failures are only counted): {what:#}");
        }
    }

    fn take(&self) -> Option<u64> {
        if self.started.elapsed() >= self.budget.time {
            return None;
        }
        let ticket = self.next.fetch_add(1, Ordering::Relaxed);
        (ticket < self.first + self.budget.requests).then_some(ticket)
    }
}

/// Where a sync phase sends its requests.
#[derive(Debug, Clone)]
pub struct SyncTarget {
    pub client: reqwest::Client,
    pub base_url: String,
    /// One token per user; task `i` syncs as user `i % tokens.len()`.
    pub tokens: Arc<Vec<String>>,
    pub run: String,
}

/// Per-task tallies, merged at the end of a phase.
#[derive(Debug, Default)]
struct Tally {
    latencies: Vec<Duration>,
    records: u64,
    failures: u64,
}

impl Tally {
    fn merge(mut self, other: Tally) -> Self {
        self.latencies.extend(other.latencies);
        self.records += other.records;
        self.failures += other.failures;
        self
    }

    fn into_result(self, concurrency: usize, elapsed: Duration) -> IngestResult {
        let seconds = elapsed.as_secs_f64();
        IngestResult {
            concurrency,
            requests: self.latencies.len() as u64,
            records: self.records,
            seconds,
            records_per_second: self.records as f64 / seconds.max(f64::EPSILON),
            latency: Percentiles::of(self.latencies),
            failures: self.failures,
            service_cpu_percent: None,
            driver_cpu_percent: None,
        }
    }
}

/// Syncs batches at `concurrency`, request numbers starting at `first`.
pub async fn sync_phase(
    target: &SyncTarget,
    bodies: &Arc<BodyBuilder>,
    concurrency: usize,
    first: u64,
    budget: Budget,
) -> anyhow::Result<IngestResult> {
    let tickets = Arc::new(Tickets::new(first, budget));
    let tasks: Vec<_> = (0..concurrency)
        .map(|task| {
            let (target, bodies, tickets) = (target.clone(), bodies.clone(), tickets.clone());
            tokio::spawn(async move { sync_task(&target, &bodies, &tickets, task).await })
        })
        .collect();
    let mut tally = Tally::default();
    for task in tasks {
        tally = tally.merge(task.await.context("a sync task panicked")??);
    }
    Ok(tally.into_result(concurrency, tickets.started.elapsed()))
}

async fn sync_task(
    target: &SyncTarget,
    bodies: &BodyBuilder,
    tickets: &Tickets,
    task: usize,
) -> anyhow::Result<Tally> {
    let url = format!("{}/api/usage/sync", target.base_url);
    let token = &target.tokens[task % target.tokens.len()];
    let mut tally = Tally::default();
    while let Some(ticket) = tickets.take() {
        let body = bodies.body(&target.run, ticket, Utc::now());
        let sent = Instant::now();
        let response = target
            .client
            .post(&url)
            .bearer_auth(token)
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await;
        let response = match response {
            Ok(response) => response,
            Err(error) => {
                tally.latencies.push(sent.elapsed());
                tickets.fail(&mut tally, error);
                continue;
            }
        };
        let status = response.status();
        let reply: serde_json::Value = response.json().await.unwrap_or_default();
        tally.latencies.push(sent.elapsed());
        let synced = reply["synced"].as_u64().unwrap_or(0);
        tally.records += synced;
        if !status.is_success() || synced != BATCH_RECORDS as u64 {
            tickets.fail(&mut tally, format!("{status}: {reply}"));
        }
    }
    Ok(tally)
}

/// Inserts the records of the same batches straight through the repository: the store's
/// own bound, without HTTP, JSON or authentication.
pub async fn store_phase(
    repository: &Arc<dyn UsageRepository>,
    users: &[UserId],
    run: &str,
    concurrency: usize,
    budget: Budget,
) -> anyhow::Result<IngestResult> {
    let tickets = Arc::new(Tickets::new(0, budget));
    let tasks: Vec<_> = (0..concurrency)
        .map(|task| {
            let repository = repository.clone();
            let user = users[task % users.len()].clone();
            let (tickets, run) = (tickets.clone(), run.to_owned());
            tokio::spawn(async move {
                let mut tally = Tally::default();
                while let Some(ticket) = tickets.take() {
                    let records = batch_records(&run, ticket, Utc::now());
                    let sent = Instant::now();
                    let stored = repository.insert_new(&user, &records).await;
                    tally.latencies.push(sent.elapsed());
                    match stored {
                        Ok(stored) if stored == records.len() as u64 => tally.records += stored,
                        Ok(stored) => {
                            tally.records += stored;
                            tickets.fail(&mut tally, format!("stored {stored} of 50"));
                        }
                        Err(error) => tickets.fail(&mut tally, anyhow::Error::from(error)),
                    }
                }
                anyhow::Ok(tally)
            })
        })
        .collect();
    let mut tally = Tally::default();
    for task in tasks {
        tally = tally.merge(task.await.context("a store task panicked")??);
    }
    let result = tally.into_result(concurrency, tickets.started.elapsed());
    if result.records == 0 {
        bail!("the store phase stored nothing");
    }
    Ok(result)
}
