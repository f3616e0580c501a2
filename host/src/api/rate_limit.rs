//! Token-bucket rate limits on the public (publishable-key) endpoints: one bucket per key
//! and one per client IP, so one storefront key or one machine cannot flood the ingest
//! path. An empty bucket answers 429 with `Retry-After`. Limits are per process.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderValue, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::error::ApiError;
use super::keys::publishable_key;
use super::state::AppState;

/// A sustained rate with a burst allowance.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Quota {
    pub per_second: f64,
    pub burst: f64,
}

impl Quota {
    /// `per_second` sustained, with bursts of five seconds' worth.
    pub fn per_second(per_second: u32) -> Self {
        Self { per_second: f64::from(per_second.max(1)), burst: f64::from(per_second.max(1)) * 5.0 }
    }
}

/// Generous defaults: a busy storefront's widget traffic stays far below them.
pub const DEFAULT_PER_KEY: u32 = 500;
pub const DEFAULT_PER_IP: u32 = 100;
/// Buckets kept before idle (full) ones are dropped.
const MAX_BUCKETS: usize = 100_000;

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    updated: Instant,
}

/// The buckets of every key and IP; cloning it is cheap (they are shared).
#[derive(Clone)]
pub struct RateLimits {
    per_key: Quota,
    per_ip: Quota,
    buckets: Arc<Mutex<HashMap<String, Bucket>>>,
}

impl Default for RateLimits {
    fn default() -> Self {
        Self::new(Quota::per_second(DEFAULT_PER_KEY), Quota::per_second(DEFAULT_PER_IP))
    }
}

impl RateLimits {
    pub fn new(per_key: Quota, per_ip: Quota) -> Self {
        Self { per_key, per_ip, buckets: Arc::default() }
    }

    /// Takes a token from the key's and the IP's bucket, or says how long until there is one.
    fn take(&self, key: Option<&str>, ip: Option<IpAddr>, now: Instant) -> Result<(), Duration> {
        let Ok(mut buckets) = self.buckets.lock() else { return Ok(()) };
        if buckets.len() > MAX_BUCKETS {
            let full = |b: &Bucket, quota: Quota| {
                b.tokens + now.duration_since(b.updated).as_secs_f64() * quota.per_second >= quota.burst
            };
            let (per_key, per_ip) = (self.per_key, self.per_ip);
            buckets.retain(|name, b| !full(b, if name.starts_with("ip:") { per_ip } else { per_key }));
        }
        let wanted: Vec<(String, Quota)> = key
            .map(|k| (format!("key:{k}"), self.per_key))
            .into_iter()
            .chain(ip.map(|ip| (format!("ip:{ip}"), self.per_ip)))
            .collect();
        // Both buckets must have a token before either is spent.
        let mut wait = Duration::ZERO;
        for (name, quota) in &wanted {
            let bucket = buckets.entry(name.clone()).or_insert(Bucket { tokens: quota.burst, updated: now });
            bucket.tokens =
                (bucket.tokens + now.duration_since(bucket.updated).as_secs_f64() * quota.per_second).min(quota.burst);
            bucket.updated = now;
            if bucket.tokens < 1.0 {
                wait = wait.max(Duration::from_secs_f64((1.0 - bucket.tokens) / quota.per_second));
            }
        }
        if !wait.is_zero() {
            return Err(wait);
        }
        for (name, _) in &wanted {
            if let Some(bucket) = buckets.get_mut(name) {
                bucket.tokens -= 1.0;
            }
        }
        Ok(())
    }
}

/// Marks a request whose tokens [`limit_keyed_early`] took, so that [`limit_public`]
/// does not take them again.
#[derive(Debug, Clone, Copy)]
struct TokensTaken;

