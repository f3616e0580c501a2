//! A loaded plugin, and instances of it: where calls happen.

use std::future::Future;
use std::marker::PhantomData;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use wasmtime::component::InstancePre;
use wasmtime::{PoolConcurrencyLimitError, Store, Trap};

use crate::Memberships;
use crate::bindings::automation::{Automation, AutomationIndices};
use crate::bindings::loyalty::{Loyalty, LoyaltyIndices};
use crate::bindings::predictor::exports::patron::plugin::prediction::{CustomerBatch, Predictions};
use crate::bindings::predictor::{Predictor, PredictorIndices};
use crate::bindings::recommender::exports::patron::plugin::recommendation::RecommendRequest;
use crate::bindings::recommender::{Recommender, RecommenderIndices};
use crate::bindings::segmenter::{Segmenter, SegmenterIndices};
use crate::bindings::stats_segmenter::exports::patron::plugin::stats_segmentation::{
    Guest as StatsSegmenter, GuestIndices as StatsSegmenterIndices, StatsBatch as WitStatsBatch,
};
use crate::bindings::types::{
    Action, CustomerStats, Event, Member, Order, PluginError as GuestError, Product, Profile, Reward, ScoredItem,
    TierInfo, Timer,
};
use crate::context::CallContext;
use crate::error::{ErrorKind, PluginError};
use crate::executor::{Elapsed, Executor};
use crate::inspect::ComponentInfo;
use crate::manifest::{Manifest, World};
use crate::output::OutputSize;
use crate::shop_slots::{ShopSlots, Slot};
use crate::store::StoreState;

/// A plugin version, compiled, checked and linked: ready to instantiate.
/// Cloning is cheap; it is `Send + Sync`, so the host keeps one per installed
/// version and calls it from any thread.
#[derive(Clone)]
pub struct Plugin {
    inner: Arc<PluginInner>,
}

struct PluginInner {
    label: Arc<str>,
    manifest: Manifest,
    info: ComponentInfo,
    pre: InstancePre<StoreState>,
    segmenter: Option<SegmenterIndices>,
    stats_segmenter: Option<StatsSegmenterIndices>,
    loyalty: Option<LoyaltyIndices>,
    recommender: Option<RecommenderIndices>,
    automation: Option<AutomationIndices>,
    predictor: Option<PredictorIndices>,
    shared: Shared,
}

/// What every plugin of one [`Runtime`](crate::Runtime) shares.
pub(crate) struct Shared {
    /// Ceiling of any instance's linear memory.
    pub(crate) memory_ceiling: usize,
    /// Drives calls under their time limits.
    pub(crate) executor: Arc<Executor>,
    /// Live instances per shop.
    pub(crate) slots: Arc<ShopSlots>,
}

impl Plugin {
    pub(crate) fn new(
        label: String,
        manifest: Manifest,
        info: ComponentInfo,
        pre: InstancePre<StoreState>,
        shared: Shared,
    ) -> wasmtime::Result<Self> {
        let has = |w: World| info.worlds.contains(&w);
        let segmenter = has(World::Segmenter).then(|| SegmenterIndices::new(&pre)).transpose()?;
        let stats_segmenter =
            (has(World::Segmenter) && info.stats_segmentation).then(|| StatsSegmenterIndices::new(&pre)).transpose()?;
        let loyalty = has(World::Loyalty).then(|| LoyaltyIndices::new(&pre)).transpose()?;
        let recommender = has(World::Recommender).then(|| RecommenderIndices::new(&pre)).transpose()?;
        let automation = has(World::Automation).then(|| AutomationIndices::new(&pre)).transpose()?;
        let predictor = has(World::Predictor).then(|| PredictorIndices::new(&pre)).transpose()?;
        Ok(Self {
            inner: Arc::new(PluginInner {
                label: label.into(),
                manifest,
                info,
                pre,
                segmenter,
                stats_segmenter,
                loyalty,
                recommender,
                automation,
                predictor,
                shared,
            }),
        })
    }

