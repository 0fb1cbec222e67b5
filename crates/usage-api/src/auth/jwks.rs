//! Fetching the identity provider's JWKS document over HTTPS, with timeouts and a size cap.

use std::future::Future;
use std::net::IpAddr;
use std::time::Duration;

use reqwest::{Url, redirect};

/// Largest JWKS document read; real ones are a few kilobytes.
pub const MAX_DOCUMENT_BYTES: usize = 256 * 1024;
/// Most redirects followed, each to an allowed URL.
const MAX_REDIRECTS: usize = 3;

/// Where the keys are published: an `https` URL, or `http` to a loopback host (local
/// development and tests). Plain HTTP elsewhere would let anyone on the path hand the service
/// keys of their choosing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JwksUrl(Url);

/// Why a JWKS URL is refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum JwksUrlError {
    #[error("USAGE_JWT_JWKS_URL is not a URL")]
    NotUrl,
    #[error("USAGE_JWT_JWKS_URL must use https (plain http is allowed only to a loopback host)")]
    NotHttps,
    #[error("USAGE_JWT_JWKS_URL must not carry a user name or password")]
    Credentials,
}

impl JwksUrl {
    pub fn parse(text: &str) -> Result<Self, JwksUrlError> {
        let url = Url::parse(text.trim()).map_err(|_| JwksUrlError::NotUrl)?;
        if !url.username().is_empty() || url.password().is_some() {
            return Err(JwksUrlError::Credentials);
        }
        if !is_allowed(&url) {
            return Err(JwksUrlError::NotHttps);
        }
        Ok(Self(url))
    }

    /// Scheme, host, port and path: what the log may show.
    pub fn redacted(&self) -> String {
        let mut url = self.0.clone();
        url.set_query(None);
        url.set_fragment(None);
        url.to_string()
    }
}

fn is_allowed(url: &Url) -> bool {
    match url.scheme() {
        "https" => url.host_str().is_some(),
        "http" => url.host_str().is_some_and(is_loopback_host),
        _ => false,
    }
}

fn is_loopback_host(host: &str) -> bool {
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    host.eq_ignore_ascii_case("localhost")
        || bare.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// How long a fetch may take.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FetchTimeouts {
    /// To open the TCP (and TLS) connection.
    pub connect: Duration,
    /// For the whole request, body included.
    pub total: Duration,
}

/// Why a fetch gave no document. Messages never carry the URL's query or any key.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    #[error("the key server did not answer")]
    Request(#[source] reqwest::Error),
    #[error("the key server answered with status {0}")]
    Status(u16),
    #[error("the key document is larger than {MAX_DOCUMENT_BYTES} bytes")]
    TooLarge,
}

/// Something that gives the current JWKS document; the seam that lets the cache be tested
/// without a network.
pub trait FetchDocument: Send + Sync + 'static {
    fn fetch(&self) -> impl Future<Output = Result<Vec<u8>, FetchError>> + Send;
    /// Where the document comes from, for the log.
    fn source(&self) -> String;
}

/// Fetches the document from a [`JwksUrl`].
#[derive(Debug)]
pub struct HttpFetcher {
    client: reqwest::Client,
    url: JwksUrl,
}

impl HttpFetcher {
    /// A client with `timeouts`, at most [`MAX_REDIRECTS`] redirects (each to an allowed
    /// URL), and no pooled connections: fetches are minutes apart, and a pooled connection
    /// would belong to the worker runtime that opened it.
    pub fn new(url: JwksUrl, timeouts: FetchTimeouts) -> Result<Self, reqwest::Error> {
        let redirects = redirect::Policy::custom(|attempt| {
            if attempt.previous().len() >= MAX_REDIRECTS {
                attempt.error("too many redirects")
            } else if !is_allowed(attempt.url()) {
                attempt.error("redirected to a URL that is not https")
            } else {
                attempt.follow()
            }
        });
        let client = reqwest::Client::builder()
            .connect_timeout(timeouts.connect)
            .timeout(timeouts.total)
            .redirect(redirects)
            .pool_max_idle_per_host(0)
            .user_agent(concat!("usage-service/", env!("CARGO_PKG_VERSION")))
            .build()?;
        Ok(Self { client, url })
    }

    async fn get(&self) -> Result<Vec<u8>, FetchError> {
        let request = self
            .client
            .get(self.url.0.clone())
            .header(reqwest::header::ACCEPT, "application/json");
        let mut response = request.send().await.map_err(request_error)?;
        if !response.status().is_success() {
            return Err(FetchError::Status(response.status().as_u16()));
        }
        if response
            .content_length()
            .is_some_and(|length| length > MAX_DOCUMENT_BYTES as u64)
        {
            return Err(FetchError::TooLarge);
        }
        let mut document = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(request_error)? {
            if document.len() + chunk.len() > MAX_DOCUMENT_BYTES {
                return Err(FetchError::TooLarge);
            }
            document.extend_from_slice(&chunk);
        }
        Ok(document)
    }
}

/// reqwest's message names the URL; ours is logged on its own, redacted.
fn request_error(error: reqwest::Error) -> FetchError {
    FetchError::Request(error.without_url())
}

impl FetchDocument for HttpFetcher {
    fn fetch(&self) -> impl Future<Output = Result<Vec<u8>, FetchError>> + Send {
        self.get()
    }

    fn source(&self) -> String {
        self.url.redacted()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn https_anywhere_and_http_only_to_loopback() {
        for good in [
            "https://tenant.example.com/.well-known/jwks.json",
            "http://127.0.0.1:8081/jwks.json",
            "http://localhost/jwks.json",
            "http://[::1]:9000/keys",
        ] {
            assert!(JwksUrl::parse(good).is_ok(), "{good}");
        }
        let refused = [
            (
                "http://tenant.example.com/jwks.json",
                JwksUrlError::NotHttps,
            ),
            ("http://10.0.0.1/jwks.json", JwksUrlError::NotHttps),
            ("ftp://tenant.example.com/jwks.json", JwksUrlError::NotHttps),
            ("file:///etc/jwks.json", JwksUrlError::NotHttps),
            ("tenant.example.com/jwks.json", JwksUrlError::NotUrl),
            (
                "https://user:pw@tenant.example.com/",
                JwksUrlError::Credentials,
            ),
        ];
        for (url, error) in refused {
            assert_eq!(JwksUrl::parse(url), Err(error), "{url}");
        }
    }

    #[test]
    fn the_logged_form_drops_the_query() {
        let url = JwksUrl::parse("https://id.example/keys?tenant=a&sig=xyz#frag").unwrap();
        assert_eq!(url.redacted(), "https://id.example/keys");
    }
}
