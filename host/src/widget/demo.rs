//! The demo storefront of `patron serve --demo`: a home page, product pages, search and
//! a cart, in plain HTML with a few lines of inline script, embedding the widget with
//! the one `<script>` tag a merchant pastes.
//!
//! "Sign in" (`/demo/login`) sets a cookie; while it is set, the pages do what a store's
//! back end does for a signed-in shopper: put the customer id and the customer token
//! (computed by whoever built the [`DemoStore`]) into the snippet.

use std::fmt::Write as _;
use std::sync::Arc;

use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::get;
use serde::Deserialize;

use crate::auth::customer_token;
use crate::store::products::Product;
use crate::store::shops::Shop;
use crate::store::{Db, StoreResult};

/// Cookie that marks the demo shopper as signed in.
const MEMBER_COOKIE: &str = "patron_demo_member";

/// What the demo storefront shows and how it embeds the widget.
#[derive(Clone, Debug)]
pub struct DemoStore {
    pub shop_name: String,
    /// The shop's publishable key, `pk_…`.
    pub publishable_key: String,
    /// Where the widget is loaded from, e.g. `https://patron.example.com`; empty for
    /// this host (the snippet's `src` is then `/widget/patron.js`).
    pub widget_origin: String,
    /// Products to sell, in display order; prices in minor units.
    pub products: Vec<Product>,
    pub currency: String,
    /// The shopper "Sign in" signs in as.
    pub member: Option<DemoMember>,
    /// Show a cookie banner that calls `patron.consent(…)`.
    pub consent_banner: bool,
}

impl DemoStore {
    /// The storefront of `shop` on this host: its catalogue, and "Sign in" as its best
    /// customer.
    pub async fn of_shop(db: &Db, shop: &Shop) -> StoreResult<Self> {
        let best = db.best_customer(shop.id).await?;
        let member = best.and_then(|customer| {
            let external_id = customer.external_id?;
            let token = customer_token(&shop.secret_hash, &external_id)?;
            Some(DemoMember { customer_id: external_id, customer_token: token })
        });
        Ok(Self {
            shop_name: shop.name.clone(),
            publishable_key: shop.publishable_key.clone(),
            widget_origin: String::new(),
            products: db.products(shop.id).await?,
            currency: shop.currency.clone(),
            member,
            consent_banner: shop.consent_required,
        })
    }
}

/// A customer of the demo shop and the token the store's back end computes for them.
#[derive(Clone, Debug)]
pub struct DemoMember {
    pub customer_id: String,
    pub customer_token: String,
}

pub(super) fn router<S: Clone + Send + Sync + 'static>(store: DemoStore) -> Router<S> {
    Router::new()
        .route("/demo", get(|| async { Redirect::permanent("/demo/") }))
        .route("/demo/", get(home))
        .route("/demo/products/{id}", get(product))
        .route("/demo/search", get(search))
        .route("/demo/cart", get(cart))
        .route("/demo/login", get(login))
        .route("/demo/logout", get(logout))
        .with_state(Arc::new(store))
}

async fn home(State(store): State<Arc<DemoStore>>, headers: HeaderMap) -> Html<String> {
    let mut body = String::from("<h1>Fresh from the roastery</h1><ul class=\"grid\">");
    for product in store.products.iter().take(12) {
        product_card(&mut body, &store, product);
    }
    body.push_str("</ul>");
    page(&store, &headers, "Home", "", &body)
}

async fn product(State(store): State<Arc<DemoStore>>, Path(id): Path<String>, headers: HeaderMap) -> Response {
    let Some(p) = store.products.iter().find(|p| p.id == id) else {
        return (StatusCode::NOT_FOUND, page(&store, &headers, "Not found", "", "<h1>No such product</h1>"))
            .into_response();
    };
    let head = format!("<meta name=\"patron:product\" content=\"{}\">", esc(&p.id));
    let mut body = String::from("<article class=\"product\">");
    picture(&mut body, p);
    let _ = write!(
        body,
        "<div><h1>{title}</h1><p class=\"price\">{price}</p><p>{category}</p>\
         <button class=\"buy\" data-patron-event=\"add_to_cart\" data-patron-product=\"{id}\" \
         data-patron-price=\"{minor}\" onclick=\"demoCart.add('{id}')\">Add to cart</button>\
         <p id=\"added\" role=\"status\"></p>\
         <div data-patron-recommendations=\"product\" data-product-id=\"{id}\"></div>\
         <p class=\"about\">Roasted or blended in small batches and shipped within two days. \
         Free returns within 30 days.</p></div></article>",
        title = esc(&p.title),
        price = money(p.price, &store.currency),
        category = esc(p.category.as_deref().unwrap_or("")),
        id = esc(&p.id),
        minor = p.price,
    );
    page(&store, &headers, &p.title, &head, &body).into_response()
}

