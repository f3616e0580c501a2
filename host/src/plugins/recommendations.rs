//! Recommendations as the host serves them: training a recommender install over the
//! shop's orders (a chunked batch run whose model is stored per install), and answering
//! a placement's request from the stored model — the plugin ranks, the host builds its
//! context and filters what it returns (unknown, unavailable, in the cart, bought
//! recently unless replenishable, duplicates), as `plugins/recommender/README.md` asks.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use patron_runtime::World;
use patron_runtime::types::{Product as WitProduct, RecommendRequest};
use serde::Serialize;

use super::recommendation_answers::AnswerKey;
use super::{Active, PluginHost, convert, lock};
use crate::store::orders::Order;
use crate::store::recommendations::Touch;
use crate::store::shops::Shop;
use crate::store::{StoreError, StoreResult, now_ms};

/// Orders handed to `train` per call (the plugin re-encodes its model every call, so
/// chunks of a few thousand orders).
pub const TRAIN_CHUNK: i64 = 2_000;
/// Purchases within this many days are not recommended again unless replenishable.
pub const RECENT_PURCHASE_DAYS: i64 = 90;
/// History entries (purchases and views) handed to `for-you`, most recent first.
pub(crate) const HISTORY: usize = 50;
/// How long a cached model is trusted before its `built_at` is checked against the store.
const MODEL_CHECK: Duration = Duration::from_secs(5);
/// The most a request may ask for.
pub const MAX_LIMIT: usize = 50;
pub(crate) const DAY_MS: i64 = 24 * 60 * 60 * 1000;

/// Reports progress as (orders done, orders in all).
pub type Progress<'a> = &'a (dyn Fn(u64, u64) + Sync);

/// Where a list is shown; each has its own context (see the plugin's README).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Placement {
    /// A product page: products bought with the one on the page.
    Product,
    /// The cart: products bought with what is in it.
    Cart,
    /// The home page: best sellers.
    Home,
    /// Personal: neighbours of the shopper's own purchases and views.
    ForYou,
}

impl Placement {
    pub const NAMES: [&'static str; 4] = ["product", "cart", "home", "for-you"];

    pub fn parse(name: &str) -> Option<Self> {
        match name {
            "product" => Some(Self::Product),
            "cart" => Some(Self::Cart),
            "home" => Some(Self::Home),
            "for-you" => Some(Self::ForYou),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Self::Product => "product",
            Self::Cart => "cart",
            Self::Home => "home",
            Self::ForYou => "for-you",
        }
    }
}

/// What a storefront asks for.
#[derive(Debug, Clone, PartialEq)]
pub struct RecsRequest {
    pub placement: Placement,
    /// The products in context: the page's product, or the cart's.
    pub context: Vec<String>,
    /// Products never to return (the cart).
    pub exclude: Vec<String>,
    /// The shopper's internal id, only when their customer token verified.
    pub customer_id: Option<i64>,
    pub limit: usize,
}

/// One recommended product, ready to render.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Recommendation {
    pub product_id: String,
    pub title: String,
    /// Minor units.
    pub price: i64,
    pub currency: String,
    pub image_url: Option<String>,
    pub url: Option<String>,
    /// Which strategy produced it (from the score's tier).
    pub strategy: &'static str,
    /// A fresh random id that impression and click events carry, for attribution.
    pub recommendation_id: String,
}

/// What a training run did.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TrainReport {
    pub plugin: String,
    pub orders: u64,
    pub model_bytes: u64,
    pub built_at: i64,
}

/// Models read from the store, by (shop, install).
#[derive(Default)]
pub struct ModelCache {
    entries: Mutex<HashMap<(i64, String), CachedModel>>,
}

/// A model in memory, with the `built_at` it was stored with.
#[derive(Clone)]
struct CachedModel {
    /// When the store was last asked whether a newer model exists.
    checked: Instant,
    built_at: i64,
    model: Arc<Vec<u8>>,
}

