//! Build the workspace's plugins to WebAssembly from tests (feature `testing`).
//!
//! ```ignore
//! let wasm = patron_runtime::testing::plugin_wasm("segment-example")?; // bytes
//! ```
//!
//! The first call in a process builds every plugin in [`TEST_PLUGINS`] with
//! one `cargo build --profile plugin --target wasm32-wasip2 -p ...` (using `$CARGO`,
//! into [`plugin_target_dir`], so builds are incremental); later calls reuse
//! the result. A package
//! outside that list is built on its own the first time it is asked for.

use std::collections::HashSet;
use std::path::PathBuf;
use std::process::Command;
use std::sync::{Mutex, OnceLock};

use crate::types::{CustomerStats, Profile};

/// The plugins of this workspace that tests use, built together on first use.
pub const TEST_PLUGINS: &[&str] = &[
    "segment-example",
    "raw-segmenter",
    "template-loyalty",
    "template-recommender",
    "template-automation",
    "journeys",
    "clv",
    "hostile-loop",
    "hostile-memory",
    "hostile-recursion",
    "hostile-output",
    "hostile-trap",
    "hostile-panic",
    "hostile-file",
    "hostile-env",
    "hostile-socket",
    "hostile-sleep",
    "no-world",
    "wants-kv",
];

/// A customer known by order statistics only: `orders` paid orders totalling `spent`
/// minor units, the last `days` ago; traits `{}`, no email, tags or segments.
pub fn profile(id: &str, orders: u32, spent: i64, days: Option<u32>) -> Profile {
    Profile {
        id: id.into(),
        external_id: None,
        email: None,
        traits: "{}".into(),
        stats: CustomerStats {
            order_count: orders,
            total_spent: spent,
            average_order_value: 0,
            first_order_at: None,
            last_order_at: None,
            days_since_last_order: days,
        },
        tags: vec![],
        segments: vec![],
    }
}

/// The wasm target plugins are built for.
pub const TARGET: &str = crate::plugin_build::PLUGIN_TARGET;

/// A plugin could not be built or read.
#[derive(Debug, Clone, thiserror::Error)]
#[error("building plugin(s) {packages}: {reason}")]
pub struct BuildError {
    /// The packages being built.
    pub packages: String,
    /// What went wrong (cargo's stderr, or an I/O error).
    pub reason: String,
}

/// The workspace root (two levels above this crate).
pub fn workspace_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The target directory: `$CARGO_TARGET_DIR`, or `target/` in the workspace.
pub fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| workspace_root().join("target"), PathBuf::from)
}

/// Where plugins are built: inside [`target_dir`], one directory per checkout of
/// the workspace (the directory `host/build.rs` builds the embedded plugins in too).
pub fn plugin_target_dir() -> PathBuf {
    crate::plugin_build::plugin_target_dir(&workspace_root(), &target_dir())
}

/// Where the built `.wasm` of `package` is.
pub fn wasm_path(package: &str) -> PathBuf {
    crate::plugin_build::wasm_path(&plugin_target_dir(), TARGET, &crate::plugin_build::profile(), package)
}

/// Build `packages` (wasm32-wasip2, the size-optimised `plugin` profile, or
/// `$PATRON_PLUGIN_PROFILE`) with one cargo invocation.
pub fn build(packages: &[&str]) -> Result<(), BuildError> {
    let profile = crate::plugin_build::profile();
    crate::plugin_build::cargo_build(&workspace_root(), &plugin_target_dir(), TARGET, &profile, packages)
        .map_err(|reason| BuildError { packages: packages.join(", "), reason })
}

/// The `.wasm` bytes of workspace plugin `package`, built once per process.
pub fn plugin_wasm(package: &str) -> Result<Vec<u8>, BuildError> {
    static ALL: OnceLock<Result<(), BuildError>> = OnceLock::new();
    static OTHERS: Mutex<Option<HashSet<String>>> = Mutex::new(None);

    if TEST_PLUGINS.contains(&package) {
        ALL.get_or_init(|| build(TEST_PLUGINS)).clone()?;
    } else {
        let mut built = OTHERS.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let built = built.get_or_insert_with(HashSet::new);
        if !built.contains(package) {
            build(&[package])?;
            built.insert(package.to_owned());
        }
    }
    let path = wasm_path(package);
    std::fs::read(&path)
        .map_err(|e| BuildError { packages: package.to_owned(), reason: format!("reading {}: {e}", path.display()) })
}

/// Build a Python plugin with `componentize-py` (which must be on `PATH`:
/// `pip install componentize-py`): `plugins/<dir>/app.py` against `wit/`'s
/// `world`, written to `<target>/componentize-py/<name>.wasm`; returns the bytes.
pub fn python_plugin_wasm(dir: &str, world: &str) -> Result<Vec<u8>, BuildError> {
    let error = |reason: String| BuildError { packages: dir.to_owned(), reason };
    let source = workspace_root().join("plugins").join(dir);
    let out_dir = target_dir().join("componentize-py");
    std::fs::create_dir_all(&out_dir).map_err(|e| error(format!("creating {}: {e}", out_dir.display())))?;
    let name = dir.rsplit('/').next().unwrap_or(dir).replace('-', "_");
    let out = out_dir.join(format!("{name}.wasm"));
    let output = Command::new("componentize-py")
        .current_dir(&source)
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .arg("-d")
        .arg(workspace_root().join("wit"))
        .args(["-w", world, "componentize", "app", "-o"])
        .arg(&out)
        .output()
        .map_err(|e| error(format!("running componentize-py (pip install componentize-py): {e}")))?;
    if !output.status.success() {
        return Err(error(String::from_utf8_lossy(&output.stderr).into_owned()));
    }
    std::fs::read(&out).map_err(|e| error(format!("reading {}: {e}", out.display())))
}
