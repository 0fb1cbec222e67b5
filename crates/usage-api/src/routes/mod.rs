//! Route handlers. Each extracts its input, calls the domain service and maps the result.

mod erase;
mod export;
mod health;
mod metrics;
mod openapi;
mod stats;
mod summary;
mod sync;

use actix_web::http::Method;
use actix_web::middleware::from_fn;
use actix_web::web::{self, ServiceConfig};
use actix_web::{FromRequest, Handler, HttpResponse, Responder, Route};

use crate::auth::middleware::require_user;
use crate::error::ApiError;
use crate::rate_limit;

/// The prefix of the routes that need a token.
pub const USAGE_SCOPE: &str = "/api/usage";

/// A route: its method, its path, and the handler it is mounted with.
struct Endpoint {
    method: Method,
    path: &'static str,
    route: Route,
}

fn endpoint<F, Args>(method: Method, path: &'static str, handler: F) -> Endpoint
where
    F: Handler<Args>,
    Args: FromRequest + 'static,
    F::Output: Responder + 'static,
{
    Endpoint {
        route: web::method(method.clone()).to(handler),
        method,
        path,
    }
}

/// The routes behind authentication and the rate limit, relative to [`USAGE_SCOPE`].
fn usage_endpoints() -> Vec<Endpoint> {
    vec![
        endpoint(Method::POST, "/sync", sync::sync),
        endpoint(Method::GET, "/summary", summary::summary),
        endpoint(Method::GET, "/stats", stats::stats),
        endpoint(Method::GET, "/export", export::export),
        endpoint(Method::DELETE, "", erase::erase),
    ]
}

/// The routes that need no token: probes, metrics and the API description.
fn open_endpoints() -> Vec<Endpoint> {
    vec![
        endpoint(Method::GET, "/healthz", health::healthz),
        endpoint(Method::GET, "/readyz", health::readyz),
        endpoint(Method::GET, "/metrics", metrics::metrics),
        endpoint(Method::GET, "/openapi.json", openapi::openapi),
    ]
}

/// Every route the app serves, as (method, full path): read from the same tables that
/// [`configure`] mounts, so the OpenAPI document can be checked against it.
pub fn served() -> Vec<(Method, String)> {
    let usage = usage_endpoints()
        .into_iter()
        .map(|endpoint| (endpoint.method, format!("{USAGE_SCOPE}{}", endpoint.path)));
    let open = open_endpoints()
        .into_iter()
        .map(|endpoint| (endpoint.method, endpoint.path.to_owned()));
    usage.chain(open).collect()
}

/// Mounts every route; the usage scope sits behind the auth middleware and the rate limit.
pub fn configure(config: &mut ServiceConfig) {
    let mut usage = web::scope(USAGE_SCOPE)
        // The last `wrap` runs first: authentication, then the per-user rate limit.
        .wrap(from_fn(rate_limit::limit))
        .wrap(from_fn(require_user))
        .default_service(web::to(not_found));
    for endpoint in usage_endpoints() {
        usage = usage.service(resource(endpoint.path).route(endpoint.route));
    }
    config.service(usage);
    for endpoint in open_endpoints() {
        config.service(resource(endpoint.path).route(endpoint.route));
    }
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
