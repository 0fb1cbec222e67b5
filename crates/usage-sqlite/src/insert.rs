//! The INSERT of a request's records, many rows per statement.
//!
//! The trigger that maintains the aggregates makes SQLite keep a statement journal (a copy
//! of each page a statement touches, so the statement can be undone alone); with one
//! statement per row that copying cost as much as the insert itself. With up to
//! [`ROWS_PER_STATEMENT`] rows per statement, each page is copied once per statement.

use std::collections::HashMap;

use rusqlite::{self, Connection, Statement, ToSql};
use usage_domain::UsageRecord;

/// Rows of one INSERT statement; 100 rows bind 1,402 parameters, far below SQLite's limit.
const ROWS_PER_STATEMENT: usize = 100;
/// Parameters bound per row (user and time are bound once per statement).
const COLUMNS_PER_ROW: usize = 14;

/// The SQL text of the INSERT of each row count used so far, built once.
#[derive(Debug, Default)]
pub(crate) struct InsertSql {
    by_rows: HashMap<usize, String>,
}

impl InsertSql {
    /// The INSERT of `rows` rows: `?1` is the user, `?2` the time, then 14 parameters a row.
    fn get(&mut self, rows: usize) -> &str {
        self.by_rows.entry(rows).or_insert_with(|| build(rows))
    }
}

fn build(rows: usize) -> String {
    let mut sql = String::from(
        "INSERT INTO usages (
            user_id, execution_id, timestamp_ms, provider, model, prompt_tokens,
            completion_tokens, total_tokens, duration_ms, success, error, execution_mode,
            context, has_compiled_prompt, has_response, created_at_ms, updated_at_ms
        ) VALUES ",
    );
    for row in 0..rows {
        let first = 3 + row * COLUMNS_PER_ROW;
        let columns: Vec<String> = (first..first + COLUMNS_PER_ROW)
            .map(|index| format!("?{index}"))
            .collect();
        let separator = if row == 0 { "" } else { ", " };
        sql += &format!("{separator}(?1, {}, ?2, ?2)", columns.join(", "));
    }
    sql + " ON CONFLICT (user_id, execution_id) DO NOTHING"
}

/// Inserts the records of one request that are not stored yet; returns how many.
pub(crate) fn insert_records(
    connection: &Connection,
    sql: &mut InsertSql,
    user: &str,
    records: &[UsageRecord],
    now: i64,
) -> rusqlite::Result<u64> {
    let mut inserted = 0;
    for chunk in records.chunks(ROWS_PER_STATEMENT) {
        let mut statement = connection.prepare_cached(sql.get(chunk.len()))?;
        statement.raw_bind_parameter(1, user)?;
        statement.raw_bind_parameter(2, now)?;
        for (row, record) in chunk.iter().enumerate() {
            bind_row(&mut statement, 3 + row * COLUMNS_PER_ROW, record)?;
        }
        // Rows skipped by ON CONFLICT are not counted, nor are the trigger's writes.
        inserted += statement.raw_execute()? as u64;
    }
    Ok(inserted)
}

/// Binds a record's columns after `user_id`, in the order of the INSERT, from `first` on.
fn bind_row(
    statement: &mut Statement<'_>,
    first: usize,
    record: &UsageRecord,
) -> rusqlite::Result<()> {
    let values: [&dyn ToSql; COLUMNS_PER_ROW] = [
        &record.id.as_str(),
        &record.timestamp.timestamp_millis(),
        &record.provider.as_str(),
        &record.model.as_str(),
        &sql_int(record.tokens.prompt()),
        &sql_int(record.tokens.completion()),
        &sql_int(record.tokens.total()),
        &record.duration_ms,
        &record.success,
        &record.error,
        &record.execution_mode.as_str(),
        &record.context,
        &record.has_compiled_prompt,
        &record.has_response,
    ];
    for (offset, value) in values.into_iter().enumerate() {
        statement.raw_bind_parameter(first + offset, value)?;
    }
    Ok(())
}

/// Token counts are bounded far below `i64::MAX` by the domain.
fn sql_int(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}
