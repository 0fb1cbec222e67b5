//! Cross-origin access for browsers: which web origins may call the API.
//!
//! Off unless origins are configured (`cors_allowed_origins`): the web client usually calls
//! through its own origin, and an API that answers any origin is an API any page can call
//! with a stolen token. Tokens travel in the `Authorization` header, never in cookies, so
//! credentials mode is never enabled.
//!
//! # Limitations
//!
//! A preflight (`OPTIONS`) from an origin that is not allowed is refused by `actix-cors` with
//! a 400 whose body is plain text, not the JSON error body: browsers never show it.

use std::fmt;

use actix_cors::Cors;
use actix_web::http::Method;
use actix_web::http::header::{AUTHORIZATION, CONTENT_TYPE, RETRY_AFTER};
use actix_web::middleware::Condition;
use serde::Deserialize;

use crate::telemetry::REQUEST_ID_HEADER;

/// How long a browser may cache a preflight answer, in seconds.
const PREFLIGHT_MAX_AGE: usize = 3_600;

/// The web origins allowed to call the API, parsed from a comma-separated list or an array.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(try_from = "OriginsInput")]
pub enum CorsOrigins {
    /// No CORS headers at all (the default).
    #[default]
    None,
    /// `*`: any origin, for development.
    Any,
    /// Exactly these origins, such as `https://app.example.com`.
    Listed(Vec<String>),
}

/// Why a list of origins is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CorsOriginError {
    #[error(
        "{0:?} is not a web origin: write scheme, host and optional port, such as \
         https://app.example.com or http://localhost:5173, with no path"
    )]
    NotAnOrigin(String),
    #[error("\"*\" allows every origin and cannot be combined with other origins")]
    WildcardWithOthers,
}

impl CorsOrigins {
    /// A comma-separated list; blank entries are ignored, so `""` means none.
    pub fn parse(text: &str) -> Result<Self, CorsOriginError> {
        Self::from_items(text.split(','))
    }

    fn from_items<'a>(items: impl IntoIterator<Item = &'a str>) -> Result<Self, CorsOriginError> {
        let items: Vec<&str> = items
            .into_iter()
            .map(str::trim)
            .filter(|item| !item.is_empty())
            .collect();
        if items.contains(&"*") {
            return match items.len() {
                1 => Ok(Self::Any),
                _ => Err(CorsOriginError::WildcardWithOthers),
            };
        }
        if items.is_empty() {
            return Ok(Self::None);
        }
        let origins = items
            .into_iter()
            .map(|item| {
                is_origin(item)
                    .then(|| item.to_owned())
                    .ok_or_else(|| CorsOriginError::NotAnOrigin(item.to_owned()))
            })
            .collect::<Result<_, _>>()?;
        Ok(Self::Listed(origins))
    }

    pub fn is_enabled(&self) -> bool {
        *self != Self::None
    }
}

impl fmt::Display for CorsOrigins {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::None => Ok(()),
            Self::Any => f.write_str("*"),
            Self::Listed(origins) => f.write_str(&origins.join(",")),
        }
    }
}

/// `http(s)://host[:port]`, as a browser sends it in `Origin`.
fn is_origin(text: &str) -> bool {
    let Some((scheme, authority)) = text.split_once("://") else {
        return false;
    };
    let scheme_ok = scheme.eq_ignore_ascii_case("http") || scheme.eq_ignore_ascii_case("https");
    let forbidden = |c: char| matches!(c, '/' | '?' | '#' | '@' | '*') || !c.is_ascii_graphic();
    scheme_ok && !authority.is_empty() && !authority.contains(forbidden)
}

#[derive(Deserialize)]
#[serde(untagged)]
enum OriginsInput {
    Text(String),
    List(Vec<String>),
}

impl TryFrom<OriginsInput> for CorsOrigins {
    type Error = CorsOriginError;

    fn try_from(input: OriginsInput) -> Result<Self, Self::Error> {
        match input {
            OriginsInput::Text(text) => Self::parse(&text),
            OriginsInput::List(items) => Self::from_items(items.iter().map(String::as_str)),
        }
    }
}

/// The CORS middleware for `origins`; it does nothing when none are configured.
pub fn middleware(origins: &CorsOrigins) -> Condition<Cors> {
    let mut cors = Cors::default()
        .allowed_methods([Method::GET, Method::POST, Method::DELETE])
        .allowed_headers([AUTHORIZATION, CONTENT_TYPE])
        .expose_headers([REQUEST_ID_HEADER, RETRY_AFTER])
        .max_age(PREFLIGHT_MAX_AGE);
    match origins {
        CorsOrigins::None => {}
        CorsOrigins::Any => cors = cors.allow_any_origin().send_wildcard(),
        CorsOrigins::Listed(list) => {
            for origin in list {
                cors = cors.allowed_origin(origin);
            }
        }
    }
    Condition::new(origins.is_enabled(), cors)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_are_read_from_commas_or_arrays() {
        let parsed = CorsOrigins::parse(" https://a.example , http://localhost:5173,").unwrap();
        let expected = vec![
            "https://a.example".to_owned(),
            "http://localhost:5173".to_owned(),
        ];
        assert_eq!(parsed, CorsOrigins::Listed(expected.clone()));
        let from_array = CorsOrigins::try_from(OriginsInput::List(expected.clone())).unwrap();
        assert_eq!(from_array, CorsOrigins::Listed(expected));
        assert_eq!(CorsOrigins::parse("").unwrap(), CorsOrigins::None);
        assert_eq!(CorsOrigins::parse("*").unwrap(), CorsOrigins::Any);
    }

    #[test]
    fn paths_wildcards_and_bare_hosts_are_not_origins() {
        for bad in [
            "app.example.com",
            "https://app.example.com/",
            "https://app.example.com/path",
            "ftp://files.example.com",
            "https://*.example.com",
            "https://",
        ] {
            assert!(
                matches!(
                    CorsOrigins::parse(bad),
                    Err(CorsOriginError::NotAnOrigin(_))
                ),
                "{bad}"
            );
        }
        assert_eq!(
            CorsOrigins::parse("*,https://a.example"),
            Err(CorsOriginError::WildcardWithOthers)
        );
    }
}
