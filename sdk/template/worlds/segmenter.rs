//! {{name}}: a Patron segmenter.
//!
//! If your segments depend only on `profile.stats`, implement
//! `patron_sdk::StatsSegmenter` instead: batch recompute is then several times faster.

use patron_sdk::{Profile, Result, Segmenter};
use serde::Deserialize;

/// The install's settings (see `config-schema` in patron.toml).
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct Config {}

/// The plugin.
struct Plugin;

impl Segmenter for Plugin {
    fn segment(profiles: Vec<Profile>) -> Result<Vec<Vec<String>>> {
        let _config: Config = patron_sdk::config()?;
        Ok(profiles.iter().map(segments_of).collect())
    }
}

/// The segments of one customer.
fn segments_of(profile: &Profile) -> Vec<String> {
    let mut segments = Vec::new();
    if profile.stats.order_count >= 5 {
        segments.push("regular".to_owned());
    }
    segments
}

patron_sdk::export!(segmenter: Plugin);

#[cfg(test)]
mod tests {
    use patron_sdk::testing::{TestHost, profile};

    use super::*;

    #[test]
    fn regulars_are_segmented() {
        let mut regular = profile("c1");
        regular.stats.order_count = 5;
        let out = TestHost::new().run(|| Plugin::segment(vec![regular, profile("c2")]));
        assert_eq!(out, Ok(vec![vec!["regular".to_owned()], vec![]]));
    }
}
