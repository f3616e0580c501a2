//! Identity on both backends: merges that move everything (points, coupons, tags,
//! segments, messages, journey timers) so a later refund reverses exactly the merged
//! order's points; automatic merges by email and E.164 phone; idempotent and racing
//! merges; the merged-away id, token and email resolving to the survivor.

use std::collections::BTreeSet;

use axum::http::StatusCode;
use patron::auth::{NewShopKeys, customer_token};
use patron::plugins::actions::TIMER_JOB;
use patron::store::Db;
use patron::store::coupons::{CouponSpec, Discount};
use patron::store::merges::MergeReason;
use patron::store::outbox::{MessageFilter, OutboxMessage};
use patron::store::shops::Shop;
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

async fn install_loyalty(state: &AppState, keys: &NewShopKeys) {
    let config = json!({"currency": "USD", "points-expiry-days": 365});
    testing::install_first_party(&app(state.clone()), &keys.secret, "loyalty", config).await;
}

fn order(id: &str, customer: Value, amount: i64) -> Value {
    json!({"id": id, "customer": customer, "lines": [{"product_id": "p1", "title": "Tea", "quantity": 1, "unit_price": amount}]})
}

async fn post_order(state: &AppState, keys: &NewShopKeys, body: Value) {
    let (status, body) = call(state, "POST", "/v1/orders", Some(&keys.secret), Some(body)).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
}

async fn id_of(db: &Db, shop_id: i64, external_id: &str) -> i64 {
    db.customer_by_external_id(shop_id, external_id).await.expect("read").expect("customer").id
}

/// The points the ledger holds for one order (what a full refund must reverse).
async fn earned_by_order(db: &Db, shop_id: i64, order_id: &str) -> i64 {
    sqlx::query_scalar(
        "SELECT CAST(COALESCE(SUM(delta), 0) AS BIGINT) FROM points_ledger WHERE shop_id = $1 AND order_id = $2 \
         AND kind = 'earn'",
    )
    .bind(shop_id)
    .bind(order_id)
    .fetch_one(db.pool())
    .await
    .expect("earned")
}

async fn tag(db: &Db, shop_id: i64, customer_id: i64, tag: &str) {
    sqlx::query(
        "INSERT INTO customer_tags (shop_id, customer_id, tag, source, added_at) VALUES ($1, $2, $3, 'test', 1)",
    )
    .bind(shop_id)
    .bind(customer_id)
    .bind(tag)
    .execute(db.pool())
    .await
    .expect("tag");
}

async fn stints(db: &Db, shop_id: i64, customer_id: i64) -> Vec<(String, i64, Option<i64>)> {
    sqlx::query_as(
        "SELECT segment, joined_at, left_at FROM segment_memberships WHERE shop_id = $1 AND customer_id = $2 \
         ORDER BY segment, joined_at",
    )
    .bind(shop_id)
    .bind(customer_id)
    .fetch_all(db.pool())
    .await
    .expect("stints")
}

fn set(items: &[&str]) -> BTreeSet<String> {
    items.iter().map(|s| (*s).to_owned()).collect()
}

