//! The plugin lifecycle through the host's API, with real components built from the
//! workspace's plugins, on both backends.

use std::time::Duration;

use axum::http::StatusCode;
use base64::Engine as _;
use patron::auth::NewShopKeys;
use patron::store::Db;
use patron::{AppState, app, both_backends, testing};
use serde_json::{Value, json};

fn wasm_base64(package: &str) -> String {
    let wasm = patron_runtime::testing::plugin_wasm(package).expect("plugin builds");
    base64::engine::general_purpose::STANDARD.encode(wasm)
}

fn manifest(name: &str, version: &str, imports: &[&str]) -> Value {
    json!({
        "name": name, "version": version, "world": "segmenter", "imports": imports,
        "config-schema": {"type": "object", "properties": {
            "vip-spend": {"type": "integer", "minimum": 0}, "lapsed-days": {"type": "integer", "minimum": 1}
        }}
    })
}

async fn call(state: &AppState, method: &str, uri: &str, secret: &str, body: Option<Value>) -> (StatusCode, Value) {
    testing::call(&app(state.clone()), method, uri, Some(secret), body).await
}

async fn install(
    state: &AppState,
    keys: &NewShopKeys,
    package: &str,
    manifest: Value,
    grants: &[&str],
    enable: bool,
) -> (StatusCode, Value) {
    let body = json!({"manifest": manifest, "wasm_base64": wasm_base64(package), "grants": grants, "enable": enable});
    call(state, "POST", "/v1/plugins", &keys.secret, Some(body)).await
}

/// Waits (bounded) until the workers' requests have re-segmented `external_id` as `expected`.
async fn eventually_segmented(db: &Db, shop_id: i64, external_id: &str, expected: &[&str]) {
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        if db.customer_by_external_id(shop_id, external_id).await.expect("read").is_some() {
            let segments = segments_of(db, shop_id, external_id).await;
            if segments == expected {
                return;
            }
            assert!(std::time::Instant::now() < deadline, "{external_id} still in {segments:?}, expected {expected:?}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn segments_of(db: &Db, shop_id: i64, external_id: &str) -> Vec<String> {
    let customer = db.customer_by_external_id(shop_id, external_id).await.expect("read").expect("customer");
    db.current_segments(shop_id, customer.id).await.expect("segments")
}

both_backends!(
    async fn install_checks_grants_and_config_and_dry_run_applies_nothing(db) {
        let (shop, keys) = testing::shop(&db, "a").await;
        let state = AppState::new(db.clone());
        // Deliberately changed: an import that was not granted no longer refuses the
        // install; it is a stub, and the call that uses it fails naming it.
        let (status, body) = install(&state, &keys, "segment-example", manifest("ungranted", "0.1.0", &["config"]), &[], true).await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        let (status, _) = call(&state, "POST", "/v1/customers", &keys.secret, Some(json!({"external_id": "big"}))).await;
        assert!(status.is_success(), "the host answers despite the plugin");
        let ungranted = db.plugin_install(shop.id, "ungranted").await.expect("read").expect("installed");
        let last_error = ungranted.last_error.unwrap_or_default();
        assert!(last_error.contains("capability `config` not granted to plugin ungranted@0.1.0"), "{last_error}");
        let (status, _) = call(&state, "DELETE", "/v1/plugins/ungranted", &keys.secret, None).await;
        assert!(status.is_success(), "{status}");
        assert!(db.plugin_installs(shop.id).await.expect("list").is_empty());

        let (status, body) = install(&state, &keys, "no-world", manifest("no-world", "0.1.0", &[]), &[], false).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "a component with no Patron world is refused: {body}");

        let (status, body) = install(&state, &keys, "segment-example", manifest("segment-example", "0.1.0", &["config"]), &["config"], false).await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        assert_eq!(body["status"], "disabled");

        let (status, body) = call(&state, "PUT", "/v1/plugins/segment-example/config", &keys.secret, Some(json!({"vip-spend": "lots"}))).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
        assert!(body["error"]["message"].as_str().unwrap_or_default().contains("vip-spend"), "{body}");
        let (status, _) = call(&state, "PUT", "/v1/plugins/segment-example/config", &keys.secret, Some(json!({"vip-spend": 100}))).await;
        assert_eq!(status, StatusCode::OK);

        for (id, spent) in [("big", 500), ("small", 50)] {
            let order = json!({"id": format!("o-{id}"), "customer": {"external_id": id}, "lines": [{"title": "x", "quantity": 1, "unit_price": spent}]});
            let (status, _) = call(&state, "POST", "/v1/orders", &keys.secret, Some(order)).await;
            assert_eq!(status, StatusCode::CREATED);
        }
        assert!(segments_of(&db, shop.id, "big").await.is_empty(), "a disabled plugin does not run");
        let (status, report) = call(&state, "POST", "/v1/plugins/segment-example/dry-run", &keys.secret, None).await;
        assert_eq!(status, StatusCode::OK, "{report}");
        assert_eq!(report["world"], "segmenter");
        assert_eq!(report["customers"], 2);
        assert_eq!(report["sizes"]["vip"], 1);
        assert!(segments_of(&db, shop.id, "big").await.is_empty(), "a dry run applies nothing");

        let (status, _) = call(&state, "POST", "/v1/plugins/segment-example/enable", &keys.secret, None).await;
        assert_eq!(status, StatusCode::OK);
        let order = json!({"id": "o-big-2", "customer": {"external_id": "big"}, "lines": [{"title": "x", "quantity": 1, "unit_price": 10}]});
        call(&state, "POST", "/v1/orders", &keys.secret, Some(order)).await;
        assert_eq!(segments_of(&db, shop.id, "big").await, ["vip"], "two orders: no longer new");
    }
);

both_backends!(
    async fn upgrade_and_rollback_switch_behaviour_without_failed_requests(db) {
        let (shop, keys) = testing::shop(&db, "a").await;
        let state = AppState::new(db.clone());
        let (status, body) = install(&state, &keys, "segment-example", manifest("segment-example", "0.1.0", &["config"]), &["config"], true).await;
        assert_eq!(status, StatusCode::CREATED, "{body}");

        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let mut workers = Vec::new();
        for worker in 0..4 {
            let (state, secret, stop) = (state.clone(), keys.secret.clone(), stop.clone());
            workers.push(tokio::spawn(async move {
                let mut n = 0u64;
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    let customer = json!({"external_id": format!("w{worker}"), "email": format!("w{worker}@example.com"), "traits": {"n": n}});
                    let (status, body) = call(&state, "POST", "/v1/customers", &secret, Some(customer)).await;
                    assert!(status.is_success(), "request failed during an upgrade: {status} {body}");
                    n += 1;
                }
                n
            }));
        }
        eventually_segmented(&db, shop.id, "w0", &["prospect"]).await;

        // 0.2.0 is different code: the raw wit-bindgen segmenter (segments by email and tags).
        let (status, body) = install(&state, &keys, "raw-segmenter", manifest("segment-example", "0.2.0", &[]), &[], true).await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        assert_eq!(body["previous_version"], "0.1.0");
        eventually_segmented(&db, shop.id, "w0", &["has-email"]).await;

        let (status, body) = call(&state, "POST", "/v1/plugins/segment-example/rollback", &keys.secret, None).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(body["active_version"], "0.1.0");
        eventually_segmented(&db, shop.id, "w0", &["prospect"]).await;

        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        for worker in workers {
            assert!(worker.await.expect("worker") > 0);
        }
        let install = db.plugin_install(shop.id, "segment-example").await.expect("read").expect("installed");
        assert_eq!((install.failures, install.versions.len()), (0, 2));
    }
);

