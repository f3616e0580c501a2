//! The bounded event queue: batches of at most [`MAX_BATCH`] events, retried with
//! backoff until the host answers for each event id, kept in `localStorage` (when
//! consent allows) so that events survive going offline and leaving the page.

use crate::prelude::*;
use js_sys::Array;
use wasm_bindgen::JsValue;

use crate::collection::Event;
use crate::consent::storage;
use crate::json;

/// The host accepts at most this many events in one request.
pub(crate) const MAX_BATCH: usize = 100;
/// Beyond this many waiting events the oldest are dropped.
const MAX_QUEUED: usize = 200;
/// `localStorage` key of the waiting events, a JSON array.
const STORAGE_KEY: &str = "patron_queue";
/// Longest wait between retries after failures, in milliseconds.
const MAX_BACKOFF_MS: f64 = 60_000.0;

/// Events waiting for the host's answer.
#[derive(Debug, Default)]
pub(crate) struct Queue {
    events: Vec<Event>,
    in_flight: bool,
    failures: u32,
    retry_at_ms: f64,
}

/// How a delivery attempt ended.
pub(crate) enum Outcome {
    /// The host answered for these event ids (accepted, duplicate or rejected alike).
    Answered(Vec<String>),
    /// The host refused the whole batch for good (a 4xx other than 408 / 429).
    Refused(Vec<String>),
    /// The host could not be reached or failed; try again later.
    Failed,
}

impl Queue {
    /// Adds an event, dropping the oldest past the bound.
    pub(crate) fn push(&mut self, event: Event) {
        self.events.push(event);
        self.trim();
    }

    /// Forgets every waiting event, here and in `localStorage`.
    pub(crate) fn clear(&mut self) {
        self.events.clear();
        if let Some(s) = storage() {
            let _ = s.remove_item(STORAGE_KEY);
        }
    }

    /// Puts events left in `localStorage` by an earlier page before this page's.
    pub(crate) fn restore(&mut self) {
        let Some(text) = storage().and_then(|s| s.get_item(STORAGE_KEY).ok().flatten()) else { return };
        let Some(stored) = json::parse(&text).filter(Array::is_array) else { return };
        let mut events: Vec<Event> = Array::from(&stored)
            .iter()
            .filter_map(|e| Some(Event { id: json::string(&e, "id")?, json: json::stringify(&e)? }))
            .filter(|e| !self.events.iter().any(|mine| mine.id == e.id))
            .collect();
        events.append(&mut self.events);
        self.events = events;
        self.trim();
    }

    /// Drops the oldest events beyond [`MAX_QUEUED`] (with `retain`, which cannot panic,
    /// where `drain` would bring panic formatting into the module).
    fn trim(&mut self) {
        let mut excess = self.events.len().saturating_sub(MAX_QUEUED);
        self.events.retain(|_| {
            let keep = excess == 0;
            excess = excess.saturating_sub(1);
            keep
        });
    }

    /// Writes the waiting events to `localStorage` (call only when consent allows).
    pub(crate) fn persist(&self) {
        let Some(s) = storage() else { return };
        if self.events.is_empty() {
            let _ = s.remove_item(STORAGE_KEY);
        } else {
            let _ = s.set_item(STORAGE_KEY, &array(&self.events));
        }
    }

    /// The next batch to send, unless one is in flight or a retry is not yet due.
    pub(crate) fn next_batch(&mut self, now_ms: f64) -> Option<Vec<Event>> {
        if self.in_flight || self.events.is_empty() || now_ms < self.retry_at_ms {
            return None;
        }
        self.in_flight = true;
        Some(self.events.iter().take(MAX_BATCH).cloned().collect())
    }

    /// Every waiting event in batches, for `sendBeacon` as the page goes away.
    pub(crate) fn all_batches(&self) -> Vec<Vec<Event>> {
        self.events.chunks(MAX_BATCH).map(<[Event]>::to_vec).collect()
    }

    /// Records how the batch in flight ended.
    pub(crate) fn finish(&mut self, outcome: Outcome, now_ms: f64) {
        self.in_flight = false;
        match outcome {
            Outcome::Answered(ids) | Outcome::Refused(ids) => {
                self.remove(&ids);
                self.failures = 0;
                self.retry_at_ms = 0.0;
            }
            Outcome::Failed => {
                self.failures = self.failures.saturating_add(1);
                let backoff = 1000.0 * f64::from(1u32 << self.failures.min(6));
                self.retry_at_ms = now_ms + backoff.min(MAX_BACKOFF_MS);
            }
        }
    }

    /// Drops the events with these ids.
    pub(crate) fn remove(&mut self, ids: &[String]) {
        self.events.retain(|e| !ids.contains(&e.id));
    }
}

/// Events as a JSON array.
pub(crate) fn array(events: &[Event]) -> String {
    let mut out = String::with_capacity(events.iter().map(|e| e.json.len() + 1).sum::<usize>() + 2);
    out.push('[');
    for (i, event) in events.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(&event.json);
    }
    out.push(']');
    out
}

/// The ids the host answered for, from a `POST /v1/events` response body; every id
/// of the batch if the body does not list results.
pub(crate) fn answered_ids(body: &JsValue, batch: &[Event]) -> Vec<String> {
    let results = json::list(body, "results");
    if results.is_empty() {
        batch.iter().map(|e| e.id.clone()).collect()
    } else {
        results.iter().filter_map(|r| json::string(r, "id")).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(id: &str) -> Event {
        Event { id: id.into(), json: format!("{{\"id\":\"{id}\"}}") }
    }

    #[test]
    fn bounded_to_the_newest_events() {
        let mut q = Queue::default();
        for i in 0..MAX_QUEUED + 5 {
            q.push(event(&i.to_string()));
        }
        assert_eq!(q.events.len(), MAX_QUEUED);
        assert_eq!(q.events[0].id, "5");
    }

    #[test]
    fn one_batch_in_flight_and_backoff_after_failure() {
        let mut q = Queue::default();
        for i in 0..150 {
            q.push(event(&i.to_string()));
        }
        let batch = q.next_batch(0.0).expect("a batch");
        assert_eq!(batch.len(), MAX_BATCH);
        assert!(q.next_batch(0.0).is_none(), "one request at a time");
        q.finish(Outcome::Failed, 0.0);
        assert!(q.next_batch(1.0).is_none(), "backing off");
        let batch = q.next_batch(10_000.0).expect("retry");
        let ids = batch.iter().map(|e| e.id.clone()).collect();
        q.finish(Outcome::Answered(ids), 10_000.0);
        assert_eq!(q.events.len(), 50);
        assert_eq!(array(&q.events[..2]), "[{\"id\":\"100\"},{\"id\":\"101\"}]");
    }
}
