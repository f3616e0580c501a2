//! A member's loyalty status as shoppers and merchants see it — tier and progress,
//! points and what expires soon, coupons, the reward catalogue — and redeeming points
//! for a reward. Policy (tiers, rewards) comes from the shop's loyalty plugin; the
//! ledger and coupons are the host's.

use patron_runtime::World;
use patron_runtime::types::Reward;
use serde::Serialize;

use crate::plugins::{Active, PluginHost, actions};
use crate::store::coupons::{self, Coupon, Discount};
use crate::store::points::{self, Entry, EntryKind, PointsError};
use crate::store::shops::Shop;
use crate::store::{StoreError, StoreResult, now_ms};
use crate::timestamp::to_rfc3339;

/// How far ahead "expiring points" look.
pub const EXPIRY_HORIZON_MS: i64 = 30 * 24 * 60 * 60 * 1000;

#[derive(Debug, Clone, Serialize, PartialEq, utoipa::ToSchema)]
pub struct TierView {
    /// The tier's id, as the loyalty plugin names it (`gold`).
    pub name: String,
    pub next: Option<String>,
    /// The tier's name for the shopper, in the shop's locale (`Gold`, `金卡`).
    pub label: String,
    pub next_label: Option<String>,
    /// 0.0 – 1.0 of the way from this tier's spend to the next tier's.
    pub progress: f64,
    /// Minor units of spend still needed for the next tier.
    pub remaining_to_next: Option<i64>,
}

#[derive(Debug, Clone, Serialize, PartialEq, utoipa::ToSchema)]
pub struct ExpiringPoints {
    pub points: i64,
    pub at: String,
}

#[derive(Debug, Clone, Serialize, PartialEq, utoipa::ToSchema)]
pub struct PointsView {
    pub balance: i64,
    pub expiring: Vec<ExpiringPoints>,
}

#[derive(Debug, Clone, Serialize, PartialEq, utoipa::ToSchema)]
pub struct CouponView {
    pub code: String,
    /// In English; the widget words the coupon itself from the fields below.
    pub description: String,
    pub discount: Discount,
    pub currency: String,
    /// Minor units of `currency`; 0: none.
    pub minimum_spend: i64,
    pub expires_at: Option<String>,
}

#[derive(Debug, Clone, Serialize, PartialEq, utoipa::ToSchema)]
pub struct RewardView {
    pub id: String,
    pub name: String,
    pub points: i64,
}

/// Everything the member panel shows about one customer.
#[derive(Debug, Clone, Serialize, PartialEq, utoipa::ToSchema)]
pub struct MemberView {
    pub customer_id: String,
    pub name: Option<String>,
    pub tier: Option<TierView>,
    pub points: PointsView,
    pub coupons: Vec<CouponView>,
    pub rewards: Vec<RewardView>,
}

/// Why a redemption did not happen.
#[derive(Debug, thiserror::Error)]
pub enum RedeemError {
    #[error("unknown reward `{0}`")]
    UnknownReward(String),
    #[error("this shop has no loyalty program enabled")]
    NoProgram,
    #[error(transparent)]
    Points(#[from] PointsError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl crate::store::Retryable for RedeemError {
    /// A concurrent redemption with the same key won the race; running again finds it.
    fn is_retryable(&self) -> bool {
        matches!(self, Self::Store(error) | Self::Points(PointsError::Store(error)) if error.is_retryable())
    }
}

/// A coupon as the shopper sees it.
pub fn coupon_view(coupon: &Coupon) -> CouponView {
    CouponView {
        code: coupon.code.clone(),
        description: coupon.description.clone(),
        discount: coupon.discount,
        currency: coupon.currency.clone(),
        minimum_spend: coupon.minimum_spend,
        expires_at: coupon.expires_at.map(to_rfc3339),
    }
}

/// A tier's name for shoppers in `locale`: from the `names` of the tier with this id in
/// the loyalty install's `tiers` config or, without one, in its schema's default tiers
/// (exact locale, then its language); else the id itself.
pub fn tier_label(config: &serde_json::Value, schema: Option<&serde_json::Value>, id: &str, locale: &str) -> String {
    let configured = config.get("tiers");
    let tiers = configured.or_else(|| schema?.get("properties")?.get("tiers")?.get("default"));
    let names = tiers
        .and_then(serde_json::Value::as_array)
        .and_then(|tiers| tiers.iter().find(|t| t.get("name").and_then(serde_json::Value::as_str) == Some(id)))
        .and_then(|tier| tier.get("names"))
        .and_then(serde_json::Value::as_object);
    let language = |tag: &str| tag.split(['-', '_']).next().unwrap_or_default().to_owned();
    names
        .and_then(|names| {
            names.get(locale).or_else(|| names.iter().find(|(k, _)| language(k) == language(locale)).map(|(_, v)| v))
        })
        .and_then(serde_json::Value::as_str)
        .map_or_else(|| id.to_owned(), str::to_owned)
}

impl PluginHost {
    async fn loyalty_program(&self, shop: &Shop) -> StoreResult<Option<Active>> {
        Ok(self.active(shop.id, World::Loyalty).await?.into_iter().next())
    }

