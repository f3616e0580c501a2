//! Recommended products as the panel and the strips show them: a product card, and
//! the events they record. The event shapes are what the attribution report reads:
//!
//! - `recommendation_impression`: `{"placement", "items": [{"recommendation_id",
//!   "product_id", "strategy"}, …]}`, the items shown;
//! - `recommendation_click`: `{"placement", "recommendation_id", "product_id", "strategy"}`.

use crate::prelude::*;
use js_sys::Array;
use wasm_bindgen::JsValue;

use crate::collection::{self, Event};
use crate::i18n::{self, Text};
use crate::json;
use crate::markup::{esc, safe_url};

/// A card for one item of a recommendations list (see `GET /v1/recommendations`):
/// image or a placeholder tile with the title's initial, title and price, linking to
/// the product. The link carries `data-a="rec"` and the recommendation id, for the
/// click handler.
pub(crate) fn card(h: &mut String, t: &Text, rec: &JsValue, shop_currency: &str) {
    let title = json::string(rec, "title").unwrap_or_default();
    let url = json::string(rec, "url").filter(|u| safe_url(u)).unwrap_or_else(|| "#".into());
    h.push_str("<li><a data-a=\"rec\" data-v=\"");
    esc(h, &json::string(rec, "recommendation_id").unwrap_or_default());
    h.push_str("\" href=\"");
    esc(h, &url);
    h.push_str("\">");
    match json::string(rec, "image_url").filter(|u| safe_url(u)) {
        Some(img) => {
            h.push_str("<img alt=\"\" loading=\"lazy\" src=\"");
            esc(h, &img);
            h.push_str("\">");
        }
        None => {
            h.push_str("<i aria-hidden=\"true\">");
            let mut initial = String::new();
            initial.extend(title.chars().next());
            esc(h, &initial);
            h.push_str("</i>");
        }
    }
    h.push_str("<span>");
    esc(h, &title);
    h.push_str("</span>");
    if let Some(price) = json::number(rec, "price") {
        let currency = json::string(rec, "currency").unwrap_or_else(|| shop_currency.into());
        h.push_str("<b>");
        esc(h, &i18n::price(t, price, &currency));
        h.push_str("</b>");
    }
    h.push_str("</a></li>");
}

/// The item of `list` with this recommendation id.
pub(crate) fn find<'a>(list: &'a [JsValue], recommendation_id: &str) -> Option<&'a JsValue> {
    list.iter().find(|r| json::string(r, "recommendation_id").as_deref() == Some(recommendation_id))
}

/// `recommendation_impression` for the items of `placement` the shopper was shown.
pub(crate) fn impression(placement: &str, shown: &[JsValue]) -> Event {
    let items = Array::new();
    for rec in shown {
        items.push(&collection::props(&identity(rec)));
    }
    let props = collection::props(&[("placement", placement.into()), ("items", items.into())]);
    collection::event("recommendation_impression", &props)
}

/// `recommendation_click` for an item of `placement` the shopper followed.
pub(crate) fn click(placement: &str, rec: &JsValue) -> Event {
    let mut members = alloc::vec![("placement", JsValue::from(placement))];
    members.extend(identity(rec));
    collection::event("recommendation_click", &collection::props(&members))
}

/// What identifies an item for attribution.
fn identity(rec: &JsValue) -> [(&'static str, JsValue); 3] {
    ["recommendation_id", "product_id", "strategy"].map(|key| (key, json::get(rec, key)))
}
