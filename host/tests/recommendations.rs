//! Recommendations through the host, on both backends: the first-party recommender
//! trained over a seeded demo shop finds the co-purchase pairs the generator planted;
//! the host's serve-time filters (recent purchases unless replenishable, the cart);
//! bad input (unknown placement, forged token) and a shop with no sales.

use axum::http::StatusCode;
use patron::auth::customer_token;
use patron::demo::SeedOptions;
use patron::demo::catalog::{planted_pairs, product_id};
use patron::plugins::PluginHost;
use patron::plugins::recommendation_evaluation::EvaluationOptions;
use patron::scheduler::{Ran, Scheduler, TRAIN_RECS};
use patron::store::orders::OrderInput;
use patron::store::products::Product;
use patron::store::shops::Shop;
use patron::store::{Db, now_ms};
use patron::{AppState, app, both_backends, testing};
use serde_json::{Value, json};

/// A fixed end of the demo history, so the shop is the same on every run.
const DEMO_END: i64 = 1_780_000_000_000;

async fn get(state: &AppState, uri: &str) -> (StatusCode, Value) {
    send(state, "GET", uri, None, None).await
}

async fn send(
    state: &AppState,
    method: &str,
    uri: &str,
    secret: Option<&str>,
    body: Option<Value>,
) -> (StatusCode, Value) {
    testing::call(&app(state.clone()), method, uri, secret, body).await
}

async fn install_recommender(plugins: &PluginHost, shop: &Shop) {
    let manifest_path = concat!(env!("CARGO_MANIFEST_DIR"), "/../plugins/recommender/patron.toml");
    let manifest =
        patron_runtime::Manifest::from_toml(&std::fs::read_to_string(manifest_path).expect("manifest")).expect("valid");
    let grants = manifest.imports.iter().map(|c| c.name().to_owned()).collect();
    let wasm = patron_runtime::testing::plugin_wasm("recommender").expect("recommender plugin builds");
    plugins.install(shop.id, wasm, manifest, grants, None, true).await.expect("install recommender");
}

fn ids(body: &Value) -> Vec<String> {
    body["items"].as_array().map_or_else(Vec::new, |items| {
        items.iter().filter_map(|i| i["product_id"].as_str().map(str::to_owned)).collect()
    })
}

async fn buy(db: &Db, shop: &Shop, order_id: &str, customer: &str, products: &[String]) {
    buy_at(db, shop, order_id, customer, products, now_ms()).await;
}

async fn buy_at(db: &Db, shop: &Shop, order_id: &str, customer: &str, products: &[String], at: i64) {
    let lines: Vec<Value> =
        products.iter().map(|p| json!({"product_id": p, "title": p, "quantity": 1, "unit_price": 1_000})).collect();
    let input: OrderInput = serde_json::from_value(json!({
        "id": order_id, "customer": {"external_id": customer}, "placed_at": at, "lines": lines
    }))
    .expect("order");
    let (order, customer) = input.validate(&shop.currency).expect("valid");
    db.upsert_order(shop.id, order, customer.as_ref()).await.expect("stored");
}

