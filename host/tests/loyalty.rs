//! Loyalty end to end: the first-party loyalty plugin installed through the API, orders
//! earning points once, refunds reversing them, the member panel's state, redemptions;
//! and the order changes' jobs that award and reverse points when the request that
//! stored the change died first, or a plugin call failed.

use axum::http::StatusCode;
use base64::Engine as _;
use patron::auth::{NewShopKeys, customer_token};
use patron::scheduler::{Ran, Scheduler};
use patron::store::jobs::{INLINE_LEASE_MS, JobStatus, MAX_ATTEMPTS};
use patron::store::order_hooks::{LOYALTY_JOB, OrderChange};
use patron::store::orders::{OrderInput, OrderOutcome, RefundInput};
use patron::store::shops::Shop;
use patron::store::{Db, now_ms};
use patron::{AppState, app, both_backends, testing};
use serde_json::{Value, json};

async fn call(
    state: &AppState,
    method: &str,
    uri: &str,
    secret: Option<&str>,
    body: Option<Value>,
) -> (StatusCode, Value) {
    testing::call(&app(state.clone()), method, uri, secret, body).await
}

/// The loyalty plugin's config in these tests.
fn loyalty_config() -> Value {
    json!({"currency": "USD", "points-expiry-days": 365})
}

/// Valid for the manifest's schema, but the plugin refuses it: every call fails.
fn broken_loyalty_config() -> Value {
    json!({"currency": "USD", "tiers": []})
}

async fn install_loyalty(state: &AppState, keys: &NewShopKeys) {
    install_loyalty_with(state, keys, loyalty_config()).await;
}

async fn install_loyalty_with(state: &AppState, keys: &NewShopKeys, config: Value) {
    testing::install_first_party(&app(state.clone()), &keys.secret, "loyalty", config).await;
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
    async fn the_sdk_templates_plugin_earns_on_orders_and_the_host_reverses_on_refunds(db) {
        let (shop, keys) = testing::shop(&db, "a").await;
        let state = AppState::new(db.clone());
        let wasm = patron_runtime::testing::plugin_wasm("template-loyalty").expect("the template builds");
        let body = json!({
            "manifest": {"name": "template-loyalty", "version": "0.1.0", "world": "loyalty"},
            "wasm_base64": base64::engine::general_purpose::STANDARD.encode(wasm),
            "grants": [],
            "enable": true,
        });
        let (status, body) = call(&state, "POST", "/v1/plugins", Some(&keys.secret), Some(body)).await;
        assert_eq!(status, StatusCode::CREATED, "{body}");

        let (status, body) = call(&state, "POST", "/v1/orders", Some(&keys.secret), Some(order("1042", "ada", 12_345))).await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        let ada = db.customer_by_external_id(shop.id, "ada").await.expect("read").expect("customer").id;
        assert_eq!(db.points_balance(shop.id, ada).await.expect("balance"), 123, "a point per whole unit");
        let refund = json!({"id": "r1", "amount": 6_000});
        let (status, body) = call(&state, "POST", "/v1/orders/1042/refunds", Some(&keys.secret), Some(refund)).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(body["loyalty"]["points_reversed"], 59, "6,000 of 12,345 refunded: 123 × 6,000 / 12,345, rounded down");
        let (status, body) = call(&state, "POST", "/v1/orders/1042/refunds", Some(&keys.secret), Some(json!({"id": "r2"}))).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(db.points_balance(shop.id, ada).await.expect("balance"), 0, "the rest goes with the full refund");
        let install = db.plugin_install(shop.id, "template-loyalty").await.expect("read").expect("installed");
        assert_eq!((install.failures, install.last_error), (0, None), "no refund action was refused");
    }
);

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

/// A shop whose loyalty plugin has `config`, and the scheduler that runs its jobs.
async fn shop_with_loyalty(db: &Db, config: Value) -> (Shop, NewShopKeys, AppState, Scheduler) {
    let (shop, keys) = testing::shop(db, "a").await;
    let state = AppState::new(db.clone());
    install_loyalty_with(&state, &keys, config).await;
    let scheduler = Scheduler::new(db.clone(), state.plugins.clone());
    (shop, keys, state, scheduler)
}

