//! The merchant console in headless Chromium against a seeded demo shop, with the host
//! in-process on a fresh SQLite database. One test, one server, one browser: sign in; the
//! overview draws its charts (canvases that are not blank) with the revenue the API
//! returns; a demo customer found by search shows their timeline; an RFM cell lists the
//! customers the API lists for it; the owner uploads a plugin, fixes a configuration
//! error shown on its field, dry-runs and enables it, and the loyalty page draws the
//! points its orders earn; an analyst sees masked emails; five wrong passwords throttle
//! sign-in. Screenshots of each page go to `$CARGO_TARGET_DIR/screenshots/`.

use std::time::{Duration, Instant};

use fantoccini::Locator;
use patron::console::users::create_user;
use patron::demo::SeedOptions;
use patron::store::console::Role;
use patron::store::shops::NewShop;
use patron::testing::{Backend, fresh_db};
use patron_e2e::browser::Browser;
use serde_json::Value;
use tokio::net::TcpListener;
use tokio::sync::oneshot;

const WAIT: Duration = Duration::from_secs(20);
const PASSWORD: &str = "demo console password";
/// The seeded history ends here (2024-06-01), so the figures do not depend on today.
const SEED_END: i64 = 1_717_200_000_000;
const PERIOD: &str = "since=2024-03-01&until=2024-06-01";

