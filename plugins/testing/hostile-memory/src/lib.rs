//! Allocates 1 MiB blocks until memory runs out: the runtime must stop it at its limit.

struct Plugin;

impl patron_sdk::Segmenter for Plugin {
    fn segment(_: Vec<patron_sdk::Profile>) -> patron_sdk::Result<Vec<Vec<String>>> {
        let mut hoard: Vec<Vec<u8>> = Vec::new();
        loop {
            hoard.push(vec![1u8; 1 << 20]);
            std::hint::black_box(&hoard);
        }
    }
}

patron_sdk::export!(segmenter: Plugin);
