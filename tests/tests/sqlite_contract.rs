//! The repository contract on the embedded SQLite store.

use std::sync::Arc;

use usage_sqlite::SqliteUsageRepository;
use usage_tests::contract::Repository;

async fn fresh() -> (Repository, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("temporary directory");
    let repository = SqliteUsageRepository::open(&dir.path().join("usage.sqlite3"))
        .expect("a new database opens");
    (Arc::new(repository), dir)
}

usage_tests::repository_contract!(fresh());