both_backends!(
    async fn the_demo_shop_recommends_its_planted_pairs_and_filters_recent_purchases(db) {
        let (shop, _keys) = testing::shop(&db, "demo").await;
        patron::demo::seed(&db, &shop, &SeedOptions { customers: 2_000, seed: 7, end: Some(DEMO_END), progress: false, ..SeedOptions::default() })
            .await
            .expect("seed");
        let state = AppState::new(db.clone());
        install_recommender(&state.plugins, &shop).await;
        let key = &shop.publishable_key;

        let (status, body) = get(&state, &format!("/v1/recommendations?key={key}&placement=home")).await;
        assert_eq!((status, ids(&body).len()), (StatusCode::OK, 0), "no model yet: an empty list, not an error: {body}");

        // Training runs as a leased job, on demand.
        let scheduler = Scheduler::new(db.clone(), state.plugins.clone());
        Scheduler::queue_training_now(&db, shop.id).await.expect("queue");
        assert_eq!(scheduler.run_once().await.expect("run"), Ran::Done { kind: TRAIN_RECS.to_owned() });
        let stored = db.recommendation_model(shop.id, "recommender").await.expect("read").expect("a model is stored");
        assert!(stored.orders_seen > 1_000 && !stored.model.is_empty(), "{} orders", stored.orders_seen);

        let pairs = planted_pairs();
        for (anchor, partner) in pairs.iter().take(5) {
            let (status, body) = get(&state, &format!("/v1/recommendations?key={key}&placement=product&product_id={anchor}&limit=8")).await;
            assert_eq!(status, StatusCode::OK, "{body}");
            let list = ids(&body);
            assert!(list.iter().take(3).any(|p| p == partner), "{partner} in the top 3 for {anchor}: {list:?}");
            assert!(!list.contains(anchor), "never the page's own product");
            let first = &body["items"][0];
            assert_eq!(first["strategy"], "frequently-bought-together");
            assert!(first["title"].is_string() && first["price"].is_i64() && first["recommendation_id"].is_string(), "{first}");
        }

        // A shopper who just bought a scale (not replenishable) and paper filters
        // (replenishable) on the kettle's and the dripper's pages.
        let (kettle, scale) = (product_id("Gooseneck Kettle"), product_id("Digital Scale"));
        let (dripper, filters) = (product_id("Pour-Over Dripper"), product_id("Pour-Over Paper Filters (100)"));
        assert!(pairs.contains(&(kettle.clone(), scale.clone())) && pairs.contains(&(dripper.clone(), filters.clone())));
        buy(&db, &shop, "fresh-1", "fresh-shopper", &[scale.clone(), filters.clone()]).await;
        let token = customer_token(&shop.secret_hash, "fresh-shopper").expect("token");
        let as_shopper = |product: &str, token: &str| {
            format!("/v1/recommendations?key={key}&placement=product&product_id={product}&customer_id=fresh-shopper&customer_token={token}")
        };
        let (_, body) = get(&state, &as_shopper(&kettle, &token)).await;
        assert!(!ids(&body).contains(&scale), "a scale bought today is not recommended again: {body}");
        let (_, body) = get(&state, &as_shopper(&dripper, &token)).await;
        assert!(ids(&body).contains(&filters), "paper filters are replenishable: {body}");
        let (status, body) = get(&state, &as_shopper(&kettle, &"0".repeat(64))).await;
        assert_eq!(status, StatusCode::OK);
        assert!(ids(&body).contains(&scale), "a forged token is anonymous: no purchase history applies: {body}");

        // The cart is excluded; for-you is personal with a token.
        let (_, body) = get(&state, &format!("/v1/recommendations?key={key}&placement=cart&cart={kettle},{scale}")).await;
        let list = ids(&body);
        assert!(!list.is_empty() && !list.contains(&kettle) && !list.contains(&scale), "{list:?}");
        let (status, body) = get(&state, &format!(
            "/v1/recommendations?key={key}&placement=for-you&customer_id=fresh-shopper&customer_token={token}"
        )).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert!(!ids(&body).is_empty() && !ids(&body).contains(&scale), "{body}");

        let (status, body) = get(&state, &format!("/v1/widget/state?key={key}")).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert!(body["recommendations"].as_array().is_some_and(|r| !r.is_empty()), "anonymous panel: best sellers: {body}");
        let install = db.plugin_install(shop.id, "recommender").await.expect("read").expect("installed");
        assert_eq!(install.last_error, None, "the plugin returned only known products, within the limit");

        // Offline evaluation trains its own model and leaves the served one alone.
        let active = state.plugins.recommender(shop.id).await.expect("read").expect("enabled");
        let options = EvaluationOptions { k: 10, max_customers: Some(300) };
        let report = state.plugins.evaluate_recommender(&shop, &active, options, &|_, _| {}).await.expect("evaluate");
        let served = db.recommendation_model(shop.id, "recommender").await.expect("read").expect("stored");
        assert_eq!(served.built_at, stored.built_at, "evaluation does not replace the serving model");
        assert_eq!(report.customers, 300);
        assert!(report.held_out_orders > 1_000 && report.training_orders + report.held_out_orders <= stored.orders_seen as u64 + 1, "{report:?}");
        let scores: Vec<&str> = report.strategies.iter().map(|s| s.strategy).collect();
        assert_eq!(scores, ["popular", "frequently-bought-together", "for-you", "recently-viewed"]);
        let hit_rate = |name: &str| report.strategies.iter().find(|s| s.strategy == name).map(|s| s.hit_rate).unwrap_or_default();
        assert!(hit_rate("popular") > 0.0, "{report:?}");
        for personal in ["for-you", "recently-viewed"] {
            assert!(hit_rate(personal) > hit_rate("popular"), "{personal} beats best sellers on the demo shop: {report:?}");
        }
        // The report is kept as the install's last evaluation, for the console.
        let kept = db.recommendation_evaluations(shop.id).await.expect("read");
        assert_eq!(kept.len(), 1);
        assert_eq!(kept[0].plugin, "recommender");
        assert_eq!(kept[0].report, serde_json::to_string(&report).expect("json"));
    }
);