#[derive(Deserialize)]
struct SearchQuery {
    #[serde(default)]
    q: String,
}

async fn search(
    State(store): State<Arc<DemoStore>>,
    Query(query): Query<SearchQuery>,
    headers: HeaderMap,
) -> Html<String> {
    let needle = query.q.to_lowercase();
    let mut body = format!("<h1>Results for “{}”</h1><ul class=\"grid\">", esc(&query.q));
    let mut found = 0;
    for product in store.products.iter().filter(|p| !needle.is_empty() && p.title.to_lowercase().contains(&needle)) {
        product_card(&mut body, &store, product);
        found += 1;
    }
    body.push_str("</ul>");
    if found == 0 {
        body.push_str("<p>Nothing matched. Try “coffee” or “tea”.</p>");
    }
    // A merchant reports searches through the JS API.
    let _ = write!(body, "<script>demoTrack('search',{{query:{}}})</script>", js_string(&query.q));
    page(&store, &headers, "Search", "", &body)
}

async fn cart(State(store): State<Arc<DemoStore>>, headers: HeaderMap) -> Html<String> {
    let mut catalogue = String::from("{");
    for p in &store.products {
        let _ = write!(catalogue, "{}:[{},{}],", js_string(&p.id), js_string(&p.title), p.price);
    }
    catalogue.push('}');
    let body = format!(
        "<h1>Your cart</h1><ul id=\"lines\" class=\"lines\"></ul><p id=\"total\"></p>\
         <button class=\"buy\" id=\"checkout\" data-patron-event=\"checkout_started\">Checkout</button>\
         <p id=\"done\" role=\"status\"></p><div id=\"recs\"></div>\
         <script>demoCart.render({catalogue},{currency})</script>",
        currency = js_string(&store.currency)
    );
    page(&store, &headers, "Cart", "", &body)
}

async fn login() -> Response {
    let cookie = format!("{MEMBER_COOKIE}=1; Path=/demo; SameSite=Lax");
    ([(header::SET_COOKIE, cookie)], Redirect::to("/demo/")).into_response()
}

async fn logout() -> Response {
    let cookie = format!("{MEMBER_COOKIE}=; Path=/demo; Max-Age=0; SameSite=Lax");
    ([(header::SET_COOKIE, cookie)], Redirect::to("/demo/")).into_response()
}

fn signed_in(headers: &HeaderMap) -> bool {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .any(|c| c.trim() == format!("{MEMBER_COOKIE}=1"))
}

/// The one tag a merchant pastes into every page.
pub fn snippet(store: &DemoStore, member: Option<&DemoMember>, join_url: &str) -> String {
    let mut tag = format!(
        "<script async src=\"{}/widget/patron.js\" data-key=\"{}\"",
        esc(store.widget_origin.trim_end_matches('/')),
        esc(&store.publishable_key)
    );
    if let Some(m) = member {
        let _ = write!(
            tag,
            " data-customer-id=\"{}\" data-customer-token=\"{}\"",
            esc(&m.customer_id),
            esc(&m.customer_token)
        );
    }
    let _ = write!(tag, " data-join-url=\"{}\"></script>", esc(join_url));
    tag
}

