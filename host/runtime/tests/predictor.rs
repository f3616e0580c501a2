//! The `predictor` world (0.1.2) through wasm: the first-party `clv` plugin fits in
//! batches and predicts, giving what the same code gives natively; a bad model and a
//! shop too small to fit are the plugin's errors, not traps.

use std::time::Duration;

use patron_runtime::testing::plugin_wasm;
use patron_runtime::types::CustomerBatch;
use patron_runtime::{
    CallContext, Capability, ErrorKind, Grants, Limits, Manifest, Plugin, Runtime, RuntimeConfig, World,
};
use patron_sdk::PredictionBatch;
use patron_sdk::testing::TestHost;

const AS_OF: i64 = 730 * 86_400_000;

fn load() -> Plugin {
    let runtime = Runtime::new(RuntimeConfig::default()).expect("runtime");
    let wasm = plugin_wasm("clv").unwrap_or_else(|e| panic!("{e}"));
    let manifest = Manifest::new("clv", "0.1.0", World::Predictor).requesting(Capability::Config);
    runtime.load(&wasm, &manifest, &Grants::of([Capability::Config])).unwrap_or_else(|e| panic!("{e}"))
}

fn ctx() -> CallContext {
    CallContext::new("shop").with_config("{}").with_limits(Limits {
        timeout: Duration::from_secs(120),
        max_memory_bytes: 256 << 20,
        max_output_bytes: 64 << 20,
        ..Limits::default()
    })
}

fn wit(batch: &PredictionBatch) -> CustomerBatch {
    CustomerBatch {
        order_count: batch.order_count.clone(),
        total_spent: batch.total_spent.clone(),
        first_order_at: batch.first_order_at.clone(),
        last_order_at: batch.last_order_at.clone(),
    }
}

fn part(batch: &PredictionBatch, range: std::ops::Range<usize>) -> PredictionBatch {
    PredictionBatch {
        order_count: batch.order_count[range.clone()].to_vec(),
        total_spent: batch.total_spent[range.clone()].to_vec(),
        first_order_at: batch.first_order_at[range.clone()].to_vec(),
        last_order_at: batch.last_order_at[range].to_vec(),
    }
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-6 * a.abs().max(b.abs()).max(1e-9)
}

#[test]
fn clv_fits_in_batches_and_predicts_as_it_does_natively() {
    let plugin = load();
    assert_eq!(plugin.info().worlds, [World::Predictor]);
    assert!(plugin.info().exports.iter().any(|e| e == "patron:plugin/prediction@0.1.2"), "{:?}", plugin.info().exports);
    let shop = clv::simulate::shop(3, 20_000, AS_OF);
    let ctx = ctx();

    // Two batches through wasm.
    let state = plugin.fit(&ctx, None, &wit(&part(&shop, 0..12_000)), AS_OF, false).expect("first batch");
    let model = plugin.fit(&ctx, Some(&state), &wit(&part(&shop, 12_000..20_000)), AS_OF, true).expect("fit");
    let wasm_model = clv::model::Model::decode(&model).expect("a clv model");

    // The same code natively.
    let mut host = TestHost::new();
    let native = host
        .run(|| <clv::ClvPlugin as patron_sdk::Predictor>::fit(None, shop.clone(), AS_OF, true))
        .expect("native fit");
    let native_model = clv::model::Model::decode(&native).expect("a clv model");
    let (w, n) = (wasm_model.bgnbd.params, native_model.bgnbd.params);
    assert!(close(w.r, n.r) && close(w.alpha, n.alpha) && close(w.a, n.a) && close(w.b, n.b), "{w:?} vs {n:?}");

    let horizons = [30, 90, 365];
    let out = plugin.predict(&ctx, &model, &wit(&shop), AS_OF, &horizons).expect("predict");
    let native_out = host
        .run(|| {
            <clv::ClvPlugin as patron_sdk::Predictor>::predict(model.clone(), shop.clone(), AS_OF, horizons.to_vec())
        })
        .expect("native predict");
    assert_eq!(out.p_alive.len(), 20_000);
    assert_eq!(out.expected_purchases.len(), 60_000);
    for i in (0..20_000).step_by(97) {
        assert!(close(out.p_alive[i], native_out.p_alive[i]), "customer {i}");
        assert!(close(out.clv[i], native_out.clv[i]), "customer {i}");
        assert!(close(out.expected_purchases[3 * i + 2], native_out.expected_purchases[3 * i + 2]), "customer {i}");
    }
    let (names, ends, members) = native_out.segments.into_parts();
    assert_eq!((out.segment_names, out.segment_ends, out.segment_members), (names, ends, members));
}

#[test]
fn bad_models_and_tiny_shops_are_plugin_errors() {
    let plugin = load();
    let ctx = ctx();
    let tiny = part(&clv::simulate::shop(4, 5, AS_OF), 0..5);
    let err = plugin.fit(&ctx, None, &wit(&tiny), AS_OF, true).expect_err("too small");
    assert!(matches!(&err.kind, ErrorKind::Guest { code, .. } if code == "not-enough-data"), "{err}");
    let err = plugin.predict(&ctx, b"not a model", &wit(&tiny), AS_OF, &[30]).expect_err("bad model");
    assert!(matches!(&err.kind, ErrorKind::Guest { code, .. } if code == "bad-model"), "{err}");
    let err = plugin.fit(&ctx, Some(b"garbage"), &wit(&tiny), AS_OF, true).expect_err("bad state");
    assert!(matches!(&err.kind, ErrorKind::Guest { code, .. } if code == "bad-state"), "{err}");
}
