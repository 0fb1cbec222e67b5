//! A sync batch after parsing: the records to store, the rejected ones, and in-batch repeats.

use std::collections::HashSet;

use crate::incoming::{Acceptance, ExecutionRecord};
use crate::record::{RecordError, UsageRecord};

/// A record that was skipped, with its position in `executions`.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("executions[{index}]: {error}")]
pub struct RejectedRecord {
    pub index: usize,
    pub error: RecordError,
}

/// What a batch holds once every record has been read on its own.
#[derive(Debug, Default)]
pub struct Batch {
    /// Valid records with distinct ids, in the order they came.
    pub records: Vec<UsageRecord>,
    pub rejected: Vec<RejectedRecord>,
    /// Valid records whose id appeared earlier in the same batch.
    pub repeated: u64,
}

impl Batch {
    /// Parses each record's JSON text; the first valid occurrence of an id wins.
    pub fn parse<'a>(texts: impl IntoIterator<Item = &'a str>, acceptance: Acceptance) -> Self {
        let mut batch = Self::default();
        let mut seen = HashSet::new();
        for (index, text) in texts.into_iter().enumerate() {
            let parsed = ExecutionRecord::from_json(text).and_then(|r| r.into_usage(acceptance));
            match parsed {
                Err(error) => batch.rejected.push(RejectedRecord { index, error }),
                Ok(record) if !seen.insert(record.id.clone()) => batch.repeated += 1,
                Ok(record) => batch.records.push(record),
            }
        }
        batch
    }
}

#[cfg(test)]
mod tests {
    use chrono::{TimeDelta, TimeZone, Utc};

    use super::*;

    #[test]
    fn repeats_are_counted_and_errors_carry_their_index() {
        let now = Utc.with_ymd_and_hms(2026, 12, 3, 12, 0, 0).unwrap();
        let acceptance = Acceptance {
            now,
            oldest: now - TimeDelta::days(90),
            retention_days: 90,
        };
        let texts = [
            r#"{"id": "a", "provider": "p", "model": "m"}"#,
            r#"{"id": "a", "model": "m"}"#,
            r#"{"id": "a", "provider": "p", "model": "m2"}"#,
            r#"{"id": "b", "provider": "p", "model": "m"}"#,
            "7",
        ];
        let batch = Batch::parse(texts, acceptance);
        let ids: Vec<_> = batch.records.iter().map(|r| r.id.as_str()).collect();
        assert_eq!(ids, ["a", "b"]);
        assert_eq!(batch.repeated, 1);
        let errors: Vec<_> = batch.rejected.iter().map(ToString::to_string).collect();
        assert_eq!(
            errors,
            [
                "executions[1]: provider is required",
                "executions[4]: record must be a JSON object"
            ]
        );
    }
}
