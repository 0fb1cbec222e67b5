//! Hostile and slow clients: every outcome is 200, 400, 408 or 413 with SPEC's error body,
//! the service stays up, and nothing crafted reaches the store as a query operator.

use std::io::{Read, Write};
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::{Value, json};
use usage_tests::http::{AppOptions, TestApp, TestStore, json_body, pinned_now, token};

fn operator() -> Value {
    json!({"$gt": ""})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn operator_objects_in_every_field_are_rejected_as_wrong_types() {
    let app = TestApp::spawn(TestStore::Sqlite).await;
    let fields = [
        "id",
        "timestamp",
        "provider",
        "model",
        "promptTokens",
        "completionTokens",
        "totalTokens",
        "duration",
        "success",
        "error",
        "executionMode",
        "context",
    ];
    let records: Vec<Value> = fields
        .iter()
        .map(|field| {
            let mut record = json!({"id": format!("x-{field}"), "provider": "p", "model": "m"});
            record[*field] = operator();
            record
        })
        .collect();

    let body = json_body(app.sync_records("alice", &records).await, StatusCode::OK).await;

    assert_eq!(body["synced"], 0);
    assert_eq!(
        body["errors"].as_array().map(Vec::len),
        Some(fields.len()),
        "{body}"
    );
    for (path, param) in [
        ("/api/usage/summary", "startDate"),
        ("/api/usage/summary", "endDate"),
        ("/api/usage/summary", "tz"),
        ("/api/usage/stats", "tz"),
        ("/api/usage/stats", "weekStart"),
    ] {
        let response = app
            .get(path, Some(&token("alice")), &[(param, "{\"$gt\": \"\"}")])
            .await;
        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{path}?{param}");
        let bracketed_name = format!("{param}[$gt]");
        let bracketed = app
            .get(path, Some(&token("alice")), &[(&bracketed_name, "")])
            .await;
        assert_eq!(
            bracketed.status(),
            StatusCode::OK,
            "unknown parameters are ignored"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_bodies_get_spec_answers_and_the_service_stays_up() {
    let options = AppOptions {
        max_body_bytes: 4 * 1024 * 1024,
        ..AppOptions::default()
    };
    let app = TestApp::spawn_with(TestStore::Sqlite, options).await;
    let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
    let deep_in_record = format!(
        "{{\"executions\": [{{\"id\": \"d\", \"provider\": \"p\", \"model\": \"m\", \
         \"compiledPrompt\": {}{}}}]}}",
        "[".repeat(5_000),
        "]".repeat(5_000)
    );
    let huge_id =
        json!({"executions": [{"id": "i".repeat(3_000_000), "provider": "p", "model": "m"}]});
    let numbers = json!({"executions": [
        {"id": "n1", "provider": "p", "model": "m", "promptTokens": 1e308},
        {"id": "n2", "provider": "p", "model": "m", "promptTokens": -0.5},
        {"id": "n3", "provider": "p", "model": "m", "promptTokens": "NaN"},
        {"id": "n4", "provider": "p", "model": "m", "duration": "Infinity"},
        {"id": "n5", "provider": "p", "model": "m", "timestamp": -8_640_000_000_000_001_i64},
        {"id": "n6", "provider": "p", "model": "m", "totalTokens": 18_446_744_073_709_551_615_u64},
    ]});
    // (body, status, records stored): a deeply nested prompt is still a valid record whose
    // prompt is only noted as present.
    let cases: Vec<(Vec<u8>, StatusCode, u64)> = vec![
        (deep.into_bytes(), StatusCode::BAD_REQUEST, 0),
        (deep_in_record.into_bytes(), StatusCode::OK, 1),
        (huge_id.to_string().into_bytes(), StatusCode::OK, 0),
        (numbers.to_string().into_bytes(), StatusCode::OK, 0),
        (
            b"{\"executions\": [], \"executions\": []}".to_vec(),
            StatusCode::BAD_REQUEST,
            0,
        ),
        (vec![0xff; 1_000], StatusCode::BAD_REQUEST, 0),
        (
            vec![b' '; 5 * 1024 * 1024],
            StatusCode::PAYLOAD_TOO_LARGE,
            0,
        ),
        (
            b"{\"executions\": [{\"id\": \"a\", \"id\": \"b\"}]}".to_vec(),
            StatusCode::OK,
            0,
        ),
    ];
    for (index, (body, status, stored)) in cases.into_iter().enumerate() {
        let response = app.sync_raw(Some(&token("alice")), body).await;
        let answer = json_body(response, status).await;
        if status == StatusCode::OK {
            assert_eq!(answer["synced"], stored, "case {index}: {answer}");
        } else {
            assert_eq!(answer["success"], false, "case {index}");
            assert!(answer["code"].is_string(), "case {index}");
        }
    }
    let record = usage_tests::records::client_record("ok", pinned_now());
    let alive = app.sync_records("alice", &[record]).await;
    assert_eq!(json_body(alive, StatusCode::OK).await["synced"], 1);
}

/// An app with `options`, and a raw TCP connection to it whose reads give up after 20 s, well
/// after any deadline the tests set, so a server that never cuts off fails the test.
async fn raw_connection(options: AppOptions) -> (TestApp, std::net::TcpStream) {
    let app = TestApp::spawn_with(TestStore::Sqlite, options).await;
    let stream = std::net::TcpStream::connect(app.address).expect("connects");
    stream
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    (app, stream)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_trickles_its_body_is_cut_off_with_408() {
    let options = AppOptions {
        body_timeout_seconds: 2,
        ..AppOptions::default()
    };
    let (_app, mut stream) = raw_connection(options).await;
    let started = Instant::now();
    write!(
        stream,
        "POST /api/usage/sync HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer {}\r\n\
         Content-Type: application/json\r\nContent-Length: 100000\r\n\r\n{{\"executions\": [",
        token("alice")
    )
    .unwrap();

    let mut response = String::new();
    let _ = stream.read_to_string(&mut response);

    assert!(response.starts_with("HTTP/1.1 408"), "got: {response}");
    assert!(response.contains("REQUEST_TIMEOUT"), "got: {response}");
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "cut off near the 2-second deadline"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_never_finishes_its_headers_is_cut_off() {
    let options = AppOptions {
        header_timeout_seconds: 1,
        ..AppOptions::default()
    };
    let (_app, mut stream) = raw_connection(options).await;
    let started = Instant::now();
    // A request line and one header, then silence: the blank line that ends a head never comes.
    write!(stream, "POST /api/usage/sync HTTP/1.1\r\nHost: t\r\n").unwrap();

    let mut response = String::new();
    let read = stream.read_to_string(&mut response);

    assert!(read.is_ok(), "the server closes the connection: {read:?}");
    assert!(response.starts_with("HTTP/1.1 408"), "got: {response:?}");
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "cut off near the 1-second deadline, not by the test's own read timeout"
    );
}
