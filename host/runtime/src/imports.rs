//! What a plugin's imports are linked to: an allow-list of WASI, the capabilities it
//! was granted, and, for every other import of the component, a stub whose call fails
//! that call with a clear error. A component built by a toolchain that imports its
//! whole world (componentize-py) therefore instantiates with only what it uses granted.

use wasmtime::component::types::ComponentItem;
use wasmtime::component::{Component, HasData, Linker, ResourceTable, ResourceType};
use wasmtime::{Engine, bail};
use wasmtime_wasi::WasiView;
use wasmtime_wasi::cli::{WasiCli, WasiCliView};
use wasmtime_wasi::clocks::{WasiClocks, WasiClocksView};
use wasmtime_wasi::p2::bindings::{cli, clocks, io, random};
use wasmtime_wasi::p2::{DynInputStream, DynOutputStream, DynPollable, IoError};
use wasmtime_wasi::random::WasiRandom;

use crate::capability;
use crate::grants::{Capability, Grants};
use crate::inspect::split_version;
use crate::store::StoreState;

/// WASI interfaces a plugin may use. None of them reaches outside the store: the
/// environment and arguments are empty, stdin is empty, stdout is discarded, stderr is
/// captured (panic messages), the clocks only read. A wait on the monotonic clock
/// (`subscribe-*`, then `poll`) is awaited on the call's executor, so the call's
/// wall-clock limit cuts it short. Filesystem, sockets and terminals are not here.
const LINKED_WASI: &[&str] = &[
    "wasi:io/error",
    "wasi:io/poll",
    "wasi:io/streams",
    "wasi:clocks/wall-clock",
    "wasi:clocks/monotonic-clock",
    "wasi:random/random",
    "wasi:random/insecure",
    "wasi:random/insecure-seed",
    "wasi:cli/environment",
    "wasi:cli/exit",
    "wasi:cli/stdin",
    "wasi:cli/stdout",
    "wasi:cli/stderr",
];

/// `wasi:io` is implemented on the store's resource table alone.
struct HasTable;

impl HasData for HasTable {
    type Data<'a> = &'a mut ResourceTable;
}

/// A stubbed resource type: never constructed, since every function that could
/// return one traps.
struct Unavailable;

/// Link into `linker` the allowed WASI, `types`, the `granted` capabilities, and
/// stubs for every other import of `component`.
pub(crate) fn link(
    linker: &mut Linker<StoreState>,
    engine: &Engine,
    component: &Component,
    granted: &Grants,
    plugin: &str,
) -> wasmtime::Result<()> {
    link_wasi(linker)?;
    capability::link_granted(linker, granted)?;
    let component_type = component.component_type();
    let imports: Vec<_> = component_type.imports(engine).collect();
    let is_linked = |interface: &str| {
        LINKED_WASI.contains(&interface)
            || interface == "patron:plugin/types"
            || Capability::from_interface(interface).is_some_and(|c| granted.allows(c))
    };
    // Resources of linked `wasi:io` that stubbed interfaces use too (a filesystem
    // descriptor's streams): a stub must name the very host type the linker has.
    let mut shared = Vec::new();
    for (name, item) in &imports {
        let (interface, _) = split_version(name);
        if let (true, ComponentItem::ComponentInstance(instance)) = (is_linked(interface), &item.ty) {
            for (export, item) in instance.exports(engine) {
                if let (ComponentItem::Resource(ty), Some(host)) = (&item.ty, io_resource(interface, export)) {
                    shared.push((*ty, host));
                }
            }
        }
    }
    for (name, item) in imports {
        let (interface, _) = split_version(name);
        if is_linked(interface) {
            continue;
        }
        let ComponentItem::ComponentInstance(instance) = item.ty else {
            bail!("import `{name}` is not an interface");
        };
        let reason = unavailable(interface, plugin);
        let mut stubs = linker.instance(name)?;
        for (export, item) in instance.exports(engine) {
            match item.ty {
                ComponentItem::ComponentFunc(_) => {
                    let reason = format!("{reason} (called `{export}`)");
                    stubs.func_new(export, move |mut store, _, _, _| {
                        store.data_mut().deny(&reason);
                        bail!("{reason}")
                    })?;
                }
                ComponentItem::Resource(ty) => {
                    let host =
                        shared.iter().find(|(t, _)| *t == ty).map_or_else(ResourceType::host::<Unavailable>, |s| s.1);
                    stubs.resource(export, host, |_, _| Ok(()))?;
                }
                _ => {}
            }
        }
    }
    Ok(())
}

