//! The HTTP suite: SPEC's contract driven over HTTP the way the web client drives it.
//!
//! [`http_suite!`](crate::http_suite) expands to one test per case for a [`TestStore`].

use chrono::TimeDelta;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::http::{
    AppOptions, SECRET, TestApp, TestStore, expect_error, json_body, pinned_now, sign, token,
};
use crate::records::{client_record, utc};

/// Expands to a `#[tokio::test]` per case, each on a fresh app over `$store`.
#[macro_export]
macro_rules! http_suite {
    ($store:expr) => {
        $crate::http_suite!(@cases $store;
            a_client_batch_of_fifty_records_is_stored_without_its_text,
            sending_the_same_batch_again_reports_every_record_as_a_duplicate,
            an_id_repeated_within_a_batch_is_stored_once,
            valid_records_are_stored_and_each_invalid_one_is_reported,
            records_outside_retention_or_too_far_ahead_are_rejected_with_a_reason,
            users_never_see_each_others_records_and_may_share_execution_ids,
            concurrent_identical_batches_store_each_record_once,
            sixteen_clients_with_overlapping_batches_store_each_record_once,
            the_summary_has_every_key_of_the_client_shape_with_correct_numbers,
            summary_date_bounds_are_inclusive_in_every_format,
            a_late_utc_record_falls_on_the_next_day_in_berlin,
            stats_follow_the_clock_including_a_week_that_began_last_month,
            stats_weeks_can_start_on_sunday,
            bad_queries_are_invalid_query,
            every_auth_failure_has_its_code,
            malformed_bodies_are_invalid_body,
            a_body_over_the_limit_is_payload_too_large,
            a_batch_over_the_limit_is_batch_too_large,
            data_survives_a_restart_on_the_same_store,
            unknown_routes_and_methods_answer_with_json_errors,
            health_and_readiness_probes_answer,
        );
    };
    (@cases $store:expr; $($case:ident),+ $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $case() {
                $crate::http_suite::$case($store).await;
            }
        )+
    };
}

fn batch(prefix: &str, count: usize) -> Vec<Value> {
    (0..count)
        .map(|i| {
            let at = pinned_now() - TimeDelta::minutes(i as i64);
            client_record(&format!("{prefix}-{i}"), at)
        })
        .collect()
}

async fn summary_of(app: &TestApp, user: &str, query: &[(&str, &str)]) -> Value {
    json_body(app.summary(user, query).await, StatusCode::OK).await["summary"].clone()
}

pub async fn a_client_batch_of_fifty_records_is_stored_without_its_text(store: TestStore) {
    let app = TestApp::spawn(store).await;

    let body = json_body(
        app.sync_records("alice", &batch("exec", 50)).await,
        StatusCode::OK,
    )
    .await;

    assert_eq!(
        body,
        json!({"success": true, "synced": 50, "duplicates": 0})
    );
    let summary = summary_of(&app, "alice", &[]).await;
    assert_eq!(summary["totalExecutions"], 50);
    assert_eq!(summary["totalTokens"], 50 * 200);
}

pub async fn sending_the_same_batch_again_reports_every_record_as_a_duplicate(store: TestStore) {
    let app = TestApp::spawn(store).await;
    let records = batch("exec", 50);
    json_body(app.sync_records("alice", &records).await, StatusCode::OK).await;

    let again = json_body(app.sync_records("alice", &records).await, StatusCode::OK).await;

    assert_eq!(
        again,
        json!({"success": true, "synced": 0, "duplicates": 50})
    );
    assert_eq!(summary_of(&app, "alice", &[]).await["totalExecutions"], 50);
}

pub async fn an_id_repeated_within_a_batch_is_stored_once(store: TestStore) {
    let app = TestApp::spawn(store).await;
    let at = pinned_now();
    let records = [
        client_record("a", at),
        client_record("b", at),
        client_record("a", at),
    ];

    let body = json_body(app.sync_records("alice", &records).await, StatusCode::OK).await;

    assert_eq!(body, json!({"success": true, "synced": 2, "duplicates": 1}));
}

