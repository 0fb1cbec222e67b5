//! The record exactly as the web client sends it, and its one conversion into a [`UsageRecord`].
//!
//! Scalar fields are read as loose JSON values so that a wrong type rejects only that record,
//! with a message naming the field, instead of failing the whole batch. `compiledPrompt` and
//! `response` are never materialised: the parser only notes whether they were present.

use std::fmt;

use chrono::{DateTime, TimeDelta, Utc};
use serde::Deserialize;
use serde::de::{self, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::Value;

use crate::record::{
    ExecutionId, ExecutionMode, MAX_CONTEXT_CHARS, MAX_DURATION_MS, MAX_ERROR_CHARS, MAX_TOKENS,
    Model, Provider, RecordError, TokenUsage, UsageRecord, truncate_chars,
};

/// How far ahead of the server's clock a timestamp may be.
pub const MAX_FUTURE_SKEW: TimeDelta = TimeDelta::hours(24);

/// One element of `executions`, as the client's `ExecutionRecord` type spells it.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ExecutionRecord {
    id: Option<Value>,
    timestamp: Option<Value>,
    provider: Option<Value>,
    model: Option<Value>,
    prompt_tokens: Option<Value>,
    completion_tokens: Option<Value>,
    total_tokens: Option<Value>,
    duration: Option<Value>,
    success: Option<Value>,
    error: Option<Value>,
    execution_mode: Option<Value>,
    context: Option<Value>,
    #[serde(default)]
    compiled_prompt: Presence,
    #[serde(default)]
    response: Presence,
}

/// What bounds a record's timestamp at the moment it is received.
#[derive(Debug, Clone, Copy)]
pub struct Acceptance {
    pub now: DateTime<Utc>,
    /// The oldest timestamp still inside the retention period.
    pub oldest: DateTime<Utc>,
    pub retention_days: u32,
}

impl ExecutionRecord {
    /// Reads one record from its JSON text.
    pub fn from_json(text: &str) -> Result<Self, RecordError> {
        if !text.trim_start().starts_with('{') {
            return Err(RecordError::NotAnObject);
        }
        serde_json::from_str(text).map_err(|err| {
            let message = err.to_string();
            let cut = message.find(" at line ").unwrap_or(message.len());
            RecordError::Malformed(message[..cut].to_owned())
        })
    }

    /// Checks every field and applies the client's defaults.
    pub fn into_usage(self, acceptance: Acceptance) -> Result<UsageRecord, RecordError> {
        let id = ExecutionId::parse(required_string(self.id, "id")?)?;
        let provider = Provider::parse(required_string(self.provider, "provider")?)?;
        let model = Model::parse(required_string(self.model, "model")?)?;
        let timestamp = timestamp(self.timestamp, acceptance)?;
        let tokens = TokenUsage::new(
            token_count(self.prompt_tokens, "promptTokens")?,
            token_count(self.completion_tokens, "completionTokens")?,
            token_count(self.total_tokens, "totalTokens")?,
        );
        Ok(UsageRecord {
            id,
            timestamp,
            provider,
            model,
            tokens,
            duration_ms: duration(self.duration)?,
            success: success(self.success)?,
            error: optional_text(self.error, "error", MAX_ERROR_CHARS)?,
            execution_mode: execution_mode(self.execution_mode)?,
            context: optional_text(self.context, "context", MAX_CONTEXT_CHARS)?,
            has_compiled_prompt: self.compiled_prompt.0,
            has_response: self.response.0,
        })
    }
}

fn required_string(value: Option<Value>, field: &'static str) -> Result<String, RecordError> {
    match value {
        None => Err(RecordError::Missing(field)),
        Some(Value::String(text)) => Ok(text),
        Some(_) => Err(RecordError::WrongType {
            field,
            expected: "a string",
        }),
    }
}

fn optional_text(
    value: Option<Value>,
    field: &'static str,
    max: usize,
) -> Result<Option<String>, RecordError> {
    match value {
        None => Ok(None),
        Some(Value::String(text)) if text.is_empty() => Ok(None),
        Some(Value::String(text)) => Ok(Some(truncate_chars(text, max))),
        Some(_) => Err(RecordError::WrongType {
            field,
            expected: "a string",
        }),
    }
}

fn token_count(value: Option<Value>, field: &'static str) -> Result<u64, RecordError> {
    const EXPECTED: &str = "a non-negative integer of at most 10^12";
    let Some(value) = value else { return Ok(0) };
    let number = value.as_number().ok_or(RecordError::WrongType {
        field,
        expected: EXPECTED,
    })?;
    let count = match number.as_u64() {
        Some(count) => Some(count),
        // `12.0` is an integer written as a float; `12.5` is not.
        None => number
            .as_f64()
            .filter(|f| *f >= 0.0 && f.fract() == 0.0)
            .map(|f| f as u64),
    };
    count
        .filter(|count| *count <= MAX_TOKENS)
        .ok_or(RecordError::WrongType {
            field,
            expected: EXPECTED,
        })
}