both_backends!(
    async fn a_manual_merge_moves_points_coupons_tags_segments_messages_and_timers(db) {
        let (shop, keys) = testing::shop(&db, "a").await;
        let state = AppState::new(db.clone());
        install_loyalty(&state, &keys).await;
        post_order(&state, &keys, order("a1", json!({"external_id": "ada"}), 10_000)).await;
        post_order(&state, &keys, order("b1", json!({"external_id": "bob", "email": "bob@example.com"}), 60_000)).await;
        let (ada, bob) = (id_of(&db, shop.id, "ada").await, id_of(&db, shop.id, "bob").await);
        let (ada_points, bob_points) =
            (db.points_balance(shop.id, ada).await.expect("a"), db.points_balance(shop.id, bob).await.expect("b"));
        let b1_points = earned_by_order(&db, shop.id, "b1").await;
        assert!(ada_points > 0 && bob_points > 0 && b1_points == bob_points, "{ada_points} {bob_points} {b1_points}");
        let ada_entries = db.ledger(shop.id, ada, 100).await.expect("ledger").len();
        let bob_entries = db.ledger(shop.id, bob, 100).await.expect("ledger").len();

        let spec = CouponSpec {
            discount: Discount::Percent(10),
            currency: "USD".into(),
            minimum_spend: 0,
            expires_at: None,
            customer_id: Some(bob),
            source: "test".into(),
        };
        let coupon = db.issue_coupon(shop.id, &spec).await.expect("coupon").code;
        tag(&db, shop.id, ada, "tea").await;
        tag(&db, shop.id, bob, "coffee").await;
        tag(&db, shop.id, bob, "tea").await;
        db.set_segments(shop.id, ada, "seg", &set(&["regular"])).await.expect("segments");
        db.set_segments(shop.id, bob, "seg", &set(&["big-spender", "regular"])).await.expect("segments");
        db.set_segments(shop.id, bob, "seg", &set(&["regular"])).await.expect("bob left big-spender");
        let message = OutboxMessage {
            customer_id: bob,
            channel: "email".into(),
            template: "welcome".into(),
            data: "{}".into(),
            source: "test".into(),
        };
        let message_id = db.queue_message(shop.id, &message).await.expect("message");
        let timer = json!({"plugin": "journeys", "customer_id": bob, "name": "winback", "data": ""});
        let due = patron::store::now_ms() + 86_400_000;
        let timer_key = format!("timer:journeys:{bob}:winback:{due}");
        assert!(db.enqueue_job(shop.id, TIMER_JOB, &timer, due, &timer_key).await.expect("timer"));

        let (status, body) =
            call(&state, "POST", "/v1/customers/ada/merge", Some(&keys.secret), Some(json!({"other": "bob"}))).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!((body["merged"].as_bool(), body["survivor_id"].as_str()), (Some(true), Some(ada.to_string().as_str())));
        assert_eq!(body["moved"]["orders"], 1);
        assert_eq!(body["moved"]["points"], bob_points);

        // Points: the sum of both balances, every entry kept (moved, not summed).
        assert_eq!(db.points_balance(shop.id, ada).await.expect("balance"), ada_points + bob_points);
        assert_eq!(db.ledger_sum(shop.id, ada).await.expect("sum"), ada_points + bob_points);
        assert_eq!(db.ledger(shop.id, ada, 100).await.expect("ledger").len(), ada_entries + bob_entries);
        assert_eq!(db.points_balance(shop.id, bob).await.expect("balance"), 0);
        assert_eq!(db.ledger(shop.id, bob, 100).await.expect("ledger").len(), 0);
        // The coupon, the tags' union, the memberships with their history.
        let coupons: Vec<String> =
            db.active_coupons(shop.id, ada).await.expect("coupons").into_iter().map(|c| c.code).collect();
        assert!(coupons.contains(&coupon), "{coupons:?}");
        assert_eq!(db.tags(shop.id, ada).await.expect("tags"), vec!["coffee".to_owned(), "tea".to_owned()]);
        assert_eq!(db.current_segments(shop.id, ada).await.expect("segments"), vec!["regular".to_owned()]);
        let history = stints(&db, shop.id, ada).await;
        assert!(
            history.iter().any(|(s, _, left)| s == "big-spender" && left.is_some()),
            "bob's ended stint moved: {history:?}"
        );
        assert_eq!(history.iter().filter(|(s, _, left)| s == "regular" && left.is_none()).count(), 1, "{history:?}");
        assert!(stints(&db, shop.id, bob).await.is_empty());
        // Messages and journey timers follow the person.
        let filter = MessageFilter { customer_id: Some(ada), status: None, limit: 10 };
        assert!(db.messages(shop.id, &filter).await.expect("messages").iter().any(|m| m.id == message_id));
        let pending = patron::journeys::state::pending(&db, shop.id, ada).await.expect("timers");
        assert_eq!(pending.iter().map(|i| i.timers.len()).sum::<usize>(), 1, "{pending:?}");
        // The merged-away id, email and token resolve to the survivor.
        let (status, body) = call(&state, "GET", "/v1/customers/bob", Some(&keys.secret), None).await;
        assert_eq!((status, body["id"].as_str()), (StatusCode::OK, Some(ada.to_string().as_str())), "{body}");
        assert_eq!(db.customer_by_contact(shop.id, "email", "bob@example.com").await.expect("read").map(|c| c.id), Some(ada));
        let token = customer_token(&shop.secret_hash, "bob").expect("token");
        let uri = format!("/v1/widget/state?key={}&customer_id=bob&customer_token={token}", shop.publishable_key);
        let (status, panel) = call(&state, "GET", &uri, None, None).await;
        assert_eq!(status, StatusCode::OK, "{panel}");
        assert_eq!(panel["member"]["points"]["balance"], ada_points + bob_points, "{panel}");
        // An order posted later for the merged-away id lands on the survivor.
        post_order(&state, &keys, order("b2", json!({"external_id": "bob"}), 1_000)).await;
        assert_eq!(db.order(shop.id, "b2").await.expect("read").expect("order").customer_id, Some(ada));

        // The merge is listed on the survivor.
        let (status, body) = call(&state, "GET", "/v1/customers/ada/merges", Some(&keys.secret), None).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(body["merges"].as_array().map(Vec::len), Some(1), "{body}");
        assert_eq!((body["merges"][0]["merged_external_id"].as_str(), body["merges"][0]["reason"].as_str()), (Some("bob"), Some("manual")));

        // A full refund of the merged-away customer's order reverses exactly its points.
        let before = db.points_balance(shop.id, ada).await.expect("balance");
        let (status, body) =
            call(&state, "POST", "/v1/orders/b1/refunds", Some(&keys.secret), Some(json!({"id": "rb1"}))).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(body["loyalty"]["points_reversed"], b1_points, "{body}");
        assert_eq!(db.points_balance(shop.id, ada).await.expect("balance"), before - b1_points);
        assert_eq!(db.ledger_sum(shop.id, ada).await.expect("sum"), before - b1_points);
    }
);

