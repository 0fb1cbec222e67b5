//! The one table from failures to HTTP statuses and SPEC's stable error codes.

use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpResponse, ResponseError};
use serde::Serialize;
use usage_domain::{RepositoryError, ServiceError};

/// Seconds a client should wait before retrying after a 503 or 429.
pub const RETRY_AFTER_SECONDS: u32 = 5;

/// Every failure a route can answer with. The message is for a person; it never carries
/// internals, which are logged where the failure happens.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{0}")]
    InvalidBody(String),
    #[error("{0}")]
    InvalidQuery(String),
    #[error("a bearer token is required in the Authorization header")]
    NoToken,
    #[error("the bearer token is not valid")]
    InvalidToken,
    #[error("the bearer token has expired")]
    TokenExpired,
    #[error("the request body is larger than the limit of {limit} bytes")]
    PayloadTooLarge { limit: usize },
    #[error("the batch has {count} records; at most {limit} are accepted per request")]
    BatchTooLarge { count: usize, limit: usize },
    #[error("too many requests; retry later")]
    RateLimited,
    #[error("the usage store is unavailable; retry later")]
    StorageUnavailable,
    #[error("the key server cannot be reached to verify the token; retry later")]
    AuthUnavailable,
    #[error("no such route")]
    NotFound,
    #[error("this method is not allowed on this route")]
    MethodNotAllowed,
    #[error("the request body did not arrive within {seconds} seconds")]
    RequestTimeout { seconds: u64 },
    #[error("an internal error occurred")]
    Internal,
}

impl ApiError {
    /// The stable code clients match on.
    pub fn code(&self) -> &'static str {
        match self {
            Self::InvalidBody(_) => "INVALID_BODY",
            Self::InvalidQuery(_) => "INVALID_QUERY",
            Self::NoToken => "NO_TOKEN",
            Self::InvalidToken => "INVALID_TOKEN",
            Self::TokenExpired => "TOKEN_EXPIRED",
            Self::PayloadTooLarge { .. } => "PAYLOAD_TOO_LARGE",
            Self::BatchTooLarge { .. } => "BATCH_TOO_LARGE",
            Self::RateLimited => "RATE_LIMITED",
            Self::StorageUnavailable => "STORAGE_UNAVAILABLE",
            Self::AuthUnavailable => "AUTH_UNAVAILABLE",
            Self::NotFound => "NOT_FOUND",
            Self::MethodNotAllowed => "METHOD_NOT_ALLOWED",
            Self::RequestTimeout { .. } => "REQUEST_TIMEOUT",
            Self::Internal => "INTERNAL",
        }
    }

    fn retry_after(&self) -> bool {
        matches!(
            self,
            Self::RateLimited | Self::StorageUnavailable | Self::AuthUnavailable
        )
    }
}

/// The error body of SPEC.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ErrorBody<'a> {
    /// Always false.
    pub success: bool,
    /// A sentence for a person; never internals.
    pub error: String,
    /// The stable code clients match on, such as `INVALID_QUERY` or `STORAGE_UNAVAILABLE`.
    #[schema(example = "INVALID_QUERY")]
    pub code: &'a str,
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        match self {
            Self::InvalidBody(_) | Self::InvalidQuery(_) => StatusCode::BAD_REQUEST,
            Self::NoToken | Self::InvalidToken | Self::TokenExpired => StatusCode::UNAUTHORIZED,
            Self::PayloadTooLarge { .. } | Self::BatchTooLarge { .. } => {
                StatusCode::PAYLOAD_TOO_LARGE
            }
            Self::RateLimited => StatusCode::TOO_MANY_REQUESTS,
            Self::StorageUnavailable | Self::AuthUnavailable => StatusCode::SERVICE_UNAVAILABLE,
            Self::NotFound => StatusCode::NOT_FOUND,
            Self::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            Self::RequestTimeout { .. } => StatusCode::REQUEST_TIMEOUT,
            Self::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        let mut response = HttpResponse::build(self.status_code());
        if self.retry_after() {
            response.insert_header((header::RETRY_AFTER, HeaderValue::from(RETRY_AFTER_SECONDS)));
        }
        if matches!(self, Self::RequestTimeout { .. }) {
            // The rest of a body that came too slowly is not worth reading.
            response.force_close();
        }
        if matches!(
            self,
            Self::NoToken | Self::InvalidToken | Self::TokenExpired
        ) {
            response.insert_header((header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer")));
        }
        response.json(ErrorBody {
            success: false,
            error: self.to_string(),
            code: self.code(),
        })
    }
}

impl From<ServiceError> for ApiError {
    fn from(error: ServiceError) -> Self {
        // The cause chain goes to the log; the client gets the short message.
        tracing::error!(error = %error_chain(&error), "storage failure");
        match error {
            ServiceError::NotStored(_) => Self::StorageUnavailable,
            ServiceError::Storage(RepositoryError::Unavailable(_)) => Self::StorageUnavailable,
            ServiceError::Storage(RepositoryError::Internal(_)) => Self::Internal,
        }
    }
}

/// `outer: inner: innermost`, for logs.
pub fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use actix_web::body::to_bytes;

    use super::*;

    #[actix_web::test]
    async fn every_error_body_has_the_spec_shape() {
        let response = ApiError::StorageUnavailable.error_response();
        assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(response.headers().get(header::RETRY_AFTER).unwrap(), "5");
        let body = to_bytes(response.into_body()).await.unwrap();
        let body: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(
            body,
            serde_json::json!({
                "success": false,
                "error": "the usage store is unavailable; retry later",
                "code": "STORAGE_UNAVAILABLE"
            })
        );
    }

    #[test]
    fn storage_failures_map_by_kind() {
        let unavailable = ServiceError::Storage(RepositoryError::unavailable("down"));
        assert!(matches!(
            ApiError::from(unavailable),
            ApiError::StorageUnavailable
        ));
        let internal = ServiceError::Storage(RepositoryError::internal("bad row"));
        assert!(matches!(ApiError::from(internal), ApiError::Internal));
        let not_stored = ServiceError::NotStored(RepositoryError::internal("write refused"));
        assert!(
            matches!(ApiError::from(not_stored), ApiError::StorageUnavailable),
            "a failed insert is always worth a retry"
        );
    }
}
