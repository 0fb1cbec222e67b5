//! Verification keys: a JWT library key bound to the algorithms it may verify.
//!
//! A key is built from the shared secret, a PEM public key or a JWK, and checked once when
//! it is built (RSA size, point on the curve), so a bad key is skipped with a reason instead
//! of failing every token later. Its algorithm list is the accepted algorithms of its own
//! family, narrowed further by the JWK's `alg` when the key server names one.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, Jwk, KeyAlgorithm, PublicKeyUse};
use jsonwebtoken::{Algorithm, DecodingKey};
use p256::elliptic_curve::sec1::ToEncodedPoint;
use rsa::traits::PublicKeyParts;

use super::algorithms::{AcceptedAlgorithms, KeyFamily};
use crate::settings::Secret;

/// Smallest RSA modulus accepted, in bits: smaller keys can be factored.
pub const MIN_RSA_BITS: usize = 2048;

/// A key and the algorithms it may verify; never empty.
pub struct VerifyingKey {
    key_id: Option<String>,
    key: DecodingKey,
    algorithms: Vec<Algorithm>,
}

impl std::fmt::Debug for VerifyingKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VerifyingKey")
            .field("key_id", &self.key_id)
            .field("algorithms", &self.algorithms)
            .finish_non_exhaustive()
    }
}

/// Why a key cannot be used. The message never quotes the key material.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum KeyError {
    #[error("this is a private key; give the public key (openssl pkey -pubout) instead")]
    PrivateKey,
    #[error("not a PEM RSA or P-256 public key (-----BEGIN PUBLIC KEY-----)")]
    UnreadablePem,
    #[error("an RSA key of {bits} bits is too small; at least {MIN_RSA_BITS} are required")]
    WeakRsa { bits: usize },
    #[error("the key's parameters are not a valid public key")]
    Invalid,
    #[error("the key is not for signatures (use {0:?})")]
    NotForSignatures(String),
    #[error("unsupported key type: {0}")]
    Unsupported(&'static str),
    #[error("the key is for {named}, which jwt_algorithms does not accept")]
    AlgorithmNotAccepted { named: String },
    #[error("jwt_algorithms accepts no algorithm for this key (it needs {})", .0.describe())]
    NoAcceptedAlgorithm(KeyFamily),
}

impl VerifyingKey {
    /// The shared secret, for HS256 only.
    pub fn secret(secret: &Secret) -> Self {
        Self {
            key_id: None,
            key: DecodingKey::from_secret(secret.expose().as_bytes()),
            algorithms: vec![Algorithm::HS256],
        }
    }

    /// An RSA (`PUBLIC KEY` or `RSA PUBLIC KEY`) or P-256 (`PUBLIC KEY`) key in PEM text.
    pub fn from_pem(pem: &str, accepted: &AcceptedAlgorithms) -> Result<Self, KeyError> {
        use p256::pkcs8::DecodePublicKey as _;
        use rsa::pkcs1::DecodeRsaPublicKey as _;

        if pem.contains("PRIVATE KEY-----") {
            return Err(KeyError::PrivateKey);
        }
        let rsa = rsa::RsaPublicKey::from_public_key_pem(pem)
            .or_else(|_| rsa::RsaPublicKey::from_pkcs1_pem(pem));
        if let Ok(rsa) = rsa {
            let key = rsa_key(&rsa.n().to_bytes_be(), &rsa.e().to_bytes_be())?;
            return Self::bound(None, key, KeyFamily::Rsa, accepted, None);
        }
        let ec = p256::PublicKey::from_public_key_pem(pem).map_err(|_| KeyError::UnreadablePem)?;
        let point = ec.to_encoded_point(false);
        let key = DecodingKey::from_ec_der(point.as_bytes());
        Self::bound(None, key, KeyFamily::P256, accepted, None)
    }

