//! Building the [`Authenticator`] the settings ask for, including the development mode.
//!
//! Key sources: the shared secret (`jwt_secret`, HS256) and one source of public keys,
//! either a JWKS URL (`jwt_jwks_url`) or a PEM key (`jwt_public_key_pem`), not both. A secret
//! and public keys may be configured together: the token's `alg` header then picks the key
//! (HS256 the secret, RS*/ES256 the public keys), and a token is never tried against the
//! other source. Only algorithms listed in `jwt_algorithms` are accepted.
//!
//! Nothing is fetched here, so building stays synchronous and a key server that is down at
//! start-up does not stop the service: the first token fetches the keys, and answers 503
//! `AUTH_UNAVAILABLE` while the key server cannot be reached.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use super::algorithms::{AcceptedAlgorithms, KeyFamily};
use super::cache::{KeyCache, RefreshPolicy};
use super::jwks::{FetchTimeouts, HttpFetcher, JwksUrl, JwksUrlError};
use super::key_set::KeySet;
use super::keys::{KeyError, VerifyingKey};
use super::{AuthMetrics, Authenticator, ClaimRules, PublicKeys, TokenRequest, mint_hs256};
use crate::settings::{Secret, Settings};

/// How long a development token stays valid.
const DEV_TOKEN_TTL: Duration = Duration::from_secs(24 * 3600);
/// Shorter HS256 secrets are logged as a warning: they can be guessed offline from any token.
const MIN_SECRET_BYTES: usize = 32;

