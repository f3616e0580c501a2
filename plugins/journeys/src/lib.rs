//! Journeys plugin: the seed practices of CRM messaging as one automation install —
//! welcome series, cart abandonment, browse abandonment, win-back and post-purchase
//! review requests, birthday — each configurable and on by default (see README.md and
//! [`config::Config`]). Messages go to the host's outbox, whose contact policy decides
//! whether and when they are delivered; this plugin only decides who should get what.

pub mod config;
pub mod run;

use patron_sdk::json::{self, Map, Value};
use patron_sdk::{Action, Automation, Event, Profile, Result, Timer, kv};

use crate::config::{Config, days, hours};
use crate::run::{Journey, Run, Step, object_text};

pub const WELCOME: &str = "welcome";
pub const CART: &str = "cart_abandonment";
pub const BROWSE: &str = "browse_abandonment";
pub const WIN_BACK: &str = "win_back";
pub const POST_PURCHASE: &str = "post_purchase";
pub const BIRTHDAY: &str = "birthday";
pub const REPLENISHMENT: &str = "replenishment";
/// The timer that checks, one usual interval and a half after an order, whether the
/// customer has ordered since.
const WIN_BACK_CHECK: &str = "win_back_check";
/// Most product views remembered per customer for browse abandonment.
const MAX_VIEWS: usize = 50;

const WELCOME_TEMPLATES: [&str; 3] = ["welcome_1", "welcome_2", "welcome_3"];
const WIN_BACK_TEMPLATES: [&str; 3] = ["winback_1", "winback_2", "winback_3"];
const STEP_NAMES: [&str; 3] = ["email_1", "email_2", "email_3"];

fn welcome(config: &Config) -> Journey {
    let steps = config.welcome.days.iter().zip(WELCOME_TEMPLATES).zip(STEP_NAMES);
    Journey {
        name: WELCOME,
        reentry: config.welcome.reentry,
        steps: steps.map(|((d, template), name)| Step::new(name, template, days(*d))).collect(),
    }
}

fn cart(config: &Config) -> Journey {
    let c = &config.cart_abandonment;
    let mut steps = vec![Step::new("reminder_1", "cart_reminder_1", hours(c.first_hours))];
    if c.second_hours > 0 {
        steps.push(Step::new("reminder_2", "cart_reminder_2", hours(c.second_hours)));
    }
    Journey { name: CART, reentry: c.reentry, steps }
}

fn browse(config: &Config) -> Journey {
    let b = &config.browse_abandonment;
    Journey {
        name: BROWSE,
        reentry: b.reentry,
        steps: vec![Step::new("reminder", "browse_reminder", hours(b.delay_hours))],
    }
}

fn win_back(config: &Config) -> Journey {
    let w = &config.win_back;
    let steps = w.days.iter().zip(WIN_BACK_TEMPLATES).zip(STEP_NAMES).enumerate();
    Journey {
        name: WIN_BACK,
        reentry: w.reentry,
        steps: steps
            .map(|(i, ((d, template), name))| Step {
                coupon: w.coupon_percents.get(i).map(|p| (*p, w.coupon_valid_days)),
                ..Step::new(name, template, days(*d))
            })
            .collect(),
    }
}

fn post_purchase(config: &Config) -> Journey {
    Journey {
        name: POST_PURCHASE,
        reentry: config::Reentry::Always,
        steps: vec![Step::new("review_request", "review_request", days(config.post_purchase.days))],
    }
}

fn birthday(config: &Config) -> Journey {
    let b = &config.birthday;
    // Birthdays a year apart begin at local midnights that can be an hour short of whole
    // days (a DST switch on a different date each year); a day's slack lets the next
    // birthday in without letting a second one into one year.
    let reentry = match b.reentry {
        config::Reentry::AfterDays(d) => config::Reentry::AfterDays(d.saturating_sub(1)),
        other => other,
    };
    Journey {
        name: BIRTHDAY,
        reentry,
        steps: vec![Step {
            coupon: Some((b.coupon_percent, b.coupon_valid_days)),
            ..Step::new("greeting", "birthday", 0)
        }],
    }
}

/// Whether the customer ordered after `at`.
fn ordered_since(profile: &Profile, at: i64) -> bool {
    profile.stats.last_order_at.is_some_and(|last| last >= at)
}

fn vars<const N: usize>(pairs: [(&str, Value); N]) -> Map {
    pairs.into_iter().collect()
}

/// The product an event is about, if it names one.
fn product_of(properties: &Value) -> Option<String> {
    properties["product_id"].as_str().map(str::to_owned)
}

