//! Orders and their line items, refunds, and the customer stats they drive.
//! Orders are keyed by the store's order id, so posting one twice is an idempotent upsert.

use serde::{Deserialize, Serialize};
use sqlx::any::AnyRow;
use sqlx::{AnyConnection, Row};

use super::customers::{CustomerInput, InvalidInput, Upserted, refresh_stats, upsert_customer};
use super::order_hooks::{self, LoyaltyWork, OrderChange};
use super::{Db, StoreError, StoreResult, now_ms};
use crate::timestamp::Timestamp;

/// Where an order is in its life.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum OrderStatus {
    Pending,
    #[default]
    Paid,
    Fulfilled,
    Cancelled,
    Refunded,
}

impl OrderStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Paid => "paid",
            Self::Fulfilled => "fulfilled",
            Self::Cancelled => "cancelled",
            Self::Refunded => "refunded",
        }
    }

    fn parse(text: &str) -> Option<Self> {
        serde_json::from_value(serde_json::Value::String(text.to_owned())).ok()
    }

    /// Whether the order counts as a purchase in the customer's stats.
    pub fn is_purchase(self) -> bool {
        matches!(self, Self::Paid | Self::Fulfilled)
    }
}

/// One line of an order.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OrderLine {
    pub product_id: Option<String>,
    pub sku: Option<String>,
    pub title: String,
    pub category: Option<String>,
    pub quantity: i64,
    /// Minor units.
    pub unit_price: i64,
}

/// An order as the store's back end posts it.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OrderInput {
    pub id: String,
    pub customer: Option<CustomerInput>,
    #[serde(default)]
    pub status: OrderStatus,
    pub currency: Option<String>,
    #[serde(default)]
    pub lines: Vec<OrderLine>,
    #[serde(default)]
    pub discount: i64,
    #[serde(default)]
    pub shipping: i64,
    #[serde(default)]
    pub tax: i64,
    /// Defaults to lines − discount + shipping + tax.
    pub total: Option<i64>,
    #[serde(default)]
    pub coupon_codes: Vec<String>,
    pub placed_at: Option<Timestamp>,
}

/// A stored order.
#[derive(Debug, Clone, Serialize, PartialEq, utoipa::ToSchema)]
pub struct Order {
    pub id: String,
    #[serde(serialize_with = "crate::api::ids::option_string")]
    #[schema(value_type = Option<String>)]
    pub customer_id: Option<i64>,
    pub status: OrderStatus,
    pub currency: String,
    pub subtotal: i64,
    pub discount: i64,
    pub shipping: i64,
    pub tax: i64,
    pub total: i64,
    pub refunded: i64,
    pub coupon_codes: Vec<String>,
    pub placed_at: i64,
    pub lines: Vec<OrderLine>,
}

/// What an order upsert did, with what hooks need to react to it.
#[derive(Debug, Clone, Serialize)]
pub struct OrderOutcome {
    pub order: Order,
    pub result: Upserted,
    pub previous_status: Option<OrderStatus>,
    /// The change loyalty plugins must hear of, queued with it (by [`Db`]'s writes only:
    /// imported history earns nothing).
    #[serde(skip)]
    pub loyalty: Option<LoyaltyWork>,
    /// The customer this post created, if it created one: [`Db`]'s writes queue
    /// `customer.created` for it (imported history does not).
    #[serde(skip)]
    pub new_customer: Option<i64>,
}

/// A refund as the store's back end posts it; `id` makes it idempotent.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RefundInput {
    pub id: String,
    /// Minor units; defaults to what remains unrefunded.
    pub amount: Option<i64>,
    pub reason: Option<String>,
}

/// The largest amount (minor units) any price, fee or total may have: 10^15, a trillion
/// dollars in cents, far beyond any order and far enough below `i64::MAX` that sums of
/// many such amounts still fit.
pub const MAX_AMOUNT: i64 = 1_000_000_000_000_000;
/// The largest quantity one order line may have.
pub const MAX_QUANTITY: i64 = 1_000_000;

