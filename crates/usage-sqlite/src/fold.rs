//! Adds bucket rows and raw groups up by (local day, provider, model).
//!
//! A summary reads tens of thousands of bucket rows, so the per-row work is kept small:
//! rows come in time order, so one day's sums are kept in a vector indexed by series and
//! moved to the map only when the day changes, and a provider and model pair is found by
//! comparing strings with the few pairs met so far instead of hashing them for every row.

use std::collections::HashMap;

use chrono::Datelike;
use rusqlite::{self, Row};
use usage_domain::SummaryGroup;

use crate::local_day;

/// Pairs beyond this many are found through a map instead of a scan.
const SCANNED_SERIES: usize = 16;

/// Sums of one group.
#[derive(Debug, Clone, Copy, Default)]
struct Sums {
    executions: u64,
    successes: u64,
    prompt_tokens: u64,
    completion_tokens: u64,
    total_tokens: u64,
}

impl Sums {
    fn add(&mut self, other: Sums) {
        self.executions += other.executions;
        self.successes += other.successes;
        self.prompt_tokens += other.prompt_tokens;
        self.completion_tokens += other.completion_tokens;
        self.total_tokens += other.total_tokens;
    }
}

/// The (provider, model) pairs met so far, numbered in order of appearance.
#[derive(Debug, Default)]
struct Series {
    names: Vec<(String, String)>,
    numbers: HashMap<String, HashMap<String, usize>>,
}

impl Series {
    fn number(&mut self, provider: &str, model: &str) -> usize {
        let known = if self.names.len() <= SCANNED_SERIES {
            self.names
                .iter()
                .position(|(p, m)| p == provider && m == model)
        } else {
            self.numbers
                .get(provider)
                .and_then(|models| models.get(model))
                .copied()
        };
        known.unwrap_or_else(|| {
            let number = self.names.len();
            self.names.push((provider.to_owned(), model.to_owned()));
            self.numbers
                .entry(provider.to_owned())
                .or_default()
                .insert(model.to_owned(), number);
            number
        })
    }
}

/// Sums by (day, series).
#[derive(Debug, Default)]
pub(crate) struct Fold {
    series: Series,
    /// The day being summed, and its sums by series number.
    day: Option<i32>,
    current: Vec<Sums>,
    /// Days already summed.
    done: HashMap<(i32, usize), Sums>,
}

impl Fold {
    /// A row of `usage_buckets`: `bucket_ms, provider, model, executions, successes,
    /// prompt_tokens, completion_tokens, total_tokens`, whose bucket lies in `day`.
    pub(crate) fn add_row(&mut self, day: i32, row: &Row<'_>) -> rusqlite::Result<()> {
        let series = self
            .series
            .number(row.get_ref(1)?.as_str()?, row.get_ref(2)?.as_str()?);
        let column = |index: usize| -> rusqlite::Result<u64> {
            Ok(u64::try_from(row.get_ref(index)?.as_i64()?).unwrap_or(0))
        };
        let sums = Sums {
            executions: column(3)?,
            successes: column(4)?,
            prompt_tokens: column(5)?,
            completion_tokens: column(6)?,
            total_tokens: column(7)?,
        };
        self.add(day, series, sums);
        Ok(())
    }

    /// A group computed from raw rows.
    pub(crate) fn add_group(&mut self, group: SummaryGroup) {
        let series = self.series.number(&group.provider, &group.model);
        let sums = Sums {
            executions: group.executions,
            successes: group.successes,
            prompt_tokens: group.prompt_tokens,
            completion_tokens: group.completion_tokens,
            total_tokens: group.total_tokens,
        };
        self.add(group.day.num_days_from_ce(), series, sums);
    }

    fn add(&mut self, day: i32, series: usize, sums: Sums) {
        if self.day != Some(day) {
            self.finish_day();
            self.day = Some(day);
        }
        if self.current.len() <= series {
            self.current.resize(series + 1, Sums::default());
        }
        self.current[series].add(sums);
    }

    /// Moves the current day's sums into `done`; a day can come back (raw edges come last,
    /// and a daylight-saving change at midnight repeats an hour of the previous day).
    fn finish_day(&mut self) {
        let Some(day) = self.day.take() else { return };
        for (series, sums) in self.current.drain(..).enumerate() {
            if sums.executions > 0 {
                self.done.entry((day, series)).or_default().add(sums);
            }
        }
    }

    pub(crate) fn into_groups(mut self) -> Vec<SummaryGroup> {
        self.finish_day();
        let names = self.series.names;
        self.done
            .into_iter()
            .map(|((day, series), sums)| {
                let (provider, model) = names[series].clone();
                SummaryGroup {
                    day: local_day::to_date(day).unwrap_or_default(),
                    provider,
                    model,
                    executions: sums.executions,
                    successes: sums.successes,
                    prompt_tokens: sums.prompt_tokens,
                    completion_tokens: sums.completion_tokens,
                    total_tokens: sums.total_tokens,
                }
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn series_keep_their_numbers_past_the_scanned_few() {
        let mut series = Series::default();
        let pairs: Vec<(String, String)> = (0..40)
            .map(|i| (format!("p{}", i % 3), format!("m{i}")))
            .collect();
        let first: Vec<usize> = pairs.iter().map(|(p, m)| series.number(p, m)).collect();
        assert_eq!(first, (0..40).collect::<Vec<_>>());
        let again: Vec<usize> = pairs
            .iter()
            .rev()
            .map(|(p, m)| series.number(p, m))
            .collect();
        assert_eq!(again, (0..40).rev().collect::<Vec<_>>());
    }
}
