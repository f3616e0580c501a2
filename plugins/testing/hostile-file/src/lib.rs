//! Tries to read a host file; answers with its content if that ever works.

struct Plugin;

impl patron_sdk::Segmenter for Plugin {
    fn segment(_: Vec<patron_sdk::Profile>) -> patron_sdk::Result<Vec<Vec<String>>> {
        match std::fs::read_to_string("/etc/passwd") {
            Ok(content) => Ok(vec![vec![content]]),
            Err(e) => Err(patron_sdk::Error::new("io", e.to_string())),
        }
    }
}

patron_sdk::export!(segmenter: Plugin);