pub async fn valid_records_are_stored_and_each_invalid_one_is_reported(store: TestStore) {
    let app = TestApp::spawn(store).await;
    let at = pinned_now();
    let mut no_provider = client_record("bad-1", at);
    no_provider.as_object_mut().unwrap().remove("provider");
    let mut bad_tokens = client_record("bad-2", at);
    bad_tokens["promptTokens"] = json!(-5);
    let records = [
        client_record("good-1", at),
        no_provider,
        json!("not a record"),
        bad_tokens,
        json!({"id": "x".repeat(129), "provider": "openai", "model": "gpt-4o"}),
        client_record("good-2", at),
    ];

    let body = json_body(app.sync_records("alice", &records).await, StatusCode::OK).await;

    assert_eq!(body["synced"], 2);
    assert_eq!(body["duplicates"], 0);
    assert_eq!(
        body["errors"],
        json!([
            "executions[1]: provider is required",
            "executions[2]: record must be a JSON object",
            "executions[3]: promptTokens must be a non-negative integer of at most 10^12",
            "executions[4]: id must be at most 128 characters",
        ])
    );
    assert_eq!(summary_of(&app, "alice", &[]).await["totalExecutions"], 2);
}

pub async fn records_outside_retention_or_too_far_ahead_are_rejected_with_a_reason(
    store: TestStore,
) {
    let app = TestApp::spawn(store).await;
    let records = [
        client_record("old", pinned_now() - TimeDelta::days(91)),
        client_record("ahead", pinned_now() + TimeDelta::hours(25)),
        client_record("edge", pinned_now() - TimeDelta::days(89)),
    ];

    let body = json_body(app.sync_records("alice", &records).await, StatusCode::OK).await;

    assert_eq!(body["synced"], 1);
    assert_eq!(
        body["errors"],
        json!([
            "executions[0]: timestamp is older than the retention period of 90 days",
            "executions[1]: timestamp is more than 24 hours in the future",
        ])
    );
}

pub async fn users_never_see_each_others_records_and_may_share_execution_ids(store: TestStore) {
    let app = TestApp::spawn(store).await;
    let at = pinned_now();
    let shared = [client_record("shared-id", at)];
    let alice = json_body(app.sync_records("alice", &shared).await, StatusCode::OK).await;
    let bob = json_body(app.sync_records("bob", &shared).await, StatusCode::OK).await;
    assert_eq!(
        (alice["synced"].clone(), bob["synced"].clone()),
        (json!(1), json!(1))
    );
    json_body(
        app.sync_records("bob", &batch("bob", 3)).await,
        StatusCode::OK,
    )
    .await;

    assert_eq!(summary_of(&app, "alice", &[]).await["totalExecutions"], 1);
    assert_eq!(summary_of(&app, "bob", &[]).await["totalExecutions"], 4);
    assert_eq!(summary_of(&app, "carol", &[]).await["totalExecutions"], 0);
    let stats = json_body(app.stats("carol", &[]).await, StatusCode::OK).await;
    assert_eq!(stats["stats"]["thisMonth"]["executions"], 0);
}

pub async fn concurrent_identical_batches_store_each_record_once(store: TestStore) {
    let app = std::sync::Arc::new(TestApp::spawn(store).await);
    let records = std::sync::Arc::new(batch("race", 20));
    let senders: Vec<_> = (0..8)
        .map(|_| {
            let (app, records) = (app.clone(), records.clone());
            tokio::spawn(async move {
                json_body(app.sync_records("alice", &records).await, StatusCode::OK).await
            })
        })
        .collect();
    let mut synced = 0;
    for sender in senders {
        let body = sender.await.expect("sender finished");
        assert_eq!(
            body["synced"].as_u64().unwrap() + body["duplicates"].as_u64().unwrap(),
            20
        );
        synced += body["synced"].as_u64().unwrap();
    }
    assert_eq!(
        synced, 20,
        "across all responses, each record was newly stored once"
    );
    assert_eq!(summary_of(&app, "alice", &[]).await["totalExecutions"], 20);
}

