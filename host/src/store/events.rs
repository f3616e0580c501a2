//! Behaviour events from storefronts. The client's event id is unique per shop, so a
//! retried batch is stored once.

use std::collections::HashSet;

use sqlx::Row;

use super::{Db, StoreResult, now_ms};
use crate::journeys::Listeners;

/// An event that passed validation and is ready to store.
#[derive(Debug, Clone, PartialEq)]
pub struct NewEvent {
    pub event_id: String,
    pub kind: String,
    pub occurred_at: i64,
    pub anonymous_id: Option<String>,
    pub customer_id: Option<i64>,
    pub url: Option<String>,
    /// A JSON object, serialized.
    pub properties: String,
}

/// A stored event.
#[derive(Debug, Clone, serde::Serialize)]
pub struct StoredEvent {
    pub event_id: String,
    pub kind: String,
    pub occurred_at: i64,
    pub anonymous_id: Option<String>,
    #[serde(serialize_with = "crate::api::ids::option_string")]
    pub customer_id: Option<i64>,
    pub url: Option<String>,
    pub properties: serde_json::Value,
}

const EVENT_COLUMNS: usize = 9;

impl Db {
    /// Stores a batch in one statement and one transaction; returns the ids that were new
    /// (the others were already stored: duplicates). Durable when this returns.
    pub async fn insert_events(&self, shop_id: i64, events: &[NewEvent]) -> StoreResult<HashSet<String>> {
        self.insert_events_triggering(shop_id, events, &Listeners::default()).await
    }

    /// [`Db::insert_events`], queueing in the same transaction a trigger for each
    /// new event of a known customer whose kind an automation install listens to.
    pub async fn insert_events_triggering(
        &self,
        shop_id: i64,
        events: &[NewEvent],
        listeners: &Listeners,
    ) -> StoreResult<HashSet<String>> {
        if events.is_empty() {
            return Ok(HashSet::new());
        }
        // Locking the customers can deadlock with merges on PostgreSQL; the loser runs
        // again (event ids make a second run harmless).
        super::retrying(super::WRITE_ATTEMPTS * 2, || self.try_insert_events(shop_id, events, listeners)).await
    }

    async fn try_insert_events(
        &self,
        shop_id: i64,
        events: &[NewEvent],
        listeners: &Listeners,
    ) -> StoreResult<HashSet<String>> {
        let mut w = self.write_storefront().await?;
        // A merge that committed after the request resolved its customer sends the
        // events to the survivor; one still running waits for them (or they for it).
        let mut events = std::borrow::Cow::Borrowed(events);
        // In id order, as merges lock, so the two cannot deadlock.
        let customers: std::collections::BTreeSet<i64> = events.iter().filter_map(|e| e.customer_id).collect();
        for customer_id in customers {
            let survivor = super::merges::resolve_shared(&mut w.tx, shop_id, customer_id).await?;
            if survivor != customer_id {
                for event in events.to_mut().iter_mut().filter(|e| e.customer_id == Some(customer_id)) {
                    event.customer_id = Some(survivor);
                }
            }
        }
        let mut sql = String::from(
            "INSERT INTO events (shop_id, event_id, kind, occurred_at, received_at, anonymous_id, customer_id, \
             url, properties) VALUES ",
        );
        // SQLite binds anonymous `?` parameters in order; numbered ones cost a lookup each.
        let numbered = self.backend() == super::Backend::Postgres;
        sql.push_str(&super::bulk::value_tuples(numbered, events.len(), EVENT_COLUMNS));
        sql.push_str(" ON CONFLICT (shop_id, event_id) DO NOTHING RETURNING event_id");
        let received_at = now_ms();
        let mut query = sqlx::query(&sql);
        for e in events.iter() {
            query = query
                .bind(shop_id)
                .bind(&e.event_id)
                .bind(&e.kind)
                .bind(e.occurred_at)
                .bind(received_at)
                .bind(&e.anonymous_id)
                .bind(e.customer_id)
                .bind(&e.url)
                .bind(&e.properties);
        }
        let rows = query.fetch_all(&mut *w.tx).await?;
        let inserted = rows.iter().map(|r| Ok(r.try_get::<String, _>(0)?)).collect::<StoreResult<HashSet<String>>>()?;
        crate::journeys::triggers::events(&mut w.tx, shop_id, listeners, &events, &inserted).await?;
        w.commit().await?;
        Ok(inserted)
    }

    /// The most recent events of a shop, newest first (for inspection and tests).
    pub async fn recent_events(&self, shop_id: i64, limit: i64) -> StoreResult<Vec<StoredEvent>> {
        let rows = sqlx::query(
            "SELECT event_id, kind, occurred_at, anonymous_id, customer_id, url, properties FROM events \
             WHERE shop_id = $1 ORDER BY received_at DESC, occurred_at DESC LIMIT $2",
        )
        .bind(shop_id)
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
                        .map_err(|e| super::StoreError::Corrupt(format!("event properties: {e}")))?,
                })
            })
            .collect()
    }

    pub async fn count_events(&self, shop_id: i64) -> StoreResult<i64> {
        Ok(sqlx::query_scalar("SELECT COUNT(*) FROM events WHERE shop_id = $1")
            .bind(shop_id)
            .fetch_one(self.pool())
            .await?)
    }

    /// The customer an anonymous browser was linked to, if any.
    pub async fn customer_for_anonymous(&self, shop_id: i64, anonymous_id: &str) -> StoreResult<Option<i64>> {
        let mut conn = self.pool().acquire().await?;
        super::identities::customer_for_anonymous(&mut conn, shop_id, anonymous_id).await
    }
}