/// Stores an order as `POST /v1/orders` does, with its loyalty job, and stops there: the
/// process died before the hooks ran.
async fn store_order_then_crash(db: &Db, shop: &Shop, order: Value) -> OrderOutcome {
    let input: OrderInput = serde_json::from_value(order).expect("order");
    let (order, customer) = input.validate(&shop.currency).expect("valid");
    let outcome = db.upsert_order(shop.id, order, customer.as_ref()).await.expect("stored");
    assert!(outcome.loyalty.as_ref().is_some_and(|work| work.job.is_some()), "a loyalty job is queued with the order");
    outcome
}

/// When a job the dead request held is the scheduler's to run.
fn after_the_request_lease() -> i64 {
    now_ms() + INLINE_LEASE_MS + 1
}

async fn loyalty_jobs(db: &Db, shop: &Shop) -> Vec<JobStatus> {
    db.jobs(shop.id, 100).await.expect("jobs").into_iter().filter(|j| j.kind == LOYALTY_JOB).collect()
}

fn loyalty_ran() -> Ran {
    Ran::Done { kind: LOYALTY_JOB.to_owned() }
}

both_backends!(
    async fn an_order_stored_before_a_crash_earns_and_reverses_from_its_job_once(db) {
        let (shop, keys, state, scheduler) = shop_with_loyalty(&db, loyalty_config()).await;

        let stored = store_order_then_crash(&db, &shop, order("1001", "ada", 60_000)).await;
        let ada = stored.order.customer_id.expect("customer");
        assert_eq!(db.points_balance(shop.id, ada).await.expect("balance"), 0, "the hooks never ran");
        assert_eq!(scheduler.run_once().await.expect("run"), Ran::Nothing, "the request holds its job a while");
        assert_eq!(scheduler.run_due(after_the_request_lease()).await.expect("run"), loyalty_ran());
        assert_eq!(db.points_balance(shop.id, ada).await.expect("balance"), 750, "the job awarded the order's points");
        assert_eq!(db.tier(shop.id, ada).await.expect("tier").as_deref(), Some("gold"));
        assert_eq!(scheduler.run_due(after_the_request_lease()).await.expect("run"), Ran::Nothing);

        let (status, body) = call(&state, "POST", "/v1/orders", Some(&keys.secret), Some(order("1001", "ada", 60_000))).await;
        assert_eq!((status, body["result"].as_str()), (StatusCode::OK, Some("unchanged")), "{body}");
        assert_eq!(scheduler.run_due(after_the_request_lease()).await.expect("run"), Ran::Nothing, "a re-post queues nothing");
        assert_eq!(db.points_balance(shop.id, ada).await.expect("balance"), 750, "the order earned once");

        let refund = RefundInput { id: "r1".into(), amount: Some(30_000), reason: None };
        let refunded = db.refund_order(shop.id, "1001", &refund).await.expect("refund stored");
        assert!(refunded.loyalty.is_some_and(|work| work.job.is_some()), "a loyalty job is queued with the refund");
        assert_eq!(db.points_balance(shop.id, ada).await.expect("balance"), 750, "the refund's hooks never ran");
        assert_eq!(scheduler.run_due(after_the_request_lease()).await.expect("run"), loyalty_ran());
        assert_eq!(db.points_balance(shop.id, ada).await.expect("balance"), 375, "half refunded: half reversed");

        let (status, body) = call(&state, "POST", "/v1/orders/1001/refunds", Some(&keys.secret), Some(json!({"id": "r1", "amount": 30_000}))).await;
        assert_eq!((status, body["result"].as_str()), (StatusCode::OK, Some("unchanged")), "{body}");
        assert_eq!(scheduler.run_due(after_the_request_lease()).await.expect("run"), Ran::Nothing);
        assert_eq!(db.points_balance(shop.id, ada).await.expect("balance"), 375, "the refund reversed once");
        assert_eq!(db.ledger_sum(shop.id, ada).await.expect("sum"), 375);
        let jobs = loyalty_jobs(&db, &shop).await;
        assert_eq!(jobs.len(), 2, "one job per change: the placement and the refund");
        assert!(jobs.iter().all(|j| j.status == "done" && j.attempts == 2), "{jobs:?}");
    }
);

