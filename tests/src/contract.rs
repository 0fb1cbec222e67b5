//! The `UsageRepository` contract, written once and run against every adapter.
//!
//! [`repository_contract!`](crate::repository_contract) expands to one test per clause for an
//! adapter, given an async factory that returns a fresh, empty repository.

use std::sync::Arc;

use chrono::TimeDelta;
use usage_domain::{
    ExecutionMode, ExportCursor, StatsWindows, TimeRange, UsageRecord, UsageRepository, UsageStats,
    WeekStart, WindowTotals,
};

use crate::records::{failed, record, user, utc, with_model};

pub type Repository = Arc<dyn UsageRepository>;

/// Expands to a `#[tokio::test]` per contract clause. `$make` is an async expression that
/// yields `(Repository, guard)`; the guard (a temporary directory, say) lives for the test.
#[macro_export]
macro_rules! repository_contract {
    ($make:expr) => {
        $crate::repository_contract!(@cases $make;
            stores_each_id_once_across_calls,
            concurrent_identical_inserts_store_each_record_once,
            ids_are_unique_per_user_not_globally,
            summary_groups_by_day_in_the_requested_time_zone,
            summary_bounds_are_inclusive,
            summary_sums_tokens_and_successes_per_model,
            window_totals_count_each_window_including_a_week_from_last_month,
            window_totals_are_zero_without_records,
            delete_older_than_removes_only_older_records,
            ping_succeeds_on_a_working_store,
            export_pages_follow_timestamp_then_id_order_without_gaps_or_repeats,
            export_pages_hold_only_the_users_records_in_the_inclusive_range,
            exported_records_read_back_every_stored_field,
            delete_user_erases_only_that_users_records,
        );
    };
    (@cases $make:expr; $($case:ident),+ $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $case() {
                let (repository, _guard) = $make.await;
                $crate::contract::$case(repository).await;
            }
        )+
    };
}

fn everything() -> TimeRange {
    TimeRange {
        start: utc(2000, 1, 1, 0, 0),
        end: utc(2100, 1, 1, 0, 0),
    }
}

async fn total_executions(repository: &Repository, name: &str) -> u64 {
    let groups = repository
        .summary_groups(&user(name), everything(), chrono_tz::UTC)
        .await
        .expect("summary works");
    groups.iter().map(|group| group.executions).sum()
}

pub async fn stores_each_id_once_across_calls(repository: Repository) {
    let at = utc(2026, 12, 1, 10, 0);
    let first = [record("a", at), record("b", at)];
    assert_eq!(
        repository.insert_new(&user("alice"), &first).await.unwrap(),
        2
    );

    let second = [record("b", at), record("c", at)];
    assert_eq!(
        repository
            .insert_new(&user("alice"), &second)
            .await
            .unwrap(),
        1
    );
    assert_eq!(
        repository
            .insert_new(&user("alice"), &second)
            .await
            .unwrap(),
        0
    );

    assert_eq!(total_executions(&repository, "alice").await, 3);
}

pub async fn concurrent_identical_inserts_store_each_record_once(repository: Repository) {
    let at = utc(2026, 12, 1, 10, 0);
    let batch: Vec<_> = (0..20).map(|i| record(&format!("same-{i}"), at)).collect();
    let batch = Arc::new(batch);
    let attempts = (0..8).map(|_| {
        let repository = repository.clone();
        let batch = batch.clone();
        tokio::spawn(async move { repository.insert_new(&user("alice"), &batch).await })
    });
    let mut stored = 0;
    for attempt in attempts {
        stored += attempt.await.expect("task ran").expect("insert works");
    }
    assert_eq!(
        stored, 20,
        "the inserts together store each record exactly once"
    );
    assert_eq!(total_executions(&repository, "alice").await, 20);
}

pub async fn ids_are_unique_per_user_not_globally(repository: Repository) {
    let at = utc(2026, 12, 1, 10, 0);
    assert_eq!(
        repository
            .insert_new(&user("alice"), &[record("x", at)])
            .await
            .unwrap(),
        1
    );
    assert_eq!(
        repository
            .insert_new(&user("bob"), &[record("x", at)])
            .await
            .unwrap(),
        1
    );
    let bob_only = [record("y", at), record("z", at)];
    assert_eq!(
        repository
            .insert_new(&user("bob"), &bob_only)
            .await
            .unwrap(),
        2
    );

    assert_eq!(total_executions(&repository, "alice").await, 1);
    assert_eq!(total_executions(&repository, "bob").await, 3);
    assert_eq!(total_executions(&repository, "carol").await, 0);
}

