//! The attack suite: what an attacker (or an unlucky client) tried against a running
//! server, each reproduced against the real router on both database backends. Races use
//! real concurrency: requests spawned together on a multi-threaded runtime, several rounds.

use std::net::SocketAddr;

use axum::Router;
use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{HeaderMap, Request, StatusCode};
use http_body_util::BodyExt;
use patron::auth::{NewShopKeys, customer_token};
use patron::plugins::actions::{Actor, MAX_AWARD, MAX_AWARD_PER_CALL, TIMER_JOB, Trigger, apply_in};
use patron::scheduler::{FAIR_STREAK, Lane, RECOMPUTE_SEGMENTS, Ran, Scheduler};
use patron::store::coupons::{CouponSpec, Discount};
use patron::store::jobs::MAX_ATTEMPTS;
use patron::store::orders::MAX_AMOUNT;
use patron::store::{Db, now_ms};
use patron::{AppState, app, both_backends, testing};
use patron_runtime::types::{Action, PointsAward};
use serde_json::{Value, json};
use tower::ServiceExt;

/// How many times each race is run.
const ROUNDS: usize = 4;

fn request(method: &str, uri: &str, secret: Option<&str>, body: Option<&Value>) -> Request<Body> {
    let mut request = Request::builder().method(method).uri(uri);
    if let Some(secret) = secret {
        request = request.header("authorization", format!("Bearer {secret}"));
    }
    request.body(body.map_or_else(Body::empty, |b| Body::from(b.to_string()))).expect("request")
}

async fn send(router: &Router, request: Request<Body>) -> (StatusCode, Value, HeaderMap) {
    let response = router.clone().oneshot(request).await.expect("infallible");
    let (status, headers) = (response.status(), response.headers().clone());
    let bytes = response.into_body().collect().await.expect("body").to_bytes();
    let body =
        serde_json::from_slice(&bytes).unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()));
    (status, body, headers)
}

/// A call with the shop's secret key, or (`""`) none: a storefront call.
async fn call(router: &Router, method: &str, uri: &str, secret: &str, body: Option<Value>) -> (StatusCode, Value) {
    let secret = Some(secret).filter(|s| !s.is_empty());
    let (status, body, _) = send(router, request(method, uri, secret, body.as_ref())).await;
    (status, body)
}

/// Sends every request at once, each on its own task; answers in the order given.
async fn all_at_once(
    router: &Router,
    secret: &str,
    calls: Vec<(&str, String, Option<Value>)>,
) -> Vec<(StatusCode, Value)> {
    let tasks: Vec<_> = calls
        .into_iter()
        .map(|(method, uri, body)| {
            let (router, secret, method) = (router.clone(), secret.to_owned(), method.to_owned());
            tokio::spawn(async move { call(&router, &method, &uri, &secret, body).await })
        })
        .collect();
    let mut answers = Vec::new();
    for task in tasks {
        answers.push(task.await.expect("request task"));
    }
    answers
}

fn order(id: &str, customer: &str, amount: i64) -> Value {
    json!({"id": id, "customer": {"external_id": customer}, "lines": [{"title": "Tea", "quantity": 1, "unit_price": amount}]})
}

async fn install_loyalty(router: &Router, keys: &NewShopKeys) {
    let config = json!({"currency": "USD", "points-expiry-days": 365});
    testing::install_first_party(router, &keys.secret, "loyalty", config).await;
}

async fn customer_id(db: &Db, shop_id: i64, external_id: &str) -> i64 {
    db.customer_by_external_id(shop_id, external_id).await.expect("read").expect("customer").id
}

async fn refunds_recorded(db: &Db, shop_id: i64, order_id: &str) -> i64 {
    sqlx::query_scalar(
        "SELECT CAST(COALESCE(SUM(amount), 0) AS BIGINT) FROM refunds WHERE shop_id = $1 AND order_id = $2",
    )
    .bind(shop_id)
    .bind(order_id)
    .fetch_one(db.pool())
    .await
    .expect("sum refunds")
}

fn sorted_statuses(answers: &[(StatusCode, Value)]) -> Vec<u16> {
    let mut statuses: Vec<u16> = answers.iter().map(|(s, _)| s.as_u16()).collect();
    statuses.sort_unstable();
    statuses
}

