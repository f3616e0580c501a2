//! The running widget: its configuration and state, and what happens on start, on a
//! timer tick, when the page goes away, on every call of the JS API and as
//! recommendation strips come into view.
//!
//! State lives in one page-wide [`Widget`] cell; browser callbacks borrow it briefly and
//! never while a request is in flight (replies arrive in callbacks).

use crate::prelude::*;
use core::cell::RefCell;

use js_sys::Date;
use wasm_bindgen::{JsCast, JsValue};
use web_sys::Element;

use crate::api::{self, Endpoint};
use crate::callback::{self, listen};
use crate::collection::{self, Event};
use crate::consent::{self, Consent, ShopPolicy};
use crate::i18n;
use crate::json;
use crate::panel::{self, Notice, Panel};
use crate::queue::{self, Outcome, Queue};
use crate::recs;
use crate::strip::{self, Strips};

/// How often waiting events are sent, in milliseconds.
const FLUSH_EVERY_MS: i32 = 2000;
/// `localStorage` key of the anonymous id (kept only when consent allows).
const ANONYMOUS_ID_KEY: &str = "patron_aid";

/// The widget on this page.
struct Widget {
    endpoint: Endpoint,
    /// The signed-in shopper: customer id and the store's token for it.
    customer: Option<(String, String)>,
    anonymous_id: String,
    anonymous_id_stored: bool,
    /// Whether `POST /v1/identify` is still owed for `customer`.
    identify_pending: bool,
    consent: Consent,
    /// A `POST /v1/consent` body whose request has not settled yet; events wait for it.
    consent_post: Option<String>,
    consent_sending: bool,
    /// The snippet's `data-consent-version`: the version of the banner's text.
    consent_version: Option<String>,
    queue: Queue,
    /// `navigator.locks`, where the browser has Web Locks.
    locks: Option<JsValue>,
    /// The last `GET /v1/widget/state` body; `null` until one arrived.
    state: JsValue,
    state_loading: bool,
    state_retry_at_ms: f64,
    join_url: Option<String>,
    panel: Option<Panel>,
    impressions_sent: bool,
    strips: Option<Strips>,
}

