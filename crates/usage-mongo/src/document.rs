//! The one place that turns a record into a `usages` document, and reads one back.
//!
//! - `userId`, `executionId`: strings, the owner and the client's id, unique together;
//! - `timestamp`, `createdAt`, `updatedAt`: BSON dates, because a TTL index and
//!   `$dateToString` ignore numbers;
//! - `provider`, `model`, `executionMode`: strings;
//! - `promptTokens`, `completionTokens`, `totalTokens`: 64-bit integers;
//! - `duration`: a double, in milliseconds;
//! - `success`, `hasCompiledPrompt`, `hasResponse`: booleans;
//! - `error`, `context`: strings, left out when absent.
//!
//! Prompt and response text have no field: the domain record cannot carry them.

use chrono::{DateTime, Utc};
use mongodb::bson::{self, Bson, Document, doc};
use usage_domain::{ExecutionId, ExecutionMode, Model, Provider, TokenUsage, UsageRecord, UserId};

/// The server's duplicate key error code.
pub(crate) const DUPLICATE_KEY: i32 = 11_000;

/// A BSON date at the millisecond precision the port promises.
pub(crate) fn bson_date(at: DateTime<Utc>) -> bson::DateTime {
    bson::DateTime::from_millis(at.timestamp_millis())
}

/// The document stored for `record` of `user`; `now` becomes `createdAt` and `updatedAt`.
pub(crate) fn usage_document(user: &UserId, record: &UsageRecord, now: bson::DateTime) -> Document {
    let mut document = doc! {
        "userId": user.as_str(),
        "executionId": record.id.as_str(),
        "timestamp": bson_date(record.timestamp),
        "provider": record.provider.as_str(),
        "model": record.model.as_str(),
        "promptTokens": tokens(record.tokens.prompt()),
        "completionTokens": tokens(record.tokens.completion()),
        "totalTokens": tokens(record.tokens.total()),
        "duration": record.duration_ms,
        "success": record.success,
        "executionMode": record.execution_mode.as_str(),
        "hasCompiledPrompt": record.has_compiled_prompt,
        "hasResponse": record.has_response,
        "createdAt": now,
        "updatedAt": now,
    };
    if let Some(error) = &record.error {
        document.insert("error", error.as_str());
    }
    if let Some(context) = &record.context {
        document.insert("context", context.as_str());
    }
    document
}

/// Token counts are bounded far below `i64::MAX` by the domain; saturate rather than wrap.
fn tokens(count: u64) -> i64 {
    i64::try_from(count).unwrap_or(i64::MAX)
}

/// A field of a server reply that is missing or has an unexpected type or value.
#[derive(Debug, thiserror::Error)]
pub(crate) enum DecodeError {
    #[error("`{0}` is not a non-negative whole number")]
    NotACount(String),
    #[error("`{0}` is not a string")]
    NotAString(String),
    #[error("`{0}` is not a YYYY-MM-DD date")]
    NotADay(String),
    #[error("`{0}` is not a document")]
    NotADocument(String),
    #[error("`{0}` is not an array")]
    NotAnArray(String),
    #[error("the aggregation returned no document")]
    NoResult,
    #[error("`{0}` is not a date")]
    NotADate(String),
    #[error("`{0}` is not a boolean")]
    NotABool(String),
    #[error("`{field}` holds a value the service would not store: {reason}")]
    Invalid { field: String, reason: String },
}

/// Reads a stored `usages` document back as the record it was written from.
pub(crate) fn usage_record(document: &Document) -> Result<UsageRecord, DecodeError> {
    let invalid = |field: &str| {
        let field = field.to_owned();
        move |error: usage_domain::RecordError| DecodeError::Invalid {
            field,
            reason: error.to_string(),
        }
    };
    let timestamp = document
        .get_datetime("timestamp")
        .ok()
        .and_then(|at| DateTime::from_timestamp_millis(at.timestamp_millis()))
        .ok_or_else(|| DecodeError::NotADate("timestamp".into()))?;
    let mode = read_str(document, "executionMode")?;
    Ok(UsageRecord {
        id: ExecutionId::parse(read_str(document, "executionId")?)
            .map_err(invalid("executionId"))?,
        timestamp,
        provider: Provider::parse(read_str(document, "provider")?).map_err(invalid("provider"))?,
        model: Model::parse(read_str(document, "model")?).map_err(invalid("model"))?,
        tokens: TokenUsage::new(
            read_count(document, "promptTokens")?,
            read_count(document, "completionTokens")?,
            read_count(document, "totalTokens")?,
        ),
        duration_ms: read_number(document, "duration")?,
        success: read_bool(document, "success")?,
        error: optional_str(document, "error")?,
        execution_mode: ExecutionMode::parse(mode).unwrap_or_default(),
        context: optional_str(document, "context")?,
        has_compiled_prompt: read_bool(document, "hasCompiledPrompt")?,
        has_response: read_bool(document, "hasResponse")?,
    })
}

