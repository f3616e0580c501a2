//! Data subject requests and retention: everything Patron holds about one person as
//! JSON, erasure of that person, an audit row for each request, and the deletion of raw
//! events older than a shop's retention.
//!
//! Erasure removes personal data (profile fields, identities, events, consent, tags,
//! segment stints, tier, message contents, pending journey jobs) and keeps orders, the
//! points ledger, coupons and redemptions against the customer's random internal id,
//! which no longer leads to anyone: the shop's revenue and points liability stay true.

use serde::Serialize;
use sqlx::any::AnyRow;
use sqlx::{AnyConnection, Column, Row};

use super::consent::{self, Subject};
use super::{Db, StoreError, StoreResult, new_id, now_ms};

/// Who asked for a data subject request (kept in its audit row).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Requester {
    Api,
    Cli,
}

impl Requester {
    fn as_str(self) -> &'static str {
        match self {
            Self::Api => "api",
            Self::Cli => "cli",
        }
    }
}

/// A stored column as JSON: integers, text or null (the schema has no other types).
fn row_json(row: &AnyRow) -> serde_json::Value {
    let mut object = serde_json::Map::new();
    for (i, column) in row.columns().iter().enumerate() {
        let value = if let Ok(v) = row.try_get::<Option<i64>, _>(i) {
            v.map_or(serde_json::Value::Null, |v| {
                // Ids leave as strings (64-bit); counts and times as numbers.
                if column.name() == "id" || column.name().ends_with("_id") { v.to_string().into() } else { v.into() }
            })
        } else if let Ok(v) = row.try_get::<Option<String>, _>(i) {
            v.map_or(serde_json::Value::Null, serde_json::Value::from)
        } else {
            serde_json::Value::Null
        };
        object.insert(column.name().to_owned(), value);
    }
    serde_json::Value::Object(object)
}

async fn rows(conn: &mut AnyConnection, sql: &str, shop_id: i64, customer_id: i64) -> StoreResult<serde_json::Value> {
    let rows = sqlx::query(sql).bind(shop_id).bind(customer_id).fetch_all(conn).await?;
    Ok(serde_json::Value::Array(rows.iter().map(row_json).collect()))
}

/// The anonymous browser ids linked to a customer, from identities and events.
async fn anonymous_ids(conn: &mut AnyConnection, shop_id: i64, customer_id: i64) -> StoreResult<Vec<String>> {
    let mut ids: Vec<String> = sqlx::query_scalar(
        "SELECT value FROM identities WHERE shop_id = $1 AND customer_id = $2 AND kind = 'anonymous' \
         UNION SELECT DISTINCT anonymous_id FROM events WHERE shop_id = $1 AND customer_id = $2 \
         AND anonymous_id IS NOT NULL",
    )
    .bind(shop_id)
    .bind(customer_id)
    .fetch_all(conn)
    .await?;
    ids.sort();
    ids.dedup();
    Ok(ids)
}

fn subjects(customer_id: i64, anonymous: &[String]) -> Vec<Subject> {
    std::iter::once(Subject::Customer(customer_id)).chain(anonymous.iter().cloned().map(Subject::Anonymous)).collect()
}

