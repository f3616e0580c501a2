//! The process-wide runtime: one engine, the compiled-component cache, loading.

use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use sha2::{Digest, Sha256};
use wasmtime::component::{Component, Linker};
use wasmtime::{Config, Engine, InstanceAllocationStrategy, PoolingAllocationConfig};

use crate::error::{LoadError, RuntimeError};
use crate::executor::Executor;
use crate::grants::{Capability, Grants};
use crate::imports;
use crate::inspect::{ComponentInfo, inspect};
use crate::manifest::Manifest;
use crate::plugin::{Plugin, Shared};
use crate::shop_slots::ShopSlots;
use crate::store::StoreState;

/// How the process-wide runtime is set up. Per-call limits are in
/// [`Limits`](crate::Limits); these are the ceilings and shared resources.
#[derive(Clone, Debug)]
pub struct RuntimeConfig {
    /// Where compiled components are cached (one file per component hash and
    /// engine configuration). `None`: compile on every process start.
    pub cache_dir: Option<PathBuf>,
    /// Instances that may exist at once (the pooling allocator's slots).
    pub max_instances: u32,
    /// Instances one shop may hold at once, so that one shop's traffic cannot take
    /// every slot; an instantiation over it fails as [`ErrorKind::Overloaded`](crate::ErrorKind::Overloaded).
    pub max_instances_per_shop: u32,
    /// Ceiling of any instance's linear memory, in bytes; per-call limits above
    /// it are lowered to it.
    pub max_memory_bytes: usize,
    /// Granularity of time limits: the epoch ticker's period.
    pub epoch_tick: Duration,
    /// Native stack a wasm call may use, in bytes.
    pub max_wasm_stack: usize,
}

impl Default for RuntimeConfig {
    fn default() -> Self {
        Self {
            cache_dir: None,
            max_instances: 256,
            max_instances_per_shop: 64,
            max_memory_bytes: 256 << 20,
            epoch_tick: Duration::from_millis(5),
            max_wasm_stack: 512 << 10,
        }
    }
}

/// The plugin runtime: one per process. Cloning is cheap (shared engine and cache).
#[derive(Clone)]
pub struct Runtime {
    inner: Arc<Inner>,
}

struct Inner {
    engine: Engine,
    config: RuntimeConfig,
    /// Identifies the engine's compilation settings in cache file names.
    engine_hash: u64,
    /// Components compiled (or deserialized) in this process, by sha256 of the bytes.
    compiled: Mutex<HashMap<String, Component>>,
    /// Drives calls under their wall-clock limits.
    executor: Arc<Executor>,
    /// Live instances per shop.
    slots: Arc<ShopSlots>,
}

impl Runtime {
    /// Build the engine (pooling allocator, epoch interruption) and start the
    /// epoch ticker thread, which stops once the engine is dropped.
    pub fn new(config: RuntimeConfig) -> Result<Self, RuntimeError> {
        let mut pool = PoolingAllocationConfig::default();
        pool.total_component_instances(config.max_instances)
            .total_core_instances(config.max_instances.saturating_mul(8))
            .total_memories(config.max_instances.saturating_mul(2))
            .total_tables(config.max_instances.saturating_mul(4))
            .total_stacks(config.max_instances)
            .max_memory_size(config.max_memory_bytes);
        let mut wasm = Config::new();
        wasm.wasm_component_model(true)
            .epoch_interruption(true)
            .max_wasm_stack(config.max_wasm_stack)
            .allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
        let engine = Engine::new(&wasm).map_err(|e| RuntimeError::Engine(e.to_string()))?;

        if let Some(dir) = &config.cache_dir {
            std::fs::create_dir_all(dir).map_err(|source| RuntimeError::CacheDir { path: dir.clone(), source })?;
        }
        let mut hasher = std::hash::DefaultHasher::new();
        engine.precompile_compatibility_hash().hash(&mut hasher);
        let engine_hash = hasher.finish();

        let weak = engine.weak();
        let tick = config.epoch_tick;
        std::thread::Builder::new()
            .name("patron-epoch".into())
            .spawn(move || {
                while let Some(engine) = weak.upgrade() {
                    engine.increment_epoch();
                    drop(engine);
                    std::thread::sleep(tick);
                }
            })
            .map_err(|e| RuntimeError::Engine(format!("epoch thread: {e}")))?;

        let executor = Arc::new(Executor::new().map_err(|e| RuntimeError::Engine(format!("executor: {e}")))?);
        let slots = ShopSlots::new(config.max_instances_per_shop);
        Ok(Self {
            inner: Arc::new(Inner {
                engine,
                config,
                engine_hash,
                compiled: Mutex::new(HashMap::new()),
                executor,
                slots,
            }),
        })
    }

    /// The configuration the runtime was built with.
    pub fn config(&self) -> &RuntimeConfig {
        &self.inner.config
    }

    /// What a component implements and imports, without linking it: the
    /// host's install flow shows this before the merchant grants anything.
    pub fn inspect(&self, wasm: &[u8]) -> Result<ComponentInfo, LoadError> {
        let component = self.compile("<inspected>", wasm)?;
        Ok(inspect(&self.inner.engine, &component))
    }