/// Whether a product may be recommended again soon after it was bought. Products have
/// no replenishable flag yet: the demo catalogue's rule (coffee, tea, filters) decides,
/// by category.
pub fn is_replenishable(category: Option<&str>) -> bool {
    category.is_some_and(|c| crate::demo::catalog::replenish_days(c).is_some())
}

/// A shopper's history as `for-you` takes it: distinct products, most recent first (a
/// product viewed and bought appears once, at its latest time), at most [`HISTORY`].
pub(crate) fn history_of(mut touches: Vec<Touch>) -> Vec<String> {
    touches.sort_by(|a, b| b.at.cmp(&a.at).then_with(|| a.product_id.cmp(&b.product_id)));
    let mut seen = HashSet::new();
    touches.into_iter().filter(|t| seen.insert(t.product_id.clone())).map(|t| t.product_id).take(HISTORY).collect()
}

/// The strategy a score's tier names (`floor(score)`, see the plugin's README).
fn strategy(score: f64, placement: Placement) -> &'static str {
    match score.floor() as i64 {
        4 => "recently-viewed",
        3 if placement == Placement::ForYou => "for-you",
        3 => "frequently-bought-together",
        2 => "popular-in-category",
        _ => "popular",
    }
}

/// A plugin call that failed, as the store error training and evaluation stop with.
pub(crate) fn failure(error: impl std::fmt::Display) -> StoreError {
    StoreError::Plugin(error.to_string())
}

impl PluginHost {
    /// The shop's enabled recommender, if any (the first one when several are enabled).
    pub async fn recommender(&self, shop_id: i64) -> StoreResult<Option<Active>> {
        Ok(self.active(shop_id, World::Recommender).await?.into_iter().next())
    }

    /// Rebuilds an install's model over every purchase of the shop, in chunks of
    /// [`TRAIN_CHUNK`] orders with the catalogue, and stores it. A plugin failure stops
    /// the run and keeps the previous model.
    pub async fn train_shop(&self, shop: &Shop, active: &Active, progress: Progress<'_>) -> StoreResult<TrainReport> {
        let (model, orders) = self.build_model(shop, active, &|_| true, progress).await?;
        let built_at = self
            .db()
            .save_recommendation_model(shop.id, &active.install.name, &model, i64::try_from(orders).unwrap_or(i64::MAX))
            .await?;
        lock(&self.inner.models.entries).remove(&(shop.id, active.install.name.clone()));
        self.inner.answers.forget(shop.id, &active.install.name);
        Ok(TrainReport { plugin: active.plugin.label().to_owned(), orders, model_bytes: model.len() as u64, built_at })
    }

    /// Trains a model over the shop's purchases that `include` accepts, without storing
    /// it; returns the model and the number of orders it saw.
    pub(crate) async fn build_model(
        &self,
        shop: &Shop,
        active: &Active,
        include: &(dyn Fn(&Order) -> bool + Sync),
        progress: Progress<'_>,
    ) -> StoreResult<(Vec<u8>, u64)> {
        let db = self.db();
        let total = u64::try_from(db.count_paid_orders(shop.id).await?).unwrap_or(0);
        let catalogue: Arc<Vec<WitProduct>> =
            Arc::new(db.products(shop.id).await?.iter().map(|p| convert::product(p, &shop.currency)).collect());
        let mut model: Option<Vec<u8>> = None;
        let mut after: Option<String> = None;
        let (mut read, mut trained) = (0u64, 0u64);
        loop {
            let page = db.paid_orders_page(shop.id, after.as_deref(), TRAIN_CHUNK).await?;
            let Some(last) = page.last() else { break };
            after = Some(last.id.clone());
            read += page.len() as u64;
            let orders: Vec<_> = page
                .iter()
                .filter(|o| include(o))
                .map(|o| convert::order(o, o.customer_id.unwrap_or_default()))
                .collect();
            trained += orders.len() as u64;
            let (previous, catalogue) = (model.take(), catalogue.clone());
            let next = self
                .call(active, move |plugin, ctx| plugin.train(ctx, previous.as_deref(), &orders, &catalogue))
                .await
                .map_err(failure)?;
            model = Some(next);
            progress(read, total);
        }
        let model = match model {
            Some(model) => model,
            // No sales yet: one call with the catalogue alone gives the plugin's empty model.
            None => {
                let catalogue = catalogue.clone();
                self.call(active, move |plugin, ctx| plugin.train(ctx, None, &[], &catalogue)).await.map_err(failure)?
            }
        };
        Ok((model, trained))
    }