/// The sections of an export, each a list of stored rows (`profile` is one object).
const SECTIONS: &[(&str, &str)] = &[
    (
        "identities",
        "SELECT kind, value, created_at FROM identities WHERE shop_id = $1 AND customer_id = $2 ORDER BY kind, value",
    ),
    (
        "events",
        "SELECT event_id, kind, occurred_at, received_at, anonymous_id, url, properties FROM events \
         WHERE shop_id = $1 AND customer_id = $2 ORDER BY occurred_at, event_id",
    ),
    (
        "orders",
        "SELECT id, status, currency, subtotal, discount, shipping, tax, total, refunded, coupon_codes, placed_at, \
         updated_at FROM orders WHERE shop_id = $1 AND customer_id = $2 ORDER BY placed_at, id",
    ),
    (
        "order_lines",
        "SELECT l.order_id, l.line_no, l.product_id, l.sku, l.title, l.category, l.quantity, l.unit_price \
         FROM order_lines l JOIN orders o ON o.shop_id = l.shop_id AND o.id = l.order_id \
         WHERE o.shop_id = $1 AND o.customer_id = $2 ORDER BY l.order_id, l.line_no",
    ),
    (
        "refunds",
        "SELECT r.id, r.order_id, r.amount, r.reason, r.created_at FROM refunds r \
         JOIN orders o ON o.shop_id = r.shop_id AND o.id = r.order_id WHERE o.shop_id = $1 AND o.customer_id = $2 \
         ORDER BY r.created_at, r.id",
    ),
    (
        "points_ledger",
        "SELECT delta, kind, reason, order_id, source, expires_at, created_at FROM points_ledger \
         WHERE shop_id = $1 AND customer_id = $2 ORDER BY created_at, id",
    ),
    ("points_balance", "SELECT balance FROM points_balances WHERE shop_id = $1 AND customer_id = $2"),
    ("tier", "SELECT tier, tier_since FROM members WHERE shop_id = $1 AND customer_id = $2"),
    (
        "tier_changes",
        "SELECT at, from_tier, to_tier FROM tier_changes WHERE shop_id = $1 AND customer_id = $2 ORDER BY at",
    ),
    (
        "predictions",
        "SELECT plugin, predicted_at, p_alive, purchases_30, purchases_90, purchases_365, expected_order_value, clv \
         FROM customer_predictions WHERE shop_id = $1 AND customer_id = $2 ORDER BY plugin",
    ),
    (
        "coupons",
        "SELECT code, discount_kind, discount_value, currency, minimum_spend, expires_at, description, source, \
         created_at FROM coupons WHERE shop_id = $1 AND customer_id = $2 ORDER BY created_at, code",
    ),
    (
        "coupon_redemptions",
        "SELECT code, order_id, redeemed_at FROM coupon_redemptions WHERE shop_id = $1 AND customer_id = $2 \
         ORDER BY redeemed_at, code",
    ),
    (
        "reward_redemptions",
        "SELECT reward_id, coupon_code, created_at FROM reward_redemptions WHERE shop_id = $1 AND customer_id = $2 \
         ORDER BY created_at",
    ),
    ("tags", "SELECT tag, source, added_at FROM customer_tags WHERE shop_id = $1 AND customer_id = $2 ORDER BY tag"),
    (
        "segments",
        "SELECT segment, source, joined_at, left_at FROM segment_memberships WHERE shop_id = $1 AND customer_id = $2 \
         ORDER BY joined_at, segment",
    ),
    (
        "messages",
        "SELECT id, channel, template, data, source, status, reason, journey, step, purpose, created_at, sent_at \
         FROM outbox WHERE shop_id = $1 AND customer_id = $2 ORDER BY created_at, id",
    ),
    ("unsubscribes", "SELECT message_id, at FROM unsubscribes WHERE shop_id = $1 AND customer_id = $2"),
    (
        "merges",
        "SELECT merged_id, merged_external_id, reason, merged_at FROM customer_merges \
         WHERE shop_id = $1 AND survivor_id = $2 ORDER BY merged_at",
    ),
    (
        "privacy_requests",
        "SELECT kind, requested_by, at FROM privacy_requests WHERE shop_id = $1 AND customer_id = $2 ORDER BY at",
    ),
];

async fn audit(
    conn: &mut AnyConnection,
    shop_id: i64,
    kind: &str,
    customer_id: i64,
    by: Requester,
    summary: &serde_json::Value,
) -> StoreResult<()> {
    sqlx::query(
        "INSERT INTO privacy_requests (shop_id, id, kind, customer_id, requested_by, summary, at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(shop_id)
    .bind(new_id())
    .bind(kind)
    .bind(customer_id)
    .bind(by.as_str())
    .bind(summary.to_string())
    .bind(now_ms())
    .execute(conn)
    .await?;
    Ok(())
}

/// What an erasure removed.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Erased {
    #[serde(serialize_with = "crate::api::ids::string")]
    #[schema(value_type = String)]
    pub customer_id: i64,
    pub identities: u64,
    pub events: u64,
    pub consent_records: u64,
    pub tags: u64,
    pub segment_stints: u64,
    pub predictions: u64,
    /// Plugin kv entries keyed to the person (`store::customer_kv`).
    pub kv_entries: u64,
    pub messages_scrubbed: u64,
    pub jobs: u64,
    /// Orders and ledger rows kept, pseudonymous, for the shop's accounts.
    pub orders_kept: i64,
    pub ledger_entries_kept: i64,
}

/// One audited data subject request.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct PrivacyRequest {
    pub kind: String,
    #[serde(serialize_with = "crate::api::ids::string")]
    #[schema(value_type = String)]
    pub customer_id: i64,
    pub requested_by: String,
    pub summary: serde_json::Value,
    pub at: i64,
}

async fn count(conn: &mut AnyConnection, sql: &str, shop_id: i64, customer_id: i64) -> StoreResult<i64> {
    Ok(sqlx::query_scalar(sql).bind(shop_id).bind(customer_id).fetch_one(conn).await?)
}

async fn delete(conn: &mut AnyConnection, sql: &str, shop_id: i64, customer_id: i64) -> StoreResult<u64> {
    Ok(sqlx::query(sql).bind(shop_id).bind(customer_id).execute(conn).await?.rows_affected())
}

