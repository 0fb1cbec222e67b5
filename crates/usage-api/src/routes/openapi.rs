//! `GET /openapi.json`: an OpenAPI document of every route, generated from the handlers'
//! own annotations and the response types they serialise.
//!
//! Request records are documented by [`ExecutionRecord`] below, the one schema written for
//! the document alone: the sync route reads each record as loose JSON on purpose (so that
//! one bad field rejects one record), so no Rust type of the route has the client's shape.

use std::sync::LazyLock;

use actix_web::HttpResponse;
use serde_json::Value;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{ContentBuilder, PathItem, Ref, ResponseBuilder};
use utoipa::{Modify, OpenApi, ToSchema};

use crate::error::ErrorBody;

/// The name of the bearer-token security scheme the usage routes require.
pub const BEARER: &str = "bearer";

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Usage service",
        description = "Records and reports LLM usage for the offline-first web app. Every \
                       /api/usage route needs `Authorization: Bearer <JWT>`; the user is the \
                       token's subject claim. Every error body is \
                       {\"success\": false, \"error\": \"...\", \"code\": \"CODE\"}."
    ),
    paths(
        super::sync::sync,
        super::summary::summary,
        super::stats::stats,
        super::export::export,
        super::erase::erase,
        super::health::healthz,
        super::health::readyz,
        super::metrics::metrics,
        openapi,
    ),
    components(schemas(ErrorBody, SyncRequest, ExecutionRecord)),
    modifiers(&BearerAuth, &GuardedRouteErrors),
    tags(
        (name = "usage", description = "A user's own records; a bearer token is required"),
        (name = "operations", description = "Probes, metrics and this document; no token"),
    )
)]
struct ApiDoc;

/// Declares the bearer-token scheme that the usage routes' `security` names.
struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let scheme = HttpBuilder::new()
            .scheme(HttpAuthScheme::Bearer)
            .bearer_format("JWT")
            .build();
        openapi
            .components
            .get_or_insert_with(Default::default)
            .add_security_scheme(BEARER, SecurityScheme::Http(scheme));
    }
}

/// Answers that any route behind the bearer token can give, whatever the route does.
const GUARDED_ROUTE_ERRORS: [(&str, &str); 4] = [
    ("401", "NO_TOKEN, INVALID_TOKEN or TOKEN_EXPIRED"),
    ("429", "RATE_LIMITED, when rate limiting is on"),
    (
        "503",
        "STORAGE_UNAVAILABLE or AUTH_UNAVAILABLE, with Retry-After",
    ),
    ("500", "INTERNAL"),
];

/// Adds [`GUARDED_ROUTE_ERRORS`] to every operation that requires a token, so each handler's
/// annotation lists only the answers of its own.
struct GuardedRouteErrors;

impl Modify for GuardedRouteErrors {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let operations = openapi
            .paths
            .paths
            .values_mut()
            .flat_map(|item: &mut PathItem| {
                [
                    &mut item.get,
                    &mut item.post,
                    &mut item.put,
                    &mut item.delete,
                    &mut item.patch,
                ]
            });
        for operation in operations.flatten() {
            if operation.security.as_ref().is_none_or(Vec::is_empty) {
                continue;
            }
            for (status, description) in GUARDED_ROUTE_ERRORS {
                let body = ContentBuilder::new()
                    .schema(Some(Ref::from_schema_name("ErrorBody")))
                    .build();
                let response = ResponseBuilder::new()
                    .description(description)
                    .content("application/json", body)
                    .build();
                operation
                    .responses
                    .responses
                    .entry(status.to_owned())
                    .or_insert(response.into());
            }
        }
    }
}

/// The body of `POST /api/usage/sync`.
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct SyncRequest {
    /// At most `max_batch_records` (1,000 by default) records; each is judged on its own.
    executions: Vec<ExecutionRecord>,
}

