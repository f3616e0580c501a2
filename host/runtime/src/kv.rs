//! The key-value store a plugin install may be granted, as the host provides it.

use std::collections::BTreeMap;
use std::sync::Mutex;

/// Longest key a plugin may use, in bytes.
pub const MAX_KEY_BYTES: usize = 256;

/// Storage behind the `kv` capability, already scoped by the host to one
/// (shop, plugin install). The runtime enforces key syntax and the quota
/// ([`Limits::kv_quota_bytes`](crate::Limits::kv_quota_bytes)) before calling it.
///
/// Calls are synchronous: plugin calls run on a blocking thread.
pub trait KvStore: Send + Sync {
    /// The value under `key`, if any.
    fn get(&self, key: &str) -> Result<Option<Vec<u8>>, KvBackendError>;
    /// Store `value` under `key`.
    fn set(&self, key: &str, value: &[u8]) -> Result<(), KvBackendError>;
    /// Remove `key` (absent keys are not an error).
    fn delete(&self, key: &str) -> Result<(), KvBackendError>;
    /// Bytes in use: the sum of key and value lengths.
    fn used_bytes(&self) -> Result<u64, KvBackendError>;
}

/// The backing store failed; the message is shown to the plugin.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{0}")]
pub struct KvBackendError(pub String);

/// An in-memory [`KvStore`], for tests, dry runs and benchmarks.
#[derive(Debug, Default)]
pub struct MemoryKv {
    entries: Mutex<BTreeMap<String, Vec<u8>>>,
}

impl MemoryKv {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> Result<std::sync::MutexGuard<'_, BTreeMap<String, Vec<u8>>>, KvBackendError> {
        self.entries.lock().map_err(|_| KvBackendError("kv store lock poisoned".into()))
    }
}

impl KvStore for MemoryKv {
    fn get(&self, key: &str) -> Result<Option<Vec<u8>>, KvBackendError> {
        Ok(self.lock()?.get(key).cloned())
    }

    fn set(&self, key: &str, value: &[u8]) -> Result<(), KvBackendError> {
        self.lock()?.insert(key.to_owned(), value.to_vec());
        Ok(())
    }

    fn delete(&self, key: &str) -> Result<(), KvBackendError> {
        self.lock()?.remove(key);
        Ok(())
    }

    fn used_bytes(&self) -> Result<u64, KvBackendError> {
        Ok(self.lock()?.iter().map(|(k, v)| (k.len() + v.len()) as u64).sum())
    }
}
