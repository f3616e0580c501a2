//! A shop's settings after `shop create`: `PATCH /v1/shop` (and `GET`), each field checked,
//! the currency locked once money is recorded; plugin configs following the shop's
//! currency and locale — on both backends.

use axum::http::StatusCode;
use patron::plugins::PluginHost;
use patron::store::shops::NewShop;
use patron::{AppState, app, both_backends, testing};
use serde_json::{Value, json};

async fn call(state: &AppState, method: &str, uri: &str, key: &str, body: Option<Value>) -> (StatusCode, Value) {
    testing::call(&app(state.clone()), method, uri, Some(key), body).await
}

both_backends!(
    async fn patch_shop_changes_each_setting_and_checks_it(db) {
        let (_, keys) = testing::shop(&db, "a").await;
        let state = AppState::new(db.clone());
        let (status, shop) = call(&state, "GET", "/v1/shop", &keys.secret, None).await;
        assert_eq!(status, StatusCode::OK, "{shop}");
        assert!(shop["id"].is_string(), "{shop}");
        assert_eq!((shop["currency"].as_str(), shop["locale"].as_str()), (Some("USD"), Some("en")));

        let change = json!({
            "allowed_origins": ["https://shop.example/", "http://localhost:3000"],
            "consent_required": true, "honor_dnt": true,
            "currency": "cny", "locale": "zh-CN", "timezone": "Asia/Shanghai"
        });
        let (status, shop) = call(&state, "PATCH", "/v1/shop", &keys.secret, Some(change)).await;
        assert_eq!(status, StatusCode::OK, "{shop}");
        assert_eq!(shop["allowed_origins"], json!(["https://shop.example", "http://localhost:3000"]));
        assert_eq!((shop["consent_required"].as_bool(), shop["honor_dnt"].as_bool()), (Some(true), Some(true)));
        assert_eq!((shop["currency"].as_str(), shop["locale"].as_str()), (Some("CNY"), Some("zh-CN")));
        assert_eq!(shop["timezone"], "Asia/Shanghai");
        // The next request sees the change at once (the cached lookup was dropped).
        let (_, again) = call(&state, "GET", "/v1/shop", &keys.secret, None).await;
        assert_eq!(again, shop);

        // Bad values are 422 naming the field, and change nothing.
        for (body, field) in [
            (json!({"currency": "EUX"}), "currency"),
            (json!({"locale": "xx-YY"}), "locale"),
            (json!({"timezone": "Mars/Olympus"}), "timezone"),
            (json!({"allowed_origins": ["shop.example"]}), "allowed_origins"),
            (json!({"locale": "en", "timezone": "Nowhere"}), "timezone"),
            (json!({}), "body"),
        ] {
            let (status, error) = call(&state, "PATCH", "/v1/shop", &keys.secret, Some(body.clone())).await;
            assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}: {error}");
            assert!(error["error"]["message"].as_str().unwrap_or_default().contains(field), "{body}: {error}");
        }
        let (status, _) = call(&state, "PATCH", "/v1/shop", &keys.secret, Some(json!({"colour": "red"}))).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "unknown settings are refused");
        let (_, unchanged) = call(&state, "GET", "/v1/shop", &keys.secret, None).await;
        assert_eq!(unchanged, shop);
        let (status, _) = call(&state, "PATCH", "/v1/shop", &keys.publishable, Some(json!({"locale": "en"}))).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "the publishable key cannot change a shop");

        // Once the shop records money, its currency is fixed: amounts are never converted.
        let order = json!({"id": "o-1", "customer": {"external_id": "c-1"}, "lines": [{"title": "Tea", "quantity": 1, "unit_price": 1200}]});
        let (status, body) = call(&state, "POST", "/v1/orders", &keys.secret, Some(order)).await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        let (status, error) = call(&state, "PATCH", "/v1/shop", &keys.secret, Some(json!({"currency": "EUR"}))).await;
        assert_eq!(status, StatusCode::CONFLICT, "{error}");
        let message = error["error"]["message"].as_str().unwrap_or_default();
        assert!(message.contains("orders in CNY") && message.contains("new shop"), "{message}");
        // The same currency again, and the other settings, still change.
        let (status, shop) =
            call(&state, "PATCH", "/v1/shop", &keys.secret, Some(json!({"currency": "CNY", "locale": "en-GB"}))).await;
        assert_eq!(status, StatusCode::OK, "{shop}");
        assert_eq!((shop["currency"].as_str(), shop["locale"].as_str()), (Some("CNY"), Some("en-GB")));
    }
);

both_backends!(
    async fn plugin_config_left_unset_follows_the_shops_currency(db) {
        let new = NewShop { currency: "CNY".into(), locale: "zh-CN".into(), ..NewShop::named("cn") };
        let (shop, _) = db.create_shop(&new).await.expect("shop");
        let plugins = PluginHost::new(db.clone(), None);
        let manifest_path = format!("{}/../plugins/loyalty/patron.toml", env!("CARGO_MANIFEST_DIR"));
        let manifest = patron_runtime::Manifest::from_toml(&std::fs::read_to_string(manifest_path).expect("manifest"))
            .expect("valid");
        let grants: Vec<String> = manifest.imports.iter().map(|c| c.name().to_owned()).collect();
        let wasm = patron_runtime::testing::plugin_wasm("loyalty").expect("plugin builds");
        plugins.install(shop.id, wasm, manifest, grants, Some(json!({})), true).await.expect("install");
        let active = plugins.active(shop.id, patron_runtime::World::Loyalty).await.expect("active");
        assert_eq!(active[0].install.config["currency"], "CNY", "the plugin counts in the shop's currency");
        // What the merchant stored is untouched (it still says nothing about currency).
        let stored = db.plugin_install(shop.id, "loyalty").await.expect("read").expect("installed");
        assert_eq!(stored.config, json!({}));
        // A merchant's explicit choice stands.
        plugins.configure(shop.id, "loyalty", json!({"currency": "USD", "unit": 1})).await.expect("configure");
        let active = plugins.active(shop.id, patron_runtime::World::Loyalty).await.expect("active");
        // The locale, still unset, follows the shop.
        assert_eq!(active[0].install.config, json!({"currency": "USD", "unit": 1, "locale": "zh-CN"}));
    }
);
