//! The real binary under faults: killed mid-load, and stopped while a request is in flight.
//!
//! The client treats a 2xx as "stored" and re-sends anything else, so after a SIGKILL and a
//! restart, re-sending every unacknowledged batch must leave each record stored exactly once,
//! whether only the service was killed or the database server with it.

mod support;

use std::collections::HashSet;
use std::io::{Read, Write};
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{TimeDelta, Utc};
use serde_json::{Value, json};
use support::{listening_address, signal, start};
use usage_tests::http::{SECRET, TestStore, token};
use usage_tests::standin::StandIn;

const USER: &str = "crash-user";

/// How much load a crash test puts on the store.
#[derive(Clone, Copy)]
struct Load {
    batches: usize,
    per_batch: usize,
    /// Batches acknowledged before the kill.
    kill_after: usize,
}

/// The client's real batch size, on the embedded store.
const SQLITE_LOAD: Load = Load {
    batches: 60,
    per_batch: 50,
    kill_after: 12,
};
/// Smaller: the MongoDB stand-in slows down sharply past a few hundred documents.
const MONGO_LOAD: Load = Load {
    batches: 12,
    per_batch: 20,
    kill_after: 3,
};

/// Batch `b`, record `i` has `promptTokens` = b * per_batch + i + 1, so sums reveal any
/// loss or repeat.
fn batch(b: usize, per_batch: usize) -> Value {
    let at = (Utc::now() - TimeDelta::minutes(5)).timestamp_millis();
    let records: Vec<Value> = (0..per_batch)
        .map(|i| {
            json!({
                "id": format!("b{b}-r{i}"), "timestamp": at, "provider": "openai",
                "model": "gpt-4o", "promptTokens": b * per_batch + i + 1,
                "completionTokens": 1, "success": true,
                "compiledPrompt": "p".repeat(2_000), "response": "r".repeat(2_000),
            })
        })
        .collect();
    json!({ "executions": records })
}

struct Service {
    child: std::process::Child,
    base: String,
}

fn serve(dir: &Path, database_url: &str) -> Service {
    let mut child = start(
        dir,
        &[
            ("USAGE_HTTP_ADDR", "127.0.0.1:0"),
            ("USAGE_JWT_SECRET", SECRET),
            ("USAGE_DATABASE_URL", database_url),
        ],
    );
    let address = listening_address(&mut child);
    Service {
        child,
        base: format!("http://{address}"),
    }
}

async fn send(client: &reqwest::Client, base: &str, body: &Value) -> Option<Value> {
    let response = client
        .post(format!("{base}/api/usage/sync"))
        .bearer_auth(token(USER))
        .json(body)
        .send()
        .await
        .ok()?;
    if !response.status().is_success() {
        return None;
    }
    response.json().await.ok()
}

/// Loads the service, kills it (and `server`, when given) with SIGKILL mid-load, restarts
/// both, re-sends every unacknowledged batch and checks each record is stored once.
async fn crash_and_recover(database_url: &str, load: Load, mut server: Option<&mut StandIn>) {
    let dir = tempfile::tempdir().unwrap();
    let first = serve(dir.path(), database_url);
    let client = reqwest::Client::new();
    let acked = Arc::new(Mutex::new(HashSet::new()));
    let next = Arc::new(AtomicUsize::new(0));

    // Eight clients sync concurrently; the service is killed once a dozen batches are in.
    let workers: Vec<_> = (0..8)
        .map(|_| {
            let (client, base) = (client.clone(), first.base.clone());
            let (acked, next) = (acked.clone(), next.clone());
            tokio::spawn(async move {
                loop {
                    let b = next.fetch_add(1, Ordering::SeqCst);
                    if b >= load.batches {
                        return;
                    }
                    if send(&client, &base, &batch(b, load.per_batch))
                        .await
                        .is_some()
                    {
                        acked.lock().unwrap().insert(b);
                    }
                }
            })
        })
        .collect();
    while acked.lock().unwrap().len() < load.kill_after {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    signal(&first.child, "-KILL");
    if let Some(server) = server.as_deref_mut() {
        server.kill();
    }
    for worker in workers {
        worker.await.unwrap();
    }
    let mut first = first;
    let _ = first.child.wait();
    let acked_before = acked.lock().unwrap().clone();
    assert!(
        acked_before.len() < load.batches,
        "the kill landed mid-load"
    );

    // Restarted on the same store, the clients re-send every batch without a 2xx.
    if let Some(server) = server {
        server.restart();
    }
    let second = serve(dir.path(), database_url);
    for b in (0..load.batches).filter(|b| !acked_before.contains(b)) {
        let answer = send(&client, &second.base, &batch(b, load.per_batch))
            .await
            .expect("the retry is stored");
        let settled = answer["synced"].as_u64().unwrap() + answer["duplicates"].as_u64().unwrap();
        assert_eq!(settled, load.per_batch as u64, "batch {b}: {answer}");
    }

    let summary: Value = client
        .get(format!("{}/api/usage/summary", second.base))
        .bearer_auth(token(USER))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let total = (load.batches * load.per_batch) as u64;
    assert_eq!(summary["summary"]["totalExecutions"], total, "{summary}");
    assert_eq!(
        summary["summary"]["totalPromptTokens"],
        total * (total + 1) / 2
    );
    assert_eq!(summary["summary"]["totalCompletionTokens"], total);
    let again = send(&client, &second.base, &batch(0, load.per_batch))
        .await
        .unwrap();
    assert_eq!(
        again["duplicates"], load.per_batch,
        "every record is already stored once"
    );

    let mut second = second;
    signal(&second.child, "-TERM");
    assert_eq!(second.child.wait().unwrap().code(), Some(0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_a_sigkill_mid_load_every_record_is_stored_exactly_once_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("crash.sqlite3").display());
    crash_and_recover(&url, SQLITE_LOAD, None).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_a_sigkill_mid_load_every_record_is_stored_exactly_once_on_mongodb() {
    let dir = tempfile::tempdir().unwrap();
    let url = TestStore::Mongo.fresh_url(dir.path());
    crash_and_recover(&url, MONGO_LOAD, None).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_a_sigkill_of_the_service_and_mongodb_together_every_record_is_stored_once() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = StandIn::start(dir.path());
    let url = server.uri("crash");
    crash_and_recover(&url, MONGO_LOAD, Some(&mut server)).await;
}

#[test]
fn sigterm_lets_a_request_already_accepted_finish() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("drain.sqlite3").display());
    let mut service = serve(dir.path(), &url);
    let address = service.base.trim_start_matches("http://").to_owned();
    let body = batch(0, 50).to_string();
    let (head_and_half, rest) = body.split_at(body.len() / 2);

    // The request head and half the body are in before the signal; the rest comes after.
    let mut stream = std::net::TcpStream::connect(&address).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    write!(
        stream,
        "POST /api/usage/sync HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer {}\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{}",
        token(USER),
        body.len(),
        head_and_half
    )
    .unwrap();
    std::thread::sleep(Duration::from_millis(300));
    signal(&service.child, "-TERM");
    std::thread::sleep(Duration::from_millis(300));
    stream.write_all(rest.as_bytes()).unwrap();

    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    assert!(
        response.starts_with("HTTP/1.1 200"),
        "the in-flight request completed: {response}"
    );
    assert!(response.contains("\"synced\":50"), "{response}");
    assert_eq!(
        service.child.wait().unwrap().code(),
        Some(0),
        "then the service exits 0"
    );
    assert!(
        std::net::TcpStream::connect(&address).is_err(),
        "and no longer listens"
    );
}
