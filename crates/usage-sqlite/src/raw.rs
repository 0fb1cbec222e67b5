//! Summaries and totals computed from the raw `usages` rows of a millisecond range.
//!
//! The pre-aggregates in [`crate::buckets`] answer whole 15-minute buckets; these queries
//! answer the rest (the cut buckets at a range's edges, and buckets a local midnight cuts)
//! and are the reference the aggregates are tested against.

use chrono_tz::Tz;
use rusqlite::{self, Connection, params};
use usage_domain::{SummaryGroup, WindowTotals};

use crate::local_day;

/// `user`'s records with `from <= timestamp_ms <= to`, grouped by (day in `tz`, provider,
/// model).
pub(crate) fn summary(
    connection: &Connection,
    user: &str,
    (from, to): (i64, i64),
    tz: Tz,
) -> rusqlite::Result<Vec<SummaryGroup>> {
    let sql = format!(
        "SELECT {}(timestamp_ms, ?4) AS day, provider, model, COUNT(*), SUM(success),
                SUM(prompt_tokens), SUM(completion_tokens), SUM(total_tokens)
         FROM usages
         WHERE user_id = ?1 AND timestamp_ms BETWEEN ?2 AND ?3
         GROUP BY day, provider, model",
        local_day::FUNCTION
    );
    let mut statement = connection.prepare_cached(&sql)?;
    let rows = statement.query_map(params![user, from, to, tz.name()], |row| {
        let day: i32 = row.get(0)?;
        Ok(SummaryGroup {
            day: local_day::to_date(day).unwrap_or_default(),
            provider: row.get(1)?,
            model: row.get(2)?,
            executions: count(row.get(3)?),
            successes: count(row.get(4)?),
            prompt_tokens: count(row.get(5)?),
            completion_tokens: count(row.get(6)?),
            total_tokens: count(row.get(7)?),
        })
    })?;
    rows.collect()
}

/// Executions, tokens and errors of `user`'s records with `from <= timestamp_ms <= to`.
pub(crate) fn totals(
    connection: &Connection,
    user: &str,
    (from, to): (i64, i64),
) -> rusqlite::Result<WindowTotals> {
    let mut statement = connection.prepare_cached(
        "SELECT COUNT(*), SUM(total_tokens), SUM(NOT success)
         FROM usages
         WHERE user_id = ?1 AND timestamp_ms BETWEEN ?2 AND ?3",
    )?;
    statement.query_row(params![user, from, to], |row| {
        Ok(WindowTotals {
            executions: count(row.get(0)?),
            tokens: count(row.get(1)?),
            errors: count(row.get(2)?),
        })
    })
}

/// SQL sums are NULL over no rows and never negative here.
pub(crate) fn count(value: Option<i64>) -> u64 {
    value
        .and_then(|value| u64::try_from(value).ok())
        .unwrap_or(0)
}
