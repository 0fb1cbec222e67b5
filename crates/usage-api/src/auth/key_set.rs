//! A set of public keys, read from a JWKS document or made of one PEM key, and the rule
//! that picks the key for a token.

use std::sync::Arc;

use jsonwebtoken::Algorithm;
use jsonwebtoken::jwk::Jwk;
use serde::Deserialize;
use serde_json::Value;

use super::algorithms::AcceptedAlgorithms;
use super::keys::{KeyError, VerifyingKey};

/// Usable keys; may be empty only before the first fetch.
#[derive(Debug, Default, Clone)]
pub struct KeySet {
    keys: Vec<Arc<VerifyingKey>>,
}

/// The result of looking a token's key up.
#[derive(Debug)]
pub enum Lookup {
    Found(Arc<VerifyingKey>),
    /// A key has the token's `kid`, but it is not for the token's algorithm.
    WrongAlgorithm,
    Missing,
}

/// A JWKS document that cannot be used at all.
#[derive(Debug, thiserror::Error)]
pub enum DocumentError {
    #[error("the key document is not a JWKS (a JSON object with a \"keys\" array)")]
    NotJwks(#[source] serde_json::Error),
    #[error("the key document has no usable key ({skipped} skipped)")]
    NoUsableKey { skipped: usize },
}

/// A key of the document that was left out, and why; for the log.
#[derive(Debug)]
pub struct Skipped {
    pub key_id: Option<String>,
    pub reason: String,
}

#[derive(Deserialize)]
struct Document {
    keys: Vec<Value>,
}

impl KeySet {
    /// One key whatever the token's `kid`: a PEM key has no key id.
    pub fn single(key: VerifyingKey) -> Self {
        Self {
            keys: vec![Arc::new(key)],
        }
    }

    /// The usable keys of a JWKS document. Each key is read on its own, so one key of a
    /// type this service does not know does not hide the others.
    ///
    /// # Errors
    /// When the document is not a JWKS, or none of its keys is usable: a key server that
    /// briefly serves an empty or broken set must not replace keys that work.
    pub fn from_jwks(
        document: &[u8],
        accepted: &AcceptedAlgorithms,
    ) -> Result<(Self, Vec<Skipped>), DocumentError> {
        let document: Document =
            serde_json::from_slice(document).map_err(DocumentError::NotJwks)?;
        let mut keys = Vec::new();
        let mut skipped = Vec::new();
        for value in document.keys {
            let key_id = value.get("kid").and_then(Value::as_str).map(str::to_owned);
            let key = serde_json::from_value::<Jwk>(value)
                .map_err(|_| KeyError::Unsupported("unreadable JWK"))
                .and_then(|jwk| VerifyingKey::from_jwk(&jwk, accepted));
            match key {
                Ok(key) => keys.push(Arc::new(key)),
                Err(error) => skipped.push(Skipped {
                    key_id,
                    reason: error.to_string(),
                }),
            }
        }
        if keys.is_empty() {
            return Err(DocumentError::NoUsableKey {
                skipped: skipped.len(),
            });
        }
        Ok((Self { keys }, skipped))
    }

    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// Whether some key verifies `algorithm`.
    pub fn supports(&self, algorithm: Algorithm) -> bool {
        self.keys.iter().any(|key| key.accepts(algorithm))
    }

    /// The key for a token with `key_id` signed with `algorithm`.
    ///
    /// With a key id, only keys with that id are candidates; a set of one key without an id
    /// (a PEM key) fits every key id. Without a key id, the token is verified only when
    /// exactly one key fits its algorithm: trying every key would let one token cost as many
    /// signature checks as there are keys.
    pub fn find(&self, key_id: Option<&str>, algorithm: Algorithm) -> Lookup {
        if let [only] = self.keys.as_slice()
            && only.key_id().is_none()
        {
            return match only.accepts(algorithm) {
                true => Lookup::Found(Arc::clone(only)),
                false => Lookup::WrongAlgorithm,
            };
        }
        let Some(key_id) = key_id else {
            let mut fitting = self.keys.iter().filter(|key| key.accepts(algorithm));
            return match (fitting.next(), fitting.next()) {
                (Some(key), None) => Lookup::Found(Arc::clone(key)),
                _ => Lookup::Missing,
            };
        };
        let mut named = self.keys.iter().filter(|key| key.key_id() == Some(key_id));
        let Some(first) = named.next() else {
            return Lookup::Missing;
        };
        std::iter::once(first)
            .chain(named)
            .find(|key| key.accepts(algorithm))
            .map_or(Lookup::WrongAlgorithm, |key| Lookup::Found(Arc::clone(key)))
    }
}

#[cfg(test)]
mod tests {
    use base64::Engine;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use serde_json::json;

