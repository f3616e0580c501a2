//! The OpenAPI document served at `GET /v1/openapi.json` stays true: it lists exactly the
//! operations the API serves, it is well-formed OpenAPI 3.1 (every reference resolves,
//! every operation keyed, described and answering errors in the one format), and real
//! answers validate against the schemas it gives for them. (`host/benches/schemathesis.sh`
//! also checks it with openapi-spec-validator and fuzzes the server against it.)

use std::collections::BTreeSet;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use patron::auth::customer_token;
use patron::{AppState, app, testing};
use serde_json::{Value, json};
use tower::ServiceExt;

/// Every operation of the public JSON API. A route added without its `#[utoipa::path]`
/// cannot be registered (`utoipa_axum::routes!`); one added with it must be listed here.
const OPERATIONS: &[(&str, &str)] = &[
    ("GET", "/v1/analytics/cohorts"),
    ("GET", "/v1/analytics/definitions"),
    ("GET", "/v1/analytics/loyalty"),
    ("GET", "/v1/analytics/overview"),
    ("GET", "/v1/analytics/rfm"),
    ("GET", "/v1/analytics/rfm/cells/{r}/{f}/customers"),
    ("GET", "/v1/analytics/segments/{segment}"),
    ("GET", "/v1/channels"),
    ("DELETE", "/v1/channels/{name}"),
    ("GET", "/v1/channels/{name}"),
    ("PUT", "/v1/channels/{name}"),
    ("POST", "/v1/channels/{name}/rotate-secret"),
    ("POST", "/v1/consent"),
    ("GET", "/v1/contact-policy"),
    ("PUT", "/v1/contact-policy"),
    ("GET", "/v1/customers"),
    ("POST", "/v1/customers"),
    ("DELETE", "/v1/customers/{external_id}"),
    ("GET", "/v1/customers/{external_id}"),
    ("GET", "/v1/customers/{external_id}/consent"),
    ("PUT", "/v1/customers/{external_id}/consent"),
    ("GET", "/v1/customers/{external_id}/export"),
    ("POST", "/v1/customers/{external_id}/merge"),
    ("GET", "/v1/customers/{external_id}/merges"),
    ("POST", "/v1/events"),
    ("POST", "/v1/identify"),
    ("GET", "/v1/jobs"),
    ("POST", "/v1/jobs/{id}/retry"),
    ("GET", "/v1/journeys/report"),
    ("GET", "/v1/journeys/state"),
    ("GET", "/v1/members/{external_id}"),
    ("GET", "/v1/messages"),
    ("GET", "/v1/messages/dead-letters"),
    ("GET", "/v1/messages/{id}"),
    ("GET", "/v1/openapi.json"),
    ("POST", "/v1/orders"),
    ("GET", "/v1/orders/{id}"),
    ("POST", "/v1/orders/{id}/refunds"),
    ("GET", "/v1/plugins"),
    ("POST", "/v1/plugins"),
    ("DELETE", "/v1/plugins/{name}"),
    ("GET", "/v1/plugins/{name}"),
    ("PUT", "/v1/plugins/{name}/config"),
    ("POST", "/v1/plugins/{name}/disable"),
    ("POST", "/v1/plugins/{name}/dry-run"),
    ("POST", "/v1/plugins/{name}/enable"),
    ("POST", "/v1/plugins/{name}/rollback"),
    ("GET", "/v1/privacy/requests"),
    ("POST", "/v1/products"),
    ("GET", "/v1/products/{id}"),
    ("GET", "/v1/recommendations"),
    ("GET", "/v1/recommendations/report"),
    ("POST", "/v1/rewards/redeem"),
    ("GET", "/v1/segments"),
    ("POST", "/v1/segments/recompute"),
    ("GET", "/v1/segments/{name}/members"),
    ("GET", "/v1/shop"),
    ("PATCH", "/v1/shop"),
    ("PUT", "/v1/shop/event-retention"),
    ("POST", "/v1/shop/rotate-key"),
    ("GET", "/v1/shop/tokens"),
    ("PUT", "/v1/shop/tokens"),
    ("GET", "/v1/templates"),
    ("GET", "/v1/templates/{name}/{locale}"),
    ("PUT", "/v1/templates/{name}/{locale}"),
    ("GET", "/v1/widget/state"),
];

