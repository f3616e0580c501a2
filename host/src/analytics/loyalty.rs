//! Loyalty figures: members per tier and the moves between tiers, the points ledger's
//! flow per bucket, rewards redeemed, and coupons issued and redeemed, for a period and
//! the one before.

use std::collections::BTreeMap;

use serde::Serialize;

use super::{Period, PeriodView};
use crate::store::points::EntryKind;
use crate::store::{Db, StoreResult};
use crate::timestamp::to_rfc3339;

#[derive(Debug, Clone, Serialize, PartialEq, utoipa::ToSchema)]
pub struct LoyaltyFigures {
    pub period: PeriodView,
    pub previous_period: PeriodView,
    pub tiers: Vec<TierCount>,
    /// Moves between tiers in the period (from `tier_changes`).
    pub tier_movements: TierMovements,
    pub points: PointsFigures,
    pub rewards: RewardFigures,
    pub coupons: CouponFigures,
}

/// Members who moved from one tier to another in a period; `from` is null for a
/// member's first tier.
#[derive(Debug, Clone, Serialize, PartialEq, Eq, utoipa::ToSchema)]
pub struct TierMovement {
    pub from: Option<String>,
    pub to: String,
    pub members: i64,
}

#[derive(Debug, Clone, Serialize, PartialEq, Eq, utoipa::ToSchema)]
pub struct TierMovements {
    pub current: Vec<TierMovement>,
    pub previous: Vec<TierMovement>,
}

/// Rewards redeemed in a period, by reward id.
#[derive(Debug, Clone, Serialize, PartialEq, Eq, utoipa::ToSchema)]
pub struct RewardCount {
    pub reward: String,
    pub redemptions: i64,
}

#[derive(Debug, Clone, Serialize, PartialEq, Eq, utoipa::ToSchema)]
pub struct RewardFigures {
    pub current: Vec<RewardCount>,
    pub previous: Vec<RewardCount>,
}

#[derive(Debug, Clone, Serialize, PartialEq, Eq, utoipa::ToSchema)]
pub struct TierCount {
    pub tier: String,
    pub members: i64,
}

/// Points moved by the ledger; all positive except `adjusted`, which is signed.
#[derive(Debug, Clone, Copy, Default, Serialize, PartialEq, Eq, utoipa::ToSchema)]
pub struct PointsFlow {
    pub earned: i64,
    pub redeemed: i64,
    pub expired: i64,
    pub reversed: i64,
    pub adjusted: i64,
}

impl PointsFlow {
    /// Adds a ledger sum of `kind`; spending kinds are stored negative and shown positive.
    fn add(&mut self, kind: &str, delta: i64) {
        let (slot, shown) = match kind {
            k if k == EntryKind::Earn.as_str() => (&mut self.earned, delta),
            k if k == EntryKind::Redeem.as_str() => (&mut self.redeemed, -delta),
            k if k == EntryKind::Expire.as_str() => (&mut self.expired, -delta),
            k if k == EntryKind::Reverse.as_str() => (&mut self.reversed, -delta),
            _ => (&mut self.adjusted, delta),
        };
        *slot = slot.saturating_add(shown);
    }

    fn plus(self, other: &Self) -> Self {
        Self {
            earned: self.earned.saturating_add(other.earned),
            redeemed: self.redeemed.saturating_add(other.redeemed),
            expired: self.expired.saturating_add(other.expired),
            reversed: self.reversed.saturating_add(other.reversed),
            adjusted: self.adjusted.saturating_add(other.adjusted),
        }
    }
}

#[derive(Debug, Clone, Serialize, PartialEq, Eq, utoipa::ToSchema)]
pub struct FlowPoint {
    pub at: String,
    #[serde(flatten)]
    pub flow: PointsFlow,
}

#[derive(Debug, Clone, Serialize, PartialEq, Eq, utoipa::ToSchema)]
pub struct PointsFigures {
    pub current: PointsFlow,
    pub previous: PointsFlow,
    pub trend: Vec<FlowPoint>,
}

#[derive(Debug, Clone, Serialize, PartialEq, Eq, utoipa::ToSchema)]
pub struct CouponCount {
    pub source: String,
    pub issued: i64,
    pub redeemed: i64,
}

#[derive(Debug, Clone, Serialize, PartialEq, Eq, utoipa::ToSchema)]
pub struct CouponFigures {
    pub current: Vec<CouponCount>,
    pub previous: Vec<CouponCount>,
}

impl Db {
    pub async fn analytics_loyalty(&self, shop_id: i64, period: Period) -> StoreResult<LoyaltyFigures> {
        let previous = period.previous();
        let (tiers, trend, previous_trend, coupons, previous_coupons) = tokio::try_join!(
            self.tier_counts(shop_id),
            self.points_flow(shop_id, period),
            self.points_flow(shop_id, previous),
            self.coupon_counts(shop_id, period),
            self.coupon_counts(shop_id, previous),
        )?;
        let (moves, previous_moves, rewards, previous_rewards) = tokio::try_join!(
            self.tier_movements(shop_id, period),
            self.tier_movements(shop_id, previous),
            self.reward_counts(shop_id, period),
            self.reward_counts(shop_id, previous),
        )?;
        let total =
            |points: &[FlowPoint]| points.iter().fold(PointsFlow::default(), |sum, point| sum.plus(&point.flow));
        Ok(LoyaltyFigures {
            period: PeriodView::from(&period),
            previous_period: PeriodView::from(&previous),
            tiers: tiers.into_iter().map(|(tier, members)| TierCount { tier, members }).collect(),
            tier_movements: TierMovements { current: moves, previous: previous_moves },
            points: PointsFigures { current: total(&trend), previous: total(&previous_trend), trend },
            rewards: RewardFigures { current: rewards, previous: previous_rewards },
            coupons: CouponFigures { current: coupons, previous: previous_coupons },
        })
    }

