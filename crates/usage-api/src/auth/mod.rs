//! Bearer-token authentication: the only source of the user id.
//!
//! [`Authenticator`] verifies a JWT with the configured key and algorithms and reads the user
//! id from its subject claim; [`middleware::require_user`] runs it in front of every usage
//! route and puts the [`usage_domain::UserId`] into the request.

pub mod middleware;
mod rejection;
mod setup;
mod token;

use std::collections::HashMap;

use actix_web::http::header::HeaderValue;
use jsonwebtoken::{Algorithm, DecodingKey, Validation, decode, decode_header};
use serde_json::Value;
use usage_domain::UserId;

pub use rejection::Rejection;
pub use setup::{AuthSetupError, from_settings};
pub use token::{TokenRequest, mint_hs256};

use crate::settings::Secret;

/// Longest `Authorization` header read; real tokens are a few kilobytes at most.
pub const MAX_AUTHORIZATION_BYTES: usize = 8 * 1024;

/// What a token must satisfy besides its signature.
#[derive(Debug, Clone)]
pub struct ClaimRules {
    pub issuer: Option<String>,
    pub audience: Option<String>,
    pub leeway_seconds: u64,
    pub require_exp: bool,
    /// The claim that holds the user id.
    pub user_claim: String,
}

impl Default for ClaimRules {
    fn default() -> Self {
        Self {
            issuer: None,
            audience: None,
            leeway_seconds: 30,
            require_exp: true,
            user_claim: "sub".to_owned(),
        }
    }
}

/// Verifies bearer tokens. Only the algorithms of the configured key are accepted, so an
/// unsigned (`none`) token or one signed with another family's algorithm never passes.
pub struct Authenticator {
    key: DecodingKey,
    validation: Validation,
    user_claim: String,
}

impl std::fmt::Debug for Authenticator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Authenticator")
            .field("algorithms", &self.validation.algorithms)
            .field("user_claim", &self.user_claim)
            .finish_non_exhaustive()
    }
}

impl Authenticator {
    /// HS256 with a shared secret.
    pub fn shared_secret(secret: &Secret, rules: ClaimRules) -> Self {
        let key = DecodingKey::from_secret(secret.expose().as_bytes());
        Self::new(key, &[Algorithm::HS256], rules)
    }

    fn new(key: DecodingKey, algorithms: &[Algorithm], rules: ClaimRules) -> Self {
        let mut validation = Validation::new(algorithms[0]);
        validation.algorithms = algorithms.to_vec();
        validation.leeway = rules.leeway_seconds;
        validation.validate_nbf = true;
        let mut required = Vec::new();
        if rules.require_exp {
            required.push("exp");
        } else {
            validation.validate_exp = false;
        }
        if let Some(issuer) = &rules.issuer {
            validation.set_issuer(&[issuer]);
            required.push("iss");
        }
        match &rules.audience {
            Some(audience) => {
                validation.set_audience(&[audience]);
                required.push("aud");
            }
            None => validation.validate_aud = false,
        }
        validation.set_required_spec_claims(&required);
        Self {
            key,
            validation,
            user_claim: rules.user_claim,
        }
    }

    /// The user of a request, from its `Authorization` header.
    pub async fn authenticate(&self, header: Option<&HeaderValue>) -> Result<UserId, Rejection> {
        let token = bearer_token(header)?;
        let alg = decode_header(token).map_err(|_| Rejection::Malformed)?.alg;
        if !self.validation.algorithms.contains(&alg) {
            return Err(Rejection::WrongAlgorithm);
        }
        let claims = decode::<HashMap<String, Value>>(token, &self.key, &self.validation)
            .map_err(|error| Rejection::from_jwt(error.kind()))?
            .claims;
        let subject = claims.get(&self.user_claim).and_then(Value::as_str);
        subject
            .and_then(|subject| UserId::parse(subject).ok())
            .ok_or(Rejection::NoSubject)
    }
}

/// The token of `Authorization: Bearer <token>`.
fn bearer_token(header: Option<&HeaderValue>) -> Result<&str, Rejection> {
    let header = header.ok_or(Rejection::Missing)?;
    if header.len() > MAX_AUTHORIZATION_BYTES {
        return Err(Rejection::Malformed);
    }
    let value = header.to_str().map_err(|_| Rejection::Malformed)?.trim();
    let (scheme, token) = value.split_once(' ').unwrap_or((value, ""));
    if !scheme.eq_ignore_ascii_case("bearer") {
        return Err(Rejection::Missing);
    }
    match token.trim() {
        "" => Err(Rejection::Missing),
        token => Ok(token),
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn secret() -> Secret {
        Secret::new("unit-test-secret-0123456789abcdef")
    }

    fn header(value: &str) -> HeaderValue {
        HeaderValue::from_str(value).unwrap()
    }

    async fn check(auth: &Authenticator, token: &str) -> Result<UserId, Rejection> {
        auth.authenticate(Some(&header(&format!("Bearer {token}"))))
            .await
    }

    #[actix_web::test]
    async fn a_valid_token_yields_its_subject() {
        let auth = Authenticator::shared_secret(&secret(), ClaimRules::default());
        let token = mint_hs256(
            &secret(),
            &TokenRequest::new("alice", Duration::from_secs(60)),
        );
        assert_eq!(
            check(&auth, &token.unwrap()).await.unwrap().as_str(),
            "alice"
        );
    }

    #[actix_web::test]
    async fn missing_or_non_bearer_headers_are_no_token() {
        let auth = Authenticator::shared_secret(&secret(), ClaimRules::default());
        assert_eq!(auth.authenticate(None).await, Err(Rejection::Missing));
        let basic = header("Basic dXNlcjpwYXNz");
        assert_eq!(
            auth.authenticate(Some(&basic)).await,
            Err(Rejection::Missing)
        );
        assert_eq!(
            auth.authenticate(Some(&header("Bearer  "))).await,
            Err(Rejection::Missing)
        );
    }

    #[actix_web::test]
    async fn issuer_and_audience_are_required_when_configured() {
        let rules = ClaimRules {
            issuer: Some("https://id.example".into()),
            audience: Some("usage".into()),
            ..ClaimRules::default()
        };
        let auth = Authenticator::shared_secret(&secret(), rules);
        let mut request = TokenRequest::new("alice", Duration::from_secs(60));
        let bare = mint_hs256(&secret(), &request).unwrap();
        assert_eq!(check(&auth, &bare).await, Err(Rejection::Malformed));

        request.issuer = Some("https://id.example".into());
        request.audience = Some("other".into());
        let wrong_audience = mint_hs256(&secret(), &request).unwrap();
        assert_eq!(
            check(&auth, &wrong_audience).await,
            Err(Rejection::WrongAudience)
        );

        request.audience = Some("usage".into());
        let good = mint_hs256(&secret(), &request).unwrap();
        assert!(check(&auth, &good).await.is_ok());
    }
}
