//! Host records in the contract's types: what plugins are handed.

use patron_runtime::types::{
    CustomerStats, LineItem, Member, Money, Order as WitOrder, OrderStatus as WitStatus, Product as WitProduct, Profile,
};

use crate::store::customers::Customer;
use crate::store::orders::{Order, OrderStatus};
use crate::store::predictions::CustomerPrediction;
use crate::store::products::Product;

const DAY_MS: i64 = 24 * 60 * 60 * 1000;

fn clamp_u32(value: i64) -> u32 {
    u32::try_from(value.max(0)).unwrap_or(u32::MAX)
}

/// What the host knows of a customer beyond their record, for [`profile`].
#[derive(Debug, Default)]
pub struct Facts<'a> {
    pub tags: Vec<String>,
    pub segments: Vec<String>,
    /// Their latest predictions: plugins read them as the trait `predictions`.
    pub predictions: Option<&'a CustomerPrediction>,
}

/// A customer as a plugin sees it, with the tags and segments they hold now.
pub fn profile(customer: &Customer, facts: Facts<'_>, now: i64) -> Profile {
    let Facts { tags, segments, predictions } = facts;
    let mut traits = customer.traits.as_object().cloned().unwrap_or_default();
    // Plugins read identity facts as traits too (birthdays drive rules and multipliers).
    if let Some(birthday) = &customer.birthday {
        traits.insert("birthday".into(), birthday.clone().into());
    }
    traits.insert("marketing_consent".into(), customer.marketing_consent.into());
    // Rules condition on them as on any trait: `{"trait": {"key": "predictions.p_alive", "lt": 0.3}}`.
    if let Some(value) = predictions.and_then(|p| serde_json::to_value(p).ok()) {
        traits.insert("predictions".into(), value);
    }
    let stats = &customer.stats;
    Profile {
        id: customer.id.to_string(),
        external_id: customer.external_id.clone(),
        email: customer.email.clone(),
        traits: serde_json::Value::Object(traits).to_string(),
        stats: CustomerStats {
            order_count: clamp_u32(stats.order_count),
            total_spent: stats.total_spent,
            average_order_value: stats.average_order_value,
            first_order_at: stats.first_order_at,
            last_order_at: stats.last_order_at,
            days_since_last_order: stats.last_order_at.map(|at| clamp_u32((now - at) / DAY_MS)),
        },
        tags,
        segments,
    }
}

/// An order as a plugin sees it. Pending and fulfilled orders are paid from a plugin's
/// point of view only once paid; the host calls hooks only for paid, cancelled or
/// refunded orders.
pub fn order(order: &Order, customer_id: i64) -> WitOrder {
    let money = |amount: i64| Money { amount, currency: order.currency.clone() };
    WitOrder {
        id: order.id.clone(),
        external_id: order.id.clone(),
        customer_id: customer_id.to_string(),
        status: match order.status {
            OrderStatus::Cancelled => WitStatus::Cancelled,
            OrderStatus::Refunded => WitStatus::Refunded,
            OrderStatus::Pending | OrderStatus::Paid | OrderStatus::Fulfilled => WitStatus::Paid,
        },
        total: money(order.total - order.refunded),
        items: order
            .lines
            .iter()
            .map(|line| LineItem {
                product_id: line.product_id.clone().or_else(|| line.sku.clone()).unwrap_or_else(|| line.title.clone()),
                category: line.category.clone(),
                quantity: clamp_u32(line.quantity),
                unit_price: money(line.unit_price),
            })
            .collect(),
        placed_at: order.placed_at,
    }
}

/// A loyalty member as a plugin sees them.
pub fn member(
    customer_id: i64,
    tier: Option<String>,
    points_balance: i64,
    rolling_spend: i64,
    currency: &str,
) -> Member {
    Member {
        customer_id: customer_id.to_string(),
        tier,
        points_balance,
        rolling_spend: Money { amount: rolling_spend, currency: currency.to_owned() },
    }
}

/// A catalogue product as a plugin sees it (a product stored without a currency is
/// priced in the shop's).
pub fn product(product: &Product, shop_currency: &str) -> WitProduct {
    WitProduct {
        id: product.id.clone(),
        name: product.title.clone(),
        category: product.category.clone(),
        price: Money {
            amount: product.price,
            currency: product.currency.clone().unwrap_or_else(|| shop_currency.to_owned()),
        },
    }
}