    /// `name@version`.
    pub fn label(&self) -> &str {
        &self.inner.label
    }

    /// The manifest it was loaded with.
    pub fn manifest(&self) -> &Manifest {
        &self.inner.manifest
    }

    /// What the component implements and imports.
    pub fn info(&self) -> &ComponentInfo {
        &self.inner.info
    }

    /// A fresh instance in its own store, carrying `ctx`'s limits. Use it for
    /// several calls in a row (a warm instance); drop it when done. It holds one
    /// of the shop's instance slots until then.
    pub fn instantiate(&self, ctx: CallContext) -> Result<Instance, PluginError> {
        let inner = &self.inner;
        let fail = |kind| PluginError::new(&*inner.label, "instantiate", kind);
        let slots = &inner.shared.slots;
        let Some(slot) = slots.acquire(&ctx.shop_id) else {
            let message = format!("shop {} already holds {} plugin instances", ctx.shop_id, slots.limit());
            return Err(fail(ErrorKind::Overloaded(message)));
        };
        let timeout = ctx.limits.timeout;
        let state = StoreState::new(Arc::clone(&inner.label), ctx, inner.shared.memory_ceiling);
        let mut store = Store::new(inner.pre.engine(), state);
        store.limiter(|s| &mut s.limiter);
        // Wasm yields to the executor at every epoch tick, so the call's timer can
        // end it; the limit itself is that timer (`Executor::run`).
        store.set_epoch_deadline(1);
        store.epoch_deadline_async_yield_and_update(1);
        let instance = match inner.shared.executor.run(timeout, inner.pre.instantiate_async(&mut store)) {
            Ok(Ok(instance)) => instance,
            Ok(Err(e)) if e.is::<PoolConcurrencyLimitError>() => {
                return Err(fail(ErrorKind::Overloaded(format!("{e:#}"))));
            }
            Ok(Err(e)) => return Err(fail(ErrorKind::Instantiate(format!("{e:#}")))),
            Err(Elapsed) => return Err(fail(ErrorKind::Timeout(timeout))),
        };
        let mut exports = Exports::default();
        let load_error = |e: wasmtime::Error| fail(ErrorKind::Instantiate(format!("{e:#}")));
        if let Some(ix) = &inner.segmenter {
            exports.segmenter = Some(ix.load(&mut store, &instance).map_err(load_error)?);
        }
        if let Some(ix) = &inner.stats_segmenter {
            exports.stats_segmenter = Some(ix.load(&mut store, &instance).map_err(load_error)?);
        }
        if let Some(ix) = &inner.loyalty {
            exports.loyalty = Some(ix.load(&mut store, &instance).map_err(load_error)?);
        }
        if let Some(ix) = &inner.recommender {
            exports.recommender = Some(ix.load(&mut store, &instance).map_err(load_error)?);
        }
        if let Some(ix) = &inner.automation {
            exports.automation = Some(ix.load(&mut store, &instance).map_err(load_error)?);
        }
        if let Some(ix) = &inner.predictor {
            exports.predictor = Some(ix.load(&mut store, &instance).map_err(load_error)?);
        }
        Ok(Instance { plugin: self.clone(), store, exports, poisoned: false, _slot: slot })
    }

    /// `segmenter`: one fresh instance, one [`Instance::segment`] call.
    pub fn segment(&self, ctx: &CallContext, profiles: &[Profile]) -> Result<Vec<Vec<String>>, PluginError> {
        self.instantiate(ctx.clone())?.segment(profiles)
    }

    /// `segmenter`: one fresh instance, one [`Instance::segment_batch`] call.
    pub fn segment_batch(&self, ctx: &CallContext, profiles: &[Profile]) -> Result<Memberships, PluginError> {
        self.instantiate(ctx.clone())?.segment_batch(profiles)
    }