    /// A key of a JWKS document: RSA, or EC on P-256. Symmetric keys are never taken from a
    /// key server, whose document is public.
    pub fn from_jwk(jwk: &Jwk, accepted: &AcceptedAlgorithms) -> Result<Self, KeyError> {
        match &jwk.common.public_key_use {
            None | Some(PublicKeyUse::Signature) => {}
            Some(PublicKeyUse::Encryption) => {
                return Err(KeyError::NotForSignatures("enc".into()));
            }
            Some(PublicKeyUse::Other(other)) => {
                return Err(KeyError::NotForSignatures(other.clone()));
            }
        }
        let (key, family) = match &jwk.algorithm {
            AlgorithmParameters::RSA(rsa) => {
                (rsa_key(&b64(&rsa.n)?, &b64(&rsa.e)?)?, KeyFamily::Rsa)
            }
            AlgorithmParameters::EllipticCurve(ec) if ec.curve == EllipticCurve::P256 => {
                (p256_key(&b64(&ec.x)?, &b64(&ec.y)?)?, KeyFamily::P256)
            }
            AlgorithmParameters::EllipticCurve(_) => return Err(KeyError::Unsupported("EC curve")),
            AlgorithmParameters::OctetKey(_) => return Err(KeyError::Unsupported("oct")),
            AlgorithmParameters::OctetKeyPair(_) => return Err(KeyError::Unsupported("OKP")),
        };
        let kid = jwk.common.key_id.clone();
        Self::bound(kid, key, family, accepted, jwk.common.key_algorithm)
    }

    /// Binds `key` to the accepted algorithms of `family`, or to the one the JWK names.
    fn bound(
        key_id: Option<String>,
        key: DecodingKey,
        family: KeyFamily,
        accepted: &AcceptedAlgorithms,
        named: Option<KeyAlgorithm>,
    ) -> Result<Self, KeyError> {
        let mut algorithms = accepted.of_family(family);
        if algorithms.is_empty() {
            return Err(KeyError::NoAcceptedAlgorithm(family));
        }
        if let Some(named) = named {
            let named_text = format!("{named:?}");
            algorithms.retain(|algorithm| format!("{algorithm:?}") == named_text);
            if algorithms.is_empty() {
                return Err(KeyError::AlgorithmNotAccepted { named: named_text });
            }
        }
        Ok(Self {
            key_id,
            key,
            algorithms,
        })
    }

    pub fn key_id(&self) -> Option<&str> {
        self.key_id.as_deref()
    }

    /// Whether a token signed with `algorithm` may be verified with this key.
    pub fn accepts(&self, algorithm: Algorithm) -> bool {
        self.algorithms.contains(&algorithm)
    }

    pub fn decoding_key(&self) -> &DecodingKey {
        &self.key
    }
}

fn b64(text: &str) -> Result<Vec<u8>, KeyError> {
    URL_SAFE_NO_PAD
        .decode(text.trim_end_matches('='))
        .map_err(|_| KeyError::Invalid)
}

/// Checks the modulus size and the parameters once, here, rather than at every token.
fn rsa_key(modulus: &[u8], exponent: &[u8]) -> Result<DecodingKey, KeyError> {
    let n = rsa::BigUint::from_bytes_be(modulus);
    let e = rsa::BigUint::from_bytes_be(exponent);
    let bits = n.bits();
    if bits < MIN_RSA_BITS {
        return Err(KeyError::WeakRsa { bits });
    }
    let public = rsa::RsaPublicKey::new(n, e).map_err(|_| KeyError::Invalid)?;
    Ok(DecodingKey::from_rsa_raw_components(
        &public.n().to_bytes_be(),
        &public.e().to_bytes_be(),
    ))
}

/// An uncompressed SEC1 point, checked to lie on P-256.
fn p256_key(x: &[u8], y: &[u8]) -> Result<DecodingKey, KeyError> {
    const COORDINATE_BYTES: usize = 32;
    if x.len() != COORDINATE_BYTES || y.len() != COORDINATE_BYTES {
        return Err(KeyError::Invalid);
    }
    let mut point = Vec::with_capacity(1 + 2 * COORDINATE_BYTES);
    point.push(0x04);
    point.extend_from_slice(x);
    point.extend_from_slice(y);
    p256::PublicKey::from_sec1_bytes(&point).map_err(|_| KeyError::Invalid)?;
    // The library's "EC DER" key is the SEC1 point its verifier reads.
    Ok(DecodingKey::from_ec_der(&point))
}

#[cfg(test)]
mod tests {
    use jsonwebtoken::jwk::Jwk;
    use serde_json::json;

    use super::*;

    /// The public half of `tests/fixtures/auth/rsa-a.pem`.
    const RSA_PUBLIC_PEM: &str = include_str!("../../../../tests/fixtures/auth/rsa-a.pub.pem");
    /// The public half of `tests/fixtures/auth/ec-a.pem`.
    const EC_PUBLIC_PEM: &str = include_str!("../../../../tests/fixtures/auth/ec-a.pub.pem");

    fn all() -> AcceptedAlgorithms {
        AcceptedAlgorithms::parse("HS256,RS256,RS384,ES256").unwrap()
    }

    fn jwk(value: serde_json::Value) -> Jwk {
        serde_json::from_value(value).unwrap()
    }

