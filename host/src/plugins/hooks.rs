//! Where plugins hear about what happened: an order was placed or reversed, a customer
//! changed. A plugin failure here never fails the store's request — the order is stored
//! either way; the failure is recorded against the plugin, and the order change's job
//! (queued with the change, see `store::order_hooks`) tries that plugin again later.

use patron_runtime::World;
use patron_runtime::types::{Action, Member, Order as WitOrder};

use super::actions::{self, Actor, Applied, Trigger};
use super::{Active, CallFailure, PluginHost, convert};
use crate::store::order_hooks::{self, LoyaltyJob, LoyaltyWork, OrderChange};
use crate::store::orders::Order;
use crate::store::shops::Shop;
use crate::store::{StoreError, StoreResult, WriteTx, coupons, now_ms, points};

/// What the loyalty plugins did about one order.
#[derive(Debug, Clone, Default, serde::Serialize, PartialEq, utoipa::ToSchema)]
pub struct LoyaltyOutcome {
    pub applied: Vec<Applied>,
    pub points_reversed: i64,
    pub coupon_refusals: Vec<coupons::CouponRefusal>,
    /// Loyalty plugins that have not heard of the order change, with why (their call
    /// failed, or their circuit breaker disabled them); its job tries them again.
    pub failures: Vec<String>,
}

impl LoyaltyOutcome {
    /// Why the change is not yet fully heard, if it is not.
    fn failure(&self) -> Option<String> {
        (!self.failures.is_empty()).then(|| format!("loyalty plugins failed: {}", self.failures.join("; ")))
    }
}

/// `on-order` or `on-refund` of a loyalty plugin.
type LoyaltyHook = fn(
    &patron_runtime::Plugin,
    &patron_runtime::CallContext,
    &WitOrder,
    &Member,
) -> Result<Vec<Action>, patron_runtime::PluginError>;

/// An order change to put to each loyalty plugin, and the hook that hears of it.
struct OrderHook<'a> {
    order: &'a Order,
    customer_id: i64,
    change: &'a OrderChange,
    call: LoyaltyHook,
}

pub(crate) fn actor(active: &Active) -> Actor<'_> {
    Actor {
        plugin: &active.install.name,
        label: active.plugin.label().to_owned(),
        points_expiry_days: active.install.config.get("points-expiry-days").and_then(serde_json::Value::as_i64),
    }
}

impl PluginHost {
    /// The member state a loyalty plugin is shown.
    pub async fn member(&self, shop: &Shop, customer_id: i64) -> StoreResult<Member> {
        let db = self.db();
        let tier = db.tier(shop.id, customer_id).await?;
        let balance = db.points_balance(shop.id, customer_id).await?;
        let spend = db.rolling_spend(shop.id, customer_id, now_ms()).await?;
        Ok(convert::member(customer_id, tier, balance, spend, &shop.currency))
    }

    /// Applies a plugin's actions in `w` and commits; refused actions are recorded
    /// against the plugin.
    pub(crate) async fn apply_recording(
        &self,
        w: WriteTx<'_>,
        shop: &Shop,
        customer_id: i64,
        active: &Active,
        trigger: Trigger<'_>,
        list: &[Action],
    ) -> StoreResult<Applied> {
        let applied = actions::apply(w, shop, customer_id, &actor(active), trigger, list).await?;
        if let Some(reason) = applied.refused.first() {
            let message = format!("{} refused action(s): {reason}", applied.refused.len());
            self.db().record_plugin_failures(shop.id, &active.install.name, 0, Some(&message), false).await?;
        }
        Ok(applied)
    }

    /// One loyalty plugin hears of an order change, unless it already has: its actions
    /// apply in the transaction that records that it heard. Then the member's tier is
    /// brought in line with what the plugin says it should be. `Ok(Err(_))`: a call failed.
    async fn hear(
        &self,
        shop: &Shop,
        hook: &OrderHook<'_>,
        active: &Active,
        outcome: &mut LoyaltyOutcome,
    ) -> StoreResult<Result<(), CallFailure>> {
        let OrderHook { order, customer_id, change, call } = *hook;
        let trigger = Trigger::Order { order_id: &order.id };
        let plugin = &active.install.name;
        if !self.db().hook_ran(shop.id, &order.id, change, plugin).await? {
            let member = self.member(shop, customer_id).await?;
            let wit_order = convert::order(order, customer_id);
            let list = match self.call(active, move |p, ctx| call(p, ctx, &wit_order, &member)).await {
                Ok(list) => list,
                Err(failure) => return Ok(Err(failure)),
            };
            let mut w = self.db().write().await?;
            if order_hooks::record_run(&mut w.tx, shop.id, &order.id, change, plugin).await? {
                outcome.applied.push(self.apply_recording(w, shop, customer_id, active, trigger, &list).await?);
            } else {
                w.rollback().await?; // A concurrent run of the same change got there first.
            }
        }
        let member = self.member(shop, customer_id).await?;
        let tier = match self.call(active, move |p, ctx| p.tier_for(ctx, &member)).await {
            Ok(info) => info.tier,
            Err(failure) => return Ok(Err(failure)),
        };
        let w = self.db().write().await?;
        outcome
            .applied
            .push(self.apply_recording(w, shop, customer_id, active, trigger, &[Action::SetTier(tier)]).await?);
        Ok(Ok(()))
    }

