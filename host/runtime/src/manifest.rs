//! A plugin's manifest: who it is, which world it implements, what it needs.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::grants::Capability;

/// One capability world of the `patron:plugin` contract.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "kebab-case")]
pub enum World {
    /// Exports `patron:plugin/segmentation`.
    Segmenter,
    /// Exports `patron:plugin/loyalty-program`.
    Loyalty,
    /// Exports `patron:plugin/recommendation`.
    Recommender,
    /// Exports `patron:plugin/automation-hooks`.
    Automation,
    /// Exports `patron:plugin/prediction` (since 0.1.2).
    Predictor,
}

impl World {
    /// Every world, in a stable order.
    pub const ALL: [World; 5] = [Self::Segmenter, Self::Loyalty, Self::Recommender, Self::Automation, Self::Predictor];

    /// The world's name in WIT and in manifests.
    pub fn name(self) -> &'static str {
        match self {
            Self::Segmenter => "segmenter",
            Self::Loyalty => "loyalty",
            Self::Recommender => "recommender",
            Self::Automation => "automation",
            Self::Predictor => "predictor",
        }
    }

    /// The interface (without version) a component exports to implement this world.
    pub fn export_interface(self) -> &'static str {
        match self {
            Self::Segmenter => "patron:plugin/segmentation",
            Self::Loyalty => "patron:plugin/loyalty-program",
            Self::Recommender => "patron:plugin/recommendation",
            Self::Automation => "patron:plugin/automation-hooks",
            Self::Predictor => "patron:plugin/prediction",
        }
    }

    /// The world whose export interface is `interface` (without version), if any.
    pub fn from_export_interface(interface: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|w| w.export_interface() == interface)
    }
}

impl fmt::Display for World {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for World {
    type Err = ManifestError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|w| w.name() == s)
            .ok_or_else(|| ManifestError::Invalid(format!("unknown world `{s}`")))
    }
}

/// What a plugin declares about itself, shipped beside its `.wasm` as
/// `patron.toml` (or JSON through the API).
///
/// ```toml
/// name = "vip-segments"
/// version = "1.2.0"
/// world = "segmenter"
/// imports = ["log", "config"]
///
/// [config-schema]
/// type = "object"
/// properties = { vip-threshold = { type = "integer" } }
/// ```
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct Manifest {
    /// Plugin name: lower-case letters, digits and `-`.
    pub name: String,
    /// Plugin version, `MAJOR.MINOR.PATCH`.
    pub version: String,
    /// The world the plugin implements.
    pub world: World,
    /// Host imports the plugin needs; the merchant grants them at install.
    #[serde(default)]
    pub imports: Vec<Capability>,
    /// JSON schema of the install's configuration (what `config.get` returns).
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub config_schema: Option<serde_json::Value>,
    /// One-line description shown in `plugin list`.
    #[serde(default)]
    pub description: Option<String>,
    /// What an `automation` plugin listens to: event kinds ([`EVENT_KINDS`] or
    /// `custom:<name>`) and host triggers ([`HOST_TRIGGERS`], `segment.entered:<name>`,
    /// `segment.left:<name>`). Other worlds declare none.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub triggers: Vec<String>,
}

/// Event kinds every storefront may send; others must be `custom:<name>`.
pub const EVENT_KINDS: &[&str] = &[
    "page_view",
    "product_view",
    "search",
    "add_to_cart",
    "remove_from_cart",
    "checkout_started",
    "recommendation_impression",
    "recommendation_click",
];

/// Triggers the host raises itself, beside `segment.entered:<name>` and `segment.left:<name>`.
pub const HOST_TRIGGERS: &[&str] =
    &["customer.created", "customer.birthday", "order.placed", "order.refunded", "tier.changed"];

/// Whether `kind` is an event kind a storefront may send: standard, or `custom:<name>`.
pub fn is_event_kind(kind: &str) -> bool {
    EVENT_KINDS.contains(&kind)
        || kind.strip_prefix("custom:").is_some_and(|name| {
            !name.is_empty()
                && name.len() <= 64
                && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-' || b == b'.')
        })
}

/// Whether an automation plugin may listen to `trigger`.
pub fn is_trigger(trigger: &str) -> bool {
    is_event_kind(trigger)
        || HOST_TRIGGERS.contains(&trigger)
        || ["segment.entered:", "segment.left:"].iter().any(|prefix| {
            trigger
                .strip_prefix(prefix)
                .is_some_and(|name| !name.is_empty() && name.len() <= 64 && !name.chars().any(char::is_control))
        })
}