    /// An install's stored model and its `built_at`, from memory unless the store has a
    /// newer one; an empty model built at 0 when it was never trained.
    async fn model(&self, shop_id: i64, plugin: &str) -> StoreResult<(i64, Arc<Vec<u8>>)> {
        let key = (shop_id, plugin.to_owned());
        let cached = lock(&self.inner.models.entries).get(&key).cloned();
        if let Some(cached) = &cached
            && cached.checked.elapsed() < MODEL_CHECK
        {
            return Ok((cached.built_at, cached.model.clone()));
        }
        let db = self.db();
        let built_at = db.recommendation_model_built_at(shop_id, plugin).await?;
        let entry = match (cached, built_at) {
            (_, None) => CachedModel { checked: Instant::now(), built_at: 0, model: Arc::new(Vec::new()) },
            (Some(cached), Some(built_at)) if cached.built_at == built_at => {
                CachedModel { checked: Instant::now(), ..cached }
            }
            (_, Some(_)) => match db.recommendation_model(shop_id, plugin).await? {
                Some(stored) => {
                    CachedModel { checked: Instant::now(), built_at: stored.built_at, model: Arc::new(stored.model) }
                }
                None => CachedModel { checked: Instant::now(), built_at: 0, model: Arc::new(Vec::new()) },
            },
        };
        let answer = (entry.built_at, entry.model.clone());
        lock(&self.inner.models.entries).insert(key, entry);
        Ok(answer)
    }

    /// The shopper's distinct recent purchases and product views, most recent first
    /// (a product viewed and bought appears once, at its latest time).
    async fn history(&self, shop_id: i64, customer_id: i64) -> StoreResult<Vec<String>> {
        let db = self.db();
        let mut touches = db.recent_purchases(shop_id, customer_id, 0, HISTORY as i64).await?;
        touches.extend(db.recent_product_views(shop_id, customer_id, i64::MAX, (HISTORY * 2) as i64).await?);
        Ok(history_of(touches))
    }

