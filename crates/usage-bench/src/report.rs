//! The run's results: a table for people, JSON for machines, and the targets checked.

use std::path::Path;

use anyhow::Context;
use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::ingest::IngestResult;
use crate::queries::SizeResult;

/// Targets of issue 6, on a 2-core machine with the driver on the same machine.
const INGEST_TARGET: f64 = 50_000.0;
const INGEST_TARGET_CONCURRENCY: usize = 64;
const QUERY_TARGET_RECORDS: u64 = 100_000;
const SUMMARY_TARGET_MS: f64 = 50.0;
const STATS_TARGET_MS: f64 = 20.0;
const MEMORY_TARGET_MB: f64 = 150.0;

/// Everything one run measured.
#[derive(Debug, Serialize)]
pub struct Report {
    pub started_at: DateTime<Utc>,
    pub commit: String,
    /// The work tree had changes not in `commit`.
    pub dirty: bool,
    pub cores: usize,
    /// `/proc/loadavg` when the run started and ended: other work on the machine skews
    /// every figure.
    pub load_average: [String; 2],
    pub store: String,
    pub records_per_request: usize,
    pub ingest: Vec<IngestResult>,
    pub store_bound: Vec<IngestResult>,
    pub queries: Vec<SizeResult>,
    /// Highest `VmHWM` of any service process of the run, in MB.
    pub peak_rss_mb: f64,
    pub total_seconds: f64,
    pub targets: Vec<TargetCheck>,
}

/// One target of the issue and whether this run met it.
#[derive(Debug, Serialize)]
pub struct TargetCheck {
    pub target: String,
    pub measured: Option<f64>,
    pub met: bool,
}

impl Report {
    /// Fills in `targets` from the figures.
    pub fn check_targets(&mut self) {
        let ingest = self
            .ingest
            .iter()
            .find(|phase| phase.concurrency == INGEST_TARGET_CONCURRENCY)
            .map(|phase| phase.records_per_second);
        let size = self
            .queries
            .iter()
            .find(|size| size.records == QUERY_TARGET_RECORDS);
        let summary = size.map(|size| size.summary_all.p50_ms.max(size.summary_7d_berlin.p50_ms));
        let stats = size.map(|size| size.stats_berlin.p50_ms);
        self.targets = vec![
            check(
                format!("ingest >= {INGEST_TARGET} records/s at concurrency 64"),
                ingest,
                |v| v >= INGEST_TARGET,
            ),
            check(
                format!("summary p50 <= {SUMMARY_TARGET_MS} ms at 100,000 records"),
                summary,
                |v| v <= SUMMARY_TARGET_MS,
            ),
            check(
                format!("stats p50 <= {STATS_TARGET_MS} ms at 100,000 records"),
                stats,
                |v| v <= STATS_TARGET_MS,
            ),
            check(
                format!("peak service memory <= {MEMORY_TARGET_MB} MB"),
                Some(self.peak_rss_mb),
                |v| v <= MEMORY_TARGET_MB,
            ),
        ];
    }

    pub fn write_json(&self, path: &Path) -> anyhow::Result<()> {
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent)
                .with_context(|| format!("while creating {}", parent.display()))?;
        }
        let json = serde_json::to_string_pretty(self)?;
        std::fs::write(path, json + "\n")
            .with_context(|| format!("while writing {}", path.display()))
    }

    /// The tables, as printed at the end of a run.
    pub fn table(&self) -> String {
        let mut out = format!(
            "usage-bench  commit {}{}  cores {}  store {}  {:.0} s  load {} -> {}\n\n",
            self.commit,
            if self.dirty { " (dirty)" } else { "" },
            self.cores,
            self.store,
            self.total_seconds,
            self.load_average[0],
            self.load_average[1],
        );
        out += &self.ingest_table();
        out += &self.query_table();
        out += &format!(
            "\npeak service memory (VmHWM): {:.1} MB\n\ntargets\n",
            self.peak_rss_mb
        );
        for check in &self.targets {
            let measured = check
                .measured
                .map_or("not measured".into(), |v| format!("{v:.1}"));
            let verdict = if check.met { "met" } else { "MISSED" };
            out += &format!("  {:<52} {:>12}  {verdict}\n", check.target, measured);
        }
        out
    }

    fn ingest_table(&self) -> String {
        let mut out = String::from(
            "ingest (sync, 50 records of ~4 KB text each; CPU in % of one core)\n  conc  \
             records/s    p50 ms    p99 ms  fail   service    driver   store rec/s  of store\n",
        );
        for phase in &self.ingest {
            let bound = self
                .store_bound
                .iter()
                .find(|store| store.concurrency == phase.concurrency);
            let (store_rate, fraction) = bound.map_or(("-".into(), "-".into()), |store| {
                let fraction = 100.0 * phase.records_per_second / store.records_per_second;
                (
                    format!("{:.0}", store.records_per_second),
                    format!("{fraction:.0}%"),
                )
            });
            out += &format!(
                "  {:>4} {:>10.0} {:>9.2} {:>9.2} {:>5} {:>9.0} {:>9.0} {:>13} {:>9}\n",
                phase.concurrency,
                phase.records_per_second,
                phase.latency.p50_ms,
                phase.latency.p99_ms,
                phase.failures,
                phase.service_cpu_percent.unwrap_or(0.0),
                phase.driver_cpu_percent.unwrap_or(0.0),
                store_rate,
                fraction,
            );
        }
        out
    }

    fn query_table(&self) -> String {
        let mut out = String::from(
            "\nqueries (one user, history over 90 days; p50 / p99 ms)\n     records   load s  \
             summary all        summary 7d Berlin  stats Berlin       growth (summary p50)\n",
        );
        let base = self.queries.first().map(|size| size.summary_all.p50_ms);
        for size in &self.queries {
            let pair =
                |p: &crate::latency::Percentiles| format!("{:.2} / {:.2}", p.p50_ms, p.p99_ms);
            let growth = base.map_or(1.0, |base| size.summary_all.p50_ms / base.max(f64::EPSILON));
            out += &format!(
                "  {:>10} {:>8.1}  {:<18} {:<18} {:<18} x{growth:.1}\n",
                size.records,
                size.load_seconds,
                pair(&size.summary_all),
                pair(&size.summary_7d_berlin),
                pair(&size.stats_berlin),
            );
        }
        out
    }
}

fn check(target: String, measured: Option<f64>, met: impl Fn(f64) -> bool) -> TargetCheck {
    TargetCheck {
        target,
        measured,
        met: measured.is_some_and(met),
    }
}

/// The 1-, 5- and 15-minute load averages, as `/proc/loadavg` gives them.
pub fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|text| {
            text.split_whitespace()
                .take(3)
                .collect::<Vec<_>>()
                .join(" ")
        })
        .unwrap_or_default()
}

/// The commit the work tree is at, and whether it has uncommitted changes.
pub fn git_commit() -> (String, bool) {
    let git = |args: &[&str]| {
        std::process::Command::new("git")
            .args(args)
            .output()
            .ok()
            .filter(|output| output.status.success())
            .map(|output| String::from_utf8_lossy(&output.stdout).trim().to_owned())
    };
    let commit = git(&["rev-parse", "HEAD"]).unwrap_or_else(|| "unknown".into());
    let dirty = git(&["status", "--porcelain"]).is_some_and(|status| !status.is_empty());
    (commit, dirty)
}
