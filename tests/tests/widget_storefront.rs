//! The storefront widget in headless Chromium against the demo storefront, with the
//! host in-process on a fresh SQLite database.
//!
//! The storefront is opened as `http://localhost:<port>/demo/…` while the snippet loads
//! the widget from `http://127.0.0.1:<port>`: a different origin, so CORS is exercised
//! as on a real store. Needs the widget built (`web-widget/build.sh`).

use std::time::Duration;

use patron::demo::SeedOptions;
use patron::demo::catalog::planted_pairs;
use patron::store::Db;
use patron::store::products::Product;
use patron::store::shops::{NewShop, Shop};
use patron::testing::{Backend, fresh_db};
use patron::widget::{DemoMember, DemoStore, WidgetAssets};
use patron_e2e::browser::Browser;
use serde_json::Value;
use tokio::net::TcpListener;
use tokio::sync::oneshot;

const WAIT: Duration = Duration::from_secs(15);
/// Script: the widget's shadow root, or null before the panel mounted.
const ROOT: &str = "var h=document.getElementById('patron-widget');var r=h&&h.shadowRoot;";

/// A running host with the demo storefront for one shop.
struct Storefront {
    db: Db,
    shop: Shop,
    /// `http://localhost:<port>`: where the shopper browses.
    store_url: String,
    /// `http://127.0.0.1:<port>`: where the widget and the API are.
    patron_url: String,
    stop: Option<oneshot::Sender<()>>,
}

impl Drop for Storefront {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

fn products() -> Vec<Product> {
    [
        ("house-blend", "House Blend Coffee", 1450),
        ("jasmine-green", "Jasmine Green Tea", 990),
        ("pour-over-kit", "Pour-over Kit", 3900),
    ]
    .into_iter()
    .map(|(id, title, price)| Product {
        id: id.into(),
        title: title.into(),
        price,
        currency: None,
        category: Some("Coffee & tea".into()),
        url: Some(format!("/demo/products/{id}")),
        image_url: None,
        available: true,
    })
    .collect()
}

fn built_widget() -> WidgetAssets {
    let assets = WidgetAssets::from_env();
    assert!(
        assets.dir().join("patron_bg.wasm").is_file(),
        "the widget is not built in {}: run web-widget/build.sh first",
        assets.dir().display()
    );
    assets
}

/// Installs the first-party loyalty plugin and gives customer `ext-1` an order, so
/// they hold a tier, points and the rewards catalogue.
async fn seed_member(db: &Db, shop: &Shop) {
    let plugins = patron::plugins::PluginHost::new(db.clone(), None);
    let manifest_path = concat!(env!("CARGO_MANIFEST_DIR"), "/../plugins/loyalty/patron.toml");
    let manifest = patron_runtime::Manifest::from_toml(&std::fs::read_to_string(manifest_path).expect("manifest"))
        .expect("valid manifest");
    let grants = manifest.imports.iter().map(|c| c.name().to_owned()).collect();
    let wasm = patron_runtime::testing::plugin_wasm("loyalty").expect("loyalty plugin builds");
    let config = serde_json::json!({"currency": shop.currency, "points-expiry-days": 365});
    plugins.install(shop.id, wasm, manifest, grants, Some(config), true).await.expect("install loyalty");
    let input: patron::store::orders::OrderInput = serde_json::from_value(serde_json::json!({
        "id": "seed-1", "customer": {"external_id": "ext-1", "first_name": "Mei"},
        "lines": [{"product_id": "pour-over-kit", "title": "Pour-over Kit", "quantity": 10, "unit_price": 3900}]
    }))
    .expect("order");
    let (order, customer) = input.validate(&shop.currency).expect("valid order");
    let outcome = db.upsert_order(shop.id, order, customer.as_ref()).await.expect("order stored");
    plugins.order_placed(shop, &outcome.order).await.expect("points awarded");
}

/// A port for the host, seen as two origins: the store's and Patron's.
struct Address {
    listener: TcpListener,
    store_url: String,
    patron_url: String,
}

async fn address() -> Address {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let port = listener.local_addr().expect("addr").port();
    Address { listener, store_url: format!("http://localhost:{port}"), patron_url: format!("http://127.0.0.1:{port}") }
}

/// A fresh database with one shop named `name` that allows the store's origin.
async fn shop(name: &str, address: &Address, configure: impl FnOnce(&mut NewShop)) -> (Db, Shop) {
    let db = fresh_db(Backend::Sqlite).await;
    let mut new = NewShop::named(name);
    new.allowed_origins = vec![address.store_url.clone()];
    configure(&mut new);
    let (shop, _keys) = db.create_shop(&new).await.expect("create shop");
    (db, shop)
}

/// Starts the host (API + widget + demo store) for a new shop shaped by `configure`.
/// `widget_origin` overrides where the snippet loads the widget from (a dead address
/// simulates Patron being down).
async fn storefront(configure: impl FnOnce(&mut NewShop), member: bool, widget_origin: Option<String>) -> Storefront {
    let address = address().await;
    let (db, shop) = shop("Bean & Leaf", &address, configure).await;
    if member {
        seed_member(&db, &shop).await;
    }
    let demo_member = member.then(|| DemoMember {
        customer_id: "ext-1".into(),
        customer_token: patron::auth::customer_token(&shop.secret_hash, "ext-1").expect("token"),
    });
    let demo = DemoStore {
        shop_name: shop.name.clone(),
        publishable_key: shop.publishable_key.clone(),
        widget_origin: widget_origin.unwrap_or_else(|| address.patron_url.clone()),
        products: products(),
        currency: shop.currency.clone(),
        member: demo_member,
        consent_banner: shop.consent_required,
    };
    serve(db, shop, address, demo)
}

/// The demo shop as `patron serve --demo` sets it up — seeded, with the first-party
/// recommender installed and trained — behind its demo storefront.
async fn demo_storefront() -> Storefront {
    let address = address().await;
    let (db, shop) = shop("Demo Store", &address, |_| {}).await;
    patron::demo::seed(&db, &shop, &SeedOptions { customers: 1_000, ..SeedOptions::default() }).await.expect("seed");
    let plugins = patron::plugins::PluginHost::new(db.clone(), None);
    let wasm = patron_runtime::testing::plugin_wasm("recommender").expect("recommender plugin builds");
    let trained = patron::demo::recommender::install(&plugins, &shop, wasm).await.expect("install the recommender");
    assert!(trained.is_some_and(|t| t.orders > 100), "the recommender was trained over the seeded orders");
    let mut demo = DemoStore::of_shop(&db, &shop).await.expect("demo store");
    demo.widget_origin = address.patron_url.clone();
    serve(db, shop, address, demo)
}

fn serve(db: Db, shop: Shop, address: Address, demo: DemoStore) -> Storefront {
    let Address { listener, store_url, patron_url } = address;
    let mut state = patron::AppState::new(db.clone());
    state.widget = built_widget();
    state.demo = Some(demo);
    let app = patron::app(state);
    let (stop, stopped) = oneshot::channel::<()>();
    tokio::spawn(async move {
        let _ = axum::serve(listener, app)
            .with_graceful_shutdown(async {
                let _ = stopped.await;
            })
            .await;
    });
    Storefront { db, shop, store_url, patron_url, stop: Some(stop) }
}

impl Storefront {
    async fn events(&self) -> Vec<patron::store::events::StoredEvent> {
        self.db.recent_events(self.shop.id, 1000).await.expect("read events")
    }

