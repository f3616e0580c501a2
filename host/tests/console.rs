//! The merchant console over HTTP, on both backends: signing in and its throttling,
//! sessions that expire, CSRF refusal, analysts' masked personal data, another shop's
//! objects not found, the overview showing the API's figures, and `GET /v1/customers`.

use axum::Router;
use axum::body::Body;
use axum::http::{HeaderMap, Request, StatusCode, header};
use patron::console::users::create_user;
use patron::store::Db;
use patron::store::console::Role;
use patron::store::customers::CustomerInput;
use patron::store::orders::OrderInput;
use patron::store::shops::Shop;
use patron::{AppState, app, both_backends, testing};
use serde_json::{Value, json};
use tower::ServiceExt;

const PASSWORD: &str = "a long enough password";

/// A browser stand-in: a cookie jar over the in-process app.
struct Client {
    app: Router,
    cookies: Vec<(String, String)>,
}

struct Answer {
    status: StatusCode,
    headers: HeaderMap,
    body: String,
}

fn form_encode(pairs: &[(&str, &str)]) -> String {
    pairs
        .iter()
        .map(|(k, v)| {
            let value: String = v
                .bytes()
                .map(|b| match b {
                    b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => char::from(b).to_string(),
                    other => format!("%{other:02X}"),
                })
                .collect();
            format!("{k}={value}")
        })
        .collect::<Vec<_>>()
        .join("&")
}

impl Client {
    fn new(db: &Db) -> Self {
        Self { app: app(AppState::new(db.clone())), cookies: Vec::new() }
    }

    async fn send(
        &mut self,
        method: &str,
        uri: &str,
        form: Option<&[(&str, &str)]>,
        headers: &[(&str, &str)],
    ) -> Answer {
        let mut request = Request::builder().method(method).uri(uri);
        if !self.cookies.is_empty() {
            let jar: Vec<String> = self.cookies.iter().map(|(k, v)| format!("{k}={v}")).collect();
            request = request.header(header::COOKIE, jar.join("; "));
        }
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let body = match form {
            Some(pairs) => {
                request = request.header(header::CONTENT_TYPE, "application/x-www-form-urlencoded");
                Body::from(form_encode(pairs))
            }
            None => Body::empty(),
        };
        let response = self.app.clone().oneshot(request.body(body).expect("request")).await.expect("infallible");
        let status = response.status();
        let headers = response.headers().clone();
        for set in headers.get_all(header::SET_COOKIE) {
            let text = set.to_str().expect("ascii cookie");
            let (pair, attributes) = text.split_once(';').unwrap_or((text, ""));
            let (name, value) = pair.split_once('=').expect("name=value");
            self.cookies.retain(|(k, _)| k != name);
            if !attributes.contains("Max-Age=0") {
                self.cookies.push((name.to_owned(), value.to_owned()));
            }
        }
        let bytes = axum::body::to_bytes(response.into_body(), usize::MAX).await.expect("body");
        Answer { status, headers, body: String::from_utf8_lossy(&bytes).into_owned() }
    }

    async fn get(&mut self, uri: &str) -> Answer {
        self.send("GET", uri, None, &[]).await
    }

    /// Posts a `multipart/form-data` body of (field, file name, bytes) parts.
    async fn send_multipart(&mut self, uri: &str, parts: &[(&str, Option<&str>, &[u8])]) -> Answer {
        const BOUNDARY: &str = "----patron-test-boundary";
        let mut body = Vec::new();
        for (name, file, bytes) in parts {
            body.extend_from_slice(
                format!("--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"{name}\"").as_bytes(),
            );
            if let Some(file) = file {
                body.extend_from_slice(
                    format!("; filename=\"{file}\"\r\nContent-Type: application/octet-stream").as_bytes(),
                );
            }
            body.extend_from_slice(b"\r\n\r\n");
            body.extend_from_slice(bytes);
            body.extend_from_slice(b"\r\n");
        }
        body.extend_from_slice(format!("--{BOUNDARY}--\r\n").as_bytes());
        let jar: Vec<String> = self.cookies.iter().map(|(k, v)| format!("{k}={v}")).collect();
        let request = Request::builder()
            .method("POST")
            .uri(uri)
            .header(header::COOKIE, jar.join("; "))
            .header(header::CONTENT_TYPE, format!("multipart/form-data; boundary={BOUNDARY}"))
            .body(Body::from(body))
            .expect("request");
        let response = self.app.clone().oneshot(request).await.expect("infallible");
        let status = response.status();
        let headers = response.headers().clone();
        let bytes = axum::body::to_bytes(response.into_body(), usize::MAX).await.expect("body");
        Answer { status, headers, body: String::from_utf8_lossy(&bytes).into_owned() }
    }

    /// Posts the sign-in form as a browser would (with the form's token).
    async fn sign_in(&mut self, email: &str, password: &str) -> Answer {
        let form = self.get("/admin/login").await;
        assert_eq!(form.status, StatusCode::OK, "{}", form.body);
        let csrf = hidden_csrf(&form.body);
        self.send(
            "POST",
            "/admin/login",
            Some(&[("csrf", csrf.as_str()), ("email", email), ("password", password)]),
            &[],
        )
        .await
    }

    /// The CSRF token of the signed-in session, as pages carry it.
    async fn csrf(&mut self) -> String {
        let page = self.get("/admin/overview").await;
        assert_eq!(page.status, StatusCode::OK, "{}", page.body);
        attribute_after(&page.body, "name=\"csrf-token\" content=\"")
    }
}

fn attribute_after(html: &str, marker: &str) -> String {
    let start = html.find(marker).unwrap_or_else(|| panic!("`{marker}` not in page:\n{html}")) + marker.len();
    html[start..].split('"').next().expect("value").to_owned()
}

fn hidden_csrf(html: &str) -> String {
    attribute_after(html, "name=\"csrf\" value=\"")
}

fn location(answer: &Answer) -> &str {
    answer.headers.get(header::LOCATION).and_then(|v| v.to_str().ok()).unwrap_or("")
}

async fn user(db: &Db, shop: &Shop, email: &str, role: Role) {
    create_user(db, shop.id, email, role, PASSWORD).await.expect("create console user");
}

async fn customer(db: &Db, shop: &Shop, external_id: &str, email: &str, first: &str, phone: Option<&str>) -> i64 {
    let input = CustomerInput {
        external_id: Some(external_id.into()),
        email: Some(email.into()),
        first_name: Some(first.into()),
        last_name: Some("Example".into()),
        phone: phone.map(Into::into),
        ..CustomerInput::default()
    };
    db.upsert_customer(shop.id, &input.validate().expect("valid customer")).await.expect("customer").0.id
}

async fn order(db: &Db, shop: &Shop, id: &str, customer: &str, date: &str, amount: i64) {
    let input: OrderInput = serde_json::from_value(json!({
        "id": id, "placed_at": format!("{date}T12:00:00Z"), "customer": {"external_id": customer},
        "lines": [{"title": "Beans", "quantity": 1, "unit_price": amount}]
    }))
    .expect("order");
    let (order, customer) = input.validate(&shop.currency).expect("valid order");
    db.upsert_order(shop.id, order, customer.as_ref()).await.expect("stored");
}

