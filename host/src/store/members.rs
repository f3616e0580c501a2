//! Loyalty members: the tier a customer holds (and each move between tiers, kept in
//! `tier_changes`), and the spend tiers are judged on.

use sqlx::AnyConnection;

use super::{Db, StoreResult, now_ms};

/// The window of "rolling 12-month spend".
pub const ROLLING_WINDOW_MS: i64 = 365 * 24 * 60 * 60 * 1000;

/// Sets a customer's tier; returns whether it changed.
pub(crate) async fn set_tier(
    conn: &mut AnyConnection,
    shop_id: i64,
    customer_id: i64,
    tier: &str,
) -> StoreResult<bool> {
    let current: Option<String> =
        sqlx::query_scalar("SELECT tier FROM members WHERE shop_id = $1 AND customer_id = $2")
            .bind(shop_id)
            .bind(customer_id)
            .fetch_optional(&mut *conn)
            .await?;
    if current.as_deref() == Some(tier) {
        return Ok(false);
    }
    let now = now_ms();
    sqlx::query(
        "INSERT INTO members (shop_id, customer_id, tier, tier_since) VALUES ($1, $2, $3, $4) \
         ON CONFLICT (shop_id, customer_id) DO UPDATE SET tier = excluded.tier, tier_since = excluded.tier_since",
    )
    .bind(shop_id)
    .bind(customer_id)
    .bind(tier)
    .bind(now)
    .execute(&mut *conn)
    .await?;
    // The move, for the console's tier movements (analytics::loyalty).
    sqlx::query("INSERT INTO tier_changes (shop_id, customer_id, at, from_tier, to_tier) VALUES ($1, $2, $3, $4, $5)")
        .bind(shop_id)
        .bind(customer_id)
        .bind(now)
        .bind(current)
        .bind(tier)
        .execute(conn)
        .await?;
    Ok(true)
}

impl Db {
    pub async fn tier(&self, shop_id: i64, customer_id: i64) -> StoreResult<Option<String>> {
        Ok(sqlx::query_scalar("SELECT tier FROM members WHERE shop_id = $1 AND customer_id = $2")
            .bind(shop_id)
            .bind(customer_id)
            .fetch_optional(self.pool())
            .await?)
    }

    /// What a customer spent (net of refunds) on orders placed in the 12 months to `at`.
    pub async fn rolling_spend(&self, shop_id: i64, customer_id: i64, at: i64) -> StoreResult<i64> {
        Ok(sqlx::query_scalar(
            "SELECT CAST(COALESCE(SUM(total - refunded), 0) AS BIGINT) FROM orders WHERE shop_id = $1 \
             AND customer_id = $2 AND status IN ('paid', 'fulfilled') AND placed_at > $3 AND placed_at <= $4",
        )
        .bind(shop_id)
        .bind(customer_id)
        .bind(at - ROLLING_WINDOW_MS)
        .bind(at)
        .fetch_one(self.pool())
        .await?)
    }

    /// How many members hold each tier.
    pub async fn tier_counts(&self, shop_id: i64) -> StoreResult<Vec<(String, i64)>> {
        let rows: Vec<(String, i64)> =
            sqlx::query_as("SELECT tier, COUNT(*) FROM members WHERE shop_id = $1 GROUP BY tier ORDER BY tier")
                .bind(shop_id)
                .fetch_all(self.pool())
                .await?;
        Ok(rows)
    }
}
