//! The HTTP API driven in-process on both database backends.

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use http_body_util::BodyExt;
use patron::auth::customer_token;
use patron::store::shops::Shop;
use patron::{AppState, Db, app, both_backends, testing};
use serde_json::{Value, json};
use tower::ServiceExt;

const ORIGIN: &str = "http://shop.test";

struct Call<'a> {
    method: &'a str,
    uri: String,
    headers: Vec<(&'static str, String)>,
    body: Vec<u8>,
}

impl<'a> Call<'a> {
    fn new(method: &'a str, uri: impl Into<String>) -> Self {
        Self { method, uri: uri.into(), headers: Vec::new(), body: Vec::new() }
    }
    fn json(mut self, body: &Value) -> Self {
        self.body = body.to_string().into_bytes();
        self.headers.push(("content-type", "application/json".into()));
        self
    }
    fn raw(mut self, body: impl Into<Vec<u8>>) -> Self {
        self.body = body.into();
        self
    }
    fn header(mut self, name: &'static str, value: impl Into<String>) -> Self {
        self.headers.push((name, value.into()));
        self
    }
    fn secret(self, secret: &str) -> Self {
        self.header("authorization", format!("Bearer {secret}"))
    }
    async fn send(self, db: &Db) -> (StatusCode, Value, axum::http::HeaderMap) {
        let mut request = Request::builder().method(self.method).uri(self.uri);
        for (name, value) in self.headers {
            request = request.header(name, value);
        }
        let response = app(AppState::new(db.clone()))
            .oneshot(request.body(Body::from(self.body)).expect("request"))
            .await
            .expect("infallible");
        let status = response.status();
        let headers = response.headers().clone();
        let bytes = response.into_body().collect().await.expect("body").to_bytes();
        let body = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes)
                .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()))
        };
        (status, body, headers)
    }
}

fn events_uri(shop: &Shop) -> String {
    format!("/v1/events?key={}", shop.publishable_key)
}

fn page_view(id: &str) -> Value {
    json!({"id": id, "kind": "page_view", "url": "http://shop.test/", "properties": {"title": "Home"}})
}

fn error_code(body: &Value) -> &str {
    body["error"]["code"].as_str().unwrap_or_default()
}

both_backends!(
    async fn a_batch_posted_twice_is_stored_once(db) {
        let (shop, _) = testing::shop(&db, "a").await;
        let batch = json!({"anonymous_id": "anon-1", "events": [page_view("e1"), page_view("e2"), page_view("e1")]});
        let (status, body, _) = Call::new("POST", events_uri(&shop)).json(&batch).send(&db).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(body["accepted"], 2);
        assert_eq!(body["duplicates"], 1, "the repeated id inside the batch is a duplicate");
        let (status, body, _) = Call::new("POST", events_uri(&shop)).json(&batch).send(&db).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(body["accepted"], 0);
        assert_eq!(body["duplicates"], 3);
        assert_eq!(db.count_events(shop.id).await.expect("count"), 2);
    }
);

both_backends!(
    async fn a_bad_event_is_rejected_while_good_ones_are_kept(db) {
        let (shop, _) = testing::shop(&db, "a").await;
        let batch = json!({"anonymous_id": "anon-1", "events": [
            page_view("good-1"),
            {"id": "bad-kind", "kind": "wishlist_add"},
            {"id": "bad-type", "kind": "search", "properties": "not an object"},
            {"kind": "page_view"},
            {"id": "custom", "kind": "custom:wishlist_add", "properties": {"product_id": "p1"}},
        ]});
        // sendBeacon posts text/plain; the body is still JSON.
        let (status, body, _) = Call::new("POST", events_uri(&shop))
            .raw(batch.to_string())
            .header("content-type", "text/plain;charset=UTF-8")
            .send(&db)
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let results = body["results"].as_array().expect("results");
        let statuses: Vec<&str> = results.iter().map(|r| r["status"].as_str().unwrap_or_default()).collect();
        assert_eq!(statuses, ["accepted", "rejected", "rejected", "rejected", "accepted"]);
        assert!(results[1]["reason"].as_str().unwrap_or_default().contains("unknown kind `wishlist_add`"));
        assert!(results[3]["reason"].as_str().unwrap_or_default().contains("missing field `id`"));
        let stored = db.recent_events(shop.id, 10).await.expect("events");
        let mut ids: Vec<&str> = stored.iter().map(|e| e.event_id.as_str()).collect();
        ids.sort_unstable();
        assert_eq!(ids, ["custom", "good-1"]);
        assert_eq!(stored.iter().find(|e| e.event_id == "custom").map(|e| e.properties["product_id"].clone()), Some(json!("p1")));
    }
);

