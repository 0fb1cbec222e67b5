//! A user's own records: the filter and order of an export page, and erasure.

use mongodb::bson::{Document, doc};
use usage_domain::{ExportCursor, TimeRange, UserId};

use crate::document::bson_date;

/// The order of an export: `(timestamp, executionId)` ascending. Without a collation the
/// server compares strings by their UTF-8 bytes, as the port asks.
pub(crate) fn export_sort() -> Document {
    doc! { "timestamp": 1, "executionId": 1 }
}

/// `user`'s documents in `range`, strictly after `after` in [`export_sort`] order. The
/// match on `userId` and `timestamp` is served by the `{userId: 1, timestamp: -1}` index.
///
/// # Limitations
///
/// No index holds `executionId` after `timestamp`, so the server sorts each page in memory
/// (a top-`limit` sort, bounded) after scanning the user's records from the cursor to the
/// end of the range: a whole export costs about pages × records read. Fine for the
/// thousands of records a user has; an index `{userId: 1, timestamp: 1, executionId: 1}`
/// would make each page a plain index walk.
pub(crate) fn export_filter(
    user: &UserId,
    range: TimeRange,
    after: Option<&ExportCursor>,
) -> Document {
    // The cursor's timestamp, when later, is the lower bound, so the index scan starts there.
    let lower = after.map_or(range.start, |cursor| cursor.timestamp.max(range.start));
    let mut filter = doc! {
        "userId": user.as_str(),
        "timestamp": { "$gte": bson_date(lower), "$lte": bson_date(range.end) },
    };
    if let Some(cursor) = after {
        let at = bson_date(cursor.timestamp);
        filter.insert(
            "$or",
            vec![
                doc! { "timestamp": { "$gt": at } },
                doc! { "timestamp": at, "executionId": { "$gt": cursor.id.as_str() } },
            ],
        );
    }
    filter
}

/// Every document of `user`.
pub(crate) fn user_filter(user: &UserId) -> Document {
    doc! { "userId": user.as_str() }
}

#[cfg(test)]
mod tests {
    use chrono::{TimeZone, Utc};
    use usage_domain::ExecutionId;

    use super::*;

    #[test]
    fn a_page_after_a_cursor_starts_past_it_within_the_user_and_range() {
        let at = Utc.with_ymd_and_hms(2026, 12, 1, 0, 0, 0).unwrap();
        let range = TimeRange { start: at, end: at };
        let cursor = ExportCursor {
            timestamp: at,
            id: ExecutionId::parse("e-7").unwrap(),
        };
        let user = UserId::parse("alice").unwrap();
        let filter = export_filter(&user, range, Some(&cursor));
        assert_eq!(filter.get_str("userId").unwrap(), "alice");
        let branches = filter.get_array("$or").unwrap();
        assert_eq!(branches.len(), 2);
        assert!(export_filter(&user, range, None).get("$or").is_none());
    }
}
