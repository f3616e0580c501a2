//! Ingest throughput: events/s through `POST /v1/events` over loopback, beside the rate of
//! the same batched inserts done directly through the store, in one run, on SQLite and
//! PostgreSQL. The ratio is the figure.
//!
//! `cargo bench -p patron --bench ingest` (`INGEST_SECONDS`, `INGEST_CLIENTS` to change the run).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use patron::store::Db;
use patron::store::events::NewEvent;
use patron::testing::{self, Backend};
use serde_json::json;

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
    let url = format!("http://{}/v1/events?key={}", listener.local_addr().expect("addr"), shop.publishable_key);
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(patron::serve(listener, patron::api::app(patron::AppState::new(db.clone())), async {
        let _ = stopped.await;
    }));
    let client = reqwest::Client::new();
    let http = run_for(clients, seconds, move |worker, n| {
        let (client, url) = (client.clone(), url.clone());
        async move {
            let response = client.post(&url).body(batch_json(worker, n)).send().await.expect("post");
            assert!(response.status().is_success(), "{}", response.status());
        }
    })
    .await;
    let _ = stop.send(());
    server.await.expect("server task").expect("server");

    println!(
        "{backend:?}: HTTP {http:.0} events/s, direct store {raw:.0} events/s, ratio {:.2} ({clients} clients, batches of {BATCH}, {seconds} s each)",
        http / raw
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
