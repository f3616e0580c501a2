//! What a plugin would do over the shop's real customers and orders, applying nothing —
//! shown to the merchant before they enable it.

use std::collections::BTreeMap;

use patron_runtime::World;
use patron_runtime::types::Action;
use serde::Serialize;

use super::segmentation::SegmentationReport;
use super::{PluginAdminError, PluginHost, convert};
use crate::store::StoreError;
use crate::store::shops::Shop;

/// Orders (most recent first) a loyalty dry run replays.
const LOYALTY_ORDERS: i64 = 500;
/// Customers a loyalty dry run asks for a tier.
const LOYALTY_MEMBERS: i64 = 5_000;

/// What a loyalty plugin would do.
#[derive(Debug, Clone, Default, Serialize, PartialEq, utoipa::ToSchema)]
pub struct LoyaltyReport {
    pub plugin: String,
    pub orders_replayed: u64,
    pub points_awarded: i64,
    pub coupons_issued: u64,
    pub members_evaluated: u64,
    /// Members per tier the plugin would assign.
    pub tiers: BTreeMap<String, u64>,
    /// Members whose tier would change from what they hold now.
    pub tier_changes: u64,
    pub samples: Vec<String>,
    pub failures: u64,
    pub last_error: Option<String>,
}

/// A dry run's findings, by the plugin's world.
#[derive(Debug, Clone, Serialize, PartialEq, utoipa::ToSchema)]
#[serde(tag = "world", rename_all = "snake_case")]
pub enum DryRunReport {
    Segmenter(SegmentationReport),
    Loyalty(LoyaltyReport),
}

/// Runs the install `name` (enabled or not) over the shop without applying anything.
///
/// The run touches none of the install's live state: the plugin gets an empty
/// in-memory kv (a calibrating segmenter such as RFM learns the shop in it, in the
/// calibration pass every kv segmenter gets, and the report shows its real answers),
/// a breaker of its own, and its failures are reported here, not recorded against the
/// install.
pub async fn run(host: &PluginHost, shop: &Shop, name: &str) -> Result<DryRunReport, PluginAdminError> {
    let install = host
        .db()
        .plugin_install(shop.id, name)
        .await?
        .ok_or_else(|| PluginAdminError::NotInstalled(name.to_owned()))?;
    let active = host.load_install(shop.id, &install).await?.scratch();
    match active.world {
        World::Segmenter => Ok(DryRunReport::Segmenter(host.segment_shop(shop, &active, false, &|_, _| {}).await?)),
        World::Loyalty => Ok(DryRunReport::Loyalty(loyalty(host, shop, &active).await?)),
        other => {
            Err(StoreError::Conflict(format!("dry runs cover segmenter and loyalty plugins, not {}", other.name()))
                .into())
        }
    }
}

async fn loyalty(host: &PluginHost, shop: &Shop, active: &super::Active) -> Result<LoyaltyReport, StoreError> {
    let db = host.db();
    let mut report = LoyaltyReport { plugin: active.plugin.label().to_owned(), ..LoyaltyReport::default() };
    let fail = |report: &mut LoyaltyReport, error: String| {
        report.failures += 1;
        report.last_error = Some(error);
    };
    for order in db.recent_orders(shop.id, LOYALTY_ORDERS).await? {
        let Some(customer_id) = order.customer_id else { continue };
        let member = host.member(shop, customer_id).await?;
        let wit_order = convert::order(&order, customer_id);
        match host.call(active, move |plugin, ctx| plugin.on_order(ctx, &wit_order, &member)).await {
            Ok(actions) => {
                report.orders_replayed += 1;
                for action in actions {
                    match action {
                        Action::AwardPoints(award) => report.points_awarded += award.amount,
                        Action::IssueCoupon(_) => report.coupons_issued += 1,
                        _ => {}
                    }
                }
            }
            Err(error) => fail(&mut report, error.to_string()),
        }
    }
    let mut after = None;
    while report.members_evaluated < LOYALTY_MEMBERS as u64 {
        let page = db.customers_page(shop.id, after, 500).await?;
        for customer in page.customers.iter().filter(|c| c.stats.order_count > 0) {
            let member = host.member(shop, customer.id).await?;
            let current = member.tier.clone();
            match host.call(active, move |plugin, ctx| plugin.tier_for(ctx, &member)).await {
                Ok(info) => {
                    report.members_evaluated += 1;
                    if current.as_deref() != Some(info.tier.as_str()) {
                        report.tier_changes += 1;
                        if report.samples.len() < 10 {
                            let who = customer.external_id.clone().or(customer.email.clone()).unwrap_or_default();
                            report.samples.push(format!(
                                "{who}: {} → {}",
                                current.as_deref().unwrap_or("none"),
                                info.tier
                            ));
                        }
                    }
                    *report.tiers.entry(info.tier).or_default() += 1;
                }
                Err(error) => fail(&mut report, error.to_string()),
            }
        }
        match page.next_after {
            Some(next) => after = Some(next),
            None => break,
        }
    }
    Ok(report)
}
