//! How long a product lasts: the median time between one customer's purchases of the
//! same product, learned from the shop's orders, so that the replenishment journey can
//! remind a customer when what they bought is due to run out.
//!
//! A product needs [`MIN_SAMPLES`] repurchase gaps of its own; otherwise it takes its
//! category's median (over every product of the category) when the category has that
//! many. Purchases less than a day apart are one shopping trip, not a repurchase.
//! Products nobody buys twice get no interval and no reminder: equipment is told from
//! consumables by how the shop's customers behave.

use std::collections::HashMap;

use serde::Serialize;
use sqlx::{AnyConnection, Row};

use super::bulk::{AnyQuery, BulkRow, insert_many};
use super::{Db, StoreResult, now_ms};

/// Repurchase gaps a product (or its category) needs before its median is trusted.
pub const MIN_SAMPLES: usize = 3;
/// The shortest and longest interval kept, in days.
pub const MIN_DAYS: i64 = 1;
pub const MAX_DAYS: i64 = 365;
const DAY_MS: i64 = 24 * 60 * 60 * 1000;

/// A product's learned interval, as the `order.placed` trigger carries it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Interval {
    pub product_id: String,
    pub days: i64,
    /// Repurchase gaps it was learned from (the category's, when `from_category`).
    pub samples: i64,
    pub from_category: bool,
    /// The product's page, when the catalogue has it (read back only, not stored here).
    pub url: Option<String>,
}

/// What one learning run found.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct LearnReport {
    /// Products with an interval of their own.
    pub products: u64,
    /// Products given their category's interval.
    pub from_category: u64,
}

impl BulkRow for Interval {
    const TABLE: &'static str = "product_intervals";
    const COLUMNS: &'static [&'static str] =
        &["shop_id", "product_id", "days", "samples", "from_category", "learned_at"];

    fn bind<'q>(&'q self, shop_id: i64, query: AnyQuery<'q>) -> AnyQuery<'q> {
        query
            .bind(shop_id)
            .bind(self.product_id.as_str())
            .bind(self.days)
            .bind(self.samples)
            .bind(i64::from(self.from_category))
            .bind(now_ms())
    }
}

/// The median of `gaps` (unix ms) in whole days within [`MIN_DAYS`]..=[`MAX_DAYS`].
fn median_days(gaps: &mut [i64]) -> i64 {
    gaps.sort_unstable();
    let mid = gaps.len() / 2;
    let median =
        if gaps.len().is_multiple_of(2) { (gaps[mid - 1] / 2).saturating_add(gaps[mid] / 2) } else { gaps[mid] };
    (median.saturating_add(DAY_MS / 2) / DAY_MS).clamp(MIN_DAYS, MAX_DAYS)
}

/// One purchase of a product by a customer, in (customer, product, time) order.
struct Purchase {
    customer_id: i64,
    product_id: String,
    category: Option<String>,
    placed_at: i64,
}

/// Every product's interval from `purchases`, sorted by customer, product and time.
fn intervals(purchases: impl IntoIterator<Item = Purchase>) -> Vec<Interval> {
    let mut by_product: HashMap<String, Vec<i64>> = HashMap::new();
    let mut by_category: HashMap<String, Vec<i64>> = HashMap::new();
    let mut category_of: HashMap<String, String> = HashMap::new();
    let mut previous: Option<Purchase> = None;
    for purchase in purchases {
        if let Some(category) = &purchase.category {
            category_of.insert(purchase.product_id.clone(), category.clone());
        }
        if let Some(prev) = &previous
            && prev.customer_id == purchase.customer_id
            && prev.product_id == purchase.product_id
        {
            let gap = purchase.placed_at - prev.placed_at;
            if gap < DAY_MS {
                continue; // The same trip: keep the first purchase as the reference.
            }
            by_product.entry(purchase.product_id.clone()).or_default().push(gap);
            if let Some(category) = &purchase.category {
                by_category.entry(category.clone()).or_default().push(gap);
            }
        } else {
            by_product.entry(purchase.product_id.clone()).or_default();
        }
        previous = Some(purchase);
    }
    let category_days: HashMap<String, (i64, i64)> = by_category
        .into_iter()
        .filter(|(_, gaps)| gaps.len() >= MIN_SAMPLES)
        .map(|(category, mut gaps)| (category, (median_days(&mut gaps), gaps.len() as i64)))
        .collect();
    let mut learned: Vec<Interval> = by_product
        .into_iter()
        .filter_map(|(product_id, mut gaps)| {
            if gaps.len() >= MIN_SAMPLES {
                let samples = gaps.len() as i64;
                let days = median_days(&mut gaps);
                return Some(Interval { days, samples, from_category: false, product_id, url: None });
            }
            let &(days, samples) = category_days.get(category_of.get(&product_id)?)?;
            Some(Interval { product_id, days, samples, from_category: true, url: None })
        })
        .collect();
    learned.sort_by(|a, b| a.product_id.cmp(&b.product_id));
    learned
}

