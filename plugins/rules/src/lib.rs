//! Rules segmenter: merchants define segments as conditions on order stats,
//! traits, tags and segments, combined with `all` / `any` / `not`, in config
//! (see README.md). Segments are recomputed from the profile on every call, so
//! a customer leaves `dormant` as soon as they buy.

pub mod condition;

use patron_sdk::json::{self, Fields, FromJson, Value};
use patron_sdk::{Error, Profile, Result, Segmenter, Timestamp, now};

use crate::condition::{Condition, Subject};

/// One rule: the customer is in segment `name` when `when` holds. Within a
/// `group`, only the first matching rule (in config order) applies, so the
/// group's segments are exclusive levels.
#[derive(Clone, Debug, PartialEq)]
pub struct Rule {
    /// Segment name.
    pub name: String,
    /// Exclusive group the rule belongs to, if any.
    pub group: Option<String>,
    /// The condition; a rule without one always matches (a group's catch-all).
    pub when: Option<Condition>,
}

impl FromJson for Rule {
    fn from_json(value: &Value) -> std::result::Result<Self, json::Error> {
        let mut f = Fields::new(value)?;
        let rule = Self { name: f.required("name")?, group: f.optional("group")?, when: f.optional("when")? };
        f.finish()?;
        Ok(rule)
    }
}

/// The install's settings.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Config {
    /// The rules, in order.
    pub rules: Vec<Rule>,
}

impl FromJson for Config {
    fn from_json(value: &Value) -> std::result::Result<Self, json::Error> {
        let mut f = Fields::new(value)?;
        let config = Self { rules: f.or("rules", Vec::new())? };
        f.finish()?;
        Ok(config)
    }
}

impl Config {
    /// The install's config, with every rule checked.
    pub fn load() -> Result<Self> {
        let config: Self = patron_sdk::read_config()?;
        config.check()?;
        Ok(config)
    }

    /// The first problem of the config, as a `bad-config` error naming the rule.
    pub fn check(&self) -> Result<()> {
        for (i, rule) in self.rules.iter().enumerate() {
            let problem = if rule.name.trim().is_empty() {
                Some("empty name".to_owned())
            } else {
                rule.when.as_ref().and_then(Condition::problem)
            };
            if let Some(problem) = problem {
                return Err(Error::new("bad-config", format!("rules[{i}] `{}`: {problem}", rule.name)));
            }
        }
        Ok(())
    }

    /// The segments of `profile` at `now`, in rule order, each once.
    pub fn segments_of(&self, profile: &Profile, now: Timestamp) -> Vec<String> {
        let subject = Subject::new(profile, now);
        let mut out: Vec<String> = Vec::new();
        let mut groups_done: Vec<&str> = Vec::new();
        for rule in &self.rules {
            if let Some(group) = rule.group.as_deref()
                && groups_done.contains(&group)
            {
                continue;
            }
            if rule.when.as_ref().is_none_or(|c| c.holds(&subject)) {
                if let Some(group) = rule.group.as_deref() {
                    groups_done.push(group);
                }
                if !out.contains(&rule.name) {
                    out.push(rule.name.clone());
                }
            }
        }
        out
    }
}

/// The plugin.
pub struct Rules;

impl Segmenter for Rules {
    fn segment(profiles: Vec<Profile>) -> Result<Vec<Vec<String>>> {
        let config = Config::load()?;
        let now = now();
        Ok(profiles.iter().map(|p| config.segments_of(p, now)).collect())
    }
}

patron_sdk::export!(segmenter: Rules);

#[cfg(test)]
mod tests;
