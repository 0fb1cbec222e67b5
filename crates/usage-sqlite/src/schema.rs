//! The table and its indexes, versioned with `PRAGMA user_version`.

use rusqlite::{self, Connection};

/// Each entry moves the schema one version up; entries are never edited once released.
const MIGRATIONS: &[&str] = &[
    // Version 1. `timestamp_ms` is epoch milliseconds. The unique key makes inserts
    // idempotent per user; the covering index answers summaries and stats without touching
    // the table; the plain timestamp index serves retention purges.
    "CREATE TABLE usages (
        user_id TEXT NOT NULL,
        execution_id TEXT NOT NULL,
        timestamp_ms INTEGER NOT NULL,
        provider TEXT NOT NULL,
        model TEXT NOT NULL,
        prompt_tokens INTEGER NOT NULL,
        completion_tokens INTEGER NOT NULL,
        total_tokens INTEGER NOT NULL,
        duration_ms REAL NOT NULL,
        success INTEGER NOT NULL,
        error TEXT,
        execution_mode TEXT NOT NULL,
        context TEXT,
        has_compiled_prompt INTEGER NOT NULL,
        has_response INTEGER NOT NULL,
        created_at_ms INTEGER NOT NULL,
        updated_at_ms INTEGER NOT NULL
    );
    CREATE UNIQUE INDEX usages_user_execution ON usages (user_id, execution_id);
    CREATE INDEX usages_user_time ON usages (
        user_id, timestamp_ms, provider, model, success,
        prompt_tokens, completion_tokens, total_tokens
    );
    CREATE INDEX usages_time ON usages (timestamp_ms);",
];

/// Brings the database up to the latest version, each step in its own transaction.
pub(crate) fn migrate(connection: &mut Connection) -> rusqlite::Result<()> {
    let current: i64 = connection.query_row("PRAGMA user_version", [], |row| row.get(0))?;
    for (version, migration) in (1_i64..).zip(MIGRATIONS).skip(current as usize) {
        let transaction = connection.transaction()?;
        transaction.execute_batch(migration)?;
        transaction.pragma_update(None, "user_version", version)?;
        transaction.commit()?;
        tracing::info!(version, "database schema migrated");
    }
    Ok(())
}

/// Settings every pooled connection gets before first use.
pub(crate) fn configure(connection: &mut Connection) -> rusqlite::Result<()> {
    connection.busy_timeout(std::time::Duration::from_secs(5))?;
    let mode: String =
        connection.pragma_update_and_check(None, "journal_mode", "WAL", |row| row.get(0))?;
    if !mode.eq_ignore_ascii_case("wal") {
        tracing::warn!(
            mode,
            "SQLite refused WAL mode; readers will wait for writers"
        );
    }
    // FULL makes every commit durable before the 2xx that reports it.
    connection.pragma_update(None, "synchronous", "FULL")?;
    super::local_day::register(connection)
}
