//! Journeys end to end: the first-party journeys plugin, built to wasm and installed
//! through the API, hears triggers queued with their causes and drained by the
//! scheduler; its messages land in the outbox once, whichever worker runs them.

use axum::http::StatusCode;
use base64::Engine as _;
use patron::auth::{NewShopKeys, customer_token};
use patron::journeys::TRIGGER_JOB;
use patron::journeys::birthdays::{self, BIRTHDAY_JOB};
use patron::plugins::actions::TIMER_JOB;
use patron::scheduler::{Ran, Scheduler};
use patron::store::events::NewEvent;
use patron::store::jobs::JobStatus;
use patron::store::outbox::{Message, MessageFilter};
use patron::store::shops::{NewShop, Shop};
use patron::store::{Db, now_ms};
use patron::{AppState, app, both_backends, testing};
use serde_json::{Value, json};

const HOUR: i64 = 60 * 60 * 1000;

async fn call(
    state: &AppState,
    method: &str,
    uri: &str,
    secret: Option<&str>,
    body: Option<Value>,
) -> (StatusCode, Value) {
    testing::call(&app(state.clone()), method, uri, secret, body).await
}

fn manifest() -> Value {
    let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../plugins/journeys/patron.toml"))
        .expect("manifest");
    serde_json::to_value(toml::from_str::<toml::Value>(&text).expect("toml")).expect("json")
}

async fn install(state: &AppState, keys: &NewShopKeys, manifest: Value, config: Value) -> (StatusCode, Value) {
    let wasm = patron_runtime::testing::plugin_wasm("journeys").expect("journeys plugin builds");
    let body = json!({
        "manifest": manifest,
        "wasm_base64": base64::engine::general_purpose::STANDARD.encode(wasm),
        "grants": ["log", "config", "kv"],
        "config": config,
        "enable": true,
    });
    call(state, "POST", "/v1/plugins", Some(&keys.secret), Some(body)).await
}

async fn setup(db: Db, config: Value) -> (AppState, Shop, NewShopKeys, Scheduler) {
    let (shop, keys) = testing::shop(&db, "journeys").await;
    let state = AppState::new(db.clone());
    let (status, body) = install(&state, &keys, manifest(), config).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let scheduler = Scheduler::new(db, state.plugins.clone());
    (state, shop, keys, scheduler)
}

/// Creates a customer through the API; returns Patron's id.
async fn customer(state: &AppState, shop: &Shop, keys: &NewShopKeys, external_id: &str) -> i64 {
    let body =
        json!({"external_id": external_id, "email": format!("{external_id}@example.com"), "marketing_consent": true});
    let (status, body) = call(state, "POST", "/v1/customers", Some(&keys.secret), Some(body)).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    state.db.customer_by_external_id(shop.id, external_id).await.expect("read").expect("stored").id
}

/// Posts storefront events of a signed-in customer.
async fn events(state: &AppState, shop: &Shop, external_id: &str, events: Value) {
    let token = customer_token(&shop.secret_hash, external_id).expect("token");
    let body = json!({"customer_id": external_id, "customer_token": token, "events": events});
    let uri = format!("/v1/events?key={}", shop.publishable_key);
    let (status, body) = call(state, "POST", &uri, None, Some(body)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["rejected"], 0, "{body}");
}

/// Runs every job due at `at`; none may fail.
async fn drain(scheduler: &Scheduler, at: i64) -> Vec<String> {
    let mut ran = Vec::new();
    loop {
        match scheduler.run_due(at).await.expect("scheduler") {
            Ran::Nothing => return ran,
            Ran::Done { kind } => ran.push(kind),
            Ran::Failed { kind, error } => panic!("{kind} failed: {error}"),
        }
    }
}

/// The shop's queued messages, oldest first.
async fn outbox(db: &Db, shop: &Shop) -> Vec<Message> {
    let queued = MessageFilter { customer_id: None, status: Some("queued".into()), limit: 1000 };
    let mut messages = db.messages(shop.id, &queued).await.expect("outbox");
    messages.reverse();
    messages
}

fn templates(messages: &[Message]) -> Vec<&str> {
    messages.iter().map(|m| m.template.as_str()).collect()
}

async fn jobs_of(db: &Db, shop: &Shop, kind: &str) -> Vec<JobStatus> {
    db.jobs(shop.id, 10_000).await.expect("jobs").into_iter().filter(|j| j.kind == kind).collect()
}