both_backends!(
    async fn bad_requests_get_clear_errors_and_write_nothing(db) {
        let (shop, keys) = testing::shop(&db, "a").await;
        let uri = events_uri(&shop);
        let cases: Vec<(Call<'_>, StatusCode, &str)> = vec![
            (Call::new("POST", &uri).raw("{not json"), StatusCode::BAD_REQUEST, "malformed_json"),
            (Call::new("POST", &uri).json(&json!({"anonymous_id": 5, "events": []})), StatusCode::UNPROCESSABLE_ENTITY, "invalid_field"),
            (
                Call::new("POST", &uri).json(&json!({"anonymous_id": "a", "events": (0..101).map(|i| page_view(&format!("e{i}"))).collect::<Vec<_>>()})),
                StatusCode::BAD_REQUEST,
                "too_many_events",
            ),
            (Call::new("POST", &uri).raw(vec![b' '; 600 * 1024]), StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large"),
            (Call::new("POST", "/v1/events").json(&json!({"anonymous_id": "a", "events": [page_view("x")]})), StatusCode::UNAUTHORIZED, "missing_key"),
            (Call::new("POST", "/v1/events?key=pk_nope").json(&json!({"anonymous_id": "a", "events": [page_view("x")]})), StatusCode::UNAUTHORIZED, "invalid_key"),
            (
                Call::new("POST", format!("/v1/events?key={}", keys.secret)).json(&json!({"anonymous_id": "a", "events": [page_view("x")]})),
                StatusCode::FORBIDDEN,
                "secret_key_in_browser",
            ),
            (
                Call::new("POST", &uri).header("origin", "http://evil.test").json(&json!({"anonymous_id": "a", "events": [page_view("x")]})),
                StatusCode::FORBIDDEN,
                "origin_not_allowed",
            ),
            (
                Call::new("POST", &uri).json(&json!({"anonymous_id": "a", "customer_id": "c1", "customer_token": "00", "events": [page_view("x")]})),
                StatusCode::FORBIDDEN,
                "invalid_customer_token",
            ),
            (Call::new("POST", "/v1/orders").header("authorization", format!("Bearer {}", shop.publishable_key)).json(&json!({})), StatusCode::FORBIDDEN, "secret_key_required"),
            (Call::new("POST", "/v1/orders").secret("sk_wrong").json(&json!({})), StatusCode::UNAUTHORIZED, "invalid_key"),
            (Call::new("POST", "/v1/orders").json(&json!({})), StatusCode::UNAUTHORIZED, "missing_key"),
            (
                Call::new("POST", "/v1/orders").secret(&keys.secret).json(&json!({"id": "o1", "lines": [{"title": "x", "quantity": 0, "unit_price": 100}]})),
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_field",
            ),
            (
                Call::new("POST", "/v1/customers").secret(&keys.secret).json(&json!({"external_id": "c1", "email": "not-an-email"})),
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_field",
            ),
        ];
        for (call, status, code) in cases {
            let what = format!("{} {}", call.method, call.uri.chars().take(60).collect::<String>());
            let (got, body, _) = call.send(&db).await;
            assert_eq!(got, status, "{what}: {body}");
            assert_eq!(error_code(&body), code, "{what}: {body}");
            assert!(body["error"]["message"].as_str().is_some_and(|m| !m.is_empty()), "{what}: {body}");
        }
        assert_eq!(db.count_events(shop.id).await.expect("count"), 0);
        assert_eq!(db.count_customers(shop.id).await.expect("count"), 0);
        assert!(db.order(shop.id, "o1").await.expect("read").is_none());
    }
);

both_backends!(
    async fn one_shops_keys_never_reach_another_shops_data(db) {
        let (shop_a, keys_a) = testing::shop(&db, "a").await;
        let (shop_b, keys_b) = testing::shop(&db, "b").await;
        let customer = json!({"external_id": "shared-id", "email": "b@example.com"});
        let (status, _, _) = Call::new("POST", "/v1/customers").secret(&keys_b.secret).json(&customer).send(&db).await;
        assert_eq!(status, StatusCode::CREATED);
        let (status, body, _) = Call::new("GET", "/v1/customers/shared-id").secret(&keys_a.secret).send(&db).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
        let (status, body, _) = Call::new("GET", "/v1/customers/shared-id").secret(&keys_b.secret).send(&db).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(body["email"], "b@example.com");

        // A's customer token for B's customer id does not identify on B.
        let token_from_a = customer_token(&shop_a.secret_hash, "shared-id").expect("token");
        let identify = json!({"anonymous_id": "anon", "customer_id": "shared-id", "customer_token": token_from_a});
        let (status, _, _) = Call::new("POST", format!("/v1/identify?key={}", shop_b.publishable_key)).json(&identify).send(&db).await;
        assert_eq!(status, StatusCode::FORBIDDEN);

        let batch = json!({"anonymous_id": "anon", "events": [page_view("e1")]});
        Call::new("POST", events_uri(&shop_a)).json(&batch).send(&db).await;
        assert_eq!(db.count_events(shop_a.id).await.expect("count"), 1);
        assert_eq!(db.count_events(shop_b.id).await.expect("count"), 0);
        // The same client event id in another shop is another event.
        Call::new("POST", events_uri(&shop_b)).json(&batch).send(&db).await;
        assert_eq!(db.count_events(shop_b.id).await.expect("count"), 1);
    }
);

both_backends!(
    async fn identify_needs_a_token_the_store_signed(db) {
        let (shop, _) = testing::shop(&db, "a").await;
        let batch = json!({"anonymous_id": "browser-1", "events": [page_view("before-1"), page_view("before-2")]});
        Call::new("POST", events_uri(&shop)).json(&batch).send(&db).await;
        let identify_uri = format!("/v1/identify?key={}", shop.publishable_key);

        let forged = customer_token(&"00".repeat(32), "cust-7").expect("token");
        let (status, body, _) = Call::new("POST", &identify_uri)
            .json(&json!({"anonymous_id": "browser-1", "customer_id": "cust-7", "customer_token": forged}))
            .send(&db)
            .await;
        assert_eq!(status, StatusCode::FORBIDDEN);
        assert_eq!(error_code(&body), "invalid_customer_token");
        assert_eq!(db.customer_for_anonymous(shop.id, "browser-1").await.expect("lookup"), None);
        assert!(db.customer_by_external_id(shop.id, "cust-7").await.expect("lookup").is_none());

        let token = customer_token(&shop.secret_hash, "cust-7").expect("token");
        let (status, body, _) = Call::new("POST", &identify_uri)
            .header("origin", ORIGIN)
            .json(&json!({"anonymous_id": "browser-1", "customer_id": "cust-7", "customer_token": token}))
            .send(&db)
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(body["events_attributed"], 2, "the anonymous history joins the customer");
        let customer = db.customer_by_external_id(shop.id, "cust-7").await.expect("lookup").expect("created");
        assert_eq!(db.customer_for_anonymous(shop.id, "browser-1").await.expect("lookup"), Some(customer.id));
        // Later anonymous events from that browser are the customer's.
        Call::new("POST", events_uri(&shop)).json(&json!({"anonymous_id": "browser-1", "events": [page_view("after")]})).send(&db).await;
        let events = db.recent_events(shop.id, 10).await.expect("events");
        assert!(events.iter().all(|e| e.customer_id == Some(customer.id)), "{events:?}");
    }
);

both_backends!(
    async fn an_email_only_customer_merges_into_the_known_one(db) {
        let (shop, keys) = testing::shop(&db, "a").await;
        let order = json!({"id": "1001", "customer": {"email": "Ann@Example.com"}, "lines": [{"title": "Mug", "quantity": 2, "unit_price": 1500}]});
        let (status, body, _) = Call::new("POST", "/v1/orders").secret(&keys.secret).json(&order).send(&db).await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        let customer = json!({"external_id": "ann", "email": "ann@example.com", "first_name": "Ann"});
        let (status, body, _) = Call::new("POST", "/v1/customers").secret(&keys.secret).json(&customer).send(&db).await;
        assert_eq!(status, StatusCode::OK, "the email-only record is adopted, not duplicated: {body}");
        assert_eq!(body["stats"]["order_count"], 1);
        assert_eq!(body["stats"]["total_spent"], 3000);
        assert_eq!(db.count_customers(shop.id).await.expect("count"), 1);
    }
);

both_backends!(
    async fn orders_are_idempotent_and_keep_stats_current(db) {
        let (shop, keys) = testing::shop(&db, "a").await;
        let first = json!({
            "id": "1001", "customer": {"external_id": "c1", "email": "c1@example.com"},
            "placed_at": "2024-03-01T10:00:00Z", "shipping": 500, "discount": 1000, "coupon_codes": ["welcome10"],
            "lines": [{"product_id": "p1", "title": "Tea", "quantity": 2, "unit_price": 2000}, {"product_id": "p2", "title": "Pot", "quantity": 1, "unit_price": 4500}]
        });
        let (status, body, _) = Call::new("POST", "/v1/orders").secret(&keys.secret).json(&first).send(&db).await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        assert_eq!(body["total"], 8500 - 1000 + 500);
        assert_eq!(body["coupon_codes"], json!(["WELCOME10"]));
        let (status, body, _) = Call::new("POST", "/v1/orders").secret(&keys.secret).json(&first).send(&db).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(body["result"], "unchanged");
        let second = json!({"id": "1002", "customer": {"external_id": "c1"}, "placed_at": "2024-04-01T10:00:00Z", "lines": [{"title": "Tea", "quantity": 1, "unit_price": 2500}]});
        Call::new("POST", "/v1/orders").secret(&keys.secret).json(&second).send(&db).await;

        let stats = |c: patron::store::customers::Customer| c.stats;
        let customer = db.customer_by_external_id(shop.id, "c1").await.expect("read").expect("exists");
        let s = stats(customer);
        assert_eq!((s.order_count, s.total_spent, s.average_order_value), (2, 8000 + 2500, 5250));
        assert_eq!(s.first_order_at, Some(1_709_287_200_000));
        assert_eq!(s.last_order_at, Some(1_711_965_600_000));

        let refund = json!({"id": "r1", "amount": 500});
        let (status, body, _) = Call::new("POST", "/v1/orders/1002/refunds").secret(&keys.secret).json(&refund).send(&db).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let (_, body, _) = Call::new("POST", "/v1/orders/1002/refunds").secret(&keys.secret).json(&refund).send(&db).await;
        assert_eq!(body["result"], "unchanged", "a refund delivered twice counts once");
        let s = stats(db.customer_by_external_id(shop.id, "c1").await.expect("read").expect("exists"));
        assert_eq!((s.order_count, s.total_spent), (2, 8000 + 2000));

        let (_, body, _) = Call::new("POST", "/v1/orders/1002/refunds").secret(&keys.secret).json(&json!({"id": "r2"})).send(&db).await;
        assert_eq!(body["status"], "refunded");
        let (status, body, _) = Call::new("POST", "/v1/orders/1002/refunds").secret(&keys.secret).json(&json!({"id": "r3", "amount": 1})).send(&db).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "nothing left to refund: {body}");
        let s = stats(db.customer_by_external_id(shop.id, "c1").await.expect("read").expect("exists"));
        assert_eq!((s.order_count, s.total_spent, s.last_order_at), (1, 8000, Some(1_709_287_200_000)));

        let cancelled = json!({"id": "1001", "status": "cancelled", "customer": {"external_id": "c1"}, "placed_at": "2024-03-01T10:00:00Z", "shipping": 500, "discount": 1000, "lines": first["lines"].clone()});
        let (_, body, _) = Call::new("POST", "/v1/orders").secret(&keys.secret).json(&cancelled).send(&db).await;
        assert_eq!(body["result"], "updated");
        let s = stats(db.customer_by_external_id(shop.id, "c1").await.expect("read").expect("exists"));
        assert_eq!((s.order_count, s.total_spent, s.first_order_at), (0, 0, None));
    }
);

