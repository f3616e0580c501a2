//! Per-call cost of the recommender plugin, on a model trained in-process over a seeded
//! demo shop (the demo catalogue; `RECS_CUSTOMERS` customers, default 10,000, and their
//! orders), per placement:
//!
//! - `native`: the plugin's own `recommender::recommend` compiled natively over the same
//!   model bytes — the reference: the ranking itself, no sandbox;
//! - `warm_call`: one `recommend` call on an existing instance (the model is copied into
//!   guest memory, the answer lifted back);
//! - `fresh_call`: new store and instance from the pooling allocator + that call — what
//!   the host does per request;
//! - `host`: `PluginHost::recommend`, the whole serving path under
//!   `GET /v1/recommendations` (model cache, history reads for `for-you`, the call on a
//!   blocking thread, product rows, recent purchases, filters), on SQLite;
//! - `products_by_ids`: the one product read every `host` call makes — the cost of a
//!   single indexed query, to read `host` against.
//!
//! `cargo bench -p patron --bench recommend` (builds `plugins/recommender` for
//! wasm32-wasip2 first, through `patron_runtime::testing`).

use std::hint::black_box;

use criterion::{BenchmarkId, Criterion};
use patron::demo::SeedOptions;
use patron::demo::catalog::planted_pairs;
use patron::plugins::PluginHost;
use patron::plugins::recommendations::{Placement, RecsRequest};
use patron::store::Db;
use patron::store::shops::Shop;
use patron::testing::{self, Backend};
use patron_runtime::CallContext;
use patron_runtime::types::RecommendRequest;
use recommender::config::Config;
use tokio::runtime::Runtime;

/// A fixed end of the demo history, so the shop is the same on every run.
const DEMO_END: i64 = 1_780_000_000_000;
/// Items a request asks for (the API's default); the host asks the plugin for twice that.
const LIMIT: usize = 8;
const ASKED: u32 = 2 * LIMIT as u32;

/// A shop with a trained recommender, and what the benchmarks call it with.
struct Fixture {
    db: Db,
    shop: Shop,
    plugins: PluginHost,
    model: Vec<u8>,
    config: String,
    /// The signed-in shopper with the most orders (the longest `for-you` history).
    regular: i64,
}

async fn fixture() -> Fixture {
    let customers = std::env::var("RECS_CUSTOMERS").ok().and_then(|v| v.parse().ok()).unwrap_or(10_000);
    let db = testing::fresh_db(Backend::Sqlite).await;
    let (shop, _keys) = testing::shop(&db, "demo").await;
    let options = SeedOptions { customers, seed: 1, end: Some(DEMO_END), progress: false, ..SeedOptions::default() };
    let seeded = patron::demo::seed(&db, &shop, &options).await.expect("seed");
    let plugins = PluginHost::new(db.clone(), None);
    let manifest_path = concat!(env!("CARGO_MANIFEST_DIR"), "/../plugins/recommender/patron.toml");
    let manifest =
        patron_runtime::Manifest::from_toml(&std::fs::read_to_string(manifest_path).expect("manifest")).expect("valid");
    let grants = manifest.imports.iter().map(|c| c.name().to_owned()).collect();
    let wasm = patron_runtime::testing::plugin_wasm("recommender").expect("recommender plugin builds");
    plugins.install(shop.id, wasm, manifest, grants, None, true).await.expect("install");
    let active = plugins.recommender(shop.id).await.expect("read").expect("enabled");
    let report = plugins.train_shop(&shop, &active, &|_, _| {}).await.expect("train");
    let model = db.recommendation_model(shop.id, "recommender").await.expect("read").expect("stored").model;
    let regular: i64 =
        sqlx::query_scalar("SELECT id FROM customers WHERE shop_id = $1 ORDER BY order_count DESC, id LIMIT 1")
            .bind(shop.id)
            .fetch_one(db.pool())
            .await
            .expect("a customer");
    println!(
        "demo shop: {} customers, {} orders; model of {} bytes over {} paid orders",
        seeded.customers, seeded.orders, report.model_bytes, report.orders
    );
    Fixture { db, shop, plugins, model, config: active.install.config.to_string(), regular }
}

