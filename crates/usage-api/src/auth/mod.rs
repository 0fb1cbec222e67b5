//! Bearer-token authentication: the only source of the user id.
//!
//! [`Authenticator`] verifies a JWT and reads the user id from the configured claim;
//! [`middleware::require_user`] runs it in front of every usage route and puts the
//! [`usage_domain::UserId`] into the request. [`from_settings`] builds it.
//!
//! How a token is checked, in order: the bearer token is taken from the `Authorization`
//! header only ([`bearer`]); its header's `alg` must be in the accepted list and have a key
//! of its family ([`algorithms`]): HS256 the shared secret, RS256/RS384/RS512 an RSA key,
//! ES256 a P-256 key; the key is the PEM key or the JWKS key named by `kid`, fetched and
//! cached by [`cache`]; then the signature, `exp`, `nbf`, `iss` and `aud`; then the user
//! claim. Each refusal is a [`Rejection`], counted in [`AuthMetrics`].

mod algorithms;
mod bearer;
mod cache;
mod header;
mod jwks;
mod key_set;
mod keys;
mod metrics;
pub mod middleware;
mod rejection;
mod setup;
mod token;

use std::collections::HashMap;
use std::sync::Arc;

use actix_web::http::header::HeaderValue;
use jsonwebtoken::{Algorithm, Validation, decode};
use serde_json::Value;
use usage_domain::UserId;

pub use algorithms::{AcceptedAlgorithms, AlgorithmsError, KeyFamily};
pub use bearer::MAX_AUTHORIZATION_BYTES;
pub use jwks::{JwksUrl, JwksUrlError};
pub use keys::{KeyError, MIN_RSA_BITS};
pub use metrics::AuthMetrics;
pub use rejection::Rejection;
pub use setup::{AuthSetupError, from_settings};
pub use token::{TokenRequest, mint_hs256};

use self::cache::KeyCache;
use self::header::TokenHeader;
use self::jwks::HttpFetcher;
use self::key_set::{KeySet, Lookup};
use self::keys::VerifyingKey;
use crate::settings::Secret;

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

/// Where public keys come from.
enum PublicKeys {
    /// One PEM key.
    Static(KeySet),
    /// The key server's keys.
    Jwks(Arc<KeyCache<HttpFetcher>>),
}

impl std::fmt::Debug for PublicKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Static(_) => f.write_str("PEM key"),
            Self::Jwks(cache) => write!(f, "JWKS from {}", cache.source()),
        }
    }
}

/// Verifies bearer tokens. A token's algorithm must be accepted and have a key of its own
/// family, so an unsigned (`none`) token, or an HS256 token "signed" with a public key,
/// never passes.
pub struct Authenticator {
    secret: Option<Arc<VerifyingKey>>,
    public: Option<PublicKeys>,
    /// One per usable algorithm: the library wants every algorithm of a validation to be of
    /// the key's family.
    validations: HashMap<Algorithm, Validation>,
    user_claim: String,
    metrics: Arc<AuthMetrics>,
}

impl std::fmt::Debug for Authenticator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut algorithms: Vec<String> =
            self.validations.keys().map(|a| format!("{a:?}")).collect();
        algorithms.sort();
        f.debug_struct("Authenticator")
            .field("algorithms", &algorithms)
            .field("secret", &self.secret.is_some())
            .field("public_keys", &self.public)
            .field("user_claim", &self.user_claim)
            .finish_non_exhaustive()
    }
}

impl Authenticator {
    /// HS256 with a shared secret.
    pub fn shared_secret(secret: &Secret, rules: ClaimRules) -> Self {
        let accepted = AcceptedAlgorithms::default();
        Self::new(Some(secret), None, &accepted, rules, Arc::default())
    }

