//! The demo shop's plugins: `patron serve --demo` installs and enables every first-party
//! plugin built into the binary (`crate::embedded`), then brings the shop to where it
//! would be had they run all along: the demo's orders go through the loyalty plugin
//! (points, tiers, tier coupons), the segmenters run over every customer, the
//! recommender is trained and the clv predictor fitted. Journeys are installed last, so
//! that these first passes queue no messages.
//!
//! Each step runs only for a plugin it has just installed, so restarting the demo
//! repeats nothing.

use std::fmt;

use anyhow::Context;
use patron_runtime::World;

use crate::embedded::{self, EmbeddedPlugin};
use crate::plugins::PluginHost;
use crate::plugins::recommendations::TrainReport;
use crate::store::order_hooks::OrderChange;
use crate::store::shops::Shop;
use crate::store::{StoreError, now_ms};

/// The rules plugin's configuration in the demo: the three-level membership of
/// `plugins/rules/README.md` (super, core, regular in the group `membership`).
pub const RULES_CONFIG: &str = r#"{
  "rules": [
    {"name": "super", "group": "membership", "when": {"all": [
      {"days-since-last-order": {"lte": 365}},
      {"orders-per-year": {"gte": 5}},
      {"spent-per-year": {"gte": 100000}}
    ]}},
    {"name": "core", "group": "membership", "when": {"all": [
      {"days-since-last-order": {"lte": 365}},
      {"any": [{"orders-per-year": {"gte": 3}}, {"spent-per-year": {"gte": 50000}}]}
    ]}},
    {"name": "regular", "group": "membership"}
  ]
}"#;

/// The order plugins are installed in: loyalty before its order replay, segmenters
/// before their pass, journeys last.
const ORDER: &[&str] = &["loyalty", "rules", "rfm", "recommender", "clv", "journeys"];

/// What setting up the demo's plugins did.
#[derive(Debug, Default)]
pub struct DemoPlugins {
    /// Plugins installed and enabled now (empty on a restart).
    pub installed: Vec<String>,
    /// Why none could be: this binary was built without them.
    pub missing: Option<String>,
    /// Orders the loyalty plugin heard of.
    pub orders_replayed: u64,
    /// Segment sizes after the segmenters' first pass.
    pub segments: Vec<(String, u64)>,
    pub trained: Option<TrainReport>,
}

impl fmt::Display for DemoPlugins {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(reason) = &self.missing {
            return write!(
                f,
                "no plugins in the demo: this patron was built without them ({})",
                reason.lines().next().unwrap_or(reason)
            );
        }
        if self.installed.is_empty() {
            return write!(f, "demo plugins installed already");
        }
        write!(f, "installed and enabled: {}", self.installed.join(", "))?;
        if self.orders_replayed > 0 {
            write!(f, "; {} orders through the loyalty plugin", self.orders_replayed)?;
        }
        if !self.segments.is_empty() {
            let sizes: Vec<String> = self.segments.iter().map(|(s, n)| format!("{s} {n}")).collect();
            write!(f, "; segments: {}", sizes.join(", "))?;
        }
        if let Some(report) = &self.trained {
            write!(f, "; recommender trained over {} orders", report.orders)?;
        }
        Ok(())
    }
}

