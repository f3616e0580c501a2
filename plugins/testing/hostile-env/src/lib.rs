//! Answers with every environment variable and argument it can see.

struct Plugin;

impl patron_sdk::Segmenter for Plugin {
    fn segment(_: Vec<patron_sdk::Profile>) -> patron_sdk::Result<Vec<Vec<String>>> {
        let seen = std::env::vars().map(|(k, v)| format!("{k}={v}")).chain(std::env::args()).collect();
        Ok(vec![seen])
    }
}

patron_sdk::export!(segmenter: Plugin);
