//! The overview: revenue, orders, AOV, customers, repurchase and churn, LTV, points
//! liability and the revenue trend of a period, beside the same for the period before.

use serde::Serialize;

use std::collections::BTreeMap;

use super::definitions::{Bucket, DAY_MS, PURCHASE};
use super::{Period, PeriodView, Rate, rounded_mean};
use crate::store::rollups::day_sql;
use crate::store::{Db, StoreError, StoreResult};
use crate::timestamp::to_rfc3339;

#[derive(Debug, Clone, Serialize, PartialEq, utoipa::ToSchema)]
pub struct Overview {
    pub currency: String,
    pub bucket: Bucket,
    pub period: PeriodView,
    pub previous_period: PeriodView,
    pub current: Figures,
    pub previous: Figures,
}

/// Every overview figure of one period; see `definitions::DEFINITIONS` for each.
#[derive(Debug, Clone, Serialize, PartialEq, utoipa::ToSchema)]
pub struct Figures {
    /// Minor units of the shop's currency.
    pub revenue: i64,
    pub orders: i64,
    pub aov: Option<i64>,
    /// Purchases in other currencies, left out of the money figures.
    pub other_currency_orders: i64,
    pub active_customers: i64,
    pub new_customers: i64,
    pub returning_customers: i64,
    pub repurchase_rate: Rate,
    pub churn_rate: Rate,
    pub ltv: Ltv,
    pub points_liability: PointsLiability,
    pub trend: Vec<TrendPoint>,
}

#[derive(Debug, Clone, Copy, Serialize, PartialEq, Eq, utoipa::ToSchema)]
pub struct Ltv {
    pub customers: i64,
    pub average: Option<i64>,
    pub median: Option<i64>,
}

#[derive(Debug, Clone, Copy, Serialize, PartialEq, Eq, utoipa::ToSchema)]
pub struct PointsLiability {
    pub points: i64,
    /// Minor units, when the loyalty configuration gives points a money value (it does not yet).
    pub value: Option<i64>,
}

#[derive(Debug, Clone, Serialize, PartialEq, Eq, utoipa::ToSchema)]
pub struct TrendPoint {
    /// Start of the bucket.
    pub at: String,
    pub revenue: i64,
    pub orders: i64,
}

impl Db {
    /// The overview of `period` and of the period of equal length before it.
    ///
    /// Money figures read the shop's days (`shop_days`) for whole days and the orders of
    /// the partial days at either end; customer figures count the period's rows of
    /// `customer_purchases`, each linked to the customer's previous and next purchase;
    /// lifetime values read `customer_rollups` (see `store::rollups`).
    pub async fn analytics_overview(&self, shop_id: i64, currency: &str, period: Period) -> StoreResult<Overview> {
        let previous = period.previous();
        let before = previous.previous();
        let (
            sales,
            sales_before,
            customers,
            customers_before,
            customers_earlier,
            ltv,
            ltv_before,
            points,
            points_before,
        ) = tokio::try_join!(
            self.daily_sales(shop_id, currency, period),
            self.daily_sales(shop_id, currency, previous),
            self.period_customers(shop_id, period, period.until),
            self.period_customers(shop_id, previous, period.until),
            self.period_customers(shop_id, before, previous.until),
            self.ltv(shop_id, period.until),
            self.ltv(shop_id, previous.until),
            self.points_liability(shop_id, period.until),
            self.points_liability(shop_id, previous.until),
        )?;
        Ok(Overview {
            currency: currency.to_owned(),
            bucket: period.bucket,
            period: PeriodView::from(&period),
            previous_period: PeriodView::from(&previous),
            current: figures(period, &sales, &customers, &customers_before, ltv, points),
            previous: figures(
                previous,
                &sales_before,
                &customers_before,
                &customers_earlier,
                ltv_before,
                points_before,
            ),
        })
    }

