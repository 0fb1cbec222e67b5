//! Property tests: whatever a client sends as a record, parsing never panics, every record is
//! either accepted or rejected with a reason, and accepted records respect every bound.

use chrono::{TimeDelta, TimeZone, Utc};
use proptest::prelude::*;
use serde_json::{Map, Value, json};
use usage_domain::incoming::Acceptance;
use usage_domain::record::{MAX_CONTEXT_CHARS, MAX_ERROR_CHARS, MAX_TOKENS};
use usage_domain::{Batch, ExecutionId, Model, Provider};

fn acceptance() -> Acceptance {
    let now = Utc.with_ymd_and_hms(2026, 12, 3, 12, 0, 0).unwrap();
    Acceptance {
        now,
        oldest: now - TimeDelta::days(90),
        retention_days: 90,
    }
}

/// Any JSON value, nested a few levels, with operator-like keys and extreme numbers.
fn any_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>().prop_map(|f| serde_json::Number::from_f64(f).map_or(Value::Null, Value::from)),
        ".{0,40}".prop_map(Value::String),
        Just(json!("NaN")),
        Just(json!({"$gt": ""})),
    ];
    leaf.prop_recursive(4, 32, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::hash_map("[$a-z]{1,8}", inner, 0..6)
                .prop_map(|map| Value::Object(map.into_iter().collect())),
        ]
    })
}

const FIELDS: [&str; 14] = [
    "id",
    "timestamp",
    "provider",
    "model",
    "promptTokens",
    "completionTokens",
    "totalTokens",
    "duration",
    "success",
    "error",
    "executionMode",
    "context",
    "compiledPrompt",
    "response",
];

/// A record-shaped object whose fields hold anything at all.
fn any_record() -> impl Strategy<Value = Value> {
    prop::collection::vec((prop::sample::select(FIELDS.to_vec()), any_json()), 0..14).prop_map(
        |fields| {
            let mut record = Map::new();
            record.insert("id".into(), json!("base"));
            record.insert("provider".into(), json!("openai"));
            record.insert("model".into(), json!("gpt-4o"));
            for (field, value) in fields {
                record.insert(field.to_owned(), value);
            }
            Value::Object(record)
        },
    )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn any_record_is_accepted_within_bounds_or_rejected_with_a_reason(
        records in prop::collection::vec(prop_oneof![any_record(), any_json()], 0..8)
    ) {
        let texts: Vec<String> = records.iter().map(Value::to_string).collect();
        let batch = Batch::parse(texts.iter().map(String::as_str), acceptance());

        let repeated = usize::try_from(batch.repeated).unwrap();
        prop_assert_eq!(batch.records.len() + batch.rejected.len() + repeated, records.len());
        for record in &batch.records {
            prop_assert!(record.id.as_str().chars().count() <= ExecutionId::MAX_CHARS);
            prop_assert!(record.provider.as_str().chars().count() <= Provider::MAX_CHARS);
            prop_assert!(record.model.as_str().chars().count() <= Model::MAX_CHARS);
            prop_assert!(record.tokens.prompt() <= MAX_TOKENS);
            prop_assert!(record.tokens.completion() <= MAX_TOKENS);
            prop_assert!(record.duration_ms.is_finite() && record.duration_ms >= 0.0);
            let error_chars = record.error.as_deref().map_or(0, |e| e.chars().count());
            prop_assert!(error_chars <= MAX_ERROR_CHARS);
            let context_chars = record.context.as_deref().map_or(0, |c| c.chars().count());
            prop_assert!(context_chars <= MAX_CONTEXT_CHARS);
            prop_assert!(record.timestamp >= acceptance().oldest);
            prop_assert!(record.timestamp <= acceptance().now + TimeDelta::hours(24));
        }
        for rejected in &batch.rejected {
            let prefix = format!("executions[{}]: ", rejected.index);
            let message = rejected.to_string();
            prop_assert!(message.starts_with(&prefix), "{}", message);
        }
    }

    #[test]
    fn arbitrary_text_never_panics_the_parser(text in ".{0,200}") {
        let batch = Batch::parse([text.as_str()], acceptance());
        prop_assert_eq!(batch.records.len() + batch.rejected.len(), 1);
    }
}
