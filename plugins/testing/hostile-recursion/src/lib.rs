//! Recurses until the stack is exhausted.

struct Plugin;

#[allow(unconditional_recursion, reason = "unbounded recursion is the point")]
fn depth(n: u64) -> u64 {
    // `black_box` on both sides keeps this from becoming a loop.
    std::hint::black_box(depth(std::hint::black_box(n + 1))) + 1
}

impl patron_sdk::Segmenter for Plugin {
    fn segment(_: Vec<patron_sdk::Profile>) -> patron_sdk::Result<Vec<Vec<String>>> {
        Ok(vec![vec![depth(0).to_string()]])
    }
}

patron_sdk::export!(segmenter: Plugin);
