//! `usage_local_day(epoch_ms, tz)`: the calendar day of an instant in an IANA time zone.
//!
//! SQLite knows no time zones, so grouping by local day needs this function. It returns the
//! day as a number (days since 0001-01-01, day 1) so that grouping compares integers.

use chrono::{DateTime, Datelike, NaiveDate};
use chrono_tz::Tz;
use rusqlite::functions::{Context, FunctionFlags};
use rusqlite::{self, Connection};

pub(crate) const FUNCTION: &str = "usage_local_day";

pub(crate) fn register(connection: &Connection) -> rusqlite::Result<()> {
    let flags = FunctionFlags::SQLITE_UTF8
        | FunctionFlags::SQLITE_DETERMINISTIC
        | FunctionFlags::SQLITE_INNOCUOUS;
    connection.create_scalar_function(FUNCTION, 2, flags, local_day)
}

fn local_day(ctx: &Context<'_>) -> rusqlite::Result<i32> {
    let millis: i64 = ctx.get(0)?;
    // The zone is the same for every row of a query: parse it once and keep it with the query.
    let tz = ctx.get_or_create_aux(1, |value| -> Result<Tz, BoxError> {
        Ok(value.as_str()?.parse::<Tz>()?)
    })?;
    let at = DateTime::from_timestamp_millis(millis)
        .ok_or_else(|| rusqlite::Error::UserFunctionError("timestamp out of range".into()))?;
    Ok(at.with_timezone(&*tz).date_naive().num_days_from_ce())
}

type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Turns the function's result back into a date.
pub(crate) fn to_date(days_from_ce: i32) -> Option<NaiveDate> {
    NaiveDate::from_num_days_from_ce_opt(days_from_ce)
}