impl Db {
    /// Everything held about one customer (resolved through merges), as JSON; audited.
    pub async fn export_customer(
        &self,
        shop_id: i64,
        customer_id: i64,
        by: Requester,
    ) -> StoreResult<serde_json::Value> {
        let mut w = self.write().await?;
        let conn = &mut *w.tx;
        let id = super::merges::resolve(conn, shop_id, customer_id).await?.ok_or(StoreError::NotFound("customer"))?;
        let profile = sqlx::query(
            "SELECT id, external_id, email, phone, first_name, last_name, birthday, marketing_consent, traits, \
             created_at, updated_at, order_count, total_spent, first_order_at, last_order_at \
             FROM customers WHERE shop_id = $1 AND id = $2",
        )
        .bind(shop_id)
        .bind(id)
        .fetch_one(&mut *conn)
        .await?;
        let mut export = serde_json::Map::new();
        export.insert("profile".into(), row_json(&profile));
        for (name, sql) in SECTIONS {
            export.insert((*name).into(), rows(conn, sql, shop_id, id).await?);
        }
        let anonymous = anonymous_ids(conn, shop_id, id).await?;
        let log = consent::log(conn, shop_id, &subjects(id, &anonymous)).await?;
        export
            .insert("consent_log".into(), serde_json::to_value(&log).map_err(|e| StoreError::Corrupt(e.to_string()))?);
        export.insert("plugin_kv".into(), super::customer_kv::export(conn, shop_id, id).await?);
        export.insert("exported_at".into(), now_ms().into());
        let summary: serde_json::Map<String, serde_json::Value> =
            export.iter().filter_map(|(k, v)| v.as_array().map(|a| (k.clone(), a.len().into()))).collect();
        audit(conn, shop_id, "export", id, by, &serde_json::Value::Object(summary)).await?;
        w.commit().await?;
        Ok(serde_json::Value::Object(export))
    }

    /// Erases one customer (resolved through merges) in one transaction; audited. The
    /// browser ids they used are forgotten with them, so a later visit is not re-linked.
    pub async fn erase_customer(&self, shop_id: i64, customer_id: i64, by: Requester) -> StoreResult<Erased> {
        let mut w = self.write().await?;
        let conn = &mut *w.tx;
        let id = super::merges::resolve(conn, shop_id, customer_id).await?.ok_or(StoreError::NotFound("customer"))?;
        super::merges::resolve_locked(conn, shop_id, id).await?;
        let anonymous = anonymous_ids(conn, shop_id, id).await?;
        let mut erased = Erased { customer_id: id, ..Erased::default() };
        erased.events = delete(conn, "DELETE FROM events WHERE shop_id = $1 AND customer_id = $2", shop_id, id).await?;
        for anonymous_id in &anonymous {
            erased.events += sqlx::query("DELETE FROM events WHERE shop_id = $1 AND anonymous_id = $2")
                .bind(shop_id)
                .bind(anonymous_id)
                .execute(&mut *conn)
                .await?
                .rows_affected();
        }
        erased.identities =
            delete(conn, "DELETE FROM identities WHERE shop_id = $1 AND customer_id = $2", shop_id, id).await?;
        erased.consent_records = consent::forget(conn, shop_id, &subjects(id, &anonymous)).await?;
        erased.tags =
            delete(conn, "DELETE FROM customer_tags WHERE shop_id = $1 AND customer_id = $2", shop_id, id).await?;
        erased.segment_stints =
            delete(conn, "DELETE FROM segment_memberships WHERE shop_id = $1 AND customer_id = $2", shop_id, id)
                .await?;
        delete(conn, "DELETE FROM members WHERE shop_id = $1 AND customer_id = $2", shop_id, id).await?;
        delete(conn, "DELETE FROM tier_changes WHERE shop_id = $1 AND customer_id = $2", shop_id, id).await?;
        erased.kv_entries = super::customer_kv::erase(conn, shop_id, id).await?;
        erased.predictions =
            delete(conn, "DELETE FROM customer_predictions WHERE shop_id = $1 AND customer_id = $2", shop_id, id)
                .await?;
        delete(conn, "DELETE FROM unsubscribes WHERE shop_id = $1 AND customer_id = $2", shop_id, id).await?;
        erased.messages_scrubbed =
            delete(conn, "UPDATE outbox SET data = '{}' WHERE shop_id = $1 AND customer_id = $2", shop_id, id).await?;
        sqlx::query(
            "UPDATE outbox SET status = 'suppressed', reason = 'erased' WHERE shop_id = $1 AND customer_id = $2 \
             AND status IN ('queued', 'deferred')",
        )
        .bind(shop_id)
        .bind(id)
        .execute(&mut *conn)
        .await?;
        erased.jobs = sqlx::query("DELETE FROM jobs WHERE shop_id = $1 AND status = 'queued' AND payload LIKE $2")
            .bind(shop_id)
            .bind(format!("%\"customer_id\":{id}%"))
            .execute(&mut *conn)
            .await?
            .rows_affected();
        // The record and every record merged into it keep only their random ids and
        // purchase stats (revenue figures read them).
        sqlx::query(
            "UPDATE customers SET external_id = NULL, email = NULL, phone = NULL, first_name = NULL, last_name = NULL, \
             birthday = NULL, marketing_consent = 0, traits = '{}', updated_at = $3 \
             WHERE shop_id = $1 AND (id = $2 OR merged_into = $2)",
        )
        .bind(shop_id)
        .bind(id)
        .bind(now_ms())
        .execute(&mut *conn)
        .await?;
        delete(
            conn,
            "UPDATE customer_merges SET merged_external_id = NULL WHERE shop_id = $1 AND survivor_id = $2",
            shop_id,
            id,
        )
        .await?;
        erased.orders_kept =
            count(conn, "SELECT COUNT(*) FROM orders WHERE shop_id = $1 AND customer_id = $2", shop_id, id).await?;
        erased.ledger_entries_kept =
            count(conn, "SELECT COUNT(*) FROM points_ledger WHERE shop_id = $1 AND customer_id = $2", shop_id, id)
                .await?;
        let summary = serde_json::to_value(&erased).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        audit(conn, shop_id, "erasure", id, by, &summary).await?;
        w.commit().await?;
        Ok(erased)
    }