both_backends!(
    async fn five_wrong_passwords_throttle_sign_in(db) {
        let (shop, _) = testing::shop(&db, "a").await;
        user(&db, &shop, "owner@a.test", Role::Owner).await;
        let mut client = Client::new(&db);
        for attempt in 1..=5 {
            let answer = client.sign_in("owner@a.test", "wrong password!").await;
            let expected = if attempt < 5 { StatusCode::UNAUTHORIZED } else { StatusCode::TOO_MANY_REQUESTS };
            assert_eq!(answer.status, expected, "attempt {attempt}");
            assert!(!client.cookies.iter().any(|(k, _)| k == "patron_console"), "no session on a wrong password");
        }
        // Throttled: even the right password is refused now, and says so.
        let answer = client.sign_in("OWNER@a.test", PASSWORD).await;
        assert_eq!(answer.status, StatusCode::TOO_MANY_REQUESTS);
        assert!(answer.body.contains("Too many wrong passwords"), "{}", answer.body);
        assert!(!client.cookies.iter().any(|(k, _)| k == "patron_console"));
        // Once the pause is over (moved into the past here), the right password works.
        sqlx::query("UPDATE console_users SET throttled_until = 1").execute(db.pool()).await.expect("update");
        let answer = client.sign_in("owner@a.test", PASSWORD).await;
        assert_eq!(answer.status, StatusCode::SEE_OTHER, "{}", answer.body);
        assert_eq!(location(&answer), "/admin/overview");
        // An unknown email gets the same answer as a wrong password.
        let unknown = Client::new(&db).sign_in("nobody@a.test", PASSWORD).await;
        assert_eq!(unknown.status, StatusCode::UNAUTHORIZED);
    }
);