both_backends!(
    async fn the_request_and_a_late_job_run_of_one_order_apply_its_actions_once(db) {
        let (shop, keys, state, scheduler) = shop_with_loyalty(&db, loyalty_config()).await;
        let (status, body) = call(&state, "POST", "/v1/orders", Some(&keys.secret), Some(order("s1", "ada", 10_000))).await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        assert_eq!(body["loyalty"]["failures"], json!([]), "{body}");
        assert_eq!(scheduler.run_due(after_the_request_lease()).await.expect("run"), Ran::Nothing, "the request ran its job");
        let ada = db.customer_by_external_id(shop.id, "ada").await.expect("read").expect("customer").id;
        assert_eq!(db.tier(shop.id, ada).await.expect("tier").as_deref(), Some("silver"));

        // This order takes ada to gold: points, the tier and a promotion coupon. The
        // request applies them, then dies before it marks the order's job done.
        let stored = store_order_then_crash(&db, &shop, order("g1", "ada", 45_000)).await;
        let applied = state.plugins.order_placed(&shop, &stored.order).await.expect("hooks ran");
        assert_eq!(applied.applied[0].points_awarded, 450, "{applied:?}");
        assert_eq!(applied.applied[0].coupons.len(), 1, "a promotion coupon: {applied:?}");
        let balance = db.points_balance(shop.id, ada).await.expect("balance");
        let coupons = db.active_coupons(shop.id, ada).await.expect("coupons");

        assert_eq!(scheduler.run_due(after_the_request_lease()).await.expect("run"), loyalty_ran());
        assert_eq!(db.points_balance(shop.id, ada).await.expect("balance"), balance, "the job awarded nothing more");
        assert_eq!(db.active_coupons(shop.id, ada).await.expect("coupons").len(), coupons.len(), "nor issued another coupon");
        let earned: Vec<_> = db.ledger(shop.id, ada, 100).await.expect("ledger").into_iter().filter(|row| row.order_id.as_deref() == Some("g1")).collect();
        assert_eq!(earned.len(), 1, "{earned:?}");
        assert_eq!(db.tier(shop.id, ada).await.expect("tier").as_deref(), Some("gold"));
    }
);

both_backends!(
    // Found by host/benches/crash_recovery.sh on PostgreSQL: two partial refunds of one
    // order posted at once each reversed its share computed from a ledger read before
    // the other's reversal committed, so together they took back more points than the
    // refunded fraction earned (75 of 100 for half the order).
    async fn two_refunds_heard_at_once_reverse_their_fraction_once(db) {
        let (shop, keys, state, _scheduler) = shop_with_loyalty(&db, loyalty_config()).await;
        for round in 0..4 {
            let (order_id, customer) = (format!("pr-{round}"), format!("pat-{round}"));
            let placed = order(&order_id, &customer, 10_000);
            let (status, body) = call(&state, "POST", "/v1/orders", Some(&keys.secret), Some(placed)).await;
            assert_eq!(status, StatusCode::CREATED, "{body}");
            let pat = db.customer_by_external_id(shop.id, &customer).await.expect("read").expect("customer").id;
            let earned = db.points_balance(shop.id, pat).await.expect("balance");
            assert_eq!(earned, 100, "round {round}");

            // Both refunds stored, as their requests store them; then both requests
            // hear of theirs at the same moment.
            let refund = |suffix: &str| RefundInput { id: format!("{order_id}-{suffix}"), amount: Some(2_500), reason: None };
            let first = db.refund_order(shop.id, &order_id, &refund("a")).await.expect("first refund");
            let second = db.refund_order(shop.id, &order_id, &refund("b")).await.expect("second refund");
            let (a, b) = tokio::join!(
                state.plugins.order_changed(&shop, &first.order, first.loyalty.as_ref().expect("loyalty work")),
                state.plugins.order_changed(&shop, &second.order, second.loyalty.as_ref().expect("loyalty work")),
            );
            let reversed = a.expect("first heard").points_reversed + b.expect("second heard").points_reversed;
            assert_eq!(reversed, 50, "round {round}: half refunded, half of the 100 points reversed");
            assert_eq!(db.points_balance(shop.id, pat).await.expect("balance"), 50, "round {round}");
            assert_eq!(db.ledger_sum(shop.id, pat).await.expect("sum"), 50, "round {round}");
        }
    }
);