/// The host type of a `wasi:io` resource, as `link_wasi` links it.
fn io_resource(interface: &str, name: &str) -> Option<ResourceType> {
    match (interface, name) {
        ("wasi:io/poll", "pollable") => Some(ResourceType::host::<DynPollable>()),
        ("wasi:io/streams", "input-stream") => Some(ResourceType::host::<DynInputStream>()),
        ("wasi:io/streams", "output-stream") => Some(ResourceType::host::<DynOutputStream>()),
        ("wasi:io/error", "error") => Some(ResourceType::host::<IoError>()),
        _ => None,
    }
}

/// Why an import is stubbed, as the failed call reports it.
fn unavailable(interface: &str, plugin: &str) -> String {
    match Capability::from_interface(interface) {
        Some(capability) => format!("capability `{capability}` not granted to plugin {plugin}"),
        None if interface.starts_with("wasi:sockets/") => {
            format!("network access (`{interface}`) is not available to plugin {plugin}")
        }
        None => format!("`{interface}` is not available to plugin {plugin}"),
    }
}

fn link_wasi(l: &mut Linker<StoreState>) -> wasmtime::Result<()> {
    io::error::add_to_linker::<StoreState, HasTable>(l, |t| t.ctx().table)?;
    io::poll::add_to_linker::<StoreState, HasTable>(l, |t| t.ctx().table)?;
    io::streams::add_to_linker::<StoreState, HasTable>(l, |t| t.ctx().table)?;
    clocks::wall_clock::add_to_linker::<StoreState, WasiClocks>(l, WasiClocksView::clocks)?;
    clocks::monotonic_clock::add_to_linker::<StoreState, WasiClocks>(l, WasiClocksView::clocks)?;
    random::random::add_to_linker::<StoreState, WasiRandom>(l, |t| t.ctx().ctx.random())?;
    random::insecure::add_to_linker::<StoreState, WasiRandom>(l, |t| t.ctx().ctx.random())?;
    random::insecure_seed::add_to_linker::<StoreState, WasiRandom>(l, |t| t.ctx().ctx.random())?;
    cli::environment::add_to_linker::<StoreState, WasiCli>(l, WasiCliView::cli)?;
    cli::exit::add_to_linker::<StoreState, WasiCli>(l, WasiCliView::cli)?;
    cli::stdin::add_to_linker::<StoreState, WasiCli>(l, WasiCliView::cli)?;
    cli::stdout::add_to_linker::<StoreState, WasiCli>(l, WasiCliView::cli)?;
    cli::stderr::add_to_linker::<StoreState, WasiCli>(l, WasiCliView::cli)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stubs_name_the_capability_and_the_plugin() {
        assert_eq!(unavailable("patron:plugin/kv", "p@1.0.0"), "capability `kv` not granted to plugin p@1.0.0");
        assert!(unavailable("wasi:sockets/tcp", "p@1.0.0").starts_with("network access"));
        assert_eq!(
            unavailable("wasi:filesystem/preopens", "p@1"),
            "`wasi:filesystem/preopens` is not available to plugin p@1"
        );
    }

    #[test]
    fn nothing_that_reaches_outside_is_linked() {
        for prefix in ["wasi:filesystem/", "wasi:sockets/", "wasi:cli/terminal", "wasi:http/"] {
            assert!(!LINKED_WASI.iter().any(|i| i.starts_with(prefix)), "{prefix} linked");
        }
    }
}
