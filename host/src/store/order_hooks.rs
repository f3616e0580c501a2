//! Order changes the loyalty plugins must hear of. Each is queued as a job in the same
//! transaction as the change itself, so a process that dies after storing an order
//! still awards (or reverses) its points: the scheduler runs the job. Which plugin has
//! acted on which change is recorded with its actions, so running a change twice
//! applies them once.

use serde::{Deserialize, Serialize};
use sqlx::AnyConnection;

use super::jobs::{self, InlineJob};
use super::orders::OrderStatus;
use super::{Db, StoreResult, now_ms};

/// The job kind that runs the loyalty hooks of one order change.
pub const LOYALTY_JOB: &str = "order.loyalty";

/// A change to an order that loyalty plugins hear of.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "change", rename_all = "snake_case")]
pub enum OrderChange {
    /// It became a purchase (paid or fulfilled).
    Placed,
    /// It stopped being one (re-posted as cancelled, refunded or pending).
    Reversed,
    /// A refund was recorded against it.
    Refunded { refund_id: String },
}

impl OrderChange {
    /// The change an upsert made, if plugins hear of it.
    pub fn between(previous: Option<OrderStatus>, current: OrderStatus) -> Option<Self> {
        match (previous.is_some_and(OrderStatus::is_purchase), current.is_purchase()) {
            (false, true) => Some(Self::Placed),
            (true, false) => Some(Self::Reversed),
            _ => None,
        }
    }

    /// Names the change among the order's changes (a refund id is unique in the shop).
    pub fn key(&self) -> String {
        match self {
            Self::Placed => "placed".to_owned(),
            Self::Reversed => "reversed".to_owned(),
            Self::Refunded { refund_id } => format!("refund:{refund_id}"),
        }
    }
}

/// The payload of a [`LOYALTY_JOB`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LoyaltyJob {
    pub order_id: String,
    #[serde(flatten)]
    pub change: OrderChange,
}

impl LoyaltyJob {
    /// One job per change: a refund's id is unique in the shop, the other changes are
    /// unique per order.
    fn dedup_key(&self) -> String {
        match &self.change {
            OrderChange::Refunded { .. } => format!("{LOYALTY_JOB}:{}", self.change.key()),
            change => format!("{LOYALTY_JOB}:{}:{}", change.key(), self.order_id),
        }
    }
}

/// An order change to hear of now, with its job if one was queued (none for an order
/// without a customer, which earns nothing, or for a change made before: a re-placed
/// order hears of its placement again, but its plugins act once).
#[derive(Debug, Clone)]
pub struct LoyaltyWork {
    pub change: OrderChange,
    pub job: Option<InlineJob>,
}

/// Queues the job for `change` of an order, leased to the caller, in the transaction
/// that stores the change.
pub(crate) async fn queue(
    conn: &mut AnyConnection,
    shop_id: i64,
    order_id: &str,
    customer_id: Option<i64>,
    change: OrderChange,
) -> StoreResult<LoyaltyWork> {
    if customer_id.is_none() {
        return Ok(LoyaltyWork { change, job: None });
    }
    let payload = LoyaltyJob { order_id: order_id.to_owned(), change };
    let json = serde_json::to_value(&payload).map_err(|e| super::StoreError::Corrupt(e.to_string()))?;
    let job = jobs::enqueue_inline(conn, shop_id, LOYALTY_JOB, &json, &payload.dedup_key()).await?;
    Ok(LoyaltyWork { change: payload.change, job })
}

/// Records that `plugin` acted on an order change, in the transaction that applies its
/// actions; returns false (apply nothing) if it already had.
pub(crate) async fn record_run(
    conn: &mut AnyConnection,
    shop_id: i64,
    order_id: &str,
    change: &OrderChange,
    plugin: &str,
) -> StoreResult<bool> {
    let inserted = sqlx::query(
        "INSERT INTO order_hook_runs (shop_id, order_id, change_key, plugin, created_at) VALUES ($1, $2, $3, $4, $5) \
         ON CONFLICT (shop_id, order_id, change_key, plugin) DO NOTHING",
    )
    .bind(shop_id)
    .bind(order_id)
    .bind(change.key())
    .bind(plugin)
    .bind(now_ms())
    .execute(conn)
    .await?
    .rows_affected();
    Ok(inserted == 1)
}

impl Db {
    /// Whether `plugin` has acted on an order change.
    pub async fn hook_ran(
        &self,
        shop_id: i64,
        order_id: &str,
        change: &OrderChange,
        plugin: &str,
    ) -> StoreResult<bool> {
        let found: Option<String> = sqlx::query_scalar(
            "SELECT plugin FROM order_hook_runs WHERE shop_id = $1 AND order_id = $2 AND change_key = $3 AND plugin = $4",
        )
        .bind(shop_id)
        .bind(order_id)
        .bind(change.key())
        .bind(plugin)
        .fetch_optional(self.pool())
        .await?;
        Ok(found.is_some())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_crossing_the_purchase_line_is_a_change() {
        use OrderStatus::{Cancelled, Fulfilled, Paid, Pending};
        assert_eq!(OrderChange::between(None, Paid), Some(OrderChange::Placed));
        assert_eq!(OrderChange::between(Some(Pending), Fulfilled), Some(OrderChange::Placed));
        assert_eq!(OrderChange::between(Some(Paid), Cancelled), Some(OrderChange::Reversed));
        assert_eq!(OrderChange::between(Some(Paid), Fulfilled), None);
        assert_eq!(OrderChange::between(None, Pending), None);
    }

    #[test]
    fn a_job_payload_round_trips_and_its_dedup_key_is_one_per_change() {
        let refund = LoyaltyJob { order_id: "o-1".into(), change: OrderChange::Refunded { refund_id: "r-1".into() } };
        let json = serde_json::to_value(&refund).expect("serializes");
        assert_eq!(json, serde_json::json!({"order_id": "o-1", "change": "refunded", "refund_id": "r-1"}));
        assert_eq!(serde_json::from_value::<LoyaltyJob>(json).expect("parses"), refund);
        let placed = LoyaltyJob { order_id: "o-1".into(), change: OrderChange::Placed };
        let reversed = LoyaltyJob { order_id: "o-1".into(), change: OrderChange::Reversed };
        let keys = [placed.dedup_key(), reversed.dedup_key(), refund.dedup_key()];
        assert_eq!(keys, ["order.loyalty:placed:o-1", "order.loyalty:reversed:o-1", "order.loyalty:refund:r-1"]);
    }
}
