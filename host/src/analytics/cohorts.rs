//! Monthly acquisition cohorts: customers by the month of their first purchase, and the
//! share of each cohort that bought again in each later month.

use std::collections::HashMap;

use serde::Serialize;

use super::definitions::{PURCHASE, month_index, month_index_sql, month_start_ms};
use super::{Period, PeriodView, Rate};
use crate::store::{Db, StoreResult};

#[derive(Debug, Clone, Serialize, PartialEq, utoipa::ToSchema)]
pub struct Cohorts {
    pub period: PeriodView,
    pub cohorts: Vec<Cohort>,
}

#[derive(Debug, Clone, Serialize, PartialEq, utoipa::ToSchema)]
pub struct Cohort {
    /// `YYYY-MM` (UTC).
    pub month: String,
    pub customers: i64,
    /// Index k: customers of the cohort with a purchase in the k-th month after the
    /// first, over the cohort's size; up to the month the period ends in.
    pub retention: Vec<Rate>,
}

impl Db {
    /// The cohorts of the months `period` touches, their purchases counted up to its end.
    pub async fn analytics_cohorts(&self, shop_id: i64, period: Period) -> StoreResult<Cohorts> {
        let first_month = month_index(period.since);
        let last_month = month_index(period.until - 1);
        let from = month_start_ms(first_month);
        let first_purchase = month_index_sql(self.backend(), "c.first_order_at");
        let purchase_month = month_index_sql(self.backend(), "o.placed_at");
        let sizes: Vec<(i64, i64)> = sqlx::query_as(&format!(
            "SELECT {first_purchase}, COUNT(*) FROM customers c \
             WHERE c.shop_id = $1 AND c.first_order_at >= $2 AND c.first_order_at < $3 GROUP BY {first_purchase}"
        ))
        .bind(shop_id)
        .bind(from)
        .bind(period.until)
        .fetch_all(self.pool())
        .await?;
        let active: Vec<(i64, i64, i64)> = sqlx::query_as(&format!(
            "WITH firsts AS (SELECT c.id AS customer_id, {first_purchase} AS cohort FROM customers c \
                             WHERE c.shop_id = $1 AND c.first_order_at >= $2 AND c.first_order_at < $3), \
                  months AS (SELECT DISTINCT o.customer_id, {purchase_month} AS purchase_month FROM orders o \
                             WHERE o.shop_id = $1 AND {} AND o.customer_id IS NOT NULL \
                             AND o.placed_at >= $2 AND o.placed_at < $3) \
             SELECT f.cohort, m.purchase_month - f.cohort, COUNT(*) FROM firsts f \
             JOIN months m ON m.customer_id = f.customer_id \
             GROUP BY f.cohort, m.purchase_month - f.cohort",
            *PURCHASE
        ))
        .bind(shop_id)
        .bind(from)
        .bind(period.until)
        .fetch_all(self.pool())
        .await?;
        let sizes: HashMap<i64, i64> = sizes.into_iter().collect();
        let active: HashMap<(i64, i64), i64> =
            active.into_iter().map(|(cohort, since, customers)| ((cohort, since), customers)).collect();
        let cohorts = (first_month..=last_month)
            .map(|cohort| {
                let customers = sizes.get(&cohort).copied().unwrap_or(0);
                let retention = (0..=last_month - cohort)
                    .map(|since| Rate::new(active.get(&(cohort, since)).copied().unwrap_or(0), customers))
                    .collect();
                Cohort { month: month_label(cohort), customers, retention }
            })
            .collect();
        Ok(Cohorts { period: PeriodView::from(&Period { since: from, ..period }), cohorts })
    }
}

fn month_label(index: i64) -> String {
    format!("{:04}-{:02}", index.div_euclid(12), index.rem_euclid(12) + 1)
}
