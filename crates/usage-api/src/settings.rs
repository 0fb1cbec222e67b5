//! Layered configuration: built-in defaults, then `config/*.toml`, then `USAGE_*` variables.

use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use config::{Config, File, FileFormat};
use serde::Deserialize;
use usage_domain::Retention;
use validator::Validate;

use crate::auth::AcceptedAlgorithms;
use crate::cors::CorsOrigins;

/// Prefix of every environment variable the service reads.
pub const ENV_PREFIX: &str = "USAGE_";
/// Directory of the TOML files, relative to the working directory unless absolute.
pub const CONFIG_DIR_ENV: &str = "USAGE_CONFIG_DIR";

/// Every setting, by its file key. The environment variable is `USAGE_` + the key in capitals.
pub const KEYS: &[&str] = &[
    "http_addr",
    "database_url",
    "jwt_secret",
    "jwt_jwks_url",
    "jwt_issuer",
    "jwt_audience",
    "jwt_leeway_seconds",
    "jwt_require_exp",
    "jwt_public_key_pem",
    "jwt_user_claim",
    "jwt_algorithms",
    "jwt_jwks_min_refresh_seconds",
    "jwt_jwks_cache_seconds",
    "jwt_jwks_connect_timeout_seconds",
    "jwt_jwks_timeout_seconds",
    "retention_days",
    "max_body_bytes",
    "max_batch_records",
    "purge_interval_seconds",
    "shutdown_timeout_seconds",
    "workers",
    "log_format",
    "dev_token_file",
    "cors_allowed_origins",
    "rate_limit_per_minute",
    "body_timeout_seconds",
    "header_timeout_seconds",
];

/// A secret whose `Debug` output never shows the value.
#[derive(Clone, Deserialize, PartialEq, Eq)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret([redacted])")
    }
}

/// How log lines are written.
#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    #[default]
    Text,
    Json,
}

