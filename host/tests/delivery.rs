//! Delivery end to end on both backends, with real channels: a real SMTP server
//! (Python's aiosmtpd) receives email, a local HTTP endpoint receives webhooks that the
//! Standard Webhooks reference library (Python `standardwebhooks`) verifies, and the
//! worker runs at injected times, so quiet hours, caps, retries and expired leases are
//! tested without sleeping.

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::{Body, Bytes};
use axum::http::{HeaderMap, Request, StatusCode};
use chrono::TimeZone;
use http_body_util::BodyExt;
use patron::delivery::{DeliveryConfig, Worker, policy, webhook};
use patron::store::customers::{Customer, CustomerInput};
use patron::store::outbox::OutboxMessage;
use patron::store::shops::{NewShop, Shop};
use patron::testing::SmtpSink;
use patron::{AppState, Db, app, both_backends};
use serde_json::{Value, json};
use tower::ServiceExt;

const MINUTE_MS: i64 = 60 * 1000;
const HOUR_MS: i64 = 60 * MINUTE_MS;

// ---------------------------------------------------------------- the shop and its API

struct TestShop {
    db: Db,
    state: AppState,
    shop: Shop,
    secret: String,
}

async fn test_shop(db: &Db, timezone: &str, locale: &str) -> TestShop {
    let mut new = NewShop::named("Tea House");
    new.allowed_origins = vec!["http://shop.test".into()];
    new.timezone = timezone.into();
    new.locale = locale.into();
    let (shop, keys) = db.create_shop(&new).await.expect("shop");
    let mut state = AppState::new(db.clone());
    state.delivery = config();
    TestShop { db: db.clone(), state, shop, secret: keys.secret }
}

fn config() -> DeliveryConfig {
    DeliveryConfig {
        public_url: "http://patron.test".into(),
        allow_private_targets: true,
        webhook_timeout: Duration::from_secs(1),
        smtp_timeout: Duration::from_secs(5),
        ..DeliveryConfig::default()
    }
}

impl TestShop {
    async fn call(&self, method: &str, uri: &str, body: Option<Value>) -> (StatusCode, Value) {
        let (status, _, bytes) = self.raw(method, uri, body, true).await;
        let value =
            serde_json::from_slice(&bytes).unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into()));
        (status, value)
    }

    async fn raw(&self, method: &str, uri: &str, body: Option<Value>, secret: bool) -> (StatusCode, HeaderMap, Bytes) {
        let mut request = Request::builder().method(method).uri(uri);
        if secret {
            request = request.header("authorization", format!("Bearer {}", self.secret));
        }
        let body = body.map_or_else(Body::empty, |b| Body::from(b.to_string()));
        let response = app(self.state.clone()).oneshot(request.body(body).expect("request")).await.expect("infallible");
        let (status, headers) = (response.status(), response.headers().clone());
        (status, headers, response.into_body().collect().await.expect("body").to_bytes())
    }

    async fn customer(&self, external_id: &str, consent: bool, phone: Option<&str>) -> Customer {
        let input = CustomerInput {
            external_id: Some(external_id.into()),
            email: Some(format!("{external_id}@example.com")),
            phone: phone.map(str::to_owned),
            first_name: Some(format!("Name-{external_id}")),
            marketing_consent: Some(consent),
            ..CustomerInput::default()
        };
        self.db.upsert_customer(self.shop.id, &input).await.expect("customer").0
    }

    /// A consenting customer whom the default 5 % holdout leaves in (or, `held`, keeps out).
    async fn customer_by_holdout(&self, prefix: &str, held: bool) -> Customer {
        for n in 0..2000 {
            let customer = self.customer(&format!("{prefix}-{n}"), true, Some("+15550100")).await;
            if policy::in_holdout(self.shop.id, customer.id, 5.0) == held {
                return customer;
            }
        }
        panic!("no customer with holdout = {held} in 2000");
    }

    async fn queue(&self, customer: &Customer, channel: &str, template: &str, data: Value) -> i64 {
        let message = OutboxMessage {
            customer_id: customer.id,
            channel: channel.into(),
            template: template.into(),
            data: data.to_string(),
            source: "test".into(),
        };
        self.db.queue_message(self.shop.id, &message).await.expect("queue")
    }

    async fn message(&self, id: i64) -> Value {
        let (status, body) = self.call("GET", &format!("/v1/messages/{id}"), None).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        body
    }

    async fn webhook_channel(&self, name: &str, url: &str) -> String {
        let (status, body) =
            self.call("PUT", &format!("/v1/channels/{name}"), Some(json!({"kind": "webhook", "url": url}))).await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        body["secret"].as_str().expect("a new webhook channel shows its secret once").to_owned()
    }

    async fn no_quiet_hours(&self) {
        let settings = json!({"quiet_hours_start": "00:00", "quiet_hours_end": "00:00"});
        let (status, body) = self.call("PUT", "/v1/contact-policy", Some(settings)).await;
        assert_eq!(status, StatusCode::OK, "{body}");
    }

    fn worker(&self) -> Worker {
        Worker::new(self.db.clone(), config()).expect("worker")
    }
}

