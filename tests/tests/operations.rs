//! The operator and developer surface over HTTP: metrics, the OpenAPI document, erasure and
//! export, CORS and rate limiting. Routes that touch the store run on both stores.

/// Expands to one `#[tokio::test]` per store for each `async fn(TestStore)` named.
macro_rules! on_both_stores {
    ($($case:ident),+ $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $case() {
                    super::$case(usage_tests::http::TestStore::Sqlite).await;
                }
            )+
        }
        mod mongo {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $case() {
                    super::$case(usage_tests::http::TestStore::Mongo).await;
                }
            )+
        }
    };
}

on_both_stores!(
    erasure_deletes_only_the_callers_records_and_says_how_many,
    an_ndjson_export_holds_only_the_callers_records_in_order_without_their_text,
    a_csv_export_honours_the_date_filters_in_the_time_zone,
);

use chrono::TimeDelta;
use reqwest::StatusCode;
use serde_json::{Value, json};
use usage_tests::http::{TestApp, TestStore, expect_error, json_body, pinned_now};
use usage_tests::records::client_record;

/// The value of the sample `name` (with its labels, exactly as rendered) in a scrape.
fn sample(text: &str, name: &str) -> Option<f64> {
    text.lines()
        .find_map(|line| line.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
}

async fn scrape(app: &TestApp) -> String {
    let response = app.get("/metrics", None, &[]).await;
    assert_eq!(response.status(), StatusCode::OK);
    let content_type = response.headers()["content-type"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(content_type.starts_with("text/plain"), "{content_type}");
    response.text().await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_count_requests_records_and_auth_rejections_without_a_token() {
    let app = TestApp::spawn(TestStore::Sqlite).await;
    let at = pinned_now() - TimeDelta::minutes(5);
    let old = pinned_now() - TimeDelta::days(400);
    let records = [
        client_record("a", at),
        client_record("a", at),
        json!({"id": "no-provider", "model": "m"}),
        client_record("too-old", old),
    ];
    json_body(app.sync_records("alice", &records).await, StatusCode::OK).await;
    json_body(
        app.sync_records("alice", &records[..1]).await,
        StatusCode::OK,
    )
    .await;
    let refused = app.get("/api/usage/stats", None, &[]).await;
    assert_eq!(refused.status(), StatusCode::UNAUTHORIZED);

    let text = scrape(&app).await;

    let expectations = [
        ("usage_records_stored_total", 1.0),
        ("usage_records_duplicate_total", 2.0),
        ("usage_records_rejected_total{reason=\"missing\"}", 1.0),
        ("usage_records_rejected_total{reason=\"too_old\"}", 1.0),
        ("usage_records_rejected_total{reason=\"malformed\"}", 0.0),
        (
            "usage_http_requests_total{method=\"POST\",route=\"/api/usage/sync\",status=\"200\"}",
            2.0,
        ),
        (
            "usage_http_request_duration_seconds_count{method=\"POST\",\
             route=\"/api/usage/sync\",status=\"200\"}",
            2.0,
        ),
        ("usage_auth_rejections_total{reason=\"missing\"}", 1.0),
        ("usage_auth_accepted_total", 2.0),
        (
            "usage_store_errors_total{kind=\"unavailable\",operation=\"insert_new\"}",
            0.0,
        ),
    ];
    for (name, expected) in expectations {
        assert_eq!(sample(&text, name), Some(expected), "{name} in:\n{text}");
    }
    assert!(!text.contains("alice"), "no user id is ever a label");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_label_unknown_paths_as_unmatched() {
    let app = TestApp::spawn(TestStore::Sqlite).await;
    let missing = app.get("/no/such/secret-looking/path", None, &[]).await;
    assert_eq!(missing.status(), StatusCode::NOT_FOUND);

    let text = scrape(&app).await;

    assert!(
        !text.contains("secret-looking"),
        "paths never become labels"
    );
    let unmatched = "usage_http_requests_total{method=\"GET\",route=\"unmatched\",status=\"404\"}";
    assert_eq!(sample(&text, unmatched), Some(1.0), "{text}");
}

/// `count` client records of `prefix`, a minute apart, ending five minutes before the clock.
fn records(prefix: &str, count: usize) -> Vec<Value> {
    (0..count)
        .map(|i| {
            let at = pinned_now() - TimeDelta::minutes(5 + i as i64);
            client_record(&format!("{prefix}-{i:05}"), at)
        })
        .collect()
}

async fn sync_all(app: &TestApp, user: &str, records: &[Value]) {
    for batch in records.chunks(500) {
        json_body(app.sync_records(user, batch).await, StatusCode::OK).await;
    }
}

async fn total_executions(app: &TestApp, user: &str) -> u64 {
    let body = json_body(app.summary(user, &[]).await, StatusCode::OK).await;
    body["summary"]["totalExecutions"].as_u64().unwrap()
}

/// The body of a successful export, after checking that it streamed with chunked encoding.
async fn export_text(app: &TestApp, user: &str, query: &[(&str, &str)], content: &str) -> String {
    let response = app.export(user, query).await;
    assert_eq!(response.status(), StatusCode::OK);
    let headers = response.headers().clone();
    assert!(
        headers["content-type"]
            .to_str()
            .unwrap()
            .starts_with(content),
        "{headers:?}"
    );
    assert!(
        headers.get("content-length").is_none(),
        "the body is streamed, not sized up front: {headers:?}"
    );
    response.text().await.unwrap()
}

fn ndjson_ids(text: &str) -> Vec<String> {
    text.lines()
        .map(|line| {
            let record: Value = serde_json::from_str(line).expect("each line is JSON");
            record["id"].as_str().unwrap().to_owned()
        })
        .collect()
}

async fn erasure_deletes_only_the_callers_records_and_says_how_many(store: TestStore) {
    let app = TestApp::spawn(store).await;
    sync_all(&app, "alice", &records("shared", 3)).await;
    sync_all(&app, "bob", &records("shared", 2)).await;

    let first = json_body(app.erase("alice").await, StatusCode::OK).await;
    let again = json_body(app.erase("alice").await, StatusCode::OK).await;

    assert_eq!(first, json!({"success": true, "deleted": 3}));
    assert_eq!(again, json!({"success": true, "deleted": 0}));
    assert_eq!(total_executions(&app, "alice").await, 0);
    assert_eq!(
        total_executions(&app, "bob").await,
        2,
        "bob keeps his records"
    );
    let anonymous = app
        .request(reqwest::Method::DELETE, "/api/usage")
        .send()
        .await
        .unwrap();
    expect_error(anonymous, StatusCode::UNAUTHORIZED, "NO_TOKEN").await;
}

async fn an_ndjson_export_holds_only_the_callers_records_in_order_without_their_text(
    store: TestStore,
) {
    let app = TestApp::spawn(store).await;
    let alice = records("alice", 12);
    sync_all(&app, "alice", &alice).await;
    sync_all(&app, "bob", &records("bob", 4)).await;

    let text = export_text(&app, "alice", &[], "application/x-ndjson").await;

    // Oldest first: the records were made newest first.
    let expected: Vec<String> = (0..12).rev().map(|i| format!("alice-{i:05}")).collect();
    assert_eq!(ndjson_ids(&text), expected);
    assert!(!text.contains("bob"), "another user's records never appear");
    assert!(!text.contains("prompt text") && !text.contains("response text"));
    let first: Value = serde_json::from_str(text.lines().next().unwrap()).unwrap();
    assert_eq!(
        first,
        json!({
            "id": "alice-00011",
            "timestamp": (pinned_now() - TimeDelta::minutes(16)).timestamp_millis(),
            "provider": "openai", "model": "gpt-4o",
            "promptTokens": 120, "completionTokens": 80, "totalTokens": 200,
            "duration": 2345.6, "success": true, "error": null, "executionMode": "local",
            "context": "notes/today.md", "hasCompiledPrompt": true, "hasResponse": true,
        })
    );
    let nobody = export_text(&app, "carol", &[], "application/x-ndjson").await;
    assert_eq!(nobody, "", "a user without records gets an empty export");
}

async fn a_csv_export_honours_the_date_filters_in_the_time_zone(store: TestStore) {
    let app = TestApp::spawn(store).await;
    // 2026-12-02 12:00 UTC is 13:00 in Berlin; these fall on 2026-12-01 and 2026-12-02 there.
    let at = |hours_before: i64| pinned_now() - TimeDelta::hours(hours_before);
    let alice = [
        client_record("berlin-dec-1-late", at(13) - TimeDelta::minutes(30)),
        client_record("berlin-dec-2-early", at(12) - TimeDelta::minutes(30)),
        client_record("berlin-dec-2-noon", at(1)),
    ];
    sync_all(&app, "alice", &alice).await;
    sync_all(&app, "bob", &[client_record("bob-dec-2", at(2))]).await;

    let query = [
        ("format", "csv"),
        ("startDate", "2026-12-02"),
        ("endDate", "2026-12-02"),
        ("tz", "Europe/Berlin"),
    ];
    let text = export_text(&app, "alice", &query, "text/csv").await;

    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(
        lines[0],
        "id,timestamp,provider,model,promptTokens,completionTokens,totalTokens,duration,\
         success,error,executionMode,context,hasCompiledPrompt,hasResponse"
    );
    let ids: Vec<&str> = lines[1..]
        .iter()
        .map(|line| line.split(',').next().unwrap())
        .collect();
    assert_eq!(ids, ["berlin-dec-2-early", "berlin-dec-2-noon"]);
    let noon_ms = at(1).timestamp_millis();
    assert_eq!(
        lines[2],
        format!(
            "berlin-dec-2-noon,{noon_ms},openai,gpt-4o,120,80,200,2345.6,true,,local,\
             notes/today.md,true,true"
        )
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_export_larger_than_a_page_streams_every_record_once() {
    let app = TestApp::spawn(TestStore::Sqlite).await;
    let alice = records("alice", 1_234);
    sync_all(&app, "alice", &alice).await;

    let text = export_text(
        &app,
        "alice",
        &[("format", "ndjson")],
        "application/x-ndjson",
    )
    .await;

    let ids = ndjson_ids(&text);
    assert_eq!(ids.len(), 1_234);
    let mut distinct = ids.clone();
    distinct.sort_unstable();
    distinct.dedup();
    assert_eq!(distinct.len(), 1_234, "no record appears twice");
    assert_eq!(ids.first().map(String::as_str), Some("alice-01233"));
    assert_eq!(ids.last().map(String::as_str), Some("alice-00000"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_export_refuses_a_bad_format_or_date_and_needs_a_token() {
    let app = TestApp::spawn(TestStore::Sqlite).await;
    for query in [
        [("format", "xml"), ("tz", "UTC")],
        [("format", "csv"), ("startDate", "yesterday")],
        [("format", "csv"), ("tz", "Mars/Olympus")],
    ] {
        let response = app.export("alice", &query).await;
        expect_error(response, StatusCode::BAD_REQUEST, "INVALID_QUERY").await;
    }
    let anonymous = app.get("/api/usage/export", None, &[]).await;
    expect_error(anonymous, StatusCode::UNAUTHORIZED, "NO_TOKEN").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_export_never_reaches_past_retention() {
    let app = TestApp::spawn(TestStore::Sqlite).await;
    sync_all(&app, "alice", &records("kept", 2)).await;
    // Ninety days later the records have left the retention period (the purge has not run).
    app.clock.set(pinned_now() + TimeDelta::days(90));

    let text = export_text(
        &app,
        "alice",
        &[("startDate", "2000-01-01")],
        "application/x-ndjson",
    )
    .await;

    assert_eq!(text, "");
}

fn with_origins(origins: &str) -> impl FnOnce(&mut usage_api::settings::Settings) {
    let origins = usage_api::cors::CorsOrigins::parse(origins).expect("valid origins");
    move |settings| settings.cors_allowed_origins = origins
}

fn header<'a>(response: &'a reqwest::Response, name: &str) -> Option<&'a str> {
    response
        .headers()
        .get(name)
        .map(|value| value.to_str().unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_configured_origins_no_cors_headers_are_sent() {
    let app = TestApp::spawn(TestStore::Sqlite).await;
    let response = app
        .request(reqwest::Method::GET, "/api/usage/stats")
        .bearer_auth(usage_tests::http::token("alice"))
        .header("origin", "https://app.example")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(header(&response, "access-control-allow-origin"), None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_configured_origin_gets_preflight_answers_and_cors_headers_even_on_errors() {
    let origins = "https://app.example, http://localhost:5173";
    let app = TestApp::spawn_with_settings(TestStore::Sqlite, with_origins(origins)).await;

    let preflight = app
        .request(reqwest::Method::OPTIONS, "/api/usage/sync")
        .header("origin", "https://app.example")
        .header("access-control-request-method", "POST")
        .header(
            "access-control-request-headers",
            "authorization, content-type",
        )
        .send()
        .await
        .unwrap();
    assert_eq!(preflight.status(), StatusCode::OK);
    assert_eq!(
        header(&preflight, "access-control-allow-origin"),
        Some("https://app.example")
    );
    let methods = header(&preflight, "access-control-allow-methods").unwrap_or_default();
    assert!(
        methods.contains("POST") && methods.contains("DELETE"),
        "{methods}"
    );
    assert_eq!(header(&preflight, "access-control-allow-credentials"), None);

    let refused = app
        .request(reqwest::Method::GET, "/api/usage/stats")
        .header("origin", "http://localhost:5173")
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        header(&refused, "access-control-allow-origin"),
        Some("http://localhost:5173"),
        "the page can read why it was refused"
    );
    let exposed = header(&refused, "access-control-expose-headers").unwrap_or_default();
    assert!(exposed.contains("x-request-id"), "{exposed}");

    let stranger = app
        .request(reqwest::Method::GET, "/api/usage/stats")
        .bearer_auth(usage_tests::http::token("alice"))
        .header("origin", "https://evil.example")
        .send()
        .await
        .unwrap();
    assert_eq!(header(&stranger, "access-control-allow-origin"), None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_user_over_the_rate_limit_gets_429_with_retry_after_and_others_are_unaffected() {
    let app = TestApp::spawn_with_settings(TestStore::Sqlite, |settings| {
        settings.rate_limit_per_minute = 3;
    })
    .await;

    for _ in 0..3 {
        json_body(app.stats("alice", &[]).await, StatusCode::OK).await;
    }
    let limited = app.stats("alice", &[]).await;
    let retry_after: u64 = header(&limited, "retry-after").unwrap().parse().unwrap();
    assert!(
        (1..=20).contains(&retry_after),
        "a third of a minute at most: {retry_after}"
    );
    expect_error(limited, StatusCode::TOO_MANY_REQUESTS, "RATE_LIMITED").await;

    json_body(app.stats("bob", &[]).await, StatusCode::OK).await;
    for _ in 0..5 {
        let probe = app.get("/healthz", None, &[]).await;
        assert_eq!(probe.status(), StatusCode::OK, "probes are never limited");
    }
    let anonymous = app.get("/api/usage/stats", None, &[]).await;
    expect_error(anonymous, StatusCode::UNAUTHORIZED, "NO_TOKEN").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_openapi_document_describes_every_route_the_app_answers_with_bearer_auth() {
    let app = TestApp::spawn(TestStore::Sqlite).await;
    let response = app.get("/openapi.json", None, &[]).await;
    assert_eq!(header(&response, "content-type"), Some("application/json"));
    let document = json_body(response, StatusCode::OK).await;

    assert!(document["openapi"].as_str().unwrap().starts_with('3'));
    assert_eq!(
        document["components"]["securitySchemes"]["bearer"]["scheme"],
        "bearer"
    );
    let paths = document["paths"].as_object().unwrap();
    let mut operations = 0;
    for (path, item) in paths {
        for method in item.as_object().unwrap().keys() {
            operations += 1;
            let method = reqwest::Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
            let mut request = app
                .request(method.clone(), path)
                .bearer_auth(usage_tests::http::token("openapi-user"));
            if method == reqwest::Method::POST {
                request = request.json(&json!({"executions": []}));
            }
            let status = request.send().await.unwrap().status();
            assert!(
                status.is_success(),
                "{method} {path} is documented and must be served: {status}"
            );
        }
    }
    assert_eq!(operations, 9, "{paths:?}");
    for (path, item) in paths {
        for (method, operation) in item.as_object().unwrap() {
            let responses = &operation["responses"];
            if !path.starts_with("/api/usage") {
                assert!(responses["401"].is_null(), "{method} {path} needs no token");
                continue;
            }
            for status in ["401", "429", "500", "503"] {
                let schema = &responses[status]["content"]["application/json"]["schema"]["$ref"];
                assert_eq!(
                    schema, "#/components/schemas/ErrorBody",
                    "{method} {path} documents {status} with the error body"
                );
            }
        }
    }
    for route in [
        "/api/usage/sync",
        "/api/usage/export",
        "/api/usage",
        "/metrics",
    ] {
        assert!(paths.contains_key(route), "{route}");
    }
}
