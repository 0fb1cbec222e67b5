//! Route handlers. Each extracts its input, calls the domain service and maps the result.

mod health;
mod stats;
mod summary;
mod sync;

use actix_web::HttpResponse;
use actix_web::middleware::from_fn;
use actix_web::web::{self, ServiceConfig};

use crate::auth::middleware::require_user;
use crate::error::ApiError;

/// Mounts every route; the usage scope sits behind the auth middleware.
pub fn configure(config: &mut ServiceConfig) {
    config
        .service(
            web::scope("/api/usage")
                .wrap(from_fn(require_user))
                .service(resource("/sync").route(web::post().to(sync::sync)))
                .service(resource("/summary").route(web::get().to(summary::summary)))
                .service(resource("/stats").route(web::get().to(stats::stats)))
                .default_service(web::to(not_found)),
        )
        .service(resource("/healthz").route(web::get().to(health::healthz)))
        .service(resource("/readyz").route(web::get().to(health::readyz)));
}

/// A resource that answers other methods with a JSON 405.
fn resource(path: &str) -> actix_web::Resource {
    web::resource(path).default_service(web::to(method_not_allowed))
}

pub async fn not_found() -> Result<HttpResponse, ApiError> {
    Err(ApiError::NotFound)
}

async fn method_not_allowed() -> Result<HttpResponse, ApiError> {
    Err(ApiError::MethodNotAllowed)
}

/// Rejects a query string that cannot be read into the route's parameters.
pub fn query_error(error: actix_web::error::QueryPayloadError) -> ApiError {
    ApiError::InvalidQuery(format!("the query string is not valid: {error}"))
}
