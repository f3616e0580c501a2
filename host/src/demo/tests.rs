//! Seeding real databases, on SQLite and PostgreSQL.

use super::*;
use crate::both_backends;

/// A fixed end of history, so two seeds are comparable.
const END: i64 = 1_750_000_000_000;

fn options(customers: u64, seed: u64) -> SeedOptions {
    SeedOptions { customers, seed, end: Some(END), progress: false, ..SeedOptions::default() }
}

async fn scalar(db: &Db, sql: &str, shop_id: i64) -> i64 {
    sqlx::query_scalar(sql).bind(shop_id).fetch_one(db.pool()).await.unwrap_or_else(|e| panic!("{sql}: {e}"))
}

/// A digest of everything seeded, to compare two seeds.
async fn fingerprint(db: &Db, shop_id: i64) -> Vec<i64> {
    let mut digest = Vec::new();
    for sql in [
        "SELECT COUNT(*) FROM customers WHERE shop_id = $1",
        "SELECT COALESCE(CAST(SUM(id % 1000003) AS BIGINT), 0) FROM customers WHERE shop_id = $1",
        "SELECT COALESCE(CAST(SUM(total_spent) AS BIGINT), 0) FROM customers WHERE shop_id = $1",
        "SELECT COALESCE(CAST(SUM(created_at % 1000003) AS BIGINT), 0) FROM customers WHERE shop_id = $1",
        "SELECT COUNT(*) FROM orders WHERE shop_id = $1",
        "SELECT COALESCE(CAST(SUM(total) AS BIGINT), 0) FROM orders WHERE shop_id = $1",
        "SELECT COALESCE(CAST(SUM(placed_at % 1000003) AS BIGINT), 0) FROM orders WHERE shop_id = $1",
        "SELECT COUNT(*) FROM order_lines WHERE shop_id = $1",
        "SELECT COALESCE(CAST(SUM(quantity * unit_price) AS BIGINT), 0) FROM order_lines WHERE shop_id = $1",
        "SELECT COUNT(*) FROM events WHERE shop_id = $1",
        "SELECT COALESCE(CAST(SUM(occurred_at % 1000003) AS BIGINT), 0) FROM events WHERE shop_id = $1",
        "SELECT COUNT(*) FROM refunds WHERE shop_id = $1",
    ] {
        digest.push(scalar(db, sql, shop_id).await);
    }
    digest
}

