//! The OpenAPI 3.1 description of the public JSON API, served at `GET /v1/openapi.json`.
//!
//! Each handler carries its operation (`#[utoipa::path]`: parameters, body, answers, key)
//! and each type its schema (`#[derive(ToSchema)]`, where the type lives); the routers
//! register handlers with `utoipa_axum::routes!`, which adds the route and its operation
//! together, so a route cannot be served undocumented. [`document`] adds what every
//! operation shares: the key errors, the body errors, 500 and 503, all in the one error
//! format (`error.rs`). `host/tests/openapi.rs` keeps the document true, and
//! `host/benches/schemathesis.sh` fuzzes the server against it.

use std::sync::OnceLock;

use axum::http::header;
use axum::response::IntoResponse;
use utoipa::OpenApi;
use utoipa::openapi::path::Operation;
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{Content, HttpMethod, RefOr, Response, ResponseBuilder};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::error::ErrorBody;
use super::state::AppState;

/// The security scheme of the shop's secret key (`Authorization: Bearer sk_…`).
pub const SECRET_KEY: &str = "secret_key";
/// The security schemes of the shop's publishable key: the `X-Patron-Key` header or `?key=`.
pub const PUBLISHABLE_KEY: &str = "publishable_key";
pub const PUBLISHABLE_KEY_QUERY: &str = "publishable_key_query";

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Patron API",
        description = "Patron's HTTP API. Storefront endpoints take the shop's publishable key \
            (`pk_…`, as `X-Patron-Key` or `?key=`) and may be called from browsers on the shop's \
            allowed origins; back-office endpoints take the secret key (`Authorization: Bearer sk_…`) \
            and are for the store's back end only. Every id is a string. Money is an integer in minor \
            units of the shop's currency; times are unix milliseconds unless a field says RFC 3339. \
            Every error answer has the body `{\"error\": {\"code\": \"…\", \"message\": \"…\"}}`.",
        license(name = "Apache-2.0"),
    ),
    components(schemas(ErrorBody)),
    tags(
        (name = "storefront", description = "Publishable-key endpoints for the storefront widget and browsers"),
        (name = "customers", description = "Customers, identity and privacy (secret key)"),
        (name = "catalogue", description = "Products and orders (secret key)"),
        (name = "loyalty", description = "Loyalty members (secret key)"),
        (name = "segments", description = "Segments and jobs (secret key)"),
        (name = "plugins", description = "The shop's WebAssembly plugins (secret key)"),
        (name = "messages", description = "Delivery: channels, templates, contact policy, outbox, journeys (secret key)"),
        (name = "analytics", description = "The merchant's figures (secret key)"),
        (name = "shop", description = "The calling shop's settings and keys (secret key)"),
        (name = "meta", description = "This document"),
    )
)]
struct ApiDoc;

/// The route of the document itself.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(openapi_json))
}

/// This OpenAPI document (3.1), as JSON.
#[utoipa::path(
    get,
    path = "/v1/openapi.json",
    tag = "meta",
    responses((status = 200, description = "The OpenAPI document", content_type = "application/json", body = Object)),
)]
async fn openapi_json() -> impl IntoResponse {
    static JSON: OnceLock<String> = OnceLock::new();
    let json = JSON.get_or_init(|| super::openapi().to_string());
    ([(header::CONTENT_TYPE, "application/json")], json.as_str())
}

/// The whole document: the info, tags and security schemes above, the operations the
/// routers collected (`paths`), and the answers every operation shares.
pub fn document(paths: utoipa::openapi::OpenApi) -> serde_json::Value {
    let mut doc = ApiDoc::openapi();
    doc.merge(paths);
    let components = doc.components.get_or_insert_with(Default::default);
    components.add_security_scheme(
        SECRET_KEY,
        SecurityScheme::Http(
            HttpBuilder::new()
                .scheme(HttpAuthScheme::Bearer)
                .bearer_format("sk_…")
                .description(Some("The shop's secret key, from its back end only: `Authorization: Bearer sk_…`."))
                .build(),
        ),
    );
    components.add_security_scheme(
        PUBLISHABLE_KEY,
        SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::with_description(
            "X-Patron-Key",
            "The shop's publishable key (`pk_…`); safe in a browser.",
        ))),
    );
    components.add_security_scheme(
        PUBLISHABLE_KEY_QUERY,
        SecurityScheme::ApiKey(ApiKey::Query(ApiKeyValue::with_description(
            "key",
            "The shop's publishable key (`pk_…`) as `?key=`; what `navigator.sendBeacon` and preflights carry.",
        ))),
    );
    for (name, description) in SHARED {
        components.responses.insert((*name).to_owned(), RefOr::T(error_response(description)));
    }
    for item in doc.paths.paths.values_mut() {
        for method in [HttpMethod::Get, HttpMethod::Post, HttpMethod::Put, HttpMethod::Patch, HttpMethod::Delete] {
            if let Some(operation) = operation_mut(item, &method) {
                add_shared(operation);
            }
        }
    }
    open_composed(doc)
}

