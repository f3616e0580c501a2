//! Segments through the host: the rules plugin's three-level membership computed by a
//! scheduled recompute, membership history, sizes over time, member export; a stats-only
//! segmenter's batch path agreeing with its whole-profile path; and the scheduler's
//! points expiry — on both backends.

use std::collections::BTreeSet;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use http_body_util::BodyExt;
use patron::plugins::PluginHost;
use patron::scheduler::{EXPIRE_POINTS, RECOMPUTE_SEGMENTS, Ran, Scheduler};
use patron::store::customers::CustomerInput;
use patron::store::orders::OrderInput;
use patron::store::points::{Entry, EntryKind};
use patron::store::shops::Shop;
use patron::store::{Db, now_ms};
use patron::{AppState, app, both_backends, testing};
use serde_json::json;
use tower::ServiceExt;

const DAY_MS: i64 = 24 * 60 * 60 * 1000;

fn membership_rules() -> serde_json::Value {
    json!({"rules": [
        {"name": "super", "group": "membership", "when": {"all": [
            {"days-since-last-order": {"lte": 365}}, {"orders-per-year": {"gte": 5}}, {"spent-per-year": {"gte": 100000}}
        ]}},
        {"name": "core", "group": "membership", "when": {"all": [
            {"days-since-last-order": {"lte": 365}},
            {"any": [{"orders-per-year": {"gte": 3}}, {"spent-per-year": {"gte": 50000}}]}
        ]}},
        {"name": "regular", "group": "membership"},
        {"name": "dormant", "when": {"days-since-last-order": {"gt": 90}}}
    ]})
}

/// Installs and enables the workspace plugin `package` with `config`, granting what it asks for.
async fn install(plugins: &PluginHost, shop: &Shop, package: &str, config: serde_json::Value) {
    let manifest_path = format!("{}/../plugins/{package}/patron.toml", env!("CARGO_MANIFEST_DIR"));
    let manifest =
        patron_runtime::Manifest::from_toml(&std::fs::read_to_string(manifest_path).expect("manifest")).expect("valid");
    let grants = manifest.imports.iter().map(|c| c.name().to_owned()).collect();
    let wasm = patron_runtime::testing::plugin_wasm(package).expect("plugin builds");
    plugins.install(shop.id, wasm, manifest, grants, Some(config), true).await.expect("install");
}

/// `count` orders of `amount` each for `customer`, the last `last_days_ago` days ago,
/// spaced 20 days apart.
async fn orders(db: &Db, shop: &Shop, customer: &str, count: i64, amount: i64, last_days_ago: i64) {
    for n in 0..count {
        let placed_at = now_ms() - (last_days_ago + 20 * n) * DAY_MS;
        let input: OrderInput = serde_json::from_value(json!({
            "id": format!("{customer}-{n}"), "customer": {"external_id": customer}, "placed_at": placed_at,
            "lines": [{"title": "Beans", "quantity": 1, "unit_price": amount}]
        }))
        .expect("order");
        let (order, customer) = input.validate(&shop.currency).expect("valid");
        db.upsert_order(shop.id, order, customer.as_ref()).await.expect("stored");
    }
}

async fn run_job(scheduler: &Scheduler, db: &Db, shop: &Shop, kind: &str) {
    let now = now_ms();
    assert!(db.enqueue_job(shop.id, kind, &json!({}), now, &format!("{kind}:test:{now}")).await.expect("enqueue"));
    assert_eq!(scheduler.run_once().await.expect("run"), Ran::Done { kind: kind.to_owned() });
}

async fn segments(db: &Db, shop: &Shop, customer: &str) -> BTreeSet<String> {
    let id = db.customer_by_external_id(shop.id, customer).await.expect("read").expect("exists").id;
    db.current_segments(shop.id, id).await.expect("segments").into_iter().collect()
}

fn set(names: &[&str]) -> BTreeSet<String> {
    names.iter().map(|s| (*s).to_owned()).collect()
}

