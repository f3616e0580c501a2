//! Loyalty end to end: the first-party loyalty plugin installed through the API, orders
//! earning points once, refunds reversing them, the member panel's state, redemptions.

use axum::body::Body;
use axum::http::{Request, StatusCode};
use base64::Engine as _;
use http_body_util::BodyExt;
use patron::auth::{NewShopKeys, customer_token};
use patron::store::shops::Shop;
use patron::{AppState, app, both_backends, testing};
use serde_json::{Value, json};
use tower::ServiceExt;

async fn call(state: &AppState, method: &str, uri: &str, secret: Option<&str>, body: Option<Value>) -> (StatusCode, Value) {
    let mut request = Request::builder().method(method).uri(uri);
    if let Some(secret) = secret {
        request = request.header("authorization", format!("Bearer {secret}"));
    }
    let request = request.body(body.map_or_else(Body::empty, |b| Body::from(b.to_string()))).expect("request");
    let response = app(state.clone()).oneshot(request).await.expect("infallible");
    let status = response.status();
    let bytes = response.into_body().collect().await.expect("body").to_bytes();
    (status, serde_json::from_slice(&bytes).unwrap_or(Value::Null))
}

async fn install_loyalty(state: &AppState, keys: &NewShopKeys) {
    let manifest: Value = toml::from_str::<toml::Value>(
        &std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../plugins/loyalty/patron.toml")).expect("manifest"),
    )
    .map(|m| serde_json::to_value(m).expect("json"))
    .expect("toml");
    let wasm = patron_runtime::testing::plugin_wasm("loyalty").expect("loyalty plugin builds");
    let body = json!({
        "manifest": manifest,
        "wasm_base64": base64::engine::general_purpose::STANDARD.encode(wasm),
        "grants": manifest["imports"],
        "config": {"currency": "USD", "points-expiry-days": 365},
        "enable": true,
    });
    let (status, body) = call(state, "POST", "/v1/plugins", Some(&keys.secret), Some(body)).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
}

fn order(id: &str, customer: &str, amount: i64) -> Value {
    json!({"id": id, "customer": {"external_id": customer, "first_name": "Ada"}, "lines": [{"product_id": "p1", "title": "Tea", "quantity": 1, "unit_price": amount}]})
}

async fn widget_state(state: &AppState, shop: &Shop, customer: &str, token: &str) -> Value {
    let uri = format!("/v1/widget/state?key={}&customer_id={customer}&customer_token={token}", shop.publishable_key);
    let (status, body) = call(state, "GET", &uri, None, None).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body
}

