//! The reads behind the journey report: every journey message with its clicks and the
//! orders its recipient placed within a window after it, and the revenue of those orders.

use sqlx::Row;

use super::{Db, StoreResult};

/// One journey message as the report counts it.
#[derive(Debug, Clone)]
pub struct ReportedMessage {
    pub journey: String,
    pub step: String,
    pub status: String,
    pub reason: Option<String>,
    pub clicks: i64,
    /// The recipient's paid orders within the window after the message was sent (or,
    /// for a held-out one, after it was withheld).
    pub orders: i64,
}

/// Revenue of the orders that followed sent messages of one step, in one currency.
#[derive(Debug, Clone)]
pub struct StepRevenue {
    pub journey: String,
    pub step: String,
    pub currency: String,
    pub amount: i64,
}

/// Paid orders of the message's recipient placed within `$2` ms after the message.
const ORDERS_AFTER: &str = "o.shop_id = m.shop_id AND o.customer_id = m.customer_id \
     AND o.status IN ('paid', 'fulfilled') AND o.placed_at >= COALESCE(m.sent_at, m.updated_at) \
     AND o.placed_at < COALESCE(m.sent_at, m.updated_at) + $2";

impl Db {
    /// The shop's journey messages queued since `since`, with clicks and orders within `window_ms`.
    pub async fn journey_messages(
        &self,
        shop_id: i64,
        since: i64,
        window_ms: i64,
    ) -> StoreResult<Vec<ReportedMessage>> {
        let rows = sqlx::query(&format!(
            "SELECT m.journey, COALESCE(m.step, '') AS step, m.status, m.reason, \
             (SELECT COUNT(*) FROM message_clicks c WHERE c.shop_id = m.shop_id AND c.message_id = m.id) AS clicks, \
             (SELECT COUNT(*) FROM orders o WHERE {ORDERS_AFTER}) AS orders \
             FROM outbox m WHERE m.shop_id = $1 AND m.journey IS NOT NULL AND m.created_at >= $3"
        ))
        .bind(shop_id)
        .bind(window_ms)
        .bind(since)
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|r| {
                Ok(ReportedMessage {
                    journey: r.try_get("journey")?,
                    step: r.try_get("step")?,
                    status: r.try_get("status")?,
                    reason: r.try_get("reason")?,
                    clicks: r.try_get("clicks")?,
                    orders: r.try_get("orders")?,
                })
            })
            .collect()
    }

    /// Revenue (net of refunds) of orders within `window_ms` after sent journey messages,
    /// per step and currency; an order following two messages counts for each.
    pub async fn journey_revenue(&self, shop_id: i64, since: i64, window_ms: i64) -> StoreResult<Vec<StepRevenue>> {
        let rows = sqlx::query(&format!(
            "SELECT m.journey, COALESCE(m.step, '') AS step, o.currency, \
             CAST(SUM(o.total - o.refunded) AS BIGINT) AS amount \
             FROM outbox m JOIN orders o ON {ORDERS_AFTER} \
             WHERE m.shop_id = $1 AND m.journey IS NOT NULL AND m.status = 'sent' AND m.created_at >= $3 \
             GROUP BY m.journey, COALESCE(m.step, ''), o.currency"
        ))
        .bind(shop_id)
        .bind(window_ms)
        .bind(since)
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|r| {
                Ok(StepRevenue {
                    journey: r.try_get("journey")?,
                    step: r.try_get("step")?,
                    currency: r.try_get("currency")?,
                    amount: r.try_get("amount")?,
                })
            })
            .collect()
    }
}