both_backends!(
    async fn sessions_are_http_only_cookies_that_expire(db) {
        let (shop, _) = testing::shop(&db, "a").await;
        user(&db, &shop, "owner@a.test", Role::Owner).await;
        let mut client = Client::new(&db);
        // Pages need a session.
        let anonymous = client.get("/admin/overview").await;
        assert_eq!(anonymous.status, StatusCode::SEE_OTHER);
        assert_eq!(location(&anonymous), "/admin/login");
        let signed = client.sign_in("owner@a.test", PASSWORD).await;
        let cookie = signed
            .headers
            .get_all(header::SET_COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .find(|v| v.starts_with("patron_console="))
            .expect("session cookie")
            .to_owned();
        assert!(cookie.contains("HttpOnly") && cookie.contains("SameSite=Lax") && cookie.contains("Path=/admin"), "{cookie}");
        assert!(!cookie.contains("Secure"), "plain http in tests: {cookie}");
        // The token is stored hashed only.
        let token = cookie.split(['=', ';']).nth(1).and_then(|v| v.split_once('.')).expect("shop.token").1.to_owned();
        let stored: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM console_sessions WHERE token_hash = $1")
            .bind(&token)
            .fetch_one(db.pool())
            .await
            .expect("count");
        assert_eq!(stored, 0);
        assert_eq!(client.get("/admin/overview").await.status, StatusCode::OK);
        // Past its expiry the session is gone.
        sqlx::query("UPDATE console_sessions SET expires_at = 1").execute(db.pool()).await.expect("update");
        let expired = client.get("/admin/overview").await;
        assert_eq!(expired.status, StatusCode::SEE_OTHER);
        assert_eq!(location(&expired), "/admin/login");
        // htmx requests are told where to go instead.
        let htmx = client.send("GET", "/admin/customers?q=x", None, &[("hx-request", "true")]).await;
        assert_eq!(htmx.status, StatusCode::UNAUTHORIZED);
        assert_eq!(htmx.headers.get("hx-redirect").and_then(|v| v.to_str().ok()), Some("/admin/login"));
        // Signing out ends a session on the server too.
        client.sign_in("owner@a.test", PASSWORD).await;
        let csrf = client.csrf().await;
        let saved_cookies = client.cookies.clone();
        let out = client.send("POST", "/admin/logout", Some(&[("csrf", csrf.as_str())]), &[]).await;
        assert_eq!(out.status, StatusCode::SEE_OTHER);
        client.cookies = saved_cookies;
        assert_eq!(client.get("/admin/overview").await.status, StatusCode::SEE_OTHER, "the old cookie no longer works");
    }
);

both_backends!(
    async fn forms_without_the_csrf_token_are_refused(db) {
        let (shop, _) = testing::shop(&db, "a").await;
        user(&db, &shop, "owner@a.test", Role::Owner).await;
        let id = customer(&db, &shop, "c-1", "mei@example.com", "Mei", None).await;
        let mut client = Client::new(&db);
        // Sign-in without its form token is refused before any password check.
        let bare = client
            .send("POST", "/admin/login", Some(&[("email", "owner@a.test"), ("password", PASSWORD)]), &[])
            .await;
        assert_eq!(bare.status, StatusCode::FORBIDDEN);
        assert_eq!(client.sign_in("owner@a.test", PASSWORD).await.status, StatusCode::SEE_OTHER);
        let csrf = client.csrf().await;
        let uri = format!("/admin/customers/{id}/tags");
        let missing = client.send("POST", &uri, Some(&[("tag", "vip"), ("action", "add")]), &[]).await;
        assert_eq!(missing.status, StatusCode::FORBIDDEN);
        let wrong = client.send("POST", &uri, Some(&[("csrf", "0".repeat(64).as_str()), ("tag", "vip"), ("action", "add")]), &[]).await;
        assert_eq!(wrong.status, StatusCode::FORBIDDEN);
        assert!(db.tags(shop.id, id).await.expect("tags").is_empty(), "a refused form changes nothing");
        assert!(db.audit_log(shop.id, 10).await.expect("audit").iter().all(|e| e.action != "tag_added"));
        // With the token in the form, and with the header htmx sends.
        let ok = client.send("POST", &uri, Some(&[("csrf", csrf.as_str()), ("tag", "vip"), ("action", "add")]), &[]).await;
        assert_eq!(ok.status, StatusCode::SEE_OTHER, "{}", ok.body);
        let htmx = client
            .send("POST", &uri, Some(&[("tag", "gift"), ("action", "add")]), &[
                ("x-csrf-token", csrf.as_str()),
                ("hx-request", "true"),
                ("hx-target", "tags"),
            ])
            .await;
        assert_eq!(htmx.status, StatusCode::OK);
        assert!(htmx.body.contains("id=\"tags\"") && htmx.body.contains("gift") && !htmx.body.contains("<html"), "{}", htmx.body);
        assert_eq!(db.tags(shop.id, id).await.expect("tags"), ["gift", "vip"]);
        // The owner reads who did it in the audit log.
        let audit = client.get("/admin/audit").await;
        assert_eq!(audit.status, StatusCode::OK);
        assert!(audit.body.contains("tag_added") && audit.body.contains(&format!("customer {id}")), "{}", audit.body);
        assert!(audit.body.contains("owner@a.test") && audit.body.contains("signed_in"));
    }
);

both_backends!(
    async fn analysts_see_masked_emails_and_change_nothing(db) {
        let (shop, _) = testing::shop(&db, "a").await;
        user(&db, &shop, "owner@a.test", Role::Owner).await;
        user(&db, &shop, "analyst@a.test", Role::Analyst).await;
        let id = customer(&db, &shop, "c-1", "jane.doe@example.com", "Jane", Some("+1 (555) 123-4567")).await;
        let mut analyst = Client::new(&db);
        assert_eq!(analyst.sign_in("analyst@a.test", PASSWORD).await.status, StatusCode::SEE_OTHER);
        for uri in ["/admin/customers?q=jane".to_owned(), format!("/admin/customers/{id}")] {
            let page = analyst.get(&uri).await;
            assert_eq!(page.status, StatusCode::OK, "{uri}: {}", page.body);
            assert!(page.body.contains("j•••@example.com"), "{uri}: masked email shown");
            assert!(!page.body.contains("jane.doe@example.com"), "{uri}: full email hidden");
            assert!(!page.body.contains("555") || !page.body.contains("4567"), "{uri}: phone hidden");
        }
        let csrf = analyst.csrf().await;
        let tag = analyst
            .send("POST", &format!("/admin/customers/{id}/tags"), Some(&[("csrf", csrf.as_str()), ("tag", "x"), ("action", "add")]), &[])
            .await;
        assert_eq!(tag.status, StatusCode::FORBIDDEN);
        assert!(db.tags(shop.id, id).await.expect("tags").is_empty());
        assert_eq!(analyst.get("/admin/audit").await.status, StatusCode::FORBIDDEN);
        assert_eq!(analyst.get("/admin/users").await.status, StatusCode::FORBIDDEN);
        // An owner sees the data itself.
        let mut owner = Client::new(&db);
        owner.sign_in("owner@a.test", PASSWORD).await;
        let page = owner.get(&format!("/admin/customers/{id}")).await;
        assert!(page.body.contains("jane.doe@example.com") && page.body.contains("+15551234567"), "{}", page.body);
    }
);

both_backends!(
    async fn another_shops_objects_are_not_found(db) {
        let (a, _) = testing::shop(&db, "a").await;
        let (b, _) = testing::shop(&db, "b").await;
        user(&db, &a, "owner@a.test", Role::Owner).await;
        let theirs = customer(&db, &b, "b-1", "bob@b.test", "Bob", None).await;
        let ours = customer(&db, &a, "a-1", "ann@a.test", "Ann", None).await;
        let mut client = Client::new(&db);
        client.sign_in("owner@a.test", PASSWORD).await;
        assert_eq!(client.get(&format!("/admin/customers/{ours}")).await.status, StatusCode::OK);
        let other = client.get(&format!("/admin/customers/{theirs}")).await;
        assert_eq!(other.status, StatusCode::NOT_FOUND);
        assert!(!other.body.contains("bob@b.test"));
        let csrf = client.csrf().await;
        let tag = client
            .send("POST", &format!("/admin/customers/{theirs}/tags"), Some(&[("csrf", csrf.as_str()), ("tag", "x"), ("action", "add")]), &[])
            .await;
        assert_eq!(tag.status, StatusCode::NOT_FOUND);
        assert!(db.tags(b.id, theirs).await.expect("tags").is_empty());
        assert_eq!(client.get("/admin/customers/not-a-number").await.status, StatusCode::NOT_FOUND);
        assert_eq!(client.get("/admin/rfm/9/1").await.status, StatusCode::NOT_FOUND);
        // Searching never reaches another shop.
        let search = client.get("/admin/customers?q=bob").await;
        assert!(!search.body.contains("bob@b.test"));
    }
);

both_backends!(
    async fn the_overview_shows_the_figures_of_the_api(db) {
        let (shop, keys) = testing::shop(&db, "a").await;
        user(&db, &shop, "owner@a.test", Role::Owner).await;
        for (n, (who, date, amount)) in
            [("ann", "2024-03-05", 4000), ("ann", "2024-03-20", 6000), ("bob", "2024-03-10", 2500), ("bob", "2024-02-10", 999)]
                .into_iter()
                .enumerate()
        {
            order(&db, &shop, &format!("o-{n}"), who, date, amount).await;
        }
        let query = "since=2024-03-01&until=2024-04-01";
        let (status, api) =
            testing::call(&app(AppState::new(db.clone())), "GET", &format!("/v1/analytics/overview?{query}"), Some(&keys.secret), None)
                .await;
        assert_eq!(status, StatusCode::OK);
        let mut client = Client::new(&db);
        client.sign_in("owner@a.test", PASSWORD).await;
        let page = client.get(&format!("/admin/overview?{query}")).await;
        assert_eq!(page.status, StatusCode::OK, "{}", page.body);
        let shown = |figure: &str| attribute_after(&page.body, &format!("data-figure=\"{figure}\" data-value=\""));
        assert_eq!(shown("revenue"), api["current"]["revenue"].to_string());
        assert_eq!(shown("revenue"), "12500");
        assert_eq!(shown("orders"), api["current"]["orders"].to_string());
        assert_eq!(shown("active_customers"), api["current"]["active_customers"].to_string());
        assert_eq!(shown("repurchase_rate"), api["current"]["repurchase_rate"]["rate"].to_string());
        assert!(page.body.contains("$125.00"), "revenue shown as money");
        // Each figure's definition is on the page, the same text the API serves.
        assert!(page.body.contains("Customers with at least two purchases in the period"));
        // Every page renders for an owner, in English and in Chinese.
        for uri in [
            "/admin/rfm", "/admin/rfm/5/5", "/admin/cohorts", "/admin/segments", "/admin/definitions", "/admin/users", "/admin/audit",
            "/admin/customers", "/admin/loyalty", "/admin/recommendations", "/admin/plugins", "/admin/settings",
        ] {
            let answer = client.get(uri).await;
            assert_eq!(answer.status, StatusCode::OK, "{uri}: {}", answer.body);
        }
        // The recommendations page shows the report of `GET /v1/recommendations/report`.
        let (status, report) =
            testing::call(&app(AppState::new(db.clone())), "GET", &format!("/v1/recommendations/report?{query}"), Some(&keys.secret), None).await;
        assert_eq!(status, StatusCode::OK, "{report}");
        let recs = client.get(&format!("/admin/recommendations?{query}")).await;
        let shown_rec = |figure: &str| attribute_after(&recs.body, &format!("data-figure=\"{figure}\" data-value=\""));
        assert_eq!(shown_rec("rec_impressions"), report["total"]["impressions"].to_string());
        assert_eq!(shown_rec("rec_orders"), report["total"]["orders"].to_string());
        assert_eq!(shown_rec("rec_revenue"), report["total"]["revenue"].to_string());
        // The recommender's last offline evaluation, once one has run (`recs evaluate`).
        assert!(recs.body.contains("No offline evaluation yet"), "{}", recs.body);
        let evaluation = json!({"plugin": "recommender@0.1.0", "k": 10, "training_orders": 5120, "held_out_orders": 1804,
            "customers": 300, "strategies": [
                {"strategy": "popular", "hit_rate": 0.125, "recall": 0.0625, "ndcg": 0.0712, "empty_lists": 0},
                {"strategy": "for-you", "hit_rate": 0.25, "recall": 0.1875, "ndcg": 0.1534, "empty_lists": 3}]});
        db.save_recommendation_evaluation(shop.id, "recommender", &evaluation.to_string()).await.expect("save");
        let recs = client.get(&format!("/admin/recommendations?{query}")).await;
        assert!(!recs.body.contains("No offline evaluation yet"));
        assert_eq!(attribute_after(&recs.body, "data-strategy=\"for-you\" data-hit-rate=\""), "0.25");
        for shown in ["recommender@0.1.0", "Hit rate@10", "25.0%", "18.8%", "0.153", "300 customers scored", "5,120 training orders"] {
            assert!(recs.body.contains(shown), "{shown} on the page");
        }
        client.get("/admin/locale?lang=zh-CN&next=/admin/overview").await;
        let chinese = client.get(&format!("/admin/overview?{query}")).await;
        assert!(chinese.body.contains("复购率") && chinese.body.contains("lang=\"zh-CN\""));
        for uri in ["/admin/rfm", "/admin/cohorts", "/admin/customers", "/admin/loyalty", "/admin/recommendations", "/admin/plugins", "/admin/settings", "/admin/segments"] {
            assert_eq!(client.get(uri).await.status, StatusCode::OK, "{uri} in Chinese");
        }
        let chinese = client.get("/admin/recommendations").await;
        assert!(chinese.body.contains("离线评估") && chinese.body.contains("命中率@10"), "the evaluation in Chinese");
        // Pages are not cached, framed or scriptable from elsewhere.
        assert_eq!(page.headers.get(header::CACHE_CONTROL).and_then(|v| v.to_str().ok()), Some("no-store"));
        assert!(page.headers.get(header::CONTENT_SECURITY_POLICY).is_some());
    }
);

both_backends!(
    async fn customers_are_searched_by_email_name_external_id_and_phone(db) {
        let (shop, keys) = testing::shop(&db, "a").await;
        let (other, _) = testing::shop(&db, "b").await;
        let mei = customer(&db, &shop, "ext-mei", "mei.lin@example.com", "Mei", Some("+86 138-0013-8000")).await;
        let tom = customer(&db, &shop, "ext-tom", "tom@shop.test", "Tom", None).await;
        let _ann = customer(&db, &shop, "ext-ann", "ann_50%@shop.test", "Ann", None).await;
        customer(&db, &other, "ext-mei", "mei.lin@example.com", "Mei", None).await;
        let app = app(AppState::new(db.clone()));
        let search = |q: &str| {
            let app = app.clone();
            let secret = keys.secret.clone();
            let uri = format!("/v1/customers?{q}");
            async move { testing::call(&app, "GET", &uri, Some(&secret), None).await }
        };
        let ids = |body: &Value| -> Vec<String> {
            body["customers"].as_array().expect("customers").iter().map(|c| c["id"].as_str().expect("id as string").to_owned()).collect()
        };
        let (status, body) = search("q=MEI.LIN").await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(ids(&body), [mei.to_string()], "email, any case, one shop only");
        assert_eq!(ids(&search("q=tom%20example").await.1), [tom.to_string()], "full name");
        assert_eq!(ids(&search("q=ext-tom").await.1), [tom.to_string()], "external id");
        assert_eq!(ids(&search("q=13800138000").await.1), [mei.to_string()], "phone digits, however written");
        assert_eq!(ids(&search("q=50%25").await.1).len(), 1, "% is literal");
        assert!(ids(&search("q=nobody").await.1).is_empty());
        // Everyone, a page at a time.
        let (_, first) = search("limit=2").await;
        assert_eq!(ids(&first).len(), 2);
        let cursor = first["next_cursor"].as_str().expect("a next page").to_owned();
        let (_, second) = search(&format!("limit=2&cursor={cursor}")).await;
        assert_eq!(ids(&second).len(), 1);
        assert!(second["next_cursor"].is_null());
        let mut all = ids(&first);
        all.extend(ids(&second));
        all.dedup();
        assert_eq!(all.len(), 3);
        // Bad paging is a clear error; a key is needed.
        let (status, body) = search("limit=0").await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
        assert_eq!(search("cursor=abc").await.0, StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(testing::call(&app, "GET", "/v1/customers", None, None).await.0, StatusCode::UNAUTHORIZED);
    }
);

const LOYALTY_MANIFEST: &str = include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/../plugins/loyalty/patron.toml"));

/// The form field block `<div … data-field="{name}">` of a page, up to the next field.
fn field_block<'a>(html: &'a str, name: &str) -> &'a str {
    let marker = format!("data-field=\"{name}\"");
    let at = html.find(&marker).unwrap_or_else(|| panic!("no field {name} in:\n{html}"));
    let start = html[..at].rfind("<div").unwrap_or(at);
    let rest = &html[start..];
    let end = rest[at - start + 1..].find("data-field=").map_or(rest.len(), |i| at - start + 1 + i);
    &rest[..end]
}

