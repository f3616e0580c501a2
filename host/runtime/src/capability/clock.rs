//! `clock`: the system time in Unix milliseconds, or the context's pinned time.

use crate::bindings::clock::Host;
use crate::store::StoreState;

impl Host for StoreState {
    fn now(&mut self) -> i64 {
        self.ctx.fixed_now.unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        })
    }
}
