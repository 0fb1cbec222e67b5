//! `usage-bench`: the load driver of the usage service (see the README's "Benchmarks").
//!
//! It runs the real `usage-service` binary on a loopback port and measures, in order:
//! sync ingest at several concurrencies ([`ingest`]), the store's own insert bound through
//! the adapter, and dashboard latency over one heavy user's history at growing sizes
//! ([`queries`]). It prints a table and writes the figures as JSON ([`report`]).

mod ingest;
mod latency;
mod queries;
mod report;
mod service;
mod workload;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use chrono::Utc;
use clap::Parser;
use usage_api::startup::{StoreUrl, open_store};
use usage_domain::{Retention, UsageRepository, UserId};

use crate::ingest::{Budget, SyncTarget};
use crate::queries::{Dashboard, QueryBudget};
use crate::report::Report;
use crate::service::{RunningService, ServiceConfig};
use crate::workload::BodyBuilder;

/// Measure ingest throughput, query latency and memory of the usage service.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Cli {
    /// The `usage-service` binary; by default the one beside this binary (the same build).
    #[arg(long)]
    service_bin: Option<PathBuf>,
    /// The store the service (and the direct-insert phases) use: a `mongodb://` URI of a
    /// throwaway database. By default each phase gets a fresh SQLite file.
    #[arg(long)]
    database_url: Option<String>,
    /// Concurrent sync requests of each ingest phase.
    #[arg(long, value_delimiter = ',', default_values_t = [1, 8, 64])]
    concurrency: Vec<usize>,
    /// History sizes of the heavy user, loaded one after the other.
    #[arg(long, value_delimiter = ',', default_values_t = [10_000, 100_000, 1_000_000])]
    sizes: Vec<u64>,
    /// Time bound of each ingest phase, in seconds.
    #[arg(long, default_value_t = 8)]
    phase_seconds: u64,
    /// Request bound of each ingest phase.
    #[arg(long, default_value_t = 8_000)]
    phase_requests: u64,
    /// Time bound of each kind of dashboard request at each size, in seconds.
    #[arg(long, default_value_t = 10)]
    query_seconds: u64,
    /// Request bound of each kind of dashboard request at each size.
    #[arg(long, default_value_t = 50)]
    query_samples: usize,
    /// HTTP worker threads of the service (`USAGE_WORKERS`); its default when left out.
    #[arg(long)]
    workers: Option<usize>,
    /// Where the JSON results go.
    #[arg(long, default_value = "target/usage-bench/results.json")]
    out: PathBuf,
    /// Directory for the temporary databases; it should be on a real disk, since every
    /// acknowledged sync waits for an fsync.
    #[arg(long)]
    scratch_dir: Option<PathBuf>,
    /// Tiny sizes and short phases: checks the driver works, measures nothing.
    #[arg(long)]
    quick: bool,
    /// The phases to run; all by default.
    #[arg(long, value_delimiter = ',', default_values_t = Phase::ALL)]
    phases: Vec<Phase>,
}

/// The parts of a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Phase {
    /// Sync requests over HTTP at each concurrency.
    Ingest,
    /// The same batches inserted straight through the adapter.
    Store,
    /// Dashboard requests over a heavy user's history at each size.
    Queries,
}

impl Phase {
    const ALL: [Self; 3] = [Self::Ingest, Self::Store, Self::Queries];
}

impl std::fmt::Display for Phase {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let name = match self {
            Self::Ingest => "ingest",
            Self::Store => "store",
            Self::Queries => "queries",
        };
        f.write_str(name)
    }
}

impl Cli {
    fn apply_quick(&mut self) {
        if self.quick {
            self.sizes = vec![1_000, 5_000];
            self.phase_seconds = 1;
            self.phase_requests = 100;
            self.query_seconds = 1;
            self.query_samples = 5;
        }
    }

    fn service_binary(&self) -> anyhow::Result<PathBuf> {
        if let Some(binary) = &self.service_bin {
            return Ok(binary.clone());
        }
        let me = std::env::current_exe().context("while locating this binary")?;
        let binary = me.with_file_name("usage-service");
        if !binary.exists() {
            bail!(
                "{} not found; build it first (cargo build --release --bin usage-service) or \
                 pass --service-bin",
                binary.display()
            );
        }
        Ok(binary)
    }

