//! Privacy on both backends: consent kept on the server and enforced on ingest (shops
//! that require it, GPC/DNT by default), export of everything about one person, erasure
//! that leaves no way back to them while revenue totals stay, and event retention.

use axum::http::StatusCode;
use patron::auth::NewShopKeys;
use patron::store::Db;
use patron::store::consent::Subject;
use patron::store::coupons::{CouponSpec, Discount};
use patron::store::events::NewEvent;
use patron::store::outbox::OutboxMessage;
use patron::store::shops::{NewShop, Shop};
use patron::{AppState, app, both_backends, testing};
use serde_json::{Value, json};
use tower::ServiceExt;

async fn call(
    state: &AppState,
    method: &str,
    uri: &str,
    secret: Option<&str>,
    body: Option<Value>,
) -> (StatusCode, Value) {
    testing::call(&app(state.clone()), method, uri, secret, body).await
}

/// A browser's `POST /v1/events`, with extra request headers.
async fn post_events(state: &AppState, shop: &Shop, headers: &[(&str, &str)], body: Value) -> (StatusCode, Value) {
    let mut request = axum::http::Request::builder()
        .method("POST")
        .uri(format!("/v1/events?key={}", shop.publishable_key))
        .header("content-type", "application/json");
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let request = request.body(axum::body::Body::from(body.to_string())).expect("request");
    let response = app(state.clone()).oneshot(request).await.expect("infallible");
    let status = response.status();
    let bytes = axum::body::to_bytes(response.into_body(), usize::MAX).await.expect("body");
    (status, serde_json::from_slice(&bytes).unwrap_or(Value::Null))
}

fn batch(anonymous_id: &str, event_id: &str) -> Value {
    json!({"anonymous_id": anonymous_id, "events": [{"id": event_id, "kind": "page_view", "url": "http://shop.test/"}]})
}

async fn consent(state: &AppState, shop: &Shop, anonymous_id: &str, tracking: bool) -> Value {
    let uri = format!("/v1/consent?key={}", shop.publishable_key);
    let body =
        json!({"anonymous_id": anonymous_id, "tracking": tracking, "marketing": false, "text_version": "2026-11"});
    let (status, body) = call(state, "POST", &uri, None, Some(body)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body
}

async fn shop_with(db: &Db, consent_required: bool) -> (Shop, NewShopKeys) {
    let mut new = NewShop::named("a");
    new.allowed_origins = vec!["http://shop.test".into()];
    new.consent_required = consent_required;
    db.create_shop(&new).await.expect("shop")
}

both_backends!(
    async fn events_without_consent_are_refused_for_a_consent_requiring_shop(db) {
        let (shop, _) = shop_with(&db, true).await;
        let state = AppState::new(db.clone());
        let (status, body) = post_events(&state, &shop, &[], batch("anon-1", "e1")).await;
        assert_eq!((status, body["error"]["code"].as_str()), (StatusCode::FORBIDDEN, Some("tracking_consent_required")), "{body}");
        assert_eq!(db.count_events(shop.id).await.expect("count"), 0, "nothing of a refused batch is stored");
        consent(&state, &shop, "anon-1", false).await;
        let (status, _) = post_events(&state, &shop, &[], batch("anon-1", "e2")).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "a refusal is a refusal");
        let answer = consent(&state, &shop, "anon-1", true).await;
        assert_eq!((answer["anonymous"]["tracking"].as_bool(), answer["anonymous"]["text_version"].as_str()), (Some(true), Some("2026-11")));
        let (status, body) = post_events(&state, &shop, &[], batch("anon-1", "e3")).await;
        assert_eq!((status, body["accepted"].as_u64()), (StatusCode::OK, Some(1)), "{body}");
        let (status, _) = post_events(&state, &shop, &[], batch("anon-2", "e4")).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "consent is per browser");
        assert_eq!(db.count_events(shop.id).await.expect("count"), 1);
        // The log keeps every statement.
        let log = db.consent_state(shop.id, &Subject::Anonymous("anon-1".into())).await.expect("state");
        assert_eq!((log.tracking, log.source.as_deref()), (Some(true), Some("widget")));
    }
);

