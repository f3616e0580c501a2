//! The contract is plain component-model WIT: a plugin written in Python
//! (componentize-py, which `.ci/run` installs from PyPI) loads and answers like a Rust one.

use patron_runtime::testing::{profile, python_plugin_wasm};
use patron_runtime::{CallContext, Capability, Grants, Limits, Manifest, Runtime, RuntimeConfig, World};

#[test]
fn a_python_segmenter_loads_and_answers() {
    let wasm = python_plugin_wasm("python-segmenter", "segmenter").unwrap_or_else(|e| panic!("{e}"));
    let runtime = Runtime::new(RuntimeConfig::default()).expect("runtime");
    let info = runtime.inspect(&wasm).expect("inspect");
    assert_eq!(info.worlds, [World::Segmenter]);
    // componentize-py imports every interface of the world (config, clock, kv, log);
    // granted `config` alone, the others are stubs it never calls, and it loads.
    assert!(info.capabilities.len() > 1, "{:?}", info.capabilities);
    let manifest = Manifest::new("python-segmenter", "0.1.0", World::Segmenter).requesting(Capability::Config);
    let plugin = runtime.load(&wasm, &manifest, &Grants::of([Capability::Config])).unwrap_or_else(|e| panic!("{e}"));
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
