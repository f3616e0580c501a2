//! What recommendations earned a shop: impressions, clicks, click-through rate and the
//! orders that followed a click, per placement and per strategy.
//!
//! The widget records `recommendation_impression` (`{placement, items: [{recommendation_id,
//! product_id, strategy}]}`, one per item shown) and `recommendation_click` (`{placement,
//! recommendation_id, product_id, strategy}`). An order is attributed when the shopper
//! who clicked buys the clicked product within the window after the click; each of its
//! lines goes to the latest such click (last-click attribution), so an order is counted
//! once per placement and strategy however often the shopper clicked.
//!
//! Browser events are untrusted: a placement or strategy the host never serves is
//! counted under `other` (a forged event cannot grow the report), a click without a
//! product or recommendation id is skipped, and a click counts once per recommendation id.

use std::collections::{BTreeMap, HashMap, HashSet};

use serde::Serialize;
use serde_json::Value;
use sqlx::Row;

use super::recommendations::placeholders;
use super::{Db, StoreResult};

/// Events read per query.
const EVENT_PAGE: i64 = 5_000;
/// Customers whose orders are read per query.
const CUSTOMER_CHUNK: usize = 500;
const DAY_MS: i64 = 24 * 60 * 60 * 1000;
/// Names a report groups by; anything else is `other`.
pub const PLACEMENTS: [&str; 4] = ["product", "cart", "home", "for-you"];
pub const STRATEGIES: [&str; 5] =
    ["frequently-bought-together", "for-you", "recently-viewed", "popular-in-category", "popular"];
const OTHER: &str = "other";

/// The period a report covers and how long after a click an order still counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReportPeriod {
    /// Events from this time (unix ms, inclusive)…
    pub since: i64,
    /// …to this time (exclusive).
    pub until: i64,
    pub window_days: i64,
}

/// Clicks count an order placed at most this many days later.
pub const DEFAULT_WINDOW_DAYS: i64 = 7;
/// The longest attribution window.
pub const MAX_WINDOW_DAYS: i64 = 90;

impl ReportPeriod {
    /// The `days` days up to `now`.
    pub fn last_days(days: i64, window_days: i64, now: i64) -> Self {
        Self { since: now - days * DAY_MS, until: now, window_days }
    }
}

/// One placement × strategy (or a total).
#[derive(Debug, Clone, Default, PartialEq, Serialize, utoipa::ToSchema)]
pub struct AttributionRow {
    pub placement: String,
    pub strategy: String,
    /// Items shown.
    pub impressions: u64,
    /// Items followed (distinct recommendation ids).
    pub clicks: u64,
    /// `clicks / impressions`; 0 without impressions.
    pub click_through_rate: f64,
    /// Paid orders that contained a clicked product within the window after the click.
    pub orders: u64,
    /// Those orders' totals, net of refunds, in minor units of the shop's currency.
    pub revenue: i64,
    /// The clicked products' lines in those orders, in minor units.
    pub item_revenue: i64,
}

/// The report: a row per placement × strategy seen, and the total.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct AttributionReport {
    pub since: i64,
    pub until: i64,
    pub window_days: i64,
    pub currency: String,
    pub rows: Vec<AttributionRow>,
    pub total: AttributionRow,
    /// Orders in another currency than the shop's, left out of the revenue columns.
    pub orders_in_other_currencies: u64,
}

/// A click worth attributing.
#[derive(Debug, Clone)]
struct Click {
    at: i64,
    product_id: String,
    group: (String, String),
}

#[derive(Default)]
struct Counts {
    impressions: u64,
    clicks: u64,
    /// Orders already credited, so that one counts once.
    orders: HashSet<String>,
    revenue: i64,
    item_revenue: i64,
}

/// One line of a candidate order.
struct OrderLineRow {
    order_id: String,
    customer_id: i64,
    placed_at: i64,
    net_total: i64,
    in_shop_currency: bool,
    product_id: String,
    line_value: i64,
}

fn known(name: Option<&str>, names: &[&str]) -> String {
    match name {
        Some(name) if names.contains(&name) => name.to_owned(),
        _ => OTHER.to_owned(),
    }
}