/// `text` as the templates write it into a page.
fn escaped(text: &str) -> String {
    minijinja::HtmlEscape(text).to_string()
}

/// Every audit action of the shop, newest first.
async fn audited(db: &Db, shop: &Shop) -> Vec<(String, Option<String>, String)> {
    db.audit_log(shop.id, 100).await.expect("audit").into_iter().map(|e| (e.action, e.target, e.detail)).collect()
}

/// Uploads the loyalty plugin (with `manifest`) and returns the review page.
async fn upload_loyalty(client: &mut Client, manifest: &str) -> Answer {
    let csrf = client.csrf().await;
    let wasm = patron_runtime::testing::plugin_wasm("loyalty").expect("loyalty plugin builds");
    client
        .send_multipart(
            "/admin/plugins",
            &[
                ("csrf", None, csrf.as_bytes()),
                ("wasm", Some("loyalty.wasm"), &wasm),
                ("manifest", Some("patron.toml"), manifest.as_bytes()),
            ],
        )
        .await
}

both_backends!(
    async fn owners_install_configure_dry_run_and_enable_plugins(db) {
        let (shop, _) = testing::shop(&db, "a").await;
        user(&db, &shop, "owner@a.test", Role::Owner).await;
        user(&db, &shop, "marketer@a.test", Role::Marketer).await;
        let mut marketer = Client::new(&db);
        marketer.sign_in("marketer@a.test", PASSWORD).await;
        let overview = marketer.get("/admin/overview").await;
        assert!(!overview.body.contains("href=\"/admin/plugins\""), "no link for a marketer");
        assert_eq!(marketer.get("/admin/plugins").await.status, StatusCode::FORBIDDEN);
        let csrf = marketer.csrf().await;
        let refused = marketer.send("POST", "/admin/plugins/loyalty/install", Some(&[("csrf", csrf.as_str())]), &[]).await;
        assert_eq!(refused.status, StatusCode::FORBIDDEN);
        let upload = upload_loyalty(&mut marketer, LOYALTY_MANIFEST).await;
        assert!(matches!(upload.status, StatusCode::PAYLOAD_TOO_LARGE | StatusCode::FORBIDDEN), "{}", upload.status);

        let mut owner = Client::new(&db);
        owner.sign_in("owner@a.test", PASSWORD).await;
        let list = owner.get("/admin/plugins").await;
        assert_eq!(list.status, StatusCode::OK, "{}", list.body);
        assert!(list.body.contains("href=\"/admin/plugins\"") && list.body.contains("id=\"upload-form\""));
        // An upload without the form's token is refused before it is read.
        let wasm = patron_runtime::testing::plugin_wasm("loyalty").expect("loyalty plugin builds");
        let bare = owner
            .send_multipart("/admin/plugins", &[("wasm", Some("l.wasm"), &wasm), ("manifest", Some("patron.toml"), LOYALTY_MANIFEST.as_bytes())])
            .await;
        assert_eq!(bare.status, StatusCode::FORBIDDEN);
        // Not a component: said so, nothing kept.
        let csrf = owner.csrf().await;
        let junk = owner
            .send_multipart("/admin/plugins", &[("csrf", None, csrf.as_bytes()), ("wasm", Some("x.wasm"), b"MZ\x90\x00"), ("manifest", Some("patron.toml"), LOYALTY_MANIFEST.as_bytes())])
            .await;
        assert_eq!(junk.status, StatusCode::UNPROCESSABLE_ENTITY);
        assert!(junk.body.contains("not a WebAssembly component"), "{}", junk.body);

        // Upload, review the manifest with its imports ticked, install (disabled).
        let review = upload_loyalty(&mut owner, LOYALTY_MANIFEST).await;
        assert_eq!(review.status, StatusCode::OK, "{}", review.body);
        assert!(review.body.contains("id=\"manifest\"") && review.body.contains("points-per-unit"), "the manifest and its schema are shown");
        assert!(review.body.contains("value=\"clock\" checked") && review.body.contains("value=\"config\" checked"));
        assert!(review.body.contains("value=\"kv\">"), "an undeclared import is offered unticked");
        let token = attribute_after(&review.body, "name=\"pending\" value=\"");
        let csrf = owner.csrf().await;
        let installed = owner
            .send("POST", "/admin/plugins/loyalty/install", Some(&[("csrf", csrf.as_str()), ("pending", token.as_str()), ("grant", "clock"), ("grant", "config")]), &[])
            .await;
        assert_eq!(installed.status, StatusCode::SEE_OTHER, "{}", installed.body);
        assert_eq!(location(&installed), "/admin/plugins/loyalty?done=installed");
        let install = db.plugin_install(shop.id, "loyalty").await.expect("read").expect("installed");
        assert_eq!((install.status.as_str(), install.grants.clone()), ("disabled", vec!["clock".to_owned(), "config".to_owned()]));
        // The token was used up.
        let again = owner
            .send("POST", "/admin/plugins/loyalty/install", Some(&[("csrf", csrf.as_str()), ("pending", token.as_str())]), &[])
            .await;
        assert_eq!(again.status, StatusCode::GONE);

        // The config form is made from the schema.
        let page = owner.get("/admin/plugins/loyalty?done=installed").await;
        assert_eq!(page.status, StatusCode::OK, "{}", page.body);
        assert!(page.body.contains("Plugin installed"));
        assert!(field_block(&page.body, "unit").contains("name=\"cfg.unit\"") && field_block(&page.body, "unit").contains("placeholder=\"100\""));
        assert!(field_block(&page.body, "tier-coupon").contains("<select"), "a boolean is a choice");
        assert!(field_block(&page.body, "tiers").contains("<textarea"), "an array is JSON");
        assert!(field_block(&page.body, "currency").contains("placeholder=\"USD\""), "the shop's currency fills an unset currency");
        assert!(page.body.contains("id=\"breaker\"") && page.body.contains("Closed"));

        // Errors are shown next to their field, and nothing is saved.
        let save = |pairs: Vec<(&'static str, String)>| {
            let csrf = csrf.clone();
            let mut form = vec![("csrf", csrf)];
            form.extend(pairs);
            form
        };
        for (field, value, message) in [
            ("unit", "0", "must be at least 1"),
            ("unit", "ten", "Enter a whole number"),
            ("tiers", "[{\"name\": \"gold\", \"threshold\": -5}]", "tiers[0].threshold: must be at least 0"),
            ("tiers", "[{\"name\": ", "This is not valid JSON"),
        ] {
            let form = save(vec![(if field == "unit" { "cfg.unit" } else { "cfg.tiers" }, value.to_owned())]);
            let pairs: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();
            let answer = owner.send("POST", "/admin/plugins/loyalty/config", Some(&pairs), &[]).await;
            assert_eq!(answer.status, StatusCode::UNPROCESSABLE_ENTITY, "{field}={value}: {}", answer.body);
            let block = field_block(&answer.body, field);
            assert!(block.contains("field invalid") && block.contains(message), "{field}={value}: {block}");
            assert!(block.contains(&escaped(value)), "the value typed is kept: {block}");
        }
        assert_eq!(db.plugin_install(shop.id, "loyalty").await.expect("read").expect("install").config, json!({}));
        // Without the token, nothing either.
        let answer = owner.send("POST", "/admin/plugins/loyalty/config", Some(&[("cfg.unit", "100")]), &[]).await;
        assert_eq!(answer.status, StatusCode::FORBIDDEN);
        // A valid form is saved through the API's own function.
        let form = save(vec![("cfg.unit", "100".to_owned()), ("cfg.currency", "USD".to_owned()), ("cfg.tier-coupon", "false".to_owned()), ("cfg.points-per-unit", "1.5".to_owned())]);
        let pairs: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let saved = owner.send("POST", "/admin/plugins/loyalty/config", Some(&pairs), &[]).await;
        assert_eq!(saved.status, StatusCode::SEE_OTHER, "{}", saved.body);
        let config = db.plugin_install(shop.id, "loyalty").await.expect("read").expect("install").config;
        assert_eq!(config, json!({"unit": 100, "currency": "USD", "tier-coupon": false, "points-per-unit": 1.5}));
        let page = owner.get("/admin/plugins/loyalty?done=config").await;
        assert!(page.body.contains("Configuration saved") && field_block(&page.body, "unit").contains("value=\"100\""));

        // A dry run, as htmx asks for it: a fragment with what it would do.
        customer(&db, &shop, "c-1", "c1@example.com", "Cy", None).await;
        order(&db, &shop, "o-1", "c-1", "2024-03-05", 60_000).await;
        let dry = owner
            .send("POST", "/admin/plugins/loyalty/dry-run", Some(&[]), &[("x-csrf-token", csrf.as_str()), ("hx-request", "true"), ("hx-target", "dry-run")])
            .await;
        assert_eq!(dry.status, StatusCode::OK, "{}", dry.body);
        assert!(dry.body.contains("id=\"dry-run\"") && !dry.body.contains("<html"), "{}", dry.body);
        assert!(dry.body.contains("data-figure=\"dry_orders\"") && dry.body.contains("data-figure=\"dry_points\""), "{}", dry.body);
        assert_eq!(db.points_balance(shop.id, db.customer_by_external_id(shop.id, "c-1").await.expect("read").expect("c").id).await.expect("balance"), 0, "a dry run applies nothing");

        // Enable, then upgrade by a new upload and roll back.
        let enabled = owner.send("POST", "/admin/plugins/loyalty/status", Some(&[("csrf", csrf.as_str()), ("enabled", "true")]), &[]).await;
        assert_eq!(enabled.status, StatusCode::SEE_OTHER);
        assert_eq!(db.plugin_install(shop.id, "loyalty").await.expect("read").expect("install").status, "enabled");
        let bumped = LOYALTY_MANIFEST.replacen("version = \"0.1.0\"", "version = \"0.1.1\"", 1);
        assert_ne!(bumped, LOYALTY_MANIFEST, "the manifest's version line");
        let review = upload_loyalty(&mut owner, &bumped).await;
        assert!(review.body.contains("Upgrade from"), "{}", review.body);
        let token = attribute_after(&review.body, "name=\"pending\" value=\"");
        let upgraded = owner
            .send("POST", "/admin/plugins/loyalty/install", Some(&[("csrf", csrf.as_str()), ("pending", token.as_str()), ("grant", "clock"), ("grant", "config")]), &[])
            .await;
        assert_eq!(location(&upgraded), "/admin/plugins/loyalty?done=upgraded");
        let install = db.plugin_install(shop.id, "loyalty").await.expect("read").expect("install");
        assert_eq!((install.active_version.as_str(), install.status.as_str()), ("0.1.1", "enabled"), "an upgrade keeps the install enabled");
        assert_eq!(install.config["unit"], 100, "and its configuration");
        let rolled = owner.send("POST", "/admin/plugins/loyalty/rollback", Some(&[("csrf", csrf.as_str())]), &[]).await;
        assert_eq!(rolled.status, StatusCode::SEE_OTHER);
        assert_eq!(db.plugin_install(shop.id, "loyalty").await.expect("read").expect("install").active_version, "0.1.0");

        // Every change is in the audit log.
        let log = audited(&db, &shop).await;
        for action in ["plugin_installed", "plugin_configured", "plugin_dry_run", "plugin_enabled", "plugin_upgraded", "plugin_rolled_back"] {
            assert!(log.iter().any(|(a, target, _)| a == action && target.as_deref() == Some("plugin loyalty")), "{action}: {log:?}");
        }
        let configured = log.iter().find(|(a, _, _)| a == "plugin_configured").expect("configured");
        assert_eq!(configured.2, "changed: currency, points-per-unit, tier-coupon, unit");
        assert_eq!(log.iter().filter(|(a, _, _)| a == "plugin_configured").count(), 1, "refused forms are not changes");
        let audit_page = owner.get("/admin/audit").await;
        assert!(audit_page.body.contains("plugin_rolled_back") && audit_page.body.contains("0.1.1 → 0.1.0"), "{}", audit_page.body);
        // The list shows the install's status and breaker.
        let list = owner.get("/admin/plugins").await;
        assert!(list.body.contains("data-plugin=\"loyalty\"") && list.body.contains("s-enabled") && list.body.contains("s-closed"), "{}", list.body);
        // Another shop's owner finds nothing of it.
        let (b, _) = testing::shop(&db, "b").await;
        user(&db, &b, "owner@b.test", Role::Owner).await;
        let mut other = Client::new(&db);
        other.sign_in("owner@b.test", PASSWORD).await;
        assert_eq!(other.get("/admin/plugins/loyalty").await.status, StatusCode::NOT_FOUND);
        let csrf_b = other.csrf().await;
        let theirs = other.send("POST", "/admin/plugins/loyalty/status", Some(&[("csrf", csrf_b.as_str()), ("enabled", "false")]), &[]).await;
        assert_eq!(theirs.status, StatusCode::NOT_FOUND);
        assert_eq!(db.plugin_install(shop.id, "loyalty").await.expect("read").expect("install").status, "enabled");
    }
);