both_backends! {
    async fn a_small_seed_is_plausible_and_deterministic(db) {
        let (shop, _) = crate::testing::shop(&db, "Demo").await;
        let summary = seed(&db, &shop, &options(500, 42)).await.expect("seed");
        assert_eq!(summary.customers, 500);
        assert_eq!(summary.products, catalog().len() as u64);
        assert!(summary.orders > 400 && summary.events > 2_000, "{summary}");
        let id = shop.id;

        // Buy till you die: most buyers buy once, a minority five times or more.
        let buyers = scalar(&db, "SELECT COUNT(*) FROM customers WHERE shop_id = $1 AND order_count > 0", id).await;
        let once = scalar(&db, "SELECT COUNT(*) FROM customers WHERE shop_id = $1 AND order_count = 1", id).await;
        let often = scalar(&db, "SELECT COUNT(*) FROM customers WHERE shop_id = $1 AND order_count >= 5", id).await;
        assert!(buyers > 350 && once * 2 > buyers && often >= 5 && often * 5 < buyers, "{buyers} {once} {often}");

        // Stats match the orders they come from.
        let mismatched = scalar(
            &db,
            "SELECT COUNT(*) FROM customers c WHERE c.shop_id = $1 AND ( \
               c.order_count <> (SELECT COUNT(*) FROM orders o WHERE o.shop_id = c.shop_id AND o.customer_id = c.id \
                                 AND o.status IN ('paid', 'fulfilled')) \
               OR c.total_spent <> (SELECT COALESCE(CAST(SUM(o.total - o.refunded) AS BIGINT), 0) FROM orders o \
                                 WHERE o.shop_id = c.shop_id AND o.customer_id = c.id AND o.status IN ('paid', 'fulfilled')) \
               OR COALESCE(c.last_order_at, 0) <> (SELECT COALESCE(MAX(o.placed_at), 0) FROM orders o \
                                 WHERE o.shop_id = c.shop_id AND o.customer_id = c.id AND o.status IN ('paid', 'fulfilled')))",
            id,
        )
        .await;
        assert_eq!(mismatched, 0);
        let sample = db.customers_page(id, None, 50).await.expect("page");
        for customer in &sample.customers {
            let stored = db.customer(id, customer.id).await.expect("read").expect("customer");
            assert_eq!(stored.stats, customer.stats);
        }

        // Events of every kind, abandoned carts, refunds, cancellations, birthdays, consent.
        for kind in ["page_view", "product_view", "add_to_cart", "checkout_started"] {
            let sql = format!("SELECT COUNT(*) FROM events WHERE shop_id = $1 AND kind = '{kind}'");
            assert!(scalar(&db, &sql, id).await > 100, "{kind}");
        }
        let checkouts = scalar(&db, "SELECT COUNT(*) FROM events WHERE shop_id = $1 AND kind = 'checkout_started'", id).await;
        assert!(checkouts > summary.orders as i64, "abandoned checkouts exist: {checkouts} vs {} orders", summary.orders);
        for status in ["refunded", "cancelled", "fulfilled"] {
            let sql = format!("SELECT COUNT(*) FROM orders WHERE shop_id = $1 AND status = '{status}'");
            assert!(scalar(&db, &sql, id).await > 0, "{status}");
        }
        assert!(summary.refunds > 0);
        let birthdays = scalar(&db, "SELECT COUNT(*) FROM customers WHERE shop_id = $1 AND birthday IS NOT NULL", id).await;
        let consenting = scalar(&db, "SELECT COUNT(*) FROM customers WHERE shop_id = $1 AND marketing_consent = 1", id).await;
        assert!((300..480).contains(&birthdays) && (200..350).contains(&consenting), "{birthdays} {consenting}");
        let (first_order, last_order) = (
            scalar(&db, "SELECT MIN(placed_at) FROM orders WHERE shop_id = $1", id).await,
            scalar(&db, "SELECT MAX(placed_at) FROM orders WHERE shop_id = $1", id).await,
        );
        assert!(END - first_order > 600 * 86_400_000 && last_order < END, "spread over two years");

        // The same seed gives the same shop; another seed does not.
        let first = fingerprint(&db, id).await;
        let (again, _) = crate::testing::shop(&db, "Demo again").await;
        seed(&db, &again, &options(500, 42)).await.expect("seed again");
        assert_eq!(fingerprint(&db, again.id).await, first);
        let (other, _) = crate::testing::shop(&db, "Other demo").await;
        seed(&db, &other, &options(500, 43)).await.expect("seed other");
        assert_ne!(fingerprint(&db, other.id).await, first);

        // A shop with customers is not seeded over.
        assert!(matches!(seed(&db, &shop, &options(10, 42)).await, Err(SeedError::ShopNotEmpty(_))));
    }
}

/// Times a large seed: `PATRON_SEED_CUSTOMERS=100000 PATRON_SEED_BACKEND=sqlite|postgres
/// cargo test -p patron --lib demo::tests::seed_timing -- --ignored --nocapture`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a timing run, not a check"]
async fn seed_timing() {
    let customers = std::env::var("PATRON_SEED_CUSTOMERS").ok().and_then(|n| n.parse().ok()).unwrap_or(100_000);
    let backend = match std::env::var("PATRON_SEED_BACKEND").as_deref() {
        Ok("postgres") => crate::testing::Backend::Postgres,
        _ => crate::testing::Backend::Sqlite,
    };
    let db = crate::testing::fresh_db(backend).await;
    let (shop, _) = crate::testing::shop(&db, "Timing").await;
    let summary =
        seed(&db, &shop, &SeedOptions { customers, seed: 1, end: Some(END), progress: true, ..SeedOptions::default() })
            .await
            .expect("seed");
    println!("{backend:?}: {summary}");
}