both_backends!(
    async fn bad_input_and_a_shop_without_sales(db) {
        let (shop, _keys) = testing::shop(&db, "empty").await;
        let state = AppState::new(db.clone());
        let key = &shop.publishable_key;
        let (status, body) = get(&state, &format!("/v1/recommendations?key={key}&placement=home")).await;
        assert_eq!((status, ids(&body).len()), (StatusCode::OK, 0), "no recommender installed: empty: {body}");

        install_recommender(&state.plugins, &shop).await;
        let active = state.plugins.recommender(shop.id).await.expect("read").expect("enabled");
        let report = state.plugins.train_shop(&shop, &active, &|_, _| {}).await.expect("train over no orders");
        assert_eq!(report.orders, 0);
        for uri in [
            format!("/v1/recommendations?key={key}&placement=home"),
            format!("/v1/recommendations?key={key}&placement=product&product_id=nope"),
            format!("/v1/recommendations?key={key}&placement=for-you&customer_id=ada&customer_token={}", "0".repeat(64)),
        ] {
            let (status, body) = get(&state, &uri).await;
            assert_eq!((status, ids(&body).len()), (StatusCode::OK, 0), "a shop with no sales: empty, not an error: {uri} {body}");
        }
        for uri in [
            format!("/v1/recommendations?key={key}&placement=sidebar"),
            format!("/v1/recommendations?key={key}&placement=product"),
            format!("/v1/recommendations?key={key}&placement=home&limit=0"),
        ] {
            let (status, body) = get(&state, &uri).await;
            assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{uri} {body}");
        }
        let (status, _) = get(&state, "/v1/recommendations?key=pk_unknown&placement=home").await;
        assert!(status.is_client_error());

        // Sales of products the catalogue does not know (`ghost`) and of one that is no
        // longer available (`gone`): the plugin recommends them, the host drops them and
        // records the unknown ids against the plugin.
        for (id, available) in [("tea", true), ("cup", true), ("gone", false)] {
            let product: Product = serde_json::from_value(json!({
                "id": id, "title": id, "price": 500, "category": "Tea Ware", "available": available
            }))
            .expect("product");
            db.upsert_product(shop.id, &shop.currency, &product).await.expect("product stored");
        }
        for n in 0..5 {
            let products = ["tea", "cup", "ghost", "gone"].map(str::to_owned);
            buy(&db, &shop, &format!("o{n}"), &format!("c{n}"), &products).await;
        }
        state.plugins.train_shop(&shop, &active, &|_, _| {}).await.expect("train");
        let (status, body) = get(&state, &format!("/v1/recommendations?key={key}&placement=product&product_id=tea")).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(ids(&body), vec!["cup".to_owned()], "only the known, available partner: {body}");
        let install = db.plugin_install(shop.id, "recommender").await.expect("read").expect("installed");
        assert!(install.last_error.as_deref().is_some_and(|e| e.contains("1 of them unknown")), "{:?}", install.last_error);
        assert_eq!(install.status, "enabled", "dropped items are recorded, not counted as call failures");
    }
);

fn impression(id: &str, at: i64, placement: &str, items: &[(&str, &str, &str)]) -> Value {
    let items: Vec<Value> = items
        .iter()
        .map(|(rec, product, strategy)| json!({"recommendation_id": rec, "product_id": product, "strategy": strategy}))
        .collect();
    json!({"id": id, "kind": "recommendation_impression", "time": at, "properties": {"placement": placement, "items": items}})
}

fn click(id: &str, at: i64, placement: &str, (rec, product, strategy): (&str, &str, &str)) -> Value {
    json!({"id": id, "kind": "recommendation_click", "time": at, "properties": {
        "placement": placement, "recommendation_id": rec, "product_id": product, "strategy": strategy
    }})
}