    /// Compile (or fetch from cache), check and link a plugin.
    ///
    /// Refused when: the manifest is invalid; the component implements no
    /// Patron world, or not the manifest's; it imports anything other than
    /// Patron's interfaces and WASI. Capabilities it imports but its manifest
    /// does not request, or `grants` does not allow, are linked as stubs: calling
    /// one fails that call (`capability `kv` not granted to plugin ...`).
    pub fn load(&self, wasm: &[u8], manifest: &Manifest, grants: &Grants) -> Result<Plugin, LoadError> {
        let label = manifest.label();
        manifest.validate().map_err(|source| LoadError::Manifest { plugin: label.clone(), source })?;
        let component = self.compile(&label, wasm)?;
        let info = inspect(&self.inner.engine, &component);

        if info.worlds.is_empty() {
            return Err(LoadError::NoWorld { plugin: label, found: list_or_nothing(&info.exports) });
        }
        if !info.worlds.contains(&manifest.world) {
            let found: Vec<String> = info.worlds.iter().map(ToString::to_string).collect();
            return Err(LoadError::WorldMismatch { plugin: label, declared: manifest.world, found: found.join(", ") });
        }
        if !info.unknown_imports.is_empty() {
            return Err(LoadError::UnknownImports { plugin: label, imports: info.unknown_imports });
        }

        let linked = Grants::of(manifest.imports.iter().copied().filter(|&c: &Capability| grants.allows(c)));
        let link_error = |e: wasmtime::Error| LoadError::Link { plugin: label.clone(), reason: format!("{e:#}") };
        let mut linker: Linker<StoreState> = Linker::new(&self.inner.engine);
        imports::link(&mut linker, &self.inner.engine, &component, &linked, &label).map_err(link_error)?;
        let pre = linker.instantiate_pre(&component).map_err(link_error)?;

        let shared = Shared {
            memory_ceiling: self.inner.config.max_memory_bytes,
            executor: Arc::clone(&self.inner.executor),
            slots: Arc::clone(&self.inner.slots),
        };
        Plugin::new(label.clone(), manifest.clone(), info, pre, shared).map_err(link_error)
    }

    /// The compiled component for `wasm`: from this process's memory, from the
    /// disk cache, or freshly compiled (and then written to the disk cache).
    fn compile(&self, label: &str, wasm: &[u8]) -> Result<Component, LoadError> {
        let key = hex::encode(Sha256::digest(wasm));
        if let Some(component) = self.lock_compiled().get(&key) {
            return Ok(component.clone());
        }
        let component = match &self.inner.config.cache_dir {
            Some(dir) => self.compile_cached(dir, &key, wasm),
            None => Component::new(&self.inner.engine, wasm),
        }
        .map_err(|e| LoadError::InvalidComponent { plugin: label.to_owned(), reason: format!("{e:#}") })?;
        self.lock_compiled().insert(key, component.clone());
        Ok(component)
    }

    fn lock_compiled(&self) -> std::sync::MutexGuard<'_, HashMap<String, Component>> {
        // The map only ever holds complete entries; a poisoned lock is still usable.
        self.inner.compiled.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn compile_cached(&self, dir: &Path, key: &str, wasm: &[u8]) -> wasmtime::Result<Component> {
        let path = dir.join(format!("{key}-{:016x}.cwasm", self.inner.engine_hash));
        if path.exists() {
            match load_cached_artifact(&self.inner.engine, &path) {
                Ok(component) => return Ok(component),
                Err(e) => tracing::warn!(path = %path.display(), "ignoring unusable cached component: {e}"),
            }
        }
        let component = Component::new(&self.inner.engine, wasm)?;
        match component.serialize() {
            Ok(bytes) => {
                let tmp = path.with_extension(format!("tmp{}", std::process::id()));
                let written = std::fs::write(&tmp, bytes).and_then(|()| std::fs::rename(&tmp, &path));
                if let Err(e) = written {
                    let _ = std::fs::remove_file(&tmp);
                    tracing::warn!(path = %path.display(), "could not cache compiled component: {e}");
                }
            }
            Err(e) => tracing::warn!("could not serialize compiled component: {e}"),
        }
        Ok(component)
    }
}

/// Load a compiled component from the runtime's own cache directory.
#[allow(unsafe_code)]
fn load_cached_artifact(engine: &Engine, path: &Path) -> wasmtime::Result<Component> {
    // SAFETY: `deserialize_file` requires bytes produced by `Component::serialize`
    // on a compatible engine; arbitrary bytes could run arbitrary native code.
    // This file is in the runtime's private cache directory, named after the
    // sha256 of the source component and the engine's compatibility hash, and is
    // only ever written by `compile_cached` above (atomically, via rename).
    // wasmtime also checks the artifact's header against this engine's version
    // and settings. Whoever can write this directory can replace the host binary.
    unsafe { Component::deserialize_file(engine, path) }
}

fn list_or_nothing(items: &[String]) -> String {
    if items.is_empty() { "nothing".to_owned() } else { items.join(", ") }
}