both_backends!(
    async fn failed_jobs_are_listed_and_retried_by_owners(db) {
        let (shop, _) = testing::shop(&db, "a").await;
        user(&db, &shop, "owner@a.test", Role::Owner).await;
        user(&db, &shop, "analyst@a.test", Role::Analyst).await;
        db.enqueue_job(shop.id, "automation.trigger", &json!({"plugin": "journeys"}), 1, "failing-1").await.expect("job");
        db.enqueue_job(shop.id, "automation.trigger", &json!({"plugin": "journeys"}), 1, "queued-1").await.expect("job");
        sqlx::query("UPDATE jobs SET status = 'failed', attempts = 5, last_error = 'the plugin trapped' WHERE dedup_key = 'failing-1'")
            .execute(db.pool())
            .await
            .expect("fail it");
        let ids: Vec<(i64, String)> = sqlx::query_as("SELECT id, dedup_key FROM jobs WHERE dedup_key IN ('failing-1', 'queued-1') ORDER BY dedup_key").fetch_all(db.pool()).await.expect("ids");
        let (failed, queued) = (ids[0].0, ids[1].0);
        let mut analyst = Client::new(&db);
        analyst.sign_in("analyst@a.test", PASSWORD).await;
        let csrf = analyst.csrf().await;
        let refused = analyst.send("POST", &format!("/admin/jobs/{failed}/retry"), Some(&[("csrf", csrf.as_str())]), &[]).await;
        assert_eq!(refused.status, StatusCode::FORBIDDEN);
        let mut owner = Client::new(&db);
        owner.sign_in("owner@a.test", PASSWORD).await;
        let list = owner.get("/admin/plugins").await;
        assert!(list.body.contains(&format!("data-job=\"{failed}\"")) && list.body.contains("the plugin trapped"), "{}", list.body);
        assert!(!list.body.contains(&format!("data-job=\"{queued}\"")), "only jobs that failed for good");
        let csrf = owner.csrf().await;
        let not_failed = owner.send("POST", &format!("/admin/jobs/{queued}/retry"), Some(&[("csrf", csrf.as_str())]), &[]).await;
        assert_eq!(not_failed.status, StatusCode::CONFLICT);
        let retried = owner.send("POST", &format!("/admin/jobs/{failed}/retry"), Some(&[("csrf", csrf.as_str())]), &[]).await;
        assert_eq!(retried.status, StatusCode::SEE_OTHER, "{}", retried.body);
        let status: String = sqlx::query_scalar("SELECT status FROM jobs WHERE id = $1").bind(failed).fetch_one(db.pool()).await.expect("status");
        assert_eq!(status, "queued");
        assert!(audited(&db, &shop).await.iter().any(|(a, t, _)| a == "job_retried" && t.as_deref() == Some(&format!("job {failed}"))));
        assert_eq!(owner.send("POST", "/admin/jobs/999/retry", Some(&[("csrf", csrf.as_str())]), &[]).await.status, StatusCode::NOT_FOUND);
    }
);

