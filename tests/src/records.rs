//! Builders for domain records and client-shaped JSON, so tests state only what matters.

use chrono::{DateTime, TimeZone, Utc};
use serde_json::{Value, json};
use usage_domain::{ExecutionId, ExecutionMode, Model, Provider, TokenUsage, UsageRecord, UserId};

pub fn user(name: &str) -> UserId {
    UserId::parse(name).expect("test user ids are valid")
}

pub fn utc(y: i32, mo: u32, d: u32, h: u32, mi: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(y, mo, d, h, mi, 0)
        .single()
        .expect("valid test time")
}

/// A successful record with 10 prompt and 5 completion tokens.
pub fn record(id: &str, at: DateTime<Utc>) -> UsageRecord {
    UsageRecord {
        id: ExecutionId::parse(id).expect("valid id"),
        timestamp: at,
        provider: Provider::parse("openai").expect("valid provider"),
        model: Model::parse("gpt-4o").expect("valid model"),
        tokens: TokenUsage::new(10, 5, 0),
        duration_ms: 1_250.5,
        success: true,
        error: None,
        execution_mode: ExecutionMode::Local,
        context: None,
        has_compiled_prompt: true,
        has_response: true,
    }
}

pub fn with_model(mut record: UsageRecord, provider: &str, model: &str) -> UsageRecord {
    record.provider = Provider::parse(provider).expect("valid provider");
    record.model = Model::parse(model).expect("valid model");
    record
}

pub fn failed(mut record: UsageRecord) -> UsageRecord {
    record.success = false;
    record.error = Some("rate limited".into());
    record
}

/// One execution exactly as the web client uploads it, prompt and response text included.
pub fn client_record(id: &str, at: DateTime<Utc>) -> Value {
    json!({
        "id": id,
        "timestamp": at.timestamp_millis(),
        "provider": "openai",
        "model": "gpt-4o",
        "promptTokens": 120,
        "completionTokens": 80,
        "totalTokens": 200,
        "duration": 2_345.6,
        "success": true,
        "executionMode": "local",
        "context": "notes/today.md",
        "compiledPrompt": format!("You are a helpful assistant. {}", "prompt text ".repeat(150)),
        "response": format!("Here is the answer. {}", "response text ".repeat(150)),
        "synced": false,
    })
}