both_backends!(
    async fn two_partial_refunds_at_once_never_refund_more_than_the_order(db) {
        let (shop, keys) = testing::shop(&db, "a").await;
        let router = app(AppState::new(db.clone()));
        install_loyalty(&router, &keys).await;
        for round in 0..ROUNDS {
            let (customer, order_id) = (format!("ada-{round}"), format!("o-{round}"));
            let (status, body) = call(&router, "POST", "/v1/orders", &keys.secret, Some(order(&order_id, &customer, 10_000))).await;
            assert_eq!(status, StatusCode::CREATED, "{body}");
            let ada = customer_id(&db, shop.id, &customer).await;
            let earned = db.points_balance(shop.id, ada).await.expect("balance");
            assert!(earned > 0, "the order earned points");

            let uri = format!("/v1/orders/{order_id}/refunds");
            let refund = |id: &str| ("POST", uri.clone(), Some(json!({"id": id, "amount": 6_000})));
            let answers =
                all_at_once(&router, &keys.secret, vec![refund(&format!("r1-{round}")), refund(&format!("r2-{round}"))]).await;
            assert_eq!(sorted_statuses(&answers), [200, 422], "round {round}: {answers:?}");
            let refused = answers.iter().find(|(s, _)| *s == StatusCode::UNPROCESSABLE_ENTITY).expect("refused");
            assert_eq!(refused.1["error"]["code"], "invalid_field", "{}", refused.1);

            let stored = db.order(shop.id, &order_id).await.expect("read").expect("order");
            assert_eq!(stored.refunded, 6_000, "round {round}");
            assert_eq!(refunds_recorded(&db, shop.id, &order_id).await, 6_000, "round {round}: one refund recorded");
            let reversed = earned * 6_000 / 10_000;
            assert_eq!(db.points_balance(shop.id, ada).await.expect("balance"), earned - reversed, "round {round}");
            assert_eq!(db.ledger_sum(shop.id, ada).await.expect("sum"), earned - reversed);
        }
    }
);

both_backends!(
    async fn a_repost_racing_a_refund_keeps_the_refund(db) {
        let (shop, keys) = testing::shop(&db, "a").await;
        let router = app(AppState::new(db.clone()));
        for round in 0..ROUNDS {
            let (customer, order_id) = (format!("bo-{round}"), format!("p-{round}"));
            let placed = order(&order_id, &customer, 10_000);
            let (status, body) = call(&router, "POST", "/v1/orders", &keys.secret, Some(placed.clone())).await;
            assert_eq!(status, StatusCode::CREATED, "{body}");
            let mut fulfilled = placed.clone();
            fulfilled["status"] = json!("fulfilled");
            let answers = all_at_once(
                &router,
                &keys.secret,
                vec![
                    ("POST", "/v1/orders".into(), Some(fulfilled)),
                    ("POST", format!("/v1/orders/{order_id}/refunds"), Some(json!({"id": format!("r-{round}"), "amount": 6_000}))),
                ],
            )
            .await;
            assert_eq!(sorted_statuses(&answers), [200, 200], "round {round}: {answers:?}");
            let stored = db.order(shop.id, &order_id).await.expect("read").expect("order");
            assert_eq!((stored.refunded, stored.status.as_str()), (6_000, "fulfilled"), "round {round}");
            let bo = db.customer_by_external_id(shop.id, &customer).await.expect("read").expect("customer");
            assert_eq!(bo.stats.total_spent, 4_000, "round {round}: stats count the refund");
        }
    }
);

both_backends!(
    async fn simultaneous_first_posts_of_one_order_or_customer_store_it_once(db) {
        let (shop, keys) = testing::shop(&db, "a").await;
        let router = app(AppState::new(db.clone()));
        for round in 0..ROUNDS {
            let placed = order(&format!("q-{round}"), &format!("cy-{round}"), 2_500);
            let answers = all_at_once(&router, &keys.secret, vec![("POST", "/v1/orders".into(), Some(placed)); 4]).await;
            assert_eq!(sorted_statuses(&answers), [200, 200, 200, 201], "round {round}: {answers:?}");

            let customer = json!({"external_id": format!("dee-{round}"), "email": format!("dee-{round}@example.com")});
            let answers = all_at_once(&router, &keys.secret, vec![("POST", "/v1/customers".into(), Some(customer)); 4]).await;
            assert_eq!(sorted_statuses(&answers), [200, 200, 200, 201], "round {round}: {answers:?}");
            let ids: std::collections::BTreeSet<&str> =
                answers.iter().map(|(_, body)| body["id"].as_str().expect("id")).collect();
            assert_eq!(ids.len(), 1, "every answer names the one customer: {answers:?}");
        }
        assert_eq!(db.count_customers(shop.id).await.expect("count"), 2 * ROUNDS as i64);
    }
);

