//! Example segmenter: `vip` (spent at least `vip-spend` minor units), `lapsed`
//! (no order for `lapsed-days` days), `new` (exactly one order), `prospect`
//! (no order yet). Thresholds come from the install's config. It needs only
//! order statistics, so it is a [`StatsSegmenter`]: batch recompute takes the
//! fast path.

use patron_sdk::{CustomerStats, Memberships, Result, StatsBatch, StatsSegmenter};
use serde::Deserialize;

/// The install's settings.
#[derive(Clone, Debug, Deserialize)]
#[serde(default, rename_all = "kebab-case")]
pub struct Config {
    /// Total spend (minor units) from which a customer is `vip`.
    pub vip_spend: i64,
    /// Days without an order after which a customer is `lapsed`.
    pub lapsed_days: u32,
}

impl Default for Config {
    fn default() -> Self {
        Self { vip_spend: 100_000, lapsed_days: 90 }
    }
}

/// The plugin's segments, in the order [`classify`] takes their labels.
pub const SEGMENTS: [&str; 4] = ["prospect", "new", "vip", "lapsed"];

/// The segments of one customer under `config`, the plugin's whole logic: which of
/// `labels` (one per entry of [`SEGMENTS`], names or a [`Memberships`]' segments)
/// apply.
pub fn classify<L: Copy>(config: &Config, stats: &CustomerStats, labels: [L; 4]) -> impl Iterator<Item = L> {
    let [prospect, new, vip, lapsed] = labels;
    [
        (stats.order_count == 0).then_some(prospect),
        (stats.order_count == 1).then_some(new),
        (stats.total_spent >= config.vip_spend).then_some(vip),
        stats.days_since_last_order.is_some_and(|d| d >= config.lapsed_days).then_some(lapsed),
    ]
    .into_iter()
    .flatten()
}

/// The plugin. Plain Rust: benchmarks run it natively too.
pub struct Example;

impl StatsSegmenter for Example {
    fn segment_stats(stats: &StatsBatch, out: &mut Memberships) -> Result<()> {
        let config: Config = patron_sdk::config()?;
        let segments = SEGMENTS.map(|name| out.segment(name));
        for s in stats.iter() {
            out.push_segments(classify(&config, &s, segments));
        }
        Ok(())
    }
}

patron_sdk::export!(stats_segmenter: Example);

#[cfg(test)]
mod tests {
    use patron_sdk::testing::TestHost;

    use super::*;

    #[test]
    fn segments_follow_the_configured_thresholds() {
        let big = CustomerStats {
            order_count: 1,
            total_spent: 5_000,
            days_since_last_order: Some(10),
            ..CustomerStats::default()
        };
        let regular = CustomerStats {
            order_count: 4,
            total_spent: 4_999,
            days_since_last_order: Some(6),
            ..CustomerStats::default()
        };
        let mut host = TestHost::new().config(r#"{"vip-spend": 5000, "lapsed-days": 7}"#);
        let mut out = Memberships::new();
        let batch: StatsBatch = [big, CustomerStats::default(), regular].iter().collect();
        let done = host.run(|| Example::segment_stats(&batch, &mut out));
        assert_eq!(done, Ok(()));
        assert_eq!(
            out.to_lists(),
            [vec!["new".to_owned(), "vip".into(), "lapsed".into()], vec!["prospect".to_owned()], vec![]]
        );
    }

    #[test]
    fn bad_config_is_a_plugin_error() {
        let mut host = TestHost::new().config(r#"{"vip-spend": "lots"}"#);
        let err = host.run(|| Example::segment_stats(&StatsBatch::default(), &mut Memberships::new())).err();
        assert_eq!(err.map(|e| e.code).as_deref(), Some("bad-config"));
    }
}
