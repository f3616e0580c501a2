//! The contract is plain component-model WIT: a plugin written in Python
//! (componentize-py, which `.ci/run` installs from PyPI) loads and answers like a Rust one.

use patron_runtime::testing::{profile, python_plugin_wasm};
use patron_runtime::{CallContext, Grants, Limits, Manifest, Runtime, RuntimeConfig, World};

#[test]
fn a_python_segmenter_loads_and_answers() {
    let wasm = python_plugin_wasm("python-segmenter", "segmenter").unwrap_or_else(|e| panic!("{e}"));
    let runtime = Runtime::new(RuntimeConfig::default()).expect("runtime");
    let info = runtime.inspect(&wasm).expect("inspect");
    assert_eq!(info.worlds, [World::Segmenter]);
    // componentize-py links every import of the world; grant what it asks for.
    let mut manifest = Manifest::new("python-segmenter", "0.1.0", World::Segmenter);
    manifest.imports = info.capabilities.clone();
    let plugin = runtime
        .load(&wasm, &manifest, &Grants::of(info.capabilities.iter().copied()))
        .unwrap_or_else(|e| panic!("{e}"));
    let limits =
        Limits { max_memory_bytes: 128 << 20, timeout: std::time::Duration::from_secs(10), ..Limits::default() };
    let out = plugin
        .segment(
            &CallContext::new("shop").with_limits(limits),
            &[profile("c", 12, 60_000, None), profile("c", 1, 100, None)],
        )
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(out, vec![vec!["big-spender".to_owned(), "loyal".into()], vec![]]);
}
