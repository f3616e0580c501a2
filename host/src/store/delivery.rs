//! What a shop configured for delivery: its channels, its own templates and its contact
//! policy settings. Values are validated by `crate::delivery` before they get here.

use serde::Serialize;
use sqlx::Row;

use super::{Db, StoreResult, now_ms};

/// A stored channel: its kind (`smtp` or `webhook`) and settings as JSON. A webhook's
/// signing secret, and the one it replaced while that stays valid, are kept beside it.
#[derive(Debug, Clone, Serialize)]
pub struct StoredChannel {
    pub name: String,
    pub kind: String,
    pub settings: serde_json::Value,
    #[serde(skip)]
    pub secret: Option<String>,
    #[serde(skip)]
    pub previous_secret: Option<String>,
    pub previous_secret_until: Option<i64>,
    pub updated_at: i64,
}

/// A merchant's own version of a template in one locale.
#[derive(Debug, Clone, Serialize)]
pub struct StoredTemplate {
    pub name: String,
    pub locale: String,
    pub subject: String,
    pub body: String,
    pub updated_at: i64,
}

fn channel_from_row(row: &sqlx::any::AnyRow) -> StoreResult<StoredChannel> {
    let settings: String = row.try_get("settings")?;
    Ok(StoredChannel {
        name: row.try_get("name")?,
        kind: row.try_get("kind")?,
        settings: serde_json::from_str(&settings)
            .map_err(|e| super::StoreError::Corrupt(format!("channel settings: {e}")))?,
        secret: row.try_get("secret")?,
        previous_secret: row.try_get("previous_secret")?,
        previous_secret_until: row.try_get("previous_secret_until")?,
        updated_at: row.try_get("updated_at")?,
    })
}

const CHANNEL_COLUMNS: &str = "name, kind, settings, secret, previous_secret, previous_secret_until, updated_at";

impl Db {
    /// Creates or replaces a channel's settings. A new channel takes `new_secret`; an
    /// existing one of the same kind keeps its secrets.
    pub async fn put_channel(
        &self,
        shop_id: i64,
        name: &str,
        kind: &str,
        settings: &serde_json::Value,
        new_secret: Option<&str>,
    ) -> StoreResult<StoredChannel> {
        let now = now_ms();
        let mut w = self.write().await?;
        sqlx::query(
            "INSERT INTO delivery_channels (shop_id, name, kind, settings, secret, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (shop_id, name) DO UPDATE SET \
             settings = $4, updated_at = $6, \
             secret = CASE WHEN delivery_channels.kind = $3 AND delivery_channels.secret IS NOT NULL \
                      THEN delivery_channels.secret ELSE $5 END, \
             kind = $3",
        )
        .bind(shop_id)
        .bind(name)
        .bind(kind)
        .bind(settings.to_string())
        .bind(new_secret)
        .bind(now)
        .execute(&mut *w.tx)
        .await?;
        w.commit().await?;
        self.channel(shop_id, name).await?.ok_or(super::StoreError::NotFound("channel"))
    }

    /// Replaces a channel's secret; the old one stays valid until `old_valid_until`.
    pub async fn rotate_channel_secret(
        &self,
        shop_id: i64,
        name: &str,
        new_secret: &str,
        old_valid_until: i64,
    ) -> StoreResult<()> {
        let mut w = self.write().await?;
        let updated = sqlx::query(
            "UPDATE delivery_channels SET previous_secret = secret, previous_secret_until = $4, secret = $3, \
             updated_at = $5 WHERE shop_id = $1 AND name = $2 AND secret IS NOT NULL",
        )
        .bind(shop_id)
        .bind(name)
        .bind(new_secret)
        .bind(old_valid_until)
        .bind(now_ms())
        .execute(&mut *w.tx)
        .await?
        .rows_affected();
        w.commit().await?;
        if updated == 0 {
            return Err(super::StoreError::NotFound("webhook channel"));
        }
        Ok(())
    }

