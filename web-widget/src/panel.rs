//! The member panel: a launcher button and a dialog inside a shadow root, so the
//! store's CSS cannot reach in and the panel's cannot leak out.
//!
//! It shows a member their tier and progress, points and expiring points, coupons
//! (copy to clipboard), rewards to redeem and recommendations; anyone else a join
//! prompt and the recommendations. Themeable with CSS custom properties set on the
//! page (`--patron-accent`, `--patron-accent-text`, `--patron-bg`, `--patron-text`,
//! `--patron-muted`, `--patron-radius`, `--patron-font`, `--patron-z`). All controls
//! are buttons or links, reachable with Tab; Escape closes the dialog.

use crate::prelude::*;
use wasm_bindgen::JsCast;
use wasm_bindgen::JsValue;
use web_sys::{Document, Element, HtmlElement, ShadowRoot, ShadowRootInit, ShadowRootMode};

use crate::callback::listen;
use crate::i18n::{self, Text};
use crate::json;
use crate::markup::{THEME, esc, safe_url};
use crate::recs;

/// Recommendations the panel shows (the rest of the "for you" list is not shown).
pub(crate) const SHOWN_RECOMMENDATIONS: usize = 4;

/// The panel's stylesheet, after the shared [`THEME`] and [`recs::CARD_STYLE`].
const STYLE: &str = concat!(
    r#"button{font:inherit;cursor:pointer}"#,
    r#".l{position:fixed;right:20px;bottom:20px;z-index:var(--patron-z,2147483000);display:flex;gap:8px;align-items:center;border:0;border-radius:999px;padding:12px 18px;background:var(--a);color:var(--at);font-weight:600;box-shadow:0 8px 24px rgba(0,0,0,.22)}"#,
    r#".l b{background:rgba(255,255,255,.22);border-radius:999px;padding:1px 8px;font-weight:600}"#,
    r#".p{position:fixed;right:20px;bottom:80px;z-index:var(--patron-z,2147483000);width:min(360px,calc(100vw - 24px));max-height:min(620px,calc(100vh - 100px));overflow:auto;background:var(--bg);border-radius:var(--r);box-shadow:0 18px 48px rgba(0,0,0,.25)}"#,
    r#".p[hidden]{display:none}"#,
    r#"header{display:flex;justify-content:space-between;align-items:center;padding:16px 18px;background:var(--a);color:var(--at);border-radius:var(--r) var(--r) 0 0}"#,
    r#"h2{margin:0;font-size:17px;outline:0}"#,
    r#"h3{margin:18px 0 8px;font-size:12px;letter-spacing:.06em;text-transform:uppercase;color:var(--mu)}"#,
    r#".x{border:0;background:transparent;color:inherit;font-size:22px;line-height:1;padding:2px 6px;border-radius:6px}"#,
    r#".c{padding:14px 18px 18px}"#,
    r#".m{color:var(--mu);font-size:13px;margin:4px 0 0}"#,
    r#".t{padding:14px;border-radius:calc(var(--r) - 4px);background:linear-gradient(135deg,var(--a),#7c3aed);color:var(--at)}"#,
    r#".t .m{color:inherit;opacity:.85}"#,
    r#".tn{font-size:18px;font-weight:700;text-transform:capitalize}"#,
    r#".bar{height:8px;border-radius:8px;background:rgba(255,255,255,.3);margin-top:10px;overflow:hidden}"#,
    r#".bar i{display:block;height:100%;background:var(--at)}"#,
    r#".pt{font-size:30px;font-weight:700}"#,
    r#"ul{list-style:none;margin:0;padding:0;display:grid;gap:8px}"#,
    r#".cp,.rw{display:flex;align-items:center;justify-content:space-between;gap:10px;padding:10px 12px;border:1px dashed var(--mu);border-radius:10px}"#,
    r#".rw{border-style:solid;border-color:#e5e7eb}"#,
    r#"code{font:600 14px ui-monospace,Menlo,monospace;letter-spacing:.04em}"#,
    r#".sb{border:1px solid var(--a);color:var(--a);background:transparent;border-radius:8px;padding:6px 12px;font-weight:600;white-space:nowrap}"#,
    r#".sb:disabled{opacity:.4;cursor:not-allowed}"#,
    r#".cta{display:block;text-align:center;margin-top:14px;padding:11px;border-radius:10px;background:var(--a);color:var(--at);text-decoration:none;font-weight:600}"#,
    r#".n{margin:12px 0 0;padding:10px 12px;border-radius:10px;background:#ecfdf5;color:#065f46;outline:0}"#,
    r#".n.e{background:#fef2f2;color:#991b1b}"#,
    r#".rc{grid-template-columns:1fr 1fr;--cp:6px;--cr:10px;--cf:32px}"#,
);