both_backends!(
    async fn clicks_are_attributed_to_the_orders_that_follow_them(db) {
        const MINUTE: i64 = 60_000;
        const DAY: i64 = 24 * 60 * MINUTE;
        let (shop, keys) = testing::shop(&db, "attribution").await;
        let state = AppState::new(db.clone());
        let events_uri = format!("/v1/events?key={}", shop.publishable_key);
        let now = now_ms();
        let t0 = now - 20 * DAY;
        let token = customer_token(&shop.secret_hash, "ann").expect("token");
        let fbt = "frequently-bought-together";
        let batch = json!({"anonymous_id": "ann-browser", "customer_id": "ann", "customer_token": token, "events": [
            impression("i1", t0, "product", &[("r1", "mug", fbt), ("r2", "tea", fbt)]),
            impression("i2", t0, "home", &[("r3", "pot", "popular")]),
            click("c1", t0 + MINUTE, "product", ("r1", "mug", fbt)),
            // The same recommendation clicked again (back button): one click.
            click("c2", t0 + 2 * MINUTE, "product", ("r1", "mug", fbt)),
            // A forged event cannot add rows to the report.
            click("c3", t0 + 3 * MINUTE, "sidebar", ("r9", "pot", "mind-reading")),
            // Not a usable click: no recommendation id.
            json!({"id": "c4", "kind": "recommendation_click", "time": t0, "properties": {"product_id": "mug"}}),
        ]});
        let (status, body) = send(&state, "POST", &events_uri, None, Some(batch)).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        // An anonymous shopper clicks a home recommendation and signs in later.
        let anonymous = json!({"anonymous_id": "bob-browser", "events": [
            impression("i3", t0, "home", &[("r4", "pot", "popular")]),
            click("c5", t0 + MINUTE, "home", ("r4", "pot", "popular")),
        ]});
        send(&state, "POST", &events_uri, None, Some(anonymous)).await;
        let bob_token = customer_token(&shop.secret_hash, "bob").expect("token");
        let identify = json!({"anonymous_id": "bob-browser", "customer_id": "bob", "customer_token": bob_token});
        let (status, body) = send(&state, "POST", &format!("/v1/identify?key={}", shop.publishable_key), None, Some(identify)).await;
        assert_eq!(status, StatusCode::OK, "{body}");

        let products = |ids: &[&str]| ids.iter().map(|p| (*p).to_owned()).collect::<Vec<_>>();
        // Ann: before the click (not attributed), within the window (attributed, once),
        // another within the window without the clicked product, and one too late.
        buy_at(&db, &shop, "ann-before", "ann", &products(&["mug"]), t0 - MINUTE).await;
        buy_at(&db, &shop, "ann-after", "ann", &products(&["mug", "tea"]), t0 + DAY).await;
        buy_at(&db, &shop, "ann-other", "ann", &products(&["tea"]), t0 + DAY).await;
        buy_at(&db, &shop, "ann-late", "ann", &products(&["mug"]), t0 + 8 * DAY).await;
        // Someone who never clicked buys the mug: not attributed.
        buy_at(&db, &shop, "cyd-1", "cyd", &products(&["mug"]), t0 + DAY).await;
        buy_at(&db, &shop, "bob-1", "bob", &products(&["pot", "tea"]), t0 + 2 * DAY).await;

        let uri = "/v1/recommendations/report?window_days=7";
        let (status, report) = send(&state, "GET", uri, Some(&keys.secret), None).await;
        assert_eq!(status, StatusCode::OK, "{report}");
        let row = |placement: &str, strategy: &str| {
            report["rows"].as_array().and_then(|rows| {
                rows.iter().find(|r| r["placement"] == placement && r["strategy"] == strategy).cloned()
            })
        };
        let product = row("product", fbt).expect("product row");
        assert_eq!((product["impressions"].as_i64(), product["clicks"].as_i64()), (Some(2), Some(1)), "{report}");
        assert_eq!(product["click_through_rate"], 0.5);
        // `ann-after`: two lines of 1 000, only the mug was clicked.
        assert_eq!((product["orders"].as_i64(), product["revenue"].as_i64(), product["item_revenue"].as_i64()), (Some(1), Some(2_000), Some(1_000)), "{report}");
        let home = row("home", "popular").expect("home row");
        assert_eq!((home["impressions"].as_i64(), home["clicks"].as_i64(), home["orders"].as_i64()), (Some(2), Some(1), Some(1)), "the signed-in browser's click counts: {report}");
        let other = row("other", "other").expect("forged names are grouped");
        assert_eq!((other["clicks"].as_i64(), other["orders"].as_i64()), (Some(1), Some(0)));
        assert_eq!(report["rows"].as_array().map(Vec::len), Some(3), "{report}");
        assert_eq!((report["total"]["impressions"].as_i64(), report["total"]["clicks"].as_i64(), report["total"]["orders"].as_i64()), (Some(4), Some(3), Some(2)));

        // A shorter window drops Bob's order (two days after his click).
        let (_, report) = send(&state, "GET", "/v1/recommendations/report?window_days=1", Some(&keys.secret), None).await;
        assert_eq!(report["total"]["orders"].as_i64(), Some(1), "{report}");
        // A period before the events: nothing.
        let until = t0 - DAY;
        let (_, report) = send(&state, "GET", &format!("/v1/recommendations/report?until={until}"), Some(&keys.secret), None).await;
        assert_eq!((report["rows"].as_array().map(Vec::len), report["total"]["impressions"].as_i64()), (Some(0), Some(0)), "{report}");

        for bad in ["window_days=91", "window_days=-1", "since=yesterday", "since=2030-01-01T00:00:00Z&until=2029-01-01T00:00:00Z"] {
            let (status, body) = send(&state, "GET", &format!("/v1/recommendations/report?{bad}"), Some(&keys.secret), None).await;
            assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{bad}: {body}");
        }
        let (status, _) = send(&state, "GET", &format!("/v1/recommendations/report?key={}", shop.publishable_key), None, None).await;
        assert!(status.is_client_error(), "the report needs the secret key");
    }
);
