//! The MongoDB adapter against a real wire-protocol server.
//!
//! The server is named by `USAGE_TEST_MONGODB_URI`; `tests/support/mongo/start.sh` starts the
//! mongoeco stand-in and prints the variable. Each test works in a database of its own and
//! keeps to a couple of hundred documents (the stand-in slows down with a unique index).

mod common;

use std::time::{Duration, Instant};

use chrono::{NaiveDate, TimeDelta};
use chrono_tz::Tz;
use mongodb::IndexModel;
use mongodb::bson::{Bson, doc};
use mongodb::options::IndexOptions;
use usage_domain::{
    RepositoryError, Retention, StatsWindows, SummaryGroup, TimeRange, UsageRepository,
    WindowTotals,
};
use usage_mongo::indexes::{PROVIDER_INDEX, RANGE_INDEX, TTL_INDEX, UNIQUE_INDEX};
use usage_mongo::{IndexSpec, MongoSetupError, MongoUsageRepository};

use common::*;

const DAY_SECONDS: i64 = 86_400;

fn find<'a>(specs: &'a [IndexSpec], name: &str) -> &'a IndexSpec {
    specs
        .iter()
        .find(|spec| spec.name == name)
        .unwrap_or_else(|| panic!("no index named {name} in {specs:#?}"))
}

fn keys(pairs: &[(&str, i32)]) -> Vec<(String, Bson)> {
    pairs
        .iter()
        .map(|(field, direction)| ((*field).to_owned(), Bson::Int32(*direction)))
        .collect()
}

#[tokio::test]
async fn connecting_creates_the_four_named_indexes_with_their_keys_and_ttl() {
    let db = TestDatabase::new("indexes");
    let repository = db.connect().await;

    let specs = repository.index_specs().await.unwrap();
    let expected = [
        (
            UNIQUE_INDEX,
            keys(&[("userId", 1), ("executionId", 1)]),
            true,
            None,
        ),
        (
            RANGE_INDEX,
            keys(&[("userId", 1), ("timestamp", -1)]),
            false,
            None,
        ),
        (PROVIDER_INDEX, keys(&[("provider", 1)]), false, None),
        (
            TTL_INDEX,
            keys(&[("timestamp", 1)]),
            false,
            Some(90 * DAY_SECONDS),
        ),
    ];
    for (name, keys, unique, expire_after_seconds) in expected {
        assert_eq!(
            find(&specs, name),
            &IndexSpec {
                name: name.to_owned(),
                keys,
                unique,
                expire_after_seconds
            }
        );
    }
    assert_eq!(specs.len(), 5, "the four and `_id_`: {specs:#?}");

    let again = db.connect().await;
    assert_eq!(
        again.index_specs().await.unwrap(),
        specs,
        "connecting again changes nothing"
    );
    db.drop().await;
}

#[tokio::test]
async fn connecting_with_another_retention_changes_the_ttl_in_place() {
    let db = TestDatabase::new("ttl_change");
    let first = db.connect_with(Retention::days(90).unwrap()).await;
    first
        .insert_new(&user("alice"), &[record("kept", recent_day_noon())])
        .await
        .unwrap();

    let second = db.connect_with(Retention::days(30).unwrap()).await;

    for repository in [&first, &second] {
        let specs = repository.index_specs().await.unwrap();
        assert_eq!(
            find(&specs, TTL_INDEX).expire_after_seconds,
            Some(30 * DAY_SECONDS)
        );
        assert_eq!(specs.len(), 5, "changed, not added: {specs:#?}");
    }
    assert_eq!(
        count(&db.usages().await, all()).await,
        1,
        "the collection is kept"
    );
    db.drop().await;
}

#[tokio::test]
async fn indexes_left_under_other_names_are_adopted_and_their_ttl_reconciled() {
    let db = TestDatabase::new("legacy_names");
    let usages = db.usages().await;
    let legacy = [
        IndexModel::builder()
            .keys(doc! { "userId": 1, "executionId": 1 })
            .options(IndexOptions::builder().unique(true).build())
            .build(),
        IndexModel::builder()
            .keys(doc! { "timestamp": 1 })
            .options(
                IndexOptions::builder()
                    .expire_after(Duration::from_secs(3600))
                    .build(),
            )
            .build(),
    ];
    usages.create_indexes(legacy).await.unwrap();

    let repository = db.connect().await;

    let specs = repository.index_specs().await.unwrap();
    let names: Vec<&str> = specs.iter().map(|spec| spec.name.as_str()).collect();
    assert!(!names.contains(&UNIQUE_INDEX), "{names:?}");
    assert!(!names.contains(&TTL_INDEX), "{names:?}");
    assert!(find(&specs, "userId_1_executionId_1").unique);
    assert_eq!(
        find(&specs, "timestamp_1").expire_after_seconds,
        Some(90 * DAY_SECONDS)
    );
    assert!(names.contains(&RANGE_INDEX) && names.contains(&PROVIDER_INDEX));
    db.drop().await;
}