    async fn wait_for_events(
        &self,
        what: &str,
        done: impl Fn(&[patron::store::events::StoredEvent]) -> bool,
    ) -> Vec<patron::store::events::StoredEvent> {
        let deadline = std::time::Instant::now() + WAIT;
        loop {
            let events = self.events().await;
            if done(&events) {
                return events;
            }
            let kinds: Vec<&str> = events.iter().map(|e| e.kind.as_str()).collect();
            assert!(std::time::Instant::now() < deadline, "timed out waiting for {what}; stored: {kinds:?}");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}

fn count(events: &[patron::store::events::StoredEvent], kind: &str) -> usize {
    events.iter().filter(|e| e.kind == kind).count()
}

/// Waits until the widget has loaded its state and mounted the launcher.
async fn wait_for_launcher(browser: &Browser) {
    browser.wait_for("the widget's launcher", WAIT, &format!("{ROOT} return !!(r && r.querySelector('.l'));")).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_reach_the_host_and_are_stored_once() {
    let store = storefront(|_| {}, false, None).await;
    let browser = Browser::start().await;
    browser.goto(&format!("{}/demo/products/house-blend", store.store_url)).await;
    let events = store
        .wait_for_events("page_view and product_view", |e| count(e, "page_view") == 1 && count(e, "product_view") == 1)
        .await;
    let view = events.iter().find(|e| e.kind == "product_view").expect("product view");
    assert_eq!(view.properties["product_id"], "house-blend");
    browser
        .wait_for(
            "the product page's strip, hidden: the shop has no recommender",
            WAIT,
            "return getComputedStyle(document.querySelector('[data-patron-recommendations]')).display === 'none';",
        )
        .await;
    assert!(view.anonymous_id.as_deref().is_some_and(|a| a.starts_with("a_")), "{view:?}");

    // Markup-driven cart event, and a custom event through the JS API.
    browser.js("document.querySelector('.buy').click(); patron.track('wishlist', {product_id: 'house-blend'});").await;
    let events = store
        .wait_for_events("add_to_cart and custom:wishlist", |e| {
            count(e, "add_to_cart") == 1 && count(e, "custom:wishlist") == 1
        })
        .await;
    let cart = events.iter().find(|e| e.kind == "add_to_cart").expect("add to cart");
    assert_eq!(cart.properties["product_id"], "house-blend");
    assert_eq!(cart.properties["price"], 1450);
    assert_eq!(cart.properties["quantity"], 1);

    // Search through the guarded JS API a store writes inline, then leave the page:
    // whatever is still queued goes out with sendBeacon on pagehide.
    browser.goto(&format!("{}/demo/search?q=tea", store.store_url)).await;
    browser.js("patron.track('search', {query: 'green'});").await;
    browser.goto(&format!("{}/demo/cart", store.store_url)).await;
    let events = store
        .wait_for_events("both searches and the cart page view", |e| {
            count(e, "search") == 2 && count(e, "page_view") == 3
        })
        .await;

    // Give any retry a chance to happen, then check nothing was stored twice.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let after = store.events().await;
    assert_eq!(after.len(), events.len(), "events stored after the queue drained");
    let mut ids: Vec<&str> = after.iter().map(|e| e.event_id.as_str()).collect();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), after.len(), "an event id was stored twice");
    let anonymous: Vec<_> = after.iter().filter_map(|e| e.anonymous_id.as_deref()).collect();
    assert!(anonymous.windows(2).all(|w| w[0] == w[1]), "one anonymous id across pages: {anonymous:?}");
    let queued =
        browser.js("return Object.keys(localStorage).filter(function(k){return k.indexOf('patron_q')==0});").await;
    assert_eq!(queued, serde_json::json!([]), "the offline queue is empty once everything is delivered");
    browser.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nothing_is_sent_or_stored_before_consent() {
    let store = storefront(|s| s.consent_required = true, false, None).await;
    let browser = Browser::start().await;
    browser.goto(&format!("{}/demo/products/jasmine-green", store.store_url)).await;
    wait_for_launcher(&browser).await;
    browser.js("patron.track('search', {query: 'before consent'});").await;
    // Longer than the flush interval.
    tokio::time::sleep(Duration::from_secs(4)).await;
    assert!(store.events().await.is_empty(), "events were stored before consent");
    let sent = browser
        .js("return performance.getEntriesByType('resource').filter(function(e){return /\\/v1\\/(events|identify)/.test(e.name)}).length;")
        .await;
    assert_eq!(sent, 0, "a request went to /v1/events or /v1/identify before consent");
    let stored =
        browser.js("return Object.keys(localStorage).filter(function(k){return k.indexOf('patron_')==0});").await;
    assert_eq!(stored, serde_json::json!([]), "the widget kept data in localStorage before consent");

    // The shopper accepts in the store's banner: what this page collected goes out.
    browser.js("document.getElementById('consent-accept').click();").await;
    store
        .wait_for_events("the events held until consent", |e| {
            count(e, "page_view") == 1 && count(e, "product_view") == 1 && count(e, "search") == 1
        })
        .await;
    browser.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_page_still_works_when_patron_is_down() {
    // Nothing listens on this port: the loader's import fails.
    let dead = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let dead_origin = format!("http://127.0.0.1:{}", dead.local_addr().expect("addr").port());
    drop(dead);
    let store = storefront(|_| {}, false, Some(dead_origin)).await;
    let browser = Browser::start().await;
    browser
        .js("window.__errors = []; window.addEventListener('error', function(e){ window.__errors.push(String(e.message)); });")
        .await;
    browser.goto(&format!("{}/demo/products/pour-over-kit", store.store_url)).await;
    browser.js("window.__errors = []; window.addEventListener('error', function(e){ window.__errors.push(String(e.message)); });").await;
    // The store's own button and the JS API keep working.
    // What a merchant writes: the JS API guarded (demoTrack), since the loader itself
    // may not have arrived.
    browser.js("document.querySelector('.buy').click(); demoTrack('wishlist', {product_id: 'pour-over-kit'});").await;
    browser
        .wait_for("the store's own add-to-cart feedback", WAIT, "return document.getElementById('added').textContent;")
        .await;
    let cart = browser.js("return JSON.parse(localStorage.demo_cart)['pour-over-kit'];").await;
    assert_eq!(cart, 1);
    let errors = browser.js("return window.__errors;").await;
    assert_eq!(errors, serde_json::json!([]), "the page saw script errors");
    let panel = browser.js(&format!("{ROOT} return !!r;")).await;
    assert_eq!(panel, false, "no panel without Patron");

    // Now the widget loads but Patron's API does not answer: a server with the widget
    // files only.
    let assets_only = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let assets_origin = format!("http://127.0.0.1:{}", assets_only.local_addr().expect("addr").port());
    tokio::spawn(async move {
        let _ = axum::serve(assets_only, patron::widget::router::<()>(built_widget(), None)).await;
    });
    let store = storefront(|_| {}, false, Some(assets_origin)).await;
    browser.goto(&format!("{}/demo/products/pour-over-kit", store.store_url)).await;
    browser.js("window.__errors = []; window.addEventListener('error', function(e){ window.__errors.push(String(e.message)); });").await;
    browser
        .wait_for(
            "the widget to replace the loader's stubs",
            WAIT,
            "return window.patron && patron._r === 1 && patron._q.length === 0;",
        )
        .await;
    browser.js("document.querySelector('.buy').click(); patron.track('wishlist', {product_id: 'pour-over-kit'}); patron.identify('ext-9', '00'); patron.consent(true);").await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let errors = browser.js("return window.__errors;").await;
    assert_eq!(errors, serde_json::json!([]), "the page saw script errors with the API down");
    assert!(store.events().await.is_empty());
    browser.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn anonymous_shoppers_see_a_join_prompt() {
    let store = storefront(|_| {}, true, None).await;
    let browser = Browser::start().await;
    browser.goto(&format!("{}/demo/", store.store_url)).await;
    wait_for_launcher(&browser).await;
    browser.js(&format!("{ROOT} r.querySelector('.l').click();")).await;
    let title = browser
        .wait_for(
            "the open panel",
            WAIT,
            &format!("{ROOT} var p=r.querySelector('.p'); return p && !p.hidden && r.querySelector('h2').textContent;"),
        )
        .await;
    assert_eq!(title, "Join Bean & Leaf Rewards");
    let cta = browser.js(&format!("{ROOT} var a=r.querySelector('a.cta'); return a && a.getAttribute('href');")).await;
    assert_eq!(cta, "/demo/login");
    let focused = browser.js(&format!("{ROOT} return r.activeElement && r.activeElement.id;")).await;
    assert_eq!(focused, "pt", "opening the panel moves focus into it");
    let path = browser.screenshot("widget-panel-anonymous").await;
    eprintln!("screenshot: {}", path.display());
    // Escape closes it and gives focus back to the launcher.
    browser
        .js(&format!("{ROOT} r.querySelector('h2').dispatchEvent(new KeyboardEvent('keydown', {{key: 'Escape', bubbles: true, composed: true}}));"))
        .await;
    let closed = browser.js(&format!("{ROOT} return r.querySelector('.p').hidden && r.activeElement.className;")).await;
    assert_eq!(closed, "l");
    let _ = store.patron_url;
    browser.close().await;
}

/// The member panel against the contract of `GET /v1/widget/state` and
/// `POST /v1/rewards/redeem`: what it shows must be what the host says, and redeeming
/// must update the balance. Needs the loyalty side of the host (member state, rewards).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn members_see_tier_points_and_coupons_and_can_redeem() {
    let store = storefront(|_| {}, true, None).await;
    let token = patron::auth::customer_token(&store.shop.secret_hash, "ext-1").expect("token");
    let state_url = format!(
        "{}/v1/widget/state?key={}&customer_id=ext-1&customer_token={token}",
        store.patron_url, store.shop.publishable_key
    );
    let state: Value = reqwest::get(&state_url).await.expect("state").json().await.expect("state json");
    let member = &state["member"];
    assert!(member.is_object(), "the host returned no member for a valid token: {state}");

    let browser = Browser::start().await;
    browser.goto(&format!("{}/demo/login", store.store_url)).await;
    wait_for_launcher(&browser).await;
    browser.js(&format!("{ROOT} r.querySelector('.l').click();")).await;
    let text = browser
        .wait_for(
            "the member panel",
            WAIT,
            &format!("{ROOT} var p=r.querySelector('.p'); return p && !p.hidden && p.textContent;"),
        )
        .await;
    let text = text.as_str().unwrap_or_default().to_owned();
    if let Some(tier) = member["tier"]["name"].as_str() {
        assert!(text.to_lowercase().contains(&tier.to_lowercase()), "tier {tier} not shown: {text}");
    }
    let balance = member["points"]["balance"].as_i64().expect("balance");
    let shown = browser.js(&format!("{ROOT} return r.querySelector('.pt').textContent.replace(/\\D/g, '');")).await;
    assert_eq!(shown, balance.to_string());
    for coupon in member["coupons"].as_array().into_iter().flatten() {
        let code = coupon["code"].as_str().unwrap_or_default();
        assert!(text.contains(code), "coupon {code} not shown");
    }
    browser.screenshot("widget-panel-member").await;

    let affordable = member["rewards"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|r| r["points"].as_i64().is_some_and(|p| p <= balance))
        .expect("the seeded member can afford a reward");
    let cost = affordable["points"].as_i64().unwrap_or_default();
    let id = affordable["id"].as_str().unwrap_or_default();
    // The first redemption reaches the host but its answer is lost on the way back, as on a
    // flaky connection: the widget must send it again under the same idempotency key.
    browser
        .js("window.__redeems = []; var f = window.fetch, n = 0; \
             window.fetch = function (u, i) { var p = f.apply(this, arguments); \
               if (String(u).indexOf('/v1/rewards/redeem') < 0) return p; \
               window.__redeems.push(i && i.body); \
               return n++ ? p : p.then(function () { throw new TypeError('connection lost'); }); };")
        .await;
    browser.js(&format!("{ROOT} r.querySelector('[data-a=redeem][data-v=\"{id}\"]').click();")).await;
    let expected = (balance - cost).to_string();
    browser
        .wait_for(
            "the new balance",
            WAIT,
            &format!(
                "{ROOT} var n=r.querySelector('.pt'); return n && n.textContent.replace(/\\D/g, '') === '{expected}';"
            ),
        )
        .await;
    browser.screenshot("widget-panel-member-redeemed").await;
    let sent = browser.js("return window.__redeems;").await;
    let sent: Vec<Value> = sent
        .as_array()
        .expect("redemptions sent")
        .iter()
        .map(|body| serde_json::from_str(body.as_str().expect("a text body")).expect("a JSON body"))
        .collect();
    assert_eq!(sent.len(), 2, "one redemption and one retry: {sent:?}");
    let key = sent[0]["idempotency_key"].as_str().expect("an idempotency key");
    assert!(key.len() >= 16, "{key}");
    assert_eq!(sent[0], sent[1], "the retry repeats the request, key included");
    let after: Value = reqwest::get(&state_url).await.expect("state").json().await.expect("state json");
    assert_eq!(after["member"]["points"]["balance"].as_i64(), Some(balance - cost), "spent once: {after}");
    let coupons = |state: &Value| state["member"]["coupons"].as_array().map_or(0, Vec::len);
    assert_eq!(coupons(&after), coupons(&state) + 1, "one coupon: {after}");
    browser.close().await;
}

/// Script: the first strip of `placement` and its shadow root (null until discovered).
fn strip(placement: &str) -> String {
    format!("var h=document.querySelector('[data-patron-recommendations={placement}]');var r=h&&h.shadowRoot;")
}

/// The recommendation events of `placement` stored so far.
fn recommendation_events<'a>(
    events: &'a [patron::store::events::StoredEvent],
    kind: &str,
    placement: &str,
) -> Vec<&'a Value> {
    events.iter().filter(|e| e.kind == kind && e.properties["placement"] == placement).map(|e| &e.properties).collect()
}

/// The product page of the demo storefront, on the seeded demo shop with its trained
/// recommender: the strip shows the products bought with this one, lazily and without
/// moving the page, and records one impression per page view and one click.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn product_pages_show_a_recommendation_strip_and_record_impressions_and_clicks() {
    let store = demo_storefront().await;
    let (anchor, companion) = planted_pairs().into_iter().next().expect("a planted pair");
    let browser = Browser::start().await;
    browser.goto(&format!("{}/demo/products/{anchor}", store.store_url)).await;
    let product = strip("product");
    let cards = browser
        .wait_for(
            "the product strip's cards",
            // The first request compiles the recommender component.
            Duration::from_secs(60),
            &format!(
                "{product} var a=r&&r.querySelectorAll('a[data-a=rec]'); return a && a.length && \
                 Array.prototype.map.call(a, function(a){{return [a.getAttribute('data-v'), a.getAttribute('href'), \
                 a.querySelector('span').textContent];}});"
            ),
        )
        .await;
    let cards: Vec<(String, String, String)> = serde_json::from_value(cards).expect("cards");
    let links: Vec<&str> = cards.iter().map(|(_, href, _)| href.as_str()).collect();
    assert!(
        links.contains(&format!("/demo/products/{companion}").as_str()),
        "{companion} is bought with {anchor}: {cards:?}"
    );
    assert!(!links.contains(&format!("/demo/products/{anchor}").as_str()), "never the page's own product");
    assert!(cards.iter().all(|(id, _, title)| !id.is_empty() && !title.is_empty()), "{cards:?}");
    let heading = browser.js(&format!("{product} return r.querySelector('h2').textContent;")).await;
    assert_eq!(heading, "You may also like");
    browser.screenshot("widget-recommendation-strip").await;