/// The actions for one event under `config`.
pub fn event_actions(config: &Config, event: &Event, profile: &Profile) -> Result<Vec<Action>> {
    let customer = profile.id.as_str();
    let properties = json::parse(&event.properties).unwrap_or_default();
    let mut actions = Vec::new();
    let kind = event.kind.as_str();
    if config.welcome.enabled && (kind == "customer.created" || kind == config.welcome.signup_event) {
        actions.extend(welcome(config).enter(customer, event.at, Map::new())?);
    }
    match kind {
        "add_to_cart" => {
            actions.extend(browse(config).exit(customer)?);
            if config.cart_abandonment.enabled {
                let cart = cart(config);
                let product = product_of(&properties);
                if run::is_active(CART, customer)? {
                    cart.update_vars(customer, |vars| add_product(vars, product))?;
                } else {
                    let mut vars = Map::new();
                    add_product(&mut vars, product);
                    actions.extend(cart.enter(customer, event.at, vars)?);
                }
            }
        }
        "checkout_started" => actions.extend(cart(config).exit(customer)?),
        "customer.birthday" if config.birthday.enabled => {
            actions.extend(birthday(config).enter(customer, event.at, vars([("date", properties["date"].clone())]))?);
        }
        "product_view" if config.browse_abandonment.enabled => {
            if let Some(product) = product_of(&properties) {
                actions.extend(viewed(config, customer, &product, event.at)?);
            }
        }
        "order.placed" => {
            for journey in [cart(config), browse(config), win_back(config), post_purchase(config)] {
                actions.extend(journey.exit(customer)?);
            }
            if config.post_purchase.enabled {
                let order =
                    vars([("order_id", properties["order_id"].clone()), ("products", properties["products"].clone())]);
                actions.extend(post_purchase(config).enter(customer, event.at, order)?);
            }
            if config.win_back.enabled {
                actions.extend(win_back_check(config, profile));
            }
            if config.replenishment.enabled {
                actions.extend(replenish(config, &properties, event.at));
            }
        }
        "order.refunded" => {
            let reviewed = run::run_of(POST_PURCHASE, customer)?;
            if reviewed.is_some_and(|run| run.vars.get("order_id") == properties.get("order_id")) {
                actions.extend(post_purchase(config).exit(customer)?);
            }
        }
        _ => {}
    }
    if let Some(segment) = kind.strip_prefix("segment.entered:")
        && config.win_back.enabled
        && config.win_back.segments.iter().any(|s| s == segment)
    {
        actions.extend(win_back(config).enter(customer, event.at, vars([("reason", Value::from(segment))]))?);
    }
    Ok(actions)
}

fn add_product(vars: &mut Map, product: Option<String>) {
    let Some(product) = product else { return };
    let products = vars.get_or_insert_with("products", || Value::Array(Vec::new()));
    if let Value::Array(list) = products
        && !list.iter().any(|p| p.as_str() == Some(&product))
    {
        list.push(product.into());
    }
}

/// Remembers a product view; enough views of one product within the window, and no
/// cart, start a browse abandonment.
fn viewed(config: &Config, customer: &str, product: &str, at: i64) -> Result<Vec<Action>> {
    let b = &config.browse_abandonment;
    let key = format!("views:{customer}");
    let mut views: Vec<(String, i64)> = kv::read(&key)?.unwrap_or_default();
    views.retain(|(_, seen)| *seen > at - hours(b.window_hours));
    views.push((product.to_owned(), at));
    if views.len() > MAX_VIEWS {
        views.drain(..views.len() - MAX_VIEWS);
    }
    kv::write(&key, &views)?;
    let count = views.iter().filter(|(p, _)| p == product).count();
    if count < b.min_views as usize || run::is_active(CART, customer)? {
        return Ok(Vec::new());
    }
    browse(config).enter(customer, at, vars([("products", Value::Array(vec![Value::from(product)]))]))
}

/// After an order: (re)schedules the check that starts a win-back if the customer has
/// not ordered again within `interval-factor` times their usual interval.
fn win_back_check(config: &Config, profile: &Profile) -> Vec<Action> {
    let stats = &profile.stats;
    let (Some(first), Some(last)) = (stats.first_order_at, stats.last_order_at) else { return Vec::new() };
    if stats.order_count < 2 || last <= first {
        return Vec::new();
    }
    let usual = (last - first) / i64::from(stats.order_count - 1);
    // Saturating float-to-int cast: a huge factor only pushes the check out of reach.
    let wait = (usual as f64 * config.win_back.interval_factor) as i64;
    vec![
        Action::CancelTimer(WIN_BACK_CHECK.into()),
        Action::ScheduleTimer {
            name: WIN_BACK_CHECK.into(),
            at: last.saturating_add(wait),
            data: object_text([("last_order_at", Value::from(last))]),
        },
    ]
}