both_backends!(
    async fn a_new_customer_gets_welcome_1_when_the_scheduler_drains(db) {
        let (state, shop, keys, scheduler) = setup(db.clone(), json!({})).await;
        let ada = customer(&state, &shop, &keys, "ada").await;
        assert!(outbox(&db, &shop).await.is_empty(), "the request only queues the trigger");
        assert_eq!(jobs_of(&db, &shop, TRIGGER_JOB).await.len(), 1);

        let now = now_ms();
        assert_eq!(drain(&scheduler, now).await, [TRIGGER_JOB]);
        let sent = outbox(&db, &shop).await;
        assert_eq!(templates(&sent), ["welcome_1"]);
        assert_eq!(sent[0].customer_id, ada);
        assert_eq!(sent[0].channel, "email");
        let data = sent[0].data.clone();
        assert_eq!(data, json!({"journey": "welcome", "step": "email_1", "purpose": "marketing"}));

        // The next steps are visible as pending timers, and fire on days 3 and 7.
        let uri = format!("/v1/journeys/state?customer_id={ada}");
        let (status, body) = call(&state, "GET", &uri, Some(&keys.secret), None).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(body["customer_id"], ada.to_string());
        let timers = &body["installs"][0]["timers"];
        assert_eq!(body["installs"][0]["plugin"], "journeys");
        let names: Vec<&str> = timers.as_array().expect("timers").iter().filter_map(|t| t["name"].as_str()).collect();
        assert_eq!(names, ["welcome:email_2", "welcome:email_3"]);
        let day_3 = timers[0]["due_at"].as_i64().expect("due");
        assert!(day_3 >= now + 3 * 24 * HOUR - 60_000 && day_3 <= now + 3 * 24 * HOUR + 60_000, "{day_3}");

        assert_eq!(drain(&scheduler, now + 3 * 24 * HOUR + 60_000).await, [TIMER_JOB]);
        assert_eq!(drain(&scheduler, now + 8 * 24 * HOUR).await, [TIMER_JOB]);
        assert_eq!(templates(&outbox(&db, &shop).await), ["welcome_1", "welcome_2", "welcome_3"]);

        // Bad input: clear errors, nothing read.
        let (status, body) = call(&state, "GET", "/v1/journeys/state?customer_id=x", Some(&keys.secret), None).await;
        assert_eq!((status, body["error"]["code"].as_str()), (StatusCode::BAD_REQUEST, Some("invalid_customer_id")));
        let (status, _) = call(&state, "GET", "/v1/journeys/state?customer_id=42", Some(&keys.secret), None).await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        let (status, _) = call(&state, "GET", &uri, None, None).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
    }
);

/// A shop whose only journey in play is cart abandonment, with `ada` holding a cart
/// since `now`; returns when the first reminder went out (4 h later).
async fn abandoned_cart(db: &Db) -> (AppState, Shop, Scheduler, i64) {
    let config = json!({"welcome": {"enabled": false}, "browse-abandonment": {"enabled": false}});
    let (state, shop, keys, scheduler) = setup(db.clone(), config).await;
    customer(&state, &shop, &keys, "ada").await;
    events(&state, &shop, "ada", json!([{"id": "e1", "kind": "add_to_cart", "properties": {"product_id": "tea"}}]))
        .await;
    let now = now_ms();
    // `customer.created` (the welcome series is off: nothing) and the cart.
    assert_eq!(drain(&scheduler, now).await, [TRIGGER_JOB; 2]);
    assert!(outbox(db, &shop).await.is_empty());
    assert!(drain(&scheduler, now + 3 * HOUR).await.is_empty(), "nothing before 4 h");
    assert_eq!(drain(&scheduler, now + 4 * HOUR + 60_000).await, [TIMER_JOB]);
    let sent = outbox(db, &shop).await;
    assert_eq!(templates(&sent), ["cart_reminder_1"]);
    let data = sent[0].data.clone();
    assert_eq!(data["products"], json!(["tea"]));
    assert_eq!((data["journey"].as_str(), data["step"].as_str()), (Some("cart_abandonment"), Some("reminder_1")));
    (state, shop, scheduler, now)
}

both_backends!(
    async fn cart_abandonment_reminds_after_4_hours_and_not_after_checkout(db) {
        let (state, shop, scheduler, now) = abandoned_cart(&db).await;
        events(&state, &shop, "ada", json!([{"id": "e2", "kind": "checkout_started"}])).await;
        assert_eq!(drain(&scheduler, now + 4 * HOUR + 60_000).await, [TRIGGER_JOB]);
        assert!(drain(&scheduler, now + 25 * HOUR).await.is_empty(), "the second reminder was cancelled");
        assert_eq!(templates(&outbox(&db, &shop).await), ["cart_reminder_1"]);
    }
);

both_backends!(
    async fn a_reminder_whose_cancel_raced_its_firing_is_checked_again_and_not_sent(db) {
        let (state, shop, scheduler, now) = abandoned_cart(&db).await;
        // A worker took the second reminder just before the checkout and died: the
        // cancel cannot remove a running timer, which fires again once the lease is out.
        let taken = db.lease_job_at("dead-worker", now + 24 * HOUR + 1, 1000).await.expect("lease").expect("a timer");
        assert_eq!(taken.kind, TIMER_JOB);
        events(&state, &shop, "ada", json!([{"id": "e2", "kind": "checkout_started"}])).await;
        assert_eq!(drain(&scheduler, now + 4 * HOUR + 60_000).await, [TRIGGER_JOB]);
        assert_eq!(drain(&scheduler, now + 25 * HOUR).await, [TIMER_JOB], "the raced timer fires");
        assert_eq!(templates(&outbox(&db, &shop).await), ["cart_reminder_1"], "and sends nothing");
    }
);