    // Nothing moved while the strip loaded: the page reserved its height, and the strip
    // keeps exactly that height.
    let supported = browser.js("return PerformanceObserver.supportedEntryTypes.indexOf('layout-shift') >= 0;").await;
    assert_eq!(supported, true, "this Chromium does not report layout shifts");
    browser
        .js("window.__shift = 0; new PerformanceObserver(function(list){ list.getEntries().forEach(function(e){ \
             if (!e.hadRecentInput) window.__shift += e.value; }); }).observe({type: 'layout-shift', buffered: true});")
        .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(browser.js("return window.__shift;").await, 0, "the page shifted while the strip loaded");
    assert_eq!(browser.js(&format!("{product} return h.getBoundingClientRect().height;")).await, 272);

    let events = store
        .wait_for_events("the product strip's impression", |e| {
            !recommendation_events(e, "recommendation_impression", "product").is_empty()
        })
        .await;
    let impression = recommendation_events(&events, "recommendation_impression", "product")[0].clone();
    let items = impression["items"].as_array().expect("items");
    let shown: Vec<(&str, String)> = items
        .iter()
        .map(|i| {
            (
                i["recommendation_id"].as_str().unwrap_or_default(),
                format!("/demo/products/{}", i["product_id"].as_str().unwrap_or_default()),
            )
        })
        .collect();
    let rendered: Vec<(&str, String)> = cards.iter().map(|(id, href, _)| (id.as_str(), href.clone())).collect();
    assert_eq!(shown, rendered, "the impression lists the items shown: {impression}");
    assert!(
        items.iter().all(|i| i.as_object().is_some_and(|o| o.len() == 3) && i["strategy"].is_string()),
        "{impression}"
    );
    assert_eq!(impression.as_object().map(serde_json::Map::len), Some(2), "{impression}");