/// Waits until the browser is on `path` (navigation by a form post may take a moment).
async fn wait_path(browser: &Browser, path: &str) {
    let deadline = Instant::now() + WAIT;
    loop {
        if let Ok(url) = browser.client.current_url().await
            && url.path() == path
        {
            return;
        }
        assert!(Instant::now() < deadline, "timed out waiting to reach {path}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn sign_in(browser: &Browser, base: &str, email: &str, password: &str) {
    browser.goto(&format!("{base}/admin/login")).await;
    let form = browser.client.form(Locator::Css("form.stack")).await.expect("sign-in form");
    form.set_by_name("email", email).await.expect("email");
    form.set_by_name("password", password).await.expect("password");
    form.submit().await.expect("submit");
}

/// Non-transparent, non-white pixels of the canvas inside `#id`.
async fn inked_pixels(browser: &Browser, id: &str) -> i64 {
    let script = format!(
        "var c=document.querySelector('#{id} canvas'); if(!c) return 0; \
         var d=c.getContext('2d').getImageData(0,0,c.width,c.height).data, n=0; \
         for(var i=0;i<d.length;i+=4){{ if(d[i+3]>0 && (d[i]<240||d[i+1]<240||d[i+2]<240)) n++; }} return n;"
    );
    browser.wait_for(&format!("a drawn chart in #{id}"), WAIT, &script).await.as_i64().unwrap_or(0)
}

async fn api(base: &str, secret: &str, path: &str) -> Value {
    let response =
        reqwest::Client::new().get(format!("{base}{path}")).bearer_auth(secret).send().await.expect("api call");
    assert!(response.status().is_success(), "{path}: {}", response.status());
    response.json().await.expect("json")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_merchant_reads_the_console_in_a_browser() {
    let db = fresh_db(Backend::Sqlite).await;
    let (shop, keys) = db.create_shop(&NewShop::named("Demo Store")).await.expect("shop");
    let options =
        SeedOptions { customers: 400, seed: 7, end: Some(SEED_END), progress: false, ..SeedOptions::default() };
    patron::demo::seed(&db, &shop, &options).await.expect("seed");
    create_user(&db, shop.id, "owner@demo.test", Role::Owner, PASSWORD).await.expect("owner");
    create_user(&db, shop.id, "analyst@demo.test", Role::Analyst, PASSWORD).await.expect("analyst");
    create_user(&db, shop.id, "marketer@demo.test", Role::Marketer, PASSWORD).await.expect("marketer");

    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let base = format!("http://{}", listener.local_addr().expect("addr"));
    let app = patron::app(patron::AppState::new(db.clone()));
    let (stop, stopped) = oneshot::channel::<()>();
    tokio::spawn(patron::serve(listener, app, async move {
        let _ = stopped.await;
    }));
    let browser = Browser::start().await;

    // Sign in as the owner.
    sign_in(&browser, &base, "owner@demo.test", PASSWORD).await;
    wait_path(&browser, "/admin/overview").await;

    // The overview: the revenue the API computes, and both charts drawn.
    browser.goto(&format!("{base}/admin/overview?{PERIOD}")).await;
    let overview = api(&base, &keys.secret, &format!("/v1/analytics/overview?{PERIOD}")).await;
    let revenue = overview["current"]["revenue"].as_i64().expect("revenue");
    assert!(revenue > 0, "the seeded shop sold something in the period");
    let shown = browser.js("return document.querySelector('[data-figure=revenue]').dataset.value").await;
    assert_eq!(shown, Value::String(revenue.to_string()));
    let shown_orders = browser.js("return document.querySelector('[data-figure=orders]').dataset.value").await;
    assert_eq!(shown_orders, Value::String(overview["current"]["orders"].to_string()));
    assert!(inked_pixels(&browser, "revenue-chart").await > 500, "the revenue chart is drawn");
    assert!(inked_pixels(&browser, "orders-chart").await > 200, "the orders chart is drawn");
    browser.screenshot("console-overview").await;
    // A figure's definition is one click away.
    browser.js("document.querySelector('[popovertarget=def-repurchase_rate]').click(); return true").await;
    let open = browser.js("return document.querySelector('#def-repurchase_rate').matches(':popover-open')").await;
    assert_eq!(open, Value::Bool(true));
    browser.screenshot("console-overview-definition").await;

    // Find a demo customer with a history and open their 360° view.
    let (id, email): (i64, String) = sqlx::query_as(
        "SELECT c.id, c.email FROM customers c WHERE c.shop_id = $1 AND c.email IS NOT NULL AND c.order_count > 1 \
         AND EXISTS (SELECT 1 FROM events e WHERE e.shop_id = c.shop_id AND e.customer_id = c.id) ORDER BY c.id LIMIT 1",
    )
    .bind(shop.id)
    .fetch_one(db.pool())
    .await
    .expect("a customer with orders and events");
    browser.goto(&format!("{base}/admin/customers")).await;
    let search = browser.client.find(Locator::Css("#q")).await.expect("search box");
    search.send_keys(&email).await.expect("type");
    let row = format!(
        "return document.querySelectorAll('#results tr.customer-row').length === 1 && document.querySelector('#results tr.customer-row').dataset.id === '{id}'"
    );
    browser.wait_for("the search to find exactly that customer", WAIT, &row).await;
    browser.screenshot("console-customers").await;
    browser.click("#results tr.customer-row a").await;
    wait_path(&browser, &format!("/admin/customers/{id}")).await;
    let events =
        browser.wait_for("the timeline", WAIT, "return document.querySelectorAll('#timeline li.event').length").await;
    assert!(events.as_i64().unwrap_or(0) > 0);
    let shown_email = browser.js("return document.querySelector('.page-head .email').textContent").await;
    assert_eq!(shown_email, Value::String(email.clone()), "an owner sees the email");
    browser.screenshot("console-customer").await;

    // The RFM grid: the fullest cell's customers are the API's.
    browser.goto(&format!("{base}/admin/rfm")).await;
    let grid = api(&base, &keys.secret, "/v1/analytics/rfm").await;
    let cell = grid["cells"]
        .as_array()
        .expect("cells")
        .iter()
        .max_by_key(|c| c["customers"].as_i64())
        .expect("a cell")
        .clone();
    let (r, f) = (cell["r"].as_i64().expect("r"), cell["f"].as_i64().expect("f"));
    let shown = browser
        .js(&format!("return document.querySelector('#rfm-grid a[data-r=\"{r}\"][data-f=\"{f}\"]').dataset.customers"))
        .await;
    assert_eq!(shown, Value::String(cell["customers"].to_string()));
    browser.click(&format!("#rfm-grid a[data-r=\"{r}\"][data-f=\"{f}\"]")).await;
    browser
        .wait_for("the cell's customers", WAIT, &format!("var t=document.querySelector('#cell-customers'); return t && t.dataset.r === '{r}' && t.dataset.f === '{f}'"))
        .await;
    let listed = browser.js("return Array.from(document.querySelectorAll('#cell-customers tbody tr')).map(function(tr){return tr.dataset.id})").await;
    let expected = api(&base, &keys.secret, &format!("/v1/analytics/rfm/cells/{r}/{f}/customers?limit=50")).await;
    let expected: Vec<Value> =
        expected["customers"].as_array().expect("customers").iter().map(|c| c["id"].clone()).collect();
    assert!(!expected.is_empty());
    assert_eq!(listed, Value::Array(expected));
    wait_path(&browser, &format!("/admin/rfm/{r}/{f}")).await;
    browser.screenshot("console-rfm").await;

    browser.goto(&format!("{base}/admin/cohorts?since=2023-07-01&until=2024-06-01")).await;
    assert!(inked_pixels(&browser, "retention-chart").await > 100, "the retention curve is drawn");
    browser.screenshot("console-cohorts").await;

    // Plugins: upload the loyalty plugin, review it, fix a configuration error shown on its
    // field, dry-run it and enable it; then orders earn points that the loyalty page draws.
    let dir = std::env::temp_dir().join(format!("patron-console-e2e-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let (wasm_path, manifest_path) = (dir.join("loyalty.wasm"), dir.join("patron.toml"));
    std::fs::write(&wasm_path, patron_runtime::testing::plugin_wasm("loyalty").expect("loyalty builds"))
        .expect("write");
    std::fs::write(&manifest_path, include_str!("../../plugins/loyalty/patron.toml")).expect("write");
    browser.goto(&format!("{base}/admin/plugins")).await;
    browser.screenshot("console-plugins").await;
    for (input, path) in [("input[name=wasm]", &wasm_path), ("input[name=manifest]", &manifest_path)] {
        let element = browser.client.find(Locator::Css(input)).await.expect("file input");
        element.send_keys(&path.display().to_string()).await.expect("choose the file");
    }
    browser.click("#upload-form button[type=submit]").await;
    browser.wait_for("the review of the upload", WAIT, "return !!document.querySelector('#install-form')").await;
    browser.screenshot("console-plugin-review").await;
    browser.click("#install-form button[type=submit]").await;
    wait_path(&browser, "/admin/plugins/loyalty").await;
    let unit = browser.client.find(Locator::Css("#cfg-unit")).await.expect("unit field");
    unit.clear().await.expect("clear");
    unit.send_keys("0").await.expect("type");
    browser.click("#save-config").await;
    let error = browser
        .wait_for(
            "the error on the field",
            WAIT,
            "var e=document.querySelector('[data-field=unit] .field-error'); return e && e.textContent",
        )
        .await;
    assert!(error.as_str().unwrap_or_default().contains("must be at least 1"), "{error}");
    browser.screenshot("console-plugin-config-error").await;
    let unit = browser.client.find(Locator::Css("#cfg-unit")).await.expect("unit field");
    unit.clear().await.expect("clear");
    unit.send_keys("100").await.expect("type");
    browser.click("#save-config").await;
    browser
        .wait_for(
            "the saved notice",
            WAIT,
            "return !!document.querySelector('#notice') && document.querySelector('#cfg-unit').value === '100'",
        )
        .await;
    let install = db.plugin_install(shop.id, "loyalty").await.expect("read").expect("installed");
    assert_eq!((install.config["unit"].as_i64(), install.status.as_str()), (Some(100), "disabled"));
    browser.click("#run-dry-run").await;
    let replayed = browser
        .wait_for("the dry run's report", WAIT, "var s=document.querySelector('#dry-run-summary [data-figure=dry_orders] strong'); return s && s.textContent")
        .await;
    assert!(
        replayed.as_str().unwrap_or("0").parse::<i64>().unwrap_or(0) > 0,
        "the dry run replayed orders: {replayed}"
    );
    browser.screenshot("console-plugin-dry-run").await;
    browser.click("#enable").await;
    browser
        .wait_for(
            "the plugin enabled",
            WAIT,
            "var s=document.querySelector('#plugin-status'); return s && s.dataset.status === 'enabled'",
        )
        .await;
    assert_eq!(db.plugin_install(shop.id, "loyalty").await.expect("read").expect("installed").status, "enabled");
    let http = reqwest::Client::new();
    for (id, amount) in [("console-e2e-1", 60_000), ("console-e2e-2", 180_000)] {
        let order = serde_json::json!({"id": id, "customer": {"external_id": format!("{id}-shopper")}, "lines": [{"product_id": "p1", "title": "Tea", "quantity": 1, "unit_price": amount}]});
        let response =
            http.post(format!("{base}/v1/orders")).bearer_auth(&keys.secret).json(&order).send().await.expect("order");
        assert!(response.status().is_success(), "{}", response.status());
    }
    browser.goto(&format!("{base}/admin/loyalty")).await;
    assert!(inked_pixels(&browser, "points-chart").await > 200, "the points chart is drawn");
    assert!(inked_pixels(&browser, "tiers-chart").await > 200, "the tiers chart is drawn");
    browser.screenshot("console-loyalty").await;
    std::fs::remove_dir_all(&dir).ok();

    for (page, shot) in [
        (format!("/admin/recommendations?{PERIOD}"), "console-recommendations"),
        ("/admin/settings".to_owned(), "console-settings"),
        ("/admin/plugins/loyalty".to_owned(), "console-plugin"),
        ("/admin/audit".to_owned(), "console-audit"),
    ] {
        browser.goto(&format!("{base}{page}")).await;
        browser.screenshot(shot).await;
    }

    // An analyst sees masked emails only.
    browser.click("form[action='/admin/logout'] button").await;
    wait_path(&browser, "/admin/login").await;
    sign_in(&browser, &base, "analyst@demo.test", PASSWORD).await;
    wait_path(&browser, "/admin/overview").await;
    browser.goto(&format!("{base}/admin/customers")).await;
    let emails = browser.js("return Array.from(document.querySelectorAll('#results td.email')).map(function(td){return td.textContent})").await;
    let emails: Vec<String> =
        emails.as_array().expect("emails").iter().filter_map(|v| v.as_str().map(ToOwned::to_owned)).collect();
    assert!(!emails.is_empty());
    assert!(emails.iter().all(|e| e == "—" || e.contains("•••@")), "{emails:?}");
    let page = browser.js("return document.body.innerText").await;
    assert!(!page.as_str().unwrap_or_default().contains(&email));
    browser.screenshot("console-analyst-customers").await;
    browser.goto(&format!("{base}/admin/customers/{id}")).await;
    let masked = browser.js("return document.querySelector('.page-head .email').textContent").await;
    assert_ne!(masked, Value::String(email.clone()));
    assert!(masked.as_str().unwrap_or_default().contains("•••@"));

    // Five wrong passwords, then even the right one is refused for a while.
    browser.click("form[action='/admin/logout'] button").await;
    wait_path(&browser, "/admin/login").await;
    for _ in 0..5 {
        sign_in(&browser, &base, "marketer@demo.test", "not the password").await;
        browser
            .wait_for("the refusal", WAIT, "var a=document.querySelector('.alert'); return a && a.textContent")
            .await;
    }
    sign_in(&browser, &base, "marketer@demo.test", PASSWORD).await;
    let alert = browser
        .wait_for("the throttle message", WAIT, "var a=document.querySelector('.alert'); return a && a.textContent")
        .await;
    assert!(alert.as_str().unwrap_or_default().contains("Too many wrong passwords"), "{alert}");
    browser.screenshot("console-throttled").await;

    browser.close().await;
    let _ = stop.send(());
}
