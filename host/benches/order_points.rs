//! Order-to-points latency: `POST /v1/orders` over loopback with the first-party loyalty
//! plugin enabled. Points are written to the ledger inside the request, so the request
//! latency *is* the order-to-points latency. Three shops in one fresh database per
//! backend, posted to in turn (so noise on the shared machine hits all three alike):
//!
//! - `none`: no plugin installed — the cost of storing the order;
//! - `loyalty`: the loyalty plugin (config `{"currency": "USD", "points-expiry-days": 365}`);
//! - `loyalty+seg`: loyalty plus the rfm and rules segmenters, which re-segment the
//!   order's customer inside the same request.
//!
//! `cargo bench -p patron --bench order_points` (`ORDERS` orders per shop, default 2000;
//! `ORDER_CUSTOMERS` distinct customers, default 200; `BACKENDS=sqlite` or `postgres`).

use std::time::{Duration, Instant};

use patron::AppState;
use patron::store::Db;
use patron::testing::{self, Backend};
use patron_runtime::Manifest;
use serde_json::{Value, json};

fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// The three-level membership example of `plugins/rules/README.md` plus a few of its
/// "examples from practice".
fn rules_config() -> Value {
    json!({"rules": [
        {"name": "super", "group": "membership", "when": {"all": [
            {"days-since-last-order": {"lte": 365}}, {"orders-per-year": {"gte": 5}}, {"spent-per-year": {"gte": 100_000}}]}},
        {"name": "core", "group": "membership", "when": {"all": [
            {"days-since-last-order": {"lte": 365}},
            {"any": [{"orders-per-year": {"gte": 3}}, {"spent-per-year": {"gte": 50_000}}]}]}},
        {"name": "regular", "group": "membership"},
        {"name": "dormant", "when": {"days-since-last-order": {"gt": 90}}},
        {"name": "one-and-done", "when": {"all": [{"order-count": {"eq": 1}}, {"days-since-last-order": {"gt": 60}}]}},
        {"name": "big-spenders", "when": {"all": [{"total-spent": {"gte": 200_000}}, {"not": {"has-tag": "wholesale"}}]}}
    ]})
}

async fn install(state: &AppState, shop_id: i64, plugin: &str, config: Value) {
    let path = format!("{}/../plugins/{plugin}/patron.toml", env!("CARGO_MANIFEST_DIR"));
    let manifest = Manifest::from_toml(&std::fs::read_to_string(&path).expect("manifest")).expect("valid manifest");
    let grants: Vec<String> = toml::from_str::<toml::Value>(&std::fs::read_to_string(&path).expect("manifest"))
        .expect("toml")["imports"]
        .as_array()
        .expect("imports")
        .iter()
        .map(|g| g.as_str().expect("grant").to_owned())
        .collect();
    let wasm = patron_runtime::testing::plugin_wasm(plugin).expect("plugin builds");
    state.plugins.install(shop_id, wasm, manifest, grants, Some(config), true).await.expect("install");
}

fn order(shop: &str, n: u64, customers: u64) -> String {
    let amount = 1_000 + (n * 7_919) % 40_000;
    json!({
        "id": format!("{shop}-{n}"),
        "customer": {"external_id": format!("c{}", n % customers), "first_name": "Ada", "email": format!("c{}@shop.test", n % customers)},
        "lines": [{"product_id": format!("p{}", n % 17), "title": "Tea", "quantity": 1 + n % 3, "unit_price": amount}]
    })
    .to_string()
}