    // A strip added later, far below the fold, is taken in at once but fetched only when
    // it comes near the viewport. Scrolling to it and back does not repeat the product
    // strip's impression.
    browser
        .js("var d=document.createElement('div'); d.setAttribute('data-patron-recommendations','home'); \
             d.style.marginTop='3000px'; document.querySelector('main').appendChild(d);")
        .await;
    let home = strip("home");
    browser.wait_for("the new strip's skeleton", WAIT, &format!("{home} return !!(r && r.querySelector('.k'));")).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let fetched = "return performance.getEntriesByType('resource').filter(function(e){return /placement=home/.test(e.name)}).length;";
    assert_eq!(browser.js(fetched).await, 0, "a strip out of view was fetched");
    browser.js(&format!("{home} h.scrollIntoView();")).await;
    browser
        .wait_for("the home strip's cards", WAIT, &format!("{home} return r.querySelectorAll('a[data-a=rec]').length;"))
        .await;
    store
        .wait_for_events("the home strip's impression", |e| {
            recommendation_events(e, "recommendation_impression", "home").len() == 1
        })
        .await;
    browser.js("window.scrollTo(0, 0);").await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let events = store.events().await;
    assert_eq!(
        recommendation_events(&events, "recommendation_impression", "product").len(),
        1,
        "one impression per strip and page view"
    );