    /// Purchases per UTC day of `period`: whole days from `shop_days`, the partial days
    /// at either end from the orders placed in the period.
    async fn daily_sales(&self, shop_id: i64, currency: &str, period: Period) -> StoreResult<BTreeMap<i64, Sales>> {
        let first_whole = -((-period.since).div_euclid(DAY_MS));
        let end_whole = period.until.div_euclid(DAY_MS);
        let mut days: BTreeMap<i64, Sales> = BTreeMap::new();
        let mut add = |day: i64, mine: bool, purchases: i64, revenue: i64| {
            let sales = days.entry(day).or_default();
            if mine {
                sales.orders += purchases;
                sales.revenue += revenue;
            } else {
                sales.other_currency_orders += purchases;
            }
        };
        let edges = if first_whole < end_whole {
            let rows: Vec<(i64, i64, i64, i64)> = sqlx::query_as(
                "SELECT day, CAST(CASE WHEN currency = $2 THEN 1 ELSE 0 END AS BIGINT), purchases, revenue \
                 FROM shop_days WHERE shop_id = $1 AND day >= $3 AND day < $4",
            )
            .bind(shop_id)
            .bind(currency)
            .bind(first_whole)
            .bind(end_whole)
            .fetch_all(self.pool())
            .await?;
            for (day, mine, purchases, revenue) in rows {
                add(day, mine == 1, purchases, revenue);
            }
            vec![(period.since, first_whole * DAY_MS), (end_whole * DAY_MS, period.until)]
        } else {
            vec![(period.since, period.until)]
        };
        let day = day_sql("o.placed_at");
        for (since, until) in edges.into_iter().filter(|(since, until)| since < until) {
            let rows: Vec<(i64, i64, i64, i64)> = sqlx::query_as(&format!(
                "SELECT {day}, CAST(CASE WHEN o.currency = $2 THEN 1 ELSE 0 END AS BIGINT), COUNT(*), \
                        CAST(SUM(o.total - o.refunded) AS BIGINT) FROM orders o \
                 WHERE o.shop_id = $1 AND {} AND o.placed_at >= $3 AND o.placed_at < $4 GROUP BY 1, 2",
                *PURCHASE
            ))
            .bind(shop_id)
            .bind(currency)
            .bind(since)
            .bind(until)
            .fetch_all(self.pool())
            .await?;
            for (day, mine, purchases, revenue) in rows {
                add(day, mine == 1, purchases, revenue);
            }
        }
        Ok(days)
    }

    /// Over the purchases placed in `period`: the customers active in it (their first
    /// purchase in it has no previous one in it), those with two or more (that first one
    /// has a next one in it), those whose first purchase ever it holds, and those whose
    /// last purchase in it is followed by none before `churn_until`.
    async fn period_customers(&self, shop_id: i64, period: Period, churn_until: i64) -> StoreResult<PeriodCustomers> {
        let (active, repeat, new, churned): (i64, i64, i64, i64) = sqlx::query_as(
            "SELECT CAST(COALESCE(SUM(CASE WHEN prev_at IS NULL OR prev_at < $2 THEN 1 ELSE 0 END), 0) AS BIGINT), \
                    CAST(COALESCE(SUM(CASE WHEN (prev_at IS NULL OR prev_at < $2) AND next_at < $3 THEN 1 ELSE 0 END), \
                         0) AS BIGINT), \
                    CAST(COALESCE(SUM(CASE WHEN prev_at IS NULL THEN 1 ELSE 0 END), 0) AS BIGINT), \
                    CAST(COALESCE(SUM(CASE WHEN next_at IS NULL OR next_at >= $4 THEN 1 ELSE 0 END), 0) AS BIGINT) \
             FROM customer_purchases WHERE shop_id = $1 AND placed_at >= $2 AND placed_at < $3",
        )
        .bind(shop_id)
        .bind(period.since)
        .bind(period.until)
        .bind(churn_until)
        .fetch_one(self.pool())
        .await?;
        Ok(PeriodCustomers { active, repeat, new, churned })
    }

