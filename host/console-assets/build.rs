//! Fetches the console's browser libraries from the npm registry at pinned versions,
//! checks each tarball's sha512 against the integrity pinned here, unpacks the one file
//! served, and writes `vendored.rs` embedding it (or `None` when anything failed, with a
//! cargo warning saying why).
//!
//! `npm pack` keeps its own cache, so a rebuild does not download again. Set
//! `PATRON_CONSOLE_VENDOR_DIR` to a directory holding the tarballs to build offline.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;

use base64::Engine;
use sha2::{Digest, Sha512};

/// (constant name, package, version, sha512 integrity of the tarball, file in the tarball).
const PINNED: &[(&str, &str, &str, &str, &str)] = &[
    (
        "HTMX",
        "htmx.org",
        "2.0.11",
        "sha512-Thx/WtpeOQqSrqBCw/A1cwGJGg4UrVa3+sW0GmrM3p4gJgO89ecH4qtbnyzDDWFvBTqjnIMCgELTNt636dtamA==",
        "package/dist/htmx.min.js",
    ),
    (
        "ECHARTS",
        "echarts",
        "6.1.0",
        "sha512-q0yaFPggC9FUdsWH4blavRWFmxdrIodbkoKNAjJudAI6CA9gNPxHtV2RcZNEepZVlk4yvBYkOkbk6HIVpIyHZA==",
        "package/dist/echarts.min.js",
    ),
];

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-env-changed=PATRON_CONSOLE_VENDOR_DIR");
    let out = PathBuf::from(std::env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    let mut code = String::new();
    for &(name, package, version, integrity, file) in PINNED {
        let spec = format!("{package}@{version}");
        match vendor(&out, package, version, integrity, file) {
            Ok((path, gz)) => {
                let gz = gz.map_or_else(|| "None".to_owned(), |gz| format!("Some(include_bytes!({:?}))", gz.display()));
                let _ = writeln!(
                    code,
                    "/// `{file}` of `{spec}`.\npub const {name}: Option<Asset> = Some(Asset {{ package: {spec:?}, \
                     bytes: include_bytes!({:?}), gzipped: {gz} }});",
                    path.display()
                );
            }
            Err(why) => {
                println!("cargo:warning=console: {spec} not vendored ({why}); the console will run without it");
                let _ = writeln!(
                    code,
                    "/// `{spec}` could not be fetched at build time.\npub const {name}: Option<Asset> = None;"
                );
            }
        }
    }
    std::fs::write(out.join("vendored.rs"), code).expect("write vendored.rs");
}

/// The unpacked file and its gzip, under `out`.
fn vendor(
    out: &Path,
    package: &str,
    version: &str,
    integrity: &str,
    file: &str,
) -> Result<(PathBuf, Option<PathBuf>), String> {
    let dir = out.join(format!("{package}-{version}"));
    std::fs::create_dir_all(&dir).map_err(|e| format!("creating {}: {e}", dir.display()))?;
    let tarball_name = format!("{}-{version}.tgz", package.trim_start_matches('@').replace('/', "-"));
    let tarball = match std::env::var_os("PATRON_CONSOLE_VENDOR_DIR") {
        Some(vendor_dir) => PathBuf::from(vendor_dir).join(&tarball_name),
        None => {
            let packed = Command::new("npm")
                .args(["pack", "--silent", "--prefer-offline", &format!("{package}@{version}"), "--pack-destination"])
                .arg(&dir)
                .output()
                .map_err(|e| format!("running npm: {e}"))?;
            if !packed.status.success() {
                return Err(format!("npm pack failed: {}", String::from_utf8_lossy(&packed.stderr).trim()));
            }
            dir.join(&tarball_name)
        }
    };
    let bytes = std::fs::read(&tarball).map_err(|e| format!("reading {}: {e}", tarball.display()))?;
    let actual = format!("sha512-{}", base64::engine::general_purpose::STANDARD.encode(Sha512::digest(&bytes)));
    if actual != integrity {
        return Err(format!("{} has integrity {actual}, expected {integrity}", tarball.display()));
    }
    let unpacked = Command::new("tar")
        .arg("-xzf")
        .arg(&tarball)
        .arg("-C")
        .arg(&dir)
        .arg(file)
        .status()
        .map_err(|e| format!("running tar: {e}"))?;
    if !unpacked.success() {
        return Err(format!("tar could not unpack {file}"));
    }
    let path = dir.join(file);
    let gz = dir.join(format!("{file}.gz"));
    let gzipped = std::fs::File::create(&gz)
        .ok()
        .and_then(|target| Command::new("gzip").arg("-9").arg("-c").arg(&path).stdout(target).status().ok())
        .is_some_and(|status| status.success());
    Ok((path, gzipped.then_some(gz)))
}
