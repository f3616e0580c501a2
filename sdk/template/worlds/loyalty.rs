//! {{name}}: a Patron loyalty programme.

use patron_sdk::{Action, Loyalty, Member, Money, Order, Result, TierInfo};

/// The plugin.
struct Plugin;

impl Loyalty for Plugin {
    /// One point per whole unit of currency spent.
    fn on_order(order: Order, _member: Member) -> Result<Vec<Action>> {
        Ok(vec![Action::AwardPoints {
            amount: order.total.major_units(),
            reason: format!("order {}", order.external_id),
        }])
    }

    /// Nothing to do: the host itself takes back what the order earned, in proportion
    /// to the amount refunded (a negative `AwardPoints` would be refused). Return tags or
    /// a message here if a refund should cause more.
    fn on_refund(_order: Order, _member: Member) -> Result<Vec<Action>> {
        Ok(Vec::new())
    }

    /// `gold` from 1,000.00 of rolling spend, `member` below.
    fn tier_for(member: Member) -> Result<TierInfo> {
        let gold = Money::new(100_000, member.rolling_spend.currency.clone());
        Ok(match gold.checked_sub(&member.rolling_spend) {
            Some(missing) if missing.amount > 0 => {
                TierInfo { tier: "member".into(), next_tier: Some("gold".into()), spend_to_next: Some(missing) }
            }
            _ => TierInfo { tier: "gold".into(), next_tier: None, spend_to_next: None },
        })
    }
}

patron_sdk::export!(loyalty: Plugin);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_order_earns_a_point_per_unit() {
        let order = Order { external_id: "1042".into(), total: Money::new(12_345, "EUR"), ..Order::default() };
        let actions = Plugin::on_order(order, Member::default());
        assert_eq!(actions, Ok(vec![Action::AwardPoints { amount: 123, reason: "order 1042".into() }]));
    }

    #[test]
    fn a_refund_asks_for_nothing_the_host_takes_the_points_back() {
        let order = Order { external_id: "1042".into(), total: Money::new(12_345, "EUR"), ..Order::default() };
        assert_eq!(Plugin::on_refund(order, Member::default()), Ok(vec![]));
    }
}
