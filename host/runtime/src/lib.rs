//! Patron's plugin runtime: runs merchant-installed WebAssembly components
//! (the `patron:plugin` WIT contract) in a sandbox.
//!
//! - One [`Runtime`] per process: one wasmtime engine with a pooling
//!   allocator and epoch interruption, and a cache of compiled components
//!   (in memory, and on disk keyed by the sha256 of the bytes).
//! - [`Runtime::load`] checks a component against its [`Manifest`] and links it:
//!   a few harmless WASI interfaces, the capabilities the merchant's [`Grants`]
//!   allow, and stubs that fail the call for every other import. The result, a
//!   [`Plugin`], is one installed version.
//! - Calls ([`Plugin::segment`], [`Plugin::on_order`], ...) take a
//!   [`CallContext`] (shop, config, kv store, [`Limits`]) and run in a fresh,
//!   short-lived store; [`Plugin::instantiate`] gives a warm [`Instance`] for
//!   several calls. Every failure is a [`PluginError`] naming the plugin. A
//!   call's time limit holds wherever it is (wasm or a host call); a shop holds
//!   at most [`RuntimeConfig::max_instances_per_shop`] instances at once.
//! - [`CircuitBreaker`] switches off a plugin that keeps failing.
//!
//! Calls are synchronous for the caller (run them on a blocking thread); inside,
//! each is a future driven under its wall-clock limit.

pub mod bindings;
mod breaker;
mod capability;
mod context;
mod error;
mod executor;
mod grants;
mod imports;
mod inspect;
mod kv;
mod limits;
mod manifest;
mod output;
mod plugin;
#[cfg(feature = "testing")]
mod plugin_build;
mod runtime;
mod shop_slots;
mod store;
#[cfg(feature = "testing")]
pub mod testing;

pub use breaker::{BreakerOpen, BreakerState, CircuitBreaker};
pub use context::CallContext;
pub use error::{ErrorKind, LoadError, PluginError, RuntimeError};
pub use grants::{Capability, Grants, UnknownCapability};
pub use inspect::ComponentInfo;
pub use kv::{KvBackendError, KvStore, MAX_KEY_BYTES, MemoryKv};
pub use limits::Limits;
pub use manifest::{EVENT_KINDS, HOST_TRIGGERS, Manifest, ManifestError, World, is_event_kind, is_trigger};
/// Batch segmentation's answer: segment names once, per customer indexes into them.
pub use patron_sdk::Memberships;
pub use plugin::{Instance, Plugin, stats_batch};
pub use runtime::{Runtime, RuntimeConfig};

/// The contract's data types, as the host sees them (serde-enabled).
pub mod types {
    pub use crate::bindings::predictor::exports::patron::plugin::prediction::{CustomerBatch, Predictions};
    pub use crate::bindings::recommender::exports::patron::plugin::recommendation::RecommendRequest;
    pub use crate::bindings::types::{
        Action, CouponSpec, CustomerStats, Discount, Event, LineItem, Member, Message, Money, Order, OrderStatus,
        PluginError as GuestError, PointsAward, Product, Profile, Reward, ScoredItem, TierInfo, Timer, TimerRequest,
        Timestamp,
    };
}
