//! A segmenter built straight from the contract with wit-bindgen, without
//! `patron-sdk`: the contract is plain component-model WIT, so any toolchain
//! that targets components can implement it. Built against the frozen 0.1.0
//! contract (`wit/v0.1.0/`), so tests also show that components built for an
//! older 0.1.x keep loading. Segments: `has-email`, `tagged`.

wit_bindgen::generate!({
    path: "../../../wit/v0.1.0",
    world: "segmenter",
});

use exports::patron::plugin::segmentation::Guest;
use patron::plugin::types::{PluginError, Profile};

struct Raw;

impl Guest for Raw {
    fn segment(profiles: Vec<Profile>) -> Result<Vec<Vec<String>>, PluginError> {
        Ok(profiles
            .iter()
            .map(|p| {
                let mut out = Vec::new();
                if p.email.is_some() {
                    out.push("has-email".to_owned());
                }
                if !p.tags.is_empty() {
                    out.push("tagged".to_owned());
                }
                out
            })
            .collect())
    }
}

export!(Raw);