    use super::*;

    const EC_PUBLIC_PEM: &str = include_str!("../../../../tests/fixtures/auth/ec-a.pub.pem");

    fn ec_coordinates() -> (String, String) {
        use p256::elliptic_curve::sec1::ToEncodedPoint;
        use p256::pkcs8::DecodePublicKey;
        let key = p256::PublicKey::from_public_key_pem(EC_PUBLIC_PEM).unwrap();
        let point = key.to_encoded_point(false);
        (
            URL_SAFE_NO_PAD.encode(point.x().unwrap()),
            URL_SAFE_NO_PAD.encode(point.y().unwrap()),
        )
    }

    fn ec_jwk(kid: &str) -> Value {
        let (x, y) = ec_coordinates();
        json!({"kty": "EC", "crv": "P-256", "kid": kid, "x": x, "y": y})
    }

    fn accepted() -> AcceptedAlgorithms {
        AcceptedAlgorithms::default()
    }

    #[test]
    fn unusable_keys_are_skipped_and_the_rest_kept() {
        let document = json!({"keys": [
            ec_jwk("good"),
            {"kty": "oct", "kid": "shared", "k": "c2VjcmV0"},
            {"kty": "XYZ", "kid": "future"},
            "not even an object",
        ]});
        let (set, skipped) =
            KeySet::from_jwks(document.to_string().as_bytes(), &accepted()).unwrap();
        assert_eq!(set.len(), 1);
        let skipped_ids: Vec<_> = skipped.iter().map(|s| s.key_id.as_deref()).collect();
        assert_eq!(skipped_ids, [Some("shared"), Some("future"), None]);
    }

    #[test]
    fn a_document_without_usable_keys_is_an_error() {
        for document in [
            r#"{"keys": []}"#,
            r#"{"keys": [{"kty": "oct", "k": "AA"}]}"#,
        ] {
            assert!(matches!(
                KeySet::from_jwks(document.as_bytes(), &accepted()),
                Err(DocumentError::NoUsableKey { .. })
            ));
        }
        for document in ["", "[]", r#"{"keys": {}}"#, "<html>"] {
            assert!(matches!(
                KeySet::from_jwks(document.as_bytes(), &accepted()),
                Err(DocumentError::NotJwks(_))
            ));
        }
    }

    #[test]
    fn keys_are_found_by_kid_and_algorithm() {
        let document = json!({"keys": [ec_jwk("one"), ec_jwk("two")]});
        let (set, _) = KeySet::from_jwks(document.to_string().as_bytes(), &accepted()).unwrap();

        let found = set.find(Some("two"), Algorithm::ES256);
        assert!(matches!(found, Lookup::Found(key) if key.key_id() == Some("two")));
        assert!(matches!(
            set.find(Some("two"), Algorithm::RS256),
            Lookup::WrongAlgorithm
        ));
        assert!(matches!(
            set.find(Some("three"), Algorithm::ES256),
            Lookup::Missing
        ));
        assert!(
            matches!(set.find(None, Algorithm::ES256), Lookup::Missing),
            "no kid and two candidates"
        );
    }

    #[test]
    fn a_single_key_without_an_id_fits_any_kid() {
        let key = VerifyingKey::from_pem(EC_PUBLIC_PEM, &accepted()).unwrap();
        let set = KeySet::single(key);
        assert!(matches!(
            set.find(Some("x"), Algorithm::ES256),
            Lookup::Found(_)
        ));
        assert!(matches!(set.find(None, Algorithm::ES256), Lookup::Found(_)));
        assert!(matches!(
            set.find(None, Algorithm::RS256),
            Lookup::WrongAlgorithm
        ));
    }
}
