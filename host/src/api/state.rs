//! What every request handler shares.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use super::rate_limit::RateLimits;
use super::widget_state::StateCache;
use crate::metrics::Metrics;
use crate::plugins::PluginHost;
use crate::store::shops::Shop;
use crate::store::{Db, StoreResult};
use crate::widget::{DemoStore, WidgetAssets};

/// Shared state of the HTTP service; cloning it is cheap.
#[derive(Clone)]
pub struct AppState {
    pub db: Db,
    pub shops: ShopCache,
    pub metrics: Arc<Metrics>,
    /// The shop's plugins.
    pub plugins: PluginHost,
    /// Recently served `GET /v1/widget/state` answers.
    pub widget_states: StateCache,
    /// The built storefront widget served under `/widget/`.
    pub widget: WidgetAssets,
    /// The demo storefront under `/demo/`, for `patron serve --demo`.
    pub demo: Option<DemoStore>,
    /// The operator's delivery settings (the SSRF guard's allowance, link base URL).
    pub delivery: crate::delivery::DeliveryConfig,
    /// The bearer token `/metrics` asks for; `None`: loopback callers only.
    pub metrics_token: Option<Arc<str>>,
    /// Per-key and per-IP limits of the public endpoints.
    pub rate_limits: RateLimits,
    /// The host's token secret, from which each shop's token key is derived; `None`:
    /// v2 tokens are keyed with the secret key (see `auth.rs`).
    pub token_secret: Option<Arc<[u8]>>,
}

impl AppState {
    pub fn new(db: Db) -> Self {
        Self {
            plugins: PluginHost::new(db.clone(), None),
            db,
            shops: ShopCache::default(),
            widget_states: StateCache::default(),
            metrics: Arc::new(Metrics::default()),
            widget: WidgetAssets::resolve(),
            demo: None,
            delivery: crate::delivery::DeliveryConfig::default(),
            metrics_token: None,
            rate_limits: RateLimits::default(),
            token_secret: None,
        }
    }
}

/// How long a shop looked up by key is trusted before it is read again, so that key
/// lookups stay off the database on the ingest path while origin changes still apply soon.
const SHOP_TTL: Duration = Duration::from_secs(10);

/// Most keys each cache holds; past it the cache starts again empty.
const MAX_CACHED_KEYS: usize = 10_000;

/// A shop, or `None` for a key no shop has, and when it was read.
type CachedShop = (Option<Arc<Shop>>, Instant);

/// Shops by publishable key or secret hash, cached briefly. Unknown keys are cached too
/// (for as long), so a flood of made-up keys does not reach the database.
#[derive(Clone, Default)]
pub struct ShopCache {
    entries: Arc<RwLock<HashMap<String, CachedShop>>>,
}

impl ShopCache {
    /// `Some(answer)` while a lookup of `cache_key` is fresh, `None` if it must be read.
    fn cached(&self, cache_key: &str) -> Option<Option<Arc<Shop>>> {
        let entries = self.entries.read().ok()?;
        let (shop, at) = entries.get(cache_key)?;
        (at.elapsed() < SHOP_TTL).then(|| shop.clone())
    }

    fn remember(&self, cache_key: String, shop: Option<Arc<Shop>>) {
        if let Ok(mut entries) = self.entries.write() {
            if entries.len() >= MAX_CACHED_KEYS {
                entries.retain(|_, (_, at)| at.elapsed() < SHOP_TTL);
            }
            if entries.len() >= MAX_CACHED_KEYS {
                entries.clear();
            }
            entries.insert(cache_key, (shop, Instant::now()));
        }
    }

    /// Drops every cached lookup of shop `id` (after its settings changed).
    pub fn forget(&self, id: i64) {
        if let Ok(mut entries) = self.entries.write() {
            entries.retain(|_, (shop, _)| shop.as_ref().is_none_or(|s| s.id != id));
        }
    }

    pub async fn by_publishable_key(&self, db: &Db, key: &str) -> StoreResult<Option<Arc<Shop>>> {
        let cache_key = format!("pk:{key}");
        if let Some(shop) = self.cached(&cache_key) {
            return Ok(shop);
        }
        let shop = db.shop_by_publishable_key(key).await?.map(Arc::new);
        self.remember(cache_key, shop.clone());
        Ok(shop)
    }

    pub async fn by_secret(&self, db: &Db, secret: &str) -> StoreResult<Option<Arc<Shop>>> {
        let cache_key = format!("sk:{}", crate::auth::secret_hash(secret));
        if let Some(shop) = self.cached(&cache_key) {
            return Ok(shop);
        }
        let shop = db.shop_by_secret(secret).await?.map(Arc::new);
        self.remember(cache_key, shop.clone());
        Ok(shop)
    }
}