fn duration(value: Option<Value>) -> Result<f64, RecordError> {
    let Some(value) = value else { return Ok(0.0) };
    value
        .as_f64()
        .filter(|ms| ms.is_finite() && *ms >= 0.0 && *ms <= MAX_DURATION_MS)
        .ok_or(RecordError::WrongType {
            field: "duration",
            expected: "a non-negative number of milliseconds",
        })
}

fn success(value: Option<Value>) -> Result<bool, RecordError> {
    match value {
        None => Ok(false),
        Some(Value::Bool(flag)) => Ok(flag),
        Some(_) => Err(RecordError::WrongType {
            field: "success",
            expected: "a boolean",
        }),
    }
}

fn execution_mode(value: Option<Value>) -> Result<ExecutionMode, RecordError> {
    let wrong = RecordError::WrongType {
        field: "executionMode",
        expected: "\"local\" or \"remote\"",
    };
    match value {
        None => Ok(ExecutionMode::default()),
        Some(Value::String(text)) => ExecutionMode::parse(&text).ok_or(wrong),
        Some(_) => Err(wrong),
    }
}

fn timestamp(value: Option<Value>, acceptance: Acceptance) -> Result<DateTime<Utc>, RecordError> {
    const EXPECTED: &str = "epoch milliseconds or an RFC 3339 date-time";
    let wrong = RecordError::WrongType {
        field: "timestamp",
        expected: EXPECTED,
    };
    let at = match value {
        None => acceptance.now,
        Some(Value::Number(number)) => number
            .as_i64()
            .or_else(|| {
                number
                    .as_f64()
                    .filter(|f| f.is_finite())
                    .map(|f| f.floor() as i64)
            })
            .and_then(DateTime::from_timestamp_millis)
            .ok_or(wrong)?,
        Some(Value::String(text)) => DateTime::parse_from_rfc3339(text.trim())
            .map(|at| at.with_timezone(&Utc))
            .map_err(|_| wrong)?,
        Some(_) => return Err(wrong),
    };
    let at = truncate_to_millis(at);
    if at < acceptance.oldest {
        return Err(RecordError::TooOld {
            days: acceptance.retention_days,
        });
    }
    if at > acceptance.now + MAX_FUTURE_SKEW {
        return Err(RecordError::TooFarInFuture);
    }
    Ok(at)
}

fn truncate_to_millis(at: DateTime<Utc>) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(at.timestamp_millis()).unwrap_or(at)
}

/// Whether a large text field was sent, learnt without keeping its text.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
struct Presence(bool);

impl<'de> Deserialize<'de> for Presence {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(PresenceVisitor)
    }
}

struct PresenceVisitor;

impl<'de> Visitor<'de> for PresenceVisitor {
    type Value = Presence;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_str<E: de::Error>(self, text: &str) -> Result<Presence, E> {
        Ok(Presence(!text.is_empty()))
    }

    fn visit_unit<E: de::Error>(self) -> Result<Presence, E> {
        Ok(Presence(false))
    }

