//! Calendar arithmetic in a time zone: the start of a local day, and inclusive time ranges.

use chrono::{DateTime, Days, LocalResult, NaiveDate, TimeDelta, TimeZone, Utc};
use chrono_tz::Tz;

/// An inclusive range of instants, both bounds known.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimeRange {
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
}

impl TimeRange {
    pub fn contains(&self, at: DateTime<Utc>) -> bool {
        self.start <= at && at <= self.end
    }
}

/// The first instant of `date` in `tz`.
///
/// Where a daylight-saving jump skips local midnight, the day starts at the first local time
/// that exists; where midnight happens twice, at the earlier one.
pub fn start_of_day(date: NaiveDate, tz: Tz) -> DateTime<Utc> {
    let midnight = date.and_hms_opt(0, 0, 0).unwrap_or_default();
    let mut local = midnight;
    // Offsets move in steps of at least 15 minutes, and no gap is longer than a day.
    for _ in 0..=96 {
        match tz.from_local_datetime(&local) {
            LocalResult::Single(at) | LocalResult::Ambiguous(at, _) => {
                return at.with_timezone(&Utc);
            }
            LocalResult::None => local += TimeDelta::minutes(15),
        }
    }
    midnight.and_utc()
}

/// The last millisecond of `date` in `tz`: just before the next local day starts.
pub fn end_of_day(date: NaiveDate, tz: Tz) -> DateTime<Utc> {
    let next = date.checked_add_days(Days::new(1)).unwrap_or(date);
    start_of_day(next, tz) - TimeDelta::milliseconds(1)
}

/// The calendar date of `at` in `tz`.
pub fn local_date(at: DateTime<Utc>, tz: Tz) -> NaiveDate {
    at.with_timezone(&tz).date_naive()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utc(y: i32, mo: u32, d: u32, h: u32, mi: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(y, mo, d, h, mi, 0).unwrap()
    }

    #[test]
    fn a_day_starts_at_local_midnight() {
        let date = NaiveDate::from_ymd_opt(2026, 12, 3).unwrap();
        assert_eq!(
            start_of_day(date, chrono_tz::Europe::Berlin),
            utc(2026, 12, 2, 23, 0)
        );
        assert_eq!(start_of_day(date, chrono_tz::UTC), utc(2026, 12, 3, 0, 0));
        assert_eq!(
            start_of_day(date, chrono_tz::Asia::Kathmandu),
            utc(2026, 12, 2, 18, 15)
        );
    }

    #[test]
    fn a_day_whose_midnight_is_skipped_starts_at_the_first_existing_time() {
        // Santiago moves its clocks from 00:00 to 01:00 on 2026-09-06.
        let date = NaiveDate::from_ymd_opt(2026, 9, 6).unwrap();
        let start = start_of_day(date, chrono_tz::America::Santiago);
        assert_eq!(start, utc(2026, 9, 6, 4, 0));
        assert_eq!(local_date(start, chrono_tz::America::Santiago), date);
    }

    #[test]
    fn the_end_of_a_day_is_the_millisecond_before_the_next() {
        let date = NaiveDate::from_ymd_opt(2026, 3, 29).unwrap();
        let end = end_of_day(date, chrono_tz::Europe::Berlin);
        assert_eq!(end, utc(2026, 3, 29, 22, 0) - TimeDelta::milliseconds(1));
    }
}
