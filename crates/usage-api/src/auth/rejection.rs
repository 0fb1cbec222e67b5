//! Why a token was refused, and which status and code each reason answers with.

use jsonwebtoken::errors::ErrorKind;

use crate::error::ApiError;

/// A reason to refuse a request's credentials. Logged and counted by name, never with the
/// token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rejection {
    /// No `Authorization: Bearer` header.
    Missing,
    /// Not a JWT, a claim of the wrong type, or a required claim absent.
    Malformed,
    BadSignature,
    /// An algorithm other than the configured ones, `none` included, or one the token's key
    /// is not for.
    WrongAlgorithm,
    /// The token names a key (`kid`) that the key server does not publish, even after a
    /// re-fetch; or names none while several keys could fit.
    UnknownKey,
    Expired,
    NotYetValid,
    WrongIssuer,
    WrongAudience,
    /// The user-id claim is missing, empty or too long.
    NoSubject,
    /// No key could be had to check the signature: the key server cannot be reached.
    KeysUnavailable,
}

impl Rejection {
    /// Every reason, in the order of [`AuthMetrics`](super::AuthMetrics) counters.
    pub const ALL: [Self; 11] = [
        Self::Missing,
        Self::Malformed,
        Self::BadSignature,
        Self::WrongAlgorithm,
        Self::UnknownKey,
        Self::Expired,
        Self::NotYetValid,
        Self::WrongIssuer,
        Self::WrongAudience,
        Self::NoSubject,
        Self::KeysUnavailable,
    ];

    /// A stable label for logs and metrics.
    pub fn reason(self) -> &'static str {
        match self {
            Self::Missing => "missing",
            Self::Malformed => "malformed",
            Self::BadSignature => "bad_signature",
            Self::WrongAlgorithm => "wrong_algorithm",
            Self::UnknownKey => "unknown_key",
            Self::Expired => "expired",
            Self::NotYetValid => "not_yet_valid",
            Self::WrongIssuer => "wrong_issuer",
            Self::WrongAudience => "wrong_audience",
            Self::NoSubject => "no_subject",
            Self::KeysUnavailable => "keys_unavailable",
        }
    }

    /// The position of this reason in [`Rejection::ALL`]. A new reason needs an arm here and
    /// a place in `ALL`, whose length sizes the metrics' counters.
    pub(crate) fn index(self) -> usize {
        match self {
            Self::Missing => 0,
            Self::Malformed => 1,
            Self::BadSignature => 2,
            Self::WrongAlgorithm => 3,
            Self::UnknownKey => 4,
            Self::Expired => 5,
            Self::NotYetValid => 6,
            Self::WrongIssuer => 7,
            Self::WrongAudience => 8,
            Self::NoSubject => 9,
            Self::KeysUnavailable => 10,
        }
    }

    pub(crate) fn from_jwt(kind: &ErrorKind) -> Self {
        match kind {
            ErrorKind::InvalidSignature => Self::BadSignature,
            ErrorKind::InvalidAlgorithm | ErrorKind::MissingAlgorithm => Self::WrongAlgorithm,
            ErrorKind::ExpiredSignature => Self::Expired,
            ErrorKind::ImmatureSignature => Self::NotYetValid,
            ErrorKind::InvalidIssuer => Self::WrongIssuer,
            ErrorKind::InvalidAudience => Self::WrongAudience,
            ErrorKind::InvalidSubject => Self::NoSubject,
            _ => Self::Malformed,
        }
    }
}

impl From<Rejection> for ApiError {
    fn from(rejection: Rejection) -> Self {
        match rejection {
            Rejection::Missing => Self::NoToken,
            Rejection::Expired => Self::TokenExpired,
            Rejection::KeysUnavailable => Self::AuthUnavailable,
            _ => Self::InvalidToken,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn all_lists_each_reason_at_its_index_with_a_distinct_label() {
        for (index, rejection) in Rejection::ALL.iter().enumerate() {
            assert_eq!(rejection.index(), index);
        }
        let mut labels: Vec<_> = Rejection::ALL.iter().map(|r| r.reason()).collect();
        labels.sort_unstable();
        labels.dedup();
        assert_eq!(labels.len(), Rejection::ALL.len());
    }

    #[test]
    fn only_an_unreachable_key_server_is_a_503() {
        for rejection in Rejection::ALL {
            let error = ApiError::from(rejection);
            let expected = match rejection {
                Rejection::Missing => "NO_TOKEN",
                Rejection::Expired => "TOKEN_EXPIRED",
                Rejection::KeysUnavailable => "AUTH_UNAVAILABLE",
                _ => "INVALID_TOKEN",
            };
            assert_eq!(error.code(), expected, "{rejection:?}");
        }
    }
}
