//! Plugin runtime benchmarks: instantiate-and-call, warm call, and batch
//! segmentation of 1,000,000 profiles through wasm (the 0.1.0 `segment` call and
//! the 0.1.1 `segment-stats` fast path) vs the same logic natively.
//!
//! `cargo bench -p patron-runtime --bench runtime` (builds the example
//! segmenter for wasm32-wasip2 first, via `patron_runtime::testing`).

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use patron_runtime::testing::{self, plugin_wasm};
use patron_runtime::types::Profile;
use patron_runtime::{
    CallContext, Capability, Grants, Instance, Limits, Manifest, Memberships, Plugin, Runtime, RuntimeConfig, World,
    stats_batch,
};
use patron_sdk::StatsSegmenter;
use patron_sdk::testing::TestHost;

const BATCH: usize = 1_000_000;
const CHUNK: usize = 10_000;

fn plugin() -> Plugin {
    let runtime = Runtime::new(RuntimeConfig::default()).expect("runtime");
    let wasm = plugin_wasm("segment-example").expect("build segment-example");
    let manifest = Manifest::new("segment-example", "0.1.0", World::Segmenter).requesting(Capability::Config);
    runtime.load(&wasm, &manifest, &Grants::of([Capability::Config])).expect("load")
}

/// Deterministic profiles spread over every segment.
fn profile(i: usize) -> Profile {
    let orders = (i % 7) as u32;
    let days = (orders > 0).then_some((i % 200) as u32);
    testing::profile(&format!("cust-{i:07}"), orders, (i as i64 * 7919) % 250_000, days)
}

/// The plugin's `segment_stats` compiled natively, from the host's profiles to the
/// host's answer, as `segment_batch` goes from one to the other through wasm: the
/// same statistics columns in (`stats_batch`), the same `Memberships` out.
fn native_batch(host: &mut TestHost, profiles: &[Profile]) -> Memberships {
    let stats = stats_batch(profiles);
    let mut out = Memberships::with_capacity(stats.len());
    host.run(|| segment_example::Example::segment_stats(&stats, &mut out)).expect("native");
    out
}

/// The strictest native baseline: the plugin's rules (`classify`) over plain
/// `CustomerStats` records, with no columns built at all (the plugin's own
/// `segment_stats` takes the SDK's columns, which cost the host something to build).
fn native_records(profiles: &[Profile]) -> Memberships {
    let config = segment_example::Config::default();
    let mut out = Memberships::with_capacity(profiles.len());
    let segments = segment_example::SEGMENTS.map(|name| out.segment(name));
    let records: Vec<patron_sdk::CustomerStats> = profiles.iter().map(|p| (&p.stats).into()).collect();
    for s in &records {
        out.push_segments(segment_example::classify(&config, s, segments));
    }
    out
}

fn small(c: &mut Criterion) {
    let plugin = plugin();
    let ctx = CallContext::new("bench");
    let one = [profile(3)];

    c.bench_function("segmenter/instantiate_and_call", |b| {
        b.iter(|| black_box(plugin.segment(&ctx, black_box(&one)).expect("call")))
    });

    let mut warm = plugin.instantiate(ctx.clone()).expect("instantiate");
    c.bench_function("segmenter/warm_call", |b| b.iter(|| black_box(warm.segment(black_box(&one)).expect("call"))));

    c.bench_function("segmenter/instantiate_only", |b| {
        b.iter(|| drop(black_box(plugin.instantiate(ctx.clone()).expect("instantiate"))))
    });
}

fn batch(c: &mut Criterion) {
    let plugin = plugin();
    let limits =
        Limits { timeout: std::time::Duration::from_secs(10), max_output_bytes: 64 << 20, ..Limits::default() };
    let ctx = CallContext::new("bench").with_limits(limits);
    let profiles: Vec<Profile> = (0..BATCH).map(profile).collect();

    // The four ways give the same memberships, checked once before timing.
    let mut warm = plugin.instantiate(ctx.clone()).expect("instantiate");
    let first = &profiles[..CHUNK];
    let stats_path = warm.segment_batch(first).expect("segment-stats");
    let profile_path = Memberships::from_lists(warm.segment(first).expect("segment"));
    let native = native_batch(&mut TestHost::new(), first);
    assert_eq!(stats_path.to_lists(), profile_path.to_lists());
    assert_eq!(stats_path.to_lists(), native.to_lists());
    assert_eq!(stats_path.to_lists(), native_records(first).to_lists());
    assert!(plugin.info().stats_segmentation);

    let mut group = c.benchmark_group("segment_1m");
    group.sample_size(10);
    // One warm instance for the whole job, 10,000 profiles per call, as batch recompute does.
    let run = |path: &dyn Fn(&mut Instance, &[Profile]) -> Memberships| {
        let mut instance = plugin.instantiate(ctx.clone()).expect("instantiate");
        let mut answered = 0usize;
        for chunk in profiles.chunks(CHUNK) {
            answered += path(&mut instance, chunk).len();
        }
        black_box(answered)
    };
    group.bench_function("wasm_profiles", |b| {
        b.iter(|| run(&|i, chunk| Memberships::from_lists(i.segment(chunk).expect("segment"))))
    });
    group.bench_function("wasm_stats", |b| b.iter(|| run(&|i, chunk| i.segment_batch(chunk).expect("segment-stats"))));
    group.bench_function("native", |b| {
        b.iter(|| {
            let mut host = TestHost::new();
            let mut answered = 0usize;
            for chunk in profiles.chunks(CHUNK) {
                answered += native_batch(&mut host, chunk).len();
            }
            black_box(answered)
        })
    });
    group.bench_function("native_records", |b| {
        b.iter(|| black_box(profiles.chunks(CHUNK).map(|chunk| native_records(chunk).len()).sum::<usize>()))
    });
    group.finish();
}

criterion_group!(benches, small, batch);
criterion_main!(benches);
