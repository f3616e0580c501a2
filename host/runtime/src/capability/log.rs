//! `log`: guest log lines into `tracing`, tagged with plugin and shop, budgeted per call.

use crate::bindings::log::{Host, Level};
use crate::store::StoreState;

/// Longest log line kept, in bytes; longer lines are cut.
const MAX_LINE_BYTES: usize = 1024;

impl Host for StoreState {
    fn log(&mut self, level: Level, mut message: String) {
        if self.log_lines >= self.ctx.limits.max_log_lines {
            return;
        }
        self.log_lines += 1;
        if message.len() > MAX_LINE_BYTES {
            let mut cut = MAX_LINE_BYTES;
            while !message.is_char_boundary(cut) {
                cut -= 1;
            }
            message.truncate(cut);
        }
        let plugin = &*self.plugin;
        let shop = &*self.ctx.shop_id;
        match level {
            Level::Trace => tracing::trace!(target: "patron::plugin", plugin, shop, "{message}"),
            Level::Debug => tracing::debug!(target: "patron::plugin", plugin, shop, "{message}"),
            Level::Info => tracing::info!(target: "patron::plugin", plugin, shop, "{message}"),
            Level::Warn => tracing::warn!(target: "patron::plugin", plugin, shop, "{message}"),
            Level::Error => tracing::error!(target: "patron::plugin", plugin, shop, "{message}"),
        }
    }
}
