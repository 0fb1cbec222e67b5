//! The repository contract on MongoDB: a real server named by `USAGE_TEST_MONGODB_URI`
//! (the wire-protocol stand-in in CI). Without one, every test fails and says how to start it.

use std::sync::Arc;

use usage_domain::Retention;
use usage_mongo::MongoUsageRepository;
use usage_tests::contract::Repository;
use usage_tests::http::{mongo_url, unique_name};

async fn fresh() -> (Repository, ()) {
    // The suite's records are dated late 2026; a long retention keeps a real server's TTL
    // monitor from deleting them while a test runs, whatever today's date.
    let retention = Retention::days(20_000).expect("valid retention");
    let repository = MongoUsageRepository::connect(&mongo_url(&unique_name("contract")), retention)
        .await
        .expect("the MongoDB server answers");
    (Arc::new(repository), ())
}

usage_tests::repository_contract!(fresh());