    /// The store URL of a phase: the given MongoDB URI, or a new SQLite file in `scratch`.
    fn store_url(&self, scratch: &Path, phase: &str) -> String {
        self.database_url.clone().unwrap_or_else(|| {
            format!(
                "sqlite://{}",
                scratch.join(format!("{phase}.sqlite3")).display()
            )
        })
    }
}

fn main() -> anyhow::Result<()> {
    let mut cli = Cli::parse();
    cli.apply_quick();
    // One thread drives the load, so the service keeps the rest of the machine.
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("while starting the async runtime")?
        .block_on(run(cli))
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    let started = Instant::now();
    let started_at = Utc::now();
    let load_before = report::load_average();
    let scratch = match &cli.scratch_dir {
        Some(dir) => tempfile::Builder::new()
            .prefix("usage-bench-")
            .tempdir_in(dir),
        None => tempfile::Builder::new().prefix("usage-bench-").tempdir(),
    }
    .context("while creating the scratch directory")?;
    let run = format!("r{}", started_at.timestamp_millis());
    let config = |phase: &str| ServiceConfig {
        binary: PathBuf::new(),
        database_url: cli.store_url(scratch.path(), phase),
        scratch: scratch.path().to_owned(),
        workers: cli.workers,
    };
    let binary = cli.service_binary()?;
    let ingest_config = ServiceConfig {
        binary: binary.clone(),
        ..config("ingest")
    };
    let query_config = ServiceConfig {
        binary,
        ..config("queries")
    };

    let (mut ingest, mut store_bound, mut queries) = (Vec::new(), Vec::new(), Vec::new());
    let (mut ingest_peak, mut query_peak) = (0.0, 0.0);
    if cli.phases.contains(&Phase::Ingest) {
        eprintln!("ingest over HTTP ...");
        (ingest, ingest_peak) = ingest_phases(&cli, &ingest_config, &run).await?;
    }
    if cli.phases.contains(&Phase::Store) {
        eprintln!("ingest straight into the store ...");
        store_bound = store_phases(&cli, &config("store").database_url, &run).await?;
    }
    if cli.phases.contains(&Phase::Queries) {
        eprintln!("dashboard queries ...");
        (queries, query_peak) = query_phases(&cli, &query_config, &run).await?;
    }

    let (commit, dirty) = report::git_commit();
    let mut report = Report {
        started_at,
        commit,
        dirty,
        cores: std::thread::available_parallelism().map_or(1, |n| n.get()),
        load_average: [load_before, report::load_average()],
        store: if cli.database_url.is_some() {
            "mongodb"
        } else {
            "sqlite"
        }
        .to_owned(),
        records_per_request: workload::BATCH_RECORDS,
        ingest,
        store_bound,
        queries,
        peak_rss_mb: ingest_peak.max(query_peak),
        total_seconds: started.elapsed().as_secs_f64(),
        targets: Vec::new(),
    };
    report.check_targets();
    println!("{}", report.table());
    report.write_json(&cli.out)?;
    eprintln!("results written to {}", cli.out.display());
    Ok(())
}

fn http_client() -> anyhow::Result<reqwest::Client> {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(120))
        .build()
        .context("while building the HTTP client")
}

/// Sync phases at each concurrency against one service; returns them and its peak memory.
async fn ingest_phases(
    cli: &Cli,
    config: &ServiceConfig,
    run: &str,
) -> anyhow::Result<(Vec<ingest::IngestResult>, f64)> {
    let users = cli.concurrency.iter().copied().max().unwrap_or(1);
    let tokens = (0..users)
        .map(|user| config.token(&format!("{run}-user{user}")))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let service = config.start("ingest").await?;
    let target = SyncTarget {
        client: http_client()?,
        base_url: service.base_url(),
        tokens: Arc::new(tokens),
        run: run.to_owned(),
    };
    let bodies = Arc::new(BodyBuilder::new());
    let budget = Budget {
        requests: cli.phase_requests,
        time: Duration::from_secs(cli.phase_seconds),
    };
    // Warm up connections, caches and the database file; not reported.
    let warm_up = Budget {
        requests: 20,
        time: budget.time,
    };
    let mut next = warm_up.requests;
    ingest::sync_phase(&target, &bodies, 4, 0, warm_up).await?;

    let mut results = Vec::new();
    for &concurrency in &cli.concurrency {
        let before = (service.cpu_time()?, service::cpu_time("self")?);
        let mut result = ingest::sync_phase(&target, &bodies, concurrency, next, budget).await?;
        let percent = |used: Duration| Some(100.0 * used.as_secs_f64() / result.seconds);
        result.service_cpu_percent = percent(service.cpu_time()? - before.0);
        result.driver_cpu_percent = percent(service::cpu_time("self")? - before.1);
        next += budget.requests;
        eprintln!(
            "  concurrency {concurrency}: {:.0} records/s",
            result.records_per_second
        );
        results.push(result);
    }
    let peak = stop(service).await?;
    Ok((results, peak))
}