both_backends!(
    async fn gpc_and_dnt_browsers_are_not_tracked_by_default_until_they_opt_in(db) {
        let (shop, _) = shop_with(&db, false).await;
        assert!(shop.honor_dnt, "GPC and DNT are honoured by default");
        let state = AppState::new(db.clone());
        let (status, body) = post_events(&state, &shop, &[("sec-gpc", "1")], batch("anon-g", "g1")).await;
        assert_eq!((status, body["error"]["code"].as_str()), (StatusCode::FORBIDDEN, Some("privacy_signal")), "{body}");
        let (status, _) = post_events(&state, &shop, &[("dnt", "1")], batch("anon-g", "g2")).await;
        assert_eq!(status, StatusCode::FORBIDDEN);
        assert_eq!(db.count_events(shop.id).await.expect("count"), 0);
        let (status, _) = post_events(&state, &shop, &[("dnt", "0")], batch("anon-h", "h1")).await;
        assert_eq!(status, StatusCode::OK, "no signal, no consent needed on this shop");
        consent(&state, &shop, "anon-g", true).await;
        let (status, body) = post_events(&state, &shop, &[("sec-gpc", "1")], batch("anon-g", "g3")).await;
        assert_eq!((status, body["accepted"].as_u64()), (StatusCode::OK, Some(1)), "an explicit opt-in wins: {body}");
        // A shop that explicitly ignores the signals tracks them.
        let mut new = NewShop::named("b");
        new.honor_dnt = false;
        let (ignoring, _) = db.create_shop(&new).await.expect("shop");
        let (status, _) = post_events(&state, &ignoring, &[("sec-gpc", "1")], batch("anon-x", "x1")).await;
        assert_eq!(status, StatusCode::OK);
    }
);

/// A customer with a row of every kind: identities (email, phone, browser), events,
/// orders and a refund, ledger, coupon, tag, segment, consent, message, merge.
async fn full_customer(db: &Db, state: &AppState, shop: &Shop, keys: &NewShopKeys) -> i64 {
    let order = json!({
        "id": "o1",
        "customer": {"external_id": "eve", "email": "eve@example.com", "phone": "+1 555 010 9999", "first_name": "Eve"},
        "lines": [{"product_id": "p1", "title": "Tea", "quantity": 2, "unit_price": 2_500}],
    });
    let (status, body) = call(state, "POST", "/v1/orders", Some(&keys.secret), Some(order)).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let (status, body) = call(
        state,
        "POST",
        "/v1/orders",
        Some(&keys.secret),
        Some(json!({
            "id": "o2", "customer": {"external_id": "eve-old", "first_name": "Eve"},
            "lines": [{"product_id": "p2", "title": "Cup", "quantity": 1, "unit_price": 1_000}],
        })),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    // A predictor's figures for the record about to be merged away follow it.
    let eve_old = db.customer_by_external_id(shop.id, "eve-old").await.expect("read").expect("eve-old").id;
    let prediction = patron::store::predictions::CustomerPrediction {
        customer_id: eve_old,
        plugin: "clv".into(),
        predicted_at: 1,
        p_alive: 0.5,
        expected_purchases_30d: 0.1,
        expected_purchases_90d: 0.3,
        expected_purchases_365d: 1.0,
        expected_order_value: 1_000,
        clv: 900,
    };
    db.save_predictions(shop.id, &[prediction]).await.expect("prediction");
    // A plugin's kv entry keyed to that record, by the SDK's convention, and one that only
    // looks alike.
    let run = br#"{"entered_at": 1, "active": true}"#;
    db.plugin_kv_set(shop.id, "journeys", &format!("welcome:{eve_old}"), run).await.expect("kv");
    db.plugin_kv_set(shop.id, "journeys", &format!("welcome:{eve_old}0"), b"other").await.expect("kv");
    let (status, body) =
        call(state, "POST", "/v1/customers/eve/merge", Some(&keys.secret), Some(json!({"other": "eve-old"}))).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, body) =
        call(state, "POST", "/v1/orders/o1/refunds", Some(&keys.secret), Some(json!({"id": "r1", "amount": 500})))
            .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let eve = db.customer_by_external_id(shop.id, "eve").await.expect("read").expect("eve").id;
    db.identify(shop.id, "anon-eve", eve).await.expect("identify");
    let event = NewEvent {
        event_id: "ev1".into(),
        kind: "page_view".into(),
        occurred_at: patron::store::now_ms(),
        anonymous_id: Some("anon-eve".into()),
        customer_id: Some(eve),
        url: Some("http://shop.test/".into()),
        properties: "{}".into(),
    };
    db.insert_events(shop.id, &[event]).await.expect("event");
    let entry = patron::store::points::Entry {
        customer_id: eve,
        delta: 40,
        kind: patron::store::points::EntryKind::Earn,
        reason: "order",
        order_id: Some("o1"),
        source: "test",
        idempotency_key: "earn-o1".into(),
        expires_at: None,
    };
    db.append_points(shop.id, &entry).await.expect("points");
    let spec = CouponSpec {
        discount: Discount::Fixed(500),
        currency: "USD".into(),
        minimum_spend: 0,
        expires_at: None,
        customer_id: Some(eve),
        source: "test".into(),
    };
    db.issue_coupon(shop.id, &spec).await.expect("coupon");
    sqlx::query(
        "INSERT INTO customer_tags (shop_id, customer_id, tag, source, added_at) VALUES ($1, $2, 'vip', 'test', 1)",
    )
    .bind(shop.id)
    .bind(eve)
    .execute(db.pool())
    .await
    .expect("tag");
    db.set_segments(shop.id, eve, "seg", &["loyal".to_owned()].into_iter().collect()).await.expect("segment");
    let (status, body) = call(
        state,
        "PUT",
        "/v1/customers/eve/consent",
        Some(&keys.secret),
        Some(json!({"marketing": true, "text_version": "v3"})),
    )
    .await;
    assert_eq!((status, body["marketing"].as_bool()), (StatusCode::OK, Some(true)), "{body}");
    consent(state, shop, "anon-eve", true).await;
    let message = OutboxMessage {
        customer_id: eve,
        channel: "email".into(),
        template: "welcome".into(),
        data: json!({"first_name": "Eve"}).to_string(),
        source: "test".into(),
    };
    db.queue_message(shop.id, &message).await.expect("message");
    eve
}

