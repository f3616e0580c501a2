//! Generated bindings and the glue between them and the plain-Rust traits.
//! Compiled for wasm32 only; nothing here is part of the SDK's API.

#![allow(unsafe_code, unreachable_pub, missing_docs, clippy::all)]

/// `segmenter`, and the interfaces every world shares.
pub mod segmenter {
    wit_bindgen::generate!({
        path: "../wit",
        world: "segmenter",
        pub_export_macro: true,
        export_macro_name: "export_segmenter",
    });
}

/// The `stats-segmentation` export alone. A stats segmenter invokes this
/// module's export macro and the `segmenter` module's; each embeds its world,
/// and the component gets their union, the `stats-segmenter` world. (Generating
/// `stats-segmenter` here would define `segmentation`'s export glue twice.)
pub mod stats_segmenter {
    wit_bindgen::generate!({
        path: "../wit",
        inline: "
            package patron:sdk;

            world stats-segmentation-export {
                export patron:plugin/stats-segmentation@0.1.2;
            }
        ",
        world: "patron:sdk/stats-segmentation-export",
        pub_export_macro: true,
        export_macro_name: "export_stats_segmenter",
        with: {
            "patron:plugin/types@0.1.2": crate::__wit::segmenter::patron::plugin::types,
        },
    });
}

/// `loyalty`.
pub mod loyalty {
    wit_bindgen::generate!({
        path: "../wit",
        world: "loyalty",
        pub_export_macro: true,
        export_macro_name: "export_loyalty",
        with: {
            "patron:plugin/types@0.1.2": crate::__wit::segmenter::patron::plugin::types,
            "patron:plugin/log@0.1.2": crate::__wit::segmenter::patron::plugin::log,
            "patron:plugin/clock@0.1.2": crate::__wit::segmenter::patron::plugin::clock,
            "patron:plugin/config@0.1.2": crate::__wit::segmenter::patron::plugin::config,
            "patron:plugin/kv@0.1.2": crate::__wit::segmenter::patron::plugin::kv,
        },
    });
}

/// `recommender`.
pub mod recommender {
    wit_bindgen::generate!({
        path: "../wit",
        world: "recommender",
        pub_export_macro: true,
        export_macro_name: "export_recommender",
        with: {
            "patron:plugin/types@0.1.2": crate::__wit::segmenter::patron::plugin::types,
            "patron:plugin/log@0.1.2": crate::__wit::segmenter::patron::plugin::log,
            "patron:plugin/clock@0.1.2": crate::__wit::segmenter::patron::plugin::clock,
            "patron:plugin/config@0.1.2": crate::__wit::segmenter::patron::plugin::config,
            "patron:plugin/kv@0.1.2": crate::__wit::segmenter::patron::plugin::kv,
        },
    });
}

/// `automation`.
pub mod automation {
    wit_bindgen::generate!({
        path: "../wit",
        world: "automation",
        pub_export_macro: true,
        export_macro_name: "export_automation",
        with: {
            "patron:plugin/types@0.1.2": crate::__wit::segmenter::patron::plugin::types,
            "patron:plugin/log@0.1.2": crate::__wit::segmenter::patron::plugin::log,
            "patron:plugin/clock@0.1.2": crate::__wit::segmenter::patron::plugin::clock,
            "patron:plugin/config@0.1.2": crate::__wit::segmenter::patron::plugin::config,
            "patron:plugin/kv@0.1.2": crate::__wit::segmenter::patron::plugin::kv,
        },
    });
}

/// `predictor` (since 0.1.2).
pub mod predictor {
    wit_bindgen::generate!({
        path: "../wit",
        world: "predictor",
        pub_export_macro: true,
        export_macro_name: "export_predictor",
        with: {
            "patron:plugin/types@0.1.2": crate::__wit::segmenter::patron::plugin::types,
            "patron:plugin/log@0.1.2": crate::__wit::segmenter::patron::plugin::log,
            "patron:plugin/clock@0.1.2": crate::__wit::segmenter::patron::plugin::clock,
            "patron:plugin/config@0.1.2": crate::__wit::segmenter::patron::plugin::config,
            "patron:plugin/kv@0.1.2": crate::__wit::segmenter::patron::plugin::kv,
        },
    });
}