    // Following a card records the click, with the id of the item, before the page goes.
    let (first_id, first_href, _) = cards[0].clone();
    browser.js(&format!("{product} r.querySelector('a[data-a=rec]').click();")).await;
    browser
        .wait_for("the recommended product's page", WAIT, &format!("return location.pathname === '{first_href}';"))
        .await;
    let events = store
        .wait_for_events("the click", |e| !recommendation_events(e, "recommendation_click", "product").is_empty())
        .await;
    let click = recommendation_events(&events, "recommendation_click", "product")[0].clone();
    let first = &items[0];
    assert_eq!(
        click,
        serde_json::json!({
            "placement": "product", "recommendation_id": first_id,
            "product_id": first["product_id"], "strategy": first["strategy"]
        })
    );

    // The new page is a new page view: its strip has its own impression, with new ids.
    let events = store
        .wait_for_events("the next page's impression", |e| {
            recommendation_events(e, "recommendation_impression", "product").len() == 2
        })
        .await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let after = store.events().await;
    let recommendation_kinds = |events: &[patron::store::events::StoredEvent]| {
        events.iter().filter(|e| e.kind.starts_with("recommendation_")).count()
    };
    assert_eq!(recommendation_kinds(&after), recommendation_kinds(&events), "events stored after the queue drained");
    assert_eq!(recommendation_events(&after, "recommendation_click", "product").len(), 1, "one click");
    let ids: Vec<&Value> = recommendation_events(&after, "recommendation_impression", "product")
        .iter()
        .flat_map(|i| i["items"].as_array().into_iter().flatten().map(|item| &item["recommendation_id"]))
        .collect();
    let mut distinct = ids.clone();
    distinct.sort_by_key(|v| v.to_string());
    distinct.dedup();
    assert_eq!(distinct.len(), ids.len(), "every shown item has its own recommendation id");