/// The learned intervals of `product_ids` that have one.
pub(crate) async fn intervals_of(
    conn: &mut AnyConnection,
    shop_id: i64,
    product_ids: &[&str],
) -> StoreResult<Vec<Interval>> {
    if product_ids.is_empty() {
        return Ok(Vec::new());
    }
    let placeholders = super::recommendations::placeholders(2, product_ids.len());
    let sql = format!(
        "SELECT i.product_id, i.days, i.samples, i.from_category, p.url FROM product_intervals i \
         LEFT JOIN products p ON p.shop_id = i.shop_id AND p.id = i.product_id \
         WHERE i.shop_id = $1 AND i.product_id IN ({placeholders}) ORDER BY i.product_id"
    );
    let query = product_ids.iter().fold(sqlx::query(&sql).bind(shop_id), |q, id| q.bind(*id));
    let rows = query.fetch_all(conn).await?;
    rows.iter()
        .map(|row| {
            Ok(Interval {
                product_id: row.try_get("product_id")?,
                days: row.try_get("days")?,
                samples: row.try_get("samples")?,
                from_category: row.try_get::<i64, _>("from_category")? == 1,
                url: row.try_get("url")?,
            })
        })
        .collect()
}

impl Db {
    /// Learns every product's repurchase interval from the shop's purchases and replaces
    /// the stored ones.
    pub async fn learn_repurchase_intervals(&self, shop_id: i64) -> StoreResult<LearnReport> {
        let rows = sqlx::query(
            "SELECT o.customer_id, l.product_id, l.category, o.placed_at FROM order_lines l \
             JOIN orders o ON o.shop_id = l.shop_id AND o.id = l.order_id \
             WHERE l.shop_id = $1 AND o.status IN ('paid', 'fulfilled') AND o.customer_id IS NOT NULL \
             AND l.product_id IS NOT NULL \
             ORDER BY o.customer_id, l.product_id, o.placed_at",
        )
        .bind(shop_id)
        .fetch_all(self.pool())
        .await?;
        let purchases = rows
            .iter()
            .map(|row| {
                Ok(Purchase {
                    customer_id: row.try_get("customer_id")?,
                    product_id: row.try_get("product_id")?,
                    category: row.try_get("category")?,
                    placed_at: row.try_get("placed_at")?,
                })
            })
            .collect::<StoreResult<Vec<_>>>()?;
        let learned = intervals(purchases);
        let report = LearnReport {
            products: learned.iter().filter(|i| !i.from_category).count() as u64,
            from_category: learned.iter().filter(|i| i.from_category).count() as u64,
        };
        let mut w = self.write().await?;
        sqlx::query("DELETE FROM product_intervals WHERE shop_id = $1").bind(shop_id).execute(&mut *w.tx).await?;
        insert_many(&mut w.tx, shop_id, &learned).await?;
        w.commit().await?;
        Ok(report)
    }

    /// The learned intervals of `product_ids` that have one.
    pub async fn repurchase_intervals(&self, shop_id: i64, product_ids: &[&str]) -> StoreResult<Vec<Interval>> {
        let mut conn = self.pool().acquire().await?;
        intervals_of(&mut conn, shop_id, product_ids).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn buy(customer_id: i64, product: &str, category: Option<&str>, day: i64) -> Purchase {
        Purchase {
            customer_id,
            product_id: product.into(),
            category: category.map(str::to_owned),
            placed_at: day * DAY_MS,
        }
    }

    #[test]
    fn a_product_bought_again_and_again_gets_its_median_gap() {
        let purchases = vec![
            buy(1, "beans", Some("Coffee"), 0),
            buy(1, "beans", Some("Coffee"), 30),
            buy(1, "beans", Some("Coffee"), 30), // same trip: not a repurchase
            buy(1, "beans", Some("Coffee"), 58),
            buy(2, "beans", Some("Coffee"), 10),
            buy(2, "beans", Some("Coffee"), 45),
            buy(2, "kettle", Some("Kettles"), 10),
            buy(3, "kettle", Some("Kettles"), 10),
        ];
        let learned = intervals(purchases);
        assert_eq!(
            learned,
            [Interval { product_id: "beans".into(), days: 30, samples: 3, from_category: false, url: None }],
            "gaps 30, 28 and 35: median 30; nobody bought the kettle twice"
        );
    }

    #[test]
    fn a_product_with_too_few_repurchases_takes_its_categorys_interval() {
        let mut purchases = Vec::new();
        for customer in 1..=4 {
            purchases.push(buy(customer, "beans", Some("Coffee"), 0));
            purchases.push(buy(customer, "beans", Some("Coffee"), 20 + customer));
        }
        purchases.push(buy(9, "decaf", Some("Coffee"), 5));
        purchases.push(buy(9, "decaf", Some("Coffee"), 90));
        purchases.sort_by(|a, b| {
            (a.customer_id, &a.product_id, a.placed_at).cmp(&(b.customer_id, &b.product_id, b.placed_at))
        });
        let learned = intervals(purchases);
        let decaf = learned.iter().find(|i| i.product_id == "decaf").expect("decaf");
        // Coffee's gaps: 21, 22, 23, 24 (beans) and 85 (decaf): median 23.
        assert_eq!((decaf.days, decaf.samples, decaf.from_category), (23, 5, true));
        let beans = learned.iter().find(|i| i.product_id == "beans").expect("beans");
        assert_eq!((beans.days, beans.from_category), (23, false), "21..24: median (22 + 23) / 2, rounded");
    }

    #[test]
    fn medians_stay_within_a_day_and_a_year() {
        assert_eq!(median_days(&mut [DAY_MS, DAY_MS + 1, DAY_MS + 2]), 1);
        assert_eq!(median_days(&mut [900 * DAY_MS; 3]), MAX_DAYS);
        assert_eq!(median_days(&mut [i64::MAX, i64::MAX]), MAX_DAYS, "no overflow");
    }
}