both_backends!(
    async fn the_loyalty_page_shows_tier_moves_points_and_rewards_of_the_api(db) {
        let (shop, keys) = testing::shop(&db, "a").await;
        user(&db, &shop, "owner@a.test", Role::Owner).await;
        let state = AppState::new(db.clone());
        let router = app(state.clone());
        // The first-party loyalty plugin, enabled: orders earn points and set tiers.
        let manifest: Value = serde_json::to_value(toml::from_str::<toml::Value>(LOYALTY_MANIFEST).expect("toml")).expect("json");
        let wasm = patron_runtime::testing::plugin_wasm("loyalty").expect("loyalty plugin builds");
        use base64::Engine as _;
        let body = json!({
            "manifest": manifest, "wasm_base64": base64::engine::general_purpose::STANDARD.encode(wasm),
            "grants": manifest["imports"], "config": {"currency": "USD"}, "enable": true,
        });
        let (status, body) = testing::call(&router, "POST", "/v1/plugins", Some(&keys.secret), Some(body)).await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        let order = |id: &str, who: &str, amount: i64| {
            json!({"id": id, "customer": {"external_id": who}, "lines": [{"product_id": "p1", "title": "Tea", "quantity": 1, "unit_price": amount}]})
        };
        // ada: 60.00 → gold at once; bob: 10.00 → silver, then 50.00 more → gold.
        for (id, who, amount) in [("1", "ada", 60_000), ("2", "bob", 1_000), ("3", "bob", 50_000)] {
            let (status, body) = testing::call(&router, "POST", "/v1/orders", Some(&keys.secret), Some(order(id, who, amount))).await;
            assert_eq!(status, StatusCode::CREATED, "{body}");
        }
        let token = patron::auth::customer_token(&shop.secret_hash, "ada").expect("token");
        let uri = format!("/v1/rewards/redeem?key={}", shop.publishable_key);
        let redeem = json!({"customer_id": "ada", "customer_token": token, "reward_id": "five-off"});
        let (status, body) = testing::call(&router, "POST", &uri, None, Some(redeem)).await;
        assert_eq!(status, StatusCode::OK, "{body}");

        let (status, api) = testing::call(&router, "GET", "/v1/analytics/loyalty?bucket=day", Some(&keys.secret), None).await;
        assert_eq!(status, StatusCode::OK, "{api}");
        let mut moves = api["tier_movements"]["current"].as_array().expect("moves").clone();
        moves.sort_by_key(|m| (m["from"].as_str().map(str::to_owned), m["to"].as_str().map(str::to_owned)));
        assert_eq!(
            moves,
            [
                json!({"from": null, "to": "gold", "members": 1}),
                json!({"from": null, "to": "silver", "members": 1}),
                json!({"from": "silver", "to": "gold", "members": 1}),
            ]
        );
        assert_eq!(api["tiers"], json!([{"tier": "gold", "members": 2}]));
        assert_eq!(api["rewards"]["current"], json!([{"reward": "five-off", "redemptions": 1}]));
        assert_eq!(api["points"]["current"]["redeemed"], 500);
        let earned = api["points"]["current"]["earned"].as_i64().expect("earned");
        assert!(earned > 0);

        let mut client = Client::new(&db);
        client.sign_in("owner@a.test", PASSWORD).await;
        let page = client.get("/admin/loyalty").await;
        assert_eq!(page.status, StatusCode::OK, "{}", page.body);
        let shown = |figure: &str| attribute_after(&page.body, &format!("data-figure=\"{figure}\" data-value=\""));
        assert_eq!(shown("points_earned"), earned.to_string());
        assert_eq!(shown("points_redeemed"), "500");
        assert_eq!(shown("rewards_redeemed"), "1");
        assert_eq!(shown("coupons_issued"), api["coupons"]["current"].as_array().expect("coupons").iter().map(|c| c["issued"].as_i64().unwrap_or(0)).sum::<i64>().to_string());
        assert!(page.body.contains("id=\"points-chart\"") && page.body.contains("id=\"tiers-chart\""));
        assert!(page.body.contains("id=\"tier-movements\"") && page.body.contains("five-off"));
        client.get("/admin/locale?lang=zh-CN&next=/admin/loyalty").await;
        let chinese = client.get("/admin/loyalty").await;
        assert!(chinese.status == StatusCode::OK && chinese.body.contains("等级变动"), "{}", chinese.body);
        assert_eq!(client.get("/admin/loyalty?since=2024-04-01&until=2024-03-01").await.status, StatusCode::OK, "a bad period falls back");
    }
);