use std::marker::PhantomData;

use self::segmenter::patron::plugin::types as w;
use crate::Money;
use crate::types as t;

/// Adapts an author's trait implementation `T` to the generated `Guest` traits.
pub struct Glue<T>(PhantomData<T>);

/// [`Glue`] for a [`StatsSegmenter`](crate::StatsSegmenter), which answers
/// `segmentation` too (a separate type: a plugin type could implement both traits).
pub struct StatsGlue<T>(PhantomData<T>);

fn money(m: w::Money) -> Money {
    Money::new(m.amount, m.currency)
}

fn money_out(m: Money) -> w::Money {
    w::Money { amount: m.amount, currency: m.currency }
}

fn error_out(e: t::Error) -> w::PluginError {
    w::PluginError { code: e.code, message: e.message }
}

fn customer_stats(s: w::CustomerStats) -> t::CustomerStats {
    t::CustomerStats {
        order_count: s.order_count,
        total_spent: s.total_spent,
        average_order_value: s.average_order_value,
        first_order_at: s.first_order_at,
        last_order_at: s.last_order_at,
        days_since_last_order: s.days_since_last_order,
    }
}

fn profile(p: w::Profile) -> t::Profile {
    t::Profile {
        id: p.id,
        external_id: p.external_id,
        email: p.email,
        traits: p.traits,
        stats: customer_stats(p.stats),
        tags: p.tags,
        segments: p.segments,
    }
}

fn order(o: w::Order) -> t::Order {
    t::Order {
        id: o.id,
        external_id: o.external_id,
        customer_id: o.customer_id,
        status: match o.status {
            w::OrderStatus::Paid => t::OrderStatus::Paid,
            w::OrderStatus::Cancelled => t::OrderStatus::Cancelled,
            w::OrderStatus::Refunded => t::OrderStatus::Refunded,
        },
        total: money(o.total),
        items: o
            .items
            .into_iter()
            .map(|i| t::LineItem {
                product_id: i.product_id,
                category: i.category,
                quantity: i.quantity,
                unit_price: money(i.unit_price),
            })
            .collect(),
        placed_at: o.placed_at,
    }
}

fn member(m: w::Member) -> t::Member {
    t::Member {
        customer_id: m.customer_id,
        tier: m.tier,
        points_balance: m.points_balance,
        rolling_spend: money(m.rolling_spend),
    }
}

fn product(p: w::Product) -> t::Product {
    t::Product { id: p.id, name: p.name, category: p.category, price: money(p.price) }
}

fn coupon_out(c: t::CouponSpec) -> w::CouponSpec {
    w::CouponSpec {
        discount: match c.discount {
            t::Discount::Percent(p) => w::Discount::Percent(p),
            t::Discount::Fixed(m) => w::Discount::Fixed(money_out(m)),
            t::Discount::FreeShipping => w::Discount::FreeShipping,
        },
        minimum_spend: c.minimum_spend.map(money_out),
        expires_at: c.expires_at,
    }
}

fn action_out(a: t::Action) -> w::Action {
    match a {
        t::Action::AddTag(s) => w::Action::AddTag(s),
        t::Action::RemoveTag(s) => w::Action::RemoveTag(s),
        t::Action::AwardPoints { amount, reason } => w::Action::AwardPoints(w::PointsAward { amount, reason }),
        t::Action::SetTier(s) => w::Action::SetTier(s),
        t::Action::IssueCoupon(c) => w::Action::IssueCoupon(coupon_out(c)),
        t::Action::SendMessage { channel, template, data } => {
            w::Action::SendMessage(w::Message { channel, template, data })
        }
        t::Action::ScheduleTimer { name, at, data } => w::Action::ScheduleTimer(w::TimerRequest { name, at, data }),
        t::Action::CancelTimer(s) => w::Action::CancelTimer(s),
    }
}