struct Variant {
    name: &'static str,
    shop_id: i64,
    secret: String,
    loyalty: bool,
    latencies: Vec<Duration>,
}

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    let i = ((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[i].as_secs_f64() * 1e3
}

async fn balance(db: &Db, shop_id: i64, external_id: &str) -> i64 {
    match db.customer_by_external_id(shop_id, external_id).await.expect("read") {
        Some(c) => db.points_balance(shop_id, c.id).await.expect("balance"),
        None => 0,
    }
}

async fn measure(backend: Backend, orders: u64, customers: u64) {
    let db: Db = testing::fresh_db(backend).await;
    let state = AppState::new(db.clone());
    let mut variants = Vec::new();
    for (name, plugins) in
        [("none", &[][..]), ("loyalty", &["loyalty"][..]), ("loyalty+seg", &["loyalty", "rfm", "rules"][..])]
    {
        let (shop, keys) = testing::shop(&db, name).await;
        for plugin in plugins {
            let config = match *plugin {
                "loyalty" => json!({"currency": "USD", "points-expiry-days": 365}),
                "rules" => rules_config(),
                _ => json!({}),
            };
            install(&state, shop.id, plugin, config).await;
        }
        variants.push(Variant {
            name,
            shop_id: shop.id,
            secret: keys.secret,
            loyalty: !plugins.is_empty(),
            latencies: Vec::new(),
        });
    }

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let url = format!("http://{}/v1/orders", listener.local_addr().expect("addr"));
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(patron::serve(listener, patron::api::app(state), async {
        let _ = stopped.await;
    }));
    let client = reqwest::Client::new();

    let warmup = 50;
    let mut checked = 0;
    for n in 0..warmup + orders {
        // Rotate which shop goes first so none is always posted right after another.
        let first = (n % 3) as usize;
        for k in 0..3 {
            let variant = &mut variants[(first + k) % 3];
            let external_id = format!("c{}", n % customers);
            let check = variant.loyalty && n % 50 == 0;
            let before = if check { balance(&db, variant.shop_id, &external_id).await } else { 0 };
            let body = order(variant.name, n, customers);
            let started = Instant::now();
            let response = client
                .post(&url)
                .bearer_auth(&variant.secret)
                .header("content-type", "application/json")
                .body(body)
                .send()
                .await
                .expect("post");
            let status = response.status();
            let bytes = response.bytes().await.expect("body");
            let elapsed = started.elapsed();
            assert_eq!(status.as_u16(), 201, "{}", String::from_utf8_lossy(&bytes));
            if n >= warmup {
                variant.latencies.push(elapsed);
            }
            if check {
                // The points are in the ledger once the response is back.
                let after = balance(&db, variant.shop_id, &external_id).await;
                assert!(after > before, "{}: order {n} earned no points ({before} → {after})", variant.name);
                checked += 1;
            }
        }
    }
    let _ = stop.send(());
    server.await.expect("server task").expect("server");

    let base = {
        let mut sorted = variants[0].latencies.clone();
        sorted.sort();
        (percentile(&sorted, 0.5), percentile(&sorted, 0.99))
    };
    println!(
        "{backend:?}: {orders} orders per shop over {customers} customers, sequential, {checked} ledger checks passed"
    );
    println!(
        "  {:<12} {:>9} {:>9} {:>9} {:>12} {:>12}",
        "shop", "p50 ms", "p99 ms", "mean ms", "p50 - none", "p99 - none"
    );
    for variant in &mut variants {
        variant.latencies.sort();
        let (p50, p99) = (percentile(&variant.latencies, 0.5), percentile(&variant.latencies, 0.99));
        let mean = variant.latencies.iter().sum::<Duration>().as_secs_f64() * 1e3 / variant.latencies.len() as f64;
        println!(
            "  {:<12} {p50:>9.2} {p99:>9.2} {mean:>9.2} {:>12.2} {:>12.2}",
            variant.name,
            p50 - base.0,
            p99 - base.1
        );
    }
}

#[tokio::main]
async fn main() {
    // `cargo bench` passes `--bench`; anything else (e.g. `cargo test --benches`) runs briefly.
    let benching = std::env::args().any(|a| a == "--bench");
    let orders = if benching { env_or("ORDERS", 2_000) } else { 20 };
    let customers = env_or("ORDER_CUSTOMERS", 200);
    let backends = std::env::var("BACKENDS").unwrap_or_default();
    for backend in [Backend::Sqlite, Backend::Postgres] {
        let name = format!("{backend:?}").to_lowercase();
        if backends.is_empty() || backends.split(',').any(|b| b == name) {
            measure(backend, orders, customers).await;
        }
    }
}
