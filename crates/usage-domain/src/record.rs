//! The record as we promise to store it: every field checked, bounded and defaulted.
//!
//! Prompt and response text have no field here at all, so they cannot be stored by mistake.

use std::fmt;

use chrono::{DateTime, Utc};

/// Upper bound of a single token count. No model comes near it; it keeps sums far from overflow.
pub const MAX_TOKENS: u64 = 1_000_000_000_000;
/// Upper bound of a duration in milliseconds (about 31 years).
pub const MAX_DURATION_MS: f64 = 1e12;
/// Characters of an error message that are kept; the rest is cut off.
pub const MAX_ERROR_CHARS: usize = 1_000;
/// Characters of a context string that are kept; the rest is cut off.
pub const MAX_CONTEXT_CHARS: usize = 512;

/// Why one record of a batch was rejected. The message names the field as the client spells it.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum RecordError {
    #[error("record must be a JSON object")]
    NotAnObject,
    #[error("record is not valid JSON for an execution: {0}")]
    Malformed(String),
    #[error("{0} is required")]
    Missing(&'static str),
    #[error("{field} must be at most {max} characters")]
    TooLong { field: &'static str, max: usize },
    #[error("{field} must be {expected}")]
    WrongType {
        field: &'static str,
        expected: &'static str,
    },
    #[error("timestamp is older than the retention period of {days} days")]
    TooOld { days: u32 },
    #[error("timestamp is more than 24 hours in the future")]
    TooFarInFuture,
}

impl RecordError {
    /// A stable, low-cardinality label per variant, for metrics and tallies.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::NotAnObject => "not_an_object",
            Self::Malformed(_) => "malformed",
            Self::Missing(_) => "missing",
            Self::TooLong { .. } => "too_long",
            Self::WrongType { .. } => "wrong_type",
            Self::TooOld { .. } => "too_old",
            Self::TooFarInFuture => "too_far_in_future",
        }
    }

    /// Every label [`Self::kind`] can return, so metrics can show zeros before any rejection.
    pub const KINDS: [&'static str; 7] = [
        "not_an_object",
        "malformed",
        "missing",
        "too_long",
        "wrong_type",
        "too_old",
        "too_far_in_future",
    ];
}

/// Declares a non-empty string newtype with a character limit, parsed from client input.
macro_rules! bounded_text {
    ($(#[$doc:meta])* $name:ident, field = $field:literal, max = $max:literal) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(String);

        impl $name {
            /// Longest value accepted, in characters.
            pub const MAX_CHARS: usize = $max;

            /// Accepts 1 to `MAX_CHARS` characters; blank input counts as missing.
            pub fn parse(raw: impl Into<String>) -> Result<Self, RecordError> {
                let raw = raw.into();
                if raw.trim().is_empty() {
                    return Err(RecordError::Missing($field));
                }
                if raw.chars().count() > Self::MAX_CHARS {
                    return Err(RecordError::TooLong { field: $field, max: Self::MAX_CHARS });
                }
                Ok(Self(raw))
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

bounded_text!(
    /// The client's execution id; unique per user.
    ExecutionId, field = "id", max = 128
);
bounded_text!(
    /// The LLM provider, such as `openai` or `ollama`.
    Provider, field = "provider", max = 64
);
bounded_text!(
    /// The model name as the provider spells it.
    Model, field = "model", max = 128
);

/// Where the execution ran.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ExecutionMode {
    #[default]
    Local,
    Remote,
}

impl ExecutionMode {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Local => "local",
            Self::Remote => "remote",
        }
    }

    /// Parses the wire spelling, `"local"` or `"remote"`.
    pub fn parse(raw: &str) -> Option<Self> {
        match raw {
            "local" => Some(Self::Local),
            "remote" => Some(Self::Remote),
            _ => None,
        }
    }
}

/// Token counts whose total is consistent with its parts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TokenUsage {
    prompt: u64,
    completion: u64,
    total: u64,
}

impl TokenUsage {
    /// A zero (or absent) total with non-zero parts becomes the sum of the parts.
    ///
    /// Callers bound each count by [`MAX_TOKENS`], so the sum cannot overflow.
    pub fn new(prompt: u64, completion: u64, total: u64) -> Self {
        let total = if total == 0 {
            prompt + completion
        } else {
            total
        };
        Self {
            prompt,
            completion,
            total,
        }
    }

    pub fn prompt(self) -> u64 {
        self.prompt
    }

    pub fn completion(self) -> u64 {
        self.completion
    }

    pub fn total(self) -> u64 {
        self.total
    }
}

/// One execution, ready to store.
#[derive(Debug, Clone, PartialEq)]
pub struct UsageRecord {
    pub id: ExecutionId,
    /// When the execution ran, at millisecond precision.
    pub timestamp: DateTime<Utc>,
    pub provider: Provider,
    pub model: Model,
    pub tokens: TokenUsage,
    /// Milliseconds, finite and non-negative.
    pub duration_ms: f64,
    pub success: bool,
    /// At most [`MAX_ERROR_CHARS`] characters.
    pub error: Option<String>,
    pub execution_mode: ExecutionMode,
    /// At most [`MAX_CONTEXT_CHARS`] characters.
    pub context: Option<String>,
    pub has_compiled_prompt: bool,
    pub has_response: bool,
}

/// Cuts `text` to at most `max` characters, on a character boundary.
pub(crate) fn truncate_chars(mut text: String, max: usize) -> String {
    if let Some((byte_index, _)) = text.char_indices().nth(max) {
        text.truncate(byte_index);
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounded_text_rejects_blank_and_overlong_values_naming_the_field() {
        assert_eq!(Provider::parse(""), Err(RecordError::Missing("provider")));
        assert_eq!(Model::parse("   "), Err(RecordError::Missing("model")));
        let long = "x".repeat(129);
        assert_eq!(
            ExecutionId::parse(long).unwrap_err().to_string(),
            "id must be at most 128 characters"
        );
        assert!(
            ExecutionId::parse("é".repeat(128)).is_ok(),
            "limit counts characters"
        );
    }

    #[test]
    fn total_tokens_is_derived_only_when_zero() {
        assert_eq!(TokenUsage::new(10, 5, 0).total(), 15);
        assert_eq!(TokenUsage::new(10, 5, 40).total(), 40);
        assert_eq!(TokenUsage::new(0, 0, 0).total(), 0);
    }

    #[test]
    fn truncation_keeps_whole_characters() {
        assert_eq!(truncate_chars("héllo".to_owned(), 2), "hé");
        assert_eq!(truncate_chars("hi".to_owned(), 5), "hi");
    }
}
