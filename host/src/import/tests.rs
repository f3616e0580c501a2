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
        ("customer_tags", "customer_id, tag, source, added_at"),
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
        // The export's tags are customer tags too, where rules and segments see them.
        assert_eq!(db.tags(shop.id, ada.id).await.expect("tags"), ["espresso", "vip"]);
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

/// PostgreSQL's planner knows what an import wrote: without statistics it took a fresh
/// shop's orders for a handful of rows and refreshed each chunk's customer stats with a
/// nested loop over every order (see `crate::store::bulk::analyze_imported`).
#[tokio::test]
async fn an_import_leaves_postgres_statistics_of_what_it_wrote() {
    let db = crate::testing::fresh_db(crate::testing::Backend::Postgres).await;
    let (shop, _) = crate::testing::shop(&db, "Roasters").await;
    let sampled = |table: &'static str| {
        let db = db.clone();
        async move {
            sqlx::query_scalar::<_, i64>(
                "SELECT CAST(reltuples AS BIGINT) FROM pg_class WHERE relname = $1 AND relkind = 'r'",
            )
            .bind(table)
            .fetch_one(db.pool())
            .await
            .expect("pg_class")
        }
    };
    assert_eq!(sampled("orders").await, -1, "a new table has never been sampled");
    let summary = import(&db, &shop, ImportKind::Orders, "shopify_orders.csv").await;
    assert_eq!(summary.created, 6, "{summary}");
    assert_eq!(sampled("orders").await, 6);
    assert_eq!(sampled("order_lines").await, 10);
}

/// A Shopify order export of `orders` orders, one line item each, from `customers`
/// made-up customers (`customer{n}@example.com`; every 97th order is a guest's), over
/// the three years before 2025, in USD, with Shopify's full header: mostly paid and
/// fulfilled, some pending, cancelled, refunded and partly refunded. Deterministic.
pub(crate) fn shopify_orders_export(orders: u64, customers: u64) -> String {
    let header = std::fs::read_to_string(fixture("shopify_orders.csv")).expect("fixture");
    let header = header.lines().next().expect("header line").to_owned();
    let columns: Vec<&str> = header.split(',').collect();
    let at = |name: &str| columns.iter().position(|c| *c == name).expect("Shopify column");
    let products = [
        ("Ceramic Mug - Slate", "MUG-SLATE", 1250),
        ("Colombia Huila 250 g", "COF-HUILA-250", 1700),
        ("Ethiopia Guji 250 g", "COF-GUJI-250", 1850),
        ("Pour-over Kettle", "KETTLE-1", 5400),
        ("Paper Filters x100", "FILTER-100", 650),
        ("Espresso Blend 1 kg", "COF-ESP-1000", 3900),
    ];
    let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = move || {
        // xorshift64*: deterministic, good enough to spread made-up orders.
        state ^= state >> 12;
        state ^= state << 25;
        state ^= state >> 27;
        state.wrapping_mul(0x2545_f491_4f6c_dd1d)
    };
    let start = 1_640_995_200; // 2022-01-01T00:00:00Z
    let span = 3 * 365 * 86_400;
    let mut out = String::with_capacity(orders as usize * 400);
    out.push_str(&header);
    out.push('\n');
    let mut row = vec![String::new(); columns.len()];
    for n in 0..orders {
        row.iter_mut().for_each(String::clear);
        let (title, sku, price) = products[(next() % products.len() as u64) as usize];
        let quantity = 1 + (next() % 3) as i64;
        let subtotal = price * quantity;
        let shipping = if subtotal >= 5000 { 0 } else { 495 };
        let tax = subtotal * 8 / 100;
        let total = subtotal + shipping + tax;
        let placed = start + (n * span / orders.max(1)) as i64 + (next() % 3600) as i64;
        let created = chrono::DateTime::from_timestamp(placed, 0).expect("time").format("%Y-%m-%d %H:%M:%S +0000");
        let money = |minor: i64| format!("{}.{:02}", minor / 100, minor % 100);
        let (financial, refunded, cancelled) = match next() % 100 {
            0..=1 => ("pending", 0, false),
            2..=3 => ("voided", 0, true),
            4..=6 => ("refunded", total, false),
            7..=9 => ("partially_refunded", price / 2, false),
            _ => ("paid", 0, false),
        };
        row[at("Name")] = format!("#{}", 1001 + n);
        if n % 97 != 0 {
            row[at("Email")] = format!("customer{}@example.com", next() % customers.max(1));
        }
        row[at("Financial Status")] = financial.into();
        row[at("Fulfillment Status")] = if next() % 4 == 0 { "unfulfilled" } else { "fulfilled" }.into();
        row[at("Currency")] = "USD".into();
        row[at("Subtotal")] = money(subtotal);
        row[at("Shipping")] = money(shipping);
        row[at("Taxes")] = money(tax);
        row[at("Total")] = money(total);
        row[at("Created at")] = created.to_string();
        row[at("Paid at")] = created.to_string();
        row[at("Lineitem quantity")] = quantity.to_string();
        row[at("Lineitem name")] = title.into();
        row[at("Lineitem price")] = money(price);
        row[at("Lineitem sku")] = sku.into();
        row[at("Refunded Amount")] = money(refunded);
        if cancelled {
            row[at("Cancelled at")] = created.to_string();
        }
        row[at("Vendor")] = "Demo Roasters".into();
        row[at("Id")] = (5_610_000_000 + n).to_string();
        row[at("Billing Country")] = "US".into();
        row[at("Risk Level")] = "Low".into();
        row[at("Source")] = "web".into();
        out.push_str(&row.join(","));
        out.push('\n');
    }
    out
}