both_backends!(
    async fn export_returns_every_kind_of_row(db) {
        let (shop, keys) = testing::shop(&db, "a").await;
        let state = AppState::new(db.clone());
        let eve = full_customer(&db, &state, &shop, &keys).await;
        let (status, export) = call(&state, "GET", "/v1/customers/eve/export", Some(&keys.secret), None).await;
        assert_eq!(status, StatusCode::OK, "{export}");
        assert_eq!(export["profile"]["id"], eve.to_string());
        assert_eq!(export["profile"]["email"], "eve@example.com");
        for section in [
            "identities",
            "events",
            "orders",
            "order_lines",
            "refunds",
            "points_ledger",
            "points_balance",
            "coupons",
            "tags",
            "segments",
            "predictions",
            "consent_log",
            "messages",
            "merges",
        ] {
            let rows = export[section].as_array().unwrap_or_else(|| panic!("{section} missing: {export}"));
            assert!(!rows.is_empty(), "{section} is empty: {export}");
        }
        let kv = export["plugin_kv"].as_array().expect("plugin_kv");
        assert_eq!(kv.len(), 1, "only the entry keyed to eve: {kv:?}");
        assert_eq!(kv[0]["key"], format!("welcome:{eve}"), "renamed to the survivor by the merge");
        assert_eq!(kv[0]["value"]["active"], true);
        for section in ["tier", "tier_changes"] {
            assert!(export[section].is_array(), "{section} missing (eve has no tier): {export}");
        }
        let kinds: Vec<&str> = export["identities"].as_array().expect("ids").iter().filter_map(|i| i["kind"].as_str()).collect();
        assert_eq!(kinds, vec!["anonymous", "email", "phone"]);
        assert_eq!(export["orders"].as_array().map(Vec::len), Some(2), "the merged-away record's order too");
        let sources: Vec<&str> = export["consent_log"].as_array().expect("log").iter().filter_map(|r| r["source"].as_str()).collect();
        assert!(sources.contains(&"backend") && sources.contains(&"widget"), "{sources:?}");
        // The export is audited.
        let requests = db.privacy_requests(shop.id, 10).await.expect("audit");
        assert_eq!((requests.len(), requests[0].kind.as_str(), requests[0].customer_id), (1, "export", eve));
    }
);