/// The mounted panel: its shadow root and what it needs to redraw.
pub(crate) struct Panel {
    root: ShadowRoot,
    text: &'static Text,
    open: bool,
}

/// A message shown in the panel after an action.
pub(crate) enum Notice {
    Success(String),
    Error(&'static str),
}

impl Panel {
    /// Appends `<div id="patron-widget">` to the body with an open shadow root, and
    /// routes clicks and key presses inside it to `on_action`.
    pub(crate) fn mount(
        document: &Document,
        text: &'static Text,
        on_action: impl Fn(&str, Option<String>, &Element) + 'static,
    ) -> Option<Self> {
        let host = document.create_element("div").ok()?;
        host.set_id("patron-widget");
        document.body()?.append_child(&host).ok()?;
        let init = ShadowRootInit::new(ShadowRootMode::Open);
        let root = host.attach_shadow(&init).ok()?;

        listen(
            &root,
            "click",
            Box::new(move |event| {
                let target = event.target().and_then(|t| t.dyn_into::<Element>().ok());
                if let Some(el) = target.and_then(|t| t.closest("[data-a]").ok().flatten())
                    && let Some(action) = el.get_attribute("data-a")
                {
                    on_action(&action, el.get_attribute("data-v"), &el);
                }
            }),
        );
        let root_for_keys = root.clone();
        listen(
            &root,
            "keydown",
            Box::new(move |event| {
                if json::string(&event, "key").as_deref() == Some("Escape") {
                    set_open(&root_for_keys, false);
                }
            }),
        );

        Some(Self { root, text, open: false })
    }

    /// The text in the panel's language.
    pub(crate) fn text(&self) -> &'static Text {
        self.text
    }

    /// Redraws the panel from a widget state (see `GET /v1/widget/state`).
    pub(crate) fn render(&mut self, state: &JsValue, join_url: Option<&str>, notice: Option<&Notice>) {
        self.open = is_open(&self.root);
        let html = html(self.text, state, join_url, notice, self.open);
        self.root.set_inner_html(&html);
        if notice.is_some() {
            focus(&self.root, ".n");
        }
    }

    /// Opens or closes the dialog; returns whether it is now open.
    pub(crate) fn toggle(&mut self) -> bool {
        self.open = !is_open(&self.root);
        set_open(&self.root, self.open);
        self.open
    }

    /// Closes the dialog and returns focus to the launcher.
    pub(crate) fn close(&mut self) {
        self.open = false;
        set_open(&self.root, false);
    }
}

fn is_open(root: &ShadowRoot) -> bool {
    root.query_selector(".p").ok().flatten().is_some_and(|p| !p.has_attribute("hidden"))
}

fn set_open(root: &ShadowRoot, open: bool) {
    let Ok(Some(panel)) = root.query_selector(".p") else { return };
    if open {
        let _ = panel.remove_attribute("hidden");
    } else {
        let _ = panel.set_attribute("hidden", "");
    }
    if let Ok(Some(launcher)) = root.query_selector(".l") {
        let _ = launcher.set_attribute("aria-expanded", if open { "true" } else { "false" });
    }
    focus(root, if open { "h2" } else { ".l" });
}

fn focus(root: &ShadowRoot, selector: &str) {
    if let Ok(Some(el)) = root.query_selector(selector)
        && let Ok(el) = el.dyn_into::<HtmlElement>()
    {
        let _ = el.focus();
    }
}

/// Marks a copy button as done.
pub(crate) fn mark_copied(button: &Element, text: &Text) {
    button.set_text_content(Some(text.copied));
}

