//! A segmenter built straight from `wit/` with wit-bindgen, without
//! `patron-sdk`: the contract is plain component-model WIT, so any toolchain
//! that targets components can implement it. Segments: `has-email`, `tagged`.

wit_bindgen::generate!({
    path: "../../../wit",
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
