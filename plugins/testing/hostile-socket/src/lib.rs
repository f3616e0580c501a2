//! Tries to open a TCP connection; answers `connected` if that ever works.

struct Plugin;

impl patron_sdk::Segmenter for Plugin {
    fn segment(_: Vec<patron_sdk::Profile>) -> patron_sdk::Result<Vec<Vec<String>>> {
        match std::net::TcpStream::connect("127.0.0.1:80") {
            Ok(_) => Ok(vec![vec!["connected".to_owned()]]),
            Err(e) => Err(patron_sdk::Error::new("io", e.to_string())),
        }
    }
}

patron_sdk::export!(segmenter: Plugin);
