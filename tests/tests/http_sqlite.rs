//! The HTTP suite on the embedded SQLite store.

usage_tests::http_suite!(usage_tests::http::TestStore::Sqlite);