    // Signed in, the strip asks as the shopper; the panel's "for you" list records its
    // impression in the same shape, with placement "for-you".
    browser.goto(&format!("{}/demo/login", store.store_url)).await;
    browser.goto(&format!("{}/demo/products/{anchor}", store.store_url)).await;
    let request = browser
        .wait_for(
            "the signed-in strip's request",
            WAIT,
            "var e=performance.getEntriesByType('resource').filter(function(e){return /\\/v1\\/recommendations\\?/.test(e.name)}); \
             return e.length && e[0].name;",
        )
        .await;
    let request = request.as_str().unwrap_or_default();
    assert!(request.contains("customer_id=") && request.contains("customer_token="), "{request}");
    wait_for_launcher(&browser).await;
    browser.js(&format!("{ROOT} r.querySelector('.l').click();")).await;
    let events = store
        .wait_for_events("the panel's impression", |e| {
            !recommendation_events(e, "recommendation_impression", "for-you").is_empty()
        })
        .await;
    let panel = recommendation_events(&events, "recommendation_impression", "for-you")[0];
    let items = panel["items"].as_array().expect("items");
    assert!(!items.is_empty() && items.len() <= 4, "{panel}");
    assert!(
        items.iter().all(|i| i.as_object().is_some_and(|o| o.len() == 3) && i["recommendation_id"].is_string()),
        "{panel}"
    );

