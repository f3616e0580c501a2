//! Bulk writes: many rows per INSERT statement, for the demo seeder and imports, and a
//! set-based recompute of every customer's stats.
//!
//! A statement binds at most as many parameters as the backend allows (SQLite 32,766,
//! PostgreSQL 65,535), so a slice of rows is cut into statements of equal size. Rows
//! that already exist are skipped (`ON CONFLICT DO NOTHING`), so re-running a
//! deterministic bulk load is harmless.

use std::collections::HashMap;

use sqlx::any::AnyArguments;
use sqlx::query::Query;
use sqlx::{Any, AnyConnection, Row};

use super::customers::{CustomerInput, refresh_stats};
use super::events::NewEvent;
use super::orders::{Order, OrderLine, OrderStatus, order_from_row};
use super::{StoreResult, now_ms};

/// A query being built on the `Any` driver.
pub type AnyQuery<'q> = Query<'q, Any, AnyArguments<'q>>;

/// A row of one table that can be inserted many at a time.
pub trait BulkRow: Sync {
    const TABLE: &'static str;
    /// The table's columns, `shop_id` first, in the order [`BulkRow::bind`] binds them.
    const COLUMNS: &'static [&'static str];
    fn bind<'q>(&'q self, shop_id: i64, query: AnyQuery<'q>) -> AnyQuery<'q>;
}

/// Most rows in one statement, whatever the parameter limit: bigger statements stop
/// paying off well before it.
const MAX_ROWS_PER_STATEMENT: usize = 2_000;

/// How one backend takes a multi-row INSERT.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Dialect {
    max_parameters: usize,
    /// Whether parameters are written `$N` (PostgreSQL) or `?` (SQLite). Binding a named
    /// or numbered SQLite parameter looks its name up in a list, which makes a statement
    /// with thousands of them quadratic to bind; anonymous `?`s bind in order.
    numbered: bool,
}

impl Dialect {
    fn of(conn: &AnyConnection) -> Self {
        if conn.backend_name().eq_ignore_ascii_case("sqlite") {
            Self { max_parameters: 32_766, numbered: false }
        } else {
            Self { max_parameters: 65_535, numbered: true }
        }
    }
}

/// `(…), (…)` value tuples for `rows` rows of `columns` parameters each, in the
/// dialect's parameter style.
pub(crate) fn value_tuples(numbered: bool, rows: usize, columns: usize) -> String {
    let mut sql = String::with_capacity(rows * columns * 8);
    for row in 0..rows {
        sql.push_str(if row == 0 { "(" } else { ", (" });
        for column in 0..columns {
            if column > 0 {
                sql.push_str(", ");
            }
            if numbered {
                sql.push('$');
                sql.push_str(&(row * columns + column + 1).to_string());
            } else {
                sql.push('?');
            }
        }
        sql.push(')');
    }
    sql
}

/// The statement inserting `rows` rows of `R`.
fn insert_sql<R: BulkRow>(dialect: Dialect, rows: usize) -> String {
    let mut sql = format!("INSERT INTO {} ({}) VALUES ", R::TABLE, R::COLUMNS.join(", "));
    sql.push_str(&value_tuples(dialect.numbered, rows, R::COLUMNS.len()));
    sql.push_str(" ON CONFLICT DO NOTHING");
    sql
}

/// Inserts `rows` with as few statements as the backend's parameter limit allows;
/// returns how many were new.
pub async fn insert_many<R: BulkRow>(conn: &mut AnyConnection, shop_id: i64, rows: &[R]) -> StoreResult<u64> {
    if rows.is_empty() {
        return Ok(0);
    }
    let dialect = Dialect::of(conn);
    let per_statement = (dialect.max_parameters / R::COLUMNS.len()).min(MAX_ROWS_PER_STATEMENT);
    let mut full_sql = None;
    let mut inserted = 0;
    for chunk in rows.chunks(per_statement) {
        let partial_sql;
        let sql = if chunk.len() == per_statement {
            full_sql.get_or_insert_with(|| insert_sql::<R>(dialect, per_statement)).as_str()
        } else {
            partial_sql = insert_sql::<R>(dialect, chunk.len());
            partial_sql.as_str()
        };
        let mut query = sqlx::query(sql);
        for row in chunk {
            query = row.bind(shop_id, query);
        }
        inserted += query.execute(&mut *conn).await?.rows_affected();
    }
    Ok(inserted)
}

/// A customer to insert as is, with an id chosen by the caller.
#[derive(Debug, Clone, PartialEq)]
pub struct NewCustomer {
    pub id: i64,
    pub input: CustomerInput,
}

