//! Turning page activity into events: the automatic page and product views, clicks
//! on elements the store marked up, and calls to `patron.track`.
//!
//! Markup a store can use instead of JavaScript:
//! - `<meta name="patron:product" content="SKU">` on a product page → `product_view`;
//! - `data-patron-event="add_to_cart"` on any clickable element, with
//!   `data-patron-product`, `data-patron-quantity`, `data-patron-price` → that event.

use crate::prelude::*;
use js_sys::{Date, Math, Object, Reflect};
use wasm_bindgen::{JsCast, JsValue};
use web_sys::{Document, Element};

use crate::json;

/// The event kinds the host knows; any other name is sent as `custom:<name>`.
const STANDARD_KINDS: [&str; 8] = [
    "page_view",
    "product_view",
    "search",
    "add_to_cart",
    "remove_from_cart",
    "checkout_started",
    "recommendation_impression",
    "recommendation_click",
];

/// One event, already serialized, with the client id the host deduplicates on.
#[derive(Clone, Debug)]
pub(crate) struct Event {
    pub(crate) id: String,
    pub(crate) json: String,
}

/// The kind sent for a name passed to `patron.track`.
pub(crate) fn kind_for(name: &str) -> String {
    if STANDARD_KINDS.contains(&name) || name.starts_with("custom:") {
        name.to_owned()
    } else {
        let mut kind = String::from("custom:");
        kind.push_str(name);
        kind
    }
}

/// Builds an event of `kind` at the current time and URL with `properties`
/// (a JS object; anything else becomes `{}`).
pub(crate) fn event(kind: &str, properties: &JsValue) -> Event {
    let props = if properties.is_object() { json::stringify(properties) } else { None };
    event_json(kind, props.as_deref().unwrap_or("{}"))
}

/// Builds an event of `kind` at the current time and URL with properties already
/// written as a JSON object.
pub(crate) fn event_json(kind: &str, properties: &str) -> Event {
    let id = random_id("e_");
    let mut out = String::with_capacity(160);
    out.push('{');
    json::push_member(&mut out, "id", &id);
    json::push_member(&mut out, "kind", kind);
    json::push_member(&mut out, "time", &String::from(Date::new_0().to_iso_string()));
    json::push_member(&mut out, "url", &page_url());
    out.push_str("\"properties\":");
    out.push_str(properties);
    out.push('}');
    Event { id, json: out }
}

/// The events a page produces by itself when it loads: a page view, and a product
/// view where the page names its product.
pub(crate) fn on_load(document: &Document) -> Vec<Event> {
    let mut events = alloc::vec![event("page_view", &Object::new())];
    if let Some(product) = meta_content(document, "patron:product") {
        events.push(event("product_view", &props(&[("product_id", product.into())])));
    }
    events
}

/// The event for a click on (or inside) an element with `data-patron-event`.
pub(crate) fn on_click(target: &JsValue) -> Option<Event> {
    let element = target.dyn_ref::<Element>()?.closest("[data-patron-event]").ok()??;
    let name = element.get_attribute("data-patron-event")?;
    let properties = Object::new();
    if let Some(product) = element.get_attribute("data-patron-product") {
        set(&properties, "product_id", product.into());
    }
    for (attr, key) in [("data-patron-quantity", "quantity"), ("data-patron-price", "price")] {
        // `parseFloat` rather than `str::parse`, which would add float parsing to the module.
        let n = element.get_attribute(attr).map(|v| js_sys::parse_float(&v)).filter(|n| !n.is_nan());
        if let Some(n) = n {
            set(&properties, key, n.into());
        }
    }
    if (name == "add_to_cart" || name == "remove_from_cart")
        && !Reflect::has(&properties, &"quantity".into()).unwrap_or(false)
    {
        set(&properties, "quantity", 1.into());
    }
    Some(event(&kind_for(&name), &properties))
}

/// A JS object with the given members.
pub(crate) fn props(members: &[(&str, JsValue)]) -> JsValue {
    let object = Object::new();
    for (key, value) in members {
        set(&object, key, value.clone());
    }
    object.into()
}

fn set(object: &Object, key: &str, value: JsValue) {
    let _ = Reflect::set(object, &key.into(), &value);
}

fn meta_content(document: &Document, name: &str) -> Option<String> {
    let mut selector = String::from("meta[name=\"");
    selector.push_str(name);
    selector.push_str("\"]");
    document.query_selector(&selector).ok()??.get_attribute("content").filter(|c| !c.is_empty())
}

fn page_url() -> String {
    web_sys::window().and_then(|w| w.location().href().ok()).unwrap_or_default()
}

/// A random identifier: `prefix` followed by 20 base-36 characters (about 103 bits).
pub(crate) fn random_id(prefix: &str) -> String {
    let mut id = String::from(prefix);
    for _ in 0..20 {
        let digit = (Math::random() * 36.0) as u32;
        id.push(char::from_digit(digit.min(35), 36).unwrap_or('0'));
    }
    id
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn standard_names_keep_their_kind_and_others_are_custom() {
        assert_eq!(kind_for("add_to_cart"), "add_to_cart");
        assert_eq!(kind_for("wishlist"), "custom:wishlist");
        assert_eq!(kind_for("custom:wishlist"), "custom:wishlist");
    }
}