    /// `loyalty`: one fresh instance, one [`Instance::on_order`] call.
    pub fn on_order(&self, ctx: &CallContext, order: &Order, member: &Member) -> Result<Vec<Action>, PluginError> {
        self.instantiate(ctx.clone())?.on_order(order, member)
    }

    /// `loyalty`: one fresh instance, one [`Instance::on_refund`] call.
    pub fn on_refund(&self, ctx: &CallContext, order: &Order, member: &Member) -> Result<Vec<Action>, PluginError> {
        self.instantiate(ctx.clone())?.on_refund(order, member)
    }

    /// `loyalty`: one fresh instance, one [`Instance::tier_for`] call.
    pub fn tier_for(&self, ctx: &CallContext, member: &Member) -> Result<TierInfo, PluginError> {
        self.instantiate(ctx.clone())?.tier_for(member)
    }

    /// `loyalty`: one fresh instance, one [`Instance::rewards`] call.
    pub fn rewards(&self, ctx: &CallContext) -> Result<Vec<Reward>, PluginError> {
        self.instantiate(ctx.clone())?.rewards()
    }

    /// `recommender`: one fresh instance, one [`Instance::train`] call.
    pub fn train(
        &self,
        ctx: &CallContext,
        model: Option<&[u8]>,
        orders: &[Order],
        catalogue: &[Product],
    ) -> Result<Vec<u8>, PluginError> {
        self.instantiate(ctx.clone())?.train(model, orders, catalogue)
    }

    /// `recommender`: one fresh instance, one [`Instance::recommend`] call.
    pub fn recommend(
        &self,
        ctx: &CallContext,
        model: &[u8],
        request: &RecommendRequest,
    ) -> Result<Vec<ScoredItem>, PluginError> {
        self.instantiate(ctx.clone())?.recommend(model, request)
    }

    /// `predictor`: one fresh instance, one [`Instance::fit`] call.
    pub fn fit(
        &self,
        ctx: &CallContext,
        state: Option<&[u8]>,
        batch: &CustomerBatch,
        as_of: i64,
        last: bool,
    ) -> Result<Vec<u8>, PluginError> {
        self.instantiate(ctx.clone())?.fit(state, batch, as_of, last)
    }

    /// `predictor`: one fresh instance, one [`Instance::predict`] call.
    pub fn predict(
        &self,
        ctx: &CallContext,
        model: &[u8],
        batch: &CustomerBatch,
        as_of: i64,
        horizon_days: &[u32],
    ) -> Result<Predictions, PluginError> {
        self.instantiate(ctx.clone())?.predict(model, batch, as_of, horizon_days)
    }

    /// `automation`: one fresh instance, one [`Instance::on_event`] call.
    pub fn on_event(&self, ctx: &CallContext, event: &Event, profile: &Profile) -> Result<Vec<Action>, PluginError> {
        self.instantiate(ctx.clone())?.on_event(event, profile)
    }

    /// `automation`: one fresh instance, one [`Instance::on_timer`] call.
    pub fn on_timer(&self, ctx: &CallContext, timer: &Timer, profile: &Profile) -> Result<Vec<Action>, PluginError> {
        self.instantiate(ctx.clone())?.on_timer(timer, profile)
    }
}

impl std::fmt::Debug for Plugin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Plugin")
            .field("label", &self.inner.label)
            .field("info", &self.inner.info)
            .finish_non_exhaustive()
    }
}

/// The order statistics of `profiles`, as [`Instance::segment_batch`] sends them to a
/// stats segmenter: the SDK's [`StatsBatch`](patron_sdk::StatsBatch), so that the
/// same logic run natively starts from the same columns.
pub fn stats_batch(profiles: &[Profile]) -> patron_sdk::StatsBatch {
    profiles.iter().map(|p| patron_sdk::CustomerStats::from(&p.stats)).collect()
}

impl From<&CustomerStats> for patron_sdk::CustomerStats {
    fn from(s: &CustomerStats) -> Self {
        Self {
            order_count: s.order_count,
            total_spent: s.total_spent,
            average_order_value: s.average_order_value,
            first_order_at: s.first_order_at,
            last_order_at: s.last_order_at,
            days_since_last_order: s.days_since_last_order,
        }
    }
}

