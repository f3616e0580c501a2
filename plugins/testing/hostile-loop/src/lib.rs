//! Never returns: the runtime must time it out.

struct Plugin;

impl patron_sdk::Segmenter for Plugin {
    fn segment(_: Vec<patron_sdk::Profile>) -> patron_sdk::Result<Vec<Vec<String>>> {
        let mut n = 0u64;
        loop {
            n = std::hint::black_box(n.wrapping_add(1));
        }
    }
}

patron_sdk::export!(segmenter: Plugin);