    pub async fn channel(&self, shop_id: i64, name: &str) -> StoreResult<Option<StoredChannel>> {
        let row =
            sqlx::query(&format!("SELECT {CHANNEL_COLUMNS} FROM delivery_channels WHERE shop_id = $1 AND name = $2"))
                .bind(shop_id)
                .bind(name)
                .fetch_optional(self.pool())
                .await?;
        row.as_ref().map(channel_from_row).transpose()
    }

    pub async fn channels(&self, shop_id: i64) -> StoreResult<Vec<StoredChannel>> {
        let rows =
            sqlx::query(&format!("SELECT {CHANNEL_COLUMNS} FROM delivery_channels WHERE shop_id = $1 ORDER BY name"))
                .bind(shop_id)
                .fetch_all(self.pool())
                .await?;
        rows.iter().map(channel_from_row).collect()
    }

    pub async fn delete_channel(&self, shop_id: i64, name: &str) -> StoreResult<bool> {
        let mut w = self.write().await?;
        let deleted = sqlx::query("DELETE FROM delivery_channels WHERE shop_id = $1 AND name = $2")
            .bind(shop_id)
            .bind(name)
            .execute(&mut *w.tx)
            .await?
            .rows_affected();
        w.commit().await?;
        Ok(deleted == 1)
    }

    pub async fn put_template(
        &self,
        shop_id: i64,
        name: &str,
        locale: &str,
        subject: &str,
        body: &str,
    ) -> StoreResult<()> {
        let mut w = self.write().await?;
        sqlx::query(
            "INSERT INTO message_templates (shop_id, name, locale, subject, body, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (shop_id, name, locale) DO UPDATE SET \
             subject = $4, body = $5, updated_at = $6",
        )
        .bind(shop_id)
        .bind(name)
        .bind(locale)
        .bind(subject)
        .bind(body)
        .bind(now_ms())
        .execute(&mut *w.tx)
        .await?;
        w.commit().await?;
        Ok(())
    }

    pub async fn template(&self, shop_id: i64, name: &str, locale: &str) -> StoreResult<Option<StoredTemplate>> {
        let row = sqlx::query(
            "SELECT name, locale, subject, body, updated_at FROM message_templates \
             WHERE shop_id = $1 AND name = $2 AND locale = $3",
        )
        .bind(shop_id)
        .bind(name)
        .bind(locale)
        .fetch_optional(self.pool())
        .await?;
        row.map(|r| {
            Ok(StoredTemplate {
                name: r.try_get("name")?,
                locale: r.try_get("locale")?,
                subject: r.try_get("subject")?,
                body: r.try_get("body")?,
                updated_at: r.try_get("updated_at")?,
            })
        })
        .transpose()
    }

    /// The shop's contact policy settings as stored, if it changed the defaults.
    pub async fn delivery_settings(&self, shop_id: i64) -> StoreResult<Option<serde_json::Value>> {
        let text: Option<String> = sqlx::query_scalar("SELECT settings FROM delivery_settings WHERE shop_id = $1")
            .bind(shop_id)
            .fetch_optional(self.pool())
            .await?;
        text.map(|t| {
            serde_json::from_str(&t).map_err(|e| super::StoreError::Corrupt(format!("delivery settings: {e}")))
        })
        .transpose()
    }

    pub async fn put_delivery_settings(&self, shop_id: i64, settings: &serde_json::Value) -> StoreResult<()> {
        let mut w = self.write().await?;
        sqlx::query(
            "INSERT INTO delivery_settings (shop_id, settings, updated_at) VALUES ($1, $2, $3) \
             ON CONFLICT (shop_id) DO UPDATE SET settings = $2, updated_at = $3",
        )
        .bind(shop_id)
        .bind(settings.to_string())
        .bind(now_ms())
        .execute(&mut *w.tx)
        .await?;
        w.commit().await?;
        Ok(())
    }
}
