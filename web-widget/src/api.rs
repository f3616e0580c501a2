//! The HTTP client for the host's widget API (`/v1/events`, `/v1/identify`,
//! `/v1/consent`, `/v1/widget/state`, `/v1/rewards/redeem`).
//!
//! Bodies are sent as plain strings, which `fetch` labels `text/plain`: a "simple"
//! cross-origin request that needs no CORS preflight.

use crate::prelude::*;
use js_sys::{Function, Promise, encode_uri_component};
use wasm_bindgen::{JsCast, JsValue};
use web_sys::{RequestInit, Response};

use crate::callback;
use crate::json;

/// Where the host is and which shop this page belongs to.
#[derive(Clone, Debug)]
pub(crate) struct Endpoint {
    /// The host's origin, e.g. `https://patron.example.com`.
    pub(crate) host: String,
    /// The shop's publishable key, `pk_…`.
    pub(crate) key: String,
}

/// A response that arrived: its status and its body parsed as JSON (`null` if not JSON).
pub(crate) struct Reply {
    pub(crate) status: u16,
    pub(crate) body: JsValue,
}

impl Endpoint {
    /// `host + path + ?key=…` followed by `&name=value` for each present parameter.
    pub(crate) fn url(&self, path: &str, params: &[(&str, Option<&str>)]) -> String {
        let mut url = String::with_capacity(self.host.len() + path.len() + 64);
        url.push_str(&self.host);
        url.push_str(path);
        url.push_str("?key=");
        push_encoded(&mut url, &self.key);
        for (name, value) in params {
            if let Some(value) = value {
                url.push('&');
                url.push_str(name);
                url.push('=');
                push_encoded(&mut url, value);
            }
        }
        url
    }
}

fn push_encoded(url: &mut String, value: &str) {
    url.push_str(&String::from(encode_uri_component(value)));
}

/// `GET url`, then `done` with the reply (`None` if the host could not be reached).
pub(crate) fn get(url: &str, done: impl FnOnce(Option<Reply>) + 'static) {
    send(url, None, Box::new(done));
}

/// `POST url` with a JSON body sent as `text/plain`, kept alive past page unload; then
/// `done` with the reply.
pub(crate) fn post(url: &str, body: &str, done: impl FnOnce(Option<Reply>) + 'static) {
    send(url, Some(body), Box::new(done));
}

/// A callback for a reply. Boxed, so that `send` and the closures it hands to the
/// browser exist once in the module rather than once per caller.
type Done = Box<dyn FnOnce(Option<Reply>)>;

fn send(url: &str, body: Option<&str>, done: Done) {
    let Some(window) = web_sys::window() else { return done(None) };
    let init = RequestInit::new();
    if let Some(body) = body {
        init.set_method("POST");
        init.set_body(&JsValue::from_str(body));
        // `keepalive` lets the request finish if the shopper navigates away meanwhile.
        let _ = js_sys::Reflect::set(&init, &"keepalive".into(), &JsValue::TRUE);
    }
    settle(
        &window.fetch_with_str_and_init(url, &init),
        Box::new(move |value: JsValue| {
            let Ok(response) = value.dyn_into::<Response>() else { return done(None) };
            let status = response.status();
            match response.text() {
                Ok(text) => settle(
                    &text,
                    Box::new(move |text: JsValue| {
                        let body = text.as_string().as_deref().and_then(json::parse).unwrap_or(JsValue::NULL);
                        done(Some(Reply { status, body }));
                    }),
                ),
                Err(_) => done(Some(Reply { status, body: JsValue::NULL })),
            }
        }),
    );
}

/// Calls `f` once with what `promise` settles to, fulfilled or rejected alike (callers
/// tell them apart by type). Callbacks rather than futures: an executor would cost the
/// module several kilobytes.
fn settle(promise: &Promise, f: Box<dyn FnOnce(JsValue)>) {
    let callback = callback::once(f);
    if let Ok(then) = json::get(promise, "then").dyn_into::<Function>() {
        let _ = then.call2(promise, &callback, &callback);
    }
}
