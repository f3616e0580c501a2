//! `kv`: the install's key-value store, with key checks and the quota enforced here.

use crate::bindings::kv::{Host, KvError};
use crate::kv::{KvBackendError, KvStore, MAX_KEY_BYTES};
use crate::store::StoreState;

impl From<KvBackendError> for KvError {
    fn from(e: KvBackendError) -> Self {
        KvError::Unavailable(e.0)
    }
}

impl StoreState {
    fn kv_store(&self, key: &str) -> Result<&dyn KvStore, KvError> {
        if key.is_empty() || key.len() > MAX_KEY_BYTES {
            return Err(KvError::InvalidKey);
        }
        self.ctx.kv.as_deref().ok_or_else(|| KvError::Unavailable("no key-value store for this call".into()))
    }
}

impl Host for StoreState {
    fn get(&mut self, key: String) -> Result<Option<Vec<u8>>, KvError> {
        Ok(self.kv_store(&key)?.get(&key)?)
    }

    fn set(&mut self, key: String, value: Vec<u8>) -> Result<(), KvError> {
        let quota = self.ctx.limits.kv_quota_bytes;
        let store = self.kv_store(&key)?;
        let previous = store.get(&key)?.map_or(0, |v| (key.len() + v.len()) as u64);
        let after = store.used_bytes()?.saturating_sub(previous).saturating_add((key.len() + value.len()) as u64);
        if after > quota {
            return Err(KvError::QuotaExceeded(quota));
        }
        Ok(store.set(&key, &value)?)
    }

    fn delete(&mut self, key: String) -> Result<(), KvError> {
        Ok(self.kv_store(&key)?.delete(&key)?)
    }
}