/// Installs, enables and runs the first-party plugins in the demo shop (see the module).
pub async fn install(plugins: &PluginHost, shop: &Shop) -> anyhow::Result<DemoPlugins> {
    let mut report = DemoPlugins::default();
    if let Some(reason) = embedded::plugins_missing() {
        report.missing = Some(reason.to_owned());
        return Ok(report);
    }
    let db = plugins.db();
    for name in ORDER {
        let Some(plugin) = embedded::plugin(name) else { continue };
        if db.plugin_install(shop.id, name).await?.is_some() {
            continue;
        }
        if *name == "recommender" {
            // Installs and trains.
            report.trained = super::recommender::install(plugins, shop, plugin.wasm.to_vec()).await?;
            report.installed.push((*name).to_owned());
            continue;
        }
        install_one(plugins, shop, plugin).await?;
        report.installed.push((*name).to_owned());
        if *name == "loyalty" {
            report.orders_replayed = replay_orders(plugins, shop).await?;
            redeem_for_the_signed_in_shopper(plugins, shop).await?;
        }
        if *name == "journeys" {
            // Replenishment reminders need the products' repurchase intervals now, not
            // after the first nightly run.
            db.learn_repurchase_intervals(shop.id).await?;
        }
        if *name == "clv" {
            for active in plugins.predictors(shop.id).await? {
                // A demo too small to fit says so and goes on without predictions.
                if let Err(error) = plugins.fit_and_predict(shop, &active, &|_, _| {}).await {
                    tracing::warn!(%error, "the demo's predictions were not fitted");
                }
            }
        }
    }
    let segmenters_new = report.installed.iter().any(|n| n == "rules" || n == "rfm");
    if segmenters_new {
        for active in plugins.active(shop.id, World::Segmenter).await? {
            if report.installed.contains(&active.install.name) {
                let pass = plugins.segment_shop(shop, &active, true, &|_, _| {}).await?;
                if let Some(error) = pass.last_error {
                    tracing::warn!(plugin = %pass.plugin, %error, "a demo segmenter pass had failed batches");
                }
            }
        }
        report.segments = db
            .segment_sizes(shop.id, now_ms())
            .await?
            .into_iter()
            .map(|s| (s.segment, u64::try_from(s.members).unwrap_or(0)))
            .collect();
    }
    Ok(report)
}

/// The demo storefront's signed-in shopper (the best customer) has traded points for
/// the loyalty plugin's default "five-off" reward, so their panel shows a coupon to use
/// (a tier coupon comes only with a promotion, which one large order skips).
async fn redeem_for_the_signed_in_shopper(plugins: &PluginHost, shop: &Shop) -> anyhow::Result<()> {
    let Some(best) = plugins.db().best_customer(shop.id).await? else { return Ok(()) };
    if let Err(error) = plugins.redeem(shop, best.id, "five-off", Some("demo-shopper-reward")).await {
        tracing::warn!(%error, "the demo shopper could not redeem a reward");
    }
    Ok(())
}

/// Installs and enables `plugin` with every import its manifest asks for.
async fn install_one(plugins: &PluginHost, shop: &Shop, plugin: &EmbeddedPlugin) -> anyhow::Result<()> {
    let manifest = plugin.manifest().with_context(|| format!("the manifest of {}", plugin.package))?;
    let grants = manifest.imports.iter().map(|c| c.name().to_owned()).collect();
    let config = match plugin.package {
        "rules" => Some(serde_json::from_str(RULES_CONFIG).context("the demo's rules")?),
        _ => None,
    };
    plugins.install(shop.id, plugin.wasm.to_vec(), manifest, grants, config, true).await?;
    Ok(())
}

/// Puts the shop's purchases, oldest first, to its loyalty plugins as if each had just
/// been posted (and each partial refund after it); returns the orders heard of.
async fn replay_orders(plugins: &PluginHost, shop: &Shop) -> anyhow::Result<u64> {
    let db = plugins.db();
    let ids: Vec<String> = sqlx::query_scalar(
        "SELECT id FROM orders WHERE shop_id = $1 AND customer_id IS NOT NULL \
         AND status IN ('paid', 'fulfilled') ORDER BY placed_at, id",
    )
    .bind(shop.id)
    .fetch_all(db.pool())
    .await
    .map_err(StoreError::from)?;
    let mut replayed = 0;
    for id in ids {
        let Some(order) = db.order(shop.id, &id).await? else { continue };
        plugins.order_placed(shop, &order).await?;
        if order.refunded > 0 {
            let refunds: Vec<String> = sqlx::query_scalar(
                "SELECT id FROM refunds WHERE shop_id = $1 AND order_id = $2 ORDER BY created_at, id",
            )
            .bind(shop.id)
            .bind(&order.id)
            .fetch_all(db.pool())
            .await
            .map_err(StoreError::from)?;
            for refund_id in refunds {
                plugins.order_reversed(shop, &order, &OrderChange::Refunded { refund_id }).await?;
            }
        }
        replayed += 1;
    }
    Ok(replayed)
}
