//! RFM segmenter: scores each customer 1–5 on recency, frequency and monetary
//! value against the shop's quintiles and maps the scores to a named segment
//! (`champions`, `loyal`, … `lost`; see [`map::default_map`]).
//!
//! Quintiles are over the shop's customers, while `segment` sees batches: the
//! plugin learns the boundaries across a batch recompute and keeps them in its
//! kv store ([`calibration`]). README.md states the contract with the host.

pub mod calibration;
pub mod map;
pub mod score;

use patron_sdk::json::{self, Fields, FromJson, Value};
use patron_sdk::{Error, Level, Profile, Result, Segmenter, log, now};

use crate::map::SegmentRule;
use crate::score::{Boundaries, Cuts};

/// Boundaries the merchant fixes instead of learning them; each dimension
/// left out is learned. In config, keys in kebab-case.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FixedBoundaries {
    /// Days since last order, four ascending cuts.
    pub recency_days: Option<Cuts<u32>>,
    /// Order counts, four ascending cuts.
    pub frequency: Option<Cuts<u32>>,
    /// Total spent in minor units, four ascending cuts.
    pub monetary: Option<Cuts<i64>>,
}

impl FromJson for FixedBoundaries {
    fn from_json(value: &Value) -> std::result::Result<Self, json::Error> {
        let mut f = Fields::new(value)?;
        let fixed = Self {
            recency_days: f.optional("recency-days")?,
            frequency: f.optional("frequency")?,
            monetary: f.optional("monetary")?,
        };
        f.finish()?;
        Ok(fixed)
    }
}

impl FixedBoundaries {
    /// `learned` with the fixed dimensions replaced; `None` if a dimension is
    /// neither fixed nor learned.
    fn over(&self, learned: Option<Boundaries>) -> Option<Boundaries> {
        Some(Boundaries {
            recency_days: self.recency_days.or(learned.as_ref().map(|b| b.recency_days))?,
            frequency: self.frequency.or(learned.as_ref().map(|b| b.frequency))?,
            monetary: self.monetary.or(learned.as_ref().map(|b| b.monetary))?,
        })
    }

    fn problem(&self) -> Option<String> {
        fn ascending<T: PartialOrd>(cuts: &Option<Cuts<T>>) -> bool {
            cuts.as_ref().is_none_or(|c| c.windows(2).all(|w| w[0] <= w[1]))
        }
        if ascending(&self.recency_days) && ascending(&self.frequency) && ascending(&self.monetary) {
            None
        } else {
            Some("boundaries: each list must be four ascending cuts".into())
        }
    }
}

/// The install's settings (all optional; see README.md); in config, keys in kebab-case,
/// unknown keys refused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Config {
    /// Customers whose last order is older than this many days are left out
    /// of the quintile population (they still get a segment, with R 1).
    pub window_days: u32,
    /// The segment map, first matching entry wins; `None` for the default.
    pub segment_map: Option<Vec<SegmentRule>>,
    /// Renames of segment names (`{"champions": "vip"}` in config), as (name, shown) pairs.
    pub names: Vec<(String, String)>,
    /// Boundaries fixed by the merchant instead of learned.
    pub boundaries: FixedBoundaries,
    /// Segment for customers without a paid order; `None`: no segment.
    pub prospect_segment: Option<String>,
    /// Batches at least this large are counted towards the shop's quintiles.
    pub calibration_batch: u32,
    /// A pass that received no batch for this long is abandoned.
    pub pass_idle_seconds: u32,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            window_days: 365,
            segment_map: None,
            names: Vec::new(),
            boundaries: FixedBoundaries::default(),
            prospect_segment: None,
            calibration_batch: 20,
            pass_idle_seconds: 600,
        }
    }
}

impl FromJson for Config {
    fn from_json(value: &Value) -> std::result::Result<Self, json::Error> {
        let d = Self::default();
        let mut f = Fields::new(value)?;
        let config = Self {
            window_days: f.or("window-days", d.window_days)?,
            segment_map: f.optional("segment-map")?,
            names: f.with("names", renames)?.unwrap_or_default(),
            boundaries: f.or("boundaries", d.boundaries)?,
            prospect_segment: f.optional("prospect-segment")?,
            calibration_batch: f.or("calibration-batch", d.calibration_batch)?,
            pass_idle_seconds: f.or("pass-idle-seconds", d.pass_idle_seconds)?,
        };
        f.finish()?;
        Ok(config)
    }
}

fn renames(value: &Value) -> std::result::Result<Vec<(String, String)>, json::Error> {
    json::entries_of(value, |from, to| Ok((from.to_owned(), String::from_json(to)?)))
}

impl Config {
    /// The install's config, checked beyond what the manifest's schema can say.
    pub fn load() -> Result<Self> {
        let config: Self = patron_sdk::read_config()?;
        let problem = config
            .segment_map
            .iter()
            .flatten()
            .find_map(SegmentRule::problem)
            .or_else(|| config.boundaries.problem())
            .or_else(|| (config.window_days == 0).then(|| "window-days must be at least 1".to_owned()));
        match problem {
            Some(message) => Err(Error::new("bad-config", message)),
            None => Ok(config),
        }
    }

    /// The segment map in force.
    pub fn map(&self) -> Vec<SegmentRule> {
        self.segment_map.clone().unwrap_or_else(map::default_map)
    }

    /// The segment name shown for `name` (after renames).
    fn display<'a>(&'a self, name: &'a str) -> &'a str {
        self.names.iter().rev().find(|(from, _)| from == name).map_or(name, |(_, to)| to.as_str())
    }
}

/// The segments of each profile under `boundaries` (none: not calibrated, only
/// the prospect segment is given).
pub fn classify(config: &Config, boundaries: Option<&Boundaries>, profiles: &[Profile]) -> Vec<Vec<String>> {
    let map = config.map();
    profiles
        .iter()
        .map(|profile| {
            if profile.stats.order_count == 0 {
                return config.prospect_segment.iter().map(|s| config.display(s).to_owned()).collect();
            }
            boundaries
                .and_then(|b| b.score(profile))
                .and_then(|score| map::segment_of(&map, &score))
                .map(|name| vec![config.display(name).to_owned()])
                .unwrap_or_default()
        })
        .collect()
}

/// The plugin.
pub struct Rfm;

impl Segmenter for Rfm {
    fn segment(profiles: Vec<Profile>) -> Result<Vec<Vec<String>>> {
        let config = Config::load()?;
        let now = now();
        if profiles.is_empty() {
            calibration::finish(&config, now)?;
            return Ok(Vec::new());
        }
        let pass = calibration::fold(&config, &profiles, now)?;
        // Never calibrated: the pass so far (which includes this batch if it is large enough).
        let learned = match calibration::learned(&config)? {
            Some(b) => Some(b),
            None => pass.and_then(|p| p.boundaries()),
        };
        let boundaries = config.boundaries.over(learned);
        if boundaries.is_none() && profiles.iter().any(|p| p.stats.order_count > 0) {
            log(Level::Warn, "rfm: no quintile boundaries yet; run a batch recompute (see README) to calibrate");
        }
        Ok(classify(&config, boundaries.as_ref(), &profiles))
    }
}

patron_sdk::export!(segmenter: Rfm);

#[cfg(test)]
mod tests;
