//! Summaries and stats from the `usage_buckets` pre-aggregates, in time that does not grow
//! with the number of records.
//!
//! Triggers (schema version 2) keep one row per (user, 15-minute UTC bucket, provider,
//! model) equal to the sums of the raw rows in it, in the same transaction as every insert
//! and delete. Fifteen minutes divides every UTC offset in use today (+05:45 and +08:45
//! included), so each bucket normally lies inside one local day of any time zone and can be
//! counted whole. Raw rows are read only where that fails: the cut buckets at the edges of a
//! range (ranges are exact to the millisecond), and any bucket a local midnight cuts (old
//! offsets such as Monrovia's -00:44:30). All reads run in one transaction, so they see one
//! snapshot of both tables.
//!
//! # Limitations
//!
//! A bucket counts as inside one local day when its first and last millisecond fall on the
//! same date with the same UTC offset; two offset changes within 15 minutes would fool that,
//! and the time zone database has none.

use chrono::{DateTime, Datelike, Offset};
use chrono_tz::Tz;
use rusqlite::{self, Connection, params};
use usage_domain::{StatsWindows, SummaryGroup, TimeRange, UsageStats, WindowTotals};

use crate::fold::Fold;
use crate::raw::{self, count};

/// Width of a bucket: 15 minutes, in milliseconds. Schema version 2 uses the same number.
pub(crate) const BUCKET_MS: i64 = 15 * 60 * 1_000;

/// An inclusive millisecond range split into whole buckets and the cut parts around them.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Split {
    /// Starts of the whole buckets: `first <= bucket_ms < last`.
    whole: Option<(i64, i64)>,
    /// Inclusive ranges to read from raw rows.
    edges: Vec<(i64, i64)>,
}

impl Split {
    fn of(from: i64, to: i64) -> Self {
        let first = from.saturating_add((BUCKET_MS - from.rem_euclid(BUCKET_MS)) % BUCKET_MS);
        let after = to.saturating_add(1);
        let last = after - after.rem_euclid(BUCKET_MS);
        if first >= last {
            return Self {
                whole: None,
                edges: vec![(from, to)],
            };
        }
        let mut edges = Vec::new();
        if from < first {
            edges.push((from, first - 1));
        }
        if last <= to {
            edges.push((last, to));
        }
        Self {
            whole: Some((first, last)),
            edges,
        }
    }
}

/// `user`'s records in `range`, grouped by (day in `tz`, provider, model).
pub(crate) fn summary(
    connection: &mut Connection,
    user: &str,
    range: TimeRange,
    tz: Tz,
) -> rusqlite::Result<Vec<SummaryGroup>> {
    let snapshot = connection.transaction()?;
    let split = Split::of(range.start.timestamp_millis(), range.end.timestamp_millis());
    let mut fold = Fold::default();
    let mut raw_ranges = split.edges;
    if let Some((first, last)) = split.whole {
        let mut statement = snapshot.prepare_cached(
            "SELECT bucket_ms, provider, model, executions, successes, prompt_tokens,
                    completion_tokens, total_tokens
             FROM usage_buckets
             WHERE user_id = ?1 AND bucket_ms >= ?2 AND bucket_ms < ?3",
        )?;
        let mut rows = statement.query(params![user, first, last])?;
        let mut days = BucketDays::new(tz);
        while let Some(row) = rows.next()? {
            let bucket: i64 = row.get(0)?;
            match days.day(bucket) {
                Some(day) => fold.add_row(day, row)?,
                None if raw_ranges.last() == Some(&bucket_range(bucket)) => {}
                None => raw_ranges.push(bucket_range(bucket)),
            }
        }
    }
    for range in raw_ranges {
        for group in raw::summary(&snapshot, user, range, tz)? {
            fold.add_group(group);
        }
    }
    Ok(fold.into_groups())
}

