//! The bearer token of a request. Only the `Authorization` header is read: a token in a
//! query string or a cookie ends up in access logs, browser history and CSRF attacks.

use actix_web::http::header::HeaderValue;

use super::Rejection;

/// Longest `Authorization` header read; real tokens are a few kilobytes at most.
pub const MAX_AUTHORIZATION_BYTES: usize = 8 * 1024;

/// The token of `Authorization: Bearer <token>`.
///
/// # Errors
/// [`Rejection::Missing`] without a header, with another scheme or an empty token;
/// [`Rejection::Malformed`] for a header over [`MAX_AUTHORIZATION_BYTES`] or not ASCII.
pub fn token(header: Option<&HeaderValue>) -> Result<&str, Rejection> {
    let header = header.ok_or(Rejection::Missing)?;
    if header.len() > MAX_AUTHORIZATION_BYTES {
        return Err(Rejection::Malformed);
    }
    let value = header.to_str().map_err(|_| Rejection::Malformed)?.trim();
    let (scheme, token) = value.split_once(' ').unwrap_or((value, ""));
    if !scheme.eq_ignore_ascii_case("bearer") {
        return Err(Rejection::Missing);
    }
    match token.trim() {
        "" => Err(Rejection::Missing),
        token => Ok(token),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_token_follows_the_bearer_scheme_in_any_case() {
        let header = HeaderValue::from_static("bearer  abc.def.ghi ");
        assert_eq!(token(Some(&header)), Ok("abc.def.ghi"));
    }

    #[test]
    fn oversized_and_non_ascii_headers_are_malformed() {
        let long = HeaderValue::from_str(&format!("Bearer {}", "a".repeat(8 * 1024))).unwrap();
        assert_eq!(token(Some(&long)), Err(Rejection::Malformed));
        let latin1 = HeaderValue::from_bytes(b"Bearer caf\xe9").unwrap();
        assert_eq!(token(Some(&latin1)), Err(Rejection::Malformed));
    }

    #[test]
    fn other_schemes_and_empty_tokens_are_missing() {
        for value in [
            "Basic dXNlcjpwYXNz",
            "Bearer",
            "Bearer   ",
            "Token abc",
            "abc.def.ghi",
        ] {
            let header = HeaderValue::from_str(value).unwrap();
            assert_eq!(token(Some(&header)), Err(Rejection::Missing), "{value}");
        }
    }
}
