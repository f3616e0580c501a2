//! Predictions: the model each predictor install fitted, the inputs a fit reads
//! (customers' order statistics, and for evaluation their purchase history), and
//! every customer's latest predictions.

use std::collections::HashMap;

use serde::Serialize;
use sqlx::Row;

use super::{Backend, Db, StoreResult, now_ms};

/// A customer's order statistics, as a fit or a prediction takes them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PredictionInput {
    pub customer_id: i64,
    pub order_count: u32,
    pub total_spent: i64,
    pub first_order_at: i64,
    pub last_order_at: i64,
}

/// One purchase, for evaluation: who, when, how much (net of refunds).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Purchase {
    pub customer_id: i64,
    pub placed_at: i64,
    pub amount: i64,
}

/// A customer's latest predictions, as stored and as the API shows them.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct CustomerPrediction {
    #[serde(skip)]
    pub customer_id: i64,
    /// The predictor install that made them.
    pub plugin: String,
    /// The time they are as of (unix ms).
    pub predicted_at: i64,
    pub p_alive: f64,
    pub expected_purchases_30d: f64,
    pub expected_purchases_90d: f64,
    pub expected_purchases_365d: f64,
    /// Minor units.
    pub expected_order_value: i64,
    /// Minor units.
    pub clv: i64,
}

/// The predictions' columns in segment exports, and their cells for one customer
/// (empty for a customer without predictions).
pub const EXPORT_COLUMNS: &str = "p_alive,expected_purchases_365d,clv";

pub fn export_cells(prediction: Option<&CustomerPrediction>) -> [String; 3] {
    match prediction {
        Some(p) => [p.p_alive.to_string(), p.expected_purchases_365d.to_string(), p.clv.to_string()],
        None => Default::default(),
    }
}

/// A fitted model as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredPredictionModel {
    pub model: Vec<u8>,
    pub fitted_at: i64,
    pub as_of: i64,
    pub customers: i64,
}

/// Rows per multi-row upsert: 10 parameters each stays well below both backends' limits.
const ROWS_PER_UPSERT: usize = 500;

