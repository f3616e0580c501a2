//! The sandbox against real plugins, built from source by this test process.

use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use patron_runtime::testing::{plugin_wasm, profile};
use patron_runtime::types::Profile;
use patron_runtime::{
    CallContext, Capability, CircuitBreaker, ErrorKind, Grants, Limits, LoadError, Manifest, MemoryKv, Plugin, Runtime,
    RuntimeConfig, World,
};

fn runtime() -> &'static Runtime {
    static RUNTIME: OnceLock<Runtime> = OnceLock::new();
    RUNTIME.get_or_init(|| Runtime::new(RuntimeConfig::default()).expect("runtime"))
}

fn wasm(package: &str) -> Vec<u8> {
    plugin_wasm(package).unwrap_or_else(|e| panic!("{e}"))
}

fn load(package: &str, imports: &[Capability]) -> Plugin {
    let mut manifest = Manifest::new(package, "0.1.0", World::Segmenter);
    manifest.imports = imports.to_vec();
    runtime().load(&wasm(package), &manifest, &Grants::of(imports.iter().copied())).unwrap_or_else(|e| panic!("{e}"))
}

fn ctx() -> CallContext {
    CallContext::new("shop-1").with_config(r#"{"vip-spend": 5000, "lapsed-days": 30}"#)
}

/// A normal call on the example segmenter, answered right.
fn assert_normal_call_works() {
    let example = load("segment-example", &[Capability::Config]);
    let out =
        example.segment(&ctx(), &[profile("a", 3, 9000, Some(40)), profile("b", 0, 0, None)]).expect("example answers");
    assert_eq!(out, vec![vec!["vip".to_owned(), "lapsed".into()], vec!["prospect".to_owned()]]);
}

fn hostile(package: &str, limits: Limits) -> ErrorKind {
    let plugin = load(package, &[]);
    let err = plugin
        .segment(&CallContext::new("shop-1").with_limits(limits), &[profile("a", 1, 1, None)])
        .expect_err("hostile plugin must fail");
    assert_eq!(err.plugin, format!("{package}@0.1.0"), "{err}");
    assert_eq!(err.function, "segment");
    err.kind
}

#[test]
fn example_segmenter_answers() {
    assert_normal_call_works();
}

#[test]
fn hostile_plugins_are_contained_and_the_host_answers_on() {
    let quick = Limits { timeout: Duration::from_millis(200), ..Limits::default() };

    let started = Instant::now();
    let kind = hostile("hostile-loop", quick.clone());
    assert_eq!(kind, ErrorKind::Timeout(Duration::from_millis(200)));
    assert!(started.elapsed() < Duration::from_secs(3), "took {:?}", started.elapsed());
    assert_normal_call_works();

    let kind = hostile("hostile-memory", quick.clone());
    assert_eq!(kind, ErrorKind::MemoryLimit { limit: 64 << 20 });
    assert_normal_call_works();

    assert_eq!(hostile("hostile-recursion", quick.clone()), ErrorKind::StackOverflow);
    assert_normal_call_works();

    let kind = hostile("hostile-output", quick.clone());
    assert!(matches!(kind, ErrorKind::OutputTooLarge { size, limit } if size > limit && limit == 4 << 20), "{kind:?}");
    assert_normal_call_works();

    let kind = hostile("hostile-trap", quick.clone());
    assert!(matches!(&kind, ErrorKind::Trap(m) if m.contains("unreachable")), "{kind:?}");
    assert_normal_call_works();

    let kind = hostile("hostile-panic", quick.clone());
    assert!(matches!(&kind, ErrorKind::Panic(m) if m.contains("hostile-panic refuses 1 profiles")), "{kind:?}");
    assert_normal_call_works();

    // The filesystem is not linked (a stub): the attempt fails the call. (Before
    // filesystem imports were stubs, the read failed inside the guest instead.)
    let kind = hostile("hostile-file", quick.clone());
    assert!(
        matches!(&kind, ErrorKind::Denied(m) if m.contains("wasi:filesystem/") && m.contains("hostile-file@0.1.0")),
        "{kind:?}"
    );
    assert_normal_call_works();

    // The network is not linked either: the attempt fails the call.
    let kind = hostile("hostile-socket", quick.clone());
    assert!(matches!(&kind, ErrorKind::Denied(m) if m.contains("network access")), "{kind:?}");
    assert_normal_call_works();

    // Waiting in a host call (a one-hour sleep on the monotonic clock) ends at the limit.
    let started = Instant::now();
    assert_eq!(hostile("hostile-sleep", quick.clone()), ErrorKind::Timeout(Duration::from_millis(200)));
    assert!(started.elapsed() < Duration::from_secs(3), "took {:?}", started.elapsed());
    assert_normal_call_works();

    // The environment and arguments are empty.
    let env = load("hostile-env", &[]);
    let seen = env.segment(&CallContext::new("shop-1"), &[profile("a", 0, 0, None)]).expect("env answers");
    assert_eq!(seen, vec![Vec::<String>::new()]);
    assert_normal_call_works();
}

#[test]
fn a_warm_instance_serves_many_calls_and_is_poisoned_by_a_trap() {
    let example = load("segment-example", &[Capability::Config]);
    let mut warm = example.instantiate(ctx()).expect("instantiate");
    for _ in 0..100 {
        assert_eq!(warm.segment(&[profile("a", 1, 0, None)]).expect("call"), vec![vec!["new".to_owned()]]);
    }
    let trap = load("hostile-trap", &[]);
    let mut warm = trap.instantiate(CallContext::new("s")).expect("instantiate");
    assert!(matches!(warm.segment(&[]).map_err(|e| e.kind), Err(ErrorKind::Trap(_))));
    assert_eq!(warm.segment(&[]).map_err(|e| e.kind), Err(ErrorKind::Poisoned));
}

/// Several sleepers at once, each holding its thread in a host call: every one ends at
/// its limit, and a normal call made meanwhile answers at once.
#[test]
fn sleepers_in_host_calls_end_at_their_limit_and_others_answer_meanwhile() {
    let sleeper = load("hostile-sleep", &[]);
    let limit = Duration::from_millis(500);
    let started = Instant::now();
    let sleepers: Vec<_> = (0..4)
        .map(|i| {
            let sleeper = sleeper.clone();
            let ctx = CallContext::new(format!("shop-{i}")).with_limits(Limits { timeout: limit, ..Limits::default() });
            std::thread::spawn(move || sleeper.segment(&ctx, &[profile("a", 0, 0, None)]).map_err(|e| e.kind))
        })
        .collect();
    let normal = Instant::now();
    assert_normal_call_works();
    assert!(normal.elapsed() < limit, "a normal call waited for the sleepers: {:?}", normal.elapsed());
    for sleeper in sleepers {
        assert_eq!(sleeper.join().expect("thread"), Err(ErrorKind::Timeout(limit)));
    }
    assert!(started.elapsed() < Duration::from_secs(3), "took {:?}", started.elapsed());
}

/// Behaviour changed deliberately: a component importing a capability it was not
/// granted (or that its manifest does not request) used to be refused at load; it now
/// loads with a stub there, and only a call that uses the capability fails, naming it.
#[test]
fn ungranted_imports_are_stubs_that_fail_the_call_by_name() {
    let bytes = wasm("wants-kv");
    let stored = |plugin: &Plugin| {
        let ctx = CallContext::new("shop-1").with_kv(Arc::new(MemoryKv::new()));
        let traits = r#"{"bytes": 3}"#.to_owned();
        plugin.segment(&ctx, &[Profile { traits, ..profile("a", 0, 0, None) }])
    };
    let denied = |plugin: &Plugin| {
        let err = stored(plugin).expect_err("kv is a stub");
        assert!(matches!(&err.kind, ErrorKind::Denied(_)), "{err}");
        err.to_string()
    };

    // Requested but not granted.
    let manifest = Manifest::new("wants-kv", "0.1.0", World::Segmenter).requesting(Capability::Kv);
    let plugin = runtime().load(&bytes, &manifest, &Grants::none()).expect("loads with a stub");
    let message = denied(&plugin);
    assert!(message.contains("capability `kv` not granted to plugin wants-kv@0.1.0"), "{message}");

    // Granted, but the manifest does not request it.
    let manifest = Manifest::new("wants-kv", "0.1.0", World::Segmenter);
    let plugin = runtime().load(&bytes, &manifest, &Grants::none().with(Capability::Kv)).expect("loads with a stub");
    assert!(denied(&plugin).contains("capability `kv` not granted"));

    // A call that does not touch kv works; after one that did, the instance is
    // poisoned like after any trap.
    let mut warm = plugin.instantiate(CallContext::new("shop-1")).expect("instantiate");
    assert_eq!(warm.segment(&[]).expect("no kv used"), Vec::<Vec<String>>::new());
    assert!(matches!(warm.segment(&[profile("a", 0, 0, None)]).map_err(|e| e.kind), Err(ErrorKind::Denied(_))));
    assert_eq!(warm.segment(&[]).map_err(|e| e.kind), Err(ErrorKind::Poisoned));

    // Requested and granted: works.
    let manifest = manifest.requesting(Capability::Kv);
    let plugin = runtime().load(&bytes, &manifest, &Grants::none().with(Capability::Kv)).expect("granted");
    assert_eq!(stored(&plugin).expect("stored"), vec![vec!["stored".to_owned()]]);
}

#[test]
fn a_component_implementing_no_world_is_refused_naming_what_it_found() {
    let manifest = Manifest::new("no-world", "0.1.0", World::Segmenter);
    let err = runtime().load(&wasm("no-world"), &manifest, &Grants::none()).expect_err("no world");
    assert!(matches!(err, LoadError::NoWorld { .. }), "{err}");
    let message = err.to_string();
    assert!(message.contains("no-world@0.1.0"), "{message}");
    assert!(message.contains("wasi:cli/run"), "{message}");

    // And a segmenter declared as a loyalty plugin is refused too.
    let manifest = Manifest::new("segment-example", "0.1.0", World::Loyalty).requesting(Capability::Config);
    let err = runtime()
        .load(&wasm("segment-example"), &manifest, &Grants::of([Capability::Config]))
        .expect_err("wrong world");
    assert!(err.to_string().contains("implements: segmenter"), "{err}");

    let info = runtime().inspect(&wasm("segment-example")).expect("inspect");
    assert_eq!(info.worlds, [World::Segmenter]);
    assert_eq!(info.capabilities, [Capability::Config]);
}

#[test]
fn kv_quota_is_enforced() {
    let plugin = load("wants-kv", &[Capability::Kv]);
    let kv = Arc::new(MemoryKv::new());
    let limits = Limits { kv_quota_bytes: 100, ..Limits::default() };
    let ctx = CallContext::new("shop-1").with_kv(kv.clone()).with_limits(limits);
    let with_bytes = |id: &str, n: u32| Profile { traits: format!(r#"{{"bytes": {n}}}"#), ..profile(id, 0, 0, None) };
    assert_eq!(plugin.segment(&ctx, &[with_bytes("a", 60)]).expect("fits"), vec![vec!["stored".to_owned()]]);
    // Replacing a value counts only the new size.
    plugin.segment(&ctx, &[with_bytes("a", 90)]).expect("replacement fits");
    let err = plugin.segment(&ctx, &[with_bytes("b", 20)]).expect_err("over quota");
    assert!(
        matches!(&err.kind, ErrorKind::Guest { code, message } if code == "kv" && message.contains("quota of 100 bytes")),
        "{err}"
    );
    assert_eq!(patron_runtime::KvStore::used_bytes(&*kv).expect("used"), 91);
}

#[test]
fn output_size_cap_is_configurable() {
    let example = load("segment-example", &[Capability::Config]);
    let profiles: Vec<Profile> = (0..1000).map(|i| profile(&i.to_string(), 0, 0, None)).collect();
    let tight = Limits { max_output_bytes: 1000, ..Limits::default() };
    let err = example.segment(&ctx().with_limits(tight), &profiles).expect_err("too large");
    assert!(matches!(err.kind, ErrorKind::OutputTooLarge { limit: 1000, .. }), "{err}");
    example.segment(&ctx(), &profiles).expect("default cap");
}

#[test]
fn the_circuit_breaker_opens_on_a_plugin_that_keeps_failing() {
    let plugin = load("hostile-trap", &[]);
    let breaker = CircuitBreaker::new(3, None);
    let mut calls = 0;
    while breaker.check().is_ok() {
        calls += 1;
        breaker.record(&plugin.segment(&CallContext::new("s"), &[]));
        assert!(calls <= 3, "breaker never opened");
    }
    assert_eq!(calls, 3);
    let open = breaker.check().expect_err("open");
    assert!(open.last_error.contains("hostile-trap@0.1.0"), "{open}");
}

#[test]
fn compiled_components_are_cached_on_disk() {
    let dir = std::env::temp_dir().join(format!("patron-cache-test-{}", std::process::id()));
    let config = RuntimeConfig { cache_dir: Some(dir.clone()), ..RuntimeConfig::default() };
    let manifest = Manifest::new("segment-example", "0.1.0", World::Segmenter).requesting(Capability::Config);
    let grants = Grants::of([Capability::Config]);
    let bytes = wasm("segment-example");
    {
        let first = Runtime::new(config.clone()).expect("runtime");
        first.load(&bytes, &manifest, &grants).expect("compile");
    }
    let cached: Vec<_> = std::fs::read_dir(&dir).expect("cache dir").collect();
    assert_eq!(cached.len(), 1, "one artifact");
    // A second runtime (a restart) loads from the artifact and still works.
    let second = Runtime::new(config).expect("runtime");
    let started = Instant::now();
    let plugin = second.load(&bytes, &manifest, &grants).expect("from cache");
    let elapsed = started.elapsed();
    assert!(plugin.segment(&ctx(), &[profile("a", 0, 0, None)]).is_ok());
    let _ = std::fs::remove_dir_all(&dir);
    assert!(elapsed < Duration::from_secs(2), "cached load took {elapsed:?}");
}

#[test]
fn a_plugin_built_without_the_sdk_loads_and_answers() {
    let plugin = load("raw-segmenter", &[]);
    let mut with_email = profile("a", 0, 0, None);
    with_email.email = Some("a@example.com".into());
    let out = plugin
        .segment(&CallContext::new("shop-1"), &[with_email, profile("b", 0, 0, None)])
        .expect("raw plugin answers");
    assert_eq!(out, vec![vec!["has-email".to_owned()], vec![]]);
}