both_backends!(
    async fn storefront_cors_follows_the_shops_origins(db) {
        let (shop, _) = testing::shop(&db, "a").await;
        let (status, _, headers) = Call::new("OPTIONS", events_uri(&shop))
            .header("origin", ORIGIN)
            .header("access-control-request-method", "POST")
            .send(&db)
            .await;
        assert_eq!(status, StatusCode::NO_CONTENT);
        assert_eq!(headers.get(header::ACCESS_CONTROL_ALLOW_ORIGIN).and_then(|v| v.to_str().ok()), Some(ORIGIN));
        let (status, _, headers) = Call::new("OPTIONS", events_uri(&shop)).header("origin", "http://evil.test").send(&db).await;
        assert_eq!(status, StatusCode::FORBIDDEN);
        assert!(headers.get(header::ACCESS_CONTROL_ALLOW_ORIGIN).is_none());
    }
);

both_backends!(
    async fn health_readiness_and_metrics_answer(db) {
        let (shop, _) = testing::shop(&db, "a").await;
        let state = AppState::new(db.clone());
        let router = app(state.clone());
        let batch = json!({"anonymous_id": "a", "events": [page_view("e1")]}).to_string();
        let request = Request::post(events_uri(&shop)).body(Body::from(batch)).expect("request");
        assert_eq!(router.clone().oneshot(request).await.expect("response").status(), StatusCode::OK);
        for path in ["/health", "/ready"] {
            let response = router.clone().oneshot(Request::get(path).body(Body::empty()).expect("request")).await.expect("response");
            assert_eq!(response.status(), StatusCode::OK, "{path}");
        }
        // `/metrics` answers callers on this machine when no token is configured.
        let mut request = Request::get("/metrics").body(Body::empty()).expect("request");
        request.extensions_mut().insert(axum::extract::ConnectInfo(std::net::SocketAddr::from(([127, 0, 0, 1], 9))));
        let response = router.oneshot(request).await.expect("response");
        let text = String::from_utf8(response.into_body().collect().await.expect("body").to_bytes().to_vec()).expect("utf8");
        assert!(text.contains("patron_events_total{outcome=\"accepted\"} 1"), "{text}");
        assert!(text.contains("route=\"/v1/events\",method=\"POST\",status=\"200\""), "{text}");
    }
);
