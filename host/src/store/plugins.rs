//! Installed plugins: their versions (with the component bytes), the install's active
//! version, grants, config and health, and each install's key-value data.

use serde::Serialize;
use sqlx::Row;
use sqlx::any::AnyRow;

use super::{Db, StoreError, StoreResult, now_ms};

/// One installed version of a plugin.
#[derive(Debug, Clone)]
pub struct PluginVersion {
    pub name: String,
    pub version: String,
    pub world: String,
    /// The manifest as JSON.
    pub manifest: String,
    pub sha256: String,
    /// Capabilities granted to this version.
    pub grants: Vec<String>,
    pub wasm: Vec<u8>,
}

/// A plugin install: which version runs, with what grants and config, and how it fares.
#[derive(Debug, Clone, Serialize, PartialEq, utoipa::ToSchema)]
pub struct PluginInstall {
    pub name: String,
    pub active_version: String,
    pub previous_version: Option<String>,
    pub world: String,
    pub status: String,
    pub grants: Vec<String>,
    pub config: serde_json::Value,
    pub failures: i64,
    pub last_error: Option<String>,
    pub last_error_at: Option<i64>,
    pub versions: Vec<String>,
}

fn corrupt(what: &str, error: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt(format!("{what}: {error}"))
}

impl Db {
    /// Stores a version (replacing nothing: a version is immutable once installed).
    pub async fn add_plugin_version(&self, shop_id: i64, version: &PluginVersion) -> StoreResult<()> {
        let mut w = self.write().await?;
        let existing: Option<String> =
            sqlx::query_scalar("SELECT sha256 FROM plugin_versions WHERE shop_id = $1 AND name = $2 AND version = $3")
                .bind(shop_id)
                .bind(&version.name)
                .bind(&version.version)
                .fetch_optional(&mut *w.tx)
                .await?;
        match existing {
            Some(sha) if sha == version.sha256 => {}
            Some(_) => {
                w.rollback().await?;
                return Err(StoreError::Conflict(format!(
                    "{} {} is already installed with different contents: bump the version",
                    version.name, version.version
                )));
            }
            None => {
                sqlx::query(
                    "INSERT INTO plugin_versions (shop_id, name, version, world, manifest, sha256, grants, wasm_hex, installed_at) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
                )
                .bind(shop_id)
                .bind(&version.name)
                .bind(&version.version)
                .bind(&version.world)
                .bind(&version.manifest)
                .bind(&version.sha256)
                .bind(serde_json::to_string(&version.grants).map_err(|e| corrupt("grants", e))?)
                .bind(hex::encode(&version.wasm))
                .bind(now_ms())
                .execute(&mut *w.tx)
                .await?;
            }
        }
        w.commit().await
    }

    pub async fn plugin_version(&self, shop_id: i64, name: &str, version: &str) -> StoreResult<Option<PluginVersion>> {
        let row = sqlx::query(
            "SELECT name, version, world, manifest, sha256, grants, wasm_hex FROM plugin_versions \
             WHERE shop_id = $1 AND name = $2 AND version = $3",
        )
        .bind(shop_id)
        .bind(name)
        .bind(version)
        .fetch_optional(self.pool())
        .await?;
        let Some(row) = row else { return Ok(None) };
        let wasm_hex: String = row.try_get("wasm_hex")?;
        let grants: String = row.try_get("grants")?;
        Ok(Some(PluginVersion {
            name: row.try_get("name")?,
            version: row.try_get("version")?,
            world: row.try_get("world")?,
            manifest: row.try_get("manifest")?,
            sha256: row.try_get("sha256")?,
            grants: serde_json::from_str(&grants).map_err(|e| corrupt("grants", e))?,
            wasm: hex::decode(wasm_hex).map_err(|e| corrupt("plugin wasm", e))?,
        }))
    }