const METHODS: [&str; 5] = ["GET", "POST", "PUT", "PATCH", "DELETE"];

/// One request through a fresh `app`: status, headers' content type, JSON body (or `null`).
async fn send(
    db: &patron::Db,
    method: &str,
    uri: &str,
    headers: &[(&str, &str)],
    body: Option<&Value>,
) -> (StatusCode, String, Value) {
    let mut request = Request::builder().method(method).uri(uri);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let body = body.map_or_else(Body::empty, |b| Body::from(b.to_string()));
    let response =
        app(AppState::new(db.clone())).oneshot(request.body(body).expect("request")).await.expect("infallible");
    let status = response.status();
    let content_type =
        response.headers().get("content-type").and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
    let bytes = axum::body::to_bytes(response.into_body(), usize::MAX).await.expect("body");
    (status, content_type, serde_json::from_slice(&bytes).unwrap_or(Value::Null))
}

async fn document(db: &patron::Db) -> Value {
    let (status, content_type, doc) = send(db, "GET", "/v1/openapi.json", &[], None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(content_type, "application/json");
    doc
}

fn operations(doc: &Value) -> BTreeSet<(String, String)> {
    let mut found = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for method in METHODS {
            if item.get(method.to_lowercase()).is_some() {
                found.insert((method.to_owned(), path.clone()));
            }
        }
    }
    found
}

/// A concrete URI for a templated path.
fn concrete(path: &str) -> String {
    path.replace("{r}", "1").replace("{f}", "1").replace("{locale}", "en").replace(['{', '}'], "")
}

#[tokio::test]
async fn the_document_lists_exactly_the_operations_the_api_serves() {
    let db = testing::fresh_db(testing::Backend::Sqlite).await;
    let doc = document(&db).await;
    let listed: BTreeSet<(String, String)> =
        OPERATIONS.iter().map(|(m, p)| ((*m).to_owned(), (*p).to_owned())).collect();
    assert_eq!(operations(&doc), listed, "the document's operations (left) against OPERATIONS (right)");
    assert_eq!(patron::api::openapi(), doc);

    // Every documented path answers its methods, and only those (a 405 in the error format).
    let paths: BTreeSet<&str> = OPERATIONS.iter().map(|(_, p)| *p).collect();
    for path in paths {
        let uri = concrete(path);
        for method in METHODS {
            let (status, _, body) = send(&db, method, &uri, &[], None).await;
            if listed.contains(&(method.to_owned(), path.to_owned())) {
                assert_ne!(status, StatusCode::METHOD_NOT_ALLOWED, "{method} {uri}");
                assert!(
                    !(status == StatusCode::NOT_FOUND && body["error"]["message"] == "route not found"),
                    "{method} {uri} is documented but not routed"
                );
            } else {
                assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED, "{method} {uri} is served but not documented");
                assert_eq!(body["error"]["code"], "method_not_allowed");
            }
        }
    }

    // No route under /v1/ is registered around the documented routers.
    let src = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut stack = vec![src];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).expect("read src") {
            let path = entry.expect("entry").path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                let text = std::fs::read_to_string(&path).expect("read source");
                assert!(
                    !text.contains(".route(\"/v1"),
                    "{} registers a /v1/ route with `.route`: use `routes!` and `#[utoipa::path]`",
                    path.display()
                );
            }
        }
    }
}

