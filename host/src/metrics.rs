//! Prometheus counters and histograms, rendered as text at `/metrics`.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Upper bounds of the request duration histogram, in seconds.
const BUCKETS: [f64; 10] = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0, 5.0];

#[derive(Default)]
struct Histogram {
    buckets: [u64; BUCKETS.len()],
    count: u64,
    sum: f64,
}

/// The host's metrics.
#[derive(Default)]
pub struct Metrics {
    /// (route, method, status) → count and duration histogram.
    requests: Mutex<BTreeMap<(String, String, u16), Histogram>>,
    events_accepted: AtomicU64,
    events_duplicate: AtomicU64,
    events_rejected: AtomicU64,
}

impl Metrics {
    pub fn observe_request(&self, route: &str, method: &str, status: u16, elapsed: Duration) {
        let Ok(mut requests) = self.requests.lock() else { return };
        let histogram = requests.entry((route.to_owned(), method.to_owned(), status)).or_default();
        let seconds = elapsed.as_secs_f64();
        for (bucket, bound) in histogram.buckets.iter_mut().zip(BUCKETS) {
            if seconds <= bound {
                *bucket += 1;
            }
        }
        histogram.count += 1;
        histogram.sum += seconds;
    }

    pub fn add_events(&self, accepted: u64, duplicate: u64, rejected: u64) {
        self.events_accepted.fetch_add(accepted, Ordering::Relaxed);
        self.events_duplicate.fetch_add(duplicate, Ordering::Relaxed);
        self.events_rejected.fetch_add(rejected, Ordering::Relaxed);
    }

    pub fn render(&self) -> String {
        let mut out = String::new();
        out.push_str("# HELP patron_events_total Storefront events by outcome.\n# TYPE patron_events_total counter\n");
        for (outcome, counter) in [
            ("accepted", &self.events_accepted),
            ("duplicate", &self.events_duplicate),
            ("rejected", &self.events_rejected),
        ] {
            let _ = writeln!(out, "patron_events_total{{outcome=\"{outcome}\"}} {}", counter.load(Ordering::Relaxed));
        }
        out.push_str(
            "# HELP patron_http_request_duration_seconds HTTP requests by route.\n\
             # TYPE patron_http_request_duration_seconds histogram\n",
        );
        if let Ok(requests) = self.requests.lock() {
            for ((route, method, status), h) in requests.iter() {
                let labels = format!("route=\"{route}\",method=\"{method}\",status=\"{status}\"");
                for (count, bound) in h.buckets.iter().zip(BUCKETS) {
                    let _ =
                        writeln!(out, "patron_http_request_duration_seconds_bucket{{{labels},le=\"{bound}\"}} {count}");
                }
                let _ =
                    writeln!(out, "patron_http_request_duration_seconds_bucket{{{labels},le=\"+Inf\"}} {}", h.count);
                let _ = writeln!(out, "patron_http_request_duration_seconds_sum{{{labels}}} {}", h.sum);
                let _ = writeln!(out, "patron_http_request_duration_seconds_count{{{labels}}} {}", h.count);
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_cumulative_buckets() {
        let metrics = Metrics::default();
        metrics.observe_request("/v1/events", "POST", 200, Duration::from_millis(3));
        metrics.add_events(2, 1, 0);
        let text = metrics.render();
        assert!(text.contains("patron_events_total{outcome=\"accepted\"} 2"));
        assert!(text.contains("route=\"/v1/events\",method=\"POST\",status=\"200\",le=\"0.0025\"} 0"));
        assert!(text.contains("route=\"/v1/events\",method=\"POST\",status=\"200\",le=\"0.005\"} 1"));
    }
}