both_backends!(
    async fn amounts_out_of_bounds_are_refused_by_field_and_the_customer_stays_usable(db) {
        let (shop, keys) = testing::shop(&db, "a").await;
        let router = app(AppState::new(db.clone()));
        let (status, body) = call(&router, "POST", "/v1/orders", &keys.secret, Some(order("ok-1", "eve", 5_000))).await;
        assert_eq!(status, StatusCode::CREATED, "{body}");

        let line = |quantity: i64, unit_price: i64| json!({"title": "x", "quantity": quantity, "unit_price": unit_price});
        let attempts = [
            (json!({"id": "big-1", "customer": {"external_id": "eve"}, "lines": [line(1, 9_000_000_000_000_000_000)]}), "lines.unit_price"),
            (json!({"id": "big-2", "customer": {"external_id": "eve"}, "lines": [line(10_000_000, 1)]}), "lines.quantity"),
            (json!({"id": "big-3", "customer": {"external_id": "eve"}, "lines": [line(1_000_000, MAX_AMOUNT)]}), "lines"),
            (json!({"id": "big-4", "customer": {"external_id": "eve"}, "lines": [line(1, 1), line(1, MAX_AMOUNT)]}), "lines"),
            (json!({"id": "big-5", "customer": {"external_id": "eve"}, "total": MAX_AMOUNT + 1}), "total"),
            (json!({"id": "big-6", "customer": {"external_id": "eve"}, "lines": [line(1, 1)], "shipping": i64::MAX}), "shipping"),
            (json!({"id": "big-7", "customer": {"external_id": "eve"}, "lines": [line(1, 1)], "discount": 5}), "total"),
        ];
        for (body, field) in attempts {
            let (status, answer) = call(&router, "POST", "/v1/orders", &keys.secret, Some(body.clone())).await;
            assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body} → {answer}");
            let message = answer["error"]["message"].as_str().unwrap_or_default();
            assert!(message.starts_with(&format!("{field}:")), "{body} → {answer}");
        }

        // Times too: far outside 1970–9999 they would overflow differences of times.
        let mut ancient = order("t-1", "eve", 100);
        ancient["placed_at"] = json!(i64::MIN);
        assert_eq!(call(&router, "POST", "/v1/orders", &keys.secret, Some(ancient)).await.0, StatusCode::UNPROCESSABLE_ENTITY);
        let born = json!({"external_id": "eve", "created_at": i64::MIN});
        let (status, body) = call(&router, "POST", "/v1/customers", &keys.secret, Some(born)).await;
        assert_eq!((status, body["error"]["message"].as_str().map(|m| m.starts_with("created_at:"))), (StatusCode::UNPROCESSABLE_ENTITY, Some(true)), "{body}");
        let uri = format!("/v1/recommendations/report?until={}", i64::MIN);
        assert_eq!(call(&router, "GET", &uri, &keys.secret, None).await.0, StatusCode::UNPROCESSABLE_ENTITY);

        // A lifetime spend past i64: stored history near the limit, then one more order.
        let eve = customer_id(&db, shop.id, "eve").await;
        sqlx::query(
            "INSERT INTO orders (shop_id, id, customer_id, status, currency, subtotal, discount, shipping, tax, total, \
             refunded, coupon_codes, placed_at, updated_at) VALUES ($1, 'history', $2, 'paid', 'USD', 0, 0, 0, 0, $3, 0, '[]', 1, 1)",
        )
        .bind(shop.id)
        .bind(eve)
        .bind(i64::MAX - 10_000)
        .execute(db.pool())
        .await
        .expect("stored history");
        let (status, answer) = call(&router, "POST", "/v1/orders", &keys.secret, Some(order("ok-2", "eve", 20_000))).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{answer}");
        assert!(answer["error"]["message"].as_str().is_some_and(|m| m.starts_with("total:")), "{answer}");
        assert!(db.order(shop.id, "ok-2").await.expect("read").is_none(), "the refused order changed nothing");

        sqlx::query("DELETE FROM orders WHERE shop_id = $1 AND id = 'history'").bind(shop.id).execute(db.pool()).await.expect("delete");
        let (status, body) = call(&router, "POST", "/v1/orders", &keys.secret, Some(order("ok-2", "eve", 20_000))).await;
        assert_eq!(status, StatusCode::CREATED, "the customer stays usable: {body}");
        let (status, body) = call(&router, "GET", "/v1/customers/eve", &keys.secret, None).await;
        assert_eq!((status, body["stats"]["total_spent"].as_i64()), (StatusCode::OK, Some(25_000)), "{body}");
    }
);

both_backends!(
    async fn an_order_in_another_currency_is_refused_and_nothing_is_stored(db) {
        let (shop, keys) = testing::shop(&db, "a").await;
        let router = app(AppState::new(db.clone()));
        let mut cny = order("cny-1", "li", 43_200);
        cny["currency"] = json!("CNY");
        let (status, body) = call(&router, "POST", "/v1/orders", &keys.secret, Some(cny)).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
        assert_eq!(body["error"]["code"], "currency_mismatch");
        let message = body["error"]["message"].as_str().unwrap_or_default();
        assert!(message.contains("CNY") && message.contains("USD"), "{message}");
        assert!(db.order(shop.id, "cny-1").await.expect("read").is_none());
        assert!(db.customer_by_external_id(shop.id, "li").await.expect("read").is_none());
        let mut usd = order("usd-1", "li", 43_200);
        usd["currency"] = json!("USD");
        assert_eq!(call(&router, "POST", "/v1/orders", &keys.secret, Some(usd)).await.0, StatusCode::CREATED);
    }
);