both_backends!(
    async fn three_level_membership_from_a_scheduled_recompute(db) {
        let (shop, keys) = testing::shop(&db, "a").await;
        let plugins = PluginHost::new(db.clone(), None);
        install(&plugins, &shop, "rules", membership_rules()).await;
        orders(&db, &shop, "ann", 6, 25_000, 5).await; // 6 orders, 1500.00 in the last year
        orders(&db, &shop, "bob", 3, 5_000, 10).await; // 3 orders a year
        orders(&db, &shop, "cat", 1, 2_000, 30).await; // one small order
        orders(&db, &shop, "dan", 2, 40_000, 400).await; // big spender, lapsed
        let scheduler = Scheduler::new(db.clone(), plugins.clone());
        run_job(&scheduler, &db, &shop, RECOMPUTE_SEGMENTS).await;

        assert_eq!(segments(&db, &shop, "ann").await, set(&["super"]));
        assert_eq!(segments(&db, &shop, "bob").await, set(&["core"]));
        assert_eq!(segments(&db, &shop, "cat").await, set(&["regular"]));
        assert_eq!(segments(&db, &shop, "dan").await, set(&["dormant", "regular"]));
        let before_purchase = now_ms();

        // Dan buys again: he leaves "dormant" at once (customer change), and the history keeps his stint.
        let input: OrderInput = serde_json::from_value(json!({
            "id": "dan-again", "customer": {"external_id": "dan"}, "lines": [{"title": "Beans", "quantity": 1, "unit_price": 1_000}]
        }))
        .expect("order");
        let (order, customer) = input.validate(&shop.currency).expect("valid");
        db.upsert_order(shop.id, order, customer.as_ref()).await.expect("stored");
        let dan = db.customer_by_external_id(shop.id, "dan").await.expect("read").expect("exists");
        plugins.segment_customer(&shop, dan.id).await.expect("re-segment");
        assert!(!segments(&db, &shop, "dan").await.contains("dormant"));
        let sizes_then = db.segment_sizes(shop.id, before_purchase).await.expect("sizes");
        let sizes_now = db.segment_sizes(shop.id, now_ms()).await.expect("sizes");
        let size = |sizes: &[patron::store::segments::SegmentSize], name: &str| {
            sizes.iter().find(|s| s.segment == name).map_or(0, |s| s.members)
        };
        assert_eq!((size(&sizes_then, "dormant"), size(&sizes_now, "dormant")), (1, 0));

        // Cat buys big: the nightly (batch) recompute moves her from regular to core.
        let input: OrderInput = serde_json::from_value(json!({
            "id": "cat-big", "customer": {"external_id": "cat"}, "lines": [{"title": "Grinder", "quantity": 1, "unit_price": 60_000}]
        }))
        .expect("order");
        let (order, customer) = input.validate(&shop.currency).expect("valid");
        db.upsert_order(shop.id, order, customer.as_ref()).await.expect("stored");
        run_job(&scheduler, &db, &shop, RECOMPUTE_SEGMENTS).await;
        assert_eq!(segments(&db, &shop, "cat").await, set(&["core"]));
        assert_eq!(segments(&db, &shop, "ann").await, set(&["super"]), "an unchanged membership is left alone");
        let sizes_now = db.segment_sizes(shop.id, now_ms()).await.expect("sizes");
        assert_eq!(size(&sizes_now, "regular"), 0, "cat's stint in regular ended: {sizes_now:?}");

        // The merchant exports a segment.
        let request = Request::get("/v1/segments/core/members?format=csv")
            .header("authorization", format!("Bearer {}", keys.secret))
            .body(Body::empty())
            .expect("request");
        let response = app(AppState::new(db.clone())).oneshot(request).await.expect("response");
        assert_eq!(response.status(), StatusCode::OK);
        let csv = String::from_utf8(response.into_body().collect().await.expect("body").to_bytes().to_vec()).expect("utf8");
        let mut rows: Vec<&str> = csv.lines().skip(1).map(|l| l.split(',').next().unwrap_or_default()).collect();
        rows.sort_unstable();
        assert_eq!(rows, ["bob", "cat", "dan"], "one row per current member: {csv}");
        assert_eq!(rows.len() as i64, size(&sizes_now, "core"));
    }
);

