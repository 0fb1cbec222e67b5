//! Minting HS256 tokens with the shared secret, for local use and tests.

use std::time::Duration;

use jsonwebtoken::{EncodingKey, Header, encode};
use serde::Serialize;

use crate::settings::Secret;

/// The claims of a token to mint.
#[derive(Debug, Clone)]
pub struct TokenRequest {
    pub subject: String,
    pub ttl: Duration,
    pub issuer: Option<String>,
    pub audience: Option<String>,
}

impl TokenRequest {
    pub fn new(subject: impl Into<String>, ttl: Duration) -> Self {
        Self {
            subject: subject.into(),
            ttl,
            issuer: None,
            audience: None,
        }
    }
}

#[derive(Serialize)]
struct Claims<'a> {
    sub: &'a str,
    iat: u64,
    exp: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    iss: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    aud: Option<&'a str>,
}

/// Signs a token for `request.subject` that expires after `request.ttl`.
pub fn mint_hs256(
    secret: &Secret,
    request: &TokenRequest,
) -> Result<String, jsonwebtoken::errors::Error> {
    let now = chrono::Utc::now().timestamp().max(0) as u64;
    let claims = Claims {
        sub: &request.subject,
        iat: now,
        exp: now + request.ttl.as_secs(),
        iss: request.issuer.as_deref(),
        aud: request.audience.as_deref(),
    };
    encode(
        &Header::default(),
        &claims,
        &EncodingKey::from_secret(secret.expose().as_bytes()),
    )
}