#[tokio::test]
async fn a_non_unique_index_on_the_dedup_keys_stops_the_set_up() {
    let db = TestDatabase::new("legacy_not_unique");
    let usages = db.usages().await;
    usages
        .create_index(
            IndexModel::builder()
                .keys(doc! { "userId": 1, "executionId": 1 })
                .build(),
        )
        .await
        .unwrap();

    let error = MongoUsageRepository::connect(&db.uri, Retention::default())
        .await
        .unwrap_err();

    let conflict = "userId_1_executionId_1";
    assert!(
        matches!(&error, MongoSetupError::IndexConflict { name, .. } if name == conflict),
        "{error:?}"
    );
    db.drop().await;
}

/// Noon (UTC) of [`recent_day`].
fn recent_day_noon() -> chrono::DateTime<chrono::Utc> {
    at(recent_day(), 12, 0)
}

#[tokio::test]
async fn records_are_stored_with_camel_case_fields_and_bson_dates() {
    let db = TestDatabase::new("document_shape");
    let repository = db.connect().await;
    let mut failed = record_of(
        "exec-1",
        recent_day_noon(),
        "anthropic",
        "claude",
        (7, 3, 0),
        false,
    );
    failed.error = Some("rate limited".into());
    failed.context = Some("src/main.rs".into());

    repository
        .insert_new(&user("alice"), &[failed.clone()])
        .await
        .unwrap();

    let mut stored = db.usages().await.find_one(all()).await.unwrap().unwrap();
    let created_at = stored.get_datetime("createdAt").copied().unwrap();
    assert_eq!(
        stored.get_datetime("updatedAt").copied().unwrap(),
        created_at
    );
    stored.remove("_id");
    stored.remove("createdAt");
    stored.remove("updatedAt");
    let timestamp = mongodb::bson::DateTime::from_millis(failed.timestamp.timestamp_millis());
    assert_eq!(
        stored,
        doc! {
            "userId": "alice", "executionId": "exec-1", "timestamp": timestamp,
            "provider": "anthropic", "model": "claude",
            "promptTokens": 7_i64, "completionTokens": 3_i64, "totalTokens": 10_i64,
            "duration": 250.0, "success": false, "executionMode": "local",
            "hasCompiledPrompt": true, "hasResponse": true,
            "error": "rate limited", "context": "src/main.rs",
        }
    );
    db.drop().await;
}

#[tokio::test]
async fn records_already_stored_for_the_user_are_not_stored_again() {
    let db = TestDatabase::new("dedup");
    let repository = db.connect().await;
    let alice = user("alice");
    let first = records("exec", 30, recent_day_noon());

    assert_eq!(repository.insert_new(&alice, &first).await.unwrap(), 30);
    assert_eq!(repository.insert_new(&alice, &first).await.unwrap(), 0);

    let mut overlapping = records("exec", 40, recent_day_noon());
    overlapping.push(overlapping[35].clone());
    assert_eq!(
        repository.insert_new(&alice, &overlapping).await.unwrap(),
        10,
        "ten new ids; the rest, and the repeat within the call, are duplicates"
    );
    assert_eq!(repository.insert_new(&alice, &[]).await.unwrap(), 0);
    assert_eq!(count(&db.usages().await, all()).await, 40);
    db.drop().await;
}

