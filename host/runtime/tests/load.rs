//! Load is not a plugin failure: a full instance pool, or a shop's full share of it,
//! refuses calls as `overloaded` without counting against the plugin's breaker.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use patron_runtime::testing::{plugin_wasm, profile};
use patron_runtime::{
    BreakerState, CallContext, Capability, CircuitBreaker, ErrorKind, Grants, Manifest, Plugin, Runtime, RuntimeConfig,
    World,
};

fn example(runtime: &Runtime) -> Plugin {
    let wasm = plugin_wasm("segment-example").unwrap_or_else(|e| panic!("{e}"));
    let manifest = Manifest::new("segment-example", "0.1.0", World::Segmenter).requesting(Capability::Config);
    runtime.load(&wasm, &manifest, &Grants::of([Capability::Config])).unwrap_or_else(|e| panic!("{e}"))
}

fn ctx(shop: &str) -> CallContext {
    CallContext::new(shop).with_config(r#"{"vip-spend": 5000, "lapsed-days": 30}"#)
}

#[test]
fn parallel_calls_past_the_pool_do_not_trip_the_breaker() {
    let runtime = Runtime::new(RuntimeConfig { max_instances: 4, ..RuntimeConfig::default() }).expect("runtime");
    let plugin = example(&runtime);
    let breaker = Arc::new(CircuitBreaker::new(3, Some(Duration::from_secs(60))));

    // Four shops hold every slot of the pool: every further call is refused as load.
    let held: Vec<_> = (0..4).map(|i| plugin.instantiate(ctx(&format!("holder-{i}"))).expect("slot")).collect();
    let (ok, overloaded) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let threads: Vec<_> = (0..16)
        .map(|t| {
            let (plugin, breaker, ok, overloaded) = (plugin.clone(), breaker.clone(), ok.clone(), overloaded.clone());
            std::thread::spawn(move || {
                for _ in 0..25 {
                    breaker.check().expect("the breaker stays closed");
                    let outcome = plugin.segment(&ctx(&format!("anonymous-{t}")), &[profile("a", 1, 0, None)]);
                    match &outcome {
                        Ok(_) => ok.fetch_add(1, Ordering::Relaxed),
                        Err(e) if matches!(e.kind, ErrorKind::Overloaded(_)) => {
                            overloaded.fetch_add(1, Ordering::Relaxed)
                        }
                        Err(e) => panic!("unexpected failure: {e}"),
                    };
                    breaker.record(&outcome);
                }
            })
        })
        .collect();
    for thread in threads {
        thread.join().expect("caller");
    }
    assert_eq!((ok.load(Ordering::Relaxed), overloaded.load(Ordering::Relaxed)), (0, 400), "all 400 refused as load");
    assert_eq!(breaker.state(), BreakerState::Closed { consecutive_failures: 0 });

    // Slots free again: calls go through, here too from many threads at once.
    drop(held);
    let threads: Vec<_> = (0..16)
        .map(|t| {
            let plugin = plugin.clone();
            std::thread::spawn(move || {
                (0..25)
                    .map(|_| plugin.segment(&ctx(&format!("anonymous-{t}")), &[profile("a", 1, 0, None)]))
                    .filter(|o| o.is_ok())
                    .count()
            })
        })
        .collect();
    let answered: usize = threads.into_iter().map(|t| t.join().expect("caller")).sum();
    assert!(answered > 0, "nothing answered once the pool was free");
    assert_eq!(
        plugin.segment(&ctx("after"), &[profile("a", 1, 0, None)]).expect("free pool"),
        vec![vec!["new".to_owned()]]
    );
}

#[test]
fn one_shop_cannot_take_every_slot() {
    let config = RuntimeConfig { max_instances: 8, max_instances_per_shop: 3, ..RuntimeConfig::default() };
    let runtime = Runtime::new(config).expect("runtime");
    let plugin = example(&runtime);
    let held: Vec<_> = (0..3).map(|_| plugin.instantiate(ctx("greedy")).expect("within quota")).collect();
    let err = plugin.instantiate(ctx("greedy")).expect_err("over quota");
    assert!(matches!(&err.kind, ErrorKind::Overloaded(m) if m.contains("greedy")), "{err}");
    assert!(!err.kind.is_plugin_fault());
    // Another shop still gets instances.
    assert_eq!(
        plugin.segment(&ctx("other"), &[profile("a", 1, 0, None)]).expect("other shop"),
        vec![vec!["new".to_owned()]]
    );
    drop(held);
    plugin.instantiate(ctx("greedy")).expect("slots released with the instances");
}