/// A type that refuses unknown fields (`deny_unknown_fields`: `additionalProperties: false`)
/// cannot be a part of an `allOf` (a flattened field, a tagged enum's variant): the other
/// parts' properties would be unknown to it. Such parts are left open; the whole keeps
/// its own properties.
fn open_composed(doc: utoipa::openapi::OpenApi) -> serde_json::Value {
    // utoipa's model serialises to JSON but does not read all of it back: edit the JSON.
    let mut value = serde_json::to_value(&doc).unwrap_or_default();
    let mut parts = Vec::new();
    open_all_of_parts(&mut value, &mut parts);
    for reference in parts {
        if let Some(schema) = reference.strip_prefix('#').and_then(|p| value.pointer_mut(p))
            && let Some(object) = schema.as_object_mut()
            && object.get("additionalProperties") == Some(&serde_json::Value::Bool(false))
        {
            object.remove("additionalProperties");
        }
    }
    value
}

/// Opens the inline parts of every `allOf` under `value` and collects the referenced ones.
fn open_all_of_parts(value: &mut serde_json::Value, referenced: &mut Vec<String>) {
    match value {
        serde_json::Value::Object(map) => {
            if let Some(serde_json::Value::Array(parts)) = map.get_mut("allOf") {
                for part in parts.iter_mut().filter_map(serde_json::Value::as_object_mut) {
                    match part.get("$ref").and_then(serde_json::Value::as_str) {
                        Some(reference) => referenced.push(reference.to_owned()),
                        None => {
                            if part.get("additionalProperties") == Some(&serde_json::Value::Bool(false)) {
                                part.remove("additionalProperties");
                            }
                        }
                    }
                }
            }
            map.values_mut().for_each(|v| open_all_of_parts(v, referenced));
        }
        serde_json::Value::Array(items) => items.iter_mut().for_each(|v| open_all_of_parts(v, referenced)),
        _ => {}
    }
}

/// The answers many operations share, by the name they have in `components/responses`.
const SHARED: &[(&str, &str)] = &[
    ("BadRequest", "The request is malformed (e.g. the body is not JSON); `code` says how"),
    ("Unauthorized", "No key, or an unknown or expired one (`missing_key`, `invalid_key`, `expired_key`)"),
    (
        "Forbidden",
        "The wrong kind of key (`secret_key_required`, `secret_key_in_browser`), or an origin the shop does not allow",
    ),
    ("NotFound", "No such resource for this shop (`not_found`)"),
    ("Conflict", "The request conflicts with the resource's state (`conflict` or a specific code)"),
    ("PayloadTooLarge", "The body is larger than this endpoint accepts (`payload_too_large`)"),
    (
        "Unprocessable",
        "A parameter or body field is invalid; the message names it (`invalid_field` or a specific code)",
    ),
    ("TooManyRequests", "Over the key's or the client's rate (`rate_limited`); retry after `Retry-After` seconds"),
    ("Internal", "An internal error (`internal`); its cause is logged, never sent"),
    ("Timeout", "The request did not finish within the server's request timeout (`timeout`)"),
];

fn error_response(description: &str) -> Response {
    ResponseBuilder::new()
        .description(description)
        .content("application/json", Content::new(Some(RefOr::Ref(utoipa::openapi::Ref::from_schema_name("Error")))))
        .build()
}

fn operation_mut<'a>(item: &'a mut utoipa::openapi::PathItem, method: &HttpMethod) -> Option<&'a mut Operation> {
    match method {
        HttpMethod::Get => item.get.as_mut(),
        HttpMethod::Post => item.post.as_mut(),
        HttpMethod::Put => item.put.as_mut(),
        HttpMethod::Patch => item.patch.as_mut(),
        HttpMethod::Delete => item.delete.as_mut(),
        _ => None,
    }
}

/// Adds to `operation` the answers its key, its body and the server itself can give,
/// unless the operation states them itself.
fn add_shared(operation: &mut Operation) {
    let schemes: Vec<String> = operation
        .security
        .iter()
        .flatten()
        .filter_map(|requirement| serde_json::to_value(requirement).ok())
        .filter_map(|value| value.as_object().map(|o| o.keys().cloned().collect::<Vec<_>>()))
        .flatten()
        .collect();
    let mut shared = Vec::new();
    if !schemes.is_empty() {
        shared.extend([("401", "Unauthorized"), ("403", "Forbidden")]);
    }
    if schemes.iter().any(|s| s == PUBLISHABLE_KEY || s == PUBLISHABLE_KEY_QUERY) {
        shared.push(("429", "TooManyRequests"));
    }
    if operation.request_body.is_some() {
        shared.extend([("400", "BadRequest"), ("413", "PayloadTooLarge")]);
    }
    if operation.request_body.is_some() || operation.parameters.as_ref().is_some_and(|p| !p.is_empty()) {
        shared.push(("422", "Unprocessable"));
    }
    shared.extend([("500", "Internal"), ("503", "Timeout")]);
    for (status, name) in shared {
        operation
            .responses
            .responses
            .entry(status.to_owned())
            .or_insert_with(|| RefOr::Ref(utoipa::openapi::Ref::from_response_name(name)));
    }
}