/// The panel's markup for a widget state.
fn html(t: &Text, state: &JsValue, join_url: Option<&str>, notice: Option<&Notice>, open: bool) -> String {
    let shop = json::get(state, "shop");
    let member = json::get(state, "member");
    let currency = json::string(&shop, "currency").unwrap_or_else(|| "USD".into());
    let mut h = String::with_capacity(6000);
    h.push_str("<style>");
    h.push_str(THEME);
    h.push_str(recs::CARD_STYLE);
    h.push_str(STYLE);
    h.push_str("</style>");

    let balance = json::number(&json::get(&member, "points"), "balance");
    h.push_str("<button class=\"l\" data-a=\"toggle\" aria-controls=\"pp\" aria-expanded=\"");
    h.push_str(if open { "true" } else { "false" });
    h.push_str("\"><span aria-hidden=\"true\">★</span> ");
    esc(&mut h, t.launcher);
    if let Some(balance) = balance {
        h.push_str(" <b>");
        esc(&mut h, &i18n::number(t, balance));
        h.push_str("</b>");
    }
    h.push_str("</button><section class=\"p\" id=\"pp\" role=\"dialog\" aria-labelledby=\"pt\" lang=\"");
    h.push_str(t.tag);
    h.push('"');
    if !open {
        h.push_str(" hidden");
    }
    h.push_str("><header><h2 id=\"pt\" tabindex=\"-1\">");
    if json::present(&member) {
        let name = json::string(&member, "name").unwrap_or_default();
        esc(&mut h, &i18n::fill(t.hello, "name", &name));
    } else {
        let shop_name = json::string(&shop, "name").unwrap_or_default();
        esc(&mut h, &i18n::fill(t.join_title, "shop", &shop_name));
    }
    h.push_str("</h2><button class=\"x\" data-a=\"close\" aria-label=\"");
    esc(&mut h, t.close);
    h.push_str("\">×</button></header><div class=\"c\">");

    if json::present(&member) {
        member_html(&mut h, t, &member);
    } else {
        h.push_str("<p class=\"m\">");
        esc(&mut h, t.join_body);
        h.push_str("</p>");
        if let Some(url) = join_url.filter(|u| safe_url(u)) {
            h.push_str("<a class=\"cta\" href=\"");
            esc(&mut h, url);
            h.push_str("\">");
            esc(&mut h, t.join);
            h.push_str("</a>");
        }
    }
    if let Some(notice) = notice {
        let (class, message) = match notice {
            Notice::Success(m) => ("n", m.as_str()),
            Notice::Error(m) => ("n e", *m),
        };
        h.push_str("<p class=\"");
        h.push_str(class);
        h.push_str("\" role=\"status\" tabindex=\"-1\">");
        esc(&mut h, message);
        h.push_str("</p>");
    }
    recommendations_html(&mut h, t, state, &currency);
    h.push_str("</div></section>");
    h
}

