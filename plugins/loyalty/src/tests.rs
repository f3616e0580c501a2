//! The loyalty plugin through its entry points, as the host calls it.

use patron_sdk::testing::TestHost;
use patron_sdk::time::DAY_MS;
use patron_sdk::{Action, CouponSpec, Discount, Loyalty, Member, Money, Order, OrderStatus};

use super::*;

const NOW: i64 = 1_700_000_000_000;

fn order(total: i64) -> Order {
    Order {
        id: "o1".into(),
        external_id: "1042".into(),
        customer_id: "7".into(),
        status: OrderStatus::Paid,
        total: Money::new(total, "EUR"),
        placed_at: NOW,
        ..Order::default()
    }
}

fn member(tier: Option<&str>, rolling: i64) -> Member {
    Member {
        customer_id: "7".into(),
        tier: tier.map(str::to_owned),
        points_balance: 0,
        rolling_spend: Money::new(rolling, "EUR"),
    }
}

fn on_order(config: &str, order: Order, member: Member) -> Vec<Action> {
    let mut host = TestHost::new().at(NOW).config(config);
    host.run(|| LoyaltyProgram::on_order(order, member)).expect("on_order succeeds")
}

fn award(amount: i64) -> Action {
    Action::AwardPoints { amount, reason: "order #1042".into() }
}

#[test]
fn defaults_earn_one_point_per_unit_and_welcome_new_members() {
    assert_eq!(on_order("{}", order(4_250), member(None, 4_250)), vec![award(42), Action::SetTier("silver".into())]);
    assert_eq!(on_order("{}", order(4_250), member(Some("silver"), 20_000)), vec![award(42)]);
}

#[test]
fn an_order_that_crosses_a_threshold_promotes_with_a_coupon() {
    // Held silver, this order takes the rolling spend to 520.00: gold. Points
    // are earned at the tier held when ordering.
    let actions = on_order("{}", order(30_000), member(Some("silver"), 52_000));
    assert_eq!(
        actions,
        vec![
            award(300),
            Action::SetTier("gold".into()),
            Action::IssueCoupon(CouponSpec {
                discount: Discount::Percent(5),
                minimum_spend: None,
                expires_at: Some(NOW + 30 * DAY_MS),
            }),
        ]
    );
    // Gold members earn 1.25 points per unit.
    assert_eq!(on_order("{}", order(10_000), member(Some("gold"), 90_000)), vec![award(125)]);
}

#[test]
fn configured_programme() {
    let config = r#"{
        "points-per-unit": 10,
        "tiers": [
            {"name": "member", "threshold": 0},
            {"name": "vip", "threshold": 100000, "points-multiplier": 3, "discount-percent": 20}
        ],
        "tier-coupon": false,
        "points-expiry-days": 365
    }"#;
    assert_eq!(on_order(config, order(1_999), member(Some("member"), 1_999)), vec![award(199)]);
    assert_eq!(
        on_order(config, order(50_000), member(Some("member"), 120_000)),
        vec![award(5_000), Action::SetTier("vip".into())],
        "no coupon when tier coupons are off"
    );
    assert_eq!(on_order(config, order(1_000), member(Some("vip"), 200_000)), vec![award(300)]);
    let mut host = TestHost::new().config(config);
    let info = host.run(|| LoyaltyProgram::tier_for(member(None, 40_000))).expect("tier");
    assert_eq!(info.tier, "member");
    assert_eq!(info.next_tier.as_deref(), Some("vip"));
    assert_eq!(info.spend_to_next, Some(Money::new(60_000, "EUR")));
}

#[test]
fn small_unpaid_and_refunded_orders_earn_nothing() {
    assert_eq!(on_order("{}", order(99), member(Some("silver"), 99)), vec![]);
    let mut cancelled = order(10_000);
    cancelled.status = OrderStatus::Cancelled;
    assert_eq!(on_order("{}", cancelled, member(Some("silver"), 0)), vec![]);
    let mut host = TestHost::new().config("{}");
    let refund = host.run(|| LoyaltyProgram::on_refund(order(10_000), member(Some("gold"), 0)));
    assert_eq!(refund, Ok(vec![]), "the host reverses what the order earned");
}

#[test]
fn rewards_come_from_config() {
    let config = r#"{
        "currency": "USD",
        "rewards": [
            {"id": "ten-pct", "name": "10 % off", "points-cost": 800, "discount": {"percent": 10}, "minimum-spend": 5000},
            {"id": "ship", "name": "Free shipping", "points-cost": 300, "discount": "free-shipping", "valid-days": 7},
            {"id": "twenty", "name": "20.00 off", "points-cost": 1500, "discount": {"fixed": 2000}}
        ]
    }"#;
    let mut host = TestHost::new().at(NOW).config(config);
    let rewards = host.run(LoyaltyProgram::rewards).expect("rewards");
    assert_eq!(rewards.len(), 3);
    assert_eq!(rewards[0].coupon.discount, Discount::Percent(10));
    assert_eq!(rewards[0].coupon.minimum_spend, Some(Money::new(5_000, "USD")));
    assert_eq!(rewards[0].coupon.expires_at, None);
    assert_eq!(rewards[1].coupon.expires_at, Some(NOW + 7 * DAY_MS));
    assert_eq!(rewards[2].coupon.discount, Discount::Fixed(Money::new(2_000, "USD")));
}

#[test]
fn bad_configs_are_refused() {
    for config in [
        r#"{"tiers": []}"#,
        r#"{"tiers": [{"name": "a", "threshold": 0}, {"name": "b", "threshold": 0}]}"#,
        r#"{"tiers": [{"name": "a", "threshold": 0, "discount-percent": 120}]}"#,
        r#"{"rewards": [{"id": "x", "name": "x", "points-cost": 0, "discount": "free-shipping"}]}"#,
        r#"{"rewards": [{"id": "x", "name": "x", "points-cost": 5, "discount": {"percent": 0}}]}"#,
        r#"{"unit": 0}"#,
        r#"{"points-per-euro": 1}"#,
    ] {
        let mut host = TestHost::new().config(config);
        let err = host.run(|| LoyaltyProgram::tier_for(member(None, 0))).err();
        assert_eq!(err.map(|e| e.code).as_deref(), Some("bad-config"), "{config}");
    }
}
