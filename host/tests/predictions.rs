//! Predictions through the host, on both backends: the first-party `clv` predictor,
//! built by the test, fitted over a seeded demo shop by the nightly job; each
//! customer's predictions stored and shown on the customer record and the member
//! view; the at-risk and high-value segments assigned; the holdout evaluation; and a
//! shop too small to fit, which gets the plugin's message and keeps no model.

use axum::http::StatusCode;
use patron::demo::SeedOptions;
use patron::plugins::PluginHost;
use patron::plugins::prediction_evaluation::EvaluationOptions;
use patron::scheduler::{FIT_PREDICTIONS, RECOMPUTE_SEGMENTS, Ran, Scheduler};
use patron::store::orders::OrderInput;
use patron::store::shops::Shop;
use patron::store::{Db, StoreError, now_ms};
use patron::{AppState, app, both_backends, testing};
use serde_json::{Value, json};

const DAY: i64 = 24 * 60 * 60 * 1000;

async fn install_clv(plugins: &PluginHost, shop: &Shop) {
    let manifest_path = concat!(env!("CARGO_MANIFEST_DIR"), "/../plugins/clv/patron.toml");
    let manifest =
        patron_runtime::Manifest::from_toml(&std::fs::read_to_string(manifest_path).expect("manifest")).expect("valid");
    let grants = manifest.imports.iter().map(|c| c.name().to_owned()).collect();
    let wasm = patron_runtime::testing::plugin_wasm("clv").expect("clv plugin builds");
    plugins.install(shop.id, wasm, manifest, grants, None, true).await.expect("install clv");
}

async fn buy(db: &Db, shop: &Shop, order_id: &str, customer: &str, at: i64) {
    let input: OrderInput = serde_json::from_value(json!({
        "id": order_id, "customer": {"external_id": customer}, "placed_at": at,
        "lines": [{"product_id": "p", "title": "p", "quantity": 1, "unit_price": 2_500}]
    }))
    .expect("order");
    let (order, customer) = input.validate(&shop.currency).expect("valid");
    db.upsert_order(shop.id, order, customer.as_ref()).await.expect("stored");
}

fn number(v: &Value) -> f64 {
    v.as_f64().unwrap_or_else(|| panic!("a number: {v}"))
}

