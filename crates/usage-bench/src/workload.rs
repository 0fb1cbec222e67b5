//! What the driver sends and stores: client-shaped sync bodies and domain records.
//!
//! Bodies follow the real web client: batches of 50 executions, each carrying about 2 KB of
//! `compiledPrompt` and 2 KB of `response` text with the escapes real prompts have. Every
//! record gets a unique id, so each one is a real insert, never a duplicate.

use std::fmt::Write as _;

use chrono::{DateTime, TimeDelta, Utc};
use usage_domain::{ExecutionId, ExecutionMode, Model, Provider, TokenUsage, UsageRecord};

/// Records per sync request, as the web client batches them.
pub const BATCH_RECORDS: usize = 50;

/// The (provider, model) pairs a heavy user spreads work over.
const MODELS: [(&str, &str); 5] = [
    ("openai", "gpt-4o"),
    ("openai", "gpt-4o-mini"),
    ("anthropic", "claude-sonnet-4"),
    ("anthropic", "claude-haiku-3.5"),
    ("ollama", "llama3.1:8b"),
];

/// One line of prompt-like text; JSON-escaped newlines and quotes as a real prompt has them.
const PROMPT_LINE: &str =
    r#"You are a careful assistant. Summarise the \"notes\" below in three bullet points.\n"#;
const RESPONSE_LINE: &str =
    r#"- The meeting moved to Thursday; Zoë will bring the draft (≈ 2 pages).\n"#;
/// Bytes of each large text field, roughly.
const TEXT_BYTES: usize = 2_048;

/// A small, fast, seeded generator (SplitMix64): the same seed gives the same workload.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Self(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A number in `0..bound` (`bound` > 0).
    pub fn below(&mut self, bound: u64) -> u64 {
        self.next_u64() % bound
    }
}

/// Builds sync bodies; the large text is rendered once and copied into every record.
#[derive(Debug, Clone)]
pub struct BodyBuilder {
    /// Everything after `"timestamp":N,` for each model, ending with the record's `}`.
    tails: Vec<String>,
}

impl Default for BodyBuilder {
    fn default() -> Self {
        Self::new()
    }
}

impl BodyBuilder {
    pub fn new() -> Self {
        let prompt = repeat_to(PROMPT_LINE, TEXT_BYTES);
        let response = repeat_to(RESPONSE_LINE, TEXT_BYTES);
        let tails = MODELS
            .iter()
            .enumerate()
            .map(|(index, (provider, model))| {
                let prompt_tokens = 400 + 37 * index;
                let completion_tokens = 150 + 11 * index;
                let total_tokens = prompt_tokens + completion_tokens;
                format!(
                    concat!(
                        r#""provider":"{}","model":"{}","promptTokens":{},"#,
                        r#""completionTokens":{},"totalTokens":{},"duration":2345.6,"#,
                        r#""success":true,"executionMode":"local","context":"notes/today.md","#,
                        r#""compiledPrompt":"{}","response":"{}","synced":false}}"#,
                    ),
                    provider,
                    model,
                    prompt_tokens,
                    completion_tokens,
                    total_tokens,
                    prompt,
                    response
                )
            })
            .collect();
        Self { tails }
    }

