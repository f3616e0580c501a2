//! Rollups of a shop's purchases, which the console's figures (`crate::analytics`) read
//! instead of every order (migration 0020): per customer (`customer_rollups`), per
//! purchase linked to the same customer's previous and next one (`customer_purchases`),
//! and per UTC day and currency (`shop_days`).
//!
//! Each is derived from `orders` and rewritten in the transaction that changes what it is
//! derived from: a customer's rows with the customer's stats ([`refresh_customer`],
//! [`refresh_customers`]), a day's row by the difference an order change makes
//! ([`order_changed`], [`orders_added`]). [`rebuild`] derives a whole shop's from scratch
//! (the demo seeder, shops that had orders before the rollups existed, and tests, which
//! compare it with what the writes kept).

use std::collections::{BTreeMap, HashMap};

use sqlx::{AnyConnection, Row};

use super::orders::Order;
use super::{Backend, Db, StoreError, StoreResult};
use crate::analytics::definitions::{DAY_MS, PURCHASE, month_index, month_index_sql};

/// The UTC day (days since 1970-01-01) of a unix-ms time.
pub fn day_of(ms: i64) -> i64 {
    ms.div_euclid(DAY_MS)
}

/// The month index that [`month_index_sql`] gives a unix-ms time: both backends read the
/// time in whole seconds, truncated toward zero.
fn month_of(ms: i64) -> i64 {
    month_index(ms / 1000 * 1000)
}

/// SQL giving [`day_of`] of the unix-ms column `column` (integer division truncates
/// toward zero on both backends; this floors).
pub(crate) fn day_sql(column: &str) -> String {
    format!("(({column} - ((({column} % {DAY_MS}) + {DAY_MS}) % {DAY_MS})) / {DAY_MS})")
}

/// The collation that orders order ids bytewise, as Rust's `str` does.
fn bytewise(backend: Backend) -> &'static str {
    match backend {
        Backend::Sqlite => "",
        Backend::Postgres => " COLLATE \"C\"",
    }
}

/// One row of `customer_purchases` (without the shop and customer).
#[derive(Debug, Clone, PartialEq, Eq)]
struct PurchaseRow {
    placed_at: i64,
    order_id: String,
    prev_at: Option<i64>,
    next_at: Option<i64>,
    cur: i64,
    net_cur: i64,
    cum_cur: i64,
    cum_net_cur: i64,
    month: i64,
    cohort: i64,
    month_first: i64,
}

/// One purchase as read from `orders`: id, time, net, whether in the shop's currency.
struct Purchase {
    order_id: String,
    placed_at: i64,
    net: i64,
    cur: bool,
}

/// One customer's `customer_purchases` rows from their purchases in (time, id) order.
fn purchase_rows(purchases: &[Purchase]) -> Vec<PurchaseRow> {
    let cohort = purchases.first().map_or(0, |p| month_of(p.placed_at));
    let (mut cum_cur, mut cum_net_cur) = (0i64, 0i64);
    purchases
        .iter()
        .enumerate()
        .map(|(i, p)| {
            let month = month_of(p.placed_at);
            let previous = i.checked_sub(1).map(|j| &purchases[j]);
            let net_cur = if p.cur { p.net } else { 0 };
            cum_cur += i64::from(p.cur);
            cum_net_cur = cum_net_cur.saturating_add(net_cur);
            PurchaseRow {
                placed_at: p.placed_at,
                order_id: p.order_id.clone(),
                prev_at: previous.map(|q| q.placed_at),
                next_at: purchases.get(i + 1).map(|q| q.placed_at),
                cur: i64::from(p.cur),
                net_cur,
                cum_cur,
                cum_net_cur,
                month,
                cohort,
                month_first: i64::from(previous.is_none_or(|q| month_of(q.placed_at) != month)),
            }
        })
        .collect()
}

const PURCHASE_COLUMNS: &str =
    "placed_at, order_id, prev_at, next_at, cur, net_cur, cum_cur, cum_net_cur, month, cohort, month_first";

fn purchase_row(row: &sqlx::any::AnyRow) -> Result<PurchaseRow, sqlx::Error> {
    Ok(PurchaseRow {
        placed_at: row.try_get(0)?,
        order_id: row.try_get(1)?,
        prev_at: row.try_get(2)?,
        next_at: row.try_get(3)?,
        cur: row.try_get(4)?,
        net_cur: row.try_get(5)?,
        cum_cur: row.try_get(6)?,
        cum_net_cur: row.try_get(7)?,
        month: row.try_get(8)?,
        cohort: row.try_get(9)?,
        month_first: row.try_get(10)?,
    })
}