    async fn rewards(&self, program: &Active) -> Vec<Reward> {
        self.call(program, |plugin, ctx| plugin.rewards(ctx)).await.unwrap_or_default()
    }

    /// The member panel's view of a customer (by internal id).
    pub async fn member_view(&self, shop: &Shop, customer_id: i64) -> StoreResult<MemberView> {
        let db = self.db();
        let customer = db.customer(shop.id, customer_id).await?.ok_or(StoreError::NotFound("customer"))?;
        let member = self.member(shop, customer_id).await?;
        let program = self.loyalty_program(shop).await?;
        let (tier, rewards) = match &program {
            Some(program) => {
                let spend = member.rolling_spend.amount;
                let asked = member.clone();
                let schema = program.plugin.manifest().config_schema.clone();
                let config = &program.install.config;
                let label = |id: &str| tier_label(config, schema.as_ref(), id, &shop.locale);
                let tier = self.call(program, move |plugin, ctx| plugin.tier_for(ctx, &asked)).await.ok().map(|info| {
                    let remaining = info.spend_to_next.map(|m| m.amount.max(0));
                    let progress = match remaining {
                        Some(remaining) if spend + remaining > 0 => spend as f64 / (spend + remaining) as f64,
                        Some(_) => 0.0,
                        None => 1.0,
                    };
                    TierView {
                        label: label(&info.tier),
                        next_label: info.next_tier.as_deref().map(label),
                        name: info.tier,
                        next: info.next_tier,
                        progress,
                        remaining_to_next: remaining,
                    }
                });
                let rewards = self.rewards(program).await;
                (tier, rewards)
            }
            None => (
                member.tier.clone().map(|name| TierView {
                    label: name.clone(),
                    name,
                    next: None,
                    next_label: None,
                    progress: 1.0,
                    remaining_to_next: None,
                }),
                Vec::new(),
            ),
        };
        let now = now_ms();
        let expiring = db.points_expiring_by(shop.id, customer_id, now + EXPIRY_HORIZON_MS).await?;
        let expiring = match db.next_points_expiry(shop.id, customer_id, now).await? {
            Some(at) if expiring > 0 => vec![ExpiringPoints { points: expiring, at: to_rfc3339(at) }],
            _ => Vec::new(),
        };
        let name = [customer.first_name.clone(), customer.last_name.clone()]
            .into_iter()
            .flatten()
            .collect::<Vec<_>>()
            .join(" ");
        Ok(MemberView {
            customer_id: customer.external_id.clone().unwrap_or_else(|| customer.id.to_string()),
            name: (!name.is_empty()).then_some(name),
            tier,
            points: PointsView { balance: member.points_balance, expiring },
            coupons: db.active_coupons(shop.id, customer_id).await?.iter().map(coupon_view).collect(),
            rewards: rewards
                .into_iter()
                .map(|r| RewardView { id: r.id, name: r.name, points: r.points_cost })
                .collect(),
        })
    }

