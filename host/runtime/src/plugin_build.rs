//! Building workspace crates to WebAssembly with a nested `cargo build`: one piece of
//! code shared by the tests (`testing.rs`, at run time) and by the host's build script
//! (`host/build.rs`, which `#[path]`-includes this file to embed the first-party plugins
//! in `patron`). Standard library only, so the build script needs no dependencies.
//!
//! Both build into the same directory ([`plugin_target_dir`]), with the same profile
//! ([`profile`]), so a plugin built by one is fresh for the other. That directory is
//! never the outer build's own target directory: the outer `cargo` holds its lock while
//! a build script runs, so a nested build there would wait for ever.

use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use std::process::Command;

/// The target plugins are built for.
pub(crate) const PLUGIN_TARGET: &str = "wasm32-wasip2";

/// The Cargo profile plugins are built with (`[profile.plugin]` in the workspace's
/// `Cargo.toml`: optimised for size), unless `$PATRON_PLUGIN_PROFILE` names another
/// (`release`, to compare sizes and speed).
pub(crate) fn profile() -> String {
    std::env::var("PATRON_PLUGIN_PROFILE").ok().filter(|p| !p.is_empty()).unwrap_or_else(|| "plugin".to_owned())
}

/// Where plugins are built: inside `target_dir`, one directory per checkout of the
/// workspace at `root`. Cargo names a plugin's `.wasm` after its package alone, so
/// checkouts sharing a target directory would otherwise overwrite each other's.
pub(crate) fn plugin_target_dir(root: &Path, target_dir: &Path) -> PathBuf {
    let mut hasher = std::hash::DefaultHasher::new();
    root.canonicalize().unwrap_or_else(|_| root.to_owned()).hash(&mut hasher);
    target_dir.join(format!("plugins-{:016x}", hasher.finish()))
}

/// Where a nested build of `package` for `target` with `profile` leaves its `.wasm`.
pub(crate) fn wasm_path(plugin_dir: &Path, target: &str, profile: &str, package: &str) -> PathBuf {
    // Cargo's directory for the built-in `dev` profile is `debug`.
    let dir = if profile == "dev" { "debug" } else { profile };
    plugin_dir.join(target).join(dir).join(format!("{}.wasm", package.replace('-', "_")))
}

/// Builds `packages` of the workspace at `root` for `target` with `profile`, with one
/// `cargo` invocation into `plugin_dir`. Variables that the outer cargo sets for the
/// process it runs (a build script, a test) and that would change the nested build —
/// its flags, a clippy wrapper, a target dir — are removed, so that every caller gets
/// the same, fresh artifacts. `Err` carries cargo's stderr, or why it did not start.
pub(crate) fn cargo_build(
    root: &Path,
    plugin_dir: &Path,
    target: &str,
    profile: &str,
    packages: &[&str],
) -> Result<(), String> {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut command = Command::new(cargo);
    command
        .current_dir(root)
        .args(["build", "--target", target, "--profile", profile])
        .env("CARGO_TARGET_DIR", plugin_dir);
    for variable in [
        "CARGO_ENCODED_RUSTFLAGS",
        "RUSTFLAGS",
        "RUSTC_WRAPPER",
        "RUSTC_WORKSPACE_WRAPPER",
        "CARGO_BUILD_TARGET",
        "CARGO_PRIMARY_PACKAGE",
        "CARGO_MAKEFLAGS",
        "MAKEFLAGS",
        "MFLAGS",
        "TARGET",
        "HOST",
        "OPT_LEVEL",
        "DEBUG",
        "PROFILE",
    ] {
        command.env_remove(variable);
    }
    for package in packages {
        command.args(["-p", package]);
    }
    let output = command.output().map_err(|e| format!("running cargo: {e}"))?;
    if !output.status.success() {
        return Err(String::from_utf8_lossy(&output.stderr).into_owned());
    }
    Ok(())
}