/// Writes `text` to a fresh temporary file and returns its path.
fn temp_file(text: &str) -> PathBuf {
    let path = std::env::temp_dir().join(format!("patron-import-{}.csv", crate::store::new_id()));
    std::fs::write(&path, text).expect("write temporary export");
    path
}

/// Imports `path` record by record (each in its own transaction, never the bulk path).
async fn import_one_by_one(db: &Db, shop: &Shop, kind: ImportKind, path: &Path) -> ImportSummary {
    let file = File::open(path).expect("open");
    let mut head = Vec::new();
    File::open(path).expect("open").take(64 * 1024).read_to_end(&mut head).expect("read");
    let format = Format::detect(kind, path, &head).expect("format");
    let source = format.source(kind, BufReader::new(file), &shop.currency).expect("source");
    let mut summary = ImportSummary::default();
    for item in source {
        match item.expect("readable") {
            Parsed::Record { row, record } => {
                let one = [(row, record)];
                apply_chunk(db, shop, &one, &mut summary).await.expect("applied");
            }
            Parsed::Rejected(rejection) => summary.reject(rejection),
        }
    }
    summary
}

/// What a shop's import wrote, without the ids and times that differ between shops and
/// runs: customers by email with their stats, orders with their customer's email, lines,
/// refunds, email identities.
async fn content(db: &Db, shop_id: i64) -> Vec<String> {
    let mut rows = Vec::new();
    for sql in [
        "SELECT 'customer|' || COALESCE(email, '~') || '|' || CAST(order_count AS TEXT) || '|' || \
           CAST(total_spent AS TEXT) || '|' || COALESCE(CAST(first_order_at AS TEXT), '~') || '|' || \
           COALESCE(CAST(last_order_at AS TEXT), '~') || '|' || traits FROM customers WHERE shop_id = $1",
        "SELECT 'order|' || o.id || '|' || COALESCE(c.email, '~') || '|' || o.status || '|' || \
           CAST(o.subtotal AS TEXT) || '|' || CAST(o.total AS TEXT) || '|' || CAST(o.refunded AS TEXT) || '|' || \
           CAST(o.placed_at AS TEXT) || '|' || o.coupon_codes FROM orders o \
           LEFT JOIN customers c ON c.shop_id = o.shop_id AND c.id = o.customer_id WHERE o.shop_id = $1",
        "SELECT 'line|' || order_id || '|' || CAST(line_no AS TEXT) || '|' || COALESCE(sku, '~') || '|' || title || '|' || \
           CAST(quantity AS TEXT) || '|' || CAST(unit_price AS TEXT) FROM order_lines WHERE shop_id = $1",
        "SELECT 'refund|' || id || '|' || order_id || '|' || CAST(amount AS TEXT) || '|' || COALESCE(reason, '~') \
           FROM refunds WHERE shop_id = $1",
        "SELECT 'identity|' || i.kind || '|' || i.value || '|' || COALESCE(c.email, '~') FROM identities i \
           JOIN customers c ON c.shop_id = i.shop_id AND c.id = i.customer_id WHERE i.shop_id = $1",
    ] {
        let found: Vec<String> = sqlx::query_scalar(sql).bind(shop_id).fetch_all(db.pool()).await.expect("content");
        rows.extend(found);
    }
    rows.sort();
    rows
}