fn wit_stats_batch(batch: patron_sdk::StatsBatch) -> WitStatsBatch {
    let c = batch.into_columns();
    WitStatsBatch {
        order_count: c.order_count,
        total_spent: c.total_spent,
        average_order_value: c.average_order_value,
        first_order_at: c.first_order_at,
        last_order_at: c.last_order_at,
        days_since_last_order: c.days_since_last_order,
    }
}

#[derive(Default)]
struct Exports {
    segmenter: Option<Segmenter>,
    stats_segmenter: Option<StatsSegmenter>,
    loyalty: Option<Loyalty>,
    recommender: Option<Recommender>,
    automation: Option<Automation>,
    predictor: Option<Predictor>,
}

/// One instance of a plugin in its own store. Every call is bounded by the
/// store's limits (time per call, memory, output size). After a failed call
/// (other than an error the plugin returned) the instance is unusable:
/// further calls fail with [`ErrorKind::Poisoned`].
pub struct Instance {
    plugin: Plugin,
    store: Store<StoreState>,
    exports: Exports,
    poisoned: bool,
    /// Released when the instance is dropped (after its store).
    _slot: Slot,
}

/// A call of one export, borrowing the instance's store for `'a`; the last
/// argument bounds `'a` by the call's inputs (`'p`).
type CallFuture<'a, R> = Pin<Box<dyn Future<Output = wasmtime::Result<Result<R, GuestError>>> + Send + 'a>>;
type Inputs<'a, 'p> = PhantomData<&'a &'p ()>;

impl Instance {
    /// For each profile, its segments (exactly one entry per profile).
    pub fn segment(&mut self, profiles: &[Profile]) -> Result<Vec<Vec<String>>, PluginError> {
        let out = self.call(
            World::Segmenter,
            "segment",
            |e| e.segmenter.as_ref(),
            |b, s, _| Box::pin(b.patron_plugin_segmentation().call_segment(s, profiles)),
        )?;
        self.check_answers("segment", out.len(), profiles.len())?;
        Ok(out)
    }

    /// For each profile, its segments, through the plugin's stats-only batch path
    /// (`segment-stats`) when it exports one, else through `segment`: the same
    /// memberships either way. For batch recompute.
    pub fn segment_batch(&mut self, profiles: &[Profile]) -> Result<Memberships, PluginError> {
        if self.exports.stats_segmenter.is_none() {
            return self.segment(profiles).map(Memberships::from_lists);
        }
        let batch = wit_stats_batch(stats_batch(profiles));
        let out = self.call(
            World::Segmenter,
            "segment-stats",
            |e| e.stats_segmenter.as_ref(),
            |b, s, _| Box::pin(b.call_segment_stats(s, &batch)),
        )?;
        let memberships = Memberships::from_parts(out.names, out.ends, out.members)
            .map_err(|reason| self.error("segment-stats", ErrorKind::InvalidOutput(reason)))?;
        self.check_answers("segment-stats", memberships.len(), profiles.len())?;
        Ok(memberships)
    }

    /// A segmenter must answer once per profile.
    fn check_answers(&self, function: &'static str, answers: usize, profiles: usize) -> Result<(), PluginError> {
        if answers == profiles {
            return Ok(());
        }
        Err(self.error(function, ErrorKind::InvalidOutput(format!("{answers} answers for {profiles} profiles"))))
    }

    /// Actions for a paid order.
    pub fn on_order(&mut self, order: &Order, member: &Member) -> Result<Vec<Action>, PluginError> {
        self.call(
            World::Loyalty,
            "on-order",
            |e| e.loyalty.as_ref(),
            |b, s, _| Box::pin(b.patron_plugin_loyalty_program().call_on_order(s, order, member)),
        )
    }