    /// The ledger's flow per bucket of `period`, every bucket present.
    async fn points_flow(&self, shop_id: i64, period: Period) -> StoreResult<Vec<FlowPoint>> {
        let index = period.bucket.index_sql(self.backend(), "created_at");
        let rows: Vec<(i64, String, i64)> = sqlx::query_as(&format!(
            "SELECT {index}, kind, CAST(SUM(delta) AS BIGINT) FROM points_ledger \
             WHERE shop_id = $1 AND created_at >= $2 AND created_at < $3 GROUP BY {index}, kind"
        ))
        .bind(shop_id)
        .bind(period.since)
        .bind(period.until)
        .fetch_all(self.pool())
        .await?;
        let mut flows: BTreeMap<i64, PointsFlow> =
            period.bucket.indexes(period.since, period.until).map(|b| (b, PointsFlow::default())).collect();
        for (bucket, kind, delta) in rows {
            flows.entry(bucket).or_default().add(&kind, delta);
        }
        Ok(flows
            .into_iter()
            .map(|(bucket, flow)| FlowPoint { at: to_rfc3339(period.bucket.start_ms(bucket)), flow })
            .collect())
    }

    /// Members' moves between tiers in `period`, the most frequent first.
    async fn tier_movements(&self, shop_id: i64, period: Period) -> StoreResult<Vec<TierMovement>> {
        let rows: Vec<(Option<String>, String, i64)> = sqlx::query_as(
            "SELECT from_tier, to_tier, COUNT(*) FROM tier_changes WHERE shop_id = $1 AND at >= $2 AND at < $3 \
             GROUP BY from_tier, to_tier",
        )
        .bind(shop_id)
        .bind(period.since)
        .bind(period.until)
        .fetch_all(self.pool())
        .await?;
        let mut moves: Vec<TierMovement> =
            rows.into_iter().map(|(from, to, members)| TierMovement { from, to, members }).collect();
        moves.sort_by(|a, b| b.members.cmp(&a.members).then_with(|| (&a.from, &a.to).cmp(&(&b.from, &b.to))));
        Ok(moves)
    }

    /// Rewards redeemed in `period` by reward, the most redeemed first.
    async fn reward_counts(&self, shop_id: i64, period: Period) -> StoreResult<Vec<RewardCount>> {
        let rows: Vec<(String, i64)> = sqlx::query_as(
            "SELECT reward_id, COUNT(*) FROM reward_redemptions WHERE shop_id = $1 AND created_at >= $2 \
             AND created_at < $3 GROUP BY reward_id",
        )
        .bind(shop_id)
        .bind(period.since)
        .bind(period.until)
        .fetch_all(self.pool())
        .await?;
        let mut counts: Vec<RewardCount> =
            rows.into_iter().map(|(reward, redemptions)| RewardCount { reward, redemptions }).collect();
        counts.sort_by(|a, b| b.redemptions.cmp(&a.redemptions).then_with(|| a.reward.cmp(&b.reward)));
        Ok(counts)
    }

    /// Coupons issued and redeemed in `period` by the coupon's source.
    async fn coupon_counts(&self, shop_id: i64, period: Period) -> StoreResult<Vec<CouponCount>> {
        let issued: Vec<(String, i64)> = sqlx::query_as(
            "SELECT source, COUNT(*) FROM coupons WHERE shop_id = $1 AND created_at >= $2 AND created_at < $3 \
             GROUP BY source",
        )
        .bind(shop_id)
        .bind(period.since)
        .bind(period.until)
        .fetch_all(self.pool())
        .await?;
        let redeemed: Vec<(Option<String>, i64)> = sqlx::query_as(
            "SELECT c.source, COUNT(*) FROM coupon_redemptions r \
             LEFT JOIN coupons c ON c.shop_id = r.shop_id AND c.code = r.code \
             WHERE r.shop_id = $1 AND r.redeemed_at >= $2 AND r.redeemed_at < $3 GROUP BY c.source",
        )
        .bind(shop_id)
        .bind(period.since)
        .bind(period.until)
        .fetch_all(self.pool())
        .await?;
        let mut counts: BTreeMap<String, CouponCount> = BTreeMap::new();
        for (source, n) in issued {
            count_for(&mut counts, source).issued = n;
        }
        for (source, n) in redeemed {
            count_for(&mut counts, source.unwrap_or_else(|| "unknown".to_owned())).redeemed = n;
        }
        Ok(counts.into_values().collect())
    }
}

fn count_for(counts: &mut BTreeMap<String, CouponCount>, source: String) -> &mut CouponCount {
    counts.entry(source.clone()).or_insert(CouponCount { source, issued: 0, redeemed: 0 })
}
