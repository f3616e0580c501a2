//! The RFM plugin through the host, over a seeded shop of a few thousand customers (more
//! than one batch): a recompute is a fixed point, a dry run calibrates in scratch state
//! and shows the real result, and customers outside the window still get a segment —
//! on both backends.

use std::collections::BTreeMap;

use patron::demo::{SeedOptions, seed};
use patron::plugins::PluginHost;
use patron::plugins::dry_run::{self, DryRunReport};
use patron::plugins::segmentation::SegmentationReport;
use patron::store::shops::Shop;
use patron::store::{Db, now_ms};
use patron::{both_backends, testing};
use serde_json::json;

const DAY_MS: i64 = 24 * 60 * 60 * 1000;
/// Customers seeded: three batches of the host's 1,000.
const CUSTOMERS: u64 = 2_500;

/// Installs the workspace's RFM plugin with `config`, granting what it asks for.
async fn install(plugins: &PluginHost, shop: &Shop, config: serde_json::Value, enable: bool) {
    let manifest_path = format!("{}/../plugins/rfm/patron.toml", env!("CARGO_MANIFEST_DIR"));
    let manifest =
        patron_runtime::Manifest::from_toml(&std::fs::read_to_string(manifest_path).expect("manifest")).expect("valid");
    let grants = manifest.imports.iter().map(|c| c.name().to_owned()).collect();
    let wasm = patron_runtime::testing::plugin_wasm("rfm").expect("plugin builds");
    plugins.install(shop.id, wasm, manifest, grants, Some(config), enable).await.expect("install");
}

/// A shop seeded with demo customers whose history ends `ended_days_ago` days ago.
async fn seeded_shop(db: &Db, ended_days_ago: i64) -> Shop {
    let (shop, _) = testing::shop(db, "rfm").await;
    let options = SeedOptions {
        customers: CUSTOMERS,
        seed: 7,
        end: Some(now_ms() - ended_days_ago * DAY_MS),
        progress: false,
        ..SeedOptions::default()
    };
    seed(db, &shop, &options).await.expect("seed");
    shop
}

async fn recompute(plugins: &PluginHost, shop: &Shop) -> SegmentationReport {
    let active = plugins.active(shop.id, patron_runtime::World::Segmenter).await.expect("active");
    assert_eq!(active.len(), 1, "the rfm install is enabled");
    let report = plugins.segment_shop(shop, &active[0], true, &|_, _| {}).await.expect("recompute");
    assert_eq!(report.failed_batches, 0, "{report:?}");
    report
}

/// Customers with at least one paid order.
async fn buyers(db: &Db, shop: &Shop) -> u64 {
    let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM customers WHERE shop_id = $1 AND order_count > 0")
        .bind(shop.id)
        .fetch_one(db.pool())
        .await
        .expect("count");
    u64::try_from(n).expect("count")
}

fn total(sizes: &BTreeMap<String, u64>) -> u64 {
    sizes.values().sum()
}

both_backends!(
    async fn a_recompute_over_unchanged_data_changes_nothing(db) {
        let shop = seeded_shop(&db, 0).await;
        let plugins = PluginHost::new(db.clone(), None);
        install(&plugins, &shop, json!({}), true).await;

        let first = recompute(&plugins, &shop).await;
        assert_eq!(first.customers, CUSTOMERS);
        assert_eq!(total(&first.sizes), buyers(&db, &shop).await, "every buyer gets one segment");
        assert!(first.sizes.len() >= 5, "the shop spreads over the grid: {:?}", first.sizes);
        assert_eq!(total(&first.joined), total(&first.sizes), "a first recompute only joins");

        // The first recompute after install already answers against the whole shop.
        let second = recompute(&plugins, &shop).await;
        assert!(second.joined.is_empty() && second.left.is_empty(), "joined {:?}, left {:?}", second.joined, second.left);
        assert_eq!(second.sizes, first.sizes);

        // So does the first after a change of window (which discards what was learned).
        plugins.configure(shop.id, "rfm", json!({"window-days": 200})).await.expect("configure");
        let changed = recompute(&plugins, &shop).await;
        let again = recompute(&plugins, &shop).await;
        assert!(again.joined.is_empty() && again.left.is_empty(), "joined {:?}, left {:?}", again.joined, again.left);
        assert_eq!(again.sizes, changed.sizes);
        let at = now_ms();
        let stored: BTreeMap<String, u64> = db
            .segment_sizes(shop.id, at)
            .await
            .expect("sizes")
            .into_iter()
            .map(|s| (s.segment, u64::try_from(s.members).expect("size")))
            .collect();
        assert_eq!(stored, again.sizes, "the stored memberships are the report's");
    }
);

