//! Per-call resource limits.

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// What one plugin call may use. Configurable per install; the defaults are
/// safe for a hook called on the request path.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, rename_all = "kebab-case")]
pub struct Limits {
    /// Wall-clock time one call may run (instantiation excluded), rounded up
    /// to the runtime's epoch tick.
    #[serde(with = "millis")]
    pub timeout: Duration,
    /// Linear memory the instance may grow to, in bytes. Capped by
    /// [`RuntimeConfig::max_memory_bytes`](crate::RuntimeConfig::max_memory_bytes).
    pub max_memory_bytes: usize,
    /// Size of one call's answer (strings and lists, approximately), in bytes.
    pub max_output_bytes: usize,
    /// Size of the install's key-value store (keys plus values), in bytes.
    pub kv_quota_bytes: u64,
    /// Log lines one call may write; further lines are dropped.
    pub max_log_lines: u32,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            timeout: Duration::from_millis(1000),
            max_memory_bytes: 64 << 20,
            max_output_bytes: 4 << 20,
            kv_quota_bytes: 1 << 20,
            max_log_lines: 100,
        }
    }
}

mod millis {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub(super) fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        u64::deserialize(d).map(Duration::from_millis)
    }
}