fn member_html(h: &mut String, t: &Text, member: &JsValue) {
    let tier = json::get(member, "tier");
    if json::present(&tier) {
        h.push_str("<div class=\"t\"><div class=\"tn\">");
        let label = json::string(&tier, "label").or_else(|| json::string(&tier, "name"));
        esc(h, &i18n::fill(t.tier, "tier", &label.unwrap_or_default()));
        h.push_str("</div>");
        match json::string(&tier, "next_label").or_else(|| json::string(&tier, "next")) {
            Some(next) => {
                // Rounded to a whole percent (`as` truncates; the value is not negative).
                let pct = (json::number(&tier, "progress").unwrap_or(0.0).clamp(0.0, 1.0) * 100.0 + 0.5) as u32;
                let pct = i18n::number(t, f64::from(pct));
                h.push_str("<div class=\"bar\" role=\"progressbar\" aria-valuemin=\"0\" aria-valuemax=\"100\" aria-valuenow=\"");
                h.push_str(&pct);
                h.push_str("\"><i style=\"width:");
                h.push_str(&pct);
                h.push_str("%\"></i></div><p class=\"m\">");
                esc(h, &i18n::fill(&i18n::fill(t.to_next, "n", &pct), "tier", &next));
                h.push_str("</p>");
            }
            None => {
                h.push_str("<p class=\"m\">");
                esc(h, t.top_tier);
                h.push_str("</p>");
            }
        }
        h.push_str("</div>");
    }

    let points = json::get(member, "points");
    let balance = json::number(&points, "balance").unwrap_or(0.0);
    h.push_str("<p><span class=\"pt\">");
    esc(h, &i18n::number(t, balance));
    h.push_str("</span> ");
    esc(h, t.points);
    h.push_str("</p>");
    for expiring in json::list(&points, "expiring").iter().take(2) {
        let n = i18n::number(t, json::number(expiring, "points").unwrap_or(0.0));
        let date = i18n::date(t, &json::string(expiring, "at").unwrap_or_default());
        h.push_str("<p class=\"m\">");
        esc(h, &i18n::fill(&i18n::fill(t.expiring, "n", &n), "date", &date));
        h.push_str("</p>");
    }

    let coupons = json::list(member, "coupons");
    if !coupons.is_empty() {
        heading(h, t.coupons);
        h.push_str("<ul>");
        for coupon in &coupons {
            let code = json::string(coupon, "code").unwrap_or_default();
            h.push_str("<li class=\"cp\"><div><code>");
            esc(h, &code);
            h.push_str("</code><div class=\"m\">");
            esc(h, &coupon_text(t, coupon));
            if let Some(at) = json::string(coupon, "expires_at") {
                h.push_str(" · ");
                esc(h, &i18n::fill(t.expires, "date", &i18n::date(t, &at)));
            }
            h.push_str("</div></div><button class=\"sb\" data-a=\"copy\" data-v=\"");
            esc(h, &code);
            h.push_str("\">");
            esc(h, t.copy);
            h.push_str("</button></li>");
        }
        h.push_str("</ul>");
    }

    let rewards = json::list(member, "rewards");
    if !rewards.is_empty() {
        heading(h, t.rewards);
        h.push_str("<ul>");
        for reward in &rewards {
            let cost = json::number(reward, "points").unwrap_or(0.0);
            h.push_str("<li class=\"rw\"><div>");
            esc(h, &json::string(reward, "name").unwrap_or_default());
            h.push_str("<div class=\"m\">");
            esc(h, &i18n::fill(t.cost, "n", &i18n::number(t, cost)));
            h.push_str("</div></div><button class=\"sb\" data-a=\"redeem\" data-v=\"");
            esc(h, &json::string(reward, "id").unwrap_or_default());
            h.push('"');
            if cost > balance {
                h.push_str(" disabled");
            }
            h.push('>');
            esc(h, t.redeem);
            h.push_str("</button></li>");
        }
        h.push_str("</ul>");
    }
}

/// What a coupon takes off, in the panel's language and with prices in the coupon's
/// currency; the host's (English) description if its shape is unknown.
fn coupon_text(t: &Text, coupon: &JsValue) -> String {
    let discount = json::get(coupon, "discount");
    let currency = json::string(coupon, "currency").unwrap_or_default();
    let value = json::number(&discount, "value").unwrap_or(0.0);
    let mut text = match json::string(&discount, "kind").as_deref() {
        Some("fixed") => i18n::fill(t.amount_off, "n", &i18n::price(t, value, &currency)),
        Some("percent") => i18n::fill(t.percent_off, "n", &i18n::number(t, value)),
        Some("free_shipping") => t.free_shipping.to_owned(),
        _ => return json::string(coupon, "description").unwrap_or_default(),
    };
    let minimum = json::number(coupon, "minimum_spend").unwrap_or(0.0);
    if minimum > 0.0 {
        text.push_str(&i18n::fill(t.minimum, "n", &i18n::price(t, minimum, &currency)));
    }
    text
}

fn recommendations_html(h: &mut String, t: &Text, state: &JsValue, shop_currency: &str) {
    let list = json::list(state, "recommendations");
    if list.is_empty() {
        return;
    }
    heading(h, t.recommended);
    h.push_str("<ul class=\"rc\">");
    for rec in list.iter().take(SHOWN_RECOMMENDATIONS) {
        recs::card(h, t, rec, shop_currency);
    }
    h.push_str("</ul>");
}

fn heading(h: &mut String, text: &str) {
    h.push_str("<h3>");
    esc(h, text);
    h.push_str("</h3>");
}
