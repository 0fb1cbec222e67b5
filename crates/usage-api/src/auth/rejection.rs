//! Why a token was refused, and which status and code each reason answers with.

use jsonwebtoken::errors::ErrorKind;

use crate::error::ApiError;

/// A reason to refuse a request's credentials. Logged by name, never with the token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rejection {
    /// No `Authorization: Bearer` header.
    Missing,
    /// Not a JWT, a claim of the wrong type, or a required claim absent.
    Malformed,
    BadSignature,
    /// An algorithm other than the configured ones, `none` included.
    WrongAlgorithm,
    Expired,
    NotYetValid,
    WrongIssuer,
    WrongAudience,
    /// The user-id claim is missing, empty or too long.
    NoSubject,
    /// No key could be had to check the signature.
    KeysUnavailable,
}

impl Rejection {
    /// A stable label for logs and metrics.
    pub fn reason(self) -> &'static str {
        match self {
            Self::Missing => "missing",
            Self::Malformed => "malformed",
            Self::BadSignature => "bad_signature",
            Self::WrongAlgorithm => "wrong_algorithm",
            Self::Expired => "expired",
            Self::NotYetValid => "not_yet_valid",
            Self::WrongIssuer => "wrong_issuer",
            Self::WrongAudience => "wrong_audience",
            Self::NoSubject => "no_subject",
            Self::KeysUnavailable => "keys_unavailable",
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