pub async fn summary_groups_by_day_in_the_requested_time_zone(repository: Repository) {
    let late = record("late", utc(2026, 12, 1, 23, 30));
    repository
        .insert_new(&user("alice"), &[late])
        .await
        .unwrap();

    let alice = user("alice");
    let in_utc = repository
        .summary_groups(&alice, everything(), chrono_tz::UTC)
        .await
        .unwrap();
    assert_eq!(in_utc.len(), 1);
    assert_eq!(in_utc[0].day.to_string(), "2026-12-01");

    let berlin = chrono_tz::Europe::Berlin;
    let in_berlin = repository
        .summary_groups(&alice, everything(), berlin)
        .await
        .unwrap();
    assert_eq!(in_berlin.len(), 1);
    assert_eq!(in_berlin[0].day.to_string(), "2026-12-02");
}

pub async fn summary_bounds_are_inclusive(repository: Repository) {
    let start = utc(2026, 12, 1, 0, 0);
    let end = utc(2026, 12, 2, 0, 0);
    let one_ms = TimeDelta::milliseconds(1);
    let records = [
        record("before", start - one_ms),
        record("at-start", start),
        record("inside", start + TimeDelta::hours(5)),
        record("at-end", end),
        record("after", end + one_ms),
    ];
    repository
        .insert_new(&user("alice"), &records)
        .await
        .unwrap();

    let range = TimeRange { start, end };
    let groups = repository
        .summary_groups(&user("alice"), range, chrono_tz::UTC)
        .await
        .unwrap();

    assert_eq!(groups.iter().map(|group| group.executions).sum::<u64>(), 3);
}

pub async fn summary_sums_tokens_and_successes_per_model(repository: Repository) {
    let at = utc(2026, 12, 1, 9, 0);
    let records = [
        record("a", at),
        failed(record("b", at)),
        with_model(record("c", at), "anthropic", "claude-sonnet"),
    ];
    repository
        .insert_new(&user("alice"), &records)
        .await
        .unwrap();

    let mut groups = repository
        .summary_groups(&user("alice"), everything(), chrono_tz::UTC)
        .await
        .unwrap();
    groups.sort_by(|a, b| a.provider.cmp(&b.provider));

    assert_eq!(groups.len(), 2);
    let (anthropic, openai) = (&groups[0], &groups[1]);
    assert_eq!(
        (anthropic.model.as_str(), anthropic.executions),
        ("claude-sonnet", 1)
    );
    assert_eq!(
        (openai.model.as_str(), openai.executions, openai.successes),
        ("gpt-4o", 2, 1)
    );
    assert_eq!(
        (
            openai.prompt_tokens,
            openai.completion_tokens,
            openai.total_tokens
        ),
        (20, 10, 30)
    );
}

pub async fn window_totals_count_each_window_including_a_week_from_last_month(
    repository: Repository,
) {
    // Wednesday 2026-12-02 at noon: the week began on Monday 2026-11-30.
    let now = utc(2026, 12, 2, 12, 0);
    let windows = StatsWindows::at(now, chrono_tz::UTC, WeekStart::Monday);
    let records = [
        record("today", utc(2026, 12, 2, 8, 0)),
        failed(record("today-failed", utc(2026, 12, 2, 0, 0))),
        record("yesterday", utc(2026, 12, 1, 8, 0)),
        record("monday-in-november", utc(2026, 11, 30, 8, 0)),
        record("last-week", utc(2026, 11, 29, 23, 59)),
        record("later-today", utc(2026, 12, 2, 12, 1)),
    ];
    repository
        .insert_new(&user("alice"), &records)
        .await
        .unwrap();

    let stats = repository
        .window_totals(&user("alice"), windows)
        .await
        .unwrap();

    let totals = |executions, errors| WindowTotals {
        executions,
        tokens: executions * 15,
        errors,
    };
    assert_eq!(
        stats,
        UsageStats {
            today: totals(2, 1),
            this_week: totals(4, 1),
            this_month: totals(3, 1)
        }
    );
}

pub async fn window_totals_are_zero_without_records(repository: Repository) {
    let windows = StatsWindows::at(utc(2026, 12, 2, 12, 0), chrono_tz::UTC, WeekStart::Sunday);
    let stats = repository
        .window_totals(&user("nobody"), windows)
        .await
        .unwrap();
    assert_eq!(stats, UsageStats::default());
}

pub async fn delete_older_than_removes_only_older_records(repository: Repository) {
    let cutoff = utc(2026, 9, 1, 0, 0);
    let records = [
        record("old", cutoff - TimeDelta::milliseconds(1)),
        record("edge", cutoff),
        record("new", cutoff + TimeDelta::days(1)),
    ];
    repository
        .insert_new(&user("alice"), &records)
        .await
        .unwrap();
    repository
        .insert_new(&user("bob"), &[record("old", cutoff - TimeDelta::days(3))])
        .await
        .unwrap();

    assert_eq!(repository.delete_older_than(cutoff).await.unwrap(), 2);
    assert_eq!(total_executions(&repository, "alice").await, 2);
    assert_eq!(total_executions(&repository, "bob").await, 0);
}

