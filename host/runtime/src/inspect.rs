//! What a component implements and imports, read from its type.

use serde::Serialize;
use wasmtime::Engine;
use wasmtime::component::Component;

use crate::grants::Capability;
use crate::manifest::World;

/// Contract versions this runtime serves: `0.1.x`. wasmtime resolves imports and
/// exports across semver-compatible versions, so one set of bindings (built from
/// `wit/`, the newest 0.1.x) serves components built against any of them.
const SUPPORTED_VERSION_PREFIX: &str = "0.1.";

/// A component's worlds and imports, as found in its type.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct ComponentInfo {
    /// Patron worlds it implements (it exports their interface at a supported version).
    pub worlds: Vec<World>,
    /// It exports `stats-segmentation` (since 0.1.1): the stats-only batch path of a segmenter.
    pub stats_segmentation: bool,
    /// Patron capabilities it imports.
    pub capabilities: Vec<Capability>,
    /// Every export name, as found (for messages).
    pub exports: Vec<String>,
    /// WASI interfaces it imports (linked deny-all).
    pub wasi_imports: Vec<String>,
    /// Imports that are neither Patron's nor WASI (such a component is refused).
    pub unknown_imports: Vec<String>,
}

/// Split `ns:pkg/iface@1.2.3` into (`ns:pkg/iface`, `1.2.3`).
pub(crate) fn split_version(name: &str) -> (&str, Option<&str>) {
    match name.split_once('@') {
        Some((iface, version)) => (iface, Some(version)),
        None => (name, None),
    }
}

/// Exported (beside `segmentation`) by segmenters with the stats-only batch path.
const STATS_SEGMENTATION: &str = "patron:plugin/stats-segmentation";

fn supported(version: Option<&str>) -> bool {
    version.is_some_and(|v| v.starts_with(SUPPORTED_VERSION_PREFIX))
}

pub(crate) fn inspect(engine: &Engine, component: &Component) -> ComponentInfo {
    let ty = component.component_type();
    let mut info = ComponentInfo::default();
    for (name, _) in ty.exports(engine) {
        info.exports.push(name.to_owned());
        let (iface, version) = split_version(name);
        if iface == STATS_SEGMENTATION && supported(version) {
            info.stats_segmentation = true;
        }
        if let Some(world) = World::from_export_interface(iface)
            && supported(version)
            && !info.worlds.contains(&world)
        {
            info.worlds.push(world);
        }
    }
    for (name, _) in ty.imports(engine) {
        let (iface, version) = split_version(name);
        if iface.starts_with("wasi:") {
            info.wasi_imports.push(name.to_owned());
        } else if iface == "patron:plugin/types" && supported(version) {
            // Types only; always available.
        } else if let Some(cap) = Capability::from_interface(iface).filter(|_| supported(version)) {
            info.capabilities.push(cap);
        } else {
            info.unknown_imports.push(name.to_owned());
        }
    }
    info.worlds.sort();
    info.capabilities.sort();
    info
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_split_and_only_0_1_is_supported() {
        assert_eq!(split_version("patron:plugin/kv@0.1.3"), ("patron:plugin/kv", Some("0.1.3")));
        assert_eq!(split_version("run"), ("run", None));
        assert!(supported(Some("0.1.0")));
        assert!(supported(Some("0.1.7")));
        assert!(!supported(Some("0.2.0")));
        assert!(!supported(None));
    }
}
