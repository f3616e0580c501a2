//! The console's vendored browser libraries, embedded in the binary so the console works
//! offline and behind a firewall (no CDN).
//!
//! `build.rs` fetches each pinned npm tarball with `npm pack`, checks it against the
//! sha512 integrity pinned below, and unpacks the one file the console serves. When it
//! cannot (no npm, no registry), the asset is `None` and the console says that charts
//! are unavailable instead of failing to build.

/// One vendored file.
#[derive(Debug, Clone, Copy)]
pub struct Asset {
    /// The npm package and version it came from, e.g. `echarts@6.1.0`.
    pub package: &'static str,
    /// The file's bytes.
    pub bytes: &'static [u8],
    /// The same, gzip-compressed, when `gzip` was available at build time.
    pub gzipped: Option<&'static [u8]>,
}

include!(concat!(env!("OUT_DIR"), "/vendored.rs"));
