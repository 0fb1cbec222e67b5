//! The HTTP suite on MongoDB: a real server named by `USAGE_TEST_MONGODB_URI` (the
//! wire-protocol stand-in in CI). Without one, every test fails and says how to start it.

usage_tests::http_suite!(usage_tests::http::TestStore::Mongo);
