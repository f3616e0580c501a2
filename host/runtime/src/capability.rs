//! Host imports, one module per capability. Each implements its bindgen
//! `Host` trait on the store's data and adds itself to a linker; only granted
//! capabilities are added (see [`link_granted`]).

mod clock;
mod config;
mod kv;
mod log;

use wasmtime::component::{HasSelf, Linker};

use crate::bindings;
use crate::grants::{Capability, Grants};
use crate::store::StoreState;

/// `types` has no functions; it is linked (empty) so that components importing it resolve.
impl bindings::types::Host for StoreState {}

/// Add the shared `types` interface and every granted capability to `linker`.
pub(crate) fn link_granted(linker: &mut Linker<StoreState>, grants: &Grants) -> wasmtime::Result<()> {
    bindings::types::add_to_linker::<StoreState, HasSelf<StoreState>>(linker, |s| s)?;
    for capability in grants.iter() {
        match capability {
            Capability::Log => {
                bindings::log::add_to_linker::<StoreState, HasSelf<StoreState>>(linker, |s| s)?;
            }
            Capability::Clock => {
                bindings::clock::add_to_linker::<StoreState, HasSelf<StoreState>>(linker, |s| s)?;
            }
            Capability::Config => {
                bindings::config::add_to_linker::<StoreState, HasSelf<StoreState>>(linker, |s| s)?;
            }
            Capability::Kv => {
                bindings::kv::add_to_linker::<StoreState, HasSelf<StoreState>>(linker, |s| s)?;
            }
        }
    }
    Ok(())
}