#[tokio::test]
async fn the_same_execution_id_is_stored_for_each_user() {
    let db = TestDatabase::new("per_user");
    let repository = db.connect().await;
    let shared = records("shared", 5, recent_day_noon());

    assert_eq!(
        repository
            .insert_new(&user("alice"), &shared)
            .await
            .unwrap(),
        5
    );
    assert_eq!(
        repository.insert_new(&user("bob"), &shared).await.unwrap(),
        5
    );

    let usages = db.usages().await;
    assert_eq!(count(&usages, doc! { "executionId": "shared-0" }).await, 2);
    assert_eq!(count(&usages, doc! { "userId": "bob" }).await, 5);
    db.drop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_identical_inserts_store_each_record_once() {
    let db = TestDatabase::new("concurrent");
    // Two repositories with their own connection pools, like two instances of the service.
    let instances = [db.connect().await, db.connect().await];
    let batch = records("race", 40, recent_day_noon());

    let attempts: Vec<_> = instances
        .iter()
        .cycle()
        .take(4)
        .map(|repository| {
            let repository = repository.clone();
            let batch = batch.clone();
            tokio::spawn(async move { repository.insert_new(&user("alice"), &batch).await })
        })
        .collect();
    let mut stored = 0;
    for attempt in attempts {
        stored += attempt.await.unwrap().unwrap();
    }

    assert_eq!(
        stored, 40,
        "each record counted as stored by exactly one call"
    );
    assert_eq!(count(&db.usages().await, all()).await, 40);
    db.drop().await;
}

#[tokio::test]
async fn the_summary_groups_records_by_day_in_the_time_zone() {
    let db = TestDatabase::new("summary_tz");
    let repository = db.connect().await;
    let day = recent_day();
    let next = day.succ_opt().unwrap();
    let alice = [
        record_of("a", at(day, 12, 0), "openai", "gpt-4o", (10, 5, 0), true),
        // 23:30 UTC is already the next day in Berlin, winter (UTC+1) or summer (UTC+2).
        record_of("b", at(day, 23, 30), "openai", "gpt-4o", (1, 1, 0), false),
        record_of("c", at(day, 23, 45), "anthropic", "claude", (3, 4, 0), true),
    ];
    repository.insert_new(&user("alice"), &alice).await.unwrap();
    repository
        .insert_new(&user("bob"), &[record("a", at(day, 12, 0))])
        .await
        .unwrap();
    let range = TimeRange {
        start: at(day, 0, 0),
        end: at(next, 23, 59),
    };

    let in_utc = repository
        .summary_groups(&user("alice"), range, Tz::UTC)
        .await
        .unwrap();
    let in_berlin = repository
        .summary_groups(&user("alice"), range, chrono_tz::Europe::Berlin)
        .await
        .unwrap();

    assert_eq!(
        in_utc,
        vec![
            group(day, "anthropic", "claude", 1, 1, (3, 4, 7)),
            group(day, "openai", "gpt-4o", 2, 1, (11, 6, 17)),
        ]
    );
    assert_eq!(
        in_berlin,
        vec![
            group(day, "openai", "gpt-4o", 1, 1, (10, 5, 15)),
            group(next, "anthropic", "claude", 1, 1, (3, 4, 7)),
            group(next, "openai", "gpt-4o", 1, 0, (1, 1, 2)),
        ]
    );
    db.drop().await;
}

fn group(
    day: NaiveDate,
    provider: &str,
    model: &str,
    executions: u64,
    successes: u64,
    (prompt_tokens, completion_tokens, total_tokens): (u64, u64, u64),
) -> SummaryGroup {
    SummaryGroup {
        day,
        provider: provider.into(),
        model: model.into(),
        executions,
        successes,
        prompt_tokens,
        completion_tokens,
        total_tokens,
    }
}

#[tokio::test]
async fn summary_bounds_are_inclusive_to_the_millisecond() {
    let db = TestDatabase::new("summary_bounds");
    let repository = db.connect().await;
    let range = TimeRange {
        start: at(recent_day(), 10, 0),
        end: at(recent_day(), 11, 0),
    };
    let edges = [
        record("before", range.start - ms(1)),
        record("start", range.start),
        record("end", range.end),
        record("after", range.end + ms(1)),
    ];
    repository.insert_new(&user("alice"), &edges).await.unwrap();

    let groups = repository
        .summary_groups(&user("alice"), range, Tz::UTC)
        .await
        .unwrap();

    assert_eq!(groups.len(), 1, "{groups:?}");
    assert_eq!(
        groups[0].executions, 2,
        "only the two records on the bounds"
    );
    let empty = repository
        .summary_groups(&user("nobody"), range, Tz::UTC)
        .await
        .unwrap();
    assert!(empty.is_empty());
    db.drop().await;
}

#[tokio::test]
async fn window_totals_count_each_window_inclusively_for_the_user_only() {
    let db = TestDatabase::new("windows");
    let repository = db.connect().await;
    let end = recent_day_noon();
    let windows = StatsWindows {
        today: end - TimeDelta::hours(1),
        week: end - TimeDelta::days(1),
        month: end - TimeDelta::days(2),
        end,
    };
    let alice = [
        record_of(
            "too-early",
            windows.month - ms(1),
            "p",
            "m",
            (0, 0, 1000),
            false,
        ),
        record_of("month-start", windows.month, "p", "m", (0, 0, 10), true),
        record_of("week-start", windows.week, "p", "m", (0, 0, 20), false),
        record_of("today-start", windows.today, "p", "m", (0, 0, 30), true),
        record_of("now", windows.end, "p", "m", (0, 0, 40), false),
        record_of(
            "too-late",
            windows.end + ms(1),
            "p",
            "m",
            (0, 0, 1000),
            false,
        ),
    ];
    repository.insert_new(&user("alice"), &alice).await.unwrap();
    repository
        .insert_new(&user("bob"), &[record("bob", windows.today)])
        .await
        .unwrap();

    let stats = repository
        .window_totals(&user("alice"), windows)
        .await
        .unwrap();

    let totals = |executions, tokens, errors| WindowTotals {
        executions,
        tokens,
        errors,
    };
    assert_eq!(stats.today, totals(2, 70, 1));
    assert_eq!(stats.this_week, totals(3, 90, 2));
    assert_eq!(stats.this_month, totals(4, 100, 2));
    db.drop().await;
}

#[tokio::test]
async fn window_totals_are_zero_without_records() {
    let db = TestDatabase::new("windows_empty");
    let repository = db.connect().await;
    let windows = StatsWindows::at(recent_day_noon(), Tz::UTC, usage_domain::WeekStart::Monday);

    let stats = repository
        .window_totals(&user("alice"), windows)
        .await
        .unwrap();

    assert_eq!(stats, usage_domain::UsageStats::default());
    db.drop().await;
}

#[tokio::test]
async fn delete_older_than_removes_every_users_older_records_only() {
    let db = TestDatabase::new("delete");
    let repository = db.connect().await;
    let cutoff = recent_day_noon();
    repository
        .insert_new(
            &user("alice"),
            &[
                record("old", cutoff - TimeDelta::hours(1)),
                record("edge", cutoff),
                record("new", cutoff + TimeDelta::hours(1)),
            ],
        )
        .await
        .unwrap();
    repository
        .insert_new(&user("bob"), &[record("old", cutoff - ms(1))])
        .await
        .unwrap();

    assert_eq!(repository.delete_older_than(cutoff).await.unwrap(), 2);
    assert_eq!(repository.delete_older_than(cutoff).await.unwrap(), 0);

    let usages = db.usages().await;
    assert_eq!(count(&usages, all()).await, 2);
    assert_eq!(count(&usages, doc! { "executionId": "old" }).await, 0);
    db.drop().await;
}

#[tokio::test]
async fn ping_succeeds_while_the_server_answers() {
    let db = TestDatabase::new("ping");
    let repository = db.connect().await;

    repository.ping().await.unwrap();

    assert_eq!(repository.database_name(), db.name);
    db.drop().await;
}

#[tokio::test]
async fn connecting_to_a_closed_port_fails_fast_as_unavailable() {
    let closed_port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let uri = format!("mongodb://127.0.0.1:{closed_port}/usage?directConnection=true");
    let started = Instant::now();

    let error = MongoUsageRepository::connect_with(&uri, impatient(Retention::default()))
        .await
        .unwrap_err();

    assert!(
        matches!(error, MongoSetupError::Unavailable(_)),
        "{error:?}"
    );
    assert!(started.elapsed() < Duration::from_secs(5), "fails fast");
}

#[tokio::test]
async fn a_server_that_goes_away_makes_every_method_unavailable() {
    let db = TestDatabase::new("goes_away");
    let forwarder = Forwarder::start().await;
    let repository = MongoUsageRepository::connect_with(
        &forwarder.uri(&db.name),
        impatient(Retention::default()),
    )
    .await
    .unwrap();
    repository.ping().await.unwrap();

    forwarder.cut();

    let alice = user("alice");
    let range = TimeRange {
        start: recent_day_noon(),
        end: recent_day_noon(),
    };
    let windows = StatsWindows::at(recent_day_noon(), Tz::UTC, usage_domain::WeekStart::Monday);
    let failures = [
        repository.ping().await.err(),
        repository
            .insert_new(&alice, &[record("x", recent_day_noon())])
            .await
            .err(),
        repository
            .summary_groups(&alice, range, Tz::UTC)
            .await
            .err(),
        repository.window_totals(&alice, windows).await.err(),
        repository.delete_older_than(recent_day_noon()).await.err(),
    ];
    for failure in failures {
        assert!(
            matches!(failure, Some(RepositoryError::Unavailable(_))),
            "{failure:?}"
        );
    }
    db.drop().await;
}

#[test]
fn test_uris_keep_the_servers_options_and_authentication_database() {
    let plain = UriParts::parse("mongodb://h:1/?a=b").with_database("d", &["c=e"]);
    assert_eq!(plain, "mongodb://h:1/d?a=b&c=e");

    let with_credentials = UriParts::parse("mongodb://u:p@h:1/?directConnection=true")
        .with_database("d", &["directConnection=true"]);
    assert_eq!(
        with_credentials,
        "mongodb://u:p@h:1/d?authSource=admin&directConnection=true"
    );
}