both_backends!(
    async fn after_erasure_nothing_finds_the_person_and_revenue_is_unchanged(db) {
        let (shop, keys) = testing::shop(&db, "a").await;
        let state = AppState::new(db.clone());
        let eve = full_customer(&db, &state, &shop, &keys).await;
        let (status, before) = call(&state, "GET", "/v1/analytics/overview", Some(&keys.secret), None).await;
        assert_eq!(status, StatusCode::OK, "{before}");
        assert!(before["current"]["revenue"].as_i64().is_some_and(|r| r > 0), "{before}");

        let (status, erased) = call(&state, "DELETE", "/v1/customers/eve", Some(&keys.secret), None).await;
        assert_eq!(status, StatusCode::OK, "{erased}");
        assert_eq!(erased["orders_kept"], 2, "{erased}");
        assert!(erased["events"].as_u64().is_some_and(|n| n >= 1), "{erased}");
        assert_eq!(erased["predictions"], 1, "the merged-away record's, moved to eve: {erased}");
        assert_eq!(erased["kv_entries"], 1, "{erased}");
        let kv_left: Vec<String> = sqlx::query_scalar("SELECT key FROM plugin_kv WHERE shop_id = $1")
            .bind(shop.id)
            .fetch_all(db.pool())
            .await
            .expect("kv");
        assert_eq!(kv_left.len(), 1, "only the look-alike stays: {kv_left:?}");
        assert!(!kv_left[0].ends_with(&format!(":{eve}")), "{kv_left:?}");

        for (kind, value) in [("email", "eve@example.com"), ("phone", "+15550109999"), ("anonymous", "anon-eve")] {
            assert!(db.customer_by_contact(shop.id, kind, value).await.expect("read").is_none(), "{kind} still finds eve");
        }
        assert!(db.customer_for_anonymous(shop.id, "anon-eve").await.expect("read").is_none());
        for external in ["eve", "eve-old"] {
            assert!(db.customer_by_external_id(shop.id, external).await.expect("read").is_none(), "{external}");
            let (status, _) = call(&state, "GET", &format!("/v1/customers/{external}"), Some(&keys.secret), None).await;
            assert_eq!(status, StatusCode::NOT_FOUND);
        }
        let row = db.customer(shop.id, eve).await.expect("read").expect("pseudonymous row kept");
        assert_eq!((row.email, row.phone, row.first_name, row.external_id), (None, None, None, None));
        let leftovers: i64 = sqlx::query_scalar(
            "SELECT (SELECT COUNT(*) FROM events WHERE shop_id = $1 AND (customer_id = $2 OR anonymous_id = 'anon-eve')) \
             + (SELECT COUNT(*) FROM identities WHERE shop_id = $1 AND customer_id = $2) \
             + (SELECT COUNT(*) FROM consent_log WHERE shop_id = $1 AND subject IN ($3, 'anon-eve')) \
             + (SELECT COUNT(*) FROM customer_tags WHERE shop_id = $1 AND customer_id = $2) \
             + (SELECT COUNT(*) FROM customer_predictions WHERE shop_id = $1 AND customer_id = $2)",
        )
        .bind(shop.id)
        .bind(eve)
        .bind(eve.to_string())
        .fetch_one(db.pool())
        .await
        .expect("count");
        assert_eq!(leftovers, 0);
        // The browser comes back: its events are not linked to anyone.
        let (status, body) = post_events(&state, &shop, &[], batch("anon-eve", "after")).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert!(db.recent_events(shop.id, 1).await.expect("events")[0].customer_id.is_none());

        let (_, after) = call(&state, "GET", "/v1/analytics/overview", Some(&keys.secret), None).await;
        for figure in ["revenue", "orders", "aov", "points_liability"] {
            assert_eq!(after["current"][figure], before["current"][figure], "{figure} changed");
        }
        let requests = db.privacy_requests(shop.id, 10).await.expect("audit");
        assert_eq!((requests[0].kind.as_str(), requests[0].customer_id), ("erasure", eve));
        let (status, _) = call(&state, "GET", "/v1/customers/id:0/export", Some(&keys.secret), None).await;
        assert_eq!(status, StatusCode::NOT_FOUND);
    }
);

both_backends!(
    async fn retention_deletes_old_events_in_batches_and_counts_them(db) {
        let (shop, _) = testing::shop(&db, "a").await;
        let now = patron::store::now_ms();
        let day = 86_400_000;
        let events: Vec<NewEvent> = (0..25)
            .map(|i| NewEvent {
                event_id: format!("e{i}"),
                kind: "page_view".into(),
                occurred_at: if i < 20 { now - 400 * day - i } else { now - day },
                anonymous_id: Some("a".into()),
                customer_id: None,
                url: None,
                properties: "{}".into(),
            })
            .collect();
        db.insert_events(shop.id, &events).await.expect("events");
        assert_eq!(db.delete_events_before(shop.id, now - 396 * day, 7).await.expect("retention"), 20);
        assert_eq!(db.count_events(shop.id).await.expect("count"), 5);
        assert_eq!(db.delete_events_before(shop.id, now - 396 * day, 7).await.expect("again"), 0);
    }
);