    /// Spends points on a reward from the loyalty plugin's catalogue, issuing its coupon,
    /// in one transaction: concurrent redemptions can never overspend the balance.
    /// Spends points on a reward and issues its coupon. With the client's `idempotency_key`,
    /// asking again (a retry) returns the first coupon and spends nothing more.
    pub async fn redeem(
        &self,
        shop: &Shop,
        customer_id: i64,
        reward_id: &str,
        idempotency_key: Option<&str>,
    ) -> Result<Coupon, RedeemError> {
        let program = self.loyalty_program(shop).await?.ok_or(RedeemError::NoProgram)?;
        let reward = self
            .rewards(&program)
            .await
            .into_iter()
            .find(|r| r.id == reward_id)
            .ok_or_else(|| RedeemError::UnknownReward(reward_id.to_owned()))?;
        if reward.points_cost <= 0 {
            return Err(RedeemError::UnknownReward(reward_id.to_owned()));
        }
        let label = program.plugin.label().to_owned();
        let spec = actions::coupon_spec(&reward.coupon, shop, customer_id, &label)
            .map_err(|reason| StoreError::Conflict(format!("reward `{reward_id}` has an invalid coupon: {reason}")))?;
        let key = idempotency_key.map_or_else(|| uuid::Uuid::new_v4().to_string(), str::to_owned);
        let spend = || self.spend_on_reward(shop, customer_id, &reward, &spec, &label, &key);
        crate::store::retrying(crate::store::WRITE_ATTEMPTS, spend).await
    }

    /// One transaction of [`PluginHost::redeem`]: the points and the coupon, or the coupon
    /// an earlier redemption with `key` gave.
    async fn spend_on_reward(
        &self,
        shop: &Shop,
        customer_id: i64,
        reward: &Reward,
        spec: &coupons::CouponSpec,
        label: &str,
        key: &str,
    ) -> Result<Coupon, RedeemError> {
        let mut w = self.db().write().await?;
        points::lock_balance(&mut w.tx, shop.id, customer_id).await?;
        if let Some(coupon) = coupons::redeemed_with_key(&mut w.tx, shop.id, customer_id, key).await? {
            w.rollback().await?;
            return Ok(coupon);
        }
        let entry = Entry {
            customer_id,
            delta: -reward.points_cost,
            kind: EntryKind::Redeem,
            reason: &reward.name,
            order_id: None,
            source: label,
            idempotency_key: format!("redeem:{customer_id}:{key}"),
            expires_at: None,
        };
        if let Err(refused) = points::append(&mut w.tx, shop.id, &entry).await {
            w.rollback().await?;
            return Err(refused.into());
        }
        let coupon = coupons::issue(&mut w.tx, shop.id, spec).await?;
        coupons::record_redemption(&mut w.tx, shop.id, customer_id, key, &reward.id, &coupon.code).await?;
        w.commit().await?;
        Ok(coupon)
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::tier_label;

    #[test]
    fn tier_labels_come_from_the_config_then_the_schema_default() {
        let schema = json!({"properties": {"tiers": {"default": [
            {"name": "gold", "threshold": 1, "names": {"en": "Gold", "zh-CN": "金卡"}}
        ]}}});
        assert_eq!(tier_label(&json!({}), Some(&schema), "gold", "zh-CN"), "金卡");
        assert_eq!(tier_label(&json!({}), Some(&schema), "gold", "zh"), "金卡", "by language");
        assert_eq!(tier_label(&json!({}), Some(&schema), "gold", "en-US"), "Gold");
        assert_eq!(tier_label(&json!({}), Some(&schema), "gold", "fr"), "gold", "no name: the id");
        let config = json!({"tiers": [{"name": "gold", "threshold": 1, "names": {"zh-CN": "黄金会员"}}]});
        assert_eq!(tier_label(&config, Some(&schema), "gold", "zh-CN"), "黄金会员", "the merchant's names win");
        assert_eq!(tier_label(&config, Some(&schema), "gold", "en"), "gold");
        assert_eq!(tier_label(&json!({}), None, "vip", "en"), "vip");
    }
}