    /// The body of request number `request`: [`BATCH_RECORDS`] records with ids unique to
    /// `(run, request, position)`, timestamped just before `now`.
    pub fn body(&self, run: &str, request: u64, now: DateTime<Utc>) -> Vec<u8> {
        let mut body = String::with_capacity(BATCH_RECORDS * (self.tails[0].len() + 80));
        body.push_str(r#"{"executions":["#);
        for position in 0..BATCH_RECORDS {
            if position > 0 {
                body.push(',');
            }
            let serial = request * BATCH_RECORDS as u64 + position as u64;
            let at = now - TimeDelta::milliseconds((serial % 600_000) as i64);
            // Writing into a String cannot fail.
            let _ = write!(
                body,
                r#"{{"id":"{run}-{request}-{position}","timestamp":{},"#,
                at.timestamp_millis()
            );
            body.push_str(&self.tails[serial as usize % self.tails.len()]);
        }
        body.push_str("]}");
        body.into_bytes()
    }
}

/// `text` repeated until it is at least `bytes` long.
fn repeat_to(text: &str, bytes: usize) -> String {
    text.repeat(bytes.div_ceil(text.len()))
}

/// The domain record the service would store for position `serial` of a workload, with
/// its timestamp chosen by the caller.
pub fn record(id: String, serial: u64, at: DateTime<Utc>, rng: &mut Rng) -> UsageRecord {
    let (provider, model) = MODELS[serial as usize % MODELS.len()];
    let prompt = 200 + rng.below(2_000);
    let completion = 50 + rng.below(800);
    let success = rng.below(20) != 0;
    UsageRecord {
        id: ExecutionId::parse(id).expect("generated ids are valid"),
        timestamp: at,
        provider: Provider::parse(provider).expect("known provider"),
        model: Model::parse(model).expect("known model"),
        tokens: TokenUsage::new(prompt, completion, 0),
        duration_ms: 500.0 + rng.below(20_000) as f64,
        success,
        error: (!success).then(|| "rate limited".to_owned()),
        execution_mode: ExecutionMode::Local,
        context: Some("notes/today.md".to_owned()),
        has_compiled_prompt: true,
        has_response: true,
    }
}

/// The records of sync request number `request`, as the service stores them.
pub fn batch_records(run: &str, request: u64, now: DateTime<Utc>) -> Vec<UsageRecord> {
    let mut rng = Rng::new(request);
    (0..BATCH_RECORDS)
        .map(|position| {
            let serial = request * BATCH_RECORDS as u64 + position as u64;
            let at = now - TimeDelta::milliseconds((serial % 600_000) as i64);
            record(format!("{run}-{request}-{position}"), serial, at, &mut rng)
        })
        .collect()
}

/// Records `first..first + count` of a heavy user's history, spread uniformly at random
/// over `span` before `now` (never closer to `now` than a minute).
pub fn history(
    first: u64,
    count: u64,
    now: DateTime<Utc>,
    span: TimeDelta,
) -> impl Iterator<Item = UsageRecord> {
    let span_ms = (span - TimeDelta::minutes(1)).num_milliseconds().max(1) as u64;
    let mut rng = Rng::new(0x5EED ^ first);
    (first..first + count).map(move |serial| {
        let back = TimeDelta::minutes(1) + TimeDelta::milliseconds(rng.below(span_ms) as i64);
        record(format!("h{serial}"), serial, now - back, &mut rng)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_body_is_valid_json_with_unique_ids_and_large_text() {
        let now = Utc::now();
        let body = BodyBuilder::new().body("run", 7, now);
        let value: serde_json::Value = serde_json::from_slice(&body).unwrap();
        let records = value["executions"].as_array().unwrap();
        assert_eq!(records.len(), BATCH_RECORDS);
        let ids: std::collections::HashSet<_> =
            records.iter().map(|r| r["id"].as_str().unwrap()).collect();
        assert_eq!(ids.len(), BATCH_RECORDS);
        // About 2 KB each once unescaped (the wire text, with its escapes, is at least that).
        let prompt = records[0]["compiledPrompt"].as_str().unwrap();
        assert!(prompt.len() > TEXT_BYTES * 9 / 10 && prompt.contains('\n'));
        assert!(records[0]["response"].as_str().unwrap().len() > TEXT_BYTES * 9 / 10);
    }

    #[test]
    fn history_stays_inside_its_span() {
        let now = Utc::now();
        let span = TimeDelta::days(90);
        for record in history(0, 1_000, now, span) {
            assert!(record.timestamp < now && record.timestamp > now - span);
        }
    }
}