both_backends!(
    async fn ids_leave_the_api_as_strings(db) {
        let (shop, keys) = testing::shop(&db, "a").await;
        let router = app(AppState::new(db.clone()));
        let (_, created) = call(&router, "POST", "/v1/customers", &keys.secret, Some(json!({"external_id": "fay"}))).await;
        let fay = customer_id(&db, shop.id, "fay").await;
        assert_eq!(created["id"], json!(fay.to_string()), "{created}");
        let (_, placed) = call(&router, "POST", "/v1/orders", &keys.secret, Some(order("s-1", "fay", 1_000))).await;
        assert_eq!(placed["customer_id"], json!(fay.to_string()), "{placed}");
        let (_, fetched) = call(&router, "GET", "/v1/orders/s-1", &keys.secret, None).await;
        assert_eq!(fetched["customer_id"], json!(fay.to_string()));

        let members: std::collections::BTreeSet<String> = ["vip".to_owned()].into();
        db.set_segments(shop.id, fay, "seg", &members).await.expect("segment");
        let (status, page) = call(&router, "GET", "/v1/segments/vip/members?limit=1", &keys.secret, None).await;
        assert_eq!(status, StatusCode::OK, "{page}");
        assert_eq!(page["members"][0]["id"], json!(fay.to_string()));
        assert_eq!(page["next_after"], json!(fay.to_string()));

        db.enqueue_job(shop.id, "points.expire", &json!({}), now_ms(), "expire:ids").await.expect("job");
        let (_, jobs) = call(&router, "GET", "/v1/jobs", &keys.secret, None).await;
        assert!(jobs[0]["id"].is_string(), "{jobs}");
    }
);

both_backends!(
    async fn a_job_whose_worker_died_in_its_last_attempt_fails_and_can_be_retried(db) {
        let (shop, keys) = testing::shop(&db, "a").await;
        let router = app(AppState::new(db.clone()));
        assert!(db.enqueue_job(shop.id, "points.expire", &json!({}), 0, "expire:dies").await.expect("enqueue"));
        let lease_ms = 1_000;
        let mut now = now_ms();
        // Each attempt's worker dies: the lease runs out and the next worker takes it.
        for attempt in 1..=MAX_ATTEMPTS {
            let job = db.lease_job_at(&format!("w{attempt}"), now, lease_ms).await.expect("lease").expect("due");
            assert_eq!(job.attempts, attempt);
            now += lease_ms + 1;
        }
        assert!(db.lease_job_at("w-late", now, lease_ms).await.expect("lease").is_none(), "no sixth attempt");
        let (_, jobs) = call(&router, "GET", "/v1/jobs", &keys.secret, None).await;
        assert_eq!(jobs[0]["status"], "failed", "not running forever: {jobs}");
        assert!(jobs[0]["last_error"].as_str().is_some_and(|e| e.contains("stopped")), "{jobs}");

        let id = jobs[0]["id"].as_str().expect("id");
        let (status, body) = call(&router, "POST", &format!("/v1/jobs/{id}/retry"), &keys.secret, None).await;
        assert_eq!(status, StatusCode::ACCEPTED, "{body}");
        let job = db.lease_job_at("w-after", now_ms(), lease_ms).await.expect("lease").expect("due again");
        assert_eq!(job.attempts, 1);
    }
);

both_backends!(
    async fn a_shop_cannot_queue_recomputes_without_end(db) {
        let (shop, keys) = testing::shop(&db, "a").await;
        let router = app(AppState::new(db.clone()));
        let (status, body) = call(&router, "POST", "/v1/segments/recompute", &keys.secret, None).await;
        assert_eq!(status, StatusCode::ACCEPTED, "{body}");
        for _ in 0..5 {
            let (status, body) = call(&router, "POST", "/v1/segments/recompute", &keys.secret, None).await;
            assert_eq!((status, body["error"]["code"].as_str()), (StatusCode::CONFLICT, Some("conflict")), "{body}");
        }
        let queued = db.jobs(shop.id, 100).await.expect("jobs").iter().filter(|j| j.status == "queued").count();
        assert_eq!(queued, 1);
    }
);

