//! A user's own records: read back page by page for an export, or erased all at once.

use chrono::DateTime;
use rusqlite::types::Type;
use rusqlite::{self, Connection, Row, params};
use usage_domain::{
    ExecutionId, ExecutionMode, ExportCursor, Model, Provider, TimeRange, TokenUsage, UsageRecord,
};

/// One page of `user`'s records in `range`, after `after`, in `(timestamp, id)` order.
///
/// Text columns compare with SQLite's BINARY collation, byte by byte, as the port asks.
pub(crate) fn export_page(
    connection: &Connection,
    user: &str,
    range: TimeRange,
    after: Option<&ExportCursor>,
    limit: u32,
) -> rusqlite::Result<Vec<UsageRecord>> {
    // Without a cursor, start just before the range: no stored id is smaller than "".
    let (after_ms, after_id) = after.map_or((range.start.timestamp_millis() - 1, ""), |cursor| {
        (cursor.timestamp.timestamp_millis(), cursor.id.as_str())
    });
    let mut statement = connection.prepare_cached(
        "SELECT execution_id, timestamp_ms, provider, model, prompt_tokens, completion_tokens,
                total_tokens, duration_ms, success, error, execution_mode, context,
                has_compiled_prompt, has_response
         FROM usages
         WHERE user_id = ?1 AND timestamp_ms BETWEEN ?2 AND ?3
           AND (timestamp_ms, execution_id) > (?4, ?5)
         ORDER BY timestamp_ms, execution_id
         LIMIT ?6",
    )?;
    // The cursor's timestamp, when later, is the lower bound: the index range starts there.
    let lower = range.start.timestamp_millis().max(after_ms);
    let bounds = params![
        user,
        lower,
        range.end.timestamp_millis(),
        after_ms,
        after_id,
        limit,
    ];
    let rows = statement.query_map(bounds, usage_record)?;
    rows.collect()
}

/// Deletes every record of `user` in one statement; returns how many.
pub(crate) fn delete_user(connection: &Connection, user: &str) -> rusqlite::Result<u64> {
    let mut statement = connection.prepare_cached("DELETE FROM usages WHERE user_id = ?1")?;
    Ok(statement.execute(params![user])? as u64)
}

/// A stored row as the domain record; a row the domain would refuse is a conversion error.
fn usage_record(row: &Row<'_>) -> rusqlite::Result<UsageRecord> {
    let invalid = |column: usize| {
        move |error: usage_domain::RecordError| {
            rusqlite::Error::FromSqlConversionFailure(column, Type::Text, Box::new(error))
        }
    };
    let timestamp_ms: i64 = row.get(1)?;
    let mode: String = row.get(10)?;
    Ok(UsageRecord {
        id: ExecutionId::parse(row.get::<_, String>(0)?).map_err(invalid(0))?,
        timestamp: DateTime::from_timestamp_millis(timestamp_ms)
            .ok_or(rusqlite::Error::IntegralValueOutOfRange(1, timestamp_ms))?,
        provider: Provider::parse(row.get::<_, String>(2)?).map_err(invalid(2))?,
        model: Model::parse(row.get::<_, String>(3)?).map_err(invalid(3))?,
        tokens: TokenUsage::new(count(row, 4)?, count(row, 5)?, count(row, 6)?),
        duration_ms: row.get(7)?,
        success: row.get(8)?,
        error: row.get(9)?,
        execution_mode: ExecutionMode::parse(&mode).unwrap_or_default(),
        context: row.get(11)?,
        has_compiled_prompt: row.get(12)?,
        has_response: row.get(13)?,
    })
}

/// A token count column; the domain bounds them far below `i64::MAX`.
fn count(row: &Row<'_>, column: usize) -> rusqlite::Result<u64> {
    let value: i64 = row.get(column)?;
    u64::try_from(value).map_err(|_| rusqlite::Error::IntegralValueOutOfRange(column, value))
}