pub async fn sixteen_clients_with_overlapping_batches_store_each_record_once(store: TestStore) {
    // Client k sends ids k*5 .. k*5+30: every id is sent by up to six clients at once.
    let app = std::sync::Arc::new(TestApp::spawn(store).await);
    let senders: Vec<_> = (0..16)
        .map(|k| {
            let app = app.clone();
            let records: Vec<Value> = (k * 5..k * 5 + 30)
                .map(|id| client_record(&format!("overlap-{id}"), pinned_now()))
                .collect();
            tokio::spawn(async move {
                json_body(app.sync_records("alice", &records).await, StatusCode::OK).await
            })
        })
        .collect();
    let mut synced = 0;
    for sender in senders {
        synced += sender.await.expect("sender finished")["synced"]
            .as_u64()
            .unwrap();
    }
    let distinct = 15 * 5 + 30;
    assert_eq!(
        synced, distinct,
        "each distinct id was newly stored by exactly one request"
    );
    assert_eq!(
        summary_of(&app, "alice", &[]).await["totalExecutions"],
        distinct
    );
}

pub async fn the_summary_has_every_key_of_the_client_shape_with_correct_numbers(store: TestStore) {
    let app = TestApp::spawn(store).await;
    let day1 = utc(2026, 12, 1, 9, 0);
    let day2 = utc(2026, 12, 2, 9, 0);
    let records = [
        json!({"id": "1", "timestamp": day1.timestamp_millis(), "provider": "openai",
               "model": "gpt-4o", "promptTokens": 100, "completionTokens": 50, "success": true}),
        json!({"id": "2", "timestamp": day1.timestamp_millis(), "provider": "openai",
               "model": "gpt-4o-mini", "promptTokens": 10, "completionTokens": 5,
               "totalTokens": 20, "success": false, "error": "timeout"}),
        json!({"id": "3", "timestamp": day2.to_rfc3339(), "provider": "ollama",
               "model": "llama3", "promptTokens": 7, "completionTokens": 3, "success": true,
               "executionMode": "remote"}),
    ];
    json_body(app.sync_records("alice", &records).await, StatusCode::OK).await;

    let body = json_body(app.summary("alice", &[]).await, StatusCode::OK).await;

    assert_eq!(
        body,
        json!({"success": true, "summary": {
            "totalExecutions": 3, "totalTokens": 180, "totalPromptTokens": 117,
            "totalCompletionTokens": 58, "successCount": 2, "errorCount": 1,
            "byProvider": {
                "openai": {
                    "executions": 2, "tokens": 170, "models": {"gpt-4o": 1, "gpt-4o-mini": 1}
                },
                "ollama": {"executions": 1, "tokens": 10, "models": {"llama3": 1}}
            },
            "byDay": {
                "2026-12-01": {"executions": 2, "tokens": 170},
                "2026-12-02": {"executions": 1, "tokens": 10}
            }
        }})
    );
}

pub async fn summary_date_bounds_are_inclusive_in_every_format(store: TestStore) {
    let app = TestApp::spawn(store).await;
    let records = [
        client_record("before", utc(2026, 11, 30, 23, 59)),
        client_record("first-instant", utc(2026, 12, 1, 0, 0)),
        client_record("last-minute", utc(2026, 12, 1, 23, 59)),
        client_record("after", utc(2026, 12, 2, 0, 0)),
    ];
    json_body(app.sync_records("alice", &records).await, StatusCode::OK).await;
    let count = |summary: Value| summary["totalExecutions"].as_u64().unwrap();

    let plain = summary_of(
        &app,
        "alice",
        &[("startDate", "2026-12-01"), ("endDate", "2026-12-01")],
    );
    assert_eq!(count(plain.await), 2);

    let start = utc(2026, 12, 1, 0, 0).timestamp_millis().to_string();
    let end = utc(2026, 12, 2, 0, 0).timestamp_millis().to_string();
    let millis = summary_of(&app, "alice", &[("startDate", &start), ("endDate", &end)]).await;
    assert_eq!(
        count(millis),
        3,
        "epoch milliseconds are exact, both ends included"
    );

    let rfc = summary_of(
        &app,
        "alice",
        &[
            ("startDate", "2026-12-01T23:59:00Z"),
            ("endDate", "2026-12-02T00:00:00+00:00"),
        ],
    );
    assert_eq!(count(rfc.await), 2);
}