impl Widget {
    /// The signed-in shopper as query parameters (absent for an anonymous one).
    fn customer_params(&self) -> [(&'static str, Option<&str>); 2] {
        let (id, token) = match &self.customer {
            Some((id, token)) => (Some(id.as_str()), Some(token.as_str())),
            None => (None, None),
        };
        [("customer_id", id), ("customer_token", token)]
    }
}

/// The one widget of the page.
#[cfg(all(target_arch = "wasm32", not(target_feature = "atomics")))]
static WIDGET: Global = Global(RefCell::new(None));

/// A `static` home for the widget in the `no_std` build, which has no `thread_local!`.
#[cfg(all(target_arch = "wasm32", not(target_feature = "atomics")))]
struct Global(RefCell<Option<Widget>>);

// SAFETY: without the `atomics` target feature a wasm32 module has exactly one thread
// (it cannot share its memory), so the cell is never reached from two threads.
#[cfg(all(target_arch = "wasm32", not(target_feature = "atomics")))]
#[allow(unsafe_code)]
unsafe impl Sync for Global {}

#[cfg(not(all(target_arch = "wasm32", not(target_feature = "atomics"))))]
std::thread_local! {
    static WIDGET: RefCell<Option<Widget>> = const { RefCell::new(None) };
}

/// Runs `f` on the widget's cell.
#[cfg(all(target_arch = "wasm32", not(target_feature = "atomics")))]
fn cell<R>(f: impl FnOnce(&RefCell<Option<Widget>>) -> R) -> R {
    f(&WIDGET.0)
}

#[cfg(not(all(target_arch = "wasm32", not(target_feature = "atomics"))))]
fn cell<R>(f: impl FnOnce(&RefCell<Option<Widget>>) -> R) -> R {
    WIDGET.with(f)
}

/// Runs `f` on the widget, if it started.
fn with<R>(f: impl FnOnce(&mut Widget) -> R) -> Option<R> {
    cell(|w| w.try_borrow_mut().ok()?.as_mut().map(f))
}

/// Reads `window.patron._c` (set by the loader) and starts collecting.
pub(crate) fn start() {
    let Some(window) = web_sys::window() else { return };
    let Some(document) = window.document() else { return };
    let config = json::get(&json::get(&window, "patron"), "_c");
    let Some(key) = json::string(&config, "key").filter(|k| !k.is_empty()) else {
        web_sys::console::warn_1(&"Patron: the snippet has no data-key".into());
        return;
    };
    let host = json::string(&config, "host").or_else(|| window.location().origin().ok()).unwrap_or_default();
    let customer = match (json::string(&config, "customer_id"), json::string(&config, "customer_token")) {
        (Some(id), Some(token)) if !id.is_empty() && !token.is_empty() => Some((id, token)),
        _ => None,
    };
    let stored_id = consent::storage().and_then(|s| s.get_item(ANONYMOUS_ID_KEY).ok().flatten());
    let mut queue = Queue::new(&collection::random_id(""));
    for event in collection::on_load(&document) {
        queue.push(event);
    }
    let locks = queue::locks();
    if let Some(locks) = &locks {
        queue::hold_lock(locks, queue.key());
    }
    let widget = Widget {
        endpoint: Endpoint { host, key },
        identify_pending: customer.is_some(),
        customer,
        anonymous_id_stored: stored_id.is_some(),
        anonymous_id: stored_id.unwrap_or_else(|| collection::random_id("a_")),
        consent: Consent::load(),
        consent_post: None,
        consent_sending: false,
        consent_version: json::string(&config, "consent_version"),
        queue,
        locks,
        state: JsValue::NULL,
        state_loading: false,
        state_retry_at_ms: 0.0,
        join_url: json::string(&config, "join_url"),
        panel: None,
        impressions_sent: false,
        strips: None,
    };
    cell(|w| {
        if let Ok(mut w) = w.try_borrow_mut() {
            *w = Some(widget);
        }
    });

    listen(
        &document,
        "click",
        Box::new(|event| {
            if let Some(event) = event.target().and_then(|t| collection::on_click(&t)) {
                enqueue(event);
            }
        }),
    );
    listen(&window, "pagehide", Box::new(|_| flush_now()));
    listen(
        &document,
        "visibilitychange",
        Box::new(|_| {
            if web_sys::window().and_then(|w| w.document()).is_some_and(|d| d.hidden()) {
                flush_now();
            }
        }),
    );
    listen(
        &window,
        "online",
        Box::new(|_| {
            with(|w| w.queue.retry_now());
            tick();
        }),
    );
    let tick = callback::forever(Box::new(|_| tick()));
    let _ = window.set_interval_with_callback_and_timeout_and_arguments_0(&tick, FLUSH_EVERY_MS);

    load_state();
    let handlers =
        strip::Handlers { near: on_strip_near, seen: on_strip_seen, click: on_strip_click, added: find_strips };
    let strips = Strips::watch(&document, &handlers);
    with(|w| w.strips = strips);
    find_strips();
}

/// `patron.track`.
pub(crate) fn track(name: &str, props: &JsValue) {
    enqueue(collection::event(&collection::kind_for(name), props));
}

/// `patron.identify`.
pub(crate) fn identify(customer_id: String, customer_token: String) {
    with(|w| {
        w.customer = Some((customer_id, customer_token));
        w.identify_pending = true;
    });
    apply_consent();
    load_state();
}

/// `patron.consent(granted, {marketing, text_version})`: the answer is kept here and
/// sent to the host (`POST /v1/consent`); events wait until that request has settled —
/// answered in any way (a 404 from a host without the endpoint included) or failed.
pub(crate) fn consent(granted: bool, options: &JsValue) {
    with(|w| {
        w.consent.answer(granted);
        let mut body = String::from("{");
        json::push_member(&mut body, "anonymous_id", &w.anonymous_id);
        if let Some((_, token)) = &w.customer {
            json::push_member(&mut body, "customer_token", token);
        }
        let version = json::string(options, "text_version").or_else(|| w.consent_version.clone());
        json::push_member(&mut body, "text_version", version.as_deref().unwrap_or("unspecified"));
        body.push_str(if granted { "\"tracking\":true" } else { "\"tracking\":false" });
        let marketing = granted && json::get(options, "marketing") == JsValue::TRUE;
        body.push_str(if marketing { ",\"marketing\":true}" } else { ",\"marketing\":false}" });
        w.consent_post = Some(body);
    });
    apply_consent();
    tick();
}

/// Sends the shopper's latest consent answer, once; when that request settles, applies
/// the answer and sends what waited for it.
fn send_consent() {
    let Some((url, body)) = with(|w| {
        if w.consent_sending {
            return None;
        }
        let body = w.consent_post.clone()?;
        w.consent_sending = true;
        Some((w.endpoint.url("/v1/consent", &[]), body))
    })
    .flatten() else {
        return;
    };
    api::post(&url, &body.clone(), move |_| {
        with(|w| {
            w.consent_sending = false;
            if w.consent_post.as_ref() == Some(&body) {
                w.consent_post = None;
            }
        });
        apply_consent();
        tick();
    });
}

/// Queues an event unless the shopper refused tracking.
fn enqueue(event: Event) {
    with(|w| {
        if w.consent.refused() {
            return;
        }
        w.queue.push(event);
        if w.consent.allows_tracking() {
            w.queue.persist(Date::now());
        }
    });
}

/// Acts on the current consent decision: keep ids and events, or forget them.
fn apply_consent() {
    let identify = with(|w| {
        if w.consent.allows_tracking() {
            if !w.anonymous_id_stored
                && let Some(s) = consent::storage()
            {
                w.anonymous_id_stored = s.set_item(ANONYMOUS_ID_KEY, &w.anonymous_id).is_ok();
            }
            w.queue.persist(Date::now());
            if w.identify_pending && w.consent_post.is_none() {
                w.identify_pending = false;
                return w.customer.clone().map(|c| (w.endpoint.clone(), w.anonymous_id.clone(), c));
            }
        } else if w.consent.refused() {
            w.queue.clear();
            if w.anonymous_id_stored {
                if let Some(s) = consent::storage() {
                    let _ = s.remove_item(ANONYMOUS_ID_KEY);
                }
                w.anonymous_id_stored = false;
                w.anonymous_id = collection::random_id("a_");
            }
        }
        None
    })
    .flatten();
    if let Some((endpoint, anonymous_id, (id, token))) = identify {
        let mut body = String::from("{");
        json::push_member(&mut body, "anonymous_id", &anonymous_id);
        json::push_member(&mut body, "customer_id", &id);
        json::push_str(&mut body, "customer_token");
        body.push(':');
        json::push_str(&mut body, &token);
        body.push('}');
        api::post(&endpoint.url("/v1/identify", &[]), &body, |_| {});
    }
}

/// Every [`FLUSH_EVERY_MS`]: retry the state if it never arrived, send the consent
/// answer, adopt the queues of pages that are gone, refresh this page's heartbeat and
/// send a batch.
fn tick() {
    let now = Date::now();
    let retry_state = with(|w| w.state.is_null() && !w.state_loading && now >= w.state_retry_at_ms).unwrap_or(false);
    if retry_state {
        load_state();
    }
    send_consent();
    adopt_orphans(now);
    let batch = with(|w| {
        if !w.consent.allows_tracking() || w.consent_post.is_some() {
            return None;
        }
        w.queue.persist(now);
        if !online() {
            return None;
        }
        let events = w.queue.next_batch(now)?;
        Some((w.endpoint.url("/v1/events", &[]), batch_body(w, &events), events))
    })
    .flatten();
    if let Some((url, body, events)) = batch {
        send_batch(&url, &body, events);
    }
}

/// `POST /v1/events` for `events`; they leave the queue only for the ids the host
/// answers for.
fn send_batch(url: &str, body: &str, events: Vec<Event>) {
    api::post(url, body, move |reply| {
        let outcome = match reply {
            Some(reply) if reply.status == 200 => Outcome::Answered(queue::answered_ids(&reply.body, &events)),
            Some(reply) if (400..500).contains(&reply.status) && reply.status != 408 && reply.status != 429 => {
                Outcome::Refused(events.iter().map(|e| e.id.clone()).collect())
            }
            _ => Outcome::Failed,
        };
        with(|w| {
            w.queue.finish(&events, outcome, Date::now());
            if w.consent.allows_tracking() {
                w.queue.persist(Date::now());
            }
        });
    });
}

/// Moves into this page's queue the events of pages that are gone: under their Web
/// Lock where the browser has Web Locks, else by their stale heartbeat.
fn adopt_orphans(now: f64) {
    let Some((keys, locks)) = with(|w| {
        if !w.consent.allows_tracking() {
            return None;
        }
        Some((w.queue.orphans(now, w.locks.is_some()), w.locks.clone()))
    })
    .flatten() else {
        return;
    };
    for key in keys {
        match &locks {
            Some(locks) => queue::if_lock_free(
                locks,
                &key.clone(),
                Box::new(move |free| {
                    if free {
                        with(|w| w.queue.adopt(&key, Date::now()));
                    }
                }),
            ),
            None => {
                with(|w| w.queue.adopt(&key, now));
            }
        }
    }
}

/// As the page is hidden or goes away: every waiting event not already in a request
/// goes out at once (`fetch` with `keepalive`, which outlives the page). Events stay
/// queued (and stored) until the host answers; if the page is gone by then, the page
/// that adopts its queue sends them again and the host stores each id once.
fn flush_now() {
    let Some((url, batches)) = with(|w| {
        if !w.consent.allows_tracking() || w.consent_post.is_some() {
            return None;
        }
        w.queue.persist(Date::now());
        let url = w.endpoint.url("/v1/events", &[]);
        let batches: Vec<(String, Vec<Event>)> =
            w.queue.unsent_batches().into_iter().map(|events| (batch_body(w, &events), events)).collect();
        Some((url, batches))
    })
    .flatten() else {
        return;
    };
    for (body, events) in batches {
        send_batch(&url, &body, events);
    }
}

/// The `POST /v1/events` body for a batch.
fn batch_body(w: &Widget, events: &[Event]) -> String {
    let mut body = String::from("{");
    json::push_member(&mut body, "anonymous_id", &w.anonymous_id);
    if let Some((id, token)) = &w.customer {
        json::push_member(&mut body, "customer_id", id);
        json::push_member(&mut body, "customer_token", token);
    }
    body.push_str("\"events\":");
    body.push_str(&queue::array(events));
    body.push('}');
    body
}

fn online() -> bool {
    web_sys::window().is_none_or(|w| w.navigator().on_line())
}

/// Fetches `GET /v1/widget/state`, applies the shop's privacy settings and draws the panel.
fn load_state() {
    let Some(url) = with(|w| {
        if w.state_loading {
            return None;
        }
        w.state_loading = true;
        let anonymous = w.anonymous_id_stored.then_some(w.anonymous_id.as_str());
        let [id, token] = w.customer_params();
        Some(w.endpoint.url("/v1/widget/state", &[("anonymous_id", anonymous), id, token]))
    })
    .flatten() else {
        return;
    };
    api::get(&url, on_state);
}

/// Takes in a `GET /v1/widget/state` reply.
fn on_state(reply: Option<api::Reply>) {
    let reply = reply.filter(|r| r.status == 200 && r.body.is_object());
    with(|w| {
        w.state_loading = false;
        match reply {
            Some(reply) => {
                let shop = json::get(&reply.body, "shop");
                w.consent.set_policy(ShopPolicy {
                    consent_required: json::get(&shop, "consent_required") == JsValue::TRUE,
                    honor_dnt: json::get(&shop, "honor_dnt") == JsValue::TRUE,
                });
                w.state = reply.body;
            }
            None => {
                w.state_retry_at_ms = Date::now() + 15_000.0;
            }
        }
    });
    if reply_arrived() {
        apply_consent();
        draw(None);
        draw_strips();
        tick();
    }
}

fn reply_arrived() -> bool {
    with(|w| !w.state.is_null()).unwrap_or(false)
}

/// Draws (mounting on first use) the panel from the last state.
fn draw(notice: Option<Notice>) {
    with(|w| {
        if w.panel.is_none() {
            let locale = json::string(&json::get(&w.state, "shop"), "locale").unwrap_or_default();
            let document = web_sys::window().and_then(|win| win.document());
            w.panel = document.and_then(|d| Panel::mount(&d, i18n::text(&locale), on_panel_action));
        }
        if let Some(panel) = w.panel.as_mut() {
            panel.render(&w.state, w.join_url.as_deref(), notice.as_ref());
        }
    });
}

/// A click on a control of the panel.
fn on_panel_action(action: &str, value: Option<String>, element: &Element) {
    match action {
        "toggle" => {
            let opened = with(|w| w.panel.as_mut().is_some_and(Panel::toggle)).unwrap_or(false);
            if opened {
                track_impressions();
            }
        }
        "close" => {
            with(|w| w.panel.as_mut().map(Panel::close));
        }
        "copy" => {
            if let Some(code) = value {
                copy_to_clipboard(&code);
                with(|w| w.panel.as_ref().map(|p| panel::mark_copied(element, p.text())));
            }
        }
        "redeem" => {
            if let Some(reward) = value {
                let _ = element.set_attribute("disabled", "");
                redeem(reward);
            }
        }
        "rec" => {
            let click = with(|w| {
                let list = json::list(&w.state, "recommendations");
                Some(recs::click(FOR_YOU, recs::find(&list, value.as_deref()?)?))
            });
            if let Some(event) = click.flatten() {
                enqueue(event);
                flush_now();
            }
        }
        _ => {}
    }
}

/// One `recommendation_impression` per page, the first time the panel opens.
fn track_impressions() {
    let impression = with(|w| {
        if w.impressions_sent {
            return None;
        }
        w.impressions_sent = true;
        let mut shown = json::list(&w.state, "recommendations");
        shown.truncate(panel::SHOWN_RECOMMENDATIONS);
        (!shown.is_empty()).then(|| recs::impression(FOR_YOU, &shown))
    });
    if let Some(event) = impression.flatten() {
        enqueue(event);
    }
}

/// The placement of the panel's list in recommendation events.
const FOR_YOU: &str = "for-you";

/// Takes in strips the page has added since the last look.
fn find_strips() {
    let Some(document) = web_sys::window().and_then(|w| w.document()) else { return };
    with(|w| w.strips.as_mut().map(|s| s.discover(&document)));
}

/// A strip came near the viewport: fetch its list, as the signed-in shopper if any.
fn on_strip_near(element: Element) {
    let url = with(|w| {
        let request = w.strips.as_mut()?.start_loading(&element)?;
        let mut params: Vec<(&str, Option<&str>)> = request.iter().map(|(k, v)| (*k, v.as_deref())).collect();
        params.extend(w.customer_params());
        Some(w.endpoint.url("/v1/recommendations", &params))
    });
    let Some(url) = url.flatten() else { return };
    api::get(&url, move |reply| {
        let items = reply.filter(|r| r.status == 200).map(|r| json::list(&r.body, "items"));
        with(|w| w.strips.as_mut().map(|s| s.loaded(&element, items)));
        draw_strips();
    });
}

/// Draws the strips whose lists arrived (in the shop's language, once known).
fn draw_strips() {
    with(|w| {
        let shop = json::get(&w.state, "shop");
        let text = i18n::text(&json::string(&shop, "locale").unwrap_or_default());
        let currency = json::string(&shop, "currency").unwrap_or_else(|| "USD".into());
        if let Some(strips) = w.strips.as_mut() {
            strips.draw(json::present(&shop).then_some((text, currency.as_str())));
        }
    });
}

fn on_strip_seen(element: Element) {
    if let Some(event) = with(|w| w.strips.as_mut()?.impression(&element)).flatten() {
        enqueue(event);
    }
}

/// A card of a strip was followed: the click goes out before the page does.
fn on_strip_click(element: Element, recommendation_id: String) {
    if let Some(event) = with(|w| w.strips.as_mut()?.click(&element, &recommendation_id)).flatten() {
        enqueue(event);
        flush_now();
    }
}

/// `navigator.clipboard.writeText(text)`, where the browser offers it.
fn copy_to_clipboard(text: &str) {
    let Some(window) = web_sys::window() else { return };
    let clipboard = json::get(&window.navigator(), "clipboard");
    if let Ok(write) = json::get(&clipboard, "writeText").dyn_into::<js_sys::Function>() {
        let _ = write.call1(&clipboard, &text.into());
    }
}

/// `POST /v1/rewards/redeem` under a key made for this click, then redraws with the new
/// member state or the error.
fn redeem(reward_id: String) {
    let Some((url, body)) = with(|w| {
        let (id, token) = w.customer.clone()?;
        let mut body = String::from("{");
        json::push_member(&mut body, "customer_id", &id);
        json::push_member(&mut body, "customer_token", &token);
        // In the body, not an `Idempotency-Key` header: a custom header would cost a CORS
        // preflight on every redemption.
        json::push_member(&mut body, "idempotency_key", &collection::random_id("r_"));
        json::push_str(&mut body, "reward_id");
        body.push(':');
        json::push_str(&mut body, &reward_id);
        body.push('}');
        Some((w.endpoint.url("/v1/rewards/redeem", &[]), body))
    })
    .flatten() else {
        return;
    };
    send_redemption(url, body, REDEEM_ATTEMPTS);
}

/// How many times one click's redemption is sent before the widget says it failed.
const REDEEM_ATTEMPTS: u8 = 3;

/// Sends the redemption again, the same body and so the same key, while it gets no answer
/// or a 5xx: the host then spends the points at most once, however many copies arrive.
fn send_redemption(url: String, body: String, attempts: u8) {
    api::post(&url.clone(), &body.clone(), move |reply| {
        if attempts > 1 && reply.as_ref().is_none_or(|r| r.status >= 500) {
            send_redemption(url, body, attempts - 1);
        } else {
            on_redeemed(reply);
        }
    });
}

/// Redraws with the new member state, or says why redeeming failed.
fn on_redeemed(reply: Option<api::Reply>) {
    let notice = with(|w| {
        let text = w.panel.as_ref().map(Panel::text)?;
        Some(match reply {
            Some(reply) if reply.status == 200 => {
                // The host answers with the member state, bare or as `{"member": …}`.
                let nested = json::get(&reply.body, "member");
                let member = if json::present(&nested) { nested } else { reply.body };
                let _ = js_sys::Reflect::set(&w.state, &"member".into(), &member);
                let balance = json::number(&json::get(&member, "points"), "balance").unwrap_or(0.0);
                Notice::Success(i18n::fill(text.redeemed, "n", &i18n::number(text, balance)))
            }
            Some(reply) if reply.status == 409 => Notice::Error(text.insufficient),
            _ => Notice::Error(text.failed),
        })
    })
    .flatten();
    draw(notice);
}