    /// Asks every enabled loyalty plugin which tier the customer holds now and sets it
    /// (after a merge joined two ledgers and two purchase histories). A failed call is
    /// logged and leaves the tier as it was.
    pub async fn retier(&self, shop: &Shop, customer_id: i64) -> StoreResult<Option<String>> {
        let mut tier = None;
        for active in self.active(shop.id, World::Loyalty).await? {
            let member = self.member(shop, customer_id).await?;
            match self.call(&active, move |p, ctx| p.tier_for(ctx, &member)).await {
                Ok(info) => {
                    let w = self.db().write().await?;
                    let set = [Action::SetTier(info.tier.clone())];
                    self.apply_recording(w, shop, customer_id, &active, Trigger::Host, &set).await?;
                    tier = Some(info.tier);
                }
                Err(failure) => tracing::warn!(plugin = %active.plugin.label(), %failure, "tier-for failed"),
            }
        }
        Ok(tier)
    }

    async fn run_loyalty(&self, shop: &Shop, hook: &OrderHook<'_>, outcome: &mut LoyaltyOutcome) -> StoreResult<()> {
        let mut failed = Vec::new();
        for active in self.active(shop.id, World::Loyalty).await? {
            if let Err(failure) = self.hear(shop, hook, &active, outcome).await? {
                outcome.failures.push(format!("{}: {failure}", active.plugin.label()));
                failed.push(active.install.name);
            }
        }
        // A plugin its breaker disabled has not heard of the order, unlike one the
        // merchant disabled: the job waits for it to be enabled again, a few times.
        for name in self.db().tripped_plugins(shop.id, World::Loyalty.name()).await? {
            if !failed.contains(&name) && !self.db().hook_ran(shop.id, &hook.order.id, hook.change, &name).await? {
                outcome.failures.push(format!("{name}: disabled by its circuit breaker"));
            }
        }
        Ok(())
    }

    /// An order became a purchase: its coupons are redeemed and loyalty plugins award
    /// points (once per order, however often it is posted or its job run).
    pub async fn order_placed(&self, shop: &Shop, order: &Order) -> StoreResult<LoyaltyOutcome> {
        let mut outcome = LoyaltyOutcome::default();
        let Some(customer_id) = order.customer_id else { return Ok(outcome) };
        {
            let mut w = self.db().write().await?;
            outcome.coupon_refusals = coupons::redeem_for_order(&mut w.tx, shop.id, order).await?;
            w.commit().await?;
        }
        let hook =
            OrderHook { order, customer_id, change: &OrderChange::Placed, call: |p, ctx, o, m| p.on_order(ctx, o, m) };
        self.run_loyalty(shop, &hook, &mut outcome).await?;
        Ok(outcome)
    }

    /// An order was refunded (in part or whole) or cancelled: the points it earned are
    /// reversed in proportion, by the host, whatever the plugins do; then loyalty plugins
    /// hear of it and tiers are re-evaluated.
    pub async fn order_reversed(
        &self,
        shop: &Shop,
        order: &Order,
        change: &OrderChange,
    ) -> StoreResult<LoyaltyOutcome> {
        let mut outcome = LoyaltyOutcome::default();
        let Some(customer_id) = order.customer_id else { return Ok(outcome) };
        let fraction = if order.status.is_purchase() { (order.refunded, order.total) } else { (1, 1) };
        {
            let mut w = self.db().write().await?;
            outcome.points_reversed =
                points::reverse_for_order(&mut w.tx, shop.id, customer_id, &order.id, fraction, "host").await?;
            w.commit().await?;
        }
        let hook = OrderHook { order, customer_id, change, call: |p, ctx, o, m| p.on_refund(ctx, o, m) };
        self.run_loyalty(shop, &hook, &mut outcome).await?;
        Ok(outcome)
    }

    async fn hear_change(&self, shop: &Shop, order: &Order, change: &OrderChange) -> StoreResult<LoyaltyOutcome> {
        match change {
            OrderChange::Placed => self.order_placed(shop, order).await,
            reversal => self.order_reversed(shop, order, reversal).await,
        }
    }

    /// The loyalty plugins hear of an order change the caller has just stored; then the
    /// job queued with it is settled: done, or failed, for the scheduler to run again.
    pub async fn order_changed(&self, shop: &Shop, order: &Order, work: &LoyaltyWork) -> StoreResult<LoyaltyOutcome> {
        let outcome = self.hear_change(shop, order, &work.change).await;
        if let Some(inline) = &work.job {
            let failure = outcome.as_ref().map_or_else(|error| Some(error.to_string()), LoyaltyOutcome::failure);
            let settled = match failure {
                None => self.db().complete_job(&inline.job, &inline.owner).await,
                Some(error) => self.db().fail_job(&inline.job, &inline.owner, &error).await,
            };
            if let Err(error) = settled {
                tracing::error!(%error, "could not settle an order's loyalty job; the scheduler will run it");
            }
        }
        outcome
    }

    /// Runs a queued order change job (see `store::order_hooks`) on the order as it is
    /// now; fails while a loyalty plugin has not heard of the change.
    pub async fn run_loyalty_job(&self, shop: &Shop, payload: &serde_json::Value) -> StoreResult<()> {
        let job: LoyaltyJob = serde_json::from_value(payload.clone())
            .map_err(|e| StoreError::Corrupt(format!("loyalty job payload {payload}: {e}")))?;
        let Some(order) = self.db().order(shop.id, &job.order_id).await? else { return Ok(()) };
        // A placement undone since (its reversal found nothing to reverse) earns nothing.
        if job.change == OrderChange::Placed && !order.status.is_purchase() {
            return Ok(());
        }
        match self.hear_change(shop, &order, &job.change).await?.failure() {
            None => Ok(()),
            Some(error) => Err(StoreError::Plugin(error)),
        }
    }
}