both_backends!(
    async fn a_dry_run_calibrates_in_scratch_and_shows_the_real_result(db) {
        let shop = seeded_shop(&db, 0).await;
        let plugins = PluginHost::new(db.clone(), None);
        install(&plugins, &shop, json!({}), false).await;

        let DryRunReport::Segmenter(report) = dry_run::run(&plugins, &shop, "rfm").await.expect("dry run") else {
            panic!("a segmenter's report");
        };
        assert_eq!(report.failed_batches, 0, "{report:?}");
        assert_eq!(report.customers, CUSTOMERS);
        assert_eq!(total(&report.sizes), buyers(&db, &shop).await, "every buyer is shown a segment: {:?}", report.sizes);
        assert!(report.sizes.contains_key("champions") && report.sizes.contains_key("lost"), "{:?}", report.sizes);
        assert!(report.left.is_empty());
        // Nothing of the live install was touched: no kv, no memberships.
        assert_eq!(db.plugin_kv_used(shop.id, "rfm").await.expect("kv"), 0, "the dry run's kv was scratch");
        assert!(db.segment_sizes(shop.id, now_ms()).await.expect("sizes").is_empty());

        // Enabling and recomputing gives exactly what the dry run showed.
        plugins.set_enabled(shop.id, "rfm", true).await.expect("enable");
        let applied = recompute(&plugins, &shop).await;
        assert_eq!(applied.sizes, report.sizes);
        assert_eq!(applied.joined, report.joined);
        assert!(db.plugin_kv_used(shop.id, "rfm").await.expect("kv") > 0, "the live install learned in its own kv");
    }
);

both_backends!(
    async fn a_failing_dry_run_leaves_the_install_record_and_breaker_alone(db) {
        let shop = seeded_shop(&db, 0).await;
        let plugins = PluginHost::new(db.clone(), None);
        // Valid for the schema, refused by the plugin: every call fails.
        install(&plugins, &shop, json!({"segment-map": [{"name": "x", "r": [5, 1]}]}), false).await;
        let DryRunReport::Segmenter(report) = dry_run::run(&plugins, &shop, "rfm").await.expect("dry run") else {
            panic!("a segmenter's report");
        };
        assert!(report.failed_batches > 0, "{report:?}");
        assert!(report.last_error.as_deref().unwrap_or_default().contains("bad-config"), "{report:?}");
        let install = db.plugin_install(shop.id, "rfm").await.expect("read").expect("installed");
        assert_eq!((install.status.as_str(), install.failures, install.last_error), ("disabled", 0, None));

        // The live breaker is closed: once fixed and enabled, the install answers at once.
        plugins.configure(shop.id, "rfm", json!({})).await.expect("configure");
        plugins.set_enabled(shop.id, "rfm", true).await.expect("enable");
        let applied = recompute(&plugins, &shop).await;
        assert_eq!(total(&applied.sizes), buyers(&db, &shop).await);
    }
);

both_backends!(
    async fn customers_whose_last_order_is_outside_the_window_get_r1(db) {
        // The whole history ended 500 days ago: nobody ordered within the 365-day window.
        let shop = seeded_shop(&db, 500).await;
        let plugins = PluginHost::new(db.clone(), None);
        install(&plugins, &shop, json!({}), true).await;
        let report = recompute(&plugins, &shop).await;
        let buyers = buyers(&db, &shop).await;
        assert!(buyers > 0);
        assert_eq!(total(&report.sizes), buyers, "every buyer gets a segment: {:?}", report.sizes);
        // R 1 row of the grid: lost, at-risk, cant-lose-them (F and M still spread).
        for segment in report.sizes.keys() {
            assert!(["lost", "at-risk", "cant-lose-them"].contains(&segment.as_str()), "{segment} is not an R 1 segment");
        }
        assert!(report.sizes.len() >= 2, "F and M still tell them apart: {:?}", report.sizes);
        let again = recompute(&plugins, &shop).await;
        assert!(again.joined.is_empty() && again.left.is_empty());
    }
);