    /// The audited data subject requests of a shop, newest first.
    pub async fn privacy_requests(&self, shop_id: i64, limit: i64) -> StoreResult<Vec<PrivacyRequest>> {
        let rows = sqlx::query(
            "SELECT kind, customer_id, requested_by, summary, at FROM privacy_requests WHERE shop_id = $1 \
             ORDER BY at DESC, id LIMIT $2",
        )
        .bind(shop_id)
        .bind(limit)
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|row| {
                let summary: String = row.try_get("summary")?;
                Ok(PrivacyRequest {
                    kind: row.try_get("kind")?,
                    customer_id: row.try_get("customer_id")?,
                    requested_by: row.try_get("requested_by")?,
                    summary: serde_json::from_str(&summary).map_err(|e| StoreError::Corrupt(e.to_string()))?,
                    at: row.try_get("at")?,
                })
            })
            .collect()
    }

    /// Records what a retention run deleted.
    pub async fn record_retention_run(&self, shop_id: i64, cutoff: i64, deleted: u64) -> StoreResult<()> {
        let mut w = self.write().await?;
        sqlx::query(
            "INSERT INTO retention_runs (shop_id, ran_at, cutoff, events_deleted) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (shop_id, ran_at) DO NOTHING",
        )
        .bind(shop_id)
        .bind(now_ms())
        .bind(cutoff)
        .bind(i64::try_from(deleted).unwrap_or(i64::MAX))
        .execute(&mut *w.tx)
        .await?;
        w.commit().await?;
        Ok(())
    }

    /// The shop's retention runs, newest first: (ran at, cutoff, events deleted).
    pub async fn retention_runs(&self, shop_id: i64, limit: i64) -> StoreResult<Vec<(i64, i64, i64)>> {
        Ok(sqlx::query_as(
            "SELECT ran_at, cutoff, events_deleted FROM retention_runs WHERE shop_id = $1 ORDER BY ran_at DESC LIMIT $2",
        )
        .bind(shop_id)
        .bind(limit)
        .fetch_all(self.pool())
        .await?)
    }

    /// Deletes a shop's raw events that occurred before `cutoff`, `batch` rows per
    /// transaction so ingest is never blocked for long; returns how many were deleted.
    pub async fn delete_events_before(&self, shop_id: i64, cutoff: i64, batch: i64) -> StoreResult<u64> {
        let mut total = 0;
        loop {
            let mut w = self.write().await?;
            let deleted = sqlx::query(
                "DELETE FROM events WHERE shop_id = $1 AND event_id IN \
                 (SELECT event_id FROM events WHERE shop_id = $1 AND occurred_at < $2 LIMIT $3)",
            )
            .bind(shop_id)
            .bind(cutoff)
            .bind(batch)
            .execute(&mut *w.tx)
            .await?
            .rows_affected();
            w.commit().await?;
            total += deleted;
            if deleted < u64::try_from(batch).unwrap_or(u64::MAX) {
                return Ok(total);
            }
        }
    }
}