fn page(store: &DemoStore, headers: &HeaderMap, title: &str, head: &str, body: &str) -> Html<String> {
    let member = store.member.as_ref().filter(|_| signed_in(headers));
    let account = match member {
        Some(m) => format!("Signed in as {} · <a href=\"/demo/logout\">Sign out</a>", esc(&m.customer_id)),
        None if store.member.is_some() => "<a href=\"/demo/login\">Sign in</a>".to_owned(),
        None => String::new(),
    };
    let banner = if store.consent_banner { CONSENT_BANNER } else { "" };
    Html(format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">\
         <title>{title} · {shop}</title>{head}\n{snippet}\n<style>{STYLE}</style><script>{SCRIPT}</script></head>\
         <body><header class=\"top\"><a class=\"logo\" href=\"/demo/\">{shop}</a>\
         <form action=\"/demo/search\" role=\"search\"><input name=\"q\" placeholder=\"Search coffee, tea…\" aria-label=\"Search\"></form>\
         <nav><a href=\"/demo/cart\" id=\"cart-link\">Cart</a> {account}</nav></header>\
         <main>{body}</main>{banner}</body></html>",
        title = esc(title),
        shop = esc(&store.shop_name),
        snippet = snippet(store, member, "/demo/login"),
    ))
}

fn product_card(out: &mut String, store: &DemoStore, p: &Product) {
    let _ = write!(out, "<li><a href=\"/demo/products/{}\">", esc(&p.id));
    picture(out, p);
    let _ = write!(out, "<span>{}</span><b>{}</b></a></li>", esc(&p.title), money(p.price, &store.currency));
}

/// A coloured tile with the product's initial: the demo ships no images.
fn picture(out: &mut String, p: &Product) {
    let hue = p.id.bytes().fold(7u32, |h, b| h.wrapping_mul(31).wrapping_add(u32::from(b))) % 360;
    let initial = p.title.chars().next().unwrap_or('?');
    let _ = write!(
        out,
        "<div class=\"pic\" style=\"background:hsl({hue} 45% 82%)\" aria-hidden=\"true\">{}</div>",
        esc(&initial.to_string())
    );
}

fn money(minor: i64, currency: &str) -> String {
    let sign = if minor < 0 { "-" } else { "" };
    let minor = minor.unsigned_abs();
    let symbol = match currency {
        "USD" => "$",
        "EUR" => "€",
        "GBP" => "£",
        "CNY" => "¥",
        _ => "",
    };
    if symbol.is_empty() {
        format!("{sign}{}.{:02} {currency}", minor / 100, minor % 100)
    } else {
        format!("{sign}{symbol}{}.{:02}", minor / 100, minor % 100)
    }
}

fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// A JSON string literal that is also safe inside a `<script>` element.
fn js_string(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_else(|_| "\"\"".into()).replace('<', "\\u003c")
}

const STYLE: &str = "\
*{box-sizing:border-box}body{margin:0;font:16px/1.5 system-ui,sans-serif;color:#1f2937;background:#faf7f2}\
a{color:inherit}.top{display:flex;gap:16px;align-items:center;justify-content:space-between;padding:14px 28px;background:#fff;border-bottom:1px solid #eee}\
.logo{font-weight:800;font-size:20px;text-decoration:none;color:#7c2d12}.top input{padding:8px 12px;border:1px solid #ddd;border-radius:8px;width:260px}\
main{max-width:1040px;margin:0 auto;padding:24px 28px 120px}.grid{list-style:none;padding:0;display:grid;grid-template-columns:repeat(auto-fill,minmax(200px,1fr));gap:18px}\
.grid a{display:block;background:#fff;border-radius:12px;padding:12px;text-decoration:none;box-shadow:0 1px 3px rgba(0,0,0,.08)}\
.grid span{display:block;margin-top:8px}.pic{display:grid;place-items:center;aspect-ratio:1;border-radius:10px;font-size:48px;font-weight:700;color:#7c2d12}\
.product{display:grid;grid-template-columns:1fr 1fr;gap:32px}.product>div{min-width:0}.price{font-size:24px;font-weight:700}\
.buy{background:#7c2d12;color:#fff;border:0;border-radius:10px;padding:12px 22px;font:inherit;font-weight:600;cursor:pointer}\
.lines{list-style:none;padding:0}.lines li{display:flex;justify-content:space-between;gap:12px;padding:10px 0;border-bottom:1px solid #eee}\
[data-patron-recommendations]{display:block;height:272px;margin:20px 0}#added{min-height:1.5em}\
.consent{position:fixed;left:20px;bottom:20px;max-width:420px;background:#111827;color:#fff;padding:16px;border-radius:12px}\
.consent button{margin:8px 8px 0 0;padding:8px 14px;border-radius:8px;border:0;font:inherit;cursor:pointer}";

