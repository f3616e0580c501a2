//! What a plugin may ask the host for: log, clock, config, key-value store.
//! Each needs the matching grant (`log`, `clock`, `config`, `kv`) in the
//! plugin's manifest. In a native build (an author's `cargo test`) they are
//! served by the [`testing::TestHost`](crate::testing::TestHost) of the thread.

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::json::{self, FromJson, ToJson};
use crate::types::{Error, Timestamp};

/// Severity of a log line.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    /// Very verbose.
    Trace,
    /// Debugging.
    Debug,
    /// Normal operation.
    Info,
    /// Something odd.
    Warn,
    /// Something failed.
    Error,
}

/// Why a key-value operation failed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum KvError {
    /// The write would exceed the install's quota (bytes).
    QuotaExceeded(u64),
    /// Empty key, or longer than 256 bytes.
    InvalidKey,
    /// The store failed.
    Unavailable(String),
    /// A typed value could not be (de)serialized.
    Serde(String),
}

impl std::fmt::Display for KvError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::QuotaExceeded(q) => write!(f, "kv quota of {q} bytes exceeded"),
            Self::InvalidKey => f.write_str("invalid kv key"),
            Self::Unavailable(m) => write!(f, "kv unavailable: {m}"),
            Self::Serde(m) => write!(f, "kv value: {m}"),
        }
    }
}

impl std::error::Error for KvError {}

impl From<KvError> for Error {
    fn from(e: KvError) -> Self {
        Error::new("kv", e.to_string())
    }
}

/// Write a log line to the host's log.
pub fn log(level: Level, message: &str) {
    backend::log(level, message);
}

/// The current time (Unix ms), from the host.
pub fn now() -> Timestamp {
    backend::now()
}

/// The install's configuration as raw JSON.
pub fn config_json() -> String {
    backend::config()
}

/// The install's configuration, deserialized into `T` with serde.
///
/// [`read_config`] does the same without serde: a component that reads its config
/// (and kv values) with [`json`] instead of `serde_json` is 40–80 KB smaller.
pub fn config<T: DeserializeOwned>() -> Result<T, Error> {
    serde_json::from_str(&backend::config()).map_err(|e| Error::new("bad-config", e.to_string()))
}

/// The install's configuration, read into `T` with [`FromJson`]; an error is
/// `bad-config`, naming the field (`tiers[1].threshold: expected an integer`).
pub fn read_config<T: FromJson>() -> Result<T, Error> {
    json::from_str(&backend::config()).map_err(|e| Error::new("bad-config", e.to_string()))
}

/// The key-value store of this install (scoped to shop and install, with a quota).
///
/// Keep what is about one customer under a key that has their id (the profile's `id`)
/// as one of its `:`-separated parts, such as `welcome:<id>`: the host then exports those
/// entries with the customer, erases them with the customer, and renames them to the
/// survivor when the customer is merged into another record.
pub mod kv {
    use super::{DeserializeOwned, FromJson, KvError, Serialize, ToJson, backend, json};

    /// Raw bytes under `key`.
    pub fn get(key: &str) -> Result<Option<Vec<u8>>, KvError> {
        backend::kv_get(key)
    }

    /// Store raw bytes under `key`.
    pub fn set(key: &str, value: &[u8]) -> Result<(), KvError> {
        backend::kv_set(key, value)
    }

    /// Remove `key`.
    pub fn delete(key: &str) -> Result<(), KvError> {
        backend::kv_delete(key)
    }

    /// The JSON value under `key`, deserialized.
    pub fn get_json<T: DeserializeOwned>(key: &str) -> Result<Option<T>, KvError> {
        get(key)?.map(|bytes| serde_json::from_slice(&bytes).map_err(|e| KvError::Serde(e.to_string()))).transpose()
    }

    /// Store `value` as JSON under `key`.
    pub fn set_json<T: Serialize>(key: &str, value: &T) -> Result<(), KvError> {
        let bytes = serde_json::to_vec(value).map_err(|e| KvError::Serde(e.to_string()))?;
        set(key, &bytes)
    }

    /// The JSON value under `key`, read with [`FromJson`] (no serde: see [`json`]).
    pub fn read<T: FromJson>(key: &str) -> Result<Option<T>, KvError> {
        get(key)?.map(|bytes| json::from_slice(&bytes).map_err(|e| KvError::Serde(e.to_string()))).transpose()
    }

    /// Store `value` as JSON under `key`, written with [`ToJson`].
    pub fn write<T: ToJson + ?Sized>(key: &str, value: &T) -> Result<(), KvError> {
        set(key, json::to_string(value).as_bytes())
    }
}

#[cfg(target_arch = "wasm32")]
mod backend {
    use super::{KvError, Level};
    use crate::__wit::segmenter::patron::plugin::{clock, config, kv, log};

    pub(super) fn log(level: Level, message: &str) {
        let level = match level {
            Level::Trace => log::Level::Trace,
            Level::Debug => log::Level::Debug,
            Level::Info => log::Level::Info,
            Level::Warn => log::Level::Warn,
            Level::Error => log::Level::Error,
        };
        log::log(level, message);
    }

    pub(super) fn now() -> i64 {
        clock::now()
    }

    /// The config cannot change during an instance's life (the host fixes it
    /// at instantiation), so a warm instance asks the host only once.
    pub(super) fn config() -> String {
        static CONFIG: std::sync::OnceLock<String> = std::sync::OnceLock::new();
        CONFIG.get_or_init(config::get).clone()
    }

    fn convert(e: kv::KvError) -> KvError {
        match e {
            kv::KvError::QuotaExceeded(q) => KvError::QuotaExceeded(q),
            kv::KvError::InvalidKey => KvError::InvalidKey,
            kv::KvError::Unavailable(m) => KvError::Unavailable(m),
        }
    }

    pub(super) fn kv_get(key: &str) -> Result<Option<Vec<u8>>, KvError> {
        kv::get(key).map_err(convert)
    }

    pub(super) fn kv_set(key: &str, value: &[u8]) -> Result<(), KvError> {
        kv::set(key, value).map_err(convert)
    }

    pub(super) fn kv_delete(key: &str) -> Result<(), KvError> {
        kv::delete(key).map_err(convert)
    }
}

#[cfg(not(target_arch = "wasm32"))]
mod backend {
    pub(super) use crate::testing::native::{config, kv_delete, kv_get, kv_set, log, now};
}
