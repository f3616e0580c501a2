//! Messages plugins asked the host to send, queued for a delivery worker.

use serde::Serialize;
use sqlx::{AnyConnection, Row};

use super::{Db, StoreResult, new_id, now_ms};

/// A message to queue.
#[derive(Debug, Clone, Serialize)]
pub struct OutboxMessage {
    pub customer_id: i64,
    pub channel: String,
    pub template: String,
    /// A JSON document for the template.
    pub data: String,
    pub source: String,
}

pub(crate) async fn push(conn: &mut AnyConnection, shop_id: i64, message: &OutboxMessage) -> StoreResult<()> {
    sqlx::query(
        "INSERT INTO outbox (shop_id, id, customer_id, channel, template, data, source, status, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, 'queued', $8)",
    )
    .bind(shop_id)
    .bind(new_id())
    .bind(message.customer_id)
    .bind(&message.channel)
    .bind(&message.template)
    .bind(&message.data)
    .bind(&message.source)
    .bind(now_ms())
    .execute(conn)
    .await?;
    Ok(())
}

impl Db {
    /// Queued messages of a shop, oldest first.
    pub async fn queued_messages(&self, shop_id: i64, limit: i64) -> StoreResult<Vec<OutboxMessage>> {
        let rows = sqlx::query(
            "SELECT customer_id, channel, template, data, source FROM outbox WHERE shop_id = $1 AND status = 'queued' \
             ORDER BY created_at LIMIT $2",
        )
        .bind(shop_id)
        .bind(limit)
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|r| {
                Ok(OutboxMessage {
                    customer_id: r.try_get("customer_id")?,
                    channel: r.try_get("channel")?,
                    template: r.try_get("template")?,
                    data: r.try_get("data")?,
                    source: r.try_get("source")?,
                })
            })
            .collect()
    }
}