impl Db {
    /// Customers with at least one purchase and ids after `after`, by id, at most `limit`.
    pub async fn prediction_inputs_page(
        &self,
        shop_id: i64,
        after: i64,
        limit: i64,
    ) -> StoreResult<Vec<PredictionInput>> {
        let rows = sqlx::query(
            "SELECT id, order_count, total_spent, first_order_at, last_order_at FROM customers \
             WHERE shop_id = $1 AND id > $2 AND order_count > 0 AND first_order_at IS NOT NULL \
             AND merged_into IS NULL ORDER BY id LIMIT $3",
        )
        .bind(shop_id)
        .bind(after)
        .bind(limit)
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|row| {
                let first: i64 = row.try_get(3)?;
                Ok(PredictionInput {
                    customer_id: row.try_get(0)?,
                    order_count: u32::try_from(row.try_get::<i64, _>(1)?).unwrap_or(u32::MAX),
                    total_spent: row.try_get(2)?,
                    first_order_at: first,
                    last_order_at: row.try_get::<Option<i64>, _>(4)?.unwrap_or(first),
                })
            })
            .collect()
    }

    /// Every purchase of the shop's customers (paid or fulfilled, net of refunds, fully
    /// refunded ones left out), ordered by customer then time.
    pub async fn purchases(&self, shop_id: i64) -> StoreResult<Vec<Purchase>> {
        let rows: Vec<(i64, i64, i64)> = sqlx::query_as(
            "SELECT o.customer_id, o.placed_at, o.total - o.refunded FROM orders o \
             WHERE o.shop_id = $1 AND o.customer_id IS NOT NULL AND o.status IN ('paid', 'fulfilled') \
             ORDER BY o.customer_id, o.placed_at",
        )
        .bind(shop_id)
        .fetch_all(self.pool())
        .await?;
        Ok(rows
            .into_iter()
            .map(|(customer_id, placed_at, amount)| Purchase { customer_id, placed_at, amount })
            .collect())
    }

    /// Stores the model an install's fit returned, replacing the previous one.
    pub async fn save_prediction_model(
        &self,
        shop_id: i64,
        plugin: &str,
        model: &[u8],
        as_of: i64,
        customers: i64,
    ) -> StoreResult<i64> {
        let fitted_at = now_ms();
        let mut w = self.write().await?;
        sqlx::query(
            "INSERT INTO prediction_models (shop_id, plugin, model_hex, fitted_at, as_of, customers) \
             VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (shop_id, plugin) DO UPDATE SET \
             model_hex = excluded.model_hex, fitted_at = excluded.fitted_at, as_of = excluded.as_of, \
             customers = excluded.customers",
        )
        .bind(shop_id)
        .bind(plugin)
        .bind(hex::encode(model))
        .bind(fitted_at)
        .bind(as_of)
        .bind(customers)
        .execute(&mut *w.tx)
        .await?;
        w.commit().await?;
        Ok(fitted_at)
    }

    /// An install's stored model, if it was ever fitted.
    pub async fn prediction_model(&self, shop_id: i64, plugin: &str) -> StoreResult<Option<StoredPredictionModel>> {
        let row: Option<(String, i64, i64, i64)> = sqlx::query_as(
            "SELECT model_hex, fitted_at, as_of, customers FROM prediction_models WHERE shop_id = $1 AND plugin = $2",
        )
        .bind(shop_id)
        .bind(plugin)
        .fetch_optional(self.pool())
        .await?;
        row.map(|(hex_model, fitted_at, as_of, customers)| {
            let model = hex::decode(&hex_model)
                .map_err(|e| super::StoreError::Corrupt(format!("prediction model of {plugin}: {e}")))?;
            Ok(StoredPredictionModel { model, fitted_at, as_of, customers })
        })
        .transpose()
    }

    /// Writes customers' latest predictions from one install (replacing theirs).
    pub async fn save_predictions(&self, shop_id: i64, predictions: &[CustomerPrediction]) -> StoreResult<()> {
        let numbered = self.backend() == Backend::Postgres;
        let mut w = self.write().await?;
        for chunk in predictions.chunks(ROWS_PER_UPSERT) {
            let sql = format!(
                "INSERT INTO customer_predictions (shop_id, customer_id, plugin, predicted_at, p_alive, purchases_30, \
                 purchases_90, purchases_365, expected_order_value, clv) VALUES {} \
                 ON CONFLICT (shop_id, customer_id, plugin) DO UPDATE SET predicted_at = excluded.predicted_at, \
                 p_alive = excluded.p_alive, purchases_30 = excluded.purchases_30, purchases_90 = excluded.purchases_90, \
                 purchases_365 = excluded.purchases_365, expected_order_value = excluded.expected_order_value, \
                 clv = excluded.clv",
                super::bulk::value_tuples(numbered, chunk.len(), 10)
            );
            let mut query = sqlx::query(&sql);
            for p in chunk {
                query = query
                    .bind(shop_id)
                    .bind(p.customer_id)
                    .bind(&p.plugin)
                    .bind(p.predicted_at)
                    .bind(p.p_alive)
                    .bind(p.expected_purchases_30d)
                    .bind(p.expected_purchases_90d)
                    .bind(p.expected_purchases_365d)
                    .bind(p.expected_order_value)
                    .bind(p.clv);
            }
            query.execute(&mut *w.tx).await?;
        }
        w.commit().await
    }

    /// A customer's latest predictions (the most recent install's when several predict).
    pub async fn customer_prediction(&self, shop_id: i64, customer_id: i64) -> StoreResult<Option<CustomerPrediction>> {
        Ok(self.predictions_of_customers(shop_id, &[customer_id]).await?.remove(&customer_id))
    }

    /// [`Self::customer_prediction`] for each of these customers that has any.
    pub async fn predictions_of_customers(
        &self,
        shop_id: i64,
        ids: &[i64],
    ) -> StoreResult<std::collections::HashMap<i64, CustomerPrediction>> {
        let mut latest = std::collections::HashMap::new();
        for chunk in ids.chunks(1_000) {
            let sql = format!(
                "SELECT customer_id, plugin, predicted_at, p_alive, purchases_30, purchases_90, purchases_365, \
                 expected_order_value, clv FROM customer_predictions WHERE shop_id = $1 AND customer_id IN ({}) \
                 ORDER BY customer_id, predicted_at DESC, plugin",
                super::recommendations::placeholders(2, chunk.len())
            );
            let mut query = sqlx::query(&sql).bind(shop_id);
            for id in chunk {
                query = query.bind(*id);
            }
            for row in query.fetch_all(self.pool()).await? {
                let customer_id: i64 = row.try_get(0)?;
                if latest.contains_key(&customer_id) {
                    continue; // An older install's predictions.
                }
                let prediction = CustomerPrediction {
                    customer_id,
                    plugin: row.try_get(1)?,
                    predicted_at: row.try_get(2)?,
                    p_alive: row.try_get(3)?,
                    expected_purchases_30d: row.try_get(4)?,
                    expected_purchases_90d: row.try_get(5)?,
                    expected_purchases_365d: row.try_get(6)?,
                    expected_order_value: row.try_get(7)?,
                    clv: row.try_get(8)?,
                };
                latest.insert(customer_id, prediction);
            }
        }
        Ok(latest)
    }

    /// Per known customer, how many events of each of `kinds` occurred in `[from, to)`
    /// (one count per kind, in order).
    pub async fn event_counts(
        &self,
        shop_id: i64,
        kinds: &[&str],
        from: i64,
        to: i64,
    ) -> StoreResult<HashMap<i64, Vec<u32>>> {
        let rows: Vec<(i64, String, i64)> = sqlx::query_as(
            "SELECT customer_id, kind, COUNT(*) FROM events WHERE shop_id = $1 AND customer_id IS NOT NULL \
             AND occurred_at >= $2 AND occurred_at < $3 GROUP BY customer_id, kind",
        )
        .bind(shop_id)
        .bind(from)
        .bind(to)
        .fetch_all(self.pool())
        .await?;
        let mut counts: HashMap<i64, Vec<u32>> = HashMap::new();
        for (customer_id, kind, count) in rows {
            if let Some(k) = kinds.iter().position(|name| *name == kind) {
                counts.entry(customer_id).or_insert_with(|| vec![0; kinds.len()])[k] =
                    u32::try_from(count).unwrap_or(u32::MAX);
            }
        }
        Ok(counts)
    }

    /// Per customer, the net points (earned minus spent or expired) recorded in `[from, to)`.
    pub async fn points_net(&self, shop_id: i64, from: i64, to: i64) -> StoreResult<HashMap<i64, i64>> {
        let rows: Vec<(i64, i64)> = sqlx::query_as(
            "SELECT customer_id, CAST(COALESCE(SUM(delta), 0) AS BIGINT) FROM points_ledger WHERE shop_id = $1 \
             AND created_at >= $2 AND created_at < $3 GROUP BY customer_id",
        )
        .bind(shop_id)
        .bind(from)
        .bind(to)
        .fetch_all(self.pool())
        .await?;
        Ok(rows.into_iter().collect())
    }
}
