//! The binary's operator commands, run as an operator runs them: `import` of the web
//! client's backup file and of NDJSON, `purge`, and their failures.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::Arc;

use chrono::{TimeDelta, Utc};
use serde_json::{Value, json};
use usage_domain::{ExportCursor, TimeRange, UsageRecord, UsageRepository, UserId};
use usage_sqlite::SqliteUsageRepository;

const BINARY: &str = env!("CARGO_BIN_EXE_usage-service");

/// A throwaway working directory whose store is `usage.sqlite3` in it.
struct Workspace {
    dir: tempfile::TempDir,
}

impl Workspace {
    fn new() -> Self {
        Self {
            dir: tempfile::tempdir().expect("temporary directory"),
        }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn run(&self, args: &[&str]) -> Output {
        Command::new(BINARY)
            .current_dir(self.dir.path())
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("USAGE_DATABASE_URL", "sqlite://usage.sqlite3")
            .args(args)
            .output()
            .expect("the binary runs")
    }

    /// Runs a command that must succeed and returns its standard output.
    fn succeed(&self, args: &[&str]) -> String {
        let output = self.run(args);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(output.status.success(), "{args:?} failed: {stderr}");
        assert_eq!(
            stderr, "",
            "no progress bar off a terminal, and no log lines below warn"
        );
        String::from_utf8(output.stdout).expect("UTF-8 output")
    }

    /// Runs a command that must fail and returns its standard error.
    fn fail(&self, args: &[&str]) -> String {
        let output = self.run(args);
        assert!(!output.status.success(), "{args:?} should fail");
        assert_eq!(output.status.code(), Some(1));
        String::from_utf8(output.stderr).expect("UTF-8 output")
    }

    /// Every record of `user` in the store, oldest first.
    fn stored(&self, user: &str) -> Vec<UsageRecord> {
        let path = self.path("usage.sqlite3");
        let runtime = tokio::runtime::Runtime::new().expect("a runtime");
        runtime.block_on(async {
            let repository: Arc<dyn UsageRepository> =
                Arc::new(SqliteUsageRepository::open(&path).expect("the store opens"));
            export_all(&repository, &UserId::parse(user).unwrap()).await
        })
    }
}

async fn export_all(repository: &Arc<dyn UsageRepository>, user: &UserId) -> Vec<UsageRecord> {
    let everything = TimeRange {
        start: Utc::now() - TimeDelta::days(3_650),
        end: Utc::now() + TimeDelta::days(3_650),
    };
    let mut records: Vec<UsageRecord> = Vec::new();
    loop {
        let after = records.last().map(ExportCursor::after);
        let page = repository
            .export_page(user, everything, after, 1_000)
            .await
            .expect("the store reads");
        let done = page.len() < 1_000;
        records.extend(page);
        if done {
            return records;
        }
    }
}

/// The figures of an import's tally, by their names: `stored: 12` gives `("stored", 12)`.
fn tally(stdout: &str, name: &str) -> u64 {
    stdout
        .lines()
        .find_map(|line| line.strip_prefix(name)?.strip_prefix(": ")?.parse().ok())
        .unwrap_or_else(|| panic!("no {name} in the tally:\n{stdout}"))
}

/// One execution as the client's IndexedDB holds it, prompt and response included.
fn execution(id: &str, minutes_ago: i64) -> Value {
    json!({
        "id": id,
        "timestamp": (Utc::now() - TimeDelta::minutes(minutes_ago)).timestamp_millis(),
        "provider": if minutes_ago % 2 == 0 { "openai" } else { "anthropic" },
        "model": "some-model",
        "promptTokens": 100,
        "completionTokens": 20,
        "totalTokens": 120,
        "duration": 1500,
        "success": minutes_ago % 7 != 0,
        "executionMode": "local",
        "compiledPrompt": format!("PROMPT-TEXT {}", "p".repeat(500)),
        "response": format!("RESPONSE-TEXT {}", "r".repeat(500)),
        "synced": true,
    })
}

/// A backup in the client's shape: 3,000 executions, of which 2,900 are distinct and valid,
/// 60 repeat an earlier id, 25 have no provider and 15 are older than retention.
fn write_backup(path: &Path) {
    let mut executions: Vec<Value> = (0..2_900)
        .map(|i| execution(&format!("exec-{i:04}"), i))
        .collect();
    for i in 0..60 {
        executions.push(execution(&format!("exec-{:04}", i * 3), i * 3));
    }
    for i in 0..25 {
        let mut record = execution(&format!("bad-{i}"), i);
        record.as_object_mut().unwrap().remove("provider");
        executions.push(record);
    }
    for i in 0..15 {
        executions.push(execution(&format!("ancient-{i}"), 200 * 24 * 60));
    }
    let backup = json!({
        "chatMessages": [{"role": "user", "content": "CHAT-TEXT ".repeat(1_000)}],
        "executions": executions,
        "settings": {"theme": "dark", "apiKeys": {"openai": "sk-not-a-real-key"}},
    });
    std::fs::write(path, serde_json::to_vec_pretty(&backup).unwrap()).unwrap();
}

#[test]
fn importing_a_client_backup_stores_valid_records_once_and_tallies_the_rest() {
    let workspace = Workspace::new();
    let backup = workspace.path("backup.json");
    write_backup(&backup);
    let file = backup.to_str().unwrap();

    let first = workspace.succeed(&["import", file, "--user", "alice"]);

    assert_eq!(tally(&first, "read"), 3_000);
    assert_eq!(tally(&first, "stored"), 2_900);
    assert_eq!(tally(&first, "duplicates"), 60);
    assert_eq!(tally(&first, "rejected"), 40);
    assert!(
        first.contains("rejected by reason: missing 25, too_old 15"),
        "{first}"
    );
    assert!(
        first.contains("  executions[2960]: provider is required"),
        "rejections are named by their index in executions: {first}"
    );
    assert!(first.contains("  ... and 20 more"), "{first}");

    let stored = workspace.stored("alice");
    assert_eq!(stored.len(), 2_900);
    let newest = stored.last().unwrap();
    assert_eq!(newest.id.as_str(), "exec-0000");
    assert_eq!(newest.provider.as_str(), "openai");
    assert_eq!(newest.tokens.total(), 120);
    assert!(newest.has_compiled_prompt && newest.has_response);
    assert!(workspace.stored("bob").is_empty());

    let again = workspace.succeed(&["import", file, "--user", "alice"]);
    assert_eq!(tally(&again, "stored"), 0);
    assert_eq!(tally(&again, "duplicates"), 2_960);
    assert_eq!(workspace.stored("alice").len(), 2_900);
}

#[test]
fn ndjson_is_imported_line_by_line_and_rejections_name_their_line() {
    let workspace = Workspace::new();
    let lines = [
        execution("n-1", 1).to_string(),
        String::new(),
        r#"{"id": "n-2", "model": "m"}"#.to_owned(),
        "not json at all".to_owned(),
        execution("n-3", 3).to_string(),
        execution("n-1", 1).to_string(),
    ];
    for name in ["records.ndjson", "records-without-extension.json"] {
        let path = workspace.path(name);
        std::fs::write(&path, lines.join("\n")).unwrap();
        let user = name.split('.').next().unwrap();

        let stdout = workspace.succeed(&["import", path.to_str().unwrap(), "--user", user]);

        assert_eq!(tally(&stdout, "read"), 5, "{name}");
        assert_eq!(tally(&stdout, "stored"), 2, "{name}");
        assert_eq!(tally(&stdout, "duplicates"), 1, "{name}");
        assert_eq!(tally(&stdout, "rejected"), 2, "{name}");
        assert!(
            stdout.contains("  line 3: provider is required"),
            "{stdout}"
        );
        assert!(stdout.contains("  line 4: "), "{stdout}");
        assert_eq!(workspace.stored(user).len(), 2);
    }
}

#[test]
fn purge_erases_only_that_users_records() {
    let workspace = Workspace::new();
    let path = workspace.path("records.ndjson");
    let lines: Vec<String> = (0..5)
        .map(|i| execution(&format!("p-{i}"), i).to_string())
        .collect();
    std::fs::write(&path, lines.join("\n")).unwrap();
    for user in ["alice", "bob"] {
        workspace.succeed(&["import", path.to_str().unwrap(), "--user", user]);
    }

    let stdout = workspace.succeed(&["purge", "--user", "alice"]);

    assert_eq!(stdout.trim(), "erased 5 records of user alice");
    assert!(workspace.stored("alice").is_empty());
    assert_eq!(workspace.stored("bob").len(), 5);
    let again = workspace.succeed(&["purge", "--user", "alice"]);
    assert_eq!(again.trim(), "erased 0 records of user alice");
}

#[test]
fn import_failures_are_one_clear_line_and_a_non_zero_exit() {
    let workspace = Workspace::new();
    let truncated = workspace.path("truncated.json");
    std::fs::write(&truncated, r#"{"executions": [{"id": "a", "provider": "p""#).unwrap();
    let ndjson = workspace.path("records.json");
    std::fs::write(&ndjson, execution("x", 1).to_string()).unwrap();
    let cases: [(Vec<&str>, &str); 4] = [
        (
            vec!["import", "missing.json", "--user", "alice"],
            "cannot read missing.json",
        ),
        (
            vec!["import", truncated.to_str().unwrap(), "--user", "alice"],
            "is not a readable backup file",
        ),
        (
            vec![
                "import",
                ndjson.to_str().unwrap(),
                "--user",
                "alice",
                "--format",
                "backup",
            ],
            "has no \"executions\" array",
        ),
        (vec!["purge", "--user", " "], "is not a user id"),
    ];
    for (args, expected) in cases {
        let stderr = workspace.fail(&args);
        assert_eq!(stderr.lines().count(), 1, "one line: {stderr}");
        assert!(stderr.starts_with("error: "), "{stderr}");
        assert!(stderr.contains(expected), "{args:?}: {stderr}");
    }
}

#[test]
fn a_store_that_cannot_be_opened_fails_the_command() {
    let workspace = Workspace::new();
    let output = Command::new(BINARY)
        .current_dir(workspace.dir.path())
        .env_clear()
        .env("USAGE_DATABASE_URL", "postgres://nowhere/usage")
        .args(["purge", "--user", "alice"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("sqlite://"), "{stderr}");
}
