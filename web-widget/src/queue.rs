//! The bounded event queue: batches of at most [`MAX_BATCH`] events, retried with
//! backoff until the host answers for each event id, and kept in `localStorage` (when
//! consent allows) so that events survive going offline and leaving the page.
//!
//! Tabs never share a storage key: each page writes its waiting events, with a
//! heartbeat time, under its own key `patron_q.<page id>`, and only that page writes
//! it, so no tab can overwrite another's events. A page that went away leaves its key
//! behind; a live page of the same store adopts it (moves its events into its own key,
//! then removes it). Where the browser has Web Locks, every page holds a lock named
//! after its key for its whole life, and a key is adopted only under that lock, taken
//! with `ifAvailable` — so only once its page is gone, and by one page at a time.
//! Without Web Locks a key is adopted once its heartbeat is [`STALE_MS`] old. Either
//! way an event may be sent twice (a request whose answer was lost; a throttled
//! background tab taken for dead), never lost: the host stores each event id once.
//!
//! If `localStorage` is missing or refuses a write (quota full, a page that replaced
//! `setItem`), the page's queue lives on in memory: one warning on the console, no
//! exception into the page, and the events still go out while the page is open.

use crate::prelude::*;
use js_sys::{Array, Function, Promise};
use wasm_bindgen::{JsCast, JsValue};

use crate::callback;
use crate::collection::Event;
use crate::consent::storage;
use crate::json;

/// The host accepts at most this many events in one request.
pub(crate) const MAX_BATCH: usize = 100;
/// Beyond this many waiting events the oldest are dropped.
const MAX_QUEUED: usize = 200;
/// Prefix of each page's `localStorage` key: `{"t": heartbeat ms, "e": [events]}`.
const KEY_PREFIX: &str = "patron_q.";
/// The single key of earlier versions (a bare JSON array), adopted like a page's key.
const LEGACY_KEY: &str = "patron_queue";
/// Without Web Locks, a key whose heartbeat is this old belongs to a page that is gone.
const STALE_MS: f64 = 10_000.0;
/// Longest wait between retries after failures, in milliseconds.
const MAX_BACKOFF_MS: f64 = 60_000.0;

/// Events waiting for the host's answer.
#[derive(Debug, Default)]
pub(crate) struct Queue {
    events: Vec<Event>,
    /// Ids of the events in a request that has not been answered yet.
    sending: Vec<String>,
    failures: u32,
    retry_at_ms: f64,
    /// This page's key, `patron_q.<page id>`.
    key: String,
    /// `localStorage` failed: the queue lives in memory for the rest of the page.
    memory_only: bool,
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
    /// An empty queue for this page, stored under `patron_q.<page_id>`.
    pub(crate) fn new(page_id: &str) -> Self {
        let mut key = String::from(KEY_PREFIX);
        key.push_str(page_id);
        Self { key, ..Self::default() }
    }

    /// Adds an event, dropping the oldest past the bound.
    pub(crate) fn push(&mut self, event: Event) {
        if !self.events.iter().any(|e| e.id == event.id) {
            self.events.push(event);
        }
        self.trim();
    }