/// Rewrites one customer's rollups from their orders: called wherever the customer's
/// stats are (`customers::refresh_stats`), after the orders changed, in the same
/// transaction. Only the purchase rows that differ are written (a new order rewrites its
/// own row and the previous one's link).
pub(crate) async fn refresh_customer(conn: &mut AnyConnection, shop_id: i64, customer_id: i64) -> StoreResult<()> {
    let found: Vec<(String, i64, i64, i64)> = sqlx::query_as(&format!(
        "SELECT o.id, o.placed_at, o.total - o.refunded, \
                CAST(CASE WHEN o.currency = s.currency THEN 1 ELSE 0 END AS BIGINT) \
         FROM orders o JOIN shops s ON s.id = o.shop_id \
         WHERE o.shop_id = $1 AND o.customer_id = $2 AND {}",
        *PURCHASE
    ))
    .bind(shop_id)
    .bind(customer_id)
    .fetch_all(&mut *conn)
    .await?;
    let mut purchases: Vec<Purchase> = found
        .into_iter()
        .map(|(order_id, placed_at, net, cur)| Purchase { order_id, placed_at, net, cur: cur == 1 })
        .collect();
    purchases.sort_by(|a, b| (a.placed_at, a.order_id.as_str()).cmp(&(b.placed_at, b.order_id.as_str())));
    let rows = purchase_rows(&purchases);

    let stored = sqlx::query(&format!(
        "SELECT {PURCHASE_COLUMNS} FROM customer_purchases WHERE shop_id = $1 AND customer_id = $2"
    ))
    .bind(shop_id)
    .bind(customer_id)
    .fetch_all(&mut *conn)
    .await?;
    let mut stored: HashMap<(i64, String), PurchaseRow> = stored
        .iter()
        .map(|row| purchase_row(row).map(|r| ((r.placed_at, r.order_id.clone()), r)))
        .collect::<Result<_, _>>()?;
    for row in &rows {
        // Both statements take the row's columns in the same order.
        let sql = match stored.remove(&(row.placed_at, row.order_id.clone())) {
            Some(old) if old == *row => continue,
            Some(_) => {
                "UPDATE customer_purchases SET prev_at = $5, next_at = $6, cur = $7, net_cur = $8, cum_cur = $9, \
                        cum_net_cur = $10, month = $11, cohort = $12, month_first = $13 \
                        WHERE shop_id = $1 AND customer_id = $2 AND placed_at = $3 AND order_id = $4"
                    .to_owned()
            }
            None => format!(
                "INSERT INTO customer_purchases (shop_id, customer_id, {PURCHASE_COLUMNS}) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)"
            ),
        };
        sqlx::query(&sql)
            .bind(shop_id)
            .bind(customer_id)
            .bind(row.placed_at)
            .bind(row.order_id.as_str())
            .bind(row.prev_at)
            .bind(row.next_at)
            .bind(row.cur)
            .bind(row.net_cur)
            .bind(row.cum_cur)
            .bind(row.cum_net_cur)
            .bind(row.month)
            .bind(row.cohort)
            .bind(row.month_first)
            .execute(&mut *conn)
            .await?;
    }
    for (placed_at, order_id) in stored.into_keys() {
        sqlx::query(
            "DELETE FROM customer_purchases WHERE shop_id = $1 AND customer_id = $2 AND placed_at = $3 AND order_id = $4",
        )
        .bind(shop_id)
        .bind(customer_id)
        .bind(placed_at)
        .bind(order_id)
        .execute(&mut *conn)
        .await?;
    }

    let (Some(first), Some(last)) = (purchases.first(), purchases.last()) else {
        sqlx::query("DELETE FROM customer_rollups WHERE shop_id = $1 AND customer_id = $2")
            .bind(shop_id)
            .bind(customer_id)
            .execute(&mut *conn)
            .await?;
        return Ok(());
    };
    let spent = purchases
        .iter()
        .try_fold(0i64, |sum, p| sum.checked_add(p.net))
        .ok_or_else(|| StoreError::Corrupt(format!("customer {customer_id}'s spend overflows")))?;
    let (purchases_cur, net_cur) = rows.last().map_or((0, 0), |r| (r.cum_cur, r.cum_net_cur));
    sqlx::query(
        "INSERT INTO customer_rollups (shop_id, customer_id, purchases, spent, first_at, last_at, purchases_cur, net_cur) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8) \
         ON CONFLICT (shop_id, customer_id) DO UPDATE SET purchases = excluded.purchases, spent = excluded.spent, \
         first_at = excluded.first_at, last_at = excluded.last_at, purchases_cur = excluded.purchases_cur, \
         net_cur = excluded.net_cur",
    )
    .bind(shop_id)
    .bind(customer_id)
    .bind(i64::try_from(purchases.len()).unwrap_or(i64::MAX))
    .bind(spent)
    .bind(first.placed_at)
    .bind(last.placed_at)
    .bind(purchases_cur)
    .bind(net_cur)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Parameters written in the backend's style: `$1, $2, …` on PostgreSQL, `?` on SQLite
/// (where numbered parameters make long lists quadratic to bind), in order of use.
struct Params {
    numbered: bool,
    used: usize,
}

impl Params {
    fn new(backend: Backend) -> Self {
        Self { numbered: backend == Backend::Postgres, used: 0 }
    }

    fn next(&mut self) -> String {
        self.used += 1;
        if self.numbered { format!("${}", self.used) } else { "?".to_owned() }
    }

    fn list(&mut self, n: usize) -> String {
        (0..n).map(|_| self.next()).collect::<Vec<_>>().join(", ")
    }
}

/// Which customers a set-based derivation covers: all of the shop's, or those listed.
#[derive(Clone, Copy)]
enum Customers<'a> {
    All,
    Listed(&'a [i64]),
}

/// Customers listed per statement: well inside both backends' parameter limits.
const LISTED: usize = 5_000;

/// Derives the customer rollups of `customers` from their orders, set-based (window
/// functions over the orders), after deleting what they held.
async fn derive_customers(conn: &mut AnyConnection, shop_id: i64, customers: Customers<'_>) -> StoreResult<()> {
    let backend = Backend::of(conn);
    let chunks: Vec<Option<&[i64]>> = match customers {
        Customers::All => vec![None],
        Customers::Listed(ids) => ids.chunks(LISTED).map(Some).collect(),
    };
    let month = month_index_sql(backend, "o.placed_at");
    let collate = bytewise(backend);
    for chunk in chunks {
        // Each statement: the shop, then the listed ids.
        let filter = |p: &mut Params, column: &str| match chunk {
            None => String::new(),
            Some(ids) => format!(" AND {column} IN ({})", p.list(ids.len())),
        };
        for table in ["customer_purchases", "customer_rollups"] {
            let mut p = Params::new(backend);
            let sql = format!("DELETE FROM {table} WHERE shop_id = {}{}", p.next(), filter(&mut p, "customer_id"));
            bind_all(sqlx::query(&sql), shop_id, chunk).execute(&mut *conn).await?;
        }
        let mut p = Params::new(backend);
        let sql = format!(
            "INSERT INTO customer_purchases (shop_id, customer_id, {PURCHASE_COLUMNS}) \
             SELECT shop_id, customer_id, placed_at, id, prev_at, next_at, cur, net_cur, \
                    CAST(SUM(cur) OVER w AS BIGINT), CAST(SUM(net_cur) OVER w AS BIGINT), month, \
                    FIRST_VALUE(month) OVER w, \
                    CASE WHEN prev_month IS NULL OR prev_month <> month THEN 1 ELSE 0 END \
             FROM (SELECT o.shop_id, o.customer_id, o.placed_at, o.id, \
                          LAG(o.placed_at) OVER c AS prev_at, LEAD(o.placed_at) OVER c AS next_at, \
                          CASE WHEN o.currency = s.currency THEN 1 ELSE 0 END AS cur, \
                          CASE WHEN o.currency = s.currency THEN o.total - o.refunded ELSE 0 END AS net_cur, \
                          {month} AS month, LAG({month}) OVER c AS prev_month \
                   FROM orders o JOIN shops s ON s.id = o.shop_id \
                   WHERE o.shop_id = {shop} AND {purchase} AND o.customer_id IS NOT NULL{filter} \
                   WINDOW c AS (PARTITION BY o.customer_id ORDER BY o.placed_at, o.id{collate})) p \
             WINDOW w AS (PARTITION BY customer_id ORDER BY placed_at, id{collate} ROWS UNBOUNDED PRECEDING)",
            shop = p.next(),
            purchase = *PURCHASE,
            filter = filter(&mut p, "o.customer_id"),
        );
        bind_all(sqlx::query(&sql), shop_id, chunk).execute(&mut *conn).await?;
        let mut p = Params::new(backend);
        let sql = format!(
            "INSERT INTO customer_rollups (shop_id, customer_id, purchases, spent, first_at, last_at, purchases_cur, \
               net_cur) \
             SELECT o.shop_id, o.customer_id, COUNT(*), CAST(SUM(o.total - o.refunded) AS BIGINT), MIN(o.placed_at), \
                    MAX(o.placed_at), CAST(SUM(CASE WHEN o.currency = s.currency THEN 1 ELSE 0 END) AS BIGINT), \
                    CAST(SUM(CASE WHEN o.currency = s.currency THEN o.total - o.refunded ELSE 0 END) AS BIGINT) \
             FROM orders o JOIN shops s ON s.id = o.shop_id \
             WHERE o.shop_id = {shop} AND {purchase} AND o.customer_id IS NOT NULL{filter} \
             GROUP BY o.shop_id, o.customer_id",
            shop = p.next(),
            purchase = *PURCHASE,
            filter = filter(&mut p, "o.customer_id"),
        );
        bind_all(sqlx::query(&sql), shop_id, chunk).execute(&mut *conn).await?;
    }
    Ok(())
}

/// Binds the shop, then the listed ids.
fn bind_all<'q>(query: super::bulk::AnyQuery<'q>, shop_id: i64, ids: Option<&'q [i64]>) -> super::bulk::AnyQuery<'q> {
    let mut query = query.bind(shop_id);
    for id in ids.unwrap_or_default() {
        query = query.bind(*id);
    }
    query
}

/// Rewrites the rollups of the customers `ids` from their orders, set-based: called
/// where their stats are refreshed set-based (`bulk::refresh_stats_of`).
pub(crate) async fn refresh_customers(conn: &mut AnyConnection, shop_id: i64, ids: &[i64]) -> StoreResult<()> {
    if ids.is_empty() {
        return Ok(());
    }
    derive_customers(conn, shop_id, Customers::Listed(ids)).await
}

/// Derives every rollup of a shop from its orders, replacing what was there.
pub async fn rebuild(conn: &mut AnyConnection, shop_id: i64) -> StoreResult<()> {
    derive_customers(conn, shop_id, Customers::All).await?;
    sqlx::query("DELETE FROM shop_days WHERE shop_id = $1").bind(shop_id).execute(&mut *conn).await?;
    let day = day_sql("o.placed_at");
    sqlx::query(&format!(
        "INSERT INTO shop_days (shop_id, day, currency, purchases, revenue) \
         SELECT o.shop_id, {day}, o.currency, COUNT(*), CAST(SUM(o.total - o.refunded) AS BIGINT) FROM orders o \
         WHERE o.shop_id = $1 AND {} GROUP BY o.shop_id, {day}, o.currency",
        *PURCHASE
    ))
    .bind(shop_id)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// A row of `shop_days`: (day, currency).
type DayKey<'a> = (i64, &'a str);
/// What a row of `shop_days` holds, or a change to it: (purchases, revenue).
type DaySales = (i64, i64);

/// What one order adds to `shop_days`: its day and currency, one purchase and its net;
/// nothing unless it is a purchase.
fn contribution(order: &Order) -> Option<(DayKey<'_>, DaySales)> {
    order
        .status
        .is_purchase()
        .then(|| ((day_of(order.placed_at), order.currency.as_str()), (1, order.total - order.refunded)))
}

/// Adds the difference between `before` and `after` (an order as it was and as it is
/// now; `None`: absent) to the shop's days, in the order's transaction.
pub(crate) async fn order_changed(
    conn: &mut AnyConnection,
    shop_id: i64,
    before: Option<&Order>,
    after: &Order,
) -> StoreResult<()> {
    let mut deltas = BTreeMap::new();
    if let Some((key, (purchases, revenue))) = before.and_then(contribution) {
        let entry = deltas.entry(key).or_insert((0, 0));
        entry.0 -= purchases;
        entry.1 -= revenue;
    }
    add_orders(&mut deltas, std::slice::from_ref(after));
    apply(conn, shop_id, deltas).await
}

/// Adds new orders (none of them stored before) to the shop's days.
pub(crate) async fn orders_added(conn: &mut AnyConnection, shop_id: i64, orders: &[Order]) -> StoreResult<()> {
    let mut deltas = BTreeMap::new();
    add_orders(&mut deltas, orders);
    apply(conn, shop_id, deltas).await
}

fn add_orders<'a>(deltas: &mut BTreeMap<DayKey<'a>, DaySales>, orders: &'a [Order]) {
    for (key, (purchases, revenue)) in orders.iter().filter_map(contribution) {
        let entry = deltas.entry(key).or_insert((0, 0));
        entry.0 += purchases;
        entry.1 += revenue;
    }
}

