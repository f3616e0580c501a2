//! Recommendation models kept per (shop, recommender install), and the bounded reads of
//! a shopper's recent behaviour that serving a recommendation needs.

use std::collections::HashMap;

use sqlx::Row;

use super::orders::{Order, OrderLine};
use super::products::Product;
use super::{Db, StoreError, StoreResult, now_ms};

/// A trained model as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredModel {
    pub model: Vec<u8>,
    /// When the training run that built it finished (unix ms).
    pub built_at: i64,
    pub orders_seen: i64,
}

/// A product the shopper bought or viewed, and when (unix ms).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Touch {
    pub product_id: String,
    pub at: i64,
}

/// `$first, $first+1, …` for `count` parameters.
pub(super) fn placeholders(first: usize, count: usize) -> String {
    (first..first + count).map(|n| format!("${n}")).collect::<Vec<_>>().join(", ")
}

/// An install's last offline evaluation: its report as JSON, and when it was stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredEvaluation {
    pub plugin: String,
    pub evaluated_at: i64,
    pub report: String,
}

impl Db {
    /// Keeps an install's offline evaluation report (JSON), replacing the previous one.
    pub async fn save_recommendation_evaluation(&self, shop_id: i64, plugin: &str, report: &str) -> StoreResult<()> {
        let mut w = self.write().await?;
        sqlx::query(
            "INSERT INTO recommendation_evaluations (shop_id, plugin, evaluated_at, report) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (shop_id, plugin) DO UPDATE SET evaluated_at = excluded.evaluated_at, report = excluded.report",
        )
        .bind(shop_id)
        .bind(plugin)
        .bind(now_ms())
        .bind(report)
        .execute(&mut *w.tx)
        .await?;
        w.commit().await
    }

    /// The last offline evaluation of each of the shop's recommender installs, by plugin.
    pub async fn recommendation_evaluations(&self, shop_id: i64) -> StoreResult<Vec<StoredEvaluation>> {
        let rows: Vec<(String, i64, String)> = sqlx::query_as(
            "SELECT plugin, evaluated_at, report FROM recommendation_evaluations WHERE shop_id = $1 ORDER BY plugin",
        )
        .bind(shop_id)
        .fetch_all(self.pool())
        .await?;
        Ok(rows
            .into_iter()
            .map(|(plugin, evaluated_at, report)| StoredEvaluation { plugin, evaluated_at, report })
            .collect())
    }

    /// Stores the model an install's training run built, replacing the previous one;
    /// returns its `built_at`.
    pub async fn save_recommendation_model(
        &self,
        shop_id: i64,
        plugin: &str,
        model: &[u8],
        orders_seen: i64,
    ) -> StoreResult<i64> {
        let built_at = now_ms();
        let mut w = self.write().await?;
        sqlx::query(
            "INSERT INTO recommendation_models (shop_id, plugin, model_hex, built_at, orders_seen) VALUES ($1, $2, $3, $4, $5) \
             ON CONFLICT (shop_id, plugin) DO UPDATE SET model_hex = excluded.model_hex, built_at = excluded.built_at, \
             orders_seen = excluded.orders_seen",
        )
        .bind(shop_id)
        .bind(plugin)
        .bind(hex::encode(model))
        .bind(built_at)
        .bind(orders_seen)
        .execute(&mut *w.tx)
        .await?;
        w.commit().await?;
        Ok(built_at)
    }

    /// When an install's stored model was built, without reading the model.
    pub async fn recommendation_model_built_at(&self, shop_id: i64, plugin: &str) -> StoreResult<Option<i64>> {
        Ok(sqlx::query_scalar("SELECT built_at FROM recommendation_models WHERE shop_id = $1 AND plugin = $2")
            .bind(shop_id)
            .bind(plugin)
            .fetch_optional(self.pool())
            .await?)
    }

    /// An install's stored model, if it was ever trained.
    pub async fn recommendation_model(&self, shop_id: i64, plugin: &str) -> StoreResult<Option<StoredModel>> {
        let row = sqlx::query(
            "SELECT model_hex, built_at, orders_seen FROM recommendation_models WHERE shop_id = $1 AND plugin = $2",
        )
        .bind(shop_id)
        .bind(plugin)
        .fetch_optional(self.pool())
        .await?;
        let Some(row) = row else { return Ok(None) };
        let model_hex: String = row.try_get("model_hex")?;
        Ok(Some(StoredModel {
            model: hex::decode(model_hex).map_err(|e| StoreError::Corrupt(format!("recommendation model: {e}")))?,
            built_at: row.try_get("built_at")?,
            orders_seen: row.try_get("orders_seen")?,
        }))
    }