/// The plugin's request per placement, as the host builds it: the placement directive,
/// then the page's product, the cart, nothing (home) or a 20-entry history (for-you).
fn plugin_requests() -> Vec<(&'static str, RecommendRequest)> {
    let pairs = planted_pairs();
    let anchors: Vec<String> = pairs.iter().map(|(anchor, _)| anchor.clone()).collect();
    let history: Vec<String> = pairs.iter().flat_map(|(a, b)| [b.clone(), a.clone()]).take(20).collect();
    let request = |placement: &str, products: &[String]| RecommendRequest {
        customer_id: None,
        context_products: std::iter::once(format!("patron:placement={placement}"))
            .chain(products.iter().cloned())
            .collect(),
        limit: ASKED,
    };
    vec![
        ("product", request("product", &anchors[..1])),
        ("cart", request("cart", &anchors[..3])),
        ("home", request("home", &[])),
        ("for-you", request("for-you", &history)),
    ]
}

fn plugin_calls(c: &mut Criterion, rt: &Runtime, f: &Fixture) {
    let active = rt.block_on(f.plugins.recommender(f.shop.id)).expect("read").expect("enabled");
    let ctx = CallContext::new("bench").with_config(f.config.clone());
    let native_config: Config = serde_json::from_str(&f.config).expect("config");
    let mut warm = active.plugin.instantiate(ctx.clone()).expect("instantiate");

    let mut group = c.benchmark_group("recommend");
    for (placement, request) in plugin_requests() {
        let native_request = patron_sdk::RecommendRequest {
            customer_id: request.customer_id.clone(),
            context_products: request.context_products.clone(),
            limit: request.limit,
        };
        // Same answers both ways, checked once before timing.
        let wasm: Vec<_> =
            warm.recommend(&f.model, &request).expect("wasm").into_iter().map(|i| (i.product_id, i.score)).collect();
        let native: Vec<_> = recommender::recommend(&native_config, &f.model, &native_request)
            .expect("native")
            .into_iter()
            .map(|i| (i.product_id, i.score))
            .collect();
        assert!(!wasm.is_empty() && wasm == native, "{placement}: {wasm:?} vs {native:?}");
        group.bench_function(BenchmarkId::new("native", placement), |b| {
            b.iter(|| {
                black_box(recommender::recommend(&native_config, &f.model, black_box(&native_request)).expect("native"))
            })
        });
        group.bench_function(BenchmarkId::new("warm_call", placement), |b| {
            b.iter(|| black_box(warm.recommend(&f.model, black_box(&request)).expect("call")))
        });
        group.bench_function(BenchmarkId::new("fresh_call", placement), |b| {
            b.iter(|| black_box(active.plugin.recommend(&ctx, &f.model, black_box(&request)).expect("call")))
        });
    }
    group.bench_function("instantiate_only", |b| {
        b.iter(|| drop(black_box(active.plugin.instantiate(ctx.clone()).expect("instantiate"))))
    });
    group.finish();
}

fn host_path(c: &mut Criterion, rt: &Runtime, f: &Fixture) {
    let anchors: Vec<String> = planted_pairs().into_iter().map(|(anchor, _)| anchor).collect();
    let request = |placement, context: &[String], customer_id| RecsRequest {
        placement,
        context: context.to_vec(),
        exclude: context.to_vec(),
        customer_id,
        limit: LIMIT,
    };
    let requests = [
        ("product", request(Placement::Product, &anchors[..1], None)),
        ("cart", request(Placement::Cart, &anchors[..3], None)),
        ("home", request(Placement::Home, &[], None)),
        ("for-you", request(Placement::ForYou, &[], Some(f.regular))),
        ("product signed in", request(Placement::Product, &anchors[..1], Some(f.regular))),
    ];
    let mut group = c.benchmark_group("recommend");
    for (name, request) in &requests {
        let list = rt.block_on(f.plugins.recommend(&f.shop, request)).expect("recommend");
        assert!(!list.is_empty(), "{name}: a list");
        group.bench_function(BenchmarkId::new("host", name), |b| {
            b.iter(|| black_box(rt.block_on(f.plugins.recommend(&f.shop, black_box(request))).expect("recommend")))
        });
    }
    let ids = rt.block_on(f.plugins.recommend(&f.shop, &requests[0].1)).expect("recommend");
    let ids: Vec<String> = ids.into_iter().map(|r| r.product_id).chain(anchors).take(ASKED as usize).collect();
    group.bench_function("products_by_ids", |b| {
        b.iter(|| black_box(rt.block_on(f.db.products_by_ids(f.shop.id, black_box(&ids))).expect("read")))
    });
    group.finish();
}

fn main() {
    let rt = Runtime::new().expect("tokio");
    let fixture = rt.block_on(fixture());
    let mut c = Criterion::default().configure_from_args();
    plugin_calls(&mut c, &rt, &fixture);
    host_path(&mut c, &rt, &fixture);
    c.final_summary();
}
