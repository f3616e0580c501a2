//! Answers every profile with 100 000 segments of 100 bytes (~10 MiB each).

struct Plugin;

impl patron_sdk::Segmenter for Plugin {
    fn segments_of(_: &patron_sdk::Profile) -> patron_sdk::Result<Vec<String>> {
        Ok(vec!["x".repeat(100); 100_000])
    }
}

patron_sdk::export!(segmenter: Plugin);