/// Checks that `value` is an amount between 0 and [`MAX_AMOUNT`].
pub fn check_amount(field: &'static str, value: i64) -> Result<i64, InvalidInput> {
    if value < 0 {
        Err(InvalidInput::new(field, "must not be negative"))
    } else if value > MAX_AMOUNT {
        Err(InvalidInput::new(field, format!("must be at most {MAX_AMOUNT} minor units")))
    } else {
        Ok(value)
    }
}

pub fn validate_currency(currency: &str) -> Result<(), InvalidInput> {
    if currency.len() == 3 && currency.bytes().all(|b| b.is_ascii_uppercase()) {
        Ok(())
    } else {
        Err(InvalidInput::new("currency", format!("`{currency}` is not an ISO 4217 code such as USD")))
    }
}

impl OrderInput {
    /// Checks amounts and builds the order to store.
    pub fn validate(self, shop_currency: &str) -> Result<(Order, Option<CustomerInput>), InvalidInput> {
        let id = self.id.trim().to_owned();
        if id.is_empty() || id.len() > 255 {
            return Err(InvalidInput::new("id", "must be 1 to 255 characters"));
        }
        let currency = self.currency.unwrap_or_else(|| shop_currency.to_owned());
        validate_currency(&currency)?;
        // One currency per shop: amounts in another would be summed as if they were the
        // shop's (Patron does not convert).
        if currency != shop_currency {
            return Err(InvalidInput::coded(
                "currency_mismatch",
                "currency",
                format!("the order is in {currency} but the shop counts in {shop_currency}"),
            ));
        }
        let mut subtotal: i64 = 0;
        for line in &self.lines {
            if !(1..=MAX_QUANTITY).contains(&line.quantity) {
                return Err(InvalidInput::new("lines.quantity", format!("must be between 1 and {MAX_QUANTITY}")));
            }
            check_amount("lines.unit_price", line.unit_price)?;
            subtotal = line
                .quantity
                .checked_mul(line.unit_price)
                .and_then(|amount| subtotal.checked_add(amount))
                .filter(|sum| *sum <= MAX_AMOUNT)
                .ok_or_else(|| InvalidInput::new("lines", format!("the subtotal exceeds {MAX_AMOUNT} minor units")))?;
        }
        let discount = check_amount("discount", self.discount)?;
        let shipping = check_amount("shipping", self.shipping)?;
        let tax = check_amount("tax", self.tax)?;
        let total = match self.total {
            Some(total) => total,
            None if self.lines.is_empty() => {
                return Err(InvalidInput::new("total", "an order without lines needs a total"));
            }
            // Each term is at most MAX_AMOUNT, so this cannot overflow.
            None => subtotal - discount + shipping + tax,
        };
        let total = check_amount("total", total)?;
        let customer = self.customer.map(CustomerInput::validate).transpose()?;
        let order = Order {
            id,
            customer_id: None,
            status: self.status,
            currency,
            subtotal,
            discount,
            shipping,
            tax,
            total,
            refunded: 0,
            coupon_codes: self
                .coupon_codes
                .into_iter()
                .map(|c| c.trim().to_uppercase())
                .filter(|c| !c.is_empty())
                .collect(),
            placed_at: self.placed_at.map_or(PLACED_AT_UNSET, |t| t.0),
            lines: self.lines,
        };
        Ok((order, customer))
    }
}

/// `placed_at` of a validated order the store posted without a time: it becomes the time
/// the order was first stored, so re-posting it is still idempotent.
pub const PLACED_AT_UNSET: i64 = i64::MIN;

const ORDER_COLUMNS: &str = "id, customer_id, status, currency, subtotal, discount, shipping, tax, total, refunded, \
     coupon_codes, placed_at";

