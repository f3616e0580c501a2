//! Learning the shop's quintile boundaries across batches, in the install's
//! key-value store.
//!
//! A batch recompute hands the plugin the whole shop in batches. Each batch of
//! at least `calibration-batch` profiles (and any batch while a pass is under
//! way) is folded into a histogram kept under [`PASS_KEY`]; an empty call,
//! `segment([])`, closes the pass: its boundaries are stored under
//! [`BOUNDARIES_KEY`] and used for every call until the next pass closes. A
//! pass that goes idle for `pass-idle-seconds` without a close is settled on
//! the next call (published if it looks complete, dropped if not).

use patron_sdk::json::{self, Fields, FromJson, ToJson, Value};
use patron_sdk::{Level, Profile, Result, Timestamp, kv, log};

use crate::Config;
use crate::score::{Boundaries, Histogram};

/// kv key of the histogram of the pass under way.
pub const PASS_KEY: &str = "rfm/pass";
/// kv key of the boundaries learned from the last closed pass.
pub const BOUNDARIES_KEY: &str = "rfm/boundaries";

/// A pass under way: the histogram so far and when it last grew. In kv, keys in kebab-case.
#[derive(Clone, Debug, Default)]
pub struct Pass {
    /// When a batch was last folded in (Unix ms).
    pub updated_at: Timestamp,
    /// The window the population was drawn with.
    pub window_days: u32,
    /// The population so far.
    pub histogram: Histogram,
    /// Customers with orders whose last order is outside the window (frequency
    /// and money only): their cuts stand in when the window is empty.
    pub outside: Histogram,
}

impl FromJson for Pass {
    fn from_json(value: &Value) -> std::result::Result<Self, json::Error> {
        let mut f = Fields::new(value)?;
        Ok(Self {
            updated_at: f.required("updated-at")?,
            window_days: f.required("window-days")?,
            histogram: f.required("histogram")?,
            outside: f.or("outside", Histogram::default())?,
        })
    }
}

impl ToJson for Pass {
    fn to_json(&self) -> Value {
        json::object([
            ("updated-at", Value::from(self.updated_at)),
            ("window-days", Value::from(self.window_days)),
            ("histogram", self.histogram.to_json()),
            ("outside", self.outside.to_json()),
        ])
    }
}

/// Boundaries learned from a closed pass. In kv, keys in kebab-case.
#[derive(Clone, Debug)]
pub struct Learned {
    /// When the pass closed (Unix ms).
    pub computed_at: Timestamp,
    /// The window the population was drawn with.
    pub window_days: u32,
    /// Customers counted (in the window and, with orders, outside it).
    pub population: u64,
    /// The boundaries.
    pub boundaries: Boundaries,
}

impl FromJson for Learned {
    fn from_json(value: &Value) -> std::result::Result<Self, json::Error> {
        let mut f = Fields::new(value)?;
        Ok(Self {
            computed_at: f.required("computed-at")?,
            window_days: f.required("window-days")?,
            population: f.required("population")?,
            boundaries: f.required("boundaries")?,
        })
    }
}

impl ToJson for Learned {
    fn to_json(&self) -> Value {
        json::object([
            ("computed-at", Value::from(self.computed_at)),
            ("window-days", Value::from(self.window_days)),
            ("population", Value::from(self.population)),
            ("boundaries", self.boundaries.to_json()),
        ])
    }
}

impl Pass {
    /// The boundaries this pass has learned so far: the quintiles of the
    /// window's population or, when nobody ordered within the window, the
    /// frequency and money quintiles of everyone with orders, with every
    /// recency cut at the window's edge (so all of them score R 1, as the
    /// README promises customers outside the window).
    pub fn boundaries(&self) -> Option<Boundaries> {
        self.histogram.boundaries().or_else(|| self.outside.boundaries_outside(self.window_days))
    }

    /// Customers counted, in the window and outside it.
    fn counted(&self) -> u64 {
        self.histogram.population + self.outside.population
    }

    /// Whether this pass is still under way at `now` under `config` (not
    /// abandoned by a crashed recompute, same window).
    fn is_live(&self, config: &Config, now: Timestamp) -> bool {
        self.window_days == config.window_days
            && now.saturating_sub(self.updated_at) <= i64::from(config.pass_idle_seconds) * 1000
    }
}

/// The boundaries stored by the last closed pass, if it used the configured window.
fn stored(config: &Config) -> Result<Option<Learned>> {
    Ok(kv::read::<Learned>(BOUNDARIES_KEY)?.filter(|l| l.window_days == config.window_days))
}

/// Stores the boundaries of `pass` (if it counted anyone).
fn publish(pass: &Pass, now: Timestamp) -> Result<()> {
    if let Some(boundaries) = pass.boundaries() {
        let learned =
            Learned { computed_at: now, window_days: pass.window_days, population: pass.counted(), boundaries };
        kv::write(BOUNDARIES_KEY, &learned)?;
        log(
            Level::Info,
            &format!(
                "rfm: learned boundaries over {} customers: {}",
                learned.population,
                json::to_string(&learned.boundaries)
            ),
        );
    }
    Ok(())
}

/// The pass under way, if there is a live one. A pass gone idle is settled
/// first: a recompute that ended without `segment([])` is published if it
/// counted at least 90 % of the population of the stored boundaries (or
/// nothing is stored yet); a smaller one is taken for a crashed recompute and
/// dropped.
fn live_pass(config: &Config, now: Timestamp) -> Result<Option<Pass>> {
    let Some(pass) = kv::read::<Pass>(PASS_KEY)? else {
        return Ok(None);
    };
    if pass.is_live(config, now) {
        return Ok(Some(pass));
    }
    if pass.window_days == config.window_days {
        let complete = stored(config)?.is_none_or(|l| pass.counted() * 10 >= l.population * 9);
        if complete {
            publish(&pass, now)?;
        } else {
            log(Level::Warn, "rfm: dropped an abandoned calibration pass (a recompute stopped midway?)");
        }
    }
    kv::delete(PASS_KEY)?;
    Ok(None)
}

/// Folds `profiles` into the pass under way (starting one if needed) when the
/// batch is large enough or a pass is live, and returns the pass if it did.
pub fn fold(config: &Config, profiles: &[Profile], now: Timestamp) -> Result<Option<Pass>> {
    let live = live_pass(config, now)?;
    if live.is_none() && profiles.len() < config.calibration_batch as usize {
        return Ok(None);
    }
    let mut pass = live.unwrap_or_else(|| Pass { window_days: config.window_days, ..Pass::default() });
    for profile in profiles {
        if !pass.histogram.add(profile, config.window_days) {
            pass.outside.add_lifetime(profile);
        }
    }
    pass.updated_at = now;
    kv::write(PASS_KEY, &pass)?;
    Ok(Some(pass))
}

/// Closes the pass under way: stores its boundaries (if it counted anyone)
/// and forgets its histogram. Without a live pass, does nothing.
pub fn finish(config: &Config, now: Timestamp) -> Result<()> {
    if let Some(pass) = live_pass(config, now)? {
        publish(&pass, now)?;
        kv::delete(PASS_KEY)?;
    }
    Ok(())
}

/// The boundaries of the last closed pass, if it used the configured window.
pub fn learned(config: &Config) -> Result<Option<Boundaries>> {
    Ok(stored(config)?.map(|l| l.boundaries))
}