both_backends!(
    async fn a_batch_of_events_is_one_trigger_heard_in_order(db) {
        let config = json!({"welcome": {"enabled": false}, "browse-abandonment": {"enabled": false}});
        let (state, shop, keys, scheduler) = setup(db.clone(), config).await;
        customer(&state, &shop, &keys, "ada").await;
        let bob = customer(&state, &shop, &keys, "bob").await;
        let ada_batch = json!([
            {"id": "a1", "kind": "add_to_cart", "properties": {"product_id": "tea"}},
            {"id": "a2", "kind": "checkout_started"},
        ]);
        events(&state, &shop, "ada", ada_batch.clone()).await;
        events(
            &state,
            &shop,
            "bob",
            json!([
                {"id": "b1", "kind": "checkout_started"},
                {"id": "b2", "kind": "add_to_cart", "properties": {"product_id": "cake"}},
            ]),
        )
        .await;
        events(&state, &shop, "ada", ada_batch).await;
        assert_eq!(jobs_of(&db, &shop, TRIGGER_JOB).await.len(), 4, "two customer.created, one per new batch");

        let now = now_ms();
        assert_eq!(drain(&scheduler, now).await, [TRIGGER_JOB; 4]);
        // Ada checked out after adding to her cart, Bob added after checking out.
        assert_eq!(drain(&scheduler, now + 4 * HOUR + 60_000).await, [TIMER_JOB]);
        let sent = outbox(&db, &shop).await;
        assert_eq!(templates(&sent), ["cart_reminder_1"]);
        assert_eq!((sent[0].customer_id, &sent[0].data["products"]), (bob, &json!(["cake"])));
    }
);

both_backends!(
    async fn two_schedulers_handle_each_trigger_once(db) {
        let (state, shop, keys, first) = setup(db.clone(), json!({})).await;
        let second = Scheduler::new(db.clone(), state.plugins.clone());
        const CUSTOMERS: usize = 12;
        for n in 0..CUSTOMERS {
            customer(&state, &shop, &keys, &format!("c{n}")).await;
        }
        let now = now_ms();
        let (a, b) = tokio::join!(drain(&first, now), drain(&second, now));
        assert_eq!(a.len() + b.len(), CUSTOMERS, "each trigger ran once: {a:?} {b:?}");
        let sent = outbox(&db, &shop).await;
        assert_eq!(sent.len(), CUSTOMERS);
        let mut customers: Vec<i64> = sent.iter().map(|m| m.customer_id).collect();
        customers.sort_unstable();
        customers.dedup();
        assert_eq!(customers.len(), CUSTOMERS, "one welcome_1 per customer");
        assert!(jobs_of(&db, &shop, TRIGGER_JOB).await.iter().all(|j| j.status == "done"));
    }
);

/// Installs the scaffold template beside the journeys plugin: it listens to
/// `add_to_cart` and `checkout_started` only.
async fn install_template(state: &AppState, keys: &NewShopKeys) {
    let wasm = patron_runtime::testing::plugin_wasm("template-automation").expect("template builds");
    let manifest = json!({"name": "template-automation", "version": "0.1.0", "world": "automation",
        "imports": ["log", "config"], "triggers": ["add_to_cart", "checkout_started"]});
    let body = json!({"manifest": manifest, "wasm_base64": base64::engine::general_purpose::STANDARD.encode(wasm),
        "grants": ["log", "config"], "enable": true});
    let (status, body) = call(state, "POST", "/v1/plugins", Some(&keys.secret), Some(body)).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
}

both_backends!(
    async fn the_scaffold_template_hears_real_kinds_and_a_taken_over_timer_applies_once(db) {
        let (shop, keys) = testing::shop(&db, "template").await;
        let state = AppState::new(db.clone());
        install_template(&state, &keys).await;
        let scheduler = Scheduler::new(db.clone(), state.plugins.clone());
        customer(&state, &shop, &keys, "ada").await;
        customer(&state, &shop, &keys, "bob").await;
        events(&state, &shop, "ada", json!([{"id": "a1", "kind": "add_to_cart"}])).await;
        events(&state, &shop, "bob", json!([{"id": "b1", "kind": "add_to_cart"}])).await;
        events(&state, &shop, "bob", json!([{"id": "b2", "kind": "checkout_started"}])).await;
        let now = now_ms();
        assert_eq!(drain(&scheduler, now).await, [TRIGGER_JOB; 3]);

        // A slow worker takes ada's reminder; its lease runs out and the scheduler fires it.
        let day = 24 * HOUR;
        let slow = db.lease_job_at("slow-worker", now + day + 1, 1).await.expect("lease").expect("ada's timer");
        assert_eq!(drain(&scheduler, now + day + 10).await, [TIMER_JOB], "bob checked out: no timer of his");
        // The slow worker's call returns late: what it returned must not apply again.
        patron::journeys::run::fire_timer(&state.plugins, &shop, &slow, "slow-worker").await.expect("runs");
        let sent = outbox(&db, &shop).await;
        assert_eq!(templates(&sent), ["cart-reminder"]);
        let ada = db.customer_by_external_id(shop.id, "ada").await.expect("read").expect("ada").id;
        assert_eq!(sent[0].customer_id, ada);
    }
);

