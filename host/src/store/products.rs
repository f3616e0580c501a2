//! The shop's product catalogue, mirrored from the store.

use serde::{Deserialize, Serialize};
use sqlx::any::AnyRow;
use sqlx::{AnyConnection, Row};

use super::customers::{InvalidInput, Upserted};
use super::{Db, StoreResult, now_ms};

/// A product as the store describes it.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Product {
    pub id: String,
    pub title: String,
    /// Minor units of the shop's currency.
    pub price: i64,
    pub currency: Option<String>,
    pub category: Option<String>,
    pub url: Option<String>,
    pub image_url: Option<String>,
    #[serde(default = "available_by_default")]
    pub available: bool,
}

fn available_by_default() -> bool {
    true
}

impl Product {
    pub fn validate(mut self) -> Result<Self, InvalidInput> {
        self.id = self.id.trim().to_owned();
        if self.id.is_empty() || self.id.len() > 255 {
            return Err(InvalidInput::new("id", "must be 1 to 255 characters"));
        }
        if self.title.trim().is_empty() {
            return Err(InvalidInput::new("title", "must not be empty"));
        }
        if self.price < 0 {
            return Err(InvalidInput::new("price", "must not be negative"));
        }
        if let Some(currency) = &self.currency {
            super::orders::validate_currency(currency)?;
        }
        Ok(self)
    }
}

pub(crate) fn product_from_row(row: &AnyRow) -> StoreResult<Product> {
    Ok(Product {
        id: row.try_get("id")?,
        title: row.try_get("title")?,
        price: row.try_get("price")?,
        currency: Some(row.try_get("currency")?),
        category: row.try_get("category")?,
        url: row.try_get("url")?,
        image_url: row.try_get("image_url")?,
        available: row.try_get::<i64, _>("available")? != 0,
    })
}

pub(crate) async fn upsert_product(
    conn: &mut AnyConnection,
    shop_id: i64,
    shop_currency: &str,
    product: &Product,
) -> StoreResult<Upserted> {
    let existing = sqlx::query(
        "SELECT id, title, price, currency, category, url, image_url, available FROM products \
         WHERE shop_id = $1 AND id = $2",
    )
    .bind(shop_id)
    .bind(&product.id)
    .fetch_optional(&mut *conn)
    .await?;
    let mut wanted = product.clone();
    wanted.currency = Some(product.currency.clone().unwrap_or_else(|| shop_currency.to_owned()));
    let outcome = match existing.as_ref().map(product_from_row).transpose()? {
        Some(current) if current == wanted => return Ok(Upserted::Unchanged),
        Some(_) => Upserted::Updated,
        None => Upserted::Created,
    };
    sqlx::query(
        "INSERT INTO products (shop_id, id, title, price, currency, category, url, image_url, available, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) \
         ON CONFLICT (shop_id, id) DO UPDATE SET title = excluded.title, price = excluded.price, \
         currency = excluded.currency, category = excluded.category, url = excluded.url, \
         image_url = excluded.image_url, available = excluded.available, updated_at = excluded.updated_at",
    )
    .bind(shop_id)
    .bind(&wanted.id)
    .bind(&wanted.title)
    .bind(wanted.price)
    .bind(&wanted.currency)
    .bind(&wanted.category)
    .bind(&wanted.url)
    .bind(&wanted.image_url)
    .bind(i64::from(wanted.available))
    .bind(now_ms())
    .execute(conn)
    .await?;
    Ok(outcome)
}

impl Db {
    pub async fn upsert_product(&self, shop_id: i64, shop_currency: &str, product: &Product) -> StoreResult<Upserted> {
        let mut w = self.write().await?;
        let outcome = upsert_product(&mut w.tx, shop_id, shop_currency, product).await?;
        w.commit().await?;
        Ok(outcome)
    }

    pub async fn product(&self, shop_id: i64, id: &str) -> StoreResult<Option<Product>> {
        let row = sqlx::query(
            "SELECT id, title, price, currency, category, url, image_url, available FROM products \
             WHERE shop_id = $1 AND id = $2",
        )
        .bind(shop_id)
        .bind(id)
        .fetch_optional(self.pool())
        .await?;
        row.as_ref().map(product_from_row).transpose()
    }

    pub async fn products(&self, shop_id: i64) -> StoreResult<Vec<Product>> {
        let rows = sqlx::query(
            "SELECT id, title, price, currency, category, url, image_url, available FROM products \
             WHERE shop_id = $1 ORDER BY id",
        )
        .bind(shop_id)
        .fetch_all(self.pool())
        .await?;
        rows.iter().map(product_from_row).collect()
    }
}