both_backends!(
    async fn a_hostile_plugin_fails_alone_and_its_breaker_trips(db) {
        let (_shop, keys) = testing::shop(&db, "a").await;
        let state = AppState::new(db.clone());
        let (status, body) = install(&state, &keys, "hostile-loop", manifest("hostile-loop", "0.1.0", &[]), &[], true).await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        for n in 0..patron::plugins::BREAKER_THRESHOLD {
            let customer = json!({"external_id": "c1", "traits": {"n": n}});
            let (status, body) = call(&state, "POST", "/v1/customers", &keys.secret, Some(customer)).await;
            assert!(status.is_success(), "the host answers despite the plugin: {status} {body}");
        }
        let (_, install) = call(&state, "GET", "/v1/plugins/hostile-loop", &keys.secret, None).await;
        assert_eq!(install["status"], "tripped", "{install}");
        assert_eq!(install["failures"], patron::plugins::BREAKER_THRESHOLD);
        let last_error = install["last_error"].as_str().unwrap_or_default();
        assert!(last_error.contains("hostile-loop@0.1.0") && last_error.contains("timed out"), "{last_error}");
        // Tripped plugins are not called: the next request is fast and fine.
        let started = std::time::Instant::now();
        let (status, _) = call(&state, "POST", "/v1/customers", &keys.secret, Some(json!({"external_id": "c2"}))).await;
        assert_eq!(status, StatusCode::CREATED);
        assert!(started.elapsed() < Duration::from_millis(900), "no plugin timeout on the request path");
        let (_, install) = call(&state, "POST", "/v1/plugins/hostile-loop/enable", &keys.secret, None).await;
        assert_eq!((install["status"].as_str(), install["failures"].as_i64()), (Some("enabled"), Some(0)));
    }
);