both_backends!(
    async fn a_failing_loyalty_plugin_is_retried_with_backoff_then_left_failed(db) {
        let (shop, keys, state, scheduler) = shop_with_loyalty(&db, broken_loyalty_config()).await;
        let start = now_ms();
        let minutes = |m: i64| start + m * 60_000 + 30_000;

        let (status, body) = call(&state, "POST", "/v1/orders", Some(&keys.secret), Some(order("1001", "ada", 60_000))).await;
        assert_eq!(status, StatusCode::CREATED, "the order is stored whatever the plugin does: {body}");
        let failure = body["loyalty"]["failures"][0].as_str().unwrap_or_default().to_owned();
        assert!(failure.starts_with("loyalty@0.1.0: ") && failure.contains("tiers"), "{body}");
        let ada = db.customer_by_external_id(shop.id, "ada").await.expect("read").expect("customer").id;
        let install = db.plugin_install(shop.id, "loyalty").await.expect("read").expect("installed");
        assert_eq!(install.failures, 1, "the failed call is recorded against the plugin");
        assert!(!db.hook_ran(shop.id, "1001", &OrderChange::Placed, "loyalty").await.expect("read"));
        assert_eq!(scheduler.run_due(minutes(0)).await.expect("run"), Ran::Nothing, "the retry waits a minute");
        assert!(matches!(scheduler.run_due(minutes(1)).await.expect("run"), Ran::Failed { ref error, .. } if error.contains("tiers")));

        let (status, body) = call(&state, "PUT", "/v1/plugins/loyalty/config", Some(&keys.secret), Some(loyalty_config())).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(scheduler.run_due(minutes(1)).await.expect("run"), Ran::Nothing, "the next retry waits twice as long");
        assert_eq!(scheduler.run_due(minutes(3)).await.expect("run"), loyalty_ran());
        assert_eq!(db.points_balance(shop.id, ada).await.expect("balance"), 750, "fixed, the plugin awarded the order's points");
        assert!(db.hook_ran(shop.id, "1001", &OrderChange::Placed, "loyalty").await.expect("read"));

        let (status, body) = call(&state, "PUT", "/v1/plugins/loyalty/config", Some(&keys.secret), Some(broken_loyalty_config())).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        call(&state, "POST", "/v1/orders", Some(&keys.secret), Some(order("1002", "bob", 10_000))).await;
        let bob = db.customer_by_external_id(shop.id, "bob").await.expect("read").expect("customer").id;
        let mut retries = 0;
        for at in [minutes(1), minutes(3), minutes(7), minutes(15)] {
            assert!(matches!(scheduler.run_due(at).await.expect("run"), Ran::Failed { .. }));
            retries += 1;
        }
        assert_eq!(retries + 1, MAX_ATTEMPTS);
        assert_eq!(scheduler.run_due(minutes(24 * 60)).await.expect("run"), Ran::Nothing, "after its last attempt the job rests");
        let (status, jobs) = call(&state, "GET", "/v1/jobs", Some(&keys.secret), None).await;
        assert_eq!(status, StatusCode::OK, "{jobs}");
        let failed: Vec<&Value> = jobs.as_array().expect("jobs").iter().filter(|j| j["status"] == "failed").collect();
        assert_eq!(failed.len(), 1, "the merchant sees the order whose points never came: {jobs}");
        assert_eq!((&failed[0]["kind"], &failed[0]["payload"]["order_id"]), (&json!(LOYALTY_JOB), &json!("1002")));
        assert_eq!(failed[0]["attempts"], MAX_ATTEMPTS);
        assert!(failed[0]["last_error"].as_str().is_some_and(|e| e.contains("loyalty")), "{jobs}");
        assert_eq!(db.points_balance(shop.id, bob).await.expect("balance"), 0);
        let install = db.plugin_install(shop.id, "loyalty").await.expect("read").expect("installed");
        assert_eq!(install.status, "tripped", "five failures in a row trip the plugin's breaker");

        // Fixed and re-enabled, the merchant runs the failed job again.
        let failed_id = failed[0]["id"].as_str().expect("ids are strings").to_owned();
        let retry = |id: String| {
            let state = state.clone();
            let secret = keys.secret.clone();
            async move { call(&state, "POST", &format!("/v1/jobs/{id}/retry"), Some(&secret), None).await }
        };
        let done_id = jobs.as_array().expect("jobs").iter().find(|j| j["status"] == "done").expect("ada's job")["id"].as_str().expect("id").to_owned();
        assert_eq!(retry(done_id).await.0, StatusCode::CONFLICT, "only a job that failed for good is retried");
        assert_eq!(retry("987654321".into()).await.0, StatusCode::NOT_FOUND);
        assert_eq!(retry("not-a-job".into()).await.0, StatusCode::NOT_FOUND);
        for (method, uri, body) in [("PUT", "/v1/plugins/loyalty/config", Some(loyalty_config())), ("POST", "/v1/plugins/loyalty/enable", None)] {
            let (status, body) = call(&state, method, uri, Some(&keys.secret), body).await;
            assert_eq!(status, StatusCode::OK, "{uri}: {body}");
        }
        let (status, body) = retry(failed_id.clone()).await;
        assert_eq!(status, StatusCode::ACCEPTED, "{body}");
        assert_eq!(scheduler.run_due(now_ms()).await.expect("run"), loyalty_ran(), "due at once, with its attempts back");
        assert!(db.points_balance(shop.id, bob).await.expect("balance") > 0, "bob's points came at last");
        assert_eq!(retry(failed_id).await.0, StatusCode::CONFLICT, "done now");
    }
);