both_backends!(
    async fn the_nightly_fit_stores_predictions_and_segments(db) {
        let (shop, keys) = testing::shop(&db, "demo").await;
        patron::demo::seed(&db, &shop, &SeedOptions { customers: 3_000, seed: 11, end: None, progress: false, ..SeedOptions::default() })
            .await
            .expect("seed");
        let state = AppState::new(db.clone());
        install_clv(&state.plugins, &shop).await;
        let router = app(state.clone());

        // A regular: five orders, the last a week ago. A lapsed regular: five orders,
        // the last a year and a half ago. A one-time buyer.
        let now = now_ms();
        for k in 0..5 {
            buy(&db, &shop, &format!("reg-{k}"), "regular", now - (7 + 40 * (4 - k)) * DAY).await;
            buy(&db, &shop, &format!("lap-{k}"), "lapsed", now - (540 + 20 * (4 - k)) * DAY).await;
        }
        buy(&db, &shop, "once-0", "once", now - 100 * DAY).await;

        let (status, body) = testing::call(&router, "GET", "/v1/customers/regular", Some(&keys.secret), None).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert!(body["predictions"].is_null(), "no predictions before a fit: {body}");

        // The nightly job fits and predicts.
        db.enqueue_job(shop.id, FIT_PREDICTIONS, &json!({}), now, "predictions.fit:test").await.expect("queue");
        let scheduler = Scheduler::new(db.clone(), state.plugins.clone());
        assert_eq!(scheduler.run_once().await.expect("run"), Ran::Done { kind: FIT_PREDICTIONS.to_owned() });
        let stored = db.prediction_model(shop.id, "clv").await.expect("read").expect("a model is stored");
        assert!(stored.customers > 2_000, "{} customers", stored.customers);
        let model: Value = serde_json::from_slice(&stored.model).expect("the clv model is JSON");
        assert!(number(&model["bgnbd"]["params"]["r"]) > 0.0 && model["gamma_gamma"].is_object(), "{model}");

        let prediction = |external: &'static str| {
            let router = router.clone();
            let secret = keys.secret.clone();
            async move {
                let (status, body) = testing::call(&router, "GET", &format!("/v1/customers/{external}"), Some(&secret), None).await;
                assert_eq!(status, StatusCode::OK, "{body}");
                body["predictions"].clone()
            }
        };
        let regular = prediction("regular").await;
        let lapsed = prediction("lapsed").await;
        let once = prediction("once").await;
        for p in [&regular, &lapsed, &once] {
            let p_alive = number(&p["p_alive"]);
            assert!((0.0..=1.0).contains(&p_alive), "{p}");
            let (d30, d90, d365) =
                (number(&p["expected_purchases_30d"]), number(&p["expected_purchases_90d"]), number(&p["expected_purchases_365d"]));
            assert!(0.0 <= d30 && d30 <= d90 && d90 <= d365, "{p}");
            assert!(p["clv"].is_i64() && p["expected_order_value"].is_i64(), "money in minor units: {p}");
            assert_eq!(p["plugin"], "clv");
        }
        assert!(number(&regular["p_alive"]) > 0.8, "a regular who bought last week is alive: {regular}");
        assert!(number(&lapsed["p_alive"]) < 0.3, "a regular gone for 18 months is probably not: {lapsed}");
        assert_eq!(number(&once["p_alive"]), 1.0, "BG/NBD: nobody drops out before a repeat purchase");
        assert!(number(&regular["expected_purchases_365d"]) > number(&lapsed["expected_purchases_365d"]) * 5.0);
        assert!(regular["clv"].as_i64() > lapsed["clv"].as_i64());

        // The member view shows them too.
        let (status, body) = testing::call(&router, "GET", "/v1/members/regular", Some(&keys.secret), None).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(body["predictions"], regular);

        // Segments: the lapsed regular is at risk, the regular is not; about a tenth of
        // the buyers are predicted high value.
        let members = |segment: &'static str| {
            let db = db.clone();
            async move {
                db.segment_sizes(shop.id, now_ms())
                    .await
                    .expect("sizes")
                    .into_iter()
                    .find(|s| s.segment == segment)
                    .map_or(0, |s| s.members)
            }
        };
        let high = members("predicted-high-value").await;
        let share = high as f64 / stored.customers as f64;
        assert!((0.08..=0.12).contains(&share), "{high} of {} high value", stored.customers);
        assert!(members("at-risk").await > 0);
        let segments_of = |external: &'static str| {
            let db = db.clone();
            async move {
                let customer = db.customer_by_external_id(shop.id, external).await.expect("read").expect("exists");
                db.current_segments(shop.id, customer.id).await.expect("segments")
            }
        };
        assert!(segments_of("lapsed").await.contains(&"at-risk".to_owned()));
        assert!(!segments_of("regular").await.contains(&"at-risk".to_owned()));

        // Rules condition on the predictions: the host hands them to plugins as the trait `predictions`.
        let rules = json!({"rules": [
            {"name": "fading-regulars", "when": {"all": [
                {"trait": {"key": "predictions.p_alive", "lt": 0.3}}, {"order-count": {"gte": 2}}]}},
            {"name": "worth-a-call", "when": {"trait": {"key": "predictions.clv", "gte": regular["clv"]}}}
        ]});
        testing::install_first_party(&router, &keys.secret, "rules", rules).await;
        db.enqueue_job(shop.id, RECOMPUTE_SEGMENTS, &json!({}), now_ms(), "recompute:rules").await.expect("queue");
        while scheduler.run_due(now_ms()).await.expect("run") != Ran::Nothing {}
        let (lapsed_segments, regular_segments) = (segments_of("lapsed").await, segments_of("regular").await);
        assert!(lapsed_segments.contains(&"fading-regulars".to_owned()), "{lapsed_segments:?}");
        assert!(!regular_segments.contains(&"fading-regulars".to_owned()), "{regular_segments:?}");
        assert!(regular_segments.contains(&"worth-a-call".to_owned()), "{regular_segments:?}");
        assert!(!lapsed_segments.contains(&"worth-a-call".to_owned()), "{lapsed_segments:?}");

        // The segment's export carries the predictions.
        let request = axum::http::Request::get("/v1/segments/fading-regulars/members?format=csv")
            .header("authorization", format!("Bearer {}", keys.secret))
            .body(axum::body::Body::empty())
            .expect("request");
        let response = tower::ServiceExt::oneshot(router.clone(), request).await.expect("response");
        assert_eq!(response.status(), StatusCode::OK);
        let bytes = axum::body::to_bytes(response.into_body(), usize::MAX).await.expect("body");
        let csv = String::from_utf8(bytes.to_vec()).expect("utf8");
        assert!(csv.starts_with("external_id,") && csv.lines().next().is_some_and(|h| h.ends_with(",p_alive,expected_purchases_365d,clv")), "{csv}");
        let row = csv.lines().find(|l| l.starts_with("lapsed,")).expect("the lapsed regular's row");
        let cells: Vec<&str> = row.split(',').collect();
        // serde_json (without `float_roundtrip`) may read the API's figure 1 ulp off.
        let p_alive: f64 = cells[7].parse().expect("a number");
        assert!((p_alive - number(&lapsed["p_alive"])).abs() <= 1e-12, "{row}");
        assert_eq!(cells[9].parse::<i64>().ok(), lapsed["clv"].as_i64(), "{row}");

        // Evaluation on the same shop: fit before a split, compare with what happened.
        let active = state.plugins.predictors(shop.id).await.expect("active").remove(0);
        let options = EvaluationOptions { holdout_days: 180, step_days: 30 };
        let report = state.plugins.evaluate_predictor(&shop, &active, options, &|_, _| {}).await.expect("evaluate");
        assert!(report.customers > 1_000, "{report:?}");
        // The figures, for BENCHMARKS.md ("Predictions"): run with `--nocapture`.
        eprintln!("{}", serde_json::to_string(&report).expect("report serialises"));
        let last = report.series.last().expect("a series");
        assert_eq!((last.day, last.actual), (180, report.holdout_purchases));
        assert!((last.predicted - report.predicted_purchases).abs() < 1e-6 * report.predicted_purchases.max(1.0));
        assert!(report.model.mae.is_finite() && report.baseline.mae.is_finite());
        // P(alive) is a poor churn score on the demo shop, whose shoppers may leave right
        // after their first order, which BG/NBD does not allow (its one-order customers
        // all have P(alive) = 1; see BENCHMARKS.md): only its range is asserted.
        let auc = report.churn_auc_p_alive.expect("some customers churned, some did not");
        assert!((0.0..=1.0).contains(&auc), "{auc}");
        let behaviour = report.behaviour_model.as_ref().expect("the demo shop has a year of history before the split");
        assert_eq!(behaviour.coefficients.len(), 9);
        assert!(behaviour.churn_auc.is_some_and(|a| a > 0.5), "{behaviour:?}");
        // Recency is the strongest sign of churn: its weight is positive.
        assert!(behaviour.coefficients[0].weight > 0.0, "{behaviour:?}");
    }
);

