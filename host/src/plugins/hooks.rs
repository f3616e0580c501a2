//! Where plugins hear about what happened: an order was placed or reversed, a customer
//! changed. A plugin failure here never fails the store's request — the order is stored
//! either way; the failure is recorded against the plugin.

use patron_runtime::types::{Action, Member, Order as WitOrder};
use patron_runtime::{World, types::TierInfo};

use super::actions::{self, Actor, Applied, Trigger};
use super::{Active, PluginHost, convert};
use crate::store::coupons;
use crate::store::orders::Order;
use crate::store::shops::Shop;
use crate::store::{StoreResult, now_ms, points};

/// What the loyalty plugins did about one order.
#[derive(Debug, Clone, Default, serde::Serialize, PartialEq)]
pub struct LoyaltyOutcome {
    pub applied: Vec<Applied>,
    pub points_reversed: i64,
    pub coupon_refusals: Vec<coupons::CouponRefusal>,
}

/// `on-order` or `on-refund` of a loyalty plugin.
type LoyaltyHook = fn(
    &patron_runtime::Plugin,
    &patron_runtime::CallContext,
    &WitOrder,
    &Member,
) -> Result<Vec<Action>, patron_runtime::PluginError>;

fn actor(active: &Active) -> Actor<'_> {
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

    async fn apply_recording(
        &self,
        shop: &Shop,
        customer_id: i64,
        active: &Active,
        trigger: Trigger<'_>,
        list: &[Action],
    ) -> StoreResult<Applied> {
        let applied = actions::apply(self.db(), shop, customer_id, &actor(active), trigger, list).await?;
        if let Some(reason) = applied.refused.first() {
            let message = format!("{} refused action(s): {reason}", applied.refused.len());
            self.db().record_plugin_failures(shop.id, &active.install.name, 0, Some(&message), false).await?;
        }
        Ok(applied)
    }

    /// Brings the member's tier in line with what the plugin says it should be.
    async fn refresh_tier(
        &self,
        shop: &Shop,
        customer_id: i64,
        active: &Active,
        trigger: Trigger<'_>,
    ) -> StoreResult<Option<Applied>> {
        let member = self.member(shop, customer_id).await?;
        let info: Result<TierInfo, _> = self.call(active, move |plugin, ctx| plugin.tier_for(ctx, &member)).await;
        match info {
            Ok(info) => {
                Ok(Some(self.apply_recording(shop, customer_id, active, trigger, &[Action::SetTier(info.tier)]).await?))
            }
            Err(_) => Ok(None),
        }
    }

    async fn run_loyalty(
        &self,
        shop: &Shop,
        order: &Order,
        customer_id: i64,
        call: LoyaltyHook,
        outcome: &mut LoyaltyOutcome,
    ) -> StoreResult<()> {
        let trigger = Trigger::Order { order_id: &order.id };
        for active in self.active(shop.id, World::Loyalty).await? {
            let member = self.member(shop, customer_id).await?;
            let wit_order = convert::order(order, customer_id);
            if let Ok(list) = self.call(&active, move |plugin, ctx| call(plugin, ctx, &wit_order, &member)).await {
                outcome.applied.push(self.apply_recording(shop, customer_id, &active, trigger, &list).await?);
            }
            if let Some(applied) = self.refresh_tier(shop, customer_id, &active, trigger).await? {
                outcome.applied.push(applied);
            }
        }
        Ok(())
    }

    /// An order became a purchase: its coupons are redeemed and loyalty plugins award
    /// points (once per order, however often it is posted).
    pub async fn order_placed(&self, shop: &Shop, order: &Order) -> StoreResult<LoyaltyOutcome> {
        let mut outcome = LoyaltyOutcome::default();
        let Some(customer_id) = order.customer_id else { return Ok(outcome) };
        {
            let mut w = self.db().write().await?;
            outcome.coupon_refusals = coupons::redeem_for_order(&mut w.tx, shop.id, order).await?;
            w.commit().await?;
        }
        self.run_loyalty(shop, order, customer_id, |p, ctx, o, m| p.on_order(ctx, o, m), &mut outcome).await?;
        Ok(outcome)
    }

    /// An order was refunded (in part or whole) or cancelled: the points it earned are
    /// reversed in proportion, by the host, whatever the plugins do; then loyalty plugins
    /// hear of it and tiers are re-evaluated.
    pub async fn order_reversed(&self, shop: &Shop, order: &Order) -> StoreResult<LoyaltyOutcome> {
        let mut outcome = LoyaltyOutcome::default();
        let Some(customer_id) = order.customer_id else { return Ok(outcome) };
        let fraction = if order.status.is_purchase() { (order.refunded, order.total) } else { (1, 1) };
        {
            let mut w = self.db().write().await?;
            outcome.points_reversed =
                points::reverse_for_order(&mut w.tx, shop.id, customer_id, &order.id, fraction, "host").await?;
            w.commit().await?;
        }
        self.run_loyalty(shop, order, customer_id, |p, ctx, o, m| p.on_refund(ctx, o, m), &mut outcome).await?;
        Ok(outcome)
    }
}