both_backends!(
    async fn a_shop_with_a_long_backlog_does_not_hold_up_another_shops_job(db) {
        let (busy, _) = testing::shop(&db, "busy").await;
        let (quiet, _) = testing::shop(&db, "quiet").await;
        let now = now_ms();
        for n in 0..40 {
            let run_at = now - 60_000 + n;
            assert!(db.enqueue_job(busy.id, "points.expire", &json!({}), run_at, &format!("backlog:{n}")).await.expect("job"));
        }
        assert!(db.enqueue_job(quiet.id, "points.expire", &json!({}), now, "quiet").await.expect("job"));
        let scheduler = Scheduler::new(db.clone(), patron::plugins::PluginHost::new(db.clone(), None));
        let done = |jobs: Vec<patron::store::jobs::JobStatus>| jobs.iter().filter(|j| j.status == "done").count();
        for run in 1..=FAIR_STREAK + 1 {
            assert!(matches!(scheduler.run_due(now).await.expect("run"), Ran::Done { .. }));
            let quiet_done = done(db.jobs(quiet.id, 10).await.expect("jobs"));
            if run <= FAIR_STREAK {
                assert_eq!(quiet_done, 0, "the oldest jobs go first until the busy shop had its streak");
            } else {
                assert_eq!(quiet_done, 1, "the quiet shop's turn comes after {FAIR_STREAK} of the busy shop's");
            }
        }
        assert_eq!(done(db.jobs(busy.id, 100).await.expect("jobs")), FAIR_STREAK as usize);
    }
);

both_backends!(
    async fn journey_work_has_its_own_worker_beside_nightly_batch_runs(db) {
        let (shop, _) = testing::shop(&db, "a").await;
        let scheduler = Scheduler::new(db.clone(), patron::plugins::PluginHost::new(db.clone(), None));
        let now = now_ms();
        assert!(db.enqueue_job(shop.id, RECOMPUTE_SEGMENTS, &json!({}), now - 1, "recompute").await.expect("job"));
        assert_eq!(scheduler.run_in(Lane::Quick, now).await.expect("run"), Ran::Nothing, "a batch run is not quick");
        assert!(db.enqueue_job(shop.id, TIMER_JOB, &json!({}), now, "timer").await.expect("job"));
        let quick = scheduler.run_in(Lane::Quick, now).await.expect("run");
        assert!(matches!(&quick, Ran::Done { kind } | Ran::Failed { kind, .. } if kind == TIMER_JOB), "{quick:?}");
        let batch = scheduler.run_in(Lane::Batch, now).await.expect("run");
        assert_eq!(batch, Ran::Done { kind: RECOMPUTE_SEGMENTS.to_owned() });
        assert_eq!(scheduler.run_in(Lane::Batch, now).await.expect("run"), Ran::Nothing);
    }
);

