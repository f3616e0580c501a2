//! Plugin runtime benchmarks: instantiate-and-call, warm call, and batch
//! segmentation of 1,000,000 profiles through wasm vs the same logic natively.
//!
//! `cargo bench -p patron-runtime --bench runtime` (builds the example
//! segmenter for wasm32-wasip2 first, via `patron_runtime::testing`).

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use patron_runtime::testing::plugin_wasm;
use patron_runtime::types::{CustomerStats, Profile};
use patron_runtime::{CallContext, Capability, Grants, Limits, Manifest, Plugin, Runtime, RuntimeConfig, World};

const BATCH: usize = 1_000_000;
const CHUNK: usize = 10_000;

fn plugin() -> Plugin {
    let runtime = Runtime::new(RuntimeConfig::default()).expect("runtime");
    let wasm = plugin_wasm("segment-example").expect("build segment-example");
    let manifest = Manifest::new("segment-example", "0.1.0", World::Segmenter).requesting(Capability::Config);
    runtime
        .load(&wasm, &manifest, &Grants::of([Capability::Config]))
        .expect("load")
}

/// Deterministic profiles spread over every segment.
fn profile(i: usize) -> Profile {
    let orders = (i % 7) as u32;
    Profile {
        id: format!("cust-{i:07}"),
        external_id: None,
        email: None,
        traits: "{}".into(),
        stats: CustomerStats {
            order_count: orders,
            total_spent: (i as i64 * 7919) % 250_000,
            average_order_value: 0,
            first_order_at: None,
            last_order_at: None,
            days_since_last_order: (orders > 0).then_some((i % 200) as u32),
        },
        tags: vec![],
        segments: vec![],
    }
}

fn to_sdk(p: &Profile) -> patron_sdk::Profile {
    patron_sdk::Profile {
        id: p.id.clone(),
        external_id: p.external_id.clone(),
        email: p.email.clone(),
        traits: p.traits.clone(),
        stats: patron_sdk::CustomerStats {
            order_count: p.stats.order_count,
            total_spent: p.stats.total_spent,
            average_order_value: p.stats.average_order_value,
            first_order_at: p.stats.first_order_at,
            last_order_at: p.stats.last_order_at,
            days_since_last_order: p.stats.days_since_last_order,
        },
        tags: p.tags.clone(),
        segments: p.segments.clone(),
    }
}

fn small(c: &mut Criterion) {
    let plugin = plugin();
    let ctx = CallContext::new("bench");
    let one = [profile(3)];

    c.bench_function("segmenter/instantiate_and_call", |b| {
        b.iter(|| black_box(plugin.segment(&ctx, black_box(&one)).expect("call")))
    });

    let mut warm = plugin.instantiate(ctx.clone()).expect("instantiate");
    c.bench_function("segmenter/warm_call", |b| {
        b.iter(|| black_box(warm.segment(black_box(&one)).expect("call")))
    });

    c.bench_function("segmenter/instantiate_only", |b| {
        b.iter(|| drop(black_box(plugin.instantiate(ctx.clone()).expect("instantiate"))))
    });
}

fn batch(c: &mut Criterion) {
    let plugin = plugin();
    let limits = Limits {
        timeout: std::time::Duration::from_secs(10),
        max_output_bytes: 64 << 20,
        ..Limits::default()
    };
    let ctx = CallContext::new("bench").with_limits(limits);
    let profiles: Vec<Profile> = (0..BATCH).map(profile).collect();
    let native_profiles: Vec<patron_sdk::Profile> = profiles.iter().map(to_sdk).collect();
    let config = segment_example::Config::default();

    // Same answers both ways, checked once before timing.
    let mut warm = plugin.instantiate(ctx.clone()).expect("instantiate");
    let wasm_first = warm.segment(&profiles[..CHUNK]).expect("wasm");
    let native_first: Vec<Vec<String>> = native_profiles[..CHUNK]
        .iter()
        .map(|p| segment_example::classify(&config, p))
        .collect();
    assert_eq!(wasm_first, native_first);

    let mut group = c.benchmark_group("segment_1m");
    group.sample_size(10);
    group.bench_function("wasm", |b| {
        b.iter(|| {
            // One warm instance for the whole job, 10,000 profiles per call.
            let mut instance = plugin.instantiate(ctx.clone()).expect("instantiate");
            let mut tagged = 0usize;
            for chunk in profiles.chunks(CHUNK) {
                tagged += instance.segment(chunk).expect("segment").len();
            }
            black_box(tagged)
        })
    });
    group.bench_function("native", |b| {
        b.iter(|| {
            let mut tagged = 0usize;
            for chunk in native_profiles.chunks(CHUNK) {
                let out: Vec<Vec<String>> = chunk.iter().map(|p| segment_example::classify(&config, p)).collect();
                tagged += black_box(out).len();
            }
            black_box(tagged)
        })
    });
    group.finish();
}

criterion_group!(benches, small, batch);
criterion_main!(benches);