fn group_of(value: &Value) -> (String, String) {
    (
        known(value.get("placement").and_then(Value::as_str), &PLACEMENTS),
        known(value.get("strategy").and_then(Value::as_str), &STRATEGIES),
    )
}

fn non_empty<'v>(value: &'v Value, key: &str) -> Option<&'v str> {
    value.get(key).and_then(Value::as_str).filter(|s| !s.is_empty())
}

impl Counts {
    fn row(&self, placement: &str, strategy: &str) -> AttributionRow {
        AttributionRow {
            placement: placement.to_owned(),
            strategy: strategy.to_owned(),
            impressions: self.impressions,
            clicks: self.clicks,
            click_through_rate: if self.impressions == 0 { 0.0 } else { self.clicks as f64 / self.impressions as f64 },
            orders: self.orders.len() as u64,
            revenue: self.revenue,
            item_revenue: self.item_revenue,
        }
    }

    fn credit(&mut self, order_id: &str, net_total: i64, line_value: i64) {
        if self.orders.insert(order_id.to_owned()) {
            self.revenue += net_total;
        }
        self.item_revenue += line_value;
    }
}

impl Db {
    /// The shop's recommendation report over `period`.
    pub async fn recommendation_report(
        &self,
        shop_id: i64,
        currency: &str,
        period: ReportPeriod,
    ) -> StoreResult<AttributionReport> {
        let mut groups: BTreeMap<(String, String), Counts> = BTreeMap::new();
        let mut total = Counts::default();
        let mut clicked_ids = HashSet::new();
        let mut clicks: HashMap<i64, Vec<Click>> = HashMap::new();
        let mut anonymous_clicks: HashMap<String, Vec<Click>> = HashMap::new();

        let mut after = (period.since, String::new());
        loop {
            let rows = sqlx::query(
                "SELECT event_id, kind, occurred_at, anonymous_id, customer_id, properties FROM events \
                 WHERE shop_id = $1 AND kind IN ('recommendation_impression', 'recommendation_click') \
                 AND (occurred_at > $2 OR (occurred_at = $2 AND event_id > $3)) AND occurred_at < $4 \
                 ORDER BY occurred_at, event_id LIMIT $5",
            )
            .bind(shop_id)
            .bind(after.0)
            .bind(&after.1)
            .bind(period.until)
            .bind(EVENT_PAGE)
            .fetch_all(self.pool())
            .await?;
            let Some(last) = rows.last() else { break };
            after = (last.try_get("occurred_at")?, last.try_get("event_id")?);
            for row in &rows {
                let properties: String = row.try_get("properties")?;
                let Ok(properties) = serde_json::from_str::<Value>(&properties) else { continue };
                let kind: String = row.try_get("kind")?;
                if kind == "recommendation_impression" {
                    let Some(items) = properties.get("items").and_then(Value::as_array) else { continue };
                    let placement = properties.get("placement").and_then(Value::as_str);
                    for item in items {
                        let strategy = item.get("strategy").and_then(Value::as_str);
                        let group = (known(placement, &PLACEMENTS), known(strategy, &STRATEGIES));
                        groups.entry(group).or_default().impressions += 1;
                        total.impressions += 1;
                    }
                    continue;
                }
                let (Some(recommendation_id), Some(product_id)) =
                    (non_empty(&properties, "recommendation_id"), non_empty(&properties, "product_id"))
                else {
                    continue;
                };
                if !clicked_ids.insert(recommendation_id.to_owned()) {
                    continue;
                }
                let group = group_of(&properties);
                groups.entry(group.clone()).or_default().clicks += 1;
                total.clicks += 1;
                let click = Click { at: row.try_get("occurred_at")?, product_id: product_id.to_owned(), group };
                match (row.try_get::<Option<i64>, _>("customer_id")?, row.try_get::<Option<String>, _>("anonymous_id")?)
                {
                    (Some(customer_id), _) => clicks.entry(customer_id).or_default().push(click),
                    (None, Some(anonymous_id)) => anonymous_clicks.entry(anonymous_id).or_default().push(click),
                    (None, None) => {}
                }
            }
        }
        // A browser that signed in later: its clicks are the customer's.
        for (anonymous_id, list) in anonymous_clicks {
            if let Some(customer_id) = self.customer_for_anonymous(shop_id, &anonymous_id).await? {
                clicks.entry(customer_id).or_default().extend(list);
            }
        }

        let window = period.window_days * DAY_MS;
        let customers: Vec<i64> = clicks.keys().copied().collect();
        let mut other_currency_orders = HashSet::new();
        for chunk in customers.chunks(CUSTOMER_CHUNK) {
            for line in self.attributable_lines(shop_id, currency, chunk, period.since, period.until + window).await? {
                let Some(candidates) = clicks.get(&line.customer_id) else { continue };
                let latest = candidates
                    .iter()
                    .filter(|c| {
                        c.product_id == line.product_id && c.at <= line.placed_at && line.placed_at <= c.at + window
                    })
                    .max_by_key(|c| c.at);
                let Some(click) = latest else { continue };
                if !line.in_shop_currency {
                    other_currency_orders.insert(line.order_id);
                    continue;
                }
                groups.entry(click.group.clone()).or_default().credit(&line.order_id, line.net_total, line.line_value);
                total.credit(&line.order_id, line.net_total, line.line_value);
            }
        }

        Ok(AttributionReport {
            since: period.since,
            until: period.until,
            window_days: period.window_days,
            currency: currency.to_owned(),
            rows: groups.iter().map(|((placement, strategy), counts)| counts.row(placement, strategy)).collect(),
            total: total.row("all", "all"),
            orders_in_other_currencies: other_currency_orders.len() as u64,
        })
    }

