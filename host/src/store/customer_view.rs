//! The reads behind one customer's 360° view in the console that no other module has:
//! identities, orders, the event timeline, segment history, and tags set by hand.

use serde::Serialize;
use sqlx::Row;

use super::events::StoredEvent;
use super::{Db, StoreError, StoreResult};

/// An identity (anonymous browser id, email, phone, …) that points at the customer.
#[derive(Debug, Clone, Serialize)]
pub struct IdentityRow {
    pub kind: String,
    pub value: String,
    pub created_at: i64,
}

/// One order as listed on a customer's page.
#[derive(Debug, Clone, Serialize)]
pub struct OrderRow {
    pub id: String,
    pub status: String,
    pub currency: String,
    pub total: i64,
    pub refunded: i64,
    pub placed_at: i64,
    pub items: i64,
}

/// A stint in a segment; `left_at` is null while it lasts.
#[derive(Debug, Clone, Serialize)]
pub struct SegmentStint {
    pub segment: String,
    pub source: String,
    pub joined_at: i64,
    pub left_at: Option<i64>,
}

impl Db {
    pub async fn customer_identities(&self, shop_id: i64, customer_id: i64) -> StoreResult<Vec<IdentityRow>> {
        let rows: Vec<(String, String, i64)> = sqlx::query_as(
            "SELECT kind, value, created_at FROM identities WHERE shop_id = $1 AND customer_id = $2 \
             ORDER BY created_at DESC, kind, value LIMIT 100",
        )
        .bind(shop_id)
        .bind(customer_id)
        .fetch_all(self.pool())
        .await?;
        Ok(rows.into_iter().map(|(kind, value, created_at)| IdentityRow { kind, value, created_at }).collect())
    }

    /// Ids of the records merged into this customer.
    pub async fn merged_records(&self, shop_id: i64, customer_id: i64) -> StoreResult<Vec<i64>> {
        Ok(sqlx::query_scalar("SELECT id FROM customers WHERE shop_id = $1 AND merged_into = $2 ORDER BY id LIMIT 100")
            .bind(shop_id)
            .bind(customer_id)
            .fetch_all(self.pool())
            .await?)
    }

    /// The customer's latest orders of any status, newest first.
    pub async fn customer_orders(&self, shop_id: i64, customer_id: i64, limit: i64) -> StoreResult<Vec<OrderRow>> {
        let rows = sqlx::query(
            "SELECT o.id, o.status, o.currency, o.total, o.refunded, o.placed_at, \
                    (SELECT CAST(COALESCE(SUM(l.quantity), 0) AS BIGINT) FROM order_lines l \
                     WHERE l.shop_id = o.shop_id AND l.order_id = o.id) AS items \
             FROM orders o WHERE o.shop_id = $1 AND o.customer_id = $2 ORDER BY o.placed_at DESC LIMIT $3",
        )
        .bind(shop_id)
        .bind(customer_id)
        .bind(limit)
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|r| {
                Ok(OrderRow {
                    id: r.try_get("id")?,
                    status: r.try_get("status")?,
                    currency: r.try_get("currency")?,
                    total: r.try_get("total")?,
                    refunded: r.try_get("refunded")?,
                    placed_at: r.try_get("placed_at")?,
                    items: r.try_get("items")?,
                })
            })
            .collect()
    }

    /// The customer's latest behaviour events, newest first: those recorded for them and
    /// those of their anonymous browser ids from before they were known.
    pub async fn customer_events(&self, shop_id: i64, customer_id: i64, limit: i64) -> StoreResult<Vec<StoredEvent>> {
        let rows = sqlx::query(
            "SELECT event_id, kind, occurred_at, anonymous_id, customer_id, url, properties FROM events e \
             WHERE e.shop_id = $1 AND (e.customer_id = $2 OR (e.customer_id IS NULL AND e.anonymous_id IN ( \
                 SELECT i.value FROM identities i WHERE i.shop_id = $1 AND i.kind = 'anonymous' AND i.customer_id = $2))) \
             ORDER BY e.occurred_at DESC, e.event_id LIMIT $3",
        )
        .bind(shop_id)
        .bind(customer_id)
        .bind(limit)
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|r| {
                let properties: String = r.try_get("properties")?;
                Ok(StoredEvent {
                    event_id: r.try_get("event_id")?,
                    kind: r.try_get("kind")?,
                    occurred_at: r.try_get("occurred_at")?,
                    anonymous_id: r.try_get("anonymous_id")?,
                    customer_id: r.try_get("customer_id")?,
                    url: r.try_get("url")?,
                    properties: serde_json::from_str(&properties)
                        .map_err(|e| StoreError::Corrupt(format!("event properties: {e}")))?,
                })
            })
            .collect()
    }

    /// Every stint of the customer in a segment, latest first.
    pub async fn segment_history(&self, shop_id: i64, customer_id: i64) -> StoreResult<Vec<SegmentStint>> {
        let rows: Vec<(String, String, i64, Option<i64>)> = sqlx::query_as(
            "SELECT segment, source, joined_at, left_at FROM segment_memberships WHERE shop_id = $1 AND customer_id = $2 \
             ORDER BY joined_at DESC, segment LIMIT 200",
        )
        .bind(shop_id)
        .bind(customer_id)
        .fetch_all(self.pool())
        .await?;
        Ok(rows
            .into_iter()
            .map(|(segment, source, joined_at, left_at)| SegmentStint { segment, source, joined_at, left_at })
            .collect())
    }

    /// Adds (or removes) a tag on a customer by hand; true when it changed anything.
    pub async fn set_customer_tag(
        &self,
        shop_id: i64,
        customer_id: i64,
        tag: &str,
        present: bool,
    ) -> StoreResult<bool> {
        let mut w = self.write().await?;
        let had: Option<String> =
            sqlx::query_scalar("SELECT tag FROM customer_tags WHERE shop_id = $1 AND customer_id = $2 AND tag = $3")
                .bind(shop_id)
                .bind(customer_id)
                .bind(tag)
                .fetch_optional(&mut *w.tx)
                .await?;
        let changed = had.is_some() != present;
        if changed {
            if present {
                super::segments::add_tag(&mut w.tx, shop_id, customer_id, tag, "console").await?;
            } else {
                super::segments::remove_tag(&mut w.tx, shop_id, customer_id, tag).await?;
            }
        }
        w.commit().await?;
        Ok(changed)
    }
}
