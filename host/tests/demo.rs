//! The README's first command, `patron serve --demo`, on a fresh data directory: the code
//! path it runs (`cli::demo_store`), checked over HTTP; and the `patron` binary copied
//! into an empty directory, serving the widget and the demo storefront by itself.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use axum::http::StatusCode;
use patron::config::{Config, Settings};
use patron::plugins::PluginHost;
use patron::store::Db;
use patron::store::shops::NewShop;
use patron::testing::call;
use serde_json::Value;

/// A directory under the system's temporary one, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(what: &str) -> Self {
        let path = std::env::temp_dir().join(format!("patron-{what}-{}", patron::store::new_id()));
        std::fs::create_dir_all(&path).expect("temp dir");
        Self(path)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn serve_demo_installs_and_runs_every_first_party_plugin() {
    assert_eq!(patron::embedded::plugins_missing(), None, "this test needs the plugins built into patron");
    let dir = TempDir::new("demo");
    let settings = Settings { data_dir: Some(dir.0.clone()), ..Settings::default() };
    let config = Config::resolve(settings, None).expect("config");
    let db = Db::connect(&config.database_url).await.expect("open the data directory's database");
    // The demo shop with keys the test knows; `demo_store` finds it empty and seeds it.
    let origin = "http://127.0.0.1:9";
    let new = NewShop { allowed_origins: vec![origin.into()], ..NewShop::named(patron::cli::DEMO_SHOP) };
    let (shop, keys) = db.create_shop(&new).await.expect("shop");
    let plugins = PluginHost::new(db.clone(), Some(config.data_dir.join("plugin-cache")));

    let started = Instant::now();
    let store = patron::cli::demo_store(&plugins, origin, 150).await.expect("the demo");
    eprintln!("demo of 150 customers ready in {:.1}s", started.elapsed().as_secs_f64());
    let member = store.member.clone().expect("the demo signs in as its best customer");
    let product = store.products.first().expect("the demo sells products").id.clone();

    let mut state = patron::AppState::new(db.clone());
    state.plugins = plugins.clone();
    state.demo = Some(store);
    let app = patron::app(state);
    let secret = Some(keys.secret.as_str());

    // Every first-party plugin installed and enabled.
    let (status, installs) = call(&app, "GET", "/v1/plugins", secret, None).await;
    assert_eq!(status, StatusCode::OK, "{installs}");
    let mut enabled: Vec<&str> = installs
        .as_array()
        .expect("a list")
        .iter()
        .filter(|i| i["status"] == "enabled")
        .filter_map(|i| i["name"].as_str())
        .collect();
    enabled.sort_unstable();
    assert_eq!(enabled, ["clv", "journeys", "loyalty", "recommender", "rfm", "rules"], "{installs}");

    // Segments with members: the rules plugin's membership levels and RFM's segments.
    let (status, sizes) = call(&app, "GET", "/v1/segments", secret, None).await;
    assert_eq!(status, StatusCode::OK, "{sizes}");
    let size = |name: &str| {
        sizes.as_array().expect("sizes").iter().find(|s| s["segment"] == name).and_then(|s| s["members"].as_i64())
    };
    let levels: i64 = ["super", "core", "regular"].iter().filter_map(|level| size(level)).sum();
    assert!(levels > 0 && size("regular").is_some(), "membership levels: {sizes}");
    // RFM's are the others (champions, loyal, at-risk, …).
    let rfm: i64 = sizes
        .as_array()
        .expect("sizes")
        .iter()
        .filter(|s| !["super", "core", "regular"].iter().any(|level| s["segment"] == *level))
        .filter_map(|s| s["members"].as_i64())
        .sum();
    assert!(rfm > 0, "RFM segments: {sizes}");

    // The signed-in demo shopper is a member with points, a tier and a coupon, earned
    // by the demo's orders through the loyalty plugin.
    let (status, view) = call(&app, "GET", &format!("/v1/members/{}", member.customer_id), secret, None).await;
    assert_eq!(status, StatusCode::OK, "{view}");
    assert!(view["points"]["balance"].as_i64().is_some_and(|b| b > 0), "points: {view}");
    assert!(view["tier"]["name"].is_string(), "tier: {view}");
    assert!(!view["coupons"].as_array().expect("coupons").is_empty(), "coupons: {view}");
    assert!(view["ledger"].as_array().expect("ledger").iter().any(|row| row["delta"].as_i64() > Some(0)), "{view}");

    // A product page's recommendation strip, from the trained recommender.
    let uri = format!("/v1/recommendations?placement=product&product_id={product}&key={}", keys.publishable);
    let (status, recs) = call(&app, "GET", &uri, None, None).await;
    assert_eq!(status, StatusCode::OK, "{recs}");
    let items = recs["items"].as_array().expect("items");
    assert!(!items.is_empty(), "no recommendation for product {product}: {recs}");
    assert!(items.iter().all(|i| i["product_id"] != Value::String(product.clone())), "{recs}");

    // Restarting the demo repeats nothing.
    let ledger_rows: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM points_ledger WHERE shop_id = $1")
        .bind(shop.id)
        .fetch_one(db.pool())
        .await
        .expect("count");
    patron::cli::demo_store(&plugins, origin, 150).await.expect("the demo again");
    let again: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM points_ledger WHERE shop_id = $1")
        .bind(shop.id)
        .fetch_one(db.pool())
        .await
        .expect("count");
    assert_eq!(again, ledger_rows);
}