both_backends!(
    async fn events_no_install_listens_to_queue_no_trigger(db) {
        let (shop, keys) = testing::shop(&db, "quiet").await;
        let state = AppState::new(db.clone());
        customer(&state, &shop, &keys, "ada").await;
        // No journeys installed: a cart is stored and queues nothing.
        events(&state, &shop, "ada", json!([{"id": "e0", "kind": "add_to_cart"}])).await;
        assert!(jobs_of(&db, &shop, TRIGGER_JOB).await.is_empty());

        let (status, body) = install(&state, &keys, manifest(), json!({})).await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        // Kinds the plugin does not list, and anonymous shoppers, queue nothing either.
        events(&state, &shop, "ada", json!([{"id": "e1", "kind": "page_view"}, {"id": "e2", "kind": "search"}])).await;
        let anonymous = json!({"anonymous_id": "anon-1", "events": [{"id": "e3", "kind": "add_to_cart"}]});
        let (status, _) =
            call(&state, "POST", &format!("/v1/events?key={}", shop.publishable_key), None, Some(anonymous)).await;
        assert_eq!(status, StatusCode::OK);
        assert!(jobs_of(&db, &shop, TRIGGER_JOB).await.is_empty());
        // A listened kind queues one trigger, a retried batch no second one.
        for _ in 0..2 {
            events(&state, &shop, "ada", json!([{"id": "e4", "kind": "add_to_cart"}])).await;
        }
        assert_eq!(jobs_of(&db, &shop, TRIGGER_JOB).await.len(), 1);
        // Disabled: it listens no more (the cached listening set is refreshed).
        let (status, _) = call(&state, "POST", "/v1/plugins/journeys/disable", Some(&keys.secret), None).await;
        assert_eq!(status, StatusCode::OK);
        events(&state, &shop, "ada", json!([{"id": "e5", "kind": "add_to_cart"}])).await;
        assert_eq!(jobs_of(&db, &shop, TRIGGER_JOB).await.len(), 1);
    }
);

/// The events the queued triggers carry as (plugin, customer, kind, event number),
/// sorted, and how many trigger jobs carry them.
async fn event_triggers(db: &Db, shop: &Shop) -> (Vec<(String, i64, String, i64)>, usize) {
    let jobs: Vec<_> =
        jobs_of(db, shop, TRIGGER_JOB).await.into_iter().filter(|j| j.payload["kind"] != "customer.created").collect();
    let mut found = Vec::new();
    for job in &jobs {
        let p = &job.payload;
        let plugin = p["plugin"].as_str().expect("plugin").to_owned();
        let customer: i64 = p["customer_id"].as_i64().expect("customer");
        let later = p["then"].as_array().cloned().unwrap_or_default();
        for event in std::iter::once(p).chain(later.iter()) {
            let n = event["properties"]["n"].as_i64().expect("event number");
            found.push((plugin.clone(), customer, event["kind"].as_str().expect("kind").to_owned(), n));
        }
    }
    found.sort();
    (found, jobs.len())
}

both_backends!(
    async fn a_batch_of_events_for_several_customers_queues_each_event_once_per_listening_install(db) {
        let (state, shop, keys, _) = setup(db.clone(), json!({})).await;
        install_template(&state, &keys).await;
        let names = ["ada", "bob", "cyd", "dan"];
        let mut ids = Vec::new();
        for name in names {
            ids.push(customer(&state, &shop, &keys, name).await);
        }
        // journeys listens to all three listened kinds, the template to two; page_view to none.
        let kinds = ["add_to_cart", "product_view", "page_view", "checkout_started"];
        let listening = |kind: &str| -> Vec<&str> {
            match kind {
                "add_to_cart" | "checkout_started" => vec!["journeys", "template-automation"],
                "product_view" => vec!["journeys"],
                _ => vec![],
            }
        };
        let mut expected = Vec::new();
        let mut n = 0_i64;
        // ada and bob through the API, one batch each.
        for (name, id) in names.iter().zip(&ids).take(2) {
            let mut batch = Vec::new();
            for kind in kinds {
                n += 1;
                batch.push(json!({"id": format!("e{n}"), "kind": kind, "properties": {"n": n}}));
                expected.extend(listening(kind).into_iter().map(|p| (p.to_owned(), *id, kind.to_owned(), n)));
            }
            events(&state, &shop, name, Value::Array(batch)).await;
        }
        // cyd, dan and an anonymous shopper in one stored batch, as ingest stores it.
        let mut batch = Vec::new();
        for customer_id in [Some(ids[2]), Some(ids[3]), None] {
            for kind in kinds {
                n += 1;
                batch.push(NewEvent {
                    event_id: format!("e{n}"),
                    kind: kind.to_owned(),
                    occurred_at: now_ms(),
                    anonymous_id: customer_id.is_none().then(|| "anon-1".to_owned()),
                    customer_id,
                    url: None,
                    properties: json!({"n": n}).to_string(),
                });
                if let Some(id) = customer_id {
                    expected.extend(listening(kind).into_iter().map(|p| (p.to_owned(), id, kind.to_owned(), n)));
                }
            }
        }
        let listeners = state.plugins.listeners(shop.id).await.expect("listeners");
        let stored = db.insert_events_triggering(shop.id, &batch, &listeners).await.expect("stored");
        assert_eq!(stored.len(), batch.len());
        expected.sort();
        assert_eq!(expected.len(), 4 * 5, "four customers, five events heard each");
        // One job per customer's batch and listening install: 4 customers x 2 installs.
        assert_eq!(event_triggers(&db, &shop).await, (expected.clone(), 8));

        // The same batch again (a retry): stored once, heard once.
        let stored = db.insert_events_triggering(shop.id, &batch, &listeners).await.expect("stored");
        assert!(stored.is_empty());
        assert_eq!(event_triggers(&db, &shop).await, (expected, 8));
    }
);