    /// Verifies with the secret and the public keys given, for the accepted algorithms that
    /// have a key.
    fn new(
        secret: Option<&Secret>,
        public: Option<PublicKeys>,
        accepted: &AcceptedAlgorithms,
        rules: ClaimRules,
        metrics: Arc<AuthMetrics>,
    ) -> Self {
        let has_key = |algorithm: Algorithm| match KeyFamily::of(algorithm) {
            Some(KeyFamily::Secret) => secret.is_some(),
            Some(KeyFamily::Rsa | KeyFamily::P256) => match &public {
                Some(PublicKeys::Static(keys)) => keys.supports(algorithm),
                Some(PublicKeys::Jwks(_)) => true,
                None => false,
            },
            None => false,
        };
        let validations = accepted
            .iter()
            .filter(|algorithm| has_key(*algorithm))
            .map(|algorithm| (algorithm, validation(algorithm, &rules)))
            .collect();
        Self {
            secret: secret.map(|secret| Arc::new(VerifyingKey::secret(secret))),
            public,
            validations,
            user_claim: rules.user_claim,
            metrics,
        }
    }

    /// Counts of accepted and refused tokens, by reason, and of key fetches.
    pub fn metrics(&self) -> &Arc<AuthMetrics> {
        &self.metrics
    }

    /// The user of a request, from its `Authorization` header. Every outcome is counted.
    pub async fn authenticate(&self, header: Option<&HeaderValue>) -> Result<UserId, Rejection> {
        let outcome = self.verify(header).await;
        match &outcome {
            Ok(_) => self.metrics.record_accepted(),
            Err(rejection) => self.metrics.record_rejected(*rejection),
        }
        outcome
    }

    async fn verify(&self, header: Option<&HeaderValue>) -> Result<UserId, Rejection> {
        let token = bearer::token(header)?;
        let header = TokenHeader::parse(token)?;
        let validation = self
            .validations
            .get(&header.algorithm)
            .ok_or(Rejection::WrongAlgorithm)?;
        let key = self.key_for(&header).await?;
        if !key.accepts(header.algorithm) {
            return Err(Rejection::WrongAlgorithm);
        }
        let claims = decode::<HashMap<String, Value>>(token, key.decoding_key(), validation)
            .map_err(|error| Rejection::from_jwt(error.kind()))?
            .claims;
        claims
            .get(&self.user_claim)
            .and_then(Value::as_str)
            .and_then(|user| UserId::parse(user).ok())
            .ok_or(Rejection::NoSubject)
    }

    async fn key_for(&self, header: &TokenHeader) -> Result<Arc<VerifyingKey>, Rejection> {
        let family = KeyFamily::of(header.algorithm).ok_or(Rejection::WrongAlgorithm)?;
        let key_id = header.key_id.as_deref();
        match (family, &self.public) {
            (KeyFamily::Secret, _) => self.secret.clone().ok_or(Rejection::WrongAlgorithm),
            (_, Some(PublicKeys::Static(keys))) => match keys.find(key_id, header.algorithm) {
                Lookup::Found(key) => Ok(key),
                Lookup::WrongAlgorithm => Err(Rejection::WrongAlgorithm),
                Lookup::Missing => Err(Rejection::UnknownKey),
            },
            (_, Some(PublicKeys::Jwks(cache))) => cache.key_for(key_id, header.algorithm).await,
            (_, None) => Err(Rejection::WrongAlgorithm),
        }
    }
}