pub(crate) fn order_from_row(row: &AnyRow, lines: Vec<OrderLine>) -> StoreResult<Order> {
    let status: String = row.try_get("status")?;
    let codes: String = row.try_get("coupon_codes")?;
    Ok(Order {
        id: row.try_get("id")?,
        customer_id: row.try_get("customer_id")?,
        status: OrderStatus::parse(&status).ok_or_else(|| StoreError::Corrupt(format!("order status {status}")))?,
        currency: row.try_get("currency")?,
        subtotal: row.try_get("subtotal")?,
        discount: row.try_get("discount")?,
        shipping: row.try_get("shipping")?,
        tax: row.try_get("tax")?,
        total: row.try_get("total")?,
        refunded: row.try_get("refunded")?,
        coupon_codes: serde_json::from_str(&codes).map_err(|e| StoreError::Corrupt(format!("coupon codes: {e}")))?,
        placed_at: row.try_get("placed_at")?,
        lines,
    })
}

pub(crate) async fn order_by_id(conn: &mut AnyConnection, shop_id: i64, id: &str) -> StoreResult<Option<Order>> {
    let Some(row) = sqlx::query(&format!("SELECT {ORDER_COLUMNS} FROM orders WHERE shop_id = $1 AND id = $2"))
        .bind(shop_id)
        .bind(id)
        .fetch_optional(&mut *conn)
        .await?
    else {
        return Ok(None);
    };
    let lines = sqlx::query(
        "SELECT product_id, sku, title, category, quantity, unit_price FROM order_lines \
         WHERE shop_id = $1 AND order_id = $2 ORDER BY line_no",
    )
    .bind(shop_id)
    .bind(id)
    .fetch_all(&mut *conn)
    .await?
    .iter()
    .map(|r| {
        Ok(OrderLine {
            product_id: r.try_get("product_id")?,
            sku: r.try_get("sku")?,
            title: r.try_get("title")?,
            category: r.try_get("category")?,
            quantity: r.try_get("quantity")?,
            unit_price: r.try_get("unit_price")?,
        })
    })
    .collect::<StoreResult<Vec<_>>>()?;
    order_from_row(&row, lines).map(Some)
}

/// Locks an order's row until the transaction ends (PostgreSQL), so a refund and a
/// re-post of one order, or two refunds, run one after the other.
async fn lock_order(conn: &mut AnyConnection, shop_id: i64, id: &str) -> StoreResult<()> {
    sqlx::query(&format!("SELECT id FROM orders WHERE shop_id = $1 AND id = $2 {}", super::for_update(conn)))
        .bind(shop_id)
        .bind(id)
        .fetch_optional(&mut *conn)
        .await?;
    Ok(())
}