    fn visit_none<E: de::Error>(self) -> Result<Presence, E> {
        Ok(Presence(false))
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<Presence, E> {
        Ok(Presence(true))
    }

    fn visit_i64<E: de::Error>(self, _: i64) -> Result<Presence, E> {
        Ok(Presence(true))
    }

    fn visit_u64<E: de::Error>(self, _: u64) -> Result<Presence, E> {
        Ok(Presence(true))
    }

    fn visit_f64<E: de::Error>(self, _: f64) -> Result<Presence, E> {
        Ok(Presence(true))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Presence, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(Presence(true))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Presence, A::Error> {
        while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
        Ok(Presence(true))
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;
    use serde_json::json;

    use super::*;

    fn acceptance() -> Acceptance {
        let now = Utc.with_ymd_and_hms(2026, 12, 3, 12, 0, 0).unwrap();
        Acceptance {
            now,
            oldest: now - TimeDelta::days(90),
            retention_days: 90,
        }
    }

    fn parse(value: serde_json::Value) -> Result<UsageRecord, RecordError> {
        ExecutionRecord::from_json(&value.to_string())?.into_usage(acceptance())
    }

    #[test]
    fn a_minimal_record_gets_the_client_defaults() {
        let record = parse(json!({"id": "e1", "provider": "openai", "model": "gpt-4o"})).unwrap();
        assert_eq!(record.timestamp, acceptance().now);
        assert_eq!(record.tokens, TokenUsage::new(0, 0, 0));
        assert_eq!(record.duration_ms, 0.0);
        assert!(!record.success);
        assert_eq!(record.execution_mode, ExecutionMode::Local);
        assert_eq!((record.error, record.context), (None, None));
        assert!(!record.has_compiled_prompt && !record.has_response);
    }

    #[test]
    fn a_full_client_record_keeps_only_presence_of_prompt_and_response() {
        let record = parse(json!({
            "id": "e1", "timestamp": 1_796_299_200_000_i64, "provider": "anthropic",
            "model": "claude", "promptTokens": 10, "completionTokens": 5, "duration": 12.5,
            "success": true, "executionMode": "remote", "context": "notes/a.md",
            "compiledPrompt": "secret prompt", "response": "secret answer", "synced": false,
            "somethingNew": {"nested": [1, 2]}
        }))
        .unwrap();
        assert_eq!(record.timestamp.timestamp_millis(), 1_796_299_200_000);
        assert_eq!(record.tokens.total(), 15);
        assert_eq!(record.duration_ms, 12.5);
        assert!(record.success && record.has_compiled_prompt && record.has_response);
        assert_eq!(record.execution_mode, ExecutionMode::Remote);
        assert!(!format!("{record:?}").contains("secret"));
    }

    #[test]
    fn rfc3339_timestamps_are_accepted() {
        let record = parse(json!({
            "id": "e1", "provider": "p", "model": "m", "timestamp": "2026-12-03T10:00:00+01:00"
        }))
        .unwrap();
        assert_eq!(
            record.timestamp,
            Utc.with_ymd_and_hms(2026, 12, 3, 9, 0, 0).unwrap()
        );
    }

    #[test]
    fn each_bad_field_is_named_in_the_error() {
        let base = json!({"id": "e1", "provider": "p", "model": "m"});
        let cases = [
            ("id", json!(null), "id is required"),
            ("provider", json!(""), "provider is required"),
            ("model", json!(7), "model must be a string"),
            (
                "promptTokens",
                json!(-1),
                "promptTokens must be a non-negative integer",
            ),
            (
                "totalTokens",
                json!(1.5),
                "totalTokens must be a non-negative integer",
            ),
            (
                "completionTokens",
                json!("9"),
                "completionTokens must be a non-negative",
            ),
            (
                "promptTokens",
                json!(1e300),
                "promptTokens must be a non-negative integer",
            ),
            (
                "duration",
                json!(-3),
                "duration must be a non-negative number",
            ),
            ("success", json!("yes"), "success must be a boolean"),
            (
                "executionMode",
                json!("cloud"),
                "executionMode must be \"local\" or \"remote\"",
            ),
            (
                "timestamp",
                json!("yesterday"),
                "timestamp must be epoch milliseconds",
            ),
            (
                "timestamp",
                json!(true),
                "timestamp must be epoch milliseconds",
            ),
            ("error", json!({"$gt": ""}), "error must be a string"),
        ];
        for (field, value, expected) in cases {
            let mut record = base.clone();
            record[field] = value;
            let message = parse(record).unwrap_err().to_string();
            assert!(message.starts_with(expected), "{field}: got {message:?}");
        }
    }

    #[test]
    fn timestamps_outside_retention_or_too_far_ahead_are_rejected() {
        let now = acceptance().now;
        let old = (now - TimeDelta::days(91)).timestamp_millis();
        let ahead = (now + TimeDelta::hours(25)).timestamp_millis();
        let near = (now + TimeDelta::hours(23)).timestamp_millis();
        let record = |ts: i64| json!({"id": "e", "provider": "p", "model": "m", "timestamp": ts});
        assert_eq!(parse(record(old)), Err(RecordError::TooOld { days: 90 }));
        assert_eq!(parse(record(ahead)), Err(RecordError::TooFarInFuture));
        assert!(parse(record(near)).is_ok());
    }

    #[test]
    fn long_error_and_context_are_cut_not_rejected() {
        let record = parse(json!({
            "id": "e", "provider": "p", "model": "m",
            "error": "e".repeat(5_000), "context": "c".repeat(600)
        }))
        .unwrap();
        assert_eq!(record.error.unwrap().len(), MAX_ERROR_CHARS);
        assert_eq!(record.context.unwrap().len(), MAX_CONTEXT_CHARS);
    }

    #[test]
    fn non_objects_and_duplicate_keys_are_rejected_alone() {
        assert_eq!(
            ExecutionRecord::from_json("[1]").unwrap_err(),
            RecordError::NotAnObject
        );
        assert_eq!(
            ExecutionRecord::from_json("42").unwrap_err(),
            RecordError::NotAnObject
        );
        let duplicate = ExecutionRecord::from_json(r#"{"id": "a", "id": "b"}"#).unwrap_err();
        assert!(
            duplicate.to_string().contains("duplicate field"),
            "{duplicate}"
        );
    }

    #[test]
    fn an_empty_prompt_or_null_response_is_not_present() {
        let record = parse(json!({
            "id": "e", "provider": "p", "model": "m", "compiledPrompt": "", "response": null
        }))
        .unwrap();
        assert!(!record.has_compiled_prompt && !record.has_response);
    }
}