/// The demo's cart (in `localStorage`; its recommendation strip is for the cart's
/// products, or best sellers while it is empty) and a guarded `patron.track` that queues into
/// the loader's queue if the widget has not loaded yet — what a merchant would write.
const SCRIPT: &str = "\
function demoTrack(n,p){var w=window.patron=window.patron||{_q:[]};w.track?w.track(n,p):w._q.push(['track',[n,p]])}\
var demoCart={get:function(){try{return JSON.parse(localStorage.demo_cart||'{}')}catch(e){return{}}},\
set:function(c){localStorage.demo_cart=JSON.stringify(c)},\
add:function(id){var c=demoCart.get();c[id]=(c[id]||0)+1;demoCart.set(c);var a=document.getElementById('added');if(a)a.textContent='Added to your cart.'},\
remove:function(id){var c=demoCart.get();delete c[id];demoCart.set(c);location.reload()},\
render:function(cat,cur){var c=demoCart.get(),ul=document.getElementById('lines'),t=0;\
Object.keys(c).forEach(function(id){var p=cat[id];if(!p)return;t+=p[1]*c[id];var li=document.createElement('li');\
li.innerHTML='<span></span><span></span><button data-patron-event=\"remove_from_cart\">Remove</button>';\
li.children[0].textContent=c[id]+' × '+p[0];li.children[1].textContent=(p[1]*c[id]/100).toFixed(2)+' '+cur;\
var b=li.children[2];b.setAttribute('data-patron-product',id);b.setAttribute('data-patron-quantity',c[id]);b.setAttribute('data-patron-price',p[1]);\
b.onclick=function(){setTimeout(function(){demoCart.remove(id)},50)};ul.appendChild(li)});\
var r=document.getElementById('recs'),ids=Object.keys(c).filter(function(id){return cat[id]});\
if(ids.length){r.setAttribute('data-cart',ids.join(','))}r.setAttribute('data-patron-recommendations',ids.length?'cart':'home');\
document.getElementById('total').textContent=t?'Total: '+(t/100).toFixed(2)+' '+cur:'Your cart is empty.';\
document.getElementById('checkout').onclick=function(){document.getElementById('done').textContent='Thanks! This is a demo: nothing was charged.'}}};";

const CONSENT_BANNER: &str = "<div class=\"consent\" id=\"consent\" role=\"dialog\" aria-label=\"Cookie consent\">\
<p>We use analytics to recommend products and run our rewards program. OK?</p>\
<button id=\"consent-accept\" onclick=\"window.patron&&patron.consent(true);this.parentNode.remove()\">Accept</button>\
<button id=\"consent-decline\" onclick=\"window.patron&&patron.consent(false);this.parentNode.remove()\">Decline</button></div>\
<script>if(localStorage.patron_consent)document.getElementById('consent').remove()</script>";

#[cfg(test)]
mod tests {
    use super::*;

    fn store() -> DemoStore {
        DemoStore {
            shop_name: "Demo <Roasters>".into(),
            publishable_key: "pk_test".into(),
            widget_origin: "http://127.0.0.1:9/".into(),
            products: Vec::new(),
            currency: "USD".into(),
            member: None,
            consent_banner: false,
        }
    }

    #[test]
    fn snippet_is_the_async_tag_a_merchant_pastes() {
        let member = DemoMember { customer_id: "ext-1".into(), customer_token: "ab\"cd".into() };
        let tag = snippet(&store(), Some(&member), "/join");
        assert_eq!(
            tag,
            "<script async src=\"http://127.0.0.1:9/widget/patron.js\" data-key=\"pk_test\" \
             data-customer-id=\"ext-1\" data-customer-token=\"ab&quot;cd\" data-join-url=\"/join\"></script>"
        );
    }

    #[test]
    fn money_and_script_strings() {
        assert_eq!(money(1999, "USD"), "$19.99");
        assert_eq!(money(5, "SEK"), "0.05 SEK");
        assert_eq!(js_string("</script>"), "\"\\u003c/script>\"");
    }
}
