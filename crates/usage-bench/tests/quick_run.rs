//! The load driver's `--quick` run against the real service binary: it must load, sync and
//! query without a single failed request, and its report must count what it stored. Nothing
//! here judges speed; the figures of a debug build mean nothing.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

/// `usage-service` from the same build as this test's driver binary.
fn service_binary(driver: &Path) -> PathBuf {
    let service = driver.with_file_name("usage-service");
    assert!(
        service.exists(),
        "{} is missing: build it first (cargo build -p usage-api), as the workspace's test \
         run does",
        service.display()
    );
    service
}

#[test]
fn a_quick_run_stores_and_counts_every_record_it_sends() {
    let driver = PathBuf::from(env!("CARGO_BIN_EXE_usage-bench"));
    let scratch = tempfile::tempdir().expect("a scratch directory");
    let out = scratch.path().join("results.json");
    let output = Command::new(&driver)
        .arg("--quick")
        .arg("--concurrency=1,4")
        .arg("--service-bin")
        .arg(service_binary(&driver))
        .arg("--scratch-dir")
        .arg(scratch.path())
        .arg("--out")
        .arg(&out)
        .output()
        .expect("the driver starts");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "the driver failed:\n{stderr}");

    let report: Value =
        serde_json::from_slice(&std::fs::read(&out).expect("the report is written"))
            .expect("the report is JSON");
    for phase in ["ingest", "store_bound"] {
        let results = report[phase].as_array().expect("a list of results");
        assert_eq!(results.len(), 2, "{phase}: one result per concurrency");
        for result in results {
            assert_eq!(result["failures"], 0, "{phase}: {result}");
            let records = result["records"].as_u64().expect("a record count");
            assert!(records > 0, "{phase}: {result}");
            assert_eq!(records % 50, 0, "{phase}: whole batches of 50 are stored");
        }
    }
    let sizes = report["queries"].as_array().expect("a list of sizes");
    assert_eq!(sizes.len(), 2);
    for size in sizes {
        assert_eq!(
            size["summary_total"], size["records"],
            "the summary counts every loaded record"
        );
    }
    assert!(report["peak_rss_mb"].as_f64().expect("peak memory") > 0.0);
    assert_eq!(report["targets"].as_array().map(Vec::len), Some(4));
}