impl BulkRow for NewCustomer {
    const TABLE: &'static str = "customers";
    const COLUMNS: &'static [&'static str] = &[
        "shop_id",
        "id",
        "external_id",
        "email",
        "phone",
        "first_name",
        "last_name",
        "birthday",
        "marketing_consent",
        "traits",
        "created_at",
        "updated_at",
    ];

    fn bind<'q>(&'q self, shop_id: i64, query: AnyQuery<'q>) -> AnyQuery<'q> {
        let input = &self.input;
        let created_at = input.created_at.unwrap_or_else(now_ms);
        let traits =
            input.traits.as_ref().map_or_else(|| "{}".to_owned(), |t| serde_json::Value::from(t.clone()).to_string());
        query
            .bind(shop_id)
            .bind(self.id)
            .bind(input.external_id.as_deref())
            .bind(input.email.as_deref())
            .bind(input.phone.as_deref())
            .bind(input.first_name.as_deref())
            .bind(input.last_name.as_deref())
            .bind(input.birthday.as_deref())
            .bind(i64::from(input.marketing_consent.unwrap_or(false)))
            .bind(traits)
            .bind(created_at)
            .bind(created_at)
    }
}

/// An identity (anonymous id, email, phone) pointing at a customer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewIdentity {
    pub kind: &'static str,
    pub value: String,
    pub customer_id: i64,
    pub created_at: i64,
}

impl BulkRow for NewIdentity {
    const TABLE: &'static str = "identities";
    const COLUMNS: &'static [&'static str] = &["shop_id", "kind", "value", "customer_id", "created_at"];

    fn bind<'q>(&'q self, shop_id: i64, query: AnyQuery<'q>) -> AnyQuery<'q> {
        query.bind(shop_id).bind(self.kind).bind(self.value.as_str()).bind(self.customer_id).bind(self.created_at)
    }
}

/// An order's own row; its lines go in with [`LineRow`]s.
impl BulkRow for Order {
    const TABLE: &'static str = "orders";
    const COLUMNS: &'static [&'static str] = &[
        "shop_id",
        "id",
        "customer_id",
        "status",
        "currency",
        "subtotal",
        "discount",
        "shipping",
        "tax",
        "total",
        "refunded",
        "coupon_codes",
        "placed_at",
        "updated_at",
    ];

    fn bind<'q>(&'q self, shop_id: i64, query: AnyQuery<'q>) -> AnyQuery<'q> {
        let codes = serde_json::to_string(&self.coupon_codes).unwrap_or_else(|_| "[]".into());
        query
            .bind(shop_id)
            .bind(self.id.as_str())
            .bind(self.customer_id)
            .bind(self.status.as_str())
            .bind(self.currency.as_str())
            .bind(self.subtotal)
            .bind(self.discount)
            .bind(self.shipping)
            .bind(self.tax)
            .bind(self.total)
            .bind(self.refunded)
            .bind(codes)
            .bind(self.placed_at)
            .bind(self.placed_at)
    }
}

/// An order's own row written as the per-order upsert writes it: updated at `updated_at`
/// (the time of the import), where [`Order`]'s own bulk row takes its placement time.
#[derive(Debug, Clone, Copy)]
pub struct OrderAt<'a> {
    pub order: &'a Order,
    pub updated_at: i64,
}

impl BulkRow for OrderAt<'_> {
    const TABLE: &'static str = <Order as BulkRow>::TABLE;
    const COLUMNS: &'static [&'static str] = <Order as BulkRow>::COLUMNS;

    fn bind<'q>(&'q self, shop_id: i64, query: AnyQuery<'q>) -> AnyQuery<'q> {
        let order = self.order;
        let codes = serde_json::to_string(&order.coupon_codes).unwrap_or_else(|_| "[]".into());
        query
            .bind(shop_id)
            .bind(order.id.as_str())
            .bind(order.customer_id)
            .bind(order.status.as_str())
            .bind(order.currency.as_str())
            .bind(order.subtotal)
            .bind(order.discount)
            .bind(order.shipping)
            .bind(order.tax)
            .bind(order.total)
            .bind(order.refunded)
            .bind(codes)
            .bind(order.placed_at)
            .bind(self.updated_at)
    }
}

/// One line of an order, numbered from 0 as the store numbers them.
#[derive(Debug, Clone, Copy)]
pub struct LineRow<'a> {
    pub order_id: &'a str,
    pub line_no: i64,
    pub line: &'a OrderLine,
}

