//! Coupons: unique codes with a discount, minimum spend and expiry, usable once per
//! customer, redeemed when an order carrying the code arrives.

use rand::Rng;
use serde::Serialize;
use sqlx::any::AnyRow;
use sqlx::{AnyConnection, Row};

use super::customers::InvalidInput;
use super::orders::Order;
use super::{Db, StoreResult, now_ms};

/// What a coupon takes off.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(tag = "kind", content = "value", rename_all = "snake_case")]
pub enum Discount {
    /// 1–100 percent of the order.
    Percent(u8),
    /// Minor units of the coupon's currency.
    Fixed(i64),
    FreeShipping,
}

impl Discount {
    fn parts(self) -> (&'static str, i64) {
        match self {
            Self::Percent(p) => ("percent", i64::from(p)),
            Self::Fixed(amount) => ("fixed", amount),
            Self::FreeShipping => ("free_shipping", 0),
        }
    }

    fn from_parts(kind: &str, value: i64) -> Option<Self> {
        match kind {
            "percent" => u8::try_from(value).ok().map(Self::Percent),
            "fixed" => Some(Self::Fixed(value)),
            "free_shipping" => Some(Self::FreeShipping),
            _ => None,
        }
    }

    /// Words for a shopper, e.g. "10% off" or "5.00 USD off".
    pub fn describe(self, currency: &str) -> String {
        match self {
            Self::Percent(p) => format!("{p}% off"),
            Self::Fixed(amount) => format!("{}.{:02} {currency} off", amount / 100, amount % 100),
            Self::FreeShipping => "free shipping".to_owned(),
        }
    }
}

/// A coupon to issue.
#[derive(Debug, Clone)]
pub struct CouponSpec {
    pub discount: Discount,
    pub currency: String,
    pub minimum_spend: i64,
    pub expires_at: Option<i64>,
    /// The customer it is for; `None` for a code any customer may use once.
    pub customer_id: Option<i64>,
    pub source: String,
}

impl CouponSpec {
    pub fn validate(&self) -> Result<(), InvalidInput> {
        match self.discount {
            Discount::Percent(p) if p == 0 || p > 100 => Err(InvalidInput::new("discount", "percent must be 1 to 100")),
            Discount::Fixed(amount) if amount <= 0 => {
                Err(InvalidInput::new("discount", "fixed amount must be positive"))
            }
            _ if self.minimum_spend < 0 => Err(InvalidInput::new("minimum_spend", "must not be negative")),
            _ => Ok(()),
        }
    }
}

/// A stored coupon.
#[derive(Debug, Clone, Serialize)]
pub struct Coupon {
    pub code: String,
    #[serde(serialize_with = "crate::api::ids::option_string")]
    pub customer_id: Option<i64>,
    pub discount: Discount,
    pub currency: String,
    pub minimum_spend: i64,
    pub expires_at: Option<i64>,
    pub description: String,
    pub source: String,
    pub created_at: i64,
}

const COUPON_COLUMNS: &str = "code, customer_id, discount_kind, discount_value, currency, minimum_spend, expires_at, description, source, created_at";

fn coupon_from_row(row: &AnyRow) -> StoreResult<Coupon> {
    let kind: String = row.try_get("discount_kind")?;
    let value: i64 = row.try_get("discount_value")?;
    Ok(Coupon {
        code: row.try_get("code")?,
        customer_id: row.try_get("customer_id")?,
        discount: Discount::from_parts(&kind, value)
            .ok_or_else(|| super::StoreError::Corrupt(format!("coupon discount {kind}:{value}")))?,
        currency: row.try_get("currency")?,
        minimum_spend: row.try_get("minimum_spend")?,
        expires_at: row.try_get("expires_at")?,
        description: row.try_get("description")?,
        source: row.try_get("source")?,
        created_at: row.try_get("created_at")?,
    })
}

/// A fresh code such as `PTR-7KQ4-M2XD` (no 0/O/1/I to misread).
fn new_code() -> String {
    const ALPHABET: &[u8] = b"23456789ABCDEFGHJKLMNPQRSTUVWXYZ";
    let mut rng = rand::thread_rng();
    let mut part = || (0..4).map(|_| char::from(ALPHABET[rng.gen_range(0..ALPHABET.len())])).collect::<String>();
    format!("PTR-{}-{}", part(), part())
}

pub(crate) async fn issue(conn: &mut AnyConnection, shop_id: i64, spec: &CouponSpec) -> StoreResult<Coupon> {
    spec.validate()?;
    let (kind, value) = spec.discount.parts();
    let mut description = spec.discount.describe(&spec.currency);
    if spec.minimum_spend > 0 {
        description.push_str(&format!(
            " on orders over {}.{:02} {}",
            spec.minimum_spend / 100,
            spec.minimum_spend % 100,
            spec.currency
        ));
    }
    let code = new_code();
    sqlx::query(&format!(
        "INSERT INTO coupons (shop_id, {COUPON_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)"
    ))
    .bind(shop_id)
    .bind(&code)
    .bind(spec.customer_id)
    .bind(kind)
    .bind(value)
    .bind(&spec.currency)
    .bind(spec.minimum_spend)
    .bind(spec.expires_at)
    .bind(&description)
    .bind(&spec.source)
    .bind(now_ms())
    .execute(&mut *conn)
    .await?;
    let row = sqlx::query(&format!("SELECT {COUPON_COLUMNS} FROM coupons WHERE shop_id = $1 AND code = $2"))
        .bind(shop_id)
        .bind(&code)
        .fetch_one(conn)
        .await?;
    coupon_from_row(&row)
}