pub async fn a_late_utc_record_falls_on_the_next_day_in_berlin(store: TestStore) {
    let app = TestApp::spawn(store).await;
    let late = [client_record("late", utc(2026, 12, 1, 23, 30))];
    json_body(app.sync_records("alice", &late).await, StatusCode::OK).await;

    let in_utc = summary_of(&app, "alice", &[]).await;
    let in_berlin = summary_of(&app, "alice", &[("tz", "Europe/Berlin")]).await;

    assert_eq!(
        in_utc["byDay"],
        json!({"2026-12-01": {"executions": 1, "tokens": 200}})
    );
    assert_eq!(
        in_berlin["byDay"],
        json!({"2026-12-02": {"executions": 1, "tokens": 200}})
    );
    let berlin_day = summary_of(
        &app,
        "alice",
        &[
            ("startDate", "2026-12-02"),
            ("endDate", "2026-12-02"),
            ("tz", "Europe/Berlin"),
        ],
    );
    assert_eq!(
        berlin_day.await["totalExecutions"],
        1,
        "plain dates are read in tz"
    );
}

pub async fn stats_follow_the_clock_including_a_week_that_began_last_month(store: TestStore) {
    // The clock says Wednesday 2026-12-02 12:00 UTC; the week began Monday 2026-11-30.
    let app = TestApp::spawn(store).await;
    let mut failed = client_record("today-failed", utc(2026, 12, 2, 1, 0));
    failed["success"] = json!(false);
    let records = [
        client_record("today", utc(2026, 12, 2, 11, 0)),
        failed,
        client_record("yesterday", utc(2026, 12, 1, 10, 0)),
        client_record("monday-in-november", utc(2026, 11, 30, 10, 0)),
        client_record("sunday-last-week", utc(2026, 11, 29, 10, 0)),
        client_record("in-an-hour", utc(2026, 12, 2, 13, 0)),
    ];
    json_body(app.sync_records("alice", &records).await, StatusCode::OK).await;

    let body = json_body(app.stats("alice", &[]).await, StatusCode::OK).await;

    let window = |executions: u64, errors: u64| {
        let tokens = executions * 200;
        json!({"executions": executions, "tokens": tokens, "errors": errors})
    };
    assert_eq!(
        body,
        json!({"success": true, "stats": {
            "today": window(2, 1), "thisWeek": window(4, 1), "thisMonth": window(3, 1)
        }})
    );

    app.clock.set(utc(2026, 12, 2, 14, 0));
    let later = json_body(app.stats("alice", &[]).await, StatusCode::OK).await;
    assert_eq!(
        later["stats"]["today"],
        window(3, 1),
        "the window ends at the new now"
    );
}

pub async fn stats_weeks_can_start_on_sunday(store: TestStore) {
    let app = TestApp::spawn(store).await;
    let records = [
        client_record("sunday", utc(2026, 11, 29, 10, 0)),
        client_record("saturday", utc(2026, 11, 28, 10, 0)),
    ];
    json_body(app.sync_records("alice", &records).await, StatusCode::OK).await;

    let sunday = app.stats("alice", &[("weekStart", "sunday")]).await;
    let monday = app.stats("alice", &[("weekStart", "monday")]).await;

    assert_eq!(
        json_body(sunday, StatusCode::OK).await["stats"]["thisWeek"]["executions"],
        1
    );
    assert_eq!(
        json_body(monday, StatusCode::OK).await["stats"]["thisWeek"]["executions"],
        0
    );
}