fn actions_out(r: t::Result<Vec<t::Action>>) -> Result<Vec<w::Action>, w::PluginError> {
    r.map(|a| a.into_iter().map(action_out).collect()).map_err(error_out)
}

impl<T: crate::Segmenter> segmenter::exports::patron::plugin::segmentation::Guest for Glue<T> {
    fn segment(profiles: Vec<w::Profile>) -> Result<Vec<Vec<String>>, w::PluginError> {
        T::segment(profiles.into_iter().map(profile).collect()).map_err(error_out)
    }
}

use self::stats_segmenter::exports::patron::plugin::stats_segmentation as s;

/// `T::segment_stats` over `stats` into `out` (which has no customers yet), checked to
/// answer once per customer.
fn segment_stats<T: crate::StatsSegmenter>(
    stats: &crate::StatsBatch,
    out: &mut crate::Memberships,
) -> Result<(), w::PluginError> {
    T::segment_stats(stats, out).map_err(error_out)?;
    if out.len() != stats.len() {
        let message = format!("segment_stats answered {} of {} customers", out.len(), stats.len());
        return Err(error_out(t::Error::new("bad-answer", message)));
    }
    Ok(())
}

/// What `segment` keeps from call to call: it is mostly called about one customer,
/// and allocating six columns and interning every segment name again each time
/// would cost more than the plugin's logic.
#[derive(Default)]
struct Reused {
    stats: crate::StatsBatch,
    out: crate::Memberships,
}

std::thread_local! {
    static REUSED: std::cell::RefCell<Reused> = std::cell::RefCell::default();
}

impl<T: crate::StatsSegmenter> segmenter::exports::patron::plugin::segmentation::Guest for StatsGlue<T> {
    fn segment(profiles: Vec<w::Profile>) -> Result<Vec<Vec<String>>, w::PluginError> {
        REUSED.with_borrow_mut(|Reused { stats, out }| {
            stats.clear();
            stats.extend(profiles.into_iter().map(|p| customer_stats(p.stats)));
            out.clear();
            segment_stats::<T>(stats, out)?;
            Ok(out.to_lists())
        })
    }
}

impl<T: crate::StatsSegmenter> s::Guest for StatsGlue<T> {
    fn segment_stats(batch: s::StatsBatch) -> Result<s::Memberships, w::PluginError> {
        let columns = crate::StatsColumns {
            order_count: batch.order_count,
            total_spent: batch.total_spent,
            average_order_value: batch.average_order_value,
            first_order_at: batch.first_order_at,
            last_order_at: batch.last_order_at,
            days_since_last_order: batch.days_since_last_order,
        };
        let stats = crate::StatsBatch::from_columns(columns).map_err(|e| error_out(t::Error::new("bad-input", e)))?;
        let mut out = crate::Memberships::with_capacity(stats.len());
        segment_stats::<T>(&stats, &mut out)?;
        let (names, ends, members) = out.into_parts();
        Ok(s::Memberships { names, ends, members })
    }
}

impl<T: crate::Loyalty> loyalty::exports::patron::plugin::loyalty_program::Guest for Glue<T> {
    fn on_order(o: w::Order, m: w::Member) -> Result<Vec<w::Action>, w::PluginError> {
        actions_out(T::on_order(order(o), member(m)))
    }

    fn on_refund(o: w::Order, m: w::Member) -> Result<Vec<w::Action>, w::PluginError> {
        actions_out(T::on_refund(order(o), member(m)))
    }

    fn tier_for(m: w::Member) -> Result<w::TierInfo, w::PluginError> {
        T::tier_for(member(m))
            .map(|t| w::TierInfo {
                tier: t.tier,
                next_tier: t.next_tier,
                spend_to_next: t.spend_to_next.map(money_out),
            })
            .map_err(error_out)
    }

