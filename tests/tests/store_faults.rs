//! When the store fails mid-load the service answers 503 with `Retry-After`, stays up, never
//! answers 2xx for a record it did not store, and recovers by itself when the store returns.

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::Value;
use usage_tests::gate::Gate;
use usage_tests::http::{
    AppOptions, TestApp, TestStore, expect_error, json_body, mongo_server_address, mongo_url,
    pinned_now, unique_name,
};
use usage_tests::records::client_record;

fn batch(prefix: &str, count: usize) -> Vec<Value> {
    (0..count)
        .map(|i| client_record(&format!("{prefix}-{i}"), pinned_now()))
        .collect()
}

async fn total(app: &TestApp, user: &str) -> u64 {
    let body = json_body(app.summary(user, &[]).await, StatusCode::OK).await;
    body["summary"]["totalExecutions"]
        .as_u64()
        .expect("a count")
}

async fn expect_unavailable(response: reqwest::Response) {
    let retry_after = response.headers().get("retry-after").cloned();
    expect_error(
        response,
        StatusCode::SERVICE_UNAVAILABLE,
        "STORAGE_UNAVAILABLE",
    )
    .await;
    assert!(retry_after.is_some(), "a 503 says when to retry");
}

/// An app on a fresh SQLite file, the file's path, and ten records of alice's stored.
async fn sqlite_app_with_ten_records() -> (TestApp, String) {
    let app = TestApp::spawn(TestStore::Sqlite).await;
    let path = app
        .settings
        .database_url
        .trim_start_matches("sqlite://")
        .to_owned();
    json_body(
        app.sync_records("alice", &batch("before", 10)).await,
        StatusCode::OK,
    )
    .await;
    (app, path)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_locked_sqlite_file_answers_503_and_the_retry_stores_each_record_once() {
    let (app, path) = sqlite_app_with_ten_records().await;

    // Another process holds the write lock longer than the service's busy timeout.
    let blocker = rusqlite::Connection::open(&path).expect("the database opens");
    blocker
        .execute_batch("BEGIN EXCLUSIVE")
        .expect("the write lock is taken");
    let during = batch("during", 20);
    expect_unavailable(app.sync_records("alice", &during).await).await;
    assert_eq!(
        total(&app, "alice").await,
        10,
        "readers still work, and nothing was half-stored"
    );

    blocker
        .execute_batch("COMMIT")
        .expect("the lock is released");
    let retry = json_body(app.sync_records("alice", &during).await, StatusCode::OK).await;
    assert_eq!(retry["synced"], 20);
    assert_eq!(total(&app, "alice").await, 30);
}

/// Files whose inode refuses every write (`chattr +i`), even through descriptors already
/// open, as a file on a disk that went read-only does; writable again when dropped.
struct Unwritable(Vec<std::path::PathBuf>);

impl Unwritable {
    fn make(files: Vec<std::path::PathBuf>) -> Self {
        let status = std::process::Command::new("chattr")
            .arg("+i")
            .args(&files)
            .status();
        assert!(
            status.as_ref().is_ok_and(|status| status.success()),
            "chattr +i failed ({status:?}): this test needs root (or CAP_LINUX_IMMUTABLE) and \
             a temporary directory on ext4, xfs or btrfs"
        );
        Self(files)
    }
}

impl Drop for Unwritable {
    fn drop(&mut self) {
        let _ = std::process::Command::new("chattr")
            .arg("-i")
            .args(&self.0)
            .status();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sqlite_file_that_refuses_writes_answers_503_and_the_retry_stores_each_record_once() {
    let (app, path) = sqlite_app_with_ten_records().await;

    // The database and its write-ahead log refuse writes. (Not the `-shm` index: SQLite maps
    // it into memory, and a write fault there is a SIGBUS no process survives.)
    let unwritable = Unwritable::make(vec![path.clone().into(), format!("{path}-wal").into()]);
    let during = batch("during", 20);
    expect_unavailable(app.sync_records("alice", &during).await).await;
    expect_unavailable(app.sync_records("alice", &during).await).await;
    assert_eq!(total(&app, "alice").await, 10, "readers still work");

    drop(unwritable);
    let retry = json_body(app.sync_records("alice", &during).await, StatusCode::OK).await;
    assert_eq!(
        retry["synced"], 20,
        "nothing of the refused batch was kept: {retry}"
    );
    assert_eq!(total(&app, "alice").await, 30);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_mongodb_server_answers_503_and_service_resumes_when_it_returns() {
    let gate = Gate::start(mongo_server_address()).await;
    let url = mongo_url(&unique_name("outage")).replacen(
        &mongo_server_address().to_string(),
        &gate.address.to_string(),
        1,
    );
    let options = AppOptions {
        database_url: Some(url),
        ..AppOptions::default()
    };
    let app = TestApp::spawn_with(TestStore::Mongo, options).await;
    json_body(
        app.sync_records("alice", &batch("before", 10)).await,
        StatusCode::OK,
    )
    .await;

    gate.close();
    let during = batch("during", 20);
    expect_unavailable(app.sync_records("alice", &during).await).await;
    expect_unavailable(app.summary("alice", &[]).await).await;
    let ready = app.get("/readyz", None, &[]).await;
    assert_eq!(ready.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(
        json_body(app.get("/healthz", None, &[]).await, StatusCode::OK).await["status"],
        "ok"
    );

    gate.open();
    let deadline = Instant::now() + Duration::from_secs(30);
    while app.get("/readyz", None, &[]).await.status() != StatusCode::OK {
        assert!(
            Instant::now() < deadline,
            "the service did not recover within 30 seconds"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let retry = json_body(app.sync_records("alice", &during).await, StatusCode::OK).await;
    assert_eq!(
        retry["synced"].as_u64().unwrap() + retry["duplicates"].as_u64().unwrap(),
        20
    );
    assert_eq!(
        total(&app, "alice").await,
        30,
        "every record stored exactly once"
    );
}