/// The timer of one product's replenishment reminder. Timer names are at most 64
/// characters: a longer product id is named by its hash (the data still carries it).
fn replenish_timer(product: &str) -> String {
    let name = format!("{REPLENISHMENT}:{product}");
    if name.len() <= 64 {
        return name;
    }
    // FNV-1a: stable across builds, no dependency.
    let hash = product.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3));
    format!("{REPLENISHMENT}:#{hash:016x}")
}

/// After an order: for each product the host says lasts `days`, (re)schedules its
/// reminder `lead-days` before it runs out.
fn replenish(config: &Config, properties: &Value, at: i64) -> Vec<Action> {
    let r = &config.replenishment;
    let placed_at = properties["placed_at"].as_i64().unwrap_or(at).min(at);
    let mut actions = Vec::new();
    for entry in properties["replenish"].as_array().into_iter().flatten() {
        let (Some(product), Some(lasts)) = (entry["product_id"].as_str(), entry["days"].as_i64()) else { continue };
        let name = replenish_timer(product);
        actions.push(Action::CancelTimer(name.clone()));
        if lasts < i64::from(r.min_days) {
            continue;
        }
        let due = placed_at.saturating_add(days(u32::try_from(lasts).unwrap_or(u32::MAX)));
        let remind_at = due.saturating_sub(days(r.lead_days)).max(at);
        let data = object_text([
            ("product_id", Value::from(product)),
            ("product_title", entry["product_title"].clone()),
            ("product_url", entry["product_url"].clone()),
            ("order_id", properties["order_id"].clone()),
            ("due_at", Value::from(due)),
        ]);
        actions.push(Action::ScheduleTimer { name, at: remind_at, data });
    }
    actions
}

/// A product's replenishment reminder is due: its message. A later order of the product
/// has replaced this timer with a new one, so a timer that fires is current.
fn replenish_reminder(config: &Config, timer: &Timer) -> Vec<Action> {
    let Ok(Value::Object(mut data)) = json::parse(&timer.data) else { return Vec::new() };
    if !config.replenishment.enabled {
        return Vec::new();
    }
    data.insert("journey", REPLENISHMENT);
    data.insert("step", "reminder");
    data.insert("purpose", "marketing");
    vec![Action::SendMessage {
        channel: "email".into(),
        template: "replenishment".into(),
        data: Value::Object(data).to_json(),
    }]
}

/// The actions for one due timer under `config`.
pub fn timer_actions(config: &Config, timer: &Timer, profile: &Profile) -> Result<Vec<Action>> {
    let customer = profile.id.as_str();
    if timer.name.starts_with(&format!("{REPLENISHMENT}:")) {
        return Ok(replenish_reminder(config, timer));
    }
    if timer.name == WIN_BACK_CHECK {
        let last = json::parse(&timer.data).ok().and_then(|d| d["last_order_at"].as_i64());
        if !config.win_back.enabled || profile.stats.last_order_at != last {
            return Ok(Vec::new());
        }
        return win_back(config).enter(customer, timer.at, vars([("reason", Value::from("overdue"))]));
    }
    let not_ordered = |run: &Run| !ordered_since(profile, run.entered_at);
    let journeys = [welcome(config), cart(config), browse(config), win_back(config), post_purchase(config)];
    let Some(journey) = journeys.iter().find(|j| j.owns(timer)) else { return Ok(Vec::new()) };
    match journey.name {
        CART | WIN_BACK => journey.fire(customer, timer, not_ordered),
        BROWSE => {
            let carted = run::run_of(CART, customer)?;
            journey.fire(customer, timer, |run| {
                not_ordered(run) && carted.is_none_or(|cart| cart.entered_at < run.entered_at)
            })
        }
        _ => journey.fire(customer, timer, |_| true),
    }
}

/// The plugin.
pub struct Journeys;

impl Automation for Journeys {
    fn on_event(event: Event, profile: Profile) -> Result<Vec<Action>> {
        event_actions(&patron_sdk::read_config()?, &event, &profile)
    }

    fn on_timer(timer: Timer, profile: Profile) -> Result<Vec<Action>> {
        timer_actions(&patron_sdk::read_config()?, &timer, &profile)
    }
}

patron_sdk::export!(automation: Journeys);

#[cfg(test)]
mod tests;