both_backends!(
    async fn merging_again_is_a_no_op(db) {
        let (shop, keys) = testing::shop(&db, "a").await;
        let state = AppState::new(db.clone());
        post_order(&state, &keys, order("a1", json!({"external_id": "ada"}), 10_000)).await;
        post_order(&state, &keys, order("b1", json!({"external_id": "bob"}), 20_000)).await;
        let body = json!({"other": "bob"});
        let (status, first) = call(&state, "POST", "/v1/customers/ada/merge", Some(&keys.secret), Some(body.clone())).await;
        assert_eq!((status, first["merged"].as_bool()), (StatusCode::OK, Some(true)), "{first}");
        let ada = id_of(&db, shop.id, "ada").await;
        let after = db.customer(shop.id, ada).await.expect("read").expect("ada");
        for (path, other) in [("ada", "bob"), ("bob", "ada"), ("bob", "bob")] {
            let uri = format!("/v1/customers/{path}/merge");
            let (status, again) = call(&state, "POST", &uri, Some(&keys.secret), Some(json!({"other": other}))).await;
            assert_eq!((status, again["merged"].as_bool()), (StatusCode::OK, Some(false)), "{path} {other}: {again}");
            assert_eq!(again["moved"]["orders"], 0);
        }
        let still = db.customer(shop.id, ada).await.expect("read").expect("ada");
        assert_eq!((still.stats.order_count, still.stats.total_spent), (after.stats.order_count, 30_000));
        assert_eq!(db.merges_into(shop.id, ada).await.expect("merges").len(), 1, "one merge recorded");
        let (status, body) =
            call(&state, "POST", "/v1/customers/ada/merge", Some(&keys.secret), Some(json!({"other": "nobody"}))).await;
        assert_eq!((status, body["error"]["code"].as_str()), (StatusCode::NOT_FOUND, Some("not_found")));
    }
);

