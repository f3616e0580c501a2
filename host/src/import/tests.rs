//! Imports of real files into real databases, on SQLite and PostgreSQL.

use std::path::PathBuf;

use super::*;
use crate::both_backends;
use crate::store::orders::OrderStatus;

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures").join(name)
}

async fn import(db: &Db, shop: &Shop, kind: ImportKind, name: &str) -> ImportSummary {
    import_file(db, shop, kind, &fixture(name), false).await.unwrap_or_else(|e| panic!("import {name}: {e}"))
}

fn counts(summary: &ImportSummary) -> (u64, u64, u64, u64) {
    (summary.created, summary.updated, summary.unchanged, summary.rejected)
}

both_backends! {
    async fn shopify_order_export_imports_with_totals_and_lines(db) {
        let (shop, _) = crate::testing::shop(&db, "Roasters").await;
        let summary = import(&db, &shop, ImportKind::Orders, "shopify_orders.csv").await;
        assert_eq!(summary.format, Some(Format::ShopifyOrders));
        assert_eq!(counts(&summary), (6, 0, 0, 1), "{summary}");
        assert_eq!(summary.records, 7);
        assert_eq!(summary.rejections[0].row, 9);
        assert!(summary.rejections[0].reason.contains("Total: `24,39`"), "{summary}");

        let first = db.order(shop.id, "#1001").await.expect("read").expect("#1001 stored");
        assert_eq!(first.status, OrderStatus::Fulfilled);
        assert_eq!((first.subtotal, first.discount, first.shipping, first.tax, first.total), (4200, 420, 495, 302, 4577));
        assert_eq!(first.coupon_codes, vec!["WELCOME10".to_owned()]);
        assert_eq!(first.placed_at, 1_709_643_960_000, "2024-03-05 14:06:00 +0100");
        let lines: Vec<(&str, Option<&str>, i64, i64)> =
            first.lines.iter().map(|l| (l.title.as_str(), l.sku.as_deref(), l.quantity, l.unit_price)).collect();
        assert_eq!(lines, vec![
            ("Ceramic Mug - Slate", Some("MUG-SLATE"), 2, 1250),
            ("Colombia Huila 250 g", Some("COF-HUILA-250"), 1, 1700),
        ]);

        let partly = db.order(shop.id, "#1002").await.expect("read").expect("#1002 stored");
        assert_eq!((partly.status, partly.total, partly.refunded), (OrderStatus::Fulfilled, 5616, 1700));
        let refunded = db.order(shop.id, "#1004").await.expect("read").expect("#1004 stored");
        assert_eq!((refunded.status, refunded.refunded), (OrderStatus::Refunded, 7452));
        let cancelled = db.order(shop.id, "#1005").await.expect("read").expect("#1005 stored");
        assert_eq!(cancelled.status, OrderStatus::Cancelled);
        let guest = db.order(shop.id, "#1007").await.expect("read").expect("#1007 stored");
        assert_eq!((guest.status, guest.customer_id, guest.lines.len()), (OrderStatus::Pending, None, 3));
        assert!(db.order(shop.id, "#1006").await.expect("read").is_none(), "the rejected order is not stored");

        // Stats: paid and fulfilled orders count, net of refunds; #1003's mixed-case email is Ada's.
        let ada = customer_by_email(&db, shop.id, "ada@example.com").await;
        assert_eq!((ada.order_count, ada.total_spent), (2, 4577 + 4383));
        let ben = customer_by_email(&db, shop.id, "ben@example.com").await;
        assert_eq!((ben.order_count, ben.total_spent), (1, 5616 - 1700));
        let chloe = customer_by_email(&db, shop.id, "chloe@example.com").await;
        assert_eq!((chloe.order_count, chloe.total_spent), (0, 0));
    }
}

/// The stats of the customer an email belongs to.
async fn customer_by_email(db: &Db, shop_id: i64, email: &str) -> crate::store::customers::CustomerStats {
    let id: i64 =
        sqlx::query_scalar("SELECT customer_id FROM identities WHERE shop_id = $1 AND kind = 'email' AND value = $2")
            .bind(shop_id)
            .bind(email)
            .fetch_one(db.pool())
            .await
            .unwrap_or_else(|e| panic!("no customer for {email}: {e}"));
    db.customer(shop_id, id).await.expect("read").expect("customer").stats
}