    // The cart page's strip is for what is in the cart.
    browser.js("document.querySelector('.buy').click();").await;
    browser.goto(&format!("{}/demo/cart", store.store_url)).await;
    let cart = strip("cart");
    browser
        .wait_for(
            "the cart strip's cards",
            WAIT,
            &format!("{cart} return r && r.querySelectorAll('a[data-a=rec]').length;"),
        )
        .await;
    let asked = browser
        .js("return performance.getEntriesByType('resource').filter(function(e){return /placement=cart/.test(e.name)})[0].name;")
        .await;
    assert!(asked.as_str().is_some_and(|url| url.contains(&format!("cart={anchor}"))), "{asked}");
    browser.close().await;
}

/// Cart abandonment end to end: a signed-in shopper adds to the cart on the storefront
/// and leaves; with the clock advanced 4 hours the scheduler fires the journeys plugin's
/// reminder, the delivery worker sends it to a real SMTP server, and the email's cart
/// link, opened in the browser, lands on the store's cart.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_abandoned_cart_gets_a_reminder_email_whose_link_opens_the_cart() {
    let sink = patron::testing::SmtpSink::start();
    let address = address().await;
    let db = fresh_db(Backend::Sqlite).await;
    let mut new = NewShop::named("Bean & Leaf");
    new.allowed_origins = vec![address.store_url.clone()];
    let (shop, keys) = db.create_shop(&new).await.expect("create shop");
    let customer: patron::store::customers::CustomerInput = serde_json::from_value(serde_json::json!({
        "external_id": "ext-1", "email": "mei@example.com", "first_name": "Mei", "marketing_consent": true
    }))
    .expect("customer");
    db.upsert_customer(shop.id, &customer).await.expect("customer stored");

    let plugins = patron::plugins::PluginHost::new(db.clone(), None);
    let manifest_path = concat!(env!("CARGO_MANIFEST_DIR"), "/../plugins/journeys/patron.toml");
    let manifest = patron_runtime::Manifest::from_toml(&std::fs::read_to_string(manifest_path).expect("manifest"))
        .expect("valid manifest");
    let grants = manifest.imports.iter().map(|c| c.name().to_owned()).collect();
    let wasm = patron_runtime::testing::plugin_wasm("journeys").expect("journeys plugin builds");
    let config = serde_json::json!({"welcome": {"enabled": false}, "browse-abandonment": {"enabled": false}});
    plugins.install(shop.id, wasm, manifest, grants, Some(config), true).await.expect("install journeys");