impl LineRow<'_> {
    /// The rows of all lines of `orders`.
    pub fn of(orders: &[Order]) -> Vec<LineRow<'_>> {
        orders
            .iter()
            .flat_map(|o| {
                o.lines.iter().enumerate().map(|(i, line)| LineRow { order_id: &o.id, line_no: i as i64, line })
            })
            .collect()
    }
}

impl BulkRow for LineRow<'_> {
    const TABLE: &'static str = "order_lines";
    const COLUMNS: &'static [&'static str] =
        &["shop_id", "order_id", "line_no", "product_id", "sku", "title", "category", "quantity", "unit_price"];

    fn bind<'q>(&'q self, shop_id: i64, query: AnyQuery<'q>) -> AnyQuery<'q> {
        let line = self.line;
        query
            .bind(shop_id)
            .bind(self.order_id)
            .bind(self.line_no)
            .bind(line.product_id.as_deref())
            .bind(line.sku.as_deref())
            .bind(line.title.as_str())
            .bind(line.category.as_deref())
            .bind(line.quantity)
            .bind(line.unit_price)
    }
}

/// A refund of part or all of an order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewRefund {
    pub id: String,
    pub order_id: String,
    pub amount: i64,
    pub reason: Option<String>,
    pub created_at: i64,
}

impl BulkRow for NewRefund {
    const TABLE: &'static str = "refunds";
    const COLUMNS: &'static [&'static str] = &["shop_id", "id", "order_id", "amount", "reason", "created_at"];

    fn bind<'q>(&'q self, shop_id: i64, query: AnyQuery<'q>) -> AnyQuery<'q> {
        query
            .bind(shop_id)
            .bind(self.id.as_str())
            .bind(self.order_id.as_str())
            .bind(self.amount)
            .bind(self.reason.as_deref())
            .bind(self.created_at)
    }
}

/// A past event; it is taken to have been received when it occurred.
impl BulkRow for NewEvent {
    const TABLE: &'static str = "events";
    const COLUMNS: &'static [&'static str] = &[
        "shop_id",
        "event_id",
        "kind",
        "occurred_at",
        "received_at",
        "anonymous_id",
        "customer_id",
        "url",
        "properties",
    ];

    fn bind<'q>(&'q self, shop_id: i64, query: AnyQuery<'q>) -> AnyQuery<'q> {
        query
            .bind(shop_id)
            .bind(self.event_id.as_str())
            .bind(self.kind.as_str())
            .bind(self.occurred_at)
            .bind(self.occurred_at)
            .bind(self.anonymous_id.as_deref())
            .bind(self.customer_id)
            .bind(self.url.as_deref())
            .bind(self.properties.as_str())
    }
}

/// Recomputes the stats of every customer of a shop from its orders in two set-based
/// statements, with the same rules as the per-customer refresh: paid and fulfilled
/// orders count, partial refunds reduce the amount spent. Returns the customers updated.
pub async fn recompute_customer_stats(conn: &mut AnyConnection, shop_id: i64) -> StoreResult<u64> {
    let now = now_ms();
    let with_orders = sqlx::query(
        "UPDATE customers SET order_count = s.n, total_spent = s.spent, first_order_at = s.first_at, \
           last_order_at = s.last_at, updated_at = $2 \
         FROM (SELECT customer_id, COUNT(*) AS n, CAST(SUM(total - refunded) AS BIGINT) AS spent, \
                      MIN(placed_at) AS first_at, MAX(placed_at) AS last_at \
               FROM orders WHERE shop_id = $1 AND customer_id IS NOT NULL AND status IN ('paid', 'fulfilled') \
               GROUP BY customer_id) AS s \
         WHERE customers.shop_id = $1 AND customers.id = s.customer_id",
    )
    .bind(shop_id)
    .bind(now)
    .execute(&mut *conn)
    .await?
    .rows_affected();
    let without = sqlx::query(
        "UPDATE customers SET order_count = 0, total_spent = 0, first_order_at = NULL, last_order_at = NULL, \
           updated_at = $2 \
         WHERE shop_id = $1 AND (order_count <> 0 OR first_order_at IS NOT NULL) AND NOT EXISTS ( \
           SELECT 1 FROM orders o WHERE o.shop_id = $1 AND o.customer_id = customers.id \
           AND o.status IN ('paid', 'fulfilled'))",
    )
    .bind(shop_id)
    .bind(now)
    .execute(&mut *conn)
    .await?
    .rows_affected();
    super::rollups::rebuild(conn, shop_id).await?;
    Ok(with_orders + without)
}

/// Values bound per `IN (…)` list: well inside both backends' parameter limits.
const IN_LIST: usize = 5_000;