/// Every row of the tables an import writes, as text, to compare two states.
async fn snapshot(db: &Db, shop_id: i64) -> Vec<String> {
    let mut rows = Vec::new();
    for (table, columns) in [
        (
            "customers",
            "id, external_id, email, phone, first_name, last_name, birthday, marketing_consent, traits, created_at, updated_at, order_count, total_spent, first_order_at, last_order_at",
        ),
        (
            "orders",
            "id, customer_id, status, subtotal, discount, shipping, tax, total, refunded, coupon_codes, placed_at, updated_at",
        ),
        ("order_lines", "order_id, line_no, sku, title, quantity, unit_price"),
        ("refunds", "id, order_id, amount"),
        ("products", "id, title, price, currency, category, url, image_url, available, updated_at"),
        ("identities", "kind, value, customer_id"),
    ] {
        let row = columns.split(", ").map(|c| format!("COALESCE(CAST({c} AS TEXT), '~')")).collect::<Vec<_>>();
        let sql = format!("SELECT {} FROM {table} WHERE shop_id = $1 ORDER BY 1", row.join(" || '|' || "));
        let table_rows: Vec<String> =
            sqlx::query_scalar(&sql).bind(shop_id).fetch_all(db.pool()).await.expect("snapshot");
        rows.extend(table_rows.into_iter().map(|r| format!("{table}: {r}")));
    }
    rows
}

both_backends! {
    async fn importing_the_same_files_twice_changes_nothing(db) {
        let (shop, _) = crate::testing::shop(&db, "Roasters").await;
        let files = [
            (ImportKind::Customers, "shopify_customers.csv"),
            (ImportKind::Orders, "shopify_orders.csv"),
            (ImportKind::Products, "patron_products.csv"),
            (ImportKind::Customers, "patron_customers.ndjson"),
        ];
        for (kind, name) in files {
            let (created, updated, unchanged, rejected) = counts(&import(&db, &shop, kind, name).await);
            assert!(created > 0, "{name} imports something");
            let before = snapshot(&db, shop.id).await;
            let again = import(&db, &shop, kind, name).await;
            assert_eq!(counts(&again), (0, 0, created + updated + unchanged, rejected), "{name}: {again}");
            assert_eq!(snapshot(&db, shop.id).await, before, "{name} changed the database");
        }
    }
}

both_backends! {
    async fn bad_rows_are_rejected_with_their_reason_while_good_rows_land(db) {
        let (shop, _) = crate::testing::shop(&db, "Roasters").await;
        let products = import(&db, &shop, ImportKind::Products, "patron_products.csv").await;
        assert_eq!(products.format, Some(Format::PatronCsv));
        assert_eq!(counts(&products), (3, 0, 0, 1), "{products}");
        assert_eq!(products.rejections[0].row, 4);
        assert!(products.rejections[0].reason.contains("price: `35.00` is not an integer"), "{products}");
        assert!(db.product(shop.id, "press-1l").await.expect("read").is_none());
        let sencha = db.product(shop.id, "sencha-50").await.expect("read").expect("sencha stored");
        assert_eq!((sencha.price, sencha.available, sencha.currency.as_deref()), (1200, false, Some("USD")));

        let customers = import(&db, &shop, ImportKind::Customers, "patron_customers.ndjson").await;
        assert_eq!(customers.format, Some(Format::PatronNdjson));
        assert_eq!(counts(&customers), (3, 0, 0, 2), "{customers}");
        let reasons: Vec<(u64, &str)> = customers.rejections.iter().map(|r| (r.row, r.reason.as_str())).collect();
        assert!(reasons[0].0 == 4 && reasons[0].1.contains("birthday"), "{reasons:?}");
        assert!(reasons[1].0 == 5 && reasons[1].1.contains("nickname"), "{reasons:?}");
        let ada = db.customer_by_external_id(shop.id, "c-1").await.expect("read").expect("c-1 stored");
        assert!(ada.marketing_consent);
        assert_eq!(ada.traits["tier"], "gold");
        assert!(db.customer_by_external_id(shop.id, "c-5").await.expect("read").is_some());

        // Shopify customers, then their orders: orders find their customers by email.
        let (shop, _) = crate::testing::shop(&db, "Shopify merchant").await;
        let shopify = import(&db, &shop, ImportKind::Customers, "shopify_customers.csv").await;
        assert_eq!(shopify.format, Some(Format::ShopifyCustomers));
        assert_eq!(counts(&shopify), (4, 0, 0, 1), "{shopify}");
        assert_eq!(shopify.rejections[0].row, 5);
        assert!(shopify.rejections[0].reason.contains("not-an-email"), "{shopify}");
        let ada = db.customer_by_external_id(shop.id, "7001").await.expect("read").expect("7001 stored");
        assert_eq!((ada.phone.as_deref(), ada.marketing_consent), (Some("+442079460000"), true));
        assert_eq!(ada.traits["tags"], serde_json::json!(["vip", "espresso"]));
        let before = db.count_customers(shop.id).await.expect("count");
        import(&db, &shop, ImportKind::Orders, "shopify_orders.csv").await;
        let ada = db.customer_by_external_id(shop.id, "7001").await.expect("read").expect("7001 stored");
        assert_eq!((ada.stats.order_count, ada.stats.total_spent), (2, 4577 + 4383));
        // Only dan@example.com was unknown (#1007 is a guest order, #1006 was rejected).
        assert_eq!(db.count_customers(shop.id).await.expect("count"), before + 1);
    }
}

