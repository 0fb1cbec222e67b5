//! The HTTP suite on the embedded SQLite store.

usage_tests::http_suite!(usage_tests::http::TestStore::Sqlite);

/// Privacy, checked on the bytes at rest: no prompt or response text reaches the database
/// file or its write-ahead log.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prompt_and_response_text_never_reach_the_database_files() {
    use reqwest::StatusCode;
    use usage_tests::http::{TestApp, TestStore, json_body, pinned_now};
    use usage_tests::records::client_record;

    let app = TestApp::spawn(TestStore::Sqlite).await;
    let records: Vec<_> = (0..20)
        .map(|i| client_record(&format!("p-{i}"), pinned_now()))
        .collect();
    json_body(app.sync_records("alice", &records).await, StatusCode::OK).await;

    let path = app.settings.database_url.trim_start_matches("sqlite://");
    let dir = std::path::Path::new(path)
        .parent()
        .expect("the database has a directory");
    let mut files = 0;
    for entry in std::fs::read_dir(dir).expect("the directory lists") {
        let bytes = std::fs::read(entry.expect("an entry").path()).expect("the file reads");
        let text = String::from_utf8_lossy(&bytes);
        assert!(!text.contains("prompt text") && !text.contains("response text"));
        assert!(!text.contains("helpful assistant"));
        files += 1;
    }
    assert!(files >= 2, "the database and its log were both checked");
}
