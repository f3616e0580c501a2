//! The RFM grid: customers with a purchase scored 1–5 on recency and frequency by rank,
//! counted per cell, and the customers of one cell.

use serde::Serialize;
use sqlx::Row;
use sqlx::any::AnyRow;

use crate::store::{Db, StoreResult};
use crate::timestamp::to_rfc3339;

pub const SCORES: std::ops::RangeInclusive<i64> = 1..=5;

#[derive(Debug, Clone, Serialize, PartialEq, Eq, utoipa::ToSchema)]
pub struct RfmGrid {
    pub customers: i64,
    /// All 25 cells, R descending then F descending.
    pub cells: Vec<RfmCell>,
}

#[derive(Debug, Clone, Copy, Serialize, PartialEq, Eq, utoipa::ToSchema)]
pub struct RfmCell {
    pub r: i64,
    pub f: i64,
    pub customers: i64,
    /// Their net spend to date, minor units.
    pub spent: i64,
}

#[derive(Debug, Clone, Serialize, PartialEq, Eq, utoipa::ToSchema)]
pub struct CellCustomer {
    pub id: String,
    pub external_id: Option<String>,
    pub email: Option<String>,
    pub name: Option<String>,
    pub order_count: i64,
    pub total_spent: i64,
    pub last_order_at: Option<String>,
}

#[derive(Debug, Clone, Serialize, PartialEq, Eq, utoipa::ToSchema)]
pub struct CellPage {
    pub r: i64,
    pub f: i64,
    pub customers: Vec<CellCustomer>,
    /// Pass as `after` for the next page; null on the last.
    pub next_after: Option<String>,
}

/// Where the scores change: a customer scores `k` or more when their value is above
/// `above[k - 2]`. Score = 1 + floor(5 (rank - 1) / n) with rank = 1 + the customers
/// below, so it reaches k when at least m = ceil((k - 1) n / 5) customers are below, that
/// is when the value is above the m-th smallest.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Thresholds {
    above: [i64; 4],
}

impl Thresholds {
    /// The 0-based positions of the m-th smallest values for scores 2 to 5 of `n` values.
    fn positions(n: i64) -> [i64; 4] {
        [1, 2, 3, 4].map(|k| (k * n + 4) / 5 - 1)
    }

    fn score(&self, value: i64) -> i64 {
        1 + self.above.iter().map(|&t| i64::from(value > t)).sum::<i64>()
    }

    /// The values scoring `score`: (lower exclusive, upper inclusive) bounds.
    fn range(&self, score: i64) -> (i64, i64) {
        let at = |k: i64| usize::try_from(k - 2).ok().and_then(|i| self.above.get(i).copied());
        (at(score).unwrap_or(i64::MIN), at(score + 1).unwrap_or(i64::MAX))
    }
}

impl Db {
    /// The thresholds of recency (last purchase) and frequency (purchases) over the shop's
    /// purchasing customers (`customer_rollups`), and how many there are.
    async fn rfm_thresholds(&self, shop_id: i64) -> StoreResult<(i64, Thresholds, Thresholds)> {
        // Frequencies are few: their histogram, in index order.
        let counts: Vec<(i64, i64)> = sqlx::query_as(
            "SELECT purchases, COUNT(*) FROM customer_rollups WHERE shop_id = $1 GROUP BY purchases ORDER BY purchases",
        )
        .bind(shop_id)
        .fetch_all(self.pool())
        .await?;
        let n: i64 = counts.iter().map(|&(_, c)| c).sum();
        let positions = Thresholds::positions(n);
        let frequency = Thresholds {
            above: positions.map(|position| {
                let mut seen = 0;
                counts
                    .iter()
                    .find(|&&(_, c)| {
                        seen += c;
                        seen > position
                    })
                    .map_or(i64::MAX, |&(purchases, _)| purchases)
            }),
        };
        let mut recency = Thresholds { above: [i64::MAX; 4] };
        if n > 0 {
            for (slot, position) in recency.above.iter_mut().zip(positions) {
                *slot = sqlx::query_scalar(
                    "SELECT last_at FROM customer_rollups WHERE shop_id = $1 ORDER BY last_at LIMIT 1 OFFSET $2",
                )
                .bind(shop_id)
                .bind(position)
                .fetch_one(self.pool())
                .await?;
            }
        }
        Ok((n, recency, frequency))
    }