/// Adds each (day, currency)'s purchases and revenue, in key order (so two transactions
/// lock the rows they share in the same order), and drops days left without purchases.
async fn apply(conn: &mut AnyConnection, shop_id: i64, deltas: BTreeMap<DayKey<'_>, DaySales>) -> StoreResult<()> {
    let deltas: Vec<_> = deltas.into_iter().filter(|(_, delta)| *delta != (0, 0)).collect();
    let emptied = deltas.iter().any(|(_, (purchases, _))| *purchases < 0);
    let backend = Backend::of(conn);
    for chunk in deltas.chunks(1_000) {
        let mut p = Params::new(backend);
        let values: Vec<String> = chunk
            .iter()
            .map(|_| format!("({}, {}, {}, {}, {})", p.next(), p.next(), p.next(), p.next(), p.next()))
            .collect();
        let sql = format!(
            "INSERT INTO shop_days (shop_id, day, currency, purchases, revenue) VALUES {} \
             ON CONFLICT (shop_id, day, currency) DO UPDATE SET purchases = shop_days.purchases + excluded.purchases, \
             revenue = shop_days.revenue + excluded.revenue",
            values.join(", ")
        );
        let mut query = sqlx::query(&sql);
        for ((day, currency), (purchases, revenue)) in chunk {
            query = query.bind(shop_id).bind(*day).bind(*currency).bind(*purchases).bind(*revenue);
        }
        query.execute(&mut *conn).await?;
    }
    if emptied {
        sqlx::query("DELETE FROM shop_days WHERE shop_id = $1 AND purchases = 0")
            .bind(shop_id)
            .execute(&mut *conn)
            .await?;
    }
    Ok(())
}

