//! Every world's call path, against the `patron plugin new` templates.

use patron_runtime::testing::{plugin_wasm, profile};
use patron_runtime::types::{Action, Event, LineItem, Member, Money, Order, OrderStatus, RecommendRequest, Timer};
use patron_runtime::{CallContext, ErrorKind, Grants, Manifest, Plugin, Runtime, RuntimeConfig, World};

fn load(package: &str, world: World) -> Plugin {
    let runtime = Runtime::new(RuntimeConfig::default()).expect("runtime");
    let wasm = plugin_wasm(package).unwrap_or_else(|e| panic!("{e}"));
    runtime.load(&wasm, &Manifest::new(package, "0.1.0", world), &Grants::none()).unwrap_or_else(|e| panic!("{e}"))
}

fn eur(amount: i64) -> Money {
    Money { amount, currency: "EUR".into() }
}

fn order(total: i64) -> Order {
    Order {
        id: "o1".into(),
        external_id: "1042".into(),
        customer_id: "c1".into(),
        status: OrderStatus::Paid,
        total: eur(total),
        items: vec![LineItem { product_id: "p1".into(), category: None, quantity: 2, unit_price: eur(total / 2) }],
        placed_at: 0,
    }
}

fn member(spend: i64) -> Member {
    Member { customer_id: "c1".into(), tier: None, points_balance: 0, rolling_spend: eur(spend) }
}

#[test]
fn loyalty() {
    let plugin = load("template-loyalty", World::Loyalty);
    let ctx = CallContext::new("s");
    let award = |amount: i64, reason: &str| {
        Action::AwardPoints(patron_runtime::types::PointsAward { amount, reason: reason.into() })
    };
    assert_eq!(plugin.on_order(&ctx, &order(12_345), &member(0)).expect("on-order"), [award(123, "order 1042")]);
    assert_eq!(plugin.on_refund(&ctx, &order(12_345), &member(0)).expect("on-refund"), [], "the host reverses");
    let tier = plugin.tier_for(&ctx, &member(40_000)).expect("tier-for");
    assert_eq!((tier.tier.as_str(), tier.spend_to_next), ("member", Some(eur(60_000))));
    let err = plugin.rewards(&ctx).expect_err("not implemented");
    assert!(matches!(&err.kind, ErrorKind::Guest { code, .. } if code == "not-implemented"), "{err}");
    // A loyalty plugin has no `segment`.
    let err = plugin.segment(&ctx, &[]).expect_err("wrong world");
    assert_eq!(err.kind, ErrorKind::WrongWorld(World::Segmenter));
}

#[test]
fn recommender_trains_in_chunks_and_serves_from_the_model() {
    let plugin = load("template-recommender", World::Recommender);
    let ctx = CallContext::new("s");
    let mut other = order(500);
    other.items[0].product_id = "p2".into();
    other.items[0].quantity = 5;
    let model = plugin.train(&ctx, None, &[order(100)], &[]).expect("train 1");
    let model = plugin.train(&ctx, Some(&model), &[other], &[]).expect("train 2");
    let request = RecommendRequest { customer_id: None, context_products: vec![], limit: 1 };
    let items = plugin.recommend(&ctx, &model, &request).expect("recommend");
    assert_eq!(items.len(), 1);
    assert_eq!(items[0].product_id, "p2");
}

#[test]
fn automation_schedules_and_fires_timers() {
    let plugin = load("template-automation", World::Automation);
    let ctx = CallContext::new("s");
    let event = Event { kind: "add_to_cart".into(), at: 1_000, properties: "{}".into() };
    let actions = plugin.on_event(&ctx, &event, &profile("c1", 0, 0, None)).expect("on-event");
    assert!(matches!(&actions[..], [Action::ScheduleTimer(t)] if t.at == 1_000 + 86_400_000), "{actions:?}");
    let timer = Timer { name: "cart-reminder".into(), at: 0, data: "{}".into() };
    let actions = plugin.on_timer(&ctx, &timer, &profile("c1", 0, 0, None)).expect("on-timer");
    assert!(matches!(&actions[..], [Action::SendMessage(m)] if m.template == "cart-reminder"), "{actions:?}");
}
