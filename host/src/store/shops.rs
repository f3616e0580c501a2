//! Shops: tenants of one Patron host.

use serde::Serialize;
use sqlx::Row;

use super::{Db, StoreResult, new_id, now_ms};
use crate::auth::{NewShopKeys, secret_hash};

/// A shop as the host sees it (never the secret itself).
#[derive(Debug, Clone, Serialize)]
pub struct Shop {
    pub id: i64,
    pub name: String,
    pub publishable_key: String,
    #[serde(skip)]
    pub secret_hash: String,
    pub allowed_origins: Vec<String>,
    pub currency: String,
    pub timezone: String,
    pub locale: String,
    pub consent_required: bool,
    pub honor_dnt: bool,
}

/// What a merchant chooses when creating a shop.
#[derive(Debug, Clone)]
pub struct NewShop {
    pub name: String,
    pub allowed_origins: Vec<String>,
    pub currency: String,
    pub timezone: String,
    pub locale: String,
    pub consent_required: bool,
    pub honor_dnt: bool,
}

impl NewShop {
    pub fn named(name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            allowed_origins: Vec::new(),
            currency: "USD".into(),
            timezone: "UTC".into(),
            locale: "en".into(),
            consent_required: false,
            // Global Privacy Control and Do-Not-Track are honoured unless the merchant
            // explicitly says otherwise.
            honor_dnt: true,
        }
    }
}

const SHOP_COLUMNS: &str = "id, name, publishable_key, secret_hash, allowed_origins, currency, timezone, \
     locale, consent_required, honor_dnt";

fn shop_from_row(row: &sqlx::any::AnyRow) -> StoreResult<Shop> {
    let origins: String = row.try_get("allowed_origins")?;
    Ok(Shop {
        id: row.try_get("id")?,
        name: row.try_get("name")?,
        publishable_key: row.try_get("publishable_key")?,
        secret_hash: row.try_get("secret_hash")?,
        allowed_origins: serde_json::from_str(&origins)
            .map_err(|e| super::StoreError::Corrupt(format!("shop allowed_origins: {e}")))?,
        currency: row.try_get("currency")?,
        timezone: row.try_get("timezone")?,
        locale: row.try_get("locale")?,
        consent_required: row.try_get::<i64, _>("consent_required")? != 0,
        honor_dnt: row.try_get::<i64, _>("honor_dnt")? != 0,
    })
}

impl Db {
    /// Creates a shop and returns it with its keys; the secret is not retrievable later.
    pub async fn create_shop(&self, new: &NewShop) -> StoreResult<(Shop, NewShopKeys)> {
        let keys = NewShopKeys::generate();
        let id = new_id();
        let origins = serde_json::to_string(&new.allowed_origins).unwrap_or_else(|_| "[]".into());
        let mut w = self.write().await?;
        sqlx::query(
            "INSERT INTO shops (id, name, publishable_key, secret_hash, allowed_origins, currency, \
             timezone, locale, consent_required, honor_dnt, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
        )
        .bind(id)
        .bind(&new.name)
        .bind(&keys.publishable)
        .bind(secret_hash(&keys.secret))
        .bind(origins)
        .bind(&new.currency)
        .bind(&new.timezone)
        .bind(&new.locale)
        .bind(i64::from(new.consent_required))
        .bind(i64::from(new.honor_dnt))
        .bind(now_ms())
        .execute(&mut *w.tx)
        .await?;
        w.commit().await?;
        let shop = self.shop(id).await?.ok_or(super::StoreError::NotFound("shop"))?;
        Ok((shop, keys))
    }

    pub async fn shop(&self, id: i64) -> StoreResult<Option<Shop>> {
        let row = sqlx::query(&format!("SELECT {SHOP_COLUMNS} FROM shops WHERE id = $1"))
            .bind(id)
            .fetch_optional(self.pool())
            .await?;
        row.as_ref().map(shop_from_row).transpose()
    }

    pub async fn shop_by_publishable_key(&self, key: &str) -> StoreResult<Option<Shop>> {
        self.shop_where("publishable_key", key).await
    }

    pub async fn shop_by_secret(&self, secret: &str) -> StoreResult<Option<Shop>> {
        self.shop_where("secret_hash", &secret_hash(secret)).await
    }

    /// The shop whose text `column` (a constant of this module) equals `value`.
    async fn shop_where(&self, column: &'static str, value: &str) -> StoreResult<Option<Shop>> {
        let row = sqlx::query(&format!("SELECT {SHOP_COLUMNS} FROM shops WHERE {column} = $1"))
            .bind(value)
            .fetch_optional(self.pool())
            .await?;
        row.as_ref().map(shop_from_row).transpose()
    }

    pub async fn shops(&self) -> StoreResult<Vec<Shop>> {
        let rows =
            sqlx::query(&format!("SELECT {SHOP_COLUMNS} FROM shops ORDER BY name")).fetch_all(self.pool()).await?;
        rows.iter().map(shop_from_row).collect()
    }

    pub async fn shop_by_name(&self, name: &str) -> StoreResult<Option<Shop>> {
        self.shop_where("name", name).await
    }
}
