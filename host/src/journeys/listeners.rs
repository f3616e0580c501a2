//! Which enabled automation install listens to which trigger, from the manifests of
//! the shop's installs. The table is rebuilt whenever an install changes; writes that
//! cause host triggers read it in their transaction, and the event ingest path keeps a
//! copy per shop in memory ([`ListenerCache`]), so events no install listens to cost
//! one map lookup.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use patron_runtime::{Manifest, World};
use sqlx::{AnyConnection, Row};

use crate::store::{Db, StoreError, StoreResult};

/// How long a cached listening set is trusted, so that a change made by another
/// process (the CLI, another replica) takes effect without a restart.
const CACHE_TTL: Duration = Duration::from_secs(2);

/// A shop's listening installs by trigger name.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Listeners(HashMap<String, Vec<String>>);

impl Listeners {
    /// The installs listening to `trigger`.
    pub fn of(&self, trigger: &str) -> &[String] {
        self.0.get(trigger).map_or(&[], Vec::as_slice)
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    fn add(&mut self, trigger: String, plugin: String) {
        let plugins = self.0.entry(trigger).or_default();
        if !plugins.contains(&plugin) {
            plugins.push(plugin);
        }
    }
}

/// The shop's listeners as stored, read in the caller's transaction.
pub(crate) async fn load(conn: &mut AnyConnection, shop_id: i64) -> StoreResult<Listeners> {
    let rows = sqlx::query("SELECT trigger_name, plugin FROM automation_listeners WHERE shop_id = $1")
        .bind(shop_id)
        .fetch_all(conn)
        .await?;
    let mut listeners = Listeners::default();
    for row in rows {
        listeners.add(row.try_get("trigger_name")?, row.try_get("plugin")?);
    }
    Ok(listeners)
}

/// The installs listening to one trigger, read in the caller's transaction.
pub(crate) async fn listening(conn: &mut AnyConnection, shop_id: i64, trigger: &str) -> StoreResult<Vec<String>> {
    Ok(sqlx::query_scalar("SELECT plugin FROM automation_listeners WHERE shop_id = $1 AND trigger_name = $2")
        .bind(shop_id)
        .bind(trigger)
        .fetch_all(conn)
        .await?)
}

/// Rebuilds the shop's listeners from its enabled automation installs' manifests.
pub async fn rebuild(db: &Db, shop_id: i64) -> StoreResult<()> {
    let mut w = db.write().await?;
    let rows = sqlx::query(
        "SELECT i.name, v.manifest FROM plugin_installs i JOIN plugin_versions v \
         ON v.shop_id = i.shop_id AND v.name = i.name AND v.version = i.active_version \
         WHERE i.shop_id = $1 AND i.status = 'enabled' AND v.world = $2",
    )
    .bind(shop_id)
    .bind(World::Automation.name())
    .fetch_all(&mut *w.tx)
    .await?;
    sqlx::query("DELETE FROM automation_listeners WHERE shop_id = $1").bind(shop_id).execute(&mut *w.tx).await?;
    for row in rows {
        let name: String = row.try_get("name")?;
        let manifest: String = row.try_get("manifest")?;
        let manifest = Manifest::from_json(&manifest)
            .map_err(|e| StoreError::Corrupt(format!("stored manifest of {name}: {e}")))?;
        for trigger in &manifest.triggers {
            sqlx::query(
                "INSERT INTO automation_listeners (shop_id, trigger_name, plugin) VALUES ($1, $2, $3) \
                 ON CONFLICT (shop_id, trigger_name, plugin) DO NOTHING",
            )
            .bind(shop_id)
            .bind(trigger)
            .bind(&name)
            .execute(&mut *w.tx)
            .await?;
        }
    }
    w.commit().await
}

/// A shop's listeners and when they were read.
type Cached = (Instant, Arc<Listeners>);

/// Each shop's listeners, read at most every [`CACHE_TTL`]; cloning it is cheap.
#[derive(Clone, Default)]
pub struct ListenerCache {
    shops: Arc<Mutex<HashMap<i64, Cached>>>,
}

impl ListenerCache {
    fn cached(&self, shop_id: i64) -> Option<Arc<Listeners>> {
        let shops = self.shops.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        shops.get(&shop_id).filter(|(at, _)| at.elapsed() < CACHE_TTL).map(|(_, l)| l.clone())
    }

    /// The shop's listeners.
    pub async fn get(&self, db: &Db, shop_id: i64) -> StoreResult<Arc<Listeners>> {
        if let Some(listeners) = self.cached(shop_id) {
            return Ok(listeners);
        }
        let mut conn = db.pool().acquire().await?;
        let listeners = Arc::new(load(&mut conn, shop_id).await?);
        let mut shops = self.shops.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        shops.insert(shop_id, (Instant::now(), listeners.clone()));
        Ok(listeners)
    }

    /// Forgets a shop's listeners after one of its installs changed.
    pub fn forget(&self, shop_id: i64) {
        self.shops.lock().unwrap_or_else(std::sync::PoisonError::into_inner).remove(&shop_id);
    }
}