pub async fn bad_queries_are_invalid_query(store: TestStore) {
    let app = TestApp::spawn(store).await;
    let cases: [(&str, &[(&str, &str)]); 6] = [
        ("/api/usage/summary", &[("tz", "Mars/Olympus_Mons")]),
        ("/api/usage/summary", &[("startDate", "last tuesday")]),
        ("/api/usage/summary", &[("endDate", "2026-02-30")]),
        (
            "/api/usage/summary",
            &[("startDate", "2026-12-02"), ("endDate", "2026-12-01")],
        ),
        ("/api/usage/stats", &[("weekStart", "friday")]),
        ("/api/usage/stats", &[("tz", "")]),
    ];
    for (index, (path, query)) in cases.into_iter().enumerate() {
        let response = app.get(path, Some(&token("alice")), query).await;
        if index == 5 {
            // An empty tz is the default, UTC.
            assert_eq!(response.status(), StatusCode::OK);
            continue;
        }
        expect_error(response, StatusCode::BAD_REQUEST, "INVALID_QUERY").await;
    }
}

pub async fn every_auth_failure_has_its_code(store: TestStore) {
    let app = TestApp::spawn(store).await;
    let now = chrono::Utc::now().timestamp();
    let expired = sign(&json!({"sub": "alice", "exp": now - 3600}), SECRET);
    let wrong_key = sign(
        &json!({"sub": "alice", "exp": now + 3600}),
        "another-secret",
    );
    let no_subject = sign(&json!({"exp": now + 3600}), SECRET);
    let empty_subject = sign(&json!({"sub": "", "exp": now + 3600}), SECRET);
    let not_yet = sign(
        &json!({"sub": "alice", "exp": now + 7200, "nbf": now + 3600}),
        SECRET,
    );
    // {"alg":"none","typ":"JWT"} . {"sub":"alice","exp":<far future>} . (no signature)
    let unsigned = "eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0.\
                    eyJzdWIiOiJhbGljZSIsImV4cCI6NDEwMjQ0NDgwMH0.";
    let cases = [
        (None, "NO_TOKEN"),
        (Some("Basic YWxpY2U6cGFzcw==".to_owned()), "NO_TOKEN"),
        (Some("Bearer".to_owned()), "NO_TOKEN"),
        (Some("Bearer not.a.jwt".to_owned()), "INVALID_TOKEN"),
        (Some(format!("Bearer {wrong_key}")), "INVALID_TOKEN"),
        (Some(format!("Bearer {unsigned}")), "INVALID_TOKEN"),
        (Some(format!("Bearer {no_subject}")), "INVALID_TOKEN"),
        (Some(format!("Bearer {empty_subject}")), "INVALID_TOKEN"),
        (Some(format!("Bearer {not_yet}")), "INVALID_TOKEN"),
        (
            Some(format!("Bearer {}", "a".repeat(10_000))),
            "INVALID_TOKEN",
        ),
        (Some(format!("Bearer {expired}")), "TOKEN_EXPIRED"),
    ];
    for path in ["/api/usage/summary", "/api/usage/stats"] {
        for (authorization, code) in &cases {
            let response = match authorization {
                Some(value) => app.get_with_authorization(path, value).await,
                None => app.get(path, None, &[]).await,
            };
            expect_error(response, StatusCode::UNAUTHORIZED, code).await;
        }
    }
    let body = json!({"executions": [client_record("x", pinned_now())]}).to_string();
    let refused = app
        .sync_raw(Some(&expired), body.clone().into_bytes())
        .await;
    expect_error(refused, StatusCode::UNAUTHORIZED, "TOKEN_EXPIRED").await;
    let anonymous = app.sync_raw(None, body.into_bytes()).await;
    expect_error(anonymous, StatusCode::UNAUTHORIZED, "NO_TOKEN").await;
    assert_eq!(summary_of(&app, "alice", &[]).await["totalExecutions"], 0);
}