both_backends!(
    async fn segments_show_size_over_time_and_export_neutralised_csv(db) {
        let (shop, keys) = testing::shop(&db, "a").await;
        let (other, _) = testing::shop(&db, "b").await;
        user(&db, &shop, "owner@a.test", Role::Owner).await;
        user(&db, &shop, "analyst@a.test", Role::Analyst).await;
        user(&db, &other, "owner@b.test", Role::Owner).await;
        let at = |date: &str| patron::timestamp::Timestamp::parse(date).expect("date").0;
        // Names a spreadsheet would run as formulas.
        let hostile = [
            ("c-1", "=HYPERLINK(\"http://evil.test\",\"x\")", "one@example.com"),
            ("c-2", "+1 555", "two@example.com"),
            ("c-3", "-2", "@three@example.com"),
            ("c-4", "@SUM(A1)", "four@example.com"),
        ];
        let mut ids = Vec::new();
        for (external_id, first, email) in hostile {
            let input = CustomerInput { external_id: Some(external_id.into()), email: Some(email.trim_start_matches('@').into()), first_name: Some(first.into()), ..CustomerInput::default() };
            ids.push(db.upsert_customer(shop.id, &input.validate().expect("valid")).await.expect("customer").0.id);
        }
        let vip: std::collections::BTreeSet<String> = ["vip".to_owned()].into();
        for id in &ids {
            db.set_segments(shop.id, *id, "rules", &vip).await.expect("joined");
        }
        db.set_segments(shop.id, ids[3], "rules", &std::collections::BTreeSet::new()).await.expect("left");
        // Backdated: c-1 and c-2 joined in February, c-3 and c-4 on 2024-03-10, c-4 left on 2024-03-20.
        for (id, joined) in [(ids[0], "2024-02-01"), (ids[1], "2024-02-15"), (ids[2], "2024-03-10"), (ids[3], "2024-03-10")] {
            sqlx::query("UPDATE segment_memberships SET joined_at = $1 WHERE shop_id = $2 AND customer_id = $3")
                .bind(at(joined)).bind(shop.id).bind(id).execute(db.pool()).await.expect("backdate");
        }
        sqlx::query("UPDATE segment_memberships SET left_at = $1 WHERE shop_id = $2 AND customer_id = $3")
            .bind(at("2024-03-20")).bind(shop.id).bind(ids[3]).execute(db.pool()).await.expect("backdate");

        // By hand, for March (weekly buckets would start on Mondays; days here): 2 members at
        // the start, 2 joined on 03-10 (4), 1 left on 03-20 (3).
        let period = patron::analytics::Period::new(at("2024-03-01"), at("2024-04-01"), None).expect("period");
        let history = db.analytics_segment_history(shop.id, "vip", period).await.expect("history");
        assert_eq!((history.members_at_start, history.joined, history.left, history.members_at_end), (2, 2, 1, 3));
        assert_eq!(history.trend.len(), 31);
        let day = |d: usize| (history.trend[d - 1].members, history.trend[d - 1].joined, history.trend[d - 1].left);
        assert_eq!((day(9), day(10), day(19), day(20), day(31)), ((2, 0, 0), (4, 2, 0), (4, 0, 0), (3, 0, 1), (3, 0, 0)));
        // The same figures as JSON for the merchant's own BI.
        let api = patron::app(patron::AppState::new(db.clone()));
        let uri = "/v1/analytics/segments/vip?since=2024-03-01&until=2024-04-01";
        let (status, body) = testing::call(&api, "GET", uri, Some(&keys.secret), None).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(body, serde_json::to_value(&history).expect("json"));

        let mut owner = Client::new(&db);
        owner.sign_in("owner@a.test", PASSWORD).await;
        let page = owner.get("/admin/segments/vip?since=2024-03-01&until=2024-04-01").await;
        assert_eq!(page.status, StatusCode::OK, "{}", page.body);
        assert!(page.body.contains("data-members=\"3\" data-joined=\"2\" data-left=\"1\""), "{}", page.body);
        assert!(page.body.contains("id=\"segment-chart\"") && page.body.contains(&format!("href=\"{}\"", escaped("/admin/segments/vip/members.csv"))));
        let list = owner.get("/admin/segments").await;
        assert!(list.body.contains("data-segment=\"vip\""), "{}", list.body);

        let csv = owner.get("/admin/segments/vip/members.csv").await;
        assert_eq!(csv.status, StatusCode::OK, "{}", csv.body);
        assert_eq!(csv.headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()), Some("text/csv; charset=utf-8"));
        assert!(csv.headers.get(header::CONTENT_DISPOSITION).and_then(|v| v.to_str().ok()).is_some_and(|v| v.contains("segment-vip.csv")));
        let lines: Vec<&str> = csv.body.lines().collect();
        assert_eq!(lines[0], "id,external_id,email,phone,name,order_count,total_spent,currency,first_order_at,last_order_at,p_alive,expected_purchases_365d,clv");
        assert_eq!(lines.len(), 4, "three current members: {}", csv.body);
        let mut expected = [
            (ids[0], format!("{},c-1,one@example.com,,\"'=HYPERLINK(\"\"http://evil.test\"\",\"\"x\"\")\",0,0,USD,,,,,", ids[0])),
            (ids[1], format!("{},c-2,two@example.com,,'+1 555,0,0,USD,,,,,", ids[1])),
            (ids[2], format!("{},c-3,three@example.com,,'-2,0,0,USD,,,,,", ids[2])),
        ];
        expected.sort();
        let expected: Vec<&str> = expected.iter().map(|(_, line)| line.as_str()).collect();
        assert_eq!(lines[1..], expected[..], "in id order, formulas neutralised");
        assert!(!csv.body.contains("@SUM"), "a member who left is not exported");
        assert!(audited(&db, &shop).await.iter().any(|(a, t, d)| a == "segment_exported" && t.as_deref() == Some("segment vip") && d == "3 members"));

        // An analyst's export is masked; another shop has no such segment.
        let mut analyst = Client::new(&db);
        analyst.sign_in("analyst@a.test", PASSWORD).await;
        let masked = analyst.get("/admin/segments/vip/members.csv").await;
        assert_eq!(masked.status, StatusCode::OK);
        assert!(masked.body.contains("o•••@example.com") && !masked.body.contains("one@example.com"), "{}", masked.body);
        let mut stranger = Client::new(&db);
        stranger.sign_in("owner@b.test", PASSWORD).await;
        assert_eq!(stranger.get("/admin/segments/vip/members.csv").await.status, StatusCode::NOT_FOUND);
        assert_eq!(stranger.get("/admin/segments/vip").await.status, StatusCode::NOT_FOUND);
        // Members a page at a time, as htmx asks for the next one.
        let fragment = owner.send("GET", "/admin/segments/vip", None, &[("hx-request", "true"), ("hx-target", "results")]).await;
        assert!(fragment.body.contains("customer-row") && !fragment.body.contains("<html"), "{}", fragment.body);
    }
);

