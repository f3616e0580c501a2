//! Panics with a recognisable message.

struct Plugin;

impl patron_sdk::Segmenter for Plugin {
    fn segment(profiles: Vec<patron_sdk::Profile>) -> patron_sdk::Result<Vec<Vec<String>>> {
        panic!("hostile-panic refuses {} profiles", profiles.len());
    }
}

patron_sdk::export!(segmenter: Plugin);
