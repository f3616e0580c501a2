//! Recommendation strips: a row of product cards in a shadow root of every element the
//! store marks with `data-patron-recommendations="<placement>"` (`product` with
//! `data-product-id`, `cart` with `data-cart="a,b"`, `home`, `for-you`; optional
//! `data-limit` and `data-title`), including elements added to the page later.
//!
//! - Lazy: an element's list is fetched only once it comes within [`NEAR`] of the
//!   viewport.
//! - Stable: from the skeleton on, the element is exactly `--patron-strip-height`
//!   (272 px by default) tall, so the page does not move when the products arrive,
//!   as long as the page reserves that height before the widget loads. An empty list or
//!   a failed request hides the element; since the fetch starts [`NEAR`] ahead, that
//!   normally happens out of view.
//! - Measured: one `recommendation_impression` per strip and page view, once half of
//!   it has been on screen; a `recommendation_click` for every card followed.

use crate::prelude::*;
use js_sys::Array;
use wasm_bindgen::{JsCast, JsValue};
use web_sys::{
    Document, Element, IntersectionObserver, IntersectionObserverEntry, IntersectionObserverInit, MutationObserver,
    MutationObserverInit, ShadowRoot, ShadowRootInit, ShadowRootMode,
};

use crate::callback::{self, listen};
use crate::collection::Event;
use crate::i18n::Text;
use crate::markup::{THEME, esc};
use crate::recs;

/// The attribute that marks a strip; its value is the placement.
const ATTRIBUTE: &str = "data-patron-recommendations";
/// How far outside the viewport a strip starts loading.
const NEAR: &str = "300px 0px";
/// Cards in the skeleton.
const SKELETON_CARDS: usize = 6;

/// The strip's stylesheet, after [`THEME`] and [`recs::CARD_STYLE`]. The host's height is
/// fixed, its content clipped and its width not taken from its content, so nothing inside
/// can change the page's layout.
const STYLE: &str = concat!(
    r#":host{display:block;height:var(--patron-strip-height,272px);overflow:hidden;contain:inline-size layout paint}"#,
    r#"section{height:100%;display:flex;flex-direction:column;gap:10px}"#,
    r#"h2{margin:0;height:24px;font-size:17px;line-height:24px;white-space:nowrap;overflow:hidden;text-overflow:ellipsis}"#,
    r#"ul{flex:1;min-height:0;list-style:none;margin:0;padding:3px 3px 10px;display:flex;gap:12px;overflow-x:auto;overflow-y:hidden;scroll-snap-type:x proximity;scrollbar-width:thin;--cp:8px;--cr:var(--r);--cf:40px}"#,
    r#"li{flex:0 0 var(--patron-card-width,150px);scroll-snap-align:start}"#,
    r#".rc a{height:100%;background:var(--bg)}"#,
    r#"a:hover span{text-decoration:underline}"#,
    r#".rc span{display:-webkit-box;-webkit-line-clamp:2;-webkit-box-orient:vertical;overflow:hidden;height:38px;line-height:19px}"#,
    r#"b{display:block;margin-top:2px}"#,
    r#".k{background:linear-gradient(90deg,#f3f4f6 30%,#e5e7eb 50%,#f3f4f6 70%) 0 0/300% 100%;border-radius:var(--r);animation:k 1.4s linear infinite}"#,
    r#"h2.k{width:40%;border-radius:6px}"#,
    r#"@keyframes k{to{background-position:-150% 0}}"#,
    r#"@media (prefers-reduced-motion:reduce){.k{animation:none}}"#,
);

/// The strips on the page and the observers that drive them.
pub(crate) struct Strips {
    list: Vec<Strip>,
    near: IntersectionObserver,
    seen: IntersectionObserver,
    on_click: fn(Element, String),
}

struct Strip {
    element: Element,
    root: ShadowRoot,
    placement: String,
    phase: Phase,
    impression_sent: bool,
}

enum Phase {
    /// The skeleton, until the strip comes near the viewport.
    Waiting,
    Loading,
    /// The list arrived; it is drawn once the shop's locale is known.
    Loaded(Vec<JsValue>),
    Shown(Vec<JsValue>),
    Hidden,
}