    /// Average and median net revenue per customer (shop's currency) from purchases placed
    /// before `until`, over customers with at least one.
    ///
    /// When nobody has bought since `until`, that is each customer's rollup, read in order
    /// from an index. Otherwise customers who last bought before `until` keep their
    /// rollup, and those who bought both before and since take the running sum just
    /// before their first purchase since `until` (the purchase whose previous one is
    /// before `until`).
    async fn ltv(&self, shop_id: i64, until: i64) -> StoreResult<Ltv> {
        let latest: Option<i64> = sqlx::query_scalar("SELECT MAX(last_at) FROM customer_rollups WHERE shop_id = $1")
            .bind(shop_id)
            .fetch_one(self.pool())
            .await?;
        let values = if latest.is_none_or(|latest| latest < until) {
            "SELECT net_cur AS v FROM customer_rollups WHERE shop_id = $1 AND purchases_cur > 0 AND $2 = $2"
        } else {
            "SELECT net_cur AS v FROM customer_rollups WHERE shop_id = $1 AND last_at < $2 AND purchases_cur > 0 \
             UNION ALL \
             SELECT cum_net_cur - net_cur FROM customer_purchases \
             WHERE shop_id = $1 AND placed_at >= $2 AND prev_at < $2 AND cum_cur - cur > 0"
        };
        let (customers, total): (i64, i64) =
            sqlx::query_as(&format!("SELECT COUNT(*), CAST(COALESCE(SUM(v), 0) AS BIGINT) FROM ({values}) l"))
                .bind(shop_id)
                .bind(until)
                .fetch_one(self.pool())
                .await?;
        if customers == 0 {
            return Ok(Ltv { customers: 0, average: None, median: None });
        }
        // The one or two middle values: 1-based ranks (n + 1) / 2 and (n + 2) / 2.
        let offset = (customers + 1) / 2 - 1;
        let middle: Vec<i64> = sqlx::query_scalar(&format!("SELECT v FROM ({values}) l ORDER BY v LIMIT $3 OFFSET $4"))
            .bind(shop_id)
            .bind(until)
            .bind((customers + 2) / 2 - offset)
            .bind(offset)
            .fetch_all(self.pool())
            .await?;
        let sum: i128 = middle.iter().map(|&ltv| i128::from(ltv)).sum();
        let count = i128::try_from(middle.len()).map_err(|_| StoreError::Corrupt("median rows".into()))?;
        if count == 0 {
            return Err(StoreError::Corrupt("no median row".into()));
        }
        let median = i64::try_from(sum.div_euclid(count)).ok();
        Ok(Ltv { customers, average: rounded_mean(total, customers), median })
    }

    /// Points members held at `until`: the ledger summed up to then.
    async fn points_liability(&self, shop_id: i64, until: i64) -> StoreResult<i64> {
        Ok(sqlx::query_scalar(
            "SELECT CAST(COALESCE(SUM(delta), 0) AS BIGINT) FROM points_ledger WHERE shop_id = $1 AND created_at < $2",
        )
        .bind(shop_id)
        .bind(until)
        .fetch_one(self.pool())
        .await?)
    }
}

/// One period's figures from its days, its customers, the customers of the period before
/// (for churn), its lifetime values and points.
fn figures(
    period: Period,
    days: &BTreeMap<i64, Sales>,
    customers: &PeriodCustomers,
    before: &PeriodCustomers,
    ltv: Ltv,
    points: i64,
) -> Figures {
    let mut sales = Sales::default();
    let mut buckets: BTreeMap<i64, (i64, i64)> = BTreeMap::new();
    for (&day, day_sales) in days {
        sales.orders += day_sales.orders;
        sales.revenue += day_sales.revenue;
        sales.other_currency_orders += day_sales.other_currency_orders;
        let bucket = buckets.entry(period.bucket.index_of(day * DAY_MS)).or_default();
        bucket.0 += day_sales.orders;
        bucket.1 += day_sales.revenue;
    }
    let trend = period
        .bucket
        .indexes(period.since, period.until)
        .map(|bucket| {
            let (orders, revenue) = buckets.get(&bucket).copied().unwrap_or_default();
            TrendPoint { at: to_rfc3339(period.bucket.start_ms(bucket)), revenue, orders }
        })
        .collect();
    Figures {
        revenue: sales.revenue,
        orders: sales.orders,
        aov: rounded_mean(sales.revenue, sales.orders),
        other_currency_orders: sales.other_currency_orders,
        active_customers: customers.active,
        new_customers: customers.new,
        returning_customers: customers.active - customers.new,
        repurchase_rate: Rate::new(customers.repeat, customers.active),
        churn_rate: Rate::new(before.churned, before.active),
        ltv,
        points_liability: PointsLiability { points, value: None },
        trend,
    }
}

#[derive(Debug, Default, Clone, Copy)]
struct Sales {
    orders: i64,
    revenue: i64,
    other_currency_orders: i64,
}

struct PeriodCustomers {
    active: i64,
    repeat: i64,
    new: i64,
    churned: i64,
}