/// Totals of `user`'s records in each of the three windows.
pub(crate) fn stats(
    connection: &mut Connection,
    user: &str,
    windows: StatsWindows,
) -> rusqlite::Result<UsageStats> {
    let snapshot = connection.transaction()?;
    let end = windows.end.timestamp_millis();
    let splits = [windows.today, windows.week, windows.month]
        .map(|start| Split::of(start.timestamp_millis(), end));
    // A window without whole buckets gets an empty bucket range.
    let wholes = splits.clone().map(|split| split.whole.unwrap_or((0, 0)));
    let scan_from = wholes.iter().map(|whole| whole.0).min().unwrap_or(0);
    let scan_to = wholes.iter().map(|whole| whole.1).max().unwrap_or(0);
    let mut statement = snapshot.prepare_cached(
        "SELECT
            SUM(IIF(bucket_ms >= ?2 AND bucket_ms < ?3, executions, 0)),
            SUM(IIF(bucket_ms >= ?2 AND bucket_ms < ?3, total_tokens, 0)),
            SUM(IIF(bucket_ms >= ?2 AND bucket_ms < ?3, executions - successes, 0)),
            SUM(IIF(bucket_ms >= ?4 AND bucket_ms < ?5, executions, 0)),
            SUM(IIF(bucket_ms >= ?4 AND bucket_ms < ?5, total_tokens, 0)),
            SUM(IIF(bucket_ms >= ?4 AND bucket_ms < ?5, executions - successes, 0)),
            SUM(IIF(bucket_ms >= ?6 AND bucket_ms < ?7, executions, 0)),
            SUM(IIF(bucket_ms >= ?6 AND bucket_ms < ?7, total_tokens, 0)),
            SUM(IIF(bucket_ms >= ?6 AND bucket_ms < ?7, executions - successes, 0))
         FROM usage_buckets
         WHERE user_id = ?1 AND bucket_ms >= ?8 AND bucket_ms < ?9",
    )?;
    let bounds = params![
        user,
        wholes[0].0,
        wholes[0].1,
        wholes[1].0,
        wholes[1].1,
        wholes[2].0,
        wholes[2].1,
        scan_from,
        scan_to,
    ];
    let mut totals = statement.query_row(bounds, |row| {
        let window = |first: usize| -> rusqlite::Result<WindowTotals> {
            Ok(WindowTotals {
                executions: count(row.get(first)?),
                tokens: count(row.get(first + 1)?),
                errors: count(row.get(first + 2)?),
            })
        };
        Ok([window(0)?, window(3)?, window(6)?])
    })?;
    for (total, split) in totals.iter_mut().zip(splits) {
        for range in split.edges {
            let edge = raw::totals(&snapshot, user, range)?;
            total.executions += edge.executions;
            total.tokens += edge.tokens;
            total.errors += edge.errors;
        }
    }
    let [today, this_week, this_month] = totals;
    Ok(UsageStats {
        today,
        this_week,
        this_month,
    })
}

/// The inclusive millisecond range of the bucket starting at `bucket`.
fn bucket_range(bucket: i64) -> (i64, i64) {
    (bucket, bucket + BUCKET_MS - 1)
}

/// The local day of each bucket, remembered for the last bucket seen (rows come in bucket
/// order, several per bucket).
struct BucketDays {
    tz: Tz,
    last: Option<(i64, Option<i32>)>,
}

impl BucketDays {
    fn new(tz: Tz) -> Self {
        Self { tz, last: None }
    }

    /// The day (as `usage_local_day` numbers it) of every instant of the bucket, or `None`
    /// when a local midnight or an offset change falls inside it.
    fn day(&mut self, bucket: i64) -> Option<i32> {
        if let Some((seen, day)) = self.last
            && seen == bucket
        {
            return day;
        }
        let (first, last) = bucket_range(bucket);
        let local = |ms| DateTime::from_timestamp_millis(ms).map(|at| at.with_timezone(&self.tz));
        let day = match (local(first), local(last)) {
            (Some(first), Some(last))
                if first.date_naive() == last.date_naive()
                    && first.offset().fix() == last.offset().fix() =>
            {
                Some(first.date_naive().num_days_from_ce())
            }
            _ => None,
        };
        self.last = Some((bucket, day));
        day
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_range_splits_into_whole_buckets_and_cut_edges() {
        let b = BUCKET_MS;
        assert_eq!(
            Split::of(0, 2 * b - 1),
            Split {
                whole: Some((0, 2 * b)),
                edges: vec![]
            }
        );
        assert_eq!(
            Split::of(5, 3 * b + 7),
            Split {
                whole: Some((b, 3 * b)),
                edges: vec![(5, b - 1), (3 * b, 3 * b + 7)]
            }
        );
        assert_eq!(
            Split::of(5, b + 3),
            Split {
                whole: None,
                edges: vec![(5, b + 3)]
            }
        );
        assert_eq!(
            Split::of(-b - 1, -1),
            Split {
                whole: Some((-b, 0)),
                edges: vec![(-b - 1, -b - 1)]
            }
        );
    }

    #[test]
    fn a_bucket_cut_by_a_local_midnight_has_no_day() {
        let kathmandu: Tz = "Asia/Kathmandu".parse().unwrap();
        // 2026-12-02 18:15 UTC is midnight in Kathmandu (+05:45): a bucket boundary.
        let midnight = DateTime::parse_from_rfc3339("2026-12-02T18:15:00Z").unwrap();
        let mut days = BucketDays::new(kathmandu);
        assert!(days.day(midnight.timestamp_millis()).is_some());
        assert!(days.day(midnight.timestamp_millis() - BUCKET_MS).is_some());
        // Monrovia was at -00:44:30 in 1970: its midnight cuts a bucket.
        let monrovia: Tz = "Africa/Monrovia".parse().unwrap();
        let cut = DateTime::parse_from_rfc3339("1970-06-01T00:30:00Z").unwrap();
        assert_eq!(BucketDays::new(monrovia).day(cut.timestamp_millis()), None);
    }
}
