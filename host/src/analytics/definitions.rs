//! What each figure means, written once: the SQL building blocks every analytics query
//! shares (what a purchase is, how a time falls into a bucket) and the plain-language
//! definitions the API and the console show beside the figures.

use std::sync::LazyLock;

use serde::Serialize;

use crate::store::Backend;
use crate::store::orders::OrderStatus;

/// Every order status. The match is a compile-time witness: a new status must be added here.
const ALL_STATUSES: [OrderStatus; 5] = {
    const fn witness(status: OrderStatus) {
        match status {
            OrderStatus::Pending
            | OrderStatus::Paid
            | OrderStatus::Fulfilled
            | OrderStatus::Cancelled
            | OrderStatus::Refunded => {}
        }
    }
    witness(OrderStatus::Paid);
    [OrderStatus::Pending, OrderStatus::Paid, OrderStatus::Fulfilled, OrderStatus::Cancelled, OrderStatus::Refunded]
};

/// `status IN ('paid', 'fulfilled')`: the statuses [`OrderStatus::is_purchase`] accepts,
/// as SQL over a table aliased `o`.
pub static PURCHASE: LazyLock<String> = LazyLock::new(|| {
    let statuses: Vec<String> =
        ALL_STATUSES.iter().filter(|s| s.is_purchase()).map(|s| format!("'{}'", s.as_str())).collect();
    format!("o.status IN ({})", statuses.join(", "))
});

pub const DAY_MS: i64 = 24 * 60 * 60 * 1000;

/// How trend figures are grouped over time; buckets are calendar days, ISO weeks
/// (Monday first) and calendar months in UTC.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Bucket {
    Day,
    Week,
    Month,
}

impl Bucket {
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "day" => Some(Self::Day),
            "week" => Some(Self::Week),
            "month" => Some(Self::Month),
            _ => None,
        }
    }

    /// SQL giving the bucket's index (days, weeks or months since 1970) of the unix-ms
    /// column `column`.
    pub fn index_sql(self, backend: Backend, column: &str) -> String {
        match self {
            Self::Day => format!("({column} / {DAY_MS})"),
            // 1970-01-01 was a Thursday: shifting by three days makes weeks start on Monday.
            Self::Week => format!("(({column} / {DAY_MS} + 3) / 7)"),
            Self::Month => month_index_sql(backend, column),
        }
    }

    /// The bucket index of a unix-ms time, as [`Self::index_sql`] computes it.
    pub fn index_of(self, ms: i64) -> i64 {
        match self {
            Self::Day => ms.div_euclid(DAY_MS),
            Self::Week => (ms.div_euclid(DAY_MS) + 3).div_euclid(7),
            Self::Month => month_index(ms),
        }
    }

    /// The indexes of every bucket that [since, until) touches, in order.
    pub fn indexes(self, since: i64, until: i64) -> std::ops::RangeInclusive<i64> {
        self.index_of(since)..=self.index_of(until - 1)
    }

    /// The unix-ms start of the bucket with index `index`.
    pub fn start_ms(self, index: i64) -> i64 {
        match self {
            Self::Day => index * DAY_MS,
            Self::Week => (index * 7 - 3) * DAY_MS,
            Self::Month => month_start_ms(index),
        }
    }
}

/// SQL giving `year * 12 + month - 1` (UTC) of the unix-ms column `column`.
pub fn month_index_sql(backend: Backend, column: &str) -> String {
    match backend {
        Backend::Sqlite => format!(
            "(CAST(strftime('%Y', {column} / 1000, 'unixepoch') AS INTEGER) * 12 \
             + CAST(strftime('%m', {column} / 1000, 'unixepoch') AS INTEGER) - 1)"
        ),
        Backend::Postgres => format!(
            "CAST(EXTRACT(YEAR FROM to_timestamp({column} / 1000) AT TIME ZONE 'UTC') * 12 \
             + EXTRACT(MONTH FROM to_timestamp({column} / 1000) AT TIME ZONE 'UTC') - 1 AS BIGINT)"
        ),
    }
}

/// The month index (`year * 12 + month - 1`) of a unix-ms time, as [`month_index_sql`].
pub fn month_index(ms: i64) -> i64 {
    use chrono::Datelike;
    let at = chrono::DateTime::from_timestamp_millis(ms).unwrap_or_default();
    i64::from(at.year()) * 12 + i64::from(at.month0())
}

/// The unix-ms start (UTC) of month index `index`.
pub fn month_start_ms(index: i64) -> i64 {
    let year = i32::try_from(index.div_euclid(12)).unwrap_or(1970);
    let month = u32::try_from(index.rem_euclid(12) + 1).unwrap_or(1);
    chrono::NaiveDate::from_ymd_opt(year, month, 1)
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .map_or(0, |t| t.and_utc().timestamp_millis())
}

/// A figure's name and what it means, as shown beside it.
#[derive(Debug, Clone, Copy, Serialize, PartialEq, Eq, utoipa::ToSchema)]
pub struct Definition {
    pub name: &'static str,
    pub definition: &'static str,
}

