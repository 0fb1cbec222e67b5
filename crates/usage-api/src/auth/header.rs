//! The JWT header, read before any key is chosen: which algorithm and which key the token
//! says it uses. Nothing here is trusted; it only selects what the signature is checked
//! against, and an algorithm outside the accepted list ends the matter.

use std::str::FromStr;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::Algorithm;
use serde::Deserialize;
use serde_json::Value;

use super::Rejection;

/// Longest key id read; real ones are short hashes or names.
pub const MAX_KID_CHARS: usize = 256;

/// What the header of a compact JWT claims.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenHeader {
    pub algorithm: Algorithm,
    pub key_id: Option<String>,
}

#[derive(Deserialize)]
struct RawHeader {
    alg: Option<Value>,
    kid: Option<Value>,
    crit: Option<Value>,
}

impl TokenHeader {
    /// Reads the header of `token` (`header.payload.signature`, base64url without padding).
    ///
    /// # Errors
    /// [`Rejection::WrongAlgorithm`] for `none` or any algorithm this library does not
    /// know; [`Rejection::Malformed`] for anything that is not a JWS header, a key id that is
    /// not a short string, or a `crit` header (no extension is understood, so RFC 7515 says
    /// such a token must be refused).
    pub fn parse(token: &str) -> Result<Self, Rejection> {
        let mut parts = token.split('.');
        let (Some(header), Some(_), Some(_), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(Rejection::Malformed);
        };
        let bytes = URL_SAFE_NO_PAD
            .decode(header)
            .map_err(|_| Rejection::Malformed)?;
        let raw: RawHeader = serde_json::from_slice(&bytes).map_err(|_| Rejection::Malformed)?;
        if raw.crit.is_some() {
            return Err(Rejection::Malformed);
        }
        let algorithm = match raw.alg {
            Some(Value::String(name)) => {
                Algorithm::from_str(&name).map_err(|_| Rejection::WrongAlgorithm)?
            }
            Some(_) => return Err(Rejection::Malformed),
            None => return Err(Rejection::WrongAlgorithm),
        };
        let key_id = match raw.kid {
            None | Some(Value::Null) => None,
            Some(Value::String(kid)) if kid.chars().count() <= MAX_KID_CHARS => Some(kid),
            Some(_) => return Err(Rejection::Malformed),
        };
        Ok(Self { algorithm, key_id })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn token_with_header(header: &str) -> String {
        format!("{}.e30.c2ln", URL_SAFE_NO_PAD.encode(header))
    }

    #[test]
    fn the_algorithm_and_key_id_are_read() {
        let token = token_with_header(r#"{"alg":"RS256","kid":"key-1","typ":"JWT"}"#);
        assert_eq!(
            TokenHeader::parse(&token),
            Ok(TokenHeader {
                algorithm: Algorithm::RS256,
                key_id: Some("key-1".into())
            })
        );
        let no_kid = token_with_header(r#"{"alg":"ES256"}"#);
        assert_eq!(TokenHeader::parse(&no_kid).unwrap().key_id, None);
    }

    #[test]
    fn none_missing_and_unknown_algorithms_are_the_wrong_algorithm() {
        for header in [
            r#"{"alg":"none"}"#,
            r#"{"alg":"None"}"#,
            r#"{"alg":"HS1"}"#,
            r#"{"typ":"JWT"}"#,
        ] {
            assert_eq!(
                TokenHeader::parse(&token_with_header(header)),
                Err(Rejection::WrongAlgorithm),
                "{header}"
            );
        }
    }

    #[test]
    fn anything_else_odd_is_malformed() {
        let long_kid = format!(
            r#"{{"alg":"RS256","kid":"{}"}}"#,
            "k".repeat(MAX_KID_CHARS + 1)
        );
        let headers = [
            r#"{"alg":"RS256","crit":["exp"]}"#,
            r#"{"alg":256}"#,
            r#"{"alg":"RS256","kid":7}"#,
            r#"["RS256"]"#,
            "not json",
            &long_kid,
        ];
        for header in headers {
            let token = token_with_header(header);
            assert_eq!(
                TokenHeader::parse(&token),
                Err(Rejection::Malformed),
                "{header}"
            );
        }
        for token in [
            "",
            "a.b",
            "a.b.c.d",
            "!!!.e30.c2ln",
            "eyJhbGciOiJSUzI1NiJ9=.e30.x",
        ] {
            assert_eq!(
                TokenHeader::parse(token),
                Err(Rejection::Malformed),
                "{token}"
            );
        }
    }
}
