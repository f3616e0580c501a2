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
    /// The secret key replaced by the last rotation, still accepted (for the API and
    /// customer tokens) until `previous_secret_until` (unix ms).
    #[serde(skip)]
    pub previous_secret_hash: Option<String>,
    #[serde(skip)]
    pub previous_secret_until: Option<i64>,
    /// Raw events older than this many days are deleted nightly.
    pub event_retention_days: i64,
    /// Whether v1 customer tokens (no expiry, keyed with the secret key) still verify.
    pub v1_tokens: bool,
}

/// Raw events are kept 13 months unless the shop says otherwise.
pub const DEFAULT_EVENT_RETENTION_DAYS: i64 = 396;

impl Shop {
    /// The stored secret hashes that verify customer tokens now: the current key's,
    /// and during a rotation's grace period the previous key's.
    pub fn token_key_hashes(&self, now: i64) -> Vec<&str> {
        let mut hashes = vec![self.secret_hash.as_str()];
        if let (Some(previous), Some(until)) = (&self.previous_secret_hash, self.previous_secret_until)
            && now < until
        {
            hashes.push(previous.as_str());
        }
        hashes
    }
}

impl Shop {
    /// Checks a customer token against this shop's keys now; `token_secret` is the
    /// host's (see [`crate::auth::token_key`]).
    pub fn check_customer_token(
        &self,
        customer_external_id: &str,
        token: &str,
        token_secret: Option<&[u8]>,
    ) -> crate::auth::TokenCheck {
        let now = now_ms();
        let keys = crate::auth::TokenKeys::for_hashes(&self.token_key_hashes(now), token_secret, self.v1_tokens);
        crate::auth::check_customer_token(&keys, customer_external_id, token, now / 1000)
    }

    /// The key the store's back end signs v2 tokens with: the token key on a host with
    /// a token secret; `None` on one without (the secret key itself signs them).
    pub fn token_key(&self, token_secret: Option<&[u8]>) -> Option<String> {
        token_secret.map(|secret| crate::auth::token_key(secret, &self.secret_hash))
    }
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
            // GPC and DNT are honoured unless the merchant explicitly turns them off.
            honor_dnt: true,
        }
    }
}

const SHOP_COLUMNS: &str = "id, name, publishable_key, secret_hash, allowed_origins, currency, timezone, \
     locale, consent_required, honor_dnt, previous_secret_hash, previous_secret_until, event_retention_days, v1_tokens";

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
        previous_secret_hash: row.try_get("previous_secret_hash")?,
        previous_secret_until: row.try_get("previous_secret_until")?,
        event_retention_days: row.try_get("event_retention_days")?,
        v1_tokens: row.try_get::<i64, _>("v1_tokens")? != 0,
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

    /// The shop whose current secret key this is, or whose previous one during the
    /// grace period of a rotation.
    pub async fn shop_by_secret(&self, secret: &str) -> StoreResult<Option<Shop>> {
        let hash = secret_hash(secret);
        if let Some(shop) = self.shop_where("secret_hash", &hash).await? {
            return Ok(Some(shop));
        }
        let row = sqlx::query(&format!(
            "SELECT {SHOP_COLUMNS} FROM shops WHERE previous_secret_hash = $1 AND previous_secret_until > $2"
        ))
        .bind(&hash)
        .bind(now_ms())
        .fetch_optional(self.pool())
        .await?;
        row.as_ref().map(shop_from_row).transpose()
    }

    /// Replaces a shop's secret key; the old one keeps working for `grace_ms`. Returns
    /// the new secret (shown once, never stored).
    pub async fn rotate_secret(&self, shop_id: i64, grace_ms: i64) -> StoreResult<String> {
        let secret = NewShopKeys::generate().secret;
        let mut w = self.write().await?;
        let updated = sqlx::query(
            "UPDATE shops SET previous_secret_hash = secret_hash, previous_secret_until = $3, secret_hash = $2              WHERE id = $1",
        )
        .bind(shop_id)
        .bind(secret_hash(&secret))
        .bind(now_ms().saturating_add(grace_ms.max(0)))
        .execute(&mut *w.tx)
        .await?
        .rows_affected();
        if updated == 0 {
            return Err(super::StoreError::NotFound("shop"));
        }
        w.commit().await?;
        Ok(secret)
    }

    /// Turns v1 customer tokens (no expiry) on or off for a shop.
    pub async fn set_v1_tokens(&self, shop_id: i64, accept: bool) -> StoreResult<()> {
        let mut w = self.write().await?;
        sqlx::query("UPDATE shops SET v1_tokens = $2 WHERE id = $1")
            .bind(shop_id)
            .bind(i64::from(accept))
            .execute(&mut *w.tx)
            .await?;
        w.commit().await?;
        Ok(())
    }

    /// Sets how many days of raw events a shop keeps.
    pub async fn set_event_retention(&self, shop_id: i64, days: i64) -> StoreResult<()> {
        if !(1..=36_500).contains(&days) {
            return Err(super::customers::InvalidInput::new("event_retention_days", "must be 1 to 36500").into());
        }
        let mut w = self.write().await?;
        sqlx::query("UPDATE shops SET event_retention_days = $2 WHERE id = $1")
            .bind(shop_id)
            .bind(days)
            .execute(&mut *w.tx)
            .await?;
        w.commit().await?;
        Ok(())
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