both_backends!(
    async fn a_manifest_with_an_unknown_trigger_is_refused(db) {
        let (shop, keys) = testing::shop(&db, "strict").await;
        let state = AppState::new(db.clone());
        let mut manifest = manifest();
        manifest["triggers"] = json!(["add_to_cart", "checkout"]);
        let (status, body) = install(&state, &keys, manifest, json!({})).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
        let message = body["error"]["message"].as_str().expect("message");
        assert!(message.contains("unknown trigger `checkout`"), "{message}");
        assert!(db.plugin_installs(shop.id).await.expect("installs").is_empty());
    }
);

both_backends!(
    async fn an_order_queues_a_review_request_and_a_refund_cancels_it(db) {
        let config = json!({"welcome": {"enabled": false}});
        let (state, shop, keys, scheduler) = setup(db.clone(), config).await;
        let order = json!({"id": "o1", "customer": {"external_id": "ada"}, "lines": [{"product_id": "tea", "title": "Tea", "quantity": 1, "unit_price": 1500}]});
        let (status, body) = call(&state, "POST", "/v1/orders", Some(&keys.secret), Some(order)).await;
        assert!(status.is_success(), "{body}");
        let now = now_ms();
        drain(&scheduler, now).await;
        let ada = db.customer_by_external_id(shop.id, "ada").await.expect("read").expect("ada").id;
        let (_, body) = call(&state, "GET", &format!("/v1/journeys/state?customer_id={ada}"), Some(&keys.secret), None).await;
        let timers = body["installs"][0]["timers"].as_array().cloned().unwrap_or_default();
        assert!(timers.iter().any(|t| t["name"] == "post_purchase:review_request"), "{body}");

        let refund = json!({"id": "r1"});
        let (status, body) = call(&state, "POST", "/v1/orders/o1/refunds", Some(&keys.secret), Some(refund)).await;
        assert!(status.is_success(), "{body}");
        drain(&scheduler, now).await;
        drain(&scheduler, now + 15 * 24 * HOUR).await;
        assert!(outbox(&db, &shop).await.iter().all(|m| m.template != "review_request"));
    }
);

both_backends!(
    async fn a_first_order_from_a_stranger_welcomes_them_and_imported_history_does_not(db) {
        let config = json!({"browse-abandonment": {"enabled": false}, "post-purchase": {"enabled": false}});
        let (state, shop, keys, scheduler) = setup(db.clone(), config).await;
        let created = |jobs: Vec<JobStatus>| -> Vec<String> {
            jobs.into_iter()
                .filter(|j| j.payload["kind"] == "customer.created")
                .map(|j| j.payload["customer_id"].to_string())
                .collect()
        };
        let order = |id: &str, customer: &str| {
            json!({"id": id, "status": "paid", "currency": "USD", "placed_at": now_ms(),
                "customer": {"external_id": customer, "email": format!("{customer}@example.com"), "marketing_consent": true},
                "lines": [{"product_id": "p1", "title": "Beans", "quantity": 1, "unit_price": 1_500}]})
        };
        let (status, body) = call(&state, "POST", "/v1/orders", Some(&keys.secret), Some(order("o-1", "guest"))).await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        let guest = db.customer_by_external_id(shop.id, "guest").await.expect("read").expect("created by the order").id;
        assert_eq!(created(jobs_of(&db, &shop, TRIGGER_JOB).await).len(), 1, "customer.created with the first order");
        let (status, body) = call(&state, "POST", "/v1/orders", Some(&keys.secret), Some(order("o-2", "guest"))).await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        assert_eq!(created(jobs_of(&db, &shop, TRIGGER_JOB).await).len(), 1, "a second order creates no one");

        drain(&scheduler, now_ms()).await;
        let sent = outbox(&db, &shop).await;
        let welcomed: Vec<_> = sent.iter().filter(|m| m.template == "welcome_1").map(|m| m.customer_id).collect();
        assert_eq!(welcomed, [guest]);

        // Imported orders are history: their new customers are not welcomed.
        let path = std::env::temp_dir().join(format!("patron-history-{}.ndjson", patron::store::new_id()));
        let lines = [order("old-1", "veteran-1"), order("old-2", "veteran-2")].map(|o| o.to_string()).join("\n");
        std::fs::write(&path, lines).expect("write");
        let summary = patron::import::import_file(&db, &shop, patron::import::ImportKind::Orders, &path, false).await;
        let _ = std::fs::remove_file(&path);
        assert_eq!(summary.expect("import").created, 2);
        assert!(db.customer_by_external_id(shop.id, "veteran-1").await.expect("read").is_some());
        assert_eq!(created(jobs_of(&db, &shop, TRIGGER_JOB).await).len(), 1, "no customer.created for imports");
    }
);