/// Unix ms of a wall-clock time in a zone.
fn at(zone: chrono_tz::Tz, text: &str) -> i64 {
    let naive = chrono::NaiveDateTime::parse_from_str(text, "%Y-%m-%d %H:%M").expect("time");
    zone.from_local_datetime(&naive).single().expect("unambiguous").timestamp_millis()
}

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures").join(name)
}

// ---------------------------------------------------------------- a real SMTP server

// ---------------------------------------------------------------- a webhook receiver

#[derive(Debug, Clone)]
struct Received {
    path: String,
    id: String,
    timestamp: String,
    signature: String,
    body: String,
}

/// An HTTP endpoint on a local port: `/ok` takes webhooks, `/fail` answers 500,
/// `/slow` answers after 5 s; every request is recorded.
#[derive(Clone)]
struct WebhookSink {
    base: String,
    received: Arc<Mutex<Vec<Received>>>,
}

impl WebhookSink {
    async fn start() -> Self {
        let received: Arc<Mutex<Vec<Received>>> = Arc::default();
        let log = received.clone();
        let router = axum::Router::new().fallback(move |uri: axum::http::Uri, headers: HeaderMap, body: Bytes| {
            let log = log.clone();
            async move {
                let header =
                    |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
                let path = uri.path().to_owned();
                log.lock().expect("log").push(Received {
                    path: path.clone(),
                    id: header("webhook-id"),
                    timestamp: header("webhook-timestamp"),
                    signature: header("webhook-signature"),
                    body: String::from_utf8_lossy(&body).into_owned(),
                });
                match path.as_str() {
                    "/fail" => StatusCode::INTERNAL_SERVER_ERROR,
                    "/slow" => {
                        tokio::time::sleep(Duration::from_secs(5)).await;
                        StatusCode::OK
                    }
                    _ => StatusCode::NO_CONTENT,
                }
            }
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let base = format!("http://{}", listener.local_addr().expect("addr"));
        tokio::spawn(async move { axum::serve(listener, router).await });
        Self { base, received }
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    fn at(&self, path: &str) -> Vec<Received> {
        self.received.lock().expect("log").iter().filter(|r| r.path == path).cloned().collect()
    }
}

/// Verifies webhooks with the `standardwebhooks` reference library; "ok" or "rejected: …" each.
fn verify_independently(cases: &[(&str, &Received)]) -> Vec<String> {
    let input: Vec<Value> = cases
        .iter()
        .map(|(secret, r)| json!({"secret": secret, "id": r.id, "timestamp": r.timestamp, "signature": r.signature, "body": r.body}))
        .collect();
    let mut child = Command::new("python3")
        .arg(fixture("verify_webhooks.py"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("python3 with standardwebhooks");
    child.stdin.take().expect("stdin").write_all(Value::from(input).to_string().as_bytes()).expect("write");
    let output = child.wait_with_output().expect("verifier runs");
    assert!(output.status.success(), "the verifier failed (is standardwebhooks installed?)");
    serde_json::from_slice(&output.stdout).expect("verifier answers JSON")
}

// ---------------------------------------------------------------- tests

both_backends!(
    async fn the_welcome_email_reaches_a_real_smtp_server_and_its_links_work(db) {
        let sink = SmtpSink::start();
        let t = test_shop(&db, "UTC", "en").await;
        let settings = json!({"kind": "smtp", "host": "127.0.0.1", "port": sink.port, "tls": "none", "from": "Tea House <hello@tea.test>"});
        let (status, body) = t.call("PUT", "/v1/channels/email", Some(settings)).await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        let ada = t.customer_by_holdout("ada", false).await;
        let id = t.queue(&ada, "email", "welcome_1", json!({"journey": "welcome", "step": "day_0", "coupon": "HELLO10"})).await;

        let pass = t.worker().run_once_at(at(chrono_tz::UTC, "2027-06-01 12:00")).await.expect("pass");
        assert_eq!(pass.sent, 1, "{pass:?}");
        let mail = sink.received();
        assert_eq!(mail.len(), 1, "{mail:?}");
        let mail = &mail[0];
        assert_eq!(mail["rcpt_tos"], json!([ada.email.clone().expect("email")]));
        assert_eq!(mail["subject"], "Welcome to Tea House");
        assert_eq!(mail["purpose"], "marketing");
        assert!(mail["message_id"].as_str().expect("id").contains(&id.to_string()), "{mail}");
        let text = mail["body"].as_str().expect("body");
        assert!(text.contains(ada.first_name.as_deref().expect("name")) && text.contains("HELLO10"), "{text}");

        // The message is queryable, ids as strings, with its journey and history.
        let shown = t.message(id).await;
        assert_eq!((shown["id"].as_str(), shown["status"].as_str()), (Some(id.to_string().as_str()), Some("sent")));
        assert_eq!((shown["journey"].as_str(), shown["step"].as_str()), (Some("welcome"), Some("day_0")));
        let history: Vec<&str> = shown["history"].as_array().expect("history").iter().filter_map(|h| h["status"].as_str()).collect();
        assert_eq!(history, ["queued", "sending", "sent"]);
        let (_, listed) = t.call("GET", &format!("/v1/messages?customer_id={}&status=sent", ada.id), None).await;
        assert_eq!(listed.as_array().map(Vec::len), Some(1), "{listed}");
        assert_eq!(listed[0]["customer_id"], json!(ada.id.to_string()));

        // The tracked link redirects to the shop and counts the click.
        let link = text.split_whitespace().find(|w| w.starts_with("http://patron.test/r/")).expect("tracked link");
        let (status, headers, _) = t.raw("GET", link.trim_start_matches("http://patron.test"), None, false).await;
        assert!(status.is_redirection(), "{status}");
        assert_eq!(headers["location"], "http://shop.test");
        assert_eq!(t.message(id).await["clicks"], 1);
        let forged = link.replace("shop.test", "evil.test");
        let (status, _, _) = t.raw("GET", forged.trim_start_matches("http://patron.test"), None, false).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "a tampered redirect is refused");

        // Unsubscribe: GET only asks, POST clears consent; then marketing is suppressed.
        let unsubscribe = mail["list_unsubscribe"].as_str().expect("header").trim_matches(['<', '>']).to_owned();
        assert!(text.contains(&unsubscribe));
        let path = unsubscribe.trim_start_matches("http://patron.test");
        let (status, _, page) = t.raw("GET", path, None, false).await;
        assert_eq!(status, StatusCode::OK);
        assert!(String::from_utf8_lossy(&page).contains("<form method=\"post\">"));
        assert!(db.customer(t.shop.id, ada.id).await.expect("read").expect("ada").marketing_consent, "GET changes nothing");
        let (status, _, _) = t.raw("POST", path, None, false).await;
        assert_eq!(status, StatusCode::OK);
        assert!(!db.customer(t.shop.id, ada.id).await.expect("read").expect("ada").marketing_consent);
        let (status, _, _) = t.raw("POST", &format!("{path}0"), None, false).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "a wrong token unsubscribes no one");
        let again = t.queue(&ada, "email", "welcome_2", json!({})).await;
        t.worker().run_once_at(at(chrono_tz::UTC, "2027-06-03 12:00")).await.expect("pass");
        assert_eq!(t.message(again).await["reason"], "unsubscribed");
        assert_eq!(sink.received().len(), 1);
    }
);

both_backends!(
    async fn a_chinese_shop_sends_chinese_cart_reminders_linking_back_to_the_cart(db) {
        let sink = SmtpSink::start();
        let t = test_shop(&db, "Asia/Shanghai", "zh-CN").await;
        let settings = json!({"kind": "smtp", "host": "127.0.0.1", "port": sink.port, "tls": "none", "from": "hello@tea.test"});
        assert_eq!(t.call("PUT", "/v1/channels/email", Some(settings)).await.0, StatusCode::CREATED);
        let li = t.customer_by_holdout("li", false).await;
        t.queue(&li, "email", "cart_reminder_1", json!({"journey": "cart_abandonment", "step": "1"})).await;
        let pass = t.worker().run_once_at(at(chrono_tz::Asia::Shanghai, "2027-06-01 10:00")).await.expect("pass");
        assert_eq!(pass.sent, 1, "{pass:?}");
        let mail = sink.received()[0].clone();
        assert_eq!(mail["subject"], "您的购物车里还有商品");
        let text = mail["body"].as_str().expect("body");
        let link = text.split_whitespace().find(|w| w.starts_with("http://patron.test/r/")).expect("cart link");
        let (status, headers, _) = t.raw("GET", link.trim_start_matches("http://patron.test"), None, false).await;
        assert!(status.is_redirection());
        assert_eq!(headers["location"], "http://shop.test/cart");
    }
);

both_backends!(
    async fn signed_webhooks_verify_with_the_reference_library_and_tampering_is_rejected(db) {
        let sink = WebhookSink::start().await;
        let mut t = test_shop(&db, "UTC", "en").await;
        // Without the operator's allowance a loopback target is refused at configuration.
        t.state.delivery.allow_private_targets = false;
        let (status, body) = t.call("PUT", "/v1/channels/sms", Some(json!({"kind": "webhook", "url": sink.url("/ok")}))).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
        assert!(body["error"]["message"].as_str().expect("message").starts_with("url:"), "{body}");
        assert_eq!(t.call("GET", "/v1/channels", None).await.1, json!([]), "a refused channel is not stored");
        t.state.delivery.allow_private_targets = true;
        let secret = t.webhook_channel("sms", &sink.url("/ok")).await;
        assert!(secret.starts_with("whsec_"));
        let (_, listed) = t.call("GET", "/v1/channels", None).await;
        assert!(!listed.to_string().contains(&secret), "the secret is shown once only");

        let bo = t.customer("bo", false, Some("+15550123")).await;
        let receipt = json!({"purpose": "transactional", "order": "1001"});
        let first = t.queue(&bo, "sms", "review_request", receipt.clone()).await;
        let now = now_ms();
        assert_eq!(t.worker().run_once_at(now).await.expect("pass").sent, 1);
        let got = sink.at("/ok");
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].id, format!("msg_{first}"));
        let payload: Value = serde_json::from_str(&got[0].body).expect("json");
        assert_eq!(payload["type"], "message.send");
        assert_eq!(payload["data"]["purpose"], "transactional");
        assert_eq!(payload["data"]["to"]["phone"], "+15550123");
        assert_eq!(payload["data"]["id"], json!(first.to_string()));

        let tampered = Received { body: got[0].body.replace("1001", "9999"), ..got[0].clone() };
        // The same webhook correctly signed ten minutes ago (a replay) and, as a control, now.
        let resigned = |at: i64| {
            let signature = webhook::sign(&secret, &got[0].id, at / 1000, got[0].body.as_bytes()).expect("sign");
            Received { timestamp: (at / 1000).to_string(), signature, ..got[0].clone() }
        };
        let (stale, fresh) = (resigned(now_ms() - 10 * MINUTE_MS), resigned(now_ms()));
        let cases = [&got[0], &tampered, &stale, &fresh].map(|r| (secret.as_str(), r));
        let verdicts = verify_independently(&cases);
        assert_eq!(verdicts[0], "ok", "{verdicts:?}");
        assert!(verdicts[1].starts_with("rejected"), "tampered body: {verdicts:?}");
        assert!(verdicts[2].starts_with("rejected") && verdicts[2].contains("too old"), "stale timestamp: {verdicts:?}");
        assert_eq!(verdicts[3], "ok", "{verdicts:?}");

        // Rotation: during the overlap both secrets verify; two signatures are sent.
        let (status, rotated) = t.call("POST", "/v1/channels/sms/rotate-secret", Some(json!({"overlap_hours": 1}))).await;
        assert_eq!(status, StatusCode::OK, "{rotated}");
        let new_secret = rotated["secret"].as_str().expect("secret").to_owned();
        t.queue(&bo, "sms", "review_request", receipt).await;
        assert_eq!(t.worker().run_once_at(now_ms()).await.expect("pass").sent, 1);
        let third = sink.at("/ok").pop().expect("third");
        assert_eq!(third.signature.split(' ').count(), 2, "{}", third.signature);
        let verdicts = verify_independently(&[(secret.as_str(), &third), (new_secret.as_str(), &third), (new_secret.as_str(), &got[0])]);
        assert_eq!(verdicts[..2], ["ok", "ok"], "{verdicts:?}");
        assert!(verdicts[2].starts_with("rejected"), "the new secret did not sign old messages: {verdicts:?}");
    }
);

both_backends!(
    async fn a_message_in_quiet_hours_is_deferred_to_eight_shop_time(db) {
        let sink = WebhookSink::start().await;
        let t = test_shop(&db, "America/New_York", "en").await;
        t.webhook_channel("sms", &sink.url("/ok")).await;
        let ny = chrono_tz::America::New_York;
        let cy = t.customer_by_holdout("cy", false).await;
        let id = t.queue(&cy, "sms", "winback_1", json!({"journey": "winback", "step": "1"})).await;
        let worker = t.worker();
        let pass = worker.run_once_at(at(ny, "2027-11-06 23:30")).await.expect("pass");
        assert_eq!(pass.deferred, 1, "{pass:?}");
        let shown = t.message(id).await;
        assert_eq!((shown["status"].as_str(), shown["reason"].as_str()), (Some("deferred"), Some("quiet_hours")));
        // 08:00 New York time the next morning, on the day daylight saving ends.
        assert_eq!(shown["next_attempt_at"], json!(at(ny, "2027-11-07 08:00")));
        assert_eq!(worker.run_once_at(at(ny, "2027-11-07 07:59")).await.expect("pass").total(), 0);
        assert!(sink.at("/ok").is_empty());
        assert_eq!(worker.run_once_at(at(ny, "2027-11-07 08:00")).await.expect("pass").sent, 1);
        assert_eq!(sink.at("/ok").len(), 1);
        assert_eq!(t.message(id).await["status"], "sent");
    }
);

both_backends!(
    async fn consent_caps_and_holdout_suppress_and_say_why(db) {
        let sink = WebhookSink::start().await;
        let t = test_shop(&db, "UTC", "en").await;
        t.webhook_channel("sms", &sink.url("/ok")).await;
        t.no_quiet_hours().await;
        let worker = t.worker();
        let start = at(chrono_tz::UTC, "2027-06-01 12:00");
        let marketing = json!({"journey": "winback", "step": "1"});

        // Caps: one per 16 h, at most 3 per 7 days.
        let dee = t.customer_by_holdout("dee", false).await;
        let mut outcomes = Vec::new();
        for offset_hours in [0, 15, 17, 34, 51] {
            let id = t.queue(&dee, "sms", "winback_1", marketing.clone()).await;
            worker.run_once_at(start + offset_hours * HOUR_MS).await.expect("pass");
            let shown = t.message(id).await;
            outcomes.push(format!("{}:{}", shown["status"].as_str().unwrap_or("?"), shown["reason"].as_str().unwrap_or("")));
        }
        assert_eq!(outcomes, ["sent:", "suppressed:frequency_cap", "sent:", "sent:", "suppressed:frequency_cap"]);

        // No consent: no marketing; transactional still goes, labelled.
        let eve = t.customer("eve", false, Some("+15550199")).await;
        let promo = t.queue(&eve, "sms", "winback_1", marketing.clone()).await;
        let receipt = t.queue(&eve, "sms", "review_request", json!({"purpose": "transactional"})).await;
        // The holdout: none of their marketing goes.
        let hal = t.customer_by_holdout("hal", true).await;
        let held = t.queue(&hal, "sms", "welcome_1", json!({"journey": "welcome", "step": "1"})).await;
        // No address for the channel, and no such channel.
        let nadia = t.db.upsert_customer(t.shop.id, &CustomerInput { external_id: Some("nadia".into()), marketing_consent: Some(true), ..CustomerInput::default() }).await.expect("nadia").0;
        let nowhere = t.queue(&nadia, "sms", "welcome_1", json!({})).await;
        let unknown_channel = t.queue(&dee, "push", "welcome_1", json!({})).await;
        let pass = worker.run_once_at(start + 200 * HOUR_MS).await.expect("pass");
        assert_eq!((pass.sent, pass.suppressed, pass.failed), (1, 3, 1), "{pass:?}");
        for (id, status, reason) in [
            (promo, "suppressed", "no_consent"),
            (receipt, "sent", "transactional"),
            (held, "suppressed", "holdout"),
            (nowhere, "suppressed", "no_address"),
        ] {
            let shown = t.message(id).await;
            assert_eq!((shown["status"].as_str(), shown["reason"].as_str()), (Some(status), Some(reason)), "{shown}");
        }
        let failed = t.message(unknown_channel).await;
        assert_eq!(failed["status"], "failed");
        assert!(failed["reason"].as_str().expect("reason").contains("no channel named `push`"));
        let delivered: Vec<String> = sink.at("/ok").iter().map(|r| r.id.clone()).collect();
        assert_eq!(delivered.len(), 4, "three to dee, the receipt to eve");
        assert!(delivered.contains(&format!("msg_{receipt}")) && !delivered.contains(&format!("msg_{held}")));
        let (_, suppressed) = t.call("GET", "/v1/messages?status=suppressed&limit=50", None).await;
        assert_eq!(suppressed.as_array().map(Vec::len), Some(5));
    }
);

both_backends!(
    async fn a_worker_killed_after_sending_is_resent_with_the_same_id_once_its_lease_expires(db) {
        let sink = WebhookSink::start().await;
        let t = test_shop(&db, "UTC", "en").await;
        t.webhook_channel("sms", &sink.url("/ok")).await;
        let fay = t.customer("fay", true, Some("+15550111")).await;
        let id = t.queue(&fay, "sms", "review_request", json!({"purpose": "transactional"})).await;
        let now = now_ms();
        let doomed = t.worker();
        let (claimed, _) = doomed.claim_at(now).await.expect("claim");
        assert_eq!(claimed.len(), 1);
        // The send succeeds, then the worker dies before recording it.
        assert!(matches!(doomed.deliver(&claimed[0], now).await, patron::delivery::Outcome::Sent));
        assert_eq!(t.message(id).await["status"], "sending");

        let survivor = t.worker();
        assert_eq!(survivor.run_once_at(now + MINUTE_MS).await.expect("pass").total(), 0, "the lease still holds");
        let lease = i64::try_from(config().lease.as_millis()).expect("ms");
        assert_eq!(survivor.run_once_at(now + lease + 1).await.expect("pass").sent, 1);
        let ids: Vec<String> = sink.at("/ok").iter().map(|r| r.id.clone()).collect();
        assert_eq!(ids, [format!("msg_{id}"), format!("msg_{id}")], "resent once, with the same idempotency key");
        let shown = t.message(id).await;
        assert_eq!(shown["status"], "sent");
        assert_eq!(shown["attempts"], 2);
        assert!(shown["history"].to_string().contains("lease expired"));
        // The dead worker's late record changes nothing.
        assert_eq!(doomed.record(&claimed[0], &patron::delivery::Outcome::Sent, now).await.expect("record"), None);
    }
);

both_backends!(
    async fn failing_endpoints_are_retried_with_backoff_then_dead_lettered_and_block_nothing(db) {
        let sink = WebhookSink::start().await;
        let t = test_shop(&db, "UTC", "en").await;
        t.webhook_channel("ok", &sink.url("/ok")).await;
        t.webhook_channel("broken", &sink.url("/fail")).await;
        t.webhook_channel("slow", &sink.url("/slow")).await;
        let gus = t.customer("gus", true, Some("+15550112")).await;
        let transactional = json!({"purpose": "transactional"});
        let broken = t.queue(&gus, "broken", "review_request", transactional.clone()).await;
        let slow = t.queue(&gus, "slow", "review_request", transactional.clone()).await;
        let fine = t.queue(&gus, "ok", "review_request", transactional).await;
        let worker = t.worker();
        let now = now_ms();
        let started = Instant::now();
        let pass = worker.run_once_at(now).await.expect("pass");
        assert!(started.elapsed() < Duration::from_secs(4), "a slow endpoint held the pass: {:?}", started.elapsed());
        assert_eq!((pass.sent, pass.deferred), (1, 2), "{pass:?}");
        assert_eq!(t.message(fine).await["status"], "sent");
        let shown = t.message(broken).await;
        assert_eq!((shown["status"].as_str(), shown["reason"].as_str()), (Some("deferred"), Some("webhook answered 500 Internal Server Error")));
        assert_eq!(shown["next_attempt_at"], json!(now + MINUTE_MS));
        let shown = t.message(slow).await;
        assert_eq!((shown["status"].as_str(), shown["reason"].as_str()), (Some("deferred"), Some("webhook: timed out")));

        // The second failure waits twice as long.
        worker.run_once_at(now + MINUTE_MS).await.expect("pass");
        assert_eq!(t.message(broken).await["next_attempt_at"], json!(now + 3 * MINUTE_MS));
        assert_eq!(sink.at("/fail").len(), 2);
        // Three days on, the next failure dead-letters it.
        worker.run_once_at(now + 3 * 24 * HOUR_MS).await.expect("pass");
        let shown = t.message(broken).await;
        assert_eq!(shown["status"], "failed");
        assert!(shown["reason"].as_str().expect("reason").starts_with("gave up after 3 attempts"), "{shown}");
        let (_, dead) = t.call("GET", "/v1/messages/dead-letters", None).await;
        let dead_ids: Vec<&str> = dead.as_array().expect("list").iter().filter_map(|m| m["id"].as_str()).collect();
        assert!(dead_ids.contains(&broken.to_string().as_str()), "{dead}");
    }
);

both_backends!(
    async fn two_workers_never_send_one_message(db) {
        let sink = WebhookSink::start().await;
        let t = test_shop(&db, "UTC", "en").await;
        t.webhook_channel("sms", &sink.url("/ok")).await;
        let mut ids = Vec::new();
        for n in 0..12 {
            let customer = t.customer(&format!("c{n}"), true, Some("+15550000")).await;
            for _ in 0..2 {
                ids.push(format!("msg_{}", t.queue(&customer, "sms", "review_request", json!({"purpose": "transactional"})).await));
            }
        }
        let now = now_ms();
        let (a, b) = (t.worker(), t.worker());
        let (pa, pb) = tokio::join!(a.run_once_at(now), b.run_once_at(now));
        let (pa, pb) = (pa.expect("a"), pb.expect("b"));
        assert_eq!(pa.sent + pb.sent, 24, "{pa:?} {pb:?}");
        let mut got: Vec<String> = sink.at("/ok").iter().map(|r| r.id.clone()).collect();
        got.sort();
        ids.sort();
        assert_eq!(got, ids, "every message exactly once");
    }
);

both_backends!(
    async fn bad_configuration_is_refused_naming_the_field_and_templates_can_be_overridden(db) {
        let sink = WebhookSink::start().await;
        let t = test_shop(&db, "UTC", "en").await;
        let field_of = |body: &Value| body["error"]["message"].as_str().unwrap_or_default().split(':').next().unwrap_or_default().to_owned();
        for (uri, body, field) in [
            ("/v1/channels/sms", json!({"kind": "webhook", "url": "not a url"}), "url"),
            ("/v1/channels/sms", json!({"kind": "webhook", "url": "ftp://x.test/"}), "url"),
            ("/v1/channels/sms", json!({"kind": "pigeon"}), "kind"),
            ("/v1/channels/Bad%20Name", json!({"kind": "webhook", "url": sink.url("/ok")}), "name"),
            ("/v1/channels/email", json!({"kind": "smtp", "host": "127.0.0.1", "port": 25, "tls": "none", "from": "nobody"}), "from"),
            ("/v1/templates/welcome_9/en", json!({"subject": "x", "body": "y"}), "name"),
            ("/v1/templates/welcome_1/en", json!({"subject": "x", "body": "{% if %}"}), "body"),
            ("/v1/contact-policy", json!({"holdout_percent": 80}), "holdout_percent"),
        ] {
            let (status, answer) = t.call("PUT", uri, Some(body)).await;
            assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{uri}: {answer}");
            assert_eq!(field_of(&answer), field, "{uri}: {answer}");
        }
        assert_eq!(t.call("GET", "/v1/channels", None).await.1, json!([]));
        let (status, answer) = t.call("GET", "/v1/messages?status=lost", None).await;
        assert_eq!((status, field_of(&answer).as_str()), (StatusCode::UNPROCESSABLE_ENTITY, "status"));

        // A merchant's template replaces the built-in one for that shop and locale.
        t.webhook_channel("sms", &sink.url("/ok")).await;
        let custom = json!({"subject": "{{ customer.first_name }}, a note from {{ shop.name }}", "body": "{{ data.note }} {{ track(shop.url ~ '/new') }}"});
        let (status, answer) = t.call("PUT", "/v1/templates/welcome_1/en", Some(custom)).await;
        assert_eq!(status, StatusCode::OK, "{answer}");
        let ida = t.customer("ida", false, Some("+15550113")).await;
        t.queue(&ida, "sms", "welcome_1", json!({"purpose": "transactional", "note": "Hello!"})).await;
        assert_eq!(t.worker().run_once_at(now_ms()).await.expect("pass").sent, 1);
        let payload: Value = serde_json::from_str(&sink.at("/ok")[0].body).expect("json");
        assert_eq!(payload["data"]["subject"], "Name-ida, a note from Tea House");
        let body = payload["data"]["body"].as_str().expect("body");
        assert!(body.starts_with("Hello! http://patron.test/r/"), "{body}");
    }
);

/// Webhook delivery throughput to a local sink, on both backends:
/// `cargo test -p patron --release --test delivery -- --ignored --nocapture throughput`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a measurement, not a check"]
async fn throughput() {
    for backend in [patron::testing::Backend::Sqlite, patron::testing::Backend::Postgres] {
        let db = patron::testing::fresh_db(backend).await;
        let sink = WebhookSink::start().await;
        let t = test_shop(&db, "UTC", "en").await;
        t.webhook_channel("sms", &sink.url("/ok")).await;
        let customer = t.customer("load", true, Some("+15550100")).await;
        let count = 5_000;
        for _ in 0..count {
            t.queue(&customer, "sms", "review_request", json!({"purpose": "transactional"})).await;
        }
        let worker = Worker::new(db.clone(), DeliveryConfig { batch: 256, ..config() }).expect("worker");
        let started = Instant::now();
        let mut sent = 0;
        while sent < count {
            let pass = worker.run_once_at(now_ms()).await.expect("pass");
            assert!(pass.sent > 0, "stalled at {sent}");
            sent += pass.sent;
        }
        let elapsed = started.elapsed();
        assert_eq!(sink.at("/ok").len(), count);
        println!("{backend:?}: {count} webhooks in {elapsed:.2?}: {:.0}/s", count as f64 / elapsed.as_secs_f64());
    }
}

both_backends!(
    async fn the_journey_report_counts_per_step_and_says_when_the_shop_is_too_small(db) {
        let sink = WebhookSink::start().await;
        let t = test_shop(&db, "UTC", "en").await;
        t.webhook_channel("sms", &sink.url("/ok")).await;
        t.no_quiet_hours().await;
        let step = json!({"journey": "welcome", "step": "day_0"});
        let ann = t.customer_by_holdout("ann", false).await;
        let hal = t.customer_by_holdout("hal", true).await;
        let ned = t.customer("ned", false, Some("+15550114")).await;
        for customer in [&ann, &hal, &ned] {
            t.queue(customer, "sms", "welcome_1", step.clone()).await;
        }
        t.queue(&ann, "sms", "welcome_2", json!({"journey": "welcome", "step": "day_3"})).await;
        let now = now_ms();
        t.worker().run_once_at(now).await.expect("pass");
        // ann clicks the first message's link.
        let first = sink.at("/ok").into_iter().find(|r| r.body.contains("Thanks for joining")).expect("welcome_1");
        let payload: Value = serde_json::from_str(&first.body).expect("json");
        let text = payload["data"]["body"].as_str().expect("body");
        let link = text.split_whitespace().find(|w| w.starts_with("http://patron.test/r/")).expect("link");
        assert!(t.raw("GET", link.trim_start_matches("http://patron.test"), None, false).await.0.is_redirection());
        // Orders: two by ann within the week, one long after; one by hal.
        for (id, who, currency, price, after) in [
            ("o1", &ann, "USD", 2500, HOUR_MS),
            ("o2", &ann, "USD", 1200, 2 * HOUR_MS),
            ("o3", &ann, "USD", 9900, 10 * 24 * HOUR_MS),
            ("o4", &hal, "USD", 1000, HOUR_MS),
        ] {
            let order = json!({"id": id, "customer": {"external_id": who.external_id}, "currency": currency,
                "lines": [{"title": "Tea", "quantity": 1, "unit_price": price}], "placed_at": now + after});
            let (status, body) = t.call("POST", "/v1/orders", Some(order)).await;
            assert!(status.is_success(), "{body}");
        }
        let (status, report) = t.call("GET", "/v1/journeys/report", None).await;
        assert_eq!(status, StatusCode::OK, "{report}");
        let steps = report["steps"].as_array().expect("steps");
        assert_eq!(steps.len(), 2, "{report}");
        let day0 = &steps[0];
        assert_eq!((day0["journey"].as_str(), day0["step"].as_str()), (Some("welcome"), Some("day_0")));
        assert_eq!(day0["sent"], 1);
        assert_eq!(day0["suppressed"], json!({"holdout": 1, "no_consent": 1}));
        assert_eq!(day0["clicks"], 1);
        assert_eq!(day0["conversions"], 1);
        assert_eq!(day0["revenue"], json!({"USD": 3700}), "the late order is outside the window");
        assert_eq!((day0["uplift"]["holdout"].as_i64(), day0["uplift"]["holdout_conversions"].as_i64()), (Some(1), Some(1)));
        assert!(day0["uplift"]["verdict"].as_str().expect("verdict").starts_with("too small to tell"), "{day0}");
        assert_eq!(day0["uplift"]["ci95_points"], Value::Null);
        assert_eq!((steps[1]["step"].as_str(), steps[1]["sent"].as_i64()), (Some("day_3"), Some(0)), "capped: {}", steps[1]);
        assert_eq!(steps[1]["suppressed"], json!({"frequency_cap": 1}));
        let (status, _) = t.call("GET", "/v1/journeys/report?window_days=0", None).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);

        // `patron journeys report` gives the API's figures, as JSON and as a table.
        let json = patron::cli::journeys::report_text(&t.db, &t.shop, 30, 7, true).await.expect("cli json");
        let from_cli: Value = serde_json::from_str(&json).expect("cli prints json");
        assert_eq!(from_cli["steps"], report["steps"], "{json}");
        assert_eq!((from_cli["days"].as_i64(), from_cli["window_days"].as_i64()), (Some(30), Some(7)));
        let table = patron::cli::journeys::report_text(&t.db, &t.shop, 30, 7, false).await.expect("cli table");
        let day0 = table.lines().find(|l| l.contains("day_0")).expect("a day_0 row");
        let cells: Vec<&str> = day0.split_whitespace().collect();
        assert_eq!(cells, ["welcome", "day_0", "1", "2", "0", "0", "1", "1", "USD", "3700"], "{table}");
        assert!(table.contains("suppressed: holdout 1, no_consent 1"), "{table}");
        assert!(table.contains("uplift: too small to tell"), "{table}");
        let day3 = table.lines().find(|l| l.contains("day_3")).expect("a day_3 row");
        assert_eq!(day3.split_whitespace().collect::<Vec<_>>(), ["welcome", "day_3", "0", "1", "0", "0", "0", "0", "-"]);
        // A one-day window still counts ann's first two orders; the ten-days-later one never.
        let narrow = patron::cli::journeys::report_text(&t.db, &t.shop, 30, 1, true).await.expect("narrow");
        let narrow: Value = serde_json::from_str(&narrow).expect("json");
        assert_eq!(narrow["steps"][0]["revenue"], json!({"USD": 3700}));
    }
);

