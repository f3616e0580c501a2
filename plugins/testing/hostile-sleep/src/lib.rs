//! Sleeps for an hour: waits inside a host call (`wasi:clocks` + `wasi:io/poll`), where
//! no wasm runs to notice a deadline.

use std::time::Duration;

struct Plugin;

impl patron_sdk::Segmenter for Plugin {
    fn segment(profiles: Vec<patron_sdk::Profile>) -> patron_sdk::Result<Vec<Vec<String>>> {
        std::thread::sleep(Duration::from_secs(3600));
        Ok(profiles.iter().map(|_| vec!["woke".to_owned()]).collect())
    }
}

patron_sdk::export!(segmenter: Plugin);