both_backends!(
    async fn a_consumable_bought_again_and_again_gets_a_replenishment_reminder_before_it_runs_out(db) {
        let config = json!({"welcome": {"enabled": false}, "post-purchase": {"enabled": false},
            "win-back": {"enabled": false}, "browse-abandonment": {"enabled": false}});
        let (state, shop, keys, scheduler) = setup(db.clone(), config).await;
        let product = json!({"id": "beans", "title": "House beans", "price": 1_500, "category": "Coffee",
            "url": "https://shop.test/beans"});
        let (status, body) = call(&state, "POST", "/v1/products", Some(&keys.secret), Some(product)).await;
        assert!(status.is_success(), "{body}");
        let now = now_ms();
        let post = |id: String, customer: &str, at: i64| {
            let order = json!({"id": id, "status": "paid", "currency": "USD", "placed_at": at,
                "customer": {"external_id": customer, "email": format!("{customer}@example.com"), "marketing_consent": true},
                "lines": [{"product_id": "beans", "title": "House beans", "category": "Coffee", "quantity": 1, "unit_price": 1_500}]});
            let state = state.clone();
            let secret = keys.secret.clone();
            async move {
                let (status, body) = call(&state, "POST", "/v1/orders", Some(&secret), Some(order)).await;
                assert_eq!(status, StatusCode::CREATED, "{body}");
            }
        };
        // History: three customers rebuy the beans after 28, 29 and 30 days.
        for (n, customer) in ["a", "b", "c"].into_iter().enumerate() {
            let first = now - 200 * 24 * HOUR;
            post(format!("{customer}-1"), customer, first).await;
            post(format!("{customer}-2"), customer, first + (28 + n as i64) * 24 * HOUR).await;
        }
        assert_eq!(drain(&scheduler, now_ms()).await.len(), 9, "three customer.created, six order.placed");
        assert!(outbox(&db, &shop).await.is_empty(), "no interval learned yet: no reminder");
        let learned = db.learn_repurchase_intervals(shop.id).await.expect("learn");
        assert_eq!((learned.products, learned.from_category), (1, 0));
        let intervals = db.repurchase_intervals(shop.id, &["beans"]).await.expect("intervals");
        assert_eq!((intervals[0].days, intervals[0].samples), (29, 3));

        post("ada-1".into(), "ada", now).await;
        assert_eq!(drain(&scheduler, now_ms()).await, [TRIGGER_JOB, TRIGGER_JOB], "customer.created, order.placed");
        let ada = db.customer_by_external_id(shop.id, "ada").await.expect("read").expect("ada").id;
        let uri = format!("/v1/journeys/state?customer_id={ada}");
        let (_, body) = call(&state, "GET", &uri, Some(&keys.secret), None).await;
        let timers = body["installs"][0]["timers"].as_array().expect("timers").clone();
        let reminder = timers.iter().find(|t| t["name"] == "replenishment:beans").expect("a reminder is pending");
        assert_eq!(reminder["due_at"].as_i64(), Some(now + 26 * 24 * HOUR), "29 days less the 3-day lead");

        assert!(drain(&scheduler, now + 25 * 24 * HOUR).await.is_empty());
        assert_eq!(drain(&scheduler, now + 26 * 24 * HOUR + 60_000).await, [TIMER_JOB]);
        let sent = outbox(&db, &shop).await;
        assert_eq!(templates(&sent), ["replenishment"]);
        assert_eq!(sent[0].customer_id, ada);
        assert_eq!(sent[0].data["product_title"], "House beans");
        assert_eq!(sent[0].data["product_url"], "https://shop.test/beans");
    }
);