#[tokio::test]
async fn the_document_is_well_formed_openapi_3_1() {
    let db = testing::fresh_db(testing::Backend::Sqlite).await;
    let doc = document(&db).await;
    assert_eq!(doc["openapi"], "3.1.0");
    assert!(doc["info"]["title"].is_string() && doc["info"]["version"].is_string());

    // The three keys are declared, and every reference resolves inside the document.
    let schemes = &doc["components"]["securitySchemes"];
    assert_eq!(
        schemes["secret_key"],
        json!({"type": "http", "scheme": "bearer", "bearerFormat": "sk_…",
        "description": "The shop's secret key, from its back end only: `Authorization: Bearer sk_…`."})
    );
    assert_eq!(schemes["publishable_key"]["in"], "header");
    assert_eq!(schemes["publishable_key_query"]["in"], "query");
    let mut refs = Vec::new();
    collect_refs(&doc, &mut refs);
    assert!(refs.len() > 100, "{} references", refs.len());
    for reference in refs {
        let pointer = reference.strip_prefix('#').unwrap_or_else(|| panic!("external reference {reference}"));
        assert!(doc.pointer(pointer).is_some(), "{reference} does not resolve");
    }

    let ids: Vec<&str> = doc["paths"]
        .as_object()
        .expect("paths")
        .values()
        .flat_map(|item| item.as_object().expect("item").values())
        .filter_map(|operation| operation["operationId"].as_str())
        .collect();
    assert_eq!(ids.len(), OPERATIONS.len(), "every operation has an operationId");
    assert_eq!(ids.iter().collect::<BTreeSet<_>>().len(), ids.len(), "operationIds are unique: {ids:?}");

    // Every operation: a tag, a description, its key unless it is the document itself,
    // its path's parameters, and every error answer in the one error format.
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for (method, operation) in item.as_object().expect("item") {
            let name = format!("{method} {path}");
            assert!(operation["tags"].as_array().is_some_and(|t| t.len() == 1), "{name} has no tag");
            let described = |key: &str| operation[key].as_str().is_some_and(|d| d.len() > 10);
            assert!(described("summary") || described("description"), "{name} is not described");
            let secured = operation["security"].as_array().is_some_and(|s| !s.is_empty());
            assert_eq!(secured, path != "/v1/openapi.json", "{name}: security");
            let in_path: BTreeSet<&str> = operation["parameters"]
                .as_array()
                .into_iter()
                .flatten()
                .filter(|p| p["in"] == "path")
                .filter_map(|p| p["name"].as_str())
                .collect();
            let templated: BTreeSet<&str> =
                path.split('/').filter_map(|s| s.strip_prefix('{').and_then(|s| s.strip_suffix('}'))).collect();
            assert_eq!(in_path, templated, "{name}: path parameters");
            let responses = operation["responses"].as_object().expect("responses");
            assert!(responses.keys().any(|s| s.starts_with('2')), "{name} has no success answer");
            for status in ["500", "503"] {
                assert!(responses.contains_key(status), "{name} lacks {status}");
            }
            for (status, response) in responses {
                let response = resolve(&doc, response);
                assert!(response["description"].is_string(), "{name} {status}");
                if status.starts_with('4') || status.starts_with('5') {
                    assert_eq!(
                        response["content"]["application/json"]["schema"]["$ref"], "#/components/schemas/Error",
                        "{name} {status}"
                    );
                }
            }
        }
    }
}