both_backends!(
    async fn an_unreachable_smtp_server_shows_as_a_retry_with_its_reason_never_a_silent_drop(db) {
        let t = test_shop(&db, "UTC", "en").await;
        // A port nothing listens on.
        let port = std::net::TcpListener::bind("127.0.0.1:0").expect("port").local_addr().expect("addr").port();
        let settings = json!({"kind": "smtp", "host": "127.0.0.1", "port": port, "tls": "none", "from": "hello@tea.test"});
        assert_eq!(t.call("PUT", "/v1/channels/email", Some(settings)).await.0, StatusCode::CREATED);
        let (_, listed) = t.call("GET", "/v1/channels/email", None).await;
        assert_eq!(listed["settings"]["port"], json!(port), "{listed}");
        let jo = t.customer("jo", false, None).await;
        let id = t.queue(&jo, "email", "review_request", json!({"purpose": "transactional"})).await;
        let now = now_ms();
        let pass = t.worker().run_once_at(now).await.expect("pass");
        assert_eq!(pass.deferred, 1, "{pass:?}");
        let shown = t.message(id).await;
        assert_eq!(shown["status"], "deferred");
        assert!(shown["reason"].as_str().expect("reason").starts_with("smtp:"), "{shown}");
        assert_eq!(shown["next_attempt_at"], json!(now + MINUTE_MS));
    }
);
