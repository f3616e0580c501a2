//! Rust functions handed to the browser as JS functions.
//!
//! Every callback the widget gives the browser — event listeners, observers, the timer,
//! promise reactions — is the one closure type `dyn FnMut(JsValue)`, which is also what
//! [`Closure::once_into_js`] makes: wasm-bindgen then emits a single invoke shim, a
//! single conversion and a single JS wrapper for all of them. The Rust side is boxed
//! (`Box<dyn Fn…>`) for the same reason: one wrapper function, not one per caller.
//! (`FnMut` wrappers refuse to be re-entered; none of these callbacks dispatches
//! anything that would call itself back synchronously.)

use crate::prelude::*;
use js_sys::Function;
use wasm_bindgen::prelude::Closure;
use wasm_bindgen::{JsCast, JsValue};

/// A JS function calling `f` with its first argument, kept for the life of the page.
pub(crate) fn forever(f: Box<dyn Fn(JsValue)>) -> Function {
    Closure::<dyn FnMut(JsValue)>::new(f).into_js_value().unchecked_into()
}

/// A JS function calling `f` with its first argument the first time it is called,
/// and freed then.
pub(crate) fn once(f: Box<dyn FnOnce(JsValue)>) -> JsValue {
    Closure::once_into_js(move |value: JsValue| f(value))
}

/// Adds a listener for the life of the page.
pub(crate) fn listen(target: &web_sys::EventTarget, name: &str, f: Box<dyn Fn(web_sys::Event)>) {
    let listener = forever(Box::new(move |event| f(event.unchecked_into())));
    let _ = target.add_event_listener_with_callback(name, &listener);
}