    let demo = DemoStore {
        shop_name: shop.name.clone(),
        publishable_key: shop.publishable_key.clone(),
        widget_origin: address.patron_url.clone(),
        products: products(),
        currency: shop.currency.clone(),
        member: Some(DemoMember {
            customer_id: "ext-1".into(),
            customer_token: patron::auth::customer_token(&shop.secret_hash, "ext-1").expect("token"),
        }),
        consent_banner: false,
    };
    let store = serve(db.clone(), shop.clone(), address, demo);
    let client = reqwest::Client::new();
    let put = |path: &str, body: Value| {
        client.put(format!("{}{path}", store.patron_url)).bearer_auth(&keys.secret).json(&body).send()
    };
    let smtp = serde_json::json!({"kind": "smtp", "host": "127.0.0.1", "port": sink.port, "tls": "none", "from": "Bean & Leaf <hello@bean.test>"});
    let response = put("/v1/channels/email", smtp).await.expect("channel");
    assert!(response.status().is_success(), "{}", response.text().await.unwrap_or_default());
    // No holdout and no quiet hours, so the test does not depend on who or when; the
    // cart link points at the demo store's cart page.
    let policy = serde_json::json!({"holdout_percent": 0.0, "quiet_hours_start": "00:00", "quiet_hours_end": "00:00",
        "cart_url": format!("{}/demo/cart", store.store_url)});
    let response = put("/v1/contact-policy", policy).await.expect("policy");
    assert!(response.status().is_success(), "{}", response.text().await.unwrap_or_default());

    let browser = Browser::start().await;
    browser.goto(&format!("{}/demo/login", store.store_url)).await;
    browser.goto(&format!("{}/demo/products/pour-over-kit", store.store_url)).await;
    wait_for_launcher(&browser).await;
    browser.js("document.querySelector('.buy').click();").await;
    let events =
        store.wait_for_events("the signed-in add_to_cart", |e| e.iter().any(|e| e.kind == "add_to_cart")).await;
    let cart = events.iter().find(|e| e.kind == "add_to_cart").expect("add to cart");
    assert!(cart.customer_id.is_some(), "the signed-in shopper's cart: {cart:?}");
    browser.goto("about:blank").await;

    let scheduler = patron::scheduler::Scheduler::new(db.clone(), plugins);
    let now = patron::store::now_ms();
    let mut ran = Vec::new();
    for at in [now, now + 4 * 60 * 60 * 1000 + 60_000] {
        loop {
            match scheduler.run_due(at).await.expect("scheduler") {
                patron::scheduler::Ran::Done { kind } => ran.push(kind),
                patron::scheduler::Ran::Failed { kind, error } => panic!("{kind} failed: {error}"),
                patron::scheduler::Ran::Nothing => break,
            }
        }
    }
    assert!(ran.iter().any(|k| k == patron::plugins::actions::TIMER_JOB), "the 4-hour reminder fired: {ran:?}");
    let worker_config = patron::delivery::DeliveryConfig {
        public_url: store.patron_url.clone(),
        allow_private_targets: true,
        ..patron::delivery::DeliveryConfig::default()
    };
    let worker = patron::delivery::Worker::new(db.clone(), worker_config).expect("worker");
    let pass = worker.run_once_at(now + 4 * 60 * 60 * 1000 + 60_000).await.expect("delivery");
    assert_eq!(pass.sent, 1, "{pass:?}");

    let mail = sink.received();
    assert_eq!(mail.len(), 1, "{mail:?}");
    assert_eq!(mail[0]["rcpt_tos"], serde_json::json!(["mei@example.com"]));
    let body = mail[0]["body"].as_str().expect("body");
    assert!(body.contains("Hi Mei") && body.contains("Your cart at Bean & Leaf"), "{body}");
    let link = body
        .split_whitespace()
        .find(|w| w.starts_with(&format!("{}/r/", store.patron_url)) && w.contains("cart"))
        .expect("a tracked link back to the cart");
    browser.goto(link).await;
    browser
        .wait_for("the store's cart page", WAIT, "return location.pathname === '/demo/cart' && !!document.body;")
        .await;
    browser.screenshot("cart-reminder-link").await;
    let sent = patron::store::outbox::MessageFilter { customer_id: None, status: Some("sent".into()), limit: 10 };
    let sent = db.messages(shop.id, &sent).await.expect("messages");
    assert_eq!(sent.len(), 1);
    assert_eq!(db.message_clicks(shop.id, sent[0].id).await.expect("clicks"), 1, "the click was recorded");
    browser.close().await;
}
