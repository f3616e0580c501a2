//! The per-call context the host hands the runtime.

use std::sync::Arc;

use crate::kv::KvStore;
use crate::limits::Limits;

/// Everything one plugin call (or one warm instance) knows about where it runs:
/// the shop, the install's configuration and key-value store, its limits and,
/// optionally, a pinned clock. Cloning is cheap.
#[derive(Clone)]
pub struct CallContext {
    /// The shop the call is for (used in logs).
    pub shop_id: Arc<str>,
    /// The install's configuration as a JSON object (what `config.get` returns).
    pub config_json: Arc<str>,
    /// The install's key-value store, already scoped to (shop, install).
    pub kv: Option<Arc<dyn KvStore>>,
    /// Limits of the call.
    pub limits: Limits,
    /// If set, what `clock.now` returns (dry runs, tests); otherwise the system clock.
    pub fixed_now: Option<i64>,
}

impl CallContext {
    /// A context for `shop_id` with config `{}`, no kv store and default limits.
    pub fn new(shop_id: impl Into<Arc<str>>) -> Self {
        Self {
            shop_id: shop_id.into(),
            config_json: Arc::from("{}"),
            kv: None,
            limits: Limits::default(),
            fixed_now: None,
        }
    }

    /// With this configuration (a JSON object).
    #[must_use]
    pub fn with_config(mut self, config_json: impl Into<Arc<str>>) -> Self {
        self.config_json = config_json.into();
        self
    }

    /// With this key-value store.
    #[must_use]
    pub fn with_kv(mut self, kv: Arc<dyn KvStore>) -> Self {
        self.kv = Some(kv);
        self
    }

    /// With these limits.
    #[must_use]
    pub fn with_limits(mut self, limits: Limits) -> Self {
        self.limits = limits;
        self
    }

    /// With `clock.now` pinned to `now_ms` (Unix milliseconds).
    #[must_use]
    pub fn with_fixed_now(mut self, now_ms: i64) -> Self {
        self.fixed_now = Some(now_ms);
        self
    }
}

impl std::fmt::Debug for CallContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CallContext")
            .field("shop_id", &self.shop_id)
            .field("config_json", &self.config_json)
            .field("kv", &self.kv.as_ref().map(|_| "..."))
            .field("limits", &self.limits)
            .field("fixed_now", &self.fixed_now)
            .finish()
    }
}
