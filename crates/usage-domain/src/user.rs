//! The identity that owns records: always taken from a verified token, never from a request.

use std::fmt;

/// Longest user id we accept from a token's subject claim.
pub const MAX_USER_ID_CHARS: usize = 256;

/// A non-empty, bounded user id.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct UserId(String);

/// Why a subject claim cannot be a user id.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UserIdError {
    #[error("the user id is empty")]
    Empty,
    #[error("the user id is longer than {MAX_USER_ID_CHARS} characters")]
    TooLong,
}

impl UserId {
    /// Accepts any non-blank subject of at most [`MAX_USER_ID_CHARS`] characters.
    pub fn parse(raw: &str) -> Result<Self, UserIdError> {
        if raw.trim().is_empty() {
            return Err(UserIdError::Empty);
        }
        if raw.chars().count() > MAX_USER_ID_CHARS {
            return Err(UserIdError::TooLong);
        }
        Ok(Self(raw.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for UserId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blank_and_overlong_subjects_are_not_user_ids() {
        assert_eq!(UserId::parse(""), Err(UserIdError::Empty));
        assert_eq!(UserId::parse("  "), Err(UserIdError::Empty));
        let long = "u".repeat(MAX_USER_ID_CHARS + 1);
        assert_eq!(UserId::parse(&long), Err(UserIdError::TooLong));
        assert_eq!(UserId::parse("alice").unwrap().as_str(), "alice");
    }
}