/// The claim checks of `rules` for tokens signed with `algorithm`.
fn validation(algorithm: Algorithm, rules: &ClaimRules) -> Validation {
    let mut validation = Validation::new(algorithm);
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
    validation
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use jsonwebtoken::{EncodingKey, Header, encode};
    use serde_json::json;

    use super::*;

    const RSA_PRIVATE_PEM: &[u8] = include_bytes!("../../../../tests/fixtures/auth/rsa-a.pem");
    const RSA_PUBLIC_PEM: &str = include_str!("../../../../tests/fixtures/auth/rsa-a.pub.pem");
    const EC_PRIVATE_PEM: &[u8] = include_bytes!("../../../../tests/fixtures/auth/ec-a.pem");

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

    fn claims() -> Value {
        let now = chrono::Utc::now().timestamp();
        json!({"sub": "alice", "exp": now + 600})
    }

    fn rsa_token(claims: &Value) -> String {
        let key = EncodingKey::from_rsa_pem(RSA_PRIVATE_PEM).unwrap();
        encode(&Header::new(Algorithm::RS256), claims, &key).unwrap()
    }

    /// The secret plus the RSA PEM key: each token verified by its own algorithm's key.
    fn secret_and_pem() -> Authenticator {
        let accepted = AcceptedAlgorithms::default();
        let key = VerifyingKey::from_pem(RSA_PUBLIC_PEM, &accepted).unwrap();
        let public = PublicKeys::Static(KeySet::single(key));
        let rules = ClaimRules::default();
        Authenticator::new(
            Some(&secret()),
            Some(public),
            &accepted,
            rules,
            Arc::default(),
        )
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
        assert_eq!(auth.metrics().accepted(), 1);
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
        assert_eq!(auth.metrics().rejected(Rejection::Missing), 3);
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

    #[actix_web::test]
    async fn with_a_secret_and_a_public_key_each_algorithm_uses_its_own_key() {
        let auth = secret_and_pem();
        assert!(check(&auth, &rsa_token(&claims())).await.is_ok());
        let hs256 = mint_hs256(
            &secret(),
            &TokenRequest::new("bob", Duration::from_secs(60)),
        );
        assert_eq!(check(&auth, &hs256.unwrap()).await.unwrap().as_str(), "bob");

        let confused = encode(
            &Header::new(Algorithm::HS256),
            &claims(),
            &EncodingKey::from_secret(RSA_PUBLIC_PEM.as_bytes()),
        )
        .unwrap();
        assert_eq!(check(&auth, &confused).await, Err(Rejection::BadSignature));

        let ec_key = EncodingKey::from_ec_pem(EC_PRIVATE_PEM).unwrap();
        let es256 = encode(&Header::new(Algorithm::ES256), &claims(), &ec_key).unwrap();
        assert_eq!(
            check(&auth, &es256).await,
            Err(Rejection::WrongAlgorithm),
            "no P-256 key is configured"
        );
    }

    #[actix_web::test]
    async fn without_a_secret_hs256_is_the_wrong_algorithm() {
        let accepted = AcceptedAlgorithms::default();
        let key = VerifyingKey::from_pem(RSA_PUBLIC_PEM, &accepted).unwrap();
        let public = PublicKeys::Static(KeySet::single(key));
        let rules = ClaimRules::default();
        let auth = Authenticator::new(None, Some(public), &accepted, rules, Arc::default());
        let confused = encode(
            &Header::new(Algorithm::HS256),
            &claims(),
            &EncodingKey::from_secret(RSA_PUBLIC_PEM.as_bytes()),
        )
        .unwrap();
        assert_eq!(
            check(&auth, &confused).await,
            Err(Rejection::WrongAlgorithm)
        );
        assert_eq!(auth.metrics().rejected(Rejection::WrongAlgorithm), 1);
    }

    #[actix_web::test]
    async fn the_user_claim_is_configurable_and_must_be_a_non_empty_string() {
        let rules = ClaimRules {
            user_claim: "uid".into(),
            ..ClaimRules::default()
        };
        let auth = Authenticator::shared_secret(&secret(), rules);
        let sign = |claims: Value| {
            encode(
                &Header::default(),
                &claims,
                &EncodingKey::from_secret(secret().expose().as_bytes()),
            )
            .unwrap()
        };
        let exp = chrono::Utc::now().timestamp() + 600;
        let good = sign(json!({"sub": "alice", "uid": "u-42", "exp": exp}));
        assert_eq!(check(&auth, &good).await.unwrap().as_str(), "u-42");
        for bad in [
            json!({"sub": "alice", "exp": exp}),
            json!({"uid": "", "exp": exp}),
            json!({"uid": 42, "exp": exp}),
        ] {
            assert_eq!(check(&auth, &sign(bad)).await, Err(Rejection::NoSubject));
        }
    }
}