    /// Forgets every waiting event, here and every page's in `localStorage`.
    pub(crate) fn clear(&mut self) {
        self.events.clear();
        self.sending.clear();
        if let Some(s) = storage() {
            for key in queue_keys(&s) {
                let _ = s.remove_item(&key);
            }
        }
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

    /// Writes the waiting events and a heartbeat under this page's key (call only when
    /// consent allows). Returns whether they are in `localStorage`.
    pub(crate) fn persist(&mut self, now_ms: f64) -> bool {
        if self.memory_only {
            return false;
        }
        let Some(s) = storage() else { return self.fall_back_to_memory() };
        let written = if self.events.is_empty() {
            s.remove_item(&self.key)
        } else {
            s.set_item(&self.key, &stored_form(now_ms, &self.events))
        };
        written.is_ok() || self.fall_back_to_memory()
    }

    /// `localStorage` is missing or refused a write: say so once, keep events in memory.
    fn fall_back_to_memory(&mut self) -> bool {
        if !self.memory_only {
            self.memory_only = true;
            if let Some(s) = storage() {
                let _ = s.remove_item(&self.key);
            }
            web_sys::console::warn_1(&"Patron: localStorage is unavailable or full; events wait in memory".into());
        }
        false
    }

    /// Keys other pages left that may be adopted now: all of them where Web Locks will
    /// tell whether their page is gone, otherwise those with a stale heartbeat. None
    /// while this page cannot store what it would adopt.
    pub(crate) fn orphans(&self, now_ms: f64, with_locks: bool) -> Vec<String> {
        if self.memory_only {
            return Vec::new();
        }
        let Some(s) = storage() else { return Vec::new() };
        queue_keys(&s)
            .into_iter()
            .filter(|key| *key != self.key)
            .filter(|key| {
                with_locks
                    || key == LEGACY_KEY
                    || s.get_item(key)
                        .ok()
                        .flatten()
                        .and_then(|text| json::parse(&text))
                        .is_none_or(|stored| json::number(&stored, "t").is_none_or(|t| is_stale(t, now_ms)))
            })
            .collect()
    }

    /// Moves the events stored under another page's `key` into this page's queue: they
    /// are written under this page's key before `key` is removed, so a page dying in
    /// between leaves them twice (sent twice, stored once), never nowhere.
    pub(crate) fn adopt(&mut self, key: &str, now_ms: f64) {
        let Some(s) = storage() else { return };
        let Some(text) = s.get_item(key).ok().flatten() else { return };
        let stored = json::parse(&text).unwrap_or(JsValue::NULL);
        let list = if Array::is_array(&stored) { stored } else { json::get(&stored, "e") };
        if Array::is_array(&list) {
            let mut adopted: Vec<Event> = Array::from(&list)
                .iter()
                .filter_map(|e| Some(Event { id: json::string(&e, "id")?, json: json::stringify(&e)? }))
                .filter(|e| !self.events.iter().any(|mine| mine.id == e.id))
                .collect();
            // Older than this page's: first in line, and first dropped past the bound.
            adopted.append(&mut self.events);
            self.events = adopted;
            self.trim();
        }
        if self.persist(now_ms) {
            let _ = s.remove_item(key);
        }
    }

    /// The next batch to send, unless one is in flight or a retry is not yet due.
    pub(crate) fn next_batch(&mut self, now_ms: f64) -> Option<Vec<Event>> {
        if !self.sending.is_empty() || now_ms < self.retry_at_ms {
            return None;
        }
        self.take_unsent(MAX_BATCH)
    }

    /// Every event not already in a request, in batches, for sending at once as the
    /// page is hidden or goes away (they stay queued until answered).
    pub(crate) fn unsent_batches(&mut self) -> Vec<Vec<Event>> {
        let mut batches = Vec::new();
        while let Some(batch) = self.take_unsent(MAX_BATCH) {
            batches.push(batch);
        }
        batches
    }

    /// Up to `n` events not in a request, now marked as sent.
    fn take_unsent(&mut self, n: usize) -> Option<Vec<Event>> {
        let batch: Vec<Event> = self.events.iter().filter(|e| !self.sending.contains(&e.id)).take(n).cloned().collect();
        if batch.is_empty() {
            return None;
        }
        self.sending.extend(batch.iter().map(|e| e.id.clone()));
        Some(batch)
    }

    /// Records how the request for `batch` ended.
    pub(crate) fn finish(&mut self, batch: &[Event], outcome: Outcome, now_ms: f64) {
        self.sending.retain(|id| !batch.iter().any(|e| e.id == *id));
        match outcome {
            Outcome::Answered(ids) | Outcome::Refused(ids) => {
                self.events.retain(|e| !ids.contains(&e.id));
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

    /// Sends again at once (the browser came back online).
    pub(crate) fn retry_now(&mut self) {
        self.retry_at_ms = 0.0;
    }

    /// This page's key, which is also the name of its Web Lock.
    pub(crate) fn key(&self) -> &str {
        &self.key
    }
}

fn is_stale(heartbeat_ms: f64, now_ms: f64) -> bool {
    now_ms - heartbeat_ms > STALE_MS
}

/// `{"t": now, "e": [events]}`.
fn stored_form(now_ms: f64, events: &[Event]) -> String {
    let mut out = String::from("{\"t\":");
    out.push_str(&json::stringify(&JsValue::from_f64(now_ms)).unwrap_or_default());
    out.push_str(",\"e\":");
    out.push_str(&array(events));
    out.push('}');
    out
}

/// Every queue key in `localStorage`: each page's and the legacy one.
fn queue_keys(s: &web_sys::Storage) -> Vec<String> {
    let n = s.length().unwrap_or(0);
    (0..n).filter_map(|i| s.key(i).ok().flatten()).filter(|k| k.starts_with(KEY_PREFIX) || k == LEGACY_KEY).collect()
}

/// `navigator.locks`, where the browser has Web Locks (secure contexts).
pub(crate) fn locks() -> Option<JsValue> {
    let locks = json::get(&web_sys::window()?.navigator(), "locks");
    json::get(&locks, "request").is_function().then_some(locks)
}

/// Holds the Web Lock `name` until the page goes away: its callback returns a promise
/// that never settles (`Promise.resolve` bound to `Promise.race([])`).
pub(crate) fn hold_lock(locks: &JsValue, name: &str) {
    let Some(window) = web_sys::window() else { return };
    let promise = json::get(&window, "Promise");
    // Not `json::get`, which reads objects only: `Promise` is a function.
    let resolve = js_sys::Reflect::get(&promise, &"resolve".into()).unwrap_or(JsValue::UNDEFINED);
    let Ok(resolve) = resolve.dyn_into::<Function>() else { return };
    let never: JsValue = Promise::race(&Array::new().into()).into();
    let hold = resolve.bind1(&promise, &never);
    request_lock(locks, name, &js_sys::Object::new(), hold.as_ref());
}

/// Calls `f(true)` holding the Web Lock `name` if no one holds it, else `f(false)`.
pub(crate) fn if_lock_free(locks: &JsValue, name: &str, f: Box<dyn FnOnce(bool)>) {
    let options = js_sys::Object::new();
    let _ = js_sys::Reflect::set(&options, &"ifAvailable".into(), &JsValue::TRUE);
    let callback = callback::once(Box::new(move |lock: JsValue| f(json::present(&lock))));
    request_lock(locks, name, &options, &callback);
}

fn request_lock(locks: &JsValue, name: &str, options: &js_sys::Object, callback: &JsValue) {
    let Ok(request) = json::get(locks, "request").dyn_into::<Function>() else { return };
    let result: Result<JsValue, JsValue> = request.call3(locks, &name.into(), options, callback);
    // A refused request rejects (e.g. a page without a usable origin): nothing to do.
    if let Ok(promise) = result
        && let Ok(catch) = json::get(&promise, "catch").dyn_into::<Function>()
    {
        let _ = catch.call1(&promise, &callback::once(Box::new(|_| {})));
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

    fn ids(batch: &[Event]) -> Vec<String> {
        batch.iter().map(|e| e.id.clone()).collect()
    }

    #[test]
    fn bounded_to_the_newest_events_and_each_id_once() {
        let mut q = Queue::new("p");
        for i in 0..MAX_QUEUED + 5 {
            q.push(event(&i.to_string()));
        }
        q.push(event("199"));
        assert_eq!(q.events.len(), MAX_QUEUED);
        assert_eq!(q.events[0].id, "5");
        assert_eq!(q.key(), "patron_q.p");
    }

    #[test]
    fn one_batch_in_flight_and_backoff_after_failure() {
        let mut q = Queue::new("p");
        for i in 0..150 {
            q.push(event(&i.to_string()));
        }
        let batch = q.next_batch(0.0).expect("a batch");
        assert_eq!(batch.len(), MAX_BATCH);
        assert!(q.next_batch(0.0).is_none(), "one request at a time");
        q.finish(&batch, Outcome::Failed, 0.0);
        assert_eq!(q.events.len(), 150, "a failed batch stays queued");
        assert!(q.next_batch(1.0).is_none(), "backing off");
        let batch = q.next_batch(10_000.0).expect("retry");
        q.finish(&batch, Outcome::Answered(ids(&batch)), 10_000.0);
        assert_eq!(q.events.len(), 50);
        assert_eq!(array(&q.events[..2]), "[{\"id\":\"100\"},{\"id\":\"101\"}]");
    }

    #[test]
    fn events_leave_only_when_answered() {
        let mut q = Queue::new("p");
        for i in 0..120 {
            q.push(event(&i.to_string()));
        }
        let in_flight = q.next_batch(0.0).expect("a batch");
        let hidden = q.unsent_batches();
        assert_eq!(hidden.iter().map(Vec::len).collect::<Vec<_>>(), [20], "what is in flight is not sent again");
        assert!(q.unsent_batches().is_empty());
        // The page-hide request is answered for half its events only.
        let half: Vec<String> = ids(&hidden[0]).into_iter().take(10).collect();
        q.finish(&hidden[0], Outcome::Answered(half), 0.0);
        q.finish(&in_flight, Outcome::Failed, 0.0);
        assert_eq!(q.events.len(), 110, "unanswered events stay");
        q.retry_now();
        assert_eq!(q.next_batch(0.0).map(|b| b.len()), Some(MAX_BATCH));
    }

    #[test]
    fn heartbeats_go_stale() {
        assert!(!is_stale(1_000.0, 1_000.0 + STALE_MS));
        assert!(is_stale(1_000.0, 1_001.0 + STALE_MS));
    }
}
