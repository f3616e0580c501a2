//! `config`: the install's configuration JSON.

use crate::bindings::config::Host;
use crate::store::StoreState;

impl Host for StoreState {
    fn get(&mut self) -> String {
        self.ctx.config_json.to_string()
    }
}
