//! Plugins as the host runs them: installs and versions kept in the store, components
//! loaded into the process-wide [`Runtime`] once per version, calls made on blocking
//! threads behind a circuit breaker per install, their actions validated and applied by
//! the host ([`actions`]), and the hooks that feed them data ([`hooks`]).

pub mod actions;
pub mod churn_model;
pub mod config_schema;
pub mod convert;
pub mod dry_run;
pub mod hooks;
pub mod kv;
pub mod prediction_evaluation;
pub mod predictions;
pub mod recommendation_answers;
pub mod recommendation_evaluation;
pub mod recommendations;
pub mod segmentation;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use patron_runtime::{
    BreakerOpen, BreakerState, CallContext, Capability, CircuitBreaker, Grants, LoadError, Manifest, ManifestError,
    MemoryKv, Plugin, PluginError, Runtime, RuntimeConfig, World,
};
use sha2::{Digest, Sha256};

use crate::journeys::Listeners;
use crate::journeys::listeners::ListenerCache;
use crate::store::plugins::{PluginInstall, PluginVersion};
use crate::store::{Db, StoreError};
use config_schema::ConfigMismatch;

/// Consecutive failures (the plugin's fault, not the host's load) after which an
/// install is skipped and marked `tripped`.
pub const BREAKER_THRESHOLD: u32 = 5;
/// How long a tripped install is skipped before one trial call; a successful trial
/// marks it `enabled` again, a failed one starts another cooldown. The merchant can
/// re-enable it at once.
pub const BREAKER_COOLDOWN: Duration = Duration::from_secs(60);
/// How long the list of a shop's active installs is trusted, so that a change made by
/// another process (the CLI, another replica) takes effect without a restart.
const ACTIVE_TTL: Duration = Duration::from_secs(2);
/// The status of an install its breaker switched off.
const TRIPPED: &str = "tripped";

