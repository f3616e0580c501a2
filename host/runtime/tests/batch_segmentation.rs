//! Batch segmentation: the 0.1.1 stats-only path (`segment-stats`) and the 0.1.0
//! `segment` path give the same memberships; components built against 0.1.0 take
//! the `segment` path.

use patron_runtime::testing::{self, plugin_wasm};
use patron_runtime::types::Profile;
use patron_runtime::{CallContext, Capability, Grants, Manifest, Memberships, Plugin, Runtime, RuntimeConfig, World};

fn load(package: &str, imports: &[Capability]) -> Plugin {
    let runtime = Runtime::new(RuntimeConfig::default()).expect("runtime");
    let wasm = plugin_wasm(package).unwrap_or_else(|e| panic!("{e}"));
    let mut manifest = Manifest::new(package, "1.0.0", World::Segmenter);
    manifest.imports = imports.to_vec();
    runtime.load(&wasm, &manifest, &Grants::of(imports.iter().copied())).unwrap_or_else(|e| panic!("{e}"))
}

/// Customers spread over every segment of the example (and over none).
fn profile(i: u32) -> Profile {
    let orders = i % 5;
    Profile {
        email: i.is_multiple_of(3).then(|| format!("c{i}@example.com")),
        tags: if i.is_multiple_of(4) { vec!["gift".into()] } else { vec![] },
        ..testing::profile(&format!("c{i}"), orders, i64::from(i * 37 % 9_000), (orders > 0).then_some(i % 60))
    }
}

fn exports(plugin: &Plugin) -> Vec<&str> {
    // Sorted: the order a component lists its exports in is the linker's, not meaningful.
    let mut exports: Vec<&str> =
        plugin.info().exports.iter().map(String::as_str).filter(|e| e.starts_with("patron:")).collect();
    exports.sort_unstable();
    exports
}

#[test]
fn the_stats_path_and_the_profile_path_give_the_same_memberships() {
    let plugin = load("segment-example", &[Capability::Config]);
    assert_eq!(exports(&plugin), ["patron:plugin/segmentation@0.1.2", "patron:plugin/stats-segmentation@0.1.2"]);
    assert_eq!(plugin.info().worlds, [World::Segmenter]);
    assert!(plugin.info().stats_segmentation);

    let ctx = CallContext::new("shop").with_config(r#"{"vip-spend": 5000, "lapsed-days": 30}"#);
    let profiles: Vec<Profile> = (0..2_000).map(profile).collect();
    let mut instance = plugin.instantiate(ctx).expect("instantiate");
    let stats_path = instance.segment_batch(&profiles).expect("segment-stats");
    let profile_path = Memberships::from_lists(instance.segment(&profiles).expect("segment"));
    assert_eq!(stats_path.to_lists(), profile_path.to_lists());

    assert_eq!(stats_path.len(), profiles.len());
    // c136: 1 order, 5032 spent, 16 days ago; c0: no order; c1: 1 order, 37 spent, 1 day ago.
    assert_eq!(stats_path.segments(136).collect::<Vec<_>>(), ["new", "vip"]);
    assert_eq!(stats_path.segments(0).collect::<Vec<_>>(), ["prospect"]);
    assert_eq!(stats_path.segments(1).collect::<Vec<_>>(), ["new"]);
    for segment in ["prospect", "new", "vip", "lapsed"] {
        let members = (0..stats_path.len()).filter(|&i| stats_path.segments(i).any(|s| s == segment)).count();
        assert!(members > 100, "{segment}: {members} members");
    }
    assert!(instance.segment_batch(&[]).expect("empty batch").is_empty());
}

#[test]
fn a_component_built_against_0_1_0_loads_and_takes_the_profile_path() {
    let plugin = load("raw-segmenter", &[]);
    assert_eq!(exports(&plugin), ["patron:plugin/segmentation@0.1.0"]);
    assert_eq!(plugin.info().worlds, [World::Segmenter]);
    assert!(!plugin.info().stats_segmentation);

    let profiles: Vec<Profile> = (0..5).map(profile).collect();
    let out = plugin.segment_batch(&CallContext::new("shop"), &profiles).expect("segment");
    let expected: [&[&str]; 5] = [&["has-email", "tagged"], &[], &[], &["has-email"], &["tagged"]];
    assert_eq!(out.to_lists(), expected);
}