/// The service's settings; see the README's configuration table for each one's meaning.
#[derive(Debug, Clone, Deserialize, Validate)]
#[serde(default, deny_unknown_fields)]
pub struct Settings {
    pub http_addr: SocketAddr,
    pub database_url: String,
    pub jwt_secret: Option<Secret>,
    pub jwt_jwks_url: Option<String>,
    pub jwt_issuer: Option<String>,
    pub jwt_audience: Option<String>,
    #[validate(range(max = 600))]
    pub jwt_leeway_seconds: u64,
    pub jwt_require_exp: bool,
    /// A PEM public key (RSA or P-256) as an alternative to `jwt_jwks_url`: the PEM text
    /// itself when it starts with `-----BEGIN`, the path of a PEM file otherwise.
    pub jwt_public_key_pem: Option<String>,
    /// The claim that holds the user id.
    #[validate(length(min = 1, max = 256))]
    pub jwt_user_claim: String,
    /// Accepted token algorithms; each also needs a key of its family to be usable.
    pub jwt_algorithms: AcceptedAlgorithms,
    /// Least time between two fetches of the JWKS document, so that tokens with made-up key
    /// ids cannot make the service flood the key server.
    #[validate(range(min = 1, max = 3_600))]
    pub jwt_jwks_min_refresh_seconds: u64,
    /// How long fetched keys are used before they are fetched again.
    #[validate(range(min = 1, max = 86_400))]
    pub jwt_jwks_cache_seconds: u64,
    #[validate(range(min = 1, max = 60))]
    pub jwt_jwks_connect_timeout_seconds: u64,
    /// Limit for a whole JWKS fetch, connection included.
    #[validate(range(min = 1, max = 120))]
    pub jwt_jwks_timeout_seconds: u64,
    #[validate(range(min = 1, max = Retention::MAX_DAYS))]
    pub retention_days: u32,
    #[validate(range(min = 1_024, max = 1_073_741_824))]
    pub max_body_bytes: usize,
    #[validate(range(min = 1, max = 100_000))]
    pub max_batch_records: usize,
    #[validate(range(min = 1))]
    pub purge_interval_seconds: u64,
    #[validate(range(max = 3_600))]
    pub shutdown_timeout_seconds: u64,
    /// HTTP worker threads; `None` means one per core.
    #[validate(range(min = 1, max = 256))]
    pub workers: Option<usize>,
    pub log_format: LogFormat,
    /// Where a development token is written when no key is configured.
    pub dev_token_file: PathBuf,
    /// Web origins allowed to call the API from a browser; none sends no CORS headers.
    pub cors_allowed_origins: CorsOrigins,
    /// Requests per minute and user on `/api/usage`; 0 turns rate limiting off.
    #[validate(range(max = 1_000_000))]
    pub rate_limit_per_minute: u32,
    /// Longest time to receive a request body, so a client that trickles its body cannot
    /// hold a connection and its buffer forever (actix-web bounds only the request head).
    #[validate(range(min = 1, max = 3_600))]
    pub body_timeout_seconds: u64,
    /// Longest time to receive a request's head (request line and headers), so a client
    /// that sends its headers a byte at a time cannot hold a connection open.
    #[validate(range(min = 1, max = 300))]
    pub header_timeout_seconds: u64,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            http_addr: SocketAddr::from(([127, 0, 0, 1], 8080)),
            database_url: "sqlite://data/usage.sqlite3".to_owned(),
            jwt_secret: None,
            jwt_jwks_url: None,
            jwt_issuer: None,
            jwt_audience: None,
            jwt_leeway_seconds: 30,
            jwt_require_exp: true,
            jwt_public_key_pem: None,
            jwt_user_claim: "sub".to_owned(),
            jwt_algorithms: AcceptedAlgorithms::default(),
            jwt_jwks_min_refresh_seconds: 10,
            jwt_jwks_cache_seconds: 600,
            jwt_jwks_connect_timeout_seconds: 3,
            jwt_jwks_timeout_seconds: 5,
            retention_days: 90,
            max_body_bytes: 32 * 1024 * 1024,
            max_batch_records: 1_000,
            purge_interval_seconds: 3_600,
            shutdown_timeout_seconds: 30,
            workers: None,
            log_format: LogFormat::Text,
            dev_token_file: PathBuf::from("data/dev-token.txt"),
            cors_allowed_origins: CorsOrigins::None,
            rate_limit_per_minute: 0,
            body_timeout_seconds: 60,
            header_timeout_seconds: 10,
        }
    }
}

