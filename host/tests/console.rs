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
        for uri in ["/admin/rfm", "/admin/rfm/5/5", "/admin/cohorts", "/admin/segments", "/admin/definitions", "/admin/users", "/admin/audit", "/admin/customers"] {
            let answer = client.get(uri).await;
            assert_eq!(answer.status, StatusCode::OK, "{uri}: {}", answer.body);
        }
        client.get("/admin/locale?lang=zh-CN&next=/admin/overview").await;
        let chinese = client.get(&format!("/admin/overview?{query}")).await;
        assert!(chinese.body.contains("复购率") && chinese.body.contains("lang=\"zh-CN\""));
        for uri in ["/admin/rfm", "/admin/cohorts", "/admin/customers"] {
            assert_eq!(client.get(uri).await.status, StatusCode::OK, "{uri} in Chinese");
        }
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