    /// Points the install at `version`, creating the install on first use; the version
    /// it replaces becomes the one a rollback returns to.
    pub async fn activate_plugin_version(
        &self,
        shop_id: i64,
        name: &str,
        version: &str,
        grants: &[String],
        config: &serde_json::Value,
        status: &str,
    ) -> StoreResult<()> {
        let now = now_ms();
        let grants = serde_json::to_string(grants).map_err(|e| corrupt("grants", e))?;
        let mut w = self.write().await?;
        sqlx::query(
            "INSERT INTO plugin_installs (shop_id, name, active_version, status, grants, config, installed_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $7) \
             ON CONFLICT (shop_id, name) DO UPDATE SET \
               previous_version = CASE WHEN plugin_installs.active_version = excluded.active_version \
                                       THEN plugin_installs.previous_version ELSE plugin_installs.active_version END, \
               active_version = excluded.active_version, status = excluded.status, grants = excluded.grants, \
               config = excluded.config, failures = 0, last_error = NULL, last_error_at = NULL, \
               updated_at = excluded.updated_at",
        )
        .bind(shop_id)
        .bind(name)
        .bind(version)
        .bind(status)
        .bind(grants)
        .bind(config.to_string())
        .bind(now)
        .execute(&mut *w.tx)
        .await?;
        w.commit().await
    }

    pub async fn set_plugin_status(&self, shop_id: i64, name: &str, status: &str) -> StoreResult<()> {
        self.update_install(
            shop_id,
            name,
            "status = $3, failures = CASE WHEN $3 = 'enabled' THEN 0 ELSE failures END",
            status,
        )
        .await
    }

    pub async fn set_plugin_config(&self, shop_id: i64, name: &str, config: &serde_json::Value) -> StoreResult<()> {
        self.update_install(shop_id, name, "config = $3", &config.to_string()).await
    }

    async fn update_install(&self, shop_id: i64, name: &str, set: &str, value: &str) -> StoreResult<()> {
        let mut w = self.write().await?;
        let updated =
            sqlx::query(&format!("UPDATE plugin_installs SET {set}, updated_at = $4 WHERE shop_id = $1 AND name = $2"))
                .bind(shop_id)
                .bind(name)
                .bind(value)
                .bind(now_ms())
                .execute(&mut *w.tx)
                .await?
                .rows_affected();
        w.commit().await?;
        if updated == 0 {
            return Err(StoreError::NotFound("plugin"));
        }
        Ok(())
    }

    /// Records failed calls to an install: how many, the last error and its time, and
    /// whether the circuit breaker tripped.
    pub async fn record_plugin_failures(
        &self,
        shop_id: i64,
        name: &str,
        failures: i64,
        last_error: Option<&str>,
        tripped: bool,
    ) -> StoreResult<()> {
        let mut w = self.write().await?;
        sqlx::query(
            "UPDATE plugin_installs SET failures = failures + $3, \
             last_error = COALESCE($4, last_error), last_error_at = CASE WHEN $4 IS NULL THEN last_error_at ELSE $5 END, \
             status = CASE WHEN $6 = 1 THEN 'tripped' ELSE status END \
             WHERE shop_id = $1 AND name = $2",
        )
        .bind(shop_id)
        .bind(name)
        .bind(failures)
        .bind(last_error)
        .bind(now_ms())
        .bind(i64::from(tripped))
        .execute(&mut *w.tx)
        .await?;
        w.commit().await
    }

    pub async fn uninstall_plugin(&self, shop_id: i64, name: &str) -> StoreResult<()> {
        let mut w = self.write().await?;
        for table in ["plugin_installs", "plugin_versions"] {
            sqlx::query(&format!("DELETE FROM {table} WHERE shop_id = $1 AND name = $2"))
                .bind(shop_id)
                .bind(name)
                .execute(&mut *w.tx)
                .await?;
        }
        sqlx::query("DELETE FROM plugin_kv WHERE shop_id = $1 AND plugin = $2")
            .bind(shop_id)
            .bind(name)
            .execute(&mut *w.tx)
            .await?;
        w.commit().await
    }

    pub async fn plugin_installs(&self, shop_id: i64) -> StoreResult<Vec<PluginInstall>> {
        let rows = sqlx::query(
            "SELECT i.name, i.active_version, i.previous_version, v.world, i.status, i.grants, i.config, \
             i.failures, i.last_error, i.last_error_at FROM plugin_installs i \
             JOIN plugin_versions v ON v.shop_id = i.shop_id AND v.name = i.name AND v.version = i.active_version \
             WHERE i.shop_id = $1 ORDER BY i.name",
        )
        .bind(shop_id)
        .fetch_all(self.pool())
        .await?;
        let mut installs = Vec::with_capacity(rows.len());
        for row in &rows {
            let mut install = install_from_row(row)?;
            install.versions = sqlx::query_scalar(
                "SELECT version FROM plugin_versions WHERE shop_id = $1 AND name = $2 ORDER BY installed_at",
            )
            .bind(shop_id)
            .bind(&install.name)
            .fetch_all(self.pool())
            .await?;
            installs.push(install);
        }
        Ok(installs)
    }

