//! RFM over a hand-built shop, through the plugin's entry point and kv.

use patron_sdk::testing::{TestHost, profile};
use patron_sdk::{Level, Profile, Segmenter};

use super::*;

const NOW: i64 = 1_700_000_000_000;

fn customer(id: &str, days: u32, orders: u32, spent: i64) -> Profile {
    let mut p = profile(id);
    p.stats.order_count = orders;
    p.stats.total_spent = spent;
    p.stats.days_since_last_order = Some(days);
    p.stats.last_order_at = Some(NOW - i64::from(days) * 86_400_000);
    p
}

/// Ten customers whose days, orders and spend are each a permutation of
/// 1..=10, so every cut list is [2, 4, 6, 8]; plus one customer outside the
/// window and one prospect.
fn shop() -> Vec<(Profile, &'static str)> {
    vec![
        (customer("a", 1, 10, 10_000), "champions"),         // R5 F5 M5
        (customer("b", 2, 1, 1_000), "new"),                 // R5 F1 M1
        (customer("c", 9, 9, 9_000), "cant-lose-them"),      // R1 F5 M5
        (customer("d", 10, 2, 2_000), "lost"),               // R1 F1 M1
        (customer("e", 5, 5, 5_000), "need-attention"),      // R3 F3 M3
        (customer("f", 6, 6, 6_000), "need-attention"),      // R3 F3 M3
        (customer("g", 3, 3, 3_000), "potential-loyalists"), // R4 F2 M2
        (customer("h", 4, 8, 8_000), "loyal"),               // R4 F4 M4
        (customer("i", 7, 4, 4_000), "hibernating"),         // R2 F2 M2
        (customer("j", 8, 7, 7_000), "at-risk"),             // R2 F4 M4
        (customer("old", 500, 1, 1_000), "lost"),            // outside the window: R1 F1 M1
        (profile("prospect"), "prospect"),
    ]
}

