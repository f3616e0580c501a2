//! Ingest throughput: events/s through `POST /v1/events` over loopback, beside the rate of
//! the same batched inserts done directly through the store, in one run, on SQLite and
//! PostgreSQL. The ratio is the figure.
//!
//! Then the cost of journeys: signed-in shoppers' events, every one of a kind the
//! journeys plugin listens to (so each queues a trigger), posted to a shop with the
//! plugin enabled and to one with no automation install, alternating, in the same run.
//!
//! `cargo bench -p patron --bench ingest` (`INGEST_SECONDS`, `INGEST_CLIENTS` to change the run).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use base64::Engine as _;
use patron::api::rate_limit::{Quota, RateLimits};
use patron::auth::{NewShopKeys, customer_token};
use patron::journeys::TRIGGER_JOB;
use patron::store::Db;
use patron::store::events::NewEvent;
use patron::store::shops::Shop;
use patron::testing::{self, Backend};
use serde_json::{Value, json};

const BATCH: usize = 50;

fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn batch_json(worker: usize, n: u64) -> String {
    let now = chrono::Utc::now().to_rfc3339();
    let events: Vec<_> = (0..BATCH)
        .map(|i| {
            json!({"id": format!("w{worker}-b{n}-e{i}"), "kind": "product_view", "time": now,
                   "url": "https://shop.example/p/42", "properties": {"product_id": format!("p{}", i % 40)}})
        })
        .collect();
    json!({"anonymous_id": format!("anon-{worker}"), "events": events}).to_string()
}

/// A batch of signed-in customer `c{worker}`, of kinds the journeys plugin listens to.
fn customer_batch_json(shop: &Shop, worker: usize, n: u64) -> String {
    let now = chrono::Utc::now().to_rfc3339();
    let external_id = format!("c{worker}");
    let events: Vec<_> = (0..BATCH)
        .map(|i| {
            let kind = if i % 5 == 0 { "add_to_cart" } else { "product_view" };
            json!({"id": format!("{external_id}-b{n}-e{i}"), "kind": kind, "time": now,
                   "properties": {"product_id": format!("p{}", i % 40)}})
        })
        .collect();
    let token = customer_token(&shop.secret_hash, &external_id).expect("token");
    json!({"customer_id": external_id, "customer_token": token, "events": events}).to_string()
}

fn batch_rows(worker: usize, n: u64) -> Vec<NewEvent> {
    let now = patron::store::now_ms();
    (0..BATCH)
        .map(|i| NewEvent {
            event_id: format!("raw-w{worker}-b{n}-e{i}"),
            kind: "product_view".into(),
            occurred_at: now,
            anonymous_id: Some(format!("anon-{worker}")),
            customer_id: None,
            url: Some("https://shop.example/p/42".into()),
            properties: json!({"product_id": format!("p{}", i % 40)}).to_string(),
        })
        .collect()
}

/// Runs `clients` loops of `work` for `seconds`; returns events per second.
async fn run_for<F, Fut>(clients: usize, seconds: u64, work: F) -> f64
where
    F: Fn(usize, u64) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = ()> + Send,
{
    let work = Arc::new(work);
    let batches = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let deadline = started + Duration::from_secs(seconds);
    let mut tasks = Vec::new();
    for worker in 0..clients {
        let (work, batches) = (work.clone(), batches.clone());
        tasks.push(tokio::spawn(async move {
            let mut n = 0;
            while Instant::now() < deadline {
                work(worker, n).await;
                n += 1;
                batches.fetch_add(1, Ordering::Relaxed);
            }
        }));
    }
    for task in tasks {
        task.await.expect("worker");
    }
    (batches.load(Ordering::Relaxed) * BATCH as u64) as f64 / started.elapsed().as_secs_f64()
}

async fn measure(backend: Backend, clients: usize, seconds: u64) {
    let db: Db = testing::fresh_db(backend).await;
    let (shop, _) = testing::shop(&db, "bench").await;

    let raw_db = db.clone();
    let shop_id = shop.id;
    let raw = run_for(clients, seconds, move |worker, n| {
        let db = raw_db.clone();
        async move {
            let inserted = db.insert_events(shop_id, &batch_rows(worker, n)).await.expect("insert");
            assert_eq!(inserted.len(), BATCH);
        }
    })
    .await;

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let base = format!("http://{}", listener.local_addr().expect("addr"));
    let url = format!("{base}/v1/events?key={}", shop.publishable_key);
    let mut state = patron::AppState::new(db.clone());
    // The limiter still runs, with room for a load test's rate from one key and one IP.
    state.rate_limits = RateLimits::new(Quota::per_second(1_000_000), Quota::per_second(1_000_000));
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(patron::serve(listener, patron::api::app(state), async {
        let _ = stopped.await;
    }));
    let client = reqwest::Client::new();
    let http = run_for(clients, seconds, {
        let client = client.clone();
        move |worker, n| {
            let (client, url) = (client.clone(), url.clone());
            async move {
                let response = client.post(&url).body(batch_json(worker, n)).send().await.expect("post");
                assert!(response.status().is_success(), "{}", response.status());
            }
        }
    })
    .await;
    println!(
        "{backend:?}: HTTP {http:.0} events/s, direct store {raw:.0} events/s, ratio {:.2} ({clients} clients, batches of {BATCH}, {seconds} s each)",
        http / raw
    );

    journeys_cost(backend, &db, &base, &client, clients, seconds).await;
    let _ = stop.send(());
    server.await.expect("server task").expect("server");
}

