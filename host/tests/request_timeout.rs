//! Every request is bounded: a plugin that sleeps in a host call cannot hold a request
//! (or the shop) past the server's request timeout, and the plugin call itself ends at
//! its own limit.

use std::time::{Duration, Instant};

use axum::Router;
use axum::http::StatusCode;
use base64::Engine as _;
use patron::api::app_with_timeout;
use patron::{AppState, both_backends, testing};
use serde_json::{Value, json};

async fn call(app: &Router, method: &str, uri: &str, secret: &str, body: Option<Value>) -> (StatusCode, Value) {
    testing::call(app, method, uri, Some(secret), body).await
}

both_backends!(
    async fn a_request_past_its_timeout_is_a_json_503_and_the_shop_answers_on(db) {
        let (shop, keys) = testing::shop(&db, "a").await;
        let app = app_with_timeout(AppState::new(db.clone()), Duration::from_millis(300));
        let wasm = patron_runtime::testing::plugin_wasm("hostile-sleep").expect("plugin builds");
        let manifest = json!({"name": "sleeper", "version": "0.1.0", "world": "segmenter", "imports": []});
        let body = json!({"manifest": manifest, "wasm_base64": base64::engine::general_purpose::STANDARD.encode(wasm), "grants": [], "enable": true});
        let (status, body) = call(&app, "POST", "/v1/plugins", &keys.secret, Some(body)).await;
        assert_eq!(status, StatusCode::CREATED, "{body}");

        // Segmenting the new customer runs the sleeper (plugin limit: 1 s by default).
        let started = Instant::now();
        let (status, body) = call(&app, "POST", "/v1/customers", &keys.secret, Some(json!({"external_id": "c1"}))).await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
        assert_eq!(body["error"]["code"], "timeout", "{body}");
        assert!(body["error"]["message"].as_str().is_some_and(|m| m.contains("300 ms")), "{body}");
        assert!(started.elapsed() < Duration::from_millis(900), "answered after {:?}", started.elapsed());

        // Meanwhile the shop's other requests answer.
        let (status, body) = call(&app, "GET", "/v1/plugins", &keys.secret, None).await;
        assert_eq!(status, StatusCode::OK, "{body}");

        // The abandoned plugin call ended at its own limit, recorded as a timeout.
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let install = db.plugin_install(shop.id, "sleeper").await.expect("read").expect("installed");
            if let Some(error) = install.last_error {
                assert!(error.contains("sleeper@0.1.0") && error.contains("timed out after 1s"), "{error}");
                break;
            }
            assert!(Instant::now() < deadline, "the plugin call never ended");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
);
