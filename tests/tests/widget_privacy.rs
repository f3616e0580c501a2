//! The widget's tracker under privacy signals and hostile conditions, and its member
//! panel in Chinese, in headless Chromium against the demo storefront with the host
//! in-process on a fresh SQLite database.
//!
//! Two tests, to keep CI short: one browser session walks a default shop through Global
//! Privacy Control, two tabs offline and a `localStorage` that refuses writes; the other
//! screenshots a `zh-CN` / CNY member panel. Needs the widget built (`web-widget/build.sh`)
//! and, for the screenshot's glyphs, `fonts-noto-cjk`.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use patron::store::Db;
use patron::store::events::StoredEvent;
use patron::store::products::Product;
use patron::store::shops::{NewShop, Shop};
use patron::testing::{Backend, fresh_db};
use patron::widget::{DemoMember, DemoStore, WidgetAssets};
use patron_e2e::browser::Browser;
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio::sync::oneshot;

const WAIT: Duration = Duration::from_secs(20);
/// Script: the widget's shadow root, or null before the panel mounted.
const ROOT: &str = "var h=document.getElementById('patron-widget');var r=h&&h.shadowRoot;";

/// A running host with the demo storefront for one shop.
struct Storefront {
    db: Db,
    shop: Shop,
    /// `http://localhost:<port>`: where the shopper browses (the widget and the API are
    /// on `http://127.0.0.1:<port>`, another origin, as on a real store).
    store_url: String,
    stop: Option<oneshot::Sender<()>>,
}

impl Drop for Storefront {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// Starts the host for a new shop shaped by `configure`, with `member` (customer
/// `ext-1`, first name `first_name`) seeded through the loyalty plugin if given.
async fn storefront(configure: impl FnOnce(&mut NewShop), member: Option<&str>) -> Storefront {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let (store_url, patron_url) = (format!("http://localhost:{port}"), format!("http://127.0.0.1:{port}"));
    let db = fresh_db(Backend::Sqlite).await;
    let mut new = NewShop::named("Bean & Leaf");
    new.allowed_origins = vec![store_url.clone()];
    configure(&mut new);
    let (shop, _keys) = db.create_shop(&new).await.expect("create shop");
    if let Some(first_name) = member {
        seed_member(&db, &shop, first_name).await;
    }
    let assets = WidgetAssets::from_env();
    assert!(
        assets.dir().join("patron_bg.wasm").is_file(),
        "the widget is not built in {}: run web-widget/build.sh first",
        assets.dir().display()
    );
    let products = [("house-blend", "House Blend Coffee", 1450), ("pour-over-kit", "Pour-over Kit", 3900)]
        .into_iter()
        .map(|(id, title, price)| Product {
            id: id.into(),
            title: title.into(),
            price,
            currency: None,
            category: None,
            url: Some(format!("/demo/products/{id}")),
            image_url: None,
            available: true,
        })
        .collect();
    let demo = DemoStore {
        shop_name: shop.name.clone(),
        publishable_key: shop.publishable_key.clone(),
        widget_origin: patron_url,
        products,
        currency: shop.currency.clone(),
        member: member.map(|_| DemoMember {
            customer_id: "ext-1".into(),
            customer_token: patron::auth::customer_token(&shop.secret_hash, "ext-1").expect("token"),
        }),
        consent_banner: shop.consent_required,
    };
    let mut state = patron::AppState::new(db.clone());
    state.widget = assets;
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
    Storefront { db, shop, store_url, stop: Some(stop) }
}

/// Installs the first-party loyalty plugin with no currency or locale in its config
/// (the host fills in the shop's), gives customer `ext-1` an order worth platinum and
/// redeems the cheapest reward, so the panel has a tier, points, rewards and a coupon.
async fn seed_member(db: &Db, shop: &Shop, first_name: &str) {
    let plugins = patron::plugins::PluginHost::new(db.clone(), None);
    let manifest_path = concat!(env!("CARGO_MANIFEST_DIR"), "/../plugins/loyalty/patron.toml");
    let manifest = patron_runtime::Manifest::from_toml(&std::fs::read_to_string(manifest_path).expect("manifest"))
        .expect("valid manifest");
    let grants = manifest.imports.iter().map(|c| c.name().to_owned()).collect();
    let wasm = patron_runtime::testing::plugin_wasm("loyalty").expect("loyalty plugin builds");
    plugins.install(shop.id, wasm, manifest, grants, None, true).await.expect("install loyalty");
    let input: patron::store::orders::OrderInput = serde_json::from_value(json!({
        "id": "seed-1", "customer": {"external_id": "ext-1", "first_name": first_name},
        "lines": [{"product_id": "pour-over-kit", "title": "Pour-over Kit", "quantity": 40, "unit_price": 3900}]
    }))
    .expect("order");
    let (order, customer) = input.validate(&shop.currency).expect("valid order");
    let outcome = db.upsert_order(shop.id, order, customer.as_ref()).await.expect("order stored");
    plugins.order_placed(shop, &outcome.order).await.expect("points awarded");
    let customer = db.customer_by_external_id(shop.id, "ext-1").await.expect("lookup").expect("customer");
    let coupon = plugins
        .redeem(shop, customer.id, "five-off", None)
        .await
        .expect("the reward's coupon is in the shop's currency, so the host issues it");
    assert_eq!(coupon.currency, shop.currency);
}

impl Storefront {
    async fn events(&self) -> Vec<StoredEvent> {
        self.db.recent_events(self.shop.id, 10_000).await.expect("read events")
    }

