//! The loyalty page: [`crate::analytics::loyalty`] for a chosen period beside the period
//! before — members per tier and the moves between tiers, points earned, redeemed and
//! expired over time, rewards redeemed, and coupons issued and used.

use axum::Router;
use axum::extract::{Query, State};
use axum::response::Response;
use axum::routing::get;
use serde::Serialize;
use serde_json::json;

use super::auth::Signed;
use super::overview::{Card, PeriodChoice, PeriodQuery, amount_card, choose_period, definition};
use super::views::{ConsoleResult, num, page, pct};
use crate::analytics::Rate;
use crate::analytics::loyalty::{CouponCount, LoyaltyFigures, PointsFlow, RewardCount, TierMovement};
use crate::api::state::AppState;

pub(super) fn router() -> Router<AppState> {
    Router::new().route("/admin/loyalty", get(loyalty))
}

/// A count's card, beside the previous period's.
fn card(key: &'static str, defined_as: &'static str, current: i64, previous: i64) -> Card {
    amount_card(key, defined_as, Some(current), Some(previous), num)
}

#[derive(Serialize)]
struct MovementRow {
    from: Option<String>,
    to: String,
    members: i64,
    previous: i64,
}

#[derive(Serialize)]
struct RewardRow {
    reward: String,
    redemptions: i64,
    previous: i64,
}

#[derive(Serialize)]
struct CouponRow {
    source: String,
    issued: i64,
    redeemed: i64,
    /// Redemptions / coupons issued in the period.
    use_rate: String,
    previous_issued: i64,
    previous_redeemed: i64,
}

#[derive(Serialize)]
struct LoyaltyPage {
    choice: PeriodChoice,
    period: crate::analytics::PeriodView,
    previous_period: crate::analytics::PeriodView,
    members: i64,
    cards: Vec<Card>,
    tiers: Vec<crate::analytics::loyalty::TierCount>,
    movements: Vec<MovementRow>,
    rewards: Vec<RewardRow>,
    coupons: Vec<CouponRow>,
    points_chart: String,
    tiers_chart: String,
    definitions: Vec<(&'static str, &'static str)>,
}

fn movements(current: &[TierMovement], previous: &[TierMovement]) -> Vec<MovementRow> {
    let mut rows: Vec<MovementRow> = current
        .iter()
        .map(|m| MovementRow { from: m.from.clone(), to: m.to.clone(), members: m.members, previous: 0 })
        .collect();
    for before in previous {
        match rows.iter_mut().find(|r| r.from == before.from && r.to == before.to) {
            Some(row) => row.previous = before.members,
            None => rows.push(MovementRow {
                from: before.from.clone(),
                to: before.to.clone(),
                members: 0,
                previous: before.members,
            }),
        }
    }
    rows
}

fn rewards(current: &[RewardCount], previous: &[RewardCount]) -> Vec<RewardRow> {
    let mut rows: Vec<RewardRow> = current
        .iter()
        .map(|r| RewardRow { reward: r.reward.clone(), redemptions: r.redemptions, previous: 0 })
        .collect();
    for before in previous {
        match rows.iter_mut().find(|r| r.reward == before.reward) {
            Some(row) => row.previous = before.redemptions,
            None => {
                rows.push(RewardRow { reward: before.reward.clone(), redemptions: 0, previous: before.redemptions })
            }
        }
    }
    rows
}

fn coupons(current: &[CouponCount], previous: &[CouponCount]) -> Vec<CouponRow> {
    let mut sources: Vec<&str> = current.iter().chain(previous).map(|c| c.source.as_str()).collect();
    sources.sort_unstable();
    sources.dedup();
    sources
        .into_iter()
        .map(|source| {
            let now = current.iter().find(|c| c.source == source);
            let before = previous.iter().find(|c| c.source == source);
            let (issued, redeemed) = now.map_or((0, 0), |c| (c.issued, c.redeemed));
            CouponRow {
                source: source.to_owned(),
                issued,
                redeemed,
                use_rate: pct(Rate::new(redeemed, issued).rate),
                previous_issued: before.map_or(0, |c| c.issued),
                previous_redeemed: before.map_or(0, |c| c.redeemed),
            }
        })
        .collect()
}

