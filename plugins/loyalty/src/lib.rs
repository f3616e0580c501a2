//! Loyalty plugin: points per order (tier and birthday multipliers), tiers on
//! rolling 12-month spend with benefits, and a reward catalogue, all from the
//! install's config (see README.md and [`program::Program`]).

pub mod program;

use patron_sdk::{Action, Error, Loyalty, Member, Order, OrderStatus, Result, Reward, TierInfo, now};

use crate::program::Program;

/// The install's programme, checked.
fn program() -> Result<Program> {
    let program: Program = patron_sdk::read_config()?;
    match program.problem() {
        Some(problem) => Err(Error::new("bad-config", problem)),
        None => Ok(program),
    }
}

/// The actions for a paid order under `program`, at `now`.
///
/// `member` is the member as the host shows them when the order is recorded:
/// `rolling-spend` includes this order, `tier` is the tier held before it.
/// Points are earned at the held tier's multiplier (the computed tier for a
/// customer who holds none yet). The birthday multiplier needs the
/// customer's birthday, which contract 0.1.0 does not hand to `on-order`, so
/// it is not applied here (see README).
pub fn order_actions(program: &Program, order: &Order, member: &Member, now: i64) -> Vec<Action> {
    if order.status != OrderStatus::Paid {
        return Vec::new();
    }
    let mut actions = Vec::new();
    let earning_tier = member.tier.clone().unwrap_or_else(|| program.tier_info(&member.rolling_spend).tier);
    let points = program.points_for(order.total.amount, Some(&earning_tier), false);
    if points > 0 {
        actions.push(Action::AwardPoints { amount: points, reason: format!("order #{}", order.external_id) });
    }
    if let Some(tier) = program.promotion(member.tier.as_deref(), member.rolling_spend.amount) {
        actions.push(Action::SetTier(tier.name.clone()));
        // A first tier is a welcome, not a promotion: no coupon for joining.
        if member.tier.is_some()
            && let Some(coupon) = program.tier_coupon(tier, now)
        {
            actions.push(Action::IssueCoupon(coupon));
        }
    }
    actions
}

/// The plugin.
pub struct LoyaltyProgram;

impl Loyalty for LoyaltyProgram {
    fn on_order(order: Order, member: Member) -> Result<Vec<Action>> {
        Ok(order_actions(&program()?, &order, &member, now()))
    }

    /// Nothing: the host reverses exactly the points the order earned, and
    /// re-evaluates the tier with `tier-for`.
    fn on_refund(order: Order, member: Member) -> Result<Vec<Action>> {
        let _ = (order, member);
        program()?;
        Ok(Vec::new())
    }

    fn tier_for(member: Member) -> Result<TierInfo> {
        Ok(program()?.tier_info(&member.rolling_spend))
    }

    fn rewards() -> Result<Vec<Reward>> {
        Ok(program()?.rewards(now()))
    }
}

patron_sdk::export!(loyalty: LoyaltyProgram);

#[cfg(test)]
mod tests;
