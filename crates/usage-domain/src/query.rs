//! Dashboard queries, parsed from the strings of a query string into typed values.

use chrono::{DateTime, NaiveDate, Utc};
use chrono_tz::Tz;

use crate::window::{end_of_day, start_of_day};

/// Why a query cannot be answered; the message is shown to the caller.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum QueryError {
    #[error("{param} must be an RFC 3339 date-time, a YYYY-MM-DD date or epoch milliseconds")]
    BadDate { param: &'static str },
    #[error("tz must be an IANA time zone name such as Europe/Berlin")]
    BadTimeZone,
    #[error("weekStart must be monday or sunday")]
    BadWeekStart,
    #[error("startDate must not be after endDate")]
    StartAfterEnd,
}

/// The day a calendar week begins on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum WeekStart {
    #[default]
    Monday,
    Sunday,
}

/// `GET /api/usage/summary` after parsing: optional inclusive bounds and a time zone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SummaryQuery {
    pub start: Option<DateTime<Utc>>,
    pub end: Option<DateTime<Utc>>,
    pub tz: Tz,
}

/// `GET /api/usage/stats` after parsing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StatsQuery {
    pub tz: Tz,
    pub week_start: WeekStart,
}

impl SummaryQuery {
    /// Parses the raw parameters; a plain date is read in `tz`.
    pub fn parse(
        start: Option<&str>,
        end: Option<&str>,
        tz: Option<&str>,
    ) -> Result<Self, QueryError> {
        let tz = parse_tz(tz)?;
        let start = non_empty(start)
            .map(|raw| {
                parse_bound(raw, tz, Bound::Start).ok_or(QueryError::BadDate { param: "startDate" })
            })
            .transpose()?;
        let end = non_empty(end)
            .map(|raw| {
                parse_bound(raw, tz, Bound::End).ok_or(QueryError::BadDate { param: "endDate" })
            })
            .transpose()?;
        if let (Some(start), Some(end)) = (start, end)
            && start > end
        {
            return Err(QueryError::StartAfterEnd);
        }
        Ok(Self { start, end, tz })
    }
}

impl StatsQuery {
    pub fn parse(tz: Option<&str>, week_start: Option<&str>) -> Result<Self, QueryError> {
        let week_start = match non_empty(week_start)
            .map(str::to_ascii_lowercase)
            .as_deref()
        {
            None | Some("monday") => WeekStart::Monday,
            Some("sunday") => WeekStart::Sunday,
            Some(_) => return Err(QueryError::BadWeekStart),
        };
        Ok(Self {
            tz: parse_tz(tz)?,
            week_start,
        })
    }
}

#[derive(Clone, Copy)]
enum Bound {
    Start,
    End,
}

fn non_empty(raw: Option<&str>) -> Option<&str> {
    raw.map(str::trim).filter(|raw| !raw.is_empty())
}

fn parse_tz(raw: Option<&str>) -> Result<Tz, QueryError> {
    match non_empty(raw) {
        None => Ok(Tz::UTC),
        Some(name) => name.parse().map_err(|_| QueryError::BadTimeZone),
    }
}

fn parse_bound(raw: &str, tz: Tz, bound: Bound) -> Option<DateTime<Utc>> {
    if !raw.is_empty() && raw.bytes().all(|b| b.is_ascii_digit()) {
        return raw.parse().ok().and_then(DateTime::from_timestamp_millis);
    }
    if let Ok(date) = NaiveDate::parse_from_str(raw, "%Y-%m-%d") {
        return Some(match bound {
            Bound::Start => start_of_day(date, tz),
            Bound::End => end_of_day(date, tz),
        });
    }
    parse_date_time(raw).or_else(|| {
        restore_offset_plus(raw)
            .as_deref()
            .and_then(parse_date_time)
    })
}

fn parse_date_time(raw: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(raw)
        .ok()
        .map(|at| at.with_timezone(&Utc))
}