    fn rewards() -> Result<Vec<w::Reward>, w::PluginError> {
        T::rewards()
            .map(|rs| {
                rs.into_iter()
                    .map(|r| w::Reward {
                        id: r.id,
                        name: r.name,
                        points_cost: r.points_cost,
                        coupon: coupon_out(r.coupon),
                    })
                    .collect()
            })
            .map_err(error_out)
    }
}

impl<T: crate::Recommender> recommender::exports::patron::plugin::recommendation::Guest for Glue<T> {
    fn train(
        model: Option<Vec<u8>>,
        orders: Vec<w::Order>,
        catalogue: Vec<w::Product>,
    ) -> Result<Vec<u8>, w::PluginError> {
        T::train(model, orders.into_iter().map(order).collect(), catalogue.into_iter().map(product).collect())
            .map_err(error_out)
    }

    fn recommend(
        model: Vec<u8>,
        request: recommender::exports::patron::plugin::recommendation::RecommendRequest,
    ) -> Result<Vec<w::ScoredItem>, w::PluginError> {
        let request = t::RecommendRequest {
            customer_id: request.customer_id,
            context_products: request.context_products,
            limit: request.limit,
        };
        T::recommend(model, request)
            .map(|items| {
                items.into_iter().map(|i| w::ScoredItem { product_id: i.product_id, score: i.score }).collect()
            })
            .map_err(error_out)
    }
}

impl<T: crate::Automation> automation::exports::patron::plugin::automation_hooks::Guest for Glue<T> {
    fn on_event(e: w::Event, p: w::Profile) -> Result<Vec<w::Action>, w::PluginError> {
        let event = t::Event { kind: e.kind, at: e.at, properties: e.properties };
        actions_out(T::on_event(event, profile(p)))
    }

    fn on_timer(timer: w::Timer, p: w::Profile) -> Result<Vec<w::Action>, w::PluginError> {
        let timer = t::Timer { name: timer.name, at: timer.at, data: timer.data };
        actions_out(T::on_timer(timer, profile(p)))
    }
}

use self::predictor::exports::patron::plugin::prediction as p;

fn prediction_batch(b: p::CustomerBatch) -> crate::PredictionBatch {
    crate::PredictionBatch {
        order_count: b.order_count,
        total_spent: b.total_spent,
        first_order_at: b.first_order_at,
        last_order_at: b.last_order_at,
    }
}

impl<T: crate::Predictor> p::Guest for Glue<T> {
    fn fit(state: Option<Vec<u8>>, batch: p::CustomerBatch, as_of: i64, last: bool) -> Result<Vec<u8>, w::PluginError> {
        T::fit(state, prediction_batch(batch), as_of, last).map_err(error_out)
    }

    fn predict(
        model: Vec<u8>,
        batch: p::CustomerBatch,
        as_of: i64,
        horizon_days: Vec<u32>,
    ) -> Result<p::Predictions, w::PluginError> {
        let customers = batch.order_count.len();
        let horizons = horizon_days.len();
        let out = T::predict(model, prediction_batch(batch), as_of, horizon_days).map_err(error_out)?;
        let complete = [out.p_alive.len(), out.expected_order_value.len(), out.clv.len(), out.segments.len()]
            .iter()
            .all(|&n| n == customers)
            && out.expected_purchases.len() == customers * horizons;
        if !complete {
            let message =
                format!("predict answered for a different number of customers than the {customers} asked about");
            return Err(error_out(t::Error::new("bad-answer", message)));
        }
        let (segment_names, segment_ends, segment_members) = out.segments.into_parts();
        Ok(p::Predictions {
            p_alive: out.p_alive,
            expected_purchases: out.expected_purchases,
            expected_order_value: out.expected_order_value,
            clv: out.clv,
            segment_names,
            segment_ends,
            segment_members,
        })
    }
}