    async fn wait_for_events(&self, what: &str, done: impl Fn(&[StoredEvent]) -> bool) -> Vec<StoredEvent> {
        let deadline = Instant::now() + WAIT;
        loop {
            let events = self.events().await;
            if done(&events) {
                return events;
            }
            let kinds: Vec<&str> = events.iter().map(|e| e.kind.as_str()).collect();
            assert!(Instant::now() < deadline, "timed out waiting for {what}; stored: {kinds:?}");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}

fn count(events: &[StoredEvent], kind: &str) -> usize {
    events.iter().filter(|e| e.kind == kind).count()
}

/// Requests the page made to a path of the API, from the resource timeline.
fn requests_to(path: &str) -> String {
    format!(
        "return performance.getEntriesByType('resource').filter(function(e){{return e.name.indexOf('{path}?')>0}}).length;"
    )
}

/// Script: the widget's queue keys in `localStorage` and how many events each holds.
const STORED_QUEUES: &str = "var o={}; Object.keys(localStorage).forEach(function(k){ \
    if (k.indexOf('patron_q')===0) { var v=JSON.parse(localStorage.getItem(k)); o[k]=(v.e||v).length; } }); return o;";

/// Waits until the widget has loaded its state and mounted the launcher.
async fn wait_for_launcher(browser: &Browser) {
    browser.wait_for("the widget's launcher", WAIT, &format!("{ROOT} return !!(r && r.querySelector('.l'));")).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_tracker_honours_gpc_shares_one_queue_across_tabs_and_survives_storage_errors() {
    let store = storefront(|_| {}, None).await;
    assert!(store.shop.honor_dnt, "a default shop honours GPC and DNT");
    let browser = Browser::start().await;
    let product_page = format!("{}/demo/products/house-blend", store.store_url);

    // 1. A browser sending Global Privacy Control: nothing leaves it until the shopper
    //    opts in; then what the page collected goes out.
    let gpc = browser
        .cdp(
            "Page.addScriptToEvaluateOnNewDocument",
            json!({"source": "Object.defineProperty(Navigator.prototype, 'globalPrivacyControl', {get: function(){ return true; }});"}),
        )
        .await;
    browser.goto(&product_page).await;
    wait_for_launcher(&browser).await;
    assert_eq!(browser.js("return navigator.globalPrivacyControl;").await, true);
    browser.js("patron.track('search', {query: 'under gpc'});").await;
    tokio::time::sleep(Duration::from_secs(4)).await;
    assert!(store.events().await.is_empty(), "events were stored from a GPC browser before it opted in");
    assert_eq!(browser.js(&requests_to("/v1/events")).await, 0, "a request went to /v1/events under GPC");
    assert_eq!(browser.js(STORED_QUEUES).await, json!({}), "events were kept in localStorage under GPC");
    browser
        .js("window.__sent = []; var f = window.fetch; window.fetch = function (u, i) { \
             window.__sent.push([String(u).replace(/\\?.*/, ''), i && i.body]); return f.apply(this, arguments); }; \
             patron.consent(true, {text_version: 'banner-v1'});")
        .await;
    store
        .wait_for_events("the events held until the opt-in", |e| {
            count(e, "page_view") == 1 && count(e, "product_view") == 1 && count(e, "search") == 1
        })
        .await;
    // The answer went to the host first, exactly as `POST /v1/consent` takes it (on a host
    // without that endpoint the request fails, and the events go anyway).
    let sent = browser.js("return window.__sent;").await;
    let sent: Vec<(String, Option<String>)> = serde_json::from_value(sent).expect("requests");
    let paths: Vec<&str> = sent.iter().map(|(url, _)| url.rsplit_once("/v1/").map_or("", |(_, p)| p)).collect();
    assert_eq!(paths.first(), Some(&"consent"), "{sent:?}");
    assert!(paths[1..].iter().all(|p| *p == "events"), "{sent:?}");
    let body: Value = serde_json::from_str(sent[0].1.as_deref().expect("a body")).expect("JSON");
    let anonymous = store.events().await[0].anonymous_id.clone().expect("an anonymous id");
    assert_eq!(
        body,
        json!({"anonymous_id": anonymous, "tracking": true, "marketing": false, "text_version": "banner-v1"})
    );
    browser.cdp("Page.removeScriptToEvaluateOnNewDocument", json!({"identifier": gpc["identifier"].clone()})).await;

    // 2. Two tabs queue events offline; one is closed while offline, the other comes
    //    back online: every event is stored exactly once.
    let first = browser.client.window().await.expect("this tab");
    browser.goto(&product_page).await;
    wait_for_launcher(&browser).await;
    let second = browser.client.new_window(true).await.expect("a second tab").handle;
    browser.client.switch_to_window(second.clone()).await.expect("to the second tab");
    browser.goto(&format!("{}/demo/", store.store_url)).await;
    wait_for_launcher(&browser).await;
    store.wait_for_events("both tabs' page views", |e| count(e, "page_view") == 3).await;
    // Each live page holds the Web Lock named after its queue key.
    browser
        .wait_for(
            "two held queue locks",
            WAIT,
            "navigator.locks.query().then(function (q) { window.__held = q.held.map(function (l) { return l.name; }); }); \
             return window.__held && window.__held.filter(function (n) { return n.indexOf('patron_q.') === 0; }).length === 2 && window.__held;",
        )
        .await;
    for (tab, name) in [(&first, "tab_a"), (&second, "tab_b")] {
        browser.client.switch_to_window(tab.clone()).await.expect("switch tab");
        browser.set_offline(true).await;
        browser.wait_for("offline", WAIT, "return navigator.onLine === false;").await;
        browser.js(&format!("for (var i = 0; i < 5; i++) patron.track('{name}', {{i: i}});")).await;
    }
    tokio::time::sleep(Duration::from_secs(3)).await;
    let stored = browser.js(STORED_QUEUES).await;
    let queued: Vec<u64> = stored.as_object().expect("queues").values().filter_map(Value::as_u64).collect();
    assert_eq!(queued.iter().sum::<u64>(), 10, "each tab keeps its own five under its own key: {stored}");
    assert_eq!(queued.len(), 2, "{stored}");
    assert_eq!(count(&store.events().await, "custom:tab_a"), 0);
    // The first tab goes away while offline: its events stay behind in its key.
    browser.client.switch_to_window(first.clone()).await.expect("first tab");
    browser.client.close_window().await.expect("close the first tab");
    browser.client.switch_to_window(second.clone()).await.expect("second tab");
    browser.set_offline(false).await;
    let events = store
        .wait_for_events("both tabs' events", |e| count(e, "custom:tab_a") == 5 && count(e, "custom:tab_b") == 5)
        .await;
    tokio::time::sleep(Duration::from_secs(4)).await;
    let after = store.events().await;
    assert_eq!(after.len(), events.len(), "events stored after both queues drained");
    let ids: HashSet<&str> = after.iter().map(|e| e.event_id.as_str()).collect();
    assert_eq!(ids.len(), after.len());
    for kind in ["custom:tab_a", "custom:tab_b"] {
        let mut numbers: Vec<i64> =
            after.iter().filter(|e| e.kind == kind).filter_map(|e| e.properties["i"].as_i64()).collect();
        numbers.sort_unstable();
        assert_eq!(numbers, [0, 1, 2, 3, 4], "{kind}: each event once");
    }
    browser
        .wait_for(
            "the queues to empty",
            WAIT,
            &format!("return (function(){{ {STORED_QUEUES} }})() && Object.keys(localStorage).filter(function(k){{ return k.indexOf('patron_q') === 0; }}).length === 0;"),
        )
        .await;

    // 3. localStorage full: the widget warns once, keeps events in memory and delivers
    //    them; the page sees no error.
    browser
        .js("window.__warns = []; window.__errors = []; var warn = console.warn; \
             console.warn = function () { window.__warns.push([].join.call(arguments, ' ')); return warn.apply(console, arguments); }; \
             window.addEventListener('error', function (e) { window.__errors.push(String(e.message)); }); \
             window.addEventListener('unhandledrejection', function (e) { window.__errors.push(String(e.reason)); }); \
             var n = 0; [1 << 20, 1 << 16, 1 << 12, 1 << 8, 1].forEach(function (size) { \
               var value = new Array(size + 1).join('x'); \
               try { for (;;) localStorage.setItem('f' + n++, value); } catch (e) { window.__full = e.name; } });")
        .await;
    assert_eq!(browser.js("return window.__full;").await, "QuotaExceededError");
    browser.js("for (var i = 0; i < 3; i++) patron.track('when_full', {i: i});").await;
    store.wait_for_events("the events tracked with storage full", |e| count(e, "custom:when_full") == 3).await;
    let warns = browser.js("return window.__warns.filter(function (w) { return w.indexOf('Patron') === 0; });").await;
    assert_eq!(warns.as_array().map(Vec::len), Some(1), "one warning: {warns}");
    assert_eq!(browser.js("return window.__errors;").await, json!([]));
    browser.js("localStorage.clear();").await;

    // 4. A page whose localStorage.setItem throws from the start keeps working, and its
    //    events arrive.
    browser
        .cdp(
            "Page.addScriptToEvaluateOnNewDocument",
            json!({"source": "window.__errors = []; \
                window.addEventListener('error', function (e) { window.__errors.push(String(e.message)); }); \
                window.addEventListener('unhandledrejection', function (e) { window.__errors.push(String(e.reason)); }); \
                Storage.prototype.setItem = function () { throw new Error('storage blocked'); };"}),
        )
        .await;
    browser.goto(&format!("{}/demo/products/pour-over-kit", store.store_url)).await;
    wait_for_launcher(&browser).await;
    browser.js("patron.track('blocked_storage', {});").await;
    store
        .wait_for_events("the events of a page whose setItem throws", |e| {
            count(e, "custom:blocked_storage") == 1
                && e.iter().any(|e| e.kind == "product_view" && e.properties["product_id"] == "pour-over-kit")
        })
        .await;
    assert_eq!(browser.js("return window.__errors;").await, json!([]), "the page saw errors");
    assert_eq!(browser.js("return Object.keys(localStorage).length;").await, 0);
    browser.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_zh_cn_member_panel_shows_no_english_tier_or_reward_text() {
    let store = storefront(
        |s| {
            s.locale = "zh-CN".into();
            s.currency = "CNY".into();
        },
        Some("美玲"),
    )
    .await;
    let browser = Browser::start().await;
    browser.goto(&format!("{}/demo/login", store.store_url)).await;
    wait_for_launcher(&browser).await;
    browser.js(&format!("{ROOT} r.querySelector('.l').click();")).await;
    let text = browser
        .wait_for(
            "the member panel",
            WAIT,
            &format!(
                "{ROOT} var p=r.querySelector('.p'); return p && !p.hidden && r.querySelector('.t') && p.innerText;"
            ),
        )
        .await;
    let text = text.as_str().unwrap_or_default().to_owned();
    let path = browser.screenshot("widget-panel-zh-cn").await;
    eprintln!("screenshot: {}\n{text}", path.display());

    for expected in ["白金卡会员", "钻石卡", "减¥5.00", "减¥12.00", "免运费", "积分", "我的优惠券"]
    {
        assert!(text.contains(expected), "{expected} missing from the panel: {text}");
    }
    // The coupon code is the only Latin text a Chinese shopper should see.
    let codes = browser
        .js(&format!("{ROOT} return Array.prototype.map.call(r.querySelectorAll('.cp code'), function(c){{return c.textContent;}});"))
        .await;
    let codes: Vec<String> = serde_json::from_value(codes).expect("codes");
    assert_eq!(codes.len(), 1, "the redeemed reward's coupon: {text}");
    let mut rest = text.clone();
    for code in &codes {
        rest = rest.replace(code.as_str(), "");
    }
    let latin: String = rest.chars().filter(char::is_ascii_alphabetic).collect();
    assert!(latin.is_empty(), "English in a zh-CN panel ({latin:?}): {text}");
    browser.close().await;
}