/// Why a code on an order was not redeemed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct CouponRefusal {
    pub code: String,
    pub reason: String,
}

/// Redeems the Patron coupons an order carries; codes Patron did not issue are ignored.
/// Redeeming the same order again changes nothing.
pub(crate) async fn redeem_for_order(
    conn: &mut AnyConnection,
    shop_id: i64,
    order: &Order,
) -> StoreResult<Vec<CouponRefusal>> {
    let mut refusals = Vec::new();
    let Some(customer_id) = order.customer_id else { return Ok(refusals) };
    for code in &order.coupon_codes {
        let Some(row) = sqlx::query(&format!("SELECT {COUPON_COLUMNS} FROM coupons WHERE shop_id = $1 AND code = $2"))
            .bind(shop_id)
            .bind(code)
            .fetch_optional(&mut *conn)
            .await?
        else {
            continue;
        };
        let coupon = coupon_from_row(&row)?;
        let used_on: Option<String> = sqlx::query_scalar(
            "SELECT order_id FROM coupon_redemptions WHERE shop_id = $1 AND code = $2 AND customer_id = $3",
        )
        .bind(shop_id)
        .bind(code)
        .bind(customer_id)
        .fetch_optional(&mut *conn)
        .await?;
        let refusal = match used_on {
            Some(used) if used == order.id => continue,
            Some(used) => Some(format!("already used on order {used}")),
            None if coupon.customer_id.is_some_and(|owner| owner != customer_id) => {
                Some("issued to another customer".into())
            }
            // Expiry is checked against when the order reaches Patron, not the time it
            // claims: a backdated order cannot revive an expired coupon.
            None if coupon.expires_at.is_some_and(|at| at < now_ms()) => Some("expired".into()),
            None if order.subtotal < coupon.minimum_spend => Some("order is below the minimum spend".into()),
            None => None,
        };
        if let Some(reason) = refusal {
            refusals.push(CouponRefusal { code: code.clone(), reason });
            continue;
        }
        sqlx::query(
            "INSERT INTO coupon_redemptions (shop_id, code, customer_id, order_id, redeemed_at) VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(shop_id)
        .bind(code)
        .bind(customer_id)
        .bind(&order.id)
        .bind(now_ms())
        .execute(&mut *conn)
        .await?;
    }
    Ok(refusals)
}

/// The coupon a reward redemption with this client idempotency key gave, if one did.
pub(crate) async fn redeemed_with_key(
    conn: &mut AnyConnection,
    shop_id: i64,
    customer_id: i64,
    key: &str,
) -> StoreResult<Option<Coupon>> {
    let row = sqlx::query(&format!(
        "SELECT {COUPON_COLUMNS} FROM coupons WHERE shop_id = $1 AND code = \
         (SELECT coupon_code FROM reward_redemptions WHERE shop_id = $1 AND customer_id = $2 AND idempotency_key = $3)"
    ))
    .bind(shop_id)
    .bind(customer_id)
    .bind(key)
    .fetch_optional(conn)
    .await?;
    row.as_ref().map(coupon_from_row).transpose()
}

/// Records which coupon a reward redemption with this idempotency key gave.
pub(crate) async fn record_redemption(
    conn: &mut AnyConnection,
    shop_id: i64,
    customer_id: i64,
    key: &str,
    reward_id: &str,
    coupon_code: &str,
) -> StoreResult<()> {
    sqlx::query(
        "INSERT INTO reward_redemptions (shop_id, customer_id, idempotency_key, reward_id, coupon_code, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(shop_id)
    .bind(customer_id)
    .bind(key)
    .bind(reward_id)
    .bind(coupon_code)
    .bind(now_ms())
    .execute(conn)
    .await?;
    Ok(())
}

impl Db {
    pub async fn issue_coupon(&self, shop_id: i64, spec: &CouponSpec) -> StoreResult<Coupon> {
        let mut w = self.write().await?;
        let coupon = issue(&mut w.tx, shop_id, spec).await?;
        w.commit().await?;
        Ok(coupon)
    }

    /// Coupons a customer can still use: theirs or open codes, unexpired, not yet used by them.
    pub async fn active_coupons(&self, shop_id: i64, customer_id: i64) -> StoreResult<Vec<Coupon>> {
        let rows = sqlx::query(&format!(
            "SELECT {COUPON_COLUMNS} FROM coupons c WHERE c.shop_id = $1 AND c.customer_id = $2 \
             AND (c.expires_at IS NULL OR c.expires_at > $3) \
             AND NOT EXISTS (SELECT 1 FROM coupon_redemptions r WHERE r.shop_id = c.shop_id AND r.code = c.code \
                             AND r.customer_id = $2) \
             ORDER BY c.created_at DESC"
        ))
        .bind(shop_id)
        .bind(customer_id)
        .bind(now_ms())
        .fetch_all(self.pool())
        .await?;
        rows.iter().map(coupon_from_row).collect()
    }
}