fn collect_refs(value: &Value, refs: &mut Vec<String>) {
    match value {
        Value::Object(map) => {
            for (key, value) in map {
                match (key.as_str(), value) {
                    ("$ref", Value::String(reference)) => refs.push(reference.clone()),
                    _ => collect_refs(value, refs),
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|v| collect_refs(v, refs)),
        _ => {}
    }
}

/// A response object, following a `$ref` to `components/responses`.
fn resolve<'a>(doc: &'a Value, response: &'a Value) -> &'a Value {
    match response["$ref"].as_str() {
        Some(reference) => doc.pointer(reference.trim_start_matches('#')).expect("reference resolves"),
        None => response,
    }
}

/// A call: method, path as documented, URI, headers, body, the status expected.
type Case<'a> = (&'a str, &'a str, String, &'a [(&'a str, &'a str)], Option<Value>, StatusCode);

/// Checks `body` against the schema the document gives for `status` of `method path`.
fn assert_conforms(doc: &Value, method: &str, path: &str, status: StatusCode, body: &Value) {
    let operation = &doc["paths"][path][method.to_lowercase()];
    assert!(operation.is_object(), "{method} {path} is not documented");
    let response = operation["responses"]
        .get(status.as_str())
        .unwrap_or_else(|| panic!("{method} {path} does not document {status}: {body}"));
    let response = resolve(doc, response);
    let Some(schema) = response["content"]["application/json"].get("schema") else {
        assert!(body.is_null(), "{method} {path} {status} documents no body but answered {body}");
        return;
    };
    let mut errors = Vec::new();
    validate(doc, schema, body, "", &mut errors);
    assert!(errors.is_empty(), "{method} {path} {status}: {errors:#?}\nbody: {body:#}");
}

/// Validates `value` against `schema`: the JSON Schema keywords the document uses (`$ref`,
/// `type`, `enum`, `properties`, `required`, `additionalProperties`, `items`, `allOf`,
/// `anyOf`, `oneOf`, `minimum`, `maximum`, `minLength`, `maxLength`); errors name the
/// place in `value`.
fn validate(doc: &Value, schema: &Value, value: &Value, at: &str, errors: &mut Vec<String>) {
    let Some(schema) = schema.as_object() else { return };
    if let Some(reference) = schema.get("$ref").and_then(Value::as_str) {
        let target = doc.pointer(reference.trim_start_matches('#')).expect("reference resolves");
        validate(doc, target, value, at, errors);
    }
    let matches = |s: &Value| {
        let mut found = Vec::new();
        validate(doc, s, value, at, &mut found);
        found.is_empty()
    };
    if let Some(types) = schema.get("type") {
        let types: Vec<&str> = match types {
            Value::String(t) => vec![t.as_str()],
            Value::Array(ts) => ts.iter().filter_map(Value::as_str).collect(),
            _ => Vec::new(),
        };
        let is = |t: &str| match t {
            "null" => value.is_null(),
            "boolean" => value.is_boolean(),
            "integer" => value.is_i64() || value.is_u64(),
            "number" => value.is_number(),
            "string" => value.is_string(),
            "array" => value.is_array(),
            "object" => value.is_object(),
            _ => false,
        };
        if !types.iter().any(|t| is(t)) {
            errors.push(format!("{at}: {value} is not {types:?}"));
            return;
        }
    }
    if let Some(allowed) = schema.get("enum").and_then(Value::as_array)
        && !allowed.contains(value)
    {
        errors.push(format!("{at}: {value} is not one of {allowed:?}"));
    }
    if let Some(parts) = schema.get("allOf").and_then(Value::as_array) {
        parts.iter().for_each(|part| validate(doc, part, value, at, errors));
    }
    if let Some(parts) = schema.get("anyOf").and_then(Value::as_array)
        && !parts.iter().any(matches)
    {
        errors.push(format!("{at}: {value} matches none of anyOf"));
    }
    if let Some(parts) = schema.get("oneOf").and_then(Value::as_array) {
        let n = parts.iter().filter(|p| matches(p)).count();
        if n != 1 {
            errors.push(format!("{at}: {value} matches {n} of oneOf"));
        }
    }
    let bound = |key: &str| schema.get(key).and_then(Value::as_f64);
    if let Some(number) = value.as_f64()
        && (bound("minimum").is_some_and(|min| number < min) || bound("maximum").is_some_and(|max| number > max))
    {
        errors.push(format!("{at}: {value} is out of bounds"));
    }
    let length = value.as_str().map(|text| text.chars().count() as f64);
    if let Some(length) = length
        && (bound("minLength").is_some_and(|min| length < min) || bound("maxLength").is_some_and(|max| length > max))
    {
        errors.push(format!("{at}: {value} has a length out of bounds"));
    }
    if let Some(object) = value.as_object() {
        let properties = schema.get("properties").and_then(Value::as_object);
        for name in schema.get("required").and_then(Value::as_array).into_iter().flatten().filter_map(Value::as_str) {
            if !object.contains_key(name) {
                errors.push(format!("{at}: `{name}` is missing"));
            }
        }
        for (name, field) in object {
            let place = format!("{at}/{name}");
            match (properties.and_then(|p| p.get(name)), schema.get("additionalProperties")) {
                (Some(property), _) => validate(doc, property, field, &place, errors),
                (None, Some(Value::Bool(false))) => errors.push(format!("{place}: not allowed")),
                (None, Some(additional)) => validate(doc, additional, field, &place, errors),
                (None, None) => {}
            }
        }
    }
    if let (Some(items), Some(array)) = (schema.get("items"), value.as_array()) {
        for (i, item) in array.iter().enumerate() {
            validate(doc, items, item, &format!("{at}/{i}"), errors);
        }
    }
}

#[test]
fn the_validator_refuses_what_does_not_match() {
    let doc = json!({"components": {"schemas": {"Id": {"type": "string"}}}});
    let schema = json!({"type": "object", "required": ["id"], "additionalProperties": false,
        "properties": {"id": {"$ref": "#/components/schemas/Id"}, "n": {"type": ["integer", "null"], "minimum": 0}}});
    let check = |value: Value| {
        let mut errors = Vec::new();
        validate(&doc, &schema, &value, "", &mut errors);
        errors
    };
    assert!(check(json!({"id": "1", "n": null})).is_empty());
    assert!(check(json!({"id": "1", "n": 3})).is_empty());
    assert_eq!(check(json!({"id": 1})).len(), 1, "a number id");
    assert_eq!(check(json!({"n": 1})).len(), 1, "no id");
    assert_eq!(check(json!({"id": "1", "n": -1})).len(), 1, "below the minimum");
    assert_eq!(check(json!({"id": "1", "x": 1})).len(), 1, "an unknown field");
}

#[tokio::test]
async fn real_answers_validate_against_the_document() {
    let db = testing::fresh_db(testing::Backend::Sqlite).await;
    let doc = document(&db).await;
    let (shop, keys) = testing::shop(&db, "openapi").await;
    let bearer = format!("Bearer {}", keys.secret);
    let secret = [("authorization", bearer.as_str())];
    let public = [("x-patron-key", keys.publishable.as_str())];
    let token = customer_token(&shop.secret_hash, "c-1").expect("token");

    let product = json!({"id": "p-1", "title": "Tea", "price": 1200, "category": "drinks"});
    let customer =
        json!({"external_id": "c-1", "email": "ada@example.com", "first_name": "Ada", "traits": {"vip": true}});
    let order = json!({
        "id": "o-1", "customer": {"external_id": "c-1"}, "placed_at": "2026-01-02T03:04:05Z",
        "lines": [{"product_id": "p-1", "title": "Tea", "quantity": 2, "unit_price": 1200}],
    });
    let events = json!({"anonymous_id": "anon-1", "events": [
        {"id": "e-1", "kind": "page_view", "url": "https://shop.test/"},
        {"id": "e-2", "kind": "not-a-kind"},
    ]});
    let identify = json!({"anonymous_id": "anon-1", "customer_id": "c-1", "customer_token": token});
    let consent = json!({"anonymous_id": "anon-1", "tracking": true, "marketing": false, "text_version": "v1"});
    let widget = format!("/v1/widget/state?customer_id=c-1&customer_token={token}");
    let calls: Vec<Case> = vec![
        ("POST", "/v1/products", "/v1/products".into(), &secret, Some(product.clone()), StatusCode::CREATED),
        ("POST", "/v1/products", "/v1/products".into(), &secret, Some(product), StatusCode::OK),
        ("GET", "/v1/products/{id}", "/v1/products/p-1".into(), &secret, None, StatusCode::OK),
        ("POST", "/v1/customers", "/v1/customers".into(), &secret, Some(customer), StatusCode::CREATED),
        ("POST", "/v1/orders", "/v1/orders".into(), &secret, Some(order), StatusCode::CREATED),
        ("GET", "/v1/orders/{id}", "/v1/orders/o-1".into(), &secret, None, StatusCode::OK),
        (
            "POST",
            "/v1/orders/{id}/refunds",
            "/v1/orders/o-1/refunds".into(),
            &secret,
            Some(json!({"id": "r-1", "amount": 500})),
            StatusCode::OK,
        ),
        ("GET", "/v1/customers/{external_id}", "/v1/customers/c-1".into(), &secret, None, StatusCode::OK),
        ("GET", "/v1/customers", "/v1/customers?q=ada&limit=1".into(), &secret, None, StatusCode::OK),
        (
            "GET",
            "/v1/customers/{external_id}/consent",
            "/v1/customers/c-1/consent".into(),
            &secret,
            None,
            StatusCode::OK,
        ),
        ("GET", "/v1/customers/{external_id}/merges", "/v1/customers/c-1/merges".into(), &secret, None, StatusCode::OK),
        ("GET", "/v1/members/{external_id}", "/v1/members/c-1".into(), &secret, None, StatusCode::OK),
        ("POST", "/v1/events", "/v1/events".into(), &public, Some(events), StatusCode::OK),
        ("POST", "/v1/identify", "/v1/identify".into(), &public, Some(identify), StatusCode::OK),
        ("POST", "/v1/consent", "/v1/consent".into(), &public, Some(consent), StatusCode::OK),
        ("GET", "/v1/widget/state", widget, &public, None, StatusCode::OK),
        ("GET", "/v1/recommendations", "/v1/recommendations?placement=home".into(), &public, None, StatusCode::OK),
        ("GET", "/v1/recommendations/report", "/v1/recommendations/report".into(), &secret, None, StatusCode::OK),
        ("GET", "/v1/segments", "/v1/segments".into(), &secret, None, StatusCode::OK),
        ("GET", "/v1/segments/{name}/members", "/v1/segments/vip/members".into(), &secret, None, StatusCode::OK),
        ("POST", "/v1/segments/recompute", "/v1/segments/recompute".into(), &secret, None, StatusCode::ACCEPTED),
        ("GET", "/v1/jobs", "/v1/jobs".into(), &secret, None, StatusCode::OK),
        ("GET", "/v1/shop", "/v1/shop".into(), &secret, None, StatusCode::OK),
        ("GET", "/v1/shop/tokens", "/v1/shop/tokens".into(), &secret, None, StatusCode::OK),
        ("GET", "/v1/contact-policy", "/v1/contact-policy".into(), &secret, None, StatusCode::OK),
        ("GET", "/v1/templates", "/v1/templates".into(), &secret, None, StatusCode::OK),
        ("GET", "/v1/plugins", "/v1/plugins".into(), &secret, None, StatusCode::OK),
        ("GET", "/v1/messages", "/v1/messages".into(), &secret, None, StatusCode::OK),
        ("GET", "/v1/journeys/report", "/v1/journeys/report".into(), &secret, None, StatusCode::OK),
        ("GET", "/v1/analytics/overview", "/v1/analytics/overview".into(), &secret, None, StatusCode::OK),
        ("GET", "/v1/analytics/cohorts", "/v1/analytics/cohorts".into(), &secret, None, StatusCode::OK),
        ("GET", "/v1/analytics/rfm", "/v1/analytics/rfm".into(), &secret, None, StatusCode::OK),
        (
            "GET",
            "/v1/analytics/rfm/cells/{r}/{f}/customers",
            "/v1/analytics/rfm/cells/5/1/customers".into(),
            &secret,
            None,
            StatusCode::OK,
        ),
        ("GET", "/v1/analytics/loyalty", "/v1/analytics/loyalty".into(), &secret, None, StatusCode::OK),
        (
            "GET",
            "/v1/analytics/segments/{segment}",
            "/v1/analytics/segments/vip?bucket=day".into(),
            &secret,
            None,
            StatusCode::OK,
        ),
        ("GET", "/v1/customers/{external_id}/export", "/v1/customers/c-1/export".into(), &secret, None, StatusCode::OK),
        ("GET", "/v1/privacy/requests", "/v1/privacy/requests".into(), &secret, None, StatusCode::OK),
        // Errors, in the one format.
        ("GET", "/v1/customers/{external_id}", "/v1/customers/nobody".into(), &secret, None, StatusCode::NOT_FOUND),
        ("GET", "/v1/shop", "/v1/shop".into(), &[], None, StatusCode::UNAUTHORIZED),
        ("GET", "/v1/shop", "/v1/shop".into(), &[("authorization", "Bearer pk_x")], None, StatusCode::FORBIDDEN),
        ("GET", "/v1/customers", "/v1/customers?limit=0".into(), &secret, None, StatusCode::UNPROCESSABLE_ENTITY),
        (
            "POST",
            "/v1/customers",
            "/v1/customers".into(),
            &secret,
            Some(json!({"nope": 1})),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            "GET",
            "/v1/recommendations",
            "/v1/recommendations?placement=home".into(),
            &[],
            None,
            StatusCode::UNAUTHORIZED,
        ),
        ("POST", "/v1/segments/recompute", "/v1/segments/recompute".into(), &secret, None, StatusCode::CONFLICT),
        ("DELETE", "/v1/customers/{external_id}", "/v1/customers/c-1".into(), &secret, None, StatusCode::OK),
    ];
    for (method, path, uri, headers, body, expected) in calls {
        let (status, _, answer) = send(&db, method, &uri, headers, body.as_ref()).await;
        assert_eq!(status, expected, "{method} {uri}: {answer}");
        assert_conforms(&doc, method, path, status, &answer);
    }
}