both_backends!(
    async fn racing_merges_lose_no_rows(db) {
        let (shop, keys) = testing::shop(&db, "a").await;
        let state = AppState::new(db.clone());
        let names = ["c0", "c1", "c2", "c3", "c4", "c5"];
        for (i, name) in names.iter().enumerate() {
            post_order(&state, &keys, order(&format!("o{i}"), json!({"external_id": name}), 1_000)).await;
        }
        let mut ids = Vec::new();
        for name in names {
            ids.push(id_of(&db, shop.id, name).await);
        }
        // Everyone merges into everyone else at once, in both directions.
        let mut tasks = Vec::new();
        for (i, a) in ids.iter().enumerate() {
            for b in &ids[i + 1..] {
                for (winner, loser) in [(*a, *b), (*b, *a)] {
                    let db = db.clone();
                    tasks.push(tokio::spawn(async move {
                        db.merge_customers(shop.id, winner, loser, MergeReason::Manual).await
                    }));
                }
            }
        }
        // Meanwhile storefront events arrive for every record, each resolved before the
        // merges: they must end on the survivor, never on a merged-away record.
        let mut events = Vec::new();
        for (i, id) in ids.iter().enumerate() {
            for n in 0..3 {
                let (db, id) = (db.clone(), *id);
                let event = patron::store::events::NewEvent {
                    event_id: format!("race-{i}-{n}"),
                    kind: "page_view".into(),
                    occurred_at: patron::store::now_ms(),
                    anonymous_id: None,
                    customer_id: Some(id),
                    url: Some("http://shop.test/".into()),
                    properties: "{}".into(),
                };
                events.push(tokio::spawn(async move { db.insert_events(shop.id, &[event]).await }));
            }
        }
        for task in tasks {
            task.await.expect("task").expect("merge");
        }
        for task in events {
            assert_eq!(task.await.expect("task").expect("events").len(), 1);
        }
        let survivors: BTreeSet<i64> = {
            let mut s = BTreeSet::new();
            for id in &ids {
                s.insert(db.resolve_customer(shop.id, *id).await.expect("resolve").expect("known"));
            }
            s
        };
        assert_eq!(survivors.len(), 1, "all one person: {survivors:?}");
        let survivor = *survivors.iter().next().expect("one");
        let customer = db.customer(shop.id, survivor).await.expect("read").expect("survivor");
        assert_eq!((customer.stats.order_count, customer.stats.total_spent), (6, 6_000), "no order lost");
        assert_eq!(db.merges_into(shop.id, survivor).await.expect("merges").len(), 5, "five records folded in");
        let stray: i64 =
            sqlx::query_scalar("SELECT COUNT(*) FROM events WHERE shop_id = $1 AND customer_id <> $2")
                .bind(shop.id)
                .bind(survivor)
                .fetch_one(db.pool())
                .await
                .expect("count");
        assert_eq!(stray, 0, "every event is the survivor's");
    }
);