both_backends! {
    async fn the_bulk_path_writes_what_the_per_order_upsert_writes(db) {
        // More than one chunk, repeat customers, guests, refunds and cancellations.
        let path = temp_file(&shopify_orders_export(2_500, 700));
        let (bulk_shop, _) = crate::testing::shop(&db, "Bulk").await;
        let (one_shop, _) = crate::testing::shop(&db, "One by one").await;
        // Some customers known before, by email only and with more than an email.
        for shop in [&bulk_shop, &one_shop] {
            let known = CustomerInput { email: Some("customer3@example.com".into()), ..CustomerInput::default() };
            db.upsert_customer(shop.id, &known).await.expect("known customer");
            let named = CustomerInput {
                external_id: Some("shopify-9".into()),
                email: Some("customer9@example.com".into()),
                first_name: Some("Nine".into()),
                ..CustomerInput::default()
            };
            db.upsert_customer(shop.id, &named).await.expect("named customer");
        }
        let bulk = import_file(&db, &bulk_shop, ImportKind::Orders, &path, false).await.expect("bulk import");
        let one = import_one_by_one(&db, &one_shop, ImportKind::Orders, &path).await;
        assert_eq!(counts(&bulk), counts(&one), "bulk {bulk} / one by one {one}");
        assert_eq!(counts(&bulk), (2_500, 0, 0, 0), "{bulk}");
        let written = content(&db, bulk_shop.id).await;
        assert_eq!(written, content(&db, one_shop.id).await);
        assert!(written.iter().any(|r| r.starts_with("refund|")), "the export has refunds");

        // The same file again changes nothing, row for row (times included).
        let before = snapshot(&db, bulk_shop.id).await;
        let again = import_file(&db, &bulk_shop, ImportKind::Orders, &path, false).await.expect("again");
        assert_eq!(counts(&again), (0, 0, 2_500, 0), "{again}");
        assert_eq!(snapshot(&db, bulk_shop.id).await, before);

        // A later export that refunds part of one paid order updates just that order.
        let export = std::fs::read_to_string(&path).expect("export");
        let _ = std::fs::remove_file(&path);
        let refund_column = export
            .lines()
            .next()
            .and_then(|h| h.split(',').position(|c| c == "Refunded Amount"))
            .expect("Refunded Amount column");
        let first_paid = export.lines().position(|l| l.contains(",paid,")).expect("a paid order");
        let later: Vec<String> = export
            .lines()
            .enumerate()
            .map(|(i, line)| {
                if i != first_paid {
                    return line.to_owned();
                }
                let line = line.replacen(",paid,", ",partially_refunded,", 1);
                let mut cells: Vec<&str> = line.split(',').collect();
                cells[refund_column] = "1.00";
                cells.join(",")
            })
            .collect();
        let path = temp_file(&(later.join("\n") + "\n"));
        let changed = import_file(&db, &bulk_shop, ImportKind::Orders, &path, false).await.expect("later export");
        let _ = std::fs::remove_file(&path);
        assert_eq!(counts(&changed), (0, 1, 2_499, 0), "{changed}");
    }
}

/// Set by the timing run (`PATRON_IMPORT_PER_RECORD=1`): chunks of orders go record by
/// record, as every import did before the bulk path, for a before/after in one sitting.
pub(super) static PER_RECORD: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Times an import of a file, or of a generated Shopify export:
/// `PATRON_IMPORT_FILE=orders.csv PATRON_IMPORT_KIND=orders` or `PATRON_IMPORT_GENERATE=70000`
/// (orders; one line item each), `PATRON_IMPORT_BACKEND=postgres` for PostgreSQL and
/// `PATRON_IMPORT_PER_RECORD=1` for the record-by-record path:
/// `cargo test --workspace --lib import::tests::import_timing -- --ignored --nocapture`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a timing run, not a check"]
async fn import_timing() {
    use clap::ValueEnum;
    let generated = std::env::var("PATRON_IMPORT_GENERATE").ok().and_then(|n| n.parse::<u64>().ok());
    let path = match generated {
        Some(orders) => temp_file(&shopify_orders_export(orders, orders / 3)),
        None => {
            PathBuf::from(std::env::var("PATRON_IMPORT_FILE").expect("PATRON_IMPORT_FILE or PATRON_IMPORT_GENERATE"))
        }
    };
    let kind = std::env::var("PATRON_IMPORT_KIND")
        .ok()
        .and_then(|k| ImportKind::from_str(&k, true).ok())
        .unwrap_or(ImportKind::Orders);
    let backend = match std::env::var("PATRON_IMPORT_BACKEND").as_deref() {
        Ok("postgres") => crate::testing::Backend::Postgres,
        _ => crate::testing::Backend::Sqlite,
    };
    if std::env::var("PATRON_IMPORT_PER_RECORD").is_ok_and(|v| v == "1") {
        PER_RECORD.store(true, std::sync::atomic::Ordering::Relaxed);
    }
    let db = crate::testing::fresh_db(backend).await;
    let (shop, _) = crate::testing::shop(&db, "Timing").await;
    for run in ["first", "again"] {
        let summary = import_file(&db, &shop, kind, &path, true).await.expect("import");
        let per_second = summary.records as f64 / summary.elapsed.as_secs_f64().max(1e-9);
        println!("{backend:?} {run}: {per_second:.0} records/s; {summary}");
    }
    if generated.is_some() {
        let _ = std::fs::remove_file(&path);
    }
}