    /// The lines with a product of paid orders of `customers` placed in `[from, to]`
    /// (CROSS JOIN: orders by customer first on SQLite too, see `recent_purchases`).
    async fn attributable_lines(
        &self,
        shop_id: i64,
        currency: &str,
        customers: &[i64],
        from: i64,
        to: i64,
    ) -> StoreResult<Vec<OrderLineRow>> {
        let sql = format!(
            "SELECT o.id AS order_id, o.customer_id AS customer_id, o.placed_at AS placed_at, o.total AS total, \
             o.refunded AS refunded, o.currency AS currency, l.product_id AS product_id, l.quantity AS quantity, \
             l.unit_price AS unit_price FROM orders o CROSS JOIN order_lines l \
             WHERE l.shop_id = o.shop_id AND l.order_id = o.id AND o.shop_id = $1 AND o.status IN ('paid', 'fulfilled') AND o.placed_at >= $2 AND o.placed_at <= $3 \
             AND l.product_id IS NOT NULL AND o.customer_id IN ({})",
            placeholders(4, customers.len())
        );
        let mut query = sqlx::query(&sql).bind(shop_id).bind(from).bind(to);
        for customer in customers {
            query = query.bind(*customer);
        }
        let rows = query.fetch_all(self.pool()).await?;
        rows.iter()
            .map(|r| {
                let (total, refunded): (i64, i64) = (r.try_get("total")?, r.try_get("refunded")?);
                let (quantity, unit_price): (i64, i64) = (r.try_get("quantity")?, r.try_get("unit_price")?);
                Ok(OrderLineRow {
                    order_id: r.try_get("order_id")?,
                    customer_id: r.try_get("customer_id")?,
                    placed_at: r.try_get("placed_at")?,
                    net_total: total - refunded,
                    in_shop_currency: r.try_get::<String, _>("currency")?.eq_ignore_ascii_case(currency),
                    product_id: r.try_get("product_id")?,
                    line_value: quantity.saturating_mul(unit_price),
                })
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_the_host_never_serves_are_other() {
        let forged = serde_json::json!({"placement": "x".repeat(500), "strategy": "popular"});
        assert_eq!(group_of(&forged), (OTHER.to_owned(), "popular".to_owned()));
        let fine = serde_json::json!({"placement": "cart", "strategy": "frequently-bought-together"});
        assert_eq!(group_of(&fine), ("cart".to_owned(), "frequently-bought-together".to_owned()));
        assert_eq!(group_of(&serde_json::json!({"placement": 3})), (OTHER.to_owned(), OTHER.to_owned()));
    }
}
