//! The test keys (`tests/fixtures/auth`), their JWKs, and tokens signed with them.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::Utc;
use jsonwebtoken::jwk::Jwk;
use jsonwebtoken::{Algorithm, EncodingKey, Header, encode};
use serde_json::{Value, json};

/// The issuer and audience the test apps require.
pub const ISSUER: &str = "https://id.test.invalid/";
pub const AUDIENCE: &str = "usage-api";

pub const RSA_A_PRIVATE: &[u8] = include_bytes!("../../fixtures/auth/rsa-a.pem");
pub const RSA_A_PUBLIC: &str = include_str!("../../fixtures/auth/rsa-a.pub.pem");
pub const RSA_B_PRIVATE: &[u8] = include_bytes!("../../fixtures/auth/rsa-b.pem");
pub const EC_A_PRIVATE: &[u8] = include_bytes!("../../fixtures/auth/ec-a.pem");

/// The path of the RSA public key file, for `jwt_public_key_pem`.
pub fn rsa_a_public_path() -> String {
    format!("{}/fixtures/auth/rsa-a.pub.pem", env!("CARGO_MANIFEST_DIR"))
}

/// A private key with the key id and algorithm a provider would publish it under.
pub struct TestKey {
    pub kid: String,
    pub algorithm: Algorithm,
    key: EncodingKey,
}

impl TestKey {
    pub fn rsa_a(kid: &str) -> Self {
        Self::new(
            kid,
            Algorithm::RS256,
            EncodingKey::from_rsa_pem(RSA_A_PRIVATE),
        )
    }

    pub fn rsa_b(kid: &str) -> Self {
        Self::new(
            kid,
            Algorithm::RS256,
            EncodingKey::from_rsa_pem(RSA_B_PRIVATE),
        )
    }

    pub fn ec_a(kid: &str) -> Self {
        Self::new(
            kid,
            Algorithm::ES256,
            EncodingKey::from_ec_pem(EC_A_PRIVATE),
        )
    }

    fn new(
        kid: &str,
        algorithm: Algorithm,
        key: jsonwebtoken::errors::Result<EncodingKey>,
    ) -> Self {
        Self {
            kid: kid.to_owned(),
            algorithm,
            key: key.expect("the test key reads"),
        }
    }

    /// The public JWK, with `kid`, `alg` and `use: sig`.
    pub fn jwk(&self) -> Value {
        let jwk = Jwk::from_encoding_key(&self.key, self.algorithm).expect("a public JWK");
        let mut jwk = serde_json::to_value(jwk).expect("a JWK serializes");
        jwk["kid"] = json!(self.kid);
        jwk["use"] = json!("sig");
        jwk
    }

    /// A token with this key's `kid` and algorithm.
    pub fn sign(&self, claims: &Value) -> String {
        self.sign_as(claims, self.algorithm, Some(&self.kid))
    }

    /// A token signed with this key under any algorithm and key id in its header.
    pub fn sign_as(&self, claims: &Value, algorithm: Algorithm, kid: Option<&str>) -> String {
        let mut header = Header::new(algorithm);
        header.kid = kid.map(str::to_owned);
        encode(&header, claims, &self.key).expect("the test token signs")
    }
}

/// A JWKS document publishing `keys`.
pub fn jwks(keys: &[&TestKey]) -> Value {
    json!({ "keys": keys.iter().map(|key| key.jwk()).collect::<Vec<_>>() })
}

/// Valid claims for `user` for the next hour, with the test issuer and audience.
pub fn claims(user: &str) -> Value {
    let now = Utc::now().timestamp();
    json!({"sub": user, "iss": ISSUER, "aud": AUDIENCE, "iat": now, "exp": now + 3600})
}

/// An HS256 token signed with `secret`, whatever it is (a public key's PEM text included).
pub fn hs256(claims: &Value, secret: &[u8], kid: Option<&str>) -> String {
    let mut header = Header::new(Algorithm::HS256);
    header.kid = kid.map(str::to_owned);
    encode(&header, claims, &EncodingKey::from_secret(secret)).expect("the HS256 token signs")
}

/// A compact JWT made of any header and claims and a raw signature part.
pub fn forge(header: &Value, claims: &Value, signature: &str) -> String {
    format!(
        "{}.{}.{signature}",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(claims.to_string())
    )
}