/// One execution as the web client uploads it (its `ExecutionRecord` type). Fields not
/// listed are ignored; `compiledPrompt` and `response` are never stored.
#[derive(ToSchema)]
#[schema(rename_all = "camelCase")]
#[allow(dead_code)]
pub struct ExecutionRecord {
    /// The execution id, unique per user; 1 to 128 characters.
    #[schema(min_length = 1, max_length = 128)]
    id: String,
    /// When it ran: epoch milliseconds, or an RFC 3339 date-time string. Missing means now;
    /// older than retention or more than 24 hours ahead is rejected.
    #[schema(value_type = Option<i64>)]
    timestamp: Option<Value>,
    /// Such as `openai`, `anthropic`, `ollama`; 1 to 64 characters.
    #[schema(min_length = 1, max_length = 64)]
    provider: String,
    /// 1 to 128 characters.
    #[schema(min_length = 1, max_length = 128)]
    model: String,
    /// Missing means 0.
    #[schema(minimum = 0)]
    prompt_tokens: Option<u64>,
    /// Missing means 0.
    #[schema(minimum = 0)]
    completion_tokens: Option<u64>,
    /// Missing or 0 with non-zero parts becomes their sum.
    #[schema(minimum = 0)]
    total_tokens: Option<u64>,
    /// Milliseconds; missing means 0.
    #[schema(minimum = 0)]
    duration: Option<f64>,
    /// Missing means false.
    success: Option<bool>,
    /// The error message of a failed execution; cut to 1,000 characters.
    error: Option<String>,
    /// `local` (the default) or `remote`.
    #[schema(pattern = "^(local|remote)$")]
    execution_mode: Option<String>,
    /// A file path or similar; cut to 512 characters.
    context: Option<String>,
    /// Never stored: only whether it was sent.
    compiled_prompt: Option<String>,
    /// Never stored: only whether it was sent.
    response: Option<String>,
}

/// The document, rendered once.
static DOCUMENT: LazyLock<String> =
    LazyLock::new(|| ApiDoc::openapi().to_json().unwrap_or_default());

#[utoipa::path(
    get,
    path = "/openapi.json",
    tag = "operations",
    responses((
        status = 200,
        description = "This OpenAPI document",
        content_type = "application/json"
    ))
)]
pub async fn openapi() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("application/json")
        .body(DOCUMENT.as_str())
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;

    fn documented() -> BTreeSet<(String, String)> {
        let document: Value = serde_json::from_str(&DOCUMENT).unwrap();
        let paths = document["paths"].as_object().unwrap();
        paths
            .iter()
            .flat_map(|(path, item)| {
                let methods = item.as_object().unwrap().keys();
                methods.map(move |method| (method.to_ascii_uppercase(), path.clone()))
            })
            .collect()
    }

    #[test]
    fn every_referenced_schema_is_defined() {
        let document: Value = serde_json::from_str(&DOCUMENT).unwrap();
        let schemas = document["components"]["schemas"].as_object().unwrap();
        let text = DOCUMENT.as_str();
        for reference in text.split("\"#/components/schemas/").skip(1) {
            let name = reference.split('"').next().unwrap();
            assert!(
                schemas.contains_key(name),
                "{name} is referenced but not defined"
            );
        }
        for name in [
            "SyncResponse",
            "SummaryResponse",
            "UsageSummary",
            "UsageStats",
        ] {
            assert!(schemas.contains_key(name), "{name}");
        }
    }

    #[test]
    fn the_document_lists_exactly_the_routes_the_app_mounts() {
        let served: BTreeSet<(String, String)> = super::super::served()
            .into_iter()
            .map(|(method, path)| (method.to_string(), path))
            .collect();
        assert_eq!(documented(), served);
    }

    #[test]
    fn usage_routes_require_the_bearer_scheme_and_errors_have_their_schema() {
        let document: Value = serde_json::from_str(&DOCUMENT).unwrap();
        let scheme = &document["components"]["securitySchemes"][BEARER];
        assert_eq!(scheme["scheme"], "bearer");
        for (method, path) in documented() {
            let operation = &document["paths"][&path][method.to_ascii_lowercase()];
            let secured = operation["security"]
                .as_array()
                .is_some_and(|s| !s.is_empty());
            assert_eq!(
                secured,
                path.starts_with(super::super::USAGE_SCOPE),
                "{path}"
            );
        }
        let error = &document["components"]["schemas"]["ErrorBody"]["properties"];
        for field in ["success", "error", "code"] {
            assert!(error.get(field).is_some(), "ErrorBody.{field}");
        }
    }
}
