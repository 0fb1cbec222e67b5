//! The stats rule: executions, tokens and errors in three calendar windows that end now.

use chrono::{DateTime, Datelike, Days, NaiveDate, Utc};
use chrono_tz::Tz;
use serde::Serialize;

use crate::query::WeekStart;
use crate::window::{local_date, start_of_day};

/// Totals of one window.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct WindowTotals {
    pub executions: u64,
    pub tokens: u64,
    pub errors: u64,
}

/// The body of `stats`, as the dashboard reads it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct UsageStats {
    pub today: WindowTotals,
    pub this_week: WindowTotals,
    pub this_month: WindowTotals,
}

/// The starts of the three windows (inclusive) and their common end, now (inclusive).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StatsWindows {
    pub today: DateTime<Utc>,
    pub week: DateTime<Utc>,
    pub month: DateTime<Utc>,
    pub end: DateTime<Utc>,
}

impl StatsWindows {
    /// The calendar windows in `tz` that contain `now`.
    pub fn at(now: DateTime<Utc>, tz: Tz, week_start: WeekStart) -> Self {
        let today = local_date(now, tz);
        let days_into_week = match week_start {
            WeekStart::Monday => today.weekday().num_days_from_monday(),
            WeekStart::Sunday => today.weekday().num_days_from_sunday(),
        };
        let week = today
            .checked_sub_days(Days::new(days_into_week.into()))
            .unwrap_or(today);
        let month = NaiveDate::from_ymd_opt(today.year(), today.month(), 1).unwrap_or(today);
        Self {
            today: start_of_day(today, tz),
            week: start_of_day(week, tz),
            month: start_of_day(month, tz),
            end: now,
        }
    }

    /// Moves every start forward to `oldest`, so nothing outside retention is counted.
    pub fn clamped_to(self, oldest: DateTime<Utc>) -> Self {
        Self {
            today: self.today.max(oldest),
            week: self.week.max(oldest),
            month: self.month.max(oldest),
            end: self.end,
        }
    }

    /// The earliest start: the week can begin in the previous month.
    pub fn earliest(&self) -> DateTime<Utc> {
        self.today.min(self.week).min(self.month)
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    fn utc(y: i32, mo: u32, d: u32, h: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(y, mo, d, h, 0, 0).unwrap()
    }

    #[test]
    fn windows_are_local_calendar_periods() {
        // Thursday 2026-12-03, 12:00 UTC; 13:00 in Berlin.
        let now = utc(2026, 12, 3, 12);
        let windows = StatsWindows::at(now, chrono_tz::Europe::Berlin, WeekStart::Monday);
        assert_eq!(windows.today, utc(2026, 12, 2, 23));
        assert_eq!(
            windows.week,
            utc(2026, 11, 29, 23),
            "Monday 2026-11-30 in Berlin"
        );
        assert_eq!(windows.month, utc(2026, 11, 30, 23));
        assert_eq!(windows.end, now);
        assert_eq!(windows.earliest(), windows.week);
    }

    #[test]
    fn a_sunday_week_starts_on_the_previous_sunday() {
        let now = utc(2026, 12, 3, 12);
        let windows = StatsWindows::at(now, Tz::UTC, WeekStart::Sunday);
        assert_eq!(windows.week, utc(2026, 11, 29, 0));
        let on_sunday = StatsWindows::at(utc(2026, 11, 29, 5), Tz::UTC, WeekStart::Sunday);
        assert_eq!(on_sunday.week, utc(2026, 11, 29, 0));
    }

    #[test]
    fn late_evening_in_new_york_is_still_the_local_day() {
        // 2026-12-01 03:00 UTC is 22:00 on 2026-11-30 in New York.
        let windows = StatsWindows::at(
            utc(2026, 12, 1, 3),
            chrono_tz::America::New_York,
            WeekStart::Monday,
        );
        assert_eq!(windows.today, utc(2026, 11, 30, 5));
        assert_eq!(
            windows.month,
            utc(2026, 11, 1, 4),
            "November, still in daylight time"
        );
    }

    #[test]
    fn clamping_moves_starts_to_the_retention_edge() {
        let windows = StatsWindows::at(utc(2026, 12, 3, 12), Tz::UTC, WeekStart::Monday);
        let clamped = windows.clamped_to(utc(2026, 12, 2, 0));
        assert_eq!(clamped.today, windows.today);
        assert_eq!(
            (clamped.week, clamped.month),
            (utc(2026, 12, 2, 0), utc(2026, 12, 2, 0))
        );
    }
}