both_backends!(
    async fn due_timers_of_many_customers_fire_together_and_each_once(db) {
        let config = json!({"welcome": {"enabled": false}, "browse-abandonment": {"enabled": false}});
        let (state, shop, keys, scheduler) = setup(db.clone(), config).await;
        const CUSTOMERS: usize = 25;
        for n in 0..CUSTOMERS {
            let name = format!("c{n}");
            customer(&state, &shop, &keys, &name).await;
            events(&state, &shop, &name, json!([{"id": format!("cart-{n}"), "kind": "add_to_cart",
                "properties": {"product_id": "p1"}}])).await;
        }
        let now = now_ms();
        drain(&scheduler, now).await;
        assert_eq!(jobs_of(&db, &shop, TIMER_JOB).await.len(), 2 * CUSTOMERS, "two reminders each");
        // The first reminders are due: one lease takes them all, one transaction applies them.
        let second = Scheduler::new(db.clone(), state.plugins.clone());
        let at = now + 4 * HOUR + 60_000;
        assert_eq!(scheduler.run_due(at).await.expect("run"), Ran::Done { kind: TIMER_JOB.to_owned() });
        assert_eq!(second.run_due(at).await.expect("run"), Ran::Nothing, "the first worker holds every due timer");
        let sent = outbox(&db, &shop).await;
        assert_eq!(templates(&sent), ["cart_reminder_1"; CUSTOMERS]);
        let mut customers: Vec<i64> = sent.iter().map(|m| m.customer_id).collect();
        customers.sort_unstable();
        customers.dedup();
        assert_eq!(customers.len(), CUSTOMERS, "one reminder per customer");
        // One by one, the same happens.
        let one_by_one = Scheduler::new(db.clone(), state.plugins.clone()).with_timer_batch(1);
        let later = now + 24 * HOUR + 60_000;
        assert_eq!(drain(&one_by_one, later).await.len(), CUSTOMERS);
        assert_eq!(outbox(&db, &shop).await.len(), 2 * CUSTOMERS);
    }
);

/// Journey timers drained per second, fired in batches vs one by one, on both backends:
/// `cargo test --workspace --test journeys -- --ignored --nocapture timer_throughput`
/// (`TIMERS=n`, default 5,000).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a measurement, not a check"]
async fn timer_throughput() {
    let count: usize = std::env::var("TIMERS").ok().and_then(|n| n.parse().ok()).unwrap_or(5_000);
    for backend in [testing::Backend::Sqlite, testing::Backend::Postgres] {
        for batch in [1, patron::scheduler::TIMER_BATCH] {
            let db = testing::fresh_db(backend).await;
            let (state, shop, _, _) = setup(db.clone(), json!({})).await;
            let scheduler = Scheduler::new(db.clone(), state.plugins.clone()).with_timer_batch(batch);
            let now = now_ms();
            let mut customers = Vec::with_capacity(count);
            for n in 0..count {
                let input: patron::store::customers::CustomerInput =
                    serde_json::from_value(json!({"external_id": format!("t{n}")})).expect("input");
                customers.push(db.upsert_customer(shop.id, &input).await.expect("customer").0.id);
            }
            for (n, id) in customers.iter().enumerate() {
                // Timers of runs that no longer exist: the plugin reads its kv and sends nothing.
                let payload = json!({"plugin": "journeys", "customer_id": id, "name": "cart_abandonment:reminder_1",
                    "data": json!({"run": n}).to_string()});
                db.enqueue_job(shop.id, TIMER_JOB, &payload, now, &format!("timer:load:{n}")).await.expect("timer");
            }
            let started = std::time::Instant::now();
            let mut rounds = 0;
            loop {
                match scheduler.run_due(now + 1).await.expect("run") {
                    Ran::Nothing => break,
                    Ran::Done { .. } => rounds += 1,
                    Ran::Failed { kind, error } => panic!("{kind} failed: {error}"),
                }
            }
            let elapsed = started.elapsed();
            // The load's timers are the ones due at `now` (the customers' welcome timers are later).
            let load: Vec<_> = jobs_of(&db, &shop, TIMER_JOB).await.into_iter().filter(|j| j.run_at == now).collect();
            assert_eq!(load.len(), count);
            assert!(load.iter().all(|j| j.status == "done"), "every timer fired");
            println!(
                "{backend:?}, batch {batch}: {count} timers in {elapsed:.2?} ({rounds} leases): {:.0}/s",
                count as f64 / elapsed.as_secs_f64()
            );
        }
    }
}

/// Creates a customer with a birthday (`YYYY-MM-DD` or `--MM-DD`); returns Patron's id.
async fn customer_born(state: &AppState, shop: &Shop, keys: &NewShopKeys, external_id: &str, birthday: &str) -> i64 {
    let body = json!({"external_id": external_id, "email": format!("{external_id}@example.com"),
        "marketing_consent": true, "birthday": birthday});
    let (status, body) = call(state, "POST", "/v1/customers", Some(&keys.secret), Some(body)).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    state.db.customer_by_external_id(shop.id, external_id).await.expect("read").expect("stored").id
}

