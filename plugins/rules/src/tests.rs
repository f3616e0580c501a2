//! The rules segmenter through its entry point, with the README's examples.

use patron_sdk::testing::{TestHost, profile};
use patron_sdk::time::DAY_MS;
use patron_sdk::{Profile, Segmenter};

use super::*;

const NOW: i64 = 1_700_000_000_000; // 2023-11-14

/// The `json` code block that follows the heading `heading` in README.md.
fn readme_example(heading: &str) -> String {
    let readme = include_str!("../README.md");
    let after = readme.split_once(heading).map(|(_, rest)| rest).expect("heading in README");
    let block = after.split_once("```json\n").map(|(_, rest)| rest).expect("json block");
    block.split_once("```").map(|(json, _)| json.to_owned()).expect("closed block")
}

/// A customer with `orders` orders worth `spent` minor units since `first_days`
/// days ago, the last one `last_days` ago.
fn customer(id: &str, orders: u32, spent: i64, first_days: i64, last_days: u32) -> Profile {
    let mut p = profile(id);
    p.stats.order_count = orders;
    p.stats.total_spent = spent;
    p.stats.first_order_at = Some(NOW - first_days * DAY_MS);
    p.stats.last_order_at = Some(NOW - i64::from(last_days) * DAY_MS);
    p.stats.days_since_last_order = Some(last_days);
    p
}

fn segment(config: &str, profiles: Vec<Profile>) -> Vec<Vec<String>> {
    let mut host = TestHost::new().at(NOW).config(config);
    host.run(|| Rules::segment(profiles)).expect("segment succeeds")
}

#[test]
fn three_level_membership_from_the_readme() {
    let config = readme_example("### Example: three-level membership");
    let fixture = [
        // 10 orders, 2 000.00 over two years: 5 a year, 1 000.00 a year.
        (customer("super", 10, 200_000, 730, 10), "super"),
        // 5 orders a year but only 600.00 a year: core (not super: and).
        (customer("frequent-small", 5, 60_000, 365, 5), "core"),
        // 1 order of 800.00 this month: core by spend alone (or).
        (customer("one-big", 1, 80_000, 20, 20), "core"),
        // 3 orders in 4 months: counts as 3 a year.
        (customer("three-recent", 3, 9_000, 120, 2), "core"),
        // Was super, but no order for 400 days: falls back.
        (customer("lapsed-super", 20, 500_000, 1_000, 400), "regular"),
        // 2 small orders a year.
        (customer("occasional", 4, 20_000, 730, 30), "regular"),
        (profile("never-ordered"), "regular"),
    ];
    let (profiles, want): (Vec<Profile>, Vec<&str>) = fixture.into_iter().unzip();
    let got = segment(&config, profiles);
    let want: Vec<Vec<String>> = want.into_iter().map(|level| vec![level.to_owned()]).collect();
    assert_eq!(got, want);
}

#[test]
fn practice_examples_from_the_readme() {
    let config = readme_example("### More examples from practice");
    let mut lapsed = customer("lapsed", 1, 3_000, 200, 200);
    lapsed.traits = r#"{"birthday": "1985-11-30", "marketing_consent": true, "country": "FR"}"#.into();
    let mut whale = customer("whale", 12, 250_000, 400, 3);
    whale.segments = vec!["cant-lose-them".into()];
    let mut wholesale = customer("wholesale", 12, 250_000, 400, 3);
    wholesale.tags = vec!["wholesale".into()];
    let mut subscriber = profile("subscriber");
    subscriber.traits = r#"{"marketing_consent": true, "birthday": "--03-08"}"#.into();
    let got = segment(&config, vec![lapsed, whale, wholesale, subscriber]);
    assert_eq!(
        got,
        vec![
            vec!["dormant".to_owned(), "one-and-done".into(), "birthday-this-month".into(), "eu".into()],
            vec!["big-spenders".to_owned(), "win-back".into()],
            vec![],
            vec!["newsletter-prospects".to_owned()],
        ]
    );
}

#[test]
fn a_customer_leaves_dormant_when_they_buy() {
    let config = r#"{"rules": [{"name": "dormant", "when": {"days-since-last-order": {"gt": 90}}}]}"#;
    let mut p = customer("c", 2, 5_000, 300, 120);
    assert_eq!(segment(config, vec![p.clone()]), vec![vec!["dormant".to_owned()]]);
    p.stats.order_count = 3;
    p.stats.days_since_last_order = Some(0);
    assert_eq!(segment(config, vec![p]), vec![Vec::<String>::new()]);
}

#[test]
fn first_matching_rule_wins_within_a_group_only() {
    let config = r#"{"rules": [
        {"name": "gold", "group": "level", "when": {"order-count": {"gte": 2}}},
        {"name": "silver", "group": "level", "when": {"order-count": {"gte": 1}}},
        {"name": "buyer", "when": {"order-count": {"gte": 1}}},
        {"name": "buyer", "when": {"total-spent": {"gt": 0}}}
    ]}"#;
    let got = segment(config, vec![customer("c", 3, 100, 10, 1), profile("p")]);
    assert_eq!(got, vec![vec!["gold".to_owned(), "buyer".into()], vec![]]);
}

#[test]
fn bad_configs_name_the_rule() {
    for (config, fragment) in [
        (r#"{"rules": [{"name": "x", "when": {"order-count": {}}}]}"#, "rules[0] `x`"),
        (r#"{"rules": [{"name": "ok"}, {"name": " "}]}"#, "rules[1]"),
        (r#"{"rules": [{"name": "x", "when": {"viewed-category": "shoes"}}]}"#, "viewed-category"),
        (r#"{"rule": []}"#, "rule"),
    ] {
        let mut host = TestHost::new().config(config);
        let err = host.run(|| Rules::segment(vec![])).expect_err("refused");
        assert_eq!(err.code, "bad-config");
        assert!(err.message.contains(fragment), "{config}: {}", err.message);
    }
}

#[test]
fn no_rules_no_segments() {
    assert_eq!(segment("{}", vec![profile("a")]), vec![Vec::<String>::new()]);
}
