//! Example segmenter: `vip` (spent at least `vip-spend` minor units), `lapsed`
//! (no order for `lapsed-days` days), `new` (exactly one order), `prospect`
//! (no order yet). Thresholds come from the install's config.

use patron_sdk::{Profile, Result, Segmenter};
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
        Self {
            vip_spend: 100_000,
            lapsed_days: 90,
        }
    }
}

/// The segments of one profile under `config`: the plugin's whole logic,
/// plain Rust (benchmarks run it natively too).
pub fn classify(config: &Config, profile: &Profile) -> Vec<String> {
    let stats = &profile.stats;
    let mut segments = Vec::new();
    if stats.order_count == 0 {
        segments.push("prospect".to_owned());
    }
    if stats.order_count == 1 {
        segments.push("new".to_owned());
    }
    if stats.total_spent >= config.vip_spend {
        segments.push("vip".to_owned());
    }
    if stats.days_since_last_order.is_some_and(|d| d >= config.lapsed_days) {
        segments.push("lapsed".to_owned());
    }
    segments
}

/// The plugin.
pub struct Example;

impl Segmenter for Example {
    fn segment(profiles: Vec<Profile>) -> Result<Vec<Vec<String>>> {
        let config: Config = patron_sdk::config()?;
        Ok(profiles.iter().map(|p| classify(&config, p)).collect())
    }
}

patron_sdk::export!(segmenter: Example);

#[cfg(test)]
mod tests {
    use patron_sdk::testing::{TestHost, profile};

    use super::*;

    #[test]
    fn segments_follow_the_configured_thresholds() {
        let mut big = profile("c1");
        big.stats.order_count = 1;
        big.stats.total_spent = 5_000;
        big.stats.days_since_last_order = Some(10);
        let mut host = TestHost::new().config(r#"{"vip-spend": 5000, "lapsed-days": 7}"#);
        let out = host.run(|| Example::segment(vec![big, profile("c2")]));
        assert_eq!(
            out,
            Ok(vec![
                vec!["new".to_owned(), "vip".into(), "lapsed".into()],
                vec!["prospect".to_owned()],
            ])
        );
    }

    #[test]
    fn bad_config_is_a_plugin_error() {
        let mut host = TestHost::new().config(r#"{"vip-spend": "lots"}"#);
        let err = host.run(|| Example::segment(vec![])).err();
        assert_eq!(err.map(|e| e.code).as_deref(), Some("bad-config"));
    }
}