pub async fn ping_succeeds_on_a_working_store(repository: Repository) {
    repository.ping().await.expect("a fresh store answers");
}

/// Every page of `user`'s records in `range`, following cursors, `size` records at a time.
async fn export_all(
    repository: &Repository,
    name: &str,
    range: TimeRange,
    size: u32,
) -> Vec<UsageRecord> {
    let mut records: Vec<UsageRecord> = Vec::new();
    loop {
        let after = records.last().map(ExportCursor::after);
        let page = repository
            .export_page(&user(name), range, after, size)
            .await
            .expect("export works");
        assert!(
            page.len() <= size as usize,
            "a page never exceeds its limit"
        );
        let last = page.len() < size as usize;
        records.extend(page);
        if last {
            return records;
        }
    }
}

fn ids(records: &[UsageRecord]) -> Vec<&str> {
    records.iter().map(|record| record.id.as_str()).collect()
}

pub async fn export_pages_follow_timestamp_then_id_order_without_gaps_or_repeats(
    repository: Repository,
) {
    let early = utc(2026, 12, 1, 9, 0);
    let late = utc(2026, 12, 1, 10, 0);
    // Ties on the timestamp are ordered by id, byte by byte ("B" < "a" < "b").
    let records = [
        record("b", late),
        record("z", early),
        record("a", late),
        record("B", late),
        record("c", early),
        record("a-2", late),
        record("d", utc(2026, 12, 1, 11, 0)),
    ];
    repository
        .insert_new(&user("alice"), &records)
        .await
        .unwrap();

    let expected = ["c", "z", "B", "a", "a-2", "b", "d"];
    for size in [1, 2, 3, 7, 100] {
        let exported = export_all(&repository, "alice", everything(), size).await;
        assert_eq!(ids(&exported), expected, "pages of {size}");
    }
}

pub async fn export_pages_hold_only_the_users_records_in_the_inclusive_range(
    repository: Repository,
) {
    let start = utc(2026, 12, 1, 0, 0);
    let end = utc(2026, 12, 2, 0, 0);
    let one_ms = TimeDelta::milliseconds(1);
    let alice = [
        record("before", start - one_ms),
        record("at-start", start),
        record("at-end", end),
        record("after", end + one_ms),
    ];
    repository.insert_new(&user("alice"), &alice).await.unwrap();
    let bob = [record("bob-1", start), record("at-end", end)];
    repository.insert_new(&user("bob"), &bob).await.unwrap();

    let range = TimeRange { start, end };
    let exported = export_all(&repository, "alice", range, 1).await;
    assert_eq!(ids(&exported), ["at-start", "at-end"]);
    let nobody = export_all(&repository, "carol", everything(), 10).await;
    assert!(nobody.is_empty(), "a user without records exports nothing");
}

pub async fn exported_records_read_back_every_stored_field(repository: Repository) {
    let mut remote = failed(with_model(
        record("full", utc(2026, 12, 1, 9, 30)),
        "anthropic",
        "claude-sonnet",
    ));
    remote.execution_mode = ExecutionMode::Remote;
    remote.context = Some("notes/é.md".into());
    remote.has_response = false;
    remote.duration_ms = 12.0;
    let plain = record("plain", utc(2026, 12, 1, 9, 31));
    repository
        .insert_new(&user("alice"), &[remote.clone(), plain.clone()])
        .await
        .unwrap();

    let exported = export_all(&repository, "alice", everything(), 10).await;
    assert_eq!(exported, [remote, plain]);
}

pub async fn delete_user_erases_only_that_users_records(repository: Repository) {
    let at = utc(2026, 12, 1, 10, 0);
    let alice = [record("a", at), record("b", at), record("c", at)];
    repository.insert_new(&user("alice"), &alice).await.unwrap();
    let bob = [record("a", at), record("x", at)];
    repository.insert_new(&user("bob"), &bob).await.unwrap();

    assert_eq!(repository.delete_user(&user("alice")).await.unwrap(), 3);
    assert_eq!(repository.delete_user(&user("alice")).await.unwrap(), 0);
    assert_eq!(total_executions(&repository, "alice").await, 0);
    assert_eq!(total_executions(&repository, "bob").await, 2);
    assert_eq!(
        repository
            .insert_new(&user("alice"), &alice[..1])
            .await
            .unwrap(),
        1,
        "an erased id can be stored again"
    );
}