    /// Actions for a refunded order.
    pub fn on_refund(&mut self, order: &Order, member: &Member) -> Result<Vec<Action>, PluginError> {
        self.call(
            World::Loyalty,
            "on-refund",
            |e| e.loyalty.as_ref(),
            |b, s, _| Box::pin(b.patron_plugin_loyalty_program().call_on_refund(s, order, member)),
        )
    }

    /// The tier a member should hold.
    pub fn tier_for(&mut self, member: &Member) -> Result<TierInfo, PluginError> {
        self.call(
            World::Loyalty,
            "tier-for",
            |e| e.loyalty.as_ref(),
            |b, s, _| Box::pin(b.patron_plugin_loyalty_program().call_tier_for(s, member)),
        )
    }

    /// The rewards members can redeem.
    pub fn rewards(&mut self) -> Result<Vec<Reward>, PluginError> {
        self.call(
            World::Loyalty,
            "rewards",
            |e| e.loyalty.as_ref(),
            |b, s, _| Box::pin(b.patron_plugin_loyalty_program().call_rewards(s)),
        )
    }

    /// Fold a chunk of orders into the model (`None` for the first chunk).
    pub fn train(
        &mut self,
        model: Option<&[u8]>,
        orders: &[Order],
        catalogue: &[Product],
    ) -> Result<Vec<u8>, PluginError> {
        self.call(
            World::Recommender,
            "train",
            |e| e.recommender.as_ref(),
            |b, s, _| Box::pin(b.patron_plugin_recommendation().call_train(s, model, orders, catalogue)),
        )
    }

    /// Recommend from a trained model.
    pub fn recommend(&mut self, model: &[u8], request: &RecommendRequest) -> Result<Vec<ScoredItem>, PluginError> {
        self.call(
            World::Recommender,
            "recommend",
            |e| e.recommender.as_ref(),
            |b, s, _| Box::pin(b.patron_plugin_recommendation().call_recommend(s, model, request)),
        )
    }

    /// Fold a batch of customers into a fit (`None`: the first batch); with
    /// `last`, the fitted model.
    pub fn fit(
        &mut self,
        state: Option<&[u8]>,
        batch: &CustomerBatch,
        as_of: i64,
        last: bool,
    ) -> Result<Vec<u8>, PluginError> {
        self.call(
            World::Predictor,
            "fit",
            |e| e.predictor.as_ref(),
            |b, s, _| Box::pin(b.patron_plugin_prediction().call_fit(s, state, batch, as_of, last)),
        )
    }

    /// Predictions for a batch of customers from a fitted model, checked to
    /// answer once per customer (and once per customer and horizon).
    pub fn predict(
        &mut self,
        model: &[u8],
        batch: &CustomerBatch,
        as_of: i64,
        horizon_days: &[u32],
    ) -> Result<Predictions, PluginError> {
        let out = self.call(
            World::Predictor,
            "predict",
            |e| e.predictor.as_ref(),
            |b, s, _| Box::pin(b.patron_plugin_prediction().call_predict(s, model, batch, as_of, horizon_days)),
        )?;
        let n = batch.order_count.len();
        let complete = [out.p_alive.len(), out.expected_order_value.len(), out.clv.len(), out.segment_ends.len()]
            .iter()
            .all(|&len| len == n)
            && out.expected_purchases.len() == n * horizon_days.len();
        if !complete {
            let reason =
                format!("predictions of the wrong length for {n} customers and {} horizons", horizon_days.len());
            return Err(self.error("predict", ErrorKind::InvalidOutput(reason)));
        }
        Ok(out)
    }

    /// Actions for an event.
    pub fn on_event(&mut self, event: &Event, profile: &Profile) -> Result<Vec<Action>, PluginError> {
        self.call(
            World::Automation,
            "on-event",
            |e| e.automation.as_ref(),
            |b, s, _| Box::pin(b.patron_plugin_automation_hooks().call_on_event(s, event, profile)),
        )
    }