/// `patron` copied into an empty directory serves the widget and the demo from itself.
#[tokio::test(flavor = "multi_thread")]
async fn the_binary_alone_serves_the_widget_and_the_demo() {
    assert!(
        patron::embedded::widget_file("patron.js").is_some(),
        "the widget is not built into patron: run web-widget/build.sh, then build again"
    );
    let dir = TempDir::new("copied-binary");
    let binary = dir.0.join("patron");
    std::fs::copy(env!("CARGO_BIN_EXE_patron"), &binary).expect("copy the binary");
    let port = std::net::TcpListener::bind("127.0.0.1:0").expect("a free port").local_addr().expect("addr").port();
    let mut child = std::process::Command::new(&binary)
        .current_dir(&dir.0)
        .env_remove("PATRON_WIDGET_DIR")
        .env_remove("DATABASE_URL")
        .env_remove("CARGO_MANIFEST_DIR")
        .args(["--listen", &format!("127.0.0.1:{port}"), "--data-dir", "data"])
        .args(["serve", "--demo", "--demo-customers", "40"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("start patron");
    let base = format!("http://127.0.0.1:{port}");
    let client = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs(300);
    let mut demo = None;
    while Instant::now() < deadline {
        if let Ok(response) = client.get(format!("{base}/demo/")).send().await {
            demo = Some(response);
            break;
        }
        assert!(child.try_wait().expect("child").is_none(), "patron exited before serving");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let demo = demo.expect("patron served /demo/ in time");
    assert_eq!(demo.status(), reqwest::StatusCode::OK);
    assert!(demo.text().await.expect("page").contains("/widget/patron.js"), "the demo embeds the widget");
    let loader = client.get(format!("{base}/widget/patron.js")).send().await.expect("loader");
    assert_eq!(loader.status(), reqwest::StatusCode::OK);
    let loader = loader.text().await.expect("loader text");
    assert!(loader.contains("patron_bg.wasm"), "the loader imports the module");
    let wasm = client.get(format!("{base}/widget/patron_bg.wasm")).send().await.expect("wasm");
    assert_eq!(wasm.status(), reqwest::StatusCode::OK);
    assert!(wasm.bytes().await.expect("wasm bytes").starts_with(b"\0asm"));
    let _ = child.kill();
    let _ = child.wait();
}
