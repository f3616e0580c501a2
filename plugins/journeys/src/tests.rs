use patron_sdk::testing::{TestHost, profile};
use patron_sdk::{Action, Discount, Event, Profile, Timer};
use serde_json::{Value, json};

use crate::config::Config;
use crate::{event_actions, timer_actions};

const T0: i64 = 1_700_000_000_000;
const HOUR: i64 = 60 * 60 * 1000;
const DAY: i64 = 24 * HOUR;

fn event(kind: &str, at: i64, properties: Value) -> Event {
    Event { kind: kind.into(), at, properties: properties.to_string() }
}

fn on_event(host: &mut TestHost, kind: &str, at: i64, properties: Value, who: &Profile) -> Vec<Action> {
    let config: Config = patron_sdk::json::from_str(&host.run(patron_sdk::config_json)).expect("config");
    host.run(|| event_actions(&config, &event(kind, at, properties), who)).expect("on_event")
}

fn fire(host: &mut TestHost, timer: &Timer, who: &Profile) -> Vec<Action> {
    let config: Config = patron_sdk::json::from_str(&host.run(patron_sdk::config_json)).expect("config");
    host.run(|| timer_actions(&config, timer, who)).expect("on_timer")
}

/// The timers scheduled among `actions`, as the host would fire them.
fn timers(actions: &[Action]) -> Vec<Timer> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::ScheduleTimer { name, at, data } => Some(Timer { name: name.clone(), at: *at, data: data.clone() }),
            _ => None,
        })
        .collect()
}

/// The (template, data) of the messages among `actions`.
fn messages(actions: &[Action]) -> Vec<(String, Value)> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::SendMessage { channel, template, data } => {
                assert_eq!(channel, "email");
                Some((template.clone(), serde_json::from_str(data).expect("message data is JSON")))
            }
            _ => None,
        })
        .collect()
}

#[test]
fn a_new_customer_gets_welcome_1_now_and_the_rest_on_days_3_and_7_once() {
    let mut host = TestHost::new().at(T0);
    let ada = profile("1");
    let actions = on_event(&mut host, "customer.created", T0, json!({}), &ada);
    let sent = messages(&actions);
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].0, "welcome_1");
    assert_eq!(sent[0].1, json!({"journey": "welcome", "step": "email_1", "purpose": "marketing"}));
    let due: Vec<(String, i64)> = timers(&actions).into_iter().map(|t| (t.name, t.at)).collect();
    assert_eq!(due, [("welcome:email_2".to_owned(), T0 + 3 * DAY), ("welcome:email_3".to_owned(), T0 + 7 * DAY)]);
    for timer in timers(&actions) {
        assert_eq!(messages(&fire(&mut host, &timer, &ada)).len(), 1, "{}", timer.name);
    }
    // Re-entry "never": a later sign-up does not start it again.
    assert!(on_event(&mut host, "custom:newsletter_signup", T0 + 30 * DAY, json!({}), &ada).is_empty());
}

#[test]
fn cart_abandonment_reminds_at_4_and_24_hours_with_the_products() {
    let mut host = TestHost::new().at(T0);
    let ada = profile("1");
    let first = on_event(&mut host, "add_to_cart", T0, json!({"product_id": "tea"}), &ada);
    assert!(on_event(&mut host, "add_to_cart", T0 + HOUR, json!({"product_id": "cup"}), &ada).is_empty());
    let due = timers(&first);
    assert_eq!(due.iter().map(|t| t.at).collect::<Vec<_>>(), [T0 + 4 * HOUR, T0 + 24 * HOUR]);
    let reminder_1 = messages(&fire(&mut host, &due[0], &ada));
    assert_eq!(reminder_1[0].0, "cart_reminder_1");
    assert_eq!(
        reminder_1[0].1,
        json!({"journey": "cart_abandonment", "step": "reminder_1", "purpose": "marketing", "products": ["tea", "cup"]})
    );
    assert_eq!(messages(&fire(&mut host, &due[1], &ada))[0].0, "cart_reminder_2");
}

#[test]
fn checking_out_cancels_the_reminders_and_a_timer_that_raced_the_cancel_sends_nothing() {
    let mut host = TestHost::new().at(T0);
    let ada = profile("1");
    let due = timers(&on_event(&mut host, "add_to_cart", T0, json!({"product_id": "tea"}), &ada));
    assert_eq!(messages(&fire(&mut host, &due[0], &ada)).len(), 1);
    let exit = on_event(&mut host, "checkout_started", T0 + 5 * HOUR, json!({}), &ada);
    assert_eq!(
        exit,
        [
            Action::CancelTimer("cart_abandonment:reminder_1".into()),
            Action::CancelTimer("cart_abandonment:reminder_2".into())
        ]
    );
    assert!(fire(&mut host, &due[1], &ada).is_empty(), "the exit is checked again when a step fires");
    // A new cart is a new run: the old run's timer still sends nothing.
    let again = timers(&on_event(&mut host, "add_to_cart", T0 + 6 * HOUR, json!({"product_id": "pot"}), &ada));
    assert!(fire(&mut host, &due[1], &ada).is_empty());
    assert_eq!(messages(&fire(&mut host, &again[0], &ada))[0].0, "cart_reminder_1");
}

