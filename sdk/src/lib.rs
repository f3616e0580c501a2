//! # patron-sdk
//!
//! Write Patron plugins in plain Rust. Implement the trait of your plugin's
//! world with plain types, and export it with one macro:
//!
//! ```
//! use patron_sdk::{Profile, Result, Segmenter};
//!
//! struct Vip;
//!
//! impl Segmenter for Vip {
//!     fn segments_of(profile: &Profile) -> Result<Vec<String>> {
//!         Ok(if profile.stats.total_spent >= 100_000 { vec!["vip".into()] } else { vec![] })
//!     }
//! }
//!
//! patron_sdk::export!(segmenter: Vip);
//! ```
//!
//! Build with `cargo build --release --target wasm32-wasip2`; the `.wasm` is a
//! component implementing the `segmenter` world of `patron:plugin@0.1.2`.
//!
//! A segmenter that needs only order statistics implements [`StatsSegmenter`]
//! instead and exports with `patron_sdk::export!(stats_segmenter: Vip);`: batch
//! recompute then hands it statistics only, which is several times faster.
//! In a native build (`cargo test`) the macro only checks the trait is
//! implemented, and [`testing::TestHost`] serves the host calls
//! ([`log`], [`now`], [`config`], [`kv`]).
//!
//! Config and kv values are JSON. [`config`] and [`kv::get_json`] read them with
//! serde; [`read_config`] and [`kv::read`]/[`kv::write`] with the SDK's own [`json`]
//! module, which keeps a component 40–80 KB smaller (the first-party plugins use it).
//!
//! Every trait method has a default that returns a `not-implemented`
//! [`Error`], so implement only what your plugin does.

mod host;
pub mod json;
mod memberships;
mod money;
mod prediction;
mod stats_batch;
#[cfg(not(target_arch = "wasm32"))]
pub mod testing;
pub mod time;
mod types;

#[cfg(target_arch = "wasm32")]
#[doc(hidden)]
#[path = "wit.rs"]
pub mod __wit;

pub use host::{KvError, Level, config, config_json, kv, log, now, read_config};
pub use memberships::{Memberships, Segment};
pub use money::Money;
pub use prediction::{PredictionBatch, Predictions};
pub use stats_batch::{StatsBatch, StatsColumns};
pub use types::{
    Action, CouponSpec, CustomerStats, Discount, Error, Event, LineItem, Member, Order, OrderStatus, Product, Profile,
    RecommendRequest, Result, Reward, ScoredItem, TierInfo, Timer, Timestamp,
};

/// A `segmenter` plugin: puts customers into segments.
pub trait Segmenter {
    /// The segments one customer belongs to.
    fn segments_of(profile: &Profile) -> Result<Vec<String>> {
        let _ = profile;
        Err(Error::not_implemented("segments_of"))
    }

    /// The segments of each profile of a batch, in order. By default,
    /// [`segments_of`](Self::segments_of) for each.
    fn segment(profiles: Vec<Profile>) -> Result<Vec<Vec<String>>> {
        profiles.iter().map(Self::segments_of).collect()
    }
}

/// A `segmenter` plugin whose segments depend only on order statistics: the host's
/// batch recompute hands it just those (the fast path), and every other call
/// (one customer changed) goes through [`segment_stats`](Self::segment_stats) too.
/// Export with `patron_sdk::export!(stats_segmenter: MyPlugin);`.
///
/// Pushing [`Segment`]s rather than names spares a name lookup per customer, which
/// is most of the cost of a batch of a simple segmenter:
///
/// ```
/// use patron_sdk::{Memberships, Result, StatsBatch, StatsSegmenter};
///
/// struct Vip;
///
/// impl StatsSegmenter for Vip {
///     fn segment_stats(stats: &StatsBatch, out: &mut Memberships) -> Result<()> {
///         let vip = out.segment("vip");
///         for s in stats.iter() {
///             out.push_segments((s.total_spent >= 100_000).then_some(vip));
///         }
///         Ok(())
///     }
/// }
///
/// patron_sdk::export!(stats_segmenter: Vip);
/// ```
pub trait StatsSegmenter {
    /// Push the segments of each customer of the batch into `out`, once per
    /// customer of `stats`, in order.
    fn segment_stats(stats: &StatsBatch, out: &mut Memberships) -> Result<()> {
        let _ = (stats, out);
        Err(Error::not_implemented("segment_stats"))
    }
}

/// A `loyalty` plugin: points, tiers, rewards.
pub trait Loyalty {
    /// Actions for a paid order (typically `AwardPoints`, `SetTier`).
    fn on_order(order: Order, member: Member) -> Result<Vec<Action>> {
        let _ = (order, member);
        Err(Error::not_implemented("on_order"))
    }