/// The outermost layer: a request that carries a publishable key (only storefront
/// requests do) is counted here and, when its buckets are empty, refused before
/// tracing, metrics, timeouts and routing run for it. Under a flood those refusals are
/// most of the server's work, so they must cost as little as possible.
pub async fn limit_keyed_early(State(state): State<AppState>, mut req: Request, next: Next) -> Response {
    let Some(key) = publishable_key(req.headers(), req.uri()) else { return next.run(req).await };
    let started = Instant::now();
    match state.rate_limits.take(Some(&key), client_ip(&req), started) {
        Ok(()) => {
            req.extensions_mut().insert(TokensTaken);
            next.run(req).await
        }
        Err(wait) => {
            let method = req.method().to_string();
            let response = refuse(req, wait).await;
            state.metrics.observe_request("(rate limited)", &method, 429, started.elapsed());
            response
        }
    }
}

/// Middleware for the public endpoints: the requests [`limit_keyed_early`] did not
/// count (those without a key) spend their IP's tokens here.
pub async fn limit_public(State(state): State<AppState>, req: Request, next: Next) -> Response {
    if req.extensions().get::<TokensTaken>().is_some() {
        return next.run(req).await;
    }
    let key = publishable_key(req.headers(), req.uri());
    match state.rate_limits.take(key.as_deref(), client_ip(&req), Instant::now()) {
        Ok(()) => next.run(req).await,
        Err(wait) => refuse(req, wait).await,
    }
}

fn client_ip(req: &Request) -> Option<IpAddr> {
    req.extensions().get::<ConnectInfo<SocketAddr>>().map(|ConnectInfo(address)| address.ip())
}

/// The 429, with `Retry-After` in whole seconds.
async fn refuse(req: Request, wait: Duration) -> Response {
    discard_small_body(req).await;
    let mut response = ApiError::RateLimited.into_response();
    let seconds = wait.as_millis().div_ceil(1000).max(1);
    if let Ok(value) = HeaderValue::from_str(&seconds.to_string()) {
        response.headers_mut().insert(header::RETRY_AFTER, value);
    }
    response
}

/// Bodies a refusal still reads (a storefront batch is well under this), and how long
/// it waits for one.
const DISCARDED_BODY_BYTES: u64 = 64 * 1024;
const DISCARD_WAIT: Duration = Duration::from_millis(500);

/// Reads and drops a refused request's body when it is small and arrives at once, so
/// the connection can carry the client's next request: closing it instead (as the
/// server must while a body is unread) costs both sides a new connection per refusal,
/// which under a flood is more work than the refusal itself.
async fn discard_small_body(req: Request) {
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.parse::<u64>().ok());
    if declared.is_some_and(|length| length <= DISCARDED_BODY_BYTES) {
        let body = axum::body::to_bytes(req.into_body(), DISCARDED_BODY_BYTES as usize);
        let _ = tokio::time::timeout(DISCARD_WAIT, body).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bucket_allows_its_burst_then_refills_at_its_rate() {
        let limits = RateLimits::new(Quota { per_second: 2.0, burst: 3.0 }, Quota::per_second(1_000));
        let start = Instant::now();
        for _ in 0..3 {
            assert!(limits.take(Some("pk_a"), None, start).is_ok());
        }
        let wait = limits.take(Some("pk_a"), None, start).expect_err("empty");
        assert!(wait > Duration::from_millis(400) && wait <= Duration::from_millis(500), "{wait:?}");
        assert!(limits.take(Some("pk_b"), None, start).is_ok(), "another key has its own bucket");
        assert!(limits.take(Some("pk_a"), None, start + Duration::from_millis(500)).is_ok(), "refilled");
    }

    #[test]
    fn an_ip_over_its_limit_is_refused_whatever_key_it_uses() {
        let limits = RateLimits::new(Quota::per_second(1_000), Quota { per_second: 1.0, burst: 2.0 });
        let (now, ip) = (Instant::now(), Some(IpAddr::from([203, 0, 113, 7])));
        assert!(limits.take(Some("pk_a"), ip, now).is_ok());
        assert!(limits.take(Some("pk_b"), ip, now).is_ok());
        assert!(limits.take(Some("pk_c"), ip, now).is_err());
        assert!(limits.take(Some("pk_c"), Some(IpAddr::from([203, 0, 113, 8])), now).is_ok());
    }
}