const fn def(name: &'static str, definition: &'static str) -> Definition {
    Definition { name, definition }
}

/// Every figure of `/v1/analytics/*`, in the order the console shows them.
pub const DEFINITIONS: &[Definition] = &[
    def(
        "period",
        "Figures cover [since, until): since included, until excluded. The previous period is the one of equal \
         length just before since. A purchase is an order whose status is paid or fulfilled; pending, cancelled \
         and fully refunded orders are not purchases. An order belongs to the period it was placed in.",
    ),
    def(
        "revenue",
        "Sum of the totals of purchases in the shop's currency placed in the period, net of their refunds \
         (a refund lowers the revenue of the period its order was placed in). Minor units. Orders in other \
         currencies are never added in; they are counted in other_currency_orders.",
    ),
    def("orders", "Number of purchases in the shop's currency placed in the period."),
    def("aov", "Average order value: revenue / orders, rounded to the nearest minor unit; null without orders."),
    def("active_customers", "Customers with at least one purchase (in any currency) placed in the period."),
    def(
        "new_customers",
        "Active customers whose first purchase ever was placed in the period; returning_customers are the other \
         active customers.",
    ),
    def(
        "repurchase_rate",
        "Customers with at least two purchases in the period / customers with at least one (active customers).",
    ),
    def(
        "churn_rate",
        "Customers active in the previous period of equal length with no purchase in this one / customers active \
         in the previous period.",
    ),
    def(
        "ltv",
        "Lifetime value as of the end of the period: each customer's net revenue (shop's currency) from all \
         purchases placed before until, among customers with at least one; average (rounded to the nearest \
         minor unit) and median (the middle value, or the mean of the two middle values rounded down).",
    ),
    def(
        "points_liability",
        "Unredeemed points at the end of the period: the sum of every member's points ledger before until \
         (earned minus redeemed, expired and reversed). The loyalty plugin's configuration has no \
         points-to-money rate, so the liability is given in points only.",
    ),
    def("trend", "Revenue and orders (as defined above) per bucket: day, ISO week (Monday first) or month, in UTC."),
    def(
        "cohorts",
        "Customers grouped by the calendar month (UTC) of their first purchase. Retention in month k is the share \
         of the cohort with a purchase in the k-th calendar month after the first (month 0 is always 100%).",
    ),
    def(
        "rfm",
        "Customers with at least one purchase, scored 1-5 on recency (time of last purchase, 5 = most recent) and \
         frequency (number of purchases, 5 = most). Score = 1 + floor(5 * (rank - 1) / n), where rank is the \
         customer's 1-based position in ascending order and equal values share the lowest rank, so customers \
         with the same value always get the same score. Cells count customers and sum their net spend.",
    ),
    def("tiers", "Members per loyalty tier now."),
    def(
        "tier_movements",
        "Moves between loyalty tiers made in the period, counted per (from, to) pair: a member who moved twice \
         counts twice. From is null for a member's first tier. Members who held a tier before Patron kept tier \
         history count as a first tier on the day they reached it.",
    ),
    def("rewards", "Rewards redeemed for points in the period, by the reward's id in the loyalty plugin's catalogue."),
    def(
        "segment_size",
        "A segment's members at the end of each bucket: the members at since, plus the stints that began and \
         minus those that ended up to the bucket's end. Joined and left count the stints that began and ended in \
         the bucket; a customer who left and rejoined counts in both.",
    ),
    def(
        "points_flow",
        "Per bucket, points earned, redeemed, expired, reversed (taken back after refunds) and adjusted by hand, \
         from the points ledger, each as a positive number of points except adjustments (signed).",
    ),
    def(
        "coupons",
        "Coupons issued (created) in the period and coupon redemptions recorded in the period, by the coupon's \
         source (a plugin name or manual).",
    ),
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn purchase_is_what_orders_call_a_purchase() {
        assert_eq!(PURCHASE.as_str(), "o.status IN ('paid', 'fulfilled')");
    }

    #[test]
    fn bucket_starts_invert_indexes() {
        // 2024-03-06 (a Wednesday) 13:00 UTC.
        let at = 1_709_730_000_000;
        let day = Bucket::Day.index_of(at);
        assert_eq!(Bucket::Day.start_ms(day), 1_709_683_200_000);
        let week = Bucket::Week.index_of(at);
        // Monday 2024-03-04.
        assert_eq!(Bucket::Week.start_ms(week), 1_709_510_400_000);
        assert_eq!(month_index(at), 2024 * 12 + 2);
        // 2024-03-01.
        assert_eq!(Bucket::Month.start_ms(month_index(at)), 1_709_251_200_000);
    }

    #[test]
    fn every_figure_is_defined_once() {
        let mut names: Vec<_> = DEFINITIONS.iter().map(|d| d.name).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), DEFINITIONS.len());
    }
}
