//! Monthly acquisition cohorts: customers by the month of their first purchase, and the
//! share of each cohort that bought again in each later month.

use std::collections::HashMap;

use serde::Serialize;

use super::definitions::{month_index, month_start_ms};
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
    ///
    /// Counts each customer's first purchase of a month (`customer_purchases.month_first`),
    /// by the month of their first purchase ever and the month bought in; month 0 of a
    /// cohort is its size.
    pub async fn analytics_cohorts(&self, shop_id: i64, period: Period) -> StoreResult<Cohorts> {
        let first_month = month_index(period.since);
        let last_month = month_index(period.until - 1);
        let from = month_start_ms(first_month);
        let active: Vec<(i64, i64, i64)> = sqlx::query_as(
            "SELECT cohort, month - cohort, COUNT(*) FROM customer_purchases \
             WHERE shop_id = $1 AND month_first = 1 AND cohort >= $2 AND cohort <= $3 AND placed_at < $4 \
             GROUP BY cohort, month",
        )
        .bind(shop_id)
        .bind(first_month)
        .bind(last_month)
        .bind(period.until)
        .fetch_all(self.pool())
        .await?;
        let sizes: Vec<(i64, i64)> = active
            .iter()
            .filter(|&&(_, since, _)| since == 0)
            .map(|&(cohort, _, customers)| (cohort, customers))
            .collect();
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