/// ECharts options: the ledger's flow per bucket, and members per tier.
fn charts(figures: &LoyaltyFigures, t: &std::collections::BTreeMap<&'static str, &'static str>) -> (String, String) {
    let word = |key: &str| t.get(key).copied().unwrap_or_default();
    let labels: Vec<&str> = figures.points.trend.iter().map(|p| p.at.get(..10).unwrap_or(&p.at)).collect();
    let series = |key: &str, pick: fn(&PointsFlow) -> i64| {
        json!({
            "name": word(key), "type": "bar", "stack": (if key == "points_earned" { "in" } else { "out" }),
            "barMaxWidth": 18, "data": figures.points.trend.iter().map(|p| pick(&p.flow)).collect::<Vec<_>>(),
        })
    };
    let points = json!({
        "animation": false,
        "color": ["#4f46e5", "#10b981", "#f59e0b"],
        "tooltip": {"trigger": "axis"},
        "legend": {"top": 0, "right": 0},
        "grid": {"left": 56, "right": 16, "top": 36, "bottom": 28},
        "xAxis": {"type": "category", "data": labels},
        "yAxis": {"type": "value", "splitLine": {"lineStyle": {"color": "#eef0f4"}}},
        "series": [
            series("points_earned", |f| f.earned),
            series("points_redeemed", |f| f.redeemed),
            series("points_expired", |f| f.expired),
        ],
    });
    let tiers = json!({
        "animation": false,
        "color": ["#4f46e5", "#818cf8", "#f59e0b", "#10b981", "#ec4899", "#0ea5e9", "#64748b"],
        "tooltip": {"trigger": "item"},
        "legend": {"bottom": 0},
        "series": [{
            "type": "pie", "radius": ["45%", "72%"], "center": ["50%", "45%"],
            "label": {"position": "inside", "formatter": "{c}", "color": "#fff", "fontWeight": 600},
            "data": figures.tiers.iter().map(|t| json!({"name": t.tier, "value": t.members})).collect::<Vec<_>>(),
        }],
    });
    (points.to_string(), tiers.to_string())
}

async fn loyalty(
    State(state): State<AppState>,
    signed: Signed,
    Query(query): Query<PeriodQuery>,
) -> ConsoleResult<Response> {
    let (period, choice) = choose_period(&query, "/admin/loyalty");
    let figures = state.db.analytics_loyalty(signed.shop.id, period).await?;
    let (points_chart, tiers_chart) = charts(&figures, signed.locale.strings());
    let (c, p) = (&figures.points.current, &figures.points.previous);
    let sum_rewards = |counts: &[RewardCount]| counts.iter().map(|r| r.redemptions).sum::<i64>();
    let sum_coupons = |counts: &[CouponCount], pick: fn(&CouponCount) -> i64| counts.iter().map(pick).sum::<i64>();
    let cards = vec![
        card("points_earned", "points_flow", c.earned, p.earned),
        card("points_redeemed", "points_flow", c.redeemed, p.redeemed),
        card("points_expired", "points_flow", c.expired, p.expired),
        card(
            "rewards_redeemed",
            "rewards",
            sum_rewards(&figures.rewards.current),
            sum_rewards(&figures.rewards.previous),
        ),
        card(
            "coupons_issued",
            "coupons",
            sum_coupons(&figures.coupons.current, |c| c.issued),
            sum_coupons(&figures.coupons.previous, |c| c.issued),
        ),
        card(
            "coupons_redeemed",
            "coupons",
            sum_coupons(&figures.coupons.current, |c| c.redeemed),
            sum_coupons(&figures.coupons.previous, |c| c.redeemed),
        ),
    ];
    let view = LoyaltyPage {
        choice,
        period: figures.period.clone(),
        previous_period: figures.previous_period.clone(),
        members: figures.tiers.iter().map(|t| t.members).sum(),
        cards,
        tiers: figures.tiers.clone(),
        movements: movements(&figures.tier_movements.current, &figures.tier_movements.previous),
        rewards: rewards(&figures.rewards.current, &figures.rewards.previous),
        coupons: coupons(&figures.coupons.current, &figures.coupons.previous),
        points_chart,
        tiers_chart,
        definitions: ["tiers", "tier_movements", "points_flow", "rewards", "coupons"]
            .into_iter()
            .map(|name| (name, definition(name)))
            .collect(),
    };
    Ok(page(&signed, "loyalty.html", "loyalty", "/admin/loyalty", view))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_pair_the_period_with_the_one_before() {
        let m =
            |from: Option<&str>, to: &str, members| TierMovement { from: from.map(Into::into), to: to.into(), members };
        let rows = movements(&[m(Some("silver"), "gold", 3)], &[m(Some("silver"), "gold", 1), m(None, "silver", 2)]);
        assert_eq!(rows.len(), 2);
        assert_eq!((rows[0].members, rows[0].previous), (3, 1));
        assert_eq!((rows[1].from.as_deref(), rows[1].members, rows[1].previous), (None, 0, 2));
        let c = |source: &str, issued, redeemed| CouponCount { source: source.into(), issued, redeemed };
        let rows = coupons(&[c("loyalty", 4, 1)], &[c("manual", 2, 2)]);
        assert_eq!(rows.iter().map(|r| r.source.as_str()).collect::<Vec<_>>(), ["loyalty", "manual"]);
        assert_eq!(rows[0].use_rate, "25.0%");
        assert_eq!((rows[1].issued, rows[1].previous_redeemed), (0, 2));
    }
}
