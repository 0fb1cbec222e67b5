//! The table and its indexes, versioned with `PRAGMA user_version`.

use rusqlite::{self, Connection};

/// Each entry moves the schema one version up; entries are never edited once released.
pub(crate) const MIGRATIONS: &[&str] = &[
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
    // Version 2. Pre-aggregates per (user, 15-minute UTC bucket, provider, model), so a
    // summary or stats reads at most one row per bucket and series instead of every record
    // (see `buckets.rs`). `bucket_ms` is the bucket's start: the timestamp floored to a
    // multiple of 900,000 ms, negative timestamps included. Triggers keep the sums equal to
    // the raw rows in the same transaction as every insert, update and delete, whichever code
    // runs them; an insert that ON CONFLICT skips fires no trigger, so duplicates never count
    // twice, and a bucket whose last record is deleted is deleted too. Existing rows are
    // summed once here. With summaries off the raw rows, the wide covering index of version 1
    // only cost inserts; a narrow one serves the few raw rows at range edges, and exports in
    // (timestamp, id) order.
    "DROP INDEX usages_user_time;
    CREATE INDEX usages_user_time_id ON usages (user_id, timestamp_ms, execution_id);
    CREATE TABLE usage_buckets (
        user_id TEXT NOT NULL,
        bucket_ms INTEGER NOT NULL,
        provider TEXT NOT NULL,
        model TEXT NOT NULL,
        executions INTEGER NOT NULL,
        successes INTEGER NOT NULL,
        prompt_tokens INTEGER NOT NULL,
        completion_tokens INTEGER NOT NULL,
        total_tokens INTEGER NOT NULL,
        PRIMARY KEY (user_id, bucket_ms, provider, model)
    ) WITHOUT ROWID;
    INSERT INTO usage_buckets
        SELECT user_id, timestamp_ms - ((timestamp_ms % 900000) + 900000) % 900000 AS bucket,
               provider, model, COUNT(*), SUM(success <> 0), SUM(prompt_tokens),
               SUM(completion_tokens), SUM(total_tokens)
        FROM usages
        GROUP BY user_id, bucket, provider, model;
    CREATE TRIGGER usages_add_to_bucket AFTER INSERT ON usages BEGIN
        INSERT INTO usage_buckets VALUES (
            NEW.user_id,
            NEW.timestamp_ms - ((NEW.timestamp_ms % 900000) + 900000) % 900000,
            NEW.provider, NEW.model, 1, NEW.success <> 0, NEW.prompt_tokens,
            NEW.completion_tokens, NEW.total_tokens
        )
        ON CONFLICT (user_id, bucket_ms, provider, model) DO UPDATE SET
            executions = executions + 1,
            successes = successes + excluded.successes,
            prompt_tokens = prompt_tokens + excluded.prompt_tokens,
            completion_tokens = completion_tokens + excluded.completion_tokens,
            total_tokens = total_tokens + excluded.total_tokens;
    END;
    CREATE TRIGGER usages_remove_from_bucket AFTER DELETE ON usages BEGIN
        UPDATE usage_buckets SET
            executions = executions - 1,
            successes = successes - (OLD.success <> 0),
            prompt_tokens = prompt_tokens - OLD.prompt_tokens,
            completion_tokens = completion_tokens - OLD.completion_tokens,
            total_tokens = total_tokens - OLD.total_tokens
        WHERE user_id = OLD.user_id
          AND bucket_ms = OLD.timestamp_ms - ((OLD.timestamp_ms % 900000) + 900000) % 900000
          AND provider = OLD.provider AND model = OLD.model;
        DELETE FROM usage_buckets
        WHERE user_id = OLD.user_id
          AND bucket_ms = OLD.timestamp_ms - ((OLD.timestamp_ms % 900000) + 900000) % 900000
          AND provider = OLD.provider AND model = OLD.model
          AND executions = 0;
    END;
    CREATE TRIGGER usages_move_between_buckets
    AFTER UPDATE OF user_id, timestamp_ms, provider, model, success, prompt_tokens,
        completion_tokens, total_tokens ON usages BEGIN
        UPDATE usage_buckets SET
            executions = executions - 1,
            successes = successes - (OLD.success <> 0),
            prompt_tokens = prompt_tokens - OLD.prompt_tokens,
            completion_tokens = completion_tokens - OLD.completion_tokens,
            total_tokens = total_tokens - OLD.total_tokens
        WHERE user_id = OLD.user_id
          AND bucket_ms = OLD.timestamp_ms - ((OLD.timestamp_ms % 900000) + 900000) % 900000
          AND provider = OLD.provider AND model = OLD.model;
        DELETE FROM usage_buckets
        WHERE user_id = OLD.user_id
          AND bucket_ms = OLD.timestamp_ms - ((OLD.timestamp_ms % 900000) + 900000) % 900000
          AND provider = OLD.provider AND model = OLD.model
          AND executions = 0;
        INSERT INTO usage_buckets VALUES (
            NEW.user_id,
            NEW.timestamp_ms - ((NEW.timestamp_ms % 900000) + 900000) % 900000,
            NEW.provider, NEW.model, 1, NEW.success <> 0, NEW.prompt_tokens,
            NEW.completion_tokens, NEW.total_tokens
        )
        ON CONFLICT (user_id, bucket_ms, provider, model) DO UPDATE SET
            executions = executions + 1,
            successes = successes + excluded.successes,
            prompt_tokens = prompt_tokens + excluded.prompt_tokens,
            completion_tokens = completion_tokens + excluded.completion_tokens,
            total_tokens = total_tokens + excluded.total_tokens;
    END;",
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