both_backends!(
    async fn every_rejection_is_a_json_error(db) {
        let (_, keys) = testing::shop(&db, "a").await;
        let router = app(AppState::new(db.clone()));
        let cases = [
            ("GET", "/v1/segments/vip/members?limit=many", StatusCode::UNPROCESSABLE_ENTITY, "invalid_field"),
            ("GET", "/v1/no-such-thing", StatusCode::NOT_FOUND, "not_found"),
            ("DELETE", "/v1/orders", StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed"),
            ("POST", "/v1/orders", StatusCode::BAD_REQUEST, "malformed_json"),
        ];
        for (method, uri, status, code) in cases {
            let mut request = request(method, uri, Some(&keys.secret), None);
            if method == "POST" {
                *request.body_mut() = Body::from("{not json");
            }
            let (got, body, headers) = send(&router, request).await;
            assert_eq!((got, body["error"]["code"].as_str()), (status, Some(code)), "{method} {uri}: {body}");
            assert!(body["error"]["message"].is_string(), "{body}");
            assert_eq!(headers["content-type"], "application/json", "{method} {uri}");
        }
    }
);

both_backends!(
    async fn segment_csv_cells_cannot_run_as_formulas(db) {
        let (shop, keys) = testing::shop(&db, "a").await;
        let router = app(AppState::new(db.clone()));
        let mallory = json!({"external_id": "=cmd|' /C calc'!A0", "email": "m@example.com", "first_name": "@SUM(A1)", "last_name": "+1-2"});
        assert_eq!(call(&router, "POST", "/v1/customers", &keys.secret, Some(mallory)).await.0, StatusCode::CREATED);
        let id = customer_id(&db, shop.id, "=cmd|' /C calc'!A0").await;
        db.set_segments(shop.id, id, "seg", &["vip".to_owned()].into()).await.expect("segment");
        let (status, csv) = call(&router, "GET", "/v1/segments/vip/members?format=csv", &keys.secret, None).await;
        assert_eq!(status, StatusCode::OK);
        let csv = csv.as_str().expect("csv text").to_owned();
        let row = csv.lines().nth(1).expect("a member row");
        assert!(row.starts_with("'=cmd|' /C calc'!A0,m@example.com,'@SUM(A1),'+1-2,"), "{row}");
    }
);

both_backends!(
    async fn metrics_need_the_token_or_a_caller_on_this_machine(db) {
        let mut state = AppState::new(db.clone());
        let from = |ip: [u8; 4]| {
            let mut request = request("GET", "/metrics", None, None);
            request.extensions_mut().insert(ConnectInfo(SocketAddr::from((ip, 40_000))));
            request
        };
        let router = app(state.clone());
        assert_eq!(send(&router, from([127, 0, 0, 1])).await.0, StatusCode::OK, "loopback, no token configured");
        let (status, body, _) = send(&router, from([203, 0, 113, 9])).await;
        assert_eq!((status, body["error"]["code"].as_str()), (StatusCode::UNAUTHORIZED, Some("metrics_token_required")));
        assert_eq!(send(&router, request("GET", "/metrics", None, None)).await.0, StatusCode::UNAUTHORIZED);

        state.metrics_token = Some("s3cret-metrics".into());
        let router = app(state);
        assert_eq!(send(&router, from([127, 0, 0, 1])).await.0, StatusCode::UNAUTHORIZED, "a token, once set, is asked of all");
        assert_eq!(send(&router, request("GET", "/metrics", Some("wrong"), None)).await.0, StatusCode::UNAUTHORIZED);
        let (status, body, _) = send(&router, request("GET", "/metrics", Some("s3cret-metrics"), None)).await;
        assert_eq!(status, StatusCode::OK);
        assert!(body.as_str().is_some_and(|text| text.contains("patron_")), "{body}");
    }
);

both_backends!(
    async fn a_retried_redemption_with_its_idempotency_key_spends_once(db) {
        let (shop, keys) = testing::shop(&db, "a").await;
        let router = app(AppState::new(db.clone()));
        install_loyalty(&router, &keys).await;
        let (status, body) = call(&router, "POST", "/v1/orders", &keys.secret, Some(order("r-1", "gus", 200_000))).await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        let gus = customer_id(&db, shop.id, "gus").await;
        let earned = db.points_balance(shop.id, gus).await.expect("balance");
        let token = customer_token(&shop.secret_hash, "gus").expect("token");
        let uri = format!("/v1/rewards/redeem?key={}", shop.publishable_key);
        let state_uri = format!("/v1/widget/state?key={}&customer_id=gus&customer_token={token}", shop.publishable_key);
        let (_, panel, _) = send(&router, request("GET", &state_uri, None, None)).await;
        let rewards = panel["member"]["rewards"].as_array().expect("rewards").clone();
        let reward = rewards.iter().rfind(|r| r["points"].as_i64().is_some_and(|p| p <= earned / 4)).expect("affordable");
        let cost = reward["points"].as_i64().expect("cost");
        let redeem = |key: Option<&str>| {
            let mut body = json!({"customer_id": "gus", "customer_token": token, "reward_id": reward["id"]});
            if let Some(key) = key {
                body["idempotency_key"] = json!(key);
            }
            body
        };

        let (status, first) = call(&router, "POST", &uri, "", Some(redeem(Some("k-1")))).await;
        assert_eq!(status, StatusCode::OK, "{first}");
        let (status, again) = call(&router, "POST", &uri, "", Some(redeem(Some("k-1")))).await;
        assert_eq!(status, StatusCode::OK, "{again}");
        assert_eq!(again["coupon"]["code"], first["coupon"]["code"], "the retry answers with the first coupon");
        assert_eq!(db.points_balance(shop.id, gus).await.expect("balance"), earned - cost, "spent once");

        // The header works too, and two retries racing each other still spend once.
        let with_header = || {
            let mut request = request("POST", &uri, None, Some(&redeem(None)));
            request.headers_mut().insert("idempotency-key", "k-2".parse().expect("header"));
            request
        };
        let (a, b) = tokio::join!(send(&router, with_header()), send(&router, with_header()));
        assert_eq!((a.0, b.0), (StatusCode::OK, StatusCode::OK), "{} {}", a.1, b.1);
        assert_eq!(a.1["coupon"]["code"], b.1["coupon"]["code"]);
        assert_eq!(db.points_balance(shop.id, gus).await.expect("balance"), earned - 2 * cost);

        let (status, body) = call(&router, "POST", &uri, "", Some(redeem(Some(&"k".repeat(300))))).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
        assert_eq!(db.points_balance(shop.id, gus).await.expect("balance"), earned - 2 * cost);
    }
);

both_backends!(
    async fn a_backdated_order_cannot_redeem_an_expired_coupon(db) {
        let (shop, keys) = testing::shop(&db, "a").await;
        let router = app(AppState::new(db.clone()));
        call(&router, "POST", "/v1/customers", &keys.secret, Some(json!({"external_id": "hal"}))).await;
        let hal = customer_id(&db, shop.id, "hal").await;
        let day = 24 * 60 * 60 * 1000;
        let spec = CouponSpec {
            discount: Discount::Percent(10),
            currency: "USD".into(),
            minimum_spend: 0,
            expires_at: Some(now_ms() - day),
            customer_id: Some(hal),
            source: "test".into(),
        };
        let coupon = db.issue_coupon(shop.id, &spec).await.expect("issue");
        let mut backdated = order("old-1", "hal", 5_000);
        backdated["placed_at"] = json!(now_ms() - 3 * day);
        backdated["coupon_codes"] = json!([coupon.code]);
        let (status, body) = call(&router, "POST", "/v1/orders", &keys.secret, Some(backdated)).await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        assert_eq!(body["loyalty"]["coupon_refusals"], json!([{"code": coupon.code, "reason": "expired"}]), "{body}");
    }
);

both_backends!(
    async fn a_plugin_call_awards_at_most_its_cap_in_points(db) {
        let (shop, keys) = testing::shop(&db, "a").await;
        let router = app(AppState::new(db.clone()));
        call(&router, "POST", "/v1/customers", &keys.secret, Some(json!({"external_id": "ivy"}))).await;
        let ivy = customer_id(&db, shop.id, "ivy").await;
        let award = Action::AwardPoints(PointsAward { amount: MAX_AWARD, reason: "flood".into() });
        let actions = vec![award; 50];
        let actor = Actor { plugin: "greedy", label: "greedy@1.0.0".into(), points_expiry_days: Some(i64::MAX) };
        let mut w = db.write().await.expect("tx");
        let applied = apply_in(&mut w.tx, &shop, ivy, &actor, Trigger::Batch, &actions).await.expect("applied");
        w.commit().await.expect("commit");
        assert_eq!(applied.points_awarded, MAX_AWARD_PER_CALL);
        assert_eq!(applied.refused.len(), 50 - (MAX_AWARD_PER_CALL / MAX_AWARD) as usize);
        assert_eq!(db.points_balance(shop.id, ivy).await.expect("balance"), MAX_AWARD_PER_CALL);
    }
);

both_backends!(
    async fn unknown_publishable_keys_are_remembered_and_not_looked_up_again(db) {
        let (shop, _) = testing::shop(&db, "a").await;
        let router = app(AppState::new(db.clone()));
        let batch = json!({"anonymous_id": "a", "events": [{"id": "e1", "kind": "page_view", "url": "http://shop.test/"}]});
        let uri = |key: &str| format!("/v1/events?key={key}");
        let (status, body, _) = send(&router, request("POST", &uri("pk_made_up"), None, Some(&batch))).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
        // The key now exists, but the host remembers it did not: no database read for it
        // until the cache entry expires (seconds).
        sqlx::query("UPDATE shops SET publishable_key = 'pk_made_up' WHERE id = $1")
            .bind(shop.id)
            .execute(db.pool())
            .await
            .expect("rename key");
        assert_eq!(send(&router, request("POST", &uri("pk_made_up"), None, Some(&batch))).await.0, StatusCode::UNAUTHORIZED);
        let fresh = app(AppState::new(db.clone()));
        assert_eq!(send(&fresh, request("POST", &uri("pk_made_up"), None, Some(&batch))).await.0, StatusCode::OK);
    }
);

both_backends!(
    async fn a_flood_from_one_key_or_ip_gets_429_with_retry_after(db) {
        use patron::api::rate_limit::{Quota, RateLimits};
        let (flooder, _) = testing::shop(&db, "flooder").await;
        let (other, _) = testing::shop(&db, "other").await;
        let mut state = AppState::new(db.clone());
        state.rate_limits = RateLimits::new(Quota { per_second: 1.0, burst: 5.0 }, Quota::per_second(1_000));
        let router = app(state);
        let batch = |n: usize| json!({"anonymous_id": "a", "events": [{"id": format!("e{n}"), "kind": "page_view", "url": "http://shop.test/"}]});
        let uri = |key: &str| format!("/v1/events?key={key}");
        let mut statuses = Vec::new();
        let mut retry_after = None;
        for n in 0..8 {
            let (status, body, headers) = send(&router, request("POST", &uri(&flooder.publishable_key), None, Some(&batch(n)))).await;
            if status == StatusCode::TOO_MANY_REQUESTS {
                assert_eq!(body["error"]["code"], "rate_limited", "{body}");
                retry_after = headers.get("retry-after").and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<u64>().ok());
            }
            statuses.push(status.as_u16());
        }
        assert_eq!(statuses, [200, 200, 200, 200, 200, 429, 429, 429], "the burst, then refusals");
        assert_eq!(retry_after, Some(1));
        let (status, body, _) = send(&router, request("POST", &uri(&other.publishable_key), None, Some(&batch(0)))).await;
        assert_eq!(status, StatusCode::OK, "another shop's key is not slowed: {body}");

        // Per client IP, whatever key it uses.
        let mut state = AppState::new(db.clone());
        state.rate_limits = RateLimits::new(Quota::per_second(1_000), Quota { per_second: 1.0, burst: 2.0 });
        let router = app(state);
        let from = |ip: [u8; 4], key: &str, n: usize| {
            let mut request = request("POST", &uri(key), None, Some(&batch(n)));
            request.extensions_mut().insert(ConnectInfo(SocketAddr::from((ip, 5_000))));
            request
        };
        let attacker = [198, 51, 100, 1];
        assert_eq!(send(&router, from(attacker, &flooder.publishable_key, 10)).await.0, StatusCode::OK);
        assert_eq!(send(&router, from(attacker, &other.publishable_key, 11)).await.0, StatusCode::OK);
        assert_eq!(send(&router, from(attacker, &other.publishable_key, 12)).await.0, StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(send(&router, from([198, 51, 100, 2], &other.publishable_key, 13)).await.0, StatusCode::OK);
    }
);

both_backends!(
    async fn a_renewed_lease_keeps_a_long_job_from_a_second_worker(db) {
        let (shop, _) = testing::shop(&db, "a").await;
        assert!(db.enqueue_job(shop.id, "points.expire", &json!({}), 0, "expire:long").await.expect("enqueue"));
        let (now, lease_ms) = (now_ms(), 1_000);
        let job = db.lease_job_at("w1", now, lease_ms).await.expect("lease").expect("due");
        assert!(db.renew_lease(&job, "w1", now + 10 * lease_ms).await.expect("renew"));
        assert!(db.lease_job_at("w2", now + 2 * lease_ms, lease_ms).await.expect("lease").is_none(), "still w1's");
        assert!(!db.renew_lease(&job, "w2", now + 20 * lease_ms).await.expect("renew"), "only the holder renews");
        assert!(db.complete_job(&job, "w1").await.expect("complete"));
    }
);

/// Sends one request on `stream` and reads its response: the status and whether the
/// server said it closes the connection.
async fn exchange(stream: &mut tokio::net::TcpStream, head: &str, body: &str) -> (u16, bool) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let head = format!(
        "{head}\r\nhost: 127.0.0.1\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).await.expect("write");
    // The body a moment later, as clients that write headers and body separately send it:
    // a server that answers before reading it can only close the connection.
    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    stream.write_all(body.as_bytes()).await.expect("write");
    let mut received = Vec::new();
    let mut buffer = [0u8; 4096];
    loop {
        let n = stream.read(&mut buffer).await.expect("read");
        assert!(n > 0, "the server closed the connection before answering: {}", String::from_utf8_lossy(&received));
        received.extend_from_slice(&buffer[..n]);
        let text = String::from_utf8_lossy(&received).to_lowercase();
        let Some(end) = text.find("\r\n\r\n") else { continue };
        let length = text[..end]
            .lines()
            .find_map(|line| line.strip_prefix("content-length:"))
            .and_then(|v| v.trim().parse::<usize>().ok())
            .unwrap_or(0);
        if received.len() >= end + 4 + length {
            let status = text[9..12].parse().expect("status");
            return (status, text[..end].contains("connection: close"));
        }
    }
}

#[tokio::test]
async fn a_refused_batch_leaves_the_connection_open_for_the_next_request() {
    use patron::api::rate_limit::{Quota, RateLimits};
    let db = testing::fresh_db(testing::Backend::Sqlite).await;
    let (shop, _) = testing::shop(&db, "flooder").await;
    let mut state = AppState::new(db.clone());
    state.rate_limits = RateLimits::new(Quota { per_second: 0.001, burst: 1.0 }, Quota::per_second(1_000));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let address = listener.local_addr().expect("address");
    let service = app(state).into_make_service_with_connect_info::<SocketAddr>();
    tokio::spawn(async move { axum::serve(listener, service).await });
    let mut stream = tokio::net::TcpStream::connect(address).await.expect("connect");
    let head = format!("POST /v1/events?key={} HTTP/1.1", shop.publishable_key);
    let batch = |n: usize| {
        json!({"anonymous_id": "a", "events": [{"id": format!("e{n}"), "kind": "page_view", "url": "http://shop.test/"}]}).to_string()
    };
    assert_eq!(exchange(&mut stream, &head, &batch(0)).await, (200, false), "the bucket's one token");
    // Refused, but its body is read, so the connection carries the next request.
    assert_eq!(exchange(&mut stream, &head, &batch(1)).await, (429, false));
    assert_eq!(exchange(&mut stream, &head, &batch(2)).await, (429, false));
    assert_eq!(exchange(&mut stream, "GET /health HTTP/1.1", "").await.0, 200, "still open");
}