both_backends!(
    async fn a_birthday_today_in_the_shops_zone_brings_a_coupon_and_one_message(db) {
        // Tokyo is UTC+9: its midnight is 15:00 UTC of the day before, so the day the
        // check runs at differs between the shop's zone and UTC.
        let mut new = NewShop::named("tokyo");
        new.timezone = "Asia/Tokyo".into();
        let (shop, keys) = db.create_shop(&new).await.expect("shop");
        let state = AppState::new(db.clone());
        let (status, body) = install(&state, &keys, manifest(), json!({"welcome": {"enabled": false}})).await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        let scheduler = Scheduler::new(db.clone(), state.plugins.clone());

        let now = now_ms();
        let zone: chrono_tz::Tz = "Asia/Tokyo".parse().expect("zone");
        let today = birthdays::local_date(zone, now).and_then(|d| d.succ_opt()).expect("date");
        let midnight = birthdays::local_midnight(zone, today).expect("midnight");
        assert_eq!(birthdays::local_date(chrono_tz::Tz::UTC, midnight), today.pred_opt(), "UTC is a day behind");
        let month_day = |d: chrono::NaiveDate| d.format("%m-%d").to_string();
        let ada = customer_born(&state, &shop, &keys, "ada", &format!("1990-{}", month_day(today))).await;
        let utc_day = format!("--{}", month_day(today.pred_opt().expect("date")));
        customer_born(&state, &shop, &keys, "utc", &utc_day).await;
        let tomorrow = format!("1985-{}", month_day(today.succ_opt().expect("date")));
        customer_born(&state, &shop, &keys, "tomorrow", &tomorrow).await;
        assert_eq!(drain(&scheduler, now_ms()).await, [TRIGGER_JOB; 3], "customer.created, welcome off");

        scheduler.queue_birthdays(&shop, now).await.expect("queue");
        scheduler.queue_birthdays(&shop, now).await.expect("queue again: nothing new");
        let checks = jobs_of(&db, &shop, BIRTHDAY_JOB).await;
        assert_eq!(checks.iter().map(|j| j.run_at).collect::<Vec<_>>(), [midnight]);
        assert!(drain(&scheduler, midnight - 1).await.is_empty(), "not before local midnight");

        assert_eq!(drain(&scheduler, midnight + 60_000).await, [BIRTHDAY_JOB, TRIGGER_JOB]);
        let sent = outbox(&db, &shop).await;
        assert_eq!(templates(&sent), ["birthday"]);
        assert_eq!(sent[0].customer_id, ada);
        let data = &sent[0].data;
        assert_eq!((data["journey"].as_str(), data["step"].as_str()), (Some("birthday"), Some("greeting")));
        assert_eq!((data["purpose"].as_str(), data["coupon_percent"].as_i64()), (Some("marketing"), Some(15)));
        assert_eq!(data["date"], today.to_string());
        let code = data["coupon_code"].as_str().expect("the host filled in the coupon's code");
        let coupons = db.active_coupons(shop.id, ada).await.expect("coupons");
        let coupon = coupons.iter().find(|c| c.code == code).expect("the coupon is ada's");
        assert_eq!(coupon.expires_at, Some(midnight + 7 * 24 * HOUR));

        // The same day checked again (a retried job, another replica) queues nothing.
        assert_eq!(birthdays::queue_triggers(&db, &shop, today, midnight).await.expect("again"), 1);
        assert!(drain(&scheduler, midnight + 2 * 60_000).await.is_empty());
        assert_eq!(outbox(&db, &shop).await.len(), 1);
        // The next day's check is queued for the next local midnight.
        let next = jobs_of(&db, &shop, BIRTHDAY_JOB).await.into_iter().find(|j| j.status == "queued").expect("next");
        assert_eq!(Some(next.run_at), birthdays::local_midnight(zone, today.succ_opt().expect("date")));
        assert_eq!(next.payload, json!({"date": today.succ_opt().expect("date").to_string()}));

        // Feb 29 birthdays are celebrated on Feb 28 when the year has none.
        let leap = customer_born(&state, &shop, &keys, "leap", "2000-02-29").await;
        assert_eq!(drain(&scheduler, now_ms()).await, [TRIGGER_JOB], "customer.created");
        let feb_28 = chrono::NaiveDate::from_ymd_opt(2027, 2, 28).expect("date");
        let at = birthdays::local_midnight(zone, feb_28).expect("midnight");
        assert_eq!(birthdays::queue_triggers(&db, &shop, feb_28, at).await.expect("queue"), 1);
        assert_eq!(drain(&scheduler, now_ms()).await, [TRIGGER_JOB]);
        let sent = outbox(&db, &shop).await;
        assert_eq!(sent.iter().map(|m| (m.customer_id, m.template.as_str())).collect::<Vec<_>>(), [(ada, "birthday"), (leap, "birthday")]);
    }
);

both_backends!(
    async fn no_listening_install_means_no_birthday_triggers(db) {
        let (shop, keys) = testing::shop(&db, "quiet").await;
        let state = AppState::new(db.clone());
        let today = birthdays::local_date(chrono_tz::Tz::UTC, now_ms()).expect("date");
        customer_born(&state, &shop, &keys, "ada", &format!("--{}", today.format("%m-%d"))).await;
        assert_eq!(birthdays::queue_triggers(&db, &shop, today, now_ms()).await.expect("check"), 0);
        assert!(jobs_of(&db, &shop, TRIGGER_JOB).await.is_empty());
    }
);
