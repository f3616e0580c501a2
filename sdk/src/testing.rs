//! A native test harness: run plugin code in `cargo test`, with no wasm and
//! no server. A [`TestHost`] stands in for the host: configuration, a pinned
//! clock, an in-memory key-value store with a quota, and captured logs.
//!
//! ```
//! use patron_sdk::testing::TestHost;
//! use patron_sdk::{kv, now};
//!
//! let mut host = TestHost::new().at(1_700_000_000_000).config(r#"{"threshold": 3}"#);
//! let seen = host.run(|| {
//!     kv::set("k", b"v").expect("within quota");
//!     now()
//! });
//! assert_eq!(seen, 1_700_000_000_000);
//! assert_eq!(host.kv_value("k"), Some(&b"v"[..]));
//! ```

use std::collections::BTreeMap;

use crate::host::Level;
use crate::types::{CustomerStats, Profile, Timestamp};

/// A stand-in host for native tests.
#[derive(Clone, Debug)]
pub struct TestHost {
    config: String,
    now: Option<Timestamp>,
    kv: BTreeMap<String, Vec<u8>>,
    kv_quota: u64,
    logs: Vec<(Level, String)>,
}

impl Default for TestHost {
    fn default() -> Self {
        Self { config: "{}".into(), now: None, kv: BTreeMap::new(), kv_quota: 1 << 20, logs: Vec::new() }
    }
}

impl TestHost {
    /// Config `{}`, the system clock, an empty kv store with a 1 MiB quota.
    pub fn new() -> Self {
        Self::default()
    }

    /// Use this configuration JSON.
    #[must_use]
    pub fn config(mut self, json: impl Into<String>) -> Self {
        self.config = json.into();
        self
    }

    /// Pin the clock at `now` (Unix ms).
    #[must_use]
    pub fn at(mut self, now: Timestamp) -> Self {
        self.now = Some(now);
        self
    }

    /// Set the kv quota (bytes of keys plus values).
    #[must_use]
    pub fn kv_quota(mut self, bytes: u64) -> Self {
        self.kv_quota = bytes;
        self
    }

    /// Run `f` with this host serving the plugin's host calls on this thread.
    pub fn run<R>(&mut self, f: impl FnOnce() -> R) -> R {
        native::swap(self);
        let out = f();
        native::swap(self);
        out
    }

    /// The value stored under `key`.
    pub fn kv_value(&self, key: &str) -> Option<&[u8]> {
        self.kv.get(key).map(Vec::as_slice)
    }

    /// Log lines written so far.
    pub fn logs(&self) -> &[(Level, String)] {
        &self.logs
    }
}

/// A profile with `id`, no orders, no tags, traits `{}`: a starting point for tests.
pub fn profile(id: &str) -> Profile {
    Profile { id: id.into(), traits: "{}".into(), stats: CustomerStats::default(), ..Profile::default() }
}

pub(crate) mod native {
    use std::cell::RefCell;

    use super::TestHost;
    use crate::host::{KvError, Level};

    thread_local! {
        static CURRENT: RefCell<TestHost> = RefCell::new(TestHost::default());
    }

    pub(crate) fn swap(host: &mut TestHost) {
        CURRENT.with(|c| std::mem::swap(&mut *c.borrow_mut(), host));
    }

    pub(crate) fn log(level: Level, message: &str) {
        CURRENT.with(|c| c.borrow_mut().logs.push((level, message.to_owned())));
    }

    pub(crate) fn now() -> i64 {
        CURRENT.with(|c| c.borrow().now).unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        })
    }

    pub(crate) fn config() -> String {
        CURRENT.with(|c| c.borrow().config.clone())
    }

    fn check(key: &str) -> Result<(), KvError> {
        if key.is_empty() || key.len() > 256 {
            return Err(KvError::InvalidKey);
        }
        Ok(())
    }

    pub(crate) fn kv_get(key: &str) -> Result<Option<Vec<u8>>, KvError> {
        check(key)?;
        Ok(CURRENT.with(|c| c.borrow().kv.get(key).cloned()))
    }

    pub(crate) fn kv_set(key: &str, value: &[u8]) -> Result<(), KvError> {
        check(key)?;
        CURRENT.with(|c| {
            let mut host = c.borrow_mut();
            let used: u64 =
                host.kv.iter().filter(|(k, _)| k.as_str() != key).map(|(k, v)| (k.len() + v.len()) as u64).sum();
            if used + (key.len() + value.len()) as u64 > host.kv_quota {
                return Err(KvError::QuotaExceeded(host.kv_quota));
            }
            host.kv.insert(key.to_owned(), value.to_vec());
            Ok(())
        })
    }

    pub(crate) fn kv_delete(key: &str) -> Result<(), KvError> {
        check(key)?;
        CURRENT.with(|c| c.borrow_mut().kv.remove(key));
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::host::{KvError, kv};

    #[test]
    fn kv_quota_is_enforced_natively() {
        let mut host = TestHost::new().kv_quota(10);
        host.run(|| {
            assert_eq!(kv::set("a", b"12345"), Ok(()));
            assert_eq!(kv::set("a", b"123456789"), Ok(()), "replacing counts once");
            assert_eq!(kv::set("b", b"1"), Err(KvError::QuotaExceeded(10)));
            assert_eq!(kv::set("", b"1"), Err(KvError::InvalidKey));
            kv::set_json("a", &7u8).expect("fits");
            assert_eq!(kv::get_json::<u8>("a"), Ok(Some(7)));
        });
    }

    #[test]
    fn config_and_clock_come_from_the_host() {
        #[derive(serde::Deserialize)]
        struct Config {
            threshold: u32,
        }
        let mut host = TestHost::new().config(r#"{"threshold": 3}"#).at(42);
        let (config, now) = host.run(|| (crate::config::<Config>(), crate::now()));
        assert_eq!(config.map(|c| c.threshold), Ok(3));
        assert_eq!(now, 42);
        let mut bad = TestHost::new().config("[]");
        let err = bad.run(crate::config::<Config>).err().map(|e| e.code);
        assert_eq!(err.as_deref(), Some("bad-config"));
    }
}