    /// A placement's list for a shopper: empty when the shop has no enabled recommender
    /// or its model has no sales, or when the plugin fails (the failure is recorded
    /// against it).
    pub async fn recommend(&self, shop: &Shop, request: &RecsRequest) -> StoreResult<Vec<Recommendation>> {
        let limit = request.limit.min(MAX_LIMIT);
        if limit == 0 {
            return Ok(Vec::new());
        }
        let Some(active) = self.recommender(shop.id).await? else { return Ok(Vec::new()) };
        let db = self.db();
        // Anonymous shoppers have no history of their own: their "for you" is the home list.
        let placement = match (request.placement, request.customer_id) {
            (Placement::ForYou, None) => Placement::Home,
            (placement, _) => placement,
        };
        let mut context = vec![format!("patron:placement={}", placement.name())];
        match (placement, request.customer_id) {
            (Placement::ForYou, Some(customer_id)) => context.extend(self.history(shop.id, customer_id).await?),
            (Placement::Home, _) => {}
            _ => context.extend(request.context.iter().filter(|p| !p.starts_with("patron:")).take(100).cloned()),
        }
        let (model_built_at, model) = self.model(shop.id, &active.install.name).await?;
        let asked = limit * 2;
        let plugin_request = RecommendRequest {
            customer_id: request.customer_id.map(|id| id.to_string()),
            context_products: context,
            limit: u32::try_from(asked).unwrap_or(u32::MAX),
        };
        let key = AnswerKey {
            shop_id: shop.id,
            install: active.install.name.clone(),
            model_built_at,
            customer_id: request.customer_id,
            context: plugin_request.context_products.clone(),
            limit: plugin_request.limit,
        };
        let answer = self.inner.answers.get_or_compute(key, || {
            self.call(&active, move |plugin, ctx| plugin.recommend(ctx, &model, &plugin_request))
        });
        let items = match answer.await {
            Ok(items) => items,
            Err(error) => {
                tracing::warn!(shop = shop.id, %error, "recommendation failed");
                return Ok(Vec::new());
            }
        };
        let ids: Vec<String> = items.iter().map(|i| i.product_id.clone()).collect();
        let products = db.products_by_ids(shop.id, &ids).await?;
        let bought: HashSet<String> = match request.customer_id {
            Some(customer_id) => db
                .recent_purchases(shop.id, customer_id, now_ms() - RECENT_PURCHASE_DAYS * DAY_MS, 1_000)
                .await?
                .into_iter()
                .map(|t| t.product_id)
                .collect(),
            None => HashSet::new(),
        };
        let exclude: HashSet<&str> = request.exclude.iter().map(String::as_str).collect();
        let mut unknown = 0usize;
        let mut seen = HashSet::new();
        let mut list = Vec::new();
        for item in items.iter() {
            let Some(product) = products.get(&item.product_id) else {
                unknown += 1;
                continue;
            };
            if !product.available
                || exclude.contains(product.id.as_str())
                || (bought.contains(&product.id) && !is_replenishable(product.category.as_deref()))
                || !seen.insert(product.id.clone())
            {
                continue;
            }
            if list.len() < limit {
                list.push(Recommendation {
                    product_id: product.id.clone(),
                    title: product.title.clone(),
                    price: product.price,
                    currency: product.currency.clone().unwrap_or_else(|| shop.currency.clone()),
                    image_url: product.image_url.clone(),
                    url: product.url.clone(),
                    strategy: strategy(item.score, placement),
                    recommendation_id: format!("{:016x}", crate::store::new_id()),
                });
            }
        }
        if unknown > 0 || items.len() > asked {
            let message = format!(
                "recommend returned {} items for a limit of {asked}, {unknown} of them unknown product ids: dropped",
                items.len()
            );
            tracing::warn!(shop = shop.id, plugin = %active.install.name, "{message}");
            db.record_plugin_failures(shop.id, &active.install.name, 0, Some(&message), false).await?;
        }
        Ok(list)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placements_parse_by_their_names_only() {
        for name in Placement::NAMES {
            assert_eq!(Placement::parse(name).map(Placement::name), Some(name));
        }
        assert_eq!(Placement::parse("sidebar"), None);
        assert_eq!(Placement::parse("Product"), None);
    }

    #[test]
    fn a_score_tier_names_its_strategy() {
        assert_eq!(strategy(4.5, Placement::Product), "recently-viewed");
        assert_eq!(strategy(3.2, Placement::Product), "frequently-bought-together");
        assert_eq!(strategy(3.2, Placement::ForYou), "for-you");
        assert_eq!(strategy(2.0, Placement::Home), "popular-in-category");
        assert_eq!(strategy(1.9, Placement::Home), "popular");
        assert_eq!(strategy(f64::NAN, Placement::Home), "popular");
    }

    #[test]
    fn the_report_groups_by_every_name_served() {
        use crate::store::recommendation_report::{PLACEMENTS, STRATEGIES};
        assert_eq!(PLACEMENTS, Placement::NAMES);
        for placement in Placement::NAMES.iter().filter_map(|p| Placement::parse(p)) {
            for tier in 0..5 {
                assert!(STRATEGIES.contains(&strategy(f64::from(tier) + 0.5, placement)));
            }
        }
    }

    #[test]
    fn consumables_are_replenishable_equipment_is_not() {
        assert!(is_replenishable(Some("Coffee")));
        assert!(is_replenishable(Some("Filters & Care")));
        assert!(!is_replenishable(Some("Kettles & Scales")));
        assert!(!is_replenishable(None));
    }
}