/// Writes an order: an existing row is updated in place (not deleted and inserted, which
/// would let a transaction waiting on its lock find it gone).
async fn write_order(conn: &mut AnyConnection, shop_id: i64, order: &Order, exists: bool) -> StoreResult<()> {
    let codes = serde_json::to_string(&order.coupon_codes).unwrap_or_else(|_| "[]".into());
    let sql = if exists {
        sqlx::query("DELETE FROM order_lines WHERE shop_id = $1 AND order_id = $2")
            .bind(shop_id)
            .bind(&order.id)
            .execute(&mut *conn)
            .await?;
        "UPDATE orders SET customer_id = $3, status = $4, currency = $5, subtotal = $6, discount = $7, \
         shipping = $8, tax = $9, total = $10, refunded = $11, coupon_codes = $12, placed_at = $13, updated_at = $14 \
         WHERE shop_id = $1 AND id = $2"
            .to_owned()
    } else {
        format!(
            "INSERT INTO orders (shop_id, {ORDER_COLUMNS}, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)"
        )
    };
    sqlx::query(&sql)
        .bind(shop_id)
        .bind(&order.id)
        .bind(order.customer_id)
        .bind(order.status.as_str())
        .bind(&order.currency)
        .bind(order.subtotal)
        .bind(order.discount)
        .bind(order.shipping)
        .bind(order.tax)
        .bind(order.total)
        .bind(order.refunded)
        .bind(codes)
        .bind(order.placed_at)
        .bind(now_ms())
        .execute(&mut *conn)
        .await?;
    for (line_no, line) in order.lines.iter().enumerate() {
        sqlx::query(
            "INSERT INTO order_lines (shop_id, order_id, line_no, product_id, sku, title, category, quantity, unit_price) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        )
        .bind(shop_id)
        .bind(&order.id)
        .bind(line_no as i64)
        .bind(&line.product_id)
        .bind(&line.sku)
        .bind(&line.title)
        .bind(&line.category)
        .bind(line.quantity)
        .bind(line.unit_price)
        .execute(&mut *conn)
        .await?;
    }
    Ok(())
}

/// Upserts an order inside a transaction and refreshes the stats of the customers it touches.
pub(crate) async fn upsert_order(
    conn: &mut AnyConnection,
    shop_id: i64,
    mut order: Order,
    customer: Option<&CustomerInput>,
) -> StoreResult<OrderOutcome> {
    // The order before its customer: a refund locks them in that order too.
    lock_order(conn, shop_id, &order.id).await?;
    let mut new_customer = None;
    if let Some(customer) = customer {
        let (id, upserted) = upsert_customer(conn, shop_id, customer).await?;
        order.customer_id = Some(id);
        new_customer = (upserted == Upserted::Created).then_some(id);
    }
    let current = order_by_id(conn, shop_id, &order.id).await?;
    if order.placed_at == PLACED_AT_UNSET {
        order.placed_at = current.as_ref().map_or_else(now_ms, |c| c.placed_at);
    }
    if let Some(current) = &current {
        // A refund recorded here outlives a re-post of the order by the store.
        if order.total < current.refunded {
            return Err(InvalidInput::new(
                "total",
                format!("is below the {} already refunded on this order", current.refunded),
            )
            .into());
        }
        order.refunded = current.refunded;
        if current.status == OrderStatus::Refunded && order.status.is_purchase() {
            order.status = OrderStatus::Refunded;
        }
        if order.customer_id.is_none() {
            order.customer_id = current.customer_id;
        }
        if *current == order {
            return Ok(OrderOutcome {
                order,
                result: Upserted::Unchanged,
                previous_status: Some(current.status),
                loyalty: None,
                new_customer,
            });
        }
    }
    write_order(conn, shop_id, &order, current.is_some()).await?;
    let previous_customer = current.as_ref().and_then(|c| c.customer_id);
    for customer_id in
        [order.customer_id, previous_customer.filter(|p| Some(*p) != order.customer_id)].into_iter().flatten()
    {
        refresh_stats(conn, shop_id, customer_id).await?;
    }
    super::rollups::order_changed(conn, shop_id, current.as_ref(), &order).await?;
    Ok(OrderOutcome {
        result: if current.is_some() { Upserted::Updated } else { Upserted::Created },
        previous_status: current.map(|c| c.status),
        order,
        loyalty: None,
        new_customer,
    })
}

impl Db {
    /// Stores an order; a transaction that lost a race with a concurrent first post of
    /// the same order or customer runs again and finds the winner's rows.
    pub async fn upsert_order(
        &self,
        shop_id: i64,
        order: Order,
        customer: Option<&CustomerInput>,
    ) -> StoreResult<OrderOutcome> {
        super::retrying(super::WRITE_ATTEMPTS, || self.try_upsert_order(shop_id, order.clone(), customer)).await
    }

    async fn try_upsert_order(
        &self,
        shop_id: i64,
        order: Order,
        customer: Option<&CustomerInput>,
    ) -> StoreResult<OrderOutcome> {
        let mut w = self.write().await?;
        let mut outcome = upsert_order(&mut w.tx, shop_id, order, customer).await?;
        if let Some(customer_id) = outcome.new_customer {
            crate::journeys::triggers::customer_created(&mut w.tx, shop_id, customer_id, now_ms()).await?;
        }
        if let Some(change) = OrderChange::between(outcome.previous_status, outcome.order.status) {
            let order = &outcome.order;
            crate::journeys::triggers::order_changed(&mut w.tx, shop_id, order, &change).await?;
            outcome.loyalty = Some(order_hooks::queue(&mut w.tx, shop_id, &order.id, order.customer_id, change).await?);
        }
        w.commit().await?;
        Ok(outcome)
    }

    pub async fn order(&self, shop_id: i64, id: &str) -> StoreResult<Option<Order>> {
        let mut conn = self.pool().acquire().await?;
        order_by_id(&mut conn, shop_id, id).await
    }

    /// The shop's most recent purchases (paid or fulfilled), newest first.
    pub async fn recent_orders(&self, shop_id: i64, limit: i64) -> StoreResult<Vec<Order>> {
        let ids: Vec<String> = sqlx::query_scalar(
            "SELECT id FROM orders WHERE shop_id = $1 AND status IN ('paid', 'fulfilled') ORDER BY placed_at DESC LIMIT $2",
        )
        .bind(shop_id)
        .bind(limit)
        .fetch_all(self.pool())
        .await?;
        let mut conn = self.pool().acquire().await?;
        let mut orders = Vec::with_capacity(ids.len());
        for id in ids {
            orders.extend(order_by_id(&mut conn, shop_id, &id).await?);
        }
        Ok(orders)
    }

    /// Records a refund once per refund id; a full refund marks the order refunded.
    pub async fn refund_order(&self, shop_id: i64, order_id: &str, refund: &RefundInput) -> StoreResult<OrderOutcome> {
        super::retrying(super::WRITE_ATTEMPTS, || self.try_refund_order(shop_id, order_id, refund)).await
    }

    async fn try_refund_order(&self, shop_id: i64, order_id: &str, refund: &RefundInput) -> StoreResult<OrderOutcome> {
        let mut w = self.write().await?;
        lock_order(&mut w.tx, shop_id, order_id).await?;
        let mut order = order_by_id(&mut w.tx, shop_id, order_id).await?.ok_or(StoreError::NotFound("order"))?;
        let previous_status = Some(order.status);
        let already: Option<String> = sqlx::query_scalar("SELECT order_id FROM refunds WHERE shop_id = $1 AND id = $2")
            .bind(shop_id)
            .bind(&refund.id)
            .fetch_optional(&mut *w.tx)
            .await?;
        match already {
            Some(refunded_order) if refunded_order == order_id => {
                return Ok(OrderOutcome {
                    order,
                    result: Upserted::Unchanged,
                    previous_status,
                    loyalty: None,
                    new_customer: None,
                });
            }
            Some(_) => return Err(StoreError::Conflict(format!("refund `{}` belongs to another order", refund.id))),
            None => {}
        }
        let remaining = order.total - order.refunded;
        let amount = refund.amount.unwrap_or(remaining);
        if amount <= 0 || amount > remaining {
            return Err(
                InvalidInput::new("amount", format!("must be between 1 and the {remaining} left to refund")).into()
            );
        }
        sqlx::query(
            "INSERT INTO refunds (shop_id, id, order_id, amount, reason, created_at) VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(shop_id)
        .bind(&refund.id)
        .bind(order_id)
        .bind(amount)
        .bind(&refund.reason)
        .bind(now_ms())
        .execute(&mut *w.tx)
        .await?;
        let before = order.clone();
        order.refunded += amount;
        if order.refunded == order.total {
            order.status = OrderStatus::Refunded;
        }
        sqlx::query("UPDATE orders SET refunded = $3, status = $4, updated_at = $5 WHERE shop_id = $1 AND id = $2")
            .bind(shop_id)
            .bind(order_id)
            .bind(order.refunded)
            .bind(order.status.as_str())
            .bind(now_ms())
            .execute(&mut *w.tx)
            .await?;
        if let Some(customer_id) = order.customer_id {
            refresh_stats(&mut w.tx, shop_id, customer_id).await?;
        }
        super::rollups::order_changed(&mut w.tx, shop_id, Some(&before), &order).await?;
        let change = OrderChange::Refunded { refund_id: refund.id.clone() };
        crate::journeys::triggers::order_changed(&mut w.tx, shop_id, &order, &change).await?;
        let loyalty = Some(order_hooks::queue(&mut w.tx, shop_id, order_id, order.customer_id, change).await?);
        w.commit().await?;
        Ok(OrderOutcome { order, result: Upserted::Updated, previous_status, loyalty, new_customer: None })
    }
}