impl Db {
    /// Derives the rollups of the shops migration 0020 left to derive (those with orders
    /// then), each in its own transaction, which also removes it from the list (so two
    /// processes starting together derive each shop once).
    pub async fn backfill_rollups(&self) -> StoreResult<()> {
        let shops: Vec<i64> =
            sqlx::query_scalar("SELECT shop_id FROM rollup_backfills ORDER BY shop_id").fetch_all(self.pool()).await?;
        for shop_id in shops {
            let started = std::time::Instant::now();
            let mut w = self.write().await?;
            let claimed = sqlx::query("DELETE FROM rollup_backfills WHERE shop_id = $1")
                .bind(shop_id)
                .execute(&mut *w.tx)
                .await?
                .rows_affected();
            if claimed == 1 {
                rebuild(&mut w.tx, shop_id).await?;
                tracing::info!(
                    shop_id,
                    elapsed_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
                    "derived the console's rollups"
                );
            }
            w.commit().await?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn purchase(order_id: &str, placed_at: i64, net: i64, cur: bool) -> Purchase {
        Purchase { order_id: order_id.into(), placed_at, net, cur }
    }

    #[test]
    fn links_each_purchase_to_the_previous_and_next() {
        // 2024-01-31 and 2024-02-01 00:00 UTC, then the same ms twice in February.
        let jan31 = 1_706_659_200_000;
        let feb1 = jan31 + DAY_MS;
        let rows = purchase_rows(&[
            purchase("a", jan31, 100, true),
            purchase("b", feb1, 50, false),
            purchase("c", feb1 + 5, 30, true),
            purchase("d", feb1 + 5, 20, true),
        ]);
        let links: Vec<_> = rows.iter().map(|r| (r.prev_at, r.next_at)).collect();
        assert_eq!(
            links,
            [(None, Some(feb1)), (Some(jan31), Some(feb1 + 5)), (Some(feb1), Some(feb1 + 5)), (Some(feb1 + 5), None)]
        );
        let sums: Vec<_> = rows.iter().map(|r| (r.cum_cur, r.cum_net_cur)).collect();
        assert_eq!(sums, [(1, 100), (1, 100), (2, 130), (3, 150)]);
        let months: Vec<_> = rows.iter().map(|r| (r.month - r.cohort, r.month_first)).collect();
        assert_eq!(months, [(0, 1), (1, 1), (1, 0), (1, 0)]);
        assert_eq!(rows[0].cohort, 2024 * 12);
    }

    #[test]
    fn days_and_months_floor_before_1970() {
        assert_eq!(day_of(-1), -1);
        assert_eq!(day_of(DAY_MS), 1);
        // SQL reads whole seconds truncated toward zero: -1 ms is still 1970-01.
        assert_eq!(month_of(-1), 1970 * 12);
        assert_eq!(month_of(-1000), 1969 * 12 + 11);
    }
}
