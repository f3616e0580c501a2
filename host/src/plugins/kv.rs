//! The `kv` capability backed by the database, scoped to one (shop, plugin install).

use patron_runtime::{KvBackendError, KvStore};
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use tokio::runtime::Handle;

use crate::store::{Db, StoreResult};

/// An install's key-value data. Plugin calls run on their own thread inside the plugin
/// runtime's executor, where blocking on another runtime is refused; each operation runs
/// as a task on the host runtime captured at creation, and the plugin's thread waits for it.
pub struct DbKv {
    db: Db,
    shop_id: i64,
    plugin: Arc<str>,
    handle: Handle,
}

/// How long one key-value operation may take before the plugin is told the store is unavailable.
const OPERATION_TIMEOUT: Duration = Duration::from_secs(10);

impl DbKv {
    /// Must be created inside the tokio runtime.
    pub fn new(db: Db, shop_id: i64, plugin: &str) -> Self {
        Self { db, shop_id, plugin: plugin.into(), handle: Handle::current() }
    }

    fn run<T, F>(&self, operation: impl FnOnce(Db, i64, Arc<str>) -> F) -> Result<T, KvBackendError>
    where
        T: Send + 'static,
        F: Future<Output = StoreResult<T>> + Send + 'static,
    {
        let (answer, answered) = std::sync::mpsc::sync_channel(1);
        let future = operation(self.db.clone(), self.shop_id, self.plugin.clone());
        self.handle.spawn(async move {
            let _ = answer.send(future.await);
        });
        match answered.recv_timeout(OPERATION_TIMEOUT) {
            Ok(result) => result.map_err(backend_error),
            Err(_) => {
                tracing::error!(plugin = %self.plugin, "plugin kv operation did not finish in time");
                Err(KvBackendError("the key-value store is unavailable".into()))
            }
        }
    }
}

fn backend_error(error: crate::store::StoreError) -> KvBackendError {
    tracing::error!(%error, "plugin kv store failed");
    KvBackendError("the key-value store is unavailable".into())
}

impl KvStore for DbKv {
    fn get(&self, key: &str) -> Result<Option<Vec<u8>>, KvBackendError> {
        let key = key.to_owned();
        self.run(|db, shop, plugin| async move { db.plugin_kv_get(shop, &plugin, &key).await })
    }

    fn set(&self, key: &str, value: &[u8]) -> Result<(), KvBackendError> {
        let (key, value) = (key.to_owned(), value.to_vec());
        self.run(|db, shop, plugin| async move { db.plugin_kv_set(shop, &plugin, &key, &value).await })
    }

    fn delete(&self, key: &str) -> Result<(), KvBackendError> {
        let key = key.to_owned();
        self.run(|db, shop, plugin| async move { db.plugin_kv_delete(shop, &plugin, &key).await })
    }

    fn used_bytes(&self) -> Result<u64, KvBackendError> {
        self.run(|db, shop, plugin| async move { db.plugin_kv_used(shop, &plugin).await })
    }
}
