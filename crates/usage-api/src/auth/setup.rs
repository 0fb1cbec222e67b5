//! Building the [`Authenticator`] the settings ask for, including the development mode.

use std::path::{Path, PathBuf};
use std::time::Duration;

use super::{Authenticator, ClaimRules, TokenRequest, mint_hs256};
use crate::settings::{Secret, Settings};

/// How long a development token stays valid.
const DEV_TOKEN_TTL: Duration = Duration::from_secs(24 * 3600);

/// Why no authenticator can be built from the settings.
#[derive(Debug, thiserror::Error)]
pub enum AuthSetupError {
    #[error(
        "no token key is configured: set USAGE_JWT_SECRET (or bind to a loopback address \
         for local development)"
    )]
    NoKey,
    #[error("USAGE_JWT_JWKS_URL is not supported by this version; use USAGE_JWT_SECRET")]
    JwksUnsupported,
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
        ..ClaimRules::default()
    };
    if let Some(secret) = &settings.jwt_secret {
        return Ok(Authenticator::shared_secret(secret, rules));
    }
    if settings.jwt_jwks_url.is_some() {
        return Err(AuthSetupError::JwksUnsupported);
    }
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
        "DEVELOPMENT MODE: no USAGE_JWT_SECRET or USAGE_JWT_JWKS_URL is set. Tokens are signed \
         with a random secret that lives until this process stops. A token for user \
         'dev-user' is in the token file: curl -H \"Authorization: Bearer $(cat <token file>)\". \
         Never run like this in production."
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
}