both_backends!(
    async fn a_batch_recompute_on_the_stats_path_matches_the_profile_path(db) {
        let (shop, _) = testing::shop(&db, "a").await;
        let plugins = PluginHost::new(db.clone(), None);
        // segment-example exports `stats-segmentation`: batch recompute takes that path.
        install(&plugins, &shop, "segment-example", json!({"vip-spend": 50_000, "lapsed-days": 60})).await;
        orders(&db, &shop, "ann", 1, 60_000, 10).await;
        orders(&db, &shop, "bob", 3, 5_000, 100).await;
        orders(&db, &shop, "cat", 1, 2_000, 5).await;
        orders(&db, &shop, "dan", 2, 40_000, 400).await;
        let eve = CustomerInput { external_id: Some("eve".into()), ..CustomerInput::default() };
        db.upsert_customer(shop.id, &eve).await.expect("customer");
        let scheduler = Scheduler::new(db.clone(), plugins.clone());
        run_job(&scheduler, &db, &shop, RECOMPUTE_SEGMENTS).await;

        let expected: [(&str, &[&str]); 5] = [
            ("ann", &["new", "vip"]),
            ("bob", &["lapsed"]),
            ("cat", &["new"]),
            ("dan", &["lapsed", "vip"]),
            ("eve", &["prospect"]),
        ];
        for (customer, wanted) in expected {
            assert_eq!(segments(&db, &shop, customer).await, set(wanted), "{customer} after the batch recompute");
        }
        // One customer at a time, through `segment` with whole profiles: nothing moves.
        for (customer, wanted) in expected {
            let id = db.customer_by_external_id(shop.id, customer).await.expect("read").expect("exists").id;
            plugins.segment_customer(&shop, id).await.expect("re-segment");
            assert_eq!(segments(&db, &shop, customer).await, set(wanted), "{customer} after `segment`");
        }
    }
);

both_backends!(
    async fn the_scheduler_expires_points_and_queues_the_next_run(db) {
        let (shop, _) = testing::shop(&db, "a").await;
        let input = CustomerInput { external_id: Some("c1".into()), ..CustomerInput::default() };
        let c = db.upsert_customer(shop.id, &input).await.expect("customer").0.id;
        let earn = |key: &str, delta: i64, expires_at: i64| Entry {
            customer_id: c,
            delta,
            kind: EntryKind::Earn,
            reason: "test",
            order_id: None,
            source: "test",
            idempotency_key: key.to_owned(),
            expires_at: Some(expires_at),
        };
        db.append_points(shop.id, &earn("old", 120, now_ms() - DAY_MS)).await.expect("earn");
        db.append_points(shop.id, &earn("new", 80, now_ms() + 30 * DAY_MS)).await.expect("earn");
        let scheduler = Scheduler::new(db.clone(), PluginHost::new(db.clone(), None));
        let rival = Scheduler::new(db.clone(), PluginHost::new(db.clone(), None));
        let now = now_ms();
        db.enqueue_job(shop.id, EXPIRE_POINTS, &json!({}), now, "expire:test").await.expect("enqueue");
        let (a, b) = tokio::join!(scheduler.run_once(), rival.run_once());
        let ran = [a.expect("run"), b.expect("run")];
        assert_eq!(ran.iter().filter(|r| matches!(r, Ran::Done { .. })).count(), 1, "one worker runs the job: {ran:?}");
        assert_eq!(db.points_balance(shop.id, c).await.expect("balance"), 80);
        let jobs = db.jobs(shop.id, 10).await.expect("jobs");
        assert!(jobs.iter().any(|j| j.kind == EXPIRE_POINTS && j.status == "queued" && j.run_at > now), "next run queued: {jobs:?}");
        assert_eq!(scheduler.run_once().await.expect("run"), Ran::Nothing, "the next run is not due yet");
    }
);