both_backends! {
    async fn a_file_of_the_wrong_kind_is_refused_before_anything_is_written(db) {
        let (shop, _) = crate::testing::shop(&db, "Roasters").await;
        let error = import_file(&db, &shop, ImportKind::Customers, &fixture("shopify_orders.csv"), false).await;
        assert!(matches!(&error, Err(ImportError::UnknownFormat(m)) if m.contains("patron import orders")), "{error:?}");
        let missing = import_file(&db, &shop, ImportKind::Orders, &fixture("missing.csv"), false).await;
        assert!(matches!(missing, Err(ImportError::Open { .. })));
        assert_eq!(db.count_customers(shop.id).await.expect("count"), 0);
    }
}

both_backends! {
    async fn a_later_export_with_a_bigger_refund_updates_the_order(db) {
        let (shop, _) = crate::testing::shop(&db, "Roasters").await;
        import(&db, &shop, ImportKind::Orders, "shopify_orders.csv").await;
        let original = std::fs::read_to_string(fixture("shopify_orders.csv")).expect("fixture");
        let later = original.replace(",,17.00,Demo Roasters", ",,35.00,Demo Roasters");
        assert_ne!(later, original);
        let path = std::env::temp_dir().join(format!("patron-later-export-{}.csv", crate::store::new_id()));
        std::fs::write(&path, later).expect("write later export");
        let summary = import_file(&db, &shop, ImportKind::Orders, &path, false).await.expect("import later export");
        let _ = std::fs::remove_file(&path);
        assert_eq!(counts(&summary), (0, 1, 5, 1), "{summary}");
        let order = db.order(shop.id, "#1002").await.expect("read").expect("#1002");
        assert_eq!((order.refunded, order.status), (3500, OrderStatus::Fulfilled));
        let ben = customer_by_email(&db, shop.id, "ben@example.com").await;
        assert_eq!(ben.total_spent, 5616 - 3500);
        let refunds = sqlx::query_scalar::<_, i64>("SELECT COUNT(*) FROM refunds WHERE shop_id = $1 AND order_id = '#1002'")
            .bind(shop.id)
            .fetch_one(db.pool())
            .await
            .expect("count refunds");
        assert_eq!(refunds, 2, "one refund per step the exports show");
    }
}

/// Times an import: `PATRON_IMPORT_FILE=orders.csv PATRON_IMPORT_KIND=orders
/// cargo test -p patron --lib import::tests::import_timing -- --ignored --nocapture`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a timing run, not a check"]
async fn import_timing() {
    use clap::ValueEnum;
    let path = PathBuf::from(std::env::var("PATRON_IMPORT_FILE").expect("PATRON_IMPORT_FILE"));
    let kind = std::env::var("PATRON_IMPORT_KIND")
        .ok()
        .and_then(|k| ImportKind::from_str(&k, true).ok())
        .unwrap_or(ImportKind::Orders);
    let backend = match std::env::var("PATRON_IMPORT_BACKEND").as_deref() {
        Ok("postgres") => crate::testing::Backend::Postgres,
        _ => crate::testing::Backend::Sqlite,
    };
    let db = crate::testing::fresh_db(backend).await;
    let (shop, _) = crate::testing::shop(&db, "Timing").await;
    for run in ["first", "again"] {
        let summary = import_file(&db, &shop, kind, &path, true).await.expect("import");
        println!("{backend:?} {run}: {summary}");
    }
}