both_backends!(
    async fn a_known_customer_taking_an_email_or_phone_absorbs_the_guest_record(db) {
        let (shop, keys) = testing::shop(&db, "a").await;
        let state = AppState::new(db.clone());
        install_loyalty(&state, &keys).await;
        post_order(&state, &keys, order("g1", json!({"email": "merge@example.com"}), 100_000)).await;
        let guest = db.customer_by_contact(shop.id, "email", "merge@example.com").await.expect("read").expect("guest").id;
        let guest_points = db.points_balance(shop.id, guest).await.expect("balance");
        assert!(guest_points > 0);
        post_order(&state, &keys, order("k1", json!({"external_id": "kim"}), 10_000)).await;
        let kim = id_of(&db, shop.id, "kim").await;
        let kim_points = db.points_balance(shop.id, kim).await.expect("balance");
        let (status, body) = call(
            &state,
            "POST",
            "/v1/customers",
            Some(&keys.secret),
            Some(json!({"external_id": "kim", "email": "merge@example.com"})),
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let customer = db.customer(shop.id, kim).await.expect("read").expect("kim");
        assert_eq!(customer.stats.order_count, 2);
        assert_eq!(db.points_balance(shop.id, kim).await.expect("balance"), kim_points + guest_points);
        let merges = db.merges_into(shop.id, kim).await.expect("merges");
        assert_eq!(merges.iter().map(|m| m.reason.as_str()).collect::<Vec<_>>(), vec!["email"]);
        let (status, body) =
            call(&state, "POST", "/v1/orders/g1/refunds", Some(&keys.secret), Some(json!({"id": "rg1"}))).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(body["loyalty"]["points_reversed"], guest_points, "{body}");
        assert_eq!(db.points_balance(shop.id, kim).await.expect("balance"), kim_points);

        // Phones match in any E.164 spelling; one without a country code never matches.
        post_order(&state, &keys, order("g2", json!({"email": "p@example.com", "phone": "+44 20 7946 0000"}), 5_000)).await;
        post_order(&state, &keys, order("p1", json!({"external_id": "pat"}), 1_000)).await;
        let (status, body) = call(
            &state,
            "POST",
            "/v1/customers",
            Some(&keys.secret),
            Some(json!({"external_id": "pat", "phone": "0044 (20) 7946-0000"})),
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let pat = id_of(&db, shop.id, "pat").await;
        assert_eq!(body["phone"], "+442079460000");
        assert_eq!(db.customer(shop.id, pat).await.expect("read").expect("pat").stats.order_count, 2, "the guest's order joined");
        assert_eq!(db.merges_into(shop.id, pat).await.expect("merges")[0].reason, "phone");
        let (status, body) = call(
            &state,
            "POST",
            "/v1/customers",
            Some(&keys.secret),
            Some(json!({"external_id": "lou", "phone": "020 7946 0000"})),
        )
        .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        assert_eq!(db.merges_into(shop.id, id_of(&db, shop.id, "lou").await).await.expect("merges").len(), 0);
    }
);

async fn identify(state: &AppState, shop: &Shop, customer: &str, token: &str) -> (StatusCode, Value) {
    let uri = format!("/v1/identify?key={}", shop.publishable_key);
    let body = json!({"anonymous_id": "anon-t", "customer_id": customer, "customer_token": token});
    call(state, "POST", &uri, None, Some(body)).await
}

fn hmac_hex(key: &[u8], message: &str) -> String {
    use hmac::Mac;
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(key).expect("key");
    mac.update(message.as_bytes());
    hex::encode(mac.finalize().into_bytes())
}

/// A v2 token as the store's back end signs it (README): with the secret key, or the
/// token key on a host with a token secret.
fn v2_token(key: &str, customer: &str, exp: i64) -> String {
    format!("v2.{exp}.{}", hmac_hex(key.as_bytes(), &format!("v2.{exp}.{customer}")))
}

fn now_secs() -> i64 {
    patron::store::now_ms() / 1000
}

both_backends!(
    async fn an_expired_token_is_refused_and_v1_tokens_keep_working(db) {
        let (shop, keys) = testing::shop(&db, "a").await;
        let state = AppState::new(db.clone());
        let fresh = v2_token(&keys.secret, "ada", now_secs() + 600);
        let (status, body) = identify(&state, &shop, "ada", &fresh).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let past = now_secs() - 1;
        let expired = v2_token(&keys.secret, "ada", past);
        let (status, body) = identify(&state, &shop, "ada", &expired).await;
        assert_eq!((status, body["error"]["code"].as_str()), (StatusCode::FORBIDDEN, Some("expired_customer_token")), "{body}");
        let stretched = expired.replacen(&format!("v2.{past}."), &format!("v2.{}.", past + 600), 1);
        assert_ne!(stretched, expired);
        let (status, body) = identify(&state, &shop, "ada", &stretched).await;
        assert_eq!((status, body["error"]["code"].as_str()), (StatusCode::FORBIDDEN, Some("invalid_customer_token")), "{body}");
        let v1 = hmac_hex(keys.secret.as_bytes(), "ada");
        let (status, body) = identify(&state, &shop, "ada", &v1).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        // A shop can refuse v1 tokens (they never expire).
        let (status, body) = call(&state, "PUT", "/v1/shop/tokens", Some(&keys.secret), Some(json!({"v1_tokens": false}))).await;
        assert_eq!((status, body["v1_tokens"].as_bool()), (StatusCode::OK, Some(false)), "{body}");
        let state = AppState::new(db.clone());
        let shop = db.shop(shop.id).await.expect("read").expect("shop");
        let (status, _) = identify(&state, &shop, "ada", &v1).await;
        assert_eq!(status, StatusCode::FORBIDDEN);
        let (status, _) = identify(&state, &shop, "ada", &fresh).await;
        assert_eq!(status, StatusCode::OK);
    }
);

both_backends!(
    async fn a_rotated_keys_old_token_works_during_the_grace_period_and_not_after(db) {
        let (shop, keys) = testing::shop(&db, "a").await;
        let state = AppState::new(db.clone());
        let old_v1 = hmac_hex(keys.secret.as_bytes(), "ada");
        let old_v2 = v2_token(&keys.secret, "ada", now_secs() + 3600);
        let (status, body) = call(&state, "POST", "/v1/shop/rotate-key", Some(&keys.secret), Some(json!({"grace_hours": 2}))).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let new_secret = body["secret_key"].as_str().expect("new key").to_owned();
        assert!(new_secret.starts_with("sk_") && new_secret != keys.secret);
        let (status, body) = call(&state, "POST", "/v1/shop/rotate-key", Some(&keys.secret), Some(json!({"grace_hours": 9999}))).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");

        // In the grace period: both keys call the API, tokens of both keys verify.
        let state = AppState::new(db.clone());
        let shop = db.shop(shop.id).await.expect("read").expect("shop");
        for secret in [&keys.secret, &new_secret] {
            let (status, body) = call(&state, "GET", "/v1/privacy/requests", Some(secret), None).await;
            assert_eq!(status, StatusCode::OK, "{body}");
        }
        for token in [&old_v1, &old_v2, &hmac_hex(new_secret.as_bytes(), "ada")] {
            let (status, body) = identify(&state, &shop, "ada", token).await;
            assert_eq!(status, StatusCode::OK, "{token}: {body}");
        }

        // After it (the clock moved past the end of the grace period).
        sqlx::query("UPDATE shops SET previous_secret_until = $2 WHERE id = $1")
            .bind(shop.id)
            .bind(patron::store::now_ms() - 1)
            .execute(db.pool())
            .await
            .expect("time passes");
        let state = AppState::new(db.clone());
        let shop = db.shop(shop.id).await.expect("read").expect("shop");
        let (status, body) = call(&state, "GET", "/v1/privacy/requests", Some(&keys.secret), None).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
        for token in [&old_v1, &old_v2] {
            let (status, body) = identify(&state, &shop, "ada", token).await;
            assert_eq!((status, body["error"]["code"].as_str()), (StatusCode::FORBIDDEN, Some("invalid_customer_token")), "{body}");
        }
        let (status, _) = identify(&state, &shop, "ada", &v2_token(&new_secret, "ada", now_secs() + 60)).await;
        assert_eq!(status, StatusCode::OK);
    }
);

both_backends!(
    async fn with_a_token_secret_only_the_derived_token_key_signs_v2_tokens(db) {
        let (shop, keys) = testing::shop(&db, "a").await;
        let mut state = AppState::new(db.clone());
        state.token_secret = Some(b"a server-side secret of 32+ characters".as_slice().into());
        let (status, body) = call(&state, "GET", "/v1/shop/tokens", Some(&keys.secret), None).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let token_key = body["token_key"].as_str().expect("token key").to_owned();
        assert!(token_key.starts_with("tk_"));
        let (status, body) = identify(&state, &shop, "ada", &v2_token(&token_key, "ada", now_secs() + 60)).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        // A leaked database holds the secret key's SHA-256, which signs like the key itself.
        let (status, _) = identify(&state, &shop, "ada", &v2_token(&keys.secret, "ada", now_secs() + 60)).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "a v2 token keyed with the secret key is refused");
        let other_host = AppState::new(db.clone());
        let (status, _) = identify(&other_host, &shop, "ada", &v2_token(&token_key, "ada", now_secs() + 60)).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "the token key depends on the host's secret");
    }
);
