//! Which signature algorithms the service accepts, and which kind of key each one needs.
//!
//! The list is explicit so that nothing a token says about itself widens it: `none`, the
//! RSA-PSS and HMAC-384/512 variants, EdDSA and anything unknown are never accepted, and an
//! algorithm is only usable with a key of its own family (no HS256 with an RSA key).

use std::fmt;

use jsonwebtoken::Algorithm;
use serde::Deserialize;

/// Every algorithm that may be listed in `jwt_algorithms`.
pub const SUPPORTED: [Algorithm; 5] = [
    Algorithm::HS256,
    Algorithm::RS256,
    Algorithm::RS384,
    Algorithm::RS512,
    Algorithm::ES256,
];

/// The kind of key an algorithm verifies with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyFamily {
    /// The shared secret (`jwt_secret`).
    Secret,
    /// An RSA public key of at least 2048 bits.
    Rsa,
    /// An elliptic-curve public key on P-256.
    P256,
}

impl KeyFamily {
    /// The family of a supported algorithm; `None` for any other.
    pub fn of(algorithm: Algorithm) -> Option<Self> {
        match algorithm {
            Algorithm::HS256 => Some(Self::Secret),
            Algorithm::RS256 | Algorithm::RS384 | Algorithm::RS512 => Some(Self::Rsa),
            Algorithm::ES256 => Some(Self::P256),
            _ => None,
        }
    }

    /// How operators and logs name the family.
    pub fn describe(self) -> &'static str {
        match self {
            Self::Secret => "HS256",
            Self::Rsa => "RS256, RS384 or RS512",
            Self::P256 => "ES256",
        }
    }
}

/// A non-empty list of accepted algorithms, each one of [`SUPPORTED`].
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(try_from = "AlgorithmsInput")]
pub struct AcceptedAlgorithms(Vec<Algorithm>);

/// Why a list of algorithms is refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum AlgorithmsError {
    #[error("no JWT algorithm is listed; name some of HS256, RS256, RS384, RS512, ES256")]
    Empty,
    #[error(
        "{name:?} is not an accepted JWT algorithm; name some of HS256, RS256, RS384, RS512, ES256"
    )]
    Unsupported { name: String },
}

impl AcceptedAlgorithms {
    /// A comma-separated list such as `RS256,ES256`; case and spaces do not matter.
    pub fn parse(text: &str) -> Result<Self, AlgorithmsError> {
        Self::from_names(text.split(','))
    }

    fn from_names<'a>(names: impl IntoIterator<Item = &'a str>) -> Result<Self, AlgorithmsError> {
        let mut algorithms = Vec::new();
        for name in names
            .into_iter()
            .map(str::trim)
            .filter(|name| !name.is_empty())
        {
            let algorithm = SUPPORTED
                .into_iter()
                .find(|supported| format!("{supported:?}").eq_ignore_ascii_case(name))
                .ok_or_else(|| AlgorithmsError::Unsupported {
                    name: name.to_owned(),
                })?;
            if !algorithms.contains(&algorithm) {
                algorithms.push(algorithm);
            }
        }
        if algorithms.is_empty() {
            return Err(AlgorithmsError::Empty);
        }
        Ok(Self(algorithms))
    }

    pub fn contains(&self, algorithm: Algorithm) -> bool {
        self.0.contains(&algorithm)
    }

    /// The accepted algorithms that verify with a key of `family`.
    pub fn of_family(&self, family: KeyFamily) -> Vec<Algorithm> {
        self.iter()
            .filter(|algorithm| KeyFamily::of(*algorithm) == Some(family))
            .collect()
    }

    pub fn iter(&self) -> impl Iterator<Item = Algorithm> + '_ {
        self.0.iter().copied()
    }
}

/// HS256 for the shared secret, RS256 and ES256 for public keys: what identity providers
/// sign with by default.
impl Default for AcceptedAlgorithms {
    fn default() -> Self {
        Self(vec![Algorithm::HS256, Algorithm::RS256, Algorithm::ES256])
    }
}

impl fmt::Display for AcceptedAlgorithms {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<String> = self
            .iter()
            .map(|algorithm| format!("{algorithm:?}"))
            .collect();
        f.write_str(&names.join(","))
    }
}

/// A setting's value: `"RS256,ES256"` from a variable or a file, or a TOML array.
#[derive(Deserialize)]
#[serde(untagged)]
enum AlgorithmsInput {
    Text(String),
    List(Vec<String>),
}

impl TryFrom<AlgorithmsInput> for AcceptedAlgorithms {
    type Error = AlgorithmsError;

    fn try_from(input: AlgorithmsInput) -> Result<Self, Self::Error> {
        match input {
            AlgorithmsInput::Text(text) => Self::parse(&text),
            AlgorithmsInput::List(names) => Self::from_names(names.iter().map(String::as_str)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_list_is_read_in_any_case_without_duplicates() {
        let list = AcceptedAlgorithms::parse(" rs256, ES256 ,RS256,").unwrap();
        assert_eq!(list.to_string(), "RS256,ES256");
        assert!(list.contains(Algorithm::ES256));
        assert!(!list.contains(Algorithm::HS256));
        assert_eq!(list.of_family(KeyFamily::Rsa), [Algorithm::RS256]);
    }

    #[test]
    fn none_and_unsupported_algorithms_are_refused() {
        for name in ["none", "HS384", "PS256", "EdDSA", "ES384", "rs 256"] {
            assert_eq!(
                AcceptedAlgorithms::parse(name),
                Err(AlgorithmsError::Unsupported { name: name.into() })
            );
        }
        assert_eq!(
            AcceptedAlgorithms::parse(" , "),
            Err(AlgorithmsError::Empty)
        );
    }

    #[test]
    fn a_toml_array_is_accepted_too() {
        let list: AcceptedAlgorithms = serde_json::from_str(r#"["RS512", "HS256"]"#).unwrap();
        assert_eq!(list.to_string(), "RS512,HS256");
    }

    #[test]
    fn every_supported_algorithm_has_a_family() {
        for algorithm in SUPPORTED {
            assert!(KeyFamily::of(algorithm).is_some(), "{algorithm:?}");
        }
        assert_eq!(KeyFamily::of(Algorithm::PS256), None);
    }
}