/// `n` parameters for an `IN (…)` list whose first is parameter number `first`, in the
/// dialect's style.
fn in_list(numbered: bool, first: usize, n: usize) -> String {
    let mut sql = String::with_capacity(n * 7);
    for i in 0..n {
        if i > 0 {
            sql.push_str(", ");
        }
        if numbered {
            sql.push('$');
            sql.push_str(&(first + i).to_string());
        } else {
            sql.push('?');
        }
    }
    sql
}

/// The stored orders (with their lines) among `ids`, by id: one statement per
/// [`IN_LIST`] ids, an order's row joined to each of its lines (an order of one line, as
/// most are, is one row).
pub(crate) async fn orders_by_ids(
    conn: &mut AnyConnection,
    shop_id: i64,
    ids: &[&str],
) -> StoreResult<HashMap<String, Order>> {
    let numbered = Dialect::of(conn).numbered;
    let shop = if numbered { "$1" } else { "?" };
    let mut orders: HashMap<String, Order> = HashMap::new();
    for chunk in ids.chunks(IN_LIST) {
        let list = in_list(numbered, 2, chunk.len());
        let sql = format!(
            "SELECT o.id, o.customer_id, o.status, o.currency, o.subtotal, o.discount, o.shipping, o.tax, o.total, \
               o.refunded, o.coupon_codes, o.placed_at, l.product_id, l.sku, l.title, l.category, l.quantity, \
               l.unit_price \
             FROM orders o LEFT JOIN order_lines l ON l.shop_id = o.shop_id AND l.order_id = o.id \
             WHERE o.shop_id = {shop} AND o.id IN ({list}) ORDER BY o.id, l.line_no"
        );
        let mut query = sqlx::query(&sql).bind(shop_id);
        for id in chunk {
            query = query.bind(*id);
        }
        for row in query.fetch_all(&mut *conn).await? {
            let id: String = row.try_get("id")?;
            let order = match orders.entry(id) {
                std::collections::hash_map::Entry::Occupied(entry) => entry.into_mut(),
                std::collections::hash_map::Entry::Vacant(entry) => entry.insert(order_from_row(&row, Vec::new())?),
            };
            // A line's title is never null: a null one is an order without lines.
            if let Some(title) = row.try_get::<Option<String>, _>("title")? {
                order.lines.push(OrderLine {
                    product_id: row.try_get("product_id")?,
                    sku: row.try_get("sku")?,
                    title,
                    category: row.try_get("category")?,
                    quantity: row.try_get("quantity")?,
                    unit_price: row.try_get("unit_price")?,
                });
            }
        }
    }
    Ok(orders)
}

/// The customer each of `emails` (as an email identity) points to, with the email that
/// customer's record holds.
pub(crate) async fn email_owners(
    conn: &mut AnyConnection,
    shop_id: i64,
    emails: &[&str],
) -> StoreResult<HashMap<String, (i64, Option<String>)>> {
    let numbered = Dialect::of(conn).numbered;
    let shop = if numbered { "$1" } else { "?" };
    let mut owners = HashMap::with_capacity(emails.len());
    for chunk in emails.chunks(IN_LIST) {
        let list = in_list(numbered, 2, chunk.len());
        let sql = format!(
            "SELECT i.value, i.customer_id, c.email FROM identities i \
             JOIN customers c ON c.shop_id = i.shop_id AND c.id = i.customer_id \
             WHERE i.shop_id = {shop} AND i.kind = 'email' AND i.value IN ({list})"
        );
        let mut query = sqlx::query(&sql).bind(shop_id);
        for email in chunk {
            query = query.bind(*email);
        }
        for row in query.fetch_all(&mut *conn).await? {
            owners.insert(row.try_get("value")?, (row.try_get("customer_id")?, row.try_get("email")?));
        }
    }
    Ok(owners)
}