/// The same batches inserted through the adapter in this process, at each concurrency.
async fn store_phases(
    cli: &Cli,
    database_url: &str,
    run: &str,
) -> anyhow::Result<Vec<ingest::IngestResult>> {
    let repository = open(database_url).await?;
    let users = (0..cli.concurrency.iter().copied().max().unwrap_or(1))
        .map(|user| UserId::parse(&format!("{run}-store{user}")))
        .collect::<Result<Vec<_>, _>>()?;
    let budget = Budget {
        requests: cli.phase_requests,
        time: Duration::from_secs(cli.phase_seconds),
    };
    let mut results = Vec::new();
    for (phase, &concurrency) in cli.concurrency.iter().enumerate() {
        let phase_run = format!("{run}-store-{phase}");
        let before = service::cpu_time("self")?;
        let mut result =
            ingest::store_phase(&repository, &users, &phase_run, concurrency, budget).await?;
        let used = service::cpu_time("self")? - before;
        result.driver_cpu_percent = Some(100.0 * used.as_secs_f64() / result.seconds);
        eprintln!(
            "  concurrency {concurrency}: {:.0} records/s",
            result.records_per_second
        );
        results.push(result);
    }
    Ok(results)
}

/// Loads the heavy user's history size by size and times the dashboards at each.
async fn query_phases(
    cli: &Cli,
    config: &ServiceConfig,
    run: &str,
) -> anyhow::Result<(Vec<queries::SizeResult>, f64)> {
    let user_name = format!("{run}-heavy");
    let user = UserId::parse(&user_name)?;
    let token = config.token(&user_name)?;
    // The store is opened before the service, so the service sees a ready schema.
    let repository = open(&config.database_url).await?;
    let service = config.start("queries").await?;
    let dashboard = Dashboard {
        client: http_client()?,
        base_url: service.base_url(),
        token,
    };
    let budget = QueryBudget {
        samples: cli.query_samples,
        time: Duration::from_secs(cli.query_seconds),
    };
    let mut sizes = cli.sizes.clone();
    sizes.sort_unstable();
    let now = Utc::now();
    let (mut loaded, mut results) = (0, Vec::new());
    for size in sizes {
        let load = queries::load(&repository, &user, loaded, size, now).await?;
        loaded = size;
        let result = dashboard.measure(size, load, budget).await?;
        if result.summary_total != size {
            eprintln!(
                "  warning: the summary counted {} of {size}",
                result.summary_total
            );
        }
        eprintln!(
            "  {size} records: summary p50 {:.1} ms, stats p50 {:.1} ms",
            result.summary_all.p50_ms, result.stats_berlin.p50_ms
        );
        results.push(result);
    }
    let peak = stop(service).await?;
    Ok((results, peak))
}

async fn open(database_url: &str) -> anyhow::Result<Arc<dyn UsageRepository>> {
    let url = StoreUrl::parse(database_url)?;
    open_store(&url, Retention::default())
        .await
        .context("while opening the store for direct inserts")
}

/// Stops the service and returns its peak memory.
async fn stop(service: RunningService) -> anyhow::Result<f64> {
    let peak = service.peak_rss_mb()?;
    let status = service.stop().await?;
    if !status.success() {
        bail!("the service exited with {status} after SIGTERM");
    }
    Ok(peak)
}