fn expected(shop: &[(Profile, &'static str)]) -> Vec<Vec<String>> {
    shop.iter().map(|(_, s)| vec![(*s).to_owned()]).collect()
}

fn run(host: &mut TestHost, batch: Vec<Profile>) -> Vec<Vec<String>> {
    host.run(|| Rfm::segment(batch)).expect("segment succeeds")
}

#[test]
fn a_batch_recompute_learns_the_shop_quintiles() {
    let shop = shop();
    let profiles: Vec<Profile> = shop.iter().map(|(p, _)| p.clone()).collect();
    let mut host = TestHost::new().at(NOW).config(r#"{"calibration-batch": 5, "prospect-segment": "prospect"}"#);

    // First pass ever: batches are scored against the pass so far; the second
    // batch already sees the whole population of the window.
    run(&mut host, profiles[..6].to_vec());
    let second = run(&mut host, profiles[6..].to_vec());
    assert_eq!(second, expected(&shop[6..]));
    assert!(host.kv_value(calibration::PASS_KEY).is_some());
    assert_eq!(run(&mut host, vec![]), Vec::<Vec<String>>::new(), "closing the pass");
    assert!(host.kv_value(calibration::PASS_KEY).is_none());
    assert!(host.kv_value(calibration::BOUNDARIES_KEY).is_some());

    // Next recompute: every customer against the learned boundaries.
    assert_eq!(run(&mut host, profiles.clone()), expected(&shop));

    // A change of one customer between passes: scored against the shop's
    // boundaries, and not counted into a new pass.
    let mut a = shop[0].0.clone();
    assert_eq!(run(&mut host, vec![a.clone()]), vec![vec!["champions".to_owned()]]);
    a.stats.days_since_last_order = Some(9);
    assert_eq!(run(&mut host, vec![a]), vec![vec!["cant-lose-them".to_owned()]]);
}

#[test]
fn the_closing_pass_replaces_the_learned_boundaries() {
    let shop = shop();
    let profiles: Vec<Profile> = shop.iter().map(|(p, _)| p.clone()).collect();
    let mut host = TestHost::new().at(NOW).config(r#"{"calibration-batch": 5}"#);
    run(&mut host, profiles.clone());
    run(&mut host, vec![]);
    // The shop changes: everyone now has ten times the orders; customer `b`'s
    // single order is now the bottom of the shop, as before, but `a` with 10
    // orders is no longer top.
    let richer: Vec<Profile> = profiles
        .iter()
        .map(|p| {
            let mut p = p.clone();
            p.stats.order_count *= 10;
            p
        })
        .collect();
    run(&mut host, richer);
    run(&mut host, vec![]);
    let a = customer("a", 1, 10, 10_000);
    // F: 10 orders is now the bottom quintile of the shop.
    assert_eq!(run(&mut host, vec![a]), vec![vec!["potential-loyalists".to_owned()]]);
}

#[test]
fn a_pass_that_goes_idle_without_a_close_is_published() {
    // A host that never sends `segment([])`: the pass is settled on the next call.
    let shop = shop();
    let profiles: Vec<Profile> = shop.iter().map(|(p, _)| p.clone()).collect();
    let mut host = TestHost::new().at(NOW).config(r#"{"calibration-batch": 5, "pass-idle-seconds": 60}"#);
    run(&mut host, profiles);
    let mut later = host.clone().at(NOW + 3_600_000);
    assert_eq!(run(&mut later, vec![customer("a", 1, 10, 10_000)]), vec![vec!["champions".to_owned()]]);
    assert!(later.kv_value(calibration::BOUNDARIES_KEY).is_some());
    assert!(later.kv_value(calibration::PASS_KEY).is_none());
}

#[test]
fn an_abandoned_partial_pass_is_dropped() {
    let shop = shop();
    let profiles: Vec<Profile> = shop.iter().map(|(p, _)| p.clone()).collect();
    let config = r#"{"calibration-batch": 5, "pass-idle-seconds": 60}"#;
    let mut host = TestHost::new().at(NOW).config(config);
    run(&mut host, profiles.clone());
    run(&mut host, vec![]);
    let learned = host.kv_value(calibration::BOUNDARIES_KEY).map(<[u8]>::to_vec);
    // The next recompute crashes after six of the ten customers of the window...
    let mut crashed = host.clone().at(NOW + 86_400_000);
    let skewed: Vec<Profile> = profiles[..6]
        .iter()
        .map(|p| {
            let mut p = p.clone();
            p.stats.order_count += 100;
            p
        })
        .collect();
    run(&mut crashed, skewed);
    // ... and its close (or any call) comes long after: the partial pass is
    // dropped, the previous boundaries stay.
    let mut later = crashed.clone().at(NOW + 2 * 86_400_000);
    run(&mut later, vec![]);
    assert_eq!(later.kv_value(calibration::BOUNDARIES_KEY).map(<[u8]>::to_vec), learned);
    assert!(later.kv_value(calibration::PASS_KEY).is_none());
    assert!(later.logs().iter().any(|(level, _)| *level == Level::Warn));
}

#[test]
fn uncalibrated_single_customers_get_no_guess() {
    let mut host = TestHost::new().at(NOW).config(r#"{"prospect-segment": "prospect"}"#);
    let out = run(&mut host, vec![customer("a", 1, 10, 10_000), profile("p")]);
    assert_eq!(out, vec![vec![], vec!["prospect".to_owned()]]);
    assert!(host.logs().iter().any(|(level, _)| *level == Level::Warn));
    assert!(host.kv_value(calibration::PASS_KEY).is_none(), "a small batch starts no pass");
}

#[test]
fn fixed_boundaries_renames_and_custom_maps() {
    let config = r#"{
        "boundaries": {"recency-days": [30, 60, 120, 240], "frequency": [1, 2, 3, 5], "monetary": [5000, 10000, 20000, 50000]},
        "names": {"champions": "vip"},
        "segment-map": [
            {"name": "champions", "r": [4, 5], "f": [4, 5], "m": [4, 5]},
            {"name": "one-timer", "f": [1, 1]}
        ]
    }"#;
    let mut host = TestHost::new().at(NOW).config(config);
    let out = run(
        &mut host,
        vec![
            customer("top", 20, 4, 30_000), // R5 F4 M4
            customer("once", 10, 1, 2_000), // F1
            customer("mid", 100, 3, 8_000), // R3 F3 M2: no entry
            profile("prospect"),
        ],
    );
    assert_eq!(out, vec![vec!["vip".to_owned()], vec!["one-timer".into()], vec![], vec![]]);
}

#[test]
fn a_new_window_discards_learned_boundaries() {
    let shop = shop();
    let profiles: Vec<Profile> = shop.iter().map(|(p, _)| p.clone()).collect();
    let mut host = TestHost::new().at(NOW).config(r#"{"calibration-batch": 5}"#);
    run(&mut host, profiles);
    run(&mut host, vec![]);
    let mut other = host.clone().config(r#"{"calibration-batch": 5, "window-days": 30}"#);
    assert_eq!(run(&mut other, vec![customer("a", 1, 10, 10_000)]), vec![Vec::<String>::new()]);
}

#[test]
fn bad_config_is_refused() {
    for config in [
        r#"{"segment-map": [{"name": "x", "r": [5, 1]}]}"#,
        r#"{"boundaries": {"frequency": [5, 4, 3, 2]}}"#,
        r#"{"window-days": 0}"#,
        r#"{"no-such-key": 1}"#,
    ] {
        let mut host = TestHost::new().config(config);
        let err = host.run(|| Rfm::segment(vec![])).err();
        assert_eq!(err.map(|e| e.code).as_deref(), Some("bad-config"), "{config}");
    }
}

#[test]
fn a_shop_whose_history_ends_before_the_window_still_gets_segments() {
    // Every last order is more than 365 days old: the window's population is empty.
    let profiles: Vec<Profile> =
        (1..=10u32).map(|i| customer(&format!("c{i}"), 400 + i, i, i64::from(i) * 1_000)).collect();
    let mut host = TestHost::new().at(NOW).config(r#"{"calibration-batch": 5}"#);
    run(&mut host, profiles.clone());
    run(&mut host, vec![]);
    // R 1 for everyone; F and M against the quintiles of everyone with orders.
    let fm_row = [
        "lost",
        "lost",
        "lost",
        "lost",
        "at-risk",
        "at-risk",
        "at-risk",
        "at-risk",
        "cant-lose-them",
        "cant-lose-them",
    ];
    let want: Vec<Vec<String>> = fm_row.iter().map(|s| vec![(*s).to_owned()]).collect();
    assert_eq!(run(&mut host, profiles.clone()), want);
    // Before any pass closed, the pass so far answers the same way.
    let mut fresh = TestHost::new().at(NOW).config(r#"{"calibration-batch": 5}"#);
    assert_eq!(run(&mut fresh, profiles), want);
    assert!(fresh.logs().iter().all(|(level, _)| *level != Level::Warn), "{:?}", fresh.logs());
}