    fn rsa_jwk_parts() -> (String, String) {
        use rsa::pkcs8::DecodePublicKey as _;
        let key = rsa::RsaPublicKey::from_public_key_pem(RSA_PUBLIC_PEM).unwrap();
        (
            URL_SAFE_NO_PAD.encode(key.n().to_bytes_be()),
            URL_SAFE_NO_PAD.encode(key.e().to_bytes_be()),
        )
    }

    #[test]
    fn pem_keys_verify_only_their_own_family() {
        let rsa = VerifyingKey::from_pem(RSA_PUBLIC_PEM, &all()).unwrap();
        assert!(rsa.accepts(Algorithm::RS256) && rsa.accepts(Algorithm::RS384));
        assert!(!rsa.accepts(Algorithm::HS256) && !rsa.accepts(Algorithm::ES256));

        let ec = VerifyingKey::from_pem(EC_PUBLIC_PEM, &all()).unwrap();
        assert!(ec.accepts(Algorithm::ES256));
        assert!(!ec.accepts(Algorithm::RS256) && !ec.accepts(Algorithm::HS256));
    }

    #[test]
    fn private_keys_garbage_and_unaccepted_families_are_refused() {
        let private = "-----BEGIN PRIVATE KEY-----\nMIIE\n-----END PRIVATE KEY-----\n";
        assert_eq!(
            VerifyingKey::from_pem(private, &all()).unwrap_err(),
            KeyError::PrivateKey
        );
        assert_eq!(
            VerifyingKey::from_pem("hello", &all()).unwrap_err(),
            KeyError::UnreadablePem
        );
        let only_ec = AcceptedAlgorithms::parse("ES256").unwrap();
        assert_eq!(
            VerifyingKey::from_pem(RSA_PUBLIC_PEM, &only_ec).unwrap_err(),
            KeyError::NoAcceptedAlgorithm(KeyFamily::Rsa)
        );
    }

    #[test]
    fn a_jwk_alg_narrows_the_algorithms_of_its_key() {
        let (n, e) = rsa_jwk_parts();
        let key =
            jwk(json!({"kty": "RSA", "kid": "a", "alg": "RS384", "use": "sig", "n": n, "e": e}));
        let key = VerifyingKey::from_jwk(&key, &all()).unwrap();
        assert_eq!(key.key_id(), Some("a"));
        assert!(key.accepts(Algorithm::RS384) && !key.accepts(Algorithm::RS256));

        let ps = jwk(json!({"kty": "RSA", "alg": "PS256", "n": n, "e": e}));
        assert_eq!(
            VerifyingKey::from_jwk(&ps, &all()).unwrap_err(),
            KeyError::AlgorithmNotAccepted {
                named: "PS256".into()
            }
        );
    }

    #[test]
    fn weak_encryption_symmetric_and_off_curve_jwks_are_skipped() {
        let (n, e) = rsa_jwk_parts();
        let short_n = URL_SAFE_NO_PAD.encode([0xC5_u8; 128]);
        let weak = jwk(json!({"kty": "RSA", "n": short_n, "e": e}));
        assert_eq!(
            VerifyingKey::from_jwk(&weak, &all()).unwrap_err(),
            KeyError::WeakRsa { bits: 1024 }
        );
        let enc = jwk(json!({"kty": "RSA", "use": "enc", "n": n, "e": e}));
        assert!(matches!(
            VerifyingKey::from_jwk(&enc, &all()),
            Err(KeyError::NotForSignatures(_))
        ));
        let oct = jwk(json!({"kty": "oct", "k": "c2VjcmV0"}));
        assert_eq!(
            VerifyingKey::from_jwk(&oct, &all()).unwrap_err(),
            KeyError::Unsupported("oct")
        );
        let coordinate = URL_SAFE_NO_PAD.encode([1_u8; 32]);
        let off_curve = jwk(json!({"kty": "EC", "crv": "P-256", "x": coordinate, "y": coordinate}));
        assert_eq!(
            VerifyingKey::from_jwk(&off_curve, &all()).unwrap_err(),
            KeyError::Invalid
        );
        let p384 = jwk(json!({"kty": "EC", "crv": "P-384", "x": coordinate, "y": coordinate}));
        assert_eq!(
            VerifyingKey::from_jwk(&p384, &all()).unwrap_err(),
            KeyError::Unsupported("EC curve")
        );
    }

    #[test]
    fn the_secret_verifies_hs256_only() {
        let key = VerifyingKey::secret(&Secret::new("s"));
        assert!(key.accepts(Algorithm::HS256));
        assert!(!key.accepts(Algorithm::RS256));
    }
}
