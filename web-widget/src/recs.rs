//! Recommended products as the panel and the strips show them: a product card, and
//! the events they record. The event shapes are what the attribution report reads:
//!
//! - `recommendation_impression`: `{"placement", "items": [{"recommendation_id",
//!   "product_id", "strategy"}, …]}`, the items shown;
//! - `recommendation_click`: `{"placement", "recommendation_id", "product_id", "strategy"}`.

use crate::prelude::*;
use wasm_bindgen::JsValue;

use crate::collection::{self, Event};
use crate::i18n::{self, Text};
use crate::json;
use crate::markup::{esc, safe_url};

/// The cards' stylesheet, after [`crate::markup::THEME`] and before the panel's or the
/// strip's own. A list of cards is `<ul class="rc">` and sets the sizes that differ:
/// `--cp` the card's padding, `--cr` its corner radius, `--cf` the size of the
/// placeholder's initial.
pub(crate) const CARD_STYLE: &str = concat!(
    r#".rc a{display:block;padding:var(--cp);border:1px solid #e5e7eb;border-radius:var(--cr);color:inherit;text-decoration:none}"#,
    r#".rc img,.rc i{display:grid;place-items:center;width:100%;aspect-ratio:1;object-fit:cover;border-radius:calc(var(--cr) - 4px);background:#f3f4f6;color:var(--mu);font-size:var(--cf);font-weight:700;font-style:normal;line-height:1}"#,
    r#".rc span{display:block;margin-top:6px;font-size:13px}"#,
);

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
    let mut props = placement_member(placement);
    props.push_str(",\"items\":[");
    for (i, rec) in shown.iter().enumerate() {
        if i > 0 {
            props.push(',');
        }
        props.push('{');
        identity(&mut props, rec);
        props.push('}');
    }
    props.push_str("]}");
    collection::event_json("recommendation_impression", &props)
}

/// `recommendation_click` for an item of `placement` the shopper followed.
pub(crate) fn click(placement: &str, rec: &JsValue) -> Event {
    let mut props = placement_member(placement);
    props.push(',');
    identity(&mut props, rec);
    props.push('}');
    collection::event_json("recommendation_click", &props)
}

/// The start of the properties object: `{"placement":"…"`.
fn placement_member(placement: &str) -> String {
    let mut props = String::from("{\"placement\":");
    json::push_str(&mut props, placement);
    props
}

/// The members that identify an item for attribution, without braces.
fn identity(out: &mut String, rec: &JsValue) {
    for (i, key) in ["recommendation_id", "product_id", "strategy"].into_iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        json::push_str(out, key);
        out.push(':');
        json::push_str(out, &json::string(rec, key).unwrap_or_default());
    }
}
