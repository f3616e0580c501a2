//! The overview: revenue, orders, AOV, customers, repurchase and churn, LTV, points
//! liability and the revenue trend of a period, beside the same for the period before.

use serde::Serialize;

use super::definitions::{Bucket, PURCHASE};
use super::{Period, PeriodView, Rate, rounded_mean};
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
    pub async fn analytics_overview(&self, shop_id: i64, currency: &str, period: Period) -> StoreResult<Overview> {
        let previous = period.previous();
        let (current_figures, previous_figures) =
            tokio::try_join!(self.figures(shop_id, currency, period), self.figures(shop_id, currency, previous))?;
        Ok(Overview {
            currency: currency.to_owned(),
            bucket: period.bucket,
            period: PeriodView::from(&period),
            previous_period: PeriodView::from(&previous),
            current: current_figures,
            previous: previous_figures,
        })
    }

    async fn figures(&self, shop_id: i64, currency: &str, period: Period) -> StoreResult<Figures> {
        let (sales, customers, churn_rate, ltv, points, trend) = tokio::try_join!(
            self.sales(shop_id, currency, period),
            self.period_customers(shop_id, period),
            self.churn(shop_id, period),
            self.ltv(shop_id, currency, period.until),
            self.points_liability(shop_id, period.until),
            self.trend(shop_id, currency, period),
        )?;
        Ok(Figures {
            revenue: sales.revenue,
            orders: sales.orders,
            aov: rounded_mean(sales.revenue, sales.orders),
            other_currency_orders: sales.other_currency_orders,
            active_customers: customers.active,
            new_customers: customers.new,
            returning_customers: customers.active - customers.new,
            repurchase_rate: Rate::new(customers.repeat, customers.active),
            churn_rate,
            ltv,
            points_liability: PointsLiability { points, value: None },
            trend,
        })
    }

    async fn sales(&self, shop_id: i64, currency: &str, period: Period) -> StoreResult<Sales> {
        let (orders, revenue, other_currency_orders): (i64, i64, i64) = sqlx::query_as(&format!(
            "SELECT CAST(COALESCE(SUM(CASE WHEN o.currency = $2 THEN 1 ELSE 0 END), 0) AS BIGINT), \
                    CAST(COALESCE(SUM(CASE WHEN o.currency = $2 THEN o.total - o.refunded ELSE 0 END), 0) AS BIGINT), \
                    CAST(COALESCE(SUM(CASE WHEN o.currency = $2 THEN 0 ELSE 1 END), 0) AS BIGINT) \
             FROM orders o WHERE o.shop_id = $1 AND {} AND o.placed_at >= $3 AND o.placed_at < $4",
            *PURCHASE
        ))
        .bind(shop_id)
        .bind(currency)
        .bind(period.since)
        .bind(period.until)
        .fetch_one(self.pool())
        .await?;
        Ok(Sales { orders, revenue, other_currency_orders })
    }

    /// Active customers of the period, those of them with two purchases or more, and
    /// those whose first purchase ever falls in it.
    async fn period_customers(&self, shop_id: i64, period: Period) -> StoreResult<PeriodCustomers> {
        let (active, repeat, new): (i64, i64, i64) = sqlx::query_as(&format!(
            "SELECT COUNT(*), \
                    CAST(COALESCE(SUM(CASE WHEN p.purchases >= 2 THEN 1 ELSE 0 END), 0) AS BIGINT), \
                    CAST(COALESCE(SUM(CASE WHEN c.first_order_at >= $2 THEN 1 ELSE 0 END), 0) AS BIGINT) \
             FROM (SELECT o.customer_id, COUNT(*) AS purchases FROM orders o \
                   WHERE o.shop_id = $1 AND {} AND o.customer_id IS NOT NULL \
                   AND o.placed_at >= $2 AND o.placed_at < $3 GROUP BY o.customer_id) p \
             LEFT JOIN customers c ON c.shop_id = $1 AND c.id = p.customer_id",
            *PURCHASE
        ))
        .bind(shop_id)
        .bind(period.since)
        .bind(period.until)
        .fetch_one(self.pool())
        .await?;
        Ok(PeriodCustomers { active, repeat, new })
    }

    /// Customers active in the period before `period` who bought nothing in `period`,
    /// over those active in the period before.
    async fn churn(&self, shop_id: i64, period: Period) -> StoreResult<Rate> {
        let before = period.previous();
        let (active_before, churned): (i64, i64) = sqlx::query_as(&format!(
            "SELECT COUNT(*), CAST(COALESCE(SUM(CASE WHEN EXISTS ( \
                 SELECT 1 FROM orders o WHERE o.shop_id = $1 AND o.customer_id = p.customer_id AND {purchase} \
                 AND o.placed_at >= $4 AND o.placed_at < $5) THEN 0 ELSE 1 END), 0) AS BIGINT) \
             FROM (SELECT DISTINCT o.customer_id FROM orders o WHERE o.shop_id = $1 AND {purchase} \
                   AND o.customer_id IS NOT NULL AND o.placed_at >= $2 AND o.placed_at < $3) p",
            purchase = *PURCHASE
        ))
        .bind(shop_id)
        .bind(before.since)
        .bind(before.until)
        .bind(period.since)
        .bind(period.until)
        .fetch_one(self.pool())
        .await?;
        Ok(Rate::new(churned, active_before))
    }

    /// Average and median net revenue per customer from purchases placed before `until`.
    async fn ltv(&self, shop_id: i64, currency: &str, until: i64) -> StoreResult<Ltv> {
        // The one or two middle rows of the ranked lifetime values, each carrying the
        // count and the total.
        let middle: Vec<(i64, i64, i64)> = sqlx::query_as(&format!(
            "SELECT r.customers, r.total, r.ltv FROM ( \
                 SELECT per.ltv, ROW_NUMBER() OVER (ORDER BY per.ltv) AS rank_no, \
                        COUNT(*) OVER () AS customers, CAST(SUM(per.ltv) OVER () AS BIGINT) AS total \
                 FROM (SELECT o.customer_id, CAST(SUM(o.total - o.refunded) AS BIGINT) AS ltv FROM orders o \
                       WHERE o.shop_id = $1 AND {} AND o.currency = $2 AND o.customer_id IS NOT NULL \
                       AND o.placed_at < $3 GROUP BY o.customer_id) per \
             ) r WHERE r.rank_no = (r.customers + 1) / 2 OR r.rank_no = (r.customers + 2) / 2 \
             ORDER BY r.ltv",
            *PURCHASE
        ))
        .bind(shop_id)
        .bind(currency)
        .bind(until)
        .fetch_all(self.pool())
        .await?;
        let Some(&(customers, total, _)) = middle.first() else {
            return Ok(Ltv { customers: 0, average: None, median: None });
        };
        let sum: i128 = middle.iter().map(|&(_, _, ltv)| i128::from(ltv)).sum();
        let count = i128::try_from(middle.len()).map_err(|_| StoreError::Corrupt("median rows".into()))?;
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

    /// Revenue and orders per bucket of `period`, every bucket present (empty ones as 0).
    async fn trend(&self, shop_id: i64, currency: &str, period: Period) -> StoreResult<Vec<TrendPoint>> {
        let index = period.bucket.index_sql(self.backend(), "o.placed_at");
        let rows: Vec<(i64, i64, i64)> = sqlx::query_as(&format!(
            "SELECT {index} AS bucket, COUNT(*), CAST(SUM(o.total - o.refunded) AS BIGINT) FROM orders o \
             WHERE o.shop_id = $1 AND {} AND o.currency = $2 AND o.placed_at >= $3 AND o.placed_at < $4 \
             GROUP BY {index} ORDER BY 1",
            *PURCHASE
        ))
        .bind(shop_id)
        .bind(currency)
        .bind(period.since)
        .bind(period.until)
        .fetch_all(self.pool())
        .await?;
        let mut rows = rows.into_iter().peekable();
        Ok(period
            .bucket
            .indexes(period.since, period.until)
            .map(|bucket| {
                let (orders, revenue) = match rows.next_if(|&(b, _, _)| b == bucket) {
                    Some((_, orders, revenue)) => (orders, revenue),
                    None => (0, 0),
                };
                TrendPoint { at: to_rfc3339(period.bucket.start_ms(bucket)), revenue, orders }
            })
            .collect())
    }
}

struct Sales {
    orders: i64,
    revenue: i64,
    other_currency_orders: i64,
}

struct PeriodCustomers {
    active: i64,
    repeat: i64,
    new: i64,
}
