//! What one short-lived `Store` carries: the call's context, limits and a WASI context with nothing in it.

use std::sync::Arc;

use wasmtime::component::ResourceTable;
use wasmtime_wasi::p2::pipe::MemoryOutputPipe;
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

use crate::context::CallContext;

/// Bytes of a guest's stderr kept per store (panic messages are read from it).
const STDERR_CAPACITY: usize = 8 * 1024;

/// Data of one `Store`: one instance's host-side state.
pub(crate) struct StoreState {
    /// `name@version`, for logs.
    pub(crate) plugin: Arc<str>,
    /// Shop, config, kv backend and limits of the call.
    pub(crate) ctx: CallContext,
    /// WASI, configured deny-all.
    wasi: WasiCtx,
    table: ResourceTable,
    /// The guest's stderr, captured (never inherited).
    pub(crate) stderr: MemoryOutputPipe,
    /// Memory limiter; remembers whether the limit was hit.
    pub(crate) limiter: MemoryLimiter,
    /// Imports the guest called that it may not use (stubs), during this call.
    denied: Vec<String>,
    /// Log lines written during the current call.
    pub(crate) log_lines: u32,
}

impl StoreState {
    pub(crate) fn new(plugin: Arc<str>, ctx: CallContext, memory_ceiling: usize) -> Self {
        let stderr = MemoryOutputPipe::new(STDERR_CAPACITY);
        // No environment, no arguments, stdin empty, stdout discarded, stderr
        // captured. Filesystem and sockets are not linked at all (`imports`).
        let wasi = WasiCtx::builder().stderr(stderr.clone()).allow_ip_name_lookup(false).build();
        let memory_limit = ctx.limits.max_memory_bytes.min(memory_ceiling);
        Self {
            plugin,
            ctx,
            wasi,
            table: ResourceTable::new(),
            stderr,
            limiter: MemoryLimiter { limit: memory_limit, hit: false },
            denied: Vec::new(),
            log_lines: 0,
        }
    }

    /// Forget per-call observations before a new call on the same instance.
    pub(crate) fn begin_call(&mut self) {
        self.limiter.hit = false;
        self.log_lines = 0;
        self.denied.clear();
    }

    /// Record a call of a stubbed import (it then traps).
    pub(crate) fn deny(&mut self, reason: &str) {
        self.denied.push(reason.to_owned());
    }

    /// The stubbed imports called during this call, if any, joined.
    pub(crate) fn denials(&self) -> Option<String> {
        (!self.denied.is_empty()).then(|| self.denied.join(", "))
    }
}

impl WasiView for StoreState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView { ctx: &mut self.wasi, table: &mut self.table }
    }
}

/// Caps linear memory and table growth of one store.
pub(crate) struct MemoryLimiter {
    /// Bytes of linear memory allowed (per memory).
    pub(crate) limit: usize,
    /// Whether a growth was refused because of `limit`.
    pub(crate) hit: bool,
}

/// Table elements one instance may have; generous for any real plugin.
const MAX_TABLE_ELEMENTS: usize = 100_000;

impl wasmtime::ResourceLimiter for MemoryLimiter {
    fn memory_growing(&mut self, _current: usize, desired: usize, _maximum: Option<usize>) -> wasmtime::Result<bool> {
        if desired > self.limit {
            self.hit = true;
            return Ok(false);
        }
        Ok(true)
    }

    fn table_growing(&mut self, _current: usize, desired: usize, _maximum: Option<usize>) -> wasmtime::Result<bool> {
        Ok(desired <= MAX_TABLE_ELEMENTS)
    }
}
