//! Micro-benchmarks of the domain's hot paths: reading a sync batch, and folding a summary.
//!
//! Run with `cargo bench -p usage-bench`. The batch is the one the load driver sends (the
//! driver's own workload module is compiled in), so these figures explain its figures.

use std::hint::black_box;

use chrono::{NaiveDate, TimeDelta, Utc};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use serde::Deserialize;
use serde_json::value::RawValue;
use usage_domain::incoming::{Acceptance, ExecutionRecord};
use usage_domain::{Batch, SummaryGroup, UsageSummary};

#[allow(dead_code, unused_imports)]
#[path = "../src/workload.rs"]
mod workload;

/// The sync body's shape, as the route reads it: each record kept as raw JSON text.
#[derive(Deserialize)]
struct Body<'a> {
    #[serde(borrow)]
    executions: Vec<&'a RawValue>,
}

fn acceptance() -> Acceptance {
    let now = Utc::now();
    Acceptance {
        now,
        oldest: now - TimeDelta::days(90),
        retention_days: 90,
    }
}

fn parsing(c: &mut Criterion) {
    let body = workload::BodyBuilder::new().body("bench", 1, Utc::now());
    let records: Body<'_> = serde_json::from_slice(&body).expect("the workload is JSON");
    let one = records.executions[0].get();
    let acceptance = acceptance();

    let mut group = c.benchmark_group("parse");
    group.throughput(Throughput::Bytes(one.len() as u64));
    group.bench_function("execution_record", |b| {
        b.iter(|| {
            ExecutionRecord::from_json(black_box(one))
                .and_then(|record| record.into_usage(acceptance))
                .expect("valid")
        })
    });
    group.throughput(Throughput::Bytes(body.len() as u64));
    group.bench_function("batch_of_50", |b| {
        b.iter(|| Batch::parse(records.executions.iter().map(|r| r.get()), acceptance))
    });
    group.bench_function("body_of_50", |b| {
        b.iter(|| {
            let body: Body<'_> = serde_json::from_slice(black_box(&body)).expect("valid");
            Batch::parse(body.executions.iter().map(|r| r.get()), acceptance)
        })
    });
    group.finish();
}

/// Groups as a store returns them: `days` days of `models` models each.
fn groups(days: u64, models: usize) -> Vec<SummaryGroup> {
    let first = NaiveDate::from_ymd_opt(2026, 9, 1).expect("valid date");
    (0..days)
        .flat_map(|day| {
            (0..models).map(move |model| SummaryGroup {
                day: first + chrono::Days::new(day),
                provider: format!("provider-{}", model % 3),
                model: format!("model-{model}"),
                executions: 100 + day,
                successes: 95 + day,
                prompt_tokens: 40_000,
                completion_tokens: 12_000,
                total_tokens: 52_000,
            })
        })
        .collect()
}

fn folding(c: &mut Criterion) {
    let mut group = c.benchmark_group("summary_fold");
    for (days, models) in [(7, 5), (90, 5), (90, 40)] {
        let input = groups(days, models);
        group.throughput(Throughput::Elements(input.len() as u64));
        group.bench_function(format!("{days}_days_{models}_models"), |b| {
            b.iter_batched(
                || input.clone(),
                UsageSummary::from_groups,
                criterion::BatchSize::SmallInput,
            )
        });
    }
    group.finish();
}

criterion_group!(benches, parsing, folding);
criterion_main!(benches);