    /// Actions for a due timer.
    pub fn on_timer(&mut self, timer: &Timer, profile: &Profile) -> Result<Vec<Action>, PluginError> {
        self.call(
            World::Automation,
            "on-timer",
            |e| e.automation.as_ref(),
            |b, s, _| Box::pin(b.patron_plugin_automation_hooks().call_on_timer(s, timer, profile)),
        )
    }

    fn error(&self, function: &'static str, kind: ErrorKind) -> PluginError {
        PluginError::new(self.plugin.label(), function, kind)
    }

    /// Run one export under the store's limits and turn every way it can fail
    /// into a [`PluginError`].
    fn call<'p, B, R: OutputSize>(
        &mut self,
        world: World,
        function: &'static str,
        bindings: impl FnOnce(&Exports) -> Option<&B>,
        f: impl for<'a> FnOnce(&'a B, &'a mut Store<StoreState>, Inputs<'a, 'p>) -> CallFuture<'a, R>,
    ) -> Result<R, PluginError> {
        if self.poisoned {
            return Err(self.error(function, ErrorKind::Poisoned));
        }
        let Some(b) = bindings(&self.exports) else {
            return Err(self.error(function, ErrorKind::WrongWorld(world)));
        };
        let limits = &self.store.data().ctx.limits;
        let (timeout, max_output) = (limits.timeout, limits.max_output_bytes);
        self.store.set_epoch_deadline(1);
        self.store.data_mut().begin_call();

        let executor = Arc::clone(&self.plugin.inner.shared.executor);
        let outcome = executor.run(timeout, f(b, &mut self.store, PhantomData));
        let denied = self.store.data().denials();
        let kind = match outcome {
            Err(Elapsed) => {
                self.poisoned = true;
                ErrorKind::Timeout(timeout)
            }
            Ok(Err(trap)) => {
                self.poisoned = true;
                self.classify(&trap, timeout)
            }
            Ok(_) if denied.is_some() => ErrorKind::Denied(denied.unwrap_or_default()),
            Ok(Ok(Err(guest))) => ErrorKind::Guest { code: guest.code, message: guest.message },
            Ok(Ok(Ok(out))) => {
                let size = out.output_size();
                if size <= max_output {
                    return Ok(out);
                }
                ErrorKind::OutputTooLarge { size, limit: max_output }
            }
        };
        let error = self.error(function, kind);
        tracing::warn!(
            plugin = self.plugin.label(),
            shop = &*self.store.data().ctx.shop_id,
            code = error.kind.code(),
            "{error}"
        );
        Err(error)
    }

    /// Why a call trapped: limits first (a refused memory growth usually ends
    /// in an allocation-failure abort), then the trap code, then a panic
    /// message on the captured stderr.
    fn classify(&self, error: &wasmtime::Error, timeout: Duration) -> ErrorKind {
        let state = self.store.data();
        if state.limiter.hit {
            return ErrorKind::MemoryLimit { limit: state.limiter.limit };
        }
        if let Some(denied) = state.denials() {
            return ErrorKind::Denied(denied);
        }
        let trap = error.downcast_ref::<Trap>();
        match trap {
            Some(Trap::Interrupt) => return ErrorKind::Timeout(timeout),
            Some(Trap::StackOverflow) => return ErrorKind::StackOverflow,
            _ => {}
        }
        let stderr = state.stderr.contents();
        let stderr = String::from_utf8_lossy(&stderr);
        if let Some(at) = stderr.find("panicked at") {
            let message: String = stderr[at..].lines().take(2).collect::<Vec<_>>().join(" ");
            return ErrorKind::Panic(message);
        }
        match trap {
            Some(trap) => ErrorKind::Trap(trap.to_string()),
            None => ErrorKind::Trap(format!("{error:#}")),
        }
    }
}

impl std::fmt::Debug for Instance {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Instance")
            .field("plugin", &self.plugin.label())
            .field("poisoned", &self.poisoned)
            .finish_non_exhaustive()
    }
}