/// Refreshes the stats of the customers `ids` from their orders, set-based, to exactly
/// what the per-customer refresh writes: paid and fulfilled orders count, net of refunds;
/// every listed customer is stamped updated now.
pub(crate) async fn refresh_stats_of(conn: &mut AnyConnection, shop_id: i64, ids: &[i64]) -> StoreResult<()> {
    let numbered = Dialect::of(conn).numbered;
    let p = |n: usize| if numbered { format!("${n}") } else { "?".to_owned() };
    let now = now_ms();
    for chunk in ids.chunks(IN_LIST) {
        // Parameters in order of appearance: now, shop, ids…, shop.
        let list = in_list(numbered, 3, chunk.len());
        let sql = format!(
            "UPDATE customers SET order_count = s.n, total_spent = s.spent, first_order_at = s.first_at, \
               last_order_at = s.last_at, updated_at = {now} \
             FROM (SELECT customer_id, COUNT(*) AS n, CAST(SUM(total - refunded) AS BIGINT) AS spent, \
                          MIN(placed_at) AS first_at, MAX(placed_at) AS last_at \
                   FROM orders WHERE shop_id = {shop} AND customer_id IN ({list}) \
                   AND status IN ('paid', 'fulfilled') GROUP BY customer_id) AS s \
             WHERE customers.shop_id = {outer} AND customers.id = s.customer_id",
            now = p(1),
            shop = p(2),
            outer = p(3 + chunk.len()),
        );
        let mut query = sqlx::query(&sql).bind(now).bind(shop_id);
        for id in chunk {
            query = query.bind(*id);
        }
        query.bind(shop_id).execute(&mut *conn).await?;
        let list = in_list(numbered, 3, chunk.len());
        let sql = format!(
            "UPDATE customers SET order_count = 0, total_spent = 0, first_order_at = NULL, last_order_at = NULL, \
               updated_at = {now} \
             WHERE shop_id = {shop} AND id IN ({list}) AND NOT EXISTS ( \
               SELECT 1 FROM orders o WHERE o.shop_id = customers.shop_id AND o.customer_id = customers.id \
               AND o.status IN ('paid', 'fulfilled'))",
            now = p(1),
            shop = p(2),
        );
        let mut query = sqlx::query(&sql).bind(now).bind(shop_id);
        for id in chunk {
            query = query.bind(*id);
        }
        query.execute(&mut *conn).await?;
    }
    super::rollups::refresh_customers(conn, shop_id, ids).await
}

/// Refreshes PostgreSQL's statistics of the tables an import writes; nothing on SQLite,
/// whose planner picks these statements' indexes without statistics.
///
/// A bulk load outgrows what PostgreSQL knows of a table long before autovacuum samples
/// it again. Taking a fresh shop's orders for a handful of rows, the planner answered the
/// stats refresh's `NOT EXISTS` with a nested loop over every order of the shop for each
/// customer of the chunk: 7 s a chunk at 50,000 orders, the import slowing as it went.
pub(crate) async fn analyze_imported(db: &super::Db) -> StoreResult<()> {
    if db.backend() == super::Backend::Postgres {
        sqlx::query("ANALYZE customers, identities, orders, order_lines, refunds").execute(db.pool()).await?;
    }
    Ok(())
}

/// Brings an order's refunded amount up to `refunded_total`, as a store export states it,
/// by recording one refund for the difference (its id names the total it reaches, so the
/// same export never records it twice). A full refund marks a purchase refunded.
/// Returns whether anything was recorded.
pub(crate) async fn refund_up_to(
    conn: &mut AnyConnection,
    shop_id: i64,
    order: &Order,
    refunded_total: i64,
) -> StoreResult<bool> {
    if refunded_total <= order.refunded {
        return Ok(false);
    }
    let refund = NewRefund {
        id: format!("import:{}:{refunded_total}", order.id),
        order_id: order.id.clone(),
        amount: refunded_total - order.refunded,
        reason: Some("imported".into()),
        created_at: now_ms(),
    };
    insert_many(conn, shop_id, std::slice::from_ref(&refund)).await?;
    let status =
        if refunded_total >= order.total && order.status.is_purchase() { OrderStatus::Refunded } else { order.status };
    sqlx::query("UPDATE orders SET refunded = $3, status = $4, updated_at = $5 WHERE shop_id = $1 AND id = $2")
        .bind(shop_id)
        .bind(order.id.as_str())
        .bind(refunded_total)
        .bind(status.as_str())
        .bind(now_ms())
        .execute(&mut *conn)
        .await?;
    if let Some(customer_id) = order.customer_id {
        refresh_stats(conn, shop_id, customer_id).await?;
    }
    let after = Order { refunded: refunded_total, status, ..order.clone() };
    super::rollups::order_changed(conn, shop_id, Some(order), &after).await?;
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_parameters_row_by_row() {
        let postgres = Dialect { max_parameters: 65_535, numbered: true };
        assert_eq!(
            insert_sql::<NewIdentity>(postgres, 2),
            "INSERT INTO identities (shop_id, kind, value, customer_id, created_at) VALUES \
             ($1, $2, $3, $4, $5), ($6, $7, $8, $9, $10) ON CONFLICT DO NOTHING"
        );
        let sqlite = Dialect { max_parameters: 32_766, numbered: false };
        assert!(
            insert_sql::<NewIdentity>(sqlite, 2)
                .ends_with("VALUES (?, ?, ?, ?, ?), (?, ?, ?, ?, ?) ON CONFLICT DO NOTHING")
        );
    }
}