/// A manifest that could not be parsed or is invalid.
#[derive(Debug, thiserror::Error)]
pub enum ManifestError {
    /// Not valid TOML for a manifest.
    #[error("manifest: {0}")]
    Toml(#[from] toml::de::Error),
    /// Not valid JSON for a manifest.
    #[error("manifest: {0}")]
    Json(#[from] serde_json::Error),
    /// Parsed, but a field is invalid.
    #[error("manifest: {0}")]
    Invalid(String),
}

impl Manifest {
    /// Parse and validate a TOML manifest.
    pub fn from_toml(text: &str) -> Result<Self, ManifestError> {
        let manifest: Self = toml::from_str(text)?;
        manifest.validate()?;
        Ok(manifest)
    }

    /// Parse and validate a JSON manifest.
    pub fn from_json(text: &str) -> Result<Self, ManifestError> {
        let manifest: Self = serde_json::from_str(text)?;
        manifest.validate()?;
        Ok(manifest)
    }

    /// A manifest for `world` requesting nothing; handy in tests.
    pub fn new(name: impl Into<String>, version: impl Into<String>, world: World) -> Self {
        Self {
            name: name.into(),
            version: version.into(),
            world,
            imports: Vec::new(),
            config_schema: None,
            description: None,
            triggers: Vec::new(),
        }
    }

    /// This manifest also requesting `capability`.
    #[must_use]
    pub fn requesting(mut self, capability: Capability) -> Self {
        if !self.imports.contains(&capability) {
            self.imports.push(capability);
        }
        self
    }

    /// Check name and version syntax, and that the config schema is an object.
    pub fn validate(&self) -> Result<(), ManifestError> {
        let name_ok = !self.name.is_empty()
            && self.name.len() <= 64
            && self.name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
            && !self.name.starts_with('-');
        if !name_ok {
            return Err(ManifestError::Invalid(format!(
                "name `{}` must be 1-64 lower-case letters, digits or `-`",
                self.name
            )));
        }
        let parts: Vec<&str> = self.version.split('.').collect();
        let version_ok =
            parts.len() == 3 && parts.iter().all(|p| !p.is_empty() && p.chars().all(|c| c.is_ascii_digit()));
        if !version_ok {
            return Err(ManifestError::Invalid(format!("version `{}` must be MAJOR.MINOR.PATCH", self.version)));
        }
        if let Some(schema) = &self.config_schema
            && !schema.is_object()
        {
            return Err(ManifestError::Invalid("config-schema must be a JSON schema object".into()));
        }
        if !self.triggers.is_empty() && self.world != World::Automation {
            return Err(ManifestError::Invalid(format!(
                "triggers are for automation plugins, not {} ones",
                self.world
            )));
        }
        if let Some(unknown) = self.triggers.iter().find(|t| !is_trigger(t)) {
            return Err(ManifestError::Invalid(format!(
                "unknown trigger `{unknown}`: use an event kind ({}, or custom:<name>), {}, \
                 segment.entered:<name> or segment.left:<name>",
                EVENT_KINDS.join(", "),
                HOST_TRIGGERS.join(", ")
            )));
        }
        Ok(())
    }

    /// `name@version`, the label errors and logs use.
    pub fn label(&self) -> String {
        format!("{}@{}", self.name, self.version)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_toml_with_schema() {
        let manifest = Manifest::from_toml(
            r#"
            name = "vip"
            version = "1.2.0"
            world = "segmenter"
            imports = ["log", "config"]
            [config-schema]
            type = "object"
            "#,
        )
        .expect("valid manifest");
        assert_eq!(manifest.world, World::Segmenter);
        assert_eq!(manifest.imports, [Capability::Log, Capability::Config]);
        assert_eq!(manifest.label(), "vip@1.2.0");
        assert!(manifest.config_schema.is_some());
    }

    #[test]
    fn automation_triggers_are_checked() {
        let with = |world: &str, trigger: &str| {
            Manifest::from_json(&format!(
                r#"{{"name":"j","version":"0.1.0","world":"{world}","triggers":["{trigger}"]}}"#
            ))
        };
        for trigger in ["add_to_cart", "custom:newsletter_signup", "order.placed", "segment.entered:at-risk"] {
            assert!(with("automation", trigger).is_ok(), "refused {trigger}");
        }
        for trigger in ["checkout", "order.shipped", "segment.entered:", "custom:"] {
            let error = with("automation", trigger).expect_err(trigger).to_string();
            assert!(error.contains(&format!("unknown trigger `{trigger}`")), "{error}");
        }
        let error = with("loyalty", "order.placed").expect_err("loyalty with triggers").to_string();
        assert!(error.contains("triggers are for automation plugins"), "{error}");
    }

    #[test]
    fn parses_json() {
        let manifest = Manifest::from_json(r#"{"name":"pts","version":"0.1.0","world":"loyalty","imports":["kv"]}"#)
            .expect("valid manifest");
        assert_eq!(manifest.world, World::Loyalty);
    }

    #[test]
    fn refuses_bad_names_versions_worlds_and_imports() {
        for text in [
            r#"name = "Bad Name"
version = "1.0.0"
world = "segmenter""#,
            r#"name = "ok"
version = "1.0"
world = "segmenter""#,
            r#"name = "ok"
version = "1.0.0"
world = "mailer""#,
            r#"name = "ok"
version = "1.0.0"
world = "segmenter"
imports = ["network"]"#,
        ] {
            assert!(Manifest::from_toml(text).is_err(), "accepted: {text}");
        }
    }
}