    /// The names of the shop's installs in `world` that the circuit breaker disabled.
    pub async fn tripped_plugins(&self, shop_id: i64, world: &str) -> StoreResult<Vec<String>> {
        Ok(sqlx::query_scalar(
            "SELECT i.name FROM plugin_installs i \
             JOIN plugin_versions v ON v.shop_id = i.shop_id AND v.name = i.name AND v.version = i.active_version \
             WHERE i.shop_id = $1 AND i.status = 'tripped' AND v.world = $2 ORDER BY i.name",
        )
        .bind(shop_id)
        .bind(world)
        .fetch_all(self.pool())
        .await?)
    }

    pub async fn plugin_install(&self, shop_id: i64, name: &str) -> StoreResult<Option<PluginInstall>> {
        Ok(self.plugin_installs(shop_id).await?.into_iter().find(|i| i.name == name))
    }

    pub async fn plugin_kv_get(&self, shop_id: i64, plugin: &str, key: &str) -> StoreResult<Option<Vec<u8>>> {
        let value: Option<String> =
            sqlx::query_scalar("SELECT value_hex FROM plugin_kv WHERE shop_id = $1 AND plugin = $2 AND key = $3")
                .bind(shop_id)
                .bind(plugin)
                .bind(key)
                .fetch_optional(self.pool())
                .await?;
        value.map(|v| hex::decode(v).map_err(|e| corrupt("plugin kv", e))).transpose()
    }

    pub async fn plugin_kv_set(&self, shop_id: i64, plugin: &str, key: &str, value: &[u8]) -> StoreResult<()> {
        let mut w = self.write().await?;
        sqlx::query(
            "INSERT INTO plugin_kv (shop_id, plugin, key, value_hex) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (shop_id, plugin, key) DO UPDATE SET value_hex = excluded.value_hex",
        )
        .bind(shop_id)
        .bind(plugin)
        .bind(key)
        .bind(hex::encode(value))
        .execute(&mut *w.tx)
        .await?;
        w.commit().await
    }

    pub async fn plugin_kv_delete(&self, shop_id: i64, plugin: &str, key: &str) -> StoreResult<()> {
        let mut w = self.write().await?;
        sqlx::query("DELETE FROM plugin_kv WHERE shop_id = $1 AND plugin = $2 AND key = $3")
            .bind(shop_id)
            .bind(plugin)
            .bind(key)
            .execute(&mut *w.tx)
            .await?;
        w.commit().await
    }

    /// Bytes an install's kv data uses (keys plus values).
    pub async fn plugin_kv_used(&self, shop_id: i64, plugin: &str) -> StoreResult<u64> {
        let used: i64 = sqlx::query_scalar(
            "SELECT CAST(COALESCE(SUM(LENGTH(key) + LENGTH(value_hex) / 2), 0) AS BIGINT) FROM plugin_kv \
             WHERE shop_id = $1 AND plugin = $2",
        )
        .bind(shop_id)
        .bind(plugin)
        .fetch_one(self.pool())
        .await?;
        Ok(u64::try_from(used).unwrap_or(0))
    }
}

fn install_from_row(row: &AnyRow) -> StoreResult<PluginInstall> {
    let grants: String = row.try_get("grants")?;
    let config: String = row.try_get("config")?;
    Ok(PluginInstall {
        name: row.try_get("name")?,
        active_version: row.try_get("active_version")?,
        previous_version: row.try_get("previous_version")?,
        world: row.try_get("world")?,
        status: row.try_get("status")?,
        grants: serde_json::from_str(&grants).map_err(|e| corrupt("grants", e))?,
        config: serde_json::from_str(&config).map_err(|e| corrupt("config", e))?,
        failures: row.try_get("failures")?,
        last_error: row.try_get("last_error")?,
        last_error_at: row.try_get("last_error_at")?,
        versions: Vec::new(),
    })
}
