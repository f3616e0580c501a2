//! Errors of loading a plugin and of calling one. Both name the plugin and its version.

use std::time::Duration;

/// The runtime itself could not start.
#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    /// The wasmtime engine rejected the configuration.
    #[error("plugin runtime: engine configuration: {0}")]
    Engine(String),
    /// The compiled-component cache directory is unusable.
    #[error("plugin runtime: cache directory {path}: {source}")]
    CacheDir {
        /// The configured directory.
        path: std::path::PathBuf,
        /// Why it is unusable.
        source: std::io::Error,
    },
}

/// A plugin refused at load (install, enable, upgrade).
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The manifest is invalid.
    #[error("plugin {plugin}: {source}")]
    Manifest {
        /// `name@version`.
        plugin: String,
        /// What is wrong with it.
        source: crate::manifest::ManifestError,
    },
    /// The bytes are not a valid WebAssembly component.
    #[error("plugin {plugin}: not a valid WebAssembly component: {reason}")]
    InvalidComponent {
        /// `name@version`.
        plugin: String,
        /// The compiler's message.
        reason: String,
    },
    /// The component implements none of Patron's worlds.
    #[error(
        "plugin {plugin}: implements no Patron world (expected an export of patron:plugin/segmentation, loyalty-program, recommendation or automation-hooks @0.1); it exports: {found}"
    )]
    NoWorld {
        /// `name@version`.
        plugin: String,
        /// The component's exports, comma separated (or `nothing`).
        found: String,
    },
    /// The component does not implement the world its manifest declares.
    #[error("plugin {plugin}: manifest declares world `{declared}` but the component implements: {found}")]
    WorldMismatch {
        /// `name@version`.
        plugin: String,
        /// The manifest's world.
        declared: crate::World,
        /// The worlds detected, comma separated.
        found: String,
    },
    /// The component imports something Patron never provides.
    #[error("plugin {plugin}: imports that Patron does not provide: {}", imports.join(", "))]
    UnknownImports {
        /// `name@version`.
        plugin: String,
        /// The import names.
        imports: Vec<String>,
    },
    /// Linking or pre-instantiation failed.
    #[error("plugin {plugin}: cannot link: {reason}")]
    Link {
        /// `name@version`.
        plugin: String,
        /// wasmtime's message.
        reason: String,
    },
}

/// Why one plugin call failed. The host answers on either way.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ErrorKind {
    /// The call ran past its time limit.
    #[error("timed out after {0:?}")]
    Timeout(Duration),
    /// The instance tried to grow its memory past its limit.
    #[error("memory limit of {limit} bytes exceeded")]
    MemoryLimit {
        /// The limit, in bytes.
        limit: usize,
    },
    /// The wasm call stack was exhausted (unbounded recursion).
    #[error("stack overflow")]
    StackOverflow,
    /// The answer was larger than allowed.
    #[error("output of {size} bytes exceeds the limit of {limit} bytes")]
    OutputTooLarge {
        /// Approximate size of the answer.
        size: usize,
        /// The limit.
        limit: usize,
    },
    /// Rust guest code panicked; the message is what it printed.
    #[error("panicked: {0}")]
    Panic(String),
    /// Any other trap (unreachable, out-of-bounds access, division by zero, ...).
    #[error("trapped: {0}")]
    Trap(String),
    /// The plugin tried to use something it has no access to (the network).
    #[error("denied: {0}")]
    Denied(String),
    /// The plugin answered with an error of its own.
    #[error("plugin error [{code}]: {message}")]
    Guest {
        /// The plugin's code (`not-implemented`, `bad-config`, ...).
        code: String,
        /// The plugin's message.
        message: String,
    },
    /// The answer broke the contract (for example, wrong number of results).
    #[error("invalid output: {0}")]
    InvalidOutput(String),
    /// The plugin does not implement the world this call belongs to.
    #[error("does not implement the `{0}` world")]
    WrongWorld(crate::World),
    /// A previous call on this warm instance failed; instantiate a new one.
    #[error("instance unusable after an earlier failure")]
    Poisoned,
    /// The host could not instantiate the plugin.
    #[error("could not instantiate: {0}")]
    Instantiate(String),
    /// The host is busy: the instance pool, or the shop's share of it, is full. The
    /// load's fault, not the plugin's.
    #[error("overloaded: {0}")]
    Overloaded(String),
}

impl ErrorKind {
    /// A stable machine-readable code, for the database and the API.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Timeout(_) => "timeout",
            Self::MemoryLimit { .. } => "memory-limit",
            Self::StackOverflow => "stack-overflow",
            Self::OutputTooLarge { .. } => "output-too-large",
            Self::Panic(_) => "panic",
            Self::Trap(_) => "trap",
            Self::Denied(_) => "denied",
            Self::Guest { .. } => "plugin-error",
            Self::InvalidOutput(_) => "invalid-output",
            Self::WrongWorld(_) => "wrong-world",
            Self::Poisoned => "poisoned",
            Self::Instantiate(_) => "instantiate",
            Self::Overloaded(_) => "overloaded",
        }
    }

    /// Whether the failure says something about the plugin (and so counts toward its
    /// circuit breaker), rather than about the host's load at the time.
    pub fn is_plugin_fault(&self) -> bool {
        !matches!(self, Self::Overloaded(_))
    }
}

/// A failed plugin call: which plugin, which function, and why.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("plugin {plugin}: {function}: {kind}")]
pub struct PluginError {
    /// `name@version`.
    pub plugin: String,
    /// The exported function, for example `segment`.
    pub function: &'static str,
    /// Why it failed.
    pub kind: ErrorKind,
}

impl PluginError {
    /// A failure of `function` of `plugin` (`name@version`).
    pub fn new(plugin: impl Into<String>, function: &'static str, kind: ErrorKind) -> Self {
        Self { plugin: plugin.into(), function, kind }
    }
}