    pub async fn analytics_rfm(&self, shop_id: i64) -> StoreResult<RfmGrid> {
        let (_, recency, frequency) = self.rfm_thresholds(shop_id).await?;
        // Per frequency, the customers and their spend in each recency score, in one pass.
        let mut columns = Vec::new();
        for r in SCORES {
            let (above, upto) = recency.range(r);
            let when = format!("last_at > {above} AND last_at <= {upto}");
            columns.push(format!("CAST(COALESCE(SUM(CASE WHEN {when} THEN 1 ELSE 0 END), 0) AS BIGINT)"));
            columns.push(format!("CAST(COALESCE(SUM(CASE WHEN {when} THEN spent ELSE 0 END), 0) AS BIGINT)"));
        }
        let rows = sqlx::query(&format!(
            "SELECT purchases, {} FROM customer_rollups WHERE shop_id = $1 GROUP BY purchases",
            columns.join(", ")
        ))
        .bind(shop_id)
        .fetch_all(self.pool())
        .await?;
        let mut grid = [[(0i64, 0i64); 5]; 5];
        for row in &rows {
            let f = frequency.score(row.try_get(0)?);
            for r in SCORES {
                let i = usize::try_from(2 * r - 1).unwrap_or_default();
                let cell =
                    &mut grid[usize::try_from(r - 1).unwrap_or_default()][usize::try_from(f - 1).unwrap_or_default()];
                cell.0 += row.try_get::<i64, _>(i)?;
                cell.1 += row.try_get::<i64, _>(i + 1)?;
            }
        }
        let cells: Vec<RfmCell> = SCORES
            .rev()
            .flat_map(|r| SCORES.rev().map(move |f| (r, f)))
            .map(|(r, f)| {
                let (customers, spent) =
                    grid[usize::try_from(r - 1).unwrap_or_default()][usize::try_from(f - 1).unwrap_or_default()];
                RfmCell { r, f, customers, spent }
            })
            .collect();
        Ok(RfmGrid { customers: cells.iter().map(|c| c.customers).sum(), cells })
    }

    /// One page of the customers of cell (`r`, `f`) in id order, after id `after`.
    pub async fn analytics_rfm_cell(
        &self,
        shop_id: i64,
        r: i64,
        f: i64,
        after: Option<i64>,
        limit: i64,
    ) -> StoreResult<CellPage> {
        let (_, recency, frequency) = self.rfm_thresholds(shop_id).await?;
        let (last_above, last_upto) = recency.range(r);
        let (purchases_above, purchases_upto) = frequency.range(f);
        let rows: Vec<AnyRow> = sqlx::query(
            "SELECT c.id, c.external_id, c.email, c.first_name, c.last_name, r.purchases AS order_count, \
                    r.spent AS total_spent, r.last_at AS last_order_at \
             FROM customer_rollups r JOIN customers c ON c.shop_id = r.shop_id AND c.id = r.customer_id \
             WHERE r.shop_id = $1 AND r.last_at > $2 AND r.last_at <= $3 AND r.purchases > $4 AND r.purchases <= $5 \
               AND r.customer_id > $6 ORDER BY r.customer_id LIMIT $7",
        )
        .bind(shop_id)
        .bind(last_above)
        .bind(last_upto)
        .bind(purchases_above)
        .bind(purchases_upto)
        .bind(after.unwrap_or(-1))
        .bind(limit + 1)
        .fetch_all(self.pool())
        .await?;
        let mut customers = rows.iter().map(cell_customer).collect::<Result<Vec<_>, sqlx::Error>>()?;
        let more = i64::try_from(customers.len()).unwrap_or(i64::MAX) > limit;
        if more {
            customers.pop();
        }
        let next_after = if more { customers.last().map(|c| c.id.clone()) } else { None };
        Ok(CellPage { r, f, customers, next_after })
    }
}

fn cell_customer(row: &AnyRow) -> Result<CellCustomer, sqlx::Error> {
    let first: Option<String> = row.try_get("first_name")?;
    let last: Option<String> = row.try_get("last_name")?;
    let name = match (first, last) {
        (Some(first), Some(last)) => Some(format!("{first} {last}")),
        (first, last) => first.or(last),
    };
    Ok(CellCustomer {
        id: row.try_get::<i64, _>("id")?.to_string(),
        external_id: row.try_get("external_id")?,
        email: row.try_get("email")?,
        name,
        order_count: row.try_get("order_count")?,
        total_spent: row.try_get("total_spent")?,
        last_order_at: row.try_get::<Option<i64>, _>("last_order_at")?.map(to_rfc3339),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The scores the rank formula gives, by brute force.
    fn by_rank(values: &[i64]) -> Vec<i64> {
        let n = values.len() as i64;
        values.iter().map(|v| 1 + 5 * values.iter().filter(|w| *w < v).count() as i64 / n).collect()
    }

    #[test]
    fn thresholds_score_as_ranks_do() {
        for values in [vec![1, 1, 1, 2, 3, 5, 8, 8, 9], vec![7], vec![1, 2], (0..23).map(|i| i / 3).collect()] {
            let mut sorted = values.clone();
            sorted.sort_unstable();
            let n = sorted.len() as i64;
            let thresholds =
                Thresholds { above: Thresholds::positions(n).map(|p| sorted[usize::try_from(p).expect("position")]) };
            let scores: Vec<i64> = values.iter().map(|&v| thresholds.score(v)).collect();
            assert_eq!(scores, by_rank(&values), "{values:?}");
            for (&v, &score) in values.iter().zip(&scores) {
                let (above, upto) = thresholds.range(score);
                assert!(v > above && v <= upto, "{v} in score {score}: ({above}, {upto}]");
            }
        }
    }
}