/// The query parameters of `GET /v1/recommendations` for one strip, from its attributes.
pub(crate) type Params = [(&'static str, Option<String>); 4];

/// Callbacks into the widget: each receives the strip's element.
pub(crate) struct Handlers {
    /// The strip came near the viewport: fetch its list.
    pub(crate) near: fn(Element),
    /// Half of the strip is on screen.
    pub(crate) seen: fn(Element),
    /// A card was followed: the strip's element and the recommendation id.
    pub(crate) click: fn(Element, String),
    /// Elements were added to the page: look for new strips.
    pub(crate) added: fn(),
}

impl Strips {
    /// Sets up the observers, and a `MutationObserver` that calls `handlers.added`
    /// whenever elements are added to the page. `None` in a browser without
    /// `IntersectionObserver`: strips are then left alone.
    pub(crate) fn watch(document: &Document, handlers: &Handlers) -> Option<Self> {
        let near = observer(handlers.near, NEAR, 0.0)?;
        let seen = observer(handlers.seen, "0px", 0.5)?;
        let added = handlers.added;
        let on_mutation = callback::forever(Box::new(move |_| added()));
        if let Ok(mutations) = MutationObserver::new(&on_mutation) {
            let init = MutationObserverInit::new();
            init.set_child_list(true);
            init.set_subtree(true);
            let _ = mutations.observe_with_options(document, &init);
        }
        Some(Self { list: Vec::new(), near, seen, on_click: handlers.click })
    }

    /// Takes in every marked element not seen before: a shadow root with the skeleton,
    /// watched until it comes near the viewport.
    pub(crate) fn discover(&mut self, document: &Document) {
        let Ok(found) = document.query_selector_all("[data-patron-recommendations]") else { return };
        for i in 0..found.length() {
            let Some(element) = found.get(i).and_then(|n| n.dyn_into::<Element>().ok()) else { continue };
            if self.list.iter().any(|s| s.element == element) {
                continue;
            }
            let Ok(root) = element.attach_shadow(&ShadowRootInit::new(ShadowRootMode::Open)) else { continue };
            let mut h = String::with_capacity(2000);
            style(&mut h);
            h.push_str("<section aria-hidden=\"true\"><h2 class=\"k\"></h2><ul>");
            for _ in 0..SKELETON_CARDS {
                h.push_str("<li class=\"k\"></li>");
            }
            h.push_str("</ul></section>");
            root.set_inner_html(&h);
            let (host, click) = (element.clone(), self.on_click);
            listen(
                &root,
                "click",
                Box::new(move |event| {
                    let target = event.target().and_then(|t| t.dyn_into::<Element>().ok());
                    if let Some(id) = target
                        .and_then(|t| t.closest("[data-a=rec]").ok().flatten())
                        .and_then(|a| a.get_attribute("data-v"))
                    {
                        click(host.clone(), id);
                    }
                }),
            );
            self.near.observe(&element);
            let placement = element.get_attribute(ATTRIBUTE).unwrap_or_default();
            self.list.push(Strip { element, root, placement, phase: Phase::Waiting, impression_sent: false });
        }
    }

    /// The request for a strip that came near the viewport, once.
    pub(crate) fn start_loading(&mut self, element: &Element) -> Option<Params> {
        self.near.unobserve(element);
        let strip = self.find(element)?;
        if !matches!(strip.phase, Phase::Waiting) {
            return None;
        }
        strip.phase = Phase::Loading;
        let attribute = |name| element.get_attribute(name);
        Some([
            ("placement", Some(strip.placement.clone())),
            ("product_id", attribute("data-product-id")),
            ("cart", attribute("data-cart")),
            ("limit", attribute("data-limit")),
        ])
    }

    /// Records a strip's list (`None`: the request failed).
    pub(crate) fn loaded(&mut self, element: &Element, items: Option<Vec<JsValue>>) {
        if let Some(strip) = self.find(element) {
            strip.phase = Phase::Loaded(items.unwrap_or_default());
        }
    }

    /// Hides the strips with nothing to show, and draws those whose list arrived once
    /// the shop's language and currency are known.
    pub(crate) fn draw(&mut self, shop: Option<(&Text, &str)>) {
        for strip in &mut self.list {
            let Phase::Loaded(items) = &mut strip.phase else { continue };
            if items.is_empty() {
                // Inline, so that it wins over the page's own rules for the element.
                let _ = strip.element.set_attribute("style", "display:none!important");
                strip.phase = Phase::Hidden;
                continue;
            }
            let Some((t, currency)) = shop else { continue };
            let items = core::mem::take(items);
            let mut h = String::with_capacity(800 + items.len() * 400);
            style(&mut h);
            h.push_str("<section aria-labelledby=\"h\" lang=\"");
            h.push_str(t.tag);
            h.push_str("\"><h2 id=\"h\">");
            let title = strip.element.get_attribute("data-title");
            esc(&mut h, title.as_deref().unwrap_or_else(|| heading(t, &strip.placement)));
            h.push_str("</h2><ul class=\"rc\">");
            for rec in &items {
                recs::card(&mut h, t, rec, currency);
            }
            h.push_str("</ul></section>");
            strip.root.set_inner_html(&h);
            self.seen.observe(&strip.element);
            strip.phase = Phase::Shown(items);
        }
    }

    /// The impression of a strip that is now half on screen, the first time only.
    pub(crate) fn impression(&mut self, element: &Element) -> Option<Event> {
        self.seen.unobserve(element);
        let strip = self.find(element)?;
        let Phase::Shown(items) = &strip.phase else { return None };
        if strip.impression_sent {
            return None;
        }
        strip.impression_sent = true;
        Some(recs::impression(&strip.placement, items))
    }

    /// The click on a card of a strip.
    pub(crate) fn click(&mut self, element: &Element, recommendation_id: &str) -> Option<Event> {
        let strip = self.find(element)?;
        let Phase::Shown(items) = &strip.phase else { return None };
        Some(recs::click(&strip.placement, recs::find(items, recommendation_id)?))
    }

    fn find(&mut self, element: &Element) -> Option<&mut Strip> {
        self.list.iter_mut().find(|s| s.element == *element)
    }
}

fn style(h: &mut String) {
    h.push_str("<style>");
    h.push_str(THEME);
    h.push_str(recs::CARD_STYLE);
    h.push_str(STYLE);
    h.push_str("</style>");
}

fn heading(t: &Text, placement: &str) -> &'static str {
    match placement {
        "home" => t.popular,
        "for-you" => t.recommended,
        _ => t.also_like,
    }
}

/// An `IntersectionObserver` that calls `f` with the element of every entry at or past
/// `threshold` (for 0: every entry that intersects).
fn observer(f: fn(Element), root_margin: &str, threshold: f64) -> Option<IntersectionObserver> {
    let callback = callback::forever(Box::new(move |entries| {
        for entry in Array::from(&entries).iter() {
            let entry: IntersectionObserverEntry = entry.unchecked_into();
            // (The ratio reported at a crossing can fall a hair short of the threshold.)
            if entry.is_intersecting() && entry.intersection_ratio() + 0.01 >= threshold {
                f(entry.target());
            }
        }
    }));
    let init = IntersectionObserverInit::new();
    init.set_root_margin(root_margin);
    init.set_threshold_f64(threshold);
    IntersectionObserver::new_with_options(&callback, &init).ok()
}