/// Why no authenticator can be built from the settings.
#[derive(Debug, thiserror::Error)]
pub enum AuthSetupError {
    #[error(
        "no token key is configured: set USAGE_JWT_SECRET, USAGE_JWT_JWKS_URL or \
         USAGE_JWT_PUBLIC_KEY_PEM (or bind to a loopback address for local development)"
    )]
    NoKey,
    #[error("set one of USAGE_JWT_JWKS_URL and USAGE_JWT_PUBLIC_KEY_PEM, not both")]
    TwoPublicKeySources,
    #[error("invalid USAGE_JWT_JWKS_URL")]
    JwksUrl(#[from] JwksUrlError),
    #[error("cannot set up the HTTP client for the key server")]
    HttpClient(#[source] reqwest::Error),
    #[error("cannot read the public key file {path} (USAGE_JWT_PUBLIC_KEY_PEM)")]
    PublicKeyFile {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("USAGE_JWT_PUBLIC_KEY_PEM cannot be used")]
    PublicKey(#[source] KeyError),
    #[error(
        "{setting} is set, but USAGE_JWT_ALGORITHMS ({accepted}) lists none of its \
         algorithms ({needs})"
    )]
    NoAlgorithmForKey {
        setting: &'static str,
        accepted: AcceptedAlgorithms,
        needs: &'static str,
    },
    #[error("cannot write the development token to {path}")]
    DevToken {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// The verifier the settings ask for. With no key at all, a loopback-only development mode
/// signs with a random secret and writes a token to `dev_token_file`.
pub fn from_settings(settings: &Settings) -> Result<Authenticator, AuthSetupError> {
    let rules = ClaimRules {
        issuer: settings.jwt_issuer.clone(),
        audience: settings.jwt_audience.clone(),
        leeway_seconds: settings.jwt_leeway_seconds,
        require_exp: settings.jwt_require_exp,
        user_claim: settings.jwt_user_claim.clone(),
    };
    let accepted = &settings.jwt_algorithms;
    let metrics = Arc::new(AuthMetrics::default());
    let public = public_keys(settings, &metrics)?;
    let secret = settings.jwt_secret.as_ref();
    if secret.is_none() && public.is_none() {
        return development_mode(settings, rules);
    }
    if let Some(secret) = secret {
        check_secret(secret, accepted)?;
    }
    if public.is_some() && rules.audience.is_none() {
        tracing::warn!(
            "USAGE_JWT_AUDIENCE is not set: tokens the key's issuer signed for any application \
             are accepted. Set it to this service's audience."
        );
    }
    let authenticator = Authenticator::new(secret, public, accepted, rules, metrics);
    tracing::info!(?authenticator, "bearer tokens are verified");
    Ok(authenticator)
}

fn check_secret(secret: &Secret, accepted: &AcceptedAlgorithms) -> Result<(), AuthSetupError> {
    if accepted.of_family(KeyFamily::Secret).is_empty() {
        return Err(AuthSetupError::NoAlgorithmForKey {
            setting: "USAGE_JWT_SECRET",
            accepted: accepted.clone(),
            needs: KeyFamily::Secret.describe(),
        });
    }
    if secret.expose().len() < MIN_SECRET_BYTES {
        tracing::warn!(
            "USAGE_JWT_SECRET is shorter than {MIN_SECRET_BYTES} bytes; a short secret can be \
             guessed from any token it signed"
        );
    }
    Ok(())
}

/// The JWKS cache or the PEM key, if one is configured.
fn public_keys(
    settings: &Settings,
    metrics: &Arc<AuthMetrics>,
) -> Result<Option<PublicKeys>, AuthSetupError> {
    match (&settings.jwt_jwks_url, &settings.jwt_public_key_pem) {
        (Some(_), Some(_)) => Err(AuthSetupError::TwoPublicKeySources),
        (Some(url), None) => jwks(url, settings, metrics).map(Some),
        (None, Some(pem)) => {
            let key = VerifyingKey::from_pem(&read_pem(pem)?, &settings.jwt_algorithms)
                .map_err(AuthSetupError::PublicKey)?;
            Ok(Some(PublicKeys::Static(KeySet::single(key))))
        }
        (None, None) => Ok(None),
    }
}

fn jwks(
    url: &str,
    settings: &Settings,
    metrics: &Arc<AuthMetrics>,
) -> Result<PublicKeys, AuthSetupError> {
    let accepted = &settings.jwt_algorithms;
    if accepted.of_family(KeyFamily::Rsa).is_empty()
        && accepted.of_family(KeyFamily::P256).is_empty()
    {
        return Err(AuthSetupError::NoAlgorithmForKey {
            setting: "USAGE_JWT_JWKS_URL",
            accepted: accepted.clone(),
            needs: "RS256, RS384, RS512 or ES256",
        });
    }
    let timeouts = FetchTimeouts {
        connect: Duration::from_secs(settings.jwt_jwks_connect_timeout_seconds),
        total: Duration::from_secs(settings.jwt_jwks_timeout_seconds),
    };
    let fetcher =
        HttpFetcher::new(JwksUrl::parse(url)?, timeouts).map_err(AuthSetupError::HttpClient)?;
    let policy = RefreshPolicy {
        min_interval: Duration::from_secs(settings.jwt_jwks_min_refresh_seconds),
        max_age: Duration::from_secs(settings.jwt_jwks_cache_seconds),
    };
    let cache = KeyCache::new(fetcher, accepted.clone(), policy, Arc::clone(metrics));
    Ok(PublicKeys::Jwks(Arc::new(cache)))
}

/// `jwt_public_key_pem` is the PEM text itself when it starts with `-----BEGIN`, and the
/// path of a PEM file otherwise.
fn read_pem(value: &str) -> Result<String, AuthSetupError> {
    if value.trim_start().starts_with("-----BEGIN") {
        return Ok(value.to_owned());
    }
    let path = Path::new(value.trim());
    std::fs::read_to_string(path).map_err(|source| AuthSetupError::PublicKeyFile {
        path: path.to_owned(),
        source,
    })
}

fn development_mode(
    settings: &Settings,
    rules: ClaimRules,
) -> Result<Authenticator, AuthSetupError> {
    if !settings.http_addr.ip().is_loopback() {
        return Err(AuthSetupError::NoKey);
    }
    let secret = Secret::new(random_secret());
    let mut request = TokenRequest::new("dev-user", DEV_TOKEN_TTL);
    request.issuer = rules.issuer.clone();
    request.audience = rules.audience.clone();
    write_dev_token(&settings.dev_token_file, &secret, &request)?;
    tracing::warn!(
        token_file = %settings.dev_token_file.display(),
        "DEVELOPMENT MODE: no USAGE_JWT_SECRET, USAGE_JWT_JWKS_URL or USAGE_JWT_PUBLIC_KEY_PEM \
         is set. Tokens are signed with a random secret that lives until this process stops. \
         A token for user 'dev-user' is in the token file: \
         curl -H \"Authorization: Bearer $(cat <token file>)\". Never run like this in \
         production."
    );
    Ok(Authenticator::shared_secret(&secret, rules))
}

fn random_secret() -> String {
    use rand::Rng;
    let bytes: [u8; 32] = rand::rng().random();
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}

fn write_dev_token(
    path: &Path,
    secret: &Secret,
    request: &TokenRequest,
) -> Result<(), AuthSetupError> {
    let failed = |source| AuthSetupError::DevToken {
        path: path.to_owned(),
        source,
    };
    let token =
        mint_hs256(secret, request).map_err(|error| failed(std::io::Error::other(error)))?;
    if let Some(parent) = path
        .parent()
        .filter(|parent| !parent.as_os_str().is_empty())
    {
        std::fs::create_dir_all(parent).map_err(failed)?;
    }
    std::fs::write(path, format!("{token}\n")).map_err(failed)?;
    restrict_to_owner(path).map_err(failed)
}

#[cfg(unix)]
fn restrict_to_owner(path: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
}

#[cfg(not(unix))]
fn restrict_to_owner(_path: &Path) -> std::io::Result<()> {
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::net::SocketAddr;

    use super::*;

    const RSA_PUBLIC_PEM: &str = include_str!("../../../../tests/fixtures/auth/rsa-a.pub.pem");

    fn with_secret() -> Settings {
        Settings {
            jwt_secret: Some(Secret::new("a-secret-long-enough-for-the-warning-0123")),
            ..Settings::default()
        }
    }

    #[test]
    fn without_a_key_only_loopback_addresses_may_start() {
        let dir = tempfile::tempdir().unwrap();
        let mut settings = Settings {
            dev_token_file: dir.path().join("token.txt"),
            ..Settings::default()
        };
        assert!(from_settings(&settings).is_ok());
        let token = std::fs::read_to_string(&settings.dev_token_file).unwrap();
        assert_eq!(token.trim().split('.').count(), 3, "a JWT was written");

        settings.http_addr = SocketAddr::from(([0, 0, 0, 0], 8080));
        assert!(matches!(
            from_settings(&settings),
            Err(AuthSetupError::NoKey)
        ));
    }

    #[test]
    fn a_public_key_alone_is_enough_on_any_address() {
        let settings = Settings {
            http_addr: SocketAddr::from(([0, 0, 0, 0], 8080)),
            jwt_public_key_pem: Some(RSA_PUBLIC_PEM.to_owned()),
            ..Settings::default()
        };
        assert!(from_settings(&settings).is_ok());

        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("key.pem");
        std::fs::write(&file, RSA_PUBLIC_PEM).unwrap();
        let from_file = Settings {
            jwt_public_key_pem: Some(file.display().to_string()),
            ..settings.clone()
        };
        assert!(from_settings(&from_file).is_ok());

        let missing = Settings {
            jwt_public_key_pem: Some(dir.path().join("nope.pem").display().to_string()),
            ..settings
        };
        assert!(matches!(
            from_settings(&missing),
            Err(AuthSetupError::PublicKeyFile { .. })
        ));
    }

    #[test]
    fn a_jwks_url_and_a_pem_key_together_are_refused() {
        let settings = Settings {
            jwt_jwks_url: Some("https://id.example/.well-known/jwks.json".into()),
            jwt_public_key_pem: Some(RSA_PUBLIC_PEM.to_owned()),
            ..Settings::default()
        };
        assert!(matches!(
            from_settings(&settings),
            Err(AuthSetupError::TwoPublicKeySources)
        ));
    }

    #[test]
    fn a_plain_http_jwks_url_to_a_remote_host_is_refused() {
        let settings = Settings {
            jwt_jwks_url: Some("http://id.example/.well-known/jwks.json".into()),
            ..Settings::default()
        };
        assert!(matches!(
            from_settings(&settings),
            Err(AuthSetupError::JwksUrl(JwksUrlError::NotHttps))
        ));
        let https = Settings {
            jwt_jwks_url: Some("https://id.example/.well-known/jwks.json".into()),
            ..Settings::default()
        };
        assert!(
            from_settings(&https).is_ok(),
            "nothing is fetched at start-up"
        );
    }

    #[test]
    fn a_key_source_without_an_accepted_algorithm_is_refused() {
        let settings = Settings {
            jwt_algorithms: AcceptedAlgorithms::parse("RS256").unwrap(),
            ..with_secret()
        };
        let error = from_settings(&settings).unwrap_err();
        assert!(matches!(
            error,
            AuthSetupError::NoAlgorithmForKey {
                setting: "USAGE_JWT_SECRET",
                ..
            }
        ));
        assert!(error.to_string().contains("(RS256)"), "{error}");

        let jwks_with_hs256_only = Settings {
            jwt_algorithms: AcceptedAlgorithms::parse("HS256").unwrap(),
            jwt_jwks_url: Some("https://id.example/jwks.json".into()),
            ..with_secret()
        };
        assert!(matches!(
            from_settings(&jwks_with_hs256_only),
            Err(AuthSetupError::NoAlgorithmForKey {
                setting: "USAGE_JWT_JWKS_URL",
                ..
            })
        ));
    }
}