both_backends!(
    async fn owners_change_shop_settings_and_rotate_the_secret_key(db) {
        let (shop, keys) = testing::shop(&db, "a").await;
        user(&db, &shop, "owner@a.test", Role::Owner).await;
        user(&db, &shop, "marketer@a.test", Role::Marketer).await;
        let mut marketer = Client::new(&db);
        marketer.sign_in("marketer@a.test", PASSWORD).await;
        assert_eq!(marketer.get("/admin/settings").await.status, StatusCode::FORBIDDEN);
        let csrf = marketer.csrf().await;
        let refused = marketer.send("POST", "/admin/settings/rotate-key", Some(&[("csrf", csrf.as_str()), ("grace_hours", "1")]), &[]).await;
        assert_eq!(refused.status, StatusCode::FORBIDDEN);

        let mut owner = Client::new(&db);
        owner.sign_in("owner@a.test", PASSWORD).await;
        let page = owner.get("/admin/settings").await;
        assert_eq!(page.status, StatusCode::OK, "{}", page.body);
        assert!(page.body.contains(&escaped("http://shop.test")) && page.body.contains(&shop.publishable_key));
        let csrf = owner.csrf().await;
        let form = |origins: &'static str, timezone: &'static str, currency: &'static str| {
            vec![("csrf", csrf.clone()), ("origins", origins.to_owned()), ("honor_dnt", "on".to_owned()), ("currency", currency.to_owned()), ("locale", "zh-CN".to_owned()), ("timezone", timezone.to_owned())]
        };
        let post = |pairs: &Vec<(&'static str, String)>| pairs.iter().map(|(k, v)| (*k, v.clone())).collect::<Vec<_>>();
        // A refused value is shown on its field, and nothing changes.
        let bad = post(&form("http://shop.test", "Mars/Olympus", "USD"));
        let pairs: Vec<(&str, &str)> = bad.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let answer = owner.send("POST", "/admin/settings", Some(&pairs), &[]).await;
        assert_eq!(answer.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", answer.body);
        assert!(field_block(&answer.body, "timezone").contains("field-error"), "{}", answer.body);
        assert!(field_block(&answer.body, "timezone").contains(&escaped("Mars/Olympus")), "the value typed is kept");
        assert_eq!(db.shop(shop.id).await.expect("read").expect("shop").locale, shop.locale);
        // A valid form is saved.
        let good = post(&form("http://shop.test\nhttps://www.shop.test/", "Asia/Shanghai", "USD"));
        let pairs: Vec<(&str, &str)> = good.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let answer = owner.send("POST", "/admin/settings", Some(&pairs), &[]).await;
        assert_eq!(answer.status, StatusCode::SEE_OTHER, "{}", answer.body);
        let saved = db.shop(shop.id).await.expect("read").expect("shop");
        assert_eq!(saved.allowed_origins, ["http://shop.test", "https://www.shop.test"]);
        assert_eq!((saved.locale.as_str(), saved.timezone.as_str()), ("zh-CN", "Asia/Shanghai"));
        let log = audited(&db, &shop).await;
        assert!(log.iter().any(|(a, _, d)| a == "shop_updated" && d == "allowed_origins, locale, timezone"), "{log:?}");
        // Once the shop has orders, its currency cannot change: said on the field.
        customer(&db, &shop, "c-1", "c1@example.com", "Cy", None).await;
        order(&db, &shop, "o-1", "c-1", "2024-03-05", 1_000).await;
        let euro = post(&form("http://shop.test\nhttps://www.shop.test", "Asia/Shanghai", "EUR"));
        let pairs: Vec<(&str, &str)> = euro.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let answer = owner.send("POST", "/admin/settings", Some(&pairs), &[]).await;
        assert_eq!(answer.status, StatusCode::UNPROCESSABLE_ENTITY);
        assert!(field_block(&answer.body, "currency").contains("never converts amounts"), "{}", answer.body);

        // Rotating the key shows the new one once; the old one works through the grace period.
        let rotated = owner.send("POST", "/admin/settings/rotate-key", Some(&[("csrf", csrf.as_str()), ("grace_hours", "2")]), &[]).await;
        assert_eq!(rotated.status, StatusCode::OK, "{}", rotated.body);
        let start = rotated.body.find("id=\"new-secret\"").expect("the new key is shown");
        let secret = rotated.body[start..].split("<pre class=\"code\">").nth(1).and_then(|s| s.split('<').next()).expect("secret").to_owned();
        assert_ne!(secret, keys.secret);
        let router = app(AppState::new(db.clone()));
        assert_eq!(testing::call(&router, "GET", "/v1/shop", Some(&secret), None).await.0, StatusCode::OK, "the new key works");
        assert_eq!(testing::call(&router, "GET", "/v1/shop", Some(&keys.secret), None).await.0, StatusCode::OK, "the old key still works");
        let again = owner.get("/admin/settings").await;
        assert!(!again.body.contains(&secret), "shown once");
        assert!(audited(&db, &shop).await.iter().any(|(a, _, d)| a == "key_rotated" && d == "grace 2h"));
        let bad_grace = owner.send("POST", "/admin/settings/rotate-key", Some(&[("csrf", csrf.as_str()), ("grace_hours", "100000")]), &[]).await;
        assert_eq!(bad_grace.status, StatusCode::UNPROCESSABLE_ENTITY);
        // Without the form's token, nothing.
        let bare = owner.send("POST", "/admin/settings/rotate-key", Some(&[("grace_hours", "1")]), &[]).await;
        assert_eq!(bare.status, StatusCode::FORBIDDEN);
    }
);