both_backends!(
    async fn a_shop_too_small_to_fit_gets_a_clear_message_and_no_model(db) {
        let (shop, _keys) = testing::shop(&db, "tiny").await;
        let state = AppState::new(db.clone());
        install_clv(&state.plugins, &shop).await;
        let now = now_ms();
        for (i, customer) in ["a", "b", "c"].iter().enumerate() {
            buy(&db, &shop, &format!("o-{i}"), customer, now - 30 * DAY).await;
            buy(&db, &shop, &format!("p-{i}"), customer, now - 3 * DAY).await;
        }
        let active = state.plugins.predictors(shop.id).await.expect("active").remove(0);
        let error = state.plugins.fit_and_predict(&shop, &active, &|_, _| {}).await.expect_err("too small to fit");
        let StoreError::Plugin(message) = &error else { panic!("{error:?}") };
        assert!(message.contains("not-enough-data") && message.contains("3 customers"), "{message}");
        assert!(db.prediction_model(shop.id, "clv").await.expect("read").is_none());
        let customer = db.customer_by_external_id(shop.id, "a").await.expect("read").expect("exists");
        assert!(db.customer_prediction(shop.id, customer.id).await.expect("read").is_none());

        // The nightly job does not fail over it: it logs and queues the next night.
        db.enqueue_job(shop.id, FIT_PREDICTIONS, &json!({}), now, "predictions.fit:test").await.expect("queue");
        let scheduler = Scheduler::new(db.clone(), state.plugins.clone());
        assert_eq!(scheduler.run_once().await.expect("run"), Ran::Done { kind: FIT_PREDICTIONS.to_owned() });
    }
);
