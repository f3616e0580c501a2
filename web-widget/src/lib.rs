//! Patron's storefront widget.
//!
//! The loader (`loader/patron.js`, served as `/widget/patron.js`) reads the snippet's
//! `data-*` attributes into `window.patron._c`, imports this module and, once it has
//! started, replaces its queueing stubs with [`track`], [`identify`] and [`consent`]
//! and replays the calls it queued.
//!
//! Roles, one module each: [`collection`] turns page activity into events, [`queue`]
//! batches and delivers them, [`consent`] decides whether anything may be sent or
//! stored, [`panel`] renders the member panel in a shadow root, [`strip`] the
//! recommendation strips a store places on its pages, [`recs`] the product cards and
//! recommendation events both share, [`markup`] their theme and HTML escaping, [`i18n`]
//! their text. [`api`] is the HTTP client for the host, [`json`] the few JSON helpers and
//! [`callback`] how Rust functions are handed to the browser.
//!
//! On wasm32 the crate is `no_std` (with `alloc`) and brings its own panic handler,
//! which aborts without formatting a message: std's handler would pull `core::fmt`
//! and its panic payload machinery into the module. (The release profile aborts on
//! panic anyway, so behaviour is the same.) Elsewhere, for the unit tests, it uses std.

#![cfg_attr(target_arch = "wasm32", no_std)]

extern crate alloc;

mod api;
mod callback;
mod collection;
mod consent;
mod i18n;
mod json;
mod markup;
mod panel;
mod queue;
mod recs;
mod strip;
mod widget;

/// What std's prelude would bring, for the `no_std` build.
mod prelude {
    pub(crate) use alloc::borrow::ToOwned;
    pub(crate) use alloc::boxed::Box;
    pub(crate) use alloc::string::String;
    pub(crate) use alloc::vec::Vec;
}

use wasm_bindgen::prelude::*;

/// Starts the widget: reads the snippet's configuration, records the page view,
/// fetches the shopper's state, mounts the panel and watches for recommendation
/// strips. Never throws into the page.
#[wasm_bindgen(start)]
pub fn start() {
    widget::start();
}

/// Panics abort (the module traps; the loader swallows the error). Debug builds log
/// the message first; release builds format nothing.
#[cfg(target_arch = "wasm32")]
#[panic_handler]
fn panic(_info: &core::panic::PanicInfo<'_>) -> ! {
    #[cfg(debug_assertions)]
    web_sys::console::error_1(&JsValue::from_str(&alloc::format!("{_info}")));
    core::arch::wasm32::unreachable()
}

/// `patron.track(name, props)`: records a standard event (`product_view`, `search`,
/// `add_to_cart`, …) or, for any other name, `custom:<name>`.
#[wasm_bindgen]
pub fn track(name: JsValue, props: JsValue) {
    if let Some(name) = name.as_string() {
        widget::track(&name, &props);
    }
}

/// `patron.identify(customer_id, customer_token)`: the shopper signed in; the token is
/// the store back end's HMAC of the customer id.
#[wasm_bindgen]
pub fn identify(customer_id: JsValue, customer_token: JsValue) {
    if let (Some(id), Some(token)) = (customer_id.as_string(), customer_token.as_string()) {
        widget::identify(id, token);
    }
}

/// `patron.consent(granted, options)`: the shopper's answer to the store's consent
/// prompt; `options` may say `{marketing: true, text_version: "…"}`.
#[wasm_bindgen]
pub fn consent(granted: JsValue, options: JsValue) {
    widget::consent(granted.is_truthy(), &options);
}

/// A free-list allocator a few hundred bytes long, instead of the default dlmalloc
/// (about 7 KB of the module). The lock is never contended: a page runs us on one thread.
#[cfg(target_arch = "wasm32")]
#[global_allocator]
static ALLOCATOR: lol_alloc::LockedAllocator<lol_alloc::FreeListAllocator> =
    lol_alloc::LockedAllocator::new(lol_alloc::FreeListAllocator::new());
