//! Capabilities a plugin may be granted, and the deny-by-default set of grants.

use std::collections::BTreeSet;
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// A host import a plugin can ask for. Each maps to one `patron:plugin` interface.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "kebab-case")]
pub enum Capability {
    /// `patron:plugin/log`: write lines to the host's log.
    Log,
    /// `patron:plugin/clock`: read the current time.
    Clock,
    /// `patron:plugin/config`: read the install's configuration.
    Config,
    /// `patron:plugin/kv`: a key-value store scoped to (shop, install), with a quota.
    Kv,
}

impl Capability {
    /// Every capability, in a stable order.
    pub const ALL: [Capability; 4] = [Self::Log, Self::Clock, Self::Config, Self::Kv];

    /// The grant name used in manifests, the API and the CLI.
    pub fn name(self) -> &'static str {
        match self {
            Self::Log => "log",
            Self::Clock => "clock",
            Self::Config => "config",
            Self::Kv => "kv",
        }
    }

    /// The WIT interface, without version, that this capability links.
    pub fn interface(self) -> &'static str {
        match self {
            Self::Log => "patron:plugin/log",
            Self::Clock => "patron:plugin/clock",
            Self::Config => "patron:plugin/config",
            Self::Kv => "patron:plugin/kv",
        }
    }

    /// The capability whose interface is `interface` (without version), if any.
    pub fn from_interface(interface: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|c| c.interface() == interface)
    }
}

impl fmt::Display for Capability {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A capability name that Patron does not know.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown capability `{0}` (known: log, clock, config, kv)")]
pub struct UnknownCapability(pub String);

impl FromStr for Capability {
    type Err = UnknownCapability;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL.into_iter().find(|c| c.name() == s).ok_or_else(|| UnknownCapability(s.to_owned()))
    }
}

/// The capabilities a merchant granted to one plugin install. Empty by default:
/// nothing is linked unless it was granted.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Grants(BTreeSet<Capability>);

impl Grants {
    /// No capability granted.
    pub fn none() -> Self {
        Self::default()
    }

    /// These capabilities granted.
    pub fn of(capabilities: impl IntoIterator<Item = Capability>) -> Self {
        Self(capabilities.into_iter().collect())
    }

    /// Parse grant names (`"log"`, `"kv"`, ...); an unknown name is an error.
    pub fn from_names<S: AsRef<str>>(names: impl IntoIterator<Item = S>) -> Result<Self, UnknownCapability> {
        names.into_iter().map(|n| n.as_ref().parse()).collect::<Result<_, _>>().map(Self)
    }

    /// This set plus `capability`.
    #[must_use]
    pub fn with(mut self, capability: Capability) -> Self {
        self.0.insert(capability);
        self
    }

    /// Whether `capability` was granted.
    pub fn allows(&self, capability: Capability) -> bool {
        self.0.contains(&capability)
    }

    /// The granted capabilities, in a stable order.
    pub fn iter(&self) -> impl Iterator<Item = Capability> + '_ {
        self.0.iter().copied()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nothing_is_granted_by_default() {
        let grants = Grants::default();
        for cap in Capability::ALL {
            assert!(!grants.allows(cap), "{cap} allowed by default");
        }
        assert_eq!(Grants::none(), grants);
    }

    #[test]
    fn only_what_was_granted_is_allowed() {
        let grants = Grants::none().with(Capability::Log).with(Capability::Kv);
        assert!(grants.allows(Capability::Log));
        assert!(grants.allows(Capability::Kv));
        assert!(!grants.allows(Capability::Config));
        assert!(!grants.allows(Capability::Clock));
    }

    #[test]
    fn names_round_trip_and_unknown_names_are_refused() {
        let grants = Grants::from_names(["config", "clock"]).expect("known names");
        assert_eq!(grants.iter().collect::<Vec<_>>(), [Capability::Clock, Capability::Config]);
        let err = Grants::from_names(["log", "network"]).expect_err("unknown name");
        assert_eq!(err, UnknownCapability("network".into()));
    }

    #[test]
    fn interfaces_map_back_to_capabilities() {
        for cap in Capability::ALL {
            assert_eq!(Capability::from_interface(cap.interface()), Some(cap));
        }
        assert_eq!(Capability::from_interface("wasi:sockets/tcp"), None);
    }

    #[test]
    fn grants_serialize_as_a_list_of_names() {
        let grants = Grants::of([Capability::Kv, Capability::Log]);
        let json = serde_json::to_string(&grants).expect("serialize");
        assert_eq!(json, r#"["log","kv"]"#);
        let back: Grants = serde_json::from_str(&json).expect("deserialize");
        assert_eq!(back, grants);
    }
}
