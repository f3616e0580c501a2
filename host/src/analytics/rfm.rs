//! The RFM grid: customers with a purchase scored 1–5 on recency and frequency by rank,
//! counted per cell, and the customers of one cell.

use serde::Serialize;
use sqlx::Row;
use sqlx::any::AnyRow;

use crate::store::{Db, StoreResult};
use crate::timestamp::to_rfc3339;

pub const SCORES: std::ops::RangeInclusive<i64> = 1..=5;

/// Every purchasing customer with `r` and `f` scores. Equal values share the lowest rank,
/// so customers with the same last-order time or order count share a score.
const SCORED: &str = "WITH scored AS ( \
     SELECT c.id, c.external_id, c.email, c.first_name, c.last_name, c.order_count, c.total_spent, \
            c.last_order_at, \
            1 + (5 * (RANK() OVER (ORDER BY c.last_order_at) - 1)) / COUNT(*) OVER () AS r, \
            1 + (5 * (RANK() OVER (ORDER BY c.order_count) - 1)) / COUNT(*) OVER () AS f \
     FROM customers c WHERE c.shop_id = $1 AND c.order_count > 0 AND c.merged_into IS NULL) ";

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

impl Db {
    pub async fn analytics_rfm(&self, shop_id: i64) -> StoreResult<RfmGrid> {
        let rows: Vec<(i64, i64, i64, i64)> = sqlx::query_as(&format!(
            "{SCORED} SELECT r, f, COUNT(*), CAST(COALESCE(SUM(total_spent), 0) AS BIGINT) FROM scored GROUP BY r, f"
        ))
        .bind(shop_id)
        .fetch_all(self.pool())
        .await?;
        let cells: Vec<RfmCell> = SCORES
            .rev()
            .flat_map(|r| SCORES.rev().map(move |f| (r, f)))
            .map(|(r, f)| {
                let (customers, spent) = rows
                    .iter()
                    .find(|row| row.0 == r && row.1 == f)
                    .map_or((0, 0), |&(_, _, customers, spent)| (customers, spent));
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
        let rows: Vec<AnyRow> = sqlx::query(&format!(
            "{SCORED} SELECT id, external_id, email, first_name, last_name, order_count, total_spent, last_order_at \
             FROM scored WHERE r = $2 AND f = $3 AND id > $4 ORDER BY id LIMIT $5"
        ))
        .bind(shop_id)
        .bind(r)
        .bind(f)
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