both_backends!(
    /// A loyalty install whose config names no currency or locale follows the shop's: in a
    /// zh-CN shop selling in CNY the panel's tier and rewards are in Chinese and a reward's
    /// coupon is in CNY (the host refuses a coupon in another currency than the shop's).
    async fn plugin_defaults_follow_the_shops_currency_and_locale(db) {
        let mut new = patron::store::shops::NewShop::named("cn");
        new.currency = "CNY".into();
        new.locale = "zh-CN".into();
        let (shop, keys) = db.create_shop(&new).await.expect("shop");
        let state = AppState::new(db.clone());
        install_loyalty_with(&state, &keys, json!({})).await;
        let (status, body) =
            call(&state, "POST", "/v1/orders", Some(&keys.secret), Some(order("c1", "mei", 60_000))).await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        let token = customer_token(&shop.secret_hash, "mei").expect("token");
        let member = widget_state(&state, &shop, "mei", &token).await["member"].clone();
        assert_eq!(
            (&member["tier"]["name"], &member["tier"]["label"], &member["tier"]["next_label"]),
            (&json!("gold"), &json!("金卡"), &json!("白金卡")),
            "{member}"
        );
        let names: Vec<&str> =
            member["rewards"].as_array().expect("rewards").iter().filter_map(|r| r["name"].as_str()).collect();
        assert_eq!(names, ["减¥5.00", "减¥12.00", "免运费"]);
        let uri = format!("/v1/rewards/redeem?key={}", shop.publishable_key);
        let redeem = json!({"customer_id": "mei", "customer_token": token, "reward_id": "five-off"});
        let (status, body) = call(&state, "POST", &uri, None, Some(redeem)).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let coupon = &body["member"]["coupons"][0];
        assert_eq!(
            (&coupon["discount"], &coupon["currency"]),
            (&json!({"kind": "fixed", "value": 500}), &json!("CNY")),
            "{coupon}"
        );
        let install = db.plugin_install(shop.id, "loyalty").await.expect("read").expect("installed");
        assert_eq!(install.config, json!({}), "the shop's defaults are applied, not stored");
    }
);