    /// Actions for a refunded order beyond its points: the host itself takes back what
    /// the order earned, in proportion to the amount refunded, and refuses a negative
    /// `AwardPoints` (the 0.1 contract's text on `points-award` predates this rule).
    /// Typically none, or a tag or a message.
    fn on_refund(order: Order, member: Member) -> Result<Vec<Action>> {
        let _ = (order, member);
        Err(Error::not_implemented("on_refund"))
    }

    /// The tier a member should hold.
    fn tier_for(member: Member) -> Result<TierInfo> {
        let _ = member;
        Err(Error::not_implemented("tier_for"))
    }

    /// Rewards members can redeem points for.
    fn rewards() -> Result<Vec<Reward>> {
        Err(Error::not_implemented("rewards"))
    }
}

/// A `recommender` plugin: trains a model in batch, recommends from it.
pub trait Recommender {
    /// Fold a chunk of orders into the model (`None` for the first chunk).
    fn train(model: Option<Vec<u8>>, orders: Vec<Order>, catalogue: Vec<Product>) -> Result<Vec<u8>> {
        let _ = (model, orders, catalogue);
        Err(Error::not_implemented("train"))
    }

    /// Recommend products from the model, best first.
    fn recommend(model: Vec<u8>, request: RecommendRequest) -> Result<Vec<ScoredItem>> {
        let _ = (model, request);
        Err(Error::not_implemented("recommend"))
    }
}

/// An `automation` plugin: reacts to events and timers.
pub trait Automation {
    /// Actions for an event.
    fn on_event(event: Event, profile: Profile) -> Result<Vec<Action>> {
        let _ = (event, profile);
        Err(Error::not_implemented("on_event"))
    }

    /// Actions for a due timer.
    fn on_timer(timer: Timer, profile: Profile) -> Result<Vec<Action>> {
        let _ = (timer, profile);
        Err(Error::not_implemented("on_timer"))
    }
}

/// A `predictor` plugin (since contract 0.1.2): fits a model over the shop's
/// customers' order statistics in batch, predicts per customer from it.
pub trait Predictor {
    /// Fold a batch into the fit: `state` is what the previous call returned (`None`
    /// for the first batch). On the `last` batch return the model, which the host
    /// stores and hands to [`predict`](Self::predict); before it, any state.
    /// `as_of` is the time the fit is as of (the same for every batch).
    fn fit(state: Option<Vec<u8>>, batch: PredictionBatch, as_of: Timestamp, last: bool) -> Result<Vec<u8>> {
        let _ = (state, batch, as_of, last);
        Err(Error::not_implemented("fit"))
    }

    /// Predictions for a batch of customers as of `as_of`, with expected purchases
    /// over each of `horizon_days`.
    fn predict(
        model: Vec<u8>,
        batch: PredictionBatch,
        as_of: Timestamp,
        horizon_days: Vec<u32>,
    ) -> Result<Predictions> {
        let _ = (model, batch, as_of, horizon_days);
        Err(Error::not_implemented("predict"))
    }
}

/// Export a type as the plugin's implementation of a world:
/// `patron_sdk::export!(segmenter: MyPlugin);` (or `stats_segmenter:`,
/// `loyalty:`, `recommender:`, `automation:`, `predictor:`). Use it once per plugin crate.
#[macro_export]
macro_rules! export {
    (segmenter: $ty:ty) => {
        $crate::__export!($ty, Segmenter, Glue, segmenter::export_segmenter);
    };
    (stats_segmenter: $ty:ty) => {
        $crate::__export!(
            $ty,
            StatsSegmenter,
            StatsGlue,
            segmenter::export_segmenter,
            stats_segmenter::export_stats_segmenter
        );
    };
    (loyalty: $ty:ty) => {
        $crate::__export!($ty, Loyalty, Glue, loyalty::export_loyalty);
    };
    (recommender: $ty:ty) => {
        $crate::__export!($ty, Recommender, Glue, recommender::export_recommender);
    };
    (automation: $ty:ty) => {
        $crate::__export!($ty, Automation, Glue, automation::export_automation);
    };
    (predictor: $ty:ty) => {
        $crate::__export!($ty, Predictor, Glue, predictor::export_predictor);
    };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __export {
    ($ty:ty, $trait:ident, $glue:ident, $($module:ident::$macro:ident),+) => {
        #[cfg(target_arch = "wasm32")]
        const _: () = {
            type PatronPluginGlue = $crate::__wit::$glue<$ty>;
            $($crate::__wit::$module::$macro!(PatronPluginGlue with_types_in $crate::__wit::$module);)+
        };
        #[cfg(not(target_arch = "wasm32"))]
        const _: fn() = || {
            fn implements<T: $crate::$trait>() {}
            implements::<$ty>();
        };
    };
}