/// Signed-in events/s into `shop` for `seconds`.
async fn customer_ingest(client: &reqwest::Client, base: &str, shop: &Shop, clients: usize, seconds: u64) -> f64 {
    let url = format!("{base}/v1/events?key={}", shop.publishable_key);
    let (client, shop) = (client.clone(), shop.clone());
    run_for(clients, seconds, move |worker, n| {
        let (client, url, body) = (client.clone(), url.clone(), customer_batch_json(&shop, worker, n));
        async move {
            let response = client.post(&url).body(body).send().await.expect("post");
            assert!(response.status().is_success(), "{}", response.status());
        }
    })
    .await
}

/// Installs and enables the first-party journeys plugin through the API.
async fn install_journeys(client: &reqwest::Client, base: &str, keys: &NewShopKeys) {
    let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../plugins/journeys/patron.toml"))
        .expect("journeys manifest");
    let manifest: Value = serde_json::to_value(toml::from_str::<toml::Value>(&text).expect("toml")).expect("json");
    let wasm = patron_runtime::testing::plugin_wasm("journeys").expect("journeys plugin builds");
    let body = json!({
        "manifest": manifest,
        "wasm_base64": base64::engine::general_purpose::STANDARD.encode(wasm),
        "grants": ["log", "config", "kv"],
        "config": {},
        "enable": true,
    });
    let response =
        client.post(format!("{base}/v1/plugins")).bearer_auth(&keys.secret).json(&body).send().await.expect("install");
    assert!(response.status().is_success(), "{}: {}", response.status(), response.text().await.unwrap_or_default());
}

/// The trigger jobs queued for the shop, and the events they carry (a job carries the
/// listened events of one ingest batch: its first and those in `then`).
async fn trigger_jobs(db: &Db, shop: &Shop) -> (i64, i64) {
    let payloads: Vec<String> = sqlx::query_scalar("SELECT payload FROM jobs WHERE shop_id = $1 AND kind = $2")
        .bind(shop.id)
        .bind(TRIGGER_JOB)
        .fetch_all(db.pool())
        .await
        .expect("payloads");
    let carried = payloads
        .iter()
        .map(|p| {
            let payload: Value = serde_json::from_str(p).expect("json payload");
            1 + payload["then"].as_array().map_or(0, Vec::len) as i64
        })
        .sum();
    (payloads.len() as i64, carried)
}

/// Ingest with the journeys plugin enabled and listening vs no automation install:
/// two shops in one database, measured alternately (half the time each, twice), so
/// that neither gets the emptier tables.
async fn journeys_cost(backend: Backend, db: &Db, base: &str, client: &reqwest::Client, clients: usize, seconds: u64) {
    let (quiet, _) = testing::shop(db, "no-automation").await;
    let (journeys, keys) = testing::shop(db, "journeys").await;
    install_journeys(client, base, &keys).await;
    let half = seconds.div_ceil(2);
    let (mut off, mut on) = (0.0, 0.0);
    for _ in 0..2 {
        off += customer_ingest(client, base, &quiet, clients, half).await / 2.0;
        on += customer_ingest(client, base, &journeys, clients, half).await / 2.0;
    }
    let ((queued, carried), (none, _)) = (trigger_jobs(db, &journeys).await, trigger_jobs(db, &quiet).await);
    assert_eq!(none, 0, "no install, no trigger");
    let stored = db.count_events(journeys.id).await.expect("count");
    // Each signed-in shopper was created by its first batch: `customer.created`.
    assert_eq!(carried, stored + clients as i64, "every listened event is carried by one trigger");
    println!(
        "{backend:?}: journeys enabled {on:.0} events/s ({queued} trigger jobs carrying {carried} events), no automation {off:.0} events/s, ratio {:.2} ({clients} signed-in clients, batches of {BATCH}, 2 x {half} s each)",
        on / off
    );
}

#[tokio::main]
async fn main() {
    // `cargo bench` passes `--bench`; anything else (e.g. `cargo test --benches`) runs briefly.
    let benching = std::env::args().any(|a| a == "--bench");
    let seconds = if benching { env_or("INGEST_SECONDS", 10) } else { 1 };
    let clients = env_or("INGEST_CLIENTS", 8) as usize;
    for backend in [Backend::Sqlite, Backend::Postgres] {
        measure(backend, clients, seconds).await;
    }
}