#[test]
fn an_order_placed_since_the_cart_stops_a_reminder_at_fire_time() {
    let mut host = TestHost::new().at(T0);
    let mut ada = profile("1");
    let due = timers(&on_event(&mut host, "add_to_cart", T0, json!({"product_id": "tea"}), &ada));
    ada.stats.last_order_at = Some(T0 + HOUR);
    ada.stats.order_count = 1;
    let fired = fire(&mut host, &due[0], &ada);
    assert!(messages(&fired).is_empty());
    assert!(fired.contains(&Action::CancelTimer("cart_abandonment:reminder_2".into())));
}

#[test]
fn repeated_views_of_one_product_without_a_cart_start_a_browse_reminder() {
    let mut host = TestHost::new().at(T0);
    let ada = profile("1");
    let view = json!({"product_id": "tea"});
    assert!(on_event(&mut host, "product_view", T0, view.clone(), &ada).is_empty());
    assert!(on_event(&mut host, "product_view", T0 + HOUR, json!({"product_id": "cup"}), &ada).is_empty());
    assert!(on_event(&mut host, "product_view", T0 + 2 * HOUR, view.clone(), &ada).is_empty());
    let due = timers(&on_event(&mut host, "product_view", T0 + 3 * HOUR, view, &ada));
    assert_eq!(due.len(), 1);
    assert_eq!(due[0].at, T0 + 5 * HOUR);
    let sent = messages(&fire(&mut host, &due[0], &ada));
    assert_eq!(sent[0].0, "browse_reminder");
    assert_eq!(sent[0].1["products"], json!(["tea"]));

    // Views spread beyond the window do not count; a cart ends a browse run.
    let bob = profile("2");
    for hour in [0, 30, 60] {
        assert!(on_event(&mut host, "product_view", T0 + hour * HOUR, json!({"product_id": "tea"}), &bob).is_empty());
    }
    let carol = profile("3");
    for hour in 0..3 {
        on_event(&mut host, "product_view", T0 + hour * HOUR, json!({"product_id": "tea"}), &carol);
    }
    on_event(&mut host, "add_to_cart", T0 + 4 * HOUR, json!({"product_id": "tea"}), &carol);
    let browse = Timer {
        name: "browse_abandonment:reminder".into(),
        at: T0 + 4 * HOUR,
        data: json!({"run": T0 + 2 * HOUR}).to_string(),
    };
    assert!(messages(&fire(&mut host, &browse, &carol)).is_empty());
}

#[test]
fn entering_an_at_risk_segment_starts_a_win_back_with_escalating_coupons() {
    let mut host = TestHost::new().at(T0);
    let ada = profile("1");
    let actions = on_event(&mut host, "segment.entered:at-risk", T0, json!({"segment": "at-risk"}), &ada);
    assert!(matches!(&actions[0], Action::IssueCoupon(c) if c.discount == Discount::Percent(10)));
    let sent = messages(&actions);
    assert_eq!(sent[0].0, "winback_1");
    assert_eq!(sent[0].1["coupon_percent"], 10);
    let due = timers(&actions);
    let second = fire(&mut host, &due[0], &ada);
    assert!(matches!(&second[0], Action::IssueCoupon(c) if c.discount == Discount::Percent(15)));
    assert_eq!(messages(&second)[0].0, "winback_2");
    // Not a listed segment: nothing.
    assert!(on_event(&mut host, "segment.entered:vip", T0, json!({}), &profile("2")).is_empty());
}

#[test]
fn a_customer_past_one_and_a_half_usual_intervals_enters_win_back() {
    let mut host = TestHost::new().at(T0);
    let mut ada = profile("1");
    ada.stats.order_count = 3;
    ada.stats.first_order_at = Some(T0 - 40 * DAY);
    ada.stats.last_order_at = Some(T0);
    let actions = on_event(&mut host, "order.placed", T0, json!({"order_id": "o3", "products": ["tea"]}), &ada);
    let check = timers(&actions).into_iter().find(|t| t.name == "win_back_check").expect("a win-back check");
    assert_eq!(check.at, T0 + 30 * DAY, "1.5 x the usual 20 days");
    assert_eq!(messages(&fire(&mut host, &check, &ada))[0].0, "winback_1");

    // Ordered again since: the check lapses.
    let mut bob = profile("2");
    bob.stats = ada.stats.clone();
    on_event(&mut host, "order.placed", T0, json!({"order_id": "o4"}), &bob);
    bob.stats.last_order_at = Some(T0 + DAY);
    assert!(fire(&mut host, &check, &bob).is_empty());
}

