//! The contract's records as plain Rust types (see `wit/types.wit` for the
//! meaning of every field). Times are Unix milliseconds; money is minor units.

use serde::{Deserialize, Serialize};

use crate::Money;

/// A point in time, in milliseconds since the Unix epoch (UTC).
pub type Timestamp = i64;

/// Order statistics of a customer, in the shop's currency.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CustomerStats {
    /// Number of paid orders.
    pub order_count: u32,
    /// Paid minus refunded, in minor units.
    pub total_spent: i64,
    /// `total_spent / order_count`, 0 without orders.
    pub average_order_value: i64,
    /// First paid order.
    pub first_order_at: Option<Timestamp>,
    /// Most recent paid order.
    pub last_order_at: Option<Timestamp>,
    /// Whole days since the most recent paid order.
    pub days_since_last_order: Option<u32>,
}

/// A customer as the host knows them.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Profile {
    /// Patron's customer id.
    pub id: String,
    /// The store's customer id.
    pub external_id: Option<String>,
    /// Email, if shared with plugins.
    pub email: Option<String>,
    /// Traits as a JSON object.
    pub traits: String,
    /// Order statistics.
    pub stats: CustomerStats,
    /// Tags held now.
    pub tags: Vec<String>,
    /// Segments held now.
    pub segments: Vec<String>,
}

impl Profile {
    /// Whether the customer holds `tag`.
    pub fn has_tag(&self, tag: &str) -> bool {
        self.tags.iter().any(|t| t == tag)
    }

    /// The traits, parsed with serde_json (an empty object if they are not valid JSON).
    pub fn traits_json(&self) -> serde_json::Value {
        serde_json::from_str(&self.traits).unwrap_or_else(|_| serde_json::json!({}))
    }

    /// The traits, parsed with [`json`](crate::json) (an empty object if they are not a
    /// valid JSON object): [`traits_json`](Self::traits_json) without serde.
    pub fn traits_value(&self) -> crate::json::Value {
        match crate::json::parse(&self.traits) {
            Ok(value @ crate::json::Value::Object(_)) => value,
            _ => crate::json::Value::Object(crate::json::Map::new()),
        }
    }
}

/// Lifecycle state of an order.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum OrderStatus {
    /// Paid.
    #[default]
    Paid,
    /// Cancelled before fulfilment.
    Cancelled,
    /// Refunded after payment.
    Refunded,
}

/// One line of an order.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LineItem {
    /// The store's product id.
    pub product_id: String,
    /// Product category.
    pub category: Option<String>,
    /// Units bought.
    pub quantity: u32,
    /// Price of one unit.
    pub unit_price: Money,
}

/// An order posted by the store.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Order {
    /// Patron's order id.
    pub id: String,
    /// The store's order id.
    pub external_id: String,
    /// Patron's customer id.
    pub customer_id: String,
    /// Current status.
    pub status: OrderStatus,
    /// Total after discounts.
    pub total: Money,
    /// Lines.
    pub items: Vec<LineItem>,
    /// When it was placed.
    pub placed_at: Timestamp,
}

/// A behavioural event (untrusted).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Event {
    /// Kind, e.g. `page_view`.
    pub kind: String,
    /// When it happened.
    pub at: Timestamp,
    /// Properties as a JSON object.
    pub properties: String,
}

/// A customer's standing in the loyalty programme.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Member {
    /// Patron's customer id.
    pub customer_id: String,
    /// Current tier.
    pub tier: Option<String>,
    /// Points balance.
    pub points_balance: i64,
    /// Spend over the last 365 days.
    pub rolling_spend: Money,
}

/// The tier a member should hold.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TierInfo {
    /// Tier name.
    pub tier: String,
    /// Next tier up.
    pub next_tier: Option<String>,
    /// Spend needed to reach it.
    pub spend_to_next: Option<Money>,
}

/// What a coupon takes off.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Discount {
    /// Percentage, 1 to 100.
    Percent(u8),
    /// Fixed amount.
    Fixed(Money),
    /// Free shipping.
    FreeShipping,
}

/// A coupon to issue; the host generates the code.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CouponSpec {
    /// What it takes off.
    pub discount: Discount,
    /// Minimum order total.
    pub minimum_spend: Option<Money>,
    /// End of validity.
    pub expires_at: Option<Timestamp>,
}

/// A reward members can redeem points for.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reward {
    /// Stable id.
    pub id: String,
    /// Display name.
    pub name: String,
    /// Points it costs.
    pub points_cost: i64,
    /// Coupon issued on redemption.
    pub coupon: CouponSpec,
}

/// A catalogue product.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Product {
    /// The store's product id.
    pub id: String,
    /// Display name.
    pub name: String,
    /// Category.
    pub category: Option<String>,
    /// Unit price.
    pub price: Money,
}

/// A recommended product.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ScoredItem {
    /// The store's product id.
    pub product_id: String,
    /// Higher is better.
    pub score: f64,
}

/// What to recommend for.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecommendRequest {
    /// Customer, if known.
    pub customer_id: Option<String>,
    /// Products being viewed or in the cart.
    pub context_products: Vec<String>,
    /// Maximum number of items.
    pub limit: u32,
}

/// A timer that became due.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Timer {
    /// Name given when scheduled.
    pub name: String,
    /// When it was due.
    pub at: Timestamp,
    /// Data given when scheduled (JSON).
    pub data: String,
}

/// A change a plugin asks the host to make for the customer of the call.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Action {
    /// Give a tag.
    AddTag(String),
    /// Take a tag away.
    RemoveTag(String),
    /// Add (negative: remove) points.
    AwardPoints {
        /// Points.
        amount: i64,
        /// Ledger reason.
        reason: String,
    },
    /// Move to a tier.
    SetTier(String),
    /// Issue a coupon.
    IssueCoupon(CouponSpec),
    /// Put a message in the outbox.
    SendMessage {
        /// Channel, e.g. `email`.
        channel: String,
        /// Template name.
        template: String,
        /// Template data (JSON object).
        data: String,
    },
    /// Schedule (or reschedule) a named timer.
    ScheduleTimer {
        /// Timer name.
        name: String,
        /// When it fires.
        at: Timestamp,
        /// Data handed back to `on_timer` (JSON).
        data: String,
    },
    /// Cancel a named timer.
    CancelTimer(String),
}

/// An error a plugin returns from one call.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Error {
    /// Machine-readable code, e.g. `bad-config`.
    pub code: String,
    /// Human-readable explanation.
    pub message: String,
}

impl Error {
    /// An error with `code` and `message`.
    pub fn new(code: impl Into<String>, message: impl Into<String>) -> Self {
        Self { code: code.into(), message: message.into() }
    }

    /// `not-implemented`: what the trait's default methods return.
    pub fn not_implemented(function: &str) -> Self {
        Self::new("not-implemented", format!("this plugin does not implement `{function}`"))
    }
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "[{}] {}", self.code, self.message)
    }
}

impl std::error::Error for Error {}

/// The result of a plugin function.
pub type Result<T, E = Error> = std::result::Result<T, E>;