    /// A page of the shop's purchases (paid or fulfilled orders) with their lines, in
    /// order id order, after `after`; feed the last id back for the next page.
    pub async fn paid_orders_page(&self, shop_id: i64, after: Option<&str>, limit: i64) -> StoreResult<Vec<Order>> {
        let rows = sqlx::query(
            "SELECT id, customer_id, status, currency, subtotal, discount, shipping, tax, total, refunded, coupon_codes, \
             placed_at FROM orders WHERE shop_id = $1 AND status IN ('paid', 'fulfilled') AND id > $2 ORDER BY id LIMIT $3",
        )
        .bind(shop_id)
        .bind(after.unwrap_or(""))
        .bind(limit)
        .fetch_all(self.pool())
        .await?;
        let (Some(first), Some(last)) = (rows.first(), rows.last()) else { return Ok(Vec::new()) };
        let (first, last): (String, String) = (first.try_get("id")?, last.try_get("id")?);
        let mut lines: HashMap<String, Vec<OrderLine>> = HashMap::new();
        let line_rows = sqlx::query(
            "SELECT order_id, product_id, sku, title, category, quantity, unit_price FROM order_lines \
             WHERE shop_id = $1 AND order_id >= $2 AND order_id <= $3 ORDER BY order_id, line_no",
        )
        .bind(shop_id)
        .bind(&first)
        .bind(&last)
        .fetch_all(self.pool())
        .await?;
        for r in &line_rows {
            lines.entry(r.try_get("order_id")?).or_default().push(OrderLine {
                product_id: r.try_get("product_id")?,
                sku: r.try_get("sku")?,
                title: r.try_get("title")?,
                category: r.try_get("category")?,
                quantity: r.try_get("quantity")?,
                unit_price: r.try_get("unit_price")?,
            });
        }
        rows.iter()
            .map(|row| {
                let id: String = row.try_get("id")?;
                super::orders::order_from_row(row, lines.remove(&id).unwrap_or_default())
            })
            .collect()
    }

    pub async fn count_paid_orders(&self, shop_id: i64) -> StoreResult<i64> {
        Ok(sqlx::query_scalar("SELECT COUNT(*) FROM orders WHERE shop_id = $1 AND status IN ('paid', 'fulfilled')")
            .bind(shop_id)
            .fetch_one(self.pool())
            .await?)
    }

    /// The distinct products a customer bought since `since` (paid or fulfilled orders),
    /// each with the time of its latest purchase, most recent first, at most `limit`.
    pub async fn recent_purchases(
        &self,
        shop_id: i64,
        customer_id: i64,
        since: i64,
        limit: i64,
    ) -> StoreResult<Vec<Touch>> {
        let rows = sqlx::query(
            // CROSS JOIN fixes SQLite's join order: orders by customer first. Left to choose,
            // it starts from `order_lines_product` and reads every line of the shop.
            "SELECT l.product_id AS product_id, MAX(o.placed_at) AS at FROM orders o \
             CROSS JOIN order_lines l WHERE l.shop_id = o.shop_id AND l.order_id = o.id \
             AND o.shop_id = $1 AND o.customer_id = $2 AND o.status IN ('paid', 'fulfilled') AND o.placed_at >= $3 \
             AND l.product_id IS NOT NULL GROUP BY l.product_id ORDER BY at DESC, product_id LIMIT $4",
        )
        .bind(shop_id)
        .bind(customer_id)
        .bind(since)
        .bind(limit)
        .fetch_all(self.pool())
        .await?;
        rows.iter().map(|r| Ok(Touch { product_id: r.try_get("product_id")?, at: r.try_get("at")? })).collect()
    }

    /// The distinct products a customer viewed before `before` (`product_view` events
    /// with a `product_id` property), each at its latest view, most recent first, read
    /// from at most their `limit` latest views.
    pub async fn recent_product_views(
        &self,
        shop_id: i64,
        customer_id: i64,
        before: i64,
        limit: i64,
    ) -> StoreResult<Vec<Touch>> {
        let rows = sqlx::query(
            "SELECT properties, occurred_at FROM events WHERE shop_id = $1 AND customer_id = $2 AND kind = 'product_view' \
             AND occurred_at < $3 ORDER BY occurred_at DESC LIMIT $4",
        )
        .bind(shop_id)
        .bind(customer_id)
        .bind(before)
        .bind(limit)
        .fetch_all(self.pool())
        .await?;
        let mut touches: Vec<Touch> = Vec::new();
        for row in &rows {
            let properties: String = row.try_get("properties")?;
            // Browser events are untrusted: a view without a usable product id is skipped.
            let Ok(value) = serde_json::from_str::<serde_json::Value>(&properties) else { continue };
            let Some(product_id) = value.get("product_id").and_then(|p| p.as_str()).filter(|p| !p.is_empty()) else {
                continue;
            };
            if touches.iter().any(|t| t.product_id == product_id) {
                continue;
            }
            touches.push(Touch { product_id: product_id.to_owned(), at: row.try_get("occurred_at")? });
        }
        Ok(touches)
    }

    /// The products among `ids` the shop knows, by id.
    pub async fn products_by_ids(&self, shop_id: i64, ids: &[String]) -> StoreResult<HashMap<String, Product>> {
        if ids.is_empty() {
            return Ok(HashMap::new());
        }
        let sql = format!(
            "SELECT id, title, price, currency, category, url, image_url, available FROM products \
             WHERE shop_id = $1 AND id IN ({})",
            placeholders(2, ids.len())
        );
        let mut query = sqlx::query(&sql).bind(shop_id);
        for id in ids {
            query = query.bind(id);
        }
        let rows = query.fetch_all(self.pool()).await?;
        rows.iter().map(|row| super::products::product_from_row(row).map(|p| (p.id.clone(), p))).collect()
    }
}