both_backends!(
    async fn orders_earn_once_refunds_reverse_and_points_redeem(db) {
        let (shop, keys) = testing::shop(&db, "a").await;
        let state = AppState::new(db.clone());
        install_loyalty(&state, &keys).await;

        let (status, body) = call(&state, "POST", "/v1/orders", Some(&keys.secret), Some(order("1001", "ada", 60_000))).await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        let ada = db.customer_by_external_id(shop.id, "ada").await.expect("read").expect("customer").id;
        let earned = db.points_balance(shop.id, ada).await.expect("balance");
        assert_eq!(earned, 750, "a first order earns at the tier it qualifies for: gold, 1.25 points per 1.00");
        assert_eq!(db.tier(shop.id, ada).await.expect("tier").as_deref(), Some("gold"), "60.00 in a year passes gold's 50.00");

        let (status, body) = call(&state, "POST", "/v1/orders", Some(&keys.secret), Some(order("1001", "ada", 60_000))).await;
        assert_eq!((status, body["result"].as_str()), (StatusCode::OK, Some("unchanged")));
        assert_eq!(db.points_balance(shop.id, ada).await.expect("balance"), earned, "the same order earns once");

        call(&state, "POST", "/v1/orders", Some(&keys.secret), Some(order("1002", "ada", 10_000))).await;
        let after_second = db.points_balance(shop.id, ada).await.expect("balance");
        assert_eq!(after_second - earned, 125, "gold earns 1.25 points per 1.00");

        let (status, body) = call(&state, "POST", "/v1/orders/1002/refunds", Some(&keys.secret), Some(json!({"id": "r1"}))).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(body["loyalty"]["points_reversed"], 125, "a refund reverses exactly what the order earned");
        assert_eq!(db.points_balance(shop.id, ada).await.expect("balance"), earned);
        assert_eq!(db.ledger_sum(shop.id, ada).await.expect("sum"), earned);

        let token = customer_token(&shop.secret_hash, "ada").expect("token");
        let panel = widget_state(&state, &shop, "ada", &token).await;
        let member = &panel["member"];
        assert_eq!(member["points"]["balance"], earned);
        assert_eq!(member["tier"]["name"], "gold");
        assert_eq!(member["tier"]["next"], "platinum");
        assert_eq!(member["tier"]["remaining_to_next"], 150_000 - 60_000, "platinum needs 1500.00 in a year");
        let install = db.plugin_install(shop.id, "loyalty").await.expect("read").expect("installed");
        assert_eq!((install.failures, install.last_error), (0, None), "no call failed and no action was refused");
        let rewards = member["rewards"].as_array().expect("rewards").clone();
        assert!(!rewards.is_empty());

        let forged = widget_state(&state, &shop, "ada", &"0".repeat(64)).await;
        assert_eq!(forged["member"], Value::Null, "a token that does not verify shows nothing of the member");

        let redeem = |reward: &str, token: &str| json!({"customer_id": "ada", "customer_token": token, "reward_id": reward});
        let uri = format!("/v1/rewards/redeem?key={}", shop.publishable_key);
        let (status, body) = call(&state, "POST", &uri, None, Some(redeem("rw-1000", &token))).await;
        assert!(status == StatusCode::CONFLICT || status == StatusCode::NOT_FOUND, "{status} {body}");
        let affordable = rewards.iter().find(|r| r["points"].as_i64().is_some_and(|p| p <= earned)).expect("an affordable reward");
        let reward_id = affordable["id"].as_str().expect("id");
        let cost = affordable["points"].as_i64().expect("points");
        let (status, body) = call(&state, "POST", &uri, None, Some(redeem(reward_id, &"1".repeat(64)))).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
        let (status, body) = call(&state, "POST", &uri, None, Some(redeem(reward_id, &token))).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(body["member"]["points"]["balance"], earned - cost);
        assert!(body["coupon"]["code"].as_str().is_some_and(|c| c.starts_with("PTR-")));
        let expensive = rewards.iter().max_by_key(|r| r["points"].as_i64()).expect("reward");
        if expensive["points"].as_i64().unwrap_or(0) > earned - cost {
            let (status, body) = call(&state, "POST", &uri, None, Some(redeem(expensive["id"].as_str().expect("id"), &token))).await;
            assert_eq!(status, StatusCode::CONFLICT, "{body}");
            assert_eq!(body["error"]["code"], "insufficient_points");
        }
        assert_eq!(db.points_balance(shop.id, ada).await.expect("balance"), earned - cost);
    }
);

both_backends!(
    async fn an_order_carrying_a_coupon_redeems_it_once(db) {
        use patron::store::coupons::{CouponSpec, Discount};
        let (shop, keys) = testing::shop(&db, "a").await;
        let state = AppState::new(db.clone());
        call(&state, "POST", "/v1/customers", Some(&keys.secret), Some(json!({"external_id": "ada"}))).await;
        call(&state, "POST", "/v1/customers", Some(&keys.secret), Some(json!({"external_id": "bob"}))).await;
        let ada = db.customer_by_external_id(shop.id, "ada").await.expect("read").expect("customer").id;
        let spec = CouponSpec {
            discount: Discount::Fixed(500),
            currency: "USD".into(),
            minimum_spend: 2_000,
            expires_at: None,
            customer_id: Some(ada),
            source: "test".into(),
        };
        let coupon = db.issue_coupon(shop.id, &spec).await.expect("issue");
        let with_code = |id: &str, customer: &str, amount: i64| {
            let mut order = order(id, customer, amount);
            order["coupon_codes"] = json!([coupon.code.to_lowercase()]);
            order
        };

        let (_, body) = call(&state, "POST", "/v1/orders", Some(&keys.secret), Some(with_code("b1", "bob", 5_000))).await;
        assert_eq!(body["loyalty"]["coupon_refusals"][0]["reason"], "issued to another customer", "{body}");
        let (_, body) = call(&state, "POST", "/v1/orders", Some(&keys.secret), Some(with_code("a1", "ada", 1_000))).await;
        assert_eq!(body["loyalty"]["coupon_refusals"][0]["reason"], "order is below the minimum spend", "{body}");
        assert_eq!(db.active_coupons(shop.id, ada).await.expect("coupons").len(), 1);

        let (_, body) = call(&state, "POST", "/v1/orders", Some(&keys.secret), Some(with_code("a2", "ada", 3_000))).await;
        assert_eq!(body["loyalty"]["coupon_refusals"], json!([]), "{body}");
        assert!(db.active_coupons(shop.id, ada).await.expect("coupons").is_empty(), "the coupon is used");
        let (_, body) = call(&state, "POST", "/v1/orders", Some(&keys.secret), Some(with_code("a3", "ada", 3_000))).await;
        assert_eq!(body["loyalty"]["coupon_refusals"][0]["reason"], "already used on order a2", "{body}");
    }
);