/// Why the settings cannot be used; the message names the offending source or key.
#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    #[error("cannot read the configuration directory {path}")]
    Directory {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("invalid configuration")]
    Invalid(#[from] config::ConfigError),
    #[error("invalid configuration: {0}")]
    OutOfRange(#[from] validator::ValidationErrors),
    #[error("{variable} is not a setting; known settings are listed in the README")]
    UnknownVariable { variable: String },
}

impl Settings {
    /// Loads the settings from the process environment and its configuration directory.
    pub fn load() -> Result<Self, SettingsError> {
        let dir =
            std::env::var_os(CONFIG_DIR_ENV).map_or_else(|| PathBuf::from("config"), Into::into);
        Self::load_from(&dir, |name| std::env::var(name).ok())
    }

    /// Defaults, then every `*.toml` in `dir` in name order, then variables read by `env`.
    pub fn load_from(
        dir: &Path,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Self, SettingsError> {
        let mut builder = Config::builder();
        for file in toml_files(dir)? {
            builder = builder.add_source(File::from(file).format(FileFormat::Toml));
        }
        for key in KEYS {
            let value = env(&env_name(key)).filter(|value| !value.trim().is_empty());
            if let Some(value) = value {
                builder = builder.set_override(*key, value)?;
            }
        }
        let settings: Settings = builder.build()?.try_deserialize()?;
        settings.validate()?;
        Ok(settings)
    }

    /// `USAGE_*` variables in `names` that are not settings; a typo should not pass silently.
    pub fn unknown_variables<'a>(names: impl IntoIterator<Item = &'a str>) -> Vec<String> {
        let known: Vec<String> = KEYS.iter().map(|key| env_name(key)).collect();
        names
            .into_iter()
            .filter(|name| name.starts_with(ENV_PREFIX) && *name != CONFIG_DIR_ENV)
            .filter(|name| !known.iter().any(|known| known == name))
            .map(str::to_owned)
            .collect()
    }
}

/// The environment variable of a setting.
pub fn env_name(key: &str) -> String {
    format!("{ENV_PREFIX}{}", key.to_ascii_uppercase())
}

fn toml_files(dir: &Path) -> Result<Vec<PathBuf>, SettingsError> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(source) => {
            return Err(SettingsError::Directory {
                path: dir.to_owned(),
                source,
            });
        }
    };
    let mut files = Vec::new();
    for entry in entries {
        let path = entry.map_err(|source| SettingsError::Directory {
            path: dir.into(),
            source,
        })?;
        let path = path.path();
        if path
            .extension()
            .is_some_and(|extension| extension == "toml")
        {
            files.push(path);
        }
    }
    files.sort();
    Ok(files)
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        move |name| map.get(name).cloned()
    }

    #[test]
    fn defaults_match_the_documented_ones() {
        let dir = tempfile::tempdir().unwrap();
        let settings = Settings::load_from(dir.path(), env(&[])).unwrap();
        assert_eq!(settings.http_addr.to_string(), "127.0.0.1:8080");
        assert_eq!(settings.database_url, "sqlite://data/usage.sqlite3");
        assert_eq!(settings.retention_days, 90);
        assert_eq!(settings.max_body_bytes, 32 * 1024 * 1024);
        assert_eq!(settings.max_batch_records, 1_000);
        assert_eq!(settings.body_timeout_seconds, 60);
        assert_eq!(settings.header_timeout_seconds, 10);
        assert!(settings.jwt_secret.is_none());
    }

    #[test]
    fn files_override_defaults_and_variables_override_files() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("a.toml"),
            "retention_days = 30\nworkers = 2\n",
        )
        .unwrap();
        std::fs::write(dir.path().join("b.toml"), "retention_days = 60\n").unwrap();
        let settings = Settings::load_from(
            dir.path(),
            env(&[("USAGE_WORKERS", "3"), ("USAGE_JWT_SECRET", "s3cret")]),
        )
        .unwrap();
        assert_eq!(settings.retention_days, 60, "later files win");
        assert_eq!(settings.workers, Some(3), "variables win over files");
        assert_eq!(
            settings.jwt_secret.as_ref().map(Secret::expose),
            Some("s3cret")
        );
        assert!(
            !format!("{settings:?}").contains("s3cret"),
            "secrets never reach Debug"
        );
    }

    #[test]
    fn unknown_keys_and_out_of_range_values_are_rejected() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("a.toml"), "retension_days = 30\n").unwrap();
        assert!(Settings::load_from(dir.path(), env(&[])).is_err());

        let empty = tempfile::tempdir().unwrap();
        let zero = Settings::load_from(empty.path(), env(&[("USAGE_RETENTION_DAYS", "0")]));
        assert!(matches!(zero, Err(SettingsError::OutOfRange(_))));
        let garbage = Settings::load_from(empty.path(), env(&[("USAGE_HTTP_ADDR", "nowhere")]));
        assert!(matches!(garbage, Err(SettingsError::Invalid(_))));
    }

    #[test]
    fn unknown_usage_variables_are_reported() {
        let names = [
            "USAGE_RETENTION_DAYS",
            "USAGE_RETENSION_DAYS",
            "PATH",
            CONFIG_DIR_ENV,
        ];
        assert_eq!(Settings::unknown_variables(names), ["USAGE_RETENSION_DAYS"]);
    }

    #[test]
    fn token_key_settings_are_read_from_variables_and_files() {
        let dir = tempfile::tempdir().unwrap();
        let defaults = Settings::load_from(dir.path(), env(&[])).unwrap();
        assert_eq!(defaults.jwt_algorithms.to_string(), "HS256,RS256,ES256");
        assert_eq!(defaults.jwt_user_claim, "sub");
        assert_eq!(defaults.jwt_jwks_min_refresh_seconds, 10);
        assert_eq!(defaults.jwt_jwks_cache_seconds, 600);

        std::fs::write(
            dir.path().join("a.toml"),
            "jwt_algorithms = [\"RS256\", \"ES256\"]\njwt_user_claim = \"uid\"\n",
        )
        .unwrap();
        let from_file = Settings::load_from(dir.path(), env(&[])).unwrap();
        assert_eq!(from_file.jwt_algorithms.to_string(), "RS256,ES256");
        assert_eq!(from_file.jwt_user_claim, "uid");

        let variables = [
            ("USAGE_JWT_ALGORITHMS", "rs512, es256"),
            ("USAGE_JWT_PUBLIC_KEY_PEM", "/etc/usage/key.pem"),
            ("USAGE_JWT_JWKS_TIMEOUT_SECONDS", "7"),
        ];
        let from_env = Settings::load_from(dir.path(), env(&variables)).unwrap();
        assert_eq!(from_env.jwt_algorithms.to_string(), "RS512,ES256");
        assert_eq!(
            from_env.jwt_public_key_pem.as_deref(),
            Some("/etc/usage/key.pem")
        );
        assert_eq!(from_env.jwt_jwks_timeout_seconds, 7);
    }

    #[test]
    fn bad_token_key_settings_are_rejected() {
        let dir = tempfile::tempdir().unwrap();
        for (name, value) in [
            ("USAGE_JWT_ALGORITHMS", "none"),
            ("USAGE_JWT_ALGORITHMS", "HS256,PS256"),
        ] {
            let loaded = Settings::load_from(dir.path(), env(&[(name, value)]));
            assert!(matches!(loaded, Err(SettingsError::Invalid(_))), "{value}");
        }
        for (name, value) in [
            ("USAGE_JWT_JWKS_MIN_REFRESH_SECONDS", "0"),
            ("USAGE_JWT_JWKS_TIMEOUT_SECONDS", "0"),
            ("USAGE_JWT_JWKS_CONNECT_TIMEOUT_SECONDS", "61"),
        ] {
            let loaded = Settings::load_from(dir.path(), env(&[(name, value)]));
            assert!(
                matches!(loaded, Err(SettingsError::OutOfRange(_))),
                "{name}"
            );
        }
        std::fs::write(dir.path().join("a.toml"), "jwt_user_claim = \"\"\n").unwrap();
        let empty_claim = Settings::load_from(dir.path(), env(&[]));
        assert!(matches!(empty_claim, Err(SettingsError::OutOfRange(_))));
    }

    #[test]
    fn cors_origins_and_rate_limits_are_read_from_variables_and_files() {
        let dir = tempfile::tempdir().unwrap();
        let defaults = Settings::load_from(dir.path(), env(&[])).unwrap();
        assert_eq!(defaults.cors_allowed_origins, CorsOrigins::None);
        assert_eq!(defaults.rate_limit_per_minute, 0);

        std::fs::write(
            dir.path().join("a.toml"),
            "cors_allowed_origins = [\"https://a.example\"]\nrate_limit_per_minute = 60\n",
        )
        .unwrap();
        let from_file = Settings::load_from(dir.path(), env(&[])).unwrap();
        assert_eq!(
            from_file.cors_allowed_origins.to_string(),
            "https://a.example"
        );
        assert_eq!(from_file.rate_limit_per_minute, 60);

        let variables = [(
            "USAGE_CORS_ALLOWED_ORIGINS",
            "https://a.example, http://localhost:5173",
        )];
        let from_env = Settings::load_from(dir.path(), env(&variables)).unwrap();
        assert_eq!(
            from_env.cors_allowed_origins.to_string(),
            "https://a.example,http://localhost:5173"
        );
        let bad = [("USAGE_CORS_ALLOWED_ORIGINS", "https://a.example/app")];
        assert!(Settings::load_from(dir.path(), env(&bad)).is_err());

        std::fs::write(dir.path().join("a.toml"), "cors_allowed_origins = []\n").unwrap();
        let empty = Settings::load_from(dir.path(), env(&[])).unwrap();
        assert_eq!(empty.cors_allowed_origins, CorsOrigins::None);
    }
}