#[test]
fn a_review_request_follows_an_order_unless_it_is_refunded() {
    let mut host = TestHost::new().at(T0);
    let ada = profile("1");
    let placed = on_event(&mut host, "order.placed", T0, json!({"order_id": "o1", "products": ["tea"]}), &ada);
    let review = timers(&placed).into_iter().find(|t| t.name == "post_purchase:review_request").expect("review timer");
    assert_eq!(review.at, T0 + 14 * DAY);
    let sent = messages(&fire(&mut host, &review, &ada));
    assert_eq!(sent[0].0, "review_request");
    assert_eq!(sent[0].1["order_id"], "o1");

    let bob = profile("2");
    let placed = on_event(&mut host, "order.placed", T0, json!({"order_id": "o2"}), &bob);
    let review = timers(&placed).into_iter().find(|t| t.name == "post_purchase:review_request").expect("review timer");
    let refunded = on_event(&mut host, "order.refunded", T0 + DAY, json!({"order_id": "o2"}), &bob);
    assert_eq!(refunded, [Action::CancelTimer("post_purchase:review_request".into())]);
    assert!(fire(&mut host, &review, &bob).is_empty());
}

#[test]
fn journeys_switch_off_and_reentry_reads_never_always_or_days() {
    let mut host = TestHost::new()
        .at(T0)
        .config(r#"{"welcome": {"enabled": false}, "cart-abandonment": {"second-hours": 0, "reentry": 2}}"#);
    let ada = profile("1");
    assert!(on_event(&mut host, "customer.created", T0, json!({}), &ada).is_empty());
    let due = timers(&on_event(&mut host, "add_to_cart", T0, json!({}), &ada));
    assert_eq!(due.len(), 1);
    fire(&mut host, &due[0], &ada);
    assert!(on_event(&mut host, "add_to_cart", T0 + DAY, json!({}), &ada).is_empty(), "within 2 days");
    assert_eq!(timers(&on_event(&mut host, "add_to_cart", T0 + 2 * DAY, json!({}), &ada)).len(), 1);

    let bad = patron_sdk::json::from_str::<Config>(r#"{"welcome": {"reentry": "sometimes"}}"#);
    assert!(bad.expect_err("refused").to_string().contains("re-entry `sometimes`"));
    assert!(patron_sdk::json::from_str::<Config>(r#"{"welcom": {}}"#).is_err(), "unknown fields are refused");
}

#[test]
fn a_birthday_brings_a_coupon_and_the_birthday_message_once_a_year() {
    let mut host = TestHost::new().at(T0);
    let ada = profile("1");
    let actions = on_event(&mut host, "customer.birthday", T0, json!({"date": "2023-11-14"}), &ada);
    assert!(
        matches!(&actions[0], Action::IssueCoupon(c) if c.discount == Discount::Percent(15) && c.expires_at == Some(T0 + 7 * DAY)),
        "{actions:?}"
    );
    let sent = messages(&actions);
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].0, "birthday");
    assert_eq!(
        sent[0].1,
        json!({"journey": "birthday", "step": "greeting", "purpose": "marketing", "date": "2023-11-14", "coupon_percent": 15})
    );
    // Told twice about one birthday, or a changed birthday a month later: nothing.
    assert!(on_event(&mut host, "customer.birthday", T0, json!({"date": "2023-11-14"}), &ada).is_empty());
    assert!(on_event(&mut host, "customer.birthday", T0 + 30 * DAY, json!({"date": "2023-12-14"}), &ada).is_empty());
    // Next year's birthday, even an hour short of 365 days after a DST switch: a new one.
    let next = on_event(&mut host, "customer.birthday", T0 + 365 * DAY - HOUR, json!({"date": "2024-11-14"}), &ada);
    assert_eq!(messages(&next).len(), 1);
}

#[test]
fn the_birthday_journey_follows_its_config() {
    let mut host = TestHost::new().at(T0).config(r#"{"birthday": {"coupon-percent": 20, "coupon-valid-days": 3}}"#);
    let actions = on_event(&mut host, "customer.birthday", T0, json!({"date": "2023-11-14"}), &profile("1"));
    assert!(
        matches!(&actions[0], Action::IssueCoupon(c) if c.discount == Discount::Percent(20) && c.expires_at == Some(T0 + 3 * DAY)),
        "{actions:?}"
    );
    let mut host = TestHost::new().at(T0).config(r#"{"birthday": {"coupon-percent": 0}}"#);
    let actions = on_event(&mut host, "customer.birthday", T0, json!({"date": "2023-11-14"}), &profile("1"));
    assert_eq!(messages(&actions).len(), 1);
    assert_eq!(actions.len(), 1, "no coupon: {actions:?}");
    let mut host = TestHost::new().at(T0).config(r#"{"birthday": {"enabled": false}}"#);
    assert!(on_event(&mut host, "customer.birthday", T0, json!({"date": "2023-11-14"}), &profile("1")).is_empty());
    assert!(patron_sdk::json::from_str::<Config>(r#"{"birthday": {"percent": 20}}"#).is_err(), "unknown field refused");
}

#[test]
fn a_consumable_is_remembered_lead_days_before_it_runs_out_and_a_reorder_moves_the_reminder() {
    let mut host = TestHost::new().at(T0);
    let ada = profile("1");
    let order = |id: &str, at: i64| {
        json!({"order_id": id, "placed_at": at, "products": ["beans", "kettle"],
            "replenish": [{"product_id": "beans", "product_title": "House beans", "product_url": "https://shop.test/beans", "days": 30}]})
    };
    let placed = on_event(&mut host, "order.placed", T0, order("o1", T0), &ada);
    assert!(placed.contains(&Action::CancelTimer("replenishment:beans".into())), "a reorder replaces the reminder");
    let reminder = timers(&placed).into_iter().find(|t| t.name == "replenishment:beans").expect("beans reminder");
    assert_eq!(reminder.at, T0 + 27 * DAY, "30 days, 3 days ahead");
    assert!(timers(&placed).iter().all(|t| !t.name.contains("kettle")), "no interval, no reminder");
    let sent = messages(&fire(&mut host, &reminder, &ada));
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].0, "replenishment");
    let data = &sent[0].1;
    assert_eq!((data["journey"].as_str(), data["step"].as_str()), (Some("replenishment"), Some("reminder")));
    assert_eq!(
        (data["product_title"].as_str(), data["product_url"].as_str()),
        (Some("House beans"), Some("https://shop.test/beans"))
    );
    assert_eq!(data["due_at"], T0 + 30 * DAY);

    // Bought again on day 20: the clock starts again from that order.
    let again = on_event(&mut host, "order.placed", T0 + 20 * DAY, order("o2", T0 + 20 * DAY), &ada);
    let moved = timers(&again).into_iter().find(|t| t.name == "replenishment:beans").expect("moved");
    assert_eq!(moved.at, T0 + 47 * DAY);
}

#[test]
fn replenishment_follows_its_config_and_long_product_ids_fit_a_timer_name() {
    let long = "p".repeat(80);
    let order = json!({"order_id": "o1", "placed_at": T0, "replenish": [
        {"product_id": "filters", "days": 5}, {"product_id": long, "days": 60}]});
    let mut host = TestHost::new().at(T0).config(r#"{"replenishment": {"lead-days": 10}}"#);
    let placed = on_event(&mut host, "order.placed", T0, order.clone(), &profile("1"));
    let due: Vec<(String, i64)> =
        timers(&placed).into_iter().filter(|t| t.name.starts_with("replenishment")).map(|t| (t.name, t.at)).collect();
    assert_eq!(due.len(), 1, "5 days is below min-days 7: {due:?}");
    assert!(due[0].0.starts_with("replenishment:#") && due[0].0.len() <= 64, "{}", due[0].0);
    assert_eq!(due[0].1, T0 + 50 * DAY);
    let mut host = TestHost::new().at(T0).config(r#"{"replenishment": {"enabled": false}}"#);
    let placed = on_event(&mut host, "order.placed", T0, order, &profile("1"));
    assert!(timers(&placed).iter().all(|t| !t.name.starts_with("replenishment")));
    assert!(
        patron_sdk::json::from_str::<Config>(r#"{"replenishment": {"lead": 2}}"#).is_err(),
        "unknown field refused"
    );
}

/// Runs and views stored before the plugin dropped serde still read.
#[test]
fn kv_values_keep_their_form() {
    use patron_sdk::json;
    let run: crate::run::Run =
        json::from_str(r#"{"entered_at":5,"active":true,"vars":{"products":["a","b"]}}"#).expect("a run");
    assert_eq!(
        (run.entered_at, run.active, run.vars.get("products").map(|p| p[1].clone())),
        (5, true, Some("b".into()))
    );
    let bare: crate::run::Run = json::from_str(r#"{"entered_at":5,"active":false}"#).expect("a run without vars");
    assert!(bare.vars.is_empty());
    assert_eq!(json::to_string(&run), r#"{"entered_at":5,"active":true,"vars":{"products":["a","b"]}}"#);
    let views: Vec<(String, i64)> = json::from_str(r#"[["p1",1700000000000],["p2",-1]]"#).expect("views");
    assert_eq!(views, [("p1".to_owned(), 1_700_000_000_000), ("p2".to_owned(), -1)]);
}
