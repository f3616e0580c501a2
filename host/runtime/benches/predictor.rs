//! Fitting the `clv` predictor over 100,000 simulated customers through wasm (the
//! installed plugin, in batches of 50,000 as the host feeds it) vs the same code
//! compiled natively, timed in one sitting. Prints the median of a few runs each.
//!
//! `cargo bench -p patron-runtime --bench predictor`

use std::time::{Duration, Instant};

use patron_runtime::testing::plugin_wasm;
use patron_runtime::types::CustomerBatch;
use patron_runtime::{CallContext, Capability, Grants, Limits, Manifest, Runtime, RuntimeConfig, World};
use patron_sdk::testing::TestHost;
use patron_sdk::{PredictionBatch, Predictor};

const CUSTOMERS: usize = 100_000;
const BATCH: usize = 50_000;
const RUNS: usize = 5;
const AS_OF: i64 = 730 * 86_400_000;

fn median(mut times: Vec<Duration>) -> Duration {
    times.sort();
    times[times.len() / 2]
}

fn main() {
    let shop = clv::simulate::shop(42, CUSTOMERS, AS_OF);
    let runtime = Runtime::new(RuntimeConfig::default()).expect("runtime");
    let wasm = plugin_wasm("clv").expect("build clv");
    let manifest = Manifest::new("clv", "0.1.0", World::Predictor).requesting(Capability::Config);
    let plugin = runtime.load(&wasm, &manifest, &Grants::of([Capability::Config])).expect("load");
    let ctx = CallContext::new("bench").with_config("{}").with_limits(Limits {
        timeout: Duration::from_secs(600),
        max_memory_bytes: 256 << 20,
        max_output_bytes: 64 << 20,
        ..Limits::default()
    });
    let batches: Vec<CustomerBatch> = (0..CUSTOMERS)
        .step_by(BATCH)
        .map(|start| {
            let r = start..(start + BATCH).min(CUSTOMERS);
            CustomerBatch {
                order_count: shop.order_count[r.clone()].to_vec(),
                total_spent: shop.total_spent[r.clone()].to_vec(),
                first_order_at: shop.first_order_at[r.clone()].to_vec(),
                last_order_at: shop.last_order_at[r].to_vec(),
            }
        })
        .collect();

    let mut wasm_times = Vec::new();
    let mut native_times = Vec::new();
    let mut host = TestHost::new();
    for _ in 0..RUNS {
        let started = Instant::now();
        let mut state: Option<Vec<u8>> = None;
        for (i, batch) in batches.iter().enumerate() {
            let last = i + 1 == batches.len();
            state = Some(plugin.fit(&ctx, state.as_deref(), batch, AS_OF, last).expect("wasm fit"));
        }
        wasm_times.push(started.elapsed());

        let started = Instant::now();
        let mut state: Option<Vec<u8>> = None;
        for start in (0..CUSTOMERS).step_by(BATCH) {
            let r = start..(start + BATCH).min(CUSTOMERS);
            let batch = PredictionBatch {
                order_count: shop.order_count[r.clone()].to_vec(),
                total_spent: shop.total_spent[r.clone()].to_vec(),
                first_order_at: shop.first_order_at[r.clone()].to_vec(),
                last_order_at: shop.last_order_at[r.clone()].to_vec(),
            };
            let last = r.end == CUSTOMERS;
            let previous = state.take();
            state = Some(host.run(|| clv::ClvPlugin::fit(previous, batch, AS_OF, last)).expect("native fit"));
        }
        native_times.push(started.elapsed());
    }
    let (w, n) = (median(wasm_times), median(native_times));
    println!(
        "clv fit, {CUSTOMERS} customers in batches of {BATCH}: wasm {:.3} s, native {:.3} s, ratio {:.2} (median of {RUNS})",
        w.as_secs_f64(),
        n.as_secs_f64(),
        w.as_secs_f64() / n.as_secs_f64()
    );
}
