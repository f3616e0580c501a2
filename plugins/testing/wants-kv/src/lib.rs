//! Stores `traits.bytes` bytes under each profile's id; answers `stored`, or
//! the kv error. Needs the `kv` grant.

struct Plugin;

impl patron_sdk::Segmenter for Plugin {
    fn segments_of(profile: &patron_sdk::Profile) -> patron_sdk::Result<Vec<String>> {
        let bytes = profile.traits_json()["bytes"].as_u64().unwrap_or(0);
        let len = usize::try_from(bytes).map_err(|e| patron_sdk::Error::new("input", e.to_string()))?;
        patron_sdk::kv::set(&profile.id, &vec![0u8; len])?;
        Ok(vec!["stored".to_owned()])
    }
}

patron_sdk::export!(segmenter: Plugin);