pub async fn malformed_bodies_are_invalid_body(store: TestStore) {
    let app = TestApp::spawn(store).await;
    let bodies: [&[u8]; 7] = [
        b"{\"executions\": [",
        b"not json",
        b"{}",
        b"{\"executions\": {\"id\": \"a\"}}",
        b"{\"executions\": null}",
        b"[]",
        b"{\"executions\": [\"\xff\xfe\"]}",
    ];
    for body in bodies {
        let response = app.sync_raw(Some(&token("alice")), body.to_vec()).await;
        expect_error(response, StatusCode::BAD_REQUEST, "INVALID_BODY").await;
    }
    let empty = app
        .sync_raw(Some(&token("alice")), b"{\"executions\": []}".to_vec())
        .await;
    assert_eq!(
        json_body(empty, StatusCode::OK).await,
        json!({"success": true, "synced": 0, "duplicates": 0})
    );
}

pub async fn a_body_over_the_limit_is_payload_too_large(store: TestStore) {
    let options = AppOptions {
        max_body_bytes: 64 * 1024,
        ..AppOptions::default()
    };
    let app = TestApp::spawn_with(store, options).await;
    let records = batch("big", 40);
    let body = json!({ "executions": records }).to_string().into_bytes();
    assert!(body.len() > 64 * 1024);

    let response = app.sync_raw(Some(&token("alice")), body).await;

    expect_error(response, StatusCode::PAYLOAD_TOO_LARGE, "PAYLOAD_TOO_LARGE").await;
    assert_eq!(summary_of(&app, "alice", &[]).await["totalExecutions"], 0);
}

pub async fn a_batch_over_the_limit_is_batch_too_large(store: TestStore) {
    let options = AppOptions {
        max_batch_records: 10,
        ..AppOptions::default()
    };
    let app = TestApp::spawn_with(store, options).await;

    let over = app.sync_records("alice", &batch("over", 11)).await;
    expect_error(over, StatusCode::PAYLOAD_TOO_LARGE, "BATCH_TOO_LARGE").await;
    assert_eq!(summary_of(&app, "alice", &[]).await["totalExecutions"], 0);

    let at_limit = app.sync_records("alice", &batch("limit", 10)).await;
    assert_eq!(json_body(at_limit, StatusCode::OK).await["synced"], 10);
}

pub async fn data_survives_a_restart_on_the_same_store(store: TestStore) {
    let app = TestApp::spawn(store).await;
    json_body(
        app.sync_records("alice", &batch("kept", 5)).await,
        StatusCode::OK,
    )
    .await;

    let app = app.restart().await;

    assert_eq!(summary_of(&app, "alice", &[]).await["totalExecutions"], 5);
    let again = json_body(
        app.sync_records("alice", &batch("kept", 5)).await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(again["duplicates"], 5, "dedup holds across restarts");
}

pub async fn unknown_routes_and_methods_answer_with_json_errors(store: TestStore) {
    let app = TestApp::spawn(store).await;
    expect_error(
        app.get("/nowhere", None, &[]).await,
        StatusCode::NOT_FOUND,
        "NOT_FOUND",
    )
    .await;
    let wrong_method = app.get("/api/usage/sync", Some(&token("alice")), &[]).await;
    expect_error(
        wrong_method,
        StatusCode::METHOD_NOT_ALLOWED,
        "METHOD_NOT_ALLOWED",
    )
    .await;
}

pub async fn health_and_readiness_probes_answer(store: TestStore) {
    let app = TestApp::spawn(store).await;
    let health = app.get("/healthz", None, &[]).await;
    assert_eq!(
        json_body(health, StatusCode::OK).await,
        json!({"status": "ok"})
    );
    let ready = app.get("/readyz", None, &[]).await;
    assert_eq!(
        json_body(ready, StatusCode::OK).await,
        json!({"status": "ready"})
    );
}