/// An unencoded `+` in a query string arrives as a space: `...T10:00:00 01:00` was meant as
/// `...T10:00:00+01:00`. Only the space before a trailing `HH:MM` offset is given back.
fn restore_offset_plus(raw: &str) -> Option<String> {
    let (date_time, offset) = raw.rsplit_once(' ')?;
    let is_offset = offset.len() == 5
        && offset.as_bytes()[2] == b':'
        && offset
            .bytes()
            .enumerate()
            .all(|(i, b)| i == 2 || b.is_ascii_digit());
    (is_offset && date_time.contains('T')).then(|| format!("{date_time}+{offset}"))
}

#[cfg(test)]
mod tests {
    use chrono::{TimeDelta, TimeZone};

    use super::*;

    #[test]
    fn plain_dates_cover_whole_local_days() {
        let query = SummaryQuery::parse(
            Some("2026-12-01"),
            Some("2026-12-01"),
            Some("Europe/Berlin"),
        )
        .unwrap();
        assert_eq!(
            query.start,
            Some(Utc.with_ymd_and_hms(2026, 11, 30, 23, 0, 0).unwrap())
        );
        let end = Utc.with_ymd_and_hms(2026, 12, 1, 23, 0, 0).unwrap() - TimeDelta::milliseconds(1);
        assert_eq!(query.end, Some(end));
        assert_eq!(query.tz, chrono_tz::Europe::Berlin);
    }

    #[test]
    fn date_times_and_epoch_milliseconds_are_exact() {
        let query =
            SummaryQuery::parse(Some("2026-12-01T10:00:00Z"), Some("1796299200000"), None).unwrap();
        assert_eq!(
            query.start,
            Some(Utc.with_ymd_and_hms(2026, 12, 1, 10, 0, 0).unwrap())
        );
        assert_eq!(
            query.end,
            Some(DateTime::from_timestamp_millis(1_796_299_200_000).unwrap())
        );
        assert_eq!(query.tz, Tz::UTC);
    }

    #[test]
    fn an_offset_whose_plus_was_decoded_as_a_space_is_read_as_meant() {
        let query = SummaryQuery::parse(Some("2026-12-01T10:00:00 01:00"), None, None).unwrap();
        assert_eq!(
            query.start,
            Some(Utc.with_ymd_and_hms(2026, 12, 1, 9, 0, 0).unwrap())
        );
        let spaced = SummaryQuery::parse(Some("2026-12-01 10:00:00Z"), None, None).unwrap();
        assert_eq!(
            spaced.start,
            Some(Utc.with_ymd_and_hms(2026, 12, 1, 10, 0, 0).unwrap())
        );
        assert!(SummaryQuery::parse(Some("2026-12-01T10:00:00 1:00"), None, None).is_err());
    }

    #[test]
    fn bad_parameters_are_named() {
        let bad_start = SummaryQuery::parse(Some("yesterday"), None, None).unwrap_err();
        assert_eq!(bad_start, QueryError::BadDate { param: "startDate" });
        let bad_end = SummaryQuery::parse(None, Some("2026-13-01"), None).unwrap_err();
        assert_eq!(bad_end, QueryError::BadDate { param: "endDate" });
        let bad_tz = SummaryQuery::parse(None, None, Some("Mars/Olympus")).unwrap_err();
        assert_eq!(bad_tz, QueryError::BadTimeZone);
        let reversed = SummaryQuery::parse(Some("2026-12-02"), Some("2026-12-01"), None);
        assert_eq!(reversed.unwrap_err(), QueryError::StartAfterEnd);
        assert_eq!(
            StatsQuery::parse(None, Some("friday")),
            Err(QueryError::BadWeekStart)
        );
    }

    #[test]
    fn stats_defaults_are_utc_and_monday() {
        let query = StatsQuery::parse(None, None).unwrap();
        assert_eq!((query.tz, query.week_start), (Tz::UTC, WeekStart::Monday));
        let sunday = StatsQuery::parse(Some("America/New_York"), Some("sunday")).unwrap();
        assert_eq!(sunday.week_start, WeekStart::Sunday);
    }
}
