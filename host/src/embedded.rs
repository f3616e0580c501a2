//! What `host/build.rs` built into the binary: the first-party plugins (installable by
//! name, `patron plugin available`) and the storefront widget.

/// A first-party plugin built into `patron`.
#[derive(Debug, Clone, Copy)]
pub struct EmbeddedPlugin {
    /// Its crate under `plugins/`.
    pub package: &'static str,
    /// Its `patron.toml`.
    pub manifest: &'static str,
    /// The component, built for wasm32-wasip2 with the size-optimised `plugin` profile.
    pub wasm: &'static [u8],
}

impl EmbeddedPlugin {
    /// Its manifest, parsed.
    pub fn manifest(&self) -> Result<patron_runtime::Manifest, patron_runtime::ManifestError> {
        patron_runtime::Manifest::from_toml(self.manifest)
    }
}

include!(concat!(env!("OUT_DIR"), "/embedded.rs"));

/// The first-party plugins built into this binary (none if it was built without the
/// wasm32-wasip2 target: see [`plugins_missing`]).
pub fn plugins() -> &'static [EmbeddedPlugin] {
    PLUGINS
}

/// The first-party plugin named `name` (its manifest's name, which is its crate's).
pub fn plugin(name: &str) -> Option<&'static EmbeddedPlugin> {
    PLUGINS.iter().find(|p| p.package == name)
}

/// Why this binary has no first-party plugins, if it has none.
pub fn plugins_missing() -> Option<&'static str> {
    PLUGINS_MISSING
}

/// A file of the built widget (`patron.js`, `patron_widget.js`, `patron_bg.wasm`, each
/// also with `.gz`), if the widget was built before this binary.
pub fn widget_file(name: &str) -> Option<&'static [u8]> {
    WIDGET.iter().find(|(n, _)| *n == name).map(|(_, bytes)| *bytes)
}
