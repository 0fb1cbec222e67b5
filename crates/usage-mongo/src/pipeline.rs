//! The two aggregation pipelines, and the reading of their results.
//!
//! Both start with a `$match` on `userId` and a `timestamp` range, so the server answers
//! from the `{userId: 1, timestamp: -1}` index and never scans other users' records.

use chrono::NaiveDate;
use chrono_tz::Tz;
use mongodb::bson::{Bson, Document, doc};
use usage_domain::{StatsWindows, SummaryGroup, TimeRange, UsageStats, UserId, WindowTotals};

use crate::document::{DecodeError, bson_date, read_count, read_str};

/// Groups of `user`'s records in `range` (inclusive) by (local day in `tz`, provider, model).
pub(crate) fn summary(user: &UserId, range: TimeRange, tz: Tz) -> Vec<Document> {
    vec![
        doc! { "$match": {
            "userId": user.as_str(),
            "timestamp": { "$gte": bson_date(range.start), "$lte": bson_date(range.end) },
        }},
        doc! { "$group": {
            "_id": {
                "day": { "$dateToString": {
                    "format": "%Y-%m-%d", "date": "$timestamp", "timezone": tz.name(),
                }},
                "provider": "$provider",
                "model": "$model",
            },
            "executions": { "$sum": 1 },
            "successes": { "$sum": { "$cond": ["$success", 1, 0] } },
            "promptTokens": { "$sum": "$promptTokens" },
            "completionTokens": { "$sum": "$completionTokens" },
            "totalTokens": { "$sum": "$totalTokens" },
        }},
        doc! { "$sort": { "_id.day": 1, "_id.provider": 1, "_id.model": 1 } },
    ]
}

/// Reads one output document of [`summary`].
pub(crate) fn summary_group(group: &Document) -> Result<SummaryGroup, DecodeError> {
    let key = group
        .get_document("_id")
        .map_err(|_| DecodeError::NotADocument("_id".into()))?;
    let day = read_str(key, "day")?;
    let day = NaiveDate::parse_from_str(day, "%Y-%m-%d")
        .map_err(|_| DecodeError::NotADay(day.to_owned()))?;
    Ok(SummaryGroup {
        day,
        provider: read_str(key, "provider")?.to_owned(),
        model: read_str(key, "model")?.to_owned(),
        executions: read_count(group, "executions")?,
        successes: read_count(group, "successes")?,
        prompt_tokens: read_count(group, "promptTokens")?,
        completion_tokens: read_count(group, "completionTokens")?,
        total_tokens: read_count(group, "totalTokens")?,
    })
}

/// The three windows' names in the `$facet` stage, in [`UsageStats`] order.
const FACETS: [&str; 3] = ["today", "week", "month"];

/// Totals of `user`'s records in the three windows, in one `$facet` query.
pub(crate) fn window_totals(user: &UserId, windows: StatsWindows) -> Vec<Document> {
    let window = |start| {
        vec![
            doc! { "$match": { "timestamp": { "$gte": bson_date(start) } } },
            doc! { "$group": {
                "_id": Bson::Null,
                "executions": { "$sum": 1 },
                "tokens": { "$sum": "$totalTokens" },
                "errors": { "$sum": { "$cond": ["$success", 0, 1] } },
            }},
        ]
    };
    vec![
        doc! { "$match": {
            "userId": user.as_str(),
            "timestamp": {
                "$gte": bson_date(windows.earliest()),
                "$lte": bson_date(windows.end),
            },
        }},
        doc! { "$facet": {
            FACETS[0]: window(windows.today),
            FACETS[1]: window(windows.week),
            FACETS[2]: window(windows.month),
        }},
    ]
}

/// Reads the single output document of [`window_totals`]; an empty window is all zeros.
pub(crate) fn usage_stats(reply: Option<&Document>) -> Result<UsageStats, DecodeError> {
    let reply = reply.ok_or(DecodeError::NoResult)?;
    let [today, this_week, this_month] = FACETS.map(|facet| facet_totals(reply, facet));
    Ok(UsageStats {
        today: today?,
        this_week: this_week?,
        this_month: this_month?,
    })
}

fn facet_totals(reply: &Document, facet: &str) -> Result<WindowTotals, DecodeError> {
    let groups = reply
        .get_array(facet)
        .map_err(|_| DecodeError::NotAnArray(facet.to_owned()))?;
    let Some(group) = groups.first() else {
        return Ok(WindowTotals::default());
    };
    let group = group
        .as_document()
        .ok_or_else(|| DecodeError::NotADocument(facet.to_owned()))?;
    Ok(WindowTotals {
        executions: read_count(group, "executions")?,
        tokens: read_count(group, "tokens")?,
        errors: read_count(group, "errors")?,
    })
}

#[cfg(test)]
mod tests {
    use chrono::{TimeZone, Utc};

    use super::*;

    fn user() -> UserId {
        UserId::parse("alice").unwrap()
    }

    #[test]
    fn the_summary_matches_the_user_and_range_first_and_groups_by_local_day() {
        let range = TimeRange {
            start: Utc.with_ymd_and_hms(2026, 12, 1, 0, 0, 0).unwrap(),
            end: Utc.with_ymd_and_hms(2026, 12, 3, 0, 0, 0).unwrap(),
        };
        let pipeline = summary(&user(), range, chrono_tz::Europe::Berlin);

        let first = pipeline[0].get_document("$match").unwrap();
        assert_eq!(first.get_str("userId").unwrap(), "alice");
        let group = pipeline[1].get_document("$group").unwrap();
        let day = group
            .get_document("_id")
            .and_then(|key| key.get_document("day"))
            .and_then(|day| day.get_document("$dateToString"))
            .unwrap();
        assert_eq!(day.get_str("timezone").unwrap(), "Europe/Berlin");
        assert!(pipeline[2].contains_key("$sort"));
    }

    #[test]
    fn a_summary_group_reads_sums_of_any_numeric_type() {
        let reply = doc! {
            "_id": { "day": "2026-12-03", "provider": "openai", "model": "gpt-4o" },
            "executions": 2_i32, "successes": 1_i64, "promptTokens": 10.0,
            "completionTokens": 5_i32, "totalTokens": 15_i64,
        };
        let group = summary_group(&reply).unwrap();
        assert_eq!(group.day, NaiveDate::from_ymd_opt(2026, 12, 3).unwrap());
        assert_eq!((group.executions, group.successes), (2, 1));
        assert_eq!(group.prompt_tokens, 10);
        assert_eq!(group.total_tokens, 15);
    }

    #[test]
    fn empty_windows_are_zeros_and_a_missing_reply_is_an_error() {
        let reply = doc! {
            "today": [],
            "week": [ { "_id": Bson::Null, "executions": 2, "tokens": 30_i64, "errors": 1 } ],
            "month": [ { "_id": Bson::Null, "executions": 3, "tokens": 40_i64, "errors": 1 } ],
        };
        let stats = usage_stats(Some(&reply)).unwrap();
        assert_eq!(stats.today, WindowTotals::default());
        assert_eq!(stats.this_week.executions, 2);
        assert_eq!(stats.this_month.tokens, 40);
        assert!(usage_stats(None).is_err());
    }
}