/// What can go wrong managing installs.
#[derive(Debug, thiserror::Error)]
pub enum PluginAdminError {
    #[error(transparent)]
    Manifest(#[from] ManifestError),
    #[error(transparent)]
    Load(#[from] LoadError),
    #[error(transparent)]
    Config(#[from] ConfigMismatch),
    #[error("unknown capability `{0}`: grant log, clock, config or kv")]
    UnknownGrant(String),
    #[error("no plugin `{0}` is installed")]
    NotInstalled(String),
    #[error("{0} has no previous version to roll back to")]
    NoPreviousVersion(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Why a plugin call produced nothing.
#[derive(Debug, thiserror::Error)]
pub enum CallFailure {
    #[error(transparent)]
    Open(#[from] BreakerOpen),
    #[error(transparent)]
    Plugin(#[from] PluginError),
    #[error("plugin call was abandoned: {0}")]
    Abandoned(String),
}

/// An enabled install, loaded and ready to call.
#[derive(Clone)]
pub struct Active {
    pub shop_id: i64,
    pub install: PluginInstall,
    pub world: World,
    pub plugin: Arc<Plugin>,
    breaker: Arc<CircuitBreaker>,
    /// Set for a dry run: the call's kv (fresh and in memory) instead of the install's.
    scratch: Option<Arc<MemoryKv>>,
}

impl Active {
    /// A copy of this install for a dry run, touching none of its live state: an empty
    /// in-memory kv in place of the install's (so a calibrating plugin learns from
    /// scratch), a breaker of its own, and failures reported to the caller but not
    /// recorded against the install.
    #[must_use]
    pub fn scratch(&self) -> Self {
        Self {
            breaker: Arc::new(CircuitBreaker::new(BREAKER_THRESHOLD, Some(BREAKER_COOLDOWN))),
            scratch: Some(Arc::new(MemoryKv::new())),
            ..self.clone()
        }
    }

    /// Whether this is a dry run's copy ([`Active::scratch`]).
    pub fn is_scratch(&self) -> bool {
        self.scratch.is_some()
    }

    /// Whether the install was granted its own key-value store: the only way a plugin
    /// can learn across the batches of a pass (RFM's quintiles), so a segmenter with it
    /// gets a calibration pass before the pass whose answers count.
    pub fn has_kv(&self) -> bool {
        self.install.grants.iter().any(|g| g == Capability::Kv.name())
    }
}

/// Runs a shop's plugins; cloning it is cheap.
#[derive(Clone)]
pub struct PluginHost {
    inner: Arc<Inner>,
}

struct Inner {
    db: Db,
    cache_dir: Option<PathBuf>,
    /// Loaded components by sha256 of their bytes and grants.
    loaded: Mutex<HashMap<String, Arc<Plugin>>>,
    breakers: Mutex<HashMap<(i64, String), Arc<CircuitBreaker>>>,
    active: Mutex<HashMap<i64, ActiveAt>>,
    /// Recommendation models read from the store, by (shop, install).
    models: recommendations::ModelCache,
    /// Recommenders' recent answers, so storefront traffic does not start an instance
    /// per request.
    answers: recommendation_answers::AnswerCache,
    /// Which automation install listens to which trigger, by shop.
    listeners: ListenerCache,
}

/// A shop's enabled installs and when they were read.
type ActiveAt = (Instant, Arc<Vec<Active>>);

static RUNTIME: OnceLock<Result<Runtime, String>> = OnceLock::new();

/// The process's one plugin runtime (one wasmtime engine), caching compiled components
/// under `cache_dir` (the first caller's choice wins).
fn shared_runtime(cache_dir: Option<PathBuf>) -> Result<Runtime, StoreError> {
    RUNTIME
        .get_or_init(|| {
            Runtime::new(RuntimeConfig { cache_dir, ..RuntimeConfig::default() }).map_err(|e| e.to_string())
        })
        .clone()
        .map_err(|e| StoreError::Internal(format!("the plugin runtime failed to start: {e}")))
}

fn grants_from(names: &[String]) -> Result<Grants, PluginAdminError> {
    let mut grants = Grants::none();
    for name in names {
        let capability = Capability::ALL
            .into_iter()
            .find(|c| c.name() == name)
            .ok_or_else(|| PluginAdminError::UnknownGrant(name.clone()))?;
        grants = grants.with(capability);
    }
    Ok(grants)
}

/// A mutex's guard, also after a panic elsewhere poisoned it (what it guards are caches
/// and counters, valid at every step).
pub(crate) fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl PluginHost {
    /// A host whose components are compiled into `cache_dir` (the runtime itself starts
    /// on first use).
    pub fn new(db: Db, cache_dir: Option<PathBuf>) -> Self {
        Self {
            inner: Arc::new(Inner {
                db,
                cache_dir,
                loaded: Mutex::default(),
                breakers: Mutex::default(),
                active: Mutex::default(),
                models: recommendations::ModelCache::default(),
                answers: recommendation_answers::AnswerCache::default(),
                listeners: ListenerCache::default(),
            }),
        }
    }

    pub fn db(&self) -> &Db {
        &self.inner.db
    }

    fn load(
        &self,
        wasm: &[u8],
        manifest: &Manifest,
        grants: &Grants,
        sha256: &str,
    ) -> Result<Arc<Plugin>, PluginAdminError> {
        let key = format!("{sha256}:{}", grants.iter().map(Capability::name).collect::<Vec<_>>().join(","));
        if let Some(plugin) = lock(&self.inner.loaded).get(&key) {
            return Ok(plugin.clone());
        }
        let runtime = shared_runtime(self.inner.cache_dir.clone())?;
        let plugin = Arc::new(runtime.load(wasm, manifest, grants)?);
        lock(&self.inner.loaded).insert(key, plugin.clone());
        Ok(plugin)
    }

    fn breaker(&self, shop_id: i64, name: &str) -> Arc<CircuitBreaker> {
        lock(&self.inner.breakers)
            .entry((shop_id, name.to_owned()))
            .or_insert_with(|| Arc::new(CircuitBreaker::new(BREAKER_THRESHOLD, Some(BREAKER_COOLDOWN))))
            .clone()
    }

    /// The state of an install's circuit breaker in this process (the console shows it;
    /// an install tripped elsewhere is `tripped` in the store).
    pub fn breaker_state(&self, shop_id: i64, name: &str) -> BreakerState {
        self.breaker(shop_id, name).state()
    }

    /// Forgets what this process cached about a shop's installs after a change, and
    /// rebuilds which install listens to which trigger.
    async fn changed(&self, shop_id: i64, name: &str) -> Result<(), StoreError> {
        lock(&self.inner.active).remove(&shop_id);
        self.breaker(shop_id, name).reset();
        crate::journeys::listeners::rebuild(&self.inner.db, shop_id).await?;
        self.inner.listeners.forget(shop_id);
        Ok(())
    }

    /// Which of the shop's automation installs listen to which trigger (cached briefly).
    pub async fn listeners(&self, shop_id: i64) -> Result<Arc<Listeners>, StoreError> {
        self.inner.listeners.get(&self.inner.db, shop_id).await
    }

    /// Installs a version of a plugin (an upgrade, when the name is installed already):
    /// the component must load with exactly the granted imports, and the config must
    /// match the manifest's schema. The install's previous version stays for rollback.
    pub async fn install(
        &self,
        shop_id: i64,
        wasm: Vec<u8>,
        manifest: Manifest,
        grants: Vec<String>,
        config: Option<serde_json::Value>,
        enable: bool,
    ) -> Result<PluginInstall, PluginAdminError> {
        manifest.validate()?;
        let existing = self.inner.db.plugin_install(shop_id, &manifest.name).await?;
        let config =
            config.or_else(|| existing.as_ref().map(|i| i.config.clone())).unwrap_or_else(|| serde_json::json!({}));
        if let Some(schema) = &manifest.config_schema {
            config_schema::validate(schema, &config)?;
        }
        let grant_set = grants_from(&grants)?;
        let sha256 = hex::encode(Sha256::digest(&wasm));
        let (host, wasm_for_load, manifest_for_load, sha_for_load) =
            (self.clone(), wasm.clone(), manifest.clone(), sha256.clone());
        tokio::task::spawn_blocking(move || host.load(&wasm_for_load, &manifest_for_load, &grant_set, &sha_for_load))
            .await
            .map_err(|e| StoreError::Internal(format!("loading the plugin was abandoned: {e}")))??;
        let version = PluginVersion {
            name: manifest.name.clone(),
            version: manifest.version.clone(),
            world: manifest.world.name().to_owned(),
            manifest: serde_json::to_string(&manifest).map_err(|e| StoreError::Corrupt(e.to_string()))?,
            sha256,
            grants: grants.clone(),
            wasm,
        };
        self.inner.db.add_plugin_version(shop_id, &version).await?;
        let status = if enable { "enabled" } else { "disabled" };
        self.inner
            .db
            .activate_plugin_version(shop_id, &manifest.name, &manifest.version, &grants, &config, status)
            .await?;
        self.changed(shop_id, &manifest.name).await?;
        self.installed(shop_id, &manifest.name).await
    }

    async fn installed(&self, shop_id: i64, name: &str) -> Result<PluginInstall, PluginAdminError> {
        self.inner
            .db
            .plugin_install(shop_id, name)
            .await?
            .ok_or_else(|| PluginAdminError::NotInstalled(name.to_owned()))
    }

    pub async fn set_enabled(
        &self,
        shop_id: i64,
        name: &str,
        enabled: bool,
    ) -> Result<PluginInstall, PluginAdminError> {
        self.installed(shop_id, name).await?;
        self.inner.db.set_plugin_status(shop_id, name, if enabled { "enabled" } else { "disabled" }).await?;
        self.changed(shop_id, name).await?;
        self.installed(shop_id, name).await
    }

    pub async fn configure(
        &self,
        shop_id: i64,
        name: &str,
        config: serde_json::Value,
    ) -> Result<PluginInstall, PluginAdminError> {
        let install = self.installed(shop_id, name).await?;
        let manifest = self.manifest(shop_id, name, &install.active_version).await?;
        if let Some(schema) = &manifest.config_schema {
            config_schema::validate(schema, &config)?;
        }
        self.inner.db.set_plugin_config(shop_id, name, &config).await?;
        self.changed(shop_id, name).await?;
        self.installed(shop_id, name).await
    }

    /// Makes the previous version active again, with the grants it was installed with
    /// (rolling back twice returns to where it was).
    pub async fn rollback(&self, shop_id: i64, name: &str) -> Result<PluginInstall, PluginAdminError> {
        let install = self.installed(shop_id, name).await?;
        let previous =
            install.previous_version.clone().ok_or_else(|| PluginAdminError::NoPreviousVersion(name.to_owned()))?;
        let stored = self.version(shop_id, name, &previous).await?;
        let manifest = Manifest::from_json(&stored.manifest)?;
        if let Some(schema) = &manifest.config_schema {
            config_schema::validate(schema, &install.config)?;
        }
        let grant_names = stored.grants.clone();
        let grants = grants_from(&grant_names)?;
        let host = self.clone();
        tokio::task::spawn_blocking(move || host.load(&stored.wasm, &manifest, &grants, &stored.sha256))
            .await
            .map_err(|e| StoreError::Internal(format!("loading the plugin was abandoned: {e}")))??;
        self.inner
            .db
            .activate_plugin_version(shop_id, name, &previous, &grant_names, &install.config, &install.status)
            .await?;
        self.changed(shop_id, name).await?;
        self.installed(shop_id, name).await
    }

    pub async fn uninstall(&self, shop_id: i64, name: &str) -> Result<(), PluginAdminError> {
        self.installed(shop_id, name).await?;
        self.inner.db.uninstall_plugin(shop_id, name).await?;
        self.changed(shop_id, name).await?;
        Ok(())
    }

    async fn version(&self, shop_id: i64, name: &str, version: &str) -> Result<PluginVersion, PluginAdminError> {
        self.inner
            .db
            .plugin_version(shop_id, name, version)
            .await?
            .ok_or_else(|| PluginAdminError::NotInstalled(format!("{name}@{version}")))
    }

    async fn manifest(&self, shop_id: i64, name: &str, version: &str) -> Result<Manifest, PluginAdminError> {
        Ok(Manifest::from_json(&self.version(shop_id, name, version).await?.manifest)?)
    }

    /// A shop's installs in `world`, loaded, enabled or not (for dry runs).
    pub async fn load_install(&self, shop_id: i64, install: &PluginInstall) -> Result<Active, PluginAdminError> {
        let stored = self.version(shop_id, &install.name, &install.active_version).await?;
        let manifest = Manifest::from_json(&stored.manifest)?;
        // The config the plugin is handed: the shop's currency and locale where the
        // schema has them and the merchant left them unset.
        let mut install = install.clone();
        if let Some(schema) = &manifest.config_schema
            && let Some(shop) = self.inner.db.shop(shop_id).await?
        {
            install.config = config_schema::with_shop_defaults(schema, &install.config, &shop.currency, &shop.locale);
        }
        let grants = grants_from(&install.grants)?;
        let host = self.clone();
        let plugin = tokio::task::spawn_blocking(move || host.load(&stored.wasm, &manifest, &grants, &stored.sha256))
            .await
            .map_err(|e| StoreError::Internal(format!("loading the plugin was abandoned: {e}")))??;
        let breaker = self.breaker(shop_id, &install.name);
        if install.status == TRIPPED && matches!(breaker.state(), BreakerState::Closed { .. }) {
            // Tripped before this process knew it (a restart, another replica).
            breaker.restore_open(install.last_error.clone());
        }
        Ok(Active { shop_id, world: plugin.manifest().world, install, plugin, breaker, scratch: None })
    }

    /// The shop's enabled installs in `world`. An install that no longer loads is skipped
    /// and its error recorded against it.
    pub async fn active(&self, shop_id: i64, world: World) -> Result<Vec<Active>, StoreError> {
        let cached =
            lock(&self.inner.active).get(&shop_id).filter(|(at, _)| at.elapsed() < ACTIVE_TTL).map(|(_, a)| a.clone());
        let all = match cached {
            Some(all) => all,
            None => {
                let mut all = Vec::new();
                for install in self.inner.db.plugin_installs(shop_id).await? {
                    // A tripped install stays here: its breaker skips it until a trial.
                    if install.status != "enabled" && install.status != TRIPPED {
                        continue;
                    }
                    match self.load_install(shop_id, &install).await {
                        Ok(active) => all.push(active),
                        Err(error) => {
                            tracing::error!(plugin = %install.name, version = %install.active_version, %error, "installed plugin does not load");
                            self.inner
                                .db
                                .record_plugin_failures(shop_id, &install.name, 1, Some(&error.to_string()), false)
                                .await?;
                        }
                    }
                }
                let all = Arc::new(all);
                lock(&self.inner.active).insert(shop_id, (Instant::now(), all.clone()));
                all
            }
        };
        Ok(all.iter().filter(|a| a.world == world).cloned().collect())
    }

    /// Calls an install on a blocking thread, behind its circuit breaker. A failure is
    /// logged with the plugin's name and version and, if it is the plugin's fault,
    /// recorded against the install; the failure that opens the breaker marks the
    /// install `tripped`. A refusal under load (instance pool or the shop's share of it
    /// full) is neither recorded nor counted.
    pub async fn call<T, F>(&self, active: &Active, function: F) -> Result<T, CallFailure>
    where
        T: Send + 'static,
        F: FnOnce(&Plugin, &CallContext) -> Result<T, PluginError> + Send + 'static,
    {
        active.breaker.check()?;
        let mut ctx = CallContext::new(active.shop_id.to_string()).with_config(active.install.config.to_string());
        if active.has_kv() {
            ctx = match &active.scratch {
                Some(scratch) => ctx.with_kv(scratch.clone()),
                None => {
                    ctx.with_kv(Arc::new(kv::DbKv::new(self.inner.db.clone(), active.shop_id, &active.install.name)))
                }
            };
        }
        let (host, active) = (self.clone(), active.clone());
        // Its own task: the outcome is recorded (breaker, failures) even if the caller
        // is dropped meanwhile, e.g. by the request timeout.
        tokio::spawn(async move {
            let plugin = active.plugin.clone();
            let outcome = tokio::task::spawn_blocking(move || function(&plugin, &ctx))
                .await
                .map_err(|e| CallFailure::Abandoned(e.to_string()))?;
            host.record(&active, outcome).await
        })
        .await
        .map_err(|e| CallFailure::Abandoned(e.to_string()))?
    }

    async fn record<T>(&self, active: &Active, outcome: Result<T, PluginError>) -> Result<T, CallFailure> {
        if active.is_scratch() {
            // A dry run's own breaker counts; the install's record is left alone.
            return match outcome {
                Ok(value) => {
                    active.breaker.record_success();
                    Ok(value)
                }
                Err(error) => {
                    active.breaker.record_failure(&error);
                    Err(error.into())
                }
            };
        }
        match outcome {
            Ok(value) => {
                if active.breaker.record_success() {
                    self.recovered(active).await;
                }
                Ok(value)
            }
            Err(error) if !error.kind.is_plugin_fault() => {
                active.breaker.record_failure(&error);
                tracing::warn!(plugin = %error.plugin, function = error.function, %error, "plugin call refused under load");
                Err(error.into())
            }
            Err(error) => {
                let tripped = active.breaker.record_failure(&error);
                tracing::warn!(plugin = %error.plugin, function = error.function, %error, tripped, "plugin call failed");
                let message = error.to_string();
                if let Err(store_error) = self
                    .inner
                    .db
                    .record_plugin_failures(active.shop_id, &active.install.name, 1, Some(&message), tripped)
                    .await
                {
                    tracing::error!(%store_error, "could not record a plugin failure");
                }
                if tripped {
                    lock(&self.inner.active).remove(&active.shop_id);
                }
                Err(error.into())
            }
        }
    }

    /// A tripped install's trial call succeeded: it is `enabled` again.
    async fn recovered(&self, active: &Active) {
        tracing::info!(plugin = %active.install.name, shop = active.shop_id, "plugin recovered after its breaker's cooldown");
        if let Err(store_error) = self.inner.db.set_plugin_status(active.shop_id, &active.install.name, "enabled").await
        {
            tracing::error!(%store_error, "could not record a plugin's recovery");
        }
        lock(&self.inner.active).remove(&active.shop_id);
    }
}