/// A number the server may hand back as Double, or as an integer for a whole value.
fn read_number(document: &Document, field: &str) -> Result<f64, DecodeError> {
    match document.get(field) {
        Some(Bson::Double(number)) => Ok(*number),
        Some(Bson::Int32(number)) => Ok(f64::from(*number)),
        Some(Bson::Int64(number)) => Ok(*number as f64),
        _ => Err(DecodeError::NotACount(field.to_owned())),
    }
}

fn read_bool(document: &Document, field: &str) -> Result<bool, DecodeError> {
    document
        .get_bool(field)
        .map_err(|_| DecodeError::NotABool(field.to_owned()))
}

fn optional_str(document: &Document, field: &str) -> Result<Option<String>, DecodeError> {
    match document.get(field) {
        None | Some(Bson::Null) => Ok(None),
        Some(Bson::String(text)) => Ok(Some(text.clone())),
        Some(_) => Err(DecodeError::NotAString(field.to_owned())),
    }
}

/// Reads a count that the server may send as Int32, Int64 or Double, whichever it chose for
/// a `$sum`: it widens integers on overflow, and a sum over doubles is a double.
pub(crate) fn read_count(document: &Document, field: &str) -> Result<u64, DecodeError> {
    document
        .get(field)
        .and_then(count_of)
        .ok_or_else(|| DecodeError::NotACount(field.to_owned()))
}

/// A whole, non-negative number in any numeric BSON type; `None` otherwise.
pub(crate) fn count_of(value: &Bson) -> Option<u64> {
    // 2^64 as a double; every smaller whole double converts to u64 exactly.
    const U64_LIMIT: f64 = 18_446_744_073_709_551_616.0;
    match value {
        Bson::Int32(number) => u64::try_from(*number).ok(),
        Bson::Int64(number) => u64::try_from(*number).ok(),
        Bson::Double(number) if number.is_finite() && *number >= 0.0 && number.fract() == 0.0 => {
            (*number < U64_LIMIT).then_some(*number as u64)
        }
        _ => None,
    }
}

pub(crate) fn read_str<'a>(document: &'a Document, field: &str) -> Result<&'a str, DecodeError> {
    document
        .get_str(field)
        .map_err(|_| DecodeError::NotAString(field.to_owned()))
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;
    use usage_domain::{ExecutionId, ExecutionMode, Model, Provider, TokenUsage};

    use super::*;

    fn record() -> UsageRecord {
        UsageRecord {
            id: ExecutionId::parse("exec-1").unwrap(),
            timestamp: Utc.with_ymd_and_hms(2026, 12, 3, 12, 0, 0).unwrap(),
            provider: Provider::parse("openai").unwrap(),
            model: Model::parse("gpt-4o").unwrap(),
            tokens: TokenUsage::new(10, 5, 0),
            duration_ms: 1234.5,
            success: false,
            error: Some("rate limited".into()),
            execution_mode: ExecutionMode::Remote,
            context: None,
            has_compiled_prompt: true,
            has_response: false,
        }
    }

    #[test]
    fn a_record_is_stored_with_camel_case_fields_dates_and_64_bit_counts() {
        let now = bson::DateTime::from_millis(1_000);
        let user = UserId::parse("alice").unwrap();
        let document = usage_document(&user, &record(), now);

        let timestamp = Utc.with_ymd_and_hms(2026, 12, 3, 12, 0, 0).unwrap();
        assert_eq!(
            document,
            doc! {
                "userId": "alice", "executionId": "exec-1",
                "timestamp": bson::DateTime::from_millis(timestamp.timestamp_millis()),
                "provider": "openai", "model": "gpt-4o",
                "promptTokens": 10_i64, "completionTokens": 5_i64, "totalTokens": 15_i64,
                "duration": 1234.5, "success": false, "executionMode": "remote",
                "hasCompiledPrompt": true, "hasResponse": false,
                "createdAt": now, "updatedAt": now, "error": "rate limited",
            }
        );
        assert!(
            !document.contains_key("context"),
            "absent fields are left out"
        );
    }

    #[test]
    fn a_stored_document_reads_back_as_its_record() {
        let user = UserId::parse("alice").unwrap();
        let document = usage_document(&user, &record(), bson::DateTime::from_millis(1_000));
        assert_eq!(usage_record(&document).unwrap(), record());
    }

    #[test]
    fn counts_are_read_from_any_numeric_type() {
        let reply = doc! { "a": 3_i32, "b": 4_i64, "c": 5.0, "d": -1_i32, "e": 1.5, "f": "7" };
        assert_eq!(read_count(&reply, "a").unwrap(), 3);
        assert_eq!(read_count(&reply, "b").unwrap(), 4);
        assert_eq!(read_count(&reply, "c").unwrap(), 5);
        for field in ["d", "e", "f", "missing"] {
            assert!(read_count(&reply, field).is_err(), "{field} is not a count");
        }
    }
}
