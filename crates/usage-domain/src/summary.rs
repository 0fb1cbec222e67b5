//! The summary rule: totals, per provider with per-model counts, and per local day.
//!
//! Adapters group records in the database by (local day, provider, model); the fold into the
//! client's `UsageSummary` shape happens here once, for every adapter.

use std::collections::BTreeMap;

use chrono::NaiveDate;
use serde::Serialize;

/// Aggregates of the records that share a local day, a provider and a model.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SummaryGroup {
    pub day: NaiveDate,
    pub provider: String,
    pub model: String,
    pub executions: u64,
    pub successes: u64,
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
    pub total_tokens: u64,
}

/// The client's `UsageSummary`, field for field.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct UsageSummary {
    pub total_executions: u64,
    pub total_tokens: u64,
    pub total_prompt_tokens: u64,
    pub total_completion_tokens: u64,
    pub success_count: u64,
    pub error_count: u64,
    pub by_provider: BTreeMap<String, ProviderSummary>,
    /// Keyed by `YYYY-MM-DD` in the query's time zone.
    pub by_day: BTreeMap<String, DaySummary>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ProviderSummary {
    pub executions: u64,
    pub tokens: u64,
    /// Executions per model.
    pub models: BTreeMap<String, u64>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DaySummary {
    pub executions: u64,
    pub tokens: u64,
}

impl UsageSummary {
    /// Folds grouped aggregates; groups may repeat a key, their figures then add up.
    pub fn from_groups(groups: impl IntoIterator<Item = SummaryGroup>) -> Self {
        groups
            .into_iter()
            .fold(Self::default(), |mut summary, group| {
                summary.add(group);
                summary
            })
    }

    fn add(&mut self, group: SummaryGroup) {
        self.total_executions += group.executions;
        self.total_tokens += group.total_tokens;
        self.total_prompt_tokens += group.prompt_tokens;
        self.total_completion_tokens += group.completion_tokens;
        self.success_count += group.successes;
        self.error_count += group.executions.saturating_sub(group.successes);

        let provider = self.by_provider.entry(group.provider).or_default();
        provider.executions += group.executions;
        provider.tokens += group.total_tokens;
        *provider.models.entry(group.model).or_default() += group.executions;

        let day = self
            .by_day
            .entry(group.day.format("%Y-%m-%d").to_string())
            .or_default();
        day.executions += group.executions;
        day.tokens += group.total_tokens;
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn group(day: u32, provider: &str, model: &str, executions: u64) -> SummaryGroup {
        SummaryGroup {
            day: NaiveDate::from_ymd_opt(2026, 12, day).unwrap(),
            provider: provider.into(),
            model: model.into(),
            executions,
            successes: executions - 1,
            prompt_tokens: 10 * executions,
            completion_tokens: 5 * executions,
            total_tokens: 15 * executions,
        }
    }

    #[test]
    fn groups_fold_into_the_client_shape() {
        let summary = UsageSummary::from_groups([
            group(1, "openai", "gpt-4o", 2),
            group(1, "openai", "gpt-4o-mini", 3),
            group(2, "ollama", "llama3", 1),
        ]);
        let body = serde_json::to_value(&summary).unwrap();
        assert_eq!(
            body,
            json!({
                "totalExecutions": 6, "totalTokens": 90, "totalPromptTokens": 60,
                "totalCompletionTokens": 30, "successCount": 3, "errorCount": 3,
                "byProvider": {
                    "ollama": {"executions": 1, "tokens": 15, "models": {"llama3": 1}},
                    "openai": {"executions": 5, "tokens": 75,
                               "models": {"gpt-4o": 2, "gpt-4o-mini": 3}}
                },
                "byDay": {
                    "2026-12-01": {"executions": 5, "tokens": 75},
                    "2026-12-02": {"executions": 1, "tokens": 15}
                }
            })
        );
    }

    #[test]
    fn an_empty_summary_still_has_every_key() {
        let body = serde_json::to_value(UsageSummary::from_groups([])).unwrap();
        for key in [
            "totalExecutions",
            "totalTokens",
            "totalPromptTokens",
            "totalCompletionTokens",
            "successCount",
            "errorCount",
            "byProvider",
            "byDay",
        ] {
            assert!(body.get(key).is_some(), "missing {key}");
        }
    }
}
