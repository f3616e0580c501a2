//! The `kv` capability backed by the database, scoped to one (shop, plugin install).

use patron_runtime::{KvBackendError, KvStore};
use tokio::runtime::Handle;

use crate::store::Db;

/// An install's key-value data. Plugin calls run on blocking threads, so each operation
/// blocks on the async store through the runtime handle captured at creation.
pub struct DbKv {
    db: Db,
    shop_id: i64,
    plugin: String,
    handle: Handle,
}

impl DbKv {
    /// Must be created inside the tokio runtime.
    pub fn new(db: Db, shop_id: i64, plugin: &str) -> Self {
        Self { db, shop_id, plugin: plugin.to_owned(), handle: Handle::current() }
    }
}

fn backend_error(error: crate::store::StoreError) -> KvBackendError {
    tracing::error!(%error, "plugin kv store failed");
    KvBackendError("the key-value store is unavailable".into())
}

impl KvStore for DbKv {
    fn get(&self, key: &str) -> Result<Option<Vec<u8>>, KvBackendError> {
        self.handle.block_on(self.db.plugin_kv_get(self.shop_id, &self.plugin, key)).map_err(backend_error)
    }

    fn set(&self, key: &str, value: &[u8]) -> Result<(), KvBackendError> {
        self.handle.block_on(self.db.plugin_kv_set(self.shop_id, &self.plugin, key, value)).map_err(backend_error)
    }

    fn delete(&self, key: &str) -> Result<(), KvBackendError> {
        self.handle.block_on(self.db.plugin_kv_delete(self.shop_id, &self.plugin, key)).map_err(backend_error)
    }

    fn used_bytes(&self) -> Result<u64, KvBackendError> {
        self.handle.block_on(self.db.plugin_kv_used(self.shop_id, &self.plugin)).map_err(backend_error)
    }
}
