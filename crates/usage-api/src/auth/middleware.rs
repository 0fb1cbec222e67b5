//! The auth middleware on the usage scope: no route handler runs without a verified user.

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::AUTHORIZATION;
use actix_web::middleware::Next;
use actix_web::{HttpMessage, web};

use super::Authenticator;
use crate::error::ApiError;

/// Verifies the bearer token and stores the [`usage_domain::UserId`] in the request.
pub async fn require_user(
    request: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let Some(authenticator) = request.app_data::<web::Data<Authenticator>>().cloned() else {
        tracing::error!("no authenticator is configured for this scope");
        return Ok(request
            .error_response(ApiError::Internal)
            .map_into_right_body());
    };
    match authenticator
        .authenticate(request.headers().get(AUTHORIZATION))
        .await
    {
        Ok(user) => {
            tracing::Span::current().record("user", user.as_str());
            request.extensions_mut().insert(user);
            Ok(next.call(request).await?.map_into_left_body())
        }
        Err(rejection) => {
            tracing::info!(
                reason = rejection.reason(),
                "request refused by authentication"
            );
            let refusal = request.error_response(ApiError::from(rejection));
            Ok(refusal.map_into_right_body())
        }
    }
}
